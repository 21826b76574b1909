"""Compact formats for float32 features on the wire and in the loaders' cache (opt-in).

``float16`` (IEEE half): relative error at most 2^-11 (4.9e-4) for magnitudes in
[6.1e-5, 65504]; smaller magnitudes lose relative precision (subnormals, then 0) and larger
ones become +-inf. ``bfloat16`` (float32's top 16 bits, rounded to nearest even): relative
error at most 2^-8 (3.9e-3) over float32's whole range; NaN stays NaN. Either halves the
bytes moved and cached. Rounding is the same function wherever it happens (server, client,
in process), so answers stay identical across LocalGraph and RemoteGraph.
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from graphplat import _core

FORMATS = ("float16", "bfloat16")
#: numpy dtype that carries each format (bfloat16 travels as its uint16 bit pattern).
CARRIER = {"float16": np.dtype(np.float16), "bfloat16": np.dtype(np.uint16)}
#: Largest relative rounding error of each format (for normal numbers).
RELATIVE_ERROR = {"float16": 2.0 ** -11, "bfloat16": 2.0 ** -8}


def check(fmt: Optional[str]) -> Optional[str]:
    """``fmt`` if it is None or a known format; ValueError otherwise."""
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"feature_dtype must be one of {FORMATS} or None, got {fmt!r}")
    return fmt


def applies(dtype, fmt: Optional[str]) -> bool:
    """Whether features of ``dtype`` travel in ``fmt`` (only float32 ones are compacted)."""
    return fmt is not None and np.dtype(dtype) == np.float32


def carrier_dtype(dtype, fmt: Optional[str]) -> np.dtype:
    """The dtype features of ``dtype`` travel (and are cached) in with format ``fmt``."""
    return CARRIER[fmt] if applies(dtype, fmt) else np.dtype(dtype)


def encode(arr: np.ndarray, fmt: str) -> np.ndarray:
    """float32 ``arr`` in ``fmt``'s carrier dtype (rounded to nearest even, in parallel in
    C++: bit-identical to numpy's ``astype(float16)`` and torch's ``to(bfloat16)``, whose
    every NaN becomes 0x7FC0)."""
    return _core.encode_half(np.ascontiguousarray(arr, dtype=np.float32), fmt)


def to_wire(arr: np.ndarray, fmt: Optional[str]) -> np.ndarray:
    """``arr`` as it travels in format ``fmt``: encoded when it is float32 and ``fmt`` is
    set, else ``arr`` itself."""
    return encode(arr, fmt) if applies(arr.dtype, fmt) else arr


def decode(arr: np.ndarray, fmt: str, out: Optional[np.ndarray] = None) -> np.ndarray:
    """float32 values of ``arr`` (``fmt``'s carrier dtype), into ``out`` (C-contiguous
    float32 of ``arr``'s shape) when given."""
    return _core.decode_half(np.ascontiguousarray(arr, dtype=CARRIER[fmt]), fmt, out=out)


def deliver_features(arrays: Dict[str, np.ndarray], out: Optional[Dict[str, np.ndarray]] = None,
                     wire_dtype: Optional[str] = None) -> Dict[str, np.ndarray]:
    """What ``node_features(..., out=, wire_dtype=)`` returns, from freshly made ``arrays``:
    float32 ones in ``wire_dtype`` when given, copied into
    ``out``'s arrays when given (for GraphService wrappers that build rows themselves)."""
    check(wire_dtype)
    got = {k: to_wire(v, wire_dtype) for k, v in arrays.items()}
    for k, dst in (out or {}).items():
        if k in got:
            dst[...] = got[k]
            got[k] = dst
    return got
