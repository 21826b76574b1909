"""graphplat.load_model: a checkpoint rebuilt for inference gives the training run's
evaluation outputs, without an export."""
from __future__ import annotations

import numpy as np
import pytest

import graphplat
from graphplat.datasets import load_dataset
from graphplat.training.config import TrainConfig
from graphplat.training.loop import SPLITS, classification_metrics, train


@pytest.fixture(scope="module")
def cora(datasets_dir):
    return load_dataset("cora", datasets_dir, normalize=True, self_loops=True).to_local()


@pytest.mark.parametrize("model, eval_fanouts", [
    ({"name": "sage", "hidden": 16, "num_layers": 2, "dropout": 0.5}, [4, 3]),  # sampled
    ({"name": "gcn", "hidden": 16, "num_layers": 2, "dropout": 0.5}, None),     # full, graph norm
])
def test_load_model_reproduces_the_training_evaluation(cora, datasets_dir, tmp_path, model,
                                                       eval_fanouts):
    cfg = TrainConfig.from_dict({
        "dataset": "cora", "data_dir": str(datasets_dir),
        "dataset_options": {"normalize": True, "self_loops": True}, "model": model,
        "fanouts": [5, 5], "eval_fanouts": eval_fanouts, "epochs": 3, "batch_size": 140,
        "eval_batch_size": 500, "lr": 0.01, "seeds": [1], "checkpoint_dir": str(tmp_path)})
    result = train(cfg)
    m = graphplat.load_model(tmp_path / "seed-1" / "best.pt", cora)
    assert m.task == "node_classification" and m.target_ntype == "paper"
    assert not m.encoder.training
    ids = cora.node_ids("paper")
    cols = cora.node_features("paper", ids, ["label", "split"])
    test = cols["split"] == SPLITS.index("test")
    logits = m.predict(ids[test], seed=1)  # the split's order, the run's seed
    assert logits.shape == (int(test.sum()), 7) and logits.dtype == np.float32
    got = classification_metrics(cols["label"][test], logits, 7)
    want = result["runs"][0]["test"]
    assert set(got) == set(want)
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=1e-12), k
    # any nodes, in any batch size: with every neighbor the logits do not depend on batching
    if eval_fanouts is None:
        some = ids[::97]
        np.testing.assert_allclose(m.predict(some, batch_size=7), m.predict(some), rtol=1e-5, atol=1e-5)
