"""RemoteGraph over real ``graphplat serve`` subprocesses (127.0.0.1, free ports, RocksDB
stores under tmp_path), against LocalGraph.

* The same test functions run on a LocalGraph opened from the store and on a RemoteGraph
  over 2 partitions x (primary + read replica); both must equal a reference LocalGraph
  built in memory from the same tables: same samples, features, degrees, negatives, walks,
  and the same results after writes.
* Failover: SIGKILL of a replica in the middle of a sampling loop changes nothing; with
  every replica of a partition dead, PartitionUnavailable names it within the deadline.
* Durability: SIGKILL right after acknowledged writes, restart, every write is there.
* Hardening: malformed arrays, limits, bearer token, TLS, health, metrics, SIGTERM.
"""
from __future__ import annotations

import signal
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest

from graphplat.errors import AuthenticationError, PartitionUnavailable, RemoteError, RequestTooLarge
from graphplat.proto import common_pb2 as cpb  # noqa: E402
from graphplat.proto import graphplat_pb2 as pb  # noqa: E402
from graphplat.proto import graphplat_pb2_grpc as pb_grpc  # noqa: E402
from graphplat.schema import GraphSchema  # noqa: E402
from graphplat.storage import codec  # noqa: E402
from graphplat.storage.client import PartitionClient
from graphplat.storage.cluster import load_cluster  # noqa: E402
from graphplat.storage.local import LocalGraph, open_graph  # noqa: E402
from graphplat.storage.partition_book import PartitionBook  # noqa: E402
from graphplat.storage.partition_data import split_into_partitions  # noqa: E402
from graphplat.storage.remote import RemoteGraph, connect  # noqa: E402
from graphplat.storage.store import create_store  # noqa: E402
from graphplat.testing.parity import assert_same, same_outcome
from graphplat.testing.servers import Fleet, ServerProcess, cluster_dict, self_signed_cert, write_cluster_file

SCHEMA = GraphSchema.from_yaml("""
node_types:
  user: {features: {age: int64, emb: "float32[4]"}}
  item: {features: {feat: "float32[3]"}}
edge_types:
  - {src: user, relation: click, dst: item, weighted: true, out_adjacency: true, features: {ts: int64}}
  - {src: item, relation: clicked_by, dst: user, out_adjacency: true}
  - [user, follows, user]
""")
CLICK = ("user", "click", "item")
BY = ("item", "clicked_by", "user")
FOLLOWS = ("user", "follows", "user")
P = 2


class World:
    """The whole graph as plain arrays."""

    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.users = rng.choice(2**40, 150, replace=False) - 2**39
        self.items = rng.choice(2**40, 70, replace=False)
        s = self.users[rng.integers(0, 150, 1200)]
        d = self.items[rng.integers(0, 70, 1200)]
        pairs = np.unique(np.stack([s, d], 1), axis=0)
        self.click = (pairs[:, 0], pairs[:, 1])
        self.weight = rng.random(len(pairs)).astype(np.float32)
        self.weight[::7] = 0.0
        self.ts = rng.integers(0, 10**9, len(pairs))
        f = np.unique(np.stack([self.users[rng.integers(0, 150, 400)],
                                self.users[rng.integers(0, 150, 400)]], 1), axis=0)
        self.follows = (f[:, 0], f[:, 1])
        self.age = rng.integers(0, 90, 150)
        self.emb = rng.random((150, 4), dtype=np.float32)
        self.feat = rng.random((70, 3), dtype=np.float32)
        self.book = PartitionBook(P)

    def parts(self):
        return split_into_partitions(
            SCHEMA, self.book, {"user": self.users, "item": self.items},
            {"user": {"age": self.age, "emb": self.emb}, "item": {"feat": self.feat}},
            {CLICK: self.click, BY: (self.click[1], self.click[0]), FOLLOWS: self.follows},
            {CLICK: self.weight}, {CLICK: {"ts": self.ts}})

    def reference(self) -> LocalGraph:
        return LocalGraph.from_partitions(self.book, self.parts())

    def store(self, path: Path) -> Path:
        return create_store(path, self.parts(), self.book)


WORLD = World()


def open_local(store: Path) -> LocalGraph:
    """LocalGraph from a store beside running servers: read-only, write log replayed."""
    return open_graph(store, read_only=True)


# ----------------------------------------------------------------------------- comparison

def check(g, ref, fn, where=""):
    """fn(g) must equal fn(ref): the same value, or the same exception type and message."""
    return same_outcome(g, ref, fn, where)


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def store_a(tmp_path_factory):
    return WORLD.store(tmp_path_factory.mktemp("store") / "a")


@pytest.fixture(scope="module")
def fleet_a(store_a, tmp_path_factory):
    """Partitions 0 and 1, each a primary plus a read replica."""
    fleet = Fleet(tmp_path_factory.mktemp("logs-a"))
    try:
        fleet.start_replicated(store_a, 2, metrics=True)
        yield fleet
    finally:
        fleet.close()


