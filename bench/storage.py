#!/usr/bin/env python
"""Benchmark the partitioned graph store: ingest, server cold start, 3-hop sampling through
RemoteGraph vs LocalGraph, single-seed 2-hop latency, and durable online writes.

On the power-law graph of ``bench/sampler.py`` (2.5 M nodes / 60 M edges; ``--quick``:
200 k / 4 M), turned into a homogeneous graph (node type ``_N``, edge type ``_E``, a
16-dim float32 node feature ``feat``) and ingested as 2 partitions:

1. **ingest**: NPY inputs (``ids.npy``, ``feat.npy``, ``src.npy``, ``dst.npy``) ->
   ``graphplat.storage.ingest.ingest(spec, store, partitions=2)`` in a child process;
   edges/s end to end (reading the NPY included) and the child's peak RSS.
2. **cold start**: one ``graphplat serve`` subprocess per partition, started together;
   seconds from ``Popen`` until the gRPC health check answers SERVING; edges loaded/s.
3. **3-hop sampling** (fanouts 15,10,5, batches of 1024 random seeds): the same
   hop-by-hop loop (``sample_neighbors`` + ``_core.unique_and_relabel``) over LocalGraph
   (``open_graph(store, read_only=True)``, in this process) and RemoteGraph (``connect``,
   loopback gRPC), with and without fetching the input nodes' features, interleaved per
   repetition on the same seeds; ``_core.sample_multihop`` on the raw CSC as the in-process
   reference. Reports remote/local (target >= 0.5).
4. **single-seed 2-hop latency** (fanouts 10,5) for seeds owned by partition 0 through
   RemoteGraph, plus one SampleNeighbors RPC straight to partition 0's server, on 1 and 2
   client threads: p50/p99 and requests/s.
5. **durable online writes** on a *copy* of the store (two fresh primaries): batches of
   1000 and 10000 new edges between existing nodes, straight to partition 0's primary
   (``PartitionClient.add_edges_in``) and through ``RemoteGraph.add_edges``, each after a
   compaction (empty online delta); edges/s and acknowledged-batch latency. The cached
   store is never written.

Logs go to stderr; stdout gets one JSON object. ``python bench/storage.py --help``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
if str(REPO_ROOT) not in sys.path:  # `python bench/storage.py` puts only bench/ on the path
    sys.path.insert(0, str(REPO_ROOT))

from bench._common import name_list, raise_on_sigterm, start_guarded, terminate  # noqa: E402
from bench.sampler import (  # noqa: E402
    _int_list,
    _involuntary_switches,
    _round_floats,
    other_cpu_load,
    save_csc,
    validate_csc,
)
from bench.sampler import machine_info as _machine_info  # noqa: E402
from graphplat.datasets.synthetic import generate_powerlaw_csc  # noqa: E402

LOG = logging.getLogger("bench.storage")

NTYPE = "_N"
ETYPE = ("_N", "_E", "_N")
FEATURE = "feat"
SERVICE_NAME = "graphplat.v1.GraphPartition"
SECTIONS = ("ingest", "cold_start", "sampling", "latency", "writes")

FULL_DEFAULTS = dict(nodes=2_500_000, edges=60_000_000, reps=5, batches=30, warmup=3,
                     latency_seconds=10.0, write_batches="1000:300,10000:60", write_seconds=25.0)
QUICK_DEFAULTS = dict(nodes=200_000, edges=4_000_000, reps=3, batches=20, warmup=3,
                      latency_seconds=4.0, write_batches="1000:60,10000:12", write_seconds=8.0)


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def _write_batches(text: str) -> List[Tuple[int, int]]:
    """``SIZE:COUNT,...`` -> [(edges per batch, max batches)]."""
    out = []
    try:
        for item in text.split(","):
            size, _, count = item.partition(":")
            out.append((int(size), int(count or 50)))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected SIZE:COUNT,..., got {text!r}") from exc
    if not out or any(s < 1 or c < 1 for s, c in out):
        raise argparse.ArgumentTypeError(f"sizes and counts must be >= 1, got {text!r}")
    return out


_sections = name_list(SECTIONS, "sections")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark graphplat's partitioned store: ingest rate, server cold start, "
                    "3-hop sampling RemoteGraph vs LocalGraph, single-seed 2-hop latency and "
                    "durable online writes. Logs go to stderr, one JSON object to stdout.")
    g = p.add_argument_group("graph (the sampler benchmark's generated power-law graph)")
    g.add_argument("--nodes", type=int, default=None,
                   help=f"nodes (default {FULL_DEFAULTS['nodes']:,}; "
                        f"{QUICK_DEFAULTS['nodes']:,} with --quick)")
    g.add_argument("--edges", type=int, default=None,
                   help=f"edges (default {FULL_DEFAULTS['edges']:,}; "
                        f"{QUICK_DEFAULTS['edges']:,} with --quick)")
    g.add_argument("--alpha", type=float, default=2.2, help="power-law exponent (default %(default)s)")
    g.add_argument("--max-degree", type=int, default=None,
                   help="expected in-degree of the heaviest node (default min(20000, nodes // 20), "
                        "as in bench/sampler.py, so its cache is shared)")
    g.add_argument("--feature-dim", type=int, default=16,
                   help="width of the float32 node feature 'feat' (default %(default)s; 0 = featureless)")
    g.add_argument("--partitions", type=int, default=2, help="partitions (default %(default)s)")
    g.add_argument("--cache-dir", type=Path, default=BENCH_DIR / ".cache",
                   help="where graphs, NPY inputs and stores are cached (default bench/.cache)")
    g.add_argument("--reuse-store", action="store_true",
                   help="skip the ingest when a complete store with the same parameters is cached "
                        "(its ingest numbers are then reported from the run that built it)")
    g.add_argument("--workdir", type=Path, default=None,
                   help="server logs and the store copy for the write test (default: a temporary "
                        "directory next to the cache, deleted at the end)")
    s = p.add_argument_group("sampling")
    s.add_argument("--batch-size", type=int, default=1024, help="seeds per batch (default %(default)s)")
    s.add_argument("--fanouts", type=_int_list, default="15,10,5",
                   help="3-hop fanouts, hop 0 (nearest the seeds) first (default %(default)s)")
    s.add_argument("--batches", type=int, default=None,
                   help=f"timed batches per repetition and method (default {FULL_DEFAULTS['batches']}; "
                        f"{QUICK_DEFAULTS['batches']} with --quick)")
    s.add_argument("--reps", type=int, default=None,
                   help=f"repetitions, methods interleaved in each (default {FULL_DEFAULTS['reps']})")
    s.add_argument("--warmup", type=int, default=None, help="untimed warm-up batches per method")
    s.add_argument("--no-features", action="store_true",
                   help="skip the sample+features variants of the 3-hop benchmark")
    lt = p.add_argument_group("latency")
    lt.add_argument("--latency-fanouts", type=_int_list, default="10,5",
                    help="single-seed request fanouts (default %(default)s)")
    lt.add_argument("--latency-seconds", type=float, default=None,
                    help=f"seconds per latency configuration (default {FULL_DEFAULTS['latency_seconds']}; "
                         f"{QUICK_DEFAULTS['latency_seconds']} with --quick)")
    lt.add_argument("--client-threads", type=_int_list, default="1,2",
                    help="concurrent client threads to run (default %(default)s)")
    w = p.add_argument_group("writes")
    w.add_argument("--write-batches", type=_write_batches, default=None,
                   help=f"SIZE:MAX_BATCHES,... (default {FULL_DEFAULTS['write_batches']}; "
                        f"{QUICK_DEFAULTS['write_batches']} with --quick)")
    w.add_argument("--write-seconds", type=float, default=None,
                   help="time limit per write configuration (default "
                        f"{FULL_DEFAULTS['write_seconds']}; {QUICK_DEFAULTS['write_seconds']} with --quick)")
    p.add_argument("--sections", type=_sections, default=",".join(SECTIONS),
                   help="sections to run (default: all of %(default)s; cold_start always runs "
                        "when sampling or latency does, since they need the servers)")
    p.add_argument("--cold-start-reps", type=int, default=3,
                   help="times all servers are started (and stopped again but the last) to time "
                        "the cold start; medians are reported (default %(default)s)")
    p.add_argument("--server-threads", type=int, default=16,
                   help="gRPC worker threads per server (default %(default)s, graphplat serve's default)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of graph generation (0 shares the sampler bench's cache), features "
                        "and seed batches (default %(default)s)")
    p.add_argument("--quick", action="store_true",
                   help="the 200k-node / 4M-edge graph and fewer repetitions: about 2-3 minutes")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    args = p.parse_args(argv)
    defaults = QUICK_DEFAULTS if args.quick else FULL_DEFAULTS
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, _write_batches(value) if key == "write_batches" else value)
    for key in ("nodes", "edges", "batches", "reps", "batch_size", "partitions", "cold_start_reps"):
        if getattr(args, key) < 1:
            p.error(f"--{key.replace('_', '-')} must be >= 1")
    if args.warmup < 0 or args.feature_dim < 0:
        p.error("--warmup and --feature-dim must be >= 0")
    if args.batch_size > args.nodes:
        p.error("--batch-size exceeds --nodes")
    if args.max_degree is None:
        args.max_degree = max(1, min(20_000, args.nodes // 20))
    return args


# --------------------------------------------------------------------------------------
# Machine, memory, load
# --------------------------------------------------------------------------------------


def machine_info() -> Dict[str, object]:
    """The sampler bench's machine info with the storage stack's versions."""
    return _machine_info(("grpcio", "rocksdict", "graphplat", "psutil"))


def loadavg() -> Optional[List[float]]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover
        return None


def gib(nbytes: Optional[float]) -> Optional[float]:
    return None if nbytes is None else nbytes / 2**30


def proc_hwm(pid: int) -> Optional[int]:
    """Peak RSS (VmHWM) of a live process in bytes."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def self_rss() -> int:
    import psutil
    return psutil.Process().memory_info().rss


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


