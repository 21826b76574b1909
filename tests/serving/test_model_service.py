"""The online model service (``graphplat serve-model``) end to end: real graph servers on
127.0.0.1 over RocksDB stores under tmp_path, a real model service (a subprocess for
recommendation, in-process for scoring), real gRPC calls; no mocks.

* Recommendation: top-K equals a brute-force ranking of the inner products (ties by lower
  item id, with integer-valued embeddings so ties are common), batch equals single,
  exclude_seen never returns a clicked item (and without it clicked items do come back),
  ``--graph`` (in-process store) and ``--cluster`` (graph servers) agree.
* Scoring: a tiny GraphSAGE trained with ``graphplat.training.loop.train`` on a synthetic
  binary graph; a score is deterministic, equals an independent computation (own sampler,
  own feature fetch, own blocks, the model rebuilt from best.pt), and a node added with
  ``add_nodes`` gets a different score once edges to it are added with ``add_edges``.
* Errors: INVALID_ARGUMENT / NOT_FOUND / RESOURCE_EXHAUSTED / FAILED_PRECONDITION.
* Metrics endpoint histograms, health, SIGTERM exits 0.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest

from graphplat.errors import ServiceNotConfigured as ServiceNotConfiguredError  # noqa: E402
from graphplat.proto import common_pb2 as cpb  # noqa: E402
from graphplat.proto import model_service_pb2 as mpb  # noqa: E402
from graphplat.proto import model_service_pb2_grpc as mpb_grpc  # noqa: E402
from graphplat.serving.recommend import Recommendations
from graphplat.testing.servers import REPO_ROOT, Fleet, free_port, write_cluster_file

CLICK = ("user", "click", "item")
FOLLOWS = ("account", "follows", "account")
SEED = 0


# ----------------------------------------------------------------------------- helpers

def save_npy_embeddings(path: Path, ids: np.ndarray, emb: np.ndarray) -> Path:
    """The exporter's NPY layout: ``<stem>.npy`` rows and ``<stem>.ids.npy`` ids."""
    np.save(path, emb)
    np.save(path.with_name(path.stem + ".ids.npy"), ids)
    return path


