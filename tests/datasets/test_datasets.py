"""Dataset readers (graphplat.datasets) against the real raw files of the ``datasets_dir``
fixture, plus the synthetic recommendation graph.

The truth in these tests is read straight from the raw files here (pickle, numpy, zipfile,
scipy.io), independently of the readers, and compared with the README's documented counts.
"""
from __future__ import annotations

import argparse
import io
import json
import pickle
import time
import warnings
import zipfile

import numpy as np
import pytest

import graphplat
from graphplat.cli.dataset import add_arguments, run
from graphplat.datasets import (
    DATASETS,
    Dataset,
    dataset_options,
    find_data_dir,
    generate_recsys,
    load_dataset,
    stratified_split,
)

CITES = ("paper", "cites", "paper")
SMALL_SYNTH = dict(num_users=300, num_items=200, num_shops=12, num_communities=4, num_clicks=3000)


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def cora(datasets_dir):
    return load_dataset("cora", datasets_dir)


@pytest.fixture(scope="module")
def citeseer(datasets_dir):
    return load_dataset("citeseer", datasets_dir)


@pytest.fixture(scope="module")
def acm(datasets_dir):
    return load_dataset("acm", datasets_dir)


@pytest.fixture(scope="module")
def movielens(datasets_dir):
    return load_dataset("movielens", datasets_dir)


@pytest.fixture(scope="module")
def yelpchi(datasets_dir):
    return load_dataset("yelpchi", datasets_dir)


@pytest.fixture(scope="module")
def synthetic():
    return load_dataset("synthetic")


def raw_planetoid(root, name):
    out = {}
    for k in ("x", "y", "tx", "ty", "allx", "ally", "graph"):
        with open(root / name / f"ind.{name}.{k}", "rb") as f, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # pickles name scipy.sparse.csr
            out[k] = pickle.load(f, encoding="latin1")
    out["test.index"] = np.loadtxt(root / name / f"ind.{name}.test.index", dtype=np.int64)
    return out


def neighbor_lists(g, etype, seeds, direction="in"):
    """Every neighbor of each seed (strategy full), as sorted lists."""
    s = g.sample_neighbors(etype, np.asarray(seeds, np.int64), -1, strategy="full",
                           direction=direction)
    offs = np.concatenate([[0], np.cumsum(s.counts)])
    return [sorted(s.neighbors[offs[i]:offs[i + 1]].tolist()) for i in range(len(seeds))]


def check_local(ds: Dataset, etype, truth_in, seeds, rng_seed=0):
    """``ds.to_local()`` answers node features and full in-neighborhoods like the arrays /
    the raw adjacency ``truth_in`` (dict dst -> sorted list of sources)."""
    g = ds.to_local(partitions=2)
    try:
        for nt in ds.schema.ntypes:
            ids = ds.graph.nodes[nt]
            assert g.num_nodes(nt) == len(ids)
            pick = np.random.default_rng(rng_seed).choice(ids, size=min(7, len(ids)), replace=False)
            got = g.node_features(nt, pick)
            for name, arr in ds.graph.node_features[nt].items():
                np.testing.assert_array_equal(got[name], arr[pick])
        for et in ds.schema.canonical_etypes:
            assert g.num_edges(et) == len(ds.graph.edges[et][0])
        got = neighbor_lists(g, etype, seeds)
        assert got == [truth_in.get(int(s), []) for s in seeds]
    finally:
        g.close()


def in_lists(src, dst, seeds):
    """dst -> sorted sources, for the given seeds only."""
    src, dst = np.asarray(src), np.asarray(dst)
    return {int(s): sorted(src[dst == s].tolist()) for s in seeds}


# ----------------------------------------------------------------------------- planetoid

@pytest.mark.parametrize("name,nodes,edges,classes,n_train,n_feat", [
    ("cora", 2708, 10556, 7, 140, 1433), ("citeseer", 3327, 9104, 6, 120, 3703)])