class RssSampler:
    """Polls the RSS of a process tree every ``interval`` s in a thread; ``peak`` bytes."""

    def __init__(self, pid: int, interval: float = 0.05):
        import psutil
        self.proc = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil
        while not self._stop.is_set():
            try:
                rss = self.proc.memory_info().rss
                for c in self.proc.children(recursive=True):
                    rss += c.memory_info().rss
                self.peak = max(self.peak, rss)
            except psutil.Error:
                pass
            self._stop.wait(self.interval)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


class OthersCpu:
    """Cores kept busy by processes *other than* this benchmark and its servers between
    ``start()`` and ``stop()`` (system busy time from /proc/stat minus the CPU time of this
    process and of every live server). None where /proc/stat is unavailable."""

    @staticmethod
    def _stat() -> Optional[Tuple[int, int]]:
        try:
            with open("/proc/stat") as f:
                fields = [int(x) for x in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields) - idle, sum(fields)

    @staticmethod
    def _ours() -> float:
        import psutil
        total = 0.0
        for pid in [os.getpid()] + [s.proc.pid for s in _LIVE if s.proc is not None]:
            try:
                t = psutil.Process(pid).cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def start(self) -> "OthersCpu":
        self._s, self._own, self._wall = self._stat(), self._ours(), time.perf_counter()
        return self

    def stop(self) -> Optional[float]:
        end = self._stat()
        if self._s is None or end is None or end[1] <= self._s[1]:
            return None
        wall = time.perf_counter() - self._wall
        busy = (end[0] - self._s[0]) / (end[1] - self._s[1]) * (os.cpu_count() or 1)
        return max(0.0, busy - (self._ours() - self._own) / wall)


# --------------------------------------------------------------------------------------
# Graph, NPY inputs, store
# --------------------------------------------------------------------------------------

def load_graph(args) -> Tuple[np.ndarray, np.ndarray, dict]:
    """The sampler bench's cached CSC (memory-mapped), generated and cached if missing."""
    meta = {"generator": "chung-lu", "nodes": args.nodes, "edges": args.edges,
            "alpha": args.alpha, "max_degree": args.max_degree, "seed": args.seed}
    cache = args.cache_dir / f"powerlaw_{args.nodes}_{args.edges}"
    meta_file = cache / "meta.json"
    ok = (meta_file.exists() and (cache / "indptr.npy").exists() and (cache / "indices.npy").exists()
          and json.loads(meta_file.read_text()) == meta)
    source = "generated (cached)"
    if not ok:
        if meta_file.exists():
            LOG.warning("cache %s has other parameters (%s); regenerating", cache, meta_file.read_text())
        LOG.info("generating the power-law graph (%d nodes, %d edges)", args.nodes, args.edges)
        t0 = time.perf_counter()
        indptr, indices = generate_powerlaw_csc(args.nodes, args.edges, args.alpha,
                                                args.max_degree, args.seed)
        LOG.info("generated in %.1fs; caching in %s", time.perf_counter() - t0, cache)
        save_csc(cache, indptr, indices, meta)
        del indptr, indices
        source = "generated"
    else:
        LOG.info("loading cached graph from %s (memory-mapped)", cache)
    indptr = np.load(cache / "indptr.npy", mmap_mode="r")
    indices = np.load(cache / "indices.npy", mmap_mode="r")
    if indptr.dtype != np.int64 or indices.dtype != np.int64:
        raise ValueError(f"{cache}: expected int64 indptr/indices")
    if len(indptr) != args.nodes + 1 or len(indices) != args.edges:
        raise ValueError(f"{cache}: {len(indptr) - 1} nodes / {len(indices)} edges, expected "
                         f"{args.nodes} / {args.edges}")
    if args.nodes <= 1_000_000:
        validate_csc(np.asarray(indptr), np.asarray(indices))
    return indptr, indices, {"source": source, "path": str(cache), **meta}


