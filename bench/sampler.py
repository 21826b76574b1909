#!/usr/bin/env python
"""Benchmark multi-hop neighbor sampling: graphplat's C++ core against DGL 2.1 on CPU.

Methods (all sample IN-neighbors of the seeds from the same CSC graph and the same seed
batches, and all produce block-ready, relabelled hops):

* ``graphplat``: ``graphplat._core.sample_multihop`` (sampling + unique/relabel in C++).
* ``dgl_fused``: one ``DGLGraph.sample_neighbors_fused`` call per hop, exactly the loop of
  ``dgl.dataloading.NeighborSampler``'s fused branch, but used at every thread count.
* ``dgl_neighbor_sampler``: ``dgl.dataloading.NeighborSampler(fanouts, replace=...)
  .sample_blocks`` with its defaults (``fused=True``). DGL 2.1 only takes the fused branch
  when ``dgl.utils.get_num_threads() > 1``; on 1 thread it runs the classic path.
* ``dgl_classic``: ``NeighborSampler(..., fused=False)``, i.e. ``dgl.sampling.sample_neighbors``
  + ``dgl.to_block`` per hop.

Plus a memory reference: random int64 gathers (``np.take`` on 1 or 2 Python threads, numpy
releases the GIL) from an array much larger than the last-level cache.

Everything is logged to stderr; the only thing written to stdout is one JSON object.
Run ``python bench/sampler.py --help`` for the flags.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

os.environ.setdefault("DGLBACKEND", "pytorch")

import numpy as np  # noqa: E402

from graphplat.datasets.synthetic import generate_powerlaw_csc  # noqa: E402

LOG = logging.getLogger("bench.sampler")

ALL_METHODS = ("graphplat", "dgl_fused", "dgl_neighbor_sampler", "dgl_classic")
DGL_METHODS = ("dgl_fused", "dgl_neighbor_sampler", "dgl_classic")
BENCH_DIR = Path(__file__).resolve().parent
# The memory reference gathers from an array of at least this many int64 entries
# (256 MiB, far above any last-level cache of the machines we run on).
MEM_REF_MIN_ENTRIES = 32 * 1024 * 1024
# run_configuration's key for the memory probes around graphplat's part of each repetition.
PAIRED_MEMORY_KEY = "_memory_probe"

# Defaults of the full run and of --quick; None in argparse means "pick from here".
FULL_DEFAULTS = dict(nodes=2_500_000, edges=60_000_000, reps=5, batches=50, warmup=3,
                     mem_reads=16_000_000)
QUICK_DEFAULTS = dict(nodes=200_000, edges=4_000_000, reps=3, batches=20, warmup=2,
                      mem_reads=8_000_000)


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------

def _int_list(text: str) -> List[int]:
    """Parse a comma-separated list of positive ints such as ``15,10,5``."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {text!r}") from exc
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive ints, got {text!r}")
    return values


