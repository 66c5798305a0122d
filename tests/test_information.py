"""crossent.information against float64 and mpmath references."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossent import information as info

mpmath.mp.dps = 40


def _mp_entropy(p, base=math.e) -> float:
    return float(-mpmath.fsum(mpmath.mpf(x) * mpmath.log(x) for x in p if x > 0)
                 / mpmath.log(base))


def _mp_cross_entropy(p, q, base=math.e) -> float:
    terms = (mpmath.mpf(a) * mpmath.log(b) for a, b in zip(p, q, strict=True) if a > 0)
    return float(-mpmath.fsum(terms) / mpmath.log(base))


def _mp_kl(p, q, base=math.e) -> float:
    return float(mpmath.fsum(mpmath.mpf(a) * mpmath.log(mpmath.mpf(a) / b)
                             for a, b in zip(p, q, strict=True) if a > 0) / mpmath.log(base))


@st.composite
def distributions(draw, *, zeros: bool = True):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    size = draw(st.integers(1, 6))
    p = rng.dirichlet(np.full(size, draw(st.sampled_from([0.1, 1.0, 10.0]))))
    if zeros and size > 1 and draw(st.booleans()):
        p[rng.integers(0, size)] = 0.0
        p = p / p.sum()
    return p


@given(distributions(), st.sampled_from([math.e, 2.0, 10.0]))
def test_entropy_against_mpmath(p, base) -> None:
    assert float(info.entropy(p, base=base)) == pytest.approx(_mp_entropy(p, base), rel=1e-13,
                                                              abs=1e-15)


@given(distributions(), distributions(zeros=False), st.sampled_from([math.e, 2.0]))
def test_cross_entropy_and_kl_against_mpmath(p, q, base) -> None:
    if len(p) != len(q):
        q = np.resize(q, len(p))
        q = q / q.sum()
    assert float(info.cross_entropy(p, q, base=base)) == pytest.approx(
        _mp_cross_entropy(p, q, base), rel=1e-13, abs=1e-15)
    assert float(info.kl_divergence(p, q, base=base)) == pytest.approx(
        _mp_kl(p, q, base), rel=1e-10, abs=1e-14)
    # Gibbs: D_KL >= 0, and H(p, q) = H(p) + D_KL(p || q)
    assert float(info.kl_divergence(p, q)) >= -1e-15
    assert float(info.cross_entropy(p, q)) == pytest.approx(
        float(info.entropy(p)) + float(info.kl_divergence(p, q)), rel=1e-12, abs=1e-14)


def test_kl_of_equal_distributions_is_exactly_zero() -> None:
    p = np.array([0.2, 0.3, 0.5, 0.0])
    assert float(info.kl_divergence(p, p)) == 0.0


def test_self_information_and_binary_entropy_against_mpmath() -> None:
    for x in (1e-300, 1e-12, 0.1, 0.5, 0.9, 1 - 1e-12, 1.0):
        assert float(info.self_information([x])[0]) == pytest.approx(
            float(-mpmath.log(x)), rel=1e-15, abs=1e-300)
        assert float(info.self_information([x], base=2)[0]) == pytest.approx(
            float(-mpmath.log(x, 2)), rel=1e-15, abs=1e-300)
        expected = _mp_entropy([x, 1 - mpmath.mpf(x)])
        # binary_entropy uses log1p(-p): accurate for tiny p where 1 - p rounds
        assert float(info.binary_entropy([x])[0]) == pytest.approx(expected, rel=1e-12,
                                                                   abs=1e-300)
    assert float(info.self_information([0.0])[0]) == math.inf


def test_conventions_and_known_values() -> None:
    # 0 log 0 = 0; a fair coin carries one bit; binary entropy peaks at 0.5 (seed 000)
    assert float(info.entropy([1.0, 0.0, 0.0])) == 0.0
    assert float(info.entropy([0.5, 0.5], base=2)) == 1.0
    assert float(info.binary_entropy([0.5], base=2)[0]) == 1.0
    np.testing.assert_array_equal(info.binary_entropy([0.0, 1.0]), [0.0, 0.0])
    grid = np.linspace(0, 1, 101)
    assert grid[int(np.argmax(info.binary_entropy(grid)))] == pytest.approx(0.5)
    # entropy of a uniform distribution is log n
    assert float(info.entropy(np.full(8, 1 / 8), base=2)) == pytest.approx(3.0, rel=1e-15)
    # q = 0 where p > 0: infinite cross-entropy and KL
    assert float(info.cross_entropy([0.5, 0.5], [1.0, 0.0])) == math.inf
    assert float(info.kl_divergence([0.5, 0.5], [1.0, 0.0])) == math.inf


def test_axis_and_batch() -> None:
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(4), size=(2, 3))
    q = rng.dirichlet(np.ones(4), size=(2, 3))
    for function, args in ((info.entropy, (p,)), (info.cross_entropy, (p, q)),
                           (info.kl_divergence, (p, q))):
        batched = function(*args)
        assert batched.shape == (2, 3)
        moved = function(*[np.moveaxis(a, -1, 1) for a in args], axis=1)
        np.testing.assert_allclose(moved, batched, rtol=1e-14)
        for index in np.ndindex(2, 3):
            assert float(batched[index]) == pytest.approx(
                float(function(*[a[index] for a in args])), rel=1e-14)