def test_planetoid_counts_and_split(request, datasets_dir, name, nodes, edges, classes, n_train,
                                    n_feat):
    ds = request.getfixturevalue(name)
    raw = raw_planetoid(datasets_dir, name)
    g = ds.graph
    assert ds.task == "node_classification" and ds.target_ntype == "paper"
    assert ds.num_classes == classes and ds.schema.canonical_etypes == [CITES]
    assert len(g.nodes["paper"]) == nodes
    np.testing.assert_array_equal(g.nodes["paper"], np.arange(nodes))
    assert g.node_features["paper"]["feat"].shape == (nodes, n_feat)
    src, dst = g.edges[CITES]
    assert len(src) == edges
    assert not (src == dst).any()
    keys = src * nodes + dst
    assert len(np.unique(keys)) == edges
    np.testing.assert_array_equal(np.sort(keys), np.sort(dst * nodes + src))  # symmetric
    # Same pair set as the raw dict of lists.
    rs = np.concatenate([np.full(len(v), k) for k, v in raw["graph"].items()])
    rd = np.concatenate([np.asarray(v, np.int64) for v in raw["graph"].values()])
    m = rs != rd
    raw_keys = np.unique(np.concatenate([rs[m] * nodes + rd[m], rd[m] * nodes + rs[m]]))
    np.testing.assert_array_equal(np.sort(keys), raw_keys)

    split, labels = ds.split(), ds.labels()
    assert [(split == c).sum() for c in (0, 1, 2)] == [n_train, 500, 1000]
    np.testing.assert_array_equal(ds.split_ids("train"), np.arange(n_train))
    np.testing.assert_array_equal(ds.split_ids("val"), np.arange(n_train, n_train + 500))
    np.testing.assert_array_equal(ds.split_ids("test"), np.sort(raw["test.index"]))
    assert np.bincount(labels[split == 0], minlength=classes).tolist() == [20] * classes
    assert labels.min() >= 0 and labels.max() < classes


def test_cora_labels_and_features_equal_raw(cora, datasets_dir):
    raw = raw_planetoid(datasets_dir, "cora")
    feat, labels = cora.graph.node_features["paper"]["feat"], cora.labels()
    assert np.bincount(labels).tolist() == [351, 217, 418, 818, 426, 298, 180]  # README
    allx, tx = raw["allx"].toarray(), raw["tx"].toarray()
    for i in (0, 1, 139, 140, 1707):
        np.testing.assert_array_equal(feat[i], allx[i])
        assert labels[i] == raw["ally"][i].argmax()
    for j in (0, 1, 500, 999):  # tx row j belongs to node test.index[j]
        node = raw["test.index"][j]
        np.testing.assert_array_equal(feat[node], tx[j])
        assert labels[node] == raw["ty"][j].argmax()
    np.testing.assert_array_equal(feat[:140], raw["x"].toarray())  # x = the training rows
    assert int(feat.sum()) == 49216  # README: ones in cora.content


def test_citeseer_featureless_nodes_follow_pyg(citeseer, datasets_dir, monkeypatch):
    raw = raw_planetoid(datasets_dir, "citeseer")
    ti = raw["test.index"]
    gaps = np.setdiff1d(np.arange(ti.min(), ti.max() + 1), ti)
    assert len(gaps) == 15  # README
    np.testing.assert_array_equal(citeseer.meta["featureless_nodes"], gaps)
    feat = citeseer.graph.node_features["paper"]["feat"]
    assert not feat[gaps].any()
    assert (citeseer.labels()[gaps] == 0).all() and (citeseer.split()[gaps] == -1).all()
    # Labelled rows: the README's class counts over the 3,312 labelled nodes.
    known = np.setdiff1d(np.arange(3327), gaps)
    assert np.bincount(citeseer.labels()[known]).tolist() == [249, 590, 668, 701, 596, 508]
    j = 7
    np.testing.assert_array_equal(feat[ti[j]], raw["tx"].toarray()[j])
    # Self loops: dropped by default (like PyG), one each with self_loops=True.
    with_loops = load_dataset("citeseer", datasets_dir, self_loops=True)
    s, d = with_loops.graph.edges[CITES]
    assert (s == d).sum() == 124 and len(s) == 9104 + 124
    # add_self_loops: exactly one on every node (A + I), the raw ones not doubled
    all_loops = load_dataset("citeseer", datasets_dir, add_self_loops=True)
    s, d = all_loops.graph.edges[CITES]
    assert len(s) == 9104 + 3327 and np.array_equal(np.sort(s[s == d]), np.arange(3327))
    normalized = load_dataset("citeseer", datasets_dir, normalize=True)
    rows = normalized.graph.node_features["paper"]["feat"].sum(1)
    np.testing.assert_allclose(rows[known][:50], 1.0, rtol=1e-5)


