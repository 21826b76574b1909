"""Graph schemas: node types, canonical edge types and their typed features.

:class:`GraphSchema` declares what a heterogeneous graph may hold, in DGL's vocabulary:
node types with named features (:class:`FeatureSpec`: ``float32`` or ``int64``, a per-row
``shape``) and canonical edge types ``(src, relation, dst)`` with an optional weight
(``weighted: true``), ``out_adjacency: true`` (also store the CSR with the source's
partition, for ``direction="out"`` sampling), edge features, and ``undirected: true`` or a
``reverse`` edge type kept in sync. Schemas are immutable, hashable and round-trip through
dicts, YAML and JSON (:meth:`GraphSchema.load` / :meth:`GraphSchema.save`); every error is a
:class:`SchemaError` (a ``ValueError``) naming the item. Reserved names: features ``_ID`` and
``_TYPE``, and the edge feature ``weight``. The YAML format is documented in
``graphplat ingest --help``.
"""
from __future__ import annotations

import difflib
import json
import logging
import math
import numbers
import os
import pathlib
import re
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import yaml

from graphplat.atomic import write_atomic
from graphplat.errors import SchemaError
from graphplat.typing import EdgeKey

__all__ = ["FeatureSpec", "NodeType", "EdgeType", "GraphSchema", "DTYPES",
           "RESERVED_FEATURE_NAMES", "RESERVED_EDGE_FEATURE_NAMES"]

#: The id types of a node type: int64 ids, or strings mapped to int64 by the store.
ID_TYPES: Tuple[str, ...] = ("int64", "string")
#: The feature dtypes a schema may declare.
DTYPES: Tuple[str, ...] = ("float32", "int64")
#: Feature names reserved on every node and edge type (DGL's NID/EID/NTYPE/ETYPE keys).
RESERVED_FEATURE_NAMES: Tuple[str, ...] = ("_ID", "_TYPE")
#: Feature names additionally reserved on edge types (``weight`` comes from ``weighted``).
RESERVED_EDGE_FEATURE_NAMES: Tuple[str, ...] = RESERVED_FEATURE_NAMES + ("weight",)

_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*\Z")
_MAX_NAME_LEN = 128
_SHORTHAND_RE = re.compile(r"\s*([A-Za-z0-9_]+)\s*(?:\[\s*([^\]]*)\s*\])?\s*\Z")
_FLOAT32_MAX = float(np.finfo(np.float32).max)

log = logging.getLogger(__name__)
_warned_legacy_reverse = False


def _legacy_reverse(where: str) -> None:
    global _warned_legacy_reverse
    if not _warned_legacy_reverse:
        _warned_legacy_reverse = True
        log.warning("%s: 'reverse: true' stores the out-adjacency, it creates no reverse edge "
                    "type; write 'out_adjacency: true' (or 'reverse: <relation>' to declare a "
                    "reverse edge type)", where)


# ----------------------------------------------------------------------------- helpers


def _check_name(kind: str, name: Any, context: str = "") -> str:
    """Validate an identifier-ish name (letters, digits, ``_``, ``-``, ``.``; not starting
    with ``-`` or ``.``; at most 128 characters). Returns it; raises SchemaError."""
    prefix = f"{context}: " if context else ""
    if not isinstance(name, str):
        hint = ""
        if isinstance(name, bool) or name is None or isinstance(name, (int, float)):
            hint = " (quote it in YAML, e.g. 'on', 'null', '1')"
        raise SchemaError(
            f"{prefix}{kind} name must be a string, got {_type_name(name)} {name!r}{hint}")
    if not name:
        raise SchemaError(f"{prefix}{kind} name must not be empty")
    if len(name) > _MAX_NAME_LEN or not _NAME_RE.match(name):
        raise SchemaError(
            f"{prefix}{kind} name {name!r} is invalid: use letters, digits, '_', '-' and '.' "
            f"(not starting with '-' or '.'), at most {_MAX_NAME_LEN} characters")
    return name


def _normalize_dtype(dtype: Any, feature: str) -> str:
    """``"float32"``/``"int64"`` (or the numpy dtype / type equal to one) -> the string."""
    if isinstance(dtype, str):
        if dtype in DTYPES:
            return dtype
        raise SchemaError(
            f"feature {feature!r}: unknown dtype {dtype!r}; expected one of: {', '.join(DTYPES)}")
    if isinstance(dtype, bool) or dtype is None:
        raise SchemaError(
            f"feature {feature!r}: dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise SchemaError(
            f"feature {feature!r}: unknown dtype {dtype!r}; expected one of: {', '.join(DTYPES)}"
        ) from None
    if dt == np.float32:
        return "float32"
    if dt == np.int64:
        return "int64"
    raise SchemaError(
        f"feature {feature!r}: unknown dtype {dt.name!r}; expected one of: {', '.join(DTYPES)}")


def _normalize_shape(shape: Any, feature: str) -> Tuple[int, ...]:
    """A shape given as a sequence of positive ints (or one int) -> tuple of ints."""
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    if isinstance(shape, (str, bytes)) or not isinstance(shape, (tuple, list)):
        raise SchemaError(
            f"feature {feature!r}: shape must be a list of positive integers, got {shape!r}")
    out = []
    for d in shape:
        if isinstance(d, bool) or not isinstance(d, numbers.Integral):
            raise SchemaError(
                f"feature {feature!r}: shape must be a list of positive integers, got {list(shape)!r}")
        if int(d) <= 0:
            raise SchemaError(
                f"feature {feature!r}: shape dimensions must be positive, got {list(shape)!r}")
        out.append(int(d))
    return tuple(out)


def _shape_str(rows: Optional[int], shape: Tuple[int, ...]) -> str:
    dims = ["N" if rows is None else str(rows)] + [str(d) for d in shape]
    return "(" + ", ".join(dims) + (",)" if len(dims) == 1 else ")")


