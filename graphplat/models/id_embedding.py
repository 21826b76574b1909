"""Learned per-node embeddings added to a GNN's inputs (GC-MC's one-hot node inputs).

Node identity is most of the signal in collaborative filtering (MovieLens): a user's
features say little, the items it rated say a lot. :class:`WithIdEmbeddings` concatenates
an ``nn.Embedding`` row, looked up by the node's id (``dgl.NID`` of the first block), to each
node type's input features. Ids numbered about 0..n-1 (datasets) index the table directly;
any other int64 ids (negative, sparse, hashes) go through a sorted copy of the training
graph's ids kept in the model (row = rank of the id), so the table has one row per node.
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence, Tuple

import dgl
import numpy as np
import torch
import torch.nn as nn

#: Largest id a per-node embedding table is built for.
MAX_EMBEDDING_IDS = 50_000_000


def embedding_sizes(graph, ntypes) -> Tuple[Dict[str, int], Dict[str, np.ndarray]]:
    """Table rows per node type, and the sorted ids of the types indexed by rank: ``max id
    + 1`` rows when the ids are dense enough (in ``[0, MAX_EMBEDDING_IDS)`` and at most
    about twice the node count), else one row per node. Returns ``(num_ids, index)``."""
    out, index = {}, {}
    for nt in ntypes:
        ids = graph.node_ids(nt)
        if len(ids) == 0:
            out[nt] = 1
            continue
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= MAX_EMBEDDING_IDS or hi + 1 > 2 * len(ids) + 1024:
            index[nt] = np.sort(ids)
            out[nt] = len(ids)
        else:
            out[nt] = hi + 1
    return out, index


class WithIdEmbeddings(nn.Module):
    """``inner`` with a ``dim``-wide learned embedding per node concatenated to its input.

    Exposes the layer-wise interface of :class:`graphplat.models.gnn.GNNModel`
    (``num_layers``, ``project_inputs(x, block)``, ``layer_forward``), with ``block``
    required by ``project_inputs`` (it carries the node ids).
    """

    def __init__(self, inner: nn.Module, num_ids: Mapping[str, int], dim: int,
                 index: Optional[Mapping[str, np.ndarray]] = None, indexed: Sequence[str] = ()):
        super().__init__()
        if dim < 1:
            raise ValueError(f"id_embedding must be a positive width, got {dim}")
        self.inner = inner
        self.dim = int(dim)
        self.num_ids = dict(num_ids)
        # types whose rows are id ranks: sorted ids as buffers (saved with the weights;
        # ``indexed`` without ``index`` makes empty ones for a checkpoint to fill)
        self.indexed = sorted(set(indexed) | set(index or {}))
        for nt in self.indexed:
            ids = (index or {}).get(nt)
            buf = torch.zeros(self.num_ids[nt], dtype=torch.int64) if ids is None else \
                torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64))
            self.register_buffer(f"index_{nt}", buf)
        self.tables = nn.ModuleDict({nt: nn.Embedding(n, dim) for nt, n in self.num_ids.items()})
        for t in self.tables.values():
            nn.init.normal_(t.weight, std=0.1)

    @property
    def num_layers(self) -> int:
        return self.inner.num_layers

    @property
    def out_feats(self) -> int:
        return self.inner.out_feats

    def layer_output_dim(self, i: int) -> int:
        """Width of layer ``i``'s output (the inner model's)."""
        return self.inner.layer_output_dim(i)

    def project_inputs(self, x, block):
        """Inputs with the id embeddings of ``block``'s source nodes appended, projected by
        the inner model."""
        if block is None:
            raise ValueError("WithIdEmbeddings.project_inputs needs the first block (for node ids)")
        keyed = isinstance(x, Mapping)
        types = list(block.srctypes)
        feats = dict(x) if keyed else ({types[0]: x} if not isinstance(x, Mapping) and len(types) == 1 else {})
        out = {}
        for nt in types:
            if nt not in self.tables:
                continue
            ids = self._rows(nt, block.srcnodes[nt].data[dgl.NID])
            if len(ids) and (int(ids.max()) >= self.num_ids[nt] or int(ids.min()) < 0):
                raise ValueError(f"{nt!r} ids outside [0, {self.num_ids[nt]}) have no embedding row "
                                 "(nodes added after training?)")
            emb = self.tables[nt](ids)
            out[nt] = torch.cat([feats[nt], emb], 1) if nt in feats else emb
        if not keyed and len(out) == 1:
            return self.inner.project_inputs(next(iter(out.values())), block)
        return self.inner.project_inputs(out, block)

    def _rows(self, ntype: str, ids: torch.Tensor) -> torch.Tensor:
        """Table rows of ``ids``: the ids themselves, or their ranks for an indexed type
        (an id the training graph did not have raises ValueError)."""
        if ntype not in self.indexed:
            return ids
        index = getattr(self, f"index_{ntype}")
        pos = torch.searchsorted(index, ids).clamp_(max=max(len(index) - 1, 0))
        if len(ids) and not bool((index[pos] == ids).all()):
            raise ValueError(f"some {ntype!r} ids have no embedding row (nodes added after training?)")
        return pos

    def layer_forward(self, i: int, block, h):
        """Layer ``i`` of the inner model."""
        return self.inner.layer_forward(i, block, h)

    def forward(self, blocks, x):
        """``project_inputs`` then every layer (the inner model's forward semantics); an
        inner model without layers (the features-only MLP) runs its own forward."""
        h = self.project_inputs(x, blocks[0])
        if not hasattr(self.inner, "layer_forward"):
            return self.inner(blocks, h)
        for i, block in enumerate(blocks):
            h = self.layer_forward(i, block, h)
        return h
