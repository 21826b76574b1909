"""graphplat.training.metrics against hand-computed values and slow independent implementations."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp

from graphplat.training.metrics import (
    accuracy,
    average_precision,
    macro_f1,
    micro_f1,
    ndcg_at_k,
    ndcg_at_k_ranked,
    pr_auc,
    recall_at_k,
    recall_at_k_ranked,
    rmse,
    roc_auc,
    topk_items,
)

# ----------------------------------------------------------------------------- classification


def test_accuracy_from_labels_and_from_scores():
    y = np.array([0, 1, 2, 2])
    assert accuracy(y, np.array([0, 1, 1, 2])) == 0.75
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.5, 0.4], [0.0, 0.1, 0.9]])
    assert accuracy(y, scores) == 0.75
    with pytest.raises(ValueError, match="empty"):
        accuracy(np.array([], dtype=int), np.array([], dtype=int))
    with pytest.raises(ValueError, match="4 entries but y_pred has 3"):
        accuracy(y, y[:3])


def test_macro_f1_with_a_class_absent_from_predictions():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 1])  # class 2 never predicted -> F1_2 = 0, still counted
    f1 = [1.0, 2 * 2 / (2 * 2 + 2 + 0), 0.0]
    assert macro_f1(y_true, y_pred) == pytest.approx(np.mean(f1), abs=1e-12)
    assert micro_f1(y_true, y_pred) == pytest.approx(4 / 6, abs=1e-12)  # = accuracy
    # a class only predicted (never true) also counts, with F1 = 0
    assert macro_f1(np.array([0, 0, 1]), np.array([0, 2, 1])) == pytest.approx(
        np.mean([2 / 3, 1.0, 0.0]), abs=1e-12)
    # explicit labels: a class absent from both scores 0; restricting the classes
    assert macro_f1(y_true, y_pred, labels=[0, 1, 2, 3]) == pytest.approx(np.sum(f1) / 4)
    assert macro_f1(y_true, y_pred, labels=[0, 1]) == pytest.approx(np.mean(f1[:2]))
    assert micro_f1(y_true, y_pred, labels=[1]) == pytest.approx(2 * 2 / (2 * 2 + 2 + 0))


def _slow_macro_f1(t, p):
    f1s = []
    for c in sorted(set(t) | set(p)):
        tp = sum(1 for a, b in zip(t, p) if a == c and b == c)
        pred = sum(1 for b in p if b == c)
        true = sum(1 for a in t if a == c)
        prec = tp / pred if pred else 0.0
        rec = tp / true if true else 0.0
        f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return sum(f1s) / len(f1s)


def test_macro_and_micro_f1_match_precision_recall_definition_on_random_data():
    rng = np.random.default_rng(0)
    for _ in range(20):
        t = rng.integers(0, 5, 60)
        p = np.where(rng.random(60) < 0.5, t, rng.integers(0, 6, 60))
        assert macro_f1(t, p) == pytest.approx(_slow_macro_f1(list(t), list(p)), abs=1e-12)
        assert micro_f1(t, p) == pytest.approx(accuracy(t, p), abs=1e-12)


def test_classification_errors():
    with pytest.raises(ValueError, match="integer class labels"):
        macro_f1(np.array([0.5, 1.0]), np.array([0, 1]))
    with pytest.raises(ValueError, match="1-D"):
        macro_f1(np.zeros((2, 2)), np.array([0, 1]))
    with pytest.raises(ValueError, match="labels is empty"):
        macro_f1(np.array([0, 1]), np.array([0, 1]), labels=[])


# ----------------------------------------------------------------------------- ROC-AUC


def _mann_whitney(t, s):
    pos, neg = s[t == 1], s[t == 0]
    wins = sum((a > b) + 0.5 * (a == b) for a, b in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_roc_auc_hand_values():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75  # scikit-learn's doc example
    assert roc_auc([0, 1], [0.3, 0.3]) == 0.5
    assert roc_auc([1, 1, 0], [3, 2, 1]) == 1.0
    assert roc_auc(np.array([True, False, False]), [0.0, 1.0, 2.0]) == 0.0
    # ties between classes count 1/2: pairs (p=.5 vs n=.5) tie, (p=.9 vs n=.5) win
    assert roc_auc([1, 0, 1], [0.5, 0.5, 0.9]) == pytest.approx(0.75)


def test_roc_auc_equals_pairwise_mann_whitney_with_ties():
    rng = np.random.default_rng(1)
    for n in (2, 7, 50, 301):
        t = rng.integers(0, 2, n)
        t[:2] = [0, 1]
        s = np.round(rng.normal(size=n) + 0.7 * t, 1)  # rounding creates many ties
        assert roc_auc(t, s) == pytest.approx(_mann_whitney(t, s), abs=1e-12)
        assert roc_auc(t, s.astype(np.float32)) == pytest.approx(_mann_whitney(t, s), abs=1e-12)
    # integer scores with massive ties
    t = rng.integers(0, 2, 200)
    t[:2] = [0, 1]
    s = rng.integers(0, 3, 200)
    assert roc_auc(t, s) == pytest.approx(_mann_whitney(t, s), abs=1e-12)


def test_roc_auc_errors():
    with pytest.raises(ValueError, match="only one class"):
        roc_auc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="only one class"):
        roc_auc([0, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="binary"):
        roc_auc([0, 2, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="empty"):
        roc_auc([], [])
    with pytest.raises(ValueError, match="3 entries but y_score has 2"):
        roc_auc([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        roc_auc([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="1-D"):
        roc_auc([[0, 1]], [[0.1, 0.2]])


# ----------------------------------------------------------------------------- average precision


def test_average_precision_hand_value_with_ties():
    # thresholds 0.9: TP1 FP0 -> P 1,   R 1/3
    #            0.8: TP2 FP1 -> P 2/3, R 2/3   (the tied 0.8s enter together)
    #            0.5: TP3 FP2 -> P 3/5, R 1
    y = [1, 0, 1, 1, 0]
    s = [0.9, 0.8, 0.8, 0.5, 0.5]
    assert average_precision(y, s) == pytest.approx(1 / 3 * 1 + 1 / 3 * 2 / 3 + 1 / 3 * 3 / 5)
    assert average_precision(y, s) == pytest.approx(34 / 45, abs=1e-15)
    # scikit-learn's doc example: average_precision_score([0,0,1,1],[.1,.4,.35,.8]) = 0.8333...
    assert average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(5 / 6)
    assert pr_auc is average_precision
    assert average_precision([0, 1, 1], [0.1, 0.5, 0.5]) == 1.0
    assert average_precision([1, 1], [0.2, 0.1]) == 1.0  # all positive
    assert average_precision([1, 0, 0, 0], [0.0, 0.0, 0.0, 0.0]) == pytest.approx(0.25)


def _slow_average_precision(t, s):
    """Threshold by threshold, counting with boolean masks (no cumulative sums)."""
    n_pos = int(np.sum(t == 1))
    ap, prev_recall = 0.0, 0.0
    for thr in sorted(set(s.tolist()), reverse=True):
        predicted = s >= thr
        tp = int(np.sum(predicted & (t == 1)))
        precision = tp / int(np.sum(predicted))
        recall = tp / n_pos
        ap += (recall - prev_recall) * precision
        prev_recall = recall
    return ap


def test_average_precision_equals_slow_implementation_on_random_data():
    rng = np.random.default_rng(2)
    for n in (1, 5, 40, 500):
        t = rng.integers(0, 2, n)
        t[0] = 1
        for s in (np.round(rng.random(n) + 0.3 * t, 1), rng.random(n), rng.integers(0, 4, n)):
            assert average_precision(t, s) == pytest.approx(_slow_average_precision(t, s),
                                                            abs=1e-12)


def test_average_precision_errors():
    with pytest.raises(ValueError, match="no positive"):
        average_precision([0, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="empty"):
        average_precision([], [])
    with pytest.raises(ValueError, match="2 entries but y_score has 3"):
        average_precision([0, 1], [0.1, 0.2, 0.3])


def test_rmse():
    assert rmse([1.0, 2.0, 3.0], [1.0, 2.0, 5.0]) == pytest.approx(math.sqrt(4 / 3))
    assert rmse(np.array([3]), np.array([3])) == 0.0
    with pytest.raises(ValueError, match="empty"):
        rmse([], [])
    with pytest.raises(ValueError, match="2 entries but y_pred has 1"):
        rmse([1, 2], [1])


# ----------------------------------------------------------------------------- top-K


SCORES = np.array([[0.9, 0.1, 0.8, 0.3, 0.5],
                   [0.2, 0.7, 0.7, 0.1, 0.0],
                   [0.5, 0.4, 0.3, 0.2, 0.1]])
RELEVANT = np.array([[0, 0, 1, 1, 0],
                     [1, 0, 0, 0, 0],
                     [0, 0, 0, 0, 0]])   # user 2 has nothing relevant: skipped
SEEN = np.zeros((3, 5), bool)
SEEN[1, 1] = True
L2, L3 = 1 / math.log2(2), 1 / math.log2(3)   # discounts of positions 1 and 2 (L2 = 1)


def test_topk_items_ties_and_exclusion():
    np.testing.assert_array_equal(topk_items(SCORES, 3), [[0, 2, 4], [1, 2, 0], [0, 1, 2]])
    np.testing.assert_array_equal(topk_items(SCORES, 3, exclude=SEEN)[1], [2, 0, 3])
    # fewer non-excluded items than k: -1 pads; k beyond the catalog is cut to I
    ex = np.ones((3, 5), bool)
    ex[0, 3] = False
    top = topk_items(SCORES, 9, exclude=ex)
    assert top.shape == (3, 5)
    np.testing.assert_array_equal(top[0], [3, -1, -1, -1, -1])


def test_recall_and_ndcg_at_k_hand_example():
    # user 0: top-3 [0, 2, 4], relevant {2, 3}: 1 hit at position 2
    # user 1 (item 1 excluded): top-3 [2, 0, 3], relevant {0}: 1 hit at position 2
    recall = (1 / 2 + 1 / 1) / 2
    ndcg = ((L3) / (L2 + L3) + L3 / L2) / 2
    assert recall_at_k(SCORES, RELEVANT, 3, exclude=SEEN) == pytest.approx(recall)
    assert ndcg_at_k(SCORES, RELEVANT, 3, exclude=SEEN) == pytest.approx(ndcg)
    # without exclusion user 1's relevant item drops to position 3
    assert recall_at_k(SCORES, RELEVANT, 3) == pytest.approx(0.75)
    assert ndcg_at_k(SCORES, RELEVANT, 3) == pytest.approx(
        (L3 / (L2 + L3) + 1 / math.log2(4)) / 2)
    # k = 1: no hits
    assert recall_at_k(SCORES, RELEVANT, 1) == 0.0 and ndcg_at_k(SCORES, RELEVANT, 1) == 0.0
    # the same through CSR tuples, scipy sparse matrices and ranked lists
    csr = sp.csr_matrix(RELEVANT)
    as_tuple = (csr.indptr, csr.indices)
    seen_tuple = (np.array([0, 0, 1, 1]), np.array([1]))
    for rel, ex in ((csr, sp.csr_matrix(SEEN)), (as_tuple, seen_tuple)):
        assert recall_at_k(SCORES, rel, 3, exclude=ex) == pytest.approx(recall)
        assert ndcg_at_k(SCORES, rel, 3, exclude=ex) == pytest.approx(ndcg)
    ranked = topk_items(SCORES, 3, exclude=SEEN)
    for rel in (RELEVANT, as_tuple):
        assert recall_at_k_ranked(ranked, rel, 3) == pytest.approx(recall)
        assert ndcg_at_k_ranked(ranked, rel, 3) == pytest.approx(ndcg)


def test_ranked_lists_with_padding_and_short_lists():
    ranked = np.array([[3, -1, -1], [0, 4, -1]])
    rel = (np.array([0, 2, 3]), np.array([3, 7, 4]))  # user 0: {3, 7}; user 1: {4}
    assert recall_at_k_ranked(ranked, rel, 3) == pytest.approx((1 / 2 + 1) / 2)
    assert ndcg_at_k_ranked(ranked, rel, 3) == pytest.approx((1 / (1 + L3) + L3) / 2)
    assert recall_at_k_ranked(ranked, rel, 10) == recall_at_k_ranked(ranked, rel, 3)


def _slow_recall_ndcg(scores, relevant, k, exclude):
    recalls, ndcgs = [], []
    for u in range(scores.shape[0]):
        items = [i for i in range(scores.shape[1]) if not exclude[u, i]]
        items.sort(key=lambda i: (-scores[u, i], i))
        rel = {i for i in range(scores.shape[1]) if relevant[u, i] and not exclude[u, i]}
        if not rel:
            continue
        top = items[:k]
        hits = [1.0 if i in rel else 0.0 for i in top]
        recalls.append(sum(hits) / len(rel))
        dcg = sum(h / math.log2(p + 2) for p, h in enumerate(hits))
        idcg = sum(1 / math.log2(p + 2) for p in range(min(k, len(rel))))
        ndcgs.append(dcg / idcg)
    return np.mean(recalls), np.mean(ndcgs)


def test_recall_and_ndcg_equal_slow_implementation_on_random_data():
    rng = np.random.default_rng(3)
    for k in (1, 3, 10, 40):
        scores = np.round(rng.random((25, 30)), 1)  # ties
        relevant = rng.random((25, 30)) < 0.1
        exclude = rng.random((25, 30)) < 0.2
        want_r, want_n = _slow_recall_ndcg(scores, relevant, k, exclude)
        assert recall_at_k(scores, relevant, k, exclude=exclude) == pytest.approx(want_r, abs=1e-12)
        assert ndcg_at_k(scores, relevant, k, exclude=exclude) == pytest.approx(want_n, abs=1e-12)


def test_topk_errors():
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        recall_at_k(SCORES, RELEVANT, 0)
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        ndcg_at_k_ranked(np.array([[0]]), RELEVANT[:1], 0)
    with pytest.raises(ValueError, match="relevant has shape \\(3, 4\\) but scores has shape"):
        recall_at_k(SCORES, RELEVANT[:, :4], 2)
    with pytest.raises(ValueError, match="exclude has shape"):
        recall_at_k(SCORES, RELEVANT, 2, exclude=SEEN[:2])
    with pytest.raises(ValueError, match="no user has a relevant item"):
        ndcg_at_k(SCORES, np.zeros_like(RELEVANT), 2)
    with pytest.raises(ValueError, match="NaN"):
        recall_at_k(np.array([[np.nan, 1.0]]), np.array([[1, 0]]), 1)
    with pytest.raises(ValueError, match="empty"):
        recall_at_k(np.zeros((0, 3)), np.zeros((0, 3)), 1)
    with pytest.raises(ValueError, match="repeats an item"):
        recall_at_k_ranked(np.array([[1, 1]]), np.array([[0, 1]]), 2)
    with pytest.raises(ValueError, match="indptr must start at 0"):
        recall_at_k_ranked(np.array([[1]]), (np.array([0, 2]), np.array([1])), 1)
    with pytest.raises(ValueError, match="2 users but there are 1"):
        recall_at_k_ranked(np.array([[1]]), (np.array([0, 1, 1]), np.array([1])), 1)
