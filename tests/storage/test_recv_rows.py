"""Rows read off a socket straight into rows of an array: ``_core.recv_rows`` over socket
pairs, ``codec.read_raw_rows`` over in-memory raw answers, and
``PartitionClient.node_features(out=, out_rows=)`` against real ``graphplat serve``
processes, over the bulk carrier and over gRPC."""
from __future__ import annotations

import os
import socket
import struct
import threading
import time

import numpy as np
import pytest

from graphplat import _core
from graphplat.rpc.bulk import BulkChannel
from graphplat.schema import GraphSchema
from graphplat.storage import codec, wire_dtype
from graphplat.storage.graph_arrays import GraphArrays
from graphplat.storage.remote import connect
from graphplat.testing.servers import Fleet, cluster_dict

N = 2000
SCHEMA = GraphSchema.homogeneous(6, label=True)
NT, ET = SCHEMA.ntypes[0], SCHEMA.canonical_etypes[0]


def _feed(sock: socket.socket, data: bytes, chunks=(1, 7, 300)) -> threading.Thread:
    """Writes ``data`` to ``sock`` from a thread in chunks of ``chunks`` bytes, then the rest."""
    def run():
        at = 0
        for k in chunks:
            sock.sendall(data[at:at + k])
            at += k
            time.sleep(0.005)
        sock.sendall(data[at:])
    (t := threading.Thread(target=run, daemon=True)).start()
    return t


@pytest.mark.parametrize("blocking", [True, False])
@pytest.mark.parametrize("shape,dtype,rows", [
    ((40, 16), np.float32, [7, 8, 9, 2, 39, 0, 1, 20, 21, 5]),   # runs of adjacent rows
    ((500,), np.int64, list(range(100, 140)) + list(range(60, 0, -1))),
    ((5000,), np.int32, list(np.random.default_rng(0).permutation(5000)[:3000])),  # > 1024 runs
])
def test_rows_land_in_place_from_uneven_chunks(blocking, shape, dtype, rows):
    """Every row's bytes land in out[rows] exactly (partial reads resume mid-row, more runs
    than one readv takes), other rows keep their sentinel, the byte count is returned."""
    rows = np.asarray(rows, dtype=np.int64)
    out = np.full(shape, -3, dtype=dtype)
    row_bytes = out.nbytes // len(out)
    data = np.random.default_rng(1).integers(0, 256, len(rows) * row_bytes, dtype=np.uint8).tobytes()
    a, b = socket.socketpair()
    with a, b:
        if not blocking:
            a.settimeout(10)
        t, got = _feed(b, data), _core.recv_rows(a.fileno(), out, rows, timeout=None if blocking else 10)
        t.join()
    assert got == len(data)
    want = np.frombuffer(data, dtype=dtype).reshape((len(rows),) + shape[1:])
    assert out[rows].tobytes() == want.tobytes()
    assert (np.delete(out, rows, axis=0) == -3).all()


def test_bad_arguments_raise_before_reading():
    """Bad rows or a bad out raise IndexError/ValueError and leave the socket's bytes unread."""
    out = np.zeros((10, 4), np.float32)
    a, b = socket.socketpair()
    with a, b:
        b.sendall(b"\x01" * 64)
        for bad_rows in ([0, 10], [-1], [3, 2, 99]):
            with pytest.raises(IndexError):
                _core.recv_rows(a.fileno(), out, np.array(bad_rows), timeout=1)
        for bad_out in (np.zeros((4, 10), np.float32).T, out[:, :2], out[::2], np.zeros((10, 4), object),
                        np.frombuffer(bytes(160), np.float32).reshape(10, 4), [[0.0] * 4] * 10):
            with pytest.raises(ValueError):
                _core.recv_rows(a.fileno(), bad_out, np.array([0]), timeout=1)
        for bad_timeout in (-0.5, float("nan")):
            with pytest.raises(ValueError, match="timeout"):
                _core.recv_rows(a.fileno(), out, np.array([0]), timeout=bad_timeout)
        assert (out == 0).all()
        a.settimeout(1)
        assert a.recv(100) == b"\x01" * 64  # nothing was consumed


