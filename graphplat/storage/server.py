"""``graphplat serve``: one gRPC server answering for one partition of a store.

It loads partition ``K`` (bulk blobs plus the replayed write log) and serves
``graphplat.v1.GraphPartition`` (``proto/graphplat.proto``) plus ``grpc.health.v1.Health``
(SERVING once loaded). The **primary** (default) is the only writer and acknowledges a write
only after it is synced to the write log and applied; a **replica** (``--replica``) opens
the store read-only, refuses writes with FAILED_PRECONDITION and lags the primary by about
``--follow-interval``. A write repeated with the same ``request_id`` gets the first answer.

Errors: ValueError/TypeError/KeyError -> INVALID_ARGUMENT, IndexError -> NOT_FOUND, limits
(``--max-batch``, ``--max-fanout``, ``--max-message-mb``, a full disk) -> RESOURCE_EXHAUSTED,
loading/shutdown -> UNAVAILABLE, anything else INTERNAL; the exception class travels in the
trailing metadata ``graphplat-error``. An edge write whose other endpoint another partition
owns is checked with that partition's servers, found through ``--cluster``
(:mod:`graphplat.storage.peers`). ``--token`` guards every GraphPartition call (not
health); ``--metrics-port`` serves Prometheus metrics; SIGTERM drains for ``--grace`` seconds.

String ids: the primary of partition 0 is the one authority of every ``id_type: string``
dictionary (``AddIdStrings`` numbers new strings under one lock, durably, before it answers);
every server streams a dictionary in pieces (``IdStrings``), see
:mod:`graphplat.storage.remote_ids`.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import grpc
import numpy as np

from graphplat.errors import ReadOnlyReplica
from graphplat.proto import graphplat_pb2 as pb
from graphplat.proto import graphplat_pb2_grpc as pb_grpc
from graphplat.rpc import HostedService, RpcAbort, ServiceMetrics, rpc_method
from graphplat.rpc.bulk import BulkListener
from graphplat.storage import codec, shared
from graphplat.storage.admission import (
    DEFAULT_IDLE_TIMEOUT_S,
    DEFAULT_STREAM_DEADLINE_S,
    AdmissionCounter,
    StreamGuard,
    connection_options,
)
from graphplat.storage.durable import DurablePartition, WriteResult, apply_record
from graphplat.storage.freshness import DEFAULT_READ_WAIT_S, FreshReadInterceptor
from graphplat.storage.id_dictionary import chunk_bounds, load_id_dictionaries
from graphplat.storage.partition_graph import PartitionGraph
from graphplat.storage.peers import DEFAULT_PEER_TIMEOUT_S, Peers
from graphplat.storage.republish import DEFAULT_REPUBLISH_AFTER_S, Publisher
from graphplat.storage.wire_dtype import carrier_dtype
from graphplat.storage.wire_dtype import check as wire_dtype_check

log = logging.getLogger("graphplat.server")

SERVICE_NAME = "graphplat.v1.GraphPartition"
#: health service name of the write path: SERVING on a primary that takes writes,
#: NOT_SERVING on replicas and while writes fail for lack of disk space
WRITE_HEALTH = SERVICE_NAME + "/writes"
WRITE_RETRY_S = 0.5
DEFAULT_MAX_MESSAGE_MB = 256
DEFAULT_MAX_BATCH = 1 << 20
DEFAULT_MAX_FANOUT = 10_000
NODE_IDS_CHUNK = 1 << 20
#: bytes per chunk of a Topology answer unless the request asks for fewer
TOPOLOGY_CHUNK_BYTES = 4 << 20
LATENCY_BUCKETS = (.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30)

__all__ = ["PartitionServer", "DurablePartition", "Limits", "apply_record", "SERVICE_NAME"]


# ----------------------------------------------------------------------------- errors

# Exceptions become status codes by the one table graphplat.errors.STATUS_TABLE (graphplat.rpc.status_of).


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

    def answer(self, count: int, what: str) -> None:
        """RESOURCE_EXHAUSTED when an answer of ``count`` sampled edges (16 bytes each)
        would exceed the message limit; checked before anything is allocated."""
        if 16 * count > self.max_message_bytes:
            raise RpcAbort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                           f"{what} could return {count} edges ({16 * count >> 20} MiB), more than "
                           f"this server's --max-message-mb {self.max_message_bytes >> 20}; ask "
                           "for fewer seeds or a smaller fanout", "ValueError")

    def fanout(self, fanout: int) -> None:
        if fanout > self.max_fanout:
            raise RpcAbort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                           f"fanout {fanout} exceeds this server's --max-fanout {self.max_fanout} "
                           f"(use fanout -1 / strategy 'full' for whole neighborhoods)", "ValueError")


class Metrics(ServiceMetrics):
    """Prometheus metrics of one server, in their own registry."""

    def __init__(self):
        from prometheus_client import Counter, Gauge

        super().__init__("graphplat", LATENCY_BUCKETS, count_errors=True)
        self.sampled_edges = Counter("graphplat_sampled_edges", "Edges returned by SampleNeighbors",
                                     registry=self.registry)
        self.log_seq = Gauge("graphplat_write_log_seq", "Last write-log record applied",
                             registry=self.registry)
        self.nodes = Gauge("graphplat_partition_nodes", "Nodes held by this partition", ["ntype"],
                           registry=self.registry)
        self.edges = Gauge("graphplat_partition_edges", "Edges owned by this partition", ["etype"],
                           registry=self.registry)

    def update_sizes(self, graph: PartitionGraph, seq: int) -> None:
        self.log_seq.set(seq)
        for nt in graph.schema.node_types:
            self.nodes.labels(nt.name).set(graph.num_nodes(nt.name))
        for et in graph.schema.edge_types:
            self.edges.labels(et.canonical_str).set(graph.num_edges(et.canonical))


# ----------------------------------------------------------------------------- servicer

# Readiness check (``self._ready()``, passed to the handler as ``state``), metrics and
# exception -> status mapping around a handler; generators are server-streaming handlers.
_rpc = _stream_rpc = rpc_method(log, metrics_attr="_metrics", pass_ready=True)


class GraphPartitionServicer(pb_grpc.GraphPartitionServicer):
    """The GraphPartition service over a :class:`DurablePartition` (set once loaded)."""

    def __init__(self, limits: Limits, metrics: Metrics, streams: Optional[StreamGuard] = None,
                 peers: Optional[Peers] = None):
        self.limits = limits
        self.streams = streams or StreamGuard(4)
        # endpoints other partitions own are checked with their servers (refused without)
        self.peers = peers or Peers(None, -1)
        self._metrics = metrics
        self.state: Optional[DurablePartition] = None
        self.draining = False
        self._ids_lock = threading.Lock()
        self._id_dicts = None  # ntype -> IdDictionary, loaded by _dictionary

    #: Name of the shared-memory segment the partition is published in ("" when none).
    shm_segment = ""
    #: TCP port and id of the bulk carrier (graphplat.rpc.bulk) on this host (0, "" when none).
    bulk_port = 0
    bulk_id = ""

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
            role="replica" if state.replica else "primary", shm_segment=self.shm_segment,
            bulk_port=self.bulk_port, bulk_id=self.bulk_id, topology_seq=state.topology_seq,
            topology_servable=shared.publishable(g))
        if request.include_schema:
            resp.schema_yaml = state.schema.to_yaml()
        if request.include_book:
            resp.partition_book.CopyFrom(codec.book_to_msg(state.book))
        return resp

    # ---- string-id dictionaries (graphplat.storage.id_dictionary)
    def _dictionary(self, state: DurablePartition, ntype: str):
        """The dictionary of string-id type ``ntype``, loaded on first use: writable on the
        authority (partition 0's primary, the one writer of ``ids/``), else re-read."""
        nt = state.schema.node_type(ntype)
        if nt.id_type != "string":
            raise ValueError(f"node type {nt.name!r} has int64 ids, no string dictionary")
        with self._ids_lock:
            if self._id_dicts is None:
                authority = state.partition == 0 and not state.replica
                self._id_dicts = load_id_dictionaries(state.store_dir, state.schema, writable=authority)
            return self._id_dicts[nt.name]

    @_stream_rpc
    def IdStrings(self, state, request, context):
        d = self._dictionary(state, request.ntype)
        with self._ids_lock:
            d.refresh()  # strings the authority added since (replicas, other partitions)
            start = min(max(0, int(request.start)), len(d))
            table = d.strings(start)
        # pieces far below any message limit a client may set (at least 1 MiB)
        bounds = chunk_bounds(table, min(1 << 20, self.limits.max_message_bytes) // 4)
        with self.streams.enter(context):
            for a, b in zip(bounds[:-1], bounds[1:]):
                yield pb.IdStringsChunk(start=start + a, strings=table[a:b].tolist())

    @_rpc
    def AddIdStrings(self, state, request, context):
        if state.replica:
            raise ReadOnlyReplica(f"this server is a read replica of partition {state.partition}; "
                                  "string ids are added by partition 0's primary")
        if state.partition != 0:
            raise ValueError(f"this server holds partition {state.partition}; string ids are added "
                             "by partition 0's primary, the dictionaries' one authority")
        self.limits.batch(len(request.strings), "strings")
        d = self._dictionary(state, request.ntype)
        with self._ids_lock:  # one writer: concurrent adds of a string get one id
            ids = d.get_or_add(list(request.strings))
        return pb.AddIdStringsResponse(ids=codec.to_array(ids), seq=state.applied_seq)

    # ---- reads
    def _sample(self, state, request):
        """The NeighborSample a SampleNeighborsRequest asks for (limits checked first)."""
        key = self._etype(state, request.etype)
        seeds = self._ids(request.seeds, "seeds")
        positions = None
        if request.HasField("positions"):
            positions = self._ids(request.positions, "positions")
        self.limits.fanout(int(request.fanout))
        self._check_answer(state, key, seeds, int(request.fanout), request)
        s = state.graph.sample_neighbors(
            key, seeds, int(request.fanout), strategy=request.strategy or "uniform",
            replace=request.replace, direction=request.direction or "in", seed=int(request.seed),
            hop=int(request.hop), positions=positions)
        self._metrics.sampled_edges.inc(len(s.neighbors))
        return s

    @_rpc
    def SampleNeighbors(self, state, request, context):
        s = self._sample(state, request)
        response = pb.SampleNeighborsResponse()
        codec.fill_array(response.counts, s.counts)
        codec.fill_array(response.neighbors, s.neighbors)
        codec.fill_array(response.eids, s.eids)
        return response

    def _check_answer(self, state, key, seeds, fanout: int, request) -> None:
        """Refuse (RESOURCE_EXHAUSTED) a sampling request whose answer would exceed the
        message limit, before sampling allocates it: seeds x fanout when that fits, else
        the exact bound from the seeds' degrees."""
        if 0 < fanout and 16 * len(seeds) * fanout <= self.limits.max_message_bytes:
            return
        deg = state.graph.degrees(key, seeds, request.direction or "in")
        if fanout <= 0:
            count = int(deg.sum())
        elif request.replace:
            count = int(np.count_nonzero(deg)) * fanout
        else:
            count = int(np.minimum(deg, fanout).sum())
        self.limits.answer(count, "this sampling request")

    @_rpc
    def NodeFeatures(self, state, request, context):
        ids = self._ids(request.ids, "ids")
        names = None if request.all_names else list(request.names)
        return self._features_response(state.graph.node_features(request.ntype, ids, names))

    @_rpc
    def EdgeFeatures(self, state, request, context):
        key = self._etype(state, request.etype)
        eids = self._ids(request.eids, "eids")
        names = None if request.all_names else list(request.names)
        return self._features_response(state.graph.edge_features(key, eids, names))

    @staticmethod
    def _features_response(arrays) -> pb.FeaturesResponse:
        response = pb.FeaturesResponse()
        codec.fill_named(response.features, arrays)
        return response

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
        with self.streams.enter(context):
            for start in range(0, max(len(ids), 1), chunk):
                yield pb.ArrayResponse(array=codec.to_array(ids[start:start + chunk]))

    @_stream_rpc
    def Topology(self, state, request, context):
        # The arrays are taken under the write lock, so they are exactly the partition at
        # ``seq``; later writes never touch them (online edges go to the delta, new ids and
        # rows are appended past the views, compaction builds new arrays), so they stream
        # without the lock.
        with state.write_lock:
            graph = state.graph
            if not shared.publishable(graph):
                raise RpcAbort(grpc.StatusCode.FAILED_PRECONDITION,
                               f"partition {state.partition} has online edge writes that are not "
                               "compacted yet; its topology is served again once they are (a "
                               "Compact call, or the server's republish timer)")
            seq = state.applied_seq
            arrays = list(shared.arrays_of(graph, features=False).items())
        chunk = int(request.chunk_bytes) or TOPOLOGY_CHUNK_BYTES
        chunk = max(1 << 12, min(chunk, self.limits.max_message_bytes - (64 << 10)))
        with self.streams.enter(context):
            yield from codec.topology_chunks(seq, state.partition, state.book.num_partitions, arrays, chunk)

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
        result = self._write(state.write_add_edges_in(key, src, dst, weights, request.request_id,
                                                      check_foreign=self.peers.check_nodes))
        self._metrics.update_sizes(state.graph, state.applied_seq)
        return result

    @_rpc
    def AddEdgesOut(self, state, request, context):
        key, src, dst, weights = self._edge_write_args(state, request)
        eids = self._ids(request.eids, "eids")
        return self._write(state.write_add_edges_out(key, src, dst, eids, weights, request.request_id,
                                                     check_foreign=self.peers.check_nodes))

    #: called after a Compact call (the shared-memory Publisher republishes), or None
    after_compact: Optional[Callable[[], None]] = None

    @_rpc
    def Compact(self, state, request, context):
        seq = state.compact()
        if self.after_compact is not None:
            self.after_compact()
        return pb.CompactResponse(seq=seq)


def _answer_buffer(context):
    """Where the call's transport wants a raw answer written: the bulk carrier's recycled
    buffers (graphplat.rpc.bulk), or None for gRPC, which sends bytes."""
    return getattr(context, "answer_buffer", None)


class RawAnswers:
    """The ``graphplat.v1.GraphPartitionRaw`` service (codec.RAW_SERVICE_NAME): the bulk
    reads of GraphPartition with the same requests and names, answered as raw bytes
    (codec.raw_answer) instead of protobuf, so rows and sampled ids are written once, into
    the bytes gRPC sends. Shares the partition, limits and metrics of ``servicer``."""

    METHODS = ("NodeFeatures", "SampleNeighbors")

    def __init__(self, servicer: GraphPartitionServicer):
        self.servicer = servicer
        self._metrics = servicer._metrics

    def _ready(self) -> DurablePartition:
        return self.servicer._ready()

    @_rpc
    def SampleNeighbors(self, state, request, context):
        s = self.servicer._sample(state, request)
        return codec.pack_raw({"counts": s.counts, "neighbors": s.neighbors, "eids": s.eids},
                              _answer_buffer(context))

    @_rpc
    def NodeFeatures(self, state, request, context):
        ids = self.servicer._ids(request.ids, "ids")
        nt = state.schema.node_type(request.ntype)
        names = nt.feature_names if request.all_names else list(request.names)
        wire = wire_dtype_check(request.wire_dtype or None)
        specs = [nt.feature(n) for n in names]  # ValueError naming an unknown feature
        data, views = codec.raw_answer([(f.name, carrier_dtype(f.numpy_dtype, wire), (len(ids),) + tuple(f.shape))
                                        for f in specs], _answer_buffer(context))
        state.graph.node_features(nt.name, ids, names, out=views, wire_dtype=wire)
        return data

    def handlers(self) -> grpc.GenericRpcHandler:
        """The service's generic handler (requests are GraphPartition's protobuf messages)."""
        return grpc.method_handlers_generic_handler(codec.RAW_SERVICE_NAME, {
            "NodeFeatures": grpc.unary_unary_rpc_method_handler(
                self.NodeFeatures, request_deserializer=pb.NodeFeaturesRequest.FromString),
            "SampleNeighbors": grpc.unary_unary_rpc_method_handler(
                self.SampleNeighbors, request_deserializer=pb.SampleNeighborsRequest.FromString)})


def _version() -> str:
    try:
        from graphplat import __version__
        return __version__
    except Exception:  # pragma: no cover
        return "unknown"


# ----------------------------------------------------------------------------- server



class PartitionServer(HostedService):
    """A gRPC server for one partition (see the module docstring).

    ``start()`` binds and starts serving (health NOT_SERVING, calls UNAVAILABLE), then
    ``load()`` loads the partition and flips health to SERVING. ``stop(grace)`` drains.
    """

    SERVICE_NAME = SERVICE_NAME

    def __init__(self, store_dir, partition: int, *, host: str = "127.0.0.1", port: int = 0,
                 replica: bool = False, token: Optional[str] = None,
                 tls: Optional[Tuple[bytes, bytes]] = None, limits: Optional[Limits] = None,
                 metrics_port: Optional[int] = None, metrics_host: str = "127.0.0.1",
                 threads: int = 16, follow_interval: float = 0.5,
                 read_wait: float = DEFAULT_READ_WAIT_S, accept_log_loss: bool = False,
                 idle_timeout: float = DEFAULT_IDLE_TIMEOUT_S,
                 max_concurrent_rpcs: Optional[int] = None, max_streams: Optional[int] = None,
                 stream_deadline: float = DEFAULT_STREAM_DEADLINE_S, shared_memory: bool = True,
                 cluster=None, peer_timeout: float = DEFAULT_PEER_TIMEOUT_S,
                 republish_after: float = DEFAULT_REPUBLISH_AFTER_S, bulk: bool = True,
                 bulk_port: int = 0):
        self.store_dir = Path(store_dir)
        self.shared_memory = shared_memory
        if republish_after < 0:
            raise ValueError("republish_after must be >= 0 seconds")
        self.republish_after = float(republish_after)
        self.publisher: Optional[Publisher] = None  # the shared-memory generations once loaded
        self.partition = int(partition)
        self.host = host
        self.replica = replica
        self.limits = limits or Limits()
        self.follow_interval = follow_interval
        self.accept_log_loss = accept_log_loss
        metrics = Metrics()
        # queued calls beyond this are refused at once instead of waiting out their deadline;
        # streams may hold at most a quarter of the worker threads
        max_rpcs = max_concurrent_rpcs or 4 * threads
        streams = StreamGuard(max_streams or max(1, threads // 4), stream_deadline)
        # the other partitions' servers (cluster file), to check edge endpoints they own
        self.peers = Peers(cluster, self.partition, token=token, timeout_s=peer_timeout)
        self.peers.validate()
        admission = AdmissionCounter(max_rpcs, metrics)
        self._init_grpc(GraphPartitionServicer(self.limits, metrics, streams, self.peers),
                        pb_grpc.add_GraphPartitionServicer_to_server, metrics, host=host, port=port,
                        threads=threads, thread_name_prefix="graphplat-rpc",
                        max_message_bytes=self.limits.max_message_bytes, token=token, tls=tls,
                        metrics_port=metrics_port, metrics_host=metrics_host,
                        interceptors=[admission,
                                      FreshReadInterceptor(self._applied_seq, read_wait)],
                        options=connection_options(idle_timeout), max_concurrent_rpcs=max_rpcs)
        admission.attach(self.server)
        raw = RawAnswers(self.servicer).handlers()
        self.server.add_generic_rpc_handlers((raw,))
        # The raw answers also travel on the bulk carrier (plaintext: not beside TLS), through
        # the same interceptors and handlers; one connection runs one call at a time.
        self.bulk: Optional[BulkListener] = None
        if bulk and tls is None:
            self.bulk = BulkListener(host, bulk_port, [raw], self.interceptors,
                                     [f"/{codec.RAW_SERVICE_NAME}/{m}" for m in RawAnswers.METHODS],
                                     token=token, max_message_bytes=self.limits.max_message_bytes,
                                     max_connections=max_rpcs, idle_timeout_s=idle_timeout)

    def _applied_seq(self) -> Optional[int]:
        state = self.servicer.state
        return None if state is None else state.applied_seq

    @property
    def state(self) -> Optional[DurablePartition]:
        return self.servicer.state

    def start(self) -> "PartitionServer":
        self.server.start()
        if self.bulk is not None:
            self.bulk.start()
            self.servicer.bulk_port = self.bulk.port
            self.servicer.bulk_id = self.bulk.listener_id
        return self

    def load(self) -> DurablePartition:
        """Load the partition (replaying its log), then report SERVING."""
        t0 = time.perf_counter()
        state = DurablePartition(self.store_dir, self.partition, replica=self.replica,
                                 accept_log_loss=self.accept_log_loss)
        self._publish(state)
        self.servicer.state = state
        self.metrics.update_sizes(state.graph, state.applied_seq)
        self._set_health(True)
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
        else:
            self._follower = threading.Thread(target=self._watch_writes, name="graphplat-writes",
                                              daemon=True)
        self._set_write_health(not self.replica)
        self._follower.start()
        return state

    def _set_write_health(self, ok: bool) -> None:
        from grpc_health.v1 import health_pb2

        self.health.set(WRITE_HEALTH, health_pb2.HealthCheckResponse.SERVING if ok
                        else health_pb2.HealthCheckResponse.NOT_SERVING)

    def _watch_writes(self) -> None:
        """Primary: after writes failed for lack of disk space, reopen the store once space
        returns; the health of WRITE_HEALTH follows the write path."""
        healthy = True
        while not self._stop_follow.wait(WRITE_RETRY_S):
            state = self.servicer.state
            if state is None:
                continue
            if state.write_error is not None:
                with state.write_lock:
                    try:
                        if state.write_error is not None:
                            state.recover_writes()
                    except Exception as e:  # noqa: BLE001 - still full: try again later
                        log.debug("partition %d: writes not back yet: %s", self.partition, e)
            ok = state.write_error is None
            if ok != healthy:
                self._set_write_health(ok)
                healthy = ok

    def _publish(self, state: DurablePartition) -> None:
        """Put the partition's arrays in shared memory for clients on this host (unless
        --no-shared-memory), and compact / publish new generations after writes
        (graphplat.storage.republish)."""
        def advertise(name: str) -> None:
            self.servicer.shm_segment = name

        self.publisher = Publisher(state, self.store_dir, advertise, republish_after=self.republish_after,
                                   segments=self.shared_memory)
        self.publisher.start()
        self.servicer.after_compact = self.publisher.compacted

    @property
    def segment(self):
        """The shared-memory segment currently published (graphplat.storage.shared), or None."""
        return None if self.publisher is None else self.publisher.segment

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
        if self.publisher is not None:  # clients on this host go back to gRPC (then fail over)
            self.publisher.stop()
        if self.bulk is not None:  # bulk clients go back to gRPC, which drains
            self.bulk.stop()
        self._drain(grace)
        state = self.servicer.state
        if state is not None:
            with state.write_lock:  # no write is half-logged when the DB closes
                state.close()
        self.peers.close()
        self.metrics.close()
