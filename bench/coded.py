#!/usr/bin/env python
"""Benchmark gradient coding against wait-for-all and ignore-stragglers training with
injected stragglers and a killed worker (issue 6).

Every run is a real :func:`graphplat.distributed.coded_train.run_coded`: an in-process gradient
aggregator and ``n = 4`` worker processes on this machine, training the synthetic recsys
node-classification task (classify users into their planted community; small sizes so a step
takes tens of milliseconds) for the same number of steps. Schemes (default set):

* ``wait_all``: uncoded, worker ``i`` computes slice ``i``, the aggregator waits for all 4;
* ``ignore:s``: uncoded, apply the rescaled sum of the first ``4 - s`` replies (inexact);
* ``frc:1``, ``cyclic:1``, ``cyclic:2``: gradient coding (each worker computes ``s + 1``
  slices, any decodable set of replies gives the exact gradient). ``frc`` needs ``(s+1) | n``
  (s = 1 or 3 for n = 4), so s = 2 uses the cyclic code.

Conditions: no stragglers (p = 0); injected stragglers, a grid of p (probability that a
worker is slow at a step, independently per worker and step) times k (slowdown factor): the
worker sleeps ``(k - 1) x`` its measured compute time after computing (``run_coded``'s
``slow_prob``/``slow_factor``, drawn from (seed, worker, step)); and a worker SIGKILLed at a
third of the run (``kill={1: step}``). wait_all with a killed worker never finishes: a watchdog
declares the run stalled after ``--stall-timeout`` seconds without an applied step, kills the
run's workers and reports ``"status": "stalls"``.

Measured per run: time per step (mean interval between applied steps, the first
``--warm-steps`` excluded, so process start-up and warm-up are not counted), validation and
test accuracy and the final (decoded) training loss after the same number of steps, the
largest parameter difference from a single-process reference (coded and wait_all runs must be
exact), steps applied without every worker's reply, and the CPU kept busy by other
processes. Repetitions use seeds ``seed, seed + 1, ...`` (different straggler draws, same draws
for every scheme within a repetition); medians over repetitions are reported.

Expected values next to the measurements: ``iid`` is the closed form with each step's
worker times independent (wait_all pays the max of n workers, a code pays ``s + 1`` slices
and waits for a slow worker only when the fast ones cannot decode); ``simulated`` replays the
protocol (skip-ahead of late workers, so a straggler can still be missing at the next step)
with many random draws; ``replay`` is the same simulation with the exact draws of the
measured runs. All three are calibrated with the measured p = 0 step time of each scheme
and one compute time per slice under contention (from the wait_all straggler runs).
Break-even p and k (coding vs wait_all) are given from the measurements (interpolated on
the grid) and from the closed form.

Usage::

    python bench/coded.py --quick > coded_quick.json   # 12 runs: 2 min idle, 4 min loaded (2 cores)
    python bench/coded.py > coded.json                  # 96 runs: about 23 minutes (2 cores, loaded)
    python bench/coded.py --from-json coded.json        # redo the analysis of a saved output
    python bench/coded.py --probs 0,0.2 --factors 3 --reps 3 --schemes wait_all,frc:1,cyclic:2
    python bench/coded.py --help                        # every flag

``--quick``: schemes wait_all, ignore:1, frc:1, cyclic:2; 25 steps per run, one repetition,
p in {0, 0.3}, k = 4, plus the kill case. Full: all six schemes, 40 steps per run, three
repetitions, p in {0, 0.1, 0.3}, k in {2, 4}, plus the kill case (one repetition). Each run pays 10-25 s of worker start-up (4 processes importing torch
and dgl), which is not timed but dominates the wall time of the benchmark. Logs go to
stderr; stdout gets one JSON object (``machine``, ``config``, ``load``, ``notes``,
``warnings``, ``calibration``, ``results``, ``break_even``, ``summary``, ``runs``).
This machine has 2 cores shared by the 4 workers and the aggregator (and possibly other
users): see ``notes`` in the output.
"""
from __future__ import annotations

import argparse
import contextlib
import heapq
import json
import logging
import math
import os
import statistics
import subprocess
import sys
import threading
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from sampler import machine_info, other_cpu_load  # noqa: E402

LOG = logging.getLogger("bench.coded")
N_WORKERS = 4
FULL_SCHEMES = "wait_all,ignore:1,ignore:2,frc:1,cyclic:1,cyclic:2"
QUICK_SCHEMES = "wait_all,ignore:1,frc:1,cyclic:2"
STRAGGLER_KEY = 0x5105  # run_worker's key: derive_rng(seed, worker, step, 0x5105)


# ============================================================================ configuration

@dataclass(frozen=True)
class Scheme:
    """One training scheme: run_coded's (scheme, code, tolerate) and slices per worker."""
    label: str
    scheme: str
    code: Optional[str]
    s: int

    @property
    def slices_per_worker(self) -> int:
        return self.s + 1 if self.scheme == "coded" else 1


def parse_scheme(text: str, n: int) -> Scheme:
    """``wait_all``, ``ignore:S``, ``frc:S`` or ``cyclic:S``."""
    from graphplat.distributed.coding import make_code

    name, _, s = text.strip().partition(":")
    if name == "wait_all":
        return Scheme("wait_all", "wait_all", None, 0)
    if not s:
        raise ValueError(f"scheme {text!r}: give s, e.g. {name}:1")
    s = int(s)
    if name in ("ignore", "ignore_stragglers"):
        if not 0 < s < n:
            raise ValueError(f"scheme {text!r}: need 0 < s < n={n}")
        return Scheme(f"ignore_stragglers s={s}", "ignore_stragglers", None, s)
    if name in ("frc", "cyclic"):
        make_code(name, n, s)  # ValueError for an invalid (n, s), e.g. frc with s=2
        return Scheme(f"{name} s={s}", "coded", name, s)
    raise ValueError(f"unknown scheme {text!r}: wait_all, ignore:S, frc:S or cyclic:S")


@dataclass(frozen=True)
class Condition:
    """Straggler injection (p, k) or a killed worker."""
    p: float = 0.0
    k: float = 1.0
    kill_step: Optional[int] = None

    @property
    def label(self) -> str:
        if self.kill_step is not None:
            return f"kill worker 1 at step {self.kill_step}"
        return "p=0" if self.p == 0 else f"p={self.p:g} k={self.k:g}"


