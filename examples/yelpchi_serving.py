"""YelpChi anti-spam, deployed: graph servers, training against them, the model service,
and a review that arrives online and is scored before and after its edges exist.

Run: python examples/yelpchi_serving.py [--workdir DIR] [--epochs N] [--keep] [-v]

Every step is a `graphplat` command run as a subprocess, the way a team deploys graphplat
(WORK is --workdir, default a fresh temporary directory):

  1. graphplat dataset yelpchi --out WORK/store --partitions 2 --overwrite
  2. graphplat serve --store WORK/store --partition K --port 0 --cluster WORK/cluster.yaml --ready-file WORK/run/graph-server-K.json
     for K = 0, 1 (in the background); their addresses go into WORK/cluster.yaml
  3. graphplat train --config WORK/train.yaml --cluster WORK/cluster.yaml --seeds 0 --epochs N
         --checkpoint-dir WORK/ckpt --out WORK/train.json
     WORK/train.yaml is examples/configs/yelpchi.yaml with the task the store records in
     store.json (task, target type, classes) in place of the dataset: the model is trained
     on minibatches sampled from the graph servers.
  4. graphplat serve-model --cluster WORK/cluster.yaml --checkpoint WORK/ckpt/seed-0/best.pt
         --port 0 --ready-file WORK/run/model-server.json
  5. A new review arrives. Through graphplat.connect(WORK/cluster.yaml) it is added with
     add_nodes("review", ...) and scored by the model service while it has no edges; then
     add_edges links it to reviews of the same user (the R-U-R relation holds both
     directions of each pair in one edge type, review:rur:review, so both are added) and it
     is scored again: the service samples the new neighborhood from the graph servers.

Logs go to stderr (-v: the commands' own logs too), each command's output to WORK/logs/, and
a JSON summary to stdout. Servers are stopped on exit, also on Ctrl-C, SIGTERM and errors.
A temporary WORK is removed after a successful run unless --keep; a --workdir is kept.
The exit code is 1 when a step fails or the two scores are equal.

The helpers (Deployment, CommandFailed, ...) are shared with examples/movielens_serving.py.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import yaml

EXAMPLES = Path(__file__).resolve().parent
CONFIG = EXAMPLES / "configs" / "yelpchi.yaml"
log = logging.getLogger("examples.serving")


# ----------------------------------------------------------------------------- helpers

class CommandFailed(RuntimeError):
    """A `graphplat` command exited with an error (or a server died before it was ready)."""

    def __init__(self, name: str, returncode: Optional[int], log_path: Path, why: str = ""):
        self.name, self.returncode, self.log_path = name, returncode, log_path
        tail = ""
        if log_path.exists():
            lines = log_path.read_text(errors="replace").splitlines()
            tail = "\n".join("    " + ln for ln in lines[-15:])
        super().__init__(f"{name}: {why or f'exit code {returncode}'} (log: {log_path})"
                         + (f"\n{tail}" if tail else ""))


def graphplat_command() -> List[str]:
    """How to run the `graphplat` command line of this Python installation."""
    exe = Path(sys.executable).with_name("graphplat")
    if exe.is_file() and os.access(exe, os.X_OK):
        return [str(exe)]
    return [sys.executable, "-m", "graphplat.cli"]


def _die_with_parent() -> None:  # runs in the child between fork and exec
    """Linux: the server gets SIGTERM if this script dies without cleaning up (SIGKILL)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort only
        pass


