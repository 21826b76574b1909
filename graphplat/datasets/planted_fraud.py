"""A small synthetic fraud graph with a planted heterophilous signal, for tests and benches.

One node type ``account`` with ``feat`` float32[8] (standard normal; fraud accounts have
``feat[7]`` shifted by ``own_signal``, so their own features carry a weak signal), ``label``
(1 = fraud) and a stratified 60/20/20 ``split``. Each relation ``r`` (``("account", "r<k>",
"account")``, stored both ways) gives every account ``degree`` partners: uniform ones, except
that with ``signal`` a fraud account picks its partners among *normal* accounts whose
``feat[k]`` exceeds 0.8 (camouflage: fraudsters link to benign accounts, which mean
aggregation over a homophilous view cannot use, but an ego/neighbor-separated model can).
"""
from __future__ import annotations

import numpy as np

from graphplat.datasets.base import Dataset, stratified_split, symmetrize
from graphplat.schema import EdgeType, FeatureSpec, GraphSchema, NodeType
from graphplat.storage.graph_arrays import GraphArrays

__all__ = ["planted_fraud"]


def planted_fraud(*, num_nodes: int = 2000, relations: int = 1, degree: int = 5,
                  fraud_fraction: float = 0.1, signal: bool = True, own_signal: float = 0.8,
                  seed: int = 0) -> Dataset:
    """Generate the graph described in the module docstring.

    Args:
        num_nodes: accounts (>= 50).
        relations: number of edge types between accounts (1..7).
        degree: partners each account picks per relation (>= 1).
        fraud_fraction: share of fraud accounts, in (0, 0.5].
        signal: plant the neighbor signal (False: every partner is uniform).
        own_signal: shift of fraud accounts' ``feat[7]``.
        seed: random seed (same arguments, same graph).

    Returns a binary node-classification :class:`Dataset`; ValueError for a bad argument.
    """
    if not (isinstance(num_nodes, int) and num_nodes >= 50):
        raise ValueError(f"num_nodes must be an int >= 50, got {num_nodes!r}")
    if not (isinstance(relations, int) and 1 <= relations <= 7):
        raise ValueError(f"relations must be an int in 1..7, got {relations!r}")
    if not (isinstance(degree, int) and degree >= 1):
        raise ValueError(f"degree must be an int >= 1, got {degree!r}")
    if not 0 < fraud_fraction <= 0.5:
        raise ValueError(f"fraud_fraction must be in (0, 0.5], got {fraud_fraction!r}")
    rng = np.random.default_rng(seed)
    n = num_nodes
    labels = np.zeros(n, np.int64)
    labels[rng.choice(n, max(2, int(round(n * fraud_fraction))), replace=False)] = 1
    feat = rng.standard_normal((n, 8)).astype(np.float32)
    feat[labels == 1, 7] += own_signal
    etypes, edges = [], {}
    for k in range(relations):
        src = np.repeat(np.arange(n, dtype=np.int64), degree)
        dst = rng.integers(0, n, len(src))
        if signal:
            pool = np.flatnonzero((labels == 0) & (feat[:, k] > 0.8))
            fraud_rows = labels[src] == 1
            dst[fraud_rows] = rng.choice(pool, int(fraud_rows.sum()))
        s, d = symmetrize(src, dst, n, self_loops=False)
        et = ("account", f"r{k}", "account")
        etypes.append(EdgeType(*et, reverse=True))
        edges[et] = (s, d)
    split = stratified_split(labels, (0.6, 0.2, 0.2), seed)
    schema = GraphSchema((NodeType("account", (FeatureSpec("feat", "float32", (8,)),
                                               FeatureSpec("label", "int64"),
                                               FeatureSpec("split", "int64"))),), tuple(etypes))
    arrays = GraphArrays(schema, nodes={"account": np.arange(n, dtype=np.int64)},
                         node_features={"account": {"feat": feat, "label": labels, "split": split}},
                         edges=edges)
    return Dataset(name="planted_fraud", graph=arrays, task="node_classification",
                   target_ntype="account", num_classes=2,
                   reference={"metric": "roc_auc", "value": None, "source": "synthetic"},
                   description=f"planted fraud graph: {n} accounts, {int(labels.sum())} fraud, "
                               f"{relations} relation(s), signal={signal}",
                   meta={"seed": seed, "signal": signal})
