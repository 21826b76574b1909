"""The training loop: sampled minibatch training over any GraphService, with early stopping,
exact-resume checkpoints and metrics, for node classification and rating prediction.

``train(config)`` runs one training per seed in ``config.seeds`` and returns per-seed
results plus their mean and std; ``graphplat train`` is its command line.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from graphplat.models.gnn import GNNModel
from graphplat.sampling import LinkLoader, NodeLoader, all_edges
from graphplat.sampling.loader import SEED_COUNT
from graphplat.service import GraphService
from graphplat.training import metrics as M
from graphplat.training.checkpoint import (  # noqa: F401 - re-exported
    graph_signature,
    read_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from graphplat.training.config import TrainConfig
from graphplat.training.tasks import Task, open_task, prepare_inputs  # noqa: F401 - re-exported
from graphplat.typing import Canonical

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
#: Model-spec keys the trainers consume themselves (not encoder arguments).
RATING_HEAD_KEYS = ("num_basis", "decoder_dropout", "input_dropout")


# ----------------------------------------------------------------------------- models

def input_widths(graph: GraphService, feature: str) -> Dict[str, int]:
    """Width of ``feature`` per node type (0 for types without it: learned embedding)."""
    out = {}
    for nt in graph.schema.node_types:
        out[nt.name] = nt.feature(feature).width if feature in nt.feature_names else 0
    return out


def make_model(spec: Dict[str, Any], graph: GraphService, feature: str, out: int,
               target_ntype: Optional[str], etypes: Optional[List[Canonical]] = None,
               num_ids: Optional[Dict[str, int]] = None, id_index: Sequence[str] = ()) -> nn.Module:
    """A GNN from ``spec`` (see :func:`graphplat.models.registry.build_model`) for ``graph``:
    input widths of ``feature`` per node type, ``out`` outputs, predicting ``target_ntype``
    (None: every type), message passing over ``etypes`` (default: every edge type).

    ``spec["id_embedding"] = d`` adds a learned d-wide embedding per node to the inputs
    (:class:`~graphplat.models.id_embedding.WithIdEmbeddings`; table sizes ``num_ids`` or
    read from the graph; ``id_index``: the types whose rows are id ranks, for a model
    rebuilt from a checkpoint).
    """
    spec = dict(spec)
    dim = spec.pop("id_embedding", None)
    if dim:
        from graphplat.models.id_embedding import WithIdEmbeddings, embedding_sizes

        index = None
        if not num_ids:
            num_ids, index = embedding_sizes(graph, graph.schema.ntypes)
        inner = _make_gnn(spec, graph, feature, out, target_ntype, etypes, extra_width=int(dim))
        return WithIdEmbeddings(inner, num_ids, int(dim), index=index, indexed=id_index)
    return _make_gnn(spec, graph, feature, out, target_ntype, etypes)


class FeatureMLP(nn.Module):
    """The features-only baseline: an MLP on each seed's own features, ignoring the graph.

    Takes the same ``(blocks, x)`` as the GNNs and reads only the last block's destination
    rows (the seeds come first among every block's source nodes).
    """

    def __init__(self, in_feats: int, hidden: int, out: int, num_layers: int = 2, dropout: float = 0.0,
                 target_ntype: Optional[str] = None):
        super().__init__()
        dims = [in_feats] + [hidden] * (num_layers - 1) + [out]
        layers: List[nn.Module] = []
        for i in range(len(dims) - 1):
            layers.append(nn.Linear(dims[i], dims[i + 1]))
            if i < len(dims) - 2:
                layers += [nn.ReLU(), nn.Dropout(dropout)]
        self.net = nn.Sequential(*layers)
        self.target_ntype = target_ntype
        self.out_feats = out
        self.num_layers = num_layers

    def project_inputs(self, x, block=None):
        """The inputs unchanged (so ``WithIdEmbeddings`` can wrap the MLP)."""
        return x

    def forward(self, blocks, x):
        """Logits of the last block's destination nodes of the target type."""
        nt = self.target_ntype
        feats = x[nt] if isinstance(x, dict) else x
        n = blocks[-1].num_dst_nodes(nt) if nt is not None else blocks[-1].num_dst_nodes()
        out = self.net(feats[:n])
        return {nt: out} if isinstance(x, dict) else out


class FeatureMLPLayers(GNNModel):
    """A :class:`FeatureMLP` through the layer-wise interface the exporter runs: one node type
    (``ntype``), no edge types (blocks of the destination nodes alone), layer ``i`` = the
    MLP's ``i``-th linear map (ReLU after the hidden ones) on each node's own row, so the
    composition is the MLP itself (its dropout is off in eval mode)."""

    def __init__(self, mlp: FeatureMLP, ntype: str):
        super().__init__()
        self.mlp = mlp
        self._linears = [m for m in mlp.net if isinstance(m, nn.Linear)]
        self.num_layers = len(self._linears)
        self.out_feats = mlp.out_feats
        self.ntypes, self.canonical_etypes = [ntype], []
        self.target_ntype = ntype
        self.in_feats = {ntype: self._linears[0].in_features}

    def layer_output_ntypes(self, i: int) -> List[str]:
        """Every layer produces the one node type."""
        return list(self.ntypes)

    def layer_output_dim(self, i: int) -> int:
        """Width of linear map ``i``."""
        return self._linears[i].out_features

    def project_inputs(self, x, block=None):
        """The features as a one-type dict."""
        return x if isinstance(x, dict) else {self.target_ntype: x}

    def layer_forward(self, i: int, block, h):
        """Linear map ``i`` (and ReLU unless last) on the block's destination rows."""
        nt = self.target_ntype
        z = self._linears[i](h[nt][:block.num_dst_nodes(nt)])
        return {nt: z.relu() if i < self.num_layers - 1 else z}


def _make_gnn(spec, graph, feature, out, target_ntype, etypes, extra_width: int = 0) -> nn.Module:
    from graphplat.models.registry import build_model

    name = spec["name"]
    schema = graph.schema
    if name == "mlp":
        nt = target_ntype or schema.ntypes[0]
        opts = {k: v for k, v in spec.items() if k in ("hidden", "num_layers", "dropout")}
        return FeatureMLP(input_widths(graph, feature)[nt] + extra_width, out=out,
                          target_ntype=target_ntype if len(schema.ntypes) > 1 else None,
                          **{"hidden": 64, **opts})
    if name in ("sage", "graphsage", "gcn", "gat"):
        if len(schema.ntypes) != 1 or len(etypes or schema.etypes) != 1:
            raise ValueError(f"model {name!r} is homogeneous but the graph has node types {schema.ntypes} "
                             f"and edge types {schema.etypes}: use 'rgcn' or 'hsage'")
        return build_model(spec, {"in_feats": input_widths(graph, feature)[schema.ntypes[0]] + extra_width}, out=out)
    raw = input_widths(graph, feature)
    widths = {nt: w + extra_width for nt, w in raw.items()}
    if name == "gcmc" and spec.get("side_hidden") and "side_widths" not in spec:
        # the graph's features come first, the id embeddings after them (WithIdEmbeddings)
        spec = {**spec, "side_widths": raw}
    return build_model(spec, {"in_feats": widths, "ntypes": schema.ntypes,
                              "canonical_etypes": list(etypes or schema.canonical_etypes),
                              "target_ntype": target_ntype}, out=out)


def block_inputs(blocks, feature: str):
    """Input features of ``blocks[0]`` (a tensor, or a dict over the types that have it)."""
    try:
        return blocks[0].srcdata[feature]
    except KeyError:  # no node type carries the feature: models use learned embeddings
        return {}


def pick(out, ntype: Optional[str]):
    """The target type's rows of a model output (a tensor or a dict)."""
    return out[ntype] if isinstance(out, dict) else out


# ----------------------------------------------------------------------------- metrics

def classification_metrics(y: np.ndarray, logits: np.ndarray, num_classes: int) -> Dict[str, float]:
    """accuracy, macro-F1, micro-F1, and for two classes ROC-AUC and PR-AUC of class 1."""
    pred = logits.argmax(1)
    classes = list(range(num_classes))
    out = {"accuracy": M.accuracy(y, pred), "macro_f1": M.macro_f1(y, pred, classes),
           "micro_f1": M.micro_f1(y, pred, classes)}
    if num_classes == 2 and 0 < y.sum() < len(y):
        z = logits - logits.max(1, keepdims=True)
        p = np.exp(z[:, 1]) / np.exp(z).sum(1)
        out["roc_auc"] = M.roc_auc(y, p)
        out["pr_auc"] = M.average_precision(y, p)
    return out


# ----------------------------------------------------------------------------- trainers

@dataclass
class RunResult:
    """One seed's outcome: best epoch, its validation and test metrics, and the history."""

    seed: int
    best_epoch: int
    val: Dict[str, float]
    test: Dict[str, float]
    history: List[Dict[str, Any]]
    seconds: float
    selection: Optional[Dict[str, Any]] = None  # model selection: chosen + every candidate

    def as_dict(self) -> Dict[str, Any]:
        """A JSON-safe dict."""
        out = {"seed": self.seed, "best_epoch": self.best_epoch, "val": self.val, "test": self.test,
               "seconds": round(self.seconds, 2), "epochs_run": len(self.history)}
        if self.selection is not None:
            out["selection"] = self.selection
        return out


class Trainer:
    """Shared loop: epochs, evaluation, early stopping on the validation metric, checkpoints.

    Subclasses define the model, :meth:`train_epoch` and :meth:`evaluate`.
    """

    higher_is_better = True
    default_metric = "accuracy"

    def __init__(self, cfg: TrainConfig, task: Task, seed: int):
        self.cfg, self.task, self.seed = cfg, task, seed
        self.metric = cfg.metric or self.default_metric
        torch.manual_seed(seed)
        np.random.seed(seed)
        self.ckpt_dir = Path(cfg.checkpoint_dir) / f"seed-{seed}" if cfg.checkpoint_dir else None
        if cfg.rating_loss and task.task != "rating":
            raise ValueError(f"rating_loss {cfg.rating_loss} only applies to the rating task, not {task.task!r}")
        self._ema: Optional[Dict[str, torch.Tensor]] = None  # set up by fit() when ema_decay > 0
        self._ema_updates = 0

    def parameters(self):
        """Every trainable parameter."""
        return self.modules().parameters()

    def modules(self) -> nn.Module:
        """The module(s) trained, as one nn.Module (its state_dict is checkpointed)."""
        raise NotImplementedError

    def train_epoch(self, epoch: int, opt: torch.optim.Optimizer) -> float:
        """One pass over the training loader; returns the mean training loss."""
        raise NotImplementedError

    def evaluate(self, split: str) -> Dict[str, float]:
        """Metrics on ``split`` ("val" or "test")."""
        raise NotImplementedError

    def has_split(self, split: str) -> bool:
        """Whether ``split`` holds anything to evaluate (a dataset may have no validation
        split, e.g. MovieLens with ``val_fraction: 0``)."""
        return len(self.eval_loaders[split]) > 0

    def meta(self) -> Dict[str, Any]:
        """What :func:`load_trained` needs to rebuild the modules from a checkpoint."""
        raise NotImplementedError

    def _step(self, opt: torch.optim.Optimizer, loss: torch.Tensor) -> float:
        """One optimizer step on ``loss`` (and the weight average's update); returns its value."""
        opt.zero_grad()
        loss.backward()
        opt.step()
        if self._ema is not None:
            self._ema_updates += 1
            # TensorFlow's ExponentialMovingAverage with num_updates: a short warm-up so the
            # average is not dominated by the initial weights
            d = min(self.cfg.ema_decay, (1 + self._ema_updates) / (10 + self._ema_updates))
            with torch.no_grad():
                for name, p in self.modules().named_parameters():
                    self._ema[name].mul_(d).add_(p.detach(), alpha=1 - d)
        return float(loss)

    def _id_index(self) -> List[str]:
        """Node types whose id embeddings are indexed by rank (see WithIdEmbeddings)."""
        from graphplat.models.id_embedding import WithIdEmbeddings
        return next((m.indexed for m in self.modules().modules() if isinstance(m, WithIdEmbeddings)), [])

    @contextlib.contextmanager
    def _averaged(self):
        """Within the block, the modules hold the averaged weights (``ema_decay``); the
        trained weights are restored afterwards. A no-op without ``ema_decay``."""
        if self._ema is None:
            yield
            return
        params = dict(self.modules().named_parameters())
        saved = {k: p.detach().clone() for k, p in params.items()}
        with torch.no_grad():
            for k, p in params.items():
                p.copy_(self._ema[k])
        try:
            yield
        finally:
            with torch.no_grad():
                for k, p in params.items():
                    p.copy_(saved[k])

    def _better(self, a: float, b: Optional[float]) -> bool:
        return b is None or (a > b if self.higher_is_better else a < b)

    def fit(self) -> RunResult:
        """Train until ``epochs`` or early stopping; test the best validation state."""
        cfg = self.cfg
        t0 = time.perf_counter()
        opt = torch.optim.Adam(self.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        if cfg.ema_decay:
            self._ema = {k: p.detach().clone() for k, p in self.modules().named_parameters()}
        start, best, best_epoch, best_state, stale, history = 0, None, -1, None, 0, []
        last = self.ckpt_dir / "last.pt" if self.ckpt_dir else None
        if last is not None and cfg.resume and last.exists():
            state = read_checkpoint(last, f"delete {last} or train without --resume")
            self.modules().load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            if self._ema is not None:
                self._ema, self._ema_updates = state["ema"], state["ema_updates"]
            set_rng_state(state["rng"])
            start, best, best_epoch, stale = state["epoch"] + 1, state["best"], state["best_epoch"], state["stale"]
            best_state, history = state["best_state"], state["history"]
            log.info("resumed seed %d from %s at epoch %d (best %s %.4f at epoch %d)", self.seed, last,
                     start, self.metric, best if best is not None else float("nan"), best_epoch)
        validate = self.has_split("val")
        if not validate:
            log.info("seed %d: no validation split: training all %d epochs and keeping the last "
                     "weights%s", self.seed, cfg.epochs, " (their moving average)" if self._ema is not None else "")
        bar = tqdm(range(start, cfg.epochs), desc=f"{self.task.name} seed {self.seed}", unit="epoch",
                   disable=None, initial=start, total=cfg.epochs)
        for epoch in bar:
            loss = self.train_epoch(epoch, opt)
            row: Dict[str, Any] = {"epoch": epoch, "loss": loss}
            if validate and ((epoch + 1) % cfg.eval_every == 0 or epoch == cfg.epochs - 1):
                with self._averaged():  # validate (and keep) the averaged weights
                    val = self.evaluate("val")
                    row["val"] = val
                    score = val[self.metric]
                    if self._better(score, best):
                        best, best_epoch, stale = score, epoch, 0
                        best_state = copy.deepcopy(self.modules().state_dict())
                    else:
                        stale += cfg.eval_every
                bar.set_postfix(loss=f"{loss:.4f}", **{self.metric: f"{score:.4f}"})
                log.debug("seed %d epoch %d loss %.4f val %s", self.seed, epoch, loss, val)
            history.append(row)
            if last is not None:
                save_checkpoint(last, {"model": self.modules().state_dict(), "optimizer": opt.state_dict(),
                                       "rng": rng_state(), "epoch": epoch, "best": best,
                                       "best_epoch": best_epoch, "stale": stale, "best_state": best_state,
                                       "history": history, "config": cfg.to_dict(), "ema": self._ema,
                                       "ema_updates": self._ema_updates})
            if cfg.patience and stale >= cfg.patience:
                log.info("seed %d: early stop at epoch %d (best %s %.4f at epoch %d)", self.seed, epoch,
                         self.metric, best, best_epoch)
                break
        bar.close()
        if best_state is not None:
            self.modules().load_state_dict(best_state)
        elif self._ema is not None:  # no validation ran: test the average all the same
            with torch.no_grad():
                for k, p in self.modules().named_parameters():
                    p.copy_(self._ema[k])
        if not validate:  # the last epoch's weights are the result
            best_epoch = history[-1]["epoch"] if history else -1
        val = self.evaluate("val") if validate else {}
        test = self.evaluate("test")
        if self.ckpt_dir is not None:
            save_checkpoint(self.ckpt_dir / "best.pt", {"model": self.modules().state_dict(),
                                                        "config": cfg.to_dict(), "epoch": best_epoch,
                                                        "val": val, "test": test,
                                                        "meta": {**self.meta(), "graph": graph_signature(
                                                            self.task.graph, self.task.feature),
                                                                 "inputs": self.task.inputs,
                                                                 "id_index": self._id_index()}})
        return RunResult(self.seed, best_epoch, val, test, history, time.perf_counter() - t0)


class GCNNorm:
    """GCN's symmetric normalization with the graph's degrees: edge weight
    ``1 / sqrt(deg(u) deg(v))`` on every block edge ``u -> v``, so sampled and full-neighbor
    blocks compute Kipf & Welling's ``D^-1/2 A D^-1/2`` instead of block-local degrees.
    ``deg`` is the in-degree (self loops included when the graph has them), which is the
    symmetric degree on the undirected graphs GCN is meant for.

    By default the degrees of every node are read once; ``live`` reads those of each
    batch's nodes instead (one ``degrees`` call per batch), for a graph that changes while
    it is used (online scoring: new nodes and edges count at once)."""

    KEY = "gcn_norm"

    def __init__(self, graph: GraphService, *, live: bool = False):
        schema = graph.schema
        if len(schema.ntypes) != 1 or len(schema.etypes) != 1:
            raise ValueError("GCN normalization needs a graph with one node type and one edge type")
        self.graph, self.etype, self.live = graph, schema.canonical_etypes[0], live
        if not live:
            self.index, self.inv_sqrt = self._table(graph.node_ids(schema.ntypes[0]))

    def _table(self, ids: np.ndarray):
        from graphplat import _core

        deg = self.graph.degrees(self.etype, ids, "in").astype(np.float32)
        return _core.IdMap(ids), torch.from_numpy(
            np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1)), 0.0).astype(np.float32))

    def attach(self, blocks) -> None:
        """Set ``edata[KEY]`` on every block."""
        import dgl

        index, inv_sqrt = (self._table(np.unique(np.concatenate([b.srcdata[dgl.NID].numpy() for b in blocks])))
                           if self.live else (self.index, self.inv_sqrt))
        for b in blocks:
            s, d = b.edges()
            su = index.lookup(b.srcdata[dgl.NID][s].numpy())
            du = index.lookup(b.dstdata[dgl.NID][d].numpy())
            b.edata[self.KEY] = inv_sqrt[su] * inv_sqrt[du]


