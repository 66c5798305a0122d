"""What the ranks of a vocabulary-parallel loss share: the combine step and the agreement.

:class:`Combine` turns one shard's per-token statistics into the whole vocabulary's
(the identity on one process, all-reduces on a group); :func:`agree_on_shards` checks
every rank's inputs and layout before any collective of the engine, so all ranks raise
the same error instead of one waiting forever. Used by the linear engine
(``crossent.torch._linear``) and by ``vocab_parallel_cross_entropy``.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ._cross_entropy import _in_transform

# One int64 row per rank, gathered from every rank.
_STATUS, _START, _SIZE, _POSITIONS, _HIDDEN, _TMIN, _TMAX, _SUM1, _SUM2, _OPTIONS = range(10)
_ROW_LENGTH = 10
_IN_RANK_ORDER = -1  # vocab_start=None: this rank's shard follows those of the lower ranks
_NO_TARGET_MIN = 2**62  # sentinels when no position is counted
_NO_TARGET_MAX = -(2**62)

@dataclass(frozen=True)
class Combine:
    """How per-token statistics of one shard of the vocabulary become those of all of it.

    With ``group=None`` (one process holding the whole vocabulary) :meth:`max` and
    :meth:`sum` are the identity. On a ``torch.distributed`` group whose ranks each hold the
    classes ``[vocab_start, vocab_start + shard)`` they are all-reduces (MAX, SUM) over the
    group. ``num_classes`` is the whole vocabulary's size and ``widest`` the largest shard
    (the chunk policy sizes the chunks by it, so every rank walks the same chunks).
    """

    group: Any = None
    vocab_start: int = 0
    num_classes: int | None = None  # None: the local weight's rows
    widest: int | None = None

    def max(self, tensor: torch.Tensor) -> torch.Tensor:
        """Element-wise maximum over the group (a new tensor on a group); not differentiated
        (the callers detach it: ``lse = m + log Σ exp(z - m)`` is exact for any constant m)."""
        if self.group is None:
            return tensor
        return _MaxOverShards.apply(self.group, tensor)

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Element-wise sum over the group (a new tensor on a group).

        Differentiable to any order: its backward hands every rank the gradient of the sum
        unchanged (:func:`to_shards` of it), as Megatron-LM's reduce-from-model-parallel
        region, so a loss that every rank computes identically is differentiated once.
        """
        if self.group is None:
            return tensor
        if torch.is_grad_enabled() and (tensor.requires_grad or _in_transform(tensor)):
            return _function(_SumOverShards).apply(self.group, tensor)
        return _all_reduce(tensor, "SUM", self.group)

    def to_shards(self, tensor: torch.Tensor) -> torch.Tensor:
        """The identity on a tensor every rank holds (``hidden``) before it meets this rank's
        shard; its backward sums the gradient over the group (each rank's is a partial sum
        over the vocabulary), Megatron-LM's copy-to-model-parallel region."""
        if self.group is None or not torch.is_grad_enabled():
            return tensor
        return _function(_ToShards).apply(self.group, tensor)


def _all_reduce(tensor: torch.Tensor, op: str, group: Any) -> torch.Tensor:
    """A new tensor: ``tensor`` all-reduced with ``op`` over the group (16-bit in float32)."""
    backend_device = _group_device(group)
    wide = tensor.dtype in (torch.float16, torch.bfloat16)  # summed in float32
    moved = tensor.to(backend_device, dtype=torch.float32 if wide else tensor.dtype, copy=True)
    dist.all_reduce(moved, op=getattr(dist.ReduceOp, op), group=group)
    return moved.to(tensor.device, dtype=tensor.dtype)


# The collectives as autograd functions. ``_SumOverShards`` (forward: Σ over the ranks) and
# ``_ToShards`` (forward: the identity) are each other's adjoints, so each one's backward
# applies the other: gradients of any order are those of the whole vocabulary on one process.
# Every rank builds the same graph (same chunks, same collectives), so their backward
# collectives meet in the same order. The eager classes add forward-mode rules (``jvp``, for
# torch.func.jacfwd / hessian); dynamo traces only functions without one, so under
# torch.compile :func:`_function` picks the base classes.


class _SumOverShards(torch.autograd.Function):
    @staticmethod
    def forward(group: Any, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return _all_reduce(tensor, "SUM", group)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.group = inputs[0]

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor]:  # type: ignore[override]
        return None, _function(_ToShards).apply(ctx.group, grad)

    @staticmethod
    def vmap(info: Any, in_dims: tuple[Any, ...], group: Any, tensor: torch.Tensor) -> Any:
        return _function(_SumOverShards).apply(group, tensor), in_dims[1]  # element-wise


