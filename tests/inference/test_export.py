"""Embedding export (graphplat.inference.export) on real graphs: the layer-wise export equals
per-node minibatch inference with full neighborhoods (homogeneous SAGE/GAT, heterogeneous
HeteroSAGE/RGCN, final and hidden outputs, .npy and .parquet), GCN norm="both" equals the
full-graph GCN, a SIGKILLed export resumes to the same bytes, a mismatched resume is
refused, and an export over graph servers equals the local one."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import dgl
import numpy as np
import pytest
import torch

from graphplat import _core  # noqa: E402
from graphplat.cli import main as cli_main
from graphplat.datasets import load_dataset  # noqa: E402
from graphplat.datasets.synthetic import generate_powerlaw_csc  # noqa: E402
from graphplat.errors import ExportStateError
from graphplat.inference.export import export_embeddings, ids_path, partial_path, read_embeddings
from graphplat.models.gnn import GAT, GCN, GraphSAGE  # noqa: E402
from graphplat.sampling import NodeLoader  # noqa: E402
from graphplat.schema import GraphSchema  # noqa: E402
from graphplat.storage.graph_arrays import GraphArrays  # noqa: E402
from graphplat.testing.servers import Fleet, cluster_dict, kill_when_logged, write_cluster_file
from graphplat.training.config import TrainConfig  # noqa: E402
from graphplat.training.loop import block_inputs, load_trained, make_model, train  # noqa: E402

REPO = str(Path(__file__).resolve().parents[2])
SMALL = dict(num_users=240, num_items=160, num_shops=16, num_communities=4, num_clicks=2400,
             feature_dim=8, seed=0)
ATOL = 1e-5


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny graphs: one torch thread is fastest, leaves the shared cores alone, and makes the
    in-process and subprocess exports use the same kernels."""
    old, old_core = torch.get_num_threads(), _core.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
    _core.set_num_threads(old_core)


# ----------------------------------------------------------------------------- graphs and models


@pytest.fixture(scope="module")
def recsys():
    """The synthetic user/item/shop graph, small."""
    return load_dataset("synthetic", **SMALL)


@pytest.fixture(scope="module")
def hetero(recsys):
    return recsys.to_local()


@pytest.fixture(scope="module")
def trained(recsys, tmp_path_factory):
    """A HeteroSAGE trained for 2 epochs on the small synthetic graph; (best.pt, model)."""
    ckpt_dir = tmp_path_factory.mktemp("ckpt")
    cfg = TrainConfig(dataset="synthetic", dataset_options=dict(SMALL),
                      model={"name": "hsage", "hidden": 16, "num_layers": 2, "dropout": 0.1},
                      fanouts=[5, 5], batch_size=64, eval_batch_size=256, epochs=2, prefetch=0,
                      checkpoint_dir=str(ckpt_dir), seeds=[0])
    train(cfg)
    ckpt = ckpt_dir / "seed-0" / "best.pt"
    return ckpt, load_trained(ckpt, recsys.to_local()).encoder


@pytest.fixture(scope="module")
def rgcn(hetero):
    """An RGCN (basis decomposition, every type predicted) with random weights."""
    torch.manual_seed(1)
    return make_model({"name": "rgcn", "hidden": 12, "num_layers": 2, "num_bases": 2},
                      hetero, "feat", 5, None).eval()


def homo_arrays(reverse: bool = False, n: int = 1200, m: int = 9000, weighted: bool = False) -> GraphArrays:
    """A power-law digraph (ids 0..n-1) with 6-dim features (and edge weights)."""
    indptr, indices = generate_powerlaw_csc(n, m, 2.2, 150, 3)
    rng = np.random.default_rng(4)
    feat = rng.standard_normal((n, 6)).astype(np.float32)
    schema = GraphSchema.homogeneous(6, out_adjacency=reverse, weighted=weighted)
    nt, et = schema.ntypes[0], schema.canonical_etypes[0]
    dst = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    weights = {et: (rng.random(len(dst)) + 0.5).astype(np.float32)} if weighted else None
    return GraphArrays(schema, {nt: np.arange(n, dtype=np.int64)}, {nt: {"feat": feat}},
                       {et: (indices, dst)}, edge_weights=weights or {})


