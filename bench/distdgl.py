#!/usr/bin/env python
"""DistDGL 2.1 on one host for the benchmarks: the graph split into 2 partitions
(``dgl.distributed.partition_graph``, random), one server per partition (the second in its
own mount namespace with a private /dev/shm, since DistDGL's shared-memory names are fixed
and would clash), and a trainer process co-located with partition 0 (both servers listen on
127.0.0.1, so the trainer is machine 0 and reads partition 0 from shared memory, as DistDGL's
launcher places it).

``python bench/distdgl.py --trainer ...`` is the trainer (run by :func:`run_trainer` with
the DGL_* environment): GraphSAGE as in ``bench/train_e2e.py`` over ``DistNodeDataLoader``,
features pulled with ``g.ndata["feat"][input_nodes]``; it prints one JSON line.
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
from typing import List, Optional, Sequence

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
GRAPH_NAME = "g"


def partition(g, out: Path) -> Path:
    """Partition DGLGraph ``g`` (with ndata feat and label) into 2 under ``out`` (cached);
    returns the partition config path."""
    import dgl

    config = out / f"{GRAPH_NAME}.json"
    if not config.exists():
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        with contextlib.redirect_stdout(sys.stderr):  # DGL prints progress; stdout is the JSON
            dgl.distributed.partition_graph(g, GRAPH_NAME, 2, str(tmp), part_method="random",
                                            balance_edges=False)
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    return config


def _env(config: Path, ip_config: Path, role: str) -> dict:
    return dict(os.environ, DGL_IP_CONFIG=str(ip_config), DGL_CONF_PATH=str(config), DGL_NUM_SERVER="1",
                DGL_NUM_CLIENT="1", DGL_DIST_MODE="distributed", DGL_ROLE=role, DGL_GRAPH_FORMAT="csc")


def start_servers(config: Path, workdir: Path, ports: Sequence[int]) -> List[subprocess.Popen]:
    """One DistDGL server per partition; the second under ``unshare -m`` with a fresh tmpfs
    on /dev/shm. Returns the processes (raises RuntimeError when unshare is unavailable)."""
    if shutil.which("unshare") is None:
        raise RuntimeError("unshare is not installed: the second DistDGL server needs its own /dev/shm")
    ip_config = workdir / "ip_config.txt"
    ip_config.write_text("".join(f"127.0.0.1 {p}\n" for p in ports))
    serve = "import dgl, os; dgl.distributed.initialize(os.environ['DGL_IP_CONFIG'])"
    procs = []
    for k in range(2):
        env = _env(config, ip_config, "server")
        env["DGL_SERVER_ID"] = str(k)
        cmd = [sys.executable, "-c", serve]
        if k:
            cmd = ["unshare", "-m", "sh", "-c", 'mount -t tmpfs tmpfs /dev/shm && exec "$@"', "sh", *cmd]
        log = open(workdir / f"distdgl-server-{k}.log", "w")
        procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))
    deadline = time.time() + 300
    while not all("waiting for connections" in (workdir / f"distdgl-server-{k}.log").read_text()
                  for k in range(2)):
        if time.time() > deadline or any(p.poll() is not None for p in procs):
            for p in procs:
                p.kill()
            raise RuntimeError(f"DistDGL servers did not start: {(workdir / 'distdgl-server-1.log').read_text()[-500:]}")
        time.sleep(0.2)
    return procs


def run_trainer(config: Path, workdir: Path, batches: int, batch_size: int, hidden: int, seed: int,
                threads: int, timeout: float = 300) -> dict:
    """One trainer process for ``batches`` steps (after 2 warm-up steps); its JSON result."""
    env = _env(config, workdir / "ip_config.txt", "client")
    env["DGL_GROUP_ID"] = "0"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--trainer", "--batches", str(batches),
           "--batch-size", str(batch_size), "--hidden", str(hidden), "--seed", str(seed),
           "--threads", str(threads)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=str(BENCH_DIR.parent))
    lines = [x for x in r.stdout.splitlines() if x.startswith("{")]
    if r.returncode != 0 or not lines:
        raise RuntimeError(f"DistDGL trainer failed ({r.returncode}): {r.stderr[-1500:]}")
    return json.loads(lines[-1])


def trainer_main(args) -> int:
    import dgl
    import torch

    sys.path.insert(0, str(BENCH_DIR))
    from train_e2e import NUM_CLASSES, loopback_bytes, make_model

    torch.set_num_threads(args.threads)
    dgl.distributed.initialize(os.environ["DGL_IP_CONFIG"])
    g = dgl.distributed.DistGraph(GRAPH_NAME, part_config=os.environ["DGL_CONF_PATH"])
    n = g.num_nodes()
    rng = np.random.default_rng(args.seed)
    seeds = torch.from_numpy(rng.choice(n, (args.batches + 2) * args.batch_size, replace=False))
    sampler = dgl.dataloading.NeighborSampler([15, 10, 5])
    loader = dgl.dataloading.DistNodeDataLoader(g, seeds, sampler, batch_size=args.batch_size, shuffle=False)
    feat, label = g.ndata["feat"], g.ndata["label"]
    model = make_model(feat.shape[1], args.hidden, NUM_CLASSES, args.seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    steps, step_times = 0, []
    for i, (inp, out, blocks) in enumerate(loader):
        if i == 2:  # after warm-up
            t0, c0, net0 = time.perf_counter(), time.process_time(), loopback_bytes()
        x, y = feat[inp], label[out]
        ts = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(blocks, x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= 2:
            step_times.append(time.perf_counter() - ts)
            steps += 1
    wall = time.perf_counter() - t0
    print(json.dumps({"wall": wall, "steps": steps, "step_seconds": float(np.median(step_times)),
                      "net_bytes": loopback_bytes() - net0, "cpu": time.process_time() - c0}), flush=True)
    dgl.distributed.exit_client()
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trainer", action="store_true", required=True)
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    return trainer_main(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
