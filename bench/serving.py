#!/usr/bin/env python
"""Benchmark the online model service (``graphplat serve-model``) on loopback: latency
p50/p99 and requests/s of recommendation and spam scoring with 1 and 2 concurrent clients,
against graph servers on loopback.

Setup (all in a temporary directory, removed at the end):

1. **Recommendation graph**: the synthetic user/item/shop graph
   (``graphplat.datasets.generate_recsys``), written as a store of ``--partitions``
   partitions; random float32 user and item embeddings of width ``--dim`` saved in the
   exporter's NPY layout (``user.npy`` + ``user.ids.npy``).
2. **Scoring graph**: YelpChi (the shared R-U-R file: 23,831 reviews, 98,630 directed edges) when its file is found
   (``--score-dataset yelpchi``, the default without ``--quick``), else a synthetic
   homogeneous binary graph; a 2-layer GraphSAGE trained for ``--epochs`` epochs with
   ``graphplat.training.loop.train`` (checkpoint ``best.pt``).
3. One ``graphplat serve`` subprocess per partition of each store, and one model service
   subprocess per store (``python -m graphplat.cli.serve_model --cluster ...``), all on
   127.0.0.1.

Measured (closed loop, ``--seconds`` per configuration after ``--warmup`` requests, each
client a thread with its own channel, random ids drawn with a fixed seed):

* ``recommend``: top-``--k`` of one user (exact inner product over every item);
* ``recommend_exclude_seen``: the same, excluding the user's clicked items (one full
  out-neighborhood read from the graph servers per request);
* ``score``: one existing review/node scored from its freshly sampled 2-hop neighborhood
  (sampling + feature fetch over gRPC from the graph servers + the model forward), once per
  ``--score-workers`` setting (0 = scoring in the server process; N = N scoring processes);
* ``score_batch``: ScoreBatch of ``--batch-nodes`` random distinct nodes (one joint sample,
  one forward), one client;
* ``score_after_write`` (``--write-check``): one ``add_edges`` followed by a ``score`` of the
  edge's destination, checking that the new edge is in the sample the next request uses.

Logs go to stderr; stdout gets one JSON object: ``machine``, ``config``, ``graphs``,
``results[]`` (``rpc``, ``clients``, ``requests``, ``requests_per_s``, ``latency_ms``
{``p50``, ``p99``, ``mean``, ``max``}, ``errors``) and ``warnings[]``.
``python bench/serving.py --help`` lists every flag.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
if str(REPO_ROOT) not in sys.path:  # `python bench/serving.py` puts only bench/ on the path
    sys.path.insert(0, str(REPO_ROOT))

from bench._common import name_list, raise_on_sigterm, start_guarded, terminate  # noqa: E402
from bench.sampler import _int_list, machine_info, other_cpu_load  # noqa: E402

LOG = logging.getLogger("bench.serving")

FULL = dict(users=20_000, items=50_000, clicks=400_000, dim=64, seconds=8.0, warmup=50,
            score_nodes=20_000, score_dataset="yelpchi", epochs=2)
QUICK = dict(users=3_000, items=8_000, clicks=60_000, dim=32, seconds=3.0, warmup=20,
             score_nodes=3_000, score_dataset="synthetic", epochs=1)
RPCS = ("recommend", "recommend_exclude_seen", "score", "score_batch")
CLICK = ("user", "click", "item")


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------

_rpcs = name_list(RPCS, "RPCs", ", ".join(RPCS))


def _workers_list(text: str) -> List[int]:
    """Comma-separated ints >= 0 (0 = scoring in the server process)."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ints, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected ints >= 0, got {text!r}")
    return values


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/serving.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__.split("\n\n")[0] + "\n\nFull run: about 2-3 minutes on 2 cores; "
                    "--quick: about 1 minute.")
    p.add_argument("--quick", action="store_true",
                   help="small graphs and short measurements (synthetic scoring graph)")
    p.add_argument("--users", type=int, default=None, help=f"users (default {FULL['users']}, quick {QUICK['users']})")
    p.add_argument("--items", type=int, default=None, help=f"items (default {FULL['items']}, quick {QUICK['items']})")
    p.add_argument("--clicks", type=int, default=None, help="expected click events of the recommendation graph")
    p.add_argument("--dim", type=int, default=None, help=f"embedding width (default {FULL['dim']}, quick {QUICK['dim']})")
    p.add_argument("--k", type=int, default=10, help="items per recommendation (default 10)")
    p.add_argument("--score-dataset", choices=("yelpchi", "synthetic"), default=None,
                   help="scoring graph (default yelpchi; quick: synthetic); yelpchi falls back to "
                        "synthetic with a warning when its file is missing")
    p.add_argument("--score-nodes", type=int, default=None, help="nodes of the synthetic scoring graph")
    p.add_argument("--fanouts", type=_int_list, default=[10, 10],
                   help="training (and serving) fanouts of the scoring model, input layer first (default 10,10)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs of the scoring model")
    p.add_argument("--score-model", default="fraud_sage", help="model of the scoring service (default fraud_sage; gbdt: trees on one whole-neighborhood hop)")
    p.add_argument("--score-workers", type=_workers_list, default=[0, 2],
                   help="scoring processes of each scoring service measured (default 0,2; 0 = in the server)")
    p.add_argument("--batch-nodes", type=int, default=4096, help="nodes per ScoreBatch request (default 4096)")
    p.add_argument("--data-dir", default=None, help="raw datasets directory (see graphplat.datasets)")
    p.add_argument("--partitions", type=int, default=2, help="partitions (graph servers) per store (default 2)")
    p.add_argument("--clients", type=_int_list, default=[1, 2], help="concurrent clients (default 1,2)")
    p.add_argument("--rpcs", type=_rpcs, default=list(RPCS), help=f"RPCs to measure (default {','.join(RPCS)})")
    p.add_argument("--seconds", type=float, default=None, help="measured seconds per configuration")
    p.add_argument("--warmup", type=int, default=None, help="untimed requests per configuration")
    p.add_argument("--server-threads", type=int, default=8, help="gRPC threads of every server (default 8)")
    p.add_argument("--write-check", action=argparse.BooleanOptionalAction, default=True,
                   help="measure add_edges followed by a score that must see the edge (default on)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--workdir", type=Path, default=None, help="keep stores and logs here (default: a temp dir, removed)")
    p.add_argument("--log-level", default="INFO", help="log level on stderr (default INFO)")
    args = p.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for key, value in defaults.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    if args.k < 1 or args.dim < 1 or args.partitions < 1 or args.seconds <= 0:
        p.error("--k, --dim, --partitions and --seconds must be positive")
    return args


