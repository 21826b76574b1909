"""What a multi-layer neighbor sampler returns, and its conversion to DGL blocks.

Plain numpy dataclasses (like PyG's ``SamplerOutput``): ids are the graph's user ids per node
type, structure is local indices, so the same object feeds DGL blocks, PyG ``HeteroData``
or a user's own code.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

import numpy as np

from graphplat.typing import Canonical


@dataclass
class SampledLayer:
    """One message-passing layer (one DGL block).

    ``src_nodes[ntype]``: user ids of the layer's source side, the ``num_dst[ntype]``
    destination nodes first in their order; ``edges[etype] = (src, dst, eids)`` with
    ``src``/``dst`` local indices into ``src_nodes[etype[0]]`` / the destination nodes of
    ``etype[2]``, message direction src -> dst, and ``eids`` the graph's edge ids.
    """

    src_nodes: Dict[str, np.ndarray]
    num_dst: Dict[str, int]
    edges: Dict[Canonical, Tuple[np.ndarray, np.ndarray, np.ndarray]]

    def dst_nodes(self, ntype: str) -> np.ndarray:
        """User ids of the destination nodes of ``ntype``."""
        return self.src_nodes[ntype][: self.num_dst.get(ntype, 0)]

    @property
    def num_edges(self) -> int:
        """Sampled edges in this layer, over all edge types."""
        return sum(len(e[0]) for e in self.edges.values())


@dataclass
class SampledSubgraph:
    """A multi-layer sample: ``layers[0]`` is the input layer (as DGL orders blocks), the last
    layer's destination nodes are the ``seeds``."""

    seeds: Dict[str, np.ndarray]
    layers: List[SampledLayer] = field(default_factory=list)

    @property
    def input_nodes(self) -> Dict[str, np.ndarray]:
        """User ids whose features the first layer reads, per node type."""
        return self.layers[0].src_nodes if self.layers else self.seeds

    @property
    def num_edges(self) -> int:
        """Sampled edges over all layers."""
        return sum(layer.num_edges for layer in self.layers)


def tensor_of(arr: np.ndarray):
    """A torch tensor over ``arr`` without a copy, unless ``arr`` is read-only (e.g. a view
    of a RemoteGraph answer): tensors are writable, and a model may change its inputs in place."""
    import torch

    return torch.from_numpy(arr if arr.flags.writeable else arr.copy())


def to_dgl_blocks(sub: SampledSubgraph, ntypes, canonical_etypes) -> list:
    """DGL blocks of ``sub`` (input layer first), with every node type and edge type of the
    schema present (possibly empty) so models see the same types in every batch.

    Each block stores ``srcdata[dgl.NID]``/``dstdata[dgl.NID]`` (user ids) and
    ``edata[dgl.EID]`` (edge ids). Returns a list of ``DGLBlock``.
    """
    import dgl
    import torch

    from graphplat.sampling.dgl_block import make_block

    blocks = []
    for layer in sub.layers:
        empty = np.zeros(0, np.int64)
        data = {}
        for et in canonical_etypes:
            s, d, _ = layer.edges.get(et, (empty, empty, empty))
            data[et] = (s, d)
        num_src = {nt: len(layer.src_nodes.get(nt, empty)) for nt in ntypes}
        num_dst = {nt: int(layer.num_dst.get(nt, 0)) for nt in ntypes}
        block = make_block(data, num_src, num_dst)
        for nt in ntypes:
            ids = torch.from_numpy(layer.src_nodes.get(nt, empty))
            block.srcnodes[nt].data[dgl.NID] = ids
            block.dstnodes[nt].data[dgl.NID] = ids[: num_dst[nt]]
        for et in canonical_etypes:
            block.edges[et].data[dgl.EID] = tensor_of(layer.edges.get(et, (empty, empty, empty))[2])
        blocks.append(block)
    return blocks
