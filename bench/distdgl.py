#!/usr/bin/env python
"""DistDGL 2.1 on one host for the benchmarks: the graph split into 2 partitions
(``dgl.distributed.partition_graph``, random), one server per partition, each in its own
mount namespace with a private /dev/shm (DistDGL's shared-memory names are fixed per graph
name, so two servers, or two runs, on one host would clash), and a trainer process that
joins partition 0's namespace (``nsenter``): both servers listen on 127.0.0.1, so the
trainer is machine 0 and reads partition 0 from shared memory, as DistDGL's launcher places
it, while partition 1 is only reachable over loopback.

``python bench/distdgl.py --trainer ...`` is the trainer (run by :func:`run` with the DGL_*
environment): ``DistNodeDataLoader`` + ``NeighborSampler`` over the given seed batches,
features pulled with ``g.ndata["feat"][input_nodes]``, and with ``--train`` a GraphSAGE step
per batch as in ``bench/train_e2e.py``; it prints one JSON line.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from _common import host_cpu_seconds, loopback_bytes, on_cores, servers_cpu  # noqa: E402

GRAPH_NAME = "g"
ORIG_NIDS = "orig_nids.npy"  # in the partition directory: DistDGL node id -> original node id
# Runs the rest of the command line with a fresh tmpfs on /dev/shm (inside `unshare -m`).
PRIVATE_SHM = ["sh", "-c", 'mount -t tmpfs tmpfs /dev/shm && exec "$@"', "sh"]


def cache_dir(root: Path, nodes: int, edges: int, feat_dim: int) -> Path:
    """Where the 2 partitions of the generated benchmark graph are cached under ``root``."""
    return Path(root) / f"distdgl_{nodes}_{edges}_f{feat_dim}"


def unavailable() -> Optional[str]:
    """Why this host cannot run the 2-server layout (``unshare -m`` with a private /dev/shm,
    ``nsenter`` into it), or None when it can."""
    for tool in ("unshare", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed: each DistDGL server needs its own /dev/shm"
    try:
        r = subprocess.run(["unshare", "-m", *PRIVATE_SHM, "true"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unshare -m failed: {e}"
    if r.returncode != 0:
        return f"unshare -m with a private /dev/shm failed: {(r.stderr or r.stdout).strip()[-300:]}"
    return None


def partition(g, out: Path) -> Path:
    """Partition DGLGraph ``g`` (with ndata ``feat``) into 2 under ``out`` (cached), with the
    node id mapping in ``out/orig_nids.npy``; returns the partition config path."""
    import dgl

    config = Path(out) / f"{GRAPH_NAME}.json"
    if not (config.exists() and (config.parent / ORIG_NIDS).exists()):
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        with contextlib.redirect_stdout(sys.stderr):  # DGL prints progress; stdout is the JSON
            orig_nids, _ = dgl.distributed.partition_graph(
                g, GRAPH_NAME, 2, str(tmp), part_method="random", balance_edges=False, return_mapping=True)
        np.save(tmp / ORIG_NIDS, orig_nids.numpy())
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    return config


def prepare(g, out: Path, skip: bool) -> Tuple[Optional[Path], Optional[str]]:
    """For a benchmark run: (partition config of ``g`` cached in ``out``, None), or (None, why
    DistDGL is skipped) when ``skip`` (``--no-distdgl``), this host cannot run it, or
    partitioning fails."""
    if skip:
        return None, "--no-distdgl"
    reason = unavailable()
    if reason is not None:
        return None, reason
    try:
        return partition(g, out), None
    except Exception as e:  # noqa: BLE001 - the benchmark reports it and goes on without DistDGL
        return None, f"partitioning failed: {e}"


def omp_wait_policy() -> str:
    """The OpenMP wait policy the DistDGL processes run with: ``OMP_WAIT_POLICY`` when set,
    else ``passive``. DGL's OpenMP threads otherwise spin after every parallel region; with 2
    servers and a trainer (2 threads each) on few cores, the spinning starves whichever process
    has work, and on a loaded 2-core machine a 64-seed ``sample_neighbors`` call took 20-90 ms
    instead of 1 ms. Passive is the policy in DistDGL's favour."""
    return os.environ.get("OMP_WAIT_POLICY", "passive")


