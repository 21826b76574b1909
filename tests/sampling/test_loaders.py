"""NodeLoader / LinkLoader / NeighborSampler against brute force on small random graphs,
reproducibility, exclusion, and LocalGraph-vs-RemoteGraph identity over real servers."""
from __future__ import annotations

from collections import Counter

import dgl
import numpy as np
import pytest
import torch

from graphplat.sampling import LinkLoader, NeighborSampler, NodeLoader, all_edges  # noqa: E402
from graphplat.schema import GraphSchema  # noqa: E402
from graphplat.storage.graph_arrays import GraphArrays  # noqa: E402
from graphplat.testing.blocks import batch_signature, block_edges, check_block_layout
from graphplat.testing.graphs import CLICK, CLICK_SCHEMA, CLICKED, FOLLOWS, click_graph
from graphplat.testing.servers import Fleet, cluster_dict


@pytest.fixture(scope="module")
def arrays():
    return click_graph()


@pytest.fixture(scope="module")
def local(arrays):
    return arrays.to_local(partitions=3)


def in_edges(arrays: GraphArrays, et, dst_ids) -> Counter:
    s, d = arrays.edges[et]
    keep = np.isin(d, dst_ids)
    return Counter(zip(s[keep].tolist(), d[keep].tolist()))


def pair_ids(pair, et) -> set:
    """(src id, dst id) of a pair graph's edges of ``et``."""
    s, d = pair.edges(etype=et)
    return set(zip(pair.nodes[et[0]].data[dgl.NID][s].tolist(), pair.nodes[et[2]].data[dgl.NID][d].tolist()))


def leaks(block, seeds: set, forward, backward) -> int:
    """How many ``seeds`` pairs the block holds as edges of a ``forward`` type, or reversed
    as edges of a ``backward`` type."""
    fwd = set().union(*(block_edges(block, et) for et in forward))
    rev = {(b, a) for et in backward for a, b in block_edges(block, et)}
    return len(seeds & (fwd | rev))


# ----------------------------------------------------------------------------- structure

def test_full_fanout_blocks_equal_brute_force(arrays, local):
    seeds = {"user": arrays.nodes["user"][:10], "item": arrays.nodes["item"][:5]}
    loader = NodeLoader(local, seeds, [-1, -1], batch_size=100)
    (inp, out, blocks), = list(loader)
    assert [len(out[nt]) for nt in ("user", "item")] == [10, 5]
    check_block_layout(blocks, {nt: out[nt].numpy() for nt in out})
    for b in blocks:
        for et in CLICK_SCHEMA.canonical_etypes:
            dst = b.dstnodes[et[2]].data[dgl.NID].numpy()
            assert block_edges(b, et) == in_edges(arrays, et, dst), et
            # the src side is exactly the dst side plus the new neighbors
        for nt in b.srctypes:
            src = set(b.srcnodes[nt].data[dgl.NID].tolist())
            expect = set(b.dstnodes[nt].data[dgl.NID].tolist())
            for et in CLICK_SCHEMA.canonical_etypes:
                if et[0] == nt:
                    expect |= {s for s, _ in block_edges(b, et)}
            assert src == expect
    for nt in ("user", "item"):
        assert inp[nt].tolist() == blocks[0].srcnodes[nt].data[dgl.NID].tolist()


def test_fanout_zero_samples_nothing_for_that_edge_type(arrays, local):
    """The fanout-0 rule of GraphService.sample_neighbors: that edge type gets no edges, the
    others are sampled as with the type left out of the graph's sampling."""
    seeds = {"user": arrays.nodes["user"][:10], "item": arrays.nodes["item"][:5]}
    fan = [{"click": 0, "clicked-by": -1, "follows": -1}, {"click": -1, "clicked-by": 0, "follows": 0}]
    (_, _, blocks), = list(NodeLoader(local, seeds, fan, batch_size=100))
    for b, layer in zip(blocks, fan):
        for et in CLICK_SCHEMA.canonical_etypes:
            got = block_edges(b, et)
            if layer[et[1]] == 0:
                assert not got, et
            else:
                assert got == in_edges(arrays, et, b.dstnodes[et[2]].data[dgl.NID].numpy()), et
    for et in CLICK_SCHEMA.canonical_etypes:  # the direct call agrees with the loader
        s = local.sample_neighbors(et, seeds[et[2]], 0)
        assert s.counts.tolist() == [0] * len(seeds[et[2]])


