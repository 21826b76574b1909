"""graphplat._core.CSR: construction, validation, zero-copy, degrees, transpose, has_edges."""
import gc
import mmap
import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

import graphplat._core as core

I64 = np.int64


def ro(a, dtype=I64):
    a = np.ascontiguousarray(np.asarray(a, dtype=dtype))
    a.flags.writeable = False
    return a


# ----------------------------------------------------------------------- construction


def test_construct_basic_properties():
    indptr = np.array([0, 2, 2, 5], I64)
    indices = np.array([1, 3, 0, 0, 2], I64)
    csr = core.CSR(indptr, indices, num_cols=4)
    assert csr.num_rows == 3
    assert csr.num_cols == 4
    assert csr.nnz == 5
    assert csr.indptr.dtype == I64 and csr.indices.dtype == I64
    np.testing.assert_array_equal(csr.indptr, indptr)
    np.testing.assert_array_equal(csr.indices, indices)
    assert csr.weights is None
    assert csr.eids is None


def test_construct_with_weights_and_eids():
    indptr = np.array([0, 1, 3], I64)
    indices = np.array([1, 0, 1], I64)
    w = np.array([0.5, 0.0, 2.0], np.float32)
    e = np.array([10, -7, 2**40], I64)
    csr = core.CSR(indptr, indices, num_cols=2, weights=w, eids=e)
    assert csr.weights.dtype == np.float32
    assert csr.eids.dtype == I64
    np.testing.assert_array_equal(csr.weights, w)
    np.testing.assert_array_equal(csr.eids, e)


def test_other_integer_dtypes_are_converted():
    csr = core.CSR(np.array([0, 1, 2], np.int32), np.array([1, 0], np.uint8), num_cols=2)
    assert csr.indptr.dtype == I64 and csr.indices.dtype == I64
    np.testing.assert_array_equal(csr.indptr, [0, 1, 2])
    np.testing.assert_array_equal(csr.indices, [1, 0])


def test_empty_graph_zero_rows():
    csr = core.CSR(np.array([0], I64), np.array([], I64), num_cols=0)
    assert csr.num_rows == 0 and csr.nnz == 0 and csr.num_cols == 0
    assert csr.degrees().shape == (0,)
    assert csr.col_degrees().shape == (0,)
    t = csr.transpose()
    assert t.num_rows == 0 and t.nnz == 0
    c, n, e = core.sample_neighbors(csr, np.array([], I64), 3)
    assert c.shape == n.shape == e.shape == (0,)
    assert csr.has_edges(np.array([], I64), np.array([], I64)).shape == (0,)


def test_rows_without_edges():
    csr = core.CSR(np.array([0, 0, 0, 0], I64), np.array([], I64), num_cols=5)
    assert csr.num_rows == 3 and csr.nnz == 0
    np.testing.assert_array_equal(csr.degrees(), [0, 0, 0])
    np.testing.assert_array_equal(csr.col_degrees(), [0] * 5)
    t = csr.transpose()
    assert (t.num_rows, t.num_cols, t.nnz) == (5, 3, 0)


# ------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "indptr, indices, num_cols, exc, pattern",
    [
        ([0, 2, 1, 3], [0, 1, 2], 3, ValueError, r"(?i)indptr"),  # non-monotone
        ([1, 2, 3], [0, 1, 2], 3, ValueError, r"(?i)indptr"),  # indptr[0] != 0
        ([0, 1, 2], [0, 1, 2], 3, ValueError, r"(?i)indptr|indices|nnz|len"),  # end < nnz
        ([0, 1, 4], [0, 1, 2], 3, ValueError, r"(?i)indptr|indices|nnz|len"),  # end > nnz
        ([], [], 3, ValueError, r"(?i)indptr"),  # no rows at all: indptr must have >= 1 entry
        ([0, 1, 3], [0, 3, 1], 3, IndexError, r"(?i)indices"),  # col == num_cols
        ([0, 1, 3], [0, -1, 1], 3, IndexError, r"(?i)indices"),  # negative col
    ],
    ids=["non_monotone", "indptr0", "end_short", "end_long", "empty_indptr", "col_oob", "col_neg"],
)
def test_validation_errors(indptr, indices, num_cols, exc, pattern):
    with pytest.raises(exc, match=pattern):
        core.CSR(np.array(indptr, I64), np.array(indices, I64), num_cols=num_cols)