def _env(config: Path, ip_config: Path, role: str) -> dict:
    return dict(os.environ, DGL_IP_CONFIG=str(ip_config), DGL_CONF_PATH=str(config), DGL_NUM_SERVER="1",
                DGL_NUM_CLIENT="1", DGL_DIST_MODE="distributed", DGL_ROLE=role, DGL_GRAPH_FORMAT="csc",
                OMP_WAIT_POLICY=omp_wait_policy())


def start_servers(config: Path, workdir: Path, ports: Sequence[int],
                  cores: Optional[Sequence[Optional[frozenset]]] = None) -> List[subprocess.Popen]:
    """One DistDGL server per partition, each under ``unshare -m`` with a fresh tmpfs on
    /dev/shm; server ``k`` on the cores ``cores[k]`` (None: this process's). Returns the
    processes (raises RuntimeError when they do not start)."""
    ip_config = workdir / "ip_config.txt"
    ip_config.write_text("".join(f"127.0.0.1 {p}\n" for p in ports))
    serve = "import dgl, os; dgl.distributed.initialize(os.environ['DGL_IP_CONFIG'])"
    procs = []
    for k in range(2):
        env = _env(config, ip_config, "server")
        env["DGL_SERVER_ID"] = str(k)
        log = open(workdir / f"distdgl-server-{k}.log", "w")
        procs.append(subprocess.Popen(on_cores(["unshare", "-m", *PRIVATE_SHM, sys.executable, "-c", serve],
                                               cores[k] if cores else None),
                                      env=env, stdout=log, stderr=subprocess.STDOUT))
    deadline = time.time() + 300
    while not all("waiting for connections" in (workdir / f"distdgl-server-{k}.log").read_text()
                  for k in range(2)):
        if time.time() > deadline or any(p.poll() is not None for p in procs):
            for p in procs:
                p.kill()
            logs = " | ".join((workdir / f"distdgl-server-{k}.log").read_text()[-300:] for k in range(2))
            raise RuntimeError(f"DistDGL servers did not start: {logs}")
        time.sleep(0.2)
    return procs


def run(config: Path, workdir: Path, seeds: np.ndarray, *, warmup: int, batch_size: int, threads: int,
        seed: int = 0, hidden: Optional[int] = None, timeout: float = 600,
        server_cores: Optional[Sequence[Optional[frozenset]]] = None) -> dict:
    """Fresh servers (they exit with their last client; server ``k`` on ``server_cores[k]``,
    the trainer on this process's cores) and one trainer over ``seeds`` (original node ids,
    ``warmup`` untimed batches first); with ``hidden`` it trains GraphSAGE of that width.
    Returns the trainer's JSON (see :func:`trainer_main`) plus ``servers_cpu``."""
    from graphplat.testing.servers import free_port

    np.save(workdir / "seeds.npy", np.asarray(seeds, dtype=np.int64))
    procs = start_servers(config, workdir, [free_port(), free_port()], server_cores)
    done = False
    try:
        s0 = servers_cpu(procs)
        env = _env(config, workdir / "ip_config.txt", "client")
        env["DGL_GROUP_ID"] = "0"
        cmd = ["nsenter", "-t", str(procs[0].pid), "-m", sys.executable, str(Path(__file__).resolve()),
               "--trainer", "--seeds", str(workdir / "seeds.npy"), "--warmup", str(warmup),
               "--batch-size", str(batch_size), "--seed", str(seed), "--threads", str(threads)]
        if hidden is not None:
            cmd += ["--train", "--hidden", str(hidden)]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=str(BENCH_DIR.parent))
        lines = [x for x in r.stdout.splitlines() if x.startswith("{")]
        if r.returncode != 0 or not lines:
            raise RuntimeError(f"DistDGL trainer failed ({r.returncode}): {r.stderr[-1500:]}")
        out = json.loads(lines[-1])
        out["servers_cpu"] = servers_cpu(procs) - s0
        done = True
    finally:
        for p in procs:
            if done:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(30)
            if p.poll() is None:
                p.kill()
                p.wait(10)
    return out


