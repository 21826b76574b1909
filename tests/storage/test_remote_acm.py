"""The GraphService parity suite on a real heterogeneous graph: ACM (HeCo's version, from the
datasets directory; see the ``datasets_dir`` fixture).

ACM is ingested with the ingest API into a 2-partition store (hash partitioning, so many
edges cross partitions) with every edge direction stored:

* ``paper -written_by-> author`` and ``author -writes-> paper`` (both from pa.txt),
* ``paper -about-> subject`` and ``subject -has-> paper`` (both from ps.txt),

all with ``out_adjacency: true``; papers carry p_feat.npz (dense float32) and labels.npy, authors
a_feat.npz. Three GraphServices over that one store answer the same test functions:

* ``local``: LocalGraph opened read-only (the servers own the writer lock);
* ``remote``: RemoteGraph over 2 partitions x (primary + read replica), primaries first;
* ``remote-replica``: a RemoteGraph over the same servers with the replicas listed first,
  so the read replicas answer.

Every answer must equal the local graph's exactly (edge ids and feature values included) and
agree with the dataset files: counts, every sampled / walked edge, degrees, features, labels,
negatives, and full 2-hop frontiers.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import graphplat  # noqa: E402
from graphplat.service import EID_PARTITION_SHIFT, NeighborSample  # noqa: E402
from graphplat.storage.ingest import ingest  # noqa: E402
from graphplat.storage.remote import RemoteGraph  # noqa: E402
from graphplat.testing.parity import assert_same, outcome, same_outcome
from graphplat.testing.servers import Fleet, cluster_dict

WRITTEN_BY = ("paper", "written_by", "author")
WRITES = ("author", "writes", "paper")
ABOUT = ("paper", "about", "subject")
HAS = ("subject", "has", "paper")
ETYPES = (WRITTEN_BY, WRITES, ABOUT, HAS)
P = 2
SEED = 20240611
# What HeCo's ACM is documented to hold; the tests take their truth from the files and only
# test_dataset_files compares the files with these numbers.
EXPECTED = {"paper": 4019, "author": 7167, "subject": 60, "pa": 13407, "ps": 4019}


# ----------------------------------------------------------------------------- truth from the files

class ACM:
    """The dataset files as arrays (the ground truth every answer is checked against)."""

    def __init__(self, root: Path):
        import scipy.sparse as sp

        if not root.is_dir():
            raise FileNotFoundError(f"{root} is missing from the datasets directory")
        self.root = root
        self.labels_raw = np.load(root / "labels.npy")
        self.labels = self.labels_raw.astype(np.int64)
        self.p_feat_sparse = sp.load_npz(root / "p_feat.npz")
        self.p_feat = self.p_feat_sparse.toarray().astype(np.float32)
        self.a_feat = sp.load_npz(root / "a_feat.npz").toarray().astype(np.float32)
        self.pa = np.loadtxt(root / "pa.txt", dtype=np.int64, delimiter="\t").reshape(-1, 2)
        self.ps = np.loadtxt(root / "ps.txt", dtype=np.int64, delimiter="\t").reshape(-1, 2)
        self.papers = np.arange(len(self.labels), dtype=np.int64)
        self.authors = np.unique(self.pa[:, 1])
        self.subjects = np.unique(self.ps[:, 1])
        self.ids = {"paper": self.papers, "author": self.authors, "subject": self.subjects}
        # canonical (src, dst) of each edge type, in file order
        self.edges = {WRITTEN_BY: (self.pa[:, 0], self.pa[:, 1]), WRITES: (self.pa[:, 1], self.pa[:, 0]),
                      ABOUT: (self.ps[:, 0], self.ps[:, 1]), HAS: (self.ps[:, 1], self.ps[:, 0])}
        self._codes = {et: np.sort(self.code(et, *self.edges[et])) for et in ETYPES}

    def code(self, et, src, dst) -> np.ndarray:
        """One int64 per (src, dst) pair of ``et`` (ids are small and non-negative)."""
        n_dst = len(self.ids[et[2]]) + 1
        return np.asarray(src, np.int64) * n_dst + np.asarray(dst, np.int64)

    def is_edge(self, et, src, dst) -> np.ndarray:
        codes, c = self._codes[et], self.code(et, src, dst)
        pos = np.minimum(np.searchsorted(codes, c), max(len(codes) - 1, 0))
        return (codes[pos] == c) if len(codes) else np.zeros(len(c), bool)

    def degree(self, et, ids, direction) -> np.ndarray:
        src, dst = self.edges[et]
        ends = src if direction == "out" else dst
        n = len(self.ids[et[0] if direction == "out" else et[2]])
        return np.bincount(ends, minlength=n)[ids]

    def adjacency(self, et):
        """scipy CSR src x dst of ``et``."""
        import scipy.sparse as sp

        src, dst = self.edges[et]
        return sp.csr_matrix((np.ones(len(src), np.int8), (src, dst)),
                             shape=(len(self.ids[et[0]]), len(self.ids[et[2]])))


def endpoints(et, direction, seeds, s: NeighborSample):
    """Canonical (src, dst) of every sampled edge."""
    own = np.repeat(np.asarray(seeds, np.int64), s.counts)
    return (own, s.neighbors) if direction == "out" else (s.neighbors, own)


class EidIndex:
    """(src, dst) -> edge id of one edge type, from a full sample of every edge."""

    def __init__(self, acm: ACM, et, src, dst, eids):
        self.acm, self.et = acm, et
        codes = acm.code(et, src, dst)
        order = np.argsort(codes)
        self.codes, self.eids = codes[order], np.asarray(eids)[order]

    def __call__(self, src, dst) -> np.ndarray:
        c = self.acm.code(self.et, src, dst)
        pos = np.searchsorted(self.codes, c)
        assert (pos < len(self.codes)).all() and (self.codes[np.minimum(pos, len(self.codes) - 1)] == c).all()
        return self.eids[pos]


# ----------------------------------------------------------------------------- comparison (as test_remote)

def check(g, ref, fn, where=""):
    """fn(g) must equal fn(ref) (same value, or same exception type and message); returns
    fn(g)'s value, failing if it raised."""
    got = same_outcome(g, ref, fn, where)
    if got[0] == "error":
        pytest.fail(f"{where}: both raised {got[1].__name__}: {got[2]}")
    return got[1]


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def acm(datasets_dir) -> ACM:
    return ACM(datasets_dir / "acm_heco")


