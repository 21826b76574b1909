"""Planetoid citation graphs (Cora, Citeseer) from the ``ind.{name}.*`` files of
Yang et al. (2016), with the standard public split.

Builds what PyG's ``Planetoid`` and Kipf's ``gcn/utils.py`` build: one node type ``paper``
with ``feat`` (raw bag-of-words; ``normalize=True`` row-normalizes), ``label`` and
``split`` (20 per class train, 500 val, 1,000 test, else -1), and one edge type
``("paper", "cites", "paper")`` holding both directions of every pair, deduplicated, self
loops dropped (``self_loops=True`` keeps them; ``add_self_loops=True`` gives every node one).
Citeseer's 15 isolated test-range nodes get zero features and label 0, are in no split, and
are listed in ``Dataset.meta["featureless_nodes"]``.
"""
from __future__ import annotations

import logging
import pickle
import warnings
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
    symmetrize,
)
from graphplat.schema import EdgeType, FeatureSpec, GraphSchema, NodeType
from graphplat.storage.graph_arrays import GraphArrays

log = logging.getLogger(__name__)

__all__ = ["load_planetoid", "load_cora", "load_citeseer", "PLANETOID_NAMES", "PLANETOID_FILES"]

PLANETOID_NAMES = ("cora", "citeseer")
PLANETOID_FILES = ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index")
CITES = ("paper", "cites", "paper")
NUM_VAL = 500

_REFERENCE = {
    "cora": {"metric": "accuracy", "value": 81.5, "scale": "percent",
             "source": "GCN (Kipf & Welling, ICLR 2017), Planetoid public split, test accuracy",
             "others": {"GAT (Velickovic et al., ICLR 2018)": 83.0,
                        "Planetoid (Yang et al., ICML 2016)": 75.7}},
    "citeseer": {"metric": "accuracy", "value": 70.3, "scale": "percent",
                 "source": "GCN (Kipf & Welling, ICLR 2017), Planetoid public split, test accuracy",
                 "others": {"GAT (Velickovic et al., ICLR 2018)": 72.5}},
}


def _read_pickle(path: Path):
    # The pickles name scipy's old ``scipy.sparse.csr`` module, which warns on import.
    with open(path, "rb") as f, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return pickle.load(f, encoding="latin1")


def _dense(m) -> np.ndarray:
    return np.asarray(m.toarray() if hasattr(m, "toarray") else m, dtype=np.float32)


