r"""Linear cross-entropy for large vocabularies in JAX: a ``jax.custom_vjp`` over token chunks.

Derivation (the same coefficient form as ``crossent.torch.linear_cross_entropy``)
-------------------------------------------------------------------------------
For token :math:`i`, :math:`x_i = W h_i + b`, :math:`z_i = \operatorname{cap}(x_i) / T`
(``cap(x) = c tanh(x/c)``, or the identity) and coefficients
:math:`a_{ic} = (1-\varepsilon)\, w_{y_i} [c = y_i] + \tfrac{\varepsilon}{V} w_c` (zero for an
ignored token), the engine returns two per-token vectors

.. math:: \mathrm{ce}_i = A_i\, \mathrm{lse}_i - \sum_c a_{ic} z_{ic}, \quad A_i = \sum_c a_{ic},
          \qquad \mathrm{lse}_i = \log \sum_c e^{z_{ic}},

and everything else (z-loss :math:`\lambda\,\mathrm{lse}^2`, token weights, the reduction) is
plain JAX on those vectors, so JAX's own autodiff hands the engine the cotangents
:math:`u_i = \partial L / \partial \mathrm{ce}_i` and :math:`s_i = \partial L / \partial
\mathrm{lse}_i`. Backward recomputes each chunk's logits and uses

.. math:: g_{ic} = \frac{\partial L}{\partial z_{ic}} = p_{ic} (u_i A_i + s_i) - u_i a_{ic},
          \qquad \frac{\partial L}{\partial x_{ic}} = \frac{g_{ic}}{T}
          \big(1 - \tanh^2(x_{ic}/c)\big),

:math:`\partial h_i = \sum_c \partial x_{ic} W_c`, :math:`\partial W = \partial x^\top H`,
:math:`\partial b = \sum_i \partial x_i` and, for the class weights,
:math:`\partial w_c = \sum_i u_i \big((1-\varepsilon)[c = y_i](\mathrm{lse}_i - z_{iy_i})
+ \tfrac{\varepsilon}{V} (\mathrm{lse}_i - z_{ic})\big)`.

Forward is a ``lax.map`` and backward a ``lax.scan`` over chunks of ``chunk_size`` tokens;
the residuals are the inputs and the per-token lse, so the ``N × V`` logits never exist.
16-bit inputs: the products run in the input dtype with float32 accumulation
(``preferred_element_type``), softmax statistics and the ``∂W``/``∂b`` accumulators are
float32, and the gradients are rounded once to the input dtype at the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _validate as v

__all__ = [
    "linear_cross_entropy",
    "count_targets",
    "LinearCrossEntropyOutput",
]

_FLOAT_DTYPES = (jnp.float32, jnp.float64, jnp.bfloat16, jnp.float16)
# chunk_size='auto': the float32 chunk buffers (logits, probabilities, the cap's slope) take
# about 10% of the gradients' bytes, between 4 MiB and 64 MiB, at least 8 tokens
_AUTO_BUDGET_FRACTION = 0.10
_AUTO_BUDGET_MIN = 4 * 2**20
_AUTO_BUDGET_MAX = 64 * 2**20
_MIN_AUTO_ROWS = 8


class LinearCrossEntropyOutput(NamedTuple):
    """What :func:`linear_cross_entropy` returns with ``return_lse`` or ``return_stats``.

    A ``NamedTuple``, so a pytree (it can leave ``jax.jit``). Per-token fields have
    ``hidden.shape[:-1]``, are computed for every token (ignored ones too) and carry no
    gradient; fields not asked for are ``None``.

    Attributes:
      loss: the loss (scalar, or per token for ``reduction='none'``).
      lse: log-sum-exp of each token's logits ``z`` (float32 for 16-bit inputs).
      target_logprob: ``log softmax(z)_y``; NaN for an ignored token.
      entropy: ``-Σ p log p`` of ``softmax(z)``.
      predicted: the argmax class (int64 with ``jax_enable_x64``, else int32).
      correct: ``predicted == target`` (bool).
    """

    loss: jax.Array
    lse: jax.Array | None = None
    target_logprob: jax.Array | None = None
    entropy: jax.Array | None = None
    predicted: jax.Array | None = None
    correct: jax.Array | None = None


@dataclass(frozen=True)
class _Options:
    """Checked, hashable settings of the engine (a static argument of the custom_vjp)."""

    label_smoothing: float
    softcap: float | None
    temperature: float
    chunk_rows: int
    stats: bool


# ==================================================================================
# Checks
# ==================================================================================


def _check_positive(name: str, value: object, example: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a positive number, got {value!r}")
    number = float(value)
    if not 0 < number < math.inf:
        raise ValueError(f"{name} must be a positive finite number ({example}), got {value!r}")
    return number


def check_softcap(softcap: object) -> float | None:
    """``softcap``: None or a positive finite float (Gemma 2: 30.0)."""
    if softcap is None:
        return None
    return _check_positive("softcap", softcap, "e.g. 30.0 as in Gemma 2, or None")


def check_temperature(temperature: object) -> float:
    """``temperature``: a positive finite float."""
    return _check_positive("temperature", temperature, "1.0 leaves the logits unchanged")


def check_chunk_size(chunk_size: object) -> int | None:
    """``chunk_size``: 'auto' (None) or a positive int."""
    if chunk_size == "auto":
        return None
    if isinstance(chunk_size, (int, np.integer)) and not isinstance(chunk_size, bool) and chunk_size > 0:
        return int(chunk_size)
    raise ValueError(
        f"chunk_size must be 'auto' or a positive int (tokens per chunk), got {chunk_size!r}"
    )


def check_normalizer(normalizer: object, reduction: str) -> Any:
    """``normalizer``: None, or a positive number / 0-d array, only with reduction='mean'."""
    if normalizer is None:
        return None
    if reduction != "mean":
        raise ValueError(
            f"normalizer={normalizer!r} replaces the 'mean' divisor, so it needs "
            f"reduction='mean', got reduction={reduction!r}; drop one of the two"
        )
    if isinstance(normalizer, bool):
        raise TypeError(f"normalizer must be a positive number or a 0-d array, got {normalizer!r}")
    if isinstance(normalizer, (int, float, np.integer, np.floating)):
        _check_positive("normalizer", normalizer, "e.g. count_targets(target) of the whole batch")
        return float(normalizer)
    if getattr(normalizer, "ndim", None) != 0:
        raise ValueError(
            f"normalizer must be a number or a 0-d array, got shape "
            f"{getattr(normalizer, 'shape', None)}"
        )
    if not isinstance(normalizer, jax.core.Tracer) and not float(normalizer) > 0:
        raise ValueError(f"normalizer must be > 0, got {float(normalizer)}")
    return normalizer


def _check_arrays(
    hidden: Any, weight: Any, target: Any, bias: Any, class_weight: Any, token_weight: Any
) -> None:
    for name, array in (("hidden", hidden), ("weight", weight)):
        if array.dtype not in _FLOAT_DTYPES:
            raise TypeError(
                f"{name} must be float32, float64, bfloat16 or float16, got {array.dtype}"
            )
    if weight.dtype != hidden.dtype:
        raise TypeError(
            f"weight has dtype {weight.dtype} but hidden has {hidden.dtype}; cast one "
            f"(e.g. weight.astype(hidden.dtype))"
        )
    if hidden.ndim < 1 or weight.ndim != 2:
        raise ValueError(
            f"hidden must be [..., D] and weight [V, D], got shapes {hidden.shape} and "
            f"{weight.shape}"
        )
    if weight.shape[1] != hidden.shape[-1]:
        raise ValueError(
            f"weight has hidden size {weight.shape[1]} (shape {weight.shape}) but hidden has "
            f"{hidden.shape[-1]} (shape {hidden.shape}); weight must be [V, D] as in nn.Linear"
        )
    if not jnp.issubdtype(target.dtype, jnp.integer):
        raise TypeError(f"target must hold integer class indices, got dtype {target.dtype}")
    if target.shape != hidden.shape[:-1]:
        raise ValueError(
            f"target has shape {target.shape}, but hidden {hidden.shape} has tokens "
            f"{hidden.shape[:-1]}; expected target of shape hidden.shape[:-1]"
        )
    num_classes = weight.shape[0]
    for name, array in (("bias", bias), ("class_weight", class_weight)):
        if array is not None and array.shape != (num_classes,):
            raise ValueError(
                f"{name} must have shape ({num_classes},) (one value per class), "
                f"got {array.shape}"
            )
    if token_weight is not None and token_weight.shape != hidden.shape[:-1]:
        raise ValueError(
            f"token_weight has shape {token_weight.shape}, expected hidden.shape[:-1] = "
            f"{hidden.shape[:-1]}"
        )


def _check_class_indices(target: Any, num_classes: int, ignore_index: int) -> None:
    """Out-of-range targets, where target is concrete (under a trace it cannot be checked)."""
    if isinstance(target, jax.core.Tracer) or target.size == 0:
        return
    values = np.asarray(target)
    bad = values[(values != ignore_index) & ((values < 0) | (values >= num_classes))]
    if bad.size:
        raise ValueError(
            f"target contains class index {int(bad.flat[0])}, but weight has {num_classes} "
            f"classes; valid targets are 0..{num_classes - 1} or ignore_index={ignore_index}"
        )


def _compute_dtype(dtype: Any) -> Any:
    """float32 for 16-bit inputs, else the input dtype."""
    return jnp.promote_types(dtype, jnp.float32)


def auto_chunk_rows(num_tokens: int, num_classes: int, hidden_size: int, dtype: Any) -> int:
    """Tokens per chunk for ``chunk_size='auto'``: 3 float32 ``[rows, V]`` buffers in ~10% of
    the gradients' bytes (clipped to [4 MiB, 64 MiB], at least 8 rows, at most all tokens)."""
    itemsize = jnp.dtype(dtype).itemsize
    gradient_bytes = (num_tokens + num_classes) * hidden_size * itemsize
    budget = min(max(_AUTO_BUDGET_FRACTION * gradient_bytes, _AUTO_BUDGET_MIN), _AUTO_BUDGET_MAX)
    per_row = 3 * num_classes * jnp.dtype(_compute_dtype(dtype)).itemsize
    rows = max(_MIN_AUTO_ROWS, int(budget // per_row))
    return max(1, min(rows, num_tokens))


# ==================================================================================
# The engine
# ==================================================================================


def chunk_logits(
    hidden: jax.Array, weight: jax.Array, bias: jax.Array | None, softcap: float | None,
    temperature: float,
) -> tuple[jax.Array, jax.Array | None]:
    """``z = cap(h Wᵀ + b) / T`` of one chunk in the compute dtype, and ``tanh(x/c)`` (or None).

    The product runs in the input dtype with accumulation in the compute dtype.
    """
    dtype = _compute_dtype(hidden.dtype)
    logits = jnp.dot(hidden, weight.T, preferred_element_type=dtype)
    if bias is not None:
        logits = logits + bias.astype(dtype)
    slope_tanh = None
    if softcap is not None:
        slope_tanh = jnp.tanh(logits / softcap)
        logits = softcap * slope_tanh
    if temperature != 1.0:
        logits = logits / temperature
    return logits, slope_tanh


def _logsumexp(logits: jax.Array) -> jax.Array:
    peak = jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True))
    # subtract the row maximum so exp never overflows
    return (peak + jnp.log(jnp.sum(jnp.exp(logits - peak), axis=-1, keepdims=True)))[..., 0]


