"""``graphplat train``: the command line of :func:`graphplat.training.loop.train`."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from graphplat.cli.args import int_list, positive_int

log = logging.getLogger(__name__)

TRAIN_DESCRIPTION = """Train a GNN with sampled minibatches and print its metrics as JSON.

With no options it builds the synthetic recommendation graph in memory (users, items,
shops; click/buy/belongs-to edges; planted communities), trains a heterogeneous GraphSAGE
to predict each user's community, and prints validation and test metrics: the embedded
default that needs no data and no servers.

Other graphs: --dataset cora|citeseer|acm|movielens|yelpchi (raw files from --data-dir,
default $GRAPHPLAT_DATASETS or ../shared/datasets), --graph STORE (a store written by
`graphplat ingest`/`graphplat dataset`), --cluster FILE (graph servers). A YAML --config
holds every option (see graphplat/training/config.py); command-line options override it.
"""
TRAIN_EPILOG = """examples:
  graphplat train                                   # synthetic default, 1 seed
  graphplat train --dataset cora --seeds 0,1,2,3,4  # Cora, mean and std over 5 seeds
  graphplat train --config examples/configs/acm.yaml --checkpoint-dir ckpt --resume
"""

DEFAULTS: Dict[str, Dict[str, Any]] = {
    # what `graphplat train --dataset NAME` uses when the config does not say otherwise
    "synthetic": {"model": {"name": "hsage", "hidden": 64, "num_layers": 2, "dropout": 0.3},
                  "fanouts": [10, 10], "batch_size": 512, "epochs": 15, "lr": 0.01, "patience": 5},
    "cora": {"model": {"name": "gat", "hidden": 8, "heads": 8, "num_layers": 2, "dropout": 0.6,
                       "feat_drop": 0.6, "attn_drop": 0.6},
             "dataset_options": {"normalize": True, "self_loops": True},
             "fanouts": [-1, -1], "batch_size": 140, "epochs": 200, "lr": 0.01, "weight_decay": 5e-4,
             "patience": 100},
    "citeseer": {"model": {"name": "gcn", "hidden": 64, "num_layers": 2, "dropout": 0.8, "input_dropout": 0.8},
                 "dataset_options": {"normalize": True, "add_self_loops": True},
                 "fanouts": [-1, -1], "batch_size": 120, "epochs": 200, "lr": 0.01, "weight_decay": 5e-4,
                 "patience": 100},
    "acm": {"model": {"name": "hsage", "hidden": 64, "num_layers": 2, "dropout": 0.5},
            "fanouts": [10, 10], "batch_size": 60, "epochs": 100, "lr": 0.005, "weight_decay": 1e-4,
            "patience": 20, "metric": "macro_f1"},
    "movielens": {"model": {"name": "hsage", "hidden": 64, "num_layers": 1, "dropout": 0.3},
                  "fanouts": [-1], "batch_size": 4096, "epochs": 60, "lr": 0.01, "patience": 10},
    "yelpchi": {"model": {"name": "sage", "hidden": 64, "num_layers": 2, "dropout": 0.2},
                "fanouts": [10, 10], "batch_size": 512, "epochs": 50, "lr": 0.005, "patience": 10},
}


# A store that is no dataset's but has several node types gets the heterogeneous GraphSAGE;
# the config's homogeneous default ('sage') cannot run on it.
HETERO_DEFAULT_MODEL = {"name": "hsage", "hidden": 64, "num_layers": 2, "dropout": 0.3}


def store_defaults(graph: Optional[str]) -> Dict[str, Any]:
    """Training defaults for the store at ``graph`` (None: no store): the ``DEFAULTS`` of the
    dataset that wrote it (``store.json``; without its ``dataset_options``, which only apply
    while reading raw files), else a heterogeneous model when the schema has several node
    types, else ``{}``."""
    if not graph:
        return {}
    root = Path(graph)
    manifest = root / "store.json"
    if manifest.is_file():
        meta = json.loads(manifest.read_text()).get("dataset") or {}
        if meta.get("name") in DEFAULTS:
            return {k: v for k, v in DEFAULTS[meta["name"]].items() if k != "dataset_options"}
    if (root / "schema.yaml").is_file():
        from graphplat.schema import GraphSchema

        if len(GraphSchema.from_yaml((root / "schema.yaml").read_text()).node_types) > 1:
            return {"model": dict(HETERO_DEFAULT_MODEL)}
    return {}


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``graphplat train`` options to ``p``."""
    src = p.add_argument_group("graph")
    src.add_argument("--config", type=Path, help="YAML training config (options below override it)")
    src.add_argument("--dataset", help="dataset name: synthetic (default), cora, citeseer, acm, movielens, yelpchi")
    src.add_argument("--data-dir", help="directory of the raw datasets (default $GRAPHPLAT_DATASETS or ../shared/datasets)")
    src.add_argument("--graph", help="a store directory instead of a dataset")
    src.add_argument("--cluster", help="a cluster file (graph servers) instead of a dataset")
    t = p.add_argument_group("training")
    t.add_argument("--task", help="override the dataset's task, e.g. link_prediction on movielens "
                                  "(top-K recommendation with a dot-product head)")
    t.add_argument("--model", help="model name: sage, gcn, gat (one node type) or hsage, rgcn, gcmc")
    t.add_argument("--hidden", type=int, help="hidden width")
    t.add_argument("--fanouts", type=int_list, help="neighbors per layer, input layer first (-1 = all)")
    t.add_argument("--epochs", type=positive_int, help="most epochs")
    t.add_argument("--batch-size", type=positive_int, help="seeds per minibatch")
    t.add_argument("--lr", type=float, help="learning rate")
    t.add_argument("--seeds", type=int_list, help="one run per seed, e.g. 0,1,2,3,4 (mean and std are printed)")
    t.add_argument("--checkpoint-dir", help="save last.pt (exact resume) and best.pt per seed here")
    t.add_argument("--resume", action="store_true", help="continue from --checkpoint-dir's last.pt")
    t.add_argument("--threads", type=int, help="threads for torch and the sampler")
    t.add_argument("--out", help="also write the JSON result to this file")
    c = p.add_argument_group("fault-tolerant distributed training (gradient coding)")
    c.add_argument("--workers", type=int, default=0,
                   help="train with N worker processes and a gradient-coding aggregator (0: in this process)")
    c.add_argument("--tolerate", type=int, default=1, help="workers that may fail or straggle (s)")
    c.add_argument("--scheme", default="coded", help="coded (default), wait_all or ignore_stragglers")
    c.add_argument("--code", default="frc", help="frc (fractional repetition, (s+1) | n) or cyclic")