class NodeClassificationTrainer(Trainer):
    """Cross-entropy on the labelled nodes of ``target_ntype`` with sampled neighborhoods."""

    def __init__(self, cfg: TrainConfig, task: Task, seed: int):
        super().__init__(cfg, task, seed)
        g, nt = task.graph, task.target_ntype
        if nt is None:
            if len(g.schema.ntypes) != 1:
                raise ValueError("node classification needs target_ntype for a graph with several node types")
            nt = task.target_ntype = g.schema.ntypes[0]
        ids = g.node_ids(nt)
        cols = g.node_features(nt, ids, [task.label, task.split])
        labels, split = cols[task.label], cols[task.split]
        self.ids = {name: ids[split == code] for code, name in enumerate(SPLITS)}
        for name, v in self.ids.items():
            if len(v) == 0:
                raise ValueError(f"no {name} nodes of {nt!r} (feature {task.split!r} == {SPLITS.index(name)})")
        self.num_classes = task.num_classes or int(labels[split >= 0].max()) + 1
        if self.num_classes == 2 and cfg.metric is None:
            self.metric = "roc_auc"
        spec = dict(cfg.model)
        # dropout on the raw input features (Kipf & Welling's GCN drops inputs too)
        self.input_dropout = float(spec.pop("input_dropout", 0.0))
        self.gcn_norm = None
        if spec["name"] == "gcn" and spec.get("norm", "both") == "both":
            # Block degrees depend on the batch; use the graph's own (see GCNNorm).
            self.gcn_norm = GCNNorm(g)
            spec.update(norm="none", edge_weight=GCNNorm.KEY)
        self.model = make_model(spec, g, task.feature, self.num_classes, nt)
        self.class_weight = class_weights(cfg.class_weight, labels[split == 0], self.num_classes)
        kw = dict(batch_size=cfg.batch_size, prefetch=cfg.prefetch, labels=task.label,
                  features={t: [task.feature] for t, w in input_widths(g, task.feature).items() if w})
        fanouts = cfg.fanouts
        eval_fanouts = cfg.eval_fanouts or [-1] * len(cfg.fanouts)
        if spec["name"] == "mlp":  # it reads only the seeds' own features: sample one neighbor
            fanouts = eval_fanouts = [1] * len(cfg.fanouts)  # (a block needs its relation)
        self.balanced = bool(cfg.balanced_sampling)
        weights = balanced_weights(labels[split == 0]) if self.balanced else None
        self.train_loader = NodeLoader(g, {nt: self.ids["train"]}, fanouts, shuffle=True, seed=seed,
                                       sample_weights=weights, **kw)
        kw["batch_size"] = cfg.eval_batch_size
        self.eval_loader_kw = dict(kw)
        self.eval_loaders = {s: NodeLoader(g, {nt: self.ids[s]}, eval_fanouts, seed=seed, **kw)
                             for s in ("val", "test")}

    def modules(self) -> nn.Module:
        return self.model

    def meta(self) -> Dict[str, Any]:
        return {"task": "node_classification", "out": self.num_classes, "target_ntype": self.task.target_ntype,
                "feature": self.task.feature, "label": self.task.label, "etypes": None,
                "num_ids": getattr(self.model, "num_ids", None)}

    def train_epoch(self, epoch: int, opt) -> float:
        self.model.train()
        self.train_loader.set_epoch(epoch)
        total, n = 0.0, 0
        nt = self.task.target_ntype
        for _, _, blocks in self.train_loader:
            if self.gcn_norm is not None:
                self.gcn_norm.attach(blocks)
            x = block_inputs(blocks, self.task.feature)
            if self.input_dropout:
                x = {k: F.dropout(v, self.input_dropout) for k, v in x.items()} if isinstance(x, dict) \
                    else F.dropout(x, self.input_dropout)
            logits = pick(self.model(blocks, x), nt)
            y = pick(blocks[-1].dstdata[self.task.label], nt)
            # balanced_sampling: a seed drawn k times counts k times (the mean over the draws)
            counts = pick(blocks[-1].dstdata[SEED_COUNT], nt) if self.balanced else None
            if counts is None:
                loss = F.cross_entropy(logits, y, weight=self.class_weight)
            else:
                cw = counts if self.class_weight is None else counts * self.class_weight[y]
                loss = (F.cross_entropy(logits, y, reduction="none") * cw).sum() / cw.sum()
            aux_weight = getattr(self.model, "aux_weight", 0.0)
            if aux_weight:  # FraudSAGE's neighbor scorer learns the labels too (CARE-GNN)
                rows = pick(x, nt)[: len(y)]
                pw = None if self.class_weight is None else self.class_weight[1:] / self.class_weight[0]
                aux = F.binary_cross_entropy_with_logits(self.model.aux_logits(rows), (y == 1).float(), pos_weight=pw,
                                                         reduction="none")
                loss = loss + aux_weight * (aux.mean() if counts is None else (aux * counts).sum() / counts.sum())
            total += self._step(opt, loss) * len(y)
            n += len(y)
        return total / max(n, 1)

    @torch.no_grad()
    def predict(self, split: str) -> Tuple[np.ndarray, np.ndarray]:
        """(labels, logits) of a split's nodes."""
        self.model.eval()
        nt = self.task.target_ntype
        ys, outs = [], []
        for _, _, blocks in self.eval_loaders[split]:
            if self.gcn_norm is not None:
                self.gcn_norm.attach(blocks)
            outs.append(pick(self.model(blocks, block_inputs(blocks, self.task.feature)), nt).numpy())
            ys.append(pick(blocks[-1].dstdata[self.task.label], nt).numpy())
        return np.concatenate(ys), np.concatenate(outs)

    def evaluate(self, split: str) -> Dict[str, float]:
        y, logits = self.predict(split)
        return classification_metrics(y, logits, self.num_classes)


