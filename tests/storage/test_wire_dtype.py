"""Opt-in float16/bfloat16 features: documented error bounds, the same rounding as torch,
and identical answers in process, from shared memory and over gRPC."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from graphplat import _core
from graphplat.sampling import NodeLoader
from graphplat.schema import GraphSchema
from graphplat.storage import wire_dtype
from graphplat.storage.graph_arrays import GraphArrays
from graphplat.storage.remote import connect
from graphplat.testing.servers import Fleet, cluster_dict

SCHEMA = GraphSchema.homogeneous(8, label=True)
NT, ET = SCHEMA.ntypes[0], SCHEMA.canonical_etypes[0]


def values(n=20000, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n) * 10.0 ** rng.integers(-4, 4, n)).astype(np.float32)


@pytest.mark.parametrize("fmt", wire_dtype.FORMATS)
def test_error_within_documented_bound(fmt):
    x = values()
    y = wire_dtype.decode(wire_dtype.encode(x, fmt), fmt)
    assert y.dtype == np.float32
    normal = np.abs(x) >= 6.2e-5
    rel = np.abs(y[normal] - x[normal]) / np.abs(x[normal])
    assert rel.max() <= wire_dtype.RELATIVE_ERROR[fmt]
    assert rel.max() > wire_dtype.RELATIVE_ERROR[fmt] / 4  # it does round
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30], dtype=np.float32)
    back = wire_dtype.decode(wire_dtype.encode(special, fmt), fmt)
    assert np.isnan(back[0]) and back[1] == np.inf and back[2] == -np.inf and back[3] == 0
    if fmt == "float16":
        assert back[5] == np.inf  # beyond float16's range
    else:
        assert abs(back[5] - 1e30) <= 1e30 * wire_dtype.RELATIVE_ERROR[fmt]


def test_bfloat16_rounds_like_torch():
    x = values(seed=3)
    ours = wire_dtype.encode(x, "bfloat16")
    theirs = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(ours, theirs)


def bit_patterns(n=2_000_000, seed=5) -> np.ndarray:
    """float32 values from random bit patterns plus every edge of float16's range (normal,
    subnormal, overflow, ties) with both signs."""
    rng = np.random.default_rng(seed)
    edges = [(s << 31) | (e << 23) | m for s in (0, 1) for e in range(100, 146)
             for m in (0, 1, 0x7FF, 0x800, 0xFFF, 0x1000, 0x1001, 0x2000, 0x3000, 0x7FE000, 0x7FF000, 0x7FFFFF)]
    bits = np.concatenate([rng.integers(0, 2 ** 32, n, dtype=np.uint64).astype(np.uint32),
                           np.array(edges + [0x7F800000, 0xFF800000, 0x7F7FFFFF, 0x477FEFFF, 0x477FF000],
                                    dtype=np.uint32)])
    return bits.view(np.float32)


def test_encoding_is_bit_identical_to_numpy_and_torch():
    x = bit_patterns()
    finite = ~np.isnan(x)
    with np.errstate(all="ignore"):
        f16 = x.astype(np.float16)
    ours = wire_dtype.encode(x, "float16")
    assert ours.dtype == np.float16
    np.testing.assert_array_equal(ours.view(np.uint16)[finite], f16.view(np.uint16)[finite])
    bf = torch.from_numpy(x.copy()).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    ours = wire_dtype.encode(x, "bfloat16")
    np.testing.assert_array_equal(ours[finite], bf[finite])
    assert (ours[~finite] == 0x7FC0).all()  # one NaN pattern (torch's vector path differs)
    for fmt in wire_dtype.FORMATS:
        assert np.isnan(wire_dtype.decode(wire_dtype.encode(x[~finite], fmt), fmt)).all()
    every = np.arange(1 << 16, dtype=np.uint16)  # decoding is exact for every pattern
    np.testing.assert_array_equal(wire_dtype.decode(every.view(np.float16), "float16").view(np.uint32),
                                  every.view(np.float16).astype(np.float32).view(np.uint32))
    np.testing.assert_array_equal(wire_dtype.decode(every, "bfloat16").view(np.uint32),
                                  every.astype(np.uint32) << 16)


def test_vector_paths_match_the_scalar_rounding_in_every_lane_and_mode():
    """Rows wider than a vector (8 lanes) with NaNs, subnormals and ties in every lane
    position: the gathered row path, the flat path and numpy give the same bits, also with
    the CPU's flush-to-zero / denormals-are-zero modes on (torch.set_flush_denormal)."""
    x = bit_patterns(n=20_000, seed=9)
    x = x[: len(x) // 37 * 37].reshape(-1, 37)  # 37 = 4 vectors + a 5-value tail per row
    rows = np.random.default_rng(1).permutation(len(x))
    finite = ~np.isnan(x[rows])
    with np.errstate(all="ignore"):
        expect = x[rows].astype(np.float16).view(np.uint16)
    for flush in (False, True):
        assert torch.set_flush_denormal(flush) or not flush
        try:
            got = _core.encode_half(x, "float16", rows=rows).view(np.uint16)
            flat = wire_dtype.encode(x[rows], "float16").view(np.uint16)
            every = np.arange(1 << 16, dtype=np.uint16)
            back = wire_dtype.decode(every.view(np.float16), "float16")
        finally:
            torch.set_flush_denormal(False)
        np.testing.assert_array_equal(got[finite], expect[finite])
        np.testing.assert_array_equal(flat, got)  # NaN lanes too: one rounding function
        assert ((got[~finite] & 0x7C00) == 0x7C00).all() and (got[~finite] & 0x03FF).all()  # NaN stays NaN
        np.testing.assert_array_equal(back.view(np.uint32), every.view(np.float16).astype(np.float32).view(np.uint32))


def test_fused_gather_encode_matches_gather_then_encode_and_rejects_bad_input():
    rng = np.random.default_rng(2)
    src = rng.standard_normal((500, 3, 4)).astype(np.float32)
    rows = rng.integers(0, 500, 300)
    out_rows = rng.permutation(400)[:300]
    for fmt in wire_dtype.FORMATS:
        carrier = wire_dtype.CARRIER[fmt]
        np.testing.assert_array_equal(_core.encode_half(src, fmt, rows=rows), wire_dtype.encode(src[rows], fmt))
        out = np.zeros((400, 3, 4), carrier)
        _core.encode_half(src, fmt, rows=rows, out=out, out_rows=out_rows)
        np.testing.assert_array_equal(out[out_rows], wire_dtype.encode(src[rows], fmt))
        untouched = np.setdiff1d(np.arange(400), out_rows)
        assert not out[untouched].view(np.uint16).any()
        before = out.copy()
        with pytest.raises(IndexError, match="out row 400"):
            _core.encode_half(src, fmt, rows=rows[:2], out=out, out_rows=[0, 400])
        with pytest.raises(IndexError, match="row 500"):
            _core.encode_half(src, fmt, rows=[1, 500], out=out, out_rows=[0, 1])
        np.testing.assert_array_equal(out, before)  # nothing written on a bad index
    with pytest.raises(ValueError, match="format"):
        _core.encode_half(src, "fp8")
    with pytest.raises(ValueError, match="float32"):
        _core.encode_half(src.astype(np.float64), "float16")
    with pytest.raises(ValueError, match="uint16"):
        _core.encode_half(src, "bfloat16", out=np.zeros((500, 3, 4), np.float16))
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.encode_half(src[:, :, ::2], "float16")
    buf = np.zeros(16, np.float32)
    with pytest.raises(ValueError, match="overlap"):
        _core.decode_half(buf.view(np.uint16)[:16], "bfloat16", out=buf)


def make(n=3000, seed=1) -> GraphArrays:
    rng = np.random.default_rng(seed)
    ids = np.arange(n, dtype=np.int64)
    feat = (rng.standard_normal((n, 8)) * 100).astype(np.float32)
    return GraphArrays(SCHEMA, {NT: ids}, {NT: {"feat": feat, "label": rng.integers(0, 3, n)}},
                       {ET: (rng.integers(0, n, 30000), rng.integers(0, n, 30000))})


def batches(graph, fmt, cache_mb=0.0):
    loader = NodeLoader(graph, np.arange(600), [5, 5], batch_size=200, prefetch=0, output="numpy",
                        feature_dtype=fmt, cache_mb=cache_mb)
    return [(mb.subgraph.input_nodes[NT], mb.features[NT]["feat"], mb.subgraph.seeds[NT], mb.labels[NT])
            for mb in loader]


@pytest.mark.parametrize("fmt", wire_dtype.FORMATS)
def test_loader_features_are_the_rounded_values_everywhere(fmt, tmp_path):
    ga = make()
    feat = ga.node_features[NT]["feat"]
    want = [(inp, wire_dtype.decode(wire_dtype.encode(feat[inp], fmt), fmt)) for inp, _, _, _ in
            batches(ga.to_local(1), None)]
    store = ga.write_store(tmp_path / "store", partitions=2)
    fleet = Fleet(tmp_path / "logs")
    try:
        servers = fleet.start_all([dict(store=store, partition=k) for k in range(2)])
        remote = connect(cluster_dict([[s] for s in servers], deadline_s=20), shared_memory=False)
        shared = connect(cluster_dict([[s] for s in servers], deadline_s=20))
        for graph in (ga.to_local(1), ga.to_local(2), remote, shared):
            for cache_mb in (0.0, 0.02):
                got = batches(graph, fmt, cache_mb)
                for (inp, f, seeds, lab), (winp, wf) in zip(got, want):
                    np.testing.assert_array_equal(inp, winp)
                    assert f.dtype == np.float32
                    np.testing.assert_array_equal(f, wf)
                    np.testing.assert_array_equal(lab, ga.node_features[NT]["label"][seeds])  # exact
        raw = remote.node_features(NT, np.arange(50), ["feat", "label"], wire_dtype=fmt)
        assert raw["feat"].dtype == wire_dtype.CARRIER[fmt] and raw["label"].dtype == np.int64
        with pytest.raises(ValueError, match="feature_dtype"):
            remote.node_features(NT, np.arange(5), wire_dtype="int8")
        remote.close()
        shared.close()
    finally:
        fleet.close()


def test_bad_feature_dtype_is_a_value_error():
    with pytest.raises(ValueError, match="feature_dtype"):
        NodeLoader(make().to_local(1), np.arange(10), [2], batch_size=5, feature_dtype="fp8")
