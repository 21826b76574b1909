"""End-to-end run of examples/yelpchi_serving.py (real `graphplat` subprocesses: dataset,
two graph servers, training against them, the model service, an online review scored before
and after its edges are added), plus its cleanup on Ctrl-C."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie still answers kill(0); it no longer serves anything
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _run_example(args, timeout):
    return subprocess.run([sys.executable, str(EXAMPLES / "yelpchi_serving.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=str(REPO))


@pytest.mark.slow
def test_yelpchi_serving_end_to_end(tmp_path, datasets_dir):
    work = tmp_path / "work"
    r = _run_example(["--workdir", work, "--data-dir", datasets_dir, "--epochs", 2], timeout=600)
    assert r.returncode == 0, f"stdout:\n{r.stdout}\nstderr:\n{r.stderr[-5000:]}"
    s = json.loads(r.stdout)

    assert {"workdir", "workdir_kept", "ok", "store", "cluster_file", "graph_servers", "training",
            "model_server", "new_review", "seconds"} <= set(s)
    assert s["ok"] is True and s["workdir"] == str(work.resolve()) and s["workdir_kept"] is True
    assert Path(s["store"], "store.json").is_file()
    assert Path(s["cluster_file"]).is_file() and Path(s["training"]["config"]).is_file()
    assert [p["partition"] for p in s["graph_servers"]] == [0, 1]
    assert len({p["address"] for p in s["graph_servers"]}) == 2

    t = s["training"]
    assert t["epochs"] == 2 and Path(t["checkpoint"]).is_file()
    assert {"roc_auc", "pr_auc", "accuracy"} <= set(t["test"])
    # Bars a constant score cannot pass: its ROC-AUC is 0.5 and its PR-AUC the test set's
    # positive rate (about 5 % spam); accuracy is no bar (all-ham scores 0.95).
    from graphplat.datasets import load_dataset

    ds = load_dataset("yelpchi", datasets_dir)
    feats = ds.graph.node_features[ds.target_ntype]
    positive_rate = float(feats[ds.label_feature][feats[ds.split_feature] == 2].mean())
    assert t["test"]["roc_auc"] > 0.55, t["test"]
    assert t["test"]["pr_auc"] > 1.3 * positive_rate, (t["test"], positive_rate)

    n = s["new_review"]
    assert {"id", "features_from", "user_reviews", "edge_type", "edges_added", "in_degree",
            "out_degree", "score_without_edges", "sampled_edges_without_edges", "score_with_edges",
            "sampled_edges_with_edges", "scores_differ"} <= set(n)
    k = len(n["user_reviews"])
    assert n["id"] > max(n["user_reviews"]) and n["id"] not in n["user_reviews"] and n["features_from"] in n["user_reviews"]
    assert 2 <= k <= 4 and n["edge_type"] == "review:rur:review"
    assert n["edges_added"] == 2 * k and n["in_degree"] == k and n["out_degree"] == k
    assert n["sampled_edges_without_edges"] == 0 and n["sampled_edges_with_edges"] > 0
    for key in ("score_without_edges", "score_with_edges"):
        assert 0.0 <= n[key] <= 1.0
    assert n["scores_differ"] is True and n["score_without_edges"] != n["score_with_edges"]

    # every server was stopped: none of their processes is left
    pids = [p["pid"] for p in s["graph_servers"]] + [s["model_server"]["pid"]]
    assert not [p for p in pids if _alive(p)]
    for name in ("graph-server-0", "graph-server-1", "model-server"):
        assert "Traceback" not in (work / "logs" / f"{name}.log").read_text()
    assert "P(spam)" in r.stderr


def test_yelpchi_serving_stops_servers_on_ctrl_c(tmp_path, datasets_dir):
    work = tmp_path / "work"
    proc = subprocess.Popen([sys.executable, str(EXAMPLES / "yelpchi_serving.py"), "--workdir", str(work),
                             "--data-dir", str(datasets_dir), "--epochs", "50"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(REPO))
    try:
        ready = [work / "run" / f"graph-server-{k}.json" for k in (0, 1)]
        deadline = time.monotonic() + 300
        while not all(f.exists() for f in ready):  # both graph servers up: training starts
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "graph servers did not start"
            time.sleep(0.2)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err[-3000:]
    assert out == "" and "interrupted" in err
    pids = [json.loads(f.read_text())["pid"] for f in ready]
    assert not [p for p in pids if _alive(p)]
    assert err.count("stopped graph-server-") == 2


def test_movielens_serving_help():
    r = subprocess.run([sys.executable, str(EXAMPLES / "movielens_serving.py"), "--help"],
                       capture_output=True, text=True, timeout=120, cwd=str(REPO))
    assert r.returncode == 0, r.stderr
    for opt in ("--workdir", "--epochs", "--users", "--keep"):
        assert opt in r.stdout
