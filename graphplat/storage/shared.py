"""A partition's arrays in shared memory, so a client on the server's host reads that
partition in process instead of over gRPC.

A server publishes one segment (a file under ``/dev/shm``) per partition it serves,
named ``graphplat-<store hash>-p<partition>-g<generation>-<pid>-<random>``: unique per store,
partition, load and process, so several servers on one host never clash. It holds a
status block (magic, live flag, write counter), a JSON header listing the arrays, and the
arrays (read-only for everyone; the server keeps using them too, copying on its own first
write). The server advertises the name in its Info; a client that can open it maps it
read-only and answers reads of that partition with a PartitionGraph over the mapping.

Freshness: the published arrays are the partition as loaded; every write the server
applies bumps the write counter before it is acknowledged. A client reads in process only
while the segment is live, the counter is unchanged and the server process exists; else it
sends the call over gRPC (so writes, failover and tokens behave as without shared memory).
A stopped server retires and unlinks its segment; one left by a killed server is removed
by the next server of the same store and partition (its pid is gone).
"""
from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
import secrets
import struct
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from graphplat.schema import GraphSchema
from graphplat.storage.partition_data import AdjacencyData, PartitionData
from graphplat.storage.partition_graph import PartitionGraph

log = logging.getLogger("graphplat.shared")

SHM_DIR = Path("/dev/shm")
MAGIC = b"GPSHM001"
_STATUS = struct.Struct("<8sQQQ")  # magic, live, write counter, header bytes
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


def _arrays_of(graph: PartitionGraph) -> Dict[str, np.ndarray]:
    """Every array of ``graph`` to publish, by key (only a graph without online writes)."""
    out: Dict[str, np.ndarray] = {}
    for nt in graph.schema.node_types:
        out[f"ids/{nt.name}"] = graph.ids[nt.name].array
        for f, arr in graph.features[nt.name].items():
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
    for key, feats in graph.edge_feats.items():
        for f, arr in feats.items():
            out[f"efeat/{':'.join(key)}/{f}"] = arr.array
    return out


def publishable(graph: PartitionGraph) -> bool:
    """Whether ``graph`` has no online writes beyond its bulk arrays (only such a graph is
    published: clients must sample exactly what the server samples)."""
    return all(a.delta_size == 0 and len(a.halo) == a.bulk.num_cols and a.num_rows == a.bulk.num_rows
               for adjs in (graph.in_adj, graph.out_adj) for a in adjs.values())


class Segment:
    """A mapped segment: ``arrays`` (read-only views), ``header`` and the status block."""

    def __init__(self, name: str, mm: mmap.mmap, status: Optional[mmap.mmap] = None):
        # ``mm`` maps the segment read-only (the arrays are views of it, so the core shares
        # them instead of copying); the server also maps it writable (``status``) to update
        # the status block.
        self.name = name
        self._mm = mm
        self._status = status if status is not None else mm
        self.writable = status is not None
        magic, _, _, hlen = _STATUS.unpack_from(mm, 0)
        if magic != MAGIC:
            raise ValueError(f"shared-memory segment {name} is not a graphplat partition")
        self.header = json.loads(bytes(mm[_HEADER_AT:_HEADER_AT + hlen]))
        self.published_counter = int(self.header["counter"])
        self.pid = int(self.header["pid"])
        buf = memoryview(mm)
        self.arrays: Dict[str, np.ndarray] = {}
        for key, (dtype, shape, offset) in self.header["arrays"].items():
            count = int(np.prod(shape)) if shape else 1
            arr = np.frombuffer(buf, dtype=np.dtype(dtype), count=count, offset=offset).reshape(shape)
            arr.setflags(write=False)
            self.arrays[key] = arr

    # status
    def live(self) -> bool:
        """Live flag set and the write counter unchanged since publishing."""
        _, live, counter, _ = _STATUS.unpack_from(self._status, 0)
        return live == 1 and counter == self.published_counter

    def bump(self) -> None:
        """Server: a write was applied (clients stop reading these arrays)."""
        magic, live, counter, hlen = _STATUS.unpack_from(self._status, 0)
        _STATUS.pack_into(self._status, 0, magic, live, counter + 1, hlen)

    def retire(self) -> None:
        """Server: clear the live flag (clients go back to gRPC)."""
        magic, _, counter, hlen = _STATUS.unpack_from(self._status, 0)
        _STATUS.pack_into(self._status, 0, magic, 0, counter, hlen)

    def unlink(self) -> None:
        """Server: retire and remove the name (existing mappings stay valid)."""
        self.retire()
        try:
            (SHM_DIR / self.name).unlink()
        except FileNotFoundError:
            pass

    def partition_data(self, schema: GraphSchema) -> PartitionData:
        """The published arrays as a PartitionData (views, no copies)."""
        a = self.arrays
        data = PartitionData(schema, int(self.header["partition"]), int(self.header["num_partitions"]))
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

    def graph(self, schema: GraphSchema) -> PartitionGraph:
        """A PartitionGraph over the published arrays."""
        return PartitionGraph(self.partition_data(schema))


