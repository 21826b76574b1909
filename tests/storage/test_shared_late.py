"""Shared memory beyond a primary that published before the client connected: read
replicas publish (and republish what they followed), a client that failed over or whose
server restarted reads the segment of the server it reads from now, and a client that
connected while its server had no segment switches to one once it appears, also in a
forked child (real servers, real stores, SIGKILL)."""
from __future__ import annotations

import os
import signal
import sys
import time
import traceback

import numpy as np

import graphplat
from graphplat.storage import shared
from graphplat.storage.remote import connect
from graphplat.storage.shared import SharedPartition
from graphplat.testing.graphs import FOLLOWS, click_graph
from graphplat.testing.graphs import click_reads as reads
from graphplat.testing.parity import assert_same
from graphplat.testing.servers import Fleet, advertised, cluster_dict, segments_of, wait_for


def owned(g, ntype: str, ids, p: int) -> np.ndarray:
    """The ids of ``ids`` that partition ``p`` owns."""
    ids = np.asarray(ids)
    return ids[g.book.partition_of(ntype, ids) == p]


def test_a_replica_publishes_and_republishes_what_it_followed(tmp_path):
    arrays = click_graph(seed=21)
    store = arrays.write_store(tmp_path / "store", partitions=2)
    with Fleet(tmp_path / "logs") as fleet:
        p0, p1 = fleet.start_all([dict(store=store, partition=k, args=["--republish-after", "0"])
                                  for k in range(2)])
        r0 = fleet.start_all([dict(store=store, partition=0, replica=True,
                                   args=["--republish-after", "0.3"])])[0]
        # a primary and its replica on one host: one segment each, distinct names
        assert len(segments_of(p0)) == len(segments_of(r0)) == 1
        assert segments_of(p0) != segments_of(r0) and advertised(r0) == segments_of(r0)[0]
        with connect(cluster_dict([[r0], [p1]], deadline_s=20)) as reader, \
                connect(cluster_dict([[p0, r0], [p1]], deadline_s=20)) as writer, \
                graphplat.open_graph(store, read_only=True) as ref:
            assert all(isinstance(b, SharedPartition) for b in reader.backends)
            assert reader.backends[0].segment.name == advertised(r0)
            users, items = arrays.nodes["user"][:40], arrays.nodes["item"][:20]
            local = reader.backends[0].local_reads
            assert_same(reads(ref, users, items), reads(reader, users, items))
            assert reader.backends[0].local_reads > local
            before = advertised(r0)

            # new edges into partition 0 (online edges: the replica cannot publish them ...)
            dst = owned(writer, "user", arrays.nodes["user"], 0)[:4]
            src = arrays.nodes["user"][-4:]
            writer.add_edges(FOLLOWS, src, dst)
            wait_for(lambda: not reader.backends[0].fresh(), what="the replica to follow the write")
            time.sleep(1.0)
            assert advertised(r0) == before and reader._in_process(0) is None
            # (... until the primary compacted and the replica reloaded: it republishes)
            writer.compact()
            after = wait_for(lambda: advertised(r0) != before and advertised(r0), what="the replica's republish")
            wait_for(lambda: reader._in_process(0) is not None, what="in-process reads from the replica")
            assert reader.backends[0].segment.name == after and reader.backends[0].switches == 1
            assert len(segments_of(r0)) == 1
            with graphplat.open_graph(store, read_only=True) as now:
                local = reader.backends[0].local_reads
                assert_same(reads(now, users, items), reads(reader, users, items))
                assert reader.backends[0].local_reads > local
            assert set(src.tolist()) <= set(reader.sample_neighbors(FOLLOWS, dst, -1).neighbors.tolist())

            # feature updates leave the replica publishable: it republishes once they are quiet
            writer.update_features("user", dst, {"feat": np.full((4, 4), 5, np.float32)})
            wait_for(lambda: advertised(r0) not in (before, after), what="the replica's next republish")
            wait_for(lambda: reader._in_process(0) is not None, what="in-process reads again")
            np.testing.assert_array_equal(reader.node_features("user", dst)["feat"], np.full((4, 4), 5))
            assert reader.backends[0].local_reads > local

        # SIGKILL of the replica: its segment outlives it, the restarted replica removes it
        dead, old = r0.proc.pid, segments_of(r0)
        r0.kill()
        assert [(shared.SHM_DIR / n).exists() for n in old] == [True]
        r0.start().wait_ready()
        assert not [p for p in shared.SHM_DIR.glob("graphplat-*") if f"-{dead}-" in p.name]
        assert len(segments_of(r0)) == 1