class GBDTTrainer(NodeClassificationTrainer):
    """Node classification with the ``gbdt`` model (:class:`~graphplat.models.gbdt.GBDTModel`):
    one whole-neighborhood block per node (the config's fanouts are replaced by ``[-1]``, in the
    saved config too, so evaluation, export and serving read the same rows), the trees fitted on
    the training nodes' rows with early stopping on the validation nodes', then evaluated through
    the model's forward like any GNN. ``class_weight`` does not apply (the metrics rank scores)."""

    def __init__(self, cfg: TrainConfig, task: Task, seed: int):
        cfg = TrainConfig.from_dict({**cfg.to_dict(), "fanouts": [-1], "eval_fanouts": [-1]})
        super().__init__(cfg, task, seed)

    def _rows(self, split: str) -> Tuple[np.ndarray, np.ndarray]:
        """(features, labels) of a split's nodes, computed from their blocks."""
        nt = self.task.target_ntype
        ids = self.ids[split]
        loader = self.eval_loaders.get(split) or NodeLoader(self.task.graph, {nt: ids}, [-1], seed=self.seed,
                                                              **self.eval_loader_kw)
        xs, ys = [], []
        for _, _, blocks in loader:
            xs.append(self.model.features(blocks[-1], self.model.project_inputs(
                block_inputs(blocks, self.task.feature))))
            ys.append(pick(blocks[-1].dstdata[self.task.label], nt).numpy())
        return np.concatenate(xs), np.concatenate(ys)

    def fit(self) -> RunResult:
        """Fit the trees, evaluate, save ``best.pt`` (the checkpoint format of every model)."""
        t0 = time.perf_counter()
        x, y = self._rows("train")
        xv, yv = self._rows("val")
        best = self.model.fit(x, y, xv, yv, seed=self.seed)
        val, test = self.evaluate("val"), self.evaluate("test")
        log.info("seed %d gbdt: %d trees, val %s %.4f", self.seed, best, self.metric, val.get(self.metric, np.nan))
        if self.ckpt_dir is not None:
            save_checkpoint(self.ckpt_dir / "best.pt", {
                "model": self.model.state_dict(), "config": self.cfg.to_dict(), "epoch": best, "val": val,
                "test": test, "meta": {**self.meta(), "graph": graph_signature(self.task.graph, self.task.feature),
                                       "inputs": self.task.inputs, "id_index": []}})
        return RunResult(self.seed, best, val, test, [], time.perf_counter() - t0)


