r"""TensorFlow's ``tf.nn`` cross-entropy numbers, computed by crossent's core.

Same names, argument order and defaults as ``tf.nn`` (``name`` is accepted and
ignored); per-example losses, no reduction. NumPy, PyTorch (autograd) and JAX
arrays in, the same library out. What TensorFlow does, reproduced here:

- ``sigmoid_cross_entropy_with_logits`` is the stable form
  :math:`\max(x, 0) - x z + \log(1 + e^{-|x|})` (seed 002); at infinite logits it
  meets 0·∞ or ∞ - ∞: NaN for x = -inf with z = 0 and for every x = +inf;
- ``weighted_cross_entropy_with_logits`` weighs the positive term by ``pos_weight``:
  :math:`(1 - z) x + (1 + (q - 1) z)(\log(1 + e^{-|x|}) + \max(-x, 0))`;
- ``softmax_cross_entropy_with_logits`` takes probability labels (no checks), is NaN
  for a ``-inf`` logit whose label is 0, and backpropagates ``softmax - labels``, the
  gradient only if each row of labels sums to 1 (reproduced for autograd); the sparse
  form takes integer labels, stays finite there, and rejects labels outside [0, C)
  (TensorFlow on CPU raises too); both are NaN for a row with a ``+inf`` logit
  (log_softmax's ∞ - ∞).

Sources: tensorflow/python/ops/nn_impl.py (sigmoid and weighted forms),
tensorflow/python/ops/nn_ops.py (softmax forms).
"""

from __future__ import annotations

from typing import Any

from .._array import Array, is_integer, namespace
from ..losses import binary_cross_entropy_with_logits, cross_entropy
from ._common import (
    cast_to,
    float_input,
    like,
    log_softmax_nan,
    nan_where,
    require_floating,
    sigmoid_nan,
    tf_softmax_xent_gradient,
)

__all__ = [
    "softmax_cross_entropy_with_logits",
    "sparse_softmax_cross_entropy_with_logits",
    "sigmoid_cross_entropy_with_logits",
    "weighted_cross_entropy_with_logits",
]

def _prepare(
    labels: Any, logits: Any, *, integer_labels: bool = False
) -> tuple[Any, Array, Array]:
    logits = float_input(logits, name="logits")
    xp = namespace(logits)
    require_floating(xp, "logits", logits)
    labels = like(xp, logits, labels, name="labels")
    if integer_labels:
        if not is_integer(xp, labels.dtype):
            raise TypeError(
                f"labels must hold integer class indices, got dtype {labels.dtype}; "
                f"use softmax_cross_entropy_with_logits for probability labels"
            )
    else:
        labels = cast_to(xp, labels, logits.dtype)
        if tuple(labels.shape) != tuple(logits.shape):
            raise ValueError(
                f"logits and labels must have the same shape, got {tuple(logits.shape)} "
                f"and {tuple(labels.shape)}"
            )
    return xp, labels, logits


def softmax_cross_entropy_with_logits(
    labels: Array, logits: Array, axis: int = -1, name: str | None = None
) -> Array:
    r"""``tf.nn.softmax_cross_entropy_with_logits``: per-example softmax CE, probability labels.

    .. math:: \ell = -\sum_c z_c \log\operatorname{softmax}(x)_c

    Args:
      labels: probabilities, ``logits``' shape (each row a distribution).
      logits: ``[..., num_classes]``.
      axis: the class axis.
      name: ignored (TensorFlow's op name).

    Returns:
      ``logits``' shape without ``axis``, in ``logits``' dtype.

    Example (seed 004's logits and one-hot labels):

    >>> import numpy as np
    >>> from crossent.compat import tf as TF
    >>> logits = np.array([[12, 3, 2], [3, 10, 1], [1, 2, 5], [4, 6.5, 1.2], [3, 6, 1]])
    >>> y = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 0]], dtype=float)
    >>> TF.softmax_cross_entropy_with_logits(y, logits)
    array([1.68795487e-04, 1.03475622e-03, 6.58839038e-02, 2.66698414e+00,
           5.49852354e-02])
    """
    xp, labels, logits = _prepare(labels, logits)
    losses = cross_entropy(logits, labels, axis=axis, reduction="none")
    losses = tf_softmax_xent_gradient(xp, losses, logits, labels, axis)
    # TF's kernel multiplies labels by log_softmax: NaN for a +inf logit, or -inf at label 0
    losses = nan_where(xp, losses, log_softmax_nan(xp, logits, axis, labels))
    return cast_to(xp, losses, logits.dtype)


