"""Gradient codes (graphplat.distributed.coding): exhaustive decode checks over every survivor set."""
from __future__ import annotations

import itertools
import logging

import numpy as np
import pytest

from graphplat.distributed.coding import (
    CODE_KINDS,
    CyclicRepetitionCode,
    FractionalRepetitionCode,
    GradientCode,
    UncodedScheme,
    make_code,
)


def _cases(kind):
    for n in range(1, 9):
        for s in range(n):
            if kind == "frc" and n % (s + 1):
                continue
            yield n, s


def _slice_grads(n, rng, shape=(5, 3), dtype=np.float64):
    return {j: (rng.standard_normal(shape) * 10.0 ** rng.integers(-2, 3)).astype(dtype)
            for j in range(n)}


def _all_coded(code, grads):
    return {i: code.encode(i, {j: grads[j] for j in code.slices_of(i)}) for i in range(code.n)}


@pytest.mark.parametrize("kind", ["frc", "cyclic"])
def test_every_survivor_set_decodes_exact_sum(kind):
    rng = np.random.default_rng(7)
    checked = 0
    for n, s in _cases(kind):
        code = make_code(kind, n, s)
        grads = _slice_grads(n, rng)
        true = sum(grads[j] for j in range(n))
        scale = max(1.0, float(np.max(np.abs(np.stack(list(grads.values()))))) * n)
        coded = _all_coded(code, grads)
        for survivors in itertools.combinations(range(n), n - s):
            replies = {i: coded[i] for i in survivors}
            assert code.can_decode(survivors)
            dec = code.decode(replies)
            assert dec.dtype == np.float64 and dec.shape == true.shape
            err = float(np.max(np.abs(dec - true)))
            assert err <= 1e-9 * scale, (kind, n, s, survivors, err)
            a = code.decode_weights(survivors)
            assert a.shape == (n,)
            assert np.all(a[[i for i in range(n) if i not in survivors]] == 0)
            assert np.max(np.abs(a @ code.B - 1.0)) <= 1e-9
            # the choice depends only on the set: a reordered mapping gives the same bits
            rev = {i: replies[i] for i in reversed(survivors)}
            assert np.array_equal(code.decode(rev), dec)
            checked += 1
        # superset of survivors (all n) also decodes, with a subset of size <= n-s
        assert len(code.decoding_set(range(n))) <= n - s
        assert np.max(np.abs(code.decode(coded) - true)) <= 1e-9 * scale
    assert checked > 100


