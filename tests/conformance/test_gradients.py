"""Derivatives w.r.t. every argument a framework differentiates, first and second order.

For each loss, crossent's adapter and the framework's own function are differentiated
by the same code (``_derivatives.derivatives``) w.r.t. the inputs, the targets, the
weights and the hyperparameters the framework differentiates: the gradient of a
weighted sum of the outputs and a row of mixed second derivatives along a random
direction. Inputs mix in exact 0s and 1s (one-hot and zero targets, zero class
weights, probabilities of exactly 0 and 1), where zero-safe products used to lose
the derivative in their coefficient.

- PyTorch: ``crossent.compat.torch`` against ``torch.nn.functional`` (torch autograd);
- optax: ``crossent.compat.optax`` against ``optax.losses`` (``jax.grad``, also w.r.t.
  ``alpha`` and ``gamma``);
- Keras: ``crossent.compat.keras`` on TensorFlow tensors under ``tf.GradientTape`` here,
  against Keras's own losses under ``tf.GradientTape`` in the TensorFlow-backend worker;
- TensorFlow: ``crossent.compat.tf`` against ``tf.nn`` (both under ``tf.GradientTape``).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ._compare import tolerance
from ._derivatives import _probes, derivatives
from .conftest import keras_worker, require

SETTINGS = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# JAX compiles each new function (jit): fewer examples
JAX_SETTINGS = settings(SETTINGS, max_examples=4)
SHAPE = (3, 4)


def compare(ours, theirs, dtype, what):
    """Same value, gradients and second derivatives (``_derivatives`` results)."""
    rtol, atol = tolerance(dtype)
    pairs = [("value", ours["value"], theirs["value"])] + [
        (f"{part}[{name}]", ours[part][name], theirs[part][name])
        for part in ("grad", "second") for name in theirs[part]]
    for label, actual, expected in pairs:
        assert np.shape(actual) == np.shape(expected), f"{what}: {label} shape"
        np.testing.assert_allclose(
            np.asarray(actual, np.float64), np.asarray(expected, np.float64), rtol=rtol,
            atol=atol, equal_nan=True, err_msg=f"{what}: {label}")


# --- random inputs with exact 0s and 1s ------------------------------------------------------

@st.composite
def case(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    logits = rng.normal(scale=draw(st.sampled_from([1.0, 4.0])), size=SHAPE)
    soft = rng.dirichlet(np.ones(SHAPE[1]), size=SHAPE[0])
    soft[0] = np.eye(SHAPE[1])[rng.integers(SHAPE[1])]  # a one-hot row: exact 0s and a 1
    soft[1, rng.integers(SHAPE[1])] = 0.0  # a zero entry in a soft row
    binary = rng.uniform(size=SHAPE)
    binary[rng.uniform(size=SHAPE) < 0.5] = 0.0
    binary[rng.uniform(size=SHAPE) < 0.3] = 1.0
    probs = rng.uniform(0.02, 0.98, size=SHAPE)
    weight = rng.uniform(0.2, 2.0, size=SHAPE[1])
    weight[rng.integers(SHAPE[1])] = 0.0  # a class of weight 0
    return {"logits": logits, "soft": soft, "binary": binary, "probs": probs,
            "weight": weight, "index": rng.integers(0, SHAPE[1], size=SHAPE[0]),
            "smoothing": draw(st.sampled_from([0.0, 0.1])),
            "reduction": draw(st.sampled_from(["mean", "sum", "none"]))}


# --- PyTorch --------------------------------------------------------------------------------

def torch_pair(name):
    torch = require("torch")
    from crossent.compat import torch as T

    return getattr(T, name), getattr(torch.nn.functional, name)


@SETTINGS
@given(case())
def test_torch_cross_entropy(data):
    ours, theirs = torch_pair("cross_entropy")
    options = dict(reduction=data["reduction"], label_smoothing=data["smoothing"])
    soft = {"input": data["logits"], "target": data["soft"], "weight": data["weight"]}
    # probability targets: derivatives w.r.t. input, target and weight
    results = [derivatives("torch", lambda f=f, **a: f(**a, **options), soft,
                           ("input", "target", "weight")) for f in (ours, theirs)]
    compare(*results, np.float64, f"cross_entropy, probabilities {options}")
    hard = {"input": data["logits"], "target": data["index"], "weight": data["weight"]}
    results = [derivatives("torch", lambda f=f, **a: f(**a, **options), hard, ("input",))
               for f in (ours, theirs)]
    compare(*results, np.float64, f"cross_entropy, class indices {options}")


@SETTINGS
@given(case())
def test_torch_binary_losses(data):
    reduction = data["reduction"]
    ours, theirs = torch_pair("binary_cross_entropy_with_logits")
    arrays = {"input": data["logits"], "target": data["binary"],
              "weight": data["weight"][None, :] + 0.0, "pos_weight": data["weight"] + 0.5}
    results = [derivatives("torch", lambda f=f, **a: f(**a, reduction=reduction), arrays,
                           ("input", "target")) for f in (ours, theirs)]
    compare(*results, np.float64, f"binary_cross_entropy_with_logits({reduction})")
    ours, theirs = torch_pair("binary_cross_entropy")
    probs = data["probs"].copy()
    probs[0, :2] = [0.0, 1.0]  # the clamped logs: PyTorch's 1e-12 guard in every derivative
    arrays = {"input": probs, "target": data["binary"]}
    results = [derivatives("torch", lambda f=f, **a: f(**a, weight=None, reduction=reduction),
                           arrays, ("input", "target")) for f in (ours, theirs)]
    compare(*results, np.float64, f"binary_cross_entropy({reduction})")


@SETTINGS
@given(case())
def test_torch_nll_and_kl(data):
    reduction = data["reduction"]
    log_probs = data["logits"] - np.log(np.exp(data["logits"]).sum(-1, keepdims=True))
    ours, theirs = torch_pair("nll_loss")
    results = [derivatives("torch", lambda f=f, **a: f(**a, reduction=reduction),
                           {"input": log_probs, "target": data["index"]}, ("input",))
               for f in (ours, theirs)]
    compare(*results, np.float64, f"nll_loss({reduction})")
    ours, theirs = torch_pair("kl_div")
    kl_reduction = "batchmean" if reduction == "mean" else reduction
    target = data["soft"] * 0.9 + 0.02  # (at a target of 0 PyTorch's derivative is NaN, as here)
    results = [derivatives("torch", lambda f=f, **a: f(**a, reduction=kl_reduction),
                           {"input": log_probs, "target": target}, ("input", "target"))
               for f in (ours, theirs)]
    compare(*results, np.float64, f"kl_div({kl_reduction})")


# --- optax ----------------------------------------------------------------------------------

def optax_pair(name):
    require("jax")
    optax = require("optax")
    from crossent.compat import optax as O

    return getattr(O, name), getattr(optax.losses, name)


@JAX_SETTINGS
@given(case())
def test_optax_losses(data):
    ours, theirs = optax_pair("softmax_cross_entropy")
    results = [derivatives("jax", f, {"logits": data["logits"], "labels": data["soft"]},
                           ("logits", "labels")) for f in (ours, theirs)]
    compare(*results, np.float64, "softmax_cross_entropy")
    ours, theirs = optax_pair("softmax_cross_entropy_with_integer_labels")
    results = [derivatives("jax", f, {"logits": data["logits"], "labels": data["index"]},
                           ("logits",)) for f in (ours, theirs)]
    compare(*results, np.float64, "softmax_cross_entropy_with_integer_labels")
    ours, theirs = optax_pair("sigmoid_binary_cross_entropy")
    results = [derivatives("jax", f, {"logits": data["logits"], "labels": data["binary"]},
                           ("logits", "labels")) for f in (ours, theirs)]
    compare(*results, np.float64, "sigmoid_binary_cross_entropy")


@JAX_SETTINGS
@given(case(), st.sampled_from([0.5, 1.0, 2.0]))
def test_optax_focal_loss_and_its_hyperparameters(data, gamma):
    """optax's derivatives w.r.t. logits, labels, alpha and gamma, with labels inside (0, 1).

    At labels of exactly 0 or 1 optax's own label gradient is not the derivative of its
    loss: its log-space focal factor uses ``logsumexp(..., b=[1 - labels, labels])``, and
    ``jax.nn.logsumexp`` drops the terms where ``b == 0`` before differentiating. There
    crossent's label gradient is checked against central differences of optax's values.
    """
    jax = require("jax")
    ours, theirs = optax_pair("sigmoid_focal_loss")
    interior = np.clip(data["binary"], 0.05, 0.95)
    arrays = {"logits": data["logits"], "labels": interior, "alpha": np.array(0.3),
              "gamma": np.array(gamma)}
    results = [derivatives("jax", f, arrays, ("logits", "labels", "alpha", "gamma"))
               for f in (ours, theirs)]
    compare(*results, np.float64, f"sigmoid_focal_loss(gamma={gamma})")
    arrays = dict(arrays, labels=data["binary"])  # exact 0s and 1s
    grad = derivatives("jax", ours, arrays, ("labels",))["grad"]["labels"]
    cotangent, _ = _probes(SHAPE, SHAPE, 0)
    with jax.enable_x64(True):
        def total(labels):
            return float(np.sum(np.asarray(theirs(data["logits"], labels, alpha=0.3,
                                                  gamma=gamma)) * cotangent))
        step = 1e-6
        central = np.zeros(SHAPE)
        for index in np.ndindex(SHAPE):
            up, down = data["binary"].copy(), data["binary"].copy()
            up[index] += step
            down[index] -= step
            central[index] = (total(up) - total(down)) / (2 * step)
    np.testing.assert_allclose(grad, central, rtol=1e-6, atol=1e-8,
                               err_msg="label gradient at exact 0 and 1 vs central differences")


# --- Keras on TensorFlow, tf.nn --------------------------------------------------------------

def tf_xent_mixed_second(slope=1.0):
    """d/d labels of ⟨v, c·(softmax - labels')⟩ = -slope·c·v, labels' = slope·labels + const.

    tf.nn.softmax_cross_entropy_with_logits's gradient function returns 0 for the
    derivative of its own logits gradient ``softmax - labels`` w.r.t. the labels; crossent
    gives the derivative of that gradient, compared here with this formula instead.
    """
    cotangent, direction = _probes(SHAPE[:1], SHAPE, 0)
    return -slope * cotangent[:, None] * direction


KERAS_CASES = [
    ("categorical_crossentropy", "soft", "probs_rows", {}),
    ("categorical_crossentropy", "soft", "logits", {"from_logits": True, "label_smoothing": 0.1}),
    ("binary_crossentropy", "binary", "probs", {}),
    ("binary_crossentropy", "binary", "logits", {"from_logits": True}),
    ("binary_focal_crossentropy", "binary", "probs", {"gamma": 1.5}),
    ("categorical_focal_crossentropy", "soft", "logits", {"from_logits": True}),
    ("kl_divergence", "soft", "probs_rows", {}),
]


@JAX_SETTINGS  # (fewer examples: seven losses, each a round trip to the worker)
@given(case())
def test_keras_on_tensorflow_gradient_tape(data):
    """crossent.compat.keras with TF tensors under GradientTape = Keras under GradientTape."""
    require("tensorflow")
    from crossent.compat import keras as K

    data = dict(data, probs_rows=data["probs"] / data["probs"].sum(-1, keepdims=True))
    for name, true_key, pred_key, kwargs in KERAS_CASES:
        arrays = {"y_true": data[true_key].astype(np.float32),
                  "y_pred": data[pred_key].astype(np.float32)}
        expected = keras_worker("tensorflow").request({"derivatives": {
            "name": name, "arrays": arrays, "wrt": ("y_pred", "y_true"), "kwargs": kwargs}})
        assert "error" not in expected, expected.get("traceback")
        actual = derivatives(
            "tensorflow", lambda y_true, y_pred, n=name, kw=kwargs: getattr(K, n)(
                y_true, y_pred, backend="tensorflow", **kw),
            arrays, ("y_pred", "y_true"))
        if kwargs.get("from_logits") and name == "categorical_crossentropy":
            slope = 1.0 - kwargs.get("label_smoothing", 0.0)  # d t' / d t
            expected["second"]["y_true"] = tf_xent_mixed_second(slope)
        compare(actual, expected, np.float32, f"keras.losses.{name}({kwargs})")


@pytest.mark.parametrize("name", ["softmax_cross_entropy_with_logits",
                                  "sigmoid_cross_entropy_with_logits"])
def test_tf_nn_gradient_tape(name):
    tf = require("tensorflow")
    from crossent.compat import tf as TF

    rng = np.random.default_rng(2)
    labels = rng.dirichlet(np.ones(4), size=3)
    labels[0] = [0.0, 1.0, 0.0, 0.0]
    arrays = {"labels": labels, "logits": rng.normal(size=SHAPE)}
    results = [derivatives("tensorflow", function, arrays, ("logits", "labels"))
               for function in (getattr(TF, name), getattr(tf.nn, name))]
    if name == "softmax_cross_entropy_with_logits":
        results[1]["second"]["labels"] = tf_xent_mixed_second()
    compare(*results, np.float64, f"tf.nn.{name}")
