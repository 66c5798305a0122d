"""Information theory in probability space: information, entropy, cross-entropy, KL.

These take probabilities (not logits) and measure in nats (``base=math.e``,
the default) or bits (``base=2``). The convention :math:`0 \\log 0 = 0` holds
everywhere: a zero-probability outcome carries no weight.

The seeds walk "information → entropy → cross-entropy" (seed 000) and
"KL = cross-entropy − entropy" (seeds 001 and 002); these are those functions.
"""

from __future__ import annotations

import math
from typing import Any

from ._array import (
    Array,
    arrays_in_namespace,
    as_float_array,
    log_base,
    mul_zero_safe,
    namespace,
    quiet,
    to_compute,
)
from ._validate import check_axis, check_floating, check_probabilities, check_same_shape

__all__ = ["self_information", "entropy", "cross_entropy", "kl_divergence", "binary_entropy"]


def _prepare(name: str, x: Array) -> tuple[Any, Array]:
    array = as_float_array(x, name=name)
    xp = namespace(array)
    check_floating(xp, name, array)
    array = to_compute(xp, array)
    check_probabilities(xp, name, array)
    return xp, array


def _prepare_pair(p: Array, q: Array, axis: int) -> tuple[Any, Array, Array, int]:
    xp, (p, q) = arrays_in_namespace(p, q, floating=(True, True), names=("p", "q"), required=2)
    for name, array in (("p", p), ("q", q)):
        check_floating(xp, name, array)
    check_same_shape("q", q, "p", p)
    p, q = to_compute(xp, p), to_compute(xp, q)
    for name, array in (("p", p), ("q", q)):
        check_probabilities(xp, name, array)
    return xp, p, q, check_axis("p", axis, p.ndim)


@quiet
def self_information(p: Array, *, base: float = math.e) -> Array:
    r"""Self-information (surprisal) of an outcome of probability ``p``, element-wise.

    .. math:: I(p) = -\log_b p

    Rare events carry much information, certain ones none (seed 000).

    Args:
      p: probabilities in [0, 1], any shape; p = 0 gives ``inf``.
      base: ``math.e`` for nats (default), 2 for bits.

    Returns:
      Array of the same shape.

    Example (seed 000: a champion with probability 0.1 vs 0.9, in bits):

    >>> from crossent import information as info
    >>> info.self_information([0.1, 0.9], base=2)
    array([3.32192809, 0.15200309])

    PyTorch has no such function (it is ``-torch.log(p) / math.log(base)``).
    """
    xp, p = _prepare("p", p)
    return -xp.log(p) / log_base(base)


@quiet
def entropy(p: Array, *, axis: int = -1, base: float = math.e) -> Array:
    r"""Shannon entropy of the distributions along ``axis``.

    .. math:: H(p) = -\sum_x p(x) \log_b p(x), \qquad 0 \log 0 = 0

    Args:
      p: probabilities ``[..., num_outcomes, ...]``, summing to 1 along ``axis``.
      axis: the outcome axis (default -1).
      base: ``math.e`` for nats (default), 2 for bits.

    Returns:
      ``p``'s shape without ``axis``.

    Example:

    >>> from crossent import information as info
    >>> info.entropy([[0.5, 0.5], [1.0, 0.0]], base=2)
    array([1., 0.])

    Same as ``torch.distributions.Categorical(probs=p).entropy()`` (in nats).
    """
    xp, p = _prepare("p", p)
    axis = check_axis("p", axis, p.ndim)
    return xp.sum(mul_zero_safe(xp, p, -xp.log(p)), axis=axis) / log_base(base)


@quiet
def cross_entropy(p: Array, q: Array, *, axis: int = -1, base: float = math.e) -> Array:
    r"""Cross-entropy of ``q`` relative to ``p`` (both probabilities) along ``axis``.

    .. math:: H(p, q) = -\sum_x p(x) \log_b q(x), \qquad 0 \log q = 0

    ``p`` is the true (target) distribution and ``q`` the model's. For losses from
    logits use :func:`crossent.cross_entropy`.

    Args:
      p: target probabilities ``[..., num_outcomes, ...]``.
      q: model probabilities, same shape; q = 0 where p > 0 gives ``inf``.
      axis: the outcome axis (default -1).
      base: ``math.e`` for nats (default), 2 for bits.

    Returns:
      ``p``'s shape without ``axis``.

    Example (seed 000: the target [1, 0, 0] against two predictions; seed 001's 0.17):

    >>> from crossent import information as info
    >>> info.cross_entropy([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], [[0.5, 0.2, 0.3], [0.8, 0.1, 0.1]])
    array([0.69314718, 0.22314355])
    >>> float(info.cross_entropy([0.0, 0.0, 1.0], [0.02, 0.14, 0.84]))
    0.1743533871447778

    PyTorch has no probability-space cross-entropy; ``F.cross_entropy`` takes logits.
    """
    xp, p, q, axis = _prepare_pair(p, q, axis)
    return xp.sum(mul_zero_safe(xp, p, -xp.log(q)), axis=axis) / log_base(base)


@quiet
def kl_divergence(p: Array, q: Array, *, axis: int = -1, base: float = math.e) -> Array:
    r"""Kullback–Leibler divergence :math:`D_{KL}(p \| q)` along ``axis``.

    .. math:: D_{KL}(p \| q) = \sum_x p(x) \log_b \frac{p(x)}{q(x)} = H(p, q) - H(p)

    Args:
      p: target probabilities ``[..., num_outcomes, ...]``.
      q: model probabilities, same shape; q = 0 where p > 0 gives ``inf``.
      axis: the outcome axis (default -1).
      base: ``math.e`` for nats (default), 2 for bits.

    Returns:
      ``p``'s shape without ``axis``; >= 0, and 0 exactly when p == q.

    Example:

    >>> from crossent import information as info
    >>> float(info.kl_divergence([0.5, 0.5], [0.9, 0.1]))
    0.5108256237659907

    NOTE: ``torch.nn.functional.kl_div(input, target)`` takes *log* q as input and
    p as target, in that order; this takes p first, both as probabilities.
    """
    xp, p, q, axis = _prepare_pair(p, q, axis)
    # p log p - p log q, computed as one log of the ratio where p > 0
    positive = p > 0
    ratio = xp.where(positive, p, xp.ones_like(p)) / xp.where(positive, q, xp.ones_like(q))
    return xp.sum(mul_zero_safe(xp, p, xp.log(ratio)), axis=axis) / log_base(base)


@quiet
def binary_entropy(p: Array, *, base: float = math.e) -> Array:
    r"""Entropy of a Bernoulli variable with success probability ``p``, element-wise.

    .. math:: H_b(p) = -p \log_b p - (1 - p) \log_b (1 - p)

    Largest (1 bit) at p = 0.5, zero at p ∈ {0, 1} (seed 000).

    Args:
      p: probabilities in [0, 1], any shape.
      base: ``math.e`` for nats (default), 2 for bits.

    Returns:
      Array of the same shape.

    Example:

    >>> from crossent import information as info
    >>> info.binary_entropy([0.0, 0.5, 0.9], base=2)
    array([0.        , 1.        , 0.46899559])

    PyTorch has no such function (``torch.special.entr(p) + entr(1 - p)`` in nats).
    """
    xp, p = _prepare("p", p)
    # log1p(-p) is accurate for small p where log(1 - p) rounds
    terms = mul_zero_safe(xp, p, -xp.log(p)) + mul_zero_safe(xp, 1.0 - p, -xp.log1p(-p))
    return terms / log_base(base)
