"""Gradient codes for fault-tolerant synchronous training (Tandon et al., "Gradient Coding",
ICML 2017).

With ``n`` slices and ``n`` workers, worker ``i`` sends ``coded_i = sum_j B[i, j] * g_j``
for the slices in the support of row ``i`` of the encoding matrix ``B``; from any ``n - s``
survivors the decoder finds weights ``a`` with ``a^T B = 1^T`` and recovers
``sum_j g_j`` exactly.

Codes: :class:`FractionalRepetitionCode` (``"frc"``, needs ``(s+1) | n``),
:class:`CyclicRepetitionCode` (``"cyclic"``, any ``0 <= s < n``) and :class:`UncodedScheme`
(``"uncoded"``, the wait-for-all baseline). All arithmetic is float64; nothing here depends
on torch.
"""
from __future__ import annotations

import logging
import numbers
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

log = logging.getLogger("graphplat.coding")

__all__ = ["GradientCode", "FractionalRepetitionCode", "CyclicRepetitionCode", "UncodedScheme",
           "make_code", "combine", "CODE_KINDS", "RESIDUAL_TOL", "COND_WARN"]

#: kinds accepted by :func:`make_code`.
CODE_KINDS: Tuple[str, ...] = ("frc", "cyclic", "uncoded")
#: a decoding is accepted only when ``max|a^T B - 1| <= RESIDUAL_TOL``.
RESIDUAL_TOL = 1e-9
#: condition numbers of the survivors' rows above this are logged as warnings.
COND_WARN = 1e8
_CACHE_LIMIT = 4096


def _check_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _check_ns(n, s) -> Tuple[int, int]:
    n = _check_int(n, "n (number of workers)")
    s = _check_int(s, "s (tolerated failures)")
    if n < 1:
        raise ValueError(f"n (number of workers) must be >= 1, got {n}")
    if s < 0:
        raise ValueError(f"s (tolerated failures) must be >= 0, got {s}")
    if s >= n:
        raise ValueError(f"s (tolerated failures) must be < n: with n={n} workers at most "
                         f"{n - 1} can fail, got s={s}")
    return n, s


def _output_dtype(arrays: Sequence[np.ndarray]) -> np.dtype:
    """float32 when every input is float16/float32, else float64."""
    if arrays and all(a.dtype in (np.float16, np.float32) for a in arrays):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def combine(weights: Mapping[int, float], vectors: Mapping[int, np.ndarray]) -> np.ndarray:
    """Weighted sum ``sum_k weights[k] * vectors[k]`` accumulated in float64.

    Takes a mapping key -> coefficient and a mapping key -> array (all arrays the same shape;
    every key of ``weights`` must be in ``vectors``, extra keys of ``vectors`` are ignored).
    Keys are visited in increasing order, so the result does not depend on mapping order.
    Returns a float64 array of the common shape. A weight of exactly 1.0 adds the vector
    unchanged (``1.0 * x == x``), so weights of 1 give a plain float64 sum.
    """
    keys = sorted(int(k) for k in weights)
    if not keys:
        raise ValueError("nothing to combine: no weights given")
    missing = [k for k in keys if k not in vectors]
    if missing:
        raise ValueError(f"missing vectors for {missing}")
    first = np.asarray(vectors[keys[0]])
    acc = np.zeros(first.shape, dtype=np.float64)
    for k in keys:
        v = np.asarray(vectors[k])
        if v.shape != first.shape:
            raise ValueError(f"vector {k} has shape {v.shape}, expected {first.shape} "
                             f"(like vector {keys[0]})")
        w = float(weights[k])
        if w == 1.0:
            acc += v
        elif w != 0.0:
            acc += w * v.astype(np.float64, copy=False)
    return acc


