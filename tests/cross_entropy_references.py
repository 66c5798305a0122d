"""Reference implementations of softmax cross-entropy, shared by the tests and the benchmark.

The benchmark (``benchmarks/bench_cross_entropy.py``) imports its contenders from
here, so what is timed is what is tested (Liger-Kernel's habit). Every function
returns ``(loss, grad)`` for 'mean' reduction of integer targets unless it says
otherwise; none of them calls crossent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def float64_reference(
    logits: np.ndarray,
    target: np.ndarray,
    *,
    weight: np.ndarray | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    where: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """crossent's native semantics, in float64, written from the definition (class axis -1).

    ℓ_i = -Σ_c a_ic log softmax(z_i)_c with a the target mass per class (weights and
    label smoothing folded in); 'mean' divides by Σ w_y over counted rows (integer
    targets) or the number of counted rows (probabilities); nothing counted gives 0.
    Gradient: ∂ℓ/∂z = (Σ_c a_c) softmax(z) - a, times 1/D for 'mean'.
    """
    z = np.asarray(logits, dtype=np.float64)
    num_classes = z.shape[-1]
    w = np.ones(num_classes) if weight is None else np.asarray(weight, dtype=np.float64)
    counted = np.ones(z.shape[:-1], bool) if where is None else np.broadcast_to(where, z.shape[:-1])
    with np.errstate(all="ignore"):
        row_max = z.max(axis=-1, keepdims=True)
        row_max = np.where(np.isfinite(row_max), row_max, 0.0)
        log_probs = (z - row_max) - np.log(np.sum(np.exp(z - row_max), axis=-1, keepdims=True))
        if np.issubdtype(np.asarray(target).dtype, np.integer):
            counted = counted & (target != ignore_index)
            safe_target = np.where(counted, target, 0)
            hard = np.zeros(z.shape)
            np.put_along_axis(hard, safe_target[..., None], 1.0, axis=-1)
            hard = hard * w * counted[..., None]
            divisor = hard.sum()
            coefficients = (1 - label_smoothing) * hard + (
                label_smoothing / num_classes * w * counted[..., None]
            )
        else:
            t = np.asarray(target, dtype=np.float64)
            coefficients = w * (t * (1 - label_smoothing) + label_smoothing / num_classes)
            coefficients = coefficients * counted[..., None]
            divisor = counted.sum()
        terms = np.where(coefficients != 0, coefficients * log_probs, 0.0)  # 0·log 0 = 0
        losses = -terms.sum(axis=-1)
        grad = coefficients.sum(axis=-1, keepdims=True) * np.exp(log_probs) - coefficients
        grad = np.where(counted[..., None], grad, 0.0)
    if reduction == "none":
        return losses, grad
    if reduction == "sum":
        return losses.sum(), grad
    divisor = divisor if divisor != 0 else 1.0
    return losses.sum() / divisor, grad / divisor


def numpy_naive(
    logits: np.ndarray, target: np.ndarray, with_grad: bool = True
) -> tuple[Any, np.ndarray | None]:
    """Cross-entropy written the obvious way in NumPy: softmax, log, pick, mean.

    The gradient is ``(softmax - one_hot) / N``; ``with_grad=False`` stops after the loss.
    """
    num_rows = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    exps = np.exp(shifted)
    probs = exps / exps.sum(axis=1, keepdims=True)
    rows = np.arange(num_rows)
    loss = -np.log(probs[rows, target]).mean()
    if not with_grad:
        return loss, None
    grad = probs
    grad[rows, target] -= 1
    grad /= num_rows
    return loss, grad


def torch_eager(logits: Any, target: Any) -> tuple[Any, Any]:
    """``F.cross_entropy`` forward and ``backward``; returns the loss and ``logits.grad``."""
    import torch.nn.functional as F

    logits = logits.detach().requires_grad_(True)
    loss = F.cross_entropy(logits, target)
    loss.backward()
    return loss.detach(), logits.grad


def torch_compiled() -> Callable[[Any, Any], tuple[Any, Any]]:
    """``torch.compile`` of the forward and backward of ``F.cross_entropy``."""
    import torch
    import torch.nn.functional as F

    def loss_and_grad(logits: Any, target: Any) -> tuple[Any, Any]:
        logits = logits.detach().requires_grad_(True)
        loss = F.cross_entropy(logits, target)
        (grad,) = torch.autograd.grad(loss, logits)
        return loss.detach(), grad

    return torch.compile(loss_and_grad)


def jax_optax(with_grad: bool = True) -> Callable[[Any, Any], Any]:
    """``jax.jit`` of optax's integer-label cross-entropy mean, with its gradient or alone."""
    import jax
    import optax

    def mean_loss(logits: Any, target: Any) -> Any:
        return optax.softmax_cross_entropy_with_integer_labels(logits, target).mean()

    return jax.jit(jax.value_and_grad(mean_loss) if with_grad else mean_loss)


# ----------------------------------------------------------------------------------
# accuracy: inputs and error measures shared by the tests and the accuracy script
# ----------------------------------------------------------------------------------

ACCURACY_CASES = ("normal", "wide", "huge", "minus_inf")


def accuracy_inputs(
    case: str, num_rows: int, num_classes: int, seed: int = 7
) -> tuple[np.ndarray, np.ndarray]:
    """float32 logits and int64 targets: 'normal' N(0, 1), 'wide' N(0, 30²), 'huge' uniform
    in [-1e4, 1e4], 'minus_inf' N(0, 5²) with 20% of the classes -inf (never the target)."""
    rng = np.random.default_rng(seed)
    target = rng.integers(0, num_classes, num_rows)
    if case == "huge":
        return rng.uniform(-1e4, 1e4, (num_rows, num_classes)).astype(np.float32), target
    scale = {"normal": 1.0, "wide": 30.0, "minus_inf": 5.0}[case]
    logits = (rng.standard_normal((num_rows, num_classes)) * scale).astype(np.float32)
    if case == "minus_inf":
        impossible = rng.random(logits.shape) < 0.2
        impossible[np.arange(num_rows), target] = False
        logits[impossible] = -np.inf
    return logits, target


def relative_errors(
    loss: Any, grad: Any, reference_loss: Any, reference_grad: np.ndarray
) -> np.ndarray:
    """[loss relative error, gradient max-norm relative error, worst element-wise relative
    error of the gradient over entries above 1e-30 in magnitude]."""
    loss_error = abs(float(loss) - float(reference_loss)) / abs(float(reference_loss))
    grad = np.asarray(grad, np.float64)
    difference = np.abs(grad - reference_grad)
    norm_error = difference.max() / np.abs(reference_grad).max()
    sizable = np.abs(reference_grad) > 1e-30
    element_error = (difference[sizable] / np.abs(reference_grad[sizable])).max()
    return np.array([loss_error, norm_error, element_error])
