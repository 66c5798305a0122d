"""Divergences between two distributions given as logits: KL, generalised JSD, TVD.

These are the soft losses of knowledge distillation: a student's logits against a
teacher's, both turned into distributions by a softmax at temperature T along the
class axis,

.. math:: s = \\log\\operatorname{softmax}(z_s / T), \\qquad q = \\log\\operatorname{softmax}(z_t / T),
          \\qquad p_s = e^{s}, \\quad p_t = e^{q}.

Each divergence has one private implementation ``_<name>(..., compute_grad)``
returning ``(loss, grad)``, the gradient w.r.t. the student's logits written next to
the forward maths. Every gradient ends with the softmax's chain rule

.. math:: \\frac{\\partial \\ell}{\\partial z_{s,k}}
          = \\frac{1}{T}\\Big(g_k - p_{s,k} \\sum_c g_c\\Big), \\qquad g_c = \\partial\\ell / \\partial s_c,

so each divergence only writes :math:`g`, its derivative in the student's
log-probabilities.

Conventions: ``-inf`` logits are impossible classes (0 · log 0 = 0): a ``-inf``
teacher logit contributes 0 to KL(p_t ‖ p_s); a ``-inf`` student logit where the
teacher has mass makes that KL ``inf`` (the mathematics is infinite). Logits up
to ±1e4 are exact (the log-softmax subtracts the row maximum). 16-bit inputs are
computed in float32; the loss is returned in the computation dtype, the
gradient in the student's input dtype. No T² factor here (the distillation
losses of :mod:`crossent.torch` apply it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, cast

from . import _validate as v
from ._array import (
    Array,
    arrays_in_namespace,
    move_class_axis_back,
    move_class_axis_last,
    quiet,
    static_shape,
    to_compute,
)
from ._reduce import gradient_scale, reduce
from .activations import _log_softmax_last

__all__ = ["kl_divergence_with_logits", "jensen_shannon_divergence", "total_variation_distance"]

DivergenceReduction = Literal["batchmean", "mean", "sum", "none"]
LossAndGrad = tuple[Array, "Array | None"]


@dataclass
class _Pair:
    """Validated student and teacher log-probabilities at temperature T, classes last."""

    xp: Any
    student: Array  # s = log_softmax(z_s / T), compute dtype
    teacher: Array  # q = log_softmax(z_t / T)
    temperature: float | Array
    axis: int
    input_dtype: Any


def _check_reduction(reduction: object) -> DivergenceReduction:
    """'batchmean' or 'mean' (both: the mean over distributions), 'sum' or 'none'."""
    if reduction not in ("batchmean", "mean", "sum", "none"):
        raise ValueError(
            f"reduction must be one of 'batchmean', 'mean', 'sum', 'none', got {reduction!r}"
        )
    return cast(DivergenceReduction, reduction)


def _prepare(student_logits: Array, teacher_logits: Array, axis: int,
             temperature: float | Array) -> _Pair:
    xp, (student, teacher) = arrays_in_namespace(
        student_logits, teacher_logits, floating=(True, True),
        names=("student_logits", "teacher_logits"), required=2)
    for name, array in (("student_logits", student), ("teacher_logits", teacher)):
        v.check_floating(xp, name, array)
    v.check_same_shape("teacher_logits", teacher, "student_logits", student)
    temperature = v.check_positive("temperature", temperature)
    axis = v.check_axis("student_logits", axis, student.ndim)
    input_dtype = student.dtype
    student, teacher = to_compute(xp, student), to_compute(xp, teacher)
    dtype = xp.result_type(student, teacher)  # a float64 teacher keeps its precision
    student, teacher = xp.astype(student, dtype), xp.astype(teacher, dtype)
    student = move_class_axis_last(xp, student, axis)
    teacher = move_class_axis_last(xp, teacher, axis)
    return _Pair(xp, _log_softmax_last(xp, student / temperature),
                 _log_softmax_last(xp, teacher / temperature), temperature, axis, input_dtype)


def _num_distributions(xp: Any, pair: _Pair) -> Array:
    """The number of distributions (positions: the logits without the class axis)."""
    shape = static_shape(pair.student)[:-1]
    return xp.asarray(math.prod(shape), dtype=pair.student.dtype)  # type: ignore[arg-type]


def _finish(pair: _Pair, losses: Array, reduction: DivergenceReduction,
            log_prob_grad: Array | None) -> LossAndGrad:
    """Reduce the per-distribution ``losses``; turn ``g = ∂ℓ/∂s`` into the logits' gradient."""
    xp = pair.xp
    mode: v.Reduction = "mean" if reduction == "batchmean" else reduction
    divisor = _num_distributions(xp, pair)
    loss = reduce(xp, losses, mode, divisor)
    if log_prob_grad is None:
        return loss, None
    probs = xp.exp(pair.student)
    # ∂ℓ/∂z_k = (g_k - p_k Σ_c g_c) / T   (log-softmax's Jacobian δ_ck - p_k, then z / T)
    grad = (log_prob_grad - probs * xp.sum(log_prob_grad, axis=-1, keepdims=True))
    grad = grad * (gradient_scale(xp, mode, divisor, grad.dtype) / pair.temperature)
    grad = move_class_axis_back(xp, grad, pair.axis)
    return loss, grad if grad.dtype == pair.input_dtype else xp.astype(grad, pair.input_dtype)


