"""Model inputs built from a store's own columns: several feature columns concatenated, 1-D
and int64 columns as one float each, optional standardisation with training statistics, and
a seeded stratified split when the store has no split column.

:class:`InputView` wraps a GraphService and adds two computed node features (everything
else is the wrapped graph's): ``INPUT`` (float32, the listed columns side by side) and
``SPLIT`` (int64 split codes, see :data:`SPLIT_CODES`).
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from graphplat import _core
from graphplat.schema import FeatureSpec, GraphSchema, NodeType
from graphplat.service import GraphService
from graphplat.storage.wire_dtype import deliver_features

log = logging.getLogger(__name__)

INPUT = "_input"
SPLIT = "_split"
#: Codes of a split column: train, val, test; any other value (e.g. -1) is in no split.
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


def input_columns(schema: GraphSchema, feature: Union[str, Sequence[str]]) -> Dict[str, List[FeatureSpec]]:
    """The columns of ``feature`` (a name or a list of names) per node type that has them.
    A type with some but not all of them is an error (ValueError naming both)."""
    names = [feature] if isinstance(feature, str) else list(feature)
    if not names or not all(isinstance(n, str) for n in names):
        raise ValueError(f"feature must be a column name or a list of names, got {feature!r}")
    out = {}
    for nt in schema.node_types:
        have = [n for n in names if n in nt.feature_names]
        if not have:
            continue
        if len(have) != len(names):
            missing = [n for n in names if n not in have]
            raise ValueError(f"node type {nt.name!r} has feature(s) {have} but not {missing}; "
                             f"every node type with input features needs all of {names}")
        out[nt.name] = [nt.feature(n) for n in names]
    if not out:
        raise ValueError(f"no node type has the feature(s) {names}")
    return out


def needs_view(schema: GraphSchema, feature: Union[str, Sequence[str]], standardize: bool,
               split_fractions: Optional[Sequence[float]]) -> bool:
    """Whether ``feature`` cannot be fed as it is stored (a list, a scalar or int64 column),
    or standardisation or a computed split is asked for."""
    if standardize or split_fractions or not isinstance(feature, str):
        return True
    return any(f.is_scalar or f.dtype != "float32" or len(f.shape) != 1
               for specs in input_columns(schema, feature).values() for f in specs)


def stratified_split(labels: np.ndarray, fractions: Sequence[float], seed: int) -> np.ndarray:
    """Split codes (0 train, 1 val, 2 test, -1 none) for ``labels``: within each class a
    seeded random ``fractions = [train, val, test]`` share (rounded down for val and test);
    rows with a negative label stay unsplit. Returns int64 codes."""
    fr = [float(f) for f in fractions]
    if len(fr) != 3 or any(f < 0 for f in fr) or not 0.999 <= sum(fr) <= 1.001 or fr[0] <= 0:
        raise ValueError(f"split_fractions must be [train, val, test], >= 0, train > 0, summing to 1, "
                         f"got {list(fractions)!r}")
    rng = np.random.default_rng(seed)
    codes = np.full(len(labels), -1, dtype=np.int64)
    for c in np.unique(labels[labels >= 0]):
        rows = np.flatnonzero(labels == c)
        rows = rows[rng.permutation(len(rows))]
        n_val, n_test = int(fr[1] * len(rows)), int(fr[2] * len(rows))
        codes[rows] = 0
        codes[rows[:n_val]] = 1
        codes[rows[n_val:n_val + n_test]] = 2
    return codes


class InputView(GraphService):
    """``graph`` plus the computed node features ``INPUT`` and ``SPLIT``.

    Args:
        graph: the wrapped GraphService.
        columns: ntype -> the feature names concatenated into ``INPUT`` (float32).
        stats: ntype -> (mean, std) per input column; ``INPUT`` is ``(x - mean) / std``.
        split: ``(ntype, ids, codes)``: the ``SPLIT`` column of that type (ids not listed
            get -1).
    """

    def __init__(self, graph: GraphService, columns: Mapping[str, Sequence[str]],
                 stats: Optional[Mapping[str, Tuple[np.ndarray, np.ndarray]]] = None,
                 split: Optional[Tuple[str, np.ndarray, np.ndarray]] = None):
        self.graph = graph
        self.columns = {nt: list(c) for nt, c in columns.items()}
        self.stats = {nt: (np.asarray(m, np.float32), np.asarray(s, np.float32))
                      for nt, (m, s) in (stats or {}).items()}
        self.split = None
        if split is not None:
            nt, ids, codes = split
            self.split = (nt, _core.IdMap(np.asarray(ids, np.int64)), np.asarray(codes, np.int64))
        base = graph.schema
        node_types = []
        for nt in base.node_types:
            extra = []
            if nt.name in self.columns:
                width = sum(nt.feature(n).width for n in self.columns[nt.name])
                extra.append(FeatureSpec(INPUT, "float32", (width,)))
            if self.split is not None and self.split[0] == nt.name:
                extra.append(FeatureSpec(SPLIT, "int64"))
            node_types.append(NodeType(nt.name, nt.features + tuple(extra), nt.id_type))
        self._schema = GraphSchema(tuple(node_types), base.edge_types)

    @classmethod
    def from_meta(cls, graph: GraphService, meta: Mapping[str, Any]) -> "InputView":
        """Rebuild the inputs recorded by :meth:`to_meta` (no split) over ``graph``."""
        stats = {nt: (np.array(v["mean"]), np.array(v["std"])) for nt, v in meta.get("stats", {}).items()}
        return cls(graph, meta["columns"], stats)

    def to_meta(self) -> Dict[str, Any]:
        """JSON-safe record of the columns and statistics (what inference needs)."""
        return {"columns": self.columns,
                "stats": {nt: {"mean": m.tolist(), "std": s.tolist()} for nt, (m, s) in self.stats.items()}}

    def raw_inputs(self, ntype: str, ids: np.ndarray) -> np.ndarray:
        """The unstandardised ``INPUT`` rows of ``ids``: float32 (len(ids), width)."""
        cols = self.graph.node_features(ntype, ids, self.columns[ntype])
        parts = [np.asarray(cols[n], np.float32).reshape(len(ids), -1) for n in self.columns[ntype]]
        return np.concatenate(parts, axis=1) if len(parts) > 1 else parts[0]

    def with_standardization(self, sample_ids: Mapping[str, np.ndarray]) -> "InputView":
        """A view whose ``INPUT`` is standardised with the mean and std of ``sample_ids``
        per type (the training nodes; zero-variance columns are left unscaled)."""
        stats = {}
        for nt in self.columns:
            x = self.raw_inputs(nt, sample_ids[nt]).astype(np.float64)
            std = x.std(axis=0) if len(x) else np.ones(x.shape[1])
            mean = x.mean(axis=0) if len(x) else np.zeros(x.shape[1])
            stats[nt] = (mean, np.where(std > 0, std, 1.0))
        split = None
        if self.split is not None:
            nt, idmap, codes = self.split
            split = (nt, idmap.ids(), codes)
        return InputView(self.graph, self.columns, stats, split)

    # ---- GraphService

    @property
    def schema(self) -> GraphSchema:
        return self._schema

    def node_features(self, ntype, ids, names=None, *, out=None, wire_dtype=None):
        """The wrapped graph's features plus ``INPUT`` / ``SPLIT`` where asked for (``out``
        and ``wire_dtype`` as GraphService.node_features)."""
        nt = self._schema.node_type(ntype)
        names = list(nt.feature_names) if names is None else list(names)
        for n in names:
            nt.feature(n)  # ValueError naming an unknown feature
        ids = np.asarray(ids, dtype=np.int64)
        real = [n for n in names if n not in (INPUT, SPLIT)]
        into = out
        out = dict(self.graph.node_features(ntype, ids, real)) if real else {}
        if (INPUT in names or SPLIT in names) and not real and not self.graph.lookup(ntype, ids).all():
            raise IndexError(f"some ids are not {ntype!r} nodes")
        if INPUT in names:
            x = self.raw_inputs(ntype, ids)
            if ntype in self.stats:
                mean, std = self.stats[ntype]
                x = ((x - mean) / std).astype(np.float32)
            out[INPUT] = x
        if SPLIT in names:
            _, idmap, codes = self.split
            pos = idmap.lookup(ids, missing="ignore")
            out[SPLIT] = np.where(pos >= 0, codes[np.maximum(pos, 0)], -1)
        return deliver_features({n: out[n] for n in names}, into, wire_dtype)

    def num_nodes(self, ntype):
        return self.graph.num_nodes(ntype)

    def num_edges(self, etype):
        return self.graph.num_edges(etype)

    def sample_neighbors(self, etype, seeds, fanout, **kw):
        return self.graph.sample_neighbors(etype, seeds, fanout, **kw)

    def edge_features(self, etype, eids, names=None):
        return self.graph.edge_features(etype, eids, names)

    def degrees(self, etype, ids, direction="in"):
        return self.graph.degrees(etype, ids, direction)

    def lookup(self, ntype, ids):
        return self.graph.lookup(ntype, ids)

    def node_ids(self, ntype):
        return self.graph.node_ids(ntype)

    def negative_sample(self, etype, src, k, **kw):
        return self.graph.negative_sample(etype, src, k, **kw)

    def random_walk(self, metapath, starts, **kw):
        return self.graph.random_walk(metapath, starts, **kw)

    def add_nodes(self, ntype, ids, features=None):
        return self.graph.add_nodes(ntype, ids, features)

    def add_edges(self, etype, src, dst, weights=None):
        return self.graph.add_edges(etype, src, dst, weights)

    def update_features(self, ntype, ids, features):
        return self.graph.update_features(ntype, ids, features)

    def id_dictionary(self, ntype):
        return self.graph.id_dictionary(ntype)

    def close(self) -> None:
        self.graph.close()

    def __getattr__(self, name):  # anything else the wrapped graph offers
        if name == "graph":
            raise AttributeError(name)
        return getattr(self.graph, name)
