"""Fault-tolerant data-parallel training by gradient coding: the worker loop, a
single-process reference, and the launcher behind ``graphplat train --workers N``.

Step ``t`` of a run is batch ``i = t % steps_per_epoch`` of epoch ``e = t //
steps_per_epoch``: the epoch's shuffle of the training nodes (``derive_rng(seed, e)``, the
same as the in-process loader) cut into global batches, each cut into ``n`` slices with
``np.array_split``. Everything random about slice ``j`` -- its neighbor sampling
(``derive_seed(seed, e, i, j)``) and its dropout masks (torch seeded with
``derive_seed(seed, e, i, j, DROPOUT_KEY)``) -- is a function of ``(seed, e, i, j)``, never of
the worker, so every replica of a slice computes the same gradient bit for bit.

Layers that couple examples: the models have no batch norm (see ``graphplat.models.gnn``), and
node classification has no in-batch negatives, so a slice's gradient depends only on its own
seeds. Each slice's mean loss is scaled by ``len(slice) / len(global batch)``, so the decoded
sum is the gradient of the global batch's mean loss, exactly what one process computes.
"""
from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from graphplat.sampling.seeds import derive_rng, derive_seed
from graphplat.training.config import TrainConfig
from graphplat.training.loop import NodeClassificationTrainer, Task, block_inputs, open_task, pick

log = logging.getLogger(__name__)

DROPOUT_KEY = 0xD0
SCHEMES = ("coded", "wait_all", "ignore_stragglers")


class SliceComputer:
    """Gradients of the slices of a node-classification run (one per process).

    Args:
        cfg: the training config (model, fanouts, batch size, lr).
        task: the opened task.
        seed: the run's seed (shuffles, sampling, dropout).
        n: slices per global batch (the number of workers).
    """

    def __init__(self, cfg: TrainConfig, task: Task, seed: int, n: int):
        if task.task != "node_classification":
            raise ValueError(f"coded training supports node_classification, not {task.task!r}")
        if n < 1:
            raise ValueError(f"n (slices per step) must be >= 1, got {n}")
        self.cfg, self.task, self.seed, self.n = cfg, task, int(seed), int(n)
        torch.manual_seed(seed)
        self.trainer = NodeClassificationTrainer(cfg, task, seed)
        self.model = self.trainer.model
        self.train_ids = self.trainer.ids["train"]
        self.steps_per_epoch = math.ceil(len(self.train_ids) / cfg.batch_size)
        self.max_steps = cfg.epochs * self.steps_per_epoch
        self.params = OrderedDict((k, p) for k, p in self.model.named_parameters())
        self._perm_epoch, self._perm = -1, None

    def initial_params(self) -> "OrderedDict[str, np.ndarray]":
        """The model's initial parameters (name -> float32 array), in parameter order."""
        return OrderedDict((k, p.detach().numpy().copy()) for k, p in self.params.items())

    def load(self, flat: np.ndarray) -> None:
        """Set the parameters from a flat float32 vector (parameter order)."""
        offset = 0
        with torch.no_grad():
            for p in self.params.values():
                k = p.numel()
                p.copy_(torch.from_numpy(np.ascontiguousarray(flat[offset:offset + k])).view_as(p))
                offset += k
        if offset != len(flat):
            raise ValueError(f"parameter vector has {len(flat)} entries, the model {offset}")

    def global_batch(self, step: int) -> np.ndarray:
        """Seed ids of step ``step``'s global batch."""
        epoch, i = divmod(int(step), self.steps_per_epoch)
        if epoch != self._perm_epoch:
            self._perm = self.train_ids[derive_rng(self.seed, epoch).permutation(len(self.train_ids))]
            self._perm_epoch = epoch
        b = self.cfg.batch_size
        return self._perm[i * b:(i + 1) * b]

    def slice_vector(self, step: int, j: int) -> np.ndarray:
        """Slice ``j``'s scaled gradient with its scaled loss appended (float64), at the
        parameters currently loaded."""
        from graphplat.distributed.aggregator import gradient_vector

        epoch, i = divmod(int(step), self.steps_per_epoch)
        batch = self.global_batch(step)
        seeds = np.array_split(batch, self.n)[j]
        params = list(self.params.values())
        if len(seeds) == 0:
            return gradient_vector([torch.zeros_like(p) for p in params], 0.0)
        nt = self.task.target_ntype
        self.model.train()
        _, _, blocks = self.trainer.train_loader.collate({nt: seeds}, derive_seed(self.seed, epoch, i, j))
        torch.manual_seed(derive_seed(self.seed, epoch, i, j, DROPOUT_KEY))
        logits = pick(self.model(blocks, block_inputs(blocks, self.task.feature)), nt)
        y = pick(blocks[-1].dstdata[self.task.label], nt)
        loss = F.cross_entropy(logits, y) * (len(seeds) / len(batch))
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        return gradient_vector(list(grads), float(loss), params=params)