def _floats(text: str) -> List[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command line; --quick shrinks the grid, the runs and the repetitions."""
    p = argparse.ArgumentParser(
        description="Gradient coding vs wait_all vs ignore_stragglers with injected stragglers and a "
                    "killed worker (n=4 worker processes, synthetic recsys node classification). "
                    "Prints one JSON object on stdout; logs on stderr.",
        epilog="Defaults: full = 6 schemes, 40 steps/run, 3 reps, p 0,0.1,0.3, k 2,4, kill (96 runs, about 23 min "
               "on 2 loaded cores); --quick = 4 schemes, 25 steps/run, 1 rep, p 0,0.3, k 4, kill (12 runs, 2-4 "
               "min). Each run pays ~10-25 s of worker start-up (not timed).")
    p.add_argument("--quick", action="store_true", help="small grid, short runs, one repetition")
    p.add_argument("--schemes", default=None,
                   help=f"comma-separated: wait_all, ignore:S, frc:S, cyclic:S (default {FULL_SCHEMES}; "
                        f"quick {QUICK_SCHEMES})")
    p.add_argument("--probs", default=None, help="straggler probabilities p (default 0,0.1,0.3; quick 0,0.3)")
    p.add_argument("--factors", default=None, help="slowdown factors k (default 2,4; quick 4)")
    p.add_argument("--reps", type=int, default=None, help="repetitions of the straggler grid (default 3; quick 1)")
    p.add_argument("--kill-reps", type=int, default=1, help="repetitions of the killed-worker case (0: skip)")
    p.add_argument("--epochs", type=int, default=None, help="epochs per run (5 steps each; default 8; quick 5)")
    p.add_argument("--users", type=int, default=4000, help="synthetic users (60%% train; default 4000)")
    p.add_argument("--batch-size", type=int, default=480, help="global batch (default 480: 120 seeds/slice)")
    p.add_argument("--fanout", type=int, default=10, help="fanout of both layers (default 10)")
    p.add_argument("--hidden", type=int, default=32, help="hidden size of the 2-layer hsage model")
    p.add_argument("--seed", type=int, default=3, help="seed of the first repetition (then +1, +2, ...)")
    p.add_argument("--warm-steps", type=int, default=2, help="step intervals excluded from the timing")
    p.add_argument("--stall-timeout", type=float, default=10.0,
                   help="seconds without an applied step (at least 20x the median step) before a run "
                        "is declared stalled (default 10)")
    p.add_argument("--startup-timeout", type=float, default=180.0, help="seconds to the first applied step")
    p.add_argument("--run-timeout", type=float, default=600.0, help="hard limit per run, seconds")
    p.add_argument("--sim-steps", type=int, default=3000, help="steps of the protocol simulation")
    p.add_argument("--from-json", metavar="FILE", default=None,
                   help="do not run anything: redo the analysis of the runs in a saved output of this script "
                        "(its config is used; analysis flags such as --sim-steps apply)")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    args.probs = _floats(args.probs) if args.probs else ([0.0, 0.3] if args.quick else [0.0, 0.1, 0.3])
    args.factors = _floats(args.factors) if args.factors else ([4.0] if args.quick else [2.0, 4.0])
    args.reps = args.reps or (1 if args.quick else 3)
    args.epochs = args.epochs or (5 if args.quick else 8)
    if args.schemes is None:
        args.schemes = QUICK_SCHEMES if args.quick else FULL_SCHEMES
    if any(not 0 <= x < 1 for x in args.probs) or any(k < 1 for k in args.factors):
        p.error("need 0 <= p < 1 and k >= 1")
    args.scheme_list = [parse_scheme(s, N_WORKERS) for s in args.schemes.split(",") if s.strip()]
    if not args.scheme_list:
        p.error("no schemes")
    return args


def train_config(args, seed: int):
    """The synthetic recsys node-classification config of one run."""
    from graphplat.training.config import TrainConfig

    return TrainConfig.from_dict({
        "dataset": "synthetic",
        "dataset_options": {"num_users": args.users, "num_items": 1000, "num_shops": 40,
                            "num_clicks": 20 * args.users},
        "model": {"name": "hsage", "hidden": args.hidden, "num_layers": 2, "dropout": 0.3},
        "fanouts": [args.fanout, args.fanout], "batch_size": args.batch_size, "epochs": args.epochs,
        "lr": 0.01, "seeds": [int(seed)]})


# ============================================================================ instrumentation

class RunRecorder:
    """What one run_coded call did: the aggregator handle, the time and replies of every
    applied step, the worker processes, the kill and a stall, if any."""

    def __init__(self):
        self.server = None
        self.procs: List[subprocess.Popen] = []
        self.applied: List[Tuple[float, int]] = []  # (perf_counter, replies held at apply)
        self.joins: Dict[int, float] = {}  # worker -> first Join
        self.kill_at: Optional[Tuple[float, int]] = None  # (time, steps applied) of run_coded's kill
        self.stall: Optional[Dict[str, Any]] = None
        self.done = threading.Event()


@contextlib.contextmanager
def instrumented(rec: RunRecorder):
    """Patch, for one run_coded call, ``aggregator.serve_aggregator`` (run_coded imports it at
    call time) to time every applied step and every worker's Join, and the ``subprocess`` name
    inside coded_train to record the worker processes (so a stalled run can be ended) and the
    launcher's kill. Restored on exit."""
    from graphplat.distributed import aggregator as agg
    from graphplat.distributed import coded_train as ct

    orig_serve = agg.serve_aggregator

    def serve(*a, **kw):
        server = orig_serve(*a, **kw)
        core = server.core
        orig_apply = core._apply

        def _apply(decoded, used):
            held = len(core.replies)
            ok = orig_apply(decoded, used)
            if ok:
                rec.applied.append((time.perf_counter(), held))
            return ok

        orig_join = core.join

        def join(worker_id):
            reply = orig_join(worker_id)
            rec.joins.setdefault(int(worker_id), time.perf_counter())
            return reply

        core._apply, core.join = _apply, join
        rec.server = server
        return server

    class RecordedPopen(subprocess.Popen):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            rec.procs.append(self)

        def kill(self):
            if rec.kill_at is None and rec.stall is None and not (rec.server and rec.server.core.done):
                rec.kill_at = (time.perf_counter(), len(rec.applied))
            super().kill()

    shim = types.ModuleType("subprocess")
    shim.__dict__.update(subprocess.__dict__)
    shim.Popen = RecordedPopen
    orig_sub = ct.subprocess
    agg.serve_aggregator, ct.subprocess = serve, shim
    try:
        yield rec
    finally:
        agg.serve_aggregator, ct.subprocess = orig_serve, orig_sub


def watchdog(rec: RunRecorder, t0: float, args) -> None:
    """Declare the run stalled when no step is applied for ``max(stall_timeout, 20 x median
    step)`` seconds (or none within ``startup_timeout``, or ``run_timeout`` is over), then
    kill the run's workers so run_coded returns (it raises 'every worker exited')."""
    while not rec.done.wait(0.1):
        if rec.server is not None and rec.server.core.done:
            return  # trained; run_coded is evaluating
        now = time.perf_counter()
        times = [t for t, _ in rec.applied]
        if times:
            gaps = np.diff(times)
            limit = max(args.stall_timeout, 20 * float(np.median(gaps)) if len(gaps) else 0.0)
            idle = now - times[-1]
        else:
            limit, idle = args.startup_timeout, now - t0
        if idle < limit and now - t0 < args.run_timeout:
            continue
        status = None
        if rec.server is not None:
            st = rec.server.core.status()
            status = {"step": int(st.step), "received": list(st.received), "missing": list(st.missing)}
        rec.stall = {"steps_applied": len(times), "no_progress_s": round(idle, 2), "aggregator": status}
        LOG.warning("no step applied for %.1fs (limit %.1fs): declaring the run stalled at %s", idle, limit,
                    status)
        for p in rec.procs:
            if p.poll() is None:
                p.kill()
        return


def cpu_stat() -> Optional[Tuple[int, int]]:
    """(busy, total) jiffies of the whole machine."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0), sum(fields)


def own_cpu() -> float:
    """CPU seconds of this process and its reaped children (the workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


# ============================================================================ one run

def step_stats(times: Sequence[float], warm: int, lo: int = 0, hi: Optional[int] = None) -> Optional[dict]:
    """Mean/median/p90 interval (ms) between applied steps ``lo+warm .. hi``."""
    gaps = np.diff(np.asarray(times[lo:hi]))[warm:]
    if len(gaps) == 0:
        return None
    return {"mean": 1e3 * float(gaps.mean()), "median": 1e3 * float(np.median(gaps)),
            "p90": 1e3 * float(np.percentile(gaps, 90)), "intervals": int(len(gaps))}


def max_param_diff(a, b) -> Optional[float]:
    if a is None or b is None or list(a) != list(b):
        return None
    return max(float(np.abs(np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64)).max()) for k in a)


def run_one(args, cfg, scheme: Scheme, cond: Condition, reference) -> Dict[str, Any]:
    """One run_coded call with timing, a stall watchdog and load accounting."""
    from graphplat.distributed.coded_train import run_coded

    rec = RunRecorder()
    stat0, cpu0, t0 = cpu_stat(), own_cpu(), time.perf_counter()
    dog = threading.Thread(target=watchdog, args=(rec, t0, args), name="bench-watchdog", daemon=True)
    result, error = None, None
    with instrumented(rec):
        dog.start()
        try:
            result = run_coded(cfg, workers=N_WORKERS, tolerate=scheme.s, scheme=scheme.scheme,
                               code=scheme.code or "frc", slow_prob=cond.p, slow_factor=cond.k,
                               kill={1: cond.kill_step} if cond.kill_step is not None else None)
        except RuntimeError as e:
            error = str(e)
        finally:
            rec.done.set()
            dog.join()
    wall = time.perf_counter() - t0
    stat1, cpu1 = cpu_stat(), own_cpu()
    other = None
    if stat0 and stat1 and stat1[1] > stat0[1]:
        busy = (stat1[0] - stat0[0]) / (stat1[1] - stat0[1]) * (os.cpu_count() or 1)
        other = max(0.0, busy - (cpu1 - cpu0) / wall)
    times = [t for t, _ in rec.applied]
    held = [h for _, h in rec.applied]
    # time steps only once every worker has joined (process start-up is slow and uneven, and
    # the schemes that need fewer than n replies start before the last worker is up)
    lo = len(times)
    if len(rec.joins) == N_WORKERS:
        last_join = max(rec.joins.values())
        lo = sum(1 for t in times if t <= last_join)
    out: Dict[str, Any] = {
        "scheme": scheme.label, "condition": cond.label, "seed": cfg.seeds[0], "p": cond.p, "k": cond.k,
        "kill_step": cond.kill_step, "steps_applied": len(times), "wall_s": round(wall, 2),
        "other_busy_cores": None if other is None else round(other, 2),
        "loadavg_1min": round(os.getloadavg()[0], 2),
        "steps_before_all_joined": lo,
        "ms_per_step": step_stats(times, args.warm_steps, lo),
        "steps_without_all_replies": sum(1 for h in held[lo:] if h < N_WORKERS),
        "applied_ms": [round(1e3 * (t - times[0]), 2) for t in times],
    }
    if rec.kill_at is not None:
        k_steps = rec.kill_at[1]
        out["killed_after_steps"] = k_steps
        out["ms_per_step_before_kill"] = step_stats(times, args.warm_steps, min(lo, k_steps), k_steps)
        out["ms_per_step_after_kill"] = step_stats(times, 1, k_steps, None)
    if rec.stall is not None:
        out["status"] = "stalls"
        out["stall"] = rec.stall
    elif error is not None or result is None:
        out["status"] = "error"
        out["error"] = error
    else:
        out["status"] = "ok"
        out["steps"] = result["steps"]
        out["val_accuracy"] = result["val"].get("accuracy")
        out["test_accuracy"] = result["test"].get("accuracy")
        out["final_loss"] = result["last_loss"]
        out["dropped_late"] = result["dropped_late"]
        out["max_param_diff_vs_reference"] = max_param_diff(result["params"], reference)
    LOG.info("%-22s %-26s seed %d: %s, %s ms/step, val acc %s, loss %s, other load %s, %.1fs", scheme.label,
             cond.label, cfg.seeds[0], out["status"],
             None if out["ms_per_step"] is None else round(out["ms_per_step"]["mean"], 1),
             out.get("val_accuracy"), None if out.get("final_loss") is None else round(out["final_loss"], 4),
             out["other_busy_cores"], wall)
    return out


# ============================================================================ models

def binom_tail(n: int, p: float, more_than: int) -> float:
    """P(Binomial(n, p) > more_than)."""
    return float(sum(math.comb(n, j) * p ** j * (1 - p) ** (n - j) for j in range(more_than + 1, n + 1)))


def stall_probability(scheme: Scheme, n: int, p: float) -> float:
    """P(the aggregator must wait for a slow worker) when each worker is slow with prob. p
    independently: wait_all any slow; ignore_stragglers and the cyclic code more than s slow;
    FRC some group of s+1 all slow."""
    if scheme.scheme == "wait_all":
        return 1 - (1 - p) ** n
    if scheme.scheme == "coded" and scheme.code == "frc":
        return 1 - (1 - p ** (scheme.s + 1)) ** (n // (scheme.s + 1))
    return binom_tail(n, p, scheme.s)


def iid_step(scheme: Scheme, base: float, c: float, p: float, k: float, n: int = N_WORKERS) -> float:
    """Expected step time: the p=0 time plus (k-1) x the worker's compute (w slices of c each)
    whenever the needed replies include a slow one."""
    return base + (k - 1) * scheme.slices_per_worker * c * stall_probability(scheme, n, p)


def decodable_fn(scheme: Scheme, n: int) -> Callable[[frozenset], bool]:
    from graphplat.distributed.coding import make_code

    if scheme.scheme == "wait_all":
        return lambda got: len(got) == n
    if scheme.scheme == "ignore_stragglers":
        return lambda got: len(got) >= n - scheme.s
    code = make_code(scheme.code, n, scheme.s)
    cache: Dict[frozenset, bool] = {}

    def ok(got):
        if got not in cache:
            cache[got] = code.can_decode(sorted(got))
        return cache[got]
    return ok


def simulate(scheme: Scheme, n: int, c: float, o: float, k: float, steps: int,
             slow: Callable[[int, int], bool], kill: Optional[Tuple[int, int]] = None,
             warm: int = 2) -> Optional[float]:
    """Event simulation of the aggregator protocol: a worker pulls the current step's
    parameters, computes ``w x c`` (``k`` times longer when ``slow(worker, step)``), pushes;
    the step is applied (and the next parameters published ``o`` later) as soon as the
    replies decode; a late push is dropped and its worker pulls the current step at once.
    ``kill = (worker, step)``: that worker never pushes again from that step on. Returns the
    mean step interval after ``warm`` steps, or None when the run stalls."""
    w = scheme.slices_per_worker
    can = decodable_fn(scheme, n)
    heap: List[Tuple[float, int, int]] = []
    step, published, replies, waiting, applied = 0, 0.0, set(), [], []

    def start(i: int, t: float, st: int) -> None:
        if kill is not None and i == kill[0] and st >= kill[1]:
            return
        heapq.heappush(heap, (t + w * c * (k if slow(i, st) else 1.0), i, st))

    for i in range(n):
        start(i, 0.0, 0)
    while step < steps:
        if not heap:
            return None
        t, i, st = heapq.heappop(heap)
        if st != step:  # late: dropped; the pull returns the current step immediately
            start(i, max(t, published), step)
            continue
        replies.add(i)
        if not can(frozenset(replies)):
            waiting.append(i)
            continue
        step += 1
        published = t + o
        applied.append(published)
        replies = set()
        for j in waiting + [i]:
            start(j, published, step)
        waiting = []
    gaps = np.diff(applied)[warm:]
    return float(gaps.mean()) if len(gaps) else None


def realized_slow(seed: int, p: float, n: int, steps: int) -> np.ndarray:
    """The straggler draws run_worker makes: slow[step, worker]."""
    from graphplat.sampling.seeds import derive_rng

    if p <= 0:
        return np.zeros((steps, n), bool)
    return np.array([[derive_rng(seed, i, t, STRAGGLER_KEY).random() < p for i in range(n)]
                     for t in range(steps)])


# ============================================================================ aggregation

def med(values) -> Optional[float]:
    vals = [v for v in values if v is not None]
    return float(statistics.median(vals)) if vals else None


def r3(x):
    if x is None:
        return None
    if isinstance(x, float) and not math.isfinite(x):
        return "inf" if x > 0 else None
    return round(float(x), 3)


def compute_per_slice(runs: List[dict], args, steps: int) -> Optional[dict]:
    """Compute time of one slice in a worker under this contention, from the wait_all
    straggler runs: every worker computes every step there, so the runs' own draws say which
    steps had a slow worker; (mean slow-step interval - mean other interval) / (k - 1)."""
    ests = []
    for r in runs:
        if r["scheme"] != "wait_all" or r["p"] <= 0 or r["k"] <= 1 or r["status"] != "ok":
            continue
        times = [t / 1e3 for t in r.get("applied_ms") or []]
        if len(times) < 4:
            continue
        slow_any = realized_slow(r["seed"], r["p"], N_WORKERS, len(times)).any(axis=1)
        gaps = np.diff(times)  # gaps[t-1] = computing step t
        idx = np.arange(1, len(times))
        keep = idx > r.get("steps_before_all_joined", 0) + args.warm_steps
        slow_g, fast_g = gaps[keep & slow_any[idx]], gaps[keep & ~slow_any[idx]]
        if len(slow_g) and len(fast_g):
            ests.append((float(slow_g.mean()) - float(fast_g.mean())) / (r["k"] - 1))
    if not ests:
        return None
    return {"seconds": float(np.median(ests)), "estimates_ms": [r3(1e3 * e) for e in ests]}


def interpolate_crossing(xs: Sequence[float], ds: Sequence[Optional[float]]) -> Dict[str, Any]:
    """Where d(x) = coded - wait_all changes sign on the grid (linear interpolation)."""
    pts = [(x, d) for x, d in zip(xs, ds) if d is not None]
    if len(pts) < 2:
        return {"verdict": "not enough points"}
    wins = [x for x, d in pts if d < 0]
    crossings = []
    for (x0, d0), (x1, d1) in zip(pts, pts[1:]):
        if (d0 >= 0 > d1) or (d0 < 0 <= d1):
            at = r3(x0 + (x1 - x0) * d0 / (d0 - d1))
            crossings.append({"at": at, "coding": "starts winning" if d1 < 0 else "stops winning"})
    if crossings:
        verdict = "; ".join(f"coding {c['coding']} at ~{c['at']}" for c in crossings)
        out = {"verdict": verdict, "crossings": crossings, "coding_wins_at": wins}
        if len(crossings) == 1:
            out["at"] = crossings[0]["at"]
        return out
    if not wins:
        return {"verdict": f"coding never wins for {pts[0][0]:g} <= x <= {pts[-1][0]:g}", "coding_wins_at": []}
    return {"verdict": f"coding wins at every x in [{pts[0][0]:g}, {pts[-1][0]:g}]", "coding_wins_at": wins}


def analytic_p_interval(coded: Scheme, wait: Scheme, base_c: float, base_w: float, c: float, k: float
                        ) -> Optional[List[float]]:
    """[p_lo, p_hi] where the closed form has coding faster than wait_all (None: never)."""
    ps = np.linspace(0, 0.999, 1000)
    win = [p for p in ps if iid_step(coded, base_c, c, p, k) < iid_step(wait, base_w, c, p, k)]
    return [r3(min(win)), r3(max(win))] if win else None


def analytic_k(coded: Scheme, wait: Scheme, base_c: float, base_w: float, c: float, p: float):
    """Smallest k at which the closed form has coding faster than wait_all at this p."""
    gain = c * (stall_probability(wait, N_WORKERS, p)
                - coded.slices_per_worker * stall_probability(coded, N_WORKERS, p))
    if gain <= 0:
        return math.inf
    return 1 + max(0.0, base_c - base_w) / gain


def ideal_p_interval(coded: Scheme, k: float) -> Optional[List[float]]:
    """The closed form with one core per worker and no overhead: (s+1)(1+(k-1)Pc) < 1+(k-1)Pw."""
    wait = Scheme("wait_all", "wait_all", None, 0)
    return analytic_p_interval(coded, wait, coded.slices_per_worker, 1.0, 1.0, k)


# ============================================================================ main

def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    if not args.verbose:  # keep the launcher's warnings (kills), drop per-run dataset/aggregator chatter
        logging.getLogger("graphplat").setLevel(logging.WARNING)
    import torch

    from graphplat.distributed.coded_train import SliceComputer, reference_run
    from graphplat.training.loop import open_task

    torch.set_num_threads(1)  # the in-process aggregator's optimizer step is tiny
    if args.from_json:
        return reanalyse(args)
    schemes: List[Scheme] = args.scheme_list
    seeds = [args.seed + r for r in range(max(args.reps, args.kill_reps))]
    load_start = {"loadavg": [round(x, 2) for x in os.getloadavg()], "other_busy_cores": other_cpu_load(1.0)}
    t_start = time.perf_counter()

    # -- references (single process, every slice) and the single-process slice time
    references, steps, slice_ms = {}, None, None
    for sd in seeds:
        cfg = train_config(args, sd)
        task = open_task(cfg)
        try:
            references[sd] = reference_run(cfg, task, sd, N_WORKERS)
            if slice_ms is None:
                comp = SliceComputer(cfg, task, sd, N_WORKERS)
                steps = comp.max_steps
                for j in range(N_WORKERS):
                    comp.slice_vector(0, j)
                t0, reps = time.perf_counter(), 0
                for t in range(1, min(6, steps)):
                    for j in range(N_WORKERS):
                        comp.slice_vector(t, j)
                        reps += 1
                slice_ms = 1e3 * (time.perf_counter() - t0) / reps
        finally:
            task.close()
    LOG.info("%d steps per run; one slice takes %.1f ms in one process (1 thread)", steps, slice_ms)
    kill_step = max(args.warm_steps + 2, steps // 3)

    conds = [Condition(0.0, 1.0)] + [Condition(p, k) for p in args.probs if p > 0 for k in args.factors]
    plan: List[Tuple[int, Condition, Scheme]] = []
    for rep in range(max(args.reps, args.kill_reps)):
        order = schemes[rep % len(schemes):] + schemes[:rep % len(schemes)]  # rotate the order per rep
        if rep < args.reps:
            plan += [(rep, c, s) for c in conds for s in order]
        if rep < args.kill_reps:
            plan += [(rep, Condition(kill_step=kill_step), s) for s in order]
    LOG.info("%d runs planned", len(plan))

    runs: List[dict] = []
    for idx, (rep, cond, scheme) in enumerate(plan):
        LOG.info("run %d/%d (repetition %d)", idx + 1, len(plan), rep)
        runs.append(run_one(args, train_config(args, seeds[rep]), scheme, cond, references[seeds[rep]]))
    bench_s = time.perf_counter() - t_start
    load_end = {"loadavg": [round(x, 2) for x in os.getloadavg()], "other_busy_cores": other_cpu_load(1.0)}
    load = {"start": load_start, "end": load_end, "bench_seconds": round(bench_s, 1)}
    print(json.dumps(build_output(args, schemes, conds, kill_step, runs, steps, slice_ms, seeds, load),
                     indent=1, default=_json_default, allow_nan=False))
    return 0


def reanalyse(args) -> int:
    """--from-json: the analysis of a saved output's runs, with its config."""
    saved = json.loads(Path(args.from_json).read_text())
    cfg = saved["config"]
    args.probs, args.factors = cfg["probs"], cfg["factors"]
    args.reps, args.kill_reps, args.warm_steps = cfg["reps"], cfg["kill_reps"], cfg["warm_steps"]
    args.quick, args.stall_timeout = cfg["quick"], cfg["stall_timeout_s"]
    task = cfg["task"]
    args.users, args.batch_size, args.fanout, args.epochs = (task["users"], task["batch_size"], task["fanouts"][0],
                                                             task["epochs"])
    args.hidden = int(task["model"].split()[-1])
    label_to_spec = {"wait_all": "wait_all"}
    specs = []
    for label in cfg["schemes"]:
        if label in label_to_spec:
            specs.append(label_to_spec[label])
        else:
            name, s_eq = label.split()
            specs.append(f"{'ignore' if name == 'ignore_stragglers' else name}:{s_eq.split('=')[1]}")
    schemes = [parse_scheme(x, N_WORKERS) for x in specs]
    conds = [Condition(0.0, 1.0)] + [Condition(p, k) for p in args.probs if p > 0 for k in args.factors]
    out = build_output(args, schemes, conds, cfg["kill"]["at_step"], saved["runs"], cfg["steps_per_run"],
                       saved["calibration"]["slice_ms_single_process"], cfg["seeds"],
                       {**saved["load"], "reanalysed_from": str(args.from_json)}, machine=saved.get("machine"))
    print(json.dumps(out, indent=1, default=_json_default, allow_nan=False))
    return 0


def build_output(args, schemes, conds, kill_step, runs, steps, slice_ms, seeds, load, machine=None) -> dict:
    """The JSON document: config, load, notes, warnings, analysis and the raw runs."""
    report = analyse(args, schemes, conds, kill_step, runs, steps, slice_ms)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    other = [r["other_busy_cores"] for r in runs if r["other_busy_cores"] is not None]
    load = {**load, "other_busy_cores_during_runs": {"median": r3(med(other)),
                                                     "max": r3(max(other) if other else None)}}
    warnings = []
    if other and med(other) > 0.25:
        warnings.append(f"other processes kept a median {med(other):.2f} (max {max(other):.2f}) of the {cores} "
                        "cores busy during the runs: step times are inflated and noisier than on an idle machine")
    warnings += [f"{r['scheme']} / {r['condition']} (seed {r['seed']}): {r['status']}: {r.get('error')}"
                 for r in runs if r["status"] == "error"]
    warnings += [f"{r['scheme']} / {r['condition']} (seed {r['seed']}): final parameters differ from the "
                 f"single-process reference by {r['max_param_diff_vs_reference']:.3g} (> 1e-6): this run did NOT "
                 "train exactly (expected exact for coded and wait_all)"
                 for r in runs if r["status"] == "ok" and not r["scheme"].startswith("ignore")
                 and (r.get("max_param_diff_vs_reference") or 0) > 1e-6]
    return {
        "benchmark": "gradient coding vs wait_all vs ignore_stragglers (bench/coded.py)",
        "machine": machine or machine_info(("torch", "dgl", "grpcio")),
        "config": {"quick": args.quick, "workers": N_WORKERS, "schemes": [s.label for s in schemes],
                   "probs": args.probs, "factors": args.factors, "reps": args.reps, "kill_reps": args.kill_reps,
                   "kill": {"worker": 1, "at_step": kill_step}, "steps_per_run": steps,
                   "task": {"dataset": "synthetic recsys", "users": args.users, "train_fraction": 0.6,
                            "batch_size": args.batch_size, "seeds_per_slice": args.batch_size // N_WORKERS,
                            "model": f"hsage 2 layers hidden {args.hidden}", "fanouts": [args.fanout] * 2,
                            "epochs": args.epochs, "optimizer": "adam lr 0.01"},
                   "seeds": seeds[:max(args.reps, args.kill_reps)], "warm_steps": args.warm_steps,
                   "stall_timeout_s": args.stall_timeout, "sim_steps": args.sim_steps},
        "load": load,
        "notes": notes(args, report, cores, steps),
        "warnings": warnings,
        **report,
        "runs": runs,
    }


def _json_default(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(type(x).__name__)


def _clean(x):
    """Replace non-finite floats (JSON has none) by "inf"/None, recursively."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return "inf" if x > 0 else None
    return x


def analyse(args, schemes: List[Scheme], conds: List[Condition], kill_step: int, runs: List[dict],
            steps: int, slice_ms: float) -> Dict[str, Any]:
    """Medians per (condition, scheme), the calibrated expectations, the break-even points."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

    def group(cond: Condition, scheme: Scheme) -> List[dict]:
        return [r for r in runs if r["condition"] == cond.label and r["scheme"] == scheme.label]

    def measured(cond: Condition, scheme: Scheme) -> Optional[float]:
        rs = [r for r in group(cond, scheme) if r["status"] == "ok" and r["ms_per_step"]]
        return med(r["ms_per_step"]["mean"] for r in rs)

    p0 = conds[0]
    base = {s.label: measured(p0, s) for s in schemes}  # ms
    est = compute_per_slice(runs, args, steps)
    fallback_ms = slice_ms * max(1.0, N_WORKERS / cores)
    c_ms = 1e3 * est["seconds"] if est else fallback_ms
    calibration = {
        "slice_ms_single_process": r3(slice_ms),
        "slice_ms_in_worker_under_contention": r3(c_ms),
        "slice_ms_source": ("wait_all straggler runs: (mean slow-step interval - mean other interval) / (k-1), "
                            "slow steps known from the runs' own draws" if est else
                            f"fallback: single-process time x workers/cores ({N_WORKERS}/{cores})"),
        "slice_ms_estimates": est["estimates_ms"] if est else None,
        "contention_factor": r3(c_ms / slice_ms) if slice_ms else None,
        "p0_ms_per_step": {k: r3(v) for k, v in base.items()},
        "overhead_ms_per_step": {s.label: r3(max(0.0, base[s.label] - s.slices_per_worker * c_ms))
                                 for s in schemes if base[s.label] is not None},
        "model": "step = p0 step time of the scheme + (k-1) x slices_per_worker x slice_ms whenever a slow worker "
                 "is needed; overhead = p0 step - slices_per_worker x slice_ms (RPCs, decode, optimizer, publish)",
    }
    rng = np.random.default_rng(20240)
    results = []
    for cond in conds + ([Condition(kill_step=kill_step)] if args.kill_reps > 0 else []):
        draws = rng.random((args.sim_steps + 2, N_WORKERS)) < cond.p
        for s in schemes:
            rs = group(cond, s)
            if not rs:
                continue
            ok = [r for r in rs if r["status"] == "ok"]
            m = measured(cond, s)
            row: Dict[str, Any] = {
                "condition": cond.label, "p": cond.p, "k": cond.k, "scheme": s.label, "s": s.s,
                "slices_per_worker": s.slices_per_worker, "reps": len(rs),
                "status": "stalls" if any(r["status"] == "stalls" for r in rs) else
                          ("ok" if len(ok) == len(rs) else "error"),
                "ms_per_step": r3(m), "ms_per_step_reps": [r3(r["ms_per_step"]["mean"]) if r["ms_per_step"] else None
                                                          for r in rs],
            }
            wait_s = next((x for x in schemes if x.scheme == "wait_all"), None)
            wm = measured(cond, wait_s) if wait_s is not None and cond.kill_step is None else None
            if wm and m and s is not wait_s:
                row["vs_wait_all"] = r3(m / wm)
                waits = {r["seed"]: r["ms_per_step"]["mean"] for r in group(cond, wait_s)
                         if r["status"] == "ok" and r["ms_per_step"]}
                row["vs_wait_all_per_seed"] = [r3(r["ms_per_step"]["mean"] / waits[r["seed"]]) for r in ok
                                               if r["ms_per_step"] and r["seed"] in waits]
            b = base.get(s.label)
            if b is not None:
                o = max(0.0, b - s.slices_per_worker * c_ms)
                kill = (1, kill_step) if cond.kill_step is not None else None
                sim = simulate(s, N_WORKERS, c_ms, o, cond.k, args.sim_steps,
                               lambda i, t, d=draws: bool(d[t, i]), kill, args.warm_steps)
                replays = []
                for r in rs:
                    real = realized_slow(r["seed"], cond.p, N_WORKERS, steps + 1)
                    replays.append(simulate(s, N_WORKERS, c_ms, o, cond.k, steps,
                                            lambda i, t, d=real: bool(d[t, i]), kill, args.warm_steps))
                expected = {"simulated": "stalls" if sim is None else r3(sim),
                            "replay": "stalls" if any(x is None for x in replays) else r3(med(replays))}
                if cond.kill_step is None:
                    expected = {"iid": r3(iid_step(s, b, c_ms, cond.p, cond.k)), **expected}
                row["expected_ms_per_step"] = expected
            if cond.p > 0:
                row["p_needs_slow_worker_iid"] = r3(stall_probability(s, N_WORKERS, cond.p))
                if s.scheme == "wait_all":
                    row["realized_fraction_of_steps_with_a_slow_worker"] = r3(med(
                        float(realized_slow(r["seed"], cond.p, N_WORKERS, steps).any(axis=1).mean()) for r in rs))
            if cond.kill_step is not None:
                row["killed_after_steps"] = [r.get("killed_after_steps") for r in rs]
                row["ms_per_step_before_kill"] = r3(med(r["ms_per_step_before_kill"]["mean"] for r in rs
                                                        if r.get("ms_per_step_before_kill")))
                row["ms_per_step_after_kill"] = r3(med(r["ms_per_step_after_kill"]["mean"] for r in rs
                                                       if r.get("ms_per_step_after_kill")))
                stalls = [r["stall"] for r in rs if r.get("stall")]
                if stalls:
                    row["stall"] = stalls[0]
            if ok:
                row["val_accuracy"] = r3(med(r["val_accuracy"] for r in ok))
                row["test_accuracy"] = r3(med(r["test_accuracy"] for r in ok))
                row["final_loss"] = r3(med(r["final_loss"] for r in ok))
                diffs = [r["max_param_diff_vs_reference"] for r in ok if r["max_param_diff_vs_reference"] is not None]
                row["max_param_diff_vs_reference"] = max(diffs) if diffs else None
                row["exact"] = bool(diffs) and max(diffs) <= 1e-6
                row["steps_without_all_replies"] = med(r["steps_without_all_replies"] for r in ok)
            row["other_busy_cores"] = r3(med(r["other_busy_cores"] for r in rs))
            results.append(row)

    # -- break-even: each code against wait_all
    wait = next((x for x in schemes if x.scheme == "wait_all"), None)
    break_even: Dict[str, Any] = {}
    pos_probs = [p for p in args.probs if p > 0]
    for s in schemes:
        if s.scheme != "coded" or wait is None or base.get(s.label) is None or base.get(wait.label) is None:
            continue

        def diff(cond):
            a, b = measured(cond, s), measured(cond, wait)
            return None if a is None or b is None else a - b

        by_k = {f"k={k:g}": interpolate_crossing([0.0] + pos_probs, [diff(p0)] + [diff(Condition(p, k))
                                                                                   for p in pos_probs])
                for k in args.factors}
        by_p = {f"p={p:g}": interpolate_crossing([1.0] + args.factors, [diff(p0)] + [diff(Condition(p, k))
                                                                                      for k in args.factors])
                for p in pos_probs}
        ks = sorted(set(args.factors) | {2.0, 3.0, 4.0, 8.0})
        ps = sorted(set(pos_probs) | {0.05, 0.1, 0.2, 0.3, 0.5})
        bc, bw = base[s.label] / 1e3, base[wait.label] / 1e3
        c = c_ms / 1e3
        break_even[s.label] = {
            "measured_ratio_vs_wait_all": {cond.label: r3(measured(cond, s) / measured(cond, wait))
                                           for cond in conds if measured(cond, s) and measured(cond, wait)},
            "measured_break_even_p_for_k": by_k,
            "measured_break_even_k_for_p": by_p,
            "closed_form_calibrated": {
                "p_interval_where_coding_wins_for_k": {f"k={k:g}": analytic_p_interval(s, wait, bc, bw, c, k)
                                                       for k in ks},
                "break_even_k_for_p": {f"p={p:g}": r3(analytic_k(s, wait, bc, bw, c, p)) for p in ps},
            },
            "closed_form_ideal_one_core_per_worker": {
                "p_interval_where_coding_wins_for_k": {f"k={k:g}": ideal_p_interval(s, k) for k in ks},
                "break_even_k_for_p": {f"p={p:g}": r3(analytic_k(s, wait, float(s.slices_per_worker), 1.0, 1.0, p))
                                       for p in ps},
                "max_speedup_over_wait_all": f"k/(s+1) = k/{s.s + 1} (all of wait_all's steps slow, none of the code's)",
            },
        }
    return _clean({"calibration": calibration, "results": results, "break_even": break_even,
                   "summary": summarize(schemes, conds, results, break_even, kill_step)})


def summarize(schemes, conds, results, break_even, kill_step) -> List[str]:
    """Plain-language conclusions from the numbers."""
    lines = []
    for label, be in break_even.items():
        ratios = be["measured_ratio_vs_wait_all"]
        wins = [c for c, r in ratios.items() if r is not None and r < 1]
        paired = {r["condition"]: r.get("vs_wait_all_per_seed") for r in results if r["scheme"] == label}
        lines.append(f"{label} vs wait_all, time per step coded/wait_all (median; per seed): "
                     + ", ".join(f"{c}: {r} {paired.get(c) or ''}".rstrip() for c, r in ratios.items())
                     + (f"; coding faster at {', '.join(wins)}" if wins else "; coding never faster on this grid"))
        for kk, v in be["measured_break_even_p_for_k"].items():
            cf = be["closed_form_calibrated"]["p_interval_where_coding_wins_for_k"].get(kk)
            ideal = be["closed_form_ideal_one_core_per_worker"]["p_interval_where_coding_wins_for_k"].get(kk)
            lines.append(f"  {label}, {kk}: measured (p): {v['verdict']}"
                         + f"; closed form (calibrated): coding wins for {_interval(cf)}; ideal (1 core per "
                           f"worker): {_interval(ideal)}")
        for pp, v in be["measured_break_even_k_for_p"].items():
            cf = be["closed_form_calibrated"]["break_even_k_for_p"].get(pp)
            lines.append(f"  {label}, {pp}: measured (k): {v['verdict']}"
                         + f"; closed form (calibrated) break-even k = {cf}")
    kill_rows = [r for r in results if r["condition"].startswith("kill")]
    for r in kill_rows:
        if r["status"] == "stalls":
            st = r.get("stall") or {}
            lines.append(f"killed worker: {r['scheme']} STALLS (no step applied for {st.get('no_progress_s')}s after "
                         f"{st.get('steps_applied')} steps; aggregator missing {(st.get('aggregator') or {}).get('missing')}); "
                         f"expected: {r.get('expected_ms_per_step', {}).get('simulated')}")
        else:
            lines.append(f"killed worker: {r['scheme']} finishes, {r.get('ms_per_step_before_kill')} ms/step before the "
                         f"kill, {r.get('ms_per_step_after_kill')} after; val acc {r.get('val_accuracy')}, exact: "
                         f"{r.get('exact')}")
    ign = [r for r in results if r["scheme"].startswith("ignore") and "val_accuracy" in r]
    ref = [r for r in results if r["scheme"] == "wait_all" and "val_accuracy" in r]
    if ref:
        lines.append("accuracy after the same number of steps: wait_all val acc "
                     f"{sorted(set(r['val_accuracy'] for r in ref))} (coded and wait_all runs exact: "
                     f"{all(r.get('exact') for r in results if not r['scheme'].startswith('ignore') and 'exact' in r)}); "
                     f"ignore_stragglers val acc {sorted(set(r['val_accuracy'] for r in ign))} (inexact: "
                     f"max param diff vs reference up to {max((r['max_param_diff_vs_reference'] or 0) for r in ign) if ign else None})")
    return lines


def _interval(iv) -> str:
    return "no p" if not iv else f"{iv[0]} <= p <= {iv[1]}"


def notes(args, report, cores, steps) -> List[str]:
    cal = report["calibration"]
    return [
        f"This machine has {cores} usable cores shared by the {N_WORKERS} worker processes and the in-process "
        "aggregator (and by other users: see load). Compute time per slice is therefore inflated: "
        f"{cal['slice_ms_in_worker_under_contention']} ms per slice in a worker vs "
        f"{cal['slice_ms_single_process']} ms in one idle process (factor {cal['contention_factor']}).",
        "Stragglers are sleep-based (run_coded's slow_prob/slow_factor): a slow worker sleeps (k-1) x its own measured "
        "compute time after computing, so the injected slowdown costs wall time, not CPU, and with k=4 it dominates the "
        "differences in compute. A straggling worker's sleep frees CPU for the others, which makes them slightly faster "
        "than at p=0 (not modelled).",
        "The cost of coding is not what it would be with one core per worker: the (s+1)x slices per worker, and the "
        "work of workers whose reply is no longer needed, compete for the same cores, so on this box coding's p=0 step "
        "is about (s+1)x the CPU of wait_all's. The 'ideal' closed form assumes one core per worker and no overhead.",
        f"ms_per_step is the mean interval between applied steps over a run of {steps} steps, the first "
        f"{args.warm_steps} intervals excluded (process start-up, ~10 s per run for 4 workers importing torch/dgl, is "
        "not counted); the mean (not the median) because stragglers are rare events whose cost is the point.",
        "Straggler draws are a function of (seed, worker, step): within a repetition every scheme sees the same draws, "
        "repetitions use different seeds. With few steps the realized fraction of slow steps differs from p (see "
        "realized_fraction_of_steps_with_a_slow_worker and the 'replay' expectation, which uses the exact draws).",
        "Expected values: 'iid' closed form (each step independent); 'simulated' protocol simulation (late workers "
        "skip ahead, so a straggler can still be missing at the next step, which the closed form ignores); 'replay' "
        "the simulation with the measured runs' draws. Calibrated with each scheme's measured p=0 step and the "
        "per-slice compute time above.",
        "wait_all with a killed worker is run for real: the watchdog declares it stalled after "
        f"max({args.stall_timeout:g} s, 20 x median step) without an applied step and kills its workers.",
        "Validation metrics are after the same number of steps for every scheme. coded and wait_all apply the exact "
        "full-batch gradient (max_param_diff_vs_reference ~0, stragglers or not); ignore_stragglers applies a "
        "rescaled subset (inexact), which shows in its parameters and possibly its accuracy.",
    ]


if __name__ == "__main__":
    sys.exit(main())
