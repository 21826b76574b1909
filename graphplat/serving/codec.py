"""The model service's wire format: its service name and numpy <-> ``Array`` messages."""
from __future__ import annotations

import numpy as np

from graphplat.proto import model_service_pb2 as mpb
from graphplat.storage import codec

__all__ = ["SERVICE_NAME", "to_array", "from_array", "ids_from"]

SERVICE_NAME = "graphplat.serving.v1.ModelService"


def to_array(values, dtype=None) -> mpb.Array:
    """numpy -> ``graphplat.serving.v1.Array`` (the layout of ``graphplat.v1.Array``)."""
    a = codec.to_array(values, dtype)
    return mpb.Array(dtype=a.dtype, shape=a.shape, data=a.data)


def from_array(msg: mpb.Array, name: str = "array") -> np.ndarray:
    """``Array`` -> numpy (read-only view; ValueError when malformed)."""
    return codec.from_array(msg, name=name)


def ids_from(msg: mpb.Array, name: str = "ids") -> np.ndarray:
    """A 1-D integer id array as int64 (ValueError otherwise)."""
    return codec.ids_from(msg, name)
