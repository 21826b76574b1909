"""Training checkpoints: atomic save, read with clear errors, the training graph's
signature, and the global RNG states that make a resumed run bit-exact."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import torch

from graphplat.atomic import write_atomic
from graphplat.service import GraphService

__all__ = ["save_checkpoint", "read_checkpoint", "graph_signature", "rng_state", "set_rng_state"]


def save_checkpoint(path: Path, state: Dict[str, Any]) -> None:
    """Write ``state`` atomically (see :func:`graphplat.atomic.write_atomic`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda fh: torch.save(state, fh))


def read_checkpoint(path, fix: Optional[str] = None) -> Dict[str, Any]:
    """The dict saved in the checkpoint ``path`` (CPU tensors).

    Raises :class:`~graphplat.errors.PathNotFound` when it does not exist and
    :class:`~graphplat.errors.CheckpointError` when it is no checkpoint torch can read
    (truncated, corrupt or another program's file); ``fix`` replaces the advice given.
    """
    from graphplat.errors import CheckpointError, PathNotFound

    path = Path(path)
    fix = fix or "point at a best.pt written by `graphplat train --checkpoint-dir DIR` (DIR/seed-N/best.pt)"
    if not path.is_file():
        raise PathNotFound(f"checkpoint {path} does not exist", fix)
    try:
        state = torch.load(path, weights_only=False, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - pickle, zip and torch all have their own errors
        why = " ".join(str(e).split())[:200] or type(e).__name__
        raise CheckpointError(f"{path} is not a graphplat checkpoint, or it is truncated or corrupt "
                              f"(torch.load: {why})", fix) from e
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path} is not a graphplat checkpoint (no model weights in it)", fix)
    return state


def graph_signature(graph: GraphService, feature: Optional[str]) -> Dict[str, Any]:
    """What a checkpoint records of its training graph so that applying it to another graph
    can say what differs: node types, edge types and input widths."""
    from graphplat.models.registry import _derive

    try:
        derived = _derive(graph.schema, feature)
    except (ValueError, TypeError):
        return {}
    return {"ntypes": list(derived["ntypes"]),
            "canonical_etypes": [list(e) for e in derived["canonical_etypes"]],
            "in_feats": dict(derived["in_feats"]) if isinstance(derived["in_feats"], dict)
            else derived["in_feats"]}


def rng_state() -> Dict[str, Any]:
    """torch's and numpy's global RNG states (dropout and initialization use them)."""
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state()}


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restore :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