@pytest.fixture(scope="module")
def remote_a(fleet_a):
    # Schema and book via Info; reads over gRPC (these tests are about the RPC path;
    # tests/test_shared.py covers co-located reads from shared memory).
    g = connect(cluster_dict(fleet_a.layout, deadline_s=20, shared_memory=False))
    yield g
    g.close()


@pytest.fixture(scope="module")
def local_a(tmp_path_factory):
    """A writable embedded graph over its own copy of the store (the servers own store_a)."""
    graph = open_graph(WORLD.store(tmp_path_factory.mktemp("store-local") / "a"))
    yield graph
    graph.close()


@pytest.fixture(params=["local", "remote"])
def g(request):
    if request.param == "local":
        yield request.getfixturevalue("local_a")
    else:
        yield request.getfixturevalue("remote_a")


@pytest.fixture
def ref():
    return WORLD.reference()


# ----------------------------------------------------------------------------- parity
# The write test comes last: it changes the shared servers' graph.

def test_counts_lookup_and_node_ids(g, ref):
    for nt in ("user", "item"):
        check(g, ref, lambda x: x.num_nodes(nt), nt)
        check(g, ref, lambda x: x.node_ids(nt), nt)
        check(g, ref, lambda x: list(x.iter_nodes(nt, 32, shuffle=True, seed=3)), nt)
    for et in (CLICK, BY, FOLLOWS, "follows"):
        check(g, ref, lambda x: x.num_edges(et), str(et))
    ids = np.concatenate([WORLD.users[:7], [12345, -1], WORLD.items[:2]])
    check(g, ref, lambda x: x.lookup("user", ids))
    check(g, ref, lambda x: x.lookup("item", np.zeros(0, np.int64)))
    assert isinstance(g.schema, GraphSchema) and g.schema == SCHEMA


@pytest.mark.parametrize("strategy", ["uniform", "weighted", "topk", "full"])
@pytest.mark.parametrize("replace", [False, True])
def test_sample_neighbors_every_strategy_and_direction(g, ref, strategy, replace):
    for et, direction, seeds in [(CLICK, "in", WORLD.items), (CLICK, "out", WORLD.users),
                                 (BY, "in", WORLD.users[::-1]), (BY, "out", WORLD.items[5:40]),
                                 (FOLLOWS, "in", WORLD.users[10:90]), (FOLLOWS, "out", WORLD.users[:3])]:
        for seed in (0, 7):
            check(g, ref, lambda x: x.sample_neighbors(et, seeds, 4, strategy=strategy, replace=replace,
                                                       direction=direction, seed=seed, hop=1),
                  f"{et} {direction} {strategy} seed={seed}")
    half = len(WORLD.items) // 2
    check(g, ref, lambda x: x.sample_neighbors(CLICK, WORLD.items[half:], 3, strategy=strategy,
                                               seed=5, positions=np.arange(half, len(WORLD.items))))
    check(g, ref, lambda x: x.sample_neighbors(CLICK, WORLD.items[:0], 3, strategy=strategy))


def test_large_feature_fetches_are_split(remote_a, ref, monkeypatch):
    """Fetches bigger than one request may hold (the server's --max-batch, the message limit)
    go out as several requests and come back in the caller's order."""
    monkeypatch.setattr(PartitionClient, "MAX_REQUEST_IDS", 7)
    monkeypatch.setattr(PartitionClient, "MAX_RESPONSE_BYTES", 200)  # also caps rows by width
    calls = []
    original = PartitionClient.node_features
    monkeypatch.setattr(PartitionClient, "node_features",
                        lambda self, nt, sub, names=None, **kw: calls.append(len(sub)) or original(
                            self, nt, sub, names, **kw))
    ids = WORLD.users[np.random.default_rng(3).permutation(len(WORLD.users))]
    got, want = remote_a.node_features("user", ids), ref.node_features("user", ids)
    assert sum(calls) == len(ids) and max(calls) <= 7 and len(calls) >= len(ids) / 7
    assert set(got) == set(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])
    s = ref.sample_neighbors(CLICK, WORLD.items, -1, strategy="full")
    eids = s.eids[::-1]
    got, want = remote_a.edge_features(CLICK, eids), ref.edge_features(CLICK, eids)
    assert set(got) == set(want) and len(eids) > 7
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])
    # Every id-array request is split the same way.
    for fn in (lambda x: x.degrees(CLICK, WORLD.items, "in"), lambda x: x.lookup("user", ids),
               lambda x: x.has_edges(CLICK, WORLD.click[0][:60], WORLD.click[1][:60][::-1]),
               lambda x: x.sample_neighbors(CLICK, WORLD.items, 3, seed=5)):
        a, b = fn(remote_a), fn(ref)
        pairs = [(a, b)] if isinstance(a, np.ndarray) else [(a.counts, b.counts), (a.neighbors, b.neighbors),
                                                             (a.eids, b.eids)]
        for x, y in pairs:
            np.testing.assert_array_equal(x, y)


