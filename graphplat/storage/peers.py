"""A partition server's view of the other partitions' servers (``graphplat serve --cluster``).

An edge's in-copy lives with its destination, its out-copy with its source, so a server
logging an edge holds only one endpoint; the other may be owned by another partition. The
server asks that partition's servers whether those nodes exist before it logs the edge
(:meth:`Peers.check_nodes`), so a hand-made AddEdgesIn/AddEdgesOut cannot add an edge to a
node that is no node. Rules:

* the owner's primary is asked first (its answer includes every acknowledged add_nodes);
  when it does not answer, its replicas are asked, and their "exists" is final (nodes are
  never removed) while their "missing" may only be lag;
* missing nodes: ``ValueError`` (INVALID_ARGUMENT); no server of the owner answered within
  ``timeout_s``, or a replica could not confirm: :class:`PartitionUnavailable` (UNAVAILABLE,
  the write is not applied; the client retries it with the same request id);
* a server started without a cluster file cannot check, and refuses such writes with
  :class:`NotConfigured` (FAILED_PRECONDITION) instead of trusting the caller.

The cluster file is the clients' one (:mod:`graphplat.storage.cluster`; its token and TLS
settings are used, else this server's token), read at the first check and again whenever
it changes, so it may be written after the servers start.
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from graphplat.errors import AuthenticationError, NotConfigured, PartitionUnavailable

log = logging.getLogger("graphplat.peers")

DEFAULT_PEER_TIMEOUT_S = 5.0

__all__ = ["Peers", "DEFAULT_PEER_TIMEOUT_S"]


class Peers:
    """The servers of every partition but ``partition``, from the cluster file ``cluster``
    (None: unknown). ``token`` is used when the file names none; ``timeout_s`` bounds each
    owner's answer (primary, then replicas)."""

    def __init__(self, cluster, partition: int, *, token: Optional[str] = None,
                 timeout_s: float = DEFAULT_PEER_TIMEOUT_S):
        if timeout_s <= 0:
            raise ValueError("the peer timeout must be > 0")
        self.path = None if cluster is None else Path(cluster)
        self.partition = int(partition)
        self.token = token
        self.timeout_s = float(timeout_s)
        self._lock = threading.Lock()
        self._stamp: Optional[Tuple[int, int, int]] = None
        # partition -> (client of its primary, client of its replicas or None)
        self._clients: Dict[int, Tuple[object, Optional[object]]] = {}
        self._retired: List = []

    def validate(self) -> None:
        """ValueError when the cluster file exists but is not a valid cluster file (a missing
        file is fine until the first check)."""
        if self.path is not None and self.path.exists():
            try:
                self._load()
            except NotConfigured as e:
                raise ValueError(str(e)) from None

    def check_nodes(self, ntype: str, ids: np.ndarray, owners: np.ndarray, what: str) -> None:
        """Check that ``ids`` (``ntype`` nodes owned by the partitions ``owners``, not this
        one) exist on their owners; ``what`` names them in errors ("src"). Raises ValueError
        (missing), PartitionUnavailable (an owner did not answer) or NotConfigured."""
        for p in np.unique(owners).tolist():
            sub = ids[owners == p]
            found = self._exists(int(p), ntype, sub, what)
            if not found.all():
                raise ValueError(f"{what} ids {sub[~found][:5].tolist()} are not {ntype!r} nodes "
                                 f"(checked with partition {p}, which owns them); add them with "
                                 "add_nodes first")

    def _exists(self, p: int, ntype: str, ids: np.ndarray, what: str) -> np.ndarray:
        primary, replicas = self._clients_of(p, ntype, ids, what)
        try:
            return primary.lookup(ntype, ids)
        except AuthenticationError as e:
            raise NotConfigured(f"partition {p}'s server refused this server's token ({e}); give "
                                "the servers' token in the cluster file") from None
        except PartitionUnavailable as e:
            reason = str(e)
        if replicas is not None:
            try:
                found = replicas.lookup(ntype, ids)
            except (PartitionUnavailable, AuthenticationError) as e:
                reason += f"; its replicas: {e}"
            else:
                if found.all():  # nodes are never removed: a replica's "exists" is final
                    return found
                reason += "; its replicas do not hold them yet (they may lag the primary)"
        raise PartitionUnavailable(
            f"cannot check the {what} ids {ids[:5].tolist()} that partition {p} owns: {reason}; "
            "the write was not applied, retry it", p, primary.addresses)

    def _clients_of(self, p: int, ntype: str, ids: np.ndarray, what: str):
        if self.path is None:
            raise NotConfigured(
                f"{what} ids {ids[:5].tolist()} are {ntype!r} nodes of partition {p}; this server "
                "cannot check that they exist: start it with --cluster FILE (the cluster file "
                "listing every partition's servers)")
        with self._lock:
            self._load()
            if p not in self._clients:
                raise NotConfigured(f"the cluster file {self.path} lists no servers of partition {p}")
            return self._clients[p]

    def _load(self) -> None:
        """(Re)read the cluster file when it changed; the caller holds ``_lock`` (or no
        check runs yet)."""
        from graphplat.storage.client import PartitionClient
        from graphplat.storage.cluster import load_cluster

        try:
            st = os.stat(self.path)
        except OSError as e:
            raise NotConfigured(f"cannot read the cluster file {self.path}: {e}") from None
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == self._stamp:
            return
        try:
            cfg = load_cluster(self.path)
        except ValueError as e:
            raise NotConfigured(str(e)) from None
        token = cfg.token or self.token
        # few attempts per server: a dead primary (connection refused) hands over to its
        # replicas at once instead of being retried until the timeout
        kw = dict(token=token, root_cert=cfg.root_cert, server_name=cfg.server_name,
                  deadline_s=self.timeout_s, backoff=0.05, max_backoff=0.5,
                  max_message_mb=cfg.max_message_mb)
        clients = {}
        for spec in cfg.partitions:
            if spec.partition == self.partition:
                continue
            rest = spec.replicas[1:]
            clients[spec.partition] = (
                PartitionClient(spec.replicas[:1], spec.partition, retries=2, **kw),
                PartitionClient(rest, spec.partition, retries=2 * len(rest), **kw) if rest else None)
        # clients of an older file may be in use by another check: closed at close()
        self._retired.extend(c for pair in self._clients.values() for c in pair if c is not None)
        self._clients, self._stamp = clients, stamp
        log.info("partition %d: peers from %s: %s", self.partition, self.path,
                 {p: [c.addresses for c in pair if c is not None] for p, pair in clients.items()})

    def close(self) -> None:
        """Close the peers' channels."""
        old = self._retired + [c for pair in self._clients.values() for c in pair if c is not None]
        self._clients, self._retired, self._stamp = {}, [], None
        for c in old:
            c.close()
