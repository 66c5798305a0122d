"""Activations and their inverses: softmax, log_softmax, sigmoid, log_sigmoid, logit, softmax_inverse.

All are stable for |x| up to 1e4 and for ``-inf`` entries (impossible classes),
and keep finite gradients under PyTorch autograd and ``jax.grad`` wherever the
mathematics is finite. 16-bit float inputs are computed in float32.
"""

from __future__ import annotations

import math
from typing import Any

from ._array import (
    Array,
    as_float_array,
    move_class_axis_back,
    namespace,
    quiet,
    stop_gradient,
    to_compute,
)
from ._validate import check_axis, check_floating

__all__ = ["softmax", "log_softmax", "sigmoid", "log_sigmoid", "logit", "softmax_inverse"]


# --- private helpers on arrays already converted (class axis last) -------------


def _shifted(xp: Any, logits: Array) -> Array:
    """``logits - max(logits)`` along the last axis.

    Subtracting the row maximum makes every exponent <= 0, so exp never
    overflows, even for |logits| ~ 1e4 (softmax is shift-invariant).
    """
    if int(logits.shape[-1]) == 0:  # no classes: nothing to shift (max of nothing is undefined)
        return logits
    row_max = xp.max(logits, axis=-1, keepdims=True)
    # a row of all -inf has max -inf; shift by 0 instead so -inf - max is not NaN
    # (a +inf logit is not shifted away: its row is NaN, as in PyTorch, optax, TF and Keras)
    row_max = xp.where(row_max == -math.inf, xp.zeros_like(row_max), row_max)
    # the shift is a constant to autograd: every function of the shifted logits used here is
    # shift-invariant, so its derivative through the max is 0 at every order; computed, that
    # 0 is 1 - Σ softmax in float32, rounding error of about V·eps put on the argmax entry
    return logits - stop_gradient(row_max)


def _log_softmax_last(xp: Any, logits: Array) -> Array:
    """log softmax along the last axis: ``z - log Σ exp z`` with ``z = x - max x``."""
    shifted = _shifted(xp, logits)
    # exp(shifted) <= 1 and the max entry contributes exactly 1, so the sum is >= 1 and log is safe
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))


def _log_softmax_and_softmax_last(xp: Any, logits: Array) -> tuple[Array, Array]:
    """:func:`_log_softmax_last` (the same values) and softmax as ``e / Σ e``, from one exp.

    ``e / Σ e`` has a rounding or two; ``exp(log softmax)`` adds the rounding of the log,
    ``|log p|`` times larger, which a gradient ``A p - a`` that cancels would magnify.
    """
    shifted = _shifted(xp, logits)
    exps = xp.exp(shifted)
    sums = xp.sum(exps, axis=-1, keepdims=True)
    return shifted - xp.log(sums), exps / sums


def _softmax_last(xp: Any, logits: Array) -> Array:
    """softmax along the last axis, computed from shifted logits (no overflow)."""
    exps = xp.exp(_shifted(xp, logits))
    return exps / xp.sum(exps, axis=-1, keepdims=True)


def _nonneg_part(xp: Any, x: Array) -> Array:
    """``x`` where ``x >= 0``, else 0: the argument of the branch used for x >= 0."""
    return xp.where(x >= 0, x, xp.zeros_like(x))  # NaN goes to the x < 0 branch (_neg_part)


def _neg_part(xp: Any, x: Array) -> Array:
    """``x`` where ``x < 0`` (or NaN), else 0: the argument of the branch used for x < 0.

    NaN fails ``x >= 0``, so the x < 0 branch is selected for it; keeping NaN here
    (rather than 0) makes NaN propagate instead of becoming sigmoid(0) = 0.5.
    """
    return xp.where(x >= 0, xp.zeros_like(x), x)


def _sigmoid(xp: Any, x: Array) -> Array:
    """σ(x), choosing the branch whose exponential cannot overflow.

    Each branch is evaluated on an argument clamped to its own half-line, so the
    unselected branch never produces inf/NaN that autograd could multiply by 0.
    """
    positive, negative = _nonneg_part(xp, x), _neg_part(xp, x)
    # x >= 0: 1 / (1 + exp(-x)), exp(-x) <= 1
    upper = 1.0 / (1.0 + xp.exp(-positive))
    # x < 0: exp(x) / (1 + exp(x)), exp(x) < 1
    exp_negative = xp.exp(negative)
    lower = exp_negative / (1.0 + exp_negative)
    return xp.where(x >= 0, upper, lower)