def test_features_degrees(g, ref):
    idx = np.array([5, 0, 149, 5, 77])
    check(g, ref, lambda x: x.node_features("user", WORLD.users[idx]))
    check(g, ref, lambda x: x.node_features("user", WORLD.users[idx], ["emb"]))
    check(g, ref, lambda x: x.node_features("item", WORLD.items[:0]))
    check(g, ref, lambda x: x.node_features("user", WORLD.users[:2], ["nope"]))
    s = ref.sample_neighbors(CLICK, WORLD.items, -1, strategy="full")
    check(g, ref, lambda x: x.edge_features(CLICK, s.eids))
    check(g, ref, lambda x: x.edge_features(CLICK, s.eids[::-3], ["ts"]))
    empty = g.edge_features(CLICK, s.eids[:0])  # every feature, shaped, for an empty batch
    assert set(empty) == set(ref.edge_features(CLICK, s.eids[:3])) and all(len(v) == 0 for v in empty.values())
    for direction, ids in (("in", WORLD.items), ("out", WORLD.users)):
        check(g, ref, lambda x: x.degrees(CLICK, ids, direction))
    check(g, ref, lambda x: x.degrees(FOLLOWS, WORLD.users, "in"))
    check(g, ref, lambda x: x.has_edges(CLICK, WORLD.click[0][:50], WORLD.click[1][:50][::-1]))


def test_negative_sampling_and_walks(g, ref):
    for strategy in ("uniform", "degree"):
        for exclude in (True, False):
            check(g, ref, lambda x: x.negative_sample(CLICK, WORLD.users[:40], 5, strategy=strategy,
                                                      exclude_existing=exclude, seed=3))
    check(g, ref, lambda x: x.random_walk([CLICK, BY, CLICK, BY], WORLD.users[:60], seed=4))
    check(g, ref, lambda x: x.random_walk([BY, CLICK], WORLD.items, seed=9))


def test_errors_are_the_same(g, ref):
    for fn in [lambda x: x.sample_neighbors(CLICK, [123456789], 2),
               lambda x: x.sample_neighbors(CLICK, WORLD.items[:2], -2),
               lambda x: x.sample_neighbors(CLICK, [123456789], 0),
               lambda x: x.sample_neighbors(CLICK, WORLD.items[:2], 2, direction="sideways"),
               lambda x: x.sample_neighbors(CLICK, np.array([1.5]), 2),
               lambda x: x.sample_neighbors(FOLLOWS, WORLD.users[:1], 2, direction="out"),
               lambda x: x.sample_neighbors(CLICK, WORLD.items[:2], 2, strategy="nope"),
               lambda x: x.node_features("user", [424242]),
               lambda x: x.edge_features(CLICK, [(1 << 40) + 10**9]),
               lambda x: x.degrees(CLICK, [1, 2]),
               lambda x: x.update_features("user", [424242], {"age": [1]}),
               lambda x: x.add_edges(CLICK, [WORLD.users[0]], [424242]),
               lambda x: x.add_nodes("user", [WORLD.users[3]])]:
        got = check(g, ref, fn)
        assert got[0] == "error"
    with pytest.raises(TypeError):  # the core's pybind11 message, or the client's own
        g.sample_neighbors(CLICK, WORLD.items[:2], 2, seed=-1)


def test_fanout_zero_is_the_same_rule_remotely(g, ref):
    """Fanout 0 samples nothing on the servers too (one rule: LocalGraph, RemoteGraph,
    NodeLoader)."""
    check(g, ref, lambda x: x.sample_neighbors(CLICK, WORLD.items[:6], 0))
    s = g.sample_neighbors(CLICK, WORLD.items[:6], 0)
    assert s.counts.tolist() == [0] * 6 and s.neighbors.size == 0


