"""graphplat._core.sample_neighbors: brute-force correctness, statistics, determinism."""
import numpy as np
import pytest
from scipy import stats

import graphplat._core as core

I64 = np.int64
SHAPES = ["small", "isolated", "hub", "multi", "rect", "unsorted_eids"]
P_MIN = 1e-3


def _all_rows(g):
    return np.arange(g.num_rows, dtype=I64)


def _seeds(g, rng):
    # every row once plus random repeats
    return np.concatenate([_all_rows(g), rng.integers(0, g.num_rows, 20)]).astype(I64)


# ---------------------------------------------------------------- brute-force checks


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("replace", [False, True])
@pytest.mark.parametrize("fanout", [1, 3, 10])
def test_uniform_valid_edges_and_counts(make_graph, brute, shape, replace, fanout):
    g = make_graph(shape, seed=11)
    csr = g.csr(core)
    seeds = _seeds(g, np.random.default_rng(1))
    c, n, e = core.sample_neighbors(csr, seeds, fanout, replace=replace, seed=123)
    brute.check_sampled(g, seeds, c, n, e, replace=replace)
    deg = np.diff(g.indptr)[seeds]
    exp = np.where(deg > 0, fanout, 0) if replace else np.minimum(fanout, deg)
    np.testing.assert_array_equal(c, exp)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("how", ["full", "minus1"])
def test_full_returns_every_neighbor(make_graph, brute, shape, how):
    g = make_graph(shape, seed=12)
    csr = g.csr(core)
    seeds = _seeds(g, np.random.default_rng(2))
    if how == "full":
        c, n, e = core.sample_neighbors(csr, seeds, -1, strategy="full", seed=5)
    else:
        c, n, e = core.sample_neighbors(csr, seeds, -1, seed=5)
    pos = brute.check_sampled(g, seeds, c, n, e, replace=False)
    for s, p in zip(seeds.tolist(), pos):
        assert sorted(p) == list(g.row_positions(s))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("fanout", [1, 2, 5, 40])
def test_topk_returns_heaviest(make_graph, brute, shape, fanout):
    g = make_graph(shape, seed=13)  # weights take few distinct values: many ties
    csr = g.csr(core)
    seeds = _seeds(g, np.random.default_rng(3))
    c, n, e = core.sample_neighbors(csr, seeds, fanout, strategy="topk", seed=9)
    pos = brute.check_sampled(g, seeds, c, n, e, replace=False)
    for s, p in zip(seeds.tolist(), pos):
        row = list(g.row_positions(s))
        exp = sorted(row, key=lambda q: (-g.weights[q], q))[:fanout]
        assert sorted(g.weights[p].tolist()) == sorted(g.weights[exp].tolist())
        assert sorted(p) == sorted(exp), "ties must be broken by lower position first"


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("replace", [False, True])
@pytest.mark.parametrize("fanout", [1, 3, 10])
def test_weighted_never_picks_zero_weight(make_graph, brute, shape, replace, fanout):
    g = make_graph(shape, seed=14, zero_weight_frac=0.4)
    csr = g.csr(core)
    seeds = _seeds(g, np.random.default_rng(4))
    c, n, e = core.sample_neighbors(csr, seeds, fanout, strategy="weighted", replace=replace, seed=77)
    pos = brute.check_sampled(g, seeds, c, n, e, replace=replace)
    for i, (s, p) in enumerate(zip(seeds.tolist(), pos)):
        npos = int((g.weights[list(g.row_positions(s))] > 0).sum())
        assert all(g.weights[q] > 0 for q in p), f"seed {s}: picked a weight-0 edge"
        if replace:
            assert c[i] == (fanout if npos > 0 else 0)
        else:
            assert c[i] == min(fanout, npos)


