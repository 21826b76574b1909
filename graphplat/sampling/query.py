"""A Gremlin-like query chain over any GraphService, in the spirit of graph-learn's GSL::

    q = (V(g, "user").batch(512).shuffle(seed=7).alias("u")
          .outV("click").sample(10).by("edge_weight").alias("i")
          .inV("click").sample(5).by("random").alias("v")
          .values())
    for batch in q:                 # one dict per batch of users
        batch["u"].ids, batch["i"].ids, batch["i"].parent, batch["i"].features["feat"]

Sources: ``V(graph, ntype)`` (all nodes of a type, or given ``ids``) and ``E(graph, etype)`` (edges; then
``.outV()`` is their source and ``.inV()`` their destination nodes). Steps from a node
step: ``outV(etype)`` (out-neighbors: the node is the edge's source; needs the edge type's
``out_adjacency``), ``inV(etype)`` (in-neighbors), ``outNeg(etype)`` / ``inNeg(etype)``
(nodes that are *not* out- / in-neighbors), each followed by ``.sample(k).by(strategy)``:
``random`` (with replacement), ``random_without_replacement``, ``edge_weight``, ``topk``,
``full`` (and for negatives ``random`` or ``in_degree``). Without ``sample`` a neighbor step
takes the full neighborhood. A step that does not fit the schema (an edge type that does
not start at the previous step's node type) fails when it is added, naming both.

Results: every step becomes a :class:`StepResult` of flat numpy arrays: ``ids`` (user ids),
``parent`` (the index in the previous step's ``ids`` each row came from), ``counts`` (rows
per parent), ``eids`` (edge ids, neighbor steps), and ``features`` (the node type's
features, unless ``values(features=False)``). Batches are reproducible: batch ``b`` of a
query with seed ``s`` samples with ``derive_seed(s, b)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np

from graphplat.sampling.neighbor import normalize_strategy
from graphplat.sampling.seeds import derive_rng, derive_seed
from graphplat.service import GraphService

NEGATIVE_STRATEGIES = {"random": "uniform", "uniform": "uniform", "in_degree": "degree", "degree": "degree"}


@dataclass
class StepResult:
    """One step of one batch (see the module docstring)."""

    ntype: str
    ids: np.ndarray
    parent: np.ndarray
    counts: np.ndarray
    eids: Optional[np.ndarray] = None
    features: Dict[str, np.ndarray] = field(default_factory=dict)

    def dense(self, fill: int = -1) -> np.ndarray:
        """``ids`` as a (num_parents, max count) matrix padded with ``fill`` (graph-learn's
        shape for a fixed-size sample)."""
        width = int(self.counts.max()) if len(self.counts) else 0
        out = np.full((len(self.counts), width), fill, dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]]) if len(self.counts) else self.counts
        col = np.arange(len(self.ids)) - np.repeat(starts, self.counts)
        out[np.repeat(np.arange(len(self.counts)), self.counts), col] = self.ids
        return out


@dataclass
class _Step:
    kind: str                 # V | E | outV | inV | outNeg | inNeg | Esrc | Edst
    ntype: str
    etype: Optional[tuple] = None
    k: int = -1
    strategy: str = "full"
    alias: Optional[str] = None


class Query:
    """A chain of steps over ``graph``; build with ``V(graph, ...)`` / ``E(graph, ...)``."""

    def __init__(self, graph: GraphService, source: _Step, ids: Optional[np.ndarray] = None):
        self.graph = graph
        self.steps: List[_Step] = [source]
        self._ids = ids
        self._batch: Optional[int] = None
        self._shuffle = False
        self._seed = 0

    # ------------------------------------------------------------------ source options
    def batch(self, size: int) -> "Query":
        """Cut the source into batches of ``size`` (default: one batch of everything)."""
        if len(self.steps) != 1:
            raise ValueError("batch() applies to the source: call it right after V() or E()")
        if not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"batch size must be a positive integer, got {size!r}")
        self._batch = int(size)
        return self

    def shuffle(self, seed: int = 0) -> "Query":
        """Shuffle the source (by ``seed``) before batching; ``seed`` also keys sampling."""
        if len(self.steps) != 1:
            raise ValueError("shuffle() applies to the source: call it right after V() or E()")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self._shuffle, self._seed = True, int(seed)
        return self

    # ------------------------------------------------------------------ steps
    @property
    def _last(self) -> _Step:
        return self.steps[-1]

    def _node_type_now(self, what: str) -> str:
        last = self._last
        if last.kind == "E":
            raise ValueError(f"{what} needs nodes: after E() call outV() (sources) or inV() (destinations)")
        return last.ntype

    def _neighbor(self, kind: str, etype) -> "Query":
        if self._last.kind == "E":
            if etype is not None:
                raise ValueError(f"after E(), {kind}() takes no edge type: it selects the edges' "
                                 f"{'sources' if kind == 'outV' else 'destinations'}")
            et = self.graph.schema.edge_type(self._last.etype)
            self.steps.append(_Step("Esrc" if kind == "outV" else "Edst", et.src if kind == "outV" else et.dst,
                                    et.canonical))
            return self
        here = self._node_type_now(f"{kind}()")
        et = self.graph.schema.edge_type(etype)
        start, end = (et.src, et.dst) if kind in ("outV", "outNeg") else (et.dst, et.src)
        if start != here:
            side = "start" if kind in ("outV", "outNeg") else "end"
            raise ValueError(f"{kind}({et.relation!r}): edge type {et.canonical_str} does not {side} at "
                             f"node type {here!r} (the previous step's type)")
        self.steps.append(_Step(kind, end, et.canonical))
        return self

    def outV(self, etype=None) -> "Query":
        """Out-neighbors along ``etype`` (after E(): the edges' source nodes)."""
        return self._neighbor("outV", etype)

    def inV(self, etype=None) -> "Query":
        """In-neighbors along ``etype`` (after E(): the edges' destination nodes)."""
        return self._neighbor("inV", etype)

    def outNeg(self, etype) -> "Query":
        """Nodes of ``etype``'s destination type that are not out-neighbors."""
        q = self._neighbor("outNeg", etype)
        q._last.strategy, q._last.k = "random", 1
        return q

    def inNeg(self, etype) -> "Query":
        """Nodes of ``etype``'s source type that are not in-neighbors."""
        q = self._neighbor("inNeg", etype)
        q._last.strategy, q._last.k = "random", 1
        return q

    def sample(self, k: int) -> "Query":
        """Take ``k`` per node of the previous step (``by`` says how; -1: all; 0: none, as
        fanout 0 everywhere)."""
        if self._last.kind not in ("outV", "inV", "outNeg", "inNeg"):
            raise ValueError("sample() follows a neighbor or negative step (outV/inV/outNeg/inNeg)")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < -1:
            raise ValueError(f"sample(k): k must be an integer >= 0 or -1, got {k!r}")
        if k == 0 and self._last.kind in ("outNeg", "inNeg"):
            raise ValueError("negative steps need sample(k) with k >= 1")
        if k == -1 and self._last.kind in ("outNeg", "inNeg"):
            raise ValueError("negative steps need a finite sample(k)")
        self._last.k = int(k)
        if self._last.kind in ("outV", "inV"):
            self._last.strategy = "random_without_replacement" if k != -1 else "full"
        return self

    def by(self, strategy: str) -> "Query":
        """The sampling strategy of the previous ``sample``."""
        last = self._last
        if last.kind in ("outNeg", "inNeg"):
            if strategy not in NEGATIVE_STRATEGIES:
                raise ValueError(f"negative sampling strategy must be one of {sorted(NEGATIVE_STRATEGIES)}, "
                                 f"got {strategy!r}")
            if last.kind == "inNeg" and NEGATIVE_STRATEGIES[strategy] != "uniform":
                raise ValueError("inNeg supports by('random') only")
        elif last.kind in ("outV", "inV"):
            core = normalize_strategy(strategy)
            if core in ("weighted", "topk") and not self.graph.schema.edge_type(last.etype).weighted:
                raise ValueError(f"strategy {strategy!r} needs edge weights; edge type "
                                 f"{self.graph.schema.edge_type(last.etype).canonical_str} is not weighted")
        else:
            raise ValueError("by() follows sample()")
        last.strategy = strategy
        return self

    def alias(self, name: str) -> "Query":
        """Name the previous step's result (default: its position, "0", "1", ...)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"alias must be a non-empty string, got {name!r}")
        if any(s.alias == name for s in self.steps):
            raise ValueError(f"alias {name!r} is already used in this query")
        self._last.alias = name
        return self

    # ------------------------------------------------------------------ run
    def _source_items(self):
        first = self.steps[0]
        if first.kind == "V":
            ids = self._ids if self._ids is not None else self.graph.node_ids(first.ntype)
            return (np.ascontiguousarray(ids, dtype=np.int64),)
        from graphplat.sampling.link import all_edges
        return all_edges(self.graph, first.etype)

    def values(self, features: bool = True) -> Iterator[Dict[str, StepResult]]:
        """Run the query: an iterator of dicts alias -> :class:`StepResult`, one per batch.
        ``features``: fetch every node step's features."""
        items = self._source_items()
        n = len(items[0])
        order = derive_rng(self._seed, 0x51).permutation(n) if self._shuffle else np.arange(n)
        size = self._batch or max(n, 1)
        for b, start in enumerate(range(0, n, size)):
            idx = order[start:start + size]
            yield self._run_batch(tuple(a[idx] for a in items), derive_seed(self._seed, b), features)

    def _run_batch(self, items, seed: int, features: bool) -> Dict[str, StepResult]:
        g = self.graph
        out: Dict[str, StepResult] = {}
        prev: Optional[StepResult] = None
        edges = None
        for pos, step in enumerate(self.steps):
            name = step.alias or str(pos)
            if step.kind == "V":
                ids = items[0]
                res = StepResult(step.ntype, ids, np.arange(len(ids)), np.ones(len(ids), np.int64))
            elif step.kind == "E":
                edges = items
                res = StepResult(step.ntype, edges[2], np.arange(len(edges[2])), np.ones(len(edges[2]), np.int64),
                                 eids=edges[2])
            elif step.kind in ("Esrc", "Edst"):
                ids = edges[0] if step.kind == "Esrc" else edges[1]
                res = StepResult(step.ntype, ids, np.arange(len(ids)), np.ones(len(ids), np.int64))
            elif step.kind in ("outV", "inV"):
                strategy = normalize_strategy(step.strategy)
                s = g.sample_neighbors(step.etype, prev.ids, step.k, strategy=strategy,
                                       replace=step.strategy == "random", direction="out" if step.kind == "outV" else "in",
                                       seed=seed, hop=pos)
                res = StepResult(step.ntype, s.neighbors, np.repeat(np.arange(len(prev.ids)), s.counts), s.counts,
                                 eids=s.eids)
            else:
                res = self._negatives(step, prev.ids, derive_seed(seed, pos))
            if features and step.kind != "E":
                res.features = g.node_features(res.ntype, res.ids) if g.schema.node_type(res.ntype).features else {}
            out[name] = res
            prev = res
        return out

    def _negatives(self, step: _Step, anchors: np.ndarray, seed: int) -> StepResult:
        g = self.graph
        et = g.schema.edge_type(step.etype)
        if step.kind == "outNeg":
            src, dst = g.negative_sample(et.canonical, anchors, step.k, strategy=NEGATIVE_STRATEGIES[step.strategy],
                                         seed=seed)
            ids, parent_ids = dst, src
        else:  # sources of the edge type that do not point at each anchor, uniform
            rng = np.random.default_rng(seed)
            candidates = g.node_ids(et.src)
            parent_ids = np.repeat(anchors, step.k)
            ids = candidates[rng.integers(0, len(candidates), len(parent_ids))]
            for _ in range(32):
                bad = g.has_edges(et.canonical, ids, parent_ids)
                if not bad.any():
                    break
                ids[bad] = candidates[rng.integers(0, len(candidates), int(bad.sum()))]
            keep = ~g.has_edges(et.canonical, ids, parent_ids)
            ids, parent_ids = ids[keep], parent_ids[keep]
        # negatives come back grouped by anchor in anchor order, minus the rare draws that
        # found no non-edge: recover each row's anchor (a walk only when rows were dropped)
        parent = np.repeat(np.arange(len(anchors)), step.k)
        if len(parent_ids) != len(parent):
            parent = _parents_of(anchors, parent_ids, step.k)
        counts = np.bincount(parent, minlength=len(anchors)).astype(np.int64)
        return StepResult(et.dst if step.kind == "outNeg" else et.src, ids, parent, counts)


def _parents_of(anchors: np.ndarray, parent_ids: np.ndarray, k: int) -> np.ndarray:
    """Index of each kept negative's anchor, given the anchors' ids in kept order (each
    anchor had ``k`` slots, in order)."""
    out = np.empty(len(parent_ids), dtype=np.int64)
    a = 0
    used = 0
    for i, pid in enumerate(parent_ids.tolist()):  # O(len) walk; rejections are rare
        while anchors[a] != pid or used >= k:
            a += 1
            used = 0
        out[i] = a
        used += 1
    return out


def V(graph: GraphService, ntype: str, ids: Optional[Sequence[int]] = None) -> Query:
    """A query starting at the nodes of ``ntype`` (all, or ``ids``)."""
    nt = graph.schema.node_type(ntype).name
    arr = None if ids is None else np.ascontiguousarray(ids, dtype=np.int64)
    return Query(graph, _Step("V", nt), arr)


def E(graph: GraphService, etype) -> Query:
    """A query starting at the edges of ``etype``."""
    et = graph.schema.edge_type(etype)
    return Query(graph, _Step("E", et.src, et.canonical))
