"""End-to-end gradient coding: real worker processes, a real aggregator, real kills.

The final parameters of a coded run must equal (max abs difference <= 1e-6) those of one
process that computes every slice of every step, whether a worker is SIGKILLed mid-training
or the aggregator is stopped and restarted from its checkpoint.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from graphplat.distributed.coded_train import (
    SliceComputer,
    optimizer_spec,
    reference_run,
    run_coded,
    worker_command,
)
from graphplat.training.config import TrainConfig
from graphplat.training.loop import open_task

N, S = 4, 1


@pytest.fixture(scope="module")
def cfg():
    return TrainConfig.from_dict({
        "dataset": "synthetic",
        "dataset_options": {"num_users": 1200, "num_items": 600, "num_shops": 20},
        "model": {"name": "hsage", "hidden": 16, "num_layers": 2, "dropout": 0.3},
        "fanouts": [5, 5], "batch_size": 240, "epochs": 3, "lr": 0.01, "seeds": [3]})


@pytest.fixture(scope="module")
def reference(cfg):
    task = open_task(cfg)
    try:
        return reference_run(cfg, task, cfg.seeds[0], N)
    finally:
        task.close()


def max_diff(a, b) -> float:
    assert list(a) == list(b)
    return max(float(np.abs(np.asarray(a[k]) - np.asarray(b[k])).max()) for k in a)


def test_slices_are_deterministic_and_sum_to_the_batch(cfg):
    """Two computers (two 'replicas') give bit-identical slice gradients."""
    task = open_task(cfg)
    try:
        a, b = SliceComputer(cfg, task, 3, N), SliceComputer(cfg, task, 3, N)
        flat = np.concatenate([v.reshape(-1) for v in a.initial_params().values()])
        b.load(flat)
        for j in range(N):
            assert np.array_equal(a.slice_vector(1, j), b.slice_vector(1, j))
        assert a.slice_vector(1, 0).shape == (flat.size + 1,)
        assert not np.array_equal(a.slice_vector(1, 0), a.slice_vector(1, 1))
        sizes = [len(s) for s in np.array_split(a.global_batch(1), N)]
        assert sum(sizes) == cfg.batch_size
    finally:
        task.close()


def test_killed_worker_same_model(cfg, reference, caplog):
    caplog.set_level("WARNING")
    r = run_coded(cfg, workers=N, tolerate=S, scheme="coded", code="frc", kill={2: 2})
    assert any("worker 2" in m and "was SIGKILLed" in m for m in caplog.messages), caplog.messages
    assert r["steps"] == 3 * 3  # 720 training users, batches of 240, 3 epochs
    assert max_diff(r["params"], reference) <= 1e-6
    assert r["test"]["accuracy"] > 1 / 8  # better than chance over 8 communities


def test_cyclic_code_same_model(cfg, reference):
    r = run_coded(cfg, workers=N, tolerate=S, scheme="coded", code="cyclic", kill={0: 1})
    assert max_diff(r["params"], reference) <= 1e-6


def test_restarted_aggregator_resumes_from_checkpoint(cfg, reference, tmp_path):
    from graphplat.distributed.aggregator import AggregatorClient, serve_aggregator

    task = open_task(cfg)
    comp = SliceComputer(cfg, task, cfg.seeds[0], N)
    ckpt = tmp_path / "agg"
    kw = dict(scheme="coded", code="frc", n=N, s=S, checkpoint_dir=ckpt, checkpoint_every=2,
              max_steps=comp.max_steps)
    server = serve_aggregator("127.0.0.1:0", comp.initial_params(), optimizer_spec(cfg), **kw)
    port = server.port
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(cfg.to_dict()))
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [subprocess.Popen(worker_command(cfg_path, f"127.0.0.1:{port}", k, N), env=env) for k in range(N)]
    try:
        client = AggregatorClient(f"127.0.0.1:{port}")
        deadline = time.time() + 300
        while client.status().step < 3:
            assert time.time() < deadline, "training did not reach step 3"
            time.sleep(0.1)
        client.close()
        server.stop()  # the aggregator dies mid-run ...
        time.sleep(1.0)
        server = serve_aggregator(f"127.0.0.1:{port}", None, optimizer_spec(cfg), **kw)  # ... and resumes
        assert server.step <= comp.max_steps
        assert server.wait_done(timeout=300)
        final = server.params()
        for p in procs:
            assert p.wait(60) == 0
    finally:
        server.stop()
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()
        task.close()
    assert max_diff(final, reference) <= 1e-6


@pytest.mark.parametrize("argv", [
    ["--workers", "4", "--tolerate", "1", "--epochs", "1"],
    ["--dataset", "cora", "--workers", "2", "--tolerate", "1", "--epochs", "1"],
], ids=["synthetic-4-workers", "cora-2-workers"])
def test_cli_coded_training_prints_json_and_writes_out(argv, tmp_path, datasets_dir):
    """README's `graphplat train --workers 4 --tolerate 1`: exit 0, JSON on stdout and in --out."""
    out = tmp_path / "result.json"
    env = dict(os.environ, GRAPHPLAT_DATASETS=str(datasets_dir))
    proc = subprocess.run(["python", "-m", "graphplat.cli", "train", *argv, "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = json.loads(proc.stdout)
    assert json.loads(out.read_text()) == printed
    assert printed["workers"] == int(argv[argv.index("--workers") + 1])
    assert printed["num_parameters"] > 0 and "params" not in printed
    assert 0.0 <= printed["test"]["accuracy"] <= 1.0