@pytest.mark.parametrize("strategy", ["weighted", "topk"])
def test_weight_strategies_require_weights(make_graph, strategy):
    g = make_graph("small", seed=1)
    csr = g.csr(core, weights=False)
    if strategy == "topk":
        # spec: "requires weights" is only stated for "weighted"; topk on an unweighted
        # CSR must at least not crash and either fail cleanly or return valid edges.
        try:
            c, n, e = core.sample_neighbors(csr, _all_rows(g), 2, strategy=strategy)
        except ValueError:
            return
        np.testing.assert_array_equal(c, np.minimum(2, np.diff(g.indptr)))
        return
    with pytest.raises(ValueError, match="(?i)weight"):
        core.sample_neighbors(csr, _all_rows(g), 2, strategy=strategy)


def test_in_neighbors_via_transpose(make_graph, brute):
    g = make_graph("multi", seed=15, sort=False)
    csr = g.csr(core)
    t = csr.transpose()
    nodes = np.arange(g.num_cols, dtype=I64)
    # full in-neighborhood equals the brute-force list of (src) for every edge src->v
    c, n, e = core.sample_neighbors(t, nodes, -1, strategy="full")
    offs = np.concatenate([[0], np.cumsum(c)])
    rows = np.repeat(np.arange(g.num_rows), np.diff(g.indptr))
    for v in nodes.tolist():
        exp_pos = np.flatnonzero(g.indices == v)
        got_e = e[offs[v]:offs[v + 1]]
        assert sorted(got_e.tolist()) == sorted(exp_pos.tolist())
        np.testing.assert_array_equal(np.sort(n[offs[v]:offs[v + 1]]), np.sort(rows[exp_pos]))
    # sampled in-neighbors: every (nbr -> v) is an original edge with that eid
    c, n, e = core.sample_neighbors(t, nodes, 3, seed=4)
    offs = np.concatenate([[0], np.cumsum(c)])
    for v in nodes.tolist():
        for nb, eid in zip(n[offs[v]:offs[v + 1]].tolist(), e[offs[v]:offs[v + 1]].tolist()):
            assert g.indptr[nb] <= eid < g.indptr[nb + 1]
            assert g.indices[eid] == v


def test_argument_errors(make_graph):
    g = make_graph("small", seed=1)
    csr = g.csr(core)
    seeds = _all_rows(g)
    for bad in (0, -2, -5, core.MAX_FANOUT + 1):
        with pytest.raises(ValueError, match="(?i)fanout"):
            core.sample_neighbors(csr, seeds, bad)
    with pytest.raises(ValueError, match="(?i)strategy"):
        core.sample_neighbors(csr, seeds, 2, strategy="bogus")
    with pytest.raises(IndexError, match=r"seeds.*\b30\b|\b30\b.*seeds"):
        core.sample_neighbors(csr, np.array([0, 30], I64), 2)
    with pytest.raises(IndexError, match="seeds"):
        core.sample_neighbors(csr, np.array([-1], I64), 2)
    with pytest.raises(ValueError, match="seeds"):
        core.sample_neighbors(csr, np.array([0.0, 1.0]), 2)
    with pytest.raises(ValueError, match="seeds"):
        core.sample_neighbors(csr, seeds.reshape(2, -1), 2)
    with pytest.raises(ValueError, match="positions"):
        core.sample_neighbors(csr, seeds, 2, positions=np.arange(3, dtype=I64))


def test_empty_positions_with_nonempty_seeds_rejected(make_graph):
    """An empty ``positions`` array is not "no positions": its length must match seeds."""
    csr = make_graph("small", seed=1).csr(core)
    with pytest.raises(ValueError, match="positions"):
        core.sample_neighbors(csr, np.array([0, 1], I64), 2, positions=np.array([], I64))


def test_int32_seeds_same_as_int64(make_graph):
    g = make_graph("small", seed=1)
    csr = g.csr(core)
    a = core.sample_neighbors(csr, _all_rows(g), 2, seed=3)
    b = core.sample_neighbors(csr, _all_rows(g).astype(np.int32), 2, seed=3)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


# --------------------------------------------------------------------------- statistics


def _star(deg, weights=None):
    """Row 0 has ``deg`` edges to columns 1..deg; rows 1..deg are empty."""
    indptr = np.array([0, deg] + [deg] * deg, I64)
    indices = np.arange(1, deg + 1, dtype=I64)
    w = None if weights is None else np.asarray(weights, np.float32)
    return core.CSR(indptr, indices, num_cols=deg + 1, weights=w)


