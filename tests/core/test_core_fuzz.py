"""Hypothesis fuzzing of every graphplat._core binding.

Each call must either succeed with a valid result or raise ValueError / IndexError /
TypeError; anything else (other exceptions, crashes, hangs) fails. For every input we also
model what the spec says: inputs that are clearly valid must succeed, inputs that are clearly
invalid must raise (with the exception type the spec names), the rest ("ambiguous") may go
either way. Inputs are kept small so that no request is genuinely huge.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import graphplat._core as core

I64 = np.int64
INT64_MIN, INT64_MAX = int(np.iinfo(I64).min), int(np.iinfo(I64).max)
OK_EXC = (ValueError, IndexError, TypeError)
FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,  # reproducible CI runs
    database=None,  # write nothing into the repository
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)

INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
FLOAT_DTYPES = [np.float16, np.float32, np.float64]
ALL_DTYPES = INT_DTYPES + FLOAT_DTYPES + [np.bool_]
THREADS = st.sampled_from([0, 1, 2, 3, -1])
RNG_SEEDS = st.one_of(st.integers(0, 2**32), st.sampled_from([-1, INT64_MIN, 2**63, 2**64 - 1, 2**64]))
FANOUTS = st.sampled_from([-1, -1, 1, 2, 3, 5, 1000, 0, -2, -5, core.MAX_FANOUT + 1, 2**31, 2**40,
                           2**63, -(2**63), 2**70])


# ------------------------------------------------------------------ input strategies


def _elements(dtype, hi):
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return st.one_of(st.integers(max(int(info.min), -3), min(int(info.max), hi)),
                         st.integers(int(info.min), int(info.max)))
    if dt.kind == "f":
        return st.one_of(st.integers(-3, min(hi, 2048)).map(float),
                         st.floats(width=dt.itemsize * 8, allow_nan=True, allow_infinity=True))
    return st.booleans()


@st.composite
def arrays(draw, hi=12, max_len=12, dtypes=ALL_DTYPES, weird=True):
    """Mostly 1-D arrays of small values of random dtype; sometimes 0-d/2-D, strided,
    read-only, empty, huge/negative/NaN values, Python lists or non-array objects."""
    kind = draw(st.sampled_from(["1d"] * 8 + (["0d", "2d", "strided", "list", "object"] if weird else [])))
    if kind == "object":
        return draw(st.sampled_from([None, "abc", 3, 2.5, [[1, 2]], np.array(["a", "b"]),
                                     np.array([1, None], dtype=object)]))
    dtype = draw(st.sampled_from(dtypes))
    el = _elements(dtype, hi)
    if kind == "0d":
        a = draw(hnp.arrays(dtype, (), elements=el))
    elif kind == "2d":
        a = draw(hnp.arrays(dtype, (draw(st.integers(0, 3)), draw(st.integers(0, 4))), elements=el))
    else:
        n = draw(st.integers(0, max_len))
        a = draw(hnp.arrays(dtype, n * (2 if kind == "strided" else 1), elements=el))
        if kind == "strided":
            a = a[::2]
        if kind == "list":
            return a.tolist()
    if draw(st.booleans()):
        a.flags.writeable = False
    return a


class Expect:
    """Collects what the spec says about a call: must succeed / must raise / ambiguous."""

    def __init__(self):
        self.bad_types: set = set()
        self.ambiguous = False
        self.notes = []

    def bad(self, note, *types):
        self.bad_types.update(types)
        self.notes.append(note)

    def maybe(self, note=""):
        self.ambiguous = True
        self.notes.append("?" + note)

    def run(self, fn, *args, **kw):
        try:
            res = fn(*args, **kw)
        except OK_EXC as e:
            if not self.ambiguous:
                assert self.bad_types, f"valid call raised {type(e).__name__}: {e}"
                assert isinstance(e, tuple(self.bad_types)), (
                    f"expected one of {self.bad_types} for {self.notes}, got {type(e).__name__}: {e}")
            return None
        if not self.ambiguous:
            assert not self.bad_types, f"invalid call succeeded (expected raise for {self.notes})"
        return res


def ids_arg(e: Expect, name: str, x, *, lo=None, hi=None):
    """Classify an id-array argument per the conventions. Returns the int64 array the core
    should see (or None if it must/may not be usable)."""
    if isinstance(x, list):
        a = np.asarray(x)
        if a.dtype.kind not in "iub" or a.ndim != 1:
            e.maybe(f"{name}: list of {a.dtype}")
            return None
        e.maybe(f"{name}: python list")
        if a.dtype.kind == "u" and a.size and int(a.max()) > INT64_MAX:
            return None
        x = a
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "iufb":
        e.bad(f"{name}: not a numeric array", TypeError, ValueError)
        return None
    if x.ndim != 1:
        e.bad(f"{name}: ndim {x.ndim}", ValueError)
        return None
    if x.dtype.kind == "f":
        if x.size == 0:
            e.maybe(f"{name}: empty float array")
            return np.zeros(0, I64)
        e.bad(f"{name}: float ids", ValueError)
        return None
    if x.dtype.kind == "b":
        e.maybe(f"{name}: bool array")
        a = x.astype(I64)
    elif x.dtype == np.uint64 and x.size and int(x.max()) > INT64_MAX:
        e.bad(f"{name}: uint64 not representable", ValueError, IndexError)
        return None
    else:
        a = x.astype(I64)
    if (lo is not None and a.size and a.min() < lo) or (hi is not None and a.size and a.max() >= hi):
        e.bad(f"{name}: out of range", IndexError)
    return a


def small_int_arg(e: Expect, name, v, lo, hi=None, ambiguous_below=None):
    """Scalar int argument valid in [lo, hi]."""
    if not (INT64_MIN <= v <= INT64_MAX):
        e.bad(f"{name}={v} does not fit", TypeError, ValueError, OverflowError)
    elif ambiguous_below is not None and ambiguous_below <= v < lo:
        e.maybe(f"{name}={v}")
    elif v < lo or (hi is not None and v > hi):
        e.bad(f"{name}={v}", ValueError)


def rng_seed_arg(e: Expect, v):
    if v < 0 or v >= 2**64:
        e.maybe(f"seed={v}")


def threads_arg(e: Expect, v):
    if v < 0:
        e.maybe(f"num_threads={v}")


@st.composite
def graphs(draw, square=True, max_rows=8, weights=None):
    n = draw(st.integers(0, max_rows))
    m = n if square else draw(st.integers(0, max_rows))
    degs = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n)) if m else [0] * n
    nnz = sum(degs)
    indices = draw(st.lists(st.integers(0, max(m - 1, 0)), min_size=nnz, max_size=nnz))
    with_w = draw(st.booleans()) if weights is None else weights
    w = None
    if with_w:
        w = np.array(draw(st.lists(st.sampled_from([0.0, 0.0, 0.5, 1.0, 2.0, 1e-30, 3e38]),
                                   min_size=nnz, max_size=nnz)), np.float32)
    eids = None
    if draw(st.booleans()):
        eids = np.array(draw(st.lists(st.integers(INT64_MIN, INT64_MAX), min_size=nnz, max_size=nnz,
                                      unique=True)), I64)
    indptr = np.concatenate([[0], np.cumsum(degs)]).astype(I64)
    return indptr, np.array(indices, I64), m, w, eids


def _graph(brute, spec):
    indptr, indices, m, w, eids = spec
    g = brute.Graph(indptr, indices, m, w, eids)
    return g, core.CSR(indptr, indices, num_cols=m, weights=w, eids=eids)


# ------------------------------------------------------------------ CSR construction


@st.composite
def csr_inputs(draw):
    indptr, indices, m, w, eids = draw(graphs(square=False))
    args = {
        "indptr": indptr.astype(draw(st.sampled_from([np.int64, np.int64, np.int32, np.uint16]))),
        "indices": indices.astype(draw(st.sampled_from([np.int64, np.int64, np.int32, np.uint8]))),
        "weights": w,
        "eids": eids,
    }
    num_cols = draw(st.sampled_from([m, m, m, None, m + 3, 0, -1, 2**31 + 3, 2**63, -(2**63) - 1]))
    for _ in range(draw(st.integers(0, 2))):
        which = draw(st.sampled_from(list(args)))
        how = draw(st.sampled_from(["arbitrary", "poke", "float", "2d", "strided", "readonly", "drop"]))
        a = args[which]
        if how == "arbitrary":
            a = draw(arrays(hi=10, dtypes=[np.int64, np.int32, np.float32, np.float64, np.uint64]))
        elif a is None:
            continue
        elif how == "poke" and len(a):
            a = a.copy()
            a[draw(st.integers(0, len(a) - 1))] = draw(
                _elements(a.dtype, 12) if a.dtype.kind == "f" else
                st.integers(int(np.iinfo(a.dtype).min), int(np.iinfo(a.dtype).max)))
        elif how == "float":
            a = a.astype(np.float64)
        elif how == "2d":
            a = a.reshape(1, -1)
        elif how == "strided":
            a = np.repeat(a, 2)[::2]
        elif how == "readonly":
            a = a.copy()
            a.flags.writeable = False
        elif how == "drop":
            a = a[:-1] if len(a) else a
        args[which] = a
    return args, num_cols


def _classify_csr(args, num_cols):
    e = Expect()
    indptr = ids_arg(e, "indptr", args["indptr"])
    indices = ids_arg(e, "indices", args["indices"])
    if num_cols is not None:
        small_int_arg(e, "num_cols", num_cols, 0)
    if indptr is not None:
        if len(indptr) == 0:
            e.bad("indptr empty", ValueError)
        elif indptr[0] != 0:
            e.bad("indptr[0]", ValueError)
        elif (np.diff(indptr) < 0).any():
            e.bad("indptr non-monotone", ValueError)
        elif indices is not None and indptr[-1] != len(indices):
            e.bad("indptr[-1] != nnz", ValueError)
    if indices is not None and len(indices):
        if indices.min() < 0:
            e.bad("negative indices", IndexError)
        elif num_cols is None:
            e.maybe("default num_cols")
        elif INT64_MIN <= num_cols <= INT64_MAX and indices.max() >= num_cols:
            e.bad("indices >= num_cols", IndexError)
    nnz = None if indices is None else len(indices)
    w = args["weights"]
    if w is not None:
        if not isinstance(w, np.ndarray) or w.dtype.kind not in "iuf" or w.ndim != 1:
            if isinstance(w, list):
                e.maybe("weights list")
            else:
                e.bad("weights type/shape", ValueError, TypeError)
        elif nnz is not None and len(w) != nnz:
            e.bad("weights length", ValueError)
        elif w.dtype == np.float32:
            if not np.isfinite(w).all() or (w < 0).any():
                e.bad("weights value", ValueError)
        else:
            e.maybe(f"weights dtype {w.dtype}")
    eids = args["eids"]
    if eids is not None:
        ev = ids_arg(e, "eids", eids)
        if ev is not None and nnz is not None and len(ev) != nnz:
            e.bad("eids length", ValueError)
    return e, indptr, indices


@FUZZ
@given(csr_inputs(), st.data())
def test_fuzz_csr(brute, inp, data):
    args, num_cols = inp
    e, indptr, indices = _classify_csr(args, num_cols)
    kw = {} if num_cols is None else {"num_cols": num_cols}
    csr = e.run(core.CSR, args["indptr"], args["indices"], weights=args["weights"],
                eids=args["eids"], **kw)
    if csr is None:
        return
    # ---- a constructed CSR must be internally valid and equal to its (converted) inputs
    ip, ix = csr.indptr, csr.indices
    assert ip.dtype == I64 and ix.dtype == I64 and ip.ndim == ix.ndim == 1
    assert csr.num_rows == len(ip) - 1 >= 0 and csr.nnz == len(ix) == ip[-1] and ip[0] == 0
    assert (np.diff(ip) >= 0).all()
    assert csr.num_cols >= 0 and ((ix >= 0) & (ix < csr.num_cols)).all()
    if indptr is not None:
        np.testing.assert_array_equal(ip, indptr)
    if indices is not None:
        np.testing.assert_array_equal(ix, indices)
    if num_cols is not None:
        assert csr.num_cols == num_cols
    if csr.weights is not None:
        assert csr.weights.dtype == np.float32 and len(csr.weights) == csr.nnz
        assert np.isfinite(csr.weights).all() and (csr.weights >= 0).all()
    if csr.eids is not None:
        assert csr.eids.dtype == I64 and len(csr.eids) == csr.nnz
    # ---- methods on it
    g = brute.Graph(np.array(ip), np.array(ix), csr.num_cols, csr.weights, csr.eids)
    assert csr.rows_sorted == all((np.diff(ix[ip[r]:ip[r + 1]]) >= 0).all()
                                  for r in range(csr.num_rows))
    np.testing.assert_array_equal(csr.degrees(), np.diff(ip))
    small = csr.num_cols <= 10**5
    if small:
        np.testing.assert_array_equal(csr.col_degrees(), np.bincount(ix, minlength=csr.num_cols))
        t = csr.transpose(num_threads=data.draw(st.sampled_from([1, 2])))
        assert (t.num_rows, t.num_cols, t.nnz) == (csr.num_cols, csr.num_rows, csr.nnz)
        assert t.rows_sorted
        src_rows = np.repeat(np.arange(csr.num_rows), np.diff(ip))
        te = t.eids
        pos = np.array([g.pos_of_eid(x) for x in te.tolist()], I64)
        assert sorted(pos.tolist()) == list(range(csr.nnz))
        trow = np.repeat(np.arange(t.num_rows), np.diff(t.indptr))
        np.testing.assert_array_equal(ix[pos], trow)
        np.testing.assert_array_equal(src_rows[pos], t.indices)
    if csr.num_rows:
        seeds = np.arange(csr.num_rows, dtype=I64)
        c, n, ee = core.sample_neighbors(csr, seeds, -1, strategy="full")
        pos = brute.check_sampled(g, seeds, c, n, ee, replace=False)
        assert [sorted(p) for p in pos] == [list(g.row_positions(r)) for r in range(csr.num_rows)]


@FUZZ
@given(graphs(square=False), arrays(hi=10), arrays(hi=10), THREADS)
def test_fuzz_csr_queries(brute, spec, rows, cols, nt):
    g, csr = _graph(brute, spec)
    e = Expect()
    threads_arg(e, nt)
    r = ids_arg(e, "rows", rows, lo=0, hi=g.num_rows)
    c = ids_arg(e, "cols", cols, lo=0, hi=g.num_cols)
    if r is not None and c is not None and len(r) != len(c):
        e.bad("length mismatch", ValueError)
    res = e.run(csr.has_edges, rows, cols, num_threads=nt)
    if res is not None and r is not None and c is not None:
        edges = g.edge_set()
        assert res.dtype == np.bool_
        np.testing.assert_array_equal(res, [(a, b) in edges for a, b in zip(r.tolist(), c.tolist())])
    e = Expect()
    r = np.arange(g.num_rows) if rows is None else ids_arg(e, "rows", rows, lo=0, hi=g.num_rows)
    res = e.run(csr.degrees, rows)
    if res is not None and r is not None:
        np.testing.assert_array_equal(res, np.diff(g.indptr)[r])


# ------------------------------------------------------------------ sample_neighbors


STRATEGY_NAMES = st.sampled_from(list(core.STRATEGIES) * 3 + ["", "UNIFORM", "full ", "topk\x00",
                                                               "random", "edge_weight", "weighted\n"])


def _canonical_strategy(name):
    """The strategy a name selects (graph-learn's aliases included), or the name if invalid."""
    return core.STRATEGY_ALIASES.get(name, name)


def _fanout_expect(e, fanout, strategy, replace):
    if strategy == "full":
        if not (INT64_MIN <= fanout <= INT64_MAX):
            e.maybe("full with huge fanout")
        elif fanout != -1:
            e.maybe("full ignores fanout")
        return
    if not (INT64_MIN <= fanout <= INT64_MAX):
        e.bad(f"fanout={fanout}", TypeError, ValueError, OverflowError)
    elif fanout != -1 and not (1 <= fanout <= core.MAX_FANOUT):
        e.bad(f"fanout={fanout}", ValueError)


def _expected_count(g, s, fanout, strategy, replace):
    """Allowed per-seed counts (a set, to express the ambiguous fanout=-1+weighted case)."""
    deg = g.deg(s)
    npos = deg if g.weights is None else int((g.weights[list(g.row_positions(s))] > 0).sum())
    if strategy == "full" or fanout == -1:
        return {deg} if strategy != "weighted" else {deg, npos}
    if strategy == "uniform":
        return {(fanout if deg else 0) if replace else min(fanout, deg)}
    if strategy == "weighted":
        return {(fanout if npos else 0) if replace else min(fanout, npos)}
    return {min(fanout, deg)}  # topk


@FUZZ
@given(graphs(square=False), arrays(hi=10), FANOUTS, STRATEGY_NAMES, st.booleans(), RNG_SEEDS,
       st.sampled_from([0, 1, 7, -1, 2**40]), st.one_of(st.none(), arrays(hi=10**6)), THREADS)
def test_fuzz_sample_neighbors(brute, spec, seeds, fanout, strategy_name, replace, seed, hop, positions, nt):
    g, csr = _graph(brute, spec)
    e = Expect()
    s = ids_arg(e, "seeds", seeds, lo=0, hi=g.num_rows)
    strategy = _canonical_strategy(strategy_name)
    if strategy not in core.STRATEGIES:
        e.bad("strategy", ValueError)
    _fanout_expect(e, fanout, strategy, replace)
    if strategy == "weighted" and g.weights is None:
        e.bad("weighted without weights", ValueError)
    if strategy == "topk" and g.weights is None:
        e.maybe("topk without weights")
    if replace and fanout > 1000:
        return  # genuinely huge request on a valid path; not part of the fuzz
    rng_seed_arg(e, seed)
    threads_arg(e, nt)
    if hop < 0:
        e.maybe("negative hop")
    if positions is not None:
        pos = ids_arg(e, "positions", positions)
        if pos is not None and s is not None and len(pos) != len(s):
            e.bad("positions length", ValueError)
        if pos is not None and len(pos) and pos.min() < 0:
            e.maybe("negative positions")
    res = e.run(core.sample_neighbors, csr, seeds, fanout, strategy=strategy_name, replace=replace,
                seed=seed, hop=hop, positions=positions, num_threads=nt)
    if res is None or s is None:
        return
    c, n, ee = res
    pos = brute.check_sampled(g, s, c, n, ee, replace=replace and strategy in ("uniform", "weighted")
                              and fanout != -1)
    for i, sd in enumerate(s.tolist()):
        assert c[i] in _expected_count(g, sd, fanout, strategy, replace), (sd, c[i])
        if strategy == "weighted" and fanout != -1:
            assert all(g.weights[p] > 0 for p in pos[i])


# ------------------------------------------------------------------ multihop / relabel


@FUZZ
@given(graphs(square=True), arrays(hi=10),
       st.lists(FANOUTS, max_size=3), STRATEGY_NAMES, st.booleans(), RNG_SEEDS, THREADS,
       st.booleans())
def test_fuzz_multihop(brute, spec, seeds, fanouts, strategy_name, replace, seed, nt, rect):
    strategy = _canonical_strategy(strategy_name)
    if rect:
        indptr, indices, m, w, eids = spec
        spec = (indptr, indices, m + 2, w, eids)  # not square
    g, csr = _graph(brute, spec)
    e = Expect()
    s = ids_arg(e, "seeds", seeds, lo=0, hi=g.num_rows)
    if s is not None and len(np.unique(s)) != len(s):
        e.bad("duplicate seeds", ValueError)
    if rect:
        e.bad("non-square csr", ValueError)
    if strategy not in core.STRATEGIES:
        e.bad("strategy", ValueError)
    for f in fanouts:
        _fanout_expect(e, f, strategy, replace)
    if strategy == "weighted" and g.weights is None:
        e.bad("weighted without weights", ValueError)
    if strategy == "topk" and g.weights is None:
        e.maybe("topk without weights")
    if not fanouts:
        e.maybe("no hops")
    if replace and any(f > 5 for f in fanouts) and len(fanouts) > 1:
        return  # could grow huge; not a fuzz target
    rng_seed_arg(e, seed)
    threads_arg(e, nt)
    hops = e.run(core.sample_multihop, csr, seeds, fanouts, strategy=strategy_name, replace=replace,
                 seed=seed, num_threads=nt)
    if hops is None or s is None:
        return
    assert len(hops) == len(fanouts)
    cur = s
    for h, (hp, f) in enumerate(zip(hops, fanouts)):
        c, n, ee = core.sample_neighbors(csr, cur, f, strategy=strategy, replace=replace, seed=seed,
                                         hop=h)
        nodes = list(cur.tolist())
        idx = {v: i for i, v in enumerate(nodes)}
        for v in n.tolist():
            if v not in idx:
                idx[v] = len(nodes)
                nodes.append(v)
        assert hp.num_dst == len(cur)
        np.testing.assert_array_equal(hp.nodes, np.array(nodes, I64))
        np.testing.assert_array_equal(hp.src, np.array([idx[v] for v in n.tolist()], I64))
        np.testing.assert_array_equal(hp.dst, np.repeat(np.arange(len(cur)), c))
        np.testing.assert_array_equal(hp.eids, ee)
        cur = hp.nodes


@FUZZ
@given(arrays(hi=30, max_len=15), arrays(hi=30, max_len=30),
       st.sampled_from([None, None, 0, 5, 31, 10**6, -1, 2**63]), THREADS)
def test_fuzz_unique_and_relabel(seeds, nbrs, num_nodes, nt):
    e = Expect()
    hi = num_nodes if num_nodes is not None and 0 <= num_nodes <= INT64_MAX else None
    lo = 0 if num_nodes is not None else None
    s = ids_arg(e, "seeds", seeds, lo=lo, hi=hi)
    n = ids_arg(e, "neighbors", nbrs, lo=lo, hi=hi)
    if num_nodes is not None:
        small_int_arg(e, "num_nodes", num_nodes, 0)
    if s is not None and len(np.unique(s)) != len(s):
        e.bad("duplicate seeds", ValueError)
    threads_arg(e, nt)
    kw = {} if num_nodes is None else {"num_nodes": num_nodes}
    res = e.run(core.unique_and_relabel, seeds, nbrs, num_threads=nt, **kw)
    if res is None or s is None or n is None:
        return
    nodes, local = res
    exp = list(dict.fromkeys(s.tolist() + n.tolist()))
    np.testing.assert_array_equal(nodes, np.array(exp, I64))
    np.testing.assert_array_equal(nodes[local], n)


# ------------------------------------------------------------------ IdMap


@FUZZ
@given(arrays(hi=20, max_len=15, dtypes=ALL_DTYPES), arrays(hi=25, max_len=15),
       arrays(hi=40, max_len=8), st.sampled_from(["raise", "ignore", "ignore", "Raise", ""]), THREADS)
def test_fuzz_idmap(ids, queries, extra, missing, nt):
    e = Expect()
    a = ids_arg(e, "ids", ids)
    if a is not None and len(np.unique(a)) != len(a):
        e.bad("duplicate ids", ValueError)
    threads_arg(e, nt)
    m = e.run(core.IdMap, ids, num_threads=nt)
    if m is None or a is None:
        return
    ref = {v: i for i, v in enumerate(a.tolist())}
    assert len(m) == len(ref)
    np.testing.assert_array_equal(m.ids(), a)
    # lookup
    e = Expect()
    q = ids_arg(e, "ids", queries)
    if missing not in ("raise", "ignore"):
        e.bad("missing mode", ValueError)
    elif q is not None and missing == "raise" and any(v not in ref for v in q.tolist()):
        e.bad("missing id", IndexError)
    res = e.run(m.lookup, queries, missing=missing, num_threads=nt)
    if res is not None and q is not None:
        np.testing.assert_array_equal(res, [ref.get(v, -1) for v in q.tolist()])
    e = Expect()
    q = ids_arg(e, "ids", queries)
    res = e.run(m.contains, queries)
    if res is not None and q is not None:
        np.testing.assert_array_equal(res, [v in ref for v in q.tolist()])
    # add: atomic
    e = Expect()
    x = ids_arg(e, "ids", extra)
    if x is not None and (len(np.unique(x)) != len(x) or any(v in ref for v in x.tolist())):
        e.bad("existing/repeated id", ValueError)
    res = e.run(m.add, extra)
    if x is None:
        return
    if res is None:
        assert len(m) == len(ref), "failed add changed the map"
        np.testing.assert_array_equal(m.ids(), a)
    else:
        np.testing.assert_array_equal(res, np.arange(len(ref), len(ref) + len(x)))
        np.testing.assert_array_equal(m.ids(), np.concatenate([a, x]))


# ------------------------------------------------------------------ AliasTable


@FUZZ
@given(arrays(hi=5, max_len=10, dtypes=ALL_DTYPES), st.sampled_from([0, 1, 7, 500, -1, -(2**40), 2**70]),
       RNG_SEEDS, THREADS)
def test_fuzz_alias(weights, n, seed, nt):
    e = Expect()
    w = None
    if isinstance(weights, np.ndarray) and weights.dtype.kind in "iufb" and weights.ndim == 1:
        w = weights.astype(np.float64)
        if weights.dtype.kind in "iub":
            e.maybe("integer weights")
        if len(w) == 0 or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            e.bad("weights", ValueError)
        elif not np.isfinite(w.sum()):
            e.maybe("sum of weights overflows")
    elif isinstance(weights, list):
        e.maybe("list")
    elif isinstance(weights, np.ndarray) and weights.dtype.kind in "iufb":
        e.bad("2-D/0-d weights", ValueError)
    else:
        e.bad("weights type", TypeError, ValueError)
    t = e.run(core.AliasTable, weights)
    if t is None:
        return
    if w is not None:
        assert len(t) == len(w)
    e = Expect()
    small_int_arg(e, "n", n, 0)
    rng_seed_arg(e, seed)
    threads_arg(e, nt)
    s = e.run(t.sample, n, seed=seed, num_threads=nt)
    if s is not None and w is not None:
        assert s.dtype == I64 and s.shape == (n,)
        assert ((s >= 0) & (s < len(w))).all()
        assert (w[s] > 0).all(), "sampled a zero-weight entry"


# ------------------------------------------------------------------ negative sampling


@FUZZ
@given(graphs(square=False), arrays(hi=10), st.sampled_from([0, 1, 3, 17, -1, -5, 2**40, 2**63]),
       st.sampled_from(["uniform", "degree", "degree", "Degree", ""]), st.booleans(),
       st.sampled_from([32, 1, 5, 0, -1, 1000]), RNG_SEEDS, THREADS)
def test_fuzz_negative_sample(brute, spec, src, k, strategy, exclude, max_trials, seed, nt):
    g, csr = _graph(brute, spec)
    e = Expect()
    s = ids_arg(e, "src", src, lo=0, hi=g.num_rows)
    if k > 1000 and not (isinstance(src, np.ndarray) and src.size == 0):
        return  # genuinely huge request
    small_int_arg(e, "k", k, 0)
    if k == 0 or (k > core.MAX_FANOUT and k <= INT64_MAX):
        e.maybe(f"k={k}: the spec gives no bound for k")
    if strategy not in ("uniform", "degree"):
        e.bad("strategy", ValueError)
    if max_trials <= 0:
        e.maybe("max_trials <= 0")
    if g.num_cols == 0 or (strategy == "degree" and g.nnz == 0):
        e.maybe("nothing to draw from")
    rng_seed_arg(e, seed)
    threads_arg(e, nt)
    res = e.run(core.negative_sample, csr, src, k, strategy=strategy, exclude_existing=exclude,
                max_trials=max_trials, seed=seed, num_threads=nt)
    if res is None or s is None:
        return
    ns, nd = res
    assert ns.dtype == I64 and nd.dtype == I64 and ns.shape == nd.shape
    it = iter(np.repeat(s, k).tolist())
    assert all(any(x == y for y in it) for x in ns.tolist()), "neg_src is not src repeated per draw"
    assert ((nd >= 0) & (nd < g.num_cols)).all()
    if exclude:
        edges = g.edge_set()
        assert not any((a, b) in edges for a, b in zip(ns.tolist(), nd.tolist()))
    elif max_trials > 0:
        assert len(ns) == len(s) * k
    if strategy == "degree":
        assert (np.bincount(g.indices, minlength=g.num_cols)[nd] > 0).all()


# ------------------------------------------------------------------ walks


PQ = st.sampled_from([1.0, 1.0, 0.5, 2.0, 1e-6, 1e6, 9.9e-7, 1.1e6, 1e-320, 0.0, -1.0, float("nan"),
                      float("inf")])


@FUZZ
@given(graphs(square=True), arrays(hi=10), st.sampled_from([0, 1, 4, -1, 2**40, 2**63]), PQ, PQ,
       RNG_SEEDS, THREADS, st.booleans())
def test_fuzz_random_walk(brute, spec, starts, length, p, q, seed, nt, rect):
    if rect:
        indptr, indices, m, w, eids = spec
        spec = (indptr, indices, m + 1, w, eids)
    g, csr = _graph(brute, spec)
    e = Expect()
    s = ids_arg(e, "starts", starts, lo=0, hi=g.num_rows)
    if length > 1000 and not (isinstance(starts, np.ndarray) and starts.size == 0):
        return  # genuinely huge request
    small_int_arg(e, "length", length, 0)
    for name, v in (("p", p), ("q", q)):
        if not (1e-6 <= v <= 1e6):  # spec: p, q in [1e-6, 1e6]
            e.bad(name, ValueError)
    if rect:
        e.bad("non-square", ValueError)
    if length > 1000:
        e.maybe("huge length with no starts")
    rng_seed_arg(e, seed)
    threads_arg(e, nt)
    w = e.run(core.random_walk, csr, starts, length, p=p, q=q, seed=seed, num_threads=nt)
    if w is None or s is None:
        return
    assert w.dtype == I64 and w.shape == (len(s), length + 1)
    edges = g.edge_set()
    np.testing.assert_array_equal(w[:, 0], s)
    for row in w.tolist():
        dead = False
        for a, b in zip(row[:-1], row[1:]):
            if dead:
                assert b == -1
            elif b == -1:
                assert g.deg(a) == 0
                dead = True
            else:
                assert (a, b) in edges


@FUZZ
@given(graphs(square=False, max_rows=6), arrays(hi=8),
       st.lists(st.sampled_from([0, 1, 0, 1, 2, -1, 5, 2**40]), max_size=5), RNG_SEEDS, THREADS)
def test_fuzz_metapath_walk(brute, spec, starts, metapath, seed, nt):
    g0, csr0 = _graph(brute, spec)
    csr1 = csr0.transpose()
    g1 = brute.Graph(np.array(csr1.indptr), np.array(csr1.indices), csr1.num_cols)
    gs, csrs = [g0, g1], [csr0, csr1]
    e = Expect()
    if not metapath:
        e.maybe("empty metapath")
    first = metapath[0] if metapath else None
    hi = gs[first].num_rows if first in (0, 1) else None
    s = ids_arg(e, "starts", starts, lo=0, hi=hi)
    if any(r not in (0, 1) for r in metapath):
        e.bad("metapath index", IndexError, ValueError, TypeError, OverflowError)
    else:
        for a, b in zip(metapath[:-1], metapath[1:]):
            if csrs[a].num_cols != csrs[b].num_rows:
                e.bad("relations do not chain", ValueError)
    rng_seed_arg(e, seed)
    threads_arg(e, nt)
    w = e.run(core.metapath_walk, csrs, starts, metapath, seed=seed, num_threads=nt)
    if w is None or s is None:
        return
    assert w.dtype == I64 and w.shape == (len(s), len(metapath) + 1)
    sets = [g.edge_set() for g in gs]
    for row in w.tolist():
        dead = False
        for i, r in enumerate(metapath):
            a, b = row[i], row[i + 1]
            if dead:
                assert b == -1
            elif b == -1:
                assert gs[r].deg(a) == 0
                dead = True
            else:
                assert (a, b) in sets[r]


# ------------------------------------------------------------------ misc bindings


@pytest.mark.parametrize("bad", [None, "x", 1.5, [0, 1], np.array([0, 1]), object()])
def test_csr_argument_type_confusion(bad):
    csr = core.CSR(np.array([0, 1], I64), np.array([0], I64), num_cols=1)
    for call in (
        lambda: core.sample_neighbors(bad, np.array([0], I64), 1),
        lambda: core.negative_sample(bad, np.array([0], I64), 1),
        lambda: core.random_walk(bad, np.array([0], I64), 1),
        lambda: core.sample_multihop(bad, np.array([0], I64), [1]),
        lambda: core.metapath_walk([csr, bad], np.array([0], I64), [0, 1]),
        lambda: core.sample_neighbors(csr, np.array([0], I64), bad),
        lambda: core.sample_neighbors(csr, np.array([0], I64), 1, strategy=bad),
    ):
        with pytest.raises(OK_EXC):
            call()
