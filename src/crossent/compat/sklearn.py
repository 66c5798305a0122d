r"""scikit-learn's ``log_loss``, computed by crossent's core (matches scikit-learn 1.9.1).

What ``sklearn.metrics.log_loss`` does, reproduced here:

- probabilities are clipped to :math:`[\epsilon, 1-\epsilon]` with ε the **machine
  epsilon of their dtype** (2.2e-16 for float64, 1.2e-7 for float32), so p = 0
  costs :math:`-\log(2.2\cdot 10^{-16}) \approx 36.04` in float64;
- rows that do not sum to one are **not renormalised** (scikit-learn < 1.5 did);
  a ``UserWarning`` says "The y_prob values do not sum to one" (tolerance
  ``rtol = sqrt(eps)``);
- a 1-D ``y_proba`` is the probability of the positive (second) class;
- classes are the sorted unique values of ``labels`` (or of ``y_true``); the
  columns of ``y_proba`` follow that order; a single class is an error;
- ``sample_weight`` gives a weighted mean (``normalize=True``) or a weighted sum;
- the result is a Python float.

Source: sklearn/metrics/_classification.py (``log_loss``, ``_log_loss``,
``_validate_multiclass_probabilistic_prediction``,
``_one_hot_encoding_multiclass_target``), sklearn/utils/_array_api.py (``_average``).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from .. import information
from .._array import Array, as_array, check_numbers, is_array, namespace, python_array, to_numpy
from ._common import like

__all__ = ["log_loss"]


def as_probabilities(y_proba: Any) -> tuple[Any, Array]:
    """check_array(y_proba, dtype=float64/float32/float16): integers become float64."""
    y_proba = as_array(y_proba, name="y_proba")
    xp = namespace(y_proba)
    try:
        floating = bool(xp.isdtype(y_proba.dtype, "real floating"))
    except (TypeError, ValueError):
        floating = False
    if not floating:
        y_proba = xp.astype(y_proba, xp.float64)
    return xp, y_proba


def declared_classes(labels: object) -> np.ndarray:
    """The classes ``labels`` declares: sorted and unique (a warning if not given sorted).

    scikit-learn assumes the columns of ``y_proba`` follow this sorted order.
    """
    given = to_numpy(labels)
    classes = np.unique(given)
    if not np.array_equal(classes, given):
        warnings.warn(
            f"Labels passed were {labels}. But this function assumes labels are ordered "
            f"lexicographically. Pass the ordered labels={classes.tolist()} and ensure "
            f"that the columns of y_prob correspond to this ordering.",
            UserWarning,
            stacklevel=4,
        )
    return classes


def _one_hot(y_true: object, labels: object | None) -> np.ndarray:
    """LabelBinarizer's encoding of ``y_true`` (n_samples, n_classes), classes sorted."""
    y_true = to_numpy(y_true) if is_array(y_true) else python_array(y_true, "y_true", labels=True)
    if y_true.ndim == 2 and labels is None:  # a label indicator matrix
        check_numbers("y_true", y_true)
        classes = np.arange(y_true.shape[1])
        encoded = y_true.astype(np.float64)
    else:
        y_true = y_true.reshape(-1)
        if labels is not None:
            classes = declared_classes(labels)
            undeclared = set(y_true.tolist()) - set(classes.tolist())
            if undeclared:
                raise ValueError(
                    f"y_true contains values {undeclared} not belonging to the passed labels "
                    f"{to_numpy(labels)}."
                )
        else:
            classes = np.unique(y_true)
        encoded = (y_true[:, None] == classes[None, :]).astype(np.float64)
    if classes.shape[0] == 1:
        if labels is None:
            raise ValueError(
                f"y_true contains only one label ({classes[0]}). Please provide the list of all "
                f"expected class labels explicitly through the labels argument."
            )
        raise ValueError(f"The labels array needs to contain at least two labels, got {classes}.")
    return encoded


def probability_columns(xp: Any, y_proba: Array, out: Array | None = None) -> Array:
    """``y_proba`` as ``(n_samples, n_classes)``: a 1-D or one-column input is the positive
    class's probability p, and becomes the columns ``[1 - p, p]`` (written to ``out``, an
    ``(n_samples, 2)`` NumPy array of p's dtype, when given)."""
    if y_proba.ndim == 1:
        y_proba = xp.expand_dims(y_proba, axis=1)
    if int(y_proba.shape[1]) == 1:  # the positive class's probability: prepend 1 - p
        if out is not None:
            np.subtract(1, y_proba[:, 0], out=out[:, 0])
            out[:, 1] = y_proba[:, 0]
            return out
        y_proba = xp.concat([1 - y_proba, y_proba], axis=1)
    return y_proba


def warn_if_not_normalised(xp: Any, y_proba: Array, stacklevel: int = 2) -> None:
    """scikit-learn's warning for rows that do not sum to one (``rtol = sqrt(eps)``);
    the rows are not renormalised."""
    eps = float(xp.finfo(y_proba.dtype).eps)
    row_sums = to_numpy(xp.sum(y_proba, axis=1)).astype(np.float64)
    if not np.all(np.isclose(row_sums, 1.0, rtol=math.sqrt(eps))):
        warnings.warn(
            "The y_prob values do not sum to one. Make sure to pass probabilities.",
            UserWarning,
            stacklevel=stacklevel + 1,
        )


