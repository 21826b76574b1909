"""MovieLens top-K recommendation, deployed: graph servers, link-prediction training against
them, embedding export and the model service answering top-10 requests with movie titles.

Run: python examples/movielens_serving.py [--workdir DIR] [--epochs N] [--users 0,1,2] [--keep] [-v]

Every step is a `graphplat` command run as a subprocess, the way a team deploys graphplat
(WORK is --workdir, default a fresh temporary directory):

  1. graphplat dataset movielens --out WORK/store --partitions 2 --overwrite
  2. graphplat serve --store WORK/store --partition K --port 0 --ready-file WORK/run/graph-server-K.json
     for K = 0, 1 (in the background); their addresses go into WORK/cluster.yaml
  3. graphplat train --config WORK/train.yaml --cluster WORK/cluster.yaml --seeds 0 --epochs N
         --checkpoint-dir WORK/ckpt --out WORK/train.json
     WORK/train.yaml is examples/configs/movielens_topk.yaml (task: link_prediction, a
     dot-product head) with the store's held-out edge types (store.json) in place of the
     dataset: the model is trained on minibatches sampled from the graph servers.
  4. graphplat export --checkpoint WORK/ckpt/seed-0/best.pt --cluster WORK/cluster.yaml
         --ntype user --out WORK/emb/user.parquet        (and --ntype item -> item.parquet)
  5. graphplat serve-model --cluster WORK/cluster.yaml --user-embeddings WORK/emb/user.parquet
         --item-embeddings WORK/emb/item.parquet --seen-etype user:rates:item
         --port 0 --ready-file WORK/run/model-server.json
  6. ModelServiceClient.recommend_batch(users, k=10, exclude_seen=True): the top 10 movies of
     a few users, printed with their titles (u.item in ml-100k.zip, found through
     graphplat.datasets.find_data_dir); checked to hold no movie the user rated in training,
     and matched against the user's held-out test ratings (user:rates-test:item).

Node ids are MovieLens ids minus one (user 0 is MovieLens user 1, item 0 is movie 1).
Logs go to stderr (-v: the commands' own logs too), each command's output to WORK/logs/, and
a JSON summary to stdout. Servers are stopped on exit, also on Ctrl-C, SIGTERM and errors.
A temporary WORK is removed after a successful run unless --keep; a --workdir is kept.
The exit code is 1 when a step fails or a recommendation check fails.

Shares its helpers with examples/yelpchi_serving.py (imported from it).
"""
from __future__ import annotations

import argparse
import io
import logging
import sys
import zipfile
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
from yelpchi_serving import Deployment, positive_int, run_example, store_serve_train

EXAMPLES = Path(__file__).resolve().parent
CONFIG = EXAMPLES / "configs" / "movielens_topk.yaml"
RATES, RATES_TEST = ("user", "rates", "item"), ("user", "rates-test", "item")
log = logging.getLogger("examples.serving")


def movie_titles(data_dir: Optional[str]) -> Dict[int, str]:
    """Node id (MovieLens movie id - 1) -> title, from ``u.item`` in ``ml-100k.zip`` (or
    loose) under the datasets directory."""
    from graphplat.datasets import find_data_dir

    root = find_data_dir(data_dir)
    for d in (root / "movielens-100k", root / "ml-100k", root / "movielens", root):
        z = d / "ml-100k.zip"
        if z.is_file():
            with zipfile.ZipFile(z) as f:
                member = next((m for m in f.namelist() if m.rsplit("/", 1)[-1] == "u.item"), None)
                if member:
                    text, where = f.read(member).decode("latin-1"), f"{z}:{member}"
                    break
        if (d / "u.item").is_file():
            text, where = (d / "u.item").read_bytes().decode("latin-1"), str(d / "u.item")
            break
    else:
        raise FileNotFoundError(f"no ml-100k.zip with u.item (or a loose u.item) under {root}")
    titles = {}
    for line in io.StringIO(text):
        if line.strip():
            cols = line.split("|")
            titles[int(cols[0]) - 1] = cols[1]
    log.info("%d movie titles from %s", len(titles), where)
    return titles