@pytest.fixture(scope="module")
def acm_store(acm, tmp_path_factory) -> Path:
    """ACM ingested into a 2-partition store (NPY inputs written to a temporary directory)."""
    tmp = tmp_path_factory.mktemp("acm")
    inputs = tmp / "inputs"
    for ntype, feats in [("paper", {"feat": acm.p_feat, "label": acm.labels_raw}),  # float64 labels
                         ("author", {"feat": acm.a_feat})]:
        d = inputs / ntype
        d.mkdir(parents=True)
        np.save(d / "ids.npy", np.arange(len(feats["feat"]), dtype=np.int64))
        for name, arr in feats.items():
            np.save(d / f"{name}.npy", arr)
    for et in ETYPES:
        d = inputs / et[1]
        d.mkdir()
        src, dst = acm.edges[et]
        np.save(d / "src.npy", np.ascontiguousarray(src))
        np.save(d / "dst.npy", np.ascontiguousarray(dst))
    schema = {
        "node_types": {"paper": {"features": {"feat": f"float32[{acm.p_feat.shape[1]}]", "label": "int64"}},
                       "author": {"features": {"feat": f"float32[{acm.a_feat.shape[1]}]"}},
                       "subject": {}},
        "edge_types": [{"src": s, "relation": r, "dst": d, "out_adjacency": True} for s, r, d in ETYPES],
    }
    spec = {"schema": schema,
            "nodes": {"paper": "paper", "author": "author", "subject": {"from_edges": True}},
            "edges": {et[1]: et[1] for et in ETYPES}}
    return ingest(spec, tmp / "store", partitions=P, base_dir=inputs)


@pytest.fixture(scope="module")
def fleet(acm_store, tmp_path_factory):
    """Partitions 0 and 1, each a primary plus a read replica; always terminated."""
    fleet = Fleet(tmp_path_factory.mktemp("acm-logs"))
    try:
        fleet.start_replicated(acm_store, 2, timeout=60)
        yield fleet
    finally:
        fleet.close()


@pytest.fixture(scope="module")
def local(acm_store):
    graph = graphplat.open_graph(acm_store, read_only=True)
    yield graph
    graph.close()


@pytest.fixture(scope="module")
def remote(fleet):
    graph = graphplat.connect(cluster_dict(fleet.layout, deadline_s=30))
    graph.reads_from = "primary"
    yield graph
    graph.close()


