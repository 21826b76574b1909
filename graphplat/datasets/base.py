"""The :class:`Dataset` every reader returns, where the raw files live, and small helpers the
readers share (file lookup with clear errors, seeded stratified splits, edge symmetrization).

Conventions a training loop can rely on:

* ``graph`` is a :class:`~graphplat.storage.graph_arrays.GraphArrays`; every node type has a
  float32 vector feature ``feature_name`` (``"feat"``).
* Node tasks (``task == "node_classification"``): the nodes of ``target_ntype`` carry an
  int64 scalar ``label_feature`` (``"label"``) and an int64 scalar ``split_feature``
  (``"split"``: 0 train, 1 validation, 2 test, -1 unused); classes are ``0..num_classes-1``.
* Edge tasks (``"rating"``, ``"link_prediction"``): ``target_etypes`` maps ``"train"``,
  ``"val"`` and ``"test"`` to canonical edge types. Only the train type (and its reverse, or
  copies of the training edges such as MovieLens' rating-typed relations) is meant for
  message passing; the val/test types hold the held-out edges.
* ``reference`` records a published number with its source, to compare a run against.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from graphplat.storage.graph_arrays import GraphArrays
from graphplat.typing import Canonical, PathLike

log = logging.getLogger(__name__)

__all__ = ["Dataset", "TASKS", "SPLIT_NAMES", "SPLIT_TRAIN", "SPLIT_VAL", "SPLIT_TEST",
           "SPLIT_UNUSED", "DATASETS_ENV", "find_data_dir", "data_root", "locate_files",
           "stratified_split", "symmetrize", "check_fractions", "one_hot"]

#: Tasks a dataset may declare.
TASKS = ("node_classification", "rating", "link_prediction")
#: Values of the ``split`` node feature.
SPLIT_TRAIN, SPLIT_VAL, SPLIT_TEST, SPLIT_UNUSED = 0, 1, 2, -1
#: Split names in the order of their codes (``target_etypes`` uses the same names).
SPLIT_NAMES = ("train", "val", "test")
#: Environment variable naming the datasets directory.
DATASETS_ENV = "GRAPHPLAT_DATASETS"

_REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Dataset:
    """A graph plus what a training loop needs to know about its task.

    Attributes:
        name: registry name (``"cora"``, ``"acm"``, ...).
        graph: the whole graph as arrays.
        task: ``"node_classification"``, ``"rating"`` or ``"link_prediction"``.
        target_ntype: node type whose nodes are classified (node tasks), else None.
        label_feature: int64 scalar node feature holding the class (node tasks).
        split_feature: int64 scalar node feature: 0 train, 1 val, 2 test, -1 unused.
        num_classes: number of classes (node tasks); None for rating / link prediction.
        feature_name: float32 vector node feature that every node type has.
        target_etypes: ``{"train"|"val"|"test": canonical edge type}`` (edge tasks).
        reference: a published result: ``{"metric", "value", "source", ...}``.
        description: what the graph is and how it was built from the raw files.
        meta: reader-specific facts (options used, documented quirks of the raw data).
    """

    name: str
    graph: GraphArrays
    task: str
    target_ntype: Optional[str] = None
    label_feature: str = "label"
    split_feature: str = "split"
    num_classes: Optional[int] = None
    feature_name: str = "feat"
    target_etypes: Dict[str, Canonical] = field(default_factory=dict)
    reference: Dict[str, object] = field(default_factory=dict)
    description: str = ""
    meta: Dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"dataset {self.name!r}: task must be one of {', '.join(TASKS)}, "
                             f"got {self.task!r}")
        schema = self.graph.schema
        for nt in schema.node_types:
            spec = nt.feature(self.feature_name)
            if spec.dtype != "float32" or len(spec.shape) != 1:
                raise ValueError(f"dataset {self.name!r}: node type {nt.name!r} feature "
                                 f"{self.feature_name!r} must be a float32 vector, got {spec.shorthand}")
        if self.task == "node_classification":
            if self.target_ntype is None or self.num_classes is None:
                raise ValueError(f"dataset {self.name!r}: a node task needs target_ntype and num_classes")
            nt = schema.node_type(self.target_ntype)
            for fname in (self.label_feature, self.split_feature):
                spec = nt.feature(fname)
                if spec.dtype != "int64" or spec.shape != ():
                    raise ValueError(f"dataset {self.name!r}: feature {fname!r} of "
                                     f"{self.target_ntype!r} must be an int64 scalar")
        else:
            missing = [s for s in SPLIT_NAMES if s not in self.target_etypes]
            if missing:
                raise ValueError(f"dataset {self.name!r}: task {self.task!r} needs target_etypes "
                                 f"for {missing}")
            self.target_etypes = {k: schema.edge_type(v).canonical
                                  for k, v in self.target_etypes.items()}

    # ------------------------------------------------------------------ views

    @property
    def schema(self):
        """The graph's :class:`~graphplat.schema.GraphSchema`."""
        return self.graph.schema

    def labels(self) -> np.ndarray:
        """int64 labels of every ``target_ntype`` node, aligned with its node ids."""
        return self.graph.node_features[self._target()][self.label_feature]

    def split(self) -> np.ndarray:
        """int64 split codes (0/1/2/-1) of every ``target_ntype`` node."""
        return self.graph.node_features[self._target()][self.split_feature]

    def split_ids(self, which: str) -> np.ndarray:
        """Node ids of ``target_ntype`` in split ``which`` (``"train"``, ``"val"``, ``"test"``)."""
        if which not in SPLIT_NAMES:
            raise ValueError(f"split must be one of {', '.join(SPLIT_NAMES)}, got {which!r}")
        code = SPLIT_NAMES.index(which)
        return self.graph.nodes[self._target()][self.split() == code]

    def _target(self) -> str:
        if self.target_ntype is None:
            raise ValueError(f"dataset {self.name!r} ({self.task}) has no target node type")
        return self.target_ntype

    # ------------------------------------------------------------------ outputs

    def to_local(self, partitions: int = 1, partitioner: str = "hash"):
        """The graph as an in-memory :class:`~graphplat.storage.local.LocalGraph`."""
        return self.graph.to_local(partitions, partitioner)

    def write_store(self, path: PathLike, partitions: int = 1, overwrite: bool = False,
                    partitioner: str = "hash") -> Path:
        """Write the graph as a partition store at ``path`` (``graphplat.open_graph`` reads
        it). The task description (:meth:`info`) is recorded in ``store.json`` under
        ``"dataset"``. Returns the absolute store path."""
        return self.graph.write_store(path, partitions=partitions, partitioner=partitioner,
                                      overwrite=overwrite, manifest={"dataset": self.info()})

    def info(self) -> Dict[str, object]:
        """The task metadata as a JSON-friendly dict (everything but the graph)."""
        return {
            "name": self.name, "task": self.task, "target_ntype": self.target_ntype,
            "label_feature": self.label_feature, "split_feature": self.split_feature,
            "num_classes": self.num_classes, "feature_name": self.feature_name,
            "target_etypes": {k: list(v) for k, v in self.target_etypes.items()},
            "reference": dict(self.reference), "description": self.description,
        }

    def summary(self) -> str:
        """A multi-line human-readable description: node and edge counts per type, feature
        widths, task, split sizes and the published reference number."""
        g = self.graph
        lines = [f"dataset {self.name}: {self.task}, {g.num_nodes:,} nodes, {g.num_edges:,} edges"]
        for nt in g.schema.node_types:
            feats = ", ".join(f"{f.name}:{f.shorthand}" for f in nt.features)
            lines.append(f"  node {nt.name}: {len(g.nodes[nt.name]):,} ({feats})")
        for et in g.schema.edge_types:
            extra = []
            if et.weighted:
                extra.append("weighted")
            extra += [f"{f.name}:{f.shorthand}" for f in et.features]
            suffix = f" ({', '.join(extra)})" if extra else ""
            lines.append(f"  edge {et.canonical_str}: {len(g.edges[et.canonical][0]):,}{suffix}")
        if self.task == "node_classification":
            split = self.split()
            sizes = ", ".join(f"{n} {int((split == i).sum()):,}" for i, n in enumerate(SPLIT_NAMES))
            unused = int((split == SPLIT_UNUSED).sum())
            lines.append(f"  target {self.target_ntype}: {self.num_classes} classes; split {sizes}, "
                         f"unused {unused:,}")
        else:
            parts = ", ".join(f"{k} {':'.join(v)} ({len(g.edges[v][0]):,})"
                              for k, v in self.target_etypes.items())
            lines.append(f"  targets: {parts}")
        r = self.reference
        if r.get("value") is not None:
            lines.append(f"  reference: {r.get('metric')} {r.get('value')} ({r.get('source')})")
        elif r:
            lines.append(f"  reference: {r.get('source')}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, task={self.task!r}, nodes={self.graph.num_nodes}, "
                f"edges={self.graph.num_edges})")


