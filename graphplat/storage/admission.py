"""Resource limits of a partition server: connections, concurrent calls and streams.

* Connections: HTTP/2 keepalive (dead peers are dropped) and an idle limit (a connection
  without calls for ``idle_timeout_s`` is closed), so idle clients cannot hold every fd.
* Calls: at most ``max_concurrent_rpcs`` in flight or queued; gRPC answers the rest
  RESOURCE_EXHAUSTED at once (no queueing until the caller's deadline expires), and
  :class:`AdmissionCounter` counts those answers in the server's metrics. Clients back off
  and retry them (``OVERLOAD_MARKERS``). Every overloaded call ends that way: gRPC's
  HTTP/2 "overload protection" is off (see :func:`connection_options`), because it refused
  streams with RST_STREAM REFUSED_STREAM (UNAVAILABLE "Stream removed" at the client,
  before any handler or metric saw the call) during bursts.
* Streams: at most ``max_streams`` server-streaming calls at a time (each holds a worker
  thread while the client reads), and each must finish within ``stream_deadline_s``, so
  clients that stop reading cannot starve the others.
"""
from __future__ import annotations

import logging
import threading
from typing import List, Optional, Tuple

import grpc

log = logging.getLogger("graphplat.server")

DEFAULT_IDLE_TIMEOUT_S = 300.0
DEFAULT_STREAM_DEADLINE_S = 60.0
#: RESOURCE_EXHAUSTED messages that mean "busy, try again" (not "request too large")
OVERLOAD_MARKERS = ("Concurrent RPC limit exceeded", "server is overloaded")


def connection_options(idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
                       max_streams_per_connection: int = 100) -> List[Tuple[str, int]]:
    """gRPC server options: keepalive pings, the idle-connection limit, the per-connection
    stream limit, and pings from clients allowed every 10 s (their keepalive is 30 s).

    The stream limit is HTTP/2's SETTINGS_MAX_CONCURRENT_STREAMS: clients queue streams
    beyond it themselves. ``grpc.http.overload_protection`` (gRPC core's default: on) would
    also count streams whose calls have finished but are not yet freed against it and
    reset new streams with REFUSED_STREAM, which clients see as UNAVAILABLE "Stream
    removed" and the server never counts; off, overload is left to the call limit, which
    answers RESOURCE_EXHAUSTED and is counted (:class:`AdmissionCounter`)."""
    return [("grpc.keepalive_time_ms", 60_000), ("grpc.keepalive_timeout_ms", 20_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.max_connection_idle_ms", int(idle_timeout_s * 1000)),
            ("grpc.max_concurrent_streams", int(max_streams_per_connection)),
            ("grpc.http.overload_protection", 0)]


def is_overload(code: grpc.StatusCode, details: Optional[str]) -> bool:
    """Whether a failed call's status says the server was too busy (retry later)."""
    return code == grpc.StatusCode.RESOURCE_EXHAUSTED and any(m in (details or "")
                                                               for m in OVERLOAD_MARKERS)


class AdmissionCounter(grpc.ServerInterceptor):
    """Records the calls gRPC refuses with RESOURCE_EXHAUSTED (``maximum_concurrent_rpcs``)
    in ``metrics`` (method, code).

    gRPC Python decides "over the limit" from its count of calls in flight, under its
    server lock, just before it runs the interceptors in the same locked section, and
    refuses the call after them. :meth:`attach` gives this interceptor the server, whose
    count it then reads, so it counts exactly the calls gRPC refuses. (A count of its own
    cannot match: gRPC keeps counting a call until its response is sent, after the handler
    returned, and never runs the handler of a call it refused.) A gRPC release without
    those fields gets a warning and no count.
    """

    def __init__(self, limit: int, metrics):
        self.limit = int(limit)
        self._metrics = metrics
        self._server_state = None

    def attach(self, server: grpc.Server) -> None:
        """Read ``server``'s own count of calls in flight (gRPC Python's ``_state``)."""
        state = getattr(server, "_state", None)
        if all(hasattr(state, a) for a in ("active_rpc_count", "maximum_concurrent_rpcs")):
            self._server_state = state
        else:  # pragma: no cover - depends on the gRPC release
            log.warning("this gRPC release hides its count of calls in flight: calls refused "
                        "RESOURCE_EXHAUSTED for overload are not counted in the metrics")

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        state = self._server_state
        if handler is None or state is None:
            return handler
        limit = state.maximum_concurrent_rpcs  # gRPC's own decision (its lock is held here)
        if limit is not None and state.active_rpc_count >= limit:
            method = (handler_call_details.method or "").rsplit("/", 1)[-1] or "unknown"
            self._metrics.record(method, grpc.StatusCode.RESOURCE_EXHAUSTED, 0.0)
        return handler


class StreamGuard:
    """Bounds server-streaming calls: ``enter(context)`` refuses one more than
    ``max_streams`` with RESOURCE_EXHAUSTED and cancels a call still running after
    ``deadline_s``; use as ``with guard.enter(context): yield ...``."""

    def __init__(self, max_streams: int, deadline_s: float = DEFAULT_STREAM_DEADLINE_S):
        if max_streams < 1 or deadline_s <= 0:
            raise ValueError("max_streams must be >= 1 and the stream deadline > 0")
        self.max_streams = int(max_streams)
        self.deadline_s = float(deadline_s)
        self._slots = threading.BoundedSemaphore(self.max_streams)

    def enter(self, context) -> "_StreamSlot":
        from graphplat.rpc import RpcAbort

        if not self._slots.acquire(blocking=False):
            raise RpcAbort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                           f"server is overloaded: {self.max_streams} streaming calls are already "
                           "running; retry later")
        return _StreamSlot(self, context)


class _StreamSlot:
    def __init__(self, guard: StreamGuard, context):
        self._guard = guard
        # a client that stops reading blocks the sending thread; cancelling frees it
        self._timer = threading.Timer(guard.deadline_s, context.cancel)
        self._timer.daemon = True

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()
        self._guard._slots.release()
