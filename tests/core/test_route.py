"""_core.split_by_partition and _core.merge_samples, the per-hop split and merge of
RoutedGraph, against plain numpy references, and their errors on inconsistent input."""
import numpy as np
import pytest

from graphplat import _core
from graphplat.storage.partition_book import PartitionBook


def hash_ids(ids: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer of int64 ids as uint64, in numpy: the reference for the core's
    PartitionBook hash (stored partitions depend on it never changing)."""
    z = np.asarray(ids, dtype=np.int64).view(np.uint64).copy()
    with np.errstate(over="ignore"):
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return z


def test_hash_partitions_is_splitmix64_mod_p_and_rejects_bad_counts():
    ids = np.concatenate([np.random.default_rng(4).integers(-2**63, 2**63 - 1, 50000),
                          [0, 1, -1, 2**63 - 1, -2**63]])
    for num_partitions in (1, 2, 3, 7, 1 << 20):
        np.testing.assert_array_equal(_core.hash_partitions(ids, num_partitions),
                                      (hash_ids(ids) % np.uint64(num_partitions)).astype(np.int64))
    np.testing.assert_array_equal(PartitionBook(3).partition_of("n", ids[:100]),
                                  (hash_ids(ids[:100]) % np.uint64(3)).astype(np.int64))
    assert _core.hash_partitions(np.zeros(0, np.int64), 4).shape == (0,)
    for bad in (0, -1, (1 << 20) + 1):
        with pytest.raises(ValueError, match="num_partitions"):
            _core.hash_partitions(ids, bad)


def _reference_split(parts: np.ndarray, num_partitions: int) -> dict:
    return {p: np.flatnonzero(parts == p) for p in range(num_partitions) if (parts == p).any()}


@pytest.mark.parametrize("num_partitions", [1, 2, 3, 5, 16])
@pytest.mark.parametrize("n", [0, 1, 1000, 70000])
def test_split_matches_the_hash_of_partition_book(num_partitions, n):
    ids = np.random.default_rng(n).integers(-10**12, 10**12, n)
    order, bounds = _core.split_by_partition(ids, num_partitions)
    parts = (hash_ids(ids) % np.uint64(num_partitions)).astype(np.int64)
    ref = _reference_split(parts, num_partitions)
    assert bounds[0] == 0 and bounds[-1] == n and len(bounds) == num_partitions + 1
    for p in range(num_partitions):
        np.testing.assert_array_equal(order[bounds[p]:bounds[p + 1]], ref.get(p, np.zeros(0, np.int64)))
    for nt in (1, 2):  # the same grouping whatever the thread count
        o2, b2 = _core.split_by_partition(ids, num_partitions, num_threads=nt)
        np.testing.assert_array_equal(o2, order)
        np.testing.assert_array_equal(b2, bounds)


def test_split_with_given_parts_and_assigned_books():
    rng = np.random.default_rng(1)
    ids = rng.permutation(50000)
    assigned = rng.integers(0, 4, len(ids))
    book = PartitionBook.from_assignment(4, {"n": (ids, assigned)})
    query = np.concatenate([rng.choice(ids, 20000), [10**9, 10**9 + 1]])  # two unassigned ids
    got = book.split("n", query)
    ref = _reference_split(book.partition_of("n", query), 4)
    assert got.keys() == ref.keys()
    for p in ref:
        np.testing.assert_array_equal(got[p], ref[p])


def test_split_rejects_bad_arguments():
    ids = np.arange(4)
    with pytest.raises(ValueError, match="num_partitions"):
        _core.split_by_partition(ids, 0)
    with pytest.raises(ValueError, match="outside"):
        _core.split_by_partition(ids, 2, parts=np.array([0, 1, 2, 0]))
    with pytest.raises(ValueError, match="parts has 2"):
        _core.split_by_partition(ids, 2, parts=np.array([0, 1]))
    with pytest.raises(ValueError, match="integer"):
        _core.split_by_partition(np.array([0.5]), 2)


def _flat(rows) -> np.ndarray:
    return np.concatenate([np.asarray(x, np.int64) for x in rows]) if rows else np.zeros(0, np.int64)


def _reference_merge(num_seeds, parts):
    counts = np.zeros(num_seeds, np.int64)
    nbrs = [[] for _ in range(num_seeds)]
    eids = [[] for _ in range(num_seeds)]
    for pos, c, nb, ed in parts:
        counts[pos] = c
        starts = np.concatenate([[0], np.cumsum(c)])
        for i, p in enumerate(pos):
            nbrs[p] = nb[starts[i]:starts[i + 1]]
            eids[p] = ed[starts[i]:starts[i + 1]]
    return counts, _flat(nbrs), _flat(eids)


@pytest.mark.parametrize("num_parts", [1, 2, 3])
def test_merge_puts_answers_in_batch_order(num_parts):
    rng = np.random.default_rng(num_parts)
    n = 3000
    owner = rng.integers(0, num_parts, n)
    parts = []
    for p in range(num_parts):
        pos = np.flatnonzero(owner == p)
        c = rng.integers(0, 12, len(pos))
        parts.append((pos, c, rng.integers(0, 10**9, int(c.sum())), rng.integers(0, 10**9, int(c.sum()))))
    got = _core.merge_samples(n, parts)
    for a, b in zip(got, _reference_merge(n, parts)):
        np.testing.assert_array_equal(a, b)
    # int32 inputs are converted, not misread
    got32 = _core.merge_samples(n, [tuple(np.asarray(x, np.int32) for x in part) for part in parts])
    for a, b in zip(got32, got):
        np.testing.assert_array_equal(a, b)


def test_merge_rejects_inconsistent_parts_without_writing():
    pos, c, nb, ed = np.array([0, 1]), np.array([1, 2]), np.arange(3), np.arange(3)
    with pytest.raises(ValueError, match="twice"):
        _core.merge_samples(2, [(pos, c, nb, ed), (np.array([1]), np.array([0]), nb[:0], ed[:0])])
    with pytest.raises(IndexError, match="outside"):
        _core.merge_samples(2, [(np.array([0, 2]), c, nb, ed)])
    with pytest.raises(ValueError, match="2 of 3"):
        _core.merge_samples(3, [(pos, c, nb, ed)])
    with pytest.raises(ValueError, match="counts"):
        _core.merge_samples(2, [(pos, np.array([1, 5]), nb, ed)])
    with pytest.raises(ValueError, match="counts"):
        _core.merge_samples(2, [(pos, np.array([-1, 4]), nb, ed)])
    with pytest.raises(ValueError, match="eids"):
        _core.merge_samples(2, [(pos, c, nb, ed[:2])])
    with pytest.raises(ValueError, match="positions, counts, neighbors, eids"):
        _core.merge_samples(2, [(pos, c, nb)])
    with pytest.raises(ValueError, match="integer"):
        _core.merge_samples(2, [(pos, c, nb.astype(float), ed)])
