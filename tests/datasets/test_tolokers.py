"""The Tolokers reader against the raw npz: counts, both edge directions, the 10 fixed splits."""
from __future__ import annotations

import numpy as np
import pytest

from graphplat.datasets import DATASETS, load_dataset

ET = ("worker", "coworker", "worker")


@pytest.fixture(scope="module")
def raw(datasets_dir):
    with np.load(datasets_dir / "tolokers" / "tolokers.npz") as z:
        return {k: z[k] for k in z.files}


def test_tolokers_counts_features_edges(datasets_dir, raw):
    assert "tolokers" in DATASETS
    ds = load_dataset("tolokers", datasets_dir)
    g = ds.graph
    assert ds.task == "node_classification" and ds.num_classes == 2 and ds.target_ntype == "worker"
    assert len(g.nodes["worker"]) == 11758 and int(ds.labels().sum()) == 2566
    np.testing.assert_array_equal(ds.labels(), raw["node_labels"])
    np.testing.assert_array_equal(g.node_features["worker"]["feat"], raw["node_features"])
    src, dst = g.edges[ET]
    assert len(src) == 2 * 519000  # every undirected pair stored both ways
    pairs = set(zip(src.tolist(), dst.tolist()))
    for a, b in raw["edges"][[0, 1, 1000, 518999]].tolist():
        assert (a, b) in pairs and (b, a) in pairs
    # in-neighbors through the in-memory service equal the raw adjacency
    local = ds.to_local()
    try:
        seed = int(raw["edges"][0, 0])
        s = local.sample_neighbors(ET, np.array([seed]), -1, strategy="full")
        e = raw["edges"]
        truth = sorted(set(e[e[:, 0] == seed, 1].tolist()) | set(e[e[:, 1] == seed, 0].tolist()))
        assert sorted(s.neighbors.tolist()) == truth
    finally:
        local.close()


def test_tolokers_fixed_splits(datasets_dir, raw):
    for k in (0, 7):
        split = load_dataset("tolokers", datasets_dir, split_index=k).split()
        for code, key in enumerate(("train_masks", "val_masks", "test_masks")):
            np.testing.assert_array_equal(split == code, raw[key][k])
        assert [(split == c).sum() for c in range(3)] == [5879, 2939, 2940]
    assert not np.array_equal(load_dataset("tolokers", datasets_dir, split_index=1).split(),
                              load_dataset("tolokers", datasets_dir, split_index=2).split())
    for bad in (-1, 10, "3"):
        with pytest.raises(ValueError, match="split_index"):
            load_dataset("tolokers", datasets_dir, split_index=bad)


def test_tolokers_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="tolokers.npz"):
        load_dataset("tolokers", tmp_path)
