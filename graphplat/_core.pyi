"""Type stubs for ``graphplat._core``, the C++ core (cpp/bindings/).

Conventions shared by every function:

* Node and edge arrays are 1-D int64 numpy arrays; weights are float32. Inputs of another
  integer dtype are converted when the conversion is exact; a float array for ids, a 2-D
  array or anything else raises ``ValueError`` naming the argument.
* Out-of-range node ids raise ``IndexError`` naming the argument and the first bad value.
* Ids may also be Python lists or empty arrays of any numeric dtype; bool arrays are
  rejected. ``seed`` and ``hop`` are unsigned 64-bit (a negative value raises TypeError).
  ``num_threads`` must be >= 0; ``k`` and ``max_trials`` of negative sampling lie in
  [1, 2**20]. ``num_cols`` defaults to ``num_rows`` (a square matrix).
* Every heavy call releases the GIL and runs on ``num_threads`` threads (0 = the value of
  :func:`get_num_threads`). Results never depend on the thread count: all randomness comes
  from a counter-based RNG keyed by ``(seed, hop, position)``, where ``position`` is the
  index of the seed in the batch (or the value given in ``positions``).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

MAX_FANOUT: int  # largest fanout accepted by the samplers
STRATEGIES: Tuple[str, ...]  # ("uniform", "weighted", "topk", "full")
STRATEGY_ALIASES: Dict[str, str]  # graph-learn's names: {"random": "uniform", "edge_weight": "weighted"}

def get_num_threads() -> int:
    """Default thread count of the core (initially the number of cores)."""

def set_num_threads(n: int) -> None:
    """Set the default thread count; ``n`` must be >= 1."""

class CSR:
    """A compressed sparse row matrix: row ``r``'s neighbors are
    ``indices[indptr[r]:indptr[r+1]]``. Used as CSR (rows = sources, out-neighbors) or CSC
    (rows = destinations, in-neighbors): the core does not care which.

    Validated on construction: indptr starts at 0, is monotone and ends at len(indices);
    indices lie in [0, num_cols); weights (float32, finite, >= 0) and eids (int64) match
    len(indices). Arrays that are already C-contiguous, of the right dtype and read-only are
    used without a copy (the CSR keeps a reference, so they must stay read-only: the CSR is
    validated once); others are copied, as are read-only views of memory that can still be
    written through its owner (a bytearray, a writable mmap).
    """

    def __init__(
        self,
        indptr: np.ndarray,
        indices: np.ndarray,
        *,
        num_cols: Optional[int] = None,
        weights: Optional[np.ndarray] = None,
        eids: Optional[np.ndarray] = None,
    ) -> None: ...
    @property
    def num_rows(self) -> int: ...
    @property
    def num_cols(self) -> int: ...
    @property
    def nnz(self) -> int: ...
    @property
    def indptr(self) -> np.ndarray: ...  # read-only view
    @property
    def indices(self) -> np.ndarray: ...  # read-only view
    @property
    def weights(self) -> Optional[np.ndarray]: ...
    @property
    def eids(self) -> Optional[np.ndarray]: ...  # None means "edge id = position in indices"
    @property
    def rows_sorted(self) -> bool: ...  # every row's indices ascending
    def degrees(self, rows: Optional[np.ndarray] = None) -> np.ndarray:
        """int64 row degrees, for all rows or for ``rows``."""
    def col_degrees(self) -> np.ndarray:
        """int64 number of entries per column (in-degree of a CSR), cached."""
    def transpose(self, num_threads: int = 0) -> "CSR":
        """The transposed matrix (CSR <-> CSC), rows sorted, carrying weights and edge ids
        (the original position when this CSR has no eids)."""
    def has_edges(self, rows: np.ndarray, cols: np.ndarray, num_threads: int = 0) -> np.ndarray:
        """bool array: whether (rows[i], cols[i]) is an entry."""

def sample_neighbors(
    csr: CSR,
    seeds: np.ndarray,
    fanout: int,
    *,
    strategy: str = "uniform",
    replace: bool = False,
    seed: int = 0,
    hop: int = 0,
    positions: Optional[np.ndarray] = None,
    delta: Optional[CSR] = None,
    num_threads: int = 0,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample up to ``fanout`` neighbors of each seed (a row of ``csr``).

    strategy:
      * "uniform": uniform; without replacement gives min(fanout, degree) distinct edges,
        with replacement ``fanout`` edges (0 for a node without neighbors).
      * "weighted": probability proportional to the edge weight (requires weights); edges of
        weight 0 are never picked; without replacement gives min(fanout, #positive) edges.
      * "topk": the ``fanout`` heaviest edges (ties: lower position first).
      * "full": every neighbor; ``fanout`` is ignored (pass -1).
    fanout: 1..MAX_FANOUT, or -1 meaning the full neighborhood whatever the strategy
      (zero-weight edges included).
    positions: optional int64 RNG position of each seed (default arange(len(seeds))); a
      client that splits a batch across partitions passes the original positions so the
      result equals the unsplit call.
    delta: optional online additions with the same rows, explicit eids and a column space
      that extends ``csr``'s: every row is sampled as the union of both (graph servers keep
      writes there until compaction).

    Returns ``(counts, neighbors, eids)``: int64 per-seed counts, and the flat neighbor
    column indices and edge ids, grouped by seed in seed order.
    """