def _log_sigmoid(xp: Any, x: Array) -> Array:
    """log σ(x) = -softplus(-x), stable for large |x|."""
    positive, negative = _nonneg_part(xp, x), _neg_part(xp, x)
    # x >= 0: -log(1 + exp(-x)), exp(-x) <= 1 so log1p is accurate
    upper = -xp.log1p(xp.exp(-positive))
    # x < 0: x - log(1 + exp(x)), exact for x -> -inf (value x, slope 1)
    lower = negative - xp.log1p(xp.exp(negative))
    return xp.where(x >= 0, upper, lower)


def _softplus(xp: Any, x: Array) -> Array:
    """softplus(x) = log(1 + exp(x)) = -log σ(-x), stable for large |x|."""
    return -_log_sigmoid(xp, -x)


# --- public API -------------------------------------------------------------------


def _prepare(x: object, name: str) -> tuple[Any, Array]:
    array = as_float_array(x, name=name)
    xp = namespace(array)
    check_floating(xp, name, array)
    return xp, to_compute(xp, array)


def _along_axis(x: object, axis: int, last_axis_fn: Any) -> Array:
    xp, logits = _prepare(x, "logits")
    axis = check_axis("logits", axis, logits.ndim)
    moved = xp.moveaxis(logits, axis, -1) if axis != logits.ndim - 1 else logits
    return move_class_axis_back(xp, last_axis_fn(xp, moved), axis)


@quiet
def softmax(logits: Array, *, axis: int = -1) -> Array:
    r"""Softmax: probabilities from logits along ``axis``.

    .. math:: \sigma(z)_j = \frac{e^{z_j}}{\sum_k e^{z_k}}
              = \frac{e^{z_j - \max z}}{\sum_k e^{z_k - \max z}}

    Args:
      logits: floating array ``[..., num_classes, ...]``; ``-inf`` marks an
        impossible class (probability 0). Python lists are accepted.
      axis: the class axis (default -1).

    Returns:
      Array of the same shape and library, each slice along ``axis`` summing to 1
      (16-bit inputs are returned in float32). A slice of all ``-inf`` is NaN.

    Example (seed 001: z = [1, 2, 3]):

    >>> import crossent as ce
    >>> ce.softmax([1.0, 2.0, 3.0])
    array([0.09003057, 0.24472847, 0.66524096])

    NOTE: unlike ``torch.softmax``, the class axis defaults to -1, and integer
    arrays raise ``TypeError`` (lists of ints are read as floats).
    """
    return _along_axis(logits, axis, _softmax_last)


@quiet
def log_softmax(logits: Array, *, axis: int = -1) -> Array:
    r"""Log-softmax: log-probabilities from logits along ``axis``.

    .. math:: \log\sigma(z)_j = z_j - \max z - \log\sum_k e^{z_k - \max z}

    Args:
      logits: floating array ``[..., num_classes, ...]``; ``-inf`` entries give ``-inf``.
      axis: the class axis (default -1).

    Returns:
      Array of the same shape (16-bit inputs in float32).

    Example (seed 003):

    >>> import crossent as ce
    >>> ce.log_softmax([[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]])
    array([[-1.1801, -1.2801, -0.8801],
           [-0.6922, -1.4922, -1.2922]])

    NOTE: unlike ``torch.log_softmax``, the class axis defaults to -1.
    """
    return _along_axis(logits, axis, _log_softmax_last)


@quiet
def sigmoid(logits: Array) -> Array:
    r"""Logistic sigmoid, element-wise.

    .. math:: \sigma(x) = \frac{1}{1 + e^{-x}}

    Computed as :math:`1/(1+e^{-x})` for :math:`x \ge 0` and :math:`e^{x}/(1+e^{x})`
    for :math:`x < 0`, so no exponential overflows.

    Args:
      logits: floating array of any shape.

    Returns:
      Array of the same shape, values in [0, 1].

    Example (seed 004, first row):

    >>> import crossent as ce
    >>> ce.sigmoid([12.0, 3.0, 2.0])
    array([0.99999386, 0.95257413, 0.88079708])

    Same numbers as ``torch.sigmoid``.
    """
    xp, x = _prepare(logits, "logits")
    return _sigmoid(xp, x)


