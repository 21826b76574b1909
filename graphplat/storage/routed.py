"""GraphService over partitions: splits every batch by owning partition, calls each
partition's backend, and reassembles answers in the caller's order.

The backends implement :class:`~graphplat.storage.backend.PartitionBackend`: PartitionGraph
or DurablePartition in this process (LocalGraph), PartitionClient over gRPC (RemoteGraph);
this file is the only routing code either uses.
"""
from __future__ import annotations

import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from graphplat import _core
from graphplat.buffers import put_rows
from graphplat.schema import GraphSchema
from graphplat.service import EID_PARTITION_SHIFT, GraphService, NeighborSample, as_ids
from graphplat.storage.backend import DEDUPES_WRITES, PartitionBackend
from graphplat.storage.durable import DurablePartition
from graphplat.storage.partition_book import PartitionBook
from graphplat.storage.partition_graph import PartitionGraph, check_edge_arrays
from graphplat.storage.shared import SharedPartition, read_confirmed
from graphplat.storage.stitched import StitchedCSR, partition_version
from graphplat.storage.topology_replica import TopologyReplica, wake_lazy
from graphplat.storage.wire_dtype import carrier_dtype
from graphplat.storage.wire_dtype import check as wire_dtype_check


def scatter_samples(num_seeds: int, parts: List[Tuple[np.ndarray, NeighborSample]]) -> NeighborSample:
    """Merge per-partition samples (positions into the batch, sample) into batch order, O(E)
    (in the core: every position answered once, counts matching each part's neighbors)."""
    if len(parts) == 1 and len(parts[0][0]) == num_seeds:
        pos, s = parts[0]
        if np.array_equal(pos, np.arange(num_seeds)):
            return s
    counts, neighbors, eids = _core.merge_samples(
        num_seeds, [(pos, s.counts, s.neighbors, s.eids) for pos, s in parts])
    return NeighborSample(counts, neighbors, eids)


@dataclass
class _Spec:
    """A feature's name, row shape, dtype and width (a FeatureSpec with another dtype)."""

    name: str
    shape: tuple
    numpy_dtype: np.dtype
    width: int


def _row_bytes(specs) -> int:
    """Bytes of one row over the feature specs (at least 1)."""
    return max(1, sum(spec.numpy_dtype.itemsize * spec.width for spec in specs if spec is not None))


