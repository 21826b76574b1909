"""Operator-level guarantees of graph servers (issue 17), on real ``graphplat serve``
processes (127.0.0.1, RocksDB under tmp_path, SIGKILL for crashes): read-your-writes across
failover, ..."""
from __future__ import annotations

import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from graphplat.proto import common_pb2 as cpb  # noqa: E402
from graphplat.proto import graphplat_pb2 as pb  # noqa: E402
from graphplat.proto import graphplat_pb2_grpc as pb_grpc  # noqa: E402
from graphplat.schema import GraphSchema  # noqa: E402
from graphplat.storage import codec  # noqa: E402
from graphplat.storage.freshness import MIN_SEQ_KEY  # noqa: E402
from graphplat.storage.partition_book import PartitionBook  # noqa: E402
from graphplat.storage.partition_data import split_into_partitions  # noqa: E402
from graphplat.storage.remote import connect  # noqa: E402
from graphplat.storage.store import create_store  # noqa: E402
from graphplat.testing.servers import Fleet, cluster_dict  # noqa: E402

SCHEMA = GraphSchema.from_yaml("""
node_types:
  user: {features: {age: int64}}
  review: {features: {score: float32}}
edge_types:
  - {src: user, relation: wrote, dst: review, reverse: true}
""")
WROTE = ("user", "wrote", "review")
P = 2


def small_edges(seed: int = 0):
    """(users, reviews, src, dst) of the small store: 40 users, 60 reviews, 120 edges."""
    rng = np.random.default_rng(seed)
    users = np.arange(1000, 1040)
    reviews = np.arange(5000, 5060)
    return users, reviews, users[rng.integers(0, 40, 120)], reviews[rng.integers(0, 60, 120)]


def small_store(path: Path, seed: int = 0) -> Path:
    """A 2-partition store of :func:`small_edges` with an int and a float feature."""
    rng = np.random.default_rng(seed + 1)
    users, reviews, src, dst = small_edges(seed)
    book = PartitionBook(P)
    parts = split_into_partitions(
        SCHEMA, book, {"user": users, "review": reviews},
        {"user": {"age": rng.integers(0, 90, 40)}, "review": {"score": rng.random(60, dtype=np.float32)}},
        {WROTE: (src, dst)})
    return create_store(path, parts, book)


# ----------------------------------------------------------------------------- read-your-writes

def test_read_your_writes_after_primary_failover(tmp_path):
    """After the primary of partition 0 is SIGKILLed (reads fail over to its replica) and
    restarted, every write is visible to the very next call, although the replica only
    follows the log every 5 s."""
    store = small_store(tmp_path / "s")
    fleet = Fleet(tmp_path / "logs")
    try:
        prim = fleet.start_all([dict(store=store, partition=k) for k in range(P)])
        reps = fleet.start_all([dict(store=store, partition=k, replica=True,
                                     args=["--follow-interval", "5", "--read-wait", "0.2"])
                                for k in range(P)])
        with connect(cluster_dict([[prim[k], reps[k]] for k in range(P)], deadline_s=20)) as g:
            assert g.lookup("user", [1000]).all()
            prim[0].kill()
            assert g.lookup("user", np.arange(1000, 1040)).all()  # read from replica 0
            assert g.clients[0]._current == 1
            prim[0].restart().wait_ready()
            book = g.book
            for k in range(50):
                ids = np.array([10**6 + 2 * k, 10**6 + 2 * k + 1])
                g.add_nodes("review", ids)
                assert g.lookup("review", ids).all(), f"round {k}: add_nodes not visible"
                u = np.array([2 * 10**6 + k])
                g.add_nodes("user", u, {"age": [k]})
                eids = g.add_edges(WROTE, np.repeat(u, 2), ids)
                assert len(eids) == 2
                assert g.has_edges(WROTE, np.repeat(u, 2), ids).all()
            assert {int(book.partition_of("user", [2 * 10**6 + k])[0]) for k in range(50)} == {0, 1}
            assert g.clients[0]._current == 0  # back on the primary
    finally:
        fleet.close()


def test_lagging_replica_waits_then_refuses(tmp_path):
    """A read carrying a seq the replica has not applied waits for it (bounded) and is
    answered UNAVAILABLE (naming both seqs) if it never arrives."""
    store = small_store(tmp_path / "s")
    fleet = Fleet(tmp_path / "logs")
    try:
        prim, rep = fleet.start_all([dict(store=store, partition=0),
                                     dict(store=store, partition=0, replica=True,
                                          args=["--read-wait", "1"])])
        with connect(cluster_dict([[prim], [fleet.start(store, 1).wait_ready()]])) as g:
            ids = np.array([7 * 10**6 + i for i in range(40)])
            ids = ids[g.book.partition_of("review", ids) == 0][:3]
            g.add_nodes("review", ids)
            seq = g.clients[0].acked_seq
            assert seq >= 0
        ch = grpc.insecure_channel(rep.address)
        stub = pb_grpc.GraphPartitionStub(ch)
        req = pb.LookupRequest(ntype="review", ids=codec.to_array(ids))
        # follows every 0.1 s: the wait covers the lag
        got = stub.Lookup(req, timeout=5, metadata=((MIN_SEQ_KEY, str(seq)),))
        assert codec.from_array(got.array).all()
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as ei:
            stub.Lookup(req, timeout=5, metadata=((MIN_SEQ_KEY, str(seq + 1000)),))
        assert ei.value.code() == grpc.StatusCode.UNAVAILABLE
        assert f"seq {seq + 1000}" in ei.value.details() and 0.9 < time.monotonic() - t0 < 3
        ch.close()
    finally:
        fleet.close()


