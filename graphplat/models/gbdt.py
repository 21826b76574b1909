"""Gradient-boosted trees on own + neighbor-aggregated features (model name ``gbdt``): the
fraud baseline GADBench (NeurIPS 2023) found hard to beat, as a model the training, export
and online scoring run like any GNN. Fitting and scoring need ``lightgbm`` (the ``gbdt`` extra).

A :class:`GBDTModel` is a one-layer :class:`~graphplat.models.gnn.GNNModel` without
parameters: its layer reads one whole-neighborhood block (fanout -1, sampled through the
GraphService like any block, so it works over graph servers) and builds, per destination
node, its own feature row, then for each relation into its type (sorted) the mean and the
max of the in-neighbors' rows and the in-degree (:meth:`GBDTModel.features`); the boosted
trees map that row to logits (raw scores: ``[0, margin]`` for two classes, so the softmax is
LightGBM's probability). Training, evaluation, export and serving all compute the row that
way, so online scores equal offline ones. The fitted trees travel in the checkpoint as the
uint8 buffer ``booster`` (LightGBM's text model).
"""
from __future__ import annotations

from typing import List, Mapping, Optional, Sequence

import numpy as np
import torch

from graphplat.errors import MissingDependency
from graphplat.models.gnn import GNNModel, _pos_int

__all__ = ["GBDTModel", "import_lightgbm"]


def import_lightgbm():
    """The ``lightgbm`` module; :class:`~graphplat.errors.MissingDependency` (an ImportError
    with the install command) when it is not installed."""
    try:
        import lightgbm
    except ImportError as e:
        raise MissingDependency("the gbdt model needs lightgbm, which is not installed",
                                "pip install 'graphplat[gbdt]' (or lightgbm>=4,<5)") from e
    return lightgbm