def test_peer_closing_early_is_a_connection_error():
    """The peer closes after part of the rows: ConnectionError, the bytes sent are in place."""
    out = np.zeros((8, 2), np.int64)
    a, b = socket.socketpair()
    with a:
        b.sendall(np.arange(6, dtype=np.int64).tobytes() + b"\x00" * 3)
        b.close()
        with pytest.raises(ConnectionError, match="after 51 of 64 bytes"):
            _core.recv_rows(a.fileno(), out, np.array([5, 6, 0, 1]))
    np.testing.assert_array_equal(out[[5, 6, 0]], [[0, 1], [2, 3], [4, 5]])


def test_timeout_on_a_non_blocking_socket():
    """Partial data and nothing more on a socket with a timeout: TimeoutError soon after it."""
    out = np.zeros((4, 4), np.float32)
    a, b = socket.socketpair()
    with a, b:
        a.settimeout(0.05)
        b.sendall(b"\x00" * 20)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError, match="after 20 of 48 bytes"):
            _core.recv_rows(a.fileno(), out, np.array([0, 1, 2]), timeout=a.gettimeout())
        assert time.monotonic() - t0 < 2


def test_timeout_on_a_blocking_socket():
    """The timeout holds on a blocking descriptor too (documented: "blocking or not")."""
    out = np.zeros((4, 4), np.float32)
    a, b = socket.socketpair()
    with a, b:
        b.sendall(b"\x00" * 20)
        closer = threading.Timer(2.0, b.shutdown, (socket.SHUT_WR,))  # unblocks a hanging read
        closer.start()
        t0 = time.monotonic()
        try:
            with pytest.raises(TimeoutError):
                _core.recv_rows(a.fileno(), out, np.array([0, 1, 2]), timeout=0.1)
            assert time.monotonic() - t0 < 1.5
        finally:
            closer.cancel()


def test_bad_descriptors_raise():
    """fd -1 is a ValueError, a descriptor that is not open an OSError (no crash)."""
    out = np.zeros((2, 2), np.float32)
    with pytest.raises(ValueError, match="fd"):
        _core.recv_rows(-1, out, np.array([0]))
    fd = 65535
    with pytest.raises(OSError):
        os.fstat(fd)  # not open
    with pytest.raises(OSError):
        _core.recv_rows(fd, out, np.array([0]))


def _answer(n=5):
    f = np.random.default_rng(2).standard_normal((n, 4)).astype(np.float32)
    return f, np.arange(n, dtype=np.int64) * 1000 - 7


def test_read_raw_rows_places_and_converts():
    """Two arrays land at permuted rows of bigger outs; a float64 answer into a float32 out is
    converted; an array out does not ask for is skipped; what follows the last array read is
    left to the caller (the bulk channel drains it); a float32 answer into a half-precision
    out goes through ``convert`` (an old server answering float32 to a wire_dtype request)."""
    f, i = _answer()
    rows = np.array([9, 2, 3, 0, 6])
    out = {"f": np.full((10, 4), 5.0, np.float32), "i": np.full(10, -1, np.int64)}
    stream = codec.BytesStream(codec.pack_raw({"f": f, "x": np.ones(3), "i": i}) + b"trailing")
    codec.read_raw_rows(stream, out, rows)
    assert len(b"trailing") <= stream.remaining < len(b"trailing") + 64  # alignment padding, then ours
    assert out["f"][rows].tobytes() == f.tobytes() and out["i"][rows].tobytes() == i.tobytes()
    assert (np.delete(out["f"], rows, 0) == 5.0).all() and (np.delete(out["i"], rows) == -1).all()
    wide = f.astype(np.float64) * 1.0000001
    conv = {"f": np.zeros((6, 4), np.float32)}
    codec.read_raw_rows(codec.BytesStream(codec.pack_raw({"f": wide})), conv, np.array([4, 0, 5, 1, 2]))
    np.testing.assert_array_equal(conv["f"][[4, 0, 5, 1, 2]], wide.astype(np.float32))
    assert (conv["f"][3] == 0).all()
    half = {"f": np.zeros((6, 4), np.uint16)}
    codec.read_raw_rows(codec.BytesStream(codec.pack_raw({"f": f})), half, np.array([4, 0, 5, 1, 2]),
                        lambda arr: wire_dtype.encode(arr, "bfloat16"))
    np.testing.assert_array_equal(half["f"][[4, 0, 5, 1, 2]], wire_dtype.encode(f, "bfloat16"))
    assert not half["f"][3].any()


