"""The aggregator's gRPC service ``graphplat.aggregator.v1.Aggregator``
(``proto/aggregator.proto``): the servicer over an :class:`AggregatorCore`, the running
:class:`AggregatorServer` and :func:`serve_aggregator` that starts one.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from concurrent import futures
from typing import Optional, Union

import grpc
import numpy as np

from graphplat.distributed.aggregator.core import STEP_KEY, AggregatorCore
from graphplat.errors import StepAheadError
from graphplat.proto import aggregator_pb2 as apb
from graphplat.proto import aggregator_pb2_grpc as apb_grpc
from graphplat.rpc import abort_call, add_port, server_options, status_of

log = logging.getLogger("graphplat.aggregator")

__all__ = ["AggregatorServicer", "AggregatorServer", "serve_aggregator"]


def _rpc(fn):
    method = fn.__name__

    def wrapper(self, request, context):
        try:
            return fn(self, request, context)
        except Exception as e:  # noqa: BLE001 - every failure becomes a status (graphplat.errors)
            code, message, etype = status_of(e)
            step = ((STEP_KEY, str(e.current_step)),) if isinstance(e, StepAheadError) else ()
            abort_call(context, method, code, message, etype, log, step)

    wrapper.__name__ = method
    wrapper.__doc__ = fn.__doc__
    return wrapper


class AggregatorServicer(apb_grpc.AggregatorServicer):
    """``graphplat.aggregator.v1.Aggregator`` over an :class:`AggregatorCore`."""

    def __init__(self, core: AggregatorCore):
        self.core = core

    @_rpc
    def Join(self, request, context):
        """JoinRequest -> JoinResponse (see :meth:`AggregatorCore.join`)."""
        return self.core.join(request.worker_id)

    @_rpc
    def PushGradient(self, request, context):
        """PushRequest -> PushResponse (see :meth:`AggregatorCore.push`)."""
        accepted, step, reason = self.core.push(request.step, request.worker_id, request.data,
                                                request.dtype)
        return apb.PushResponse(accepted=accepted, step=step, reason=reason)

    @_rpc
    def PullParameters(self, request, context):
        """PullRequest -> PullResponse (see :meth:`AggregatorCore.pull`)."""
        worker = request.worker_id if request.HasField("worker_id") else None
        return self.core.pull(request.step, worker, request.timeout)

    @_rpc
    def Status(self, request, context):
        """StatusRequest -> StatusResponse."""
        return self.core.status()


class AggregatorServer:
    """A running aggregator (what :func:`serve_aggregator` returns).

    Attributes: ``port``, ``address`` (``host:port``), ``core`` (:class:`AggregatorCore`).
    """

    def __init__(self, core: AggregatorCore, address: str = "127.0.0.1:0", *,
                 threads: Optional[int] = None, max_message_mb: int = 256):
        self.core = core
        workers = threads or max(16, 2 * core.n + 8)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers,
                                                             thread_name_prefix="graphplat-agg"),
                                  options=server_options(int(max_message_mb) << 20))
        apb_grpc.add_AggregatorServicer_to_server(AggregatorServicer(core), self.server)
        self.port = add_port(self.server, address)
        host = address.rsplit(":", 1)[0] if ":" in address else "127.0.0.1"
        self.address = f"{host}:{self.port}"
        self._stopped = False
        self.server.start()
        core.start_watch()
        log.info("aggregator serving on %s: %s, n=%d, s=%d, %d parameter elements, step %d%s",
                 self.address, core._describe(), core.n, core.s, core.num_elements, core.step,
                 f" of {core.max_steps}" if core.max_steps else "")

    @property
    def step(self) -> int:
        """The current step (number of applied updates)."""
        return self.core.step

    @property
    def last_loss(self) -> Optional[float]:
        """The decoded loss of the last applied step (None before the first)."""
        return self.core.last_loss

    @property
    def done(self) -> bool:
        """True once ``max_steps`` updates are applied."""
        return self.core.done

    def params(self) -> "OrderedDict[str, np.ndarray]":
        """Copies of the current parameters, name -> float32 array."""
        return self.core.params_numpy()

    def wait_done(self, timeout: Optional[float] = None) -> bool:
        """Block until ``max_steps`` are applied (or the server is stopped, or ``timeout``
        seconds passed). Returns True when training is done."""
        self.core.finished.wait(timeout)
        return self.core.done

    @property
    def failure(self) -> Optional[str]:
        """Why the run stopped unfinished (the stall deadline passed), else None."""
        return self.core.failure

    def stop(self, grace: float = 1.0) -> None:
        """Checkpoint (if a directory is set), refuse new calls (UNAVAILABLE, so clients
        retry) and shut the server down, giving calls in flight ``grace`` seconds."""
        if self._stopped:
            return
        self._stopped = True
        self.core.close()
        self.server.stop(grace).wait(grace + 1.0)
        log.info("aggregator on %s stopped at step %d", self.address, self.core.step)

    def __enter__(self) -> "AggregatorServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve_aggregator(address: Union[str, int], params, optimizer_spec, scheme: str = "coded",
                     code: Optional[str] = "frc", n: int = 1, s: int = 0,
                     checkpoint_dir=None, checkpoint_every: int = 0,
                     max_steps: Optional[int] = 0, *, stall_warning_s: float = 30.0,
                     straggler_timeout_s: float = 5.0, code_seed: int = 0,
                     keep_checkpoints: int = 3, threads: Optional[int] = None,
                     max_message_mb: int = 256,
                     stall_deadline_s: Optional[float] = None) -> AggregatorServer:
    """Start an aggregator in this process and return its :class:`AggregatorServer` handle
    (``.port``, ``.address``, ``.stop()``, ``.wait_done()``, ``.params()``).

    Takes the listen address (``"127.0.0.1:0"`` picks a free port; an int is a port on
    127.0.0.1) and the arguments of :class:`AggregatorCore`: initial ``params`` (None to
    resume from ``checkpoint_dir``), ``optimizer_spec``, ``scheme``, ``code``, ``n``, ``s``,
    ``checkpoint_dir``, ``checkpoint_every``, ``max_steps``, ``stall_warning_s``,
    ``straggler_timeout_s``, ``code_seed``, ``keep_checkpoints``, ``stall_deadline_s``
    (stop with ``.failure`` set when a step cannot decode for that long). Raises ValueError for a bad
    configuration, OSError when the address cannot be bound.
    """
    if isinstance(address, int):
        address = f"127.0.0.1:{address}"
    core = AggregatorCore(params, optimizer_spec, scheme, code, n, s,
                          checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every,
                          max_steps=max_steps, stall_warning_s=stall_warning_s,
                          straggler_timeout_s=straggler_timeout_s, code_seed=code_seed,
                          keep_checkpoints=keep_checkpoints, stall_deadline_s=stall_deadline_s)
    return AggregatorServer(core, address, threads=threads, max_message_mb=max_message_mb)