def _method_list(text: str) -> List[str]:
    """Parse a comma-separated list of method names (see ALL_METHODS)."""
    values = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in values if v not in ALL_METHODS]
    if bad or not values:
        raise argparse.ArgumentTypeError(f"unknown methods {bad}; choose from {ALL_METHODS}")
    return values


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line; fill size/repetition defaults from --quick or the full run."""
    p = argparse.ArgumentParser(
        description=(
            "Benchmark 3-hop neighbor sampling (graphplat._core.sample_multihop vs DGL 2.1 "
            "fused / NeighborSampler / classic) on a power-law graph, plus a random-gather "
            "memory reference. Logs go to stderr, one JSON object goes to stdout."),
    )
    g = p.add_argument_group("graph")
    g.add_argument("--graph", type=Path, default=None, metavar="DIR",
                   help="directory holding a CSC graph as indptr.npy and indices.npy (int64; "
                        "row v of the CSC lists the in-neighbors (sources) of v). If omitted, "
                        "a Chung-Lu power-law graph of --nodes/--edges is generated and cached.")
    g.add_argument("--nodes", type=int, default=None,
                   help=f"nodes of the generated graph (default {FULL_DEFAULTS['nodes']:,}; "
                        f"{QUICK_DEFAULTS['nodes']:,} with --quick)")
    g.add_argument("--edges", type=int, default=None,
                   help=f"directed edges of the generated graph (default "
                        f"{FULL_DEFAULTS['edges']:,}; {QUICK_DEFAULTS['edges']:,} with --quick)")
    g.add_argument("--alpha", type=float, default=2.2,
                   help="power-law exponent of the degree distribution (default %(default)s; weights "
                        "w_i = (i + i0)^(-1/(alpha-1)))")
    g.add_argument("--max-degree", type=int, default=None,
                   help="expected in-degree of the heaviest node; sets the offset i0 "
                        "(default: min(20000, nodes // 20))")
    g.add_argument("--cache-dir", type=Path, default=None,
                   help="where the generated graph is cached (default "
                        "bench/.cache/powerlaw_<nodes>_<edges>/); reruns load it instead of "
                        "regenerating")
    b = p.add_argument_group("sampling")
    b.add_argument("--batch-size", type=int, default=1024, help="seeds per batch (default %(default)s)")
    b.add_argument("--fanouts", type=_int_list, default="15,10,5",
                   help="fanout per hop (default %(default)s), from the seeds outward (hop 0 first, graphplat's "
                        "order). DGL's NeighborSampler lists layers input-first, so it receives "
                        "the reversed list: every method does the same work")
    b.add_argument("--replace", choices=("both", "true", "false"), default="both",
                   help="sample with replacement (true), without (false), or both (default %(default)s)")
    b.add_argument("--threads", type=_int_list, default="1,2",
                   help="thread counts to run, comma-separated (default %(default)s)")
    b.add_argument("--methods", type=_method_list, default=",".join(ALL_METHODS),
                   help="methods to run, a comma-separated subset of %(default)s (the "
                        "default); graphplat is skipped with a warning if graphplat._core is missing")
    b.add_argument("--batches", type=int, default=None,
                   help=f"timed batches per repetition and method (default "
                        f"{FULL_DEFAULTS['batches']}; {QUICK_DEFAULTS['batches']} with --quick)")
    b.add_argument("--reps", type=int, default=None,
                   help=f"repetitions; methods are interleaved within each repetition (default "
                        f"{FULL_DEFAULTS['reps']}; {QUICK_DEFAULTS['reps']} with --quick)")
    b.add_argument("--warmup", type=int, default=None,
                   help=f"untimed warm-up batches per method and configuration (default "
                        f"{FULL_DEFAULTS['warmup']}; {QUICK_DEFAULTS['warmup']} with --quick)")
    b.add_argument("--mem-reads", type=int, default=None,
                   help=f"random reads per memory-reference measurement (default "
                        f"{FULL_DEFAULTS['mem_reads']:,}; {QUICK_DEFAULTS['mem_reads']:,} "
                        f"with --quick)")
    b.add_argument("--seed", type=int, default=0,
                   help="seed for graph generation, seed batches and the samplers' RNGs (default %(default)s)")
    p.add_argument("--quick", action="store_true",
                   help="small graph, fewer batches and reps: finishes in about 2 minutes on "
                        "2 cores (explicit flags still override)")
    p.add_argument("--log-level", default="INFO",
                   choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                   help="log level of the stderr log (default %(default)s)")
    args = p.parse_args(argv)

    defaults = QUICK_DEFAULTS if args.quick else FULL_DEFAULTS
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    for key in ("nodes", "edges", "batches", "reps", "batch_size", "mem_reads"):
        if getattr(args, key) < 1:
            p.error(f"--{key.replace('_', '-')} must be >= 1")
    if args.warmup < 0:
        p.error("--warmup must be >= 0")
    if args.alpha <= 1.0:
        p.error("--alpha must be > 1")
    return args


# --------------------------------------------------------------------------------------
# Machine info
# --------------------------------------------------------------------------------------

def machine_info(packages: Sequence[str] = ("torch", "dgl")) -> Dict[str, object]:
    """Cores, CPU model, memory and the versions of ``packages`` on this machine."""
    from importlib import metadata

    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_gib = round(int(line.split()[1]) / 2**20, 1)
                    break
    except OSError:
        pass
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # pragma: no cover - reported, not fatal
            versions[name] = None
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        affinity = None
    return {"cpu_model": model, "logical_cores": os.cpu_count(), "usable_cores": affinity,
            "memory_gib": mem_gib, "platform": platform.platform(), "versions": versions}


class OtherCpuMonitor:
    """Measures the cores kept busy by *other* processes between ``start()`` and ``stop()``:
    system busy time from /proc/stat minus this process's CPU time. ``stop()`` returns None
    where /proc/stat is unavailable."""

    @staticmethod
    def _busy_total() -> Optional[Tuple[int, int]]:
        try:
            with open("/proc/stat") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return sum(fields) - idle, sum(fields)

    def start(self) -> "OtherCpuMonitor":
        """Record the starting counters."""
        self._stat = self._busy_total()
        self._cpu, self._wall = time.process_time(), time.perf_counter()
        return self

    def stop(self) -> Optional[float]:
        """Other processes' busy cores averaged since ``start()``."""
        end = self._busy_total()
        if self._stat is None or end is None or end[1] <= self._stat[1]:
            return None
        wall = time.perf_counter() - self._wall
        own_cores = (time.process_time() - self._cpu) / wall
        busy_cores = (end[0] - self._stat[0]) / (end[1] - self._stat[1]) * (os.cpu_count() or 1)
        return max(0.0, busy_cores - own_cores)


