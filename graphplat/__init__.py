"""graphplat: a partitioned graph store, fast C++ samplers and fault-tolerant GNN training.

The C++ core lives in :mod:`graphplat._core` (CSR graphs, id maps, samplers, walks,
relabeling); :mod:`graphplat.core` re-exports it with documentation.
"""
__version__ = "0.1.0"

from graphplat import _core  # noqa: F401  (fails early with a clear error if unbuilt)

__all__ = ["__version__"]
