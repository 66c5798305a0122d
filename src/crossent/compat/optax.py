r"""optax's classification losses (``optax.losses``), computed by crossent's core.

Same names, argument order and defaults as optax; **per-example outputs** (no
reduction: take ``.mean()`` yourself, as optax users do). NumPy, PyTorch
(autograd) and JAX (``jax.grad``, ``jit``) arrays in, the same library out.
What optax does, reproduced here:

- ``where`` in the softmax losses masks **classes inside the softmax** when it has
  ``logits``' shape (masked logits leave the normaliser, masked labels are skipped),
  and whole examples when it has the batch shape (their loss is 0);
- ``softmax_cross_entropy`` sums ``labels · log_softmax``: a ``-inf`` logit with
  label 0, or a ``+inf`` logit anywhere in the row, gives NaN (optax's
  ``safe_softmax_cross_entropy`` is the 0·log 0 = 0 variant, which is crossent's
  native behaviour);
- ``softmax_cross_entropy_with_integer_labels`` takes integer labels and is
  ``logsumexp(logits) - logits[label]``; ``axis`` may be a tuple of axes;
- ``sigmoid_binary_cross_entropy`` is ``-t log σ(x) - (1-t) log σ(-x)`` element-wise;
- ``sigmoid_focal_loss`` has ``alpha=None`` by default (no class balancing).

Source: optax/losses/_classification.py (optax 0.2.8).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._array import Array, is_integer, namespace
from ..losses import binary_cross_entropy_with_logits, cross_entropy
from ..losses import sigmoid_focal_loss as _sigmoid_focal_loss
from ._common import cast_to, float_input, like, log_softmax_nan, nan_where, require_floating, sigmoid_nan

__all__ = [
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
]

_INF = float("inf")


def _prepare(logits: object, labels: object) -> tuple[Any, Array, Array]:
    logits = float_input(logits, name="logits")
    xp = namespace(logits)
    require_floating(xp, "logits", logits)
    return xp, logits, like(xp, logits, labels, name="labels")


def _checked_axis(axis: object, ndim: int) -> int | tuple[int, ...]:
    """``axis`` (an int or a tuple of ints) checked against ``ndim``, in NumPy's words
    (which JAX and so optax raise): "axis 5 is out of bounds for array of dimension 2"."""
    axes = axis if isinstance(axis, tuple) else (axis,)
    for one in axes:
        if isinstance(one, bool) or not isinstance(one, (int, np.integer)):
            raise TypeError(
                f"axis must be an int or a tuple of ints, got {axis!r}; e.g. axis=-1"
            )
        if not -ndim <= one < ndim:
            raise ValueError(
                f"axis {one} is out of bounds for array of dimension {ndim}; "
                f"expected an axis in [{-ndim}, {ndim - 1}]"
            )
    return tuple(int(one) for one in axes) if isinstance(axis, tuple) else int(axes[0])  # type: ignore[call-overload]


def _flatten_axes(xp: Any, array: Array, axes: tuple[int, ...]) -> Array:
    """Move ``axes`` last, in the order given, and flatten them into one.

    optax's tuple-``axis`` convention: a label is a flat index into the class axes in
    the order they are listed, so ``axis=(3, 2)`` flattens axis 3 as the slower one.
    """
    ndim = array.ndim
    axes = tuple(a % ndim for a in axes)
    batch = tuple(a for a in range(ndim) if a not in axes)
    moved = xp.permute_dims(array, batch + axes)
    return xp.reshape(moved, tuple(int(moved.shape[i]) for i in range(len(batch))) + (-1,))


def _class_mask(xp: Any, where: Any, logits: Array, axis: int) -> tuple[Any, Any]:
    """``where`` split into a class mask (logits' shape) and an example mask (or None)."""
    if where is None:
        return None, None
    where = like(xp, logits, where)
    if where.ndim != logits.ndim:  # optax: expand_dims(where, axis) masks whole examples
        return None, where
    return xp.broadcast_to(where, logits.shape), None


def softmax_cross_entropy(
    logits: Array, labels: Array, axis: int | tuple[int, ...] | None = -1,
    where: Array | None = None,
) -> Array:
    r"""``optax.losses.softmax_cross_entropy``: per-example CE with probability labels.

    .. math:: \ell = -\sum_{c\,:\,w_c} y_c \log\frac{e^{x_c}}{\sum_{k\,:\,w_k} e^{x_k}}

    Args:
      logits: ``[..., num_classes]``.
      labels: probabilities broadcastable to ``logits``.
      axis: the class axis (or a tuple of axes, flattened together).
      where: boolean mask of ``logits``' shape (classes inside the softmax) or of the
        batch shape (whole examples, loss 0).

    Returns:
      ``logits``' shape without ``axis``, in ``logits``' dtype.

    Example (optax's docstring):

    >>> import numpy as np
    >>> from crossent.compat import optax as O
    >>> logits = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    >>> labels = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    >>> O.softmax_cross_entropy(logits, labels)
    array([0.40760596, 2.40760596])
    >>> O.softmax_cross_entropy(logits, labels, where=np.array([[True, True, False]] * 2))
    array([0.        , 1.31326169])
    """
    xp, logits, labels = _prepare(logits, labels)
    labels = xp.broadcast_to(cast_to(xp, labels, logits.dtype), logits.shape)
    if axis is None:
        axis = tuple(range(logits.ndim))
    axis = _checked_axis(axis, logits.ndim)
    class_mask, example_mask = _class_mask(xp, where, logits, axis if isinstance(axis, int) else -1)
    if isinstance(axis, tuple):
        logits, labels = _flatten_axes(xp, logits, axis), _flatten_axes(xp, labels, axis)
        if class_mask is not None:
            class_mask = _flatten_axes(xp, class_mask, axis)
        axis = -1
    nan_labels = labels
    if class_mask is not None:
        # masked classes leave the softmax (-inf logit) and the sum (label 0)
        logits = xp.where(class_mask, logits, xp.full_like(logits, -_INF))
        labels = xp.where(class_mask, labels, xp.zeros_like(labels))
        nan_labels = xp.where(class_mask, labels, xp.ones_like(labels))
        # optax's _classification.py: jnp.where(jnp.any(where, axis), out, 0.0), so an
        # example with every class masked is 0 (the core gives NaN for an all -inf row)
        kept = xp.any(class_mask, axis=axis)
        example_mask = kept if example_mask is None else example_mask & kept
    losses = cross_entropy(logits, labels, axis=axis, reduction="none", where=example_mask)
    # labels · log_softmax: NaN for a kept +inf logit, or a kept -inf one with label 0
    nan = log_softmax_nan(xp, logits, axis, nan_labels)
    if example_mask is not None:  # masked examples sum over nothing: 0
        nan = nan & example_mask
    return cast_to(xp, nan_where(xp, losses, nan), logits.dtype)


def softmax_cross_entropy_with_integer_labels(
    logits: Array, labels: Array, axis: int | tuple[int, ...] = -1,
    where: Array | None = None,
) -> Array:
    r"""``optax.losses.softmax_cross_entropy_with_integer_labels``: per-example CE, integer labels.

    .. math:: \ell = \log\sum_{k\,:\,w_k} e^{x_k} - x_y

    Args:
      logits: ``[..., num_classes]``.
      labels: integer class indices, ``logits``' shape without ``axis``.
      axis: the class axis, or a tuple of axes (a label is then a flat index into them).
      where: boolean mask of ``logits``' shape (classes) or the batch shape (examples).

    Returns:
      ``labels``' shape, in ``logits``' dtype.

    Example (optax's docstring):

    >>> import numpy as np
    >>> from crossent.compat import optax as O
    >>> O.softmax_cross_entropy_with_integer_labels(
    ...     np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]), np.array([2, 0]))
    array([0.40760596, 2.40760596])

    A negative label counts from the end and a label out of range gives NaN, as
    ``jnp.take_along_axis`` does (no error).

    NOTE: optax picks ``logits[label]`` even when ``where`` masks the label's class
    (its loss is then finite); here the masked class has a -inf logit and the loss is inf.
    """
    xp, logits, labels = _prepare(logits, labels)
    if not is_integer(xp, labels.dtype):
        raise TypeError(
            f"labels must hold integer class indices, got dtype {labels.dtype}; "
            f"use softmax_cross_entropy for probability labels"
        )
    axis = _checked_axis(axis, logits.ndim)
    class_mask, example_mask = _class_mask(xp, where, logits, axis if isinstance(axis, int) else -1)
    if isinstance(axis, tuple):
        logits = _flatten_axes(xp, logits, axis)
        if class_mask is not None:
            class_mask = _flatten_axes(xp, class_mask, axis)
        axis = -1
    num_classes = int(logits.shape[axis])
    if num_classes == 0:
        # optax: logsumexp over no class is -inf, and so is every example's loss
        losses = xp.full_like(xp.astype(labels, logits.dtype), -_INF)
        if example_mask is not None:
            losses = xp.where(example_mask, losses, xp.zeros_like(losses))
        return losses
    # jnp.take_along_axis: a negative label counts from the end, one out of range gives NaN
    labels = xp.where(labels < 0, labels + num_classes, labels)
    out_of_range = (labels < 0) | (labels >= num_classes)
    labels = xp.where(out_of_range, xp.zeros_like(labels), labels)
    if class_mask is not None:
        logits = xp.where(class_mask, logits, xp.full_like(logits, -_INF))
        # optax: jnp.where(jnp.any(where, axis), out, 0.0) for examples with nothing kept
        kept = xp.any(class_mask, axis=axis)
        example_mask = kept if example_mask is None else example_mask & kept
    losses = cross_entropy(
        logits, labels, axis=axis, ignore_index=None, reduction="none", where=example_mask
    )
    nan = out_of_range if example_mask is None else out_of_range & example_mask
    losses = nan_where(xp, losses, nan)
    # optax computes logsumexp(logits) - logits[label]: a +inf logit off the label gives
    # +inf (inf - finite), where the core gives the row NaN; NaN logits stay NaN
    moved = logits if axis in (-1, logits.ndim - 1) else xp.moveaxis(logits, axis, -1)
    classes = xp.arange(num_classes)
    at_label = classes == labels[..., None]
    label_inf = xp.any(at_label & (moved == _INF), axis=-1)
    row_inf = xp.any(moved == _INF, axis=-1) & ~xp.any(xp.isnan(moved), axis=-1)
    plus_inf = row_inf & ~label_inf & ~out_of_range
    if example_mask is not None:
        plus_inf = plus_inf & example_mask
    losses = xp.where(plus_inf, xp.full_like(losses, _INF), losses)
    return cast_to(xp, losses, logits.dtype)


def sigmoid_binary_cross_entropy(logits: Array, labels: Array) -> Array:
    r"""``optax.losses.sigmoid_binary_cross_entropy``: element-wise sigmoid CE.

    .. math:: \ell = -y \log\sigma(x) - (1 - y)\log\sigma(-x)

    Args:
      logits: any shape.
      labels: broadcastable to ``logits`` (binary or probabilities).

    Returns:
      The broadcast shape, in ``logits``' dtype. A ``-inf`` logit with label 0, or
      ``+inf`` with label 1, is NaN (0 · -inf), as in optax.

    Example (seed 004's first row):

    >>> from crossent.compat import optax as O
    >>> O.sigmoid_binary_cross_entropy([12.0, 3.0, 2.0], [1.0, 0.0, 0.0])
    array([6.1442e-06, 3.0486e+00, 2.1269e+00], dtype=float32)
    """
    xp, logits, labels = _prepare(logits, labels)
    labels = cast_to(xp, labels, logits.dtype)
    logits, labels = xp.broadcast_arrays(logits, labels)
    losses = binary_cross_entropy_with_logits(logits, labels, reduction="none")
    losses = nan_where(xp, losses, sigmoid_nan(xp, logits, labels, "jax"))
    return cast_to(xp, losses, logits.dtype)


def sigmoid_focal_loss(
    logits: Array, labels: Array, alpha: float | None = None, gamma: float = 2.0
) -> Array:
    r"""``optax.losses.sigmoid_focal_loss``: element-wise focal loss (Lin et al. 2017).

    .. math:: \ell = \alpha_t (1 - p_t)^{\gamma}\,\mathrm{BCE}(x, y),\quad
              p_t = p y + (1 - p)(1 - y),\quad \alpha_t = \alpha y + (1-\alpha)(1-y)

    Args:
      logits: any shape.
      labels: broadcastable to ``logits``, values in [0, 1].
      alpha: balancing weight of positives, or None (optax's default: no balancing).
      gamma: focusing parameter.

    Returns:
      The broadcast shape, in ``logits``' dtype.

    Example:

    >>> from crossent.compat import optax as O
    >>> O.sigmoid_focal_loss([0.0, 2.0], [1.0, 0.0])
    array([0.1733, 1.6501 ], dtype=float32)
    """
    xp, logits, labels = _prepare(logits, labels)
    labels = cast_to(xp, labels, logits.dtype)
    logits, labels = xp.broadcast_arrays(logits, labels)
    losses = _sigmoid_focal_loss(logits, labels, alpha=alpha, gamma=gamma, reduction="none")
    # optax multiplies sigmoid_binary_cross_entropy's NaNs by the focal weight
    losses = nan_where(xp, losses, sigmoid_nan(xp, logits, labels, "jax"))
    return cast_to(xp, losses, logits.dtype)
