"""The bulk carrier (graphplat.rpc.bulk) of graph servers, on real ``graphplat serve``
processes: same answers as gRPC, the same token and request checks (token before anything
else is read), malformed frames refused without harm, fallback to gRPC when the carrier
fails, no bulk beside TLS, and connections a forked child never shares."""
from __future__ import annotations

import json
import multiprocessing
import socket
import struct
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from graphplat.errors import AuthenticationError
from graphplat.proto import graphplat_pb2 as pb
from graphplat.rpc.bulk import HELLO_MAGIC, REQUEST_MAGIC, BulkChannel
from graphplat.schema import GraphSchema
from graphplat.storage import codec
from graphplat.storage.client import PartitionClient
from graphplat.storage.graph_arrays import GraphArrays
from graphplat.storage.remote import connect
from graphplat.testing.servers import Fleet, cluster_dict, free_port, read_ready, self_signed_cert

TOKEN = "bulk-test-token"
N = 3000
DIM = 24
RAW_FEATURES = f"/{codec.RAW_SERVICE_NAME}/NodeFeatures"


def _store(path: Path) -> Path:
    rng = np.random.default_rng(0)
    schema = GraphSchema.homogeneous(DIM)
    nt, et = schema.ntypes[0], schema.canonical_etypes[0]
    arrays = GraphArrays(schema, {nt: np.arange(N, dtype=np.int64)},
                         {nt: {"feat": rng.random((N, DIM), dtype=np.float32)}},
                         {et: (rng.integers(0, N, 8 * N), rng.integers(0, N, 8 * N))})
    return arrays.write_store(path, partitions=2)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """Both partitions of a small store, served with a token."""
    root = tmp_path_factory.mktemp("bulk")
    store = _store(root / "store")
    f = Fleet(root / "logs")
    try:
        f.servers_ = f.start_all([dict(store=store, partition=k, args=["--token", TOKEN, "--max-message-mb", "4"])
                                  for k in range(2)])
        yield f
    finally:
        f.close()


def _graph(fleet, **kw):
    return connect(cluster_dict([[s] for s in fleet.servers_], token=TOKEN, shared_memory=False,
                                max_message_mb=4), **kw)


def _owned(g, p: int) -> np.ndarray:
    """The node ids partition ``p`` owns."""
    ids = np.arange(N, dtype=np.int64)
    return ids[g.book.partition_of("_N", ids) == p]


def _hello(port: int, token: bytes, listener_id: bytes = b"") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(struct.pack("<8sII", HELLO_MAGIC, len(token), len(listener_id)) + token + listener_id)
    return s


def _listener_id(server) -> bytes:
    c = PartitionClient([server.address], server.partition, token=TOKEN)
    try:
        return c.info().bulk_id.encode()
    finally:
        c.close()


def _answer(s: socket.socket):
    """(status code, details) of the next response frame (its body skipped)."""
    head = b""
    while len(head) < 24:
        got = s.recv(24 - len(head))
        if not got:
            raise ConnectionError("closed")
        head += got
    magic, code, dlen, elen, blen = struct.unpack("<4sIIIQ", head)
    assert magic == b"GPRS"
    rest = b""
    while len(rest) < dlen + elen + blen:
        rest += s.recv(dlen + elen + blen - len(rest))
    return code, rest[:dlen].decode()


def _request(method: str, body: bytes, meta=()) -> bytes:
    m, md = method.encode(), json.dumps(list(meta)).encode()
    return struct.pack("<4sIIQ", REQUEST_MAGIC, len(m), len(md), len(body)) + m + md + body


