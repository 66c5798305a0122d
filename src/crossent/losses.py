"""The losses of the seeds, each with its analytic gradient written beside it.

Every loss has one private implementation ``_<name>(..., compute_grad)`` that
returns ``(loss, grad)``: the forward maths and, right next to it, the
derivative with respect to the first argument (as micrograd keeps them
together). The public functions here return the loss; :mod:`crossent.grad`
returns the gradient; :func:`crossent.value_and_grad` both from one pass.

Class-axis losses (nll_loss, cross_entropy, softmax_focal_loss) are written
with one *coefficient* array ``a`` of the logits' shape — the target mass each
class receives, with class weights and label smoothing folded in:

.. math:: \\ell = -\\sum_c a_c \\log p_c, \\qquad
          \\frac{\\partial \\ell}{\\partial z_k} = \\Big(\\sum_c a_c\\Big) p_k - a_k

For integer targets :math:`a = (1-\\varepsilon)\\, w_y e_y + \\frac{\\varepsilon}{C} w`;
for probability targets :math:`a = w \\odot (t (1-\\varepsilon) + \\varepsilon / C)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import _validate as v
from . import kernels
from ._array import (
    Array,
    arrays_in_namespace,
    has_autograd,
    is_zero,
    move_class_axis_back,
    mul_zero_safe,
    num_elements,
    quiet,
    static_shape,
    to_compute,
)
from ._plan import ClassInputs, plan_class, prepare_class
from ._reduce import gradient_scale, reduce
from .activations import _log_sigmoid, _log_softmax_and_softmax_last, _log_softmax_last, _sigmoid

__all__ = [
    "nll_loss",
    "cross_entropy",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "sigmoid_focal_loss",
    "softmax_focal_loss",
]

LossAndGrad = tuple[Array, "Array | None"]


# ==================================================================================
# Class-axis losses: shared preparation
# ==================================================================================


def _finish_class_grad(inputs: ClassInputs, grad: Array, scale: Array | float) -> Array:
    """Scale by the reduction, zero positions not counted, restore axis and input dtype."""
    xp = inputs.xp
    grad = grad * scale
    if inputs.counted is not None:
        grad = xp.where(inputs.counted[..., None], grad, xp.zeros_like(grad))
    grad = move_class_axis_back(xp, grad, inputs.axis)
    return grad if grad.dtype == inputs.input_dtype else xp.astype(grad, inputs.input_dtype)


# ==================================================================================
# nll_loss
# ==================================================================================


@quiet
def _nll_loss(
    log_probs: Array,
    target: Array,
    *,
    axis: int = -1,
    weight: Array | None = None,
    ignore_index: int | None = -100,
    reduction: str = "mean",
    where: Array | None = None,
    compute_grad: bool = False,
) -> LossAndGrad:
    reduction = v.check_reduction(reduction)
    inputs = prepare_class(
        log_probs, target, axis=axis, weight=weight, ignore_index=ignore_index, where=where,
        name="log_probs",
    )
    xp = inputs.xp
    plan = plan_class(inputs)
    coefficients, divisor = plan.coefficients, plan.divisor
    # ℓ = -Σ_c a_c · log p_c   (0 · -inf = 0 for impossible classes)
    losses = plan.only_counted(xp, -xp.sum(mul_zero_safe(xp, coefficients, inputs.values), axis=-1))
    loss = reduce(xp, losses, reduction, divisor)
    if not compute_grad:
        return loss, None
    # ∂ℓ/∂(log p_k) = -a_k
    scale = gradient_scale(xp, reduction, divisor, coefficients.dtype)
    return loss, _finish_class_grad(inputs, -coefficients, scale)


def nll_loss(
    log_probs: Array,
    target: Array,
    *,
    axis: int = -1,
    weight: Array | None = None,
    ignore_index: int | None = -100,
    reduction: v.Reduction = "mean",
    where: Array | None = None,
) -> Array:
    r"""Negative log-likelihood: pick the target's log-probability and negate it.

    .. math:: \ell_i = -w_{y_i}\, x_{i, y_i}

    It takes log-probabilities and does no softmax and no log of its own (seed 000:
    "NLLLoss only picks and negates"); ``cross_entropy(z, y) == nll_loss(log_softmax(z), y)``.

    Args:
      log_probs: floating array ``[..., num_classes, ...]`` of log-probabilities.
      target: integer class indices, the shape of ``log_probs`` without ``axis``;
        or probabilities of the shape of ``log_probs`` (then
        :math:`\ell_i = -\sum_c w_c t_{ic} x_{ic}`).
      axis: the class axis (default -1).
      weight: optional class weights ``[num_classes]``.
      ignore_index: integer targets equal to it are not counted (loss 0, no gradient);
        None counts every target.
      reduction: 'none' (per position), 'mean' or 'sum'. With integer targets, 'mean'
        divides by the summed weight of the counted targets (their count without
        weights); with probability targets, by the number of counted positions.
      where: optional boolean mask broadcastable to the positions
        (``log_probs`` without ``axis``); False positions are not counted.

    Returns:
      Scalar for 'mean'/'sum'; for 'none', the shape of ``log_probs`` without ``axis``.

    Example (seed 000 and seed 003: NLLLoss only picks and negates):

    >>> import crossent as ce
    >>> ce.nll_loss([[0.0, 0.1, 0.2], [0.3, 0.4, 0.5], [0.6, 0.7, 0.8]], [0, 1, 2],
    ...             reduction="none")
    array([-0. , -0.4, -0.8])
    >>> ce.nll_loss([[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]], [2, 1], reduction="none")
    array([-0.5, -0.4])

    NOTE: unlike ``torch.nn.functional.nll_loss``, the class axis is -1 (pass ``axis=1``
    for PyTorch's layout), probability targets are accepted, and a 'mean' with
    nothing counted is 0, not NaN.
    """
    return _nll_loss(
        log_probs, target, axis=axis, weight=weight, ignore_index=ignore_index,
        reduction=reduction, where=where,
    )[0]


# ==================================================================================
# cross_entropy
# ==================================================================================


@quiet
def _cross_entropy(
    logits: Array,
    target: Array,
    *,
    axis: int = -1,
    weight: Array | None = None,
    ignore_index: int | None = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    where: Array | None = None,
    compute_grad: bool = False,
) -> LossAndGrad:
    reduction = v.check_reduction(reduction)
    label_smoothing = v.check_unit_interval("label_smoothing", label_smoothing)
    inputs = prepare_class(
        logits, target, axis=axis, weight=weight, ignore_index=ignore_index, where=where,
        name="logits",
    )
    # NumPy float32/64: the fused kernel, same maths in one sweep
    if isinstance(label_smoothing, float) and kernels.applies(inputs):
        return kernels.cross_entropy(inputs, label_smoothing, reduction, compute_grad)
    xp = inputs.xp
    if compute_grad:
        log_probs, probs = _log_softmax_and_softmax_last(xp, inputs.values)
    else:
        log_probs = _log_softmax_last(xp, inputs.values)
    plan = plan_class(inputs, label_smoothing)
    coefficients, divisor = plan.coefficients, plan.divisor
    # ℓ = -Σ_c a_c · log softmax(z)_c   (0 · -inf = 0: impossible classes with no target mass)
    losses = plan.only_counted(xp, -xp.sum(mul_zero_safe(xp, coefficients, log_probs), axis=-1))
    loss = reduce(xp, losses, reduction, divisor)
    if not compute_grad:
        return loss, None
    # ∂ℓ/∂z_k = (Σ_c a_c) softmax(z)_k - a_k      (= softmax - one_hot for a plain target)
    total_mass = xp.sum(coefficients, axis=-1, keepdims=True)
    grad = total_mass * probs - coefficients
    scale = gradient_scale(xp, reduction, divisor, grad.dtype)
    return loss, _finish_class_grad(inputs, grad, scale)


def cross_entropy(
    logits: Array,
    target: Array,
    *,
    axis: int = -1,
    weight: Array | None = None,
    ignore_index: int | None = -100,
    label_smoothing: float = 0.0,
    reduction: v.Reduction = "mean",
    where: Array | None = None,
) -> Array:
    r"""Softmax cross-entropy from logits, with integer or probability targets.

    .. math::
        \ell_i = -\sum_c a_{ic} \log\operatorname{softmax}(z_i)_c, \qquad
        a_{ic} = \begin{cases}
          (1-\varepsilon)\, w_{y_i} [c = y_i] + \tfrac{\varepsilon}{C} w_c & \text{class indices}\\
          w_c \big((1-\varepsilon)\, t_{ic} + \tfrac{\varepsilon}{C}\big) & \text{probabilities}
        \end{cases}

    This is ``nll_loss(log_softmax(logits), target)`` (seed 003) computed stably:
    log-softmax subtracts the row maximum, so |logits| up to 1e4 are exact, and
    ``-inf`` logits mark impossible classes (0 · log 0 = 0: losses and gradients
    stay finite unless target mass sits on an impossible class). A ``+inf`` logit
    makes its row NaN (as PyTorch), and a NaN logit makes its row's loss NaN even
    where the target mass is 0; positions not counted stay 0. Under a trace
    (``jax.jit``) an out-of-range class index gives NaN for its row.

    Args:
      logits: floating array ``[..., num_classes, ...]`` (any number of dimensions,
        e.g. ``(N, C, H, W)`` with ``axis=1``).
      target: integer class indices with the shape of ``logits`` without ``axis``,
        or probabilities with the shape of ``logits`` (rows need not be one-hot).
      axis: the class axis (default -1).
      weight: optional class weights ``[num_classes]``.
      ignore_index: integer targets equal to it are not counted (loss 0, gradient 0);
        None counts every target.
      label_smoothing: ε in [0, 1]; the target becomes :math:`t(1-\varepsilon) + \varepsilon/C`.
      reduction: 'none', 'mean' or 'sum'. 'mean' divides by the summed weight of the
        counted targets (integer targets; their count without weights) or by the
        number of counted positions (probability targets; weights do not enter).
        Nothing counted (or a zero total weight) gives 0 with a zero gradient.
      where: optional boolean mask broadcastable to the positions (``logits``
        without ``axis``), e.g. padding; False positions are not counted and their
        targets are not checked.

    Returns:
      Scalar for 'mean'/'sum'; per-position losses (``logits`` without ``axis``) for 'none'.
      16-bit logits are computed and returned in float32.

    Raises:
      ValueError: class index out of range, shape mismatch, bad reduction, weight length.
      TypeError: integer logits, floating class indices.

    Example (seed 003, and seed 000's "reverse softmax" logits):

    >>> import crossent as ce
    >>> ce.cross_entropy([[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]], [2, 1], reduction="none")
    array([0.8801, 1.4922])
    >>> ce.cross_entropy([[0.7467, -0.1696, 0.2359], [1.2666, -0.8129, -0.8129]], [0, 0],
    ...                  reduction="none")
    array([0.6931, 0.2231])

    NOTE: unlike ``torch.nn.functional.cross_entropy``, the class axis is -1 (pass
    ``axis=1`` for PyTorch's ``(N, C, ...)`` layout or use ``crossent.compat.torch``),
    and a 'mean' with nothing counted is 0 with a zero gradient where PyTorch gives NaN.
    Numbers are otherwise PyTorch's, including the weighted mean and label smoothing
    with weights and ``ignore_index``.
    """
    return _cross_entropy(
        logits, target, axis=axis, weight=weight, ignore_index=ignore_index,
        label_smoothing=label_smoothing, reduction=reduction, where=where,
    )[0]


# ==================================================================================
# softmax_focal_loss
# ==================================================================================


def focal_power(xp: Any, complement: Array, gamma: float | Array) -> Array:
    r"""The focal modulation :math:`(1 - p_t)^\gamma` for ``complement`` = 1 - p_t in [0, 1].

    At ``complement == 0`` the power is evaluated on 1 and replaced by its value
    (0, or 1 for γ = 0), so autograd's derivative there is 0 — the limit for γ > 0 —
    instead of γ·0^(γ-1)·0 = inf·0 = NaN for γ < 1 (optax's log-space form gives 0 too).
    ``gamma`` may be an array (a traced or differentiated hyperparameter).
    """
    return _focal_power(xp, complement, gamma, with_slope=False)[0]


def _focal_power(
    xp: Any, complement: Array, gamma: float | Array, *, with_slope: bool = True
) -> tuple[Array, Array | None]:
    r"""``(f, f')``: :func:`focal_power` and its derivative :math:`\gamma (1 - p_t)^{\gamma - 1}`.

    Where ``complement == 0`` (1 - p_t rounds to 0) the slope is written 0: every focal
    gradient multiplies it by a factor that vanishes there (p log p, or p (1 - p)), and
    0^(γ-1) = inf for γ < 1 would make the product NaN.
    """
    if is_zero(gamma):
        return xp.ones_like(complement), None
    saturated = complement == 0
    safe = xp.where(saturated, xp.ones_like(complement), complement)
    at_zero = xp.zeros_like(complement)  # 0^γ = 0 for γ > 0, and 1 for an array γ = 0
    if not isinstance(gamma, float):
        at_zero = at_zero + xp.astype(gamma == 0, complement.dtype)
    power = xp.where(saturated, at_zero, safe**gamma)
    if not with_slope:
        return power, None
    slope = gamma * safe ** (gamma - 1.0)
    return power, xp.where(saturated, xp.zeros_like(slope), slope)


@quiet
def _softmax_focal_loss(
    logits: Array,
    target: Array,
    *,
    axis: int = -1,
    alpha: Array | None = None,
    gamma: float = 2.0,
    reduction: str = "mean",
    where: Array | None = None,
    compute_grad: bool = False,
) -> LossAndGrad:
    reduction = v.check_reduction(reduction)
    gamma = v.check_non_negative("gamma", gamma)
    class_alpha = None
    if alpha is not None and getattr(alpha, "ndim", 0) != 0 or isinstance(alpha, (list, tuple)):
        class_alpha = alpha  # per-class weights, validated like `weight`
    inputs = prepare_class(
        logits, target, axis=axis, weight=class_alpha, ignore_index=None, where=where,
        name="logits", weight_name="alpha",
    )
    xp = inputs.xp
    plan = plan_class(inputs, mean_over="positions")
    coefficients, divisor = plan.coefficients, plan.divisor
    if alpha is not None and class_alpha is None:
        coefficients = v.check_non_negative("alpha", alpha) * coefficients  # type: ignore[arg-type]
    log_probs = _log_softmax_last(xp, inputs.values)
    probs = xp.exp(log_probs)
    # 1 - p_c = -expm1(log p_c): exact as p_c -> 1, where 1 - p_c would round to 0
    complement = -xp.expm1(log_probs)
    # f_c = (1 - p_c)^γ, the focal modulation
    modulation, modulation_slope = _focal_power(xp, complement, gamma, with_slope=compute_grad)
    # ℓ = -Σ_c a_c (1 - p_c)^γ log p_c
    losses = plan.only_counted(xp, -xp.sum(mul_zero_safe(xp, coefficients * modulation, log_probs), axis=-1))
    loss = reduce(xp, losses, reduction, divisor)
    if not compute_grad:
        return loss, None
    # ∂[(1-p_c)^γ log p_c]/∂z_k = (δ_ck - p_k) h_c,
    #   h_c = (1-p_c)^γ - γ (1-p_c)^(γ-1) p_c log p_c
    # so ∂ℓ/∂z_k = p_k Σ_c a_c h_c - a_k h_k   (cross-entropy's form with a_c h_c for a_c)
    if modulation_slope is None:  # γ = 0
        h = xp.ones_like(probs)
    else:
        # (1-p)^(γ-1) p log p -> 0 as p -> 1 (the slope is 0 where 1 - p rounds to 0),
        # and p log p -> 0 as p -> 0 (an impossible class, log p = -inf): 0, not 0 · -inf
        h = modulation - modulation_slope * probs * xp.where(
            (complement == 0) | (probs == 0), xp.zeros_like(log_probs), log_probs
        )
    weighted = mul_zero_safe(xp, coefficients, h)
    grad = probs * xp.sum(weighted, axis=-1, keepdims=True) - weighted
    scale = gradient_scale(xp, reduction, divisor, grad.dtype)
    return loss, _finish_class_grad(inputs, grad, scale)


def softmax_focal_loss(
    logits: Array,
    target: Array,
    *,
    axis: int = -1,
    alpha: float | Array | None = None,
    gamma: float = 2.0,
    reduction: v.Reduction = "mean",
    where: Array | None = None,
) -> Array:
    r"""Multi-class focal loss on softmax probabilities (Lin et al. 2017, softmax form).

    .. math:: \ell_i = -\sum_c \alpha_c\, t_{ic}\, (1 - p_{ic})^{\gamma} \log p_{ic},
              \qquad p_i = \operatorname{softmax}(z_i)

    With integer targets :math:`t_i` is one-hot:
    :math:`\ell_i = -\alpha_{y_i}(1-p_{i,y_i})^\gamma \log p_{i,y_i}`.
    ``gamma=0`` and ``alpha=None`` give :func:`cross_entropy`.

    Args:
      logits: floating array ``[..., num_classes, ...]``.
      target: integer class indices (``logits`` without ``axis``) or probabilities (``logits``' shape).
      axis: the class axis (default -1).
      alpha: None (no weighting), a number, or per-class weights ``[num_classes]``.
      gamma: focusing parameter γ >= 0 (default 2).
      reduction: 'none', 'mean' (over counted positions) or 'sum'.
      where: optional boolean mask broadcastable to the positions.

    Returns:
      Scalar for 'mean'/'sum'; per-position losses for 'none'.

    Example:

    >>> import crossent as ce
    >>> ce.softmax_focal_loss([[2.0, 0.0, 0.0]], [0], gamma=2.0, reduction="none")
    array([0.01086933])

    NOTE: PyTorch has no softmax focal loss; torchvision's ``sigmoid_focal_loss`` is
    :func:`sigmoid_focal_loss`. 'mean' divides by the number of counted positions
    (``alpha`` does not enter the divisor).
    """
    return _softmax_focal_loss(
        logits, target, axis=axis, alpha=alpha, gamma=gamma, reduction=reduction, where=where,
    )[0]


# ==================================================================================
# Element-wise (binary) losses: shared preparation
# ==================================================================================


@dataclass
class _ElementInputs:
    """Validated inputs of an element-wise loss."""

    xp: Any
    values: Array  # probabilities or logits, compute dtype
    target: Array  # compute dtype, same shape
    counted: Array | None  # bool, broadcast to values' shape; None = all
    divisor: Array  # number of counted elements
    input_dtype: Any
    extra: list  # the optional weight arrays passed as `extra`, converted to this library


def _prepare_elements(
    values: Array, target: Array, *, where: Array | None, name: str,
    extra: dict[str, Array | None] | None = None,
) -> _ElementInputs:
    extra = extra or {}
    xp, (values, target, where, *extra_arrays) = arrays_in_namespace(
        values, target, where, *extra.values(),
        floating=(True, False, False) + (True,) * len(extra),
        names=(name, "target", "where", *extra), required=2,
    )
    v.check_floating(xp, name, values)
    v.check_same_shape("target", target, name, values)
    input_dtype = values.dtype
    values = to_compute(xp, values)
    target = xp.astype(target, values.dtype)
    shape = static_shape(values)
    counted = None
    if where is not None:
        v.check_where(xp, where, name, shape)
        counted = xp.broadcast_to(where, shape)
        divisor = xp.sum(xp.astype(counted, values.dtype))
        if has_autograd(xp):  # as in _prepare_class: no 0 · NaN from masked elements
            values = xp.where(counted, values, xp.zeros_like(values))
            target = xp.where(counted, target, xp.zeros_like(target))
    else:
        divisor = num_elements(xp, values, values.dtype)
    return _ElementInputs(xp, values, target, counted, divisor, input_dtype, extra_arrays)


def _element_weight(xp: Any, inputs: _ElementInputs, weight: Array | None, name: str) -> Array | None:
    if weight is None:
        return None
    v.check_floating(xp, name, weight)
    v.check_broadcastable(name, weight, "the loss", static_shape(inputs.values))
    return xp.astype(weight, inputs.values.dtype)


def _finish_elements(
    inputs: _ElementInputs, losses: Array, grad: Array | None, reduction: v.Reduction
) -> LossAndGrad:
    """Zero what is not counted, reduce, and scale the gradient by the reduction."""
    xp = inputs.xp
    if inputs.counted is not None:
        losses = xp.where(inputs.counted, losses, xp.zeros_like(losses))
    loss = reduce(xp, losses, reduction, inputs.divisor)
    if grad is None:
        return loss, None
    grad = grad * gradient_scale(xp, reduction, inputs.divisor, grad.dtype)
    if inputs.counted is not None:
        grad = xp.where(inputs.counted, grad, xp.zeros_like(grad))
    if grad.dtype != inputs.input_dtype:
        grad = xp.astype(grad, inputs.input_dtype)
    return loss, grad


# ==================================================================================
# binary_cross_entropy (from probabilities)
# ==================================================================================

_LOG_CLAMP = -100.0  # PyTorch clamps log(p) and log(1 - p) at -100 (aten/src/ATen/native/Loss.cpp)


def _clamped_log(xp: Any, x: Array, log_fn: Any) -> tuple[Array, Array]:
    """``max(log_fn(x), -100)`` and the mask where the clamp is inactive.

    The log is re-evaluated on a safe argument where clamped, so autograd never
    sees log(0) = -inf (whose gradient would be inf · 0 = NaN).
    """
    # written as not(<= -100) so that NaN counts as active and propagates (torch.clamp_min does)
    active = ~(log_fn(x) <= _LOG_CLAMP)
    safe = xp.where(active, x, xp.full_like(x, 0.5))
    return xp.where(active, log_fn(safe), xp.full_like(x, _LOG_CLAMP)), active


@quiet
def _binary_cross_entropy(
    probs: Array,
    target: Array,
    *,
    weight: Array | None = None,
    reduction: str = "mean",
    where: Array | None = None,
    compute_grad: bool = False,
) -> LossAndGrad:
    reduction = v.check_reduction(reduction)
    inputs = _prepare_elements(probs, target, where=where, name="probs", extra={"weight": weight})
    xp, p, t, (weight,) = inputs.xp, inputs.values, inputs.target, inputs.extra
    v.check_probabilities(xp, "probs", p)
    v.check_probabilities(xp, "target", t)
    w = _element_weight(xp, inputs, weight, "weight")
    # log p and log(1 - p) clamped at -100 as PyTorch does, so p in {0, 1} stays finite
    log_p, p_active = _clamped_log(xp, p, xp.log)
    log_not_p, not_p_active = _clamped_log(xp, p, lambda x: xp.log1p(-x))  # log1p: accurate near 0
    # ℓ = -w [t log p + (1 - t) log(1 - p)]
    losses = -(t * log_p + (1.0 - t) * log_not_p)
    if w is not None:
        losses = losses * w
    grad = None
    if compute_grad:
        # ∂ℓ/∂p = -w [t / p - (1 - t) / (1 - p)], each term 0 where its log is clamped
        zero = xp.zeros_like(p)
        one = xp.ones_like(p)
        grad = xp.where(not_p_active, (1.0 - t) / xp.where(not_p_active, 1.0 - p, one), zero)
        grad = grad - xp.where(p_active, t / xp.where(p_active, p, one), zero)
        if w is not None:
            grad = grad * w
    return _finish_elements(inputs, losses, grad, reduction)


def binary_cross_entropy(
    probs: Array,
    target: Array,
    *,
    weight: Array | None = None,
    reduction: v.Reduction = "mean",
    where: Array | None = None,
) -> Array:
    r"""Binary cross-entropy between probabilities and targets, element-wise.

    .. math:: \ell = -w\,\big[t \max(\log p, -100) + (1 - t) \max(\log(1 - p), -100)\big]

    The logs are clamped at -100 as PyTorch does, so p = 0 or 1 gives a large
    finite loss (100 per element) instead of inf. Use
    :func:`binary_cross_entropy_with_logits` when you have logits: it is exact
    where this one saturates.

    Args:
      probs: floating array of probabilities in [0, 1], any shape (e.g. ``[N, C]`` for
        multi-label: one independent yes/no per class).
      target: array of the same shape with values in [0, 1] (ints and bools accepted).
      weight: optional weights broadcastable to ``probs``.
      reduction: 'none', 'mean' (over counted elements) or 'sum'.
      where: optional boolean mask broadcastable to ``probs``.

    Returns:
      Scalar for 'mean'/'sum'; ``probs``' shape for 'none'.

    Raises:
      ValueError: ``probs`` or ``target`` outside [0, 1] (NaN propagates), shape mismatch.

    Example (seed 000 multi-label and seed 003):

    >>> import crossent as ce
    >>> ce.binary_cross_entropy([[0.4, 0.3, 0.2]], [[1.0, 0.0, 1.0]], reduction="none")
    array([[0.9163, 0.3567, 1.6094]])
    >>> ce.binary_cross_entropy([[0.3], [0.9]], [[1.0], [0.0]], reduction="none")
    array([[1.204 ], [2.3026]])

    NOTE: PyTorch's gradient at the clamp is ``(p - t) / max(p (1 - p), 1e-12)``; the
    gradient here (:func:`crossent.grad.binary_cross_entropy`) is the exact derivative
    of the clamped loss, 0 where a log is clamped. A 'mean' with nothing counted is 0.
    """
    return _binary_cross_entropy(
        probs, target, weight=weight, reduction=reduction, where=where
    )[0]


# ==================================================================================
# binary_cross_entropy_with_logits
# ==================================================================================


def _bce_terms(xp: Any, logits: Array, positive_mass: Array, negative_mass: Array) -> Array:
    """``positive_mass · softplus(-x) + negative_mass · softplus(x)``, 0·inf = 0 for x = ±inf.

    -log σ(x) = softplus(-x) and -log(1 - σ(x)) = softplus(x), both stable for large |x|:
    with masses t and 1 - t this is seed 002's max(x,0) - x·t + log(1+e^-|x|).
    """
    return mul_zero_safe(xp, positive_mass, -_log_sigmoid(xp, logits)) + mul_zero_safe(
        xp, negative_mass, -_log_sigmoid(xp, -logits)
    )


def smooth_binary_target(target: Array, label_smoothing: float | Array) -> Array:
    """Binary label smoothing: ``t (1 - ε) + ε / 2`` (Keras's binary smoothing); ε = 0 returns t."""
    if not is_zero(label_smoothing):
        return target * (1.0 - label_smoothing) + 0.5 * label_smoothing  # ε/2 per side
    return target


@quiet
def _binary_cross_entropy_with_logits(
    logits: Array,
    target: Array,
    *,
    weight: Array | None = None,
    pos_weight: Array | None = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    where: Array | None = None,
    compute_grad: bool = False,
) -> LossAndGrad:
    reduction = v.check_reduction(reduction)
    label_smoothing = v.check_unit_interval("label_smoothing", label_smoothing)
    inputs = _prepare_elements(
        logits, target, where=where, name="logits", extra={"weight": weight, "pos_weight": pos_weight}
    )
    xp, x, t, (weight, pos_weight) = inputs.xp, inputs.values, inputs.target, inputs.extra
    w = _element_weight(xp, inputs, weight, "weight")
    pw = _element_weight(xp, inputs, pos_weight, "pos_weight")
    t = smooth_binary_target(t, label_smoothing)
    positive_mass = t if pw is None else pw * t
    # ℓ = w [pw·t·softplus(-x) + (1 - t)·softplus(x)]
    losses = _bce_terms(xp, x, positive_mass, 1.0 - t)
    if w is not None:
        losses = losses * w
    grad = None
    if compute_grad:
        # ∂ℓ/∂x = w [(1 - t) σ(x) - pw·t (1 - σ(x))]   (= σ(x) - t without weights)
        sig = _sigmoid(xp, x)
        grad = (1.0 - t) * sig - positive_mass * _sigmoid(xp, -x)
        if w is not None:
            grad = grad * w
    return _finish_elements(inputs, losses, grad, reduction)


def binary_cross_entropy_with_logits(
    logits: Array,
    target: Array,
    *,
    weight: Array | None = None,
    pos_weight: Array | None = None,
    label_smoothing: float = 0.0,
    reduction: v.Reduction = "mean",
    where: Array | None = None,
) -> Array:
    r"""Sigmoid binary cross-entropy from logits, element-wise and stable.

    .. math::
        \ell = w\,\big[-p_w\, t \log\sigma(x) - (1 - t) \log(1 - \sigma(x))\big]
             = w\,\big[p_w\, t\, \mathrm{softplus}(-x) + (1 - t)\, \mathrm{softplus}(x)\big]

    Without ``pos_weight`` this is seed 002's stable form
    :math:`\max(x, 0) - x t + \log(1 + e^{-|x|})`: exact for |x| up to 1e4, where
    ``binary_cross_entropy(sigmoid(x), t)`` saturates at the -100 clamp.

    Args:
      logits: floating array, any shape (``[N]`` binary, ``[N, C]`` multi-label).
      target: same shape, values in [0, 1] (ints and bools accepted).
      weight: optional weights broadcastable to ``logits``.
      pos_weight: optional weight of the positive term, broadcastable to ``logits``
        (typically ``[C]``: negatives / positives per class).
      label_smoothing: ε in [0, 1]; targets become :math:`t(1-\varepsilon) + \varepsilon/2`
        (Keras's binary smoothing).
      reduction: 'none', 'mean' (over counted elements) or 'sum'.
      where: optional boolean mask broadcastable to ``logits``.

    Returns:
      Scalar for 'mean'/'sum'; ``logits``' shape for 'none'.

    Example (seed 002: one logit and a smoothed label; seed 004's mean BCE):

    >>> import crossent as ce
    >>> ce.binary_cross_entropy_with_logits([0.7], [0.0333333], reduction="none")
    array([1.0798527])
    >>> logits = [[12, 3, 2], [3, 10, 1], [1, 2, 5], [4, 6.5, 1.2], [3, 6, 1]]
    >>> y = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 0]]
    >>> float(ce.binary_cross_entropy_with_logits(logits, y))  # seed: 1.2554386947664657
    1.25543869476646...

    NOTE: PyTorch's ``binary_cross_entropy_with_logits`` has no ``label_smoothing``;
    otherwise the numbers are PyTorch's. A 'mean' with nothing counted is 0.
    """
    return _binary_cross_entropy_with_logits(
        logits, target, weight=weight, pos_weight=pos_weight, label_smoothing=label_smoothing,
        reduction=reduction, where=where,
    )[0]


# ==================================================================================
# sigmoid_focal_loss
# ==================================================================================


@quiet
def _sigmoid_focal_loss(
    logits: Array,
    target: Array,
    *,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    reduction: str = "mean",
    where: Array | None = None,
    compute_grad: bool = False,
) -> LossAndGrad:
    reduction = v.check_reduction(reduction)
    gamma = v.check_non_negative("gamma", gamma)
    if alpha is not None:
        alpha = v.check_unit_interval("alpha", alpha)
    inputs = _prepare_elements(logits, target, where=where, name="logits")
    xp, x, t = inputs.xp, inputs.values, inputs.target
    p = _sigmoid(xp, x)
    bce = _bce_terms(xp, x, t, 1.0 - t)  # binary_cross_entropy_with_logits' per-element loss
    # 1 - p_t = (1 - t) σ(x) + t σ(-x), with p_t = p t + (1 - p)(1 - t): a sum of two
    # non-negative terms, exact where 1 - p_t would round to 0 (saturated logits)
    complement = (1.0 - t) * p + t * _sigmoid(xp, -x)
    modulation, modulation_slope = _focal_power(xp, complement, gamma, with_slope=compute_grad)
    alpha_t = 1.0 if alpha is None else alpha * t + (1.0 - alpha) * (1.0 - t)
    # ℓ = α_t (1 - p_t)^γ BCE(x, t)   (torchvision.ops.sigmoid_focal_loss)
    losses = alpha_t * modulation * bce
    grad = None
    if compute_grad:
        # ∂p_t/∂x = (2t - 1) p (1 - p),  ∂BCE/∂x = p - t
        # ∂ℓ/∂x = α_t [(1-p_t)^γ (p - t) - γ (1-p_t)^(γ-1) (2t - 1) p (1 - p) BCE]
        grad = modulation * (p - t)
        if modulation_slope is not None:  # γ ≠ 0; the second term -> 0 as 1 - p_t -> 0
            grad = grad - modulation_slope * (2.0 * t - 1.0) * p * (1.0 - p) * bce
        grad = alpha_t * grad
    return _finish_elements(inputs, losses, grad, reduction)


def sigmoid_focal_loss(
    logits: Array,
    target: Array,
    *,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    reduction: v.Reduction = "mean",
    where: Array | None = None,
) -> Array:
    r"""Sigmoid focal loss (Lin et al. 2017), element-wise, as torchvision computes it.

    .. math::
        p_t = p t + (1 - p)(1 - t),\quad \alpha_t = \alpha t + (1 - \alpha)(1 - t),\quad
        \ell = \alpha_t (1 - p_t)^{\gamma}\, \mathrm{BCE}(x, t), \quad p = \sigma(x)

    Args:
      logits: floating array, any shape.
      target: same shape, values in [0, 1].
      alpha: weight of positives in [0, 1], or None for no weighting (torchvision: alpha < 0).
      gamma: focusing parameter γ >= 0; γ = 0 and alpha=None give
        :func:`binary_cross_entropy_with_logits`.
      reduction: 'none', 'mean' (over counted elements) or 'sum'.
      where: optional boolean mask broadcastable to ``logits``.

    Returns:
      Scalar for 'mean'/'sum'; ``logits``' shape for 'none'.

    Example:

    >>> import crossent as ce
    >>> ce.sigmoid_focal_loss([0.0, 2.0], [1.0, 0.0], reduction="none")
    array([0.0433217 , 1.23755863])

    NOTE: torchvision's ``sigmoid_focal_loss`` defaults to ``reduction="none"``;
    here the default is 'mean', like every loss in crossent.
    """
    return _sigmoid_focal_loss(
        logits, target, alpha=alpha, gamma=gamma, reduction=reduction, where=where
    )[0]
