"""The aggregator's step state machine (:class:`AggregatorCore`) and its math: flattening
parameters, a slice's gradient vector, decoding the replies of a step and the optimizer.

Step ``t``'s parameters are those after ``t`` optimizer updates. Pushes for ``t`` are
collected until they decode (scheme ``coded``: any decodable subset; ``wait_all``: all ``n``;
``ignore_stragglers``: ``n - s`` replies or the straggler timeout, rescaled and inexact), then
the decoded sum is applied and step ``t + 1`` published. A push for a past step is dropped, a
future one raises :class:`StepAheadError`, a repeated one keeps the first. A pull for a later
step returns the current step to a worker owing a reply for it (its push was lost in a
restart). Replies in progress are never checkpointed; the workers are asked again.
"""
from __future__ import annotations

import logging
import math
import numbers
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from graphplat.distributed.aggregator.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    _as_param_tensors,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from graphplat.distributed.coding import GradientCode, UncodedScheme, combine, make_code
from graphplat.errors import ShuttingDown, StepAheadError
from graphplat.proto import aggregator_pb2 as apb

log = logging.getLogger("graphplat.aggregator")

__all__ = ["AggregatorCore", "build_optimizer", "flatten_params", "unflatten", "gradient_vector"]

SERVICE_NAME = "graphplat.aggregator.v1.Aggregator"
SCHEMES: Tuple[str, ...] = ("coded", "wait_all", "ignore_stragglers")
CODED_KINDS: Tuple[str, ...] = ("frc", "cyclic")
OPTIMIZERS: Tuple[str, ...] = ("sgd", "adam", "adamw")
STEP_KEY = "graphplat-agg-step"
#: longest a single PullParameters call waits on the server (the client polls again).
MAX_PULL_WAIT = 30.0
_WIRE_DTYPES = {"float32": np.dtype("<f4"), "float64": np.dtype("<f8")}


def _to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def flatten_params(params: Mapping[str, Any]) -> np.ndarray:
    """Concatenate the parameters (mapping name -> tensor/array, in mapping order) into one
    flat float32 numpy vector (the wire order of PullParameters)."""
    parts = [_to_numpy(v).astype(np.float32, copy=False).reshape(-1) for v in params.values()]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def unflatten(flat: np.ndarray, names: Sequence[str], shapes: Sequence[Sequence[int]]
              ) -> "OrderedDict[str, np.ndarray]":
    """Split a flat vector into an ordered dict name -> array of the given shapes (views of
    ``flat``). Takes the vector (its length must be the total element count, or that plus one
    trailing loss element, which is ignored), names and shapes. ValueError otherwise."""
    flat = np.asarray(flat).reshape(-1)
    sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
    total = sum(sizes)
    if len(names) != len(shapes):
        raise ValueError(f"{len(names)} names but {len(shapes)} shapes")
    if flat.size not in (total, total + 1):
        raise ValueError(f"flat vector has {flat.size} elements, the parameters have {total}")
    out: "OrderedDict[str, np.ndarray]" = OrderedDict()
    off = 0
    for name, shape, size in zip(names, shapes, sizes):
        out[name] = flat[off:off + size].reshape(tuple(int(d) for d in shape))
        off += size
    return out


