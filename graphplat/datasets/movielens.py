"""MovieLens-100K (GroupLens) as a bipartite user-item rating graph.

Input: ``ml-100k.zip`` and/or its files loose next to it (loose files win), or an extracted
``ml-100k/`` directory.

Node types ``user`` (943, ``feat`` float32[24]: age, gender, occupation) and ``item``
(1,682, ``feat`` float32[20]: genres, release year); ids are the file ids minus one. Edge
types (features ``rating`` and ``timestamp``): ``("user","rates","item")`` and its reverse
``("item","rated-by","user")`` hold the training ratings of fold ``split`` (default
``u1``) minus a seeded ``val_fraction``; ``rates-val`` and ``rates-test`` hold the held-out
ratings, for scoring only (``target_etypes``). ``rating_etypes=True`` also stores the
training ratings split by value (``rates-1`` .. ``rates-5`` and reverses) for GC-MC-style
models (train with ``mp_etypes: ["rates-?", "rated-by-?"]``).
"""
from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from graphplat.datasets.base import Dataset, data_root, one_hot
from graphplat.schema import EdgeType, FeatureSpec, GraphSchema, NodeType
from graphplat.storage.graph_arrays import GraphArrays
from graphplat.typing import PathLike

log = logging.getLogger(__name__)

__all__ = ["load_movielens", "RATES", "RATED_BY", "RATES_VAL", "RATES_TEST", "MOVIELENS_SPLITS",
           "RATING_LEVELS", "level_etypes"]

RATES = ("user", "rates", "item")
RATED_BY = ("item", "rated-by", "user")
RATES_VAL = ("user", "rates-val", "item")
RATES_TEST = ("user", "rates-test", "item")
MOVIELENS_SPLITS = ("u1", "u2", "u3", "u4", "u5")
RATING_LEVELS = (1, 2, 3, 4, 5)
ZIP_NAME = "ml-100k.zip"
_SUBDIRS = ("movielens-100k", "ml-100k", "movielens")
_NUM_GENRES = 19


class _Source:
    """Reads ``ml-100k`` members from loose files in ``root`` (or ``root/ml-100k``), else
    from ``root/ml-100k.zip``."""

    def __init__(self, root: Path):
        self.root = root
        zpath = root / ZIP_NAME
        self.zip = zipfile.ZipFile(zpath) if zpath.is_file() else None
        self.members: Dict[str, str] = {}
        if self.zip is not None:
            for m in self.zip.namelist():
                self.members.setdefault(m.rsplit("/", 1)[-1], m)

    def where(self, name: str) -> Optional[str]:
        for d in (self.root, self.root / "ml-100k"):
            if (d / name).is_file():
                return str(d / name)
        if name in self.members:
            return f"{self.root / ZIP_NAME}:{self.members[name]}"
        return None

    def has(self, name: str) -> bool:
        return self.where(name) is not None

    def read(self, name: str) -> bytes:
        for d in (self.root, self.root / "ml-100k"):
            if (d / name).is_file():
                return (d / name).read_bytes()
        if name in self.members:
            return self.zip.read(self.members[name])
        raise FileNotFoundError(
            f"movielens: {name} is neither in {self.root} nor in {self.root / ZIP_NAME}")

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def _locate(data_dir: Optional[PathLike], split: str) -> _Source:
    needed = ("u.user", "u.item", f"{split}.base", f"{split}.test")
    root = data_root(data_dir, "movielens", f"{ZIP_NAME} (or its members loose) with "
                     f"{', '.join(needed)} in movielens-100k/")
    tried: List[str] = []
    for d in [root / s for s in _SUBDIRS] + [root]:
        if not d.is_dir():
            tried.append(f"{d} (no such directory)")
            continue
        src = _Source(d)
        missing = [n for n in needed if not src.has(n)]
        if not missing:
            return src
        src.close()
        tried.append(f"{d} (missing {', '.join(missing)})")
    raise FileNotFoundError(
        f"dataset 'movielens' expects {ZIP_NAME} (or its members loose) with "
        f"{', '.join(needed)}; looked in " + "; ".join(tried))


def _ratings(data: bytes, where: str, num_users: int, num_items: int) -> np.ndarray:
    """``user item rating timestamp`` rows -> int64 (n, 4); ids checked against the counts."""
    try:
        arr = np.array(data.split(), dtype=np.int64)
    except ValueError:
        raise ValueError(f"{where}: expected whitespace-separated integers "
                         "'user item rating timestamp'") from None
    if arr.size % 4:
        raise ValueError(f"{where}: expected 4 columns per line (user item rating timestamp)")
    arr = arr.reshape(-1, 4)
    for col, name, hi in ((0, "user", num_users), (1, "item", num_items)):
        bad = (arr[:, col] < 1) | (arr[:, col] > hi)
        if bad.any():
            raise ValueError(f"{where}: {name} id {int(arr[bad, col][0])} outside 1..{hi} "
                             f"(row {int(np.argmax(bad)) + 1})")
    if ((arr[:, 2] < 1) | (arr[:, 2] > 5)).any():
        raise ValueError(f"{where}: ratings must be in 1..5")
    return arr


