"""``graphplat serve-model``: the online model service (``proto/model_service.proto``).

One gRPC server answering ``graphplat.serving.v1.ModelService`` plus the standard
``grpc.health.v1.Health`` service (SERVING once everything is loaded):

* **Recommend / RecommendBatch** -- top-K items per user from exported embeddings
  (``--user-embeddings``/``--item-embeddings``, ``.npy`` + ``<stem>.ids.npy`` or ``.parquet``,
  read with :func:`graphplat.inference.export.read_embeddings`), exact inner product over every
  item, ties by lower item id, optionally excluding the items the user has edges to along
  ``--seen-etype`` (read from the graph; see :mod:`graphplat.serving.recommend`).
* **Score / ScoreBatch** -- class probabilities of a node (e.g. a new review or account) from
  its current sampled neighborhood with the model of ``--checkpoint`` (see
  :mod:`graphplat.serving.scoring`).
* **Info** -- what is loaded, as JSON.

The graph is either the graph servers of ``--cluster FILE`` (RemoteGraph: writes acknowledged
by the servers are visible to the next request) or a store opened in-process read-only with
``--graph STORE`` (it replays the servers' write log every ``--follow-interval`` seconds).

Status codes: bad requests (``k <= 0`` or above ``--max-k``, malformed arrays, unknown or
wrong node types) are INVALID_ARGUMENT with a message; a user without an embedding or a node
the graph does not hold is NOT_FOUND; a batch above ``--max-batch`` is RESOURCE_EXHAUSTED; an
RPC the server was not configured for (no embeddings, no graph for ``exclude_seen``, no
checkpoint) is FAILED_PRECONDITION; unreachable graph servers or shutdown give UNAVAILABLE;
anything else INTERNAL, and the server keeps serving. The exception class travels in the
trailing metadata ``graphplat-error``.

Metrics (``--metrics-port``, Prometheus, own registry):
``graphplat_model_requests_total{method,code}``, ``graphplat_model_request_seconds{method}``
(histogram), ``graphplat_model_recommended_users_total``, ``graphplat_model_scored_nodes_total``
and ``graphplat_model_sampled_edges`` (histogram of edges per scored node).

Security: binds 127.0.0.1 unless ``--host`` says otherwise; ``--token``/``--token-file``
require ``authorization: Bearer <token>`` on every ModelService call (not on health);
``--tls-cert``/``--tls-key`` enable TLS. SIGTERM/SIGINT: health goes NOT_SERVING, calls in
flight get ``--grace`` seconds, the graph is closed and the process exits 0.
"""
from __future__ import annotations

import argparse

from graphplat.cli.args import positive_int as _positive
import functools
import json
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Optional, Sequence, Tuple

import grpc
import numpy as np

from graphplat.proto import model_service_pb2 as mpb
from graphplat.proto import model_service_pb2_grpc as mpb_grpc
from graphplat.rpc import (HostedService, RpcAbort, ServiceMetrics, add_security_arguments,
                           add_shutdown_arguments, install_stop_signals, read_credentials,
                           rpc_method, serve_until_stopped, status_of,
                           warn_if_exposed)
from graphplat.cli.args import Parser, setup_logging
from graphplat.rpc import ERROR_TYPE_KEY, read_token  # noqa: F401  (importable from here)
from graphplat.serving.recommend import Recommender
from graphplat.serving.scoring import NodeScorer
from graphplat.storage import codec

log = logging.getLogger("graphplat.serving")

SERVICE_NAME = "graphplat.serving.v1.ModelService"
DEFAULT_PORT = 50061
DEFAULT_MAX_BATCH = 4096
DEFAULT_MAX_K = 1000
DEFAULT_MAX_MESSAGE_MB = 64
LATENCY_BUCKETS = (.0002, .0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10, 30)

__all__ = ["ModelServer", "ModelServicer", "ModelMetrics", "NotConfigured", "SERVICE_NAME",
           "add_serve_model_arguments", "run_serve_model", "build_parser", "main",
           "build_model_server", "load_embeddings", "to_array", "SERVE_MODEL_DESCRIPTION",
           "SERVE_MODEL_EPILOG"]


class NotConfigured(RuntimeError):
    """The RPC needs something the server was not started with (FAILED_PRECONDITION)."""


