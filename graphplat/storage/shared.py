"""A partition's arrays in shared memory, so a client on the server's host reads that
partition in process instead of over gRPC.

A server publishes one segment (a file under ``/dev/shm``) per partition it serves,
named ``graphplat-<store hash>-p<partition>-g<generation>-<pid>-<random>``: unique per store,
partition, publication and process, so several servers on one host never clash. It holds a
status block (magic, state, write counter), a JSON header (the arrays, and the write-log
seq the arrays include), and the arrays (read-only for everyone; the server keeps using them
too, copying on its own first write). The server advertises the name in its Info; a client
that can open it maps it read-only and answers reads of that partition with a
PartitionGraph over the mapping.

Freshness: the published arrays are the partition at write-log seq ``header["seq"]``; every
write the server applies bumps the write counter before it is acknowledged. A client reads
in process only while the segment is live, the counter is unchanged, the server process
exists and the segment's seq is at least the client's last acknowledged write
(``PartitionClient.acked_seq``: a replica's segment may predate it); else it sends the call
over gRPC (so writes, failover and tokens behave as without shared memory).

Generations: after writes the server publishes a new segment (see
:mod:`graphplat.storage.republish`), advertises it, marks the old one SUPERSEDED and unlinks
its name (mappings stay valid). A client that finds its segment superseded asks Info once
for the new name and switches (one RPC per generation, not per batch). Every client holds a
shared ``flock`` on the segment it reads from; the server publishes no further generation
while a client still holds a superseded one, so at most two generations are in use at once
(arrays a program keeps from an older one keep its memory mapped until they are dropped).
A stopped server retires and unlinks its segment; one left by a killed server is removed
by the next server of the same store and partition (its pid is gone).

Primaries and read replicas publish alike (a replica republishes what it followed, see
:mod:`graphplat.storage.republish`). A segment whose server stopped or died is not read;
the client, which meanwhile fails over to another server of the partition (or finds its
server restarted), asks that one's Info for its segment (backing off while there is none).

Late segments: a partition whose server advertised no segment this process could map when
the client connected (still loading, online edges not compacted yet, /dev/shm full, or on
another host) is read over gRPC, and :class:`Pickup` asks its Info again in the background
(after :data:`PICKUP_FIRST_S`, doubling up to :data:`PICKUP_MAX_S`) until a segment appears,
then puts a :class:`SharedPartition` in its place. One daemon thread per process does this
and follows the segments (a forked child starts its own on its first read); it also
follows the topology replicas of :mod:`graphplat.storage.topology_replica`
(:func:`register_follower`).
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import mmap
import os
import secrets
import struct
import threading
import time
import weakref
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from graphplat.schema import GraphSchema
from graphplat.storage.partition_data import AdjacencyData, PartitionData
from graphplat.storage.partition_graph import PartitionGraph

log = logging.getLogger("graphplat.shared")

SHM_DIR = Path("/dev/shm")
MAGIC = b"GPSHM001"
_STATUS = struct.Struct("<8sQQQ")  # magic, state, write counter, header bytes
#: segment states (the status block's second field)
RETIRED, LIVE, SUPERSEDED = 0, 1, 2
#: a client whose segment is superseded asks Info for the new one at most this often
SWITCH_RETRY_S = 0.5
#: how often a client process checks its segments for a newer generation between reads
FOLLOW_INTERVAL_S = 0.5
#: a partition without a mappable segment (or whose segment's server is gone) is asked for
#: one after this long, then twice as long each time none appears, up to PICKUP_MAX_S (so
#: a server on another host costs one Info call per PICKUP_MAX_S)
PICKUP_FIRST_S = 0.5
PICKUP_MAX_S = 10.0
#: Info calls that look for a segment give up after this long (the partition reads over
#: gRPC meanwhile): one process thread follows every segment, and a server that is down
#: must not hold up the others for a whole client deadline
SEGMENT_INFO_DEADLINE_S = 2.0
_HEADER_AT = 64
_ALIGN = 64
_ADJ_FIELDS = ("indptr", "indices", "halo_ids", "eids", "weights")


def store_tag(store_dir) -> str:
    """Short hash of a store's absolute path (part of its segments' names)."""
    return hashlib.sha1(str(Path(store_dir).resolve()).encode()).hexdigest()[:12]


def _prefix(store_dir, partition: int) -> str:
    return f"graphplat-{store_tag(store_dir)}-p{int(partition)}-"


def _pid_of(name: str) -> Optional[int]:
    try:
        return int(name.split("-")[-2])
    except (IndexError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (on this host)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale() -> List[str]:
    """Unlink graphplat segments on this host whose server process is gone (a SIGKILLed
    server cannot clean up; its store may even be deleted since). Mappings clients hold stay
    valid. Returns the names removed."""
    removed = []
    if not SHM_DIR.is_dir():
        return removed
    for path in SHM_DIR.glob("graphplat-*"):
        pid = _pid_of(path.name)
        if pid is not None and pid != os.getpid() and not pid_alive(pid):
            try:
                path.unlink()
                removed.append(path.name)
            except FileNotFoundError:
                pass
    if removed:
        log.info("removed stale shared-memory segments of dead servers: %s", removed)
    return removed


def arrays_of(graph: PartitionGraph, features: bool = True) -> Dict[str, np.ndarray]:
    """Every array of ``graph`` to publish (its topology only unless ``features``), by key,
    as views (only a graph without online writes, see :func:`publishable`)."""
    out: Dict[str, np.ndarray] = {}
    for nt in graph.schema.node_types:
        out[f"ids/{nt.name}"] = graph.ids[nt.name].array
        for f, arr in (graph.features[nt.name].items() if features else ()):
            out[f"nfeat/{nt.name}/{f}"] = arr.array
    for direction, adjs in (("in", graph.in_adj), ("out", graph.out_adj)):
        for key, adj in adjs.items():
            k = ":".join(key)
            b = adj.bulk
            out[f"{direction}/{k}/indptr"] = b.indptr
            out[f"{direction}/{k}/indices"] = b.indices
            out[f"{direction}/{k}/halo_ids"] = adj.halo.array[: b.num_cols]
            out[f"{direction}/{k}/eids"] = b.eids
            if adj.weighted:
                out[f"{direction}/{k}/weights"] = b.weights
    for key, feats in (graph.edge_feats.items() if features else ()):
        for f, arr in feats.items():
            out[f"efeat/{':'.join(key)}/{f}"] = arr.array
    return out


def partition_data_of(arrays: Dict[str, np.ndarray], schema: GraphSchema, partition: int,
                      num_partitions: int) -> PartitionData:
    """The arrays of :func:`arrays_of` (by key) as a PartitionData (views, no copies);
    features absent from ``arrays`` are absent from it."""
    a = arrays
    data = PartitionData(schema, int(partition), int(num_partitions))
    for nt in schema.node_types:
        data.node_ids[nt.name] = a[f"ids/{nt.name}"]
        data.node_features[nt.name] = {f.name: a[f"nfeat/{nt.name}/{f.name}"] for f in nt.features
                                       if f"nfeat/{nt.name}/{f.name}" in a}
    for et in schema.edge_types:
        k = ":".join(et.canonical)
        for direction, target in (("in", data.in_adj), ("out", data.out_adj)):
            if f"{direction}/{k}/indptr" in a:
                target[et.canonical] = AdjacencyData(*(a.get(f"{direction}/{k}/{f}") for f in _ADJ_FIELDS))
        data.edge_features[et.canonical] = {f.name: a[f"efeat/{k}/{f.name}"] for f in et.features
                                            if f"efeat/{k}/{f.name}" in a}
    return data


def publishable(graph: PartitionGraph) -> bool:
    """Whether ``graph`` has no online writes beyond its bulk arrays (only such a graph is
    published: clients must sample exactly what the server samples)."""
    return all(a.delta_size == 0 and len(a.halo) == a.bulk.num_cols and a.num_rows == a.bulk.num_rows
               for adjs in (graph.in_adj, graph.out_adj) for a in adjs.values())


class Segment:
    """A mapped segment: ``arrays`` (read-only views), ``header`` and the status block.

    ``fd`` (kept open until :meth:`release`) carries the ``flock``: a client holds it shared
    while it reads from the segment; the server tests it exclusively to learn whether any
    client still does."""

    def __init__(self, name: str, mm: mmap.mmap, status: Optional[mmap.mmap] = None,
                 fd: Optional[int] = None):
        # ``mm`` maps the segment read-only (the arrays are views of it, so the core shares
        # them instead of copying); the server also maps it writable (``status``) to update
        # the status block.
        self.name = name
        self._mm = mm
        self._status = status if status is not None else mm
        self.writable = status is not None
        self.fd = fd
        # closes the fd (and so drops the lock) of a segment dropped without release()
        self._close_fd = weakref.finalize(self, os.close, fd) if fd is not None else None
        magic, _, _, hlen = _STATUS.unpack_from(mm, 0)
        if magic != MAGIC:
            raise ValueError(f"shared-memory segment {name} is not a graphplat partition")
        self.header = json.loads(bytes(mm[_HEADER_AT:_HEADER_AT + hlen]))
        self.published_counter = int(self.header["counter"])
        self.pid = int(self.header["pid"])
        self.seq = int(self.header.get("seq", -1))
        buf = memoryview(mm)
        self.arrays: Dict[str, np.ndarray] = {}
        for key, (dtype, shape, offset) in self.header["arrays"].items():
            count = int(np.prod(shape)) if shape else 1
            arr = np.frombuffer(buf, dtype=np.dtype(dtype), count=count, offset=offset).reshape(shape)
            arr.setflags(write=False)
            self.arrays[key] = arr

    # status
    def status(self) -> Tuple[int, int]:
        """``(state, write counter)`` as the server last set them."""
        _, state, counter, _ = _STATUS.unpack_from(self._status, 0)
        return state, counter

    def live(self) -> bool:
        """State LIVE and the write counter unchanged since publishing."""
        state, counter = self.status()
        return state == LIVE and counter == self.published_counter

    def bump(self) -> None:
        """Server: a write was applied (clients stop reading these arrays)."""
        magic, state, counter, hlen = _STATUS.unpack_from(self._status, 0)
        _STATUS.pack_into(self._status, 0, magic, state, counter + 1, hlen)

    def _set_state(self, state: int) -> None:
        magic, _, counter, hlen = _STATUS.unpack_from(self._status, 0)
        _STATUS.pack_into(self._status, 0, magic, state, counter, hlen)

    def retire(self) -> None:
        """Server: state RETIRED (clients go back to gRPC)."""
        self._set_state(RETIRED)

    def supersede(self) -> None:
        """Server: state SUPERSEDED (a newer generation is advertised: clients ask Info)."""
        self._set_state(SUPERSEDED)

    def unlink(self, retire: bool = True) -> None:
        """Server: retire (unless ``retire=False``) and remove the name (existing
        mappings stay valid)."""
        if retire:
            self.retire()
        try:
            (SHM_DIR / self.name).unlink()
        except FileNotFoundError:
            pass

    def in_use(self) -> bool:
        """Server: whether some client still holds (maps) this segment (its shared lock)."""
        if self.fd is None:
            return False
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        return False

    def release(self) -> None:
        """Drop this object's mapping and lock (arrays already handed out keep the memory
        mapped until they are garbage; the name is untouched)."""
        if self.writable and self._status is not self._mm:
            try:
                self._status.close()  # the writable map exports no buffers
            except BufferError:  # pragma: no cover - then garbage collection unmaps it
                pass
        self._status = _RELEASED
        self._mm = None
        self.arrays = {}
        self.drop_lock()  # releases the flock

    def drop_lock(self) -> None:
        """Close the lock's fd only (the mapping stays usable)."""
        if self._close_fd is not None:
            self._close_fd()
        self.fd = None

    def partition_data(self, schema: GraphSchema) -> PartitionData:
        """The published arrays as a PartitionData (views, no copies)."""
        return partition_data_of(self.arrays, schema, self.header["partition"], self.header["num_partitions"])

    def graph(self, schema: GraphSchema) -> PartitionGraph:
        """A PartitionGraph over the published arrays."""
        return PartitionGraph(self.partition_data(schema))


