r"""The target plan of a class-axis loss: every rule about *who counts and how much*, once.

A class-axis loss (nll_loss, cross_entropy, softmax_focal_loss, and the engines
behind them) needs, besides the logits, four things derived from the target and
the options; they are computed here and nowhere else:

- which positions are **counted** (``where`` and ``ignore_index``),
- the **coefficients** :math:`a_{ic}`, the target mass each class receives, with
  class weights and label smoothing folded in,

  .. math:: a_{ic} = \begin{cases}
              (1-\varepsilon)\, w_{y_i} [c = y_i] + \tfrac{\varepsilon}{C} w_c & \text{class indices}\\
              w_c \big((1-\varepsilon)\, t_{ic} + \tfrac{\varepsilon}{C}\big) & \text{probabilities}
            \end{cases}

  (zero rows where not counted),
- the **class weights** in the computation dtype,
- the **divisor** D of 'mean' (PyTorch's rules): the summed weight of the counted
  targets for class indices (their count without weights), the number of counted
  positions for probabilities (weights do not enter) and for focal losses.

Every engine then computes :math:`\ell_i = -\sum_c a_{ic} \log p_{ic}` its own way
and finishes with :func:`crossent._reduce.reduce`.

Under a trace (``jax.jit``, ``torch.func.vmap``), where class indices cannot be
checked, a counted index outside ``[0, C)`` gets a NaN coefficient row: its loss
and gradient are NaN (as optax gives), never a silent "ignored".

:func:`plan_class` takes plain arrays of any array-API namespace (NumPy, torch,
JAX, CuPy), so the torch engines can call it on tensors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from . import _validate as v
from ._array import (
    Array,
    arrays_in_namespace,
    concrete_bool,
    has_autograd,
    is_zero,
    move_class_axis_last,
    num_elements,
    one_hot,
    static_shape,
    to_compute,
)

__all__ = [
    "ClassInputs", "ClassPlan", "SplitPlan", "num_positions", "plan_class", "prepare_class",
    "smooth_probabilities",
    "split_class",
]

TargetKind = Literal["index", "probability"]


@dataclass
class ClassInputs:
    """Validated inputs of a class-axis loss, with the class axis moved last."""

    xp: Any
    values: Array  # logits or log-probabilities, compute dtype, classes last
    kind: TargetKind
    target: Array  # class indices [...] or probabilities [..., C] (compute dtype)
    counted: Array | None  # bool [...]: positions that enter the loss; None = all
    weight: Array | None  # [C] in compute dtype
    num_classes: int
    axis: int
    input_dtype: Any


@dataclass(frozen=True)
class ClassPlan:
    """What every engine needs from the target: see the module docstring."""

    coefficients: Array  # a [..., C] in the compute dtype; zero rows where not counted
    divisor: Array  # 0-d: the divisor of 'mean'
    counted: Array | None  # bool [...]; None = every position
    weight: Array | None  # [C] class weights in the compute dtype

    def only_counted(self, xp: Any, losses: Array) -> Array:
        """Per-position ``losses`` with 0 where not counted, whatever their logits hold.

        (a NaN logit propagates into a counted position's loss, not into an ignored one's)
        """
        if self.counted is None:
            return losses
        return xp.where(self.counted, losses, xp.zeros_like(losses))


def prepare_class(
    values: Array,
    target: Array,
    *,
    axis: int,
    weight: Array | None,
    ignore_index: int | None,
    where: Array | None,
    name: str,
    weight_name: str = "weight",
) -> ClassInputs:
    """Convert and check the arguments of a class-axis loss (raises on bad input)."""
    xp, (values, target, weight, where) = arrays_in_namespace(
        values, target, weight, where, floating=(True, False, True, False),
        names=(name, "target", weight_name, "where"), required=2,
    )
    v.check_floating(xp, name, values)
    axis = v.check_axis(name, axis, values.ndim)
    kind = v.classify_target(xp, name, values, target, axis)
    input_dtype = values.dtype
    values = move_class_axis_last(xp, to_compute(xp, values), axis)
    num_classes = int(values.shape[-1])
    positions = static_shape(values)[:-1]

    counted = None
    if where is not None:
        v.check_where(xp, where, "the loss per position (logits' shape without axis)", positions)
        counted = xp.broadcast_to(where, positions)
    if kind == "index":
        if str(target.dtype).endswith("uint8"):  # by name: not every namespace exposes uint8
            # PyTorch accepts uint8 indices; widened here, as torch compares a uint8 tensor with
            # a Python int in uint8 (300 wraps to 44, -100 to 156)
            target = xp.astype(target, xp.int32)  # int32: available on every backend (JAX without x64)
        if ignore_index is not None:
            ignore_index = v.check_ignore_index(ignore_index)
            not_ignored = target != ignore_index
            counted = not_ignored if counted is None else counted & not_ignored
        v.check_class_indices(
            xp, target, num_classes, axis, ignore_index, counted, logits_name=name
        )
    else:
        target = move_class_axis_last(xp, xp.astype(target, values.dtype), axis)
    if weight is not None:
        v.check_class_weight(xp, weight_name, weight, num_classes, axis)
        weight = xp.astype(weight, values.dtype)
    if where is not None and has_autograd(xp):
        # where=False positions hold anything (padding, -inf, NaN): their logits become 0
        # before any maths, so autograd's gradient there is 0, not 0 · NaN (their loss is 0).
        # (ignore_index positions are not rewritten: a pass over the logits on every call;
        # their gradient is 0 unless their logits are NaN, as in PyTorch)
        kept = xp.broadcast_to(where, positions)[..., None]
        values = xp.where(kept, values, xp.zeros_like(values))
        if kind == "probability":
            target = xp.where(kept, target, xp.zeros_like(target))
    return ClassInputs(xp, values, kind, target, counted, weight, num_classes, axis, input_dtype)


def plan_class(
    inputs: ClassInputs,
    label_smoothing: float | Array = 0.0,
    *,
    mean_over: Literal["targets", "positions"] = "targets",
) -> ClassPlan:
    """The coefficients ``a`` [..., C], the 'mean' divisor, counted positions and weights.

    ``mean_over="targets"`` is cross-entropy's divisor (PyTorch's rules, see the module
    docstring); ``"positions"`` divides by the counted positions whatever the target
    (focal losses).
    """
    xp, dtype, num_classes = inputs.xp, inputs.values.dtype, inputs.num_classes
    counted = None if inputs.counted is None else xp.astype(inputs.counted, dtype)
    if inputs.kind == "index":
        # one_hot of an ignored index (or any out-of-range index) is a zero row
        target_mask = one_hot(xp, inputs.target, num_classes, dtype)
        hard = target_mask if counted is None else target_mask * counted[..., None]
        if inputs.weight is not None:
            hard = hard * inputs.weight
        divisor = xp.sum(hard)  # Σ_i w[y_i] over counted i (or their count)
        if is_zero(label_smoothing):
            coefficients = hard
        else:
            # a_c = (κ [c = y] + ε/C) w_c on counted positions, the share rounded before the
            # weight: two roundings per entry where A·p_c - a_c cancels (the gradient
            # crossing 0), not four as for κ w_y + (ε/C) w_y
            coefficients = (1.0 - label_smoothing) * target_mask + label_smoothing / num_classes
            if inputs.weight is not None:
                coefficients = coefficients * inputs.weight
            if counted is not None:
                coefficients = coefficients * counted[..., None]
        coefficients = _poison_out_of_range(xp, inputs, coefficients)
    else:
        coefficients = smooth_probabilities(inputs.target, label_smoothing, num_classes)
        if inputs.weight is not None:
            coefficients = coefficients * inputs.weight
        if counted is not None:
            coefficients = coefficients * counted[..., None]
        divisor = None  # type: ignore[assignment]
    if inputs.kind != "index" or mean_over == "positions":
        divisor = num_positions(inputs) if counted is None else xp.sum(counted)
    return ClassPlan(coefficients, divisor, inputs.counted, inputs.weight)


@dataclass(frozen=True)
class SplitPlan:
    r"""The plan of a class-axis loss on NumPy rows, factored so no ``N × C`` array is built.

    The fused kernels (:mod:`crossent.kernels`) read it; with :math:`h_i` the hard term of
    position i and :math:`\sigma = \varepsilon / C` the smoothing share,

    .. math:: a_{ic} = h_i [c = y_i] + \sigma w_c \ \text{(class indices)}, \qquad
              a_{ic} = w_c (\kappa\, t_{ic} + \sigma) \ \text{(probabilities)}, \quad
              \kappa = 1 - \varepsilon

    (the spread vector :math:`\sigma w` is kept as its two factors), and the divisor of 'mean'.
    """

    target: np.ndarray  # int64 [N] class indices, or [N, C] probabilities in the logits' dtype
    counted: np.ndarray  # bool [N]
    hard: np.ndarray  # float64 [N]: h_i = (1-ε) w_{y_i}, 0 where not counted ([0] for probabilities)
    weight: np.ndarray  # [C] class weights in the logits' dtype (ones without weights)
    keep: float  # κ = 1 - ε
    spread: float  # σ = ε / C
    divisor: float  # the divisor of 'mean', as plan_class's


def split_class(inputs: ClassInputs, label_smoothing: float) -> SplitPlan:
    """:func:`plan_class` for NumPy inputs with at least one class, in the factored form."""
    values = inputs.values
    dtype, num_classes = values.dtype, inputs.num_classes
    num_rows = math.prod(values.shape[:-1])
    weight = (
        np.ones(num_classes, dtype)
        if inputs.weight is None
        else np.ascontiguousarray(inputs.weight, dtype=dtype)
    )
    counted = (
        np.ones(num_rows, np.bool_)
        if inputs.counted is None
        else np.ascontiguousarray(inputs.counted, dtype=np.bool_).reshape(-1)
    )
    keep, spread = 1.0 - label_smoothing, label_smoothing / num_classes
    target: np.ndarray
    if inputs.kind == "index":
        target = np.ascontiguousarray(inputs.target, dtype=np.int64).reshape(-1)
        if inputs.weight is None:
            hard = np.where(counted, keep, 0.0)
            # 'mean' divides by the number of counted targets ...
            divisor = float(num_rows if inputs.counted is None else np.count_nonzero(counted))
        else:
            # rows not counted may hold any index (ignore_index): read class 0 there
            target_weight = weight[np.where(counted, target, 0)]
            hard = np.where(counted, keep * target_weight.astype(np.float64), 0.0)
            # ... or, with class weights, by Σ w[y] over the counted targets
            divisor = float(np.sum(weight[target[counted]], dtype=np.float64))
    else:
        target = np.ascontiguousarray(inputs.target, dtype=dtype).reshape(-1, num_classes)
        hard = np.zeros(0)
        divisor = float(np.count_nonzero(counted))  # probability targets: counted rows
    return SplitPlan(target, counted, hard, weight, keep, spread, divisor)


def smooth_probabilities(target: Array, label_smoothing: float | Array, num_classes: int) -> Array:
    """Label smoothing of probability targets: ``t (1 - ε) + ε / C``; ε = 0 returns ``t``."""
    if is_zero(label_smoothing):
        return target
    return target * (1.0 - label_smoothing) + label_smoothing / num_classes


def _poison_out_of_range(xp: Any, inputs: ClassInputs, coefficients: Array) -> Array:
    """NaN rows for counted indices outside [0, C) when they could not be checked (a trace).

    Concrete indices were checked by :func:`prepare_class` (an error names the index).
    """
    target = inputs.target
    bad = (target < 0) | (target >= inputs.num_classes)
    if inputs.counted is not None:
        bad = bad & inputs.counted
    if concrete_bool(xp.any(bad)) is not None:  # concrete: already checked, none is bad
        return coefficients
    nan = xp.asarray(math.nan, dtype=coefficients.dtype)
    return xp.where(bad[..., None], nan, coefficients)


def num_positions(inputs: ClassInputs) -> Array:
    """The number of positions (the logits without the class axis), as a 0-d array.

    Read from the shape, so that zero classes (an empty class axis) still count their positions.
    """
    shape = static_shape(inputs.values)[:-1]
    if None not in shape:
        return inputs.xp.asarray(math.prod(shape), dtype=inputs.values.dtype)  # type: ignore[arg-type]
    return num_elements(inputs.xp, inputs.values[..., 0], inputs.values.dtype)
