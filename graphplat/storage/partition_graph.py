"""One partition loaded into the C++ core: what a graph server holds and answers from.

Bulk adjacency comes from the store as a CSR per edge type and direction; online writes go
to a per-adjacency delta that the core samples together with the bulk rows
(``sample_neighbors(..., delta=)``), so a write is visible to the very next call.
"""
from __future__ import annotations

import threading
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from graphplat import _core
from graphplat.schema import GraphSchema
from graphplat.service import EID_PARTITION_SHIFT, NeighborSample, as_ids
from graphplat.storage.partition_data import AdjacencyData, PartitionData
from graphplat.storage.wire_dtype import applies
from graphplat.storage.wire_dtype import check as wire_dtype_check
from graphplat.typing import Canonical

EID_INDEX_MASK = (1 << EID_PARTITION_SHIFT) - 1


def check_edge_arrays(src: np.ndarray, dst: np.ndarray,
                      weights: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """Validate an edge batch: as many sources as destinations, and weights (if given)
    finite, >= 0 and one per edge. Returns the weights as float32 (or None)."""
    if len(src) != len(dst):
        raise ValueError(f"{len(src)} sources but {len(dst)} destinations")
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float32)
        if weights.shape != src.shape or not np.all(np.isfinite(weights)) or (weights < 0).any():
            raise ValueError("weights must be finite, >= 0 and one per edge")
    return weights


class GrowableArray:
    """Rows that can be appended to in amortized O(1); ``array`` is a view of the rows."""

    def __init__(self, initial: np.ndarray):
        self._buf = initial
        self._n = len(initial)

    @property
    def array(self) -> np.ndarray:
        return self._buf[: self._n]

    def __len__(self) -> int:
        return self._n

    def append(self, rows: np.ndarray) -> None:
        """Append rows (same trailing shape and dtype)."""
        need = self._n + len(rows)
        if need > len(self._buf) or not self._buf.flags.writeable:
            cap = max(need, 2 * len(self._buf), 16)
            buf = np.empty((cap,) + self._buf.shape[1:], dtype=self._buf.dtype)
            buf[: self._n] = self._buf[: self._n]
            self._buf = buf
        self._buf[self._n:need] = rows
        self._n = need

    def assign(self, index: np.ndarray, rows: np.ndarray) -> None:
        """Overwrite rows at ``index``."""
        if not self._buf.flags.writeable:
            self._buf = self._buf.copy()
        self._buf[index] = rows