@pytest.mark.parametrize("name,seeds", [("cora", [0, 1, 633, 1358, 2707]),
                                        ("citeseer", [0, 2, 1000, 2407, 3326])])
def test_planetoid_local_graph_matches_raw_adjacency(request, datasets_dir, name, seeds):
    ds = request.getfixturevalue(name)
    graph = raw_planetoid(datasets_dir, name)["graph"]
    # Neighbors of s: its own list plus every node listing s (self loops dropped).
    truth = {}
    for s in seeds:
        nbrs = set(graph[s]) | {k for k, v in graph.items() if s in v}
        truth[s] = sorted(nbrs - {s})
    check_local(ds, CITES, truth, seeds)


# ----------------------------------------------------------------------------- ACM

def test_acm_counts_features_and_split(acm, datasets_dir):
    import scipy.sparse as sp

    root = datasets_dir / "acm_heco"
    g = acm.graph
    assert {nt: len(g.nodes[nt]) for nt in ("paper", "author", "subject")} == \
        {"paper": 4019, "author": 7167, "subject": 60}
    counts = {et: len(g.edges[et][0]) for et in acm.schema.canonical_etypes}
    assert counts == {("paper", "written-by", "author"): 13407, ("author", "writes", "paper"): 13407,
                      ("paper", "about", "subject"): 4019, ("subject", "has", "paper"): 4019}
    assert acm.num_classes == 3 and acm.target_ntype == "paper"
    labels = np.load(root / "labels.npy").astype(np.int64)
    np.testing.assert_array_equal(acm.labels(), labels)
    train = np.load(root / "train_20.npy")
    np.testing.assert_array_equal(np.sort(acm.split_ids("train")), np.sort(train))
    assert len(train) == 60 and np.bincount(labels[train]).tolist() == [20, 20, 20]
    np.testing.assert_array_equal(np.sort(acm.split_ids("test")), np.sort(np.load(root / "test_20.npy")))
    assert len(acm.split_ids("val")) == 1000
    p = sp.load_npz(root / "p_feat.npz").tocsr()
    a = sp.load_npz(root / "a_feat.npz").tocsr()
    for i in (0, 17, 4018):
        np.testing.assert_array_equal(g.node_features["paper"]["feat"][i],
                                      p[i].toarray()[0].astype(np.float32))
    for i in (0, 3000, 7166):
        np.testing.assert_array_equal(g.node_features["author"]["feat"][i],
                                      a[i].toarray()[0].astype(np.float32))
    np.testing.assert_array_equal(g.node_features["subject"]["feat"], np.eye(60, dtype=np.float32))
    acm40 = load_dataset("acm", datasets_dir, labels_per_class=40)
    assert len(acm40.split_ids("train")) == 120
    assert acm40.reference["value"] == 87.61 and acm40.reference["metric"] == "macro_f1"
    with pytest.raises(ValueError, match="labels_per_class"):
        load_dataset("acm", datasets_dir, labels_per_class=30)


def test_acm_local_graph_matches_raw_edges(acm, datasets_dir):
    pa = np.loadtxt(datasets_dir / "acm_heco" / "pa.txt", dtype=np.int64)
    ps = np.loadtxt(datasets_dir / "acm_heco" / "ps.txt", dtype=np.int64)
    authors = [2036, 0, 5450, 7166]
    # in-neighbors of an author along paper-written-by->author: the papers listing it
    check_local(acm, ("paper", "written-by", "author"), in_lists(pa[:, 0], pa[:, 1], authors), authors)
    g = acm.to_local()
    try:
        papers = [0, 1, 4018]
        assert neighbor_lists(g, ("author", "writes", "paper"), papers) == \
            [sorted(pa[pa[:, 0] == p, 1].tolist()) for p in papers]
        assert neighbor_lists(g, ("subject", "has", "paper"), papers) == \
            [ps[ps[:, 0] == p, 1].tolist() for p in papers]
        subj = [53, 0]
        assert neighbor_lists(g, ("paper", "about", "subject"), subj) == \
            [sorted(ps[ps[:, 1] == s, 0].tolist()) for s in subj]
    finally:
        g.close()


