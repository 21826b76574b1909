"""Topology replicas: a client copies a remote partition's ids and adjacency (the server's
Topology stream) and samples it in process, with answers identical to LocalGraph; its own
writes are seen at once, other clients' within the lag bound, a killed server sends reads
back over gRPC (real servers, real stores, SIGKILL)."""
from __future__ import annotations

import contextlib
import time

import numpy as np
import psutil
import pytest

import graphplat
from graphplat.errors import AuthenticationError, PartitionUnavailable, RemoteError
from graphplat.proto import graphplat_pb2 as pb
from graphplat.sampling import NeighborSampler, NodeLoader
from graphplat.storage import codec, shared
from graphplat.storage.client import PartitionClient
from graphplat.storage.cluster import load_cluster
from graphplat.storage.remote import connect
from graphplat.storage.shared import SharedPartition
from graphplat.storage.topology_replica import AUTO_MEMORY_SHARE, TopologyReplica, lazy_copies_bytes
from graphplat.testing.blocks import batch_signature
from graphplat.testing.graphs import CLICK, CLICKED, FOLLOWS, click_graph
from graphplat.testing.parity import same_outcome
from graphplat.testing.servers import Fleet, click_world, cluster_dict, wait_for

NO_SHM = ["--no-shared-memory"]  # as if each server ran on another host


