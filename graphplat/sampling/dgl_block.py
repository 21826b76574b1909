"""Build a heterogeneous DGL block straight from sampler output, as DGL's own fused sampler does.

``dgl.create_block`` re-validates its input in Python (a ``max`` over every index array)
and stores the edges as COO, which DGL sorts into CSC again at the first message passing.
Our samplers' output is valid by construction and grouped by destination, so this module
hands DGL the CSC directly (``create_unitgraph_from_csr``, the call DGL's C++ sampler path
ends in) and skips the checks. The result is the same ``DGLBlock`` ``create_block`` returns:
same node and edge types, same counts, edges in the same order (edge ``i`` of a relation is
``(src[i], dst[i])``). Relations whose destinations are not sorted fall back to COO.

Relies on DGL 2.1's ``heterograph_index`` functions (DGL is pinned to 2.1.0);
``tests/sampling/test_dgl_block.py`` checks the result against ``dgl.create_block``.
"""
from __future__ import annotations

from typing import Mapping, Tuple

import numpy as np

from graphplat.typing import Canonical

_ALL_FORMATS = ["coo", "csr", "csc"]


def _is_sorted(a: np.ndarray) -> bool:
    return len(a) < 2 or bool((a[1:] >= a[:-1]).all())


def _relation(num_src: int, num_dst: int, src: np.ndarray, dst: np.ndarray):
    """One relation's graph index: CSC when ``dst`` is non-decreasing, else COO."""
    import torch
    from dgl import heterograph_index

    if _is_sorted(dst):
        indptr = np.zeros(num_dst + 1, dtype=np.int64)
        if len(dst):
            np.cumsum(np.bincount(dst, minlength=num_dst), out=indptr[1:])
        # Edge ids = CSC positions, so edge i is (src[i], dst[i]). (An empty array would
        # mean the same to DGL, but its libxsmm SpMM then refuses the block.)
        return heterograph_index.create_unitgraph_from_csr(
            2, num_src, num_dst, torch.from_numpy(indptr), torch.from_numpy(src),
            torch.from_numpy(np.arange(len(src), dtype=np.int64)), _ALL_FORMATS, transpose=True)
    return heterograph_index.create_unitgraph_from_coo(
        2, num_src, num_dst, torch.from_numpy(src), torch.from_numpy(dst), _ALL_FORMATS)


def make_block(edges: Mapping[Canonical, Tuple[np.ndarray, np.ndarray]],
               num_src_nodes: Mapping[str, int], num_dst_nodes: Mapping[str, int]):
    """A ``dgl.DGLBlock`` like ``dgl.create_block(edges, num_src_nodes, num_dst_nodes,
    idtype=torch.int64)``, without its per-call validation.

    ``edges[(srctype, etype, dsttype)] = (src, dst)``: int64 numpy arrays of local indices,
    which the caller guarantees are in range (``0 <= src < num_src_nodes[srctype]``, same
    for ``dst``). Every node type named by an edge type must be in the count dicts.
    """
    from dgl import utils
    from dgl.graph_index import from_coo
    from dgl.heterograph import DGLBlock
    from dgl.heterograph_index import create_heterograph_from_relations

    srctypes = sorted(num_src_nodes)
    dsttypes = sorted(num_dst_nodes)
    src_index = {nt: i for i, nt in enumerate(srctypes)}
    dst_index = {nt: i + len(srctypes) for i, nt in enumerate(dsttypes)}
    relations = sorted(edges)
    meta_src, meta_dst, etypes, graphs = [], [], [], []
    for stype, etype, dtype in relations:
        src, dst = edges[(stype, etype, dtype)]
        meta_src.append(src_index[stype])
        meta_dst.append(dst_index[dtype])
        etypes.append(etype)
        graphs.append(_relation(int(num_src_nodes[stype]), int(num_dst_nodes[dtype]),
                                np.ascontiguousarray(src, dtype=np.int64),
                                np.ascontiguousarray(dst, dtype=np.int64)))
    metagraph = from_coo(len(srctypes) + len(dsttypes), meta_src, meta_dst, True)
    counts = utils.toindex([int(num_src_nodes[nt]) for nt in srctypes]
                           + [int(num_dst_nodes[nt]) for nt in dsttypes], "int64")
    index = create_heterograph_from_relations(metagraph, graphs, counts)
    return DGLBlock(index, (srctypes, dsttypes), etypes)