def _coefficients(
    target: jax.Array, counted: jax.Array, class_weight: jax.Array | None, smoothing: float,
    num_classes: int, dtype: Any,
) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """Per token: the target coefficient ``(1-ε) w_y``, the total mass ``A``, and the smoothing
    row ``(ε/V) w`` (``None`` without smoothing); zero for uncounted tokens."""
    safe = jnp.where(counted, target, 0)
    if class_weight is None:
        target_weight = jnp.ones(target.shape, dtype)
        weight_sum = jnp.asarray(num_classes, dtype)
        smooth_row = jnp.full((num_classes,), smoothing / num_classes, dtype) if smoothing else None
    else:
        cw = class_weight.astype(dtype)
        target_weight = cw[safe]
        weight_sum = jnp.sum(cw)
        smooth_row = cw * (smoothing / num_classes) if smoothing else None
    on_target = jnp.where(counted, (1.0 - smoothing) * target_weight, 0)
    total = on_target + jnp.where(counted, smoothing / num_classes * weight_sum, 0)
    return on_target, total, smooth_row


def _pad_chunks(array: jax.Array, rows: int, fill: Any) -> jax.Array:
    """``[N, ...]`` → ``[N/rows, rows, ...]``, padded at the end with ``fill``."""
    pad = (-array.shape[0]) % rows
    if pad:
        widths = [(0, pad)] + [(0, 0)] * (array.ndim - 1)
        array = jnp.pad(array, widths, constant_values=fill)
    return array.reshape((-1, rows) + array.shape[1:])