#: status of a released Segment: never live, never superseded
_RELEASED = _STATUS.pack(MAGIC, RETIRED, 0, 0)


def publish(graph: PartitionGraph, store_dir, generation: int, seq: int = -1) -> Segment:
    """Copy ``graph``'s arrays (see :func:`publishable`), which include write-log records
    through ``seq``, into a new segment; returns it, mapped read-write for the server (its
    fd kept open for :meth:`Segment.in_use`). Removes stale segments (of dead servers) first."""
    if not publishable(graph):
        raise ValueError("a partition with online writes pending is not published")
    remove_stale()
    arrays = arrays_of(graph)
    layout: Dict[str, Tuple[str, list, int]] = {}
    header = {"partition": graph.partition, "num_partitions": graph.num_partitions,
              "pid": os.getpid(), "counter": 0, "seq": int(seq), "arrays": layout}
    # Offsets depend on the header's length: reserve generously, then place the arrays.
    reserve = 4096 + 200 * len(arrays)
    offset = _HEADER_AT + reserve
    for key, arr in arrays.items():
        offset = -(-offset // _ALIGN) * _ALIGN
        layout[key] = (np.dtype(arr.dtype).str, list(arr.shape), offset)
        offset += arr.nbytes
    text = json.dumps(header).encode()
    if len(text) > reserve:
        raise ValueError("shared-memory header too large")
    name = (f"{_prefix(store_dir, graph.partition)}g{int(generation)}-{os.getpid()}-"
            f"{secrets.token_hex(4)}")
    path = SHM_DIR / name
    size = max(offset, _HEADER_AT + reserve)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.ftruncate(fd, size)
        mm = mmap.mmap(fd, size)
        mm[_HEADER_AT:_HEADER_AT + len(text)] = text
        buf = memoryview(mm)
        for key, arr in arrays.items():
            _, _, off = layout[key]
            dst = np.frombuffer(buf, dtype=arr.dtype, count=arr.size, offset=off).reshape(arr.shape)
            dst[...] = arr
            del dst
        del buf
        _STATUS.pack_into(mm, 0, MAGIC, LIVE, 0, len(text))
        ro = mmap.mmap(fd, size, prot=mmap.PROT_READ)
    except BaseException:
        path.unlink()
        os.close(fd)
        raise
    return Segment(name, ro, status=mm, fd=fd)


def attach(name: str) -> Segment:
    """Map segment ``name`` read-only and hold its shared lock until
    :meth:`Segment.release` (OSError when it is not on this host, ValueError when it is not
    a graphplat segment)."""
    if "/" in name or not name.startswith("graphplat-"):
        raise ValueError(f"not a graphplat shared-memory segment name: {name!r}")
    path = SHM_DIR / name
    # The lock has its own open file: mmap keeps a dup of the file it maps, and a lock on
    # that one would last as long as any array viewing the mapping does; this one lasts
    # until release(), i.e. while a SharedPartition reads from the segment.
    lock_fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_SH)  # the server publishes no newer generation past this one
        fd = os.open(path, os.O_RDONLY)
        try:
            mm = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
        finally:
            os.close(fd)
        return Segment(name, mm, fd=lock_fd)
    except BaseException:
        os.close(lock_fd)
        raise


