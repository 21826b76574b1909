"""The embedded quick start: build a synthetic power-law graph in memory, sample DGL-ready
minibatches from it with the C++ core, and report what happened.

Until the training loop lands (issue 5) this is the main job the README runs: it exercises
the full sampling path a training script uses and checks the blocks it produces.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import List, Sequence

import numpy as np
from tqdm import tqdm

from graphplat import _core
from graphplat.datasets.synthetic import generate_powerlaw_csc

LOG = logging.getLogger(__name__)


@dataclass
class QuickstartReport:
    """What :func:`run_quickstart` measured."""

    num_nodes: int
    num_edges: int
    batches: int
    batch_size: int
    fanouts: List[int]
    sampled_edges: int
    seconds: float
    edges_per_second: float
    dgl_blocks_checked: bool


def blocks_from_hops(hops) -> list:
    """Turn ``sample_multihop`` hops into DGL blocks, input layer first (DGL's order)."""
    import dgl  # imported lazily: the core itself does not need DGL
    import torch

    blocks = []
    for hop in reversed(hops):
        block = dgl.create_block(
            (torch.from_numpy(hop.src), torch.from_numpy(hop.dst)),
            num_src_nodes=len(hop.nodes), num_dst_nodes=hop.num_dst)
        block.srcdata[dgl.NID] = torch.from_numpy(hop.nodes)
        block.dstdata[dgl.NID] = torch.from_numpy(hop.nodes[: hop.num_dst])
        block.edata[dgl.EID] = torch.from_numpy(hop.eids)
        blocks.append(block)
    return blocks


def check_blocks(blocks, indptr: np.ndarray, indices: np.ndarray) -> None:
    """Assert every block edge is a real in-edge of the graph; raises AssertionError."""
    import dgl

    for block in blocks:
        src, dst = (t.numpy() for t in block.edges())
        gsrc = block.srcdata[dgl.NID].numpy()[src]
        gdst = block.dstdata[dgl.NID].numpy()[dst]
        eid = block.edata[dgl.EID].numpy()
        assert np.array_equal(indices[eid], gsrc), "block edge source differs from the graph"
        assert np.all((eid >= indptr[gdst]) & (eid < indptr[gdst + 1])), "edge not in row"


def run_quickstart(num_nodes: int = 200_000, num_edges: int = 4_000_000, batches: int = 200,
                   batch_size: int = 1024, fanouts: Sequence[int] = (15, 10, 5),
                   seed: int = 0) -> QuickstartReport:
    """Generate the graph, sample ``batches`` minibatches, check the DGL blocks of the first.

    Returns a :class:`QuickstartReport`.
    """
    indptr, indices = generate_powerlaw_csc(num_nodes, num_edges, alpha=2.2,
                                            max_degree=max(100, num_edges // 200), seed=seed)
    indptr.setflags(write=False)
    indices.setflags(write=False)
    csc = _core.CSR(indptr, indices)  # rows = destinations: in-neighbors, as GNNs sample
    LOG.info("graph: %d nodes, %d edges, max in-degree %d", num_nodes, csc.nnz,
             int(np.diff(indptr).max()))
    rng = np.random.default_rng(seed)
    sampled = 0
    checked = False
    seconds = 0.0  # sampling time only: the block check (and DGL's import) is not timed
    for b in tqdm(range(batches), desc="sampling minibatches", unit="batch"):
        seeds = rng.choice(num_nodes, batch_size, replace=False)
        start = time.perf_counter()
        hops = _core.sample_multihop(csc, seeds, list(fanouts), seed=seed * 1_000_003 + b)
        seconds += time.perf_counter() - start
        sampled += sum(len(h.src) for h in hops)
        if not checked:
            check_blocks(blocks_from_hops(hops), indptr, indices)
            checked = True
    return QuickstartReport(num_nodes, csc.nnz, batches, batch_size, list(fanouts), sampled,
                            round(seconds, 3), round(sampled / seconds, 1), checked)


def report_json(report: QuickstartReport) -> str:
    """The report as a JSON line."""
    return json.dumps(asdict(report))