def reference_run(cfg: TrainConfig, task: Task, seed: int, n: int, steps: Optional[int] = None,
                  optimizer: Optional[dict] = None) -> "OrderedDict[str, np.ndarray]":
    """One process computing every slice of every step (what the coded run must equal).
    Returns the final parameters."""
    from graphplat.distributed.aggregator import build_optimizer

    comp = SliceComputer(cfg, task, seed, n)
    steps = comp.max_steps if steps is None else steps
    opt = build_optimizer(comp.params.values(), optimizer or optimizer_spec(cfg))
    for t in range(steps):
        total = sum(comp.slice_vector(t, j) for j in range(n))
        offset = 0
        for p in comp.params.values():
            k = p.numel()
            p.grad = torch.from_numpy(total[offset:offset + k].astype(np.float32)).view_as(p).clone()
            offset += k
        opt.step()
    return OrderedDict((k, p.detach().numpy().copy()) for k, p in comp.params.items())


def optimizer_spec(cfg: TrainConfig) -> dict:
    """The aggregator's optimizer for ``cfg`` (Adam, as the in-process trainer)."""
    return {"name": "adam", "lr": cfg.lr, "weight_decay": cfg.weight_decay}


# ----------------------------------------------------------------------------- worker

def run_worker(cfg: TrainConfig, address: str, worker_id: int, n: int, *, seed: Optional[int] = None,
               slow_prob: float = 0.0, slow_factor: float = 1.0, timeout: float = 600.0,
               die_at_step: Optional[int] = None) -> int:
    """The worker loop (see ``graphplat.distributed.aggregator``): pull, compute this worker's
    slices, encode, push, until the aggregator is done. ``slow_prob``/``slow_factor`` inject
    stragglers for benchmarks (sleep ``(factor - 1) x`` the compute time with probability
    ``slow_prob``, drawn from (seed, worker, step)); ``die_at_step`` makes the process
    SIGKILL itself when it reaches that step (fault injection at a deterministic point).
    Returns the number of steps pushed."""
    from graphplat.distributed.aggregator import AggregatorClient
    from graphplat.errors import StepAheadError

    seed = cfg.seeds[0] if seed is None else seed
    task = open_task(cfg)
    comp = SliceComputer(cfg, task, seed, n)
    client = AggregatorClient(address, timeout=timeout)
    info = client.join(worker_id)
    log.info("worker %d joined at step %d: slices %s", worker_id, info.step, list(info.slices))
    step, pushed = info.step, 0
    try:
        while True:
            got = client.pull(step, worker_id=worker_id, timeout=timeout)
            if got.done:
                break
            if die_at_step is not None and got.step >= die_at_step:
                log.warning("worker %d: fault injection, SIGKILL at step %d", worker_id, got.step)
                os.kill(os.getpid(), signal.SIGKILL)
            comp.load(got.params)
            t0 = time.perf_counter()
            vectors = {j: comp.slice_vector(got.step, j) for j in info.slices}
            spent = time.perf_counter() - t0
            if slow_prob > 0 and derive_rng(seed, worker_id, got.step, 0x5105).random() < slow_prob:
                time.sleep(spent * max(slow_factor - 1.0, 0.0))
            try:
                client.push(got.step, worker_id, info.encode(vectors))
                pushed += 1
            except StepAheadError:
                pass  # the aggregator restarted from an older checkpoint; the next pull says where
            step = got.step + 1
    finally:
        client.close()
        task.close()
    log.info("worker %d done after %d pushes", worker_id, pushed)
    return pushed


