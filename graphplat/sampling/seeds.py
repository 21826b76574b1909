"""Deterministic RNG seeds derived from a tuple of integers.

Every random choice of a minibatch (neighbor sampling, negatives, shuffling, and in coded
training dropout) is keyed by a tuple like ``(seed, epoch, step, slice)``, never by the
worker, thread or prefetch order that happens to compute it.
"""
from __future__ import annotations

import numpy as np


def derive_seed(*key: int) -> int:
    """A 63-bit seed that is a pure function of the integers ``key`` (via numpy's
    SeedSequence hashing). Negative integers are rejected with ValueError."""
    if any(int(k) < 0 for k in key):
        raise ValueError(f"seed keys must be non-negative integers, got {key}")
    state = np.random.SeedSequence([int(k) for k in key]).generate_state(2, np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1])) & ((1 << 63) - 1)


def derive_rng(*key: int) -> np.random.Generator:
    """A numpy Generator seeded by :func:`derive_seed` of ``key``."""
    return np.random.default_rng(derive_seed(*key))
