"""A synthetic heterogeneous recommendation graph with planted communities (no files needed;
the embedded default dataset).

Node types ``user`` (``feat``, ``label`` = community, ``split``), ``item`` and ``shop``
(``feat``, ``community``). Edge types ``("user","click","item")`` and
``("user","buy","item")`` (weighted), ``("item","belongs","shop")`` and the reverses
``clicked-by``, ``bought-by`` and ``sells``. Task: classify the users' community (split
stratified 60/20/20 by default). Generation is vectorized and deterministic given ``seed``;
``homophily``, ``feature_signal`` and ``shop_noise`` set how hard the task is.
"""
from __future__ import annotations

import logging
import time
from typing import Sequence

import numpy as np

from graphplat.datasets.base import Dataset, check_fractions, stratified_split
from graphplat.schema import EdgeType, FeatureSpec, GraphSchema, NodeType
from graphplat.storage.graph_arrays import GraphArrays

log = logging.getLogger(__name__)

__all__ = ["generate_recsys", "CLICK", "CLICKED_BY", "BUY", "BOUGHT_BY",
           "BELONGS", "SELLS"]

CLICK = ("user", "click", "item")
CLICKED_BY = ("item", "clicked-by", "user")
BUY = ("user", "buy", "item")
BOUGHT_BY = ("item", "bought-by", "user")
BELONGS = ("item", "belongs", "shop")
SELLS = ("shop", "sells", "item")


def _balanced(rng: np.random.Generator, n: int, c: int) -> np.ndarray:
    """``n`` community ids, each community getting ``n // c`` or one more, in random order."""
    return rng.permutation(np.arange(n, dtype=np.int64) % c)


def _pick_in_community(rng: np.random.Generator, comm_of: np.ndarray, wanted: np.ndarray,
                       num_communities: int, skew: float = 1.0) -> np.ndarray:
    """For each entry of ``wanted`` (a community), a node of that community.

    Nodes are grouped by community in a random order; position ``floor(n_c * u^(1+skew))``
    is drawn, so with ``skew > 0`` earlier nodes are more popular (a long tail). A community
    without nodes falls back to a uniformly random node."""
    order = np.lexsort((rng.random(len(comm_of)), comm_of))  # random order within community
    counts = np.bincount(comm_of, minlength=num_communities)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    u = rng.random(len(wanted)) ** (1.0 + skew)
    n_c = counts[wanted]
    pos = starts[wanted] + np.minimum((u * n_c).astype(np.int64), np.maximum(n_c - 1, 0))
    out = order[np.minimum(pos, len(order) - 1)]
    empty = n_c == 0
    if empty.any():
        out[empty] = rng.integers(0, len(comm_of), int(empty.sum()))
    return out.astype(np.int64)