def _closed(s: socket.socket) -> bool:
    s.settimeout(5)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def test_bulk_answers_equal_grpc_answers(fleet):
    et = ("_N", "_E", "_N")
    ids = np.random.default_rng(1).choice(N, 1200, replace=False)
    with _graph(fleet) as bulk, _graph(fleet, bulk=False) as plain:
        for seed in range(3):
            a = bulk.sample_neighbors(et, ids, 5, seed=seed)
            b = plain.sample_neighbors(et, ids, 5, seed=seed)
            for x, y in zip((a.counts, a.neighbors, a.eids), (b.counts, b.neighbors, b.eids)):
                np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(bulk.node_features("_N", ids)["feat"], plain.node_features("_N", ids)["feat"])
        used = [c._bulk.get(0) for c in bulk.clients]
        assert all(isinstance(ch, BulkChannel) and ch.calls >= 4 for ch in used)
        assert not any(c._bulk for c in plain.clients)
        # the answer's arrays are read-only views, like gRPC's
        mine = _owned(bulk, 0)
        feat = bulk.clients[0].node_features("_N", mine[:10], ["feat"])["feat"]
        assert not feat.flags.writeable
        # bad requests are refused like over gRPC: the same exception and message
        for client in (bulk.clients[0], plain.clients[0]):
            with pytest.raises(ValueError, match="nope"):
                client.node_features("_N", mine[:3], ["nope"])
            with pytest.raises(IndexError, match="not in partition 0"):
                client.node_features("_N", _owned(bulk, 1)[:3], ["feat"])
        assert bulk.clients[0]._bulk[0].calls >= 7


def test_token_is_checked_before_any_request_is_read(fleet):
    port = read_ready(fleet.servers_[0])["bulk_port"]
    for token, message in ((b"", "missing bearer token"), (b"wrong", "invalid bearer token")):
        s = _hello(port, token)
        # a request claiming 100 MB follows at once: it must never be read or answered
        s.sendall(struct.pack("<4sIIQ", REQUEST_MAGIC, len(RAW_FEATURES), 2, 100 << 20) + b"\0" * 65536)
        code, details = _answer(s)
        assert code == grpc.StatusCode.UNAUTHENTICATED.value[0] and details == message
        assert _closed(s)
        s.close()
    ch = BulkChannel("127.0.0.1", port, "wrong")
    with pytest.raises(grpc.RpcError) as err:
        ch.call(RAW_FEATURES, b"")
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # PartitionClient maps it like gRPC's refusal
    c = PartitionClient([fleet.servers_[0].address], 0, token="wrong")
    with pytest.raises(AuthenticationError):
        c.node_features("_N", [0, 2], ["feat"])
    c.close()


def test_malformed_frames_are_refused_and_the_server_keeps_serving(fleet):
    port = read_ready(fleet.servers_[0])["bulk_port"]
    with _graph(fleet) as g:
        mine = _owned(g, 0)[:2]
    ok = pb.NodeFeaturesRequest(ntype="_N", ids=codec.to_array(mine), all_names=True)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(struct.pack("<8sII", b"NOTBULK!", 0, 0))  # not a hello
    assert _answer(s)[0] == grpc.StatusCode.INVALID_ARGUMENT.value[0] and _closed(s)
    frames = [
        (b"XXXX" + b"\0" * 20, grpc.StatusCode.INVALID_ARGUMENT, True),              # bad frame magic
        (struct.pack("<4sIIQ", REQUEST_MAGIC, 10, 2, 5 << 20), grpc.StatusCode.RESOURCE_EXHAUSTED, True),
        (_request(RAW_FEATURES, b"\xff\xff\xff garbage"), grpc.StatusCode.INVALID_ARGUMENT, False),
        (_request("/graphplat.v1.GraphPartition/AddNodes", ok.SerializeToString()),
         grpc.StatusCode.UNIMPLEMENTED, False),                                        # not a bulk method
        (_request(RAW_FEATURES, ok.SerializeToString(), [["graphplat-min-seq", "99999999"]]),
         grpc.StatusCode.UNAVAILABLE, False),                                          # read-your-writes
    ]
    for frame, code, closes in frames:
        s = _hello(port, TOKEN.encode(), _listener_id(fleet.servers_[0]))
        assert _answer(s)[0] == 0
        s.sendall(frame)
        got, details = _answer(s)
        assert got == code.value[0], (frame[:40], details)
        if closes:
            assert _closed(s)
        else:  # still in step: a good request on the same connection is answered
            s.sendall(_request(RAW_FEATURES, ok.SerializeToString()))
            assert _answer(s)[0] == 0
        s.close()
    with _graph(fleet) as g:
        assert g.node_features("_N", [0, 1, 2])["feat"].shape == (3, DIM)