# ----------------------------------------------------------------------------- damaged write log

def _own(book, ntype, ids, k=0):
    ids = np.asarray(ids)
    return ids[book.partition_of(ntype, ids) == k]


def _write_then_sigkill(store, fleet, n):
    """``n`` acknowledged single-node writes to partition 0's primary, then SIGKILL (the
    records stay in RocksDB's WAL). Returns (server, ids written in order)."""
    from graphplat.storage.client import PartitionClient

    s = fleet.start(store, 0).wait_ready()
    ids = _own(PartitionBook(P), "review", np.arange(10**6, 10**6 + 4 * n))[:n]
    c = PartitionClient([s.address], 0, deadline_s=10)
    for i in ids:
        c.add_nodes("review", [i])
    c.close()
    s.kill()
    return s, ids


def _wal(store):
    (wal,) = sorted((Path(store) / "part-0").glob("*.log"))
    return wal


@pytest.mark.parametrize("where", [0.5, 0.1])
def test_damaged_log_refuses_to_start_unless_accepted(tmp_path, where):
    store = small_store(tmp_path / "s")
    fleet = Fleet(tmp_path / "logs")
    try:
        s, ids = _write_then_sigkill(store, fleet, 200)
        wal = _wal(store)
        data = bytearray(wal.read_bytes())
        at = int(len(data) * where)
        data[at:at + 16] = bytes(b ^ 0xFF for b in data[at:at + 16])
        wal.write_bytes(bytes(data))
        s.start()
        with pytest.raises(RuntimeError, match="exited with 1") as ei:
            s.wait_ready()
        msg = str(ei.value)
        assert "write log is damaged" in msg and str(wal) in msg and "--accept-log-loss" in msg
        offsets = [int(x) for x in msg.split("between byte offsets ")[1].split(":")[0].split(" and ")]
        assert offsets[0] <= at + 16 and offsets[1] >= at
        from graphplat.errors import LogCorruption
        from graphplat.storage.local import open_graph
        with pytest.raises(LogCorruption, match="between byte offsets"):
            open_graph(store)
        # the embedded path refuses too: the refusal changed nothing on disk
        s.args = ["--accept-log-loss"]
        s.restart().wait_ready()
        assert "accepted the loss" in s.log()
        from graphplat.storage.client import PartitionClient
        c = PartitionClient([s.address], 0, deadline_s=10)
        present = c.lookup("review", ids)
        assert 0 < present.sum() < len(ids) and present[:present.sum()].all()
        c.close()
    finally:
        fleet.close()


def test_torn_last_record_is_dropped_silently(tmp_path):
    store = small_store(tmp_path / "s")
    fleet = Fleet(tmp_path / "logs")
    try:
        s, ids = _write_then_sigkill(store, fleet, 50)
        wal = _wal(store)
        data = wal.read_bytes()
        wal.write_bytes(data[:-20])  # the last write was cut short
        s.restart().wait_ready()
        from graphplat.storage.client import PartitionClient
        c = PartitionClient([s.address], 0, deadline_s=10)
        assert c.lookup("review", ids).tolist() == [True] * 49 + [False]
        c.close()
    finally:
        fleet.close()


# ----------------------------------------------------------------------------- torn edge writes

def test_edge_write_torn_by_a_crash_is_completed_by_a_retry(tmp_path):
    """The partition holding the out-copy is SIGKILLed between the two halves of an edge
    write: the call raises with a write id; after a restart, the retry with that id adds
    the missing out-copy and no second in-copy."""
    from graphplat.storage.client import PartitionUnavailable

    store = small_store(tmp_path / "s")
    fleet = Fleet(tmp_path / "logs")
    try:
        servers = fleet.start_all([dict(store=store, partition=k) for k in range(P)])
        book = PartitionBook(P)
        u = _own(book, "user", np.arange(3 * 10**6, 3 * 10**6 + 50), 1)[:1]  # out-copy on 1
        r = _own(book, "review", np.arange(4 * 10**6, 4 * 10**6 + 50), 0)[:1]  # in-copy on 0
        with connect(cluster_dict([[s] for s in servers], deadline_s=3, retries=50)) as g:
            g.add_nodes("user", u)
            g.add_nodes("review", r)
            out_client = g.clients[1]
            real = out_client.add_edges_out

            def crash_then_write(*a, **kw):
                servers[1].kill()  # after the in-copy was acknowledged by partition 0
                return real(*a, **kw)

            out_client.add_edges_out = crash_then_write
            with pytest.raises(PartitionUnavailable) as ei:
                g.add_edges(WROTE, u, r)
            wid = ei.value.write_id
            out_client.add_edges_out = real
            servers[1].restart().wait_ready()
            eids = g.add_edges(WROTE, u, r, write_id=wid)
            again = g.add_edges(WROTE, u, r, write_id=wid)  # a second retry changes nothing
            assert np.array_equal(eids, again)
            ins = g.sample_neighbors(WROTE, r, -1, strategy="full", direction="in")
            outs = g.sample_neighbors(WROTE, u, -1, strategy="full", direction="out")
            assert ins.neighbors.tolist() == u.tolist() and outs.neighbors.tolist() == r.tolist()
            assert ins.eids.tolist() == outs.eids.tolist() == eids.tolist()
        # the same after both partitions restart (the ids were logged with the writes)
        for s in servers:
            s.restart()
        for s in servers:
            s.wait_ready()
        with connect(cluster_dict([[s] for s in servers])) as g:
            assert np.array_equal(g.add_edges(WROTE, u, r, write_id=wid), eids)
            assert g.sample_neighbors(WROTE, u, -1, strategy="full", direction="out").counts.tolist() == [1]
            assert g.sample_neighbors(WROTE, r, -1, strategy="full").counts.tolist() == [1]
    finally:
        fleet.close()


