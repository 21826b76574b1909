"""A trained model loaded for inference on a graph, without an export step:
:func:`load_model` (also ``graphplat.load_model``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np

from graphplat.service import GraphService

__all__ = ["LoadedModel", "load_model", "inference_encoder"]


class LoadedModel:
    """A ``best.pt`` rebuilt for ``graph`` in eval mode (see :func:`load_model`).

    Attributes: ``encoder`` (the GNN), ``decoder`` (the rating head or None), ``config``
    (the training config dict), ``meta`` (task, target type, feature, output width),
    ``task``, ``target_ntype``, ``feature`` and ``fanouts`` (the evaluation fanouts).
    """

    def __init__(self, graph: GraphService, checkpoint: Path, trained, fanouts: List[Any]):
        import torch.nn as nn

        from graphplat.training.loop import input_widths

        self.graph, self.checkpoint = graph, checkpoint
        self.encoder: nn.Module = trained.encoder
        self.decoder: Optional[nn.Module] = trained.decoder
        self.config: Dict[str, Any] = trained.config
        self.meta: Dict[str, Any] = trained.meta
        self.task: str = self.meta["task"]
        self.feature: str = self.meta["feature"]
        schema = graph.schema
        self.target_ntype: Optional[str] = self.meta.get("target_ntype") or (
            schema.ntypes[0] if len(schema.ntypes) == 1 else None)
        self.fanouts = list(fanouts)
        self._features = {t: [self.feature] for t, w in input_widths(graph, self.feature).items() if w}
        self.encoder, self._gcn_norm = inference_encoder(trained, graph)

    def predict(self, ids: Optional[np.ndarray] = None, *, ntype: Optional[str] = None,
                batch_size: Optional[int] = None, seed: int = 0) -> np.ndarray:
        """The model's output for nodes ``ids`` of ``ntype``.

        Args:
            ids: node ids (default: every node of the type).
            ntype: node type (default: the model's target type, or the graph's only type).
            batch_size: nodes per minibatch (default: the training's ``eval_batch_size``).
            seed: sampling seed; matters only with sampled (not -1) evaluation fanouts.

        Returns:
            float32 ``(len(ids), out)``: class logits for a node-classification model, node
            embeddings for link-prediction and rating models. Sampled as the training run's
            evaluation does (same fanouts, loader and batch size), so the logits of a split's
            nodes, in the training's order and seed, are those it evaluated.
        """
        import torch

        from graphplat.sampling import NodeLoader
        from graphplat.training.loop import block_inputs, pick

        nt = ntype or self.target_ntype
        if nt is None:
            raise ValueError(f"name the node type: the graph has {self.graph.schema.ntypes}")
        self.graph.schema.node_type(nt)
        ids = self.graph.node_ids(nt) if ids is None else np.ascontiguousarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return np.zeros((0, int(self.meta["out"])), np.float32)
        loader = NodeLoader(self.graph, {nt: ids}, self.fanouts, seed=seed, prefetch=0, labels=None,
                            batch_size=batch_size or int(self.config.get("eval_batch_size") or 4096),
                            features=self._features)
        outs = []
        with torch.inference_mode():
            for _, _, blocks in loader:
                if self._gcn_norm is not None:
                    self._gcn_norm.attach(blocks)
                outs.append(pick(self.encoder(blocks, block_inputs(blocks, self.feature)), nt).float().numpy())
        return np.concatenate(outs)


def inference_encoder(trained, graph: GraphService, *, live: bool = False):
    """``(encoder, gcn_norm)``: the trained encoder as training evaluated it. A GCN trained
    with norm "both" took the graph's degrees as edge weights (``GCNNorm``): it comes back
    as a twin reading them, and ``gcn_norm.attach(blocks)`` must run before each forward
    (``live``: degrees read per batch, for a graph taking writes). Otherwise
    ``(trained.encoder, None)``."""
    from graphplat.models.gnn import GCN
    from graphplat.training.loop import GCNNorm

    spec = trained.config.get("model") or {}
    if isinstance(trained.encoder, GCN) and spec.get("norm", "both") == "both":
        return _gcn_with_edge_weights(trained.encoder, GCNNorm.KEY), GCNNorm(graph, live=live)
    return trained.encoder, None


def _gcn_with_edge_weights(encoder, key: str):
    """A copy of a GCN (norm "both") that takes its normalization as edge weights ``key``."""
    from graphplat.models.gnn import GCN

    twin = GCN(encoder.in_feats, encoder.hidden, encoder.out_feats, encoder.num_layers,
               encoder.dropout_p, encoder.activation, norm="none", edge_weight=key,
               layer_norm=encoder.layer_norm, residual=encoder.residual)
    twin.load_state_dict(encoder.state_dict())
    return twin.eval()


def load_model(checkpoint: Union[str, Path], graph: GraphService, *,
               fanouts: Optional[List[Any]] = None) -> LoadedModel:
    """Load a model trained by ``graphplat train --checkpoint-dir`` for inference on ``graph``.

    Args:
        checkpoint: a ``best.pt`` (``DIR/seed-N/best.pt``).
        graph: the graph to run on (a LocalGraph, RemoteGraph or in-memory dataset graph)
            with the training graph's schema and feature widths.
        fanouts: per-layer fanouts (default: the training's ``eval_fanouts``, else every
            neighbor, as the training evaluated).

    Returns:
        A :class:`LoadedModel` in eval mode; ``model.predict(ids)`` gives logits (node
        classification) or embeddings (edge tasks) for any nodes, without an export.

    Raises:
        PathNotFound / CheckpointError (not a readable checkpoint), CheckpointMismatch (a
        graph of another schema or feature widths), ValueError (bad fanouts).
    """
    from graphplat.training.loop import load_trained

    checkpoint = Path(checkpoint)
    trained = load_trained(checkpoint, graph)
    layers = getattr(trained.encoder, "num_layers", None)
    cfg = trained.config
    chosen = list(fanouts or cfg.get("eval_fanouts") or [-1] * (layers or len(cfg.get("fanouts") or [])))
    if layers is not None and len(chosen) != layers:
        raise ValueError(f"{len(chosen)} fanouts for a model of {layers} layers; give one per layer")
    # the graph as the model reads it (computed input columns, standardisation)
    return LoadedModel(trained.input_graph(graph), checkpoint, trained, chosen)
