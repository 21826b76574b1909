"""`id_type: string` node types: ingest numbers the user's string ids with a dictionary kept in
the store (sorted order, 0..n-1), and every answer can be turned back into them: lookups,
loader batches, LocalGraph and RemoteGraph (real servers), online additions, export rows."""
from __future__ import annotations

import hashlib
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


def test_remote_answers_in_the_users_ids(store, tmp_path):
    fleet = Fleet(tmp_path / "logs")
    try:
        servers = fleet.start_all([dict(store=store, partition=k) for k in range(2)])
        for extra in ({}, {"store": str(store)}):
            with connect(cluster_dict([[s] for s in servers], deadline_s=20, **extra)) as g:
                _check_answers(g)
                with pytest.raises(ValueError, match="read-only"):
                    g.to_internal("user", ["u-new"], create=True)
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
