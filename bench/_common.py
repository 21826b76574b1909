"""Helpers shared by the benchmarks that run servers as subprocesses (``bench/storage.py``,
``bench/serving.py``, ``bench/loader.py``, ``bench/train_e2e.py``, ``bench/distdgl.py``): the
orphan guard every graphplat server runs under, starting and stopping such a server, SIGTERM
handling, comma-separated name lists on the command line, the counters of a run (bytes
over loopback, CPU time of server processes and of the whole machine), the raw TCP server and
its cost per MB (the floor of any transport), and the ``--two-hosts`` layout."""
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


def start_guarded(module: str, args: Sequence[object], log, env: Optional[Mapping[str, str]] = None,
                  cores=None) -> subprocess.Popen:
    """``python -m module args...`` under :data:`ORPHAN_GUARD`, in the repository root, with
    stdout and stderr to the open file ``log``, on ``cores`` when given (see :func:`on_cores`)."""
    cmd = on_cores([sys.executable, "-c", ORPHAN_GUARD, str(os.getpid()), module, *map(str, args)], cores)
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO_ROOT),
                            env=None if env is None else dict(env))


def start_script(workdir: Path, name: str, script: str, cores=None):
    """``python -c script`` (which prints its port first) as a subprocess, its stderr in
    ``workdir/<name>.log``, on ``cores`` when given; returns (process, "127.0.0.1:<port>")."""
    log = open(workdir / f"{name}.log", "w")
    proc = subprocess.Popen(on_cores([sys.executable, "-c", script], cores), stdout=subprocess.PIPE,
                            stderr=log, cwd=str(REPO_ROOT), text=True)
    port = int(proc.stdout.readline())
    return proc, f"127.0.0.1:{port}"


# A plain TCP server: each request is 8 bytes naming a size, answered with that many bytes in
# one sendall from a prepared buffer: the floor of any transport over TCP here.
RAW_TCP_SERVER = r"""
import socket, threading
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(8)
print(ls.getsockname()[1], flush=True)
data = bytes(1 << 30)

def serve(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        head = c.recv(8, socket.MSG_WAITALL)
        if len(head) < 8:
            return
        c.sendall(memoryview(data)[:int.from_bytes(head, "little")])

while True:
    conn, _ = ls.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""


def raw_tcp_cost(workdir: Path, *, row_bytes: int = 400, rows: int = 50_000, calls: int = 20,
                 reps: int = 3, cores=None) -> dict:
    """CPU ms per MB at both ends of plain loopback TCP (:data:`RAW_TCP_SERVER` on ``cores``,
    its answers read with ``_core.recv_rows`` into an array of ``rows`` rows of ``row_bytes``):
    ``{"client_ms_per_mb", "server_ms_per_mb"}``, medians over ``reps`` of ``calls`` calls.
    The floor of what any transport of feature rows over TCP costs on this machine."""
    import socket
    import statistics
    import time

    import numpy as np

    from graphplat import _core
    proc, address = start_script(workdir, "raw-tcp", RAW_TCP_SERVER, cores)
    try:
        sock = socket.create_connection(("127.0.0.1", int(address.rsplit(":", 1)[1])))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        out = np.empty((rows, row_bytes), np.uint8)
        where = np.arange(rows, dtype=np.int64)
        size = out.nbytes.to_bytes(8, "little")

        def burst(n: int) -> tuple:
            c0, s0 = time.process_time(), servers_cpu([proc])
            for _ in range(n):
                sock.sendall(size)
                _core.recv_rows(sock.fileno(), out, where, timeout=60.0)
            mb = n * out.nbytes / 1e6
            return 1e3 * (time.process_time() - c0) / mb, 1e3 * (servers_cpu([proc]) - s0) / mb

        burst(2)  # warm-up: the connection, page faults
        got = [burst(calls) for _ in range(reps)]
        sock.close()
    finally:
        terminate(proc)
    return {"client_ms_per_mb": statistics.median(c for c, _ in got),
            "server_ms_per_mb": statistics.median(s for _, s in got)}


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


def host_cpu_seconds() -> float:
    """CPU seconds this machine's cores have spent busy so far, all processes together (user,
    nice, system, irq and softirq time of /proc/stat; idle, iowait and time stolen by the
    hypervisor do not count). The difference over a timed window is the whole machine's
    CPU for it: the trainer, its servers, and anything else running then."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in fields[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def loopback_bytes() -> int:
    """Bytes received on the loopback interface so far (every byte sent on it is received once;
    host-wide: other processes' loopback traffic counts too)."""
    with open("/proc/net/dev") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name.strip() == "lo":
                return int(rest.split()[0])
    return 0


