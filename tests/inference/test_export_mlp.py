"""Export of the features-only baseline (model ``mlp``): every trained model kind exports."""
from __future__ import annotations

import numpy as np
import torch

from graphplat.cli import main as cli_main
from graphplat.datasets import load_dataset
from graphplat.inference.export import read_embeddings
from graphplat.training.config import TrainConfig
from graphplat.training.loop import load_trained, train


def test_features_only_mlp_exports_its_outputs(datasets_dir, tmp_path, capsys):
    cfg = TrainConfig.from_dict({
        "dataset": "cora", "data_dir": str(datasets_dir),
        "model": {"name": "mlp", "hidden": 16, "num_layers": 3, "dropout": 0.5},
        "fanouts": [2, 2, 2], "epochs": 2, "batch_size": 140, "seeds": [0],
        "checkpoint_dir": str(tmp_path / "ck")})
    train(cfg)
    ckpt = tmp_path / "ck" / "seed-0" / "best.pt"
    graph = load_dataset("cora", datasets_dir).to_local()
    mlp = load_trained(ckpt, graph).encoder
    for output, cut in (("final", None), ("hidden", -1)):
        out = tmp_path / f"{output}.npy"
        assert cli_main(["export", "--checkpoint", str(ckpt), "--out", str(out), "--output", output,
                            "--chunk-size", "1000"]) == 0, capsys.readouterr().err
        ids, emb = read_embeddings(out)
        x = graph.node_features("paper", ids, ["feat"])["feat"]
        with torch.no_grad():
            net = mlp.net if cut is None else mlp.net[:-1]  # ..., ReLU, Dropout | Linear
            want = net(torch.from_numpy(np.ascontiguousarray(x, np.float32))).numpy()
        assert emb.shape == (2708, 7 if cut is None else 16)
        np.testing.assert_allclose(emb, want, rtol=1e-5, atol=1e-6)


def test_mlp_with_id_embeddings_exports_load_model_predictions(datasets_dir, tmp_path, capsys):
    """An MLP on features plus learned id embeddings exports the rows load_model predicts."""
    import graphplat

    cfg = TrainConfig.from_dict({
        "dataset": "cora", "data_dir": str(datasets_dir),
        "model": {"name": "mlp", "hidden": 16, "num_layers": 2, "dropout": 0.5, "id_embedding": 4},
        "fanouts": [2, 2], "epochs": 2, "batch_size": 140, "seeds": [0],
        "checkpoint_dir": str(tmp_path / "ck")})
    train(cfg)
    ckpt = tmp_path / "ck" / "seed-0" / "best.pt"
    graph = load_dataset("cora", datasets_dir).to_local()
    out = tmp_path / "mlp-ids.npy"
    assert cli_main(["export", "--checkpoint", str(ckpt), "--out", str(out), "--chunk-size", "1000"]) == 0, \
        capsys.readouterr().err
    ids, emb = read_embeddings(out)
    want = graphplat.load_model(ckpt, graph).predict(ids)
    assert emb.shape == (2708, 7)
    np.testing.assert_allclose(emb, want, rtol=1e-5, atol=1e-6)
