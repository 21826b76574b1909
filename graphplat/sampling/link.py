"""LinkLoader: minibatches of seed edges with negatives, for link prediction and rating
regression, shaped like DGL's ``as_edge_prediction_sampler`` DataLoader.

Each batch is ``(input_nodes, pair_graph, neg_pair_graph, blocks)`` (or
``(input_nodes, pair_graph, blocks)`` without negatives): the pair graphs hold the seed
edges (and the negatives) over the output nodes of ``blocks[-1]``, in the same node order,
so ``h = model(blocks, x)`` scores ``pair_graph.edges()`` directly.

Leakage: with ``exclude="self"`` the batch's seed edges are removed from every sampled
neighborhood, and with ``exclude="reverse_types"`` their reverses too (edge ``(u, v)`` of
``etype`` -> ``(v, u)`` of ``reverse_etypes[etype]``; an undirected graph stored in one edge
type maps the type to itself). ``exclude="node_pairs"`` goes further: a seed edge ``(u, v)``
from node type S to D removes ``(u, v)`` from every sampled edge type S -> D and ``(v, u)``
from every type D -> S, for graphs with several relations between the same node types (such
as one edge type per rating level), where a seed would otherwise see itself through a
parallel relation. Edges are matched by their endpoints, so parallel copies of a seed edge
are excluded as well.
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Tuple

import numpy as np

from graphplat import _core
from graphplat.sampling.loader import Minibatch, MinibatchLoader
from graphplat.sampling.neighbor import EdgeExclusion, pair_keys
from graphplat.sampling.seeds import derive_seed
from graphplat.sampling.subgraph import tensor_of
from graphplat.service import GraphService
from graphplat.typing import Canonical

EXCLUDE = (None, "self", "reverse_types", "node_pairs")
NEGATIVE_STRATEGIES = ("uniform", "degree")


def all_edges(graph: GraphService, etype, batch_size: int = 1 << 16) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every edge of ``etype`` as ``(src, dst, eids)`` user ids, grouped by destination."""
    et = graph.schema.edge_type(etype)
    parts = []
    for dst in graph.iter_nodes(et.dst, batch_size):
        s = graph.sample_neighbors(et.canonical, dst, -1, strategy="full")
        parts.append((s.neighbors, np.repeat(dst, s.counts), s.eids))
    if not parts:
        z = np.zeros(0, np.int64)
        return z, z.copy(), z.copy()
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))


