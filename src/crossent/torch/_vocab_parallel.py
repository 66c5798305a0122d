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

Forward, per position, in two collectives on the group (the linear engine's
statistics, :func:`crossent.torch._linear._combined_stats`, on the whole shard at once):

1. each rank takes the maximum of its shard, :math:`m_r`; **all-reduce MAX**
   gives :math:`m = \max_r m_r` (N numbers);
2. each rank computes ``[S_r, t_r]`` or, with label smoothing, ``[S_r, t_r, s_r]``
   where :math:`S_r = \sum_{c \in r} e^{z_c - m}` (its share of the softmax's
   normaliser), :math:`t_r = z_y` if rank r owns the target class y, else 0, and
   :math:`s_r = \sum_{c \in r} z_c`; one **all-reduce SUM** of this packed
   ``[2 or 3, N]`` tensor gives :math:`S`, :math:`z_y` and :math:`\sum_c z_c`,
   and :math:`\mathrm{lse} = m + \log S`.

The per-position coefficients, losses, reduction and gradient are the linear engine's
(:mod:`crossent.torch._linear`: ``_rows``, ``_row_losses``, ``_reduce_rows``,
``_finish_grad``), so both forms compute one formula. Backward needs no communication:
forward keeps :math:`e^{z - m}` of the shard (one copy in the compute dtype) and backward
turns it, in place, into this rank's slice of ``softmax - a`` times the reduction's factor.
(The linear form adds one all-reduce of the hidden states' gradient, as a column-parallel
linear layer does.)

