"""The model service's wire name. Its arrays are ``graphplat.common.Array`` messages, encoded
and decoded by :mod:`graphplat.storage.codec` (the one array codec)."""
from __future__ import annotations

__all__ = ["SERVICE_NAME"]

SERVICE_NAME = "graphplat.serving.v1.ModelService"
