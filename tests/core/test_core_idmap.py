"""graphplat._core.IdMap vs a dict-based brute force."""
import numpy as np
import pytest

import graphplat._core as core

I64 = np.int64
INT64_MIN, INT64_MAX = int(np.iinfo(I64).min), int(np.iinfo(I64).max)
SPECIAL = [INT64_MIN, INT64_MAX, 0, -1, 1, INT64_MIN + 1, INT64_MAX - 1]


def random_ids(rng, n):
    ids = np.concatenate([np.array(SPECIAL, I64), rng.integers(INT64_MIN, INT64_MAX, n, dtype=I64),
                          rng.integers(-50, 50, n // 4)])
    return rng.permutation(np.unique(ids))


@pytest.fixture
def ids_and_map():
    rng = np.random.default_rng(31)
    ids = random_ids(rng, 5000)
    return ids, core.IdMap(ids)


def test_build_len_ids(ids_and_map):
    ids, m = ids_and_map
    assert len(m) == len(ids)
    out = m.ids()
    assert out.dtype == I64
    np.testing.assert_array_equal(out, ids)
    out[:] = 0  # a copy: must not affect the map
    np.testing.assert_array_equal(m.ids(), ids)


def test_lookup_vs_dict(ids_and_map):
    ids, m = ids_and_map
    ref = {int(v): i for i, v in enumerate(ids)}
    rng = np.random.default_rng(32)
    q = rng.choice(ids, 20000)
    for nt in (1, 2, 4):
        got = m.lookup(q, num_threads=nt)
        assert got.dtype == I64
        np.testing.assert_array_equal(got, [ref[int(v)] for v in q])
    np.testing.assert_array_equal(m.lookup(np.array(SPECIAL, I64)), [ref[v] for v in SPECIAL])


def test_lookup_missing(ids_and_map):
    ids, m = ids_and_map
    present = set(ids.tolist())
    rng = np.random.default_rng(33)
    cand = rng.integers(INT64_MIN, INT64_MAX, 100, dtype=I64)
    missing = np.array([v for v in cand.tolist() if v not in present][:10], I64)
    q = np.concatenate([ids[:5], missing, ids[5:10]])
    ref = {int(v): i for i, v in enumerate(ids)}
    exp = np.array([ref.get(int(v), -1) for v in q], I64)
    np.testing.assert_array_equal(m.lookup(q, missing="ignore"), exp)
    first_missing = int(missing[0])
    with pytest.raises(IndexError, match=str(first_missing)):
        m.lookup(q)
    with pytest.raises(IndexError, match=str(first_missing)):
        m.lookup(q, missing="raise")
    with pytest.raises(ValueError, match="missing"):
        m.lookup(q, missing="bogus")


def test_contains(ids_and_map):
    ids, m = ids_and_map
    present = set(ids.tolist())
    rng = np.random.default_rng(34)
    q = np.concatenate([rng.choice(ids, 1000), rng.integers(INT64_MIN, INT64_MAX, 1000, dtype=I64),
                        np.array(SPECIAL, I64)])
    for nt in (1, 2):
        got = m.contains(q, num_threads=nt)
        assert got.dtype == np.bool_
        np.testing.assert_array_equal(got, [v in present for v in q.tolist()])


@pytest.mark.parametrize("dup", [123456789, INT64_MIN, INT64_MAX, -987654321])
def test_duplicate_ids_rejected(dup):
    rng = np.random.default_rng(35)
    ids = rng.integers(10**12, 2 * 10**12, 300)
    ids = np.concatenate([ids[:100], [dup], ids[100:200], [dup], ids[200:]]).astype(I64)
    with pytest.raises(ValueError, match=str(dup)):
        core.IdMap(ids)


def test_duplicate_detection_parallel():
    rng = np.random.default_rng(36)
    ids = rng.permutation(np.arange(200000, dtype=I64) * 3 - 7)
    ids[150000] = ids[20]  # a single duplicate far apart
    for nt in (1, 2, 4):
        with pytest.raises(ValueError, match=str(int(ids[20]))):
            core.IdMap(ids, num_threads=nt)


def test_build_thread_invariance():
    rng = np.random.default_rng(37)
    ids = random_ids(rng, 100000)
    maps = [core.IdMap(ids, num_threads=nt) for nt in (1, 2, 4)]
    q = rng.choice(ids, 50000)
    ref = maps[0].lookup(q)
    np.testing.assert_array_equal(ids[ref], q)
    for m in maps[1:]:
        np.testing.assert_array_equal(m.lookup(q), ref)
        np.testing.assert_array_equal(m.ids(), ids)


def test_add_new_ids(ids_and_map):
    ids, m = ids_and_map
    n0 = len(m)
    present = set(ids.tolist())
    rng = np.random.default_rng(38)
    new = np.array([v for v in rng.integers(INT64_MIN, INT64_MAX, 50, dtype=I64).tolist()
                    if v not in present], I64)
    idx = m.add(new)
    assert idx.dtype == I64
    np.testing.assert_array_equal(idx, np.arange(n0, n0 + len(new)))
    assert len(m) == n0 + len(new)
    np.testing.assert_array_equal(m.lookup(new), idx)
    np.testing.assert_array_equal(m.ids(), np.concatenate([ids, new]))
    np.testing.assert_array_equal(m.lookup(ids[:100]), np.arange(100))


def test_add_existing_id_is_atomic(ids_and_map):
    ids, m = ids_and_map
    n0 = len(m)
    fresh = np.array([4242424242, -4242424242], I64)
    assert not m.contains(fresh).any()
    batch = np.array([fresh[0], ids[17], fresh[1]], I64)
    with pytest.raises(ValueError, match=str(int(ids[17]))):
        m.add(batch)
    assert len(m) == n0
    assert not m.contains(fresh).any(), "failed add must not partially insert ids"
    np.testing.assert_array_equal(m.ids(), ids)


def test_add_repeated_id_is_atomic(ids_and_map):
    ids, m = ids_and_map
    n0 = len(m)
    batch = np.array([5555555555, 6666666666, 5555555555], I64)
    assert not m.contains(batch).any()
    with pytest.raises(ValueError, match="5555555555"):
        m.add(batch)
    assert len(m) == n0
    assert not m.contains(batch).any()
    # the map is still usable afterwards
    np.testing.assert_array_equal(m.add(np.array([5555555555], I64)), [n0])


def test_empty_map():
    m = core.IdMap(np.array([], I64))
    assert len(m) == 0
    assert m.ids().shape == (0,)
    assert m.lookup(np.array([], I64)).shape == (0,)
    np.testing.assert_array_equal(m.lookup(np.array([3, INT64_MIN], I64), missing="ignore"), [-1, -1])
    np.testing.assert_array_equal(m.contains(np.array([0, INT64_MIN, INT64_MAX], I64)), [False] * 3)
    with pytest.raises(IndexError, match="3"):
        m.lookup(np.array([3], I64))
    np.testing.assert_array_equal(m.add(np.array([INT64_MIN, 9], I64)), [0, 1])
    np.testing.assert_array_equal(m.lookup(np.array([9, INT64_MIN], I64)), [1, 0])
    assert len(m) == 2


def test_other_int_dtypes_and_bad_inputs():
    m = core.IdMap(np.array([1, 2, 3], np.int32))
    np.testing.assert_array_equal(m.lookup(np.array([3, 1], np.uint16)), [2, 0])
    with pytest.raises(ValueError, match="ids"):
        core.IdMap(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="ids"):
        core.IdMap(np.arange(6, dtype=I64).reshape(2, 3))
    with pytest.raises(ValueError, match="ids"):
        m.lookup(np.array([1.5]))
    # a uint64 that does not fit in int64 cannot be converted exactly (must not wrap to -1)
    m2 = core.IdMap(np.array([-1, 5], I64))
    with pytest.raises(ValueError, match="ids"):
        m2.lookup(np.array([2**64 - 1], np.uint64), missing="ignore")


def test_identity_map_skips_hashing_but_answers_the_same(core):
    """ids 0..n-1 make lookups a range check; answers (missing ids included) must not change,
    and an add that breaks the sequence must fall back to hashing."""
    n = 5000
    m = core.IdMap(np.arange(n, dtype=np.int64))
    assert m.is_identity
    q = np.array([0, n - 1, n, -1, 17, np.iinfo(np.int64).max, np.iinfo(np.int64).min], np.int64)
    np.testing.assert_array_equal(m.lookup(q, missing="ignore"), [0, n - 1, -1, -1, 17, -1, -1])
    np.testing.assert_array_equal(m.contains(q), [True, True, False, False, True, False, False])
    with pytest.raises(IndexError, match=str(n)):
        m.lookup(np.array([3, n], np.int64))
    np.testing.assert_array_equal(m.add(np.array([n, n + 1], np.int64)), [n, n + 1])
    assert m.is_identity  # the sequence continues
    np.testing.assert_array_equal(m.add(np.array([n + 10], np.int64)), [n + 2])
    assert not m.is_identity
    np.testing.assert_array_equal(m.lookup(np.array([n + 10, n + 1, 5, n + 2], np.int64), missing="ignore"),
                                  [n + 2, n + 1, 5, -1])
    assert not core.IdMap(np.array([1, 0], np.int64)).is_identity
    assert not core.IdMap(np.array([0, 2], np.int64)).is_identity
    empty = core.IdMap(np.zeros(0, np.int64))
    assert len(empty.lookup(np.zeros(0, np.int64))) == 0
    np.testing.assert_array_equal(empty.lookup(np.array([0], np.int64), missing="ignore"), [-1])


def test_dense_ids_use_a_direct_table_and_answer_like_the_hash(core):
    """A hash partition of 0..n-1 (small non-negative ids, not the identity) reads a direct
    table; every answer, misses included, must equal the hash table's, and adds keep it right:
    in range (the table grows), out of range (back to hashing)."""
    rng = np.random.default_rng(5)
    n = 20000
    ids = rng.permutation(np.flatnonzero(rng.random(2 * n) < 0.5)).astype(np.int64)  # about half
    dense = core.IdMap(ids)
    assert dense.is_dense and not dense.is_identity
    want = {int(x): i for i, x in enumerate(ids)}
    q = np.concatenate([rng.integers(-5, 2 * n + 5000, 30000), [INT64_MIN, INT64_MAX, -1, 0, len(ids) * 4 + 2000]])
    q = q.astype(np.int64)

    def check(m):
        got = m.lookup(q, missing="ignore")
        np.testing.assert_array_equal(got, [want.get(int(x), -1) for x in q])
        np.testing.assert_array_equal(m.contains(q), got >= 0)
        np.testing.assert_array_equal(m.lookup(ids[:100]), np.arange(100))

    check(dense)
    # the same ids hashed (a far-away id breaks density), answering the same for them
    far = core.IdMap(np.concatenate([ids, [INT64_MAX]]))
    assert not far.is_dense
    np.testing.assert_array_equal(far.lookup(q, missing="ignore"),
                                  np.where(q == INT64_MAX, len(ids), dense.lookup(q, missing="ignore")))
    # an add inside the bound grows the table; outside it falls back to hashing
    top = int(ids.max())
    added = np.array([top + 1, top + 3000, int(np.setdiff1d(np.arange(2 * n), ids)[0])], np.int64)
    np.testing.assert_array_equal(dense.add(added), np.arange(len(ids), len(ids) + 3))
    want.update({int(x): len(ids) + i for i, x in enumerate(added)})
    ids = np.concatenate([ids, added])
    assert dense.is_dense
    check(dense)
    with pytest.raises(ValueError, match="already present"):
        dense.add(added[:1])
    check(dense)  # a refused add changes nothing
    np.testing.assert_array_equal(dense.add(np.array([10**12], np.int64)), [len(ids)])
    want[10**12] = len(ids)
    ids = np.concatenate([ids, [10**12]])
    assert not dense.is_dense
    check(dense)
    # negative ids or ids far above 4 x len never make a table
    assert not core.IdMap(np.array([-1, 0, 1], np.int64)).is_dense
    assert not core.IdMap(np.array([0, 5000], np.int64)).is_dense
    assert core.IdMap(np.array([0, 1000], np.int64)).is_dense  # within the slack
    # an identity map whose sequence breaks gets a table when the ids qualify
    ident = core.IdMap(np.arange(100, dtype=np.int64))
    ident.add(np.array([150], np.int64))
    assert ident.is_dense and not ident.is_identity
    np.testing.assert_array_equal(ident.lookup(np.array([150, 99, 100, 0, -3], np.int64), missing="ignore"),
                                  [100, 99, -1, 0, -1])
