"""PartitionBackend: the per-partition calls RoutedGraph makes, and the capabilities a
backend declares instead of being probed for.

Implemented by :class:`~graphplat.storage.partition_graph.PartitionGraph` (in memory),
:class:`~graphplat.storage.durable.DurablePartition` (RocksDB write log) and
:class:`~graphplat.storage.client.PartitionClient` (gRPC); checked by
``tests/storage/test_backend_conformance.py``. Every call takes ids the partition owns.
"""
from __future__ import annotations

from typing import Dict, FrozenSet, Optional, Protocol, Sequence, runtime_checkable

import numpy as np

from graphplat.service import NeighborSample

#: edge writes take a ``request_id`` applied at most once (RoutedGraph.add_edges passes one)
DEDUPES_WRITES = "dedupes_writes"
#: writes are logged durably before they are acknowledged; the backend has ``compact()``
#: (returns the last folded log seq) and ``close()``
DURABLE = "durable"
#: reads may be answered from a co-located server's shared memory (SharedPartition)
SHARED_MEMORY = "shared_memory"
#: topology reads may be answered from a client-side copy of the partition (TopologyReplica)
TOPOLOGY_REPLICA = "topology_replica"

CAPABILITIES = frozenset({DEDUPES_WRITES, DURABLE, SHARED_MEMORY, TOPOLOGY_REPLICA})


@runtime_checkable
class PartitionBackend(Protocol):
    """One partition of a graph as RoutedGraph sees it (user ids, numpy arrays)."""

    #: names from :data:`CAPABILITIES` this backend has
    capabilities: FrozenSet[str]

    def num_nodes(self, ntype: str) -> int:
        """Nodes of ``ntype`` this partition owns."""

    def num_edges(self, etype) -> int:
        """Edges of ``etype`` this partition owns (those whose destination it owns)."""

    def node_ids(self, ntype: str) -> np.ndarray:
        """The int64 ids of the ``ntype`` nodes this partition owns, in local order."""

    def sample_neighbors(self, etype, seeds, fanout: int, *, strategy: str = "uniform",
                         replace: bool = False, direction: str = "in", seed: int = 0,
                         hop: int = 0, positions: Optional[np.ndarray] = None) -> NeighborSample:
        """Up to ``fanout`` neighbors of every seed along ``etype`` (see
        GraphService.sample_neighbors); ``positions`` are the seeds' places in the caller's
        batch, so the draw does not depend on how the batch was split."""

    def node_features(self, ntype: str, ids, names: Optional[Sequence[str]] = None, *,
                      out: Optional[Dict[str, np.ndarray]] = None, out_rows: Optional[np.ndarray] = None,
                      wire_dtype: Optional[str] = None) -> Dict[str, np.ndarray]:
        """``{name: rows}`` of the features ``names`` (all when None) of ``ids``; float32 ones
        in ``wire_dtype`` ("float16"/"bfloat16") when given. With ``out`` the rows are written
        into ``out[name]`` (at rows ``out_rows`` when given), which is returned: a remote
        backend reads them off the wire straight into place."""

    def edge_features(self, etype, eids, names: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
        """``{name: rows}`` of the features (and "weight") of edges ``eids`` owned here."""

    def degrees(self, etype, ids, direction: str = "in") -> np.ndarray:
        """int64 in- or out-degree of every id along ``etype``."""

    def lookup(self, ntype: str, ids) -> np.ndarray:
        """bool: whether each id is a ``ntype`` node of this partition."""

    def has_edges(self, etype, src, dst) -> np.ndarray:
        """bool: whether each ``(src[i], dst[i])`` is an ``etype`` edge (``dst`` owned here)."""

    def max_rows_per_call(self, row_bytes: int) -> Optional[int]:
        """Rows of ``row_bytes`` bytes one request may ask for; None when unlimited."""

    def add_nodes(self, ntype: str, ids, features: Optional[Dict[str, np.ndarray]] = None) -> None:
        """Add ``ntype`` nodes owned here (features default to zeros); ValueError on present ids."""

    def add_edges_in(self, etype, src, dst, weights: Optional[np.ndarray] = None,
                     request_id: str = "") -> np.ndarray:
        """Add edges whose destination is owned here; returns their new edge ids. A backend
        with ``dedupes_writes`` answers a repeated ``request_id`` with the first answer."""

    def add_edges_out(self, etype, src, dst, eids, weights: Optional[np.ndarray] = None,
                      request_id: str = "") -> None:
        """Record the out-adjacency copy of edges ``eids`` whose source is owned here."""

    def update_features(self, ntype: str, ids, features: Dict[str, np.ndarray]) -> None:
        """Overwrite features of ``ntype`` nodes owned here."""


def protocol_methods() -> list:
    """Names of the methods of :class:`PartitionBackend` (for conformance checks)."""
    return sorted(n for n, v in vars(PartitionBackend).items() if callable(v) and not n.startswith("_"))
