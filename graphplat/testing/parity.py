"""Comparing two GraphServices call by call (LocalGraph vs RemoteGraph): values must be
equal to the last dtype and shape, errors equal in type and message."""
from __future__ import annotations

import numpy as np

from graphplat.service import NeighborSample


def outcome(fn, graph):
    """("ok", value) or ("error", exception type, message) of fn(graph)."""
    try:
        return ("ok", fn(graph))
    except Exception as e:  # noqa: BLE001
        return ("error", type(e), str(e))


def assert_same(a, b, where="result"):
    """Recursive exact equality of samples, arrays (dtype and shape too), dicts and tuples."""
    if isinstance(a, NeighborSample):
        assert isinstance(b, NeighborSample), where
        for f in ("counts", "neighbors", "eids"):
            assert_same(getattr(a, f), getattr(b, f), f"{where}.{f}")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape, \
            f"{where}: {getattr(b, 'dtype', type(b))} {getattr(b, 'shape', '')} != {a.dtype} {a.shape}"
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(b)} != {list(a)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (tuple, list)):
        assert type(a) is type(b) and len(a) == len(b), f"{where}: {b!r} != {a!r}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {b!r} != {a!r}"


def same_outcome(g, ref, fn, where=""):
    """fn(g) must equal fn(ref): the same value, or the same exception type and message.
    Returns fn(g)'s outcome tuple."""
    want, got = outcome(fn, ref), outcome(fn, g)
    if want[0] == "error" or got[0] == "error":
        assert got == want, f"{where}: {got} != {want}"
    else:
        assert_same(want[1], got[1], where or "result")
    return got
