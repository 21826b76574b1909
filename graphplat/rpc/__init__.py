"""gRPC plumbing shared by graphplat's services and their clients.

The graph partition server (:mod:`graphplat.storage.server`), the online model service
(:mod:`graphplat.serving.server`) and the gradient aggregator
(:mod:`graphplat.distributed.aggregator`) all run the same way; what they share lives here:

* **server side**: :class:`RpcAbort` and :func:`status_of` (exception -> status code, message
  and the exception class sent in the trailing metadata ``graphplat-error``, from the one
  table :data:`graphplat.errors.STATUS_TABLE`), :func:`abort_call`,
  :func:`rpc_method` (the handler wrapper: readiness check, metrics, status mapping),
  :class:`ServiceMetrics` (a Prometheus registry with request counters and latencies and its
  own HTTP endpoint), :class:`BearerTokenInterceptor` (``authorization: Bearer <token>``
  on every call but the health service), :func:`is_loopback`, :func:`server_options`,
  :func:`add_port` (insecure or TLS), :class:`HostedService` (a gRPC server with the health
  service, started NOT_SERVING and drained on stop);
* **command line**: :func:`read_credentials` (``--token``/``--token-file``/
  ``$GRAPHPLAT_TOKEN`` and ``--tls-cert``/``--tls-key``), :func:`warn_if_exposed`,
  :func:`add_security_arguments`, :func:`add_shutdown_arguments`,
  :func:`install_stop_signals` and :func:`serve_until_stopped` (SIGTERM/SIGINT: ready file,
  wait, graceful stop);
* **client side**: :func:`error_details` (code, message and exception class of a
  failed call), :func:`read_root_cert`, :func:`open_channel`, :func:`auth_metadata`,
  :func:`message_options`.
"""
from __future__ import annotations

import contextlib
import functools
import hmac
import inspect
import ipaddress
import logging
import os
import signal
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import grpc

from graphplat.atomic import write_json_atomic
from graphplat.errors import STATUS_TABLE

__all__ = ["ERROR_TYPE_KEY", "RpcAbort", "status_of", "rpc_method", "ServiceMetrics",
           "BearerTokenInterceptor", "MalformedRequestInterceptor", "is_loopback", "join_host_port", "server_options", "add_port",
           "HostedService", "warn_if_exposed", "install_stop_signals",
           "write_ready_file", "serve_until_stopped", "abort_call", "error_details", "read_root_cert", "open_channel", "auth_metadata",
           "message_options"]

ERROR_TYPE_KEY = "graphplat-error"
MAX_DETAILS = 4000
_LOOPBACK_NAMES = ("localhost", "ip6-localhost")

# ----------------------------------------------------------------------------- server: errors

class RpcAbort(Exception):
    """Abort the current call with ``code`` and ``message``."""

    def __init__(self, code: grpc.StatusCode, message: str, error_type: str = ""):
        super().__init__(message)
        self.code = code
        self.message = message
        self.error_type = error_type


def status_of(exc: BaseException) -> Tuple[grpc.StatusCode, str, str]:
    """(code, message, exception class name) of an exception raised by a handler.

    :class:`RpcAbort` says it itself; otherwise the first row of
    :data:`graphplat.errors.STATUS_TABLE` whose class matches (a KeyError's message is its
    key), else INTERNAL with the class name.
    """
    if isinstance(exc, RpcAbort):
        return exc.code, exc.message, exc.error_type
    for cls, code, etype, prefix in STATUS_TABLE:
        if isinstance(exc, cls):
            if isinstance(exc, KeyError):
                message = str(exc.args[0]) if exc.args else type(exc).__name__
            else:
                message = str(exc)
            return grpc.StatusCode[code], f"{prefix}{message}", etype
    name = type(exc).__name__
    return grpc.StatusCode.INTERNAL, f"{name}: {exc}", name


def abort_call(context, method: str, code: grpc.StatusCode, message: str, etype: str,
               logger: logging.Logger, metadata: Tuple[Tuple[str, str], ...] = ()) -> None:
    """Log a failed call (with the traceback when INTERNAL), put the exception class (and
    ``metadata``) in the trailing metadata and abort the call (``context.abort`` raises)."""
    if code == grpc.StatusCode.INTERNAL:
        logger.exception("%s failed", method)
    else:
        logger.debug("%s: %s %s", method, code.name, message)
    trailing = (((ERROR_TYPE_KEY, etype),) if etype else ()) + tuple(metadata)
    if trailing:
        context.set_trailing_metadata(trailing)
    context.abort(code, message[:MAX_DETAILS])