class GBDTModel(GNNModel):
    """LightGBM over own + per-relation neighbor mean/max/degree features (see the module
    docstring).

    Args:
        in_feats: input width per node type (a dict, or an int for the one type); a type of
            width 0 contributes only degrees.
        out: number of classes (2: binary objective, else multiclass).
        canonical_etypes: the graph's relations; those into ``target_ntype`` are used.
        ntypes: the graph's node types.
        target_ntype: the type scored (default: the only node type).
        num_rounds, learning_rate, num_leaves, early_stopping: LightGBM's boosting rounds,
            shrinkage, leaves per tree and early-stopping patience on the validation split.
    """

    #: buffers whose size comes from the checkpoint (load_trained does not shape-check them)
    variable_size_buffers = ("booster",)

    def __init__(self, in_feats, out: int = 2, canonical_etypes: Sequence = (), ntypes: Optional[Sequence[str]] = None,
                 target_ntype: Optional[str] = None, num_rounds: int = 500, learning_rate: float = 0.05,
                 num_leaves: int = 31, early_stopping: int = 50):
        super().__init__()
        self.num_layers = 1
        self.out_feats = _pos_int("out", out)
        if self.out_feats < 2:
            raise ValueError(f"gbdt classifies: out must be >= 2 classes, got {out}")
        types = list(ntypes or [])
        if not isinstance(in_feats, Mapping):
            if len(types) != 1 and target_ntype is None:
                raise ValueError("gbdt: give in_feats per node type (a dict) or one node type")
            in_feats = {target_ntype or types[0]: in_feats}
        widths = {t: int(w or 0) for t, w in in_feats.items()}
        nt = target_ntype or (types[0] if len(types) == 1 else None)
        if nt is None:
            raise ValueError(f"gbdt needs target_ntype for a graph with node types {types}")
        if nt not in widths:
            raise ValueError(f"gbdt: target type {nt!r} has no input width (in_feats {widths})")
        self.target_ntype = target_ntype
        self.ntype = nt
        # the relations into the scored type, in a fixed order (the feature columns' order)
        self.canonical_etypes = sorted(tuple(e) for e in canonical_etypes if tuple(e)[2] == nt)
        self.ntypes = [nt] + sorted({e[0] for e in self.canonical_etypes} - {nt})
        self.in_feats = {t: widths.get(t, 0) for t in self.ntypes}
        self.num_rounds = _pos_int("num_rounds", num_rounds)
        if not 0.0 < float(learning_rate) <= 1.0:
            raise ValueError(f"learning_rate must be in (0, 1], got {learning_rate!r}")
        self.learning_rate = float(learning_rate)
        self.num_leaves = _pos_int("num_leaves", num_leaves)
        self.early_stopping = _pos_int("early_stopping", early_stopping)
        self.register_buffer("booster", torch.zeros(0, dtype=torch.uint8))
        self._booster = None

    def extra_repr(self) -> str:
        return (f"ntype={self.ntype!r}, relations={len(self.canonical_etypes)}, width={self.feature_width}, "
                f"out={self.out_feats}, fitted={self.fitted}")

    @property
    def feature_width(self) -> int:
        """Columns of :meth:`features`: own width + per relation 2 x source width + 1."""
        return self.in_feats[self.ntype] + sum(2 * self.in_feats[s] + 1 for s, _, _ in self.canonical_etypes)

    @property
    def fitted(self) -> bool:
        """Whether the model holds trees (fitted, or loaded from a checkpoint)."""
        return self.booster.numel() > 0

    # ---- layer-wise API (one layer)

    def layer_output_dim(self, i: int) -> int:
        """``out`` (the logits)."""
        self._check_index(i)
        return self.out_feats

    def layer_output_ntypes(self, i: int) -> List[str]:
        """The scored type."""
        self._check_index(i)
        return [self.ntype]

    def project_inputs(self, x, block=None):
        """The raw features as ``{ntype: tensor}`` (no projection)."""
        return dict(x) if isinstance(x, Mapping) else {self.ntype: x}

    def layer_forward(self, i: int, block, h):
        """Logits of the block's destination nodes of the scored type, ``{ntype: (n, out)}``
        (a tensor when ``h`` is one). ValueError when the model is not fitted."""
        self._check_index(i)
        keyed = isinstance(h, Mapping)
        logits = torch.from_numpy(self.predict_logits(self.features(block, h)))
        return {self.ntype: logits} if keyed else logits

    def features(self, block, h) -> np.ndarray:
        """float32 ``(num_dst, feature_width)``: per destination node of the scored type its
        own row, then per relation the mean and max of its in-neighbors' rows (0 without
        neighbors) and its in-degree. ``block`` must hold whole neighborhoods (fanout -1)."""
        h = h if isinstance(h, Mapping) else {self.ntype: h}
        nt = self.ntype
        n = block.num_dst_nodes(nt)
        parts = []
        if self.in_feats[nt]:
            parts.append(self._rows(h, nt, block.num_src_nodes(nt))[:n])
        for et in self.canonical_etypes:
            src_t, w = et[0], self.in_feats[et[0]]
            src, dst = self._edges(block, et)
            deg = torch.bincount(dst, minlength=n).to(torch.float32)
            if w:
                xs = self._rows(h, src_t, block.num_src_nodes(src_t))[src]
                mean = torch.zeros(n, w).index_add_(0, dst, xs) / deg.clamp_min(1)[:, None]
                mx = torch.zeros(n, w).scatter_reduce_(0, dst[:, None].expand(-1, w), xs, "amax",
                                                       include_self=False)
                parts += [mean, mx]
            parts.append(deg[:, None])
        out = torch.cat(parts, 1) if parts else torch.zeros(n, 0)
        return out.numpy()

    def _rows(self, h, t: str, n_src: int) -> torch.Tensor:
        x = h.get(t)
        if x is None:
            raise ValueError(f"gbdt: no input features of node type {t!r}")
        x = self._as_float(x, f"input features of {t!r}").to(torch.float32)
        if x.shape != (n_src, self.in_feats[t]):
            raise ValueError(f"input features of {t!r} have shape {tuple(x.shape)}, the block needs "
                             f"({n_src}, {self.in_feats[t]})")
        return x

    def _edges(self, block, et):
        if et not in block.canonical_etypes:
            if len(block.canonical_etypes) == 1 and len(self.canonical_etypes) == 1:
                et = block.canonical_etypes[0]  # a homogeneous block names its one relation freely
            else:
                e = torch.zeros(0, dtype=torch.long)
                return e, e
        src, dst = block.edges(etype=et)
        return src.long(), dst.long()

    # ---- the trees

    def fit(self, x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, *, seed: int = 0) -> int:
        """Fit the trees on rows ``x`` (:meth:`features`) with labels ``y``, early stopping on
        ``(x_val, y_val)``; returns the best iteration. MissingDependency without lightgbm."""
        lgb = import_lightgbm()
        params = {"objective": "binary", "metric": "auc"} if self.out_feats == 2 else \
            {"objective": "multiclass", "num_class": self.out_feats, "metric": "multi_logloss"}
        params.update(learning_rate=self.learning_rate, num_leaves=self.num_leaves, bagging_fraction=0.8,
                      bagging_freq=1, feature_fraction=0.8, seed=int(seed), num_threads=1, verbose=-1,
                      deterministic=True)
        train_set = lgb.Dataset(x, y)
        booster = lgb.train(params, train_set, num_boost_round=self.num_rounds,
                            valid_sets=[lgb.Dataset(x_val, y_val, reference=train_set)],
                            callbacks=[lgb.early_stopping(self.early_stopping, verbose=False)])
        text = booster.model_to_string(num_iteration=booster.best_iteration or None)
        self.booster = torch.frombuffer(bytearray(text.encode()), dtype=torch.uint8).clone()
        self._booster = None
        return int(booster.best_iteration or booster.current_iteration())

    def _trees(self):
        if self._booster is None:
            if not self.fitted:
                raise ValueError("the gbdt model is not fitted: train it (graphplat train) or load a checkpoint")
            lgb = import_lightgbm()
            self._booster = lgb.Booster(model_str=self.booster.numpy().tobytes().decode())
        return self._booster

    def predict_logits(self, x: np.ndarray) -> np.ndarray:
        """float32 ``(n, out)`` logits of rows ``x``: ``[0, margin]`` for two classes, the
        per-class raw scores otherwise."""
        if x.shape[1] != self.feature_width:
            raise ValueError(f"gbdt rows have {x.shape[1]} columns, the model expects {self.feature_width}")
        if len(x) == 0:
            return np.zeros((0, self.out_feats), np.float32)
        raw = np.asarray(self._trees().predict(x, raw_score=True, num_threads=1), dtype=np.float32)
        if self.out_feats == 2:
            return np.stack([np.zeros_like(raw), raw], 1)
        return raw.reshape(len(x), self.out_feats)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "booster"
        if key in state_dict:  # the trees' size is the checkpoint's, not the constructor's
            self.booster = torch.empty_like(state_dict[key])
            self._booster = None
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if self.fitted:
            self._trees()  # fail at load time (serve-model start-up), not on the first request
