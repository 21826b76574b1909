"""Which partition owns each node: hash of the id by default, or an explicit assignment
(e.g. from METIS) recorded per node type."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict

import numpy as np

from graphplat import _core


@dataclass
class PartitionBook:
    """Maps (node type, id) to a partition.

    ``method="hash"``: partition = hash(id) mod P, needs no state. ``method="assigned"``:
    per node type, sorted ``ids`` with their ``parts`` (METIS or any user assignment); ids
    not in the assignment (added online) fall back to the hash.
    """

    num_partitions: int
    method: str = "hash"
    assigned: Dict[str, tuple] = field(default_factory=dict)  # ntype -> (sorted ids, parts)

    def __post_init__(self) -> None:
        if self.num_partitions < 1:
            raise ValueError(f"num_partitions must be >= 1, got {self.num_partitions}")
        if self.method not in ("hash", "assigned"):
            raise ValueError(f"partition method must be 'hash' or 'assigned', got {self.method!r}")

    def partition_of(self, ntype: str, ids: np.ndarray) -> np.ndarray:
        """int64 partition of every id."""
        ids = np.asarray(ids, dtype=np.int64)
        parts = _core.hash_partitions(ids.reshape(-1), self.num_partitions).reshape(ids.shape)
        if self.method == "assigned" and ntype in self.assigned:
            sorted_ids, sorted_parts = self.assigned[ntype]
            if len(sorted_ids):
                pos = np.searchsorted(sorted_ids, ids)
                pos_c = np.minimum(pos, len(sorted_ids) - 1)
                hit = sorted_ids[pos_c] == ids
                parts[hit] = sorted_parts[pos_c[hit]]
        return parts

    @staticmethod
    def from_assignment(num_partitions: int, assignment: Dict[str, tuple]) -> "PartitionBook":
        """A book from ``{ntype: (ids, parts)}`` (any order; validated)."""
        assigned = {}
        for ntype, (ids, parts) in assignment.items():
            ids = np.asarray(ids, dtype=np.int64)
            parts = np.asarray(parts, dtype=np.int64)
            if ids.shape != parts.shape:
                raise ValueError(f"assignment of {ntype!r}: {len(ids)} ids but {len(parts)} parts")
            if len(parts) and (parts.min() < 0 or parts.max() >= num_partitions):
                raise ValueError(f"assignment of {ntype!r} names a partition outside [0, {num_partitions})")
            order = np.argsort(ids, kind="stable")
            assigned[ntype] = (ids[order], parts[order])
        return PartitionBook(num_partitions, "assigned", assigned)

    def save(self, directory: Path) -> None:
        """Write ``partition_book.json`` (+ one ``.npz`` per assigned node type)."""
        directory = Path(directory)
        meta = {"num_partitions": self.num_partitions, "method": self.method,
                "assigned": sorted(self.assigned)}
        for ntype, (ids, parts) in self.assigned.items():
            np.savez(directory / f"partition_book.{ntype}.npz", ids=ids, parts=parts)
        (directory / "partition_book.json").write_text(json.dumps(meta, indent=2))

    @staticmethod
    def load(directory: Path) -> "PartitionBook":
        """Read a book written by :meth:`save`; ValueError if missing or malformed."""
        directory = Path(directory)
        path = directory / "partition_book.json"
        if not path.exists():
            raise ValueError(f"{directory} holds no partition_book.json: is it a graphplat store?")
        meta = json.loads(path.read_text())
        assigned = {}
        for ntype in meta.get("assigned", []):
            with np.load(directory / f"partition_book.{ntype}.npz") as z:
                assigned[ntype] = (z["ids"], z["parts"])
        return PartitionBook(int(meta["num_partitions"]), meta["method"], assigned)

    def split(self, ntype: str, ids: np.ndarray) -> Dict[int, np.ndarray]:
        """Positions of ``ids`` per partition (only partitions that get any), each in
        ascending position order."""
        if self.num_partitions == 1:
            return {0: np.arange(len(ids), dtype=np.int64)} if len(ids) else {}
        parts = None
        if self.method == "assigned" and ntype in self.assigned:
            parts = self.partition_of(ntype, ids)
        # a stable counting sort in the core (the hash is computed there too)
        order, bounds = _core.split_by_partition(ids, self.num_partitions, parts=parts)
        return {p: order[bounds[p]:bounds[p + 1]] for p in range(self.num_partitions)
                if bounds[p + 1] > bounds[p]}
