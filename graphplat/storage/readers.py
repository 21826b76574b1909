"""Input tables for ``graphplat ingest`` and the vectorized conversion of their columns.

Three kinds of :class:`Table`:

* :class:`CsvTable`: a CSV/TSV file read with ``pyarrow.csv`` (multi-threaded). With a
  header (the default) data row ``i`` is reported as ``file:i+2``; without one as
  ``file:i+1``. Empty lines are skipped but still counted, and a line with the wrong number
  of fields is reported as a bad row with its own line number. (Line numbers assume one
  record per line, i.e. no newlines inside quoted fields.)
* :class:`ParquetTable`: a Parquet file read with ``pyarrow.parquet``; rows are reported as
  ``file: row i`` (0-based). List columns may hold vector features.
* :class:`NpyTable`: a directory of ``.npy`` files, one per column (``ids.npy``,
  ``src.npy``, ``dst.npy``, ``weight.npy``, ``<feature>.npy``), all with the same number of
  rows; rows are reported as ``dir/col.npy: row i``. A vector feature is a 2-D (or N-D)
  array.

Converters (:func:`int_column`, :func:`float_column`, :func:`feature_column`) turn a column
into a numpy array plus :class:`Problem` s for the rows that cannot be converted (missing
value, non-numeric value, NaN or a fraction in an int64 column, an infinite float32 feature,
wrong vector width, ...).
Everything is vectorized; only the messages of the first few bad rows are ever formatted.
"""
from __future__ import annotations

import csv
import glob as _glob
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from graphplat.errors import IngestError
from graphplat.schema import FeatureSpec

log = logging.getLogger(__name__)

__all__ = [
    "Problem", "Table", "CsvTable", "ParquetTable", "NpyTable", "open_table",
    "infer_format", "expand_paths", "int_column", "str_column", "float_column", "feature_column",
    "resolve_feature_columns",
]

_F32_MAX = float(np.finfo(np.float32).max)

# Row reason codes of the numeric converters.
OK, MISSING, NON_NUMERIC, NAN, INFINITE, NON_INTEGRAL, OUT_OF_RANGE, NEGATIVE, WIDTH, INF_FEATURE = range(10)

_INT_RE = r"^[+-]?[0-9]{1,18}$"
_INT19_RE = r"^[+-]?[0-9]{19}$"
_FLOAT_RE = r"^[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[nN][aA][nN]|[iI][nN][fF]([iI][nN][iI][tT][yY])?)$"


@dataclass
class Problem:
    """Bad rows of one table sharing one kind of problem. ``rows``: ascending int64 row
    indices; ``describe(row)``: the text for one row (without its location)."""

    table: "Table"
    rows: np.ndarray
    describe: Callable[[int], str]
    column: Optional[str] = None


# ----------------------------------------------------------------------------- tables


class Table:
    """A table of named columns read from one input (see the module docstring)."""

    kind = "table"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.num_rows = 0
        self._cols: Dict[str, Union[pa.Array, np.ndarray]] = {}
        #: problems not tied to a row of the table: (sort key, location, text)
        self.extra: List[Tuple[int, str, str]] = []

    def column_names(self) -> List[str]:
        raise NotImplementedError

    def has_column(self, name: str) -> bool:
        return name in self.column_names()

    def load(self, columns: Sequence[str], string_columns: Sequence[str] = (),
             int_columns: Sequence[str] = ()) -> None:
        """Read the given columns (which must exist); ``string_columns`` are read as text,
        ``int_columns`` (ids) as exact integers where the format infers types."""
        raise NotImplementedError

    def raw(self, name: str):
        """The loaded column: a ``pyarrow.Array`` or a numpy array."""
        return self._cols[name]

    def location(self, row: int, column: Optional[str] = None) -> str:
        return f"{self.path}: row {row}"

    def sort_keys(self, rows: np.ndarray) -> np.ndarray:
        """Keys ordering rows (and :attr:`extra` problems) as they appear in the file."""
        return np.asarray(rows, dtype=np.int64)

    def missing_column(self, name: str, what: str) -> IngestError:
        cols = ", ".join(repr(c) for c in self.column_names()[:30]) or "none"
        return IngestError(f"{self.header_location()}: missing column {name!r} for {what} "
                           f"(columns: {cols})")

    def header_location(self) -> str:
        return str(self.path)


