"""crossent.compat.optax against optax itself, on JAX arrays with jax.grad (and torch)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from crossent.compat import optax as O

from ._compare import assert_close, jax_value_and_grad, torch_value_and_grad
from .conftest import require

jax = require("jax")
optax = require("optax")
jnp = jax.numpy

SETTINGS = settings(max_examples=15, deadline=None)
SHAPE = (3, 4)  # one shape for the random tests: each new shape recompiles JAX primitives


def check(name, logits, labels, *, grad=True, **kwargs):
    """Same value, dtype and logits-gradient as optax.losses.<name>, on JAX and torch arrays."""
    logits, labels = np.asarray(logits), np.asarray(labels)
    jax_kwargs = {k: jnp.asarray(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    reference = getattr(optax.losses, name)

    def expected_fn(x, t):
        return reference(x, t, **jax_kwargs)

    def actual_fn(x, t):
        return getattr(O, name)(x, t, **kwargs)

    grad_of = "first" if grad else None
    expected, expected_grad = jax_value_and_grad(expected_fn, logits, labels, grad_of=grad_of)
    actual, actual_grad = jax_value_and_grad(actual_fn, logits, labels, grad_of=grad_of)
    what = f"optax.losses.{name}({kwargs})"
    assert actual.dtype == expected.dtype, what
    assert_close(actual, expected, logits.dtype, what)
    if grad:
        assert_close(actual_grad, expected_grad, logits.dtype, f"{what}: grad")
    if require("torch") is not None and labels.dtype.kind != "b":
        on_torch, torch_grad = torch_value_and_grad(actual_fn, logits, labels, grad_of=grad_of)
        assert_close(on_torch, expected, logits.dtype, f"{what}: torch")
        if grad:
            assert_close(torch_grad, expected_grad, logits.dtype, f"{what}: torch grad")


@st.composite
def logits_labels(draw, kind):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    logits = rng.normal(scale=draw(st.sampled_from([1.0, 20.0])), size=SHAPE)
    if kind == "integer":
        labels = rng.integers(0, SHAPE[1], size=SHAPE[0])
    elif kind == "probabilities":
        labels = rng.dirichlet(np.ones(SHAPE[1]), size=SHAPE[0])
    else:
        labels = rng.integers(0, 2, size=SHAPE).astype(float)
        if draw(st.booleans()):
            labels = rng.uniform(size=SHAPE)
    return logits, labels


@st.composite
def class_mask(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    mask = rng.uniform(size=SHAPE) < 0.7
    mask[:, 0] = True
    return mask


@SETTINGS
@given(logits_labels("probabilities"), st.none() | class_mask())
def test_softmax_cross_entropy_random(case, where):
    logits, labels = case
    check("softmax_cross_entropy", logits, labels, where=where)


@SETTINGS
@given(logits_labels("integer"), st.booleans())
def test_softmax_cross_entropy_with_integer_labels_random(case, masked):
    logits, labels = case
    where = None
    if masked:  # mask classes other than each example's label (optax picks the label anyway)
        where = np.random.default_rng(len(labels)).uniform(size=SHAPE) < 0.6
        where[np.arange(SHAPE[0]), labels] = True
    check("softmax_cross_entropy_with_integer_labels", logits, labels, where=where)


@SETTINGS
@given(logits_labels("binary"))
def test_sigmoid_binary_cross_entropy_random(case):
    check("sigmoid_binary_cross_entropy", *case)


@SETTINGS
@given(logits_labels("binary"), st.sampled_from([None, 0.25]), st.sampled_from([0.0, 1.0, 2.0]))
def test_sigmoid_focal_loss_random(case, alpha, gamma):
    check("sigmoid_focal_loss", *case, alpha=alpha, gamma=gamma)


def test_example_mask_and_tuple_axis():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=SHAPE)
    labels = rng.dirichlet(np.ones(4), size=3)
    check("softmax_cross_entropy", logits, labels, where=np.array([True, False, True]))
    check("softmax_cross_entropy_with_integer_labels", logits, np.array([0, 3, 1]),
          where=np.array([True, False, True]))
    cube = rng.normal(size=(2, 3, 4))
    check("softmax_cross_entropy_with_integer_labels", cube, np.array([5, 11]), axis=(1, 2))
    check("softmax_cross_entropy", cube, rng.dirichlet(np.ones(12), size=2).reshape(2, 3, 4),
          axis=(1, 2))
    check("softmax_cross_entropy", np.moveaxis(cube, -1, 0), np.moveaxis(
        rng.dirichlet(np.ones(4), size=(2, 3)), -1, 0), axis=0)


def test_minus_inf_logits():
    logits = np.array([[0.0, -np.inf, 1.0, 2.0], [2.0, 1.0, -np.inf, 0.5]])
    check("softmax_cross_entropy", logits, np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))
    check("softmax_cross_entropy_with_integer_labels", logits, np.array([0, 1]))
    check("sigmoid_binary_cross_entropy", logits, (logits > 0.5).astype(float), grad=False)
    check("sigmoid_focal_loss", logits, (logits > 0.5).astype(float), grad=False)


def test_float16_and_broadcast_labels():
    logits = np.array([[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]], dtype=np.float16)
    check("softmax_cross_entropy_with_integer_labels", logits, np.array([2, 1]), grad=False)
    check("sigmoid_binary_cross_entropy", logits, np.array([1.0, 0.0, 1.0], dtype=np.float16),
          grad=False)
    check("sigmoid_binary_cross_entropy", np.array([[0.4], [-1.0]]), np.array([[1.0, 0.0]]))


def test_zero_classes():
    # an empty class axis (optax's own test masks every class away about once in 32 runs):
    # no class contributes, so each position's loss is 0
    for shape in [(0,), (3, 0)]:
        empty = np.zeros(shape)
        check("softmax_cross_entropy", empty, empty, grad=False)
