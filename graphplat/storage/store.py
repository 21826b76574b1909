"""The on-disk partition store: one RocksDB per partition (the ``rocksdict`` binding).

Store directory: ``store.json`` (``"complete": true`` written last), ``schema.yaml``,
``partition_book.json`` and ``part-0/`` .. ``part-{P-1}/``, one RocksDB each. A
``*.tmp-<pid>`` or ``*.old-<pid>`` directory is never accepted as a store.

Each partition DB has three column families: ``default`` (metadata: ``info``, ``schema``,
``current_generation``, ``compacted_through``, ``applied_ids``), ``blobs`` (generation
``G`` of the partition's arrays under ``g{G:08d}/``, chunked raw little-endian bytes with a
JSON manifest) and ``log`` (``log/{seq:016d}`` = one :class:`LogRecord`, appended by
:meth:`PartitionStore.append_log` with a synced WAL). Compaction is crash-safe: a crash
leaves either the old generation plus the whole log or the new one plus the unfolded log.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import rocksdict

from graphplat.atomic import fsync_path, write_json_atomic
from graphplat.schema import GraphSchema
from graphplat.storage.partition_book import PartitionBook
from graphplat.storage.partition_data import AdjacencyData, PartitionData
from graphplat.storage.shared import pid_alive
from graphplat.typing import PathLike

log = logging.getLogger(__name__)

__all__ = [
    "FORMAT_VERSION", "STORE_FORMAT", "PARTITION_FORMAT", "CHUNK_BYTES", "LOG_OPS",
    "StoreInfo", "open_store", "partition_path", "write_store_manifest", "create_store",
    "staging_dir", "cleanup_stale", "is_staging_name",
    "write_partition", "read_partition", "LogRecord", "PartitionStore",
    "encode_record", "decode_record", "schema_fingerprint", "check_schema",
]

FORMAT_VERSION = 1
STORE_FORMAT = "graphplat-store"
PARTITION_FORMAT = "graphplat-partition"
CHUNK_BYTES = 16 << 20
LOG_OPS = ("add_nodes", "add_edges", "update_features")

_STAGING_RE = re.compile(r"\.(tmp|old)-(\d+)\Z")
_ADJ_FIELDS = ("indptr", "indices", "halo_ids", "eids", "weights")

_K_INFO = b"info"
_K_SCHEMA = b"schema"
_K_GEN = b"current_generation"
_K_COMPACTED = b"compacted_through"
_K_APPLIED = b"applied_ids"
_LOG_PREFIX = b"log/"


# ----------------------------------------------------------------------------- store level


def is_staging_name(path: PathLike) -> bool:
    """Whether ``path`` is named like an ingest's staging (``.tmp-<pid>``) or set-aside
    (``.old-<pid>``) directory."""
    return bool(_STAGING_RE.search(Path(path).name))


def partition_path(store: PathLike, k: int) -> Path:
    """The RocksDB directory of partition ``k`` in store ``store``."""
    return Path(store) / f"part-{int(k)}"


@dataclass
class StoreInfo:
    """A validated, complete store directory (see :func:`open_store`)."""

    path: Path
    format_version: int
    num_partitions: int
    created: str
    schema: GraphSchema
    book: PartitionBook
    meta: dict = field(default_factory=dict)

    def partition_path(self, k: int) -> Path:
        if not 0 <= k < self.num_partitions:
            raise ValueError(f"{self.path}: partition {k} out of range [0, {self.num_partitions})")
        return partition_path(self.path, k)

    def read_partition(self, k: int) -> PartitionData:
        return read_partition(self.partition_path(k))


def _check_version(path: Path, what: str, version) -> int:
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"{path}: {what} has an invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path}: {what} has format version {version}, newer than the versions this "
            f"graphplat reads (up to {FORMAT_VERSION}); upgrade graphplat")
    return version


def open_store(path: PathLike) -> StoreInfo:
    """Validate a store directory and load its schema and partition book.

    Raises ValueError naming ``path`` when it does not exist, is an unfinished ingest's
    staging directory, is not a graphplat store, is incomplete, or has a newer format.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such graphplat store (the path does not exist)")
    if not path.is_dir():
        raise ValueError(f"{path}: not a graphplat store (not a directory)")
    if is_staging_name(path):
        raise ValueError(f"{path}: this is the temporary directory of an unfinished or "
                         f"interrupted ingest, not a graphplat store")
    meta_path = path / "store.json"
    if not meta_path.exists():
        raise ValueError(f"{path}: not a graphplat store (no store.json)")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a graphplat store (unreadable store.json: {e})") from None
    if not isinstance(meta, dict) or meta.get("format") != STORE_FORMAT:
        raise ValueError(f"{path}: not a graphplat store (store.json has no format {STORE_FORMAT!r})")
    version = _check_version(path, "the store", meta.get("format_version"))
    if meta.get("complete") is not True:
        raise ValueError(f"{path}: incomplete graphplat store (an ingest did not finish)")
    num = meta.get("num_partitions")
    if not isinstance(num, int) or num < 1:
        raise ValueError(f"{path}: store.json has an invalid num_partitions {num!r}")
    try:
        schema = GraphSchema.load(path / "schema.yaml")
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot load schema.yaml: {e}") from None
    try:
        book = PartitionBook.load(path)
    except (OSError, KeyError, ValueError) as e:
        msg = str(e) if str(path) in str(e) else f"{path}: cannot load the partition book: {e}"
        raise ValueError(msg) from None
    if "schema_fingerprint" in meta:
        check_schema(path, schema, meta["schema_fingerprint"], "store.json")
    if book.num_partitions != num:
        raise ValueError(f"{path}: partition book has {book.num_partitions} partitions but "
                         f"store.json says {num}")
    for k in range(num):
        if not (partition_path(path, k) / "CURRENT").exists():
            raise ValueError(f"{path}: incomplete graphplat store (partition {k} is missing)")
    return StoreInfo(path, version, num, str(meta.get("created", "")), schema, book, meta)


