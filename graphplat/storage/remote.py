"""RemoteGraph: the GraphService over partition servers (``graphplat serve``) via gRPC.

All routing (splitting batches by owner, merging in caller order, negative sampling,
walks, write validation) is :class:`~graphplat.storage.routed.RoutedGraph`'s, shared with
LocalGraph; RemoteGraph only supplies :class:`~graphplat.storage.client.PartitionClient`
backends and runs the per-partition calls of each step in parallel.

    g = graphplat.connect("cluster.yaml")      # or a dict, see graphplat.storage.cluster
    s = g.sample_neighbors(("user", "click", "item"), items, 10)
    g.close()
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Mapping, Optional, Sequence, Union

from graphplat.errors import PartitionUnavailable
from graphplat.schema import GraphSchema
from graphplat.storage import codec
from graphplat.storage.client import PartitionClient
from graphplat.storage.cluster import ClusterConfig, load_cluster
from graphplat.storage.partition_book import PartitionBook
from graphplat.storage.remote_ids import RemoteIdDictionary
from graphplat.storage.routed import RoutedGraph
from graphplat.storage.shared import Pickup, SharedPartition, colocate
from graphplat.storage.topology_replica import TopologyReplica, check_mode

__all__ = ["RemoteGraph", "connect"]


class RemoteGraph(RoutedGraph):
    """A GraphService whose partition ``p`` is served by ``clients[p]``.

    The calls of one step go to all partitions involved at once (a thread pool of
    ``max_workers``, default ``4 * num_partitions``); the first failure (by partition
    number) is raised after every call of the step finished.

    With ``shared_memory`` (and no explicit ``backends``) a partition whose server on this
    host published it is read from that shared memory (:func:`~graphplat.storage.shared.colocate`),
    and one that had no segment yet is watched until it has (:class:`~graphplat.storage.shared.Pickup`).
    With ``topology_replica`` every other partition's topology is copied to this process and
    sampled there while fresh (:mod:`graphplat.storage.topology_replica`; features stay
    remote): ``"auto"`` (default) once the client samples multi-hop neighborhoods and if the
    copy fits its memory budget, ``True`` at once, ``False`` never.
    """

    def __init__(self, schema: GraphSchema, book: PartitionBook, clients: Sequence[PartitionClient],
                 *, max_workers: Optional[int] = None, id_dictionaries=None,
                 backends: Optional[Sequence] = None, shared_memory: bool = False,
                 topology_replica: Union[bool, str] = "auto"):
        # backends: what answers each partition's reads (a client, a SharedPartition reading
        # a co-located server's shared memory, or a TopologyReplica); defaults to the clients.
        colocated = backends is None and shared_memory
        if backends is None:
            backends = [colocate(c, schema) for c in clients] if colocated else list(clients)
            mode = check_mode(topology_replica)
            if mode:
                backends = [b if isinstance(b, SharedPartition) else TopologyReplica(b, schema, lazy=mode == "auto")
                            for b in backends]
        super().__init__(schema, book, backends, id_dictionaries)
        # partitions still read over gRPC switch to shared memory once their server publishes
        self._pickup = Pickup(self.backends, schema) if colocated else None
        self.clients = list(clients)
        self._pool = ThreadPoolExecutor(max_workers=max_workers or max(4, 4 * len(self.clients)),
                                        thread_name_prefix="graphplat-remote")
        self._closed = False

    def _pieces(self, groups, row_bytes: int = 8, spread: bool = False):
        # every partition read (sampling, features, degrees, lookups) is cut here: a forked
        # child's first read starts its own shared-memory follower (Pickup.wake is cheap)
        if self._pickup is not None:
            self._pickup.wake()
        return super()._pieces(groups, row_bytes, spread)

    def _map(self, calls: Dict[int, callable]) -> Dict[int, object]:
        if len(calls) <= 1:
            return {p: fn() for p, fn in calls.items()}
        items = list(calls.items())
        # the calling thread makes the last call itself: one thread hand-off less per step
        futures = {p: self._pool.submit(fn) for p, fn in items[:-1]}
        out, errors = {}, {}
        last, fn = items[-1]
        try:
            out[last] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised below
            errors[last] = e
        _collect(futures, out, errors)
        return {p: out[p] for p, _ in items}  # in the calls' order, as callers iterate it

    def _start(self, calls: Dict[int, callable]):
        """Submit ``calls`` to the pool; returns a function waiting for ``{p: result}``
        (the first failure by partition number is raised, as in _map)."""
        futures = {p: self._pool.submit(fn) for p, fn in calls.items()}
        return lambda: _collect(futures, {}, {})

    def info(self) -> list:
        """The Info of every partition (counts, role, applied write-log seq), in order."""
        got = self._map({p: (lambda c=c: c.info()) for p, c in enumerate(self.clients)})
        return [got[p] for p in range(len(self.clients))]

    def compact(self) -> list:
        """Fold every partition's write log into its blobs (on the primaries)."""
        got = self._map({p: (lambda c=c: c.compact()) for p, c in enumerate(self.clients)})
        return [got[p] for p in range(len(self.clients))]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=True)
        if self._pickup is not None:  # no backend is replaced from now on
            self._pickup.close()
        for b in self.backends:  # unmap shared memory: the server may publish past it
            release = getattr(b, "release", None)
            if release is not None:
                release()
        for c in self.clients:
            c.close()


