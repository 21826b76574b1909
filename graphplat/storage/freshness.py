"""Read-your-writes for partition servers.

A client remembers the highest write-log sequence number a write of its was acknowledged
at (per partition) and sends it with every read in the metadata ``graphplat-min-seq``. A
server that has not applied that record yet (a replica lagging its primary) waits for it
up to a bound, then answers UNAVAILABLE, so the client tries the partition's next server.
"""
from __future__ import annotations

import time
from typing import Callable, Optional

import grpc

MIN_SEQ_KEY = "graphplat-min-seq"
DEFAULT_READ_WAIT_S = 0.5


def min_seq_of(metadata) -> int:
    """The ``graphplat-min-seq`` value of call metadata (-1 when absent or malformed)."""
    for k, v in metadata or ():
        if k == MIN_SEQ_KEY:
            try:
                return int(v)
            except (TypeError, ValueError):
                return -1
    return -1


class FreshReadInterceptor(grpc.ServerInterceptor):
    """Holds a call carrying ``graphplat-min-seq`` until ``applied_seq()`` reaches it (at
    most ``wait_s`` seconds or the call's own deadline), else aborts it UNAVAILABLE.

    ``applied_seq`` returns the server's last applied write-log seq, or None while loading.
    """

    def __init__(self, applied_seq: Callable[[], Optional[int]], wait_s: float = DEFAULT_READ_WAIT_S):
        self._applied = applied_seq
        self.wait_s = float(wait_s)

    def _wait(self, need: int, context) -> None:
        remaining = context.time_remaining()
        limit = self.wait_s if remaining is None else min(self.wait_s, max(0.0, remaining - 0.05))
        deadline = time.monotonic() + limit
        delay = 0.002
        while True:
            have = self._applied()
            if have is None or have >= need:  # loading: the handler answers UNAVAILABLE itself
                return
            if time.monotonic() >= deadline:
                context.abort(grpc.StatusCode.UNAVAILABLE,
                              f"this server has applied the write log through seq {have}, behind "
                              f"the client's acknowledged write at seq {need}; try the primary")
            time.sleep(delay)
            delay = min(delay * 2, 0.02)

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        need = min_seq_of(handler_call_details.invocation_metadata)
        if handler is None or need < 0:
            return handler
        kw = dict(request_deserializer=handler.request_deserializer,
                  response_serializer=handler.response_serializer)
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            def unary(request, context):
                self._wait(need, context)
                return inner(request, context)
            return grpc.unary_unary_rpc_method_handler(unary, **kw)
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            def stream(request, context):
                self._wait(need, context)
                yield from inner_stream(request, context)
            return grpc.unary_stream_rpc_method_handler(stream, **kw)
        return handler
