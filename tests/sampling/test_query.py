"""The Gremlin-like query chain against brute force, and heterogeneous blocks on ACM."""
from __future__ import annotations

from collections import Counter

import dgl
import numpy as np
import pytest

from graphplat.sampling.query import E, V
from graphplat.schema import GraphSchema  # noqa: E402
from graphplat.storage.graph_arrays import GraphArrays  # noqa: E402
from graphplat.testing.blocks import block_edges, check_block_layout
from graphplat.testing.graphs import CLICK, CLICK_SCHEMA, FOLLOWS, click_graph

RSCHEMA = GraphSchema.from_dict({
    "node_types": CLICK_SCHEMA.to_dict()["node_types"],
    "edge_types": [{"src": "user", "relation": "click", "dst": "item", "weighted": True, "out_adjacency": True},
                   {"src": "item", "relation": "clicked-by", "dst": "user", "out_adjacency": True},
                   {"src": "user", "relation": "follows", "dst": "user", "out_adjacency": True}]})


@pytest.fixture(scope="module")
def world():
    a = click_graph(seed=5)
    ga = GraphArrays(RSCHEMA, a.nodes, a.node_features, a.edges, a.edge_weights)
    return ga, ga.to_local(partitions=2)


def out_nbrs(ga, et, u):
    s, d = ga.edges[et]
    return Counter(d[s == u].tolist())


def test_chain_outv_inv_matches_the_graph(world):
    ga, g = world
    users = ga.nodes["user"]
    q = (V(g, "user").batch(40).shuffle(seed=7).alias("u")
         .outV("click").sample(3).by("edge_weight").alias("i")
         .inV("click").sample(2).by("random").alias("v").values())
    seen = []
    for batch in q:
        u, i, v = batch["u"], batch["i"], batch["v"]
        seen += u.ids.tolist()
        assert u.features["feat"].shape == (len(u.ids), 4)
        for _row, (item, p) in enumerate(zip(i.ids.tolist(), i.parent.tolist())):
            assert out_nbrs(ga, CLICK, u.ids[p])[item] > 0
        deg = np.array([sum(out_nbrs(ga, CLICK, x).values()) for x in u.ids])
        w_pos = np.array([int((ga.edge_weights[CLICK][ga.edges[CLICK][0] == x] > 0).sum()) for x in u.ids])
        assert (i.counts == np.minimum(3, w_pos)).all() and (i.counts <= deg).all()
        for user, p in zip(v.ids.tolist(), v.parent.tolist()):  # users who clicked item i
            assert out_nbrs(ga, CLICK, user)[int(i.ids[p])] > 0
        assert (v.counts == 2).all()  # with replacement: always k
        assert np.array_equal(i.features["feat"], g.node_features("item", i.ids)["feat"])
        dense = i.dense()
        assert dense.shape[0] == len(u.ids)
    assert sorted(seen) == sorted(users.tolist())
    # reproducible
    again = list(V(g, "user").batch(40).shuffle(seed=7).outV("click").sample(3).by("edge_weight").values(False))
    first = list(V(g, "user").batch(40).shuffle(seed=7).outV("click").sample(3).by("edge_weight").values(False))
    assert all(np.array_equal(a["1"].ids, b["1"].ids) for a, b in zip(again, first))


def test_edges_source_and_negatives(world):
    ga, g = world
    existing = set(zip(*[a.tolist() for a in ga.edges[CLICK]]))
    for batch in E(g, "click").batch(100).shuffle(seed=1).outV().alias("src").outNeg("click").sample(4).by(
            "in_degree").alias("neg").values(features=False):
        src, neg = batch["src"], batch["neg"]
        assert len(batch["0"].ids) == len(src.ids)
        for item, p in zip(neg.ids.tolist(), neg.parent.tolist()):
            assert (int(src.ids[p]), item) not in existing
        assert neg.counts.sum() == len(neg.ids)
    b = next(V(g, "item").batch(30).inNeg("click").sample(3).by("random").values(features=False))
    for user, p in zip(b["1"].ids.tolist(), b["1"].parent.tolist()):
        assert (user, int(b["0"].ids[p])) not in existing