# --------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------

_LIVE: List["Proc"] = []


class Proc:
    """A server subprocess that reports its address in a ready file."""

    def __init__(self, name: str, module: str, args: Sequence[str], workdir: Path):
        self.name = name
        self.ready = workdir / f"{name}.ready"
        self.log_path = workdir / f"{name}.log"
        self._log = open(self.log_path, "ab")
        self.proc = start_guarded(module, [*args, "--port", "0", "--ready-file", self.ready], self._log,
                                  env=dict(os.environ, OMP_NUM_THREADS="1"))
        _LIVE.append(self)

    def wait(self, timeout: float = 300.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready.exists():
                return json.loads(self.ready.read_text())
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: "
                                   f"{self.log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} not ready after {timeout}s")

    def stop(self) -> Optional[int]:
        code = terminate(self.proc, 15, 5)
        self._log.close()
        if self in _LIVE:
            _LIVE.remove(self)
        return code


def start_graph_servers(store: Path, partitions: int, workdir: Path, threads: int, tag: str) -> List[Proc]:
    peers = workdir / f"{tag}-peers.yaml"  # the servers' own cluster file, written once they are up
    procs = [Proc(f"{tag}-p{k}", "graphplat.cli.serve",
                  ["--store", store, "--partition", k, "--threads", threads, "--grace", "2",
                   "--cluster", peers], workdir)
             for k in range(partitions)]
    for p in procs:
        p.address = p.wait()["address"]
    write_cluster(peers, procs)
    return procs


def write_cluster(path: Path, servers: Sequence[Proc]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump({"partitions": [{"partition": k, "replicas": [s.address]}
                                                   for k, s in enumerate(servers)]}))
    return path


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------