#: The per-partition reads a co-located partition answers in process.
READS = ("sample_neighbors", "node_features", "edge_features", "degrees", "lookup", "has_edges",
         "node_ids", "num_nodes", "num_edges")


def read_confirmed(read: Callable[[], object], confirmed: Callable[[], bool]) -> Tuple[bool, object]:
    """``(True, read())`` when ``confirmed()``, asked after the read, says the in-process copy
    it ran on is current; ``(False, None)`` when it is not (the caller asks the server). A
    refusal (IndexError, KeyError, ValueError: an unknown id, say) is raised only when the
    copy is confirmed current, since a stale copy may just not know the id yet; a read that
    gives None (the copy has no answer) needs no confirmation. The one rule of every
    confirmed in-process read (InProcessReads, RoutedGraph's fused multi-hop)."""
    try:
        out = read()
    except (IndexError, KeyError, ValueError):
        if confirmed():  # the copy is current: so is its refusal
            raise
        return False, None
    return (True, out) if out is None or confirmed() else (False, None)


class InProcessReads:
    """A backend wrapping a PartitionClient (``self.client``): the calls named in ``READS``
    run on the PartitionGraph of ``self.fresh_copy()`` when there is one and ``confirm``
    accepts the answer afterwards (counted in ``local_reads``); those and every other call
    go to the client otherwise."""

    READS: Tuple[str, ...] = ()
    local_reads = 0

    def fresh_graph(self) -> Optional[PartitionGraph]:  # pragma: no cover - subclasses define it
        raise NotImplementedError

    def fresh_copy(self) -> Optional[Tuple[object, PartitionGraph]]:
        """``(token, graph)`` to answer a read from, or None (ask the client); ``token`` goes
        to :meth:`confirm` after the read."""
        graph = self.fresh_graph()
        return None if graph is None else (None, graph)

    def confirm(self, token) -> bool:
        """Whether an answer read from the copy of ``token`` may be returned (it is still
        current); True here: a fresh graph is current when it is handed out."""
        return True

    def _read(self, name: str):
        remote = getattr(self.client, name)

        def call(*args, **kw):
            copy = self.fresh_copy()
            if copy is None:
                return remote(*args, **kw)
            token, graph = copy
            ok, out = read_confirmed(lambda: getattr(graph, name)(*args, **kw),
                                     lambda: self.confirm(token))
            if not ok:
                return remote(*args, **kw)
            self.local_reads += 1
            return out
        call.__name__ = name
        return call

    def __getattr__(self, name):
        if name in type(self).READS:
            return self._read(name)
        return getattr(self.client, name)


