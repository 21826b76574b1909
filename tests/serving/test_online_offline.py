"""Online equals offline: the model service's scores (Score, ScoreBatch, in-process and in
scoring worker processes) equal the exported scores and the training run's evaluated metric
for the same graph state, and after add_edges the next score reflects the new edges; for the
fraud GNN and for the gbdt model chosen by model selection."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from graphplat.datasets import load_dataset  # noqa: E402
from graphplat.testing.servers import Fleet, write_cluster_file  # noqa: E402
from graphplat.training import metrics as M  # noqa: E402

NT = "account"


REPO = Path(__file__).resolve().parents[2]
#: the model selection of the gbdt case: the trees validate far better than the MLP here
GBDT_SELECTION = {"metric": "roc_auc", "candidates": [{"name": "mlp", "hidden": 16},
                                                      {"name": "gbdt", "num_rounds": 60}]}


@pytest.fixture(scope="module", params=["fraud_sage", "gbdt"])
def env(tmp_path_factory, request):
    from graphplat.training.config import TrainConfig
    from graphplat.training.loop import train

    tmp = tmp_path_factory.mktemp("online")
    ds = load_dataset("planted_fraud", num_nodes=400, relations=2, degree=3, seed=3)
    store = ds.write_store(tmp / "store", partitions=2)
    model = ({"model": {"name": "fraud_sage", "hidden": 16, "dropout": 0.0}} if request.param == "fraud_sage"
             else {"model_selection": GBDT_SELECTION})
    cfg = TrainConfig(graph=str(store), **model,
                      fanouts=[4, 4], eval_fanouts=[-1, -1], batch_size=128, epochs=3, patience=0,
                      prefetch=0, seeds=[0], checkpoint_dir=str(tmp / "ckpt"), num_threads=1)
    result = train(cfg)
    if request.param == "gbdt":
        assert result["runs"][0]["selection"]["chosen"] == "1-gbdt"
    fleet = Fleet(tmp / "servers")
    try:
        servers = fleet.start_all([dict(store=store, partition=k) for k in range(2)])
        cluster = write_cluster_file(tmp / "cluster.yaml", [[s] for s in servers])
        yield dict(tmp=tmp, ds=ds, cluster=cluster, ckpt=tmp / "ckpt" / "seed-0" / "best.pt",
                   result=result, model=request.param, store=store)
    finally:
        fleet.close()


def exported_probs(graph, ckpt, out: Path) -> np.ndarray:
    """Softmax of the exporter's full-neighborhood logits, rows by node id."""
    from graphplat.inference.export import export_embeddings, read_embeddings
    from graphplat.training.loop import load_trained

    export_embeddings(graph, load_trained(ckpt, graph), NT, out)
    ids, logits = read_embeddings(out)
    probs = np.zeros_like(logits)
    probs[ids] = torch.softmax(torch.from_numpy(logits), 1).numpy()
    return probs


def start_service(env, workers: int, *extra: str):
    from graphplat.cli.serve_model import build_model_server, build_parser
    from graphplat.serving import ModelServiceClient

    args = build_parser().parse_args(["--cluster", str(env["cluster"]), "--checkpoint", str(env["ckpt"]),
                                      "--port", "0", "--threads", "4", "--score-workers", str(workers), *extra])
    server = build_model_server(args).start()
    return server, ModelServiceClient(server.address).wait_ready()


@pytest.mark.parametrize("workers", [0, 2])
def test_served_equals_exported_and_evaluated(env, workers):
    from graphplat.storage.remote import connect

    g = connect(env["cluster"])
    server, c = start_service(env, workers)
    try:
        want = exported_probs(g, env["ckpt"], env["tmp"] / f"export-{workers}.npy")
        ids = np.arange(400)
        batch = c.score_batch(ids)  # one request, one joint sample, one forward
        np.testing.assert_allclose(batch, want, rtol=1e-4, atol=1e-6)
        for nid in (0, 17, 399):
            np.testing.assert_allclose(c.score(nid).probabilities, want[nid], rtol=1e-4, atol=1e-6)
        # the training run's test ROC-AUC, from the served scores of its test nodes
        split, label = env["ds"].split(), env["ds"].labels()
        test = np.flatnonzero(split == 2)
        served_auc = M.roc_auc(label[test], batch[test, 1])
        assert served_auc == pytest.approx(env["result"]["runs"][0]["test"]["roc_auc"], abs=1e-6)
        if workers:
            assert c.info()["score"]["workers"] == 2
            with pytest.raises(IndexError, match="123456"):
                c.score(123456)
    finally:
        c.close()
        server.stop(0.5)
        g.close()


@pytest.mark.parametrize("env", ["fraud_sage"], indirect=True)
@pytest.mark.parametrize("workers", [0, 2])
def test_score_equals_its_batch_row_with_sampled_fanouts(env, workers):
    # draws keyed by node id: a node samples the same neighbors alone and in any batch
    server, c = start_service(env, workers, "--fanouts", "2,2")
    try:
        ids = np.arange(0, 400, 3)
        batch = c.score_batch(ids, seed=7)
        other = c.score_batch(ids[::-1][:50], seed=7)  # another composition and order
        np.testing.assert_allclose(other, batch[::-1][:50], rtol=1e-5, atol=1e-7)
        for row in (0, 1, 40, len(ids) - 1):
            np.testing.assert_allclose(c.score(int(ids[row]), seed=7).probabilities, batch[row],
                                       rtol=1e-5, atol=1e-7)
        # the fanouts do sample (a node of degree > 2 draws other neighbors under another seed)
        assert not np.allclose(c.score_batch(ids, seed=8), batch, rtol=1e-5, atol=1e-7)
    finally:
        c.close()
        server.stop(0.5)