def publish(graph: PartitionGraph, store_dir, generation: int) -> Segment:
    """Copy ``graph``'s arrays (see :func:`publishable`) into a new segment; returns it,
    mapped read-write for the server. Removes stale segments (of dead servers) first."""
    if not publishable(graph):
        raise ValueError("a partition with online writes pending is not published")
    remove_stale()
    arrays = _arrays_of(graph)
    layout: Dict[str, Tuple[str, list, int]] = {}
    header = {"partition": graph.partition, "num_partitions": graph.num_partitions,
              "pid": os.getpid(), "counter": 0, "arrays": layout}
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
        _STATUS.pack_into(mm, 0, MAGIC, 1, 0, len(text))
        ro = mmap.mmap(fd, size, prot=mmap.PROT_READ)
    except BaseException:
        path.unlink()
        raise
    finally:
        os.close(fd)
    return Segment(name, ro, status=mm)


def attach(name: str) -> Segment:
    """Map segment ``name`` read-only (OSError when it is not on this host, ValueError
    when it is not a graphplat segment)."""
    if "/" in name or not name.startswith("graphplat-"):
        raise ValueError(f"not a graphplat shared-memory segment name: {name!r}")
    fd = os.open(SHM_DIR / name, os.O_RDONLY)
    try:
        mm = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
    finally:
        os.close(fd)
    return Segment(name, mm)


#: The per-partition reads a co-located partition answers in process.
READS = ("sample_neighbors", "node_features", "edge_features", "degrees", "lookup", "has_edges",
         "node_ids", "num_nodes", "num_edges")


class SharedPartition:
    """A RoutedGraph backend for a partition whose server published it on this host: reads
    run on a PartitionGraph over the mapped segment while it is fresh (live, unwritten,
    server alive), else over ``client`` (a PartitionClient), like every write and call
    not listed in :data:`READS`."""

    def __init__(self, client, segment: Segment, schema: GraphSchema):
        self.client = client
        self.segment = segment
        self.graph = segment.graph(schema)
        self.local_reads = 0  # calls answered in process (for tests and stats)

    @property
    def capabilities(self) -> frozenset:
        """The client's capabilities plus "shared_memory" (PartitionBackend)."""
        return self.client.capabilities | {"shared_memory"}

    def fresh(self) -> bool:
        """Whether the mapped arrays are still what the server serves."""
        return self.segment.live() and pid_alive(self.segment.pid)

    def _read(self, name: str):
        local, remote = getattr(self.graph, name), getattr(self.client, name)

        def call(*args, **kw):
            if self.fresh():
                self.local_reads += 1
                return local(*args, **kw)
            return remote(*args, **kw)
        call.__name__ = name
        return call

    def __getattr__(self, name):
        if name in READS:
            return self._read(name)
        return getattr(self.client, name)


def colocate(client, schema: GraphSchema):
    """``client`` wrapped as a :class:`SharedPartition` when its server advertises a segment
    this process can map (same host), else ``client`` itself. ``client`` is a
    PartitionClient (its Info must answer, so the token is checked as for any call)."""
    try:
        name = client.info().shm_segment
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
        return client
    backend = SharedPartition(client, seg, schema)
    if not backend.fresh():
        return client
    log.info("partition %d: reading in process from shared memory %s", client.partition, name)
    return backend