def build_recsys(args, workdir: Path) -> dict:
    from graphplat.datasets import generate_recsys

    t0 = time.perf_counter()
    ds = generate_recsys(num_users=args.users, num_items=args.items, num_shops=max(8, args.items // 200),
                         num_communities=8, num_clicks=max(args.clicks, args.users), feature_dim=8,
                         seed=args.seed)
    store = ds.write_store(workdir / "recsys", partitions=args.partitions)
    rng = np.random.default_rng(args.seed)
    files = {}
    for nt in ("user", "item"):
        ids = ds.graph.nodes[nt]
        emb = rng.standard_normal((len(ids), args.dim), dtype=np.float32)
        np.save(workdir / f"{nt}.npy", emb)
        np.save(workdir / f"{nt}.ids.npy", ids)
        files[nt] = workdir / f"{nt}.npy"
    src, _ = ds.graph.edges[CLICK]
    deg = np.bincount(src, minlength=args.users)
    LOG.info("recommendation graph: %d users, %d items, %d clicks edges (%.1fs)", args.users, args.items,
             len(src), time.perf_counter() - t0)
    return {"store": store, "files": files, "users": ds.graph.nodes["user"],
            "info": {"users": args.users, "items": args.items, "click_edges": int(len(src)),
                     "mean_clicks_per_user": round(float(deg.mean()), 2), "max_clicks_per_user": int(deg.max()),
                     "embedding_dim": args.dim, "partitions": args.partitions}}


def synthetic_binary(n: int, seed: int):
    from graphplat.datasets import Dataset, stratified_split
    from graphplat.datasets.base import symmetrize
    from graphplat.schema import EdgeType, FeatureSpec, GraphSchema, NodeType
    from graphplat.storage.graph_arrays import GraphArrays

    rng = np.random.default_rng(seed)
    label = (rng.random(n) < 0.15).astype(np.int64)
    feat = rng.standard_normal((n, 32), dtype=np.float32)
    feat[:, :4] += label[:, None] * 0.7
    m = 8 * n
    s = rng.integers(0, n, m)
    pool = [np.flatnonzero(label == c) for c in (0, 1)]
    pick = [p[rng.integers(0, len(p), m)] for p in pool]
    d = np.where(rng.random(m) < 0.8, np.where(label[s] == 1, pick[1], pick[0]), rng.integers(0, n, m))
    src, dst = symmetrize(s, d, n)
    et = ("review", "rur", "review")
    schema = GraphSchema((NodeType("review", (FeatureSpec("feat", "float32", (32,)), FeatureSpec("label", "int64"),
                                              FeatureSpec("split", "int64"))),), (EdgeType(*et, out_adjacency=True),))
    arrays = GraphArrays(schema, nodes={"review": np.arange(n, dtype=np.int64)},
                         node_features={"review": {"feat": feat, "label": label,
                                                   "split": stratified_split(label, (0.4, 0.2, 0.4), seed)}},
                         edges={et: (src, dst)})
    return Dataset(name="synthetic_binary", graph=arrays, task="node_classification", target_ntype="review",
                   num_classes=2)


def build_scoring(args, workdir: Path, warnings: List[str]) -> dict:
    from graphplat.training.config import TrainConfig
    from graphplat.training.loop import train

    t0 = time.perf_counter()
    ds = None
    if args.score_dataset == "yelpchi":
        from graphplat.datasets import load_dataset
        try:
            ds = load_dataset("yelpchi", args.data_dir)
        except FileNotFoundError as e:
            warnings.append(f"yelpchi not found ({e}); scoring uses the synthetic binary graph")
    if ds is None:
        ds = synthetic_binary(args.score_nodes, args.seed)
    store = ds.write_store(workdir / "scoring", partitions=args.partitions)
    ntype = ds.target_ntype
    etype = ds.graph.schema.canonical_etypes[0]
    model = ({"name": "gbdt", "num_rounds": 200} if args.score_model == "gbdt"  # trees: one whole-neighborhood hop
             else {"name": args.score_model, "hidden": 64, "num_layers": len(args.fanouts), "dropout": 0.0})
    cfg = TrainConfig(graph=str(store), model=model,
                      fanouts=list(args.fanouts), batch_size=512, eval_batch_size=2048, epochs=args.epochs,
                      patience=0, prefetch=1, seeds=[args.seed], checkpoint_dir=str(workdir / "ckpt"))
    result = train(cfg)
    ckpt = workdir / "ckpt" / f"seed-{args.seed}" / "best.pt"
    n = len(ds.graph.nodes[ntype])
    LOG.info("scoring graph %s: %d nodes, %d edges; model trained in %.1fs (test %s)", ds.name, n,
             ds.graph.num_edges, time.perf_counter() - t0, result["runs"][0]["test"])
    return {"store": store, "ckpt": ckpt, "ntype": ntype, "etype": etype, "ids": ds.graph.nodes[ntype],
            "info": {"dataset": ds.name, "nodes": n, "edges": ds.graph.num_edges, "ntype": ntype,
                     "model": cfg.model, "fanouts": args.fanouts, "epochs": args.epochs,
                     "test_metrics": {k: round(v, 4) for k, v in result["runs"][0]["test"].items()},
                     "partitions": args.partitions}}


# --------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------

def closed_loop(make_call: Callable[[int], Callable[[int], object]], ids: np.ndarray, clients: int,
                seconds: float, warmup: int, seed: int) -> dict:
    """``clients`` threads, each calling ``make_call(thread)(id)`` back to back on random
    ``ids`` for ``seconds`` after ``warmup`` untimed calls."""
    start = threading.Barrier(clients + 1)
    lat: List[List[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    stop_at = [float("inf")]  # set once every client finished its warm-up

    def run(t: int) -> None:
        call = make_call(t)
        rng = np.random.default_rng([seed, t])
        for i in rng.choice(ids, warmup):
            call(int(i))
        start.wait()
        picks = rng.choice(ids, 1 << 16)
        j = 0
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at[0]:
                break
            try:
                call(int(picks[j % len(picks)]))
            except Exception as e:  # noqa: BLE001 - counted and reported
                errors[t] += 1
                LOG.debug("request failed: %s", e)
            lat[t].append(time.perf_counter() - t0)
            j += 1

    threads = [threading.Thread(target=run, args=(t,), daemon=True) for t in range(clients)]
    for th in threads:
        th.start()
    start.wait()
    t_begin = time.perf_counter()
    stop_at[0] = t_begin + seconds
    for th in threads:
        th.join()
    wall = time.perf_counter() - t_begin
    all_lat = np.array([x for row in lat for x in row]) * 1e3
    return {"clients": clients, "requests": int(len(all_lat)), "seconds": round(wall, 3),
            "requests_per_s": round(len(all_lat) / wall, 1),
            "latency_ms": {"p50": round(float(np.percentile(all_lat, 50)), 3),
                           "p99": round(float(np.percentile(all_lat, 99)), 3),
                           "mean": round(float(all_lat.mean()), 3), "max": round(float(all_lat.max()), 3)}
            if len(all_lat) else None,
            "errors": int(sum(errors))}


def write_check(addr: str, cluster: Path, scoring: dict, rounds: int, seed: int) -> dict:
    """add_edges(src -> dst) then score(dst): the edge must be in the next sample (checked by
    the sampled edge count growing while the node has fewer neighbors than the fanout)."""
    from graphplat.serving import ModelServiceClient
    from graphplat.storage.remote import connect

    g = connect(cluster)
    rng = np.random.default_rng(seed)
    base = int(scoring["ids"].max()) + 1_000_000
    lat, seen = [], 0
    try:
        with ModelServiceClient(addr) as c:
            for r in range(rounds):
                new = base + r
                feat = {f.name: np.zeros((1,) + f.shape, f.numpy_dtype)
                        for f in g.schema.node_type(scoring["ntype"]).features}
                g.add_nodes(scoring["ntype"], np.array([new]), feat)
                before = c.score(new).sampled_edges
                nbr = rng.choice(scoring["ids"], 1)
                t0 = time.perf_counter()
                g.add_edges(scoring["etype"], nbr, np.array([new]))
                after = c.score(new)
                lat.append(time.perf_counter() - t0)
                seen += int(after.sampled_edges > before)
    finally:
        g.close()
    ms = np.array(lat) * 1e3
    return {"rpc": "score_after_write", "clients": 1, "requests": rounds,
            "latency_ms": {"p50": round(float(np.percentile(ms, 50)), 3),
                           "p99": round(float(np.percentile(ms, 99)), 3),
                           "mean": round(float(ms.mean()), 3)},
            "write_visible_to_next_score": f"{seen}/{rounds}",
            "note": "add_edges (durable, synced WAL) + Score of the new edge's destination"}


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    raise_on_sigterm()
    from graphplat.serving import ModelServiceClient

    warnings: List[str] = []
    report: Dict[str, object] = {
        "machine": {**machine_info(("torch", "dgl", "grpcio")), "other_busy_cores_at_start": other_cpu_load()},
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "log_level"},
    }
    own = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="serving-bench-")) if own else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    procs: List[Proc] = []
    results: List[dict] = []
    t_start = time.perf_counter()
    try:
        need_rec = any(r.startswith("recommend") for r in args.rpcs)
        need_score = "score" in args.rpcs or "score_batch" in args.rpcs or args.write_check
        rec = build_recsys(args, workdir) if need_rec else None
        sc = build_scoring(args, workdir, warnings) if need_score else None
        report["graphs"] = {"recommendation": rec and rec["info"], "scoring": sc and sc["info"]}
        addrs = {}
        if rec is not None:
            gs = start_graph_servers(rec["store"], args.partitions, workdir, args.server_threads, "rec")
            procs += gs
            cluster = write_cluster(workdir / "rec-cluster.yaml", gs)
            m = Proc("model-rec", "graphplat.cli.serve_model",
                     ["--cluster", cluster, "--user-embeddings", rec["files"]["user"], "--item-embeddings",
                      rec["files"]["item"], "--seen-etype", ":".join(CLICK), "--threads", args.server_threads],
                     workdir)
            procs.append(m)
            addrs["rec"] = m.wait()["address"]
        if sc is not None:
            gs = start_graph_servers(sc["store"], args.partitions, workdir, args.server_threads, "score")
            procs += gs
            sc["cluster"] = write_cluster(workdir / "score-cluster.yaml", gs)
            for w in args.score_workers:  # one scoring service per worker setting
                m = Proc(f"model-score-w{w}", "graphplat.cli.serve_model",
                         ["--cluster", sc["cluster"], "--checkpoint", sc["ckpt"], "--threads", args.server_threads,
                          "--score-workers", w], workdir)
                procs.append(m)
                addrs[f"score-w{w}"] = m.wait()["address"]
        LOG.info("servers up: %s", addrs)
        plan = []  # (rpc, service, clients, extra fields)
        for rpc in args.rpcs:
            if rpc.startswith("recommend"):
                plan += [(rpc, "rec", c, {}) for c in args.clients]
            elif rpc == "score":
                plan += [(rpc, f"score-w{w}", c, {"score_workers": w}) for w in args.score_workers
                         for c in args.clients]
            else:
                plan += [(rpc, f"score-w{w}", 1, {"score_workers": w, "batch_nodes": args.batch_nodes})
                         for w in args.score_workers]
        for rpc, svc, clients, extra in plan:
            ids = rec["users"] if svc == "rec" else sc["ids"]

            def make_call(t, rpc=rpc, svc=svc):
                c = ModelServiceClient(addrs[svc])
                if rpc == "recommend":
                    return lambda i: c.recommend(i, args.k)
                if rpc == "recommend_exclude_seen":
                    return lambda i: c.recommend(i, args.k, exclude_seen=True)
                if rpc == "score_batch":
                    rng = np.random.default_rng([args.seed, t, 1])
                    size = min(args.batch_nodes, len(sc["ids"]))  # --quick's graph has fewer nodes
                    return lambda i: c.score_batch(rng.choice(sc["ids"], size, replace=False))
                return lambda i: c.score(i)

            warm = max(2, args.warmup // 10) if rpc == "score_batch" else args.warmup
            r = closed_loop(make_call, ids, clients, args.seconds, warm, args.seed)
            r = {"rpc": rpc, **extra, **r}
            LOG.info("%s", json.dumps(r))
            results.append(r)
        if args.write_check and sc is not None:
            w = args.score_workers[-1]
            r = write_check(addrs[f"score-w{w}"], sc["cluster"], sc, 30 if args.quick else 100, args.seed)
            r["score_workers"] = w
            LOG.info("%s", json.dumps(r))
            results.append(r)
        if any(r.get("errors") for r in results):
            warnings.append("some requests failed; see errors per result")
    finally:
        for p in reversed(list(_LIVE)):
            p.stop()
        if own:
            shutil.rmtree(workdir, ignore_errors=True)
    report["results"] = results
    other = other_cpu_load()
    report["machine"]["other_busy_cores_at_end"] = other
    for when, busy in (("start", report["machine"]["other_busy_cores_at_start"]), ("end", other)):
        if busy is not None and busy > 0.3:
            warnings.append(f"other processes kept {busy:.2f} cores busy at the {when}; numbers may be low")
    report["warnings"] = warnings
    report["total_seconds"] = round(time.perf_counter() - t_start, 1)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
