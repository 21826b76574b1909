"""``graphplat serve``: serve one partition of a store over gRPC (command line of :mod:`graphplat.storage.server`)."""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from graphplat.cli.args import (
    Parser,
    add_security_arguments,
    add_shutdown_arguments,
    read_credentials,
    setup_logging,
)
from graphplat.errors import UsageError, UserError
from graphplat.rpc import install_stop_signals, serve_until_stopped, warn_if_exposed
from graphplat.storage.admission import DEFAULT_IDLE_TIMEOUT_S, DEFAULT_STREAM_DEADLINE_S
from graphplat.storage.freshness import DEFAULT_READ_WAIT_S
from graphplat.storage.peers import DEFAULT_PEER_TIMEOUT_S
from graphplat.storage.republish import DEFAULT_REPUBLISH_AFTER_S
from graphplat.storage.server import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_FANOUT,
    DEFAULT_MAX_MESSAGE_MB,
    Limits,
    PartitionServer,
    log,
)

SERVE_DESCRIPTION = ("Serve one partition of a graphplat store over gRPC (service "
                     "graphplat.v1.GraphPartition plus grpc.health.v1.Health).")
SERVE_EPILOG = ("Writes are acknowledged only after they are in the partition's RocksDB write "
                "log (synced) and visible to sampling. The health service needs no token. "
                "SIGTERM/SIGINT drain calls in flight and exit 0.")


def add_serve_arguments(p: argparse.ArgumentParser, verbose: bool = True) -> None:
    """Add the ``graphplat serve`` options to ``p`` (``verbose``: also add -v)."""
    p.add_argument("--store", required=True, help="store directory written by `graphplat ingest`")
    p.add_argument("--partition", type=int, required=True, help="partition number K to serve (0-based)")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to bind (default 127.0.0.1, loopback only; use 0.0.0.0 "
                        "together with --token and/or TLS to serve other machines)")
    p.add_argument("--port", type=int, default=50051, help="gRPC port (default 50051; 0 = any free port)")
    p.add_argument("--replica", action="store_true",
                   help="serve as a read replica: open the store read-only next to the primary, "
                        "refuse writes and follow the primary's write log")
    p.add_argument("--follow-interval", type=float, default=0.5, metavar="SECONDS",
                   help="replicas: how often to pick up the primary's new writes (default 0.5)")
    p.add_argument("--read-wait", type=float, default=DEFAULT_READ_WAIT_S, metavar="SECONDS",
                   help="longest a read waits for the client's own acknowledged write to reach "
                        "this server (a lagging replica) before answering UNAVAILABLE so the "
                        f"client tries the next server (default {DEFAULT_READ_WAIT_S})")
    p.add_argument("--accept-log-loss", action="store_true",
                   help="start even when the write log is damaged before its end, dropping the "
                        "acknowledged writes after the damage (default: refuse to start and name "
                        "the file and offset; a torn last record is always dropped silently)")
    p.add_argument("--cluster", metavar="FILE",
                   help="the cluster file (as clients use it) listing every partition's servers: "
                        "an edge write whose other endpoint another partition owns is checked "
                        "with that partition's servers; without it such writes are refused "
                        "(FAILED_PRECONDITION). Read when first needed and again when it changes")
    p.add_argument("--peer-timeout", type=float, default=DEFAULT_PEER_TIMEOUT_S, metavar="SECONDS",
                   help="longest wait for another partition's answer to that check; then the "
                        f"write is refused UNAVAILABLE and not applied (default {DEFAULT_PEER_TIMEOUT_S:g})")
    add_security_arguments(p)
    p.add_argument("--max-message-mb", type=int, default=DEFAULT_MAX_MESSAGE_MB,
                   help=f"largest request or response in MiB (default {DEFAULT_MAX_MESSAGE_MB})")
    p.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH,
                   help=f"most ids in one request; more is RESOURCE_EXHAUSTED (default {DEFAULT_MAX_BATCH})")
    p.add_argument("--max-fanout", type=int, default=DEFAULT_MAX_FANOUT,
                   help=f"largest sampling fanout; more is RESOURCE_EXHAUSTED (default "
                        f"{DEFAULT_MAX_FANOUT}; -1/'full' neighborhoods are bounded by the message size)")
    p.add_argument("--threads", type=int, default=16, help="gRPC worker threads (default 16)")
    p.add_argument("--max-concurrent-rpcs", type=int, default=None,
                   help="calls in flight or queued; more are answered RESOURCE_EXHAUSTED at once "
                        "and clients retry them after a backoff (default 4 x --threads)")
    p.add_argument("--max-streams", type=int, default=None,
                   help="streaming calls (NodeIds) at a time; more are RESOURCE_EXHAUSTED "
                        "(default --threads / 4)")
    p.add_argument("--stream-deadline", type=float, default=DEFAULT_STREAM_DEADLINE_S,
                   metavar="SECONDS", help="a streaming call still running after this is "
                   f"cancelled, e.g. when its client stopped reading (default {DEFAULT_STREAM_DEADLINE_S:g})")
    p.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT_S, metavar="SECONDS",
                   help="close connections without calls for this long (default "
                        f"{DEFAULT_IDLE_TIMEOUT_S:g}); keepalive pings drop dead peers")
    p.add_argument("--no-shared-memory", dest="shared_memory", action="store_false",
                   help="do not publish the partition in shared memory (/dev/shm) for clients on "
                        "this host, which then read it in process instead of over gRPC (primaries "
                        "and replicas publish by default)")
    p.add_argument("--republish-after", type=float, default=DEFAULT_REPUBLISH_AFTER_S, metavar="SECONDS",
                   help="after writes, publish the partition in shared memory again once writes "
                        "have been quiet this long, compacting it first when it has new edges "
                        f"(default {DEFAULT_REPUBLISH_AFTER_S:g}; 0 = only after a Compact call; "
                        "at most two generations in memory, see the README). A replica cannot "
                        "compact: after new edges it republishes once it reloaded the primary's "
                        "compaction. With --no-shared-memory a primary still compacts on this "
                        "timer, so clients' topology replicas catch up")
    p.add_argument("--bulk-port", type=int, default=0, metavar="PORT",
                   help="TCP port (on --host) of the bulk carrier, which sends large answers "
                        "(sampled neighbors, feature rows) with fewer copies than gRPC, through "
                        "the same token and checks (default 0: any free port, advertised to "
                        "clients in Info; never with TLS)")
    p.add_argument("--no-bulk", dest="bulk", action="store_false",
                   help="answer everything over gRPC only (no second port)")
    add_shutdown_arguments(p, verbose)


