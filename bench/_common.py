"""Helpers shared by the benchmarks that run graphplat servers as subprocesses
(``bench/storage.py``, ``bench/serving.py``): the orphan guard every server runs under,
starting and stopping such a server, SIGTERM handling and comma-separated name lists on the
command line."""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable, List, Mapping, Optional, Sequence

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent

# Runs a module as __main__ (like ``python -m``) after asking the kernel to SIGTERM it when
# this benchmark dies, so no server outlives an interrupted or killed run (Linux only; elsewhere
# the benchmarks' finally-blocks clean up).
ORPHAN_GUARD = r"""
import os, runpy, signal, sys
try:
    import ctypes
    ctypes.CDLL(None).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
except Exception:
    pass
if os.getppid() != int(sys.argv[1]):
    sys.exit("parent exited")
module = sys.argv[2]
sys.argv = [module] + sys.argv[3:]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def start_guarded(module: str, args: Sequence[object], log, env: Optional[Mapping[str, str]] = None
                  ) -> subprocess.Popen:
    """``python -m module args...`` under :data:`ORPHAN_GUARD`, in the repository root, with
    stdout and stderr to the open file ``log``."""
    cmd = [sys.executable, "-c", ORPHAN_GUARD, str(os.getpid()), module, *map(str, args)]
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO_ROOT),
                            env=None if env is None else dict(env))


def terminate(proc: subprocess.Popen, timeout: float = 15.0, kill_timeout: float = 5.0,
              on_kill: Optional[Callable[[], None]] = None) -> Optional[int]:
    """SIGTERM ``proc`` (when still running) and wait ``timeout`` seconds for it to exit;
    else call ``on_kill`` and SIGKILL it. Returns its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            if on_kill is not None:
                on_kill()
            proc.kill()
            proc.wait(kill_timeout)
    return proc.returncode


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def raise_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt, so the benchmark's finally-blocks stop its servers."""
    signal.signal(signal.SIGTERM, _on_sigterm)


def name_list(choices: Sequence[str], what: str, shown: Optional[str] = None) -> Callable[[str], List[str]]:
    """An argparse type: a comma-separated, non-empty list of names out of ``choices``
    (``what`` and ``shown`` word the error: ``unknown <what> [...]; choose from <shown>``)."""
    shown = str(tuple(choices)) if shown is None else shown

    def parse(text: str) -> List[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in values if v not in choices]
        if bad or not values:
            raise argparse.ArgumentTypeError(f"unknown {what} {bad}; choose from {shown}")
        return values

    return parse
