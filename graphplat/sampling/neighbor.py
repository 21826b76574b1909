"""Multi-layer heterogeneous neighbor sampling over any GraphService (DGL's NeighborSampler
semantics), producing :class:`~graphplat.sampling.subgraph.SampledSubgraph`.

Randomness: layer ``l`` (counted from the seeds) of edge type ``k`` (schema order) samples
with the core RNG key ``(batch_seed, l + k * HOP_STRIDE, position in the frontier)``. The
result is a pure function of the batch seed and the graph, whatever the partitioning, the
replica, the thread count or the prefetch depth.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from graphplat import _core
from graphplat.sampling.subgraph import SampledLayer, SampledSubgraph
from graphplat.schema import GraphSchema
from graphplat.service import GraphService
from graphplat.typing import Canonical

HOP_STRIDE = 4096
# Ids in [0, DENSE_ID_FACTOR * n + DENSE_ID_SLACK) are relabeled with dense markers.
DENSE_ID_FACTOR = 4
DENSE_ID_SLACK = 1024
STRATEGIES = tuple(_core.STRATEGIES)
#: Every strategy name accepted everywhere a strategy is, to the core's name: the core's
#: own names and graph-learn aliases, plus the query layer's "random_without_replacement".
STRATEGY_ALIASES = {**{s: s for s in _core.STRATEGIES}, **_core.STRATEGY_ALIASES,
                    "random_without_replacement": "uniform"}
Fanout = Union[int, Mapping[object, int]]


def normalize_strategy(strategy: str) -> str:
    """Map a strategy name (graphplat's or graph-learn's) to the core's; ValueError if unknown."""
    try:
        return STRATEGY_ALIASES[strategy]
    except (KeyError, TypeError):
        raise ValueError(f"unknown sampling strategy {strategy!r}; expected one of "
                         f"{', '.join(sorted(STRATEGY_ALIASES))}") from None


def normalize_fanouts(schema: GraphSchema, fanouts: Sequence[Fanout]) -> List[Dict[Canonical, int]]:
    """Per-layer fanouts (input layer first, as DGL) as dicts canonical etype -> fanout.

    An int applies to every edge type; a dict names edge types (relation or canonical) and
    leaves the others unsampled. -1 takes the full neighborhood, 0 samples nothing.
    """
    if isinstance(fanouts, (int, np.integer)) or isinstance(fanouts, Mapping):
        raise ValueError("fanouts must be a list with one entry per layer, e.g. [10, 5]")
    if len(fanouts) == 0:
        raise ValueError("fanouts must name at least one layer")
    out = []
    for i, f in enumerate(fanouts):
        if isinstance(f, Mapping):
            layer = {et.canonical: 0 for et in schema.edge_types}
            for key, value in f.items():
                layer[schema.edge_type(key).canonical] = _check_fanout(value, i)
        else:
            value = _check_fanout(f, i)
            layer = {et.canonical: value for et in schema.edge_types}
        out.append(layer)
    return out


def _check_fanout(value, layer: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"fanout of layer {layer} must be an int, got {value!r}")
    if value < -1 or value > _core.MAX_FANOUT:
        raise ValueError(f"fanout of layer {layer} must be -1 (full) or in [0, {_core.MAX_FANOUT}], "
                         f"got {value}")
    return int(value)