def build_parser(prog: str = "graphplat serve") -> argparse.ArgumentParser:
    """The parser of ``graphplat serve``."""
    p = Parser(prog=prog, description=SERVE_DESCRIPTION, epilog=SERVE_EPILOG)
    add_serve_arguments(p)
    return p


def main_serve(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``graphplat serve``; returns the exit code."""
    from graphplat.cli.guard import run_guarded

    args = build_parser().parse_args(argv)
    setup_logging(args)
    return run_guarded("serve", lambda: run_serve(args), bool(args.verbose))


def run_serve(args: argparse.Namespace) -> int:
    """Run a server from parsed ``graphplat serve`` arguments until SIGTERM/SIGINT; returns
    0. Errors raise (:func:`graphplat.cli.guard.run_guarded` prints them as one line): UsageError
    for bad options (exit 2), UserError when the store or partition cannot be served (1)."""
    try:
        token, tls = read_credentials(args)
        limits = Limits(args.max_batch, args.max_fanout, args.max_message_mb)
    except (OSError, ValueError) as e:
        raise UsageError(str(e), "see 'graphplat serve --help'") from e
    warn_if_exposed(log, args.host, bool(token) or tls is not None, "read and write the graph")

    from graphplat.storage.store import open_store

    try:  # fail before binding the port
        open_store(args.store).partition_path(args.partition)
    except ValueError as e:
        raise UserError(str(e), "pass --store the directory `graphplat ingest` or `graphplat "
                                "dataset` wrote, and a --partition it has") from e

    stop = install_stop_signals(log)
    try:
        server = PartitionServer(args.store, args.partition, host=args.host, port=args.port,
                                 replica=args.replica, token=token, tls=tls, limits=limits,
                                 metrics_port=args.metrics_port, metrics_host=args.metrics_host,
                                 threads=args.threads, follow_interval=args.follow_interval,
                                 read_wait=args.read_wait, accept_log_loss=args.accept_log_loss,
                                 idle_timeout=args.idle_timeout,
                                 max_concurrent_rpcs=args.max_concurrent_rpcs,
                                 max_streams=args.max_streams, stream_deadline=args.stream_deadline,
                                 shared_memory=args.shared_memory, cluster=args.cluster,
                                 peer_timeout=args.peer_timeout,
                                 republish_after=args.republish_after, bulk=args.bulk,
                                 bulk_port=args.bulk_port)
    except ValueError as e:
        raise UsageError(str(e), "see 'graphplat serve --help'") from e
    except OSError as e:  # a port is taken
        raise UserError(str(e), "pick free ports (--port, --bulk-port; 0 = any free one) or stop "
                                "the process holding them") from e
    server.start()
    try:
        server.load()
    except BaseException as e:
        server.stop(0)
        if isinstance(e, (ValueError, OSError)):  # the store's state (locked, damaged log...)
            raise UserError(f"cannot load partition {args.partition} of {args.store}: {e}") from e
        raise
    serve_until_stopped(server, stop, args.ready_file, args.grace)
    log.info("partition %d server stopped", args.partition)
    return 0


if __name__ == "__main__":
    sys.exit(main_serve())