# ----------------------------------------------------------------------------- write validation

def test_servers_validate_edge_endpoints_and_edge_ids(tmp_path):
    """Forged AddEdgesIn/AddEdgesOut (sent straight over gRPC, bypassing the client's
    checks) are INVALID_ARGUMENT and change nothing."""
    store = small_store(tmp_path / "s")
    fleet = Fleet(tmp_path / "logs")
    try:
        servers = fleet.start_all([dict(store=store, partition=k) for k in range(P)])
        book = PartitionBook(P)
        ghost = _own(book, "user", np.arange(987654321987, 987654321987 + 40), 0)[:1]
        r0 = _own(book, "review", np.arange(5000, 5060), 0)[:1]
        r1 = _own(book, "review", np.arange(5000, 5060), 1)[:1]
        u0 = _own(book, "user", np.arange(1000, 1040), 0)[:1]
        stubs = [pb_grpc.GraphPartitionStub(grpc.insecure_channel(s.address)) for s in servers]
        et = codec.etype_msg(WROTE)

        def refused(call, req, words):
            with pytest.raises(grpc.RpcError) as ei:
                call(req, timeout=5)
            assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT, ei.value.details()
            assert words in ei.value.details()

        before = [stubs[k].Info(pb.InfoRequest(), timeout=5).applied_seq for k in range(P)]
        refused(stubs[0].AddEdgesIn, pb.AddEdgesInRequest(
            etype=et, src=codec.to_array(ghost), dst=codec.to_array(r0)), "are not 'user' nodes")
        # an edge id of partition 1 for an edge whose destination partition 0 owns
        refused(stubs[0].AddEdgesOut, pb.AddEdgesOutRequest(
            etype=et, src=codec.to_array(u0), dst=codec.to_array(r0),
            eids=codec.to_array([(1 << 40) | 3])), "were not assigned")
        # partition 0 never assigned edge id 10**9 of its own
        refused(stubs[0].AddEdgesOut, pb.AddEdgesOutRequest(
            etype=et, src=codec.to_array(u0), dst=codec.to_array(r0),
            eids=codec.to_array([10**9])), "were not assigned")
        refused(stubs[0].AddEdgesOut, pb.AddEdgesOutRequest(
            etype=et, src=codec.to_array(np.repeat(u0, 2)), dst=codec.to_array(np.repeat(r1, 2)),
            eids=codec.to_array([(1 << 40) | 1, (1 << 40) | 1])), "distinct")
        # a well-formed out-copy of an edge partition 1 owns is accepted
        stubs[0].AddEdgesOut(pb.AddEdgesOutRequest(
            etype=et, src=codec.to_array(u0), dst=codec.to_array(r1),
            eids=codec.to_array([(1 << 40) | 2])), timeout=5)
        after = [stubs[k].Info(pb.InfoRequest(), timeout=5).applied_seq for k in range(P)]
        assert after == [before[0] + 1, before[1]]
        with connect(cluster_dict([[s] for s in servers])) as g:
            s = g.sample_neighbors(WROTE, r0, -1, strategy="full")
            assert int(ghost[0]) not in s.neighbors.tolist()
    finally:
        fleet.close()


def _edge_in(src, dst, rid=""):
    return pb.AddEdgesInRequest(request_id=rid, etype=codec.etype_msg(WROTE),
                                src=codec.to_array(src), dst=codec.to_array(dst))


def _code(call, req) -> str:
    try:
        call(req, timeout=15)
        return "OK"
    except grpc.RpcError as e:
        return e.code().name


