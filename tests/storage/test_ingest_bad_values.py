"""Values the store cannot hold are refused with file:line, never stored wrong: infinite
float features, ids beyond int64 (which used to wrap or round)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphplat import open_graph
from graphplat.storage.graph_arrays import GraphArrays
from graphplat.storage.ingest import IngestError, ingest

SCHEMA = {"node_types": {"user": {"features": {"x": "float32[2]", "age": "float32"}}, "item": {}},
          "edge_types": [["user", "click", "item"]]}


def _spec(d: Path, users: str, clicks: str = "src,dst\n3,5\n") -> dict:
    (d / "u.csv").write_text(users)
    (d / "i.csv").write_text("id\n5\n")
    (d / "c.csv").write_text(clicks)
    return {"schema": SCHEMA, "nodes": {"user": {"path": "u.csv"}, "item": {"path": "i.csv"}},
            "edges": {"click": {"path": "c.csv"}}}


def test_infinite_features_name_file_and_line(tmp_path):
    spec = _spec(tmp_path, "id,x_0,x_1,age\n1,0.5,1,3\n3,1,inf,1\n4,1,1,-inf\n", "src,dst\n1,5\n")
    with pytest.raises(IngestError) as e:
        ingest(spec, tmp_path / "st", base_dir=tmp_path)
    msg = str(e.value)
    assert "2 bad input rows" in msg
    assert "u.csv:3: feature 'x' column 'x_1': infinite value inf in a float32 feature" in msg
    assert "u.csv:4: feature 'age': infinite value -inf in a float32 feature" in msg
    assert not (tmp_path / "st").exists()


def test_ids_beyond_int64_are_refused_not_wrapped(tmp_path):
    spec = _spec(tmp_path, "id,x_0,x_1,age\n3,1,1,1\n9223372036854775808,1,1,1\n"
                           "18446744073709551615,0,0,0\n")
    with pytest.raises(IngestError) as e:
        ingest(spec, tmp_path / "st", base_dir=tmp_path)
    msg = str(e.value)
    assert "u.csv:3: column 'id' (node id): value '9223372036854775808' out of the int64 range" in msg
    assert "u.csv:4: column 'id' (node id): value '18446744073709551615' out of the int64 range" in msg


def test_large_ids_are_exact_when_another_row_overflows(tmp_path):
    # one value beyond 2^64 used to make the whole column double: 2^62 + 1 became 2^62
    spec = _spec(tmp_path, "id,x_0,x_1,age\n4611686018427387905,1,1,1\n3,0,0,0\n"
                           "99999999999999999999,0,0,0\n")
    ingest(spec, tmp_path / "st", base_dir=tmp_path, skip_bad_rows=True)
    with open_graph(tmp_path / "st", read_only=True) as g:
        assert sorted(g.node_ids("user").tolist()) == [3, 2 ** 62 + 1]


def test_uint64_ids_beyond_int64_are_refused_online_and_in_arrays(tmp_path):
    ingest(_spec(tmp_path, "id,x_0,x_1,age\n3,1,1,1\n"), tmp_path / "st", base_dir=tmp_path)
    with open_graph(tmp_path / "st") as g:
        with pytest.raises(ValueError, match="do not fit in int64, e.g. 9223372036854775808"):
            g.add_nodes("item", np.array([7, 2 ** 63], dtype=np.uint64))
        assert not g.lookup("item", np.array([-(2 ** 63), 7])).any()
        g.add_nodes("item", np.array([7], dtype=np.uint64))  # in range: fine
        assert g.lookup("item", np.array([7])).all()
    from graphplat.schema import GraphSchema
    with pytest.raises(ValueError, match="do not fit in int64"):
        GraphArrays(GraphSchema.from_dict({"node_types": {"item": {}}}),
                    {"item": np.array([2 ** 64 - 1], dtype=np.uint64)})


def _cli(*argv) -> int:
    from graphplat.cli.ingest import main_ingest
    return main_ingest([str(a) for a in argv])


def _spec_file(d: Path, users: str, clicks: str) -> Path:
    import yaml
    spec = _spec(d, users, clicks)
    (d / "spec.yaml").write_text(yaml.safe_dump(spec))
    return d / "spec.yaml"


def test_skip_bad_rows_keeping_nothing_fails(tmp_path):
    # string ids in an int64 id column: every user row is bad, so is every click
    spec = _spec_file(tmp_path, "id,x_0,x_1,age\nu0,1,1,1\nu1,0,0,0\n", "src,dst\nu0,5\nu1,5\n")
    assert _cli(spec, tmp_path / "st", "--skip-bad-rows") == 1
    assert not (tmp_path / "st").exists()
    with pytest.raises(IngestError, match="every input row of node type 'user' \\(2 rows\\), "
                                          "edge type 'user:click:item' \\(2 rows\\) is bad"):
        ingest(spec, tmp_path / "st", skip_bad_rows=True)


def test_max_bad_rows_count_and_fraction(tmp_path):
    # 7 input rows (4 users, 1 item, 2 clicks), 2 of them bad (a user and its click)
    spec = _spec_file(tmp_path, "id,x_0,x_1,age\n1,1,1,1\n2,0,0,0\n3,0,x,0\n4,0,0,0\n",
                      "src,dst\n1,5\n3,5\n")
    assert _cli(spec, tmp_path / "a", "--max-bad-rows", "1") == 1
    assert not (tmp_path / "a").exists()
    assert _cli(spec, tmp_path / "b", "--max-bad-rows", "0.2") == 1
    assert _cli(spec, tmp_path / "c", "--max-bad-rows", "2") == 0
    assert _cli(spec, tmp_path / "d", "--max-bad-rows", "0.3") == 0
    with open_graph(tmp_path / "d", read_only=True) as g:
        assert sorted(g.node_ids("user").tolist()) == [1, 2, 4]
        assert g.num_edges("click") == 1
    with pytest.raises(SystemExit) as e:
        _cli(spec, tmp_path / "e", "--max-bad-rows", "1.5")
    assert e.value.code == 2
    with pytest.raises(ValueError, match="max_bad_rows must be a count >= 0 or a fraction"):
        ingest(spec, tmp_path / "f", skip_bad_rows=True, max_bad_rows=-1)