@pytest.fixture(scope="module")
def remote_replica(fleet, acm_store):
    """Replicas listed first: reads go to the read replicas."""
    graph = graphplat.connect(cluster_dict([[r, p] for p, r in fleet.layout], deadline_s=30,
                                           store=str(acm_store)))
    graph.reads_from = "replica"
    yield graph
    graph.close()


@pytest.fixture(params=["local", "remote", "remote-replica"])
def g(request):
    return request.getfixturevalue(request.param.replace("-", "_"))


@pytest.fixture
def ref(local):
    return local


@pytest.fixture(scope="module")
def eid_index(acm, local):
    """Edge ids of every edge of the files, per edge type (from a full in-sample of the
    local graph, which must hold exactly the files' edges)."""
    out = {}
    for et in ETYPES:
        dsts = local.node_ids(et[2])
        full = local.sample_neighbors(et, dsts, -1, strategy="full")
        src, dst = endpoints(et, "in", dsts, full)
        assert len(src) == len(acm.edges[et][0]) and acm.is_edge(et, src, dst).all()
        out[et] = EidIndex(acm, et, src, dst, full.eids)
    return out


def check_sample(acm, eid_index, et, direction, seeds, s: NeighborSample, *, fanout, replace, full=False):
    """Every sampled edge is an edge of the files with its own edge id; counts as promised."""
    deg = acm.degree(et, seeds, direction)
    if full:
        np.testing.assert_array_equal(s.counts, deg)
    elif replace:
        np.testing.assert_array_equal(s.counts, np.where(deg > 0, fanout, 0))
    else:
        np.testing.assert_array_equal(s.counts, np.minimum(deg, fanout))
    src, dst = endpoints(et, direction, seeds, s)
    ok = acm.is_edge(et, src, dst)
    assert ok.all(), f"{et} {direction}: not edges of the files: {list(zip(src[~ok][:5], dst[~ok][:5]))}"
    np.testing.assert_array_equal(s.eids, eid_index[et](src, dst), err_msg=f"{et} {direction}: eids")
    if not replace:  # no edge twice for one seed
        owner = np.repeat(np.arange(len(seeds)), s.counts)
        assert len(np.unique(np.stack([owner, s.eids], 1), axis=0)) == len(s.eids)


# ----------------------------------------------------------------------------- tests

def test_dataset_files(acm):
    """The files hold HeCo's ACM: the sizes every other test takes from the files."""
    assert len(acm.papers) == EXPECTED["paper"] and acm.p_feat.shape == (EXPECTED["paper"], 1902)
    assert len(acm.authors) == EXPECTED["author"] and acm.a_feat.shape == (EXPECTED["author"], 1902)
    assert len(acm.subjects) == EXPECTED["subject"]
    assert len(acm.pa) == EXPECTED["pa"] and len(acm.ps) == EXPECTED["ps"]
    # ids are 0..n-1 and every edge is distinct (so (src, dst) names one edge)
    for ids in acm.ids.values():
        np.testing.assert_array_equal(ids, np.arange(len(ids)))
    assert acm.pa[:, 0].max() < len(acm.papers) and acm.ps[:, 0].max() < len(acm.papers)
    for arr in (acm.pa, acm.ps):
        assert len(np.unique(arr, axis=0)) == len(arr)
    # the membership test the other tests rely on tells edges from non-edges
    src, dst = acm.edges[WRITTEN_BY]
    assert acm.is_edge(WRITTEN_BY, src, dst).all() and acm.is_edge(WRITES, dst, src).all()
    assert not acm.is_edge(WRITTEN_BY, src, (dst + 1) % len(acm.authors)).all()
    assert acm.is_edge(WRITTEN_BY, src, (dst + 1) % len(acm.authors)).mean() < 0.1
    assert set(np.unique(acm.labels_raw).tolist()) == {0.0, 1.0, 2.0}


def test_counts_and_ids(g, ref, acm):
    for nt, ids in acm.ids.items():
        assert check(g, ref, lambda x: x.num_nodes(nt), nt) == len(ids)
        got = check(g, ref, lambda x: x.node_ids(nt), nt)
        np.testing.assert_array_equal(np.sort(got), ids)
        probe = np.concatenate([ids[::97], [len(ids), -1, 10**12]])
        np.testing.assert_array_equal(check(g, ref, lambda x: x.lookup(nt, probe), nt),
                                      np.arange(len(probe)) < len(ids[::97]))
    for et in ETYPES:
        assert check(g, ref, lambda x: x.num_edges(et), str(et)) == len(acm.edges[et][0])
        assert check(g, ref, lambda x: x.num_edges(et[1]), et[1]) == len(acm.edges[et][0])
    assert g.schema == ref.schema and g.book.num_partitions == P
    if isinstance(g, RemoteGraph):  # the servers we meant to read from answer
        assert [c.info().role for c in g.clients] == [g.reads_from] * P
        assert [c.info().partition for c in g.clients] == list(range(P))