def pair_keys(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """One 16-byte key per (src, dst) pair, for set membership tests with ``np.isin``."""
    pairs = np.empty((len(src), 2), dtype=np.int64)
    pairs[:, 0] = src
    pairs[:, 1] = dst
    return pairs.view(np.dtype((np.void, 16))).ravel()


@dataclass
class EdgeExclusion:
    """Edges (as (src, dst) user-id pairs per edge type) to leave out of sampled neighborhoods,
    e.g. a link-prediction batch's seed edges and their reverses."""

    pairs: Dict[Canonical, np.ndarray]

    def mask(self, etype: Canonical, src: np.ndarray, dst: np.ndarray) -> Optional[np.ndarray]:
        """bool mask of the sampled edges to keep, or None when nothing is excluded."""
        keys = self.pairs.get(etype)
        if keys is None or len(keys) == 0 or len(src) == 0:
            return None
        return ~np.isin(pair_keys(src, dst), keys)


class NeighborSampler:
    """Samples a multi-layer neighborhood of typed seeds, DGL ``NeighborSampler`` style.

    Args:
        schema: the graph's schema (fanout keys are checked against it).
        fanouts: one entry per layer, input layer first (``[15, 10, 5]`` samples 5 neighbors
            of each seed, then 10, then 15), each an int or a dict edge type -> int.
        strategy: uniform | weighted | topk | full (or graph-learn's random,
            random_without_replacement, edge_weight), one for all types or a dict per type.
        replace: sample with replacement.
        key_by_id: key each node's random draws by its node id (and the seed and hop) instead
            of its position in the batch's frontier, so a node draws the same neighbors alone
            and inside any batch (online scoring: Score(n) equals n's row of a ScoreBatch).
            Training keeps positions, which give a node new draws in every batch.
    """

    def __init__(self, schema: GraphSchema, fanouts: Sequence[Fanout], *,
                 strategy: Union[str, Mapping[object, str]] = "uniform", replace: bool = False,
                 key_by_id: bool = False):
        self.schema = schema
        self.fanouts = normalize_fanouts(schema, fanouts)
        self.etypes = [et.canonical for et in schema.edge_types]
        if isinstance(strategy, Mapping):
            per = {et: "uniform" for et in self.etypes}
            for k, v in strategy.items():
                per[schema.edge_type(k).canonical] = normalize_strategy(v)
        else:
            s = normalize_strategy(strategy)
            per = {et: s for et in self.etypes}
        for et, s in per.items():
            if s in ("weighted", "topk") and not schema.edge_type(et).weighted:
                raise ValueError(f"strategy {s!r} needs edge weights but edge type "
                                 f"{schema.edge_type(et).canonical_str} is not weighted")
        self.strategy = per
        self.replace = bool(replace)
        self.key_by_id = bool(key_by_id)
        self._relabelers: Dict[Tuple[int, str], Optional[_core.Relabeler]] = {}
        self._relabel_lock = threading.Lock()

    def _relabeler(self, graph: GraphService, ntype: str) -> Optional["_core.Relabeler"]:
        """A dense relabeler when ``ntype``'s ids are small non-negative ints (most datasets
        number nodes 0..n-1): markers instead of a hash table, about 3x faster."""
        key = (id(graph), ntype)
        if key not in self._relabelers:
            with self._relabel_lock:
                if key not in self._relabelers:
                    ids = graph.node_ids(ntype)
                    dense = None
                    if len(ids) and ids.min() >= 0 and ids.max() < DENSE_ID_FACTOR * len(ids) + DENSE_ID_SLACK:
                        dense = _core.Relabeler(int(ids.max()) + 1 + DENSE_ID_SLACK)
                    self._relabelers[key] = dense
        return self._relabelers[key]

    def _relabel(self, graph: GraphService, ntype: str, dst: np.ndarray, nbrs: np.ndarray):
        dense = self._relabeler(graph, ntype)
        if dense is not None:
            try:
                return dense.relabel(dst, nbrs)
            except IndexError:  # ids added online beyond the bound: rebuild next time
                self._relabelers.pop((id(graph), ntype), None)
        return _core.unique_and_relabel(dst, nbrs)

    @property
    def active_etypes(self) -> List[Canonical]:
        """Edge types sampled in at least one layer (schema order): the edge types of the
        blocks, so a model never sees a type it was not built for."""
        return [et for et in self.etypes if any(layer[et] != 0 for layer in self.fanouts)]

    @property
    def num_layers(self) -> int:
        """Number of layers (blocks) per sample."""
        return len(self.fanouts)

    def sample(self, graph: GraphService, seeds: Mapping[str, np.ndarray], *, seed: int = 0,
               exclude: Optional[EdgeExclusion] = None) -> SampledSubgraph:
        """Sample the layers above ``seeds`` (ntype -> distinct user ids).

        ``seed``: the batch's RNG seed. ``exclude``: edges removed from the sampled
        neighborhoods (after sampling, so such a seed may get fewer than ``fanout``).
        Returns a :class:`SampledSubgraph` whose last layer's destinations are ``seeds``.
        """
        frontier = {}
        for nt in self.schema.ntypes:
            ids = np.ascontiguousarray(seeds.get(nt, np.zeros(0, np.int64)), dtype=np.int64)
            frontier[nt] = ids
        unknown = set(seeds) - set(frontier)
        if unknown:
            raise ValueError(f"seeds name unknown node types {sorted(unknown)}; "
                             f"the schema has {self.schema.ntypes}")
        out = SampledSubgraph(seeds={nt: frontier[nt] for nt in seeds})
        graph.expect_multihop_sampling()  # a RemoteGraph starts its lazy topology replicas
        if exclude is None and not self.key_by_id:  # the fused path keys draws by position
            fused = self._sample_fused(graph, frontier, seed)
            if fused is not None:
                out.layers = fused
                return out
        layers: List[SampledLayer] = []
        for depth, fanout in enumerate(reversed(self.fanouts)):
            layer = self._sample_layer(graph, frontier, fanout, depth, seed, exclude)
            layers.append(layer)
            frontier = layer.src_nodes
        out.layers = layers[::-1]
        return out

    def _sample_fused(self, graph: GraphService, seeds: Dict[str, np.ndarray],
                      seed: int) -> Optional[List[SampledLayer]]:
        """One core call for every layer of a homogeneous graph held in one in-process
        partition (LocalGraph); the same answer as the hop-by-hop path, or None."""
        fused = getattr(graph, "sample_multihop", None)
        if fused is None or len(self.etypes) != 1:
            return None
        et = self.etypes[0]
        fanouts = [layer[et] for layer in reversed(self.fanouts)]
        if et[0] != et[2] or 0 in fanouts:
            return None
        hops = fused(et, seeds[et[2]], fanouts, strategy=self.strategy[et], replace=self.replace, seed=seed)
        if hops is None:
            return None
        layers = [SampledLayer(src_nodes={et[0]: nodes}, num_dst={et[0]: num_dst}, edges={et: (src, dst, eids)})
                  for nodes, num_dst, src, dst, eids in hops]
        return layers[::-1]

    def _sample_layer(self, graph: GraphService, dst: Dict[str, np.ndarray],
                      fanout: Dict[Canonical, int], depth: int, seed: int,
                      exclude: Optional[EdgeExclusion]) -> SampledLayer:
        # Sample every edge type whose destination type has nodes in the frontier.
        sampled: Dict[Canonical, Tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for k, et in enumerate(self.etypes):
            f = fanout[et]
            seeds = dst[et[2]]
            if f == 0 or len(seeds) == 0:
                continue
            s = graph.sample_neighbors(et, seeds, f, strategy=self.strategy[et], replace=self.replace,
                                       direction="in", seed=seed, hop=depth + k * HOP_STRIDE,
                                       positions=seeds if self.key_by_id else None)
            dst_local = np.repeat(np.arange(len(seeds), dtype=np.int64), s.counts)
            nbrs, eids = s.neighbors, s.eids
            if exclude is not None:
                keep = exclude.mask(et, nbrs, seeds[dst_local])
                if keep is not None:
                    nbrs, eids, dst_local = nbrs[keep], eids[keep], dst_local[keep]
            sampled[et] = (nbrs, dst_local, eids)
        # Relabel per source type: destination nodes first, then new neighbors in order.
        src_nodes: Dict[str, np.ndarray] = {}
        edges: Dict[Canonical, Tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for nt in self.schema.ntypes:
            ets = [et for et in sampled if et[0] == nt]
            if not ets:
                src_nodes[nt] = dst[nt]
                continue
            nbrs = np.concatenate([sampled[et][0] for et in ets]) if len(ets) > 1 else sampled[ets[0]][0]
            unique, local = self._relabel(graph, nt, dst[nt], nbrs)
            src_nodes[nt] = unique
            start = 0
            for et in ets:
                n = len(sampled[et][0])
                edges[et] = (local[start:start + n], sampled[et][1], sampled[et][2])
                start += n
        return SampledLayer(src_nodes=src_nodes, num_dst={nt: len(v) for nt, v in dst.items()},
                            edges=edges)