def test_a_carrier_with_another_id_is_never_used(fleet):
    """A client whose server restarted (a new carrier, maybe another process on the old
    port) presents the id it was told; the carrier refuses it and the client uses gRPC."""
    server = fleet.servers_[0]
    port = read_ready(server)["bulk_port"]
    s = _hello(port, TOKEN.encode(), b"0123456789abcdef")
    code, details = _answer(s)
    assert code == grpc.StatusCode.FAILED_PRECONDITION.value[0] and "ask Info again" in details
    assert _closed(s)
    s.close()
    with _graph(fleet) as g:
        ids = _owned(g, 0)[:300]
        want = g.node_features("_N", ids)["feat"].copy()
        c0 = g.clients[0]
        ch = c0._bulk[0]
        for sock in ch._idle:
            sock.close()
        ch._idle.clear()
        ch._listener_id = b"stale-id"
        np.testing.assert_array_equal(g.node_features("_N", ids)["feat"], want)
        assert 0 not in c0._bulk and c0._bulk_retry_at[0] > 0
        c0._bulk_retry_at[0] = 0  # the next call asks Info again and gets the carrier back
        np.testing.assert_array_equal(g.node_features("_N", ids)["feat"], want)
        assert c0._bulk[0] is not ch and c0._bulk[0].calls == 1


def test_a_broken_carrier_falls_back_to_grpc(fleet):
    with _graph(fleet) as g:
        ids = _owned(g, 0)[:400]
        want = g.node_features("_N", ids)["feat"].copy()
        c0 = g.clients[0]
        assert isinstance(c0._bulk.get(0), BulkChannel)
        # the bulk port stops answering (a firewall, a restart on another port): gRPC answers
        dead = free_port()
        c0._bulk[0].port = dead
        for ch in c0._bulk[0]._idle:
            ch.close()
        c0._bulk[0]._idle.clear()
        np.testing.assert_array_equal(g.node_features("_N", ids)["feat"], want)
        assert 0 not in c0._bulk and c0._bulk_retry_at[0] > 0  # retried later, not per call


def test_connections_beyond_the_limit_are_refused_and_clients_use_grpc(tmp_path, fleet):
    """Idle connections hold at most --max-concurrent-rpcs bulk slots; a client refused
    one reads over gRPC at once (no retry loop), and gets the carrier back later."""
    f = Fleet(tmp_path / "logs")
    idle = []
    try:
        srv, = f.start_all([dict(store=fleet.servers_[0].store, partition=0, replica=True,
                                 args=["--max-concurrent-rpcs", "3"])])
        port, lid = read_ready(srv)["bulk_port"], _listener_id(srv)
        for _ in range(3):
            s = _hello(port, b"", lid)
            assert _answer(s)[0] == 0
            idle.append(s)
        s = _hello(port, b"", lid)
        code, details = _answer(s)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0] and "too many bulk connections" in details
        s.close()
        c = PartitionClient([srv.address], 0, deadline_s=5)
        with _graph(fleet) as g:
            mine = _owned(g, 0)[:50]
            want = g.node_features("_N", mine)["feat"]
        np.testing.assert_array_equal(c.node_features("_N", mine, ["feat"])["feat"], want)
        assert 0 not in c._bulk and c._bulk_retry_at[0] > 0
        for s in idle:
            s.close()
        idle.clear()
        c._bulk_retry_at[0] = 0  # (instead of waiting BULK_RETRY_S)
        time.sleep(0.2)  # the server notices the closed connections
        np.testing.assert_array_equal(c.node_features("_N", mine, ["feat"])["feat"], want)
        assert c._bulk[0].calls == 1
        c.close()
    finally:
        for s in idle:
            s.close()
        f.close()


def test_no_bulk_port_beside_tls_or_with_no_bulk(tmp_path, fleet):
    store = fleet.servers_[0].store
    cert, key = self_signed_cert(tmp_path / "tls")
    f = Fleet(tmp_path / "logs")
    try:
        tls, off = f.start_all([
            dict(store=store, partition=0, replica=True, args=["--tls-cert", str(cert), "--tls-key", str(key)]),
            dict(store=store, partition=0, replica=True, args=["--no-bulk"])])
        for s in (tls, off):
            assert "bulk_port" not in read_ready(s)
        c = PartitionClient([off.address], 0)
        assert c.info().bulk_port == 0
        with _graph(fleet) as g:
            mine = _owned(g, 0)[:2]
        assert c.node_features("_N", mine, ["feat"])["feat"].shape == (2, DIM)
        assert c._bulk == {0: None}
        c.close()
        c = PartitionClient([tls.address], 0, root_cert=cert.read_bytes())
        assert c.info().bulk_port == 0 and not c._bulk_enabled
        c.close()
    finally:
        f.close()