class SharedPartition(InProcessReads):
    """A RoutedGraph backend for a partition whose server published it on this host: reads
    run on a PartitionGraph over the mapped segment while it is fresh (live, unwritten,
    server alive, not older than the client's last acknowledged write), else over
    ``client`` (a PartitionClient), like every write and call not listed in :data:`READS`.
    When the server supersedes the segment with a new generation, the next read asks Info
    for it and switches (at most once per :data:`SWITCH_RETRY_S` while that fails); when
    the segment's server stopped or died, the follower thread asks the server the client
    reads from now (see :meth:`follow`)."""

    READS = READS

    def __init__(self, client, segment: Segment, schema: GraphSchema):
        self.client = client
        self.schema = schema
        # (segment, graph) replaced together when switching generations
        self._current = (segment, segment.graph(schema))
        self._switch_lock = threading.Lock()  # one switch at a time (it asks Info)
        self._install_lock = threading.Lock()  # a switch's result vs release()
        self._retry_at = 0.0
        self._released = False
        # asking for a new segment when ours is gone (its server stopped or died), backing off
        self._gone_delay = PICKUP_FIRST_S
        self._gone_at = 0.0
        self.local_reads = 0  # calls answered in process (for tests and stats)
        self.switches = 0  # generations switched to (for tests and stats)
        register_follower(self)

    @property
    def segment(self) -> Segment:
        """The segment currently mapped."""
        return self._current[0]

    @property
    def graph(self) -> PartitionGraph:
        """The PartitionGraph over :attr:`segment` (fresh or not; see :meth:`fresh_graph`)."""
        return self._current[1]

    @property
    def capabilities(self) -> frozenset:
        """The client's capabilities plus "shared_memory" (PartitionBackend)."""
        return self.client.capabilities | {"shared_memory"}

    def fresh_graph(self) -> Optional[PartitionGraph]:
        """The PartitionGraph to answer a read in process right now, or None (read over
        gRPC): the mapped one while fresh, after switching to a newer generation when the
        server superseded it."""
        seg, graph = self._current
        state, counter = seg.status()
        if state == SUPERSEDED:
            seg, graph = self._switch(seg)
            state, counter = seg.status()
        if state != LIVE or counter != seg.published_counter:
            return None
        # a segment older than our own acknowledged write (a lagging replica's) is stale
        if seg.seq < self.client.acked_seq or not pid_alive(seg.pid):
            return None
        return graph

    def fresh(self) -> bool:
        """Whether reads are answered in process right now (see :meth:`fresh_graph`)."""
        return self.fresh_graph() is not None

    def _switch(self, old: Segment) -> Tuple[Segment, PartitionGraph]:
        """Map the generation the server advertises now in place of ``old``; returns the
        current (segment, graph), unchanged when that fails or another thread is at it."""
        if time.monotonic() < self._retry_at or not self._switch_lock.acquire(blocking=False):
            return self._current
        try:
            if self._current[0] is not old or self._released:  # switched meanwhile, or closed
                return self._current
            self._retry_at = time.monotonic() + SWITCH_RETRY_S
            try:
                name = self.client.info(deadline_s=SEGMENT_INFO_DEADLINE_S).shm_segment
                if not name or name == old.name:
                    return self._current
                seg = attach(name)
            except Exception as e:  # noqa: BLE001 - down, or not mappable: gRPC answers
                log.debug("partition %d: no newer segment (%s): reading over gRPC",
                          self.client.partition, e)
                return self._current
            if int(seg.header["partition"]) != self.client.partition:
                seg.release()
                return self._current
            graph = seg.graph(self.schema)
            with self._install_lock:
                if self._released:  # closed meanwhile: keep no lock
                    seg.release()
                    return self._current
                self._current = (seg, graph)
            self._retry_at = 0.0
            self.switches += 1
            old.release()  # the server may publish the next generation once all let go
            log.info("partition %d: switched to shared memory %s", self.client.partition, name)
            return self._current
        finally:
            self._switch_lock.release()

    def follow(self) -> None:
        """Run by the process's follower thread: switch to the advertised generation if the
        server superseded ours (so an idle client lets go of an old generation too); when
        ours is gone (its server stopped or died), ask the server the client reads from now
        (a replica it failed over to, or the restarted server) for its segment, backing off
        while it has none."""
        seg = self._current[0]
        state = seg.status()[0]
        if state == SUPERSEDED:
            self._switch(seg)
        elif state == RETIRED or not pid_alive(seg.pid):
            now = time.monotonic()
            if now < self._gone_at or self._released:
                return
            if self._switch(seg)[0] is seg:
                self._gone_at = now + self._gone_delay
                self._gone_delay = min(2 * self._gone_delay, PICKUP_MAX_S)
            else:
                self._gone_delay, self._gone_at = PICKUP_FIRST_S, 0.0

    def _after_fork(self) -> None:
        """In a forked child: close the child's copy of the lock file, and take fresh locks
        (the parent's follower may have held one while it forked)."""
        self.segment.drop_lock()
        self._switch_lock = threading.Lock()
        self._install_lock = threading.Lock()

    def release(self) -> None:
        """Unmap the segment and drop its lock (the client is closed separately)."""
        _FOLLOWED.discard(self)
        with self._install_lock:  # a switch in flight installs nothing after this
            self._released = True
            seg = self._current[0]
        seg.release()


