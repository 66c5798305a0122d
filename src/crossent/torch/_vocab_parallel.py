r"""Vocabulary-parallel cross-entropy on ``torch.distributed`` (Megatron-LM's scheme).

When the output layer no longer fits one device, each rank of a process group
holds the logits (or the output-layer rows) of one contiguous slice of the
vocabulary, ``[vocab_start, vocab_start + shard_size)``. The shards together
tile ``[0, C)``; every rank holds the same targets (and, for the linear form,
the same hidden states).

The loss is crossent's coefficient formulation (:mod:`crossent.losses`) with
integer targets, written so that each term is a sum over classes, hence a sum
over shards. For a counted position (target not ``ignore_index``) the
coefficients sum to one, so with :math:`\mathrm{lse} = \log\sum_c e^{z_c}`:

.. math::
    \ell = -\sum_c a_c \log\operatorname{softmax}(z)_c
         = \mathrm{lse} - (1-\varepsilon)\, z_y - \frac{\varepsilon}{C} \sum_c z_c,
    \qquad
    \frac{\partial \ell}{\partial z_k} = \operatorname{softmax}(z)_k - a_k,
    \quad a_k = (1-\varepsilon)[k = y] + \frac{\varepsilon}{C}

Forward, per position, in two collectives on the group:

1. each rank takes the maximum of its shard, :math:`m_r`; **all-reduce MAX**
   gives :math:`m = \max_r m_r` (N numbers);
2. each rank computes ``[S_r, t_r]`` or, with label smoothing, ``[S_r, t_r, s_r]``
   where :math:`S_r = \sum_{c \in r} e^{z_c - m}` (its share of the softmax's
   normaliser), :math:`t_r = z_y` if rank r owns the target class y, else 0, and
   :math:`s_r = \sum_{c \in r} z_c`; one **all-reduce SUM** of this packed
   ``[2 or 3, N]`` tensor gives :math:`S`, :math:`z_y` and :math:`\sum_c z_c`,
   and :math:`\mathrm{lse} = m + \log S`.

Backward needs no communication: each rank's gradient is its own slice of
``softmax - a``, with softmax recomputed from its logits and the saved lse.
(The linear form adds one all-reduce of the hidden states' gradient, as a
column-parallel linear layer does.)

This is a second, sharded, expression of :func:`crossent.cross_entropy`'s
formula — a sum over the classes split into sums over shards, which the core's
single-array code cannot do; the reductions are the core's (:mod:`crossent._reduce`),
and the tests compare every option with the core and with PyTorch.

Before the two collectives, one small **all-gather** checks that the ranks
agree (see :func:`vocab_parallel_cross_entropy`'s Raises), so that a bad input
is reported by every rank instead of leaving the others waiting in a collective.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import array_api_compat
import torch
import torch.distributed as dist

from .. import _validate as v
from .._reduce import gradient_scale, reduce
from . import _linear
from ._group import (
    Combine,
    _agree,
    _check_vocab_start,
    _compute_dtype,
    _local_row,
    _options_fingerprint,
    agree_on_shards,
    check_group,
)

__all__ = ["vocab_parallel_cross_entropy", "vocab_parallel_linear_cross_entropy"]

_XP = array_api_compat.array_namespace(torch.empty(0))  # the torch namespace the core reduces with

_BLOCK_ELEMENTS = 1 << 20  # vocab_parallel_cross_entropy: 1M logits (4 MB in float32) per block


@dataclass(frozen=True)
class _Plan:
    """What every rank agreed on: the layout of the vocabulary and the options."""

    group: Any
    vocab_start: int
    shard_size: int
    num_classes: int
    ignore_index: int
    label_smoothing: float
    reduction: v.Reduction






def _check_options(reduction: object, label_smoothing: object, ignore_index: object) -> tuple:
    return (
        v.check_reduction(reduction),
        v.check_unit_interval(  # type: ignore[arg-type]
            "label_smoothing", label_smoothing, differentiable=False
        ),
        v.check_ignore_index(ignore_index),
    )


def _check_floating_tensor(name: str, tensor: object) -> None:
    if not isinstance(tensor, torch.Tensor) or not tensor.dtype.is_floating_point:
        found = tensor.dtype if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise TypeError(f"{name} must be a floating-point torch.Tensor, got {found}")


def _check_target(target: object, positions: tuple[int, ...], logits_name: str) -> None:
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor of class indices, got {type(target).__name__}")
    if target.dtype.is_floating_point or target.dtype.is_complex or target.dtype == torch.bool:
        raise TypeError(
            f"target must hold integer class indices, got dtype {target.dtype}; "
            f"convert it (e.g. target.long()); probability targets are not supported here"
        )
    if tuple(target.shape) != positions:
        raise ValueError(
            f"target has shape {tuple(target.shape)}, but {logits_name} has positions of shape "
            f"{positions}; expected class indices of shape {positions}"
        )










# ==================================================================================
# The maths, shard by shard (one definition, used by both functions)
# ==================================================================================


@dataclass
class _RowStats:
    """Per-position statistics of one rank's shard, [N] each, in the compute dtype."""

    max: torch.Tensor  # m_r = max_{c in r} z_c  (-inf for an empty shard)
    sum_exp: torch.Tensor  # Σ_{c in r} exp(z_c - m_r)
    target_logit: torch.Tensor  # z_y if this rank owns y (and y is counted), else 0
    sum_logits: torch.Tensor | None  # Σ_{c in r} z_c, only for label smoothing




