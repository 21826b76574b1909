"""graphplat._core negative sampling, AliasTable, random_walk (uniform / node2vec), metapath_walk."""
from collections import Counter

import numpy as np
import pytest
from scipy import stats

import graphplat._core as core

I64 = np.int64
P_MIN = 1e-3


def is_subsequence(sub, seq):
    it = iter(seq.tolist())
    return all(any(x == y for y in it) for x in sub.tolist())


# -------------------------------------------------------------------- negative_sample


@pytest.mark.parametrize("strategy", ["uniform", "degree"])
@pytest.mark.parametrize("shape", ["small", "hub", "rect", "unsorted_eids"])
def test_negative_exclude_existing(make_graph, strategy, shape):
    g = make_graph(shape, seed=41)
    csr = g.csr(core)
    edges = g.edge_set()
    src = np.random.default_rng(1).integers(0, g.num_rows, 300).astype(I64)
    k = 5
    ns, nd = core.negative_sample(csr, src, k, strategy=strategy, seed=3)
    assert ns.dtype == I64 and nd.dtype == I64 and ns.shape == nd.shape
    assert len(ns) <= len(src) * k
    assert is_subsequence(ns, np.repeat(src, k))
    assert ((nd >= 0) & (nd < g.num_cols)).all()
    assert not any((s, d) in edges for s, d in zip(ns.tolist(), nd.tolist()))
    if strategy == "degree":
        assert (csr.col_degrees()[nd] > 0).all(), "degree strategy drew a column of degree 0"
    if shape in ("small", "unsorted_eids"):  # sparse: almost nothing is dropped
        assert len(ns) >= 0.95 * len(src) * k


@pytest.mark.parametrize("strategy", ["uniform", "degree"])
def test_negative_no_exclusion_shapes(make_graph, strategy):
    g = make_graph("small", seed=42)
    csr = g.csr(core)
    src = np.random.default_rng(2).integers(0, g.num_rows, 100).astype(I64)
    ns, nd = core.negative_sample(csr, src, 7, strategy=strategy, exclude_existing=False, seed=1)
    np.testing.assert_array_equal(ns, np.repeat(src, 7))
    assert nd.shape == (700,)
    assert ((nd >= 0) & (nd < g.num_cols)).all()


def test_negative_full_rows_are_dropped_and_single_gap_found():
    n = 10
    # row 0: connected to every column; row 1: to every column but 6; row 2: no edges
    indices = np.concatenate([np.arange(n), np.delete(np.arange(n), 6)]).astype(I64)
    indptr = np.array([0, n, 2 * n - 1, 2 * n - 1], I64)
    csr = core.CSR(indptr, indices, num_cols=n)
    src = np.array([0, 1, 2, 0, 1], I64)
    ns, nd = core.negative_sample(csr, src, 20, max_trials=64, seed=5)
    cnt = Counter(ns.tolist())
    assert cnt[0] == 0, "a row adjacent to every column has no negatives"
    assert set(nd[ns == 1].tolist()) <= {6}
    assert cnt[1] >= 0.9 * 40
    assert cnt[2] == 20


def test_negative_uniform_chisquare():
    # row 0 is adjacent to even columns -> negatives uniform over odd columns
    n = 20
    indices = np.arange(0, n, 2, dtype=I64)
    csr = core.CSR(np.array([0, len(indices)], I64), indices, num_cols=n)
    ns, nd = core.negative_sample(csr, np.zeros(2000, I64), 5, seed=7)
    assert len(nd) == 10000
    assert (nd % 2 == 1).all()
    counts = np.bincount(nd, minlength=n)[1::2]
    assert stats.chisquare(counts).pvalue > P_MIN
    # without exclusion: uniform over all columns
    ns, nd = core.negative_sample(csr, np.zeros(2000, I64), 5, exclude_existing=False, seed=8)
    assert stats.chisquare(np.bincount(nd, minlength=n)).pvalue > P_MIN


