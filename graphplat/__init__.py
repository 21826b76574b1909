"""graphplat: a partitioned graph store, fast C++ samplers and fault-tolerant GNN training.

The C++ core lives in :mod:`graphplat._core` (CSR graphs, id maps, samplers, walks,
relabeling), documented in ``graphplat/_core.pyi``.
"""
__version__ = "0.1.0"

from graphplat import _core  # noqa: F401  (fails early with a clear error if unbuilt)
from graphplat.errors import SchemaError
from graphplat.schema import EdgeType, FeatureSpec, GraphSchema, NodeType
from graphplat.service import GraphService, NeighborSample
from graphplat.storage.local import LocalGraph, open_graph

__all__ = ["__version__", "GraphSchema", "NodeType", "EdgeType", "FeatureSpec", "SchemaError",
           "GraphService", "NeighborSample", "LocalGraph", "open_graph",
           "connect", "RemoteGraph", "PartitionUnavailable", "load_model"]

_LAZY = {  # imported on first use, so `import graphplat` does not load gRPC
    "connect": ("graphplat.storage.remote", "connect"),
    "RemoteGraph": ("graphplat.storage.remote", "RemoteGraph"),
    "PartitionUnavailable": ("graphplat.errors", "PartitionUnavailable"),
    "load_model": ("graphplat.inference.model", "load_model"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'graphplat' has no attribute {name!r}")
