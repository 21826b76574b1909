"""The C++ unit tests of the core (cpp/tests/), built with CMake in a temp dir and run here."""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest


def _repo_root() -> pathlib.Path:
    """The checkout holding cpp/CMakeLists.txt (this file may sit in tests/ or tests/<area>/)."""
    here = pathlib.Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "cpp" / "CMakeLists.txt").is_file():
            return parent
    raise FileNotFoundError(f"no cpp/CMakeLists.txt above {here}")


def _compiler() -> str | None:
    """A C++ compiler CMake will find: $CXX, else c++/g++/clang++ on PATH."""
    for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
        if name and shutil.which(name):
            return name
    return None


def _run(cmd: list, **kw) -> subprocess.CompletedProcess:
    """Runs cmd, returning its exit code and combined output (failures are asserted by callers)."""
    return subprocess.run(cmd, check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, **kw)


def test_cpp_unit_tests_pass(tmp_path):
    """Configure, build (library + test executable only) and run; exit code 0 or show why."""
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed: the C++ unit tests need it (apt-get install cmake)")
    if _compiler() is None:
        pytest.skip("no C++ compiler (c++, g++ or clang++) on PATH: apt-get install g++")
    build = tmp_path / "build"
    steps = [
        ["cmake", "-S", str(_repo_root() / "cpp"), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"],
        ["cmake", "--build", str(build), "--target", "graphplat_core_tests", "-j2"],
    ]
    for cmd in steps:
        res = _run(cmd, timeout=900)
        assert res.returncode == 0, f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout[-20000:]}"
    res = _run([str(build / "graphplat_core_tests")], timeout=300)
    assert res.returncode == 0, f"C++ unit tests failed (exit code {res.returncode}):\n{res.stdout[-20000:]}"
    assert " 0 failed" in res.stdout.splitlines()[-1], res.stdout
