"""FraudSAGE (ego/neighbor-separated, per-relation, label-aware), class weights and model
selection, on the planted fraud graph."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from graphplat.datasets import load_dataset
from graphplat.models.registry import build_model
from graphplat.sampling import NodeLoader
from graphplat.sampling.loader import SEED_COUNT
from graphplat.training import metrics as M
from graphplat.training.config import TrainConfig
from graphplat.training.loop import class_weights, load_trained, train

FAST = {"fanouts": [5, 5], "batch_size": 256, "epochs": 10, "lr": 0.01, "patience": 0}


def cfg(signal=True, relations=1, **kw) -> TrainConfig:
    base = {"dataset": "planted_fraud", "dataset_options": {"num_nodes": 1500, "relations": relations,
                                                            "signal": signal},
            "model": {"name": "fraud_sage", "hidden": 32, "dropout": 0.0}, **FAST}
    base.update(kw)
    return TrainConfig.from_dict(base)


def test_shapes_per_relation_and_layerwise_equals_forward():
    ds = load_dataset("planted_fraud", num_nodes=300, relations=3)
    g = ds.to_local()
    try:
        model = build_model({"name": "fraud", "hidden": 16, "num_layers": 2}, g.schema, out=2,
                            target_ntype="account").eval()
        assert model.layer_output_dim(0) == 32 and model.layer_output_dim(1) == 2
        assert len(model.canonical_etypes) == 3
        loader = NodeLoader(g, {"account": np.arange(40)}, [4, 4], batch_size=40, labels="label",
                            features={"account": ["feat"]})
        _, _, blocks = next(iter(loader))
        assert len(blocks[0].canonical_etypes) == 3
        x = blocks[0].srcdata["feat"]
        out = model(blocks, x)
        assert out.shape == (40, 2)
        h = model.project_inputs(x)
        for i, b in enumerate(blocks):
            h = model.layer_forward(i, b, h)
        torch.testing.assert_close(h, out)
        assert model.aux_logits(x[:40]).shape == (40,)
        with pytest.raises(ValueError, match="one node type"):
            build_model({"name": "fraud_sage", "hidden": 8}, {"in_feats": {"a": 3, "b": 3},
                        "canonical_etypes": [("a", "x", "b")]}, out=2)
        with pytest.raises(ValueError, match="width"):
            model(blocks, x[:, :5])
    finally:
        g.close()


@pytest.mark.slow
def test_fraud_sage_learns_planted_heterophilous_signal():
    gnn = train(cfg(relations=2, batch_size=64))["summary"]["test"]["roc_auc"]["mean"]
    mlp = train(cfg(relations=2, batch_size=64, model={"name": "mlp", "hidden": 32}))["summary"]["test"]["roc_auc"]["mean"]
    assert gnn > 0.8 and gnn > mlp + 0.15, (gnn, mlp)


def test_class_weights():
    y = np.array([0] * 90 + [1] * 10)
    w = class_weights("balanced", y, 2).numpy()
    np.testing.assert_allclose(w, [100 / 180, 100 / 20])
    np.testing.assert_allclose(class_weights([1, 4], y, 2).numpy(), [1, 4])
    assert class_weights(None, y, 2) is None
    with pytest.raises(ValueError, match="2 classes"):
        class_weights([1.0, 2.0, 3.0], y, 2)
    for bad in ("heavy", [1, -1], [], [True, 1]):
        with pytest.raises(ValueError, match="class_weight"):
            cfg(class_weight=bad)


def test_class_weight_raises_minority_recall():
    """Weighting the rare class trades precision for recall at the argmax threshold."""
    base = dict(model={"name": "mlp", "hidden": 16}, dataset_options={"num_nodes": 1500, "signal": False,
                                                                      "fraud_fraction": 0.05})
    plain = train(cfg(**base))["runs"][0]["test"]
    weighted = train(cfg(**base, class_weight="balanced"))["runs"][0]["test"]
    # balanced weights move predictions toward the rare class: more positives predicted,
    # so macro-F1 changes while accuracy drops below the all-negative baseline's
    assert weighted["accuracy"] < plain["accuracy"]


def test_balanced_sampling_draws_classes_equally_and_raises_minority_recall():
    from graphplat.training.loop import NodeClassificationTrainer, balanced_weights, open_task

    np.testing.assert_allclose(balanced_weights(np.array([0, 0, 0, 1])), [1 / 3, 1 / 3, 1 / 3, 1])
    base = dict(model={"name": "mlp", "hidden": 16}, dataset_options={"num_nodes": 1500, "signal": False,
                                                                      "fraud_fraction": 0.05})
    c = cfg(**base, balanced_sampling=True)
    task = open_task(c)
    try:
        trainer = NodeClassificationTrainer(c, task, 0)
        def drawn(loader):  # labels and draw counts of an epoch
            got = [(b[-1].dstdata["label"].numpy(), b[-1].dstdata[SEED_COUNT].numpy()) for _, _, b in loader]
            return np.concatenate([g[0] for g in got]), np.concatenate([g[1] for g in got])

        labels, counts = drawn(trainer.train_loader)
        assert counts.sum() == len(trainer.ids["train"]) and counts.max() > 1
        # about half the draws are the 5 % class
        assert 0.4 < (labels * counts).sum() / counts.sum() < 0.6
        trainer.train_loader.set_epoch(0)
        again = drawn(trainer.train_loader)
        assert all(np.array_equal(a, b) for a, b in zip(again, (labels, counts)))  # reproducible
    finally:
        task.close()
    plain = train(cfg(**base))["runs"][0]["test"]
    balanced = train(c)["runs"][0]["test"]
    assert balanced["accuracy"] < plain["accuracy"]  # positives predicted, as with class weights
    with pytest.raises(ValueError, match="sample_weights"):
        NodeLoader(load_dataset("planted_fraud", num_nodes=50).to_local(), {"account": np.arange(5)}, [2],
                   batch_size=2, sample_weights=np.array([1.0, -1, 0, 0, 0]))


SELECT = {"candidates": [{"name": "gcn", "hidden": 32}, {"name": "fraud_sage", "hidden": 32, "dropout": 0.0}],
          "metric": "roc_auc"}


@pytest.mark.slow
def test_model_selection_picks_gnn_with_signal_and_mlp_without(tmp_path):
    with_signal = train(cfg(model_selection=SELECT, checkpoint_dir=str(tmp_path / "a")))
    run = with_signal["runs"][0]
    names = [c["name"] for c in run["selection"]["candidates"]]
    assert names == ["0-mlp", "1-gcn", "2-fraud_sage"]  # the MLP is always a candidate
    assert run["selection"]["chosen"] == "2-fraud_sage"
    chosen = run["selection"]["candidates"][2]
    assert run["test"] == chosen["test"] and run["val"] == chosen["val"]
    assert with_signal["summary"]["selected"] == {"0-mlp": 0, "1-gcn": 0, "2-fraud_sage": 1}
    assert set(with_signal["summary"]["candidates"]) == set(names)
    # the checkpoint written is the chosen model's
    state = torch.load(tmp_path / "a" / "seed-0" / "best.pt", weights_only=False)
    assert state["config"]["model"]["name"] == "fraud_sage" and state["test"] == run["test"]

    # no neighbor signal, own features carry it all: a GNN that mixes own features with
    # random neighbors' (GCN has no separate self path) validates worse, the MLP is kept
    only_gcn = {"candidates": [SELECT["candidates"][0]], "metric": "roc_auc"}
    without = train(cfg(signal=False, model_selection=only_gcn, checkpoint_dir=str(tmp_path / "b")))
    assert without["summary"]["selected"] == {"0-mlp": 1, "1-gcn": 0}, without["runs"]
    state = torch.load(tmp_path / "b" / "seed-0" / "best.pt", weights_only=False)
    assert state["config"]["model"]["name"] == "mlp"
    ds = load_dataset("planted_fraud", num_nodes=1500, signal=False)
    g = ds.to_local()
    try:
        assert type(load_trained(tmp_path / "b" / "seed-0" / "best.pt", g).encoder).__name__ == "FeatureMLP"
    finally:
        g.close()


def test_model_selection_config_errors():
    for bad in ({"candidates": []}, {"candidates": [{"hidden": 3}]}, {"cands": []}, "mlp"):
        with pytest.raises(ValueError, match="model_selection"):
            cfg(model_selection=bad)


def test_gbdt_features_from_a_whole_neighborhood_block():
    ds = load_dataset("planted_fraud", num_nodes=300, relations=2)
    g = ds.to_local()
    try:
        model = build_model({"name": "gbdt"}, g.schema, out=2, target_ntype="account")
        assert model.num_layers == 1 and model.feature_width == 8 * 5 + 2
        seeds = np.arange(0, 300, 7)
        loader = NodeLoader(g, {"account": seeds}, [-1], batch_size=len(seeds), features={"account": ["feat"]})
        _, _, blocks = next(iter(loader))
        x = model.features(blocks[0], {"account": blocks[0].srcdata["feat"]})
        feat = ds.graph.node_features["account"]["feat"]
        for k, et in enumerate(sorted(ds.graph.edges)):
            src, dst = ds.graph.edges[et]
            for row, v in enumerate(seeds):  # against the arrays, per node
                nbrs = src[dst == v]
                col = 8 + k * 17
                np.testing.assert_allclose(x[row, :8], feat[v], rtol=1e-6)
                np.testing.assert_allclose(x[row, col:col + 8], feat[nbrs].mean(0) if len(nbrs) else 0, rtol=1e-5)
                np.testing.assert_allclose(x[row, col + 8:col + 16], feat[nbrs].max(0) if len(nbrs) else 0)
                assert x[row, col + 16] == len(nbrs)
        with pytest.raises(ValueError, match="not fitted"):
            model(blocks, blocks[0].srcdata["feat"])
    finally:
        g.close()


def test_gbdt_candidate_learns_planted_signal_and_checkpoints(tmp_path):
    # model selection with the gbdt candidate: chosen over the MLP where neighbors carry the signal
    r = train(cfg(relations=2, model_selection={"candidates": [{"name": "mlp", "hidden": 32},
                                                              {"name": "gbdt", "num_rounds": 100}]},
                  seeds=[0], checkpoint_dir=str(tmp_path)))
    run = r["runs"][0]
    assert run["selection"]["chosen"] == "1-gbdt", run["selection"]
    assert run["test"]["roc_auc"] > 0.85, run["test"]
    ds = load_dataset("planted_fraud", num_nodes=1500, relations=2)
    g = ds.to_local()
    try:
        trained = load_trained(tmp_path / "seed-0" / "best.pt", g)
        assert trained.config["eval_fanouts"] == [-1] and trained.encoder.fitted
        import graphplat

        model = graphplat.load_model(tmp_path / "seed-0" / "best.pt", g)
        test = np.flatnonzero(ds.split() == 2)
        logits = model.predict(test)
        assert M.roc_auc(ds.labels()[test], logits[:, 1]) == pytest.approx(run["test"]["roc_auc"], abs=1e-9)
    finally:
        g.close()
