"""Tests of graphplat.schema: construction, validation, lookups, array checks, round trips."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from graphplat.schema import (
    EdgeType,
    FeatureSpec,
    GraphSchema,
    NodeType,
    SchemaError,
)


def hetero() -> GraphSchema:
    """3 node types, scalar + vector + 2-D features, plain / weighted / reverse edge types."""
    return GraphSchema(
        node_types=(
            NodeType("user", (FeatureSpec("age", "int64"), FeatureSpec("emb", "float32", (16,)))),
            NodeType("item", (FeatureSpec("feat", "float32", (32,)), FeatureSpec("cat", "int64"),
                              FeatureSpec("img", "float32", (4, 4)))),
            NodeType("shop"),
        ),
        edge_types=(
            EdgeType("user", "click", "item"),
            EdgeType("user", "buy", "item", weighted=True, out_adjacency=True,
                     features=(FeatureSpec("ts", "int64"), FeatureSpec("ctx", "float32", (3,)))),
            EdgeType("item", "sold-by", "shop", out_adjacency=True),
            EdgeType("user", "follow", "user", weighted=True),
            EdgeType("shop", "click", "user"),
        ),
    )


HAND_YAML = """
node_types:
  user:
    features:
      age: {dtype: int64}
      emb: {dtype: float32, shape: [16]}
  item:
    features:
      feat: float32[32]
      cat: int64
      img: float32[4, 4]
  shop:
edge_types:
  - [user, click, item]
  - src: user
    relation: buy
    dst: item
    weighted: true
    out_adjacency: true
    features: {ts: int64, ctx: {dtype: float32, shape: 3}}
  - {src: item, relation: sold-by, dst: shop, out_adjacency: true}
  - {src: user, relation: follow, dst: user, weighted: true}
  - shop:click:user