def test_full_neighborhood_and_topk(world):
    ga, g = world
    users = ga.nodes["user"][:10]
    b = next(V(g, "user", ids=users).inV("follows").values(features=False))
    s, d = ga.edges[FOLLOWS]
    for k, u in enumerate(users.tolist()):
        assert Counter(b["1"].ids[b["1"].parent == k].tolist()) == Counter(s[d == u].tolist())
    top = next(V(g, "user", ids=users).outV("click").sample(2).by("topk").values(features=False))
    w = ga.edge_weights[CLICK]
    cs, cd = ga.edges[CLICK]
    for k, u in enumerate(users.tolist()):
        got = g.edge_features(CLICK, top["1"].eids[top["1"].parent == k])["weight"]
        assert np.allclose(np.sort(got)[::-1], np.sort(w[cs == u])[::-1][:2])


def test_schema_errors_at_build_time(world):
    _, g = world
    with pytest.raises(ValueError, match="does not start at node type 'item'"):
        V(g, "item").outV("click")
    with pytest.raises(ValueError, match="does not end at node type 'user'"):
        V(g, "user").inV("click")
    with pytest.raises(ValueError, match="needs edge weights"):
        V(g, "user").outV("follows").sample(2).by("edge_weight")
    with pytest.raises(ValueError, match="unknown sampling strategy"):
        V(g, "user").outV("click").sample(2).by("bogus")
    with pytest.raises(ValueError, match="integer >= 0 or -1"):
        V(g, "user").outV("click").sample(-2)
    with pytest.raises(ValueError, match="k >= 1"):
        V(g, "user").outNeg("click").sample(0)
    # fanout 0 samples nothing, as everywhere else
    users = g.node_ids("user")[:8]
    none = next(V(g, "user", ids=users).outV("click").sample(0).values(features=False))
    assert none["1"].ids.size == 0 and (none["1"].counts == 0).all() and len(none["1"].counts) == 8
    with pytest.raises(ValueError, match="already used"):
        V(g, "user").alias("a").outV("click").alias("a")
    with pytest.raises(ValueError, match="after E"):
        E(g, "click").outNeg("click")
    with pytest.raises(ValueError, match="edge type"):
        V(g, "user").outV("nope")


# ----------------------------------------------------------------------------- ACM

def test_acm_heterogeneous_blocks_and_features(datasets_dir):
    from graphplat.datasets import load_dataset
    from graphplat.sampling import NodeLoader

    ds = load_dataset("acm", datasets_dir)
    g = ds.to_local(partitions=2)
    papers = ds.split_ids("train")
    loader = NodeLoader(g, {"paper": papers}, [-1, 4], batch_size=32, seed=1)
    ga = ds.graph
    pos = {nt: {v: i for i, v in enumerate(ga.nodes[nt].tolist())} for nt in ga.nodes}
    for _, out, blocks in loader:
        check_block_layout(blocks, {"paper": out["paper"].numpy()})
        # the input layer holds the full in-neighborhood of every type
        b0 = blocks[0]
        for et in b0.canonical_etypes:
            dst = b0.dstnodes[et[2]].data[dgl.NID].numpy()
            s, d = ga.edges[et]
            keep = np.isin(d, dst)
            assert block_edges(b0, et) == Counter(zip(s[keep].tolist(), d[keep].tolist()))
        for nt in b0.srctypes:
            ids = b0.srcnodes[nt].data[dgl.NID].numpy()
            rows = [pos[nt][v] for v in ids.tolist()]
            assert np.array_equal(b0.srcnodes[nt].data["feat"].numpy(), ga.node_features[nt]["feat"][rows])
        y = blocks[-1].dstnodes["paper"].data["label"].numpy()
        assert np.array_equal(y, ga.node_features["paper"]["label"][[pos["paper"][v] for v in out["paper"].tolist()]])
    assert set(blocks[0].ntypes) == {"paper", "author", "subject"}