def rpc_method(logger: logging.Logger, *, metrics_attr: str = "metrics", pass_ready: bool = False):
    """A decorator of servicer methods: readiness check, metrics and exception -> status.

    The wrapped call first runs ``self._ready()`` (which raises :class:`RpcAbort` to refuse
    the call, e.g. UNAVAILABLE while loading or draining); with ``pass_ready`` its result is
    passed to the handler as ``fn(self, ready, request, context)``, else the handler is
    ``fn(self, request, context)``. Every call is recorded in ``getattr(self,
    metrics_attr).record(method, code, seconds)``; an exception becomes the status
    :func:`status_of` says. Generator handlers (server streaming) are wrapped as generators.
    """
    @contextlib.contextmanager
    def handling(servicer, method: str, context):
        t0 = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            yield
        except Exception as exc:  # noqa: BLE001 - every failure becomes a status
            code, message, etype = status_of(exc)
            abort_call(context, method, code, message, etype, logger)
        finally:
            getattr(servicer, metrics_attr).record(method, code, time.perf_counter() - t0)

    def decorate(fn):
        method = fn.__name__

        def call(self, request, context):
            ready = self._ready()
            return fn(self, ready, request, context) if pass_ready else fn(self, request, context)

        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def wrapper(self, request, context):
                with handling(self, method, context):
                    yield from call(self, request, context)
        else:
            @functools.wraps(fn)
            def wrapper(self, request, context):
                with handling(self, method, context):
                    return call(self, request, context)

        return wrapper

    return decorate


# ----------------------------------------------------------------------------- server: metrics

@functools.lru_cache(maxsize=None)
def _code_name(code: grpc.StatusCode) -> str:
    return code.name