class GradientCode:
    """A gradient code given by its ``n x n`` encoding matrix ``B`` (see the module doc).

    Attributes:
        n: number of workers (= number of slices).
        s: number of failed/straggling workers the code tolerates (any ``n - s`` decode).
        B: read-only float64 ``n x n`` matrix; worker ``i`` sends ``sum_j B[i, j] * g_j``.
        kind: short name (``"frc"``, ``"cyclic"``, ``"uncoded"`` or ``"custom"``).

    The generic decoder takes the ``n - s`` lowest-numbered survivors (falling back to all
    survivors if those rows do not decode) and solves ``B_F^T a = 1`` by least squares in
    float64; it accepts the solution only when ``max|a^T B - 1| <= RESIDUAL_TOL``.
    Decodings are cached per survivor set.
    """

    kind = "custom"

    def __init__(self, B, s: int):
        """Take a square encoding matrix ``B`` (anything ``np.asarray`` accepts) and the
        number ``s`` of tolerated failures. Raises ValueError for a non-square or
        non-finite matrix or a bad ``s``."""
        B = np.array(B, dtype=np.float64)
        if B.ndim != 2 or B.shape[0] != B.shape[1] or B.shape[0] < 1:
            raise ValueError(f"B must be a non-empty square matrix, got shape {B.shape}")
        if not np.isfinite(B).all():
            raise ValueError("B must be finite")
        self.n, self.s = _check_ns(B.shape[0], s)
        B.setflags(write=False)
        self.B = B
        self._supports: Tuple[Tuple[int, ...], ...] = tuple(
            tuple(int(j) for j in np.flatnonzero(B[i])) for i in range(self.n))
        self._cache: Dict[frozenset, object] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={self.n}, s={self.s})"

    # ------------------------------------------------------------------ structure
    def slices_of(self, worker: int) -> List[int]:
        """The slices worker ``worker`` must compute (the support of row ``worker`` of B),
        increasing. Raises ValueError for a worker outside ``0..n-1``."""
        return list(self._supports[self._worker(worker)])

    def coefficients(self, worker: int) -> Dict[int, float]:
        """``{slice: B[worker, slice]}`` over the slices of ``worker``."""
        w = self._worker(worker)
        return {j: float(self.B[w, j]) for j in self._supports[w]}

    def workers_of(self, slice_id: int) -> List[int]:
        """The workers whose coded reply includes slice ``slice_id`` (increasing)."""
        j = _check_int(slice_id, "slice")
        if not 0 <= j < self.n:
            raise ValueError(f"slice {j} out of range 0..{self.n - 1}")
        return [i for i in range(self.n) if j in self._supports[i]]

    def _worker(self, worker) -> int:
        w = _check_int(worker, "worker id")
        if not 0 <= w < self.n:
            raise ValueError(f"unknown worker {w}: workers are 0..{self.n - 1}")
        return w

    def _survivors(self, survivors: Iterable[int]) -> Tuple[int, ...]:
        return tuple(sorted({self._worker(w) for w in survivors}))

    # ------------------------------------------------------------------ decoding
    def decoding_set(self, survivors: Iterable[int]) -> Tuple[int, ...]:
        """The workers (increasing) whose replies the decoder uses for this survivor set:
        a minimal decodable subset chosen deterministically from the set alone. Raises
        ValueError naming what is missing when the set cannot decode."""
        return self._decoding(self._survivors(survivors))[0]

    def decode_weights(self, survivors: Iterable[int]) -> np.ndarray:
        """Decoding weights for the given surviving workers.

        Takes an iterable of worker ids (duplicates ignored). Returns a float64 vector ``a``
        of length ``n``, zero outside the chosen decoding set (hence zero for every
        non-survivor), with ``a^T B = 1^T`` (to ``RESIDUAL_TOL``). Raises ValueError naming
        the missing workers/groups when the survivors cannot decode.
        """
        return self._decoding(self._survivors(survivors))[1].copy()

    def can_decode(self, survivors: Iterable[int]) -> bool:
        """True when the replies of ``survivors`` (worker ids) determine the full sum."""
        try:
            self._decoding(self._survivors(survivors))
        except ValueError:
            return False
        return True

    def _decoding(self, survivors: Tuple[int, ...]) -> Tuple[Tuple[int, ...], np.ndarray]:
        key = frozenset(survivors)
        hit = self._cache.get(key)
        if hit is None:
            try:
                hit = self._solve_set(survivors)
            except ValueError as e:
                hit = e
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = hit
        if isinstance(hit, ValueError):
            raise ValueError(str(hit))
        return hit

    def _missing_text(self, survivors: Sequence[int]) -> str:
        missing = sorted(set(range(self.n)) - set(survivors))
        return (f"have replies from workers {list(survivors)} of n={self.n}, missing workers "
                f"{missing}")

    def _solve_set(self, survivors: Tuple[int, ...]) -> Tuple[Tuple[int, ...], np.ndarray]:
        """Generic decoder: least squares on the lowest ``n - s`` survivors, else on all."""
        if not survivors:
            raise ValueError(f"cannot decode: no replies (need at least {self.n - self.s} of "
                             f"n={self.n} workers)")
        need = self.n - self.s
        candidates = []
        if len(survivors) >= need:
            candidates.append(survivors[:need])
        if len(survivors) != need:
            candidates.append(survivors)
        for subset in candidates:
            a = self._least_squares(subset)
            if a is not None:
                return subset, a
        if len(survivors) < need:
            raise ValueError(f"cannot decode: need replies from at least n-s={need} workers "
                             f"(tolerating s={self.s} failures), "
                             f"{self._missing_text(survivors)}")
        raise ValueError(f"cannot decode: the rows of workers {list(survivors)} do not span the "
                         f"all-ones vector (residual above {RESIDUAL_TOL:g}); "
                         f"{self._missing_text(survivors)}")

    def _least_squares(self, subset: Sequence[int]) -> Optional[np.ndarray]:
        rows = self.B[list(subset)]  # k x n
        sv = np.linalg.svd(rows, compute_uv=False)
        cond = float(sv[0] / sv[-1]) if sv[-1] > 0 else float("inf")
        x, *_ = np.linalg.lstsq(rows.T, np.ones(self.n), rcond=None)
        residual = float(np.max(np.abs(x @ rows - 1.0)))
        if cond > COND_WARN:
            log.warning("%s: decoding from workers %s is ill-conditioned (condition number "
                        "%.3g, residual %.3g)", self, list(subset), cond, residual)
        else:
            log.debug("%s: decoding from workers %s: condition number %.3g, residual %.3g",
                      self, list(subset), cond, residual)
        if not np.isfinite(residual) or residual > RESIDUAL_TOL:
            return None
        a = np.zeros(self.n)
        a[list(subset)] = x
        a.setflags(write=False)
        return a

    # ------------------------------------------------------------------ encode / decode
    def encode(self, worker: int, slice_grads: Mapping[int, np.ndarray]) -> np.ndarray:
        """The coded vector worker ``worker`` sends: ``sum_j B[worker, j] * slice_grads[j]``.

        Takes the worker id and a mapping slice id -> gradient array (any shape, all the
        same; every slice of :meth:`slices_of` must be present, other slices are ignored).
        Accumulates in float64 over the slices in increasing order. Returns float32 when
        every input is float16/float32, else float64 (float64 for float64 or integer
        inputs). Use float64 inputs with the cyclic code when the decode should be exact to
        float64 precision: its decoding weights are not 1, so float32 rounding of the coded
        vectors would be amplified by up to the condition number.
        """
        w = self._worker(worker)
        needed = self._supports[w]
        missing = [j for j in needed if j not in slice_grads]
        if missing:
            raise ValueError(f"worker {w} must compute slices {list(needed)}; gradients of "
                             f"slices {missing} are missing")
        arrays = {j: np.asarray(slice_grads[j]) for j in needed}
        out = combine({j: self.B[w, j] for j in needed}, arrays)
        return out.astype(_output_dtype(list(arrays.values())), copy=False)

    def decode(self, replies: Mapping[int, np.ndarray]) -> np.ndarray:
        """The sum of all ``n`` slice gradients from the coded replies received.

        Takes a mapping worker id -> coded vector (as produced by :meth:`encode`; all the
        same shape). Uses only :meth:`decoding_set` of the repliers (the choice depends on
        the set of repliers, never on arrival order) and returns
        ``sum_i a_i * replies[i]`` as a float64 array, accumulated in increasing worker
        order. Raises ValueError naming the missing workers (or FRC groups) when the
        replies cannot decode, or when shapes differ.
        """
        if not replies:
            raise ValueError(f"cannot decode: no replies (n={self.n}, s={self.s})")
        survivors = self._survivors(replies.keys())
        vectors = {int(k): np.asarray(v) for k, v in replies.items()}
        shapes = {k: v.shape for k, v in vectors.items()}
        if len(set(shapes.values())) > 1:
            raise ValueError(f"replies have different shapes: {shapes}")
        subset, a = self._decoding(survivors)
        return combine({i: a[i] for i in subset}, vectors)