def in_memory_csr(indptr: np.ndarray, indices: np.ndarray):
    """The raw CSC as a core CSR over in-memory (not memory-mapped) read-only arrays, which
    the core uses without copying: the reference path pays no page faults."""
    from graphplat import _core
    arrays = []
    for a in (indptr, indices):
        a = np.array(a, dtype=np.int64, copy=True)
        a.flags.writeable = False
        arrays.append(a)
    return _core.CSR(arrays[0], arrays[1], num_cols=len(arrays[0]) - 1)


def graph_stats(indptr: np.ndarray) -> dict:
    deg = np.diff(np.asarray(indptr))
    return {"max_in_degree": int(deg.max()), "median_in_degree": float(np.median(deg)),
            "zero_in_degree_nodes": int(np.count_nonzero(deg == 0))}


def bench_dir(args) -> Path:
    return args.cache_dir / f"storage_{args.nodes}_{args.edges}_f{args.feature_dim}"


def make_schema(feature_dim: int):
    from graphplat.schema import GraphSchema
    return GraphSchema.homogeneous(feature_dim or None, feature_name=FEATURE)


def write_inputs(args, indptr: np.ndarray, indices: np.ndarray, graph_meta: dict) -> Tuple[Path, dict]:
    """NPY inputs + schema + ingest spec under the cache (reused when the meta matches).
    Node ids are the CSC's 0..n-1, so samples can be compared with the raw CSC."""
    root = bench_dir(args) / "input"
    meta = {"graph": {k: graph_meta[k] for k in ("nodes", "edges", "alpha", "max_degree", "seed")},
            "feature_dim": args.feature_dim, "feature_seed": args.seed, "version": 1}
    meta_file = root / "meta.json"
    spec_file = root / "spec.yaml"
    if meta_file.exists() and spec_file.exists() and json.loads(meta_file.read_text()) == meta:
        LOG.info("reusing NPY inputs in %s", root)
        return spec_file, {"npy_bytes": dir_bytes(root), "written": False, "path": str(root)}
    t0 = time.perf_counter()
    if root.exists():
        shutil.rmtree(root)
    (root / "nodes").mkdir(parents=True)
    (root / "edges").mkdir(parents=True)
    n = len(indptr) - 1
    np.save(root / "nodes" / "ids.npy", np.arange(n, dtype=np.int64))
    if args.feature_dim:
        rng = np.random.default_rng([args.seed, 16])
        out = np.lib.format.open_memmap(root / "nodes" / f"{FEATURE}.npy", mode="w+",
                                        dtype=np.float32, shape=(n, args.feature_dim))
        for a in range(0, n, 1 << 20):
            b = min(n, a + (1 << 20))
            out[a:b] = rng.standard_normal((b - a, args.feature_dim), dtype=np.float32)
        out.flush()
        del out
    np.save(root / "edges" / "src.npy", indices)
    np.save(root / "edges" / "dst.npy", np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr)))
    schema = make_schema(args.feature_dim)
    schema.save(root / "schema.yaml")
    nodes = {"path": "nodes", "format": "npy"}
    if args.feature_dim:
        nodes["features"] = {FEATURE: FEATURE}
    spec = {"schema": "schema.yaml", "nodes": {NTYPE: nodes},
            "edges": {":".join(ETYPE): {"path": "edges", "format": "npy"}}}
    import yaml
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    meta_file.write_text(json.dumps(meta, indent=1) + "\n")
    LOG.info("wrote NPY inputs to %s in %.1fs", root, time.perf_counter() - t0)
    return spec_file, {"npy_bytes": dir_bytes(root), "written": True, "path": str(root),
                       "write_s": time.perf_counter() - t0}


INGEST_CHILD = r"""
import json, logging, os, signal, sys, time
try:
    import ctypes
    ctypes.CDLL(None).prctl(1, int(signal.SIGTERM))  # die with the benchmark
except Exception:
    pass
logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                    format="%(asctime)s %(levelname)s [ingest] %(name)s: %(message)s", datefmt="%H:%M:%S")
from graphplat.storage.ingest import ingest
spec, out, parts = sys.argv[1], sys.argv[2], int(sys.argv[3])
t0 = time.perf_counter()
ingest(spec, out, partitions=parts, overwrite=True)
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def run_ingest(args, spec_file: Path, store: Path) -> dict:
    """``ingest(spec, store, partitions=P)`` in a child process: time (measured inside the
    child, imports excluded) and peak RSS (polled, and the kernel's ru_maxrss)."""
    LOG.info("ingesting %s -> %s (%d partitions)", spec_file, store, args.partitions)
    load0 = loadavg()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", INGEST_CHILD, str(spec_file), str(store),
                             str(args.partitions)], stdout=subprocess.PIPE, cwd=str(REPO_ROOT))
    try:
        with RssSampler(proc.pid) as rss:
            out, _ = proc.communicate()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"ingest failed with exit code {proc.returncode}")
    inner = json.loads(out.decode().strip().splitlines()[-1])["seconds"]
    maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # largest child so far
    res = {"seconds": inner, "wall_s_with_interpreter": wall,
           "edges_per_s": args.edges / inner, "nodes_per_s": args.nodes / inner,
           "peak_rss_gib": gib(max(rss.peak, maxrss)), "peak_rss_gib_polled": gib(rss.peak),
           "store_bytes": dir_bytes(store), "loadavg_before": load0, "loadavg_after": loadavg()}
    LOG.info("ingest: %.1fs, %.2f M edges/s, peak RSS %.2f GiB, store %.2f GiB", inner,
             res["edges_per_s"] / 1e6, res["peak_rss_gib"], gib(res["store_bytes"]))
    return res


def prepare_store(args, indptr, indices, graph_meta) -> Tuple[Path, dict]:
    """Reuse (``--reuse-store``) or build the cached store; returns (store, ingest report)."""
    from graphplat.storage.store import open_store
    base = bench_dir(args)
    store = base / f"store_p{args.partitions}"
    meta_file = base / f"store_p{args.partitions}.json"
    want = {"graph": {k: graph_meta[k] for k in ("nodes", "edges", "alpha", "max_degree", "seed")},
            "feature_dim": args.feature_dim, "partitions": args.partitions}
    reuse = args.reuse_store or "ingest" not in args.sections
    if reuse and store.exists() and meta_file.exists():
        cached = json.loads(meta_file.read_text())
        try:
            open_store(store)
            valid = True
        except ValueError as e:
            LOG.warning("cached store unusable (%s); ingesting again", e)
            valid = False
        if valid and cached.get("params") == want:
            LOG.info("reusing the cached store %s (ingested %s)", store, cached.get("created"))
            return store, {"reused": True, "from_run": cached.get("created"),
                           **cached.get("ingest", {})}
        if valid:
            LOG.warning("cached store %s has other parameters; ingesting again", store)
    spec_file, inputs = write_inputs(args, indptr, indices, graph_meta)
    if meta_file.exists():
        meta_file.unlink()
    res = run_ingest(args, spec_file, store)
    res["inputs"] = inputs
    meta_file.write_text(json.dumps({"params": want, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                     "ingest": res}, indent=1) + "\n")
    return store, {"reused": False, **res}