def other_cpu_load(interval: float = 0.5) -> Optional[float]:
    """Cores kept busy by other processes over ``interval`` seconds of sleeping."""
    monitor = OtherCpuMonitor().start()
    time.sleep(interval)
    return monitor.stop()


def cpu_contention_warnings(mem_ref: Dict[str, dict], load_start: Optional[float],
                            threads: Sequence[int], results: Sequence[dict]) -> List[str]:
    """Warnings when something else was using the CPU: other processes busy at start, or the
    memory reference (embarrassingly parallel) not reaching ~t cores of CPU time on t threads.
    Such runs under-report multi-threaded throughput; rerun on an idle machine."""
    warnings = []
    if load_start is not None and load_start > 0.25:
        warnings.append(f"other processes kept {load_start:.2f} cores busy at start: "
                        "results may be affected")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    # A repetition on t threads is disturbed when others plus our t threads exceed the cores.
    for r in results:
        busy = r.get("other_busy_cores_max")
        if busy is not None and busy > (cores or 1) - r["threads"] + 0.25:
            warnings.append(f"{r['method']} threads={r['threads']} replace={r['replace']}: "
                            f"other processes kept up to {busy:.2f} cores busy during a "
                            "repetition; this result is not trustworthy")
    for t in threads:
        ref = mem_ref.get(str(t), {})
        util = ref.get("cpu_utilization")
        if ref.get("contended") or (t > 1 and util is not None and util < 0.9 * t):
            warnings.append(f"memory reference on {t} threads was contended (cpu utilization "
                            f"{util:.2f}): its reads/s and the ratios to it are not trustworthy")
    for w in warnings:
        LOG.warning(w)
    return warnings


# --------------------------------------------------------------------------------------
# Graph: generation, caching, loading
# --------------------------------------------------------------------------------------

def validate_csc(indptr: np.ndarray, indices: np.ndarray) -> None:
    """Raise ValueError unless ``(indptr, indices)`` is a valid square int64 CSC."""
    if indptr.ndim != 1 or indices.ndim != 1 or len(indptr) < 2:
        raise ValueError("indptr and indices must be 1-D, indptr of length >= 2")
    n = len(indptr) - 1
    if indptr[0] != 0 or indptr[-1] != len(indices):
        raise ValueError(f"indptr must start at 0 and end at len(indices)={len(indices)}")
    if np.any(np.diff(indptr) < 0):
        raise ValueError("indptr must be non-decreasing")
    if len(indices) and (indices.min() < 0 or indices.max() >= n):
        raise ValueError(f"indices must lie in [0, {n}) (the graph must be square)")


def load_csc(directory: Path) -> Tuple[np.ndarray, np.ndarray]:
    """Load ``indptr.npy``/``indices.npy`` from ``directory`` as validated int64 arrays."""
    arrays = []
    for name in ("indptr", "indices"):
        a = np.load(directory / f"{name}.npy")
        if a.dtype != np.int64:
            LOG.warning("%s.npy is %s, converting to int64", name, a.dtype)
            a = a.astype(np.int64)
        arrays.append(np.ascontiguousarray(a))
    indptr, indices = arrays
    validate_csc(indptr, indices)
    return indptr, indices


