"""Recycled arrays for per-batch feature rows and bulk answers.

A loader's batch gathers tens of megabytes of feature rows into a fresh array, and a bulk
answer (graphplat.rpc.bulk) arrives in a buffer of the same size. Freshly
mapped memory costs a page fault per 4 KiB on first touch, and glibc serves large
allocations of a background (prefetch) thread from fresh mappings every time, so a
prefetching loader paid about twice the CPU per batch of a synchronous one. The pool hands
out views of a few large buffers instead and reuses a buffer once no array refers to it.

Reuse is safe because numpy collapses the base of every view of a view to the buffer that
owns the memory: while any array (or tensor, or memoryview, which hold arrays) still reads
from a buffer, the buffer's reference count is above the pool's own reference.
"""
from __future__ import annotations

import sys
import threading
import weakref
from typing import List, Sequence

import numpy as np

from graphplat import _core

#: Arrays smaller than this come from numpy directly (malloc reuses small blocks well).
MIN_POOLED_BYTES = 1 << 20
_SLACK = 1.25  # a buffer is allocated this much larger than asked, so later batches fit


class BufferPool:
    """Hands out arrays over at most ``keep`` recycled buffers (thread-safe)."""

    def __init__(self, keep: int = 8):
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.keep = int(keep)
        self._bufs: List[np.ndarray] = []
        self._lock = threading.Lock()
        self.reused = 0
        self.allocated = 0

    def _unused(self, i: int) -> bool:
        # References: the pool's list and this call's argument.
        return sys.getrefcount(self._bufs[i]) <= 2

    def empty(self, shape: Sequence[int], dtype) -> np.ndarray:
        """An uninitialized C-contiguous array of ``shape`` and ``dtype``."""
        dtype = np.dtype(dtype)
        shape = tuple(int(s) for s in shape)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes < MIN_POOLED_BYTES:
            return np.empty(shape, dtype)
        with self._lock:
            best = -1
            for i in range(len(self._bufs)):
                if len(self._bufs[i]) >= nbytes and self._unused(i) and (
                        best < 0 or len(self._bufs[i]) < len(self._bufs[best])):
                    best = i
            if best >= 0:
                self.reused += 1
                return self._bufs[best][:nbytes].view(dtype).reshape(shape)
            buf = np.empty(int(nbytes * _SLACK), dtype=np.uint8)
            self.allocated += 1
            if len(self._bufs) >= self.keep:  # replace a free buffer too small, if any
                small = [i for i in range(len(self._bufs)) if self._unused(i)]
                if not small:
                    return buf[:nbytes].view(dtype).reshape(shape)  # not pooled
                self._bufs.pop(min(small, key=lambda i: len(self._bufs[i])))
            self._bufs.append(buf)
            return buf[:nbytes].view(dtype).reshape(shape)


_POOLS: "weakref.WeakKeyDictionary[object, BufferPool]" = weakref.WeakKeyDictionary()
_POOLS_LOCK = threading.Lock()


def pool_of(owner) -> BufferPool:
    """The one BufferPool of ``owner`` (a graph), shared by every loader over it while it
    lives: a loader made for each epoch, or several loaders in turn, start with the buffers
    the last one left instead of fresh memory (at 60 M edges a batch's rows are 145 MB, whose
    first touch costs tens of ms of page faults and zeroing; a prefetching loader holds
    several batches, so a short-lived one paid that for half its batches). The buffers go
    with the graph. An owner that cannot be weakly referenced gets a pool of its own."""
    try:
        with _POOLS_LOCK:
            pool = _POOLS.get(owner)
            if pool is None:
                pool = _POOLS[owner] = BufferPool()
            return pool
    except TypeError:  # not weakly referenceable (or unhashable)
        return BufferPool()


def put_rows(src: np.ndarray, rows: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Row ``i`` of ``src`` into row ``rows[i]`` of ``out`` (converted to ``out``'s dtype
    first when it differs): rows answered elsewhere landing in a batch, copied in the core
    in parallel without the GIL. IndexError for a row outside ``out``. Returns ``out``."""
    _core.scatter_rows(np.ascontiguousarray(src, dtype=out.dtype), rows, out)
    return out
