"""bench/ab_core.py: the paired A/B of two _core builds runs each in its own process and
compares their outputs."""
import json
from pathlib import Path

import numpy as np
import pytest

import graphplat
from bench import ab_core  # the repository root is on sys.path via pytest's `pythonpath`
from graphplat.datasets.synthetic import generate_powerlaw_csc


@pytest.fixture(scope="module")
def small_graph(tmp_path_factory):
    d = tmp_path_factory.mktemp("csc")
    indptr, indices = generate_powerlaw_csc(3000, 30000, 2.2, 300, 0)
    np.save(d / "indptr.npy", indptr)
    np.save(d / "indices.npy", indices)
    return d


def test_same_build_gives_identical_samples(small_graph, capsys):
    build = Path(graphplat.__file__).parent  # the installed _core*.so
    rc = ab_core.main([str(build), str(build), "--graph", str(small_graph), "--batches", "6",
                       "--warmup", "1", "--check-batches", "4", "--batch-size", "64",
                       "--threads", "2", "--replace"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert out["outputs_differ_on_batches"] == []
    assert out["outputs_compared"] == 5
    assert out["speedup_b_over_a_median"] > 0 and out["b_edges_per_s"] > 0


def test_rejects_a_directory_without_one_build(small_graph, tmp_path):
    with pytest.raises(SystemExit):
        ab_core.parse_args([str(tmp_path), str(tmp_path), "--graph", str(small_graph)])