def save_csc(directory: Path, indptr: np.ndarray, indices: np.ndarray, meta: dict) -> None:
    """Write the CSC and its generation parameters atomically (tmp files, then rename)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in (("indptr", indptr), ("indices", indices)):
        tmp = directory / f".{name}.tmp.npy"
        np.save(tmp, array)
        os.replace(tmp, directory / f"{name}.npy")
    (directory / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


def get_graph(args: argparse.Namespace) -> Tuple[np.ndarray, np.ndarray, Dict[str, object]]:
    """Load ``--graph``, or load the cached generated graph, or generate and cache it."""
    if args.graph is not None:
        LOG.info("loading graph from %s", args.graph)
        indptr, indices = load_csc(args.graph)
        return indptr, indices, {"source": "file", "path": str(args.graph)}
    max_degree = args.max_degree or max(1, min(20_000, args.nodes // 20))
    meta = {"generator": "chung-lu", "nodes": args.nodes, "edges": args.edges,
            "alpha": args.alpha, "max_degree": max_degree, "seed": args.seed}
    cache = args.cache_dir or BENCH_DIR / ".cache" / f"powerlaw_{args.nodes}_{args.edges}"
    meta_file = cache / "meta.json"
    if meta_file.exists() and (cache / "indptr.npy").exists() and (cache / "indices.npy").exists():
        cached = json.loads(meta_file.read_text())
        if cached == meta:
            LOG.info("loading cached graph from %s", cache)
            indptr, indices = load_csc(cache)
            return indptr, indices, {"source": "generated (cached)", "path": str(cache), **meta}
        LOG.warning("cache %s was generated with %s; regenerating", cache, cached)
    t0 = time.perf_counter()
    indptr, indices = generate_powerlaw_csc(args.nodes, args.edges, args.alpha, max_degree,
                                            args.seed)
    LOG.info("generated in %.1fs; caching in %s", time.perf_counter() - t0, cache)
    save_csc(cache, indptr, indices, meta)
    return indptr, indices, {"source": "generated", "path": str(cache), **meta}


def graph_stats(indptr: np.ndarray, indices: np.ndarray) -> Dict[str, object]:
    """Node/edge counts and in/out degree statistics of the CSC."""
    n = len(indptr) - 1
    in_deg = np.diff(indptr)
    out_deg = np.bincount(indices, minlength=n)
    return {"nodes": int(n), "edges": int(len(indices)),
            "mean_degree": float(len(indices) / n),
            "max_in_degree": int(in_deg.max()), "max_out_degree": int(out_deg.max()),
            "median_in_degree": float(np.median(in_deg)),
            "zero_in_degree_nodes": int(np.count_nonzero(in_deg == 0))}


# --------------------------------------------------------------------------------------
# Libraries, threads, graph objects
# --------------------------------------------------------------------------------------

def import_graphplat_core():
    """Return the ``graphplat._core`` module, or None (logged) if it cannot be imported."""
    try:
        import graphplat._core as core
        return core
    except Exception as exc:  # ImportError, or a broken build
        LOG.warning("graphplat._core unavailable (%s: %s); skipping graphplat",
                    type(exc).__name__, exc)
        return None


def set_threads(num_threads: int, core) -> None:
    """Set the thread count of torch, DGL's OpenMP runtime and graphplat's core."""
    import dgl
    import torch
    torch.set_num_threads(num_threads)
    dgl.utils.set_num_threads(num_threads)
    if core is not None:
        core.set_num_threads(num_threads)
    got = dgl.utils.get_num_threads()
    if got != num_threads:
        LOG.warning("DGL reports %d OpenMP threads after asking for %d", got, num_threads)


def build_dgl_graph(indptr: np.ndarray, indices: np.ndarray):
    """A DGL graph holding only the CSC (what ``sample_neighbors(edge_dir='in')`` reads);
    edge ids are positions in ``indices``, like graphplat's CSR without eids."""
    import dgl
    import torch
    n = len(indptr) - 1
    empty = torch.empty(0, dtype=torch.int64)
    return dgl.graph(("csc", (torch.from_numpy(indptr), torch.from_numpy(indices), empty)),
                     num_nodes=n)


def build_graphplat_csr(core, indptr: np.ndarray, indices: np.ndarray):
    """A graphplat CSR (used as CSC: rows are destinations) over the same arrays. The core
    copies writable inputs, so DGL and graphplat each hold their own copy."""
    return core.CSR(indptr, indices, num_cols=len(indptr) - 1)


def verify_same_graph(indptr: np.ndarray, indices: np.ndarray, g, csr,
                      rng: np.random.Generator, probes: int = 64) -> None:
    """Check that DGL's graph (and graphplat's CSR) have exactly our in-degrees, and the same
    in-neighbor sets on a few random nodes. Raises AssertionError otherwise."""
    import torch
    n = len(indptr) - 1
    deg = np.diff(indptr)
    assert g.num_nodes() == n and g.num_edges() == len(indices), "DGL graph size differs"
    assert np.array_equal(g.in_degrees().numpy(), deg), "DGL in-degrees differ"
    for v in rng.choice(n, min(probes, n), replace=False):
        src, _ = g.in_edges(torch.tensor([int(v)]))
        expect = np.sort(indices[indptr[v]:indptr[v + 1]])
        assert np.array_equal(np.sort(src.numpy()), expect), f"DGL in-neighbors of {v} differ"
    if csr is not None:
        assert csr.num_rows == n and csr.nnz == len(indices), "graphplat CSR size differs"
        assert np.array_equal(np.asarray(csr.degrees()), deg), "graphplat degrees differ"
    LOG.info("verified: DGL%s graph has the same in-degrees and neighbor sets",
             " and graphplat" if csr is not None else "")


