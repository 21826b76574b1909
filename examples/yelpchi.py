"""YelpChi review spam (R-U-R relation): a GraphSAGE GNN and a features-only MLP trained on
the same stratified split, in the same run; prints ROC-AUC and PR-AUC of both.

Run: python examples/yelpchi.py [--seeds 0,1,2,3,4] [--epochs N]
The GNN must not be worse than the MLP (issue 5's bar for this dataset).
"""
import argparse
import json
import logging
import sys
from pathlib import Path

from graphplat.training.config import TrainConfig
from graphplat.training.loop import train

CONFIG = Path(__file__).resolve().parent / "configs" / "yelpchi.yaml"
log = logging.getLogger("examples.yelpchi")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", help="comma-separated seeds (default: the config's 0..4)")
    p.add_argument("--epochs", type=int, help="most epochs")
    p.add_argument("--data-dir", help="datasets directory")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    over = {}
    if args.seeds:
        over["seeds"] = [int(s) for s in args.seeds.split(",")]
    if args.epochs:
        over["epochs"] = args.epochs
    if args.data_dir:
        over["data_dir"] = args.data_dir
    gnn_cfg = TrainConfig.load(CONFIG, over)
    mlp_cfg = TrainConfig.load(CONFIG, {**over, "model": {"name": "mlp", "hidden": 64, "num_layers": 2,
                                                          "dropout": 0.2}})
    out = {"gnn": train(gnn_cfg)["summary"]["test"], "mlp": train(mlp_cfg)["summary"]["test"]}
    print(json.dumps(out, indent=2))
    for m in ("roc_auc", "pr_auc"):
        g, f = out["gnn"][m], out["mlp"][m]
        log.info("%s: GNN %.4f +- %.4f, features-only MLP %.4f +- %.4f", m, g["mean"], g["std"], f["mean"], f["std"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