def clip_probabilities(xp: Any, y_proba: Array, out: Array | None = None) -> Array:
    """``clip(p, eps, 1 - eps)`` with eps the machine epsilon of ``y_proba``'s dtype
    (sklearn/metrics/_classification.py ``_log_loss``): p = 0 costs -log(eps), not inf.
    ``out`` (NumPy): the array to write it to."""
    eps = float(xp.finfo(y_proba.dtype).eps)
    if out is not None:
        return xp.clip(y_proba, eps, 1 - eps, out=out)
    return xp.clip(y_proba, eps, 1 - eps)


def log_loss(
    y_true: Any,
    y_proba: Any,
    *,
    normalize: bool = True,
    sample_weight: Any = None,
    labels: Any = None,
) -> float:
    r"""``sklearn.metrics.log_loss``: mean negative log-likelihood of the true classes.

    .. math::
        \hat p = \operatorname{clip}(p, \epsilon, 1 - \epsilon),\quad
        L = \frac{\sum_i w_i \big(-\sum_c y_{ic} \log \hat p_{ic}\big)}{\sum_i w_i}

    with ε the machine epsilon of ``y_proba``'s dtype (``normalize=False``: no division).

    Args:
      y_true: labels of any kind (ints, strings, ...) ``(n_samples,)``, or an indicator
        matrix ``(n_samples, n_classes)``.
      y_proba: probabilities ``(n_samples, n_classes)``, columns in sorted class order;
        or ``(n_samples,)``, the probability of the positive class.
      normalize: mean (True) or sum (False) over samples.
      sample_weight: optional ``(n_samples,)`` weights.
      labels: the classes, if ``y_true`` does not show them all.

    Returns:
      A Python float.

    Raises:
      ValueError: probabilities outside [0, 1], one class only, class-count mismatch.

    Example (scikit-learn's docstring; p = 0 is clipped to 2.2e-16, not -inf):

    >>> from crossent.compat import sklearn as S
    >>> S.log_loss(["spam", "ham", "ham", "spam"], [[.1, .9], [.9, .1], [.8, .2], [.35, .65]])
    0.21616...
    >>> S.log_loss([0, 1], [[1.0, 0.0], [1.0, 0.0]])
    18.0218...
    """
    if not isinstance(normalize, (bool, np.bool_)):  # sklearn's @validate_params, its words
        raise ValueError(
            f"The 'normalize' parameter of log_loss must be an instance of 'bool' or an "
            f"instance of 'numpy.bool'. Got {normalize!r} instead; pass True (mean) or False (sum)"
        )
    xp, y_proba = as_probabilities(y_proba)
    if y_proba.ndim == 0 or int(y_proba.shape[0]) == 0:  # sklearn's check_array, its words
        raise ValueError(
            f"Found array with 0 sample(s) (shape={tuple(y_proba.shape)}) while a minimum of 1 "
            f"is required; y_proba needs one row of probabilities per sample"
        )
    # sklearn/metrics/_classification.py _validate_multiclass_probabilistic_prediction
    if float(xp.max(y_proba)) > 1:
        raise ValueError(f"y_prob contains values greater than 1: {float(xp.max(y_proba))}")
    if float(xp.min(y_proba)) < 0:
        raise ValueError(f"y_prob contains values lower than 0: {float(xp.min(y_proba))}")
    encoded = _one_hot(y_true, labels)
    y_proba = probability_columns(xp, y_proba)
    lengths = [int(y_proba.shape[0]), encoded.shape[0]]
    if sample_weight is not None:
        sample_weight = to_numpy(sample_weight)
        lengths.append(int(sample_weight.shape[0]) if sample_weight.ndim else 1)
    if len(set(lengths)) > 1:
        raise ValueError(
            f"Found input variables with inconsistent numbers of samples: {lengths}"
        )
    if sample_weight is not None and not np.any(sample_weight):
        # sklearn/utils/validation.py _check_sample_weight
        raise ValueError("Sample weights must contain at least one non-zero number.")
    warn_if_not_normalised(xp, y_proba, stacklevel=2)
    if encoded.shape[1] != int(y_proba.shape[1]):
        if labels is None:
            raise ValueError(
                f"y_true and y_prob contain different number of classes: {encoded.shape[1]} vs "
                f"{int(y_proba.shape[1])}. Please provide the true labels explicitly through "
                f"the labels argument."
            )
        raise ValueError("The number of classes in labels is different from that in y_prob.")
    clipped = clip_probabilities(xp, y_proba)  # no renormalising
    target = like(xp, clipped, encoded, clipped.dtype)
    per_sample = information.cross_entropy(target, clipped, axis=1)  # -Σ xlogy(y, p̂)
    # sklearn/utils/_array_api.py _average
    if sample_weight is None:
        return float(xp.mean(per_sample) if normalize else xp.sum(per_sample))
    # numpy.average / numpy.dot: the weights keep their dtype and promote the losses
    weights = like(xp, per_sample, sample_weight)
    dtype = xp.result_type(per_sample.dtype, weights.dtype)
    weights, per_sample = xp.astype(weights, dtype), xp.astype(per_sample, dtype)
    weighted = xp.sum(per_sample * weights)
    if not normalize:
        return float(weighted)
    scale = float(xp.sum(weights))
    if scale == 0.0:
        raise ZeroDivisionError("Weights sum to zero, can't be normalized")
    return float(weighted) / scale
