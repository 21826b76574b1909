"""Online node scoring (anti-spam): sample a node's *current* neighborhood from the graph,
fetch the features through the GraphService and run the trained GNN on the blocks.

The pipeline is the training loader's, unchanged: :meth:`NodeLoader.collate` samples with a
:class:`~graphplat.sampling.NeighborSampler` and attaches the input
features, and the encoder rebuilt by :func:`~graphplat.training.loop.load_trained` (eval mode:
no dropout) maps the blocks to logits; the softmax gives the class probabilities. The
fanouts are offline evaluation's (:func:`fanouts_from_config`: every neighbor unless the
config sets ``eval_fanouts``), so a score equals the exported logits' softmax. A GCN trained
with norm "both" is normalized with the graph's degrees, read for each batch's nodes
(:func:`~graphplat.inference.model.inference_encoder`), as training, evaluation and export do.

Freshness: over a RemoteGraph every request samples from the graph servers, which make an
acknowledged ``add_nodes`` / ``add_edges`` visible to the next sampling call, so a node's
score reflects edges added a moment ago (reads of a cluster file that lists read replicas may
lag by the replicas' follow interval). Over an in-process read-only store the service picks
up the servers' writes by replaying their write log every ``follow_interval`` seconds.

Batches: :meth:`NodeScorer.score_batch` samples one multi-hop neighborhood for the whole batch
(one sampling call per hop, one feature fetch) and runs one forward; ``Score`` is a batch of one.

Determinism: a batch is sampled with the request's seed (the server's ``--seed`` by default),
and each node's draws are keyed by its node id (``NeighborSampler(key_by_id=True)``), so a
node's sample, hence its score, is the same alone and in any batch, also with sampled fanouts.
With whole-neighborhood fanouts (``-1``, the default) it also equals offline evaluation
(:func:`graphplat.training.loop.train`) and export of the same graph state.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from graphplat.service import GraphService

log = logging.getLogger(__name__)

__all__ = ["NodeScorer", "NodeScore", "BatchScores", "fanouts_from_config"]


@dataclass
class NodeScore:
    """The score of one node: ``probabilities`` float32 ``(num_classes,)``, ``score`` the
    class-1 probability of a binary model (NaN otherwise), and the size of the sample."""

    node_id: int
    probabilities: np.ndarray
    score: float
    sampled_edges: int
    input_nodes: int


@dataclass
class BatchScores:
    """The scores of a batch: ``node_ids`` (n,), ``probabilities`` float32 (n, num_classes),
    ``scores`` float64 (n,) (class-1 probability of a binary model, else NaN), ``first_hop``
    int64 (n,) sampled in-edges of each node, and the size of the batch's joint sample
    (``sampled_edges`` over all layers, ``input_nodes``)."""

    node_ids: np.ndarray
    probabilities: np.ndarray
    scores: np.ndarray
    first_hop: np.ndarray
    sampled_edges: int
    input_nodes: int


def fanouts_from_config(config: Dict[str, Any]) -> List[Any]:
    """Fanouts a checkpoint's training config implies for inference, the ones offline
    evaluation uses: ``eval_fanouts`` when the config sets them, else the full neighborhood
    (-1) in every layer, as ``graphplat export`` computes. The training ``fanouts`` only give
    the number of layers: sampled neighborhoods would make online scores differ from the
    evaluated and exported ones."""
    if config.get("eval_fanouts"):
        return list(config["eval_fanouts"])
    f = config.get("fanouts")
    if not f:
        raise ValueError("the checkpoint's training config has no fanouts; pass --fanouts")
    return [-1] * len(f)


class NodeScorer:
    """Scores nodes of the model's target type from their sampled neighborhoods.

    Args:
        graph: the GraphService the neighborhoods and features come from.
        checkpoint: a ``best.pt`` of a node-classification model (``graphplat train
            --checkpoint-dir``).
        fanouts: per-layer fanouts, input layer first (default: :func:`fanouts_from_config`).
        seed: default sampling seed.
        strategy: sampling strategy (default uniform, as in training).
    """

    def __init__(self, graph: GraphService, checkpoint, *, fanouts: Optional[Sequence] = None,
                 seed: int = 0, strategy: str = "uniform"):
        from graphplat.sampling import NeighborSampler, NodeLoader
        from graphplat.training.loop import input_widths, load_trained

        self.graph = graph
        self.checkpoint = Path(checkpoint)
        from graphplat.inference.model import inference_encoder

        self.trained = load_trained(self.checkpoint, graph)
        graph = self.graph = self.trained.input_graph(graph)  # the training's computed inputs
        # a GCN normalizes with the graph's degrees, as training, evaluation and export do
        self.encoder, self.gcn_norm = inference_encoder(self.trained, graph, live=True)
        meta = self.trained.meta
        if meta.get("task") != "node_classification":
            raise ValueError(f"{checkpoint} holds a {meta.get('task')!r} model; scoring needs a "
                             "node_classification model")
        schema = graph.schema
        self.target_ntype = meta.get("target_ntype") or (schema.ntypes[0] if len(schema.ntypes) == 1 else None)
        if self.target_ntype is None:
            raise ValueError(f"{checkpoint}: the model has no target node type")
        schema.node_type(self.target_ntype)
        self.feature = meta["feature"]
        self.num_classes = int(meta["out"])
        self.fanouts = list(fanouts) if fanouts else fanouts_from_config(self.trained.config)
        if len(self.fanouts) != self.encoder.num_layers:
            raise ValueError(f"{len(self.fanouts)} fanouts for a model of {self.encoder.num_layers} "
                             f"layers; give one fanout per layer")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.seed = int(seed)
        self.sampler = NeighborSampler(schema, self.fanouts, strategy=strategy, key_by_id=True)
        feats = {t: [self.feature] for t, w in input_widths(graph, self.feature).items() if w}
        self.loader = NodeLoader(graph, {self.target_ntype: np.zeros(0, np.int64)}, self.sampler,
                                 batch_size=1, prefetch=0, labels=None, features=feats)
        # Whether scoring reads the seed itself from the graph (sampling its in-edges in the
        # last layer, or fetching its features): then an unknown id fails there with
        # IndexError and no separate lookup round trip is needed.
        nt = self.target_ntype
        samples_seed = any(f != 0 for et, f in self.sampler.fanouts[-1].items() if et[2] == nt)
        self._seed_is_read = {nt: samples_seed or nt in feats}

    def check_ntype(self, ntype: Optional[str]) -> str:
        """The target type when ``ntype`` is empty or names it; ValueError otherwise."""
        if not ntype:
            return self.target_ntype
        self.graph.schema.node_type(ntype)  # ValueError naming the known types
        if ntype != self.target_ntype:
            raise ValueError(f"the model scores {self.target_ntype!r} nodes, not {ntype!r}")
        return ntype

    def _forward(self, blocks):
        import torch

        from graphplat.training.loop import block_inputs, pick

        if self.gcn_norm is not None:
            self.gcn_norm.attach(blocks)
        with torch.inference_mode():
            out = self.encoder(blocks, block_inputs(blocks, self.feature))
            logits = pick(out, self.target_ntype)
            return torch.softmax(logits.float(), dim=1).numpy()

    def score_batch(self, node_ids, *, ntype: Optional[str] = None,
                    seed: Optional[int] = None) -> BatchScores:
        """Score ``node_ids`` (1-D, repeats allowed) from one joint sample of their
        neighborhoods and one forward (see the module docstring). IndexError naming the ids
        the graph does not hold, ValueError for a wrong node type, shape or seed."""
        nt = self.check_ntype(ntype)
        ids = np.ascontiguousarray(node_ids, dtype=np.int64)
        if ids.ndim != 1:
            raise ValueError(f"node ids must be 1-D, got shape {ids.shape}")
        s = self.seed if seed is None else int(seed)
        if s < 0:
            raise ValueError(f"seed must be >= 0, got {s}")
        if len(ids) == 0:
            return BatchScores(ids, np.zeros((0, self.num_classes), np.float32), np.zeros(0),
                               np.zeros(0, np.int64), 0, 0)
        uniq, inverse = np.unique(ids, return_inverse=True)
        if not self._seed_is_read.get(nt, False):
            self._check_present(nt, uniq)
        try:
            input_nodes, _, blocks = self.loader.collate({nt: uniq}, s)
        except IndexError:  # the graph servers do not hold some node (one round trip saved)
            self._check_present(nt, uniq)
            raise
        probs = self._forward(blocks).astype(np.float32, copy=False)
        last = blocks[-1]
        first_hop = np.zeros(len(uniq), np.int64)
        for et in last.canonical_etypes:
            if et[2] == nt and last.num_edges(et):
                first_hop += last.in_degrees(etype=et).numpy()
        inputs = (sum(len(v) for v in input_nodes.values()) if isinstance(input_nodes, dict)
                  else len(input_nodes))
        scores = probs[:, 1].astype(np.float64) if self.num_classes == 2 else np.full(len(uniq), math.nan)
        return BatchScores(ids, probs[inverse], scores[inverse], first_hop[inverse],
                           int(sum(b.num_edges() for b in blocks)), int(inputs))

    def _check_present(self, nt: str, ids: np.ndarray) -> None:
        present = self.graph.lookup(nt, ids)
        if not present.all():
            bad = ids[~present]
            raise IndexError(f"nodes {bad[:5].tolist()} ({len(bad)} in all) are not {nt!r} nodes of the graph")

    def score_one(self, node_id: int, *, ntype: Optional[str] = None,
                  seed: Optional[int] = None) -> NodeScore:
        """Score one node (a batch of one; ``sampled_edges`` / ``input_nodes`` count its whole
        sample). IndexError when the graph does not hold it, ValueError for a wrong node type."""
        b = self.score_batch(np.asarray([int(node_id)], np.int64), ntype=ntype, seed=seed)
        return NodeScore(int(node_id), b.probabilities[0], float(b.scores[0]), b.sampled_edges, b.input_nodes)

    def info(self) -> dict:
        return {"checkpoint": str(self.checkpoint), "task": self.trained.meta.get("task"),
                "model": self.trained.config.get("model"), "target_ntype": self.target_ntype,
                "feature": self.feature, "num_classes": self.num_classes, "fanouts": self.fanouts,
                "seed": self.seed}
