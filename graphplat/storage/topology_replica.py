"""A client-side copy of a remote partition's topology, so sampling never leaves the trainer.

Three modes (``connect(..., topology_replica=...)`` or ``topology_replica:`` in the cluster
file):

* ``"auto"`` (the default): *lazy* replicas. Nothing is copied at connect and nothing is
  asked of the servers until the client samples multi-hop neighborhoods
  (``NeighborSampler.sample``: loaders, training, scoring calls
  ``GraphService.expect_multihop_sampling``); then each remote partition's copy is fetched in
  the background if the copies fit :data:`AUTO_MEMORY_SHARE` of the memory available then,
  together with every other lazy copy of the process (:func:`wake_lazy`); sampling goes per
  hop over gRPC meanwhile. A partition too large for its share stays per hop (one INFO line
  says so). Clients that only look up, write or serve features never pay for a copy.
* ``True``: fetched at connect (in the caller's thread), budget :data:`DEFAULT_MEMORY_SHARE`.
* ``False``: never; every remote partition is sampled per hop by its server.

For every partition that is not read from shared memory, the client fetches
the partition's ids and adjacency once (the server's ``Topology`` stream: no features, about
``16 bytes x edges`` per direction plus the ids) and answers that partition's sampling,
degree, lookup and edge-existence reads in process, from a
:class:`~graphplat.storage.partition_graph.PartitionGraph` over the copy: the same code and
the same arrays the server answers from, so answers are identical. Features, writes and
everything else still go to the server. This is the structure-replicated, features-
partitioned layout of P3 and PaGraph; it trades memory on the trainer for the per-hop round
trips of distributed sampling.

Freshness: answers are as current as the server's. A copy taken at write-log seq ``S`` is
tried while the client's own acknowledged node/edge writes on the partition are at most ``S``
(``PartitionClient.acked_topology_seq``) and the server's ``topology_seq`` (its last applied
record that changed nodes or edges; Info) was at most ``S`` when last seen, at most
``max_lag_s`` ago (the process's follower thread asks Info every
:data:`~graphplat.storage.shared.FOLLOW_INTERVAL_S`). An answer computed from the copy is
then *confirmed*: one Info call after the read; it is returned only if the server's
``topology_seq`` is still at most ``S``, so no write acknowledged before the read began can
be missing from it (the same guarantee as asking the server, for the price of an empty round
trip instead of a sampling one). RoutedGraph's fused multi-hop path confirms once per call,
for all hops. An answer that fails confirmation is asked of the server instead.

Otherwise reads go over gRPC, and a background thread fetches a new copy once the server
serves one (Info's ``topology_servable``): a partition with online edge writes serves its
topology again only after they are compacted (a ``Compact`` call, or the primary's
``--republish-after`` timer once writes went quiet, with or without shared memory). Feature
updates do not make a replica stale.

Cost: the copy lives in the client's memory (``shared.arrays_of(graph, features=False)`` of
each remote partition), is fetched at connect with ``True`` (in the caller's thread) or in the
background once woken with ``"auto"`` (it must arrive within the client's ``deadline_s`` and
the server's ``--stream-deadline``), and again, in the background, after the partition's
topology changed; following costs one Info call per partition every half second (none while
a lazy replica sleeps or after it declined a copy).
"""
from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Optional, Tuple

import psutil

from graphplat.schema import GraphSchema
from graphplat.storage import shared
from graphplat.storage.backend import TOPOLOGY_REPLICA
from graphplat.storage.partition_graph import PartitionGraph

log = logging.getLogger("graphplat.topology_replica")

#: reads use the replica only while the server's topology_seq was confirmed this recently
DEFAULT_MAX_LAG_S = 2.0
#: by default a copy may take at most this share of the memory available when it is fetched
DEFAULT_MEMORY_SHARE = 0.5
#: lazy ("auto") copies take at most this share, all of a process's together: nobody asked
#: for them, so they stay modest
AUTO_MEMORY_SHARE = 0.25
#: every lazy replica of this process (their copies share one budget, see wake_lazy)
_LAZY: "weakref.WeakSet[TopologyReplica]" = weakref.WeakSet()


def lazy_copies_bytes() -> int:
    """Bytes of the copies the lazy ("auto") replicas of this process hold now."""
    return sum(r.copy_bytes for r in list(_LAZY))


def wake_lazy(replicas) -> None:
    """Wake the dormant lazy replicas among ``replicas`` (one graph's). All lazy copies of the
    process share one budget, :data:`AUTO_MEMORY_SHARE` of the memory that would be available
    without them (available now plus what they hold), less what they hold; the graph's lazy
    replicas split what is left evenly (hash partitions are about the same size). So many
    remote partitions, or several graph objects, cannot take more together. A replica given
    its own ``max_bytes`` keeps it."""
    lazy = [r for r in replicas if r.lazy]
    dormant = [r for r in lazy if not r.awake]
    if not dormant:
        return
    held = lazy_copies_bytes()
    budget = max(0, int(AUTO_MEMORY_SHARE * (psutil.virtual_memory().available + held)) - held)
    share = budget // len(lazy)
    for r in dormant:
        if r.max_bytes is None:
            r.max_bytes = share
        r.wake()


