#!/usr/bin/env python
"""End to end: GraphSAGE (3 layers, hidden 256) trained for a fixed number of batches,
with DGL's DataLoader and with graphplat's NodeLoader over a LocalGraph and over graph servers.

On the power-law graph of ``bench/sampler.py`` (``--quick``: 200 k nodes / 4 M edges, else
2.5 M / 60 M) with a 100-dim float32 feature, random labels (10 classes, looked up by the
batch's output nodes, the same for every method), batches of 1024 random seeds, fanouts
[15, 10, 5], Adam. Methods (interleaved, order rotated per repetition, same seeds):

* ``dgl``: ``dgl.dataloading.DataLoader`` + ``NeighborSampler`` (features in ``g.ndata``);
* ``local`` / ``local-prefetch``: ``NodeLoader`` on a one-partition LocalGraph;
* ``colocated`` / ``colocated-prefetch``: ``NodeLoader`` over 2 ``graphplat serve``
  processes on loopback, the trainer co-located with partition 0 (read from its shared
  memory), partition 1 over gRPC (``--no-shared-memory``, as if on another host), with
  ``connect``'s defaults: partition 1 is sampled from the automatic topology replica (its
  ids and adjacency, copied once the client samples multi-hop, before timing); its
  feature rows still come from its server;
* ``colocated-perhop-prefetch``: ``colocated-prefetch`` without topology replica
  (``connect(..., topology_replica=False)``): partition 1's server samples every hop;
* ``remote-prefetch``: the same servers, every partition over gRPC;
* ``distdgl``: DistDGL 2.1 on the same graph in 2 partitions (cached under bench/.cache),
  trainer co-located with partition 0, each server in its own /dev/shm (see
  ``bench/distdgl.py``); one trainer process per repetition on the same seeds (start-up and
  2 warm-up steps not timed), labels looked up locally like the other methods'. When it
  cannot be launched, ``distdgl_skipped`` says why.

Reported per method (medians over repetitions): batches/s, seconds per training step,
bytes per batch that crossed loopback (``/proc/net/dev``), CPU seconds per batch of this
process and of the servers (DistDGL: its servers from its trainer's start to its exit, so
start-up and warm-up count), of the whole machine over the timed steps
(``host_cpu_s_per_batch``, ``/proc/stat``: comparable across every row, DistDGL's
included), and the ratios to ``local`` and ``dgl``. Logs go to stderr;
stdout gets one JSON object.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
import distdgl  # noqa: E402
from _common import (  # noqa: E402
    add_two_hosts_flag,
    apply_two_hosts,
    host_cpu_seconds,
    layout_of,
    loopback_bytes,
    servers_cpu,
)
from loader import FANOUTS, features, graph_arrays, remote_graph, store_path  # noqa: E402
from sampler import get_graph, machine_info, set_threads  # noqa: E402

LOG = logging.getLogger("bench.train_e2e")
NUM_CLASSES = 10


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] + " Prints JSON on stdout.")
    p.add_argument("--quick", action="store_true", help="200k nodes / 4M edges, fewer batches")
    p.add_argument("--nodes", type=int, default=None)
    p.add_argument("--edges", type=int, default=None)
    p.add_argument("--feat-dim", type=int, default=100)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--batches", type=int, default=None, help="training steps per repetition (default 20; quick 8)")
    p.add_argument("--reps", type=int, default=None, help="repetitions (default 3)")
    p.add_argument("--threads", type=int, default=2, help="threads of torch, DGL and graphplat")
    p.add_argument("--methods", default=None, help="comma-separated subset of the methods")
    p.add_argument("--no-distdgl", action="store_true", help="skip DistDGL")
    add_two_hosts_flag(p)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.nodes = args.nodes or (200_000 if args.quick else 2_500_000)
    args.edges = args.edges or (4_000_000 if args.quick else 60_000_000)
    args.batches = args.batches or (8 if args.quick else 20)
    args.reps = args.reps or 3
    args.graph, args.alpha, args.max_degree, args.cache_dir = None, 2.2, None, None
    args.cache = BENCH_DIR / ".cache"
    return args


def label_table(n: int, seed: int) -> np.ndarray:
    """The random labels (int64 in [0, NUM_CLASSES)) of nodes 0..n-1, the same for every method."""
    return np.random.default_rng(seed + 7).integers(0, NUM_CLASSES, n)


def make_model(in_dim: int, hidden: int, classes: int, seed: int):
    """GraphSAGE over DGL blocks: 3 SAGEConv('mean') layers, ReLU between."""
    import dgl.nn as dglnn
    import torch
    from torch import nn

    class SAGE(nn.Module):
        def __init__(self):
            super().__init__()
            dims = [in_dim, hidden, hidden, classes]
            self.layers = nn.ModuleList(dglnn.SAGEConv(a, b, "mean") for a, b in zip(dims, dims[1:]))

        def forward(self, blocks, x):
            for i, (layer, block) in enumerate(zip(self.layers, blocks)):
                x = layer(block, x)
                if i < len(self.layers) - 1:
                    x = torch.relu(x)
            return x

    torch.manual_seed(seed)
    return SAGE()


def train(make_loader: Callable, labels_of: Callable, batches: int, hidden: int, in_dim: int,
          seed: int, servers) -> dict:
    """``batches`` steps of a fresh model on ``make_loader()``'s batches; times and counters."""
    import torch

    model = make_model(in_dim, hidden, NUM_CLASSES, seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = make_loader()
    steps, step_times = 0, []
    net0, s0, c0, h0 = loopback_bytes(), servers_cpu(servers), time.process_time(), host_cpu_seconds()
    t0 = time.perf_counter()
    for _inp, out, blocks in loader:
        ts = time.perf_counter()
        x = blocks[0].srcdata["feat"]
        y = labels_of(out)
        loss = torch.nn.functional.cross_entropy(model(blocks, x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step_times.append(time.perf_counter() - ts)
        steps += 1
        if steps == batches:
            break
    wall = time.perf_counter() - t0
    stats = getattr(loader, "stats", None)  # graphplat loaders: where batches were produced
    return {"wall": wall, "steps": steps, "step_seconds": statistics.median(step_times),
            "net_bytes": loopback_bytes() - net0, "cpu": time.process_time() - c0,
            "servers_cpu": servers_cpu(servers) - s0, "host_cpu": host_cpu_seconds() - h0,
            "loss": float(loss),
            "inline_batches": stats.inline_batches if stats is not None else None}


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    args.server_cores = apply_two_hosts(args, LOG)
    import dgl
    import torch

    from graphplat import _core
    from graphplat.sampling import NodeLoader

    indptr, indices, meta = get_graph(args)
    n = len(indptr) - 1
    feat = features(n, args.feat_dim, args.seed)
    y_table = torch.from_numpy(label_table(n, args.seed))
    set_threads(args.threads, _core)
    g = dgl.graph(("csc", (torch.from_numpy(indptr), torch.from_numpy(indices),
                           torch.empty(0, dtype=torch.int64))), num_nodes=n)
    g.ndata["feat"] = torch.from_numpy(feat)
    distdgl_config, distdgl_skipped = distdgl.prepare(
        g, distdgl.cache_dir(args.cache, args.nodes, args.edges, args.feat_dim), args.no_distdgl)
    arrays = graph_arrays(indptr, indices, feat)
    local = arrays.to_local(partitions=1)
    store = store_path(args, arrays)
    del arrays
    rng = np.random.default_rng(args.seed)
    seed_sets = [rng.choice(n, args.batches * args.batch_size, replace=False).astype(np.int64)
                 for _ in range(args.reps)]

    def dgl_loader(seeds):
        sampler = dgl.dataloading.NeighborSampler(FANOUTS, prefetch_node_feats=["feat"])
        return dgl.dataloading.DataLoader(g, torch.from_numpy(seeds), sampler, batch_size=args.batch_size,
                                          shuffle=False, drop_last=False, num_workers=0)

    def gp_loader(graph, seeds, prefetch):
        return NodeLoader(graph, seeds, FANOUTS, batch_size=args.batch_size, prefetch=prefetch,
                          labels=None, seed=args.seed)

    tmp = tempfile.TemporaryDirectory(prefix="bench-e2e-")
    colocated, remote, _remote_grpc, colocated_perhop, _remote_perhop, servers = remote_graph(
        args, store, Path(tmp.name))
    shm = [type(b).__name__ == "SharedPartition" for b in colocated.backends]
    layout = layout_of(args, servers)
    methods: Dict[str, Callable] = {
        "dgl": dgl_loader,
        "local": lambda s: gp_loader(local, s, 0),
        "local-prefetch": lambda s: gp_loader(local, s, 2),
        "colocated": lambda s: gp_loader(colocated, s, 0),
        "colocated-prefetch": lambda s: gp_loader(colocated, s, 2),
        "colocated-perhop-prefetch": lambda s: gp_loader(colocated_perhop, s, 2),
        "remote-prefetch": lambda s: gp_loader(remote, s, 2),
    }
    if args.methods:
        keep = [m.strip() for m in args.methods.split(",")]
        methods = {m: f for m, f in methods.items() if m in keep or m in ("local", "dgl")}
    if distdgl_config is not None:
        def run_distdgl(rep: int) -> dict:
            # 2 warm-up batches (the other methods' warm-up seeds), then this repetition's seeds
            seeds = np.concatenate([seed_sets[0][:2 * args.batch_size], seed_sets[rep]])
            return distdgl.run(distdgl_config, Path(tmp.name), seeds, warmup=2, batch_size=args.batch_size,
                               threads=args.threads, seed=args.seed, hidden=args.hidden,
                               server_cores=args.server_cores)
        methods["distdgl"] = run_distdgl
    runs: Dict[str, List[dict]] = {m: [] for m in methods}
    try:
        for m, make in methods.items():  # warm-up
            if m == "distdgl":
                continue
            train(lambda: make(seed_sets[0][:2 * args.batch_size]), lambda o: y_table[o], 2,
                  args.hidden, args.feat_dim, args.seed, servers)
        names = list(methods)
        for rep in range(args.reps):
            for m in names[rep % len(names):] + names[:rep % len(names)]:
                if m == "distdgl":
                    try:
                        r = methods[m](rep)
                    except Exception as e:  # noqa: BLE001 - reported in the JSON
                        distdgl_skipped = f"trainer failed: {e}"
                        LOG.warning("%s", distdgl_skipped)
                        continue
                else:
                    r = train(lambda: methods[m](seed_sets[rep]), lambda o: y_table[o], args.batches,
                              args.hidden, args.feat_dim, args.seed, servers)
                runs[m].append(r)
                LOG.info("rep %d %-20s %.2f batches/s, step %.1f ms, %.1f MB/batch on loopback",
                         rep, m, r["steps"] / r["wall"], 1e3 * r["step_seconds"],
                         r["net_bytes"] / r["steps"] / 1e6)
    finally:
        colocated.close()
        remote.close()
        _remote_grpc.close()
        colocated_perhop.close()
        _remote_perhop.close()
        for s in servers:
            if s.poll() is None:
                s.terminate()
        for s in servers:
            s.wait(30)
    med = statistics.median
    results = {m: {"batches_per_s": med(r["steps"] / r["wall"] for r in rs),
                   "seconds_per_step": med(r["step_seconds"] for r in rs),
                   "loopback_mb_per_batch": med(r["net_bytes"] / r["steps"] / 1e6 for r in rs),
                   "client_cpu_s_per_batch": med(r["cpu"] / r["steps"] for r in rs),
                   "servers_cpu_s_per_batch": med(r["servers_cpu"] / r["steps"] for r in rs),
                   # the whole machine over the timed steps (DistDGL: its trainer's timed window)
                   "host_cpu_s_per_batch": med(r["host_cpu"] / r["steps"] for r in rs),
                   "batches_per_s_reps": [round(r["steps"] / r["wall"], 3) for r in rs],
                   # batches a graphplat loader produced in the training thread, per repetition
                   "inline_batches_reps": [r.get("inline_batches") for r in rs]}
               for m, rs in runs.items() if rs}
    ratio = {base: {m: round(v["batches_per_s"] / results[base]["batches_per_s"], 3)
                    for m, v in results.items() if m != base} for base in ("local", "dgl")}
    out = {"benchmark": "train_e2e", "graph": {"nodes": n, "edges": int(len(indices)), **meta},
           "model": {"arch": "GraphSAGE mean", "layers": 3, "hidden": args.hidden, "classes": NUM_CLASSES},
           "batch_size": args.batch_size, "fanouts": FANOUTS, "batches_per_rep": args.batches,
           "reps": args.reps, "threads": args.threads, "machine": machine_info(), "layout": layout,
           "partition0_in_shared_memory": shm[0], "partition1_in_shared_memory": shm[1],
           "results": {m: {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}
                       for m, r in results.items()},
           "ratio_batches_per_s": ratio, "distdgl_skipped": distdgl_skipped,
           "distdgl_omp_wait_policy": distdgl.omp_wait_policy(),
           "targets": {"colocated": ">= 0.5x local", "remote-prefetch": ">= 0.25x local",
                       "*-prefetch": ">= the same loader without prefetch"}}
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