# --------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_LIVE: List["Server"] = []  # every server started, for the emergency cleanup


class Server:
    """One ``graphplat serve`` subprocess (``python -m graphplat.cli.serve``)."""

    def __init__(self, store: Path, partition: int, workdir: Path, threads: int = 16):
        self.store, self.partition, self.threads = Path(store), partition, threads
        # the cluster file of its peers (write_peers), to check edge endpoints they own
        self.peers = Path(workdir) / f"peers-{Path(store).name}.yaml"
        self.workdir = Path(workdir)
        self.port = 0
        self.proc: Optional[subprocess.Popen] = None
        self.log_path = self.workdir / f"server-{store.name}-p{partition}.log"  # renamed per start
        self.t_start = self.t_serving = None
        self._log = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "Server":
        self.port = free_port()
        self.ready_file = self.workdir / f"ready-{self.store.name}-p{self.partition}-{self.port}.json"
        self.log_path = self.workdir / f"server-{self.store.name}-p{self.partition}-{self.port}.log"
        self._log = open(self.log_path, "ab")
        args = ["--store", self.store, "--partition", self.partition, "--host", "127.0.0.1",
                "--port", self.port, "--threads", self.threads, "--grace", "2",
                "--ready-file", self.ready_file, "--cluster", self.peers]
        self.t_start = time.perf_counter()
        self.proc = start_guarded("graphplat.cli.serve", args, self._log)
        _LIVE.append(self)
        return self

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def wait_serving(self, timeout: float) -> float:
        """Poll the health service (every 20 ms) until SERVING; returns seconds since Popen."""
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc
        deadline = time.perf_counter() + timeout
        channel = grpc.insecure_channel(self.address)
        try:
            stub = health_pb2_grpc.HealthStub(channel)
            req = health_pb2.HealthCheckRequest(service=SERVICE_NAME)
            while time.perf_counter() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server p{self.partition} exited with {self.proc.returncode}:\n"
                                       f"{self.log_tail()}")
                try:
                    if stub.Check(req, timeout=1.0).status == health_pb2.HealthCheckResponse.SERVING:
                        self.t_serving = time.perf_counter()
                        return self.t_serving - self.t_start
                except grpc.RpcError:
                    pass
                time.sleep(0.02)
        finally:
            channel.close()
        raise TimeoutError(f"server p{self.partition} not SERVING after {timeout}s:\n{self.log_tail()}")

    def reported_load_s(self) -> Optional[float]:
        found = re.findall(r"serving partition \d+/\d+ .* in ([0-9.]+)s", self.log_tail())
        return float(found[-1]) if found else None

    def memory(self) -> dict:
        import psutil
        try:
            rss = psutil.Process(self.proc.pid).memory_info().rss
        except psutil.Error:
            rss = None
        return {"rss_gib": gib(rss), "peak_rss_gib": gib(proc_hwm(self.proc.pid))}

    def stop(self, timeout: float = 15.0) -> Optional[int]:
        if self.proc is None:
            return None
        terminate(self.proc, timeout, 10, on_kill=lambda: LOG.warning(
            "server p%d did not stop after SIGTERM; killing it", self.partition))
        if self._log:
            self._log.close()
            self._log = None
        if self in _LIVE:
            _LIVE.remove(self)
        return self.proc.returncode


def stop_all(servers: Sequence[Server]) -> None:
    for s in servers:  # SIGTERM all first, so they drain in parallel
        if s.proc is not None and s.proc.poll() is None:
            s.proc.send_signal(signal.SIGTERM)
    for s in list(servers):
        s.stop()


def start_servers(store: Path, partitions: int, workdir: Path, threads: int,
                  timeout: float = 900.0) -> Tuple[List[Server], dict]:
    """Start one primary per partition at once; time each until SERVING."""
    from graphplat.storage.store import open_store
    info = open_store(store)
    servers = [Server(store, k, workdir, threads) for k in range(partitions)]
    load0 = loadavg()
    t0 = time.perf_counter()
    for s in servers:
        s.start()
    write_peers(servers)
    per = []
    for s in servers:
        for attempt in range(3):
            try:
                s.wait_serving(timeout)
                break
            except RuntimeError:
                if attempt == 2 or "cannot listen" not in s.log_tail():
                    raise
                LOG.warning("port %d taken; restarting p%d on another", s.port, s.partition)
                s.stop()
                s.start()
                write_peers(servers)
    total_s = max(s.t_serving for s in servers) - t0
    from graphplat.storage.client import PartitionClient
    num_edges = 0
    for s in servers:
        c = PartitionClient([s.address], s.partition)
        try:
            inf = c.info()
        finally:
            c.close()
        e = sum(int(x.value) for x in inf.num_edges)
        nn = sum(int(x.value) for x in inf.num_nodes)
        num_edges += e
        secs = s.t_serving - s.t_start
        load_s = s.reported_load_s()
        per.append({"partition": s.partition, "seconds_to_serving": secs,
                    "server_reported_load_s": load_s, "edges": e, "nodes": nn,
                    "edges_per_s": e / secs,
                    "edges_per_s_load_only": e / load_s if load_s else None,
                    "applied_seq": int(inf.applied_seq), **s.memory()})
        if inf.applied_seq != -1:
            LOG.warning("partition %d of %s has write-log records (applied_seq %d): the store is "
                        "not clean", s.partition, store, inf.applied_seq)
    res = {"servers": per, "started_together": True, "seconds_all_serving": total_s,
           "total_edges": num_edges, "total_edges_per_s": num_edges / total_s,
           "store_bytes": dir_bytes(store), "loadavg_before": load0,
           "graph_edges_in_store": info.meta.get("num_edges")}
    LOG.info("cold start: all %d servers SERVING after %.2fs (%s), %.2f M edges/s in total",
             partitions, total_s, ", ".join(f"p{x['partition']} {x['seconds_to_serving']:.2f}s "
                                            f"RSS {x['rss_gib']:.2f} GiB" for x in per),
             res["total_edges_per_s"] / 1e6)
    return servers, res


