"""Every PartitionBackend (in-memory PartitionGraph, DurablePartition over a RocksDB store,
PartitionClient to a real ``graphplat serve`` on 127.0.0.1) implements the whole protocol
with the protocol's signatures, and gives the same answers to the same calls; LocalGraph and
RemoteGraph (the GraphServices over them) have the same public surface."""
from __future__ import annotations

import inspect

import numpy as np
import pytest

from graphplat.schema import GraphSchema
from graphplat.service import EID_PARTITION_SHIFT
from graphplat.storage.backend import CAPABILITIES, PartitionBackend, protocol_methods
from graphplat.storage.client import PartitionClient
from graphplat.storage.durable import DurablePartition
from graphplat.storage.local import LocalGraph, open_graph
from graphplat.storage.partition_book import PartitionBook
from graphplat.storage.partition_data import split_into_partitions
from graphplat.storage.partition_graph import PartitionGraph
from graphplat.storage.remote import RemoteGraph
from graphplat.storage.store import create_store
from graphplat.testing.servers import Fleet

SCHEMA = GraphSchema.from_yaml("""
node_types:
  user: {features: {age: int64, emb: "float32[4]"}}
edge_types:
  - {src: user, relation: follows, dst: user, weighted: true, out_adjacency: true, features: {ts: int64}}
""")
FOLLOWS = ("user", "follows", "user")
BOOK = PartitionBook(1)
RNG = np.random.default_rng(7)
USERS = RNG.choice(2**40, 60, replace=False)
_pairs = np.unique(np.stack([USERS[RNG.integers(0, 60, 300)], USERS[RNG.integers(0, 60, 300)]], 1), axis=0)
SRC, DST = _pairs[:, 0], _pairs[:, 1]
AGE = RNG.integers(0, 90, 60)
EMB = RNG.random((60, 4), dtype=np.float32)
WEIGHT = RNG.random(len(SRC)).astype(np.float32)
TS = RNG.integers(0, 10**9, len(SRC))


def parts():
    """The graph as one partition."""
    return split_into_partitions(SCHEMA, BOOK, {"user": USERS}, {"user": {"age": AGE, "emb": EMB}},
                                 {FOLLOWS: (SRC, DST)}, {FOLLOWS: WEIGHT}, {FOLLOWS: {"ts": TS}})


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    fleet = Fleet(tmp_path_factory.mktemp("logs"))
    yield fleet
    fleet.close()


@pytest.fixture(scope="module", params=["partition_graph", "durable", "grpc"])
def backend(request, tmp_path_factory):
    """Partition 0 of the graph behind each implementation (each over its own copy)."""
    if request.param == "partition_graph":
        yield PartitionGraph(parts()[0])
        return
    store = create_store(tmp_path_factory.mktemp(request.param) / "store", parts(), BOOK)
    if request.param == "durable":
        b = DurablePartition(store, 0)
        yield b
        b.close()
        return
    server = request.getfixturevalue("fleet").start(store, 0).wait_ready(30)
    client = PartitionClient([server.address], 0, deadline_s=20)
    yield client
    client.close()


@pytest.fixture(scope="module")
def ref():
    """An in-memory reference the answers are compared with (never written to)."""
    return PartitionGraph(parts()[0])


def test_implements_every_method_with_the_protocol_signature(backend):
    assert isinstance(backend, PartitionBackend)
    assert isinstance(backend.capabilities, frozenset) and backend.capabilities <= CAPABILITIES
    for name in protocol_methods():
        want = inspect.signature(getattr(PartitionBackend, name)).parameters
        got = inspect.signature(getattr(type(backend), name)).parameters
        for pname, p in want.items():
            assert pname in got, f"{type(backend).__name__}.{name} lacks parameter {pname!r}"
            assert got[pname].kind == p.kind, f"{type(backend).__name__}.{name}({pname}): {got[pname].kind}"
            assert got[pname].default == p.default, f"{type(backend).__name__}.{name}({pname}) default"
        extra = [q for q in got if q not in want and got[q].default is inspect.Parameter.empty]
        assert not extra, f"{type(backend).__name__}.{name} requires extra parameters {extra}"


def test_capabilities_are_what_each_backend_does(backend):
    dedupes = "dedupes_writes" in backend.capabilities
    assert dedupes == (not isinstance(backend, PartitionGraph))
    assert ("durable" in backend.capabilities) == dedupes
    assert (backend.max_rows_per_call(16) is None) == (not isinstance(backend, PartitionClient))