# ----------------------------------------------------------------------------- MovieLens

def test_movielens_counts_split_and_features(movielens, datasets_dir):
    root = datasets_dir / "movielens-100k"
    ds, g = movielens, movielens.graph
    assert ds.task == "rating" and ds.num_classes is None
    assert len(g.nodes["user"]) == 943 and len(g.nodes["item"]) == 1682
    tr, va, te = (ds.target_etypes[k] for k in ("train", "val", "test"))
    assert tr == ("user", "rates", "item") and va == ("user", "rates-val", "item")
    assert te == ("user", "rates-test", "item")
    base = np.loadtxt(root / "u1.base", dtype=np.int64)
    test = np.loadtxt(root / "u1.test", dtype=np.int64)
    assert len(base) == 80000 and len(test) == 20000
    n_train, n_val = len(g.edges[tr][0]), len(g.edges[va][0])
    assert (n_train, n_val, len(g.edges[te][0])) == (76000, 4000, 20000)

    def triples(et):
        u, i = g.edges[et]
        r = g.edge_features[et]["rating"]
        return np.stack([u + 1, i + 1, r.astype(np.int64)], 1)

    def keyset(a):
        return set(map(tuple, a[:, :2].tolist()))

    train, val = triples(tr), triples(va)
    assert not keyset(train) & keyset(val)  # the carve-out is disjoint from train
    both = np.concatenate([train, val])
    np.testing.assert_array_equal(np.unique(both, axis=0), np.unique(base[:, :3], axis=0))
    np.testing.assert_array_equal(np.unique(triples(te), axis=0), np.unique(test[:, :3], axis=0))
    # The reverse type holds exactly the training ratings, and nothing held out.
    ri, ru = g.edges[("item", "rated-by", "user")]
    np.testing.assert_array_equal(np.sort(ru * 2000 + ri), np.sort(g.edges[tr][0] * 2000 + g.edges[tr][1]))
    assert ds.schema.edge_type(tr).weighted is False
    # timestamps travel with their rating
    first = np.flatnonzero((g.edges[te][0] == test[0, 0] - 1) & (g.edges[te][1] == test[0, 1] - 1))
    assert g.edge_features[te]["timestamp"][first].tolist() == [test[0, 3]]
    # Features from u.user / u.item.
    with zipfile.ZipFile(root / "ml-100k.zip") as z:
        users = z.read("ml-100k/u.user").decode("latin-1").splitlines()
        items = z.read("ml-100k/u.item").decode("latin-1").splitlines()
        occupations = z.read("ml-100k/u.occupation").decode().split()
    uf, itf = g.node_features["user"]["feat"], g.node_features["item"]["feat"]
    assert uf.shape == (943, 24) and itf.shape == (1682, 20)
    for line in (users[0], users[1], users[942]):
        uid, age, gender, occ, _ = line.split("|")
        row = uf[int(uid) - 1]
        assert row[0] == pytest.approx((int(age) - 7) / 66)
        assert row[1:3].tolist() == ([1, 0] if gender == "M" else [0, 1])
        assert row[3:].tolist() == [1.0 if o == occ else 0.0 for o in occupations]
    for line in (items[0], items[1], items[1681]):
        f = line.split("|")
        np.testing.assert_array_equal(itf[int(f[0]) - 1, :19], np.array(f[-19:], dtype=np.float32))
    assert 0 <= itf[:, 19].min() and itf[:, 19].max() == 1.0
    # The carve-out is seeded.
    again = load_dataset("movielens", datasets_dir, seed=0)
    np.testing.assert_array_equal(again.graph.edges[va][0], g.edges[va][0])
    other = load_dataset("movielens", datasets_dir, seed=1, val_fraction=0.1)
    assert len(other.graph.edges[va][0]) == 8000
    with pytest.raises(ValueError, match="split"):
        load_dataset("movielens", datasets_dir, split="u9")
    with pytest.raises(FileNotFoundError, match="u2.base"):
        load_dataset("movielens", datasets_dir, split="u2")  # the shared zip has no other folds


