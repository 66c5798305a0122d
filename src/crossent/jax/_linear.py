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

The loops run over chunks of ``chunk_size`` tokens (``fori_loop``, each chunk's per-token
outputs and ``∂h`` written in place), so the ``N × V`` logits never exist. With reduction
'mean' or 'sum' the loss is :math:`S = \sum_i u_i \mathrm{ce}_i + r_i \mathrm{lse}_i^2`
with per-token weights known before the loop, so a second ``custom_vjp`` computes ``S`` and
its gradients in one pass (one logits product per chunk: the forward's lse is the chunk's
own) and its backward only scales them by ``S``'s cotangent; ``u`` and ``r`` are inputs, so
autodiff carries their cotangents ``ce`` and ``lse²`` on to the token and class weights.
'none' keeps the two-pass form (forward: lse; backward: recompute). A chunk with no counted
token skips its gradient products (``lax.cond``).

``∂W``: float32/float64 add ``g[:, block]ᵀ h`` into the ``∂W`` carry block of classes by block
(``dynamic_update_slice``, in place), so no ``V × D`` temporary exists besides ``∂W`` itself.
16-bit inputs: the products run in the input dtype with float32 accumulation
(``preferred_element_type``), softmax statistics are float32, and ``∂W`` comes from a second
pass over blocks of classes (all tokens' logits of the block recomputed, ``∂W[block] =
g[:, block]ᵀ H`` one float32-accumulated product rounded once), so there is no float32
``V × D`` accumulator; ``∂h`` is one product per chunk, rounded once.

With ``vocab_axis`` (inside ``shard_map``) each device holds a block of classes; the row max
and sum of exponentials, the target's logit and weight, the smoothing sum and the entropy are
combined with ``pmax``/``psum``, and ``∂h`` is summed over the axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _linear_spec as spec
from .. import _validate as v
from .._linear_spec import LinearCrossEntropyOutput

__all__ = [
    "linear_cross_entropy",
    "count_targets",
    "LinearCrossEntropyOutput",
]

_FLOAT_DTYPES = (jnp.float32, jnp.float64, jnp.bfloat16, jnp.float16)
# chunk_size='auto': the float32 chunk buffers (logits, probabilities, the cap's slope) take
# about 10% of the gradients' bytes, between 12 MiB and 64 MiB, at least 8 tokens (below
# ~128 tokens a chunk, XLA's CPU products lose speed: 1.4x plain at 43 tokens, 1.0x at 128)
_AUTO_BUDGET_FRACTION = 0.10
_AUTO_BUDGET_MIN = 12 * 2**20
_AUTO_BUDGET_MAX = 64 * 2**20
_MIN_AUTO_ROWS = 8


@dataclass(frozen=True)
class _Options:
    """Checked, hashable settings of the engine (a static argument of the custom_vjp)."""

    label_smoothing: float
    softcap: float | None
    temperature: float
    chunk_rows: int
    stats: bool
    class_block: int  # float32/float64: classes per in-place ∂W update of the token pass
    vocab_block: int  # 16-bit: classes per block of the ∂W pass (all tokens at once)
    vocab_axis: str | None = None  # the mesh axis the classes are sharded over


# ==================================================================================
# Checks
# ==================================================================================


def _check_class_indices(target: Any, num_classes: int, ignore_index: int) -> None:
    """Out-of-range targets, where target is concrete (under a trace it cannot be checked)."""
    if isinstance(target, jax.core.Tracer) or target.size == 0:
        return
    values = np.asarray(target)
    bad = values[(values != ignore_index) & ((values < 0) | (values >= num_classes))]
    if bad.size:
        raise v.class_index_error(int(bad.flat[0]), num_classes, f"weight has {num_classes} classes",
                                  ignore_index)


def _is_16_bit(dtype: Any) -> bool:
    return jnp.dtype(dtype).itemsize == 2


def _compute_dtype(dtype: Any) -> Any:
    """float32 for 16-bit inputs, else the input dtype."""
    return jnp.promote_types(dtype, jnp.float32)


