"""Every in-process partition of a square edge type stitched into one CSR, so multi-hop
sampling over a partitioned LocalGraph is a single core call (no per-hop routing).

Global row ``offsets[p] + r`` is row ``r`` of partition ``p``; columns are global rows.
Each row keeps its partition's neighbor order and edge ids, so ``sample_multihop`` on the
stitched CSR gives exactly the hop-by-hop answer of the partitioned graph. The stitched
indices are a second copy of the topology (8 bytes per edge); they are built on first use
and rebuilt when a partition changes (online writes make the caller fall back to the
hop-by-hop path until compaction).
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from graphplat import _core
from graphplat.storage.partition_book import PartitionBook

# Ids in [0, IDENTITY_FACTOR * n + IDENTITY_SLACK) index rows directly (see _to_identity).
IDENTITY_FACTOR = 2
IDENTITY_SLACK = 1024


def partition_version(graph, key, ntype: str) -> Tuple:
    """What a stitched CSR of ``key`` depends on in one PartitionGraph: its bulk CSR object
    (replaced when rows are added; compaction and replica reloads replace the whole
    graph) and its node and edge counts."""
    return (graph.in_adj[key].bulk, len(graph.ids[ntype]), graph.owned_edges[key])


class StitchedCSR:
    """The in-adjacency of square edge type ``key`` over partitions ``graphs`` (one
    PartitionGraph per partition, in partition order) as one CSR over global rows."""

    def __init__(self, book: PartitionBook, graphs: Sequence, key, ntype: str):
        self.key, self.ntype = key, ntype
        self.version = [partition_version(g, key, ntype) for g in graphs]
        counts = [len(g.ids[ntype]) for g in graphs]
        self.offsets = np.zeros(len(graphs) + 1, dtype=np.int64)
        np.cumsum(counts, out=self.offsets[1:])
        self.user_ids = np.concatenate([g.ids[ntype].array for g in graphs])
        self.user_ids.setflags(write=False)
        self.book = book
        self.present: Optional[np.ndarray] = None  # set by _to_identity
        self.idmaps = [g.idmaps[ntype] for g in graphs]
        adjs = [g.in_adj[key] for g in graphs]
        edge_off = np.cumsum([0] + [a.bulk.nnz for a in adjs])
        indptr = np.concatenate([a.bulk.indptr[:-1] + edge_off[p] for p, a in enumerate(adjs)]
                                + [np.array([edge_off[-1]], dtype=np.int64)])
        indices = np.concatenate([_core.take_rows(self.rows_of(a.halo.array[: a.bulk.num_cols]), a.bulk.indices)
                                  for a in adjs])
        weighted = adjs[0].weighted
        weights = np.concatenate([a.bulk.weights for a in adjs]) if weighted else None
        eids = np.concatenate([a.bulk.eids for a in adjs])
        self.csr = _core.CSR(indptr, indices, num_cols=int(self.offsets[-1]), weights=weights, eids=eids)
        ids = self.user_ids
        if len(ids) and ids.min() >= 0 and ids.max() < IDENTITY_FACTOR * len(ids) + IDENTITY_SLACK:
            self._to_identity(int(ids.max()) + 1)

    def _to_identity(self, num_rows: int) -> None:
        """Renumber rows and columns to the user ids themselves (ids are small non-negative
        ints, as in most datasets): seeds and sampled nodes then need no id mapping at all.
        Ids no partition holds become empty rows, and ``present`` marks the held ones."""
        old, ids = self.csr, self.user_ids
        deg = np.diff(old.indptr)
        deg_new = np.zeros(num_rows, dtype=np.int64)
        deg_new[ids] = deg
        indptr = np.zeros(num_rows + 1, dtype=np.int64)
        np.cumsum(deg_new, out=indptr[1:])
        # Edge k of new row ids[g] is edge k of old row g.
        order = np.empty(old.nnz, dtype=np.int64)
        order[np.repeat(indptr[ids], deg) + (np.arange(old.nnz) - np.repeat(old.indptr[:-1], deg))] = \
            np.arange(old.nnz, dtype=np.int64)
        indices = _core.take_rows(ids, _core.take_rows(old.indices, order))
        weights = None if old.weights is None else old.weights[order]
        self.csr = _core.CSR(indptr, indices, num_cols=num_rows, weights=weights,
                             eids=_core.take_rows(old.eids, order))
        self.present = np.zeros(num_rows, dtype=bool)
        self.present[ids] = True

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Row of every user id (IndexError for ids no partition holds)."""
        if self.present is not None:
            inside = (ids >= 0) & (ids < len(self.present))
            if inside.all() and self.present[ids].all():
                return ids
        out = np.empty(len(ids), dtype=np.int64)
        for p, pos in self.book.split(self.ntype, ids).items():
            out[pos] = self.idmaps[p].lookup(ids[pos]) + self.offsets[p]
        return out if self.present is None else self.user_ids[out]

    def sample_multihop(self, seeds: np.ndarray, fanouts: List[int], strategy: str,
                        replace: bool, seed: int) -> list:
        """``[(nodes, num_dst, src, dst, eids), ...]`` in user ids, hop 0 first (the format
        of ``PartitionGraph.sample_multihop``)."""
        hops = _core.sample_multihop(self.csr, self.rows_of(seeds), list(fanouts),
                                     strategy=strategy, replace=replace, seed=seed)
        if self.present is not None:
            return [(h.nodes, h.num_dst, h.src, h.dst, h.eids) for h in hops]
        return [(_core.take_rows(self.user_ids, h.nodes), h.num_dst, h.src, h.dst, h.eids) for h in hops]