class SampledHop:
    """One hop of :func:`sample_multihop`, ready for ``dgl.create_block``.

    ``nodes``: int64 unique nodes of the hop's source side; the first ``num_dst`` are the
    hop's seeds in their order, then newly reached nodes in order of first appearance.
    ``src``/``dst``: int64 local indices (into ``nodes``) of each sampled edge, message
    direction neighbor -> seed; ``eids``: the edge ids.
    """

    nodes: np.ndarray
    num_dst: int
    src: np.ndarray
    dst: np.ndarray
    eids: np.ndarray

def sample_multihop(
    csr: CSR,
    seeds: np.ndarray,
    fanouts: Sequence[int],
    *,
    strategy: str = "uniform",
    replace: bool = False,
    seed: int = 0,
    num_threads: int = 0,
) -> list:
    """Multi-hop neighbor sampling with unique-and-relabel, all in C++.

    ``seeds`` must be unique rows of ``csr`` and ``csr`` square (num_rows == num_cols).
    Hop ``h`` samples ``fanouts[h]`` neighbors of every node of hop ``h-1``'s ``nodes`` (the
    seeds for hop 0), with RNG key ``(seed, h, position in that list)``.
    Returns ``list[SampledHop]``, hop 0 (nearest the seeds) first.
    """

def unique_and_relabel(
    seeds: np.ndarray,
    neighbors: np.ndarray,
    *,
    num_nodes: Optional[int] = None,
    num_threads: int = 0,
) -> Tuple[np.ndarray, np.ndarray]:
    """Unique ``seeds`` (must be distinct) followed by the new values of ``neighbors`` in order
    of first appearance, and the local index of every entry of ``neighbors`` in that list.
    Ids are arbitrary int64 (a hash table is used) unless ``num_nodes`` is given, in which
    case ids must lie in [0, num_nodes) and a dense array is used (faster).
    Returns ``(unique_nodes, local_neighbors)``.
    """

class IdMap:
    """Arbitrary int64 ids -> dense indices 0..n-1 (the position in ``ids``)."""

    def __init__(self, ids: np.ndarray, num_threads: int = 0) -> None:
        """Bulk build; raises ValueError naming the duplicate ids (and their count)."""
    def __len__(self) -> int: ...
    def lookup(self, ids: np.ndarray, *, missing: str = "raise", num_threads: int = 0) -> np.ndarray:
        """int64 indices. missing="raise": KeyError-like ``IndexError`` naming the first
        missing ids and their count; missing="ignore": -1 for missing ids."""
    def contains(self, ids: np.ndarray, num_threads: int = 0) -> np.ndarray:
        """bool array."""
    def add(self, ids: np.ndarray) -> np.ndarray:
        """Append new distinct ids (ValueError if any already present or repeated);
        returns their indices."""
    def ids(self) -> np.ndarray:
        """The ids in index order (a copy)."""
    @property
    def is_identity(self) -> bool:
        """True when every id equals its index (0..n-1): lookups are a range check."""
    @property
    def is_dense(self) -> bool:
        """True when every id is a small non-negative int (below 4 x len + 1024) and not
        the identity: lookups read a direct id -> index table, no hashing."""

