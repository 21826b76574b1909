"""GraphService: the one interface between storage and everything above it.

Two implementations share it: :class:`~graphplat.storage.local.LocalGraph` (all partitions
in this process, the embedded default) and ``RemoteGraph`` (partition servers over gRPC).
Samplers, loaders, trainers and exporters only ever see a ``GraphService``.

Conventions:

* Node ids are the user's arbitrary int64 ids, per node type. Arrays in, arrays out: every
  call takes and returns numpy arrays for a whole batch. A node type declared with
  ``id_type: string`` has int64 node ids 0, 1, ... that the store's dictionary maps to
  the user's strings: :meth:`GraphService.to_internal` / :meth:`GraphService.to_external`
  translate at the boundary (seeds in, ids out), every other call takes the int64 ids.
* Edge ids are int64 and global per edge type: ``(partition << EID_PARTITION_SHIFT) |
  index``, where ``partition`` owns the edge (its destination's partition) and ``index``
  counts that partition's edges of the type. Online writes extend the same space.
* Randomness is a pure function of ``(seed, hop, position)``: a batch split across
  partitions is sampled with each seed's original ``position``, so the answer never depends
  on the partitioning, the replica or the thread count.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Dict, Iterator, Optional, Sequence, Tuple

import numpy as np

from graphplat.schema import GraphSchema
from graphplat.typing import EdgeTypeKey

EID_PARTITION_SHIFT = 40
DIRECTIONS = ("in", "out")


def as_ids(values, name: str = "ids") -> np.ndarray:
    """A 1-D int64 array of ids; ValueError naming ``name`` for anything else."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of int64 ids, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer ids, got dtype {arr.dtype}")
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 8:
        big = np.flatnonzero(arr > np.iinfo(np.int64).max)
        if len(big):  # would wrap to a negative int64 and name another node
            raise ValueError(f"{name}: {len(big)} id(s) do not fit in int64, e.g. {int(arr[big[0]])} "
                             f"at position {int(big[0])}; ids must be < 2^63")
    return arr.astype(np.int64, copy=False)


@dataclass
class NeighborSample:
    """Result of :meth:`GraphService.sample_neighbors` for a batch of seeds.

    ``counts[i]`` neighbors belong to ``seeds[i]``; ``neighbors`` (user ids of the other
    endpoint's node type) and ``eids`` are grouped by seed in seed order.
    """

    counts: np.ndarray
    neighbors: np.ndarray
    eids: np.ndarray

    def __post_init__(self) -> None:
        if len(self.neighbors) != len(self.eids) or int(self.counts.sum()) != len(self.neighbors):
            raise ValueError("inconsistent NeighborSample: counts, neighbors and eids disagree")

    @staticmethod
    def empty(num_seeds: int) -> "NeighborSample":
        """A sample with no neighbors for ``num_seeds`` seeds."""
        z = np.zeros(0, dtype=np.int64)
        return NeighborSample(np.zeros(num_seeds, dtype=np.int64), z, z.copy())