def _process_clock_seconds(pid: int) -> Optional[float]:
    """CPU seconds of process ``pid``, all its threads (exited ones too), to the nanosecond
    (``clock_getcpuclockid``, Linux); None where that is not available."""
    import ctypes
    import ctypes.util

    class Timespec(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        clock = ctypes.c_int()
        if libc.clock_getcpuclockid(int(pid), ctypes.byref(clock)) != 0:
            return None
        ts = Timespec()
        if libc.clock_gettime(clock, ctypes.byref(ts)) != 0:
            return None
        return ts.tv_sec + ts.tv_nsec * 1e-9
    except (OSError, AttributeError):
        return None


def servers_cpu(procs: Sequence[subprocess.Popen]) -> float:
    """CPU seconds used so far by the processes ``procs`` (and their waited-for children);
    nanosecond-precise where the platform allows (psutil's figures come in 10 ms ticks,
    too coarse for a few small batches)."""
    import psutil
    total = 0.0
    for p in procs:
        try:
            t = psutil.Process(p.pid).cpu_times()
            own = _process_clock_seconds(p.pid)
            total += (t.user + t.system if own is None else own) + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


# ---------------------------------------------------------------- the two-host layout
#: ``--two-hosts``: the cores this process may use split into a trainer host (the lowest: the
#: trainer and the partition server co-located with it) and a server host (the others: every
#: other partition server), so that a server standing for another host does not take the
#: trainer's CPU. Applied the same way to every method of a run (DGL, LocalGraph and DistDGL
#: included).
_MACHINE_CORES = frozenset(os.sched_getaffinity(0))  # before any pinning


def trainer_host_cores() -> frozenset:
    """The core of the emulated trainer host: the lowest this process may use."""
    return frozenset({min(_MACHINE_CORES)})


def server_host_cores() -> frozenset:
    """The cores of the emulated server host: every other core this process may use
    (SystemExit naming the problem when there is no other)."""
    cores = _MACHINE_CORES - trainer_host_cores()
    if not cores:
        raise SystemExit(f"--two-hosts needs at least 2 cores; this process may use only {sorted(_MACHINE_CORES)}")
    return cores


def pin_process(cores) -> None:
    """Move every thread of this process onto ``cores`` (threads started later inherit it;
    ``os.sched_setaffinity(0, ...)`` alone would move only the calling thread, not the
    thread pools numpy or torch started at import)."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cores)
        except (ProcessLookupError, OSError):  # a thread that exited meanwhile
            pass


# Runs argv[2:] on the cores listed in argv[1]: the affinity is set in a fresh interpreter
# that then execs the command, never between fork and exec of a process whose gRPC threads run
# (a preexec_fn there made a DistDGL server fail at start-up, in gRPC's fork handlers).
_ON_CORES = r"""
import os, sys
os.sched_setaffinity(0, {int(c) for c in sys.argv[1].split(",")})
os.execvp(sys.argv[2], sys.argv[2:])
"""


def on_cores(cmd: Sequence[str], cores) -> List[str]:
    """``cmd`` run on ``cores`` (every thread it starts inherits them); ``cmd`` itself when
    ``cores`` is None."""
    if cores is None:
        return list(cmd)
    return [sys.executable, "-c", _ON_CORES, ",".join(str(c) for c in sorted(cores)), *cmd]


def add_two_hosts_flag(parser: argparse.ArgumentParser) -> None:
    """The ``--two-hosts`` flag of the benchmarks that run partition servers."""
    parser.add_argument(
        "--two-hosts", action="store_true",
        help="split the machine into a trainer host (its lowest core: every trainer, DGL's and "
             "LocalGraph's included, and partition server 0) and a server host (the other cores: "
             "partition server 1, DistDGL's too), one thread each; without it every process shares "
             "every core")


def apply_two_hosts(args: argparse.Namespace, log) -> Optional[List[Optional[frozenset]]]:
    """With ``args.two_hosts``: pin this process to the trainer host, set ``args.threads`` to
    1 (2 threads on 1 core wait for each other) and return the cores of partition servers 0
    and 1 (None: this process's). Without it: None. Call before starting any server."""
    if not args.two_hosts:
        return None
    server_cores, trainer_cores = server_host_cores(), trainer_host_cores()
    log.info("two hosts: trainers and server 0 on core(s) %s, server 1 on %s; 1 thread each",
             sorted(trainer_cores), sorted(server_cores))
    pin_process(trainer_cores)
    args.threads = 1
    return [None, server_cores]


def layout_of(args: argparse.Namespace, servers: Sequence[subprocess.Popen]) -> dict:
    """Where this process and each server run, read back from the kernel (not assumed)."""
    return {"two_hosts": bool(args.two_hosts), "trainer_cores": sorted(os.sched_getaffinity(0)),
            "server_cores": [sorted(os.sched_getaffinity(s.pid)) for s in servers]}