def trainer_class(spec: Dict[str, Any], cls):
    """The trainer of model ``spec`` for a task whose trainer is ``cls`` (gbdt: :class:`GBDTTrainer`)."""
    if spec.get("name") == "gbdt":
        if cls is not NodeClassificationTrainer:
            raise ValueError("the gbdt model does node classification only")
        return GBDTTrainer
    return cls


def balanced_weights(labels: np.ndarray) -> np.ndarray:
    """Per node, ``1 / count of its class`` among ``labels`` (int, one per training node):
    drawing nodes with these weights makes every class equally likely."""
    counts = np.bincount(labels)
    return 1.0 / counts[labels]


def class_weights(spec, train_labels: np.ndarray, num_classes: int) -> Optional[torch.Tensor]:
    """Per-class loss weights from ``TrainConfig.class_weight``: None (unweighted),
    ``"balanced"`` (``n / (num_classes * count_c)`` over ``train_labels``; a class absent from
    them gets weight 1) or a list of one weight per class. Returns a float32 tensor or None;
    ValueError when a list has the wrong length."""
    if spec is None:
        return None
    if spec == "balanced":
        counts = np.bincount(train_labels[train_labels >= 0], minlength=num_classes)[:num_classes]
        w = np.where(counts > 0, counts.sum() / (num_classes * np.maximum(counts, 1)), 1.0)
        return torch.tensor(w, dtype=torch.float32)
    if len(spec) != num_classes:
        raise ValueError(f"class_weight has {len(spec)} weights but the task has {num_classes} classes")
    return torch.tensor(spec, dtype=torch.float32)