@pytest.mark.parametrize("replace", [False, True])
def test_sampled_counts_and_real_edges(arrays, local, replace):
    fan = [{"click": 3, "clicked-by": 2, "follows": 4}, {"click": 2, "clicked-by": 5, "follows": 1}]
    loader = NodeLoader(local, {"user": arrays.nodes["user"], "item": arrays.nodes["item"]},
                        NeighborSampler(CLICK_SCHEMA, fan, replace=replace), batch_size=37, shuffle=True, seed=5)
    nb = 0
    for _, _, blocks in loader:
        nb += 1
        for layer, b in enumerate(blocks):
            for et in CLICK_SCHEMA.canonical_etypes:
                f = fan[layer][et[1]]
                dst = b.dstnodes[et[2]].data[dgl.NID].numpy()
                truth = in_edges(arrays, et, dst)
                got = block_edges(b, et)
                assert all(truth[e] > 0 for e in got), "a sampled edge that is not in the graph"
                deg = Counter(d for (s, d), c in truth.items() for _ in range(c))
                per_dst = np.bincount(b.edges(etype=et)[1].numpy(), minlength=len(dst))
                expect = [f if (replace and deg[d] > 0) else min(f, deg[d]) for d in dst.tolist()]
                assert per_dst.tolist() == expect
                if not replace:  # no edge id twice for one destination
                    eid = b.edges[et].data[dgl.EID].numpy()
                    _, dl = b.edges(etype=et)
                    pairs = set(zip(dl.tolist(), eid.tolist()))
                    assert len(pairs) == len(eid)
    assert nb == len(loader) == -(-200 // 37)


def test_weighted_and_topk_strategies(arrays, local):
    users = arrays.nodes["user"]
    s, d = arrays.edges[CLICK]
    w = arrays.edge_weights[CLICK]
    top = NeighborSampler(CLICK_SCHEMA, [{"clicked-by": 0, "click": 2}], strategy={"click": "topk"})
    sub = top.sample(local, {"item": arrays.nodes["item"]}, seed=1)
    layer = sub.layers[0]
    src_l, dst_l, eids = layer.edges[CLICK]
    got_w = local.edge_features(CLICK, eids)["weight"]
    for k, item in enumerate(arrays.nodes["item"].tolist()):
        mine = np.sort(w[d == item])[::-1][:2]
        assert np.allclose(np.sort(got_w[dst_l == k])[::-1], mine)
    with pytest.raises(ValueError, match="not weighted"):
        NeighborSampler(CLICK_SCHEMA, [2], strategy="edge_weight")  # follows has no weights
    assert users.size


def test_weighted_strategy_follows_the_edge_weights(arrays, local):
    """strategy "weighted", one neighbor per item over 400 seeds: each in-edge of an item is
    picked with probability w / sum(w) (chi-square per item, pooled), weight-0 edges never;
    the same counts reject uniform picking, so the check has the power to see a wrong sampler."""
    from scipy import stats

    items = arrays.nodes["item"]
    full = NeighborSampler(CLICK_SCHEMA, [{"clicked-by": 0, "click": -1}]).sample(local, {"item": items}, seed=0)
    _, all_dst, all_eids = full.layers[0].edges[CLICK]
    weight = dict(zip(all_eids.tolist(), local.edge_features(CLICK, all_eids)["weight"].tolist()))
    sampler = NeighborSampler(CLICK_SCHEMA, [{"clicked-by": 0, "click": 1}], strategy={"click": "weighted"})
    picks = Counter()
    reps = 400
    for seed in range(reps):
        _, dst_l, eids = sampler.sample(local, {"item": items}, seed=seed).layers[0].edges[CLICK]
        picks.update(eids.tolist())
    chi_w = chi_u = 0.0
    dof = 0
    for k in range(len(items)):
        eids = all_eids[all_dst == k].tolist()
        w = np.array([weight[e] for e in eids], np.float64)
        got = np.array([picks[e] for e in eids], np.float64)
        assert (got[w == 0] == 0).all()  # weight 0: never picked
        pos = w > 0
        if pos.sum() < 2:
            continue
        assert got[pos].sum() == reps
        expect_w = reps * w[pos] / w[pos].sum()
        expect_u = np.full(pos.sum(), reps / pos.sum())
        chi_w += float(((got[pos] - expect_w) ** 2 / expect_w).sum())
        chi_u += float(((got[pos] - expect_u) ** 2 / expect_u).sum())
        dof += int(pos.sum()) - 1
    assert dof >= 50
    assert stats.chi2.sf(chi_w, dof) > 1e-4, (chi_w, dof)   # consistent with the weights
    assert stats.chi2.sf(chi_u, dof) < 1e-8, (chi_u, dof)   # and not with uniform picking


def test_features_and_labels_match_store(arrays, local):
    loader = NodeLoader(local, {"user": arrays.nodes["user"][:40]}, [3, 3], batch_size=16, seed=2)
    pos = {nt: {v: i for i, v in enumerate(arrays.nodes[nt].tolist())} for nt in ("user", "item")}
    for inp, out, blocks in loader:
        for nt in ("user", "item"):
            ids = inp[nt].numpy()
            rows = [pos[nt][v] for v in ids.tolist()]
            assert np.array_equal(blocks[0].srcnodes[nt].data["feat"].numpy(), arrays.node_features[nt]["feat"][rows])
        rows = [pos["user"][v] for v in out["user"].tolist()]
        assert np.array_equal(blocks[-1].dstnodes["user"].data["label"].numpy(),
                              arrays.node_features["user"]["label"][rows])


def test_homogeneous_graph_gives_tensors():
    schema = GraphSchema.homogeneous(5)
    rng = np.random.default_rng(1)
    ids = np.arange(50, dtype=np.int64) * 7
    ga = GraphArrays(schema, {schema.ntypes[0]: ids}, {schema.ntypes[0]: {"feat": rng.random((50, 5), dtype=np.float32)}},
                     {schema.canonical_etypes[0]: (ids[rng.integers(0, 50, 300)], ids[rng.integers(0, 50, 300)])})
    g = ga.to_local()
    inp, out, blocks = next(iter(NodeLoader(g, ids, [4, 4], batch_size=8)))
    assert isinstance(inp, torch.Tensor) and isinstance(out, torch.Tensor)
    assert isinstance(blocks[0].srcdata["feat"], torch.Tensor)
    assert blocks[0].srcdata["feat"].shape == (len(inp), 5)
    # a DGL layer runs on the block as it is
    conv = dgl.nn.SAGEConv(5, 3, "mean")
    assert conv(blocks[0], blocks[0].srcdata["feat"]).shape == (blocks[0].num_dst_nodes(), 3)


def test_bad_input_errors(arrays, local):
    with pytest.raises(IndexError, match="not 'user' nodes"):
        NodeLoader(local, {"user": np.array([-12345], np.int64)}, [2], batch_size=4)
    with pytest.raises(ValueError, match="duplicates"):
        NodeLoader(local, {"user": arrays.nodes["user"][[0, 0]]}, [2], batch_size=4)
    with pytest.raises(ValueError, match="dict node type"):
        NodeLoader(local, arrays.nodes["user"], [2], batch_size=4)
    with pytest.raises(ValueError, match="fanout"):
        NodeLoader(local, {"user": arrays.nodes["user"]}, [-2], batch_size=4)
    with pytest.raises(ValueError, match="list"):
        NodeLoader(local, {"user": arrays.nodes["user"]}, 5, batch_size=4)
    with pytest.raises(ValueError, match="batch_size"):
        NodeLoader(local, {"user": arrays.nodes["user"]}, [2], batch_size=0)
    with pytest.raises(ValueError, match="unknown sampling strategy"):
        NeighborSampler(CLICK_SCHEMA, [2], strategy="bogus")
    with pytest.raises(ValueError, match="edge type"):
        NeighborSampler(CLICK_SCHEMA, [{"nope": 2}])


# ----------------------------------------------------------------------------- reproducibility

def epochs(loader, n=2, eids=True):
    return [[batch_signature(b, eids) for b in loader] for _ in range(n)]


def test_reproducible_across_runs_prefetch_and_workers(arrays, local):
    seeds = {"user": arrays.nodes["user"], "item": arrays.nodes["item"]}
    kw = dict(batch_size=32, shuffle=True, seed=11)
    base = epochs(NodeLoader(local, seeds, [4, 3], prefetch=0, **kw))
    assert base == epochs(NodeLoader(local, seeds, [4, 3], prefetch=0, **kw))
    assert base == epochs(NodeLoader(local, seeds, [4, 3], prefetch=4, num_workers=3, **kw))
    assert base[0] != base[1], "epochs must differ (new shuffle and new sampling seeds)"
    other = epochs(NodeLoader(local, seeds, [4, 3], prefetch=0, batch_size=32, shuffle=True, seed=12))
    assert other != base
    again = NodeLoader(local, seeds, [4, 3], **kw)
    list(again)
    again.set_epoch(0)
    assert [batch_signature(b) for b in again] == base[0]
    # the same graph split into a different number of partitions samples the same batches
    # (edge ids name the owning partition, so they differ)
    one = arrays.to_local(partitions=1)
    assert epochs(NodeLoader(one, seeds, [4, 3], **kw), 1, eids=False)[0] == \
        epochs(NodeLoader(local, seeds, [4, 3], **kw), 1, eids=False)[0]


# ----------------------------------------------------------------------------- links

def test_link_loader_excludes_seed_and_reverse_edges(arrays, local):
    s, d = arrays.edges[CLICK]
    pairs = {(a, b) for a, b in zip(s.tolist(), d.tolist())}
    for exclude, must_leak in ((None, True), ("reverse_types", False)):
        loader = LinkLoader(local, {CLICK: (s, d)}, [-1, -1], batch_size=50, exclude=exclude,
                            reverse_etypes={CLICK: CLICKED}, seed=3)
        leaked = 0
        for _inp, pair, blocks in loader:
            seed_pairs = pair_ids(pair, CLICK)
            assert seed_pairs <= pairs
            leaked += sum(leaks(b, seed_pairs, [CLICK], [CLICKED]) for b in blocks)
            # the pair graph's nodes are the last block's dst nodes, in order
            for nt in ("user", "item"):
                assert pair.nodes[nt].data[dgl.NID].tolist() == blocks[-1].dstnodes[nt].data[dgl.NID].tolist()
        assert (leaked > 0) == must_leak


def test_link_loader_node_pairs_excludes_parallel_relations():
    """exclude="node_pairs": a seed (u, v) leaves no edge between u and v in any relation
    between their node types (a parallel copy, the reverse, a reverse copy); with
    reverse_types the parallel relation still leaks, which is what node_pairs is for."""
    likes, liked = ("user", "likes", "item"), ("item", "liked-by", "user")
    schema = GraphSchema.from_dict({**CLICK_SCHEMA.to_dict(), "edge_types": CLICK_SCHEMA.to_dict()["edge_types"] + [
        {"src": "user", "relation": "likes", "dst": "item"}, {"src": "item", "relation": "liked-by", "dst": "user"}]})
    base = click_graph(seed=5)
    cu, ci = base.edges[CLICK]
    keep = np.arange(len(cu)) % 2 == 0  # half the clicks are also likes
    edges = {**base.edges, likes: (cu[keep], ci[keep]), liked: (ci[keep], cu[keep])}
    graph = GraphArrays(schema, base.nodes, base.node_features, edges,
                        edge_weights=base.edge_weights).to_local(partitions=2)
    for exclude, must_leak in (("reverse_types", True), ("node_pairs", False)):
        loader = LinkLoader(graph, {CLICK: (cu, ci)}, [-1], batch_size=64, exclude=exclude,
                            reverse_etypes={CLICK: CLICKED}, seed=6)
        leaked = 0
        for _, pair, blocks in loader:
            leaked += leaks(blocks[0], pair_ids(pair, CLICK), [CLICK, likes], [CLICKED, liked])
            assert sum(b.num_edges() for b in blocks) > 0
        assert (leaked > 0) == must_leak, exclude


def test_link_loader_undirected_self_reverse_and_negatives(arrays, local):
    fs, fd = arrays.edges[FOLLOWS]
    existing = set(zip(fs.tolist(), fd.tolist()))
    loader = LinkLoader(local, {"follows": (fs, fd)}, [-1], batch_size=64, negatives=3,
                        negative_strategy="degree", exclude="reverse_types",
                        reverse_etypes={"follows": "follows"}, seed=4,
                        edge_data={"follows": {"w": np.arange(len(fs), dtype=np.float32)}})
    n_pos = n_neg = 0
    for _inp, pair, neg, blocks in loader:
        ids = pair.nodes["user"].data[dgl.NID]
        ps, pd = pair.edges(etype=FOLLOWS)
        seed_pairs = set(zip(ids[ps].tolist(), ids[pd].tolist()))
        got = set(block_edges(blocks[0], FOLLOWS))
        assert not (got & seed_pairs) and not (got & {(b, a) for a, b in seed_pairs})
        w = pair.edges[FOLLOWS].data["w"].numpy().astype(np.int64)
        assert list(zip(fs[w].tolist(), fd[w].tolist())) == list(zip(ids[ps].tolist(), ids[pd].tolist()))
        ns, nd = neg.edges(etype=FOLLOWS)
        negs = list(zip(ids[ns].tolist(), ids[nd].tolist()))
        assert not (set(negs) & existing)
        n_pos += len(ps)
        n_neg += len(negs)
    assert n_pos == len(fs)
    assert n_neg > 2.5 * n_pos  # 3 per edge, minus the rare ones that found no non-edge


def test_all_edges_reads_every_edge(arrays, local):
    s, d, eids = all_edges(local, CLICK, batch_size=7)
    assert Counter(zip(s.tolist(), d.tolist())) == Counter(zip(*[a.tolist() for a in arrays.edges[CLICK]]))
    assert len(np.unique(eids)) == len(eids)


# ----------------------------------------------------------------------------- local vs remote

@pytest.fixture(scope="module")
def remote(arrays, tmp_path_factory):
    from graphplat.storage.remote import connect

    store = arrays.write_store(tmp_path_factory.mktemp("loader-store") / "s", partitions=2)
    fleet = Fleet(tmp_path_factory.mktemp("loader-logs"))
    try:
        servers = fleet.start_all([dict(store=store, partition=k) for k in range(2)])
        # every partition over gRPC (servers on this host would otherwise be read in
        # process through their shared memory: tests/storage/test_shared.py covers that)
        g = connect(cluster_dict([[s] for s in servers], deadline_s=20), shared_memory=False)
        yield g, store
        g.close()
    finally:
        fleet.close()


def test_local_and_remote_batches_identical(arrays, remote):
    from graphplat import open_graph

    rg, store = remote
    lg = open_graph(store, read_only=True)
    try:
        seeds = {"user": arrays.nodes["user"], "item": arrays.nodes["item"]}
        kw = dict(batch_size=48, shuffle=True, seed=8)
        local_b = epochs(NodeLoader(lg, seeds, [{"click": 3, "clicked-by": 4, "follows": 2}, 5], **kw), 1)
        cached = NodeLoader(rg, seeds, [{"click": 3, "clicked-by": 4, "follows": 2}, 5], cache_mb=0.002,
                            prefetch=3, num_workers=2, **kw)
        assert epochs(cached, 1) == local_b
        st = cached.stats.as_dict()
        assert 0 < st["cache_hit_rate"] < 1 and st["batches"] == len(cached)
        # over servers a prefetching loader overlaps two batches by default; same batches
        auto = NodeLoader(rg, seeds, [{"click": 3, "clicked-by": 4, "follows": 2}, 5], **kw)
        assert rg.partitions_over_network == 2 and lg.partitions_over_network == 0
        assert auto.num_workers == 2 and NodeLoader(lg, seeds, [5, 5], **kw).num_workers == 1
        assert epochs(auto, 1) == local_b and auto.stats.batches == len(auto)
        s, d = arrays.edges[CLICK]
        lk = dict(batch_size=64, negatives=2, exclude="reverse_types", reverse_etypes={CLICK: CLICKED}, seed=9)
        assert (epochs(LinkLoader(lg, {CLICK: (s, d)}, [3, 3], **lk), 1)
                == epochs(LinkLoader(rg, {CLICK: (s, d)}, [3, 3], **lk), 1))
    finally:
        lg.close()


def sparse_id_graph(seed: int, edges: int, n: int = 300):
    """A random homogeneous graph of ``n`` nodes with ids scattered below 10**6 (so the
    dense relabeler does not apply), 3-dim features and ``edges`` random edges; returns
    ``(schema, ids, GraphArrays)``."""
    schema = GraphSchema.homogeneous(3)
    rng = np.random.default_rng(seed)
    ids = rng.choice(10**6, n, replace=False).astype(np.int64)
    nt, et = schema.ntypes[0], schema.canonical_etypes[0]
    ga = GraphArrays(schema, {nt: ids}, {nt: {"feat": rng.random((n, 3), dtype=np.float32)}},
                     {et: (ids[rng.integers(0, n, edges)], ids[rng.integers(0, n, edges)])})
    return schema, ids, ga


@pytest.mark.parametrize("replace", [False, True])
@pytest.mark.parametrize("fanouts", [[3, 2], [5, 5, 5], [-1, 2], [2, -1]])
def test_fused_single_partition_path_equals_hop_by_hop(fanouts, replace):
    """A one-partition LocalGraph samples homogeneous graphs in one C++ call; it must give
    the hop-by-hop answer of a multi-partition graph exactly."""
    schema, ids, ga = sparse_id_graph(seed=1, edges=3000)
    nt, et = schema.ntypes[0], schema.canonical_etypes[0]
    from graphplat.storage.routed import RoutedGraph

    class HopByHop(RoutedGraph):
        def sample_multihop(self, *args, **kw):  # every RoutedGraph fuses in process; not this one
            return None

    one, local_two = ga.to_local(1), ga.to_local(2)
    two = HopByHop(schema, local_two.book, local_two.backends)
    sampler = NeighborSampler(schema, fanouts, replace=replace)
    assert sampler._sample_fused(one, {nt: ids[:20]}, 7) is not None
    assert sampler._sample_fused(two, {nt: ids[:20]}, 7) is None
    a, b = sampler.sample(one, {nt: ids[:20]}, seed=7), sampler.sample(two, {nt: ids[:20]}, seed=7)
    for la, lb in zip(a.layers, b.layers):
        assert np.array_equal(la.src_nodes[nt], lb.src_nodes[nt])
        assert la.num_dst == lb.num_dst
        for x, y in zip(la.edges[et][:2], lb.edges[et][:2]):
            assert np.array_equal(x, y)
    # after an online write the one-partition graph falls back to the hop-by-hop path
    one.add_edges(et, ids[:5], ids[5:10])
    assert sampler._sample_fused(one, {nt: ids[:20]}, 7) is None


@pytest.mark.parametrize("partitions", [1, 3])
def test_key_by_id_draws_a_nodes_neighbors_the_same_in_any_batch(partitions):
    """With key_by_id a node's sampled in-neighbors (each hop) depend on its id and the seed,
    not on where it sits in the batch (online scoring's Score == ScoreBatch row)."""
    schema, ids, ga = sparse_id_graph(seed=2, edges=6000)
    nt, et = schema.ntypes[0], schema.canonical_etypes[0]
    g = ga.to_local(partitions)

    def neighbors_of(sampler, batch, node):
        out = []
        for layer in reversed(sampler.sample(g, {nt: batch}, seed=5).layers):  # seeds' hop first
            src, dst, _ = layer.edges[et]
            srcs, dsts = layer.src_nodes[nt], layer.src_nodes[nt][:layer.num_dst[nt]]
            out.append(sorted(srcs[src[dsts[dst] == node]].tolist()))
        return out

    keyed, positional = (NeighborSampler(schema, [3, 2], key_by_id=k) for k in (True, False))
    node = ids[7]
    alone = neighbors_of(keyed, ids[7:8], node)
    assert all(len(h) == f for h, f in zip(alone, [2, 3]))
    for batch in (ids[:40], ids[7:8][::-1], np.concatenate([ids[100:160], ids[7:8]])):
        assert neighbors_of(keyed, batch, node) == alone
    # by position (training), the same node's draws change with the batch
    assert any(neighbors_of(positional, b, node) != neighbors_of(positional, ids[7:8], node)
               for b in (ids[:40], np.concatenate([ids[100:160], ids[7:8]])))


# ----------------------------------------------------------------------------- PyG

def test_pyg_heterodata_matches_blocks(arrays, local):
    pytest.importorskip("torch_geometric", reason="the pyg extra (torch_geometric) is not installed")
    seeds = {"user": arrays.nodes["user"][:30]}
    fan = [{"click": 2, "clicked-by": 3, "follows": 2}, {"click": 3, "clicked-by": 2, "follows": 3}]
    (_, _, blocks), = list(NodeLoader(local, seeds, fan, batch_size=30, seed=4))
    data = next(iter(NodeLoader(local, seeds, fan, batch_size=30, seed=4, output="pyg")))
    for nt in ("user", "item"):
        assert data[nt].n_id.tolist() == blocks[0].srcnodes[nt].data[dgl.NID].tolist()
        assert torch.equal(data[nt].x, blocks[0].srcnodes[nt].data["feat"])
        assert sum(data[nt].num_sampled_nodes) == data[nt].num_nodes
    assert data["user"].batch_size == 30
    assert torch.equal(data["user"].y[:30], blocks[-1].dstnodes["user"].data["label"])
    # every PyG edge is an edge of the blocks, and each node is expanded once
    for et in CLICK_SCHEMA.canonical_etypes:
        ei = data[et].edge_index
        pyg = Counter(zip(data[et[0]].n_id[ei[0]].tolist(), data[et[2]].n_id[ei[1]].tolist()))
        union = block_edges(blocks[0], et) + block_edges(blocks[1], et)
        assert all(union[e] >= c for e, c in pyg.items())
        seed_edges = block_edges(blocks[1], et)
        assert all(pyg[e] >= c for e, c in seed_edges.items())
        dst_ids = data[et[2]].n_id[ei[1]].numpy()
        assert sum(data[et].num_sampled_edges) == ei.shape[1]
        assert len(dst_ids) == ei.shape[1]


def test_pyg_data_runs_a_pyg_layer():
    pytest.importorskip("torch_geometric", reason="the pyg extra (torch_geometric) is not installed")
    from torch_geometric.nn import SAGEConv

    schema = GraphSchema.homogeneous(5)
    rng = np.random.default_rng(2)
    ids = np.arange(60, dtype=np.int64)
    nt, et = schema.ntypes[0], schema.canonical_etypes[0]
    g = GraphArrays(schema, {nt: ids}, {nt: {"feat": rng.random((60, 5), dtype=np.float32)}},
                    {et: (rng.integers(0, 60, 400), rng.integers(0, 60, 400))}).to_local()
    data = next(iter(NodeLoader(g, ids, [3, 3], batch_size=10, output="pyg")))
    assert data.batch_size == 10 and data.x.shape == (data.num_nodes, 5)
    out = SAGEConv(5, 4)(data.x, data.edge_index)
    assert out.shape == (data.num_nodes, 4)


def _two_layer_outputs(data, convs, hetero: bool, trim: bool):
    """Seed outputs of two message-passing layers over a PyG batch, with or without
    ``trim_to_layer`` (which is exact only when nodes and edges are laid out per hop)."""
    from torch_geometric.utils import trim_to_layer

    if hetero:
        x = {nt: data[nt].x for nt in data.node_types}
        ei = {et: data[et].edge_index for et in data.edge_types}
        nn_, ne = data.num_sampled_nodes_dict, data.num_sampled_edges_dict
    else:
        x, ei, nn_, ne = data.x, data.edge_index, data.num_sampled_nodes, data.num_sampled_edges
    for layer, conv in enumerate(convs):
        if trim:
            x, ei, _ = trim_to_layer(layer, nn_, ne, x, ei)
        x = conv(x, ei)
        x = {k: v.relu() for k, v in x.items()} if hetero else x.relu()
    return x


def test_pyg_input_id_and_per_hop_counts_as_pyg(arrays, local):
    pytest.importorskip("torch_geometric", reason="the pyg extra (torch_geometric) is not installed")
    from torch_geometric.nn import HeteroConv, SAGEConv

    torch.manual_seed(0)
    users = arrays.nodes["user"][:50]
    fan = [{"click": 2, "clicked-by": 3, "follows": 2}, {"click": 3, "clicked-by": 2, "follows": 1}]
    loader = NodeLoader(local, {"user": users}, fan, batch_size=20, shuffle=True, seed=3,
                        output="pyg")
    convs = [HeteroConv({et: SAGEConv((-1, -1), 8) for et in CLICK_SCHEMA.canonical_etypes}),
             HeteroConv({et: SAGEConv((8, 8), 8) for et in CLICK_SCHEMA.canonical_etypes})]
    seen = []
    for data in loader:
        u = data["user"]
        assert u.input_id.dtype == torch.int64 and len(u.input_id) == u.batch_size
        assert u.n_id[:u.batch_size].tolist() == users[u.input_id.numpy()].tolist()
        seen += u.input_id.tolist()
        for nt in data.node_types:  # seeds first, then one count per hop
            assert len(data[nt].num_sampled_nodes) == 3
            assert sum(data[nt].num_sampled_nodes) == data[nt].num_nodes
        assert sorted(data.edge_types) == sorted(CLICK_SCHEMA.canonical_etypes)
        for et in data.edge_types:  # every edge type, one count per hop
            assert len(data[et].num_sampled_edges) == 2
            assert sum(data[et].num_sampled_edges) == data[et].edge_index.shape[1]
        full = _two_layer_outputs(data, convs, True, trim=False)
        trimmed = _two_layer_outputs(data, convs, True, trim=True)
        torch.testing.assert_close(trimmed["user"][:u.batch_size], full["user"][:u.batch_size])
    assert sorted(seen) == list(range(50))  # shuffled, each seed once


def test_pyg_homogeneous_data_has_the_pyg_attributes():
    pytest.importorskip("torch_geometric", reason="the pyg extra (torch_geometric) is not installed")
    from torch_geometric.nn import SAGEConv

    torch.manual_seed(0)
    schema = GraphSchema.homogeneous(5)
    rng = np.random.default_rng(2)
    ids = np.arange(100, 160, dtype=np.int64)
    nt, et = schema.ntypes[0], schema.canonical_etypes[0]
    g = GraphArrays(schema, {nt: ids}, {nt: {"feat": rng.random((60, 5), dtype=np.float32)}},
                    {et: (ids[rng.integers(0, 60, 400)], ids[rng.integers(0, 60, 400)])}).to_local()
    seeds = ids[::-1].copy()
    convs = [SAGEConv(5, 8), SAGEConv(8, 8)]
    for data in NodeLoader(g, seeds, [3, 2], batch_size=16, shuffle=True, seed=1, output="pyg"):
        assert data.n_id[:data.batch_size].tolist() == seeds[data.input_id.numpy()].tolist()
        assert len(data.num_sampled_nodes) == 3 and sum(data.num_sampled_nodes) == data.num_nodes
        assert len(data.num_sampled_edges) == 2
        assert sum(data.num_sampled_edges) == data.edge_index.shape[1] == len(data.e_id)
        full = _two_layer_outputs(data, convs, False, trim=False)
        trimmed = _two_layer_outputs(data, convs, False, trim=True)
        torch.testing.assert_close(trimmed[:data.batch_size], full[:data.batch_size])


def test_link_loader_pair_graph_has_edge_ids_as_dgl(arrays, local):
    s_all, d_all, e_all = all_edges(local, CLICK)
    by_eid = {int(e): (int(s), int(d)) for s, d, e in zip(s_all, d_all, e_all)}
    cu, ci = arrays.edges[CLICK]
    held_out = (np.array([cu[0]]), np.array([arrays.nodes["item"][-1]]))  # maybe not an edge
    src = np.concatenate([cu[:40], held_out[0]])
    dst = np.concatenate([ci[:40], held_out[1]])
    is_edge = set(zip(cu.tolist(), ci.tolist()))
    cases = [({CLICK: (src, dst)}, len(src)), ({CLICK: "all"}, len(s_all)),
             ({CLICK: (s_all[:30], d_all[:30], e_all[:30])}, 30)]
    for edges, expected in cases:
        n = 0
        for _inp, pair, neg, _blocks in LinkLoader(local, edges, [2], batch_size=16, negatives=1, seed=2):
            ids_u, ids_i = pair.nodes["user"].data[dgl.NID], pair.nodes["item"].data[dgl.NID]
            ps, pd = pair.edges(etype=CLICK)
            eids = pair.edges[CLICK].data[dgl.EID]
            assert eids.dtype == torch.int64 and len(eids) == len(ps)
            for s, d, e in zip(ids_u[ps].tolist(), ids_i[pd].tolist(), eids.tolist()):
                if e >= 0:
                    assert by_eid[e] == (s, d)
                else:
                    assert (s, d) not in is_edge
            for other in CLICK_SCHEMA.canonical_etypes:  # every type has the field, as in DGL
                assert dgl.EID in pair.edges[other].data
            assert dgl.EID not in neg.edges[CLICK].data  # DGL's negative graph has none
            assert torch.equal(neg.nodes["user"].data[dgl.NID], ids_u)
            n += len(ps)
        assert n == expected