def test_writes_then_sampling(g, ref):
    new_users = np.array([7, 8, -9, 10**12])
    new_items = np.array([11, 12])
    for x in (ref, g):
        x.add_nodes("user", new_users, {"age": np.array([70, 80, 90, 100]),
                                        "emb": np.ones((4, 4), np.float32)})
        x.add_nodes("item", new_items)
    src = np.concatenate([new_users, WORLD.users[:20]])
    dst = np.concatenate([np.repeat(new_items[:1], 4), WORLD.items[:20]])
    w = np.linspace(0, 2, len(src)).astype(np.float32)
    eids = check(g, ref, lambda x: x.add_edges(CLICK, src, dst, weights=w))
    assert eids[0] == "ok" and len(eids[1]) == len(src)
    check(g, ref, lambda x: x.add_edges(BY, dst[::-1], src))
    check(g, ref, lambda x: x.add_edges(FOLLOWS, new_users, new_users[::-1]))
    check(g, ref, lambda x: x.update_features("user", np.array([8, WORLD.users[1]]),
                                              {"age": np.array([81, 5])}))
    check(g, ref, lambda x: x.add_nodes("user", [7]))  # duplicate: the same error
    for nt in ("user", "item"):
        check(g, ref, lambda x: x.num_nodes(nt))
        check(g, ref, lambda x: x.node_ids(nt))
    check(g, ref, lambda x: x.num_edges(CLICK))
    seeds = np.concatenate([new_items, WORLD.items[:30]])
    for strategy in ("uniform", "weighted", "topk", "full"):
        check(g, ref, lambda x: x.sample_neighbors(CLICK, seeds, 3, strategy=strategy, seed=2), strategy)
        check(g, ref, lambda x: x.sample_neighbors(CLICK, src, 3, strategy=strategy, direction="out"), strategy)
    check(g, ref, lambda x: x.node_features("user", np.concatenate([new_users, WORLD.users[:3]])))
    check(g, ref, lambda x: x.edge_features(CLICK, eids[1]))
    check(g, ref, lambda x: x.degrees(CLICK, seeds))
    check(g, ref, lambda x: x.negative_sample(CLICK, new_users, 4, strategy="degree", seed=1))
    check(g, ref, lambda x: x.random_walk([CLICK, BY], new_users, seed=1))
    full = g.sample_neighbors(CLICK, new_items[:1], -1, strategy="full")
    assert set(new_users.tolist()) <= set(full.neighbors.tolist())


# ----------------------------------------------------------------------------- wire-level

def _stub(server: ServerProcess):
    ch = grpc.insecure_channel(server.address)
    return ch, pb_grpc.GraphPartitionStub(ch)


def test_health_and_metrics(fleet_a, remote_a):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    for s in fleet_a.servers:
        with grpc.insecure_channel(s.address) as ch:
            for svc in ("", "graphplat.v1.GraphPartition"):
                resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=svc), timeout=5)
                assert resp.status == health_pb2.HealthCheckResponse.SERVING
    remote_a.sample_neighbors(CLICK, WORLD.items, 3)
    p0 = fleet_a.servers[0]
    text = urllib.request.urlopen(f"http://127.0.0.1:{p0.metrics_port}/metrics", timeout=5).read().decode()
    assert 'graphplat_requests_total{code="OK",method="SampleNeighbors"}' in text
    assert "graphplat_request_seconds_bucket" in text and "graphplat_sampled_edges_total" in text


def test_malformed_requests_are_invalid_argument(fleet_a):
    ch, stub = _stub(fleet_a.servers[0])
    et = codec.etype_msg(CLICK)
    good = codec.to_array(_p0(WORLD.items)[:3])
    bad_requests = [
        pb.SampleNeighborsRequest(etype=et, seeds=cpb.Array(dtype="complex128", shape=[1], data=b"\0" * 16), fanout=2),
        pb.SampleNeighborsRequest(etype=et, seeds=cpb.Array(dtype="int64", shape=[3], data=b"\0" * 16), fanout=2),
        pb.SampleNeighborsRequest(etype=et, seeds=cpb.Array(dtype="int64", shape=[-2], data=b""), fanout=2),
        pb.SampleNeighborsRequest(etype=et, seeds=cpb.Array(dtype="int64", shape=[2, 2], data=b"\0" * 32), fanout=2),
        pb.SampleNeighborsRequest(etype=et, seeds=cpb.Array(dtype="float32", shape=[1], data=b"\0" * 4), fanout=2),
        pb.SampleNeighborsRequest(etype=cpb.EdgeType(src="user", relation="nope", dst="item"), seeds=good, fanout=2),
        pb.SampleNeighborsRequest(etype=et, seeds=good, fanout=2, strategy="bogus"),
        pb.SampleNeighborsRequest(etype=et, seeds=good, fanout=2, positions=codec.to_array([1])),
        pb.SampleNeighborsRequest(etype=et, seeds=good, fanout=-7),
    ]
    try:
        for req in bad_requests:
            with pytest.raises(grpc.RpcError) as ei:
                stub.SampleNeighbors(req, timeout=5)
            assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (req, ei.value.details())
        for call, req in [
            (stub.Lookup, pb.LookupRequest(ntype="ghost", ids=good)),
            (stub.Lookup, pb.LookupRequest(ntype="user", ids=cpb.Array(dtype="bool", shape=[1], data=b"\x02"))),
            (stub.AddNodes, pb.AddNodesRequest(ntype="user", ids=codec.to_array([10**15]), features=[
                cpb.NamedArray(name="emb", array=codec.to_array(np.zeros((1, 5), np.float32)))])),
            (stub.AddNodes, pb.AddNodesRequest(ntype="user", ids=codec.to_array([10**15]), features=[
                cpb.NamedArray(name="age", array=codec.to_array([1, 2]))])),
        ]:
            with pytest.raises(grpc.RpcError) as ei:
                call(req, timeout=5)
            assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (req, ei.value.details())
        with pytest.raises(grpc.RpcError) as ei:
            stub.NodeFeatures(pb.NodeFeaturesRequest(ntype="item", ids=codec.to_array([42]), all_names=True), timeout=5)
        assert ei.value.code() == grpc.StatusCode.NOT_FOUND
        # ... and the server is still serving
        r = stub.SampleNeighbors(pb.SampleNeighborsRequest(etype=et, seeds=good, fanout=2), timeout=5)
        assert codec.from_array(r.counts).shape == (3,)
        assert stub.Info(pb.InfoRequest(), timeout=5).partition == 0
    finally:
        ch.close()


