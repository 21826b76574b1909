"""Checks of DGL blocks shared by the loader and query tests."""
from __future__ import annotations

from collections import Counter

import dgl
import numpy as np


def block_edges(block, et) -> Counter:
    """Counter of (src id, dst id) pairs of a DGL block's edges of ``et`` (ids from dgl.NID)."""
    s, d = block.edges(etype=et)
    sid = block.srcnodes[et[0]].data[dgl.NID][s].tolist()
    did = block.dstnodes[et[2]].data[dgl.NID][d].tolist()
    return Counter(zip(sid, did))


def check_block_layout(blocks, seeds_by_type):
    """dst nodes first in the src side; layer l's src side = layer l+1's dst side."""
    for nt, ids in seeds_by_type.items():
        assert blocks[-1].dstnodes[nt].data[dgl.NID].tolist() == ids.tolist()
    for b in blocks:
        for nt in b.srctypes:
            src = b.srcnodes[nt].data[dgl.NID].numpy()
            dst = b.dstnodes[nt].data[dgl.NID].numpy()
            assert len(np.unique(src)) == len(src)
            assert (src[:len(dst)] == dst).all()
    for lower, upper in zip(blocks, blocks[1:]):
        for nt in upper.dsttypes:
            assert lower.dstnodes[nt].data[dgl.NID].tolist() == upper.srcnodes[nt].data[dgl.NID].tolist()


def batch_signature(batch, eids: bool = True) -> list:
    """Everything a batch carries, as plain lists (ids, structure, eids, features)."""
    *nodes, blocks = batch
    sig = []
    for n in nodes:
        if isinstance(n, dict):
            sig.append({k: v.tolist() for k, v in sorted(n.items())})
        elif isinstance(n, dgl.DGLGraph):
            sig.append([(et, n.edges(etype=et)[0].tolist(), n.edges(etype=et)[1].tolist())
                        for et in n.canonical_etypes])
        else:
            sig.append(n.tolist())
    for b in blocks:
        for et in b.canonical_etypes:
            s, d = b.edges(etype=et)
            sig.append((et, s.tolist(), d.tolist(), b.edges[et].data[dgl.EID].tolist() if eids else None))
        for nt in b.srctypes:
            sig.append((nt, b.srcnodes[nt].data[dgl.NID].tolist()))
            for k, v in b.srcnodes[nt].data.items():
                sig.append((nt, k, v.tolist()))
    return sig
