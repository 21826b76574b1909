"""make_block builds the same DGLBlock as dgl.create_block, without its checks."""
import dgl
import dgl.function as fn
import numpy as np
import pytest
import torch

from graphplat.sampling.dgl_block import make_block

I64 = np.int64


def _random_layer(rng, sorted_dst=True):
    num_src = {"a": 50, "b": 30, "c": 0}
    num_dst = {"a": 20, "b": 10, "c": 0}
    edges = {}
    for et, e in ((("a", "r1", "a"), 200), (("b", "r2", "a"), 80), (("a", "r3", "b"), 0),
                  (("a", "r4", "b"), 60)):
        s, _, d = et
        src = rng.integers(0, num_src[s], e).astype(I64)
        dst = rng.integers(0, num_dst[d], e).astype(I64)
        if sorted_dst:
            dst = np.sort(dst)
        edges[et] = (src, dst)
    return edges, num_src, num_dst


@pytest.mark.parametrize("sorted_dst", [True, False])
def test_make_block_equals_create_block(sorted_dst):
    rng = np.random.default_rng(3)
    edges, num_src, num_dst = _random_layer(rng, sorted_dst)
    ours = make_block(edges, num_src, num_dst)
    ref = dgl.create_block({et: (torch.from_numpy(s), torch.from_numpy(d)) for et, (s, d) in edges.items()},
                           num_src_nodes=num_src, num_dst_nodes=num_dst, idtype=torch.int64)
    assert ours.is_block and ours.idtype == torch.int64
    assert ours.srctypes == ref.srctypes and ours.dsttypes == ref.dsttypes
    assert ours.canonical_etypes == ref.canonical_etypes
    for nt in num_src:
        assert ours.num_src_nodes(nt) == ref.num_src_nodes(nt)
        assert ours.num_dst_nodes(nt) == ref.num_dst_nodes(nt)
    for et, (s, d) in edges.items():
        u, v = ours.edges(etype=et, order="eid")
        np.testing.assert_array_equal(u.numpy(), s)  # edge i is (src[i], dst[i])
        np.testing.assert_array_equal(v.numpy(), d)
        np.testing.assert_array_equal(ours.in_degrees(etype=et).numpy(), ref.in_degrees(etype=et).numpy())
        np.testing.assert_array_equal(ours.out_degrees(etype=et).numpy(), ref.out_degrees(etype=et).numpy())
    # Message passing (which reads the CSC) gives the same sums as on create_block's block.
    for g in (ours, ref):
        for nt in num_src:
            g.srcnodes[nt].data["x"] = torch.arange(num_src[nt], dtype=torch.float32) + 1
        for et in edges:
            g.edges[et].data["w"] = torch.arange(g.num_edges(et), dtype=torch.float32)
        g.multi_update_all({et: (fn.u_mul_e("x", "w", "m"), fn.sum("m", "y")) for et in edges}, "sum")
    for nt in ("a", "b"):
        np.testing.assert_allclose(ours.dstnodes[nt].data["y"].numpy(), ref.dstnodes[nt].data["y"].numpy())


def test_make_block_homogeneous_and_empty():
    et = ("_N", "_E", "_N")
    blk = make_block({et: (np.zeros(0, I64), np.zeros(0, I64))}, {"_N": 3}, {"_N": 2})
    assert blk.num_src_nodes() == 3 and blk.num_dst_nodes() == 2 and blk.num_edges() == 0
    src, dst = np.array([2, 0, 1], I64), np.array([0, 1, 1], I64)
    blk = make_block({et: (src, dst)}, {"_N": 3}, {"_N": 2})
    blk.srcdata["h"] = torch.tensor([1.0, 10.0, 100.0])
    blk.update_all(fn.copy_u("h", "m"), fn.sum("m", "h"))
    np.testing.assert_allclose(blk.dstdata["h"].numpy(), [100.0, 11.0])
    assert set(blk.formats()["created"]) <= {"coo", "csr", "csc"}
    assert "csc" in blk.formats()["created"]  # built as CSC, as DGL's fused sampler does