def trainer_main(args) -> int:
    """The trainer process: iterate the seed batches, pull features, optionally train; prints
    one JSON object: ``wall`` (seconds after the warm-up batches), ``steps`` (timed batches),
    ``batch_times`` (each batch, end to end), ``edges`` (sampled, timed batches), ``net_bytes``
    (loopback), ``cpu`` (this process), ``host_cpu`` (the whole machine, servers included,
    over the timed batches), ``first_batch`` (the first timed batch's first seeds and
    input nodes as original ids, and those input nodes' feature row sums: checks the seeds, the
    id mapping and the features), and with ``--train`` ``step_seconds`` (median model step)
    and ``loss``."""
    import dgl
    import torch
    from loader import FANOUTS
    from sampler import set_threads

    set_threads(args.threads, None)
    dgl.distributed.initialize(os.environ["DGL_IP_CONFIG"])
    config = Path(os.environ["DGL_CONF_PATH"])
    g = dgl.distributed.DistGraph(GRAPH_NAME, part_config=str(config))
    orig = np.load(config.parent / ORIG_NIDS)
    new_of = np.empty_like(orig)
    new_of[orig] = np.arange(len(orig))
    seeds = torch.from_numpy(new_of[np.load(args.seeds)])
    sampler = dgl.dataloading.NeighborSampler(FANOUTS)
    loader = dgl.dataloading.DistNodeDataLoader(g, seeds, sampler, batch_size=args.batch_size, shuffle=False)
    feat = g.ndata["feat"]
    if args.train:
        from train_e2e import NUM_CLASSES, label_table, make_model

        labels = torch.from_numpy(label_table(len(orig), args.seed)[orig])  # by DistDGL node id
        model = make_model(feat.shape[1], args.hidden, NUM_CLASSES, args.seed)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch_times, step_times, edges, first, loss = [], [], 0, None, None
    t = t0 = time.perf_counter()
    c0, net0, h0 = time.process_time(), loopback_bytes(), host_cpu_seconds()
    for i, (inp, out, blocks) in enumerate(loader):
        x = feat[inp]
        if args.train:
            ts = time.perf_counter()
            loss = torch.nn.functional.cross_entropy(model(blocks, x), labels[out])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step_times.append(time.perf_counter() - ts)
        now = time.perf_counter()
        if i < args.warmup:  # the clock starts after the last warm-up batch
            t = t0 = now
            c0, net0, h0, step_times = time.process_time(), loopback_bytes(), host_cpu_seconds(), []
            continue
        batch_times.append(now - t)
        t = now
        edges += sum(b.num_edges() for b in blocks)
        if first is None:
            first = {"seeds": orig[out[:4].numpy()].tolist(), "input_nodes": orig[inp[:4].numpy()].tolist(),
                     "input_feat_row_sums": x[:4].sum(1).tolist()}
    result = {"wall": time.perf_counter() - t0, "steps": len(batch_times), "batch_times": batch_times,
              "edges": edges, "net_bytes": loopback_bytes() - net0, "cpu": time.process_time() - c0,
              "host_cpu": host_cpu_seconds() - h0, "first_batch": first}
    if args.train:
        result.update(step_seconds=float(np.median(step_times)), loss=float(loss))
    print(json.dumps(result), flush=True)
    dgl.distributed.exit_client()
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trainer", action="store_true", required=True)
    p.add_argument("--seeds", required=True, help=".npy of seed node ids (original ids), batch after batch")
    p.add_argument("--warmup", type=int, default=2, help="untimed batches first")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--train", action="store_true", help="a GraphSAGE training step per batch")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--seed", type=int, default=0, help="model initialisation and labels")
    p.add_argument("--threads", type=int, default=2)
    return trainer_main(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