def test_negative_degree_chisquare():
    # column c (1..8) has in-degree c, column 0 and 9 have in-degree 0
    cols = np.repeat(np.arange(1, 9), np.arange(1, 9))
    rng = np.random.default_rng(9)
    src = rng.integers(0, 10, len(cols))
    order = np.argsort(src, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=10))]).astype(I64)
    csr = core.CSR(indptr, cols[order].astype(I64), num_cols=10)
    cd = csr.col_degrees()
    np.testing.assert_array_equal(cd, np.bincount(cols, minlength=10))
    ns, nd = core.negative_sample(csr, np.arange(10, dtype=I64).repeat(300), 10,
                                  strategy="degree", exclude_existing=False, seed=11)
    counts = np.bincount(nd, minlength=10)
    assert counts[0] == 0 and counts[9] == 0
    p = cd[1:9] ** 0.75
    exp = p / p.sum() * counts.sum()
    assert stats.chisquare(counts[1:9], exp).pvalue > P_MIN


@pytest.mark.parametrize("strategy", ["uniform", "degree"])
def test_negative_determinism_and_threads(make_graph, strategy):
    g = make_graph(None, seed=43, num_rows=20000, avg_deg=6.0)
    csr = g.csr(core)
    src = np.random.default_rng(3).integers(0, g.num_rows, 30000).astype(I64)
    ref = core.negative_sample(csr, src, 3, strategy=strategy, seed=5, num_threads=1)
    for nt in (2, 4):
        out = core.negative_sample(csr, src, 3, strategy=strategy, seed=5, num_threads=nt)
        np.testing.assert_array_equal(ref[0], out[0])
        np.testing.assert_array_equal(ref[1], out[1])
    other = core.negative_sample(csr, src, 3, strategy=strategy, seed=6)
    assert not np.array_equal(ref[1], other[1])


def test_negative_errors(make_graph):
    csr = make_graph("small", seed=44).csr(core)
    with pytest.raises(ValueError, match="(?i)strategy"):
        core.negative_sample(csr, np.array([0], I64), 2, strategy="bogus")
    with pytest.raises(IndexError, match="src"):
        core.negative_sample(csr, np.array([0, 30], I64), 2)
    with pytest.raises(ValueError, match="src"):
        core.negative_sample(csr, np.array([0.5]), 2)
    with pytest.raises(ValueError, match="k"):
        core.negative_sample(csr, np.array([0], I64), -1)


# ----------------------------------------------------------------------- AliasTable


def test_alias_chisquare():
    w = np.array([0.5, 1.0, 2.0, 4.0, 0.0, 3.0, 1e-3, 10.0])
    t = core.AliasTable(w)
    assert len(t) == len(w)
    s = t.sample(200000, seed=1)
    assert s.dtype == I64 and s.shape == (200000,)
    counts = np.bincount(s, minlength=len(w))
    assert counts[4] == 0
    pos = w > 0
    big = w >= 0.5  # chi-square on cells with a large expectation, the rest pooled
    exp = w / w.sum() * len(s)
    obs = np.append(counts[big], counts[pos & ~big].sum())
    ex = np.append(exp[big], exp[pos & ~big].sum())
    assert stats.chisquare(obs, ex).pvalue > P_MIN


def test_alias_single_and_uniform():
    np.testing.assert_array_equal(core.AliasTable(np.array([0.0, 3.0, 0.0])).sample(100), [1] * 100)
    s = core.AliasTable(np.ones(7)).sample(70000, seed=3)
    assert stats.chisquare(np.bincount(s, minlength=7)).pvalue > P_MIN


def test_alias_determinism_and_threads():
    t = core.AliasTable(np.random.default_rng(4).random(1000))
    a = t.sample(300000, seed=9, num_threads=1)
    for nt in (2, 4):
        np.testing.assert_array_equal(a, t.sample(300000, seed=9, num_threads=nt))
    assert not np.array_equal(a, t.sample(300000, seed=10))
    assert t.sample(0).shape == (0,)