def check_mode(mode) -> object:
    """``mode`` if it is a topology replica mode (False, True or "auto"), else ValueError."""
    if isinstance(mode, bool) or mode == "auto":
        return mode
    raise ValueError(f"topology_replica must be true, false or 'auto', got {mode!r}")


#: the reads a topology replica answers in process (features are not replicated)
READS = tuple(r for r in shared.READS if r not in ("node_features", "edge_features"))


class TopologyReplica(shared.InProcessReads):
    """A RoutedGraph backend for a remote partition: topology reads from an in-process copy
    while it is fresh (see the module docstring), everything else over ``client`` (a
    PartitionClient).

    Args:
        client: the partition's PartitionClient.
        schema: the graph's schema.
        max_lag_s: longest time since the server's topology_seq was last confirmed for the
            copy to answer (bounds how late another client's topology write is seen).
        fetch: fetch the copy now (default); otherwise the follower thread fetches it.
        max_bytes: largest copy to take (default: :data:`DEFAULT_MEMORY_SHARE` of the memory
            available at each fetch, :data:`AUTO_MEMORY_SHARE` when ``lazy``); a larger
            partition is read over gRPC, with a warning (lazy: one INFO line, and no retry).
        lazy: dormant (no Info calls, no copy) until :meth:`wake`; implies ``fetch=False``.
    """

    READS = READS

    def __init__(self, client, schema: GraphSchema, *, max_lag_s: float = DEFAULT_MAX_LAG_S,
                 fetch: bool = True, max_bytes: Optional[int] = None, lazy: bool = False):
        if max_lag_s <= 0:
            raise ValueError("max_lag_s must be > 0 seconds")
        self.client = client
        self.schema = schema
        self.max_lag_s = float(max_lag_s)
        self.max_bytes = max_bytes
        # (seq, graph) of the copy; seq -1 is also a store's seq before any write
        self._current: Tuple[int, Optional[PartitionGraph]] = (-1, None)
        self._server_seq = -1  # the server's topology_seq at the last check
        self._checked_at = float("-inf")  # monotonic time of that check (taken before asking)
        self._install_lock = threading.Lock()
        self._fetching = False
        self._next_fetch = 0.0
        self._fetch_delay = shared.PICKUP_FIRST_S
        self._released = False
        self._forks = shared.fork_count()
        self.local_reads = 0  # calls answered in process (for tests and stats)
        self.fetches = 0  # copies installed (for tests and stats)
        self.rejected = 0  # answers from the copy the server did not confirm (for tests and stats)
        self.lazy = bool(lazy)
        self._awake = not self.lazy
        #: bytes of the copy held now (0 without one)
        self.copy_bytes = 0
        if self.lazy:
            _LAZY.add(self)
        #: why a lazy copy was given up (too large for its budget), else None
        self.declined: Optional[str] = None
        if fetch and not self.lazy:
            self._fetch()
        shared.register_follower(self)

    @property
    def seq(self) -> int:
        """Write-log seq the copy includes (-1 before the first copy)."""
        return self._current[0]

    @property
    def capabilities(self) -> frozenset:
        """The client's capabilities plus "topology_replica" (PartitionBackend)."""
        return self.client.capabilities | {TOPOLOGY_REPLICA}

    def fresh_copy(self) -> Optional[Tuple[int, PartitionGraph]]:
        """``(seq, graph)`` of the copy to try a topology read on (then :meth:`confirm` it),
        or None: no copy, or one known to be stale, or not confirmed for ``max_lag_s``."""
        if self._forks != shared.fork_count():  # a forked child follows on its own
            self._forks = shared.fork_count()
            shared.register_follower(self)
        seq, graph = self._current
        if graph is None or time.monotonic() - self._checked_at > self.max_lag_s:
            return None
        if seq < self._server_seq or seq < self.client.acked_topology_seq:
            return None
        return seq, graph

    def fresh_graph(self) -> Optional[PartitionGraph]:
        """The graph of :meth:`fresh_copy` (None when there is none); an answer read from
        it must be confirmed with ``confirm(seq)`` (seq read before this call)."""
        copy = self.fresh_copy()
        return None if copy is None else copy[1]

    def fresh(self) -> bool:
        """Whether topology reads are tried in process right now."""
        return self.fresh_copy() is not None

    def confirm(self, seq: int) -> bool:
        """Ask the server whether the copy at ``seq`` is still its topology (Info's
        topology_seq at most ``seq``, and no own node/edge write after it): an answer read
        from that copy is then current. False when it is not, or the server does not answer
        (the caller asks over gRPC, with its retries and failover)."""
        info = self._ask()
        ok = info is not None and int(info.topology_seq) <= seq and self.client.acked_topology_seq <= seq
        if not ok:
            self.rejected += 1
        return ok

    @property
    def awake(self) -> bool:
        """Whether the replica follows its server (always, unless lazy and not woken yet)."""
        return self._awake

    def wake(self) -> None:
        """Start a lazy replica: fetch its copy in the background (unless declined) and
        follow the server from now on. Cheap when already awake."""
        if self._awake or self._released:
            return
        self._awake = True
        self._fetch_in_background()

    def settled(self) -> bool:
        """Whether the replica is as ready as it gets: it has a fresh copy, or it declined
        one (too large), or it is dormant."""
        return not self._awake or self.declined is not None or self.fresh()

    # ---- following the server
    def follow(self) -> None:
        """Run by the process's follower thread: confirm the server's topology_seq, and
        fetch a new copy in the background when ours is behind it (or the client's own
        writes). A dormant or declined lazy replica does nothing."""
        if self._released or not self._awake or self.declined is not None:
            return
        info = self._ask()
        if info is None:
            return
        # fetch when ours is behind and this server serves something newer now (a lagging
        # read replica the client failed over to may not; a partition with online edges
        # serves nothing until compacted)
        seq, graph = self._current
        if info.topology_servable and (graph is None or (
                seq < max(self._server_seq, self.client.acked_topology_seq) and info.applied_seq > seq)):
            self._fetch_in_background()

    def _ask(self):
        """The server's Info, after recording its topology_seq and when it was asked (the
        check is as old as the moment before asking); None when it does not answer (reads
        then fail to confirm, and skip the copy once ``max_lag_s`` passed)."""
        asked = time.monotonic()
        try:
            info = self.client.info(deadline_s=shared.SEGMENT_INFO_DEADLINE_S)
        except Exception as e:  # noqa: BLE001 - the read over gRPC reports it
            log.debug("partition %d: no Info for the topology replica (%s)", self.client.partition, e)
            return None
        self._server_seq = max(self._server_seq, int(info.topology_seq))
        self._checked_at = max(self._checked_at, asked)
        return info

    def _fetch_in_background(self) -> None:
        with self._install_lock:
            if (self._fetching or self._released or self.declined is not None
                    or time.monotonic() < self._next_fetch):
                return
            self._fetching = True
        threading.Thread(target=self._fetch, name="graphplat-topology-fetch", daemon=True).start()

    def _fetch(self) -> bool:
        """Fetch and install a copy; False (and a later retry, backing off) when the server
        serves none now."""
        self._fetching = True
        asked = time.monotonic()
        limit = self.max_bytes
        if limit is None:
            share = AUTO_MEMORY_SHARE if self.lazy else DEFAULT_MEMORY_SHARE
            limit = int(share * psutil.virtual_memory().available)
        try:
            head, arrays = self.client.topology(max_bytes=limit)
            if head.partition != self.client.partition:
                raise ValueError(f"the server answered with partition {head.partition}")
            graph = PartitionGraph(shared.partition_data_of(arrays, self.schema, head.partition,
                                                            head.num_partitions))
        except Exception as e:  # noqa: BLE001 - not compacted, down, or old: gRPC answers meanwhile
            if self.lazy and isinstance(e, ValueError):  # too large for the budget: for good
                with self._install_lock:
                    self.declined = str(e)
                    self._fetching = False
                log.info("partition %d: no automatic topology replica (%s); sampling it per hop "
                         "over gRPC", self.client.partition, e)
                return False
            with self._install_lock:
                self._next_fetch = time.monotonic() + self._fetch_delay
                self._fetch_delay = min(2 * self._fetch_delay, shared.PICKUP_MAX_S)
                self._fetching = False
            # a copy too large (or malformed) is worth a warning; "not compacted yet" is not
            log.log(logging.WARNING if isinstance(e, ValueError) else logging.INFO,
                    "partition %d: no topology copy now (%s); reading it over gRPC meanwhile",
                    self.client.partition, e)
            return False
        with self._install_lock:
            self._fetching = False
            self._fetch_delay, self._next_fetch = shared.PICKUP_FIRST_S, 0.0
            old_seq, old = self._current
            if self._released or (old is not None and head.seq <= old_seq):
                return False
            self._current = (int(head.seq), graph)
            self.copy_bytes = sum(a.nbytes for a in arrays.values())
            # the server's topology_seq was at most head.seq when it answered (after ``asked``)
            self._checked_at = max(self._checked_at, asked)
            self.fetches += 1
        log.info("partition %d: topology replica at write-log seq %d (%.1f MiB; %s)", self.client.partition,
                 head.seq, sum(a.nbytes for a in arrays.values()) / 2**20,
                 ", ".join(f"{nt}: {graph.num_nodes(nt)} nodes" for nt in graph.ids))
        return True

    def _after_fork(self) -> None:
        """In a forked child: fresh locks (the parent's threads may have held them)."""
        self._install_lock = threading.Lock()
        self._fetching = False

    def release(self) -> None:
        """Drop the copy and stop following (the client is closed separately)."""
        shared.unregister_follower(self)
        with self._install_lock:
            self._released = True
            self._current = (-1, None)
            self.copy_bytes = 0