def test_reads_give_the_same_answers(backend, ref):
    seeds = USERS[[3, 0, 17, 3, 59]]
    assert backend.num_nodes("user") == ref.num_nodes("user") == len(USERS)
    assert backend.num_edges(FOLLOWS) == ref.num_edges(FOLLOWS) == len(SRC)
    np.testing.assert_array_equal(np.sort(backend.node_ids("user")), np.sort(USERS))
    for direction in ("in", "out"):
        for positions in (None, np.array([9, 2, 4, 1, 0])):
            got = backend.sample_neighbors(FOLLOWS, seeds, 3, direction=direction, seed=5, hop=1,
                                           positions=positions)
            want = ref.sample_neighbors(FOLLOWS, seeds, 3, direction=direction, seed=5, hop=1,
                                        positions=positions)
            for field in ("counts", "neighbors", "eids"):
                np.testing.assert_array_equal(getattr(got, field), getattr(want, field))
        np.testing.assert_array_equal(backend.degrees(FOLLOWS, seeds, direction),
                                      ref.degrees(FOLLOWS, seeds, direction))
    feats = backend.node_features("user", seeds)
    assert sorted(feats) == ["age", "emb"]
    rows = [int(np.flatnonzero(USERS == s)[0]) for s in seeds]
    np.testing.assert_array_equal(feats["age"], AGE[rows])
    np.testing.assert_array_equal(feats["emb"], EMB[rows])
    half = backend.node_features("user", seeds, ["emb"], wire_dtype="float16")
    np.testing.assert_array_equal(half["emb"], ref.node_features("user", seeds, ["emb"], wire_dtype="float16")["emb"])
    eids = (np.int64(0) << EID_PARTITION_SHIFT) | np.array([0, 5, 2], np.int64)
    got, want = backend.edge_features(FOLLOWS, eids), ref.edge_features(FOLLOWS, eids)
    assert sorted(got) == sorted(want) == ["ts", "weight"]
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])
    np.testing.assert_array_equal(backend.lookup("user", np.array([USERS[4], 12345])), [True, False])
    np.testing.assert_array_equal(backend.has_edges(FOLLOWS, np.array([SRC[0], DST[0]]), np.array([DST[0], DST[0]])),
                                  ref.has_edges(FOLLOWS, np.array([SRC[0], DST[0]]), np.array([DST[0], DST[0]])))
    with pytest.raises(Exception, match="not in partition|IndexError|12345"):
        backend.degrees(FOLLOWS, np.array([12345]))


def test_a_write_then_a_read(backend):
    new = np.array([2**41 + 1, 2**41 + 2], dtype=np.int64)
    backend.add_nodes("user", new, {"age": np.array([30, 40])})
    np.testing.assert_array_equal(backend.lookup("user", new), [True, True])
    before = backend.num_edges(FOLLOWS)
    dedupes = "dedupes_writes" in backend.capabilities
    kw = {"request_id": "w1:in"} if dedupes else {}
    eids = backend.add_edges_in(FOLLOWS, new, new[::-1], np.array([0.5, 0.25], np.float32), **kw)
    np.testing.assert_array_equal(eids, [before, before + 1])
    backend.add_edges_out(FOLLOWS, new, new[::-1], eids, np.array([0.5, 0.25], np.float32),
                          **({"request_id": "w1:out"} if dedupes else {}))
    if dedupes:  # the same request id again: applied once, same edge ids
        np.testing.assert_array_equal(backend.add_edges_in(FOLLOWS, new, new[::-1],
                                                           np.array([0.5, 0.25], np.float32), **kw), eids)
    assert backend.num_edges(FOLLOWS) == before + 2
    np.testing.assert_array_equal(backend.has_edges(FOLLOWS, new, new[::-1]), [True, True])
    np.testing.assert_array_equal(backend.degrees(FOLLOWS, new, "out"), [1, 1])
    np.testing.assert_array_equal(backend.edge_features(FOLLOWS, eids, ["weight"])["weight"], [0.5, 0.25])
    backend.update_features("user", new[:1], {"emb": np.ones((1, 4), np.float32)})
    feats = backend.node_features("user", new)
    np.testing.assert_array_equal(feats["age"], [30, 40])
    np.testing.assert_array_equal(feats["emb"], [[1] * 4, [0] * 4])


def _surface(cls) -> dict:
    """Public name -> signature (methods, properties) of ``cls``, constructors left out:
    LocalGraph.open/from_partitions and graphplat.connect build the two differently."""
    out = {}
    for name, value in inspect.getmembers(cls):
        raw = inspect.getattr_static(cls, name)
        if name.startswith("_") or isinstance(raw, (classmethod, staticmethod)):
            continue
        out[name] = str(inspect.signature(value)) if callable(value) else type(raw).__name__
    return out


def test_local_and_remote_graph_have_the_same_public_surface():
    local, remote = _surface(LocalGraph), _surface(RemoteGraph)
    assert {"has_edges", "sample_multihop", "compact", "info", "close"} <= set(local)
    assert local == remote


def test_local_info_and_compact_answer_like_remote(tmp_path):
    g = open_graph(create_store(tmp_path / "store", parts(), BOOK))
    try:
        info, = g.info()
        assert (info.partition, info.num_partitions, info.role, info.writable) == (0, 1, "primary", True)
        assert {c.key: c.value for c in info.num_nodes} == {"user": len(USERS)}
        assert {c.key: c.value for c in info.num_edges} == {"user:follows:user": len(SRC)}
        g.add_nodes("user", [2**41])
        seq, = g.compact()
        assert seq > info.applied_seq and g.info()[0].applied_seq == seq
    finally:
        g.close()
    assert LocalGraph.from_partitions(BOOK, parts()).compact() == [-1]  # in memory: no log