class GraphService(abc.ABC):
    """Batch access to a (possibly partitioned) heterogeneous graph."""

    @property
    @abc.abstractmethod
    def schema(self) -> GraphSchema:
        """The graph's schema."""

    @abc.abstractmethod
    def num_nodes(self, ntype: str) -> int:
        """Number of nodes of ``ntype`` (including online additions)."""

    @abc.abstractmethod
    def num_edges(self, etype: EdgeTypeKey) -> int:
        """Number of edges of ``etype`` (including online additions)."""

    @abc.abstractmethod
    def sample_neighbors(self, etype: EdgeTypeKey, seeds: np.ndarray, fanout: int, *,
                         strategy: str = "uniform", replace: bool = False,
                         direction: str = "in", seed: int = 0, hop: int = 0,
                         positions: Optional[np.ndarray] = None) -> NeighborSample:
        """Sample neighbors of ``seeds`` along ``etype``.

        direction "in": seeds are destinations, neighbors their sources (what message
        passing needs); "out": seeds are sources (needs ``out_adjacency`` in the schema).
        fanout: neighbors per seed, -1 for all of them, 0 for none (DGL's rule: with the
        other arguments still checked, every seed gets 0 neighbors; the C++ core itself
        rejects 0).
        strategy: uniform | weighted | topk | full (see ``graphplat._core``).
        Unknown seed ids raise IndexError naming them.
        """

    @abc.abstractmethod
    def node_features(self, ntype: str, ids: np.ndarray, names: Optional[Sequence[str]] = None,
                      *, out: Optional[Dict[str, np.ndarray]] = None) -> Dict[str, np.ndarray]:
        """Features of nodes ``ids`` (all features when ``names`` is None), one array each,
        rows in the order of ``ids``. ``out`` (optional, name -> array of shape
        ``(len(ids),) + feature shape``, the feature's dtype, C-contiguous, writable) receives
        the rows instead of new arrays (a loader recycles its buffers this way)."""

    @abc.abstractmethod
    def edge_features(self, etype: EdgeTypeKey, eids: np.ndarray,
                      names: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
        """Features of edges ``eids`` (``weight`` is one when the type is weighted)."""

    @abc.abstractmethod
    def degrees(self, etype: EdgeTypeKey, ids: np.ndarray, direction: str = "in") -> np.ndarray:
        """int64 in- or out-degrees of ``ids`` along ``etype``."""

    @abc.abstractmethod
    def lookup(self, ntype: str, ids: np.ndarray) -> np.ndarray:
        """bool array: whether each id is a node of ``ntype``."""

    @abc.abstractmethod
    def node_ids(self, ntype: str) -> np.ndarray:
        """All node ids of ``ntype``, partition by partition."""

    def iter_nodes(self, ntype: str, batch_size: int, *, shuffle: bool = False,
                   seed: int = 0) -> Iterator[np.ndarray]:
        """Batches of node ids of ``ntype`` (the last may be short); shuffled by ``seed``."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        ids = self.node_ids(ntype)
        if shuffle:
            ids = ids[np.random.default_rng(seed).permutation(len(ids))]
        for start in range(0, len(ids), batch_size):
            yield ids[start:start + batch_size]

    @abc.abstractmethod
    def negative_sample(self, etype: EdgeTypeKey, src: np.ndarray, k: int, *,
                        strategy: str = "uniform", exclude_existing: bool = True,
                        seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
        """``k`` destinations per source that are (with ``exclude_existing``) not edges.
        strategy: uniform | degree (P ~ in-degree^0.75). Returns (src, dst) user ids."""

    @abc.abstractmethod
    def random_walk(self, metapath: Sequence[EdgeTypeKey], starts: np.ndarray, *,
                    seed: int = 0) -> np.ndarray:
        """Walks following the out-edges of each edge type in turn (needs ``out_adjacency``
        storage). int64 (len(starts), len(metapath)+1) user ids, -1 after a dead end."""

    @abc.abstractmethod
    def add_nodes(self, ntype: str, ids: np.ndarray,
                  features: Optional[Dict[str, np.ndarray]] = None) -> np.ndarray:
        """Add new nodes (durable before returning). Existing ids raise ValueError. A
        ``id_type: string`` type takes the user's strings too (new ones get ids as by
        ``to_internal(..., create=True)``). Returns the int64 ids of the added nodes."""

    @abc.abstractmethod
    def add_edges(self, etype: EdgeTypeKey, src: np.ndarray, dst: np.ndarray,
                  weights: Optional[np.ndarray] = None) -> np.ndarray:
        """Add edges between existing nodes (durable before returning, visible to the next
        sampling call). An ``undirected`` type also stores ``dst -> src``, a type with a
        reverse type (``EdgeType.reverse``, or a derived reverse type's forward one) stores
        ``dst -> src`` there too. Returns the edge ids of the edges as given."""

    @abc.abstractmethod
    def update_features(self, ntype: str, ids: np.ndarray,
                        features: Dict[str, np.ndarray]) -> None:
        """Overwrite features of existing nodes (durable before returning)."""

    @property
    def partitions_over_network(self) -> int:
        """How many partitions this graph answers over the network right now (0 for a graph
        held in this process). Loaders overlap more batches when they wait on servers."""
        return 0

    def expect_multihop_sampling(self) -> None:
        """Hint that this client will sample multi-hop neighborhoods repeatedly (called by
        ``NeighborSampler.sample``): a RemoteGraph starts its lazy topology replicas
        (``topology_replica="auto"``). Nothing for a graph held in this process."""

    def wait_for_topology(self, timeout: float = 60.0) -> bool:
        """Start the lazy topology replicas (see :meth:`expect_multihop_sampling`) and wait
        up to ``timeout`` seconds until each is settled (has a fresh copy or declined one as
        too large). Returns whether all settled; True at once for an in-process graph."""
        return True

    def id_dictionary(self, ntype: str):
        """The :class:`~graphplat.storage.id_dictionary.IdDictionary` of a string-id node
        type (ValueError for an int64-id type)."""
        raise ValueError(f"node type {ntype!r} has no string ids")

    def to_internal(self, ntype: str, ids, *, create: bool = False) -> np.ndarray:
        """int64 node ids of the user's ids ``ids`` of ``ntype``: the ids themselves for an
        int64-id type, the dictionary's for a ``id_type: string`` type (IndexError naming
        unknown strings; with ``create`` unknown strings get new ids, durably, for
        :meth:`add_nodes`)."""
        nt = self.schema.node_type(ntype)
        if nt.id_type != "string":
            return as_ids(ids)
        d = self.id_dictionary(nt.name)
        return d.get_or_add(ids) if create else d.to_internal(ids)

    def to_external(self, ntype: str, ids) -> np.ndarray:
        """The user's ids of int64 node ids ``ids`` of ``ntype``: the ids themselves (int64)
        for an int64-id type, the strings (object array) for a ``id_type: string`` type."""
        nt = self.schema.node_type(ntype)
        if nt.id_type != "string":
            return np.asarray(ids, dtype=np.int64)
        return self.id_dictionary(nt.name).to_external(ids)

    def close(self) -> None:
        """Release resources (connections, files)."""

    def __enter__(self) -> "GraphService":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
