"""Argument conversion shared by the compat adapters (no loss formulas live here).

The adapters take arguments the way a framework does (lists, NumPy, PyTorch or
JAX arrays), convert them the way that framework would (dtype of lists, casts
of targets), call crossent's core, and return the result in the input's
library and the framework's dtype.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from .._array import (
    Array,
    as_array,
    check_numbers,
    is_array,
    is_floating,
    namespace,
    python_array,
    require_given,
    stop_gradient,
    to_numpy,
)
from ..activations import log_softmax


def float_input(value: object, list_dtype: Any = np.float32, *, name: str = "input") -> Array:
    """Arrays pass through; lists and numbers become NumPy arrays of ``list_dtype``.

    Keras and optax read a Python list of numbers as ``floatx()`` = float32;
    PyTorch's ``torch.tensor([...])`` does too. Integer *arrays* stay integer (the
    core reports them). ``None`` is refused, naming the framework's argument ``name``.
    """
    require_given(name, value)
    if is_array(value):
        check_numbers(name, value)
        return value
    return python_array(value, name, list_dtype)


def like(
    xp: Any, reference: Array, value: Any, dtype: Any = None, *, name: str = "target"
) -> Array:
    """``value`` as an array of ``reference``'s library (and ``dtype`` if given).

    Frameworks convert their second argument with ``convert_to_tensor``; here the
    target follows the prediction's library, so NumPy targets work with torch logits.
    ``None`` is refused, naming the framework's argument ``name``.
    """
    require_given(name, value)
    value = as_array(value, name=name)
    if namespace(value) is not xp:
        value = xp.asarray(np.asarray(value) if not is_array(value) else to_numpy(value))
        if hasattr(reference, "device") and hasattr(value, "to"):
            value = value.to(reference.device)
    if dtype is not None and value.dtype != dtype:
        value = xp.astype(value, dtype)
    return value




def cast_to(xp: Any, value: Array, dtype: Any) -> Array:
    """``value`` in ``dtype`` (the core computes 16-bit floats in float32; frameworks do not)."""
    return value if value.dtype == dtype else xp.astype(value, dtype)


def require_floating(xp: Any, name: str, value: Array) -> None:
    if not is_floating(xp, value.dtype):
        raise TypeError(
            f"{name} must have a floating-point dtype, got {value.dtype}; convert it first "
            f"(e.g. {name}.astype(float32))"
        )


def size(shape: tuple[int, ...]) -> int:
    total = 1
    for dim in shape:
        total *= int(dim)
    return total


# --- Keras backend selection -------------------------------------------------------

KERAS_BACKENDS = ("tensorflow", "jax", "torch", "numpy")


def keras_backend(backend: str | None) -> str:
    """The Keras backend whose numbers to reproduce.

    ``None`` resolves as Keras itself does (keras/src/backend/config.py): the
    ``KERAS_BACKEND`` environment variable, else ``~/.keras/keras.json``'s
    ``"backend"``, else ``"tensorflow"`` (Keras's default).
    """
    if backend is None:
        backend = os.environ.get("KERAS_BACKEND") or _keras_json_backend() or "tensorflow"
    if backend not in KERAS_BACKENDS:
        raise ValueError(
            f"backend must be one of {', '.join(map(repr, KERAS_BACKENDS))} or None "
            f"(Keras's configured backend), got {backend!r}"
        )
    return backend


def _keras_json_backend() -> str | None:
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    path = os.path.join(home, "keras.json")
    try:
        with open(path) as handle:
            backend = json.load(handle).get("backend")
    except (OSError, ValueError, AttributeError):
        return None
    return backend if isinstance(backend, str) else None


def nan_where(xp: Any, value: Array, mask: Array | None) -> Array:
    """``value`` with NaN where ``mask``: positions where the framework computes 0 · ∞.

    The core keeps 0 · log 0 = 0 (finite losses for ``-inf`` logits); frameworks that
    multiply a zero target by an infinite log return NaN there. The NaN is *added* as a
    constant, so autograd's gradient stays the core's, which is what the frameworks'
    own gradients are at those positions (e.g. softmax - target).
    """
    if mask is None:
        return value
    return value + xp.where(mask, xp.full_like(value, float("nan")), xp.zeros_like(value))


def tf_softmax_xent_gradient(
    xp: Any, losses: Array, logits: Array, labels: Array, axis: int
) -> Array:
    """Give ``losses`` TensorFlow's gradient ``softmax - labels`` w.r.t. the logits.

    TensorFlow's softmax_cross_entropy_with_logits kernel backpropagates
    ``softmax(x) - labels`` (tensorflow/core/kernels/xent_op.h), which is the gradient
    only when each row of labels sums to 1; the true one is ``(Σ labels)·softmax - labels``.
    Adding :math:`(1 - \\sum t)\\,(L - \\mathrm{stop}(L))` with :math:`L = \\log\\sum e^{x}`
    changes no value and moves the gradient by :math:`(1 - \\sum t)\\,\\mathrm{softmax}`.
    The added term is 0 with a zero label gradient, so the label gradient stays
    ``-log_softmax`` (TensorFlow's), and the mixed second derivative is that of
    ``softmax - labels`` (TensorFlow's own gradient function returns 0 there: it does not
    differentiate its ``softmax - labels`` output w.r.t. the labels).
    """
    if size(tuple(logits.shape)) == 0:  # no classes (or no rows): nothing to move
        return losses
    # logsumexp as max(x) - max(log_softmax(x)): finite, and its gradient is softmax(x)
    lse = xp.max(logits, axis=axis) - xp.max(log_softmax(logits, axis=axis), axis=axis)
    missing_mass = 1.0 - xp.sum(labels, axis=axis)
    return losses + missing_mass * (lse - stop_gradient(lse))


# --- NaN at infinite logits: each framework's formula, once -------------------------
#
# The core keeps 0 · log 0 = 0 and stays finite (or +inf) at infinite logits; the
# frameworks write formulas that meet 0 · ∞ or ∞ - ∞ there and return NaN. Which
# positions turn NaN depends on the formula, so each is written here once, and the
# adapters name the formula their framework uses.
#
# Sigmoid forms: (rule at x = -inf, rule at x = +inf), each "any" target, target "zero"
# or target "one"; elsewhere an infinite logit gives +inf in the framework and the core.
SIGMOID_NAN_RULES = {
    # tf.nn.sigmoid_cross_entropy_with_logits (tensorflow/python/ops/nn_impl.py),
    # max(x, 0) - x·z + log1p(exp(-|x|)): at -inf, -x·z is ∞·0 for z = 0; at +inf,
    # ∞ - ∞ for z > 0 and ∞ - ∞·0 for z = 0: NaN whatever z.
    "tensorflow": ("zero", "any"),
    # aten binary_cross_entropy_with_logits (aten/src/ATen/native/Loss.cpp) and
    # tf.nn.weighted_cross_entropy_with_logits, (1 - z)·x + max(-x, 0) + log(...):
    # at -inf ∞ - ∞ (z < 1) or 0·∞ (z = 1); at +inf 0·∞ for z = 1.
    "torch": ("any", "one"),
    # optax.losses.sigmoid_binary_cross_entropy and Keras's JAX backend,
    # -z·log_sigmoid(x) - (1 - z)·log_sigmoid(-x): 0·(-inf) at -inf, z = 0 and +inf, z = 1.
    "jax": ("zero", "one"),
}


def sigmoid_nan(xp: Any, logits: Array, target: Array, formula: str) -> Array:
    """Where ``formula``'s sigmoid cross-entropy is NaN (see ``SIGMOID_NAN_RULES``)."""
    at_minus, at_plus = SIGMOID_NAN_RULES[formula]
    return ((logits == -math.inf) & _rule(at_minus, target)) | (
        (logits == math.inf) & _rule(at_plus, target)
    )


def _rule(rule: str, target: Array) -> Array | bool:
    return True if rule == "any" else target == (0 if rule == "zero" else 1)


def log_softmax_nan(
    xp: Any, logits: Array, axis: int | tuple[int, ...], coefficient: Array | None = None
) -> Array:
    """Where a loss summed as ``coefficient · log_softmax(logits)`` over ``axis`` is NaN.

    Every framework's log_softmax is ``x - max - log Σ exp(x - max)``: a ``+inf`` logit
    makes the whole row NaN (∞ - ∞), where the core gives +inf off the target. A
    ``-inf`` logit gives log_softmax = -inf, so a zero ``coefficient`` there (a zero
    label, or a zero class weight) is 0·(-inf) = NaN; ``coefficient=None`` for the
    fused kernels that pick the target's entry instead of multiplying (PyTorch's
    nll_loss, TensorFlow's sparse kernel).
    """
    nan = xp.any(logits == math.inf, axis=axis)
    if coefficient is not None:
        nan = nan | xp.any((coefficient == 0) & (logits == -math.inf), axis=axis)
    return nan
