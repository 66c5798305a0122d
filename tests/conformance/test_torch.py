"""crossent.compat.torch against torch.nn.functional itself: values, dtypes and gradients."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossent.compat import torch as T

from ._compare import assert_close
from .conftest import require

torch = require("torch")
F = torch.nn.functional

SETTINGS = settings(max_examples=40, deadline=None)


def check(name, input, target, *, grad=True, **kwargs):
    """Same value, dtype and input-gradient as torch.nn.functional.<name>."""
    input = np.asarray(input)
    kwargs_torch = {k: torch.as_tensor(v) if isinstance(v, np.ndarray) else v
                    for k, v in kwargs.items()}
    results = []
    for function in (getattr(F, name), getattr(T, name)):
        x = torch.tensor(input, requires_grad=grad)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = function(x, torch.as_tensor(np.asarray(target)), **kwargs_torch)
        gradient = None
        if grad:
            (gradient,) = torch.autograd.grad(value.sum(), x, allow_unused=True)
            gradient = torch.zeros_like(x) if gradient is None else gradient
        results.append((value, gradient))
    (expected, expected_grad), (actual, actual_grad) = results
    what = f"{name}({kwargs})"
    assert actual.dtype == expected.dtype, what
    assert_close(actual.detach().numpy(), expected.detach().numpy(), input.dtype, what)
    if grad:
        assert actual_grad.dtype == expected_grad.dtype, what
        assert_close(actual_grad.numpy(), expected_grad.numpy(), input.dtype, f"{what}: grad")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        on_numpy = getattr(T, name)(input, np.asarray(target), **kwargs)
    assert isinstance(on_numpy, (np.ndarray, np.generic))
    assert_close(on_numpy, actual.detach().numpy(), input.dtype, f"{what}: NumPy")


# --- random inputs ---------------------------------------------------------------------


@st.composite
def class_case(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    batch = draw(st.integers(1, 4))
    classes = draw(st.integers(2, 5))
    extra = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    shape = (batch, classes, *extra)
    logits = rng.normal(scale=draw(st.sampled_from([1.0, 5.0])), size=shape)
    if draw(st.booleans()):
        target = rng.integers(0, classes, size=(batch, *extra))
        if draw(st.booleans()):
            target[rng.uniform(size=target.shape) < 0.3] = -100  # ignored
    else:
        target = rng.dirichlet(np.ones(classes), size=(batch, *extra))
        target = np.moveaxis(target, -1, 1)
    weight = rng.uniform(0.1, 2.0, size=classes) if draw(st.booleans()) else None
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    if target.dtype.kind == "f":
        target = target.astype(dtype)
    return logits.astype(dtype), target, None if weight is None else weight.astype(dtype)


@SETTINGS
@given(class_case(), st.sampled_from(["mean", "sum", "none"]), st.sampled_from([0.0, 0.1]))
def test_cross_entropy_random(case, reduction, label_smoothing):
    logits, target, weight = case
    check("cross_entropy", logits, target, weight=weight, reduction=reduction,
          label_smoothing=label_smoothing)


@SETTINGS
@given(class_case(), st.sampled_from(["mean", "sum", "none"]))
def test_nll_loss_random(case, reduction):
    logits, target, weight = case
    if target.dtype.kind == "f":
        target = target.argmax(axis=1)
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    check("nll_loss", log_probs, target, weight=weight, reduction=reduction)


@st.composite
def binary_case(draw, probabilities=True):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    if probabilities:
        values = rng.uniform(size=shape)
        special = rng.uniform(size=shape)
        values[special < 0.15] = 0.0
        values[special > 0.85] = 1.0
    else:
        values = rng.normal(scale=draw(st.sampled_from([1.0, 20.0])), size=shape)
    target = rng.integers(0, 2, size=shape).astype(float)
    if draw(st.booleans()):
        target = rng.uniform(size=shape)
    weight = rng.uniform(0.1, 2.0, size=shape[-1:]) if draw(st.booleans()) else None
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    return (values.astype(dtype), target.astype(dtype),
            None if weight is None else weight.astype(dtype))


@SETTINGS
@given(binary_case(), st.sampled_from(["mean", "sum", "none"]))
def test_binary_cross_entropy_random(case, reduction):
    # p exactly 0 and 1 included: the value clamps log at -100 and the gradient is
    # PyTorch's (p - t) / max(p (1 - p), 1e-12)
    probs, target, weight = case
    check("binary_cross_entropy", probs, target, weight=weight, reduction=reduction)


@SETTINGS
@given(binary_case(probabilities=False), st.sampled_from(["mean", "sum", "none"]), st.booleans())
def test_binary_cross_entropy_with_logits_random(case, reduction, use_pos_weight):
    logits, target, weight = case
    pos_weight = None
    if use_pos_weight:
        pos_weight = np.linspace(0.5, 3.0, logits.shape[-1]).astype(logits.dtype)
    check("binary_cross_entropy_with_logits", logits, target, weight=weight,
          reduction=reduction, pos_weight=pos_weight)


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.sampled_from(["none", "batchmean", "sum", "mean"]),
       st.booleans())
def test_kl_div_random(seed, reduction, log_target):
    rng = np.random.default_rng(seed)
    q = rng.dirichlet(np.ones(4), size=3)
    p = rng.dirichlet(np.ones(4), size=3)
    p[0, 0] = 0.0  # 0 log 0 = 0
    with np.errstate(divide="ignore"):
        target = np.log(p) if log_target else p
    check("kl_div", np.log(q), target, reduction=reduction, log_target=log_target)


# --- edge cases -------------------------------------------------------------------------


def test_all_ignored_mean_is_nan():
    logits = np.array([[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]])
    check("cross_entropy", logits, np.array([-100, -100]))
    check("cross_entropy", logits, np.array([-100, -100]), weight=np.array([1.0, 2.0, 3.0]))
    check("nll_loss", logits, np.array([-100, -100]))
    check("cross_entropy", logits, np.array([0, 0]), weight=np.array([0.0, 2.0, 3.0]))
    value = T.cross_entropy(logits, np.array([-100, -100]), reduction="sum")
    assert float(value) == 0.0


def test_weights_with_ignore_index_and_label_smoothing():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(5, 4))
    target = np.array([0, 3, -1, 2, -1])
    weight = np.array([0.2, 1.0, 3.0, 0.7])
    for reduction in ("mean", "sum", "none"):
        check("cross_entropy", logits, target, weight=weight, ignore_index=-1,
              label_smoothing=0.2, reduction=reduction)
    soft = rng.dirichlet(np.ones(4), size=5)
    check("cross_entropy", logits, soft, weight=weight, label_smoothing=0.2)


def test_k_dimensional_and_unbatched():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(2, 3, 4, 5))
    target = rng.integers(0, 3, size=(2, 4, 5))
    check("cross_entropy", logits, target, weight=np.array([1.0, 2.0, 0.5]))
    check("cross_entropy", logits, np.moveaxis(rng.dirichlet(np.ones(3), size=(2, 4, 5)), -1, 1))
    check("cross_entropy", logits[0, :, 0, 0], np.array(2))  # unbatched (C,)
    check("cross_entropy", logits[0, :, 0, 0], rng.dirichlet(np.ones(3)))


def test_minus_inf_logits():
    logits = np.array([[0.0, -np.inf, 1.0], [2.0, 1.0, -np.inf]])
    check("cross_entropy", logits, np.array([0, 1]))
    check("cross_entropy", logits, np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    check("cross_entropy", logits, np.array([0, 1]), label_smoothing=0.1, grad=False)
    targets = np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    check("binary_cross_entropy_with_logits", logits, targets, reduction="none")
    check("binary_cross_entropy_with_logits", -logits, targets, reduction="none")


def test_probabilities_exactly_zero_and_one():
    probs = np.array([0.0, 1.0, 0.0, 1.0, 1e-13, 0.5])
    target = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.3])
    for reduction in ("mean", "sum", "none"):
        check("binary_cross_entropy", probs, target, reduction=reduction)
        check("binary_cross_entropy", probs.astype(np.float32), target.astype(np.float32),
              reduction=reduction, weight=np.full(6, 2.0, dtype=np.float32))


def test_empty_batch_mean_is_nan():
    check("cross_entropy", np.zeros((0, 3)), np.zeros((0,), dtype=np.int64))
    check("binary_cross_entropy", np.zeros((0, 3)), np.zeros((0, 3)))
    check("binary_cross_entropy_with_logits", np.zeros((0, 3)), np.zeros((0, 3)))


def test_float16():
    logits = np.array([[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]], dtype=np.float16)
    check("cross_entropy", logits, np.array([2, 1]))
    check("cross_entropy", logits, np.array([2, -100]), label_smoothing=0.1)
    check("binary_cross_entropy_with_logits", logits, (logits > 0.5).astype(np.float16))
    check("binary_cross_entropy", logits / 2, (logits > 0.5).astype(np.float16))


def test_legacy_flags_override_reduction():
    logits = np.array([[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]])
    check("cross_entropy", logits, np.array([2, 1]), reduce=False)
    check("cross_entropy", logits, np.array([2, 1]), size_average=False)


def test_nll_loss_refuses_probabilities():
    with pytest.raises(TypeError, match="integer class indices for nll_loss"):
        T.nll_loss([[-0.1, -2.3]], [[1.0, 0.0]])
