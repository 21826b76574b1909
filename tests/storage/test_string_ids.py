"""`id_type: string` node types: ingest numbers the user's string ids with a dictionary kept in
the store (sorted order, 0..n-1), and every answer can be turned back into them: lookups,
loader batches, LocalGraph and RemoteGraph (real servers), online additions, export rows."""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import yaml

from graphplat import connect, open_graph
from graphplat.sampling.loader import NodeLoader
from graphplat.storage.ingest import IngestError, ingest
from graphplat.testing.servers import Fleet, cluster_dict

EMAILS = [hashlib.sha256(f"user{i}@example.com".encode()).hexdigest() for i in range(3)]
USERS = ["u0", "u1", "u10", "u2"] + EMAILS
ITEMS = ["item-1", "item-0", "item-2"]


def write_inputs(d: Path, users=None, clicks=None) -> Path:
    users = users or [f"{u},{i % 2},{i * 1.5}" for i, u in enumerate(USERS)]
    clicks = clicks or [f"{u},{ITEMS[i % 3]}" for i, u in enumerate(USERS)] + ["u0,item-2"]
    (d / "users.csv").write_text("id,label,age\n" + "\n".join(users) + "\n")
    (d / "items.csv").write_text("id\n" + "\n".join(ITEMS) + "\n")
    (d / "clicks.csv").write_text("src,dst\n" + "\n".join(clicks) + "\n")
    spec = {"schema": {"node_types": {"user": {"id_type": "string",
                                               "features": {"label": "int64", "age": "float32"}},
                                      "item": {"id_type": "string"}},
                       "edge_types": [{"src": "user", "relation": "click", "dst": "item",
                                       "reverse": "clicked-by"}]},
            "nodes": {"user": "users.csv", "item": "items.csv"}, "edges": {"click": "clicks.csv"}}
    (d / "spec.yaml").write_text(yaml.safe_dump(spec))
    return d / "spec.yaml"


@pytest.fixture
def store(tmp_path):
    return ingest(write_inputs(tmp_path), tmp_path / "st", partitions=2)


def _clicked(g, users):
    """The items each user clicked, as the user's strings (via the reverse type)."""
    s = g.sample_neighbors("clicked-by", g.to_internal("user", users), -1)
    items = g.to_external("item", s.neighbors)
    out, k = [], 0
    for c in s.counts.tolist():
        out.append(sorted(items[k:k + c].tolist()))
        k += c
    return out


def _check_answers(g):
    ids = g.to_internal("user", USERS)
    assert ids.dtype == np.int64 and sorted(ids.tolist()) == list(range(len(USERS)))
    assert ids.tolist() == [sorted(USERS).index(u) for u in USERS]  # sorted order: deterministic
    assert g.to_external("user", ids).tolist() == USERS
    assert sorted(g.to_external("user", g.node_ids("user")).tolist()) == sorted(USERS)
    assert g.lookup("user", ids).all()
    assert _clicked(g, ["u0", EMAILS[0]]) == [["item-1", "item-2"], ["item-0"]]
    age = g.node_features("user", g.to_internal("user", ["u10"]), ["age"])["age"]
    assert age.tolist() == [3.0]
    with pytest.raises(IndexError, match="unknown 'user' id\\(s\\), e.g. 'nobody'"):
        g.to_internal("user", ["u0", "nobody"])
    with pytest.raises(IndexError, match="have no string id"):
        g.to_external("user", [len(USERS)])


def test_local_answers_in_the_users_ids(store):
    with open_graph(store, read_only=True) as g:
        _check_answers(g)
        loader = NodeLoader(g, {"user": g.to_internal("user", USERS[:3])}, [-1], batch_size=3,
                            labels="label")
        (input_nodes, output_nodes, blocks), = list(loader)
        assert sorted(g.to_external("user", output_nodes["user"].numpy()).tolist()) == sorted(USERS[:3])
        assert set(g.to_external("item", input_nodes["item"].numpy()).tolist()) <= set(ITEMS)


