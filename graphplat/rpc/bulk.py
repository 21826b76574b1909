"""A second carrier for large gRPC answers: the same methods over plain framed TCP.

Python gRPC costs about 0.3 ms of client CPU and 0.4 ms of server CPU per MB of answer on
this project's reference machine: the answer is copied from the handler's bytes into gRPC
core's slices, framed into HTTP/2, and on the client copied from slices into a new bytes
object before the caller reads it. A batch of a 3-hop loader moves tens of MB of feature
rows, so those copies were a third of a co-located trainer's CPU. The bulk carrier sends the
handler's answer bytes with one ``sendall`` and receives them with ``recv_into`` a buffer
the caller then views: the kernel's copies only. A caller that knows where the answer's
rows belong (a feature fetch filling rows of a batch) reads them there itself instead
(``call(..., sink=)`` with an :class:`AnswerStream`), and even the view's copy is gone.

It is not a second RPC layer. A :class:`BulkListener` runs the server's own gRPC method
handlers (looked up in the server's generic handlers) behind the server's own interceptors
(bearer token, malformed requests, read-your-writes waits, ...), with a small context
object in place of gRPC's, so every check, metric and status mapping is the gRPC one; the
client sends the protobuf request bytes and call metadata it would send over gRPC and gets
the status code, details and ``graphplat-error`` class back. A client uses it only for the
methods it chooses (large raw answers), only when the server advertised a bulk port, never
with TLS (the carrier is plaintext), and falls back to gRPC (with its retries and failover)
whenever the carrier fails.

Wire format (little endian). A connection starts with ``HELLO`` = ``b"GPBULK1\\0"``, u32
token length, u32 listener-id length, the token, the listener id; the server checks the
token (constant time) before it reads any request, and the id (a random string it
advertises beside its port, so a client whose server restarted never talks to another
process that took the old port), and answers a response frame with an empty body (status
0; UNAUTHENTICATED or FAILED_PRECONDITION and the connection closes). Then any number of
calls, one at a time:

* request: ``b"GPRQ"``, u32 method length, u32 metadata length, u64 body length, the method
  path (``/package.Service/Method``), the metadata as JSON ``[[key, value], ...]`` (a
  ``graphplat-timeout`` entry carries the caller's remaining deadline in seconds), the body;
* response: ``b"GPRS"``, u32 status code (gRPC's numbering), u32 details length, u32 error
  class length, u64 body length, then those three.

A frame that breaks these rules, or whose body exceeds the server's message limit, gets an
INVALID_ARGUMENT or RESOURCE_EXHAUSTED response and the connection is closed (the rest of
the frame is never read).
"""
from __future__ import annotations

import hmac
import json
import logging
import os
import socket
import struct
import threading
import time
import uuid
import weakref
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import grpc
import numpy as np

from graphplat import _core
from graphplat.buffers import BufferPool
from graphplat.rpc import RpcAbort

log = logging.getLogger("graphplat.rpc.bulk")

__all__ = ["AnswerStream", "BulkListener", "BulkChannel", "BulkError", "TIMEOUT_KEY"]

HELLO_MAGIC = b"GPBULK1\0"
_HELLO = struct.Struct("<8sII")
MAX_LISTENER_ID = 64
_REQUEST = struct.Struct("<4sIIQ")
_RESPONSE = struct.Struct("<4sIIIQ")
REQUEST_MAGIC = b"GPRQ"
RESPONSE_MAGIC = b"GPRS"
MAX_TOKEN = 4096
MAX_METHOD = 256
MAX_METADATA = 64 << 10
#: metadata key of the caller's remaining deadline in seconds (gRPC sends it in its headers)
TIMEOUT_KEY = "graphplat-timeout"
_CODES = {c.value[0]: c for c in grpc.StatusCode}
_RECV_CHUNK = 4 << 20


class BulkError(grpc.RpcError):
    """A call the server answered with a status other than OK, shaped like the
    grpc.RpcError a gRPC call raises (``code()``, ``details()``, ``trailing_metadata()``
    with the ``graphplat-error`` class), so callers handle both alike. Like gRPC's own
    errors it is mapped to graphplat's exceptions by the client (errors.error_from_status),
    never shown to users."""

    def __init__(self, code: grpc.StatusCode, details: str, error_type: str = ""):
        super().__init__(f"{code.name}: {details}")
        self._code = code
        self._details = details
        self.error_type = error_type

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self):
        return (("graphplat-error", self.error_type),) if self.error_type else ()


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    """Exactly ``n`` bytes from ``sock`` (ConnectionError when it closes first)."""
    buf = bytearray(n)
    _recv_into(sock, memoryview(buf))
    return bytes(buf)