def _mass_times(xp: Any, log_p: Array, value: Array) -> Array:
    """``p · value`` elementwise, 0 where p has no mass (log p = -inf).

    ``value`` is a difference of log-probabilities, NaN where both are -inf
    (-inf - -inf); it is replaced before the product, so neither the value nor an
    autograd gradient turns NaN there. A NaN logit makes its whole row's log p NaN,
    so it still propagates.
    """
    no_mass = log_p == -math.inf
    return xp.exp(log_p) * xp.where(no_mass, xp.zeros_like(value), value)


def _kl_terms(xp: Any, log_p: Array, log_r: Array) -> Array:
    """KL(p ‖ r) = Σ_c p_c (log p_c - log r_c) per distribution, with 0 · log 0 = 0."""
    # a class where p has no mass adds 0, even where r has none either (-inf - -inf)
    return xp.sum(_mass_times(xp, log_p, log_p - log_r), axis=-1)


# ==================================================================================
# KL divergence
# ==================================================================================


@quiet
def _kl_divergence_with_logits(
    student_logits: Array,
    teacher_logits: Array,
    *,
    axis: int = -1,
    temperature: float | Array = 1.0,
    reverse: bool = False,
    reduction: str = "batchmean",
    compute_grad: bool = False,
) -> LossAndGrad:
    mode = _check_reduction(reduction)
    if not isinstance(reverse, bool):
        raise TypeError(f"reverse must be True or False, got {reverse!r}")
    pair = _prepare(student_logits, teacher_logits, axis, temperature)
    xp, s, q = pair.xp, pair.student, pair.teacher
    if not reverse:
        # KL(p_t ‖ p_s) = Σ p_t (q - s)
        losses = _kl_terms(xp, q, s)
        # g_c = ∂ℓ/∂s_c = -p_t,c
        grad = -xp.exp(q) if compute_grad else None
    else:
        # KL(p_s ‖ p_t) = Σ p_s (s - q)
        losses = _kl_terms(xp, s, q)
        # g_c = p_s,c (s_c - q_c + 1); the +1 cancels in the chain rule (Σ p_s = 1)
        grad = _mass_times(xp, s, s - q) if compute_grad else None
    return _finish(pair, losses, mode, grad)


def kl_divergence_with_logits(
    student_logits: Array,
    teacher_logits: Array,
    *,
    axis: int = -1,
    temperature: float | Array = 1.0,
    reverse: bool = False,
    reduction: DivergenceReduction = "batchmean",
) -> Array:
    r"""KL divergence between the softmaxes of a teacher's and a student's logits.

    .. math::
        \ell_i = D_{KL}(p_t \,\|\, p_s) = \sum_c p_{t,ic}\,(q_{ic} - s_{ic}), \qquad
        s = \log\operatorname{softmax}(z_s / T),\ q = \log\operatorname{softmax}(z_t / T)

    and with ``reverse=True`` :math:`D_{KL}(p_s \,\|\, p_t) = \sum_c p_{s,ic}(s_{ic} - q_{ic})`.
    Its gradient in the student's logits is :math:`(p_s - p_t) / T` (forward KL).
    The identity of the seeds holds: :math:`H(p_t, p_s) = H(p_t) + D_{KL}(p_t \| p_s)`.

    Args:
      student_logits: floating array ``[..., num_classes, ...]`` (the model trained).
      teacher_logits: floating array of the same shape (the target distribution's logits).
      axis: the class axis (default -1).
      temperature: T > 0 dividing both logits before the softmax (no T² factor here).
      reverse: False for KL(p_t ‖ p_s) (default, distillation's usual loss), True for
        the mode-seeking KL(p_s ‖ p_t).
      reduction: 'batchmean' (default) or 'mean': the sum divided by the number of
        distributions (positions); 'sum'; 'none' (``student_logits`` without ``axis``).

    Returns:
      A scalar, or the per-distribution divergences for 'none'. ``-inf`` teacher logits
      contribute 0; a ``-inf`` student logit where the teacher has mass gives ``inf``.

    Example (the seeds' 0.5108 = KL([0.5, 0.5] ‖ [0.9, 0.1]), from logits):

    >>> import math
    >>> import crossent as ce
    >>> float(ce.kl_divergence_with_logits([math.log(0.9), math.log(0.1)], [0.0, 0.0]))
    0.51082...

    NOTE: ``F.kl_div(input, target, log_target=True)`` takes the *student's log-probabilities*
    first and computes KL(target ‖ input) element-wise; its 'batchmean' divides by
    ``input.shape[0]`` only and its 'mean' by the number of elements. Here both
    'batchmean' and 'mean' divide by the number of distributions (for ``[B, T, V]``
    logits: by B·T), which is the mean KL per distribution. Keras' ``KLDivergence`` and
    optax's ``kl_divergence_with_log_targets`` are the per-distribution values ('none').
    """
    return _kl_divergence_with_logits(
        student_logits, teacher_logits, axis=axis, temperature=temperature, reverse=reverse,
        reduction=reduction,
    )[0]