def test_online_additions_are_durable_and_remote_is_read_only(store, tmp_path):
    with open_graph(store) as g:
        new = g.to_internal("user", ["u-new"], create=True)
        assert new.tolist() == [len(USERS)]
        assert g.to_internal("user", ["u-new", "u0"], create=True).tolist() == [len(USERS), sorted(USERS).index("u0")]  # retry-safe
        g.add_nodes("user", new, {"label": np.array([1]), "age": np.array([5.0], np.float32)})
        g.add_edges("click", new, g.to_internal("item", ["item-0"]))
    with open_graph(store, read_only=True) as g:
        assert g.to_external("user", g.to_internal("user", ["u-new"])).tolist() == ["u-new"]
        assert _clicked(g, ["u-new"]) == [["item-0"]]
        with pytest.raises(ValueError, match="read-only"):
            g.to_internal("user", ["another"], create=True)


def test_a_torn_last_line_is_cut_before_the_next_addition(store):
    """A write killed mid-line (never acknowledged) must not swallow the next addition."""
    with open_graph(store) as g:
        g.to_internal("user", ["kept"], create=True)
    with open(store / "ids" / "user.added", "ab") as f:
        f.write(b'"half-writ')
    with open_graph(store) as g:
        assert g.to_internal("user", ["next"], create=True).tolist() == [len(USERS) + 1]
    with open_graph(store, read_only=True) as g:
        assert g.to_external("user", [len(USERS), len(USERS) + 1]).tolist() == ["kept", "next"]


def test_remote_answers_in_the_users_ids(store, tmp_path):
    fleet = Fleet(tmp_path / "logs")
    try:
        servers = fleet.start_all([dict(store=store, partition=k) for k in range(2)])
        for extra in ({}, {"store": str(store)}):
            with connect(cluster_dict([[s] for s in servers], deadline_s=20, **extra)) as g:
                _check_answers(g)
    finally:
        fleet.close()


def test_remote_clients_add_strings_through_partition_0(store, tmp_path):
    """Two clients adding overlapping new strings at once get one id per string (the
    primary of partition 0 is the one authority), each sees the other's strings, the ids
    survive SIGKILL and restart of that primary, and numbering continues after it."""
    fleet = Fleet(tmp_path / "logs")
    try:
        layout = fleet.start_replicated(store, 2)
        cluster = cluster_dict(layout, deadline_s=20)
        with connect(cluster) as a, connect(cluster) as b:
            batches = {a: [f"x{i}" for i in range(0, 60)], b: [f"x{i}" for i in range(30, 90)]}
            with ThreadPoolExecutor(2) as pool:
                got = dict(zip(batches, pool.map(lambda g: g.to_internal("user", batches[g], create=True),
                                                 batches)))
            ids = {s: i for g in batches for s, i in zip(batches[g], got[g].tolist())}
            assert sorted(ids.values()) == list(range(len(USERS), len(USERS) + 90))  # 90 strings, 90 ids
            assert b.to_internal("user", batches[a]).tolist() == got[a].tolist()  # b sees a's strings
            assert a.to_external("user", got[b]).tolist() == batches[b]
            new = a.add_nodes("user", ["n-0", "n-1"], {"label": np.array([0, 1]),
                                                       "age": np.array([1.0, 2.0], np.float32)})
            a.add_edges("click", new, a.to_internal("item", ["item-2", "item-0"]))
            assert b.lookup("user", b.to_internal("user", ["n-0", "n-1"])).all()
            assert _clicked(b, ["n-1"]) == [["item-0"]]
            with pytest.raises(ValueError, match="already present"):
                b.add_nodes("user", ["n-0"])
            with pytest.raises(IndexError, match="unknown 'user' id\\(s\\), e.g. 'nobody'"):
                b.to_internal("user", ["nobody"])

            primary = layout[0][0]
            primary.kill()  # SIGKILL: lookups fail over to partition 0's replica, adds wait
            assert b.to_internal("user", ["x89"]).tolist() == [ids["x89"]]
            with connect(cluster) as c:  # a new client fetches the dictionary from the replica
                assert c.to_external("user", [ids["x5"], new[1]]).tolist() == ["x5", "n-1"]
            primary.restart().wait_ready()
            assert a.to_internal("user", ["x0", "after"], create=True).tolist() == [ids["x0"], len(USERS) + 92]
        with connect(cluster) as c:
            assert c.to_internal("user", ["x0", "x89", "n-1", "after"]).tolist() == [
                ids["x0"], ids["x89"], new[1], len(USERS) + 92]
    finally:
        fleet.close()
    with open_graph(store) as g:  # the served additions are the store's own
        assert g.to_internal("user", ["after"]).tolist() == [len(USERS) + 92]
        assert g.to_internal("user", ["local"], create=True).tolist() == [len(USERS) + 93]


