#!/usr/bin/env python
"""Benchmark graphplat's layer-wise embedding export against DGL's layer-wise inference.

On a Chung-Lu power-law graph (``graphplat.datasets.synthetic.generate_powerlaw_csc``; default 200 k
nodes / 4 M edges, ``--quick`` 20 k / 200 k, cached under bench/.cache) with a 100-dim float32
feature per node, one 2-layer GraphSAGE (mean aggregator, hidden 128, output 64, eval mode,
random weights) computes the final-layer output of every node, twice per repetition,
interleaved:

* ``dgl``: DGL's GraphSAGE example ``inference``: for each layer, a
  ``dgl.dataloading.DataLoader`` over all nodes with ``MultiLayerFullNeighborSampler(1)``
  (batch ``--chunk-size``, num_workers=0), ``x = feat[input_nodes]``, the layer on
  ``blocks[0]``, the result stored in a ``torch.empty`` buffer that feeds the next layer; the
  output stays in memory.
* ``graphplat-npy`` (and ``graphplat-parquet`` with ``--formats npy,parquet``):
  ``export_embeddings`` over a LocalGraph of the same edges (one partition) with the same
  chunk size: chunks of full in-neighborhoods sampled by the C++ core, layers kept in
  memory-mapped files, the last one written to disk (ids included) and atomically renamed,
  progress committed for resume.

Both call the same module's ``layer_forward`` on blocks of the same edges, so the outputs are
compared (max abs difference). Reported per method: nodes/s and seconds (medians over
repetitions), and graphplat/DGL ratios. Logs go to stderr; stdout gets one JSON object.
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
from typing import Dict, List, Optional, Sequence

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from loader import features, graph_arrays  # noqa: E402
from sampler import OtherCpuMonitor, get_graph, machine_info, set_threads  # noqa: E402

LOG = logging.getLogger("bench.export")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Command line; --quick shrinks the graph and the repetitions."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] + " Prints JSON on stdout.")
    p.add_argument("--quick", action="store_true", help="20k nodes / 200k edges, 3 repetitions")
    p.add_argument("--nodes", type=int, default=None, help="nodes (default 200,000; quick 20,000)")
    p.add_argument("--edges", type=int, default=None, help="edges (default 4,000,000; quick 200,000)")
    p.add_argument("--feat-dim", type=int, default=100, help="float32 feature width (default 100)")
    p.add_argument("--hidden", type=int, default=128, help="GraphSAGE hidden width (default 128)")
    p.add_argument("--out-dim", type=int, default=64, help="GraphSAGE output width (default 64)")
    p.add_argument("--layers", type=int, default=2, help="GraphSAGE layers (default 2)")
    p.add_argument("--chunk-size", type=int, default=4096,
                   help="destination nodes per chunk / DGL batch (default 4096)")
    p.add_argument("--formats", default="npy", help="graphplat output formats, comma-separated: "
                                                    "npy, parquet (default npy)")
    p.add_argument("--prefetch", type=int, default=1, help="graphplat chunks sampled ahead (default 1)")
    p.add_argument("--reps", type=int, default=None, help="repetitions (default 5; quick 3)")
    p.add_argument("--threads", type=int, default=2, help="threads for torch, DGL and graphplat (default 2)")
    p.add_argument("--alpha", type=float, default=2.2, help="power-law exponent (default 2.2)")
    p.add_argument("--max-degree", type=int, default=None,
                   help="expected in-degree of the heaviest node (default min(20000, nodes // 20))")
    p.add_argument("--workdir", type=Path, default=None,
                   help="where graphplat writes its exports (default: a temporary directory)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    args.nodes = args.nodes or (20_000 if args.quick else 200_000)
    args.edges = args.edges or (200_000 if args.quick else 4_000_000)
    args.reps = args.reps or (3 if args.quick else 5)
    args.formats = [f.strip().lstrip(".") for f in args.formats.split(",") if f.strip()]
    bad = [f for f in args.formats if f not in ("npy", "parquet")]
    if bad:
        p.error(f"--formats: unknown {bad}; use npy and/or parquet")
    for key in ("nodes", "edges", "reps", "chunk_size", "feat_dim", "hidden", "out_dim", "layers", "threads"):
        if getattr(args, key) < 1:
            p.error(f"--{key.replace('_', '-')} must be >= 1")
    # what sampler.get_graph expects
    args.graph, args.cache_dir = None, None
    return args


def dgl_inference(model, g, feat, chunk_size: int):
    """DGL's GraphSAGE example ``inference`` (layer by layer, full neighbors, one block per
    batch) with graphplat's ``layer_forward`` as the layer (conv + activation for hidden
    layers, as the example's ``layer`` + ``relu``)."""
    import dgl
    import torch

    sampler = dgl.dataloading.MultiLayerFullNeighborSampler(1)
    loader = dgl.dataloading.DataLoader(g, torch.arange(g.num_nodes()), sampler, batch_size=chunk_size,
                                        shuffle=False, drop_last=False, num_workers=0)
    h = feat
    with torch.no_grad():
        for layer in range(model.num_layers):
            y = torch.empty(g.num_nodes(), model.layer_output_dim(layer))
            for input_nodes, output_nodes, blocks in loader:
                x = h[input_nodes]
                y[output_nodes] = model.layer_forward(layer, blocks[0], x)
            h = y
    return h


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    if not args.verbose:
        logging.getLogger("graphplat.inference.export").setLevel(logging.WARNING)
    import dgl
    import torch

    from graphplat import _core
    from graphplat.inference.export import export_embeddings, read_embeddings
    from graphplat.models.gnn import GraphSAGE

    indptr, indices, meta = get_graph(args)
    n = len(indptr) - 1
    LOG.info("graph: %d nodes, %d edges; %d-dim features", n, len(indices), args.feat_dim)
    feat = features(n, args.feat_dim, args.seed)
    set_threads(args.threads, _core)

    g = dgl.graph(("csc", (torch.from_numpy(indptr), torch.from_numpy(indices),
                           torch.empty(0, dtype=torch.int64))), num_nodes=n)
    g.create_formats_()
    feat_t = torch.from_numpy(feat)
    local = graph_arrays(indptr, indices, feat).to_local(partitions=1)
    del indices

    torch.manual_seed(args.seed)
    model = GraphSAGE(args.feat_dim, args.hidden, args.out_dim, args.layers).eval()
    tmp = tempfile.TemporaryDirectory(prefix="bench-export-", dir=args.workdir)
    work = Path(tmp.name)

    outputs: Dict[str, object] = {}

    def run_dgl():
        outputs["dgl"] = dgl_inference(model, g, feat_t, args.chunk_size)

    def run_graphplat(fmt):
        def run():
            path = work / f"emb.{fmt}"
            export_embeddings(local, model, None, path, chunk_size=args.chunk_size, resume=False,
                              progress=False, prefetch=args.prefetch)
            outputs[f"graphplat-{fmt}"] = path
        return run

    methods = {"dgl": run_dgl}
    for fmt in args.formats:
        methods[f"graphplat-{fmt}"] = run_graphplat(fmt)

    times: Dict[str, List[float]] = {m: [] for m in methods}
    other: List[float] = []
    # one untimed run of each method first (imports, page faults, allocator)
    for name, fn in methods.items():
        t0 = time.perf_counter()
        fn()
        LOG.info("warm-up %-18s %.2fs", name, time.perf_counter() - t0)
    for rep in range(args.reps):
        for name, fn in methods.items():
            mon = OtherCpuMonitor().start()
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            load = mon.stop()
            if load is not None:
                other.append(load)
            times[name].append(dt)
            LOG.info("rep %d %-18s %.2fs  %.0f nodes/s", rep, name, dt, n / dt)

    ref = outputs["dgl"].numpy()
    diffs = {}
    for fmt in args.formats:
        ids, emb = read_embeddings(outputs[f"graphplat-{fmt}"])
        diffs[f"graphplat-{fmt}"] = float(np.abs(ref[ids] - emb).max()) if n else 0.0
    summary = {}
    for name, ts in times.items():
        med = statistics.median(ts)
        summary[name] = {"seconds_median": round(med, 3), "nodes_per_s": round(n / med, 1),
                         "seconds": [round(t, 3) for t in ts]}
    base = summary["dgl"]["nodes_per_s"]
    ratios = {m: round(s["nodes_per_s"] / base, 3) for m, s in summary.items() if m != "dgl"}
    out = {"benchmark": "export", "graph": {"nodes": n, "edges": int(indptr[-1]), **meta},
           "model": {"name": "sage", "aggregator": "mean", "in": args.feat_dim, "hidden": args.hidden,
                     "out": args.out_dim, "layers": args.layers},
           "chunk_size": args.chunk_size, "threads": args.threads, "reps": args.reps,
           "prefetch": args.prefetch, "machine": machine_info(),
           "other_processes_busy_cores_median": round(statistics.median(other), 2) if other else None,
           "results": summary, "ratio_vs_dgl_nodes_per_s": ratios,
           "max_abs_diff_vs_dgl": diffs,
           "notes": "dgl keeps its output in memory; graphplat writes every layer to memory-mapped "
                    "files, the final one (with ids) to disk, and commits resume state"}
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
