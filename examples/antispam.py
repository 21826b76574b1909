"""Anti-spam on YelpChi R-U-R (5 seeds) and Tolokers (its 10 fixed splits) with the shipped
config (examples/configs/antispam.yaml): model selection between the features-only MLP, the
fraud GNN and gradient-boosted trees on own + neighbor features (gbdt, needs lightgbm) on the
validation split; prints test ROC-AUC / PR-AUC of the shipped (chosen) model and of every
candidate, mean +- std, as JSON.

Run: python examples/antispam.py [--datasets yelpchi,tolokers] [--seeds 0,1,2,3,4]
     [--splits 0,...,9] [--epochs N] [--out results.json]
"""
import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from graphplat.training.config import TrainConfig
from graphplat.training.loop import train

CONFIG = Path(__file__).resolve().parent / "configs" / "antispam.yaml"
log = logging.getLogger("examples.antispam")
METRICS = ("roc_auc", "pr_auc")


def _table(runs):
    """{model: {metric: {mean, std}}} over runs (each a train() run dict with selection)."""
    rows = {"shipped": [r["test"] for r in runs]}
    for r in runs:
        for c in r["selection"]["candidates"]:
            rows.setdefault(c["name"], []).append(c["test"])
    return {name: {m: {"mean": float(np.mean([t[m] for t in ts])), "std": float(np.std([t[m] for t in ts]))}
                   for m in METRICS} for name, ts in rows.items()}


def run_dataset(name, over, seeds, splits):
    """Train the shipped config on ``name``; Tolokers runs one seed per fixed split."""
    runs = []
    if name == "tolokers":
        for k in splits:
            cfg = TrainConfig.load(CONFIG, {**over, "dataset": name, "dataset_options": {"split_index": k},
                                            "seeds": [0]})
            runs += train(cfg)["runs"]
    else:
        runs = train(TrainConfig.load(CONFIG, {**over, "dataset": name, "seeds": seeds}))["runs"]
    chosen = [r["selection"]["chosen"] for r in runs]
    return {"runs": len(runs), "chosen": {c: chosen.count(c) for c in sorted(set(chosen))},
            "test": _table(runs)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default="yelpchi,tolokers")
    p.add_argument("--seeds", default="0,1,2,3,4", help="YelpChi seeds (split and training)")
    p.add_argument("--splits", default="0,1,2,3,4,5,6,7,8,9", help="Tolokers fixed splits")
    p.add_argument("--epochs", type=int, help="most epochs")
    p.add_argument("--out", help="also write the JSON here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    over = {"epochs": args.epochs} if args.epochs else {}
    seeds = [int(s) for s in args.seeds.split(",")]
    splits = [int(s) for s in args.splits.split(",")]
    out = {}
    for name in args.datasets.split(","):
        out[name] = run_dataset(name, over, seeds, splits)
        for model, ms in out[name]["test"].items():
            log.info("%s %s: %s", name, model, ", ".join(
                f"{m} {v['mean']:.4f} +- {v['std']:.4f}" for m, v in ms.items()))
        if args.out:
            Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
