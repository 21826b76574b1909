"""LocalGraph: the embedded GraphService, every partition in this process."""
from __future__ import annotations

from typing import Sequence

from graphplat.schema import GraphSchema
from graphplat.storage.partition_book import PartitionBook
from graphplat.storage.partition_data import PartitionData
from graphplat.storage.partition_graph import PartitionGraph
from graphplat.storage.routed import RoutedGraph


class LocalGraph(RoutedGraph):
    """All partitions of a graph loaded into this process; no network.

    Build it from a store directory with :func:`graphplat.open_graph`, or from in-memory
    partitions with :meth:`from_partitions`.
    """

    @classmethod
    def from_partitions(cls, book: PartitionBook, parts: Sequence[PartitionData]) -> "LocalGraph":
        """A LocalGraph over ``parts`` (one PartitionData per partition of ``book``)."""
        if not parts:
            raise ValueError("at least one partition is needed")
        schema: GraphSchema = parts[0].schema
        ordered = sorted(parts, key=lambda d: d.partition)
        if [d.partition for d in ordered] != list(range(book.num_partitions)):
            raise ValueError(f"expected partitions 0..{book.num_partitions - 1}, got "
                             f"{[d.partition for d in ordered]}")
        return cls(schema, book, [PartitionGraph(d) for d in ordered])