@functools.lru_cache(maxsize=1)
def _status_rules():
    """Failures of the graph servers and of the setup, before the builtin mapping."""
    from graphplat.storage.client import PartitionUnavailable, RemoteError, RequestTooLarge

    return ((RequestTooLarge, grpc.StatusCode.RESOURCE_EXHAUSTED, "ValueError", "graph server: "),
            (PartitionUnavailable, grpc.StatusCode.UNAVAILABLE, "ConnectionError", "graph server: "),
            (NotConfigured, grpc.StatusCode.FAILED_PRECONDITION, "RuntimeError", ""),
            (RemoteError, grpc.StatusCode.INTERNAL, "RuntimeError", "graph server: "))


def _status_of(exc: BaseException) -> Tuple[grpc.StatusCode, str, str]:
    """(code, message, exception class name) of a handler's exception (a KeyError travels as
    ValueError)."""
    return status_of(exc, _status_rules(), key_error_type="ValueError")


# ----------------------------------------------------------------------------- arrays

def to_array(values, dtype=None) -> mpb.Array:
    """numpy -> ``graphplat.serving.v1.Array`` (the layout of ``graphplat.v1.Array``)."""
    a = codec.to_array(values, dtype)
    return mpb.Array(dtype=a.dtype, shape=a.shape, data=a.data)


def from_array(msg: mpb.Array, name: str = "array") -> np.ndarray:
    """``Array`` -> numpy (read-only view; ValueError when malformed)."""
    return codec.from_array(msg, name=name)


def ids_from(msg: mpb.Array, name: str = "ids") -> np.ndarray:
    """A 1-D integer id array as int64 (ValueError otherwise)."""
    return codec.ids_from(msg, name)


# ----------------------------------------------------------------------------- metrics

class ModelMetrics(ServiceMetrics):
    """Prometheus metrics of the model service, in their own registry."""

    def __init__(self):
        from prometheus_client import Counter, Histogram

        super().__init__("graphplat_model", LATENCY_BUCKETS)
        self.users = Counter("graphplat_model_recommended_users", "Users recommended for",
                             registry=self.registry)
        self.scored = Counter("graphplat_model_scored_nodes", "Nodes scored", registry=self.registry)
        self.sampled_edges = Histogram("graphplat_model_sampled_edges", "Sampled edges per scored node",
                                       buckets=(0, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000),
                                       registry=self.registry)


# ----------------------------------------------------------------------------- servicer

# Readiness check (``self._ready()``), metrics and exception -> status mapping around a handler.
_rpc = rpc_method(_status_of, log)


