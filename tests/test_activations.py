"""crossent.activations against PyTorch and mpmath; stability at ±1e4 and -inf."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import crossent as ce
from crossent_testing import assert_close, requires_torch, torch

if torch is not None:
    import torch.nn.functional as F


@st.composite
def arrays_and_axis(draw):
    dtype = draw(st.sampled_from(["float32", "float64"]))
    ndim = draw(st.integers(1, 4))
    shape = tuple(draw(st.integers(1, 4)) for _ in range(ndim))
    axis = draw(st.integers(-ndim, ndim - 1))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1.0, 10.0, 1e3, 1e4]))
    return dtype, (rng.standard_normal(shape) * scale).astype(dtype), axis, rng


@requires_torch
@given(arrays_and_axis())
def test_softmax_and_log_softmax_match_torch(case) -> None:
    dtype, logits, axis, rng = case
    cotangent = rng.standard_normal(logits.shape)
    for ours, theirs in ((ce.softmax, torch.softmax), (ce.log_softmax, torch.log_softmax)):
        # values, NumPy in
        expected = theirs(torch.from_numpy(logits), dim=axis)
        assert_close(ours(logits, axis=axis), expected, dtype)
        # values and gradients, torch in (autograd through crossent vs through PyTorch)
        x = torch.tensor(logits, requires_grad=True)
        (ours(x, axis=axis) * torch.from_numpy(cotangent.astype(dtype))).sum().backward()
        y = torch.tensor(logits, requires_grad=True)
        (theirs(y, dim=axis) * torch.from_numpy(cotangent.astype(dtype))).sum().backward()
        assert_close(x.grad, y.grad, dtype, atol=1e-5 if dtype == "float32" else 1e-12)


@requires_torch
@given(st.sampled_from(["float32", "float64"]), st.integers(0, 2**32 - 1),
       st.sampled_from([1.0, 10.0, 100.0, 1e4]))
def test_sigmoid_log_sigmoid_logit_match_torch(dtype, seed, scale) -> None:
    x = (np.random.default_rng(seed).standard_normal((3, 5)) * scale).astype(dtype)
    tx = torch.from_numpy(x)
    assert_close(ce.sigmoid(x), torch.sigmoid(tx), dtype)
    assert_close(ce.log_sigmoid(x), F.logsigmoid(tx), dtype)
    probs = np.clip(ce.sigmoid(x), 1e-6, 1 - 1e-6).astype(dtype)
    assert_close(ce.logit(probs), torch.logit(torch.from_numpy(probs)), dtype,
                 rtol=1e-4 if dtype == "float32" else 1e-10)
    for ours, theirs in ((ce.sigmoid, torch.sigmoid), (ce.log_sigmoid, F.logsigmoid)):
        a = torch.tensor(x, requires_grad=True)
        ours(a).sum().backward()
        b = torch.tensor(x, requires_grad=True)
        theirs(b).sum().backward()
        assert_close(a.grad, b.grad, dtype)


def test_sigmoid_and_log_sigmoid_against_mpmath() -> None:
    mpmath.mp.dps = 50
    for x in (-1e4, -745.0, -40.0, -20.0, -1.5, -1e-8, 0.0, 1e-8, 0.7, 3.0, 20.0, 40.0, 1e4):
        sigmoid = 1 / (1 + mpmath.exp(-mpmath.mpf(x)))
        complement = 1 / (1 + mpmath.exp(mpmath.mpf(x)))  # 1 - σ(x) = σ(-x), without cancelling
        assert float(ce.sigmoid([x])[0]) == pytest.approx(float(sigmoid), rel=1e-15, abs=1e-300)
        assert float(ce.log_sigmoid([x])[0]) == pytest.approx(float(mpmath.log(sigmoid)),
                                                              rel=1e-15)
        assert float(ce.log_sigmoid([-x])[0]) == pytest.approx(float(mpmath.log(complement)),
                                                               rel=1e-15)


def test_log_softmax_against_mpmath() -> None:
    mpmath.mp.dps = 50
    rng = np.random.default_rng(7)
    for scale in (1.0, 30.0, 1e4):
        logits = rng.standard_normal(6) * scale
        normaliser = mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(z)) for z in logits))
        expected = [float(mpmath.mpf(z) - normaliser) for z in logits]
        np.testing.assert_allclose(ce.log_softmax(logits), expected, rtol=1e-14, atol=1e-14)
        np.testing.assert_allclose(ce.softmax(logits), np.exp(expected), rtol=1e-14,
                                   atol=1e-300)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_and_infinite_logits(dtype) -> None:
    inf = np.inf
    logits = np.array([[1e4, -1e4, 0.0], [0.0, -inf, 0.0], [-inf, 5.0, -inf]], dtype=dtype)
    probs = ce.softmax(logits)
    np.testing.assert_array_equal(probs, [[1, 0, 0], [0.5, 0, 0.5], [0, 1, 0]])
    log_probs = ce.log_softmax(logits)
    np.testing.assert_allclose(log_probs, [[0, -2e4, -1e4], [-np.log(2), -inf, -np.log(2)],
                                           [-inf, 0, -inf]], rtol=1e-7)
    # a row of only -inf has no distribution: NaN (documented)
    assert np.all(np.isnan(ce.softmax(np.array([[-inf, -inf]], dtype=dtype))))
    x = np.array([-1e4, -inf, inf, 1e4, 0.0], dtype=dtype)
    np.testing.assert_array_equal(ce.sigmoid(x), [0, 0, 1, 1, 0.5])
    np.testing.assert_allclose(ce.log_sigmoid(x), [-1e4, -inf, 0, 0, np.log(0.5)], rtol=1e-7)
    np.testing.assert_array_equal(ce.logit(np.array([0.0, 1.0, 0.5], dtype=dtype)),
                                  [-inf, inf, 0])


@requires_torch
def test_gradients_finite_at_minus_inf_and_1e4() -> None:
    inf = float("inf")
    x = torch.tensor([[1e4, -1e4, 0.0], [0.0, -inf, 1.0]], dtype=torch.float64,
                     requires_grad=True)
    (ce.log_softmax(x) * torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])).sum().backward()
    assert torch.all(torch.isfinite(x.grad))
    # d log p_2 / dz = e_2 - p with p = softmax over the possible classes {0, 2}:
    # p_0 = 1 / (1 + e), 1 - p_2 = p_0; the impossible class gets 0
    s = 1 / (1 + np.e)
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0, 0], [-s, 0, s]], atol=1e-15)
    y = torch.tensor([-1e4, -inf, inf, 1e4, 0.0], dtype=torch.float64, requires_grad=True)
    ce.log_sigmoid(y).sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [1, 1, 0, 0, 0.5])
    z = torch.tensor([-1e4, 1e4, 0.0], dtype=torch.float64, requires_grad=True)
    ce.sigmoid(z).sum().backward()
    np.testing.assert_array_equal(z.grad.numpy(), [0, 0, 0.25])


def test_softmax_inverse_round_trip() -> None:
    rng = np.random.default_rng(8)
    probs = rng.dirichlet(np.ones(4), size=(3, 2))
    logits = ce.softmax_inverse(probs)
    np.testing.assert_allclose(ce.softmax(logits), probs, rtol=1e-13)
    # centred: mean over classes is 0
    np.testing.assert_allclose(logits.mean(axis=-1), 0, atol=1e-14)
    # along another axis
    moved = np.moveaxis(probs, -1, 0)
    np.testing.assert_allclose(ce.softmax_inverse(moved, axis=0), np.moveaxis(logits, -1, 0),
                               rtol=1e-14)
    # zero probabilities get -inf and the rest is centred over the non-zero classes
    z = ce.softmax_inverse(np.array([0.5, 0.5, 0.0]))
    np.testing.assert_array_equal(z, [0.0, 0.0, -np.inf])
    np.testing.assert_allclose(ce.softmax(z), [0.5, 0.5, 0.0])
    # sigmoid and logit are inverses
    p = np.linspace(0.001, 0.999, 17)
    np.testing.assert_allclose(ce.sigmoid(ce.logit(p)), p, rtol=1e-14)


def test_lists_and_16_bit_inputs() -> None:
    # lists of ints are read as floats; float16 is computed and returned in float32
    np.testing.assert_allclose(ce.softmax([1, 2, 3]), ce.softmax([1.0, 2.0, 3.0]))
    half = np.array([1.0, 2.0, 3.0], dtype=np.float16)
    for function in (ce.softmax, ce.log_softmax, ce.sigmoid, ce.log_sigmoid):
        assert function(half).dtype == np.float32
    assert ce.logit(np.array([0.25], dtype=np.float16)).dtype == np.float32


def test_nan_propagates() -> None:
    # NaN is not an error: it propagates (sigmoid(NaN) is NaN, not the 0.5 of a branch choice)
    nan = np.nan
    assert np.all(np.isnan(ce.softmax(np.array([nan, 1.0]))))
    assert np.all(np.isnan(ce.log_softmax(np.array([nan, 1.0]))))
    for function in (ce.sigmoid, ce.log_sigmoid, ce.logit):
        result = function(np.array([nan, 0.25]))
        assert np.isnan(result[0]) and np.isfinite(result[1])
    # the centring of softmax_inverse spreads a NaN to its row, as softmax does
    assert np.all(np.isnan(ce.softmax_inverse(np.array([nan, 0.5]))))
    if torch is not None:
        x = torch.tensor([nan, 1.0], requires_grad=True)
        ce.log_sigmoid(x).sum().backward()
        assert torch.isnan(x.grad[0]) and torch.isfinite(x.grad[1])