def test_a_forked_child_never_shares_the_parents_connections(fleet):
    c = PartitionClient([fleet.servers_[0].address], 0, token=TOKEN)
    with _graph(fleet) as g:
        mine = _owned(g, 0)
    want = c.node_features("_N", mine, ["feat"])["feat"].copy()
    ch = c._bulk[0]
    assert len(ch._idle) == 1  # a pooled connection the child must not use
    parent_sock = ch._idle[0]
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    kids = [ctx.Process(target=_child_reads_ids, args=(c, mine, want, q)) for _ in range(3)]
    for k in kids:
        k.start()
    for _ in range(20):  # the parent keeps using its connection meanwhile
        np.testing.assert_array_equal(c.node_features("_N", mine, ["feat"])["feat"], want)
    for k in kids:
        k.join(60)
        assert k.exitcode == 0
    assert all(q.get(timeout=5) for _ in kids)
    assert ch._idle and ch._idle[0] is parent_sock  # the parent's connection survived its children
    c.close()


def _child_reads_ids(client: PartitionClient, ids, want, out) -> None:
    ok = True
    for _ in range(10):
        got = client.node_features("_N", ids, ["feat"])["feat"]
        ok = ok and bool(np.array_equal(got, want))
    out.put(ok and client._bulk[0].calls >= 10)


def _minor_faults(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])


def test_large_answers_reuse_the_servers_buffers_and_stay_intact(tmp_path):
    """Answers larger than glibc's largest mmap threshold (32 MiB), of varying sizes and two
    at a time (a prefetching loader's pattern), are written into the server's recycled
    buffers: once warm, the server takes almost no page faults per answer (a fresh mapping
    takes one per 4 KiB: at 60 M edges a third of a server's CPU), and concurrent answers
    never see each other's rows (a buffer is reused only once its answer was sent)."""
    import threading

    n, dim = 200_000, 100  # an answer of every row: 80 MB
    rng = np.random.default_rng(3)
    schema = GraphSchema.homogeneous(dim)
    nt, et = schema.ntypes[0], schema.canonical_etypes[0]
    feat = rng.random((n, dim), dtype=np.float32)
    arrays = GraphArrays(schema, {nt: np.arange(n, dtype=np.int64)}, {nt: {"feat": feat}},
                         {et: (rng.integers(0, n, n), rng.integers(0, n, n))})
    store = arrays.write_store(tmp_path / "store", partitions=1)
    with Fleet(tmp_path / "logs") as fleet:
        server, = fleet.start_all([dict(store=store, partition=0, args=["--no-shared-memory"])])
        client = PartitionClient([server.address], 0)
        failures = []

        def fetch(k: int, shares) -> None:
            mine = np.random.default_rng(k).permutation(n).astype(np.int64)
            try:
                for share in shares:
                    ids = mine[:int(n * share)]
                    np.testing.assert_array_equal(client.node_features(nt, ids, ["feat"])["feat"], feat[ids])
            except BaseException as e:  # noqa: BLE001
                failures.append(e)

        def two_at_a_time(shares_a, shares_b) -> None:
            threads = [threading.Thread(target=fetch, args=(k, s)) for k, s in ((1, shares_a), (2, shares_b))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert not failures, failures[0]

        try:
            two_at_a_time([1.0, 1.0], [1.0, 1.0])  # warm: connections and two buffers
            before = _minor_faults(server.proc.pid)
            two_at_a_time([0.7, 1.0, 0.85], [0.95, 0.8, 1.0])
            faults = _minor_faults(server.proc.pid) - before
            pages = n * dim * 4 // 4096  # of one full answer
            assert faults < pages // 4, f"{faults} page faults in 6 answers of 56-80 MB"
            assert client._bulk.get(0) is not None and client._bulk[0].calls >= 6  # on the carrier
        finally:
            client.close()