class ModelServiceProcess:
    """``python -m graphplat.cli.serve_model`` on a free port (reported in its ready file)."""

    def __init__(self, workdir: Path, args, name: str = "model"):
        self.ready = workdir / f"{name}.ready"
        self.log_path = workdir / f"{name}.log"
        self.metrics_port = free_port()
        cmd = [sys.executable, "-m", "graphplat.cli.serve_model", "--port", "0", "--grace", "2",
               "--threads", "4", "--metrics-port", str(self.metrics_port),
               "--ready-file", str(self.ready), *map(str, args)]
        self._log = open(self.log_path, "ab")
        env = dict(os.environ, OMP_NUM_THREADS="1")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=str(REPO_ROOT), env=env)

    def wait_ready(self, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready.exists():
                return json.loads(self.ready.read_text())
            if self.proc.poll() is not None:
                raise RuntimeError(f"model service exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.05)
        raise TimeoutError(f"model service not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


def metric_value(text: str, name: str, **labels) -> float:
    """The value of one sample of a Prometheus text exposition (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def brute_top_k(user_vec, item_ids, item_emb, k, exclude=()):
    scores = item_emb @ user_vec
    order = sorted((j for j in range(len(item_ids)) if int(item_ids[j]) not in exclude),
                   key=lambda j: (-float(scores[j]), int(item_ids[j])))[:k]
    return item_ids[order], scores[order]


def raw_code(stub_call, request) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as e:
        stub_call(request, timeout=30)
    return e.value.code(), e.value.details()


# ----------------------------------------------------------------------------- recommendation

@pytest.fixture(scope="module")
def rec_env(tmp_path_factory):
    from graphplat.datasets import generate_recsys
    from graphplat.serving import ModelServiceClient

    tmp = tmp_path_factory.mktemp("rec")
    ds = generate_recsys(num_users=120, num_items=90, num_shops=6, num_communities=3,
                         num_clicks=2400, feature_dim=4, seed=3)
    store = ds.write_store(tmp / "store", partitions=2)
    rng = np.random.default_rng(11)
    users = ds.graph.nodes["user"]
    items = ds.graph.nodes["item"]
    # small integer entries: many exact ties, exercised by the lower-id rule
    uemb = rng.integers(-2, 3, (len(users), 6)).astype(np.float32)
    iemb = rng.integers(-2, 3, (len(items), 6)).astype(np.float32)
    perm = rng.permutation(len(items))  # the file's rows are not in id order
    ufile = save_npy_embeddings(tmp / "user.npy", users, uemb)
    ifile = save_npy_embeddings(tmp / "item.npy", items[perm], iemb[perm])
    src, dst = ds.graph.edges[CLICK]
    seen = {int(u): set(dst[src == u].tolist()) for u in users}
    fleet = Fleet(tmp / "servers")
    proc = None
    try:
        servers = fleet.start_all([dict(store=store, partition=k) for k in range(2)])
        cluster = write_cluster_file(tmp / "cluster.yaml", [[s] for s in servers])
        proc = ModelServiceProcess(tmp, ["--cluster", cluster, "--user-embeddings", ufile,
                                         "--item-embeddings", ifile, "--seen-etype", "user:click:item",
                                         "--max-k", "200", "--max-batch", "64"])
        ready = proc.wait_ready()
        client = ModelServiceClient(ready["address"], timeout=30).wait_ready()
        yield dict(tmp=tmp, store=store, cluster=cluster, client=client, proc=proc,
                   metrics_port=ready["metrics_port"], users=users, uemb=uemb, items=items,
                   iemb=iemb, seen=seen, ufile=ufile, ifile=ifile, address=ready["address"])
        client.close()
    finally:
        if proc is not None:
            proc.close()
        fleet.close()


def test_recommend_equals_brute_force_top_k(rec_env):
    c, users, uemb, items, iemb = (rec_env[k] for k in ("client", "users", "uemb", "items", "iemb"))
    ties = 0
    for i in range(0, len(users), 7):
        for k in (1, 10, 25):
            got_ids, got_scores = c.recommend(int(users[i]), k).row(0)
            want_ids, want_scores = brute_top_k(uemb[i], items, iemb, k)
            assert got_ids.dtype == np.int64 and got_scores.dtype == np.float32
            np.testing.assert_array_equal(got_ids, want_ids)
            np.testing.assert_array_equal(got_scores, want_scores)
            ties += int((np.diff(got_scores) == 0).sum())
    assert ties > 0, "the embeddings should produce ties, or the tie rule is untested"
    # k above the number of items: every item, ranked
    got_ids, _ = c.recommend(int(users[0]), 150).row(0)
    np.testing.assert_array_equal(got_ids, brute_top_k(uemb[0], items, iemb, 150)[0])
    assert len(got_ids) == len(items)


def test_recommend_batch_equals_single(rec_env):
    c, users = rec_env["client"], rec_env["users"]
    batch = np.concatenate([users[:20], users[3:5]])  # duplicates are answered twice
    for exclude in (False, True):
        r = c.recommend_batch(batch, k=12, exclude_seen=exclude)
        assert r.item_ids.shape == (len(batch), 12) and r.scores.shape == (len(batch), 12)
        for row, u in enumerate(batch):
            one = c.recommend(int(u), 12, exclude_seen=exclude)
            assert type(one) is type(r) is Recommendations  # one return type for both
            assert one.user_ids.tolist() == [u] and one.item_ids.shape[0] == 1
            assert one.counts[0] == r.counts[row] and one.excluded[0] == r.excluded[row]
            ids, scores = one.row(0)
            got_ids, got_scores = r.row(row)
            np.testing.assert_array_equal(got_ids, ids)
            np.testing.assert_array_equal(got_scores, scores)


def test_exclude_seen_drops_items_the_user_has_edges_to(rec_env):
    c, users, uemb, items, iemb, seen = (rec_env[k] for k in ("client", "users", "uemb", "items",
                                                              "iemb", "seen"))
    overlap_without = 0
    checked = 0
    for i, u in enumerate(users.tolist()):
        if len(seen[u]) < 5:
            continue
        checked += 1
        ids, scores = c.recommend(u, 30, exclude_seen=True).row(0)
        assert not set(ids.tolist()) & seen[u]
        want_ids, want_scores = brute_top_k(uemb[i], items, iemb, 30, exclude=seen[u])
        np.testing.assert_array_equal(ids, want_ids)
        np.testing.assert_array_equal(scores, want_scores)
        plain, _ = c.recommend(u, 30, exclude_seen=False).row(0)
        overlap_without += len(set(plain.tolist()) & seen[u])
        if checked >= 15:
            break
    assert checked >= 10
    assert overlap_without > 0, "without exclude_seen some clicked items should be recommended"


def test_exclude_seen_short_rows_and_local_graph_mode(rec_env):
    """k above the unseen items: short rows (padded in batch form); --graph agrees with --cluster."""
    from graphplat.cli.serve_model import build_model_server, build_parser
    from graphplat.serving import ModelServiceClient

    c, users, seen, items = rec_env["client"], rec_env["users"], rec_env["seen"], rec_env["items"]
    heavy = max(users.tolist(), key=lambda u: len(seen[u]))
    ids, _ = c.recommend(heavy, 200, exclude_seen=True).row(0)
    assert len(ids) == len(items) - len(seen[heavy])
    r = c.recommend_batch(np.array([heavy, users[0]]), 200, exclude_seen=True)
    assert r.counts[0] == len(ids) and (r.item_ids[0, r.counts[0]:] == -1).all()
    assert r.excluded[0] == len(seen[heavy]) and r.excluded[1] == len(seen[int(users[0])])
    assert np.isneginf(r.scores[0, r.counts[0]:]).all()

    args = build_parser().parse_args([
        "--graph", str(rec_env["store"]), "--user-embeddings", str(rec_env["ufile"]),
        "--item-embeddings", str(rec_env["ifile"]), "--seen-etype", "item:clicked-by:user",
        "--port", "0", "--max-k", "200"])
    server = build_model_server(args).start()
    try:
        with ModelServiceClient(server.address) as local:
            info = local.info()["recommend"]
            assert info["seen_etypes"][0]["direction"] == "in"
            for u in users[:40:4].tolist():
                for exclude in (True, False):
                    a = local.recommend(u, 20, exclude_seen=exclude).row(0)
                    b = c.recommend(u, 20, exclude_seen=exclude).row(0)
                    np.testing.assert_array_equal(a[0], b[0])
                    np.testing.assert_array_equal(a[1], b[1])
    finally:
        server.stop(0.5)


def test_click_added_with_add_edges_is_excluded_on_the_next_request(rec_env):
    """A click written the way the user writes it (add_edges on user:click:item, through the
    graph servers) is excluded by the very next recommendation."""
    import graphplat

    c, users, seen = rec_env["client"], rec_env["users"], rec_env["seen"]
    u = int(users[5])
    before, _ = c.recommend(u, 5, exclude_seen=True).row(0)
    top = int(before[0])
    assert top not in seen[u]
    with graphplat.connect(rec_env["cluster"]) as g:
        g.add_edges("click", src=np.array([u]), dst=np.array([top]), weights=np.array([1.0], np.float32))
    seen[u].add(top)  # the module's other tests compare against this set
    after, _ = c.recommend(u, 5, exclude_seen=True).row(0)
    assert top not in after.tolist()
    np.testing.assert_array_equal(after[:4], before[1:5])
    r = c.recommend_batch(np.array([u]), 5, exclude_seen=True)
    assert top not in r.row(0)[0].tolist()


def test_seen_etype_never_reads_an_unsynced_reverse_type():
    """user:click:item without out-adjacency is refused (reading item:clicked-by:user instead
    would miss clicks added with add_edges('click')); the fix is named."""
    from graphplat.schema import EdgeType, GraphSchema, NodeType
    from graphplat.serving.recommend import resolve_seen_etype

    schema = GraphSchema((NodeType("user"), NodeType("item")),
                         (EdgeType("user", "click", "item"), EdgeType("item", "clicked-by", "user")))
    with pytest.raises(ValueError, match=r"user:click:item does not store its out-adjacency.*out_adjacency: true"
                                         r".*item:clicked-by:user is not kept in sync"):
        resolve_seen_etype(schema, "user:click:item", "user", "item")
    got = resolve_seen_etype(schema, "item:clicked-by:user", "user", "item")  # named directly: read as is
    assert (got.etype, got.direction) == (("item", "clicked-by", "user"), "in")
    stored = GraphSchema((NodeType("user"), NodeType("item")),
                         (EdgeType("user", "click", "item", out_adjacency=True),
                          EdgeType("item", "clicked-by", "user")))
    got = resolve_seen_etype(stored, "user:click:item", "user", "item")
    assert (got.etype, got.direction) == (("user", "click", "item"), "out")
    synced = GraphSchema((NodeType("user"), NodeType("item")),
                         (EdgeType("user", "click", "item", reverse="clicked-by"),))
    got = resolve_seen_etype(synced, "user:click:item", "user", "item")  # its declared reverse type
    assert (got.etype, got.direction) == (("item", "clicked-by", "user"), "in")


def test_recommend_bad_requests(rec_env):
    from graphplat.errors import RequestTooLarge, ServiceNotConfigured, UnknownIdError

    c, users = rec_env["client"], rec_env["users"]
    channel = grpc.insecure_channel(rec_env["address"])
    stub = mpb_grpc.ModelServiceStub(channel)
    try:
        u = int(users[0])
        for k in (0, -3, 201):
            code, msg = raw_code(stub.Recommend, mpb.RecommendRequest(user_id=u, k=k))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and "k must be" in msg
            with pytest.raises(ValueError, match="k must be"):
                c.recommend(u, k)
        code, msg = raw_code(stub.Recommend, mpb.RecommendRequest(user_id=10**12, k=5))
        assert code == grpc.StatusCode.NOT_FOUND and "1000000000000" in msg
        with pytest.raises(UnknownIdError):
            c.recommend(10**12, 5, exclude_seen=True)
        with pytest.raises(IndexError):
            c.recommend_batch(np.array([u, -7]), 5)
        bad = mpb.RecommendBatchRequest(k=5, user_ids=cpb.Array(dtype="float32", shape=[1], data=b"\0" * 4))
        code, msg = raw_code(stub.RecommendBatch, bad)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "integer" in msg
        bad = mpb.RecommendBatchRequest(k=5, user_ids=cpb.Array(dtype="int64", shape=[3], data=b"\0" * 8))
        assert raw_code(stub.RecommendBatch, bad)[0] == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(RequestTooLarge):
            c.recommend_batch(np.repeat(users[:1], 65), 5)
        with pytest.raises(ServiceNotConfigured, match="checkpoint"):
            c.score(1)
        # the server still answers
        assert len(c.recommend(u, 3).row(0)[0]) == 3
    finally:
        channel.close()


def test_recommend_metrics_and_health(rec_env):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    c, users = rec_env["client"], rec_env["users"]
    before = scrape(rec_env["metrics_port"])
    n0 = metric_value(before, "graphplat_model_request_seconds_count", method="Recommend")
    for u in users[:5].tolist():
        c.recommend(u, 5)
    with pytest.raises(ValueError):
        c.recommend(int(users[0]), 0)
    text = scrape(rec_env["metrics_port"])
    assert metric_value(text, "graphplat_model_request_seconds_count", method="Recommend") == n0 + 6
    assert metric_value(text, "graphplat_model_request_seconds_bucket", method="Recommend", le="+Inf") == n0 + 6
    assert metric_value(text, "graphplat_model_requests_total", method="Recommend", code="OK") >= 5
    assert metric_value(text, "graphplat_model_requests_total", method="Recommend",
                        code="INVALID_ARGUMENT") >= 1
    assert metric_value(text, "graphplat_model_request_seconds_count", method="RecommendBatch") >= 1
    with grpc.insecure_channel(rec_env["address"]) as ch:
        got = health_pb2_grpc.HealthStub(ch).Check(
            health_pb2.HealthCheckRequest(service="graphplat.serving.v1.ModelService"), timeout=5)
        assert got.status == health_pb2.HealthCheckResponse.SERVING


def test_sigterm_drains_and_exits_zero(rec_env, tmp_path):
    """A model service of its own (so test order does not matter): SIGTERM -> exit 0."""
    from graphplat.serving import ModelServiceClient

    proc = ModelServiceProcess(tmp_path, ["--user-embeddings", rec_env["ufile"],
                                          "--item-embeddings", rec_env["ifile"]], name="sigterm")
    try:
        ready = proc.wait_ready()
        with ModelServiceClient(ready["address"]) as c:
            assert len(c.recommend(int(rec_env["users"][0]), 3).row(0)[0]) == 3
            with pytest.raises(ServiceNotConfiguredError, match="graph"):
                c.recommend(int(rec_env["users"][0]), 3, exclude_seen=True)
        proc.proc.send_signal(signal.SIGTERM)
        assert proc.proc.wait(20) == 0, proc.log()
        assert "model service stopped" in proc.log()
    finally:
        proc.close()


# ----------------------------------------------------------------------------- scoring

def make_spam_dataset(n: int = 300, seed: int = 5):
    """A homogeneous binary graph: 'account' nodes, ~30 % spam, spam features shifted and
    spam linking mostly to spam (undirected, both directions stored)."""
    from graphplat.datasets import Dataset, stratified_split
    from graphplat.datasets.base import symmetrize
    from graphplat.schema import EdgeType, FeatureSpec, GraphSchema, NodeType
    from graphplat.storage.graph_arrays import GraphArrays

    rng = np.random.default_rng(seed)
    label = (rng.random(n) < 0.3).astype(np.int64)
    feat = rng.normal(0, 1, (n, 8)).astype(np.float32)
    feat[:, :2] += label[:, None] * 0.8
    m = 4 * n
    s = rng.integers(0, n, m)
    same = rng.random(m) < 0.8
    pool = [np.flatnonzero(label == c) for c in (0, 1)]
    pick = [p[rng.integers(0, len(p), m)] for p in pool]  # a same-class partner per edge
    d = np.where(same, np.where(label[s] == 1, pick[1], pick[0]), rng.integers(0, n, m))
    src, dst = symmetrize(s, d, n)
    schema = GraphSchema((NodeType("account", (FeatureSpec("feat", "float32", (8,)), FeatureSpec("label", "int64"),
                                               FeatureSpec("split", "int64"))),),
                         (EdgeType(*FOLLOWS, out_adjacency=True),))
    arrays = GraphArrays(schema, nodes={"account": np.arange(n, dtype=np.int64)},
                         node_features={"account": {"feat": feat, "label": label,
                                                    "split": stratified_split(label, (0.6, 0.2, 0.2), seed)}},
                         edges={FOLLOWS: (src, dst)})
    return Dataset(name="spam", graph=arrays, task="node_classification", target_ntype="account",
                   num_classes=2), label


@pytest.fixture(scope="module")
def spam_env(tmp_path_factory):
    from graphplat.cli.serve_model import build_model_server, build_parser
    from graphplat.serving import ModelServiceClient
    from graphplat.training.config import TrainConfig
    from graphplat.training.loop import train

    tmp = tmp_path_factory.mktemp("spam")
    ds, label = make_spam_dataset()
    store = ds.write_store(tmp / "store", partitions=2)
    cfg = TrainConfig(graph=str(store), model={"name": "sage", "hidden": 16, "num_layers": 2, "dropout": 0.0},
                      fanouts=[4, 4], batch_size=64, eval_batch_size=512, epochs=3, patience=0,
                      prefetch=0, seeds=[0], checkpoint_dir=str(tmp / "ckpt"), num_threads=1)
    train(cfg)
    ckpt = tmp / "ckpt" / "seed-0" / "best.pt"
    assert ckpt.exists()
    fleet = Fleet(tmp / "servers")
    server = None
    try:
        servers = fleet.start_all([dict(store=store, partition=k) for k in range(2)])
        cluster = write_cluster_file(tmp / "cluster.yaml", [[s] for s in servers])
        args = build_parser().parse_args(["--cluster", str(cluster), "--checkpoint", str(ckpt),
                                          "--port", "0", "--metrics-port", "0", "--threads", "4"])
        server = build_model_server(args).start()
        client = ModelServiceClient(server.address).wait_ready()
        yield dict(tmp=tmp, store=store, cluster=cluster, ckpt=ckpt, server=server, client=client,
                   label=label, address=server.address)
        client.close()
    finally:
        if server is not None:
            server.stop(0.5)
        fleet.close()


def independent_score(graph, ckpt, node_id, fanouts, seed: int = SEED):
    """The model on the sampled blocks of one node (or of a sorted array of distinct nodes,
    sampled jointly, as ScoreBatch does), computed without the service's code."""
    import torch

    from graphplat.sampling import NeighborSampler, to_dgl_blocks
    from graphplat.training.loop import load_trained

    model = load_trained(ckpt, graph)
    seeds = np.atleast_1d(np.asarray(node_id, np.int64))
    sub = NeighborSampler(graph.schema, fanouts).sample(graph, {"account": seeds}, seed=seed)
    ids = sub.input_nodes["account"]
    x = torch.from_numpy(np.array(graph.node_features("account", ids, ["feat"])["feat"]))  # writable
    blocks = to_dgl_blocks(sub, graph.schema.ntypes, graph.schema.canonical_etypes)
    with torch.no_grad():
        probs = torch.softmax(model.encoder(blocks, x), 1).numpy()
    return (probs[0] if np.ndim(node_id) == 0 else probs), sub.num_edges


def test_score_is_deterministic_and_equals_independent_computation(spam_env):
    from graphplat.storage.remote import connect

    c = spam_env["client"]
    info = c.info()["score"]
    # offline evaluation's full neighborhoods, not the training fanouts [4, 4]
    assert info["fanouts"] == [-1, -1] and info["num_classes"] == 2 and info["target_ntype"] == "account"
    g = connect(spam_env["cluster"])
    try:
        ids = np.array([0, 7, 42, 299])
        batch = c.score_batch(ids)
        assert batch.shape == (4, 2) and batch.dtype == np.float32
        for row, nid in enumerate(ids.tolist()):
            a = c.score(nid)
            b = c.score(nid, "account")
            np.testing.assert_array_equal(a.probabilities, b.probabilities)
            assert a.score == b.score == pytest.approx(float(a.probabilities[1]))
            # batch == alone: the same blocks; the joint forward may sum in another order
            np.testing.assert_allclose(batch[row], a.probabilities, rtol=1e-5, atol=1e-7)
            want, edges = independent_score(g, spam_env["ckpt"], nid, [-1, -1])
            np.testing.assert_allclose(a.probabilities, want, rtol=1e-5, atol=1e-6)
            assert a.sampled_edges == edges > 0
        # ScoreBatch: one joint sample of the batch (sorted distinct ids) and one forward
        want, _ = independent_score(g, spam_env["ckpt"], ids, [-1, -1])
        np.testing.assert_allclose(batch, want, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(c.score_batch(ids[::-1]), batch[::-1])  # order-free
        # full neighborhoods: another seed gives the same answer
        for i, n in enumerate(ids.tolist()):
            np.testing.assert_allclose(c.score(n, seed=123).probabilities, batch[i], rtol=1e-5, atol=1e-7)
    finally:
        g.close()


def test_online_scores_equal_exported_scores(spam_env, tmp_path):
    """serve-model by default scores like `graphplat export`: the softmax of 100 exported
    logit rows equals the online probabilities within 1e-4 (with the training fanouts [4, 4]
    most nodes would differ)."""
    from graphplat.inference.export import read_embeddings

    out = tmp_path / "account.npy"
    proc = subprocess.run([sys.executable, "-m", "graphplat.cli", "export", "--checkpoint", str(spam_env["ckpt"]),
                           "--cluster", str(spam_env["cluster"]), "--ntype", "account", "--out", str(out)],
                          capture_output=True, text=True, timeout=300, cwd=str(REPO_ROOT))
    assert proc.returncode == 0, proc.stderr[-3000:]
    ids, logits = read_embeddings(out)
    pick = np.sort(np.random.default_rng(5).choice(ids[ids < 10_000], 100, replace=False))
    rows = {int(i): r for r, i in enumerate(ids)}
    z = logits[[rows[int(i)] for i in pick]].astype(np.float64)
    exported = np.exp(z - z.max(1, keepdims=True))
    exported /= exported.sum(1, keepdims=True)
    online = spam_env["client"].score_batch(pick)
    assert np.abs(online - exported).max() < 1e-4


def test_new_node_score_changes_when_edges_arrive(spam_env):
    """add_nodes, score, add_edges (through a RemoteGraph client), score again: the second
    score sees the new edges and equals the independent computation on the new blocks."""
    from graphplat.cli.serve_model import build_model_server, build_parser
    from graphplat.serving import ModelServiceClient
    from graphplat.storage.remote import connect

    c, label = spam_env["client"], spam_env["label"]
    local_args = build_parser().parse_args(["--graph", str(spam_env["store"]), "--checkpoint",
                                            str(spam_env["ckpt"]), "--port", "0",
                                            "--follow-interval", "0.1"])
    local = build_model_server(local_args).start()
    writer = connect(spam_env["cluster"])
    try:
        new = 10_000  # beyond the dense id range of the graph's relabelers
        writer.add_nodes("account", np.array([new]),
                         {"feat": np.zeros((1, 8), np.float32), "label": np.array([0]), "split": np.array([-1])})
        s0 = c.score(new)
        assert s0.sampled_edges == 0 and s0.input_nodes == 1
        want0, _ = independent_score(writer, spam_env["ckpt"], new, [-1, -1])
        np.testing.assert_allclose(s0.probabilities, want0, rtol=1e-5, atol=1e-6)

        spam = np.flatnonzero(label == 1)[:8]
        writer.add_edges(FOLLOWS, spam, np.full(len(spam), new))  # in-edges: messages to `new`
        writer.add_edges(FOLLOWS, np.full(len(spam), new), spam)
        s1 = c.score(new)  # the very next request sees them
        assert s1.sampled_edges > 0
        assert abs(s1.score - s0.score) > 1e-4, (s0, s1)
        want1, edges1 = independent_score(writer, spam_env["ckpt"], new, [-1, -1])
        np.testing.assert_allclose(s1.probabilities, want1, rtol=1e-5, atol=1e-6)
        assert s1.sampled_edges == edges1
        assert c.score(new).score == s1.score  # unchanged graph: same score

        # the in-process (--graph) service follows the servers' write log
        with ModelServiceClient(local.address) as lc:
            deadline = time.monotonic() + 10
            got = None
            while time.monotonic() < deadline:
                try:
                    got = lc.score(new)
                    if got.sampled_edges == s1.sampled_edges:
                        break
                except IndexError:
                    pass
                time.sleep(0.1)
            assert got is not None
            np.testing.assert_allclose(got.probabilities, s1.probabilities, rtol=1e-5, atol=1e-6)
    finally:
        writer.close()
        local.stop(0.5)


def test_score_bad_requests_and_metrics(spam_env):
    from graphplat.errors import ServiceNotConfigured, UnknownIdError

    c = spam_env["client"]
    channel = grpc.insecure_channel(spam_env["address"])
    stub = mpb_grpc.ModelServiceStub(channel)
    try:
        code, msg = raw_code(stub.Score, mpb.ScoreRequest(ntype="account", node_id=123456789))
        assert code == grpc.StatusCode.NOT_FOUND and "123456789" in msg
        with pytest.raises(UnknownIdError):
            c.score_batch(np.array([1, 123456789]))
        code, msg = raw_code(stub.Score, mpb.ScoreRequest(ntype="nosuchtype", node_id=1))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "nosuchtype" in msg
        with pytest.raises(ServiceNotConfigured):
            c.recommend(1, 5)
        n0 = metric_value(scrape(spam_env["server"].metrics_port), "graphplat_model_request_seconds_count",
                          method="Score")
        for nid in range(5):
            c.score(nid)
        text = scrape(spam_env["server"].metrics_port)
        assert metric_value(text, "graphplat_model_request_seconds_count", method="Score") == n0 + 5
        assert metric_value(text, "graphplat_model_requests_total", method="Score", code="NOT_FOUND") >= 1
        assert metric_value(text, "graphplat_model_requests_total", method="Score",
                            code="INVALID_ARGUMENT") >= 1
        assert metric_value(text, "graphplat_model_sampled_edges_count") >= 5
    finally:
        channel.close()


def test_garbage_request_bytes_are_invalid_argument(rec_env):
    """Bytes that are no protobuf message: INVALID_ARGUMENT naming the method, not INTERNAL,
    and the service keeps answering."""
    ch = grpc.insecure_channel(rec_env["address"])
    try:
        for method in ("Recommend", "RecommendBatch", "Score"):
            call = ch.unary_unary(f"/graphplat.serving.v1.ModelService/{method}")
            with pytest.raises(grpc.RpcError) as e:
                call(b"\xff\xff\xff\xff\x0f garbage", timeout=10)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
            assert method in e.value.details() and "not a valid protobuf" in e.value.details()
        u = int(rec_env["users"][0])
        assert len(rec_env["client"].recommend(u, 3).row(0)[0]) == 3
    finally:
        ch.close()
