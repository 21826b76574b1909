"""graphplat: a partitioned graph store, fast C++ samplers and fault-tolerant GNN training.

The C++ core lives in :mod:`graphplat._core` (CSR graphs, id maps, samplers, walks,
relabeling), documented in ``graphplat/_core.pyi``.
"""
__version__ = "0.1.0"

from graphplat import _core  # noqa: F401  (fails early with a clear error if unbuilt)
from graphplat.schema import EdgeType, FeatureSpec, GraphSchema, NodeType, SchemaError

__all__ = ["__version__", "GraphSchema", "NodeType", "EdgeType", "FeatureSpec", "SchemaError"]