def test_endpoints_of_other_partitions_are_checked_with_their_owner(tmp_path):
    """A forged AddEdgesIn whose source another partition owns: INVALID_ARGUMENT when the
    owner has no such node; when the owner's primary is down its replica may confirm an
    existing node, and with every server of the owner down the write is UNAVAILABLE
    (retryable) and not applied; a repeated request id is still answered; a server
    without a cluster file refuses such writes (FAILED_PRECONDITION); add_edges works."""
    from graphplat.testing.servers import ServerProcess

    store = small_store(tmp_path / "s")
    fleet = Fleet(tmp_path / "logs")
    try:
        fast = ["--peer-timeout", "1"]
        p0, p1, p1r = fleet.start_all([dict(store=store, partition=0, args=fast),
                                       dict(store=store, partition=1, args=fast),
                                       dict(store=store, partition=1, replica=True, args=fast)])
        book = PartitionBook(P)
        ghost = _own(book, "user", np.arange(987654321987, 987654321987 + 40), 1)[:1]
        ghost_review = _own(book, "review", np.arange(987654321987, 987654321987 + 40), 1)[:1]
        u0 = _own(book, "user", np.arange(1000, 1040), 0)[:1]
        u1 = _own(book, "user", np.arange(1000, 1040), 1)[:2]
        r0 = _own(book, "review", np.arange(5000, 5060), 0)[:1]
        stub = pb_grpc.GraphPartitionStub(grpc.insecure_channel(p0.address))

        def seq():
            return stub.Info(pb.InfoRequest(), timeout=5).applied_seq

        before = seq()
        with pytest.raises(grpc.RpcError) as ei:
            stub.AddEdgesIn(_edge_in(ghost, r0), timeout=15)
        assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT, ei.value.details()
        assert "checked with partition 1" in ei.value.details()
        with pytest.raises(grpc.RpcError) as ei:  # the out-copy's destination likewise
            stub.AddEdgesOut(pb.AddEdgesOutRequest(
                etype=codec.etype_msg(WROTE), src=codec.to_array(u0),
                dst=codec.to_array(ghost_review), eids=codec.to_array([(1 << 40) | 2])), timeout=15)
        assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT, ei.value.details()
        assert seq() == before
        first = stub.AddEdgesIn(_edge_in(u1[:1], r0, "edge-1"), timeout=15)  # a real source
        assert seq() == before + 1

        p1.kill()  # the owner's replica confirms nodes that exist, not ones it lacks
        assert _code(stub.AddEdgesIn, _edge_in(u1[1:], r0)) == "OK"
        assert _code(stub.AddEdgesIn, _edge_in(ghost, r0)) == "UNAVAILABLE"
        assert seq() == before + 2
        p1r.kill()  # no server of partition 1: retryable, nothing stored
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as ei:
            stub.AddEdgesIn(_edge_in(u1[:1], r0), timeout=15)
        assert ei.value.code() == grpc.StatusCode.UNAVAILABLE, ei.value.details()
        assert "not applied" in ei.value.details() and time.monotonic() - t0 < 5
        assert _code(stub.AddEdgesIn, _edge_in(ghost, r0)) == "UNAVAILABLE"
        assert seq() == before + 2
        again = stub.AddEdgesIn(_edge_in(u1[:1], r0, "edge-1"), timeout=15)  # a retry: answered
        assert again.duplicate and again.seq == first.seq

        p1.restart().wait_ready()
        p1r.restart().wait_ready()
        with connect(cluster_dict([[p0], [p1, p1r]])) as g:
            g.add_edges(WROTE, src=np.concatenate([u1, u0]), dst=np.repeat(r0, 3))
            with pytest.raises(ValueError, match="not 'user' nodes"):
                g.add_edges(WROTE, src=ghost, dst=r0)
            s = g.sample_neighbors(WROTE, r0, -1, strategy="full")
            assert int(ghost[0]) not in s.neighbors.tolist()
            assert np.count_nonzero(s.neighbors == u1[0]) >= 2

        # a server that does not know its peers cannot check: refused, not trusted
        lone = ServerProcess(store, 0, fleet.workdir)
        fleet.servers.append(lone)
        p0.terminate()
        lone.start().wait_ready()
        lone_stub = pb_grpc.GraphPartitionStub(grpc.insecure_channel(lone.address))
        with pytest.raises(grpc.RpcError) as ei:
            lone_stub.AddEdgesIn(_edge_in(u1[:1], r0), timeout=15)
        assert ei.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "--cluster" in ei.value.details()
    finally:
        fleet.close()


# ----------------------------------------------------------------------------- schema fingerprint

def _mismatch_line(text: str) -> str:
    return next(line for line in text.splitlines() if "does not match the schema" in line)