def select_etypes(candidates: List[Canonical], patterns: List[str], held_out) -> List[Canonical]:
    """The ``candidates`` whose relation name or ``src:rel:dst`` string matches one of the
    shell-style ``patterns`` (``fnmatch``: ``*``, ``?``, ``[...]``), in ``candidates`` order.
    Raises ValueError for a pattern matching no candidate (naming the held-out types it hits,
    which never pass messages)."""
    import fnmatch

    names = lambda et: (et[1], ":".join(et))  # noqa: E731
    out = []
    for pat in patterns:
        hit = [et for et in candidates if any(fnmatch.fnmatchcase(n, pat) for n in names(et))]
        if not hit:
            bad = [":".join(et) for et in held_out if any(fnmatch.fnmatchcase(n, pat) for n in names(et))]
            why = f" (held-out types {bad} never pass messages)" if bad else ""
            raise ValueError(f"mp_etypes pattern {pat!r} matches no message-passing edge type{why}; "
                             f"candidates: {', '.join(':'.join(et) for et in candidates)}")
        out += [et for et in hit if et not in out]
    return [et for et in candidates if et in out]


class EdgeTaskTrainer(Trainer):
    """Shared set-up of the edge tasks: held-out edge types kept out of message passing,
    leak-free exclusion of each batch's target pairs, per-type fanouts, loader options.

    Message passing uses every edge type but the held-out val/test ones, or those matching
    ``cfg.mp_etypes``. A training batch's pairs ``(u, v)`` are removed from every
    message-passing type between the train type's endpoint types, in both directions (the
    train type, its reverse and any parallel relation such as a rating-typed copy)."""

    task_name = "edge task"

    def __init__(self, cfg: TrainConfig, task: Task, seed: int):
        super().__init__(cfg, task, seed)
        g = task.graph
        if not all(s in task.target_etypes for s in SPLITS):
            raise ValueError(f"{self.task_name} needs target_etypes for {SPLITS}, got {task.target_etypes}")
        self.train_etype = train_et = task.target_etypes["train"]
        held_out = {task.target_etypes["val"], task.target_etypes["test"]} - {train_et}
        self.mp_etypes = [et for et in g.schema.canonical_etypes if et not in held_out]
        if cfg.mp_etypes is not None:
            self.mp_etypes = select_etypes(self.mp_etypes, cfg.mp_etypes, sorted(held_out))
        ends = (train_et[0], train_et[2])
        self.leak_same = [et for et in self.mp_etypes if (et[0], et[2]) == ends]
        self.leak_swapped = [et for et in self.mp_etypes if (et[2], et[0]) == ends]
        self.loader_kw = dict(prefetch=cfg.prefetch, features={t: [task.feature] for t, w in
                                                               input_widths(g, task.feature).items() if w})

    def mp_fanouts(self, spec) -> List[Dict[Canonical, int]]:
        """Per-layer fanouts over the message-passing edge types only (ints, or dicts by
        relation name)."""
        return [{et: (f if isinstance(f, int) else f.get(et[1], 0)) for et in self.mp_etypes} for f in spec]

    def train_link_loader(self, src, dst, **kw) -> LinkLoader:
        """The shuffled training LinkLoader over the train edges, excluding each batch's
        pairs from every message-passing type that links the same nodes (see the class
        docstring)."""
        common = dict(batch_size=self.cfg.batch_size, shuffle=True, seed=self.seed, **self.loader_kw, **kw)
        edges, fanouts = {self.train_etype: (src, dst)}, self.mp_fanouts(self.cfg.fanouts)
        if set(self.leak_same) - {self.train_etype} or len(self.leak_swapped) > 1:
            # parallel relations between the same nodes (e.g. one type per rating level)
            return LinkLoader(self.task.graph, edges, fanouts, exclude="node_pairs", **common)
        # the train type and at most its reverse: LinkLoader's own exclusion does it
        reverse = {self.train_etype: self.leak_swapped[0]} if self.leak_swapped else None
        return LinkLoader(self.task.graph, edges, fanouts, exclude="reverse_types" if reverse else "self",
                          reverse_etypes=reverse, **common)


def _takes_input_dropout(spec: Dict[str, Any]) -> bool:
    """Whether the encoder named by ``spec`` has its own ``input_dropout`` argument."""
    from graphplat.models.registry import spec_keys

    try:
        return "input_dropout" in spec_keys(spec["name"])
    except (ValueError, KeyError):  # 'mlp' and the like: the trainer applies it
        return False