class Adjacency:
    """A CSR over a partition's own nodes (rows) plus its online delta; columns are halo
    indices, mapped to user ids by ``halo``."""

    def __init__(self, data: AdjacencyData):
        self.halo = GrowableArray(np.asarray(data.halo_ids, dtype=np.int64))
        self.halo_map = _core.IdMap(data.halo_ids)
        self.bulk = _core.CSR(data.indptr, data.indices, num_cols=len(data.halo_ids),
                              weights=data.weights, eids=data.eids)
        self.weighted = data.weights is not None
        self.num_rows = data.num_rows
        self._d_rows = GrowableArray(np.zeros(0, np.int64))
        self._d_cols = GrowableArray(np.zeros(0, np.int64))
        self._d_eids = GrowableArray(np.zeros(0, np.int64))
        self._d_weights = GrowableArray(np.zeros(0, np.float32))
        self._delta: Optional[_core.CSR] = None
        self._delta_stale = False
        self._row_space: Optional[_core.CSR] = None

    def row_space(self, idmap: "_core.IdMap") -> "_core.CSR":
        """The bulk CSR with columns mapped from halo indices to rows of ``idmap`` (for a
        square edge type whose every endpoint is held here); built once, then cached."""
        if self._row_space is None:
            halo_rows = idmap.lookup(self.halo.array[: self.bulk.num_cols])
            indices = _core.take_rows(halo_rows, self.bulk.indices)
            indices.setflags(write=False)
            self._row_space = _core.CSR(self.bulk.indptr, indices, num_cols=self.num_rows,
                                        weights=self.bulk.weights, eids=self.bulk.eids)
        return self._row_space

    @property
    def delta(self) -> Optional[_core.CSR]:
        """The online additions as a CSR over the same rows, rebuilt lazily: a burst of
        writes costs one rebuild at the next read, not one per write."""
        if self._delta_stale:
            self._rebuild_delta()
        return self._delta

    @property
    def delta_size(self) -> int:
        return len(self._d_rows)

    def grow_rows(self, num_rows: int) -> None:
        """Extend to ``num_rows`` rows (new nodes start without edges)."""
        if num_rows <= self.num_rows:
            return
        extra = np.full(num_rows - self.num_rows, self.bulk.nnz, dtype=np.int64)
        indptr = np.concatenate([self.bulk.indptr, extra])
        self.bulk = _core.CSR(indptr, self.bulk.indices, num_cols=self.bulk.num_cols,
                              weights=self.bulk.weights, eids=self.bulk.eids)
        self.num_rows = num_rows
        self._delta_stale = True
        self._row_space = None

    def cols_of(self, other_ids: np.ndarray, create: bool) -> np.ndarray:
        """Halo column of each user id (-1 when unknown, unless ``create`` adds it)."""
        cols = self.halo_map.lookup(other_ids, missing="ignore")
        if create and (cols < 0).any():
            new = np.unique(other_ids[cols < 0])
            self.halo_map.add(new)
            self.halo.append(new)
            cols = self.halo_map.lookup(other_ids)
        return cols

    def add(self, rows: np.ndarray, other_ids: np.ndarray, eids: np.ndarray,
            weights: Optional[np.ndarray]) -> None:
        """Append edges (local rows, other endpoint user ids, edge ids, weights)."""
        cols = self.cols_of(other_ids, create=True)
        self._d_rows.append(rows)
        self._d_cols.append(cols)
        self._d_eids.append(eids)
        if self.weighted:
            self._d_weights.append(np.ones(len(rows), np.float32) if weights is None
                                   else weights.astype(np.float32))
        self._delta_stale = True

    def _rebuild_delta(self) -> None:
        self._delta_stale = False
        if self.delta_size == 0:
            self._delta = None
            return
        rows = self._d_rows.array
        order = np.argsort(rows, kind="stable")
        indptr = np.zeros(self.num_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=self.num_rows), out=indptr[1:])
        self._delta = _core.CSR(indptr, self._d_cols.array[order], num_cols=len(self.halo),
                               weights=self._d_weights.array[order] if self.weighted else None,
                               eids=self._d_eids.array[order])

    def sample(self, rows: np.ndarray, fanout: int, strategy: str, replace: bool, seed: int,
               hop: int, positions: Optional[np.ndarray]) -> NeighborSample:
        """Sample the union of bulk and delta rows; neighbors come back as user ids.
        Fanout 0 samples nothing (DGL's rule, handy in per-type fanout dicts): every seed
        gets 0 neighbors. The core rejects 0, so it is answered here, after the core has
        checked the other arguments on an empty seed list."""
        if isinstance(fanout, (int, np.integer)) and not isinstance(fanout, bool) and fanout == 0:
            _core.sample_neighbors(self.bulk, rows[:0], -1, strategy=strategy, replace=replace, seed=seed,
                                   hop=hop)
            return NeighborSample.empty(len(rows))
        counts, cols, eids = _core.sample_neighbors(
            self.bulk, rows, fanout, strategy=strategy, replace=replace, seed=seed, hop=hop,
            positions=positions, delta=self.delta)
        return NeighborSample(counts, _core.take_rows(self.halo.array, cols), eids)

    def degrees(self, rows: np.ndarray) -> np.ndarray:
        deg = self.bulk.degrees(rows)
        if self.delta is not None:
            deg = deg + self.delta.degrees(rows)
        return deg

    def has_edges(self, rows: np.ndarray, other_ids: np.ndarray) -> np.ndarray:
        cols = self.cols_of(other_ids, create=False)
        known = cols >= 0
        out = np.zeros(len(rows), dtype=bool)
        if known.any():
            r, c = rows[known], cols[known]
            hit = self.bulk.has_edges(r, np.minimum(c, self.bulk.num_cols - 1)) & (c < self.bulk.num_cols)
            if self.delta is not None:
                hit |= self.delta.has_edges(r, c)
            out[known] = hit
        return out

    def to_data(self) -> AdjacencyData:
        """Bulk and delta folded into one AdjacencyData (for compaction)."""
        b = self.bulk
        rows = np.concatenate([np.repeat(np.arange(self.num_rows), np.diff(b.indptr)), self._d_rows.array])
        cols = np.concatenate([b.indices, self._d_cols.array])
        eids = np.concatenate([b.eids, self._d_eids.array])
        w = np.concatenate([b.weights, self._d_weights.array]) if self.weighted else None
        order = np.lexsort((cols, rows))
        indptr = np.zeros(self.num_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=self.num_rows), out=indptr[1:])
        return AdjacencyData(indptr, cols[order], self.halo.array.copy(), eids[order],
                             None if w is None else w[order])