@pytest.mark.parametrize(
    "w",
    [np.array([1.0, -0.1, 2.0]), np.array([1.0, np.nan]), np.array([np.inf, 1.0]),
     np.zeros(4), np.array([], np.float64), np.ones((2, 2))],
    ids=["negative", "nan", "inf", "all_zero", "empty", "2d"],
)
def test_alias_bad_weights(w):
    with pytest.raises(ValueError, match="(?i)weight"):
        core.AliasTable(w)


# -------------------------------------------------------------------------- walks


def _undirected(n, pairs):
    pairs = np.array(pairs, I64)
    src = np.concatenate([pairs[:, 0], pairs[:, 1]])
    dst = np.concatenate([pairs[:, 1], pairs[:, 0]])
    order = np.lexsort((dst, src))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=n))]).astype(I64)
    return core.CSR(indptr, dst[order], num_cols=n)


def _ring_lattice(n, k=2):
    return _undirected(n, [(i, (i + d) % n) for i in range(n) for d in range(1, k + 1)])


def check_walks(g, starts, walks, length):
    edges = g.edge_set()
    assert walks.dtype == I64
    assert walks.shape == (len(starts), length + 1)
    np.testing.assert_array_equal(walks[:, 0], starts)
    for w in walks.tolist():
        dead = False
        for a, b in zip(w[:-1], w[1:]):
            if dead or a == -1:
                assert b == -1
                dead = True
                continue
            if b == -1:
                assert g.deg(a) == 0, f"walk stopped at {a} which has neighbors"
                dead = True
            else:
                assert (a, b) in edges, f"step {a}->{b} is not an edge"


@pytest.mark.parametrize("p, q", [(1.0, 1.0), (0.25, 4.0), (4.0, 0.25), (1.0, 0.5)])
@pytest.mark.parametrize("shape", ["small", "isolated", "hub", "multi"])
def test_walk_steps_are_edges(make_graph, shape, p, q):
    g = make_graph(shape, seed=51)
    csr = g.csr(core)
    starts = np.concatenate([np.arange(g.num_rows), np.arange(g.num_rows)]).astype(I64)
    walks = core.random_walk(csr, starts, 12, p=p, q=q, seed=4)
    check_walks(g, starts, walks, 12)


@pytest.mark.parametrize("p, q", [(1.0, 1.0), (0.5, 2.0)])
def test_walk_dead_end_padding(p, q):
    # 0 -> 1 -> 2, 2 has no out-neighbors, 3 isolated
    csr = core.CSR(np.array([0, 1, 2, 2, 2], I64), np.array([1, 2], I64), num_cols=4)
    w = core.random_walk(csr, np.array([0, 1, 2, 3], I64), 5, p=p, q=q)
    np.testing.assert_array_equal(
        w,
        [[0, 1, 2, -1, -1, -1], [1, 2, -1, -1, -1, -1], [2, -1, -1, -1, -1, -1], [3, -1, -1, -1, -1, -1]],
    )
    assert core.random_walk(csr, np.array([0, 1], I64), 0).tolist() == [[0], [1]]


def test_walk_first_step_uniform():
    csr = _undirected(7, [(0, i) for i in range(1, 7)])
    w = core.random_walk(csr, np.zeros(12000, I64), 1, seed=2)
    assert stats.chisquare(np.bincount(w[:, 1], minlength=7)[1:]).pvalue > P_MIN


def test_node2vec_transition_probabilities():
    # 0-1, 0-2, 1-2, 1-3, 1-4, 3-5, 4-5.  Walk from 0; condition on the first step 0 -> 1.
    # From 1 (prev 0): 0 = return (1/p), 2 = neighbor of 0 (1), 3 and 4 = distance 2 (1/q).
    csr = _undirected(6, [(0, 1), (0, 2), (1, 2), (1, 3), (1, 4), (3, 5), (4, 5)])
    for p, q in [(0.5, 2.0), (4.0, 0.25)]:
        w = core.random_walk(csr, np.zeros(40000, I64), 2, p=p, q=q, seed=13)
        sel = w[w[:, 1] == 1, 2]
        counts = np.bincount(sel, minlength=6)[[0, 2, 3, 4]]
        wts = np.array([1 / p, 1.0, 1 / q, 1 / q])
        exp = wts / wts.sum() * len(sel)
        assert stats.chisquare(counts, exp).pvalue > P_MIN, (p, q, counts, exp)


