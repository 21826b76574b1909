"""Top-K recommendation from exported embeddings: exact inner product over every item,
optionally leaving out the items a user already has edges to in the graph.

Scores are ``item_emb @ user_emb`` in float32 (numpy matmul over all items, chunked over
users). The top ``k`` per user are found with ``np.argpartition`` and sorted by score,
highest first; **ties are ordered by the lower item id**, also at the cut-off (an item tied
with the k-th score is returned before a tied item with a higher id). Items are kept sorted by
id internally, so "lower position" means "lower id".

Seen items: for every configured edge type ``user -> item`` (``--seen-etype``), the user's
full out-neighborhood is read from the graph with ``sample_neighbors(strategy="full")`` on
the relation the user writes to, so an ``add_edges`` on it counts from the next request:
``direction="out"`` on the type itself when its out-adjacency is stored, or
``direction="in"`` on a reverse type the schema keeps in sync with it. Another ``item -> user``
type is never read in its place (``add_edges`` on the named type would not reach it and the
answer would go stale); such a configuration is refused. An ``item -> user`` type may also be
named directly. A seen item gets the score ``-inf`` before the top-K, so it is never returned;
a user with fewer than ``k`` unseen items gets a short row (padded with id ``-1`` / score
``-inf`` in batch form).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from graphplat import _core
from graphplat.errors import UnknownIdError
from graphplat.service import GraphService
from graphplat.typing import Canonical

log = logging.getLogger(__name__)

__all__ = ["Recommender", "Recommendations", "SeenEdgeType", "top_k", "parse_etype",
           "resolve_seen_etype"]

#: Elements of one (users x items) score block; bigger user batches are cut into chunks.
CHUNK_ELEMENTS = 1 << 22


@dataclass
class Recommendations:
    """Top-K of ``U`` users: ``item_ids`` int64 ``(U, K)`` and ``scores`` float32 ``(U, K)``,
    best first, rows shorter than ``K`` padded with ``-1`` / ``-inf``; ``counts`` int64 ``(U,)``
    valid entries per row; ``excluded`` int64 ``(U,)`` seen items removed per user."""

    user_ids: np.ndarray
    item_ids: np.ndarray
    scores: np.ndarray
    counts: np.ndarray
    excluded: np.ndarray

    def row(self, i: int) -> Tuple[np.ndarray, np.ndarray]:
        """(item ids, scores) of user ``i`` without padding."""
        n = int(self.counts[i])
        return self.item_ids[i, :n], self.scores[i, :n]


@dataclass(frozen=True)
class SeenEdgeType:
    """How the items a user has seen are read: ``sample_neighbors(etype, users, -1,
    strategy="full", direction=direction)``; ``configured`` is the type the user named."""

    configured: Canonical
    etype: Canonical
    direction: str


def top_k(scores: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """Row-wise top ``k`` of a float ``(U, N)`` score matrix, highest first, ties by lower
    column. Returns ``(columns int64 (U, K), values (U, K))`` with ``K = min(k, N)``.

    ``np.argpartition`` finds each row's k-th largest value ``t``; every column above ``t``
    is kept, plus the lowest-numbered columns equal to ``t`` until the row has ``K``; a stable
    sort by descending value then orders the row (columns ascending within a tie).
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D (users, items), got shape {scores.shape}")
    u, n = scores.shape
    kk = min(int(k), n)
    if kk <= 0 or u == 0:
        return np.zeros((u, max(kk, 0)), np.int64), np.zeros((u, max(kk, 0)), scores.dtype)
    if kk == n:
        take = np.ones((u, n), dtype=bool)
    else:
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        thr = np.take_along_axis(scores, part, axis=1).min(axis=1)[:, None]
        above = scores > thr
        need = kk - above.sum(axis=1, keepdims=True)  # >= 1: the k-th value itself
        tie = scores == thr
        take = above | (tie & (np.cumsum(tie, axis=1) <= need))
    cols = np.nonzero(take)[1].reshape(u, kk)  # row-major: ascending columns in each row
    vals = np.take_along_axis(scores, cols, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(cols, order, axis=1).astype(np.int64, copy=False), \
        np.take_along_axis(vals, order, axis=1)


def parse_etype(text: Union[str, Sequence[str]]) -> Union[str, Canonical]:
    """``"user:rates:item"`` -> ``("user", "rates", "item")``; a bare relation stays a string."""
    if not isinstance(text, str):
        t = tuple(text)
        if len(t) != 3:
            raise ValueError(f"an edge type is (src, relation, dst), got {text!r}")
        return t  # type: ignore[return-value]
    parts = text.split(":")
    if len(parts) == 1:
        return text
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"edge type must be SRC:RELATION:DST or a relation name, got {text!r}")
    return (parts[0], parts[1], parts[2])


def _synced_reverse(schema, et):
    """The reverse type of ``et`` that ingest and ``add_edges`` keep in sync with it (declared
    with ``reverse: <relation>``), or None."""
    key = et.reverse_canonical
    return None if key is None else schema.edge_type(key)


