"""``graphplat ingest``: tables -> a partitioned store (command line of :func:`graphplat.storage.ingest.ingest`)."""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from graphplat.cli.args import positive_int as _positive
from graphplat.errors import IngestError
from graphplat.storage import ingest as _library
from graphplat.storage.ingest import PARTITIONERS, ingest, log

INGEST_DESCRIPTION = (
    "Read node and edge tables (CSV, Parquet or NPY), validate them against the schema, "
    "partition the graph and write a graphplat store (one RocksDB per partition) "
    "atomically.\n\n" + _library.__doc__.split("\n", 2)[2].replace(":class:`IngestError`", "IngestError")
    .replace("``", "'"))
INGEST_EPILOG = (
    "Bad rows (missing or non-numeric values, NaN in int64 columns, wrong vector width, "
    "duplicate node ids, edges to unknown nodes, ...) are reported as file:line: problem. "
    "Exit codes: 0 success, 1 invalid input or existing output, 2 usage error.")


def add_ingest_arguments(p: argparse.ArgumentParser, verbose: bool = True) -> argparse.ArgumentParser:
    """Add the ``ingest`` arguments to ``p`` (``verbose=False`` when the parent parser has
    its own ``-v``). Returns ``p``."""
    p.add_argument("spec", help="ingest spec (YAML) naming the schema and the input files")
    p.add_argument("out", help="store directory to create (must not exist unless --overwrite)")
    p.add_argument("-p", "--partitions", type=_positive, default=1,
                   help="number of partitions (default 1)")
    p.add_argument("--partitioner", choices=PARTITIONERS, default="hash",
                   help="hash: partition = hash(id) mod P (default); metis: DGL's METIS "
                        "on the homogeneous graph, balancing node types (needs dgl)")
    p.add_argument("--skip-bad-rows", action="store_true",
                   help="drop bad rows and log their count instead of failing")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing store at OUT (swapped in atomically)")
    p.add_argument("--max-errors", type=_positive, default=20,
                   help="bad rows to report in detail (default 20)")
    if verbose:
        from graphplat.cli.args import add_logging_arguments

        add_logging_arguments(p)
    return p


def build_parser(prog: str = "graphplat ingest") -> argparse.ArgumentParser:
    """The standalone ``graphplat ingest`` argument parser."""
    p = argparse.ArgumentParser(prog=prog, description=INGEST_DESCRIPTION, epilog=INGEST_EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    return add_ingest_arguments(p)


def run_ingest(args: argparse.Namespace) -> int:
    """Run an ingest from parsed arguments (see :func:`add_ingest_arguments`); logs the
    outcome and returns the exit code (0 ok, 1 bad input or existing output)."""
    try:
        path = ingest(args.spec, args.out, partitions=args.partitions, partitioner=args.partitioner,
                      skip_bad_rows=args.skip_bad_rows, overwrite=args.overwrite,
                      max_errors=args.max_errors)
    except (IngestError, FileExistsError) as e:
        log.error("ingest failed: %s", e)
        return 1
    log.info("store ready: %s", path)
    return 0


def main_ingest(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``graphplat ingest`` as a standalone command; returns the exit code."""
    args = build_parser().parse_args(argv)
    from graphplat.cli.args import setup_logging

    setup_logging(args)
    return run_ingest(args)


if __name__ == "__main__":
    sys.exit(main_ingest())