def gradient_vector(grads: Union[Sequence[Any], Mapping[str, Any]], loss: float, *,
                    params: Optional[Sequence[Any]] = None, dtype=np.float64) -> np.ndarray:
    """One slice's vector as a worker encodes it: the gradients flattened in parameter order
    followed by the loss as the last element.

    Takes the gradients (a sequence in Join's parameter order, or a mapping name -> gradient
    in that order; torch tensors or arrays; ``None`` entries, e.g. ``p.grad`` of a parameter
    the slice did not touch, are zeros shaped like ``params[k]``, which must then be given),
    the slice's (scaled) loss, and the output dtype (float64 by default: accumulate and send
    float64 with cyclic codes). Returns a 1-D array.
    """
    seq = list(grads.values()) if isinstance(grads, Mapping) else list(grads)
    parts = []
    for k, g in enumerate(seq):
        if g is None:
            if params is None:
                raise ValueError(f"gradient {k} is None; pass params= so it can be zero-filled")
            parts.append(np.zeros(int(np.prod(tuple(params[k].shape), dtype=np.int64)), dtype))
        else:
            parts.append(_to_numpy(g).astype(dtype, copy=False).reshape(-1))
    loss_v = float(_to_numpy(loss)) if isinstance(loss, torch.Tensor) else float(loss)
    parts.append(np.array([loss_v], dtype))
    return np.concatenate(parts)


def build_optimizer(params: Iterable[torch.nn.Parameter], spec: Union[str, Mapping[str, Any]]
                    ) -> torch.optim.Optimizer:
    """A torch optimizer over ``params`` from a spec such as
    ``{"name": "adam", "lr": 0.01, "weight_decay": 0.0}`` (or just the name).

    Names: ``sgd`` (lr, momentum, dampening, weight_decay, nesterov), ``adam`` and ``adamw``
    (lr, betas, eps, weight_decay, amsgrad); other keys are passed to the torch constructor.
    Returns the optimizer; ValueError for an unknown name or bad options.
    """
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, Mapping):
        raise ValueError(f"optimizer spec must be a mapping like {{'name': 'adam', 'lr': 0.01}}, "
                         f"got {spec!r}")
    opts = dict(spec)
    name = str(opts.pop("name", "")).strip().lower()
    classes = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    if name not in classes:
        raise ValueError(f"unknown optimizer {spec.get('name')!r}; known: {', '.join(OPTIMIZERS)}")
    if "betas" in opts:
        opts["betas"] = tuple(float(b) for b in opts["betas"])
    try:
        return classes[name](list(params), **opts)
    except (TypeError, ValueError) as e:
        raise ValueError(f"bad options for optimizer {name!r} ({opts}): {e}") from None


def _normalize_spec(spec: Union[str, Mapping[str, Any]]) -> Dict[str, Any]:
    if isinstance(spec, str):
        spec = {"name": spec}
    out = dict(spec)
    out["name"] = str(out.get("name", "")).strip().lower()
    if "betas" in out:
        out["betas"] = [float(b) for b in out["betas"]]
    return out


