"""bench/loader.py on a tiny graph, end to end: NodeLoader (local, over 2 graph servers) and
DGL's DataLoader, and DistDGL 2.1 on the same graph in 2 partitions (real servers, the
trainer co-located with partition 0) on the same seeds, with the ratios over DistDGL."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import loader  # the repository root is on sys.path via pytest's `pythonpath`

REPO = Path(__file__).resolve().parents[2]
TINY = ["--nodes", "3000", "--edges", "30000", "--batch-size", "64", "--batches", "2", "--reps", "1"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("bench-cache")


@pytest.mark.slow
def test_distdgl_runs_on_the_same_graph_and_seeds(cache, capsys):
    rc = loader.main(TINY + ["--cache", str(cache)])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    reason = loader.distdgl.unavailable()
    if reason is not None:  # no unshare/nsenter here: the JSON says so instead of a number
        assert out["distdgl_skipped"] == reason and "distdgl" not in out["results"]
        return
    assert out["distdgl_skipped"] is None, out["distdgl_skipped"]
    assert out["distdgl_omp_wait_policy"]
    dd, colocated = out["results"]["distdgl"], out["results"]["graphplat-colocated"]
    assert dd["reps"] == 1 and dd["batches_per_s"] > 0 and dd["batch_ms_p99"] >= dd["batch_ms_p50"] > 0
    # same graph, same seeds, same fanouts: the sampled blocks are the same size on average
    assert dd["edges_per_batch"] == pytest.approx(colocated["edges_per_batch"], rel=0.15)
    assert dd["loopback_mb_per_batch"] > 0  # partition 1's rows come over loopback
    # with or without the (default, automatic) topology replica the same edges are sampled;
    # rows still travel, and per hop the sampling answers too
    for m in ("graphplat-colocated-perhop-prefetch", "graphplat-remote-perhop-prefetch",
              "graphplat-remote-prefetch"):
        assert out["results"][m]["edges_per_batch"] == colocated["edges_per_batch"]
        assert out["results"][m]["loopback_mb_per_batch"] > 0
    assert (out["results"]["graphplat-colocated-perhop-prefetch"]["loopback_mb_per_batch"]
            > out["results"]["graphplat-colocated-prefetch"]["loopback_mb_per_batch"])
    # CPU per batch of the trainer and of each server: partition 1's server works for every
    # loader over the servers (rows, and per hop the sampling)
    for m in ("graphplat-colocated", "graphplat-remote-prefetch", "graphplat-colocated-perhop-prefetch"):
        assert out["results"][m]["trainer_cpu_ms_per_batch"] > 0
        assert out["results"][m]["server1_cpu_ms_per_batch"] > 0
    assert "trainer_cpu_ms_per_batch" not in dd  # DistDGL's processes are its own
    # the whole machine's CPU over the timed batches is there for every row, DistDGL's too
    # (/proc/stat counts 10 ms ticks: a tiny row may read 0, all of them together may not)
    host = [r["host_cpu_ms_per_batch"] for r in out["results"].values()]
    assert min(host) >= 0 and sum(host) > 0
    ratios = out["ratio_vs_distdgl_batches_per_s"]
    for m in ("graphplat-colocated", "graphplat-remote"):
        assert ratios[m] == pytest.approx(out["results"][m]["batches_per_s"] / dd["batches_per_s"], rel=0.01)
    assert (cache / "distdgl_3000_30000_f100" / "orig_nids.npy").exists()  # cached like the store
    # the co-located floor (one host: the machine's CPU at LocalGraph's core use) and the rates
    # it allows, against LocalGraph and DistDGL from the same run
    floor = out["colocated_floor"]
    assert floor["tcp_client_ms_per_mb"] > 0 and floor["tcp_server_ms_per_mb"] > 0
    assert floor["batches_per_s"] == pytest.approx(1e3 * floor["cores"] / floor["cpu_ms_per_batch"], rel=1e-2)
    assert floor["vs_distdgl"] == pytest.approx(floor["batches_per_s"] / dd["batches_per_s"], rel=1e-2)


def test_two_hosts_on_one_core_says_it_needs_two(cache, tmp_path):
    one = ("import os, runpy, sys; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
           "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")
    r = subprocess.run([sys.executable, "-c", one, str(REPO / "bench" / "loader.py"), *TINY,
                        "--cache", str(cache), "--two-hosts"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert r.returncode != 0
    assert "--two-hosts needs at least 2 cores" in r.stderr and "Traceback" not in r.stderr


def test_no_distdgl_skips_it_with_the_reason(cache, capsys):
    rc = loader.main(TINY + ["--cache", str(cache), "--no-distdgl", "--no-remote"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["distdgl_skipped"] == "--no-distdgl"
    assert out["colocated_floor"] is None  # no servers ran
    assert "distdgl" not in out["results"] and out["ratio_vs_distdgl_batches_per_s"] == {}


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="--two-hosts needs 2 cores")
def test_two_hosts_puts_the_trainer_and_server_0_on_core_0_and_server_1_elsewhere(cache, tmp_path):
    # a subprocess: the benchmark pins its own process, which must not be pytest's
    r = subprocess.run([sys.executable, str(REPO / "bench" / "loader.py"), *TINY, "--cache", str(cache),
                        "--two-hosts"], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    layout = out["layout"]
    first = min(os.sched_getaffinity(0))  # the trainer host: the lowest core this test may use
    assert layout["two_hosts"] and layout["trainer_cores"] == [first]
    assert layout["server_cores"][0] == [first]
    assert layout["server_cores"][1] and first not in layout["server_cores"][1]
    assert out["threads"] == 1  # 2 threads on 1 core wait for each other
    floor = out["colocated_floor"]  # the trainer's core: LocalGraph of the store + receiving rows
    local2p = out["results"]["graphplat-local2p"]["trainer_cpu_ms_per_batch"]
    assert floor["cores"] == 1 and floor["tcp_client_ms_per_mb"] > 0
    assert floor["cpu_ms_per_batch"] == pytest.approx(
        local2p + floor["rows_mb_per_batch"] * floor["tcp_client_ms_per_mb"], rel=1e-2, abs=1e-2)
    assert out["results"]["graphplat-colocated"]["server1_cpu_ms_per_batch"] > 0
    # DistDGL in the same layout (its server 1 on the server host), where this host runs it
    if loader.distdgl.unavailable() is None:
        assert out["distdgl_skipped"] is None, out["distdgl_skipped"]
        assert out["results"]["distdgl"]["batches_per_s"] > 0
