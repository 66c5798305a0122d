"""Edge values of the compat adapters, each against the real framework: infinite logits,
zero class weights at -inf, uint8 class indices, zero classes.

Every expected value is the framework's own output on the same input (NaN where the
framework's formula meets 0·∞ or ∞ - ∞), never crossent's.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from crossent.compat import optax as O
from crossent.compat import tf as TF
from crossent.compat import torch as T

from .conftest import require

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
torch = require("torch")
F = torch.nn.functional
INF = math.inf


def same(ours, expected):
    """Equal values with NaN at the same places (NaN == NaN here), float64 tolerance."""
    ours = np.asarray(ours.detach() if hasattr(ours, "detach") else ours, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=0, equal_nan=True)


# --- TensorFlow ------------------------------------------------------------------------

SIGMOID_LABELS = np.array([0.0, 1.0, 0.5, 0.0, 1.0, 0.5])
SIGMOID_LOGITS = np.array([INF, INF, INF, -INF, -INF, -INF])


@pytest.mark.parametrize("name", ["sigmoid_cross_entropy_with_logits",
                                  "weighted_cross_entropy_with_logits"])
def test_tf_sigmoid_forms_at_infinite_logits(name):
    tf = require("tensorflow")
    extra = {"pos_weight": 2.0} if name.startswith("weighted") else {}
    expected = getattr(tf.nn, name)(labels=SIGMOID_LABELS, logits=SIGMOID_LOGITS, **extra)
    same(getattr(TF, name)(SIGMOID_LABELS, SIGMOID_LOGITS, **extra), expected.numpy())


def test_tf_sigmoid_label_zero_plus_inf_is_nan():
    # max(x, 0) - x·z + log1p(exp(-|x|)) at x = +inf, z = 0: inf - inf·0 = NaN in TF
    tf = require("tensorflow")
    expected = tf.nn.sigmoid_cross_entropy_with_logits(labels=[0.0], logits=[INF]).numpy()
    assert np.isnan(expected).all()
    assert np.isnan(TF.sigmoid_cross_entropy_with_logits([0.0], [INF])).all()


ROWS = np.array([[1.0, INF, 0.0], [1.0, 2.0, INF], [-INF, 2.0, 0.5], [0.3, 0.2, 0.1]])
TARGETS = np.array([0, 2, 1, 0])


def test_tf_softmax_forms_with_infinite_logits():
    tf = require("tensorflow")
    onehot = np.eye(3)[TARGETS]
    same(TF.softmax_cross_entropy_with_logits(onehot, ROWS),
         tf.nn.softmax_cross_entropy_with_logits(labels=onehot, logits=ROWS).numpy())
    same(TF.sparse_softmax_cross_entropy_with_logits(TARGETS, ROWS),
         tf.nn.sparse_softmax_cross_entropy_with_logits(labels=TARGETS, logits=ROWS).numpy())


def test_tf_softmax_zero_classes():
    tf = require("tensorflow")
    empty = np.zeros((2, 0))
    same(TF.softmax_cross_entropy_with_logits(empty, empty),
         tf.nn.softmax_cross_entropy_with_logits(labels=empty, logits=empty).numpy())


# --- optax -----------------------------------------------------------------------------


def test_optax_softmax_forms_with_infinite_logits():
    optax = require("optax")
    jnp = require("jax.numpy")
    onehot = np.eye(3)[TARGETS]
    expected = optax.softmax_cross_entropy(jnp.asarray(ROWS), jnp.asarray(onehot))
    same(O.softmax_cross_entropy(ROWS, onehot), np.asarray(expected))
    expected = optax.softmax_cross_entropy_with_integer_labels(
        jnp.asarray(ROWS), jnp.asarray(TARGETS))
    same(O.softmax_cross_entropy_with_integer_labels(ROWS, TARGETS), np.asarray(expected))


def test_optax_sigmoid_at_infinite_logits():
    optax = require("optax")
    jnp = require("jax.numpy")
    expected = optax.sigmoid_binary_cross_entropy(jnp.asarray(SIGMOID_LOGITS),
                                                  jnp.asarray(SIGMOID_LABELS))
    same(O.sigmoid_binary_cross_entropy(SIGMOID_LOGITS, SIGMOID_LABELS), np.asarray(expected))


@pytest.mark.parametrize("labels", [[0, 1], [0, -1], [5, 0]])
def test_optax_zero_classes_with_integer_labels(labels):
    # logsumexp over no class: optax gives -inf for every example, whatever its label
    optax = require("optax")
    jnp = require("jax.numpy")
    empty = np.zeros((2, 0), dtype=np.float32)
    expected = optax.softmax_cross_entropy_with_integer_labels(
        jnp.asarray(empty), jnp.asarray(labels))
    same(O.softmax_cross_entropy_with_integer_labels(empty, np.array(labels)),
         np.asarray(expected))


def test_optax_zero_examples_and_zero_classes_with_probability_labels():
    optax = require("optax")
    jnp = require("jax.numpy")
    for shape in [(0, 3), (2, 0)]:
        empty = np.zeros(shape, dtype=np.float32)
        expected = optax.softmax_cross_entropy(jnp.asarray(empty), jnp.asarray(empty))
        same(O.softmax_cross_entropy(empty, empty), np.asarray(expected))


@pytest.mark.parametrize("axis", [5, -3, (0, 5)])
def test_optax_axis_out_of_range_raises_as_optax(axis):
    optax = require("optax")
    jnp = require("jax.numpy")
    logits, labels = np.array([[1.0, 2.0]]), np.array([[1.0, 0.0]])
    with pytest.raises(ValueError, match="out of bounds"):
        optax.softmax_cross_entropy(jnp.asarray(logits), jnp.asarray(labels), axis=axis)
    bad = axis if isinstance(axis, int) else 5
    with pytest.raises(ValueError, match=f"axis {bad} is out of bounds for array of dimension 2"):
        O.softmax_cross_entropy(logits, labels, axis=axis)
    if isinstance(axis, int):
        with pytest.raises(ValueError, match=f"axis {axis} is out of bounds"):
            O.softmax_cross_entropy_with_integer_labels(logits, np.array([0]), axis=axis)


# --- PyTorch ---------------------------------------------------------------------------

MINUS_INF_ROW = torch.tensor([[-INF, 1.0, 2.0], [0.5, -INF, 0.1]], dtype=torch.float64)
ZERO_WEIGHT = torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("case", ["smoothing", "soft", "soft+smoothing", "plain"])
def test_torch_minus_inf_times_zero_class_weight(case, reduction):
    # a -inf logit at a class of weight 0: aten multiplies 0 · (-inf) (PyTorch NaN)
    soft = torch.tensor([[0.0, 0.5, 0.5], [0.2, 0.0, 0.8]], dtype=torch.float64)
    target = soft if case.startswith("soft") else torch.tensor([1, 2])
    kwargs = {"weight": ZERO_WEIGHT, "reduction": reduction,
              "label_smoothing": 0.1 if "smoothing" in case else 0.0}
    same(T.cross_entropy(MINUS_INF_ROW, target, **kwargs),
         F.cross_entropy(MINUS_INF_ROW, target, **kwargs))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_torch_nll_loss_zero_weight_at_minus_inf(reduction):
    target = torch.tensor([0, 1])
    same(T.nll_loss(MINUS_INF_ROW, target, weight=ZERO_WEIGHT, reduction=reduction),
         F.nll_loss(MINUS_INF_ROW, target, weight=ZERO_WEIGHT, reduction=reduction))


def test_torch_plus_inf_logit_off_the_target():
    rows = torch.tensor(ROWS)
    for reduction in ("none", "mean"):
        same(T.cross_entropy(rows, torch.tensor(TARGETS), reduction=reduction),
             F.cross_entropy(rows, torch.tensor(TARGETS), reduction=reduction))


def test_torch_single_class_rows_of_minus_inf():
    logits = torch.tensor([[-INF], [1.0], [-INF]], dtype=torch.float64)
    target = torch.tensor([0, 0, 0])
    for reduction in ("none", "mean", "sum"):
        same(T.cross_entropy(logits, target, reduction=reduction),
             F.cross_entropy(logits, target, reduction=reduction))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_torch_uint8_class_indices_with_weight(reduction):
    logits = torch.tensor([[1.0, 2.0, 0.5], [0.1, 0.2, 0.3]])
    target = torch.tensor([1, 2], dtype=torch.uint8)
    weight = torch.tensor([1.0, 2.0, 0.5])
    same(T.cross_entropy(logits, target, weight=weight, reduction=reduction),
         F.cross_entropy(logits, target, weight=weight, reduction=reduction))
    same(T.nll_loss(logits, target, weight=weight, reduction=reduction),
         F.nll_loss(logits, target, weight=weight, reduction=reduction))


def test_torch_bce_with_logits_at_infinite_logits():
    logits, target = torch.tensor(SIGMOID_LOGITS), torch.tensor(SIGMOID_LABELS)
    same(T.binary_cross_entropy_with_logits(logits, target, reduction="none"),
         F.binary_cross_entropy_with_logits(logits, target, reduction="none"))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_torch_zero_classes(reduction):
    empty = torch.zeros((2, 0))
    same(T.cross_entropy(empty, empty, reduction=reduction),
         F.cross_entropy(empty, empty, reduction=reduction))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_torch_zero_examples(reduction):
    # no example: PyTorch's 'mean' is NaN (0 / 0), its 'sum' 0, its 'none' empty
    logits, target = torch.zeros((0, 3)), torch.zeros(0, dtype=torch.int64)
    same(T.cross_entropy(logits, target, reduction=reduction),
         F.cross_entropy(logits, target, reduction=reduction))
    probs = torch.zeros(0)
    same(T.binary_cross_entropy(probs, probs, reduction=reduction),
         F.binary_cross_entropy(probs, probs, reduction=reduction))


KL_INPUT = torch.tensor([[-1.0, -2.0, -INF], [-0.5, -1.0, -3.0]], dtype=torch.float64)


@pytest.mark.parametrize("reduction", ["none", "sum", "batchmean", "mean"])
@pytest.mark.parametrize("target, log_target", [
    ([[3.0, 5.0, 0.0], [0.0, 1.0, 2.0]], False),       # counts, unnormalised, 0 at -inf
    ([[0.5, 1.0, -INF], [2.0, -1.0, 0.0]], True),      # log-targets above 0, and -inf
    ([[-0.5, 1.0, 0.0], [1.0, 1.0, 1.0]], False),      # a negative target: PyTorch NaN
])
def test_torch_kl_div_takes_the_targets_pytorch_takes(target, log_target, reduction):
    import warnings

    target = torch.tensor(target, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 'mean' warns in both
        same(T.kl_div(KL_INPUT, target, reduction=reduction, log_target=log_target),
             F.kl_div(KL_INPUT, target, reduction=reduction, log_target=log_target))
