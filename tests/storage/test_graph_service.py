"""The GraphService contract on LocalGraph, for 1, 2 and 3 partitions, against brute force
on a small heterogeneous graph. Results must not depend on the partitioning."""
from __future__ import annotations

import numpy as np
import pytest

from graphplat.schema import GraphSchema
from graphplat.storage.local import LocalGraph
from graphplat.storage.partition_book import PartitionBook
from graphplat.storage.partition_data import split_into_partitions

SCHEMA = GraphSchema.from_yaml("""
node_types:
  user: {features: {age: int64, emb: "float32[4]"}}
  item: {features: {feat: "float32[3]"}}
edge_types:
  - {src: user, relation: click, dst: item, weighted: true, out_adjacency: true}
  - {src: item, relation: clicked_by, dst: user, out_adjacency: true}
  - [user, follows, user]
""")
CLICK = ("user", "click", "item")
BY = ("item", "clicked_by", "user")
FOLLOWS = ("user", "follows", "user")


class World:
    """The whole graph as plain arrays (the brute-force reference)."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.users = rng.choice(2**40, 120, replace=False) - 2**39  # arbitrary, some negative
        self.items = rng.choice(2**40, 60, replace=False)
        s = self.users[rng.integers(0, 120, 900)]
        d = self.items[rng.integers(0, 60, 900)]
        pairs = np.unique(np.stack([s, d], 1), axis=0)
        self.click = (pairs[:, 0], pairs[:, 1])
        self.weight = rng.random(len(pairs)).astype(np.float32)
        self.weight[::7] = 0.0
        f = np.unique(np.stack([self.users[rng.integers(0, 120, 300)],
                                self.users[rng.integers(0, 120, 300)]], 1), axis=0)
        self.follows = (f[:, 0], f[:, 1])
        self.age = rng.integers(0, 90, 120)
        self.emb = rng.random((120, 4), dtype=np.float32)
        self.feat = rng.random((60, 3), dtype=np.float32)

    def graph(self, partitions: int) -> LocalGraph:
        book = PartitionBook(partitions)
        parts = split_into_partitions(
            SCHEMA, book, {"user": self.users, "item": self.items},
            {"user": {"age": self.age, "emb": self.emb}, "item": {"feat": self.feat}},
            {CLICK: self.click, BY: (self.click[1], self.click[0]), FOLLOWS: self.follows},
            {CLICK: self.weight})
        return LocalGraph.from_partitions(book, parts)

    def in_edges(self, etype):
        src, dst = {CLICK: self.click, BY: (self.click[1], self.click[0]), FOLLOWS: self.follows}[etype]
        return src, dst


WORLD = World()


@pytest.fixture(params=[1, 2, 3], ids=lambda p: f"P{p}")
def g(request):
    return WORLD.graph(request.param)


def test_counts_and_lookup(g):
    assert g.num_nodes("user") == 120 and g.num_nodes("item") == 60
    assert g.num_edges("click") == len(WORLD.click[0])
    assert g.lookup("user", np.concatenate([WORLD.users[:5], [12345]])).tolist() == [True] * 5 + [False]
    assert sorted(g.node_ids("item").tolist()) == sorted(WORLD.items.tolist())


@pytest.mark.parametrize("etype", [CLICK, FOLLOWS])
def test_full_neighborhood_is_exact_and_in_seed_order(g, etype):
    src, dst = WORLD.in_edges(etype)
    seeds = np.unique(dst)[::-1].copy()
    s = g.sample_neighbors(etype, seeds, -1, strategy="full")
    owner = np.repeat(seeds, s.counts)
    got = sorted(zip(owner.tolist(), s.neighbors.tolist()))
    want = sorted((int(d), int(x)) for x, d in zip(src, dst) if d in set(seeds.tolist()))
    assert got == want
    np.testing.assert_array_equal(s.counts, g.degrees(etype, seeds))


def test_uniform_sample_is_valid_and_partition_independent():
    src, dst = WORLD.click
    edges = set(zip(src.tolist(), dst.tolist()))
    seeds = WORLD.items
    results = []
    for parts in (1, 2, 3):
        s = WORLD.graph(parts).sample_neighbors(CLICK, seeds, 4, seed=11)
        deg = np.array([(dst == i).sum() for i in seeds])
        np.testing.assert_array_equal(s.counts, np.minimum(deg, 4))
        assert all((int(n), int(d)) in edges for n, d in zip(s.neighbors, np.repeat(seeds, s.counts)))
        # Edge ids encode the owning partition, so compare the edges they name instead.
        weights = WORLD.graph(parts).edge_features(CLICK, s.eids)["weight"]
        results.append((s.neighbors, weights))
    for nb, w in results[1:]:
        np.testing.assert_array_equal(nb, results[0][0])
        np.testing.assert_array_equal(w, results[0][1])


def test_positions_make_split_batches_equal_the_whole(g):
    seeds = WORLD.items
    whole = g.sample_neighbors(CLICK, seeds, 3, seed=5)
    half = len(seeds) // 2
    a = g.sample_neighbors(CLICK, seeds[:half], 3, seed=5, positions=np.arange(half))
    b = g.sample_neighbors(CLICK, seeds[half:], 3, seed=5, positions=np.arange(half, len(seeds)))
    np.testing.assert_array_equal(np.concatenate([a.neighbors, b.neighbors]), whole.neighbors)


def test_weighted_and_topk(g):
    src, dst = WORLD.click
    w = {(int(a), int(b)): float(x) for a, b, x in zip(src, dst, WORLD.weight)}
    seeds = WORLD.items
    s = g.sample_neighbors(CLICK, seeds, 3, strategy="weighted", seed=2)
    assert all(w[(int(n), int(d))] > 0 for n, d in zip(s.neighbors, np.repeat(seeds, s.counts)))
    t = g.sample_neighbors(CLICK, seeds, 2, strategy="topk")
    owner = np.repeat(seeds, t.counts)
    for item in seeds[:20]:
        row = sorted((x for (a, b), x in w.items() if b == item), reverse=True)
        got = sorted((w[(int(n), int(item))] for n in t.neighbors[owner == item]), reverse=True)
        assert got == row[:2]


def test_out_direction_uses_reverse_storage(g):
    src, dst = WORLD.click
    user = src[0]
    s = g.sample_neighbors(CLICK, [user], -1, strategy="full", direction="out")
    assert sorted(s.neighbors.tolist()) == sorted(dst[src == user].tolist())
    with pytest.raises(ValueError, match="out_adjacency"):
        g.sample_neighbors(FOLLOWS, [user], 2, direction="out")


def test_features(g):
    idx = np.array([5, 0, 119, 5])
    f = g.node_features("user", WORLD.users[idx])
    np.testing.assert_array_equal(f["age"], WORLD.age[idx])
    np.testing.assert_array_equal(f["emb"], WORLD.emb[idx])
    assert g.node_features("item", WORLD.items[:0])["feat"].shape == (0, 3)
    s = g.sample_neighbors(CLICK, WORLD.items, -1, strategy="full")
    ew = g.edge_features(CLICK, s.eids)["weight"]
    lookup = {(int(a), int(b)): x for a, b, x in zip(*WORLD.click, WORLD.weight)}
    want = [lookup[(int(n), int(d))] for n, d in zip(s.neighbors, np.repeat(WORLD.items, s.counts))]
    np.testing.assert_array_equal(ew, np.array(want, np.float32))
    with pytest.raises(ValueError, match="nope"):
        g.node_features("user", WORLD.users[:2], ["nope"])


def test_negative_sampling_excludes_edges(g):
    edges = set(zip(*(a.tolist() for a in WORLD.click)))
    for strategy in ("uniform", "degree"):
        ns, nd = g.negative_sample(CLICK, WORLD.users[:30], 5, strategy=strategy, seed=3)
        assert len(ns) > 100
        assert not any((int(a), int(b)) in edges for a, b in zip(ns, nd))
        assert set(nd.tolist()) <= set(WORLD.items.tolist())


def test_random_walk_follows_edges(g):
    click = set(zip(*(a.tolist() for a in WORLD.click)))
    walks = g.random_walk([CLICK, BY, CLICK], WORLD.users[:40], seed=4)
    assert walks.shape == (40, 4)
    for w in walks:
        for step, (a, b) in enumerate(zip(w, w[1:])):
            if b == -1:
                break
            assert ((a, b) if step % 2 == 0 else (b, a)) in click


def test_online_writes_are_visible_at_once(g):
    new_users = np.array([7, 8])
    g.add_nodes("user", new_users, {"age": np.array([70, 80])})
    assert g.node_features("user", [8])["age"].tolist() == [80]
    assert g.node_features("user", [7])["emb"].tolist() == [[0, 0, 0, 0]]
    item = WORLD.items[0]
    before = g.degrees(CLICK, [item])[0]
    eids = g.add_edges(CLICK, [7, 8], [item, item], weights=[1.5, 0.5])
    assert g.degrees(CLICK, [item])[0] == before + 2
    full = g.sample_neighbors(CLICK, [item], -1, strategy="full")
    assert {7, 8} <= set(full.neighbors.tolist())
    assert set(eids.tolist()) <= set(full.eids.tolist())
    assert g.sample_neighbors(CLICK, [7], -1, strategy="full", direction="out").neighbors.tolist() == [item]
    np.testing.assert_array_equal(g.edge_features(CLICK, eids)["weight"], [1.5, 0.5])
    g.update_features("user", [7], {"age": np.array([71])})
    assert g.node_features("user", [7])["age"].tolist() == [71]


def test_bad_writes_change_nothing(g):
    n = g.num_nodes("user")
    with pytest.raises(ValueError, match="already present"):
        g.add_nodes("user", np.array([999, WORLD.users[0]]))
    with pytest.raises(ValueError, match="distinct"):
        g.add_nodes("user", np.array([5, 5]))
    assert g.num_nodes("user") == n
    e = g.num_edges("click")
    with pytest.raises(ValueError, match="not 'item' nodes"):
        g.add_edges(CLICK, [WORLD.users[0]], [424242])
    assert g.num_edges("click") == e
    with pytest.raises(ValueError):
        g.add_nodes("user", [31337], {"emb": np.zeros((1, 5), np.float32)})
    assert not g.lookup("user", [31337])[0]


def test_bad_reads_name_the_problem(g):
    with pytest.raises(ValueError, match="nope"):
        g.sample_neighbors(("user", "nope", "item"), WORLD.items[:1], 2)
    with pytest.raises(IndexError):
        g.sample_neighbors(CLICK, [123456789], 2)
    with pytest.raises(ValueError, match="fanout"):
        g.sample_neighbors(CLICK, WORLD.items[:2], -2)
    with pytest.raises(ValueError, match="direction"):
        g.sample_neighbors(CLICK, WORLD.items[:2], 2, direction="sideways")
    with pytest.raises(ValueError, match="integer"):
        g.sample_neighbors(CLICK, np.array([1.5]), 2)


def test_fanout_zero_samples_nothing(g):
    """Fanout 0: every seed gets 0 neighbors (DGL's rule, as in NodeLoader); the other
    arguments and the seed ids are still checked."""
    for et, seeds in ((CLICK, WORLD.items[:5]), (FOLLOWS, WORLD.users[:7])):
        for fanout in (0, np.int64(0)):
            s = g.sample_neighbors(et, seeds, fanout, strategy="uniform", seed=3)
            assert s.counts.tolist() == [0] * len(seeds) and s.neighbors.size == 0 and s.eids.size == 0
    assert g.sample_neighbors(CLICK, WORLD.users[:3], 0, direction="out").counts.tolist() == [0, 0, 0]
    with pytest.raises(IndexError):
        g.sample_neighbors(CLICK, [123456789], 0)
    with pytest.raises(ValueError, match="strategy"):
        g.sample_neighbors(CLICK, WORLD.items[:2], 0, strategy="nope")
    with pytest.raises(ValueError, match="out_adjacency"):
        g.sample_neighbors(FOLLOWS, WORLD.users[:1], 0, direction="out")


def test_open_graph_writes_are_durable(tmp_path):
    """LocalGraph opened from a store logs writes like a server: they survive a reopen
    and a compaction, and a read-only view sees them."""
    from graphplat import open_graph
    from graphplat.storage.store import create_store

    book = PartitionBook(2)
    parts = split_into_partitions(
        SCHEMA, book, {"user": WORLD.users, "item": WORLD.items},
        {"user": {"age": WORLD.age, "emb": WORLD.emb}, "item": {"feat": WORLD.feat}},
        {CLICK: WORLD.click, BY: (WORLD.click[1], WORLD.click[0]), FOLLOWS: WORLD.follows},
        {CLICK: WORLD.weight})
    store = tmp_path / "store"
    create_store(store, parts, book)
    item = WORLD.items[3]
    with open_graph(store) as g:
        g.add_nodes("user", [77], {"age": [7]})
        eids = g.add_edges(CLICK, [77], [item], weights=[2.0])
        g.update_features("user", [WORLD.users[0]], {"age": [1]})
        expect = g.sample_neighbors(CLICK, [item], -1, strategy="full")
    with open_graph(store, read_only=True) as ro:
        with pytest.raises(RuntimeError, match="replica"):
            ro.add_nodes("user", [78])
        np.testing.assert_array_equal(ro.sample_neighbors(CLICK, [item], -1, strategy="full").eids, expect.eids)
    with open_graph(store) as g:
        assert g.node_features("user", [77, WORLD.users[0]])["age"].tolist() == [7, 1]
        np.testing.assert_array_equal(g.edge_features(CLICK, eids)["weight"], [2.0])
        g.compact()
    with open_graph(store) as g:
        got = g.sample_neighbors(CLICK, [item], -1, strategy="full")
        assert sorted(got.eids.tolist()) == sorted(expect.eids.tolist())
        assert 77 in got.neighbors.tolist()
