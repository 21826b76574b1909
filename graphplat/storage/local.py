"""LocalGraph: the embedded GraphService, every partition in this process."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

from graphplat.schema import GraphSchema
from graphplat.storage.backend import DURABLE
from graphplat.storage.partition_book import PartitionBook
from graphplat.storage.partition_data import PartitionData
from graphplat.storage.partition_graph import PartitionGraph
from graphplat.storage.routed import RoutedGraph


class LocalGraph(RoutedGraph):
    """All partitions of a graph loaded into this process; no network.

    :meth:`open` (or :func:`graphplat.open_graph`) loads a store directory: writes are then
    durable exactly as on a graph server (logged to the partition's RocksDB with a synced
    write before they are applied). :meth:`from_partitions` wraps in-memory partitions
    (writes stay in memory).
    """

    def __init__(self, schema: GraphSchema, book: PartitionBook, backends: Sequence,
                 id_dictionaries=None):
        super().__init__(schema, book, backends, id_dictionaries)

    @classmethod
    def open(cls, store: Union[str, Path], *, read_only: bool = False,
             accept_log_loss: bool = False) -> "LocalGraph":
        """Load every partition of ``store``, replaying its write log.

        ``read_only`` opens the RocksDB files without the writer lock (writes are then
        refused), so it can run beside graph servers on the same store. A write log damaged
        before its end raises LogCorruption unless ``accept_log_loss``.
        """
        from graphplat.storage.durable import DurablePartition
        from graphplat.storage.id_dictionary import load_id_dictionaries
        from graphplat.storage.store import open_store

        info = open_store(store)
        backends = []
        try:
            for k in range(info.num_partitions):
                backends.append(DurablePartition(store, k, replica=read_only,
                                                 accept_log_loss=accept_log_loss))
            # after the partitions' writer locks: no server appends to the dictionaries now
            dictionaries = load_id_dictionaries(info.path, info.schema, writable=not read_only)
        except BaseException:
            for b in backends:
                b.close()
            raise
        return cls(info.schema, info.book, backends, dictionaries)

    @classmethod
    def from_partitions(cls, book: PartitionBook, parts: Sequence[PartitionData],
                        id_dictionaries=None) -> "LocalGraph":
        """A LocalGraph over ``parts`` (one PartitionData per partition of ``book``) and the
        string-id dictionaries (ntype -> IdDictionary) of its ``id_type: string`` types."""
        if not parts:
            raise ValueError("at least one partition is needed")
        schema: GraphSchema = parts[0].schema
        ordered = sorted(parts, key=lambda d: d.partition)
        if [d.partition for d in ordered] != list(range(book.num_partitions)):
            raise ValueError(f"expected partitions 0..{book.num_partitions - 1}, got "
                             f"{[d.partition for d in ordered]}")
        return cls(schema, book, [PartitionGraph(d) for d in ordered], id_dictionaries)

    def info(self) -> list:
        """The Info of every partition (counts, role, applied write-log seq), in order, as
        RemoteGraph.info answers it (an ``InfoResponse`` each)."""
        from graphplat.proto import graphplat_pb2 as pb

        out = []
        for p, b in enumerate(self.backends):
            durable = DURABLE in b.capabilities
            replica = bool(b.replica) if durable else False
            out.append(pb.InfoResponse(
                partition=p, num_partitions=self.book.num_partitions,
                num_nodes=[pb.Count(key=nt.name, value=b.num_nodes(nt.name)) for nt in self.schema.node_types],
                num_edges=[pb.Count(key=et.canonical_str, value=b.num_edges(et.canonical))
                           for et in self.schema.edge_types],
                writable=not replica, applied_seq=b.applied_seq if durable else -1,
                role="replica" if replica else "primary"))
        return out

    def compact(self) -> list:
        """Fold every partition's write log into its bulk layout; returns the last folded
        log seq of each partition (-1 for in-memory partitions, which have no log)."""
        return [b.compact() if DURABLE in b.capabilities else -1 for b in self.backends]

    def close(self) -> None:
        """Close the partitions' RocksDB handles."""
        for b in self.backends:
            if DURABLE in b.capabilities:
                b.close()


def open_graph(store: Union[str, Path], *, read_only: bool = False,
               accept_log_loss: bool = False) -> LocalGraph:
    """The embedded GraphService over a store written by ``graphplat ingest`` (see
    :meth:`LocalGraph.open`)."""
    return LocalGraph.open(store, read_only=read_only, accept_log_loss=accept_log_loss)