def test_next_score_reflects_added_edges(env):
    from graphplat.storage.remote import connect

    writer = connect(env["cluster"])
    server, c = start_service(env, 2)
    try:
        node = 5
        before = c.score(node)
        et = (NT, "r1", NT)
        fraud = np.flatnonzero(env["ds"].labels() == 1)[:6]
        writer.add_edges(et, fraud, np.full(len(fraud), node))  # messages into `node`
        after = c.score(node)  # the very next request
        assert after.sampled_edges > before.sampled_edges
        assert abs(after.score - before.score) > 1e-5, (before, after)
        want = exported_probs(writer, env["ckpt"], env["tmp"] / "export-after.npy")
        np.testing.assert_allclose(after.probabilities, want[node], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(c.score_batch(np.array([node, 6])), want[[node, 6]], rtol=1e-4, atol=1e-6)
    finally:
        c.close()
        server.stop(0.5)
        writer.close()


def test_served_gcn_equals_exported_gcn(datasets_dir, tmp_path):
    """A GCN (norm "both") trained with the graph's degrees scores online as exported: the
    service normalizes with graph degrees too, not the block's (which depend on the batch)."""
    from graphplat.cli.serve_model import build_model_server, build_parser
    from graphplat.serving import ModelServiceClient
    from graphplat.storage.local import open_graph
    from graphplat.training.config import TrainConfig
    from graphplat.training.loop import train

    ds = load_dataset("cora", datasets_dir, normalize=True, self_loops=True)
    store = ds.write_store(tmp_path / "store", partitions=2)
    train(TrainConfig(graph=str(store), model={"name": "gcn", "hidden": 8, "num_layers": 2, "dropout": 0.0},
                      fanouts=[5, 5], batch_size=512, epochs=2, patience=0, prefetch=0, seeds=[0],
                      checkpoint_dir=str(tmp_path / "ckpt"), num_threads=1))
    ckpt = tmp_path / "ckpt" / "seed-0" / "best.pt"
    from graphplat.inference.export import export_embeddings, read_embeddings
    from graphplat.training.loop import load_trained

    with open_graph(store, read_only=True) as g:
        export_embeddings(g, load_trained(ckpt, g), "paper", tmp_path / "gcn.npy", progress=False)
    ids, logits = read_embeddings(tmp_path / "gcn.npy")
    want = torch.softmax(torch.from_numpy(logits), 1).numpy()
    args = build_parser().parse_args(["--graph", str(store), "--checkpoint", str(ckpt), "--port", "0",
                                      "--threads", "2"])
    server = build_model_server(args).start()
    c = ModelServiceClient(server.address).wait_ready()
    try:
        some = ids[::7]
        np.testing.assert_allclose(c.score_batch(some), want[::7], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(c.score(int(ids[3])).probabilities, want[3], rtol=1e-4, atol=1e-5)
    finally:
        c.close()
        server.stop(0.5)


@pytest.mark.parametrize("env", ["gbdt"], indirect=True)
def test_gbdt_without_lightgbm_is_a_clear_serve_model_error(env, tmp_path):
    # an importable `lightgbm` that fails as a missing one does
    (tmp_path / "lightgbm.py").write_text("raise ImportError(\"No module named 'lightgbm'\")\n")
    proc = subprocess.run([sys.executable, "-m", "graphplat.cli", "serve-model", "--graph", str(env["store"]),
                           "--checkpoint", str(env["ckpt"]), "--port", "0"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": f"{tmp_path}:{REPO}"})
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert ("graphplat serve-model: error: the gbdt model needs lightgbm, which is not installed; "
            "pip install 'graphplat[gbdt]'") in proc.stderr, proc.stderr


@pytest.mark.parametrize("env", ["fraud_sage"], indirect=True)
def test_killed_scoring_worker_fails_its_request_and_is_replaced(env):
    import os
    import signal
    import time

    from graphplat.serving.scoring import NodeScorer
    from graphplat.serving.scoring_pool import ScoringPool
    from graphplat.storage.remote import connect

    g = connect(env["cluster"])
    pool = ScoringPool(NodeScorer(g, env["ckpt"]), str(env["cluster"]), workers=1)
    try:
        want = pool.score_one(3).probabilities
        (pid,) = pool.worker_pids()
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(ConnectionError, match="scoring worker"):
            pool.score_one(3)
        deadline = time.monotonic() + 60
        while not pool.worker_pids() and time.monotonic() < deadline:
            time.sleep(0.2)
        new = pool.worker_pids()
        assert new and new != [pid]
        np.testing.assert_allclose(pool.score_one(3).probabilities, want, rtol=1e-6)  # waits for it
        with pytest.raises(IndexError, match="123456"):
            pool.score_one(123456)
    finally:
        pool.close()
        g.close()
    with pytest.raises(ConnectionError, match="stopped"):
        pool.score_one(3)