class RoutedGraph(GraphService):
    """A GraphService whose partition ``p`` is answered by ``backends[p]``."""

    def __init__(self, schema: GraphSchema, book: PartitionBook, backends: Sequence[PartitionBackend],
                 id_dictionaries: Optional[Dict[str, object]] = None):
        if len(backends) != book.num_partitions:
            raise ValueError(f"{len(backends)} backends for {book.num_partitions} partitions")
        self._schema = schema
        self.book = book
        self.backends = list(backends)
        #: ntype -> IdDictionary of the ``id_type: string`` node types
        self.id_dictionaries = dict(id_dictionaries or {})
        self._stitched = {}  # canonical etype -> StitchedCSR (see sample_multihop)

    def id_dictionary(self, ntype: str):
        nt = self.schema.node_type(ntype)
        if nt.id_type != "string":
            raise ValueError(f"node type {nt.name!r} has int64 ids, no string dictionary")
        if nt.name not in self.id_dictionaries:
            raise ValueError(f"node type {nt.name!r} has string ids but this graph has no "
                             f"dictionary for them (not opened from a store?)")
        return self.id_dictionaries[nt.name]

    # Subclasses may override to run partitions in parallel (RemoteGraph does).
    def _map(self, calls: Dict[int, callable]) -> Dict[int, object]:
        return {p: fn() for p, fn in calls.items()}

    def _start(self, calls: Dict[int, callable]) -> Callable[[], Dict[int, object]]:
        """Start ``calls`` (a RemoteGraph runs them in the background); returns a function
        that waits for them and gives ``{p: result}``. Here: they run now."""
        done = self._map(calls)
        return lambda: done

    @property
    def schema(self) -> GraphSchema:
        return self._schema

    def _split(self, ntype: str, ids: np.ndarray) -> Dict[int, np.ndarray]:
        return self.book.split(ntype, ids)

    def num_nodes(self, ntype: str) -> int:
        nt = self.schema.node_type(ntype).name
        return sum(self._map({p: (lambda b=b: b.num_nodes(nt)) for p, b in enumerate(self.backends)}).values())

    def num_edges(self, etype) -> int:
        key = self.schema.edge_type(etype).canonical
        return sum(self._map({p: (lambda b=b: b.num_edges(key)) for p, b in enumerate(self.backends)}).values())

    def node_ids(self, ntype: str) -> np.ndarray:
        nt = self.schema.node_type(ntype).name
        got = self._map({p: (lambda b=b: b.node_ids(nt)) for p, b in enumerate(self.backends)})
        return np.concatenate([got[p] for p in range(len(self.backends))])

    def _seed_type(self, etype, direction: str) -> str:
        et = self.schema.edge_type(etype)
        if direction not in ("in", "out"):
            raise ValueError(f"direction must be 'in' or 'out', got {direction!r}")
        return et.dst if direction == "in" else et.src

    def sample_neighbors(self, etype, seeds, fanout: int, *, strategy: str = "uniform",
                         replace: bool = False, direction: str = "in", seed: int = 0,
                         hop: int = 0, positions: Optional[np.ndarray] = None) -> NeighborSample:
        seeds = as_ids(seeds, "seeds")
        key = self.schema.edge_type(etype).canonical
        ntype = self._seed_type(key, direction)
        if positions is None:
            positions = np.arange(len(seeds), dtype=np.int64)
        else:
            positions = as_ids(positions, "positions")
            if len(positions) != len(seeds):
                raise ValueError(f"positions has {len(positions)} entries but seeds has {len(seeds)}")
        # Answers carry about 16 bytes (neighbor and edge id) per sampled edge.
        pieces = self._pieces(self._split(ntype, seeds), 16 * max(int(fanout), 1))
        got = self._map({k: (lambda k=k, idx=idx: self.backends[k[0]].sample_neighbors(
            key, seeds[idx], fanout, strategy=strategy, replace=replace, direction=direction,
            seed=seed, hop=hop, positions=positions[idx])) for k, idx in pieces.items()})
        if not pieces:
            return NeighborSample.empty(0)
        return scatter_samples(len(seeds), [(pieces[k], got[k]) for k in pieces])

    #: Feature requests of one partition are cut into up to this many calls (of at least
    #: MIN_ROWS_PER_PIECE rows) that run at once, so that a server gathers one piece while
    #: the wire carries another. One by default, also over servers: since remote rows are read
    #: off the socket straight into the batch, the pieces' per-request work outweighs that
    #: overlap on 2 cores (session 12, 4 pieces -> 1: co-located prefetch 43.9 -> 45.6
    #: batches/s, all remote 32.6 -> 35.5). Raise it where servers have idle cores.
    pieces_per_partition = 1
    MIN_ROWS_PER_PIECE = 4096

    def _pieces(self, groups: Dict[int, np.ndarray], row_bytes: int = 8,
                spread: bool = False) -> Dict[Tuple[int, int], np.ndarray]:
        """``groups[p]`` (positions partition ``p`` answers) cut into requests ``(p, c)`` no
        larger than its backend takes in one call (``max_rows_per_call``: a remote server's
        --max-batch and message limits, for answers of ``row_bytes`` per position), and with
        ``spread`` into up to :attr:`pieces_per_partition` requests."""
        pieces: Dict[Tuple[int, int], np.ndarray] = {}
        for p, idx in groups.items():
            limit = self.backends[p].max_rows_per_call(row_bytes)
            step = max(1, limit) if limit is not None else max(1, len(idx))
            if spread and self.pieces_per_partition > 1:
                step = min(step, max(self.MIN_ROWS_PER_PIECE, -(-len(idx) // self.pieces_per_partition)))
            for c, start in enumerate(range(0, len(idx), step)):
                pieces[(p, c)] = idx[start:start + step]
        return pieces

    def _fetch_array(self, n: int, groups: Dict[int, np.ndarray], call, dtype) -> np.ndarray:
        """A 1-D answer of ``n`` positions (degrees, lookups) gathered like :meth:`_fetch_rows`."""
        pieces = self._pieces(groups)
        got = self._map({k: (lambda k=k, idx=idx: call(k[0], idx)) for k, idx in pieces.items()})
        out = np.zeros(n, dtype=dtype)
        for k, idx in pieces.items():
            out[idx] = got[k]
        return out

    def _in_process(self, p: int, topology: bool = False):
        """The PartitionGraph answering partition ``p`` in this process right now (a local
        partition, or a co-located server's fresh shared memory; with ``topology``, also a
        fresh topology replica, whose graph holds no features), else None."""
        b = self.backends[p]
        if isinstance(b, SharedPartition) or (topology and isinstance(b, TopologyReplica)):
            return b.fresh_graph()
        if isinstance(b, DurablePartition):
            return b.graph  # the current graph (compaction replaces it)
        return b if isinstance(b, PartitionGraph) else None

    @property
    def partitions_over_network(self) -> int:
        return sum(self._in_process(p) is None for p in range(len(self.backends)))

    def _replicas(self) -> List[TopologyReplica]:
        return [b for b in self.backends if isinstance(b, TopologyReplica)]

    def expect_multihop_sampling(self) -> None:
        wake_lazy(self._replicas())

    def wait_for_topology(self, timeout: float = 60.0) -> bool:
        self.expect_multihop_sampling()
        deadline = time.monotonic() + timeout
        while not all(r.settled() for r in self._replicas()):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def sample_multihop(self, etype, seeds, fanouts, *, strategy: str = "uniform",
                        replace: bool = False, seed: int = 0) -> Optional[list]:
        """Every hop of in-neighbor sampling of a square edge type in one C++ call, when
        every partition's topology is in this process (see :meth:`_in_process`: local, shared
        memory or a topology replica) and none has pending
        online writes: one partition samples its own CSR (``PartitionGraph.sample_multihop``),
        several a stitched CSR over all of them (:class:`~graphplat.storage.stitched.StitchedCSR`,
        built once). The same answer as hop-by-hop sampling. Returns
        ``[(nodes, num_dst, src, dst, eids), ...]`` (user ids), or None when the fast path
        does not apply (the caller then samples hop by hop)."""
        # a topology replica's answer is returned only once its server confirms the copy
        # (seq read before the graph: a newer copy installed meanwhile only confirms less)
        replicas = {p: b.seq for p, b in enumerate(self.backends) if isinstance(b, TopologyReplica)}
        graphs = [self._in_process(p, topology=True) for p in range(len(self.backends))]
        if any(g is None for g in graphs):
            # a partition read over gRPC changed since (a co-located one is republished before
            # it is in process again): drop stitched CSRs, which keep old generations mapped
            self._stitched.clear()
            return None
        if len(graphs) > 1 and not self._square(etype):
            return None
        # The servers check the copies while this samples: each check runs after the call
        # began, so a confirmed answer misses no write acknowledged before it (linearizable).
        confirmations = self._start({p: (lambda p=p, seq=seq: self.backends[p].confirm(seq))
                                     for p, seq in replicas.items()})
        ok, out = read_confirmed(
            lambda: self._sample_in_process(graphs, etype, seeds, fanouts, strategy, replace, seed),
            lambda: all(confirmations().values()))
        return out if ok else None

    def _square(self, etype) -> bool:
        et = self.schema.edge_type(etype)
        return et.src == et.dst

    def _sample_in_process(self, graphs, etype, seeds, fanouts, strategy, replace, seed) -> Optional[list]:
        """sample_multihop over in-process ``graphs`` (one per partition); None when a
        partition has online edges (the stitched CSR covers bulk edges only)."""
        if len(graphs) == 1:
            return graphs[0].sample_multihop(etype, seeds, fanouts, strategy=strategy,
                                             replace=replace, seed=seed)
        et = self.schema.edge_type(etype)
        key = et.canonical
        with ExitStack() as stack:
            for g in graphs:  # writes wait while the stitched CSR is checked and sampled
                stack.enter_context(g._lock)
            if any(g.in_adj[key].delta_size for g in graphs):
                return None
            st = self._stitched.get(key)
            if st is None or st.version != [partition_version(g, key, et.dst) for g in graphs]:
                st = self._stitched[key] = StitchedCSR(self.book, graphs, key, et.dst)
            return st.sample_multihop(as_ids(seeds, "seeds"), fanouts, strategy, replace, seed)

    def _fetch_rows(self, n: int, groups: Dict[int, np.ndarray], call, specs,
                    out: Optional[Dict[str, np.ndarray]] = None, direct: bool = False) -> Dict[str, np.ndarray]:
        """Rows ``{name: (n, ...)}`` of the features ``specs`` of ``n`` requested items, where
        partition ``p`` answers the items at positions ``groups[p]`` and ``call(p, positions)``
        asks it for them; with ``direct``, ``call(p, positions, out, rows)`` writes into rows
        ``rows`` of ``out`` (all of it when None) itself (in process or off the wire).
        ``out``: arrays to fill instead of new ones (needs ``direct``).

        A request larger than its backend takes in one call (``max_rows_per_call``, a remote
        server's batch and message limits) is split into several calls, which run in parallel;
        the answers are copied into place. An empty request gets empty, correctly shaped arrays.
        """
        if n == 0:
            return {spec.name: np.zeros((0,) + spec.shape, spec.numpy_dtype) for spec in specs}
        if out is not None:
            for spec in specs:
                a = out.get(spec.name)
                if a is None or a.shape != (n,) + spec.shape or a.dtype != spec.numpy_dtype:
                    raise ValueError(f"out[{spec.name!r}] must be a {spec.numpy_dtype} array of shape "
                                     f"{(n,) + spec.shape}")
        pieces = self._pieces(groups, _row_bytes(specs), spread=True)
        if len(pieces) == 1:  # one call answers the whole batch in order: no copy
            (k, idx), = pieces.items()
            if len(idx) == n and idx[0] == 0 and idx[-1] == n - 1:
                if out is None:
                    return call(k[0], idx)
                if direct:
                    return call(k[0], idx, out)
        if out is None:
            out = {spec.name: np.empty((n,) + spec.shape, spec.numpy_dtype) for spec in specs}

        def fetch(p: int, idx: np.ndarray) -> None:
            if direct:  # gathered (in process) or read off the wire (remote) straight into place
                call(p, idx, out, idx)
                return
            # Each answer is copied into place as soon as it arrives (in the calling worker
            # thread, GIL-free and parallel), while other pieces are still on the wire.
            for name, arr in call(p, idx).items():
                put_rows(arr, idx, out[name])

        self._map({k: (lambda k=k, idx=idx: fetch(k[0], idx)) for k, idx in pieces.items()})
        return out

    def node_features(self, ntype: str, ids, names: Optional[Sequence[str]] = None, *,
                      out: Optional[Dict[str, np.ndarray]] = None,
                      wire_dtype: Optional[str] = None) -> Dict[str, np.ndarray]:
        """See GraphService.node_features; ``wire_dtype`` ("float16" or "bfloat16", see
        :mod:`graphplat.storage.wire_dtype`) returns float32 features in that format
        (moving half the bytes from servers)."""
        nt = self.schema.node_type(ntype)
        ids = as_ids(ids)
        names = list(names) if names is not None else nt.feature_names
        specs = [nt.feature(n) for n in names]  # ValueError naming an unknown feature
        wire_dtype = wire_dtype_check(wire_dtype)
        kw = {"wire_dtype": wire_dtype} if wire_dtype else {}
        if wire_dtype:
            specs = [_Spec(f.name, f.shape, carrier_dtype(f.numpy_dtype, wire_dtype), f.width) for f in specs]

        def call(p, idx, into=None, into_rows=None):
            if into is None:
                return self.backends[p].node_features(nt.name, ids[idx], names, **kw)
            backend = self._in_process(p)
            backend = self.backends[p] if backend is None else backend
            return backend.node_features(nt.name, ids[idx], names, out=into, out_rows=into_rows, **kw)

        return self._fetch_rows(len(ids), self._split(nt.name, ids), call, specs, out, direct=True)

    def edge_features(self, etype, eids, names: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
        key = self.schema.edge_type(etype).canonical
        eids = as_ids(eids, "eids")
        part = eids >> EID_PARTITION_SHIFT
        if len(eids) and (part.min() < 0 or part.max() >= len(self.backends)):
            raise IndexError(f"edge ids name partitions outside [0, {len(self.backends)})")
        groups = {int(p): np.flatnonzero(part == p) for p in np.unique(part)}
        et = self.schema.edge_type(key)
        specs = et._all_specs() if names is None else [et.weight_spec if n == "weight" and et.weighted
                                                        else et.feature(n) for n in names]
        return self._fetch_rows(len(eids), groups,
                                lambda p, idx: self.backends[p].edge_features(key, eids[idx], names),
                                specs)

    def degrees(self, etype, ids, direction: str = "in") -> np.ndarray:
        key = self.schema.edge_type(etype).canonical
        ids = as_ids(ids)
        return self._fetch_array(len(ids), self._split(self._seed_type(key, direction), ids),
                                 lambda p, idx: self.backends[p].degrees(key, ids[idx], direction), np.int64)

    def lookup(self, ntype: str, ids) -> np.ndarray:
        nt = self.schema.node_type(ntype).name
        ids = as_ids(ids)
        return self._fetch_array(len(ids), self._split(nt, ids),
                                 lambda p, idx: self.backends[p].lookup(nt, ids[idx]), bool)

    def has_edges(self, etype, src, dst) -> np.ndarray:
        """Whether each (src[i], dst[i]) is an edge of ``etype``."""
        key = self.schema.edge_type(etype).canonical
        src, dst = as_ids(src, "src"), as_ids(dst, "dst")
        return self._fetch_array(len(dst), self._split(key[2], dst),
                                 lambda p, idx: self.backends[p].has_edges(key, src[idx], dst[idx]), bool)

    def negative_sample(self, etype, src, k: int, *, strategy: str = "uniform",
                        exclude_existing: bool = True, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
        et = self.schema.edge_type(etype)
        src = as_ids(src, "src")
        if not 1 <= k <= 1 << 20:
            raise ValueError(f"k (negatives per source) must be in [1, 2^20], got {k}")
        if strategy not in ("uniform", "degree", "in_degree"):
            raise ValueError(f"unknown negative sampling strategy {strategy!r}: expected uniform or degree")
        candidates = self.node_ids(et.dst)
        if len(candidates) == 0:
            raise ValueError(f"no {et.dst!r} nodes to draw negatives from")
        rng = np.random.default_rng([seed, 0x6e6567])  # depends on the seed only, not on partitions
        if strategy == "uniform":
            def draw(n):
                return candidates[rng.integers(0, len(candidates), n)]
        else:
            weights = self.degrees(et.canonical, candidates, "in").astype(np.float64) ** 0.75
            if weights.sum() <= 0:
                weights = np.ones_like(weights)
            table = _core.AliasTable(weights)

            def draw(n):
                return candidates[table.sample(n, seed=int(rng.integers(0, 2**62)))]
        neg_src = np.repeat(src, k)
        neg_dst = draw(len(neg_src))
        if exclude_existing:
            bad = self.has_edges(et.canonical, neg_src, neg_dst)
            for _ in range(32):
                if not bad.any():
                    break
                idx = np.flatnonzero(bad)
                neg_dst[idx] = draw(len(idx))
                bad[idx] = self.has_edges(et.canonical, neg_src[idx], neg_dst[idx])
            keep = ~bad
            neg_src, neg_dst = neg_src[keep], neg_dst[keep]
        return neg_src, neg_dst

    def random_walk(self, metapath, starts, *, seed: int = 0) -> np.ndarray:
        starts = as_ids(starts, "starts")
        keys = [self.schema.edge_type(e) for e in metapath]
        if not keys:
            raise ValueError("metapath must name at least one edge type")
        for a, b in zip(keys, keys[1:]):
            if a.dst != b.src:
                raise ValueError(f"metapath does not chain: {a.canonical_str} ends at {a.dst!r} "
                                 f"but {b.canonical_str} starts at {b.src!r}")
        traces = np.full((len(starts), len(keys) + 1), -1, dtype=np.int64)
        traces[:, 0] = starts
        alive = np.arange(len(starts))
        for step, et in enumerate(keys):
            if len(alive) == 0:
                break
            s = self.sample_neighbors(et.canonical, traces[alive, step], 1, replace=True,
                                      direction="out", seed=seed, hop=step, positions=alive)
            has = s.counts > 0
            alive = alive[has]
            traces[alive, step + 1] = s.neighbors
        return traces

    # ------------------------------------------------------------------ writes
    def add_nodes(self, ntype: str, ids, features: Optional[Dict[str, np.ndarray]] = None) -> np.ndarray:
        """Add nodes (see :meth:`GraphService.add_nodes`); a ``id_type: string`` type also
        takes the user's strings, giving new ones ids first. Returns the int64 ids."""
        nt = self.schema.node_type(ntype)
        if nt.id_type == "string" and np.asarray(ids).dtype.kind in "OUS":
            strings = np.asarray(ids, dtype=object).reshape(-1)
            if len(set(strings.tolist())) != len(strings):
                raise ValueError(f"ids added to {nt.name!r} must be distinct")
            ids = self.to_internal(nt.name, strings, create=True)
        ids = as_ids(ids)
        if len(np.unique(ids)) != len(ids):
            raise ValueError(f"ids added to {nt.name!r} must be distinct")
        present = self.lookup(nt.name, ids)
        if present.any():
            raise ValueError(f"{nt.name!r} ids already present: {ids[present][:5].tolist()}")
        feats = nt.coerce_features(features or {}, len(ids), require_all=False)
        split = self._split(nt.name, ids)
        self._map({p: (lambda p=p, idx=idx: self.backends[p].add_nodes(
            nt.name, ids[idx], {k: v[idx] for k, v in feats.items()})) for p, idx in split.items()})
        return ids

    def add_edges(self, etype, src, dst, weights: Optional[np.ndarray] = None, *,
                  write_id: Optional[str] = None) -> np.ndarray:
        """Add edges ``src -> dst`` of ``etype`` (see :meth:`GraphService.add_edges`); an
        undirected type also gets ``dst -> src`` (but self-loops once) and a type with a
        reverse (or forward) type gets ``dst -> src`` there (schema ``synced_writes``).
        Returns the edge ids of the edges as given.

        Each partition applies its part of write ``write_id`` (default: a new random id)
        at most once, so when a call raises after part of the write was applied, calling
        again with the same arguments and the ``write_id`` found on the exception
        (``exc.write_id``) completes it: the partitions that applied their part answer
        with the edge ids they assigned the first time, and in- and out-copies match.
        (Backends without a durable dedupe table, in-memory PartitionGraphs, ignore it.)
        """
        et = self.schema.edge_type(etype)
        src, dst = as_ids(src, "src"), as_ids(dst, "dst")
        weights = check_edge_arrays(src, dst, weights)
        write_id = write_id or uuid.uuid4().hex
        try:
            return self._add_edges(et, src, dst, weights, write_id)
        except Exception as e:
            e.write_id = write_id
            e.add_note(f"write id {write_id!r}: call add_edges again with write_id={write_id!r} "
                       "to complete a partly applied write")
            raise

    def _write_kw(self, p: int, write_id: str, part: str) -> dict:
        """The request id of partition ``p``'s ``part`` of a write, for backends that dedupe."""
        if DEDUPES_WRITES not in self.backends[p].capabilities:
            return {}
        return {"request_id": f"{write_id}:{part}:{p}"}

    def _add_edges(self, et, src, dst, weights, write_id: str) -> np.ndarray:
        for name, ntype, ids in (("src", et.src, src), ("dst", et.dst, dst)):
            missing = ~self.lookup(ntype, ids)
            if missing.any():
                raise ValueError(f"{name} ids {ids[missing][:5].tolist()} are not {ntype!r} nodes; "
                                 "add them with add_nodes first")
        eids = None
        for target, flipped in self.schema.synced_writes(et.canonical):
            if not flipped:
                eids = self._add_edges_of(target, src, dst, weights, write_id)
                continue
            keep = src != dst if target.canonical == et.canonical else slice(None)
            self._add_edges_of(target, dst[keep], src[keep],
                               None if weights is None else weights[keep],
                               f"{write_id}~{target.relation}")  # its own id: applied once too
        return eids

    def _add_edges_of(self, et, src: np.ndarray, dst: np.ndarray,
                      weights: Optional[np.ndarray], write_id: str) -> np.ndarray:
        """Store checked edges of one type: in-adjacency by destination, out-adjacency (if
        declared) by source. Returns their edge ids."""
        eids = np.empty(len(dst), dtype=np.int64)
        split = self._split(et.dst, dst)
        got = self._map({p: (lambda p=p, idx=idx: self.backends[p].add_edges_in(
            et.canonical, src[idx], dst[idx], None if weights is None else weights[idx],
            **self._write_kw(p, write_id, "in"))) for p, idx in split.items()})
        for p, idx in split.items():
            eids[idx] = got[p]
        if et.out_adjacency:
            split = self._split(et.src, src)
            self._map({p: (lambda p=p, idx=idx: self.backends[p].add_edges_out(
                et.canonical, src[idx], dst[idx], eids[idx], None if weights is None else weights[idx],
                **self._write_kw(p, write_id, "out"))) for p, idx in split.items()})
        return eids

    def update_features(self, ntype: str, ids, features: Dict[str, np.ndarray]) -> None:
        nt = self.schema.node_type(ntype)
        ids = as_ids(ids)
        missing = ~self.lookup(nt.name, ids)
        if missing.any():
            raise IndexError(f"{nt.name!r} ids {ids[missing][:5].tolist()} do not exist")
        feats = nt.coerce_features(features, len(ids), require_all=False)
        split = self._split(nt.name, ids)
        self._map({p: (lambda p=p, idx=idx: self.backends[p].update_features(
            nt.name, ids[idx], {k: v[idx] for k, v in feats.items()})) for p, idx in split.items()})
