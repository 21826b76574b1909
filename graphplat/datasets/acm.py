"""ACM heterogeneous academic graph as released with HeCo (Wang et al., KDD 2021).

Files: ``p_feat.npz`` (paper bag-of-words, row-normalised, 1,902 columns), ``a_feat.npz``
(author features, same vocabulary), ``labels.npy`` (paper classes, stored as floats),
``pa.txt`` / ``ps.txt`` (tab-separated ``paper author`` / ``paper subject`` pairs, 0-based),
and HeCo's splits ``train_{20,40,60}.npy`` / ``val_*.npy`` / ``test_*.npy`` (paper ids).

What the reader builds:

* Node types ``paper`` (4,019), ``author`` (7,167) and ``subject`` (60), ids ``0..N-1`` as in
  the files (authors and subjects: ``0..max id`` of the edge files, at least the feature rows).
* ``feat``: papers and authors get their feature matrices as dense float32 (values cast from
  float64, unchanged otherwise); subjects have no features in the release, so each gets a
  one-hot of width 60 (an identity is fine for 60 nodes).
* Papers carry ``label`` (int64 0..2) and ``split`` from the chosen HeCo split
  (``labels_per_class`` 20/40/60 -> 60/120/180 train papers, 1,000 val, 1,000 test).
* Edge types, both directions of each relation: ``("paper", "written-by", "author")`` and
  ``("author", "writes", "paper")`` from ``pa.txt`` (13,407 each); ``("paper", "about",
  "subject")`` and ``("subject", "has", "paper")`` from ``ps.txt`` (4,019 each). The
  meta-path files (``pap.npz``, ``psp.npz``) and HeCo's ``pos.npz`` are not used.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np

from graphplat.datasets.base import (
    SPLIT_TEST,
    SPLIT_TRAIN,
    SPLIT_UNUSED,
    SPLIT_VAL,
    Dataset,
    PathLike,
    locate_files,
    one_hot,
)
from graphplat.schema import EdgeType, FeatureSpec, GraphSchema, NodeType
from graphplat.storage.graph_arrays import GraphArrays

log = logging.getLogger(__name__)

__all__ = ["load_acm", "ACM_FILES", "WRITTEN_BY", "WRITES", "ABOUT", "HAS", "LABELS_PER_CLASS"]

WRITTEN_BY = ("paper", "written-by", "author")
WRITES = ("author", "writes", "paper")
ABOUT = ("paper", "about", "subject")
HAS = ("subject", "has", "paper")
LABELS_PER_CLASS = (20, 40, 60)
ACM_FILES = ("p_feat.npz", "a_feat.npz", "labels.npy", "pa.txt", "ps.txt")

# HeCo paper (KDD 2021), Table 3, ACM: (Ma-F1, Mi-F1, AUC) per labels-per-class.
_HECO = {20: (88.56, 88.13, 96.49), 40: (87.61, 87.45, 96.40), 60: (89.04, 88.71, 96.55)}


def _pairs(path: Path) -> np.ndarray:
    arr = np.loadtxt(path, dtype=np.int64, ndmin=2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{path}: expected two integer columns per line, got shape {arr.shape}")
    if len(arr) and arr.min() < 0:
        raise ValueError(f"{path}: negative node id {int(arr.min())}")
    return arr


def load_acm(data_dir: Optional[PathLike] = None, *, labels_per_class: int = 20) -> Dataset:
    """Read HeCo's ACM (paper / author / subject) for paper classification.

    Args:
        data_dir: the datasets root (its ``acm_heco/`` or ``acm/`` subdirectory is used) or
            the directory holding the files; default :func:`find_data_dir`.
        labels_per_class: which HeCo split to use: 20, 40 or 60 training papers per class.

    Returns a node-classification :class:`Dataset` on ``paper`` (3 classes). Raises
    FileNotFoundError for missing files, ValueError for a bad option or inconsistent files.
    """
    import scipy.sparse as sp

    if labels_per_class not in LABELS_PER_CLASS:
        raise ValueError(f"labels_per_class must be one of {LABELS_PER_CLASS}, got {labels_per_class!r}")
    k = labels_per_class
    split_files = (f"train_{k}.npy", f"val_{k}.npy", f"test_{k}.npy")
    root = locate_files(data_dir, ["acm_heco", "acm"], ACM_FILES + split_files, "acm")
    log.info("reading acm from %s (split %d labels per class)", root, k)

    labels_raw = np.load(root / "labels.npy")
    labels = labels_raw.astype(np.int64).reshape(-1)
    if not np.array_equal(labels, labels_raw.reshape(-1)) or labels.min() < 0:
        raise ValueError(f"{root / 'labels.npy'}: labels must be non-negative integers")
    num_papers = len(labels)
    p_feat = np.asarray(sp.load_npz(root / "p_feat.npz").toarray(), dtype=np.float32)
    a_feat = np.asarray(sp.load_npz(root / "a_feat.npz").toarray(), dtype=np.float32)
    if p_feat.shape[0] != num_papers:
        raise ValueError(f"{root}: p_feat.npz has {p_feat.shape[0]} rows but labels.npy {num_papers}")
    pa = _pairs(root / "pa.txt")
    ps = _pairs(root / "ps.txt")
    if pa[:, 0].max(initial=-1) >= num_papers or ps[:, 0].max(initial=-1) >= num_papers:
        raise ValueError(f"{root}: pa.txt / ps.txt name papers beyond {num_papers - 1}")
    num_authors = max(a_feat.shape[0], int(pa[:, 1].max(initial=-1)) + 1)
    if a_feat.shape[0] != num_authors:
        raise ValueError(f"{root}: pa.txt names author {num_authors - 1} but a_feat.npz has "
                         f"{a_feat.shape[0]} rows")
    num_subjects = int(ps[:, 1].max(initial=-1)) + 1
    s_feat = one_hot(np.arange(num_subjects), num_subjects)

    split = np.full(num_papers, SPLIT_UNUSED, dtype=np.int64)
    for code, fname in zip((SPLIT_TRAIN, SPLIT_VAL, SPLIT_TEST), split_files):
        ids = np.load(root / fname).astype(np.int64).reshape(-1)
        if len(ids) and (ids.min() < 0 or ids.max() >= num_papers):
            raise ValueError(f"{root / fname}: paper ids outside 0..{num_papers - 1}")
        if (split[ids] != SPLIT_UNUSED).any():
            raise ValueError(f"{root / fname}: overlaps an earlier split")
        split[ids] = code

    feat_width = p_feat.shape[1]
    schema = GraphSchema(
        (NodeType("paper", (FeatureSpec("feat", "float32", (feat_width,)),
                            FeatureSpec("label", "int64"), FeatureSpec("split", "int64"))),
         NodeType("author", (FeatureSpec("feat", "float32", (a_feat.shape[1],)),)),
         NodeType("subject", (FeatureSpec("feat", "float32", (num_subjects,)),))),
        tuple(EdgeType(*et, out_adjacency=True) for et in (WRITTEN_BY, WRITES, ABOUT, HAS)))
    arrays = GraphArrays(
        schema,
        nodes={"paper": np.arange(num_papers, dtype=np.int64),
               "author": np.arange(num_authors, dtype=np.int64),
               "subject": np.arange(num_subjects, dtype=np.int64)},
        node_features={"paper": {"feat": p_feat, "label": labels, "split": split},
                       "author": {"feat": a_feat}, "subject": {"feat": s_feat}},
        edges={WRITTEN_BY: (pa[:, 0], pa[:, 1]), WRITES: (pa[:, 1], pa[:, 0]),
               ABOUT: (ps[:, 0], ps[:, 1]), HAS: (ps[:, 1], ps[:, 0])})
    ma, mi, auc = _HECO[k]
    reference = {"metric": "macro_f1", "value": ma, "scale": "percent",
                 "source": f"HeCo (Wang et al., KDD 2021), ACM, {k} labels per class",
                 "micro_f1": mi, "auc": auc}
    description = (
        f"HeCo's ACM: {num_papers} papers, {num_authors} authors, {num_subjects} subjects; "
        f"paper/author feat = the release's features as float32, subject feat = one-hot; "
        f"relations pa/ps stored in both directions; split = HeCo's {k}-per-class files.")
    return Dataset(name="acm", graph=arrays, task="node_classification", target_ntype="paper",
                   num_classes=int(labels.max()) + 1, reference=reference, description=description,
                   meta={"labels_per_class": k, "files": str(root)})