def _shard_stats_into(
    stats: _RowStats, rows: slice, logits: torch.Tensor, local_target: torch.Tensor,
    owned: torch.Tensor, *, out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Fill ``stats[rows]`` from a block of logits ``[n, shard_size]`` (compute dtype).

    Returns the shift used, :math:`m_r` (0 for rows without a finite logit).
    :math:`e^{z - m_r}` is written to ``out`` (a reused scratch block, or ``logits``
    itself when they are scratch), where :func:`_grad_from_exps_` can turn it into
    the gradient; without ``out``, into a temporary.
    """
    n = logits.shape[0]
    if logits.shape[1] == 0:  # an empty shard: contributes exp-sum 0 and no logits
        stats.max[rows] = -math.inf
        stats.sum_exp[rows] = 0.0
        stats.target_logit[rows] = 0.0
        if stats.sum_logits is not None:
            stats.sum_logits[rows] = 0.0
        return logits.new_zeros(n)
    row_max = logits.amax(dim=1)
    # a row of -inf logits has max -inf: shift by 0 instead, so exp(-inf - 0) = 0, not NaN
    shift = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    stats.max[rows] = row_max
    index = torch.where(owned, local_target, torch.zeros_like(local_target))
    picked = logits.gather(1, index[:, None]).squeeze(1)
    stats.target_logit[rows] = torch.where(owned, picked, torch.zeros_like(picked))
    if stats.sum_logits is not None:
        stats.sum_logits[rows] = logits.sum(dim=1)
    # exp(z - m_r) <= 1: no overflow
    exps = torch.sub(logits, shift[:, None], out=out) if out is not None else logits - shift[:, None]
    stats.sum_exp[rows] = exps.exp_().sum(dim=1)
    return shift


def _combine(stats: _RowStats, group: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The two collectives (the linear engine's combine step): the global ``lse``, ``z_y``, ``Σ_c z_c``."""
    combine = Combine(dist.group.WORLD if group is None else group)
    local_max = stats.max
    global_max = combine.max(local_max)  # collective 1: N numbers
    # rescale this rank's exp-sum from its own max to the global one: S_r = Σ exp(z - m)
    finite = torch.isfinite(local_max)
    scale = torch.exp(torch.where(finite, local_max, global_max) - global_max)
    rescaled = torch.where(finite, stats.sum_exp * scale, torch.zeros_like(scale))
    parts = [rescaled, stats.target_logit]
    if stats.sum_logits is not None:
        parts.append(stats.sum_logits)
    packed = combine.sum(torch.stack(parts))  # collective 2: [S_r, t_r(, s_r)], 2N or 3N numbers
    # lse = m + log S; a row of -inf logits everywhere has m = -inf and S = 0: lse = -inf
    shift = torch.where(torch.isfinite(global_max), global_max, torch.zeros_like(global_max))
    lse = shift + torch.log(packed[0])
    return lse, packed[1], packed[2] if stats.sum_logits is not None else None


def _row_losses(
    lse: torch.Tensor, target_logit: torch.Tensor, sum_logits: torch.Tensor | None,
    counted: torch.Tensor, plan: _Plan,
) -> torch.Tensor:
    """ℓ = lse − (1−ε) z_y − (ε/C) Σ_c z_c for counted positions, 0 elsewhere."""
    eps = plan.label_smoothing
    losses = lse - target_logit if eps == 0 else lse - (1.0 - eps) * target_logit
    if sum_logits is not None and eps > 0:
        losses = losses - (eps / plan.num_classes) * sum_logits
    return torch.where(counted, losses, torch.zeros_like(losses))


def _grad_from_exps_(
    exps: torch.Tensor, shift: torch.Tensor, lse: torch.Tensor, row_scale: torch.Tensor,
    local_target: torch.Tensor, owned: torch.Tensor, counted: torch.Tensor, plan: _Plan,
) -> torch.Tensor:
    """``(softmax - a) · row_scale`` over this shard, in place in ``exps = exp(z - shift)``.

    ``row_scale`` [n] is d(reduced loss)/dℓ_i (1/divisor, 1, or the incoming per-position
    gradient); positions not counted get a zero row.
    """
    eps = plan.label_smoothing
    row_scale = torch.where(counted, row_scale, torch.zeros_like(row_scale))
    # softmax_k = exp(z_k - lse) = exps_k · exp(shift - lse), shift <= lse so no overflow;
    # where lse is not finite (a row of -inf logits), 0 instead of NaN
    finite = torch.isfinite(lse)
    gap = torch.where(finite, shift - lse, torch.zeros_like(lse))
    factor = torch.where(finite, torch.exp(gap), torch.zeros_like(lse)) * row_scale
    grad = exps.mul_(factor[:, None])
    if eps > 0:
        grad.sub_((eps / plan.num_classes) * row_scale[:, None])  # - (ε/C)
    if grad.shape[1] > 0:
        index = torch.where(owned, local_target, torch.zeros_like(local_target))
        hit = torch.where(owned, (1.0 - eps) * row_scale, torch.zeros_like(row_scale))
        grad.scatter_add_(1, index[:, None], -hit[:, None])  # - (1-ε) [k = y]
    return grad


def _grad_logits_(
    logits: torch.Tensor, lse: torch.Tensor, row_scale: torch.Tensor,
    local_target: torch.Tensor, owned: torch.Tensor, counted: torch.Tensor, plan: _Plan,
) -> torch.Tensor:
    """``(softmax - a) · row_scale`` computed in place in a block of (scratch) ``logits``."""
    shift = torch.where(torch.isfinite(lse), lse, torch.zeros_like(lse))
    exps = logits.sub_(shift[:, None]).exp_()
    return _grad_from_exps_(exps, shift, lse, row_scale, local_target, owned, counted, plan)


def _targets(target: torch.Tensor, plan: _Plan) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flattened ``(local index, owned by this rank, counted)`` per position."""
    flat = target.reshape(-1).to(torch.int64)
    counted = flat != plan.ignore_index
    local = flat - plan.vocab_start
    owned = counted & (local >= 0) & (local < plan.shard_size)
    return local, owned, counted


def _reduce(losses: torch.Tensor, counted: torch.Tensor, shape: torch.Size, plan: _Plan) -> torch.Tensor:
    divisor = counted.sum().to(losses.dtype)  # 'mean': the number of counted positions
    return reduce(_XP, losses.reshape(shape), plan.reduction, divisor)


def _row_scale(
    grad_output: torch.Tensor, counted: torch.Tensor, plan: _Plan, dtype: torch.dtype
) -> torch.Tensor:
    """d(reduced loss)/dℓ_i per position, times the incoming gradient."""
    if plan.reduction == "none":
        return grad_output.reshape(-1).to(dtype)
    divisor = counted.sum().to(dtype)
    scale = gradient_scale(_XP, plan.reduction, divisor, dtype)  # 1/divisor ('mean', 0 → 0) or 1
    return (grad_output.to(dtype) * scale).expand(counted.shape[0])


# ==================================================================================
# vocab_parallel_cross_entropy
# ==================================================================================


def _blocks(num_positions: int, shard_size: int) -> range:
    """Starts of row blocks of about ``_BLOCK_ELEMENTS`` logits: temporaries stay that small."""
    rows = max(1, _BLOCK_ELEMENTS // max(shard_size, 1))
    return range(0, num_positions, rows)


class _VocabParallelCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, target: torch.Tensor, plan: _Plan) -> torch.Tensor:
        dtype = _compute_dtype(logits.dtype)
        n = target.numel()
        flat = logits.detach().reshape(n, plan.shard_size)
        local, owned, counted = _targets(target, plan)
        new = flat.new_empty
        stats = _RowStats(
            new(n, dtype=dtype), new(n, dtype=dtype), new(n, dtype=dtype),
            new(n, dtype=dtype) if plan.label_smoothing > 0 else None,
        )
        blocks = _blocks(n, plan.shard_size)
        # one scratch block, reused: exp(z - m) never exists for the whole shard
        scratch = flat.new_empty((min(blocks.step, n), plan.shard_size), dtype=dtype)
        for start in blocks:
            part = slice(start, start + blocks.step)
            block, out = flat[part], scratch[: min(blocks.step, n - start)]
            if block.dtype != dtype:  # 16-bit logits: converted into the scratch block
                block = out.copy_(block)
            _shard_stats_into(stats, part, block, local[part], owned[part], out=out)
        lse, target_logit, sum_logits = _combine(stats, plan.group)
        losses = _row_losses(lse, target_logit, sum_logits, counted, plan)
        ctx.save_for_backward(logits, target, lse)
        ctx.plan = plan
        return _reduce(losses, counted, target.shape, plan)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple:
        logits, target, lse = ctx.saved_tensors
        plan: _Plan = ctx.plan
        dtype = _compute_dtype(logits.dtype)
        n = target.numel()
        local, owned, counted = _targets(target, plan)
        scale = _row_scale(grad_output, counted, plan, dtype)
        flat = logits.detach().reshape(n, plan.shard_size)
        if dtype == logits.dtype:  # built in place in one copy of the logits: the gradient itself
            grad = _grad_logits_(flat.clone(), lse, scale, local, owned, counted, plan)
        else:  # 16-bit: float32 block by block, stored in the logits' dtype
            grad = torch.empty_like(flat)
            blocks = _blocks(n, plan.shard_size)
            for start in blocks:
                part = slice(start, start + blocks.step)
                grad[part] = _grad_logits_(
                    flat[part].to(dtype), lse[part], scale[part], local[part], owned[part],
                    counted[part], plan,
                )
        return grad.reshape(logits.shape), None, None


def vocab_parallel_cross_entropy(
    logits_shard: torch.Tensor,
    target: torch.Tensor,
    *,
    vocab_start: int | None,
    group: Any = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: v.Reduction = "mean",
) -> torch.Tensor:
    r"""Cross-entropy over a vocabulary sharded across the ranks of a process group.

    .. math::
        \ell_i = \mathrm{lse}_i - (1-\varepsilon)\, z_{i, y_i}
                 - \frac{\varepsilon}{C} \sum_{c=0}^{C-1} z_{ic},
        \qquad \mathrm{lse}_i = \log \sum_{c=0}^{C-1} e^{z_{ic}}

    the numbers of ``crossent.cross_entropy(full_logits, target, ...)`` where
    ``full_logits`` is the concatenation of every rank's shard in vocabulary order
    (C = the sum of the shard sizes). Each rank passes its own shard and the same
    ``target``; each gets the same loss, and the gradient of its own shard.

    Communication per call (N positions, P ranks, float32 or float64 numbers):

    - one all-gather of one row of 10 int64 per rank (each sends 80 bytes and
      receives 80·P) to check that the ranks agree (layout, options, targets);
      this also costs one device-to-host copy of that small table;
    - all-reduce MAX of the N row maxima;
    - one all-reduce SUM of a packed ``[2, N]`` tensor ``[S_r, t_r]`` — this rank's
      share of the normaliser :math:`S_r = \sum_{c \in r} e^{z_c - m}` and the
      target logit :math:`z_y` where this rank owns y (0 elsewhere) — or, with
      ``label_smoothing > 0``, ``[3, N]`` with the shard's logit sum
      :math:`\sum_{c \in r} z_c` as third row;
    - nothing in backward: the gradient of a shard is its slice of
      :math:`(\operatorname{softmax}(z) - a)` times the reduction's factor.

    Args:
      logits_shard: floating tensor ``[..., shard_size]``: this rank's logits for classes
        ``vocab_start .. vocab_start + shard_size - 1`` (shards may differ in size, be
        empty, and sit in any rank order).
      target: integer class indices ``[...]`` over the *full* vocabulary, identical on
        every rank.
      vocab_start: the first class this rank holds; ``None`` on every rank: the shards
        lie in rank order (rank r's follows those of ranks 0 .. r-1, as in Megatron-LM),
        found from the shard sizes the agreement check gathers anyway.
      group: the process group (default: the world).
      ignore_index: targets equal to it are not counted (loss 0, gradient 0).
      label_smoothing: ε in [0, 1]; the target becomes :math:`(1-\varepsilon)e_y + \varepsilon/C`
        over the full vocabulary.
      reduction: 'none' (per position, ``target``'s shape), 'mean' (over counted
        positions; nothing counted gives 0 and a zero gradient) or 'sum'.

    Returns:
      The loss, identical on every rank: a scalar, or ``target``'s shape for 'none'.
      16-bit logits are computed in float32 and the loss is float32; the gradient has
      the logits' dtype.

    Raises:
      ValueError / TypeError on **every** rank, before the two collectives, when one
      rank's input is malformed (that rank raises its own message, the others name
      it), the shards do not tile ``[0, C)`` (a wrong ``vocab_start``, a gap, an
      overlap), the ranks disagree on options, target shape or target values, or a
      target class lies outside ``[0, C)`` (owned by no rank).
      A rank that never calls this function cannot be detected: the others wait in
      the all-gather until the process group's timeout (``init_process_group(timeout=)``;
      by default 30 minutes for gloo, 10 for NCCL — torch/distributed/distributed_c10d.py).
      gloo then raises ``torch.distributed.DistBackendError`` (a RuntimeError); NCCL's
      watchdog aborts the process unless ``TORCH_NCCL_BLOCKING_WAIT=1`` makes it raise.
      RuntimeError if torch.distributed is not initialised.

    Example (a world of one process holding the whole vocabulary):

    >>> import torch, torch.distributed as dist, crossent, crossent.torch as ct
    >>> dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    >>> logits = torch.tensor([[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]])
    >>> ct.vocab_parallel_cross_entropy(logits, torch.tensor([2, 1]), vocab_start=0,
    ...                                 reduction="none")
    tensor([0.8801, 1.4922])
    >>> dist.destroy_process_group()

    NOTE: unlike Megatron-LM's ``vocab_parallel_cross_entropy`` (which returns
    per-token losses and has no ignore_index), this takes crossent's options and
    reductions; unlike ``torch.nn.functional.cross_entropy``, the class axis is the
    last one and a 'mean' with nothing counted is 0, not NaN. Class weights are not
    supported.
    """
    check_group(group)
    row, error = None, None
    try:
        reduction, label_smoothing, ignore_index = _check_options(reduction, label_smoothing, ignore_index)
        vocab_start = _check_vocab_start(vocab_start)
        _check_floating_tensor("logits_shard", logits_shard)
        if logits_shard.ndim == 0:
            raise ValueError("logits_shard must have at least one dimension (the classes), got a scalar")
        _check_target(target, tuple(logits_shard.shape[:-1]), "logits_shard")
        fingerprint = _options_fingerprint(
            "logits", reduction, label_smoothing, ignore_index, _compute_dtype(logits_shard.dtype)
        )
        row = _local_row(vocab_start, int(logits_shard.shape[-1]), target, ignore_index, -1, fingerprint)
    except Exception as local_error:  # reported to every rank by _agree, then raised here
        error = local_error
    vocab_start, num_classes, _ = _agree(group, row, error)
    plan = _Plan(group, vocab_start, int(logits_shard.shape[-1]), num_classes, ignore_index,
                 label_smoothing, reduction)
    return _VocabParallelCrossEntropy.apply(logits_shard, target, plan)


# ==================================================================================
# vocab_parallel_linear_cross_entropy: the linear engine with the group's combine step
# ==================================================================================




def vocab_parallel_linear_cross_entropy(
    hidden: torch.Tensor,
    weight_shard: torch.Tensor,
    target: torch.Tensor,
    *,
    vocab_start: int | None,
    group: Any = None,
    bias_shard: torch.Tensor | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    class_weight_shard: torch.Tensor | None = None,
    z_loss: float = 0.0,
    softcap: float | None = None,
    reduction: v.Reduction = "mean",
    return_lse: bool = False,
    chunk_size: int | Literal["auto"] = "auto",
) -> torch.Tensor | _linear.LinearCrossEntropyOutput:
    r"""Cross-entropy of a linear output layer whose rows (the vocabulary) are sharded.

    .. math::
        z_i = \operatorname{cap}(W h_i + b), \quad
        \ell_i = -\sum_c a_{ic} \log \operatorname{softmax}(z_i)_c + \lambda\, \mathrm{lse}(z_i)^2

    with ``W = cat(weight_shard of every rank)`` in vocabulary order: the numbers of
    :func:`crossent.torch.linear_cross_entropy` on the whole vocabulary, computed by the same
    chunked engine. Per chunk of tokens, each rank reduces its ``[chunk, shard_size]`` block
    of logits to per-token statistics (row maximum, sum of exponentials, target logit,
    smoothing term) and the *combine* step all-reduces them over the group (MAX, then one
    packed SUM of ``2N`` or ``3N`` numbers); the gradient of ``hidden`` is all-reduced once
    at the end (each rank's ``g_shard W_shard`` is a partial sum over the vocabulary), as
    Megatron-LM's column-parallel layer does, so do not wrap ``hidden`` in another
    reduce-in-backward. Before that, one all-gather of 80 bytes per rank checks that the ranks
    agree (see :func:`vocab_parallel_cross_entropy`'s Raises). 'none' recomputes the chunks
    (and their collectives) in backward; 'mean'/'sum' form the gradients in the forward pass
    (a second backward recomputes them).

    Args:
      hidden: ``[..., D]``, identical on every rank.
      weight_shard: ``[shard_size, D]``, rows ``vocab_start ..`` of the output layer.
      target: integer class indices ``[...]`` over the full vocabulary, identical on every rank.
      vocab_start: the first class this rank holds, or ``None`` on every rank for shards in
        rank order (what ``linear_cross_entropy(group=...)`` passes).
      group: the process group (default: the world).
      bias_shard, class_weight_shard: optional ``[shard_size]``, this rank's entries.
      ignore_index, label_smoothing, z_loss, softcap, reduction, return_lse, chunk_size: as
        :func:`crossent.torch.linear_cross_entropy`.

    Returns:
      As :func:`crossent.torch.linear_cross_entropy`, identical on every rank.

    Raises:
      As :func:`vocab_parallel_cross_entropy` and :func:`crossent.torch.linear_cross_entropy`,
      on every rank; also ranks that disagree on the hidden size or on which inputs require
      grad (the backward all-reduces would otherwise wait forever).
      NotImplementedError: under ``torch.compile`` (the agreement branches on all-gathered
      values in Python). Double backward (``create_graph=True``), ``torch.func`` and a
      ``class_weight_shard`` that requires grad work: the shards are combined by
      differentiable collectives (``docs/linear_cross_entropy.md``).

    Example (a world of one process):

    >>> import torch, torch.distributed as dist, crossent, crossent.torch as ct
    >>> dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    >>> hidden = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> weight = torch.tensor([[0.4, 1.2], [0.3, 0.4], [0.7, 0.6]])
    >>> ct.vocab_parallel_linear_cross_entropy(hidden, weight, torch.tensor([2, 1]),
    ...                                        vocab_start=0, reduction="none")
    tensor([0.8801, 1.4922])
    >>> dist.destroy_process_group()

    NOTE: PyTorch's ``F.linear_cross_entropy`` has no sharded form; this is the
    Megatron-LM layout (``ColumnParallelLinear`` output layer followed by
    ``vocab_parallel_cross_entropy``) fused and chunked.
    """

    def check() -> _linear._Options:
        _check_floating_tensor("hidden", hidden)
        _check_floating_tensor("weight_shard", weight_shard)
        if hidden.ndim == 0:
            raise ValueError("hidden must have at least one dimension (the hidden size D), got a scalar")
        if weight_shard.ndim != 2 or weight_shard.shape[1] != hidden.shape[-1]:
            raise ValueError(
                f"weight_shard must have shape (shard_size, {hidden.shape[-1]}) to match hidden's "
                f"last dimension D={hidden.shape[-1]}, got {tuple(weight_shard.shape)}"
            )
        options = _linear._check_options(
            ignore_index=ignore_index, label_smoothing=label_smoothing, z_loss=z_loss,
            softcap=softcap, reduction=reduction, chunk_size=chunk_size,
        )
        _linear._check_tensors(hidden, weight_shard, target, bias_shard, class_weight_shard,
                               options.ignore_index, check_range=False)
        return options

    options, combine = agree_on_shards(
        group, vocab_start, hidden, weight_shard, target, class_weight_shard, check, bias=bias_shard
    )
    return _linear._apply(hidden, weight_shard, target, bias_shard, class_weight_shard, options,
                          return_lse, combine)