class Pickup:
    """The partitions of a RemoteGraph read over gRPC (or from a topology replica) because
    their server advertised no segment this process could map when it connected: asks their
    Info again from the process's follower thread (after :data:`PICKUP_FIRST_S`, doubling up
    to :data:`PICKUP_MAX_S`) and, once one can be mapped, puts a :class:`SharedPartition` in
    the partition's place in ``backends`` (the RoutedGraph's list, changed in place; the
    PartitionClient it wraps stays the same, so calls in flight are unaffected; a replaced
    topology replica is released).

    Args:
        backends: the graph's backends, one per partition (PartitionClients are watched).
        schema: the graph's schema.
    """

    def __init__(self, backends: list, schema: GraphSchema):
        self.backends = backends
        self.schema = schema
        self._lock = threading.Lock()
        self._closed = False
        at = time.monotonic() + PICKUP_FIRST_S
        # partition -> [next attempt (monotonic), delay after that one]
        self._pending: Dict[int, List[float]] = {p: [at, PICKUP_FIRST_S] for p, b in enumerate(backends)
                                                 if not isinstance(b, SharedPartition)}
        self._forks = -1  # the process (fork count) this is followed in
        self.wake()

    @property
    def pending(self) -> List[int]:
        """The partitions still read over gRPC for lack of a segment."""
        return sorted(self._pending)

    def wake(self) -> None:
        """Make sure this process's follower thread checks the pending partitions (cheap;
        RemoteGraph calls it on every partition read, so a forked child starts its own
        follower on its first read)."""
        if self._forks != _forks and self._pending and not self._closed:
            self._forks = _forks
            register_follower(self)

    def follow(self) -> None:
        """Ask the Info of each pending partition whose turn it is; replace the ones whose
        segment this process can map by a SharedPartition (run by the follower thread)."""
        now = time.monotonic()
        for p, (at, delay) in list(self._pending.items()):
            if now < at or self._closed:
                continue
            current = self.backends[p]
            client = getattr(current, "client", current)  # a topology replica's client
            backend = colocate(client, self.schema)  # Info, then attach (or the client again)
            with self._lock:
                if backend is client or self._closed:
                    if backend is not client:
                        backend.release()
                    self._pending[p] = [time.monotonic() + delay, min(2 * delay, PICKUP_MAX_S)]
                    continue
                self.backends[p] = backend
                del self._pending[p]
            if current is not client:  # shared memory has it all: drop the replica's copy
                current.release()
        if not self._pending:
            _FOLLOWED.discard(self)

    def _after_fork(self) -> None:
        """In a forked child: a fresh lock (the parent's follower may have held it)."""
        self._lock = threading.Lock()

    def close(self) -> None:
        """Stop watching (before the graph releases its backends: none is added after)."""
        with self._lock:
            self._closed = True
        _FOLLOWED.discard(self)


