"""Partitioned storage: partition book, per-partition arrays, RocksDB store, servers, clients.

Data model (one partition ``p`` of ``P``):

* every node belongs to exactly one partition (:class:`PartitionBook`); the partition keeps
  its own nodes' ids (local order), features, and an :class:`AdjacencyData` per edge type:
  ``in_adj`` (rows = its destination nodes, the in-edges of message passing) and, for edge
  types stored with ``out_adjacency``, ``out_adj`` (rows = its source nodes);
* an adjacency's columns index ``halo_ids``, the user ids of the other endpoints, which may
  live in any partition;
* an edge is owned by its destination's partition; its id is ``(p << 40) | index`` where
  ``index`` numbers the partition's edges of that type (the row of its edge features).
"""