@contextlib.contextmanager
def one_server(tmp_path, seed: int, args=()):
    """A 1-partition store of click_graph(seed) and its server (no shared memory):
    yields (arrays, users, server)."""
    with click_world(tmp_path, seed, [NO_SHM + list(args)], ref=False) as (arrays, _, _, servers, _):
        yield arrays, arrays.nodes["user"], servers[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    # partition 0 publishes shared memory (co-located), partition 1 does not (remote)
    with click_world(tmp_path_factory.mktemp("replica"), 14, [[], NO_SHM]) as w:
        yield w


def test_replica_reads_equal_local_graph_and_features_stay_remote(world):
    arrays, store, fleet, servers, ref = world
    with connect(cluster_dict([[s] for s in servers], deadline_s=20, topology_replica=True)) as g:
        assert isinstance(g.backends[0], SharedPartition)  # shared memory wins where it exists
        rep = g.backends[1]
        assert isinstance(rep, TopologyReplica) and rep.fresh() and rep.fetches == 1
        assert "topology_replica" in rep.capabilities
        users, items = arrays.nodes["user"], arrays.nodes["item"]
        calls = {
            "sample": lambda h: [h.sample_neighbors(et, users if et[2] == "user" else items, 3,
                                                    strategy=st, seed=5, hop=1)
                                 for et in (CLICKED, FOLLOWS) for st in ("uniform", "topk")]
            + [h.sample_neighbors(CLICK, items, 2, strategy="weighted", seed=2),
               h.sample_neighbors(FOLLOWS, users, 2, direction="out", seed=4)],
            "features": lambda h: (h.node_features("user", users[::-1]), h.node_features("item", items)),
            "degrees": lambda h: (h.degrees(FOLLOWS, users), h.degrees(CLICK, users, "out")),
            "lookup": lambda h: h.lookup("user", np.concatenate([users[:5], [123, -4]])),
            "has_edges": lambda h: h.has_edges(FOLLOWS, users[:40], users[40:80]),
            "multihop": lambda h: h.sample_multihop(FOLLOWS, users[:20], [3, 2], seed=3),
            "unknown": lambda h: h.sample_neighbors(FOLLOWS, [1, 2, 3], 2),
            "blocks": lambda h: [layer.edges for layer in NeighborSampler(h.schema, [4, 3]).sample(
                h, {"user": users[:30], "item": items[:10]}, seed=8).layers],
        }
        before = rep.local_reads
        for name, fn in calls.items():
            same_outcome(g, ref, fn, name)
        assert rep.local_reads > before + 10
        # a loader's batches, features included, are bit-identical to LocalGraph's
        seeds = {"user": users, "item": items}
        kw = dict(batch_size=32, shuffle=True, seed=11, prefetch=2)
        want = [batch_signature(b) for b in NodeLoader(ref, seeds, [4, 3], **kw)]
        assert [batch_signature(b) for b in NodeLoader(g, seeds, [4, 3], **kw)] == want


@pytest.mark.parametrize("mode", [True, "auto"])
def test_other_clients_and_own_writes_are_seen_at_once_then_a_new_copy(tmp_path, mode):
    arrays = click_graph(seed=15)
    store = arrays.write_store(tmp_path / "store", partitions=2)
    users = arrays.nodes["user"]
    with Fleet(tmp_path / "logs") as fleet:
        servers = fleet.start_all([dict(store=store, partition=k, args=NO_SHM) for k in range(2)])
        cluster = cluster_dict([[s] for s in servers], deadline_s=20)
        with connect(cluster, topology_replica=mode) as g, connect(cluster) as other:
            # the default ("auto") copies once woken (a loader's first sample wakes it)
            assert g.wait_for_topology(timeout=20)
            assert all(isinstance(b, TopologyReplica) and b.fresh() for b in g.backends)
            # feature updates leave the copies fresh
            other.update_features("user", users[:3], {"feat": np.ones((3, 4), np.float32)})
            g.backends[0].follow(), g.backends[1].follow()
            assert all(b.fresh() for b in g.backends)
            np.testing.assert_array_equal(g.node_features("user", users[:3])["feat"], 1.0)
            # another client's write: seen at once. The followers are stopped and the lag
            # bound stretched, so only the confirmation after each read can notice the write.
            for b in g.backends:
                shared.unregister_follower(b)
                b.max_lag_s = 600.0
            p2 = 0
            dst2 = users[g.book.partition_of("user", users) == p2][:2]
            new_src = set(users[20:22].tolist())
            other.add_edges(FOLLOWS, users[20:22], dst2)
            assert all(b.fresh() for b in g.backends)  # nothing told the client yet
            fused = g.sample_multihop(FOLLOWS, dst2, [50], seed=1)  # >= every degree: all in-neighbors
            assert fused is None and g.backends[p2].rejected == 1  # from the copies, not confirmed
            assert not g.backends[p2].fresh()  # the confirmation saw the server's newer topology
            assert new_src <= set(g.sample_neighbors(FOLLOWS, dst2, -1).neighbors.tolist())
            for b in g.backends:
                shared.register_follower(b)
                b.max_lag_s = 2.0
            # our own edge write: read at once (the copy is stale at once, reads go over gRPC)
            src, dst = users[:2], users[2:4]
            g.add_edges(FOLLOWS, src, dst)
            owner = int(g.book.partition_of("user", dst[:1])[0])
            assert not g.backends[owner].fresh()
            got = g.sample_neighbors(FOLLOWS, dst, -1)
            assert set(src.tolist()) <= set(got.neighbors.tolist())
            # once compacted, each partition serves its topology again and the copies catch up
            other.compact()
            wait_for(lambda: all(b.fresh() for b in g.backends), timeout=20, what="new copies")
            assert all(b.fetches >= 2 for b in g.backends if b.client.partition in (owner, p2))
            with graphplat.open_graph(store, read_only=True) as plain:  # the compacted store
                for fn in (lambda h: h.sample_neighbors(FOLLOWS, users, 3, seed=9),
                           lambda h: h.degrees(FOLLOWS, users),
                           lambda h: h.sample_multihop(FOLLOWS, users[:30], [3, 2], seed=1)):
                    same_outcome(g, plain, fn)
                assert all(b.fresh() and b.local_reads for b in g.backends)


def test_not_compacted_partition_serves_no_copy_and_reads_stay_correct(tmp_path):
    # --republish-after 0: only a Compact call compacts
    with one_server(tmp_path, 16, ["--republish-after", "0"]) as (arrays, users, s):
        with connect(cluster_dict([[s]], deadline_s=20)) as writer:
            writer.add_edges(FOLLOWS, users[:3], users[3:6])
        c = PartitionClient([s.address], 0, deadline_s=10)
        assert not c.info().topology_servable
        with pytest.raises(RemoteError, match="not compacted"):
            c.topology()
        with connect(cluster_dict([[s]], deadline_s=20, topology_replica=True)) as g:
            rep = g.backends[0]
            assert not rep.fresh() and rep.fetches == 0  # read over gRPC meanwhile
            got = g.sample_neighbors(FOLLOWS, users[3:6], -1)
            assert set(users[:3].tolist()) <= set(got.neighbors.tolist())
            c.compact()
            assert c.info().topology_servable
            wait_for(lambda: rep.fresh(), timeout=30, what="a copy after compaction")
            again = g.sample_neighbors(FOLLOWS, users[3:6], -1)
            assert sorted(again.neighbors.tolist()) == sorted(got.neighbors.tolist())
        c.close()


def test_a_server_without_shared_memory_compacts_when_writes_go_quiet(tmp_path):
    with one_server(tmp_path, 20, ["--republish-after", "0.5"]) as (arrays, users, s):
        with connect(cluster_dict([[s]], deadline_s=20), topology_replica=True) as g:
            rep = g.backends[0]
            g.add_edges(FOLLOWS, users[:3], users[3:6])
            assert not rep.fresh()
            wait_for(lambda: rep.fresh() and rep.fetches == 2, timeout=30,
                     what="a new copy once the writes went quiet")
            got = g.sample_neighbors(FOLLOWS, users[3:6], -1)
            assert set(users[:3].tolist()) <= set(got.neighbors.tolist())
        assert "compacting after writes" in s.log()


def test_killed_server_sends_reads_back_over_grpc_then_the_copy_resumes(tmp_path):
    with one_server(tmp_path, 17) as (arrays, users, s):
        with connect(cluster_dict([[s]], deadline_s=2, retries=2), topology_replica=True) as g:
            rep = g.backends[0]
            want = g.sample_neighbors(FOLLOWS, users, 3, seed=2)
            s.kill()
            # at once: an answer from the copy needs the server's confirmation
            with pytest.raises(PartitionUnavailable):
                g.sample_neighbors(FOLLOWS, users, 3, seed=2)
            # and the copy is not even tried once it went unconfirmed for the lag bound
            wait_for(lambda: not rep.fresh(), timeout=rep.max_lag_s + 3, what="the copy to expire")
            with pytest.raises(PartitionUnavailable):
                g.sample_neighbors(FOLLOWS, users, 3, seed=2)
            s.restart().wait_ready()
            wait_for(lambda: rep.fresh(), timeout=20, what="the copy to be confirmed again")
            assert rep.fetches == 1  # nothing changed: the same copy answers again
            same_outcome(g, g, lambda h: h.sample_neighbors(FOLLOWS, users, 3, seed=2))
            got = g.sample_neighbors(FOLLOWS, users, 3, seed=2)
            np.testing.assert_array_equal(got.neighbors, want.neighbors)


def test_failover_to_a_read_replica_keeps_the_copy_and_its_answers(tmp_path):
    arrays = click_graph(seed=19)
    store = arrays.write_store(tmp_path / "store", partitions=1)
    users = arrays.nodes["user"]
    with Fleet(tmp_path / "logs") as fleet:
        primary, replica = fleet.start_all([dict(store=store, partition=0, args=NO_SHM),
                                            dict(store=store, partition=0, replica=True, args=NO_SHM)])
        with connect(cluster_dict([[primary, replica]], deadline_s=5, retries=3), topology_replica=True) as g:
            rep = g.backends[0]
            want = g.sample_neighbors(FOLLOWS, users, 3, seed=6)
            primary.kill()
            # the follower fails over to the read replica, whose topology is the copy's
            time.sleep(rep.max_lag_s + 1)
            wait_for(lambda: rep.fresh(), timeout=10, what="the copy confirmed by the read replica")
            before = rep.local_reads
            got = g.sample_neighbors(FOLLOWS, users, 3, seed=6)
            assert rep.local_reads == before + 1 and rep.fetches == 1
            np.testing.assert_array_equal(got.neighbors, want.neighbors)
            np.testing.assert_array_equal(got.eids, want.eids)
            with pytest.raises(PartitionUnavailable):  # writes need the primary, as without the copy
                g.add_edges(FOLLOWS, users[:1], users[1:2])


def test_topology_needs_the_token(tmp_path):
    with one_server(tmp_path, 18, ["--token", "sekrit"]) as (arrays, users, s):
        bad = PartitionClient([s.address], 0, token="wrong", deadline_s=5)
        with pytest.raises(AuthenticationError):
            bad.topology()
        bad.close()
        good = PartitionClient([s.address], 0, token="sekrit", deadline_s=5)
        head, arrays_got = good.topology(chunk_bytes=4096)  # many chunks
        good.close()
        assert head.partition == 0 and head.seq >= -1
        np.testing.assert_array_equal(np.sort(arrays_got["ids/user"]), np.sort(arrays.nodes["user"]))
        assert not any(k.startswith(("nfeat/", "efeat/")) for k in arrays_got)  # no features
        # a copy over its memory limit is not taken: reads stay over gRPC
        with connect(cluster_dict([[s]], deadline_s=5, token="sekrit")) as g:
            small = TopologyReplica(g.clients[0], g.schema, max_bytes=1024)
            assert small.fetches == 0 and not small.fresh()
            assert small.degrees(FOLLOWS, users[:5]).tolist() == g.degrees(FOLLOWS, users[:5]).tolist()
            assert small.local_reads == 0
            small.release()


def test_a_malformed_topology_stream_is_refused():
    arr = np.arange(10, dtype=np.int64)
    good = list(codec.topology_chunks(5, 0, 1, [("ids/user", arr)], 16))
    head, got = codec.read_topology(iter(good))
    assert head.seq == 5 and got["ids/user"].tolist() == arr.tolist()
    with pytest.raises(ValueError, match="ended early"):
        codec.read_topology(iter(good[:-1]))
    with pytest.raises(ValueError, match="out of place"):
        codec.read_topology(iter([good[0]] + good[2:] + [good[1]]))
    with pytest.raises(ValueError, match="without a layout"):
        codec.read_topology(iter([]))
    for dtype in ("|O", "no-such-type"):
        bad = pb.TopologyChunk(seq=1, layout=[pb.TopologyArray(key="x", dtype=dtype, shape=[3])])
        with pytest.raises(ValueError, match="unsupported dtype"):
            codec.read_topology(iter([bad]))
    # the size is checked before anything is allocated (a huge or hostile layout)
    huge = pb.TopologyChunk(seq=1, layout=[pb.TopologyArray(key="x", dtype="<i8", shape=[1 << 60])])
    with pytest.raises(ValueError, match="GiB allowed"):
        codec.read_topology(iter([huge]), max_bytes=1 << 30)
    with pytest.raises(ValueError, match="GiB allowed"):
        codec.read_topology(iter(good), max_bytes=79)


def test_cluster_file_flag(tmp_path):
    base = {"partitions": [{"partition": 0, "replicas": ["127.0.0.1:1"]}]}
    assert load_cluster(dict(base)).topology_replica == "auto"
    assert load_cluster(dict(base, topology_replica=True)).topology_replica is True
    assert load_cluster(dict(base, topology_replica=False)).topology_replica is False
    for bad in ("yes", "Auto", 1):
        with pytest.raises(ValueError, match="topology_replica must be true, false or 'auto'"):
            load_cluster(dict(base, topology_replica=bad))
    with pytest.raises(ValueError, match="topology_replica must be true, false or 'auto'"):
        connect(dict(base), topology_replica="always", verify=False)


def edges_of(sampler, graph, seeds, seed):
    """Every layer's sampled edges of ``sampler`` over ``graph``."""
    return [layer.edges for layer in sampler.sample(graph, seeds, seed=seed).layers]


def test_auto_replica_sleeps_until_a_loader_samples_then_answers_in_process(world):
    """The default ("auto"): lookups, features and one-hop reads copy nothing and ask the
    server nothing extra; the first multi-hop sample starts the copy in the background,
    whose answers are then bit-identical to LocalGraph's, in process."""
    arrays, store, fleet, servers, ref = world
    users, items = arrays.nodes["user"], arrays.nodes["item"]
    with connect(cluster_dict([[s] for s in servers], deadline_s=20)) as g:
        assert isinstance(g.backends[0], SharedPartition)
        rep = g.backends[1]
        assert isinstance(rep, TopologyReplica) and rep.lazy and not rep.awake
        same_outcome(g, ref, lambda h: (h.lookup("user", users), h.node_features("user", users),
                                        h.sample_neighbors(FOLLOWS, users, 3, seed=2)), "one-hop")
        time.sleep(2 * shared.FOLLOW_INTERVAL_S)  # a dormant replica is not even followed
        assert (rep.fetches, rep.local_reads, rep._server_seq) == (0, 0, -1)
        sampler = NeighborSampler(g.schema, [4, 3])
        seeds = {"user": users[:30], "item": items[:10]}
        same_outcome(g, ref, lambda h: edges_of(sampler, h, seeds, 8), "per hop")
        assert rep.awake
        assert g.wait_for_topology(timeout=20)
        assert rep.fetches == 1 and rep.fresh() and rep.declined is None
        before = rep.local_reads
        for seed in (8, 9):
            same_outcome(g, ref, lambda h: edges_of(sampler, h, seeds, seed), "from the copy")
        assert rep.local_reads > before
        kw = dict(batch_size=32, shuffle=True, seed=11, prefetch=2)
        want = [batch_signature(b) for b in NodeLoader(ref, seeds, [4, 3], **kw)]
        assert [batch_signature(b) for b in NodeLoader(g, seeds, [4, 3], **kw)] == want


def test_auto_replica_too_large_for_its_budget_stays_per_hop_without_retrying(world, caplog):
    arrays, store, fleet, servers, ref = world
    users = arrays.nodes["user"]
    with connect(cluster_dict([[s] for s in servers], deadline_s=20)) as g:
        rep = g.backends[1]
        rep.max_bytes = 1000  # far below the copy's size
        sampler = NeighborSampler(g.schema, [4, 3])
        with caplog.at_level("INFO", logger="graphplat.topology_replica"):
            assert g.wait_for_topology(timeout=20)
        assert rep.declined and "GiB allowed" in rep.declined and rep.fetches == 0 and not rep.fresh()
        assert any("no automatic topology replica" in r.getMessage() and r.levelname == "INFO"
                   for r in caplog.records)
        time.sleep(3 * shared.FOLLOW_INTERVAL_S)
        rep._next_fetch = 0.0  # no backoff hides a retry: a declined copy is never asked again
        for seed in (1, 2):
            same_outcome(g, ref, lambda h: edges_of(sampler, h, {"user": users}, seed), "declined")
        time.sleep(2 * shared.FOLLOW_INTERVAL_S)
        assert rep.fetches == 0 and not rep._fetching and rep.local_reads == 0


def test_auto_replicas_share_one_memory_budget_per_process(world):
    arrays, store, fleet, servers, ref = world
    with connect(cluster_dict([[s] for s in servers], deadline_s=20), shared_memory=False) as g:
        reps = g.backends
        assert all(isinstance(r, TopologyReplica) and r.max_bytes is None for r in reps)
        available = psutil.virtual_memory().available
        g.expect_multihop_sampling()
        budgets = [r.max_bytes for r in reps]
        assert budgets[0] == budgets[1] > 0
        # a quarter of the available memory for both copies together, not a quarter each
        assert sum(budgets) == pytest.approx(AUTO_MEMORY_SHARE * available, rel=0.1)
        assert g.wait_for_topology(timeout=20) and all(r.fresh() for r in reps)
        held = lazy_copies_bytes()
        assert held == sum(r.copy_bytes for r in reps) > 0
        # a second graph object in the same process gets what is left of the same budget
        with connect(cluster_dict([[s] for s in servers], deadline_s=20), shared_memory=False) as g2:
            available = psutil.virtual_memory().available
            g2.expect_multihop_sampling()
            left = AUTO_MEMORY_SHARE * (available + held) - held
            assert sum(r.max_bytes for r in g2.backends) == pytest.approx(left, rel=0.1)
            assert g2.wait_for_topology(timeout=20)
            assert lazy_copies_bytes() == 2 * held
        assert lazy_copies_bytes() == held  # a closed graph's copies leave the budget


def test_replica_off_never_copies(world):
    arrays, store, fleet, servers, ref = world
    with connect(cluster_dict([[s] for s in servers], deadline_s=20), topology_replica=False) as g:
        assert not any(isinstance(b, TopologyReplica) for b in g.backends)
        assert g.wait_for_topology(timeout=1)  # nothing to wait for
        users = arrays.nodes["user"]
        sampler = NeighborSampler(g.schema, [4, 3])
        same_outcome(g, ref, lambda h: edges_of(sampler, h, {"user": users}, 3), "off")



EXIT_SCRIPT = """
import sys, time
from graphplat.storage import shared
from graphplat.storage.remote import connect
from graphplat.testing.graphs import FOLLOWS
shared.SEGMENT_INFO_DEADLINE_S = 60.0  # a hung server holds a check for a minute
g = connect({"partitions": [{"partition": p, "replicas": [a]} for p, a in enumerate(sys.argv[1:])],
             "deadline_s": 5, "topology_replica": True})
assert type(g.backends[0]).__name__ == "SharedPartition", g.backends
assert type(g.backends[1]).__name__ == "TopologyReplica", g.backends
g.degrees(FOLLOWS, g.node_ids("user")[:3])
print("ready", flush=True)
time.sleep(1.5)  # the follower's checks of partition 1 now hang; partition 0's go on
print("leaving", time.monotonic(), flush=True)
"""


def test_a_process_exits_promptly_and_cleanly_while_a_server_hangs(tmp_path):
    """A script one of whose servers stopped answering (SIGSTOP) exits as soon as it is
    done: the follower's pending check of that server (an Info call waiting out its
    deadline) does not hold the interpreter at exit, and the checks of the other partition
    do not end in a traceback once the interpreter shuts down."""
    import signal
    import subprocess
    import sys

    with click_world(tmp_path, 21, [[], NO_SHM], ref=False) as (_, _, _, servers, _):
        proc = subprocess.Popen([sys.executable, "-c", EXIT_SCRIPT] + [s.address for s in servers],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready", proc.communicate(timeout=30)
            servers[1].proc.send_signal(signal.SIGSTOP)
            left = float(proc.stdout.readline().split()[1])
            _, err = proc.communicate(timeout=90)
            exited = time.monotonic()
        finally:
            servers[1].proc.send_signal(signal.SIGCONT)
            proc.kill()
        assert proc.returncode == 0, err
        assert "Traceback" not in err and "Exception in thread" not in err, err
        assert exited - left < 10, f"exit took {exited - left:.1f} s: {err}"