Before the two collectives, one small **all-gather** checks that the ranks
agree (see :func:`vocab_parallel_cross_entropy`'s Raises), so that a bad input
is reported by every rank instead of leaving the others waiting in a collective.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist

from .. import _validate as v
from .._linear_spec import LinearOptions
from . import _linear
from ._group import Combine, agree_on_shards, check_group, compute_dtype

__all__ = ["vocab_parallel_cross_entropy", "vocab_parallel_linear_cross_entropy"]


def _check_inputs(logits_shard: object, target: object) -> None:
    if not isinstance(logits_shard, torch.Tensor) or not logits_shard.dtype.is_floating_point:
        found = logits_shard.dtype if isinstance(logits_shard, torch.Tensor) else type(logits_shard).__name__
        raise TypeError(f"logits_shard must be a floating-point torch.Tensor, got {found}")
    if logits_shard.ndim == 0:
        raise ValueError("logits_shard must have at least one dimension (the classes), got a scalar")
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor of class indices, got {type(target).__name__}")
    if target.dtype.is_floating_point or target.dtype.is_complex or target.dtype == torch.bool:
        raise TypeError(
            f"target must hold integer class indices, got dtype {target.dtype}; "
            f"convert it (e.g. target.long()); probability targets are not supported here"
        )
    positions = tuple(logits_shard.shape[:-1])
    if tuple(target.shape) != positions:
        raise ValueError(
            f"target has shape {tuple(target.shape)}, but logits_shard has positions of shape "
            f"{positions}; expected class indices of shape {positions}"
        )


class _VocabParallelCrossEntropy(torch.autograd.Function):
    """The linear engine's statistics and gradient on logits given per shard (no projection)."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, logits: torch.Tensor, target: torch.Tensor, options: LinearOptions, combine: Combine
    ) -> torch.Tensor:
        dtype = compute_dtype(logits.dtype)
        shard_size = int(logits.shape[-1])
        rows = _linear._rows(target.reshape(-1), None, options, shard_size, dtype, combine)
        # exp(z - m) of the shard, kept for backward (which turns it into the gradient)
        exps = logits.detach().reshape(target.numel(), shard_size).to(dtype, copy=True)
        row_max, target_logit, spread_dot, log_sum_exp, inverse_sum = _linear._combined_stats(
            exps, rows.target, rows.owned_hit != 0, None, options.label_smoothing > 0, combine
        )
        losses = _linear._row_losses(rows, slice(None), row_max, target_logit, spread_dot, log_sum_exp)
        ctx.save_for_backward(logits, row_max, inverse_sum)
        ctx.exps, ctx.rows, ctx.options = exps, rows, options
        return _linear._reduce_rows(losses, row_max + log_sum_exp, rows, options).reshape(
            target.shape if options.reduction == "none" else ()
        )

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple:
        logits, row_max, inverse_sum = ctx.saved_tensors
        rows, options = ctx.rows, ctx.options
        exps, ctx.exps = ctx.exps, None
        if exps is None:  # a second backward (retain_graph=True): exp(z - m) again
            exps = logits.detach().reshape(row_max.shape[0], logits.shape[-1]).to(row_max.dtype, copy=True)
            exps.sub_(row_max[:, None]).exp_()
        ce_scale, _ = _linear._scales(rows, options)
        u = ce_scale * grad_output.reshape(-1).to(exps.dtype)  # d(reduced loss)/dℓ_i
        # g = p u A - u a, p = exp(z - m) / S: in place in the kept exponentials
        grad = _linear._finish_grad(
            exps.mul_((u * rows.total_mass * inverse_sum)[:, None]), u * rows.owned_hit, rows.target,
            u * rows.smooth if options.label_smoothing > 0 else None, None, None,
        )
        return grad.to(logits.dtype).reshape(logits.shape), None, None, None


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
    def check() -> tuple:
        options = LinearOptions(
            v.check_ignore_index(ignore_index),
            float(v.check_unit_interval("label_smoothing", label_smoothing, differentiable=False)),
            0.0, None, v.check_reduction(reduction), None,
        )
        _check_inputs(logits_shard, target)
        equal = ("logits", options, compute_dtype(logits_shard.dtype))
        return options, int(logits_shard.shape[-1]), -1, equal

    options, combine = agree_on_shards(group, vocab_start, target, check)
    return _VocabParallelCrossEntropy.apply(logits_shard, target, options, combine)


# ==================================================================================
# vocab_parallel_linear_cross_entropy: linear_cross_entropy on a group
# ==================================================================================


def vocab_parallel_linear_cross_entropy(
    hidden: torch.Tensor,
    weight_shard: torch.Tensor,
    target: torch.Tensor,
    *,
    vocab_start: int | None,
    group: Any = None,
    bias_shard: torch.Tensor | None = None,
    class_weight_shard: torch.Tensor | None = None,
    **options: Any,
) -> torch.Tensor | _linear.LinearCrossEntropyOutput:
    r"""Cross-entropy of a linear output layer whose rows (the vocabulary) are sharded.

    .. math::
        z_i = \operatorname{cap}(W h_i + b) / T, \quad
        \ell_i = t_i \Big(-\sum_c a_{ic} \log \operatorname{softmax}(z_i)_c
                 + \lambda\, \mathrm{lse}(z_i)^2\Big)

    with ``W = cat(weight_shard of every rank)`` in vocabulary order: exactly
    ``linear_cross_entropy(hidden, weight_shard, target, group=group, vocab_start=vocab_start,
    ...)``, every option passed through, so the numbers are those of
    :func:`crossent.torch.linear_cross_entropy` on the whole vocabulary. Per chunk of tokens,
    each rank reduces its ``[chunk, shard_size]`` block of logits to per-token statistics
    (row maximum, sum of exponentials, target logit, smoothing term) and the *combine* step
    all-reduces them over the group (MAX, then one packed SUM of ``2N`` or ``3N`` numbers);
    the gradient of ``hidden`` is all-reduced once at the end (each rank's
    ``g_shard W_shard`` is a partial sum over the vocabulary), as Megatron-LM's
    column-parallel layer does, so do not wrap ``hidden`` in another reduce-in-backward.
    Before that, one all-gather of 80 bytes per rank checks that the ranks agree (see
    :func:`vocab_parallel_cross_entropy`'s Raises). 'none' recomputes the chunks (and their
    collectives) in backward; 'mean'/'sum' form the gradients in the forward pass (a second
    backward recomputes them).

    Args:
      hidden: ``[..., D]``, identical on every rank.
      weight_shard: ``[shard_size, D]``, rows ``vocab_start ..`` of the output layer.
      target: integer class indices ``[...]`` over the full vocabulary, identical on every rank.
      vocab_start: the first class this rank holds, or ``None`` on every rank for shards in
        rank order.
      group: the process group (default: the world).
      bias_shard, class_weight_shard: optional ``[shard_size]``, this rank's entries.
      **options: every other keyword of :func:`crossent.torch.linear_cross_entropy`
        (``ignore_index``, ``label_smoothing``, ``token_weight`` identical on every rank,
        ``z_loss``, ``softcap``, ``temperature``, ``reduction``, ``normalizer``, ``return_lse``,
        ``return_stats``, ``chunk_size``), with its meaning.

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
    check_group(group)
    return _linear.linear_cross_entropy(
        hidden, weight_shard, target, bias=bias_shard, class_weight=class_weight_shard,
        group=dist.group.WORLD if group is None else group, vocab_start=vocab_start, **options,
    )