def _forward_chunk(opts: _Options, weight, bias, class_weight, chunk):
    hidden, target, counted = chunk
    logits, _ = chunk_logits(hidden, weight, bias, opts.softcap, opts.temperature)
    dtype = logits.dtype
    lse = _logsumexp(logits)
    on_target, total, smooth_row = _coefficients(
        target, counted, class_weight, opts.label_smoothing, weight.shape[0], dtype
    )
    safe = jnp.where(counted, target, 0)
    target_logit = jnp.take_along_axis(logits, safe[:, None], axis=-1)[:, 0]
    weighted = on_target * target_logit
    if smooth_row is not None:
        weighted = weighted + jnp.where(counted, logits @ smooth_row, 0)
    ce = total * lse - weighted
    if not opts.stats:
        return ce, lse
    probs = jnp.exp(logits - lse[:, None])
    entropy = lse - jnp.sum(probs * logits, axis=-1)
    predicted = jnp.argmax(logits, axis=-1)
    target_logprob = jnp.where(counted, target_logit - lse, jnp.nan)
    return ce, lse, entropy, target_logprob, predicted


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _engine(opts: _Options, hidden, weight, bias, target, counted, class_weight):
    """``hidden [N, D]``, ``target``/``counted [N]`` → per token ``ce``, ``lse`` (+ stats)."""
    return _engine_fwd(opts, hidden, weight, bias, target, counted, class_weight)[0]


