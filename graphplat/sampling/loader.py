"""DGL-style minibatch loaders over any GraphService, with background prefetch.

``NodeLoader`` yields ``(input_nodes, output_nodes, blocks)`` exactly like
``dgl.dataloading.DataLoader`` with a ``NeighborSampler``: heterogeneous DGL blocks, the
same as ``dgl.create_block`` makes but built as CSC (:mod:`graphplat.sampling.dgl_block`),
input layer first, input features in ``blocks[0].srcdata``, labels in
``blocks[-1].dstdata``, user ids in ``dgl.NID`` and edge ids in ``dgl.EID``. For a graph with
one node type and one edge type the node collections are tensors, else dicts per type.

Reproducibility: batch ``i`` of epoch ``e`` is sampled with the seed
``derive_seed(seed, e, i)`` and the shuffle of epoch ``e`` with ``derive_seed(seed, e)``,
so the batches are bit-identical across runs, prefetch depths and thread counts, and whether
the consumer's thread or a prefetch worker produced them.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Union

import numpy as np

from graphplat.sampling.features import CacheStats, FeatureFetcher
from graphplat.sampling.neighbor import EdgeExclusion, NeighborSampler
from graphplat.sampling.pacing import Pace
from graphplat.sampling.seeds import derive_rng, derive_seed
from graphplat.sampling.subgraph import SampledSubgraph, tensor_of, to_dgl_blocks
from graphplat.service import GraphService

log = logging.getLogger(__name__)

Seeds = Union[np.ndarray, Mapping[str, np.ndarray]]
OUTPUTS = ("dgl", "numpy", "pyg")


#: ``blocks[-1].dstdata`` key of how often each seed was drawn (loaders with ``sample_weights``)
SEED_COUNT = "_seed_count"


@dataclass
class Minibatch:
    """A sampled minibatch before conversion: the structure, the input features of
    ``subgraph.input_nodes`` (ntype -> name -> rows) and the seeds' labels (ntype -> rows)."""

    subgraph: SampledSubgraph
    features: Dict[str, Dict[str, np.ndarray]]
    labels: Dict[str, np.ndarray] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


@dataclass
class LoaderStats:
    """Counters of a loader since it was built."""

    batches: int = 0
    sampled_edges: int = 0
    input_nodes: int = 0
    sample_seconds: float = 0.0
    fetch_seconds: float = 0.0
    convert_seconds: float = 0.0
    #: batches produced in the consumer's thread (prefetch=0, or a one-worker loader whose
    #: consumer leaves no time to overlap, see :mod:`graphplat.sampling.pacing`)
    inline_batches: int = 0
    #: batches produced by a prefetch worker
    background_batches: int = 0
    #: switches of a one-worker loader between background and inline production
    mode_switches: int = 0
    cache: CacheStats = field(default_factory=CacheStats)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts) -> None:
        """Add ``counts`` (counter name -> amount) at once; loader workers call it
        concurrently."""
        with self._lock:
            for name, amount in counts.items():
                setattr(self, name, getattr(self, name) + amount)

    def as_dict(self) -> dict:
        """The counters as a plain dict, with the cache hit rate."""
        return {"batches": self.batches, "sampled_edges": self.sampled_edges,
                "input_nodes": self.input_nodes, "sample_seconds": round(self.sample_seconds, 4),
                "fetch_seconds": round(self.fetch_seconds, 4),
                "convert_seconds": round(self.convert_seconds, 4),
                "inline_batches": self.inline_batches, "background_batches": self.background_batches,
                "mode_switches": self.mode_switches,
                "cache_rows": self.cache.rows, "cache_hits": self.cache.hits,
                "cache_hit_rate": round(self.cache.hit_rate, 4)}