def config_from_args(args: argparse.Namespace):
    """A TrainConfig from ``--config`` plus the command-line overrides and dataset defaults."""
    from graphplat.training.config import TrainConfig, read_yaml

    base: Dict[str, Any] = {}
    raw: Dict[str, Any] = {}
    if args.config:
        base = read_yaml(args.config)
    raw = dict(base)
    over: Dict[str, Any] = {}
    for key in ("task", "dataset", "data_dir", "graph", "cluster", "fanouts", "epochs", "batch_size", "lr", "seeds",
                "checkpoint_dir", "out"):
        v = getattr(args, key)
        if v is not None:
            over[key] = v
    if args.resume:
        over["resume"] = True
    if args.threads:
        over["num_threads"] = args.threads
    if any(k in over for k in ("dataset", "graph", "cluster")):  # the command line's source wins
        base = {k: v for k, v in base.items() if k not in ("dataset", "graph", "cluster")}
    if not any(k in {**base, **over} for k in ("dataset", "graph", "cluster")):
        over["dataset"] = "synthetic"
    name = over.get("dataset", base.get("dataset"))
    defaults = DEFAULTS[name] if name in DEFAULTS else store_defaults(over.get("graph", base.get("graph")))
    merged = {**defaults, **base, **over}
    model = dict(merged.get("model", {}))
    if args.model:
        model = {"name": args.model, **{k: v for k, v in model.items() if k in ("hidden", "num_layers", "dropout")}}
        model.setdefault("hidden", HETERO_DEFAULT_MODEL["hidden"])
    if args.hidden:
        model["hidden"] = args.hidden
    if model:
        merged["model"] = model
    if args.config:
        dropped = {k: None for k in ("dataset", "graph", "cluster") if k in raw and k not in merged}
        return TrainConfig.load(args.config, {**dropped, **{k: v for k, v in merged.items()
                                                            if k not in base or base[k] != v}})
    return TrainConfig.from_dict(merged)


def run_train(args: argparse.Namespace) -> int:
    """Run ``graphplat train``; prints the JSON result. Returns the exit code."""
    cfg = config_from_args(args)
    if args.workers:
        from graphplat.distributed.coded_train import run_coded

        result = run_coded(cfg, workers=args.workers, tolerate=args.tolerate, scheme=args.scheme, code=args.code)
        # The final parameters are numpy arrays for callers in Python (tests compare them with a
        # single-process run); the JSON report gives their size, a checkpoint holds the values.
        params = result.pop("params")
        result["num_parameters"] = int(sum(np.asarray(v).size for v in params.values()))
    else:
        from graphplat.training.loop import train

        result = train(cfg)
    text = json.dumps(result, indent=2, default=float)
    print(text)
    if cfg.out:
        Path(cfg.out).write_text(text + "\n")
    s = result.get("summary", {}).get("test", {})
    for k, v in s.items():
        log.info("test %s: %.4f +- %.4f over %d seed(s)", k, v["mean"], v["std"], len(cfg.seeds))
    ref = result.get("reference") or {}
    if ref.get("value") is not None and ref.get("metric") in s:
        got = s[ref["metric"]]
        scale, digits = (100.0, 2) if ref.get("scale") == "percent" else (1.0, 4)
        log.info("%s: %.*f +- %.*f here vs %s published by %s", ref["metric"], digits, got["mean"] * scale,
                 digits, got["std"] * scale, ref["value"], ref.get("source", "?"))
    elif ref:
        log.info("reference: %s", ref)
    return 0


if __name__ == "__main__":  # ``python -m graphplat.cli.train`` == ``graphplat train``
    import sys

    from graphplat.cli import main

    sys.exit(main(["train", *sys.argv[1:]]))
