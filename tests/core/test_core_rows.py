"""_core.take_rows / _core.scatter_rows against numpy fancy indexing."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphplat._core as core

SHAPES = [(50,), (50, 3), (50, 2, 5)]
DTYPES = [np.float32, np.float64, np.int64, np.int8, np.bool_]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_take_and_scatter_equal_numpy(shape, dtype, threads):
    rng = np.random.default_rng(len(shape) * 10 + threads)
    src = (rng.random(shape) * 100).astype(dtype)
    rows = rng.integers(0, shape[0], 200)
    np.testing.assert_array_equal(core.take_rows(src, rows, num_threads=threads), src[rows])
    perm = rng.permutation(shape[0])
    out = np.zeros((shape[0] + 7,) + shape[1:], dtype)
    got = core.scatter_rows(src, perm, out, num_threads=threads)
    assert got is out
    expect = np.zeros_like(out)
    expect[perm] = src
    np.testing.assert_array_equal(out, expect)


def test_empty_inputs():
    src = np.ones((4, 3), np.float32)
    assert core.take_rows(src, np.zeros(0, np.int64)).shape == (0, 3)
    out = np.zeros((2, 3), np.float32)
    core.scatter_rows(np.zeros((0, 3), np.float32), np.zeros(0, np.int64), out)
    assert not out.any()


def test_scatter_errors_name_the_problem_and_write_nothing():
    src = np.ones((3, 2), np.float32)
    out = np.zeros((4, 2), np.float32)
    with pytest.raises(IndexError, match=r"row 4 .*\[0, 4\)"):
        core.scatter_rows(src, np.array([0, 1, 4]), out)
    assert not out.any()  # validated before any copy
    with pytest.raises(IndexError, match="-1"):
        core.scatter_rows(src, np.array([0, -1, 2]), out)
    with pytest.raises(ValueError, match="3 rows"):
        core.scatter_rows(src, np.array([0, 1]), out)
    with pytest.raises(ValueError, match="dtype"):
        core.scatter_rows(src, np.array([0, 1, 2]), out.astype(np.float64))
    with pytest.raises(ValueError, match="row shape"):
        core.scatter_rows(src, np.array([0, 1, 2]), np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match="contiguous"):
        core.scatter_rows(src, np.array([0, 1, 2]), np.zeros((4, 4), np.float32)[:, ::2])
    with pytest.raises(ValueError, match="overlap"):
        core.scatter_rows(src, np.array([2, 1, 0]), src)
    ro = np.zeros((4, 2), np.float32)
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="writable"):
        core.scatter_rows(src, np.array([0, 1, 2]), ro)
    with pytest.raises(ValueError, match="numpy array"):
        core.scatter_rows(src, np.array([0, 1, 2]), [[0, 0]] * 4)
    with pytest.raises(ValueError, match="rows"):
        core.scatter_rows(src, np.array([0.0, 1.0, 2.0]), out)


def test_take_rows_errors():
    src = np.ones((3, 2), np.float32)
    with pytest.raises(IndexError, match="3"):
        core.take_rows(src, np.array([0, 3]))
    with pytest.raises(ValueError, match="contiguous"):
        core.take_rows(np.ones((4, 4), np.float32)[:, ::2], np.array([0]))
    with pytest.raises(ValueError, match="numpy array"):
        core.take_rows([[1.0]], np.array([0]))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 40), width=st.integers(1, 5), k=st.integers(0, 60), seed=st.integers(0, 2**31),
       threads=st.integers(1, 4))
def test_fuzz_take_then_scatter_round_trip(n, width, k, seed, threads):
    rng = np.random.default_rng(seed)
    src = rng.random((n, width)).astype(np.float32)
    rows = rng.integers(-3, n + 3, k)
    if n == 0 or ((rows >= 0) & (rows < n)).all():
        taken = core.take_rows(src, rows, num_threads=threads) if n else None
        if taken is not None:
            np.testing.assert_array_equal(taken, src[rows])
            distinct = np.unique(rows)
            back = np.zeros_like(src)
            core.scatter_rows(core.take_rows(src, distinct), distinct, back, num_threads=threads)
            np.testing.assert_array_equal(back[distinct], src[distinct])
    else:
        with pytest.raises(IndexError):
            core.take_rows(src, rows, num_threads=threads)
        with pytest.raises(IndexError):
            core.scatter_rows(np.zeros((k, width), np.float32), rows, np.zeros_like(src), num_threads=threads)


@pytest.mark.parametrize("dtype", [object, np.dtype([("a", np.int64), ("b", object)])])
def test_object_dtypes_are_refused(dtype):
    # Raw byte copies of object references skip their reference counts: the interpreter
    # crashed when both arrays were freed.
    src = np.empty(3, dtype=dtype)
    with pytest.raises(ValueError, match="source holds Python objects"):
        core.take_rows(src, np.array([0, 1, 0]))
    with pytest.raises(ValueError, match="source holds Python objects"):
        core.scatter_rows(src, np.array([2, 1, 0]), np.empty(3, dtype=dtype))