class AggregatorCore:
    """The aggregator's state machine without the network (the gRPC service wraps it).

    Args:
        params: initial parameters, a mapping name -> tensor/array (e.g. the trainable
            entries of ``model.state_dict()``) or an ``nn.Module`` (its trainable
            parameters); converted to float32. May be None when ``checkpoint_dir`` holds a
            checkpoint to resume from.
        optimizer_spec: e.g. ``{"name": "adam", "lr": 0.01}`` (see :func:`build_optimizer`).
        scheme: ``"coded"``, ``"wait_all"`` or ``"ignore_stragglers"``.
        code: ``"frc"`` or ``"cyclic"`` for scheme coded; ignored (reported as
            ``"uncoded"``) for the other schemes.
        n: number of workers (= slices per global batch).
        s: failures tolerated (coded), stragglers not waited for (ignore_stragglers);
            wait_all ignores it.
        checkpoint_dir: where checkpoints go / are resumed from (None: no checkpoints).
        checkpoint_every: checkpoint every K applied steps (0: only at the end and on stop).
        max_steps: stop after this many applied steps (0/None: unlimited).
        stall_warning_s: warn (and repeat every this many seconds) when a step waited this
            long without a decodable set of replies.
        straggler_timeout_s: ignore_stragglers: apply with whatever arrived this long after
            the first reply of the step.
        code_seed: seed of the cyclic code construction.
        keep_checkpoints: how many checkpoints to keep (>= 1).
    """

    def __init__(self, params, optimizer_spec, scheme: str = "coded", code: Optional[str] = "frc",
                 n: int = 1, s: int = 0, *, checkpoint_dir=None, checkpoint_every: int = 0,
                 max_steps: Optional[int] = 0, stall_warning_s: float = 30.0,
                 straggler_timeout_s: float = 5.0, code_seed: int = 0, keep_checkpoints: int = 3,
                 stall_deadline_s: Optional[float] = None):
        if scheme not in SCHEMES:
            raise ValueError(f"unknown scheme {scheme!r}; known: {', '.join(SCHEMES)}")
        if scheme == "coded":
            if code not in CODED_KINDS:
                raise ValueError(f"scheme 'coded' needs code one of {', '.join(CODED_KINDS)}, "
                                 f"got {code!r}")
            self.code: GradientCode = make_code(code, n, s, seed=code_seed)
        else:
            if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
                raise ValueError(f"n (number of workers) must be an integer >= 1, got {n!r}")
            if isinstance(s, bool) or not isinstance(s, numbers.Integral) or not 0 <= s < n:
                raise ValueError(f"s must be an integer with 0 <= s < n={n}, got {s!r}")
            if code not in (None, "", "uncoded"):
                log.info("scheme %s is uncoded: ignoring code=%r", scheme, code)
            self.code = UncodedScheme(n)
        self.scheme = scheme
        self.code_kind = self.code.kind
        self.n, self.s = int(n), int(s)
        self.code_seed = int(code_seed)
        max_steps = int(max_steps or 0)
        checkpoint_every = int(checkpoint_every or 0)
        if max_steps < 0 or checkpoint_every < 0:
            raise ValueError("max_steps and checkpoint_every must be >= 0")
        if int(keep_checkpoints) < 1:
            raise ValueError("keep_checkpoints must be >= 1")
        if stall_warning_s <= 0 or straggler_timeout_s <= 0:
            raise ValueError("stall_warning_s and straggler_timeout_s must be > 0")
        if stall_deadline_s is not None and stall_deadline_s <= 0:
            raise ValueError("stall_deadline_s must be > 0 (or None: wait forever)")
        self.stall_deadline_s = None if stall_deadline_s is None else float(stall_deadline_s)
        #: ids of the workers that have joined (a launcher's start-up check)
        self.joined: set = set()
        #: why the run stopped without finishing (the stall deadline passed), else None
        self.failure: Optional[str] = None
        self.max_steps = max_steps
        self.checkpoint_every = checkpoint_every
        self.keep_checkpoints = int(keep_checkpoints)
        self.stall_warning_s = float(stall_warning_s)
        self.straggler_timeout_s = float(straggler_timeout_s)
        self.optimizer_spec = _normalize_spec(optimizer_spec)
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None

        given = _as_param_tensors(params) if params is not None else None
        ckpt, ckpt_path = self._find_checkpoint()
        if ckpt is not None:
            self._check_config(ckpt, ckpt_path, given)
            tensors = _as_param_tensors(ckpt["params"])
        elif given is not None:
            tensors = given
        else:
            where = f" and {self.checkpoint_dir} holds no checkpoint" if self.checkpoint_dir else ""
            raise ValueError(f"no initial parameters given{where}")

        self.params: "OrderedDict[str, torch.nn.Parameter]" = OrderedDict(
            (k, torch.nn.Parameter(v)) for k, v in tensors.items())
        self.names: Tuple[str, ...] = tuple(self.params)
        self.shapes: Tuple[Tuple[int, ...], ...] = tuple(tuple(p.shape) for p in self.params.values())
        self._sizes = [p.numel() for p in self.params.values()]
        self.num_elements = int(sum(self._sizes))
        self.optimizer = build_optimizer(self.params.values(), self.optimizer_spec)
        self.step = 0
        self.last_loss: Optional[float] = None
        if ckpt is not None:
            try:
                self.optimizer.load_state_dict(ckpt["optimizer"])
            except (ValueError, KeyError, RuntimeError) as e:
                raise ValueError(f"{ckpt_path}: cannot restore the optimizer state: {e}") from None
            self.step = int(ckpt["step"])
            self.last_loss = ckpt.get("last_loss")
            log.info("aggregator resuming from checkpoint %s at step %d (%s, n=%d, s=%d)",
                     ckpt_path, self.step, self._describe(), self.n, self.s)

        self.cond = threading.Condition()
        self.replies: Dict[int, np.ndarray] = {}
        self.dropped_late = 0
        self.closing = False
        self.finished = threading.Event()  # done or closed
        self.last_ckpt_step: Optional[int] = self.step if ckpt is not None else None
        self._reset_step_clock()
        self._publish()
        self._watch_stop = threading.Event()
        self._watcher: Optional[threading.Thread] = None
        if self.done:
            log.info("aggregator: step %d already reached max_steps=%d", self.step, self.max_steps)
            self.finished.set()

    # ------------------------------------------------------------------ setup
    def _describe(self) -> str:
        return f"scheme {self.scheme}" + (f", code {self.code_kind}" if self.scheme == "coded" else "")

    def _config(self) -> Dict[str, Any]:
        return {"scheme": self.scheme, "code": self.code_kind, "n": self.n, "s": self.s,
                "code_seed": self.code_seed, "optimizer": dict(self.optimizer_spec)}

    def _find_checkpoint(self):
        if self.checkpoint_dir is None:
            return None, None
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        for _step, path in reversed(list_checkpoints(self.checkpoint_dir)):
            try:
                return load_checkpoint(path), path
            except Exception as e:  # noqa: BLE001 - fall back to an older one
                log.warning("cannot read checkpoint %s (%s); trying an older one", path, e)
        return None, None

    def _check_config(self, ckpt, path, given) -> None:
        cfg = ckpt.get("config", {})
        mine = self._config()
        keys = ["scheme", "code", "n", "s"] + (["code_seed"] if self.code_kind == "cyclic" else [])
        bad = [f"{k}={cfg.get(k)!r} (now {mine[k]!r})" for k in keys if cfg.get(k) != mine[k]]
        old_opt = (cfg.get("optimizer") or {}).get("name")
        if old_opt != self.optimizer_spec["name"]:
            bad.append(f"optimizer {old_opt!r} (now {self.optimizer_spec['name']!r})")
        if bad:
            raise ValueError(f"checkpoint {path} belongs to a different run: {', '.join(bad)}; use "
                             f"the same settings or another checkpoint directory")
        if cfg.get("optimizer") != self.optimizer_spec:
            log.warning("checkpoint %s was written with optimizer %s, now %s; the checkpoint's "
                        "hyperparameters win", path, cfg.get("optimizer"), self.optimizer_spec)
        if given is not None:
            old = [(k, tuple(v.shape)) for k, v in ckpt["params"].items()]
            new = [(k, tuple(v.shape)) for k, v in given.items()]
            if old != new:
                raise ValueError(f"checkpoint {path} holds parameters {old}, but the given "
                                 f"parameters are {new}")

    # ------------------------------------------------------------------ state
    @property
    def done(self) -> bool:
        """True once ``max_steps`` updates are applied."""
        return bool(self.max_steps) and self.step >= self.max_steps

    def _reset_step_clock(self) -> None:
        self.step_started = time.monotonic()
        self.first_reply_at: Optional[float] = None
        self.last_warned: Optional[float] = None

    def _publish(self) -> None:
        flat = flatten_params({k: p.detach() for k, p in self.params.items()})
        self.param_bytes = flat.astype("<f4", copy=False).tobytes()

    def params_numpy(self) -> "OrderedDict[str, np.ndarray]":
        """Copies of the current parameters (name -> float32 array)."""
        with self.cond:
            return OrderedDict((k, p.detach().numpy().copy()) for k, p in self.params.items())

    # ------------------------------------------------------------------ RPC logic
    def _worker(self, worker_id: int) -> int:
        w = int(worker_id)
        if not 0 <= w < self.n:
            raise ValueError(f"unknown worker id {w}: this aggregator has workers 0..{self.n - 1}")
        return w

    def join(self, worker_id: int) -> apb.JoinResponse:
        """Join: the worker's slices, coefficients and the run's configuration."""
        w = self._worker(worker_id)
        coeffs = self.code.coefficients(w)
        with self.cond:
            if self.closing:
                raise ShuttingDown("aggregator is shutting down")
            step, done = self.step, self.done
            self.joined.add(w)
        log.info("worker %d joined at step %d (slices %s)", w, step, list(coeffs))
        return apb.JoinResponse(
            step=step, n=self.n, s=self.s, scheme=self.scheme, code=self.code_kind,
            slices=list(coeffs), coefficients=list(coeffs.values()),
            params=[apb.ParamSpec(name=k, shape=list(sh)) for k, sh in zip(self.names, self.shapes)],
            num_elements=self.num_elements, max_steps=self.max_steps, done=done,
            code_seed=self.code_seed)

    def _parse_vector(self, worker: int, data: bytes, dtype: str) -> np.ndarray:
        name = dtype or "float32"
        dt = _WIRE_DTYPES.get(name)
        if dt is None:
            raise ValueError(f"push from worker {worker}: dtype {dtype!r} is not supported "
                             f"(float32 or float64)")
        want = self.num_elements + 1
        if len(data) != want * dt.itemsize:
            raise ValueError(f"push from worker {worker}: expected {want} {name} entries "
                             f"({self.num_elements} parameter elements + 1 loss) = "
                             f"{want * dt.itemsize} bytes, got {len(data)} bytes")
        vec = np.frombuffer(data, dtype=dt)
        finite = np.isfinite(vec)
        if not finite.all():
            bad = np.flatnonzero(~finite)
            raise ValueError(f"push from worker {worker}: the coded vector holds NaN or inf at "
                             f"{len(bad)} positions (first {bad[:5].tolist()}); not accepted")
        return vec if vec.dtype.isnative else vec.astype(vec.dtype.newbyteorder("="))

    def push(self, step: int, worker_id: int, data: bytes, dtype: str = "float32"
             ) -> Tuple[bool, int, str]:
        """A coded vector of ``worker_id`` for ``step``. Returns (accepted, current step after
        the push, reason); ValueError for bad requests, StepAheadError for a step ahead."""
        w = self._worker(worker_id)
        step = int(step)
        if step < 0:
            raise ValueError(f"push from worker {w}: negative step {step}")
        vec = self._parse_vector(w, data, dtype)
        with self.cond:
            if self.closing:
                raise ShuttingDown("aggregator is shutting down")
            if self.done:
                self.dropped_late += 1
                return False, self.step, f"training finished at step {self.step}"
            if step < self.step:
                self.dropped_late += 1
                log.debug("dropping late push of worker %d for step %d (now at step %d)",
                          w, step, self.step)
                return False, self.step, f"step {step} was already applied (now at step {self.step})"
            if step > self.step:
                raise StepAheadError(f"push from worker {w} for step {step}, but the aggregator is at "
                                  f"step {self.step} (it may have restarted from a checkpoint; "
                                  f"pull the current parameters)", self.step)
            if w in self.replies:
                return True, self.step, "duplicate (the first push of this step is kept)"
            self.replies[w] = vec
            if self.first_reply_at is None:
                self.first_reply_at = time.monotonic()
            self._try_apply()
            return True, self.step, ""

    def _try_apply(self, force: bool = False) -> bool:
        got = sorted(self.replies)
        if not got:
            return False
        if self.scheme == "coded":
            if not self.code.can_decode(got):
                return False
            used = self.code.decoding_set(got)
            decoded = self.code.decode(self.replies)
        elif self.scheme == "wait_all":
            if len(got) < self.n:
                return False
            used = tuple(got)
            decoded = self.code.decode(self.replies)
        else:
            if len(got) < self.n - self.s and not force:
                return False
            used = tuple(got)
            decoded = combine({i: 1.0 for i in got}, self.replies)
            if len(got) < self.n:
                decoded *= self.n / len(got)
        return self._apply(decoded, used)

    def _apply(self, decoded: np.ndarray, used: Sequence[int]) -> bool:
        if not np.isfinite(decoded).all():
            log.error("step %d: the decoded gradient from workers %s is not finite; not applied",
                      self.step, list(used))
            return False
        off = 0
        for p, size, shape in zip(self.params.values(), self._sizes, self.shapes):
            p.grad = torch.from_numpy(decoded[off:off + size].astype(np.float32).reshape(shape))
            off += size
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.last_loss = float(decoded[off])
        missing = sorted(set(range(self.n)) - set(self.replies))
        log.debug("step %d applied from workers %s (received %s, missing %s), loss %.6g",
                  self.step, list(used), sorted(self.replies), missing, self.last_loss)
        self.step += 1
        self.replies = {}
        self._reset_step_clock()
        self._publish()
        if self.checkpoint_every and self.step % self.checkpoint_every == 0:
            self._checkpoint()
        if self.done:
            if self.last_ckpt_step != self.step:
                self._checkpoint()
            log.info("aggregator done: %d steps applied, last loss %.6g", self.step, self.last_loss)
            self.finished.set()
        self.cond.notify_all()
        return True

    def pull(self, step: int, worker_id: Optional[int], timeout: float) -> apb.PullResponse:
        """Wait up to ``timeout`` s (capped at MAX_PULL_WAIT) for the parameters of ``step``
        (see the module doc for the early return to a worker whose push was lost)."""
        w = self._worker(worker_id) if worker_id is not None else None
        step = int(step)
        if not math.isfinite(timeout) or timeout < 0:
            timeout = 0.0
        deadline = time.monotonic() + min(float(timeout), MAX_PULL_WAIT)
        with self.cond:
            while True:
                if self.closing:
                    raise ShuttingDown("aggregator is shutting down")
                if step < 0 or self.step >= step or self.done:
                    break
                if w is not None and w not in self.replies:
                    log.debug("worker %d asks for step %d but has no reply for the current step "
                              "%d: sending it step %d's parameters", w, step, self.step, self.step)
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return apb.PullResponse(ready=False, step=self.step, done=False)
                self.cond.wait(remaining)
            return apb.PullResponse(ready=True, step=self.step, data=self.param_bytes, done=self.done)

    def status(self) -> apb.StatusResponse:
        """Step, workers with/without a reply for it, last loss, late drops, config."""
        with self.cond:
            got = sorted(self.replies)
            return apb.StatusResponse(
                step=self.step, received=got, missing=sorted(set(range(self.n)) - set(got)),
                has_loss=self.last_loss is not None,
                last_loss=self.last_loss if self.last_loss is not None else float("nan"),
                dropped_late=self.dropped_late, done=self.done, max_steps=self.max_steps,
                n=self.n, s=self.s, scheme=self.scheme, code=self.code_kind,
                waiting_seconds=time.monotonic() - self.step_started)

    # ------------------------------------------------------------------ watching, checkpoints
    def start_watch(self) -> None:
        """Start the background thread that warns about stalls and applies ignore_stragglers
        steps after the straggler timeout."""
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, name="graphplat-agg-watch",
                                             daemon=True)
            self._watcher.start()

    def _watch(self) -> None:
        period = max(0.01, min(1.0, self.stall_warning_s / 4, self.straggler_timeout_s / 4,
                               (self.stall_deadline_s or 4.0) / 4))
        while not self._watch_stop.wait(period):
            try:
                with self.cond:
                    self._check_stall()
            except Exception:  # noqa: BLE001 - keep watching
                log.exception("aggregator watcher failed")

    def _check_stall(self) -> None:
        if self.closing or self.done or self.failure is not None:
            return
        now = time.monotonic()
        got = sorted(self.replies)
        missing = sorted(set(range(self.n)) - set(got))
        if (self.scheme == "ignore_stragglers" and got and self.first_reply_at is not None
                and now - self.first_reply_at >= self.straggler_timeout_s):
            log.info("step %d: straggler timeout (%.1fs): applying the %d replies of workers %s "
                     "rescaled by n/received (inexact), ignoring workers %s", self.step,
                     self.straggler_timeout_s, len(got), got, missing)
            self._try_apply(force=True)
            return
        waited = now - self.step_started
        if waited >= self.stall_warning_s and (
                self.last_warned is None or now - self.last_warned >= self.stall_warning_s):
            self.last_warned = now
            if self.scheme == "ignore_stragglers":
                log.warning("aggregator step %d: waited %.1fs with no reply at all; missing "
                            "workers %s; still waiting", self.step, waited, missing)
                return
            tolerance = ("wait_all tolerates no missing worker" if self.scheme == "wait_all"
                         else f"more than s={self.s} workers are gone or slow")
            if self.stall_deadline_s is not None and waited >= self.stall_deadline_s:
                self._fail(waited, got, missing, tolerance)
                return
            log.warning("aggregator step %d: waited %.1fs and the replies cannot be decoded: have "
                        "workers %s, missing workers %s; %s (%s, n=%d); not applying an inexact "
                        "gradient, still waiting", self.step, waited, got, missing, tolerance,
                        self._describe(), self.n)

    def _fail(self, waited: float, got, missing, tolerance: str) -> None:
        """Stop the run after the stall deadline: ``failure`` names the lost workers and the
        last checkpoint; waiters wake up (caller holds the lock)."""
        ckpt = latest_checkpoint(self.checkpoint_dir) if self.checkpoint_dir is not None else None
        where = (f"resume from the last checkpoint {ckpt} (step {self.last_ckpt_step})" if ckpt
                 else "no checkpoint was written (no checkpoint_dir)")
        self.failure = (f"aggregator step {self.step}: no decodable set of replies within the stall "
                        f"deadline of {self.stall_deadline_s:g}s (waited {waited:.1f}s); lost workers "
                        f"{missing}, replies from {got}; {tolerance} ({self._describe()}, n={self.n}); "
                        f"stopping: {where}")
        log.error("%s", self.failure)
        self.finished.set()
        self.cond.notify_all()

    def _checkpoint(self) -> Optional[Path]:
        """Write a checkpoint of the current state (caller holds the lock)."""
        if self.checkpoint_dir is None:
            return None
        state = {
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "step": self.step,
            "params": OrderedDict((k, p.detach().clone()) for k, p in self.params.items()),
            "optimizer": self.optimizer.state_dict(), "config": self._config(),
            "last_loss": self.last_loss, "max_steps": self.max_steps, "time": time.time(),
        }
        path = save_checkpoint(self.checkpoint_dir, self.step, state, self.keep_checkpoints)
        if path is None:
            return None
        self.last_ckpt_step = self.step
        log.info("checkpoint of step %d written to %s", self.step, path)
        return path

    def close(self) -> None:
        """Refuse further calls, wake blocked pulls, checkpoint the current step (if it is
        not checkpointed yet) and stop the watcher."""
        with self.cond:
            if not self.closing:
                self.closing = True
                if self.last_ckpt_step != self.step:
                    self._checkpoint()
                self.cond.notify_all()
        self.finished.set()
        self._watch_stop.set()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(timeout=5.0)