class AliasTable:
    """Walker alias table over non-negative finite weights (float64), at least one > 0."""

    def __init__(self, weights: np.ndarray) -> None: ...
    def __len__(self) -> int: ...
    def sample(self, n: int, *, seed: int = 0, num_threads: int = 0) -> np.ndarray:
        """n int64 draws, P(i) = w_i / sum(w)."""

def negative_sample(
    csr: CSR,
    src: np.ndarray,
    k: int,
    *,
    strategy: str = "uniform",
    exclude_existing: bool = True,
    max_trials: int = 32,
    seed: int = 0,
    num_threads: int = 0,
) -> Tuple[np.ndarray, np.ndarray]:
    """``k`` negative destinations per source row.

    strategy "uniform": columns uniform in [0, num_cols); "degree": P(col) proportional to
    col_degree ** 0.75 (alias table cached on the CSR). With ``exclude_existing`` a candidate
    that is an existing edge (src, col) is redrawn up to ``max_trials`` times and dropped if
    every trial hits an edge. Returns ``(neg_src, neg_dst)`` int64 (src repeated per draw).
    """

def random_walk(
    csr: CSR,
    starts: np.ndarray,
    length: int,
    *,
    p: float = 1.0,
    q: float = 1.0,
    seed: int = 0,
    num_threads: int = 0,
) -> np.ndarray:
    """Walks of ``length`` steps from each start over a square ``csr``: uniform when p == q
    == 1, otherwise node2vec second-order walks with return parameter ``p`` and in-out
    parameter ``q`` (both in [1e-6, 1e6]). Returns int64 (len(starts), length + 1); a walk that reaches
    a node without neighbors is padded with -1."""

def metapath_walk(
    csrs: Sequence[CSR],
    starts: np.ndarray,
    metapath: Sequence[int],
    *,
    seed: int = 0,
    num_threads: int = 0,
) -> np.ndarray:
    """Walk step i follows ``csrs[metapath[i]]`` (typed adjacency); consecutive relations must
    chain (num_cols of one == num_rows of the next). Returns int64 (len(starts),
    len(metapath) + 1), -1 padded after a dead end."""

class Relabeler:
    """:func:`unique_and_relabel` with ``num_nodes`` fixed, keeping its dense markers between
    calls (thread-safe; each concurrent call uses its own marker array)."""

    def __init__(self, num_nodes: int) -> None: ...
    @property
    def num_nodes(self) -> int: ...
    def relabel(self, seeds: np.ndarray, neighbors: np.ndarray, *, num_threads: int = 0) -> Tuple[np.ndarray, np.ndarray]:
        """``(unique_nodes, local_neighbors)``; ids outside [0, num_nodes) raise ValueError,
        duplicate seeds ValueError."""

def take_rows(source: np.ndarray, rows: np.ndarray, *, out: Optional[np.ndarray] = None,
              out_rows: Optional[np.ndarray] = None, num_threads: int = 0) -> np.ndarray:
    """``source[rows]`` for a C-contiguous ``source`` of any dtype and shape, copied in
    parallel without the GIL, into a new array or into ``out`` (returned; same dtype and row
    shape, C-contiguous, writable, not overlapping ``source``): ``out`` has ``len(rows)``
    rows, or with ``out_rows`` row ``i`` goes to ``out[out_rows[i]]`` (one copy where a
    gather and a scatter would make two). Rows outside [0, len(source)) or ``out_rows``
    outside [0, len(out)) raise IndexError before anything is written; dtypes holding Python
    objects raise ValueError (rows are copied as raw bytes)."""

