"""Real-server fixtures shared by tests and users: start, kill and restart ``graphplat serve`` subprocesses on free ports, write
cluster files and self-signed TLS certificates. Every process started through a
:class:`Fleet` is terminated by :meth:`Fleet.close` (use it in fixture teardown)."""
from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import yaml

import graphplat
from graphplat.atomic import write_atomic

# The directory holding the graphplat package (the repository root in a checkout): servers run
# there so `python -m graphplat...` imports this same tree.
REPO_ROOT = Path(graphplat.__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """One ``python -m graphplat.cli.serve`` subprocess (== ``graphplat serve``)."""

    def __init__(self, store, partition: int, workdir: Path, *, port: Optional[int] = None,
                 replica: bool = False, args: Sequence[str] = (), metrics: bool = False,
                 env: Optional[Dict[str, str]] = None):
        self.store = Path(store)
        self.partition = partition
        self.port = port or free_port()
        self.metrics_port = free_port() if metrics else None
        self.replica = replica
        self.args = list(args)
        self.env = env
        self.name = f"p{partition}-{'r' if replica else 'w'}-{self.port}"
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ready_file = self.workdir / f"{self.name}.ready"
        self.log_path = self.workdir / f"{self.name}.log"
        self.proc: Optional[subprocess.Popen] = None
        self._log = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> List[str]:
        cmd = [sys.executable, "-m", "graphplat.cli.serve", "--store", str(self.store),
               "--partition", str(self.partition), "--host", "127.0.0.1", "--port", str(self.port),
               "--ready-file", str(self.ready_file), "--grace", "2", "--follow-interval", "0.1",
               "--threads", "8"]
        if self.replica:
            cmd.append("--replica")
        if self.metrics_port:
            cmd += ["--metrics-port", str(self.metrics_port)]
        return cmd + self.args

    def start(self) -> "ServerProcess":
        if self.ready_file.exists():
            self.ready_file.unlink()
        self._log = open(self.log_path, "ab")
        env = dict(os.environ, **(self.env or {}))
        env.setdefault("OMP_NUM_THREADS", "2")
        self.proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=str(REPO_ROOT), env=env)
        return self

    def wait_ready(self, timeout: float = 30.0) -> "ServerProcess":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready_file.exists():
                return self
            if self.proc.poll() is not None:
                raise RuntimeError(f"server {self.name} exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.02)
        raise TimeoutError(f"server {self.name} not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL and reap."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)

    def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM and wait; returns the exit code (SIGKILL after ``timeout``)."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def restart(self) -> "ServerProcess":
        """Start again on the same port and store (after kill/terminate)."""
        self.kill()
        if self._log:
            self._log.close()
        return self.start()

    def close(self) -> None:
        if self.proc is not None and self.alive():
            self.proc.kill()
            self.proc.wait(10)
        if self._log:
            self._log.close()
            self._log = None


class Fleet:
    """A set of server processes, all terminated by :meth:`close`.

    Every server gets ``--cluster`` naming a cluster file of its store's servers in this
    fleet (primaries first), rewritten whenever a server is added, so servers can check
    edge endpoints other partitions own (graphplat.storage.peers); pass your own
    ``--cluster`` in ``args`` to override it."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.servers: List[ServerProcess] = []

    def __enter__(self) -> "Fleet":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def peers_file(self, store) -> Path:
        """The cluster file the fleet's servers of ``store`` are given."""
        where = Path(store).resolve()
        return self.workdir / f"peers-{where.name}-{zlib.crc32(str(where).encode()):08x}.yaml"

    def write_peers(self, store) -> None:
        """Rewrite :meth:`peers_file` from the fleet's servers of ``store`` (when they cover
        partitions 0..n-1)."""
        mine = [s for s in self.servers if s.store.resolve() == Path(store).resolve()]
        by_part: Dict[int, List[ServerProcess]] = {}
        for s in sorted(mine, key=lambda s: s.replica):
            by_part.setdefault(s.partition, []).append(s)
        if sorted(by_part) != list(range(len(by_part))):
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.peers_file(store), yaml.safe_dump(
            cluster_dict([by_part[k] for k in range(len(by_part))])).encode())

    def start(self, store, partition: int, **kw) -> ServerProcess:
        args = list(kw.pop("args", ()))
        if "--cluster" not in args:
            args += ["--cluster", str(self.peers_file(store))]
        s = ServerProcess(store, partition, self.workdir, args=args, **kw)
        self.servers.append(s)
        self.write_peers(store)
        return s.start()

    def start_all(self, specs: Sequence[dict], timeout: float = 30.0) -> List[ServerProcess]:
        """Start servers for every spec (kwargs of :meth:`start`) in parallel; wait for all.
        A server whose free port was taken in the meantime is started again on another."""
        started = [self.start(**spec) for spec in specs]
        for s in started:
            for attempt in range(3):
                try:
                    s.wait_ready(timeout)
                    break
                except RuntimeError:
                    if attempt == 2 or "cannot listen" not in s.log():
                        raise
                    s.port = free_port()
                    self.write_peers(s.store)
                    s.restart()
        return started

    def start_replicated(self, store: Path, num_partitions: int, *, timeout: float = 30.0,
                         metrics: bool = False) -> List[List[ServerProcess]]:
        """A primary and a read replica for every partition of ``store``; sets and returns
        ``self.layout`` ([[primary, replica], ...]). ``metrics`` exposes partition 0's
        primary metrics endpoint."""
        specs = [dict(store=store, partition=k, **({"metrics": True} if metrics and k == 0 else {}))
                 for k in range(num_partitions)]
        specs += [dict(store=store, partition=k, replica=True) for k in range(num_partitions)]
        servers = self.start_all(specs, timeout=timeout)
        self.layout = [[servers[k], servers[num_partitions + k]] for k in range(num_partitions)]
        return self.layout

    def close(self) -> None:
        for s in self.servers:
            if s.alive():
                s.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for s in self.servers:
            if s.proc is not None and s.alive():
                try:
                    s.proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
            s.close()