def _sigterm_to_exit(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through the `with Deployment` cleanup


class Deployment:
    """Runs `graphplat` commands under ``workdir``: :meth:`run` to completion, :meth:`start`
    in the background (servers, stopped by :meth:`stop` / on leaving the ``with`` block).

    Each command's stderr is kept in ``workdir/logs/NAME.log`` (and echoed with
    ``verbose``), its stdout in ``workdir/logs/NAME.out``.
    """

    def __init__(self, workdir: Path, *, verbose: bool = False):
        self.workdir = Path(workdir)
        self.logs = self.workdir / "logs"
        self.run_dir = self.workdir / "run"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.verbose = verbose
        self.cmd = graphplat_command()
        self.servers: List[Tuple[str, subprocess.Popen, Any]] = []

    def __enter__(self) -> "Deployment":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _argv(self, args: Sequence[Any]) -> List[str]:
        return [*self.cmd, *(str(a) for a in args)]

    def run(self, name: str, *args: Any) -> str:
        """Run ``graphplat ARGS`` to completion; returns its stdout. CommandFailed on error."""
        log.info("$ %s", shlex.join(["graphplat", *(str(a) for a in args)]))
        out_path, log_path = self.logs / f"{name}.out", self.logs / f"{name}.log"
        t0 = time.monotonic()
        with open(out_path, "wb") as out, open(log_path, "wb") as err:
            proc = subprocess.Popen(self._argv(args), stdout=out, stderr=subprocess.PIPE,
                                    stdin=subprocess.DEVNULL)

            def tee() -> None:
                for chunk in iter(lambda: proc.stderr.read1(1 << 16), b""):
                    err.write(chunk)
                    err.flush()
                    if self.verbose:
                        sys.stderr.buffer.write(chunk)
                        sys.stderr.flush()

            reader = threading.Thread(target=tee, daemon=True)
            reader.start()
            try:
                rc = proc.wait()
            except BaseException:  # Ctrl-C / SIGTERM: do not leave the command running
                _terminate(proc, name)
                raise
            finally:
                reader.join(timeout=5)
        if rc != 0:
            raise CommandFailed(name, rc, log_path)
        log.info("%s done in %.1f s (log: %s)", name, time.monotonic() - t0, log_path)
        return out_path.read_text()

    def start(self, name: str, *args: Any, ready_timeout: float = 300.0) -> Dict[str, Any]:
        """Start ``graphplat ARGS --port 0 --ready-file F`` in the background and wait until
        it is serving; returns the ready file's JSON (address, port, pid)."""
        ready = self.run_dir / f"{name}.json"
        ready.unlink(missing_ok=True)
        args = (*args, "--port", 0, "--ready-file", ready)
        log.info("$ %s &", shlex.join(["graphplat", *(str(a) for a in args)]))
        log_path = self.logs / f"{name}.log"
        err = open(log_path, "wb")
        try:
            proc = subprocess.Popen(self._argv(args), stdout=err, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL,
                                    preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        except BaseException:
            err.close()
            raise
        self.servers.append((name, proc, err))
        deadline = time.monotonic() + ready_timeout
        while not ready.exists():  # written atomically by the server once SERVING
            if proc.poll() is not None:
                raise CommandFailed(name, proc.returncode, log_path, "exited before serving")
            if time.monotonic() > deadline:
                raise CommandFailed(name, None, log_path, f"not serving after {ready_timeout:.0f} s")
            time.sleep(0.1)
        info = json.loads(ready.read_text())
        log.info("%s serving on %s (pid %d, log: %s)", name, info["address"], proc.pid, log_path)
        return info

    def stop(self) -> None:
        """SIGTERM every server (they drain calls in flight and exit), newest first."""
        for _name, proc, _ in reversed(self.servers):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc, err in reversed(self.servers):
            _terminate(proc, name, signalled=True)
            err.close()
            log.info("stopped %s (exit code %s)", name, proc.returncode)
        self.servers.clear()


def _terminate(proc: subprocess.Popen, name: str, *, signalled: bool = False, grace: float = 20.0) -> None:
    if proc.poll() is None and not signalled:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        log.warning("%s did not stop within %.0f s; killing it", name, grace)
        proc.kill()
        proc.wait()


def write_cluster_file(path: Path, addresses: Sequence[str]) -> Path:
    """A cluster file listing one server (the primary) per partition, in order."""
    spec = {"partitions": [{"partition": k, "replicas": [a]} for k, a in enumerate(addresses)],
            "deadline_s": 30}
    path.write_text("# written by examples/*_serving.py: the graph servers of this run\n"
                    + yaml.safe_dump(spec, sort_keys=False))
    log.info("cluster file %s: %s", path, ", ".join(f"partition {k} at {a}" for k, a in enumerate(addresses)))
    return path


def training_config(template: Path, store: Path, out: Path, **extra: Any) -> Path:
    """``template`` (a config naming a dataset) rewritten for graph servers: the dataset is
    replaced by the task the store records in store.json (task, target, label, split,
    feature, classes), since over a cluster the trainer reads the task from the config
    (`graphplat train --cluster` with a config naming a dataset is refused: two graph sources)."""
    cfg = yaml.safe_load(template.read_text()) or {}
    for key in ("dataset", "data_dir", "dataset_options", "graph", "cluster"):
        cfg.pop(key, None)
    meta = json.loads((store / "store.json").read_text()).get("dataset") or {}
    if not meta.get("task"):
        raise ValueError(f"{store}/store.json records no task; was the store written by `graphplat dataset`?")
    # the template's task wins (e.g. link_prediction on a rating dataset)
    task = {"task": cfg.get("task") or meta["task"], "label": meta.get("label_feature", "label"),
            "split": meta.get("split_feature", "split"), "feature": meta.get("feature_name", "feat")}
    if meta.get("target_ntype"):
        task["target_ntype"] = meta["target_ntype"]
    if meta.get("num_classes"):
        task["num_classes"] = meta["num_classes"]
    if meta.get("target_etypes"):
        task["target_etypes"] = {k: list(v) for k, v in meta["target_etypes"].items()}
    cfg.update(task)
    cfg.update(extra)
    out.write_text(f"# {template.name} for the graph servers (task from {store / 'store.json'})\n"
                   + yaml.safe_dump(cfg, sort_keys=False))
    log.info("training config %s: %s", out, task)
    return out


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def make_workdir(given: Optional[str], prefix: str) -> Tuple[Path, bool]:
    """(workdir, temporary?)."""
    if given:
        p = Path(given).resolve()
        p.mkdir(parents=True, exist_ok=True)
        return p, False
    return Path(tempfile.mkdtemp(prefix=prefix)), True


def run_example(description: str, add_arguments, body, prefix: str, argv=None) -> int:
    """Parse the common options, run ``body(deployment, args) -> summary`` and print the
    summary as JSON. Returns the exit code (``body`` may set ``summary["ok"] = False``)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--workdir", help="directory for the store, configs, checkpoints, logs "
                   "(default: a new temporary directory)")
    p.add_argument("--data-dir", help="raw datasets directory (default: $GRAPHPLAT_DATASETS or ../shared/datasets)")
    p.add_argument("--partitions", type=positive_int, default=2, help="graph partitions, one server each (default 2)")
    p.add_argument("--keep", action="store_true", help="keep a temporary --workdir after a successful run")
    p.add_argument("-v", "--verbose", action="store_true", help="echo the commands' logs to stderr")
    add_arguments(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _sigterm_to_exit)
    workdir, temporary = make_workdir(args.workdir, prefix)
    log.info("work directory %s", workdir)
    t0 = time.monotonic()
    ok = False
    try:
        with Deployment(workdir, verbose=args.verbose) as d:
            summary = body(d, args)
        ok = summary.get("ok", True)
    except CommandFailed as e:
        log.error("%s", e)
        return 1
    except KeyboardInterrupt:
        log.error("interrupted; servers stopped")
        return 130
    except SystemExit as e:
        log.error("terminated (exit code %s); servers stopped", e.code)
        raise
    finally:
        if temporary and not args.keep and ok:
            shutil.rmtree(workdir, ignore_errors=True)
        elif not ok:
            log.info("work directory kept for inspection: %s", workdir)
    summary = {"workdir": str(workdir), "workdir_kept": workdir.exists(),
               **summary, "seconds": round(time.monotonic() - t0, 1)}
    print(json.dumps(summary, indent=2, default=float))
    return 0 if ok else 1


def start_graph_servers(d: Deployment, store: Path, partitions: int) -> Tuple[Path, List[Dict[str, Any]]]:
    """One `graphplat serve` per partition; returns (cluster file, server infos)."""
    infos = []
    cluster = d.workdir / "cluster.yaml"  # written below; each server reads it when it first
    for k in range(partitions):          # checks an edge endpoint another partition owns
        info = d.start(f"graph-server-{k}", "serve", "--store", store, "--partition", k,
                       "--cluster", cluster)
        infos.append({"partition": k, "address": info["address"], "pid": info["pid"]})
    write_cluster_file(cluster, [i["address"] for i in infos])
    return cluster, infos


def train_test_metrics(result_file: Path) -> Dict[str, float]:
    """Test metrics (mean over seeds) of a `graphplat train --out` result."""
    result = json.loads(result_file.read_text())
    return {k: round(v["mean"], 4) for k, v in result.get("summary", {}).get("test", {}).items()}


# ----------------------------------------------------------------------------- the example

def store_serve_train(d: Deployment, dataset: str, config: Path, args):
    """Steps 1-3 of both examples: raw files -> a partitioned store (``graphplat dataset``),
    one graph server per partition, and ``graphplat train`` against those servers.
    Returns ``(cluster_file, servers, test_metrics, best_checkpoint, train_seconds)``."""
    work = d.workdir
    store, ckpt = work / "store", work / "ckpt"
    data_dir = ["--data-dir", args.data_dir] if args.data_dir else []
    # 1. raw files -> a partitioned store
    d.run("dataset", "dataset", dataset, "--out", store, "--partitions", args.partitions,
          "--overwrite", *data_dir)
    # 2. one graph server per partition, and the cluster file naming them
    cluster, servers = start_graph_servers(d, store, args.partitions)
    # 3. train against the servers
    train_yaml = training_config(config, store, work / "train.yaml")
    t0 = time.monotonic()
    d.run("train", "train", "--config", train_yaml, "--cluster", cluster, "--seeds", 0,
          "--epochs", args.epochs, "--checkpoint-dir", ckpt, "--out", work / "train.json")
    return cluster, servers, train_test_metrics(work / "train.json"), ckpt / "seed-0" / "best.pt", \
        time.monotonic() - t0


def pick_user_reviews(g, anchor: Optional[int], links: int) -> Tuple[int, np.ndarray]:
    """Reviews of one author: ``anchor`` and its R-U-R neighbors (in R-U-R every review is
    linked to all other reviews of its author), at most ``links`` of them. Without
    ``anchor``: the lowest-id review of a known spammer, an author of 4 to 11 reviews all
    labelled spam (labels are read here only to pick such an author; the model service never
    sees them)."""
    etype = ("review", "rur", "review")
    if anchor is None:
        ids = g.node_ids("review")
        label = g.node_features("review", ids, ["label"])["label"]
        deg = g.degrees(etype, ids)
        cand = np.sort(ids[(label == 1) & (deg >= 3) & (deg <= 10)])
        spam = set(ids[label == 1].tolist())
        s = g.sample_neighbors(etype, cand, -1, strategy="full")
        starts = np.concatenate([[0], np.cumsum(s.counts)])
        found = [int(a) for i, a in enumerate(cand)
                 if spam.issuperset(s.neighbors[starts[i]:starts[i + 1]].tolist())]
        if not found:
            raise ValueError("no author of 4..11 reviews that are all spam; pass --review")
        anchor = found[0]
    nbrs = g.sample_neighbors(etype, np.array([anchor], np.int64), -1, strategy="full").neighbors
    others = np.unique(nbrs[nbrs != anchor].astype(np.int64))[:links - 1]
    return anchor, np.unique(np.concatenate([[anchor], others]).astype(np.int64))


def yelpchi_body(d: Deployment, args) -> Dict[str, Any]:
    import graphplat
    from graphplat.serving import ModelServiceClient

    work = d.workdir
    store = work / "store"
    cluster, servers, metrics, best, train_seconds = store_serve_train(d, "yelpchi", CONFIG, args)
    log.info("trained on the graph servers in %.0f s: test ROC-AUC %.4f, PR-AUC %.4f; checkpoint %s",
             train_seconds, metrics.get("roc_auc", math.nan), metrics.get("pr_auc", math.nan), best)

    # 4. the model service, reading neighborhoods from the same servers
    model = d.start("model-server", "serve-model", "--cluster", cluster, "--checkpoint", best)

    # 5. a new review arrives
    etype = ("review", "rur", "review")
    g = graphplat.connect(cluster)
    try:
        with ModelServiceClient(model["address"]) as client:
            client.wait_ready()
            anchor, user = pick_user_reviews(g, args.review, args.links)
            new_id = int(g.node_ids("review").max()) + 1
            feat = g.node_features("review", np.array([anchor], np.int64), ["feat"])["feat"]
            log.info("new review %d by the author of reviews %s (features copied from review %d)",
                     new_id, user.tolist(), anchor)
            # label is unknown (0 here); split -1 keeps the review out of every training split
            g.add_nodes("review", np.array([new_id], np.int64),
                        {"feat": feat, "label": np.zeros(1, np.int64), "split": np.full(1, -1, np.int64)})
            before = client.score(new_id, ntype="review")
            log.info("score with no edges:        P(spam) = %.6f (%d sampled edges)",
                     before.score, before.sampled_edges)

            new = np.full(len(user), new_id, np.int64)
            eids = g.add_edges(etype, np.concatenate([new, user]), np.concatenate([user, new]))
            degree_in = int(g.degrees(etype, np.array([new_id], np.int64))[0])
            degree_out = int(g.degrees(etype, np.array([new_id], np.int64), direction="out")[0])
            log.info("added %d %s edges (both directions): review %d now has in-degree %d, out-degree %d",
                     len(eids), ":".join(etype), new_id, degree_in, degree_out)
            after = client.score(new_id, ntype="review")
            log.info("score with the user's edges: P(spam) = %.6f (%d sampled edges)",
                     after.score, after.sampled_edges)
    finally:
        g.close()

    differ = not math.isclose(before.score, after.score, rel_tol=0.0, abs_tol=1e-7)
    if differ:
        log.info("the score moved by %+.6f once the review's neighborhood existed", after.score - before.score)
    else:
        log.error("the scores before and after adding the edges are equal")
    return {
        "ok": differ,
        "store": str(store),
        "cluster_file": str(cluster),
        "graph_servers": servers,
        "training": {"config": str(d.workdir / "train.yaml"), "epochs": args.epochs, "checkpoint": str(best),
                     "seconds": round(train_seconds, 1), "test": metrics},
        "model_server": {"address": model["address"], "pid": model["pid"]},
        "new_review": {
            "id": new_id, "features_from": anchor, "user_reviews": user.tolist(),
            "edge_type": ":".join(etype), "edges_added": int(len(eids)),
            "in_degree": degree_in, "out_degree": degree_out,
            "score_without_edges": round(float(before.score), 6),
            "sampled_edges_without_edges": before.sampled_edges,
            "score_with_edges": round(float(after.score), 6),
            "sampled_edges_with_edges": after.sampled_edges,
            "scores_differ": differ,
        },
    }


def add_yelpchi_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=positive_int, default=20, help="most training epochs (default 20)")
    p.add_argument("--review", type=int, default=None,
                   help="an existing review whose author writes the new review (default: a review "
                   "of an author whose reviews are all labelled spam)")
    p.add_argument("--links", type=positive_int, default=4,
                   help="how many of the author's reviews the new review is linked to (default 4)")


def main(argv=None) -> int:
    return run_example(__doc__.split("\n\n")[0], add_yelpchi_arguments, yelpchi_body,
                       "graphplat-yelpchi-", argv)


if __name__ == "__main__":
    sys.exit(main())