class CsvTable(Table):
    kind = "csv"

    def __init__(self, path: Path, delimiter: str = ",", header: bool = True,
                 column_names: Optional[Sequence[str]] = None) -> None:
        super().__init__(path)
        if not self.path.is_file():
            raise IngestError(f"{self.path}: no such file")
        if len(delimiter) != 1:
            raise IngestError(f"{self.path}: delimiter must be one character, got {delimiter!r}")
        self.delimiter = delimiter
        self.header = header
        self.first_line = 2 if header else 1
        self._row_lines: Optional[np.ndarray] = None
        if header:
            first = self._first_line()
            if not first.strip():
                raise IngestError(f"{self.path}:1: empty file or empty header line (a CSV "
                                  f"needs a header line naming its columns, or header: false "
                                  f"with column_names)")
            names = next(csv.reader([first], delimiter=delimiter))
            names = [n.strip() for n in names]
            if column_names:
                if len(column_names) != len(names):
                    raise IngestError(f"{self.path}:1: column_names gives {len(column_names)} "
                                      f"names but the header has {len(names)} columns")
                names = list(column_names)
        else:
            if not column_names:
                raise IngestError(f"{self.path}: header: false needs column_names")
            names = list(column_names)
        dups = sorted({n for n in names if names.count(n) > 1})
        if dups:
            raise IngestError(f"{self.path}:1: duplicate column name(s) {', '.join(map(repr, dups))}")
        self._names = names

    def _first_line(self) -> str:
        """The header line (transparently decompressing .gz / .bz2 / ... like pyarrow)."""
        try:
            with pa.input_stream(str(self.path), compression="detect") as f:
                buf = b""
                while b"\n" not in buf:
                    chunk = f.read(1 << 16)
                    if not chunk:
                        break
                    buf += chunk
        except (pa.ArrowException, OSError) as e:
            raise IngestError(f"{self.path}: cannot read CSV: {e}") from None
        return buf.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").rstrip("\r")

    def column_names(self) -> List[str]:
        return list(self._names)

    def header_location(self) -> str:
        return f"{self.path}:1" if self.header else str(self.path)

    def location(self, row: int, column: Optional[str] = None) -> str:
        line = self._row_lines[row] if self._row_lines is not None else row + self.first_line
        return f"{self.path}:{int(line)}"

    def sort_keys(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        return self._row_lines[rows] if self._row_lines is not None else rows + self.first_line

    def _read(self, columns: Sequence[str], types: Dict[str, pa.DataType], threads: bool):
        bad: List[Tuple[Optional[int], int, int, str]] = []

        def handler(row) -> str:
            bad.append((row.number, row.expected_columns, row.actual_columns, row.text))
            return "skip"

        ropts = pacsv.ReadOptions(use_threads=threads, block_size=8 << 20,
                                  column_names=self._names, skip_rows=1 if self.header else 0)
        popts = pacsv.ParseOptions(delimiter=self.delimiter, ignore_empty_lines=False,
                                   invalid_row_handler=handler)
        copts = pacsv.ConvertOptions(include_columns=list(columns), column_types=types,
                                     null_values=[""], strings_can_be_null=True,
                                     quoted_strings_can_be_null=True, timestamp_parsers=[])
        table = pacsv.read_csv(self.path, read_options=ropts, parse_options=popts,
                               convert_options=copts)
        return table, bad

    def load(self, columns: Sequence[str], string_columns: Sequence[str] = (),
             int_columns: Sequence[str] = ()) -> None:
        columns = list(dict.fromkeys(columns))
        # Ids are read as int64, never inferred: a column with one value beyond 2^64 would
        # be inferred as double and round every large id (2^62 + 1 -> 2^62). Any value
        # that is not an int64 fails the typed read, and the text re-read below reports it.
        types = {c: pa.int64() for c in int_columns}
        types.update({c: pa.string() for c in string_columns})
        try:
            try:
                table, bad = self._read(columns, types, threads=True)
            except pa.ArrowInvalid as e:
                if "conversion error" not in str(e).lower():
                    raise
                # Type inference failed on a later block: read every column as text.
                log.debug("%s: re-reading as text after %s", self.path, e)
                types = {c: pa.string() for c in columns}
                table, bad = self._read(columns, types, threads=True)
            if bad and any(b[0] is None for b in bad):
                table, bad = self._read(columns, types, threads=False)  # to get line numbers
        except (pa.ArrowInvalid, OSError) as e:
            raise IngestError(f"{self.path}: cannot read CSV: {e}") from None
        n = table.num_rows
        lines = None
        if bad:
            bad_lines = np.array(sorted(b[0] for b in bad), dtype=np.int64)
            all_lines = np.arange(self.first_line, self.first_line + n + len(bad), dtype=np.int64)
            lines = all_lines[~np.isin(all_lines, bad_lines)]
            for number, expected, actual, text in sorted(bad, key=lambda b: b[0]):
                snippet = text if len(text) <= 60 else text[:57] + "..."
                self.extra.append((int(number), f"{self.path}:{number}",
                                   f"expected {expected} fields, got {actual}: {snippet!r}"))
        # Drop empty lines (every column null) without reporting them.
        if n and table.num_columns:
            empty = np.ones(n, dtype=bool)
            for col in table.columns:
                empty &= col.is_null().to_numpy(zero_copy_only=False)
            if empty.any():
                keep = ~empty
                if lines is None:
                    lines = np.arange(self.first_line, self.first_line + n, dtype=np.int64)
                lines = lines[keep]
                table = table.filter(pa.array(keep))
                log.debug("%s: skipped %d empty lines", self.path, int(empty.sum()))
        self._row_lines = lines
        self.num_rows = table.num_rows
        self._cols = {c: table.column(c).combine_chunks() for c in columns}


class ParquetTable(Table):
    kind = "parquet"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        if not self.path.is_file():
            raise IngestError(f"{self.path}: no such file")
        try:
            self._schema = pq.read_schema(self.path)
        except (pa.ArrowException, OSError) as e:
            raise IngestError(f"{self.path}: cannot read Parquet: {e}") from None

    def column_names(self) -> List[str]:
        return list(self._schema.names)

    def load(self, columns: Sequence[str], string_columns: Sequence[str] = (),
             int_columns: Sequence[str] = ()) -> None:
        columns = list(dict.fromkeys(columns))
        try:
            table = pq.read_table(self.path, columns=columns)
        except (pa.ArrowException, OSError) as e:
            raise IngestError(f"{self.path}: cannot read Parquet: {e}") from None
        self.num_rows = table.num_rows
        self._cols = {c: table.column(c).combine_chunks() for c in columns}


class NpyTable(Table):
    kind = "npy"

    def __init__(self, path: Path, files: Optional[Dict[str, str]] = None) -> None:
        super().__init__(path)
        if not self.path.is_dir():
            raise IngestError(f"{self.path}: NPY input must be a directory of .npy files")
        self._files = {p.stem: p for p in sorted(self.path.glob("*.npy"))}
        for col, name in (files or {}).items():
            self._files[str(col)] = self.path / name

    def column_names(self) -> List[str]:
        return list(self._files)

    def file_of(self, column: str) -> Path:
        return self._files.get(column, self.path / f"{column}.npy")

    def missing_column(self, name: str, what: str) -> IngestError:
        have = ", ".join(p.name for p in self._files.values()) or "none"
        return IngestError(f"{self.file_of(name)}: missing file for {what} (files: {have})")

    def location(self, row: int, column: Optional[str] = None) -> str:
        if column is None:
            return f"{self.path}: row {row}"
        return f"{self.file_of(column)}: row {row}"

    def load(self, columns: Sequence[str], string_columns: Sequence[str] = (),
             int_columns: Sequence[str] = ()) -> None:
        columns = list(dict.fromkeys(columns))
        first = None
        for c in columns:
            f = self.file_of(c)
            if not f.is_file():
                raise self.missing_column(c, f"column {c!r}")
            try:
                arr = np.load(f, mmap_mode="r", allow_pickle=False)
            except (ValueError, OSError) as e:
                raise IngestError(f"{f}: cannot read NPY: {e}") from None
            if arr.ndim == 0 or arr.dtype.kind not in "biuf" or arr.dtype.names:
                raise IngestError(f"{f}: expected a numeric array with one row per item, got "
                                  f"shape {arr.shape} {arr.dtype}")
            if first is None:
                first = (f, arr.shape[0])
            elif arr.shape[0] != first[1]:
                raise IngestError(f"{f}: has {arr.shape[0]} rows but {first[0].name} has {first[1]}")
            self._cols[c] = arr
        self.num_rows = 0 if first is None else first[1]


def infer_format(path: Path) -> str:
    """``csv`` / ``parquet`` / ``npy`` from a path (directories are NPY)."""
    suffix = path.suffix.lower()
    if suffix in (".gz", ".bz2", ".zst", ".lz4") and len(path.suffixes) > 1:
        suffix = path.suffixes[-2].lower()  # compressed CSV, e.g. edges.csv.gz
    if path.is_dir() or suffix == ".npy":
        return "npy"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv", ".tsv", ".txt"):
        return "csv"
    raise IngestError(f"{path}: cannot tell the input format from the name; add "
                      f"format: csv, parquet or npy")


def expand_paths(path: Union[str, Sequence[str]], base: Path) -> List[Path]:
    """Resolve one path, a glob or a list of them relative to ``base``; globs must match."""
    items = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    out: List[Path] = []
    for item in items:
        p = Path(os.path.expanduser(str(item)))
        if not p.is_absolute():
            p = base / p
        if any(ch in str(item) for ch in "*?["):
            matches = sorted(Path(m) for m in _glob.glob(str(p)))
            if not matches:
                raise IngestError(f"{p}: the pattern matches no file")
            out.extend(matches)
        else:
            if not p.exists():
                raise IngestError(f"{p}: no such file or directory")
            out.append(p)
    return out


def open_table(path: Path, fmt: Optional[str] = None, *, delimiter: Optional[str] = None,
               header: bool = True, column_names: Optional[Sequence[str]] = None,
               files: Optional[Dict[str, str]] = None) -> Table:
    """Open an input (columns are read later by :meth:`Table.load`)."""
    fmt = fmt or infer_format(path)
    if fmt == "csv":
        if delimiter is None:
            delimiter = "\t" if ".tsv" in [x.lower() for x in path.suffixes] else ","
        return CsvTable(path, delimiter, header, column_names)
    if fmt == "parquet":
        return ParquetTable(path)
    if fmt == "npy":
        return NpyTable(path, files)
    raise IngestError(f"{path}: unknown format {fmt!r}; expected csv, parquet or npy")


# ----------------------------------------------------------------------------- numbers


def _value_str(raw, row: int) -> str:
    if isinstance(raw, np.ndarray):
        v = raw[row]
        return repr(v.tolist() if isinstance(v, np.ndarray) else v.item())
    v = raw[row].as_py()
    if isinstance(v, str) and len(v) > 40:
        v = v[:37] + "..."
    return repr(v)


def _float_reasons(values: np.ndarray, want_int: bool, reasons: np.ndarray) -> np.ndarray:
    """Reason codes for float64 ``values`` (in place on rows still OK)."""
    ok = reasons == OK
    if want_int:
        nan = np.isnan(values)
        inf = np.isinf(values)
        with np.errstate(invalid="ignore"):
            frac = ~nan & ~inf & (values != np.trunc(values))
            rng = ~nan & ~inf & ((values < -(2.0 ** 63)) | (values >= 2.0 ** 63))
        reasons[ok & nan] = NAN
        reasons[ok & inf] = INFINITE
        reasons[ok & frac] = NON_INTEGRAL
        reasons[ok & rng & ~frac] = OUT_OF_RANGE
    else:
        with np.errstate(invalid="ignore"):
            big = np.isfinite(values) & (np.abs(values) > _F32_MAX)
        reasons[ok & big] = OUT_OF_RANGE
    return reasons


def _finish(values: np.ndarray, reasons: np.ndarray, want_int: bool) -> np.ndarray:
    """Convert float64/int64 ``values`` to int64/float32; bad rows become 0."""
    bad = reasons != OK
    if want_int:
        if values.dtype == np.int64:
            if not bad.any():
                return values
            return np.where(bad, 0, values)
        with np.errstate(invalid="ignore"):
            return np.where(bad, 0, values).astype(np.int64)
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.asarray(values, dtype=np.float32)
    if bad.any():
        out = np.where(bad, np.float32(0), out)
    return out


def _numeric_string(arr: pa.Array, want_int: bool) -> Tuple[np.ndarray, np.ndarray]:
    n = len(arr)
    reasons = np.zeros(n, dtype=np.int8)
    null = arr.is_null().to_numpy(zero_copy_only=False)
    reasons[null] = MISSING
    trimmed = pc.replace_substring_regex(pc.utf8_trim_whitespace(arr), r"^\+", "")
    is_float = pc.match_substring_regex(trimmed, _FLOAT_RE).fill_null(False).to_numpy(zero_copy_only=False)
    reasons[~null & ~is_float] = NON_NUMERIC
    if want_int:
        is_int = pc.match_substring_regex(trimmed, _INT_RE).fill_null(False).to_numpy(zero_copy_only=False)
        values = np.zeros(n, dtype=np.int64)
        if is_int.any():
            values[is_int] = pc.cast(trimmed.filter(pa.array(is_int)), pa.int64()).to_numpy(zero_copy_only=False)
        rest = is_float & ~is_int
        if rest.any():
            idx = np.flatnonzero(rest)
            strs = trimmed.filter(pa.array(rest)).to_pylist()
            is19 = pc.match_substring_regex(pa.array(strs, pa.string()), _INT19_RE).to_numpy(zero_copy_only=False)
            fl = pc.cast(pa.array(strs, pa.string()), pa.float64()).to_numpy(zero_copy_only=False)
            sub = np.zeros(len(idx), dtype=np.int8)
            _float_reasons(fl, True, sub)
            for j in np.flatnonzero(is19):  # 19-digit integers: exact, in Python (rare)
                v = int(strs[j])
                if -(2 ** 63) <= v < 2 ** 63:
                    sub[j] = OK
                    values[idx[j]] = v
                else:
                    sub[j] = OUT_OF_RANGE
            okf = (sub == OK) & ~is19
            with np.errstate(invalid="ignore"):
                values[idx[okf]] = fl[okf].astype(np.int64)
            reasons[idx] = sub
        return values, reasons
    values = np.full(n, np.nan, dtype=np.float64)
    if is_float.any():
        values[is_float] = pc.cast(trimmed.filter(pa.array(is_float)), pa.float64()).to_numpy(zero_copy_only=False)
        overflow = np.isinf(values) & is_float
        if overflow.any():  # "1e400" parses as inf: out of range unless it says inf
            literal = pc.match_substring_regex(trimmed, r"^-?[iI][nN][fF]").fill_null(False)
            reasons[overflow & ~literal.to_numpy(zero_copy_only=False)] = OUT_OF_RANGE
    _float_reasons(values, False, reasons)
    return values, reasons


def _numeric(raw, want_int: bool, where: str) -> Tuple[np.ndarray, np.ndarray]:
    """``(values, reasons)`` of a 1-D column: int64 (``want_int``) or float32 values, with
    a reason code per row (0 = OK). Raises IngestError for a column type that can never be
    numeric."""
    if isinstance(raw, np.ndarray):
        n = len(raw)
        reasons = np.zeros(n, dtype=np.int8)
        kind = raw.dtype.kind
        if kind in "bi":
            values = np.asarray(raw, dtype=np.int64 if want_int else np.float64)
            return _finish(values, reasons, want_int), reasons
        if kind == "u":
            if want_int:
                big = np.asarray(raw) > np.iinfo(np.int64).max
                reasons[big] = OUT_OF_RANGE
                return _finish(np.where(big, 0, raw).astype(np.int64), reasons, True), reasons
            return _finish(np.asarray(raw, dtype=np.float64), reasons, False), reasons
        if kind == "f":
            values = np.asarray(raw, dtype=np.float64)
            _float_reasons(values, want_int, reasons)
            return _finish(values, reasons, want_int), reasons
        raise IngestError(f"{where}: unsupported dtype {raw.dtype}")
    arr = raw
    t = arr.type
    n = len(arr)
    reasons = np.zeros(n, dtype=np.int8)
    if pa.types.is_null(t):
        reasons[:] = MISSING
        return _finish(np.zeros(n), reasons, want_int), reasons
    if pa.types.is_dictionary(t):
        arr = arr.cast(t.value_type)
        t = arr.type
    if pa.types.is_boolean(t):
        arr = arr.cast(pa.int8())
        t = arr.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        null = arr.is_null().to_numpy(zero_copy_only=False) if arr.null_count else None
        if null is not None:
            reasons[null] = MISSING
        if pa.types.is_integer(t) and want_int:
            if pa.types.is_unsigned_integer(t) and t.bit_width == 64:
                big = pc.greater(arr, pa.scalar(np.iinfo(np.int64).max, pa.uint64())).fill_null(False)
                big = big.to_numpy(zero_copy_only=False)
                reasons[big & (reasons == OK)] = OUT_OF_RANGE
                arr = pc.if_else(pa.array(big), pa.scalar(0, t), arr)
            values = arr.fill_null(0).cast(pa.int64()).to_numpy(zero_copy_only=False)
            return _finish(values, reasons, True), reasons
        values = arr.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
        _float_reasons(values, want_int, reasons)
        return _finish(values, reasons, want_int), reasons
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        try:
            arr = arr.cast(pa.string())
        except pa.ArrowException:
            raise IngestError(f"{where}: a column of type {t} cannot hold numbers") from None
    values, reasons = _numeric_string(arr, want_int)
    return _finish(values, reasons, want_int), reasons


_REASON_TEXT = {
    MISSING: "missing value",
    NON_NUMERIC: "non-numeric value {v}",
    NAN: "NaN in an int64 column",
    INFINITE: "infinite value in an int64 column",
    NON_INTEGRAL: "non-integral value {v} in an int64 column",
    OUT_OF_RANGE: "value {v} out of the {dtype} range",
    NEGATIVE: "value {v} must be finite and >= 0",
    INF_FEATURE: "infinite value {v} in a float32 feature (features must be finite)",
}


def _problems(table: Table, reasons: np.ndarray, label: str, column: str, raw, dtype: str,
              text_of: Optional[Callable[[int, int], str]] = None) -> List[Problem]:
    out = []
    if not reasons.any():
        return out
    for code in np.unique(reasons[reasons != OK]).tolist():
        rows = np.flatnonzero(reasons == code)

        def describe(row, code=code):
            if text_of is not None:
                return f"{label}: {text_of(row, code)}"
            v = _value_str(raw, row) if code != MISSING else ""
            return f"{label}: " + _REASON_TEXT[code].format(v=v, dtype=dtype)

        out.append(Problem(table, rows, describe, column))
    return out


def int_column(table: Table, column: str, label: str) -> Tuple[np.ndarray, List[Problem]]:
    """int64 values of a 1-D column (ids, int64 scalar features) and the bad rows."""
    raw = _flat(table.raw(column))
    _check_1d(table, column, raw, label)
    values, reasons = _numeric(raw, True, str(table.path))
    return values, _problems(table, reasons, label, column, raw, "int64")


def str_column(table: Table, column: str, label: str) -> Tuple[np.ndarray, List[Problem]]:
    """String values (object array of str, surrounding whitespace removed) of a 1-D column
    (string ids) and the rows where the value is missing."""
    raw = table.raw(column)
    if isinstance(raw, np.ndarray):
        raise IngestError(f"{table.file_of(column)}: {label} holds string ids, which NPY inputs "
                          f"cannot carry; give a CSV or Parquet input")
    _check_1d(table, column, raw, label)
    arr = raw if pa.types.is_string(raw.type) or pa.types.is_large_string(raw.type) else raw.cast(pa.string())
    arr = pc.utf8_trim_whitespace(arr)
    missing = (arr.is_null().to_numpy(zero_copy_only=False) |
               (pc.utf8_length(arr).fill_null(0).to_numpy(zero_copy_only=False) == 0))
    values = np.asarray(arr.fill_null("").to_numpy(zero_copy_only=False), dtype=object)
    reasons = np.where(missing, MISSING, OK).astype(np.int8)
    return values, _problems(table, reasons, label, column, raw, "string")


def float_column(table: Table, column: str, label: str, *, nonneg_finite: bool = False,
                 ) -> Tuple[np.ndarray, List[Problem]]:
    """float32 values of a 1-D column and the bad rows; with ``nonneg_finite`` (edge
    weights) NaN, inf and negative values are bad too."""
    raw = _flat(table.raw(column))
    _check_1d(table, column, raw, label)
    values, reasons = _numeric(raw, False, str(table.path))
    if nonneg_finite:
        with np.errstate(invalid="ignore"):
            bad = (reasons == OK) & ~(np.isfinite(values) & (values >= 0))
        if bad.any():
            reasons[bad] = NEGATIVE
            values = np.where(bad, np.float32(0), values)
    return values, _problems(table, reasons, label, column, raw, "float32")


def _flat(raw):
    if isinstance(raw, np.ndarray) and raw.ndim == 2 and raw.shape[1] == 1:
        return raw.reshape(-1)
    return raw


def _check_1d(table: Table, column: str, raw, label: str) -> None:
    if isinstance(raw, np.ndarray):
        if raw.ndim != 1 and not (raw.ndim == 2 and raw.shape[1] == 1):
            raise IngestError(f"{table.file_of(column)}: {label} needs one value per row, "
                              f"got an array of shape {raw.shape}")
    elif pa.types.is_list(raw.type) or pa.types.is_large_list(raw.type) or \
            pa.types.is_fixed_size_list(raw.type):
        raise IngestError(f"{table.header_location()}: {label} needs one value per row, "
                          f"column {column!r} holds lists")


# ----------------------------------------------------------------------------- features


def resolve_feature_columns(table: Table, spec: FeatureSpec, option, what: str
                            ) -> Tuple[str, Union[str, List[str]]]:
    """Which columns hold feature ``spec`` in ``table``: ``("column", name)`` for one
    column (a scalar, a list column, a text column of separated numbers or an N-D NPY
    array) or ``("columns", [names])`` for one column per element.

    ``option``: None (a column named like the feature, else columns ``<name>_0`` ..
    ``<name>_{w-1}``), a column name, ``{column: c}``, ``{columns: [...]}`` or
    ``{prefix: p}`` (columns ``p0`` .. ``p{w-1}``). Raises IngestError for missing columns
    or a column count that differs from the feature's width."""
    names = table.column_names()
    width = spec.width

    def by_prefix(prefix: str, explicit: bool):
        found = {}
        for c in names:
            if c.startswith(prefix) and c[len(prefix):].isdigit():
                found[int(c[len(prefix):])] = c
        if not found:
            if explicit:
                raise table.missing_column(f"{prefix}0", f"{what} (prefix {prefix!r})")
            return None
        want = list(range(width))
        if sorted(found) != want:
            missing = [f"{prefix}{i}" for i in want if i not in found]
            if missing:
                raise table.missing_column(missing[0], f"{what} (expects {width} columns "
                                           f"{prefix}0..{prefix}{width - 1})")
            raise IngestError(f"{table.header_location()}: wrong feature width for {what}: "
                              f"expects {width} columns {prefix}0..{prefix}{width - 1}, found "
                              f"{len(found)} columns with prefix {prefix!r}")
        return "columns", [found[i] for i in want]

    if option is None:
        if spec.name in names:
            return "column", spec.name
        got = by_prefix(spec.name + "_", explicit=False)
        if got is None:
            raise table.missing_column(spec.name, what)
        return got
    if isinstance(option, str):
        if option not in names:
            raise table.missing_column(option, what)
        return "column", option
    if isinstance(option, dict) and len(option) == 1:
        (k, v), = option.items()
        if k == "column" and isinstance(v, str):
            return resolve_feature_columns(table, spec, v, what)
        if k == "prefix" and isinstance(v, str):
            return by_prefix(v, explicit=True)
        if k == "columns" and isinstance(v, list) and all(isinstance(c, str) for c in v):
            if len(v) != width:
                raise IngestError(f"{table.header_location()}: wrong feature width for {what}: "
                                  f"expects {width} columns, the spec lists {len(v)}")
            for c in v:
                if c not in names:
                    raise table.missing_column(c, what)
            return "columns", list(v)
    raise IngestError(f"{what}: a feature source must be a column name, {{column: c}}, "
                      f"{{columns: [c0, c1, ...]}} or {{prefix: p}}, got {option!r}")


def _feature_numeric(raw, want_int: bool, where: str) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`_numeric` for feature values: an infinite float32 value is a bad row too
    (a model fed inf trains on NaN)."""
    values, reasons = _numeric(raw, want_int, where)
    if not want_int:
        inf = np.isinf(values) & (reasons == OK)
        if inf.any():
            reasons[inf] = INF_FEATURE
            values = np.where(inf, np.float32(0), values)
    return values, reasons


def feature_column(table: Table, spec: FeatureSpec, source: Tuple[str, Union[str, List[str]]],
                   label: str) -> Tuple[np.ndarray, List[Problem]]:
    """Feature values of shape ``(num_rows, *spec.shape)`` and dtype ``spec.dtype`` plus the
    bad rows (bad rows hold zeros)."""
    want_int = spec.dtype == "int64"
    width = spec.width
    n = table.num_rows
    kind, cols = source
    dtype = spec.dtype
    if kind == "columns":
        out = np.empty((n, width), dtype=spec.numpy_dtype)
        problems: List[Problem] = []
        for j, c in enumerate(cols):
            raw = _flat(table.raw(c))
            _check_1d(table, c, raw, f"{label} column {c!r}")
            values, reasons = _feature_numeric(raw, want_int, str(table.path))
            out[:, j] = values.reshape(-1)
            problems += _problems(table, reasons, f"{label} column {c!r}", c, raw, dtype)
        return out.reshape((n,) + spec.shape), problems
    col = cols
    raw = table.raw(col)
    if isinstance(raw, np.ndarray):
        per_row = int(np.prod(raw.shape[1:])) if raw.ndim > 1 else 1
        if per_row != width:
            raise IngestError(f"{table.file_of(col)}: wrong feature width for {label}: expects "
                              f"shape {(n,) + spec.shape}, got {raw.shape}")
        flat = np.asarray(raw).reshape(-1)
        values, reasons = _feature_numeric(flat, want_int, str(table.file_of(col)))
        row_reason = reasons.reshape(n, width).max(axis=1) if width > 1 else reasons

        def text_of(row, code):
            elems = np.asarray(raw).reshape(n, width)[row]
            er = reasons.reshape(n, width)[row]
            j = int(np.argmax(er != OK))
            return f"element {j}: " + _REASON_TEXT[int(er[j])].format(
                v=repr(elems[j].item()), dtype=dtype)

        values = values.reshape((n,) + spec.shape)
        if spec.is_scalar:
            return values, _problems(table, reasons, label, col, flat, dtype)
        return values, _problems(table, row_reason, label, col, raw, dtype, text_of)
    t = raw.type
    is_list = pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t)
    is_text = pa.types.is_string(t) or pa.types.is_large_string(t)
    if not is_list and not is_text:
        if width == 1:
            values, reasons = _feature_numeric(raw, want_int, str(table.path))
            return values.reshape((n,) + spec.shape), _problems(table, reasons, label, col, raw, dtype)
        raise IngestError(f"{table.header_location()}: wrong feature width for {label}: column "
                          f"{col!r} holds one {t} per row but the feature has {width} values; "
                          f"give a list column, a text column like '0.1 0.2 ...', or "
                          f"{{prefix: ...}} / {{columns: [...]}}")
    if is_text:
        if width == 1 and spec.is_scalar:
            values, reasons = _feature_numeric(raw, want_int, str(table.path))
            return values, _problems(table, reasons, label, col, raw, dtype)
        trimmed = pc.utf8_trim(raw, " \t[]()")
        lists = pc.split_pattern_regex(trimmed, r"[\s,;]+")
    else:
        lists = raw
        if pa.types.is_fixed_size_list(t):
            lists = lists.cast(pa.list_(t.value_type))
    null = lists.is_null().to_numpy(zero_copy_only=False)
    lengths = pc.list_value_length(lists).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    row_reason = np.zeros(n, dtype=np.int8)
    row_reason[null] = MISSING
    row_reason[~null & (lengths != width)] = WIDTH
    elems = pc.list_flatten(lists)
    values_e, reasons_e = _feature_numeric(elems, want_int, str(table.path))
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if reasons_e.any():
        elem_row = np.repeat(np.arange(n), lengths)
        bad_rows = np.unique(elem_row[reasons_e != OK])
        sel = bad_rows[row_reason[bad_rows] == OK]
        row_reason[sel] = NON_NUMERIC  # detailed below
    good = row_reason == OK
    out = np.zeros((n, width), dtype=spec.numpy_dtype)
    if good.all():
        out[:] = values_e.reshape(n, width)
    elif good.any():
        idx = (offsets[:-1][good][:, None] + np.arange(width)[None, :])
        out[good] = values_e[idx]

    def text_of(row, code):
        if code == MISSING:
            return "missing value"
        if code == WIDTH:
            return f"wrong feature width: expected {width} values, got {int(lengths[row])}"
        lo, hi = int(offsets[row]), int(offsets[row + 1])
        er = reasons_e[lo:hi]
        j = int(np.argmax(er != OK))
        return f"element {j}: " + _REASON_TEXT[int(er[j])].format(
            v=_value_str(elems, lo + j), dtype=dtype)

    return out.reshape((n,) + spec.shape), _problems(table, row_reason, label, col, raw, dtype, text_of)
