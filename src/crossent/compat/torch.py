r"""PyTorch's cross-entropy numbers (``torch.nn.functional``), computed by crossent's core.

Same names, argument order (including the deprecated ``size_average`` and
``reduce``) and defaults as ``torch.nn.functional``; NumPy, PyTorch (autograd
flows through) and JAX arrays in, the same library out. What PyTorch does
that crossent's native losses do not, reproduced here:

- the class axis is 1 (``(N, C)``, ``(N, C, d1, ...)``), or 0 for an unbatched ``(C,)``;
- a 'mean' over nothing (all targets ``ignore_index``, an empty batch, class weights
  summing to 0) is **NaN** (0/0), where crossent returns 0;
- 'mean' with class weights divides by the summed weight of the counted targets;
  with probability ("soft") targets it divides by the number of positions N·d1·…;
- ``binary_cross_entropy`` clamps each log at -100, and its backward is
  :math:`(p - t) / \max(p(1-p), 10^{-12})` — at p = 0 or 1 a gradient of about
  :math:`\pm 10^{12}`, where the clamped loss's true derivative is 0. This gradient
  is reproduced for PyTorch tensors that require grad (a ``torch.autograd.Function``
  built on first use; nothing imports torch unless you pass torch tensors);
- ``cross_entropy`` is NaN for a row with a ``+inf`` logit (log_softmax's ∞ - ∞), and
  where a ``-inf`` logit meets a zero multiplier (a zero soft label, or a zero class
  weight with label smoothing or at the target); ``nll_loss`` where a zero-weight
  target's entry is infinite; uint8 class indices are taken, as aten does;
- ``binary_cross_entropy_with_logits`` is NaN for a ``-inf`` logit, and for ``+inf``
  with target 1 (aten's ``(1 - t)·x + max(-x, 0) + log(...)`` meets ∞ - ∞);
- ``kl_div(input, target)`` takes **log q** as ``input`` and p as ``target``,
  is element-wise for 'none', and 'mean' divides by the number of *elements*
  ('batchmean' is the KL divergence per sample).

16-bit inputs are computed in float32 and returned in their own dtype.
Sources: torch/nn/functional.py, torch/nn/_reduction.py (installed), and
aten/src/ATen/native/{LossNLL.cpp, Loss.cpp} (the kernels, PyTorch 2.13).
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

from .. import losses as _losses
from .._array import (
    Array,
    carries_derivative,
    hyperparameter,
    is_floating,
    is_integer,
    is_zero,
    mul_zero_safe,
    namespace,
)
from .._validate import Reduction, check_reduction
from ._common import (
    cast_to,
    float_input,
    like,
    log_softmax_nan,
    nan_where,
    require_floating,
    sigmoid_nan,
    size,
)

__all__ = [
    "cross_entropy",
    "nll_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "kl_div",
]

# aten/src/ATen/native/Loss.cpp: EPSILON in binary_cross_entropy_backward, a float constant
# (1e-12 rounded to float32, as measured against PyTorch); the double backward's eps
# (torch/csrc/autograd/FunctionsManual.cpp) is the double 1e-12
_BCE_BACKWARD_EPSILON = 9.999999960041972e-13
_BCE_DOUBLE_BACKWARD_EPSILON = 1e-12


def _reduction(size_average: bool | None, reduce: bool | None, reduction: str) -> Reduction:
    """torch/nn/_reduction.py legacy_get_string: the deprecated flags win when given."""
    if size_average is None and reduce is None:
        return check_reduction(reduction)
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    legacy = "mean" if size_average and reduce else "sum" if reduce else "none"
    warnings.warn(
        f"size_average and reduce args will be deprecated, please use reduction='{legacy}' "
        f"instead.",
        UserWarning,
        stacklevel=3,
    )
    return check_reduction(legacy)


def _class_axis(input: Array) -> int:
    """PyTorch's class axis: 1 for ``(N, C, ...)``, 0 for an unbatched ``(C,)``."""
    return 1 if input.ndim >= 2 else 0


