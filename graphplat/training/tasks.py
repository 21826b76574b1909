"""What to learn on which graph: :class:`Task` and :func:`open_task` (a dataset, a store or
a cluster named by the config, with the computed model inputs it asks for)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional

from graphplat.datasets.source import open_graph_source
from graphplat.service import GraphService
from graphplat.training.config import TrainConfig
from graphplat.typing import Canonical

log = logging.getLogger("graphplat.training.loop")

__all__ = ["Task", "open_task", "prepare_inputs"]


@dataclass
class Task:
    """A graph and what to learn on it (from a dataset or from the config)."""

    graph: GraphService
    task: str
    name: str = "graph"
    target_ntype: Optional[str] = None
    target_etypes: Dict[str, Canonical] = field(default_factory=dict)
    label: str = "label"
    split: str = "split"
    feature: str = "feat"
    num_classes: Optional[int] = None
    reference: Dict[str, Any] = field(default_factory=dict)
    #: the computed inputs' record (:meth:`InputView.to_meta`) when ``graph`` is an InputView
    inputs: Optional[Dict[str, Any]] = None

    def close(self) -> None:
        """Release the graph."""
        self.graph.close()


def open_task(cfg: TrainConfig) -> Task:
    """Build the graph named by ``cfg`` (dataset in memory, store, or cluster) and its task,
    with the inputs ``cfg`` asks for (see :func:`prepare_inputs`)."""
    task = _open_task(cfg)
    try:
        return prepare_inputs(cfg, task)
    except BaseException:
        task.close()
        raise


def prepare_inputs(cfg: TrainConfig, task: Task) -> Task:
    """Wrap ``task.graph`` in an :class:`~graphplat.training.inputs.InputView` when the
    feature is a list of columns or a scalar / int64 column, or ``cfg.standardize`` or
    ``cfg.split_fractions`` is set; ``task.feature`` (and ``task.split``) then name the
    computed columns. Standardisation uses the training nodes of the target type (all
    nodes of other types). Returns ``task``."""
    from graphplat.training.inputs import INPUT, SPLIT, InputView, input_columns, needs_view, stratified_split

    g = task.graph
    if not needs_view(g.schema, task.feature, cfg.standardize, cfg.split_fractions):
        return task
    columns = {nt: [f.name for f in specs] for nt, specs in input_columns(g.schema, task.feature).items()}
    nt = task.target_ntype or (g.schema.ntypes[0] if len(g.schema.ntypes) == 1 else None)
    split = None
    if cfg.split_fractions:
        if task.task != "node_classification" or nt is None:
            raise ValueError("split_fractions splits the labelled nodes of target_ntype (node classification)")
        ids = g.node_ids(nt)
        codes = stratified_split(g.node_features(nt, ids, [task.label])[task.label], cfg.split_fractions,
                                 cfg.split_seed)
        split = (nt, ids, codes)
        log.info("split of %r by split_fractions %s (seed %d): %s train, %s val, %s test", nt,
                 cfg.split_fractions, cfg.split_seed, *(int((codes == c).sum()) for c in (0, 1, 2)))
    view = InputView(g, columns, None, split)
    if split is not None:
        task.split = SPLIT
    if cfg.standardize:
        sample = {t: g.node_ids(t) for t in columns}
        if task.task == "node_classification" and nt in columns:
            ids = g.node_ids(nt)
            sample[nt] = ids[view.node_features(nt, ids, [task.split])[task.split] == 0]
        view = view.with_standardization(sample)
    task.graph, task.feature, task.inputs = view, INPUT, view.to_meta()
    log.info("model inputs: %s%s", columns, " (standardised with training statistics)" if cfg.standardize else "")
    return task


def _open_task(cfg: TrainConfig) -> Task:
    if cfg.dataset:
        from graphplat.datasets import load_dataset

        ds = load_dataset(cfg.dataset, cfg.data_dir, **cfg.dataset_options)
        log.info("%s", ds.summary())
        if cfg.task and cfg.task != ds.task:
            if not (cfg.task == "link_prediction" and ds.target_etypes):
                raise ValueError(f"dataset {ds.name!r} is a {ds.task} dataset; task {cfg.task!r} needs "
                                 "held-out edge types (target_etypes)")
            ds.reference = {"metric": f"recall@{cfg.topk}", "value": None,
                            "source": "none: top-K recommendation from the held-out edges"}
        return Task(ds.to_local(), cfg.task or ds.task, ds.name, ds.target_ntype,
                    {k: tuple(v) for k, v in ds.target_etypes.items()}, ds.label_feature,
                    ds.split_feature, ds.feature_name, ds.num_classes, dict(ds.reference))
    meta: Dict[str, Any] = {}
    if cfg.graph:
        import json

        graph = open_graph_source(graph=cfg.graph)
        name = Path(cfg.graph).name
        manifest = Path(cfg.graph) / "store.json"
        meta = json.loads(manifest.read_text()).get("dataset") or {} if manifest.exists() else {}
        if meta and (cfg.task is None or meta.get("target_etypes")):  # a dataset store knows its task
            etypes = {k: graph.schema.edge_type(tuple(v)).canonical for k, v in meta.get("target_etypes", {}).items()}
            return Task(graph, cfg.task or meta["task"], meta.get("name", name), meta.get("target_ntype"), etypes,
                        meta.get("label_feature", "label"), meta.get("split_feature", "split"),
                        meta.get("feature_name", "feat"), meta.get("num_classes"), meta.get("reference", {}))
    else:
        graph = open_graph_source(cluster=cfg.cluster)
        name = Path(cfg.cluster).stem
    if cfg.task is None:
        graph.close()
        raise ValueError("training on a store or cluster needs 'task' (node_classification or rating) "
                         "and its target ('target_ntype' or 'target_etypes') in the config")
    etypes = {k: graph.schema.edge_type(v).canonical for k, v in (cfg.target_etypes or {}).items()}
    return Task(graph, cfg.task, name, cfg.target_ntype, etypes, cfg.label, cfg.split, cfg.feature,
                cfg.num_classes)
