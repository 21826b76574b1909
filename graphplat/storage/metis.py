"""METIS partitioning of a heterogeneous graph into a :class:`PartitionBook` (via DGL)."""
from __future__ import annotations

import contextlib
import io
import logging
from typing import Dict, Tuple

import numpy as np

from graphplat import _core
from graphplat.errors import IngestError
from graphplat.schema import GraphSchema
from graphplat.storage.partition_book import PartitionBook

log = logging.getLogger(__name__)


def metis_book(schema: GraphSchema, nodes: Dict[str, np.ndarray],
                edges: Dict[Tuple[str, str, str], Tuple[np.ndarray, np.ndarray]], P: int) -> PartitionBook:
    """A METIS partition book (DGL's ``metis_partition_assignment``, balanced per node type) of
    the graph given as id arrays per node type and (src, dst) arrays per canonical edge type."""
    if P == 1:
        return PartitionBook.from_assignment(1, {nt: (ids, np.zeros(len(ids), np.int64))
                                                 for nt, ids in nodes.items()})
    import dgl
    import torch

    maps = {nt: _core.IdMap(ids) for nt, ids in nodes.items()}
    data = {}
    for key, (s, d) in edges.items():
        data[key] = (torch.from_numpy(maps[key[0]].lookup(s)), torch.from_numpy(maps[key[2]].lookup(d)))
    if not data:
        log.warning("metis: the graph has no edges; falling back to hash partitioning")
        return PartitionBook(P)
    g = dgl.heterograph(data, num_nodes_dict={nt: len(ids) for nt, ids in nodes.items()},
                        idtype=torch.int64)
    hg = dgl.to_homogeneous(g)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):  # DGL prints timings
        parts = dgl.metis_partition_assignment(hg, P, balance_ntypes=hg.ndata[dgl.NTYPE])
    for line in out.getvalue().splitlines():
        log.debug("metis: %s", line)
    if parts is None:
        raise IngestError("METIS partitioning failed (returned no assignment)")
    parts = parts.numpy().astype(np.int64)
    ntype_of = hg.ndata[dgl.NTYPE].numpy()
    nid = hg.ndata[dgl.NID].numpy()
    assignment = {}
    for nt, ids in nodes.items():
        mask = ntype_of == g.get_ntype_id(nt)
        assignment[nt] = (ids[nid[mask]], parts[mask])
    sizes = np.bincount(parts, minlength=P).tolist()
    log.info("metis: %d partitions of %s nodes", P, sizes)
    return PartitionBook.from_assignment(P, assignment)
