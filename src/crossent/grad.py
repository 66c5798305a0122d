"""Analytic gradients: d loss / d first argument, for NumPy users without autograd.

Each function takes exactly the arguments of the loss of the same name and
returns an array of the first argument's shape and dtype. The formulas sit
next to the forward maths in :mod:`crossent.losses` (one private function per
loss computes both); the headline ones:

- ``cross_entropy``: :math:`\\partial\\ell/\\partial z = (\\sum_c a_c)\\,\\mathrm{softmax}(z) - a`,
  i.e. ``softmax(z) - one_hot(y)`` for a plain target (seed 001's back-propagation);
- ``binary_cross_entropy_with_logits``: :math:`\\sigma(x) - t` (times weights);
- ``nll_loss``: :math:`-a` (minus the weighted one-hot).

For ``reduction="mean"`` the gradient includes the 1/D of the mean; for
``"none"`` it is the gradient of the sum of the per-position losses (each
position's own gradient). Positions not counted get 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import losses as _losses
from ._array import Array

__all__ = [
    "nll_loss",
    "cross_entropy",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "sigmoid_focal_loss",
    "softmax_focal_loss",
    "value_and_grad",
]

# public loss -> its private implementation returning (loss, grad)
_IMPLEMENTATIONS: dict[Callable[..., Array], Callable[..., tuple[Array, Any]]] = {
    _losses.nll_loss: _losses._nll_loss,
    _losses.cross_entropy: _losses._cross_entropy,
    _losses.binary_cross_entropy: _losses._binary_cross_entropy,
    _losses.binary_cross_entropy_with_logits: _losses._binary_cross_entropy_with_logits,
    _losses.sigmoid_focal_loss: _losses._sigmoid_focal_loss,
    _losses.softmax_focal_loss: _losses._softmax_focal_loss,
}


def value_and_grad(loss: Callable[..., Array], *args: Any, **options: Any) -> tuple[Array, Array]:
    r"""The loss and its gradient w.r.t. the first argument, from one pass.

    .. math:: (\ell(x, t),\ \partial \ell / \partial x)

    Args:
      loss: one of crossent's losses (``crossent.cross_entropy``, ...).
      *args: the loss's arrays (first argument, target).
      **options: the loss's keyword options.

    Returns:
      ``(loss, grad)``: what ``loss(*args, **options)`` returns and an array of the
      first argument's shape and dtype.

    Example (seed 001: softmax([1.4, 3.2, 5.0]) - one_hot(2)):

    >>> import crossent as ce
    >>> loss, g = ce.value_and_grad(ce.cross_entropy, [[1.4, 3.2, 5.0]], [2])
    >>> float(loss)
    0.17615...
    >>> g
    array([[ 0.0229,  0.1386, -0.1615]])

    PyTorch's equivalent is ``loss.backward()``; JAX's is ``jax.value_and_grad``.
    """
    try:
        implementation = _IMPLEMENTATIONS[loss]
    except (KeyError, TypeError):
        names = ", ".join(f"crossent.{f.__name__}" for f in _IMPLEMENTATIONS)
        raise TypeError(
            f"value_and_grad supports crossent's losses ({names}), got {loss!r}"
        ) from None
    return implementation(*args, compute_grad=True, **options)


def _gradient_of(loss: Callable[..., Array]) -> Callable[..., Array]:
    implementation = _IMPLEMENTATIONS[loss]

    def gradient(*args: Any, **options: Any) -> Array:
        return implementation(*args, compute_grad=True, **options)[1]

    gradient.__name__ = loss.__name__
    gradient.__qualname__ = loss.__name__
    gradient.__doc__ = (
        f"Gradient of :func:`crossent.{loss.__name__}` w.r.t. its first argument.\n\n"
        f"Takes the same arguments as ``crossent.{loss.__name__}`` and returns an array of "
        f"the first argument's shape and dtype (see :mod:`crossent.grad` for the formulas "
        f"and the meaning of each reduction)."
    )
    return gradient


nll_loss = _gradient_of(_losses.nll_loss)
cross_entropy = _gradient_of(_losses.cross_entropy)
binary_cross_entropy = _gradient_of(_losses.binary_cross_entropy)
binary_cross_entropy_with_logits = _gradient_of(_losses.binary_cross_entropy_with_logits)
sigmoid_focal_loss = _gradient_of(_losses.sigmoid_focal_loss)
softmax_focal_loss = _gradient_of(_losses.softmax_focal_loss)