class FractionalRepetitionCode(GradientCode):
    """Fractional repetition code (Tandon et al., Sec. 3.1): ``(s+1) | n``.

    Workers ``g(s+1) .. g(s+1)+s`` form group ``g`` and all compute slices
    ``g(s+1) .. g(s+1)+s``, sending their plain sum (``B`` is block diagonal with all-ones
    ``(s+1) x (s+1)`` blocks). Decoding needs one reply per group: the lowest-numbered
    surviving worker of every group gets weight 1, the others 0, so the decoded sum is the
    plain float64 sum of the per-group sums in group order (exact, no cancellation).
    """

    kind = "frc"

    def __init__(self, n: int, s: int):
        """``n`` workers, ``s`` tolerated failures; ValueError unless ``0 <= s < n`` and
        ``s + 1`` divides ``n``."""
        n, s = _check_ns(n, s)
        if n % (s + 1):
            raise ValueError(f"the fractional repetition code needs (s+1) to divide n: "
                             f"s+1={s + 1} does not divide n={n} (use the cyclic code for any "
                             f"n, s)")
        B = np.zeros((n, n))
        for g in range(n // (s + 1)):
            lo, hi = g * (s + 1), (g + 1) * (s + 1)
            B[lo:hi, lo:hi] = 1.0
        super().__init__(B, s)

    @property
    def num_groups(self) -> int:
        """Number of worker groups (``n / (s+1)``)."""
        return self.n // (self.s + 1)

    def group_of(self, worker: int) -> int:
        """The group of ``worker``."""
        return self._worker(worker) // (self.s + 1)

    def group_workers(self, group: int) -> List[int]:
        """The workers of group ``group`` (increasing)."""
        g = _check_int(group, "group")
        if not 0 <= g < self.num_groups:
            raise ValueError(f"group {g} out of range 0..{self.num_groups - 1}")
        return list(range(g * (self.s + 1), (g + 1) * (self.s + 1)))

    def _solve_set(self, survivors):
        alive = set(survivors)
        chosen, dead = [], []
        for g in range(self.num_groups):
            members = self.group_workers(g)
            first = next((w for w in members if w in alive), None)
            if first is None:
                dead.append(g)
            else:
                chosen.append(first)
        if dead:
            detail = "; ".join(f"group {g} (workers {self.group_workers(g)}, slices "
                               f"{self.group_workers(g)})" for g in dead)
            raise ValueError(f"cannot decode: no reply from any worker of {detail}; "
                             f"{self._missing_text(survivors)}")
        a = np.zeros(self.n)
        a[chosen] = 1.0
        a.setflags(write=False)
        return tuple(chosen), a


class UncodedScheme(FractionalRepetitionCode):
    """No coding (``B = I``, ``s = 0``): worker ``i`` computes slice ``i`` and the decoder
    needs every worker (the wait-for-all baseline); the decoded sum is the plain sum of all
    replies in worker order."""

    kind = "uncoded"

    def __init__(self, n: int):
        """``n`` workers (>= 1)."""
        super().__init__(n, 0)

    def __repr__(self) -> str:
        return f"UncodedScheme(n={self.n})"

    def _solve_set(self, survivors):
        missing = sorted(set(range(self.n)) - set(survivors))
        if missing:
            raise ValueError(f"cannot decode: the uncoded scheme needs every worker; "
                             f"{self._missing_text(survivors)}")
        a = np.ones(self.n)
        a.setflags(write=False)
        return tuple(range(self.n)), a


class CyclicRepetitionCode(GradientCode):
    """Cyclic repetition code (Tandon et al., Algorithm 2) for any ``0 <= s < n``.

    Row ``i`` of ``B`` is supported on slices ``i, i+1, ..., i+s (mod n)``. With a random
    ``s x n`` matrix ``H`` whose rows sum to zero (``H 1 = 0``), row ``i`` has ``B[i, i] = 1``
    and its other ``s`` coefficients solve ``H[:, support] b = 0``; every row lies in the
    null space of ``H`` (dimension ``n - s``, containing ``1``), and any ``n - s`` rows span
    it, so any ``n - s`` survivors decode. ``H`` is drawn from
    ``numpy.random.default_rng(seed)`` (redrawn from the same generator if a sub-system is
    ill-conditioned), so the same ``(n, s, seed)`` always gives the same ``B``.

    Decoding uses the ``n - s`` lowest-numbered survivors (all survivors if those fail),
    solved by least squares in float64 and checked: ``max|a^T B - 1| <= RESIDUAL_TOL``; the
    condition number is logged (warning above ``COND_WARN``).
    """

    kind = "cyclic"

    def __init__(self, n: int, s: int, seed: int = 0):
        """``n`` workers, ``s`` tolerated failures (``0 <= s < n``), ``seed`` of the random
        construction."""
        n, s = _check_ns(n, s)
        self.seed = _check_int(seed, "seed")
        rng = np.random.default_rng(self.seed)
        for _attempt in range(100):
            B = self._build(n, s, rng)
            if B is not None:
                break
        else:  # pragma: no cover - needs 100 unlucky Gaussian draws
            raise ValueError(f"could not build a well-conditioned cyclic code for n={n}, s={s}")
        super().__init__(B, s)

    @staticmethod
    def _build(n: int, s: int, rng: np.random.Generator) -> Optional[np.ndarray]:
        B = np.zeros((n, n))
        if s == 0:
            np.fill_diagonal(B, 1.0)
            return B
        H = rng.standard_normal((s, n))
        H[:, n - 1] = -H[:, : n - 1].sum(axis=1)
        for i in range(n):
            support = [(i + k) % n for k in range(s + 1)]
            A = H[:, support[1:]]
            if np.linalg.cond(A) > 1e6:
                return None
            B[i, support[0]] = 1.0
            B[i, support[1:]] = np.linalg.solve(A, -H[:, support[0]])
        if not np.isfinite(B).all():
            return None
        # every row must be fully supported (a zero coefficient would shrink the support)
        for i in range(n):
            if np.count_nonzero(B[i]) != s + 1:
                return None
        return B


def make_code(kind: str, n: int, s: int, *, seed: int = 0) -> GradientCode:
    """Build a gradient code by name.

    Takes ``kind`` (``"frc"``, ``"cyclic"`` or ``"uncoded"``), the number of workers ``n``
    (>= 1) and of tolerated failures ``s`` (``0 <= s < n``; ``(s+1) | n`` for ``"frc"``;
    ``s = 0`` for ``"uncoded"``), and the ``seed`` of the cyclic construction. Returns the
    :class:`GradientCode`. Raises ValueError with the reason for anything invalid.
    """
    if not isinstance(kind, str):
        raise ValueError(f"code kind must be a string, one of {', '.join(CODE_KINDS)}; got {kind!r}")
    k = kind.strip().lower()
    if k not in CODE_KINDS:
        raise ValueError(f"unknown gradient code {kind!r}; known kinds: {', '.join(CODE_KINDS)}")
    n, s = _check_ns(n, s)
    if k == "frc":
        return FractionalRepetitionCode(n, s)
    if k == "cyclic":
        return CyclicRepetitionCode(n, s, seed=seed)
    if s != 0:
        raise ValueError(f"the uncoded scheme tolerates no failures: s must be 0, got s={s}")
    return UncodedScheme(n)
