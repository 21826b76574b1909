"""Co-located partitions: servers publish their partition in shared memory, a client on the
same host reads it in process with answers identical to LocalGraph; writes, tokens,
shutdown and SIGKILL keep working (real servers, real stores)."""
from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from graphplat.sampling import NeighborSampler
from graphplat.storage import shared
from graphplat.storage.client import AuthenticationError
from graphplat.storage.remote import connect
from graphplat.storage.shared import SharedPartition
from graphplat.testing.graphs import CLICK, CLICKED, FOLLOWS, click_graph
from graphplat.testing.graphs import click_reads as reads
from graphplat.testing.parity import assert_same, same_outcome
from graphplat.testing.servers import Fleet, advertised, click_world, cluster_dict, segments_of, wait_for


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    with click_world(tmp_path_factory.mktemp("shared"), 4, [[], []]) as w:
        yield w


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
        assert not any(isinstance(b, SharedPartition) for b in g.backends)
        assert g.partitions_over_network == 2
    with Fleet(tmp_path / "logs") as f2:
        plain = f2.start_all([dict(store=store, partition=0, replica=True, args=["--no-shared-memory"])])[0]
        assert segments_of(plain) == []
        with connect(cluster_dict([[plain], [servers[1]]], deadline_s=20)) as g:
            assert not isinstance(g.backends[0], SharedPartition) and isinstance(g.backends[1], SharedPartition)
            assert g.partitions_over_network == 1
            ids = arrays.nodes["user"]
            assert_same(ref.node_features("user", ids), g.node_features("user", ids))


def test_writes_are_seen_then_reads_go_over_grpc(tmp_path):
    arrays = click_graph(seed=5)
    store = arrays.write_store(tmp_path / "store", partitions=2)
    with Fleet(tmp_path / "logs") as fleet:
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


def test_token_is_still_required(tmp_path):
    arrays = click_graph(seed=6)
    store = arrays.write_store(tmp_path / "store", partitions=1)
    with Fleet(tmp_path / "logs") as fleet:
        s = fleet.start_all([dict(store=store, partition=0,
                                  args=["--token", "sekrit"])])[0]
        assert segments_of(s)
        with pytest.raises(AuthenticationError):
            connect(cluster_dict([[s]], deadline_s=5, token="wrong"))
        with connect(cluster_dict([[s]], deadline_s=5, token="wrong", store=str(store)), verify=False) as g:
            assert not isinstance(g.backends[0], SharedPartition)  # never learned the segment
            with pytest.raises(AuthenticationError):
                g.node_features("user", arrays.nodes["user"][:3])
        with connect(cluster_dict([[s]], deadline_s=5, token="sekrit")) as g:
            assert isinstance(g.backends[0], SharedPartition)


def test_sigterm_removes_segment_and_sigkill_leftover_is_replaced(tmp_path):
    arrays = click_graph(seed=7)
    store = arrays.write_store(tmp_path / "store", partitions=1)
    with Fleet(tmp_path / "logs") as fleet:
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


def test_segment_names_differ_per_store_and_partition(tmp_path):
    arrays = click_graph(seed=8)
    a = arrays.write_store(tmp_path / "a", partitions=2)
    b = arrays.write_store(tmp_path / "b", partitions=2)
    with Fleet(tmp_path / "logs") as fleet:
        servers = fleet.start_all([dict(store=st, partition=k) for st in (a, b) for k in range(2)])
        names = [segments_of(s)[0] for s in servers]
        assert len(set(n.rsplit("-", 2)[0] for n in names)) == 4
        with connect(cluster_dict([[s] for s in servers[2:]], deadline_s=20)) as g:
            assert [b.segment.name for b in g.backends] == names[2:]


# ----------------------------------------------------------------------------- generations

def log_count(server, text: str) -> int:
    """How many times ``text`` occurs in the server's whole log."""
    return server.log_path.read_text(errors="replace").count(text)


def one_partition(tmp_path, seed: int, republish_after: str):
    arrays = click_graph(seed=seed)
    store = arrays.write_store(tmp_path / "store", partitions=1)
    fleet = Fleet(tmp_path / "logs")
    server = fleet.start_all([dict(store=store, partition=0, args=["--republish-after", republish_after])])[0]
    return arrays, store, fleet, server


