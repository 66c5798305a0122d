"""Analytic gradients: d loss / d first argument, for NumPy users without autograd.

Each function takes exactly the arguments of the loss of the same name and
returns an array of the first argument's shape and dtype. The formulas sit
next to the forward maths in :mod:`crossent.losses` (one private function per
loss computes both); the headline ones:

- ``cross_entropy``: :math:`\\partial\\ell/\\partial z = (\\sum_c a_c)\\,\\mathrm{softmax}(z) - a`,
  i.e. ``softmax(z) - one_hot(y)`` for a plain target (seed 001's back-propagation);
- ``binary_cross_entropy_with_logits``: :math:`\\sigma(x) - t` (times weights);
- ``nll_loss``: :math:`-a` (minus the weighted one-hot);
- ``kl_divergence_with_logits``: :math:`(p_s - p_t) / T` (w.r.t. the student's logits).

For ``reduction="mean"`` the gradient includes the 1/D of the mean; for
``"none"`` it is the gradient of the sum of the per-position losses (each
position's own gradient). Positions not counted get 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import _registry
from . import divergences as _divergences
from . import losses as _losses
from ._array import Array

# one gradient per loss, named as the loss
__all__ = [*_losses.__all__, *_divergences.__all__, "value_and_grad"]

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
    entry = _registry.by_function(loss)
    implementation = None if entry is None else entry.loss_and_grad
    if implementation is None:
        names = ", ".join(entry.public for entry in _registry.losses())
        raise TypeError(f"value_and_grad supports crossent's losses ({names}), got {loss!r}")
    return implementation(*args, compute_grad=True, **options)


def nll_loss(log_probs: Array, target: Array, **options: Any) -> Array:
    r"""Gradient of :func:`crossent.nll_loss` w.r.t. ``log_probs``.

    .. math:: \frac{\partial \ell_i}{\partial x_{ic}} = -a_{ic}
              \quad (= -w_{y_i} [c = y_i] \text{ for class indices})

    Takes the arguments of :func:`crossent.nll_loss`; returns ``log_probs``' shape
    and dtype ('mean' includes its 1/D; positions not counted get 0).

    >>> import crossent as ce
    >>> ce.grad.nll_loss([[-0.5, -1.0, -2.0]], [1], weight=[1.0, 2.0, 1.0])
    array([[-0., -1., -0.]])

    Same as PyTorch's autograd of ``F.nll_loss`` (class axis -1 here).
    """
    return _losses._nll_loss(log_probs, target, compute_grad=True, **options)[1]


def cross_entropy(logits: Array, target: Array, **options: Any) -> Array:
    r"""Gradient of :func:`crossent.cross_entropy` w.r.t. ``logits``.

    .. math:: \frac{\partial \ell_i}{\partial z_{ik}}
              = \Big(\sum_c a_{ic}\Big)\, \mathrm{softmax}(z_i)_k - a_{ik}
              \quad (= \mathrm{softmax}(z_i)_k - [k = y_i] \text{ for a plain target})

    Takes the arguments of :func:`crossent.cross_entropy`; returns ``logits``' shape
    and dtype ('mean' includes its 1/D; positions not counted get 0; impossible
    ``-inf`` classes get 0).

    Example (seed 001: softmax([1.4, 3.2, 5.0]) − one_hot(2)):

    >>> import crossent as ce
    >>> ce.grad.cross_entropy([[1.4, 3.2, 5.0]], [2])
    array([[ 0.02291062,  0.13860117, -0.16151179]])

    Same as PyTorch's autograd of ``F.cross_entropy``, except that a 'mean' with
    nothing counted has a zero gradient (PyTorch: NaN).
    """
    return _losses._cross_entropy(logits, target, compute_grad=True, **options)[1]


def binary_cross_entropy(probs: Array, target: Array, **options: Any) -> Array:
    r"""Gradient of :func:`crossent.binary_cross_entropy` w.r.t. ``probs``.

    .. math:: \frac{\partial \ell}{\partial p} = -w\Big[\frac{t}{p} - \frac{1 - t}{1 - p}\Big]

    each term 0 where its log is clamped at -100 (the exact derivative of the
    clamped loss). Takes the arguments of :func:`crossent.binary_cross_entropy`.

    >>> import crossent as ce
    >>> ce.grad.binary_cross_entropy([0.3, 0.9], [1.0, 0.0], reduction="sum")
    array([-3.33333333, 10.        ])

    NOTE: PyTorch's backward is ``w (p - t) / max(p (1 - p), 1e-12)``, which differs
    only at p ∈ {0, 1} (there it is ±1e12; here 0 or the finite one-sided term).
    """
    return _losses._binary_cross_entropy(probs, target, compute_grad=True, **options)[1]


def binary_cross_entropy_with_logits(logits: Array, target: Array, **options: Any) -> Array:
    r"""Gradient of :func:`crossent.binary_cross_entropy_with_logits` w.r.t. ``logits``.

    .. math:: \frac{\partial \ell}{\partial x} = w\big[(1 - t)\,\sigma(x) - p_w\, t\,(1 - \sigma(x))\big]
              \quad (= \sigma(x) - t \text{ without weights})

    Takes the arguments of :func:`crossent.binary_cross_entropy_with_logits`.

    >>> import crossent as ce
    >>> ce.grad.binary_cross_entropy_with_logits([0.0, 2.0], [1.0, 0.0], reduction="sum")
    array([-0.5       ,  0.88079708])

    Same as PyTorch's autograd of ``F.binary_cross_entropy_with_logits``.
    """
    return _losses._binary_cross_entropy_with_logits(
        logits, target, compute_grad=True, **options
    )[1]


def sigmoid_focal_loss(logits: Array, target: Array, **options: Any) -> Array:
    r"""Gradient of :func:`crossent.sigmoid_focal_loss` w.r.t. ``logits``.

    .. math:: \frac{\partial \ell}{\partial x} = \alpha_t\big[(1-p_t)^\gamma (p - t)
              - \gamma (1-p_t)^{\gamma-1} (2t - 1)\, p (1 - p)\, \mathrm{BCE}(x, t)\big]

    Takes the arguments of :func:`crossent.sigmoid_focal_loss`.

    >>> import crossent as ce
    >>> ce.grad.sigmoid_focal_loss([0.0, 2.0], [1.0, 0.0], reduction="sum")
    array([-0.0745717,  0.8075353])

    Same as PyTorch's autograd of torchvision's ``sigmoid_focal_loss``.
    """
    return _losses._sigmoid_focal_loss(logits, target, compute_grad=True, **options)[1]


def softmax_focal_loss(logits: Array, target: Array, **options: Any) -> Array:
    r"""Gradient of :func:`crossent.softmax_focal_loss` w.r.t. ``logits``.

    .. math:: \frac{\partial \ell}{\partial z_k} = p_k \sum_c a_c h_c - a_k h_k, \quad
              h_c = (1-p_c)^\gamma - \gamma (1-p_c)^{\gamma-1} p_c \log p_c

    (cross-entropy's form with :math:`a_c h_c` in place of :math:`a_c`). Takes the
    arguments of :func:`crossent.softmax_focal_loss`.

    >>> import crossent as ce
    >>> ce.grad.softmax_focal_loss([[2.0, 0.0, 0.0]], [0], reduction="sum")
    array([[-0.02677352,  0.01338676,  0.01338676]])

    PyTorch has no softmax focal loss; this equals autograd of the formula.
    """
    return _losses._softmax_focal_loss(logits, target, compute_grad=True, **options)[1]


def kl_divergence_with_logits(student_logits: Array, teacher_logits: Array,
                              **options: Any) -> Array:
    r"""Gradient of :func:`crossent.kl_divergence_with_logits` w.r.t. ``student_logits``.

    .. math:: \frac{\partial D_{KL}(p_t \| p_s)}{\partial z_{s,k}} = \frac{p_{s,k} - p_{t,k}}{T},
              \qquad \frac{\partial D_{KL}(p_s \| p_t)}{\partial z_{s,k}}
              = \frac{p_{s,k}}{T}\big(s_k - q_k - D_{KL}(p_s \| p_t)\big)

    Takes the arguments of :func:`crossent.kl_divergence_with_logits`; returns
    ``student_logits``' shape and dtype ('batchmean'/'mean' include the 1/number of
    distributions). The teacher gets no gradient here.

    >>> import math
    >>> import crossent as ce
    >>> ce.grad.kl_divergence_with_logits([[math.log(0.9), math.log(0.1)]], [[0.0, 0.0]])
    array([[ 0.4, -0.4]])

    Same as PyTorch's autograd of ``F.kl_div(log_softmax(z_s / T), log_softmax(z_t / T),
    log_target=True, reduction="batchmean")`` for 2-D logits.
    """
    return _divergences._kl_divergence_with_logits(
        student_logits, teacher_logits, compute_grad=True, **options)[1]


def jensen_shannon_divergence(student_logits: Array, teacher_logits: Array,
                              **options: Any) -> Array:
    r"""Gradient of :func:`crossent.jensen_shannon_divergence` w.r.t. ``student_logits``.

    .. math:: \frac{\partial \mathrm{JSD}_\beta}{\partial z_{s,k}} = \frac1T\Big(g_k - p_{s,k}\sum_c g_c\Big),
              \qquad g_c = (1-\beta)\, p_{s,c}\,(s_c - \log M_c)

    (Liger-Kernel's ``dX`` followed by the softmax's chain rule; the two KLs' gradients at
    β = 0 and 1). Takes the arguments of :func:`crossent.jensen_shannon_divergence`.

    >>> import crossent as ce
    >>> ce.grad.jensen_shannon_divergence([[0.0, 0.0]], [[0.0, 0.0]])
    array([[0., 0.]])

    Same as PyTorch's autograd of the formula.
    """
    return _divergences._jensen_shannon_divergence(
        student_logits, teacher_logits, compute_grad=True, **options)[1]


def total_variation_distance(student_logits: Array, teacher_logits: Array,
                             **options: Any) -> Array:
    r"""Gradient of :func:`crossent.total_variation_distance` w.r.t. ``student_logits``.

    .. math:: \frac{\partial\,\mathrm{TVD}}{\partial z_{s,k}}
              = \frac{p_{s,k}}{T}\Big(u_k - \sum_c p_{s,c} u_c\Big),
              \qquad u = \tfrac12 \operatorname{sign}(p_s - p_t)

    Takes the arguments of :func:`crossent.total_variation_distance`.

    >>> import math
    >>> import crossent as ce
    >>> ce.grad.total_variation_distance([[math.log(0.9), math.log(0.1)]], [[0.0, 0.0]])
    array([[ 0.09, -0.09]])

    Same as PyTorch's autograd of ``0.5 * (softmax(z_s) - softmax(z_t)).abs().sum(-1)``.
    """
    return _divergences._total_variation_distance(
        student_logits, teacher_logits, compute_grad=True, **options)[1]
