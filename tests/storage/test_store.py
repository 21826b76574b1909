"""RocksDB partition store: bulk round trip, write log durability, compaction, validation."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import rocksdict

from graphplat.schema import GraphSchema
from graphplat.storage import store
from graphplat.storage.partition_book import PartitionBook
from graphplat.storage.partition_data import split_into_partitions
from graphplat.storage.store import (
    LogRecord,
    PartitionStore,
    create_store,
    decode_record,
    encode_record,
    open_store,
    read_partition,
    write_partition,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCHEMA = GraphSchema.from_dict({
    "node_types": {
        "user": {"features": {"emb": "float32[4]", "age": "int64"}},
        "item": {"features": {"img": "float32[2,3]"}},
        "tag": {},
    },
    "edge_types": [
        {"src": "user", "relation": "click", "dst": "item", "weighted": True, "out_adjacency": True,
         "features": {"ts": "int64", "ctx": "float32[2]"}},
        ["item", "has", "tag"],
        ["user", "follows", "user"],
    ],
})
CLICK = ("user", "click", "item")


def make_parts(seed=0, num_users=120, num_items=60, num_tags=10, num_clicks=700, P=2, num_has=80):
    rng = np.random.default_rng(seed)
    users = rng.choice(2 ** 62, num_users, replace=False).astype(np.int64) - 2 ** 61
    items = np.arange(num_items, dtype=np.int64) * 1000 + 7
    tags = np.arange(num_tags, dtype=np.int64)
    nodes = {"user": users, "item": items, "tag": tags}
    nfeat = {"user": {"emb": rng.random((num_users, 4), dtype=np.float32),
                      "age": rng.integers(0, 100, num_users)},
             "item": {"img": rng.random((num_items, 2, 3), dtype=np.float32)}}
    edges = {CLICK: (rng.choice(users, num_clicks), rng.choice(items, num_clicks)),
             ("item", "has", "tag"): (rng.choice(items, num_has), rng.choice(tags, num_has)),
             ("user", "follows", "user"): (rng.choice(users, 200), rng.choice(users, 200))}
    weights = {CLICK: rng.random(num_clicks).astype(np.float32)}
    efeat = {CLICK: {"ts": rng.integers(0, 10 ** 12, num_clicks),
                     "ctx": rng.random((num_clicks, 2), dtype=np.float32)}}
    book = PartitionBook(P)
    return split_into_partitions(SCHEMA, book, nodes, nfeat, edges, weights, efeat), book


def assert_partition_equal(a, b):
    assert a.schema == b.schema
    assert (a.partition, a.num_partitions) == (b.partition, b.num_partitions)
    assert list(a.node_ids) == list(b.node_ids)
    for nt in a.node_ids:
        np.testing.assert_array_equal(a.node_ids[nt], b.node_ids[nt])
        assert a.node_ids[nt].dtype == b.node_ids[nt].dtype
        assert set(a.node_features[nt]) == set(b.node_features[nt])
        for f in a.node_features[nt]:
            x, y = a.node_features[nt][f], b.node_features[nt][f]
            assert x.dtype == y.dtype and x.shape == y.shape
            np.testing.assert_array_equal(x, y)
    for adj_a, adj_b in ((a.in_adj, b.in_adj), (a.out_adj, b.out_adj)):
        assert list(adj_a) == list(adj_b)
        for k in adj_a:
            for fld in ("indptr", "indices", "halo_ids", "eids", "weights"):
                x, y = getattr(adj_a[k], fld), getattr(adj_b[k], fld)
                if x is None or y is None:
                    assert x is None and y is None, (k, fld)
                    continue
                assert x.dtype == y.dtype, (k, fld)
                np.testing.assert_array_equal(x, y)
    assert list(a.edge_features) == list(b.edge_features)
    for k in a.edge_features:
        assert set(a.edge_features[k]) == set(b.edge_features[k])
        for f in a.edge_features[k]:
            np.testing.assert_array_equal(a.edge_features[k][f], b.edge_features[k][f])
            assert a.edge_features[k][f].dtype == b.edge_features[k][f].dtype


def all_arrays(d):
    out = list(d.node_ids.values())
    out += [v for fs in d.node_features.values() for v in fs.values()]
    for adjs in (d.in_adj, d.out_adj):
        for a in adjs.values():
            out += [a.indptr, a.indices, a.halo_ids, a.eids] + ([a.weights] if a.weights is not None else [])
    out += [v for fs in d.edge_features.values() for v in fs.values()]
    return out


# ----------------------------------------------------------------------------- bulk


def test_round_trip(tmp_path):
    parts, _ = make_parts()
    for p in parts:
        path = tmp_path / f"part-{p.partition}"
        write_partition(path, p)
        back = read_partition(path)
        assert_partition_equal(p, back)
        assert all(not a.flags.writeable for a in all_arrays(back))
    # the data really is partitioned: both partitions hold click edges
    assert all(p.in_adj[CLICK].nnz > 0 for p in parts)


def test_round_trip_many_chunks_and_empty(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "CHUNK_BYTES", 96)  # force multi-chunk arrays
    parts, _ = make_parts(seed=3, num_tags=0, num_has=0)
    parts_empty, _ = make_parts(seed=4, num_users=1, num_items=1, num_tags=1, num_clicks=1, P=3)
    for i, p in enumerate(parts + parts_empty):
        path = tmp_path / f"p{i}"
        write_partition(path, p)
        assert_partition_equal(p, read_partition(path))


def test_create_store_and_open(tmp_path):
    parts, book = make_parts()
    path = create_store(tmp_path / "st", parts, book)
    info = open_store(path)
    assert info.num_partitions == 2 and info.schema == SCHEMA
    assert info.book.num_partitions == 2
    for k in range(2):
        assert_partition_equal(parts[k], info.read_partition(k))
    assert not list(tmp_path.glob("st.tmp-*"))
    with pytest.raises(FileExistsError):
        create_store(tmp_path / "st", parts, book)
    create_store(tmp_path / "st", parts, book, overwrite=True)
    open_store(tmp_path / "st")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["st"]


def test_write_uses_sst_ingestion(tmp_path):
    parts, _ = make_parts()
    st = PartitionStore.create(tmp_path / "p", parts[0])
    try:
        method = st._write_generation(5, parts[0])  # an extra generation, same data
        assert method == "sst"
    finally:
        st.close()
    assert not list((tmp_path / "p").glob("ingest-*.sst"))  # moved into the DB


# ----------------------------------------------------------------------------- log


def click_record(k):
    return LogRecord("add_edges", CLICK, {
        "src": np.array([k, k + 1], dtype=np.int64),
        "dst": np.array([2 * k, 7], dtype=np.int64),
        "weight": np.array([k * 0.5, 1.0], dtype=np.float32),
        "ctx": np.arange(4, dtype=np.float32).reshape(2, 2) + k,
    })


def test_record_encoding():
    rec = LogRecord("update_features", "user", {"ids": np.array([1, -5], np.int64),
                                                "emb": np.ones((2, 4), np.float32),
                                                "scalar": np.array(3.5),
                                                "big": np.arange(3, dtype=">i8")})
    back = decode_record(encode_record(rec))
    assert back.op == rec.op and back.type == "user"
    for k, v in rec.arrays.items():
        np.testing.assert_array_equal(back.arrays[k], v)
        assert back.arrays[k].shape == np.asarray(v).shape
    assert back.arrays["big"].dtype == np.int64
    assert decode_record(encode_record(click_record(1))).type == CLICK
    bad = bytearray(encode_record(rec))
    bad[7] ^= 0xFF
    with pytest.raises(ValueError, match="corrupt"):
        decode_record(bytes(bad))
    with pytest.raises(ValueError, match="op"):
        LogRecord("drop_table", "user", {})


def test_log_append_and_read(tmp_path):
    parts, _ = make_parts()
    path = tmp_path / "p"
    write_partition(path, parts[0])
    with PartitionStore(path) as st:
        assert st.last_seq == -1 and list(st.read_log()) == []
        assert st.append_log([click_record(0), click_record(1)]) == [0, 1]
        assert st.append_log(click_record(2)) == [2]
        assert st.append_log([]) == []
        got = list(st.read_log())
        assert [s for s, _ in got] == [0, 1, 2]
        for s, rec in got:
            np.testing.assert_array_equal(rec.arrays["src"], click_record(s).arrays["src"])
        assert [s for s, _ in st.read_log(after_seq=1)] == [2]
    with PartitionStore(path) as st:  # numbering continues after reopening
        assert st.last_seq == 2
        assert st.append_log(click_record(3)) == [3]
        assert [s for s, _ in st.read_log()] == [0, 1, 2, 3]
    with PartitionStore(path, read_only=True) as st:
        assert [s for s, _ in st.read_log(after_seq=0)] == [1, 2, 3]
        with pytest.raises(ValueError, match="read-only"):
            st.append_log(click_record(9))


APPENDER = textwrap.dedent("""
    import sys
    import numpy as np
    from graphplat.storage.store import PartitionStore, LogRecord
    st = PartitionStore(sys.argv[1])
    k = 0
    while True:
        rec = LogRecord("add_edges", ("user", "click", "item"),
                        {"src": np.array([k], np.int64), "dst": np.array([k * 3], np.int64)})
        (seq,) = st.append_log([rec])
        print(f"acked {seq} {k}", flush=True)
        k += 1
