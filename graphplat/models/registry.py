"""Build a GNN model from a plain-dict spec (as found in a YAML / JSON training config).

::

    model = build_model({"name": "sage", "hidden": 128, "num_layers": 2, "dropout": 0.5},
                        schema, out=num_classes)
    model = build_model({"name": "rgcn", "hidden": 64, "num_bases": 4, "feature": "feat"},
                        schema, out=num_classes, target_ntype="paper")

The spec holds ``name`` (one of :data:`MODEL_NAMES`) and the model's constructor arguments
(see :func:`spec_keys`); the graph's part (input widths, node and edge types) comes from the
second argument, a :class:`~graphplat.schema.GraphSchema`, a ``DGLGraph`` or a metadata dict.
Keyword arguments override the spec (typically ``out=`` and ``target_ntype=``, which depend
on the task rather than on the model).
"""
from __future__ import annotations

import difflib
import inspect
from typing import Any, Dict, List, Mapping, Optional

from graphplat.models.fraud import FraudSAGE
from graphplat.models.gbdt import GBDTModel
from graphplat.models.gnn import GAT, GCMC, GCN, RGCN, GNNModel, GraphSAGE, HeteroSAGE

__all__ = ["MODEL_NAMES", "MODEL_CLASSES", "build_model", "spec_keys"]

#: Canonical model names accepted by :func:`build_model`.
MODEL_NAMES = ("sage", "gcn", "gat", "rgcn", "hetero_sage", "gcmc", "fraud_sage", "gbdt")
#: Name -> model class.
MODEL_CLASSES = {"sage": GraphSAGE, "gcn": GCN, "gat": GAT, "rgcn": RGCN,
                 "hetero_sage": HeteroSAGE, "gcmc": GCMC,
                 "fraud_sage": FraudSAGE, "gbdt": GBDTModel}
#: Other accepted spellings of the names.
ALIASES = {"graphsage": "sage", "hsage": "hetero_sage", "heterosage": "hetero_sage",
           "fraud": "fraud_sage", "lightgbm": "gbdt"}
_HETERO = ("rgcn", "hetero_sage", "gcmc", "fraud_sage", "gbdt")
_GRAPH_KEYS = ("in_feats", "ntypes", "canonical_etypes", "target_ntype")
_META_KEYS = ("in_feats", "out", "ntypes", "canonical_etypes", "target_ntype")


