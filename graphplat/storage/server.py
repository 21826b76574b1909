"""``graphplat serve``: one gRPC server answering for one partition of a store.

A server loads partition ``K`` of a store (bulk blobs plus the write log, replayed onto a
:class:`~graphplat.storage.partition_graph.PartitionGraph`) and serves the
``graphplat.v1.GraphPartition`` service (``proto/graphplat.proto``) plus the standard
``grpc.health.v1.Health`` service, which reports SERVING once the partition is loaded.

Roles (one store, several processes per partition):

* **primary** (default): opens the partition's RocksDB read-write and is its only writer.
  A write is validated, appended to the RocksDB write log in a synced WriteBatch, applied
  to the in-memory graph and only then acknowledged, so an acknowledged write is durable
  and visible to the next call. Writes are serialized, so the log order is the apply order
  and a restart replays it to the identical state (same edge ids, same samples).
* **replica** (``--replica``): a read replica of the same store directory. It opens the
  RocksDB read-only (no lock, next to the running primary), refuses writes with
  FAILED_PRECONDITION, and follows the primary by re-reading the write log every
  ``--follow-interval`` seconds (a compaction is picked up by reloading the new
  generation). Reads on a replica are therefore eventually consistent: they may lag the
  primary's acknowledged writes by about one follow interval.

Every write carries a client-chosen ``request_id``; the ids are stored in the log record,
so a retried write (same id) is answered with the first answer instead of being applied
twice, also across a restart of the server, until a compaction drops the record.

Status codes: malformed arrays, unknown node/edge types or features and bad values are
INVALID_ARGUMENT (from ValueError/TypeError/KeyError); ids or edge ids this partition does
not hold are NOT_FOUND (from IndexError); batches over ``--max-batch``, fanouts over
``--max-fanout`` and messages over ``--max-message-mb`` are RESOURCE_EXHAUSTED; writes to a
replica are FAILED_PRECONDITION; calls while loading or shutting down are UNAVAILABLE; any
other exception is INTERNAL with its message, and the server keeps serving. The Python
exception class travels in the trailing metadata ``graphplat-error`` so clients re-raise
the same class (ValueError, IndexError, TypeError...).

Security: binds 127.0.0.1 unless ``--host`` says otherwise (a non-loopback host without a
token or TLS logs a warning). With ``--token``/``--token-file`` every GraphPartition call
must carry the metadata ``authorization: Bearer <token>`` (compared in constant time) or
gets UNAUTHENTICATED. The health service is deliberately *not* authenticated, so load
balancers and orchestrators can probe readiness without the secret; it reveals only the
serving status. ``--tls-cert/--tls-key`` enable TLS.

Metrics (``--metrics-port``): a Prometheus endpoint with its own registry:
``graphplat_requests_total{method,code}``, ``graphplat_request_seconds{method}``
(histogram), ``graphplat_request_errors_total{method,code}``,
``graphplat_sampled_edges_total``, ``graphplat_write_log_seq`` and
``graphplat_partition_nodes{ntype}`` / ``graphplat_partition_edges{etype}``.

SIGTERM/SIGINT: health goes NOT_SERVING, new calls are refused, calls in flight get
``--grace`` seconds to finish, RocksDB is closed and the process exits 0.
"""
from __future__ import annotations

import argparse
import functools
import hmac
import ipaddress
import json
import logging
import os
import signal
import sys
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import grpc
import numpy as np
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from graphplat.proto import graphplat_pb2 as pb
from graphplat.storage.durable import (DurablePartition, PartitionClosed, ReadOnlyReplica,
                                       WriteResult, apply_record)
from graphplat.proto import graphplat_pb2_grpc as pb_grpc
from graphplat.storage import codec
from graphplat.storage.partition_graph import PartitionGraph

log = logging.getLogger("graphplat.server")

SERVICE_NAME = "graphplat.v1.GraphPartition"
ERROR_TYPE_KEY = "graphplat-error"
DEFAULT_MAX_MESSAGE_MB = 256
DEFAULT_MAX_BATCH = 1 << 20
DEFAULT_MAX_FANOUT = 10_000
NODE_IDS_CHUNK = 1 << 20
_LOOPBACK_NAMES = ("localhost", "ip6-localhost")