def load_planetoid(name: str, data_dir: Optional[PathLike] = None, *, self_loops: bool = False,
                   normalize: bool = False, add_self_loops: bool = False) -> Dataset:
    """Read a Planetoid dataset (``"cora"`` or ``"citeseer"``) with its public split.

    Args:
        name: ``"cora"`` or ``"citeseer"``.
        data_dir: the datasets root (its ``{name}/`` subdirectory is used) or the directory
            holding the ``ind.{name}.*`` files; default :func:`find_data_dir`.
        self_loops: keep the self loops present in the raw graph (default: drop them, as
            PyG does).
        normalize: row-normalise the features (Kipf's ``preprocess_features``); default
            keeps the raw binary values.
        add_self_loops: give every node exactly one self loop (``A + I``; implies the raw
            ones are kept once).

    Returns a node-classification :class:`Dataset` on node type ``paper`` (see the module
    docstring for every choice). Raises FileNotFoundError for missing files, ValueError for
    an unknown name or inconsistent files.
    """
    if name not in PLANETOID_NAMES:
        raise ValueError(f"unknown Planetoid dataset {name!r}; known: {', '.join(PLANETOID_NAMES)}")
    files = [f"ind.{name}.{k}" for k in PLANETOID_FILES]
    root = locate_files(data_dir, [name], files, name)
    log.info("reading %s from %s", name, root)
    raw = {k: _read_pickle(root / f"ind.{name}.{k}") for k in PLANETOID_FILES if k != "test.index"}
    test_index = np.loadtxt(root / f"ind.{name}.test.index", dtype=np.int64).reshape(-1)
    x, y, tx, ty, allx, ally = (raw[k] for k in ("x", "y", "tx", "ty", "allx", "ally"))
    graph = raw["graph"]

    n_train, n_all = y.shape[0], allx.shape[0]
    num_classes = ally.shape[1]
    if len(test_index) != tx.shape[0] or ty.shape[0] != tx.shape[0]:
        raise ValueError(f"{root}: test.index has {len(test_index)} ids but tx/ty have "
                         f"{tx.shape[0]}/{ty.shape[0]} rows")
    if len(np.unique(test_index)) != len(test_index) or test_index.min() < n_all:
        raise ValueError(f"{root}: test.index must hold distinct ids >= len(allx) = {n_all}")
    num_nodes = int(max(n_all + (test_index.max() - test_index.min() + 1), len(graph)))
    if n_train + NUM_VAL > n_all:
        raise ValueError(f"{root}: allx has {n_all} rows, fewer than {n_train} train + {NUM_VAL} val")

    feat = np.zeros((num_nodes, allx.shape[1]), dtype=np.float32)
    feat[:n_all] = _dense(allx)
    feat[test_index] = _dense(tx)
    onehot = np.zeros((num_nodes, num_classes), dtype=np.float32)
    onehot[:n_all] = np.asarray(ally, dtype=np.float32)
    onehot[test_index] = np.asarray(ty, dtype=np.float32)
    labels = onehot.argmax(1).astype(np.int64)  # all-zero rows -> class 0, as in PyG

    known = np.zeros(num_nodes, dtype=bool)
    known[:n_all] = True
    known[test_index] = True
    featureless = np.flatnonzero(~known)
    if len(featureless):
        log.info("%s: %d nodes in the test-index range have no features or labels (zero rows, "
                 "label 0, split -1, as in PyG)", name, len(featureless))
    if normalize:
        rs = feat.sum(1, keepdims=True)
        np.divide(feat, rs, out=feat, where=rs > 0)

    split = np.full(num_nodes, SPLIT_UNUSED, dtype=np.int64)
    split[:n_train] = SPLIT_TRAIN
    split[n_train:n_train + NUM_VAL] = SPLIT_VAL
    split[np.sort(test_index)] = SPLIT_TEST

    keys = np.fromiter((k for k in graph), dtype=np.int64, count=len(graph))
    lens = np.fromiter((len(v) for v in graph.values()), dtype=np.int64, count=len(graph))
    src = np.repeat(keys, lens)
    dst = np.fromiter((u for v in graph.values() for u in v), dtype=np.int64, count=int(lens.sum()))
    if len(src) and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= num_nodes):
        raise ValueError(f"{root}: ind.{name}.graph names nodes outside 0..{num_nodes - 1}")
    raw_self_loops = len(np.unique(src[src == dst]))
    if add_self_loops:  # every node once; symmetrize deduplicates the raw loops
        loops = np.arange(num_nodes, dtype=np.int64)
        src, dst = np.concatenate([src, loops]), np.concatenate([dst, loops])
    esrc, edst = symmetrize(src, dst, num_nodes, self_loops=self_loops or add_self_loops)

    schema = GraphSchema(
        (NodeType("paper", (FeatureSpec("feat", "float32", (feat.shape[1],)),
                            FeatureSpec("label", "int64"), FeatureSpec("split", "int64"))),),
        (EdgeType(*CITES, out_adjacency=True),))
    arrays = GraphArrays(schema, nodes={"paper": np.arange(num_nodes, dtype=np.int64)},
                         node_features={"paper": {"feat": feat, "label": labels, "split": split}},
                         edges={CITES: (esrc, edst)})
    description = (
        f"Planetoid {name} (Yang et al. 2016) with the public split: {num_nodes} papers, "
        f"{len(esrc)} directed edges {CITES} (both directions of each citation, deduplicated, "
        f"self loops {'on every node' if add_self_loops else 'kept' if self_loops else 'dropped'}); feat = raw bag-of-words"
        f"{' (row-normalised)' if normalize else ''}; train = first {n_train} nodes "
        f"(20 per class), val = next {NUM_VAL}, test = test.index ({len(test_index)})."
        + (f" {len(featureless)} featureless test-range nodes get zero rows, label 0, split -1 "
           f"(PyG's behaviour)." if len(featureless) else ""))
    return Dataset(
        name=name, graph=arrays, task="node_classification", target_ntype="paper",
        num_classes=int(num_classes), reference=dict(_REFERENCE[name]), description=description,
        meta={"featureless_nodes": featureless, "raw_self_loops": raw_self_loops,
              "self_loops": self_loops, "add_self_loops": add_self_loops, "normalize": normalize,
              "files": str(root)})


def load_cora(data_dir: Optional[PathLike] = None, *, self_loops: bool = False,
              normalize: bool = False, add_self_loops: bool = False) -> Dataset:
    """Cora with the Planetoid public split (see :func:`load_planetoid`)."""
    return load_planetoid("cora", data_dir, self_loops=self_loops, normalize=normalize,
                          add_self_loops=add_self_loops)


def load_citeseer(data_dir: Optional[PathLike] = None, *, self_loops: bool = False,
                  normalize: bool = False, add_self_loops: bool = False) -> Dataset:
    """Citeseer with the Planetoid public split (see :func:`load_planetoid`)."""
    return load_planetoid("citeseer", data_dir, self_loops=self_loops, normalize=normalize,
                          add_self_loops=add_self_loops)