def test_replica_refuses_writes_and_follows_primary(fleet_a, remote_a):
    primary, replica = fleet_a.layout[0]
    rc = PartitionClient([replica.address], 0, deadline_s=5)
    pc = PartitionClient([primary.address], 0, deadline_s=5)
    try:
        with pytest.raises(RemoteError, match="read replica"):
            rc.add_nodes("item", [123])
        info = rc.info()
        assert info.role == "replica" and not info.writable
        assert pc.info().role == "primary"
        items = _p0(np.array([6 * 10**14 + k for k in range(40)]))[:3]
        remote_a.add_nodes("item", items, {"feat": np.ones((3, 3), np.float32)})
        remote_a.add_edges(CLICK, WORLD.users[:3], np.repeat(items[:1], 3), np.ones(3, np.float32))
        deadline = time.monotonic() + 5
        while rc.info().applied_seq != pc.info().applied_seq:
            assert time.monotonic() < deadline, "the replica does not catch up"
            time.sleep(0.05)
        seeds = np.concatenate([items, _p0(WORLD.items)])
        for strategy in ("uniform", "weighted", "full"):
            assert_same(pc.sample_neighbors(CLICK, seeds, 3, strategy=strategy, seed=4),
                        rc.sample_neighbors(CLICK, seeds, 3, strategy=strategy, seed=4))
        assert_same(pc.node_features("item", items, None), rc.node_features("item", items, None))
    finally:
        rc.close()
        pc.close()


def test_request_ids_make_write_retries_idempotent(fleet_a):
    ch, stub = _stub(fleet_a.servers[0])
    try:
        ids = np.array([5 * 10**14 + k for k in range(50)])
        ids = ids[WORLD.book.partition_of("item", ids) == 0][:2]
        req = pb.AddNodesRequest(request_id="retry-me", ntype="item", ids=codec.to_array(ids))
        first = stub.AddNodes(req, timeout=5)
        again = stub.AddNodes(req, timeout=5)
        assert not first.duplicate and again.duplicate and again.seq == first.seq
        other = pb.AddNodesRequest(request_id="other", ntype="item", ids=codec.to_array(ids))
        with pytest.raises(grpc.RpcError) as ei:
            stub.AddNodes(other, timeout=5)
        assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "already present" in ei.value.details()
        wrong = pb.AddNodesRequest(request_id="x", ntype="item", ids=codec.to_array(
            [i for i in range(10**14, 10**14 + 50) if WORLD.book.partition_of("item", [i])[0] == 1][:1]))
        with pytest.raises(grpc.RpcError) as ei:
            stub.AddNodes(wrong, timeout=5)
        assert "belong to partition" in ei.value.details()
    finally:
        ch.close()


def test_connect_checks_the_cluster(fleet_a, store_a, tmp_path):
    (p0, r0), (p1, r1) = fleet_a.layout
    with pytest.raises(ValueError, match="serve partition 1"):
        connect(cluster_dict([[p1], [p0]]))
    with pytest.raises(ValueError, match="numbered"):
        load_cluster({"partitions": [{"partition": 1, "replicas": ["127.0.0.1:1"]}]})
    with pytest.raises(ValueError, match="host:port"):
        load_cluster({"partitions": [{"partition": 0, "replicas": ["nohost"]}]})
    with pytest.raises(ValueError, match="unknown key"):
        load_cluster({"partitions": [{"partition": 0, "replicas": ["a:1"]}], "deadline": 3})
    path = write_cluster_file(tmp_path / "cluster.yaml", fleet_a.layout, store=str(store_a), retries=2)
    with connect(path) as g:
        assert isinstance(g, RemoteGraph) and g.num_nodes("item") >= len(WORLD.items)


# ----------------------------------------------------------------------------- failover