class RatingTrainer(EdgeTaskTrainer):
    """Rating prediction on the ``train`` edge type: a heterogeneous GNN encoder and GC-MC's
    bilinear decoder, trained with cross-entropy over rating levels; RMSE of the expected
    rating on the held-out edge types.

    Model keys besides the encoder's: ``num_basis`` (decoder basis matrices, default 2),
    ``decoder_dropout`` (dropout on the pair embeddings the decoder reads) and
    ``input_dropout`` (dropout on the encoder's projected inputs, id embeddings included,
    before message passing: GC-MC's input dropout; a 1-layer encoder's ``dropout`` acts on
    nothing). Both in [0, 1), default 0, train mode only. An encoder that takes
    ``input_dropout`` itself (``gcmc``, which drops only its message-passing inputs) gets it
    as a constructor argument instead. ``out``: the encoder's output width, which the decoder
    reads (default ``hidden``).

    The loss is the cross-entropy over rating levels, plus ``mse_weight`` times the MSE of
    the expected rating when the config sets ``rating_loss: {mse_weight: w}``.
    """

    higher_is_better = False
    default_metric = "rmse"
    task_name = "rating prediction"

    def __init__(self, cfg: TrainConfig, task: Task, seed: int):
        super().__init__(cfg, task, seed)
        from graphplat.models.heads import BilinearRatingDecoder

        g = task.graph
        self.edges = {}
        for s in SPLITS:
            et = task.target_etypes[s]
            src, dst, eids = all_edges(g, et)
            r = g.edge_features(et, eids, ["rating"])["rating"].astype(np.float32)
            self.edges[s] = (et, src, dst, r)
        self.rating_values = np.unique(self.edges["train"][3])
        out = int(cfg.model.get("out", cfg.model.get("hidden", 128)))
        spec = {k: v for k, v in cfg.model.items() if k not in RATING_HEAD_KEYS}
        self.input_dropout = float(cfg.model.get("input_dropout", 0.0))
        if not 0.0 <= self.input_dropout < 1.0:
            raise ValueError(f"model input_dropout must be in [0, 1), got {self.input_dropout!r}")
        if self.input_dropout and _takes_input_dropout(spec):  # the encoder applies it itself
            spec["input_dropout"], self.input_dropout = self.input_dropout, 0.0
        self.mse_weight = float(cfg.rating_loss.get("mse_weight", 0.0))
        self.encoder = make_model(spec, g, task.feature, out, None, self.mp_etypes)
        self.decoder = BilinearRatingDecoder(out, len(self.rating_values), num_basis=cfg.model.get("num_basis", 2),
                                             dropout=float(cfg.model.get("decoder_dropout", 0.0)),
                                             rating_values=self.rating_values.tolist())
        self._modules = nn.ModuleDict({"encoder": self.encoder, "decoder": self.decoder})
        et, s, d, r = self.edges["train"]
        self.train_loader = self.train_link_loader(s, d, edge_data={et: {"rating": r}})
        eval_f = self.mp_fanouts(cfg.eval_fanouts or cfg.fanouts)
        kw = self.loader_kw
        self.eval_loaders = {}
        for split in ("val", "test"):
            et, s, d, r = self.edges[split]
            self.eval_loaders[split] = LinkLoader(g, {et: (s, d)}, eval_f, edge_data={et: {"rating": r}},
                                                  batch_size=cfg.eval_batch_size, seed=seed, **kw)

    def modules(self) -> nn.Module:
        return self._modules

    def meta(self) -> Dict[str, Any]:
        return {"task": "rating", "out": self.encoder.out_feats, "target_ntype": None, "feature": self.task.feature,
                "etypes": [list(e) for e in self.mp_etypes], "rating_values": self.rating_values.tolist(),
                "target_etypes": {k: list(v) for k, v in self.task.target_etypes.items()},
                "num_ids": getattr(self.encoder, "num_ids", None)}

    def _scores(self, pair, blocks):
        if self.input_dropout and self.encoder.training:  # forward, with dropout after the projection
            h = self.encoder.project_inputs(block_inputs(blocks, self.task.feature), blocks[0])
            h = {k: F.dropout(v, self.input_dropout) for k, v in h.items()}
            for i, block in enumerate(blocks):
                h = self.encoder.layer_forward(i, block, h)
        else:
            h = self.encoder(blocks, block_inputs(blocks, self.task.feature))
        et = pair.canonical_etypes[[pair.num_edges(e) for e in pair.canonical_etypes].index(
            max(pair.num_edges(e) for e in pair.canonical_etypes))]
        s, d = pair.edges(etype=et)
        return self.decoder(h[et[0]][s], h[et[2]][d]), pair.edges[et].data["rating"]

    def train_epoch(self, epoch: int, opt) -> float:
        self._modules.train()
        self.train_loader.set_epoch(epoch)
        total, n = 0.0, 0
        for _, pair, blocks in self.train_loader:
            out, y = self._scores(pair, blocks)
            loss = F.cross_entropy(out.logits, self.decoder.rating_to_class(y))
            if self.mse_weight:
                loss = loss + self.mse_weight * F.mse_loss(out.rating, y)
            total += self._step(opt, loss) * len(y)
            n += len(y)
        return total / max(n, 1)

    @torch.no_grad()
    def evaluate(self, split: str) -> Dict[str, float]:
        self._modules.eval()
        ys, ps = [], []
        for _, pair, blocks in self.eval_loaders[split]:
            out, y = self._scores(pair, blocks)
            ps.append(out.rating.numpy())
            ys.append(y.numpy())
        return {"rmse": M.rmse(np.concatenate(ys), np.concatenate(ps))}


class LinkPredictionTrainer(EdgeTaskTrainer):
    """Link prediction on the ``train`` edge type: a GNN encoder and a dot-product head
    trained with binary cross-entropy against ``negatives`` sampled non-edges per edge;
    evaluated by full ranking of every destination node for each source node that has
    held-out edges (recall@K, NDCG@K), excluding its training edges. The encoder's outputs
    are the embeddings ``graphplat export`` writes and ``serve-model`` ranks by inner
    product."""

    default_metric = "recall"
    task_name = "link prediction"

    def __init__(self, cfg: TrainConfig, task: Task, seed: int):
        super().__init__(cfg, task, seed)
        from graphplat import _core
        from graphplat.models.heads import DotPredictor

        g = task.graph
        self.metric = cfg.metric or f"recall@{cfg.topk}"
        train_et = self.train_etype
        self.src_type, self.dst_type = train_et[0], train_et[2]
        self.edges = {s: all_edges(g, task.target_etypes[s])[:2] for s in SPLITS}
        hidden = int(cfg.model.get("hidden", 128))
        self.encoder = make_model(cfg.model, g, task.feature, hidden, None, self.mp_etypes)
        self.head = DotPredictor()
        self._modules = nn.ModuleDict({"encoder": self.encoder})
        s, d = self.edges["train"]
        self.train_loader = self.train_link_loader(s, d, negatives=cfg.negatives)
        self.ids = {nt: g.node_ids(nt) for nt in {self.src_type, self.dst_type}}
        self.index = {nt: _core.IdMap(v) for nt, v in self.ids.items()}
        self.embed_loader = NodeLoader(g, self.ids, self.mp_fanouts(cfg.eval_fanouts or cfg.fanouts),
                                       batch_size=cfg.eval_batch_size, seed=seed, labels=None, **self.loader_kw)

    def modules(self) -> nn.Module:
        return self._modules

    def meta(self) -> Dict[str, Any]:
        return {"task": "link_prediction", "out": self.encoder.out_feats, "target_ntype": None,
                "feature": self.task.feature, "etypes": [list(e) for e in self.mp_etypes],
                "target_etypes": {k: list(v) for k, v in self.task.target_etypes.items()},
                "num_ids": getattr(self.encoder, "num_ids", None)}

    def train_epoch(self, epoch: int, opt) -> float:
        self._modules.train()
        self.train_loader.set_epoch(epoch)
        total, n = 0.0, 0
        et = self.train_etype
        for _, pair, neg, blocks in self.train_loader:
            h = self.encoder(blocks, block_inputs(blocks, self.task.feature))
            ps, pd = pair.edges(etype=et)
            ns, nd = neg.edges(etype=et)
            pos = self.head(h[et[0]][ps], h[et[2]][pd])
            negs = self.head(h[et[0]][ns], h[et[2]][nd])
            loss = F.binary_cross_entropy_with_logits(torch.cat([pos, negs]),
                                                      torch.cat([torch.ones_like(pos), torch.zeros_like(negs)]))
            total += self._step(opt, loss) * len(ps)
            n += len(ps)
        return total / max(n, 1)

    @torch.no_grad()
    def embeddings(self) -> Dict[str, np.ndarray]:
        """Encoder outputs of every source- and destination-type node, rows in node_ids order."""
        self._modules.eval()
        out = {nt: np.zeros((len(v), self.encoder.out_feats), np.float32) for nt, v in self.ids.items()}
        for _, output_nodes, blocks in self.embed_loader:
            h = self.encoder(blocks, block_inputs(blocks, self.task.feature))
            for nt, ids in output_nodes.items():
                if len(ids):
                    out[nt][self.index[nt].lookup(ids.numpy())] = h[nt].numpy()
        return out

    def has_split(self, split: str) -> bool:
        return len(self.edges[split][0]) > 0

    def evaluate(self, split: str) -> Dict[str, float]:
        emb = self.embeddings()
        users = self.ids[self.src_type]
        n_items = len(self.ids[self.dst_type])
        hs, hd = self.edges[split]
        rows = np.unique(self.index[self.src_type].lookup(hs))
        row_of = np.full(len(users), -1, np.int64)
        row_of[rows] = np.arange(len(rows))
        relevant = np.zeros((len(rows), n_items), bool)
        relevant[row_of[self.index[self.src_type].lookup(hs)], self.index[self.dst_type].lookup(hd)] = True
        seen = np.zeros_like(relevant)
        ts, td = self.edges["train"]
        r = row_of[self.index[self.src_type].lookup(ts)]
        keep = r >= 0
        seen[r[keep], self.index[self.dst_type].lookup(td[keep])] = True
        if split == "test":  # validation edges are known at test time: do not rank them
            vs, vd = self.edges["val"]
            r = row_of[self.index[self.src_type].lookup(vs)]
            keep = r >= 0
            seen[r[keep], self.index[self.dst_type].lookup(vd[keep])] = True
        scores = emb[self.src_type][rows] @ emb[self.dst_type].T
        k = self.cfg.topk
        return {f"recall@{k}": M.recall_at_k(scores, relevant, k, exclude=seen),
                f"ndcg@{k}": M.ndcg_at_k(scores, relevant, k, exclude=seen)}