def test_full_neighborhoods_and_edge_ids(g, ref, acm, eid_index):
    """Full samples from either end hold every edge of the files once, with the same edge id;
    an edge id names its owner partition (the destination's) and a dense per-partition index."""
    for et in ETYPES:
        triples = []
        for direction, end in (("in", 2), ("out", 0)):
            ids = np.random.default_rng(SEED).permutation(acm.ids[et[end]])
            s = check(g, ref, lambda x: x.sample_neighbors(et, ids, -1, strategy="full", direction=direction),
                      f"{et} {direction}")
            check_sample(acm, eid_index, et, direction, ids, s, fanout=-1, replace=False, full=True)
            src, dst = endpoints(et, direction, ids, s)
            order = np.lexsort((dst, src))
            triples.append(np.stack([src[order], dst[order], s.eids[order]], 1))
        np.testing.assert_array_equal(triples[0], triples[1], err_msg=f"{et}: in vs out")
        src, dst, eids = triples[0].T
        assert len(np.unique(eids)) == len(eids)
        owner = eids >> EID_PARTITION_SHIFT
        np.testing.assert_array_equal(owner, g.book.partition_of(et[2], dst))
        for p in range(P):
            index = eids[owner == p] & ((1 << EID_PARTITION_SHIFT) - 1)
            np.testing.assert_array_equal(np.sort(index), np.arange(len(index)), err_msg=f"{et} p{p}")
        assert 0 < (owner == 0).sum() < len(owner)  # both partitions own edges of the type


@pytest.mark.parametrize("replace", [False, True])
def test_sample_all_papers_along_pa(g, ref, acm, eid_index, replace):
    """All 4019 papers (shuffled, a few twice) as seeds, P-A in both directions of both edge
    types; uniform with a seed: identical local vs remote, every edge from pa.txt."""
    rng = np.random.default_rng(SEED)
    papers = np.concatenate([rng.permutation(acm.papers), acm.papers[:5]])
    authors = rng.permutation(acm.authors)
    cases = [(WRITTEN_BY, "out", papers), (WRITES, "in", papers),
             (WRITTEN_BY, "in", authors), (WRITES, "out", authors)]
    for et, direction, seeds in cases:
        for fanout, seed, hop in ((2, 0, 0), (5, 7, 1)):
            where = f"{et} {direction} fanout={fanout} seed={seed} replace={replace}"
            s = check(g, ref, lambda x: x.sample_neighbors(et, seeds, fanout, replace=replace,
                                                           direction=direction, seed=seed, hop=hop), where)
            check_sample(acm, eid_index, et, direction, seeds, s, fanout=fanout, replace=replace)
        # another seed gives another sample; the same seed the same one
        a = g.sample_neighbors(et, seeds, 2, replace=replace, direction=direction, seed=1)
        b = g.sample_neighbors(et, seeds, 2, replace=replace, direction=direction, seed=2)
        assert not np.array_equal(a.eids, b.eids)
        assert_same(a, g.sample_neighbors(et, seeds, 2, replace=replace, direction=direction, seed=1))
    # the split of a batch does not matter: the second half with its original positions
    half = len(papers) // 2
    whole = g.sample_neighbors(WRITTEN_BY, papers, 3, replace=replace, direction="out", seed=4)
    part = check(g, ref, lambda x: x.sample_neighbors(WRITTEN_BY, papers[half:], 3, replace=replace,
                                                      direction="out", seed=4,
                                                      positions=np.arange(half, len(papers))))
    cut = int(whole.counts[:half].sum())
    assert_same(NeighborSample(whole.counts[half:], whole.neighbors[cut:], whole.eids[cut:]), part)


