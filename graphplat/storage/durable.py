"""A partition whose writes are durable: each write is validated, appended to the
partition's RocksDB write log with a synced WriteBatch, applied to the in-memory
:class:`PartitionGraph`, and only then acknowledged. Graph servers serve one of these;
:func:`graphplat.open_graph` builds a LocalGraph over all of a store's partitions with
them, so embedded writes are just as durable. Replicas open the store read-only and
follow the primary's log.
"""
from __future__ import annotations

import errno
import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from graphplat.errors import DiskFull, PartitionClosed, ReadOnlyReplica
from graphplat.schema import GraphSchema
from graphplat.service import EID_PARTITION_SHIFT
from graphplat.storage.partition_book import PartitionBook
from graphplat.storage.partition_graph import PartitionGraph, check_edge_arrays

log = logging.getLogger("graphplat.durable")

DEDUPE_CAPACITY = 100_000
#: ``check(ntype, ids, owners, name)``: raise unless ``ids``, owned by the partitions
#: ``owners`` (not this one), are nodes (graphplat.storage.peers.Peers.check_nodes)
ForeignCheck = Callable[[str, np.ndarray, np.ndarray, str], None]


def _is_no_space(exc: BaseException) -> bool:
    return getattr(exc, "errno", None) == errno.ENOSPC or "no space left" in str(exc).lower()


@dataclass
class WriteResult:
    """An acknowledged write: its log sequence number, the edge ids it created (edge
    writes of the owning partition), and whether it repeated an earlier request id."""

    seq: int
    eids: Optional[np.ndarray] = None
    duplicate: bool = False


# The write log
#
# The log (store.LogRecord) holds one record per acknowledged write of this partition:
#   add_nodes        type=ntype  arrays: ids, feat/<name>..., request_id (uint8 utf-8)
#   update_features  type=ntype  arrays: ids, feat/<name>..., request_id
#   add_edges        type=canonical  arrays: src, dst, eids, [weights], direction (int8:
#                    0 = in-adjacency, edges owned here, eids assigned here; 1 = the
#                    out-adjacency copy of edges owned by another partition), request_id

