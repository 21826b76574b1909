"""sample_neighbors vs dgl.sampling.sample_neighbors on real data (Cora, Planetoid split)."""
import pickle

import numpy as np
import pytest
from scipy import stats

import graphplat._core as core

I64 = np.int64
RUNS = 200
FANOUT = 3


@pytest.fixture(scope="module")
def cora(datasets_dir):
    path = datasets_dir / "cora" / "ind.cora.graph"
    if not path.is_file():
        pytest.skip(f"Cora adjacency not found at {path}")
    with open(path, "rb") as f:
        adj = pickle.load(f, encoding="latin1")
    n = max(max(adj), max((max(v) for v in adj.values() if v), default=0)) + 1
    pairs = {(int(u), int(v)) for u, vs in adj.items() for v in vs if int(u) != int(v)}
    pairs |= {(v, u) for u, v in pairs}  # symmetric, no duplicates
    pairs = np.array(sorted(pairs), I64)
    src, dst = pairs[:, 0], pairs[:, 1]  # DGL edge id i = (src[i] -> dst[i])
    # CSC (rows = destinations) so our row neighbors are DGL's in-neighbors and eids match DGL's
    order = np.lexsort((src, dst))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(dst, minlength=n))]).astype(I64)
    csc = core.CSR(indptr, src[order], num_cols=n, eids=order.astype(I64))
    return n, src, dst, csc


def test_cora_loaded(cora):
    n, src, dst, csc = cora
    assert n == 2708
    assert len(src) == 2 * 5278  # README: 5,278 undirected edges
    assert csc.rows_sorted


def _dgl_graph(n, src, dst):
    import dgl
    import torch

    return dgl.graph((torch.from_numpy(src), torch.from_numpy(dst)), num_nodes=n)


def _run_both(cora, replace):
    import dgl
    import torch

    n, src, dst, csc = cora
    g = _dgl_graph(n, src, dst)
    nodes = np.arange(n, dtype=I64)
    nodes_t = torch.from_numpy(nodes)
    ours = np.zeros(len(src), I64)
    theirs = np.zeros(len(src), I64)
    for r in range(RUNS):
        c, nb, e = core.sample_neighbors(csc, nodes, FANOUT, replace=replace, seed=r)
        # each sampled edge is nb -> seed, with DGL's edge id
        np.testing.assert_array_equal(dst[e], np.repeat(nodes, c))
        np.testing.assert_array_equal(src[e], nb)
        np.add.at(ours, e, 1)
        dgl.seed(1000 + r)
        sg = dgl.sampling.sample_neighbors(g, nodes_t, FANOUT, replace=replace)
        de = sg.edata[dgl.EID].numpy()
        np.add.at(theirs, de, 1)
        dcount = np.bincount(dst[de], minlength=n)
        np.testing.assert_array_equal(c, dcount, err_msg="per-node sampled counts differ from DGL")
    return ours, theirs


def _homogeneity(cora, ours, theirs, replace):
    """Two-sample test that the per-edge selection counts of both samplers have the same law,
    node by node (pooled over nodes with degree > FANOUT).

    With replacement the per-node count vectors are multinomial and the statistic is the
    usual 2 x deg homogeneity chi-square sum (a - b)^2 / (a + b). Without replacement each run
    draws a uniform FANOUT-subset: the indicator covariance is p(1-p) d/(d-1) (I - J/d) with
    p = FANOUT/d, so sum (a - b)^2 / (2 R p (1-p)) * (d-1)/d ~ chi2(d - 1).
    """
    n, src, dst, csc = cora
    deg = np.bincount(dst, minlength=n)
    d = deg[dst].astype(np.float64)
    diff2 = (ours - theirs).astype(np.float64) ** 2
    use_node = deg > FANOUT
    if replace:
        tot = ours + theirs
        keep = tot > 0
        cell = np.zeros(len(src))
        cell[keep] = diff2[keep] / tot[keep]
        dof_node = np.bincount(dst, weights=keep, minlength=n) - 1
        use_node &= dof_node > 0
    else:
        p = np.minimum(1.0, FANOUT / d)
        cell = np.zeros(len(src))
        m = p < 1
        cell[m] = diff2[m] / (2 * RUNS * p[m] * (1 - p[m])) * (d[m] - 1) / d[m]
        dof_node = deg - 1
    stat_node = np.bincount(dst, weights=cell, minlength=n)
    return stats.chi2.sf(stat_node[use_node].sum(), dof_node[use_node].sum())


@pytest.mark.parametrize("replace", [False, True])
def test_counts_and_frequencies_match_dgl(cora, replace):
    n, src, dst, csc = cora
    deg = np.bincount(dst, minlength=n)
    ours, theirs = _run_both(cora, replace)
    # every run has identical per-node counts (checked inside); totals follow
    per_node = np.where(deg > 0, FANOUT, 0) if replace else np.minimum(FANOUT, deg)
    assert ours.sum() == theirs.sum() == RUNS * per_node.sum()
    if not replace:
        small = deg[dst] <= FANOUT  # edges of low-degree nodes: always taken by both
        assert (ours[small] == RUNS).all() and (theirs[small] == RUNS).all()
    assert _homogeneity(cora, ours, theirs, replace) > 1e-3
    # mean per-edge frequency per degree bucket agrees with theory and with DGL
    edeg = deg[dst]
    for lo, hi in [(1, 2), (2, 4), (4, 8), (8, 16), (16, 10**9)]:
        m = (edeg >= lo) & (edeg < hi)
        if m.sum() < 50:
            continue
        f_ours = ours[m].mean() / RUNS
        f_dgl = theirs[m].mean() / RUNS
        theory = (FANOUT / edeg[m]).mean() if replace else np.minimum(1.0, FANOUT / edeg[m]).mean()
        assert abs(f_ours - theory) < 0.02 and abs(f_dgl - theory) < 0.02, (lo, f_ours, f_dgl, theory)
    # spread: per-edge variance comparable to DGL's on high-degree nodes
    big = edeg > 2 * FANOUT
    v_ours, v_dgl = ours[big].var(), theirs[big].var()
    assert 0.8 < v_ours / v_dgl < 1.25, (v_ours, v_dgl)


def test_full_matches_dgl_in_edges(cora):
    import torch

    n, src, dst, csc = cora
    g = _dgl_graph(n, src, dst)
    nodes = np.array([0, 5, 100, 2707, 1358], I64)
    c, nb, e = core.sample_neighbors(csc, nodes, -1, strategy="full")
    off = np.concatenate([[0], np.cumsum(c)])
    for i, v in enumerate(nodes.tolist()):
        in_eids = g.in_edges(torch.tensor([v]), form="eid").numpy()
        assert sorted(e[off[i]:off[i + 1]].tolist()) == sorted(in_eids.tolist())