def test_non_monotone_message_names_problem():
    with pytest.raises(ValueError, match=r"(?i)monoton|decreas|sorted|order"):
        core.CSR(np.array([0, 2, 1, 3], I64), np.array([0, 1, 2], I64), num_cols=3)


def test_out_of_range_message_names_bad_value():
    with pytest.raises(IndexError, match=r"indices.*\b77\b|\b77\b.*indices"):
        core.CSR(np.array([0, 3], I64), np.array([0, 77, 1], I64), num_cols=5)
    with pytest.raises(IndexError, match=r"-4"):
        core.CSR(np.array([0, 3], I64), np.array([0, 1, -4], I64), num_cols=5)


@pytest.mark.parametrize("which", ["indptr", "indices"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_float_ids_rejected(which, dtype):
    indptr = np.array([0, 1, 2], I64)
    indices = np.array([1, 0], I64)
    args = dict(indptr=indptr, indices=indices)
    args[which] = args[which].astype(dtype)
    with pytest.raises(ValueError, match=which):
        core.CSR(args["indptr"], args["indices"], num_cols=2)


@pytest.mark.parametrize("which", ["indptr", "indices"])
def test_2d_rejected(which):
    args = dict(indptr=np.array([0, 1, 2], I64), indices=np.array([1, 0], I64))
    args[which] = args[which].reshape(1, -1)
    with pytest.raises(ValueError, match=which):
        core.CSR(args["indptr"], args["indices"], num_cols=2)


def test_negative_num_cols_rejected():
    with pytest.raises(ValueError, match="num_cols"):
        core.CSR(np.array([0], I64), np.array([], I64), num_cols=-1)


@pytest.mark.parametrize(
    "weights",
    [
        np.array([1.0, np.nan, 1.0], np.float32),
        np.array([1.0, np.inf, 1.0], np.float32),
        np.array([1.0, -0.5, 1.0], np.float32),
        np.array([1.0, 1.0], np.float32),
        np.array([1.0, 1.0, 1.0, 1.0], np.float32),
        np.ones((1, 3), np.float32),
    ],
    ids=["nan", "inf", "negative", "short", "long", "2d"],
)
def test_bad_weights(weights):
    with pytest.raises(ValueError, match="weights"):
        core.CSR(np.array([0, 1, 3], I64), np.array([0, 1, 1], I64), num_cols=2, weights=weights)


@pytest.mark.parametrize(
    "eids",
    [np.array([1, 2], I64), np.array([1, 2, 3, 4], I64), np.array([1.0, 2.0, 3.0]), np.zeros((3, 1), I64)],
    ids=["short", "long", "float", "2d"],
)
def test_bad_eids(eids):
    with pytest.raises(ValueError, match="eids"):
        core.CSR(np.array([0, 1, 3], I64), np.array([0, 1, 1], I64), num_cols=2, eids=eids)


# -------------------------------------------------------------------------- zero-copy


def test_readonly_int64_arrays_not_copied():
    indptr = ro([0, 2, 3])
    indices = ro([1, 0, 1])
    w = ro([1.0, 2.0, 3.0], np.float32)
    e = ro([5, 6, 7])
    csr = core.CSR(indptr, indices, num_cols=2, weights=w, eids=e)
    assert np.shares_memory(csr.indptr, indptr)
    assert np.shares_memory(csr.indices, indices)
    assert np.shares_memory(csr.weights, w)
    assert np.shares_memory(csr.eids, e)


def test_readonly_arrays_kept_alive_by_csr():
    indptr = ro(np.arange(0, 2001, 2))
    indices = ro(np.arange(2000) % 7)
    csr = core.CSR(indptr, indices, num_cols=7)
    del indptr, indices
    gc.collect()
    np.testing.assert_array_equal(csr.indptr, np.arange(0, 2001, 2))
    np.testing.assert_array_equal(csr.indices, np.arange(2000) % 7)


def test_writeable_arrays_are_copied():
    indptr = np.array([0, 2, 3], I64)
    indices = np.array([1, 0, 1], I64)
    w = np.array([1.0, 2.0, 3.0], np.float32)
    e = np.array([5, 6, 7], I64)
    csr = core.CSR(indptr, indices, num_cols=2, weights=w, eids=e)
    for a, b in [(csr.indptr, indptr), (csr.indices, indices), (csr.weights, w), (csr.eids, e)]:
        assert not np.shares_memory(a, b)
    indptr[1] = 1
    indices[:] = 0
    w[:] = 9.0
    e[:] = -1
    np.testing.assert_array_equal(csr.indptr, [0, 2, 3])
    np.testing.assert_array_equal(csr.indices, [1, 0, 1])
    np.testing.assert_array_equal(csr.weights, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(csr.eids, [5, 6, 7])


def test_noncontiguous_and_converted_inputs_are_copied_correctly():
    base = np.array([0, 9, 1, 9, 3, 9], I64)
    base.flags.writeable = False
    indptr = base[::2]  # read-only, non-contiguous
    indices = ro([1, 0, 1], np.int32)  # read-only, wrong dtype
    csr = core.CSR(indptr, indices, num_cols=2)
    np.testing.assert_array_equal(csr.indptr, [0, 1, 3])
    np.testing.assert_array_equal(csr.indices, [1, 0, 1])
    assert csr.indptr.flags.c_contiguous


def test_property_views_are_readonly():
    csr = core.CSR(np.array([0, 1], I64), np.array([0], I64), num_cols=1,
                   weights=np.array([1.0], np.float32))
    for arr in (csr.indptr, csr.indices, csr.weights):
        assert not arr.flags.writeable
        with pytest.raises(ValueError):
            arr[0] = 0


# ---------------------------------------------------------------- degrees / transpose


@pytest.mark.parametrize("shape", ["small", "isolated", "hub", "multi", "rect", "unsorted_eids"])
def test_degrees_and_col_degrees(make_graph, shape):
    g = make_graph(shape, seed=1)
    csr = g.csr(core)
    np.testing.assert_array_equal(csr.degrees(), np.diff(g.indptr))
    rows = np.random.default_rng(3).integers(0, g.num_rows, 50)
    d = csr.degrees(rows)
    assert d.dtype == I64
    np.testing.assert_array_equal(d, np.diff(g.indptr)[rows])
    cd = csr.col_degrees()
    assert cd.dtype == I64
    np.testing.assert_array_equal(cd, np.bincount(g.indices, minlength=g.num_cols))
    np.testing.assert_array_equal(csr.col_degrees(), cd)  # cached, still correct


def test_degrees_out_of_range_rows():
    csr = core.CSR(np.array([0, 1, 2], I64), np.array([0, 1], I64), num_cols=2)
    with pytest.raises(IndexError, match="rows"):
        csr.degrees(np.array([0, 2], I64))
    with pytest.raises(IndexError, match="rows"):
        csr.degrees(np.array([-1], I64))


def _row_multisets(indptr, indices, eids, weights):
    out = []
    for r in range(len(indptr) - 1):
        sl = slice(indptr[r], indptr[r + 1])
        w = [None] * (indptr[r + 1] - indptr[r]) if weights is None else weights[sl].tolist()
        out.append(sorted(zip(indices[sl].tolist(), eids[sl].tolist(), w)))
    return out


@pytest.mark.parametrize("shape", ["small", "isolated", "hub", "multi", "rect", "unsorted_eids"])
@pytest.mark.parametrize("with_eids", [False, True])
def test_transpose_vs_scipy(make_graph, shape, with_eids):
    g = make_graph(shape, seed=2)
    csr = g.csr(core, eids=with_eids)
    orig_eids = g.eids if (with_eids and g.eids is not None) else np.arange(g.nnz, dtype=I64)
    # scipy transpose of a matrix whose data is the position; keeps duplicates.
    m = sp.csr_matrix(
        (np.arange(g.nnz, dtype=np.float64), g.indices, g.indptr), shape=(g.num_rows, g.num_cols)
    )
    mt = m.T.tocsr()
    mt_pos = mt.data.astype(I64)
    for nt in (1, 2):
        t = csr.transpose(num_threads=nt)
        assert (t.num_rows, t.num_cols, t.nnz) == (g.num_cols, g.num_rows, g.nnz)
        assert t.rows_sorted
        np.testing.assert_array_equal(t.indptr, mt.indptr)
        assert t.eids is not None, "transpose must carry edge ids"
        assert t.weights is not None
        for r in range(t.num_rows):
            seg = t.indices[t.indptr[r]:t.indptr[r + 1]]
            assert (np.diff(seg) >= 0).all()
        got = _row_multisets(t.indptr, t.indices, t.eids, t.weights)
        exp = _row_multisets(mt.indptr, mt.indices, orig_eids[mt_pos], g.weights[mt_pos])
        assert got == exp


def test_transpose_without_weights_and_double_transpose(make_graph):
    g = make_graph("multi", seed=5, sort=False)
    csr = g.csr(core, weights=False)
    t = csr.transpose()
    assert t.weights is None
    tt = t.transpose()
    assert tt.rows_sorted
    np.testing.assert_array_equal(tt.indptr, g.indptr)
    # tt's eids are positions in the original; they must point back to the same column.
    for r in range(g.num_rows):
        e = tt.eids[tt.indptr[r]:tt.indptr[r + 1]]
        assert sorted(e.tolist()) == list(g.row_positions(r))
        np.testing.assert_array_equal(g.indices[e], tt.indices[tt.indptr[r]:tt.indptr[r + 1]])


def test_rows_sorted():
    assert core.CSR(np.array([0, 3, 5], I64), np.array([0, 2, 4, 1, 3], I64), num_cols=5).rows_sorted
    assert not core.CSR(np.array([0, 3, 5], I64), np.array([0, 4, 2, 1, 3], I64), num_cols=5).rows_sorted
    # decreasing across a row boundary is still sorted
    assert core.CSR(np.array([0, 2, 4], I64), np.array([3, 4, 0, 1], I64), num_cols=5).rows_sorted
    assert core.CSR(np.array([0], I64), np.array([], I64), num_cols=0).rows_sorted


@pytest.mark.parametrize("shape", ["small", "isolated", "hub", "multi", "rect", "unsorted_eids"])
def test_has_edges_vs_bruteforce(make_graph, shape):
    g = make_graph(shape, seed=4)
    csr = g.csr(core)
    rng = np.random.default_rng(7)
    edges = g.edge_set()
    # half true edges, half random pairs
    k = 400
    pos = rng.integers(0, max(g.nnz, 1), k // 2) if g.nnz else np.zeros(0, I64)
    rows_of_pos = np.searchsorted(g.indptr, pos, side="right") - 1
    rows = np.concatenate([rows_of_pos, rng.integers(0, g.num_rows, k // 2)]).astype(I64)
    cols = np.concatenate([g.indices[pos], rng.integers(0, g.num_cols, k // 2)]).astype(I64)
    exp = np.array([(r, c) in edges for r, c in zip(rows.tolist(), cols.tolist())])
    for nt in (1, 2):
        got = csr.has_edges(rows, cols, num_threads=nt)
        assert got.dtype == np.bool_
        np.testing.assert_array_equal(got, exp)


def test_has_edges_errors():
    csr = core.CSR(np.array([0, 1, 2], I64), np.array([1, 0], I64), num_cols=2)
    with pytest.raises(ValueError):
        csr.has_edges(np.array([0, 1], I64), np.array([0], I64))
    with pytest.raises(IndexError, match="rows"):
        csr.has_edges(np.array([5], I64), np.array([0], I64))
    with pytest.raises(IndexError, match="cols"):
        csr.has_edges(np.array([0], I64), np.array([-3], I64))


# ------------------------------------------------------------------------ thread knobs


def test_num_threads_get_set():
    orig = core.get_num_threads()
    assert orig >= 1
    try:
        core.set_num_threads(3)
        assert core.get_num_threads() == 3
        with pytest.raises(ValueError):
            core.set_num_threads(0)
        with pytest.raises(ValueError):
            core.set_num_threads(-2)
        assert core.get_num_threads() == 3
    finally:
        core.set_num_threads(orig)
    assert core.get_num_threads() == orig


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this OS")
def test_default_threads_follow_the_cpu_affinity_mask():
    """A process confined to one CPU (taskset, a container's cpuset) defaults to one thread,
    not to the machine's CPU count: more threads than usable CPUs wait for each other."""
    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "from graphplat import _core; print(_core.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"


def test_module_constants():
    assert tuple(core.STRATEGIES) == ("uniform", "weighted", "topk", "full")
    assert isinstance(core.MAX_FANOUT, int) and core.MAX_FANOUT >= 1


@pytest.mark.parametrize("offset", [0, 7 << 40])
def test_consecutive_eids_give_the_same_samples(offset):
    """Consecutive edge ids (eids[i] == eids[0] + i, as a store numbering edges in CSC order
    writes them) are kept as an offset: every sampler must report the same edge ids as
    with an arbitrary eids array, and csr.eids still returns the caller's array."""
    rng = np.random.default_rng(11)
    n, e = 300, 4000
    dst = np.sort(rng.integers(0, n, e))
    src = rng.integers(0, n, e)
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(dst, minlength=n), out=indptr[1:])
    consecutive = np.arange(e, dtype=np.int64) + offset
    shuffled = consecutive.copy()
    shuffled[[0, 1]] = shuffled[[1, 0]]  # one swap: no longer consecutive
    a = core.CSR(indptr, src, num_cols=n, eids=consecutive)
    b = core.CSR(indptr, src, num_cols=n, eids=shuffled)
    np.testing.assert_array_equal(a.eids, consecutive)
    seeds = rng.choice(n, 50, replace=False).astype(np.int64)
    ca, na, ea = core.sample_neighbors(a, seeds, 5, seed=3)
    cb, nb, eb = core.sample_neighbors(b, seeds, 5, seed=3)
    np.testing.assert_array_equal(na, nb)
    pos = ea - offset  # positions: a's ids are offset + position, b's are shuffled[position]
    np.testing.assert_array_equal(shuffled[pos], eb)
    assert ((pos >= 0) & (pos < e)).all()
    np.testing.assert_array_equal(src[pos], na)  # the id names the sampled entry
    hops = core.sample_multihop(a, seeds, [4, 3], seed=1)
    for h in hops:
        np.testing.assert_array_equal(src[h.eids - offset], h.nodes[h.src])


def test_readonly_views_of_writable_memory_are_copied():
    # A read-only memoryview of a bytearray, or a read-only array over a writable mmap, can
    # still change through its owner; sharing it let a later write put indices out of range
    # after validation, and sampling then crashed the interpreter.
    ba = bytearray(np.array([1, 0], I64).tobytes())
    indices = np.frombuffer(memoryview(ba).toreadonly(), dtype=I64)
    csr = core.CSR(ro([0, 1, 2]), indices)
    assert not np.shares_memory(csr.indices, indices)
    ba[:8] = (10**12).to_bytes(8, "little")
    np.testing.assert_array_equal(csr.indices, [1, 0])

    mm = mmap.mmap(-1, 16)  # anonymous, writable
    mm[:] = np.array([1, 0], I64).tobytes()
    over = np.frombuffer(mm, dtype=I64)
    over.flags.writeable = False
    csr = core.CSR(ro([0, 1, 2]), over)
    assert not np.shares_memory(csr.indices, over)
    del over
    mm[:8] = (10**12).to_bytes(8, "little")
    np.testing.assert_array_equal(csr.indices, [1, 0])
    csr = None
    mm.close()


def test_readonly_mmap_and_bytes_are_shared(tmp_path):
    path = tmp_path / "indices.bin"
    path.write_bytes(np.array([1, 0], I64).tobytes())
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    over = np.frombuffer(mm, dtype=I64)
    csr = core.CSR(ro([0, 1, 2]), over)
    assert np.shares_memory(csr.indices, over)
    readonly_bytes = np.frombuffer(np.array([1, 0], I64).tobytes(), dtype=I64)
    assert np.shares_memory(core.CSR(ro([0, 1, 2]), readonly_bytes).indices, readonly_bytes)
    # Through a read-only memoryview of bytes, too.
    via_view = np.frombuffer(memoryview(np.array([1, 0], I64).tobytes()), dtype=I64)
    assert np.shares_memory(core.CSR(ro([0, 1, 2]), via_view).indices, via_view)
