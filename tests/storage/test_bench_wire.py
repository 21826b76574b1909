"""bench/wire.py on a small store, end to end: a raw TCP server, a plain gRPC echo and a
real partition server, each path's MB/s and CPU per MB at both ends."""
from __future__ import annotations

import json

from bench import wire  # the repository root is on sys.path via pytest's `pythonpath`


def test_wire_bench_reports_every_path_with_its_cpu(capsys):
    rc = wire.main(["--nodes", "3000", "--dim", "16", "--rows", "2000", "--calls", "3", "--reps", "1"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    paths = {"raw_socket", "echo", "partition_client", "partition_client_bulk", "remote_graph"}
    assert set(out["mb_per_s"]) == paths and all(v > 0 for v in out["mb_per_s"].values())
    assert set(out["share_of_echo"]) == paths - {"echo"}
    assert set(out["cpu_ms_per_mb"]) == paths
    for m, cpu in out["cpu_ms_per_mb"].items():  # both ends work for every byte
        assert cpu["client"] > 0 and cpu["server"] > 0, (m, cpu)
    # the bytes are the same on every path: 2000 rows of 16 float32
    assert out["mb_per_call"] == 2000 * 16 * 4 / 1e6