@contextlib.contextmanager
def click_world(workdir: Path, seed: int, args: Sequence[Sequence[str]], *, ref: bool = True):
    """A store of ``click_graph(seed)`` in ``len(args)`` partitions under ``workdir``, a
    server per partition started with ``args[p]``, and (with ``ref``) a read-only LocalGraph
    of the store to compare with. Yields ``(arrays, store, fleet, servers, ref or None)``;
    closes everything after."""
    from graphplat.testing.graphs import click_graph

    arrays = click_graph(seed=seed)
    store = arrays.write_store(Path(workdir) / "store", partitions=len(args))
    with Fleet(Path(workdir) / "logs") as fleet:
        servers = fleet.start_all([dict(store=store, partition=p, args=list(a)) for p, a in enumerate(args)])
        local = graphplat.open_graph(store, read_only=True) if ref else None
        try:
            yield arrays, store, fleet, servers, local
        finally:
            if local is not None:
                local.close()


def cluster_dict(partitions: Sequence[Sequence[ServerProcess]], **extra) -> dict:
    """A cluster-file dict: partition k served by ``partitions[k]`` (primary first)."""
    return {"partitions": [{"partition": k, "replicas": [s.address for s in servers]}
                           for k, servers in enumerate(partitions)], **extra}


def write_cluster_file(path: Path, partitions, **extra) -> Path:
    Path(path).write_text(yaml.safe_dump(cluster_dict(partitions, **extra)))
    return Path(path)


def self_signed_cert(directory: Path, name: str = "server"):
    """A self-signed certificate for CN=localhost, SAN localhost / 127.0.0.1 / ::1.
    Returns (cert_path, key_path)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(ipaddress.ip_address("::1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cert_path = directory / f"{name}.crt"
    key_path = directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def read_ready(server: ServerProcess) -> dict:
    return json.loads(server.ready_file.read_text())


def wait_for(cond, timeout: float = 30.0, what: str = "condition"):
    """Poll ``cond()`` until it returns something truthy; returns it (AssertionError on timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def advertised(server: ServerProcess) -> str:
    """The shared-memory segment name ``server``'s Info advertises now ("" for none)."""
    from graphplat.storage.client import PartitionClient

    c = PartitionClient([server.address], server.partition, deadline_s=10)
    try:
        return c.info().shm_segment
    finally:
        c.close()


def segments_of(server: ServerProcess) -> List[str]:
    """Names of the shared-memory segments ``server``'s process published (sorted)."""
    from graphplat.storage.shared import SHM_DIR

    return sorted(p.name for p in SHM_DIR.glob("graphplat-*") if f"-{server.proc.pid}-" in p.name)


def kill_when_logged(cmd: Sequence[str], marker: str, *, env: Dict[str, str], cwd: Optional[str] = None,
                     timeout: float = 60.0) -> Tuple[int, List[str]]:
    """Run ``cmd``, SIGKILL it as soon as a stderr line contains ``marker`` (or at EOF or
    after ``timeout`` s). Returns ``(pid, stderr lines seen)``: the caller asserts the marker
    was reached."""
    proc = subprocess.Popen(list(cmd), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env=env, cwd=cwd)
    seen: List[str] = []
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            if marker in line:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    return proc.pid, seen
