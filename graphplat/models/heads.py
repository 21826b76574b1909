"""Prediction heads on node-pair embeddings: link scores and ratings.

Every head takes **row-aligned pairs** ``(h_src, h_dst)``: two 2-D arrays with one row per
pair, row ``k`` holding the embeddings of the ``k``-th pair's source and destination node
(gather them from a model's output with :func:`pair_embeddings` or plain indexing). Arrays in,
arrays out: torch tensors give tensors (differentiable, for training); numpy arrays give numpy
arrays (computed without autograd, for offline scoring / serving).

* :class:`DotPredictor` -- ``score(u, v) = <h_u, h_v>`` (no parameters).
* :class:`MLPPredictor` -- an MLP on ``[h_u ; h_v]``.
* :class:`BilinearRatingDecoder` -- GC-MC's bilinear decoder with basis decomposition:
  per-rating-level logits and the expected rating.

Scores are logits: train link prediction with ``F.binary_cross_entropy_with_logits`` on
positive vs. negative pairs, ratings with ``F.cross_entropy(out.logits, classes)``.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from graphplat.models.gnn import get_activation

__all__ = ["DotPredictor", "MLPPredictor", "BilinearRatingDecoder", "RatingPrediction",
           "pair_embeddings"]

Array = Union[torch.Tensor, np.ndarray]


def _pair(module: nn.Module, h_src, h_dst, widths: Optional[Tuple[int, int]] = None):
    """Validate a row-aligned pair; returns (src tensor, dst tensor, numpy_in)."""
    name = type(module).__name__
    np_in = isinstance(h_src, np.ndarray)
    if np_in != isinstance(h_dst, np.ndarray):
        raise TypeError(f"{name}: h_src and h_dst must both be torch tensors or both numpy arrays")
    p = next(module.parameters(), None)
    dtype = p.dtype if p is not None else torch.float32
    out = []
    for what, h in (("h_src", h_src), ("h_dst", h_dst)):
        if np_in:
            h = torch.from_numpy(np.ascontiguousarray(h))
        elif not isinstance(h, torch.Tensor):
            raise TypeError(f"{name}: {what} must be a torch.Tensor or numpy array, "
                            f"got {type(h).__name__}")
        if h.dim() != 2:
            raise ValueError(f"{name}: {what} must be 2-D (pairs, width), got shape {tuple(h.shape)}")
        if not torch.is_floating_point(h):
            raise ValueError(f"{name}: {what} must hold floats, got dtype {h.dtype}")
        out.append(h if h.dtype == dtype and not np_in else h.to(dtype))
    s, d = out
    if s.shape[0] != d.shape[0]:
        raise ValueError(f"{name}: h_src has {s.shape[0]} rows but h_dst has {d.shape[0]}; the "
                         f"pairs must be row-aligned")
    if widths is not None and (s.shape[1], d.shape[1]) != widths:
        raise ValueError(f"{name}: got widths ({s.shape[1]}, {d.shape[1]}), the head was built for "
                         f"{widths}")
    if p is not None:
        s, d = s.to(p.device), d.to(p.device)
    return s, d, np_in


def _out(t: torch.Tensor, np_in: bool):
    return t.detach().cpu().numpy() if np_in else t


class DotPredictor(nn.Module):
    """Dot-product link scorer: ``score(u, v) = <h_u, h_v>`` (a logit; no parameters).

    ``forward(h_src, h_dst)``: ``h_src``, ``h_dst`` are row-aligned ``(E, d)`` arrays (both
    torch tensors or both numpy arrays); returns the ``(E,)`` scores in the same kind.
    """

    def forward(self, h_src: Array, h_dst: Array) -> Array:
        """Scores of ``E`` pairs: ``(E, d), (E, d) -> (E,)``. Raises ValueError on shape
        mismatch."""
        s, d, np_in = _pair(self, h_src, h_dst)
        if s.shape[1] != d.shape[1]:
            raise ValueError(f"DotPredictor: h_src has width {s.shape[1]} but h_dst has "
                             f"{d.shape[1]}; a dot product needs equal widths")
        with torch.set_grad_enabled(torch.is_grad_enabled() and not np_in):
            return _out((s * d).sum(dim=1), np_in)


class MLPPredictor(nn.Module):
    """MLP link scorer on the concatenated pair ``[h_u ; h_v]``.

    Args:
        in_feats: embedding width (same for both sides) or ``(src_width, dst_width)``.
        hidden: width of the hidden layers (default: the concatenated width).
        num_layers: number of Linear layers (>= 1; 1 = a linear scorer).
        dropout: dropout after each hidden activation (train mode only).
        activation: activation name (see ``graphplat.models.gnn.ACTIVATIONS``) or callable.
        out: number of outputs per pair (1 = one logit, returned as shape ``(E,)``).

    ``forward(h_src, h_dst)``: row-aligned ``(E, src_width)``, ``(E, dst_width)`` arrays;
    returns ``(E,)`` (``out == 1``) or ``(E, out)`` scores, tensor or numpy like the inputs.
    """

    def __init__(self, in_feats: Union[int, Tuple[int, int]], hidden: Optional[int] = None,
                 num_layers: int = 2, dropout: float = 0.0, activation="relu", out: int = 1):
        super().__init__()
        widths = tuple(in_feats) if isinstance(in_feats, (tuple, list)) else (in_feats, in_feats)
        if len(widths) != 2 or any(isinstance(w, bool) or not isinstance(w, int) or w < 1
                                   for w in widths):
            raise ValueError(f"in_feats must be a positive int or a pair of them, got {in_feats!r}")
        for name, v, lo in (("num_layers", num_layers, 1), ("out", out, 1)):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
        hidden = sum(widths) if hidden is None else hidden
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"hidden must be a positive int, got {hidden!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.widths = (int(widths[0]), int(widths[1]))
        self.out = out
        dims = [sum(self.widths)] + [hidden] * (num_layers - 1) + [out]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.activation = get_activation(activation)
        self.dropout = nn.Dropout(float(dropout))

    def forward(self, h_src: Array, h_dst: Array) -> Array:
        """Scores of ``E`` pairs: ``(E, ds), (E, dd) -> (E,)`` or ``(E, out)``. Raises
        ValueError when the widths differ from ``in_feats`` or the row counts differ."""
        s, d, np_in = _pair(self, h_src, h_dst, self.widths)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not np_in):
            z = torch.cat([s, d], dim=1)
            for j, lin in enumerate(self.linears):
                z = lin(z)
                if j < len(self.linears) - 1:
                    z = self.dropout(self.activation(z))
            return _out(z.squeeze(1) if self.out == 1 else z, np_in)


class RatingPrediction(NamedTuple):
    """Output of :class:`BilinearRatingDecoder`: ``rating`` ``(E,)`` expected rating
    ``sum_r value_r * softmax(logits)_r``; ``logits`` ``(E, num_ratings)`` for cross-entropy."""

    rating: Array
    logits: Array


class BilinearRatingDecoder(nn.Module):
    """GC-MC's bilinear decoder (van den Berg et al. 2017) with basis decomposition.

    For a pair ``(u, v)`` and rating level ``r``: ``logit_r = sum_b a_{r,b} h_u^T P_b h_v``
    with ``num_basis`` shared ``(d_src, d_dst)`` matrices ``P_b`` and per-level coefficients
    ``a_{r,b}`` (weight sharing across levels, as in GC-MC). The predicted rating is the
    expectation ``sum_r value_r * softmax(logits)_r``.

    Args:
        in_feats: embedding width (same for both sides) or ``(src_width, dst_width)``.
        num_ratings: number of rating levels (classes), >= 2.
        num_basis: number of basis matrices ``P_b``.
        dropout: dropout on both inputs (train mode only).
        rating_values: the value of each level, ascending (default ``1, ..., num_ratings``).

    ``forward(h_src, h_dst)``: row-aligned ``(E, src_width)``, ``(E, dst_width)`` arrays;
    returns :class:`RatingPrediction` ``(rating (E,), logits (E, num_ratings))``, tensors or
    numpy arrays like the inputs. Train with ``F.cross_entropy(out.logits,
    decoder.rating_to_class(true_ratings))``; evaluate RMSE on ``out.rating``.
    """

    def __init__(self, in_feats: Union[int, Tuple[int, int]], num_ratings: int,
                 num_basis: int = 2, dropout: float = 0.0,
                 rating_values: Optional[Sequence[float]] = None):
        super().__init__()
        widths = tuple(in_feats) if isinstance(in_feats, (tuple, list)) else (in_feats, in_feats)
        if len(widths) != 2 or any(isinstance(w, bool) or not isinstance(w, int) or w < 1
                                   for w in widths):
            raise ValueError(f"in_feats must be a positive int or a pair of them, got {in_feats!r}")
        if isinstance(num_ratings, bool) or not isinstance(num_ratings, int) or num_ratings < 2:
            raise ValueError(f"num_ratings must be an int >= 2, got {num_ratings!r}")
        if isinstance(num_basis, bool) or not isinstance(num_basis, int) or num_basis < 1:
            raise ValueError(f"num_basis must be a positive int, got {num_basis!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if rating_values is None:
            values = torch.arange(1, num_ratings + 1, dtype=torch.float32)
        else:
            values = torch.as_tensor(np.asarray(rating_values, dtype=np.float32))
            if values.shape != (num_ratings,):
                raise ValueError(f"rating_values must have num_ratings={num_ratings} values, "
                                 f"got {tuple(values.shape)}")
            if not bool(torch.all(values[1:] > values[:-1])):
                raise ValueError(f"rating_values must be strictly increasing, got {values.tolist()}")
        self.widths = (int(widths[0]), int(widths[1]))
        self.num_ratings = num_ratings
        self.num_basis = num_basis
        self.register_buffer("rating_values", values)
        self.basis = nn.Parameter(torch.empty(num_basis, *self.widths))
        nn.init.xavier_uniform_(self.basis)
        self.combine = nn.Linear(num_basis, num_ratings, bias=False)
        self.dropout = nn.Dropout(float(dropout))

    def forward(self, h_src: Array, h_dst: Array) -> RatingPrediction:
        """Per-level logits and the expected rating of ``E`` pairs (see the class docstring).
        Raises ValueError when widths or row counts do not match."""
        s, d, np_in = _pair(self, h_src, h_dst, self.widths)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not np_in):
            s, d = self.dropout(s), self.dropout(d)
            # basis scores: (E, B) with [e, b] = s_e^T P_b d_e
            per_basis = torch.einsum("ei,bij,ej->eb", s, self.basis, d)
            logits = self.combine(per_basis)
            rating = (F.softmax(logits, dim=1) * self.rating_values).sum(dim=1)
            return RatingPrediction(_out(rating, np_in), _out(logits, np_in))

    def rating_to_class(self, ratings: Array) -> Array:
        """Map rating values to class indices ``0 .. num_ratings-1`` (the position of each
        value in ``rating_values``). Returns int64 of the input's kind; raises ValueError when a
        rating is not one of the values."""
        np_in = isinstance(ratings, np.ndarray)
        r = torch.as_tensor(ratings).to(self.rating_values)
        idx = torch.searchsorted(self.rating_values, r.reshape(-1)).clamp(max=self.num_ratings - 1)
        ok = self.rating_values[idx] == r.reshape(-1)
        if not bool(ok.all()):
            bad = r.reshape(-1)[~ok][:5].tolist()
            raise ValueError(f"ratings {bad} are not among rating_values {self.rating_values.tolist()}")
        idx = idx.reshape(r.shape)
        return idx.cpu().numpy() if np_in else idx


def pair_embeddings(pair_graph, h, etype=None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Row-aligned ``(h_src, h_dst)`` for the edges of a DGL pair graph (what DGL's edge
    prediction loaders yield as ``pair_graph`` / ``neg_pair_graph``), ready for a head.

    Args:
        pair_graph: a DGLGraph whose nodes are the model's output nodes.
        h: model output: a tensor (homogeneous) or dict ``ntype -> tensor``.
        etype: the edge type to read (required when ``pair_graph`` has several).

    Returns:
        ``(h_src[src], h_dst[dst])`` in ``pair_graph``'s edge order.
    """
    if etype is None and len(pair_graph.canonical_etypes) != 1:
        raise ValueError(f"pair graph has edge types {pair_graph.canonical_etypes}; give etype")
    cet = pair_graph.to_canonical_etype(etype) if etype is not None else pair_graph.canonical_etypes[0]
    src, dst = pair_graph.edges(etype=cet)
    if isinstance(h, dict):
        return h[cet[0]][src], h[cet[2]][dst]
    return h[src], h[dst]
