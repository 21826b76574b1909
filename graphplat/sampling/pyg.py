"""A sampled minibatch as a PyG ``Data`` / ``HeteroData`` (needs ``torch_geometric``, the
``pyg`` extra), shaped like PyG's ``NeighborLoader`` output.

PyG's loaders return one subgraph per batch rather than one block per layer: every node
once (seeds first, then nodes by the hop that reached them) and every edge of each node's
first expansion, ``edge_index`` as ``[src, dst]`` local indices (messages flow src -> dst,
PyG's ``source_to_target``). Per node type: ``x`` (the input feature), ``n_id`` (user ids),
``y`` (labels of the seed type's nodes that are seeds; ``-1`` for the other rows),
``batch_size`` (seed count, the first rows), ``input_id`` (seed types: the seeds' positions
in the loader's seed array of that type, as PyG's) and ``num_sampled_nodes`` (one count per
hop, seeds first: ``num_layers + 1`` entries); per edge type (every one of the schema):
``edge_index``, ``e_id`` and ``num_sampled_edges`` (one count per hop: ``num_layers``
entries), so ``torch_geometric.utils.trim_to_layer`` works. A graph with one node and one
edge type gives a ``Data`` with the same attributes.
"""
from __future__ import annotations

from typing import Dict, List

import numpy as np

from graphplat.sampling.subgraph import tensor_of
from graphplat.schema import GraphSchema


def _union_edges(mb, etypes):
    """Edges of each node's first expansion, per edge type of ``etypes``, per hop (seeds'
    hop first; an empty entry where a hop has no edge of the type)."""
    layers = mb.subgraph.layers
    empty = np.zeros(0, np.int64)
    per_type: Dict[tuple, List[tuple]] = {et: [] for et in etypes}
    for depth, layer in enumerate(reversed(layers)):
        upper = layers[len(layers) - depth] if depth > 0 else None  # the layer nearer the seeds
        for et in per_type:
            s, d, e = layer.edges.get(et, (empty, empty, empty))
            if upper is not None:  # destinations expanded by an earlier hop keep those edges only
                keep = d >= upper.num_dst.get(et[2], 0)
                s, d, e = s[keep], d[keep], e[keep]
            per_type[et].append((s, d, e))
    return per_type


def to_pyg(mb, schema: GraphSchema, feature: str = "feat", label: str = "label"):
    """Convert a :class:`~graphplat.sampling.loader.Minibatch` to PyG (see the module
    docstring). Returns ``Data`` for a graph with one node and one edge type, else
    ``HeteroData``. Raises ImportError naming the extra when torch_geometric is missing."""
    try:
        from torch_geometric.data import Data, HeteroData
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError("output='pyg' needs torch_geometric: pip install 'graphplat[pyg]'") from e
    import torch

    sub = mb.subgraph
    nodes = sub.input_nodes
    input_ids = mb.extra.get("input_id", {})
    data = HeteroData()
    layers = sub.layers
    for nt, ids in nodes.items():
        store = data[nt]
        store.n_id = torch.from_numpy(ids)
        feats = mb.features.get(nt, {})
        if feats:  # the named feature, else the type's only/first fetched one
            store.x = tensor_of(feats[feature] if feature in feats else next(iter(feats.values())))
        store.num_nodes = len(ids)
        seeds = len(sub.seeds.get(nt, ()))
        store.batch_size = seeds
        # nodes first reached at each hop: seeds, then each layer's new sources (nearest first)
        sizes = [seeds]
        for layer in reversed(layers):
            sizes.append(len(layer.src_nodes.get(nt, ())) - sum(sizes))
        store.num_sampled_nodes = sizes
        if nt in mb.labels:
            y = np.full(len(ids), -1, dtype=np.int64)
            y[:seeds] = mb.labels[nt]
            store.y = torch.from_numpy(y)
        if nt in input_ids:
            store.input_id = torch.from_numpy(np.asarray(input_ids[nt], np.int64))
    for et, hops in _union_edges(mb, schema.canonical_etypes).items():
        if et[0] not in nodes or et[2] not in nodes:
            continue
        s = np.concatenate([h[0] for h in hops]).astype(np.int64, copy=False)
        d = np.concatenate([h[1] for h in hops]).astype(np.int64, copy=False)
        e = np.concatenate([h[2] for h in hops]).astype(np.int64, copy=False)
        data[et].edge_index = torch.from_numpy(np.stack([s, d]))
        data[et].e_id = tensor_of(e)
        data[et].num_sampled_edges = [len(h[0]) for h in hops]
    if len(schema.ntypes) == 1 and len(schema.etypes) == 1:
        nt, et = schema.ntypes[0], schema.canonical_etypes[0]
        out = Data(n_id=data[nt].n_id, num_nodes=data[nt].num_nodes, batch_size=data[nt].batch_size,
                   num_sampled_nodes=data[nt].num_sampled_nodes)
        for key in ("x", "y", "input_id"):
            if key in data[nt]:
                out[key] = data[nt][key]
        if et in data.edge_types:
            out.edge_index, out.e_id = data[et].edge_index, data[et].e_id
            out.num_sampled_edges = data[et].num_sampled_edges
        else:
            out.edge_index = torch.zeros((2, 0), dtype=torch.int64)
            out.e_id = torch.zeros(0, dtype=torch.int64)
            out.num_sampled_edges = [0] * len(layers)
        return out
    return data