def resolve_seen_etype(schema, key, user_ntype: str, item_ntype: str) -> SeenEdgeType:
    """How to read the items users have edges to along ``key`` (see the module docstring).

    ``key`` may name the ``user -> item`` type (read with ``direction="out"`` when its
    out-adjacency is stored, else through the reverse type kept in sync with it) or an
    ``item -> user`` type directly (read with ``direction="in"``). ValueError otherwise,
    naming the schema change that makes the type readable.
    """
    et = schema.edge_type(parse_etype(key) if isinstance(key, str) else key)
    if et.src == user_ntype and et.dst == item_ntype:
        if et.out_adjacency:
            return SeenEdgeType(et.canonical, et.canonical, "out")
        synced = _synced_reverse(schema, et)
        if synced is not None:
            return SeenEdgeType(et.canonical, synced.canonical, "in")
        back = [r for r in schema.edge_types if r.src == item_ntype and r.dst == user_ntype]
        hint = (f"; {', '.join(r.canonical_str for r in back)} is not kept in sync with it "
                f"(add_edges({et.relation!r}, ...) does not write it), so reading it would miss new "
                "edges; name it instead only if you write both" if back else "")
        raise ValueError(f"edge type {et.canonical_str} does not store its out-adjacency, so a user's "
                         f"items cannot be read from it: store it with 'out_adjacency: true' "
                         f"or declare a reverse type with 'reverse: <relation>' in the schema{hint}")
    if et.src == item_ntype and et.dst == user_ntype:
        return SeenEdgeType(et.canonical, et.canonical, "in")
    raise ValueError(f"seen edge type {et.canonical_str} does not connect user type {user_ntype!r} "
                     f"and item type {item_ntype!r}")


def _check_embeddings(name: str, ids, emb) -> Tuple[np.ndarray, np.ndarray]:
    ids = np.asarray(ids)
    emb = np.asarray(emb)
    if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
        raise ValueError(f"{name} ids must be a 1-D integer array, got {ids.dtype} {ids.shape}")
    if emb.ndim != 2 or emb.dtype.kind != "f":
        raise ValueError(f"{name} embeddings must be a 2-D float array, got {emb.dtype} {emb.shape}")
    if len(ids) != len(emb):
        raise ValueError(f"{len(ids)} {name} ids but {len(emb)} {name} embedding rows")
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    if not np.isfinite(emb).all():
        bad = int((~np.isfinite(emb).all(axis=1)).sum())
        raise ValueError(f"{bad} {name} embedding rows hold NaN or inf")
    return ids.astype(np.int64, copy=False), emb