def _collect(futures: Dict[int, object], out: Dict[int, object], errors: Dict[int, BaseException]) -> Dict[int, object]:
    """Wait for every future, adding its result to ``out`` or its exception to ``errors``
    (which may hold some already); raises the error of the lowest partition, else returns
    ``out``."""
    for p, f in futures.items():
        try:
            out[p] = f.result()
        except BaseException as e:  # noqa: BLE001 - re-raised below
            errors[p] = e
    if errors:
        raise errors[min(errors)]
    return out


def _fetch_meta(clients: Sequence[PartitionClient]):
    """Schema and partition book from the first partition that answers Info."""
    last: Optional[Exception] = None
    for c in clients:
        try:
            info = c.info(include_schema=True, include_book=True)
        except PartitionUnavailable as e:
            last = e
            continue
        return GraphSchema.from_yaml(info.schema_yaml), codec.book_from_msg(info.partition_book)
    raise last  # type: ignore[misc]


def connect(source: Union[str, os.PathLike, Mapping[str, Any], ClusterConfig], *,
            verify: bool = True, max_workers: Optional[int] = None, **overrides) -> RemoteGraph:
    """A RemoteGraph over the servers of a cluster file (path), dict or ClusterConfig.

    ``overrides`` replace cluster-file settings (``deadline_s``, ``retries``, ``token``,
    ``shared_memory``, ``topology_replica``...). With ``shared_memory`` (default) a
    partition whose server runs on this host and published it (``graphplat serve`` does
    unless --no-shared-memory) is read in process from that shared memory while the server
    has taken no write since it published it, and again once the server publishes a new
    generation after writes (see :mod:`graphplat.storage.shared`); writes and everything
    else go over gRPC. A partition whose server had no segment yet when connecting switches
    to it once one appears. With ``topology_replica`` the other partitions' topology is
    copied here and sampled in process: ``"auto"`` (default) in the background once this
    client samples multi-hop neighborhoods (a loader), when the copies fit their share of a
    quarter of the available memory (one budget per process); ``True`` at connect; ``False`` never (every hop asks the servers).
    Each answer from a copy is confirmed with the server (one empty round trip), so it is
    as current as the server's (:mod:`graphplat.storage.topology_replica`).
    String-id dictionaries are fetched from partition 0 on demand and new strings are
    given ids by its primary (:mod:`graphplat.storage.remote_ids`).
    With ``verify`` (default) every partition is asked for its Info once, checking that it
    serves the expected partition of a graph with the same schema (PartitionUnavailable
    when one does not answer, ValueError on a mismatch).
    """
    cfg = source if isinstance(source, ClusterConfig) else load_cluster(source)
    for k, v in overrides.items():
        if not hasattr(cfg, k):
            raise TypeError(f"connect() got an unknown setting {k!r}")
        setattr(cfg, k, v)
    check_mode(cfg.topology_replica)  # before any connection: a typo fails at once
    clients = cfg.clients()
    try:
        if cfg.store is not None:
            from graphplat.storage.store import open_store

            st = open_store(cfg.store)
            schema, book = st.schema, st.book
        else:
            schema, book = _fetch_meta(clients)
        # string ids: partition 0's primary is the authority, strings are fetched on demand
        dictionaries = {nt.name: RemoteIdDictionary(nt.name, clients[0])
                        for nt in schema.node_types if nt.id_type == "string"}
        if book.num_partitions != len(clients):
            raise ValueError(f"the cluster file lists {len(clients)} partitions but the graph has "
                             f"{book.num_partitions}")
        g = RemoteGraph(schema, book, clients, max_workers=max_workers, id_dictionaries=dictionaries,
                        shared_memory=cfg.shared_memory, topology_replica=cfg.topology_replica)
    except BaseException:
        for c in clients:
            c.close()
        raise
    if verify:
        try:
            infos = g._map({p: (lambda c=c: c.info(include_schema=True)) for p, c in enumerate(clients)})
            for p, info in infos.items():
                if info.partition != p or info.num_partitions != book.num_partitions:
                    raise ValueError(f"{clients[p].addresses} serve partition {info.partition} of "
                                     f"{info.num_partitions}, but the cluster file says partition "
                                     f"{p} of {book.num_partitions}")
                if GraphSchema.from_yaml(info.schema_yaml) != schema:
                    raise ValueError(f"partition {p} ({clients[p].addresses}) serves a graph with "
                                     "a different schema")
        except BaseException:
            g.close()
            raise
    return g
