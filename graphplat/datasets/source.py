"""Open the graph a command or config names: a store, a cluster file or a standard dataset."""
from __future__ import annotations

import logging
from typing import Any, Mapping, Optional

from graphplat.service import GraphService
from graphplat.typing import PathLike

log = logging.getLogger(__name__)

__all__ = ["open_graph_source"]


def open_graph_source(graph: Optional[PathLike] = None, cluster: Optional[PathLike] = None,
                      dataset: Optional[str] = None, *, data_dir: Optional[PathLike] = None,
                      dataset_options: Optional[Mapping[str, Any]] = None,
                      read_only: bool = True) -> Optional[GraphService]:
    """The GraphService named by at most one of ``graph`` (a store directory: a LocalGraph,
    read-only unless ``read_only=False``), ``cluster`` (a cluster file: a RemoteGraph) or
    ``dataset`` (a name for :func:`graphplat.datasets.load_dataset` with ``data_dir`` and
    ``dataset_options``: an in-memory LocalGraph). Returns None when none is given; raises
    ValueError when several are."""
    given = [f"{k} {v}" for k, v in (("store", graph), ("cluster", cluster), ("dataset", dataset)) if v]
    if len(given) > 1:
        raise ValueError(f"give one graph source, not several: {', '.join(given)}")
    if graph:
        from graphplat.storage.local import open_graph

        return open_graph(graph, read_only=read_only)
    if cluster:
        from graphplat.storage.remote import connect

        return connect(cluster)
    if dataset:
        from graphplat.datasets.registry import load_dataset

        return load_dataset(dataset, data_dir, **dict(dataset_options or {})).to_local()
    return None
