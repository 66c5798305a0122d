"""``F.cross_entropy`` on CPU tensors through crossent's fused kernel.

Three layers (as Liger-Kernel): the kernel (:mod:`crossent.kernels`, reached through
the core's ``crossent.value_and_grad``) → :func:`cross_entropy` with PyTorch's
signature, an ``autograd.Function`` → :class:`CrossEntropyLoss`, an ``nn.Module``
that checks its settings once and only dispatches in ``forward``.

The forward pass computes the loss and the gradient in the same sweep over the
logits and keeps the gradient for backward (the only ``N × V`` array it holds);
backward multiplies it by the incoming gradient. Whatever the kernel does not cover
(other devices, 16-bit dtypes, gradients w.r.t. the weight or probability targets,
a 'mean' with nothing counted, where PyTorch returns NaN) goes to
``torch.nn.functional.cross_entropy`` itself, so the numbers are PyTorch's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import _validate as v
from ..grad import value_and_grad
from ..losses import cross_entropy as _core_cross_entropy

__all__ = ["cross_entropy", "CrossEntropyLoss"]

_KERNEL_DTYPES = (torch.float32, torch.float64)


def _uses_kernel(
    input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None,
    ignore_index: int, reduction: str,
) -> bool:
    """Whether the fused kernel reproduces ``F.cross_entropy`` for these arguments."""
    tensors = [input, target] + ([] if weight is None else [weight])
    if any(t.device.type != "cpu" or t.is_sparse or t.is_quantized for t in tensors):
        return False
    if input.dtype not in _KERNEL_DTYPES or input.dim() == 0:
        return False
    if target.requires_grad or (weight is not None and weight.requires_grad):
        return False  # PyTorch would differentiate w.r.t. them; the kernel does not
    index_targets = not target.is_floating_point()
    if (index_targets and target.dtype != torch.int64) or (
        not index_targets and target.dtype != input.dtype
    ) or (weight is not None and weight.dtype != input.dtype):
        return False  # PyTorch raises its own dtype errors
    if reduction == "mean":
        # PyTorch's 'mean' with nothing counted is 0/0 = NaN where crossent returns 0:
        # those degenerate batches go to PyTorch itself
        if not index_targets:
            return target.numel() > 0
        counted = target != ignore_index
        if not bool(counted.any()):  # (no compaction of the targets unless weights need it)
            return False
        if weight is not None:
            kept = target[counted]
            if bool(((kept >= 0) & (kept < weight.numel())).all()):
                return bool(weight[kept].sum() != 0)
    return True


class _FusedCrossEntropy(torch.autograd.Function):
    """Loss and gradient from one sweep in forward; backward scales the saved gradient."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None,
        ignore_index: int, reduction: str, label_smoothing: float,
    ) -> torch.Tensor:
        options: dict[str, Any] = dict(
            axis=1 if input.dim() > 1 else 0,  # PyTorch's class axis; (C,) is one unbatched row
            weight=None if weight is None else weight.detach().numpy(),
            ignore_index=ignore_index,
            label_smoothing=label_smoothing,
            reduction=reduction,
        )
        logits, target_array = input.detach().numpy(), target.detach().numpy()
        ctx.reduction = reduction
        if ctx.needs_input_grad[0]:
            loss, grad = value_and_grad(_core_cross_entropy, logits, target_array, **options)
            # the only N × V array kept for backward; saved (not a ctx attribute) so autograd
            # frees it after backward and can hand it to .grad without a copy
            ctx.save_for_backward(torch.from_numpy(grad))
        else:
            loss = _core_cross_entropy(logits, target_array, **options)
        return torch.from_numpy(np.asarray(loss, dtype=logits.dtype))

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (grad,) = ctx.saved_tensors
        if ctx.reduction == "none":
            # per-position losses: grad_output has the input's shape without the class axis
            grad = grad * (grad_output.unsqueeze(1) if grad.dim() > 1 else grad_output)
        elif grad_output.item() != 1.0:  # loss.backward() passes 1: nothing to scale
            grad = grad * grad_output
        return grad, None, None, None, None, None


