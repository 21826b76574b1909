"""The per-node-type dictionary of a ``id_type: string`` node type: the user's string ids
and the int64 node ids the store uses for them.

Ingest numbers the distinct strings in sorted order, 0..n-1, so the same input gives the
same ids on any machine and no two strings share an id (a bijection, not a hash). Nodes
added online get the next numbers, in the order they are added. On disk (inside the store)::

    ids/<ntype>.parquet     one string column "id": row i is the string of node id i
    ids/<ntype>.added       strings added online, one JSON string per line (fsynced)
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

log = logging.getLogger(__name__)

__all__ = ["IdDictionary", "load_id_dictionaries", "write_id_dictionaries", "number_strings"]


def number_strings(strings: np.ndarray) -> "tuple[np.ndarray, np.ndarray]":
    """``(sorted distinct strings, int64 id of each input string)`` (ids = ranks)."""
    uniq, codes = np.unique(np.asarray(strings, dtype=object).astype(str), return_inverse=True)
    return uniq.astype(object), codes.astype(np.int64)


class IdDictionary:
    """String id <-> int64 node id of one node type (see the module docstring).

    Args:
        ntype: the node type (for messages).
        strings: the strings of node ids 0..n-1, in id order (distinct).
        path: the ``ids/<ntype>.added`` file online additions are appended to (None: in
            memory only).
        read_only: refuse additions (a store opened read-only, a RemoteGraph's copy).
    """

    def __init__(self, ntype: str, strings: Sequence[str], path: Optional[Path] = None,
                 read_only: bool = False):
        self.ntype = ntype
        self._strings = list(np.asarray(strings, dtype=object))
        self._index = pd.Index(self._strings, dtype=object)
        if not self._index.is_unique:
            dup = self._index[self._index.duplicated()][0]
            raise ValueError(f"string id {dup!r} of node type {ntype!r} appears twice in its dictionary")
        self._added_path = path
        self.read_only = read_only

    def __len__(self) -> int:
        return len(self._strings)

    def to_internal(self, ids, *, missing: str = "raise") -> np.ndarray:
        """int64 node ids of the string ids ``ids`` (an array or list). ``missing="raise"``
        raises IndexError naming the unknown strings; ``"ignore"`` gives -1 for them."""
        arr = np.asarray(ids, dtype=object).reshape(-1)
        bad_type = [v for v in arr[:1000] if not isinstance(v, str)]
        if bad_type:
            raise ValueError(f"node type {self.ntype!r} has string ids, got {type(bad_type[0]).__name__} "
                             f"{bad_type[0]!r}")
        pos = self._index.get_indexer(arr).astype(np.int64) if len(arr) else np.zeros(0, np.int64)
        if missing == "raise" and (pos < 0).any():
            unknown = arr[pos < 0]
            raise IndexError(f"{len(unknown)} unknown {self.ntype!r} id(s), e.g. "
                             f"{', '.join(repr(u) for u in unknown[:5])}")
        return pos

    def to_external(self, ids) -> np.ndarray:
        """The string ids (object array) of int64 node ids; IndexError for an id with no
        string."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        bad = (ids < 0) | (ids >= len(self._strings))
        if bad.any():
            raise IndexError(f"{self.ntype!r} node id(s) {ids[bad][:5].tolist()} have no string id")
        table = np.asarray(self._strings, dtype=object)
        return table[ids]

    def add(self, strings: Iterable[str]) -> np.ndarray:
        """Give new strings the next ids (durable before returning when the dictionary
        belongs to a store). Returns their int64 ids; ValueError for a known or repeated
        string."""
        if self.read_only:
            raise ValueError(f"cannot add string ids to {self.ntype!r}: this dictionary is read-only "
                             f"(a RemoteGraph or a read-only store); add string-id nodes through "
                             f"open_graph(store) or re-ingest")
        new = [s for s in np.asarray(list(strings), dtype=object).reshape(-1)]
        if any(not isinstance(s, str) for s in new):
            raise ValueError(f"string ids of {self.ntype!r} must be str")
        if len(set(new)) != len(new):
            raise ValueError(f"string ids added to {self.ntype!r} must be distinct")
        known = self.to_internal(new, missing="ignore") >= 0
        if known.any():
            raise ValueError(f"{self.ntype!r} string ids already present: "
                             f"{[s for s, k in zip(new, known) if k][:5]}")
        if self._added_path is not None and new:
            with open(self._added_path, "a", encoding="utf-8") as f:
                f.write("".join(json.dumps(s) + "\n" for s in new))
                f.flush()
                os.fsync(f.fileno())
        start = len(self._strings)
        self._strings.extend(new)
        self._index = self._index.append(pd.Index(new, dtype=object))
        return np.arange(start, start + len(new), dtype=np.int64)

    def strings(self) -> np.ndarray:
        """Every string id, in node id order (object array)."""
        return np.asarray(self._strings, dtype=object)


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
    online additions); ``writable`` lets :meth:`IdDictionary.add` append to the store."""
    out = {}
    for nt in schema.node_types:
        if nt.id_type != "string":
            continue
        base = Path(store) / "ids" / f"{nt.name}.parquet"
        strings = pq.read_table(base).column("id").to_pylist() if base.exists() else []
        added = base.with_suffix(".added")
        if added.exists():
            lines = added.read_text(encoding="utf-8").splitlines()
            # a torn last line (killed mid-append) was never acknowledged: drop it
            for line in lines:
                try:
                    strings.append(json.loads(line))
                except json.JSONDecodeError:
                    log.warning("%s: ignoring a torn line", added)
        out[nt.name] = IdDictionary(nt.name, strings, added if writable else None, read_only=not writable)
    return out