@quiet
def log_sigmoid(logits: Array) -> Array:
    r"""Log of the sigmoid, element-wise and stable.

    .. math:: \log\sigma(x) = -\log(1 + e^{-x}) = \min(x, 0) - \log(1 + e^{-|x|})

    Args:
      logits: floating array of any shape.

    Returns:
      Array of the same shape, values <= 0; ``log_sigmoid(-1e4)`` is ``-1e4``, not ``-inf``.

    Example:

    >>> import crossent as ce
    >>> ce.log_sigmoid([0.0, -1e4])
    array([-6.93147181e-01, -1.00000000e+04])

    Same numbers as ``torch.nn.functional.logsigmoid``.
    """
    xp, x = _prepare(logits, "logits")
    return _log_sigmoid(xp, x)


@quiet
def logit(probs: Array) -> Array:
    r"""Inverse of the sigmoid: log-odds from probabilities, element-wise.

    .. math:: \operatorname{logit}(p) = \log\frac{p}{1-p} = \log p - \log(1 - p)

    Args:
      probs: floating array of probabilities in [0, 1]; 0 gives ``-inf`` and 1 gives ``+inf``.

    Returns:
      Array of the same shape with ``sigmoid(logit(p)) == p``.

    Example (seed 004: Keras turns probabilities back into logits this way):

    >>> import crossent as ce
    >>> ce.logit([0.5, 0.9])
    array([0.        , 2.19722458])

    NOTE: unlike ``torch.logit``, there is no ``eps`` clamp; values outside [0, 1] give NaN.
    """
    xp, p = _prepare(probs, "probs")
    # log1p(-p) is accurate for small p where log(1 - p) would round 1 - p
    return xp.log(p) - xp.log1p(-p)


@quiet
def softmax_inverse(probs: Array, *, axis: int = -1) -> Array:
    r"""Centred logits whose softmax is ``probs`` (the "reverse softmax" of seed 000).

    Softmax is invariant to adding a constant to every logit, so the inverse is
    defined up to that constant; this returns the logits with mean zero over
    the classes of non-zero probability:

    .. math:: z_j = \log p_j - \frac{1}{|S|}\sum_{k \in S} \log p_k,
              \quad S = \{k : p_k > 0\}

    Classes with :math:`p_j = 0` get :math:`-\infty`.

    Args:
      probs: floating array ``[..., num_classes, ...]`` of probabilities summing to 1 along ``axis``.
      axis: the class axis (default -1).

    Returns:
      Array of the same shape with ``softmax(softmax_inverse(p)) == p``.

    Example (seed 000 prints [0.7467, -0.1696, 0.2359] for the first row, which is
    the same logits shifted by log Σ exp p; softmax of both is p):

    >>> import crossent as ce
    >>> z = ce.softmax_inverse([[0.5, 0.2, 0.3], [0.8, 0.1, 0.1]])
    >>> z
    array([[ 0.47570545, -0.44058528, -0.03512017],
           [ 1.38629436, -0.69314718, -0.69314718]])
    >>> ce.softmax(z)
    array([[0.5, 0.2, 0.3],
           [0.8, 0.1, 0.1]])

    PyTorch has no such function.
    """

    def centred(xp: Any, p: Array) -> Array:
        log_probs = xp.log(p)
        positive = ~(p <= 0)  # written so that NaN counts and propagates to the whole row
        # centre over classes of non-zero probability only (log 0 = -inf would make the mean -inf)
        finite_logs = xp.where(positive, log_probs, xp.zeros_like(log_probs))
        count = xp.sum(xp.astype(positive, p.dtype), axis=-1, keepdims=True)
        mean = xp.sum(finite_logs, axis=-1, keepdims=True) / xp.where(
            count == 0, xp.ones_like(count), count
        )
        return log_probs - mean

    xp, p = _prepare(probs, "probs")
    axis = check_axis("probs", axis, p.ndim)
    moved = xp.moveaxis(p, axis, -1) if axis != p.ndim - 1 else p
    return move_class_axis_back(xp, centred(xp, moved), axis)