@pytest.mark.parametrize("mangle,match", [
    (lambda raw: b"NOTRAW!!" + raw[8:], "not a graphplat raw answer"),
    (lambda raw: raw[:10], "not a graphplat raw answer|reading"),
    (lambda raw: raw[:-30], "runs past the end"),  # "i" is 40 bytes + 24 of padding
])
def test_read_raw_rows_refuses_malformed_answers(mangle, match):
    """Wrong magic, a cut header, a cut body: ValueError."""
    f, i = _answer()
    out = {"f": np.zeros((5, 4), np.float32), "i": np.zeros(5, np.int64)}
    with pytest.raises(ValueError, match=match):
        codec.read_raw_rows(codec.BytesStream(mangle(codec.pack_raw({"f": f, "i": i}))), out, np.arange(5))


def test_read_raw_rows_refuses_mismatched_answers():
    """An answer lacking an array of out, with another row count or row shape: ValueError."""
    f, i = _answer()
    out = {"f": np.zeros((8, 4), np.float32), "i": np.zeros(8, np.int64)}
    for arrays, rows in [({"f": f}, np.arange(5)), ({"f": f, "i": i}, np.arange(6)),
                         ({"f": f[:, :3], "i": i}, np.arange(5))]:
        with pytest.raises(ValueError):
            codec.read_raw_rows(codec.BytesStream(codec.pack_raw(arrays)), out, rows)