def cross_entropy(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    r"""``torch.nn.functional.cross_entropy`` computed by crossent's fused CPU kernel.

    .. math:: \ell_i = -\sum_c a_{ic} \log\operatorname{softmax}(x_i)_c

    with :math:`a_{ic} = (1-\varepsilon) w_{y_i}[c = y_i] + \tfrac{\varepsilon}{C} w_c`
    for class indices and :math:`w_c((1-\varepsilon) t_{ic} + \varepsilon/C)` for
    probabilities (see :func:`crossent.cross_entropy`).

    Args:
      input: logits ``(N, C)``, ``(N, C, d1, ...)`` or ``(C,)`` (class axis 1, as PyTorch).
      target: class indices ``(N)``, ``(N, d1, ...)`` or ``()`` (int64), or probabilities
        of the input's shape.
      weight: optional class weights ``(C,)``.
      ignore_index: class-index targets equal to it are not counted.
      reduction: 'none' | 'mean' | 'sum'.
      label_smoothing: ε in [0, 1].

    Returns:
      The loss, as ``F.cross_entropy`` returns it (same shape, dtype and numbers up to
      float rounding; a 'mean' with nothing counted is NaN, as in PyTorch).

    Example:

    >>> import torch
    >>> import crossent.torch as ct
    >>> logits = torch.tensor([[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]], requires_grad=True)
    >>> loss = ct.cross_entropy(logits, torch.tensor([2, 1]))
    >>> round(loss.item(), 4)  # F.cross_entropy: 1.1862
    1.1862
    >>> loss.backward()
    >>> logits.grad
    tensor([[ 0.1536,  0.1390, -0.2926],
            [ 0.2502, -0.3876,  0.1373]])

    NOTE: CPU float32/float64 tensors only take the fused path; anything else (GPU,
    16-bit, gradients w.r.t. ``weight`` or ``target``) runs ``F.cross_entropy``.
    """
    reduction = v.check_reduction(reduction)
    label_smoothing = v.check_unit_interval("label_smoothing", label_smoothing)
    if not _uses_kernel(input, target, weight, ignore_index, reduction):
        return F.cross_entropy(
            input, target, weight=weight, ignore_index=ignore_index, reduction=reduction,
            label_smoothing=label_smoothing,
        )
    return _FusedCrossEntropy.apply(  # type: ignore[no-any-return]
        input, target, weight, ignore_index, reduction, label_smoothing
    )


class CrossEntropyLoss(torch.nn.Module):
    """``torch.nn.CrossEntropyLoss`` on crossent's fused CPU kernel (:func:`cross_entropy`).

    Settings are checked once here; ``forward(input, target)`` only dispatches.

    >>> import torch
    >>> import crossent.torch as ct
    >>> criterion = ct.CrossEntropyLoss(label_smoothing=0.1)
    >>> round(criterion(torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([0])).item(), 4)
    0.3729
    """

    def __init__(
        self,
        weight: torch.Tensor | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.reduction = v.check_reduction(reduction)
        self.label_smoothing = v.check_unit_interval("label_smoothing", label_smoothing)
        self.ignore_index = v.check_ignore_index(ignore_index)
        if weight is not None and (weight.dim() != 1 or not weight.is_floating_point()):
            raise ValueError(
                f"weight must be a 1-D floating tensor with one entry per class, "
                f"got shape {tuple(weight.shape)} and dtype {weight.dtype}"
            )
        self.weight: torch.Tensor | None
        self.register_buffer("weight", weight)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return cross_entropy(
            input, target, weight=self.weight, ignore_index=self.ignore_index,
            reduction=self.reduction, label_smoothing=self.label_smoothing,
        )

    def extra_repr(self) -> str:
        return (f"ignore_index={self.ignore_index}, reduction={self.reduction!r}, "
                f"label_smoothing={self.label_smoothing}")