@dataclass
class TrainedModel:
    """A model rebuilt from a ``best.pt``: the GNN ``encoder`` (eval mode), the rating
    ``decoder`` (rating task) or None, the training config and the checkpoint's ``meta``."""

    encoder: nn.Module
    decoder: Optional[nn.Module]
    config: Dict[str, Any]
    meta: Dict[str, Any]

    def input_graph(self, graph: GraphService) -> GraphService:
        """``graph`` as the model reads it: wrapped in the training's computed inputs
        (columns, standardisation) when it had some, else ``graph`` itself."""
        if not self.meta.get("inputs"):
            return graph
        from graphplat.training.inputs import InputView
        return InputView.from_meta(graph, self.meta["inputs"])


def load_trained(path, graph: GraphService) -> TrainedModel:
    """Rebuild the model saved in ``path`` (a ``best.pt`` written by :func:`train` with a
    ``checkpoint_dir``) for ``graph`` (whose schema must match the training graph's)."""
    from graphplat.errors import CheckpointError, CheckpointMismatch
    from graphplat.models.heads import BilinearRatingDecoder

    path = Path(path)
    state = read_checkpoint(path)
    if "meta" not in state or "config" not in state:
        raise CheckpointError(f"{path} is not a graphplat model checkpoint: it has no meta/config "
                              f"(last.pt is for --resume)",
                              "use the best.pt next to it, written by `graphplat train --checkpoint-dir`")
    meta, cfg = state["meta"], state["config"]
    graph = TrainedModel(None, None, cfg, meta).input_graph(graph)  # the training's inputs
    fix = (f"use the graph the model was trained on ({_training_graph(cfg)}) or one with the same "
           f"schema and feature widths, or train a model on this graph")
    _check_signature(path, meta.get("graph"), graph_signature(graph, meta["feature"]), fix)
    etypes = [tuple(e) for e in meta["etypes"]] if meta.get("etypes") else None
    spec = {k: v for k, v in cfg["model"].items() if k not in RATING_HEAD_KEYS}
    try:
        encoder = make_model(spec, graph, meta["feature"], meta["out"], meta.get("target_ntype"), etypes,
                             meta.get("num_ids"), meta.get("id_index") or ())
    except ValueError as e:
        raise CheckpointMismatch(f"checkpoint {path} (model {spec.get('name')!r}) does not fit this "
                                 f"graph: {e}".split("; use ")[0], fix) from e
    decoder = None
    if meta["task"] == "rating":
        values = meta["rating_values"]
        decoder = BilinearRatingDecoder(meta["out"], len(values), num_basis=cfg["model"].get("num_basis", 2),
                                        rating_values=values)
        modules: nn.Module = nn.ModuleDict({"encoder": encoder, "decoder": decoder})
        decoder.eval()
    elif meta["task"] == "link_prediction":
        modules = nn.ModuleDict({"encoder": encoder})
    else:
        modules = encoder
    _load_weights(path, modules, state["model"], fix)
    encoder.eval()
    return TrainedModel(encoder, decoder, cfg, meta)


def _training_graph(cfg: Dict[str, Any]) -> str:
    for key in ("dataset", "graph", "cluster"):
        if cfg.get(key):
            return f"its config names {key} {cfg[key]!r}"
    return "its config names none"


def _check_signature(path: Path, trained: Optional[Dict[str, Any]], here: Dict[str, Any], fix: str) -> None:
    """CheckpointMismatch naming the first difference between the training graph's
    signature (None for checkpoints older than the signature) and this graph's."""
    from graphplat.errors import CheckpointMismatch

    if not trained or not here:
        return
    def same(a, b) -> bool:  # the order of the types does not matter
        if isinstance(a, list) and isinstance(b, list):
            return sorted(map(str, a)) == sorted(map(str, b))
        return a == b

    for key, what in (("ntypes", "node types"), ("canonical_etypes", "edge types"),
                      ("in_feats", "input feature widths")):
        if key in trained and not same(trained[key], here.get(key)):
            raise CheckpointMismatch(f"checkpoint {path} was trained on a graph with other {what} "
                                     f"({trained[key]} there, {here.get(key)} here)", fix)


