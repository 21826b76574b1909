"""Synthetic graphs for quick starts, tests and benchmarks (no download needed).

``generate_powerlaw_csc`` draws a Chung-Lu power-law digraph: endpoints are drawn in
proportion to power-law weights, node ids are randomly permuted (so hubs are not the low
ids), self loops and duplicate edges are removed, and the edge count is exact.
"""
from __future__ import annotations

import logging
import time
from typing import Tuple

import numpy as np
from tqdm import tqdm

LOG = logging.getLogger(__name__)


def powerlaw_cdf(num_nodes: int, num_edges: int, alpha: float,
                 max_degree: int) -> Tuple[np.ndarray, float]:
    """Cumulative Chung-Lu weights ``w_i = (i + i0)^(-1/(alpha-1))``, normalised to end at 1.

    ``i0`` is found by bisection so that the heaviest node's expected in-degree,
    ``num_edges * w_0 / sum(w)``, is about ``max_degree``. Returns ``(cdf, i0)``.
    """
    beta = 1.0 / (alpha - 1.0)
    ranks = np.arange(num_nodes, dtype=np.float64)

    def top_degree(i0: float) -> float:
        w = (ranks + i0) ** -beta
        return num_edges * w[0] / w.sum()

    lo, hi = 1e-6, 1e12  # top_degree decreases with i0; bisect in log space
    if top_degree(lo) <= max_degree:
        i0 = lo
    else:
        for _ in range(80):
            mid = float(np.sqrt(lo * hi))
            lo, hi = (mid, hi) if top_degree(mid) > max_degree else (lo, mid)
        i0 = hi
    cdf = np.cumsum((ranks + i0) ** -beta)
    cdf /= cdf[-1]
    cdf[-1] = 1.0
    return cdf, i0


def _draw_edge_keys(cdf: np.ndarray, perm: np.ndarray, count: int, rng: np.random.Generator,
                    chunk: int = 4_000_000) -> np.ndarray:
    """Draw ``count`` Chung-Lu edges, drop self loops, return keys ``dst * N + src``.

    Both endpoints are drawn proportionally to the weights (searchsorted on ``cdf``) and
    mapped through the random permutation ``perm`` so heavy nodes get random ids. Keys are
    ordered by destination first, so sorting them yields the CSC directly.
    """
    n = len(cdf)
    parts = []
    for start in tqdm(range(0, count, chunk), desc="edges", unit="chunk", leave=False,
                      disable=count <= chunk):
        m = min(chunk, count - start)
        src = perm[np.searchsorted(cdf, rng.random(m), side="right")]
        dst = perm[np.searchsorted(cdf, rng.random(m), side="right")]
        keep = src != dst
        dst *= n
        dst += src
        parts.append(dst[keep])
        del src, dst, keep
    return np.concatenate(parts) if len(parts) != 1 else parts[0]


def _sort_unique_inplace(keys: np.ndarray) -> np.ndarray:
    """``np.unique(keys)`` with one fewer full-size copy: sort in place, keep first of runs."""
    keys.sort()
    if len(keys) < 2:
        return keys
    keep = np.empty(len(keys), dtype=bool)
    keep[0] = True
    np.not_equal(keys[1:], keys[:-1], out=keep[1:])
    return keys[keep]


def generate_powerlaw_csc(num_nodes: int, num_edges: int, alpha: float, max_degree: int,
                          seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """Generate a Chung-Lu power-law digraph without duplicate edges or self loops.

    Returns the CSC ``(indptr, indices)`` (int64): ``indices[indptr[v]:indptr[v+1]]`` are the
    in-neighbors of ``v``, sorted. Draws are topped up until deduplication leaves at least
    ``num_edges`` edges; the excess is removed at random so the count is exact.
    """
    if num_edges > num_nodes * (num_nodes - 1) // 4:
        raise ValueError(f"{num_edges} edges is too dense for {num_nodes} nodes")
    rng = np.random.default_rng(seed)
    cdf, i0 = powerlaw_cdf(num_nodes, num_edges, alpha, max_degree)
    LOG.info("generating power-law graph: %d nodes, %d edges, alpha=%.2f, i0=%.3g",
             num_nodes, num_edges, alpha, i0)
    perm = rng.permutation(num_nodes).astype(np.int64)
    keys = np.empty(0, dtype=np.int64)
    for round_ in range(20):
        missing = num_edges - len(keys)
        if missing <= 0:
            break
        draw = int(missing * (1.03 if round_ == 0 else 1.2)) + 1000
        t0 = time.perf_counter()
        new = _draw_edge_keys(cdf, perm, draw, rng)
        keys = _sort_unique_inplace(np.concatenate([keys, new]) if len(keys) else new)
        del new
        LOG.info("round %d: drew %d edges, %d unique after dedup (%.1fs)",
                 round_, draw, len(keys), time.perf_counter() - t0)
    else:
        raise RuntimeError("could not reach the requested edge count")
    if len(keys) > num_edges:
        drop = rng.choice(len(keys), len(keys) - num_edges, replace=False)
        keys = np.delete(keys, drop)  # stays sorted
    # keys are sorted by (dst, src): indptr from searchsorted, indices = key % N in place.
    indptr = np.searchsorted(keys, np.arange(num_nodes + 1, dtype=np.int64) * num_nodes)
    indptr = indptr.astype(np.int64, copy=False)
    np.remainder(keys, num_nodes, out=keys)
    return indptr, keys