class _ToShards(torch.autograd.Function):
    @staticmethod
    def forward(group: Any, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return tensor.view_as(tensor)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.group = inputs[0]

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor]:  # type: ignore[override]
        return None, _function(_SumOverShards).apply(ctx.group, grad)

    @staticmethod
    def vmap(info: Any, in_dims: tuple[Any, ...], group: Any, tensor: torch.Tensor) -> Any:
        return _function(_ToShards).apply(group, tensor), in_dims[1]


class _MaxOverShards(torch.autograd.Function):
    @staticmethod
    def forward(group: Any, tensor: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return _all_reduce(tensor, "MAX", group)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> None:
        ctx.mark_non_differentiable(output)

    @staticmethod
    def vmap(info: Any, in_dims: tuple[Any, ...], group: Any, tensor: torch.Tensor) -> Any:
        return _MaxOverShards.apply(group, tensor), in_dims[1]


class _SumOverShardsForward(_SumOverShards):
    @staticmethod
    def jvp(ctx: Any, _group: None, tangent: torch.Tensor) -> torch.Tensor:
        return _SumOverShardsForward.apply(ctx.group, tangent)


class _ToShardsForward(_ToShards):
    @staticmethod
    def jvp(ctx: Any, _group: None, tangent: torch.Tensor) -> torch.Tensor:
        return tangent


def _function(base: type[torch.autograd.Function]) -> type[torch.autograd.Function]:
    """The eager class (with its forward-mode rule), or ``base`` while dynamo traces."""
    if torch.compiler.is_compiling():
        return base
    return {_SumOverShards: _SumOverShardsForward, _ToShards: _ToShardsForward}[base]


_LOCAL = Combine()


def _group_device(group: Any) -> torch.device:
    """Where the group's collectives take their tensors (NCCL: the current CUDA device)."""
    if dist.get_backend(group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def check_group(group: Any) -> None:
    """An initialised torch.distributed process group, else RuntimeError with the fix."""
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError(
            "vocab-parallel cross-entropy needs an initialised torch.distributed process group; "
            "launch with torchrun and call torch.distributed.init_process_group(backend) first "
            "(a single process can use a group of world size 1)"
        )


_NOT_TRACEABLE = (
    "linear_cross_entropy with a vocabulary-parallel group= cannot run under torch.compile: "
    "before any collective of the loss, the ranks all-gather their shard sizes and input "
    "checks and branch on the result in Python (the shard layout, the chunk count, the same "
    "error on every rank), which dynamo cannot trace without a graph break. Compile the model "
    "up to the hidden states and call the loss outside the compiled region (it is already one "
    "fused chunked pass), or use torch.compile without fullgraph=True and call the loss from "
    "a function decorated with torch.compiler.disable"
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


def _agree(
    group: Any, row: torch.Tensor | None, local_error: Exception | None
) -> tuple[int, int, int]:
    """All-gather every rank's row and check them; the same error is raised on every rank.

    Returns ``(this rank's vocab_start, C, the largest shard size)``. Each rank sends its row of 10 int64
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
        (_OPTIONS, "options (reduction, label_smoothing, ignore_index, dtype, which inputs "
         "require grad, torch.func transforms)", "pass the same options on every rank"),
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
    return table[rank][_START], num_classes, max(size for _, size, _ in shards)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """16-bit floats are computed in float32 (crossent's dtype policy)."""
    return torch.float32 if torch.finfo(dtype).bits < 32 else dtype


def autograd_state(*tensors: torch.Tensor | None) -> tuple:
    """Grad mode, a torch.func transform, and which of ``tensors`` require grad: what decides
    the engine's path and its backward collectives, so every rank must agree on it."""
    present = [t for t in tensors if t is not None]
    return (
        torch.is_grad_enabled(), _in_transform(*present),
        tuple(t is not None and t.requires_grad for t in tensors),
    )


def agree_on_shards(
    group: Any, vocab_start: int | None, target: torch.Tensor, check: Callable[[], tuple]
) -> tuple[Any, Combine]:
    """Check this rank's inputs (``check``), agree with the others, return the combine step.

    ``check`` validates this rank's arguments and returns ``(options, shard size, hidden size
    or -1, what must be equal on every rank)``; ``options.ignore_index`` says which targets
    count. Every rank raises the same error when one rank's inputs (or the layout) are
    wrong, so no rank is left waiting in a collective of the engine; a linear loss puts
    :func:`autograd_state` among what must be equal.
    """
    if torch.compiler.is_compiling():
        raise NotImplementedError(_NOT_TRACEABLE)
    check_group(group)
    group = dist.group.WORLD if group is None else group  # Combine(group=None) is one process
    row, error, options = None, None, None
    try:
        start = _check_vocab_start(vocab_start)
        options, shard_size, hidden_size, equal = check()
        row = _local_row(start, shard_size, target, options.ignore_index, hidden_size,
                         _options_fingerprint(*equal))
    except Exception as local_error:  # reported to every rank by _agree, then raised here
        error = local_error
    start, num_classes, widest = _agree(group, row, error)
    assert options is not None
    return options, Combine(group, start, num_classes, widest)
