"""numpy arrays <-> ``graphplat.common.Array`` messages (dtype name, shape, raw little-endian
bytes; proto/common.proto, shared by every service): the one array codec.

Decoding is zero-copy (``np.frombuffer`` over the message's bytes, so the array is
read-only) and validates everything a peer controls: the dtype must be on the whitelist,
the shape non-negative and bounded, and ``prod(shape) * itemsize`` must equal the byte
count. Anything else raises ValueError, which the server turns into INVALID_ARGUMENT.
"""
from __future__ import annotations

import json
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from graphplat import _core
from graphplat.buffers import put_rows
from graphplat.proto import common_pb2 as cpb
from graphplat.proto import graphplat_pb2 as pb
from graphplat.storage.partition_book import PartitionBook

#: dtypes that may travel in an Array (numpy names).
DTYPES: Tuple[str, ...] = ("bool", "int8", "uint8", "int16", "uint16", "int32", "uint32",
                           "int64", "uint64", "float16", "float32", "float64")
_DTYPES = {name: np.dtype(name).newbyteorder("<") for name in DTYPES}
MAX_NDIM = 8


def to_array(values, dtype=None) -> cpb.Array:
    """Encode an array (anything ``np.asarray`` accepts) as an Array message."""
    return fill_array(cpb.Array(), values, dtype)


def fill_array(msg: cpb.Array, values, dtype=None) -> cpb.Array:
    """Encode an array into the (empty) Array message ``msg`` in place; returns ``msg``.

    Filling a message that is already part of its response saves the deep copy protobuf makes
    when a finished sub-message is passed to a constructor (megabytes per feature batch).
    """
    arr = np.asarray(values, dtype=dtype)
    name = arr.dtype.name
    if name not in _DTYPES:
        raise ValueError(f"cannot send dtype {arr.dtype} over the wire; supported: {', '.join(DTYPES)}")
    if arr.ndim > MAX_NDIM:
        raise ValueError(f"arrays of more than {MAX_NDIM} dimensions cannot be sent, got {arr.ndim}")
    le = arr.astype(_DTYPES[name], copy=False)  # byte-swaps only on big-endian input
    msg.dtype = name
    msg.shape.extend(arr.shape)
    msg.data = np.ascontiguousarray(le).tobytes()
    return msg


def from_array(msg: cpb.Array, *, name: str = "array", copy: bool = False) -> np.ndarray:
    """Decode an Array message; ValueError naming ``name`` when malformed.

    Without ``copy`` the result is a read-only view of the message's bytes.
    """
    dt = _DTYPES.get(msg.dtype)
    if dt is None:
        raise ValueError(f"{name}: unsupported dtype {msg.dtype!r}; supported: {', '.join(DTYPES)}")
    shape = tuple(int(s) for s in msg.shape)
    if len(shape) > MAX_NDIM:
        raise ValueError(f"{name}: {len(shape)} dimensions (at most {MAX_NDIM})")
    if any(s < 0 for s in shape):
        raise ValueError(f"{name}: negative dimension in shape {shape}")
    count = 1
    for s in shape:
        count *= s  # Python ints: no overflow
    data = msg.data
    if count * dt.itemsize != len(data):
        raise ValueError(f"{name}: shape {shape} of {msg.dtype} needs {count * dt.itemsize} bytes, "
                         f"got {len(data)}")
    arr = np.frombuffer(data, dtype=dt, count=count).reshape(shape)
    if dt.kind == "b" and count and arr.view(np.uint8).max() > 1:
        raise ValueError(f"{name}: bool array holds bytes other than 0 and 1")
    if not arr.dtype.isnative:  # big-endian host: swap into a native copy
        return arr.astype(arr.dtype.newbyteorder("="))
    return arr.copy() if copy else arr


def optional_array(msg, field: str, *, name: Optional[str] = None, copy: bool = False) -> Optional[np.ndarray]:
    """Decode ``msg.<field>`` if it is set, else None."""
    if not msg.HasField(field):
        return None
    return from_array(getattr(msg, field), name=name or field, copy=copy)


