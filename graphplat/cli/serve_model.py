"""``graphplat serve-model``: the online model service (command line of :mod:`graphplat.serving.server`)."""
from __future__ import annotations

import argparse
import sys
import time

from graphplat.cli.args import (
    Parser,
    add_security_arguments,
    add_shutdown_arguments,
    read_credentials,
    read_token,
)
from graphplat.cli.args import positive_int as _positive
from graphplat.datasets.source import open_graph_source
from graphplat.rpc import install_stop_signals, serve_until_stopped, warn_if_exposed
from graphplat.serving.recommend import Recommender
from graphplat.serving.scoring import NodeScorer
from graphplat.serving.server import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_K,
    DEFAULT_MAX_MESSAGE_MB,
    DEFAULT_PORT,
    ModelServer,
    key_ids,
    load_embeddings,
    log,
)


def build_model_server(args: argparse.Namespace) -> ModelServer:
    """Load embeddings, graph and model as ``args`` (``graphplat serve-model``) say and build
    the (not yet started) server. Raises UsageError (a ValueError) on bad option
    combinations, OSError/ValueError when the files or the graph cannot be used."""
    from graphplat.errors import UsageError

    if (args.user_embeddings is None) != (args.item_embeddings is None):
        raise UsageError("--user-embeddings and --item-embeddings go together")
    if args.user_embeddings is None and args.checkpoint is None:
        raise UsageError("nothing to serve: give --user-embeddings/--item-embeddings and/or --checkpoint")
    if args.checkpoint is not None and not (args.graph or args.cluster):
        raise UsageError("--checkpoint needs the graph to sample from: --graph STORE or --cluster FILE")
    if args.seen_etype and not (args.graph or args.cluster):
        raise UsageError("--seen-etype needs the graph: --graph STORE or --cluster FILE")
    token, tls = read_credentials(args)
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    t0 = time.perf_counter()
    graph = open_graph_source(args.graph, args.cluster)
    try:
        recommender = scorer = None
        if args.user_embeddings is not None:
            uid, uemb = load_embeddings(args.user_embeddings)
            iid, iemb = load_embeddings(args.item_embeddings)
            user_keys, uid = key_ids(uid, graph, args.user_ntype)
            item_keys, iid = key_ids(iid, graph, args.item_ntype)
            seen = list(args.seen_etype or [])
            recommender = Recommender(uid, uemb, iid, iemb, graph=graph if seen else None,
                                      seen_etypes=seen, user_ntype=args.user_ntype,
                                      item_ntype=args.item_ntype, max_k=args.max_k)
            recommender.user_keys, recommender.item_keys = user_keys, item_keys
            log.info("embeddings: %d users, %d items, dim %d; seen items from %s", recommender.num_users,
                     recommender.num_items, recommender.dim,
                     [f"{':'.join(s.etype)} ({s.direction})" for s in recommender.seen] or "nowhere")
        if args.checkpoint is not None:
            scorer = NodeScorer(graph, args.checkpoint, fanouts=args.fanouts, seed=args.seed)
            if getattr(args, "score_workers", 0):
                if not args.cluster:
                    raise UsageError("--score-workers needs --cluster (each worker connects to the graph servers)")
                from graphplat.serving.scoring_pool import ScoringPool

                scorer = ScoringPool(scorer, args.cluster, args.score_workers, args.torch_threads or 1)
            log.info("model: %s on %r nodes, fanouts %s, seed %d", scorer.trained.config.get("model"),
                     scorer.target_ntype, scorer.fanouts, scorer.seed)
        info = {"graph": args.graph, "cluster": args.cluster, "load_seconds": round(time.perf_counter() - t0, 3)}
        return ModelServer(recommender=recommender, scorer=scorer, graph=graph, host=args.host,
                           port=args.port, threads=args.threads, max_batch=args.max_batch,
                           metrics_port=args.metrics_port, metrics_host=args.metrics_host, token=token,
                           tls=tls, max_message_mb=args.max_message_mb,
                           follow_interval=args.follow_interval if args.graph else None, info=info)
    except BaseException:
        if hasattr(scorer, "close"):  # a ScoringPool's worker processes
            scorer.close()
        if graph is not None:
            graph.close()
        raise


SERVE_MODEL_DESCRIPTION = (
    "Serve a trained model online over gRPC (service graphplat.serving.v1.ModelService plus "
    "grpc.health.v1.Health): Recommend/RecommendBatch return the top-K items of users from "
    "exported embeddings (exact inner product, optionally excluding items the user already has "
    "edges to); Score/ScoreBatch sample a node's current neighborhood from the graph and return "
    "the model's class probabilities (spam probability for a binary model).")
SERVE_MODEL_EPILOG = (
    "Examples: graphplat serve-model --user-embeddings emb/user.npy --item-embeddings "
    "emb/item.npy --cluster cluster.yaml --seen-etype user:rates:item ;  graphplat serve-model "
    "--checkpoint ckpt/seed-0/best.pt --cluster cluster.yaml. With --cluster, edges written to the "
    "graph servers are visible to the next Score request. SIGTERM/SIGINT drain calls in flight "
    "and exit 0.")


