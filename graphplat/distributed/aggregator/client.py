"""Client of the aggregator (:class:`AggregatorClient`) and the values it returns. Every call
retries UNAVAILABLE / DEADLINE_EXCEEDED / CANCELLED with backoff, so a worker survives an
aggregator restart. The worker loop::

    info = client.join(w); step = info.step
    while not (got := client.pull(step, worker_id=w)).done:
        vectors = {j: gradient_vector(grads_j, loss_j) for j in info.slices}  # float64
        try:
            client.push(got.step, w, info.encode(vectors))
        except StepAheadError:  # the aggregator restarted from an older checkpoint
            pass
        step = got.step + 1
"""
from __future__ import annotations

import logging
import random
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Tuple

import grpc
import numpy as np

from graphplat.distributed.aggregator.core import (
    _WIRE_DTYPES,
    MAX_PULL_WAIT,
    STEP_KEY,
    _to_numpy,
    unflatten,
)
from graphplat.distributed.coding import combine
from graphplat.errors import AggregatorUnavailable, StepAheadError, error_from_status
from graphplat.proto import aggregator_pb2 as apb
from graphplat.proto import aggregator_pb2_grpc as apb_grpc
from graphplat.rpc import error_details

log = logging.getLogger("graphplat.aggregator")

__all__ = ["AggregatorClient", "JoinInfo", "PushResult", "Pulled", "AggregatorStatus"]


@dataclass(frozen=True)
class JoinInfo:
    """What Join returns to worker ``worker_id``."""

    worker_id: int
    step: int
    n: int
    s: int
    scheme: str
    code: str
    slices: Tuple[int, ...]
    coefficients: Dict[int, float]
    names: Tuple[str, ...]
    shapes: Tuple[Tuple[int, ...], ...]
    num_elements: int
    max_steps: int
    done: bool
    code_seed: int

    def encode(self, slice_vectors: Mapping[int, np.ndarray]) -> np.ndarray:
        """This worker's coded vector: ``sum_j coefficients[j] * slice_vectors[j]`` over its
        slices (float64 accumulation; float32 result if every input is float32, else float64).
        Each vector is a slice's :func:`gradient_vector` (``num_elements + 1`` entries)."""
        missing = [j for j in self.slices if j not in slice_vectors]
        if missing:
            raise ValueError(f"worker {self.worker_id} computes slices {list(self.slices)}; "
                             f"vectors of slices {missing} are missing")
        arrays = {j: np.asarray(slice_vectors[j]).reshape(-1) for j in self.slices}
        for j, a in arrays.items():
            if a.size != self.num_elements + 1:
                raise ValueError(f"slice {j}: vector of {a.size} entries, expected "
                                 f"{self.num_elements + 1} (parameters + loss)")
        out = combine(self.coefficients, arrays)
        if all(a.dtype in (np.float16, np.float32) for a in arrays.values()):
            return out.astype(np.float32)
        return out

    def unflatten(self, flat: np.ndarray) -> "OrderedDict[str, np.ndarray]":
        """Flat parameters (as pulled) -> ordered dict name -> array of its shape."""
        return unflatten(flat, self.names, self.shapes)


@dataclass(frozen=True)
class PushResult:
    """Answer to a push: ``accepted`` (False when dropped: a past step or training done),
    the aggregator's current ``step`` after the push, and the ``reason`` of a drop."""

    accepted: bool
    step: int          # the aggregator's current step after the push
    reason: str = ""


@dataclass(frozen=True)
class Pulled:
    """Pulled parameters: their ``step``, the flat float32 vector ``params`` (Join's order)
    and ``done`` (max_steps reached; these are the final parameters)."""

    step: int          # the step of these parameters
    params: np.ndarray  # flat float32 vector (writable copy)
    done: bool


@dataclass(frozen=True)
class AggregatorStatus:
    """Status: current ``step``, workers that replied for it (``received``) and not
    (``missing``), ``last_loss`` of the last applied step (None before the first), pushes
    dropped as late, ``done``, the configuration and seconds since the step began."""

    step: int
    received: Tuple[int, ...]
    missing: Tuple[int, ...]
    last_loss: Optional[float]
    dropped_late: int
    done: bool
    max_steps: int
    n: int
    s: int
    scheme: str
    code: str
    waiting_seconds: float


_RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
              grpc.StatusCode.CANCELLED)