class PartitionGraph:
    """Partition ``partition`` of a graph, answering per-partition calls on user ids.

    Calls take ids this partition owns (the router sends each id to its owner) and raise
    IndexError naming ids it does not hold. Writes are serialized by a lock; reads see
    every completed write. Implements :class:`~graphplat.storage.backend.PartitionBackend`.
    """

    #: in memory: no dedupe table, no durability, no request limit
    capabilities = frozenset()

    def __init__(self, data: PartitionData):
        self.schema: GraphSchema = data.schema
        self.partition = data.partition
        self.num_partitions = data.num_partitions
        self._lock = threading.RLock()
        self.idmaps: Dict[str, _core.IdMap] = {}
        self.ids: Dict[str, GrowableArray] = {}
        self.features: Dict[str, Dict[str, GrowableArray]] = {}
        for nt in self.schema.node_types:
            ids = np.asarray(data.node_ids.get(nt.name, np.zeros(0, np.int64)), dtype=np.int64)
            self.idmaps[nt.name] = _core.IdMap(ids)
            self.ids[nt.name] = GrowableArray(ids)
            given = data.node_features.get(nt.name, {})
            self.features[nt.name] = {
                f.name: GrowableArray(np.asarray(given[f.name]) if f.name in given
                                      else np.zeros((len(ids),) + f.shape, f.numpy_dtype))
                for f in nt.features}
        self.in_adj: Dict[Canonical, Adjacency] = {}
        self.out_adj: Dict[Canonical, Adjacency] = {}
        self.edge_feats: Dict[Canonical, Dict[str, GrowableArray]] = {}
        self.owned_edges: Dict[Canonical, int] = {}
        for et in self.schema.edge_types:
            key = et.canonical
            self.in_adj[key] = Adjacency(data.in_adj[key] if key in data.in_adj
                                         else _empty_adjacency(len(self.ids[et.dst]), et.weighted))
            if et.out_adjacency:
                self.out_adj[key] = Adjacency(data.out_adj[key] if key in data.out_adj
                                              else _empty_adjacency(len(self.ids[et.src]), et.weighted))
            self.owned_edges[key] = self.in_adj[key].bulk.nnz
            given = data.edge_features.get(key, {})
            self.edge_feats[key] = {
                f.name: GrowableArray(np.asarray(given[f.name]) if f.name in given
                                      else np.zeros((self.owned_edges[key],) + f.shape, f.numpy_dtype))
                for f in et.features}

    # ------------------------------------------------------------------ lookups
    def rows_of(self, ntype: str, ids: np.ndarray) -> np.ndarray:
        """Local row of every id; IndexError naming ids this partition does not hold."""
        try:
            return self.idmaps[ntype].lookup(ids)
        except IndexError as e:
            raise IndexError(f"{ntype!r} nodes not in partition {self.partition}: {e}") from None

    def lookup(self, ntype: str, ids: np.ndarray) -> np.ndarray:
        return self.idmaps[self.schema.node_type(ntype).name].contains(as_ids(ids))

    def node_ids(self, ntype: str) -> np.ndarray:
        return self.ids[self.schema.node_type(ntype).name].array.copy()

    def num_nodes(self, ntype: str) -> int:
        return len(self.ids[self.schema.node_type(ntype).name])

    def num_edges(self, etype) -> int:
        return self.owned_edges[self.schema.edge_type(etype).canonical]

    def _adjacency(self, etype, direction: str) -> Tuple[Adjacency, str]:
        et = self.schema.edge_type(etype)
        if direction == "in":
            return self.in_adj[et.canonical], et.dst
        if direction == "out":
            if et.canonical not in self.out_adj:
                raise ValueError(f"edge type {et.canonical_str} is not stored with out_adjacency: true, "
                                 "so it cannot be traversed in direction 'out'")
            return self.out_adj[et.canonical], et.src
        raise ValueError(f"direction must be 'in' or 'out', got {direction!r}")

    # ------------------------------------------------------------------ reads
    def sample_neighbors(self, etype, seeds, fanout: int, *, strategy: str = "uniform",
                         replace: bool = False, direction: str = "in", seed: int = 0,
                         hop: int = 0, positions: Optional[np.ndarray] = None) -> NeighborSample:
        """Sample along ``etype`` for seeds owned here (see GraphService.sample_neighbors)."""
        adj, ntype = self._adjacency(etype, direction)
        rows = self.rows_of(ntype, as_ids(seeds, "seeds"))
        with self._lock:
            return adj.sample(rows, fanout, strategy, replace, seed, hop, positions)

    def sample_multihop(self, etype, seeds, fanouts: Sequence[int], *, strategy: str = "uniform",
                        replace: bool = False, seed: int = 0) -> Optional[list]:
        """All hops of in-neighbor sampling of a square edge type in one core call, when this
        partition holds the whole graph and no online writes are pending; else None.

        Same answer as hop-by-hop ``sample_neighbors`` with ``hop=h`` and positions in the
        frontier. Returns ``[(nodes, num_dst, src, dst, eids), ...]`` (user ids), hop 0 first.
        """
        et = self.schema.edge_type(etype)
        if self.num_partitions != 1 or et.src != et.dst:
            return None
        with self._lock:
            adj = self.in_adj[et.canonical]
            if adj.delta_size:
                return None
            csr = adj.row_space(self.idmaps[et.dst])
            rows = self.rows_of(et.dst, as_ids(seeds, "seeds"))
            identity = self.idmaps[et.dst].is_identity  # rows are the user ids
            ids = self.ids[et.dst].array
            hops = _core.sample_multihop(csr, rows, list(fanouts), strategy=strategy, replace=replace,
                                         seed=seed)
            return [(h.nodes if identity else _core.take_rows(ids, h.nodes), h.num_dst, h.src, h.dst, h.eids)
                    for h in hops]

    def degrees(self, etype, ids, direction: str = "in") -> np.ndarray:
        adj, ntype = self._adjacency(etype, direction)
        rows = self.rows_of(ntype, as_ids(ids))
        with self._lock:
            return adj.degrees(rows)

    def has_edges(self, etype, src, dst) -> np.ndarray:
        """Whether (src[i], dst[i]) is an edge; dst must be owned here."""
        adj, ntype = self._adjacency(etype, "in")
        rows = self.rows_of(ntype, as_ids(dst, "dst"))
        with self._lock:
            return adj.has_edges(rows, as_ids(src, "src"))

    def node_features(self, ntype: str, ids, names: Optional[Sequence[str]] = None, *,
                      out: Optional[Dict[str, np.ndarray]] = None, out_rows: Optional[np.ndarray] = None,
                      wire_dtype: Optional[str] = None) -> Dict[str, np.ndarray]:
        """Rows of the features ``names`` of ``ids`` (into ``out`` when given, at rows
        ``out_rows`` of it when given; float32 ones in ``wire_dtype`` when given; see
        GraphService.node_features)."""
        nt = self.schema.node_type(ntype)
        names = list(names) if names is not None else nt.feature_names
        for n in names:
            nt.feature(n)  # ValueError naming unknown features
        wire_dtype = wire_dtype_check(wire_dtype)
        rows = self.rows_of(nt.name, as_ids(ids))
        out = out or {}
        got = {}
        with self._lock:
            for n in names:
                src = self.features[nt.name][n].array
                if applies(src.dtype, wire_dtype):  # gathered and rounded in one pass
                    got[n] = _core.encode_half(src, wire_dtype, rows=rows, out=out.get(n), out_rows=out_rows)
                else:
                    got[n] = _core.take_rows(src, rows, out=out.get(n), out_rows=out_rows)
        return got

    def edge_features(self, etype, eids, names: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
        et = self.schema.edge_type(etype)
        eids = as_ids(eids, "eids")
        part = eids >> EID_PARTITION_SHIFT
        index = eids & EID_INDEX_MASK
        if (part != self.partition).any() or (index >= self.owned_edges[et.canonical]).any():
            bad = eids[(part != self.partition) | (index >= self.owned_edges[et.canonical])][:5]
            raise IndexError(f"edge ids {bad.tolist()} of {et.canonical_str} are not in partition {self.partition}")
        if names is None:
            names = (["weight"] if et.weighted else []) + et.feature_names
        out = {}
        with self._lock:
            for n in names:
                if n == "weight" and et.weighted:
                    out[n] = self._edge_weights(et.canonical, eids)
                else:
                    et.feature(n)
                    out[n] = self.edge_feats[et.canonical][n].array[index]
        return out

    def _edge_weights(self, key: Canonical, eids: np.ndarray) -> np.ndarray:
        adj = self.in_adj[key]
        all_eids = np.concatenate([adj.bulk.eids, adj._d_eids.array])
        all_w = np.concatenate([adj.bulk.weights, adj._d_weights.array])
        order = np.argsort(all_eids)
        return all_w[order][np.searchsorted(all_eids[order], eids)]

    # ------------------------------------------------------------------ writes
    def add_nodes(self, ntype: str, ids, features: Optional[Dict[str, np.ndarray]] = None) -> None:
        """Add nodes owned here; features default to zeros. ValueError on duplicates."""
        nt = self.schema.node_type(ntype)
        ids = as_ids(ids)
        feats = nt.coerce_features(features or {}, len(ids), require_all=False)
        with self._lock:
            self.idmaps[nt.name].add(ids)  # raises (adding nothing) on present/repeated ids
            self.ids[nt.name].append(ids)
            for f in nt.features:
                self.features[nt.name][f.name].append(
                    feats[f.name] if f.name in feats else np.zeros((len(ids),) + f.shape, f.numpy_dtype))
            n = len(self.ids[nt.name])
            for et in self.schema.edge_types:
                if et.dst == nt.name:
                    self.in_adj[et.canonical].grow_rows(n)
                if et.src == nt.name and et.canonical in self.out_adj:
                    self.out_adj[et.canonical].grow_rows(n)

    def max_rows_per_call(self, row_bytes: int) -> Optional[int]:
        """None: one call answers any number of rows."""
        return None

    def add_edges_in(self, etype, src, dst, weights: Optional[np.ndarray] = None,
                     request_id: str = "") -> np.ndarray:
        """Add edges whose destination is owned here; returns their new edge ids.
        ``request_id`` is ignored (no dedupe table: capabilities lack "dedupes_writes")."""
        et = self.schema.edge_type(etype)
        src, dst = as_ids(src, "src"), as_ids(dst, "dst")
        with self._lock:
            rows = self.rows_of(et.dst, dst)
            start = self.owned_edges[et.canonical]
            index = np.arange(start, start + len(dst), dtype=np.int64)
            eids = (np.int64(self.partition) << EID_PARTITION_SHIFT) | index
            self.in_adj[et.canonical].add(rows, src, eids, weights)
            self.owned_edges[et.canonical] = start + len(dst)
            for f in et.features:
                self.edge_feats[et.canonical][f.name].append(np.zeros((len(dst),) + f.shape, f.numpy_dtype))
            return eids

    def add_edges_out(self, etype, src, dst, eids, weights: Optional[np.ndarray] = None,
                      request_id: str = "") -> None:
        """Record the reverse direction of edges whose source is owned here (``request_id``
        ignored, as in :meth:`add_edges_in`)."""
        et = self.schema.edge_type(etype)
        adj, ntype = self._adjacency(et.canonical, "out")
        with self._lock:
            rows = self.rows_of(ntype, as_ids(src, "src"))
            adj.add(rows, as_ids(dst, "dst"), as_ids(eids, "eids"), weights)

    def update_features(self, ntype: str, ids, features: Dict[str, np.ndarray]) -> None:
        """Overwrite features of nodes owned here."""
        nt = self.schema.node_type(ntype)
        ids = as_ids(ids)
        feats = nt.coerce_features(features, len(ids), require_all=False)
        with self._lock:
            rows = self.rows_of(nt.name, ids)
            for name, arr in feats.items():
                self.features[nt.name][name].assign(rows, arr)

    def to_data(self) -> PartitionData:
        """A snapshot with every online write folded in (what compaction persists)."""
        with self._lock:
            data = PartitionData(self.schema, self.partition, self.num_partitions)
            for nt in self.schema.node_types:
                data.node_ids[nt.name] = self.ids[nt.name].array.copy()
                data.node_features[nt.name] = {k: g.array.copy() for k, g in self.features[nt.name].items()}
            for key, adj in self.in_adj.items():
                data.in_adj[key] = adj.to_data()
                data.edge_features[key] = {k: g.array.copy() for k, g in self.edge_feats[key].items()}
            for key, adj in self.out_adj.items():
                data.out_adj[key] = adj.to_data()
            return data


def _empty_adjacency(num_rows: int, weighted: bool) -> AdjacencyData:
    z = np.zeros(0, dtype=np.int64)
    return AdjacencyData(np.zeros(num_rows + 1, np.int64), z, z.copy(), z.copy(),
                         np.zeros(0, np.float32) if weighted else None)
