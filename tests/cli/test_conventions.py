"""Command-line and packaging conventions: ``graphplat --version``, the logging options of
every subcommand, ``py.typed``."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

import graphplat
from graphplat.cli import build_parser
from graphplat.cli.args import log_level

REPO = Path(__file__).resolve().parents[2]
COMMANDS = ["quickstart", "ingest", "serve", "train", "export", "serve-model", "dataset", "info"]


def run(*args, cwd):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "graphplat.cli", *map(str, args)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


def test_version(tmp_path):
    p = run("--version", cwd=tmp_path)
    assert p.returncode == 0 and p.stdout.strip() == f"graphplat {graphplat.__version__}"


def test_every_subcommand_has_the_logging_options():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sorted(sub.choices) == sorted(COMMANDS)
    for cmd, p in sub.choices.items():
        opts = {o for a in p._actions for o in a.option_strings}
        assert {"-v", "--verbose", "-q", "--quiet", "--log-level"} <= opts, cmd


@pytest.mark.parametrize("argv, level", [
    (["info"], logging.INFO), (["info", "-q"], logging.WARNING), (["-q", "info"], logging.WARNING),
    (["info", "-v"], logging.DEBUG), (["info", "--log-level", "error"], logging.ERROR),
    (["--log-level", "debug", "info", "-q"], logging.DEBUG),  # --log-level wins
    (["train", "--quiet", "--epochs", "1"], logging.WARNING)])
def test_log_level_of_the_options(argv, level):
    assert log_level(build_parser().parse_args(argv)) == level


def test_quiet_silences_info_records(tmp_path):
    args = ["dataset", "synthetic", "-o", "num_users=40", "-o", "num_items=30", "-o", "num_shops=3",
            "-o", "num_communities=2", "-o", "num_clicks=200"]
    loud = run(*args, "--out", "a", cwd=tmp_path)
    quiet = run(*args, "--out", "b", "-q", cwd=tmp_path)
    assert loud.returncode == 0 and quiet.returncode == 0, (loud.stderr, quiet.stderr)
    assert " INFO " in loud.stderr and " INFO " not in quiet.stderr
    assert (tmp_path / "b").is_dir()


def test_py_typed_is_shipped():
    assert (REPO / "graphplat" / "py.typed").is_file()
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "py.typed" in data["graphplat"] and "_core.pyi" in data["graphplat"]