# --------------------------------------------------------------------------------------
# Runners: each returns fn(seeds_numpy, seeds_torch, key) -> result, plus a counter
# result -> (sampled_edges, input_nodes). Edges are counted the same way for every method:
# the sum over hops of the edges in that hop's block.
# --------------------------------------------------------------------------------------

Runner = Callable[[np.ndarray, object, int], object]
Counter = Callable[[object], Tuple[int, int]]


def make_graphplat_runner(core, csr, fanouts: Sequence[int], replace: bool,
                          num_threads: int) -> Tuple[Runner, Counter]:
    """graphplat's full path: ``sample_multihop`` (sampling + unique/relabel, in C++)."""
    fanouts = list(fanouts)

    def run(seeds_np, _seeds_t, key):
        return core.sample_multihop(csr, seeds_np, fanouts, strategy="uniform",
                                    replace=replace, seed=key, num_threads=num_threads)

    def count(hops):
        return sum(len(h.src) for h in hops), max(len(h.nodes) for h in hops)

    return run, count


def _count_blocks(blocks) -> Tuple[int, int]:
    """Sampled edges and input (outermost source) nodes of a list of DGL blocks."""
    return (sum(int(b.num_edges()) for b in blocks),
            max(int(b.num_src_nodes()) for b in blocks))


def make_dgl_fused_runner(g, fanouts: Sequence[int], replace: bool) -> Tuple[Runner, Counter]:
    """``g.sample_neighbors_fused`` hop by hop (NeighborSampler's fused loop, any thread
    count), reusing one ``mapping`` dict as NeighborSampler does."""
    import dgl
    mapping: dict = {}
    fanouts = list(fanouts)

    def run(_seeds_np, seeds_t, _key):
        blocks, nodes = [], seeds_t
        for fanout in fanouts:  # hop 0 (nearest the seeds) first
            block = g.sample_neighbors_fused(nodes, fanout, edge_dir="in", replace=replace,
                                             mapping=mapping)
            nodes = block.srcdata[dgl.NID]
            blocks.append(block)
        return blocks

    return run, _count_blocks


def make_dgl_sampler_runner(g, fanouts: Sequence[int], replace: bool,
                            fused: bool) -> Tuple[Runner, Counter]:
    """``dgl.dataloading.NeighborSampler(...).sample_blocks``; ``fused=False`` is the classic
    ``sample_neighbors`` + ``to_block`` path. NeighborSampler wants layers input-first, so
    it gets the fanouts reversed."""
    import dgl
    sampler = dgl.dataloading.NeighborSampler(list(reversed(fanouts)), replace=replace,
                                              fused=fused)

    def run(_seeds_np, seeds_t, _key):
        return sampler.sample_blocks(g, seeds_t)[2]

    return run, _count_blocks


def make_runner(method: str, ctx: dict, replace: bool, num_threads: int) -> Tuple[Runner, Counter]:
    """Build the runner of ``method`` for one (replace, threads) configuration."""
    fanouts = ctx["fanouts"]
    if method == "graphplat":
        return make_graphplat_runner(ctx["core"], ctx["csr"], fanouts, replace, num_threads)
    if method == "dgl_fused":
        return make_dgl_fused_runner(ctx["g"], fanouts, replace)
    if method == "dgl_neighbor_sampler":
        return make_dgl_sampler_runner(ctx["g"], fanouts, replace, fused=True)
    if method == "dgl_classic":
        return make_dgl_sampler_runner(ctx["g"], fanouts, replace, fused=False)
    raise ValueError(method)


# --------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------

def make_seed_batches(num_nodes: int, batch_size: int, count: int,
                      rng: np.random.Generator) -> List[Tuple[np.ndarray, object]]:
    """``count`` batches of distinct random seeds, as (numpy, torch) views of one array."""
    import torch
    if batch_size > num_nodes:
        raise ValueError(f"--batch-size {batch_size} exceeds the {num_nodes} nodes")
    batches = []
    for _ in range(count):
        seeds = rng.choice(num_nodes, batch_size, replace=False).astype(np.int64)
        batches.append((seeds, torch.from_numpy(seeds)))
    return batches


def _involuntary_switches() -> int:
    """Involuntary context switches of this process so far (all threads): each is a thread
    preempted while runnable, a direct sign of CPU contention."""
    try:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
    except (ImportError, OSError):  # pragma: no cover - not Unix
        return 0