def ids_from(msg: cpb.Array, name: str = "ids") -> np.ndarray:
    """Decode a 1-D integer id array as int64 (ValueError for anything else)."""
    arr = from_array(msg, name=name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of int64 ids, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer ids, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def to_named(arrays: Mapping[str, np.ndarray]) -> list:
    """``{name: array}`` -> list of NamedArray messages (order kept)."""
    return [cpb.NamedArray(name=k, array=to_array(v)) for k, v in arrays.items()]


def fill_named(field, arrays: Mapping[str, np.ndarray]) -> None:
    """Append ``{name: array}`` to a repeated NamedArray ``field`` of a message, encoding in
    place (see :func:`fill_array`)."""
    for k, v in arrays.items():
        item = field.add()
        item.name = k
        fill_array(item.array, v)


def from_named(items: Iterable[cpb.NamedArray], *, copy: bool = False) -> Dict[str, np.ndarray]:
    """List of NamedArray messages -> ``{name: array}``; ValueError on repeated names."""
    out: Dict[str, np.ndarray] = {}
    for item in items:
        if item.name in out:
            raise ValueError(f"array {item.name!r} given twice")
        out[item.name] = from_array(item.array, name=item.name, copy=copy)
    return out


def etype_msg(key: Sequence[str]) -> cpb.EdgeType:
    """(src, relation, dst) -> EdgeType message."""
    src, rel, dst = key
    return cpb.EdgeType(src=src, relation=rel, dst=dst)


def etype_key(msg: cpb.EdgeType) -> Tuple[str, str, str]:
    """EdgeType message -> (src, relation, dst)."""
    return (msg.src, msg.relation, msg.dst)


def book_to_msg(book: PartitionBook) -> pb.PartitionBookMsg:
    """A PartitionBook as a message (assigned ids travel as arrays)."""
    msg = pb.PartitionBookMsg(num_partitions=book.num_partitions, method=book.method)
    for ntype, (ids, parts) in sorted(book.assigned.items()):
        msg.assigned.add(ntype=ntype, ids=to_array(np.asarray(ids, np.int64)),
                         parts=to_array(np.asarray(parts, np.int64)))
    return msg


def book_from_msg(msg: pb.PartitionBookMsg) -> PartitionBook:
    """Inverse of :func:`book_to_msg`."""
    assigned = {a.ntype: (from_array(a.ids, name="book ids"),
                          from_array(a.parts, name="book parts")) for a in msg.assigned}
    if msg.method == "assigned":
        return PartitionBook.from_assignment(msg.num_partitions, assigned)
    return PartitionBook(msg.num_partitions, msg.method or "hash")


# Raw answers (node features, sampled neighbors): a JSON header naming each array's dtype
# and shape, then the arrays' bytes back to back, each starting on a 64-byte boundary. No
# protobuf: the server writes the answer's arrays straight into the bytes it sends
# (:func:`raw_answer`), the client reads them in place (np.frombuffer).
_RAW_MAGIC = b"GPRAW001"
#: The gRPC service whose methods answer raw bytes (requests are the protobuf ones).
RAW_SERVICE_NAME = "graphplat.v1.GraphPartitionRaw"
_RAW_ALIGN = 64


def _aligned(n: int) -> int:
    return -(-n // _RAW_ALIGN) * _RAW_ALIGN


def raw_answer(specs: Sequence[Tuple[str, object, Sequence[int]]],
               buffer: Optional[Callable[[int], np.ndarray]] = None) -> Tuple[object, Dict[str, np.ndarray]]:
    """An empty raw answer for arrays ``(name, dtype, shape)``: ``(data, views)`` where
    ``views[name]`` is a writable array of that dtype and shape inside ``data``. Fill every
    view, then send ``data`` (and drop the views): the arrays are written once, in place.
    ``data`` is ``bytes`` (what gRPC sends), or with ``buffer`` (``nbytes -> writable uint8
    array``, e.g. a transport's recycled buffers) that array. ValueError for a dtype that
    cannot travel (see :data:`DTYPES`)."""
    metas, offset = [], 0
    for name, dtype, shape in specs:
        dt = np.dtype(dtype)
        if dt.name not in _DTYPES:
            raise ValueError(f"cannot send dtype {dt} over the wire; supported: {', '.join(DTYPES)}")
        shape = [int(d) for d in shape]
        metas.append([name, dt.name, shape, offset])
        offset += _aligned(int(np.prod(shape, dtype=np.int64)) * dt.itemsize)
    head = json.dumps(metas).encode()
    start = _aligned(16 + len(head))
    if buffer is None:
        data, buf = _core.bytes_buffer(start + offset, zero=False)
    else:
        data = buf = buffer(start + offset)
    buf[:start] = 0  # header padding; then the header itself
    buf[:8] = np.frombuffer(_RAW_MAGIC, np.uint8)
    buf[8:16] = np.frombuffer(len(head).to_bytes(8, "little"), np.uint8)
    buf[16:16 + len(head)] = np.frombuffer(head, np.uint8)
    views: Dict[str, np.ndarray] = {}
    for name, dtype, shape, off in metas:
        nbytes = int(np.prod(shape, dtype=np.int64)) * _DTYPES[dtype].itemsize
        buf[start + off + nbytes:start + off + _aligned(nbytes)] = 0  # alignment gap
        views[name] = buf[start + off:start + off + nbytes].view(_DTYPES[dtype]).reshape(shape)
    return data, views


def pack_raw(arrays: Mapping[str, np.ndarray], buffer: Optional[Callable[[int], np.ndarray]] = None):
    """``{name: array}`` as one raw answer (see :func:`unpack_raw`; ``buffer``: see
    :func:`raw_answer`)."""
    data, views = raw_answer([(name, arr.dtype, arr.shape) for name, arr in arrays.items()], buffer)
    for name, arr in arrays.items():
        views[name][...] = arr
    return data


def _raw_header(head: bytes, size: int) -> int:
    """Header length of a raw answer of ``size`` bytes starting with ``head`` (its first 16)."""
    if size < 16 or head[:8] != _RAW_MAGIC:
        raise ValueError("not a graphplat raw answer")
    hlen = int.from_bytes(head[8:16], "little")
    if 16 + hlen > size:
        raise ValueError("raw answer: header runs past the end")
    return hlen


def _raw_arrays(header: bytes, hlen: int, size: int) -> List[Tuple[str, np.dtype, tuple, int, int]]:
    """``(name, dtype, shape, byte offset, byte count)`` of each array of a raw answer of
    ``size`` bytes, in answer order; ValueError when the header is malformed."""
    try:
        metas = json.loads(header)
    except ValueError:
        raise ValueError("raw answer: malformed header") from None
    start = _aligned(16 + hlen)
    arrays, end = [], start
    for name, dtype, shape, off in metas:
        dt = _DTYPES.get(dtype)
        if dt is None or any(int(s) < 0 for s in shape) or len(shape) > MAX_NDIM:
            raise ValueError(f"raw answer: bad dtype or shape for {name!r}")
        nbytes = (int(np.prod(shape, dtype=object)) if shape else 1) * dt.itemsize
        if off < 0 or start + off < end or start + off + nbytes > size:
            raise ValueError(f"raw answer: {name!r} overlaps another array or runs past the end")
        arrays.append((name, dt, tuple(int(d) for d in shape), start + off, nbytes))
        end = start + off + nbytes
    return arrays


def unpack_raw(data) -> Dict[str, np.ndarray]:
    """Read-only array views into a raw answer (bytes, or a read-only memoryview of
    bytes); ValueError when it is malformed."""
    hlen = _raw_header(bytes(data[:16]), len(data))
    out: Dict[str, np.ndarray] = {}
    for name, dt, shape, at, nbytes in _raw_arrays(bytes(data[16:16 + hlen]), hlen, len(data)):
        arr = np.frombuffer(data, dtype=dt, count=nbytes // dt.itemsize, offset=at).reshape(shape)
        out[name] = arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))
    return out


class BytesStream:
    """A raw answer already in memory, read like a bulk carrier's AnswerStream
    (``read``, ``skip``, ``read_rows``, ``remaining``): the gRPC path of
    :func:`read_raw_rows`."""

    def __init__(self, data):
        self._data = memoryview(data).cast("B")
        self._at = 0
        self.remaining = len(self._data)

    def _take(self, n: int) -> memoryview:
        if n < 0 or n > self.remaining:
            raise ValueError(f"raw answer: reading {n} bytes with {self.remaining} left")
        view = self._data[self._at:self._at + n]
        self._at += n
        self.remaining -= n
        return view

    def read(self, n: int) -> bytes:
        return bytes(self._take(n))

    def skip(self, n: int) -> None:
        self._take(n)

    def read_rows(self, out: np.ndarray, rows: np.ndarray) -> None:
        row_bytes = out.nbytes // len(out) if len(out) else 0
        rows_in = np.frombuffer(self._take(len(rows) * row_bytes), dtype=out.dtype)
        put_rows(rows_in.reshape((len(rows),) + out.shape[1:]), rows, out)


def read_raw_rows(stream, out: Mapping[str, np.ndarray], rows: np.ndarray,
                  convert: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> None:
    """Reads a raw answer of one row per entry of ``rows`` from ``stream`` (a bulk
    AnswerStream, or a :class:`BytesStream`) and writes array ``name`` into
    ``out[name][rows]``: straight from the stream when its dtype and row shape are
    ``out[name]``'s, else converted (by ``convert(array)`` first when given, then cast).
    ValueError when the answer is malformed, lacks one of ``out``'s arrays or has rows of
    another shape. Arrays of the answer that ``out`` does not name are skipped; whatever
    follows the last array read is left to the caller (the bulk channel drains it)."""
    size = stream.remaining
    head = stream.read(16)
    hlen = _raw_header(head, size)
    arrays = _raw_arrays(stream.read(hlen), hlen, size)
    missing = set(out) - {a[0] for a in arrays}
    if missing:
        raise ValueError(f"raw answer lacks {sorted(missing)}")
    at = 16 + hlen
    for name, dt, shape, start, nbytes in arrays:
        stream.skip(start - at)
        at = start + nbytes
        target = out.get(name)
        if target is None:
            stream.skip(nbytes)
            continue
        if len(shape) != target.ndim or shape[0] != len(rows) or shape[1:] != target.shape[1:]:
            raise ValueError(f"raw answer: {name!r} has shape {shape}, expected "
                             f"{(len(rows),) + target.shape[1:]}")
        if dt == target.dtype and dt.isnative:
            stream.read_rows(target, rows)
        else:
            got = np.frombuffer(stream.read(nbytes), dtype=dt).reshape(shape)
            if convert is not None:
                got = convert(got)
            put_rows(got, rows, target)


# ---------------------------------------------------------------------------- topology
def topology_chunks(seq: int, partition: int, num_partitions: int,
                    arrays: Sequence[Tuple[str, np.ndarray]], chunk_bytes: int):
    """The TopologyChunk messages of ``arrays`` (key, array) at write-log ``seq``: first the
    layout, then each array's bytes in chunks of ``chunk_bytes``."""
    yield pb.TopologyChunk(seq=int(seq), partition=int(partition), num_partitions=int(num_partitions),
                           layout=[pb.TopologyArray(key=k, dtype=a.dtype.str, shape=list(a.shape))
                                   for k, a in arrays])
    for index, (_, arr) in enumerate(arrays):
        raw = memoryview(np.ascontiguousarray(arr)).cast("B")
        for start in range(0, len(raw), chunk_bytes):
            yield pb.TopologyChunk(index=index, offset=start, data=bytes(raw[start:start + chunk_bytes]))


def read_topology(chunks: Iterable[pb.TopologyChunk], max_bytes: Optional[int] = None
                  ) -> Tuple[pb.TopologyChunk, Dict[str, np.ndarray]]:
    """The arrays a Topology stream carries, by key, and its first chunk (``seq``,
    ``partition``, ``num_partitions``). Copies each chunk into place as it arrives (peak
    memory: the arrays plus one chunk). ValueError when the stream is malformed or short, or
    (before allocating anything) when the arrays need more than ``max_bytes``."""
    it = iter(chunks)
    head = next(it, None)
    if head is None or not head.layout:
        raise ValueError("Topology answer without a layout")
    specs = []
    for a in head.layout:
        try:
            dt = np.dtype(a.dtype)
        except TypeError:
            dt = None
        if dt is None or dt.name not in _DTYPES or len(a.shape) > MAX_NDIM or any(d < 0 for d in a.shape):
            raise ValueError(f"Topology array {a.key!r}: unsupported dtype {a.dtype!r} or shape {list(a.shape)}")
        specs.append((a.key, dt, tuple(a.shape)))
    need = sum(int(np.prod(shape, dtype=np.float64)) * dt.itemsize for _, dt, shape in specs)
    if max_bytes is not None and need > max_bytes:
        raise ValueError(f"the partition's topology needs {need / 2**30:.2f} GiB, over the "
                         f"{max_bytes / 2**30:.2f} GiB allowed for a copy")
    keys, arrays, views = [], [], []
    for key, dt, shape in specs:
        arr = np.empty(shape, dtype=dt)
        keys.append(key)
        arrays.append(arr)
        views.append(arr.reshape(-1).view(np.uint8))
    filled = [0] * len(arrays)
    for c in it:
        if not 0 <= c.index < len(arrays) or c.offset != filled[c.index] \
                or c.offset + len(c.data) > len(views[c.index]):
            raise ValueError(f"Topology chunk out of place (array {c.index}, offset {c.offset})")
        views[c.index][c.offset:c.offset + len(c.data)] = np.frombuffer(c.data, np.uint8)
        filled[c.index] += len(c.data)
    short = [k for k, n, v in zip(keys, filled, views) if n != len(v)]
    if short:
        raise ValueError(f"Topology answer ended early (incomplete: {', '.join(short)})")
    for arr in arrays:
        arr.setflags(write=False)
    return head, dict(zip(keys, arrays))
