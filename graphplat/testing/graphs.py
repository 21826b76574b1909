"""Small random graphs shared by tests (and usable by anyone testing a GraphService)."""
from __future__ import annotations

import numpy as np

from graphplat.schema import GraphSchema
from graphplat.storage.graph_arrays import GraphArrays

CLICK = ("user", "click", "item")
CLICKED = ("item", "clicked-by", "user")
FOLLOWS = ("user", "follows", "user")
CLICK_SCHEMA = GraphSchema.from_dict({
    "node_types": {"user": {"features": {"feat": "float32[4]", "label": "int64"}},
                   "item": {"features": {"feat": "float32[3]"}}},
    "edge_types": [{"src": "user", "relation": "click", "dst": "item", "weighted": True},
                   ["item", "clicked-by", "user"], ["user", "follows", "user"]]})


def click_graph(seed: int = 0, users: int = 120, items: int = 80, clicks: int = 700,
                follows: int = 400) -> GraphArrays:
    """A user/item graph of :data:`CLICK_SCHEMA`: random ids (not 0..n-1, some item ids
    negative), weighted clicks with their exact reverses, random follows, features and labels.
    Returns the GraphArrays (``.to_local(partitions=k)`` or write it as a store)."""
    rng = np.random.default_rng(seed)
    uid = rng.choice(10**9, users, replace=False).astype(np.int64)
    iid = rng.choice(10**9, items, replace=False).astype(np.int64) - 5 * 10**8
    cu, ci = uid[rng.integers(0, users, clicks)], iid[rng.integers(0, items, clicks)]
    fs, fd = uid[rng.integers(0, users, follows)], uid[rng.integers(0, users, follows)]
    return GraphArrays(
        CLICK_SCHEMA, {"user": uid, "item": iid},
        {"user": {"feat": rng.standard_normal((users, 4)).astype(np.float32),
                  "label": rng.integers(0, 3, users)},
         "item": {"feat": rng.standard_normal((items, 3)).astype(np.float32)}},
        {CLICK: (cu, ci), CLICKED: (ci, cu), FOLLOWS: (fs, fd)},
        edge_weights={CLICK: rng.random(clicks).astype(np.float32) + 0.1})


def click_reads(h, users, items) -> list:
    """Reads of a :func:`click_graph` GraphService whose answers must not depend on where
    they are answered (sampling with a seed, a full neighborhood, features, degrees, lookups)."""
    return [h.sample_neighbors(FOLLOWS, users, 3, seed=4), h.sample_neighbors(CLICK, items, -1, strategy="full"),
            h.node_features("user", users), h.degrees(FOLLOWS, users), h.lookup("user", users)]