def movielens_body(d: Deployment, args) -> Dict[str, Any]:
    import graphplat
    from graphplat.inference.export import read_embeddings
    from graphplat.sampling import all_edges
    from graphplat.serving import ModelServiceClient

    work = d.workdir
    store, emb_dir = work / "store", work / "emb"
    users = np.array(sorted(set(args.users)), np.int64)
    titles = movie_titles(args.data_dir)  # fail early when the raw files are missing

    # 1-3. store, graph servers, link prediction (dot-product head) trained against them
    cluster, servers, metrics, best, train_seconds = store_serve_train(d, "movielens", CONFIG, args)
    log.info("trained on the graph servers in %.0f s: test %s; checkpoint %s", train_seconds,
             ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()), best)

    # 4. user and item embeddings (layer-wise inference over the servers)
    emb_dir.mkdir(exist_ok=True)
    exports = {}
    for ntype in ("user", "item"):
        out = emb_dir / f"{ntype}.parquet"
        d.run(f"export-{ntype}", "export", "--checkpoint", best, "--cluster", cluster,
              "--ntype", ntype, "--out", out)
        ids, emb = read_embeddings(out)
        exports[ntype] = {"file": str(out), "rows": int(len(ids)), "width": int(emb.shape[1])}
        log.info("exported %d %s embeddings of width %d to %s", len(ids), ntype, emb.shape[1], out)

    # 5. the model service: exact inner-product top-K, seen items read from the graph servers
    model = d.start("model-server", "serve-model", "--cluster", cluster,
                    "--user-embeddings", exports["user"]["file"],
                    "--item-embeddings", exports["item"]["file"], "--seen-etype", ":".join(RATES))

    # 6. top-10 for a few users
    g = graphplat.connect(cluster)
    try:
        with ModelServiceClient(model["address"]) as client:
            client.wait_ready()
            recs = client.recommend_batch(users, k=args.k, exclude_seen=True)
            seen = g.sample_neighbors(RATES, users, -1, strategy="full", direction="out")
            ratings = g.edge_features(RATES, seen.eids, ["rating"])["rating"]
            test_src, test_dst, _ = all_edges(g, RATES_TEST)
    finally:
        g.close()

    starts = np.concatenate([[0], np.cumsum(seen.counts)])
    results, ok = [], True
    for i, u in enumerate(users.tolist()):
        items, scores = recs.row(i)
        rated = seen.neighbors[starts[i]:starts[i + 1]]
        stars = ratings[starts[i]:starts[i + 1]]
        held_out = set(test_dst[test_src == u].tolist())
        overlap = sorted(set(items.tolist()) & set(rated.tolist()))
        hits = [int(x) for x in items if int(x) in held_out]
        if len(items) != args.k or overlap:
            ok = False
            log.error("user %d: %d recommendations, %d of them already rated in training (%s)",
                      u, len(items), len(overlap), overlap[:5])
        favourites = rated[np.argsort(-stars, kind="stable")][:3]
        log.info("user %d (MovieLens user %d) rated %d movies in training (highest rated: %s); %d excluded as seen",
                 u, u + 1, len(rated), "; ".join(titles.get(int(x), "?") for x in favourites),
                 int(recs.excluded[i]))
        for rank, (item, score) in enumerate(zip(items.tolist(), scores.tolist()), 1):
            log.info("  %2d. %-55s score %7.3f%s", rank, titles.get(item, f"item {item}"), score,
                     "   <- in the user's held-out test ratings" if item in held_out else "")
        log.info("  %d of the top %d are among the user's %d held-out test movies",
                 len(hits), args.k, len(held_out))
        results.append({
            "user": u, "movielens_user_id": u + 1, "rated_in_training": int(len(rated)),
            "excluded_seen": int(recs.excluded[i]), "seen_in_recommendations": len(overlap),
            "held_out_movies": len(held_out), "held_out_hits": len(hits),
            "recommendations": [{"item": int(it), "movielens_movie_id": int(it) + 1,
                                 "title": titles.get(int(it)), "score": round(float(s), 4),
                                 "held_out": int(it) in held_out}
                                for it, s in zip(items.tolist(), scores.tolist())],
        })
    return {
        "ok": ok,
        "store": str(store),
        "cluster_file": str(cluster),
        "graph_servers": servers,
        "training": {"config": str(d.workdir / "train.yaml"), "epochs": args.epochs, "checkpoint": str(best),
                     "seconds": round(train_seconds, 1), "test": metrics},
        "embeddings": exports,
        "model_server": {"address": model["address"], "pid": model["pid"]},
        "k": args.k,
        "users": results,
    }


def _users(text: str):
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated user ids, got {text!r}") from None
    if not out or min(out) < 0:
        raise argparse.ArgumentTypeError(f"expected non-negative user ids, got {text!r}")
    return out


def add_movielens_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=positive_int, default=10, help="most training epochs (default 10)")
    p.add_argument("--users", type=_users, default=[0, 1, 2],
                   help="node ids of the users to recommend for (MovieLens id - 1; default 0,1,2)")
    p.add_argument("-k", type=positive_int, default=10, help="recommendations per user (default 10)")


def main(argv=None) -> int:
    return run_example(__doc__.split("\n\n")[0], add_movielens_arguments, movielens_body,
                       "graphplat-movielens-", argv)


if __name__ == "__main__":
    sys.exit(main())