def test_movielens_local_graph(movielens, datasets_dir):
    base = np.loadtxt(datasets_dir / "movielens-100k" / "u1.base", dtype=np.int64)
    ds = movielens
    val_u, val_i = ds.graph.edges[("user", "rates-val", "item")]
    held = set(zip((val_u + 1).tolist(), (val_i + 1).tolist()))
    train_rows = np.array([r for r in base[:, :2].tolist() if tuple(r) not in held])
    items = [0, 49, 1681]  # 0-based; item 1682 has few ratings
    truth = in_lists(train_rows[:, 0] - 1, train_rows[:, 1] - 1, items)
    check_local(ds, ("user", "rates", "item"), truth, items)
    g = ds.to_local()
    try:
        s = g.sample_neighbors(("user", "rates", "item"), np.array([0]), -1, strategy="full")
        r = g.edge_features(("user", "rates", "item"), s.eids)["rating"]
        expect = {(u - 1): rt for u, i, rt in base[:, :3].tolist() if i == 1}
        assert sorted(zip(s.neighbors.tolist(), r.tolist())) == \
            sorted((u, float(expect[u])) for u in s.neighbors.tolist())
    finally:
        g.close()


# ----------------------------------------------------------------------------- YelpChi

def test_yelpchi_counts_split_features(yelpchi, datasets_dir):
    import scipy.io as sio

    with zipfile.ZipFile(datasets_dir / "yelpchi_rur" / "YelpChi.zip") as z:
        m = sio.loadmat(io.BytesIO(z.read("YelpChi.mat")))
    A, X, y = m["Network"].tocsr(), m["Attributes"].toarray(), m["Label"].ravel()
    ds, g = yelpchi, yelpchi.graph
    et = ("review", "rur", "review")
    assert ds.num_classes == 2 and len(g.nodes["review"]) == 23831
    assert len(g.edges[et][0]) == 98630 and int(ds.labels().sum()) == 1217
    np.testing.assert_array_equal(ds.labels(), y)
    feat = g.node_features["review"]["feat"]
    assert feat.shape == (23831, 32)
    for i in (0, 100, 23830):
        np.testing.assert_array_equal(feat[i], X[i].astype(np.float32))
    split, labels = ds.split(), ds.labels()
    sizes = np.array([(split == c).sum() for c in range(3)])
    assert (split >= 0).all()
    np.testing.assert_allclose(sizes / len(split), [0.4, 0.2, 0.4], atol=0.002)
    for c in range(3):  # stratified: every split has the graph's spam rate
        assert labels[split == c].mean() == pytest.approx(1217 / 23831, abs=0.002)
    again = load_dataset("yelpchi", datasets_dir)
    np.testing.assert_array_equal(again.split(), split)
    other = load_dataset("yelpchi", datasets_dir, seed=1, train_fraction=0.5, val_fraction=0.1,
                         test_fraction=0.4)
    assert (other.split() == 0).sum() == pytest.approx(0.5 * 23831, abs=2)
    seeds = [0, 1, 5000, 23830]
    truth = {s: sorted(A[:, s].nonzero()[0].tolist()) for s in seeds}
    check_local(ds, et, truth, seeds)
    with pytest.raises(ValueError, match="relation"):
        load_dataset("yelpchi", datasets_dir, relation="rtr")  # needs CARE-GNN's full file
    with pytest.raises(ValueError, match="fraction"):
        load_dataset("yelpchi", datasets_dir, train_fraction=0.9, val_fraction=0.2)


# ----------------------------------------------------------------------------- synthetic