def time_batches(run: Runner, count: Counter, batches, key_base: int) -> Dict[str, object]:
    """Run every batch once; per-batch latency (s), sampled edges, input nodes, CPU time,
    and the cores other processes kept busy meanwhile (see OtherCpuMonitor)."""
    latencies, edges, inputs = [], [], []
    cpu = 0.0
    monitor = OtherCpuMonitor().start()
    preempted0 = _involuntary_switches()
    for i, (seeds_np, seeds_t) in enumerate(batches):
        c0, t0 = time.process_time(), time.perf_counter()
        result = run(seeds_np, seeds_t, key_base + i)
        latencies.append(time.perf_counter() - t0)
        cpu += time.process_time() - c0
        e, n = count(result)
        del result
        edges.append(e)
        inputs.append(n)
    return {"latencies": latencies, "edges": edges, "inputs": inputs, "cpu": cpu,
            "other_busy": monitor.stop(), "preempted": _involuntary_switches() - preempted0}


def run_configuration(ctx: dict, methods: Sequence[str], replace: bool, num_threads: int,
                      args: argparse.Namespace) -> Dict[str, List[dict]]:
    """Warm up every method, then ``reps`` repetitions, methods interleaved in each (in
    reverse order every other repetition), all on the same seed batches. Returns per method a list of per-repetition timing dicts, and
    under ``PAIRED_MEMORY_KEY`` a list of (before, after) reads/s of the memory probe run
    right before and right after graphplat's batches of each repetition (when
    ``ctx["memory_probe"]`` is set and graphplat is among the methods)."""
    probe = ctx.get("memory_probe") if "graphplat" in methods else None
    runners = {m: make_runner(m, ctx, replace, num_threads) for m in methods}
    for run, count in runners.values():
        time_batches(run, count, ctx["warmup_batches"], key_base=10**9)
    per_rep: Dict[str, List[dict]] = {m: [] for m in methods}
    limit = (os.cpu_count() or 1) - num_threads + 0.25
    for rep in range(args.reps):
        # Alternate the order (as bench/storage.py does), so no method always runs first.
        order = list(runners) if rep % 2 == 0 else list(reversed(list(runners)))
        for m in order:
            run, count = runners[m]
            before = probe(num_threads) if probe and m == "graphplat" else None
            r = time_batches(run, count, ctx["batches"], key_base=rep * 100_003)
            if before is not None:
                per_rep.setdefault(PAIRED_MEMORY_KEY, []).append((before, probe(num_threads)))
            per_rep[m].append(r)
            if r["other_busy"] is not None and r["other_busy"] > limit:
                LOG.warning("other processes kept %.2f cores busy during %s (rep %d): CPU "
                            "contended", r["other_busy"], m, rep + 1)
            LOG.debug("threads=%d replace=%s rep=%d %s: %.1f ms/batch", num_threads, replace,
                      rep, m, 1e3 * sum(r["latencies"]) / len(r["latencies"]))
        LOG.info("threads=%d replace=%s rep %d/%d: %s", num_threads, replace, rep + 1,
                 args.reps, ", ".join(
                     f"{m} {sum(per_rep[m][-1]['edges']) / sum(per_rep[m][-1]['latencies']) / 1e6:.1f}"
                     for m in methods) + " Medges/s")
    return per_rep


def summarize(per_rep: List[dict], batch_size: int) -> Dict[str, object]:
    """Median-over-reps throughput, median/p99 batch latency over all batches, sanity counts."""
    eps = [sum(r["edges"]) / sum(r["latencies"]) for r in per_rep]
    sps = [batch_size * len(r["latencies"]) / sum(r["latencies"]) for r in per_rep]
    cpu = [r["cpu"] / sum(r["latencies"]) for r in per_rep]
    lat_ms = 1e3 * np.concatenate([r["latencies"] for r in per_rep])
    edges = np.concatenate([r["edges"] for r in per_rep])
    inputs = np.concatenate([r["inputs"] for r in per_rep])
    return {"edges_per_s": float(np.median(eps)),
            "edges_per_s_reps": [round(x) for x in eps],
            "seeds_per_s": float(np.median(sps)),
            "latency_ms_median": float(np.median(lat_ms)),
            "latency_ms_p99": float(np.percentile(lat_ms, 99)),
            "mean_edges_per_batch": float(edges.mean()),
            "mean_input_nodes_per_batch": float(inputs.mean()),
            "cpu_utilization": float(np.median(cpu)),
            "preemptions_per_batch": float(np.median(
                [r["preempted"] / len(r["latencies"]) for r in per_rep])),
            "other_busy_cores_max": max((r["other_busy"] for r in per_rep
                                         if r["other_busy"] is not None), default=None)}


