"""Bad input: every argument check of the core, with its message matched.

Each message names the argument, the value found and what was expected. The
same checks run for NumPy, torch and JAX inputs; under ``jax.jit`` (abstract
values) value checks are skipped, as documented.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import crossent as ce
from crossent import grad
from crossent import information as info
from crossent_testing import jax, jnp, requires_jax, torch

LOGITS = np.zeros((2, 3))
TARGET = np.array([0, 1])
CLASS_LOSSES = [ce.cross_entropy, ce.nll_loss, ce.softmax_focal_loss,
                grad.cross_entropy, grad.nll_loss, grad.softmax_focal_loss]


def _libraries():
    libraries = [("numpy", np.asarray)]
    if torch is not None:
        libraries.append(("torch", torch.as_tensor))
    if jnp is not None:
        libraries.append(("jax", jnp.asarray))
    return libraries


LIBRARIES = _libraries()


# --- class index out of range or negative -------------------------------------------


@pytest.mark.parametrize("name, convert", LIBRARIES, ids=[n for n, _ in LIBRARIES])
@pytest.mark.parametrize("loss", CLASS_LOSSES, ids=lambda f: f"{f.__module__}.{f.__name__}")
def test_class_index_out_of_range(loss, name, convert) -> None:
    logits = convert(np.zeros((2, 3), dtype=np.float32))
    name = "log_probs" if loss.__name__ == "nll_loss" else "logits"
    with pytest.raises(ValueError, match=(
            rf"target contains class index 3, but {name} have 3 classes along axis 1; "
            r"expected indices in \[0, 2\]")):
        loss(logits, convert(np.array([0, 3])))


@pytest.mark.parametrize("name, convert", LIBRARIES, ids=[n for n, _ in LIBRARIES])
def test_negative_class_index(name, convert) -> None:
    logits = convert(np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=re.escape(
            "target contains negative class index -1, but logits have 3 classes along axis 1; "
            "expected indices in [0, 2] or ignore_index=-100")):
        ce.cross_entropy(logits, convert(np.array([0, -1])))
    # ... but a negative index equal to ignore_index is fine
    assert float(ce.cross_entropy(logits, convert(np.array([0, -1])), ignore_index=-1)) > 0


def test_out_of_range_index_names_the_class_axis_and_ignore_index() -> None:
    with pytest.raises(ValueError, match=re.escape(
            "target contains class index 7, but logits have 3 classes along axis 1; "
            "expected indices in [0, 2] or ignore_index=5")):
        ce.cross_entropy(np.zeros((2, 3, 4)), np.array([[0, 1, 2, 7], [5, 5, 5, 5]]), axis=1,
                         ignore_index=5)
    # softmax_focal_loss has no ignore_index, so -100 is out of range there
    with pytest.raises(ValueError, match=r"negative class index -100.*expected indices in "
                                         r"\[0, 2\]$"):
        ce.softmax_focal_loss(LOGITS, np.array([0, -100]))


# --- non-integer class targets, shape mismatches --------------------------------------


def test_non_integer_class_targets() -> None:
    with pytest.raises(TypeError, match=re.escape(
            "target of shape (2,) holds class indices and must have an integer dtype, got "
            "float64; convert it (e.g. target.astype(int64)) or pass probabilities of shape "
            "(2, 3)")):
        ce.cross_entropy(LOGITS, np.array([0.0, 1.0]))
    with pytest.raises(TypeError, match="target has the shape \\(2, 3\\) of logits, so it is read "
                                        "as probabilities, but its dtype is int64"):
        ce.cross_entropy(LOGITS, np.zeros((2, 3), dtype=np.int64))


@pytest.mark.parametrize("loss", CLASS_LOSSES, ids=lambda f: f"{f.__module__}.{f.__name__}")
def test_class_target_shape_mismatch(loss) -> None:
    name = "log_probs" if loss.__name__ == "nll_loss" else "logits"
    with pytest.raises(ValueError, match=re.escape(
            f"target has shape (3,), but {name} has shape (2, 3) with classes along axis 1; "
            "expected class indices of shape (2,) or probabilities of shape (2, 3)")):
        loss(LOGITS, np.array([0, 1, 2]))


@pytest.mark.parametrize("loss", [ce.binary_cross_entropy, ce.binary_cross_entropy_with_logits,
                                  ce.sigmoid_focal_loss, grad.binary_cross_entropy])
def test_element_target_shape_mismatch(loss) -> None:
    name = "probs" if loss.__name__ == "binary_cross_entropy" else "logits"
    with pytest.raises(ValueError, match=re.escape(
            f"target has shape (3, 2), but {name} has shape (2, 3); expected the same shape")):
        loss(np.full((2, 3), 0.5), np.zeros((3, 2)))


def test_where_mask_errors() -> None:
    with pytest.raises(TypeError, match="where must be a boolean mask, got dtype int64"):
        ce.cross_entropy(LOGITS, TARGET, where=np.array([1, 0]))
    with pytest.raises(ValueError, match=re.escape(
            "where has shape (3,), which does not broadcast to the shape (2,)")):
        ce.cross_entropy(LOGITS, TARGET, where=np.array([True, False, True]))
    with pytest.raises(ValueError, match=re.escape(
            "where has shape (2,), which does not broadcast to the shape (2, 3) of logits")):
        ce.binary_cross_entropy_with_logits(LOGITS, LOGITS, where=np.array([True, False]))


# --- probabilities outside [0, 1] ----------------------------------------------------


@pytest.mark.parametrize("name, convert", LIBRARIES, ids=[n for n, _ in LIBRARIES])
def test_probabilities_outside_unit_interval(name, convert) -> None:
    half = convert(np.full(2, 0.5, dtype=np.float32))
    with pytest.raises(ValueError, match=re.escape(
            "probs must contain probabilities in [0, 1], found 1.5; if these are logits, "
            "use binary_cross_entropy_with_logits")):
        ce.binary_cross_entropy(convert(np.array([1.5, 0.5], dtype=np.float32)), half)
    with pytest.raises(ValueError, match=r"probs must contain probabilities in \[0, 1\], "
                                         r"found -0\.25"):
        grad.binary_cross_entropy(convert(np.array([0.5, -0.25], dtype=np.float32)), half)
    with pytest.raises(ValueError, match=r"target must contain probabilities in \[0, 1\], "
                                         r"found 2"):
        ce.binary_cross_entropy(half, convert(np.array([0.0, 2.0], dtype=np.float32)))


def test_information_rejects_non_probabilities() -> None:
    with pytest.raises(ValueError, match=r"p must contain probabilities in \[0, 1\], found 1.2"):
        info.entropy([1.2, -0.2])
    with pytest.raises(ValueError, match=r"q must contain probabilities in \[0, 1\], found -0.5"):
        info.kl_divergence([0.5, 0.5], [1.5, -0.5][::-1])
    with pytest.raises(ValueError, match=re.escape(
            "q has shape (3,), but p has shape (2,); expected the same shape")):
        info.cross_entropy([0.5, 0.5], [1 / 3, 1 / 3, 1 / 3])
    with pytest.raises(ValueError, match=re.escape(
            "base must be a positive number other than 1 (math.e for nats, 2 for bits), got 1")):
        info.entropy([0.5, 0.5], base=1)


# --- label_smoothing, reduction, option types ---------------------------------------


@pytest.mark.parametrize("value", [1.5, -0.1])
@pytest.mark.parametrize("loss", [ce.cross_entropy, ce.binary_cross_entropy_with_logits,
                                  grad.cross_entropy])
def test_label_smoothing_outside_unit_interval(loss, value) -> None:
    target = TARGET if loss.__name__ == "cross_entropy" else LOGITS
    message = f"label_smoothing must be in [0, 1], got {value}"
    with pytest.raises(ValueError, match=re.escape(message)):
        loss(LOGITS, target, label_smoothing=value)


def test_label_smoothing_of_wrong_type() -> None:
    with pytest.raises(TypeError, match="label_smoothing must be a number in \\[0, 1\\], got 'a'"):
        ce.cross_entropy(LOGITS, TARGET, label_smoothing="a")
    with pytest.raises(TypeError, match="label_smoothing must be a number in \\[0, 1\\], got nan"):
        ce.cross_entropy(LOGITS, TARGET, label_smoothing=float("nan"))


@pytest.mark.parametrize("loss, target", [
    (ce.cross_entropy, TARGET), (ce.nll_loss, TARGET), (ce.softmax_focal_loss, TARGET),
    (ce.binary_cross_entropy, np.full((2, 3), 0.5)),
    (ce.binary_cross_entropy_with_logits, LOGITS), (ce.sigmoid_focal_loss, LOGITS),
    (grad.cross_entropy, TARGET)])
def test_unknown_reduction(loss, target) -> None:
    first = np.full((2, 3), 0.5)
    with pytest.raises(ValueError, match=re.escape(
            "reduction must be one of 'none', 'mean', 'sum', got 'avg'")):
        loss(first, target, reduction="avg")


def test_other_option_errors() -> None:
    with pytest.raises(TypeError, match="ignore_index must be an int, got 1.5"):
        ce.cross_entropy(LOGITS, TARGET, ignore_index=1.5)
    with pytest.raises(ValueError, match=re.escape(
            "axis 2 is out of range for logits with 2 dimension(s); expected an axis in [-2, 1]")):
        ce.cross_entropy(LOGITS, TARGET, axis=2)
    with pytest.raises(TypeError, match="axis must be an int, got 1.0"):
        ce.softmax(LOGITS, axis=1.0)
    with pytest.raises(ValueError, match="logits must have at least one dimension"):
        ce.softmax(np.float64(1.0))
    with pytest.raises(ValueError, match="gamma must be >= 0, got -1"):
        ce.sigmoid_focal_loss(LOGITS, LOGITS, gamma=-1)
    with pytest.raises(ValueError, match=re.escape("alpha must be in [0, 1], got 2")):
        ce.sigmoid_focal_loss(LOGITS, LOGITS, alpha=2)
    with pytest.raises(TypeError, match="value_and_grad supports crossent's losses .* got "
                                        "<function sum"):
        ce.value_and_grad(np.sum, LOGITS)


# --- integer logits ---------------------------------------------------------------------


@pytest.mark.parametrize("name, convert", LIBRARIES, ids=[n for n, _ in LIBRARIES])
@pytest.mark.parametrize("function, args", [
    (ce.cross_entropy, (TARGET,)), (ce.softmax_focal_loss, (TARGET,)),
    (ce.binary_cross_entropy_with_logits, (np.zeros((2, 3)),)),
    (ce.sigmoid_focal_loss, (np.zeros((2, 3)),)), (ce.softmax, ()), (ce.log_softmax, ()),
    (ce.sigmoid, ()), (ce.log_sigmoid, ())])
def test_integer_logits(function, args, name, convert) -> None:
    logits = convert(np.zeros((2, 3), dtype=np.int32))
    with pytest.raises(TypeError, match=r"logits must have a floating-point dtype, got "
                                        r"(torch\.)?int32; convert it first .* integer logits "
                                        r"are often class targets passed in the wrong position"):
        function(logits, *[convert(a) for a in args])


def test_integer_log_probs_and_probs() -> None:
    with pytest.raises(TypeError, match="log_probs must have a floating-point dtype, got int64"):
        ce.nll_loss(np.zeros((2, 3), dtype=np.int64), TARGET)
    with pytest.raises(TypeError, match="probs must have a floating-point dtype, got int64"):
        ce.binary_cross_entropy(np.zeros((2, 3), dtype=np.int64), np.zeros((2, 3)))
    # a Python list of ints has no dtype intent and is read as floats
    assert float(ce.cross_entropy([[0, 0, 0]], [1])) == pytest.approx(np.log(3))


# --- weight of the wrong length ------------------------------------------------------


@pytest.mark.parametrize("loss", [ce.cross_entropy, ce.nll_loss, grad.cross_entropy])
@pytest.mark.parametrize("weight_shape", [(4,), (2,), (1, 3)])
def test_class_weight_of_wrong_length(loss, weight_shape) -> None:
    with pytest.raises(ValueError, match=re.escape(
            f"weight must have shape (3,), one entry per class along axis 1, got shape "
            f"{weight_shape}")):
        loss(LOGITS, TARGET, weight=np.ones(weight_shape))


def test_other_weights_of_wrong_shape() -> None:
    with pytest.raises(ValueError, match=re.escape(
            "alpha must have shape (3,), one entry per class along axis 1, got shape (2,)")):
        ce.softmax_focal_loss(LOGITS, TARGET, alpha=np.ones(2))
    with pytest.raises(ValueError, match=re.escape(
            "pos_weight has shape (4,), which does not broadcast to the shape (2, 3) of the "
            "loss")):
        ce.binary_cross_entropy_with_logits(LOGITS, LOGITS, pos_weight=np.ones(4))
    with pytest.raises(ValueError, match=re.escape(
            "weight has shape (2,), which does not broadcast to the shape (2, 3) of the loss")):
        ce.binary_cross_entropy(np.full((2, 3), 0.5), LOGITS, weight=np.ones(2))
    with pytest.raises(TypeError, match="weight must have a floating-point dtype, got int64"):
        ce.cross_entropy(LOGITS, TARGET, weight=np.ones(3, dtype=np.int64))


# --- NaN propagates; checks are skipped under jax.jit --------------------------------


def test_nan_is_not_an_error() -> None:
    # NaN passes the [0, 1] check (it is not a probability outside the interval) and propagates
    assert np.isnan(ce.binary_cross_entropy(np.array([np.nan]), np.array([1.0])))
    assert np.isnan(float(info.entropy([np.nan, 0.5])))
    assert np.isnan(ce.cross_entropy(np.array([[np.nan, 0.0]]), np.array([0])))


@requires_jax
def test_value_checks_are_skipped_under_jit() -> None:
    # documented: a traced value cannot be inspected; an out-of-range class index makes its
    # row (and so the mean) NaN, as optax gives, never a silently "ignored" row
    out_of_range = jax.jit(lambda z, y: ce.cross_entropy(z, y))(jnp.zeros((2, 3)),
                                                                 jnp.array([0, 7]))
    assert np.isnan(float(out_of_range))
    # shape and dtype errors are static and still raised under jit
    with pytest.raises(ValueError, match="target has shape \\(3,\\), but logits has shape"):
        jax.jit(lambda z, y: ce.cross_entropy(z, y))(jnp.zeros((2, 3)), jnp.array([0, 1, 2]))
    with pytest.raises(ValueError, match="reduction must be one of"):
        jax.jit(lambda z, y: ce.cross_entropy(z, y, reduction="avg"))(jnp.zeros((2, 3)),
                                                                      jnp.array([0, 1]))
