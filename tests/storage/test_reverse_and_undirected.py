"""`undirected: true` and `reverse: <relation>`: declared once, stored in both directions by
ingest and by every add_edges (LocalGraph and a real gRPC cluster); `reverse: true` is the old
spelling of `out_adjacency` and creates no type; loaders warn about edgeless seed types."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from graphplat import connect, open_graph
from graphplat.sampling.loader import NodeLoader
from graphplat.schema import GraphSchema, SchemaError
from graphplat.storage.ingest import IngestError, ingest
from graphplat.testing.servers import Fleet, cluster_dict

SCHEMA = {
    "node_types": {"user": {"features": {"x": "float32[2]"}}, "item": {"features": {"x": "float32[2]"}},
                   "author": {}},
    "edge_types": [
        {"src": "user", "relation": "click", "dst": "item", "weighted": True, "reverse": "clicked-by"},
        {"src": "author", "relation": "coauthor", "dst": "author", "undirected": True},
    ],
}
CLICK, CLICKED_BY, COAUTHOR = ("user", "click", "item"), ("item", "clicked-by", "user"), \
    ("author", "coauthor", "author")


def _inputs(d: Path) -> dict:
    (d / "users.csv").write_text("id,x_0,x_1\n1,0,1\n2,1,0\n3,1,1\n")
    (d / "items.csv").write_text("id,x_0,x_1\n10,0,0\n11,1,1\n")
    (d / "clicks.csv").write_text("src,dst,weight\n1,10,0.5\n1,11,2\n2,10,1\n")
    (d / "authors.csv").write_text("id\n100\n101\n102\n")
    (d / "coauthor.csv").write_text("src,dst\n100,101\n101,102\n102,102\n")  # each pair once
    return {"schema": SCHEMA,
            "nodes": {"user": "users.csv", "item": "items.csv", "author": "authors.csv"},
            "edges": {"click": "clicks.csv", "coauthor": "coauthor.csv"}}


def _in_nbrs(g, et, ids):
    s = g.sample_neighbors(et, np.asarray(ids), -1)
    out, k = [], 0
    for c in s.counts.tolist():
        out.append(sorted(s.neighbors[k:k + c].tolist()))
        k += c
    return out


def test_schema_derives_the_reverse_type_and_round_trips():
    s = GraphSchema.from_dict(SCHEMA)
    assert s.canonical_etypes == [CLICK, CLICKED_BY, COAUTHOR]
    rev = s.edge_type(CLICKED_BY)
    assert rev.weighted and rev.reverse_of == "click" and rev.reverse is None
    assert GraphSchema.from_yaml(s.to_yaml()) == s
    assert GraphSchema.from_json(s.to_json()) == s
    assert "clicked-by" in s.to_yaml() and "item, clicked-by" not in s.to_yaml()
    with pytest.raises(SchemaError, match="declared and also created by 'reverse: clicked-by'"):
        GraphSchema.from_dict({"node_types": SCHEMA["node_types"],
                               "edge_types": SCHEMA["edge_types"] + [["item", "clicked-by", "user"]]})
    with pytest.raises(SchemaError, match="undirected needs the same source and destination"):
        GraphSchema.from_dict({"node_types": SCHEMA["node_types"],
                               "edge_types": [{"src": "user", "relation": "r", "dst": "item",
                                               "undirected": True}]})


def test_legacy_reverse_true_is_out_adjacency_and_warns(caplog):
    import graphplat.schema as schema_mod
    schema_mod._warned_legacy_reverse = False
    with caplog.at_level(logging.WARNING, logger="graphplat.schema"):
        s = GraphSchema.from_dict({"node_types": {"u": {}, "i": {}},
                                   "edge_types": [{"src": "u", "relation": "r", "dst": "i", "reverse": True}]})
    assert s.canonical_etypes == [("u", "r", "i")]  # no reverse type
    assert s.edge_type("r").out_adjacency
    assert "creates no reverse edge type" in caplog.text


def test_ingest_stores_both_directions(tmp_path):
    ingest(_inputs(tmp_path), tmp_path / "st", base_dir=tmp_path)
    with open_graph(tmp_path / "st", read_only=True) as g:
        assert g.num_edges(CLICK) == 3 and g.num_edges(CLICKED_BY) == 3
        assert _in_nbrs(g, CLICKED_BY, [1, 2, 3]) == [[10, 11], [10], []]
        w = g.edge_features(CLICKED_BY, g.sample_neighbors(CLICKED_BY, np.array([1]), -1).eids)["weight"]
        assert sorted(w.tolist()) == [0.5, 2.0]
        assert g.num_edges(COAUTHOR) == 5  # 2 pairs both ways + the self-loop once
        assert _in_nbrs(g, COAUTHOR, [100, 101, 102]) == [[101], [100, 102], [101, 102]]


def test_ingest_spec_may_not_list_the_derived_type(tmp_path):
    spec = _inputs(tmp_path)
    spec["edges"]["clicked-by"] = "clicks.csv"
    with pytest.raises(IngestError, match="is the reverse edge type of user:click:item"):
        ingest(spec, tmp_path / "st", base_dir=tmp_path)


def _check_add_edges_in_sync(g):
    g.add_edges("click", src=np.array([3]), dst=np.array([11]), weights=np.array([4.0]))
    assert _in_nbrs(g, CLICKED_BY, [3]) == [[11]]
    g.add_edges("clicked-by", src=np.array([10]), dst=np.array([3]), weights=np.array([1.0]))
    assert _in_nbrs(g, CLICK, [10]) == [[1, 2, 3]]
    assert g.num_edges(CLICK) == g.num_edges(CLICKED_BY) == 5
    g.add_edges("coauthor", src=np.array([100, 101]), dst=np.array([102, 101]))
    assert _in_nbrs(g, COAUTHOR, [100, 101, 102]) == [[101, 102], [100, 101, 102], [100, 101, 102]]
    assert g.num_edges(COAUTHOR) == 8


def test_add_edges_keeps_both_directions_local(tmp_path):
    ingest(_inputs(tmp_path), tmp_path / "st", base_dir=tmp_path, partitions=2)
    with open_graph(tmp_path / "st") as g:
        _check_add_edges_in_sync(g)
    with open_graph(tmp_path / "st", read_only=True) as g:  # durable
        assert _in_nbrs(g, CLICKED_BY, [3]) == [[10, 11]]


def test_add_edges_keeps_both_directions_remote(tmp_path):
    ingest(_inputs(tmp_path), tmp_path / "st", base_dir=tmp_path, partitions=2)
    fleet = Fleet(tmp_path / "logs")
    try:
        servers = fleet.start_all([dict(store=tmp_path / "st", partition=k) for k in range(2)])
        with connect(cluster_dict([[s] for s in servers], deadline_s=20)) as g:
            assert g.schema.edge_type(CLICKED_BY).reverse_of == "click"
            _check_add_edges_in_sync(g)
    finally:
        fleet.close()


def test_loader_warns_when_seed_blocks_have_no_edges(caplog):
    from graphplat.storage.graph_arrays import GraphArrays
    schema = GraphSchema.from_dict({"node_types": {"user": {}, "item": {}},
                                    "edge_types": [["user", "click", "item"]]})
    g = GraphArrays(schema, {"user": np.arange(3), "item": np.arange(2)},
                    edges={"click": (np.array([0, 1]), np.array([1, 1]))}).to_local()
    with caplog.at_level(logging.WARNING, logger="graphplat.sampling.loader"):
        NodeLoader(g, {"user": np.arange(3)}, [2], batch_size=2, labels=None)
    assert "no sampled edge type ends at node type 'user'" in caplog.text
    assert "'reverse: click-by' on user:click:item" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="graphplat.sampling.loader"):
        NodeLoader(g, {"item": np.arange(2)}, [2], batch_size=2, labels=None)
    assert "no sampled edge type" not in caplog.text