class ModelServicer(mpb_grpc.ModelServiceServicer):
    """The ModelService over a :class:`Recommender` and/or a :class:`NodeScorer`."""

    def __init__(self, recommender: Optional[Recommender], scorer: Optional[NodeScorer],
                 metrics: ModelMetrics, *, max_batch: int = DEFAULT_MAX_BATCH, info: Optional[dict] = None):
        self.recommender = recommender
        self.scorer = scorer
        self.metrics = metrics
        self.max_batch = int(max_batch)
        self.draining = False
        self._info = dict(info or {})

    def _ready(self) -> None:
        if self.draining:
            raise RpcAbort(grpc.StatusCode.UNAVAILABLE, "the model service is shutting down")

    def _rec(self, exclude_seen: bool) -> Recommender:
        if self.recommender is None:
            raise NotConfigured("this server has no embeddings: start it with --user-embeddings "
                                "and --item-embeddings to recommend")
        if exclude_seen and not self.recommender.seen:
            raise NotConfigured("exclude_seen needs a graph (--graph or --cluster) and --seen-etype")
        return self.recommender

    def _score(self) -> NodeScorer:
        if self.scorer is None:
            raise NotConfigured("this server has no model: start it with --checkpoint and a graph "
                                "(--graph or --cluster) to score")
        return self.scorer

    def _batch(self, n: int, what: str) -> None:
        if n > self.max_batch:
            raise RpcAbort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                           f"{what} has {n} entries, more than this server's --max-batch {self.max_batch}",
                           "ValueError")

    @_rpc
    def Recommend(self, request, context):
        rec = self._rec(request.exclude_seen)
        user = (_keys(rec, "user").to_internal([request.user_key]) if request.user_key
                else np.array([request.user_id], np.int64))
        r = rec.recommend(user, request.k, request.exclude_seen)
        self.metrics.users.inc()
        items, scores = r.row(0)
        resp = mpb.RecommendResponse(item_ids=to_array(items), scores=to_array(scores),
                                     excluded=int(r.excluded[0]))
        if rec.item_keys is not None:
            resp.item_keys.extend(rec.item_keys.to_external(items).tolist())
        return resp

    @_rpc
    def RecommendBatch(self, request, context):
        rec = self._rec(request.exclude_seen)
        self._batch(max(len(request.user_keys), 0), "user_keys")
        users = (_keys(rec, "user").to_internal(list(request.user_keys)) if request.user_keys
                 else ids_from(request.user_ids, "user_ids"))
        self._batch(len(users), "user_ids")
        r = rec.recommend(users, request.k, request.exclude_seen)
        self.metrics.users.inc(len(users))
        resp = mpb.RecommendBatchResponse(item_ids=to_array(r.item_ids), scores=to_array(r.scores),
                                          counts=to_array(r.counts), excluded=to_array(r.excluded))
        if rec.item_keys is not None:
            flat = r.item_ids.reshape(-1)
            keys = np.full(len(flat), "", dtype=object)
            keys[flat >= 0] = rec.item_keys.to_external(flat[flat >= 0])
            resp.item_keys.extend(keys.tolist())
        return resp

    @_rpc
    def Score(self, request, context):
        scorer = self._score()
        seed = int(request.seed) if request.HasField("seed") else None
        node = request.node_id
        if request.node_key:  # a string id: the graph's dictionary gives the node id
            node = int(scorer.graph.to_internal(request.ntype or scorer.target_ntype, [request.node_key])[0])
        s = scorer.score_one(node, ntype=request.ntype, seed=seed)
        self.metrics.scored.inc()
        self.metrics.sampled_edges.observe(s.sampled_edges)
        return mpb.ScoreResponse(node_id=s.node_id, probabilities=to_array(s.probabilities),
                                 score=s.score, sampled_edges=s.sampled_edges, input_nodes=s.input_nodes,
                                 node_key=request.node_key)

    @_rpc
    def ScoreBatch(self, request, context):
        scorer = self._score()
        self._batch(len(request.node_keys), "node_keys")
        ids = (scorer.graph.to_internal(request.ntype or scorer.target_ntype, list(request.node_keys))
               if request.node_keys else ids_from(request.node_ids, "node_ids"))
        self._batch(len(ids), "node_ids")
        seed = int(request.seed) if request.HasField("seed") else None
        got = scorer.score_many(ids, ntype=request.ntype, seed=seed)
        self.metrics.scored.inc(len(got))
        for s in got:
            self.metrics.sampled_edges.observe(s.sampled_edges)
        probs = (np.stack([s.probabilities for s in got]) if got
                 else np.zeros((0, scorer.num_classes), np.float32))
        return mpb.ScoreBatchResponse(
            probabilities=to_array(probs),
            scores=to_array(np.array([s.score for s in got], np.float64)),
            sampled_edges=to_array(np.array([s.sampled_edges for s in got], np.int64)))

    @_rpc
    def Info(self, request, context):
        out = dict(self._info)
        out["recommend"] = self.recommender.info() if self.recommender is not None else None
        out["score"] = self.scorer.info() if self.scorer is not None else None
        return mpb.InfoResponse(json=json.dumps(out, default=str))


# ----------------------------------------------------------------------------- server

