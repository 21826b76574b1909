"""YelpChi review-spam graph (Rayana & Akoglu 2015; graph construction of CARE-GNN, Dou et al.
2020) for binary fraud node classification.

Input: ``YelpChi.zip`` holding ``YelpChi.mat``, or ``YelpChi.mat`` itself. Two key layouts are
understood:

* TAM's single-relation file (the shared ``yelpchi_rur/`` copy): ``Network`` (the R-U-R
  adjacency: reviews posted by the same user), ``Label``, ``Attributes``. Only
  ``relation="rur"`` exists there.
* CARE-GNN's full file: ``net_rur``, ``net_rtr``, ``net_rsr``, ``homo``, ``features``,
  ``label``; ``relation`` picks ``"rur"`` (default), ``"rtr"``, ``"rsr"`` or ``"homo"``.

What the reader builds: one node type ``review`` (ids ``0..N-1``, rows of the matrices) with
``feat`` float32[32] (the handcrafted features, cast from float64), ``label`` (1 spam, 0
legitimate) and ``split``; one edge type ``("review", relation, "review")`` holding both
directions of every adjacency entry, deduplicated, self loops dropped (the shared file has
none: 49,315 pairs -> 98,630 directed edges).

Split: the files carry none. CARE-GNN draws a stratified 40 % train / 60 % test split with
scikit-learn (``random_state=2``); later work (PC-GNN and others) splits the rest again into
validation and test. This reader draws a seeded stratified 40 / 20 / 40 split
(``train_fraction`` / ``val_fraction`` / ``test_fraction``, ``seed``) with numpy, so the node
sets differ from scikit-learn's, while the class proportions of every split match the graph's.
"""
from __future__ import annotations

import io
import logging
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np

from graphplat.datasets.base import Dataset, data_root, stratified_split, symmetrize
from graphplat.schema import EdgeType, FeatureSpec, GraphSchema, NodeType
from graphplat.storage.graph_arrays import GraphArrays
from graphplat.typing import PathLike

log = logging.getLogger(__name__)

__all__ = ["load_yelpchi", "YELPCHI_RELATIONS"]

YELPCHI_RELATIONS = ("rur", "rtr", "rsr", "homo")
_SUBDIRS = ("yelpchi_rur", "yelpchi", "YelpChi")
_FILES = ("YelpChi.zip", "YelpChi.mat")


def _locate(data_dir: Optional[PathLike]) -> Path:
    root = data_root(data_dir, "yelpchi", f"{' or '.join(_FILES)} in {_SUBDIRS[0]}/")
    tried = []
    for d in [root / s for s in _SUBDIRS] + [root]:
        for f in _FILES:
            if (d / f).is_file():
                return d / f
        tried.append(str(d) if d.is_dir() else f"{d} (no such directory)")
    raise FileNotFoundError(f"dataset 'yelpchi' expects {' or '.join(_FILES)} (a MATLAB file with "
                            f"Network/Label/Attributes or CARE-GNN's net_*/features/label); "
                            f"looked in " + "; ".join(tried))


def _load_mat(path: Path) -> dict:
    import scipy.io as sio

    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.lower().endswith(".mat")]
            if not names:
                raise ValueError(f"{path}: no .mat file inside (members: {z.namelist()})")
            data = z.read(names[0])
        return sio.loadmat(io.BytesIO(data))
    return sio.loadmat(str(path))