# ----------------------------------------------------------------------------- files


def _candidate_dirs() -> List[Path]:
    out: List[Path] = []
    env = os.environ.get(DATASETS_ENV)
    if env:
        out.append(Path(env))
    out.append(_REPO_ROOT.parent / "shared" / "datasets")
    out.append(Path.cwd().parent / "shared" / "datasets")
    seen, unique = set(), []
    for p in out:
        key = str(p.absolute())
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def find_data_dir(data_dir: Optional[PathLike] = None) -> Path:
    """The directory holding the raw datasets.

    Looks at ``data_dir`` when given (it must exist), else ``$GRAPHPLAT_DATASETS``, else
    ``../shared/datasets`` relative to the repository and then to the working directory.
    Returns the first existing directory; raises FileNotFoundError naming every place
    it looked.
    """
    if data_dir is not None:
        p = Path(data_dir)
        if not p.is_dir():
            raise FileNotFoundError(f"datasets directory {str(p)!r} does not exist")
        return p
    candidates = _candidate_dirs()
    for p in candidates:
        if p.is_dir():
            return p
    raise FileNotFoundError(
        "no datasets directory found; looked in "
        + ", ".join(repr(str(p)) for p in candidates)
        + f". Pass data_dir=... (--data-dir) or set ${DATASETS_ENV}")


