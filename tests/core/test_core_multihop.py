"""graphplat._core.sample_multihop and unique_and_relabel vs brute force; DGL block interop."""
import numpy as np
import pytest

import graphplat._core as core

I64 = np.int64
INT64_MIN, INT64_MAX = np.iinfo(I64).min, np.iinfo(I64).max


def py_unique_relabel(seeds, neighbors):
    nodes = [int(s) for s in seeds]
    index = {s: i for i, s in enumerate(nodes)}
    assert len(index) == len(nodes)
    local = []
    for v in neighbors.tolist():
        if v not in index:
            index[v] = len(nodes)
            nodes.append(v)
        local.append(index[v])
    return np.array(nodes, I64), np.array(local, I64)


def brute_multihop(csr, seeds, fanouts, **kw):
    hops = []
    cur = np.asarray(seeds, I64)
    for h, f in enumerate(fanouts):
        c, n, e = core.sample_neighbors(csr, cur, f, hop=h, **kw)
        nodes, local = py_unique_relabel(cur, n)
        dst = np.repeat(np.arange(len(cur), dtype=I64), c)
        hops.append(dict(nodes=nodes, num_dst=len(cur), src=local, dst=dst, eids=e))
        cur = nodes
    return hops


CASES = [
    ("uniform", False, [5, 3]),
    ("uniform", True, [4, 2, 2]),
    ("weighted", False, [3, 3]),
    ("weighted", True, [2, 2]),
    ("topk", False, [2, 4]),
    ("full", False, [-1, -1]),
    ("uniform", False, [-1, 2]),
]


@pytest.mark.parametrize("strategy, replace, fanouts", CASES)
@pytest.mark.parametrize("shape", ["small", "isolated", "hub", "multi", "unsorted_eids"])
def test_multihop_equals_bruteforce(make_graph, strategy, replace, fanouts, shape):
    g = make_graph(shape, seed=21)
    csr = g.csr(core)
    seeds = np.random.default_rng(3).choice(g.num_rows, size=min(10, g.num_rows), replace=False)
    seeds = seeds.astype(I64)
    kw = dict(strategy=strategy, replace=replace, seed=31)
    got = core.sample_multihop(csr, seeds, fanouts, **kw)
    exp = brute_multihop(csr, seeds, fanouts, **kw)
    assert isinstance(got, list) and len(got) == len(fanouts)
    for h, (a, b) in enumerate(zip(got, exp)):
        assert a.num_dst == b["num_dst"], f"hop {h}"
        for name in ("nodes", "src", "dst", "eids"):
            arr = getattr(a, name)
            assert arr.dtype == I64, (h, name)
            np.testing.assert_array_equal(arr, b[name], err_msg=f"hop {h} {name}")


@pytest.mark.parametrize("shape", ["small", "hub", "multi", "unsorted_eids"])
def test_multihop_structure(make_graph, shape):
    g = make_graph(shape, seed=22)
    csr = g.csr(core)
    seeds = np.random.default_rng(4).choice(g.num_rows, size=6, replace=False).astype(I64)
    hops = core.sample_multihop(csr, seeds, [3, 3, 2], seed=5)
    prev = seeds
    for h, hp in enumerate(hops):
        assert hp.num_dst == len(prev)
        np.testing.assert_array_equal(hp.nodes[:hp.num_dst], prev)
        assert len(np.unique(hp.nodes)) == len(hp.nodes)
        assert len(hp.src) == len(hp.dst) == len(hp.eids)
        assert ((hp.dst >= 0) & (hp.dst < hp.num_dst)).all()
        assert ((hp.src >= 0) & (hp.src < len(hp.nodes))).all()
        real_dst = hp.nodes[hp.dst]
        real_src = hp.nodes[hp.src]
        for s, d, e in zip(real_src.tolist(), real_dst.tolist(), hp.eids.tolist()):
            p = g.pos_of_eid(e)
            assert g.indptr[d] <= p < g.indptr[d + 1], f"hop {h}: eid {e} not in row {d}"
            assert g.indices[p] == s
        # nodes beyond the seeds are exactly the newly reached neighbors
        assert set(hp.nodes[hp.num_dst:].tolist()) == set(real_src.tolist()) - set(prev.tolist())
        prev = hp.nodes