def check_target(out: Path, overwrite: bool) -> None:
    """Refuse to write a store to ``out`` when it exists, unless ``overwrite`` and it is a
    graphplat store (or an empty directory); raises FileExistsError."""
    if not out.exists():
        return
    if not overwrite:
        raise FileExistsError(f"{out} already exists (pass --overwrite / overwrite=True to replace it)")
    if not out.is_dir() or not ((out / "store.json").exists() or not any(out.iterdir())):
        raise FileExistsError(f"refusing to overwrite {out}: it is not a graphplat store")


def schema_fingerprint(schema: GraphSchema) -> str:
    """sha256 (hex) of the schema's canonical YAML: equal for equal schemas, whatever
    the formatting of the file they were read from."""
    return hashlib.sha256(schema.to_yaml().encode()).hexdigest()


def check_schema(path: PathLike, schema: GraphSchema, fingerprint: str, where: str) -> None:
    """ValueError unless ``schema`` (read from ``path``/schema.yaml) has ``fingerprint``,
    the fingerprint stored with the data in ``where``."""
    got = schema_fingerprint(schema)
    if got != fingerprint:
        raise ValueError(f"{path}: schema.yaml (fingerprint {got[:12]}) does not match the schema "
                         f"the data was written with (fingerprint {fingerprint[:12]}, stored in "
                         f"{where}); schema.yaml was edited after ingest: restore it or ingest again")


def write_store_manifest(path: PathLike, num_partitions: int, **extra) -> Path:
    """Write ``store.json`` with ``complete: true`` (call it last), fsyncing it, the other
    top-level files and the directory. Extra keys (e.g. ``partitioner``) are recorded."""
    path = Path(path)
    meta = {"format": STORE_FORMAT, "format_version": FORMAT_VERSION,
            "num_partitions": int(num_partitions),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **extra, "complete": True}
    if (path / "schema.yaml").exists() and "schema_fingerprint" not in meta:
        meta["schema_fingerprint"] = schema_fingerprint(GraphSchema.load(path / "schema.yaml"))
    for f in path.iterdir():
        if f.is_file():
            fsync_path(f)
    return write_json_atomic(path / "store.json", meta, indent=2)


def cleanup_stale(target: PathLike) -> None:
    """Remove the staging directories ``<target>.tmp-<pid>`` of dead processes. A
    set-aside ``<target>.old-<pid>`` of a dead process is moved back when ``target`` is
    missing (a crash between the two renames of an overwrite) and deleted otherwise."""
    target = Path(target)
    parent = target.parent
    if not parent.is_dir():
        return
    for p in sorted(parent.iterdir()):
        if not p.name.startswith(target.name + "."):
            continue
        m = _STAGING_RE.search(p.name)
        if not m or p.name[:m.start()] != target.name or pid_alive(int(m.group(2))):
            continue
        if m.group(1) == "old" and not target.exists():
            log.warning("restoring %s from interrupted overwrite %s", target, p)
            os.rename(p, target)
        else:
            log.info("removing stale directory %s of a dead ingest", p)
            shutil.rmtree(p, ignore_errors=True)