def cold_start(args, store: Path, workdir: Path) -> Tuple[List[Server], dict]:
    """``--cold-start-reps`` starts of all servers (stopped in between); the servers of the
    last one stay up. Medians over the repetitions, details of the last one."""
    runs = []
    for rep in range(args.cold_start_reps):
        servers, res = start_servers(store, args.partitions, workdir, args.server_threads)
        runs.append(res)
        if rep < args.cold_start_reps - 1:
            stop_all(servers)
    per_server = [[r["servers"][k]["edges_per_s"] for r in runs] for k in range(args.partitions)]
    return servers, {
        "reps": len(runs),
        "seconds_all_serving_median": float(np.median([r["seconds_all_serving"] for r in runs])),
        "total_edges_per_s_median": float(np.median([r["total_edges_per_s"] for r in runs])),
        "per_server_edges_per_s_median": [float(np.median(x)) for x in per_server],
        "seconds_all_serving_reps": [r["seconds_all_serving"] for r in runs],
        "server_reported_load_s_reps": [[x["server_reported_load_s"] for x in r["servers"]]
                                        for r in runs],
        "last": runs[-1]}


def cluster_of(servers: Sequence[Server], deadline_s: float = 300.0) -> dict:
    """The cluster dict of ``servers`` (one primary per partition)."""
    return {"partitions": [{"partition": s.partition, "replicas": [s.address]} for s in servers],
            "deadline_s": deadline_s}


def write_peers(servers: Sequence[Server]) -> None:
    """Write the servers' own cluster file (``--cluster``; read when first needed)."""
    import yaml
    servers[0].peers.write_text(yaml.safe_dump(cluster_of(servers)))


def connect(servers: Sequence[Server], deadline_s: float = 300.0):
    import graphplat
    return graphplat.connect(cluster_of(servers, deadline_s))


# --------------------------------------------------------------------------------------
# 3-hop sampling
# --------------------------------------------------------------------------------------

def multihop_via_service(g, seeds: np.ndarray, fanouts: Sequence[int], key: int,
                         features: bool = False):
    """The loaders' hop loop over the GraphService API: per hop, sample the frontier and
    unique it (hash mode, arbitrary ids) into the next frontier. Returns (hop node lists,
    sampled edges, feature bytes)."""
    from graphplat import _core
    frontier = seeds
    hops, edges = [], 0
    for h, fanout in enumerate(fanouts):
        s = g.sample_neighbors(ETYPE, frontier, fanout, seed=key, hop=h)
        edges += len(s.neighbors)
        frontier, _local = _core.unique_and_relabel(frontier, s.neighbors)
        hops.append(frontier)
    nbytes = 0
    if features:
        feats = g.node_features(NTYPE, frontier)
        nbytes = sum(a.nbytes for a in feats.values())
    return hops, edges, nbytes


def make_methods(ctx: dict, fanouts: Sequence[int], with_features: bool) -> Dict[str, Callable]:
    from graphplat import _core
    csr = ctx["csr"]

    def core_ref(seeds, key):
        hops = _core.sample_multihop(csr, seeds, list(fanouts), seed=key)
        return [h.nodes for h in hops], sum(len(h.src) for h in hops), 0

    def local_fused(seeds, key):
        # What NeighborSampler runs on a LocalGraph: every hop in one core call over the
        # partitions' stitched CSR.
        hops = ctx["local"].sample_multihop(ETYPE, seeds, list(fanouts), seed=key)
        return [h[0] for h in hops], sum(len(h[2]) for h in hops), 0

    methods = {"core_multihop_raw_csc": core_ref,
               "local_fused": local_fused,
               "local": lambda seeds, key: multihop_via_service(ctx["local"], seeds, fanouts, key),
               "remote": lambda seeds, key: multihop_via_service(ctx["remote"], seeds, fanouts, key)}
    if with_features:
        methods["local+features"] = lambda seeds, key: multihop_via_service(
            ctx["local"], seeds, fanouts, key, features=True)
        methods["remote+features"] = lambda seeds, key: multihop_via_service(
            ctx["remote"], seeds, fanouts, key, features=True)
    return methods


def check_identical(methods: Dict[str, Callable], seeds: np.ndarray, key: int) -> dict:
    """Whether every method reaches exactly the same nodes hop by hop (same RNG keys and the
    same neighbor order within rows make the partitioned path reproduce the raw CSC's)."""
    got = {m: fn(seeds, key) for m, fn in methods.items()}
    ref = got["core_multihop_raw_csc"]
    out = {}
    for m, (hops, edges, _) in got.items():
        out[m] = bool(len(hops) == len(ref[0]) and edges == ref[1]
                      and all(np.array_equal(a, b) for a, b in zip(hops, ref[0])))
    return out


def servers_cpu() -> float:
    """CPU seconds used so far by every live server."""
    import psutil
    total = 0.0
    for s in _LIVE:
        try:
            t = psutil.Process(s.proc.pid).cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def time_method(fn: Callable, batches: Sequence[np.ndarray], key_base: int) -> dict:
    lat, edges, nodes, fbytes = [], 0, 0, 0
    others = OthersCpu().start()
    s0, p0 = servers_cpu(), _involuntary_switches()
    c0 = time.process_time()
    for i, seeds in enumerate(batches):
        t0 = time.perf_counter()
        hops, e, nb = fn(seeds, key_base + i)
        lat.append(time.perf_counter() - t0)
        edges += e
        nodes += len(hops[-1])
        fbytes += nb
    wall = sum(lat)
    return {"latencies": lat, "edges": edges, "input_nodes": nodes, "feature_bytes": fbytes,
            "wall": wall, "cpu": time.process_time() - c0, "others": others.stop(),
            "servers_cpu": servers_cpu() - s0, "preempted": _involuntary_switches() - p0}