def test_synthetic_shape_and_determinism():
    t0 = time.perf_counter()
    ds = generate_recsys(seed=3)
    assert time.perf_counter() - t0 < 5.0
    g = ds.graph
    assert {nt: len(g.nodes[nt]) for nt in ("user", "item", "shop")} == \
        {"user": 5000, "item": 3000, "shop": 100}
    assert set(ds.schema.canonical_etypes) == {
        ("user", "click", "item"), ("user", "buy", "item"), ("item", "belongs", "shop"),
        ("item", "clicked-by", "user"), ("item", "bought-by", "user"), ("shop", "sells", "item")}
    for et in (("user", "click", "item"), ("user", "buy", "item")):
        assert ds.schema.edge_type(et).weighted and (g.edge_weights[et] >= 1).all()
    n_click = len(g.edges[("user", "click", "item")][0])
    assert 80_000 < n_click <= 100_000 * 1.1
    assert g.edge_weights[("user", "click", "item")].sum() == ds.meta["click_events"]
    assert len(g.edges[("item", "belongs", "shop")][0]) == 3000
    for nt in ("user", "item", "shop"):
        assert g.node_features[nt]["feat"].shape == (len(g.nodes[nt]), 32)
    split = ds.split()
    np.testing.assert_array_equal(np.bincount(split), [3000, 1000, 1000])
    # Deterministic per seed, different across seeds.
    same = generate_recsys(seed=3)
    for et in ds.schema.canonical_etypes:
        for a, b in zip(g.edges[et], same.graph.edges[et]):
            np.testing.assert_array_equal(a, b)
    for nt in ("user", "item", "shop"):
        for k, v in g.node_features[nt].items():
            np.testing.assert_array_equal(v, same.graph.node_features[nt][k])
    np.testing.assert_array_equal(g.edge_weights[("user", "buy", "item")],
                                  same.graph.edge_weights[("user", "buy", "item")])
    other = generate_recsys(seed=4)
    assert not np.array_equal(other.graph.node_features["user"]["feat"], g.node_features["user"]["feat"])
    with pytest.raises(ValueError, match="num_shops"):
        generate_recsys(num_shops=3, num_communities=8)
    with pytest.raises(ValueError, match="homophily"):
        generate_recsys(homophily=1.5)


