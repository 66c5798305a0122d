"""``F.cross_entropy`` on CPU tensors through crossent's fused kernel.

Three layers (as Liger-Kernel): the kernel (:mod:`crossent.kernels`, reached through
the core's ``crossent.value_and_grad``) → :func:`cross_entropy` with PyTorch's
signature, a ``torch.library`` custom op → :class:`CrossEntropyLoss`, an ``nn.Module``
that checks its settings once and only dispatches in ``forward``.

The custom op ``crossent::cross_entropy`` computes the loss and the gradient in the
same sweep over the logits and keeps the gradient for backward (the only ``N × V``
array it holds); backward multiplies it by the incoming gradient. With
``create_graph=True`` backward computes the gradient from differentiable torch ops
instead (the core's ``softmax - target`` on the tensors), so double backward gives
``F.cross_entropy``'s second derivatives. The op has a fake implementation and its
dispatch looks only at devices, dtypes and ``requires_grad``, so
``torch.compile(..., fullgraph=True)`` traces it without a graph break.

Whatever the kernel does not cover (other devices, 16-bit dtypes, gradients w.r.t.
the weight or probability targets, tensors inside ``torch.func`` transforms) goes to
``torch.nn.functional.cross_entropy`` itself, so the numbers are PyTorch's; a 'mean'
with nothing counted is PyTorch's NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch._C._functorch as _functorch
import torch.nn.functional as F

from .. import _validate as v
from ..grad import cross_entropy as _core_grad_cross_entropy
from ..grad import value_and_grad
from ..losses import cross_entropy as _core_cross_entropy

__all__ = ["cross_entropy", "CrossEntropyLoss"]

_KERNEL_DTYPES = (torch.float32, torch.float64)
_REDUCTIONS = ("none", "mean", "sum")


def _in_transform(*tensors: torch.Tensor | None) -> bool:
    """Whether a ``torch.func`` transform (grad, vmap, jacrev, ...) wraps any of the tensors.

    Such tensors cannot enter a fused kernel (it reads their storage); the callers route them
    to differentiable torch ops. Under ``torch.compile`` the trace sees plain tensors.
    """
    return not torch.compiler.is_compiling() and any(
        t is not None and _functorch.is_functorch_wrapped_tensor(t) for t in tensors
    )


def _uses_kernel(
    input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None,
) -> bool:
    """Whether the fused kernel reproduces ``F.cross_entropy`` for these arguments.

    Only what a trace knows is looked at (devices, dtypes, ``requires_grad``), so
    ``torch.compile`` sees no data-dependent branch here; a 'mean' with nothing counted
    (PyTorch's NaN) is handled inside the custom op.
    """
    tensors = [input, target] + ([] if weight is None else [weight])
    if any(t.device.type != "cpu" or t.is_sparse or t.is_quantized for t in tensors):
        return False
    if _in_transform(*tensors):
        return False  # torch.func transforms (vmap, jacfwd, ...): PyTorch's own differentiable ops
    if input.dtype not in _KERNEL_DTYPES or input.dim() == 0:
        return False
    if target.requires_grad or (weight is not None and weight.requires_grad):
        return False  # PyTorch would differentiate w.r.t. them; the kernel does not
    index_targets = not target.is_floating_point()
    return not (
        (index_targets and target.dtype != torch.int64)
        or (not index_targets and target.dtype != input.dtype)
        or (weight is not None and weight.dtype != input.dtype)
    )  # (otherwise PyTorch raises its own dtype errors)


def _check_tensors(input: object, target: object, weight: object | None) -> None:
    """``input``, ``target`` (and ``weight``) must be torch tensors on one device, as
    ``F.cross_entropy`` requires; said here in one line instead of in a dispatcher error."""
    given = {"input": input, "target": target, "weight": weight}
    for name, value in given.items():
        if value is None and name == "weight":
            continue
        if not isinstance(value, torch.Tensor):
            raise TypeError(
                f"{name} must be a torch.Tensor, got {type(value).__module__}."
                f"{type(value).__name__}; convert it with torch.as_tensor({name}) (or use "
                f"crossent.cross_entropy, which takes NumPy arrays and lists)"
            )
    devices = {name: value.device for name, value in given.items() if isinstance(value, torch.Tensor)}
    if len(set(devices.values())) > 1:
        where = ", ".join(f"{name} on {device}" for name, device in devices.items())
        raise ValueError(
            f"the tensors are on different devices ({where}); move them to one device, "
            f"e.g. target.to(input.device)"
        )


def _nothing_counted(
    target: torch.Tensor, weight: torch.Tensor | None, ignore_index: int, reduction: str
) -> bool:
    """Whether PyTorch's 'mean' divides by 0 here (it then gives NaN where the core gives 0)."""
    if reduction != "mean":
        return False
    if target.is_floating_point():
        return target.numel() == 0
    counted = target != ignore_index
    if not bool(counted.any()):  # (no compaction of the targets unless weights need it)
        return True
    if weight is not None:
        kept = target[counted]
        if bool(((kept >= 0) & (kept < weight.numel())).all()):
            return bool(weight[kept].sum() == 0)
    return False


def _nothing_counted_grad(
    input: torch.Tensor, target: torch.Tensor, ignore_index: int
) -> torch.Tensor:
    """PyTorch's gradient of a 'mean' that divides by 0: NaN on counted rows, 0 on the others.

    aten's nll_loss backward divides each counted row's gradient by the total weight
    (0 here); ignored rows get no gradient.
    """
    if target.is_floating_point():
        return torch.full_like(input, float("nan"))
    counted = (target != ignore_index).unsqueeze(1 if input.dim() > 1 else 0)
    return torch.where(counted, float("nan"), 0.0).to(input.dtype).expand_as(input).clone()


def _options(
    input: torch.Tensor, weight: Any, ignore_index: int, reduction: str,
    label_smoothing: float,
) -> dict[str, Any]:
    """The core's keyword arguments for PyTorch's layout: class axis 1, or 0 for one ``(C,)`` row."""
    return dict(
        axis=1 if input.dim() > 1 else 0, weight=weight, ignore_index=ignore_index,
        label_smoothing=label_smoothing, reduction=reduction,
    )


@torch.library.custom_op("crossent::cross_entropy", mutates_args=())
def _fused(
    input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None, ignore_index: int,
    reduction: str, label_smoothing: float, compute_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss and, if ``compute_grad``, its gradient w.r.t. ``input`` (else an empty tensor).

    Loss and gradient come from one sweep of the fused kernel over the logits; the
    gradient is the only ``N × V`` array kept for backward. A 'mean' with nothing
    counted is ``F.cross_entropy``'s (NaN) with PyTorch's gradient.
    """
    if _nothing_counted(target, weight, ignore_index, reduction):
        return input.new_full((), float("nan")), (
            _nothing_counted_grad(input, target, ignore_index) if compute_grad
            else input.new_empty(0)
        )
    options = _options(input, None if weight is None else weight.numpy(), ignore_index,
                       reduction, label_smoothing)
    logits, target_array = input.numpy(), target.numpy()
    if compute_grad:
        loss, grad = value_and_grad(_core_cross_entropy, logits, target_array, **options)
        return torch.from_numpy(np.asarray(loss, dtype=logits.dtype)), torch.from_numpy(grad)
    loss = _core_cross_entropy(logits, target_array, **options)
    return torch.from_numpy(np.asarray(loss, dtype=logits.dtype)), input.new_empty(0)


@_fused.register_fake
def _fused_fake(
    input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None, ignore_index: int,
    reduction: str, label_smoothing: float, compute_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    # 'none': one loss per position (the input without its class axis); else a scalar
    positions = input.shape[:1] + input.shape[2:] if input.dim() > 1 else ()
    loss = input.new_empty(positions if reduction == "none" else ())
    return loss, input.new_empty(input.shape if compute_grad else (0,))


def _fused_setup_context(ctx: Any, inputs: tuple, output: tuple) -> None:
    input, target, weight, ignore_index, reduction, label_smoothing, _ = inputs
    ctx.save_for_backward(input, target, weight, output[1])
    ctx.options = (ignore_index, reduction, label_smoothing)


def _fused_backward(
    ctx: Any, grad_loss: torch.Tensor, _: torch.Tensor
) -> tuple[torch.Tensor | None, ...]:
    input, target, weight, grad = ctx.saved_tensors
    ignore_index, reduction, label_smoothing = ctx.options
    if torch.is_grad_enabled():
        # create_graph=True: the gradient as differentiable torch ops of the input (the
        # core's softmax - target on torch tensors), so a second derivative exists and is
        # F.cross_entropy's; the kernel's saved gradient would carry no graph
        if _nothing_counted(target, weight, ignore_index, reduction):
            # the saved NaN / 0 gradient, with itself as its derivative (NaN on counted rows)
            grad = grad * (1 + input - input.detach())
        else:
            grad = _core_grad_cross_entropy(
                input, target, **_options(input, weight, ignore_index, reduction,
                                          label_smoothing)
            )
    if reduction == "none":
        # per-position losses: grad_loss has the input's shape without the class axis
        return grad * (grad_loss.unsqueeze(1) if grad.dim() > 1 else grad_loss), *(None,) * 6
    if not torch.compiler.is_compiling() and not grad.requires_grad and grad_loss.item() == 1.0:
        return grad, *(None,) * 6  # loss.backward() passes 1: nothing to scale, no copy
    return grad * grad_loss, *(None,) * 6


_fused.register_autograd(_fused_backward, setup_context=_fused_setup_context)


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
    16-bit, gradients w.r.t. ``weight`` or ``target``, ``torch.func`` transforms) runs
    ``F.cross_entropy``. Double backward, ``torch.func`` and ``torch.compile`` work and
    give ``F.cross_entropy``'s numbers.
    """
    reduction = v.check_reduction(reduction)
    label_smoothing = float(
        v.check_unit_interval("label_smoothing", label_smoothing, differentiable=False)
    )
    _check_tensors(input, target, weight)
    if not _uses_kernel(input, target, weight):
        return F.cross_entropy(
            input, target, weight=weight, ignore_index=ignore_index, reduction=reduction,
            label_smoothing=label_smoothing,
        )
    loss, _ = _fused(
        input, target, weight, ignore_index, reduction, label_smoothing,
        input.requires_grad and torch.is_grad_enabled(),
    )
    return loss


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
        self.label_smoothing = float(
            v.check_unit_interval("label_smoothing", label_smoothing, differentiable=False)
        )
        self.ignore_index = v.check_ignore_index(ignore_index)
        if weight is not None and not isinstance(weight, torch.Tensor):
            raise TypeError(
                f"weight must be a torch.Tensor or None, got {type(weight).__name__}; "
                f"convert it with torch.tensor(weight) (as torch.nn.CrossEntropyLoss requires)"
            )
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
