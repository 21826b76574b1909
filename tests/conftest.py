"""Shared fixtures for the graphplat test-suite.

Helpers are exposed as fixtures (``make_graph``, ``brute``) so the test modules do not depend
on pytest's import mode.
"""
from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Optional

import numpy as np
import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def datasets_dir() -> pathlib.Path:
    """Directory of the real datasets: $GRAPHPLAT_DATASETS, else <repo>/../shared/datasets."""
    env = os.environ.get("GRAPHPLAT_DATASETS")
    candidates = [pathlib.Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared" / "datasets")
    for c in candidates:
        if c.is_dir():
            return c
    pytest.skip(
        "graph datasets directory not found: set GRAPHPLAT_DATASETS or provide "
        f"{REPO_ROOT.parent / 'shared' / 'datasets'}"
    )


# --------------------------------------------------------------------------- graphs


@dataclass
class Graph:
    """A CSR given as plain numpy arrays plus brute-force views of it."""

    indptr: np.ndarray
    indices: np.ndarray
    num_cols: int
    weights: Optional[np.ndarray] = None  # float32
    eids: Optional[np.ndarray] = None  # int64, explicit edge ids (unique)
    _pos_of_eid: dict = field(default=None, repr=False)

    @property
    def num_rows(self) -> int:
        return len(self.indptr) - 1

    @property
    def nnz(self) -> int:
        return len(self.indices)

    def deg(self, r: int) -> int:
        return int(self.indptr[r + 1] - self.indptr[r])

    def row_positions(self, r: int) -> range:
        return range(int(self.indptr[r]), int(self.indptr[r + 1]))

    def edge_set(self) -> set:
        rows = np.repeat(np.arange(self.num_rows), np.diff(self.indptr))
        return set(zip(rows.tolist(), self.indices.tolist()))

    def pos_of_eid(self, eid: int) -> int:
        """Position in ``indices`` of an edge id (identity without explicit eids)."""
        if self.eids is None:
            return int(eid)
        if self._pos_of_eid is None:
            self._pos_of_eid = {int(e): i for i, e in enumerate(self.eids.tolist())}
        return self._pos_of_eid.get(int(eid), -1)

    def csr(self, core, *, weights: bool = True, eids: bool = True):
        return core.CSR(
            self.indptr,
            self.indices,
            num_cols=self.num_cols,
            weights=self.weights if weights else None,
            eids=self.eids if eids else None,
        )


def edges_to_graph(src, dst, num_rows, num_cols, *, sort=True, weights=None, eids=None) -> Graph:
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    order = np.lexsort((dst, src)) if sort else np.argsort(src, kind="stable")
    counts = np.bincount(src, minlength=num_rows)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    w = None if weights is None else np.asarray(weights, dtype=np.float32)[order]
    e = None if eids is None else np.asarray(eids, dtype=np.int64)[order]
    return Graph(indptr, dst[order].copy(), num_cols, w, e)


def random_graph(
    rng: np.random.Generator,
    num_rows: int,
    num_cols: Optional[int] = None,
    avg_deg: float = 4.0,
    *,
    isolated_frac: float = 0.0,
    hubs: int = 0,
    hub_deg: int = 0,
    multi: bool = True,
    sort: bool = True,
    weights: bool = True,
    zero_weight_frac: float = 0.2,
    eids: bool = False,
) -> Graph:
    """Random (multi)graph. Weights float32 (some exactly 0, few distinct values => ties);
    explicit eids are unique arbitrary int64 values when ``eids``."""
    num_cols = num_rows if num_cols is None else num_cols
    nnz = int(rng.poisson(avg_deg * num_rows)) if num_cols > 0 else 0
    src = rng.integers(0, max(num_rows, 1), nnz)
    dst = rng.integers(0, max(num_cols, 1), nnz)
    if hubs and num_cols > 0:
        hub_nodes = rng.choice(num_rows, size=min(hubs, num_rows), replace=False)
        src = np.concatenate([src, np.repeat(hub_nodes, hub_deg)])
        dst = np.concatenate([dst, rng.integers(0, num_cols, hub_deg * len(hub_nodes))])
    if isolated_frac > 0 and num_rows > 0:
        iso = rng.random(num_rows) < isolated_frac
        keep = ~iso[src]
        src, dst = src[keep], dst[keep]
    if not multi:
        pairs = np.unique(np.stack([src, dst], 1), axis=0) if len(src) else np.zeros((0, 2), np.int64)
        src, dst = pairs[:, 0], pairs[:, 1]
    m = len(src)
    w = None
    if weights:
        w = (rng.integers(1, 6, m) * 0.5).astype(np.float32)  # few distinct values -> ties
        w[rng.random(m) < zero_weight_frac] = 0.0
    e = None
    if eids:
        e = rng.permutation(m).astype(np.int64) * 1_000_003 - 5 * 10**11  # unique, some negative
    return edges_to_graph(src, dst, num_rows, num_cols, sort=sort, weights=w, eids=e)


GRAPH_SHAPES = {
    # name: kwargs for random_graph
    "small": dict(num_rows=30, avg_deg=3.0),
    "isolated": dict(num_rows=60, avg_deg=2.0, isolated_frac=0.4),
    "hub": dict(num_rows=40, avg_deg=1.5, hubs=2, hub_deg=300),
    "multi": dict(num_rows=8, avg_deg=12.0),  # many parallel edges
    "rect": dict(num_rows=25, num_cols=7, avg_deg=5.0),
    "unsorted_eids": dict(num_rows=35, avg_deg=4.0, sort=False, eids=True),
}


def make_graph_by_name(name: str, seed: int = 0, **overrides) -> Graph:
    kw = dict(GRAPH_SHAPES[name])
    kw.update(overrides)
    return random_graph(np.random.default_rng(seed), **kw)


@pytest.fixture(scope="session")
def make_graph():
    """``make_graph(name_or_None, seed=0, **random_graph_kwargs) -> Graph``."""

    def _make(name=None, seed=0, **kw):
        if name is None:
            return random_graph(np.random.default_rng(seed), **kw)
        return make_graph_by_name(name, seed, **kw)

    _make.shapes = tuple(GRAPH_SHAPES)
    _make.from_edges = edges_to_graph
    return _make


@pytest.fixture(scope="session")
def core():
    import graphplat._core as core_mod

    return core_mod


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


# ----------------------------------------------------------------- brute-force checks


def check_sampled(g: Graph, seeds, counts, nbrs, eids, *, replace: bool):
    """Every sampled (seed, neighbor, eid) is a real edge of the seed's row; without
    replacement no edge position appears twice for one seed. Returns per-seed position lists."""
    seeds = np.asarray(seeds)
    assert counts.dtype == np.int64 and nbrs.dtype == np.int64 and eids.dtype == np.int64
    assert counts.shape == (len(seeds),)
    assert (counts >= 0).all()
    assert len(nbrs) == len(eids) == int(counts.sum())
    offs = np.concatenate([[0], np.cumsum(counts)])
    out = []
    for i, s in enumerate(seeds.tolist()):
        lo, hi = int(g.indptr[s]), int(g.indptr[s + 1])
        pos = []
        for nb, e in zip(nbrs[offs[i]:offs[i + 1]].tolist(), eids[offs[i]:offs[i + 1]].tolist()):
            p = g.pos_of_eid(e)
            assert lo <= p < hi, f"seed {s}: eid {e} is not an edge of this row"
            assert g.indices[p] == nb, f"seed {s}: eid {e} points to {g.indices[p]}, not {nb}"
            pos.append(p)
        if not replace:
            assert len(set(pos)) == len(pos), f"seed {s}: duplicate edge without replacement"
        out.append(pos)
    return out


@pytest.fixture(scope="session")
def brute():
    return SimpleNamespace(check_sampled=check_sampled, Graph=Graph)


@pytest.fixture(scope="module")
def torch_one_thread():
    """Tiny tensors: one torch thread is fastest and leaves the shared cores alone. Use with
    ``pytestmark = pytest.mark.usefixtures("torch_one_thread")``."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