def _load_weights(path: Path, modules: nn.Module, weights: Dict[str, torch.Tensor], fix: str) -> None:
    """``modules.load_state_dict(weights)``; a shape or key mismatch (a checkpoint of another
    graph) is a CheckpointMismatch naming the first differing tensor."""
    from graphplat.errors import CheckpointMismatch

    own = modules.state_dict()
    sized = {f"{p}.{b}" if p else b for p, m in modules.named_modules() for b in getattr(m, "variable_size_buffers", ())}
    for name, t in weights.items():
        if name in own and name not in sized and tuple(own[name].shape) != tuple(t.shape):
            raise CheckpointMismatch(
                f"checkpoint {path} was trained on a graph with other feature widths or schema "
                f"({name} is {list(t.shape)} in the checkpoint, {list(own[name].shape)} for this "
                f"graph)", fix)
    missing = sorted(set(own) - set(weights))
    extra = sorted(set(weights) - set(own))
    if missing or extra:
        raise CheckpointMismatch(
            f"checkpoint {path} was trained on a graph with another schema (tensors "
            + ", ".join(f"{k!r} only {w}" for k, w in [(missing[:1] and missing[0], "here"),
                                                        (extra[:1] and extra[0], "in the checkpoint")] if k)
            + ")", fix)
    modules.load_state_dict(weights)


TRAINERS = {"node_classification": NodeClassificationTrainer, "rating": RatingTrainer,
            "link_prediction": LinkPredictionTrainer}


def candidate_name(spec: Dict[str, Any], index: int) -> str:
    """A model-selection candidate's label: ``<index>-<name>``."""
    return f"{index}-{spec['name']}"


def selection_candidates(cfg: TrainConfig) -> List[Dict[str, Any]]:
    """The candidate specs of ``cfg.model_selection``, the features-only MLP first (added,
    with the first candidate's ``hidden`` / ``dropout``, when no candidate is one)."""
    cands = [dict(c) for c in cfg.model_selection["candidates"]]
    mlps = [c for c in cands if c["name"] == "mlp"]
    if not mlps:
        first = cands[0]
        mlps = [{"name": "mlp", "hidden": int(first.get("hidden", 64)), "num_layers": 2,
                 "dropout": float(first.get("dropout", 0.0))}]
    return mlps + [c for c in cands if c["name"] != "mlp"]


def select_model(cfg: TrainConfig, task: Task, seed: int, cls) -> RunResult:
    """Model selection for one seed: train each candidate of ``cfg.model_selection`` (see
    :func:`selection_candidates`) and keep the best on the validation metric; the MLP, listed
    first, wins ties, so a GNN is chosen only when it validates strictly better. Checkpoints
    go to ``checkpoint_dir/candidates/<i>-<name>/seed-<s>/`` and the chosen one's ``best.pt``
    is copied to ``checkpoint_dir/seed-<s>/best.pt``. Returns the chosen candidate's
    :class:`RunResult` with ``selection`` = ``{"metric", "chosen", "candidates": [{"name",
    "model", "val", "test", "best_epoch"}]}``."""
    import shutil

    if cls is not NodeClassificationTrainer:
        raise ValueError(f"model_selection supports node classification, not {task.task!r}")
    metric = cfg.model_selection.get("metric") or cfg.metric
    runs, rows = [], []
    for i, spec in enumerate(selection_candidates(cfg)):
        name = candidate_name(spec, i)
        ckpt = str(Path(cfg.checkpoint_dir) / "candidates" / name) if cfg.checkpoint_dir else None
        sub = TrainConfig.from_dict({**cfg.to_dict(), "model": spec, "model_selection": None, "metric": metric,
                                     "checkpoint_dir": ckpt})
        trainer = trainer_class(spec, cls)(sub, task, seed)
        metric = trainer.metric
        r = trainer.fit()
        if metric not in r.val:
            raise ValueError(f"model selection needs validation metric {metric!r}; got {sorted(r.val)}")
        log.info("seed %d candidate %s: val %s %.4f, test %s %.4f", seed, name, metric, r.val[metric],
                 metric, r.test.get(metric, float("nan")))
        runs.append(r)
        rows.append({"name": name, "model": spec, "val": r.val, "test": r.test, "best_epoch": r.best_epoch})
    sign = 1 if NodeClassificationTrainer.higher_is_better else -1
    best = max(range(len(runs)), key=lambda j: (sign * runs[j].val[metric], -j))
    log.info("seed %d: model selection chose %s (val %s %.4f)", seed, rows[best]["name"], metric,
             runs[best].val[metric])
    if cfg.checkpoint_dir:
        out = Path(cfg.checkpoint_dir) / f"seed-{seed}" / "best.pt"
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(cfg.checkpoint_dir) / "candidates" / rows[best]["name"] / f"seed-{seed}" / "best.pt",
                        out)
    chosen = runs[best]
    chosen.selection = {"metric": metric, "chosen": rows[best]["name"], "candidates": rows}
    chosen.seconds = sum(r.seconds for r in runs)
    return chosen


def summarize(results: List[RunResult]) -> Dict[str, Any]:
    """Mean and std over seeds of every test and validation metric (with model selection,
    also per candidate, and how often each was chosen)."""
    out: Dict[str, Any] = {}
    if results and results[0].selection is not None:
        names = [c["name"] for c in results[0].selection["candidates"]]
        out["selected"] = {n: sum(r.selection["chosen"] == n for r in results) for n in names}
        out["candidates"] = {}
        for j, n in enumerate(names):
            parts = {}
            for part in ("val", "test"):
                vals = [r.selection["candidates"][j][part] for r in results]
                parts[part] = {k: {"mean": float(np.mean([v[k] for v in vals])),
                                   "std": float(np.std([v[k] for v in vals]))} for k in vals[0]}
            out["candidates"][n] = parts
    for part in ("val", "test"):
        keys = sorted(set().union(*(getattr(r, part).keys() for r in results)))
        out[part] = {k: {"mean": float(np.mean([getattr(r, part)[k] for r in results])),
                         "std": float(np.std([getattr(r, part)[k] for r in results]))} for k in keys}
    return out


def train(cfg: TrainConfig) -> Dict[str, Any]:
    """Run ``cfg`` once per seed. Returns ``{"task", "runs": [...], "summary": {...},
    "reference"}``; the graph is opened once and shared by the seeds."""
    if cfg.num_threads:
        from graphplat import _core
        torch.set_num_threads(cfg.num_threads)
        _core.set_num_threads(cfg.num_threads)
    task = open_task(cfg)
    try:
        cls = TRAINERS.get(task.task)
        if cls is None:
            raise ValueError(f"task {task.task!r} cannot be trained here; supported: {', '.join(TRAINERS)}")
        results = []
        for seed in cfg.seeds:
            r = (select_model(cfg, task, seed, cls) if cfg.model_selection
                 else trainer_class(cfg.model, cls)(cfg, task, seed).fit())
            log.info("seed %d: best epoch %d, test %s", seed, r.best_epoch,
                     {k: round(v, 4) for k, v in r.test.items()})
            results.append(r)
        return {"task": task.task, "dataset": task.name, "runs": [r.as_dict() for r in results],
                "summary": summarize(results), "reference": task.reference}
    finally:
        task.close()