def scatter_rows(source: np.ndarray, rows: np.ndarray, out: np.ndarray, *,
                 num_threads: int = 0) -> np.ndarray:
    """``out[rows] = source`` for C-contiguous arrays of the same dtype and row shape, copied
    in parallel without the GIL; returns ``out``. ``len(rows) == len(source)``; rows outside
    [0, len(out)) raise IndexError before anything is written. With repeated rows, which
    source row lands there is unspecified. ``out`` must be writeable and not overlap source;
    dtypes holding Python objects raise ValueError."""

def encode_half(source: np.ndarray, format: str, *, rows: Optional[np.ndarray] = None,
                out: Optional[np.ndarray] = None, out_rows: Optional[np.ndarray] = None,
                num_threads: int = 0) -> np.ndarray:
    """C-contiguous float32 ``source`` (its rows ``rows`` when given, like
    :func:`take_rows`) rounded to ``format`` ("float16": numpy float16, bit-identical to
    ``astype(np.float16)``; "bfloat16": its uint16 bit patterns, bit-identical to torch's
    ``to(torch.bfloat16)``, every NaN 0x7FC0), in parallel without the GIL, into a new
    array or into ``out`` (returned; the carrier dtype, source's row shape; with
    ``out_rows``, row ``i`` goes to ``out[out_rows[i]]``). Rows out of range raise
    IndexError before anything is written; a wrong dtype, shape or format ValueError."""

def decode_half(source: np.ndarray, format: str, *, out: Optional[np.ndarray] = None,
                num_threads: int = 0) -> np.ndarray:
    """float32 values of ``source`` (numpy float16 for "float16", uint16 bit patterns for
    "bfloat16"; C-contiguous), exact, in parallel without the GIL, into a new array or
    ``out`` (C-contiguous float32 of source's shape; returned)."""

def bytes_buffer(size: int, *, zero: bool = True) -> Tuple[bytes, np.ndarray]:
    """A new ``bytes`` object of ``size`` bytes and a writable uint8 array over its memory,
    for building an answer in place (gRPC sends ``bytes``; building one from arrays copies
    every byte once more). Fill the array before the bytes object is shared or hashed; with
    ``zero=False`` its initial content is undefined and the caller must write every byte."""

def recv_rows(fd: int, out: np.ndarray, rows: np.ndarray, *, timeout: Optional[float] = None) -> int:
    """Reads ``len(rows)`` rows of ``out``'s row size (``out.nbytes // len(out)`` bytes) from
    the socket ``fd`` (blocking or not) straight into ``out[rows]`` (C-contiguous, writable,
    any plain dtype), GIL-free, with one ``recvmsg`` per up to 1024 runs of adjacent rows.
    Returns the bytes read. Rows out of ``[0, len(out))`` raise IndexError before anything is
    read; TimeoutError after ``timeout`` seconds, ConnectionError when the peer closes first,
    OSError on a socket error (the stream is then out of step: close the socket)."""

def hash_partitions(ids: np.ndarray, num_partitions: int, *, num_threads: int = 0) -> np.ndarray:
    """int64 partition of every id under PartitionBook's hash: splitmix64's finalizer of the
    id as uint64, mod ``num_partitions`` (ValueError outside ``[1, 2^20]``)."""

def split_by_partition(ids: np.ndarray, num_partitions: int, *, parts: Optional[np.ndarray] = None,
                       num_threads: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """``(order, bounds)``: the positions ``0..len(ids)-1`` grouped by owning partition,
    ascending within each, so ``order[bounds[p]:bounds[p + 1]]`` are partition ``p``'s.
    The owner of position ``i`` is ``parts[i]`` when given (ValueError for one outside
    ``[0, num_partitions)``), else PartitionBook's hash of ``ids[i]`` (splitmix64 mod
    ``num_partitions``). A stable counting sort; the result does not depend on threads."""

def merge_samples(num_seeds: int, parts: List[Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], *,
                  num_threads: int = 0) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(counts, neighbors, eids)`` of a batch of ``num_seeds`` seeds, in batch order, from
    per-partition answers ``(positions, counts, neighbors, eids)`` (the batch positions of
    the part's seeds, their neighbor counts, and their neighbors and edge ids seed by seed).
    Every position must be answered by exactly one part and each part's counts must add up
    to its neighbors: ValueError (IndexError for a position outside the batch) otherwise,
    before anything is written."""