@pytest.mark.parametrize("replace", [False, True])
def test_uniform_chisquare_many_positions(replace):
    deg, N = 20, 20000
    csr = _star(deg)
    c, n, e = core.sample_neighbors(csr, np.zeros(N, I64), 1, replace=replace, seed=42)
    counts = np.bincount(e, minlength=deg)
    assert stats.chisquare(counts).pvalue > P_MIN


def test_uniform_without_replacement_inclusion_chisquare():
    deg, N, f = 20, 10000, 5
    csr = _star(deg)
    c, n, e = core.sample_neighbors(csr, np.zeros(N, I64), f, seed=7)
    assert (c == f).all()
    counts = np.bincount(e, minlength=deg)
    # inclusion indicators of a uniform f-subset have covariance p(1-p) d/(d-1) (I - J/d),
    # p = f/d: rescale Pearson's statistic so that it is chi2(d - 1) distributed
    pearson = stats.chisquare(counts).statistic
    p = f / deg
    stat = pearson / ((1 - p) * deg / (deg - 1))
    assert stats.chi2.sf(stat, deg - 1) > P_MIN
    assert stats.chi2.cdf(stat, deg - 1) > P_MIN  # not suspiciously uniform either


def test_uniform_chisquare_many_seed_values():
    deg, R = 20, 3000
    csr = _star(deg)
    seeds = np.zeros(1, I64)
    counts = np.zeros(deg, I64)
    for s in range(R):
        c, n, e = core.sample_neighbors(csr, seeds, 1, seed=s)
        counts[e[0]] += 1
    assert stats.chisquare(counts).pvalue > P_MIN


def test_uniform_chisquare_many_hops():
    deg, R = 20, 3000
    csr = _star(deg)
    seeds = np.zeros(1, I64)
    counts = np.zeros(deg, I64)
    for h in range(R):
        c, n, e = core.sample_neighbors(csr, seeds, 1, seed=1, hop=h)
        counts[e[0]] += 1
    assert stats.chisquare(counts).pvalue > P_MIN


def test_weighted_with_replacement_chisquare():
    w = np.array([1, 2, 3, 4, 5, 6, 7, 8, 0, 0.5, 10, 2.5], np.float64)
    N = 30000
    csr = _star(len(w), w)
    c, n, e = core.sample_neighbors(csr, np.zeros(N // 4, I64), 4, strategy="weighted",
                                    replace=True, seed=3)
    counts = np.bincount(e, minlength=len(w))
    assert counts[w == 0].sum() == 0
    pos = w > 0
    exp = w[pos] / w[pos].sum() * counts.sum()
    assert stats.chisquare(counts[pos], exp).pvalue > P_MIN


def test_weighted_without_replacement_single_draw_is_proportional():
    # one draw without replacement has the same law as one draw with replacement
    w = np.array([1, 2, 3, 4, 5, 6, 0, 8], np.float64)
    N = 20000
    csr = _star(len(w), w)
    c, n, e = core.sample_neighbors(csr, np.zeros(N, I64), 1, strategy="weighted", seed=8)
    counts = np.bincount(e, minlength=len(w))
    assert counts[w == 0].sum() == 0
    pos = w > 0
    exp = w[pos] / w[pos].sum() * N
    assert stats.chisquare(counts[pos], exp).pvalue > P_MIN


def test_weighted_without_replacement_inclusion_ordering():
    w = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0], np.float64)
    N, f = 20000, 3
    csr = _star(len(w), w)
    c, n, e = core.sample_neighbors(csr, np.zeros(N, I64), f, strategy="weighted", seed=9)
    assert (c == f).all()
    freq = np.bincount(e, minlength=len(w)) / N
    assert freq[-1] == 0
    assert np.isclose(freq.sum(), f)
    assert (freq <= 1).all()
    rho = stats.spearmanr(w[:-1], freq[:-1]).correlation
    assert rho > 0.95, freq
    assert freq[9] > freq[4] > freq[0]
    # heavier edges are included more often, but never more than f times their share
    assert freq[9] < f * w[9] / w.sum() + 0.02


