"""``python -m graphplat.cli.coded_worker``: one coded-training worker, or the launcher writing initial parameters (command line of :mod:`graphplat.distributed.coded_train`)."""
from __future__ import annotations

import argparse
import json
import logging
import random
import sys
from pathlib import Path

import torch

from graphplat.distributed.coded_train import SliceComputer, run_worker
from graphplat.training.config import TrainConfig
from graphplat.training.loop import open_task


def main(argv=None) -> int:
    """``python -m graphplat.cli.coded_worker``: one worker process."""
    p = argparse.ArgumentParser(prog="graphplat-coded-worker",
                                description="One gradient-coding worker: joins the aggregator, computes its "
                                            "slices of every step and pushes coded gradients until done.")
    p.add_argument("--config", required=True, help="training config (JSON or YAML)")
    p.add_argument("--aggregator", help="aggregator address host:port")
    p.add_argument("--worker", type=int, help="this worker's id, 0..n-1")
    p.add_argument("--workers", type=int, required=True, help="n, the number of workers")
    p.add_argument("--write-init", metavar="PATH",
                   help="instead of working: write the model's initial parameters (a .pt state_dict for "
                        "the aggregator's --init) and print the run's --max-steps, then exit")
    p.add_argument("--threads", type=int, default=1, help="torch/sampler threads (default 1)")
    p.add_argument("--slow-prob", type=float, default=0.0, help="straggler injection: probability per step")
    p.add_argument("--slow-factor", type=float, default=1.0, help="straggler injection: slowdown factor")
    p.add_argument("--die-at-step", type=int, default=None, help="fault injection: SIGKILL this worker at that step")
    p.add_argument("-v", "--verbose", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format=f"%(asctime)s worker-{args.worker} %(levelname)s %(name)s: %(message)s")
    import yaml

    from graphplat import _core
    torch.set_num_threads(args.threads)
    _core.set_num_threads(args.threads)
    random.seed(0)
    data = yaml.safe_load(Path(args.config).read_text())
    cfg = TrainConfig.from_dict(data)
    if args.write_init:
        task = open_task(cfg)
        comp = SliceComputer(cfg, task, cfg.seeds[0], args.workers)
        torch.save({k: torch.from_numpy(v) for k, v in comp.initial_params().items()}, args.write_init)
        print(json.dumps({"init": args.write_init, "max_steps": comp.max_steps,
                          "steps_per_epoch": comp.steps_per_epoch}))
        task.close()
        return 0
    if args.aggregator is None or args.worker is None:
        p.error("--aggregator and --worker are required (unless --write-init)")
    run_worker(cfg, args.aggregator, args.worker, args.workers, slow_prob=args.slow_prob,
               slow_factor=args.slow_factor, die_at_step=args.die_at_step)
    return 0


if __name__ == "__main__":
    sys.exit(main())
