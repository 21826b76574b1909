"""Co-located partitions: servers publish their partition in shared memory, a client on the
same host reads it in process with answers identical to LocalGraph; writes, tokens,
shutdown and SIGKILL keep working (real servers, real stores)."""
from __future__ import annotations

import numpy as np
import pytest

import graphplat
from graphplat.sampling import NeighborSampler
from graphplat.storage import shared
from graphplat.storage.client import AuthenticationError, PartitionClient
from graphplat.storage.remote import connect
from graphplat.storage.shared import SharedPartition
from graphplat.testing.graphs import CLICK, CLICKED, FOLLOWS, click_graph
from graphplat.testing.parity import assert_same, same_outcome
from graphplat.testing.servers import Fleet, cluster_dict


def segments_of(server) -> list:
    return sorted(p.name for p in shared.SHM_DIR.glob("graphplat-*") if f"-{server.proc.pid}-" in p.name)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("shared")
    arrays = click_graph(seed=4)
    store = arrays.write_store(d / "store", partitions=2)
    fleet = Fleet(d / "logs")
    servers = fleet.start_all([dict(store=store, partition=k) for k in range(2)])
    ref = graphplat.open_graph(store, read_only=True)
    yield arrays, store, fleet, servers, ref
    ref.close()
    fleet.close()


def test_colocated_reads_equal_local_graph(world):
    arrays, store, fleet, servers, ref = world
    with connect(cluster_dict([[s] for s in servers], deadline_s=20)) as g:
        assert all(isinstance(b, SharedPartition) for b in g.backends)
        assert all(b.capabilities == {"shared_memory", "dedupes_writes", "durable"} for b in g.backends)
        users, items = arrays.nodes["user"], arrays.nodes["item"]
        # every partition in process: the fused path applies, with LocalGraph's answer
        assert g.sample_multihop(FOLLOWS, users[:20], [3, 2], seed=3) is not None
        calls = {
            "sample": lambda h: [h.sample_neighbors(et, users if et[2] == "user" else items, 3,
                                                    strategy=st, seed=5, hop=1)
                                 for et in (CLICKED, FOLLOWS) for st in ("uniform", "topk")]
            + [h.sample_neighbors(CLICK, items, 2, strategy="weighted", seed=2)],
            "features": lambda h: (h.node_features("user", users[::-1]), h.node_features("item", items)),
            "degrees": lambda h: h.degrees(FOLLOWS, users),
            "lookup": lambda h: h.lookup("user", np.concatenate([users[:5], [123, -4]])),
            "has_edges": lambda h: h.has_edges(FOLLOWS, users[:40], users[40:80]),
            "multihop": lambda h: h.sample_multihop(FOLLOWS, users[:20], [3, 2], seed=3),
            "unknown": lambda h: h.node_features("user", [1, 2, 3]),
            "blocks": lambda h: [layer.edges for layer in NeighborSampler(h.schema, [4, 3]).sample(
                h, {"user": users[:30], "item": items[:10]}, seed=8).layers],
        }
        before = sum(b.local_reads for b in g.backends)
        for name, fn in calls.items():
            same_outcome(g, ref, fn, name)
        assert sum(b.local_reads for b in g.backends) > before + 10


def test_disabled_by_option_or_server_flag(world, tmp_path):
    arrays, store, fleet, servers, ref = world
    with connect(cluster_dict([[s] for s in servers], deadline_s=20, shared_memory=False)) as g:
        assert all(isinstance(b, PartitionClient) for b in g.backends)
        assert g.partitions_over_network == 2
    f2 = Fleet(tmp_path / "logs")
    try:
        plain = f2.start_all([dict(store=store, partition=0, replica=True, args=["--no-shared-memory"])])[0]
        assert segments_of(plain) == []
        with connect(cluster_dict([[plain], [servers[1]]], deadline_s=20)) as g:
            assert isinstance(g.backends[0], PartitionClient) and isinstance(g.backends[1], SharedPartition)
            assert g.partitions_over_network == 1
            ids = arrays.nodes["user"]
            assert_same(ref.node_features("user", ids), g.node_features("user", ids))
    finally:
        f2.close()


