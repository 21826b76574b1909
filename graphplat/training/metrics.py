"""Evaluation metrics: numpy (or anything ``np.asarray`` takes, e.g. CPU tensors) in, float out.

No scikit-learn needed; where scikit-learn has the same metric the definitions match it
(``accuracy_score``, ``f1_score(average="macro" / "micro")``, ``roc_auc_score``,
``average_precision_score``).

Classification: :func:`accuracy`, :func:`macro_f1`, :func:`micro_f1` (single-label
multi-class; predictions as labels ``(N,)`` or scores ``(N, C)``, argmax taken).
Binary ranking: :func:`roc_auc`, :func:`average_precision` (= :func:`pr_auc`).
Regression: :func:`rmse`.
Top-K recommendation: :func:`recall_at_k`, :func:`ndcg_at_k` (from a score matrix, with an
exclude-seen mask), :func:`recall_at_k_ranked`, :func:`ndcg_at_k_ranked` (from ranked item
lists, e.g. ANN retrieval results), :func:`topk_items`.

Every function raises ValueError on empty input, mismatched shapes, NaNs, or inputs for which
the metric is undefined (one class for AUC, no positive for AP, K < 1, no user with a relevant
item).
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

__all__ = ["accuracy", "macro_f1", "micro_f1", "roc_auc", "average_precision", "pr_auc", "rmse",
           "topk_items", "recall_at_k", "ndcg_at_k", "recall_at_k_ranked", "ndcg_at_k_ranked"]


# ----------------------------------------------------------------------------- input checks


def _to_numpy(a, name: str) -> np.ndarray:
    if hasattr(a, "detach"):  # torch tensor
        a = a.detach().cpu().numpy()
    try:
        return np.asarray(a)
    except Exception as e:  # pragma: no cover - exotic inputs
        raise ValueError(f"{name} cannot be converted to an array: {e}") from None


def _vector(a, name: str) -> np.ndarray:
    a = _to_numpy(a, name)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name} is empty")
    if a.dtype.kind in "fc" and np.isnan(a).any():
        raise ValueError(f"{name} contains NaN")
    return a


def _same_len(a: np.ndarray, b: np.ndarray, na: str, nb: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{na} has {a.shape[0]} entries but {nb} has {b.shape[0]}")


def _labels(y, name: str, scores_ok: bool) -> np.ndarray:
    """Integer class labels; a 2-D score matrix becomes its row-wise argmax (if scores_ok)."""
    a = _to_numpy(y, name)
    if a.ndim == 2 and scores_ok:
        if a.shape[0] == 0 or a.shape[1] == 0:
            raise ValueError(f"{name} is empty (shape {a.shape})")
        if a.dtype.kind in "fc" and np.isnan(a).any():
            raise ValueError(f"{name} contains NaN")
        return a.argmax(axis=1)
    a = _vector(a, name)
    if a.dtype.kind == "b":
        return a.astype(np.int64)
    if a.dtype.kind == "f":
        if not np.all(a == np.round(a)):
            raise ValueError(f"{name} must hold integer class labels (or a 2-D score matrix)")
        return a.astype(np.int64)
    if a.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer class labels, got dtype {a.dtype}")
    return a


def _binary(y, name: str) -> np.ndarray:
    a = _vector(y, name)
    if a.dtype.kind == "b":
        return a
    if a.dtype.kind not in "iuf" or not np.all((a == 0) | (a == 1)):
        raise ValueError(f"{name} must be binary (0/1 or bool); got values "
                         f"{np.unique(a)[:10].tolist()}")
    return a == 1


def _scores(y, name: str) -> np.ndarray:
    a = _vector(y, name)
    if a.dtype.kind not in "iufb":
        raise ValueError(f"{name} must be numeric, got dtype {a.dtype}")
    return a.astype(np.float64)


# ----------------------------------------------------------------------------- classification


def accuracy(y_true, y_pred) -> float:
    """Fraction of correct predictions.

    Args:
        y_true: ``(N,)`` integer labels.
        y_pred: ``(N,)`` predicted labels, or ``(N, C)`` scores / logits (argmax is taken).

    Returns the accuracy in [0, 1].
    """
    t, p = _labels(y_true, "y_true", False), _labels(y_pred, "y_pred", True)
    _same_len(t, p, "y_true", "y_pred")
    return float(np.mean(t == p))


def _per_class_counts(y_true, y_pred, labels) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    t, p = _labels(y_true, "y_true", False), _labels(y_pred, "y_pred", True)
    _same_len(t, p, "y_true", "y_pred")
    if labels is None:
        classes = np.union1d(t, p)
    else:
        classes = _to_numpy(labels, "labels").reshape(-1)
        if classes.size == 0:
            raise ValueError("labels is empty")
        if np.unique(classes).size != classes.size:
            raise ValueError("labels has duplicates")
    tp = np.array([np.sum((t == c) & (p == c)) for c in classes], dtype=np.float64)
    fp = np.array([np.sum((t != c) & (p == c)) for c in classes], dtype=np.float64)
    fn = np.array([np.sum((t == c) & (p != c)) for c in classes], dtype=np.float64)
    return tp, fp, fn


def macro_f1(y_true, y_pred, labels: Optional[Sequence[int]] = None) -> float:
    """Unweighted mean over classes of ``F1_c = 2 TP_c / (2 TP_c + FP_c + FN_c)``.

    Same as scikit-learn's ``f1_score(average="macro")`` with its default ``zero_division``: a
    class with no true and no predicted samples (possible only via ``labels``), or whose
    precision or recall is undefined with ``TP = 0``, scores 0. E.g. a class present in
    ``y_true`` but never predicted has F1 = 0 and still counts in the mean.

    Args:
        y_true: ``(N,)`` integer labels.
        y_pred: ``(N,)`` predicted labels or ``(N, C)`` scores (argmax is taken).
        labels: classes to average over (default: every class in ``y_true`` or ``y_pred``).

    Returns the macro-F1 in [0, 1].
    """
    tp, fp, fn = _per_class_counts(y_true, y_pred, labels)
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(f1.mean())


def micro_f1(y_true, y_pred, labels: Optional[Sequence[int]] = None) -> float:
    """F1 of the pooled counts, ``2 sum TP / (2 sum TP + sum FP + sum FN)`` over the classes.

    For single-label multi-class data with all classes included this equals the accuracy
    (scikit-learn's ``f1_score(average="micro")``); ``labels`` restricts the classes counted.

    Args:
        y_true: ``(N,)`` integer labels.
        y_pred: ``(N,)`` predicted labels or ``(N, C)`` scores (argmax is taken).
        labels: classes to pool (default: every class in ``y_true`` or ``y_pred``).

    Returns the micro-F1 in [0, 1] (0 if the selected classes have no samples at all).
    """
    tp, fp, fn = _per_class_counts(y_true, y_pred, labels)
    denom = 2 * tp.sum() + fp.sum() + fn.sum()
    return float(2 * tp.sum() / denom) if denom > 0 else 0.0


# ----------------------------------------------------------------------------- binary ranking


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks of ``x`` ascending, tied values sharing the mean of their ranks."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    ends = np.r_[starts[1:], xs.size]  # exclusive
    mean_rank = (starts + 1 + ends) / 2.0  # mean of ranks starts+1 .. ends
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def roc_auc(y_true, y_score) -> float:
    """Area under the ROC curve of binary labels, by ranks.

    ``AUC = (sum of the positives' ranks - P (P + 1) / 2) / (P N)`` with tied scores given the
    average of their ranks: exactly the Mann-Whitney U statistic divided by ``P N``, i.e. the
    probability that a random positive scores above a random negative, ties counting 1/2
    (scikit-learn's ``roc_auc_score``).

    Args:
        y_true: ``(N,)`` binary labels (0/1 or bool), 1 = positive.
        y_score: ``(N,)`` scores, higher = more positive.

    Returns the AUC in [0, 1]; raises ValueError if ``y_true`` has only one class.
    """
    t = _binary(y_true, "y_true")
    s = _scores(y_score, "y_score")
    _same_len(t, s, "y_true", "y_score")
    n_pos = int(t.sum())
    n_neg = t.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"ROC-AUC is undefined when y_true has only one class "
                         f"({n_pos} positives, {n_neg} negatives)")
    ranks = _average_ranks(s)
    u = ranks[t].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def average_precision(y_true, y_score) -> float:
    """Average precision, the step-wise area under the precision-recall curve.

    ``AP = sum_n (R_n - R_{n-1}) P_n`` over the distinct score values ``t_1 > t_2 > ...``
    taken as thresholds (predict positive iff score >= t_n), where ``P_n`` / ``R_n`` are the
    precision / recall at ``t_n`` and ``R_0 = 0``. Tied scores enter together, as one
    threshold. This is scikit-learn's ``average_precision_score`` (no interpolation).

    Args:
        y_true: ``(N,)`` binary labels (0/1 or bool), 1 = positive.
        y_score: ``(N,)`` scores, higher = more positive.

    Returns AP in [0, 1]; raises ValueError if there is no positive (recall undefined).
    """
    t = _binary(y_true, "y_true")
    s = _scores(y_score, "y_score")
    _same_len(t, s, "y_true", "y_score")
    n_pos = int(t.sum())
    if n_pos == 0:
        raise ValueError("average precision is undefined when y_true has no positive")
    order = np.argsort(-s, kind="mergesort")
    ss, ts = s[order], t[order]
    last_of_group = np.flatnonzero(np.r_[ss[1:] != ss[:-1], True])  # end index of each tie group
    tps = np.cumsum(ts)[last_of_group].astype(np.float64)
    predicted = (last_of_group + 1).astype(np.float64)
    precision = tps / predicted
    recall = tps / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


#: Alias of :func:`average_precision` (PR-AUC as scikit-learn's average precision).
pr_auc = average_precision


# ----------------------------------------------------------------------------- regression


def rmse(y_true, y_pred) -> float:
    """Root mean squared error ``sqrt(mean((y_true - y_pred)^2))`` of two ``(N,)`` arrays."""
    t = _scores(y_true, "y_true")
    p = _scores(y_pred, "y_pred")
    _same_len(t, p, "y_true", "y_pred")
    return float(np.sqrt(np.mean((t - p) ** 2)))


# ----------------------------------------------------------------------------- top-K recommendation


def _check_k(k) -> int:
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")
    return int(k)


def _score_matrix(scores) -> np.ndarray:
    s = _to_numpy(scores, "scores")
    if s.ndim != 2:
        raise ValueError(f"scores must be a (users, items) matrix, got shape {s.shape}")
    if s.shape[0] == 0 or s.shape[1] == 0:
        raise ValueError(f"scores is empty (shape {s.shape})")
    if s.dtype.kind not in "iufb":
        raise ValueError(f"scores must be numeric, got dtype {s.dtype}")
    s = s.astype(np.float64, copy=False)
    if np.isnan(s).any():
        raise ValueError("scores contains NaN")
    return s


def _dense_bool(m, name: str, shape: Optional[Tuple[int, int]]) -> Optional[np.ndarray]:
    """A (users, items) bool matrix from a dense array, a scipy sparse matrix or
    ``(indptr, indices)``; None stays None."""
    if m is None:
        return None
    if isinstance(m, tuple):
        indptr, indices = _csr_parts(m, name, None if shape is None else shape[0])
        n_items = shape[1] if shape is not None else (int(indices.max()) + 1 if indices.size else 0)
        if indices.size and indices.max() >= n_items:
            raise ValueError(f"{name} has item {int(indices.max())} but there are {n_items} items")
        out = np.zeros((len(indptr) - 1, n_items), dtype=bool)
        rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        out[rows, indices] = True
        return out
    if hasattr(m, "tocsr") and hasattr(m, "nnz"):  # scipy.sparse
        m = m.tocsr()
        dense = (m != 0).toarray()
    else:
        dense = _to_numpy(m, name)
        if dense.ndim != 2:
            raise ValueError(f"{name} must be a (users, items) matrix, got shape {dense.shape}")
        if dense.dtype.kind in "fc" and np.isnan(dense).any():
            raise ValueError(f"{name} contains NaN")
        dense = dense != 0
    if shape is not None and dense.shape != shape:
        raise ValueError(f"{name} has shape {dense.shape} but scores has shape {shape}")
    return dense


def _csr_parts(rel: tuple, name: str, n_users: Optional[int]) -> Tuple[np.ndarray, np.ndarray]:
    if len(rel) != 2:
        raise ValueError(f"{name} as a tuple must be (indptr, indices)")
    indptr = _to_numpy(rel[0], f"{name} indptr").reshape(-1)
    indices = _to_numpy(rel[1], f"{name} indices").reshape(-1)
    if indptr.dtype.kind not in "iu" or (indices.size and indices.dtype.kind not in "iu"):
        raise ValueError(f"{name} indptr and indices must be integer arrays")
    indptr, indices = indptr.astype(np.int64), indices.astype(np.int64)
    if indptr.size == 0 or indptr[0] != 0 or indptr[-1] != indices.size or np.any(np.diff(indptr) < 0):
        raise ValueError(f"{name} indptr must start at 0, be non-decreasing and end at "
                         f"len(indices) = {indices.size}")
    if n_users is not None and indptr.size - 1 != n_users:
        raise ValueError(f"{name} has {indptr.size - 1} users but there are {n_users}")
    if indices.size and indices.min() < 0:
        raise ValueError(f"{name} has negative item ids")
    return indptr, indices


def topk_items(scores, k: int, exclude=None) -> np.ndarray:
    """Each user's ``k`` highest-scoring items.

    Args:
        scores: ``(U, I)`` score matrix, higher = better.
        k: list length (>= 1; larger than ``I`` is allowed).
        exclude: optional ``(U, I)`` mask (dense bool / 0-1 array, scipy sparse matrix, or
            ``(indptr, indices)``) of items never to recommend (e.g. seen in training).

    Returns ``(U, min(k, I))`` int64 item ids, best first; ties are broken by the lower item
    id; positions beyond a user's non-excluded items are ``-1``.
    """
    k = _check_k(k)
    s = _score_matrix(scores)
    ex = _dense_bool(exclude, "exclude", s.shape)
    if ex is None:
        ex = np.zeros(s.shape, dtype=bool)
    order = np.lexsort((-s, ex), axis=1)[:, :min(k, s.shape[1])]  # stable: lower id wins ties
    top = order.astype(np.int64)
    top[np.take_along_axis(ex, order, axis=1)] = -1
    return top


def _hits(ranked, relevant, k: int, n_items: Optional[int]) -> Tuple[np.ndarray, np.ndarray]:
    """``(U, k')`` hit matrix of ranked lists against relevant sets and ``(U,)`` relevant counts."""
    r = _to_numpy(ranked, "ranked")
    if r.ndim != 2:
        raise ValueError(f"ranked must be a (users, list length) matrix, got shape {r.shape}")
    if r.shape[0] == 0 or r.shape[1] == 0:
        raise ValueError(f"ranked is empty (shape {r.shape})")
    if r.dtype.kind not in "iu":
        raise ValueError(f"ranked must hold integer item ids, got dtype {r.dtype}")
    r = r[:, :k].astype(np.int64)
    if np.any(r < -1):
        raise ValueError("ranked item ids must be >= 0 (or -1 for an empty slot)")
    srt = np.sort(r, axis=1)
    if np.any((srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)):
        raise ValueError("a ranked list repeats an item")
    n_users = r.shape[0]
    if isinstance(relevant, tuple):
        indptr, indices = _csr_parts(relevant, "relevant", n_users)
        rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(indptr))
        width = max(int(indices.max()) + 1 if indices.size else 0, int(r.max()) + 1, 1)
    else:
        dense = _dense_bool(relevant, "relevant", None)
        if dense.shape[0] != n_users:
            raise ValueError(f"relevant has {dense.shape[0]} users but ranked has {n_users}")
        if n_items is not None and dense.shape[1] != n_items:
            raise ValueError(f"relevant has {dense.shape[1]} items but scores has {n_items}")
        if r.max() >= dense.shape[1]:
            raise ValueError(f"ranked has item {int(r.max())} but relevant covers only "
                             f"{dense.shape[1]} items")
        rows, indices = np.nonzero(dense)
        width = dense.shape[1]
    rel_keys = np.unique(rows.astype(np.int64) * width + indices)
    n_rel = np.bincount(rel_keys // width, minlength=n_users)
    keys = np.arange(n_users, dtype=np.int64)[:, None] * width + r
    hits = np.isin(keys, rel_keys) & (r >= 0)
    return hits, n_rel


def _recall(hits: np.ndarray, n_rel: np.ndarray) -> float:
    users = n_rel > 0
    if not users.any():
        raise ValueError("no user has a relevant item; recall@K is undefined")
    return float(np.mean(hits[users].sum(axis=1) / n_rel[users]))


def _ndcg(hits: np.ndarray, n_rel: np.ndarray, k: int) -> float:
    users = n_rel > 0
    if not users.any():
        raise ValueError("no user has a relevant item; NDCG@K is undefined")
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = (hits[users] * discount[: hits.shape[1]]).sum(axis=1)
    idcg = np.cumsum(discount)[np.minimum(n_rel[users], k) - 1]
    return float(np.mean(dcg / idcg))


def _from_scores(scores, relevant, k, exclude):
    k = _check_k(k)
    s = _score_matrix(scores)
    ex = _dense_bool(exclude, "exclude", s.shape)
    rel = _dense_bool(relevant, "relevant", s.shape)
    if ex is not None:
        rel = rel & ~ex
    top = topk_items(s, k, ex)
    hits, n_rel = _hits(top, rel, k, s.shape[1])
    return hits, n_rel, k


def recall_at_k(scores, relevant, k: int, exclude=None) -> float:
    """Mean recall@K of top-K recommendation from a score matrix.

    For each user the top-K list is :func:`topk_items` ``(scores, k, exclude)``; recall@K =
    ``|top-K ∩ relevant| / |relevant|`` (the full relevant count, as in NGCF / LightGCN, so a
    user with more than K relevant items cannot reach 1). Users with no relevant item are
    skipped; the result is the mean over the others.

    Args:
        scores: ``(U, I)`` scores, higher = better.
        relevant: the relevant (held-out) items per user: a ``(U, I)`` 0-1 / bool matrix (any
            nonzero = relevant), a scipy sparse matrix, or ``(indptr, indices)`` (CSR rows =
            users).
        k: list length, >= 1.
        exclude: optional ``(U, I)`` mask of items never recommended (e.g. training
            interactions), same forms as ``relevant``; excluded items are also removed from the
            relevant sets.

    Returns the mean recall@K in [0, 1]. Raises ValueError on shape mismatch, NaN scores,
    k < 1, or when no user has a relevant item.
    """
    hits, n_rel, _ = _from_scores(scores, relevant, k, exclude)
    return _recall(hits, n_rel)


def ndcg_at_k(scores, relevant, k: int, exclude=None) -> float:
    """Mean NDCG@K (binary relevance) of top-K recommendation from a score matrix.

    ``DCG@K = sum_{i=1..K} rel_i / log2(i + 1)`` over the user's top-K list (``rel_i`` = 1 if
    the item at position ``i`` is relevant), ``IDCG@K = sum_{i=1..min(K, |relevant|)}
    1 / log2(i + 1)``, NDCG = DCG / IDCG; users with no relevant item are skipped. Arguments,
    ranking, ties and errors as in :func:`recall_at_k`.

    Returns the mean NDCG@K in [0, 1].
    """
    hits, n_rel, k = _from_scores(scores, relevant, k, exclude)
    return _ndcg(hits, n_rel, k)


def recall_at_k_ranked(ranked, relevant, k: int) -> float:
    """Mean recall@K (see :func:`recall_at_k`) from ranked lists.

    Args:
        ranked: ``(U, L)`` int item ids per user, best first, ``-1`` for an empty slot; only
            the first ``k`` columns are used (``L < k`` counts the missing slots as misses). A
            row must not repeat an item.
        relevant: relevant items per user, as in :func:`recall_at_k`.
        k: list length, >= 1.

    Returns the mean recall@K over users with at least one relevant item.
    """
    k = _check_k(k)
    hits, n_rel = _hits(ranked, relevant, k, None)
    return _recall(hits, n_rel)


def ndcg_at_k_ranked(ranked, relevant, k: int) -> float:
    """Mean NDCG@K (see :func:`ndcg_at_k`) from ranked lists (arguments as in
    :func:`recall_at_k_ranked`)."""
    k = _check_k(k)
    hits, n_rel = _hits(ranked, relevant, k, None)
    return _ndcg(hits, n_rel, k)