def _users(src: _Source):
    lines = [ln for ln in src.read("u.user").decode("latin-1").splitlines() if ln.strip()]
    rows = [ln.split("|") for ln in lines]
    if any(len(r) != 5 for r in rows):
        raise ValueError(f"{src.where('u.user')}: expected 'id|age|gender|occupation|zip' lines")
    ids = np.array([int(r[0]) for r in rows], dtype=np.int64)
    if not np.array_equal(np.sort(ids), np.arange(1, len(ids) + 1)):
        raise ValueError(f"{src.where('u.user')}: user ids must be 1..{len(ids)}")
    order = np.argsort(ids)
    age = np.array([float(r[1]) for r in rows], dtype=np.float64)[order]
    gender = np.array([r[2].strip().upper() for r in rows])[order]
    occ = np.array([r[3].strip() for r in rows])[order]
    if src.has("u.occupation"):
        vocab = [v.strip() for v in src.read("u.occupation").decode("latin-1").splitlines() if v.strip()]
    else:
        vocab = sorted(set(occ.tolist()))
    index = {v: i for i, v in enumerate(vocab)}
    unknown = sorted(set(occ.tolist()) - set(vocab))
    if unknown:
        raise ValueError(f"{src.where('u.user')}: occupations {unknown} are not in u.occupation")
    if not set(gender.tolist()) <= {"M", "F"}:
        raise ValueError(f"{src.where('u.user')}: gender must be M or F")
    span = max(age.max() - age.min(), 1.0)
    feat = np.concatenate([
        ((age - age.min()) / span)[:, None],
        np.stack([gender == "M", gender == "F"], 1),
        one_hot(np.array([index[o] for o in occ], dtype=np.int64), len(vocab)),
    ], 1).astype(np.float32)
    return feat, vocab


def _items(src: _Source):
    lines = [ln for ln in src.read("u.item").decode("latin-1").splitlines() if ln.strip()]
    rows = [ln.split("|") for ln in lines]
    if any(len(r) < 5 + _NUM_GENRES for r in rows):
        raise ValueError(f"{src.where('u.item')}: expected 'id|title|date|video date|url|19 genre "
                         f"flags' lines")
    ids = np.array([int(r[0]) for r in rows], dtype=np.int64)
    if not np.array_equal(np.sort(ids), np.arange(1, len(ids) + 1)):
        raise ValueError(f"{src.where('u.item')}: item ids must be 1..{len(ids)}")
    order = np.argsort(ids)
    genres = np.array([[int(g) for g in r[-_NUM_GENRES:]] for r in rows], dtype=np.float32)[order]
    dates = [r[-(_NUM_GENRES + 3)].strip() for r in rows]
    year = np.array([float(d[-4:]) if len(d) >= 4 and d[-4:].isdigit() else np.nan for d in dates])[order]
    missing = np.flatnonzero(np.isnan(year))
    if len(missing) == len(year):
        raise ValueError(f"{src.where('u.item')}: no release dates could be parsed")
    year[missing] = np.median(year[~np.isnan(year)])
    span = max(year.max() - year.min(), 1.0)
    feat = np.concatenate([genres, ((year - year.min()) / span)[:, None]], 1).astype(np.float32)
    return feat, missing


def level_etypes(level: int):
    """The ``(user -> item, item -> user)`` edge types of rating ``level`` (1..5) that
    ``rating_etypes=True`` adds."""
    return ("user", f"rates-{level}", "item"), ("item", f"rated-by-{level}", "user")