def test_multihop_blocks_usable_by_dgl(make_graph):
    import dgl
    import torch

    g = make_graph("small", seed=23)
    csr = g.csr(core)
    seeds = np.array([0, 5, 7, 11], I64)
    hops = core.sample_multihop(csr, seeds, [4, 3], seed=1)
    for hp in hops:
        block = dgl.create_block(
            (torch.from_numpy(hp.src), torch.from_numpy(hp.dst)),
            num_src_nodes=len(hp.nodes),
            num_dst_nodes=hp.num_dst,
        )
        assert block.num_src_nodes() == len(hp.nodes)
        assert block.num_dst_nodes() == hp.num_dst
        assert block.num_edges() == len(hp.src)
        deg = np.bincount(hp.dst, minlength=hp.num_dst)
        np.testing.assert_array_equal(block.in_degrees().numpy(), deg)
        exp_deg = np.minimum(4 if hp is hops[0] else 3, np.diff(g.indptr)[hp.nodes[:hp.num_dst]])
        np.testing.assert_array_equal(deg, exp_deg)
        block.srcdata["x"] = torch.from_numpy(hp.nodes.astype(np.float32))
        block.update_all(dgl.function.copy_u("x", "m"), dgl.function.sum("m", "y"))
        y = block.dstdata["y"].numpy()
        exp = np.zeros(hp.num_dst, np.float32)
        np.add.at(exp, hp.dst, hp.nodes[hp.src].astype(np.float32))
        np.testing.assert_allclose(y, exp)


@pytest.mark.parametrize("strategy, replace", [("uniform", False), ("uniform", True), ("weighted", False)])
def test_multihop_thread_invariance(make_graph, strategy, replace):
    g = make_graph(None, seed=24, num_rows=20000, avg_deg=8.0)
    csr = g.csr(core)
    seeds = np.random.default_rng(5).choice(g.num_rows, 1000, replace=False).astype(I64)
    ref = core.sample_multihop(csr, seeds, [5, 4], strategy=strategy, replace=replace, seed=3,
                               num_threads=1)
    for nt in (2, 4):
        out = core.sample_multihop(csr, seeds, [5, 4], strategy=strategy, replace=replace, seed=3,
                                   num_threads=nt)
        for a, b in zip(ref, out):
            assert a.num_dst == b.num_dst
            for name in ("nodes", "src", "dst", "eids"):
                np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_multihop_large_hops_relabel_exactly(make_graph):
    """Hops of a few hundred thousand entries take the parallel relabeling path (entries
    bucketed by owner, markers kept between hops); every hop must still equal a brute-force
    relabeling of its sampled neighbors against the previous hop's nodes, on every thread
    count, and a second call on the same CSR (reused markers) must give the same result."""
    g = make_graph(None, seed=31, num_rows=200000, avg_deg=12.0)
    csr = g.csr(core)
    seeds = np.random.default_rng(6).choice(g.num_rows, 4000, replace=False).astype(I64)
    ref = None
    for nt in (1, 2, 3, 2):
        hops = core.sample_multihop(csr, seeds, [10, 10], seed=4, num_threads=nt)
        frontier = seeds
        for hp in hops:
            assert len(hp.src) > 65536 or hp is hops[0]
            exp_nodes, exp_local = py_unique_relabel(frontier, hp.nodes[hp.src])
            np.testing.assert_array_equal(hp.nodes, exp_nodes)
            np.testing.assert_array_equal(hp.src, exp_local)
            frontier = hp.nodes
        if ref is None:
            ref = hops
        for a, b in zip(ref, hops):
            for name in ("nodes", "src", "dst", "eids"):
                np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_multihop_determinism(make_graph):
    g = make_graph("hub", seed=25)
    csr = g.csr(core)
    seeds = np.arange(10, dtype=I64)
    a = core.sample_multihop(csr, seeds, [3, 3], seed=1)
    b = core.sample_multihop(csr, seeds, [3, 3], seed=1)
    c = core.sample_multihop(csr, seeds, [3, 3], seed=2)
    assert all(np.array_equal(x.eids, y.eids) for x, y in zip(a, b))
    assert not all(np.array_equal(x.eids, y.eids) for x, y in zip(a, c))