def data_root(data_dir: Optional[PathLike], dataset: str, expects: str) -> Path:
    """:func:`find_data_dir` for ``dataset``: its FileNotFoundError also says what the
    dataset expects (``expects``, e.g. ``"cora/ind.cora.{x,y,...}"``)."""
    from graphplat.errors import PathNotFound

    try:
        return find_data_dir(data_dir)
    except FileNotFoundError as e:
        raise PathNotFound(f"dataset {dataset!r} expects {expects}: {e}",
                           f"pass --data-dir (data_dir=) naming the directory that holds it, or "
                           f"set ${DATASETS_ENV}") from None


def locate_files(data_dir: Optional[PathLike], subdirs: Sequence[str], files: Sequence[str],
                 dataset: str, optional: Iterable[str] = ()) -> Path:
    """Find the directory holding ``files`` for ``dataset``.

    ``data_dir`` (or :func:`find_data_dir`'s answer) may be the datasets root, in which case
    each of ``subdirs`` is tried, or the dataset's own directory. Returns the first directory
    that has every required file (``optional`` ones are not required). Raises
    FileNotFoundError naming the directories tried and the files the dataset expects.
    """
    required = [f for f in files if f not in set(optional)]
    where = " or ".join(f"{s}/" for s in subdirs)
    root = data_root(data_dir, dataset, f"{', '.join(required)} (in {where})")
    tried = [root / s for s in subdirs] + [root]
    for d in tried:
        if all((d / f).is_file() for f in required):
            return d
    missing_report = []
    for d in tried:
        if d.is_dir():
            missing = [f for f in required if not (d / f).is_file()]
            missing_report.append(f"{d} (missing {', '.join(missing)})")
        else:
            missing_report.append(f"{d} (no such directory)")
    from graphplat.errors import PathNotFound

    raise PathNotFound(
        f"dataset {dataset!r} expects the files {', '.join(required)}; looked in "
        + "; ".join(missing_report),
        f"pass --data-dir (data_dir=) naming the directory that holds {where}, or set "
        f"${DATASETS_ENV}")


