"""A fraud detector for graphs of one node type with one or several relations (anti-spam).

:class:`FraudSAGE` separates a node's own (ego) representation from its neighbors' and keeps
each relation apart, as heterophily-aware fraud detectors do (CARE-GNN, GAT-sep / H2GCN's
ego-neighbor separation):

* ``project_inputs``: ``ego = act(W_in x)``; each layer's representation is ``[ego | h]``
  (``h = ego`` before the first layer), so the ego path reaches the output untouched instead
  of being averaged with fraudsters' mostly-benign neighbors.
* layer ``i``: per relation ``r``, a weighted mean of the in-neighbors' ``h``; with
  ``label_aware`` (CARE-GNN's label-aware similarity, soft), the weight of an edge ``u -> v``
  is ``1 - |p(u) - p(v)|`` where ``p = sigmoid(scorer(ego))`` is a fraud probability learned
  from the labels (:meth:`aux_logits`, added to the loss with ``aux_weight``), so neighbors
  unlike the node count less. Then ``h' = act(W [h_v | agg_r1 | agg_r2 | ...])``.
* the last layer maps ``[ego | h']`` to the logits.

Blocks follow DGL's convention (each block's destination nodes are the first of its source
nodes, and block ``i+1``'s sources are block ``i``'s destinations), so a representation
row always belongs to the same node in every layer.
"""
from __future__ import annotations

from typing import List, Mapping, Optional, Sequence

import torch
import torch.nn as nn

from graphplat.models.gnn import GNNModel, _pos_int, _prob

__all__ = ["FraudSAGE"]


