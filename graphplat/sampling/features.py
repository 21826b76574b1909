"""Node feature fetch with an optional client-side cache of hot nodes.

Against a RemoteGraph every feature row crosses the network; the nodes a neighbor sampler
reaches most often are the high-degree ones, so caching the top nodes by degree (PaGraph,
AliGraph's cache) removes most of that traffic. Against a LocalGraph the cache is pointless
and off by default.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from graphplat import _core
from graphplat.buffers import pool_of, put_rows
from graphplat.service import GraphService
from graphplat.storage import wire_dtype

log = logging.getLogger(__name__)


@dataclass
class CacheStats:
    """Feature-fetch counters: rows asked for, rows served from the cache."""

    rows: int = 0
    hits: int = 0

    @property
    def hit_rate(self) -> float:
        """Fraction of rows served from the cache (0 when nothing was fetched)."""
        return self.hits / self.rows if self.rows else 0.0


class _TypeCache:
    def __init__(self, ids: np.ndarray, features: Dict[str, np.ndarray]):
        self.index = _core.IdMap(ids)
        self.features = features


class FeatureFetcher:
    """Fetches node features of a GraphService, caching the hottest nodes.

    Args:
        graph: the GraphService.
        names: ntype -> feature names to fetch (None: every float32 feature of every type).
        cache_mb: cache budget in MiB over all types (0: no cache). Nodes are ranked by their
            degree summed over the edge types that end at them (for graphs stored with
            reverse edge types this is how often a sampler reaches them) and cached
            greedily, highest first, with each type's share proportional to its node count.
        feature_dtype: None (exact), "float16" or "bfloat16": float32 features travel from
            the graph and sit in the cache in that format (half the bytes, twice the cached
            rows), and are returned as float32 values rounded to it (errors: see
            :mod:`graphplat.storage.wire_dtype`; the same on LocalGraph and RemoteGraph).
    """

    def __init__(self, graph: GraphService, names: Optional[Mapping[str, Sequence[str]]] = None,
                 cache_mb: float = 0.0, feature_dtype: Optional[str] = None):
        self.graph = graph
        self.feature_dtype = wire_dtype.check(feature_dtype)
        schema = graph.schema
        if names is None:
            names = {nt.name: [f.name for f in nt.features if f.dtype == "float32"]
                     for nt in schema.node_types}
        self.names: Dict[str, List[str]] = {}
        for nt, ns in names.items():
            ntype = schema.node_type(nt)
            for n in ns:
                ntype.feature(n)  # ValueError naming an unknown feature
            if ns:
                self.names[ntype.name] = list(ns)
        if cache_mb < 0:
            raise ValueError(f"cache_mb must be >= 0, got {cache_mb}")
        self.stats = CacheStats()
        self.buffers = pool_of(graph)  # recycled output rows, shared by the graph's loaders
        self._lock = threading.Lock()
        self._caches: Dict[str, _TypeCache] = {}
        if cache_mb > 0:
            self._build_cache(cache_mb)

    def _stored_dtype(self, spec) -> np.dtype:
        """The dtype ``spec``'s rows travel and are cached in."""
        return wire_dtype.carrier_dtype(spec.numpy_dtype, self.feature_dtype)

    def _row_bytes(self, ntype: str) -> int:
        nt = self.graph.schema.node_type(ntype)
        return sum(nt.feature(n).width * self._stored_dtype(nt.feature(n)).itemsize for n in self.names[ntype])

    def _get(self, ntype: str, ids: np.ndarray, names: List[str], out=None) -> Dict[str, np.ndarray]:
        """Rows from the graph, in the stored dtypes."""
        kw = {"wire_dtype": self.feature_dtype} if self.feature_dtype else {}
        return self.graph.node_features(ntype, ids, names, out=out, **kw)

    def _build_cache(self, cache_mb: float) -> None:
        schema = self.graph.schema
        budget = cache_mb * (1 << 20)
        counts = {nt: self.graph.num_nodes(nt) for nt in self.names}
        total = sum(counts.values()) or 1
        for nt, names in self.names.items():
            ids = self.graph.node_ids(nt)
            if len(ids) == 0:
                continue
            degree = np.zeros(len(ids), dtype=np.int64)
            for et in schema.edge_types_to(nt):
                degree += self.graph.degrees(et.canonical, ids, "in")
            rows = int(budget * counts[nt] / total) // max(self._row_bytes(nt), 1)
            rows = min(rows, len(ids))
            if rows <= 0:
                continue
            hot = ids[np.argsort(-degree, kind="stable")[:rows]]
            self._caches[nt] = _TypeCache(hot, self._get(nt, hot, names))
            log.info("feature cache: %d of %d %r nodes (%.1f MiB)", rows, len(ids), nt,
                     rows * self._row_bytes(nt) / (1 << 20))

    def cached_ids(self, ntype: str) -> np.ndarray:
        """Ids of ``ntype`` held in the cache (empty without a cache)."""
        c = self._caches.get(ntype)
        return c.index.ids() if c is not None else np.zeros(0, np.int64)

    def fetch(self, ntype: str, ids: np.ndarray) -> Dict[str, np.ndarray]:
        """Features ``name -> (len(ids), ...)`` of ``ids`` of ``ntype`` (empty dict when no
        feature of that type is fetched). Unknown ids raise IndexError."""
        names = self.names.get(ntype)
        if not names:
            return {}
        cache = self._caches.get(ntype)
        nt = self.graph.schema.node_type(ntype)
        specs = [nt.feature(n) for n in names]
        if cache is None:
            out = self._get(ntype, ids, names, out={
                s.name: self.buffers.empty((len(ids),) + s.shape, self._stored_dtype(s)) for s in specs})
            hits = 0
        else:
            pos = cache.index.lookup(ids, missing="ignore")
            hit = pos >= 0
            hit_at = np.flatnonzero(hit)
            hits = len(hit_at)
            miss = np.flatnonzero(~hit)
            # misses land in recycled buffers too (fresh tens of MB cost a page fault per 4 KiB)
            fetched = self._get(ntype, ids[miss], names, out={
                s.name: self.buffers.empty((len(miss),) + s.shape, self._stored_dtype(s)) for s in specs}) \
                if len(miss) else {}
            out = {}
            for n in names:
                # Parallel GIL-free row copies (numpy's masked/fancy assignment is several
                # times slower on wide rows); hits go from the cache straight into place.
                src = cache.features[n]
                arr = self.buffers.empty((len(ids),) + src.shape[1:], src.dtype)
                _core.take_rows(src, pos[hit_at], out=arr, out_rows=hit_at)
                if len(miss):
                    put_rows(fetched[n], miss, arr)
                out[n] = arr
        if self.feature_dtype:
            out = {s.name: wire_dtype.decode(out[s.name], self.feature_dtype,
                                             self.buffers.empty(out[s.name].shape, np.float32))
                   if wire_dtype.applies(s.numpy_dtype, self.feature_dtype) else out[s.name] for s in specs}
        with self._lock:
            self.stats.rows += len(ids)
            self.stats.hits += hits
        return out