def test_after_writes_go_quiet_the_server_republishes_and_clients_read_in_process_again(tmp_path):
    arrays = click_graph(seed=9)
    store = arrays.write_store(tmp_path / "store", partitions=2)
    with Fleet(tmp_path / "logs") as fleet:
        servers = fleet.start_all([dict(store=store, partition=k, args=["--republish-after", "0.5"])
                                   for k in range(2)])
        with connect(cluster_dict([[s] for s in servers], deadline_s=20)) as g, \
                connect(cluster_dict([[s] for s in servers], deadline_s=20, shared_memory=False)) as plain:
            assert all(g._in_process(p) is not None for p in range(2))
            before = [b.segment.name for b in g.backends]
            new = np.array([10**12 + 5, 10**12 + 6], dtype=np.int64)
            feat = np.arange(8, dtype=np.float32).reshape(2, 4)
            g.add_nodes("user", new, {"feat": feat})
            users = np.concatenate([new, arrays.nodes["user"][:30]])
            items = arrays.nodes["item"][:20]
            g.add_edges(FOLLOWS, np.repeat(new, 3), arrays.nodes["user"][:6])
            g.add_edges(CLICK, new, items[:2], weights=[1.0, 2.0])
            written = sorted({int(p) for p in g.book.partition_of("user", np.concatenate([new, users[:6]]))}
                             | {int(p) for p in g.book.partition_of("item", items[:2])})
            # right after the writes: those partitions over gRPC, answers include the writes
            assert all(g._in_process(p) is None for p in written)
            np.testing.assert_array_equal(g.node_features("user", new)["feat"], feat)
            assert_same(reads(plain, users, items), reads(g, users, items))
            # once writes are quiet, every written partition is read in process again
            wait_for(lambda: all(g._in_process(p) is not None for p in range(2)), what="republish")
            assert all(g.backends[p].segment.name != before[p] for p in written)
            assert all(g.backends[p].switches == 1 for p in written)
            assert all(g.backends[p].segment.seq >= g.clients[p].acked_seq for p in range(2))
            local = sum(b.local_reads for b in g.backends)
            assert_same(reads(plain, users, items), reads(g, users, items))
            assert sum(b.local_reads for b in g.backends) > local + 6
            assert g.sample_multihop(FOLLOWS, users[:20], [3, 2], seed=3) is not None  # fused again
            np.testing.assert_array_equal(g.node_features("user", new)["feat"], feat)
            assert set(new.tolist()) <= set(g.sample_neighbors(FOLLOWS, users[2:8], -1).neighbors.tolist())
            for s in servers:  # the superseded generation's name is gone: one segment each
                assert len(segments_of(s)) == 1
            # once no client reads a superseded generation, the server unmaps it too
            maps = [f"/proc/{servers[p].proc.pid}/maps" for p in written]
            wait_for(lambda: not any(before[p] in open(m).read() for p, m in zip(written, maps)),
                     what="the server to unmap the old generation")


def test_compact_republishes_at_once(tmp_path):
    arrays, store, fleet, server = one_partition(tmp_path, 10, "0")  # no timer: only Compact
    try:
        with connect(cluster_dict([[server]], deadline_s=20)) as g:
            users = arrays.nodes["user"]
            g.add_edges(FOLLOWS, users[:3], users[3:6])
            time.sleep(1.0)
            assert g._in_process(0) is None  # --republish-after 0: writes alone do not republish
            g.compact()
            assert g._in_process(0) is not None
            assert set(users[:3].tolist()) <= set(g.sample_neighbors(FOLLOWS, users[3:6], -1).neighbors.tolist())
    finally:
        fleet.close()


def test_a_client_holding_the_old_generation_stays_correct_and_bounds_memory(tmp_path):
    arrays, store, fleet, server = one_partition(tmp_path, 11, "0.3")
    try:
        with connect(cluster_dict([[server]], deadline_s=20)) as g, \
                connect(cluster_dict([[server]], deadline_s=20)) as writer, \
                connect(cluster_dict([[server]], deadline_s=20, shared_memory=False)) as plain:
            users, items = arrays.nodes["user"], arrays.nodes["item"]
            held = g._in_process(0)  # a read in flight on generation 1
            gen1 = advertised(server)
            pinned = shared.attach(gen1)  # a client that does not let go of generation 1
            old_feat = held.node_features("user", users[:5])["feat"].copy()
            writer.update_features("user", users[:5], {"feat": np.full((5, 4), 7, np.float32)})
            gen2 = wait_for(lambda: advertised(server) != gen1 and advertised(server), what="generation 2")
            # the old mapping stays valid for the read in flight (its name is gone)
            assert not (shared.SHM_DIR / gen1).exists()
            np.testing.assert_array_equal(held.node_features("user", users[:5])["feat"], old_feat)
            # idle clients follow without reading (and so let go of generation 1)
            wait_for(lambda: g.backends[0].segment.name == gen2 and writer.backends[0].segment.name == gen2,
                     what="idle clients to follow")
            # while generation 1 is still mapped somewhere, no third generation is published
            writer.add_edges(FOLLOWS, users[:2], users[2:4])
            time.sleep(2.0)
            assert advertised(server) == gen2
            assert_same(reads(plain, users[:30], items[:10]), reads(g, users[:30], items[:10]))
            assert g._in_process(0) is None  # generation 2 was written since
            pinned.release()  # (arrays of generation 1 still in use, like ``held``, do not count)
            wait_for(lambda: g._in_process(0) is not None, what="generation 3")
            np.testing.assert_array_equal(held.node_features("user", users[:5])["feat"], old_feat)
            assert g.backends[0].segment.name not in (gen1, gen2) and g.backends[0].switches == 2
            np.testing.assert_array_equal(g.node_features("user", users[:5])["feat"], np.full((5, 4), 7))
            assert_same(reads(plain, users[:30], items[:10]), reads(g, users[:30], items[:10]))
    finally:
        fleet.close()