@pytest.mark.parametrize("p, q, exp_return", [(1e-6, 1.0, 1.0), (1.0, 1e-6, 0.0), (1e6, 1.0, 0.0),
                                               (1.0, 1e6, 1.0)])
def test_node2vec_extreme_pq(p, q, exp_return):
    """Path 0-1-2 from 0: the 2nd step returns to 0 (weight 1/p) or goes to 2 (weight 1/q).
    At the ends of the allowed range [1e-6, 1e6] the heavier move must (almost) always win."""
    csr = _undirected(3, [(0, 1), (1, 2)])
    w = core.random_walk(csr, np.zeros(2000, I64), 2, p=p, q=q, seed=1)
    assert abs(np.mean(w[:, 2] == 0) - exp_return) < 0.01


def _return_rate(w):
    return float(np.mean(w[:, 2:] == w[:, :-2]))


def test_node2vec_small_p_returns_more():
    csr = _ring_lattice(200)
    starts = np.tile(np.arange(200, dtype=I64), 5)
    lo = _return_rate(core.random_walk(csr, starts, 20, p=0.1, q=1.0, seed=1))
    hi = _return_rate(core.random_walk(csr, starts, 20, p=10.0, q=1.0, seed=1))
    uni = _return_rate(core.random_walk(csr, starts, 20, seed=1))
    # expected: 10/13 ~ 0.77, 0.25, 0.1/3.1 ~ 0.03
    assert lo > 0.6 and hi < 0.1 and hi < uni < lo, (lo, uni, hi)


def test_node2vec_small_q_explores_further():
    csr = _ring_lattice(500)
    starts = np.tile(np.arange(0, 500, 5, dtype=I64), 5)
    w_out = core.random_walk(csr, starts, 30, p=1.0, q=0.1, seed=2)
    w_in = core.random_walk(csr, starts, 30, p=1.0, q=10.0, seed=2)
    distinct_out = np.mean([len(set(r)) for r in w_out.tolist()])
    distinct_in = np.mean([len(set(r)) for r in w_in.tolist()])
    ret_out, ret_in = _return_rate(w_out), _return_rate(w_in)
    assert distinct_out > 1.5 * distinct_in, (distinct_out, distinct_in)
    assert ret_out < ret_in


def test_walk_determinism_and_threads(make_graph):
    g = make_graph(None, seed=52, num_rows=20000, avg_deg=5.0)
    csr = g.csr(core)
    starts = np.random.default_rng(1).integers(0, g.num_rows, 20000).astype(I64)
    for p, q in [(1.0, 1.0), (0.5, 2.0)]:
        ref = core.random_walk(csr, starts, 8, p=p, q=q, seed=3, num_threads=1)
        for nt in (2, 4):
            np.testing.assert_array_equal(ref, core.random_walk(csr, starts, 8, p=p, q=q, seed=3,
                                                                num_threads=nt))
        assert not np.array_equal(ref, core.random_walk(csr, starts, 8, p=p, q=q, seed=4))


@pytest.mark.parametrize("p, q", [(0.0, 1.0), (1.0, 0.0), (-1.0, 1.0), (1.0, -2.0), (1e-320, 1.0),
                                  (1.0, 9e-7), (2e6, 1.0), (1.0, float("inf")), (float("nan"), 1.0)])
def test_walk_bad_pq(make_graph, p, q):
    csr = make_graph("small", seed=53).csr(core)
    with pytest.raises(ValueError, match=r"\bp\b|\bq\b"):
        core.random_walk(csr, np.array([0], I64), 3, p=p, q=q)


