"""The ``graphplat`` command line."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Optional, Sequence

from graphplat.cli.args import Parser, add_logging_arguments, int_list, setup_logging
from graphplat.cli.args import positive_int as _positive
from graphplat.cli.guard import describe_error, run_guarded

__all__ = ["main", "build_parser", "describe_error", "run_guarded"]

log = logging.getLogger("graphplat.cli")

DESCRIPTION = """graphplat: a graph neural network platform with a C++ sampling core.

Commands:
  train        train a GNN with sampled minibatches and print its metrics (with no options:
               the synthetic recommendation graph, embedded; no data or servers needed)
  export       write node embeddings of a trained model (layer-wise inference) to Parquet/NPY
  serve-model  serve top-K recommendation and node scoring from a trained model over gRPC
  dataset      turn a standard raw dataset (Cora, Citeseer, ACM, MovieLens, YelpChi) into a store
  ingest       read CSV/Parquet/NPY node and edge tables into a partitioned RocksDB store
  serve        serve one partition of a store over gRPC (clients: graphplat.connect)
  quickstart   sample DGL minibatches from a synthetic power-law graph and report the speed
  info         print versions, thread count and the core's limits

`graphplat COMMAND --help` explains each command.
"""


def _fanouts(text: str):
    values = int_list(text)
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"fanouts must be positive integers, got {text!r}")
    return values




def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    from graphplat import __version__

    parser = Parser(prog="graphplat", description=DESCRIPTION,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"graphplat {__version__}")
    add_logging_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    q = sub.add_parser("quickstart", help="sample minibatches from a synthetic graph",
                       description="Generate a Chung-Lu power-law graph in memory, sample "
                                   "multi-hop minibatches with the C++ core, check the DGL "
                                   "blocks, and print a JSON report on stdout.")
    q.add_argument("--nodes", type=_positive, default=200_000, help="number of nodes (default 200000)")
    q.add_argument("--edges", type=_positive, default=4_000_000, help="number of edges (default 4000000)")
    q.add_argument("--batches", type=_positive, default=200, help="minibatches to sample (default 200)")
    q.add_argument("--batch-size", type=_positive, default=1024, help="seeds per batch (default 1024)")
    q.add_argument("--fanouts", type=_fanouts, default=[15, 10, 5],
                   help="neighbors per hop, comma-separated (default 15,10,5)")
    q.add_argument("--threads", type=_positive, default=None,
                   help="threads of the core (default: all cores)")
    q.add_argument("--seed", type=int, default=0, help="random seed (default 0)")

    from graphplat.cli.ingest import INGEST_DESCRIPTION, INGEST_EPILOG, add_ingest_arguments

    ing = sub.add_parser("ingest", help="read CSV/Parquet/NPY tables into a partitioned RocksDB store",
                         description=INGEST_DESCRIPTION, epilog=INGEST_EPILOG,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    add_ingest_arguments(ing, verbose=False)  # the top-level parser already has -v

    from graphplat.cli.serve import SERVE_DESCRIPTION, SERVE_EPILOG, add_serve_arguments

    srv = sub.add_parser("serve", help="serve one partition of a store over gRPC",
                         description=SERVE_DESCRIPTION, epilog=SERVE_EPILOG)
    add_serve_arguments(srv, verbose=False)  # the top-level parser already has -v

    from graphplat.cli.train import TRAIN_DESCRIPTION, TRAIN_EPILOG, add_train_arguments

    tr = sub.add_parser("train", help="train a GNN and print its metrics",
                        description=TRAIN_DESCRIPTION, epilog=TRAIN_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_train_arguments(tr)

    from graphplat.cli.export import EXPORT_DESCRIPTION, EXPORT_EPILOG, add_export_arguments

    ex = sub.add_parser("export", help="export node embeddings of a trained model",
                        description=EXPORT_DESCRIPTION, epilog=EXPORT_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_export_arguments(ex)

    from graphplat.cli.serve_model import (
        SERVE_MODEL_DESCRIPTION,
        SERVE_MODEL_EPILOG,
        add_serve_model_arguments,
    )

    sm = sub.add_parser("serve-model", help="serve recommendations and node scores over gRPC",
                        description=SERVE_MODEL_DESCRIPTION, epilog=SERVE_MODEL_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_serve_model_arguments(sm)

    from graphplat.cli.dataset import add_arguments as add_dataset_arguments

    ds = sub.add_parser("dataset", help="write a standard dataset (cora, acm, movielens, ...) as a store",
                        description="Read a dataset's raw files and write a partition store that "
                                    "`graphplat serve` and `graphplat train --graph` use.")
    add_dataset_arguments(ds)

    sub.add_parser("info", help="print versions and core settings",
                   description="Print graphplat's version, the core's thread count and limits.")
    for p in sub.choices.values():
        add_logging_arguments(p, sub=True)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``graphplat`` command; returns the exit code (0 ok, 1 runtime
    failure, 2 usage error). Errors are one line on stderr; ``-v`` adds the traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args)
    if args.command is None:
        parser.print_help()
        return 2
    return run_guarded(args.command, lambda: _dispatch(parser, args), bool(args.verbose))


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from graphplat import __version__, _core

    if args.command == "info":
        print(json.dumps({"version": __version__, "threads": _core.get_num_threads(),
                          "max_fanout": _core.MAX_FANOUT, "strategies": list(_core.STRATEGIES)}))
        return 0
    if args.command == "quickstart":
        from graphplat.cli.quickstart import report_json, run_quickstart

        if args.threads:
            _core.set_num_threads(args.threads)
        if args.edges > args.nodes * (args.nodes - 1) // 4:
            parser.error(f"--edges {args.edges} is too dense for --nodes {args.nodes}")
        report = run_quickstart(args.nodes, args.edges, args.batches, args.batch_size,
                                args.fanouts, args.seed)
        print(report_json(report))
        return 0
    if args.command == "serve":
        from graphplat.cli.serve import run_serve

        return run_serve(args)
    if args.command == "train":
        from graphplat.cli.train import run_train

        return run_train(args)
    if args.command == "export":
        from graphplat.cli.export import run_export

        return run_export(args)
    if args.command == "serve-model":
        from graphplat.cli.serve_model import run_serve_model

        return run_serve_model(args)
    if args.command == "dataset":
        from graphplat.cli.dataset import run as run_dataset

        return run_dataset(args)
    if args.command == "ingest":
        from graphplat.cli.ingest import run_ingest

        return run_ingest(args)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