@pytest.mark.parametrize("edit", ["width", "extra_edge_type", "no_fingerprint_in_store_json"])
def test_edited_schema_is_refused_by_server_and_open_graph(tmp_path, edit):
    import json

    from graphplat.storage.local import open_graph

    store = small_store(tmp_path / "s")
    path = store / "schema.yaml"
    text = path.read_text()
    if edit == "extra_edge_type":
        edited = SCHEMA.to_yaml().replace("edge_types:\n", "edge_types:\n- [review, about, user]\n")
        assert edited != SCHEMA.to_yaml()
        path.write_text(edited)
    else:
        path.write_text(text.replace("score: float32", "score: 'float32[3]'"))
        assert path.read_text() != text
    if edit == "no_fingerprint_in_store_json":  # a store written before fingerprints
        meta = json.loads((store / "store.json").read_text())
        del meta["schema_fingerprint"]
        (store / "store.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="does not match the schema") as ei:
        open_graph(store)
    fleet = Fleet(tmp_path / "logs")
    try:
        s = fleet.start(store, 0)
        with pytest.raises(RuntimeError, match="exited with 1") as si:
            s.wait_ready()
        assert str(ei.value) in _mismatch_line(str(si.value))
    finally:
        fleet.close()
    path.write_text(text)  # restored: both open again
    open_graph(store).close()


# ----------------------------------------------------------------------------- full disk

@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs (needs root and mount(2); skipped with the reason otherwise)."""
    import os
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("a full-disk test needs root to mount a small tmpfs")
    mnt = tmp_path / "fs"
    mnt.mkdir()
    got = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
                         capture_output=True, text=True)
    if got.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {got.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(path: Path) -> None:
    import os

    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"x" * 65536)
    except OSError:
        pass
    try:
        while True:
            os.write(fd, b"x" * 512)
    except OSError:
        pass
    os.close(fd)


def _write_health(address: str) -> str:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from graphplat.storage.server import WRITE_HEALTH
    with grpc.insecure_channel(address) as ch:
        got = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=WRITE_HEALTH),
                                                   timeout=5)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(got.status)


def _poll(fn, want, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got == want:
            return got
        time.sleep(0.1)
    return fn()


def test_full_disk_refuses_writes_then_resumes_by_itself(small_disk, tmp_path):
    from graphplat.storage.client import PartitionClient

    store = small_store(small_disk / "s")
    fleet = Fleet(tmp_path / "logs")
    try:
        s = fleet.start(store, 0).wait_ready()
        assert _write_health(s.address) == "SERVING"
        c = PartitionClient([s.address], 0, deadline_s=10)
        ids = _own(PartitionBook(P), "review", np.arange(10**6, 10**6 + 8000))
        acked, k = [], 0
        c.add_nodes("review", ids[k:k + 1])
        acked.append(ids[k])
        k += 1
        _fill(small_disk / "filler")
        errors = []
        for _ in range(400):  # RocksDB may have a little WAL space left
            try:
                c.add_nodes("review", ids[k:k + 1])
                acked.append(ids[k])
            except OSError as e:
                errors.append(e)
                break
            finally:
                k += 1
        assert errors and "disk is full" in str(errors[0]), errors
        stub = pb_grpc.GraphPartitionStub(grpc.insecure_channel(s.address))
        with pytest.raises(grpc.RpcError) as ei:
            stub.AddNodes(pb.AddNodesRequest(ntype="review", ids=codec.to_array(ids[k:k + 1])), timeout=5)
        k += 1
        assert ei.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert _poll(lambda: _write_health(s.address), "NOT_SERVING") == "NOT_SERVING"
        assert c.lookup("review", np.array(acked)).all()  # reads go on
        (small_disk / "filler").unlink()
        assert _poll(lambda: _write_health(s.address), "SERVING") == "SERVING"
        for _ in range(5):
            c.add_nodes("review", ids[k:k + 1])
            acked.append(ids[k])
            k += 1
        c.close()
        s.kill()
        s.restart().wait_ready()
        c = PartitionClient([s.address], 0, deadline_s=10)
        assert c.lookup("review", np.array(acked)).all()
        c.close()
    finally:
        fleet.close()


# ----------------------------------------------------------------------------- resource limits

def _rss(server) -> int:
    """Peak resident memory of a server process so far (VmHWM), in bytes."""
    with open(f"/proc/{server.proc.pid}/status") as f:
        return int(next(line for line in f if line.startswith("VmHWM")).split()[1]) << 10


def _connections(server) -> int:
    import psutil
    return sum(1 for c in psutil.Process(server.proc.pid).net_connections("tcp")
               if c.laddr and c.laddr.port == server.port and c.status == "ESTABLISHED")


def test_idle_connections_are_closed(tmp_path):
    store = small_store(tmp_path / "s")
    fleet = Fleet(tmp_path / "logs")
    try:
        s = fleet.start(store, 0, args=["--idle-timeout", "1"]).wait_ready()
        channels = [grpc.insecure_channel(s.address, options=[("grpc.use_local_subchannel_pool", 1)])
                    for _ in range(30)]
        for ch in channels:
            pb_grpc.GraphPartitionStub(ch).Info(pb.InfoRequest(), timeout=5)
        assert _connections(s) >= 30
        assert _poll(lambda: _connections(s) <= 2, True, timeout=10), _connections(s)
        # a closed idle channel reconnects transparently
        assert pb_grpc.GraphPartitionStub(channels[0]).Info(pb.InfoRequest(), timeout=5).partition == 0
        for ch in channels:
            ch.close()
    finally:
        fleet.close()


def test_unread_streams_cannot_starve_other_callers(tmp_path):
    from graphplat.storage.local import open_graph

    store = small_store(tmp_path / "s")
    g = open_graph(store)
    many = _own(g.book, "user", np.arange(10**7, 10**7 + 600_000))
    g.add_nodes("user", many)
    g.close()
    fleet = Fleet(tmp_path / "logs")
    try:
        s = fleet.start(store, 0, args=["--threads", "4", "--max-streams", "1",
                                        "--stream-deadline", "3"]).wait_ready()
        chans = [grpc.insecure_channel(s.address, options=[("grpc.use_local_subchannel_pool", 1)])
                 for _ in range(8)]
        streams = [pb_grpc.GraphPartitionStub(ch).NodeIds(pb.NodeIdsRequest(ntype="user", chunk_size=1000),
                                                          timeout=30) for ch in chans]
        time.sleep(0.5)  # nobody reads them
        stub = pb_grpc.GraphPartitionStub(grpc.insecure_channel(s.address))
        t0 = time.monotonic()
        for _ in range(20):
            stub.Lookup(pb.LookupRequest(ntype="user", ids=codec.to_array(many[:10])), timeout=2)
        assert time.monotonic() - t0 < 2
        codes = []
        for st in streams:
            try:
                for _ in st:
                    pass
                codes.append("OK")
            except grpc.RpcError as e:
                codes.append(e.code().name)
        # one stream held the only slot until its deadline cancelled it; the rest were refused
        assert codes.count("RESOURCE_EXHAUSTED") >= 6, codes
        assert set(codes) <= {"RESOURCE_EXHAUSTED", "CANCELLED", "OK"}, codes
        for ch in chans:
            ch.close()
    finally:
        fleet.close()


def test_overload_is_resource_exhausted_counted_and_retried(tmp_path):
    import threading
    import urllib.request

    from graphplat.storage.client import PartitionClient

    store = small_store(tmp_path / "s")
    fleet = Fleet(tmp_path / "logs")
    try:
        s = fleet.start(store, 0, metrics=True, args=["--threads", "4", "--max-concurrent-rpcs", "3",
                                                      "--read-wait", "1.5"]).wait_ready()
        stub = pb_grpc.GraphPartitionStub(grpc.insecure_channel(s.address))
        req = pb.LookupRequest(ntype="review", ids=codec.to_array([5000]))
        codes = []

        def slow():  # waits --read-wait for a seq that never comes, holding its slot
            try:
                stub.Lookup(req, timeout=10, metadata=((MIN_SEQ_KEY, "999999"),))
                codes.append("OK")
            except grpc.RpcError as e:
                codes.append(e.code().name)

        threads = [threading.Thread(target=slow) for _ in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as ei:
            stub.Lookup(req, timeout=5)
        assert ei.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and time.monotonic() - t0 < 0.5
        c = PartitionClient([s.address], 0, deadline_s=10, backoff=0.2)
        assert c.lookup("review", [5000]).tolist() == [True]  # backed off until a slot was free
        assert time.monotonic() - t0 > 0.8
        for t in threads:
            t.join()
        assert codes == ["UNAVAILABLE"] * 3
        text = urllib.request.urlopen(f"http://127.0.0.1:{s.metrics_port}/metrics", timeout=5).read().decode()
        refused = [line for line in text.splitlines()
                   if line.startswith('graphplat_requests_total{code="RESOURCE_EXHAUSTED",method="Lookup"}')]
        assert refused and float(refused[0].split()[-1]) >= 2, refused
        c.close()
    finally:
        fleet.close()


def _metric(port: int, code: str, method: str) -> float:
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    want = f'graphplat_requests_total{{code="{code}",method="{method}"}}'
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(want))


def test_burst_far_above_the_limit_is_refused_resource_exhausted_and_counted(tmp_path):
    """8,000 concurrent calls on fresh connections against 4 call slots: every call is OK
    or RESOURCE_EXHAUSTED (gRPC's HTTP/2 overload protection used to reset some streams,
    UNAVAILABLE "Stream removed", uncounted), the server's metric counts exactly the
    refusals, and PartitionClient calls made during a burst all succeed by backing off."""
    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor

    from graphplat.storage.client import PartitionClient

    store = small_store(tmp_path / "s")
    fleet = Fleet(tmp_path / "logs")
    try:
        s = fleet.start(store, 0, metrics=True,
                        args=["--threads", "2", "--max-concurrent-rpcs", "4"]).wait_ready()
        reviews = _own(PartitionBook(P), "review", np.arange(5000, 5060))
        req = pb.SampleNeighborsRequest(etype=codec.etype_msg(WROTE), seeds=codec.to_array(reviews),
                                        fanout=20)

        def burst(n_channels: int, calls: int):
            chans = [grpc.insecure_channel(s.address, options=[("grpc.use_local_subchannel_pool", 1)])
                     for _ in range(n_channels)]
            stubs = [pb_grpc.GraphPartitionStub(c) for c in chans]

            def one(i):
                try:
                    stubs[i % n_channels].SampleNeighbors(req, timeout=60)
                    return "OK"
                except grpc.RpcError as e:
                    return e.code().name
            with ThreadPoolExecutor(96) as pool:
                codes = Counter(pool.map(one, range(calls)))
            for c in chans:
                c.close()
            return codes

        codes = Counter()
        for _ in range(4):  # fresh connections each time: refusals came at a connection's start
            codes += burst(2, 2000)
        assert set(codes) <= {"OK", "RESOURCE_EXHAUSTED"}, codes
        assert codes["RESOURCE_EXHAUSTED"] > 1000, codes
        assert _metric(s.metrics_port, "RESOURCE_EXHAUSTED", "SampleNeighbors") == codes["RESOURCE_EXHAUSTED"]
        assert _metric(s.metrics_port, "OK", "SampleNeighbors") == codes["OK"]

        client = PartitionClient([s.address], 0, deadline_s=60, retries=1000, backoff=0.02,
                                 max_backoff=0.2)
        with ThreadPoolExecutor(1) as bg:
            pending = bg.submit(burst, 2, 2000)
            with ThreadPoolExecutor(16) as pool:
                got = list(pool.map(lambda _: client.sample_neighbors(WROTE, reviews, 20).counts.sum(),
                                    range(160)))
            assert set(pending.result()) <= {"OK", "RESOURCE_EXHAUSTED"}
        assert len(got) == 160 and len(set(got)) == 1  # every call answered, same answer
        client.close()
    finally:
        fleet.close()


def test_answer_budget_is_checked_before_sampling(tmp_path):
    store = small_store(tmp_path / "s")
    fleet = Fleet(tmp_path / "logs")
    try:
        s = fleet.start(store, 0, args=["--max-message-mb", "1"]).wait_ready()
        stub = pb_grpc.GraphPartitionStub(grpc.insecure_channel(s.address))
        reviews = _own(PartitionBook(P), "review", np.arange(5000, 5060))
        with connect(cluster_dict([[s], [fleet.start(store, 1).wait_ready()]])) as g:
            deg = g.degrees(WROTE, reviews)
        seeds = np.repeat(reviews[deg > 0], 4000 // int((deg > 0).sum()) + 1)[:4000]
        before = _rss(s)
        with pytest.raises(grpc.RpcError) as ei:
            stub.SampleNeighbors(pb.SampleNeighborsRequest(
                etype=codec.etype_msg(WROTE), seeds=codec.to_array(seeds), fanout=10_000,
                replace=True), timeout=30)
        assert ei.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "could return 40000000 edges" in ei.value.details()
        assert _rss(s) - before < 50 << 20
        # the same seeds with a fanout that fits are answered
        got = stub.SampleNeighbors(pb.SampleNeighborsRequest(
            etype=codec.etype_msg(WROTE), seeds=codec.to_array(seeds), fanout=2), timeout=30)
        assert len(codec.from_array(got.counts)) == 4000
    finally:
        fleet.close()


def _reset_peak_rss(server) -> int:
    """Reset the server's VmHWM to its current resident size (Linux clear_refs "5"); returns it."""
    with open(f"/proc/{server.proc.pid}/clear_refs", "w") as f:
        f.write("5")
    return _rss(server)


def test_unauthenticated_large_body_is_refused_before_it_is_read(tmp_path):
    """Two unauthenticated 120 MB requests are refused UNAUTHENTICATED without the server
    ever holding the body: its peak resident memory, reset right before them, grows by less
    than the body. (Reading the body first, as a plain unary handler does, costs one copy in
    gRPC's buffers plus the parsed message: 240+ MB.) The peak is reset because the
    server's start-up peak may lie above its steady size by more than a body."""
    store = small_store(tmp_path / "s")
    fleet = Fleet(tmp_path / "logs")
    try:
        s = fleet.start(store, 0, args=["--token", "t0ken"]).wait_ready()
        ch = grpc.insecure_channel(s.address, options=[("grpc.max_send_message_length", 256 << 20)])
        call = ch.unary_unary("/graphplat.v1.GraphPartition/Lookup")
        body = pb.LookupRequest(ntype="user", ids=cpb.Array(dtype="<i8", shape=[15 << 20],
                                                           data=bytes(120 << 20))).SerializeToString()
        before = _reset_peak_rss(s)
        for _ in range(2):
            with pytest.raises(grpc.RpcError) as ei:
                call(body, timeout=30)
            assert ei.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert _rss(s) - before < 60 << 20, (_rss(s) - before) >> 20
        # the same body with the token is read (and refused for its content): the peak shows it
        before = _reset_peak_rss(s)
        with pytest.raises(grpc.RpcError) as ei:
            call(body, timeout=30, metadata=(("authorization", "Bearer t0ken"),))
        assert ei.value.code() != grpc.StatusCode.UNAUTHENTICATED
        assert _rss(s) - before > 100 << 20, (_rss(s) - before) >> 20
        ch.close()
    finally:
        fleet.close()


# ----------------------------------------------------------------------------- durability proof

class _RecordingDB:
    """Forwards to a RocksDB handle, recording for every ``write`` whether it was synced
    (WriteOptions.sync and the WAL on) and the partition's applied seq at that moment."""

    def __init__(self, db, partition):
        self._db = db
        self._partition = partition
        self.writes = []

    def write(self, batch, options=None):
        synced = options is not None and bool(options.sync) and not bool(options.disable_wal)
        self.writes.append((synced, self._partition.applied_seq))
        return self._db.write(batch) if options is None else self._db.write(batch, options)

    def __getattr__(self, name):
        return getattr(self._db, name)


def test_every_acknowledged_write_was_synced_before_it_was_applied(tmp_path):
    """Each acknowledged write is exactly one synced RocksDB write (WAL fsynced), made
    before the write was applied in memory; ``sync = False`` in the store fails this."""
    from graphplat.storage.local import open_graph

    store = small_store(tmp_path / "s")
    g = open_graph(store)
    try:
        recorders = []
        for dp in g.backends:
            rec = _RecordingDB(dp.store._db, dp)
            dp.store._db = rec
            recorders.append(rec)
        book = g.book
        users = np.array([9 * 10**6 + i for i in range(8)])
        reviews = np.array([8 * 10**6 + i for i in range(8)])
        writes = [lambda: g.add_nodes("user", users, {"age": np.arange(8)}),
                  lambda: g.add_nodes("review", reviews),
                  lambda: g.add_edges(WROTE, users, reviews),
                  lambda: g.update_features("review", reviews, {"score": np.ones(8, np.float32)})]
        for k, write in enumerate(writes):
            before = [len(r.writes) for r in recorders]
            seq_before = [dp.applied_seq for dp in g.backends]
            write()
            for p, (r, dp) in enumerate(zip(recorders, g.backends)):
                new = r.writes[before[p]:]
                acked = dp.applied_seq - seq_before[p]  # records this write added on p
                assert len(new) == acked, (k, p, new, acked)
                for synced, applied_at_write in new:
                    assert synced, f"write {k}: partition {p} acknowledged an unsynced write"
                    assert applied_at_write < dp.applied_seq  # logged before applied
        assert sum(len(r.writes) for r in recorders) >= 6
        assert {int(p) for p in book.partition_of("user", users)} == {0, 1}
    finally:
        g.close()


# ----------------------------------------------------------------------------- oracle parity

def _rows(seeds, s):
    """Per seed: (neighbors, eids) of a NeighborSample."""
    ends = np.cumsum(s.counts)
    return [(s.neighbors[e - c:e], s.eids[e - c:e]) for c, e in zip(s.counts, ends)]


def test_sampling_with_pending_writes_matches_a_brute_force_oracle(tmp_path):
    """Bulk edges plus un-compacted online edges (parallel edges included), checked
    against the raw edge list only: full neighborhoods, sizes, membership, distinct edge
    ids without replacement, both directions, and uniform inclusion of pending edges."""
    from collections import Counter

    from graphplat.storage.local import open_graph

    users, reviews, src, dst = small_edges()
    store = small_store(tmp_path / "s")
    g = open_graph(store)
    try:
        rng = np.random.default_rng(5)
        new_src = np.concatenate([users[rng.integers(0, 40, 60)], np.repeat(users[:1], 6)])
        new_dst = np.concatenate([reviews[rng.integers(0, 60, 60)], np.repeat(reviews[:1], 6)])
        for lo in range(0, len(new_src), 11):  # several pending writes
            g.add_edges(WROTE, new_src[lo:lo + 11], new_dst[lo:lo + 11])
        all_src, all_dst = np.concatenate([src, new_src]), np.concatenate([dst, new_dst])
        for direction, seeds, me, other in (("in", reviews, all_dst, all_src),
                                            ("out", users, all_src, all_dst)):
            oracle = {int(x): Counter(other[me == x].tolist()) for x in seeds}
            full = g.sample_neighbors(WROTE, seeds, -1, strategy="full", direction=direction)
            eid_of = {}
            for x, (nb, eids) in zip(seeds.tolist(), _rows(seeds, full)):
                assert Counter(nb.tolist()) == oracle[x], (direction, x)
                assert len(set(eids.tolist())) == len(eids)
                eid_of.update({int(e): (x, int(n)) for e, n in zip(eids, nb)})
            for fanout in (1, 3, 7):
                for replace in (False, True):
                    smp = g.sample_neighbors(WROTE, seeds, fanout, replace=replace,
                                             direction=direction, seed=fanout)
                    for x, (nb, eids) in zip(seeds.tolist(), _rows(seeds, smp)):
                        deg = sum(oracle[x].values())
                        want = (fanout if deg else 0) if replace else min(deg, fanout)
                        assert len(nb) == want, (direction, x, fanout, replace)
                        assert all(eid_of[int(e)] == (x, int(n)) for e, n in zip(eids, nb))
                        if not replace:
                            assert len(set(eids.tolist())) == len(eids)
        # every edge of a seed with bulk and pending edges is drawn about equally often
        r0 = reviews[:1]
        full = g.sample_neighbors(WROTE, r0, -1, strategy="full")
        deg = len(full.eids)
        assert deg >= 7
        hits = Counter()
        rounds = 600
        for k in range(rounds):
            hits.update(g.sample_neighbors(WROTE, r0, 3, seed=k).eids.tolist())
        expect = rounds * 3 / deg
        assert set(hits) == set(full.eids.tolist())
        assert all(0.6 * expect < hits[e] < 1.4 * expect for e in hits), (expect, hits)
    finally:
        g.close()


def test_request_ids_survive_compaction_and_restart(tmp_path):
    """A retried edge write after the partition compacted its log (and restarted) is still
    answered with its first edge ids, not applied again."""
    from graphplat.storage.durable import DurablePartition

    store = small_store(tmp_path / "s")
    dp = DurablePartition(store, 0)
    book = PartitionBook(P)
    r = _own(book, "review", np.arange(5000, 5060), 0)[:2]
    u = np.array([1000, 1001])
    first = dp.write_add_edges_in(WROTE, u, r, request_id="w1:in:0")
    nodes = dp.write_add_nodes("review", _own(book, "review", np.arange(10**6, 10**6 + 20), 0)[:1],
                               {}, request_id="n1")
    edges = dp.graph.num_edges(WROTE)
    dp.compact()
    dp.close()
    dp = DurablePartition(store, 0)
    try:
        again = dp.write_add_edges_in(WROTE, u, r, request_id="w1:in:0")
        assert again.duplicate and np.array_equal(again.eids, first.eids)
        assert dp.write_add_nodes("review", np.array([1]), {}, request_id="n1").seq == nodes.seq
        assert dp.graph.num_edges(WROTE) == edges
    finally:
        dp.close()
