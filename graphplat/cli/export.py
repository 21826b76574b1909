"""``graphplat export``: node embeddings of a trained model (command line of :func:`graphplat.inference.export.export_embeddings`)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict

from graphplat.cli.args import positive_int as _positive
from graphplat.datasets.source import open_graph_source
from graphplat.inference.export import DEFAULT_CHUNK_SIZE, OUTPUTS, _format_of, export_embeddings, log

EXPORT_DESCRIPTION = """Export node embeddings of a trained model by layer-wise inference.

Every layer is computed once for all nodes (chunks of destination nodes with their full
in-neighborhoods), kept in memory-mapped arrays next to the output, and the last one is
written to OUT: .npy (float32 (N, d); ids in <stem>.ids.npy) or .parquet (columns id,
embedding). --output final exports the last layer (logits of a classifier, the encoder's
embedding of a rating model); --output hidden the last hidden layer. A killed export
resumes where it stopped when rerun with the same arguments; OUT appears only when complete.

The graph defaults to the one the checkpoint was trained on (its config's dataset, store or
cluster); --graph, --cluster or --dataset name another with the same schema.
"""
EXPORT_EPILOG = """examples:
  graphplat train --dataset synthetic --checkpoint-dir ckpt
  graphplat export --checkpoint ckpt/seed-0/best.pt --ntype user --out user.parquet
  graphplat export --checkpoint ckpt/seed-0/best.pt --graph store --ntype user \\
      --out user.npy --output hidden --chunk-size 8192
"""


def add_export_arguments(p: argparse.ArgumentParser, verbose: bool = False) -> None:
    """Add ``graphplat export`` options to ``p`` (``verbose``: also ``-v``)."""
    p.add_argument("--checkpoint", required=True,
                   help="best.pt written by `graphplat train --checkpoint-dir` (DIR/seed-N/best.pt)")
    src = p.add_argument_group("graph (default: the one the checkpoint was trained on)")
    one = src.add_mutually_exclusive_group()
    one.add_argument("--graph", help="a store directory (graphplat ingest / graphplat dataset)")
    one.add_argument("--cluster", help="a cluster file of graph servers")
    one.add_argument("--dataset", help="a dataset name (synthetic, cora, acm, ...), built in memory "
                                       "with the checkpoint's dataset options")
    src.add_argument("--data-dir", help="raw datasets directory for --dataset")
    o = p.add_argument_group("export")
    o.add_argument("--ntype", help="node type to export (default: the model's target type, or "
                                   "the graph's only type)")
    o.add_argument("--out", required=True, type=_out_path, help="output file: .npy or .parquet")
    o.add_argument("--output", choices=OUTPUTS, default="final",
                   help="final: last layer (default); hidden: the last hidden layer (L-2)")
    o.add_argument("--chunk-size", type=_positive, default=DEFAULT_CHUNK_SIZE,
                   help=f"destination nodes per chunk (default {DEFAULT_CHUNK_SIZE})")
    o.add_argument("--feature", help="input node feature (default: the checkpoint's)")
    o.add_argument("--no-resume", action="store_true",
                   help="discard the partial state of an interrupted export and start over")
    o.add_argument("--prefetch", type=int, default=1, help="chunks sampled ahead (default 1)")
    o.add_argument("--threads", type=_positive, help="threads for torch and the sampler")
    if verbose:
        p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def _out_path(text: str) -> str:
    """``--out``: refused before anything is loaded unless it ends in .npy or .parquet."""
    try:
        _format_of(Path(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _open_graph(args, cfg: Dict[str, Any]):
    """The GraphService named by the arguments, else by the training config."""
    graph, cluster, dataset = args.graph, args.cluster, args.dataset
    data_dir = args.data_dir
    options: Dict[str, Any] = {}
    if not (graph or cluster or dataset):
        graph, cluster, dataset = cfg.get("graph"), cfg.get("cluster"), cfg.get("dataset")
        data_dir = data_dir or cfg.get("data_dir")
        if not (graph or cluster or dataset):
            raise ValueError("the checkpoint's config names no graph: pass --graph, --cluster or "
                             "--dataset")
        log.info("graph from the checkpoint's config: %s",
                 graph and f"store {graph}" or cluster and f"cluster {cluster}" or f"dataset {dataset}")
    if dataset and dataset == cfg.get("dataset"):
        options = dict(cfg.get("dataset_options") or {})
    return open_graph_source(graph, cluster, dataset, data_dir=data_dir, dataset_options=options)


def run_export(args: argparse.Namespace) -> int:
    """Run ``graphplat export``: log progress, print a JSON summary on stdout. Returns 0; bad
    input or an unusable partial state raise (``graphplat`` prints them as one line)."""
    import torch

    from graphplat.training.loop import load_trained, read_checkpoint

    if args.threads:
        from graphplat import _core

        torch.set_num_threads(args.threads)
        _core.set_num_threads(args.threads)
    ckpt = Path(args.checkpoint)
    state = read_checkpoint(ckpt)
    cfg = state.get("config") or {}
    del state
    graph = _open_graph(args, cfg)
    try:
        trained = load_trained(ckpt, graph)
        feature = args.feature or trained.meta.get("feature") or "feat"
        ntype = args.ntype or trained.meta.get("target_ntype")
        res = export_embeddings(trained.input_graph(graph), trained.encoder, ntype, args.out,
                                feature=feature, chunk_size=args.chunk_size, output=args.output,
                                resume=not args.no_resume, prefetch=args.prefetch,
                                return_result=True)
    finally:
        graph.close()
    sys.stdout.write(json.dumps(res.as_dict()) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":  # ``python -m graphplat.cli.export`` == ``graphplat export``
    import sys

    from graphplat.cli import main

    sys.exit(main(["export", *sys.argv[1:]]))
