"""Cluster files: which servers answer for which partition, and how to reach them.

A cluster file is YAML (or the same dict in Python)::

    store: /data/graphs/shop          # optional: load schema and partition book from here
    partitions:
      - partition: 0
        replicas: ["10.0.0.1:50051", "10.0.0.2:50051"]   # first = primary (takes writes)
      - partition: 1
        replicas: ["10.0.0.3:50051"]
    token_file: /etc/graphplat/token  # or  token: "..."  or $GRAPHPLAT_TOKEN
    tls:
      root_cert: /etc/graphplat/ca.pem
      server_name: graph.internal     # optional, TLS name to verify
    deadline_s: 30                    # budget of one call, retries included
    retries: 10                       # extra attempts per call (across replicas)
    backoff_s: 0.1                    # base of the exponential backoff
    max_message_mb: 256
    shared_memory: true               # read partitions published on this host in process
    bulk: true                        # large answers over the servers' bulk port (no TLS)
    topology_replica: auto            # copy remote partitions' topology to sample in process:
                                      # auto (once a loader samples, if it fits), true, false

Schema and partition book: with ``store`` the client reads them from the store directory
(``schema.yaml``, ``partition_book.*``), which must then be visible to the client; without
it they are fetched from the servers' ``Info`` call (the book travels as arrays), so a
client needs nothing but the cluster file. Relative paths are relative to the cluster
file's directory.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Union

import yaml

from graphplat.storage.client import PartitionClient
from graphplat.storage.topology_replica import check_mode

__all__ = ["ClusterConfig", "PartitionSpec", "load_cluster"]

_KEYS = {"store", "partitions", "token", "token_file", "tls", "deadline_s", "retries",
         "backoff_s", "max_message_mb", "shared_memory", "bulk",
         "topology_replica"}


@dataclass
class PartitionSpec:
    """Partition ``partition`` and the ``host:port`` of its servers (primary first)."""

    partition: int
    replicas: List[str]


@dataclass
class ClusterConfig:
    """A validated cluster file."""

    partitions: List[PartitionSpec]
    store: Optional[Path] = None
    token: Optional[str] = field(default=None, repr=False)
    root_cert: Optional[bytes] = field(default=None, repr=False)
    server_name: Optional[str] = None
    deadline_s: float = 30.0
    retries: int = 10
    backoff_s: float = 0.1
    max_message_mb: int = 256
    shared_memory: bool = True
    bulk: bool = True
    topology_replica: Union[bool, str] = "auto"

    @property
    def num_partitions(self) -> int:
        return len(self.partitions)

    def clients(self) -> List[PartitionClient]:
        """One PartitionClient per partition, in partition order."""
        return [PartitionClient(p.replicas, p.partition, self.token, self.root_cert,
                                server_name=self.server_name, deadline_s=self.deadline_s,
                                retries=self.retries, backoff=self.backoff_s,
                                max_message_mb=self.max_message_mb, bulk=self.bulk)
                for p in self.partitions]


def _err(where: str, msg: str) -> ValueError:
    return ValueError(f"cluster file{where}: {msg}")


def _number(d: Mapping, key: str, kind, lo, where: str, default):
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not float(v).is_integer()):
        raise _err(where, f"{key} must be a {'whole ' if kind is int else ''}number, got {v!r}")
    if v < lo:
        raise _err(where, f"{key} must be >= {lo}, got {v!r}")
    return kind(v)


def load_cluster(source: Union[str, os.PathLike, Mapping[str, Any]]) -> ClusterConfig:
    """Parse and validate a cluster file (path) or dict; ValueError naming the problem."""
    base = Path.cwd()
    where = ""
    if isinstance(source, Mapping):
        data = dict(source)
    else:
        path = Path(source)
        where = f" {path}"
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as e:
            raise _err(where, f"cannot read it: {e}") from None
        except yaml.YAMLError as e:
            raise _err(where, f"not valid YAML: {e}") from None
        base = path.parent
    if not isinstance(data, dict):
        raise _err(where, "must be a mapping with a 'partitions' list")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise _err(where, f"unknown key(s) {unknown}; known: {sorted(_KEYS)}")

    def resolve(p) -> Path:
        p = Path(os.path.expanduser(str(p)))
        return p if p.is_absolute() else base / p

    parts = data.get("partitions")
    if not isinstance(parts, list) or not parts:
        raise _err(where, "'partitions' must be a non-empty list of {partition, replicas}")
    specs: Dict[int, PartitionSpec] = {}
    for i, entry in enumerate(parts):
        if not isinstance(entry, dict) or set(entry) - {"partition", "replicas"}:
            raise _err(where, f"partitions[{i}] must be a mapping with keys partition and replicas")
        k = entry.get("partition", i)
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise _err(where, f"partitions[{i}].partition must be an integer >= 0, got {k!r}")
        reps = entry.get("replicas")
        if isinstance(reps, str):
            reps = [reps]
        if not isinstance(reps, list) or not reps:
            raise _err(where, f"partition {k}: replicas must be a non-empty list of 'host:port'")
        for a in reps:
            host, sep, port = str(a).rpartition(":")
            if not isinstance(a, str) or not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise _err(where, f"partition {k}: replica address {a!r} is not 'host:port'")
        if len(set(reps)) != len(reps):
            raise _err(where, f"partition {k}: replica addresses repeat")
        if k in specs:
            raise _err(where, f"partition {k} is listed twice")
        specs[k] = PartitionSpec(k, list(reps))
    if sorted(specs) != list(range(len(specs))):
        raise _err(where, f"partitions must be numbered 0..{len(specs) - 1}, got {sorted(specs)}")

    if "token" in data and "token_file" in data:
        raise _err(where, "give token or token_file, not both")
    token = data.get("token")
    if "token_file" in data:
        try:
            token = resolve(data["token_file"]).read_text().strip()
        except OSError as e:
            raise _err(where, f"cannot read token_file: {e}") from None
    if token is not None and (not isinstance(token, str) or not token):
        raise _err(where, "token must be a non-empty string")
    if token is None:
        token = os.environ.get("GRAPHPLAT_TOKEN") or None

    root_cert = server_name = None
    tls = data.get("tls")
    if tls is not None:
        if not isinstance(tls, dict) or "root_cert" not in tls or set(tls) - {"root_cert", "server_name"}:
            raise _err(where, "tls must be a mapping {root_cert: PATH, server_name: optional}")
        try:
            root_cert = resolve(tls["root_cert"]).read_bytes()
        except OSError as e:
            raise _err(where, f"cannot read tls.root_cert: {e}") from None
        server_name = tls.get("server_name")

    store = data.get("store")
    if store is not None:
        store = resolve(store)
        if not store.is_dir():
            raise _err(where, f"store {store} is not a directory")

    return ClusterConfig(
        partitions=[specs[k] for k in sorted(specs)], store=store, token=token,
        root_cert=root_cert, server_name=server_name,
        deadline_s=_number(data, "deadline_s", float, 0.001, where, 30.0),
        retries=_number(data, "retries", int, 0, where, 10),
        backoff_s=_number(data, "backoff_s", float, 0.0, where, 0.1),
        max_message_mb=_number(data, "max_message_mb", int, 1, where, 256),
        shared_memory=_flag(data, "shared_memory", where, True),
        bulk=_flag(data, "bulk", where, True),
        topology_replica=_replica_mode(data, where))


def _replica_mode(d: Mapping, where: str) -> Union[bool, str]:
    try:
        return check_mode(d.get("topology_replica", "auto"))
    except ValueError as e:
        raise _err(where, str(e)) from None


def _flag(d: Mapping, key: str, where: str, default: bool) -> bool:
    v = d.get(key, default)
    if not isinstance(v, bool):
        raise _err(where, f"{key} must be true or false, got {v!r}")
    return v