def test_multihop_errors(make_graph):
    g = make_graph("small", seed=26)
    csr = g.csr(core)
    with pytest.raises(ValueError, match="(?i)seed|unique|duplicate"):
        core.sample_multihop(csr, np.array([1, 2, 1], I64), [2])
    with pytest.raises(IndexError, match="seeds"):
        core.sample_multihop(csr, np.array([1, g.num_rows], I64), [2])
    with pytest.raises(ValueError, match="(?i)fanout"):
        core.sample_multihop(csr, np.array([1, 2], I64), [2, 0])
    rect = make_graph("rect", seed=1).csr(core)
    with pytest.raises(ValueError, match="(?i)square|num_rows|num_cols"):
        core.sample_multihop(rect, np.array([0, 1], I64), [2])


def test_multihop_empty_seeds(make_graph):
    csr = make_graph("small", seed=27).csr(core)
    hops = core.sample_multihop(csr, np.array([], I64), [3, 2])
    assert len(hops) == 2
    for hp in hops:
        assert hp.num_dst == 0 and len(hp.nodes) == 0 and len(hp.src) == 0


# ------------------------------------------------------------------- unique_and_relabel


def _check_relabel(seeds, neighbors, **kw):
    nodes, local = core.unique_and_relabel(seeds, neighbors, **kw)
    exp_nodes, exp_local = py_unique_relabel(seeds, neighbors)
    assert nodes.dtype == I64 and local.dtype == I64
    np.testing.assert_array_equal(nodes, exp_nodes)
    np.testing.assert_array_equal(local, exp_local)
    return nodes, local


@pytest.mark.parametrize("n_seeds, n_nbrs", [(0, 0), (0, 10), (5, 0), (10, 50), (300, 5000)])
def test_unique_and_relabel_dense_and_hash(n_seeds, n_nbrs):
    rng = np.random.default_rng(n_seeds * 7 + n_nbrs)
    num_nodes = 1000
    seeds = rng.choice(num_nodes, n_seeds, replace=False).astype(I64)
    nbrs = rng.integers(0, num_nodes, n_nbrs).astype(I64)
    _check_relabel(seeds, nbrs)
    _check_relabel(seeds, nbrs, num_nodes=num_nodes)


def test_unique_and_relabel_arbitrary_int64_ids():
    rng = np.random.default_rng(8)
    special = np.array([INT64_MIN, INT64_MAX, 0, -1, 1, INT64_MIN + 1, INT64_MAX - 1], I64)
    pool = np.unique(np.concatenate([special, rng.integers(INT64_MIN, INT64_MAX, 2000, dtype=I64)]))
    pool = rng.permutation(pool)
    seeds = pool[:400]
    nbrs = rng.choice(pool, 10000)
    nbrs[:7] = special  # make sure the extremes appear among the neighbors
    _check_relabel(seeds, nbrs)
    _check_relabel(special, special[::-1].copy())


def test_unique_and_relabel_thread_invariance():
    rng = np.random.default_rng(9)
    seeds = rng.choice(10**6, 20000, replace=False).astype(I64)
    nbrs = rng.integers(0, 10**6, 400000).astype(I64)
    exp = _check_relabel(seeds, nbrs, num_threads=1)
    for nt in (2, 4):
        for kw in ({}, {"num_nodes": 10**6}):
            n, l = core.unique_and_relabel(seeds, nbrs, num_threads=nt, **kw)
            np.testing.assert_array_equal(n, exp[0])
            np.testing.assert_array_equal(l, exp[1])