# One daemon thread per client process follows every SharedPartition's segment between
# reads (FOLLOW_INTERVAL_S): a client that stopped reading still lets go of a superseded
# generation within about a second, so it cannot hold the server's next one back. It also
# runs the Pickups of partitions still waiting for a segment.
_FOLLOWED: "weakref.WeakSet" = weakref.WeakSet()  # SharedPartitions and Pickups
_follow_lock = threading.Lock()
_follower: Optional[threading.Thread] = None
_forks = 0  # forks this process descends from (a Pickup re-registers in a forked child)


def register_follower(backend) -> None:
    """Have this process's follower thread call ``backend.follow()`` every
    :data:`FOLLOW_INTERVAL_S` (and ``backend._after_fork()`` in a forked child, which then
    forgets it) until the backend is garbage or discarded with :func:`unregister_follower`."""
    global _follower
    with _follow_lock:
        _FOLLOWED.add(backend)
        if _follower is None:
            _follower = threading.Thread(target=_follow_loop, name="graphplat-shm-follow", daemon=True)
            _follower.start()


def unregister_follower(backend) -> None:
    """Stop following ``backend`` (see :func:`register_follower`)."""
    _FOLLOWED.discard(backend)


def fork_count() -> int:
    """How many forks this process descends from (a backend followed in a parent registers
    again in a forked child when this changed)."""
    return _forks