# ==================================================================================
# generalised Jensen-Shannon divergence
# ==================================================================================


def _log_mixture(xp: Any, beta: float, log_p: Array, log_r: Array) -> Array:
    """log(β e^{log p} + (1 - β) e^{log r}), -inf where neither has mass."""
    empty = ~(xp.isfinite(log_p) | xp.isfinite(log_r))
    # logaddexp(-inf, -inf) has a NaN derivative: evaluate it on zeros there, then put -inf back
    safe_p = xp.where(empty, xp.zeros_like(log_p), log_p)
    safe_r = xp.where(empty, xp.zeros_like(log_r), log_r)
    mixed = xp.logaddexp(math.log(beta) + safe_p, math.log1p(-beta) + safe_r)
    return xp.where(empty, xp.full_like(mixed, -math.inf), mixed)


@quiet
def _jensen_shannon_divergence(
    student_logits: Array,
    teacher_logits: Array,
    *,
    beta: float = 0.5,
    axis: int = -1,
    temperature: float | Array = 1.0,
    reduction: str = "batchmean",
    compute_grad: bool = False,
) -> LossAndGrad:
    mode = _check_reduction(reduction)
    beta = float(v.check_unit_interval("beta", beta, differentiable=False))
    if beta == 0.0:  # Liger's forward KL at the end point
        return _kl_divergence_with_logits(
            student_logits, teacher_logits, axis=axis, temperature=temperature,
            reduction=mode, compute_grad=compute_grad)
    if beta == 1.0:  # Liger's reverse KL at the other end point
        return _kl_divergence_with_logits(
            student_logits, teacher_logits, axis=axis, temperature=temperature, reverse=True,
            reduction=mode, compute_grad=compute_grad)
    pair = _prepare(student_logits, teacher_logits, axis, temperature)
    xp, s, q = pair.xp, pair.student, pair.teacher
    # M = β p_t + (1 - β) p_s, in log space
    log_m = _log_mixture(xp, beta, q, s)
    # JSD_β = β KL(p_t ‖ M) + (1 - β) KL(p_s ‖ M)
    losses = beta * _kl_terms(xp, q, log_m) + (1.0 - beta) * _kl_terms(xp, s, log_m)
    # g_c = ∂ℓ/∂s_c = (1 - β) p_s,c (s_c - log M_c)   (the terms in log M cancel: Σ ∂M = 0)
    grad = (1.0 - beta) * _mass_times(xp, s, s - log_m) if compute_grad else None
    return _finish(pair, losses, mode, grad)


