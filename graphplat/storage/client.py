"""gRPC client of one partition (all its replicas): the backend RemoteGraph routes to.

:class:`PartitionClient` has the per-partition methods of
:class:`~graphplat.storage.partition_graph.PartitionGraph`, so
:class:`~graphplat.storage.routed.RoutedGraph` uses either without knowing which.

Contract: every call has an overall deadline (``deadline_s``). Reads fail over across
replicas on UNAVAILABLE, DEADLINE_EXCEEDED and overload, with backoff, and see this
client's own acknowledged writes. Writes go only to the first address (the primary) and are
retried with the same ``request_id``, so a retry never applies a write twice. Other errors
are not retried: builtin exception classes are re-raised as such, else
:class:`RequestTooLarge`, :class:`AuthenticationError` or :class:`RemoteError`. When no
server answers, :class:`PartitionUnavailable` names the partition and every address tried.
"""
from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from typing import Dict, List, Optional, Sequence, Tuple

import grpc
import numpy as np

from graphplat.buffers import put_rows
from graphplat.errors import (  # noqa: F401 - AuthenticationError, RequestTooLarge: re-exported
    AuthenticationError,
    PartitionUnavailable,
    RemoteError,
    RequestTooLarge,
    error_from_status,
)
from graphplat.proto import graphplat_pb2 as pb
from graphplat.proto import graphplat_pb2_grpc as pb_grpc
from graphplat.rpc import (
    auth_metadata,
    error_details,
    message_options,
    open_channel,
    read_root_cert,
)
from graphplat.rpc.bulk import BulkChannel, BulkError
from graphplat.schema import GraphSchema
from graphplat.service import NeighborSample, as_ids
from graphplat.storage import codec
from graphplat.storage.admission import is_overload
from graphplat.storage.freshness import MIN_SEQ_KEY
from graphplat.storage.wire_dtype import check as wire_dtype_check
from graphplat.storage.wire_dtype import to_wire

log = logging.getLogger("graphplat.client")

__all__ = ["PartitionClient", "channel_options"]

_RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)