def test_failover_to_replica_then_partition_unavailable(store_a, tmp_path):
    """Replicas only (the primaries of store A belong to fleet_a): partition 0 has two."""
    fleet = Fleet(tmp_path / "logs")
    try:
        a, b, c = fleet.start_all([dict(store=store_a, partition=0, replica=True),
                                   dict(store=store_a, partition=0, replica=True),
                                   dict(store=store_a, partition=1, replica=True)])
        # over gRPC only: replicas on this host would otherwise be read from their shared
        # memory while their store has no online writes (then a stopped server goes unnoticed)
        path = write_cluster_file(tmp_path / "cluster.yaml", [[a, b], [c]], store=str(store_a),
                                  deadline_s=10, shared_memory=False)
        seeds = WORLD.items
        with connect(path) as g:
            baseline = [g.sample_neighbors(CLICK, seeds, 5, seed=i) for i in range(50)]
            # A hung replica (SIGSTOP) costs one attempt's share of the deadline, then failover.
            # The replica stopped is the one g2 reads from (on a loaded machine its first
            # call may already have moved on from a to b).
            with connect(path, deadline_s=2) as g2:
                g2.sample_neighbors(CLICK, seeds, 5)
                current = g2.clients[0]._current
                hung = (a, b)[current]
                hung.proc.send_signal(signal.SIGSTOP)
                try:
                    t0 = time.monotonic()
                    assert_same(baseline[3], g2.sample_neighbors(CLICK, seeds, 5, seed=3))
                    assert 0.8 < time.monotonic() - t0 < 2.0 and g2.clients[0]._current == 1 - current
                finally:
                    hung.proc.send_signal(signal.SIGCONT)
            walks = g.random_walk([CLICK, BY], WORLD.users[:30], seed=1)
            for i in range(50):
                if i == 10:
                    a.kill()  # the replica partition 0 is reading from
                assert_same(baseline[i], g.sample_neighbors(CLICK, seeds, 5, seed=i), f"call {i}")
            assert_same(walks, g.random_walk([CLICK, BY], WORLD.users[:30], seed=1))
            assert g.clients[0]._current == 1
            # Bring a back, then SIGKILL b (now the one read from) while calls are in flight.
            a.restart().wait_ready()
            started, failures = threading.Semaphore(0), []

            def worker(offset):
                for i in range(offset, 50, 4):
                    started.release()
                    try:
                        assert_same(baseline[i], g.sample_neighbors(CLICK, seeds, 5, seed=i), f"call {i}")
                    except BaseException as e:  # noqa: BLE001
                        failures.append(e)

            threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
            for t in threads:
                t.start()
            for _ in range(8):
                started.acquire()
            b.kill()
            for t in threads:
                t.join()
            assert not failures, failures[:3]
            assert g.clients[0]._current == 0
        a.kill()
        with connect(path, deadline_s=3, verify=False) as g:
            t0 = time.monotonic()
            with pytest.raises(PartitionUnavailable) as ei:
                g.sample_neighbors(CLICK, seeds, 5)
            assert time.monotonic() - t0 < 3.5
            e = ei.value
            assert e.partition == 0 and e.addresses == [a.address, b.address]
            assert "partition 0" in str(e) and a.address in str(e) and b.address in str(e)
            # partition 1 alone still answers
            ones = seeds[WORLD.book.partition_of("item", seeds) == 1]
            assert len(g.sample_neighbors(CLICK, ones, 2).counts) == len(ones)
    finally:
        fleet.close()


