"""Sampling the union of a bulk CSR and an online delta CSR (what a graph server does
between compactions) must behave like sampling the merged graph."""
import numpy as np
import pytest

import graphplat._core as core


def _random_csr(rng, n, m, nnz, weighted, eid_base):
    rows = rng.integers(0, n, nnz)
    cols = rng.integers(0, m, nnz)
    order = np.argsort(rows, kind="stable")
    rows, cols = rows[order], cols[order]
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    w = rng.random(nnz).astype(np.float32) if weighted else None
    if weighted:
        w[rng.random(nnz) < 0.2] = 0.0
    eids = eid_base + np.arange(nnz, dtype=np.int64)
    return indptr, cols.astype(np.int64), w, eids


def _pair(rng, weighted=False):
    n, m = 40, 60
    b = _random_csr(rng, n, m, 400, weighted, 0)
    d = _random_csr(rng, n, m + 5, 120, weighted, 10_000)  # delta may add columns
    bulk = core.CSR(b[0], b[1], num_cols=m, weights=b[2], eids=b[3])
    delta = core.CSR(d[0], d[1], num_cols=m + 5, weights=d[2], eids=d[3])
    return bulk, delta


def _edges_of(csr):
    rows = np.repeat(np.arange(csr.num_rows), np.diff(csr.indptr))
    eids = csr.eids if csr.eids is not None else np.arange(csr.nnz)
    w = csr.weights if csr.weights is not None else np.ones(csr.nnz, np.float32)
    return {int(e): (int(r), int(c), float(x)) for r, c, e, x in zip(rows, csr.indices, eids, w)}


def test_full_returns_exactly_the_union():
    bulk, delta = _pair(np.random.default_rng(0))
    seeds = np.arange(bulk.num_rows)
    counts, nbrs, eids = core.sample_neighbors(bulk, seeds, -1, strategy="full", delta=delta)
    union = {**_edges_of(bulk), **_edges_of(delta)}
    assert len(eids) == len(union) and set(eids.tolist()) == set(union)
    np.testing.assert_array_equal(counts, bulk.degrees() + delta.degrees())
    owner = np.repeat(seeds, counts)
    for r, c, e in zip(owner, nbrs, eids):
        assert union[int(e)][:2] == (r, c)


@pytest.mark.parametrize("replace", [False, True])
def test_uniform_edges_come_from_the_union(replace):
    bulk, delta = _pair(np.random.default_rng(1))
    union = {**_edges_of(bulk), **_edges_of(delta)}
    seeds = np.arange(bulk.num_rows)
    deg = bulk.degrees() + delta.degrees()
    counts, nbrs, eids = core.sample_neighbors(bulk, seeds, 5, replace=replace, delta=delta, seed=3)
    expect = np.where(deg > 0, 5, 0) if replace else np.minimum(deg, 5)
    np.testing.assert_array_equal(counts, expect)
    owner = np.repeat(seeds, counts)
    for r, c, e in zip(owner, nbrs, eids):
        assert union[int(e)][:2] == (r, c)
    if not replace:
        for s in seeds:
            got = eids[owner == s]
            assert len(set(got.tolist())) == len(got)


def test_delta_edges_are_sampled_uniformly():
    # One row: 3 bulk edges, 3 delta edges; each of the 6 must be picked about equally.
    bulk = core.CSR(np.array([0, 3]), np.array([0, 1, 2]), num_cols=6, eids=np.arange(3))
    delta = core.CSR(np.array([0, 3]), np.array([3, 4, 5]), num_cols=6, eids=np.arange(100, 103))
    seeds = np.zeros(30000, np.int64)
    _, nbrs, _ = core.sample_neighbors(bulk, seeds, 1, delta=delta, seed=5)
    freq = np.bincount(nbrs, minlength=6) / len(nbrs)
    assert np.all(np.abs(freq - 1 / 6) < 0.015), freq


def test_weighted_and_topk_respect_delta_weights():
    bulk, delta = _pair(np.random.default_rng(2), weighted=True)
    union = {**_edges_of(bulk), **_edges_of(delta)}
    seeds = np.arange(bulk.num_rows)
    for replace in (False, True):
        _, _, eids = core.sample_neighbors(bulk, seeds, 4, strategy="weighted", replace=replace,
                                           delta=delta, seed=9)
        assert all(union[int(e)][2] > 0 for e in eids)
    counts, _, eids = core.sample_neighbors(bulk, seeds, 3, strategy="topk", delta=delta)
    owner = np.repeat(seeds, counts)
    for s in seeds:
        row_w = sorted((x for (r, _, x) in union.values() if r == s), reverse=True)
        got = sorted((union[int(e)][2] for e in eids[owner == s]), reverse=True)
        assert got == row_w[:3]


def test_delta_shape_errors():
    bulk, delta = _pair(np.random.default_rng(3))
    small = core.CSR(np.zeros(3, np.int64), np.zeros(0, np.int64), num_cols=60, eids=np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="rows"):
        core.sample_neighbors(bulk, [0], 2, delta=small)
    no_eids = core.CSR(delta.indptr, delta.indices, num_cols=delta.num_cols)
    with pytest.raises(ValueError, match="edge ids"):
        core.sample_neighbors(bulk, [0], 2, delta=no_eids)