# -------------------------------------------------------------------------- determinism


@pytest.fixture(scope="module")
def big_graph(make_graph):
    g = make_graph(None, seed=99, num_rows=20000, avg_deg=10.0, hubs=5, hub_deg=2000)
    return g, g.csr(core)


STRATS = [("uniform", False), ("uniform", True), ("weighted", False), ("weighted", True), ("topk", False)]


@pytest.mark.parametrize("strategy, replace", STRATS)
def test_same_seed_same_output_different_seed_differs(big_graph, strategy, replace):
    g, csr = big_graph
    seeds = np.arange(0, g.num_rows, 3, dtype=I64)
    a = core.sample_neighbors(csr, seeds, 4, strategy=strategy, replace=replace, seed=1)
    b = core.sample_neighbors(csr, seeds, 4, strategy=strategy, replace=replace, seed=1)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    if strategy == "topk":
        return  # deterministic by definition
    c = core.sample_neighbors(csr, seeds, 4, strategy=strategy, replace=replace, seed=2)
    assert not np.array_equal(a[2], c[2])
    d = core.sample_neighbors(csr, seeds, 4, strategy=strategy, replace=replace, seed=1, hop=1)
    assert not np.array_equal(a[2], d[2])


@pytest.mark.parametrize("strategy, replace", STRATS)
def test_thread_count_invariance(big_graph, strategy, replace):
    g, csr = big_graph
    seeds = np.random.default_rng(5).permutation(g.num_rows).astype(I64)
    ref = core.sample_neighbors(csr, seeds, 5, strategy=strategy, replace=replace, seed=17,
                                num_threads=1)
    for nt in (2, 4, 0):
        out = core.sample_neighbors(csr, seeds, 5, strategy=strategy, replace=replace, seed=17,
                                    num_threads=nt)
        for x, y in zip(ref, out):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("strategy, replace", STRATS)
def test_positions_reproduce_slices(big_graph, strategy, replace):
    g, csr = big_graph
    rng = np.random.default_rng(6)
    seeds = rng.integers(0, g.num_rows, 3000).astype(I64)
    kw = dict(strategy=strategy, replace=replace, seed=23, hop=2)
    c, n, e = core.sample_neighbors(csr, seeds, 4, **kw)
    offs = np.concatenate([[0], np.cumsum(c)])
    # split the batch into two interleaved "partitions"
    for part in (np.flatnonzero(seeds % 2 == 0), np.flatnonzero(seeds % 2 == 1)):
        pc, pn, pe = core.sample_neighbors(csr, seeds[part], 4, positions=part.astype(I64), **kw)
        np.testing.assert_array_equal(pc, c[part])
        exp_n = np.concatenate([n[offs[i]:offs[i + 1]] for i in part])
        exp_e = np.concatenate([e[offs[i]:offs[i + 1]] for i in part])
        np.testing.assert_array_equal(pn, exp_n)
        np.testing.assert_array_equal(pe, exp_e)
    # default positions are arange(len(seeds))
    d = core.sample_neighbors(csr, seeds, 4, positions=np.arange(len(seeds), dtype=I64), **kw)
    for x, y in zip((c, n, e), d):
        np.testing.assert_array_equal(x, y)


def test_result_independent_of_batch_neighbors(big_graph):
    """A seed's sample depends only on (seed, hop, position), not on the other seeds."""
    g, csr = big_graph
    seeds = np.arange(100, dtype=I64)
    c, n, e = core.sample_neighbors(csr, seeds, 3, seed=4)
    other = seeds.copy()
    other[1:] = (other[1:] + 5000) % g.num_rows
    c2, n2, e2 = core.sample_neighbors(csr, other, 3, seed=4)
    assert c[0] == c2[0]
    np.testing.assert_array_equal(e[:c[0]], e2[:c2[0]])