def test_acknowledged_writes_survive_sigkill(tmp_path):
    store = WORLD.store(tmp_path / "b")
    fleet = Fleet(tmp_path / "logs")
    ref = WORLD.reference()
    try:
        servers = fleet.start_all([dict(store=store, partition=k) for k in range(P)])
        g = connect(cluster_dict([[s] for s in servers], deadline_s=20))
        new_users = np.array([1, 2, 3, 4])
        writes = [
            lambda x: x.add_nodes("user", new_users, {"age": np.array([11, 12, 13, 14])}),
            lambda x: x.add_nodes("item", [99]),
            lambda x: x.add_edges(CLICK, np.concatenate([new_users, WORLD.users[:6]]),
                                  np.concatenate([[99] * 4, WORLD.items[:6]]),
                                  weights=np.arange(10, dtype=np.float32)),
            lambda x: x.add_edges(FOLLOWS, new_users, WORLD.users[:4]),
            lambda x: x.update_features("user", np.array([2, WORLD.users[0]]),
                                        {"emb": np.full((2, 4), 0.5, np.float32)}),
            lambda x: x.update_features("item", [99, WORLD.items[1]], {"feat": np.ones((2, 3), np.float32)}),
        ]
        for w in writes:
            check(g, ref, w)
        # Concurrent writers (edge types the reference does not get): the log order must
        # be the apply order, or a restart would renumber edges and change samples.
        errors = []

        def writer(k):
            try:
                for j in range(5):
                    g.add_edges(BY, WORLD.items[k * 5 + j: k * 5 + j + 3], WORLD.users[k: k + 3])
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        by_seeds = WORLD.users[:12]

        def by_view(x):
            full = x.sample_neighbors(BY, by_seeds, -1, strategy="full")
            return (full, x.sample_neighbors(BY, by_seeds, 2, seed=5),
                    x.sample_neighbors(BY, WORLD.items[:40], 2, direction="out", seed=6),
                    x.edge_features(BY, full.eids), x.num_edges(BY))

        before = by_view(g)
        for s in servers:  # right after the acknowledgements
            s.kill()
        for s in servers:
            s.restart()
        for s in servers:
            s.wait_ready()
        # the same RemoteGraph reconnects to the restarted servers
        seeds = np.concatenate([[99], WORLD.items[:10]])
        check(g, ref, lambda x: x.sample_neighbors(CLICK, seeds, -1, strategy="full"))
        check(g, ref, lambda x: x.sample_neighbors(CLICK, new_users, 3, direction="out", seed=3))
        check(g, ref, lambda x: x.sample_neighbors(FOLLOWS, WORLD.users[:4], 5, seed=1))
        check(g, ref, lambda x: x.node_features("user", np.concatenate([new_users, WORLD.users[:2]])))
        check(g, ref, lambda x: x.node_features("item", [99, WORLD.items[1]]))
        check(g, ref, lambda x: x.num_edges(CLICK))
        s = ref.sample_neighbors(CLICK, seeds, -1, strategy="full")
        check(g, ref, lambda x: x.edge_features(CLICK, s.eids))
        assert_same(before, by_view(g))
        # A further write after the restart continues the same edge-id sequence.
        check(g, ref, lambda x: x.add_edges(CLICK, [3], [99], weights=[1.0]))
        # The local view of the store sees every write too.
        check(open_local(store), ref, lambda x: x.sample_neighbors(CLICK, seeds, 4, seed=8))

        # Compaction folds the log into new blobs: same edges and features; afterwards a
        # restarted primary and a fresh replica answer exactly like the compacted primary.
        def as_set(smp, owners):
            return sorted(zip(np.repeat(owners, smp.counts).tolist(), smp.neighbors.tolist(), smp.eids.tolist()))

        full_before = g.sample_neighbors(CLICK, seeds, -1, strategy="full")
        assert [c >= 0 for c in g.compact()] == [True] * P
        full_after = g.sample_neighbors(CLICK, seeds, -1, strategy="full")
        assert as_set(full_before, seeds) == as_set(full_after, seeds)
        check(g, ref, lambda x: x.node_features("user", np.concatenate([new_users, WORLD.users[:2]])))
        compacted = [g.sample_neighbors(CLICK, seeds, 3, seed=2), by_view(g)]
        replica = fleet.start(store, 0, replica=True).wait_ready()
        servers[0].restart().wait_ready()
        assert_same(compacted, [g.sample_neighbors(CLICK, seeds, 3, seed=2), by_view(g)])
        rc = PartitionClient([replica.address], 0, deadline_s=5)
        pc = g.clients[0]
        own = _p0(seeds)
        assert_same(pc.sample_neighbors(CLICK, own, 3, seed=2), rc.sample_neighbors(CLICK, own, 3, seed=2))
        rc.close()
        g.close()
    finally:
        fleet.close()


# ----------------------------------------------------------------------------- security, limits