def load_yelpchi(data_dir: Optional[PathLike] = None, *, relation: str = "rur",
                 train_fraction: float = 0.4, val_fraction: float = 0.2,
                 test_fraction: float = 0.4, seed: int = 0) -> Dataset:
    """Read YelpChi for binary spam-review classification.

    Args:
        data_dir: the datasets root (its ``yelpchi_rur/`` subdirectory is used) or the
            directory holding ``YelpChi.zip`` / ``YelpChi.mat``; default :func:`find_data_dir`.
        relation: ``"rur"`` (default), ``"rtr"``, ``"rsr"`` or ``"homo"`` (the last three need
            CARE-GNN's full file).
        train_fraction, val_fraction, test_fraction: the stratified split (sum <= 1; nodes
            beyond it are left unused).
        seed: seed of the split.

    Returns a node-classification :class:`Dataset` on ``review`` (2 classes). Raises
    FileNotFoundError for a missing file, ValueError for a bad option or a malformed file.
    """
    if relation not in YELPCHI_RELATIONS:
        raise ValueError(f"relation must be one of {', '.join(YELPCHI_RELATIONS)}, got {relation!r}")
    fractions = (train_fraction, val_fraction, test_fraction)
    stratified_split(np.zeros(1, np.int64), fractions, seed)  # validates the fractions early
    path = _locate(data_dir)
    log.info("reading yelpchi (%s) from %s", relation, path)
    m = _load_mat(path)
    if "Network" in m:
        layout = "tam"
        if relation != "rur":
            raise ValueError(f"{path} is the single-relation (R-U-R) file with key 'Network'; "
                             f"relation {relation!r} needs CARE-GNN's full YelpChi.mat")
        adj_key, label_key, feat_key = "Network", "Label", "Attributes"
    elif "features" in m and "label" in m:
        layout = "care-gnn"
        adj_key = "homo" if relation == "homo" else f"net_{relation}"
        label_key, feat_key = "label", "features"
    else:
        keys = sorted(k for k in m if not k.startswith("__"))
        raise ValueError(f"{path}: unrecognised keys {keys}; expected Network/Label/Attributes "
                         "or net_rur/net_rtr/net_rsr/homo/features/label")
    if adj_key not in m:
        raise ValueError(f"{path}: no adjacency {adj_key!r} for relation {relation!r}")

    import scipy.sparse as sp

    feats = m[feat_key]
    feat = np.asarray(feats.toarray() if sp.issparse(feats) else feats, dtype=np.float32)
    labels = np.asarray(m[label_key]).reshape(-1).astype(np.int64)
    n = len(labels)
    adj = sp.coo_matrix(m[adj_key])
    if feat.shape[0] != n or adj.shape != (n, n):
        raise ValueError(f"{path}: {n} labels but features {feat.shape} and adjacency {adj.shape}")
    if not set(np.unique(labels).tolist()) <= {0, 1}:
        raise ValueError(f"{path}: labels must be 0/1, got {np.unique(labels).tolist()}")
    nz = adj.data != 0
    rows, cols = adj.row[nz].astype(np.int64), adj.col[nz].astype(np.int64)
    self_loops = int((rows == cols).sum())
    src, dst = symmetrize(rows, cols, n, self_loops=False)
    if self_loops:
        log.info("yelpchi: dropped %d self loops", self_loops)

    split = stratified_split(labels, fractions, seed)
    etype = ("review", relation, "review")
    schema = GraphSchema(
        (NodeType("review", (FeatureSpec("feat", "float32", (feat.shape[1],)),
                             FeatureSpec("label", "int64"), FeatureSpec("split", "int64"))),),
        (EdgeType(*etype, out_adjacency=True),))
    arrays = GraphArrays(schema, nodes={"review": np.arange(n, dtype=np.int64)},
                         node_features={"review": {"feat": feat, "label": labels, "split": split}},
                         edges={etype: (src, dst)})
    if layout == "tam":
        reference = {"metric": "roc_auc", "value": 0.5643, "scale": "fraction",
                     "source": "TAM (Qiao & Pang, NeurIPS 2023), unsupervised, this R-U-R subset",
                     "auprc": 0.0778,
                     "note": "no supervised result is published for this subset; CARE-GNN's "
                             "AUC 0.7570 is for the full multi-relation YelpChi and does not apply"}
    else:
        reference = {"metric": "auc", "value": 0.7570, "scale": "fraction",
                     "source": "CARE-GNN (Dou et al., CIKM 2020), full YelpChi, all relations",
                     "note": "CARE-GNN uses all three relations and a 40/60 split"}
    description = (
        f"YelpChi ({'TAM R-U-R subset' if layout == 'tam' else 'CARE-GNN file'}): {n} reviews, "
        f"{int(labels.sum())} spam; {len(src)} directed {relation} edges (both directions); "
        f"feat = {feat.shape[1]} handcrafted features; stratified split "
        f"{train_fraction}/{val_fraction}/{test_fraction} (seed {seed}).")
    return Dataset(name="yelpchi", graph=arrays, task="node_classification", target_ntype="review",
                   num_classes=2, reference=reference, description=description,
                   meta={"layout": layout, "relation": relation, "seed": seed,
                         "fractions": fractions, "file": str(path), "raw_self_loops": self_loops})