# ----------------------------------------------------------------------------- launcher

def worker_command(config_path: Path, address: str, worker_id: int, n: int, **extra) -> List[str]:
    """The command line of one worker process."""
    cmd = [sys.executable, "-m", "graphplat.cli.coded_worker", "--config", str(config_path),
           "--aggregator", address, "--worker", str(worker_id), "--workers", str(n)]
    for k, v in extra.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    return cmd


class WorkerWatch:
    """Logs when worker processes die: once per change of the set of dead workers, and
    again at most every ``repeat_s`` seconds while more than ``tolerate`` are gone."""

    def __init__(self, procs: Sequence[subprocess.Popen], tolerate: int, scheme: str,
                 repeat_s: float = 60.0):
        self.procs = list(procs)
        self.tolerate = tolerate
        self.scheme = scheme
        self.repeat_s = repeat_s
        self._dead: List[int] = []
        self._logged_at = 0.0

    def check(self) -> List[int]:
        """Poll the processes; returns the workers that exited with an error."""
        dead = [k for k, p in enumerate(self.procs) if p.poll() is not None and p.returncode != 0]
        now = time.monotonic()
        if dead != self._dead or (len(dead) > self.tolerate and now - self._logged_at >= self.repeat_s):
            if len(dead) > self.tolerate and self.scheme != "ignore_stragglers":
                log.warning("workers %s are gone: more than s=%d, training waits (up to the stall "
                            "deadline)", dead, self.tolerate)
            elif dead != self._dead:
                log.warning("workers %s are gone (s=%d tolerated)", dead, self.tolerate)
            self._dead, self._logged_at = dead, now
        return dead


#: longest wait for a worker chosen for fault injection to join before the others start
JOIN_TIMEOUT_S = 120.0


