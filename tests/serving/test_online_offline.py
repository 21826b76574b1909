"""Online equals offline: the model service's scores (Score, ScoreBatch, in-process and in
scoring worker processes) equal the exported scores and the training run's evaluated metric
for the same graph state, and after add_edges the next score reflects the new edges."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from graphplat.datasets import load_dataset  # noqa: E402
from graphplat.testing.servers import Fleet, write_cluster_file  # noqa: E402
from graphplat.training import metrics as M  # noqa: E402

NT = "account"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from graphplat.training.config import TrainConfig
    from graphplat.training.loop import train

    tmp = tmp_path_factory.mktemp("online")
    ds = load_dataset("planted_fraud", num_nodes=400, relations=2, degree=3, seed=3)
    store = ds.write_store(tmp / "store", partitions=2)
    cfg = TrainConfig(graph=str(store), model={"name": "fraud_sage", "hidden": 16, "dropout": 0.0},
                      fanouts=[4, 4], eval_fanouts=[-1, -1], batch_size=128, epochs=3, patience=0,
                      prefetch=0, seeds=[0], checkpoint_dir=str(tmp / "ckpt"), num_threads=1)
    result = train(cfg)
    fleet = Fleet(tmp / "servers")
    try:
        servers = fleet.start_all([dict(store=store, partition=k) for k in range(2)])
        cluster = write_cluster_file(tmp / "cluster.yaml", [[s] for s in servers])
        yield dict(tmp=tmp, ds=ds, cluster=cluster, ckpt=tmp / "ckpt" / "seed-0" / "best.pt",
                   result=result)
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


def start_service(env, workers: int):
    from graphplat.cli.serve_model import build_model_server, build_parser
    from graphplat.serving import ModelServiceClient

    args = build_parser().parse_args(["--cluster", str(env["cluster"]), "--checkpoint", str(env["ckpt"]),
                                      "--port", "0", "--threads", "4", "--score-workers", str(workers)])
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