def _suggest(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_keys(obj: Mapping, allowed: Sequence[str], path: str) -> None:
    unknown = [k for k in obj if k not in allowed]
    if unknown:
        parts = []
        for k in unknown:
            parts.append(repr(k) + (_suggest(k, allowed) if isinstance(k, str) else ""))
        raise SchemaError(
            f"{path}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(parts)}; "
            f"allowed keys: {', '.join(allowed)}")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, (list, tuple)):
        return "list"
    return type(value).__name__


def _expect_bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise SchemaError(f"{path} must be true or false, got {_type_name(value)} {value!r}")
    return value


def _expect_mapping(value: Any, path: str, allow_none: bool = False) -> Mapping:
    if value is None and allow_none:
        return {}
    if not isinstance(value, Mapping):
        raise SchemaError(f"{path} must be a mapping, got {_type_name(value)} {value!r}")
    return value


def _where_prefix(where: str) -> str:
    return f" of {where}" if where else ""


# ----------------------------------------------------------------------------- FeatureSpec


@dataclass(frozen=True)
class FeatureSpec:
    """One named feature column of a node or edge type.

    Args:
        name: feature name (letters, digits, ``_``, ``-``, ``.``).
        dtype: ``"float32"`` (dense features, embeddings) or ``"int64"`` (labels,
            categories); the matching numpy dtype or type is accepted and stored as the
            string.
        shape: per-row shape: ``()`` for one scalar per row (a label), ``(128,)`` for a
            128-dim vector; a list or a single int is accepted and stored as a tuple.

    A table of ``N`` rows of this feature is a numpy array of shape ``(N, *shape)``.
    Raises :class:`SchemaError` on an invalid name, dtype or shape.
    """

    name: str
    dtype: str
    shape: Tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _check_name("feature", self.name)
        object.__setattr__(self, "dtype", _normalize_dtype(self.dtype, self.name))
        object.__setattr__(self, "shape", _normalize_shape(self.shape, self.name))

    # ---- properties

    @property
    def width(self) -> int:
        """Number of values per row: the product of ``shape`` (1 for a scalar feature)."""
        return int(math.prod(self.shape))

    @property
    def numpy_dtype(self) -> np.dtype:
        """The numpy dtype of this feature (``np.dtype("float32")`` or ``np.dtype("int64")``)."""
        return np.dtype(self.dtype)

    @property
    def is_scalar(self) -> bool:
        """True when ``shape == ()`` (one value per row)."""
        return self.shape == ()

    @property
    def shorthand(self) -> str:
        """The compact string form: ``"int64"``, ``"float32[16]"``, ``"float32[4,4]"``."""
        if not self.shape:
            return self.dtype
        return f"{self.dtype}[{','.join(str(d) for d in self.shape)}]"

    @classmethod
    def parse(cls, name: str, text: str) -> "FeatureSpec":
        """Build a spec from its shorthand ``text`` (``"int64"``, ``"float32[16]"``,
        ``"float32[4, 4]"``). Returns the FeatureSpec; raises SchemaError naming the
        feature when the text is malformed."""
        if not isinstance(text, str):
            raise SchemaError(
                f"feature {name!r}: spec must be a string like 'float32[16]' or a mapping, "
                f"got {_type_name(text)} {text!r}")
        m = _SHORTHAND_RE.match(text)
        if not m:
            raise SchemaError(
                f"feature {name!r}: cannot parse spec {text!r}; expected 'float32', 'int64', "
                f"'float32[16]' or 'float32[4,4]'")
        dtype, dims = m.group(1), m.group(2)
        shape: Tuple[int, ...] = ()
        if dims is not None:
            parts = [p.strip() for p in dims.split(",")]
            if not all(re.fullmatch(r"[0-9]+", p) for p in parts):
                raise SchemaError(
                    f"feature {name!r}: cannot parse shape in {text!r}; expected positive "
                    f"integers like 'float32[16]' or 'float32[4,4]'")
            shape = tuple(int(p) for p in parts)
        return cls(name, dtype, shape)

    # ---- arrays

    def _describe(self, rows: Optional[int]) -> str:
        return f"shape {_shape_str(rows, self.shape)} {self.dtype}"

    def _shape_error(self, arr: np.ndarray, rows: Optional[int], where: str) -> ValueError:
        return ValueError(
            f"feature {self.name!r}{_where_prefix(where)} expects {self._describe(rows)}, "
            f"got {tuple(arr.shape)} {arr.dtype}")

    def _check_shape(self, arr: np.ndarray, num_rows: Optional[int], where: str) -> None:
        if arr.ndim != 1 + len(self.shape) or tuple(arr.shape[1:]) != self.shape:
            raise self._shape_error(arr, num_rows, where)
        if num_rows is not None and arr.shape[0] != num_rows:
            raise self._shape_error(arr, num_rows, where)

    def validate_array(self, arr: Any, num_rows: Optional[int] = None, where: str = "") -> np.ndarray:
        """Check that ``arr`` is exactly this feature's table: a numpy array of dtype
        ``self.dtype`` (native byte order) and shape ``(num_rows, *shape)``
        (any number of rows when ``num_rows`` is None).

        Args:
            arr: the array to check.
            num_rows: expected number of rows, or None.
            where: what the feature belongs to, for messages, e.g. ``"node type 'paper'"``.

        Returns ``arr`` unchanged. Raises ValueError like "feature 'feat' of node type
        'paper' expects shape (N, 128) float32, got (100, 64) float64". NaN values in
        float32 features are allowed (no value check is made).
        """
        if not isinstance(arr, np.ndarray):
            raise ValueError(
                f"feature {self.name!r}{_where_prefix(where)} expects a numpy array of "
                f"{self._describe(num_rows)}, got {type(arr).__name__}")
        if arr.dtype != self.numpy_dtype or not arr.dtype.isnative:
            raise self._shape_error(arr, num_rows, where)
        self._check_shape(arr, num_rows, where)
        return arr

    def coerce_array(self, arr: Any, num_rows: Optional[int] = None, where: str = "") -> np.ndarray:
        """Convert ``arr`` (a numpy array or anything ``np.asarray`` accepts) to this
        feature's dtype when the conversion is safe, and check its shape.

        Accepted conversions:

        * ``int64`` features: any integer or bool dtype (uint64 values must fit in int64);
          float dtypes only when every value is finite and integral.
        * ``float32`` features: any float, integer or bool dtype; float64 values outside
          the float32 range are rejected (NaN and inf are kept as they are).

        The shape must be ``(num_rows, *shape)`` exactly: no reshaping, so a 1-D array for
        a vector feature, or an ``(N, 1)`` array for a scalar one, is rejected.

        Args:
            arr: the values.
            num_rows: expected number of rows, or None for any.
            where: what the feature belongs to, for messages, e.g. ``"node type 'paper'"``.

        Returns a C-contiguous array of ``self.dtype`` (``arr`` itself when it already is
        one). Raises ValueError naming the feature and the problem.
        """
        try:
            src = np.asarray(arr)
        except (ValueError, TypeError) as e:
            raise ValueError(
                f"feature {self.name!r}{_where_prefix(where)} cannot be read as an array: {e}"
            ) from None
        self._check_shape(src, num_rows, where)
        target = self.numpy_dtype
        kind = src.dtype.kind
        loc = f"feature {self.name!r}{_where_prefix(where)}"
        if src.dtype == target and src.dtype.isnative:
            return np.ascontiguousarray(src)
        if self.dtype == "int64":
            if kind in "bi":
                return np.ascontiguousarray(src, dtype=np.int64)
            if kind == "u":
                if src.size and src.dtype.itemsize >= 8 and int(src.max()) > np.iinfo(np.int64).max:
                    raise ValueError(f"{loc} (int64) got value {int(src.max())} out of the int64 range")
                return np.ascontiguousarray(src, dtype=np.int64)
            if kind == "f":
                flat = src.reshape(-1)
                bad = ~np.isfinite(flat)
                if bad.any():
                    i = int(np.argmax(bad))
                    raise ValueError(
                        f"{loc} (int64) got a non-finite value {flat[i]!r} (NaN or inf) in a "
                        f"{src.dtype} array at flat index {i}")
                frac = flat != np.trunc(flat)
                if frac.any():
                    i = int(np.argmax(frac))
                    raise ValueError(
                        f"{loc} (int64) got a non-integral value {float(flat[i])!r} in a "
                        f"{src.dtype} array at flat index {i}")
                out_of_range = (flat < -(2.0 ** 63)) | (flat >= 2.0 ** 63)
                if out_of_range.any():
                    i = int(np.argmax(out_of_range))
                    raise ValueError(f"{loc} (int64) got value {float(flat[i])!r} out of the int64 range")
                return np.ascontiguousarray(src, dtype=np.int64)
        else:  # float32
            if kind in "biu":
                return np.ascontiguousarray(src, dtype=np.float32)
            if kind == "f":
                with np.errstate(over="ignore", invalid="ignore"):
                    out = np.ascontiguousarray(src, dtype=np.float32)
                if src.dtype.itemsize > 4:
                    overflow = np.isinf(out) & np.isfinite(src)
                    if overflow.any():
                        i = int(np.argmax(overflow.reshape(-1)))
                        raise ValueError(
                            f"{loc} (float32) got value {float(src.reshape(-1)[i])!r} outside "
                            f"the float32 range")
                return out
        raise ValueError(
            f"{loc} expects {self._describe(num_rows)}, got {tuple(src.shape)} {src.dtype} "
            f"which cannot be converted safely")