def _engine_fwd(opts, hidden, weight, bias, target, counted, class_weight):
    rows = opts.chunk_rows
    num_tokens = hidden.shape[0]
    chunks = (
        _pad_chunks(hidden, rows, 0),
        _pad_chunks(target, rows, 0),
        _pad_chunks(counted, rows, False),
    )
    outputs = jax.lax.map(
        partial(_forward_chunk, opts, weight, bias, class_weight), chunks
    )
    outputs = tuple(out.reshape(-1)[:num_tokens] for out in outputs)
    lse = outputs[1]
    return outputs, (hidden, weight, bias, target, counted, class_weight, lse)


def _engine_bwd(opts, residuals, cotangents):
    hidden, weight, bias, target, counted, class_weight, lse = residuals
    dtype = _compute_dtype(hidden.dtype)
    num_classes = weight.shape[0]
    rows = opts.chunk_rows
    num_tokens = hidden.shape[0]
    # the stats' cotangents are ignored: they carry no gradient
    d_ce = jnp.asarray(cotangents[0], dtype)
    d_lse = jnp.asarray(cotangents[1], dtype)
    chunks = (
        _pad_chunks(hidden, rows, 0),
        _pad_chunks(target, rows, 0),
        _pad_chunks(counted, rows, False),
        _pad_chunks(lse, rows, 0),
        _pad_chunks(d_ce, rows, 0),
        _pad_chunks(d_lse, rows, 0),
    )

    def step(carry, chunk):
        d_weight, d_bias, d_class_weight = carry
        h, y, cnt, chunk_lse, u, s = chunk
        logits, slope_tanh = chunk_logits(h, weight, bias, opts.softcap, opts.temperature)
        on_target, total, smooth_row = _coefficients(
            y, cnt, class_weight, opts.label_smoothing, num_classes, dtype
        )
        safe = jnp.where(cnt, y, 0)
        probs = jnp.exp(logits - chunk_lse[:, None])
        # g = p (u A + s) - u a, with a = on_target·onehot(y) + smooth_row
        grad = probs * (u * total + s)[:, None]
        if smooth_row is not None:
            grad = grad - jnp.where(cnt, u, 0)[:, None] * smooth_row[None, :]
        token_rows = jnp.arange(safe.shape[0])
        # the target term -u (1-ε) w_y at [i, y_i], a scatter rather than a [chunk, V] one-hot
        grad = grad.at[token_rows, safe].add(-(u * on_target))
        if d_class_weight is not None:
            # ∂w_c = Σ_i u_i ((1-ε)[c=y_i](lse_i - z_iy) + ε/V (lse_i - z_ic)), counted only
            counted_u = jnp.where(cnt, u, 0)
            target_logit = logits[token_rows, safe]
            per_target = counted_u * (1.0 - opts.label_smoothing) * (chunk_lse - target_logit)
            d_class_weight = d_class_weight.at[safe].add(per_target)
            if opts.label_smoothing:
                d_class_weight = d_class_weight + (opts.label_smoothing / num_classes) * (
                    counted_u @ (chunk_lse[:, None] - logits)
                )
        if opts.temperature != 1.0:
            grad = grad / opts.temperature
        if slope_tanh is not None:
            # d/dx c·tanh(x/c) = 1 - tanh²(x/c)
            grad = grad * (1.0 - slope_tanh * slope_tanh)
        grad_in = grad.astype(hidden.dtype)
        d_hidden = jnp.dot(grad_in, weight, preferred_element_type=dtype).astype(hidden.dtype)
        d_weight = d_weight + jnp.dot(grad_in.T, h, preferred_element_type=dtype)
        if d_bias is not None:
            d_bias = d_bias + jnp.sum(grad, axis=0)
        return (d_weight, d_bias, d_class_weight), d_hidden

    init = (
        jnp.zeros(weight.shape, dtype),
        None if bias is None else jnp.zeros(bias.shape, dtype),
        None if class_weight is None else jnp.zeros(class_weight.shape, dtype),
    )
    (d_weight, d_bias, d_class_weight), d_hidden = jax.lax.scan(step, init, chunks)
    d_hidden = d_hidden.reshape((-1, hidden.shape[1]))[:num_tokens]
    return (
        d_hidden,
        d_weight.astype(weight.dtype),
        None if bias is None else d_bias.astype(bias.dtype),
        None,
        None,
        None if class_weight is None else d_class_weight.astype(class_weight.dtype),
    )