def test_frc_decode_is_the_plain_sum():
    rng = np.random.default_rng(1)
    for n, s in _cases("frc"):
        code = FractionalRepetitionCode(n, s)
        grads = _slice_grads(n, rng)
        coded = _all_coded(code, grads)
        groups = [list(range(g * (s + 1), (g + 1) * (s + 1))) for g in range(n // (s + 1))]
        # plain float64 sum of per-group sums (group slices in order), bit for bit
        expected = np.zeros_like(grads[0])
        for members in groups:
            part = np.zeros_like(grads[0])
            for j in members:
                part += grads[j]
            expected += part
        for survivors in itertools.combinations(range(n), n - s):
            dec = code.decode({i: coded[i] for i in survivors})
            assert np.array_equal(dec, expected), (n, s, survivors)
            chosen = code.decoding_set(survivors)
            # the lowest-numbered survivor of every group, weight 1
            assert chosen == tuple(min(w for w in m if w in survivors) for m in groups)
            assert set(np.unique(code.decode_weights(survivors))) <= {0.0, 1.0}
        # integer-valued inputs: exactly the true sum
        ints = {j: rng.integers(-1000, 1000, size=7).astype(np.float64) for j in range(n)}
        cint = _all_coded(code, ints)
        assert np.array_equal(code.decode(cint), sum(ints[j] for j in range(n)))


@pytest.mark.parametrize("kind", ["frc", "cyclic"])
def test_too_few_survivors_raise(kind):
    rng = np.random.default_rng(3)
    for n, s in _cases(kind):
        code = make_code(kind, n, s)
        grads = _slice_grads(n, rng, shape=(4,))
        coded = _all_coded(code, grads)
        true = sum(grads.values())
        for k in range(0, n - s):
            for survivors in itertools.combinations(range(n), k):
                replies = {i: coded[i] for i in survivors}
                if code.can_decode(survivors):
                    # only FRC can decode with fewer than n-s (one survivor per group)
                    assert kind == "frc"
                    assert np.allclose(code.decode(replies), true, rtol=0, atol=1e-9 * np.abs(true).max() * n)
                    continue
                with pytest.raises(ValueError, match="cannot decode") as exc:
                    code.decode(replies)
                if survivors:
                    missing = sorted(set(range(n)) - set(survivors))
                    assert str(missing) in str(exc.value)
                with pytest.raises(ValueError):
                    code.decode_weights(survivors)


def test_frc_missing_group_named():
    code = FractionalRepetitionCode(6, 2)
    grads = {j: np.full(3, float(j)) for j in range(6)}
    coded = _all_coded(code, grads)
    with pytest.raises(ValueError, match=r"group 1 \(workers \[3, 4, 5\]"):
        code.decode({0: coded[0], 1: coded[1], 2: coded[2]})
    # one per group decodes (fewer than n - s)
    assert np.array_equal(code.decode({2: coded[2], 4: coded[4]}), sum(grads.values()))


@pytest.mark.parametrize("kind", ["frc", "cyclic"])
def test_supports(kind):
    for n, s in _cases(kind):
        code = make_code(kind, n, s)
        assert code.B.shape == (n, n) and code.B.dtype == np.float64
        for i in range(n):
            sl = code.slices_of(i)
            assert len(sl) == s + 1
            assert sl == sorted(np.flatnonzero(code.B[i]).tolist())
            if kind == "cyclic":
                assert sorted(sl) == sorted((i + k) % n for k in range(s + 1))
                assert code.B[i, i] == 1.0
        # every slice is computed by s + 1 workers
        for j in range(n):
            assert len(code.workers_of(j)) == s + 1


def test_cyclic_is_reproducible_and_seeded():
    a, b = CyclicRepetitionCode(7, 3), CyclicRepetitionCode(7, 3)
    assert np.array_equal(a.B, b.B)
    assert not np.array_equal(a.B, CyclicRepetitionCode(7, 3, seed=1).B)
    assert np.array_equal(CyclicRepetitionCode(5, 0).B, np.eye(5))
    # s = n - 1: every worker computes everything; any single reply decodes
    c = CyclicRepetitionCode(4, 3)
    assert all(c.can_decode([i]) for i in range(4))


def test_cyclic_condition_number_logged(caplog):
    code = CyclicRepetitionCode(6, 2)
    with caplog.at_level(logging.DEBUG, logger="graphplat.coding"):
        code.decode_weights([1, 3, 4, 5])
    assert any("condition number" in r.getMessage() for r in caplog.records)


def test_encode_dtype_and_validation():
    code = make_code("cyclic", 4, 1)
    g32 = {j: np.ones(3, np.float32) for j in range(4)}
    g64 = {j: np.ones(3, np.float64) for j in range(4)}
    assert code.encode(0, g32).dtype == np.float32
    assert code.encode(0, g64).dtype == np.float64
    mixed = dict(g32)
    mixed[1] = g64[1]
    assert code.encode(0, mixed).dtype == np.float64
    with pytest.raises(ValueError, match=r"slices \[1\] are missing"):
        code.encode(0, {0: g64[0]})
    with pytest.raises(ValueError, match="unknown worker 4"):
        code.encode(4, g64)
    with pytest.raises(ValueError, match="shape"):
        code.encode(0, {0: np.ones(3), 1: np.ones(4)})
    frc = make_code("frc", 4, 1)
    coded = _all_coded(frc, g64)
    coded[2] = np.ones(5)
    with pytest.raises(ValueError, match="shape"):
        frc.decode(coded)
    with pytest.raises(ValueError, match="unknown worker"):
        frc.decode({9: np.ones(3)})


def test_uncoded_needs_everyone():
    code = UncodedScheme(3)
    assert code.kind == "uncoded" and code.s == 0
    assert np.array_equal(code.B, np.eye(3))
    g = {j: np.full(2, j + 1.0) for j in range(3)}
    assert np.array_equal(code.decode(_all_coded(code, g)), np.full(2, 6.0))
    with pytest.raises(ValueError, match=r"missing workers \[1\]"):
        code.decode({0: g[0], 2: g[2]})
    assert isinstance(make_code("uncoded", 3, 0), UncodedScheme)


def test_generic_gradient_code_from_matrix():
    code = GradientCode(np.eye(3), 0)
    assert code.can_decode([0, 1, 2]) and not code.can_decode([0, 1])
    with pytest.raises(ValueError, match="square"):
        GradientCode(np.ones((2, 3)), 0)


@pytest.mark.parametrize("args,match", [
    (("frc", 0, 0), "n .* must be >= 1"),
    (("cyclic", -2, 0), "n .* must be >= 1"),
    (("frc", 4, -1), "s .* must be >= 0"),
    (("cyclic", 4, 4), "must be < n"),
    (("frc", 3, 5), "must be < n"),
    (("frc", 5, 1), r"s\+1=2 does not divide n=5"),
    (("uncoded", 4, 1), "s must be 0"),
    (("lt", 4, 1), "unknown gradient code 'lt'; known kinds: frc, cyclic, uncoded"),
    (("frc", 4.0, 1), "must be an integer"),
    ((None, 4, 1), "code kind must be a string"),
])
def test_make_code_errors(args, match):
    with pytest.raises(ValueError, match=match):
        make_code(*args)


def test_kinds():
    assert CODE_KINDS == ("frc", "cyclic", "uncoded")
    assert make_code(" FRC ", 4, 1).kind == "frc"


@pytest.mark.parametrize("kind", CODE_KINDS)
def test_float32_replies_are_decoded_in_float64(kind):
    """Decoding promises float64 accumulation even for float32 replies: summing
    1e8 + 1 - 1e8 in float32 gives 0, in float64 exactly 1; and every entry equals the
    correctly rounded float64 sum of the weighted float64 replies (math.fsum)."""
    import math

    n, s = 6, (0 if kind == "uncoded" else 1)
    code = make_code(kind, n, s, seed=2)
    survivors = sorted(code.decoding_set(range(n)))
    a = code.decode_weights(range(n))
    rng = np.random.default_rng(0)
    replies = {i: rng.normal(size=64).astype(np.float32) * np.float32(1e3) for i in range(n)}
    big = np.float32(1e8)
    if all(a[i] == 1.0 for i in survivors):  # plain sums: the cancellation case
        first, second, third = survivors[:3]
        replies[first][0], replies[second][0], replies[third][0] = big, np.float32(1.0), -big
    out = code.decode(replies)
    assert out.dtype == np.float64
    exact = np.array([math.fsum(float(a[i]) * float(replies[i][j]) for i in survivors)
                      for j in range(64)])
    np.testing.assert_allclose(out, exact, rtol=1e-12, atol=1e-9)
    in_float32 = sum(np.float32(a[i]) * replies[i] for i in survivors)
    assert np.abs(in_float32.astype(np.float64) - exact).max() > 1e-6  # the test can tell