# ----------------------------------------------------------------------------- features


def _normalize_features(features: Any, owner: str, reserved: Sequence[str]) -> Tuple[FeatureSpec, ...]:
    if isinstance(features, (str, bytes, Mapping)) or not isinstance(features, (tuple, list)):
        raise SchemaError(
            f"{owner}: features must be a tuple of FeatureSpec, got {_type_name(features)}")
    out = []
    seen = set()
    for f in features:
        if not isinstance(f, FeatureSpec):
            raise SchemaError(
                f"{owner}: features must be FeatureSpec instances, got {_type_name(f)} {f!r}")
        if f.name in reserved:
            hint = ("; declare weighted: true for a float32 edge weight"
                    if f.name == "weight" else "")
            raise SchemaError(
                f"{owner}: feature name {f.name!r} is reserved (reserved: "
                f"{', '.join(reserved)}){hint}")
        if f.name in seen:
            raise SchemaError(f"{owner}: duplicate feature name {f.name!r}")
        seen.add(f.name)
        out.append(f)
    return tuple(out)


class _HasFeatures:
    """Feature lookup and table coercion shared by node and edge types."""

    features: Tuple[FeatureSpec, ...]

    def _where(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def feature_names(self) -> List[str]:
        """Names of the declared features, in declaration order."""
        return [f.name for f in self.features]

    def feature(self, name: str) -> FeatureSpec:
        """The FeatureSpec called ``name``; raises SchemaError listing the known features."""
        for f in self.features:
            if f.name == name:
                return f
        known = ", ".join(repr(f.name) for f in self.features) or "none"
        raise SchemaError(
            f"{self._where()} has no feature {name!r}{_suggest(str(name), self.feature_names)}; "
            f"known features: {known}")

    def _all_specs(self) -> Tuple[FeatureSpec, ...]:
        return self.features

    def coerce_features(self, arrays: Mapping[str, Any], num_rows: Optional[int] = None, *,
                        require_all: bool = True) -> Dict[str, np.ndarray]:
        """Check and convert a table of feature columns (see :meth:`FeatureSpec.coerce_array`).

        Args:
            arrays: feature name -> values.
            num_rows: rows every column must have, or None (then all columns must agree).
            require_all: whether every declared feature must be present.

        Returns a new dict name -> converted array. Raises ValueError on an unknown or
        missing feature, a column that cannot be converted, or mismatched row counts.
        """
        specs = {f.name: f for f in self._all_specs()}
        unknown = [k for k in arrays if k not in specs]
        if unknown:
            k = unknown[0]
            known = ", ".join(repr(n) for n in specs) or "none"
            raise ValueError(
                f"{self._where()} has no feature {k!r}{_suggest(str(k), specs)}; known features: {known}")
        if require_all:
            missing = [n for n in specs if n not in arrays]
            if missing:
                raise ValueError(
                    f"{self._where()} is missing feature{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(repr(m) for m in missing)}")
        out: Dict[str, np.ndarray] = {}
        rows = num_rows
        for name, values in arrays.items():
            out[name] = specs[name].coerce_array(values, rows, self._where())
            if rows is None:
                rows = out[name].shape[0]
        return out


# ----------------------------------------------------------------------------- NodeType


@dataclass(frozen=True)
class NodeType(_HasFeatures):
    """A node type and its features.

    Args:
        name: node type name (letters, digits, ``_``, ``-``, ``.``), e.g. ``"user"``.
        features: the node features, a tuple (or list) of :class:`FeatureSpec` with unique
            names; ``_ID`` and ``_TYPE`` are reserved.
        id_type: ``"int64"`` (default: the user's ids are the node ids) or ``"string"``:
            the user's ids are strings (``"u0"``, e-mail hashes) which the store maps to
            int64 node ids 0, 1, ... with a dictionary it keeps (``GraphService.to_internal``
            / ``to_external`` translate).

    Raises :class:`SchemaError` naming the node type when invalid.
    """

    name: str
    features: Tuple[FeatureSpec, ...] = ()
    id_type: str = "int64"

    def __post_init__(self) -> None:
        _check_name("node type", self.name)
        if self.id_type not in ID_TYPES:
            raise SchemaError(f"node type {self.name!r}: id_type must be one of "
                              f"{', '.join(ID_TYPES)}, got {self.id_type!r}")
        object.__setattr__(self, "features", _normalize_features(
            self.features, f"node type {self.name!r}", RESERVED_FEATURE_NAMES))

    def _where(self) -> str:
        return f"node type {self.name!r}"


# ----------------------------------------------------------------------------- EdgeType


@dataclass(frozen=True)
class EdgeType(_HasFeatures):
    """A canonical edge type ``(src, relation, dst)``: edges from ``src`` nodes to ``dst``
    nodes under ``relation``.

    Args:
        src: source node type name.
        relation: relation name, e.g. ``"click"`` (DGL's ``etype``).
        dst: destination node type name.
        weighted: each edge carries a float32 scalar weight (finite, >= 0), stored next to
            the adjacency and used by weighted and top-k sampling; exposed as edge data
            ``"weight"``.
        reverse: relation name of this type's reverse edge type ``(dst, reverse, src)``,
            which :class:`GraphSchema` adds (same weight, features and storage) and ingest
            and ``add_edges`` keep in sync; None for none. (``True``, the old spelling of
            ``out_adjacency``, is read as ``out_adjacency=True`` with a warning.)
        features: edge features (FeatureSpec tuple); names ``_ID``, ``_TYPE`` and
            ``weight`` are reserved.
        out_adjacency: besides the in-adjacency stored with the destination's partition
            (which serves ``direction="in"`` sampling, DGL's default), also store the
            out-adjacency with the source's partition, so ``direction="out"`` sampling is
            answered locally too. Without it, out-direction sampling is not available for
            this edge type. Adds no edges.
        undirected: every edge ``a -> b`` is stored as ``b -> a`` too (``src == dst``
            only; self-loops once).
        reverse_of: set by :class:`GraphSchema` on a derived reverse type: the forward
            type's relation name (not written by :meth:`GraphSchema.to_dict`).

    Raises :class:`SchemaError` naming the edge type when invalid. Whether ``src`` and
    ``dst`` are declared node types is checked by :class:`GraphSchema`.
    """

    src: str
    relation: str
    dst: str
    weighted: bool = False
    reverse: Optional[str] = None
    features: Tuple[FeatureSpec, ...] = ()
    out_adjacency: bool = False
    undirected: bool = False
    reverse_of: Optional[str] = None

    def __post_init__(self) -> None:
        _check_name("source node type", self.src, "edge type")
        _check_name("relation", self.relation, f"edge type with source {self.src!r}")
        _check_name("destination node type", self.dst, f"edge type {self.src}:{self.relation}")
        where = self._where()
        for flag in ("weighted", "out_adjacency", "undirected"):
            if not isinstance(getattr(self, flag), (bool, np.bool_)):
                raise SchemaError(f"{where}: {flag} must be a bool, got {getattr(self, flag)!r}")
            object.__setattr__(self, flag, bool(getattr(self, flag)))
        if isinstance(self.reverse, (bool, np.bool_)):
            if self.reverse:
                _legacy_reverse(where)
                object.__setattr__(self, "out_adjacency", True)
            object.__setattr__(self, "reverse", None)
        elif self.reverse is not None:
            _check_name("reverse relation", self.reverse, where)
            if self.src == self.dst and self.reverse == self.relation:
                raise SchemaError(f"{where}: reverse names the type itself; for edges stored in "
                                  f"both directions write undirected: true")
        if self.reverse_of is not None:
            _check_name("forward relation", self.reverse_of, where)
        if self.undirected:
            if self.src != self.dst:
                raise SchemaError(
                    f"{where}: undirected needs the same source and destination node type; for "
                    f"{self.src!r} -> {self.dst!r} declare a reverse edge type instead "
                    f"(reverse: <relation>, e.g. reverse: {self.relation}-by)")
            if self.reverse is not None:
                raise SchemaError(f"{where}: undirected and reverse exclude each other (an "
                                  f"undirected type already holds both directions)")
        object.__setattr__(self, "features", _normalize_features(
            self.features, where, RESERVED_EDGE_FEATURE_NAMES))

    @property
    def reverse_canonical(self) -> Optional[Tuple[str, str, str]]:
        """``(dst, reverse, src)`` when a reverse type is declared, else None."""
        return (self.dst, self.reverse, self.src) if self.reverse is not None else None

    def _derived_reverse(self) -> "EdgeType":
        return EdgeType(self.dst, self.reverse, self.src, weighted=self.weighted,
                        features=self.features, out_adjacency=self.out_adjacency,
                        reverse_of=self.relation)

    @property
    def canonical(self) -> Tuple[str, str, str]:
        """The canonical edge type ``(src, relation, dst)``."""
        return (self.src, self.relation, self.dst)

    @property
    def canonical_str(self) -> str:
        """The canonical edge type as ``"src:relation:dst"`` (accepted by
        :meth:`GraphSchema.edge_type`)."""
        return f"{self.src}:{self.relation}:{self.dst}"

    @property
    def weight_spec(self) -> Optional[FeatureSpec]:
        """``FeatureSpec("weight", "float32")`` when the edge type is weighted, else None."""
        return FeatureSpec("weight", "float32") if self.weighted else None

    def _where(self) -> str:
        return f"edge type {self.canonical_str!r}"

    def _all_specs(self) -> Tuple[FeatureSpec, ...]:
        return self.features + ((self.weight_spec,) if self.weighted else ())

    def coerce_features(self, arrays: Mapping[str, Any], num_rows: Optional[int] = None, *,
                        require_all: bool = True) -> Dict[str, np.ndarray]:
        """Like :meth:`NodeType.coerce_features`; for a weighted edge type the column
        ``"weight"`` is part of the table (float32 scalar, every value finite and >= 0).
        Returns name -> converted array; raises ValueError."""
        out = super().coerce_features(arrays, num_rows, require_all=require_all)
        w = out.get("weight")
        if w is not None:
            bad = ~(np.isfinite(w) & (w >= 0))
            if bad.any():
                i = int(np.argmax(bad))
                raise ValueError(
                    f"edge weights of {self._where()} must be finite and >= 0, got "
                    f"{float(w[i])!r} at row {i}")
        return out


# ----------------------------------------------------------------------------- GraphSchema


@dataclass(frozen=True)
class GraphSchema:
    """The node types and canonical edge types of a (heterogeneous) graph.

    Args:
        node_types: at least one :class:`NodeType` with unique names (a plain name string
            is accepted for a featureless node type).
        edge_types: :class:`EdgeType` s with unique canonical types whose ``src`` and
            ``dst`` are declared node types (a ``(src, relation, dst)`` tuple is accepted
            for a plain edge type). May be empty.

    Lists are stored as tuples, so schemas are immutable, hashable and compare by value
    (order matters). Raises :class:`SchemaError` naming the offending item when invalid.
    """

    node_types: Tuple[NodeType, ...]
    edge_types: Tuple[EdgeType, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "node_types", self._normalize_node_types(self.node_types))
        object.__setattr__(self, "edge_types", self._normalize_edge_types(self.edge_types))
        self.validate()

    @staticmethod
    def _normalize_node_types(node_types: Any) -> Tuple[NodeType, ...]:
        if isinstance(node_types, (str, bytes, Mapping)) or not isinstance(node_types, (tuple, list)):
            raise SchemaError(f"node_types must be a tuple of NodeType, got {_type_name(node_types)}")
        out = []
        for nt in node_types:
            if isinstance(nt, str):
                nt = NodeType(nt)
            if not isinstance(nt, NodeType):
                raise SchemaError(f"node_types must hold NodeType instances, got {_type_name(nt)} {nt!r}")
            out.append(nt)
        return tuple(out)

    @staticmethod
    def _normalize_edge_types(edge_types: Any) -> Tuple[EdgeType, ...]:
        if isinstance(edge_types, (str, bytes, Mapping)) or not isinstance(edge_types, (tuple, list)):
            raise SchemaError(f"edge_types must be a tuple of EdgeType, got {_type_name(edge_types)}")
        out = []
        for et in edge_types:
            if isinstance(et, tuple) and len(et) == 3:
                et = EdgeType(*et)
            if not isinstance(et, EdgeType):
                raise SchemaError(f"edge_types must hold EdgeType instances, got {_type_name(et)} {et!r}")
            if et.reverse_of is None:  # derived types are rebuilt from their forward type
                out.append(et)
        declared = {et.canonical: et for et in out}
        with_reverse = []
        for et in out:
            with_reverse.append(et)
            if et.reverse is not None:
                if et.reverse_canonical in declared:
                    raise SchemaError(
                        f"edge type {':'.join(et.reverse_canonical)!r} is declared and also "
                        f"created by 'reverse: {et.reverse}' on {et.canonical_str!r}; remove one")
                with_reverse.append(et._derived_reverse())
        return tuple(with_reverse)

    def validate(self) -> None:
        """Check the cross-type rules: at least one node type, unique node type names,
        unique canonical edge types, edge endpoints declared. (Per-type rules are checked
        by each type's constructor.) Returns None; raises SchemaError naming the item."""
        if not self.node_types:
            raise SchemaError("a graph schema needs at least one node type")
        names = set()
        for nt in self.node_types:
            if nt.name in names:
                raise SchemaError(f"duplicate node type {nt.name!r}")
            names.add(nt.name)
        seen = set()
        for et in self.edge_types:
            for role, nt in (("source", et.src), ("destination", et.dst)):
                if nt not in names:
                    raise SchemaError(
                        f"edge type {et.canonical_str!r}: {role} node type {nt!r} is not declared"
                        f"{_suggest(nt, names)}; declared node types: "
                        f"{', '.join(repr(n) for n in self.ntypes)}")
            if et.canonical in seen:
                raise SchemaError(f"duplicate edge type {et.canonical_str!r}")
            seen.add(et.canonical)

    # ---- constructors

    @classmethod
    def homogeneous(cls, num_features: Optional[int] = None, *, feature_name: str = "feat",
                    label: bool = False, label_name: str = "label", weighted: bool = False,
                    out_adjacency: bool = False) -> "GraphSchema":
        """A single-type schema with DGL's default names: node type ``"_N"`` and edge type
        ``("_N", "_E", "_N")``.

        Args:
            num_features: width of a float32 node feature ``feature_name``; None for none.
            feature_name: name of that feature (DGL's conventional ``"feat"``).
            label: add an int64 scalar node feature ``label_name`` (class labels).
            label_name: name of the label feature.
            weighted: the edge type carries float32 weights.
            out_adjacency: also store the out-adjacency (see :class:`EdgeType`).

        Returns the GraphSchema.
        """
        feats = []
        if num_features is not None:
            feats.append(FeatureSpec(feature_name, "float32", (num_features,)))
        if label:
            feats.append(FeatureSpec(label_name, "int64"))
        return cls((NodeType("_N", tuple(feats)),),
                   (EdgeType("_N", "_E", "_N", weighted=weighted, out_adjacency=out_adjacency),))

    # ---- DGL-style views

    @property
    def ntypes(self) -> List[str]:
        """Node type names in declaration order (a new list, like DGL's ``g.ntypes``)."""
        return [nt.name for nt in self.node_types]

    @property
    def etypes(self) -> List[str]:
        """Relation names of the edge types in declaration order (may repeat, like DGL)."""
        return [et.relation for et in self.edge_types]

    @property
    def canonical_etypes(self) -> List[Tuple[str, str, str]]:
        """``(src, relation, dst)`` tuples in declaration order (like DGL)."""
        return [et.canonical for et in self.edge_types]

    @property
    def is_homogeneous(self) -> bool:
        """True when the schema has one node type and at most one edge type."""
        return len(self.node_types) == 1 and len(self.edge_types) <= 1

    def node_type(self, name: str) -> NodeType:
        """The NodeType called ``name``; raises SchemaError listing the known node types."""
        for nt in self.node_types:
            if nt.name == name:
                return nt
        raise SchemaError(
            f"unknown node type {name!r}{_suggest(str(name), self.ntypes)}; known node types: "
            f"{', '.join(repr(n) for n in self.ntypes)}")

    def _known_etypes(self) -> str:
        return ", ".join(repr(et.canonical_str) for et in self.edge_types) or "none"

    def edge_type(self, key: EdgeKey) -> EdgeType:
        """Look up an edge type by ``(src, relation, dst)`` tuple, ``"src:relation:dst"``
        string, EdgeType, or bare relation name when exactly one edge type has it.

        Returns the schema's EdgeType; raises SchemaError listing the known edge types when
        the key is unknown, or the candidates when a relation name is ambiguous.
        """
        if isinstance(key, EdgeType):
            key = key.canonical
        if isinstance(key, str):
            parts = key.split(":")
            if len(parts) == 3:
                key = tuple(parts)
            elif len(parts) != 1:
                raise SchemaError(
                    f"edge type key {key!r} must be 'src:relation:dst' or a relation name")
            else:
                matches = [et for et in self.edge_types if et.relation == key]
                if len(matches) == 1:
                    return matches[0]
                if not matches:
                    raise SchemaError(
                        f"unknown edge type {key!r}{_suggest(key, set(self.etypes))}; known edge "
                        f"types: {self._known_etypes()}")
                raise SchemaError(
                    f"relation {key!r} is ambiguous, it names "
                    f"{', '.join(repr(et.canonical_str) for et in matches)}; use a "
                    f"(src, relation, dst) tuple or 'src:relation:dst'")
        if isinstance(key, (tuple, list)) and len(key) == 3:
            key = tuple(key)
            for et in self.edge_types:
                if et.canonical == key:
                    return et
            raise SchemaError(
                f"unknown edge type {':'.join(map(str, key))!r}; known edge types: {self._known_etypes()}")
        raise SchemaError(
            f"edge type key must be a (src, relation, dst) tuple, 'src:relation:dst' or a "
            f"relation name, got {key!r}")

    def edge_types_from(self, ntype: str) -> Tuple[EdgeType, ...]:
        """Edge types whose source is node type ``ntype`` (which must exist), in order."""
        self.node_type(ntype)
        return tuple(et for et in self.edge_types if et.src == ntype)

    def edge_types_to(self, ntype: str) -> Tuple[EdgeType, ...]:
        """Edge types whose destination is node type ``ntype`` (which must exist), in order."""
        self.node_type(ntype)
        return tuple(et for et in self.edge_types if et.dst == ntype)

    def synced_writes(self, key: EdgeKey) -> List[Tuple[EdgeType, bool]]:
        """Where an edge batch given for edge type ``key`` is stored: ``[(edge type,
        flipped)]``, the type itself first (``flipped`` False), then its mirror in the same
        type (undirected) or in its reverse / forward type (``flipped``: store ``dst ->
        src``; for an undirected type leave out self-loops)."""
        et = self.edge_type(key)
        out = [(et, False)]
        if et.undirected:
            out.append((et, True))
        if et.reverse is not None:
            out.append((self.edge_type(et.reverse_canonical), True))
        if et.reverse_of is not None:
            out.append((self.edge_type((et.dst, et.reverse_of, et.src)), True))
        return out

    # ---- dict form

    def to_dict(self, *, compact: bool = False) -> Dict[str, Any]:
        """The schema as plain dicts/lists/str/int/bool (JSON- and YAML-safe).

        With ``compact=False`` (the default) every field is explicit::

            {"node_types": {"user": {"features": {"emb": {"dtype": "float32", "shape": [16]}}}},
             "edge_types": [{"src": "user", "relation": "click", "dst": "item",
                             "weighted": False, "out_adjacency": False, "undirected": False,
                             "reverse": None, "features": {}}]}

        With ``compact=True`` features use the shorthand (``"float32[16]"``), plain edge
        types the ``[src, relation, dst]`` list form and defaults are left out (the form
        :meth:`to_yaml` writes). Both are read back by :meth:`from_dict`.
        Returns a new dict.
        """
        def feats(features: Tuple[FeatureSpec, ...]) -> Dict[str, Any]:
            if compact:
                return {f.name: f.shorthand for f in features}
            return {f.name: {"dtype": f.dtype, "shape": list(f.shape)} for f in features}

        node_types: Dict[str, Any] = {}
        for nt in self.node_types:
            node_types[nt.name] = {"features": feats(nt.features)} if (nt.features or not compact) else {}
            if nt.id_type != "int64" or not compact:
                node_types[nt.name]["id_type"] = nt.id_type
        edge_types: List[Any] = []
        for et in self.edge_types:
            if et.reverse_of is not None:
                continue  # derived from its forward type's 'reverse'
            if compact and not (et.weighted or et.out_adjacency or et.undirected or
                                et.reverse is not None or et.features):
                edge_types.append([et.src, et.relation, et.dst])
                continue
            d: Dict[str, Any] = {"src": et.src, "relation": et.relation, "dst": et.dst}
            if et.weighted or not compact:
                d["weighted"] = et.weighted
            if et.out_adjacency or not compact:
                d["out_adjacency"] = et.out_adjacency
            if et.undirected or not compact:
                d["undirected"] = et.undirected
            if et.reverse is not None or not compact:
                d["reverse"] = et.reverse
            if et.features or not compact:
                d["features"] = feats(et.features)
            edge_types.append(d)
        return {"node_types": node_types, "edge_types": edge_types}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "GraphSchema":
        """Build a schema from its dict form (explicit or compact, see :meth:`to_dict`).

        Accepted forms:

        * ``node_types``: a mapping name -> spec (spec: ``{features: ...}`` or null), or a
          list of names / ``{name: ..., features: ...}`` mappings.
        * ``features``: a mapping name -> ``{dtype: ..., shape: [...]}`` or a shorthand
          string ``"int64"``, ``"float32[16]"``, ``"float32[4,4]"``.
        * ``edge_types``: a list of ``[src, relation, dst]`` lists, ``"src:relation:dst"``
          strings or mappings ``{src, relation, dst, weighted, out_adjacency, undirected,
          reverse, features}``.

        Unknown keys (typos such as ``wieghted``) and values of the wrong type are errors.
        Returns the GraphSchema; raises SchemaError naming the offending key or item.
        """
        data = _expect_mapping(data, "schema")
        _check_keys(data, ("node_types", "edge_types"), "schema")
        if "node_types" not in data:
            raise SchemaError("schema: missing required key 'node_types'")
        node_types = _parse_node_types(data["node_types"])
        edge_types = _parse_edge_types(data.get("edge_types", []))
        return cls(node_types, edge_types)

    # ---- YAML / JSON

    def to_yaml(self) -> str:
        """The schema as a YAML document in the compact, hand-editable form. Returns str."""
        return yaml.safe_dump(self.to_dict(compact=True), sort_keys=False,
                              default_flow_style=None, allow_unicode=True)

    @classmethod
    def from_yaml(cls, text: str) -> "GraphSchema":
        """Parse a YAML document (read with ``yaml.safe_load``). Duplicate mapping keys are
        errors rather than silently overwritten. Returns the GraphSchema; raises
        SchemaError on malformed YAML or an invalid schema."""
        try:
            _check_yaml_duplicate_keys(text)
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise SchemaError(f"invalid YAML schema: {e}") from None
        return cls.from_dict(data)

    def to_json(self, indent: Optional[int] = 2) -> str:
        """The schema as JSON in the explicit form of :meth:`to_dict`. Returns str."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> "GraphSchema":
        """Parse a JSON document; duplicate keys are errors. Returns the GraphSchema;
        raises SchemaError on malformed JSON or an invalid schema."""
        def no_dups(pairs):
            d = {}
            for k, v in pairs:
                if k in d:
                    raise SchemaError(f"invalid JSON schema: duplicate key {k!r}")
                d[k] = v
            return d
        try:
            data = json.loads(text, object_pairs_hook=no_dups)
        except json.JSONDecodeError as e:
            raise SchemaError(f"invalid JSON schema: {e}") from None
        return cls.from_dict(data)

    @staticmethod
    def _format_of(path: Union[str, os.PathLike]) -> str:
        suffix = pathlib.Path(path).suffix.lower()
        if suffix in (".yaml", ".yml"):
            return "yaml"
        if suffix == ".json":
            return "json"
        raise SchemaError(
            f"cannot tell the schema format of {str(path)!r}: use a .yaml, .yml or .json suffix")

    def save(self, path: Union[str, os.PathLike]) -> pathlib.Path:
        """Write the schema to ``path`` as YAML (``.yaml``/``.yml``) or JSON (``.json``),
        atomically (temporary file + rename). Returns the path; raises SchemaError for any
        other suffix."""
        path = pathlib.Path(path)
        text = self.to_yaml() if self._format_of(path) == "yaml" else self.to_json() + "\n"
        return write_atomic(path, text)

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "GraphSchema":
        """Read a schema written by :meth:`save` (or by hand) from a ``.yaml``, ``.yml`` or
        ``.json`` file. Returns the GraphSchema; raises SchemaError for another suffix or
        an invalid document (OSError if the file cannot be read)."""
        fmt = cls._format_of(path)
        text = pathlib.Path(path).read_text(encoding="utf-8")
        return cls.from_yaml(text) if fmt == "yaml" else cls.from_json(text)


# ----------------------------------------------------------------------------- parsing


def _check_yaml_duplicate_keys(text: str) -> None:
    """Raise SchemaError on a duplicate key in any YAML mapping (safe_load keeps the last)."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode):
                    if k.value in seen:
                        raise SchemaError(
                            f"invalid YAML schema: duplicate key {k.value!r} "
                            f"(line {k.start_mark.line + 1})")
                    seen.add(k.value)
                stack.extend((k, v))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def _parse_features(value: Any, path: str) -> Tuple[FeatureSpec, ...]:
    feats = _expect_mapping(value, path, allow_none=True)
    out = []
    for name, spec in feats.items():
        _check_name("feature", name, path)
        try:
            out.append(_parse_feature(name, spec, f"{path}.{name}"))
        except SchemaError as e:
            if str(e).startswith(path):
                raise
            raise SchemaError(f"{path}: {e}") from None
    return tuple(out)


def _parse_feature(name: str, spec: Any, fpath: str) -> FeatureSpec:
    if isinstance(spec, str):
        return FeatureSpec.parse(name, spec)
    if not isinstance(spec, Mapping):
        raise SchemaError(
            f"{fpath} must be a shorthand string like 'float32[16]' or a mapping "
            f"{{dtype: ..., shape: [...]}}, got {_type_name(spec)} {spec!r}")
    _check_keys(spec, ("dtype", "shape"), fpath)
    if "dtype" not in spec:
        raise SchemaError(f"{fpath}: missing required key 'dtype'")
    dtype = spec["dtype"]
    if not isinstance(dtype, str):
        raise SchemaError(f"{fpath}.dtype must be a string, got {_type_name(dtype)} {dtype!r}")
    shape = spec.get("shape", [])
    if not isinstance(shape, (list, int)) or isinstance(shape, bool):
        raise SchemaError(
            f"{fpath}.shape must be a list of positive integers, got {_type_name(shape)} {shape!r}")
    return FeatureSpec(name, dtype, shape)


def _parse_node_types(value: Any) -> Tuple[NodeType, ...]:
    items: List[Tuple[Any, Any, str]] = []  # (name, spec, path)
    if isinstance(value, Mapping):
        for name, spec in value.items():
            items.append((name, spec, f"node_types.{name}"))
    elif isinstance(value, list):
        for i, entry in enumerate(value):
            path = f"node_types[{i}]"
            if isinstance(entry, str):
                items.append((entry, None, path))
            elif isinstance(entry, Mapping):
                _check_keys(entry, ("name", "features", "id_type"), path)
                if "name" not in entry:
                    raise SchemaError(f"{path}: missing required key 'name'")
                items.append((entry["name"], {k: v for k, v in entry.items() if k != "name"}, path))
            else:
                raise SchemaError(
                    f"{path} must be a node type name or a mapping, got {_type_name(entry)} {entry!r}")
    else:
        raise SchemaError(
            f"node_types must be a mapping name -> spec or a list, got {_type_name(value)} {value!r}")
    out = []
    for name, spec, path in items:
        _check_name("node type", name, "node_types")
        spec = _expect_mapping(spec, path, allow_none=True)
        _check_keys(spec, ("features", "id_type"), path)
        out.append(NodeType(name, _parse_features(spec.get("features"), f"{path}.features"),
                            spec.get("id_type", "int64")))
    return tuple(out)


_EDGE_KEYS = ("src", "relation", "dst", "weighted", "out_adjacency", "undirected", "reverse",
              "features")


def _reverse_value(value: Any, path: str):
    """``reverse``: a relation name, null, or the legacy bool (= out_adjacency)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    raise SchemaError(f"{path} must be the relation name of the reverse edge type (e.g. "
                      f"clicked-by), got {_type_name(value)} {value!r}")


def _parse_edge_types(value: Any) -> Tuple[EdgeType, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise SchemaError(f"edge_types must be a list, got {_type_name(value)} {value!r}")
    out = []
    for i, entry in enumerate(value):
        path = f"edge_types[{i}]"
        if isinstance(entry, str):
            parts = entry.split(":")
            if len(parts) != 3:
                raise SchemaError(f"{path}: {entry!r} is not of the form 'src:relation:dst'")
            out.append(EdgeType(*parts))
        elif isinstance(entry, list):
            if len(entry) != 3:
                raise SchemaError(
                    f"{path} must be [src, relation, dst], got a list of {len(entry)} items {entry!r}")
            for role, v in zip(("src", "relation", "dst"), entry):
                _check_name(role, v, path)
            out.append(EdgeType(*entry))
        elif isinstance(entry, Mapping):
            _check_keys(entry, _EDGE_KEYS, path)
            missing = [k for k in ("src", "relation", "dst") if k not in entry]
            if missing:
                raise SchemaError(
                    f"{path}: missing required key{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(repr(k) for k in missing)}")
            for role in ("src", "relation", "dst"):
                _check_name(role, entry[role], path)
            out.append(EdgeType(
                entry["src"], entry["relation"], entry["dst"],
                weighted=_expect_bool(entry.get("weighted", False), f"{path}.weighted"),
                reverse=_reverse_value(entry.get("reverse"), f"{path}.reverse"),
                features=_parse_features(entry.get("features"), f"{path}.features"),
                out_adjacency=_expect_bool(entry.get("out_adjacency", False), f"{path}.out_adjacency"),
                undirected=_expect_bool(entry.get("undirected", False), f"{path}.undirected"),
            ))
        else:
            raise SchemaError(
                f"{path} must be [src, relation, dst], 'src:relation:dst' or a mapping, got "
                f"{_type_name(entry)} {entry!r}")
    return tuple(out)
