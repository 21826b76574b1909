"""Ingest: read node and edge tables (CSV, Parquet, NPY), validate them against the schema,
partition the graph and write a partition store atomically (:func:`ingest`).

The spec format, the validation rules and the bad-row report are the help of
``graphplat ingest`` (``graphplat/cli/ingest.py``, ``INGEST_DESCRIPTION``). Bad rows are
collected over all inputs (vectorized) and reported as ``file:line: problem``; the store is
built in ``<out>.tmp-<pid>`` and published by one rename after ``store.json`` is fsynced.
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
import yaml
from tqdm import tqdm

from graphplat import _core
from graphplat.errors import IngestError, SchemaError
from graphplat.schema import EdgeType, GraphSchema, NodeType
from graphplat.storage.graph_arrays import GraphArrays
from graphplat.storage.id_dictionary import number_strings
from graphplat.storage.readers import (
    Problem,
    Table,
    expand_paths,
    feature_column,
    float_column,
    int_column,
    open_table,
    resolve_feature_columns,
    str_column,
)
from graphplat.storage.store import check_target

log = logging.getLogger(__name__)

__all__ = ["ingest", "load_spec", "PARTITIONERS"]

PARTITIONERS = ("hash", "metis")

_SPEC_KEYS = ("schema", "nodes", "edges")
_COMMON_KEYS = ("path", "format", "delimiter", "header", "column_names", "files", "features")
_NODE_KEYS = _COMMON_KEYS + ("id",)
_EDGE_KEYS = _COMMON_KEYS + ("src", "dst", "weight")


# ----------------------------------------------------------------------------- spec


@dataclass
class SourceSpec:
    """One input of a node or edge type (see ``graphplat ingest --help``)."""

    paths: List[Path]
    format: Optional[str] = None
    delimiter: Optional[str] = None
    header: bool = True
    column_names: Optional[List[str]] = None
    files: Optional[Dict[str, str]] = None
    columns: Dict[str, str] = field(default_factory=dict)  # id / src / dst / weight
    features: Dict[str, Any] = field(default_factory=dict)
    where: str = ""

    def open(self, path: Path) -> Table:
        return open_table(path, self.format, delimiter=self.delimiter, header=self.header,
                          column_names=self.column_names, files=self.files)


@dataclass
class Spec:
    schema: GraphSchema
    nodes: Dict[str, List[SourceSpec]]
    from_edges: List[str]
    edges: Dict[Tuple[str, str, str], List[SourceSpec]]
    path: Optional[Path] = None


def _unknown_keys(obj: Mapping, allowed: Sequence[str], where: str) -> None:
    unknown = [k for k in obj if k not in allowed]
    if unknown:
        raise IngestError(f"ingest spec {where}: unknown key(s) {', '.join(map(repr, unknown))}; "
                          f"allowed: {', '.join(allowed)}")


def _parse_sources(value: Any, allowed: Sequence[str], where: str, base: Path) -> List[SourceSpec]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out = []
    for i, item in enumerate(items):
        w = f"{where}[{i}]" if isinstance(value, list) else where
        if isinstance(item, (str, os.PathLike)):
            item = {"path": str(item)}
        if not isinstance(item, Mapping):
            raise IngestError(f"ingest spec {w}: expected a path or a mapping with 'path', got {item!r}")
        _unknown_keys(item, allowed, w)
        if "path" not in item:
            raise IngestError(f"ingest spec {w}: missing 'path'")
        fmt = item.get("format")
        if fmt is not None and fmt not in ("csv", "parquet", "npy"):
            raise IngestError(f"ingest spec {w}: format must be csv, parquet or npy, got {fmt!r}")
        header = item.get("header", True)
        if not isinstance(header, bool):
            raise IngestError(f"ingest spec {w}: header must be true or false, got {header!r}")
        feats = item.get("features") or {}
        if not isinstance(feats, Mapping):
            raise IngestError(f"ingest spec {w}.features: expected a mapping feature -> column(s)")
        names = item.get("column_names")
        if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise IngestError(f"ingest spec {w}.column_names: expected a list of names")
        files = item.get("files")
        if files is not None and not isinstance(files, Mapping):
            raise IngestError(f"ingest spec {w}.files: expected a mapping column -> file name")
        cols = {}
        for k in ("id", "src", "dst", "weight"):
            if k in item:
                if not isinstance(item[k], str):
                    raise IngestError(f"ingest spec {w}.{k}: expected a column name, got {item[k]!r}")
                cols[k] = item[k]
        try:
            paths = expand_paths(item["path"], base)
        except IngestError as e:
            raise IngestError(f"ingest spec {w}: {e}") from None
        out.append(SourceSpec(paths, fmt, item.get("delimiter"), header, names,
                              dict(files) if files else None, cols, dict(feats), w))
    return out


def load_spec(spec: Union[str, os.PathLike, Mapping], base_dir: Optional[Union[str, os.PathLike]] = None) -> Spec:
    """Parse and check an ingest spec (a YAML file or a dict). Raises IngestError."""
    path = None
    if isinstance(spec, Mapping):
        data = spec
        base = Path(base_dir) if base_dir is not None else Path.cwd()
    else:
        path = Path(spec)
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as e:
            raise IngestError(f"{path}: cannot read the ingest spec: {e}") from None
        except yaml.YAMLError as e:
            raise IngestError(f"{path}: invalid YAML: {e}") from None
        base = Path(base_dir) if base_dir is not None else path.parent
    if not isinstance(data, Mapping):
        raise IngestError(f"ingest spec {path or ''}: expected a mapping with schema, nodes, edges")
    _unknown_keys(data, _SPEC_KEYS, "top level")
    if "schema" not in data:
        raise IngestError("ingest spec: missing 'schema' (a schema file or an inline schema)")
    try:
        if isinstance(data["schema"], GraphSchema):
            schema = data["schema"]
        elif isinstance(data["schema"], Mapping):
            schema = GraphSchema.from_dict(data["schema"])
        else:
            sp = Path(data["schema"])
            schema = GraphSchema.load(sp if sp.is_absolute() else base / sp)
    except (SchemaError, OSError) as e:
        raise IngestError(f"ingest spec: cannot load the schema: {e}") from None
    nodes_raw = data.get("nodes") or {}
    edges_raw = data.get("edges") or {}
    if not isinstance(nodes_raw, Mapping) or not isinstance(edges_raw, Mapping):
        raise IngestError("ingest spec: 'nodes' and 'edges' must be mappings type -> input(s)")
    nodes: Dict[str, List[SourceSpec]] = {}
    from_edges: List[str] = []
    for name, value in nodes_raw.items():
        try:
            nt = schema.node_type(name)
        except SchemaError as e:
            raise IngestError(f"ingest spec nodes: {e}") from None
        if isinstance(value, Mapping) and "from_edges" in value:
            _unknown_keys(value, ("from_edges",), f"nodes.{name}")
            if value["from_edges"] is not True:
                raise IngestError(f"ingest spec nodes.{name}.from_edges: expected true")
            if nt.features:
                raise IngestError(f"ingest spec nodes.{name}: from_edges needs a featureless node "
                                  f"type, {name!r} has features {nt.feature_names}")
            from_edges.append(name)
            continue
        nodes[name] = _parse_sources(value, _NODE_KEYS, f"nodes.{name}", base)
    edges: Dict[Tuple[str, str, str], List[SourceSpec]] = {}
    for key, value in edges_raw.items():
        try:
            et = schema.edge_type(key)
        except SchemaError as e:
            raise IngestError(f"ingest spec edges: {e}") from None
        if et.canonical in edges:
            raise IngestError(f"ingest spec edges: edge type {et.canonical_str!r} is listed twice")
        if et.reverse_of is not None:
            raise IngestError(f"ingest spec edges: {et.canonical_str!r} is the reverse edge type of "
                              f"{et.dst}:{et.reverse_of}:{et.src} and is built from its edges; list "
                              f"only {et.dst}:{et.reverse_of}:{et.src}")
        edges[et.canonical] = _parse_sources(value, _EDGE_KEYS, f"edges.{key}", base)
    for name in schema.ntypes:
        if name not in nodes and name not in from_edges:
            log.warning("ingest spec lists no input for node type %r: it gets no nodes", name)
    return Spec(schema, nodes, from_edges, edges, path)


# ----------------------------------------------------------------------------- reading


@dataclass
class _Part:
    """What one input table contributed to a type: its rows [offset, offset + n)."""

    table: Table
    offset: int
    source: Optional[SourceSpec] = None


@dataclass
class _TypeData:
    parts: List[_Part] = field(default_factory=list)
    arrays: Dict[str, List[np.ndarray]] = field(default_factory=dict)
    problems: List[Problem] = field(default_factory=list)
    n: int = 0

    def add(self, table: Table, arrays: Dict[str, np.ndarray], problems: List[Problem],
            source: Optional[SourceSpec] = None) -> None:
        self.parts.append(_Part(table, self.n, source))
        for k, v in arrays.items():
            self.arrays.setdefault(k, []).append(v)
        self.problems += problems
        self.n += table.num_rows

    def concat(self, name: str, empty: np.ndarray) -> np.ndarray:
        chunks = self.arrays.get(name)
        if not chunks:
            return empty
        return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)

    def bad_mask(self) -> np.ndarray:
        bad = np.zeros(self.n, dtype=bool)
        offsets = {id(p.table): p.offset for p in self.parts}
        for pr in self.problems:
            bad[offsets[id(pr.table)] + pr.rows] = True
        return bad

    def locate(self, rows: np.ndarray) -> List[Tuple[_Part, np.ndarray]]:
        """Split global row indices by input table: [(part, local rows)]."""
        starts = np.array([p.offset for p in self.parts], dtype=np.int64)
        which = np.searchsorted(starts, rows, side="right") - 1
        out = []
        for i in np.unique(which).tolist():
            sel = rows[which == i]
            out.append((self.parts[i], sel - self.parts[i].offset))
        return out


def _features_of(table: Table, owner, src: SourceSpec, what_owner: str):
    """Resolve the feature columns of a table: {name: (spec, source)} and text columns."""
    unknown = [k for k in src.features if k not in owner.feature_names]
    if unknown:
        raise IngestError(f"ingest spec {src.where}.features: {what_owner} has no feature "
                          f"{unknown[0]!r} (features: {owner.feature_names or 'none'})")
    out = {}
    text_cols = []
    for f in owner.features:
        what = f"feature {f.name!r} of {what_owner}"
        source = resolve_feature_columns(table, f, src.features.get(f.name), what)
        out[f.name] = (f, source)
        if source[0] == "column" and not f.is_scalar:
            text_cols.append(source[1])
    return out, text_cols


def _load_features(table: Table, feats) -> Tuple[Dict[str, np.ndarray], List[Problem]]:
    arrays, problems = {}, []
    for name, (spec, source) in feats.items():
        arr, probs = feature_column(table, spec, source, f"feature {name!r}")
        arrays[f"feat:{name}"] = arr
        problems += probs
    return arrays, problems


def _feature_columns(feats) -> List[str]:
    cols = []
    for _, (_spec, (kind, c)) in feats.items():
        cols += c if kind == "columns" else [c]
    return cols


def _read_nodes(nt: NodeType, sources: List[SourceSpec], bar) -> _TypeData:
    td = _TypeData()
    for src in sources:
        for path in src.paths:
            table = src.open(path)
            id_col = src.columns.get("id", "ids" if table.kind == "npy" else "id")
            if not table.has_column(id_col):
                raise table.missing_column(id_col, f"the ids of node type {nt.name!r}")
            feats, text_cols = _features_of(table, nt, src, f"node type {nt.name!r}")
            strings = nt.id_type == "string"
            table.load([id_col] + _feature_columns(feats), text_cols + ([id_col] if strings else []),
                       int_columns=[] if strings else [id_col])
            arrays, fprobs = _load_features(table, feats)
            if strings:  # numbered once every input is read (see _number_string_ids)
                arrays["sids"], problems = str_column(table, id_col, f"column {id_col!r} (node id)")
            else:
                arrays["ids"], problems = int_column(table, id_col, f"column {id_col!r} (node id)")
            td.add(table, arrays, problems + fprobs, src)
            bar.update(1)
            log.debug("%s: %d rows of node type %r", path, table.num_rows, nt.name)
    return td


def _read_edges(et: EdgeType, sources: List[SourceSpec], bar, string_ntypes=()) -> _TypeData:
    td = _TypeData()
    for src in sources:
        if "weight" in src.columns and not et.weighted:
            raise IngestError(f"ingest spec {src.where}: edge type {et.canonical_str!r} is not "
                              f"weighted in the schema, remove 'weight' or declare weighted: true")
        for path in src.paths:
            table = src.open(path)
            scol = src.columns.get("src", "src")
            dcol = src.columns.get("dst", "dst")
            wcol = src.columns.get("weight", "weight") if et.weighted else None
            for col, role in ((scol, "source ids"), (dcol, "destination ids"), (wcol, "edge weights")):
                if col is not None and not table.has_column(col):
                    raise table.missing_column(col, f"the {role} of edge type {et.canonical_str!r}")
            feats, text_cols = _features_of(table, et, src, f"edge type {et.canonical_str!r}")
            str_cols = [c for c, nt in ((scol, et.src), (dcol, et.dst)) if nt in string_ntypes]
            table.load([scol, dcol] + ([wcol] if wcol else []) + _feature_columns(feats),
                       text_cols + str_cols, int_columns=[c for c in (scol, dcol) if c not in str_cols])
            arrays = {}
            problems = []
            for key, col, nt, what in (("src", scol, et.src, "source id"), ("dst", dcol, et.dst, "destination id")):
                if nt in string_ntypes:  # mapped to node ids once the dictionaries exist
                    arrays[key + "_s"], p = str_column(table, col, f"column {col!r} ({what})")
                else:
                    arrays[key], p = int_column(table, col, f"column {col!r} ({what})")
                problems += p
            if wcol:
                w, p3 = float_column(table, wcol, f"column {wcol!r} (edge weight)", nonneg_finite=True)
                arrays["weight"] = w
                problems += p3
            fa, fp = _load_features(table, feats)
            arrays.update(fa)
            td.add(table, arrays, problems + fp, src)
            bar.update(1)
            log.debug("%s: %d rows of edge type %r", path, table.num_rows, et.canonical_str)
    return td


def _duplicate_problems(td: _TypeData, ids: np.ndarray, bad: np.ndarray, ntype: str,
                        shown: Optional[np.ndarray] = None) -> List[Problem]:
    """Problems for every repeated id among the good rows (the first occurrence is kept);
    ``shown``: the ids as the user wrote them (string ids), for the messages."""
    good = np.flatnonzero(~bad)
    gids = ids[good]
    try:
        _core.IdMap(gids)  # fast path: no duplicates
        return []
    except ValueError:
        pass
    order = np.argsort(gids, kind="stable")
    sorted_ids = gids[order]
    dup = np.zeros(len(gids), dtype=bool)
    dup[1:] = sorted_ids[1:] == sorted_ids[:-1]
    run_start = np.maximum.accumulate(np.where(~dup, np.arange(len(gids)), 0))
    later = good[order[dup]]              # global rows of repeated ids
    first = good[order[run_start[dup]]]   # global row of the first occurrence of each
    by_later = np.argsort(later)
    later_s, first_s = later[by_later], first[by_later]
    out = []
    for part, local in td.locate(later_s):
        def describe(row, part=part):
            g = row + part.offset
            f = int(first_s[np.searchsorted(later_s, g)])
            (fp, fl), = td.locate(np.array([f], dtype=np.int64))
            v = repr(shown[g]) if shown is not None else int(ids[g])
            return (f"duplicate node id {v} of type {ntype!r} "
                    f"(first at {fp.table.location(int(fl[0]))})")
        out.append(Problem(part.table, local, describe))
    return out


def _endpoint_problems(td: _TypeData, values: np.ndarray, bad: np.ndarray, idmap, ntype: str,
                       role: str, column_of, shown: Optional[np.ndarray] = None) -> List[Problem]:
    missing = (idmap.lookup(values, missing="ignore") < 0) & ~bad
    rows = np.flatnonzero(missing)
    out = []
    for part, local in td.locate(rows):
        col = column_of(part)

        def describe(row, part=part, col=col):
            g = row + part.offset
            v = repr(shown[g]) if shown is not None else int(values[g])
            return (f"column {col!r}: {role} id {v} is not a node "
                    f"of type {ntype!r}")
        out.append(Problem(part.table, local, describe, col))
    return out


def _report(problem_lists: List[List[Problem]], tables: List[Table], skip: bool, max_errors: int) -> int:
    """Log the first problems and their count; raise IngestError unless ``skip``. Returns
    the number of bad rows."""
    order = {id(t): i for i, t in enumerate(tables)}
    by_table: Dict[int, List[np.ndarray]] = {}
    entries = []  # (table order, sort key, seq, location, text) for the first few
    seq = 0
    for problems in problem_lists:
        for pr in problems:
            by_table.setdefault(id(pr.table), []).append(pr.rows)
            rows = pr.rows[:max_errors]
            keys = pr.table.sort_keys(rows)
            for r, k in zip(rows.tolist(), keys.tolist()):
                entries.append((order[id(pr.table)], k, seq, pr, r))
                seq += 1
    for t in tables:
        for k, loc, text in t.extra:
            entries.append((order[id(t)], k, seq, (loc, text), -1))
            seq += 1
    n_bad = sum(len(np.unique(np.concatenate(v))) for v in by_table.values())
    n_bad += sum(len(t.extra) for t in tables)
    if not n_bad:
        return 0
    entries.sort(key=lambda e: (e[0], e[1], e[2]))
    lines = []
    for _, _, _, pr, r in entries[:max_errors]:
        if isinstance(pr, tuple):
            lines.append(f"{pr[0]}: {pr[1]}")
        else:
            lines.append(f"{pr.table.location(r, pr.column)}: {pr.describe(r)}")
    n_problems = sum(len(pr.rows) for problems in problem_lists for pr in problems)
    n_problems += sum(len(t.extra) for t in tables)
    if skip:
        for line in lines:
            log.warning("%s", line)
        log.warning("skipping %d bad rows (--skip-bad-rows)", n_bad)
        return n_bad
    shown = lines[:5]  # in the error itself (one line on the command line)
    for line in lines[len(shown):]:  # the detail beyond the one line (--max-errors)
        log.warning("%s", line)
    more = (f" ... ({n_problems} problems in {n_bad} rows"
            + (f"; the log above lists the next {len(lines) - len(shown)})" if len(lines) > len(shown) else ")")
            if n_problems > len(shown) else "")
    raise IngestError(f"{n_bad} bad input rows: " + "; ".join(shown) + more,
                      "fix them, or pass --skip-bad-rows (skip_bad_rows=True) to drop them")


def check_max_bad_rows(value: Optional[float]) -> Optional[float]:
    """Validate a ``max_bad_rows`` limit (None, an int >= 0 or a float in (0, 1)). Returns
    it; raises ValueError naming the accepted forms."""
    if value is None:
        return None
    ok = (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0) or \
        (isinstance(value, float) and 0.0 < value < 1.0)
    if not ok:
        raise ValueError(f"max_bad_rows must be a count >= 0 or a fraction in (0, 1), got {value!r}")
    return value


def _check_kept(node_td, node_keep, edge_td, edge_bad, tables, n_bad: int,
                max_bad_rows: Optional[float]) -> None:
    """Fail a skipping ingest that dropped more than ``max_bad_rows`` rows, or every row of
    a node or edge type that had some (a store missing a whole type is never what a user
    asked for)."""
    total = sum(td.n for td in node_td.values()) + sum(td.n for td in edge_td.values())
    total += sum(len(t.extra) for t in tables)
    if max_bad_rows is not None:
        limit = max_bad_rows if not isinstance(max_bad_rows, float) else max_bad_rows * total
        if n_bad > limit:
            what = (f"{max_bad_rows}" if not isinstance(max_bad_rows, float)
                    else f"{max_bad_rows:g} of {total} input rows = {int(limit)}")
            raise IngestError(f"{n_bad} bad input rows, more than --max-bad-rows {what}; "
                              f"the log lists the first ones")
    emptied = [f"node type {name!r} ({td.n} rows)" for name, td in node_td.items()
               if td.n and not node_keep[name].any()]
    emptied += [f"edge type {':'.join(key)!r} ({td.n} rows)" for key, td in edge_td.items()
                if td.n and edge_bad[key].all()]
    if emptied:
        raise IngestError(f"every input row of {', '.join(emptied)} is bad: the store would "
                          f"hold none of them; the log lists the first problems")


# ----------------------------------------------------------------------------- ingest


def ingest(spec: Union[str, os.PathLike, Mapping], out_dir: Union[str, os.PathLike], *,
           partitions: int = 1, partitioner: str = "hash", skip_bad_rows: bool = False,
           overwrite: bool = False, base_dir: Optional[Union[str, os.PathLike]] = None,
           max_errors: int = 20, max_bad_rows: Optional[float] = None) -> Path:
    """Read, validate, partition and write a graph (the spec format: ``graphplat ingest --help``).

    Args:
        spec: path of a YAML ingest spec, or the spec as a dict.
        out_dir: the store directory to create.
        partitions: number of partitions (>= 1).
        partitioner: ``"hash"`` or ``"metis"``.
        skip_bad_rows: drop bad rows (logging their count) instead of failing. An ingest
            where a node or edge type with input rows keeps none of them still fails.
        max_bad_rows: with ``skip_bad_rows``, the most bad rows to drop: a count (an int
            >= 0) or a fraction of all input rows (a float in (0, 1)); more fail the
            ingest. None: no limit.
        overwrite: replace an existing store at ``out_dir``.
        base_dir: directory relative input paths are resolved against (default: the spec
            file's directory, or the working directory for a dict).
        max_errors: how many bad rows to report in detail.

    Returns the absolute store path. Raises IngestError (a ValueError) for bad input,
    FileExistsError when ``out_dir`` exists and may not be replaced.
    """
    t0 = time.perf_counter()
    check_max_bad_rows(max_bad_rows)
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    if partitioner not in PARTITIONERS:
        raise ValueError(f"partitioner must be one of {', '.join(PARTITIONERS)}, got {partitioner!r}")
    out = Path(out_dir).absolute()
    check_target(out, overwrite)
    sp = load_spec(spec, base_dir)
    schema = sp.schema
    n_inputs = sum(len(s.paths) for srcs in list(sp.nodes.values()) + list(sp.edges.values()) for s in srcs)

    # ---- read and convert
    string_ntypes = {nt.name for nt in schema.node_types if nt.id_type == "string"}
    id_strings: Dict[str, np.ndarray] = {}  # ntype -> its string ids in node id order
    tables: List[Table] = []
    node_td: Dict[str, _TypeData] = {}
    edge_td: Dict[Tuple[str, str, str], _TypeData] = {}
    with tqdm(total=n_inputs, desc="reading", unit="file", disable=None) as bar:
        for nt in schema.node_types:
            if nt.name in sp.nodes:
                node_td[nt.name] = _read_nodes(nt, sp.nodes[nt.name], bar)
                tables += [p.table for p in node_td[nt.name].parts]
        for et in schema.edge_types:
            if et.canonical in sp.edges:
                edge_td[et.canonical] = _read_edges(et, sp.edges[et.canonical], bar, string_ntypes)
                tables += [p.table for p in edge_td[et.canonical].parts]
    t_read = time.perf_counter()

    # ---- validate: duplicate node ids, then edge endpoints
    empty_i = np.zeros(0, np.int64)
    nodes: Dict[str, np.ndarray] = {}
    node_keep: Dict[str, np.ndarray] = {}
    all_problems: List[List[Problem]] = []
    empty_s = np.zeros(0, dtype=object)
    for name, td in node_td.items():
        bad = td.bad_mask()
        shown = None
        if name in string_ntypes:
            shown = td.concat("sids", empty_s)
            id_strings[name], codes = number_strings(shown[~bad])
            ids = np.full(td.n, -1, dtype=np.int64)
            ids[~bad] = codes
        else:
            ids = td.concat("ids", empty_i)
        dups = _duplicate_problems(td, ids, bad, name, shown)
        td.problems += dups
        if dups:
            bad = td.bad_mask()
        node_keep[name] = ~bad
        nodes[name] = ids[~bad]
        all_problems.append(td.problems)
    edge_bad: Dict[Tuple[str, str, str], np.ndarray] = {k: td.bad_mask() for k, td in edge_td.items()}
    for name in sp.from_edges:
        ends = []
        for et in schema.edge_types:
            td = edge_td.get(et.canonical)
            if td is None:
                continue
            ok = ~edge_bad[et.canonical]
            suffix = "_s" if name in string_ntypes else ""
            empty = empty_s if suffix else empty_i
            if et.src == name:
                ends.append(td.concat("src" + suffix, empty)[ok])
            if et.dst == name:
                ends.append(td.concat("dst" + suffix, empty)[ok])
        if name in string_ntypes:
            id_strings[name] = number_strings(np.concatenate(ends) if ends else empty_s)[0]
            nodes[name] = np.arange(len(id_strings[name]), dtype=np.int64)
        else:
            nodes[name] = np.unique(np.concatenate(ends)) if ends else empty_i
        log.info("node type %r: %d nodes taken from its edges", name, len(nodes[name]))
    for key, td in edge_td.items():  # string endpoints -> node ids (-1: unknown string)
        for end, nt in (("src", key[0]), ("dst", key[2])):
            if nt in string_ntypes:
                strings = td.concat(end + "_s", empty_s)
                index = pd.Index(id_strings.get(nt, empty_s), dtype=object)
                td.arrays[end] = [index.get_indexer(strings).astype(np.int64) if len(strings) else empty_i]
    idmaps = {nt: _core.IdMap(nodes.get(nt, empty_i)) for nt in schema.ntypes}
    for et in schema.edge_types:
        td = edge_td.get(et.canonical)
        if td is None:
            continue
        bad = edge_bad[et.canonical]
        s_arr, d_arr = td.concat("src", empty_i), td.concat("dst", empty_i)
        s_show = td.concat("src_s", empty_s) if et.src in string_ntypes else None
        d_show = td.concat("dst_s", empty_s) if et.dst in string_ntypes else None
        td.problems += _endpoint_problems(td, s_arr, bad, idmaps[et.src], et.src, "source",
                                          lambda p: p.source.columns.get("src", "src"), s_show)
        td.problems += _endpoint_problems(td, d_arr, bad, idmaps[et.dst], et.dst, "destination",
                                          lambda p: p.source.columns.get("dst", "dst"), d_show)
        edge_bad[et.canonical] = td.bad_mask()
        all_problems.append(td.problems)
    n_bad = _report(all_problems, tables, skip_bad_rows, max_errors)
    if n_bad:
        _check_kept(node_td, node_keep, edge_td, edge_bad, tables, n_bad, max_bad_rows)
    t_valid = time.perf_counter()

    # ---- assemble the validated whole-graph arrays
    def empty_feat(f):
        return np.zeros((0,) + f.shape, dtype=f.numpy_dtype)

    node_features: Dict[str, Dict[str, np.ndarray]] = {}
    for nt in schema.node_types:
        td = node_td.get(nt.name)
        nodes.setdefault(nt.name, empty_i)
        if td is None:
            node_features[nt.name] = {f.name: empty_feat(f) for f in nt.features}
            continue
        keep = node_keep[nt.name]
        node_features[nt.name] = {f.name: td.concat(f"feat:{f.name}", empty_feat(f))[keep]
                                  for f in nt.features}
    edges, weights, edge_features = {}, {}, {}
    for et in schema.edge_types:
        if et.reverse_of is not None:
            continue  # GraphArrays builds it from its forward type
        td = edge_td.get(et.canonical) or _TypeData()
        keep = ~edge_bad.get(et.canonical, np.zeros(0, dtype=bool))
        edges[et.canonical] = (td.concat("src", empty_i)[keep], td.concat("dst", empty_i)[keep])
        if et.weighted:
            weights[et.canonical] = td.concat("weight", np.zeros(0, np.float32))[keep]
        edge_features[et.canonical] = {f.name: td.concat(f"feat:{f.name}", empty_feat(f))[keep]
                                       for f in et.features}
    del node_td, edge_td, tables
    num_nodes = sum(len(v) for v in nodes.values())
    num_edges = sum(len(s) for s, _ in edges.values())
    log.info("read %d nodes and %d edges from %d inputs in %.2fs%s", num_nodes, num_edges, n_inputs,
             t_read - t0, f" ({n_bad} bad rows skipped)" if n_bad else "")

    # ---- partition and write
    arrays = GraphArrays(schema, nodes, node_features, edges, weights, edge_features, id_strings)
    del nodes, node_features, edges, weights, edge_features
    num_edges = arrays.num_edges  # with the mirrored edges of undirected and reverse types
    arrays.write_store(out, partitions=partitions, partitioner=partitioner, overwrite=overwrite,
                       manifest={"skipped_rows": n_bad, "spec": str(sp.path) if sp.path else None})
    del arrays
    t_end = time.perf_counter()
    rate = num_edges / max(t_end - t0, 1e-9)
    log.info("ingested %d nodes and %d edges into %s (%d partitions, %s) in %.2fs "
             "[read %.2fs, validate %.2fs, partition and write %.2fs]: %.0f edges/s",
             num_nodes, num_edges, out, partitions, partitioner, t_end - t0, t_read - t0,
             t_valid - t_read, t_end - t_valid, rate)
    return out
