"""The dataset registry (:data:`DATASETS`, :func:`load_dataset`) and the
``graphplat dataset NAME --out STORE`` command (:func:`add_arguments`, :func:`run`)."""
from __future__ import annotations

import argparse

from graphplat.typing import PathLike
from graphplat.cli.args import positive_int as _positive
import ast
import inspect
import logging
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

from graphplat.datasets.acm import load_acm
from graphplat.datasets.base import Dataset
from graphplat.datasets.movielens import load_movielens
from graphplat.datasets.planetoid import load_citeseer, load_cora
from graphplat.datasets.synthetic_recsys import generate_recsys
from graphplat.datasets.yelpchi import load_yelpchi

log = logging.getLogger(__name__)

__all__ = ["DatasetEntry", "DATASETS", "load_dataset", "dataset_options", "add_arguments", "run",
           "DATASET_DESCRIPTION"]


@dataclass(frozen=True)
class DatasetEntry:
    """One registered dataset: its loader, whether it reads files (then the loader's first
    argument is ``data_dir``) and a one-line description."""

    name: str
    loader: Callable[..., Dataset]
    reads_files: bool
    help: str

    def options(self) -> Dict[str, object]:
        """The loader's keyword options and their defaults."""
        out = {}
        for p in inspect.signature(self.loader).parameters.values():
            if p.name == "data_dir" or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                continue
            out[p.name] = p.default
        return out


#: Registered datasets by name.
DATASETS: Dict[str, DatasetEntry] = {e.name: e for e in (
    DatasetEntry("cora", load_cora, True,
                 "Cora citation graph, Planetoid public split (cora/ind.cora.*)"),
    DatasetEntry("citeseer", load_citeseer, True,
                 "Citeseer citation graph, Planetoid public split (citeseer/ind.citeseer.*)"),
    DatasetEntry("acm", load_acm, True,
                 "ACM paper/author/subject graph, HeCo release (acm_heco/)"),
    DatasetEntry("movielens", load_movielens, True,
                 "MovieLens-100K user-item ratings, fold u1 (movielens-100k/)"),
    DatasetEntry("yelpchi", load_yelpchi, True,
                 "YelpChi review-spam graph, R-U-R relation (yelpchi_rur/YelpChi.zip)"),
    DatasetEntry("synthetic", generate_recsys, False,
                 "synthetic user/item/shop recommendation graph with planted communities"),
)}


def dataset_options(name: str) -> Dict[str, object]:
    """The options ``load_dataset(name, **options)`` accepts, with their defaults."""
    return _entry(name).options()


def _entry(name: str) -> DatasetEntry:
    if name not in DATASETS:
        from graphplat.errors import UsageError, did_you_mean

        close = did_you_mean(name, DATASETS)
        raise UsageError(f"unknown dataset {name!r}",
                         (f"did you mean {close!r}? " if close else "")
                         + f"known datasets: {', '.join(DATASETS)}")
    return DATASETS[name]


def load_dataset(name: str, data_dir: Optional[PathLike] = None, **options) -> Dataset:
    """Load a registered dataset by name.

    Args:
        name: one of :data:`DATASETS` (``cora``, ``citeseer``, ``acm``, ``movielens``,
            ``yelpchi``, ``synthetic``).
        data_dir: the raw datasets directory (see :func:`~graphplat.datasets.base.find_data_dir`);
            ignored by ``synthetic``.
        **options: the dataset's options (:func:`dataset_options`), e.g.
            ``labels_per_class=40`` for ``acm``.

    Returns the :class:`Dataset`. Raises ValueError for an unknown name or option (listing
    the known ones) or a bad option value, FileNotFoundError when the files are missing.
    """
    entry = _entry(name)
    known = entry.options()
    unknown = sorted(set(options) - set(known))
    if unknown:
        listed = ", ".join(f"{k}={v!r}" for k, v in known.items()) or "none"
        raise ValueError(f"dataset {name!r} has no option{'s' if len(unknown) > 1 else ''} "
                         f"{', '.join(map(repr, unknown))}; its options: {listed}")
    if entry.reads_files:
        return entry.loader(data_dir, **options)
    return entry.loader(**options)


# ----------------------------------------------------------------------------- command line

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

    from graphplat.storage.ingest import check_target

    check_target(Path(args.out).absolute(), args.overwrite)  # fail before loading
    ds = load_dataset(args.name, args.data_dir, **dict(options))
    for line in ds.summary().splitlines():
        log.info("%s", line)
    path = ds.write_store(args.out, partitions=args.partitions, overwrite=args.overwrite,
                          partitioner=getattr(args, "partitioner", "hash"))
    log.info("store ready: %s", path)
    return 0


def main(argv=None) -> int:
    """Standalone entry point: parse ``argv`` like ``graphplat dataset`` would, set up
    logging and :func:`run`. Returns the exit code."""
    import sys

    from graphplat.cli import main as cli_main

    return cli_main(["dataset", *(sys.argv[1:] if argv is None else argv)])
