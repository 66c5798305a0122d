r"""Distillation losses of a linear layer over a large vocabulary, without the ``N × V`` logits.

Derivation
----------
For token :math:`i` the student's logits at temperature :math:`T` are
:math:`z_i = (W h_i + b) / T`, its log-probabilities :math:`s_i = \log\operatorname{softmax}(z_i)`
and :math:`p^s_i = e^{s_i}`; the teacher's are :math:`q_i` and :math:`p^t_i = e^{q_i}` (a teacher
logit of :math:`-\infty` is a zero probability and adds nothing). Every divergence is a sum over
the vocabulary of elementwise terms, and its gradient with respect to :math:`s` is an
elementwise row :math:`a`; through the log-softmax the gradient with respect to :math:`z` is

.. math:: g_{ic} = a_{ic} - p^s_{ic} \sum_{c'} a_{ic'}.

- ``'kl'``, :math:`\sum p^t (q - s)`: :math:`a = -p^t`, so :math:`g = p^s - p^t`.
- ``'reverse_kl'``, :math:`\sum p^s (s - q)`: :math:`a = p^s (s - q + 1)`, so
  :math:`g = p^s (s - q) - p^s\,\mathrm{KL}(p^s \| p^t)`.
- ``'jsd'`` (Liger-Kernel's generalised JSD, ``liger_kernel/ops/jsd.py``):
  :math:`M = \beta p^t + (1-\beta) p^s`,
  :math:`\beta \sum p^t (q - \log M) + (1-\beta) \sum p^s (s - \log M)`, with
  :math:`a = (1-\beta)\, p^s (s - \log M)` (the terms in :math:`\partial M` cancel);
  :math:`\beta = 0` is ``'kl'`` and :math:`\beta = 1` is ``'reverse_kl'``, as in Liger.
- ``'tvd'``, :math:`\tfrac12 \sum |p^t - p^s|`: :math:`a = \tfrac12 \operatorname{sign}(p^s - p^t)\, p^s`.

The hard term is the cross-entropy of the logits at temperature 1,
:math:`\mathrm{lse}(T z_i) - T z_{i y_i}`, gradient :math:`\operatorname{softmax}(T z_i) - e_{y_i}`.
With :math:`u_i` the upstream gradient of :math:`\ell_i` (``t_i / divisor`` for 'mean'), the
gradient of the logits before the temperature is
:math:`u_i t_i\,\big((1-\eta)\, \kappa\, g_i / T + \eta\, (\operatorname{softmax}(T z_i) - e_{y_i})\big)`
with :math:`\eta` = ``hard_weight`` and :math:`\kappa = T^2` (``temperature_scale``) or 1; then
:math:`\partial h_i = \sum_c \partial x_{ic} W_c`, :math:`\partial W = \partial X^\top H`,
:math:`\partial b = \sum_i \partial x_i`. Each needs one row of logits at a time, so the counted
tokens are processed in chunks: a chunk's student logits and teacher log-probabilities are made,
reduced to the chunk's losses and pushed into the three gradients, then dropped.

Vocabulary-parallel (``group=``): each rank holds the rows of ``weight`` (and ``bias``, and the
teacher's logits or weight) of its slice of the vocabulary, in rank order. The row maxima are
all-reduced with max, and every sum over the vocabulary (the softmax normaliser, the divergence,
:math:`\sum a`, the hard target's logit) with sum; ``∂h`` is the sum of the ranks' parts.

Passes and memory
-----------------
'mean' and 'sum': one pass; the gradients are made in the forward pass (upstream 1) and
backward scales them in place by ``grad_output``. 'none' (and a second backward): the forward
pass makes the losses only and backward recomputes the chunks with the per-token upstream
gradient. Memory above the inputs:
the gradients (``∂W`` accumulates in float32 for 16-bit inputs: ``V·D`` float32 values, rounded
once at the end), and the chunk buffers (a few ``chunk × V`` float32 arrays).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

from .. import _validate as v
from ._group import Combine
from ._linear import _auto_chunk_rows as _engine_chunk_rows
from ._linear import _block_pass, _bytes_per_logit, _Grads, _mm16, _Options, _rows, _Workspace
from ._linear import _Problem as _EngineProblem

__all__ = ["linear_distillation_loss", "LinearDistillationLoss"]

Divergence = Literal["kl", "reverse_kl", "jsd", "tvd"]
_DIVERGENCES = ("kl", "reverse_kl", "jsd", "tvd")
_FLOAT_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)
# chunk_size='auto': the linear engine's budget (its chunk buffers take 10% of the gradients'
# bytes, within its clamps), spent on this loss's buffers (_Work): the student's chunk × V
# logits (then g), the teacher's product for a (hidden, weight) teacher, the 16-bit product,
# and the small row-block scratch arrays
_MIN_AUTO_ROWS = 16
# elements of one scratch array: the divergence's elementwise work runs over blocks of rows of
# the chunk this wide (1 MiB in float32: it stays in cache, and the scratch costs little memory)
_SCRATCH_ELEMENTS = 2**18


def _scratch_count(loss: Divergence, beta: float, soft: bool, hard: bool) -> int:
    """Scratch arrays one block of rows needs: the teacher's log-probs and the divergence's
    temporaries (see :func:`_soft_terms`), and the hard term's softmax."""
    if loss == "jsd" and beta in (0.0, 1.0):
        loss = "kl" if beta == 0.0 else "reverse_kl"
    per_loss = {"kl": 2, "reverse_kl": 2, "jsd": 3, "tvd": 1}[loss]
    return (per_loss if soft else 0) + (1 if hard else 0)


