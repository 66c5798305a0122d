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
import zlib
from dataclasses import dataclass
from typing import Any, Literal

import array_api_compat
import torch
import torch.distributed as dist

from .. import _validate as v
from .._reduce import gradient_scale, reduce

__all__ = ["vocab_parallel_cross_entropy", "vocab_parallel_linear_cross_entropy"]

_XP = array_api_compat.array_namespace(torch.empty(0))  # the torch namespace the core reduces with

_BLOCK_ELEMENTS = 1 << 20  # vocab_parallel_cross_entropy: 1M logits (4 MB in float32) per block
_CHUNK_MIN_ELEMENTS = 1 << 20  # 'auto' chunks hold at least 1M logits (4 MB in float32)
_CHUNK_FRACTION = 8  # ... or 1/8 of the gradients' size, whichever is larger


# ==================================================================================
# Agreement between ranks: one small all-gather before any collective
# ==================================================================================

# One int64 row per rank, gathered from every rank.
_STATUS, _START, _SIZE, _POSITIONS, _HIDDEN, _TMIN, _TMAX, _SUM1, _SUM2, _OPTIONS = range(10)
_ROW_LENGTH = 10
_IN_RANK_ORDER = -1  # vocab_start=None: this rank's shard follows those of the lower ranks
_NO_TARGET_MIN = 2**62  # sentinels when no position is counted
_NO_TARGET_MAX = -(2**62)


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


