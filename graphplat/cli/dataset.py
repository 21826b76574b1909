"""``graphplat dataset``: write a standard dataset as a store (command line of :func:`graphplat.datasets.load_dataset`)."""
from __future__ import annotations

import argparse
import ast
from typing import List

from graphplat.cli.args import positive_int as _positive
from graphplat.datasets.registry import DATASETS, load_dataset, log

DATASET_DESCRIPTION = (
    "Read a standard dataset from its raw files (or generate the synthetic one) and write it "
    "as a graphplat store. Datasets:\n" + "\n".join(
        f"  {e.name:<10} {e.help}" for e in DATASETS.values())
    + "\nOptions per dataset (-o KEY=VALUE):\n" + "\n".join(
        f"  {e.name:<10} " + (", ".join(f"{k}={v!r}" for k, v in e.options().items()) or "none")
        for e in DATASETS.values()))


def _option(text: str):
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"options are KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    key = key.strip().replace("-", "_")
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value  # a plain string such as split=u2
    return key, parsed


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``graphplat dataset`` arguments to ``parser``: ``NAME``, ``--data-dir``,
    ``--out``, ``--partitions``, ``--partitioner``, ``--overwrite`` and repeatable
    ``-o KEY=VALUE`` dataset options. Returns ``parser``."""
    parser.add_argument("name", choices=list(DATASETS), metavar="NAME",
                        help=f"dataset: {', '.join(DATASETS)}")
    parser.add_argument("--data-dir", default=None,
                        help="raw datasets directory (default: $GRAPHPLAT_DATASETS, else "
                             "../shared/datasets next to the repository or the working directory)")
    parser.add_argument("--out", required=True, help="store directory to create")
    parser.add_argument("-p", "--partitions", type=_positive, default=1,
                        help="number of partitions (default 1)")
    parser.add_argument("--partitioner", choices=("hash", "metis"), default="hash",
                        help="hash (default) or metis (needs dgl)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing store at --out")
    parser.add_argument("-o", "--option", type=_option, action="append", default=[],
                        metavar="KEY=VALUE",
                        help="dataset option, repeatable (e.g. -o labels_per_class=40)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Load the dataset named by ``args``, log its summary and write the store. Returns 0;
    missing files, a bad option or an existing output raise (the command line prints them
    as one line)."""
    options: List = list(getattr(args, "option", None) or [])
    from pathlib import Path

    from graphplat.storage.store import check_target

    check_target(Path(args.out).absolute(), args.overwrite)  # fail before loading
    ds = load_dataset(args.name, args.data_dir, **dict(options))
    for line in ds.summary().splitlines():
        log.info("%s", line)
    path = ds.write_store(args.out, partitions=args.partitions, overwrite=args.overwrite,
                          partitioner=getattr(args, "partitioner", "hash"))
    log.info("store ready: %s", path)
    return 0


if __name__ == "__main__":  # ``python -m graphplat.cli.dataset`` == ``graphplat dataset``
    import sys

    from graphplat.cli import main

    sys.exit(main(["dataset", *sys.argv[1:]]))