def _recv_into(sock: socket.socket, view: memoryview) -> None:
    got, n = 0, len(view)
    while got < n:
        k = sock.recv_into(view[got:], min(n - got, _RECV_CHUNK))
        if k == 0:
            raise ConnectionError("the bulk connection closed mid-frame")
        got += k


class AnswerStream:
    """The body of one bulk answer, read in order as it arrives: :attr:`remaining` bytes on
    a connection. What a ``sink`` passed to :meth:`BulkChannel.call` reads from; reading
    past the body raises ConnectionError (the caller's parsing is wrong, not the wire)."""

    def __init__(self, sock: socket.socket, size: int):
        self._sock = sock
        self.remaining = int(size)

    def _take(self, n: int) -> None:
        if n < 0 or n > self.remaining:
            raise ValueError(f"bulk answer: reading {n} bytes with {self.remaining} left in the answer")
        self.remaining -= n

    def read(self, n: int) -> bytes:
        """The next ``n`` bytes."""
        self._take(n)
        return _recv_exact(self._sock, n)

    def skip(self, n: int) -> None:
        """Drops the next ``n`` bytes."""
        self._take(n)
        left = n
        while left:
            left -= len(_recv_exact(self._sock, min(left, _RECV_CHUNK)))

    def read_rows(self, out: np.ndarray, rows: np.ndarray) -> None:
        """The next ``len(rows)`` rows of ``out``'s row size, straight into ``out[rows]``
        (one kernel copy, GIL-free: see ``_core.recv_rows``)."""
        row_bytes = out.nbytes // len(out) if len(out) else 0
        self._take(len(rows) * row_bytes)
        _core.recv_rows(self._sock.fileno(), out, rows, timeout=self._sock.gettimeout())


def _recv_growing(sock: socket.socket, n: int) -> bytes:
    """Exactly ``n`` bytes, memory taken as they arrive (a request claiming a large body
    holds only what it actually sent)."""
    if n <= _RECV_CHUNK:
        return _recv_exact(sock, n)
    parts, got = [], 0
    while got < n:
        part = _recv_exact(sock, min(_RECV_CHUNK, n - got))
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _response(code: grpc.StatusCode, details: str = "", error_type: str = "", body_len: int = 0) -> bytes:
    d, e = details.encode()[:4000], error_type.encode()[:200]
    return _RESPONSE.pack(RESPONSE_MAGIC, code.value[0], len(d), len(e), body_len) + d + e


# ----------------------------------------------------------------------------- server side

class _Context:
    """The part of grpc.ServicerContext the server's handlers and interceptors use, plus
    :attr:`answer_buffer`: where a handler may write a raw answer (see codec.raw_answer)."""

    def __init__(self, metadata: Tuple[Tuple[str, str], ...], timeout: Optional[float], peer: str,
                 answer_buffer: Optional[Callable[[int], np.ndarray]] = None):
        self._metadata = metadata
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._peer = peer
        self.trailing: Tuple[Tuple[str, str], ...] = ()
        self.cancelled = False
        #: ``nbytes -> uint8 array`` from the listener's recycled buffers (None: bytes)
        self.answer_buffer = answer_buffer

    def invocation_metadata(self):
        return self._metadata

    def time_remaining(self) -> Optional[float]:
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    def abort(self, code: grpc.StatusCode, details: str):
        raise RpcAbort(code, details)

    def set_trailing_metadata(self, metadata) -> None:
        self.trailing = tuple(metadata)

    def is_active(self) -> bool:
        return not self.cancelled and (self._deadline is None or time.monotonic() < self._deadline)

    def cancel(self) -> None:
        self.cancelled = True

    def peer(self) -> str:
        return self._peer

    def add_callback(self, callback) -> bool:
        return False


#: recycled answer buffers a listener keeps (answers sent at once beyond it get their own)
ANSWER_BUFFERS = 4


class _CallDetails(grpc.HandlerCallDetails):
    def __init__(self, method: str, metadata):
        self.method = method
        self.invocation_metadata = metadata


