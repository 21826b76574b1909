"""README's "Your own data" example runs verbatim (CSV -> ingest -> train -> export, then the
Python lookups in the user's string ids), and `graphplat ingest --help` documents a schema
that parses."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from graphplat.schema import GraphSchema

REPO = Path(__file__).resolve().parents[2]
SECTION = "## Your own data"


def _blocks():
    text = (REPO / "README.md").read_text()
    start = text.index(SECTION)
    section = text[start:text.index("\n## ", start + 1)]
    return re.findall(r"```(bash|python)\n(.*?)```", section, re.S)


def test_readme_own_data_example_runs_verbatim(tmp_path):
    blocks = _blocks()
    assert [kind for kind, _ in blocks] == ["bash", "python"]
    (tmp_path / "examples").symlink_to(REPO / "examples")  # the README runs from the repo root
    env = dict(os.environ, PYTHONPATH=str(REPO),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    bash = subprocess.run(["bash", "-e", "-c", blocks[0][1]], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert bash.returncode == 0, bash.stderr[-3000:]
    out = tmp_path / "my-clicks"
    assert (out / "store" / "ids" / "user.parquet").exists() and (out / "users.parquet").exists()
    py = subprocess.run([sys.executable, "-c", blocks[1][1] + "\nprint(sorted(ids.tolist()))"],
                        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert py.returncode == 0, py.stderr[-3000:]
    lines = py.stdout.strip().splitlines()
    assert lines[0] == "['item-2' 'item-3' 'item-3' 'item-5']"  # u0's and u7's clicks
    assert eval(lines[1]) == sorted(f"u{i}" for i in range(24))  # noqa: S307 - our own output


def test_ingest_help_documents_a_schema_that_parses():
    from graphplat.cli.ingest import INGEST_EPILOG, SCHEMA_HELP

    assert SCHEMA_HELP in INGEST_EPILOG
    doc = SCHEMA_HELP.split("\n\n")[1]  # the indented YAML example
    schema = GraphSchema.from_dict(yaml.safe_load(doc))
    assert schema.node_type("user").id_type == "string"
    assert ("item", "clicked-by", "user") in schema.canonical_etypes
    assert schema.edge_type("follows").undirected and schema.edge_type("similar").out_adjacency
    for needle in ("0 train, 1 val, 2 test", "split_fractions", "--max-bad-rows"):
        assert needle in INGEST_EPILOG