@pytest.fixture(scope="module")
def homo():
    arrays = homo_arrays()
    return arrays, arrays.to_local(partitions=2)


def full_dgl_graph(arrays: GraphArrays):
    (et,) = arrays.schema.canonical_etypes
    s, d = arrays.edges[et]
    g = dgl.graph((torch.from_numpy(s), torch.from_numpy(d)), num_nodes=len(arrays.nodes[et[0]]))
    if arrays.edge_weights.get(et) is not None:
        g.edata["weight"] = torch.from_numpy(arrays.edge_weights[et])
    return g


# ----------------------------------------------------------------------------- the reference


def minibatch_reference(graph, model, ntype, layers, feature="feat"):
    """Per-node inference: NodeLoader with fanout -1 for every layer, the first ``layers``
    layers of ``model`` (all of them = ``model(blocks, x)``). Returns (ids, rows)."""
    ids = graph.node_ids(ntype)
    homogeneous = len(graph.schema.ntypes) == 1
    feats = {t: [feature] for t in graph.schema.ntypes if feature in graph.schema.node_type(t).feature_names}
    loader = NodeLoader(graph, ids if homogeneous else {ntype: ids}, [-1] * layers, batch_size=97,
                        labels=None, features=feats, prefetch=0)
    out_ids, rows = [], []
    with torch.no_grad():
        for _, output_nodes, blocks in loader:
            x = block_inputs(blocks, feature)
            if layers == model.num_layers:
                h = model(blocks, x)
            else:
                h = model.project_inputs(x, blocks[0])
                for i, block in enumerate(blocks):
                    h = model.layer_forward(i, block, h)
            if not homogeneous:
                h, output_nodes = h[ntype], output_nodes[ntype]
            out_ids.append(output_nodes.numpy())
            rows.append(h.numpy())
    return np.concatenate(out_ids), np.concatenate(rows)


def assert_same_rows(ids, emb, ref_ids, ref):
    assert emb.dtype == np.float32 and ids.dtype == np.int64
    assert sorted(ids.tolist()) == sorted(ref_ids.tolist())
    order = np.argsort(ref_ids)
    aligned = ref[order[np.searchsorted(ref_ids[order], ids)]]
    assert np.abs(aligned - emb).max() <= ATOL


# ----------------------------------------------------------------------------- equivalence


@pytest.mark.parametrize("fmt", [".npy", ".parquet"])
@pytest.mark.parametrize("name", ["sage", "gat"])
def test_homogeneous_export_equals_minibatch_inference(homo, tmp_path, name, fmt):
    _, graph = homo
    torch.manual_seed(2)
    model = (GraphSAGE(6, 10, 4, 3, layer_norm=True, residual=True) if name == "sage"
             else GAT(6, 5, 4, 2, heads=3)).eval()
    for output, layers in (("final", model.num_layers), ("hidden", model.num_layers - 1)):
        out = tmp_path / f"{output}{fmt}"
        path = export_embeddings(graph, model, None, out, chunk_size=173, output=output, progress=False)
        assert path == out.absolute() and out.exists() and not partial_path(out).exists()
        ids, emb = read_embeddings(out)
        assert emb.shape == (graph.num_nodes("_N"), model.layer_output_dim(layers - 1))
        np.testing.assert_array_equal(ids, graph.node_ids("_N"))  # rows in node_ids order
        assert_same_rows(ids, emb, *minibatch_reference(graph, model, "_N", layers))