__all__ = ["PartitionServer", "DurablePartition", "Limits", "build_parser", "add_serve_arguments",
           "main_serve", "run_serve", "apply_record", "SERVICE_NAME", "SERVE_DESCRIPTION",
           "SERVE_EPILOG"]


# ----------------------------------------------------------------------------- errors

class RpcAbort(Exception):
    """Abort the current call with ``code`` and ``message``."""

    def __init__(self, code: grpc.StatusCode, message: str, error_type: str = ""):
        super().__init__(message)
        self.code = code
        self.message = message
        self.error_type = error_type


def _status_of(exc: BaseException) -> Tuple[grpc.StatusCode, str, str]:
    """(code, message, exception class name) for an exception raised by a handler."""
    if isinstance(exc, RpcAbort):
        return exc.code, exc.message, exc.error_type
    name = type(exc).__name__
    if isinstance(exc, ReadOnlyReplica):
        return grpc.StatusCode.FAILED_PRECONDITION, str(exc), "RuntimeError"
    if isinstance(exc, PartitionClosed):
        return grpc.StatusCode.UNAVAILABLE, str(exc), "ConnectionError"

    if isinstance(exc, IndexError):
        return grpc.StatusCode.NOT_FOUND, str(exc), "IndexError"
    if isinstance(exc, KeyError):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc.args[0]) if exc.args else name, "KeyError"
    if isinstance(exc, ValueError):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc), "ValueError"
    if isinstance(exc, TypeError):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc), "TypeError"
    return grpc.StatusCode.INTERNAL, f"{name}: {exc}", name


@functools.lru_cache(maxsize=None)
def _code_name(code: grpc.StatusCode) -> str:
    return code.name


# ----------------------------------------------------------------------------- limits, metrics

class Limits:
    """Request bounds of a server."""

    def __init__(self, max_batch: int = DEFAULT_MAX_BATCH, max_fanout: int = DEFAULT_MAX_FANOUT,
                 max_message_mb: int = DEFAULT_MAX_MESSAGE_MB):
        if max_batch < 1 or max_fanout < 1 or max_message_mb < 1:
            raise ValueError("max_batch, max_fanout and max_message_mb must be >= 1")
        self.max_batch = int(max_batch)
        self.max_fanout = int(max_fanout)
        self.max_message_bytes = int(max_message_mb) << 20

    def batch(self, n: int, what: str) -> None:
        if n > self.max_batch:
            raise RpcAbort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                           f"{what} has {n} entries, more than this server's --max-batch "
                           f"{self.max_batch}; split the request", "ValueError")

    def fanout(self, fanout: int) -> None:
        if fanout > self.max_fanout:
            raise RpcAbort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                           f"fanout {fanout} exceeds this server's --max-fanout {self.max_fanout} "
                           f"(use fanout -1 / strategy 'full' for whole neighborhoods)", "ValueError")


