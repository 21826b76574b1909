"""LocalGraph: the embedded GraphService, every partition in this process."""
from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Sequence, Union

from graphplat.schema import GraphSchema
from graphplat.service import as_ids
from graphplat.storage.partition_book import PartitionBook
from graphplat.storage.partition_data import PartitionData
from graphplat.storage.partition_graph import PartitionGraph
from graphplat.storage.routed import RoutedGraph
from graphplat.storage.stitched import StitchedCSR, partition_graphs, partition_version


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
        self._stitched = {}  # canonical etype -> StitchedCSR (multi-partition fused sampling)

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
        dictionaries = load_id_dictionaries(info.path, info.schema, writable=not read_only)
        backends = []
        try:
            for k in range(info.num_partitions):
                backends.append(DurablePartition(store, k, replica=read_only,
                                                 accept_log_loss=accept_log_loss))
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

    def sample_multihop(self, etype, seeds, fanouts, *, strategy: str = "uniform",
                        replace: bool = False, seed: int = 0):
        """Every hop of in-neighbor sampling of a square edge type in one C++ call, when no
        partition has pending online writes: one partition samples its own CSR
        (``PartitionGraph.sample_multihop``), several a stitched CSR over all of them
        (:class:`~graphplat.storage.stitched.StitchedCSR`, built once). The same answer as
        hop-by-hop sampling. Returns ``[(nodes, num_dst, src, dst, eids), ...]`` (user ids),
        or None when the fast path does not apply (the caller then samples hop by hop)."""
        if len(self.backends) == 1:
            return self.backends[0].sample_multihop(etype, seeds, fanouts, strategy=strategy,
                                                    replace=replace, seed=seed)
        et = self.schema.edge_type(etype)
        graphs = partition_graphs(self.backends)
        if graphs is None or et.src != et.dst:
            return None
        key = et.canonical
        with ExitStack() as stack:
            for g in graphs:  # writes wait while the stitched CSR is checked and sampled
                stack.enter_context(g._lock)
            if any(g.in_adj[key].delta_size for g in graphs):
                return None
            st = self._stitched.get(key)
            if st is None or st.version != [partition_version(g, key, et.dst) for g in graphs]:
                st = self._stitched[key] = StitchedCSR(self.book, graphs, key, et.dst)
            return st.sample_multihop(as_ids(seeds, "seeds"), fanouts, strategy, replace, seed)

    def compact(self) -> None:
        """Fold every partition's write log into its bulk layout (stores opened with
        :meth:`open` only)."""
        for b in self.backends:
            if hasattr(b, "compact"):
                b.compact()

    def close(self) -> None:
        """Close the partitions' RocksDB handles."""
        for b in self.backends:
            if hasattr(b, "close"):
                b.close()


def open_graph(store: Union[str, Path], *, read_only: bool = False,
               accept_log_loss: bool = False) -> LocalGraph:
    """The embedded GraphService over a store written by ``graphplat ingest`` (see
    :meth:`LocalGraph.open`)."""
    return LocalGraph.open(store, read_only=read_only, accept_log_loss=accept_log_loss)
