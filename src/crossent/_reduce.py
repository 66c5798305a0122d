"""Reductions: 'none' | 'mean' | 'sum', and the weighted mean.

The *divisor* of 'mean' follows PyTorch's rules and is computed by each loss:
the summed class weight of the counted targets (integer targets with class
weights), the number of counted positions (integer targets without weights,
probability targets), or the number of counted elements (element-wise losses).
Positions with ``where=False`` or ``ignore_index`` are not counted.

When nothing is counted, 'mean' returns 0 with a zero gradient (PyTorch
returns NaN; ``crossent.compat.torch`` reproduces that).
"""

from __future__ import annotations

from typing import Any

from ._array import Array
from ._validate import Reduction


def safe_divisor(xp: Any, divisor: Array) -> Array:
    """``divisor`` with zeros replaced by one: a mean over nothing counted is 0, not NaN."""
    return xp.where(divisor == 0, xp.ones_like(divisor), divisor)


def reduce(xp: Any, losses: Array, reduction: Reduction, divisor: Array | None = None) -> Array:
    """Reduce per-position ``losses`` (zero where not counted).

    .. math:: \\text{mean} = \\frac{\\sum_i \\ell_i}{D}, \\quad \\text{sum} = \\sum_i \\ell_i

    ``divisor`` (D) is required for 'mean'; D = 0 gives 0 (NaN if a loss is NaN).
    """
    if reduction == "none":
        return losses
    total = xp.sum(losses)
    if reduction == "sum":
        return total
    if divisor is None:
        raise ValueError("internal error: reduction='mean' needs a divisor")
    divisor = xp.astype(xp.asarray(divisor), total.dtype)
    # D = 0 (nothing counted, or class weights of the counted targets summing to 0): 0, and
    # 0 · total rather than total itself, so a NaN still propagates (label smoothing's
    # spread can be non-zero while D = 0: the unnormalised sum would be a wrong number)
    return xp.where(divisor == 0, total * 0, total / safe_divisor(xp, divisor))


def gradient_scale(xp: Any, reduction: Reduction, divisor: Array | None, dtype: Any) -> Array | float:
    """d(reduced loss)/d(loss_i) for a counted position: 1/D for 'mean' (0 if D = 0), else 1.

    For 'none' the gradient returned by :mod:`crossent.grad` is that of the sum of
    the per-position losses (each position's own gradient).
    """
    if reduction != "mean":
        return 1.0
    if divisor is None:
        raise ValueError("internal error: reduction='mean' needs a divisor")
    divisor = xp.astype(xp.asarray(divisor), dtype)
    return xp.where(divisor == 0, xp.zeros_like(divisor), 1.0 / safe_divisor(xp, divisor))