def normalize_seeds(graph: GraphService, seeds: Seeds, what: str = "seeds") -> Dict[str, np.ndarray]:
    """``seeds`` as ntype -> int64 ids; a bare array needs a graph with one node type."""
    schema = graph.schema
    if isinstance(seeds, Mapping):
        out = {schema.node_type(nt).name: np.ascontiguousarray(v, dtype=np.int64) for nt, v in seeds.items()}
    else:
        if len(schema.ntypes) != 1:
            raise ValueError(f"{what} must be a dict node type -> ids for a graph with node types "
                             f"{schema.ntypes}")
        out = {schema.ntypes[0]: np.ascontiguousarray(seeds, dtype=np.int64)}
    for nt, ids in out.items():
        if ids.ndim != 1:
            raise ValueError(f"{what} of {nt!r} must be 1-D, got shape {ids.shape}")
    return out


def warn_edgeless_seeds(schema, sampler: NeighborSampler, seed_types: Sequence[str]) -> List[str]:
    """Log a warning for each seed type that no sampled edge type ends at: its blocks have
    no edges, so a GNN sees only the seeds' own features (usually a forgotten reverse
    type). Returns those seed types."""
    active = [schema.edge_type(k) for k in sampler.active_etypes]
    out = []
    for nt in seed_types:
        if any(et.dst == nt for et in active):
            continue
        out.append(nt)
        leaving = [et for et in schema.edge_types if et.src == nt]
        hint = (f"; declare a reverse type, e.g. 'reverse: {leaving[0].relation}-by' on "
                f"{leaving[0].canonical_str}" if leaving else "")
        log.warning("no sampled edge type ends at node type %r: the blocks of its seeds have "
                    "0 edges, messages cannot reach them%s", nt, hint)
    return out