def load_movielens(data_dir: Optional[PathLike] = None, *, split: str = "u1",
                   val_fraction: float = 0.05, seed: int = 0, rating_etypes: bool = False) -> Dataset:
    """Read MovieLens-100K as a rating-prediction graph on the fold ``split``.

    Args:
        data_dir: the datasets root (its ``movielens-100k/`` subdirectory is used) or the
            directory holding ``ml-100k.zip`` / the loose files; default :func:`find_data_dir`.
        split: the GroupLens fold ``"u1"`` .. ``"u5"`` (its ``.base``/``.test`` files must be
            present, loose or in the zip).
        val_fraction: fraction of the ``.base`` ratings moved to validation, in [0, 1).
        seed: seed of the validation carve-out.
        rating_etypes: also store the training ratings as one edge type per rating level
            and direction (``rates-1`` .. ``rates-5``, ``rated-by-1`` .. ``rated-by-5``), for
            GC-MC's rating-typed message passing.

    Returns a ``task="rating"`` :class:`Dataset` (see the module docstring). Raises
    FileNotFoundError for missing files, ValueError for bad options or malformed files.
    """
    if split not in MOVIELENS_SPLITS:
        raise ValueError(f"split must be one of {', '.join(MOVIELENS_SPLITS)}, got {split!r}")
    try:
        val_fraction = float(val_fraction)
    except (TypeError, ValueError):
        raise ValueError(f"val_fraction must be a number, got {val_fraction!r}") from None
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    src = _locate(data_dir, split)
    try:
        log.info("reading movielens (%s) from %s", split, src.root)
        user_feat, occupations = _users(src)
        item_feat, no_date = _items(src)
        nu, ni = len(user_feat), len(item_feat)
        base = _ratings(src.read(f"{split}.base"), src.where(f"{split}.base"), nu, ni)
        test = _ratings(src.read(f"{split}.test"), src.where(f"{split}.test"), nu, ni)
        if src.has("u.data"):
            full = _ratings(src.read("u.data"), src.where("u.data"), nu, ni)
            key = lambda a: np.sort(a[:, 0] * (ni + 1) * 8 + a[:, 1] * 8 + a[:, 2])  # noqa: E731
            if not np.array_equal(key(np.concatenate([base, test])), key(full)):
                log.warning("movielens: %s.base + %s.test differ from u.data (%d + %d vs %d "
                            "ratings); is one of the files an edited copy?", split, split,
                            len(base), len(test), len(full))
    finally:
        src.close()

    rng = np.random.default_rng(seed)
    n_val = int(round(val_fraction * len(base)))
    is_val = np.zeros(len(base), dtype=bool)
    is_val[rng.permutation(len(base))[:n_val]] = True
    train, val = base[~is_val], base[is_val]

    def cols(a):
        return a[:, 0] - 1, a[:, 1] - 1, {"rating": a[:, 2].astype(np.float32), "timestamp": a[:, 3]}

    rating_feats = (FeatureSpec("rating", "float32"), FeatureSpec("timestamp", "int64"))
    tu, ti, tf = cols(train)
    vu, vi, vf = cols(val)
    su, si, sf = cols(test)
    edges = {RATES: (tu, ti), RATED_BY: (ti, tu), RATES_VAL: (vu, vi), RATES_TEST: (su, si)}
    efeats = {RATES: tf, RATED_BY: dict(tf), RATES_VAL: vf, RATES_TEST: sf}
    etypes = [EdgeType(*RATES, out_adjacency=True, features=rating_feats),
              EdgeType(*RATED_BY, out_adjacency=True, features=rating_feats),
              EdgeType(*RATES_VAL, features=rating_feats),
              EdgeType(*RATES_TEST, features=rating_feats)]
    if rating_etypes:
        for level in RATING_LEVELS:
            fwd, rev = level_etypes(level)
            lu, li, lf = cols(train[train[:, 2] == level])
            edges.update({fwd: (lu, li), rev: (li, lu)})
            efeats.update({fwd: lf, rev: dict(lf)})
            etypes += [EdgeType(*fwd, out_adjacency=True, features=rating_feats),
                       EdgeType(*rev, out_adjacency=True, features=rating_feats)]
    schema = GraphSchema(
        (NodeType("user", (FeatureSpec("feat", "float32", (user_feat.shape[1],)),)),
         NodeType("item", (FeatureSpec("feat", "float32", (item_feat.shape[1],)),))),
        tuple(etypes))
    arrays = GraphArrays(
        schema,
        nodes={"user": np.arange(nu, dtype=np.int64), "item": np.arange(ni, dtype=np.int64)},
        node_features={"user": {"feat": user_feat}, "item": {"feat": item_feat}},
        edges=edges, edge_features=efeats)
    reference: Dict[str, object] = {}
    if split == "u1":
        reference = {"metric": "rmse", "value": 0.910, "scale": "rating",
                     "source": "GC-MC (van den Berg, Kipf & Welling 2017), ML-100K u1.base/u1.test",
                     "with_side_features": 0.905,
                     "note": "GC-MC trains on all of u1.base; here 5% of it is held out for "
                             "validation by default (val_fraction)"}
    description = (
        f"MovieLens-100K fold {split}: {nu} users, {ni} items; {len(train)} training ratings "
        f"({RATES} + reverse), {len(val)} validation ({val_fraction:.0%} of {split}.base, "
        f"seed {seed}), {len(test)} test; "
        + ("training ratings also typed by level (rates-1..5, rated-by-1..5); " if rating_etypes else "")
        + "user feat = age scaled, gender, occupation one-hot; "
        "item feat = genres multi-hot + release year scaled.")
    return Dataset(name="movielens", graph=arrays, task="rating", num_classes=None,
                   target_etypes={"train": RATES, "val": RATES_VAL, "test": RATES_TEST},
                   reference=reference, description=description,
                   meta={"split": split, "val_fraction": val_fraction, "seed": seed,
                         "rating_etypes": bool(rating_etypes),
                         "occupations": occupations, "items_without_date": no_date + 1,
                         "id_offset": 1})
