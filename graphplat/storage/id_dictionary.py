"""The per-node-type dictionary of a ``id_type: string`` node type: the user's string ids
and the int64 node ids the store uses for them.

Ingest numbers the distinct strings in sorted order, 0..n-1, so the same input gives the
same ids on any machine and no two strings share an id (a bijection, not a hash). Nodes
added online get the next numbers, in the order they are added. On disk (inside the store)::

    ids/<ntype>.parquet     one string column "id": row i is the string of node id i
    ids/<ntype>.added       strings added online, one JSON string per line (fsynced)

One writer appends to ``.added``: a LocalGraph opened writable, or, while the store is
served, the primary of partition 0 (``graphplat serve``; RemoteGraph clients ask it, see
:mod:`graphplat.storage.remote_ids`). Readers (read-only LocalGraphs, replicas) re-read the
file's new complete lines when they meet a string or id they do not know.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence, Union

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from graphplat.atomic import fsync_path

log = logging.getLogger(__name__)

__all__ = ["IdDictionary", "load_id_dictionaries", "write_id_dictionaries", "number_strings",
           "check_strings", "chunk_bounds"]


def number_strings(strings: np.ndarray) -> "tuple[np.ndarray, np.ndarray]":
    """``(sorted distinct strings, int64 id of each input string)`` (ids = ranks)."""
    uniq, codes = np.unique(np.asarray(strings, dtype=object).astype(str), return_inverse=True)
    return uniq.astype(object), codes.astype(np.int64)


def check_strings(ntype: str, ids) -> np.ndarray:
    """``ids`` as a 1-D object array of str; ValueError naming the first non-string."""
    arr = np.asarray(ids, dtype=object).reshape(-1)
    if len(arr) and pd.api.types.infer_dtype(arr, skipna=False) != "string":  # C speed
        bad = next(v for v in arr if not isinstance(v, str))
        raise ValueError(f"node type {ntype!r} has string ids, got {type(bad).__name__} {bad!r}")
    return arr


def chunk_bounds(strings: np.ndarray, budget: int) -> list:
    """Boundaries ``[0, ..., len(strings)]`` cutting ``strings`` into pieces of about
    ``budget`` bytes at most (4 bytes a char, the UTF-8 maximum, plus 8 of framing each), so
    a piece fits any message limit above ``2 * budget`` (one string longer than the
    budget still forms its own piece)."""
    if not len(strings):
        return [0, 0]
    cost = np.cumsum(np.fromiter(map(len, strings), np.int64, len(strings)) * 4 + 8)
    cuts = np.searchsorted(cost, np.arange(budget, cost[-1], budget), side="right")
    return [0] + sorted(set(cuts.tolist()) - {0, len(strings)}) + [len(strings)]


def _parse_lines(data: bytes, where) -> list:
    """The strings of complete ``.added`` lines in ``data`` (a line that is not JSON was
    torn by a crash before it was acknowledged: skipped with a warning)."""
    out = []
    for line in data.decode("utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s: ignoring a torn line", where)
    return out


class IdDictionary:
    """String id <-> int64 node id of one node type (see the module docstring).

    Args:
        ntype: the node type (for messages).
        strings: the strings of node ids 0..n-1, in id order (distinct).
        path: the ``ids/<ntype>.added`` file online additions live in (None: in memory).
        read_only: refuse additions (a store opened read-only); the file is still re-read
            for strings other writers added.
        offset: how many bytes of ``path`` are already in ``strings``.
    """

    def __init__(self, ntype: str, strings: Sequence[str], path: Optional[Path] = None,
                 read_only: bool = False, offset: int = 0):
        self.ntype = ntype
        self._table = np.asarray(list(strings), dtype=object).reshape(-1)
        self._index = pd.Index(self._table, dtype=object)
        if not self._index.is_unique:
            dup = self._index[self._index.duplicated()][0]
            raise ValueError(f"string id {dup!r} of node type {ntype!r} appears twice in its dictionary")
        self._added_path = path
        self._offset = int(offset)
        self.read_only = read_only

    def __len__(self) -> int:
        return len(self._table)

    def _extend(self, new: np.ndarray) -> None:
        """Append distinct new strings (ids ``len(self)``...) to the in-memory maps."""
        if len(new):
            self._table = np.concatenate([self._table, np.asarray(new, dtype=object)])
            self._index = self._index.append(pd.Index(new, dtype=object))

    def refresh(self) -> int:
        """Read strings another writer appended to the ``.added`` file since the last look
        (complete lines only). Returns how many were new; 0 for an in-memory dictionary."""
        if self._added_path is None:
            return 0
        try:
            with open(self._added_path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return 0
        end = data.rfind(b"\n") + 1  # a line still being written is read next time
        if end == 0:
            return 0
        new = _parse_lines(data[:end], self._added_path)
        self._offset += end
        self._extend(np.asarray(new, dtype=object))
        return len(new)

    def _known(self, arr: np.ndarray) -> np.ndarray:
        return self._index.get_indexer(arr).astype(np.int64) if len(arr) else np.zeros(0, np.int64)

    def to_internal(self, ids, *, missing: str = "raise") -> np.ndarray:
        """int64 node ids of the string ids ``ids`` (an array or list). ``missing="raise"``
        raises IndexError naming the unknown strings; ``"ignore"`` gives -1 for them.
        Unknown strings are looked up again after :meth:`refresh`."""
        arr = check_strings(self.ntype, ids)
        pos = self._known(arr)
        if (pos < 0).any():
            self.refresh()  # strings another writer added since
            pos = self._known(arr)
        if missing == "raise" and (pos < 0).any():
            unknown = arr[pos < 0]
            raise IndexError(f"{len(unknown)} unknown {self.ntype!r} id(s), e.g. "
                             f"{', '.join(repr(u) for u in unknown[:5])}")
        return pos

    def to_external(self, ids) -> np.ndarray:
        """The string ids (object array) of int64 node ids; IndexError for an id with no
        string."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) and ids.max() >= len(self._table):
            self.refresh()
        bad = (ids < 0) | (ids >= len(self._table))
        if bad.any():
            raise IndexError(f"{self.ntype!r} node id(s) {ids[bad][:5].tolist()} have no string id")
        return self._table[ids]

    def get_or_add(self, strings: Iterable[str]) -> np.ndarray:
        """int64 ids of ``strings``, giving unknown ones the next ids in order of first
        appearance (durable before returning when the dictionary belongs to a store).
        Repeating a call returns the same ids. ValueError on a read-only dictionary."""
        arr = check_strings(self.ntype, list(strings) if not isinstance(strings, np.ndarray) else strings)
        got = self.to_internal(arr, missing="ignore")
        if not (got < 0).any():
            return got
        if self.read_only:
            raise ValueError(f"cannot add string ids to {self.ntype!r}: this store was opened "
                             f"read-only; add string-id nodes through open_graph(store) or, while "
                             f"the store is served, graphplat.connect(cluster)")
        new = pd.unique(arr[got < 0]).astype(object)
        if self._added_path is not None:
            created = not self._added_path.exists()
            with open(self._added_path, "ab") as f:
                f.write("".join(json.dumps(s) + "\n" for s in new).encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
                self._offset = f.tell()
            if created:  # the new file's directory entry must survive a power loss too
                fsync_path(self._added_path.parent)
        self._extend(new)
        return self.to_internal(arr)

    def strings(self, start: int = 0, stop: Optional[int] = None) -> np.ndarray:
        """The string ids of node ids ``start..stop-1`` (default: all), in id order."""
        return self._table[start:stop]


def write_id_dictionaries(store: Path, strings: Dict[str, np.ndarray]) -> None:
    """Write ``ids/<ntype>.parquet`` for each string-id node type into ``store``."""
    if not strings:
        return
    (Path(store) / "ids").mkdir(exist_ok=True)
    for ntype, values in strings.items():
        pq.write_table(pa.table({"id": pa.array(list(values), pa.string())}),
                       Path(store) / "ids" / f"{ntype}.parquet")


def load_id_dictionaries(store: Union[str, os.PathLike], schema, *,
                         writable: bool = False) -> Dict[str, IdDictionary]:
    """The dictionaries of ``schema``'s string-id node types stored in ``store`` (with the
    online additions); ``writable`` lets :meth:`IdDictionary.get_or_add` append to the
    store (the caller must be its only writer: it cuts a line torn by a crash)."""
    out = {}
    for nt in schema.node_types:
        if nt.id_type != "string":
            continue
        base = Path(store) / "ids" / f"{nt.name}.parquet"
        strings = pq.read_table(base).column("id").to_pylist() if base.exists() else []
        added = base.with_suffix(".added")
        if writable:
            added.parent.mkdir(exist_ok=True)
            _cut_torn_tail(added)
        d = IdDictionary(nt.name, strings, added, read_only=not writable)
        d.refresh()
        out[nt.name] = d
    return out


def _cut_torn_tail(path: Path) -> None:
    """Truncate ``path`` after its last newline: a tail without one is a write killed
    before its fsync returned (never acknowledged), and the next append must not continue
    that line."""
    if not path.exists():
        return
    with open(path, "r+b") as f:
        data = f.read()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            log.warning("%s: cutting %d bytes of a torn last line", path, len(data) - end)
            f.truncate(end)
            f.flush()
            os.fsync(f.fileno())