def generate_recsys(num_users: int = 5000, num_items: int = 3000, num_shops: int = 100,
                    num_communities: int = 8, num_clicks: int = 100_000, *,
                    feature_dim: int = 32, feature_signal: float = 1.0, homophily: float = 0.7,
                    buy_rate: float = 0.1, shop_noise: float = 0.05,
                    split: Sequence[float] = (0.6, 0.2, 0.2), seed: int = 0) -> Dataset:
    """Generate the synthetic user-item-shop graph (see the module docstring).

    Args:
        num_users, num_items, num_shops: node counts (each >= num_communities).
        num_communities: number of planted communities (= classes), >= 2.
        num_clicks: expected number of click events (>= num_users); repeated clicks on one
            pair collapse into one weighted edge, so there are somewhat fewer click edges.
        feature_dim: width of every node type's ``feat``.
        feature_signal: length of the community centroid added to N(0, I) noise; about 1
            leaves a features-only nearest-centroid classifier well below a graph-based one.
        homophily: probability that a click stays in the user's community (0..1).
        buy_rate: per-click purchase probability inside the community.
        shop_noise: probability that an item's shop is drawn from any community.
        split: train/val/test fractions of the users (stratified by community).
        seed: random seed; the same arguments and seed give an identical graph.

    Returns a node-classification :class:`Dataset` on ``user``. Raises ValueError on bad
    arguments.
    """
    for name, v, lo in (("num_users", num_users, 1), ("num_items", num_items, 1),
                        ("num_shops", num_shops, 1), ("num_communities", num_communities, 2),
                        ("num_clicks", num_clicks, 1), ("feature_dim", feature_dim, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    for name, v in (("num_users", num_users), ("num_items", num_items), ("num_shops", num_shops)):
        if v < num_communities:
            raise ValueError(f"{name} ({v}) must be >= num_communities ({num_communities})")
    if num_clicks < num_users:
        raise ValueError(f"num_clicks ({num_clicks}) must be >= num_users ({num_users}): "
                         "every user clicks at least once")
    for name, v in (("homophily", homophily), ("buy_rate", buy_rate), ("shop_noise", shop_noise)):
        if not (isinstance(v, (int, float)) and 0.0 <= float(v) <= 1.0):
            raise ValueError(f"{name} must be in [0, 1], got {v!r}")
    if not (isinstance(feature_signal, (int, float)) and feature_signal >= 0):
        raise ValueError(f"feature_signal must be a number >= 0, got {feature_signal!r}")
    check_fractions(split)
    t0 = time.perf_counter()
    C = int(num_communities)
    rng = np.random.default_rng(seed)

    user_comm = _balanced(rng, num_users, C)
    item_comm = _balanced(rng, num_items, C)
    shop_comm = _balanced(rng, num_shops, C)

    # item -> shop: a shop of the item's community, or any shop with probability shop_noise.
    item_shop = _pick_in_community(rng, shop_comm, item_comm, C, skew=0.0)
    noisy = rng.random(num_items) < shop_noise
    item_shop[noisy] = rng.integers(0, num_shops, int(noisy.sum()))

    # Click events: heavy-tailed activity, homophilous community choice, long-tailed items.
    extra = max(num_clicks / num_users - 1.0, 0.0)
    rate = rng.gamma(2.0, extra / 2.0, num_users) if extra > 0 else np.zeros(num_users)
    per_user = 1 + rng.poisson(rate)
    ev_user = np.repeat(np.arange(num_users, dtype=np.int64), per_user)
    stay = rng.random(len(ev_user)) < homophily
    ev_comm = np.where(stay, user_comm[ev_user], rng.integers(0, C, len(ev_user)))
    ev_item = _pick_in_community(rng, item_comm, ev_comm, C, skew=1.0)
    keys, clicks = np.unique(ev_user * np.int64(num_items) + ev_item, return_counts=True)
    c_user, c_item = keys // num_items, keys % num_items
    c_weight = clicks.astype(np.float32)

    # Buys among clicked pairs.
    same = user_comm[c_user] == item_comm[c_item]
    p_buy = (1.0 - (1.0 - buy_rate) ** clicks) * np.where(same, 1.0, 0.3)
    bought = rng.random(len(keys)) < p_buy
    b_user, b_item = c_user[bought], c_item[bought]
    b_weight = (1 + rng.poisson(0.3, int(bought.sum()))).astype(np.float32)

    # Weak community signal + noise.
    centroids = rng.normal(size=(C, feature_dim))
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)

    def features(comm: np.ndarray) -> np.ndarray:
        noise = rng.normal(size=(len(comm), feature_dim))
        return (feature_signal * centroids[comm] + noise).astype(np.float32)

    user_feat, item_feat, shop_feat = features(user_comm), features(item_comm), features(shop_comm)
    user_split = stratified_split(user_comm, split, seed)

    dim = (feature_dim,)
    schema = GraphSchema(
        (NodeType("user", (FeatureSpec("feat", "float32", dim), FeatureSpec("label", "int64"),
                           FeatureSpec("split", "int64"))),
         NodeType("item", (FeatureSpec("feat", "float32", dim), FeatureSpec("community", "int64"))),
         NodeType("shop", (FeatureSpec("feat", "float32", dim), FeatureSpec("community", "int64")))),
        (EdgeType(*CLICK, weighted=True, out_adjacency=True),
         EdgeType(*CLICKED_BY, weighted=True, out_adjacency=True),
         EdgeType(*BUY, weighted=True, out_adjacency=True),
         EdgeType(*BOUGHT_BY, weighted=True, out_adjacency=True),
         EdgeType(*BELONGS, out_adjacency=True),
         EdgeType(*SELLS, out_adjacency=True)))
    items = np.arange(num_items, dtype=np.int64)
    arrays = GraphArrays(
        schema,
        nodes={"user": np.arange(num_users, dtype=np.int64), "item": items,
               "shop": np.arange(num_shops, dtype=np.int64)},
        node_features={"user": {"feat": user_feat, "label": user_comm, "split": user_split},
                       "item": {"feat": item_feat, "community": item_comm},
                       "shop": {"feat": shop_feat, "community": shop_comm}},
        edges={CLICK: (c_user, c_item), CLICKED_BY: (c_item, c_user),
               BUY: (b_user, b_item), BOUGHT_BY: (b_item, b_user),
               BELONGS: (items, item_shop), SELLS: (item_shop, items)},
        edge_weights={CLICK: c_weight, CLICKED_BY: c_weight.copy(),
                      BUY: b_weight, BOUGHT_BY: b_weight.copy()})
    options = dict(num_users=num_users, num_items=num_items, num_shops=num_shops,
                   num_communities=C, num_clicks=num_clicks, feature_dim=feature_dim,
                   feature_signal=feature_signal, homophily=homophily, buy_rate=buy_rate,
                   shop_noise=shop_noise, split=tuple(split), seed=seed)
    log.info("synthetic recsys: %d users, %d items, %d shops, %d click events -> %d click "
             "edges, %d buy edges in %.2f s", num_users, num_items, num_shops, len(ev_user),
             len(keys), len(b_user), time.perf_counter() - t0)
    description = (
        f"Synthetic recommendation graph (seed {seed}): {num_users} users, {num_items} items, "
        f"{num_shops} shops in {C} planted communities; {len(ev_user)} click events "
        f"({homophily:.0%} inside the user's community) -> {len(keys)} weighted click edges, "
        f"{len(b_user)} weighted buy edges; feat = {feature_signal} x community centroid + "
        f"N(0, I) in {feature_dim} dims. Task: the user's community.")
    return Dataset(name="synthetic", graph=arrays, task="node_classification", target_ntype="user",
                   num_classes=C, description=description,
                   reference={"metric": "accuracy", "value": None,
                              "source": "none: synthetic graph; compare a GNN with a "
                                        "features-only MLP on the same seed"},
                   meta={"options": options, "click_events": int(len(ev_user))})

