"""Rating training with GC-MC's pieces: the ``rating_loss`` option (cross-entropy plus MSE of
the expected rating) and the ``gcmc`` encoder on MovieLens' rating-typed relations."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from graphplat.models.gnn import GCMC
from graphplat.training.config import TrainConfig
from graphplat.training.loop import RatingTrainer, load_trained, open_task, train

TYPED = ["rates-?", "rated-by-?"]


def ml_cfg(datasets_dir, **kw) -> TrainConfig:
    base = {"dataset": "movielens", "data_dir": str(datasets_dir), "dataset_options": {"rating_etypes": True},
            "mp_etypes": TYPED, "model": {"name": "rgcn", "self_loop": False, "hidden": 8, "num_layers": 1,
                                          "id_embedding": 8},
            "fanouts": [5], "batch_size": 16384, "epochs": 1, "patience": 0, "seeds": [0], "prefetch": 0}
    base.update(kw)
    return TrainConfig.from_dict(base)


def test_rating_loss_option_is_validated():
    ok = TrainConfig.from_dict({"dataset": "movielens", "rating_loss": {"mse_weight": 0.5}})
    assert ok.rating_loss == {"mse_weight": 0.5}
    assert TrainConfig.from_dict({"dataset": "movielens"}).rating_loss == {}
    for bad, msg in (({"mse_weight": -1}, "mse_weight must be a number >= 0"),
                     ({"mse_weight": "x"}, "mse_weight must be a number >= 0"),
                     ({"mse": 1.0}, "unknown rating_loss keys"),
                     (0.5, "rating_loss must be a mapping")):
        with pytest.raises(ValueError, match=msg):
            TrainConfig.from_dict({"dataset": "movielens", "rating_loss": bad})


def test_rating_loss_is_rejected_outside_the_rating_task():
    cfg = TrainConfig.from_dict({"dataset": "synthetic", "rating_loss": {"mse_weight": 1.0},
                                 "dataset_options": {"num_users": 200, "num_items": 100, "num_shops": 8}})
    with pytest.raises(ValueError, match="only applies to the rating task"):
        train(cfg)


def test_mse_term_is_added_to_the_loss(datasets_dir, monkeypatch):
    """Same seed, same batches: the reported loss grows by mse_weight * MSE (> 0)."""
    losses = {}
    for w in (0.0, 1.0):
        task = open_task(ml_cfg(datasets_dir))
        try:
            t = RatingTrainer(ml_cfg(datasets_dir, rating_loss={"mse_weight": w}), task, 0)
            opt = torch.optim.SGD(t.parameters(), lr=0.0)  # no update: compare the first pass only
            losses[w] = t.train_epoch(0, opt)
        finally:
            task.close()
    assert losses[1.0] > losses[0.0] + 0.1  # an untrained model's MSE is well above 0.1


def test_gcmc_rating_training_learns_and_reloads(datasets_dir, tmp_path):
    model = {"name": "gcmc", "hidden": 20, "out": 8, "num_layers": 1, "input_width": 8, "side_hidden": 4,
             "id_embedding": 8, "dropout": 0.3, "input_dropout": 0.3}
    cfg = ml_cfg(datasets_dir, model=model, epochs=3, lr=0.02, batch_size=4096, rating_loss={"mse_weight": 0.5},
                 checkpoint_dir=str(tmp_path))
    r = train(cfg)
    assert r["summary"]["test"]["rmse"]["mean"] < 1.1  # the global mean gives about 1.15
    task = open_task(cfg)
    try:
        t = RatingTrainer(cfg, task, 0)
        gcmc = t.encoder.inner
        assert isinstance(gcmc, GCMC) and gcmc.side_widths == {"user": 24, "item": 20}
        assert gcmc.input_dropout_p == 0.3 and t.input_dropout == 0.0  # the encoder applies it
        assert t.decoder.widths == (8, 8)
        trained = load_trained(tmp_path / "seed-0" / "best.pt", task.graph)
        assert trained.decoder.widths == (8, 8) and isinstance(trained.encoder.inner, GCMC)
        assert np.isfinite(r["runs"][0]["val"]["rmse"])
    finally:
        task.close()