def edge_ids(graph: GraphService, etype, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The graph's edge id of each ``(src[i], dst[i])`` edge of ``etype`` (the first one of
    parallel edges), -1 where the graph has no such edge (e.g. held-out edges)."""
    out = np.full(len(src), -1, np.int64)
    if len(src) == 0:
        return out
    et = graph.schema.edge_type(etype)
    udst = np.unique(dst)
    s = graph.sample_neighbors(et.canonical, udst, -1, strategy="full")
    if len(s.neighbors) == 0:
        return out
    keys = pair_keys(s.neighbors, np.repeat(udst, s.counts))
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    want = pair_keys(src, dst)
    pos = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
    hit = keys[pos] == want
    out[hit] = np.asarray(s.eids)[order[pos[hit]]]
    return out


class LinkLoader(MinibatchLoader):
    """Minibatches of seed edges, DGL DataLoader + ``as_edge_prediction_sampler`` style.

    Args:
        graph: a GraphService.
        edges: etype -> ``(src, dst)`` user-id arrays of the seed edges (a tuple for a graph
            with one edge type), or ``(src, dst, eids)`` with their edge ids; ``"all"`` (or
            ``{etype: "all"}``) reads every edge of the type.
        sampler: a NeighborSampler or its per-layer fanouts.
        edge_data: optional etype -> name -> array aligned with the seed edges (e.g. ratings),
            put in ``pair_graph.edata``.
        negatives: negatives per seed edge (0: none), drawn with ``graph.negative_sample``
            (``negative_strategy``: uniform, or degree = P ~ in-degree^0.75), rejecting
            existing edges.
        exclude: None, "self", "reverse_types" or "node_pairs" (see the module docstring).
        reverse_etypes: etype -> reverse etype, for ``exclude="reverse_types"``.
        Other keyword arguments as :class:`~graphplat.sampling.loader.NodeLoader`.

    Yields ``(input_nodes, pair_graph, neg_pair_graph, blocks)``, or without negatives
    ``(input_nodes, pair_graph, blocks)``. As in DGL, both pair graphs hold the seed nodes'
    ids in ``ndata[dgl.NID]``, ``pair_graph.edata[dgl.EID]`` holds the seed edges' ids in the
    graph (looked up once when only ``(src, dst)`` is given; -1 for pairs the graph does not
    have, such as held-out edges) and ``neg_pair_graph`` has no edge ids.
    """

    def __init__(self, graph: GraphService, edges, sampler, *, edge_data=None, negatives: int = 0,
                 negative_strategy: str = "uniform", exclude: Optional[str] = None,
                 reverse_etypes: Optional[Mapping] = None, **kw):
        kw.setdefault("labels", None)
        super().__init__(graph, sampler, **kw)
        schema = graph.schema
        if isinstance(edges, str) or isinstance(edges, tuple):
            if len(schema.etypes) != 1:
                raise ValueError(f"edges must be a dict edge type -> (src, dst) for a graph with edge types "
                                 f"{schema.etypes}")
            edges = {schema.canonical_etypes[0]: edges}
        self.edges: Dict[Canonical, Tuple[np.ndarray, np.ndarray]] = {}
        self.eids: Dict[Canonical, np.ndarray] = {}
        for key, value in edges.items():
            et = schema.edge_type(key)
            eids = None
            if isinstance(value, str):
                if value != "all":
                    raise ValueError(f"edges of {et.canonical_str}: expected (src, dst) or 'all', got {value!r}")
                src, dst, eids = all_edges(graph, et.canonical)
            else:
                if len(value) not in (2, 3):
                    raise ValueError(f"edges of {et.canonical_str}: expected (src, dst) or (src, dst, eids), "
                                     f"got {len(value)} arrays")
                src, dst = (np.ascontiguousarray(a, dtype=np.int64) for a in value[:2])
                if len(value) == 3:
                    eids = np.ascontiguousarray(value[2], dtype=np.int64)
                    if eids.shape != src.shape:
                        raise ValueError(f"edges of {et.canonical_str}: eids must have the shape of src, "
                                         f"got {eids.shape} and {src.shape}")
                if src.shape != dst.shape or src.ndim != 1:
                    raise ValueError(f"edges of {et.canonical_str}: src and dst must be 1-D of equal length, "
                                     f"got {src.shape} and {dst.shape}")
                for name, nt, ids in (("src", et.src, src), ("dst", et.dst, dst)):
                    missing = ~graph.lookup(nt, ids)
                    if missing.any():
                        raise IndexError(f"edges of {et.canonical_str}: {name} ids {ids[missing][:5].tolist()} "
                                         f"are not {nt!r} nodes")
            self.edges[et.canonical] = (src, dst)
            self.eids[et.canonical] = edge_ids(graph, et.canonical, src, dst) if eids is None \
                else np.asarray(eids, np.int64)
        self.edge_data: Dict[Canonical, Dict[str, np.ndarray]] = {}
        for key, data in (edge_data or {}).items():
            k = schema.edge_type(key).canonical
            if k not in self.edges:
                raise ValueError(f"edge_data names {schema.edge_type(key).canonical_str}, which has no seed edges")
            for name, arr in data.items():
                arr = np.asarray(arr)
                if len(arr) != len(self.edges[k][0]):
                    raise ValueError(f"edge_data {name!r} of {schema.edge_type(key).canonical_str} has "
                                     f"{len(arr)} rows for {len(self.edges[k][0])} edges")
            self.edge_data[k] = {n: np.asarray(a) for n, a in data.items()}
        if negatives < 0:
            raise ValueError(f"negatives must be >= 0, got {negatives}")
        if negative_strategy not in NEGATIVE_STRATEGIES:
            raise ValueError(f"negative_strategy must be one of {NEGATIVE_STRATEGIES}, got {negative_strategy!r}")
        if exclude not in EXCLUDE:
            raise ValueError(f"exclude must be one of {EXCLUDE}, got {exclude!r}")
        self.reverse_etypes: Dict[Canonical, Canonical] = {}
        if exclude == "reverse_types":
            if not reverse_etypes:
                raise ValueError("exclude='reverse_types' needs reverse_etypes={etype: reverse etype}")
            for a, b in reverse_etypes.items():
                ea, eb = schema.edge_type(a), schema.edge_type(b)
                if (ea.src, ea.dst) != (eb.dst, eb.src):
                    raise ValueError(f"{eb.canonical_str} cannot be the reverse of {ea.canonical_str}: "
                                     "its endpoints are not swapped")
                self.reverse_etypes[ea.canonical] = eb.canonical
        self.negatives = int(negatives)
        self.negative_strategy = negative_strategy
        self.exclude = exclude
        self._etype_of = np.concatenate([np.full(len(s), i, np.int64) for i, (s, _) in enumerate(self.edges.values())])
        self._offsets = np.cumsum([0] + [len(s) for s, _ in self.edges.values()])

    def _num_items(self) -> int:
        return len(self._etype_of)

    def _exclusion(self, pos: Dict[Canonical, Tuple[np.ndarray, np.ndarray]]) -> Optional[EdgeExclusion]:
        if self.exclude is None:
            return None
        keys: Dict[Canonical, list] = {}
        for et, (s, d) in pos.items():
            if self.exclude == "node_pairs":
                for other in self.sampler.active_etypes:
                    if (other[0], other[2]) == (et[0], et[2]):
                        keys.setdefault(other, []).append(pair_keys(s, d))
                    if (other[0], other[2]) == (et[2], et[0]):
                        keys.setdefault(other, []).append(pair_keys(d, s))
                continue
            keys.setdefault(et, []).append(pair_keys(s, d))
            if self.exclude == "reverse_types" and et in self.reverse_etypes:
                keys.setdefault(self.reverse_etypes[et], []).append(pair_keys(d, s))
        return EdgeExclusion({et: np.concatenate(v) for et, v in keys.items()})

    def _make(self, items: np.ndarray, batch_seed: int) -> Minibatch:
        pos: Dict[Canonical, Tuple[np.ndarray, np.ndarray]] = {}
        pos_eids: Dict[Canonical, np.ndarray] = {}
        data: Dict[Canonical, Dict[str, np.ndarray]] = {}
        types = self._etype_of[items]
        for k, (et, (src, dst)) in enumerate(self.edges.items()):
            local = np.sort(items[types == k] - self._offsets[k])
            if len(local) == 0:
                continue
            pos[et] = (src[local], dst[local])
            pos_eids[et] = self.eids[et][local]
            if et in self.edge_data:
                data[et] = {n: a[local] for n, a in self.edge_data[et].items()}
        neg: Dict[Canonical, Tuple[np.ndarray, np.ndarray]] = {}
        if self.negatives:
            for k, (et, (s, _)) in enumerate(pos.items()):
                neg[et] = self.graph.negative_sample(et, s, self.negatives, strategy=self.negative_strategy,
                                                     seed=derive_seed(batch_seed, 1, k))
        # Seeds: every endpoint of the positive and negative pairs, in order of appearance.
        ends: Dict[str, list] = {}
        for pairs in (pos, neg):
            for et, (s, d) in pairs.items():
                ends.setdefault(et[0], []).append(s)
                ends.setdefault(et[2], []).append(d)
        seeds = {}
        for nt, arrs in ends.items():
            allv = np.concatenate(arrs)
            _, first = np.unique(allv, return_index=True)
            seeds[nt] = allv[np.sort(first)]
        sub = self._sample(seeds, batch_seed, self._exclusion(pos))
        feats, labels = self._fetch(sub)
        return Minibatch(sub, feats, labels, extra={"pos": pos, "neg": neg, "edge_data": data,
                                                    "pos_eids": pos_eids})

    def _pair_graph(self, mb: Minibatch, pairs, data=None, eids=None):
        import dgl
        import torch

        seeds = mb.subgraph.seeds
        maps = {nt: _core.IdMap(ids) for nt, ids in seeds.items()}
        graph_data = {}
        for et in self.schema.canonical_etypes:
            if et in pairs:
                s, d = pairs[et]
                graph_data[et] = (torch.from_numpy(maps[et[0]].lookup(s)), torch.from_numpy(maps[et[2]].lookup(d)))
            else:
                z = torch.zeros(0, dtype=torch.int64)
                graph_data[et] = (z, z)
        num = {nt: len(seeds.get(nt, ())) for nt in self.schema.ntypes}
        g = dgl.heterograph(graph_data, num_nodes_dict=num, idtype=torch.int64)
        for nt, ids in seeds.items():
            g.nodes[nt].data[dgl.NID] = torch.from_numpy(ids)
        for et, cols in (data or {}).items():
            for name, arr in cols.items():
                g.edges[et].data[name] = torch.from_numpy(np.ascontiguousarray(arr))
        if eids is not None:
            for et in self.schema.canonical_etypes:
                g.edges[et].data[dgl.EID] = tensor_of(eids.get(et, np.zeros(0, np.int64)))
        return g

    def _convert_dgl(self, mb: Minibatch):
        pair = self._pair_graph(mb, mb.extra["pos"], mb.extra["edge_data"], mb.extra["pos_eids"])
        blocks = self._blocks(mb)
        inputs = self._nodes(mb.subgraph.input_nodes)
        if self.negatives:
            return inputs, pair, self._pair_graph(mb, mb.extra["neg"]), blocks
        return inputs, pair, blocks