def auto_chunk_rows(num_tokens: int, num_classes: int, hidden_size: int, dtype: Any) -> int:
    """Tokens per chunk for ``chunk_size='auto'``: 3 float32 ``[rows, V]`` buffers in ~10% of
    the gradients' bytes (clipped to [12 MiB, 64 MiB], at least 8 rows, at most all tokens)."""
    itemsize = jnp.dtype(dtype).itemsize
    gradient_bytes = (num_tokens + num_classes) * hidden_size * itemsize
    budget = min(max(_AUTO_BUDGET_FRACTION * gradient_bytes, _AUTO_BUDGET_MIN), _AUTO_BUDGET_MAX)
    per_row = 3 * num_classes * jnp.dtype(_compute_dtype(dtype)).itemsize
    rows = max(_MIN_AUTO_ROWS, int(budget // per_row))
    return max(1, min(rows, num_tokens))


def class_blocks(
    chunk_rows: int, num_tokens: int, num_classes: int, hidden_size: int, dtype: Any
) -> tuple[int, int]:
    """Classes per block of the ∂W updates, in the chunk buffers' budget (3 × rows × V):
    a ``[block, D]`` product (float32/float64 token pass) in a third of it, and 3 ``[N, block]``
    buffers (16-bit ∂W pass) in all of it; each at least 1 and at most V."""
    itemsize = jnp.dtype(_compute_dtype(dtype)).itemsize
    budget = 3 * chunk_rows * num_classes * itemsize
    class_block = budget // (3 * hidden_size * itemsize)
    vocab_block = budget // (3 * max(num_tokens, 1) * itemsize)
    return (max(1, min(num_classes, class_block)), max(1, min(num_classes, vocab_block)))


# ==================================================================================
# The engine
# ==================================================================================


def chunk_logits(
    hidden: jax.Array,
    weight: jax.Array,
    bias: jax.Array | None,
    softcap: float | None,
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


# ----------------------------------------------------------------------------------
# The vocabulary shards: with ``vocab_axis`` (inside ``shard_map``) each device holds the
# classes [offset, offset + V_local); the row statistics are combined over the axis.
# ----------------------------------------------------------------------------------


def _shard_sum(axis: str | None, value: jax.Array) -> jax.Array:
    return value if axis is None else jax.lax.psum(value, axis)


def _shard_max(axis: str | None, value: jax.Array) -> jax.Array:
    return value if axis is None else jax.lax.pmax(value, axis)


def _global_classes(axis: str | None, local_classes: int) -> int:
    return local_classes if axis is None else local_classes * jax.lax.axis_size(axis)


def _shard_zeros(axis: str | None, shape: tuple, dtype: Any) -> jax.Array:
    """Zeros for an accumulator of per-class values (different on each shard)."""
    zeros = jnp.zeros(shape, dtype)
    return zeros if axis is None else jax.lax.pcast(zeros, (axis,), to="varying")


def _owned(axis: str | None, local_classes: int, target: jax.Array, counted: jax.Array):
    """Each counted target's index among this shard's classes, and whether the shard owns it."""
    offset = 0 if axis is None else jax.lax.axis_index(axis) * local_classes
    local = target - offset
    owned = counted & (local >= 0) & (local < local_classes)
    return jnp.where(owned, local, 0), owned


def _target_value(axis: str | None, row_values: jax.Array, local: jax.Array, owned: jax.Array) -> jax.Array:
    """``values[i, y_i]`` (or ``values[y_i]`` for a ``[V]`` table) from the owning shard; 0 for
    an uncounted token."""
    if row_values.ndim == 1:
        picked = row_values[local]
    else:
        picked = jnp.take_along_axis(row_values, local[:, None], axis=-1)[:, 0]
    return _shard_sum(axis, jnp.where(owned, picked, 0))


def _logsumexp(axis: str | None, logits: jax.Array) -> jax.Array:
    peak = _shard_max(axis, jax.lax.stop_gradient(jnp.max(logits, axis=-1, keepdims=True)))
    # subtract the row maximum so exp never overflows
    total = _shard_sum(axis, jnp.sum(jnp.exp(logits - peak), axis=-1, keepdims=True))
    return (peak + jnp.log(total))[..., 0]


def _argmax(axis: str | None, logits: jax.Array) -> jax.Array:
    """The first class of largest logit over all shards."""
    predicted = jnp.argmax(logits, axis=-1)
    if axis is None:
        return predicted
    local_max = jnp.max(logits, axis=-1)
    offset = jax.lax.axis_index(axis) * logits.shape[-1]
    candidate = jnp.where(
        local_max == jax.lax.pmax(local_max, axis), predicted + offset, jnp.iinfo(predicted.dtype).max
    )
    return jax.lax.pmin(candidate, axis)


class _Coefficients(NamedTuple):
    """Per token: ``(1-ε) w_y``, the total mass ``A``, the target's index in this shard and
    whether the shard owns it; per class of the shard: the smoothing row ``(ε/V) w`` (None
    without smoothing). Zero for uncounted tokens."""

    on_target: jax.Array
    total: jax.Array
    local: jax.Array
    owned: jax.Array
    smooth_row: jax.Array | None


def _coefficients(
    opts: _Options,
    target: jax.Array,
    counted: jax.Array,
    class_weight: jax.Array | None,
    local_classes: int,
    dtype: Any,
) -> _Coefficients:
    smoothing, axis = opts.label_smoothing, opts.vocab_axis
    num_classes = _global_classes(axis, local_classes)
    local, owned = _owned(axis, local_classes, target, counted)
    if class_weight is None:
        target_weight = jnp.ones(target.shape, dtype)
        weight_sum = jnp.asarray(num_classes, dtype)
        smooth_row = jnp.full((local_classes,), smoothing / num_classes, dtype) if smoothing else None
    else:
        cw = class_weight.astype(dtype)
        target_weight = _target_value(axis, cw, local, owned)
        weight_sum = _shard_sum(axis, jnp.sum(cw))
        smooth_row = cw * (smoothing / num_classes) if smoothing else None
    on_target = jnp.where(counted, (1.0 - smoothing) * target_weight, 0)
    total = on_target + jnp.where(counted, smoothing / num_classes * weight_sum, 0)
    return _Coefficients(on_target, total, local, owned, smooth_row)


def _chunk_outputs(opts: _Options, logits, target, counted, class_weight, local_classes):
    """Per token of one chunk: ``ce``, ``lse`` (+ entropy, target_logprob, predicted)."""
    axis = opts.vocab_axis
    lse = _logsumexp(axis, logits)
    coef = _coefficients(opts, target, counted, class_weight, local_classes, logits.dtype)
    target_logit = _target_value(axis, logits, coef.local, coef.owned)
    weighted = coef.on_target * target_logit
    if coef.smooth_row is not None:
        weighted = weighted + jnp.where(counted, _shard_sum(axis, logits @ coef.smooth_row), 0)
    ce = coef.total * lse - weighted
    if not opts.stats:
        return ce, lse
    probs = jnp.exp(logits - lse[:, None])
    entropy = lse - _shard_sum(axis, jnp.sum(probs * logits, axis=-1))
    predicted = _argmax(axis, logits)
    target_logprob = jnp.where(counted, target_logit - lse, jnp.nan)
    return ce, lse, entropy, target_logprob, predicted


def _forward(opts: _Options, hidden, weight, bias, target, counted, class_weight):
    """The per-token outputs, chunk by chunk (no gradient work)."""

    def one_chunk(carry, chunk):
        h, y, cnt = chunk
        logits, _ = chunk_logits(h, weight, bias, opts.softcap, opts.temperature)
        return carry, _chunk_outputs(opts, logits, y, cnt, class_weight, weight.shape[0])

    return _over_token_chunks(opts.chunk_rows, one_chunk, (hidden, target, counted), ())[1]


def _over_token_chunks(rows: int, chunk_fn, inputs: tuple, carry):
    """``carry, outputs = chunk_fn(carry, chunk)`` over chunks of ``rows`` tokens of the
    ``[N, ...]`` ``inputs`` (``None`` passes through); each chunk's per-token outputs are
    written into ``[N, ...]`` arrays in place, so nothing is padded or stacked."""
    num_tokens = inputs[0].shape[0]

    def take(start, size):
        return tuple(None if a is None else jax.lax.dynamic_slice_in_dim(a, start, size) for a in inputs)

    shapes = jax.eval_shape(lambda c: chunk_fn(c, take(0, rows))[1], carry)
    outputs = tuple(jnp.zeros((num_tokens,) + shape.shape[1:], shape.dtype) for shape in shapes)

    def update(start, size, state):
        carry, outputs = state
        carry, new = chunk_fn(carry, take(start, size))
        outputs = tuple(
            jax.lax.dynamic_update_slice_in_dim(out, value, start, axis=0)
            for out, value in zip(outputs, new, strict=True)
        )
        return carry, outputs

    return _over_blocks(num_tokens, rows, update, (carry, outputs))


def _logit_grad(opts: _Options, logits, slope_tanh, lse, scale, hit, local_target, smooth):
    """``∂L/∂x`` of one block of logits: ``g = p (u A + s) - u a``, then ``÷T`` and the cap's
    slope; ``scale = u A + s`` and ``hit = u (1-ε) w_y`` per token (0 where ``y`` is outside the
    block), ``smooth = u (ε/V) w`` of the block's classes (or None)."""
    grad = jnp.exp(logits - lse[:, None]) * scale[:, None]
    if smooth is not None:
        grad = grad - smooth
    # the target term at [i, y_i], a scatter rather than a [rows, block] one-hot
    grad = grad.at[jnp.arange(grad.shape[0]), local_target].add(-hit)
    if opts.temperature != 1.0:
        grad = grad / opts.temperature
    if slope_tanh is not None:
        # d/dx c·tanh(x/c) = 1 - tanh²(x/c)
        grad = grad * (1.0 - slope_tanh * slope_tanh)
    return grad


def _varying_axes(aval: Any) -> frozenset:
    """The ``shard_map`` mesh axes an abstract value varies over (empty outside ``shard_map``)."""
    kind = getattr(aval, "manual_axis_type", None)
    return frozenset(kind.varying if kind is not None else getattr(aval, "vma", ()))


def _vary_over(value: jax.Array, axes: frozenset) -> jax.Array:
    """``value`` cast to vary over the ``shard_map`` axes ``axes`` too (no-op if it does)."""
    missing = axes - _varying_axes(jax.typeof(value))
    return jax.lax.pcast(value, tuple(sorted(missing)), to="varying") if missing else value


def _vary_as(value: jax.Array, aval: Any) -> jax.Array:
    """``value`` cast to vary over the ``shard_map`` axes ``aval`` varies over."""
    return _vary_over(value, _varying_axes(aval))


def _vary_together(vocab_axis: str | None, *arrays: Any) -> tuple:
    """The engine's arguments cast to vary over the same ``shard_map`` axes (all but the
    vocabulary axis, which the engine combines itself). With the tokens sharded over a data
    axis and the weight replicated, the custom VJP's cotangents vary over it; the transpose of
    this cast sums the weight's gradient over the data axis, as autodiff of a plain loss does."""
    axes = frozenset().union(*(_varying_axes(jax.typeof(a)) for a in arrays if a is not None))
    axes -= {vocab_axis}
    return tuple(None if a is None else _vary_over(a, axes) for a in arrays)


def _vary_like_loop(update, value):
    """``value`` cast to vary over the ``shard_map`` axes that ``update(value)`` makes it vary
    over: a loop carry keeps its type, so zeros that start out equal on every device (an
    accumulator of ∂W with the tokens sharded over a data axis) are cast first."""
    for _ in range(3):  # each round adds axes; two suffice for the loops here
        cast = jax.tree_util.tree_map(_vary_as, value, jax.eval_shape(update, value))
        before, after = jax.tree_util.tree_leaves(value), jax.tree_util.tree_leaves(cast)
        if all(a is b for a, b in zip(before, after, strict=True)):
            return value
        value = cast
    return value


def _unless_nothing_counted(any_counted, contribute, carry):
    """``contribute(carry) -> (carry, per-token out)``, or ``(carry, zeros)`` where no token of
    the chunk counts (its products skipped; under vmap both branches run). The skip branch is
    cast to the same ``shard_map`` types as ``contribute``'s, as ``lax.cond`` requires."""
    carry_type, out_type = jax.eval_shape(contribute, carry)

    def skip(carry):
        zeros = jax.tree_util.tree_map(lambda a: _vary_as(jnp.zeros(a.shape, a.dtype), a), out_type)
        return jax.tree_util.tree_map(_vary_as, carry, carry_type), zeros

    return jax.lax.cond(any_counted, contribute, skip, carry)


def _over_blocks(length: int, block: int, update, value):
    """``value = update(start, size, value)`` for the blocks ``[start, start + size)`` of
    ``range(length)``: a ``fori_loop`` over the full blocks, then the remainder (static sizes)."""
    full = length // block
    if full:
        value = _vary_like_loop(lambda val: update(0, block, val), value)
        value = jax.lax.fori_loop(0, full, lambda b, val: update(b * block, block, val), value)
    if length % block:
        value = update(full * block, length % block, value)
    return value


def _gradients(opts: _Options, hidden, weight, bias, target, counted, class_weight, lse, u, s):
    """The gradients of ``Σ_i u_i ce_i + (terms in lse_i with derivative s_i)``.

    ``lse=None`` is the fused mode: the lse comes from the chunk itself, ``s`` holds the
    z-loss weights ``r_i`` of ``Σ r_i lse_i²`` (so ``s_i = 2 r_i lse_i``), and the per-token
    outputs of :func:`_chunk_outputs` come back too. Token pass (a loop over chunks):
    ``∂h = g W`` per chunk, ``∂b``, ``∂w``; float32/float64 add ``∂W[block] += g[:, block]ᵀ h``
    into the carry block by block (``dynamic_update_slice``, in place, no ``V × D`` temporary).
    16-bit inputs instead run a second pass over class blocks (:func:`_weight_pass`), so
    ``∂W`` is one float32-accumulated product per block, rounded once, with no float32
    ``V × D`` accumulator.
    """
    dtype = _compute_dtype(hidden.dtype)
    num_classes = weight.shape[0]
    axis = opts.vocab_axis
    fused = lse is None
    accumulate_weight = not _is_16_bit(hidden.dtype)

    def step(carry, chunk):
        h, y, cnt, chunk_lse, chunk_u, chunk_s = chunk
        outputs, logits = (), None
        if fused:
            logits, slope_tanh = chunk_logits(h, weight, bias, opts.softcap, opts.temperature)
            outputs = _chunk_outputs(opts, logits, y, cnt, class_weight, num_classes)
            chunk_lse = outputs[1]
            # ∂(r lse²)/∂lse = 2 r lse
            chunk_s = 2 * chunk_s * chunk_lse

        def contribute(carry):
            d_weight, d_bias, d_class_weight = carry
            chunk_logits_, slope = (
                (logits, slope_tanh)
                if fused
                else chunk_logits(h, weight, bias, opts.softcap, opts.temperature)
            )
            coef = _coefficients(opts, y, cnt, class_weight, num_classes, dtype)
            counted_u = jnp.where(cnt, chunk_u, 0)
            smooth = None if coef.smooth_row is None else counted_u[:, None] * coef.smooth_row[None, :]
            grad = _logit_grad(
                opts,
                chunk_logits_,
                slope,
                chunk_lse,
                chunk_u * coef.total + chunk_s,
                jnp.where(coef.owned, chunk_u * coef.on_target, 0),
                coef.local,
                smooth,
            )
            if d_class_weight is not None:
                # ∂w_c = Σ_i u_i ((1-ε)[c=y_i](lse_i - z_iy) + ε/V (lse_i - z_ic)), counted only
                target_logit = _target_value(axis, chunk_logits_, coef.local, coef.owned)
                per_target = counted_u * (1.0 - opts.label_smoothing) * (chunk_lse - target_logit)
                d_class_weight = d_class_weight.at[coef.local].add(jnp.where(coef.owned, per_target, 0))
                if opts.label_smoothing:
                    d_class_weight = d_class_weight + (
                        opts.label_smoothing / _global_classes(axis, num_classes)
                    ) * (counted_u @ (chunk_lse[:, None] - chunk_logits_))
            grad_in = grad.astype(hidden.dtype)
            # each shard's classes add their part of ∂h = g W
            d_hidden = _shard_sum(axis, jnp.dot(grad_in, weight, preferred_element_type=dtype))
            if accumulate_weight:

                def add_block(start, size, d_w):
                    block_grad = jax.lax.dynamic_slice_in_dim(grad_in, start, size, axis=1)
                    current = jax.lax.dynamic_slice_in_dim(d_w, start, size, axis=0)
                    update = current + jnp.dot(block_grad.T, h, preferred_element_type=dtype)
                    return jax.lax.dynamic_update_slice_in_dim(d_w, update, start, axis=0)

                d_weight = _over_blocks(num_classes, opts.class_block, add_block, d_weight)
            if d_bias is not None:
                d_bias = d_bias + jnp.sum(grad, axis=0)
            return (d_weight, d_bias, d_class_weight), d_hidden.astype(hidden.dtype)

        # a chunk with no counted token adds nothing (u = s = 0)
        carry, d_hidden = _unless_nothing_counted(jnp.any(cnt), contribute, carry)
        return carry, (d_hidden,) + tuple(outputs)

    init = (
        _shard_zeros(axis, weight.shape, dtype) if accumulate_weight else None,
        None if bias is None else _shard_zeros(axis, bias.shape, dtype),
        None if class_weight is None else _shard_zeros(axis, class_weight.shape, dtype),
    )
    (d_weight, d_bias, d_class_weight), (d_hidden, *outputs) = _over_token_chunks(
        opts.chunk_rows, step, (hidden, target, counted, lse, u, s), init
    )
    if fused:
        lse, s = outputs[1], 2 * s * outputs[1]
    if not accumulate_weight:
        d_weight = _weight_pass(opts, hidden, weight, bias, target, counted, class_weight, lse, u, s)
    return (d_hidden, d_weight.astype(weight.dtype), d_bias, d_class_weight), tuple(outputs)


def _weight_pass(opts: _Options, hidden, weight, bias, target, counted, class_weight, lse, u, s):
    """16-bit ``∂W``: per block of classes, all tokens' logits are recomputed, turned into ``g``
    with the lse, and ``∂W[block] = g[:, block]ᵀ H`` is one product (float32 accumulation inside
    it, rounded once), written into ``∂W`` in place."""
    dtype = _compute_dtype(hidden.dtype)
    num_classes = weight.shape[0]
    coef = _coefficients(opts, target, counted, class_weight, num_classes, dtype)
    scale, hit = u * coef.total + s, u * coef.on_target
    counted_u = jnp.where(counted, u, 0)

    def block_grad(start, size, d_weight):
        block_weight = jax.lax.dynamic_slice_in_dim(weight, start, size, axis=0)
        block_bias = None if bias is None else jax.lax.dynamic_slice_in_dim(bias, start, size)
        logits, slope_tanh = chunk_logits(hidden, block_weight, block_bias, opts.softcap, opts.temperature)
        local = coef.local - start
        in_block = coef.owned & (local >= 0) & (local < size)
        smooth = (
            None
            if coef.smooth_row is None
            else counted_u[:, None] * (jax.lax.dynamic_slice_in_dim(coef.smooth_row, start, size)[None, :])
        )
        grad = _logit_grad(
            opts,
            logits,
            slope_tanh,
            lse,
            scale,
            jnp.where(in_block, hit, 0),
            jnp.where(in_block, local, 0),
            smooth,
        )
        block = jnp.dot(grad.astype(hidden.dtype).T, hidden, preferred_element_type=dtype)
        return jax.lax.dynamic_update_slice_in_dim(d_weight, block.astype(weight.dtype), start, axis=0)

    return _over_blocks(
        num_classes, opts.vocab_block, block_grad, _shard_zeros(opts.vocab_axis, weight.shape, weight.dtype)
    )


def _as_bits(array: jax.Array) -> jax.Array:
    """A 16-bit residual as its bits, so XLA's excess precision cannot keep it in float32."""
    return jax.lax.bitcast_convert_type(array, jnp.uint16) if _is_16_bit(array.dtype) else array


def _from_bits(array: jax.Array, dtype: Any) -> jax.Array:
    return jax.lax.bitcast_convert_type(array, dtype) if array.dtype == jnp.uint16 else array


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _engine(opts: _Options, hidden, weight, bias, target, counted, class_weight):
    """``hidden [N, D]``, ``target``/``counted [N]`` → per token ``ce``, ``lse`` (+ stats)."""
    return _forward(opts, hidden, weight, bias, target, counted, class_weight)


def _engine_fwd(opts, hidden, weight, bias, target, counted, class_weight):
    outputs = _forward(opts, hidden, weight, bias, target, counted, class_weight)
    return outputs, (hidden, weight, bias, target, counted, class_weight, outputs[1])


def _engine_bwd(opts, residuals, cotangents):
    hidden, weight, bias, target, counted, class_weight, lse = residuals
    dtype = _compute_dtype(hidden.dtype)
    # the stats' cotangents are ignored: they carry no gradient
    d_ce = jnp.asarray(cotangents[0], dtype)
    d_lse = jnp.asarray(cotangents[1], dtype)
    (d_hidden, d_weight, d_bias, d_class_weight), _ = _gradients(
        opts, hidden, weight, bias, target, counted, class_weight, lse, d_ce, d_lse
    )
    return (
        d_hidden,
        d_weight,
        None if bias is None else d_bias.astype(bias.dtype),
        None,
        None,
        None if class_weight is None else d_class_weight.astype(class_weight.dtype),
    )


_engine.defvjp(_engine_fwd, _engine_bwd)


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _fused(opts: _Options, hidden, weight, bias, target, counted, class_weight, ce_weight, lse_weight):
    """``S = Σ_i u_i ce_i + r_i lse_i²`` (``u``, ``r`` = ``ce_weight``, ``lse_weight``) and the
    per-token outputs of :func:`_engine` (no gradient); with a gradient, the forward computes
    the gradients of ``S`` in the same pass as the loss (one logits product per chunk) and the
    backward only scales them by ``S``'s cotangent."""
    outputs = _forward(opts, hidden, weight, bias, target, counted, class_weight)
    return _weighted_sum(outputs, ce_weight, lse_weight), outputs


def _weighted_sum(outputs, ce_weight, lse_weight):
    return jnp.sum(ce_weight * outputs[0] + lse_weight * outputs[1] * outputs[1])


def _fused_fwd(opts, hidden, weight, bias, target, counted, class_weight, ce_weight, lse_weight):
    (d_hidden, d_weight, d_bias, d_class_weight), outputs = _gradients(
        opts, hidden, weight, bias, target, counted, class_weight, None, ce_weight, lse_weight
    )
    # empty arrays carry the gradients' dtypes (residuals must be arrays)
    dtypes = tuple(None if a is None else jnp.zeros((0,), a.dtype) for a in (hidden, bias, class_weight))
    residuals = (
        _as_bits(d_hidden),
        _as_bits(d_weight),
        d_bias,
        d_class_weight,
        outputs[0],
        outputs[1],
        *dtypes,
    )
    return (_weighted_sum(outputs, ce_weight, lse_weight), outputs), residuals


def _fused_bwd(opts, residuals, cotangents):
    (d_hidden, d_weight, d_bias, d_class_weight, ce, lse, dtype, bias_dtype, class_weight_dtype) = residuals
    # the per-token outputs' cotangents are ignored: they carry no gradient
    upstream = cotangents[0]

    def scaled(grad, like):
        grad_dtype = like.dtype
        grad = _from_bits(grad, grad_dtype)
        return (upstream.astype(grad.dtype) * grad).astype(grad_dtype)

    return (
        scaled(d_hidden, dtype),
        scaled(d_weight, dtype),
        None if d_bias is None else scaled(d_bias, bias_dtype),
        None,
        None,
        None if d_class_weight is None else scaled(d_class_weight, class_weight_dtype),
        upstream * ce,
        upstream * lse * lse,
    )


_fused.defvjp(_fused_fwd, _fused_bwd)


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
    data_axis: str | tuple[str, ...] | None = None,
) -> jax.Array:
    r"""The 'mean' divisor of :func:`linear_cross_entropy`: :math:`D = \sum_{\text{counted}} t_i w_{y_i}`.

    Pass it as ``normalizer=`` to each micro-batch so their losses sum to the whole batch's
    (Hugging Face's ``num_items_in_batch``). A 0-d float32 array (float64 with
    ``jax_enable_x64``). ``data_axis`` is the torch version's ``group=``: inside
    ``jax.shard_map``, with the tokens sharded over that mesh axis (or axes), the counts of
    every device are summed (``jax.lax.psum``), so each device divides by the global count.

    Args:
      target: integer class indices, any shape.
      ignore_index: targets equal to it are not counted.
      class_weight: optional ``[V]`` class weights.
      token_weight: optional weights of ``target``'s shape.
      data_axis: inside ``shard_map``, the mesh axis name(s) the tokens are sharded over.

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
            raise ValueError(f"token_weight has shape {token_weight.shape}, expected target's {target.shape}")
        weights = weights * token_weight.astype(dtype)
    total = jnp.sum(weights)
    if data_axis is None:
        return total
    names = (data_axis,) if isinstance(data_axis, str) else data_axis
    if not isinstance(names, tuple) or not names or not all(isinstance(a, str) for a in names):
        raise TypeError(
            f"data_axis must be a mesh axis name (str), a tuple of names or None, got {data_axis!r}"
        )
    return jax.lax.psum(total, names)


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
    vocab_axis: str | None = None,
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
    ``normalizer=N`` replaces both divisors by ``N``. The loops run over chunks of tokens
    (for 'mean'/'sum' the gradients are computed with the loss, in the same pass); works under
    ``jit``, ``grad``, ``vmap``, ``checkpoint``, with ``weight`` sharded over a mesh
    (``NamedSharding``) and inside ``shard_map`` with ``vocab_axis``.

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
      vocab_axis: inside ``jax.shard_map``, the mesh axis the classes are sharded over:
        ``weight``, ``bias`` and ``class_weight`` are this device's contiguous block of
        classes (device ``k`` of the axis holds ``[k V_l, (k+1) V_l)``), ``hidden``,
        ``target`` and ``token_weight`` are the same on every device of the axis; the row
        statistics are combined with ``psum``/``pmax``, and the loss and ``∂hidden`` come out
        the same on every device (``∂weight`` is this device's block).

    Returns:
      The loss (float32 for 16-bit inputs, else the input dtype), or a
      :class:`LinearCrossEntropyOutput` with ``return_lse``/``return_stats``.

    NOTE: unlike ``crossent.torch.linear_cross_entropy``, ignored tokens are not dropped
    before the projection (JAX needs static shapes), so time follows all tokens; instead
    of ``group=`` there is ``vocab_axis=`` (inside ``shard_map``), or shard ``weight`` with a
    ``NamedSharding`` and let XLA partition the products.

    >>> import jax.numpy as jnp
    >>> hidden = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    >>> weight = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    >>> round(float(linear_cross_entropy(hidden, weight, jnp.array([0, 1]))), 4)
    0.5514
    """
    options = spec.check_options(
        ignore_index=ignore_index, label_smoothing=label_smoothing, z_loss=z_loss, softcap=softcap,
        reduction=reduction, chunk_size=chunk_size, temperature=temperature, normalizer=normalizer,
        return_stats=return_stats,
    )
    reduction, ignore_index, z_weight = options.reduction, options.ignore_index, options.z_loss
    if vocab_axis is not None and not isinstance(vocab_axis, str):
        raise TypeError(f"vocab_axis must be a mesh axis name (str) or None, got {vocab_axis!r}")
    hidden, weight, target = jnp.asarray(hidden), jnp.asarray(weight), jnp.asarray(target)
    bias = None if bias is None else jnp.asarray(bias)
    class_weight = None if class_weight is None else jnp.asarray(class_weight)
    token_weight = None if token_weight is None else jnp.asarray(token_weight)
    spec.check_inputs(hidden, weight, target, bias, class_weight, token_weight, spec.JAX,
                      sharded=vocab_axis is not None, bias_like_hidden=False)
    num_classes, hidden_size = weight.shape
    if vocab_axis is None:
        _check_class_indices(target, num_classes, ignore_index)
    dtype = _compute_dtype(hidden.dtype)

    token_shape = target.shape
    flat_hidden = hidden.reshape((-1, hidden_size))
    flat_target = target.reshape(-1)
    num_tokens = flat_target.shape[0]
    counted = flat_target != ignore_index
    chunk_rows = options.chunk_size
    if chunk_rows is None:
        chunk_rows = auto_chunk_rows(max(num_tokens, 1), num_classes, hidden_size, hidden.dtype)
    chunk_rows = max(1, min(chunk_rows, max(num_tokens, 1)))
    opts = _Options(
        options.label_smoothing,
        options.softcap,
        options.temperature,
        chunk_rows,
        options.stats,
        *class_blocks(chunk_rows, num_tokens, num_classes, hidden_size, hidden.dtype),
        vocab_axis,
    )
    tokens = (
        jnp.ones((num_tokens,), dtype) if token_weight is None else (token_weight.reshape(-1).astype(dtype))
    )
    engine_args = _vary_together(vocab_axis, flat_hidden, weight, bias, flat_target, counted, class_weight)
    if num_tokens == 0:
        empty = jnp.zeros((0,), dtype)
        outputs: tuple = (empty, empty, empty, empty, jnp.zeros((0,), int))
        loss = jnp.zeros(token_shape if reduction == "none" else (), dtype)
    elif reduction == "none":
        outputs = _engine(opts, *engine_args)
        ce, lse = outputs[0], outputs[1]
        per_token = ce if not z_weight else ce + jnp.where(counted, z_weight * lse * lse, 0)
        loss = (tokens * per_token).reshape(token_shape)
    else:
        # the loss is Σ u_i ce_i + r_i lse_i²: the fused engine computes its gradients with
        # the loss, and autodiff carries u and r back to the token and class weights
        counted_tokens = jnp.where(counted, tokens, 0)
        if reduction == "sum":
            ce_divisor = lse_divisor = jnp.asarray(1, dtype)
        elif normalizer is not None:
            ce_divisor = lse_divisor = jnp.asarray(normalizer, dtype)
        else:
            target_weight = (
                jnp.ones((num_tokens,), dtype)
                if class_weight is None
                else (
                    _target_value(
                        vocab_axis,
                        class_weight.astype(dtype),
                        *_owned(vocab_axis, num_classes, flat_target, counted),
                    )
                )
            )
            ce_divisor = jnp.sum(counted_tokens * target_weight)
            lse_divisor = jnp.sum(counted_tokens)
        ce_weight = safe_divide(tokens, ce_divisor)
        lse_weight = z_weight * safe_divide(counted_tokens, lse_divisor)
        loss, outputs = _fused(opts, *_vary_together(vocab_axis, *engine_args, ce_weight, lse_weight))
    lse = outputs[1]
    if not (return_lse or return_stats):
        return loss
    lse_out = jax.lax.stop_gradient(lse).reshape(token_shape)
    if not return_stats:
        return LinearCrossEntropyOutput(loss, lse_out)
    entropy, target_logprob, predicted = (
        jax.lax.stop_gradient(out).reshape(token_shape) for out in outputs[2:]
    )
    return LinearCrossEntropyOutput(loss, lse_out, target_logprob, entropy, predicted, predicted == target)