class Recommender:
    """Exact top-K retrieval over item embeddings, with optional seen-item exclusion.

    Args:
        user_ids, user_emb: user ids (int64 ``(U,)``) and their embeddings (``(U, d)``).
        item_ids, item_emb: the same for items (``(N, d)``); duplicates raise ValueError.
        graph: where seen items are read (None: ``exclude_seen`` is refused).
        seen_etypes: edge types whose out-neighbors of a user are "seen" (see
            :func:`resolve_seen_etype`); at least one when ``graph`` is given.
        user_ntype, item_ntype: node types of users and items in ``graph``.
        max_k: largest ``k`` accepted.
    """

    def __init__(self, user_ids, user_emb, item_ids, item_emb, *,
                 graph: Optional[GraphService] = None, seen_etypes: Sequence = (),
                 user_ntype: str = "user", item_ntype: str = "item", max_k: int = 1000):
        user_ids, user_emb = _check_embeddings("user", user_ids, user_emb)
        item_ids, item_emb = _check_embeddings("item", item_ids, item_emb)
        if user_emb.shape[1] != item_emb.shape[1]:
            raise ValueError(f"user embeddings have width {user_emb.shape[1]} but item embeddings "
                             f"{item_emb.shape[1]}; an inner product needs equal widths")
        if len(item_ids) == 0:
            raise ValueError("there are no item embeddings to recommend")
        if max_k < 1:
            raise ValueError(f"max_k must be >= 1, got {max_k}")
        order = np.argsort(item_ids, kind="stable")
        self.item_ids = np.ascontiguousarray(item_ids[order])
        self.item_emb = np.ascontiguousarray(item_emb[order])
        self.user_emb = user_emb
        self.user_index = _core.IdMap(np.ascontiguousarray(user_ids))  # ValueError on duplicates
        self.item_index = _core.IdMap(self.item_ids)
        self.num_users, self.num_items = len(user_ids), len(self.item_ids)
        self.dim = int(user_emb.shape[1])
        self.max_k = int(max_k)
        self.graph = graph
        #: string-id dictionaries of users / items (set by the server for string-id exports)
        self.user_keys = self.item_keys = None
        self.user_ntype, self.item_ntype = user_ntype, item_ntype
        self.seen: List[SeenEdgeType] = []
        if graph is not None:
            schema = graph.schema
            schema.node_type(user_ntype)
            schema.node_type(item_ntype)
            self.seen = [resolve_seen_etype(schema, k, user_ntype, item_ntype) for k in seen_etypes]

    # ------------------------------------------------------------------ lookups

    def user_rows(self, user_ids: np.ndarray) -> np.ndarray:
        """Embedding rows of ``user_ids``; :class:`UnknownIdError` naming the missing ones."""
        rows = self.user_index.lookup(user_ids, missing="ignore")
        missing = rows < 0
        if missing.any():
            bad = user_ids[missing]
            raise UnknownIdError(f"no embedding for user {bad[:5].tolist()}"
                                 f"{f' ({int(missing.sum())} in all)' if missing.sum() > 5 else ''}")
        return rows

    def seen_items(self, user_ids: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """``(row, item position)`` pairs: user ``user_ids[row]`` has an edge to the item at
        sorted position ``pos`` along a seen edge type (items without an embedding are
        dropped). Duplicates possible (several edges)."""
        if self.graph is None or not self.seen:
            raise RuntimeError("exclude_seen needs a graph (--graph or --cluster) and --seen-etype")
        rows, pos = [], []
        uniq, inverse = np.unique(user_ids, return_inverse=True)
        for s in self.seen:
            got = self.graph.sample_neighbors(s.etype, uniq, -1, strategy="full", direction=s.direction)
            owner = np.repeat(np.arange(len(uniq), dtype=np.int64), got.counts)
            p = self.item_index.lookup(np.ascontiguousarray(got.neighbors, dtype=np.int64), missing="ignore")
            keep = p >= 0
            rows.append(owner[keep])
            pos.append(p[keep])
        u_rows = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        i_pos = np.concatenate(pos) if pos else np.zeros(0, np.int64)
        # map unique users back to every occurrence in the request
        occ_start = np.argsort(inverse, kind="stable")
        per_unique = np.bincount(inverse, minlength=len(uniq))
        if (per_unique == 1).all():
            return occ_start[u_rows], i_pos
        starts = np.concatenate([[0], np.cumsum(per_unique)[:-1]])
        reps = per_unique[u_rows]
        out_rows = occ_start[np.repeat(starts[u_rows], reps) + _ranges(reps)]
        return out_rows, np.repeat(i_pos, reps)

    # ------------------------------------------------------------------ top-K

    def check_k(self, k: int) -> int:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise ValueError(f"k must be an integer, got {k!r}")
        if k < 1 or k > self.max_k:
            raise ValueError(f"k must be in [1, {self.max_k}] (the server's --max-k), got {k}")
        return int(k)

    def recommend(self, user_ids, k: int, exclude_seen: bool = False) -> Recommendations:
        """Top ``k`` items of every user in ``user_ids`` (see the module docstring).

        Raises ValueError for a bad ``k`` or ids, :class:`UnknownIdError` for a user without
        an embedding (or, with ``exclude_seen``, a user the graph does not hold: IndexError),
        RuntimeError when ``exclude_seen`` is asked without a graph.
        """
        k = self.check_k(k)
        user_ids = np.ascontiguousarray(user_ids, dtype=np.int64)
        if user_ids.ndim != 1:
            raise ValueError(f"user ids must be 1-D, got shape {user_ids.shape}")
        rows = self.user_rows(user_ids)
        u = len(user_ids)
        kk = min(k, self.num_items)
        excluded = np.zeros(u, np.int64)
        seen_rows = seen_pos = None
        if exclude_seen and u:
            seen_rows, seen_pos = self.seen_items(user_ids)
        items = np.full((u, kk), -1, np.int64)
        scores = np.full((u, kk), -np.inf, np.float32)
        chunk = max(1, CHUNK_ELEMENTS // self.num_items)
        for start in range(0, u, chunk):
            stop = min(u, start + chunk)
            block = self.user_emb[rows[start:stop]] @ self.item_emb.T  # (c, N) float32
            if seen_rows is not None and len(seen_rows):
                sel = (seen_rows >= start) & (seen_rows < stop)
                block[seen_rows[sel] - start, seen_pos[sel]] = -np.inf
                excluded[start:stop] = np.isneginf(block).sum(axis=1)
            cols, vals = top_k(block, kk)
            valid = np.isfinite(vals)
            items[start:stop] = np.where(valid, self.item_ids[cols], -1)
            scores[start:stop] = np.where(valid, vals, -np.inf)
        counts = np.isfinite(scores).sum(axis=1).astype(np.int64) if u else np.zeros(0, np.int64)
        return Recommendations(user_ids, items, scores, counts, excluded)

    def info(self) -> dict:
        return {"users": self.num_users, "items": self.num_items, "dim": self.dim, "max_k": self.max_k,
                "user_ntype": self.user_ntype, "item_ntype": self.item_ntype,
                "seen_etypes": [{"configured": list(s.configured), "read_from": list(s.etype),
                                 "direction": s.direction} for s in self.seen]}


def _ranges(lengths: np.ndarray) -> np.ndarray:
    """``concatenate([arange(n) for n in lengths])`` without a loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.arange(total, dtype=np.int64) - starts