def wait_joined(core, procs: Dict[int, subprocess.Popen], timeout_s: float) -> None:
    """Wait until every worker of ``procs`` (worker id -> its process) has joined the
    aggregator ``core``; RuntimeError naming a worker that exited first or the ones still
    missing after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        with core.cond:
            missing = sorted(set(procs) - core.joined)
        if not missing:
            return
        for k in missing:
            if procs[k].poll() is not None:
                raise RuntimeError(f"worker {k} exited with {procs[k].returncode} before joining; see its log")
        if time.monotonic() > deadline:
            raise RuntimeError(f"workers {missing} did not join the aggregator within {timeout_s:.0f} s")
        time.sleep(0.05)


def run_coded(cfg: TrainConfig, *, workers: int, tolerate: int = 1, scheme: str = "coded", code: str = "frc",
              checkpoint_every: int = 20, worker_threads: int = 1, slow_prob: float = 0.0,
              slow_factor: float = 1.0, kill: Optional[Dict[int, int]] = None,
              stall_deadline_s: Optional[float] = 600.0) -> Dict[str, Any]:
    """Train with an in-process aggregator and ``workers`` worker processes on this machine.

    When more workers than tolerated are lost, the run stops after ``stall_deadline_s``
    with a RuntimeError naming the lost workers and the last checkpoint.

    ``kill``: worker -> step at which that worker SIGKILLs itself (fault injection). Returns the
    same JSON-safe result shape as :func:`graphplat.training.loop.train` plus timing and the
    aggregator's final status.
    """
    from graphplat.distributed.aggregator import AggregatorClient, serve_aggregator

    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if workers < 1 or not 0 <= tolerate < workers:
        raise ValueError(f"need workers >= 1 and 0 <= tolerate < workers, got {workers}, {tolerate}")
    seed = cfg.seeds[0]
    task = open_task(cfg)
    comp = SliceComputer(cfg, task, seed, workers)
    ckpt = Path(cfg.checkpoint_dir) / "aggregator" if cfg.checkpoint_dir else None
    server = serve_aggregator("127.0.0.1:0", comp.initial_params(), optimizer_spec(cfg), scheme=scheme,
                              code=code if scheme == "coded" else None, n=workers,
                              s=tolerate if scheme != "wait_all" else 0, checkpoint_dir=ckpt,
                              checkpoint_every=checkpoint_every if ckpt else 0, max_steps=comp.max_steps,
                              stall_deadline_s=stall_deadline_s)
    address = f"127.0.0.1:{server.port}"
    log.info("aggregator on %s: %s/%s, n=%d, s=%d, %d steps (%d per epoch)", address, scheme, code, workers,
             tolerate, comp.max_steps, comp.steps_per_epoch)
    procs: List[Optional[subprocess.Popen]] = []
    tmp = tempfile.TemporaryDirectory(prefix="graphplat-coded-")
    t0 = time.perf_counter()
    try:
        cfg_path = Path(tmp.name) / "config.json"
        cfg_path.write_text(json.dumps(cfg.to_dict()))
        env = dict(os.environ, OMP_NUM_THREADS=str(worker_threads))
        procs = [None] * workers

        def launch(k: int) -> None:
            extra = {"threads": worker_threads}
            if kill and k in kill:
                extra["die_at_step"] = kill[k]
            if slow_prob:
                extra.update(slow_prob=slow_prob, slow_factor=slow_factor)
            procs[k] = subprocess.Popen(worker_command(cfg_path, address, k, workers, **extra), env=env)

        # Fault injection at a deterministic point: the workers to kill start first and the
        # others only once those have joined. Otherwise, with s tolerated, the rest could
        # finish every step while a slow-starting victim still imports torch, and nothing
        # would be killed (seen on a loaded 2-core machine).
        victims = sorted(kill or {})
        for k in victims:
            launch(k)
        wait_joined(server.core, {k: procs[k] for k in victims}, JOIN_TIMEOUT_S)
        for k in range(workers):
            if procs[k] is None:
                launch(k)
        client = AggregatorClient(address)
        watch = WorkerWatch(procs, tolerate, scheme)
        while not server.wait_done(timeout=0.2):
            if server.failure is not None:
                raise RuntimeError(server.failure)
            watch.check()
            if all(p.poll() is not None for p in procs) and not server.wait_done(timeout=2.0):
                raise RuntimeError("every worker exited before training finished; see their logs")
        for k in kill or {}:
            try:
                procs[k].wait(30)
            except subprocess.TimeoutExpired:
                pass
            if procs[k].returncode == -signal.SIGKILL:
                log.warning("worker %d (pid %d) was SIGKILLed (fault injection from step %d) and training "
                            "finished without it", k, procs[k].pid, kill[k])
            else:
                log.warning("worker %d was to be killed from step %d but exited with %s (it joined after that "
                            "step's training was over)", k, kill[k], procs[k].returncode)
        seconds = time.perf_counter() - t0
        status = client.status()
        client.close()
        final = server.params()
    finally:
        procs = [p for p in procs if p is not None]  # all started, unless launching failed
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        server.stop()
        tmp.cleanup()
    comp.load(np.concatenate([np.asarray(v, np.float32).reshape(-1) for v in final.values()]))
    val, test = comp.trainer.evaluate("val"), comp.trainer.evaluate("test")
    task.close()
    return {"task": task.task, "dataset": task.name, "scheme": scheme, "code": code, "workers": workers,
            "tolerate": tolerate, "steps": comp.max_steps, "seconds": round(seconds, 3),
            "seconds_per_step": round(seconds / max(comp.max_steps, 1), 4), "last_loss": status.last_loss,
            "dropped_late": status.dropped_late, "val": val, "test": test,
            "summary": {"val": {k: {"mean": v, "std": 0.0} for k, v in val.items()},
                        "test": {k: {"mean": v, "std": 0.0} for k, v in test.items()}},
            "reference": task.reference, "params": final}