def test_a_forked_child_does_not_hold_generations_back(tmp_path):
    arrays, store, fleet, server = one_partition(tmp_path, 15, "0.3")
    try:
        with connect(cluster_dict([[server]], deadline_s=20)) as g:
            users = arrays.nodes["user"]
            gen1 = advertised(server)
            pid = os.fork()
            if pid == 0:  # the child inherits g (and its lock files) and just lives on
                time.sleep(15)
                os._exit(0)
            try:
                g.update_features("user", users[:2], {"feat": np.ones((2, 4), np.float32)})
                gen2 = wait_for(lambda: advertised(server) != gen1 and advertised(server), what="generation 2")
                wait_for(lambda: g.backends[0].segment.name == gen2, what="the parent to follow")
                g.update_features("user", users[:2], {"feat": np.zeros((2, 4), np.float32)})
                wait_for(lambda: advertised(server) not in (gen1, gen2), timeout=10, what="generation 3")
            finally:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
    finally:
        fleet.close()


def test_a_stream_of_writes_does_not_republish_in_a_loop(tmp_path):
    arrays, store, fleet, server = one_partition(tmp_path, 12, "1.5")
    try:
        with connect(cluster_dict([[server]], deadline_s=20)) as g:
            users = arrays.nodes["user"]
            first = advertised(server)
            t_end = time.monotonic() + 4.0
            k = 0
            while time.monotonic() < t_end:  # a write every 0.1 s: never quiet for 1.5 s
                g.update_features("user", users[k % 50:k % 50 + 1], {"feat": np.full((1, 4), k, np.float32)})
                k += 1
                time.sleep(0.1)
                assert advertised(server) == first
            second = wait_for(lambda: advertised(server) != first and advertised(server), what="republish")
            time.sleep(2.0)  # quiet again: nothing new to publish, so no further generation
            assert advertised(server) == second
            assert log_count(server, "published in shared memory as") == 2
            assert g._in_process(0) is not None
    finally:
        fleet.close()


@pytest.mark.parametrize("marker", ["republishing in shared memory", "published in shared memory as"])
def test_sigkill_during_or_after_republish_leaves_no_stale_segment(tmp_path, marker):
    arrays, store, fleet, server = one_partition(tmp_path, 13, "0.2")
    try:
        users = arrays.nodes["user"]
        with connect(cluster_dict([[server]], deadline_s=20)) as g:
            g.add_edges(FOLLOWS, users[:4], users[4:8])
            n = log_count(server, marker)
            wait_for(lambda: log_count(server, marker) > n, what=marker)
            server.kill()  # in the middle of the republish, or right after it
        dead = server.proc.pid
        server.start().wait_ready()
        assert not [p for p in shared.SHM_DIR.glob("graphplat-*") if f"-{dead}-" in p.name]
        wait_for(lambda: len(segments_of(server)) == 1, what="the restarted server's segment")
        with connect(cluster_dict([[server]], deadline_s=20)) as g:
            wait_for(lambda: g._in_process(0) is not None, what="in-process reads")
            assert set(users[:4].tolist()) <= set(g.sample_neighbors(FOLLOWS, users[4:8], -1).neighbors.tolist())
        assert len(segments_of(server)) == 1
    finally:
        fleet.close()


def test_a_segment_older_than_the_clients_own_write_is_not_read(tmp_path):
    """Read-your-writes: a client that mapped a replica's segment (its primary was down
    when it connected) and then wrote must not read that segment before the replica
    has the write (the segment's seq is behind the client's acknowledged seq)."""
    arrays = click_graph(seed=14)
    store = arrays.write_store(tmp_path / "store", partitions=1)
    with Fleet(tmp_path / "logs") as fleet:
        primary = fleet.start_all([dict(store=store, partition=0)])[0]
        replica = fleet.start(store, 0, replica=True, args=["--follow-interval", "5"]).wait_ready()
        primary.kill()
        with connect(cluster_dict([[primary, replica]], deadline_s=20)) as g:
            assert g.backends[0].segment.name == advertised(replica)
            assert g._in_process(0) is not None
            primary.start().wait_ready()
            users = arrays.nodes["user"][:3]
            g.update_features("user", users, {"feat": np.full((3, 4), 9, np.float32)})
            assert g._in_process(0) is None
            np.testing.assert_array_equal(g.node_features("user", users)["feat"], np.full((3, 4), 9))