def test_sample_along_ps(g, ref, acm, eid_index):
    rng = np.random.default_rng(SEED + 1)
    papers, subjects = rng.permutation(acm.papers), rng.permutation(acm.subjects)
    for et, direction, seeds in [(ABOUT, "out", papers), (HAS, "in", papers),
                                 (ABOUT, "in", subjects), (HAS, "out", subjects)]:
        for replace in (False, True):
            s = check(g, ref, lambda x: x.sample_neighbors(et, seeds, 10, replace=replace,
                                                           direction=direction, seed=3),
                      f"{et} {direction} replace={replace}")
            check_sample(acm, eid_index, et, direction, seeds, s, fanout=10, replace=replace)


def test_features_and_labels(g, ref, acm):
    rng = np.random.default_rng(SEED + 2)
    papers = rng.integers(0, len(acm.papers), 700)  # random order, with repeats
    f = check(g, ref, lambda x: x.node_features("paper", papers))
    assert list(f) == ["feat", "label"]
    assert f["feat"].dtype == np.float32 and f["feat"].shape == (len(papers), acm.p_feat.shape[1])
    np.testing.assert_array_equal(f["feat"], acm.p_feat_sparse[papers].toarray().astype(np.float32))
    assert f["label"].dtype == np.int64
    np.testing.assert_array_equal(f["label"], acm.labels[papers])
    every = check(g, ref, lambda x: x.node_features("paper", acm.papers, ["label"]))
    np.testing.assert_array_equal(every["label"], acm.labels_raw.astype(np.int64))
    authors = rng.integers(0, len(acm.authors), 300)
    fa = check(g, ref, lambda x: x.node_features("author", authors))
    np.testing.assert_array_equal(fa["feat"], acm.a_feat[authors])
    assert check(g, ref, lambda x: x.node_features("subject", acm.subjects[:5])) == {}
    check(g, ref, lambda x: x.node_features("paper", papers[:0], ["feat"]))


def test_degrees(g, ref, acm):
    """In- and out-degrees of every node (in shuffled order) are np.bincount of the files."""
    rng = np.random.default_rng(SEED + 3)
    pa, ps = acm.pa, acm.ps
    n = {nt: len(ids) for nt, ids in acm.ids.items()}
    cases = [(WRITTEN_BY, "out", "paper", pa[:, 0]), (WRITTEN_BY, "in", "author", pa[:, 1]),
             (WRITES, "out", "author", pa[:, 1]), (WRITES, "in", "paper", pa[:, 0]),
             (ABOUT, "out", "paper", ps[:, 0]), (ABOUT, "in", "subject", ps[:, 1]),
             (HAS, "out", "subject", ps[:, 1]), (HAS, "in", "paper", ps[:, 0])]
    for et, direction, nt, column in cases:
        ids = rng.permutation(acm.ids[nt])
        got = check(g, ref, lambda x: x.degrees(et, ids, direction), f"{et} {direction}")
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, np.bincount(column, minlength=n[nt])[ids],
                                      err_msg=f"{et} {direction}")


def test_negative_sampling(g, ref, acm):
    rng = np.random.default_rng(SEED + 4)
    papers = rng.choice(acm.papers, 800, replace=False)
    authors = rng.choice(acm.authors, 300, replace=False)
    for et, src in ((WRITTEN_BY, papers), (WRITES, authors)):
        for strategy in ("uniform", "degree"):
            s, d = check(g, ref, lambda x: x.negative_sample(et, src, 5, strategy=strategy, seed=9),
                         f"{et} {strategy}")
            assert len(s) == len(d) == 5 * len(src)
            np.testing.assert_array_equal(s, np.repeat(src, 5))
            assert not acm.is_edge(et, s, d).any(), f"{et} {strategy}: a true pair among the negatives"
            assert np.isin(d, acm.ids[et[2]]).all()
    # without exclusion some true pairs are drawn by a degree-biased sampler; with it, none
    s, d = check(g, ref, lambda x: x.negative_sample(WRITTEN_BY, papers, 50, strategy="degree",
                                                     exclude_existing=False, seed=1))
    assert acm.is_edge(WRITTEN_BY, s, d).any()