class FraudSAGE(GNNModel):
    """Ego/neighbor-separated, per-relation GNN with label-aware neighbor weighting.

    Args:
        in_feats: input width (an int or a one-entry dict ``ntype -> width``).
        hidden: width of the ego and neighbor representations.
        out: number of outputs (classes).
        canonical_etypes: the relations, all between the one node type.
        num_layers: message-passing layers (= blocks ``forward`` takes).
        dropout: dropout on hidden representations (train mode only).
        label_aware: weight neighbors by fraud-probability similarity (see module docstring).
        aux_weight: weight of the scorer's own cross-entropy that the trainer adds to the
            loss (0 = the scorer learns only through the main loss).
        activation, ntypes, target_ntype: as the other models (one node type only).
    """

    def __init__(self, in_feats, hidden: int, out: int, canonical_etypes: Sequence = None,
                 num_layers: int = 2, dropout: float = 0.0, label_aware: bool = True,
                 aux_weight: float = 0.5, activation="relu", ntypes: Optional[Sequence[str]] = None,
                 target_ntype: Optional[str] = None):
        super().__init__()
        self._set_hyperparameters(hidden, out, num_layers, dropout, activation, False, False)
        if not canonical_etypes:
            raise ValueError("FraudSAGE needs canonical_etypes: the relations between its node type")
        etypes = [tuple(e) for e in canonical_etypes]
        types = {t for e in etypes for t in (e[0], e[2])} | set(ntypes or [])
        if isinstance(in_feats, Mapping):
            types |= set(in_feats)
            if len(in_feats) != 1:
                raise ValueError(f"FraudSAGE takes one node type, got in_feats {dict(in_feats)}")
            in_feats = next(iter(in_feats.values()))
        if len(types) != 1:
            raise ValueError(f"FraudSAGE takes one node type with one or several relations; got "
                             f"node types {sorted(types)}")
        self.ntype = types.pop()
        if target_ntype not in (None, self.ntype):
            raise ValueError(f"target_ntype {target_ntype!r} is not the graph's node type {self.ntype!r}")
        self.target_ntype = target_ntype
        self.canonical_etypes = etypes
        self.ntypes = [self.ntype]
        self._in_width = _pos_int("in_feats", in_feats)
        self.in_feats = {self.ntype: self._in_width}  # per type, as the exporter reads it
        self.label_aware = bool(label_aware)
        self.aux_weight = _prob("aux_weight", aux_weight) if aux_weight else 0.0
        h = self.hidden
        self.proj = nn.Linear(self._in_width, h)
        self.scorer = nn.Linear(h, 1) if self.label_aware else None
        r = len(etypes)
        self.convs = nn.ModuleList([nn.Linear(h * (1 + r), h) for _ in range(self.num_layers)])
        self.head = nn.Linear(2 * h, self.out_feats)

    # ---- layer-wise API

    def layer_output_dim(self, i: int) -> int:
        """``2 * hidden`` (``[ego | h]``) for hidden layers, ``out`` for the last."""
        self._check_index(i)
        return self.out_feats if i == self.num_layers - 1 else 2 * self.hidden

    def layer_output_ntypes(self, i: int) -> List[str]:
        """The one node type (every layer produces it)."""
        self._check_index(i)
        return list(self.ntypes)

    def project_inputs(self, x, block=None):
        """``[ego | ego]`` with ``ego = act(W_in x)``, as a tensor or ``{ntype: tensor}``."""
        keyed = isinstance(x, Mapping)
        t = self._as_float(x[self.ntype] if keyed else x, "input features")
        if t.shape[1] != self._in_width:
            raise ValueError(f"input features have width {t.shape[1]}, the model expects {self._in_width}")
        ego = self.dropout(self.activation(self.proj(t)))
        out = torch.cat([ego, ego], 1)
        return {self.ntype: out} if keyed else out

    def aux_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The neighbor scorer's fraud logit of rows ``x`` (raw input features), shape (n,);
        the trainer fits it to the labels with weight :attr:`aux_weight`."""
        if self.scorer is None:
            raise ValueError("aux_logits needs label_aware=True")
        return self.scorer(self.activation(self.proj(self._as_float(x, "input features")))).squeeze(1)

    def layer_forward(self, i: int, block, h):
        """Apply layer ``i`` to ``block`` (rows of ``h`` = the block's source nodes, width
        ``2 * hidden``); returns the destination rows (see :meth:`layer_output_dim`)."""
        self._check_index(i)
        keyed = isinstance(h, Mapping)
        t = h[self.ntype] if keyed else h
        t = self._as_float(t, f"FraudSAGE layer {i} input")
        n_src, n_dst = block.num_src_nodes(self.ntype), block.num_dst_nodes(self.ntype)
        if t.shape != (n_src, 2 * self.hidden):
            raise ValueError(f"FraudSAGE layer {i} input has shape {tuple(t.shape)}, the block needs "
                             f"({n_src}, {2 * self.hidden})")
        hd = self.hidden
        ego, cur = t[:, :hd], t[:, hd:]
        p = torch.sigmoid(self.scorer(ego)).squeeze(1) if self.scorer is not None else None
        parts = [cur[:n_dst]]
        for et in self.canonical_etypes:
            parts.append(self._aggregate(block, et, cur, p, n_dst))
        z = self.convs[i](torch.cat(parts, 1))
        z = self.dropout(self.activation(z))
        ego_dst = ego[:n_dst]
        if i == self.num_layers - 1:
            out = self.head(torch.cat([ego_dst, z], 1))
        else:
            out = torch.cat([ego_dst, z], 1)
        return {self.ntype: out} if keyed else out

    def _aggregate(self, block, et, cur: torch.Tensor, p: Optional[torch.Tensor], n_dst: int):
        """Weighted mean of relation ``et``'s in-neighbors per destination (zeros where a node
        has none)."""
        if et not in block.canonical_etypes:
            if len(block.canonical_etypes) == 1 and len(self.canonical_etypes) == 1:
                et = block.canonical_etypes[0]  # a homogeneous block names its one relation freely
            else:
                return cur.new_zeros(n_dst, cur.shape[1])
        src, dst = block.edges(etype=et)
        src, dst = src.long(), dst.long()
        w = (1.0 - (p[src] - p[dst]).abs()) if p is not None else cur.new_ones(len(src))
        agg = cur.new_zeros(n_dst, cur.shape[1]).index_add_(0, dst, cur[src] * w[:, None])
        norm = cur.new_zeros(n_dst).index_add_(0, dst, w)
        return agg / norm.clamp_min(1e-6)[:, None]