def _follow_loop() -> None:
    # Each backend's follow() runs in a daemon thread of its own, at most one at a time per
    # backend, and the loop does not wait for them: a backend whose server hangs (an Info
    # call waits out its deadline) cannot delay the others, whose freshness depends on being
    # followed. Daemon threads, not an executor: the interpreter joins an executor's workers
    # at exit (a script would wait out a dead server's deadline before exiting) and refuses
    # new work once its shutdown began (this loop would die with a traceback).
    global _follower
    in_flight: set = set()
    flight_lock = threading.Lock()

    def run(backend, key: int) -> None:
        try:
            backend.follow()
        except Exception as e:  # noqa: BLE001 - never let following die
            log.debug("following %r failed: %s", backend, e)
        finally:
            with flight_lock:
                in_flight.discard(key)

    while True:
        time.sleep(FOLLOW_INTERVAL_S)
        with _follow_lock:
            backends = list(_FOLLOWED)
            if not backends:  # nothing to follow: the next registration starts a new thread
                _follower = None
                return
        for b in backends:
            with flight_lock:
                if id(b) in in_flight:
                    continue
                in_flight.add(id(b))
            try:
                threading.Thread(target=run, args=(b, id(b)), name="graphplat-follow", daemon=True).start()
            except RuntimeError:  # the interpreter is shutting down: nothing to keep fresh
                return
        del backends, b


def _after_fork_in_child() -> None:
    """A forked child shares its parent's lock files (a flock belongs to the open file):
    the child closes its copies, so a child that never reads cannot hold a generation the
    parent let go of, and stops following (its reads still switch generations; a Pickup
    starts the child's own follower on its first read)."""
    global _follower, _follow_lock, _forks
    _follow_lock = threading.Lock()
    _follower = None
    _forks += 1
    for b in list(_FOLLOWED):
        b._after_fork()
    _FOLLOWED.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def colocate(client, schema: GraphSchema):
    """``client`` wrapped as a :class:`SharedPartition` when its server advertises a segment
    this process can map (same host), else ``client`` itself. ``client`` is a
    PartitionClient (its Info must answer, so the token is checked as for any call). A
    segment that is not fresh right now is wrapped too: it reads over gRPC until the
    server publishes a newer generation."""
    try:
        name = client.info(deadline_s=SEGMENT_INFO_DEADLINE_S).shm_segment
    except Exception as e:  # noqa: BLE001 - down or refusing: the RPC path reports it later
        log.debug("partition %d: no Info (%s): reading over gRPC", client.partition, e)
        return client
    if not name:
        return client
    try:
        seg = attach(name)
    except (OSError, ValueError) as e:
        log.debug("partition %d: segment %s not mappable here (%s): reading over gRPC",
                  client.partition, name, e)
        return client
    if int(seg.header["partition"]) != client.partition:
        seg.release()
        return client
    log.info("partition %d: reading in process from shared memory %s", client.partition, name)
    return SharedPartition(client, seg, schema)
