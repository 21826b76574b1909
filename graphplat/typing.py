"""Type aliases shared across graphplat (defined once here, imported everywhere else)."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Tuple, Union

if TYPE_CHECKING:
    from graphplat.schema import EdgeType

__all__ = ["Canonical", "EdgeTypeKey", "EdgeKey", "PathLike"]

# A canonical edge type: (source node type, relation, destination node type).
Canonical = Tuple[str, str, str]
# An edge type as callers may name it: the relation alone (when unambiguous) or canonical.
EdgeTypeKey = Union[str, Canonical]
# EdgeTypeKey or a schema EdgeType.
EdgeKey = Union[str, Canonical, "EdgeType"]
PathLike = Union[str, os.PathLike]