def test_a_client_that_failed_over_reads_the_replicas_segment_never_older_than_its_write(tmp_path):
    arrays = click_graph(seed=22)
    store = arrays.write_store(tmp_path / "store", partitions=1)
    with Fleet(tmp_path / "logs") as fleet:
        primary = fleet.start_all([dict(store=store, partition=0, args=["--republish-after", "0"])])[0]
        replica = fleet.start(store, 0, replica=True, args=["--republish-after", "0.5",
                                                            "--follow-interval", "1"]).wait_ready()
        with connect(cluster_dict([[primary, replica]], deadline_s=20)) as g:
            assert g.backends[0].segment.name == advertised(primary)
            users = arrays.nodes["user"][:5]
            g.update_features("user", users, {"feat": np.full((5, 4), 9, np.float32)})
            acked = g.clients[0].acked_seq
            primary.kill()  # the client fails over to the replica, which has not followed yet
            replica_segments = set()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                np.testing.assert_array_equal(g.node_features("user", users)["feat"], np.full((5, 4), 9))
                b = g.backends[0]
                if b.segment.pid == replica.proc.pid:
                    replica_segments.add(b.segment.name)
                if g._in_process(0) is not None:
                    # never a segment older than the client's own write
                    assert b.segment.seq >= acked and b.segment.pid == replica.proc.pid
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("the client never read the replica's segment in process")
            assert replica_segments and g.backends[0].local_reads > 0
            np.testing.assert_array_equal(g.node_features("user", users)["feat"], np.full((5, 4), 9))


def test_after_a_sigkill_and_restart_the_client_reads_the_new_segment(tmp_path):
    arrays = click_graph(seed=23)
    store = arrays.write_store(tmp_path / "store", partitions=1)
    with Fleet(tmp_path / "logs") as fleet:
        replica = fleet.start_all([dict(store=store, partition=0, replica=True)])[0]
        with connect(cluster_dict([[replica]], deadline_s=20)) as g:
            first = g.backends[0].segment.name
            users = arrays.nodes["user"][:10]
            want = g.node_features("user", users)
            replica.kill()
            replica.start().wait_ready()
            assert not (shared.SHM_DIR / first).exists()  # the restarted server removed it
            wait_for(lambda: g._in_process(0) is not None, what="the restarted server's segment")
            assert g.backends[0].segment.name == advertised(replica) != first
            assert_same(want, g.node_features("user", users))


def _child_reads_until_shared(g, server, users, items, timeout: float = 30.0) -> None:
    """In a forked child: read until partition 0 is a SharedPartition read in process,
    then check its answers against the server's over gRPC; exits 0 when they agree."""
    code = 1
    try:
        deadline = time.monotonic() + timeout
        while not (isinstance(g.backends[0], SharedPartition) and g._in_process(0) is not None):
            if time.monotonic() > deadline:
                raise AssertionError("the child never switched to shared memory")
            g.node_features("user", users)
            time.sleep(0.05)
        plain = connect(cluster_dict([[server]], deadline_s=20, shared_memory=False))
        assert_same(reads(plain, users, items), reads(g, users, items))
        assert g.backends[0].local_reads > 0
        code = 0
    except BaseException:  # noqa: BLE001 - reported through the exit code
        traceback.print_exc()
        sys.stderr.flush()
    os._exit(code)


def test_a_client_that_connected_without_a_segment_switches_when_one_appears(tmp_path):
    arrays = click_graph(seed=24)
    store = arrays.write_store(tmp_path / "store", partitions=1)
    with Fleet(tmp_path / "logs") as fleet:
        server = fleet.start_all([dict(store=store, partition=0, args=["--republish-after", "0"])])[0]
        users, items = arrays.nodes["user"][:40], arrays.nodes["item"][:20]
        with connect(cluster_dict([[server]], deadline_s=20)) as w:
            w.add_edges(FOLLOWS, users[:3], users[3:6])
        # restarted with online edges in its log: nothing published at load
        server.kill()
        server.start().wait_ready()
        assert advertised(server) == "" and segments_of(server) == []
        with connect(cluster_dict([[server]], deadline_s=20)) as g, \
                connect(cluster_dict([[server]], deadline_s=20, shared_memory=False)) as plain:
            assert not isinstance(g.backends[0], SharedPartition) and g.partitions_over_network == 1
            assert_same(reads(plain, users, items), reads(g, users, items))
            child = os.fork()
            if child == 0:
                _child_reads_until_shared(g, server, users, items)
            try:
                time.sleep(1.5)  # a few rounds of asking Info without a segment
                assert not isinstance(g.backends[0], SharedPartition)
                plain.compact()  # the server publishes the compacted partition
                wait_for(lambda: isinstance(g.backends[0], SharedPartition), what="the switch")
                wait_for(lambda: g._in_process(0) is not None, what="in-process reads")
                assert g.partitions_over_network == 0
                with graphplat.open_graph(store, read_only=True) as ref:
                    local = g.backends[0].local_reads
                    assert_same(reads(ref, users, items), reads(g, users, items))
                    assert g.backends[0].local_reads > local
                assert set(users[:3].tolist()) <= set(g.sample_neighbors(FOLLOWS, users[3:6], -1).neighbors.tolist())
                _, status = os.waitpid(child, 0)
                child = 0
                assert os.waitstatus_to_exitcode(status) == 0, "the forked child did not switch"
            finally:
                if child:
                    os.kill(child, signal.SIGKILL)
                    os.waitpid(child, 0)