_engine.defvjp(_engine_fwd, _engine_bwd)


# ==================================================================================
# Public functions
# ==================================================================================


def safe_divide(numerator: jax.Array, divisor: jax.Array) -> jax.Array:
    """``numerator / divisor``, and 0 (with zero gradients) where the divisor is 0."""
    positive = divisor > 0
    # the divisor is replaced by 1 where 0, so no NaN reaches the gradient through `where`
    return jnp.where(positive, numerator / jnp.where(positive, divisor, 1), 0)


def count_targets(
    target: Any,
    *,
    ignore_index: int = -100,
    class_weight: Any = None,
    token_weight: Any = None,
) -> jax.Array:
    r"""The 'mean' divisor of :func:`linear_cross_entropy`: :math:`D = \sum_{\text{counted}} t_i w_{y_i}`.

    Pass it as ``normalizer=`` to each micro-batch so their losses sum to the whole batch's
    (Hugging Face's ``num_items_in_batch``). A 0-d float32 array (float64 with
    ``jax_enable_x64``). Unlike the torch version there is no ``group``: inside
    ``shard_map`` sum it with ``jax.lax.psum`` over the data axis.

    Args:
      target: integer class indices, any shape.
      ignore_index: targets equal to it are not counted.
      class_weight: optional ``[V]`` class weights.
      token_weight: optional weights of ``target``'s shape.

    >>> import jax.numpy as jnp
    >>> float(count_targets(jnp.array([1, -100, 2]), class_weight=jnp.array([1., 2., 3.])))
    5.0
    """
    ignore_index = v.check_ignore_index(ignore_index)
    target = jnp.asarray(target)
    if not jnp.issubdtype(target.dtype, jnp.integer):
        raise TypeError(f"target must hold integer class indices, got dtype {target.dtype}")
    dtype = jnp.result_type(float)
    counted = target != ignore_index
    weights = jnp.where(counted, 1, 0).astype(dtype)
    if class_weight is not None:
        class_weight = jnp.asarray(class_weight)
        dtype = jnp.promote_types(dtype, class_weight.dtype)
        weights = weights * class_weight.astype(dtype)[jnp.where(counted, target, 0)]
    if token_weight is not None:
        token_weight = jnp.asarray(token_weight)
        if token_weight.shape != target.shape:
            raise ValueError(
                f"token_weight has shape {token_weight.shape}, expected target's {target.shape}"
            )
        weights = weights * token_weight.astype(dtype)
    return jnp.sum(weights)