def run_sampling(args, ctx: dict) -> dict:
    rng = np.random.default_rng([args.seed, 3])
    n = args.nodes
    batches = [rng.choice(n, args.batch_size, replace=False).astype(np.int64) for _ in range(args.batches)]
    warm = [rng.choice(n, args.batch_size, replace=False).astype(np.int64)
            for _ in range(max(1, args.warmup))]
    methods = make_methods(ctx, args.fanouts, not args.no_features)
    identical = check_identical({k: v for k, v in methods.items() if "+" not in k}, warm[0], 10**9)
    LOG.info("samples identical to sample_multihop on the raw CSC: %s", identical)
    for fn in methods.values():
        time_method(fn, warm, 10**9)
    per_rep: Dict[str, List[dict]] = {m: [] for m in methods}
    load0 = loadavg()
    for rep in range(args.reps):
        order = list(methods) if rep % 2 == 0 else list(reversed(methods))  # interleave, alternate order
        for m in order:
            per_rep[m].append(time_method(methods[m], batches, rep * 100_003))
        LOG.info("3-hop rep %d/%d: %s", rep + 1, args.reps, ", ".join(
            f"{m} {len(batches) / per_rep[m][-1]['wall']:.2f} batch/s" for m in methods))
    results = {}
    for m, reps in per_rep.items():
        bps = [len(batches) / r["wall"] for r in reps]
        eps = [r["edges"] / r["wall"] for r in reps]
        lat = 1e3 * np.concatenate([r["latencies"] for r in reps])
        results[m] = {"batches_per_s": float(np.median(bps)), "edges_per_s": float(np.median(eps)),
                      "seeds_per_s": float(np.median(bps)) * args.batch_size,
                      "batches_per_s_reps": bps,
                      "latency_ms_median": float(np.median(lat)),
                      "latency_ms_p99": float(np.percentile(lat, 99)),
                      "mean_edges_per_batch": reps[0]["edges"] / len(batches),
                      "mean_input_nodes_per_batch": reps[0]["input_nodes"] / len(batches),
                      "feature_mib_per_batch": reps[0]["feature_bytes"] / len(batches) / 2**20,
                      "client_cpu_utilization": float(np.median([r["cpu"] / r["wall"] for r in reps])),
                      "servers_cpu_utilization": float(np.median([r["servers_cpu"] / r["wall"]
                                                                  for r in reps])),
                      "preemptions_per_batch": float(np.median([r["preempted"] / len(batches)
                                                                for r in reps])),
                      "other_processes_busy_cores_max": max((r["others"] for r in reps
                                                             if r["others"] is not None), default=None)}
    ratios = {"remote_over_local": results["remote"]["edges_per_s"] / results["local"]["edges_per_s"],
              "remote_over_local_reps": [r["wall"] / q["wall"] for r, q in
                                         zip(per_rep["local"], per_rep["remote"])],
              "local_over_core_multihop": results["local"]["edges_per_s"]
              / results["core_multihop_raw_csc"]["edges_per_s"],
              "local_fused_over_core_multihop": results["local_fused"]["edges_per_s"]
              / results["core_multihop_raw_csc"]["edges_per_s"],
              "local_fused_over_core_multihop_reps": [c["wall"] / f["wall"] for c, f in
                                                      zip(per_rep["core_multihop_raw_csc"],
                                                          per_rep["local_fused"])],
              "remote_over_core_multihop": results["remote"]["edges_per_s"]
              / results["core_multihop_raw_csc"]["edges_per_s"]}
    if "remote+features" in results:
        ratios["remote_over_local_with_features"] = (results["remote+features"]["batches_per_s"]
                                                     / results["local+features"]["batches_per_s"])
    LOG.info("3-hop: remote/local = %.3f (with features %s; target >= 0.5); local/core = %.3f, "
             "local fused/core = %.3f", ratios["remote_over_local"],
             ratios.get("remote_over_local_with_features"), ratios["local_over_core_multihop"],
             ratios["local_fused_over_core_multihop"])
    return {"results": results, "ratios": ratios, "samples_identical": identical,
            "loadavg_before": load0, "loadavg_after": loadavg()}


# --------------------------------------------------------------------------------------
# Single-seed latency
# --------------------------------------------------------------------------------------

def run_closed_loop(fn: Callable[[int], object], seeds: np.ndarray, threads: int,
                    seconds: float) -> dict:
    """``threads`` client threads, each issuing requests back to back for ``seconds``."""
    lats: List[List[float]] = [[] for _ in range(threads)]
    errors: List[BaseException] = []
    barrier = threading.Barrier(threads + 1)
    stop_at = [0.0]

    def worker(t: int) -> None:
        mine = seeds[t::threads]
        i = 0
        barrier.wait()
        try:
            while time.perf_counter() < stop_at[0]:
                t0 = time.perf_counter()
                fn(int(mine[i % len(mine)]))
                lats[t].append(time.perf_counter() - t0)
                i += 1
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    workers = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(threads)]
    for w in workers:
        w.start()
    others = OthersCpu().start()
    start = time.perf_counter()
    stop_at[0] = start + seconds
    barrier.wait()
    for w in workers:
        w.join()
    wall = time.perf_counter() - start
    other = others.stop()
    if errors:
        raise errors[0]
    all_ms = 1e3 * np.concatenate([np.asarray(x) for x in lats])
    return {"threads": threads, "requests": int(len(all_ms)), "seconds": wall,
            "requests_per_s": len(all_ms) / wall, "latency_ms_p50": float(np.median(all_ms)),
            "latency_ms_p99": float(np.percentile(all_ms, 99)),
            "latency_ms_mean": float(all_ms.mean()), "latency_ms_max": float(all_ms.max()),
            "other_processes_busy_cores": other}


def run_latency(args, ctx: dict) -> dict:
    remote, local, book = ctx["remote"], ctx["local"], ctx["remote"].book
    client0 = ctx["remote"].clients[0]
    rng = np.random.default_rng([args.seed, 5])
    cand = rng.choice(args.nodes, min(args.nodes, 200_000), replace=False).astype(np.int64)
    seeds = cand[book.partition_of(NTYPE, cand) == 0][:50_000]
    fanouts = list(args.latency_fanouts)

    def two_hop(g):
        def fn(seed: int):
            _, e, _ = multihop_via_service(g, np.array([seed], dtype=np.int64), fanouts, seed)
            return e
        return fn

    def one_rpc(seed: int):
        return client0.sample_neighbors(ETYPE, np.array([seed], dtype=np.int64), fanouts[0], seed=seed)

    # edges per request, for the record
    probe = seeds[:200]
    mean_edges = float(np.mean([two_hop(local)(int(s)) for s in probe]))
    configs = [("remote_2hop", two_hop(remote)), ("partition0_single_rpc", one_rpc),
               ("local_2hop_reference", two_hop(local))]
    out = {"fanouts": fanouts, "seeds_owned_by_partition": 0, "mean_edges_per_request": mean_edges,
           "results": [], "loadavg_before": loadavg()}
    for name, fn in configs:
        run_closed_loop(fn, seeds, 1, min(1.0, args.latency_seconds / 3))  # warm-up
        for t in args.client_threads:
            r = run_closed_loop(fn, seeds[::-1] if t > 1 else seeds, t, args.latency_seconds)
            r["method"] = name
            out["results"].append(r)
            LOG.info("latency %s, %d client thread(s): p50 %.2f ms, p99 %.2f ms, %.0f req/s",
                     name, t, r["latency_ms_p50"], r["latency_ms_p99"], r["requests_per_s"])
    out["loadavg_after"] = loadavg()
    out["notes"] = [
        "remote_2hop: hop 0 is one SampleNeighbors RPC to partition 0's server (the seed's "
        "owner); hop 1 goes to whichever partitions own the hop-0 frontier (usually both, "
        "in parallel). This is the client-visible latency of a small online request.",
        "partition0_single_rpc: one SampleNeighbors RPC (1 seed, fanout %d) straight to "
        "partition 0's server through its PartitionClient: the per-server round trip." % fanouts[0],
        "local_2hop_reference: the same 2-hop loop on LocalGraph in this process (no network)."]
    return out