@pytest.mark.parametrize("kw", [{}, {"num_nodes": 100}])
def test_unique_and_relabel_duplicate_seeds(kw):
    with pytest.raises(ValueError, match=r"(?i)seeds|duplicate|distinct|unique"):
        core.unique_and_relabel(np.array([3, 7, 3], I64), np.array([1], I64), **kw)


def test_unique_and_relabel_dense_out_of_range():
    with pytest.raises(IndexError, match=r"neighbors.*\b100\b|\b100\b.*neighbors"):
        core.unique_and_relabel(np.array([1, 2], I64), np.array([5, 100], I64), num_nodes=100)
    with pytest.raises(IndexError, match="seeds"):
        core.unique_and_relabel(np.array([1, -2], I64), np.array([5], I64), num_nodes=100)


def test_unique_and_relabel_ids_beyond_dense_range():
    # Dense markers pack an id and a position in one word; a larger id space is hashed.
    big = 2**40
    seeds = np.array([big, 3, big - 1], I64)
    nbrs = np.array([5, big, big - 7, 5, big - 1, big - 7], I64)
    _check_relabel(seeds, nbrs, num_nodes=big + 1)
    with pytest.raises(ValueError, match="num_nodes .* too large"):
        core.Relabeler(2**39 + 1)


def test_unique_and_relabel_rejects_float_ids():
    with pytest.raises(ValueError, match="neighbors"):
        core.unique_and_relabel(np.array([1, 2], I64), np.array([1.0, 2.0]))


# ------------------------------------------------------- marker generations (reuse across calls)

def test_relabeler_reuses_markers_across_generations():
    """A Relabeler's markers are never cleared: each call starts a new generation, and the
    array is zeroed once every stamp is used (63 calls). 200 calls over overlapping ids, with
    failed calls (duplicate seeds) in between, must each equal a fresh brute-force relabeling:
    a stale mark from an earlier call, or from a call that failed half-way, must never leak."""
    rng = np.random.default_rng(11)
    rel = core.Relabeler(20000)
    for call in range(200):
        # Sparse over the ids, so most marks survive untouched until their stamp comes back.
        seeds = rng.choice(20000, int(rng.integers(1, 40)), replace=False).astype(I64)
        nbrs = rng.integers(0, 20000, int(rng.integers(0, 3000)), dtype=I64)
        if call % 17 == 5:
            with pytest.raises(ValueError, match="distinct"):
                rel.relabel(np.concatenate([seeds, seeds[:1]]), nbrs)
        nodes, local = rel.relabel(seeds, nbrs, num_threads=1 + call % 2)
        exp_nodes, exp_local = py_unique_relabel(seeds, nbrs)
        np.testing.assert_array_equal(nodes, exp_nodes, err_msg=f"call {call}")
        np.testing.assert_array_equal(local, exp_local, err_msg=f"call {call}")


def test_multihop_repeated_calls_cross_marker_generations(make_graph):
    """One CSR's cached markers serve 150 sample_multihop calls (more than two full cycles of
    stamps); every call must equal the hop-by-hop brute force, also right after a call that
    failed on duplicate seeds."""
    g = make_graph(None, seed=3, num_rows=20000, avg_deg=10.0)
    csr, n = g.csr(core), g.num_rows
    rng = np.random.default_rng(5)
    for call in range(150):
        seeds = rng.choice(n, 24, replace=False).astype(I64)
        if call % 31 == 7:
            with pytest.raises(ValueError, match="distinct"):
                core.sample_multihop(csr, np.concatenate([seeds, seeds[:2]]), [4, 3], seed=call)
        hops = core.sample_multihop(csr, seeds, [4, 3], seed=call, num_threads=1 + call % 2)
        exp = brute_multihop(csr, seeds, [4, 3], seed=call)
        for hp, ex in zip(hops, exp):
            np.testing.assert_array_equal(hp.nodes, ex["nodes"], err_msg=f"call {call}")
            np.testing.assert_array_equal(hp.src, ex["src"], err_msg=f"call {call}")
            np.testing.assert_array_equal(hp.dst, ex["dst"], err_msg=f"call {call}")
