"""Tolokers (Platonov et al., ICLR 2023; Toloka crowd workers, 1 = banned for fraud) for binary
anti-spam node classification.

Input: ``tolokers.npz`` of yandex-research/heterophilous-graphs (``node_features`` float32
(N, 10), ``node_labels`` int64, ``edges`` int64 (E, 2) with each undirected edge stored once,
``train_masks`` / ``val_masks`` / ``test_masks`` bool (10, N)).

What the reader builds: one node type ``worker`` (ids ``0..N-1``) with ``feat`` float32[10],
``label`` and ``split`` (0 train, 1 val, 2 test, from fixed split ``split_index`` of the 10);
one edge type ``("worker", "coworker", "worker")`` holding both directions of every edge
(519,000 pairs -> 1,038,000 directed edges), deduplicated, self loops dropped.
"""
from __future__ import annotations

import logging
from typing import Optional

import numpy as np

from graphplat.datasets.base import Dataset, PathLike, locate_files, symmetrize
from graphplat.schema import EdgeType, FeatureSpec, GraphSchema, NodeType
from graphplat.storage.graph_arrays import GraphArrays

log = logging.getLogger(__name__)

__all__ = ["load_tolokers", "TOLOKERS_SPLITS"]

#: Number of fixed splits in the file.
TOLOKERS_SPLITS = 10
_KEYS = ("node_features", "node_labels", "edges", "train_masks", "val_masks", "test_masks")


def load_tolokers(data_dir: Optional[PathLike] = None, *, split_index: int = 0) -> Dataset:
    """Read Tolokers for binary banned-worker classification.

    Args:
        data_dir: the datasets root (its ``tolokers/`` subdirectory is used) or the directory
            holding ``tolokers.npz``; default :func:`~graphplat.datasets.base.find_data_dir`.
        split_index: which of the file's 10 fixed train/val/test splits (0..9) fills ``split``.

    Returns a node-classification :class:`Dataset` on ``worker`` (2 classes). Raises
    FileNotFoundError for a missing file, ValueError for a bad ``split_index`` or a malformed
    file.
    """
    if isinstance(split_index, bool) or not isinstance(split_index, int) \
            or not 0 <= split_index < TOLOKERS_SPLITS:
        raise ValueError(f"split_index must be an int in 0..{TOLOKERS_SPLITS - 1}, got {split_index!r}")
    path = locate_files(data_dir, ("tolokers",), ("tolokers.npz",), "tolokers") / "tolokers.npz"
    log.info("reading tolokers (split %d) from %s", split_index, path)
    with np.load(path) as z:
        missing = [k for k in _KEYS if k not in z.files]
        if missing:
            raise ValueError(f"{path}: missing arrays {missing}; has {sorted(z.files)}")
        feat = np.asarray(z["node_features"], dtype=np.float32)
        labels = np.asarray(z["node_labels"]).astype(np.int64)
        edges = np.asarray(z["edges"], dtype=np.int64)
        masks = [np.asarray(z[k], dtype=bool) for k in ("train_masks", "val_masks", "test_masks")]
    n = len(labels)
    if feat.ndim != 2 or feat.shape[0] != n or edges.ndim != 2 or edges.shape[1] != 2:
        raise ValueError(f"{path}: {n} labels, features {feat.shape}, edges {edges.shape} (want (E, 2))")
    if len(edges) and (edges.min() < 0 or edges.max() >= n):
        raise ValueError(f"{path}: edge endpoints outside 0..{n - 1}")
    if not set(np.unique(labels).tolist()) <= {0, 1}:
        raise ValueError(f"{path}: labels must be 0/1, got {np.unique(labels).tolist()}")
    for m in masks:
        if m.shape != (TOLOKERS_SPLITS, n):
            raise ValueError(f"{path}: split masks must be ({TOLOKERS_SPLITS}, {n}), got {m.shape}")
    split = np.full(n, -1, np.int64)
    for code, m in enumerate(masks):
        row = m[split_index]
        if (split[row] != -1).any():
            raise ValueError(f"{path}: split {split_index} puts a node in two of train/val/test")
        split[row] = code
    src, dst = symmetrize(edges[:, 0], edges[:, 1], n, self_loops=False)
    etype = ("worker", "coworker", "worker")
    schema = GraphSchema(
        (NodeType("worker", (FeatureSpec("feat", "float32", (feat.shape[1],)),
                             FeatureSpec("label", "int64"), FeatureSpec("split", "int64"))),),
        (EdgeType(*etype, reverse=True),))
    arrays = GraphArrays(schema, nodes={"worker": np.arange(n, dtype=np.int64)},
                         node_features={"worker": {"feat": feat, "label": labels, "split": split}},
                         edges={etype: (src, dst)})
    reference = {"metric": "roc_auc", "value": 0.8370, "scale": "fraction",
                 "source": "GAT, Platonov et al. (ICLR 2023), mean over the 10 splits",
                 "others": {"resnet_features_only": 0.7294, "gcn": 0.8364, "graphsage": 0.8243,
                            "gat_sep": 0.8378}}
    description = (f"Tolokers: {n} workers, {int(labels.sum())} banned; {len(src)} directed coworker "
                   f"edges (both directions of {len(edges)} pairs); feat = {feat.shape[1]} features; "
                   f"fixed split {split_index} of {TOLOKERS_SPLITS}.")
    return Dataset(name="tolokers", graph=arrays, task="node_classification", target_ntype="worker",
                   num_classes=2, reference=reference, description=description,
                   meta={"split_index": split_index, "file": str(path)})
