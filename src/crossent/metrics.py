"""Accuracy metrics: binary_accuracy, categorical_accuracy, sparse_categorical_accuracy.

Why Keras reports different accuracies for the same model (seed 004, appendix):
with ``loss="binary_crossentropy"`` Keras's ``metrics=["acc"]`` resolves to
*binary* accuracy, which scores each of the C outputs as a separate yes/no
decision; with ``loss="categorical_crossentropy"`` it resolves to *categorical*
accuracy, which scores one argmax per sample. On a 10-class one-hot problem a
model that predicts all zeros already has a binary accuracy of 0.9 and a
categorical accuracy near 0.1. Compare models with the same metric.
"""

from __future__ import annotations

import math
from typing import Any

from ._array import Array, arrays_in_namespace, is_floating
from ._validate import check_same_shape

__all__ = ["binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy"]


def _mean(xp: Any, hits: Array, y_pred: Array) -> Array:
    """Mean of boolean ``hits`` in ``y_pred``'s floating dtype (float32 otherwise); 0 if empty."""
    dtype = y_pred.dtype if is_floating(xp, y_pred.dtype) else xp.float32
    if math.prod(int(d) for d in hits.shape) == 0:
        return xp.asarray(0.0, dtype=dtype)
    return xp.mean(xp.astype(hits, dtype))


def predicted_positive(y_pred: Array, threshold: float = 0.5) -> Array:
    """The yes/no decision of each prediction: ``y_pred > threshold`` (Keras's rule)."""
    return y_pred > threshold


def predicted_class(xp: Any, y_pred: Array) -> Array:
    """The predicted class of each row: the argmax over the last axis, ties to the first."""
    return xp.argmax(y_pred, axis=-1)


def binary_accuracy(y_true: Array, y_pred: Array, *, threshold: float = 0.5) -> Array:
    r"""Fraction of elements whose thresholded prediction equals the 0/1 target.

    .. math:: \text{acc} = \frac{1}{n}\sum_{i} [\,(\hat y_i > \tau) = y_i\,]

    Every element is its own yes/no decision, so with C one-hot classes each
    sample contributes C decisions: predicting "no" everywhere scores (C − 1)/C.
    This is the accuracy Keras shows next to ``binary_crossentropy`` (seed 004).

    Args:
      y_true: 0/1 targets, any shape.
      y_pred: probabilities (or scores), same shape.
      threshold: a prediction counts as 1 when strictly greater (Keras's rule).

    Returns:
      A scalar in [0, 1] (0 for empty input).

    Example (one 3-class sample, predicted wrongly — "no" everywhere — still scores 2/3):

    >>> import crossent as ce
    >>> float(ce.metrics.binary_accuracy([[0, 1, 0]], [[0.2, 0.3, 0.5]]))
    0.6666666666666666

    NOTE: Keras's ``binary_accuracy`` returns one value per sample (the mean over the
    last axis); this returns the overall fraction, which is what Keras's metric
    reports after averaging over equal-length samples. PyTorch has no built-in.
    """
    xp, (y_true, y_pred) = arrays_in_namespace(
        y_true, y_pred, floating=(False, False), names=("y_true", "y_pred"), required=2
    )
    check_same_shape("y_pred", y_pred, "y_true", y_true)
    predicted = predicted_positive(y_pred, threshold)
    return _mean(xp, predicted == (y_true > 0.5), y_pred)


def categorical_accuracy(y_true: Array, y_pred: Array) -> Array:
    r"""Fraction of samples whose predicted class (argmax) is the target's argmax.

    .. math:: \text{acc} = \frac{1}{N}\sum_i [\arg\max_c \hat y_{ic} = \arg\max_c y_{ic}]

    One decision per sample: the accuracy Keras shows next to
    ``categorical_crossentropy`` (seed 004).

    Args:
      y_true: one-hot (or probability) targets ``[..., num_classes]``.
      y_pred: scores or probabilities ``[..., num_classes]``.

    Returns:
      A scalar in [0, 1] (0 for empty input).

    Example (the sample of :func:`binary_accuracy`, now simply wrong):

    >>> import crossent as ce
    >>> float(ce.metrics.categorical_accuracy([[0, 1, 0]], [[0.2, 0.3, 0.5]]))
    0.0

    NOTE: ties go to the first maximal class, as in NumPy, Keras and PyTorch's argmax.
    """
    xp, (y_true, y_pred) = arrays_in_namespace(
        y_true, y_pred, floating=(False, False), names=("y_true", "y_pred"), required=2
    )
    check_same_shape("y_pred", y_pred, "y_true", y_true)
    return _mean(xp, predicted_class(xp, y_true) == predicted_class(xp, y_pred), y_pred)


def sparse_categorical_accuracy(y_true: Array, y_pred: Array) -> Array:
    r"""Fraction of samples whose predicted class (argmax) equals the integer target.

    .. math:: \text{acc} = \frac{1}{N}\sum_i [\arg\max_c \hat y_{ic} = y_i]

    Args:
      y_true: integer class indices ``[...]``.
      y_pred: scores or probabilities ``[..., num_classes]``.

    Returns:
      A scalar in [0, 1] (0 for empty input).

    Example:

    >>> import crossent as ce
    >>> float(ce.metrics.sparse_categorical_accuracy([2, 1], [[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]]))
    0.5

    NOTE: Keras also accepts ``y_true`` of shape ``[..., 1]``; here it must be ``y_pred``'s
    shape without the last axis.
    """
    xp, (y_true, y_pred) = arrays_in_namespace(
        y_true, y_pred, floating=(False, False), names=("y_true", "y_pred"), required=2
    )
    expected = tuple(y_pred.shape[:-1])
    if tuple(y_true.shape) != expected:
        raise ValueError(
            f"y_true has shape {tuple(y_true.shape)}, but y_pred has shape "
            f"{tuple(y_pred.shape)}; expected class indices of shape {expected}"
        )
    predicted = predicted_class(xp, y_pred)
    return _mean(xp, predicted == xp.astype(y_true, predicted.dtype), y_pred)