def linear_cross_entropy(
    hidden: Any,
    weight: Any,
    target: Any,
    *,
    bias: Any = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    class_weight: Any = None,
    token_weight: Any = None,
    z_loss: float = 0.0,
    softcap: float | None = None,
    temperature: float = 1.0,
    reduction: v.Reduction = "mean",
    normalizer: Any = None,
    return_lse: bool = False,
    return_stats: bool = False,
    chunk_size: int | Literal["auto"] = "auto",
) -> Any:
    r"""Cross-entropy of a linear layer's logits in JAX, without materialising the ``N × V`` logits.

    .. math::
        z_i = \operatorname{cap}(W h_i + b) / T, \qquad
        \ell_i = t_i \Big(-\sum_c a_{ic} \log \operatorname{softmax}(z_i)_c
                 + \lambda\, \mathrm{lse}(z_i)^2\Big),

    with :math:`a_{ic} = (1-\varepsilon)\, w_{y_i} [c = y_i] + \tfrac{\varepsilon}{V} w_c`,
    :math:`\operatorname{cap}(x) = c \tanh(x/c)` (Gemma 2's soft cap, or the identity),
    token weights :math:`t_i` and the PaLM z-loss weight :math:`\lambda`; ignored tokens
    have :math:`\ell_i = 0`. 'mean' is :math:`\sum t_i \mathrm{ce}_i / \sum t_i w_{y_i}
    + \sum t_i \mathrm{zl}_i / \sum t_i` over counted tokens (0 when nothing is counted);
    ``normalizer=N`` replaces both divisors by ``N``. A ``jax.custom_vjp`` whose forward
    (``lax.map``) and backward (``lax.scan``) loop over chunks of tokens; works under
    ``jit``, ``grad``, ``vmap``, ``checkpoint`` and with ``weight`` sharded over a mesh.

    Args:
      hidden: ``[..., D]`` float32, float64, bfloat16 or float16.
      weight: ``[V, D]``, the dtype of ``hidden``.
      target: integer class indices, ``hidden.shape[:-1]``.
      bias: optional ``[V]``.
      ignore_index: tokens whose target equals it are not counted (loss 0, gradient 0).
      label_smoothing: ε in [0, 1].
      class_weight: optional ``[V]`` (``F.cross_entropy``'s ``weight``); differentiable.
      token_weight: optional ``hidden.shape[:-1]`` weights :math:`t_i`; differentiable.
      z_loss: λ ≥ 0.
      softcap: optional c > 0 (Gemma 2: 30.0); the cap is applied before the temperature.
      temperature: T > 0.
      reduction: 'none' (per token, ``hidden.shape[:-1]``), 'mean' or 'sum'.
      normalizer: a positive number or 0-d array replacing the 'mean' divisors (e.g.
        :func:`count_targets` of the whole batch); only with ``reduction='mean'``.
      return_lse: also return the per-token lse.
      return_stats: also return lse, target_logprob, entropy, predicted and correct.
      chunk_size: tokens per chunk, or 'auto' (:func:`auto_chunk_rows`).

    Returns:
      The loss (float32 for 16-bit inputs, else the input dtype), or a
      :class:`LinearCrossEntropyOutput` with ``return_lse``/``return_stats``.

    NOTE: unlike ``crossent.torch.linear_cross_entropy``, ignored tokens are not dropped
    before the projection (JAX needs static shapes), so time follows all tokens; there is
    no ``group=``: shard ``weight`` with a ``NamedSharding`` instead.

    >>> import jax.numpy as jnp
    >>> hidden = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    >>> weight = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    >>> round(float(linear_cross_entropy(hidden, weight, jnp.array([0, 1]))), 4)
    0.5514
    """
    reduction = v.check_reduction(reduction)
    ignore_index = v.check_ignore_index(ignore_index)
    smoothing = float(v.check_unit_interval("label_smoothing", label_smoothing, differentiable=False))
    z_weight = float(v.check_non_negative("z_loss", z_loss, differentiable=False))
    cap = check_softcap(softcap)
    temp = check_temperature(temperature)
    chunk_rows = check_chunk_size(chunk_size)
    normalizer = check_normalizer(normalizer, reduction)
    hidden, weight, target = jnp.asarray(hidden), jnp.asarray(weight), jnp.asarray(target)
    bias = None if bias is None else jnp.asarray(bias)
    class_weight = None if class_weight is None else jnp.asarray(class_weight)
    token_weight = None if token_weight is None else jnp.asarray(token_weight)
    _check_arrays(hidden, weight, target, bias, class_weight, token_weight)
    num_classes, hidden_size = weight.shape
    _check_class_indices(target, num_classes, ignore_index)
    dtype = _compute_dtype(hidden.dtype)

    token_shape = target.shape
    flat_hidden = hidden.reshape((-1, hidden_size))
    flat_target = target.reshape(-1)
    num_tokens = flat_target.shape[0]
    counted = flat_target != ignore_index
    if chunk_rows is None:
        chunk_rows = auto_chunk_rows(max(num_tokens, 1), num_classes, hidden_size, hidden.dtype)
    opts = _Options(smoothing, cap, temp, max(1, min(chunk_rows, max(num_tokens, 1))),
                    return_stats)
    if num_tokens == 0:
        empty = jnp.zeros((0,), dtype)
        outputs: tuple = (empty, empty, empty, empty, jnp.zeros((0,), int))
    else:
        outputs = _engine(opts, flat_hidden, weight, bias, flat_target, counted, class_weight)
    ce, lse = outputs[0], outputs[1]
    z_term = jnp.where(counted, z_weight * lse * lse, 0) if z_weight else None
    tokens = jnp.ones((num_tokens,), dtype) if token_weight is None else (
        token_weight.reshape(-1).astype(dtype)
    )
    per_token = ce if z_term is None else ce + z_term
    per_token = tokens * per_token
    if reduction == "none":
        loss = per_token.reshape(token_shape)
    elif reduction == "sum":
        loss = jnp.sum(per_token)
    elif normalizer is not None:
        loss = jnp.sum(per_token) / jnp.asarray(normalizer, dtype)
    else:
        counted_tokens = jnp.where(counted, tokens, 0)
        target_weight = (
            jnp.ones((num_tokens,), dtype) if class_weight is None
            else class_weight.astype(dtype)[jnp.where(counted, flat_target, 0)]
        )
        loss = safe_divide(jnp.sum(tokens * ce), jnp.sum(counted_tokens * target_weight))
        if z_term is not None:
            loss = loss + safe_divide(jnp.sum(tokens * z_term), jnp.sum(counted_tokens))
    if not (return_lse or return_stats):
        return loss
    lse_out = jax.lax.stop_gradient(lse).reshape(token_shape)
    if not return_stats:
        return LinearCrossEntropyOutput(loss, lse_out)
    entropy, target_logprob, predicted = (
        jax.lax.stop_gradient(out).reshape(token_shape) for out in outputs[2:]
    )
    return LinearCrossEntropyOutput(
        loss, lse_out, target_logprob, entropy, predicted, predicted == target
    )
