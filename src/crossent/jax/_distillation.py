r"""Distillation of a linear layer's logits in JAX, over token chunks.

The student's chunk of logits ``h Wᵀ + b`` is made, compared with the teacher's chunk, and
dropped; the chunk body, cutting its chunk out of the inputs, is a ``jax.checkpoint`` inside
a loop over token chunks, so reverse mode stores only the chunk's start (no padded or stacked
copy of the inputs or of teacher logits) and recomputes its logits (the ``N × V`` logits
never exist), and the loop's transpose accumulates ``∂W``. The divergences (``s``, ``q`` the student's and
teacher's log-probabilities at temperature T):

- 'kl': :math:`\sum p_t (q - s)`; 'reverse_kl': :math:`\sum p_s (s - q)`;
- 'jsd' (Liger-Kernel's generalised JSD, liger_kernel/chunked_loss/jsd_loss.py):
  :math:`\beta\, KL(p_t \| m) + (1-\beta)\, KL(p_s \| m)`, :math:`m = \beta p_t + (1-\beta) p_s`,
  with ``beta=0`` the forward KL and ``beta=1`` the reverse KL (Liger special-cases both);
- 'tvd': :math:`\tfrac12 \sum |p_t - p_s|`.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate as v
from .._validate import check_chunk_size, check_normalizer, check_temperature
from ._linear import (
    _FLOAT_DTYPES,
    _compute_dtype,
    _over_blocks,
    auto_chunk_rows,
    chunk_logits,
    safe_divide,
)

__all__ = ["linear_distillation_loss"]

_LOSSES = ("kl", "reverse_kl", "jsd", "tvd")


def divergence(
    student_log_probs: jax.Array, teacher_log_probs: jax.Array, loss: str, beta: float
) -> jax.Array:
    """Per row divergence along the last axis; the teacher may hold -inf (sparse support)."""
    teacher_probs = jnp.exp(teacher_log_probs)
    on_support = teacher_probs > 0
    # -inf outside the teacher's support is replaced where p_t = 0 (those terms are 0)
    teacher_log_probs = jnp.where(on_support, teacher_log_probs, 0)
    student_probs = jnp.exp(student_log_probs)
    if loss == "jsd" and beta == 0.0:
        loss = "kl"
    if loss == "jsd" and beta == 1.0:
        loss = "reverse_kl"
    if loss == "kl":
        terms = jnp.where(on_support, teacher_probs * (teacher_log_probs - student_log_probs), 0)
    elif loss == "reverse_kl":
        terms = student_probs * (student_log_probs - teacher_log_probs)
    elif loss == "jsd":
        # log m = log(β p_t + (1-β) p_s), in log space so it never underflows
        log_mixture = jnp.logaddexp(
            jnp.where(on_support, math.log(beta) + teacher_log_probs, -jnp.inf),
            math.log1p(-beta) + student_log_probs,
        )
        terms = beta * jnp.where(on_support, teacher_probs * (teacher_log_probs - log_mixture), 0)
        terms = terms + (1 - beta) * student_probs * (student_log_probs - log_mixture)
    else:
        terms = 0.5 * jnp.abs(teacher_probs - student_probs)
    return jnp.sum(terms, axis=-1)


def _teacher_kind(teacher: Any) -> str:
    if isinstance(teacher, tuple):
        if len(teacher) == 2 and jnp.issubdtype(jnp.asarray(teacher[0]).dtype, jnp.integer):
            return "sparse"
        if len(teacher) in (2, 3):
            return "linear"
        raise ValueError(
            f"teacher as a tuple must be (teacher_hidden, teacher_weight[, teacher_bias]) or "
            f"(indices, logprobs), got a tuple of {len(teacher)}"
        )
    return "logits"


def linear_distillation_loss(
    hidden: Any,
    weight: Any,
    teacher: Any,
    *,
    loss: Literal["kl", "reverse_kl", "jsd", "tvd"] = "kl",
    beta: float = 0.5,
    temperature: float = 1.0,
    temperature_scale: bool = True,
    target: Any = None,
    hard_weight: float = 0.0,
    ignore_index: int = -100,
    token_weight: Any = None,
    bias: Any = None,
    reduction: v.Reduction = "mean",
    normalizer: Any = None,
    chunk_size: int | Literal["auto"] = "auto",
) -> jax.Array:
    r"""Knowledge distillation on a linear layer's logits, without the ``N × V`` logits.

    .. math::
        \ell_i = t_i \big((1-\alpha)\, T^2 D(p_t \| p_s)_i + \alpha\, \mathrm{CE}(z_{s,i}, y_i)\big),
        \quad s = \log\operatorname{softmax}(z_s/T),\ q = \log\operatorname{softmax}(z_t/T),

    with ``D`` the chosen divergence (see the module), α = ``hard_weight``, the T² factor
    only with ``temperature_scale`` (Hinton et al.) and the hard cross-entropy at
    temperature 1. 'mean' divides by :math:`\sum_{\text{counted}} t_i` (counted: ``target !=
    ignore_index`` when ``target`` is given, else every token); 0 when nothing is counted.

    Args:
      hidden: ``[..., D]`` student hidden states; weight: ``[V, D]``; bias: optional ``[V]``.
      teacher: teacher logits ``[..., V]``; or ``(teacher_hidden [..., D_t], teacher_weight
        [V, D_t][, teacher_bias [V]])``, projected chunk by chunk; or a top-k sparse teacher
        ``(indices int [..., k], logprobs [..., k])``, renormalised over its k entries. The
        teacher gets no gradient.
      loss: 'kl', 'reverse_kl' (not with a sparse teacher), 'jsd' or 'tvd'.
      beta: the JSD mixture weight in [0, 1].
      temperature: T > 0; temperature_scale: multiply the divergence by T².
      target, hard_weight, ignore_index: the hard-label term and the counted tokens.
      token_weight: optional ``hidden.shape[:-1]`` weights.
      reduction: 'none', 'mean' or 'sum'; normalizer: replaces the 'mean' divisor.
      chunk_size: tokens per chunk or 'auto'.

    Returns:
      float32 for 16-bit inputs, else the input dtype; a scalar or ``hidden.shape[:-1]``.

    >>> import jax.numpy as jnp
    >>> hidden = jnp.array([[1.0, 0.0]]); weight = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    >>> float(linear_distillation_loss(hidden, weight, hidden @ weight.T))
    0.0
    """
    reduction = v.check_reduction(reduction)
    if loss not in _LOSSES:
        raise ValueError(f"loss must be one of {', '.join(map(repr, _LOSSES))}, got {loss!r}")
    beta = float(v.check_unit_interval("beta", beta, differentiable=False))
    hard_weight = float(v.check_unit_interval("hard_weight", hard_weight, differentiable=False))
    temp = check_temperature(temperature)
    ignore_index = v.check_ignore_index(ignore_index)
    chunk_rows = check_chunk_size(chunk_size)
    normalizer = check_normalizer(normalizer, reduction)
    hidden, weight = jnp.asarray(hidden), jnp.asarray(weight)
    bias = None if bias is None else jnp.asarray(bias)
    if hidden.dtype not in _FLOAT_DTYPES or weight.dtype != hidden.dtype:
        raise TypeError(
            f"hidden and weight must share one float dtype, got {hidden.dtype} and {weight.dtype}"
        )
    if weight.ndim != 2 or weight.shape[1] != hidden.shape[-1]:
        raise ValueError(
            f"weight must be [V, D] with D = hidden.shape[-1] = {hidden.shape[-1]}, got {weight.shape}"
        )
    num_classes, hidden_size = weight.shape
    token_shape = hidden.shape[:-1]
    num_tokens = int(np.prod(token_shape))
    kind = _teacher_kind(teacher)
    if kind == "sparse" and (loss == "reverse_kl" or (loss == "jsd" and beta == 1.0)):
        raise ValueError(
            f"loss={loss!r} (beta={beta}) with a sparse (top-k) teacher is infinite: the student has "
            "mass outside the teacher's k classes; use loss='kl' or pass dense teacher logits"
        )
    if hard_weight > 0 and target is None:
        raise ValueError(f"hard_weight={hard_weight} needs target= (the hard labels)")
    teacher_arrays = (
        tuple(map(jnp.asarray, teacher)) if isinstance(teacher, tuple) else (jnp.asarray(teacher),)
    )
    teacher_arrays = jax.tree_util.tree_map(jax.lax.stop_gradient, teacher_arrays)
    if kind == "logits" and teacher_arrays[0].shape != token_shape + (num_classes,):
        raise ValueError(
            f"teacher logits have shape {teacher_arrays[0].shape}, expected "
            f"{token_shape + (num_classes,)} (hidden.shape[:-1] + (V,))"
        )
    if kind == "linear" and (
        teacher_arrays[0].shape[:-1] != token_shape or teacher_arrays[1].shape[0] != num_classes
    ):
        raise ValueError(
            f"teacher_hidden {teacher_arrays[0].shape} and teacher_weight "
            f"{teacher_arrays[1].shape} must be [..., D_t] with hidden's tokens and [V, D_t]"
        )
    if kind == "sparse" and (
        teacher_arrays[0].shape != teacher_arrays[1].shape or teacher_arrays[0].shape[:-1] != token_shape
    ):
        raise ValueError(
            f"sparse teacher indices {teacher_arrays[0].shape} and logprobs "
            f"{teacher_arrays[1].shape} must both be hidden.shape[:-1] + (k,)"
        )
    dtype = _compute_dtype(hidden.dtype)
    if target is None:
        flat_target = jnp.zeros((num_tokens,), jnp.int32)
        counted = jnp.ones((num_tokens,), bool)
    else:
        target = jnp.asarray(target)
        if target.shape != token_shape:
            raise ValueError(f"target has shape {target.shape}, expected {token_shape}")
        flat_target = target.reshape(-1)
        counted = flat_target != ignore_index
    tokens = (
        jnp.ones((num_tokens,), dtype)
        if token_weight is None
        else (jnp.asarray(token_weight).reshape(-1).astype(dtype))
    )
    if num_tokens == 0:
        per_token = jnp.zeros((0,), dtype)
    else:
        if chunk_rows is None:
            chunk_rows = auto_chunk_rows(num_tokens, num_classes, hidden_size, hidden.dtype)
        rows = min(chunk_rows, num_tokens)
        flat_teacher = tuple(
            a if (kind == "linear" and i > 0) else a.reshape((num_tokens, -1))
            for i, a in enumerate(teacher_arrays)
        )
        per_chunk = tuple(a for i, a in enumerate(flat_teacher) if not (kind == "linear" and i > 0))
        fixed = tuple(a for i, a in enumerate(flat_teacher) if kind == "linear" and i > 0)
        scale = temp * temp if temperature_scale else 1.0
        body = partial(_chunk_loss, kind, loss, beta, temp, scale, hard_weight, bias)

        inputs = (hidden.reshape((num_tokens, hidden_size)), flat_target, counted, *per_chunk)

        def update(start, size, per_token):
            def chunk_loss(weight, fixed, inputs):
                # the chunk is cut inside the checkpoint, so reverse mode keeps only `start`
                h, y, cnt, *teacher_chunk = (jax.lax.dynamic_slice_in_dim(a, start, size) for a in inputs)
                return body(weight, fixed, h, y, cnt, tuple(teacher_chunk))

            value = jax.checkpoint(chunk_loss)(weight, fixed, inputs)
            return jax.lax.dynamic_update_slice_in_dim(per_token, value, start, axis=0)

        per_token = _over_blocks(num_tokens, rows, update, jnp.zeros((num_tokens,), dtype))
    per_token = tokens * jnp.where(counted, per_token, 0)
    if reduction == "none":
        return per_token.reshape(token_shape)
    if reduction == "sum":
        return jnp.sum(per_token)
    if normalizer is not None:
        return jnp.sum(per_token) / jnp.asarray(normalizer, dtype)
    return safe_divide(jnp.sum(per_token), jnp.sum(jnp.where(counted, tokens, 0)))


def _chunk_loss(
    kind,
    loss,
    beta,
    temperature,
    scale,
    hard_weight,
    bias,
    weight,
    fixed,
    hidden,
    target,
    counted,
    teacher_chunk,
):
    logits, _ = chunk_logits(hidden, weight, bias, None, 1.0)
    dtype = logits.dtype
    student = jax.nn.log_softmax(logits / temperature, axis=-1)
    if kind == "logits":
        teacher = jax.nn.log_softmax(teacher_chunk[0].astype(dtype) / temperature, axis=-1)
    elif kind == "linear":
        teacher_bias = fixed[1] if len(fixed) > 1 else None
        teacher_logits, _ = chunk_logits(teacher_chunk[0], fixed[0], teacher_bias, None, 1.0)
        teacher = jax.nn.log_softmax(teacher_logits.astype(dtype) / temperature, axis=-1)
    else:
        indices, logprobs = teacher_chunk
        top = jax.nn.log_softmax(logprobs.astype(dtype) / temperature, axis=-1)
        rows = jnp.arange(indices.shape[0])[:, None]
        teacher = jnp.full(logits.shape, -jnp.inf, dtype).at[rows, indices].set(top)
    teacher = jax.lax.stop_gradient(teacher)
    per_token = (1 - hard_weight) * scale * divergence(student, teacher, loss, beta)
    if hard_weight:
        safe = jnp.where(counted, target, 0)
        log_probs = jax.nn.log_softmax(logits, axis=-1)
        hard = -jnp.take_along_axis(log_probs, safe[:, None], axis=-1)[:, 0]
        per_token = per_token + hard_weight * hard
    return per_token
