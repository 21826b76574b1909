"""The dataset registry (:data:`DATASETS`, :func:`load_dataset`) and the
``graphplat dataset NAME --out STORE`` command (:func:`add_arguments`, :func:`run`)."""
from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Callable, Dict, Optional

from graphplat.datasets.acm import load_acm
from graphplat.datasets.base import Dataset
from graphplat.datasets.movielens import load_movielens
from graphplat.datasets.planetoid import load_citeseer, load_cora
from graphplat.datasets.planted_fraud import planted_fraud
from graphplat.datasets.synthetic_recsys import generate_recsys
from graphplat.datasets.tolokers import load_tolokers
from graphplat.datasets.yelpchi import load_yelpchi
from graphplat.typing import PathLike

log = logging.getLogger(__name__)

__all__ = ["DatasetEntry", "load_dataset", "dataset_options"]


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
    DatasetEntry("tolokers", load_tolokers, True,
                 "Tolokers banned crowd workers, 10 fixed splits (tolokers/tolokers.npz)"),
    DatasetEntry("synthetic", generate_recsys, False,
                 "synthetic user/item/shop recommendation graph with planted communities"),
    DatasetEntry("planted_fraud", planted_fraud, False,
                 "synthetic fraud graph with a planted heterophilous neighbor signal"),
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
            ``yelpchi``, ``tolokers``, ``synthetic``).
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