def test_a_dictionary_larger_than_a_message_streams(tmp_path):
    """Connect fetches a dictionary far larger than the servers' 1 MiB message limit in pieces."""
    users = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(40_000)]  # 2.6 MB of strings
    spec = write_inputs(tmp_path, users=[f"{u},0,1.0" for u in users], clicks=[f"{users[0]},item-0"])
    store = ingest(spec, tmp_path / "st", partitions=2)
    fleet = Fleet(tmp_path / "logs")
    try:
        servers = fleet.start_all([dict(store=store, partition=k, args=["--max-message-mb", "1"])
                                   for k in range(2)])
        with connect(cluster_dict([[s] for s in servers], deadline_s=30, max_message_mb=1)) as g:
            ids = g.node_ids("user")
            assert sorted(g.to_external("user", ids).tolist()) == sorted(users)
            assert g.to_internal("user", users[:3]).tolist() == [sorted(users).index(u) for u in users[:3]]
            assert g.to_internal("user", users, create=True).tolist() == g.to_internal("user", users).tolist()
            more = [u + "-new" for u in users[:20_000]]  # 1.4 MB of new strings: several AddIdStrings
            assert g.to_internal("user", more, create=True).tolist() == list(range(40_000, 60_000))
    finally:
        fleet.close()


def test_bad_string_rows_name_the_strings(tmp_path):
    spec = write_inputs(tmp_path, users=["u0,0,1", "u1,1,2", "u0,1,3", ",0,0"],
                        clicks=["u0,item-1", "ghost,item-0", "u1,item-9"])
    with pytest.raises(IngestError) as e:
        ingest(spec, tmp_path / "st")
    msg = str(e.value)
    assert "users.csv:4: duplicate node id 'u0' of type 'user' (first at " in msg
    assert "users.csv:5: column 'id' (node id): missing value" in msg
    assert "clicks.csv:3: column 'src': source id 'ghost' is not a node of type 'user'" in msg
    assert "clicks.csv:4: column 'dst': destination id 'item-9' is not a node of type 'item'" in msg


def test_export_rows_carry_the_users_ids(store, tmp_path):
    from graphplat.cli import main as cli_main
    from graphplat.inference.export import read_embeddings
    from graphplat.training.config import TrainConfig
    from graphplat.training.loop import train

    cfg = TrainConfig.from_dict({"graph": str(store), "task": "node_classification", "target_ntype": "user",
                                 "feature": "age", "split_fractions": [0.5, 0.25, 0.25], "epochs": 1, "metric": "accuracy",
                                 "model": {"name": "hsage", "hidden": 4, "num_layers": 1}, "fanouts": [2],
                                 "checkpoint_dir": str(tmp_path / "ck")})
    train(cfg)
    for out in (tmp_path / "emb.parquet", tmp_path / "emb.npy"):
        assert cli_main(["export", "--checkpoint", str(tmp_path / "ck" / "seed-0" / "best.pt"), "--graph",
                            str(store), "--out", str(out)]) == 0
        ids, emb = read_embeddings(out)
        assert sorted(ids.tolist()) == sorted(USERS) and emb.shape == (len(USERS), 2)