class ModelServer(HostedService):
    """The model service's gRPC server (plus health and the optional metrics endpoint).

    Build the :class:`Recommender` / :class:`NodeScorer` first (or use
    :func:`build_model_server`); ``start()`` binds and reports SERVING; ``stop(grace)``
    drains calls in flight and closes ``graph`` (when given).
    """

    SERVICE_NAME = SERVICE_NAME

    def __init__(self, *, recommender: Optional[Recommender] = None, scorer: Optional[NodeScorer] = None,
                 graph=None, host: str = "127.0.0.1", port: int = 0, threads: int = 8,
                 max_batch: int = DEFAULT_MAX_BATCH, metrics_port: Optional[int] = None,
                 metrics_host: str = "127.0.0.1", token: Optional[str] = None,
                 tls: Optional[Tuple[bytes, bytes]] = None, max_message_mb: int = DEFAULT_MAX_MESSAGE_MB,
                 follow_interval: Optional[float] = None, info: Optional[dict] = None):
        if recommender is None and scorer is None:
            raise ValueError("nothing to serve: give embeddings (recommendation) and/or a checkpoint (scoring)")
        self.graph = graph
        self.host = host
        metrics = ModelMetrics()
        self._init_grpc(ModelServicer(recommender, scorer, metrics, max_batch=max_batch, info=info),
                        mpb_grpc.add_ModelServiceServicer_to_server, metrics, host=host, port=port,
                        threads=threads, thread_name_prefix="graphplat-model",
                        max_message_bytes=int(max_message_mb) << 20, token=token, tls=tls,
                        metrics_port=metrics_port, metrics_host=metrics_host)
        if follow_interval and graph is not None and hasattr(graph, "backends"):
            backends = [b for b in graph.backends if hasattr(b, "refresh")]
            if backends:
                self._follower = threading.Thread(target=self._follow, args=(backends, follow_interval),
                                                  name="graphplat-model-follow", daemon=True)

    def _follow(self, backends, interval: float) -> None:
        while not self._stop_follow.wait(interval):
            for b in backends:
                try:
                    b.refresh()
                except Exception as e:  # noqa: BLE001 - a compaction may be in progress
                    log.debug("refreshing partition %s failed: %s", getattr(b, "partition", "?"), e)

    def start(self) -> "ModelServer":
        self.server.start()
        if self._follower is not None:
            self._follower.start()
        self._set_health(True)
        log.info("model service on %s (metrics port %s): %s", self.address, self.metrics_port,
                 ", ".join(k for k, v in (("recommend", self.servicer.recommender),
                                          ("score", self.servicer.scorer)) if v is not None))
        return self

    def stop(self, grace: float = 5.0) -> None:
        """NOT_SERVING, refuse new calls, give calls in flight ``grace`` s, close the graph."""
        self._drain(grace)
        if self.graph is not None:
            self.graph.close()
        self.metrics.close()

    def __enter__(self) -> "ModelServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop(1.0)


# ----------------------------------------------------------------------------- building

def _keys(rec: Recommender, what: str):
    keys = rec.user_keys if what == "user" else rec.item_keys
    if keys is None:
        raise ValueError(f"the {what} embeddings have int64 ids: send {what}_id(s), not string keys")
    return keys


def key_ids(ids: np.ndarray, graph, ntype: str):
    """For an export with string ids: ``(dictionary, int64 ids)``, the graph's dictionary of
    ``ntype`` when the graph has one (so seen items match), else one numbering the file's
    strings; ``(None, ids)`` for int64 ids."""
    from graphplat.storage.id_dictionary import IdDictionary

    if ids.dtype != object:
        return None, ids
    if graph is not None and ntype in graph.schema.ntypes and \
            graph.schema.node_type(ntype).id_type == "string":
        d = graph.id_dictionary(ntype)
    else:
        d = IdDictionary(ntype, ids.tolist(), read_only=True)
    return d, d.to_internal(ids)


def load_embeddings(path) -> Tuple[np.ndarray, np.ndarray]:
    """``(ids, embeddings float32 (N, d))`` of an exported embedding file (ids: int64, or
    the user's strings for a string-id node type)."""
    from graphplat.inference.export import read_embeddings

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"embedding file {p} does not exist")
    return read_embeddings(p)


def open_graph_source(graph: Optional[str] = None, cluster: Optional[str] = None):
    """A read-only LocalGraph over ``graph`` (a store) or a RemoteGraph over ``cluster``."""
    if graph and cluster:
        raise ValueError("give --graph or --cluster, not both")
    if graph:
        from graphplat.storage.local import open_graph

        return open_graph(graph, read_only=True)
    if cluster:
        from graphplat.storage.remote import connect

        return connect(cluster)
    return None


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
            log.info("model: %s on %r nodes, fanouts %s, seed %d", scorer.trained.config.get("model"),
                     scorer.target_ntype, scorer.fanouts, scorer.seed)
        info = {"graph": args.graph, "cluster": args.cluster, "load_seconds": round(time.perf_counter() - t0, 3)}
        return ModelServer(recommender=recommender, scorer=scorer, graph=graph, host=args.host,
                           port=args.port, threads=args.threads, max_batch=args.max_batch,
                           metrics_port=args.metrics_port, metrics_host=args.metrics_host, token=token,
                           tls=tls, max_message_mb=args.max_message_mb,
                           follow_interval=args.follow_interval if args.graph else None, info=info)
    except BaseException:
        if graph is not None:
            graph.close()
        raise


# ----------------------------------------------------------------------------- command line

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
                        "repeatable; read from the type's out-adjacency (schema 'reverse: true') or a "
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``python -m graphplat.serving.server`` (== ``graphplat serve-model``)."""
    from graphplat.cli import main as cli_main

    return cli_main(["serve-model", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
