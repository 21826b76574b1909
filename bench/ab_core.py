#!/usr/bin/env python
"""Paired A/B of two builds of ``graphplat._core`` on ``sample_multihop``.

Each build runs in its own worker process: CPython hands back the module it loaded first
when a second ``_core*.so`` of the same name is loaded from another path, so two builds in
one process silently time the same code. The parent sends every seed batch to both
workers, one after the other, alternating which goes first; each worker times only its
call. The speedup is the median over batches of time(A) / time(B), which cancels the slow
drifts of a VM's memory speed that make two separate benchmark runs incomparable.

Workers also hash their outputs on the first batches, so a change that should not alter
the samples (a pure speed-up) is checked to give identical results.

Example::

    cp graphplat/_core*.so /tmp/a/     # the baseline build
    # ... change cpp/, rebuild in place ...
    python bench/ab_core.py /tmp/a graphplat --threads 2 --batches 400

stdout gets one JSON object; logs go to stderr.
"""
from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
LOG = logging.getLogger("bench.ab_core")

# The worker: loads one build from a directory, then answers "batch index" lines with
# [seconds, sampled edges, output hash or ""] as JSON.
WORKER = r"""
import glob, hashlib, importlib.util, json, sys, time
import numpy as np
build, graph, threads, replace, fanouts, batch, hash_first = sys.argv[1:8]
threads, batch, hash_first = int(threads), int(batch), int(hash_first)
fanouts = [int(f) for f in fanouts.split(",")]
so = glob.glob(build + "/_core*.so")
if len(so) != 1:
    sys.exit(f"expected one _core*.so in {build}, found {so}")
spec = importlib.util.spec_from_file_location("_core", so[0])
core = importlib.util.module_from_spec(spec)
spec.loader.exec_module(core)
indptr = np.load(graph + "/indptr.npy"); indices = np.load(graph + "/indices.npy")
n = len(indptr) - 1
csr = core.CSR(indptr, indices, num_cols=n)
core.set_num_threads(threads)
print(json.dumps({"ready": so[0]}), flush=True)
for line in sys.stdin:
    b = int(line)
    seeds = np.random.default_rng(b).choice(n, batch, replace=False)
    t = time.perf_counter()
    hops = core.sample_multihop(csr, seeds, fanouts, strategy="uniform", replace=replace == "1",
                                seed=b, num_threads=threads)
    dt = time.perf_counter() - t
    digest = ""
    if b < hash_first:
        h = hashlib.sha1()
        for hop in hops:
            for a in (hop.nodes, hop.src, hop.dst, hop.eids):
                h.update(np.ascontiguousarray(a).tobytes())
        digest = h.hexdigest()
    print(json.dumps([dt, sum(len(hop.src) for hop in hops), digest]), flush=True)
"""


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command line: two build directories and the sampling configuration."""
    p = argparse.ArgumentParser(
        description="Paired A/B of two graphplat._core builds (directories holding one "
                    "_core*.so each) on sample_multihop; prints JSON with the median speedup "
                    "of B over A.")
    p.add_argument("a", type=Path, help="directory of build A (the baseline)")
    p.add_argument("b", type=Path, help="directory of build B")
    p.add_argument("--graph", type=Path,
                   default=BENCH_DIR / ".cache" / "powerlaw_2500000_60000000",
                   help="CSC directory with indptr.npy and indices.npy (default: the graph "
                        "bench/sampler.py generates and caches; run it once first)")
    p.add_argument("--threads", type=int, default=2, help="threads per call (default %(default)s)")
    p.add_argument("--batches", type=int, default=300,
                   help="timed batches, each run by both builds (default %(default)s)")
    p.add_argument("--warmup", type=int, default=4, help="untimed batches first (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=1024, help="seeds per batch (default %(default)s)")
    p.add_argument("--fanouts", default="15,10,5", help="per hop, from the seeds out (default %(default)s)")
    p.add_argument("--replace", action="store_true", help="sample with replacement")
    p.add_argument("--check-batches", type=int, default=20,
                   help="compare the outputs of both builds on this many batches; 0 to skip "
                        "(for changes that alter the samples)")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    for build in (args.a, args.b):
        if len(list(build.glob("_core*.so"))) != 1:
            p.error(f"{build} must hold exactly one _core*.so")
    if not (args.graph / "indptr.npy").exists() or not (args.graph / "indices.npy").exists():
        p.error(f"{args.graph} has no indptr.npy/indices.npy; run bench/sampler.py once to "
                "generate the default graph, or pass --graph")
    if args.threads < 1 or args.batches < 1 or args.warmup < 0 or args.batch_size < 1:
        p.error("--threads, --batches and --batch-size must be >= 1, --warmup >= 0")
    return args


class Worker:
    """One build in its own process, timing one sample_multihop call per request."""

    def __init__(self, build: Path, args: argparse.Namespace):
        cmd = [sys.executable, "-c", WORKER, str(build), str(args.graph), str(args.threads),
               "1" if args.replace else "0", args.fanouts, str(args.batch_size),
               str(args.warmup + args.check_batches)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = self.proc.stdout.readline()
        if not ready:
            raise RuntimeError(f"worker for {build} exited before it was ready")
        LOG.info("loaded %s", json.loads(ready)["ready"])

    def run(self, batch: int) -> list:
        """Time batch number ``batch``; returns [seconds, edges, output hash or '']."""
        self.proc.stdin.write(f"{batch}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("worker died (see its stderr above)")
        return json.loads(line)

    def close(self) -> None:
        """Ends the worker."""
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the A/B and prints its JSON summary; returns 1 if the outputs differ."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    workers = [Worker(args.a, args), Worker(args.b, args)]
    times: List[List[float]] = [[], []]
    mismatches: List[int] = []
    edges = 0
    try:
        for i in range(args.warmup + args.batches):
            order = (0, 1) if i % 2 == 0 else (1, 0)  # alternate who runs first
            out = [None, None]
            for k in order:
                out[k] = workers[k].run(i)
            if out[0][2] != out[1][2]:
                mismatches.append(i)
            if i >= args.warmup:
                for k in (0, 1):
                    times[k].append(out[k][0])
                edges += out[1][1]
    finally:
        for w in workers:
            w.close()
    ta, tb = np.array(times[0]), np.array(times[1])
    ratio = ta / tb
    result = {
        "a": str(args.a), "b": str(args.b), "threads": args.threads, "replace": args.replace,
        "fanouts": args.fanouts, "batch_size": args.batch_size, "batches": args.batches,
        "a_ms_median": round(float(np.median(ta)) * 1e3, 3),
        "b_ms_median": round(float(np.median(tb)) * 1e3, 3),
        "speedup_b_over_a_median": round(float(np.median(ratio)), 4),
        "speedup_b_over_a_iqr": [round(float(np.percentile(ratio, q)), 4) for q in (25, 75)],
        "b_edges_per_s": round(edges / float(tb.sum())),
        "outputs_compared": args.warmup + args.check_batches,
        "outputs_differ_on_batches": mismatches,
    }
    print(json.dumps(result, indent=1))
    if mismatches:
        LOG.error("the builds gave different samples on %d of %d compared batches",
                  len(mismatches), args.warmup + args.check_batches)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