class MinibatchLoader:
    """Shared machinery of the loaders: batch plan, prefetch, features, conversion.

    Subclasses implement :meth:`_num_items`, :meth:`_make` (items of one batch -> Minibatch)
    and :meth:`_convert_dgl`.
    """

    def __init__(self, graph: GraphService, sampler: Union[NeighborSampler, Sequence], *,
                 batch_size: int, shuffle: bool = False, drop_last: bool = False, seed: int = 0,
                 prefetch: int = 2, num_workers: Optional[int] = None,
                 features: Optional[Mapping[str, Sequence[str]]] = None, labels: Optional[str] = "label",
                 cache_mb: float = 0.0, output: str = "dgl", feature_dtype: Optional[str] = None,
                 sample_weights: Optional[np.ndarray] = None):
        if not isinstance(sampler, NeighborSampler):
            sampler = NeighborSampler(graph.schema, sampler)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if num_workers is None:
            # One worker keeps a local graph's cores busy; over servers a second one samples
            # the next batch while this one waits for its feature rows.
            num_workers = 2 if prefetch and graph.partitions_over_network else 1
        if prefetch < 0 or num_workers < 1:
            raise ValueError(f"prefetch must be >= 0 and num_workers >= 1, got {prefetch}, {num_workers}")
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.graph = graph
        self.schema = graph.schema
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.seed = int(seed)
        self.prefetch = int(prefetch)
        self.num_workers = int(num_workers)
        self.output = output
        self.labels = labels
        self.fetcher = FeatureFetcher(graph, features, cache_mb, feature_dtype)
        self.stats = LoaderStats(cache=self.fetcher.stats)
        #: where a one-worker prefetching loader produces its batches (kept across epochs)
        # (one worker also produces inline while the consumer idles; several keep batches
        # in flight then, which hides server latency)
        self.pace = Pace(idle_inline=self.num_workers == 1)
        self.epoch = 0
        self.homogeneous = len(self.schema.ntypes) == 1 and len(self.schema.etypes) == 1
        self.sample_weights = None
        if sample_weights is not None:
            w = np.asarray(sample_weights, dtype=np.float64)
            if w.ndim != 1 or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
                raise ValueError("sample_weights must be 1-D, finite, >= 0 and not all 0")
            self.sample_weights = w / w.sum()

    # ------------------------------------------------------------------ plan
    def _num_items(self) -> int:
        raise NotImplementedError

    def __len__(self) -> int:
        n = self._num_items()
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s shuffle and batch seeds for the next iteration (the loader also
        advances by itself after each full pass)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    def batch_indices(self, epoch: int) -> List[np.ndarray]:
        """Item indices of every batch of ``epoch``, in order. With ``sample_weights`` an
        epoch is ``n`` items drawn with replacement with those probabilities (seeded by the
        epoch); a batch may then repeat an item (see :data:`SEED_COUNT`)."""
        n = self._num_items()
        if self.sample_weights is not None:
            if len(self.sample_weights) != n:
                raise ValueError(f"sample_weights has {len(self.sample_weights)} entries for {n} items")
            order = derive_rng(self.seed, epoch).choice(n, n, replace=True, p=self.sample_weights)
        else:
            order = derive_rng(self.seed, epoch).permutation(n) if self.shuffle else np.arange(n)
        cuts = range(0, n - (self.batch_size - 1 if self.drop_last else 0), self.batch_size)
        return [order[c:c + self.batch_size] for c in cuts if c < n]

    def batch_seed(self, epoch: int, index: int) -> int:
        """The RNG seed of batch ``index`` of ``epoch``."""
        return derive_seed(self.seed, epoch, index)

    # ------------------------------------------------------------------ batches
    def _make(self, items: np.ndarray, batch_seed: int) -> Minibatch:
        raise NotImplementedError

    def _sample(self, seeds: Mapping[str, np.ndarray], batch_seed: int,
                exclude: Optional[EdgeExclusion] = None) -> SampledSubgraph:
        t0 = time.perf_counter()
        sub = self.sampler.sample(self.graph, seeds, seed=batch_seed, exclude=exclude)
        self.stats.add(sample_seconds=time.perf_counter() - t0)
        return sub

    def _fetch(self, sub: SampledSubgraph) -> tuple:
        t0 = time.perf_counter()
        feats = {nt: self.fetcher.fetch(nt, ids) for nt, ids in sub.input_nodes.items() if len(ids)}
        labels = {}
        if self.labels is not None:
            for nt, ids in sub.seeds.items():
                if self.labels in self.schema.node_type(nt).feature_names and len(ids):
                    labels[nt] = self.graph.node_features(nt, ids, [self.labels])[self.labels]
        self.stats.add(fetch_seconds=time.perf_counter() - t0, batches=1, sampled_edges=sub.num_edges,
                       input_nodes=sum(len(v) for v in sub.input_nodes.values()))
        return feats, labels

    def _convert(self, mb: Minibatch):
        if self.output == "numpy":
            return mb
        t0 = time.perf_counter()
        out = self._convert_dgl(mb) if self.output == "dgl" else self._convert_pyg(mb)
        self.stats.add(convert_seconds=time.perf_counter() - t0)
        return out

    def _convert_dgl(self, mb: Minibatch):
        raise NotImplementedError

    def _convert_pyg(self, mb: Minibatch):
        from graphplat.sampling.pyg import to_pyg
        return to_pyg(mb, self.schema)

    def _blocks(self, mb: Minibatch) -> list:

        blocks = to_dgl_blocks(mb.subgraph, self.schema.ntypes, self.sampler.active_etypes)
        if blocks:
            for nt, feats in mb.features.items():
                for name, arr in feats.items():
                    blocks[0].srcnodes[nt].data[name] = tensor_of(arr)
            for nt, lab in mb.labels.items():
                blocks[-1].dstnodes[nt].data[self.labels] = tensor_of(lab)
            for nt, counts in mb.extra.get(SEED_COUNT, {}).items():
                blocks[-1].dstnodes[nt].data[SEED_COUNT] = tensor_of(counts.astype(np.float32))
        return blocks

    def _nodes(self, by_type: Mapping[str, np.ndarray]):
        import torch

        if self.homogeneous:
            return torch.from_numpy(by_type[self.schema.ntypes[0]])
        return {nt: torch.from_numpy(v) for nt, v in by_type.items()}

    def _produce(self, items: np.ndarray, batch_seed: int):
        return self._convert(self._make(items, batch_seed))

    def _produce_counted(self, items: np.ndarray, batch_seed: int, counter: str,
                         pace: Optional[Pace] = None):
        """:meth:`_produce`, counted in ``stats.<counter>`` and timed into ``pace`` if given."""
        t0 = time.perf_counter()
        out = self._produce(items, batch_seed)
        if pace is not None:
            pace.produced(time.perf_counter() - t0)
        self.stats.add(**{counter: 1})
        return out

    def __iter__(self) -> Iterator:
        epoch = self.epoch
        plan = self.batch_indices(epoch)
        jobs = [(items, self.batch_seed(epoch, i)) for i, items in enumerate(plan)]
        self.epoch = epoch + 1
        if self.prefetch == 0:
            for items, bs in jobs:
                yield self._produce_counted(items, bs, "inline_batches")
            return
        yield from self._paced(jobs)

    def _paced(self, jobs: list) -> Iterator:
        """Batches in order, produced by ``num_workers`` background threads while that pays
        and inline (in the consumer's thread) while it does not: the consumer leaves no core
        idle, or (one worker) it asks for the next batch at once (see
        :mod:`graphplat.sampling.pacing` for why and when). Futures are consumed in
        submission order, so the mode never reorders batches."""
        pace = self.pace
        # several workers would update the production average from several threads at once;
        # only the one-worker rule needs it
        timed = pace if self.num_workers == 1 else None
        with ThreadPoolExecutor(self.num_workers, thread_name_prefix="graphplat-loader") as pool:
            pending: collections.deque = collections.deque()
            submitted = 0  # jobs[:submitted] are queued or already produced
            handed = 0.0  # when the last batch went to the consumer
            handed_cpu: Optional[float] = None  # process CPU then, if nothing of ours runs after

            def take(k: int):
                nonlocal submitted, handed, handed_cpu
                # Inline only once the queue is drained: batches queued before the switch
                # come out first, so the order never changes and no two threads produce.
                if pace.inline and not pending:
                    submitted = k + 1
                    batch = self._produce_counted(*jobs[k], "inline_batches", timed)
                else:
                    if not pace.inline:
                        while submitted < min(len(jobs), k + 1 + self.prefetch):
                            pending.append(pool.submit(self._produce_counted, *jobs[submitted],
                                                       "background_batches", timed))
                            submitted += 1
                    batch = pending.popleft().result()
                # with no batch queued, only the consumer runs until it asks again: its CPU
                # use says whether a background worker would find an idle core
                handed_cpu = time.process_time() if not pending else None
                handed = time.perf_counter()
                return batch

            try:
                for k in range(len(jobs)):
                    # The batch goes straight to the consumer: this frame keeps no reference,
                    # so its recycled buffers come back as soon as the consumer drops it.
                    yield take(k)
                    switches = pace.switches
                    pace.consumed(time.perf_counter() - handed,
                                  None if handed_cpu is None else time.process_time() - handed_cpu)
                    if pace.switches != switches:
                        self.stats.add(mode_switches=1)
            finally:
                for f in pending:
                    f.cancel()