def jensen_shannon_divergence(
    student_logits: Array,
    teacher_logits: Array,
    *,
    beta: float = 0.5,
    axis: int = -1,
    temperature: float | Array = 1.0,
    reduction: DivergenceReduction = "batchmean",
) -> Array:
    r"""Generalised Jensen–Shannon divergence of the teacher's and the student's softmaxes.

    .. math::
        \mathrm{JSD}_\beta = \beta\, D_{KL}(p_t \,\|\, M) + (1-\beta)\, D_{KL}(p_s \,\|\, M),
        \qquad M = \beta\, p_t + (1-\beta)\, p_s

    for :math:`0 < \beta < 1` (β = 0.5: the symmetric JSD, at most log 2), and at the end
    points :math:`\beta = 0`: :math:`D_{KL}(p_t \| p_s)`, :math:`\beta = 1`:
    :math:`D_{KL}(p_s \| p_t)`. This is Liger-Kernel's definition
    (``liger_kernel/ops/jsd.py``, ``LigerJSD``; also TRL's ``generalized_jsd_loss``),
    with p = softmax(logits / T). The end points are not the limits of the interior
    formula (which tends to 0 there): they are the two KLs, as Liger special-cases them.

    Args:
      student_logits: floating array ``[..., num_classes, ...]``.
      teacher_logits: floating array of the same shape.
      beta: β in [0, 1], a Python number (default 0.5).
      axis: the class axis (default -1).
      temperature: T > 0 dividing both logits (no T² factor).
      reduction: 'batchmean' or 'mean' (the mean over distributions), 'sum' or 'none'.

    Returns:
      A scalar, or the per-distribution divergences for 'none'.

    Example (disjoint distributions: the JSD is log 2):

    >>> import crossent as ce
    >>> float(ce.jensen_shannon_divergence([0.0, -float("inf")], [-float("inf"), 0.0]))
    0.69314...

    NOTE: PyTorch has no JSD. Liger's fused-linear ``LigerFusedLinearJSDLoss``
    (``chunked_loss/jsd_loss.py``) mixes the other way round, M = β p_s + (1 - β) p_t,
    weighting β·KL(p_t ‖ M) + (1 - β)·KL(p_s ‖ M), without the end-point branches; the
    two agree at β = 0.5.
    """
    return _jensen_shannon_divergence(
        student_logits, teacher_logits, beta=beta, axis=axis, temperature=temperature,
        reduction=reduction,
    )[0]


# ==================================================================================
# total variation distance
# ==================================================================================


@quiet
def _total_variation_distance(
    student_logits: Array,
    teacher_logits: Array,
    *,
    axis: int = -1,
    temperature: float | Array = 1.0,
    reduction: str = "batchmean",
    compute_grad: bool = False,
) -> LossAndGrad:
    mode = _check_reduction(reduction)
    pair = _prepare(student_logits, teacher_logits, axis, temperature)
    xp = pair.xp
    student_probs, teacher_probs = xp.exp(pair.student), xp.exp(pair.teacher)
    difference = student_probs - teacher_probs
    # TVD = ½ Σ_c |p_s,c - p_t,c|
    losses = 0.5 * xp.sum(xp.abs(difference), axis=-1)
    # g_c = ∂ℓ/∂s_c = ½ sign(p_s,c - p_t,c) p_s,c   (sign 0 where they are equal, as autograd)
    grad = 0.5 * xp.sign(difference) * student_probs if compute_grad else None
    return _finish(pair, losses, mode, grad)


def total_variation_distance(
    student_logits: Array,
    teacher_logits: Array,
    *,
    axis: int = -1,
    temperature: float | Array = 1.0,
    reduction: DivergenceReduction = "batchmean",
) -> Array:
    r"""Total variation distance between the student's and the teacher's softmaxes.

    .. math:: \ell_i = \tfrac12 \sum_c \big|\, p_{t,ic} - p_{s,ic} \big|, \qquad
              p = \operatorname{softmax}(z / T)

    In [0, 1]: 0 for equal distributions, 1 for disjoint ones. Its gradient in the
    student's logits is :math:`\tfrac{1}{T} p_s \odot (u - \langle p_s, u\rangle)` with
    :math:`u = \tfrac12\operatorname{sign}(p_s - p_t)` (sign 0 at a tie, as PyTorch's
    autograd of ``abs``).

    Args:
      student_logits: floating array ``[..., num_classes, ...]``.
      teacher_logits: floating array of the same shape.
      axis: the class axis (default -1).
      temperature: T > 0 dividing both logits.
      reduction: 'batchmean' or 'mean' (the mean over distributions), 'sum' or 'none'.

    Returns:
      A scalar, or the per-distribution distances for 'none'.

    Example:

    >>> import math
    >>> import crossent as ce
    >>> round(float(ce.total_variation_distance([math.log(0.9), math.log(0.1)], [0.0, 0.0])), 6)
    0.4

    PyTorch has no TVD; Liger-Kernel's ``LigerTVDLoss`` takes probabilities, not logits.
    """
    return _total_variation_distance(
        student_logits, teacher_logits, axis=axis, temperature=temperature, reduction=reduction,
    )[0]