def _group_device(group: Any) -> torch.device:
    """Where the group's collectives take their tensors (NCCL: the current CUDA device)."""
    if dist.get_backend(group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _check_group(group: Any) -> None:
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError(
            "vocab-parallel cross-entropy needs an initialised torch.distributed process group; "
            "launch with torchrun and call torch.distributed.init_process_group(backend) first "
            "(a single process can use a group of world size 1)"
        )


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


def _check_vocab_start(vocab_start: object) -> int:
    """An int >= 0; None (shards in rank order) becomes the sentinel -1."""
    if vocab_start is None:
        return _IN_RANK_ORDER
    if isinstance(vocab_start, bool) or not isinstance(vocab_start, int):
        raise TypeError(
            f"vocab_start must be an int (the first class this rank holds) or None (shards in "
            f"rank order), got {vocab_start!r}"
        )
    if vocab_start < 0:
        raise ValueError(f"vocab_start must be >= 0 (the first class this rank holds), got {vocab_start}")
    return vocab_start


def _options_fingerprint(*options: object) -> int:
    """A checksum of options that must be equal on every rank (deterministic across processes)."""
    return zlib.crc32(repr(options).encode())


def _local_row(
    vocab_start: int, shard_size: int, target: torch.Tensor, ignore_index: int,
    hidden_size: int, fingerprint: int,
) -> torch.Tensor:
    flat = target.detach().reshape(-1).to(torch.int64)
    counted = flat[flat != ignore_index]
    positions = torch.arange(1, flat.numel() + 1, dtype=torch.int64, device=flat.device)
    values = [
        0, vocab_start, shard_size, flat.numel(), hidden_size,
        int(counted.min()) if counted.numel() else _NO_TARGET_MIN,
        int(counted.max()) if counted.numel() else _NO_TARGET_MAX,
        int(flat.sum()), int((flat * positions).sum()),  # int64 sums wrap: still a checksum
        fingerprint,
    ]
    return torch.tensor(values, dtype=torch.int64)


def _agree(group: Any, row: torch.Tensor | None, local_error: Exception | None) -> tuple[int, int]:
    """All-gather every rank's row and check them; the same error is raised on every rank.

    Returns ``(this rank's vocab_start, C)``. Each rank sends its row of 10 int64
    (80 bytes) and receives every rank's (80·P bytes) in one all-gather.
    """
    world_size = dist.get_world_size(group)
    rank = dist.get_rank(group)
    if row is None:
        row = torch.zeros(_ROW_LENGTH, dtype=torch.int64)
        row[_STATUS] = 1
    device = _group_device(group)
    rows = [torch.empty(_ROW_LENGTH, dtype=torch.int64, device=device) for _ in range(world_size)]
    dist.all_gather(rows, row.to(device), group=group)
    table = torch.stack(rows).cpu().tolist()

    failed = [r for r in range(world_size) if table[r][_STATUS] != 0]
    if local_error is not None:
        raise local_error
    if failed:
        raise ValueError(
            f"rank(s) {failed} of the group rejected their inputs (their own error says why); "
            f"no collective was run on this rank either"
        )
    for field, what, fix in (
        (_OPTIONS, "options (reduction, label_smoothing, ignore_index, dtype, gradients needed)",
         "pass the same options on every rank"),
        (_POSITIONS, "number of positions", "pass the same target (and hidden states) on every rank"),
        (_HIDDEN, "hidden size", "pass the same hidden states on every rank"),
    ):
        values = [table[r][field] for r in range(world_size)]
        if len(set(values)) > 1:
            shown = values if field != _OPTIONS else "differ"
            raise ValueError(f"the ranks disagree on the {what}: {shown}; {fix}")
    if len({(table[r][_SUM1], table[r][_SUM2]) for r in range(world_size)}) > 1:
        raise ValueError(
            "target differs between ranks (its checksum does); every rank must hold the same "
            "target, the targets of all positions, not only those its shard owns"
        )

    in_rank_order = [table[r][_START] == _IN_RANK_ORDER for r in range(world_size)]
    if any(in_rank_order) and not all(in_rank_order):
        raise ValueError(
            f"vocab_start is None (shards in rank order) on rank(s) "
            f"{[r for r in range(world_size) if in_rank_order[r]]} but an int on the others; "
            f"pass None on every rank or an int on every rank"
        )
    if all(in_rank_order):  # rank r holds the classes after those of ranks 0 .. r-1
        start = 0
        for r in range(world_size):
            table[r][_START], start = start, start + table[r][_SIZE]
    shards = sorted((table[r][_START], table[r][_SIZE], r) for r in range(world_size))
    layout = ", ".join(f"rank {r}: [{s}, {s + n})" for s, n, r in sorted(shards, key=lambda x: x[2]))
    expected_start = 0
    for start, size, r in shards:
        if start != expected_start:
            problem = "a gap before it" if start > expected_start else "an overlap with another shard"
            raise ValueError(
                f"vocab_start/shard sizes are inconsistent across ranks: rank {r} starts at "
                f"vocab_start={start}, leaving {problem} (expected {expected_start}); the shards "
                f"must tile [0, C) without gaps or overlaps, found {layout}"
            )
        expected_start = start + size
    num_classes = expected_start
    if num_classes == 0:
        raise ValueError(f"the shards hold no classes at all ({layout}); each rank's logits have 0 columns")

    low, high = table[0][_TMIN], table[0][_TMAX]
    if low != _NO_TARGET_MIN and (low < 0 or high >= num_classes):
        found = low if low < 0 else high
        raise ValueError(
            f"target contains class index {found}, which no rank owns: the shards cover "
            f"[0, {num_classes}) ({layout}); expected indices in [0, {num_classes - 1}] or "
            f"ignore_index"
        )
    return table[rank][_START], num_classes


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


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """16-bit floats are computed in float32 (crossent's dtype policy)."""
    return torch.float32 if torch.finfo(dtype).bits < 32 else dtype


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
    """The two collectives: returns the global ``lse``, ``z_y`` and ``Σ_c z_c`` per position."""
    device = _group_device(group)
    local_max = stats.max
    global_max = local_max.to(device, copy=True)
    dist.all_reduce(global_max, op=dist.ReduceOp.MAX, group=group)  # collective 1: N numbers
    global_max = global_max.to(local_max.device)
    # rescale this rank's exp-sum from its own max to the global one: S_r = Σ exp(z - m)
    finite = torch.isfinite(local_max)
    scale = torch.exp(torch.where(finite, local_max, global_max) - global_max)
    rescaled = torch.where(finite, stats.sum_exp * scale, torch.zeros_like(scale))
    parts = [rescaled, stats.target_logit]
    if stats.sum_logits is not None:
        parts.append(stats.sum_logits)
    packed = torch.stack(parts).to(device)  # [2 or 3, N]: [S_r, t_r(, s_r)]
    dist.all_reduce(packed, op=dist.ReduceOp.SUM, group=group)  # collective 2: 2N or 3N numbers
    packed = packed.to(local_max.device)
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
    _check_group(group)
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
    vocab_start, num_classes = _agree(group, row, error)
    plan = _Plan(group, vocab_start, int(logits_shard.shape[-1]), num_classes, ignore_index,
                 label_smoothing, reduction)
    return _VocabParallelCrossEntropy.apply(logits_shard, target, plan)


# ==================================================================================
# vocab_parallel_linear_cross_entropy
# ==================================================================================


def _chunk_rows(chunk_size: object, num_positions: int, shard_size: int, hidden_size: int) -> int:
    """Positions per chunk: at most one ``[chunk, shard_size]`` block of logits exists at a time."""
    if chunk_size == "auto":
        budget = max(_CHUNK_MIN_ELEMENTS, (num_positions + shard_size) * hidden_size // _CHUNK_FRACTION)
        rows = budget // max(shard_size, 1)
    elif isinstance(chunk_size, int) and not isinstance(chunk_size, bool) and chunk_size > 0:
        rows = chunk_size
    else:
        raise ValueError(
            f"chunk_size must be 'auto' or a positive int (positions per chunk), got {chunk_size!r}"
        )
    return max(1, min(rows, max(num_positions, 1)))


@dataclass
class _LinearInputs:
    """The detached, flattened inputs of the linear form and where their gradients go."""

    hidden: torch.Tensor  # [N, D]
    weight: torch.Tensor  # [shard_size, D]
    bias: torch.Tensor | None
    dtype: torch.dtype  # compute dtype
    grad_hidden: torch.Tensor | None = None  # [N, D], compute dtype
    grad_weight: torch.Tensor | None = None
    grad_bias: torch.Tensor | None = None
    scratch: torch.Tensor | None = None  # one [chunk, shard_size] block, reused for every chunk

    @classmethod
    def of(cls, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
           num_positions: int, needs: tuple[bool, ...] = (False, False, False)) -> _LinearInputs:
        dtype = _compute_dtype(hidden.dtype)
        flat = hidden.detach().reshape(num_positions, hidden.shape[-1])
        weight = weight.detach()
        inputs = cls(flat, weight, None if bias is None else bias.detach(), dtype)
        # gradients accumulate in the compute dtype (float32 for 16-bit inputs)
        if needs[0]:
            inputs.grad_hidden = flat.new_zeros(flat.shape, dtype=dtype)
        if needs[1]:
            inputs.grad_weight = weight.new_zeros(weight.shape, dtype=dtype)
        if needs[2]:
            inputs.grad_bias = weight.new_zeros(weight.shape[0], dtype=dtype)
        return inputs

    def logits(self, part: slice) -> torch.Tensor:
        """``hidden @ weightᵀ + bias`` for one chunk of positions, in the compute dtype.

        Written into the scratch block, which the caller may overwrite (it is reused by
        the next chunk).
        """
        hidden = self.hidden[part]
        rows = hidden.shape[0]
        if self.scratch is None or self.scratch.shape[0] < rows:
            self.scratch = hidden.new_empty((rows, self.weight.shape[0]), dtype=self.dtype)
        out = self.scratch[:rows]
        if self.weight.dtype == self.dtype:
            torch.mm(hidden, self.weight.T, out=out)
            if self.bias is not None:
                out.add_(self.bias)
        else:  # 16-bit: the product in the input dtype, then float32
            out.copy_(torch.nn.functional.linear(hidden, self.weight, self.bias))
        return out

    def accumulate(self, part: slice, grad_logits: torch.Tensor) -> None:
        """Add one chunk's ``∂/∂logits`` into the gradients of hidden, weight and bias."""
        if self.grad_hidden is not None:  # ∂ℓ/∂h = (softmax - a) W: this shard's part of a sum over ranks
            if self.weight.dtype == self.dtype:
                torch.mm(grad_logits, self.weight, out=self.grad_hidden[part])
            else:
                self.grad_hidden[part] = grad_logits.to(self.weight.dtype) @ self.weight
        if self.grad_weight is not None:  # ∂ℓ/∂W_shard = (softmax - a)ᵀ h
            self.grad_weight.addmm_(grad_logits.T, self.hidden[part].to(self.dtype))
        if self.grad_bias is not None:
            self.grad_bias += grad_logits.sum(dim=0)

    def reduce_grad_hidden(self, group: Any) -> None:
        """h feeds every shard (a column-parallel layer): its gradient is the sum over ranks."""
        if self.grad_hidden is not None:
            device = _group_device(group)
            reduced = self.grad_hidden.to(device)
            dist.all_reduce(reduced, op=dist.ReduceOp.SUM, group=group)
            self.grad_hidden = reduced.to(self.hidden.device)


def _new_stats(n: int, like: torch.Tensor, dtype: torch.dtype, plan: _Plan) -> _RowStats:
    new = like.new_empty
    return _RowStats(new(n, dtype=dtype), new(n, dtype=dtype), new(n, dtype=dtype),
                     new(n, dtype=dtype) if plan.label_smoothing > 0 else None)


class _VocabParallelLinearCrossEntropy(torch.autograd.Function):
    """Two schedules over chunks of positions.

    *Eager* (reduction 'mean'/'sum' with a gradient wanted): each chunk's logits
    are computed once; the two collectives run on the chunk's rows; its gradients
    are formed at once (three matrix products per chunk, as plain PyTorch does)
    and backward only multiplies them by the incoming scalar gradient.
    *Recompute* (reduction 'none', or no gradient wanted): the forward keeps only
    per-position statistics and runs the two collectives once for the batch;
    backward recomputes each chunk's logits (four matrix products per chunk).
    """

    @staticmethod
    def forward(
        ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
        target: torch.Tensor, plan: _Plan, rows: int, eager: bool,
    ) -> torch.Tensor:
        local, owned, counted = _targets(target, plan)
        n = target.numel()
        needs = tuple(ctx.needs_input_grad[:3]) if eager else (False, False, False)
        inputs = _LinearInputs.of(hidden, weight, bias, n, needs)
        dtype = inputs.dtype
        if not eager:
            stats = _new_stats(n, inputs.hidden, dtype, plan)
            for start in range(0, n, rows):  # one [rows, shard_size] block of logits at a time
                part = slice(start, start + rows)
                logits = inputs.logits(part)
                _shard_stats_into(stats, part, logits, local[part], owned[part], out=logits)
            lse, target_logit, sum_logits = _combine(stats, plan.group)
            losses = _row_losses(lse, target_logit, sum_logits, counted, plan)
            ctx.save_for_backward(hidden, weight, bias, target, lse)
        else:
            losses = inputs.hidden.new_empty(n, dtype=dtype)
            unit = torch.ones((), dtype=dtype, device=inputs.hidden.device)
            scale = _row_scale(unit, counted, plan, dtype)  # 1/divisor or 1; times grad_output later
            for start in range(0, n, rows):
                part = slice(start, start + rows)
                logits = inputs.logits(part)
                stats = _new_stats(logits.shape[0], logits, dtype, plan)
                # logits become exp(z - m_r) in place: one block, no temporary
                shift = _shard_stats_into(stats, slice(None), logits, local[part], owned[part], out=logits)
                lse, target_logit, sum_logits = _combine(stats, plan.group)  # on this chunk's rows
                losses[part] = _row_losses(lse, target_logit, sum_logits, counted[part], plan)
                grad_logits = _grad_from_exps_(
                    logits, shift, lse, scale[part], local[part], owned[part], counted[part], plan
                )
                inputs.accumulate(part, grad_logits)
                del logits, grad_logits
            inputs.reduce_grad_hidden(plan.group)
            ctx.grads = [inputs.grad_hidden, inputs.grad_weight, inputs.grad_bias]
            ctx.input_dtypes = (hidden.dtype, weight.dtype, None if bias is None else bias.dtype)
            ctx.hidden_shape = hidden.shape
        ctx.plan, ctx.rows, ctx.eager = plan, rows, eager
        return _reduce(losses, counted, target.shape, plan)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple:
        if ctx.eager:
            grads = ctx.grads
            if grads is None:
                raise RuntimeError(
                    "vocab_parallel_linear_cross_entropy computed its gradients in the forward pass "
                    "and scaled them in place in the first backward; backpropagating through it a "
                    "second time (retain_graph=True) is not supported — use reduction='none' "
                    "followed by .sum() or .mean(), which recomputes"
                )
            ctx.grads = None
            for grad in grads:  # the incoming scalar gradient, in place: no second copy
                if grad is not None and bool(grad_output != 1):
                    grad.mul_(grad_output.to(grad.dtype))
            grad_hidden, grad_weight, grad_bias = grads
            if grad_hidden is not None:
                grad_hidden = grad_hidden.reshape(ctx.hidden_shape)
        else:
            hidden, weight, bias, target, lse = ctx.saved_tensors
            plan: _Plan = ctx.plan
            local, owned, counted = _targets(target, plan)
            n = target.numel()
            inputs = _LinearInputs.of(hidden, weight, bias, n, tuple(ctx.needs_input_grad[:3]))
            scale = _row_scale(grad_output, counted, plan, inputs.dtype)
            for start in range(0, n, ctx.rows):  # recompute one block of logits at a time
                part = slice(start, start + ctx.rows)
                grad_logits = _grad_logits_(
                    inputs.logits(part), lse[part], scale[part], local[part], owned[part],
                    counted[part], plan,
                )
                inputs.accumulate(part, grad_logits)
                del grad_logits
            inputs.reduce_grad_hidden(plan.group)
            grad_hidden, grad_weight, grad_bias = inputs.grad_hidden, inputs.grad_weight, inputs.grad_bias
            if grad_hidden is not None:
                grad_hidden = grad_hidden.reshape(hidden.shape)
            ctx.input_dtypes = (hidden.dtype, weight.dtype, None if bias is None else bias.dtype)
        grads = [None if g is None else g.to(dtype) for g, dtype in
                 zip((grad_hidden, grad_weight, grad_bias), ctx.input_dtypes, strict=True)]
        return (*grads, None, None, None, None)


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
    reduction: v.Reduction = "mean",
    chunk_size: int | Literal["auto"] = "auto",
) -> torch.Tensor:
    r"""Cross-entropy of a linear output layer whose rows (the vocabulary) are sharded.

    .. math::
        z_i = W h_i + b, \quad
        \ell_i = \mathrm{lse}(z_i) - (1-\varepsilon)\, z_{i, y_i}
                 - \frac{\varepsilon}{C} \sum_c z_{ic}

    with ``W = cat(weight_shard of every rank)`` in vocabulary order, without ever
    holding more than one ``[chunk, shard_size]`` block of logits per rank. Two
    schedules walk the positions in chunks:

    - *eager* ('mean' or 'sum', and a gradient is wanted): each chunk's logits are
      computed once, the two collectives of :func:`vocab_parallel_cross_entropy`
      run on that chunk's rows, and the chunk's gradients are formed at once — three
      matrix products per chunk, like plain PyTorch; backward only multiplies the
      gradients by the incoming scalar, in place (so it cannot run twice: no
      ``retain_graph`` double backward);
    - *recompute* ('none', or no gradient wanted): the forward keeps per-position
      statistics only (row maximum, exp-sum, target logit, logit sum) and runs the
      two collectives once for the whole batch; backward recomputes each chunk's
      logits — four matrix products per chunk.

    Communication per call, both schedules: 80 bytes sent to agree (as
    :func:`vocab_parallel_cross_entropy`), N numbers in MAX all-reduces and 2N —
    3N with label smoothing — in SUM all-reduces (once per chunk in the eager
    schedule, once in the recompute one), and one all-reduce SUM of the ``[N, D]``
    gradient of ``hidden`` (each rank's ``(softmax - a)_shard @ W_shard`` is a
    partial sum over the vocabulary), as Megatron-LM's column-parallel linear
    layer does. So the gradient of ``hidden`` that comes back is already the full
    one: do not wrap ``hidden`` in another reduce-in-backward
    (``copy_to_tensor_model_parallel_region``).

    Memory per rank, above the inputs: the gradients of ``hidden``, ``weight_shard``
    (and ``bias_shard``), a few numbers per position, and one block of logits of
    ``chunk_size × shard_size``, overwritten in place ('auto': at least 1M numbers,
    else 1/8 of the gradients' size).

    Args:
      hidden: floating tensor ``[..., D]``, identical on every rank.
      weight_shard: ``[shard_size, D]``, rows ``vocab_start ..`` of the output layer.
      target: integer class indices ``[...]`` (``hidden`` without its last dimension)
        over the full vocabulary, identical on every rank.
      vocab_start: the first class (row of the full weight) this rank holds, or ``None``
        on every rank for shards in rank order (what ``linear_cross_entropy(group=...)``
        passes).
      group: the process group (default: the world).
      bias_shard: optional ``[shard_size]``.
      ignore_index, label_smoothing, reduction: as :func:`vocab_parallel_cross_entropy`.
      chunk_size: positions per chunk, or 'auto'.

    Returns:
      The loss, identical on every rank (scalar, or ``target``'s shape for 'none').
      16-bit inputs: matrix products in the input dtype, everything else (and the
      gradient accumulators) in float32; float32 loss, gradients in the input dtypes.

    Raises:
      As :func:`vocab_parallel_cross_entropy`, on every rank; also a ``weight_shard``
      whose width is not ``hidden``'s last dimension, and ranks that disagree on the
      hidden size or on whether ``hidden`` needs a gradient (the backward all-reduce
      would otherwise wait forever).

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
    Megatron-LM layout (``VocabParallelEmbedding``/``ColumnParallelLinear`` output
    layer followed by ``vocab_parallel_cross_entropy``) fused and chunked.
    """
    _check_group(group)
    row, error = None, None
    try:
        reduction, label_smoothing, ignore_index = _check_options(reduction, label_smoothing, ignore_index)
        vocab_start = _check_vocab_start(vocab_start)
        _check_floating_tensor("hidden", hidden)
        _check_floating_tensor("weight_shard", weight_shard)
        if hidden.ndim == 0:
            raise ValueError("hidden must have at least one dimension (the hidden size D), got a scalar")
        if weight_shard.ndim != 2 or weight_shard.shape[1] != hidden.shape[-1]:
            raise ValueError(
                f"weight_shard must have shape (shard_size, {hidden.shape[-1]}) to match hidden's "
                f"last dimension D={hidden.shape[-1]}, got {tuple(weight_shard.shape)}"
            )
        for name, tensor in (("weight_shard", weight_shard), ("bias_shard", bias_shard)):
            if isinstance(tensor, torch.Tensor) and tensor.dtype != hidden.dtype:
                raise TypeError(
                    f"{name} has dtype {tensor.dtype}, but hidden has dtype {hidden.dtype}; "
                    f"convert them to one dtype"
                )
        if bias_shard is not None:
            _check_floating_tensor("bias_shard", bias_shard)
            if tuple(bias_shard.shape) != (weight_shard.shape[0],):
                raise ValueError(
                    f"bias_shard must have shape ({weight_shard.shape[0]},), one entry per row of "
                    f"weight_shard, got {tuple(bias_shard.shape)}"
                )
        _check_target(target, tuple(hidden.shape[:-1]), "hidden")
        rows = _chunk_rows(chunk_size, target.numel(), int(weight_shard.shape[0]), int(hidden.shape[-1]))
        wants_grad = [torch.is_grad_enabled() and t is not None and t.requires_grad
                      for t in (hidden, weight_shard, bias_shard)]
        # eager: gradients formed in the forward pass, chunk by chunk (see the Function)
        eager = reduction != "none" and any(wants_grad)
        fingerprint = _options_fingerprint(
            "linear", reduction, label_smoothing, ignore_index, _compute_dtype(hidden.dtype),
            wants_grad[0], eager,
        )
        row = _local_row(vocab_start, int(weight_shard.shape[0]), target, ignore_index,
                         int(hidden.shape[-1]), fingerprint)
    except Exception as local_error:  # reported to every rank by _agree, then raised here
        error = local_error
    vocab_start, num_classes = _agree(group, row, error)
    plan = _Plan(group, vocab_start, int(weight_shard.shape[0]), num_classes, ignore_index,
                 label_smoothing, reduction)
    return _VocabParallelLinearCrossEntropy.apply(
        hidden, weight_shard, bias_shard, target, plan, rows, eager
    )
