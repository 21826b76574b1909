"""``python -m graphplat.cli.aggregator``: run the gradient aggregator (command line of :func:`graphplat.distributed.aggregator.serve_aggregator`)."""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from typing import Any, Dict, Optional, Sequence

from graphplat.atomic import write_atomic
from graphplat.distributed.aggregator import CODED_KINDS, SCHEMES, load_initial_params, log, serve_aggregator
from graphplat.rpc import join_host_port

DESCRIPTION = """\
Run the gradient aggregator of a fault-tolerant synchronous training job (gRPC service
graphplat.aggregator.v1.Aggregator).

It owns the model parameters and the optimizer. n workers Join, pull the parameters of each
step, compute the gradients of their slices of the step's global batch, encode them with the
gradient code and push the coded vectors; as soon as the replies of a step can be decoded
exactly (any n-s of them with --scheme coded) the aggregator applies the optimizer step and
publishes the next parameters. It never applies a gradient it could not decode exactly
(except with --scheme ignore_stragglers, which is inexact by design), and warns after
--stall-warning seconds when more than s workers are missing.

The decoded gradient is the SUM over the n slices: workers scale each slice's mean loss by
slice_size / global_batch_size, so the sum is the gradient of the global-batch mean loss.
"""

EPILOG = """\
initial parameters:
  --init takes an aggregator checkpoint (ckpt-*.pt) or a torch .pt state_dict of the
  trainable parameters (name -> tensor; {"state_dict": ...} also works). Floating-point
  tensors are used in file order; drop buffers with --exclude. When --checkpoint-dir already
  holds a checkpoint the run resumes from the newest one and --init is only checked against it.

examples:
  python -m graphplat.cli.aggregator --init model.pt -n 4 -s 1 --code frc \\
      --optimizer '{"name": "adam", "lr": 0.01}' --max-steps 1000 \\
      --checkpoint-dir ckpt/ --checkpoint-every 50 --port 50061
  python -m graphplat.cli.aggregator --checkpoint-dir ckpt/ -n 4 -s 1   # resume

The process exits 0 after --max-steps are applied (it keeps serving --linger seconds so
workers see `done`) or on SIGTERM/SIGINT (after writing a checkpoint).
"""


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``python -m graphplat.cli.aggregator``."""
    p = argparse.ArgumentParser(prog="python -m graphplat.cli.aggregator", description=DESCRIPTION,
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to bind (default 127.0.0.1; the service has no authentication)")
    p.add_argument("--port", type=int, default=50061, help="gRPC port (default 50061; 0 = any free port)")
    p.add_argument("--port-file", default=None,
                   help="write the bound port to this file once serving (useful with --port 0)")
    p.add_argument("--init", default=None, metavar="PATH",
                   help="initial parameters: an aggregator checkpoint or a .pt state_dict "
                        "(required unless --checkpoint-dir holds a checkpoint)")
    p.add_argument("--exclude", default=None, metavar="REGEX",
                   help="drop --init entries whose name matches REGEX (e.g. 'running_|num_batches')")
    p.add_argument("-n", "--workers", type=int, required=True, help="number of workers (= slices per step)")
    p.add_argument("-s", "--stragglers", type=int, default=0,
                   help="failed/slow workers tolerated (coded) or not waited for "
                        "(ignore_stragglers); default 0")
    p.add_argument("--scheme", choices=SCHEMES, default="coded",
                   help="coded: gradient coding (exact with any n-s replies); wait_all: uncoded, "
                        "waits for every worker; ignore_stragglers: uncoded, applies the first "
                        "n-s replies rescaled (inexact). Default coded")
    p.add_argument("--code", choices=CODED_KINDS, default="frc",
                   help="gradient code of --scheme coded: frc (fractional repetition, needs "
                        "(s+1) | n, exact plain sums) or cyclic (any s < n, float64 solve). "
                        "Default frc")
    p.add_argument("--code-seed", type=int, default=0, help="seed of the cyclic code (default 0)")
    p.add_argument("--optimizer", default="adam",
                   help="optimizer name (sgd, adam, adamw) or a JSON spec such as "
                        "'{\"name\": \"sgd\", \"lr\": 0.1, \"momentum\": 0.9}' (default adam)")
    p.add_argument("--lr", type=float, default=None, help="learning rate (overrides the spec)")
    p.add_argument("--momentum", type=float, default=None, help="sgd momentum (overrides the spec)")
    p.add_argument("--weight-decay", type=float, default=None, help="weight decay (overrides the spec)")
    p.add_argument("--checkpoint-dir", default=None,
                   help="write checkpoints here and resume from the newest one on start")
    p.add_argument("--checkpoint-every", type=int, default=0, metavar="K",
                   help="checkpoint every K steps (default 0: only at the end and on shutdown)")
    p.add_argument("--keep-checkpoints", type=int, default=3, help="checkpoints kept (default 3)")
    p.add_argument("--max-steps", type=int, default=0,
                   help="finish after this many optimizer steps (default 0: run until stopped)")
    p.add_argument("--stall-warning", type=float, default=30.0, metavar="SECONDS",
                   help="warn when a step waited this long without decodable replies (default 30)")
    p.add_argument("--stall-deadline", type=float, default=600.0, metavar="SECONDS",
                   help="stop with an error naming the lost workers and the last checkpoint when a "
                        "step cannot be decoded for this long (default 600; 0 = wait forever)")
    p.add_argument("--straggler-timeout", type=float, default=5.0, metavar="SECONDS",
                   help="ignore_stragglers: apply what arrived this long after a step's first "
                        "reply (default 5)")
    p.add_argument("--linger", type=float, default=5.0, metavar="SECONDS",
                   help="keep serving this long after --max-steps so workers see `done` (default 5)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="debug logging (default: info)")
    return p


def _optimizer_spec(args) -> Dict[str, Any]:
    text = args.optimizer.strip()
    if text.startswith("{"):
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"--optimizer is not valid JSON: {e}") from None
        if not isinstance(spec, dict):
            raise ValueError("--optimizer JSON must be an object")
    else:
        spec = {"name": text}
    for key, value in (("lr", args.lr), ("momentum", args.momentum),
                       ("weight_decay", args.weight_decay)):
        if value is not None:
            spec[key] = value
    return spec


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m graphplat.cli.aggregator``; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()

    def _on_signal(signum, _frame):
        log.info("received signal %d: checkpointing and shutting down", signum)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _on_signal)
    try:
        params = load_initial_params(args.init, args.exclude) if args.init else None
        handle = serve_aggregator(
            join_host_port(args.host, args.port), params, _optimizer_spec(args), args.scheme, args.code,
            args.workers, args.stragglers, checkpoint_dir=args.checkpoint_dir,
            checkpoint_every=args.checkpoint_every, max_steps=args.max_steps,
            stall_warning_s=args.stall_warning, straggler_timeout_s=args.straggler_timeout,
            code_seed=args.code_seed, keep_checkpoints=args.keep_checkpoints,
            stall_deadline_s=args.stall_deadline or None)
    except (ValueError, OSError, RuntimeError) as e:
        log.error("%s", e)
        return 2
    if args.port_file:
        write_atomic(args.port_file, f"{handle.port}\n")
    try:
        while not stop.is_set():
            if handle.failure is not None:
                return 3
            if handle.wait_done(0.2):
                log.info("max_steps reached; serving %.1fs more so workers see it", args.linger)
                stop.wait(args.linger)
                break
    finally:
        handle.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
