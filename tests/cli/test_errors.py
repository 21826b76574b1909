"""Every user error of the ``graphplat`` commands is one line on stderr,
``graphplat CMD: error: PROBLEM; FIX``, with exit code 2 (usage) or 1 (runtime failure);
the traceback only with ``-v``. Each case runs the exact command in a subprocess."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from graphplat.testing.servers import Fleet, free_port

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def graphplat(*args, cwd, timeout=300):
    """Run ``graphplat ARGS`` (this tree) in ``cwd``; returns the CompletedProcess."""
    env = {**os.environ, "PYTHONPATH": REPO}
    return subprocess.run([sys.executable, "-m", "graphplat.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def one_line_error(proc, command: str, code: int) -> str:
    """The error line of ``proc``, checked to be the whole of stderr but log records, with no
    traceback, starting ``graphplat COMMAND: error:`` and exiting ``code``."""
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if " INFO " not in x and " WARNING " not in x]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"graphplat {command}: error: "), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def cora_checkpoint(tmp_path_factory, datasets_dir):
    """best.pt of a one-epoch GraphSAGE on Cora, trained by the command line."""
    d = tmp_path_factory.mktemp("ckpt")
    p = graphplat("train", "--dataset", "cora", "--data-dir", datasets_dir, "--model", "sage",
                  "--hidden", "8", "--epochs", "1", "--fanouts", "-1,-1", "--checkpoint-dir", d / "c",
                  "-q", cwd=d)
    assert p.returncode == 0, p.stderr  # also: --fanouts -1,-1 parsed
    return d / "c" / "seed-0" / "best.pt"


def test_unknown_config_key_suggests_the_right_one(tmp_path):
    (tmp_path / "cfg.yaml").write_text("dataset: cora\nlearning_rate: 0.1\n")
    line = one_line_error(graphplat("train", "--config", "cfg.yaml", cwd=tmp_path), "train", 2)
    assert "cfg.yaml" in line and "'learning_rate'" in line and "did you mean 'lr'?" in line


def test_a_bad_value_in_the_config_names_the_key(tmp_path):
    (tmp_path / "cfg.yaml").write_text("dataset: cora\nepochs: 0\n")
    line = one_line_error(graphplat("train", "--config", "cfg.yaml", cwd=tmp_path), "train", 2)
    assert "epochs" in line and "got 0" in line


def test_epochs_zero_is_a_usage_error(tmp_path):
    line = one_line_error(graphplat("train", "--epochs", "0", cwd=tmp_path), "train", 2)
    assert "--epochs" in line and ">= 1" in line and "--help" in line


def test_broken_yaml_names_the_file_and_line(tmp_path):
    (tmp_path / "broken.yaml").write_text("dataset: cora\nepochs: 3\nmodel: {name: sage\nlr: 0.1\n")
    line = one_line_error(graphplat("train", "--config", "broken.yaml", cwd=tmp_path), "train", 2)
    assert "broken.yaml:" in line and "invalid YAML" in line
    assert int(line.split("broken.yaml:")[1].split(":")[0]) in (3, 4, 5)


def test_unknown_dataset_suggests_the_closest(tmp_path):
    line = one_line_error(graphplat("train", "--dataset", "corra", cwd=tmp_path), "train", 2)
    assert "unknown dataset 'corra'" in line and "did you mean 'cora'?" in line


def test_bad_data_dir_says_where_it_looked_and_what_to_pass(tmp_path):
    p = graphplat("train", "--dataset", "cora", "--data-dir", tmp_path / "nowhere", cwd=tmp_path)
    line = one_line_error(p, "train", 2)
    assert "nowhere" in line and "does not exist" in line and "--data-dir" in line


def test_dead_cluster_is_a_runtime_failure(tmp_path):
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(f"partitions:\n- partition: 0\n  replicas: ['127.0.0.1:{free_port()}']\n"
                       "deadline_s: 1\nretries: 1\n")
    line = one_line_error(graphplat("train", "--cluster", cluster, "--epochs", "1", cwd=tmp_path),
                          "train", 1)
    assert "partition 0 is unavailable" in line and "graphplat serve" in line


def test_verbose_adds_the_traceback(tmp_path):
    (tmp_path / "cfg.yaml").write_text("dataset: cora\nlearning_rate: 0.1\n")
    p = graphplat("train", "--config", "cfg.yaml", "-v", cwd=tmp_path)
    assert p.returncode == 2 and "Traceback" in p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith("graphplat train: error: ")


@pytest.mark.parametrize("cmd", [["train", "--epochs", "1", "--fanouts"],
                                 ["serve-model", "--checkpoint", "x.pt", "--fanouts"]])
def test_negative_fanouts_parse_after_a_space(tmp_path, cmd):
    """``--fanouts -1,-1`` reads like ``--fanouts=-1,-1`` (argparse alone takes -1,-1 for an
    option); the command then fails for another reason: the missing graph/checkpoint."""
    p = graphplat(*cmd, "-1,-1", "--graph", tmp_path / "missing-store", cwd=tmp_path)
    assert "expected one argument" not in p.stderr and "unrecognized" not in p.stderr
    assert "missing-store" in one_line_error(p, cmd[0], p.returncode)


def test_export_refuses_a_csv_output_before_loading(tmp_path):
    # the checkpoint does not exist: the output name is checked first
    line = one_line_error(graphplat("export", "--checkpoint", "nothing.pt", "--out", "z.csv",
                                    cwd=tmp_path), "export", 2)
    assert "z.csv" in line and ".npy or .parquet" in line


def test_corrupt_checkpoint_is_named_not_unpickled(tmp_path, cora_checkpoint):
    (tmp_path / "junk.pt").write_bytes(b"hello\n")
    (tmp_path / "cut.pt").write_bytes(cora_checkpoint.read_bytes()[:1000])
    for name in ("junk.pt", "cut.pt"):
        line = one_line_error(graphplat("export", "--checkpoint", name, "--out", "e.npy",
                                        cwd=tmp_path), "export", 1)
        assert f"{name} is not a graphplat checkpoint, or it is truncated or corrupt" in line
        assert "--checkpoint-dir" in line
    line = one_line_error(graphplat("serve-model", "--checkpoint", "cut.pt", "--graph", "nostore",
                                    cwd=tmp_path), "serve-model", 1)
    assert "nostore" in line or "cut.pt is not a graphplat checkpoint" in line


def test_checkpoint_of_another_graph_says_so(tmp_path, cora_checkpoint, datasets_dir):
    p = graphplat("export", "--checkpoint", cora_checkpoint, "--dataset", "citeseer", "--data-dir",
                  datasets_dir, "--out", "e.npy", cwd=tmp_path)
    line = one_line_error(p, "export", 2)
    assert "trained on a graph with other input feature widths" in line
    assert "1433" in line and "3703" in line and "dataset 'cora'" in line
    # a checkpoint without the training graph's signature: the first mismatching tensor
    state = torch.load(cora_checkpoint, weights_only=False)
    del state["meta"]["graph"]
    torch.save(state, tmp_path / "old.pt")
    p = graphplat("export", "--checkpoint", "old.pt", "--dataset", "citeseer", "--data-dir",
                  datasets_dir, "--out", "e.npy", cwd=tmp_path)
    line = one_line_error(p, "export", 2)
    assert "other feature widths or schema" in line and "1433" in line and "3703" in line


def test_export_on_a_graph_of_another_schema_gives_export_advice(tmp_path, cora_checkpoint,
                                                                 datasets_dir):
    p = graphplat("export", "--checkpoint", cora_checkpoint, "--dataset", "acm", "--data-dir",
                  datasets_dir, "--out", "e.npy", cwd=tmp_path)
    line = one_line_error(p, "export", 2)
    assert "other node types" in line and "use the graph the model was trained on" in line
    assert "rgcn" not in line and "hetero_sage" not in line


def test_open_graph_on_a_store_a_server_holds(tmp_path):
    from graphplat import open_graph
    from graphplat.datasets import generate_recsys
    from graphplat.errors import StoreLocked

    store = generate_recsys(num_users=50, num_items=40, num_shops=4, num_communities=2,
                            num_clicks=300).write_store(tmp_path / "store")
    fleet = Fleet(tmp_path / "logs")
    try:
        fleet.start_all([dict(store=store, partition=0)])
        with pytest.raises(StoreLocked) as e:
            open_graph(store)
        assert "another process holds" in str(e.value) and "read_only=True" in str(e.value)
        assert isinstance(e.value, ValueError)  # as before: a partition that cannot be opened
        open_graph(store, read_only=True).close()
    finally:
        fleet.close()


def test_serve_model_option_errors_are_usage_errors(tmp_path):
    line = one_line_error(graphplat("serve-model", "--port", "0", cwd=tmp_path), "serve-model", 2)
    assert "nothing to serve" in line


def test_describe_error_codes_and_one_line():
    from graphplat.cli import describe_error
    from graphplat.errors import CheckpointError, ConfigError, StoreLocked

    assert describe_error(ConfigError("bad key", "did you mean 'lr'?")) == (2, "bad key; did you mean 'lr'?")
    assert describe_error(CheckpointError("x.pt is not a checkpoint"))[0] == 1
    assert describe_error(StoreLocked("held", "use read_only=True"))[0] == 1
    code, line = describe_error(ConnectionError("partition 0 is unavailable"))
    assert code == 1 and "graphplat serve" in line
    code, line = describe_error(RuntimeError("boom\n  at line 2 Stack trace: [bt] (0) lib.so"))
    assert code == 1 and "\n" not in line and "[bt]" not in line and "-v" in line
    assert len(describe_error(ValueError("x" * 5000))[1]) < 1100


def test_yaml_scientific_notation_read_as_text_says_how_to_write_it(tmp_path):
    (tmp_path / "cfg.yaml").write_text("dataset: cora\nlr: 1e-3\n")
    line = one_line_error(graphplat("train", "--config", "cfg.yaml", cwd=tmp_path), "train", 2)
    assert "lr" in line and "'1e-3'" in line and "1.0e-3" in line


def _bad_ingest_inputs(d):
    (d / "n.csv").write_text("id,label\n1,0\n2,x\n3,1\n")
    (d / "e.csv").write_text("src,dst\n1,2\n1,9\n1,3\n")
    (d / "spec.yaml").write_text("schema:\n  node_types: {n: {features: {label: int64}}}\n"
                                 "  edge_types: [[n, r, n]]\nnodes: {n: n.csv}\nedges: {r: e.csv}\n")
    (d / "typo.yaml").write_text("schema:\n  node_type: {n: {}}\nnodes: {}\nedges: {}\n")


@pytest.mark.parametrize("standalone", [False, True])
def test_ingest_errors_are_one_line_with_file_line_and_did_you_mean(tmp_path, capsys, monkeypatch, standalone):
    # in process: a subprocess importing torch sometimes aborts at exit after a failed
    # ingest ("terminate called without an active exception", also before this test)
    from graphplat.cli import main as cli_main
    from graphplat.cli.ingest import main_ingest

    _bad_ingest_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)

    def run(*args):
        capsys.readouterr()
        try:
            code = main_ingest(list(args)) if standalone else cli_main(["ingest", *args])
        except SystemExit as e:  # argparse
            code = e.code
        return subprocess.CompletedProcess(args, code, "", capsys.readouterr().err)
    line = one_line_error(run("spec.yaml", "out"), "ingest", 1)
    assert "3 bad input rows: n.csv:3: feature 'label': non-numeric value 'x'; " in line
    assert "e.csv:3: column 'dst': destination id 9 is not a node of type 'n'" in line
    assert line.endswith("; fix them, or pass --skip-bad-rows (skip_bad_rows=True) to drop them")
    line = one_line_error(run("typo.yaml", "out"), "ingest", 1)
    assert "unknown key 'node_type' (did you mean 'node_types'?)" in line
    assert "nowhere.yaml" in one_line_error(run("nowhere.yaml", "out"), "ingest", 1)
    assert run("spec.yaml", "out", "--skip-bad-rows").returncode == 0
    line = one_line_error(run("spec.yaml", "out"), "ingest", 1)
    assert "already exists" in line and "--overwrite" in line
    line = one_line_error(run("spec.yaml", "out", "--partitions", "0"), "ingest", 2)
    assert "--partitions" in line and "--help" in line


@pytest.mark.parametrize("cmd", [["graphplat.cli", "serve"], ["graphplat.cli.serve"]])
def test_serve_errors_are_one_line(tmp_path, cmd):
    def run(*args):
        env = {**os.environ, "PYTHONPATH": REPO}
        return subprocess.run([sys.executable, "-m", *cmd, "--port", "0", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)
    line = one_line_error(run("--store", "nostore", "--partition", "0"), "serve", 1)
    assert "nostore" in line and "does not exist" in line and "graphplat ingest" in line
    line = one_line_error(run("--store", "nostore", "--partition", "0", "--max-batch", "0"), "serve", 2)
    assert "max_batch" in line and "--help" in line
    line = one_line_error(run("--store", "nostore", "--partition", "0", "--token-file", "nofile"), "serve", 2)
    assert "nofile" in line
    assert "Traceback" in run("--store", "nostore", "--partition", "0", "-v").stderr  # only with -v