# --------------------------------------------------------------------------------------
# Durable writes
# --------------------------------------------------------------------------------------

def copy_store(src: Path, dst: Path) -> dict:
    t0 = time.perf_counter()
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("LOCK"))
    secs = time.perf_counter() - t0
    LOG.info("copied the store to %s in %.1fs", dst, secs)
    return {"copy_s": secs, "path": str(dst)}


def run_writes(args, store: Path, workdir: Path) -> dict:
    """Durable add_edges on a fresh copy of the store (two new primaries). Every
    configuration starts from an empty online delta: the servers compact (fold the write
    log into the bulk blobs) before it, and the compaction time is reported."""
    copy_dir = workdir / "store_copy"
    out: Dict[str, object] = {"store": "copy", **copy_store(store, copy_dir)}
    servers: List[Server] = []
    remote = None
    try:
        servers, cold = start_servers(copy_dir, args.partitions, workdir, args.server_threads)
        out["cold_start_of_copy"] = cold
        remote = connect(servers)
        book = remote.book
        rng = np.random.default_rng([args.seed, 7])
        all_ids = np.arange(args.nodes, dtype=np.int64)
        p0_ids = all_ids[book.partition_of(NTYPE, all_ids) == 0]
        client0 = remote.clients[0]
        results = []
        for mode in ("partition0_primary_direct", "remote_graph_add_edges"):
            for size, max_batches in args.write_batches:
                direct = mode.startswith("partition0")

                def batch():
                    src = rng.integers(0, args.nodes, size, dtype=np.int64)
                    dst = (p0_ids[rng.integers(0, len(p0_ids), size)] if direct
                           else rng.integers(0, args.nodes, size, dtype=np.int64))
                    return src, dst

                def send(src, dst):
                    if direct:
                        return client0.add_edges_in(ETYPE, src, dst)
                    return remote.add_edges(ETYPE, src, dst)

                c0 = time.perf_counter()
                remote.compact()  # start from an empty delta
                compact_s = time.perf_counter() - c0
                delta = 0  # edges partition 0 holds in its online delta
                for _ in range(2):  # warm-up
                    s_, d_ = batch()
                    send(s_, d_)
                    delta += int(np.count_nonzero(book.partition_of(NTYPE, d_) == 0))
                lat, deltas = [], []
                t_end = time.perf_counter() + args.write_seconds
                t0 = time.perf_counter()
                last = None
                while len(lat) < max_batches and time.perf_counter() < t_end:
                    src, dst = batch()
                    deltas.append(delta)
                    b0 = time.perf_counter()
                    eids = send(src, dst)
                    lat.append(time.perf_counter() - b0)
                    delta += int(np.count_nonzero(book.partition_of(NTYPE, dst) == 0))
                    last = (src, dst, eids)
                wall = time.perf_counter() - t0
                src, dst, eids = last
                visible = bool(remote.has_edges(ETYPE, src, dst).all())
                ids_ok = bool(len(eids) == size and len(np.unique(eids)) == size)
                lat_ms = 1e3 * np.asarray(lat)
                quarters = [{"partition0_delta_edges_at_start": int(deltas[q[0]]),
                             "ack_latency_ms_mean": float(lat_ms[q].mean())}
                            for q in np.array_split(np.arange(len(lat)), min(4, len(lat))) if len(q)]
                r = {"mode": mode, "edges_per_batch": size, "batches": len(lat), "seconds": wall,
                     "edges_per_s": size * len(lat) / wall, "batches_per_s": len(lat) / wall,
                     "ack_latency_ms_p50": float(np.median(lat_ms)),
                     "ack_latency_ms_p99": float(np.percentile(lat_ms, 99)),
                     "by_quarter": quarters, "partition0_delta_edges_end": delta,
                     "compact_before_s": compact_s,
                     "stopped_by_time_limit": len(lat) < max_batches,
                     "last_batch_visible": visible, "edge_ids_ok": ids_ok}
                results.append(r)
                LOG.info("writes %s, %d edges/batch: %d batches, %.0f edges/s, ack p50 %.1f ms p99 "
                         "%.1f ms (by quarter: %s ms), visible %s [compaction before: %.1fs]", mode,
                         size, len(lat), r["edges_per_s"], r["ack_latency_ms_p50"],
                         r["ack_latency_ms_p99"],
                         "/".join(f"{q['ack_latency_ms_mean']:.1f}" for q in quarters), visible, compact_s)
                if not visible or not ids_ok:
                    LOG.error("written edges not visible or bad edge ids (%s, %d)", mode, size)
        info = remote.info()
        out["applied_seq_after"] = [int(i.applied_seq) for i in info]
        out["server_memory_after"] = [s.memory() for s in servers]
        out["results"] = results
        out["notes"] = [
            "each batch is one durable write per partition involved: validated, appended to the "
            "partition's RocksDB write log in a synced WriteBatch, applied to the in-memory delta, "
            "then acknowledged; ack latency is measured at the client",
            "partition0_primary_direct: PartitionClient.add_edges_in to partition 0's primary, "
            "destinations owned by partition 0, sources anywhere",
            "remote_graph_add_edges: RemoteGraph.add_edges with random sources and destinations: "
            "Lookup of src and dst on both partitions, then one AddEdgesIn per partition in parallel",
            "every configuration starts after RemoteGraph.compact() (compact_before_s), i.e. with an "
            "empty online delta; by_quarter shows the ack latency as partition 0's delta grows",
            "runs on a fresh copy of the cached store (deleted afterwards): the cache stays clean"]
    finally:
        if remote is not None:
            remote.close()
        stop_all(servers)
        shutil.rmtree(copy_dir, ignore_errors=True)
    return out


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------