@pytest.mark.parametrize("fmt", [".npy", ".parquet"])
def test_heterogeneous_trained_hsage_export_equals_minibatch_inference(hetero, trained, tmp_path, fmt):
    ckpt, model = trained
    assert model.target_ntype == "user"
    for output, layers in (("final", 2), ("hidden", 1)):
        out = tmp_path / f"user-{output}{fmt}"
        export_embeddings(hetero, model, "user", out, chunk_size=50, output=output, progress=False)
        ids, emb = read_embeddings(out)
        assert emb.shape == (240, 4 if output == "final" else 16)
        assert_same_rows(ids, emb, *minibatch_reference(hetero, model, "user", layers))


@pytest.mark.parametrize("ntype,output", [("user", "final"), ("item", "final"), ("shop", "hidden")])
def test_heterogeneous_rgcn_export_equals_minibatch_inference(hetero, rgcn, tmp_path, ntype, output):
    out = tmp_path / f"{ntype}.parquet"
    export_embeddings(hetero, rgcn, ntype, out, chunk_size=33, output=output, progress=False)
    ids, emb = read_embeddings(out)
    layers = 2 if output == "final" else 1
    assert_same_rows(ids, emb, *minibatch_reference(hetero, rgcn, ntype, layers))
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(out)
    assert meta.metadata.num_row_groups == -(-len(ids) // 33)  # one row group per chunk
    assert meta.schema_arrow.field("embedding").type.list_size == emb.shape[1]
    assert meta.schema_arrow.metadata[b"graphplat.ntype"] == ntype.encode()


@pytest.mark.parametrize("reverse,weighted", [(False, False), (True, True)])
def test_gcn_both_exports_the_exact_full_graph_gcn(tmp_path, reverse, weighted):
    """norm="both"/"left" use block degrees (batch-dependent); the exporter computes the
    full-graph normalization, i.e. model(g, x) on the whole graph. Out-degrees come from the
    store (reverse storage) or from a counting pass; a model with edge_weight gets the
    graph's edge weights."""
    arrays = homo_arrays(reverse=reverse, n=700, m=5000, weighted=weighted)
    graph = arrays.to_local(partitions=2)
    g = full_dgl_graph(arrays)
    x = torch.from_numpy(arrays.node_features["_N"]["feat"])
    torch.manual_seed(3)
    for norm in ("both", "left", "right"):
        model = GCN(6, 9, 3, 2, norm=norm, residual=True,
                    edge_weight="weight" if weighted else None).eval()
        out = tmp_path / f"gcn-{norm}.npy"
        export_embeddings(graph, model, None, out, chunk_size=64, progress=False)
        ids, emb = read_embeddings(out)
        with torch.no_grad():
            full = model(g, x).numpy()
        assert np.abs(full[ids] - emb).max() <= ATOL
        assert model.norm == norm  # the caller's model is left as it was


@pytest.mark.parametrize("name", ["sage", "gcn", "hsage"])
def test_models_with_learned_id_embeddings(homo, hetero, tmp_path, name):
    """A WithIdEmbeddings wrapper (spec id_embedding) is exported through its own
    project_inputs; the raw feature width excludes the embedding columns."""
    torch.manual_seed(5)
    spec = {"name": name, "hidden": 8, "num_layers": 2, "id_embedding": 3}
    if name == "hsage":
        graph, ntype = hetero, "user"
        model = make_model(spec, graph, "feat", 4, "user").eval()
    else:
        arrays, graph = homo
        ntype = "_N"
        model = make_model(spec, graph, "feat", 4, None).eval()
    out = tmp_path / "emb.npy"
    export_embeddings(graph, model, ntype, out, chunk_size=200, progress=False)
    ids, emb = read_embeddings(out)
    if name == "gcn":  # norm="both": the full-graph GCN
        g = full_dgl_graph(arrays)
        g.ndata[dgl.NID] = torch.arange(g.num_nodes())
        with torch.no_grad():
            full = model([g, g], torch.from_numpy(arrays.node_features["_N"]["feat"])).numpy()
        assert np.abs(full[ids] - emb).max() <= ATOL
    else:
        assert_same_rows(ids, emb, *minibatch_reference(graph, model, ntype, 2))



def main_export(argv):
    """``graphplat export ARGV``; returns the exit code."""
    return cli_main(["export", *argv])

# ----------------------------------------------------------------------------- resume


def _export_cmd(ckpt, out, chunk_size=40):
    return ["--checkpoint", str(ckpt), "--dataset", "synthetic", "--ntype", "user", "--out", str(out),
            "--chunk-size", str(chunk_size), "--threads", "1"]


def test_killed_export_resumes_to_the_same_bytes(trained, tmp_path, capsys):
    ckpt, _ = trained
    out = tmp_path / "killed" / "user.npy"
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    _, seen = kill_when_logged([sys.executable, "-m", "graphplat.testing.slow", "0.3", "graphplat.cli.export",
                                *_export_cmd(ckpt, out), "-v"],
                               "layer 1 'user': chunk 2/6 committed", env=env, cwd=str(tmp_path))
    assert any("chunk 2/6 committed" in s for s in seen), "".join(seen)
    assert not out.exists() and not ids_path(out).exists()
    state = json.loads((partial_path(out) / "state.json").read_text())
    assert state["progress"]["0:user"] == 6 and state["progress"]["1:user"] >= 2

    assert main_export(_export_cmd(ckpt, out)) == 0  # the same command continues
    resumed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert resumed["resumed_chunks"] >= 6 + 4 + 2  # layer 0: 6 user + 4 item chunks
    assert not partial_path(out).exists()

    fresh = tmp_path / "fresh" / "user.npy"
    assert main_export(_export_cmd(ckpt, fresh)) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["resumed_chunks"] == 0
    assert out.read_bytes() == fresh.read_bytes()
    assert ids_path(out).read_bytes() == ids_path(fresh).read_bytes()


class _Stop(Exception):
    pass


def _stop_after(n):
    def hook(layer, ntype, chunk, num_chunks):
        if hook.calls == n:
            raise _Stop()
        hook.calls += 1
    hook.calls = 0
    return hook


def test_mismatched_resume_is_refused_and_a_matching_one_completes(hetero, trained, rgcn, tmp_path):
    _, model = trained
    out = tmp_path / "user.parquet"
    kw = dict(chunk_size=30, progress=False, commit_interval=0.0)
    with pytest.raises(_Stop):
        export_embeddings(hetero, model, "user", out, on_chunk=_stop_after(11), **kw)
    assert not out.exists() and (partial_path(out) / "state.json").exists()

    with pytest.raises(ExportStateError, match="chunk_size=30 .now 64"):
        export_embeddings(hetero, model, "user", out, **{**kw, "chunk_size": 64})
    with pytest.raises(ExportStateError, match="different model"):
        export_embeddings(hetero, rgcn, "user", out, **kw)
    with pytest.raises(ExportStateError, match="output='final' .now 'hidden'"):
        export_embeddings(hetero, model, "user", out, output="hidden", **kw)
    other = load_dataset("synthetic", **{**SMALL, "num_clicks": 2600}).to_local()
    with pytest.raises(ExportStateError, match="different graph"):
        export_embeddings(other, model, "user", out, **kw)
    assert not out.exists()

    export_embeddings(hetero, model, "user", out, **kw)  # the matching resume
    fresh = tmp_path / "fresh.parquet"
    export_embeddings(hetero, model, "user", fresh, **kw)
    (ids, emb), (ids2, emb2) = read_embeddings(out), read_embeddings(fresh)
    np.testing.assert_array_equal(ids, ids2)
    np.testing.assert_array_equal(emb, emb2)

    # resume=False discards a partial state made with other options
    with pytest.raises(_Stop):
        export_embeddings(hetero, model, "user", out, on_chunk=_stop_after(2), **kw)
    export_embeddings(hetero, model, "user", out, resume=False, **{**kw, "chunk_size": 64})
    np.testing.assert_array_equal(read_embeddings(out)[1], emb)


def test_cli_refuses_a_mismatched_resume(trained, tmp_path, capsys):
    ckpt, model = trained
    out = tmp_path / "user.npy"
    graph = load_dataset("synthetic", **SMALL).to_local()
    with pytest.raises(_Stop):
        export_embeddings(graph, model, "user", out, chunk_size=40, progress=False,
                          commit_interval=0.0, on_chunk=_stop_after(3))
    assert main_export(_export_cmd(ckpt, out, chunk_size=80)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("graphplat export: error: cannot resume") and "--no-resume" in err[-1]
    assert main_export(_export_cmd(ckpt, out, chunk_size=80) + ["--no-resume"]) == 0
    assert read_embeddings(out)[1].shape == (240, 4)


# ----------------------------------------------------------------------------- remote


def test_export_over_graph_servers_equals_local(recsys, hetero, trained, tmp_path, capsys):
    from graphplat.storage.remote import connect

    ckpt, model = trained
    store = recsys.write_store(tmp_path / "store", partitions=2)
    fleet = Fleet(tmp_path / "logs")
    try:
        servers = fleet.start_all([dict(store=store, partition=k) for k in range(2)])
        remote = connect(cluster_dict([[s] for s in servers], deadline_s=20))
        try:
            export_embeddings(remote, model, "user", tmp_path / "remote.parquet", chunk_size=45,
                              progress=False)
        finally:
            remote.close()
        cluster = write_cluster_file(tmp_path / "cluster.yaml", [[s] for s in servers], deadline_s=20)
        assert main_export(["--checkpoint", str(ckpt), "--cluster", str(cluster), "--out",
                            str(tmp_path / "cli.npy"), "--chunk-size", "100"]) == 0
    finally:
        fleet.close()
    export_embeddings(hetero, model, "user", tmp_path / "local.parquet", chunk_size=45, progress=False)
    ids_l, emb_l = read_embeddings(tmp_path / "local.parquet")
    for name in ("remote.parquet", "cli.npy"):
        assert_same_rows(*read_embeddings(tmp_path / name), ids_l, emb_l)
    capsys.readouterr()
    # the command line on the store (the checkpoint's graph replaced by --graph)
    assert main_export(["--checkpoint", str(ckpt), "--graph", str(store), "--out",
                        str(tmp_path / "store.npy"), "--output", "hidden"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["ntype"] == "user" and summary["dim"] == 16 and summary["layer"] == 0
    ids_s, emb_s = read_embeddings(tmp_path / "store.npy")
    assert_same_rows(ids_s, emb_s, *minibatch_reference(hetero, model, "user", 1))


# ----------------------------------------------------------------------------- errors


def test_bad_requests_say_what_is_wrong(hetero, homo, trained, rgcn, tmp_path):
    _, model = trained
    _, graph = homo
    with pytest.raises(ValueError, match=r"\.npy or \.parquet"):
        export_embeddings(hetero, model, "user", tmp_path / "emb.csv")
    with pytest.raises(ValueError, match="does not produce node type 'item'.*target_ntype='user'"):
        export_embeddings(hetero, model, "item", tmp_path / "emb.npy")
    with pytest.raises(ValueError, match="output must be one of"):
        export_embeddings(hetero, model, "user", tmp_path / "emb.npy", output="last")
    with pytest.raises(ValueError, match="chunk_size"):
        export_embeddings(hetero, model, "user", tmp_path / "emb.npy", chunk_size=0)
    with pytest.raises(ValueError, match="homogeneous model"):
        export_embeddings(hetero, GraphSAGE(8, 4, 2, 2), None, tmp_path / "emb.npy")
    with pytest.raises(ValueError, match="at least 2 layers|has 1 layer"):
        export_embeddings(graph, GraphSAGE(6, 4, 2, 1), None, tmp_path / "emb.npy", output="hidden")
    with pytest.raises(ValueError, match="float32\\[7\\]"):
        export_embeddings(graph, GraphSAGE(7, 4, 2, 2), None, tmp_path / "emb.npy")
    with pytest.raises(ValueError, match="name the node type"):
        export_embeddings(hetero, rgcn, None, tmp_path / "emb.npy")
    assert not list(tmp_path.iterdir())
    with pytest.raises(FileNotFoundError, match="no ids file"):
        np.save(tmp_path / "lonely.npy", np.zeros((2, 3), np.float32))
        read_embeddings(tmp_path / "lonely.npy")


@pytest.mark.parametrize("side_hidden", [0, 3])
def test_gcmc_export_equals_minibatch_inference(hetero, tmp_path, side_hidden):
    """GCMC (one layer; with side_hidden its side path reads the raw features) exports what
    minibatch inference computes."""
    torch.manual_seed(2)
    model = make_model({"name": "gcmc", "hidden": 12, "num_layers": 1, "ordinal": False, "dropout": 0.5,
                        "side_hidden": side_hidden, "input_width": 6}, hetero, "feat", 5, None).eval()
    out = tmp_path / "user.npy"
    export_embeddings(hetero, model, "user", out, chunk_size=50, progress=False)
    ids, emb = read_embeddings(out)
    assert emb.shape == (240, 5)
    assert_same_rows(ids, emb, *minibatch_reference(hetero, model, "user", 1))


def test_trained_gcn_exports_what_it_evaluates_on_a_directed_graph(tmp_path):
    """A GCN graphplat trains with norm "both" normalizes with in-degrees at both ends
    (GCNNorm); its export must too, not DGL's out-degree of the source: on a digraph the two
    differ (they agree only on symmetric graphs)."""
    import graphplat
    from graphplat.training.config import TrainConfig
    from graphplat.training.loop import load_trained, train

    n = 600
    indptr, indices = generate_powerlaw_csc(n, 4000, 2.2, 150, 5)
    rng = np.random.default_rng(6)
    schema = GraphSchema.homogeneous(6, label=True)
    nt, et = schema.ntypes[0], schema.canonical_etypes[0]
    feat = rng.standard_normal((n, 6)).astype(np.float32)
    label = (feat[:, 0] > 0).astype(np.int64) + (feat[:, 1] > 0.5)
    dst = np.repeat(np.arange(n, dtype=np.int64), np.diff(indptr))
    store = GraphArrays(schema, {nt: np.arange(n)}, {nt: {"feat": feat, "label": label}},
                        {et: (indices, dst)}).write_store(tmp_path / "store", partitions=2)
    train(TrainConfig(graph=str(store), model={"name": "gcn", "hidden": 8, "num_layers": 2, "dropout": 0.0},
                      task="node_classification", target_ntype=nt, fanouts=[4, 4], eval_fanouts=[-1, -1],
                      split_fractions=[0.6, 0.2, 0.2], batch_size=128,
                      epochs=2, patience=0, prefetch=0, seeds=[0], checkpoint_dir=str(tmp_path / "ckpt"),
                      num_threads=1))
    ckpt = tmp_path / "ckpt" / "seed-0" / "best.pt"
    with graphplat.open_graph(store, read_only=True) as g:
        out_deg = g.degrees(et, np.arange(n), "out") if schema.edge_type(et).out_adjacency else None
        export_embeddings(g, load_trained(ckpt, g), nt, tmp_path / "gcn.npy", progress=False)
        ids, logits = read_embeddings(tmp_path / "gcn.npy")
        want = graphplat.load_model(ckpt, g).predict(ids)
    assert out_deg is None  # a plain digraph: in- and out-degrees differ
    in_deg = np.bincount(dst, minlength=n)
    out_deg = np.bincount(indices, minlength=n)
    assert (in_deg != out_deg).mean() > 0.5
    np.testing.assert_allclose(logits, want, rtol=1e-4, atol=1e-5)
