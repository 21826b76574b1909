"""ruff (pyproject.toml [tool.ruff]: pycodestyle, pyflakes, isort, bugbear) is clean on the code
base; ruff is in the ``dev`` extra."""
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "graphplat", "tests",
                           "bench", "examples"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