class BulkListener:
    """Serves ``methods`` (full method paths) of a gRPC server over the bulk carrier.

    ``handlers``: the server's generic handlers (``grpc.GenericRpcHandler``); ``interceptors``:
    its interceptors, in its order (each sees every bulk call as it sees a gRPC call);
    ``token``: the bearer token every connection must present first (None: none);
    ``max_message_bytes``: the largest request body taken; ``max_connections``: connections
    served at once (each holds one thread and runs one call at a time; beyond it a new
    connection is refused with RESOURCE_EXHAUSTED, and its client uses gRPC);
    ``idle_timeout_s``: a connection with no call for that long is closed.
    """

    def __init__(self, host: str, port: int, handlers: Sequence[grpc.GenericRpcHandler],
                 interceptors: Sequence[grpc.ServerInterceptor], methods: Sequence[str], *,
                 token: Optional[str] = None, max_message_bytes: int = 256 << 20,
                 max_connections: int = 64, idle_timeout_s: float = 300.0):
        #: random id clients must present (advertised with the port)
        self.listener_id = uuid.uuid4().hex
        # Raw answers are written into recycled buffers: an answer above glibc's largest
        # mmap threshold (32 MiB) would otherwise be a fresh mapping every call, a page
        # fault and a zeroed page per 4 KiB (a third of a server's CPU per batch at 60 M
        # edges: 16 k faults for a 74 MB answer). A buffer is reused once sent and dropped.
        self._answers = BufferPool(keep=ANSWER_BUFFERS)
        self._handlers = list(handlers)
        self._interceptors = list(interceptors)
        self._methods = frozenset(methods)
        self._token = token.encode() if token else None
        self.max_message_bytes = int(max_message_bytes)
        self._slots = threading.BoundedSemaphore(max(1, int(max_connections)))
        self.idle_timeout_s = float(idle_timeout_s)
        family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._sock.bind((host.strip("[]"), int(port)))
            self._sock.listen(128)
        except OSError as e:
            self._sock.close()
            raise OSError(f"cannot listen for bulk answers on {host}:{port}: {e}") from None
        self.port = int(self._sock.getsockname()[1])
        self._stopping = threading.Event()
        self._conns: Dict[int, socket.socket] = {}
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "BulkListener":
        self._thread = threading.Thread(target=self._accept_loop, name="graphplat-bulk-accept", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting; close idle connections (a call in flight finishes first)."""
        self._stopping.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        with self._lock:
            conns = list(self._conns.values())
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RD)  # a thread waiting for the next request wakes up
            except OSError:
                pass

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, peer = self._sock.accept()
            except OSError:
                if self._stopping.is_set():
                    return
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if not self._slots.acquire(blocking=False):
                self._refuse(conn, grpc.StatusCode.RESOURCE_EXHAUSTED,
                             "server is overloaded: too many bulk connections; use gRPC or retry later")
                continue
            threading.Thread(target=self._serve_connection, args=(conn, f"ipv4:{peer[0]}:{peer[1]}"),
                             name="graphplat-bulk", daemon=True).start()

    @staticmethod
    def _refuse(conn: socket.socket, code: grpc.StatusCode, details: str) -> None:
        try:
            conn.settimeout(1.0)
            conn.sendall(_response(code, details))
        except OSError:
            pass
        finally:
            conn.close()

    def _serve_connection(self, conn: socket.socket, peer: str) -> None:
        with self._lock:
            self._conns[id(conn)] = conn
        try:
            conn.settimeout(10.0)  # the hello comes right after connecting
            token = self._hello(conn)
            if token is None:
                return
            metadata_auth = (("authorization", "Bearer " + token),) if token else ()
            while not self._stopping.is_set():
                conn.settimeout(self.idle_timeout_s)
                try:
                    head = _recv_exact(conn, _REQUEST.size)
                except (ConnectionError, OSError):
                    return  # closed, idle for too long, or the server is stopping
                conn.settimeout(60.0)
                if not self._call(conn, head, metadata_auth, peer):
                    return
        except (ConnectionError, OSError) as e:
            log.debug("bulk connection from %s ended: %s", peer, e)
        finally:
            with self._lock:
                self._conns.pop(id(conn), None)
            self._slots.release()
            try:
                conn.close()
            except OSError:
                pass

    def _hello(self, conn: socket.socket) -> Optional[str]:
        """The token a new connection presents, checked; None (after answering) when refused."""
        magic, n, idlen = _HELLO.unpack(_recv_exact(conn, _HELLO.size))
        if magic != HELLO_MAGIC or n > MAX_TOKEN or idlen > MAX_LISTENER_ID:
            conn.sendall(_response(grpc.StatusCode.INVALID_ARGUMENT, "not a graphplat bulk hello"))
            return None
        got = _recv_exact(conn, n)
        if self._token is not None and not hmac.compare_digest(got, self._token):
            conn.sendall(_response(grpc.StatusCode.UNAUTHENTICATED,
                                   "missing bearer token" if not got else "invalid bearer token"))
            return None
        if _recv_exact(conn, idlen) != self.listener_id.encode():
            conn.sendall(_response(grpc.StatusCode.FAILED_PRECONDITION,
                                   "this bulk carrier is not the one the client was told about "
                                   "(the server restarted?); ask Info again"))
            return None
        conn.sendall(_response(grpc.StatusCode.OK))
        return got.decode(errors="replace") if self._token is not None else ""

    def _call(self, conn: socket.socket, head: bytes, metadata_auth, peer: str) -> bool:
        """Serve one request frame; False when the connection must close."""
        magic, mlen, metalen, blen = _REQUEST.unpack(head)
        if magic != REQUEST_MAGIC or mlen > MAX_METHOD or metalen > MAX_METADATA:
            conn.sendall(_response(grpc.StatusCode.INVALID_ARGUMENT, "malformed bulk request frame"))
            return False
        if blen > self.max_message_bytes:
            conn.sendall(_response(grpc.StatusCode.RESOURCE_EXHAUSTED,
                                   f"request of {blen} bytes exceeds this server's message limit "
                                   f"({self.max_message_bytes} bytes)"))
            return False
        method = _recv_exact(conn, mlen).decode(errors="replace")
        try:
            pairs = json.loads(_recv_exact(conn, metalen) or b"[]")
            metadata = tuple((str(k), str(v)) for k, v in pairs)
        except (ValueError, TypeError):
            conn.sendall(_response(grpc.StatusCode.INVALID_ARGUMENT, "malformed bulk request metadata"))
            return False
        body = _recv_growing(conn, blen)
        timeout = None
        for k, v in metadata:
            if k == TIMEOUT_KEY:
                try:
                    timeout = max(0.0, float(v))
                except ValueError:
                    pass
        metadata = tuple(kv for kv in metadata if kv[0] not in ("authorization", TIMEOUT_KEY)) + metadata_auth
        context = _Context(metadata, timeout, peer, self._answer_buffer)
        code, details, answer = self._run(method, body, metadata, context)
        etype = ""
        for k, v in context.trailing:
            if k == "graphplat-error":
                etype = v
        if code != grpc.StatusCode.OK:
            conn.sendall(_response(code, details, etype))
            return True
        conn.sendall(_response(code, body_len=len(answer)))
        conn.sendall(answer)
        return True

    def _answer_buffer(self, nbytes: int) -> np.ndarray:
        return self._answers.empty((nbytes,), np.uint8)

    def _run(self, method: str, body: bytes, metadata, context: _Context):
        """(code, details, answer bytes) of ``method`` run like gRPC runs it."""
        if method not in self._methods:
            return grpc.StatusCode.UNIMPLEMENTED, f"{method} is not served over the bulk carrier", b""
        details = _CallDetails(method, metadata)
        try:
            handler = self._intercepted(details)
            if handler is None or handler.unary_unary is None and handler.stream_unary is None:
                return grpc.StatusCode.UNIMPLEMENTED, f"{method} is not a unary method here", b""
            request = handler.request_deserializer(body) if handler.request_deserializer else body
            if handler.unary_unary is not None:
                answer = handler.unary_unary(request, context)
            else:  # e.g. the token interceptor's refusal, which never reads the request
                answer = handler.stream_unary(iter((request,)), context)
            if handler.response_serializer is not None:
                answer = handler.response_serializer(answer)
            return grpc.StatusCode.OK, "", answer
        except RpcAbort as a:  # context.abort: the status is the call's answer
            return a.code, a.message, b""
        except Exception as e:  # noqa: BLE001 - a handler bug must not kill the connection thread
            log.exception("bulk call %s failed", method)
            return grpc.StatusCode.INTERNAL, f"{type(e).__name__}: {e}", b""

    def _intercepted(self, details: _CallDetails):
        def lookup(d):
            for h in self._handlers:
                got = h.service(d)
                if got is not None:
                    return got
            return None

        def chain(icpt, nxt: Callable) -> Callable:
            return lambda d: icpt.intercept_service(nxt, d)

        cont: Callable = lookup
        for icpt in reversed(self._interceptors):  # the first interceptor sees the call first
            cont = chain(icpt, cont)
        return cont(details)


# ----------------------------------------------------------------------------- client side

class BulkChannel:
    """Calls over the bulk carrier to ``host:port`` (thread-safe: a pool of connections,
    one call at a time on each). ``token`` and ``listener_id`` (the server's
    ``BulkListener.listener_id``, advertised with its port): presented once per connection.

    :meth:`call` returns the answer's bytes (a read-only memoryview over a buffer of its
    own) or raises :class:`BulkError` (the server's status) or OSError/ConnectionError
    (the carrier failed: the caller uses gRPC instead)."""

    def __init__(self, host: str, port: int, token: Optional[str] = None, connect_timeout_s: float = 2.0,
                 max_idle: int = 8, listener_id: str = ""):
        self.host, self.port = host.strip("[]"), int(port)
        self._token = (token or "").encode()
        self._listener_id = listener_id.encode()
        self.connect_timeout_s = float(connect_timeout_s)
        self.max_idle = int(max_idle)
        self._idle: List[socket.socket] = []
        self._lock = threading.Lock()
        self._closed = False
        self.calls = 0  # calls answered over this carrier (OK or not)
        # answers land in recycled buffers: a fresh one costs a page fault per 4 KiB
        self._buffers = BufferPool(keep=8)
        _CHANNELS.add(self)

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout_s)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(_HELLO.pack(HELLO_MAGIC, len(self._token), len(self._listener_id))
                         + self._token + self._listener_id)
            code, details, _etype, blen = self._read_head(sock)
            if code == grpc.StatusCode.UNAUTHENTICATED:  # gRPC would refuse the same way
                raise BulkError(code, details)
            if code != grpc.StatusCode.OK:  # busy or confused: the caller uses gRPC instead
                raise ConnectionRefusedError(f"bulk carrier refused the connection: {code.name}: {details}")
            return sock
        except BaseException:
            sock.close()
            raise

    @staticmethod
    def _read_head(sock: socket.socket):
        magic, code, dlen, elen, blen = _RESPONSE.unpack(_recv_exact(sock, _RESPONSE.size))
        if magic != RESPONSE_MAGIC or code not in _CODES or dlen > 1 << 16 or elen > 1 << 12:
            raise ConnectionError("malformed bulk response frame")
        details = _recv_exact(sock, dlen).decode(errors="replace")
        etype = _recv_exact(sock, elen).decode(errors="replace")
        return _CODES[code], details, etype, blen

    def call(self, method: str, request: bytes, metadata: Sequence[Tuple[str, str]] = (),
             timeout: Optional[float] = None, max_answer_bytes: int = 1 << 62,
             sink: Optional[Callable[[AnswerStream], object]] = None):
        """The answer of ``method`` (full path) to ``request`` (serialized), see the class;
        with ``sink``, what ``sink`` returns after reading the whole answer from an
        :class:`AnswerStream` (it must read all of it: the rest is dropped)."""
        with self._lock:
            if self._closed:
                raise ConnectionError("bulk channel closed")
            sock = self._idle.pop() if self._idle else None
        if sock is None:
            sock = self._connect()
        ok = False
        try:
            sock.settimeout(timeout)
            meta = list(metadata) + ([(TIMEOUT_KEY, f"{timeout:.3f}")] if timeout is not None else [])
            m, md = method.encode(), json.dumps(meta).encode()
            sock.sendall(_REQUEST.pack(REQUEST_MAGIC, len(m), len(md), len(request)) + m + md)
            sock.sendall(request)
            code, details, etype, blen = self._read_head(sock)
            self.calls += 1
            if code != grpc.StatusCode.OK:
                ok = True  # the connection is still in step
                raise BulkError(code, details, etype)
            if blen > max_answer_bytes:
                raise ConnectionError(f"bulk answer of {blen} bytes exceeds the limit {max_answer_bytes}")
            if sink is not None:
                stream = AnswerStream(sock, blen)
                result = sink(stream)
                stream.skip(stream.remaining)
                ok = True
                return result
            buf = self._buffers.empty((blen,), np.uint8)
            _recv_into(sock, memoryview(buf))
            ok = True
            buf.flags.writeable = False
            return memoryview(buf)
        finally:
            if ok:
                self._release(sock)
            else:
                sock.close()

    def _release(self, sock: socket.socket) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self.max_idle:
                self._idle.append(sock)
                return
        sock.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for s in idle:
            s.close()


# A forked child (a DataLoader worker) must not share its parent's connections: two
# processes writing frames on one socket would interleave them. The child drops its copies
# (closing a copied descriptor leaves the parent's connection open) and connects anew.
_CHANNELS: "weakref.WeakSet[BulkChannel]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for ch in list(_CHANNELS):
        ch._lock = threading.Lock()
        idle, ch._idle = ch._idle, []
        for s in idle:
            s.close()


os.register_at_fork(after_in_child=_after_fork_in_child)