@contextlib.contextmanager
def staging_dir(target: PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Build a store atomically: yields an empty ``<target>.tmp-<pid>`` directory; when the
    block ends without error it must hold a complete store (``store.json`` written by
    :func:`write_store_manifest`) and is renamed to ``target``. An existing ``target`` is
    refused unless ``overwrite``, in which case it is renamed aside first and deleted after.
    On error the staging directory is removed. Stale directories of dead processes are
    cleaned up first (:func:`cleanup_stale`)."""
    target = Path(target).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    cleanup_stale(target)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists (pass overwrite=True / --overwrite to replace it)")
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
        if not (tmp / "store.json").exists():
            raise RuntimeError(f"{tmp}: no store.json was written")
        old = None
        if target.exists():
            if not overwrite:
                raise FileExistsError(f"{target} appeared while ingesting; refusing to overwrite it")
            old = target.with_name(f"{target.name}.old-{os.getpid()}")
            os.rename(target, old)
        os.rename(tmp, target)
        fsync_path(target.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def create_store(path: PathLike, parts: Sequence[PartitionData], book: PartitionBook, *,
                 overwrite: bool = False, **extra) -> Path:
    """Write a whole store atomically from in-memory partitions. Returns the path."""
    parts = list(parts)
    if not parts or len(parts) != book.num_partitions:
        raise ValueError(f"{path}: got {len(parts)} partitions for a book of {book.num_partitions}")
    with staging_dir(path, overwrite) as tmp:
        parts[0].schema.save(tmp / "schema.yaml")
        book.save(tmp)
        for k, data in enumerate(parts):
            if data.partition != k:
                raise ValueError(f"partition {k} of the list says it is partition {data.partition}")
            write_partition(partition_path(tmp, k), data)
        write_store_manifest(tmp, len(parts), **extra)
    return Path(path).absolute()


# ----------------------------------------------------------------------------- RocksDB


def _options(create: bool) -> Tuple["rocksdict.Options", Dict[str, "rocksdict.Options"]]:
    opts = rocksdict.Options(raw_mode=True)
    opts.create_if_missing(create)
    opts.create_missing_column_families(create)
    opts.set_keep_log_file_num(2)
    blobs = rocksdict.Options(raw_mode=True)
    blobs.set_compression_type(rocksdict.DBCompressionType.none())
    blobs.set_target_file_size_base(256 << 20)
    logopts = rocksdict.Options(raw_mode=True)
    return opts, {"blobs": blobs, "log": logopts}


def _gen_prefix(gen: int) -> bytes:
    return b"g%08d/" % gen


def _etype_str(key) -> str:
    return ":".join(key)


def _le(arr: np.ndarray) -> np.ndarray:
    """C-contiguous and little-endian (0-d arrays stay 0-d)."""
    arr = np.asarray(arr)
    if not arr.flags.c_contiguous:
        arr = arr.copy(order="C")
    if arr.dtype.byteorder == ">" or (arr.dtype.byteorder == "=" and not np.little_endian):
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return arr


def _partition_arrays(data: PartitionData) -> Dict[str, np.ndarray]:
    """Flatten a PartitionData into named arrays (see the module docstring)."""
    out: Dict[str, np.ndarray] = {}
    for ntype, ids in data.node_ids.items():
        out[f"nodes/{ntype}"] = np.asarray(ids, dtype=np.int64)
    for ntype, feats in data.node_features.items():
        for name, arr in feats.items():
            out[f"nfeat/{ntype}/{name}"] = np.asarray(arr)
    for direction, adjs in (("in", data.in_adj), ("out", data.out_adj)):
        for key, adj in adjs.items():
            base = f"adj/{direction}/{_etype_str(key)}"
            out[f"{base}/indptr"] = np.asarray(adj.indptr, dtype=np.int64)
            out[f"{base}/indices"] = np.asarray(adj.indices, dtype=np.int64)
            out[f"{base}/halo_ids"] = np.asarray(adj.halo_ids, dtype=np.int64)
            out[f"{base}/eids"] = np.asarray(adj.eids, dtype=np.int64)
            if adj.weights is not None:
                out[f"{base}/weights"] = np.asarray(adj.weights, dtype=np.float32)
    for key, feats in data.edge_features.items():
        for name, arr in feats.items():
            out[f"efeat/{_etype_str(key)}/{name}"] = np.asarray(arr)
    return out


def _blob_items(gen: int, arrays: Dict[str, np.ndarray]) -> Iterator[Tuple[bytes, object]]:
    """(key, value) pairs of one generation, values as memoryviews (not copied yet)."""
    prefix = _gen_prefix(gen)
    manifest = {}
    for name, arr in arrays.items():
        if arr.dtype.kind not in "biuf" or arr.dtype.hasobject:
            raise ValueError(f"array {name!r}: unsupported dtype {arr.dtype}")
        arr = _le(arr)
        nbytes = arr.nbytes
        nchunks = (nbytes + CHUNK_BYTES - 1) // CHUNK_BYTES
        manifest[name] = {"dtype": arr.dtype.str, "shape": list(arr.shape), "chunks": nchunks}
        mv = memoryview(arr.reshape(-1).view(np.uint8)) if nbytes else None
        for c in range(nchunks):
            yield prefix + b"a/" + name.encode() + b"/%08d" % c, mv[c * CHUNK_BYTES:(c + 1) * CHUNK_BYTES]
    yield prefix + b"manifest", json.dumps({"arrays": manifest}).encode()


def _arrays_from_blobs(path: Path, gen: int, items: Iterable[Tuple[bytes, bytes]]) -> Dict[str, np.ndarray]:
    prefix = _gen_prefix(gen)
    manifest = None
    chunks: Dict[str, List[bytes]] = {}
    apfx = prefix + b"a/"
    for k, v in items:
        if k == prefix + b"manifest":
            manifest = json.loads(v)
        elif k.startswith(apfx):
            name, _, _ = k[len(apfx):].rpartition(b"/")
            chunks.setdefault(name.decode(), []).append(v)
    if manifest is None:
        raise ValueError(f"{path}: corrupt graphplat partition (generation {gen} has no manifest)")
    out = {}
    for name, m in manifest["arrays"].items():
        dtype = np.dtype(m["dtype"])
        shape = tuple(m["shape"])
        parts = chunks.get(name, [])
        if len(parts) != m["chunks"]:
            raise ValueError(f"{path}: corrupt graphplat partition (array {name!r} has "
                             f"{len(parts)} of {m['chunks']} chunks)")
        if not parts:
            arr = np.empty(shape, dtype=dtype)
        elif len(parts) == 1:
            arr = np.frombuffer(parts[0], dtype=dtype).reshape(shape)  # zero-copy, read-only
        else:
            buf = np.empty(sum(len(p) for p in parts), dtype=np.uint8)
            pos = 0
            for p in parts:
                buf[pos:pos + len(p)] = np.frombuffer(p, dtype=np.uint8)
                pos += len(p)
            arr = buf.view(dtype).reshape(shape)
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        arr.setflags(write=False)
        out[name] = arr
    return out


def _data_from_arrays(schema: GraphSchema, partition: int, num_partitions: int,
                      arrays: Dict[str, np.ndarray]) -> PartitionData:
    data = PartitionData(schema, partition, num_partitions)
    adj: Dict[Tuple[str, tuple], Dict[str, np.ndarray]] = {}
    for name, arr in arrays.items():
        parts = name.split("/")
        if parts[0] == "nodes":
            data.node_ids[parts[1]] = arr
        elif parts[0] == "nfeat":
            data.node_features.setdefault(parts[1], {})[parts[2]] = arr
        elif parts[0] == "adj":
            adj.setdefault((parts[1], tuple(parts[2].split(":"))), {})[parts[3]] = arr
        elif parts[0] == "efeat":
            data.edge_features.setdefault(tuple(parts[1].split(":")), {})[parts[2]] = arr
    for (direction, key), f in adj.items():
        a = AdjacencyData(f["indptr"], f["indices"], f["halo_ids"], f["eids"], f.get("weights"))
        (data.in_adj if direction == "in" else data.out_adj)[key] = a
    # Keep the schema's declaration order (dicts were filled in key order).
    data.node_ids = {nt: data.node_ids[nt] for nt in schema.ntypes if nt in data.node_ids}
    data.node_features = {nt: data.node_features.get(nt, {}) for nt in schema.ntypes
                          if nt in data.node_ids}
    order = [et.canonical for et in schema.edge_types]
    data.in_adj = {k: data.in_adj[k] for k in order if k in data.in_adj}
    data.out_adj = {k: data.out_adj[k] for k in order if k in data.out_adj}
    data.edge_features = {k: data.edge_features.get(k, {}) for k in order if k in data.in_adj}
    return data


# ----------------------------------------------------------------------------- log records


@dataclass
class LogRecord:
    """One online update. ``op``: ``add_nodes`` / ``add_edges`` / ``update_features``;
    ``type``: a node type name or a canonical edge type (tuple, or ``"src:rel:dst"`` which is
    turned into a tuple); ``arrays``: named numpy arrays (numeric dtypes, any shape)."""

    op: str
    type: Union[str, Tuple[str, str, str]]
    arrays: Dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.op not in LOG_OPS:
            raise ValueError(f"log record op must be one of {', '.join(LOG_OPS)}, got {self.op!r}")
        if isinstance(self.type, str) and self.type.count(":") == 2:
            self.type = tuple(self.type.split(":"))
        if isinstance(self.type, list):
            self.type = tuple(self.type)
        if not (isinstance(self.type, str) or (isinstance(self.type, tuple) and len(self.type) == 3
                                                and all(isinstance(t, str) for t in self.type))):
            raise ValueError(f"log record type must be a node type name or (src, rel, dst), got {self.type!r}")


_REC_VERSION = 1


def encode_record(rec: LogRecord) -> bytes:
    """Binary encoding: ``<BBH`` version, op index, type length; type (utf-8); ``<H`` number
    of arrays; per array ``<H`` name length, name, ``<B`` dtype-str length, dtype str
    (little-endian, e.g. ``<i8``), ``<B`` ndim, ``<q`` * ndim shape, raw bytes; then a
    ``<I`` CRC32 of everything before it."""
    tname = (rec.type if isinstance(rec.type, str) else ":".join(rec.type)).encode()
    parts = [struct.pack("<BBH", _REC_VERSION, LOG_OPS.index(rec.op), len(tname)), tname,
             struct.pack("<H", len(rec.arrays))]
    for name, arr in rec.arrays.items():
        arr = np.asarray(arr)
        if arr.dtype.kind not in "biuf":
            raise ValueError(f"log record array {name!r}: unsupported dtype {arr.dtype}")
        arr = _le(arr)
        bname = name.encode()
        dstr = arr.dtype.str.encode()
        parts += [struct.pack("<H", len(bname)), bname, struct.pack("<B", len(dstr)), dstr,
                  struct.pack("<B", arr.ndim), struct.pack(f"<{arr.ndim}q", *arr.shape),
                  arr.tobytes()]
    body = b"".join(parts)
    return body + struct.pack("<I", zlib.crc32(body))


def decode_record(buf: bytes) -> LogRecord:
    """Inverse of :func:`encode_record`; arrays are read-only views of ``buf``. Raises
    ValueError on a corrupt record."""
    mv = memoryview(buf)
    if len(mv) < 10 or struct.unpack_from("<I", mv, len(mv) - 4)[0] != zlib.crc32(mv[:-4]):
        raise ValueError("corrupt log record (bad checksum)")
    version, op, tlen = struct.unpack_from("<BBH", mv, 0)
    if version != _REC_VERSION or op >= len(LOG_OPS):
        raise ValueError(f"unsupported log record (version {version}, op {op})")
    pos = 4
    tname = bytes(mv[pos:pos + tlen]).decode()
    pos += tlen
    (n,) = struct.unpack_from("<H", mv, pos)
    pos += 2
    arrays = {}
    for _ in range(n):
        (nl,) = struct.unpack_from("<H", mv, pos)
        pos += 2
        name = bytes(mv[pos:pos + nl]).decode()
        pos += nl
        (dl,) = struct.unpack_from("<B", mv, pos)
        pos += 1
        dtype = np.dtype(bytes(mv[pos:pos + dl]).decode())
        pos += dl
        (ndim,) = struct.unpack_from("<B", mv, pos)
        pos += 1
        shape = struct.unpack_from(f"<{ndim}q", mv, pos)
        pos += 8 * ndim
        count = int(np.prod(shape)) if ndim else 1
        arr = np.frombuffer(buf, dtype=dtype, count=count, offset=pos).reshape(shape)
        pos += count * dtype.itemsize
        arrays[name] = arr if dtype.isnative else arr.astype(dtype.newbyteorder("="))
    if pos != len(mv) - 4:
        raise ValueError("corrupt log record (trailing bytes)")
    return LogRecord(LOG_OPS[op], tname, arrays)


# ----------------------------------------------------------------------------- PartitionStore


def _check_partition_dir(path: Path) -> None:
    if is_staging_name(path.parent):
        raise ValueError(f"{path}: belongs to the temporary directory of an unfinished or "
                         f"interrupted ingest, not to a graphplat store")
    if not path.exists():
        raise ValueError(f"{path}: no such graphplat partition (the path does not exist)")
    if not (path / "CURRENT").exists():
        raise ValueError(f"{path}: not a graphplat partition (not a RocksDB directory)")


class PartitionStore:
    """One partition's RocksDB: bulk blobs (current generation), metadata and write log.

    ``PartitionStore(path)`` opens an existing, complete partition for reading and writing
    (``read_only=True`` opens it without taking the DB lock, e.g. next to a running server).
    Use :meth:`create` (or :func:`write_partition`) to make a new one. Thread-safe for
    concurrent :meth:`append_log` calls. Use as a context manager or call :meth:`close`.
    """

    def __init__(self, path: PathLike, *, read_only: bool = False, accept_log_loss: bool = False,
                 _create: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._lock = threading.Lock()          # log sequence numbers
        self._compact_lock = threading.Lock()  # one compaction at a time
        if not _create:
            _check_partition_dir(self.path)
            cfs = rocksdict.Rdict.list_cf(str(self.path))
            if "blobs" not in cfs or "log" not in cfs:
                raise ValueError(f"{self.path}: not a graphplat partition (a RocksDB without "
                                 f"the blobs/log column families)")
            if not read_only:
                self._check_log(accept_log_loss)
        opts, cf_opts = _options(create=_create)
        access = rocksdict.AccessType.read_only() if read_only else rocksdict.AccessType.read_write()
        try:
            self._db = rocksdict.Rdict(str(self.path), opts, column_families=cf_opts, access_type=access)
        except Exception as e:  # rocksdict raises plain Exception
            if "LOCK" in str(e) or "lock" in str(e).lower():
                from graphplat.errors import StoreLocked

                store = self.path.parent
                raise StoreLocked(
                    f"{self.path}: another process holds the store's lock (a running graphplat "
                    f"serve, or an open_graph writer)",
                    f"read it beside that process with open_graph({str(store)!r}, "
                    f"read_only=True), or connect to its server with "
                    f"graphplat.connect(CLUSTER_FILE)") from None
            raise ValueError(f"{self.path}: cannot open graphplat partition: {e}") from None
        self._blobs = self._db.get_column_family("blobs")
        self._log = self._db.get_column_family("log")
        self._log_cf = self._db.get_column_family_handle("log")
        self._blobs_cf = self._db.get_column_family_handle("blobs")
        self._sync = rocksdict.WriteOptions()
        self._sync.sync = True
        self.partition = -1
        self.num_partitions = 0
        self.schema: Optional[GraphSchema] = None
        self.generation = -1
        self.compacted_through = -1
        self._next_seq = 0
        if not _create:
            try:
                self._load_meta()
            except BaseException:
                self.close()
                raise

    def _check_log(self, accept_loss: bool) -> None:
        """Before a read-write open (which rewrites the WAL): refuse a write log damaged
        before its end (:mod:`graphplat.storage.wal_check`) unless ``accept_loss``."""
        from graphplat.errors import LogCorruption
        from graphplat.storage.wal_check import check_wal

        with PartitionStore(self.path, read_only=True) as ro:
            recovered = ro.last_seq
        problem = check_wal(self.path, recovered)
        if problem is None:
            return
        if not accept_loss:
            raise LogCorruption(problem)
        log.error("%s; accepted the loss (--accept-log-loss)", problem)

    # ---- lifecycle

    @classmethod
    def create(cls, path: PathLike, data: PartitionData) -> "PartitionStore":
        """Create a new partition DB at ``path`` (which must not hold one) holding ``data``
        as generation 0 with an empty log. Returns the open store."""
        path = Path(path)
        if (path / "CURRENT").exists():
            raise ValueError(f"{path}: a partition database already exists here")
        path.mkdir(parents=True, exist_ok=True)
        st = cls(path, _create=True)
        try:
            st.partition, st.num_partitions, st.schema = data.partition, data.num_partitions, data.schema
            st._write_generation(0, data)
            info = {"format": PARTITION_FORMAT, "format_version": FORMAT_VERSION,
                    "partition": data.partition, "num_partitions": data.num_partitions}
            wb = rocksdict.WriteBatch(raw_mode=True)
            wb.put(_K_INFO, json.dumps(info).encode())
            wb.put(_K_SCHEMA, data.schema.to_yaml().encode())
            wb.put(_K_COMPACTED, b"-1")
            wb.put(_K_GEN, b"0")  # marks the partition complete
            st._db.write(wb, st._sync)
            st.generation = 0
            st._db.flush(True)
        except BaseException:
            st.close()
            raise
        return st

    def close(self) -> None:
        """Flush and close the DB (idempotent)."""
        db = getattr(self, "_db", None)
        if db is None:
            return
        for attr in ("_blobs", "_log"):
            cf = getattr(self, attr, None)
            if cf is not None:
                with contextlib.suppress(Exception):
                    cf.close()
                setattr(self, attr, None)
        self._log_cf = self._blobs_cf = None
        with contextlib.suppress(Exception):
            db.close()
        self._db = None

    def __enter__(self) -> "PartitionStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        with contextlib.suppress(Exception):
            self.close()

    def _check_open(self) -> None:
        if self._db is None:
            raise ValueError(f"{self.path}: partition store is closed")

    def _check_writable(self) -> None:
        self._check_open()
        if self.read_only:
            raise ValueError(f"{self.path}: partition store is open read-only")

    # ---- metadata

    def _load_meta(self) -> None:
        raw = self._db.get(_K_INFO)
        if raw is None:
            if self._db.get(_K_GEN) is None:
                raise ValueError(f"{self.path}: incomplete graphplat partition (its write did not finish)")
            raise ValueError(f"{self.path}: not a graphplat partition (no info key)")
        try:
            info = json.loads(raw)
        except ValueError:
            raise ValueError(f"{self.path}: not a graphplat partition (bad info key)") from None
        if not isinstance(info, dict) or info.get("format") != PARTITION_FORMAT:
            raise ValueError(f"{self.path}: not a graphplat partition (format {info!r})")
        _check_version(self.path, "the partition", info.get("format_version"))
        gen = self._db.get(_K_GEN)
        if gen is None:
            raise ValueError(f"{self.path}: incomplete graphplat partition (its write did not finish)")
        self.generation = int(gen)
        self.partition = int(info["partition"])
        self.num_partitions = int(info["num_partitions"])
        self.schema = GraphSchema.from_yaml(self._db[_K_SCHEMA].decode())
        self.compacted_through = int(self._db.get(_K_COMPACTED) or b"-1")
        last = self.compacted_through
        it = self._log.iter()
        it.seek_to_last()
        if it.valid() and it.key().startswith(_LOG_PREFIX):
            last = max(last, int(it.key()[len(_LOG_PREFIX):]))
        del it
        self._next_seq = last + 1
        if not self.read_only:
            self._drop_other_generations()

    def _drop_other_generations(self) -> None:
        cur = _gen_prefix(self.generation)
        nxt = _gen_prefix(self.generation + 1)
        it = self._blobs.iter()
        it.seek_to_first()
        has_before = it.valid() and it.key() < cur
        it.seek(nxt)
        has_after = it.valid()
        del it
        if has_before or has_after:
            log.info("%s: deleting blobs of generations other than %d", self.path, self.generation)
            wb = rocksdict.WriteBatch(raw_mode=True)
            if has_before:
                wb.delete_range(b"g", cur, self._blobs_cf)
            if has_after:
                wb.delete_range(nxt, b"h", self._blobs_cf)
            self._db.write(wb, self._sync)

    # ---- bulk data

    def _write_generation(self, gen: int, data: PartitionData) -> str:
        """Write generation ``gen``'s blobs; returns the method used ("sst" or "writebatch")."""
        arrays = _partition_arrays(data)
        items = sorted(_blob_items(gen, arrays), key=lambda kv: kv[0])
        sst = self.path / f"ingest-g{gen:08d}.sst"
        try:
            _, cf_opts = _options(create=True)
            writer = rocksdict.SstFileWriter(cf_opts["blobs"])
            writer.open(str(sst))
            for k, v in items:
                writer[k] = bytes(v)
            writer.finish()
            del writer
            iopts = rocksdict.IngestExternalFileOptions()
            iopts.set_move_files(True)
            self._blobs.ingest_external_file([str(sst)], iopts)
            return "sst"
        except Exception as e:  # pragma: no cover - fallback path
            log.warning("%s: SstFileWriter ingestion failed (%s); writing with WriteBatch", self.path, e)
            wb = rocksdict.WriteBatch(raw_mode=True)
            for k, v in items:
                wb.put(k, bytes(v), self._blobs_cf)
            self._db.write(wb, self._sync)
            return "writebatch"
        finally:
            with contextlib.suppress(FileNotFoundError):
                sst.unlink()

    def read(self) -> PartitionData:
        """The partition's bulk data (current generation; the log is not applied). Arrays
        are read-only; single-chunk arrays are zero-copy views of RocksDB's value bytes."""
        self._check_open()
        prefix = _gen_prefix(self.generation)
        ro = rocksdict.ReadOptions()
        ro.fill_cache(False)
        ro.set_iterate_upper_bound(_gen_prefix(self.generation + 1))
        items = self._blobs.items(from_key=prefix, read_opt=ro)
        arrays = _arrays_from_blobs(self.path, self.generation, items)
        return _data_from_arrays(self.schema, self.partition, self.num_partitions, arrays)

    # ---- write log

    @property
    def last_seq(self) -> int:
        """Sequence number of the last appended record (-1 when none ever was)."""
        return self._next_seq - 1

    def append_log(self, records: Union[LogRecord, Sequence[LogRecord]]) -> List[int]:
        """Append records atomically (one WriteBatch) and durably (synced WAL) before
        returning their sequence numbers (consecutive, increasing across calls)."""
        self._check_writable()
        if isinstance(records, LogRecord):
            records = [records]
        encoded = [encode_record(r) for r in records]
        if not encoded:
            return []
        with self._lock:
            first = self._next_seq
            wb = rocksdict.WriteBatch(raw_mode=True)
            for i, buf in enumerate(encoded):
                wb.put(_LOG_PREFIX + b"%016d" % (first + i), buf, self._log_cf)
            self._db.write(wb, self._sync)
            self._next_seq = first + len(encoded)
        return list(range(first, first + len(encoded)))

    def read_log(self, after_seq: int = -1) -> Iterator[Tuple[int, LogRecord]]:
        """Yield ``(seq, record)`` for every record with ``seq > after_seq``, in order."""
        self._check_open()
        start = _LOG_PREFIX + b"%016d" % max(after_seq + 1, 0)
        ro = rocksdict.ReadOptions()
        ro.set_iterate_upper_bound(b"log0")  # "0" follows "/"
        for k, v in self._log.items(from_key=start, read_opt=ro):
            yield int(k[len(_LOG_PREFIX):]), decode_record(v)

    def applied_ids(self) -> Optional[bytes]:
        """The applied-request-id table saved by the last :meth:`compact` (None when none)."""
        self._check_open()
        return self._db.get(_K_APPLIED)

    def compact(self, data: PartitionData, through_seq: Optional[int] = None,
                applied_ids: Optional[bytes] = None) -> int:
        """Replace the bulk data by ``data``, which must include every log record up to
        ``through_seq`` (default: the last record appended so far), and delete those
        records. Crash-safe: see the module docstring. Returns the new generation."""
        with self._compact_lock:
            return self._compact(data, through_seq, applied_ids)

    def _compact(self, data: PartitionData, through_seq: Optional[int],
                 applied_ids: Optional[bytes] = None) -> int:
        self._check_writable()
        if data.partition != self.partition or data.num_partitions != self.num_partitions:
            raise ValueError(f"{self.path}: compact() got partition {data.partition}/"
                             f"{data.num_partitions}, this is {self.partition}/{self.num_partitions}")
        if data.schema != self.schema:
            raise ValueError(f"{self.path}: compact() got data with a different schema")
        through = self.last_seq if through_seq is None else int(through_seq)
        if through > self.last_seq:
            raise ValueError(f"{self.path}: compact(through_seq={through}) but the last log "
                             f"record is {self.last_seq}")
        old = self.generation
        new = old + 1
        self._write_generation(new, data)
        wb = rocksdict.WriteBatch(raw_mode=True)
        wb.put(_K_GEN, b"%d" % new)
        wb.put(_K_COMPACTED, b"%d" % max(through, self.compacted_through))
        if applied_ids is not None:  # the request ids the folded records carried
            wb.put(_K_APPLIED, applied_ids)
        if through >= 0:
            wb.delete_range(_LOG_PREFIX, _LOG_PREFIX + b"%016d" % (through + 1), self._log_cf)
        self._db.write(wb, self._sync)
        self.generation = new
        self.compacted_through = max(through, self.compacted_through)
        wb = rocksdict.WriteBatch(raw_mode=True)
        wb.delete_range(_gen_prefix(old), _gen_prefix(new), self._blobs_cf)
        self._db.write(wb)
        with contextlib.suppress(Exception):
            self._blobs.compact_range(_gen_prefix(old), _gen_prefix(new))
        return new


def write_partition(path: PathLike, data: PartitionData) -> None:
    """Create the partition RocksDB ``path`` holding ``data`` (bulk write with
    SstFileWriter + ingest_external_file)."""
    PartitionStore.create(path, data).close()


def read_partition(path: PathLike) -> PartitionData:
    """Load a partition written by :func:`write_partition` (its current generation), with
    read-only arrays. Raises ValueError naming ``path`` when it is not a complete graphplat
    partition or has a newer format."""
    with PartitionStore(path, read_only=True) as st:
        return st.read()