def test_truncated_bulk_answer_is_a_connection_error():
    """A bulk answer cut short by the server: ConnectionError from the sink, and the broken
    connection is not kept for the next call."""
    raw = codec.pack_raw({"f": _answer(40)[0]})
    srv = socket.create_server(("127.0.0.1", 0))

    def serve():
        def exact(conn, n):
            return conn.recv(n, socket.MSG_WAITALL) if n else b""

        conn, _ = srv.accept()
        with conn:
            _, tlen, ilen = struct.unpack("<8sII", exact(conn, 16))
            exact(conn, tlen + ilen)
            conn.sendall(struct.pack("<4sIIIQ", b"GPRS", 0, 0, 0, 0))
            _, mlen, mdlen, blen = struct.unpack("<4sIIQ", exact(conn, 20))
            exact(conn, mlen + mdlen + blen)
            conn.sendall(struct.pack("<4sIIIQ", b"GPRS", 0, 0, 0, len(raw)) + raw[:-100])

    (t := threading.Thread(target=serve, daemon=True)).start()
    ch = BulkChannel("127.0.0.1", srv.getsockname()[1])
    out = {"f": np.zeros((40, 4), np.float32)}
    with srv, pytest.raises(ConnectionError, match="closed after 540 of 640 bytes"):  # in recv_rows
        ch.call("/graphplat.Raw/NodeFeatures", b"", timeout=5,
                sink=lambda s: codec.read_raw_rows(s, out, np.arange(40)))
    t.join(5)
    assert ch._idle == []
    ch.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(arrays, servers) of a 2-partition store served by real processes."""
    root = tmp_path_factory.mktemp("recv_rows")
    rng = np.random.default_rng(4)
    ga = GraphArrays(SCHEMA, {NT: np.arange(N, dtype=np.int64)},
                     {NT: {"feat": rng.standard_normal((N, 6)).astype(np.float32),
                           "label": rng.integers(-2**40, 2**40, N)}},
                     {ET: (rng.integers(0, N, 8 * N), rng.integers(0, N, 8 * N))})
    store = ga.write_store(root / "store", partitions=2)
    fleet = Fleet(root / "logs")
    try:
        yield ga, fleet.start_all([dict(store=store, partition=k) for k in range(2)])
    finally:
        fleet.close()


@pytest.mark.parametrize("bulk", [True, False])
def test_node_features_into_out_rows(served, bulk, monkeypatch):
    """Rows fetched into sentinel-filled outs at permuted rows equal the stored rows and the
    plain answer bit for bit (float32 and int64, a float64 out converted, float16 over the
    wire), read by read_raw_rows off the carrier (bulk) or gRPC's bytes; other rows untouched."""
    ga, servers = served
    streams = []
    original = codec.read_raw_rows
    monkeypatch.setattr(codec, "read_raw_rows",
                        lambda s, o, r, c=None: streams.append(type(s).__name__) or original(s, o, r, c))
    g = connect(cluster_dict([[s] for s in servers], deadline_s=20), shared_memory=False, bulk=bulk)
    with g:
        client = g.clients[0]
        ids = np.arange(N, dtype=np.int64)
        mine = np.random.default_rng(5).permutation(ids[g.book.partition_of(NT, ids) == 0])[:300]
        rows = np.random.default_rng(6).permutation(len(mine) + 50)[:len(mine)]
        rest = np.setdiff1d(np.arange(len(mine) + 50), rows)
        plain = client.node_features(NT, mine)
        for feat_dtype, wire in ((np.float32, None), (np.float64, None), (np.float16, "float16")):
            out = {"feat": np.full((len(mine) + 50, 6), -9.0, feat_dtype),
                   "label": np.full(len(mine) + 50, 7, np.int64)}
            got = client.node_features(NT, mine, ["feat", "label"], out=out, out_rows=rows, wire_dtype=wire)
            assert got["feat"] is out["feat"]
            want = plain["feat"] if wire is None else client.node_features(NT, mine, wire_dtype=wire)["feat"]
            assert out["feat"][rows].tobytes() == want.astype(feat_dtype).tobytes()
            assert out["feat"][rows].tobytes() == ga.node_features[NT]["feat"][mine].astype(want.dtype).astype(
                feat_dtype).tobytes()
            assert out["label"][rows].tobytes() == plain["label"].tobytes() == ga.node_features[NT]["label"][
                mine].tobytes()
            assert (out["feat"][rest] == -9).all() and (out["label"][rest] == 7).all()
        assert streams == ["AnswerStream" if bulk else "BytesStream"] * 3  # float16 too: rows in place
        assert (client._bulk[0].calls > 0) if bulk else not client._bulk


@pytest.mark.parametrize("pieces", [1, 3])
def test_feature_requests_cut_into_pieces_give_the_same_rows(served, pieces, monkeypatch):
    """A RemoteGraph cutting each partition's rows into several requests in flight at once
    (pieces_per_partition, tunable) answers exactly the stored rows, in the caller's order,
    with each piece read off the wire into its own rows of the batch."""
    ga, servers = served
    g = connect(cluster_dict([[s] for s in servers], deadline_s=20), shared_memory=False)
    with g:
        monkeypatch.setattr(g, "pieces_per_partition", pieces)
        monkeypatch.setattr(g, "MIN_ROWS_PER_PIECE", 16)
        calls = []
        for c in g.clients:
            original = c.node_features
            monkeypatch.setattr(c, "node_features", lambda *a, _o=original, **kw: calls.append(len(a[1])) or _o(*a, **kw))
        ids = np.random.default_rng(7).permutation(N)[:400]
        got = g.node_features(NT, ids, ["feat", "label"])
        assert got["feat"].tobytes() == ga.node_features[NT]["feat"][ids].tobytes()
        assert got["label"].tobytes() == ga.node_features[NT]["label"][ids].tobytes()
        assert sum(calls) == len(ids) and len(calls) == 2 * pieces