def _fanouts(text: str):
    from graphplat.cli.args import int_list

    values = int_list(text)
    if any(v < -1 for v in values):
        raise argparse.ArgumentTypeError(f"fanouts must be integers >= -1 (-1 = all neighbors), got {text!r}")
    return values


def add_serve_model_arguments(p: argparse.ArgumentParser, verbose: bool = False) -> None:
    """Add the ``graphplat serve-model`` options to ``p`` (``verbose``: also add -v)."""
    src = p.add_mutually_exclusive_group()
    src.add_argument("--cluster", default=None, metavar="FILE",
                     help="cluster file of the graph servers (RemoteGraph; writes to the servers are "
                          "visible to the next request)")
    src.add_argument("--graph", default=None, metavar="STORE",
                     help="a store opened in this process read-only (follows the servers' write log "
                          "every --follow-interval seconds)")
    g = p.add_argument_group("recommendation")
    g.add_argument("--user-embeddings", default=None, metavar="FILE",
                   help="exported user embeddings (.npy with <stem>.ids.npy, or .parquet)")
    g.add_argument("--item-embeddings", default=None, metavar="FILE", help="exported item embeddings")
    g.add_argument("--seen-etype", action="append", default=None, metavar="SRC:REL:DST",
                   help="edge type user->item whose items a user has already seen (exclude_seen); "
                        "repeatable; read from the type's out-adjacency (schema 'out_adjacency: true') or a "
                        "reverse type kept in sync with it, so add_edges on it counts at once")
    g.add_argument("--user-ntype", default="user", help="node type of users (default user)")
    g.add_argument("--item-ntype", default="item", help="node type of items (default item)")
    g.add_argument("--max-k", type=_positive, default=DEFAULT_MAX_K,
                   help=f"largest k accepted (default {DEFAULT_MAX_K})")
    s = p.add_argument_group("scoring")
    s.add_argument("--checkpoint", default=None, metavar="BEST_PT",
                   help="best.pt of a node-classification model (graphplat train --checkpoint-dir)")
    s.add_argument("--fanouts", type=_fanouts, default=None,
                   help="per-layer fanouts, input layer first, e.g. 10,10 (default: what offline "
                        "evaluation and export use: the config's eval_fanouts, else every "
                        "neighbor, -1 per layer)")
    s.add_argument("--seed", type=int, default=0,
                   help="sampling seed of every Score request that names none (default 0): the same "
                        "node on the same graph always gets the same score")
    s.add_argument("--score-workers", type=int, default=0, metavar="N",
                   help="score in N worker processes (needs --cluster), so concurrent requests run in "
                        "parallel; 0 (default) scores in the server process")
    s.add_argument("--torch-threads", type=int, default=1,
                   help="torch intra-op threads (default 1; requests run in parallel on gRPC threads)")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to bind (default 127.0.0.1; use another one with --token and/or TLS)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT,
                   help=f"gRPC port (default {DEFAULT_PORT}; 0 = any free port)")
    add_security_arguments(p)
    p.add_argument("--threads", type=_positive, default=8, help="gRPC worker threads (default 8)")
    p.add_argument("--max-batch", type=_positive, default=DEFAULT_MAX_BATCH,
                   help=f"most users/nodes in one batch request (default {DEFAULT_MAX_BATCH})")
    p.add_argument("--max-message-mb", type=_positive, default=DEFAULT_MAX_MESSAGE_MB,
                   help=f"largest request or response in MiB (default {DEFAULT_MAX_MESSAGE_MB})")
    p.add_argument("--follow-interval", type=float, default=0.5, metavar="SECONDS",
                   help="--graph: how often to replay the graph servers' new writes (default 0.5)")
    add_shutdown_arguments(p, verbose)


def build_parser(prog: str = "graphplat serve-model") -> argparse.ArgumentParser:
    """The parser of ``graphplat serve-model``."""
    p = Parser(prog=prog, description=SERVE_MODEL_DESCRIPTION, epilog=SERVE_MODEL_EPILOG)
    add_serve_model_arguments(p, verbose=True)
    return p


def run_serve_model(args: argparse.Namespace) -> int:
    """Run the model service from parsed arguments until SIGTERM/SIGINT; returns 0 after a
    clean shutdown. When it cannot start the error propagates (``graphplat`` prints it as
    one line)."""
    stop = install_stop_signals(log, main_thread_only=True)
    server = build_model_server(args)
    warn_if_exposed(log, args.host, bool(read_token(args) or args.tls_cert), "query the model")
    server.start()
    serve_until_stopped(server, stop, args.ready_file, args.grace)
    log.info("model service stopped")
    return 0


if __name__ == "__main__":  # ``python -m graphplat.cli.serve_model`` == ``graphplat serve-model``
    import sys

    from graphplat.cli import main

    sys.exit(main(["serve-model", *sys.argv[1:]]))
