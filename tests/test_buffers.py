"""Recycled feature buffers: reused only once nothing refers to them, so batches a consumer
keeps are never overwritten; take_rows writes into a given output."""
from __future__ import annotations

import gc

import numpy as np
import pytest
import torch

from graphplat import _core
from graphplat.buffers import MIN_POOLED_BYTES, BufferPool
from graphplat.sampling import NodeLoader
from graphplat.schema import GraphSchema
from graphplat.storage.graph_arrays import GraphArrays

ROWS = MIN_POOLED_BYTES // 64 + 10  # 16 float32 columns: just over the pooled size


def test_reused_only_when_unreferenced():
    pool = BufferPool(keep=2)
    a = pool.empty((ROWS, 16), np.float32)
    base = id(a.base)  # not the buffer itself: holding it would keep it in use
    kept = [a[5:9], torch.from_numpy(a), memoryview(a)]
    del a
    gc.collect()
    b = pool.empty((ROWS, 16), np.float32)
    assert id(b.base) != base and pool.reused == 0  # views, tensors and memoryviews hold it
    del kept
    gc.collect()
    c = pool.empty((ROWS - 5, 16), np.float32)  # smaller requests fit a free buffer
    assert id(c.base) == base and pool.reused == 1 and c.shape == (ROWS - 5, 16)
    assert pool.empty((4, 4), np.float32).base is None  # small arrays are not pooled


def test_full_pool_hands_out_unpooled_arrays():
    pool = BufferPool(keep=1)
    a = pool.empty((ROWS, 16), np.float32)
    b = pool.empty((ROWS, 16), np.float32)  # a is alive: b is not pooled
    a[:] = 1
    b[:] = 2
    assert (a == 1).all() and len(pool._bufs) == 1


def test_take_rows_into_out():
    src = np.arange(40, dtype=np.float32).reshape(10, 4)
    rows = np.array([3, 0, 9], dtype=np.int64)
    out = np.empty((3, 4), np.float32)
    got = _core.take_rows(src, rows, out=out)
    assert got is out or np.shares_memory(got, out)
    np.testing.assert_array_equal(out, src[rows])
    for bad in (np.empty((2, 4), np.float32), np.empty((3, 4), np.float64), np.empty((4, 3), np.float32),
                src[:3], np.empty((3, 8), np.float32)[:, :4]):
        with pytest.raises(ValueError):
            _core.take_rows(src, rows, out=bad)
    ro = np.empty((3, 4), np.float32)
    ro.setflags(write=False)
    with pytest.raises(ValueError):
        _core.take_rows(src, rows, out=ro)


def _random_graph(seed: int, n: int = 6000):
    """A homogeneous random graph of ``n`` nodes with a 64-wide float32 feature: (arrays, feat)."""
    rng = np.random.default_rng(seed)
    schema = GraphSchema.homogeneous(64)
    nt, et = schema.ntypes[0], schema.canonical_etypes[0]
    feat = rng.random((n, 64), dtype=np.float32)
    arrays = GraphArrays(schema, {nt: np.arange(n, dtype=np.int64)}, {nt: {"feat": feat}},
                         {et: (rng.integers(0, n, 10 * n), rng.integers(0, n, 10 * n))})
    return arrays, feat


@pytest.mark.parametrize("partitions", [1, 2])
def test_prefetching_loader_recycles_without_overwriting_kept_batches(partitions):
    n = 6000
    arrays, feat = _random_graph(0, n)
    g = arrays.to_local(partitions)
    loader = NodeLoader(g, np.arange(n), [10, 10], batch_size=500, prefetch=2)
    kept = list(loader)  # every batch alive: nothing may be reused
    assert loader.fetcher.buffers.reused == 0
    for inp, _, blocks in kept:
        np.testing.assert_array_equal(blocks[0].srcdata["feat"].numpy(), feat[inp.numpy()])
    del kept
    gc.collect()
    for inp, _, blocks in loader:  # dropped as we go: buffers come back
        np.testing.assert_array_equal(blocks[0].srcdata["feat"].numpy(), feat[inp.numpy()])
    assert loader.fetcher.buffers.reused > 0


def test_take_rows_into_rows_of_out():
    src = np.arange(40, dtype=np.float32).reshape(10, 4)
    rows = np.array([3, 0, 9], dtype=np.int64)
    out = np.zeros((5, 4), np.float32)
    _core.take_rows(src, rows, out=out, out_rows=np.array([4, 1, 2]))
    np.testing.assert_array_equal(out[[4, 1, 2]], src[rows])
    assert (out[[0, 3]] == 0).all()
    for bad_rows in ([4, 1], [4, 1, 5], [4, -1, 2]):
        with pytest.raises((ValueError, IndexError)):
            _core.take_rows(src, rows, out=out, out_rows=np.array(bad_rows))
    with pytest.raises(ValueError):
        _core.take_rows(src, rows, out_rows=np.array([0, 1, 2]))  # needs out
    with pytest.raises(IndexError):
        _core.take_rows(src, np.array([3, 10, 0]), out=out, out_rows=np.array([0, 1, 2]))


@pytest.mark.parametrize("partitions", [2, 3])
def test_multi_partition_features_into_out(partitions):
    rng = np.random.default_rng(2)
    n = 500
    schema = GraphSchema.homogeneous(6, label=True)
    nt, et = schema.ntypes[0], schema.canonical_etypes[0]
    feat = rng.random((n, 6), dtype=np.float32)
    label = rng.integers(0, 5, n)
    ids = rng.choice(10**6, n, replace=False).astype(np.int64)
    g = GraphArrays(schema, {nt: ids}, {nt: {"feat": feat, "label": label}},
                    {et: (ids[rng.integers(0, n, 900)], ids[rng.integers(0, n, 900)])}).to_local(partitions)
    pick = rng.permutation(n)[:300]
    out = {"feat": np.full((300, 6), -1, np.float32), "label": np.full(300, -1, np.int64)}
    got = g.node_features(nt, ids[pick], ["feat", "label"], out=out)
    assert got["feat"] is out["feat"] and got["label"] is out["label"]
    np.testing.assert_array_equal(out["feat"], feat[pick])
    np.testing.assert_array_equal(out["label"], label[pick])
    with pytest.raises(ValueError, match="out"):
        g.node_features(nt, ids[pick], ["feat"], out={"feat": np.empty((299, 6), np.float32)})


def test_loaders_over_one_graph_share_its_buffers():
    """A new loader over the same graph (a new epoch, a benchmark repetition) starts with the
    buffers the last one left: no fresh memory for its first batches; another graph has
    its own pool."""
    n = 6000
    arrays, feat = _random_graph(1, n)
    g = arrays.to_local(1)
    first = NodeLoader(g, np.arange(n), [10, 10], batch_size=500, prefetch=2)
    for inp, _, blocks in first:
        np.testing.assert_array_equal(blocks[0].srcdata["feat"].numpy(), feat[inp.numpy()])
    pool = first.fetcher.buffers
    allocated = pool.allocated
    assert allocated > 0
    # synchronous: one batch alive at a time, so every batch fits a buffer the first left
    second = NodeLoader(g, np.arange(n)[::-1].copy(), [10, 10], batch_size=500, prefetch=0)
    assert second.fetcher.buffers is pool
    for inp, _, blocks in second:
        np.testing.assert_array_equal(blocks[0].srcdata["feat"].numpy(), feat[inp.numpy()])
    assert pool.allocated == allocated and pool.reused > 0
    other = NodeLoader(arrays.to_local(1), np.arange(n), [10, 10], batch_size=500)
    assert other.fetcher.buffers is not pool