def _auto_chunk_rows(
    num_tokens: int,
    num_classes: int,
    hidden_size: int,
    dtype: torch.dtype,
    linear_teacher: bool,
    scratch_count: int,
    grouped: bool,
) -> int:
    """``chunk_size='auto'``: the most rows whose buffers (:class:`_Work`) fit the engine's budget."""
    engine_rows = _engine_chunk_rows(num_tokens, num_classes, hidden_size, dtype, False)
    budget = engine_rows * num_classes * _bytes_per_logit(dtype, False)
    compute_bytes = 8 if dtype == torch.float64 else 4
    per_row = num_classes * compute_bytes * (2 if linear_teacher else 1)
    if dtype in (torch.bfloat16, torch.float16):
        per_row += 2 * num_classes  # the 16-bit products
    if grouped:  # the row blocks are whole chunks (one all-reduce per chunk, not per block)
        per_row += scratch_count * num_classes * compute_bytes
    else:
        budget -= scratch_count * max(num_classes, _SCRATCH_ELEMENTS) * compute_bytes
    rows = max(_MIN_AUTO_ROWS, budget // per_row)
    return max(1, min(num_tokens, rows))


def _lse(combine: Combine, z: torch.Tensor) -> torch.Tensor:
    """Row log-sum-exp over the whole (possibly sharded) vocabulary."""
    if combine.group is None:
        return torch.logsumexp(z, dim=1)  # max + log Σ exp(z - max): stable for ±1e4 logits
    row_max = combine.max(z.amax(dim=-1))
    # a row whose every logit is -inf on every rank would give -inf - -inf = nan; shift by 0
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    total = combine.sum((z - row_max[:, None]).exp_().sum(dim=-1))
    return row_max + torch.log(total)


@dataclass(frozen=True)
class _Teacher:
    """The teacher in one of its three forms; :meth:`fill` writes a block of its logits."""

    kind: Literal["logits", "linear", "sparse"]
    tensors: tuple[torch.Tensor, ...]
    vocab_start: int  # the first class of this rank's shard (0 in one process)

    def product(
        self, tokens: Any, start: int, stop: int, out: torch.Tensor, low: torch.Tensor | None
    ) -> None:
        """A (hidden, weight) teacher: ``out = hidden[tokens] @ weight[start:stop].T + bias``
        (through ``low``, a 16-bit buffer of ``out``'s shape, for 16-bit inputs)."""
        teacher_hidden, teacher_weight, *teacher_bias = self.tensors
        hidden = (
            teacher_hidden[tokens]
            if not isinstance(tokens, torch.Tensor)
            else teacher_hidden.index_select(0, tokens)
        )
        if low is not None:
            _mm16(hidden, teacher_weight[start:stop].T, low)
            out.copy_(low)
        else:
            torch.mm(hidden, teacher_weight[start:stop].T, out=out)
        if teacher_bias:
            out.add_(teacher_bias[0][start:stop])

    def fill(self, tokens: Any, start: int, out: torch.Tensor, temperature: float) -> bool:
        """Write the teacher's logits / T of ``tokens`` and classes ``start : start + width`` into
        ``out`` (a (hidden, weight) teacher's product is there already); True when they are
        log-probabilities already (the top-k teacher, normalised over its k entries)."""
        count, width = out.shape
        if self.kind == "sparse":
            indices, logprobs = self.tensors
            pick = (
                (lambda x: x[tokens])
                if not isinstance(tokens, torch.Tensor)
                else (lambda x: x.index_select(0, tokens))
            )
            # renormalised over its k entries (every rank holds all k): log_softmax(logprobs / T)
            top = torch.log_softmax(pick(logprobs).to(out.dtype) / temperature, dim=-1)
            local = pick(indices) - self.vocab_start - start
            mine = (local >= 0) & (local < width)
            row = torch.arange(count, device=out.device)[:, None].expand_as(local)
            out.fill_(-math.inf).index_put_((row[mine], local[mine]), top[mine])
            return True
        if self.kind == "logits":
            logits = self.tensors[0].narrow(1, start, width)
            logits = (
                logits[tokens] if not isinstance(tokens, torch.Tensor) else logits.index_select(0, tokens)
            )
            if temperature == 1.0:
                out.copy_(logits)
            else:
                torch.div(logits, temperature, out=out)
        elif temperature != 1.0:
            out.div_(temperature)
        return False


@dataclass(frozen=True)
class _Problem:
    """Everything one call needs, flattened to ``[N, ...]`` and validated."""

    hidden: torch.Tensor  # [N, D]
    weight: torch.Tensor  # [V_r, D] (this rank's rows)
    bias: torch.Tensor | None
    teacher: _Teacher
    target: torch.Tensor | None  # [N]
    token_weight: torch.Tensor  # [N] compute dtype, 0 for tokens not counted
    loss: Divergence
    beta: float
    temperature: float
    soft_scale: float  # T² or 1
    hard_weight: float
    chunk_rows: int
    combine: Combine
    vocab_start: int

    @property
    def compute(self) -> torch.dtype:
        return torch.float64 if self.hidden.dtype == torch.float64 else torch.float32

    @property
    def low_precision(self) -> bool:
        return self.hidden.dtype in (torch.bfloat16, torch.float16)

    @property
    def scratch_count(self) -> int:
        return _scratch_count(self.loss, self.beta, self.hard_weight < 1.0, self.hard_weight > 0.0)


def _soft_terms(
    s: torch.Tensor,
    q: torch.Tensor,
    loss: Divergence,
    beta: float,
    combine: Combine,
    scratch: list[torch.Tensor],
    stat: torch.Tensor | None,
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
    """The divergence of each row, the row statistic its gradient needs, and ``g`` (in ``s``).

    ``s``, ``q``: the student's and teacher's log-probabilities of a block ``[rows, classes]``,
    both overwritten; ``scratch``: arrays of their shape. Given ``stat`` (the second pass,
    over a block of classes), the divergence is not computed (None) and ``stat`` is used: KL for
    'reverse_kl', ``Σ p_s (s - log M)`` for 'jsd', ``Σ a`` for 'tvd' ('kl' needs none).
    """
    if loss == "jsd" and beta == 0.0:
        loss = "kl"
    if loss == "jsd" and beta == 1.0:
        loss = "reverse_kl"
    first = stat is None
    if loss == "kl":
        p_t = torch.exp(q, out=scratch[0])
        divergence = None
        if first:
            # a class the teacher rules out (q = -inf) adds 0, not 0·inf
            term = q.sub_(s).mul_(p_t).masked_fill_(p_t == 0, 0.0)
            divergence = combine.sum(term.sum(dim=-1))
        return divergence, None, s.exp_().sub_(p_t)
    if loss == "reverse_kl":
        p_s = torch.exp(s, out=scratch[0])
        term = q.neg_().add_(s).mul_(p_s).masked_fill_(p_s == 0, 0.0)  # p_s (s - q), 0 where p_s = 0
        if first:
            stat = combine.sum(term.sum(dim=-1))
        assert stat is not None
        # a = term + p_s and Σa = KL + 1, so a - p_s Σa = term - p_s KL
        return stat if first else None, stat, torch.sub(term, p_s.mul_(stat[:, None]), out=s)
    if loss == "jsd":
        # log M = log(β p_t + (1-β) p_s) in log space, finite wherever either has mass
        log_mix = torch.add(q, math.log(beta), out=scratch[0])
        other = torch.add(s, math.log1p(-beta), out=scratch[1])
        torch.logaddexp(log_mix, other, out=log_mix)
        teacher_part = None
        if first:
            p_t = torch.exp(q, out=other)
            teacher_part = q.sub_(log_mix).mul_(p_t).masked_fill_(p_t == 0, 0.0).sum(dim=-1)
        p_s = torch.exp(s, out=other)
        student_term = s.sub_(log_mix).mul_(p_s).masked_fill_(p_s == 0, 0.0)
        divergence = None
        if first:
            assert teacher_part is not None
            parts = combine.sum(torch.stack([teacher_part, student_term.sum(dim=-1)]))
            divergence, stat = beta * parts[0] + (1.0 - beta) * parts[1], parts[1]
        assert stat is not None
        return divergence, stat, student_term.sub_(p_s.mul_(stat[:, None])).mul_(1.0 - beta)
    p_s, difference = s.exp_(), q.exp_().neg_().add_(s)  # p_s, and p_s - p_t in q's array
    divergence = None
    if first:
        divergence = combine.sum(0.5 * torch.linalg.vector_norm(difference, 1, dim=-1))
    slope = difference.sign_().mul_(p_s).mul_(0.5)
    if first:
        stat = combine.sum(slope.sum(dim=-1))
    assert stat is not None
    return divergence, stat, torch.sub(slope, p_s.mul_(stat[:, None]), out=s)


@dataclass
class _RowStats:
    """Per computed token: what the first pass finds and the second (16-bit) pass reuses."""

    lse_student: torch.Tensor  # lse(z / T)
    lse_teacher: torch.Tensor  # lse(z_t / T) (0 for a top-k teacher)
    lse_hard: torch.Tensor  # lse(z), the hard term's
    stat: torch.Tensor  # the divergence's row statistic (_soft_terms)
    soft_coef: torch.Tensor  # u_i t_i (1-η) κ / T: the soft gradient's factor
    hard_coef: torch.Tensor  # u_i t_i η


@dataclass
class _Work:
    """The buffers of one call, allocated once: ``student`` (chunk × V, compute dtype: the
    logits, then g), ``teacher`` (chunk × V, a (hidden, weight) teacher's product), ``low``
    (chunk × V, 16-bit inputs: the products before they are widened, then g rounded) and the
    ``scratch`` arrays of a block of rows (:data:`_SCRATCH_ELEMENTS`, at least one row)."""

    student: torch.Tensor
    teacher: torch.Tensor | None
    low: torch.Tensor | None
    scratch: list[torch.Tensor]

    @staticmethod
    def view(buffer: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
        return buffer[: rows * cols].view(rows, cols)


def _work(p: _Problem, rows: int) -> _Work:
    num_classes = p.weight.shape[0]
    elements = rows * num_classes
    device, compute = p.hidden.device, p.compute
    soft = p.hard_weight < 1.0
    scratch_elements = (
        elements if p.combine.group is not None else min(elements, max(num_classes, _SCRATCH_ELEMENTS))
    )
    return _Work(
        torch.empty(elements, dtype=compute, device=device),
        torch.empty(elements, dtype=compute, device=device) if soft and p.teacher.kind == "linear" else None,
        torch.empty(elements, dtype=p.hidden.dtype, device=device) if p.low_precision else None,
        [torch.empty(scratch_elements, dtype=compute, device=device) for _ in range(p.scratch_count)],
    )


def _block(
    p: _Problem,
    z: torch.Tensor,
    teacher_view: torch.Tensor | None,
    tokens: Any,
    positions: slice,
    start: int,
    work: _Work,
    stats: _RowStats,
    losses: torch.Tensor | None,
    want_grad: bool,
) -> None:
    """One block of rows (tokens) and columns (classes ``start:``) of the logits ``z`` →
    ``g`` in place (``want_grad``). The first pass (``losses`` given, all classes) also finds
    the rows' statistics and losses; the second pass reuses the statistics."""
    first = losses is not None
    count, width = z.shape
    compute = z.dtype
    scratch = [_Work.view(buffer, count, width) for buffer in work.scratch]
    row_loss = torch.zeros(count, dtype=compute, device=z.device) if first else None
    hard = None
    if p.hard_weight != 0.0:
        assert p.target is not None  # hard_weight > 0 needs target (checked)
        target = p.target[tokens]
        local = target - p.vocab_start - start
        mine = (local >= 0) & (local < width)
        safe = torch.where(mine, local, 0)[:, None]
        if first:
            stats.lse_hard[positions] = _lse(p.combine, z)
            picked = z.gather(1, safe)[:, 0]
            target_logit = p.combine.sum(torch.where(mine, picked, torch.zeros_like(picked)))
            assert row_loss is not None  # first pass
            row_loss += p.hard_weight * (stats.lse_hard[positions] - target_logit)
        if want_grad:  # η (softmax(z) - e_y), times the row's u t
            hard = torch.sub(z, stats.lse_hard[positions][:, None], out=scratch[-1]).exp_()
            hard.scatter_add_(
                1, safe, mine.to(compute).neg_()[:, None]
            )  # the target's class lives in one block
            hard.mul_(stats.hard_coef[positions][:, None])
    if p.hard_weight != 1.0:
        if p.temperature != 1.0:
            z.div_(p.temperature)
        if first:
            stats.lse_student[positions] = _lse(p.combine, z)
        s = z.sub_(stats.lse_student[positions][:, None])
        q = teacher_view if teacher_view is not None else scratch[0]
        normalised = p.teacher.fill(tokens, start, q, p.temperature)
        if not normalised:
            if first:
                stats.lse_teacher[positions] = _lse(p.combine, q)
            q.sub_(stats.lse_teacher[positions][:, None])
        divergence, stat, g = _soft_terms(
            s, q, p.loss, p.beta, p.combine, scratch[1:], None if first else stats.stat[positions]
        )
        if first:
            assert divergence is not None and row_loss is not None
            row_loss += (1.0 - p.hard_weight) * p.soft_scale * divergence
            if stat is not None:
                stats.stat[positions] = stat
        if want_grad:
            g.mul_(stats.soft_coef[positions][:, None])
            if hard is not None:
                g.add_(hard)
    elif want_grad:
        assert hard is not None
        z.copy_(hard)
    if first:
        assert losses is not None and row_loss is not None
        losses[tokens] = p.token_weight[tokens] * row_loss


def _run(
    problem: _Problem, rows_all: torch.Tensor, upstream: torch.Tensor | None, want: tuple[bool, bool, bool]
) -> tuple[torch.Tensor, _Grads | None]:
    """Per-token losses ``[N]`` (compute dtype) and, when ``upstream`` is given (``[N]``, the
    gradient of each ℓ_i), the gradients of hidden, weight and bias.

    Tokens are taken ``chunk_rows`` at a time: the chunk's logits ``H Wᵀ`` (and a (hidden,
    weight) teacher's), then per block of rows the losses and ``g`` (:func:`_block`), then
    ``∂h = g W``, ``∂W += gᵀ H`` and ``∂b += Σ g``. For 16-bit inputs ``∂W`` and ``∂b`` come
    from the linear engine's second pass over blocks of classes instead (no float32 ``V × D``
    accumulator), which recomputes each block's logits from the first pass's row statistics.
    """
    p = problem
    compute = p.compute
    num_tokens = p.hidden.shape[0]
    num_classes = p.weight.shape[0]
    device = p.hidden.device
    count = rows_all.numel()
    every_row = count == num_tokens  # no token dropped: chunks are slices (views)
    losses = torch.zeros(num_tokens, dtype=compute, device=device)
    want_hidden, want_weight, want_bias = want if upstream is not None else (False, False, False)
    want_bias = want_bias and p.bias is not None
    second_pass = p.low_precision and (want_weight or want_bias)
    grouped = p.combine.group is not None
    grads = None
    if upstream is not None:
        grads = _Grads(
            # 16-bit ∂h is made row by row by one product each: in the input dtype (summed over
            # the ranks in the compute dtype)
            (
                torch.zeros(p.hidden.shape, dtype=compute if grouped else p.hidden.dtype, device=device)
                if want_hidden
                else None
            ),
            (
                torch.zeros(p.weight.shape, dtype=compute, device=device)
                if want_weight and not second_pass
                else torch.empty_like(p.weight)
                if want_weight
                else None
            ),
            torch.zeros(num_classes, dtype=compute, device=device) if want_bias else None,
        )
    zeros = torch.zeros(count, dtype=compute, device=device)
    stats = _RowStats(zeros, zeros.clone(), zeros.clone(), zeros.clone(), zeros, zeros)
    if upstream is not None:
        scale = p.token_weight[rows_all] * upstream[rows_all]
        stats.soft_coef = scale * ((1.0 - p.hard_weight) * p.soft_scale / p.temperature)
        stats.hard_coef = scale * p.hard_weight
    chunk = max(1, min(p.chunk_rows, count))
    work = _work(p, chunk)
    bias = None if p.bias is None else p.bias.to(compute)
    sub_rows = chunk if grouped else max(1, work.scratch[0].numel() // num_classes) if work.scratch else chunk
    for start in range(0, count, chunk):
        stop = min(start + chunk, count)
        size = stop - start
        tokens: Any = slice(start, stop) if every_row else rows_all[start:stop]
        hidden = p.hidden[tokens]
        z = _Work.view(work.student, size, num_classes)
        low = None if work.low is None else _Work.view(work.low, size, num_classes)
        if low is not None:  # the product in the input dtype (float32 accumulation inside)
            _mm16(hidden, p.weight.T, low)
            z.copy_(low)
        else:
            torch.mm(hidden, p.weight.T, out=z)
        if bias is not None:
            z.add_(bias)
        teacher = None
        if work.teacher is not None:
            teacher = _Work.view(work.teacher, size, num_classes)
            p.teacher.product(tokens, 0, num_classes, teacher, low)
        for row in range(0, size, sub_rows):
            row_stop = min(row + sub_rows, size)
            _block(
                p,
                z[row:row_stop],
                None if teacher is None else teacher[row:row_stop],
                slice(start + row, start + row_stop)
                if every_row
                else rows_all[start + row : start + row_stop],
                slice(start + row, start + row_stop),
                0,
                work,
                stats,
                losses,
                grads is not None,
            )
        if grads is None:
            continue
        g_in = z if low is None else low.copy_(z)  # the products run in the input dtype
        if grads.hidden is not None and every_row and grads.hidden.dtype == g_in.dtype:
            _mm16(g_in, p.weight, grads.hidden[tokens])  # no chunk × D temporary
        elif grads.hidden is not None:
            product = _mm16(g_in, p.weight, g_in.new_empty(stop - start, p.weight.shape[1]))
            grads.hidden.index_copy_(0, rows_all[start:stop], product.to(grads.hidden.dtype))
        if grads.weight is not None and not second_pass:
            grads.weight.addmm_(z.T, hidden)  # in place: no V × D product per chunk
        if grads.bias is not None and not second_pass:
            grads.bias += z.sum(dim=0)
    if grads is not None and grads.hidden is not None and grouped:
        grads.hidden = p.combine.sum(grads.hidden)  # ∂h sums every shard's W_c
    if grads is not None and second_pass:
        _second_pass(p, rows_all, every_row, chunk, work, stats, grads)
    return losses, grads


def _second_pass(
    p: _Problem,
    rows_all: torch.Tensor,
    every_row: bool,
    chunk: int,
    work: _Work,
    stats: _RowStats,
    grads: _Grads,
) -> None:
    """16-bit ``∂W`` and ``∂b`` by the linear engine's pass over blocks of classes: each block's
    logits of all computed tokens are recomputed, turned into ``g`` by :func:`_block` with the
    first pass's statistics, and ``∂W[block] = gᵀ H`` is one 16-bit product (float32 inside)."""
    count = rows_all.numel()
    options = _Options(
        ignore_index=-100, label_smoothing=0.0, z_loss=0.0, softcap=None, reduction="sum", chunk_size=chunk
    )
    engine = _EngineProblem(
        p.hidden,
        p.weight,
        p.bias,
        _rows(
            torch.zeros(count, dtype=torch.long, device=p.hidden.device),
            None,
            options,
            p.weight.shape[0],
            p.compute,
        ),
        options,
        p.compute,
        index=None if every_row else rows_all,
    )
    assert work.low is not None

    def block_grad(logits: torch.Tensor, _low: Any, _cap_slope: Any, start: int, stop: int) -> torch.Tensor:
        width = stop - start
        teacher = None
        if work.teacher is not None:
            teacher = _Work.view(work.teacher, count, width)
            p.teacher.product(
                slice(None) if every_row else rows_all,
                start,
                stop,
                teacher,
                None if work.low is None else _Work.view(work.low, count, width),
            )
        sub_rows = max(1, work.scratch[0].numel() // width) if work.scratch else count
        for row in range(0, count, sub_rows):
            row_stop = min(row + sub_rows, count)
            _block(
                p,
                logits[row:row_stop],
                None if teacher is None else teacher[row:row_stop],
                slice(row, row_stop) if every_row else rows_all[row:row_stop],
                slice(row, row_stop),
                start,
                work,
                stats,
                None,
                True,
            )
        return logits

    _block_pass(engine, grads.weight, grads.bias, _Workspace(work.student, work.low, None), block_grad)


class _DistillationFunction(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        problem: _Problem,
        rows: torch.Tensor,
        reduction: v.Reduction,
        inverse: torch.Tensor,
        want: tuple[bool, bool, bool],
    ) -> torch.Tensor:
        ctx.problem, ctx.rows, ctx.reduction, ctx.want = problem, rows, reduction, want
        ctx.has_bias, ctx.inverse, ctx.grads = bias is not None, inverse, None
        if reduction == "none":
            losses, _ = _run(problem, rows, None, want)
            return losses.to(torch.float64 if hidden.dtype == torch.float64 else torch.float32)
        upstream = torch.full((hidden.shape[0],), 1.0, dtype=problem.compute, device=hidden.device)
        upstream = upstream * inverse.to(problem.compute)
        losses, grads = _run(problem, rows, upstream if any(want) else None, want)
        ctx.grads = grads
        return (losses.sum() * inverse.to(problem.compute)).to(
            torch.float64 if hidden.dtype == torch.float64 else torch.float32
        )

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[Any, ...]:
        problem: _Problem = ctx.problem
        grads, ctx.grads = ctx.grads, None
        if grads is None:  # 'none', or a second backward (retain_graph=True): recompute
            upstream = grad_output.to(problem.compute)
            if ctx.reduction != "none":
                upstream = (
                    upstream
                    * ctx.inverse.to(problem.compute)
                    * torch.ones(problem.hidden.shape[0], dtype=problem.compute, device=problem.hidden.device)
                )
            _, grads = _run(problem, ctx.rows, upstream, ctx.want)
        else:
            if not bool(grad_output == 1):  # in place: no second gradient-sized allocation
                for value in (grads.hidden, grads.weight, grads.bias):
                    if value is not None:
                        value.mul_(grad_output.to(value.dtype))
        assert grads is not None
        out = []
        for name, like in (("hidden", problem.hidden), ("weight", problem.weight), ("bias", problem.bias)):
            value = getattr(grads, name)
            out.append(None if value is None or like is None else value.to(like.dtype))
        return (out[0], out[1], out[2] if ctx.has_bias else None, None, None, None, None, None)


def _teacher(
    teacher: Any,
    lead_shape: tuple[int, ...],
    num_classes: int,
    hidden_size: int,
    group: Any,
    vocab_start: int,
    loss: Divergence,
) -> _Teacher:
    """Recognise the teacher's form and flatten it to ``[N, ...]`` (shapes checked)."""
    num_tokens = math.prod(lead_shape)
    if isinstance(teacher, torch.Tensor):
        if tuple(teacher.shape) != (*lead_shape, num_classes):
            raise ValueError(
                f"teacher logits must have shape {(*lead_shape, num_classes)} (hidden.shape[:-1] + "
                f"(V{'_rank' if group is not None else ''},)), got {tuple(teacher.shape)}"
            )
        if teacher.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"teacher logits must be a floating tensor, got dtype {teacher.dtype}")
        return _Teacher("logits", (teacher.detach().reshape(num_tokens, num_classes),), vocab_start)
    if (
        not isinstance(teacher, (tuple, list))
        or len(teacher) not in (2, 3)
        or not all(isinstance(t, torch.Tensor) for t in teacher)
    ):
        raise TypeError(
            "teacher must be a tensor of logits [..., V], a tuple (teacher_hidden, teacher_weight"
            "[, teacher_bias]) or a top-k tuple (indices int64 [..., k], logprobs [..., k]); got "
            f"{type(teacher).__name__}"
        )
    first = teacher[0]
    if not first.is_floating_point():
        if len(teacher) != 2:
            raise ValueError("a sparse teacher is the tuple (indices [..., k], logprobs [..., k])")
        indices, logprobs = teacher
        if loss == "reverse_kl":
            raise ValueError(
                "loss='reverse_kl' with a top-k sparse teacher is infinite (the student has mass "
                "where the teacher has none); use loss='kl', 'jsd' or 'tvd', or dense teacher logits"
            )
        if indices.shape != logprobs.shape or tuple(indices.shape[:-1]) != lead_shape:
            raise ValueError(
                f"sparse teacher indices and logprobs must both have shape {(*lead_shape, 'k')}, got "
                f"{tuple(indices.shape)} and {tuple(logprobs.shape)}"
            )
        k = indices.shape[-1]
        return _Teacher(
            "sparse",
            (indices.reshape(num_tokens, k).long(), logprobs.detach().reshape(num_tokens, k)),
            vocab_start,
        )
    teacher_hidden, teacher_weight, *rest = teacher
    if (
        tuple(teacher_hidden.shape[:-1]) != lead_shape
        or teacher_weight.ndim != 2
        or (teacher_weight.shape[0] != num_classes or teacher_weight.shape[1] != teacher_hidden.shape[-1])
    ):
        raise ValueError(
            f"teacher (hidden, weight) must be [{', '.join(map(str, lead_shape))}, D_t] and "
            f"[{num_classes}, D_t], got {tuple(teacher_hidden.shape)} and {tuple(teacher_weight.shape)}"
        )
    if rest and tuple(rest[0].shape) != (num_classes,):
        raise ValueError(f"teacher bias must have shape ({num_classes},), got {tuple(rest[0].shape)}")
    flat = (
        teacher_hidden.detach().reshape(num_tokens, -1),
        teacher_weight.detach(),
        *(b.detach() for b in rest),
    )
    return _Teacher("linear", flat, vocab_start)


def _vocab_start(num_classes: int, group: Any) -> tuple[int, int]:
    """The first class of this rank's shard (the lower ranks' shard sizes summed), and V."""
    if group is None:
        return 0, num_classes
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError(
            "linear_distillation_loss(group=...) needs an initialised torch.distributed process "
            "group (dist.init_process_group, or launch with torchrun)"
        )
    sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(dist.get_world_size(group))]
    dist.all_gather(sizes, torch.tensor([num_classes], dtype=torch.int64), group=group)
    rank = dist.get_rank(group)
    return int(sum(int(size) for size in sizes[:rank])), int(sum(int(size) for size in sizes))


def linear_distillation_loss(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    teacher: Any,
    *,
    loss: Divergence = "kl",
    beta: float = 0.5,
    temperature: float = 1.0,
    temperature_scale: bool = True,
    target: torch.Tensor | None = None,
    hard_weight: float = 0.0,
    ignore_index: int = -100,
    token_weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    reduction: v.Reduction = "mean",
    normalizer: float | torch.Tensor | None = None,
    chunk_size: int | Literal["auto"] = "auto",
    group: Any = None,
) -> torch.Tensor:
    r"""Distillation loss of a linear layer's logits against a teacher, without the ``N × V`` logits.

    .. math::
        s_i = \log\operatorname{softmax}\!\big((W h_i + b)/T\big), \qquad
        q_i = \log\operatorname{softmax}(z^t_i / T), \\
        \ell_i = t_i\,\big((1-\eta)\,\kappa\,D(p^t_i, p^s_i) + \eta\,\mathrm{CE}(W h_i + b,\ y_i)\big),

    with :math:`D` = ``'kl'`` :math:`\sum p^t (q - s)` (KL(teacher ‖ student)), ``'reverse_kl'``
    :math:`\sum p^s (s - q)`, ``'jsd'`` Liger-Kernel's generalised JSD
    :math:`\beta\,\mathrm{KL}(p^t\|M) + (1-\beta)\,\mathrm{KL}(p^s\|M)`,
    :math:`M = \beta p^t + (1-\beta) p^s` (``beta`` 0 and 1 are the two KLs), or ``'tvd'``
    :math:`\tfrac12 \sum |p^t - p^s|`; :math:`\kappa = T^2` when ``temperature_scale`` (Hinton et
    al., so the soft gradients keep their size as :math:`T` grows), else 1; :math:`\eta` =
    ``hard_weight``. The student's logits are made chunk by chunk and never held whole.

    Args:
      hidden: the student's last hidden states ``[..., D]``.
      weight: the student's output layer ``[V, D]`` (``[V_rank, D]`` with ``group``).
      teacher: teacher logits ``[..., V]``; or ``(teacher_hidden [..., D_t], teacher_weight
        [V, D_t][, teacher_bias [V]])``, whose logits are made chunk by chunk too; or a top-k
        teacher ``(indices int [..., k], logprobs [..., k])`` (told apart by the integer dtype of
        its first element; renormalised over its k entries, distinct indices, global with
        ``group``). The teacher gets no gradient.
      loss: 'kl', 'reverse_kl', 'jsd' or 'tvd'.
      beta: the JSD's mixture weight of the teacher, in [0, 1].
      temperature: :math:`T > 0`, divides both models' logits in the soft term.
      temperature_scale: multiply the soft term by :math:`T^2`.
      target: class indices ``[...]``; tokens equal to ``ignore_index`` are not counted (loss 0,
        no gradient). Required when ``hard_weight > 0``.
      hard_weight: weight of the cross-entropy with ``target`` (at temperature 1), in [0, 1].
      token_weight: a weight per token ``[...]`` multiplying its loss.
      bias: the student's output bias ``[V]``.
      reduction: 'mean' (divided by the sum of the counted tokens' weights), 'sum' or 'none'
        (``hidden.shape[:-1]``).
      normalizer: with 'mean', divide by this positive number instead.
      chunk_size: tokens per chunk, or 'auto': the linear engine's policy (all chunk buffers in
        10% of the gradients' bytes, within its clamps), counting six ``chunk × V`` arrays; at
        least 64 rows.
      group: a torch.distributed process group: ``weight``, ``bias`` and the teacher's logits
        (or weight and bias) sharded by vocabulary rows in rank order.

    Returns:
      The loss, float32 (float64 for float64 inputs): a scalar, or ``hidden.shape[:-1]``.

    NOTE: unlike ``F.kl_div(input, target)``, the student comes first and both are logits (no
    log-softmax to apply), 'mean' divides by the number of tokens (PyTorch's 'batchmean'; its
    'mean' divides by ``N·V``), and the soft term carries :math:`T^2` by default. Liger-Kernel's
    fused distillation losses have no :math:`T^2` (``temperature_scale=False`` matches them).

    Example:
      >>> import torch
      >>> import crossent.torch as ct
      >>> hidden, weight = torch.eye(2), torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
      >>> teacher = hidden @ weight.T
      >>> float(ct.linear_distillation_loss(hidden, weight, teacher))
      0.0
      >>> round(float(ct.linear_distillation_loss(hidden, weight, torch.zeros(2, 3))), 4)
      0.1195
    """
    v.check_reduction(reduction)
    if loss not in _DIVERGENCES:
        raise ValueError(f"loss must be one of {', '.join(map(repr, _DIVERGENCES))}, got {loss!r}")
    if not isinstance(hidden, torch.Tensor) or not isinstance(weight, torch.Tensor):
        raise TypeError("hidden and weight must be torch tensors")
    if hidden.dtype not in _FLOAT_DTYPES or weight.dtype != hidden.dtype:
        raise TypeError(
            f"hidden and weight must share one floating dtype (float32, float64, bfloat16, float16), "
            f"got {hidden.dtype} and {weight.dtype}"
        )
    if hidden.ndim < 1 or weight.ndim != 2 or weight.shape[1] != hidden.shape[-1]:
        raise ValueError(
            f"weight must be [V, D] with D = hidden.shape[-1] = {hidden.shape[-1] if hidden.ndim else '?'}, "
            f"got weight shape {tuple(weight.shape)}"
        )
    beta = float(beta)
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    temperature = float(temperature)
    if not (temperature > 0.0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature}")
    hard_weight = float(hard_weight)
    if not 0.0 <= hard_weight <= 1.0:
        raise ValueError(f"hard_weight must be in [0, 1], got {hard_weight}")
    if hard_weight > 0.0 and target is None:
        raise ValueError(f"hard_weight={hard_weight} needs target= (the class of each token)")
    if normalizer is not None and reduction != "mean":
        raise ValueError(
            f"normalizer= replaces the divisor of reduction='mean'; with reduction={reduction!r} "
            "drop normalizer or use reduction='mean'"
        )
    lead_shape = tuple(hidden.shape[:-1])
    num_tokens = math.prod(lead_shape)
    num_classes, hidden_size = weight.shape
    if bias is not None and tuple(bias.shape) != (num_classes,):
        raise ValueError(f"bias must have shape ({num_classes},), got {tuple(bias.shape)}")
    vocab_start, total_classes = _vocab_start(num_classes, group)
    teacher_ = _teacher(teacher, lead_shape, num_classes, hidden_size, group, vocab_start, loss)
    compute = torch.float64 if hidden.dtype == torch.float64 else torch.float32
    weights = torch.ones(num_tokens, dtype=compute, device=hidden.device)
    if token_weight is not None:
        if tuple(token_weight.shape) != lead_shape:
            raise ValueError(
                f"token_weight must have shape hidden.shape[:-1] = {lead_shape}, "
                f"got {tuple(token_weight.shape)}"
            )
        weights = token_weight.detach().reshape(num_tokens).to(compute)
    flat_target = None
    if target is not None:
        if tuple(target.shape) != lead_shape or target.is_floating_point():
            raise ValueError(
                f"target must be integer class indices of shape {lead_shape}, got "
                f"{target.dtype} {tuple(target.shape)}"
            )
        flat_target = target.reshape(num_tokens).long()
        counted = flat_target != ignore_index
        weights = torch.where(counted, weights, torch.zeros_like(weights))
        if hard_weight > 0.0:
            bad = counted & ((flat_target < 0) | (flat_target >= total_classes))
            if bool(bad.any()):
                raise v.class_index_error(
                    int(flat_target[bad][0]),
                    total_classes,
                    f"the weight has {total_classes} classes",
                    ignore_index,
                )
    if chunk_size == "auto":
        chunk_rows = _auto_chunk_rows(
            max(num_tokens, 1),
            num_classes,
            hidden_size,
            hidden.dtype,
            teacher_.kind == "linear" and hard_weight < 1.0,
            _scratch_count(loss, beta, hard_weight < 1.0, hard_weight > 0.0),
            group is not None,
        )
    elif isinstance(chunk_size, int) and not isinstance(chunk_size, bool) and chunk_size > 0:
        chunk_rows = chunk_size
    else:
        raise ValueError(f"chunk_size must be a positive int or 'auto', got {chunk_size!r}")
    problem = _Problem(
        hidden=hidden.detach().reshape(num_tokens, hidden_size),
        weight=weight.detach(),
        bias=None if bias is None else bias.detach(),
        teacher=teacher_,
        target=flat_target,
        token_weight=weights,
        loss=loss,
        beta=beta,
        temperature=temperature,
        soft_scale=temperature**2 if temperature_scale else 1.0,
        hard_weight=hard_weight,
        chunk_rows=chunk_rows,
        combine=Combine(group),
        vocab_start=vocab_start,
    )
    # tokens of weight 0 (ignored ones included) are dropped before the projection
    rows = torch.nonzero(weights != 0).flatten()
    if reduction == "sum":
        inverse = torch.ones((), dtype=compute, device=hidden.device)
    elif reduction == "mean":
        divisor = weights.sum() if normalizer is None else torch.as_tensor(normalizer, dtype=compute)
        if normalizer is not None and not bool(divisor > 0):
            raise ValueError(f"normalizer must be > 0, got {float(divisor)}")
        # nothing counted: loss 0 and zero gradients, not 0/0
        inverse = torch.where(divisor != 0, 1.0 / torch.where(divisor != 0, divisor, 1.0), 0.0)
    else:
        inverse = torch.ones((), dtype=compute, device=hidden.device)
    want = (hidden.requires_grad, weight.requires_grad, bias is not None and bias.requires_grad)
    out = _DistillationFunction.apply(
        hidden.reshape(num_tokens, hidden_size), weight, bias, problem, rows, reduction, inverse, want
    )
    return out.reshape(lead_shape) if reduction == "none" else out


class LinearDistillationLoss(torch.nn.Module):
    """Module form of :func:`linear_distillation_loss`: settings checked once, in ``__init__``.

    Example:
      >>> import torch
      >>> import crossent.torch as ct
      >>> criterion = ct.LinearDistillationLoss(loss="tvd")
      >>> float(criterion(torch.eye(2), torch.eye(2), torch.eye(2)))
      0.0
    """

    def __init__(
        self,
        *,
        loss: Divergence = "kl",
        beta: float = 0.5,
        temperature: float = 1.0,
        temperature_scale: bool = True,
        hard_weight: float = 0.0,
        ignore_index: int = -100,
        reduction: v.Reduction = "mean",
        chunk_size: int | Literal["auto"] = "auto",
        group: Any = None,
    ) -> None:
        super().__init__()
        v.check_reduction(reduction)
        if loss not in _DIVERGENCES:
            raise ValueError(f"loss must be one of {', '.join(map(repr, _DIVERGENCES))}, got {loss!r}")
        if not 0.0 <= float(beta) <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {beta}")
        if not float(temperature) > 0.0:
            raise ValueError(f"temperature must be a finite number > 0, got {temperature}")
        if not 0.0 <= float(hard_weight) <= 1.0:
            raise ValueError(f"hard_weight must be in [0, 1], got {hard_weight}")
        self.loss, self.beta, self.temperature = loss, float(beta), float(temperature)
        self.temperature_scale, self.hard_weight = temperature_scale, float(hard_weight)
        self.ignore_index, self.reduction, self.chunk_size, self.group = (
            ignore_index,
            reduction,
            chunk_size,
            group,
        )

    def forward(
        self,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        teacher: Any,
        target: torch.Tensor | None = None,
        *,
        bias: torch.Tensor | None = None,
        token_weight: torch.Tensor | None = None,
        normalizer: float | torch.Tensor | None = None,
    ) -> torch.Tensor:
        return linear_distillation_loss(
            hidden,
            weight,
            teacher,
            loss=self.loss,
            beta=self.beta,
            temperature=self.temperature,
            temperature_scale=self.temperature_scale,
            target=target,
            hard_weight=self.hard_weight,
            ignore_index=self.ignore_index,
            token_weight=token_weight,
            bias=bias,
            reduction=self.reduction,
            normalizer=normalizer,
            chunk_size=self.chunk_size,
            group=self.group,
        )

    def extra_repr(self) -> str:
        return (
            f"loss={self.loss!r}, beta={self.beta}, temperature={self.temperature}, "
            f"temperature_scale={self.temperature_scale}, hard_weight={self.hard_weight}, "
            f"reduction={self.reduction!r}"
        )