def _canonical_name(name: Any) -> str:
    if not isinstance(name, str):
        raise ValueError(f"spec 'name' must be a string, one of {', '.join(MODEL_NAMES)}; "
                         f"got {name!r}")
    key = name.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in MODEL_CLASSES:
        close = difflib.get_close_matches(key, list(MODEL_NAMES) + list(ALIASES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown model name {name!r}{hint}; valid names: "
                         f"{', '.join(MODEL_NAMES)}")
    return key


def spec_keys(name: str) -> List[str]:
    """The keys a spec for model ``name`` may hold: ``name``, ``feature`` (the float32 node
    feature used as input, when building from a schema or DGLGraph) and the model's
    constructor arguments. Raises ValueError for an unknown name."""
    cls = MODEL_CLASSES[_canonical_name(name)]
    params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    return ["name", "feature"] + params


def _required(cls) -> List[str]:
    return [p.name for p in inspect.signature(cls.__init__).parameters.values()
            if p.name != "self" and p.default is inspect.Parameter.empty]


def _schema_widths(schema, feature: Optional[str]) -> Dict[str, int]:
    widths = {}
    for nt in schema.node_types:
        floats = [f for f in nt.features if f.dtype == "float32"]
        if feature is not None:
            match = [f for f in nt.features if f.name == feature]
            if match and match[0].dtype != "float32":
                raise ValueError(f"feature {feature!r} of node type {nt.name!r} is "
                                 f"{match[0].dtype}, input features must be float32")
            widths[nt.name] = match[0].width if match else 0
        elif len(floats) == 1:
            widths[nt.name] = floats[0].width
        elif not floats:
            widths[nt.name] = 0
        else:
            raise ValueError(
                f"node type {nt.name!r} has several float32 features "
                f"({', '.join(f.name for f in floats)}); name the input one with the spec key "
                f"'feature' (or give in_feats)")
    return widths


def _graph_widths(g, feature: Optional[str]) -> Dict[str, int]:
    feature = feature or "feat"
    widths = {}
    for nt in g.ntypes:
        data = g.nodes[nt].data
        if feature in data:
            t = data[feature]
            widths[nt] = int(t.shape[1:].numel()) if t.dim() > 1 else 1
        else:
            widths[nt] = 0
    return widths


def _derive(source, feature: Optional[str]) -> Dict[str, Any]:
    """Model arguments implied by a schema, a DGLGraph or a metadata mapping."""
    if source is None:
        return {}
    from graphplat.schema import GraphSchema

    if isinstance(source, GraphSchema):
        return {"in_feats": _schema_widths(source, feature), "ntypes": source.ntypes,
                "canonical_etypes": source.canonical_etypes}
    try:
        import dgl
    except ImportError:  # pragma: no cover - dgl is a dependency
        dgl = None
    if dgl is not None and isinstance(source, dgl.DGLGraph):
        return {"in_feats": _graph_widths(source, feature), "ntypes": list(source.ntypes),
                "canonical_etypes": list(source.canonical_etypes)}
    if isinstance(source, Mapping):
        unknown = [k for k in source if k not in _META_KEYS]
        if unknown:
            raise ValueError(f"unknown metadata keys {', '.join(map(repr, unknown))}; valid keys: "
                             f"{', '.join(_META_KEYS)}")
        return dict(source)
    raise TypeError(f"schema_or_meta must be a GraphSchema, a DGLGraph or a dict, got "
                    f"{type(source).__name__}")


def build_model(spec: Mapping[str, Any], schema_or_meta=None, **overrides) -> GNNModel:
    """Build the model described by ``spec``.

    Args:
        spec: ``{"name": <one of MODEL_NAMES>, <constructor argument>: value, ...}``, e.g.
            ``{"name": "sage", "hidden": 128, "num_layers": 2, "dropout": 0.5,
            "aggregator": "mean"}``; optional ``"feature"``: which float32 node feature is
            the input (needed when a node type has several).
        schema_or_meta: where the graph-dependent arguments come from:

            * a :class:`~graphplat.schema.GraphSchema`: node types, canonical edge types and
              per-type input widths (the width of ``feature``, or of the type's only float32
              feature; 0 = featureless);
            * a ``DGLGraph``: the same, widths from ``g.nodes[nt].data[feature or "feat"]``;
            * a dict with any of ``in_feats``, ``out``, ``ntypes``, ``canonical_etypes``,
              ``target_ntype``;
            * None: everything comes from ``spec`` / ``overrides``.

            Homogeneous models (``sage``, ``gcn``, ``gat``) take the single node type's width
            and reject a graph with several node or edge types.
        **overrides: arguments that win over ``spec`` (typically ``out=num_classes``,
            ``target_ntype=...``).

    Returns:
        The model (a :class:`~graphplat.models.gnn.GNNModel`).

    Raises:
        ValueError: unknown name (lists the valid names), unknown keys (lists the valid keys
            for that model), missing required arguments, a multi-type graph for a homogeneous
            model, or invalid argument values.
    """
    if not isinstance(spec, Mapping):
        raise ValueError(f"spec must be a dict, got {type(spec).__name__}")
    if "name" not in spec:
        raise ValueError(f"spec has no 'name'; valid names: {', '.join(MODEL_NAMES)}")
    name = _canonical_name(spec["name"])
    cls = MODEL_CLASSES[name]
    merged = {k: v for k, v in spec.items() if k != "name"}
    merged.update(overrides)
    valid = spec_keys(name)
    unknown = [k for k in merged if k not in valid]
    if unknown:
        raise ValueError(f"unknown keys for model {name!r}: {', '.join(map(repr, unknown))}; "
                         f"valid keys: {', '.join(valid)}")
    feature = merged.pop("feature", None)
    derived = _derive(schema_or_meta, feature)
    if name not in _HETERO:
        derived = _homogeneous_args(name, derived)
    args = {k: v for k, v in derived.items() if k in valid}
    args.update(merged)
    missing = [k for k in _required(cls) if k not in args]
    if missing:
        raise ValueError(f"model {name!r} needs {', '.join(map(repr, missing))} (in the spec, the "
                         f"schema/metadata or as keyword arguments)")
    return cls(**args)


def _homogeneous_args(name: str, derived: Dict[str, Any]) -> Dict[str, Any]:
    ntypes = derived.get("ntypes")
    etypes = derived.get("canonical_etypes")
    if (ntypes is not None and len(ntypes) != 1) or (etypes is not None and len(etypes) > 1):
        raise ValueError(
            f"model {name!r} is homogeneous but the graph has node types "
            f"{list(ntypes or [])} and edge types {list(etypes or [])}; use 'rgcn' or "
            f"'hetero_sage'")
    if derived.get("target_ntype") is not None:
        raise ValueError(f"model {name!r} is homogeneous and takes no target_ntype")
    out = {k: v for k, v in derived.items() if k not in ("ntypes", "canonical_etypes",
                                                          "target_ntype")}
    widths = out.get("in_feats")
    if isinstance(widths, Mapping):
        if len(widths) != 1:
            raise ValueError(f"model {name!r} is homogeneous but in_feats has several node "
                             f"types: {dict(widths)}")
        (nt, w), = widths.items()
        if not w:
            raise ValueError(f"model {name!r}: node type {nt!r} has no float32 input feature")
        out["in_feats"] = w
    return out