# ----------------------------------------------------------------------------- helpers


def check_fractions(fractions: Sequence[float], names: Sequence[str] = SPLIT_NAMES) -> np.ndarray:
    """Validate split fractions (each in [0, 1], summing to at most 1). Returns a float64
    array; raises ValueError naming the bad value."""
    fr = []
    for n, f in zip(names, fractions):
        try:
            v = float(f)
        except (TypeError, ValueError):
            raise ValueError(f"{n} fraction must be a number, got {f!r}") from None
        if not (0.0 <= v <= 1.0):
            raise ValueError(f"{n} fraction must be in [0, 1], got {f!r}")
        fr.append(v)
    if sum(fr) > 1.0 + 1e-9:
        raise ValueError(f"split fractions {dict(zip(names, fr))} add up to more than 1")
    if fr[0] <= 0:
        raise ValueError("the train fraction must be positive")
    return np.asarray(fr)


def stratified_split(labels: np.ndarray, fractions: Sequence[float], seed: int) -> np.ndarray:
    """Seeded stratified split: int64 codes per node (0 train, 1 val, 2 test, -1 unused).

    Within each class the nodes are shuffled and cut at ``round(cumsum(fractions) * n_c)``,
    so each split holds (up to rounding) the same fraction of every class. Nodes with a
    negative label are left unused. Deterministic given ``seed``; fully vectorized.
    """
    fr = check_fractions(fractions)
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    out = np.full(len(labels), SPLIT_UNUSED, dtype=np.int64)
    valid = np.flatnonzero(labels >= 0)
    # Random order within each class: sort by (label, random key).
    order = valid[np.lexsort((rng.random(len(valid)), labels[valid]))]
    lab = labels[order]
    starts = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1]]) if len(lab) else np.zeros(0, np.int64)
    sizes = np.diff(np.r_[starts, len(lab)])
    rank = np.arange(len(lab)) - np.repeat(starts, sizes)  # position within the class
    cuts = np.rint(np.cumsum(fr)[None, :] * sizes[:, None]).astype(np.int64)  # (classes, 3)
    cut_of = np.repeat(cuts, sizes, axis=0)
    code = (rank[:, None] >= cut_of).sum(1)  # 0,1,2 inside the cuts, 3 beyond
    code[code >= len(fr)] = SPLIT_UNUSED
    out[order] = code
    return out


def symmetrize(src: np.ndarray, dst: np.ndarray, num_nodes: int,
               self_loops: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """Both directions of every edge, deduplicated, sorted by (dst, src); self loops are
    dropped unless ``self_loops`` (then each is kept once). Returns ``(src, dst)`` int64."""
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    s = np.concatenate([src, dst])
    d = np.concatenate([dst, src])
    if not self_loops:
        keep = s != d
        s, d = s[keep], d[keep]
    keys = np.unique(d * np.int64(num_nodes) + s)
    return keys % num_nodes, keys // num_nodes


def one_hot(codes: np.ndarray, width: int) -> np.ndarray:
    """float32 one-hot rows of ``codes`` (int, in ``0..width-1``)."""
    out = np.zeros((len(codes), width), dtype=np.float32)
    out[np.arange(len(codes)), codes] = 1.0
    return out