"""


# ------------------------------------------------------------------------ round trips


def test_hand_written_yaml_parses_to_expected_schema():
    assert GraphSchema.from_yaml(HAND_YAML) == hetero()


def test_round_trip_yaml_json_dict():
    s = hetero()
    assert GraphSchema.from_yaml(s.to_yaml()) == s
    assert GraphSchema.from_json(s.to_json()) == s
    assert GraphSchema.from_dict(s.to_dict()) == s
    assert GraphSchema.from_dict(s.to_dict(compact=True)) == s
    # the documents are plain data, and order is kept
    assert json.loads(s.to_json()) == s.to_dict()
    assert yaml.safe_load(s.to_yaml()) == s.to_dict(compact=True)
    assert list(s.to_dict()["node_types"]) == ["user", "item", "shop"]


def test_explicit_and_compact_dict_forms():
    s = hetero()
    d = s.to_dict()
    assert d["node_types"]["user"]["features"]["age"] == {"dtype": "int64", "shape": []}
    assert d["node_types"]["item"]["features"]["img"] == {"dtype": "float32", "shape": [4, 4]}
    assert d["node_types"]["shop"] == {"features": {}, "id_type": "int64"}
    assert d["edge_types"][0] == {"src": "user", "relation": "click", "dst": "item",
                                  "weighted": False, "out_adjacency": False, "undirected": False,
                                  "reverse": None, "features": {}}
    c = s.to_dict(compact=True)
    assert c["node_types"]["item"]["features"] == {"feat": "float32[32]", "cat": "int64",
                                                   "img": "float32[4,4]"}
    assert c["node_types"]["shop"] == {}
    assert c["edge_types"][0] == ["user", "click", "item"]
    assert c["edge_types"][2] == {"src": "item", "relation": "sold-by", "dst": "shop", "out_adjacency": True}


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json", ".YAML"])
def test_save_load_file(tmp_path, suffix):
    s = hetero()
    p = s.save(tmp_path / f"schema{suffix}")
    assert p.exists() and not list(tmp_path.glob("*.tmp"))
    text = p.read_text()
    if suffix == ".json":
        assert json.loads(text) == s.to_dict()
    else:
        assert yaml.safe_load(text) == s.to_dict(compact=True)
    assert GraphSchema.load(p) == s
    assert GraphSchema.load(str(p)) == s


@pytest.mark.parametrize("name", ["schema.txt", "schema", "schema.yaml.bak"])
def test_save_load_bad_suffix(tmp_path, name):
    with pytest.raises(ValueError, match=re.escape(name)):
        hetero().save(tmp_path / name)
    (tmp_path / name).write_text(hetero().to_yaml())
    with pytest.raises(ValueError, match=r"\.yaml, \.yml or \.json"):
        GraphSchema.load(tmp_path / name)


def test_schema_is_hashable_and_immutable():
    a, b = hetero(), GraphSchema.from_yaml(HAND_YAML)
    assert hash(a) == hash(b) and len({a, b}) == 1
    with pytest.raises(AttributeError):
        a.node_types = ()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        a.node_types[0].features[0].dtype = "float32"  # type: ignore[misc]


def test_constructor_normalizes_lists_and_dtypes():
    s = GraphSchema([NodeType("a", [FeatureSpec("x", np.float32, [8]), FeatureSpec("y", np.dtype("int64"))]),
                     "b"], [("a", "r", "b")])
    assert s.node_types[0].features == (FeatureSpec("x", "float32", (8,)), FeatureSpec("y", "int64", ()))
    assert s.node_types[1] == NodeType("b")
    assert s.edge_types == (EdgeType("a", "r", "b"),)
    assert FeatureSpec("x", "float32", 8).shape == (8,)
    assert isinstance(s.node_types, tuple) and isinstance(s.node_types[0].features, tuple)


def test_homogeneous():
    s = GraphSchema.homogeneous(64, label=True, weighted=True)
    assert s.ntypes == ["_N"] and s.canonical_etypes == [("_N", "_E", "_N")]
    assert s.node_type("_N").features == (FeatureSpec("feat", "float32", (64,)), FeatureSpec("label", "int64"))
    assert s.edge_type("_E").weighted and not s.edge_type("_E").out_adjacency
    assert s.is_homogeneous and not hetero().is_homogeneous
    bare = GraphSchema.homogeneous()
    assert bare.node_type("_N").features == ()
    assert GraphSchema.from_yaml(s.to_yaml()) == s


# ------------------------------------------------------------------------ shorthand


@pytest.mark.parametrize("text, dtype, shape", [
    ("int64", "int64", ()),
    ("float32", "float32", ()),
    ("float32[16]", "float32", (16,)),
    ("float32[ 4 , 4 ]", "float32", (4, 4)),
    (" int64[3] ", "int64", (3,)),
])
def test_shorthand_parses(text, dtype, shape):
    f = FeatureSpec.parse("x", text)
    assert f == FeatureSpec("x", dtype, shape)
    assert FeatureSpec.parse("x", f.shorthand) == f
    s = GraphSchema.from_dict({"node_types": {"n": {"features": {"x": text}}}})
    assert s.node_type("n").feature("x") == f


@pytest.mark.parametrize("text, match", [
    ("float64", "unknown dtype 'float64'"),
    ("float32[16", "cannot parse"),
    ("float32[a]", "cannot parse shape"),
    ("float32[-1]", "cannot parse shape"),
    ("float32[0]", "positive"),
    ("float32[]", "cannot parse shape"),
    ("float32[4,,4]", "cannot parse shape"),
])
def test_bad_shorthand(text, match):
    with pytest.raises(ValueError, match=match):
        FeatureSpec.parse("x", text)
    with pytest.raises(ValueError, match=r"node_types\.n\.features: feature 'x'"):
        GraphSchema.from_dict({"node_types": {"n": {"features": {"x": text}}}})


def test_feature_spec_helpers():
    f = FeatureSpec("img", "float32", (4, 8))
    assert f.width == 32 and not f.is_scalar
    assert f.numpy_dtype == np.dtype(np.float32)
    s = FeatureSpec("label", "int64")
    assert s.width == 1 and s.is_scalar and s.numpy_dtype == np.dtype(np.int64)
    assert s.shorthand == "int64" and f.shorthand == "float32[4,8]"


# ------------------------------------------------------------------------ validation


@pytest.mark.parametrize("make, match", [
    (lambda: NodeType(""), "node type name must not be empty"),
    (lambda: NodeType("us er"), "node type name 'us er' is invalid"),
    (lambda: NodeType("a:b"), "node type name 'a:b' is invalid"),
    (lambda: NodeType("-x"), "node type name '-x' is invalid"),
    (lambda: NodeType("x" * 129), "is invalid"),
    (lambda: NodeType(3), "node type name must be a string, got int 3"),
    (lambda: FeatureSpec("", "int64"), "feature name must not be empty"),
    (lambda: FeatureSpec("f/x", "int64"), "feature name 'f/x' is invalid"),
    (lambda: FeatureSpec("x", "float64"), "feature 'x': unknown dtype 'float64'"),
    (lambda: FeatureSpec("x", np.float64), "feature 'x': unknown dtype 'float64'"),
    (lambda: FeatureSpec("x", "float32", (0,)), "feature 'x': shape dimensions must be positive"),
    (lambda: FeatureSpec("x", "float32", (4, -2)), "feature 'x': shape dimensions must be positive"),
    (lambda: FeatureSpec("x", "float32", (2.5,)), "feature 'x': shape must be a list of positive integers"),
    (lambda: FeatureSpec("x", "float32", (True,)), "feature 'x': shape must be"),
    (lambda: FeatureSpec("x", "float32", "16"), "feature 'x': shape must be"),
    (lambda: NodeType("user", (FeatureSpec("a", "int64"), FeatureSpec("a", "float32"))),
     "node type 'user': duplicate feature name 'a'"),
    (lambda: NodeType("user", (FeatureSpec("_ID", "int64"),)), "node type 'user': feature name '_ID' is reserved"),
    (lambda: NodeType("user", (FeatureSpec("_TYPE", "int64"),)), "feature name '_TYPE' is reserved"),
    (lambda: EdgeType("u", "r", "v", features=(FeatureSpec("weight", "float32"),)),
     "edge type 'u:r:v': feature name 'weight' is reserved.*weighted: true"),
    (lambda: EdgeType("u", "r", "v", features=(FeatureSpec("t", "int64"), FeatureSpec("t", "int64"))),
     "edge type 'u:r:v': duplicate feature name 't'"),
    (lambda: EdgeType("u", "", "v"), "relation name must not be empty"),
    (lambda: EdgeType("u", "r", "v", weighted="yes"), "edge type 'u:r:v': weighted must be a bool"),
    (lambda: EdgeType("u", "r", "v", out_adjacency=1), "edge type 'u:r:v': out_adjacency must be a bool"),
    (lambda: EdgeType("u", "r", "v", reverse=1), "edge type 'u:r:v': reverse relation name must be a string"),
    (lambda: EdgeType("u", "r", "v", undirected=True), "undirected needs the same source and destination"),
    (lambda: NodeType("user", ({"name": "a"},)), "node type 'user': features must be FeatureSpec"),
    (lambda: GraphSchema(()), "at least one node type"),
    (lambda: GraphSchema((NodeType("user"), NodeType("item"), NodeType("user"))), "duplicate node type 'user'"),
    (lambda: GraphSchema((NodeType("user"),), (EdgeType("user", "click", "item"),)),
     "edge type 'user:click:item': destination node type 'item' is not declared"),
    (lambda: GraphSchema((NodeType("item"),), (EdgeType("usr", "click", "item"),)),
     "edge type 'usr:click:item': source node type 'usr' is not declared"),
    (lambda: GraphSchema((NodeType("u"),), (EdgeType("u", "r", "u"), EdgeType("u", "r", "u", weighted=True))),
     "duplicate edge type 'u:r:u'"),
])
def test_constructor_validation(make, match):
    with pytest.raises(SchemaError, match=match):
        make()


def test_schema_error_is_value_error_and_replace_revalidates():
    import dataclasses

    assert issubclass(SchemaError, ValueError)
    s = hetero()
    with pytest.raises(ValueError, match="duplicate node type 'user'"):
        dataclasses.replace(s, node_types=s.node_types + (NodeType("user"),))
    s2 = dataclasses.replace(s, edge_types=s.edge_types[:1])
    assert s2.canonical_etypes == [("user", "click", "item")]


def _doc(**edge):
    return {"node_types": {"user": {}, "item": None}, "edge_types": [{"src": "user", "relation": "r",
                                                                       "dst": "item", **edge}]}


@pytest.mark.parametrize("data, match", [
    ({"node_types": {"u": {}}, "edgetypes": []}, r"unknown key 'edgetypes' \(did you mean 'edge_types'\?\)"),
    ({"edge_types": []}, "missing required key 'node_types'"),
    ({"node_types": {}}, "at least one node type"),
    ({"node_types": []}, "at least one node type"),
    ([1, 2], "schema must be a mapping, got list"),
    (None, "schema must be a mapping, got null"),
    ({"node_types": "user"}, "node_types must be a mapping name -> spec or a list, got str"),
    ({"node_types": {"user": {"feature": {}}}}, r"node_types\.user: unknown key 'feature' \(did you mean 'features'\?\)"),
    ({"node_types": {"user": []}}, r"node_types\.user must be a mapping, got list"),
    ({"node_types": {"user": {"features": ["a"]}}}, r"node_types\.user\.features must be a mapping, got list"),
    ({"node_types": {"user": {"features": {"a": {"dtype": "int64", "shpe": [2]}}}}},
     r"node_types\.user\.features\.a: unknown key 'shpe' \(did you mean 'shape'\?\)"),
    ({"node_types": {"user": {"features": {"a": {"shape": [2]}}}}}, r"features\.a: missing required key 'dtype'"),
    ({"node_types": {"user": {"features": {"a": {"dtype": 64}}}}}, r"features\.a\.dtype must be a string, got int"),
    ({"node_types": {"user": {"features": {"a": {"dtype": "float32", "shape": "16"}}}}},
     r"features\.a\.shape must be a list of positive integers, got str"),
    ({"node_types": {"user": {"features": {"a": {"dtype": "float32", "shape": [16, 0]}}}}},
     "feature 'a': shape dimensions must be positive"),
    ({"node_types": {"user": {"features": {"a": 5}}}}, r"features\.a must be a shorthand string"),
    ({"node_types": {"user": {"features": {"_ID": "int64"}}}}, "feature name '_ID' is reserved"),
    ({"node_types": {"user": {"features": {"": "int64"}}}}, "feature name must not be empty"),
    ({"node_types": {True: {}}}, "node type name must be a string, got bool True"),
    ({"node_types": [{"name": "u"}, {"name": "u"}]}, "duplicate node type 'u'"),
    ({"node_types": [{"features": {}}]}, r"node_types\[0\]: missing required key 'name'"),
    ({"node_types": [{"name": "u", "feats": {}}]}, r"node_types\[0\]: unknown key 'feats'"),
    ({"node_types": [3]}, r"node_types\[0\] must be a node type name or a mapping, got int"),
    ({"node_types": {"u": {}}, "edge_types": {"a": 1}}, "edge_types must be a list, got mapping"),
    ({"node_types": {"u": {}}, "edge_types": [["u", "r"]]}, r"edge_types\[0\] must be \[src, relation, dst\]"),
    ({"node_types": {"u": {}}, "edge_types": [["u", None, "u"]]}, r"edge_types\[0\]: relation name must be a string, got null"),
    ({"node_types": {"u": {}}, "edge_types": ["u:r"]}, r"edge_types\[0\]: 'u:r' is not of the form"),
    ({"node_types": {"u": {}}, "edge_types": [7]}, r"edge_types\[0\] must be \[src, relation, dst\]"),
    ({"node_types": {"u": {}}, "edge_types": [["u", "r", "v"]]}, "destination node type 'v' is not declared"),
    ({"node_types": {"u": {}}, "edge_types": [["u", "r", "u"], "u:r:u"]}, "duplicate edge type 'u:r:u'"),
    (_doc(wieghted=True), r"edge_types\[0\]: unknown key 'wieghted' \(did you mean 'weighted'\?\)"),
    (_doc(reversed=True, colour=1), r"unknown keys 'reversed' \(did you mean 'reverse'\?\), 'colour'"),
    (_doc(weighted="yes"), r"edge_types\[0\]\.weighted must be true or false, got str 'yes'"),
    (_doc(reverse=1), r"edge_types\[0\]\.reverse must be the relation name of the reverse edge type \(e.g. clicked-by\), got int 1"),
    (_doc(features={"weight": "float32"}), "feature name 'weight' is reserved"),
    (_doc(features={"t": "int128"}), r"edge_types\[0\]\.features: feature 't': unknown dtype 'int128'"),
    ({"node_types": {"u": {}}, "edge_types": [{"src": "u", "dst": "u"}]},
     r"edge_types\[0\]: missing required key 'relation'"),
])
def test_from_dict_validation(data, match):
    with pytest.raises(ValueError, match=match):
        GraphSchema.from_dict(data)


@pytest.mark.parametrize("text, match", [
    ("node_types: {user: {}, user: {}}", "duplicate key 'user'"),
    ("node_types:\n  u:\n    features:\n      a: int64\n      a: float32\n", "duplicate key 'a'"),
    ("node_types: [user\n", "invalid YAML schema"),
    ("", "schema must be a mapping, got null"),
    ("node_types: {on: {}}", "got bool True.*quote it"),
    ("node_types: {u: {}}\nedge_types: [{src: u, relation: r, dst: u, wieghted: true}]", "'wieghted'"),
])
def test_from_yaml_errors(text, match):
    with pytest.raises(ValueError, match=match):
        GraphSchema.from_yaml(text)


@pytest.mark.parametrize("text, match", [
    ('{"node_types": {"u": {}, "u": {}}}', "duplicate key 'u'"),
    ('{"node_types": ', "invalid JSON schema"),
    ('{"node_types": {"u": {}}, "edge_types": [["u", "r", "u"]], "extra": 1}', "unknown key 'extra'"),
])
def test_from_json_errors(text, match):
    with pytest.raises(ValueError, match=match):
        GraphSchema.from_json(text)


def test_yaml_special_words_as_names_round_trip():
    s = GraphSchema((NodeType("true"), NodeType("null", (FeatureSpec("on", "int64"),)), NodeType("1e3")),
                    (EdgeType("true", "no", "1e3"), EdgeType("null", "0x1F", "null", weighted=True)))
    assert GraphSchema.from_yaml(s.to_yaml()) == s
    assert GraphSchema.from_json(s.to_json()) == s


# ------------------------------------------------------------------------ lookups


def test_views_and_lookups():
    s = hetero()
    assert s.ntypes == ["user", "item", "shop"]
    assert s.etypes == ["click", "buy", "sold-by", "follow", "click"]
    assert s.canonical_etypes == [("user", "click", "item"), ("user", "buy", "item"),
                                  ("item", "sold-by", "shop"), ("user", "follow", "user"),
                                  ("shop", "click", "user")]
    assert s.node_type("item").name == "item"
    buy = s.edge_type(("user", "buy", "item"))
    assert buy.weighted and buy.out_adjacency and buy.canonical == ("user", "buy", "item")
    assert s.edge_type("user:buy:item") is buy
    assert s.edge_type("buy") is buy
    assert s.edge_type(["user", "buy", "item"]) is buy
    assert s.edge_type(EdgeType("user", "buy", "item")) is buy
    assert s.edge_type("sold-by").canonical_str == "item:sold-by:shop"
    assert [e.relation for e in s.edge_types_from("user")] == ["click", "buy", "follow"]
    assert [e.relation for e in s.edge_types_to("user")] == ["follow", "click"]
    assert s.edge_types_from("shop") == (s.edge_type(("shop", "click", "user")),)
    assert s.edge_types_to("shop") == (s.edge_type("sold-by"),)
    assert s.node_type("item").feature("img").shape == (4, 4)
    assert s.node_type("item").feature_names == ["feat", "cat", "img"]
    assert buy.weight_spec == FeatureSpec("weight", "float32")
    assert s.edge_type("follow").weight_spec == FeatureSpec("weight", "float32")
    assert s.edge_type(("user", "click", "item")).weight_spec is None


def test_lookup_errors():
    s = hetero()
    with pytest.raises(ValueError, match=r"unknown node type 'usr' \(did you mean 'user'\?\); known node types: 'user', 'item', 'shop'"):
        s.node_type("usr")
    with pytest.raises(ValueError, match="relation 'click' is ambiguous.*'user:click:item', 'shop:click:user'"):
        s.edge_type("click")
    with pytest.raises(ValueError, match="unknown edge type 'like'.*; known edge types: 'user:click:item'"):
        s.edge_type("like")
    with pytest.raises(ValueError, match="unknown edge type 'item:click:user'; known edge types"):
        s.edge_type(("item", "click", "user"))
    with pytest.raises(ValueError, match="unknown edge type 'user:buy:shop'"):
        s.edge_type("user:buy:shop")
    with pytest.raises(ValueError, match="'user:buy' must be 'src:relation:dst' or a relation name"):
        s.edge_type("user:buy")
    with pytest.raises(ValueError, match="edge type key must be"):
        s.edge_type(42)
    with pytest.raises(ValueError, match="unknown node type 'nope'"):
        s.edge_types_from("nope")
    with pytest.raises(ValueError, match="unknown node type 'nope'"):
        s.edge_types_to("nope")
    with pytest.raises(ValueError, match=r"node type 'item' has no feature 'fet' \(did you mean 'feat'\?\)"):
        s.node_type("item").feature("fet")


# ------------------------------------------------------------------------ arrays


EMB = FeatureSpec("feat", "float32", (128,))
LABEL = FeatureSpec("label", "int64")


def test_validate_array_accepts_exact():
    a = np.zeros((10, 128), np.float32)
    assert EMB.validate_array(a, 10, "node type 'paper'") is a
    assert EMB.validate_array(a) is a
    b = np.arange(5, dtype=np.int64)
    assert LABEL.validate_array(b, 5) is b
    img = FeatureSpec("img", "float32", (4, 4))
    img.validate_array(np.ones((3, 4, 4), np.float32), 3)


@pytest.mark.parametrize("spec, arr, rows, match", [
    (EMB, np.zeros((10, 64), np.float64), 10,
     re.escape("feature 'feat' of node type 'paper' expects shape (10, 128) float32, got (10, 64) float64")),
    (EMB, np.zeros((10, 128), np.float64), None,
     re.escape("expects shape (N, 128) float32, got (10, 128) float64")),
    (EMB, np.zeros((9, 128), np.float32), 10, re.escape("expects shape (10, 128) float32, got (9, 128) float32")),
    (EMB, np.zeros(128, np.float32), None, re.escape("got (128,) float32")),
    (LABEL, np.zeros(5, np.int32), 5, re.escape("feature 'label' of node type 'paper' expects shape (5,) int64, got (5,) int32")),
    (LABEL, np.zeros((5, 1), np.int64), 5, re.escape("got (5, 1) int64")),
    (LABEL, np.zeros(5, ">i8"), 5, "feature 'label'"),
    (LABEL, [1, 2, 3], 3, "feature 'label' of node type 'paper' expects a numpy array"),
])
def test_validate_array_rejects(spec, arr, rows, match):
    with pytest.raises(ValueError, match=match):
        spec.validate_array(arr, rows, "node type 'paper'")


def test_coerce_safe_casts():
    a32 = np.array([1, -2, 3], np.int32)
    out = LABEL.coerce_array(a32, 3)
    assert out.dtype == np.int64 and out.tolist() == [1, -2, 3]
    assert LABEL.coerce_array(np.array([0, 255], np.uint8)).tolist() == [0, 255]
    assert LABEL.coerce_array(np.array([True, False])).tolist() == [1, 0]
    assert LABEL.coerce_array([4, 5]).dtype == np.int64
    f = LABEL.coerce_array(np.array([1.0, -7.0, 2.0 ** 40]), 3)
    assert f.dtype == np.int64 and f.tolist() == [1, -7, 2 ** 40]
    x = np.random.default_rng(0).standard_normal((6, 128))
    y = EMB.coerce_array(x, 6, "node type 'paper'")
    assert y.dtype == np.float32 and y.flags.c_contiguous
    np.testing.assert_array_equal(y, x.astype(np.float32))
    assert EMB.coerce_array(np.ones((2, 128), np.int64)).dtype == np.float32
    nan = EMB.coerce_array(np.full((1, 128), np.nan))
    assert np.isnan(nan).all()  # NaN is a legal float feature value
    same = np.zeros((2, 128), np.float32)
    assert EMB.coerce_array(same) is same  # no copy when already right
    fortran = np.asfortranarray(np.zeros((3, 128), np.float32))
    assert EMB.coerce_array(fortran).flags.c_contiguous


@pytest.mark.parametrize("spec, arr, rows, match", [
    (EMB, np.zeros((4, 64)), 4, re.escape("feature 'feat' of node type 'paper' expects shape (4, 128) float32, got (4, 64) float64")),
    (EMB, np.zeros(128, np.float32), None, re.escape("expects shape (N, 128) float32, got (128,) float32")),
    (EMB, np.zeros((3, 128)), 4, re.escape("got (3, 128) float64")),
    (EMB, np.full((1, 128), 1e300), None, "feature 'feat' of node type 'paper' \\(float32\\) got value 1e\\+300 outside the float32 range"),
    (EMB, np.zeros((1, 128), np.complex64), None, "cannot be converted safely"),
    (EMB, [[1.0, 2.0], [3.0]], None, "feature 'feat' of node type 'paper' cannot be read as an array"),
    (LABEL, np.array([1.0, np.nan, 3.0]), 3, "feature 'label' of node type 'paper' \\(int64\\) got a non-finite value"),
    (LABEL, np.array([1.0, np.inf]), 2, "non-finite value"),
    (LABEL, np.array([1.0, 2.5]), 2, "feature 'label' .* non-integral value 2.5 .* at flat index 1"),
    (LABEL, np.array([1e19]), 1, "out of the int64 range"),
    (LABEL, np.array([2 ** 63], np.uint64), 1, "out of the int64 range"),
    (LABEL, np.array(["1", "2"]), 2, "cannot be converted safely"),
    (LABEL, np.zeros((5, 1), np.int64), 5, re.escape("expects shape (5,) int64, got (5, 1) int64")),
])
def test_coerce_rejects(spec, arr, rows, match):
    with pytest.raises(ValueError, match=match):
        spec.coerce_array(arr, rows, "node type 'paper'")


def test_coerce_features_tables():
    s = hetero()
    user = s.node_type("user")
    out = user.coerce_features({"age": np.array([30, 40], np.int32), "emb": np.zeros((2, 16))})
    assert out["age"].dtype == np.int64 and out["emb"].dtype == np.float32
    with pytest.raises(ValueError, match="node type 'user' is missing feature 'emb'"):
        user.coerce_features({"age": [1, 2]})
    assert list(user.coerce_features({"age": [1, 2]}, require_all=False)) == ["age"]
    with pytest.raises(ValueError, match=r"node type 'user' has no feature 'ages' \(did you mean 'age'\?\)"):
        user.coerce_features({"ages": [1]}, require_all=False)
    with pytest.raises(ValueError, match=re.escape("feature 'emb' of node type 'user' expects shape (2, 16) float32, got (3, 16)")):
        user.coerce_features({"age": [1, 2], "emb": np.zeros((3, 16))})
    buy = s.edge_type("buy")
    t = buy.coerce_features({"ts": [1, 2], "ctx": np.zeros((2, 3)), "weight": [0.5, 2]}, 2)
    assert t["weight"].dtype == np.float32 and t["weight"].tolist() == [0.5, 2.0]
    with pytest.raises(ValueError, match="edge type 'user:buy:item' is missing feature 'weight'"):
        buy.coerce_features({"ts": [1], "ctx": np.zeros((1, 3))})
    with pytest.raises(ValueError, match="edge weights of edge type 'user:buy:item' must be finite and >= 0, got -1.0 at row 1"):
        buy.coerce_features({"weight": [1.0, -1.0]}, require_all=False)
    with pytest.raises(ValueError, match="edge type 'user:click:item' has no feature 'weight'"):
        s.edge_type(("user", "click", "item")).coerce_features({"weight": [1.0]})


# ------------------------------------------------------------------------ property test

_SPECIAL = ["true", "false", "null", "on", "off", "yes", "no", "1", "1e3", "0x1F", "1_000", "0o7", "_N", "a.b", "x-y"]
_FIRST = "abcxyzABZ019_"
_REST = _FIRST + ".-"
names = st.one_of(
    st.builds(lambda a, b: a + b, st.sampled_from(_FIRST), st.text(_REST, max_size=6)),
    st.sampled_from(_SPECIAL),
)
def _feature_lists(reserved):
    return st.lists(
        st.tuples(names.filter(lambda n: n not in reserved), st.sampled_from(["float32", "int64"]),
                  st.lists(st.integers(1, 512), max_size=3).map(tuple)),
        max_size=3, unique_by=lambda t: t[0],
    ).map(lambda fs: tuple(FeatureSpec(*f) for f in fs))


node_types_st = st.lists(st.tuples(names, _feature_lists(("_ID", "_TYPE"))), min_size=1, max_size=4,
                         unique_by=lambda t: t[0])
edge_opts_st = st.tuples(st.booleans(), st.booleans(), _feature_lists(("_ID", "_TYPE", "weight")))


@st.composite
def schemas(draw):
    nts = draw(node_types_st)
    ntype_names = [n for n, _ in nts]
    triples = draw(st.lists(st.tuples(st.sampled_from(ntype_names), names, st.sampled_from(ntype_names)),
                            max_size=5, unique=True))
    edge_types = []
    for s, r, d in triples:
        weighted, reverse, feats = draw(edge_opts_st)
        edge_types.append(EdgeType(s, r, d, weighted=weighted, out_adjacency=reverse, features=feats))
    return GraphSchema(tuple(NodeType(n, f) for n, f in nts), tuple(edge_types))


@settings(max_examples=100, deadline=None)
@given(schemas())
def test_random_schemas_round_trip(s):
    assert GraphSchema.from_yaml(s.to_yaml()) == s
    assert GraphSchema.from_json(s.to_json()) == s
    assert GraphSchema.from_dict(s.to_dict(compact=True)) == s
    for et in s.edge_types:
        assert s.edge_type(et.canonical) is et
        assert s.edge_type(et.canonical_str) is et