# --------------------------------------------------------------------------------------
# Memory reference
# --------------------------------------------------------------------------------------

class RandomGather:
    """``np.take`` of ``num_reads`` random positions of ``target`` (the memory reference's
    access pattern), split over ``t`` Python threads: numpy releases the GIL there."""

    def __init__(self, target: np.ndarray, num_reads: int, rng: np.random.Generator):
        self.target = target
        self.num_reads = num_reads
        self.positions = rng.integers(0, len(target), num_reads, dtype=np.int64)
        self.out = np.empty(num_reads, dtype=target.dtype)
        np.take(target, self.positions, out=self.out, mode="clip")  # warm-up: page faults on out

    def seconds(self, pool: ThreadPoolExecutor, t: int) -> float:
        """Wall time of one gather of all positions on ``t`` threads of ``pool``."""
        bounds = np.linspace(0, self.num_reads, t + 1).astype(np.int64)
        slices = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        t0 = time.perf_counter()
        list(pool.map(lambda s: np.take(self.target, self.positions[s], out=self.out[s],
                                        mode="clip"), slices))
        return time.perf_counter() - t0


def make_memory_probe(target: np.ndarray, num_reads: int, rng: np.random.Generator):
    """A function ``probe(t) -> random reads/s`` of one :class:`RandomGather` on ``t``
    threads: the memory reference measured between repetitions, so each repetition's
    throughput can be divided by the memory speed of the same moment (the VM's memory speed
    drifts by up to 2.5x within a run)."""
    gather = RandomGather(target, num_reads, rng)

    def probe(t: int) -> float:
        with ThreadPoolExecutor(max_workers=t) as pool:
            return num_reads / gather.seconds(pool, t)

    return probe


def memory_reference(target: np.ndarray, num_reads: int, thread_counts: Sequence[int],
                     reps: int, rng: np.random.Generator) -> Dict[str, dict]:
    """Random int64 gathers ``target[positions]`` per second, on each thread count.

    Each of ``t`` Python threads runs ``np.take`` on its slice of the positions (numpy
    releases the GIL there, which ``cpu_utilization`` ~ t confirms). Median over the ``reps``
    repetitions during which no other process competed for the cores (over all of them,
    flagged ``contended``, if every one was disturbed).
    """
    gather = RandomGather(target, num_reads, rng)
    cores = os.cpu_count() or 1
    result = {}
    for t in thread_counts:
        samples = []  # (reads/s, cpu utilization, other busy cores)
        with ThreadPoolExecutor(max_workers=t) as pool:
            gather.seconds(pool, t)  # warm-up (thread start-up)
            for _ in range(reps):
                monitor = OtherCpuMonitor().start()
                c0 = time.process_time()
                dt = gather.seconds(pool, t)
                samples.append((num_reads / dt, (time.process_time() - c0) / dt,
                                monitor.stop()))
        clean = [x for x in samples if x[2] is None or x[2] <= cores - t + 0.25]
        used = clean or samples
        result[str(t)] = {"random_reads_per_s": float(np.median([x[0] for x in used])),
                          "cpu_utilization": float(np.median([x[1] for x in used])),
                          "reps_used": len(used), "contended": not clean}
        LOG.info("memory reference, %d thread(s): %.1f M random reads/s (cpu %.2f, %d/%d "
                 "uncontended reps)", t, result[str(t)]["random_reads_per_s"] / 1e6,
                 result[str(t)]["cpu_utilization"], len(clean), len(samples))
    return result


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------

def compute_ratios(results: List[dict], mem_ref: Dict[str, dict]) -> List[dict]:
    """graphplat edges/s over each DGL method and over random reads/s, per (threads, replace):
    over the separately measured memory reference, and paired (the median over repetitions
    of each repetition's edges/s over the memory probes measured right before and after
    it)."""
    by_key = {(r["method"], r["threads"], r["replace"]): r for r in results}
    ratios = []
    for (method, threads, replace), r in by_key.items():
        if method != "graphplat":
            continue
        entry = {"threads": threads, "replace": replace}
        for other in DGL_METHODS:
            o = by_key.get((other, threads, replace))
            entry[f"graphplat_over_{other}"] = (
                r["edges_per_s"] / o["edges_per_s"] if o else None)
        ref = mem_ref.get(str(threads))
        entry["graphplat_over_memory_reference"] = (
            r["edges_per_s"] / ref["random_reads_per_s"] if ref else None)
        paired = r.get("memory_probe_reads_per_s_reps")
        entry["graphplat_over_memory_reference_paired"] = (
            float(np.median(np.divide(r["edges_per_s_reps"], paired))) if paired else None)
        ratios.append(entry)
    return ratios


