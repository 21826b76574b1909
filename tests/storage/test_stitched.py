"""Multi-partition LocalGraph samples all hops in one core call over a stitched CSR; the
answer must equal the hop-by-hop routed path exactly, and writes must never be missed."""
from __future__ import annotations

import numpy as np
import pytest

from graphplat.sampling import NeighborSampler
from graphplat.schema import GraphSchema
from graphplat.storage.graph_arrays import GraphArrays
from graphplat.storage.routed import RoutedGraph

SCHEMA = GraphSchema.homogeneous(3, weighted=True)
NT, ET = SCHEMA.ntypes[0], SCHEMA.canonical_etypes[0]


def make_arrays(dense: bool, n: int = 400, m: int = 4000, seed: int = 1) -> GraphArrays:
    rng = np.random.default_rng(seed)
    ids = (rng.permutation(n) if dense else rng.choice(10**9, n, replace=False)).astype(np.int64)
    return GraphArrays(SCHEMA, {NT: ids}, {NT: {"feat": rng.random((n, 3), dtype=np.float32)}},
                       {ET: (ids[rng.integers(0, n, m)], ids[rng.integers(0, n, m)])},
                       edge_weights={ET: rng.random(m).astype(np.float32) + 0.1})


def hop_by_hop(local):
    """The same partitions behind a plain RoutedGraph (no fused path)."""
    return RoutedGraph(local.schema, local.book, local.backends)


def assert_same_layers(a, b, eids: bool = True):
    assert len(a.layers) == len(b.layers)
    for la, lb in zip(a.layers, b.layers):
        assert np.array_equal(la.src_nodes[NT], lb.src_nodes[NT])
        assert la.num_dst == lb.num_dst
        for x, y in zip(la.edges[ET][:3 if eids else 2], lb.edges[ET]):
            assert x.dtype == y.dtype and np.array_equal(x, y)


@pytest.mark.parametrize("dense", [True, False])
@pytest.mark.parametrize("partitions", [2, 3])
@pytest.mark.parametrize("strategy,replace,fanouts", [
    ("uniform", False, [5, 4, 3]), ("uniform", True, [3, 3]), ("weighted", False, [4, 2]),
    ("topk", False, [2, 3]), ("uniform", False, [-1, 2])])
def test_fused_multi_partition_equals_hop_by_hop(dense, partitions, strategy, replace, fanouts):
    ga = make_arrays(dense)
    local = ga.to_local(partitions)
    sampler = NeighborSampler(SCHEMA, fanouts, strategy=strategy, replace=replace)
    seeds = {NT: ga.nodes[NT][:37]}
    assert sampler._sample_fused(local, seeds, 11) is not None
    assert_same_layers(sampler.sample(local, seeds, seed=11), sampler.sample(hop_by_hop(local), seeds, seed=11))
    # and the one-partition graph (its own fused path) agrees, but for the edge ids (which
    # name the owning partition)
    assert_same_layers(sampler.sample(local, seeds, seed=11), sampler.sample(ga.to_local(1), seeds, seed=11),
                       eids=False)


@pytest.mark.parametrize("dense", [True, False])
def test_unknown_seed_raises_like_hop_by_hop(dense):
    ga = make_arrays(dense)
    local = ga.to_local(2)
    bad = np.array([ga.nodes[NT][0], 10**12 + 7], dtype=np.int64)
    with pytest.raises(IndexError):
        local.sample_multihop(ET, bad, [2, 2])
    with pytest.raises(IndexError):
        hop_by_hop(local).sample_neighbors(ET, bad, 2)


def test_writes_are_seen():
    """An edge write makes the fused path step aside (the delta is sampled hop by hop);
    added nodes rebuild the stitched CSR, so they are sampled as seeds at once."""
    ga = make_arrays(True)
    local = ga.to_local(2)
    ids = ga.nodes[NT]
    sampler = NeighborSampler(SCHEMA, [-1, -1])
    seeds = {NT: ids[:10]}
    before = sampler.sample(local, seeds, seed=3)
    new = np.array([10_000, 10_001], dtype=np.int64)  # beyond the old id range
    local.add_nodes(NT, new)
    got = local.sample_multihop(ET, new, [3])
    assert got is not None and got[0][0].tolist() == new.tolist()  # no edges yet
    local.add_edges(ET, np.repeat(new, 3), np.repeat(ids[:1], 6)[:6])
    assert local.sample_multihop(ET, ids[:10], [-1, -1]) is None
    after = sampler.sample(local, seeds, seed=3)
    assert set(new.tolist()) <= set(after.layers[-1].src_nodes[NT].tolist())
    assert not set(new.tolist()) & set(before.layers[-1].src_nodes[NT].tolist())
    assert_same_layers(after, sampler.sample(hop_by_hop(local), seeds, seed=3))


def test_durable_store_after_compaction(tmp_path):
    """Over a store, the stitched CSR follows compaction (which replaces the partitions)."""
    import graphplat

    ga = make_arrays(False)
    store = ga.write_store(tmp_path / "store", partitions=2)
    g = graphplat.open_graph(store)
    try:
        ids = ga.nodes[NT]
        sampler = NeighborSampler(SCHEMA, [4, 4])
        g.add_edges(ET, ids[:20], ids[20:40])
        assert g.sample_multihop(ET, ids[:5], [4, 4]) is None
        g.compact()
        assert g.sample_multihop(ET, ids[:5], [4, 4]) is not None
        assert_same_layers(sampler.sample(g, {NT: ids[:50]}, seed=9),
                           sampler.sample(hop_by_hop(g), {NT: ids[:50]}, seed=9))
    finally:
        g.close()
