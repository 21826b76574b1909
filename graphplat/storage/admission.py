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

import threading
from typing import List, Optional, Tuple

import grpc

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
    refuses the call after them. Once :meth:`attach` gave it the server, this interceptor
    reads that same count, so it counts exactly the calls gRPC refuses. Without it (or if
    a gRPC release renames those fields) it mirrors the count itself: the calls' handlers
    return a little before gRPC stops counting them, so a few refusals may go uncounted.
    """

    def __init__(self, limit: int, metrics):
        self.limit = int(limit)
        self._metrics = metrics
        self._lock = threading.Lock()
        self.active = 0
        self._server_state = None

    def attach(self, server: grpc.Server) -> None:
        """Read ``server``'s own count of calls in flight (gRPC Python's ``_state``)."""
        state = getattr(server, "_state", None)
        if all(hasattr(state, a) for a in ("active_rpc_count", "maximum_concurrent_rpcs")):
            self._server_state = state

    def _done(self) -> None:
        with self._lock:
            self.active -= 1

    def _refuses(self) -> bool:
        state = self._server_state
        if state is not None:  # gRPC's own decision (its lock is held by this thread)
            limit = state.maximum_concurrent_rpcs
            return limit is not None and state.active_rpc_count >= limit
        with self._lock:
            if self.active >= self.limit:
                return True
            self.active += 1
            return False

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        if self._refuses():
            method = (handler_call_details.method or "").rsplit("/", 1)[-1] or "unknown"
            self._metrics.record(method, grpc.StatusCode.RESOURCE_EXHAUSTED, 0.0)
            return handler
        return handler if self._server_state is not None else _on_finish(handler, self._done)


def _on_finish(handler, done):
    """``handler`` calling ``done()`` once its behavior returned or raised."""
    kw = dict(request_deserializer=handler.request_deserializer,
              response_serializer=handler.response_serializer)
    if handler.unary_unary is not None:
        inner = handler.unary_unary

        def unary(request, context):
            try:
                return inner(request, context)
            finally:
                done()
        return grpc.unary_unary_rpc_method_handler(unary, **kw)
    if handler.unary_stream is not None:
        inner_stream = handler.unary_stream

        def stream(request, context):
            try:
                yield from inner_stream(request, context)
            finally:
                done()
        return grpc.unary_stream_rpc_method_handler(stream, **kw)
    done()  # client-streaming handlers are not counted (graphplat has none)
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