def _round_floats(obj, digits: int = 4):
    """Round floats in a nested structure to ``digits`` significant digits for readability."""
    if isinstance(obj, float):
        return float(f"{obj:.{digits}g}")
    if isinstance(obj, dict):
        return {k: _round_floats(v, digits) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_round_floats(v, digits) for v in obj]
    return obj


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------

def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the benchmark and print one JSON object on stdout."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    t_start = time.perf_counter()
    load_start = other_cpu_load()
    import dgl  # noqa: F401  (imported late: its import is slow and logs to stderr)

    methods = list(dict.fromkeys(args.methods))
    core = import_graphplat_core() if "graphplat" in methods else None
    if core is None:
        methods = [m for m in methods if m != "graphplat"]
    replaces = {"both": [False, True], "true": [True], "false": [False]}[args.replace]
    notes = [
        "fanouts are listed from the seeds outward (hop 0 first); DGL NeighborSampler "
        "receives them reversed so every method samples the same fanout at the same hop",
        "sampled edges = sum over hops of the edges of that hop's block, for every method",
        "dgl_neighbor_sampler is NeighborSampler(fused=True).sample_blocks; DGL 2.1 uses "
        "the fused kernel there only when dgl.utils.get_num_threads() > 1, so at 1 thread it "
        "equals dgl_classic",
        "cpu_utilization = process CPU time / wall time (includes OpenMP spin-waiting)",
    ]

    rng = np.random.default_rng(args.seed)
    indptr, indices, graph_info = get_graph(args)
    graph_info.update(graph_stats(indptr, indices))
    n = graph_info["nodes"]
    LOG.info("graph: %d nodes, %d edges, max in-degree %d", n, graph_info["edges"],
             graph_info["max_in_degree"])

    dgl.seed(args.seed)
    g = build_dgl_graph(indptr, indices)
    csr = build_graphplat_csr(core, indptr, indices) if core is not None else None
    verify_same_graph(indptr, indices, g, csr, rng)

    if len(indices) >= MEM_REF_MIN_ENTRIES:
        target, target_desc = indices, "graph indices array"
    else:
        target, target_desc = np.arange(MEM_REF_MIN_ENTRIES, dtype=np.int64), "np.arange"
    ctx = {"core": core, "csr": csr, "g": g, "fanouts": list(args.fanouts),
           "batches": make_seed_batches(n, args.batch_size, args.batches, rng),
           "warmup_batches": make_seed_batches(n, args.batch_size, args.warmup, rng),
           "memory_probe": make_memory_probe(target, args.mem_reads, rng)}

    results = []
    for t in args.threads:
        set_threads(t, core)
        for replace in replaces:
            per_rep = run_configuration(ctx, methods, replace, t, args)
            probe = per_rep.pop(PAIRED_MEMORY_KEY, None)
            for m in methods:
                results.append({"method": m, "threads": t, "replace": replace,
                                **summarize(per_rep[m], args.batch_size)})
                if m == "graphplat" and probe:
                    # The memory speed during the repetition: the geometric mean of the
                    # probes that bracket it.
                    results[-1]["memory_probe_reads_per_s_reps"] = [
                        round(math.sqrt(b * a)) for b, a in probe]
                    results[-1]["memory_probe_before_after_reads_per_s_reps"] = [
                        [round(b), round(a)] for b, a in probe]
    mem_ref = memory_reference(target, args.mem_reads, args.threads, max(5, args.reps), rng)
    for t in args.threads:
        mem_ref[str(t)].update({"array_entries": int(len(target)), "array": target_desc,
                                "reads": args.mem_reads, "method": "np.take on t Python threads"})

    machine = machine_info()
    machine["other_busy_cores_at_start"] = load_start
    machine["other_busy_cores_at_end"] = other_cpu_load()
    report = {
        "machine": machine,
        "graph": graph_info,
        "config": {"quick": args.quick, "methods": methods, "batch_size": args.batch_size,
                   "fanouts": list(args.fanouts), "replace": replaces,
                   "threads": list(args.threads), "batches_per_rep": args.batches,
                   "reps": args.reps, "warmup_batches": args.warmup,
                   "mem_reads": args.mem_reads, "seed": args.seed,
                   "graphplat_available": core is not None},
        "memory_reference": mem_ref,
        "results": results,
        "ratios": compute_ratios(results, mem_ref),
        "warnings": cpu_contention_warnings(mem_ref, load_start, args.threads, results),
        "notes": notes,
        "elapsed_s": time.perf_counter() - t_start,
    }
    json.dump(_round_floats(report), sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