class Metrics:
    """Prometheus metrics of one server, in their own registry."""

    def __init__(self):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("graphplat_requests", "Requests by method and status code",
                                ["method", "code"], registry=self.registry)
        self.errors = Counter("graphplat_request_errors", "Failed requests by method and code",
                              ["method", "code"], registry=self.registry)
        self.latency = Histogram("graphplat_request_seconds", "Request latency by method", ["method"],
                                 buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5,
                                          1, 2.5, 5, 10, 30), registry=self.registry)
        self.sampled_edges = Counter("graphplat_sampled_edges", "Edges returned by SampleNeighbors",
                                     registry=self.registry)
        self.log_seq = Gauge("graphplat_write_log_seq", "Last write-log record applied",
                             registry=self.registry)
        self.nodes = Gauge("graphplat_partition_nodes", "Nodes held by this partition", ["ntype"],
                           registry=self.registry)
        self.edges = Gauge("graphplat_partition_edges", "Edges owned by this partition", ["etype"],
                           registry=self.registry)
        self.http = None

    def record(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        c = _code_name(code)
        self.requests.labels(method, c).inc()
        self.latency.labels(method).observe(seconds)
        if code != grpc.StatusCode.OK:
            self.errors.labels(method, c).inc()

    def update_sizes(self, graph: PartitionGraph, seq: int) -> None:
        self.log_seq.set(seq)
        for nt in graph.schema.node_types:
            self.nodes.labels(nt.name).set(graph.num_nodes(nt.name))
        for et in graph.schema.edge_types:
            self.edges.labels(et.canonical_str).set(graph.num_edges(et.canonical))

    def serve(self, host: str, port: int) -> int:
        from prometheus_client import start_http_server

        got = start_http_server(port, addr=host, registry=self.registry)
        self.http = got[0] if isinstance(got, tuple) else None
        return self.http.server_port if self.http is not None else port

    def close(self) -> None:
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
            self.http = None


# ----------------------------------------------------------------------------- servicer

def _abort(method: str, exc: Exception, context) -> None:
    """Turn a handler's exception into a status (logged, with the exception class in the
    trailing metadata) and abort the call (``context.abort`` raises)."""
    code, message, etype = _status_of(exc)
    if code == grpc.StatusCode.INTERNAL:
        log.exception("%s failed", method)
    else:
        log.debug("%s: %s %s", method, code.name, message)
    if etype:
        context.set_trailing_metadata(((ERROR_TYPE_KEY, etype),))
    context.abort(code, message[:4000])


def _rpc(fn):
    """Wrap a handler: readiness check, metrics, exception -> status mapping."""
    method = fn.__name__

    @functools.wraps(fn)
    def wrapper(self, request, context):
        t0 = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            return fn(self, self._ready(), request, context)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a status
            code = _status_of(exc)[0]
            _abort(method, exc, context)
        finally:
            self._metrics.record(method, code, time.perf_counter() - t0)

    return wrapper


def _stream_rpc(fn):
    """Like :func:`_rpc` for server-streaming handlers (generators)."""
    method = fn.__name__

    @functools.wraps(fn)
    def wrapper(self, request, context):
        t0 = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            yield from fn(self, self._ready(), request, context)
        except Exception as exc:  # noqa: BLE001
            code = _status_of(exc)[0]
            _abort(method, exc, context)
        finally:
            self._metrics.record(method, code, time.perf_counter() - t0)

    return wrapper


class GraphPartitionServicer(pb_grpc.GraphPartitionServicer):
    """The GraphPartition service over a :class:`DurablePartition` (set once loaded)."""

    def __init__(self, limits: Limits, metrics: Metrics):
        self.limits = limits
        self._metrics = metrics
        self.state: Optional[DurablePartition] = None
        self.draining = False

    def _ready(self) -> DurablePartition:
        if self.draining:
            raise RpcAbort(grpc.StatusCode.UNAVAILABLE, "server is shutting down")
        if self.state is None:
            raise RpcAbort(grpc.StatusCode.UNAVAILABLE, "partition is still loading")
        return self.state

    # ---- helpers
    def _ids(self, msg, name: str) -> np.ndarray:
        ids = codec.ids_from(msg, name)
        self.limits.batch(len(ids), name)
        return ids

    def _opt(self, request, field: str, *, dtype=None) -> Optional[np.ndarray]:
        arr = codec.optional_array(request, field)
        if arr is not None:
            self.limits.batch(len(arr) if arr.ndim else 1, field)
            if dtype is not None:
                arr = arr.astype(dtype, copy=False)
        return arr

    @staticmethod
    def _etype(state: DurablePartition, msg) -> Tuple[str, str, str]:
        return state.schema.edge_type(codec.etype_key(msg)).canonical

    def _feats(self, items, rows: int) -> Dict[str, np.ndarray]:
        feats = codec.from_named(items)
        for k, v in feats.items():
            if v.ndim == 0 or len(v) != rows:
                raise ValueError(f"feature {k!r} has shape {v.shape}, expected {rows} rows")
        return feats

    # ---- info
    @_rpc
    def Info(self, state, request, context):
        g = state.graph
        resp = pb.InfoResponse(
            partition=state.partition, num_partitions=state.book.num_partitions,
            num_nodes=[pb.Count(key=nt.name, value=g.num_nodes(nt.name)) for nt in state.schema.node_types],
            num_edges=[pb.Count(key=et.canonical_str, value=g.num_edges(et.canonical))
                       for et in state.schema.edge_types],
            writable=not state.replica, version=_version(), applied_seq=state.applied_seq,
            role="replica" if state.replica else "primary")
        if request.include_schema:
            resp.schema_yaml = state.schema.to_yaml()
        if request.include_book:
            resp.partition_book.CopyFrom(codec.book_to_msg(state.book))
        return resp

    # ---- reads
    @_rpc
    def SampleNeighbors(self, state, request, context):
        key = self._etype(state, request.etype)
        seeds = self._ids(request.seeds, "seeds")
        positions = None
        if request.HasField("positions"):
            positions = self._ids(request.positions, "positions")
        self.limits.fanout(int(request.fanout))
        s = state.graph.sample_neighbors(
            key, seeds, int(request.fanout), strategy=request.strategy or "uniform",
            replace=request.replace, direction=request.direction or "in", seed=int(request.seed),
            hop=int(request.hop), positions=positions)
        self._metrics.sampled_edges.inc(len(s.neighbors))
        return pb.SampleNeighborsResponse(counts=codec.to_array(s.counts),
                                          neighbors=codec.to_array(s.neighbors),
                                          eids=codec.to_array(s.eids))

    @_rpc
    def NodeFeatures(self, state, request, context):
        ids = self._ids(request.ids, "ids")
        names = None if request.all_names else list(request.names)
        got = state.graph.node_features(request.ntype, ids, names)
        return pb.FeaturesResponse(features=codec.to_named(got))

    @_rpc
    def EdgeFeatures(self, state, request, context):
        key = self._etype(state, request.etype)
        eids = self._ids(request.eids, "eids")
        names = None if request.all_names else list(request.names)
        got = state.graph.edge_features(key, eids, names)
        return pb.FeaturesResponse(features=codec.to_named(got))

    @_rpc
    def Degrees(self, state, request, context):
        key = self._etype(state, request.etype)
        ids = self._ids(request.ids, "ids")
        return pb.ArrayResponse(array=codec.to_array(
            state.graph.degrees(key, ids, request.direction or "in")))

    @_rpc
    def Lookup(self, state, request, context):
        ids = self._ids(request.ids, "ids")
        return pb.ArrayResponse(array=codec.to_array(state.graph.lookup(request.ntype, ids)))

    @_stream_rpc
    def NodeIds(self, state, request, context):
        ids = state.graph.node_ids(request.ntype)
        chunk = int(request.chunk_size) or NODE_IDS_CHUNK
        chunk = max(1, min(chunk, self.limits.max_message_bytes // 16))
        for start in range(0, max(len(ids), 1), chunk):
            yield pb.ArrayResponse(array=codec.to_array(ids[start:start + chunk]))

    @_rpc
    def HasEdges(self, state, request, context):
        key = self._etype(state, request.etype)
        src = self._ids(request.src, "src")
        dst = self._ids(request.dst, "dst")
        if len(src) != len(dst):
            raise ValueError(f"{len(src)} sources but {len(dst)} destinations")
        return pb.ArrayResponse(array=codec.to_array(state.graph.has_edges(key, src, dst)))

    # ---- writes: validation, durable logging and dedupe live in DurablePartition
    def _write(self, result: WriteResult) -> pb.WriteResponse:
        resp = pb.WriteResponse(seq=result.seq, duplicate=result.duplicate)
        if result.eids is not None:
            resp.eids.CopyFrom(codec.to_array(result.eids))
        return resp

    def _edge_write_args(self, state, request):
        key = self._etype(state, request.etype)
        return key, self._ids(request.src, "src"), self._ids(request.dst, "dst"), self._opt(request, "weights")

    @_rpc
    def AddNodes(self, state, request, context):
        ids = self._ids(request.ids, "ids")
        feats = self._feats(request.features, len(ids))
        result = self._write(state.write_add_nodes(request.ntype, ids, feats, request.request_id))
        self._metrics.update_sizes(state.graph, state.applied_seq)
        return result

    @_rpc
    def UpdateFeatures(self, state, request, context):
        ids = self._ids(request.ids, "ids")
        feats = self._feats(request.features, len(ids))
        return self._write(state.write_update_features(request.ntype, ids, feats, request.request_id))

    @_rpc
    def AddEdgesIn(self, state, request, context):
        key, src, dst, weights = self._edge_write_args(state, request)
        result = self._write(state.write_add_edges_in(key, src, dst, weights, request.request_id))
        self._metrics.update_sizes(state.graph, state.applied_seq)
        return result

    @_rpc
    def AddEdgesOut(self, state, request, context):
        key, src, dst, weights = self._edge_write_args(state, request)
        eids = self._ids(request.eids, "eids")
        return self._write(state.write_add_edges_out(key, src, dst, eids, weights, request.request_id))

    @_rpc
    def Compact(self, state, request, context):
        return pb.CompactResponse(seq=state.compact())


@functools.lru_cache(maxsize=1)
def _version() -> str:
    try:
        from graphplat import __version__
        return __version__
    except Exception:  # pragma: no cover
        return "unknown"


# ----------------------------------------------------------------------------- auth

class BearerTokenInterceptor(grpc.ServerInterceptor):
    """Requires ``authorization: Bearer <token>`` on every call except the health service."""

    EXEMPT_PREFIX = "/grpc.health.v1.Health/"

    def __init__(self, token: str, metrics: Optional[Metrics] = None):
        if not token:
            raise ValueError("the bearer token must not be empty")
        self._expected = f"Bearer {token}".encode()
        self._metrics = metrics

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method or ""
        if method.startswith(self.EXEMPT_PREFIX):
            return continuation(handler_call_details)
        got = None
        for k, v in handler_call_details.invocation_metadata or ():
            if k == "authorization":
                got = v.encode() if isinstance(v, str) else bytes(v)
                break
        if got is not None and hmac.compare_digest(got, self._expected):
            return continuation(handler_call_details)
        msg = "missing bearer token" if got is None else "invalid bearer token"
        if self._metrics is not None:
            self._metrics.record(method.rsplit("/", 1)[-1] or "unknown",
                                 grpc.StatusCode.UNAUTHENTICATED, 0.0)
        handler = continuation(handler_call_details)
        return _deny_handler(handler, msg)


def _deny_handler(handler, message: str):
    def deny(request, context):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    def deny_stream(request, context):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield  # pragma: no cover

    if handler is None:
        return None
    kw = dict(request_deserializer=handler.request_deserializer,
              response_serializer=handler.response_serializer)
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(deny_stream, **kw)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(deny, **kw)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(deny_stream, **kw)
    return grpc.unary_unary_rpc_method_handler(deny, **kw)


# ----------------------------------------------------------------------------- server

def is_loopback(host: str) -> bool:
    """Whether ``host`` names the loopback interface only."""
    h = host.strip("[]")
    if h.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


class PartitionServer:
    """A gRPC server for one partition (see the module docstring).

    ``start()`` binds and starts serving (health NOT_SERVING, calls UNAVAILABLE), then
    ``load()`` loads the partition and flips health to SERVING. ``stop(grace)`` drains.
    """

    def __init__(self, store_dir, partition: int, *, host: str = "127.0.0.1", port: int = 0,
                 replica: bool = False, token: Optional[str] = None,
                 tls: Optional[Tuple[bytes, bytes]] = None, limits: Optional[Limits] = None,
                 metrics_port: Optional[int] = None, metrics_host: str = "127.0.0.1",
                 threads: int = 16, follow_interval: float = 0.5):
        self.store_dir = Path(store_dir)
        self.partition = int(partition)
        self.host = host
        self.replica = replica
        self.limits = limits or Limits()
        self.metrics = Metrics()
        self.follow_interval = follow_interval
        self._stop_follow = threading.Event()
        self._follower: Optional[threading.Thread] = None
        self.servicer = GraphPartitionServicer(self.limits, self.metrics)
        self.health = health.HealthServicer(experimental_non_blocking=True)
        for svc in ("", SERVICE_NAME):
            self.health.set(svc, health_pb2.HealthCheckResponse.NOT_SERVING)
        interceptors = [BearerTokenInterceptor(token, self.metrics)] if token else []
        opts = [("grpc.max_receive_message_length", self.limits.max_message_bytes),
                ("grpc.max_send_message_length", self.limits.max_message_bytes),
                ("grpc.so_reuseport", 0)]
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads,
                                                             thread_name_prefix="graphplat-rpc"),
                                  interceptors=interceptors, options=opts)
        pb_grpc.add_GraphPartitionServicer_to_server(self.servicer, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        address = f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
        try:
            if tls is not None:
                key, cert = tls
                creds = grpc.ssl_server_credentials([(key, cert)])
                self.port = self.server.add_secure_port(address, creds)
            else:
                self.port = self.server.add_insecure_port(address)
        except RuntimeError as e:
            raise OSError(f"cannot listen on {address}: {e}") from None
        if not self.port:
            raise OSError(f"cannot listen on {address} (address in use?)")
        self.address = f"{host}:{self.port}"
        self.metrics_port = None
        if metrics_port is not None:
            self.metrics_port = self.metrics.serve(metrics_host, metrics_port)

    @property
    def state(self) -> Optional[DurablePartition]:
        return self.servicer.state

    def start(self) -> "PartitionServer":
        self.server.start()
        return self

    def load(self) -> DurablePartition:
        """Load the partition (replaying its log), then report SERVING."""
        t0 = time.perf_counter()
        state = DurablePartition(self.store_dir, self.partition, replica=self.replica)
        self.servicer.state = state
        self.metrics.update_sizes(state.graph, state.applied_seq)
        for svc in ("", SERVICE_NAME):
            self.health.set(svc, health_pb2.HealthCheckResponse.SERVING)
        g = state.graph
        log.info("serving partition %d/%d of %s on %s as %s in %.2fs: nodes %s, edges %s, "
                 "replayed %d log records (through seq %d)", self.partition,
                 state.book.num_partitions, self.store_dir, self.address,
                 "replica" if self.replica else "primary", time.perf_counter() - t0,
                 {nt.name: g.num_nodes(nt.name) for nt in state.schema.node_types},
                 {et.canonical_str: g.num_edges(et.canonical) for et in state.schema.edge_types},
                 state.replayed, state.applied_seq)
        if self.replica:
            self._follower = threading.Thread(target=self._follow, name="graphplat-follow", daemon=True)
            self._follower.start()
        return state

    def _follow(self) -> None:
        while not self._stop_follow.wait(self.follow_interval):
            state = self.servicer.state
            if state is None:
                continue
            try:
                if state.refresh():
                    self.metrics.update_sizes(state.graph, state.applied_seq)
            except Exception as e:  # the primary may be mid-compaction; try again
                log.debug("partition %d replica: refresh failed: %s", self.partition, e)

    def stop(self, grace: float = 5.0) -> None:
        """Stop accepting calls, let calls in flight finish for ``grace`` s, close the store."""
        self.health.enter_graceful_shutdown()
        self._stop_follow.set()
        ev = self.server.stop(grace)
        self.servicer.draining = True
        ev.wait(grace + 1.0)
        if self._follower is not None:
            self._follower.join(timeout=2.0)
        state = self.servicer.state
        if state is not None:
            with state.write_lock:  # no write is half-logged when the DB closes
                state.close()
        self.metrics.close()


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
    p.add_argument("--metrics-port", type=int, default=None,
                   help="serve Prometheus metrics over HTTP on this port (default: off)")
    p.add_argument("--metrics-host", default="127.0.0.1",
                   help="interface of the metrics endpoint (default 127.0.0.1)")
    tok = p.add_mutually_exclusive_group()
    tok.add_argument("--token", default=None,
                     help="require 'authorization: Bearer TOKEN' on every call (visible in the "
                          "process list; prefer --token-file or $GRAPHPLAT_TOKEN)")
    tok.add_argument("--token-file", default=None, help="read the bearer token from this file")
    p.add_argument("--tls-cert", default=None, help="PEM server certificate (chain); enables TLS")
    p.add_argument("--tls-key", default=None, help="PEM private key of --tls-cert")
    p.add_argument("--max-message-mb", type=int, default=DEFAULT_MAX_MESSAGE_MB,
                   help=f"largest request or response in MiB (default {DEFAULT_MAX_MESSAGE_MB})")
    p.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH,
                   help=f"most ids in one request; more is RESOURCE_EXHAUSTED (default {DEFAULT_MAX_BATCH})")
    p.add_argument("--max-fanout", type=int, default=DEFAULT_MAX_FANOUT,
                   help=f"largest sampling fanout; more is RESOURCE_EXHAUSTED (default "
                        f"{DEFAULT_MAX_FANOUT}; -1/'full' neighborhoods are bounded by the message size)")
    p.add_argument("--threads", type=int, default=16, help="gRPC worker threads (default 16)")
    p.add_argument("--grace", type=float, default=5.0,
                   help="seconds calls in flight may take to finish on shutdown (default 5)")
    p.add_argument("--ready-file", default=None,
                   help="write JSON {address, port, metrics_port, pid} here once SERVING")
    if verbose:
        p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def build_parser(prog: str = "graphplat serve") -> argparse.ArgumentParser:
    """The parser of ``graphplat serve``."""
    p = argparse.ArgumentParser(prog=prog, description=SERVE_DESCRIPTION, epilog=SERVE_EPILOG)
    add_serve_arguments(p)
    return p


def _read_token(args) -> Optional[str]:
    if args.token_file:
        token = Path(args.token_file).read_text().strip()
        if not token:
            raise ValueError(f"token file {args.token_file} is empty")
        return token
    if args.token is not None:
        if not args.token:
            raise ValueError("--token must not be empty")
        return args.token
    return os.environ.get("GRAPHPLAT_TOKEN") or None


def main_serve(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``graphplat serve``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_serve(args, parser)


def run_serve(args: argparse.Namespace, parser: Optional[argparse.ArgumentParser] = None) -> int:
    """Run a server from parsed ``graphplat serve`` arguments until SIGTERM/SIGINT."""
    def usage_error(msg: str) -> int:
        if parser is not None:
            parser.error(msg)  # exits 2
        log.error("%s", msg)
        return 2

    if (args.tls_cert is None) != (args.tls_key is None):
        return usage_error("--tls-cert and --tls-key go together")
    try:
        token = _read_token(args)
        tls = None
        if args.tls_cert:
            tls = (Path(args.tls_key).read_bytes(), Path(args.tls_cert).read_bytes())
        limits = Limits(args.max_batch, args.max_fanout, args.max_message_mb)
    except (OSError, ValueError) as e:
        return usage_error(str(e))
    if not is_loopback(args.host) and not token and tls is None:
        log.warning("serving on %s without --token or TLS: anyone who can reach this address "
                    "can read and write the graph", args.host)

    try:
        from graphplat.storage.store import open_store

        open_store(args.store).partition_path(args.partition)  # fail before binding the port
    except ValueError as e:
        log.error("%s", e)
        return 1

    stop = threading.Event()

    def on_signal(signum, frame):
        log.info("received %s; shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        server = PartitionServer(args.store, args.partition, host=args.host, port=args.port,
                                 replica=args.replica, token=token, tls=tls, limits=limits,
                                 metrics_port=args.metrics_port, metrics_host=args.metrics_host,
                                 threads=args.threads, follow_interval=args.follow_interval)
    except (OSError, ValueError) as e:
        log.error("%s", e)
        return 1
    server.start()
    try:
        server.load()
    except Exception as e:  # noqa: BLE001
        log.error("cannot load partition %d of %s: %s", args.partition, args.store, e)
        server.stop(0)
        return 1
    if args.ready_file:
        tmp = f"{args.ready_file}.tmp-{os.getpid()}"
        with open(tmp, "w") as fh:
            json.dump({"address": server.address, "port": server.port,
                       "metrics_port": server.metrics_port, "pid": os.getpid()}, fh)
        os.replace(tmp, args.ready_file)
    while not stop.wait(1.0):
        pass
    server.stop(args.grace)
    log.info("partition %d server stopped", args.partition)
    return 0


if __name__ == "__main__":
    sys.exit(main_serve())
