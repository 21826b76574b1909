"""A whole graph as numpy arrays, and the two ways to use it: an in-memory LocalGraph or a
partition store on disk.

Dataset readers, synthetic generators and ``graphplat ingest`` all end with a
:class:`GraphArrays`; partitioning and writing live only here.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import numpy as np
from tqdm import tqdm

from graphplat.schema import GraphSchema
from graphplat.service import as_ids
from graphplat.typing import Canonical

log = logging.getLogger(__name__)

#: Seconds to sleep after writing each partition (tests use it to kill a write mid-way).


@dataclass
class GraphArrays:
    """A validated-on-use heterogeneous graph held as arrays.

    ``nodes[ntype]``: distinct int64 ids; ``node_features[ntype][name]``: rows aligned with
    them; ``edges[(src, rel, dst)] = (src_ids, dst_ids)``; ``edge_weights`` and
    ``edge_features`` aligned with the edges of their type. Every schema type may be absent
    (no nodes / no edges).

    Edges are given as listed by the user: an ``undirected`` type's pairs once each (the
    mirrored ``dst -> src`` edges are added here, self-loops once), and nothing for a
    derived reverse type (built here from its forward type, see ``EdgeType.reverse``).
    """

    schema: GraphSchema
    nodes: Dict[str, np.ndarray]
    node_features: Dict[str, Dict[str, np.ndarray]] = field(default_factory=dict)
    edges: Dict[Canonical, Tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    edge_weights: Dict[Canonical, np.ndarray] = field(default_factory=dict)
    edge_features: Dict[Canonical, Dict[str, np.ndarray]] = field(default_factory=dict)
    #: ntype -> the user's string ids of an ``id_type: string`` type, in node id order
    #: (node ``i`` is ``id_strings[ntype][i]``)
    id_strings: Dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.edges = {self.schema.edge_type(k).canonical: v for k, v in self.edges.items()}
        self.edge_weights = {self.schema.edge_type(k).canonical: v for k, v in self.edge_weights.items()}
        self.edge_features = {self.schema.edge_type(k).canonical: v for k, v in self.edge_features.items()}
        for nt in self.schema.node_types:
            ids = np.ascontiguousarray(as_ids(self.nodes.get(nt.name, np.zeros(0, np.int64)),
                                              f"node ids of {nt.name!r}"))
            self.nodes[nt.name] = ids
            self.node_features[nt.name] = nt.coerce_features(self.node_features.get(nt.name, {}),
                                                             len(ids))
        for nt in self.schema.node_types:
            if nt.id_type == "string":
                strings = np.asarray(self.id_strings.get(nt.name, []), dtype=object)
                ids = self.nodes[nt.name]
                if len(ids) and (ids.min() < 0 or ids.max() >= len(strings)):
                    raise ValueError(f"node type {nt.name!r} has string ids: its node ids must be "
                                     f"0..{len(strings) - 1}, positions in id_strings")
                self.id_strings[nt.name] = strings
        self._mirror_edges()
        for et in self.schema.edge_types:
            key = et.canonical
            src, dst = self.edges.get(key, (np.zeros(0, np.int64), np.zeros(0, np.int64)))
            src = np.ascontiguousarray(as_ids(src, f"source ids of {key}"))
            dst = np.ascontiguousarray(as_ids(dst, f"destination ids of {key}"))
            if src.shape != dst.shape or src.ndim != 1:
                raise ValueError(f"edge type {key}: {src.shape} sources but {dst.shape} destinations")
            self.edges[key] = (src, dst)
            if et.weighted:
                w = self.edge_weights.get(key)
                w = np.ones(len(src), np.float32) if w is None else np.asarray(w, np.float32)
                if w.shape != src.shape:
                    raise ValueError(f"edge type {key}: {len(w)} weights for {len(src)} edges")
                if not np.isfinite(w).all() or (w < 0).any():
                    raise ValueError(f"edge type {key}: weights must be finite and >= 0")
                self.edge_weights[key] = w
            elif key in self.edge_weights:
                raise ValueError(f"edge type {key} is not weighted in the schema but weights were given")
            feats = self.edge_features.get(key, {})
            missing = [f.name for f in et.features if f.name not in feats]
            if missing:
                raise ValueError(f"edge type {key} is missing features {missing}")
            self.edge_features[key] = et.coerce_features(feats, len(src), require_all=False)

    def _mirror_edges(self) -> None:
        """Add the ``dst -> src`` copies of undirected types and fill derived reverse types
        (weights and edge features copied along)."""
        for et in self.schema.edge_types:
            if et.reverse_of is not None and len(self.edges.get(et.canonical, ((),))[0]):
                raise ValueError(f"edge type {et.canonical_str} is the reverse of "
                                 f"{et.dst}:{et.reverse_of}:{et.src} and built from it; give "
                                 f"its edges only once, as {et.dst}:{et.reverse_of}:{et.src}")
        for et in self.schema.edge_types:
            key = et.canonical
            if not (et.undirected or et.reverse is not None) or key not in self.edges:
                continue
            src, dst = (as_ids(a, f"edges of {key}") for a in self.edges[key])
            if len(src) != len(dst):
                continue  # reported by the checks that follow
            w, feats = self.edge_weights.get(key), self.edge_features.get(key, {})
            if et.undirected:
                keep = src != dst
                self.edges[key] = (np.concatenate([src, dst[keep]]), np.concatenate([dst, src[keep]]))
                if w is not None:
                    w = np.asarray(w)
                    self.edge_weights[key] = np.concatenate([w, w[keep]])
                self.edge_features[key] = {k: np.concatenate([np.asarray(v), np.asarray(v)[keep]])
                                           for k, v in feats.items()}
            else:
                rev = et.reverse_canonical
                self.edges[rev] = (dst, src)
                if w is not None:
                    self.edge_weights[rev] = w
                self.edge_features[rev] = dict(feats)

    @property
    def num_nodes(self) -> int:
        """Total node count over all types."""
        return sum(len(v) for v in self.nodes.values())

    @property
    def num_edges(self) -> int:
        """Total edge count over all types."""
        return sum(len(s) for s, _ in self.edges.values())

    def partition(self, partitions: int = 1, partitioner: str = "hash"):
        """Split into partitions. Returns ``(PartitionBook, [PartitionData, ...])``."""
        from graphplat.storage.partition_book import PartitionBook
        from graphplat.storage.partition_data import split_into_partitions

        if partitions < 1:
            raise ValueError(f"partitions must be >= 1, got {partitions}")
        if partitioner == "metis":
            from graphplat.storage.metis import metis_book
            book = metis_book(self.schema, self.nodes, self.edges, partitions)
        elif partitioner == "hash":
            book = PartitionBook(partitions)
        else:
            raise ValueError(f"partitioner must be 'hash' or 'metis', got {partitioner!r}")
        parts = split_into_partitions(self.schema, book, self.nodes, self.node_features, self.edges,
                                      self.edge_weights, self.edge_features)
        return book, parts

    def to_local(self, partitions: int = 1, partitioner: str = "hash"):
        """An in-memory :class:`~graphplat.storage.local.LocalGraph` (writes stay in memory)."""
        from graphplat.storage.id_dictionary import IdDictionary
        from graphplat.storage.local import LocalGraph

        book, parts = self.partition(partitions, partitioner)
        return LocalGraph.from_partitions(book, parts, {nt: IdDictionary(nt, s) for nt, s in self.id_strings.items()})

    def write_store(self, out_dir: Union[str, os.PathLike], *, partitions: int = 1,
                    partitioner: str = "hash", overwrite: bool = False,
                    manifest: Optional[dict] = None) -> Path:
        """Partition and write a store atomically (see :mod:`graphplat.storage.ingest`).

        ``manifest``: extra keys for ``store.json``. Returns the absolute store path.
        """
        from graphplat.storage.store import check_target
        out = Path(out_dir).absolute()
        check_target(out, overwrite)
        with tqdm(total=1, desc="partitioning", disable=None) as bar:
            book, parts = self.partition(partitions, partitioner)
            bar.update(1)
        write_partitions(out, self.schema, book, parts, overwrite=overwrite,
                         num_nodes=self.num_nodes, num_edges=self.num_edges,
                         partitioner=partitioner, id_strings=self.id_strings, **(manifest or {}))
        return out


def write_partitions(out: Path, schema: GraphSchema, book, parts, *, overwrite: bool,
                     num_nodes: int, num_edges: int, partitioner: str,
                     id_strings: Optional[Dict[str, np.ndarray]] = None, **manifest) -> None:
    """Write partitioned data (and the string-id dictionaries) to ``out`` through a
    staging directory renamed at the end.

    ``parts`` is emptied as it is written, to free memory early.
    """
    from graphplat.storage.store import partition_path, staging_dir, write_partition, write_store_manifest

    with staging_dir(out, overwrite) as tmp:
        log.info("writing %d partitions to %s", len(parts), tmp)
        from graphplat.storage.id_dictionary import write_id_dictionaries
        schema.save(tmp / "schema.yaml")
        book.save(tmp)
        write_id_dictionaries(tmp, id_strings or {})
        for k in tqdm(range(len(parts)), desc="writing", unit="partition", disable=None):
            write_partition(partition_path(tmp, k), parts[k])
            parts[k] = None
            log.debug("wrote partition %d", k)
        write_store_manifest(tmp, len(parts), partitioner=partitioner, num_nodes=num_nodes,
                             num_edges=num_edges, **manifest)