class AggregatorClient:
    """Client of one aggregator (numpy in, numpy out).

    Every call is retried on UNAVAILABLE, DEADLINE_EXCEEDED and CANCELLED (aggregator down,
    restarting or shutting down) with exponential backoff and jitter for up to ``timeout``
    seconds, then raises :class:`AggregatorUnavailable`; all calls are idempotent on the
    server (a repeated push keeps the first, a push for a past step is dropped), so a worker
    survives an aggregator restart. INVALID_ARGUMENT raises ValueError, FAILED_PRECONDITION
    :class:`StepAheadError`, anything else :class:`AggregatorError`.

    Args:
        address: ``host:port`` of the aggregator.
        timeout: seconds a call keeps retrying an unreachable aggregator (and the default
            time :meth:`pull` waits for a step).
        rpc_timeout: deadline of one attempt of a non-blocking call.
        backoff, max_backoff: first and largest retry delay in seconds.
    """

    def __init__(self, address: str, timeout: float = 60.0, *, rpc_timeout: float = 10.0,
                 backoff: float = 0.05, max_backoff: float = 1.0, max_message_mb: int = 256):
        if timeout <= 0 or rpc_timeout <= 0:
            raise ValueError("timeout and rpc_timeout must be > 0")
        self.address = str(address)
        self.timeout = float(timeout)
        self.rpc_timeout = float(rpc_timeout)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        size = int(max_message_mb) << 20
        options = [("grpc.max_send_message_length", size), ("grpc.max_receive_message_length", size),
                   ("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 1000), ("grpc.enable_retries", 0)]
        self._channel = grpc.insecure_channel(self.address, options=options)
        self._stub = apb_grpc.AggregatorStub(self._channel)

    def __repr__(self) -> str:
        return f"AggregatorClient({self.address!r})"

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> "AggregatorClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------- plumbing
    def _error(self, err: grpc.RpcError, method: str) -> Exception:
        code, msg, etype = error_details(err)
        e = error_from_status(code, msg, etype, service="aggregator",
                              where=f"aggregator {self.address}: {method}")
        if isinstance(e, StepAheadError):
            try:
                for k, v in err.trailing_metadata() or ():
                    if k == STEP_KEY:
                        e.current_step = int(v)
            except Exception:  # noqa: BLE001 - some errors carry no metadata
                pass
        return e

    def _call(self, method: str, request, attempt_timeout: float):
        end = time.monotonic() + self.timeout
        attempt = 0
        while True:
            try:
                return getattr(self._stub, method)(request, timeout=attempt_timeout)
            except grpc.RpcError as err:
                if err.code() not in _RETRYABLE:
                    raise self._error(err, method) from None
                now = time.monotonic()
                if now >= end:
                    raise AggregatorUnavailable(
                        f"aggregator {self.address} did not answer {method} within "
                        f"{self.timeout:g}s: {err.code().name}: {err.details()}") from None
                delay = min(self.max_backoff, self.backoff * (2 ** attempt)) * random.uniform(0.5, 1.5)
                attempt += 1
                log.debug("%s to %s failed with %s; retrying in %.2fs", method, self.address,
                          err.code().name, delay)
                time.sleep(max(0.0, min(delay, end - now)))

    # ---------------------------------------------------------------- calls
    def join(self, worker_id: int) -> JoinInfo:
        """Join as ``worker_id``; returns :class:`JoinInfo` (slices, coefficients, config)."""
        r = self._call("Join", apb.JoinRequest(worker_id=int(worker_id)), self.rpc_timeout)
        return JoinInfo(worker_id=int(worker_id), step=r.step, n=r.n, s=r.s, scheme=r.scheme,
                        code=r.code, slices=tuple(r.slices),
                        coefficients={int(j): float(c) for j, c in zip(r.slices, r.coefficients)},
                        names=tuple(p.name for p in r.params),
                        shapes=tuple(tuple(int(d) for d in p.shape) for p in r.params),
                        num_elements=r.num_elements, max_steps=r.max_steps, done=r.done,
                        code_seed=r.code_seed)

    def push(self, step: int, worker_id: int, coded: np.ndarray,
             loss: Optional[float] = None) -> PushResult:
        """Push ``worker_id``'s coded vector for ``step``: the coded gradient with the coded
        loss as its last element (or pass the coded loss as ``loss`` to have it appended).
        float32 vectors travel as float32, everything else as float64. Returns
        :class:`PushResult` (``accepted`` is False for a dropped late push)."""
        vec = _to_numpy(coded).reshape(-1)
        if loss is not None:
            vec = np.concatenate([vec, np.asarray([float(loss)], dtype=vec.dtype)])
        name = "float32" if vec.dtype in (np.float16, np.float32) else "float64"
        data = vec.astype(_WIRE_DTYPES[name], copy=False).tobytes()
        r = self._call("PushGradient", apb.PushRequest(step=int(step), worker_id=int(worker_id),
                                                       data=data, dtype=name), self.rpc_timeout)
        return PushResult(accepted=r.accepted, step=r.step, reason=r.reason)

    def pull(self, step: int, worker_id: Optional[int] = None,
             timeout: Optional[float] = None) -> Pulled:
        """Wait for the parameters of ``step`` (< 0: current) and return them as
        :class:`Pulled` (``step`` of the parameters, flat float32 ``params``, ``done``).
        Pass ``worker_id`` so the aggregator can hand a worker whose push was lost the
        current step again. Waits up to ``timeout`` seconds (default: the client's timeout),
        then raises TimeoutError."""
        wait = self.timeout if timeout is None else float(timeout)
        end = time.monotonic() + wait
        while True:
            server_wait = max(0.0, min(end - time.monotonic(), MAX_PULL_WAIT))
            req = apb.PullRequest(step=int(step), timeout=server_wait)
            if worker_id is not None:
                req.worker_id = int(worker_id)
            r = self._call("PullParameters", req, server_wait + self.rpc_timeout)
            if r.ready:
                params = np.frombuffer(r.data, dtype="<f4").astype(np.float32)
                return Pulled(step=r.step, params=params, done=r.done)
            if time.monotonic() >= end:
                raise TimeoutError(f"aggregator {self.address}: parameters of step {step} not "
                                   f"published within {wait:g}s (it is at step {r.step})")

    def status(self) -> AggregatorStatus:
        """The aggregator's :class:`AggregatorStatus`."""
        r = self._call("Status", apb.StatusRequest(), self.rpc_timeout)
        return AggregatorStatus(step=r.step, received=tuple(r.received), missing=tuple(r.missing),
                                last_loss=r.last_loss if r.has_loss else None,
                                dropped_late=r.dropped_late, done=r.done, max_steps=r.max_steps,
                                n=r.n, s=r.s, scheme=r.scheme, code=r.code,
                                waiting_seconds=r.waiting_seconds)