def _prepare(input: object, target: object, weight: object | None) -> tuple[Any, Array, Array, Any]:
    input = float_input(input)
    xp = namespace(input)
    require_floating(xp, "input", input)
    targets: Any = like(xp, input, target)
    if is_integer(xp, targets.dtype) and targets.dtype != xp.int64:
        # aten takes uint8 (Byte) class indices as well as int64; the core indexes with int64
        targets = xp.astype(targets, xp.int64)
    if weight is not None:
        weight = like(xp, input, float_input(weight, name="weight"), name="weight")
    return xp, input, targets, weight


def _nothing_counted(
    xp: Any, input: Array, target: Array, weight: Array | None, ignore_index: int
) -> Array:
    """Whether the divisor of a class-index 'mean' is 0 (PyTorch then divides 0 by 0)."""
    counted = target != ignore_index
    if weight is None:
        return ~xp.any(counted)
    safe_target = xp.where(counted, target, xp.zeros_like(target))
    target_weight = xp.reshape(xp.take(weight, xp.reshape(safe_target, (-1,))), target.shape)
    divisor = xp.sum(xp.where(counted, target_weight, xp.zeros_like(target_weight)))
    return divisor == 0


def _is_index_target(xp: Any, input: Array, target: Array) -> bool:
    return not (tuple(target.shape) == tuple(input.shape) and is_floating(xp, target.dtype))


