"""graphplat.datasets.source.open_graph_source: the one opener of a store, cluster or dataset."""
import numpy as np
import pytest

from graphplat.datasets.source import open_graph_source
from graphplat.errors import ReadOnlyReplica
from graphplat.storage.local import LocalGraph


def test_nothing_named_gives_none():
    assert open_graph_source() is None


def test_several_sources_are_refused():
    with pytest.raises(ValueError, match="one graph source.*store s.*dataset synthetic"):
        open_graph_source(graph="s", dataset="synthetic")


def test_dataset_then_its_store_give_the_same_graph(tmp_path):
    g = open_graph_source(dataset="synthetic", dataset_options={"num_users": 60, "num_items": 40,
                                                                "num_shops": 10, "num_clicks": 500})
    assert isinstance(g, LocalGraph)
    from graphplat.datasets import load_dataset

    load_dataset("synthetic", num_users=60, num_items=40, num_shops=10, num_clicks=500).write_store(tmp_path / "st")
    s = open_graph_source(graph=tmp_path / "st")
    try:
        assert isinstance(s, LocalGraph)
        for nt in g.schema.ntypes:
            assert s.num_nodes(nt) == g.num_nodes(nt) > 0
        with pytest.raises(ReadOnlyReplica):  # opened read-only
            s.add_nodes("user", np.array([10_000_000]))
    finally:
        s.close()
        g.close()