""")


def test_log_survives_sigkill(tmp_path):
    parts, _ = make_parts()
    path = tmp_path / "p"
    write_partition(path, parts[0])
    script = tmp_path / "appender.py"
    script.write_text(APPENDER)
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, text=True)
    acked = []
    deadline = time.time() + 30
    try:
        while len(acked) < 60 and time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            acked.append(tuple(int(x) for x in line.split()[1:]))
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        rest, err = proc.communicate(timeout=30)
    assert len(acked) >= 60, err
    acked += [tuple(int(x) for x in line.split()[1:]) for line in rest.splitlines() if line.startswith("acked")]
    with PartitionStore(path) as st:
        log = {s: r for s, r in st.read_log()}
        for seq, k in acked:
            assert seq in log, f"acknowledged record {seq} lost"
            assert log[seq].arrays["src"].tolist() == [k]
            assert log[seq].arrays["dst"].tolist() == [3 * k]
        assert sorted(log) == list(range(len(log)))
        assert st.append_log(click_record(0)) == [max(log) + 1]


# ----------------------------------------------------------------------------- compaction


def test_compaction_folds_log(tmp_path):
    parts, _ = make_parts(seed=1)
    new_parts, _ = make_parts(seed=2)  # "the partition after applying the log"
    path = tmp_path / "p"
    write_partition(path, parts[0])
    with PartitionStore(path) as st:
        st.append_log([click_record(i) for i in range(5)])
        gen = st.compact(new_parts[0], through_seq=2)
        assert gen == 1 and st.generation == 1
        assert [s for s, _ in st.read_log()] == [3, 4]
        assert st.append_log(click_record(5)) == [5]
        assert_partition_equal(new_parts[0], st.read())
    assert_partition_equal(new_parts[0], read_partition(path))
    with PartitionStore(path) as st:
        assert st.generation == 1 and st.last_seq == 5
        assert [s for s, _ in st.read_log()] == [3, 4, 5]
        st.compact(parts[0])  # fold everything
        assert list(st.read_log()) == []
        assert st.append_log(click_record(6)) == [6]  # numbering never restarts
        with pytest.raises(ValueError, match="through_seq"):
            st.compact(parts[0], through_seq=99)
        with pytest.raises(ValueError, match="partition"):
            st.compact(parts[1])
    assert_partition_equal(parts[0], read_partition(path))
    # only the current generation's blobs remain
    db = rocksdict.Rdict(str(path), rocksdict.Options(raw_mode=True),
                         column_families={"blobs": rocksdict.Options(raw_mode=True),
                                          "log": rocksdict.Options(raw_mode=True)},
                         access_type=rocksdict.AccessType.read_only())
    try:
        gens = {k[:10] for k in db.get_column_family("blobs").keys()}
    finally:
        db.close()
    assert gens == {b"g00000002/"}


def test_crash_during_compaction_keeps_everything(tmp_path):
    parts, _ = make_parts(seed=1)
    new_parts, _ = make_parts(seed=2)
    path = tmp_path / "p"
    write_partition(path, parts[0])
    st = PartitionStore(path)
    st.append_log([click_record(i) for i in range(4)])
    st._write_generation(st.generation + 1, new_parts[0])  # new blobs written, no switch: "crash"
    st.close()
    with PartitionStore(path) as st:  # the old generation and the whole log are intact
        assert st.generation == 0
        assert [s for s, _ in st.read_log()] == [0, 1, 2, 3]
        assert_partition_equal(parts[0], st.read())
        st.compact(new_parts[0], through_seq=3)  # orphans were dropped; compaction works
        assert_partition_equal(new_parts[0], st.read())


# ----------------------------------------------------------------------------- validation


def test_open_rejects_non_stores(tmp_path):
    parts, book = make_parts()
    with pytest.raises(ValueError, match="does not exist") as e:
        open_store(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(e.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="not a graphplat store") as e:
        open_store(empty)
    assert str(empty) in str(e.value)
    with pytest.raises(ValueError, match="not a graphplat partition") as e:
        read_partition(empty)
    assert str(empty) in str(e.value)
    with pytest.raises(ValueError, match="does not exist"):
        read_partition(tmp_path / "nope")

    good = create_store(tmp_path / "st", parts, book)
    meta = json.loads((good / "store.json").read_text())

    incomplete = tmp_path / "incomplete"
    create_store(incomplete, parts, book)
    (incomplete / "store.json").write_text(json.dumps({**meta, "complete": False}))
    with pytest.raises(ValueError, match="incomplete") as e:
        open_store(incomplete)
    assert str(incomplete) in str(e.value)

    newer = tmp_path / "newer"
    create_store(newer, parts, book)
    (newer / "store.json").write_text(json.dumps({**meta, "format_version": store.FORMAT_VERSION + 1}))
    with pytest.raises(ValueError, match="newer") as e:
        open_store(newer)
    assert str(newer) in str(e.value)

    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "store.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a graphplat store"):
        open_store(garbage)

    # a complete store under an ingest's temporary name is never accepted
    staged = tmp_path / "st.tmp-12345"
    create_store(staged, parts, book)
    with pytest.raises(ValueError, match="temporary") as e:
        open_store(staged)
    assert str(staged) in str(e.value)
    with pytest.raises(ValueError, match="temporary"):
        read_partition(staged / "part-0")

    # a missing partition directory
    (good / "part-1").rename(tmp_path / "moved")
    with pytest.raises(ValueError, match="partition 1"):
        open_store(good)

    # a RocksDB that is not a graphplat partition
    other = tmp_path / "otherdb"
    db = rocksdict.Rdict(str(other))
    db["x"] = 1
    db.close()
    del db
    with pytest.raises(ValueError, match="not a graphplat partition") as e:
        read_partition(other)
    assert str(other) in str(e.value)


def test_partition_newer_format_and_incomplete(tmp_path):
    parts, _ = make_parts()
    path = tmp_path / "p"
    write_partition(path, parts[0])
    with PartitionStore(path) as st:
        info = json.loads(st._db[b"info"])
        st._db[b"info"] = json.dumps({**info, "format_version": store.FORMAT_VERSION + 1}).encode()
    with pytest.raises(ValueError, match="newer") as e:
        read_partition(path)
    assert str(path) in str(e.value)
    # simulate a torn create: neither the info key nor the completion marker were written
    db = rocksdict.Rdict(str(path), rocksdict.Options(raw_mode=True),
                         column_families={"blobs": rocksdict.Options(raw_mode=True),
                                          "log": rocksdict.Options(raw_mode=True)})
    db.delete(b"info")
    db.delete(b"current_generation")
    db.close()
    del db
    with pytest.raises(ValueError, match="incomplete") as e:
        read_partition(path)
    assert str(path) in str(e.value)
    with pytest.raises(ValueError, match="already exists"):
        write_partition(path, parts[0])
