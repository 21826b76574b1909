"""`graphplat ingest`: CSV / Parquet / NPY inputs, validation with file:line, atomicity, METIS."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from graphplat.cli.ingest import main_ingest
from graphplat.errors import IngestError
from graphplat.schema import GraphSchema
from graphplat.service import EID_PARTITION_SHIFT
from graphplat.storage.ingest import ingest
from graphplat.storage.store import open_store
from graphplat.testing.servers import kill_when_logged

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCHEMA = {
    "node_types": {
        "author": {"features": {"emb": "float32[4]", "age": "int64"}},
        "paper": {"features": {"feat": "float32[3]", "label": "int64"}},
        "venue": {},
    },
    "edge_types": [
        {"src": "author", "relation": "writes", "dst": "paper", "weighted": True,
         "out_adjacency": True, "features": {"pos": "int64"}},
        ["paper", "cites", "paper"],
        ["paper", "in", "venue"],
    ],
}
WRITES = ("author", "writes", "paper")
CITES = ("paper", "cites", "paper")
IN = ("paper", "in", "venue")


# ----------------------------------------------------------------------------- input graph


def make_graph(seed=0, n_author=40, n_paper=30, n_venue=5, n_writes=120, n_cites=60):
    rng = np.random.default_rng(seed)
    # ids: arbitrary int64, some beyond 2**53 (must survive CSV exactly), some negative
    authors = np.concatenate([rng.choice(2 ** 62, n_author - 2, replace=False) + 2 ** 60,
                              [-3, 5]]).astype(np.int64)
    papers = (np.arange(n_paper, dtype=np.int64) * 7919 + 11)
    venues = np.arange(n_venue, dtype=np.int64) + 900
    g = {
        "nodes": {"author": authors, "paper": papers, "venue": venues},
        "feat": {
            "author": {"emb": (rng.integers(-800, 800, (n_author, 4)) / 8).astype(np.float32),
                       "age": rng.integers(18, 90, n_author)},
            "paper": {"feat": (rng.integers(-800, 800, (n_paper, 3)) / 4).astype(np.float32),
                      "label": rng.integers(0, 3, n_paper)},
            "venue": {},
        },
        "edges": {
            WRITES: {"src": rng.choice(authors, n_writes), "dst": rng.choice(papers, n_writes),
                     "weight": (rng.integers(0, 40, n_writes) / 4).astype(np.float32),
                     "pos": rng.integers(0, 5, n_writes)},
            CITES: {"src": rng.choice(papers, n_cites), "dst": rng.choice(papers, n_cites)},
            IN: {"src": papers.copy(), "dst": rng.choice(venues, n_paper)},
        },
    }
    return g


def write_inputs(g, d: Path, fmt: str) -> Path:
    """Write graph ``g`` as ``fmt`` files plus schema and spec into ``d``; returns the spec."""
    d.mkdir(parents=True, exist_ok=True)
    GraphSchema.from_dict(SCHEMA).save(d / "schema.yaml")
    a, p = g["feat"]["author"], g["feat"]["paper"]
    w, c, i = g["edges"][WRITES], g["edges"][CITES], g["edges"][IN]
    if fmt == "csv":
        adf = pd.DataFrame({"author_id": g["nodes"]["author"], "age": a["age"]})
        for j in range(4):
            adf[f"e_{j}"] = a["emb"][:, j]
        adf.to_csv(d / "authors.csv", index=False)
        pd.DataFrame({"id": g["nodes"]["paper"],
                      "feat": [" ".join(str(x) for x in row) for row in p["feat"].tolist()],
                      "label": p["label"]}).to_csv(d / "papers.csv", index=False)
        pd.DataFrame({"id": g["nodes"]["venue"]}).to_csv(d / "venues.csv", index=False)
        pd.DataFrame({"a": w["src"], "p": w["dst"], "w": w["weight"], "pos": w["pos"]}).to_csv(
            d / "writes.csv", index=False)
        pd.DataFrame({"src": c["src"], "dst": c["dst"]}).to_csv(d / "cites.csv", index=False)
        with open(d / "in.tsv", "w") as f:  # headerless TSV
            for s, t in zip(i["src"].tolist(), i["dst"].tolist()):
                f.write(f"{s}\t{t}\n")
        spec = {
            "schema": "schema.yaml",
            "nodes": {"author": {"path": "authors.csv", "id": "author_id",
                                 "features": {"emb": {"prefix": "e_"}}},
                      "paper": "papers.csv", "venue": "venues.csv"},
            "edges": {"writes": {"path": "writes.csv", "src": "a", "dst": "p", "weight": "w"},
                      "paper:cites:paper": "cites.csv",
                      "in": {"path": "in.tsv", "header": False, "column_names": ["src", "dst"]}},
        }
    elif fmt == "parquet":
        emb = pa.FixedSizeListArray.from_arrays(pa.array(a["emb"].reshape(-1)), 4)
        pq.write_table(pa.table({"id": g["nodes"]["author"], "emb": emb, "age": a["age"]}),
                       d / "authors.parquet")
        pq.write_table(pa.table({"id": g["nodes"]["paper"],
                                 "vec": pa.array(p["feat"].tolist(), pa.list_(pa.float32())),
                                 "label": p["label"]}), d / "papers.parquet")
        # paper:in:venue edges split over two files (a glob)
        half = len(i["src"]) // 2
        for k, sl in enumerate((slice(0, half), slice(half, None))):
            pq.write_table(pa.table({"src": i["src"][sl], "dst": i["dst"][sl]}), d / f"in-{k}.parquet")
        pq.write_table(pa.table({"src": w["src"], "dst": w["dst"], "weight": w["weight"],
                                 "pos": w["pos"]}), d / "writes.parquet")
        pq.write_table(pa.table({"src": c["src"], "dst": c["dst"]}), d / "cites.parquet")
        spec = {
            "schema": "schema.yaml",
            "nodes": {"author": "authors.parquet",
                      "paper": {"path": "papers.parquet", "features": {"feat": "vec"}},
                      "venue": {"from_edges": True}},
            "edges": {"writes": "writes.parquet", "cites": "cites.parquet", "in": "in-*.parquet"},
        }
    else:
        def save(sub, **arrays):
            (d / sub).mkdir(exist_ok=True)
            for k, v in arrays.items():
                np.save(d / sub / f"{k}.npy", v)
        save("authors", ids=g["nodes"]["author"], emb=a["emb"], age=a["age"])
        save("papers", ids=g["nodes"]["paper"], feat=p["feat"], label=p["label"].astype(np.float64))
        save("venues", ids=g["nodes"]["venue"].astype(np.int32))
        save("writes", src=w["src"], dst=w["dst"], weight=w["weight"], pos=w["pos"])
        save("cites", src=c["src"], dst=c["dst"])
        save("in", src=i["src"], dst=i["dst"])
        spec = {"schema": "schema.yaml",
                "nodes": {"author": "authors", "paper": "papers", "venue": {"path": "venues"}},
                "edges": {"writes": "writes", "cites": "cites", "in": {"path": "in", "format": "npy"}}}
    path = d / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


# ----------------------------------------------------------------------------- reading back


def read_store(path):
    """Reassemble the whole graph from every partition of a store, checking consistency."""
    info = open_store(path)
    schema = info.schema
    parts = [info.read_partition(k) for k in range(info.num_partitions)]
    nodes, feats, edges = {}, {}, {}
    for nt in schema.node_types:
        ids = np.concatenate([p.node_ids[nt.name] for p in parts])
        order = np.argsort(ids)
        nodes[nt.name] = ids[order]
        feats[nt.name] = {f: np.concatenate([p.node_features[nt.name][f] for p in parts])[order]
                          for f in nt.feature_names}
        for k, p in enumerate(parts):  # the book agrees with where nodes are
            assert (info.book.partition_of(nt.name, p.node_ids[nt.name]) == k).all()
    for et in schema.edge_types:
        key = et.canonical
        rows = []
        for k, p in enumerate(parts):
            adj = p.in_adj[key]
            dst = np.repeat(p.node_ids[et.dst], np.diff(adj.indptr))
            src = adj.halo_ids[adj.indices]
            assert ((adj.eids >> EID_PARTITION_SHIFT) == k).all()
            local = adj.eids & ((1 << EID_PARTITION_SHIFT) - 1)
            assert sorted(local.tolist()) == list(range(adj.nnz))
            cols = [src.tolist(), dst.tolist()]
            if et.weighted:
                cols.append(adj.weights.tolist())
            for f in et.feature_names:
                cols.append(p.edge_features[key][f][local].tolist())
            rows += list(zip(*cols))
            if et.out_adjacency:
                out = p.out_adj[key]
                o_src = np.repeat(p.node_ids[et.src], np.diff(out.indptr))
                o_dst = out.halo_ids[out.indices]
                # every out-edge exists as an in-edge in the owner partition (matched by eid)
                for s, t, e in zip(o_src.tolist(), o_dst.tolist(), out.eids.tolist()):
                    owner = parts[e >> EID_PARTITION_SHIFT]
                    oa = owner.in_adj[key]
                    pos = int(np.flatnonzero(oa.eids == e)[0])
                    row = int(np.searchsorted(oa.indptr, pos, side="right") - 1)
                    assert (oa.halo_ids[oa.indices[pos]], owner.node_ids[et.dst][row]) == (s, t)
        edges[key] = sorted(rows)
    return nodes, feats, edges


def expected(g, drop_nodes=None, drop_edges=None):
    """The graph as read_store returns it, minus some nodes (and their edges) / edge rows."""
    drop_nodes = drop_nodes or {}
    drop_edges = drop_edges or {}
    nodes, feats, edges = {}, {}, {}
    keep_ids = {}
    for nt, ids in g["nodes"].items():
        keep = ~np.isin(ids, list(drop_nodes.get(nt, [])))
        keep_ids[nt] = set(ids[keep].tolist())
        order = np.argsort(ids[keep])
        nodes[nt] = ids[keep][order]
        feats[nt] = {f: v[keep][order] for f, v in g["feat"][nt].items()}
    for et in GraphSchema.from_dict(SCHEMA).edge_types:
        e = g["edges"][et.canonical]
        cols = [e["src"].tolist(), e["dst"].tolist()]
        if et.weighted:
            cols.append(e["weight"].tolist())
        cols += [e[f].tolist() for f in et.feature_names]
        rows = []
        for r, row in enumerate(zip(*cols)):
            if r in drop_edges.get(et.canonical, ()):
                continue
            if row[0] in keep_ids[et.src] and row[1] in keep_ids[et.dst]:
                rows.append(row)
        edges[et.canonical] = sorted(rows)
    return nodes, feats, edges


def assert_graph_equal(got, want):
    gn, gf, ge = got
    wn, wf, we = want
    assert set(gn) == set(wn)
    for nt in wn:
        np.testing.assert_array_equal(gn[nt], wn[nt])
        for f in wf[nt]:
            assert gf[nt][f].dtype == wf[nt][f].dtype
            np.testing.assert_array_equal(gf[nt][f], wf[nt][f])
    for key in we:
        assert ge[key] == we[key], key


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize("fmt", ["csv", "parquet", "npy"])
def test_ingest_round_trip(tmp_path, fmt):
    g = make_graph()
    spec = write_inputs(g, tmp_path / "in", fmt)
    out = ingest(spec, tmp_path / "store", partitions=2)
    assert out == (tmp_path / "store").absolute()
    info = open_store(out)
    assert info.num_partitions == 2 and info.meta["partitioner"] == "hash"
    assert all(len(info.read_partition(k).node_ids["author"]) > 0 for k in range(2))
    assert_graph_equal(read_store(out), expected(g))
    assert [p.name for p in tmp_path.iterdir() if "tmp" in p.name] == []


def test_ingest_dict_spec_and_overwrite(tmp_path):
    g = make_graph(seed=1)
    spec_path = write_inputs(g, tmp_path / "in", "csv")
    spec = yaml.safe_load(spec_path.read_text())
    out = tmp_path / "store"
    ingest(spec, out, partitions=3, base_dir=tmp_path / "in")
    with pytest.raises(FileExistsError):
        ingest(spec, out, base_dir=tmp_path / "in")
    ingest(spec, out, partitions=2, overwrite=True, base_dir=tmp_path / "in")
    assert open_store(out).num_partitions == 2
    assert_graph_equal(read_store(out), expected(g))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "store"]
    not_a_store = tmp_path / "precious"
    not_a_store.mkdir()
    (not_a_store / "data.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a graphplat store"):
        ingest(spec, not_a_store, overwrite=True, base_dir=tmp_path / "in")
    assert (not_a_store / "data.txt").exists()


def _edit_csv(path: Path, fn):
    lines = path.read_text().splitlines()
    path.write_text("\n".join(fn(lines)) + "\n")


def _set_field(line: str, col: int, value: str) -> str:
    parts = line.split(",")
    parts[col] = value
    return ",".join(parts)


def _broken_cases(g):
    """(name, file, edit(lines) -> lines, expected message regex, expected() kwargs or None)."""
    a_ids, p_ids = g["nodes"]["author"], g["nodes"]["paper"]
    # authors.csv columns: author_id, age, e_0..e_3 ; papers.csv: id, feat, label
    return [
        ("unknown node", "writes.csv",
         lambda L: L[:5] + [_set_field(L[5], 1, "424242")] + L[6:],
         r"writes\.csv:6: column 'p': destination id 424242 is not a node of type 'paper'",
         {"drop_edges": {WRITES: {4}}}),
        ("wrong width", "papers.csv",
         lambda L: L[:3] + [_set_field(L[3], 1, '"1.5 2"')] + L[4:],
         r"papers\.csv:4: feature 'feat': wrong feature width: expected 3 values, got 2",
         {"drop_nodes": {"paper": {int(p_ids[2])}}}),
        ("non-numeric", "authors.csv",
         lambda L: L[:7] + [_set_field(L[7], 1, "old")] + L[8:],
         r"authors\.csv:8: feature 'age': non-numeric value 'old'",
         {"drop_nodes": {"author": {int(a_ids[6])}}}),
        ("nan in int64", "authors.csv",
         lambda L: L[:2] + [_set_field(L[2], 1, "NaN")] + L[3:],
         r"authors\.csv:3: feature 'age': NaN in an int64 column",
         {"drop_nodes": {"author": {int(a_ids[1])}}}),
        ("duplicate id", "authors.csv",
         lambda L: L + [_set_field(L[4], 1, "99")],
         r"authors\.csv:%d: duplicate node id %d of type 'author' \(first at .*authors\.csv:5\)"
         % (len(a_ids) + 2, a_ids[3]),
         {}),
        ("missing column", "writes.csv",
         lambda L: [",".join(x.split(",")[:2] + x.split(",")[3:]) for x in L],
         r"writes\.csv:1: missing column 'w'", None),
    ]


def test_broken_inputs(tmp_path):
    g = make_graph(seed=2)
    for k, (name, fname, edit, msg, kw) in enumerate(_broken_cases(g)):
        d = tmp_path / f"case{k}"
        spec = write_inputs(g, d, "csv")
        _edit_csv(d / fname, edit)
        with pytest.raises(IngestError, match=msg):
            ingest(spec, d / "store", partitions=2)
        assert not (d / "store").exists(), name
        assert not list(d.glob("store.tmp-*")), name
        if kw is None:  # a file-level problem: skipping rows cannot help
            with pytest.raises(IngestError, match=msg):
                ingest(spec, d / "store", partitions=2, skip_bad_rows=True)
            continue
        ingest(spec, d / "store", partitions=2, skip_bad_rows=True)
        assert_graph_equal(read_store(d / "store"), expected(g, **kw))


def test_broken_parquet_and_npy_name_rows(tmp_path):
    g = make_graph(seed=3)
    spec = write_inputs(g, tmp_path / "pq", "parquet")
    t = pq.read_table(tmp_path / "pq" / "authors.parquet").to_pydict()
    t["id"][5] = t["id"][2]
    t["emb"][7] = [1.0, 2.0]
    pq.write_table(pa.table(t), tmp_path / "pq" / "authors.parquet")
    with pytest.raises(IngestError) as e:
        ingest(spec, tmp_path / "s1", partitions=2)
    text = str(e.value)
    assert "authors.parquet: row 5: duplicate node id" in text
    assert "authors.parquet: row 7: feature 'emb': wrong feature width: expected 4 values, got 2" in text
    ingest(spec, tmp_path / "s1", partitions=2, skip_bad_rows=True)
    assert_graph_equal(read_store(tmp_path / "s1"),
                       expected(g, drop_nodes={"author": {int(g["nodes"]["author"][5]),
                                                          int(g["nodes"]["author"][7])}}))

    spec = write_inputs(g, tmp_path / "npy", "npy")
    label = np.load(tmp_path / "npy" / "papers" / "label.npy")
    label[3] = np.nan
    label[4] = 1.5
    np.save(tmp_path / "npy" / "papers" / "label.npy", label)
    with pytest.raises(IngestError) as e:
        ingest(spec, tmp_path / "s2", partitions=2)
    assert "label.npy: row 3: feature 'label': NaN in an int64 column" in str(e.value)
    assert "label.npy: row 4: feature 'label': non-integral value 1.5" in str(e.value)
    np.save(tmp_path / "npy" / "papers" / "label.npy", label[:-1])
    with pytest.raises(IngestError, match=r"label\.npy: has 29 rows but ids\.npy has 30"):
        ingest(spec, tmp_path / "s2", partitions=2, skip_bad_rows=True)


def test_spec_errors(tmp_path):
    g = make_graph()
    spec_path = write_inputs(g, tmp_path, "csv")
    spec = yaml.safe_load(spec_path.read_text())
    with pytest.raises(IngestError, match="unknown key"):
        ingest({**spec, "nodez": {}}, tmp_path / "s", base_dir=tmp_path)
    with pytest.raises(IngestError, match="unknown node type 'autor'"):
        ingest({**spec, "nodes": {"autor": "authors.csv"}}, tmp_path / "s", base_dir=tmp_path)
    with pytest.raises(IngestError, match="nothere.csv"):
        ingest({**spec, "edges": {"cites": "nothere.csv"}}, tmp_path / "s", base_dir=tmp_path)
    with pytest.raises(IngestError, match="not weighted"):
        ingest({**spec, "edges": {"cites": {"path": "cites.csv", "weight": "w"}}}, tmp_path / "s",
               base_dir=tmp_path)
    # a vector feature given as one numeric column
    bad = {**spec, "nodes": {**spec["nodes"], "author": {"path": "authors.csv", "id": "author_id",
                                                          "features": {"emb": "age"}}}}
    with pytest.raises(IngestError, match="wrong feature width"):
        ingest(bad, tmp_path / "s", base_dir=tmp_path)
    assert not (tmp_path / "s").exists()


def test_cli(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main_ingest(["--help"])
    assert e.value.code == 0
    assert "--skip-bad-rows" in capsys.readouterr().out
    g = make_graph()
    spec = write_inputs(g, tmp_path / "in", "csv")
    assert main_ingest([str(spec), str(tmp_path / "s"), "--partitions", "2"]) == 0
    assert main_ingest([str(spec), str(tmp_path / "s")]) == 1  # exists
    _edit_csv(tmp_path / "in" / "cites.csv", lambda L: L + ["1,2"])
    assert main_ingest([str(spec), str(tmp_path / "s2")]) == 1
    assert main_ingest([str(spec), str(tmp_path / "s2"), "--skip-bad-rows"]) == 0


def test_killed_ingest_leaves_no_store(tmp_path):
    g = make_graph(seed=4)
    spec = write_inputs(g, tmp_path / "in", "csv")
    out = tmp_path / "store"
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    pid, seen = kill_when_logged([sys.executable, "-m", "graphplat.testing.slow", "60", "graphplat.cli.ingest",
                                  str(spec), str(out),
                                  "--partitions", "3", "-v"], "wrote partition 0", env=env)
    assert any("wrote partition 0" in s for s in seen), "".join(seen)
    staged = tmp_path / f"store.tmp-{pid}"
    assert staged.is_dir() and (staged / "part-0").is_dir()
    assert not out.exists()
    for p in (out, staged):
        with pytest.raises(ValueError):
            open_store(p)
    # even a staging directory that got as far as a complete store.json is not a store
    from graphplat.storage.store import write_store_manifest
    write_store_manifest(staged, 3)
    with pytest.raises(ValueError, match="temporary"):
        open_store(staged)
    # the rerun cleans up the dead process's directory and succeeds
    ingest(spec, out, partitions=3)
    assert not staged.exists()
    assert_graph_equal(read_store(out), expected(g))


def test_metis_acm(tmp_path, datasets_dir):
    import scipy.sparse as sp

    acm = datasets_dir / "acm_heco"
    labels = np.load(acm / "labels.npy")
    feat = sp.load_npz(acm / "p_feat.npz")
    d = tmp_path / "papers"
    d.mkdir()
    np.save(d / "ids.npy", np.arange(len(labels), dtype=np.int64))
    np.save(d / "label.npy", labels)  # float64 with integral values
    np.save(d / "feat.npy", feat.toarray().astype(np.float32))
    schema = {"node_types": {"paper": {"features": {"feat": f"float32[{feat.shape[1]}]",
                                                    "label": "int64"}},
                             "author": {}, "subject": {}},
              "edge_types": [{"src": "paper", "relation": "written_by", "dst": "author", "out_adjacency": True},
                             {"src": "paper", "relation": "about", "dst": "subject", "out_adjacency": True}]}
    tsv = {"format": "csv", "delimiter": "\t", "header": False}
    spec = {"schema": schema,
            "nodes": {"paper": str(d), "author": {"from_edges": True}, "subject": {"from_edges": True}},
            "edges": {"written_by": {"path": str(acm / "pa.txt"), **tsv,
                                     "column_names": ["src", "dst"]},
                      "about": {"path": str(acm / "ps.txt"), **tsv, "column_names": ["src", "dst"]}}}
    out = ingest(spec, tmp_path / "acm", partitions=2, partitioner="metis")
    info = open_store(out)
    assert info.meta["partitioner"] == "metis" and info.book.method == "assigned"
    pa_edges = np.loadtxt(acm / "pa.txt", dtype=np.int64)
    ps_edges = np.loadtxt(acm / "ps.txt", dtype=np.int64)
    want = {"paper": np.arange(len(labels)), "author": np.unique(pa_edges[:, 1]),
            "subject": np.unique(ps_edges[:, 1])}
    nodes, feats, edges = read_store(out)
    for nt, ids in want.items():
        np.testing.assert_array_equal(nodes[nt], ids)
        book_ids, book_parts = info.book.assigned[nt]
        np.testing.assert_array_equal(np.sort(book_ids), ids)  # every node is assigned
        assert set(np.unique(book_parts).tolist()) <= {0, 1}
    np.testing.assert_array_equal(feats["paper"]["label"], labels.astype(np.int64))
    np.testing.assert_array_equal(feats["paper"]["feat"][:50], feat[:50].toarray().astype(np.float32))
    assert edges[("paper", "written_by", "author")] == sorted(map(tuple, pa_edges.tolist()))
    assert edges[("paper", "about", "subject")] == sorted(map(tuple, ps_edges.tolist()))
    # METIS keeps more edges inside a partition than hashing does
    book = info.book
    cut = np.mean(book.partition_of("paper", pa_edges[:, 0]) != book.partition_of("author", pa_edges[:, 1]))
    assert cut < 0.3, cut
    sizes = np.bincount(book.partition_of("paper", want["paper"]), minlength=2)
    assert sizes.min() > 0.3 * sizes.sum(), sizes


def test_value_parsing():
    from graphplat.storage.readers import _numeric

    text = pa.array(["1", " 7 ", "+5", "3.0", "1e3", "9223372036854775807", "9223372036854775808",
                     "2.5", "nan", "abc", None, "inf", "1e400"])
    values, reasons = _numeric(text, True, "x")
    ok = reasons == 0
    assert values[ok].tolist() == [1, 7, 5, 3, 1000, 2 ** 63 - 1]
    assert ok.tolist() == [True] * 6 + [False] * 7
    fvalues, freasons = _numeric(text, False, "x")
    assert freasons.tolist() == [0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 1, 0, 6]  # 1e400 out of range
    assert np.isnan(fvalues[8]) and np.isinf(fvalues[11])
    v, r = _numeric(np.array([1.5, 2.0, np.nan, 2.0 ** 70]), True, "x")
    assert r.tolist() == [5, 0, 3, 6] and v[1] == 2