def cross_entropy(
    input: Array,
    target: Array,
    weight: Array | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Array:
    r"""``torch.nn.functional.cross_entropy``: log_softmax + nll_loss over class axis 1.

    .. math::
        \ell_i = -\sum_c a_{ic} \log\operatorname{softmax}(x_i)_c,\quad
        \text{mean} = \frac{\sum_i \ell_i}{\sum_{i\ \text{counted}} w_{y_i}}\ \text{(indices)}
        \ \text{or}\ \frac{\sum_i \ell_i}{N}\ \text{(probabilities)}

    with :math:`a` the (weighted, smoothed) target as in :func:`crossent.cross_entropy`.

    Args:
      input: logits ``(C,)``, ``(N, C)`` or ``(N, C, d1, ...)``.
      target: class indices ``()``, ``(N,)``, ``(N, d1, ...)``; or probabilities of
        ``input``'s shape.
      weight: class weights ``(C,)``.
      size_average, reduce: deprecated PyTorch flags; they override ``reduction``.
      ignore_index: class-index targets equal to it are not counted.
      reduction: 'none', 'mean' or 'sum'.
      label_smoothing: ε in [0, 1].

    Returns:
      A scalar, or the per-position losses for 'none', in ``input``'s dtype.

    Example (seed 003; then everything ignored: PyTorch's 'mean' is 0/0):

    >>> from crossent.compat import torch as T
    >>> float(T.cross_entropy([[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]], [2, 1]))
    1.18615...
    >>> float(T.cross_entropy([[0.4, 0.3, 0.7]], [-100]))
    nan
    """
    reduction = _reduction(size_average, reduce, reduction)
    xp, input, target, weight = _prepare(input, target, weight)
    loss = _losses.cross_entropy(
        input, target, axis=_class_axis(input), weight=weight, ignore_index=ignore_index,
        label_smoothing=label_smoothing, reduction=reduction,
    )
    axis = _class_axis(input)
    index = _is_index_target(xp, input, target)
    # aten multiplies log_softmax by (smoothed, weighted) targets: NaN for a +inf logit,
    # and for a -inf one whose multiplier is 0 (a zero label or a zero class weight)
    coefficient = _log_softmax_coefficient(xp, input, target, weight, ignore_index,
                                           label_smoothing, index)
    nan_positions = log_softmax_nan(xp, input, axis, coefficient)
    if index:
        nan_positions = nan_positions & (target != ignore_index)  # ignored: 0, as aten
    loss = nan_where(xp, loss, nan_positions if reduction == "none" else xp.any(nan_positions))
    if not index:
        if reduction == "mean" and size(tuple(input.shape)) == 0:
            loss = nan_where(xp, loss, xp.asarray(True))
    elif reduction == "mean":
        loss = _zero_divisor_is_nan(xp, loss, input, target, weight, ignore_index)
    return cast_to(xp, loss, input.dtype)


def _log_softmax_coefficient(
    xp: Any, input: Array, target: Array, weight: Array | None, ignore_index: int,
    label_smoothing: float | Array, index: bool,
) -> Array:
    """aten's multiplier of each ``log_softmax`` entry (aten/src/ATen/native/LossNLL.cpp).

    Soft targets: ``target · weight`` (smoothed targets are all positive). Class indices:
    nll_loss picks ``-weight[y] · log_softmax[y]``; label smoothing adds
    ``-Σ_c weight[c] · log_softmax[c]`` over every class. Entries not multiplied are 1.
    """
    num_classes = int(input.shape[_class_axis(input)])
    shape = [1] * input.ndim
    shape[_class_axis(input)] = num_classes
    ones = xp.ones(tuple(shape), dtype=input.dtype)
    class_weight = ones if weight is None else xp.reshape(xp.astype(weight, input.dtype), shape)
    smoothing = not is_zero(hyperparameter(label_smoothing))
    if not index:
        return (ones if smoothing else target) * class_weight
    safe_target = xp.where(target != ignore_index, target, xp.zeros_like(target))
    classes = xp.reshape(xp.arange(num_classes, dtype=target.dtype), shape)
    picked = xp.expand_dims(safe_target, axis=_class_axis(input)) == classes
    off_target = class_weight if smoothing else ones
    return xp.where(picked, class_weight * ones, off_target * xp.ones_like(input))


def _zero_divisor_is_nan(
    xp: Any, loss: Array, input: Array, target: Array, weight: Array | None, ignore_index: int
) -> Array:
    """PyTorch's class-index 'mean' when its divisor is 0: NaN, and NaN gradients on counted rows.

    All targets ignored (or an empty batch): the value is 0/0 = NaN, the gradient 0.
    Counted targets whose class weights sum to 0: aten's backward divides by that 0 too,
    so the gradient of every counted position is NaN.
    """
    counted = target != ignore_index
    loss = nan_where(xp, loss, _nothing_counted(xp, input, target, weight, ignore_index))
    if weight is None:
        return loss
    zero_total = _nothing_counted(xp, input, target, weight, ignore_index) & xp.any(counted)
    rows = xp.expand_dims(counted & zero_total, axis=_class_axis(input))
    # NaN · input on the counted rows: NaN value and NaN gradient there, 0 gradient elsewhere
    # (both factors masked, so no 0 · NaN reaches the other rows' gradient)
    nan_on_rows = xp.where(rows, xp.full_like(input, float("nan")), xp.zeros_like(input))
    poison = xp.where(rows, input, xp.zeros_like(input)) * nan_on_rows
    return loss + xp.sum(poison)


def nll_loss(
    input: Array,
    target: Array,
    weight: Array | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    r"""``torch.nn.functional.nll_loss``: pick the target's log-probability and negate it.

    .. math:: \ell_i = -w_{y_i} x_{i, y_i}, \qquad
              \text{mean} = \sum_i \ell_i \Big/ \sum_{i\ \text{counted}} w_{y_i}

    Args:
      input: log-probabilities ``(C,)``, ``(N, C)`` or ``(N, C, d1, ...)``.
      target: integer class indices (PyTorch accepts no probabilities here).
      weight, size_average, ignore_index, reduce, reduction: as PyTorch.

    Returns:
      A scalar, or per-position losses for 'none', in ``input``'s dtype.

    Example (seed 000: NLLLoss only picks and negates):

    >>> from crossent.compat import torch as T
    >>> T.nll_loss([[0.0, 0.1, 0.2], [0.3, 0.4, 0.5], [0.6, 0.7, 0.8]], [0, 1, 2],
    ...            reduction="none")
    array([-0. , -0.4, -0.8], dtype=float32)
    """
    reduction = _reduction(size_average, reduce, reduction)
    xp, input, target, weight = _prepare(input, target, weight)
    if not is_integer(xp, target.dtype):
        raise TypeError(
            f"target must hold integer class indices for nll_loss, got dtype {target.dtype}; "
            f"PyTorch's nll_loss takes no probabilities (use cross_entropy for soft targets)"
        )
    loss = _losses.nll_loss(
        input, target, axis=_class_axis(input), weight=weight, ignore_index=ignore_index,
        reduction=reduction,
    )
    if weight is not None:
        # aten's -weight[y] · input[y]: 0 · ±inf = NaN where a zero-weight target's entry is infinite
        picked = _log_softmax_coefficient(xp, input, target, weight, ignore_index, 0.0, True)
        infinite = (picked == 0) & ((input == float("inf")) | (input == -float("inf")))
        nan_positions = xp.any(infinite, axis=_class_axis(input)) & (target != ignore_index)
        loss = nan_where(xp, loss, nan_positions if reduction == "none" else xp.any(nan_positions))
    if reduction == "mean":
        loss = nan_where(xp, loss, _nothing_counted(xp, input, target, weight, ignore_index))
    return cast_to(xp, loss, input.dtype)


def _empty_mean_is_nan(xp: Any, loss: Array, input: Array, reduction: str) -> Array:
    """An element-wise 'mean' over zero elements is 0/0 = NaN in PyTorch."""
    if reduction == "mean" and size(tuple(input.shape)) == 0:
        return nan_where(xp, loss, xp.asarray(True))
    return loss


def binary_cross_entropy(
    input: Array,
    target: Array,
    weight: Array | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Array:
    r"""``torch.nn.functional.binary_cross_entropy``: BCE of probabilities, logs clamped at -100.

    .. math:: \ell = -w\,[t \max(\log p, -100) + (1-t) \max(\log(1-p), -100)],\qquad
              \frac{\partial \ell}{\partial p}\Big|_{\text{PyTorch}}
              = w\,\frac{p - t}{\max(p(1-p), 10^{-12})}

    Args:
      input: probabilities in [0, 1], any shape.
      target: same shape (PyTorch refuses broadcasting here).
      weight: broadcastable to ``input``.
      size_average, reduce, reduction: as PyTorch ('mean' over all elements).

    Returns:
      A scalar, or ``input``'s shape for 'none', in ``input``'s dtype.

    Example (p = 1 with target 0 costs 100, the clamp):

    >>> from crossent.compat import torch as T
    >>> T.binary_cross_entropy([0.3, 1.0], [1.0, 0.0], reduction="none")
    array([  1.204, 100.   ], dtype=float32)

    NOTE: the gradient for torch tensors is PyTorch's backward formula above, not the
    derivative of the clamped loss (which :func:`crossent.grad.binary_cross_entropy` gives).
    """
    reduction = _reduction(size_average, reduce, reduction)
    xp, input, target, weight = _prepare(input, target, weight)
    target = cast_to(xp, target, input.dtype)
    if weight is not None and carries_derivative(weight):
        raise ValueError(
            "weight of binary_cross_entropy must not require grad: PyTorch's "
            "binary_cross_entropy is not differentiable with respect to argument 'weight'; "
            "pass weight.detach()"
        )
    if _needs_torch_backward(input, target):
        loss = _torch_bce_function().apply(input, target, weight, reduction)
    else:
        loss = _losses.binary_cross_entropy(input, target, weight=weight, reduction=reduction)
    loss = _empty_mean_is_nan(xp, loss, input, reduction)
    return cast_to(xp, loss, input.dtype)


def binary_cross_entropy_with_logits(
    input: Array,
    target: Array,
    weight: Array | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: Array | None = None,
) -> Array:
    r"""``torch.nn.functional.binary_cross_entropy_with_logits``: stable sigmoid BCE.

    .. math:: \ell = w\,[p_w\, t\, \mathrm{softplus}(-x) + (1 - t)\, \mathrm{softplus}(x)]

    Args:
      input: logits, any shape.
      target: same shape.
      weight: broadcastable to ``input``.
      size_average, reduce, reduction: as PyTorch.
      pos_weight: weight of the positive term, broadcastable (typically ``(C,)``).

    Returns:
      A scalar, or ``input``'s shape for 'none', in ``input``'s dtype.

    Example (seed 004's logits and multi-label targets):

    >>> from crossent.compat import torch as T
    >>> logits = [[12, 3, 2], [3, 10, 1], [1, 2, 5], [4, 6.5, 1.2], [3, 6, 1]]
    >>> y = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 0]]
    >>> float(T.binary_cross_entropy_with_logits(logits, y))
    1.25543...
    """
    reduction = _reduction(size_average, reduce, reduction)
    xp, input, target, weight = _prepare(input, target, weight)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"Target size ({tuple(target.shape)}) must be the same as input size "
            f"({tuple(input.shape)})"
        )
    target = cast_to(xp, target, input.dtype)
    if pos_weight is not None:
        pos_weight = like(xp, input, float_input(pos_weight, name="pos_weight"), name="pos_weight")
    loss = _losses.binary_cross_entropy_with_logits(
        input, target, weight=weight, pos_weight=pos_weight, reduction="none"
    )
    # aten: (1 - t)·x + max(-x, 0) + log(exp(-max) + exp(-x - max)) meets ∞ - ∞ or 0·∞
    loss = nan_where(xp, loss, sigmoid_nan(xp, input, target, "torch"))
    loss = _reduce_elements(xp, loss, reduction)
    loss = _empty_mean_is_nan(xp, loss, input, reduction)
    return cast_to(xp, loss, input.dtype)


def _quiet_numpy() -> Any:
    """NumPy's divide/invalid warnings off: the NaN and inf are the values PyTorch returns."""
    import numpy as np

    return np.errstate(divide="ignore", invalid="ignore")


def _reduce_elements(xp: Any, loss: Array, reduction: str) -> Array:
    if reduction == "none":
        return loss
    if reduction == "sum":
        return xp.sum(loss)
    if reduction == "mean":
        return xp.sum(loss) / max(size(tuple(loss.shape)), 1)
    raise ValueError(f"{reduction} is not a valid value for reduction")


def kl_div(
    input: Array,
    target: Array,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> Array:
    r"""``torch.nn.functional.kl_div``: KL(target ‖ exp(input)), element-wise, then reduced.

    .. math:: \ell = t (\log t - x) \quad\text{or, with log\_target,}\quad e^{t} (t - x)

    where ``input`` :math:`x = \log q` (log-probabilities!) and ``target`` is p.
    Any target PyTorch takes is taken (counts, unnormalised weights, log-targets above
    0): the formula is PyTorch's, element by element, with :math:`0 \log 0 = 0`
    (``xlogy``); a negative target gives NaN, as in PyTorch.

    Args:
      input: log-probabilities log q, any shape.
      target: probabilities p (or log p with ``log_target=True``), same shape.
      size_average, reduce: deprecated PyTorch flags.
      reduction: 'none' (element-wise), 'batchmean' (sum / input.shape[0], the KL per
        sample), 'sum', or 'mean' (sum / number of elements — not the KL per sample;
        PyTorch warns).
      log_target: whether ``target`` holds log-probabilities.

    Returns:
      A scalar, or ``input``'s shape for 'none', in ``input``'s dtype.

    Example:

    >>> import math
    >>> from crossent.compat import torch as T
    >>> float(T.kl_div([[math.log(0.9), math.log(0.1)]], [[0.5, 0.5]], reduction="batchmean"))
    0.51082...
    """
    if reduction == "mean" and size_average is None and reduce is None:
        warnings.warn(
            "reduction: 'mean' divides the total loss by both the batch size and the support "
            "size.'batchmean' divides only by the batch size, and aligns with the KL div math "
            "definition.'mean' will be changed to behave the same as 'batchmean' in the next "
            "major release.",
            UserWarning,
            stacklevel=2,
        )
    if size_average is not None or reduce is not None:
        reduction = _reduction(size_average, reduce, "mean")
    elif reduction not in ("none", "batchmean", "sum", "mean"):
        raise ValueError(
            f"reduction must be one of 'none', 'batchmean', 'sum', 'mean', got {reduction!r}"
        )
    xp, input, target, _ = _prepare(input, target, None)
    target = cast_to(xp, target, input.dtype)
    with _quiet_numpy():  # log of a negative or zero target: NaN / -inf, as PyTorch
        if log_target:
            # torch/nn/functional.py kl_div: exp(t)·(t - x); 0·(-inf) = NaN at t = -inf
            pointwise = xp.exp(target) * (target - input)
        else:
            # xlogy(t, t) - t·x: 0·log 0 = 0, a negative t gives NaN, 0·(-inf) = NaN
            pointwise = mul_zero_safe(xp, target, xp.log(target)) - target * input
    if reduction == "batchmean":
        total = xp.sum(pointwise)
        loss = total / int(input.shape[0]) if input.ndim > 0 else total
    else:
        loss = _reduce_elements(xp, pointwise, reduction)
        loss = _empty_mean_is_nan(xp, loss, input, reduction)
    return cast_to(xp, loss, input.dtype)


# --- PyTorch's BCE backward ----------------------------------------------------------

_BCE_FUNCTIONS: Any = None


def _needs_torch_backward(input: Array, target: Array) -> bool:
    """Torch tensors through which a derivative may flow (requires_grad, or torch.func)."""
    is_torch = type(input).__module__.startswith("torch")
    return is_torch and (carries_derivative(input) or carries_derivative(target))


def _torch_bce_function() -> Any:
    """``torch.autograd.Function``: the core's BCE forward, PyTorch's derivatives of every order.

    aten's formulas (torch/csrc/autograd/FunctionsManual.cpp, derivatives.yaml), with
    :math:`\\epsilon = 10^{-12}`, w the weight and g the incoming gradient:

    - d/dp: :math:`g w (p - t) / \\max(p(1-p), \\epsilon)` (at p = 0 or 1 about
      :math:`\\pm 10^{12}`, where the clamped loss's derivative is 0);
    - d/dt: :math:`-g w \\operatorname{logit}(p)` (±inf at p = 0 or 1), written with
      differentiable ops, so its own derivatives are autograd's;
    - the derivatives of d/dp (a second Function, ``BinaryCrossEntropyBackward``):
      in p :math:`g\\,\bar g\\, w (p^2 - 2pt + t) / ((p+\\epsilon)^2 (1-p+\\epsilon)^2)`,
      in t :math:`-g\\,\bar g\\, w / \\max(p(1-p), \\epsilon)`, and in g the d/dp formula.

    The weight gets no gradient (PyTorch refuses one). Built on first use; torch is
    already imported then (the input is a torch tensor). Both Functions define
    ``setup_context`` and ``generate_vmap_rule``, so ``torch.func`` transforms work.
    """
    global _BCE_FUNCTIONS
    if _BCE_FUNCTIONS is not None:
        return _BCE_FUNCTIONS[0]
    torch = sys.modules["torch"]

    def scaled(value: Any, weight: Any, reduction: str, numel: int) -> Any:
        if weight is not None:
            value = value * weight
        return value / max(numel, 1) if reduction == "mean" else value

    def expand(grad_output: Any, like: Any, reduction: str) -> Any:
        return grad_output if reduction == "none" else grad_output.expand_as(like)

    def reduce(value: Any, reduction: str) -> Any:
        return value if reduction == "none" else value.sum()

    # the element-wise derivatives (before weight and 'mean'), each once
    def d_probs(probs: Any, target: Any) -> Any:  # binary_cross_entropy_backward
        return (probs - target) / (probs * (1 - probs)).clamp_min(_BCE_BACKWARD_EPSILON)

    def d_target(probs: Any) -> Any:  # binary_cross_entropy_target_backward
        return -torch.logit(probs)

    def d_probs_probs(probs: Any, target: Any) -> Any:  # binary_cross_entropy_double_backward
        eps = _BCE_DOUBLE_BACKWARD_EPSILON
        return (probs * probs - 2 * probs * target + target) / (
            (probs + eps).pow(2) * (1 - probs + eps).pow(2)
        )

    def d_probs_target(probs: Any) -> Any:  # binary_cross_entropy_double_backward_target
        return -1 / (probs * (1 - probs)).clamp_min(_BCE_DOUBLE_BACKWARD_EPSILON)

    class BinaryCrossEntropyBackward(torch.autograd.Function):  # type: ignore[name-defined,misc]
        """d/dp of PyTorch's BCE: ``g w (p - t) / max(p (1 - p), 1e-12)`` (aten's backward)."""

        generate_vmap_rule = True

        @staticmethod
        def forward(grad_output: Any, probs: Any, target: Any, weight: Any,
                    reduction: str) -> Any:
            grad = expand(grad_output, probs, reduction) * d_probs(probs, target)
            return scaled(grad, weight, reduction, probs.numel())

        @staticmethod
        def setup_context(ctx: Any, inputs: tuple, output: Any) -> None:
            grad_output, probs, target, weight, reduction = inputs
            ctx.save_for_backward(grad_output, probs, target, weight)
            ctx.save_for_forward(grad_output, probs, target, weight)
            ctx.reduction = reduction

        @staticmethod
        def backward(ctx: Any, grad_grad: Any) -> Any:
            grad_output, probs, target, weight = ctx.saved_tensors
            reduction, numel = ctx.reduction, probs.numel()
            incoming = expand(grad_output, probs, reduction) * grad_grad
            grads: list[Any] = [None, None, None, None, None]
            if ctx.needs_input_grad[0]:  # the backward is linear in grad_output
                grads[0] = reduce(
                    scaled(grad_grad * d_probs(probs, target), weight, reduction, numel),
                    reduction,
                )
            if ctx.needs_input_grad[1]:
                grads[1] = scaled(incoming * d_probs_probs(probs, target), weight, reduction,
                                  numel)
            if ctx.needs_input_grad[2]:
                grads[2] = scaled(incoming * d_probs_target(probs), weight, reduction, numel)
            return tuple(grads)

        @staticmethod
        def jvp(ctx: Any, grad_output_t: Any, probs_t: Any, target_t: Any, *_: Any) -> Any:
            grad_output, probs, target, weight = ctx.saved_tensors
            reduction = ctx.reduction
            tangent = torch.zeros_like(probs)
            if grad_output_t is not None:
                tangent = tangent + expand(grad_output_t, probs, reduction) * d_probs(probs, target)
            outer = expand(grad_output, probs, reduction)
            if probs_t is not None:
                tangent = tangent + outer * d_probs_probs(probs, target) * probs_t
            if target_t is not None:
                tangent = tangent + outer * d_probs_target(probs) * target_t
            return scaled(tangent, weight, reduction, probs.numel())

    class BinaryCrossEntropy(torch.autograd.Function):  # type: ignore[name-defined,misc]
        """The core's clamped BCE; PyTorch's derivatives (see ``_torch_bce_function``)."""

        generate_vmap_rule = True

        @staticmethod
        def forward(probs: Any, target: Any, weight: Any, reduction: Reduction) -> Any:
            return _losses.binary_cross_entropy(probs, target, weight=weight, reduction=reduction)

        @staticmethod
        def setup_context(ctx: Any, inputs: tuple, output: Any) -> None:
            probs, target, weight, reduction = inputs
            ctx.save_for_backward(probs, target, weight)
            ctx.save_for_forward(probs, target, weight)
            ctx.reduction = reduction

        @staticmethod
        def backward(ctx: Any, grad_output: Any) -> Any:
            probs, target, weight = ctx.saved_tensors
            reduction = ctx.reduction
            grad_probs = grad_target = None
            if ctx.needs_input_grad[0]:
                grad_probs = BinaryCrossEntropyBackward.apply(
                    grad_output, probs, target, weight, reduction
                )
            if ctx.needs_input_grad[1]:  # differentiable ops: autograd gives its derivatives
                grad_target = expand(grad_output, probs, reduction) * d_target(probs)
                grad_target = scaled(grad_target, weight, reduction, probs.numel())
            return grad_probs, grad_target, None, None

        @staticmethod
        def jvp(ctx: Any, probs_t: Any, target_t: Any, *_: Any) -> Any:
            # aten's forward-mode formula: the two backward formulas applied to the tangents
            probs, target, weight = ctx.saved_tensors
            tangent = torch.zeros_like(probs)
            if probs_t is not None:
                tangent = tangent + d_probs(probs, target) * probs_t
            if target_t is not None:
                tangent = tangent + d_target(probs) * target_t
            return reduce(scaled(tangent, weight, ctx.reduction, probs.numel()), ctx.reduction)

    _BCE_FUNCTIONS = (BinaryCrossEntropy, BinaryCrossEntropyBackward)
    return BinaryCrossEntropy
