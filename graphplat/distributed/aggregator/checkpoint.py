"""Aggregator checkpoints: ``ckpt-<step>.pt`` files (params, optimizer state, step, run
config, last loss) read with ``torch.load(weights_only=True)``, written atomically, newest
``keep`` kept; and initial parameters from a checkpoint or a torch state_dict.
"""
from __future__ import annotations

import logging
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch

from graphplat.atomic import write_atomic

log = logging.getLogger("graphplat.aggregator")

__all__ = ["checkpoint_path", "list_checkpoints", "latest_checkpoint", "load_checkpoint",
           "load_initial_params", "save_checkpoint"]

CHECKPOINT_FORMAT = "graphplat-aggregator-checkpoint"
CHECKPOINT_VERSION = 1
_CKPT_RE = re.compile(r"^ckpt-(\d+)\.pt$")


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


def save_checkpoint(directory: Path, step: int, state: Mapping[str, Any], keep: int
                    ) -> Optional[Path]:
    """Write ``state`` as the checkpoint of ``step`` in ``directory`` (temporary file, fsync,
    rename) and delete all but the newest ``keep``. Returns the path, or None (logged) when
    it cannot be written."""
    path = checkpoint_path(directory, step)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda fh: torch.save(state, fh))
    except OSError as e:
        log.error("cannot write checkpoint %s: %s (training goes on)", path, e)
        return None
    for _step, old in list_checkpoints(directory)[:-keep]:
        try:
            old.unlink()
        except OSError:
            pass
    return path