class NodeLoader(MinibatchLoader):
    """Minibatches of seed nodes for node classification/regression, DGL DataLoader style.

    Args:
        graph: a GraphService (LocalGraph or RemoteGraph).
        seeds: ids of the nodes to predict: an array (graphs with one node type) or a dict
            ntype -> ids; a shuffled batch may mix types, as DGL's does.
        sampler: a :class:`NeighborSampler` or its per-layer fanouts (``[10, 5]`` or
            ``[{"cites": 10}, {"cites": 5}]``).
        batch_size, shuffle, drop_last: as DGL's DataLoader.
        seed: makes every batch reproducible (see the module docstring).
        prefetch: batches sampled ahead in the background (0: synchronous). The loader
            adapts to its consumer (:mod:`graphplat.sampling.pacing`), starting inline
            (nothing overlaps the first batch): it produces in the consumer's own thread
            while the consumer keeps every core busy (a CPU training step: a worker would
            only slow it down) and, with one worker, while the consumer asks for the next
            batch at once (a bare loop: nothing to overlap, and the hand-off would cost
            about 10 % per batch); in the background otherwise (a GPU step, or one that
            leaves a core idle). ``stats.inline_batches`` / ``stats.background_batches``
            count where batches were produced, ``stats.mode_switches`` the changes.
        num_workers: background threads (the C++ sampler releases the GIL); default 1, or 2
            when some partitions are read over the network (one batch is sampled while
            another waits for its feature rows). Two or more workers stay in the background
            in a bare loop: batches in flight together hide server latency.
        features: ntype -> feature names put in ``blocks[0].srcdata`` (default: every
            float32 feature).
        labels: name of the label feature put in ``blocks[-1].dstdata`` (None: no labels).
        cache_mb: client-side feature cache budget (useful over a RemoteGraph).
        feature_dtype: None (exact float32 features), "float16" or "bfloat16": float32
            features move and are cached in that format and reach the model as float32
            values rounded to it (see :mod:`graphplat.storage.wire_dtype` for the error).
        output: "dgl" (``(input_nodes, output_nodes, blocks)``), "numpy" (a
            :class:`Minibatch`) or "pyg" (``torch_geometric`` ``Data``/``HeteroData``).
        sample_weights: per seed (in seed order), the probability weight of drawing it: an
            epoch then draws ``len(seeds)`` seeds with replacement (class-balanced sampling,
            see :meth:`batch_indices`) instead of a permutation. A batch samples each drawn
            node once and gives how often it was drawn in ``blocks[-1].dstdata[SEED_COUNT]``
            (float32), the weight of its loss term.

    Yields ``(input_nodes, output_nodes, blocks)``.
    """

    def __init__(self, graph: GraphService, seeds: Seeds, sampler, **kw):
        super().__init__(graph, sampler, **kw)
        by_type = normalize_seeds(graph, seeds)
        for nt, ids in by_type.items():
            if len(np.unique(ids)) != len(ids):
                raise ValueError(f"seeds of {nt!r} contain duplicates")
            missing = ~graph.lookup(nt, ids)
            if missing.any():
                raise IndexError(f"seeds {ids[missing][:5].tolist()} ({int(missing.sum())} in all) "
                                 f"are not {nt!r} nodes")
        warn_edgeless_seeds(self.schema, self.sampler, list(by_type))
        self.seed_types = list(by_type)
        self._type_of = np.concatenate([np.full(len(v), i, np.int64) for i, v in enumerate(by_type.values())])
        self._ids = np.concatenate(list(by_type.values())) if by_type else np.zeros(0, np.int64)

    def _num_items(self) -> int:
        return len(self._ids)

    def seeds_of(self, items: np.ndarray) -> Dict[str, np.ndarray]:
        """Seed ids per type of the item indices ``items`` (in item order within a type)."""
        types = self._type_of[items]
        return {nt: self._ids[items[types == i]] for i, nt in enumerate(self.seed_types)
                if (types == i).any()}

    def input_ids_of(self, items: np.ndarray) -> Dict[str, np.ndarray]:
        """Per type, the positions of the item indices ``items`` in that type's seed array
        (PyG's ``input_id``), in the order of :meth:`seeds_of`."""
        types = self._type_of[items]
        starts = np.searchsorted(self._type_of, np.arange(len(self.seed_types)))
        return {nt: items[types == i] - starts[i] for i, nt in enumerate(self.seed_types)
                if (types == i).any()}

    def _make(self, items: np.ndarray, batch_seed: int) -> Minibatch:
        extra = {}
        if self.sample_weights is not None:  # drawn with replacement: sample each node once
            items, counts = np.unique(items, return_counts=True)
            types = self._type_of[items]
            extra[SEED_COUNT] = {nt: counts[types == i] for i, nt in enumerate(self.seed_types)
                                 if (types == i).any()}
        sub = self._sample(self.seeds_of(items), batch_seed)
        feats, labels = self._fetch(sub)
        return Minibatch(sub, feats, labels, extra={"input_id": self.input_ids_of(items), **extra})

    def collate(self, seeds: Seeds, batch_seed: int):
        """Sample and convert one batch of explicit ``seeds`` with ``batch_seed`` (used by
        coded training, where each slice's seed comes from (seed, epoch, step, slice))."""
        by_type = normalize_seeds(self.graph, seeds)
        sub = self._sample(by_type, batch_seed)
        feats, labels = self._fetch(sub)
        return self._convert(Minibatch(sub, feats, labels))

    def _convert_dgl(self, mb: Minibatch):
        return (self._nodes(mb.subgraph.input_nodes), self._nodes(mb.subgraph.seeds), self._blocks(mb))
