"""Sampling API: multi-layer neighbor sampling, DGL-style loaders, feature fetch and the
Gremlin-like query chain, all over any :class:`~graphplat.service.GraphService`."""
from graphplat.sampling.features import CacheStats, FeatureFetcher
from graphplat.sampling.link import LinkLoader, all_edges
from graphplat.sampling.loader import LoaderStats, Minibatch, NodeLoader
from graphplat.sampling.neighbor import EdgeExclusion, NeighborSampler
from graphplat.sampling.query import E, Query, V
from graphplat.sampling.seeds import derive_rng, derive_seed
from graphplat.sampling.subgraph import SampledLayer, SampledSubgraph, to_dgl_blocks

__all__ = ["NeighborSampler", "EdgeExclusion", "NodeLoader", "LinkLoader", "all_edges", "Minibatch", "LoaderStats",
           "FeatureFetcher", "CacheStats", "SampledLayer", "SampledSubgraph", "to_dgl_blocks",
           "derive_seed", "derive_rng", "V", "E", "Query"]