def _feats_of(arrays: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    return {k[5:]: v for k, v in arrays.items() if k.startswith("feat/")}


def _request_id_of(arrays: Dict[str, np.ndarray]) -> str:
    rid = arrays.get("request_id")
    return "" if rid is None else bytes(np.asarray(rid, dtype=np.uint8)).decode("utf-8", "replace")


def apply_record(graph: PartitionGraph, rec) -> Optional[np.ndarray]:
    """Apply one write-log record to ``graph``; returns the edge ids of an in-adjacency
    ``add_edges`` (checked against the recorded ones), else None."""
    a = rec.arrays
    if rec.op == "add_nodes":
        graph.add_nodes(rec.type, a["ids"], _feats_of(a))
    elif rec.op == "update_features":
        graph.update_features(rec.type, a["ids"], _feats_of(a))
    elif rec.op == "add_edges":
        w = a.get("weights")
        if int(np.asarray(a.get("direction", [0])).reshape(-1)[0]) == 0:
            eids = graph.add_edges_in(rec.type, a["src"], a["dst"], w)
            if "eids" in a and not np.array_equal(eids, a["eids"]):
                raise RuntimeError(f"replayed edges of {rec.type} got edge ids {eids[:3].tolist()}... "
                                   f"but the log recorded {a['eids'][:3].tolist()}...")
            return eids
        graph.add_edges_out(rec.type, a["src"], a["dst"], a["eids"], w)
    else:  # pragma: no cover - LogRecord validates op
        raise ValueError(f"unknown log op {rec.op!r}")
    return None


class _Dedupe:
    """Bounded map request_id -> WriteResponse of the writes applied most recently."""

    def __init__(self, capacity: int = DEDUPE_CAPACITY):
        self.capacity = capacity
        self._items: "OrderedDict[str, Tuple[int, Optional[np.ndarray]]]" = OrderedDict()

    def get(self, rid: str):
        return self._items.get(rid) if rid else None

    def put(self, rid: str, seq: int, eids: Optional[np.ndarray]) -> None:
        if not rid:
            return
        self._items[rid] = (seq, eids)
        self._items.move_to_end(rid)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def dump(self) -> bytes:
        """JSON ``{rid: [seq, first_eid, count] | [seq, [eids...]] | [seq]}`` (edge ids an
        in-adjacency write assigned are consecutive, so they take two numbers)."""
        out = {}
        for rid, (seq, eids) in self._items.items():
            if eids is None:
                out[rid] = [seq]
            elif len(eids) and np.array_equal(eids, eids[0] + np.arange(len(eids))):
                out[rid] = [seq, int(eids[0]), len(eids)]
            else:
                out[rid] = [seq, np.asarray(eids).tolist()]
        return json.dumps(out).encode()

    @classmethod
    def load(cls, raw: Optional[bytes]) -> "_Dedupe":
        """The table :meth:`dump` wrote (empty for None)."""
        d = cls()
        for rid, v in (json.loads(raw) if raw else {}).items():
            if len(v) == 1:
                d.put(rid, int(v[0]), None)
            elif len(v) == 3:
                d.put(rid, int(v[0]), np.int64(v[1]) + np.arange(int(v[2]), dtype=np.int64))
            else:
                d.put(rid, int(v[0]), np.asarray(v[1], dtype=np.int64))
        return d


class DurablePartition:
    """The loaded partition of a server: graph, store handle, write log and dedupe table.

    ``replica=False``: opens the partition read-write and owns its write log.
    ``replica=True``: opens it read-only and :meth:`refresh` follows the primary's log.
    """

    def __init__(self, store_dir, partition: int, *, replica: bool = False,
                 accept_log_loss: bool = False):
        from graphplat.storage.store import PartitionStore, open_store

        self.info = open_store(store_dir)
        self.store_dir = Path(store_dir)
        self.partition = int(partition)
        self.path = self.info.partition_path(self.partition)
        self.schema: GraphSchema = self.info.schema
        self.book: PartitionBook = self.info.book
        self.replica = replica
        self.write_lock = threading.Lock()
        self.dedupe = _Dedupe()
        self.store = None
        self.on_change: Optional[Callable[[], None]] = None  # see applied_seq
        self.applied_seq = -1
        # last applied record that changed nodes or edges (Info's topology_seq: a client's
        # topology replica taken at or after it is current; feature updates do not count)
        self.topology_seq = -1
        self.generation = -1
        self.replayed = 0
        self.accept_log_loss = accept_log_loss
        self.write_error: Optional[str] = None  # why writes are failing (disk full), else None
        if replica:
            with PartitionStore(self.path, read_only=True) as st:
                self._load_from(st)
        else:
            self.store = PartitionStore(self.path, accept_log_loss=accept_log_loss)
            try:
                self._load_from(self.store)
            except BaseException:
                self.store.close()
                raise
        if self.graph.partition != self.partition:
            raise ValueError(f"{self.path} holds partition {self.graph.partition}, not {self.partition}")

    @property
    def applied_seq(self) -> int:
        """Last write-log record applied. Setting it (after every applied write, compaction
        or reload, before the write is acknowledged) calls ``on_change``: a server that
        published the partition in shared memory tells clients there to stop reading it."""
        return self._applied_seq

    @applied_seq.setter
    def applied_seq(self, seq: int) -> None:
        self._applied_seq = seq
        if self.on_change is not None:
            self.on_change()

    def _load_from(self, st) -> None:
        from graphplat.storage.store import check_schema, schema_fingerprint

        check_schema(self.store_dir, self.schema, schema_fingerprint(st.schema), f"{self.path}")
        graph = PartitionGraph(st.read())
        seq = st.compacted_through
        n = 0
        dedupe = _Dedupe.load(st.applied_ids())
        for seq, rec in st.read_log(st.compacted_through):
            try:
                eids = apply_record(graph, rec)
            except Exception as e:  # a record that failed when written fails again; skip it
                log.error("partition %d: write-log record %d (%s %s) does not apply: %s",
                          self.partition, seq, rec.op, rec.type, e)
                continue
            dedupe.put(_request_id_of(rec.arrays), seq, eids)
            n += 1
        self.graph = graph
        # a reload may lay the CSR out anew (compaction folds online edges in): replicas of
        # the topology taken before it are not trusted to sample alike
        self.topology_seq = self.applied_seq = max(seq, st.compacted_through)  # topology first
        self.generation = st.generation
        self.dedupe = dedupe
        self.replayed = n

    def refresh(self) -> int:
        """Replica: apply log records the primary appended since the last refresh (reload
        everything after a compaction). Returns the number of records applied."""
        from graphplat.storage.store import PartitionStore

        with PartitionStore(self.path, read_only=True) as st:
            if st.generation != self.generation or st.compacted_through > self.applied_seq:
                log.info("partition %d replica: reloading generation %d", self.partition, st.generation)
                # under the write lock, like every applied record: a shared-memory publication
                # (which also replaces ``graph``) never interleaves with the reload
                with self.write_lock:
                    self._load_from(st)
                return self.replayed
            n = 0
            for seq, rec in st.read_log(self.applied_seq):
                with self.write_lock:
                    try:
                        eids = apply_record(self.graph, rec)
                    except Exception as e:
                        log.error("partition %d replica: record %d does not apply: %s", self.partition, seq, e)
                        eids = None
                    self.dedupe.put(_request_id_of(rec.arrays), seq, eids)
                    self._note_topology(rec.op, seq)
                    self.applied_seq = seq
                n += 1
            return n

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    # ---- writes (primary only; caller holds write_lock)

    def check_owned(self, ntype: str, ids: np.ndarray) -> None:
        owner = self.book.partition_of(ntype, ids)
        bad = owner != self.partition
        if bad.any():
            raise ValueError(f"{ntype!r} ids {ids[bad][:5].tolist()} belong to partition(s) "
                             f"{np.unique(owner[bad])[:5].tolist()}, not to partition {self.partition}")

    def _foreign_check(self, check: Optional[ForeignCheck], ntype: str, ids: np.ndarray,
                       name: str) -> Optional[Callable[[], None]]:
        """A precheck of :meth:`_write` calling ``check(ntype, ids, owners, name)`` on the
        ``ids`` other partitions own (None when there is no check or no such id)."""
        if check is None:
            return None
        owners = self.book.partition_of(ntype, ids)
        other = owners != self.partition
        if not other.any():
            return None
        return lambda: check(ntype, ids[other], owners[other], name)

    def _check_local_endpoints(self, ntype: str, ids: np.ndarray, name: str) -> None:
        """ValueError unless every id of ``ids`` this partition owns is one of its nodes
        (ids owned by other partitions are checked by the ``check_foreign`` of the write:
        a server asks their owner, graphplat.storage.peers; in process the caller looked
        them up)."""
        local = ids[self.book.partition_of(ntype, ids) == self.partition]
        missing = local[~self.graph.lookup(ntype, local)] if len(local) else local
        if len(missing):
            raise ValueError(f"{name} ids {missing[:5].tolist()} are not {ntype!r} nodes "
                             f"(partition {self.partition} owns them and does not hold them)")

    def _check_edge_ids(self, key, dst: np.ndarray, eids: np.ndarray) -> None:
        """ValueError unless ``eids`` are distinct ids the partition owning each edge's
        destination could have assigned (and did, when that is this partition)."""
        if len(np.unique(eids)) != len(eids):
            raise ValueError("edge ids of one write must be distinct")
        owner = self.book.partition_of(key[2], dst)
        index = eids & ((np.int64(1) << EID_PARTITION_SHIFT) - 1)
        bad = ((eids >> EID_PARTITION_SHIFT) != owner) | (eids < 0)
        mine = owner == self.partition
        bad |= mine & (index >= self.graph.num_edges(key))
        if bad.any():
            raise ValueError(f"edge ids {eids[bad][:5].tolist()} of {':'.join(key)} were not "
                             "assigned by the partition owning the edges' destinations (edge ids "
                             "come from AddEdgesIn)")

    def log_and_apply(self, rid: str, op: str, type_, arrays: Dict[str, np.ndarray],
                      apply: Callable[[], Optional[np.ndarray]]) -> Tuple[int, Optional[np.ndarray]]:
        """Append the record durably, then apply it. Returns (seq, eids)."""
        from graphplat.storage.store import LogRecord

        if rid:
            arrays["request_id"] = np.frombuffer(rid.encode(), dtype=np.uint8)
        seq = self._append(LogRecord(op, type_, arrays))
        try:
            eids = apply()
        except Exception:
            log.exception("partition %d: write %d is logged but failed to apply", self.partition, seq)
            raise
        self._note_topology(op, seq)
        self.applied_seq = seq
        self.dedupe.put(rid, seq, eids)
        return seq, eids

    def _note_topology(self, op: str, seq: int) -> None:
        """Record ``seq`` as ``topology_seq`` when record ``op`` changed nodes or edges."""
        if op != "update_features":
            self.topology_seq = seq

    def _append(self, record) -> int:
        """Append one record durably; its seq. DiskFull when the disk is full."""
        if self.write_error is not None:
            self.recover_writes()
        if self.store is None:
            raise PartitionClosed(f"partition {self.partition}: the store is closed")
        try:
            return self.store.append_log(record)[0]
        except Exception as e:
            if not _is_no_space(e):
                raise
            self.write_error = str(e)
            log.error("partition %d: writes fail for lack of disk space: %s", self.partition, e)
            raise DiskFull(errno.ENOSPC, f"partition {self.partition}: the disk is full ({e}); "
                                         "writes resume by themselves once space is freed") from None

    def recover_writes(self) -> None:
        """After a write failed for lack of space (RocksDB then refuses every write until it
        is reopened): reopen the store, apply any record of a failed write that did reach
        the log, and clear ``write_error``. DiskFull while space is still missing. The
        caller holds ``write_lock``."""
        from graphplat.storage.store import PartitionStore

        if self.store is not None:
            self.store.close()
            self.store = None
        try:
            st = PartitionStore(self.path, accept_log_loss=self.accept_log_loss)
        except Exception as e:
            if not _is_no_space(e):
                raise
            self.write_error = str(e)
            raise DiskFull(errno.ENOSPC, f"partition {self.partition}: the disk is still full "
                                         f"({e}); writes resume once space is freed") from None
        for seq, rec in st.read_log(self.applied_seq):
            self.dedupe.put(_request_id_of(rec.arrays), seq, apply_record(self.graph, rec))
            self._note_topology(rec.op, seq)
            self.applied_seq = seq
        self.store = st
        self.write_error = None
        log.info("partition %d: disk space is back, writes resume", self.partition)

    def compact(self) -> int:
        """Fold the log into new blobs and reload the graph from them, so the in-memory
        layout equals what any restarted server or replica loads."""
        if self.replica:
            raise ReadOnlyReplica("compaction runs on the partition's primary, not on a read replica")
        with self.write_lock:
            if self.write_error is not None:
                self.recover_writes()
            if self.store is None:
                raise PartitionClosed(f"partition {self.partition}: the store is closed")
            through = self.store.last_seq
            if through <= self.store.compacted_through:
                return through  # nothing logged since the last compaction: nothing to fold
            data = self.graph.to_data()
            self.store.compact(data, through, applied_ids=self.dedupe.dump())
            self.generation = self.store.generation
            self.graph = PartitionGraph(self.store.read())
            # laid out anew (see _load_from); topology_seq is set first, before on_change runs
            self.topology_seq = self.applied_seq = max(self.applied_seq, through)
            return through

    # ---- the write API (validate, log durably, apply); every call is one log record

    def _write(self, request_id: str, run: Callable[[], WriteResult],
               precheck: Optional[Callable[[], None]] = None) -> WriteResult:
        """Run ``run`` under the write lock unless ``request_id`` was applied already (then
        its first answer). ``precheck`` (checks that may wait on other servers) runs before,
        outside the lock, and not at all for a repeated request."""
        if self.replica:
            raise ReadOnlyReplica(f"this server is a read replica of partition {self.partition}; "
                                  "send writes to the partition's primary (its first address)")
        if len(request_id) > 128:
            raise ValueError("request_id is longer than 128 characters")
        if precheck is not None:
            with self.write_lock:
                seen = self.dedupe.get(request_id)
            if seen is not None:
                return WriteResult(seen[0], seen[1], duplicate=True)
            precheck()
        with self.write_lock:
            seen = self.dedupe.get(request_id)
            if seen is not None:
                return WriteResult(seen[0], seen[1], duplicate=True)
            return run()

    def write_add_nodes(self, ntype: str, ids: np.ndarray, features: Dict[str, np.ndarray],
                        request_id: str = "") -> WriteResult:
        """Add nodes this partition owns (distinct, new); features default to zeros."""
        def run():
            g = self.graph
            nt = self.schema.node_type(ntype)
            if len(np.unique(ids)) != len(ids):
                raise ValueError(f"ids added to {nt.name!r} must be distinct")
            self.check_owned(nt.name, ids)
            present = g.lookup(nt.name, ids)
            if present.any():
                raise ValueError(f"{nt.name!r} ids already present: {ids[present][:5].tolist()}")
            feats = nt.coerce_features(features, len(ids), require_all=False)
            arrays = {"ids": ids, **{f"feat/{k}": v for k, v in feats.items()}}
            seq, _ = self.log_and_apply(request_id, "add_nodes", nt.name, arrays,
                                        lambda: g.add_nodes(nt.name, ids, feats))
            return WriteResult(seq)

        return self._write(request_id, run)

    def write_update_features(self, ntype: str, ids: np.ndarray, features: Dict[str, np.ndarray],
                              request_id: str = "") -> WriteResult:
        """Overwrite features of nodes this partition holds."""
        def run():
            g = self.graph
            nt = self.schema.node_type(ntype)
            missing = ~g.lookup(nt.name, ids)
            if missing.any():
                raise IndexError(f"{nt.name!r} nodes not in partition {self.partition}: "
                                 f"{ids[missing][:5].tolist()}")
            feats = nt.coerce_features(features, len(ids), require_all=False)
            arrays = {"ids": ids, **{f"feat/{k}": v for k, v in feats.items()}}
            seq, _ = self.log_and_apply(request_id, "update_features", nt.name, arrays,
                                        lambda: g.update_features(nt.name, ids, feats))
            return WriteResult(seq)

        return self._write(request_id, run)

    def write_add_edges_in(self, etype, src: np.ndarray, dst: np.ndarray,
                           weights: Optional[np.ndarray] = None, request_id: str = "",
                           check_foreign: Optional[ForeignCheck] = None) -> WriteResult:
        """Add edges whose destination this partition owns; assigns their edge ids.
        ``check_foreign(ntype, ids, owners, "src")`` checks sources other partitions own
        (raising when they are no nodes) before the write is logged."""
        key = self.schema.edge_type(etype).canonical
        weights = check_edge_arrays(src, dst, weights)
        precheck = self._foreign_check(check_foreign, key[0], src, "src")

        def run():
            g = self.graph
            missing = ~g.lookup(key[2], dst)
            if missing.any():
                raise IndexError(f"{key[2]!r} nodes not in partition {self.partition}: "
                                 f"{dst[missing][:5].tolist()}")
            self._check_local_endpoints(key[0], src, "src")
            start = g.num_edges(key)
            eids = (np.int64(self.partition) << EID_PARTITION_SHIFT) | np.arange(
                start, start + len(dst), dtype=np.int64)
            arrays = {"src": src, "dst": dst, "eids": eids, "direction": np.zeros(1, np.int8)}
            if weights is not None:
                arrays["weights"] = weights
            seq, got = self.log_and_apply(request_id, "add_edges", key, arrays,
                                          lambda: g.add_edges_in(key, src, dst, weights))
            return WriteResult(seq, got)

        return self._write(request_id, run, precheck)

    def write_add_edges_out(self, etype, src: np.ndarray, dst: np.ndarray, eids: np.ndarray,
                            weights: Optional[np.ndarray] = None, request_id: str = "",
                            check_foreign: Optional[ForeignCheck] = None) -> WriteResult:
        """Record the reverse copy of edges whose source this partition owns
        (``check_foreign`` as in :meth:`write_add_edges_in`, for destinations)."""
        key = self.schema.edge_type(etype).canonical
        weights = check_edge_arrays(src, dst, weights)
        if len(eids) != len(src):
            raise ValueError(f"{len(eids)} edge ids for {len(src)} edges")
        precheck = self._foreign_check(check_foreign, key[2], dst, "dst")

        def run():
            g = self.graph
            et = self.schema.edge_type(key)
            if not et.out_adjacency:
                raise ValueError(f"edge type {et.canonical_str} is not stored with out_adjacency: true")
            missing = ~g.lookup(key[0], src)
            if missing.any():
                raise IndexError(f"{key[0]!r} nodes not in partition {self.partition}: "
                                 f"{src[missing][:5].tolist()}")
            self._check_local_endpoints(key[2], dst, "dst")
            self._check_edge_ids(key, dst, eids)
            arrays = {"src": src, "dst": dst, "eids": eids, "direction": np.ones(1, np.int8)}
            if weights is not None:
                arrays["weights"] = weights
            seq, _ = self.log_and_apply(request_id, "add_edges", key, arrays,
                                        lambda: g.add_edges_out(key, src, dst, eids, weights))
            return WriteResult(seq)

        return self._write(request_id, run, precheck)

    # ---- the PartitionBackend contract (graphplat.storage.backend; what LocalGraph calls).
    # Reads go to the current graph, which compaction and replica reloads replace as a whole.

    #: edge writes take a request_id applied at most once; writes are logged before applied
    capabilities = frozenset({"dedupes_writes", "durable"})

    def num_nodes(self, ntype: str) -> int:
        """Nodes of ``ntype`` in the current graph."""
        return self.graph.num_nodes(ntype)

    def num_edges(self, etype) -> int:
        """Edges of ``etype`` owned here."""
        return self.graph.num_edges(etype)

    def node_ids(self, ntype: str) -> np.ndarray:
        """Ids of the ``ntype`` nodes owned here."""
        return self.graph.node_ids(ntype)

    def sample_neighbors(self, etype, seeds, fanout: int, *, strategy: str = "uniform",
                         replace: bool = False, direction: str = "in", seed: int = 0,
                         hop: int = 0, positions: Optional[np.ndarray] = None):
        """See PartitionGraph.sample_neighbors."""
        return self.graph.sample_neighbors(etype, seeds, fanout, strategy=strategy, replace=replace,
                                           direction=direction, seed=seed, hop=hop, positions=positions)

    def sample_multihop(self, etype, seeds, fanouts, *, strategy: str = "uniform",
                        replace: bool = False, seed: int = 0):
        """See PartitionGraph.sample_multihop (None when the fused path does not apply)."""
        return self.graph.sample_multihop(etype, seeds, fanouts, strategy=strategy, replace=replace,
                                          seed=seed)

    def node_features(self, ntype: str, ids, names=None, *, out=None, out_rows=None,
                      wire_dtype: Optional[str] = None) -> Dict[str, np.ndarray]:
        """See PartitionGraph.node_features."""
        return self.graph.node_features(ntype, ids, names, out=out, out_rows=out_rows,
                                        wire_dtype=wire_dtype)

    def edge_features(self, etype, eids, names=None) -> Dict[str, np.ndarray]:
        """See PartitionGraph.edge_features."""
        return self.graph.edge_features(etype, eids, names)

    def degrees(self, etype, ids, direction: str = "in") -> np.ndarray:
        """See PartitionGraph.degrees."""
        return self.graph.degrees(etype, ids, direction)

    def lookup(self, ntype: str, ids) -> np.ndarray:
        """Whether each id is a ``ntype`` node owned here."""
        return self.graph.lookup(ntype, ids)

    def has_edges(self, etype, src, dst) -> np.ndarray:
        """See PartitionGraph.has_edges."""
        return self.graph.has_edges(etype, src, dst)

    def max_rows_per_call(self, row_bytes: int) -> Optional[int]:
        """None: in process, no request limit."""
        return None

    def add_nodes(self, ntype, ids, features=None) -> None:
        """Durably add nodes owned here (see write_add_nodes)."""
        self.write_add_nodes(ntype, ids, features or {})

    def update_features(self, ntype, ids, features) -> None:
        """Durably overwrite features (see write_update_features)."""
        self.write_update_features(ntype, ids, features)

    def add_edges_in(self, etype, src, dst, weights=None, request_id: str = "") -> np.ndarray:
        """Durably add edges owned here; returns their edge ids (see write_add_edges_in)."""
        return self.write_add_edges_in(etype, src, dst, weights, request_id).eids

    def add_edges_out(self, etype, src, dst, eids, weights=None, request_id: str = "") -> None:
        """Durably record out-adjacency copies (see write_add_edges_out)."""
        self.write_add_edges_out(etype, src, dst, eids, weights, request_id)