def summarize(report: dict) -> dict:
    """The headline numbers of every section, in one place."""
    out: Dict[str, object] = {}
    ing = report.get("ingest") or {}
    out["ingest"] = {"edges_per_s": ing.get("edges_per_s"), "seconds": ing.get("seconds"),
                     "peak_rss_gib": ing.get("peak_rss_gib"), "reused": ing.get("reused")}
    cold = report.get("cold_start")
    if cold:
        out["cold_start"] = {"seconds_all_serving_median": cold["seconds_all_serving_median"],
                             "total_edges_per_s_median": cold["total_edges_per_s_median"],
                             "per_server_edges_per_s_median": cold["per_server_edges_per_s_median"],
                             "server_rss_gib": [x["rss_gib"] for x in cold["last"]["servers"]]}
    samp = report.get("sampling_3hop")
    if samp:
        res = samp["results"]
        out["sampling_3hop"] = {
            **{m: {"batches_per_s": r["batches_per_s"], "edges_per_s": r["edges_per_s"]}
               for m, r in res.items()},
            # The headline is the loaders' case: sampling plus the input features.
            "remote_over_local": samp["ratios"].get("remote_over_local_with_features",
                                                    samp["ratios"]["remote_over_local"]),
            "remote_over_local_includes_features": "remote_over_local_with_features" in samp["ratios"],
            "remote_over_local_sampling_only": samp["ratios"]["remote_over_local"],
            "remote_over_local_target_met": samp["ratios"].get(
                "remote_over_local_with_features", samp["ratios"]["remote_over_local"]) >= 0.5,
            "local_fused_over_core_multihop": samp["ratios"]["local_fused_over_core_multihop"],
            "samples_identical": all(samp["samples_identical"].values())}
    lat = report.get("latency_2hop_single_seed")
    if lat:
        out["latency_2hop_single_seed"] = {
            f"{r['method']}@{r['threads']}threads": {"p50_ms": r["latency_ms_p50"],
                                                     "p99_ms": r["latency_ms_p99"],
                                                     "requests_per_s": r["requests_per_s"]}
            for r in lat["results"]}
    wr = report.get("durable_writes")
    if wr:
        out["durable_writes"] = {
            f"{r['mode']}@{r['edges_per_batch']}": {"edges_per_s": r["edges_per_s"],
                                                    "ack_p50_ms": r["ack_latency_ms_p50"],
                                                    "ack_p99_ms": r["ack_latency_ms_p99"]}
            for r in wr["results"]}
    return out


def contention_warnings(report: dict) -> List[str]:
    """Other processes competing for the cores make every number here pessimistic."""
    warnings = []
    start = report["machine"].get("other_busy_cores_at_start")
    if start is not None and start > 0.25:
        warnings.append(f"other processes kept {start:.2f} cores busy at start")
    samp = report.get("sampling_3hop")
    for m, r in (samp or {}).get("results", {}).items():
        busy = r.get("other_processes_busy_cores_max")
        if busy is not None and busy > 0.25:
            warnings.append(f"3-hop {m}: other processes kept up to {busy:.2f} cores busy")
    for r in (report.get("latency_2hop_single_seed") or {}).get("results", []):
        busy = r.get("other_processes_busy_cores")
        if busy is not None and busy > 0.25:
            warnings.append(f"latency {r['method']}@{r['threads']}: other processes kept "
                            f"{busy:.2f} cores busy")
    for w in warnings:
        LOG.warning("CPU contention: %s", w)
    return warnings


def remove_stale_workdirs(cache_dir: Path) -> None:
    """Delete work directories (server logs, store copies) of benchmark runs that died."""
    for d in cache_dir.glob("storage-bench-*-*"):
        m = re.match(r"storage-bench-(\d+)-", d.name)
        if not m or not d.is_dir():
            continue
        try:
            os.kill(int(m.group(1)), 0)
        except ProcessLookupError:
            LOG.info("removing %s, left by a run that died", d)
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:
            pass


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    raise_on_sigterm()
    t_start = time.perf_counter()
    other_start = other_cpu_load()
    report: Dict[str, object] = {
        "machine": {**machine_info(), "loadavg_start": loadavg(),
                    "other_busy_cores_at_start": other_start},
        "config": {"quick": args.quick, "partitions": args.partitions, "feature_dim": args.feature_dim,
                   "batch_size": args.batch_size, "fanouts": args.fanouts, "batches_per_rep": args.batches,
                   "reps": args.reps, "warmup_batches": args.warmup,
                   "latency_fanouts": args.latency_fanouts, "latency_seconds": args.latency_seconds,
                   "client_threads": args.client_threads,
                   "write_batches": [{"edges": s, "max_batches": c} for s, c in args.write_batches],
                   "write_seconds": args.write_seconds, "server_threads": args.server_threads,
                   "cold_start_reps": args.cold_start_reps,
                   "sections": args.sections, "reuse_store": args.reuse_store, "seed": args.seed},
        "targets": {"remote_over_local": 0.5},
    }
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    own_workdir = args.workdir is None
    if own_workdir:
        remove_stale_workdirs(args.cache_dir)
    workdir = (Path(tempfile.mkdtemp(prefix=f"storage-bench-{os.getpid()}-", dir=args.cache_dir))
               if own_workdir else args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    servers: List[Server] = []
    ctx: Dict[str, object] = {}
    try:
        indptr, indices, graph_meta = load_graph(args)
        report["graph"] = {**graph_meta, **graph_stats(indptr), "homogeneous": True,
                           "ntype": NTYPE, "etype": list(ETYPE),
                           "node_feature": f"{FEATURE}: float32[{args.feature_dim}]" if args.feature_dim
                           else None, "node_ids": "0..n-1 (the CSC's)"}
        store, ingest_res = prepare_store(args, indptr, indices, graph_meta)
        report["ingest"] = ingest_res
        report["store"] = str(store)
        need_servers = any(s in args.sections for s in ("cold_start", "sampling", "latency"))
        if need_servers:
            servers, report["cold_start"] = cold_start(args, store, workdir)
            ctx["remote"] = connect(servers)
        if "sampling" in args.sections or "latency" in args.sections:
            t0 = time.perf_counter()
            ctx["local"] = __import__("graphplat").open_graph(store, read_only=True)
            report["local_graph_open_s"] = time.perf_counter() - t0
            report["bench_process_rss_gib_after_open"] = gib(self_rss())
            LOG.info("LocalGraph opened (read_only) in %.1fs; bench RSS %.2f GiB",
                     report["local_graph_open_s"], report["bench_process_rss_gib_after_open"])
        if "sampling" in args.sections:
            ctx["csr"] = in_memory_csr(indptr, indices)
            report["sampling_3hop"] = run_sampling(args, ctx)
        if "latency" in args.sections:
            report["latency_2hop_single_seed"] = run_latency(args, ctx)
        if servers:
            report["server_memory_end"] = [{"partition": s.partition, **s.memory()} for s in servers]
        if ctx.get("remote") is not None:
            ctx.pop("remote").close()
        if ctx.get("local") is not None:
            ctx.pop("local").close()
        ctx.clear()
        stop_all(servers)
        servers = []
        if "writes" in args.sections:
            report["durable_writes"] = run_writes(args, store, workdir)
    finally:
        for key in ("remote", "local"):
            if ctx.get(key) is not None:
                try:
                    ctx[key].close()
                except Exception:  # noqa: BLE001 - best effort on the way out
                    pass
        stop_all(list(_LIVE))
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    report["summary"] = summarize(report)
    report["warnings"] = contention_warnings(report)
    report["machine"]["loadavg_end"] = loadavg()
    report["machine"]["bench_process_peak_rss_gib"] = gib(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    report["elapsed_s"] = time.perf_counter() - t_start
    json.dump(_round_floats(report), sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
