"""serve-model speaks the user's string ids: Score/ScoreBatch take a node's string id (the
graph's dictionary maps it), Recommend/RecommendBatch take string user ids and return string
item ids when the embedding exports carry them, seen items excluded through the graph."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from graphplat.cli import main as cli_main
from graphplat.cli.serve_model import build_model_server, build_parser
from graphplat.serving import ModelServiceClient
from graphplat.storage.ingest import ingest
from graphplat.training.config import TrainConfig
from graphplat.training.loop import train

USERS = [f"u{i}" for i in range(12)]
ITEMS = ["item-0", "item-1", "item-2", "item-3"]
CLICKS = {u: [ITEMS[i % 4], ITEMS[(i + 1) % 4]] for i, u in enumerate(USERS)}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    d = tmp_path_factory.mktemp("strserve")
    (d / "users.csv").write_text("id,label,age\n" + "\n".join(f"{u},{i % 2},{i}" for i, u in enumerate(USERS)) + "\n")
    (d / "items.csv").write_text("id\n" + "\n".join(ITEMS) + "\n")
    (d / "clicks.csv").write_text("src,dst\n" + "\n".join(f"{u},{it}" for u, its in CLICKS.items() for it in its) + "\n")
    spec = {"schema": {"node_types": {"user": {"id_type": "string", "features": {"label": "int64", "age": "float32"}},
                                      "item": {"id_type": "string"}},
                       "edge_types": [{"src": "user", "relation": "click", "dst": "item", "reverse": "clicked-by"}]},
            "nodes": {"user": "users.csv", "item": "items.csv"}, "edges": {"click": "clicks.csv"}}
    (d / "spec.yaml").write_text(yaml.safe_dump(spec))
    store = ingest(d / "spec.yaml", d / "store")
    train(TrainConfig.from_dict({"graph": str(store), "task": "node_classification", "target_ntype": "user",
                                 "feature": "age", "split_fractions": [0.5, 0.25, 0.25], "epochs": 1,
                                 "metric": "accuracy", "model": {"name": "hsage", "hidden": 4, "num_layers": 1},
                                 "fanouts": [2], "checkpoint_dir": str(d / "ck")}))
    ckpt = d / "ck" / "seed-0" / "best.pt"
    assert cli_main(["export", "--checkpoint", str(ckpt), "--graph", str(store), "--out", str(d / "users.parquet")]) == 0
    rng = np.random.default_rng(0)  # item embeddings as an export writes them, string ids
    emb = rng.normal(size=(len(ITEMS), 2)).astype(np.float32)
    pq.write_table(pa.table({"id": pa.array(ITEMS, pa.string()),
                             "embedding": pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), 2)}),
                   d / "items.parquet")
    args = build_parser().parse_args(["--graph", str(store), "--checkpoint", str(ckpt), "--port", "0",
                                      "--user-embeddings", str(d / "users.parquet"),
                                      "--item-embeddings", str(d / "items.parquet"),
                                      "--seen-etype", "user:click:item"])
    server = build_model_server(args).start()
    try:
        with ModelServiceClient(server.address, timeout=30) as c:
            yield {"client": c, "server": server}
    finally:
        server.stop(0.5)


def test_score_by_string_id(env):
    c, graph = env["client"], env["server"].graph
    s = c.score("u3")
    assert s.node_id == "u3" and abs(float(s.probabilities.sum()) - 1) < 1e-5
    by_int = c.score(int(graph.to_internal("user", ["u3"])[0]))
    np.testing.assert_allclose(s.probabilities, by_int.probabilities)
    batch = c.score_batch(["u3", "u5"])
    np.testing.assert_allclose(batch[0], s.probabilities, rtol=1e-6)
    with pytest.raises(IndexError, match="nobody"):
        c.score("nobody")


def test_recommend_by_string_id_excludes_seen(env):
    c = env["client"]
    items, scores = c.recommend("u0", 4).row(0)
    assert sorted(items.tolist()) == sorted(ITEMS) and np.all(np.diff(scores) <= 0)
    items, _ = c.recommend("u0", 4, exclude_seen=True).row(0)
    assert sorted(items.tolist()) == sorted(set(ITEMS) - set(CLICKS["u0"]))
    r = c.recommend_batch(["u0", "u1"], 3, exclude_seen=True)
    assert r.item_ids.shape == (2, 3) and r.item_ids.dtype == object
    assert r.item_ids[0, 2] == "" and set(r.item_ids[1, :2]) == set(ITEMS) - set(CLICKS["u1"])
    with pytest.raises(IndexError, match="nobody"):
        c.recommend("nobody", 2)