class ServiceMetrics:
    """Prometheus metrics of one server in their own registry: ``<prefix>_requests_total
    {method,code}``, ``<prefix>_request_seconds{method}`` (histogram with ``buckets``) and,
    with ``count_errors``, ``<prefix>_request_errors_total{method,code}``. Subclasses add
    their own metrics to ``self.registry``; :meth:`serve` exposes them over HTTP."""

    def __init__(self, prefix: str, buckets: Sequence[float], *, count_errors: bool = False):
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(f"{prefix}_requests", "Requests by method and status code",
                                ["method", "code"], registry=self.registry)
        self.errors = None
        if count_errors:
            self.errors = Counter(f"{prefix}_request_errors", "Failed requests by method and code",
                                  ["method", "code"], registry=self.registry)
        self.latency = Histogram(f"{prefix}_request_seconds", "Request latency by method",
                                 ["method"], buckets=tuple(buckets), registry=self.registry)
        self.http = None

    def record(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        c = _code_name(code)
        self.requests.labels(method, c).inc()
        self.latency.labels(method).observe(seconds)
        if self.errors is not None and code != grpc.StatusCode.OK:
            self.errors.labels(method, c).inc()

    def serve(self, host: str, port: int) -> int:
        """Serve the registry over HTTP on ``host:port``; returns the port bound."""
        from prometheus_client import start_http_server

        got = start_http_server(port, addr=host, registry=self.registry)
        self.http = got[0] if isinstance(got, tuple) else None
        return self.http.server_port if self.http is not None else port

    def close(self) -> None:
        if self.http is not None:
            self.http.shutdown()
            self.http.server_close()
            self.http = None


# ----------------------------------------------------------------------------- server: auth

class BearerTokenInterceptor(grpc.ServerInterceptor):
    """Requires ``authorization: Bearer <token>`` on every call except the health service."""

    EXEMPT_PREFIX = "/grpc.health.v1.Health/"

    def __init__(self, token: str, metrics: Optional[ServiceMetrics] = None):
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
    """A handler refusing the call UNAUTHENTICATED *before its request body is read*: it
    is registered as request-streaming (same wire format) and never iterates the request,
    so an unauthenticated caller cannot make the server buffer or parse a large message."""
    def deny(request_iterator, context):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    def deny_stream(request_iterator, context):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield  # pragma: no cover

    if handler is None:
        return None
    kw = dict(request_deserializer=lambda data: None,
              response_serializer=handler.response_serializer)
    if handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(deny_stream, **kw)
    return grpc.stream_unary_rpc_method_handler(deny, **kw)


class _Undecodable:
    """What a request deserializer returns for bytes that are not a valid message."""

    def __init__(self, error: Exception):
        self.error = error


class MalformedRequestInterceptor(grpc.ServerInterceptor):
    """Answers request bytes that do not decode as the method's message with
    INVALID_ARGUMENT (gRPC itself would answer INTERNAL), counted in ``metrics``."""

    def __init__(self, metrics: Optional[ServiceMetrics] = None):
        self._metrics = metrics

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None or handler.request_streaming:
            return handler
        decode = handler.request_deserializer
        method = (handler_call_details.method or "").rsplit("/", 1)[-1] or "unknown"

        def safe_decode(data: bytes):
            try:
                return decode(data)
            except Exception as e:  # noqa: BLE001 - any decoding failure is the caller's
                return _Undecodable(e)

        def refuse(request, context):
            if self._metrics is not None:
                self._metrics.record(method, grpc.StatusCode.INVALID_ARGUMENT, 0.0)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"malformed request: the bytes sent to {method} are not a valid "
                          f"protobuf message ({type(request.error).__name__}: {request.error})")

        kw = dict(request_deserializer=safe_decode, response_serializer=handler.response_serializer)
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            def unary(request, context):
                if isinstance(request, _Undecodable):
                    return refuse(request, context)
                return inner(request, context)
            return grpc.unary_unary_rpc_method_handler(unary, **kw)
        inner_stream = handler.unary_stream

        def stream(request, context):
            if isinstance(request, _Undecodable):
                refuse(request, context)
            yield from inner_stream(request, context)
        return grpc.unary_stream_rpc_method_handler(stream, **kw)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names the loopback interface only."""
    h = host.strip("[]")
    if h.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


# ----------------------------------------------------------------------------- server: binding

def join_host_port(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def server_options(max_message_bytes: int) -> List[Tuple[str, int]]:
    """Server options: message size limits, and no SO_REUSEPORT (a taken port is an error,
    not a second server sharing it)."""
    return [("grpc.max_receive_message_length", int(max_message_bytes)),
            ("grpc.max_send_message_length", int(max_message_bytes)),
            ("grpc.so_reuseport", 0)]


def add_port(server: grpc.Server, address: str,
             tls: Optional[Tuple[bytes, bytes]] = None) -> int:
    """Bind ``address`` (TLS with ``tls = (key PEM, certificate chain PEM)``); the port
    bound. OSError when it cannot listen."""
    try:
        if tls is not None:
            key, cert = tls
            port = server.add_secure_port(address, grpc.ssl_server_credentials([(key, cert)]))
        else:
            port = server.add_insecure_port(address)
    except RuntimeError as e:
        raise OSError(f"cannot listen on {address}: {e}") from None
    if not port:
        raise OSError(f"cannot listen on {address} (address in use?)")
    return int(port)


class HostedService:
    """A gRPC server hosting one servicer plus the standard health service.

    Subclasses set ``SERVICE_NAME`` and call :meth:`_init_grpc` from ``__init__``; the health
    service starts NOT_SERVING (:meth:`_set_health` flips it) and :meth:`_drain` stops the
    server gracefully. A follower thread (``self._follower``, stopped by ``self._stop_follow``)
    is optional. Attributes: ``server``, ``health``, ``servicer``, ``metrics``, ``port``,
    ``address`` and ``metrics_port`` (None without a metrics endpoint).
    """

    SERVICE_NAME = ""

    def _init_grpc(self, servicer, add_servicer: Callable, metrics: ServiceMetrics, *, host: str,
                   port: int, threads: int, thread_name_prefix: str, max_message_bytes: int,
                   token: Optional[str] = None, tls: Optional[Tuple[bytes, bytes]] = None,
                   metrics_port: Optional[int] = None, metrics_host: str = "127.0.0.1",
                   interceptors: Sequence[grpc.ServerInterceptor] = (),
                   options: Sequence[Tuple[str, int]] = (),
                   max_concurrent_rpcs: Optional[int] = None) -> None:
        from grpc_health.v1 import health, health_pb2_grpc

        self.servicer = servicer
        self.metrics = metrics
        self._stop_follow = threading.Event()
        self._follower: Optional[threading.Thread] = None
        self.health = health.HealthServicer(experimental_non_blocking=True)
        self._set_health(False)
        # the token is checked first, before any other interceptor holds the call
        interceptors = (([BearerTokenInterceptor(token, metrics)] if token else [])
                        + [MalformedRequestInterceptor(metrics)] + list(interceptors))
        self.interceptors = interceptors  # in order; the bulk carrier runs calls through them too
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads,
                                                             thread_name_prefix=thread_name_prefix),
                                  interceptors=interceptors,
                                  options=server_options(max_message_bytes) + list(options),
                                  maximum_concurrent_rpcs=max_concurrent_rpcs)
        add_servicer(servicer, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = add_port(self.server, join_host_port(host, port), tls)
        self.address = f"{host}:{self.port}"
        self.metrics_port = metrics.serve(metrics_host, metrics_port) if metrics_port is not None else None

    def _set_health(self, serving: bool) -> None:
        from grpc_health.v1 import health_pb2

        status = (health_pb2.HealthCheckResponse.SERVING if serving
                  else health_pb2.HealthCheckResponse.NOT_SERVING)
        for svc in ("", self.SERVICE_NAME):
            self.health.set(svc, status)

    def _drain(self, grace: float) -> None:
        """Health NOT_SERVING, stop the follower, refuse new calls and give the calls in
        flight ``grace`` seconds."""
        self.health.enter_graceful_shutdown()
        self._stop_follow.set()
        ev = self.server.stop(grace)
        self.servicer.draining = True
        ev.wait(grace + 1.0)
        if self._follower is not None and self._follower.is_alive():
            self._follower.join(timeout=2.0)


# ----------------------------------------------------------------------------- process lifecycle


def warn_if_exposed(logger: logging.Logger, host: str, protected: bool, what: str) -> None:
    """Warn when a server without token or TLS listens on more than loopback."""
    if not is_loopback(host) and not protected:
        logger.warning("serving on %s without --token or TLS: anyone who can reach this address "
                       "can %s", host, what)


def install_stop_signals(logger: logging.Logger, *, main_thread_only: bool = False) -> threading.Event:
    """An event set by SIGTERM/SIGINT. With ``main_thread_only`` the handlers are installed
    only when called on the main thread (elsewhere the event is only set by the caller)."""
    stop = threading.Event()

    def on_signal(signum, frame):
        logger.info("received %s; shutting down", signal.Signals(signum).name)
        stop.set()

    if not main_thread_only or threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    return stop


def write_ready_file(path, server) -> None:
    """Write ``{address, port, metrics_port, pid}`` of ``server`` (and ``bulk_port`` when
    it has a bulk carrier) to ``path`` atomically."""
    ready = {"address": server.address, "port": server.port, "metrics_port": server.metrics_port,
             "pid": os.getpid()}
    bulk = getattr(server, "bulk", None)
    if bulk is not None:
        ready["bulk_port"] = bulk.port
    write_json_atomic(path, ready)


def serve_until_stopped(server, stop: threading.Event, ready_file: Optional[str], grace: float) -> None:
    """Write the ready file (when asked), wait for ``stop`` and stop ``server`` gracefully."""
    if ready_file:
        write_ready_file(ready_file, server)
    while not stop.wait(1.0):
        pass
    server.stop(grace)


# ----------------------------------------------------------------------------- client side


def error_details(err: grpc.RpcError) -> Tuple[grpc.StatusCode, str, str]:
    """``(code, message, exception class name)`` of a failed call (the class name from the
    trailing metadata ``graphplat-error``, "" when absent)."""
    code = err.code()
    msg = err.details() or code.name
    etype = ""
    try:
        for k, v in err.trailing_metadata() or ():
            if k == ERROR_TYPE_KEY:
                etype = v
    except Exception:  # noqa: BLE001 - some errors carry no metadata
        pass
    return code, msg, etype


def message_options(max_message_mb: int) -> List[Tuple[str, int]]:
    """Channel options limiting sent and received messages to ``max_message_mb`` MiB."""
    size = int(max_message_mb) << 20
    return [("grpc.max_send_message_length", size), ("grpc.max_receive_message_length", size)]


def read_root_cert(root_cert) -> Optional[bytes]:
    """PEM bytes of a CA certificate given as bytes, a PEM string or a path (None: no TLS)."""
    if root_cert is None or isinstance(root_cert, (bytes, bytearray)):
        return root_cert
    if isinstance(root_cert, str) and root_cert.lstrip().startswith("-----BEGIN"):
        return root_cert.encode()
    return Path(root_cert).read_bytes()


def open_channel(address: str, options, root_cert: Optional[bytes] = None) -> grpc.Channel:
    """A channel to ``address``: TLS verified against ``root_cert`` when given, else insecure."""
    if root_cert is not None:
        creds = grpc.ssl_channel_credentials(root_certificates=root_cert)
        return grpc.secure_channel(address, creds, options=options)
    return grpc.insecure_channel(address, options=options)


def auth_metadata(token: Optional[str]) -> Tuple[Tuple[str, str], ...]:
    """Call metadata carrying ``authorization: Bearer <token>`` (empty without a token)."""
    return (("authorization", f"Bearer {token}"),) if token else ()