def channel_options(max_message_mb: int = 256) -> List[Tuple[str, int]]:
    """Channel options: message sizes, fast reconnects (so a restarted server is found
    again quickly) and keepalive."""
    return message_options(max_message_mb) + [
        ("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
        ("grpc.max_reconnect_backoff_ms", 1000), ("grpc.keepalive_time_ms", 30_000),
        ("grpc.enable_retries", 0)]


def _error_from(err: grpc.RpcError, partition: int, address: str) -> Exception:
    code, msg, etype = error_details(err)
    return error_from_status(code, msg, etype, service="graph", where=f"partition {partition} ({address})")


def _ids(values, name: str = "ids"):
    return codec.to_array(as_ids(values, name))


class PartitionClient:
    """Client of partition ``partition`` served at ``addresses`` (primary first).

    Args:
        addresses: ``host:port`` of the partition's servers; the first is the primary
            (the only one that takes writes), the others read replicas.
        partition: the partition number (for error messages and checks).
        token: bearer token sent as ``authorization: Bearer <token>``.
        root_cert: PEM bytes (or a path) of the CA that signed the servers' certificates;
            enables TLS.
        server_name: TLS name to verify instead of the address's host (optional).
        deadline_s: overall time budget of one call, all retries included.
        retries: extra attempts after the first (across replicas) before giving up.
        backoff: base delay in seconds of the exponential backoff between rounds.
        max_backoff: cap of one backoff delay.
        max_message_mb: largest message sent or received.
        bulk: send the large raw answers (sampling, feature rows) over a server's bulk
            carrier when it advertises one (:mod:`graphplat.rpc.bulk`; never with TLS),
            falling back to gRPC whenever the carrier fails.
    """

    def __init__(self, addresses: Sequence[str], partition: int, token: Optional[str] = None,
                 root_cert=None, *, server_name: Optional[str] = None, deadline_s: float = 30.0,
                 retries: int = 10, backoff: float = 0.1, max_backoff: float = 2.0,
                 max_message_mb: int = 256, primary_retry_s: float = 1.0, bulk: bool = True):
        addresses = [str(a) for a in addresses]
        if not addresses:
            raise ValueError(f"partition {partition}: at least one server address is needed")
        if deadline_s <= 0 or retries < 0 or backoff < 0:
            raise ValueError("deadline_s must be > 0, retries and backoff >= 0")
        self.addresses = addresses
        self.partition = int(partition)
        self.deadline_s = float(deadline_s)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self._metadata = auth_metadata(token)
        self._token = token
        self._root_cert = read_root_cert(root_cert)
        self._options = channel_options(max_message_mb)
        if server_name:
            self._options.append(("grpc.ssl_target_name_override", server_name))
        self._channels: List[Optional[grpc.Channel]] = [None] * len(addresses)
        self._stubs: List[Optional[pb_grpc.GraphPartitionStub]] = [None] * len(addresses)
        self._lock = threading.Lock()
        self._current = 0
        self._closed = False
        self._no_raw: set = set()  # methods whose raw variant the server lacks (older servers)
        self._raw_methods: Dict[Tuple[int, str], object] = {}
        self._max_message_bytes = int(max_message_mb) << 20
        # replica index -> its bulk carrier (None: it has none); replicas whose carrier
        # failed are asked again after BULK_RETRY_S
        self._bulk_enabled = bool(bulk) and self._root_cert is None
        self._bulk: Dict[int, Optional[BulkChannel]] = {}
        self._bulk_retry_at: Dict[int, float] = {}
        # read-your-writes: highest seq one of our writes was acknowledged at, and when a
        # client reading from a replica tries the primary again
        self.acked_seq = -1
        # ... and the highest seq of those writes that added nodes or edges (a topology
        # replica older than it is stale)
        self.acked_topology_seq = -1
        self.primary_retry_s = float(primary_retry_s)
        self._retry_primary_at = 0.0

    #: edge writes take a request_id the server applies at most once (RoutedGraph.add_edges);
    #: servers log writes durably (compact() and close() exist)
    capabilities = frozenset({"dedupes_writes", "durable"})

    def __repr__(self) -> str:
        return f"PartitionClient(partition={self.partition}, addresses={self.addresses})"

    # ---------------------------------------------------------------- plumbing
    def _stub(self, i: int) -> pb_grpc.GraphPartitionStub:
        with self._lock:
            if self._closed:
                raise ValueError(f"client of partition {self.partition} is closed")
            if self._stubs[i] is None:
                ch = open_channel(self.addresses[i], self._options, self._root_cert)
                self._channels[i] = ch
                self._stubs[i] = pb_grpc.GraphPartitionStub(ch)
            return self._stubs[i]

    def _sleep_backoff(self, round_no: int, deadline: float) -> None:
        delay = min(self.max_backoff, self.backoff * (2 ** max(round_no - 1, 0)))
        delay *= random.uniform(0.5, 1.5)
        time.sleep(max(0.0, min(delay, deadline - time.monotonic())))

    def _raw_method(self, i: int, method: str):
        """The raw-bytes variant of ``method`` on replica ``i`` (codec.RAW_SERVICE_NAME)."""
        self._stub(i)  # opens the channel
        with self._lock:
            key = (i, method)
            if key not in self._raw_methods:
                self._raw_methods[key] = self._channels[i].unary_unary(
                    f"/{codec.RAW_SERVICE_NAME}/{method}", request_serializer=lambda m: m.SerializeToString(),
                    response_deserializer=None)
            return self._raw_methods[key]

    #: seconds before a replica whose bulk carrier failed is tried over it again
    BULK_RETRY_S = 5.0

    def _bulk_channel(self, i: int, timeout: float) -> Optional[BulkChannel]:
        """Replica ``i``'s bulk carrier (learned from its Info once, waiting at most
        ``timeout`` s), or None."""
        with self._lock:
            if i in self._bulk:
                return self._bulk[i]
            if time.monotonic() < self._bulk_retry_at.get(i, 0.0):
                return None
        try:
            info = self._stub(i).Info(pb.InfoRequest(), timeout=timeout, metadata=self._metadata)
        except grpc.RpcError:
            with self._lock:
                self._bulk_retry_at[i] = time.monotonic() + self.BULK_RETRY_S
            return None
        host = self.addresses[i].rsplit(":", 1)[0]
        ch = (BulkChannel(host, info.bulk_port, self._token, listener_id=info.bulk_id)
              if info.bulk_port else None)
        with self._lock:
            if self._closed:
                ch = None
            old = self._bulk.get(i)
            self._bulk[i] = ch
        if old is not None:
            old.close()
        return ch

    def _raw_attempt(self, i: int, method: str, request, timeout: float, metadata, sink=None):
        """One attempt of ``method``'s raw answer on replica ``i``: over its bulk carrier when
        it has one, else (or when the carrier cannot connect or breaks) over gRPC. Server
        statuses raise grpc.RpcError (BulkError is one) for :meth:`_call` to handle; a bulk
        call that times out is DEADLINE_EXCEEDED, like a gRPC one. With ``sink``, returns
        ``sink(stream)`` of the answer read from the carrier (or from gRPC's bytes through a
        codec.BytesStream) instead of the bytes."""
        ch = self._bulk_channel(i, timeout) if self._bulk_enabled else None
        if ch is not None:
            try:
                return ch.call(f"/{codec.RAW_SERVICE_NAME}/{method}", request.SerializeToString(), metadata,
                               timeout=timeout, max_answer_bytes=self._max_message_bytes, sink=sink)
            except TimeoutError:
                raise BulkError(grpc.StatusCode.DEADLINE_EXCEEDED, "bulk call timed out") from None
            except OSError as e:  # refused, reset, closed: the server may still answer gRPC
                log.debug("partition %d: bulk call %s to %s failed (%s); using gRPC", self.partition,
                          method, self.addresses[i], e)
                with self._lock:
                    dead = self._bulk.pop(i, None)
                    self._bulk_retry_at[i] = time.monotonic() + self.BULK_RETRY_S
                if dead is not None:
                    dead.close()
        data = self._raw_method(i, method)(request, timeout=timeout, metadata=metadata)
        return data if sink is None else sink(codec.BytesStream(data))

    def _call_raw(self, method: str, request, sink=None):
        """``method``'s answer as raw bytes decoded by codec.unpack_raw (with ``sink``: what
        ``sink`` returns after reading it, see :meth:`_raw_attempt`), or None when the
        server predates raw answers (then the caller asks the protobuf method). Over the
        bulk carrier when the server has one (see :meth:`_raw_attempt`), else gRPC."""
        if method in self._no_raw:
            return None
        try:
            got = self._call(method, request, raw=True, sink=sink)
            return got if sink is not None else codec.unpack_raw(got)
        except RemoteError as e:
            if e.code != grpc.StatusCode.UNIMPLEMENTED:
                raise
            self._no_raw.add(method)
            return None

    def _read_start(self) -> int:
        """Index of the server a read tries first: the one that answered last, or the
        primary again once ``primary_retry_s`` passed since the client left it."""
        if self._current != 0 and time.monotonic() >= self._retry_primary_at:
            self._retry_primary_at = time.monotonic() + self.primary_retry_s
            return 0
        return self._current

    def _call(self, method: str, request, *, write: bool = False, stream: bool = False,
              raw: bool = False, deadline_s: Optional[float] = None, sink=None):
        """Run one logical call with deadline (the client's, or ``deadline_s`` when shorter),
        retries, failover (reads) and error mapping."""
        t0 = time.monotonic()
        deadline = t0 + (self.deadline_s if deadline_s is None else min(deadline_s, self.deadline_s))
        n = 1 if write else len(self.addresses)
        start = 0 if write else self._read_start()
        metadata = self._metadata
        if not write and self.acked_seq >= 0:
            metadata = metadata + ((MIN_SEQ_KEY, str(self.acked_seq)),)
        errors: List[Tuple[str, str]] = []
        attempt = 0
        maybe_applied = False
        while True:
            remaining = deadline - time.monotonic()
            if attempt > self.retries or remaining <= 0:
                break
            if attempt and attempt % n == 0:
                self._sleep_backoff(attempt // n, deadline)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
            i = (start + attempt) % n
            addr = self.addresses[i]
            untried = n - attempt % n  # replicas left in this round, this one included
            timeout = remaining / untried if untried > 1 else remaining
            attempt += 1
            try:
                if raw:
                    result = self._raw_attempt(i, method, request, timeout, metadata, sink)
                elif stream:
                    chunks = getattr(self._stub(i), method)(request, timeout=timeout, metadata=metadata)
                    # ``sink`` consumes the stream as it arrives (and starts over on a retry)
                    result = sink(chunks) if sink is not None else list(chunks)
                else:
                    result = getattr(self._stub(i), method)(request, timeout=timeout, metadata=metadata)
            except grpc.RpcError as err:
                code = err.code()
                if is_overload(code, err.details()):  # refused before any work: back off, retry
                    errors.append((addr, f"{code.name}: {err.details()}"))
                    log.debug("partition %d: %s on %s: server overloaded, retrying", self.partition,
                              method, addr)
                    self._sleep_backoff(1 + attempt // n, deadline)
                    continue
                if code in _RETRYABLE:
                    errors.append((addr, f"{code.name}: {err.details()}"))
                    refused = bool(error_details(err)[2])  # the handler said no: not applied
                    if write and not refused and (code == grpc.StatusCode.DEADLINE_EXCEEDED
                                                  or "failed to connect" not in (err.details() or "").lower()):
                        maybe_applied = True  # the request may have reached the server
                    log.debug("partition %d: %s on %s failed (%s), retrying", self.partition,
                              method, addr, code.name)
                    continue
                raise _error_from(err, self.partition, addr) from None
            if write:
                with self._lock:
                    self.acked_seq = max(self.acked_seq, int(result.seq))
                i = 0  # the primary answered: read from it again
            if i != self._current:
                self._current = i
                self._retry_primary_at = time.monotonic() + self.primary_retry_s
                log.info("partition %d: now reading from %s", self.partition, addr)
            return result
        raise PartitionUnavailable(self._unavailable_message(method, errors, write, maybe_applied,
                                                             time.monotonic() - t0),
                                   self.partition, self.addresses[:n], errors)

    def _unavailable_message(self, method: str, errors: List[Tuple[str, str]], write: bool,
                             maybe_applied: bool, elapsed: float) -> str:
        last: Dict[str, str] = {}
        count: Dict[str, int] = {}
        for a, e in errors:
            last[a] = e
            count[a] = count.get(a, 0) + 1
        tried = "; ".join(f"{a} ({count[a]}x, last error {last[a]})" for a in last) or "none"
        if write:
            msg = (f"partition {self.partition} is unavailable: its primary {self.addresses[0]} "
                   f"did not answer {method} ({len(errors)} attempts in {elapsed:.1f}s, deadline "
                   f"{self.deadline_s:g}s; writes go only to the primary): {tried}")
            if maybe_applied:
                msg += "; the write may or may not have been applied"
            return msg
        return (f"partition {self.partition} is unavailable: no replica answered {method} "
                f"({len(errors)} attempts in {elapsed:.1f}s, deadline {self.deadline_s:g}s); "
                f"tried {tried}")

    def close(self) -> None:
        """Close every channel (idempotent)."""
        with self._lock:
            self._closed = True
            for ch in self._channels:
                if ch is not None:
                    ch.close()
            self._channels = [None] * len(self.addresses)
            self._stubs = [None] * len(self.addresses)
            self._raw_methods = {}
            bulk, self._bulk = self._bulk, {}
        for ch in bulk.values():
            if ch is not None:
                ch.close()

    # ---------------------------------------------------------------- info
    def info(self, include_schema: bool = False, include_book: bool = False, *,
             deadline_s: Optional[float] = None) -> pb.InfoResponse:
        """The server's Info (counts, role; schema YAML and partition book on request),
        within ``deadline_s`` when given and shorter than the client's deadline."""
        return self._call("Info", pb.InfoRequest(include_schema=include_schema, include_book=include_book),
                          deadline_s=deadline_s)

    # ---------------------------------------------------------------- string ids (partition 0)
    def id_strings(self, ntype: str, start: int = 0) -> List[str]:
        """The strings of node ids ``start``.. of string-id type ``ntype`` (streamed in
        chunks well below the message limit; any server of the partition answers)."""
        chunks = self._call("IdStrings", pb.IdStringsRequest(ntype=ntype, start=int(start)), stream=True)
        out: List[str] = []
        for c in chunks:
            if c.start != start + len(out):
                raise RuntimeError(f"partition {self.partition}: IdStrings chunk at {c.start}, "
                                   f"expected {start + len(out)}")
            out.extend(c.strings)
        return out

    def add_id_strings(self, ntype: str, strings: Sequence[str]) -> np.ndarray:
        """int64 ids of ``strings``, new ones given the next ids by the primary (durable
        before it answers; repeating the call gives the same ids)."""
        resp = self._call("AddIdStrings", pb.AddIdStringsRequest(ntype=ntype, strings=list(strings)),
                          write=True)
        return codec.from_array(resp.ids, name="ids")

    def fetch_schema(self) -> GraphSchema:
        return GraphSchema.from_yaml(self.info(include_schema=True).schema_yaml)

    def num_nodes(self, ntype: str) -> int:
        for c in self.info().num_nodes:
            if c.key == ntype:
                return int(c.value)
        raise ValueError(f"partition {self.partition} has no node type {ntype!r}")

    def num_edges(self, etype) -> int:
        key = ":".join(etype) if not isinstance(etype, str) else etype
        for c in self.info().num_edges:
            if c.key == key:
                return int(c.value)
        raise ValueError(f"partition {self.partition} has no edge type {key!r}")

    def compact(self) -> int:
        """Fold the primary's write log into its blobs; returns the last folded seq."""
        return int(self._call("Compact", pb.CompactRequest(), write=True).seq)

    # ---------------------------------------------------------------- reads
    def sample_neighbors(self, etype, seeds, fanout: int, *, strategy: str = "uniform",
                         replace: bool = False, direction: str = "in", seed: int = 0,
                         hop: int = 0, positions: Optional[np.ndarray] = None) -> NeighborSample:
        for name, v in (("seed", seed), ("hop", hop)):
            if not 0 <= int(v) < 2 ** 64:
                raise TypeError(f"{name} must be an unsigned 64-bit integer, got {v}")
        seeds = as_ids(seeds, "seeds")
        req = pb.SampleNeighborsRequest(
            etype=codec.etype_msg(etype), seeds=codec.to_array(seeds), fanout=int(fanout),
            strategy=strategy, replace=bool(replace), direction=direction, seed=int(seed), hop=int(hop))
        if positions is not None:
            req.positions.CopyFrom(_ids(positions, "positions"))
        raw = self._call_raw("SampleNeighbors", req)
        if raw is not None:
            got = [raw.get(k) for k in ("counts", "neighbors", "eids")]
        else:
            r = self._call("SampleNeighbors", req)
            got = [codec.from_array(r.counts, name="counts"), codec.from_array(r.neighbors, name="neighbors"),
                   codec.from_array(r.eids, name="eids")]
        return self._checked_sample(len(seeds), *got)

    def _checked_sample(self, num_seeds: int, counts, neighbors, eids) -> NeighborSample:
        """A server's sampling answer as a NeighborSample (read-only arrays over the answer),
        after checking that it is one (ValueError naming the partition otherwise)."""
        arrays = (counts, neighbors, eids)
        if (any(a is None or a.dtype != np.int64 or a.ndim != 1 for a in arrays)
                or len(counts) != num_seeds or len(neighbors) != len(eids)
                or int(counts.sum()) != len(neighbors) or (num_seeds and counts.min() < 0)):
            raise ValueError(f"partition {self.partition}: malformed sampling answer for {num_seeds} seeds")
        return NeighborSample(counts, neighbors, eids)

    #: Largest request a feature fetch sends (RoutedGraph splits bigger ones): a quarter of a
    #: server's default --max-batch, and answers of at most a quarter of the default
    #: message limit, so defaults on both sides always fit.
    MAX_REQUEST_IDS = 1 << 18
    MAX_RESPONSE_BYTES = 64 << 20

    def max_rows_per_call(self, row_bytes: int) -> int:
        """Rows of ``row_bytes`` bytes one feature request may ask for."""
        return max(1, min(self.MAX_REQUEST_IDS, self.MAX_RESPONSE_BYTES // max(1, int(row_bytes))))

    def node_features(self, ntype: str, ids, names: Optional[Sequence[str]] = None, *,
                      out: Optional[Dict[str, np.ndarray]] = None, out_rows: Optional[np.ndarray] = None,
                      wire_dtype: Optional[str] = None) -> Dict[str, np.ndarray]:
        """Feature rows of ``ids`` (read-only arrays over the answer's bytes); float32 ones
        in ``wire_dtype`` when given (graphplat.storage.wire_dtype). With ``out`` (arrays
        of every asked feature, rows of its dtype and shape) the rows go to ``out[name]``
        (at rows ``out_rows`` when given, else ``out`` has one row per id), read off the
        bulk carrier straight into place; returns ``out``."""
        ids = as_ids(ids, "ids")
        req = pb.NodeFeaturesRequest(ntype=ntype, ids=codec.to_array(ids),
                                     names=list(names or ()), all_names=names is None,
                                     wire_dtype=wire_dtype_check(wire_dtype) or "")
        if out is not None:
            rows = np.arange(len(ids), dtype=np.int64) if out_rows is None else as_ids(out_rows, "out_rows")
            if len(rows) != len(ids):
                raise ValueError(f"out_rows has {len(rows)} entries for {len(ids)} ids")
            if names is not None:
                out = {n: out[n] for n in names}
            # Rows are read off the bulk carrier straight into place, in wire_dtype too (a
            # server from before wire_dtype answers float32: rounded here, like below).
            convert = (lambda arr: to_wire(arr, wire_dtype)) if wire_dtype else None
            if self._call_raw("NodeFeatures", req,
                              sink=lambda stream: codec.read_raw_rows(stream, out, rows, convert) or True):
                return out
            for name, arr in self.node_features(ntype, ids, names, wire_dtype=wire_dtype).items():
                if name in out:
                    put_rows(arr, rows, out[name])
            return out
        got = self._call_raw("NodeFeatures", req)
        if got is None:
            got = codec.from_named(self._call("NodeFeatures", req).features)
        if wire_dtype:  # a server from before wire_dtype answers float32
            got = {k: to_wire(v, wire_dtype) for k, v in got.items()}
        return got

    def edge_features(self, etype, eids, names: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
        req = pb.EdgeFeaturesRequest(etype=codec.etype_msg(etype), eids=_ids(eids, "eids"),
                                     names=list(names or ()), all_names=names is None)
        return codec.from_named(self._call("EdgeFeatures", req).features)

    def degrees(self, etype, ids, direction: str = "in") -> np.ndarray:
        req = pb.DegreesRequest(etype=codec.etype_msg(etype), ids=_ids(ids, "ids"),
                                direction=direction)
        return codec.from_array(self._call("Degrees", req).array, name="degrees")

    def lookup(self, ntype: str, ids) -> np.ndarray:
        req = pb.LookupRequest(ntype=ntype, ids=_ids(ids, "ids"))
        return codec.from_array(self._call("Lookup", req).array, name="lookup")

    def node_ids(self, ntype: str) -> np.ndarray:
        chunks = self._call("NodeIds", pb.NodeIdsRequest(ntype=ntype), stream=True)
        arrays = [codec.from_array(c.array, name="node ids") for c in chunks]
        return np.concatenate(arrays) if arrays else np.zeros(0, np.int64)

    def topology(self, chunk_bytes: int = 0, max_bytes: Optional[int] = None):
        """A copy of the partition's topology for a topology replica: ``(first chunk,
        arrays by key)`` (see :func:`graphplat.storage.codec.read_topology`; the chunk's
        ``seq`` is the write-log seq the arrays include). RemoteError (FAILED_PRECONDITION)
        while the partition has online edges not compacted yet; ValueError when the copy
        would need more than ``max_bytes``."""
        return self._call("Topology", pb.TopologyRequest(chunk_bytes=int(chunk_bytes)), stream=True,
                          sink=lambda chunks: codec.read_topology(chunks, max_bytes))

    def _topology_written(self, seq: int) -> None:
        with self._lock:
            self.acked_topology_seq = max(self.acked_topology_seq, int(seq))

    def has_edges(self, etype, src, dst) -> np.ndarray:
        req = pb.HasEdgesRequest(etype=codec.etype_msg(etype), src=_ids(src, "src"),
                                 dst=_ids(dst, "dst"))
        return codec.from_array(self._call("HasEdges", req).array, name="has_edges")

    # ---------------------------------------------------------------- writes
    @staticmethod
    def _request_id() -> str:
        return uuid.uuid4().hex

    def add_nodes(self, ntype: str, ids, features: Optional[Dict[str, np.ndarray]] = None) -> None:
        req = pb.AddNodesRequest(request_id=self._request_id(), ntype=ntype,
                                 ids=_ids(ids, "ids"),
                                 features=codec.to_named(features or {}))
        self._topology_written(self._call("AddNodes", req, write=True).seq)


    def add_edges_in(self, etype, src, dst, weights: Optional[np.ndarray] = None,
                     request_id: str = "") -> np.ndarray:
        req = pb.AddEdgesInRequest(request_id=request_id or self._request_id(), etype=codec.etype_msg(etype),
                                   src=_ids(src, "src"), dst=_ids(dst, "dst"))
        if weights is not None:
            req.weights.CopyFrom(codec.to_array(weights, np.float32))
        resp = self._call("AddEdgesIn", req, write=True)
        self._topology_written(resp.seq)
        return codec.from_array(resp.eids, name="eids")

    def add_edges_out(self, etype, src, dst, eids, weights: Optional[np.ndarray] = None,
                      request_id: str = "") -> None:
        req = pb.AddEdgesOutRequest(request_id=request_id or self._request_id(), etype=codec.etype_msg(etype),
                                    src=_ids(src, "src"), dst=_ids(dst, "dst"),
                                    eids=_ids(eids, "eids"))
        if weights is not None:
            req.weights.CopyFrom(codec.to_array(weights, np.float32))
        self._topology_written(self._call("AddEdgesOut", req, write=True).seq)

    def update_features(self, ntype: str, ids, features: Dict[str, np.ndarray]) -> None:
        req = pb.UpdateFeaturesRequest(request_id=self._request_id(), ntype=ntype,
                                       ids=_ids(ids, "ids"),
                                       features=codec.to_named(features))
        self._call("UpdateFeatures", req, write=True)
