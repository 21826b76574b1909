"""Training on a store ingested from the user's own CSVs: several feature columns and 1-D
int64 columns as inputs, standardisation with training statistics, a seeded stratified
split when the store has no split column, id embeddings over arbitrary int64 ids, and the
trained model exported with the same inputs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from graphplat import open_graph
from graphplat.storage.ingest import ingest
from graphplat.training.config import TrainConfig
from graphplat.training.inputs import InputView, stratified_split
from graphplat.training.loop import load_trained, open_task, train

N_USERS, N_ITEMS = 300, 40


def make_store(d: Path) -> Path:
    rng = np.random.default_rng(0)
    users = rng.choice(2 ** 60, N_USERS, replace=False).astype(np.int64) - 2 ** 59  # any int64
    emb = rng.normal(size=(N_USERS, 3)).astype(np.float32)
    age = rng.integers(18, 80, N_USERS)
    label = ((emb[:, 0] + (age - 49) / 10.0) > 0).astype(np.int64)  # needs both columns
    rows = ["id,emb_0,emb_1,emb_2,age,label"]
    rows += [f"{u},{e[0]:.5f},{e[1]:.5f},{e[2]:.5f},{a},{y}" for u, e, a, y in zip(users, emb, age, label)]
    (d / "users.csv").write_text("\n".join(rows) + "\n")
    (d / "items.csv").write_text("id\n" + "\n".join(str(1000 + i) for i in range(N_ITEMS)) + "\n")
    src = rng.choice(users, 1500)
    dst = 1000 + rng.integers(0, N_ITEMS, 1500)
    (d / "clicks.csv").write_text("src,dst\n" + "\n".join(f"{s},{t}" for s, t in zip(src, dst)) + "\n")
    spec = {"schema": {"node_types": {"user": {"features": {"emb": "float32[3]", "age": "int64",
                                                            "label": "int64"}},
                                      "item": {}},
                       "edge_types": [{"src": "user", "relation": "click", "dst": "item",
                                       "reverse": "clicked-by"}]},
            "nodes": {"user": "users.csv", "item": "items.csv"},
            "edges": {"click": "clicks.csv"}}
    (d / "spec.yaml").write_text(yaml.safe_dump(spec))
    return ingest(d / "spec.yaml", d / "store")


def cfg(store, **kw) -> TrainConfig:
    base = {"graph": str(store), "task": "node_classification", "target_ntype": "user",
            "feature": ["emb", "age"], "standardize": True, "split_fractions": [0.6, 0.2, 0.2],
            "model": {"name": "hsage", "hidden": 16, "num_layers": 1},
            "fanouts": [5], "batch_size": 64, "epochs": 25, "lr": 0.03, "patience": 0}
    base.update(kw)
    return TrainConfig.from_dict(base)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_store(tmp_path_factory.mktemp("own"))


def test_stratified_split_is_seeded_and_keeps_class_shares():
    labels = np.array([0] * 50 + [1] * 10 + [-1] * 5)
    a = stratified_split(labels, [0.6, 0.2, 0.2], seed=3)
    assert np.array_equal(a, stratified_split(labels, [0.6, 0.2, 0.2], seed=3))
    assert not np.array_equal(a, stratified_split(labels, [0.6, 0.2, 0.2], seed=4))
    assert (a[labels < 0] == -1).all()
    for c, n in ((0, 50), (1, 10)):
        got = [int(((labels == c) & (a == k)).sum()) for k in (0, 1, 2)]
        assert got == [n - 2 * (n // 5), n // 5, n // 5]
    with pytest.raises(ValueError, match="split_fractions must be"):
        stratified_split(labels, [0.5, 0.5], seed=0)


def test_inputs_concatenate_standardise_and_split(store):
    task = open_task(cfg(store))
    try:
        g = task.graph
        assert isinstance(g, InputView) and task.feature == "_input" and task.split == "_split"
        ids = g.node_ids("user")
        cols = g.node_features("user", ids, ["_input", "_split", "age", "label"])
        x, split = cols["_input"], cols["_split"]
        assert x.shape == (N_USERS, 4) and x.dtype == np.float32
        train = split == 0
        for c in (0, 1):  # stratified: each class split 60/20/20
            n = int((cols["label"] == c).sum())
            got = [int(((cols["label"] == c) & (split == k)).sum()) for k in (0, 1, 2)]
            assert got == [n - 2 * int(0.2 * n), int(0.2 * n), int(0.2 * n)]
        assert np.allclose(x[train].mean(0), 0, atol=1e-5) and np.allclose(x[train].std(0), 1, atol=1e-4)
        raw_age = cols["age"].astype(np.float64)
        assert np.allclose(x[:, 3], (raw_age - raw_age[train].mean()) / raw_age[train].std(), atol=1e-4)
    finally:
        task.close()


def test_train_on_own_store_learns_with_id_embeddings(store, tmp_path):
    r = train(cfg(store, model={"name": "hsage", "hidden": 16, "num_layers": 1, "id_embedding": 4},
                  checkpoint_dir=str(tmp_path)))
    # the label needs emb_0 and age: a constant predictor gets ~0.5, a broken input far less
    assert r["summary"]["test"]["accuracy"]["mean"] > 0.8
    with open_graph(store, read_only=True) as g:
        m = load_trained(tmp_path / "seed-0" / "best.pt", g)
        assert m.meta["feature"] == "_input" and m.meta["id_index"] == ["user"]  # items 1000.. are dense
        assert m.meta["inputs"]["columns"] == {"user": ["emb", "age"]}
    from graphplat.cli import main as cli_main
    from graphplat.inference.export import read_embeddings
    out = tmp_path / "emb.npy"
    assert cli_main(["export", "--checkpoint", str(tmp_path / "seed-0" / "best.pt"), "--graph", str(store),
                        "--out", str(out)]) == 0
    ids, emb = read_embeddings(out)
    with open_graph(store, read_only=True) as g:
        assert sorted(ids.tolist()) == sorted(g.node_ids("user").tolist())
    assert emb.shape == (N_USERS, 2) and np.isfinite(emb).all()


def test_one_dimensional_feature_column(store):
    r = train(cfg(store, feature="age", standardize=False, epochs=2))
    assert r["runs"][0]["epochs_run"] == 2
