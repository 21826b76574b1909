"""Gradient-boosted trees on own + neighbor-aggregated features: the fraud baseline GADBench
(NeurIPS 2023) found hard to beat. Needs ``lightgbm`` (the ``gbdt`` extra).

Features of a node: its own ``feature`` row, then per relation into its type the mean and the
max of its in-neighbors' rows and its in-degree (whole neighborhoods, from the arrays).
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from graphplat.storage.graph_arrays import GraphArrays

__all__ = ["neighbor_features", "fit_gbdt"]


def neighbor_features(arrays: GraphArrays, ntype: str, feature: str = "feat") -> np.ndarray:
    """float32 ``(N, d * (1 + 2R) + R)`` over the nodes of ``ntype`` in ``arrays.nodes``
    order (ids must be ``0..N-1`` positions), for the R relations ``ntype -> ntype``."""
    import scipy.sparse as sp

    x = np.asarray(arrays.node_features[ntype][feature], dtype=np.float32)
    n = len(x)
    ids = np.asarray(arrays.nodes[ntype])
    if not np.array_equal(ids, np.arange(n)):
        raise ValueError(f"neighbor_features needs {ntype!r} ids 0..N-1 in order")
    parts = [x]
    for (s, _, d), (src, dst) in sorted(arrays.edges.items()):
        if s != ntype or d != ntype:
            continue
        adj = sp.csr_matrix((np.ones(len(src), np.float32), (dst, src)), shape=(n, n))
        deg = np.asarray(adj.sum(1)).ravel()
        parts.append(np.asarray(adj @ x) / np.maximum(deg, 1)[:, None])
        mx = np.full_like(x, -np.inf)
        np.maximum.at(mx, dst, x[src])  # per-edge scatter: no per-node Python loop
        parts.append(np.where(np.isfinite(mx), mx, 0.0))
        parts.append(deg[:, None])
    return np.concatenate(parts, 1).astype(np.float32)


def fit_gbdt(x: np.ndarray, y: np.ndarray, split: np.ndarray, *, seed: int = 0,
             num_rounds: int = 500, learning_rate: float = 0.05, num_leaves: int = 31) -> Dict[str, np.ndarray]:
    """Fit a binary LightGBM classifier on the ``split == 0`` rows with early stopping on
    ``split == 1``; returns ``{"val": p, "test": p}``, the class-1 probabilities of the
    ``split == 1`` / ``split == 2`` rows. ImportError naming the extra when lightgbm is missing."""
    try:
        import lightgbm as lgb
    except ImportError as e:  # pragma: no cover - lightgbm is in the dev and gbdt extras
        raise ImportError("the GBDT baseline needs lightgbm: pip install 'graphplat[gbdt]'") from e
    tr, va = split == 0, split == 1
    params = {"objective": "binary", "learning_rate": learning_rate, "num_leaves": num_leaves,
              "bagging_fraction": 0.8, "bagging_freq": 1, "feature_fraction": 0.8, "seed": seed,
              "num_threads": 1, "verbose": -1, "metric": "auc"}
    train_set = lgb.Dataset(x[tr], y[tr])
    booster = lgb.train(params, train_set, num_boost_round=num_rounds,
                        valid_sets=[lgb.Dataset(x[va], y[va], reference=train_set)],
                        callbacks=[lgb.early_stopping(50, verbose=False)])
    out = {}
    for name, code in (("val", 1), ("test", 2)):
        rows = split == code
        out[name] = booster.predict(x[rows], num_iteration=booster.best_iteration)
    return out
