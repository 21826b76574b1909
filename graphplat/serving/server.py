"""``graphplat serve-model``: the online model service (``proto/model_service.proto``).

One gRPC server answering ``graphplat.serving.v1.ModelService`` plus ``grpc.health.v1.Health``:
**Recommend / RecommendBatch** (top-K items per user from exported embeddings, optionally
excluding items seen along ``--seen-etype``; :mod:`graphplat.serving.recommend`),
**Score / ScoreBatch** (class probabilities of a node from its current neighborhood with the
model of ``--checkpoint``; :mod:`graphplat.serving.scoring`) and **Info**. The graph is
``--cluster FILE`` (RemoteGraph) or a store opened read-only with ``--graph STORE``.

Errors: bad requests -> INVALID_ARGUMENT, unknown user or node -> NOT_FOUND, batch over
``--max-batch`` -> RESOURCE_EXHAUSTED, an RPC the server was not configured for ->
FAILED_PRECONDITION, unreachable graph or shutdown -> UNAVAILABLE, else INTERNAL; the class
travels in ``graphplat-error``. ``--token``, ``--tls-cert``/``--tls-key``, ``--metrics-port``
and SIGTERM draining work as in ``graphplat serve``.
"""
from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Optional, Tuple

import grpc
import numpy as np

from graphplat.errors import NotConfigured
from graphplat.proto import model_service_pb2 as mpb
from graphplat.proto import model_service_pb2_grpc as mpb_grpc
from graphplat.rpc import HostedService, RpcAbort, ServiceMetrics, rpc_method
from graphplat.serving.codec import SERVICE_NAME
from graphplat.serving.recommend import Recommender
from graphplat.serving.scoring import NodeScorer
from graphplat.storage.codec import ids_from, to_array

log = logging.getLogger("graphplat.serving")

DEFAULT_PORT = 50061
DEFAULT_MAX_BATCH = 4096
DEFAULT_MAX_K = 1000
DEFAULT_MAX_MESSAGE_MB = 64
LATENCY_BUCKETS = (.0002, .0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10, 30)

__all__ = ["ModelServer", "ModelServicer", "ModelMetrics", "SERVICE_NAME", "load_embeddings"]


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
_rpc = rpc_method(log)


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
        b = scorer.score_batch(ids, ntype=request.ntype, seed=seed)
        self.metrics.scored.inc(len(ids))
        if len(ids):
            self.metrics.sampled_edges.observe(b.sampled_edges / len(ids))
        return mpb.ScoreBatchResponse(probabilities=to_array(b.probabilities), scores=to_array(b.scores),
                                      sampled_edges=to_array(b.first_hop))

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
        if hasattr(self.servicer.scorer, "close"):  # a ScoringPool's worker processes
            self.servicer.scorer.close()
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