def test_synthetic_communities_are_learnable_from_the_graph_not_the_features(synthetic):
    ds, g = synthetic, synthetic.graph
    labels, split, C = ds.labels(), ds.split(), ds.num_classes
    train, test = split == 0, split == 2
    X = g.node_features["user"]["feat"]
    centroids = np.stack([X[train & (labels == c)].mean(0) for c in range(C)])
    pred = ((X[test][:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)
    feature_acc = float((pred == labels[test]).mean())
    # Majority vote over the communities of each user's clicked items, read through the graph
    # service (full in-neighborhoods of the users along item -clicked-by-> user).
    local = ds.to_local()
    try:
        users = g.nodes["user"][test]
        s = local.sample_neighbors(("item", "clicked-by", "user"), users, -1, strategy="full")
        comm = local.node_features("item", s.neighbors, ["community"])["community"]
    finally:
        local.close()
    owner = np.repeat(np.arange(len(users)), s.counts)
    votes = np.zeros((len(users), C))
    np.add.at(votes, (owner, comm), 1)
    vote_acc = float((votes.argmax(1) == labels[test]).mean())
    assert 1.0 / C + 0.05 < feature_acc < 0.6, feature_acc  # weak but real feature signal
    assert vote_acc > feature_acc + 0.3, (vote_acc, feature_acc)


def test_synthetic_local_graph(synthetic):
    g = synthetic.graph
    et = ("user", "click", "item")
    items = [0, 1, 2999]
    check_local(synthetic, et, in_lists(*g.edges[et], items), items)
    loc = synthetic.to_local()
    try:
        users = np.array([0, 7, 4999])
        u, i = g.edges[et]
        assert neighbor_lists(loc, et, users, direction="out") == \
            [sorted(i[u == x].tolist()) for x in users]
        s = loc.sample_neighbors(et, np.array([0]), -1, strategy="full")
        w = loc.edge_features(et, s.eids)["weight"]
        truth = {int(a): float(b) for a, b in zip(u[i == 0], g.edge_weights[et][i == 0])}
        assert {int(a): float(b) for a, b in zip(s.neighbors, w)} == truth
    finally:
        loc.close()


# ----------------------------------------------------------------------------- store / CLI

def test_store_round_trip(cora, tmp_path):
    path = cora.write_store(tmp_path / "cora", partitions=2)
    meta = json.loads((path / "store.json").read_text())
    assert meta["dataset"]["name"] == "cora" and meta["dataset"]["num_classes"] == 7
    g = graphplat.open_graph(path, read_only=True)
    try:
        assert g.num_nodes("paper") == 2708 and g.num_edges(CITES) == 10556
        ids = np.array([0, 5, 1708, 2707])
        got = g.node_features("paper", ids)
        for k in ("feat", "label", "split"):
            np.testing.assert_array_equal(got[k], cora.graph.node_features["paper"][k][ids])
        src, dst = cora.graph.edges[CITES]
        assert neighbor_lists(g, CITES, ids) == [sorted(src[dst == x].tolist()) for x in ids]
    finally:
        g.close()
    with pytest.raises(FileExistsError):
        cora.write_store(tmp_path / "cora")


def test_cli_run_writes_store(tmp_path, caplog):
    parser = add_arguments(argparse.ArgumentParser())
    out = tmp_path / "synth"
    opts = [f"-o{k}={v}" for k, v in SMALL_SYNTH.items()]
    args = parser.parse_args(["synthetic", "--out", str(out), "-p", "2", *opts])
    with caplog.at_level("INFO"):
        assert run(args) == 0
    assert "dataset synthetic" in caplog.text
    g = graphplat.open_graph(out, read_only=True)
    try:
        assert g.num_nodes("user") == 300
    finally:
        g.close()
    with pytest.raises(FileExistsError):  # exists, no --overwrite
        run(args)
    args = parser.parse_args(["synthetic", "--out", str(out), "--overwrite", *opts])
    assert run(args) == 0
    bad = parser.parse_args(["synthetic", "--out", str(tmp_path / "x"), "-o", "nope=1"])
    with pytest.raises(ValueError, match="nope"):
        run(bad)


# ----------------------------------------------------------------------------- errors / helpers

def test_errors(tmp_path, monkeypatch, datasets_dir):
    known = "known datasets: cora, citeseer, acm, movielens, yelpchi, tolokers, synthetic, planted_fraud"
    with pytest.raises(ValueError, match=known):
        load_dataset("pubmed")
    with pytest.raises(ValueError, match="has no option 'labels'"):
        load_dataset("acm", datasets_dir, labels=20)
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="nowhere.*does not exist"):
        load_dataset("cora", missing)
    with pytest.raises(FileNotFoundError, match=r"ind\.cora\.x"):
        load_dataset("cora", missing)
    # An existing but empty datasets directory: the message names the expected files and
    # where it looked.
    with pytest.raises(FileNotFoundError, match=r"p_feat\.npz.*acm_heco"):
        load_dataset("acm", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"YelpChi\.zip"):
        load_dataset("yelpchi", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"ml-100k\.zip"):
        load_dataset("movielens", tmp_path)
    # The datasets directory is pointed at the dataset's own folder: that works too.
    assert load_dataset("cora", datasets_dir / "cora").graph.num_nodes == 2708
    # find_data_dir: explicit > $GRAPHPLAT_DATASETS > ../shared/datasets.
    monkeypatch.setenv("GRAPHPLAT_DATASETS", str(tmp_path))
    assert find_data_dir() == tmp_path
    assert find_data_dir(datasets_dir) == datasets_dir
    assert set(DATASETS) == {"cora", "citeseer", "acm", "movielens", "yelpchi", "tolokers", "synthetic",
                             "planted_fraud"}
    assert dataset_options("acm") == {"labels_per_class": 20}


def test_stratified_split_helper():
    labels = np.repeat([0, 1, 2, -1], [100, 10, 7, 5])
    a = stratified_split(labels, (0.6, 0.2, 0.2), seed=1)
    assert (a[labels == -1] == -1).all()
    assert [int(((a == 0) & (labels == c)).sum()) for c in range(3)] == [60, 6, 4]
    assert [int(((a == 2) & (labels == c)).sum()) for c in range(3)] == [20, 2, 1]  # cumulative cuts
    np.testing.assert_array_equal(a, stratified_split(labels, (0.6, 0.2, 0.2), seed=1))
    assert not np.array_equal(a, stratified_split(labels, (0.6, 0.2, 0.2), seed=2))
    part = stratified_split(labels, (0.5, 0.0, 0.0), seed=0)
    assert (part[labels == 0] == 0).sum() == 50 and (part[labels == 0] == -1).sum() == 50


def test_summaries(cora, acm, movielens, yelpchi, synthetic):
    for ds in (cora, acm, movielens, yelpchi, synthetic):
        text = ds.summary()
        assert text.startswith(f"dataset {ds.name}:")
        for et in ds.schema.edge_types:
            assert et.canonical_str in text
        assert ds.reference.get("source")
        assert ds.description
    assert "split train 140, val 500, test 1,000" in cora.summary()