def sparse_softmax_cross_entropy_with_logits(
    labels: Array, logits: Array, name: str | None = None
) -> Array:
    r"""``tf.nn.sparse_softmax_cross_entropy_with_logits``: per-example CE, integer labels.

    .. math:: \ell = -\log\operatorname{softmax}(x)_{y}

    Args:
      labels: integer class indices, ``logits``' shape without the last axis.
      logits: ``[..., num_classes]`` (classes last).
      name: ignored.

    Returns:
      ``labels``' shape, in ``logits``' dtype.

    Example (seed 003):

    >>> from crossent.compat import tf as TF
    >>> TF.sparse_softmax_cross_entropy_with_logits([2, 1], [[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]])
    array([0.8801, 1.4922 ], dtype=float32)
    """
    xp, labels, logits = _prepare(labels, logits, integer_labels=True)
    losses = cross_entropy(logits, labels, axis=-1, ignore_index=None, reduction="none")
    # the fused kernel picks the target's log_softmax: NaN for a +inf logit in the row
    losses = nan_where(xp, losses, log_softmax_nan(xp, logits, -1))
    return cast_to(xp, losses, logits.dtype)


def sigmoid_cross_entropy_with_logits(
    labels: Array | None = None, logits: Array | None = None, name: str | None = None
) -> Array:
    r"""``tf.nn.sigmoid_cross_entropy_with_logits``: element-wise, the stable form.

    .. math:: \ell = \max(x, 0) - x z + \log(1 + e^{-|x|})

    Args:
      labels: targets in [0, 1], ``logits``' shape.
      logits: any shape.
      name: ignored.

    Returns:
      ``logits``' shape and dtype.

    Example (seed 002: logit 0.7 against the smoothed label 0.0333):

    >>> from crossent.compat import tf as TF
    >>> TF.sigmoid_cross_entropy_with_logits([0.0333333], [0.7])
    array([1.0798527], dtype=float32)
    """
    if labels is None or logits is None:
        raise ValueError("Both labels and logits must be provided.")
    xp, labels, logits = _prepare(labels, logits)
    losses = binary_cross_entropy_with_logits(logits, labels, reduction="none")
    losses = nan_where(xp, losses, sigmoid_nan(xp, logits, labels, "tensorflow"))
    return cast_to(xp, losses, logits.dtype)


def weighted_cross_entropy_with_logits(
    labels: Array, logits: Array, pos_weight: Array | float, name: str | None = None
) -> Array:
    r"""``tf.nn.weighted_cross_entropy_with_logits``: sigmoid CE with the positive term weighted.

    .. math:: \ell = q\, z\, \mathrm{softplus}(-x) + (1 - z)\, \mathrm{softplus}(x)
              = (1 - z) x + (1 + (q - 1) z)\big(\log(1 + e^{-|x|}) + \max(-x, 0)\big)

    Args:
      labels: targets, ``logits``' shape.
      logits: any shape.
      pos_weight: q, a number or an array broadcastable to ``logits``.
      name: ignored.

    Returns:
      ``logits``' shape and dtype.

    Example:

    >>> from crossent.compat import tf as TF
    >>> TF.weighted_cross_entropy_with_logits([1.0, 0.0], [0.5, 0.5], pos_weight=3.0)
    array([1.4222, 0.9741], dtype=float32)
    """
    xp, labels, logits = _prepare(labels, logits)
    pos_weight = like(xp, logits, float_input(pos_weight, list_dtype=None, name="pos_weight"), logits.dtype,
                      name="pos_weight")
    losses = binary_cross_entropy_with_logits(
        logits, labels, pos_weight=pos_weight, reduction="none"
    )
    # (1 - z)·x + (...)·max(-x, 0) meets ∞ - ∞ or 0·∞ as PyTorch's form does
    losses = nan_where(xp, losses, sigmoid_nan(xp, logits, labels, "torch"))
    return cast_to(xp, losses, logits.dtype)