@pytest.mark.parametrize("name, metapath", [
    ("PAP", [WRITTEN_BY, WRITES]),
    ("PSP", [ABOUT, HAS]),
    ("PAPSPAP", [WRITTEN_BY, WRITES, ABOUT, HAS, WRITTEN_BY, WRITES]),
    ("APA", [WRITES, WRITTEN_BY]),
])
def test_metapath_walks(g, ref, acm, name, metapath):
    start_type = metapath[0][0]
    starts = np.random.default_rng(SEED + 5).permutation(acm.ids[start_type])
    walks = check(g, ref, lambda x: x.random_walk(metapath, starts, seed=11), name)
    assert walks.dtype == np.int64 and walks.shape == (len(starts), len(metapath) + 1)
    np.testing.assert_array_equal(walks[:, 0], starts)
    assert (walks >= 0).all(), "ACM has no dead ends along these metapaths"
    for step, et in enumerate(metapath):
        ok = acm.is_edge(et, walks[:, step], walks[:, step + 1])
        assert ok.all(), f"{name} step {step}: {walks[~ok][:3]}"
    again = g.random_walk(metapath, starts, seed=11)
    assert_same(walks, again)
    other = g.random_walk(metapath, starts, seed=12)
    assert not np.array_equal(walks, other)
    # the batch split does not matter: walks of a subset are rows of the whole
    sub = check(g, ref, lambda x: x.random_walk(metapath, starts[:100], seed=11))
    assert_same(walks[:100], sub)


def two_hop(x, papers, *, fanout, direction, strategy="uniform", seed=0):
    """papers -> {authors, subjects} -> papers, through sample_neighbors only."""
    if direction == "in":  # message passing: seeds are destinations
        first = {"author": WRITES, "subject": HAS}
        second = {"author": WRITTEN_BY, "subject": ABOUT}
    else:
        first = {"author": WRITTEN_BY, "subject": ABOUT}
        second = {"author": WRITES, "subject": HAS}
    hop0 = {nt: x.sample_neighbors(et, papers, fanout, strategy=strategy, direction=direction,
                                   seed=seed, hop=0) for nt, et in first.items()}
    frontier1 = {nt: np.unique(s.neighbors) for nt, s in hop0.items()}
    hop1 = {nt: x.sample_neighbors(second[nt], frontier1[nt], fanout, strategy=strategy,
                                   direction=direction, seed=seed, hop=1) for nt in second}
    frontier2 = np.unique(np.concatenate([s.neighbors for s in hop1.values()]))
    return {"hop0": hop0, "frontier1": frontier1, "hop1": hop1, "frontier2": frontier2}


@pytest.mark.parametrize("direction", ["in", "out"])
def test_two_hop_frontier(g, ref, acm, eid_index, direction):
    papers = np.random.default_rng(SEED + 6).choice(acm.papers, 256, replace=False)
    first = {"author": WRITES, "subject": HAS} if direction == "in" else {"author": WRITTEN_BY, "subject": ABOUT}
    second = {"author": WRITTEN_BY, "subject": ABOUT} if direction == "in" else {"author": WRITES, "subject": HAS}
    # sampled: identical frontiers local vs remote, every edge real
    got = check(g, ref, lambda x: two_hop(x, papers, fanout=3, direction=direction, seed=5))
    for nt in ("author", "subject"):
        check_sample(acm, eid_index, first[nt], direction, papers, got["hop0"][nt], fanout=3, replace=False)
        check_sample(acm, eid_index, second[nt], direction, got["frontier1"][nt], got["hop1"][nt],
                     fanout=3, replace=False)
    # full: exactly the 2-hop neighborhoods of the files (P-A-P and P-S-P)
    full = check(g, ref, lambda x: two_hop(x, papers, fanout=-1, direction=direction, strategy="full"))
    pa, ps = acm.adjacency(WRITTEN_BY), acm.adjacency(ABOUT)
    np.testing.assert_array_equal(full["frontier1"]["author"], np.unique(pa[papers].indices))
    np.testing.assert_array_equal(full["frontier1"]["subject"], np.unique(ps[papers].indices))
    reach = ((pa[papers] @ pa.T) + (ps[papers] @ ps.T)).tocsr()
    np.testing.assert_array_equal(full["frontier2"], np.unique(reach.indices))
    assert set(got["frontier2"].tolist()) <= set(full["frontier2"].tolist())


def test_errors_are_the_same(g, ref, acm):
    n = len(acm.papers)
    for fn in [lambda x: x.sample_neighbors(WRITTEN_BY, [0, n], 2, direction="out"),
               lambda x: x.sample_neighbors(WRITES, [3, -4], 2),
               lambda x: x.node_features("paper", [n + 5]),
               lambda x: x.node_features("author", [0], ["label"]),
               lambda x: x.degrees(WRITES, [len(acm.authors)], "out"),
               lambda x: x.random_walk([WRITTEN_BY, ABOUT], [0])]:
        want, got = outcome(fn, ref), outcome(fn, g)
        assert want[0] == "error" and got == want, (want, got)
