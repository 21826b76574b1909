"""MovieLens' rating-typed edges (``dataset_options: {rating_etypes: true}``), the
``mp_etypes`` training option, and leak-free exclusion of a batch's target pairs from every
parallel relation."""
from __future__ import annotations

import dgl
import numpy as np
import pytest

from graphplat.datasets import load_dataset
from graphplat.training.config import TrainConfig
from graphplat.training.loop import RatingTrainer, open_task, select_etypes, train

TYPED = ["rates-?", "rated-by-?"]


def _pairs(u, i):
    return set(zip(np.asarray(u).tolist(), np.asarray(i).tolist()))


def test_rating_etypes_split_training_ratings_by_level(datasets_dir):
    plain = load_dataset("movielens", datasets_dir)
    ds = load_dataset("movielens", datasets_dir, rating_etypes=True)
    edges, feats = ds.graph.edges, ds.graph.edge_features
    assert not any("rates-1" in et for et in plain.graph.edges)
    assert ds.target_etypes == plain.target_etypes  # targets and held-out types unchanged
    tu, ti = edges[("user", "rates", "item")]
    rating = feats[("user", "rates", "item")]["rating"]
    union = set()
    for level in range(1, 6):
        u, i = edges[("user", f"rates-{level}", "item")]
        ri, ru = edges[("item", f"rated-by-{level}", "user")]
        assert _pairs(u, i) == _pairs(ru, ri) == _pairs(tu[rating == level], ti[rating == level])
        assert (feats[("user", f"rates-{level}", "item")]["rating"] == level).all()
        union |= _pairs(u, i)
    assert union == _pairs(tu, ti) and len(union) == 76_000
    held = _pairs(*edges[("user", "rates-test", "item")]) | _pairs(*edges[("user", "rates-val", "item")])
    assert not union & held


def test_mp_etypes_option_is_validated():
    for bad in ([], "rates", [""], [3]):
        with pytest.raises(ValueError, match="mp_etypes"):
            TrainConfig.from_dict({"dataset": "movielens", "mp_etypes": bad})
    cands = [("user", "rates", "item"), ("item", "rated-by", "user"), ("user", "rates-1", "item"),
             ("item", "rated-by-1", "user")]
    held = [("user", "rates-test", "item")]
    assert select_etypes(cands, TYPED, held) == cands[2:]
    assert select_etypes(cands, ["user:rates:item"], held) == cands[:1]
    with pytest.raises(ValueError, match="held-out"):
        select_etypes(cands, ["rates-test"], held)
    with pytest.raises(ValueError, match="matches no"):
        select_etypes(cands, ["clicks"], held)


def test_typed_batches_never_see_their_own_rating(datasets_dir):
    cfg = TrainConfig.from_dict({
        "dataset": "movielens", "data_dir": str(datasets_dir), "dataset_options": {"rating_etypes": True},
        "model": {"name": "hsage", "hidden": 8, "num_layers": 1, "id_embedding": 4},
        "fanouts": [-1], "batch_size": 4096, "epochs": 1, "prefetch": 0})
    task = open_task(cfg)
    try:
        for mp in (None, TYPED):  # typed only, and typed plus the untyped pair
            t = RatingTrainer(TrainConfig.from_dict({**cfg.to_dict(), "mp_etypes": mp}), task, 0)
            assert t.train_loader.exclude == "node_pairs"
            assert len(t.leak_same) + len(t.leak_swapped) == len(t.mp_etypes)
            _, pair, blocks = next(iter(t.train_loader))
            ps, pd = pair.edges(etype=t.train_etype)
            seeds = _pairs(pair.nodes["user"].data[dgl.NID][ps], pair.nodes["item"].data[dgl.NID][pd])
            b, seen = blocks[0], 0
            for et in b.canonical_etypes:
                s, d = b.edges(etype=et)
                su, du = b.srcnodes[et[0]].data[dgl.NID][s], b.dstnodes[et[2]].data[dgl.NID][d]
                got = _pairs(su, du) if et[0] == "user" else _pairs(du, su)
                assert not got & seeds, et
                seen += len(got)
            assert seen > 50_000  # the rest of the neighborhood is there
    finally:
        task.close()


def test_rating_typed_training_learns(datasets_dir, movielens_mean_rmse):
    cfg = TrainConfig.from_dict({
        "dataset": "movielens", "data_dir": str(datasets_dir), "dataset_options": {"rating_etypes": True},
        "mp_etypes": TYPED, "model": {"name": "hsage", "hidden": 16, "num_layers": 1, "id_embedding": 16},
        "fanouts": [10], "batch_size": 8192, "epochs": 3, "lr": 0.01, "patience": 0})
    r = train(cfg)
    assert r["summary"]["test"]["rmse"]["mean"] < movielens_mean_rmse - 0.1


def test_training_without_a_validation_split_keeps_the_last_weights(datasets_dir, movielens_mean_rmse):
    """val_fraction 0 (GC-MC's protocol: train on all of u1.base for a number of epochs chosen
    on a validation run): no validation, no early stop, the last epoch's weights are tested."""
    cfg = TrainConfig.from_dict({
        "dataset": "movielens", "data_dir": str(datasets_dir),
        "dataset_options": {"rating_etypes": True, "val_fraction": 0.0}, "mp_etypes": TYPED,
        "model": {"name": "rgcn", "self_loop": False, "hidden": 8, "num_layers": 1, "id_embedding": 8},
        "fanouts": [5], "batch_size": 8192, "epochs": 3, "lr": 0.03, "patience": 1, "ema_decay": 0.9,
        "seeds": [0]})
    r = train(cfg)
    run = r["runs"][0]
    assert run["val"] == {} and run["best_epoch"] == 2  # patience never stopped it
    assert np.isfinite(run["test"]["rmse"]) and run["test"]["rmse"] < movielens_mean_rmse - 0.05