def test_writes_are_seen_then_reads_go_over_grpc(tmp_path):
    arrays = click_graph(seed=5)
    store = arrays.write_store(tmp_path / "store", partitions=2)
    fleet = Fleet(tmp_path / "logs")
    try:
        servers = fleet.start_all([dict(store=store, partition=k) for k in range(2)])
        with connect(cluster_dict([[s] for s in servers], deadline_s=20)) as g, \
                connect(cluster_dict([[s] for s in servers], deadline_s=20)) as other:
            assert all(b.fresh() for b in g.backends)
            new = np.array([10**12 + 1, 10**12 + 2, 10**12 + 3], dtype=np.int64)
            feat = np.arange(12, dtype=np.float32).reshape(3, 4)
            g.add_nodes("user", new, {"feat": feat})
            # read-your-writes, and another client sees the write too
            for h in (g, other):
                np.testing.assert_array_equal(h.node_features("user", new)["feat"], feat)
            users = arrays.nodes["user"]
            g.add_edges(FOLLOWS, np.repeat(new, 2), users[:6])
            got = other.sample_neighbors(FOLLOWS, users[:6], -1)
            assert set(new.tolist()) <= set(got.neighbors.tolist())
            written = {int(p) for p in g.book.partition_of("user", np.concatenate([new, users[:6]]))}
            assert all(not g.backends[p].fresh() for p in written)
    finally:
        fleet.close()


def test_token_is_still_required(tmp_path):
    arrays = click_graph(seed=6)
    store = arrays.write_store(tmp_path / "store", partitions=1)
    fleet = Fleet(tmp_path / "logs")
    try:
        s = fleet.start_all([dict(store=store, partition=0,
                                  args=["--token", "sekrit"])])[0]
        assert segments_of(s)
        with pytest.raises(AuthenticationError):
            connect(cluster_dict([[s]], deadline_s=5, token="wrong"))
        with connect(cluster_dict([[s]], deadline_s=5, token="wrong", store=str(store)), verify=False) as g:
            assert isinstance(g.backends[0], PartitionClient)  # never learned the segment
            with pytest.raises(AuthenticationError):
                g.node_features("user", arrays.nodes["user"][:3])
        with connect(cluster_dict([[s]], deadline_s=5, token="sekrit")) as g:
            assert isinstance(g.backends[0], SharedPartition)
    finally:
        fleet.close()


def test_sigterm_removes_segment_and_sigkill_leftover_is_replaced(tmp_path):
    arrays = click_graph(seed=7)
    store = arrays.write_store(tmp_path / "store", partitions=1)
    fleet = Fleet(tmp_path / "logs")
    try:
        s = fleet.start_all([dict(store=store, partition=0)])[0]
        names = segments_of(s)
        assert len(names) == 1
        assert s.terminate() == 0
        assert not (shared.SHM_DIR / names[0]).exists()

        s.start().wait_ready()
        g = connect(cluster_dict([[s]], deadline_s=20, retries=1))
        assert isinstance(g.backends[0], SharedPartition)
        ids = arrays.nodes["user"][:4]
        g.node_features("user", ids)
        old = segments_of(s)
        s.kill()
        assert (shared.SHM_DIR / old[0]).exists()  # a killed server cannot clean up
        with pytest.raises(ConnectionError):  # its mapping is not used: the partition is down
            g.node_features("user", ids)
        g.close()
        s.start().wait_ready()
        assert not (shared.SHM_DIR / old[0]).exists() and len(segments_of(s)) == 1
    finally:
        fleet.close()


def test_segment_names_differ_per_store_and_partition(tmp_path):
    arrays = click_graph(seed=8)
    a = arrays.write_store(tmp_path / "a", partitions=2)
    b = arrays.write_store(tmp_path / "b", partitions=2)
    fleet = Fleet(tmp_path / "logs")
    try:
        servers = fleet.start_all([dict(store=st, partition=k) for st in (a, b) for k in range(2)])
        names = [segments_of(s)[0] for s in servers]
        assert len(set(n.rsplit("-", 2)[0] for n in names)) == 4
        with connect(cluster_dict([[s] for s in servers[2:]], deadline_s=20)) as g:
            assert [b.segment.name for b in g.backends] == names[2:]
    finally:
        fleet.close()
