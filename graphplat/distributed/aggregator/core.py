"""The gradient aggregator: a gRPC service for fault-tolerant synchronous training.

One aggregator owns the model parameters (an ordered dict name -> float32 tensor) and a
torch optimizer; ``n`` workers compute gradients. Each step's global batch is cut into ``n``
slices and the workers send *coded* gradients (see :mod:`graphplat.distributed.coding`), so the
aggregator recovers the exact full-batch gradient from any ``n - s`` of them (Tandon et al.,
"Gradient Coding", ICML 2017). Service ``graphplat.aggregator.v1.Aggregator``
(``proto/aggregator.proto``):

* ``Join(worker_id)`` -> current step, ``n``, ``s``, scheme, code kind, the slices this
  worker computes and its coefficients (its row of ``B``), parameter names and shapes.
* ``PullParameters(step, timeout, worker_id)`` blocks until the parameters of ``step``
  exist (step ``t``'s parameters are those after ``t`` optimizer updates) and returns the
  *current* step's parameters (one flat little-endian float32 byte string in Join's order)
  with that step number, which may be later than asked for (a worker that fell behind skips
  ahead). It returns early, with the current step, when the calling worker is owed a push
  for the current step (the aggregator holds no reply of this worker for the current step
  but the worker asks for a later one: its push was lost, e.g. in an aggregator restart).
  Once ``max_steps`` updates are applied every pull returns the final parameters with
  ``done`` set.
* ``PushGradient(step, worker_id, data)``: the coded vector of the worker for ``step``: the
  coded gradient (parameter elements in Join's order) with the coded loss appended as one
  trailing element, float32 or float64 little-endian. A push for a past step is dropped
  (``accepted=false``, counted in Status); a push for a future step is FAILED_PRECONDITION;
  an unknown worker, a wrong length or dtype and NaN/inf are INVALID_ARGUMENT. A repeated
  push of a worker for the current step keeps the first (a retry is harmless).
* ``Status`` -> step, workers with/without a reply for it, last decoded loss, late drops.

The worker loop (what :class:`AggregatorClient` is for)::

    client = AggregatorClient(address)
    info = client.join(w)
    step = info.step
    while True:
        got = client.pull(step, worker_id=w)        # params of got.step (>= step, or the
        if got.done:                                # current step if our push was lost)
            break
        params = info.unflatten(got.params)
        vectors = {}
        for j in info.slices:                       # all randomness from (seed, step, j)
            loss_j = mean_loss(slice j of step got.step) * (len(slice j) / global_batch)
            grads_j = d loss_j / d params
            vectors[j] = gradient_vector(grads_j, loss_j)   # float64, loss last
        try:
            client.push(got.step, w, info.encode(vectors))
        except StepAheadError:                      # aggregator restarted from an older
            pass                                    # checkpoint: the next pull says where
        step = got.step + 1

**Scaling.** The decoded vector is the *sum* over the ``n`` slices. Workers scale each
slice's mean loss by ``slice_size / global_batch_size`` before differentiating, so the sum is
the gradient (and the loss) of the mean over the global batch, the same as one process
computing the whole batch.

**Schemes.**

* ``"coded"`` with a ``"frc"`` or ``"cyclic"`` code: the step is applied as soon as the
  replies received decode (float64), using a minimal decodable subset chosen from the set of
  repliers only. FRC decoding is a plain sum (exact); cyclic decoding solves least squares
  (exact to ~1e-12 relative when workers send float64 vectors; send float64 with cyclic
  codes). A gradient that cannot be decoded exactly is never applied: after
  ``stall_warning_s`` without a decodable set the aggregator logs a warning naming the
  missing workers (more than ``s`` are gone or slow) and keeps waiting.
* ``"wait_all"``: uncoded, worker ``i`` computes slice ``i``; waits for all ``n``.
* ``"ignore_stragglers"``: uncoded; as soon as ``n - s`` replies have arrived, or
  ``straggler_timeout_s`` after the first reply of the step with at least one reply, it
  applies the sum of the received slices rescaled by ``n / received``. This is **inexact**
  by design (an estimate from a subset of slices, biased towards the fast workers' slices,
  not the full-batch gradient) - the baseline that gradient coding improves on.

**Checkpoints.** With ``checkpoint_dir`` the aggregator writes ``ckpt-<step>.pt`` (params,
optimizer ``state_dict``, step, scheme/code config, last loss) every ``checkpoint_every``
steps, when ``max_steps`` is reached and on ``stop()``; each is written to a temporary file,
fsynced and renamed into place (``os.replace``), and only the newest ``keep_checkpoints``
are kept (written synchronously while the step is applied, so the push that completed the
step waits for the fsync). An aggregator started on a directory holding checkpoints resumes
from the latest
(logged); its scheme, code, ``n``, ``s`` and parameter names/shapes must match. Replies of
the step in progress are not checkpointed: after a restart the workers are asked for them
again (see PullParameters above), so a restarted run ends with the same parameters as an
uninterrupted one.

Checkpoints are read with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import logging
import math
import numbers
import random
import re
import threading
import time
from collections import OrderedDict
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import grpc
import numpy as np
import torch

from graphplat.atomic import write_atomic
from graphplat.distributed.coding import GradientCode, UncodedScheme, combine, make_code
from graphplat.errors import AggregatorError, AggregatorUnavailable, ShuttingDown, StepAheadError
from graphplat.proto import aggregator_pb2 as apb
from graphplat.proto import aggregator_pb2_grpc as apb_grpc
from graphplat.rpc import abort_call, add_port, server_options, status_of

log = logging.getLogger("graphplat.aggregator")

__all__ = ["AggregatorCore", "AggregatorServer", "AggregatorClient", "JoinInfo", "PushResult",
           "Pulled", "AggregatorStatus", "serve_aggregator", "build_optimizer", "flatten_params",
           "unflatten", "gradient_vector", "list_checkpoints", "latest_checkpoint",
           "load_checkpoint", "load_initial_params"]

SERVICE_NAME = "graphplat.aggregator.v1.Aggregator"
SCHEMES: Tuple[str, ...] = ("coded", "wait_all", "ignore_stragglers")
CODED_KINDS: Tuple[str, ...] = ("frc", "cyclic")
OPTIMIZERS: Tuple[str, ...] = ("sgd", "adam", "adamw")
CHECKPOINT_FORMAT = "graphplat-aggregator-checkpoint"
CHECKPOINT_VERSION = 1
STEP_KEY = "graphplat-agg-step"
#: longest a single PullParameters call waits on the server (the client polls again).
MAX_PULL_WAIT = 30.0
_WIRE_DTYPES = {"float32": np.dtype("<f4"), "float64": np.dtype("<f8")}
_CKPT_RE = re.compile(r"^ckpt-(\d+)\.pt$")


# ============================================================================ helpers

def _to_numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _as_param_tensors(params) -> "OrderedDict[str, torch.Tensor]":
    """Mapping name -> array/tensor (or an nn.Module: its trainable parameters) ->
    ordered dict of contiguous float32 CPU tensors (copies)."""
    if isinstance(params, torch.nn.Module):
        items = [(k, v) for k, v in params.named_parameters() if v.requires_grad]
    elif isinstance(params, Mapping):
        items = list(params.items())
    else:
        raise TypeError(f"params must be a mapping name -> tensor/array or a torch.nn.Module, "
                        f"got {type(params).__name__}")
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for name, value in items:
        t = value.detach() if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
        if not t.is_floating_point():
            raise ValueError(f"parameter {name!r} has dtype {t.dtype}; only floating-point "
                             f"parameters can be trained (leave buffers/counters out)")
        t = t.to(device="cpu", dtype=torch.float32).clone().contiguous()
        if not torch.isfinite(t).all():
            raise ValueError(f"parameter {name!r} holds NaN or inf")
        out[str(name)] = t
    if not out:
        raise ValueError("no parameters given")
    return out


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


# ============================================================================ checkpoints

def checkpoint_path(directory: Union[str, Path], step: int) -> Path:
    """Path of the checkpoint of ``step`` in ``directory``."""
    return Path(directory) / f"ckpt-{int(step):010d}.pt"


def list_checkpoints(directory: Union[str, Path]) -> List[Tuple[int, Path]]:
    """``[(step, path)]`` of the checkpoints in ``directory``, oldest first (empty when the
    directory does not exist)."""
    d = Path(directory)
    if not d.is_dir():
        return []
    found = []
    for p in d.iterdir():
        m = _CKPT_RE.match(p.name)
        if m and p.is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(directory: Union[str, Path]) -> Optional[Path]:
    """Path of the newest checkpoint in ``directory``, or None."""
    found = list_checkpoints(directory)
    return found[-1][1] if found else None


def load_checkpoint(path: Union[str, Path]) -> Dict[str, Any]:
    """Read an aggregator checkpoint (``torch.load(weights_only=True)``) and check its format.
    Returns the dict with keys ``step``, ``params`` (ordered name -> tensor), ``optimizer``,
    ``config``, ``last_loss``; ValueError when the file is not an aggregator checkpoint."""
    obj = torch.load(str(path), map_location="cpu", weights_only=True)
    if not isinstance(obj, Mapping) or obj.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a graphplat aggregator checkpoint")
    if int(obj.get("version", 0)) > CHECKPOINT_VERSION:
        raise ValueError(f"{path} has checkpoint version {obj.get('version')}, this graphplat "
                         f"reads up to {CHECKPOINT_VERSION}")
    return dict(obj)


def load_initial_params(path: Union[str, Path], exclude: Optional[str] = None
                        ) -> "OrderedDict[str, torch.Tensor]":
    """Initial parameters from a file: an aggregator checkpoint (its params) or a torch
    ``.pt`` state_dict (name -> tensor; also ``{"state_dict": ...}`` / ``{"model": ...}``).
    Floating-point tensors are kept in file order, others are skipped (logged); names
    matching the regex ``exclude`` are dropped (e.g. BatchNorm buffers). Returns an ordered
    dict name -> float32 tensor; ValueError when nothing usable is in the file."""
    obj = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(obj, Mapping) and obj.get("format") == CHECKPOINT_FORMAT:
        params = OrderedDict(obj["params"])
    else:
        if isinstance(obj, Mapping):
            for key in ("state_dict", "model_state_dict", "model"):
                if isinstance(obj.get(key), Mapping):
                    obj = obj[key]
                    break
        if not isinstance(obj, Mapping):
            raise ValueError(f"{path}: expected a state_dict (mapping name -> tensor) or an "
                             f"aggregator checkpoint, got {type(obj).__name__}")
        params = OrderedDict()
        for k, v in obj.items():
            if isinstance(v, torch.Tensor) and v.is_floating_point():
                params[str(k)] = v
            else:
                log.info("%s: skipping %r (not a floating-point tensor)", path, k)
    if exclude:
        rx = re.compile(exclude)
        params = OrderedDict((k, v) for k, v in params.items() if not rx.search(k))
    if not params:
        raise ValueError(f"{path}: no floating-point parameters found")
    return _as_param_tensors(params)


# ============================================================================ core


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
        path = checkpoint_path(self.checkpoint_dir, self.step)
        try:
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
            write_atomic(path, lambda fh: torch.save(state, fh))
        except OSError as e:
            log.error("cannot write checkpoint %s: %s (training goes on)", path, e)
            return None
        self.last_ckpt_step = self.step
        for _step, old in list_checkpoints(self.checkpoint_dir)[:-self.keep_checkpoints]:
            try:
                old.unlink()
            except OSError:
                pass
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


# ============================================================================ gRPC service

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


# ============================================================================ client


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
        code, msg = err.code(), err.details() or err.code().name
        if code == grpc.StatusCode.INVALID_ARGUMENT:
            return ValueError(msg)
        if code == grpc.StatusCode.FAILED_PRECONDITION:
            step = None
            try:
                for k, v in err.trailing_metadata() or ():
                    if k == STEP_KEY:
                        step = int(v)
            except Exception:  # noqa: BLE001 - some errors carry no metadata
                pass
            return StepAheadError(msg, step)
        return AggregatorError(f"aggregator {self.address}: {method} failed with {code.name}: {msg}",
                               code)

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