def test_walk_errors(make_graph):
    csr = make_graph("small", seed=54).csr(core)
    with pytest.raises(IndexError, match="starts"):
        core.random_walk(csr, np.array([0, 30], I64), 3)
    with pytest.raises(ValueError, match="length"):
        core.random_walk(csr, np.array([0], I64), -1)
    rect = make_graph("rect", seed=1).csr(core)
    with pytest.raises(ValueError, match="(?i)square|num_rows|num_cols"):
        core.random_walk(rect, np.array([0], I64), 3)


# -------------------------------------------------------------------- metapath_walk


@pytest.fixture(scope="module")
def bipartite(make_graph):
    g_ui = make_graph(None, seed=61, num_rows=40, num_cols=25, avg_deg=2.0, isolated_frac=0.2,
                      weights=False)
    ui = g_ui.csr(core)
    iu = ui.transpose()
    ui_edges = g_ui.edge_set()
    iu_edges = {(i, u) for u, i in ui_edges}
    return ui, iu, ui_edges, iu_edges, g_ui


def test_metapath_walk_steps_follow_relations(bipartite):
    ui, iu, ui_edges, iu_edges, g_ui = bipartite
    starts = np.tile(np.arange(40, dtype=I64), 10)
    metapath = [0, 1, 0, 1]
    w = core.metapath_walk([ui, iu], starts, metapath, seed=3)
    assert w.dtype == I64 and w.shape == (len(starts), 5)
    np.testing.assert_array_equal(w[:, 0], starts)
    rel_edges = [ui_edges, iu_edges]
    rel_deg = [np.diff(ui.indptr), np.diff(iu.indptr)]
    n_full = 0
    for row in w.tolist():
        dead = False
        for i, r in enumerate(metapath):
            a, b = row[i], row[i + 1]
            if dead:
                assert b == -1
                continue
            if b == -1:
                assert rel_deg[r][a] == 0, "walk stopped although the node has neighbors"
                dead = True
            else:
                assert (a, b) in rel_edges[r], f"step {i}: {a}->{b} not in relation {r}"
        n_full += not dead
    assert n_full > 0
    # users without items are dead ends right away
    iso = np.flatnonzero(rel_deg[0] == 0)
    assert len(iso) > 0
    assert (w[np.isin(starts, iso), 1:] == -1).all()


def test_metapath_walk_determinism_and_threads(bipartite):
    ui, iu = bipartite[:2]
    starts = np.tile(np.arange(40, dtype=I64), 500)
    ref = core.metapath_walk([ui, iu], starts, [0, 1, 0, 1, 0], seed=1, num_threads=1)
    for nt in (2, 4):
        np.testing.assert_array_equal(ref, core.metapath_walk([ui, iu], starts, [0, 1, 0, 1, 0],
                                                              seed=1, num_threads=nt))
    assert not np.array_equal(ref, core.metapath_walk([ui, iu], starts, [0, 1, 0, 1, 0], seed=2))


def test_metapath_walk_errors(bipartite):
    ui, iu = bipartite[:2]
    starts = np.arange(5, dtype=I64)
    with pytest.raises(ValueError, match="(?i)chain|num_cols|num_rows|metapath"):
        core.metapath_walk([ui, iu], starts, [0, 0])
    with pytest.raises(ValueError, match="(?i)chain|num_cols|num_rows|metapath"):
        core.metapath_walk([ui, iu], starts, [0, 1, 1])
    for bad in ([0, 2], [0, -1], [5]):
        with pytest.raises((IndexError, ValueError), match="(?i)metapath"):
            core.metapath_walk([ui, iu], starts, bad)
    with pytest.raises(IndexError, match="starts"):
        core.metapath_walk([ui, iu], np.array([40], I64), [0, 1])
    with pytest.raises(IndexError, match="starts"):
        core.metapath_walk([ui, iu], np.array([30], I64), [1, 0])  # items: 25 rows