@pytest.fixture(scope="module")
def hardened(store_a, tmp_path_factory):
    """A read replica of store A with TLS, a bearer token, small limits and metrics."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = self_signed_cert(d)
    other_cert, _ = self_signed_cert(d, "other")
    (d / "token").write_text("s3cret-token\n")
    fleet = Fleet(d / "logs")
    try:
        s = fleet.start(store_a, 0, replica=True, metrics=True,
                        args=["--token-file", str(d / "token"), "--tls-cert", str(cert),
                              "--tls-key", str(key), "--max-batch", "50", "--max-fanout", "20",
                              "--max-message-mb", "1"])
        s.wait_ready()
        yield s, cert.read_bytes(), other_cert.read_bytes()
    finally:
        fleet.close()


@pytest.fixture(scope="module")
def limited(store_a, tmp_path_factory):
    """A plaintext read replica of store A with small limits and metrics: the limits do not
    depend on TLS (nor on the cryptography package that makes the test certificates)."""
    fleet = Fleet(tmp_path_factory.mktemp("limits"))
    try:
        s = fleet.start(store_a, 0, replica=True, metrics=True,
                        args=["--max-batch", "50", "--max-fanout", "20", "--max-message-mb", "1"])
        s.wait_ready()
        yield s
    finally:
        fleet.close()


def _p0(ids):
    ids = np.asarray(ids)
    return ids[WORLD.book.partition_of("item", ids) == 0]


def test_tls_and_token(hardened):
    server, cert, other = hardened
    items = _p0(WORLD.items)[:10]
    ok = PartitionClient([server.address], 0, token="s3cret-token", root_cert=cert, deadline_s=5)
    assert ok.lookup("item", items).all()
    ok.close()
    for token, exc in [(None, "missing"), ("wrong", "invalid")]:
        c = PartitionClient([server.address], 0, token=token, root_cert=cert, deadline_s=5)
        with pytest.raises(AuthenticationError, match=exc):
            c.lookup("item", items)
        c.close()
    for root in (None, other):  # plaintext to a TLS port, or an untrusted certificate
        c = PartitionClient([server.address], 0, token="s3cret-token", root_cert=root, deadline_s=1.5)
        with pytest.raises(PartitionUnavailable, match="partition 0"):
            c.lookup("item", items)
        c.close()
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    creds = grpc.ssl_channel_credentials(root_certificates=cert)
    with grpc.secure_channel(server.address, creds) as ch:  # health needs no token
        resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
    text = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=5).read().decode()
    assert 'code="UNAUTHENTICATED"' in text


def test_limits_are_resource_exhausted(limited):
    server = limited
    items = _p0(WORLD.items)
    c = PartitionClient([server.address], 0, deadline_s=5)
    try:
        assert len(items) < 50 and c.sample_neighbors(CLICK, items, 20).counts.shape == (len(items),)
        with pytest.raises(RequestTooLarge, match="fanout 21"):
            c.sample_neighbors(CLICK, items, 21)
        with pytest.raises(RequestTooLarge, match="max-batch"):
            c.lookup("item", np.arange(51))
        with pytest.raises(RequestTooLarge):  # 1.6 MB > --max-message-mb 1
            c.lookup("item", np.arange(200_000))
        assert c.lookup("item", items).all()  # still serving
    finally:
        c.close()
    text = urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=5).read().decode()
    assert 'graphplat_requests_total{code="RESOURCE_EXHAUSTED",method="SampleNeighbors"}' in text


def test_sigterm_exits_zero(store_a, tmp_path):
    """A server of its own (plaintext: no certificate needed) drains and exits 0 on SIGTERM."""
    fleet = Fleet(tmp_path)
    try:
        server = fleet.start(store_a, 1, replica=True)
        server.wait_ready()
        _sigterm_exits_zero(server)
    finally:
        fleet.close()


def _sigterm_exits_zero(server):
    t0 = time.monotonic()
    assert server.terminate(timeout=10) == 0
    assert time.monotonic() - t0 < 5
    assert "stopped" in server.log()


# ----------------------------------------------------------------------------- in-process

def test_internal_errors_keep_the_server_up(store_a, monkeypatch):
    from graphplat.cli.serve import main_serve
    from graphplat.storage.server import PartitionServer

    server = PartitionServer(store_a, 1, port=0, replica=True).start()
    try:
        server.load()
        c = PartitionClient([server.address], 1, deadline_s=5)
        items = WORLD.items[WORLD.book.partition_of("item", WORLD.items) == 1]
        want = c.degrees(CLICK, items)

        def boom(*a, **k):
            raise RuntimeError("boom")

        monkeypatch.setattr(server.state.graph, "degrees", boom)
        with pytest.raises(RemoteError, match="INTERNAL.*boom"):
            c.degrees(CLICK, items)
        monkeypatch.undo()
        np.testing.assert_array_equal(c.degrees(CLICK, items), want)
        c.close()
    finally:
        server.stop(0)
    with pytest.raises(SystemExit) as ei:
        main_serve(["--help"])
    assert ei.value.code == 0


def test_codec_round_trip_and_validation():
    for arr in [np.arange(5), np.zeros((2, 3), np.float32), np.array([True, False]),
                np.zeros((0, 4)), np.array(7, np.uint8), np.arange(6, dtype=">i8").reshape(2, 3)]:
        back = codec.from_array(codec.to_array(arr))
        assert back.dtype == arr.dtype.newbyteorder("=") and back.shape == arr.shape
        np.testing.assert_array_equal(back, arr)
        assert not back.flags.writeable and codec.from_array(codec.to_array(arr), copy=True).flags.writeable
    with pytest.raises(ValueError, match="dtype"):
        codec.to_array(np.array(["a"]))
    for bad in [cpb.Array(dtype="object", shape=[1], data=b"x" * 8),
                cpb.Array(dtype="int64", shape=[2], data=b"x" * 8),
                cpb.Array(dtype="int64", shape=[1, -1], data=b""),
                cpb.Array(dtype="int64", shape=[1] * 9, data=b"x" * 8),
                cpb.Array(dtype="bool", shape=[2], data=b"\x01\x05")]:
        with pytest.raises(ValueError):
            codec.from_array(bad)
    book = PartitionBook.from_assignment(3, {"user": (np.array([5, 1, 9]), np.array([2, 0, 1]))})
    back = codec.book_from_msg(codec.book_to_msg(book))
    np.testing.assert_array_equal(back.partition_of("user", [1, 5, 9, 77]), book.partition_of("user", [1, 5, 9, 77]))
