r"""Linear cross-entropy for large vocabularies: ``cross_entropy(hidden @ weight.T + bias, target)``
without ever holding the ``N × V`` logits.

Derivation (the per-row maths is :func:`crossent.losses._cross_entropy`'s coefficient form)
----------------------------------------------------------------------------------------
For token :math:`i` with logits :math:`z_i = \operatorname{cap}(W h_i + b)` (``cap`` is the
Gemma 2 soft cap :math:`c \tanh(x / c)`, or the identity), the loss of the core is

.. math:: \ell_i = -\sum_c a_{ic} \log p_{ic} = A_i\, \mathrm{lse}_i - \sum_c a_{ic} z_{ic},
          \qquad A_i = \sum_c a_{ic},

with the coefficient row :math:`a_i = (1-\varepsilon)\, w_{y_i} e_{y_i} + \tfrac{\varepsilon}{V} w`
(zero for an ignored token) and :math:`p_i = \operatorname{softmax}(z_i)`. The PaLM z-loss adds
:math:`\lambda\, \mathrm{lse}_i^2`. With :math:`u_i` and :math:`v_i` the upstream gradients of
the two terms (1/divisor and 1/count for 'mean', 1 for 'sum', ``grad_output[i]`` for 'none'):

.. math:: g_{ic} = \frac{\partial L}{\partial z_{ic}}
        = p_{ic}\,\big(u_i A_i + 2 \lambda v_i\, \mathrm{lse}_i\big) - u_i a_{ic},
        \qquad \frac{\partial L}{\partial x_{ic}} = g_{ic}\,\big(1 - \tanh^2(x_{ic}/c)\big),

and the gradients of the linear layer are :math:`\partial h_i = \sum_c g_{ic} W_c`,
:math:`\partial W = g^\top H`, :math:`\partial b = \sum_i g_i`. Every term needs only one row of
logits at a time, so the tokens are processed in chunks of ``chunk_size`` rows: a chunk's
logits are computed, reduced to its loss and lse, turned into ``g`` in place, pushed into the
three gradients, and dropped.

Passes
------
- 'mean' and 'sum' (float32/float64): one pass. The loss is a scalar, so the gradients are
  computed in the forward pass (upstream gradient 1) and backward only scales them by
  ``grad_output``; ``∂W`` accumulates chunk by chunk in place in its own output buffer.
  Matrix work: 3·N·D·V multiply-adds, as for the plain composition.
- bfloat16/float16: ``∂W`` summed over chunks in the 16-bit dtype would round once per chunk,
  and a float32 accumulator would cost 2× the gradient of ``W``. Instead a second pass over
  vocabulary blocks recomputes the block's logits for all tokens (with the first pass's lse)
  and computes ``∂W[block] = g[:, block]ᵀ H`` in one matrix product (float32 accumulation
  inside the product, rounded once). Matrix work: 4·N·D·V. On an x86 CPU without AVX-512,
  where PyTorch's 16-bit matrix kernels are many times slower than float32, each 16-bit
  product is computed from float32 tiles of its operands (:func:`_mm16`): the same rounding
  once, at most 3 MiB of tiles.
- 'none': the upstream gradient is per token, so the forward pass computes losses only and
  backward recomputes the chunks (one more N·D·V).
- Higher order, ``torch.func``, ``torch.compile``: :func:`_differentiable`, the same loss from
  differentiable torch ops chunk by chunk (autograd keeps the N × V logits).

Memory above the inputs: the gradients themselves (``N·D + V·D`` elements of the input dtype,
plus ``V`` for the bias), the chunk buffers (``chunk_size × V`` float32 values, twice that with
a soft cap, plus as many 16-bit values for 16-bit inputs; the second pass reuses them), and a
few length-N vectors. ``chunk_size="auto"`` sizes all the chunk buffers together at 10% of the
gradients' bytes (at least 8 rows and 4 MiB, at most 64 MiB): :func:`_auto_chunk_rows`.
"""

from __future__ import annotations

import dataclasses
import math
import platform
from dataclasses import dataclass
from typing import Any, Literal

import torch

from .. import _linear_spec as spec
from .. import _validate as v
from .._linear_spec import LinearCrossEntropyOutput
from .._linear_spec import LinearOptions as _Options
from .._linear_spec import check_options as _check_options
from ._cross_entropy import _in_transform
from ._group import _LOCAL, Combine, agree_on_shards, autograd_state, check_group, compute_dtype

__all__ = [
    "linear_cross_entropy", "count_targets", "LinearCrossEntropyLoss", "LinearCrossEntropyOutput",
]

# chunk_size='auto': every chunk-sized buffer together (float32 logits, the 16-bit product and
# its reuse for g, the soft cap's slope) takes at most 10% of the gradients' bytes, leaving 5
# points of the 1.15× memory target for what does not scale with the chunk (per-token vectors,
# the BLAS library's packing workspace); see _auto_chunk_rows
_AUTO_BUDGET_FRACTION = 0.10
_AUTO_BUDGET_MIN = 4 * 2**20  # below 40 MB of gradients, 4 MiB of buffers (speed over 10%)
_AUTO_BUDGET_MAX = 64 * 2**20
_MIN_AUTO_ROWS = 8  # the budget wins down to 8 rows; below, a row of logits alone is too big
# 16-bit products on a CPU without native 16-bit matrix kernels (see _native_16bit): float32
# tiles of at most this many elements each (1 MiB), three at a time
_WIDE_TILE = 1 << 18


@dataclass
class _Tokens:
    """Per-call token terms that are tensors (so not in the hashable :class:`_Options`)."""

    weight: torch.Tensor | None = None  # [N] token weights t_i (not differentiated)
    normalizer: torch.Tensor | float | None = None  # replaces both 'mean' divisors
    drop: bool = True  # drop the tokens that cannot count (not with return_lse)
    stats: _Stats | None = None  # the statistics of the call, set by the forward pass


@dataclass
class _Stats:
    """Per-token statistics, written chunk by chunk by :func:`_run` (``return_stats``)."""

    entropy: torch.Tensor  # [N] compute dtype
    target_logit: torch.Tensor  # [N] compute dtype (0 where ignored)
    predicted: torch.Tensor  # [N] int64


_NO_TOKENS = _Tokens()


# ==================================================================================
# Checks: the options and shapes are those of every linear engine (crossent._linear_spec)
# ==================================================================================


def _check_tensors(
    hidden: object,
    weight: object,
    target: object,
    bias: object,
    class_weight: object,
    ignore_index: int,
    check_range: bool = True,
    token_weight: object = None,
) -> None:
    for name, value in (("hidden", hidden), ("weight", weight), ("target", target)):
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    for name, value in (("bias", bias), ("class_weight", class_weight), ("token_weight", token_weight)):
        if value is not None and not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor or None, got {type(value).__name__}")
    spec.check_inputs(hidden, weight, target, bias, class_weight, token_weight, spec.TORCH,
                      sharded=not check_range)
    assert isinstance(weight, torch.Tensor) and isinstance(target, torch.Tensor)  # for mypy
    tensors = [t for t in (hidden, weight, target, bias, class_weight, token_weight) if t is not None]
    devices = {t.device for t in tensors if isinstance(t, torch.Tensor)}
    if len(devices) > 1:
        raise ValueError(f"all tensors must be on one device, got {sorted(map(str, devices))}")
    if not check_range:  # a shard of the vocabulary: the group checks the whole range
        return
    if torch.compiler.is_compiling() or _in_transform(target):
        return  # no data-dependent check inside a trace or vmap: the gather fails on a bad index
    num_classes = int(weight.shape[0])
    bad = ((target < 0) | (target >= num_classes)) & (target != ignore_index)
    if bool(bad.any()):
        raise spec.class_index_error(int(target[bad].reshape(-1)[0]), num_classes, ignore_index)


# ==================================================================================
# Per-row terms (length-N vectors: the sparse coefficient rows of the core)
# ==================================================================================


@dataclass
class _Rows:
    """The coefficient row :math:`a_i = (1-ε) w_{y_i} e_{y_i} + (ε/V) w` of every token, kept sparse."""

    target: torch.Tensor  # [N] int64 column of the target in this shard; 0 when not owned
    counted: torch.Tensor  # [N] compute dtype, 1 where the token enters the loss
    hit: torch.Tensor  # [N] (1-ε) w_y: coefficient of the target class (0 when ignored)
    owned_hit: torch.Tensor  # [N] hit where this shard holds the target class, else 0
    owned: torch.Tensor  # [N] bool: counted, and this shard holds the target class
    smooth: torch.Tensor  # [N] (ε/V)·counted: the row's multiplier of the class-weight vector w
    total_mass: torch.Tensor  # [N] A_i = Σ_c a_ic = (1-ε) w_y + (ε/V)·counted·Σ w
    class_weight: torch.Tensor | None  # [V] compute dtype (this shard's entries)
    weight_sum: torch.Tensor | float  # Σ_c w_c over the whole vocabulary
    divisor: torch.Tensor  # Σ_i t_i w_{y_i} over counted tokens ('mean' of the cross-entropy)
    count: torch.Tensor  # Σ_i t_i over counted tokens ('mean' of the z-loss)
    token: torch.Tensor | None = None  # [N] token weights t_i (None: all 1)
    normalizer: torch.Tensor | None = None  # the user's divisor of 'mean', replacing both


def _rows(
    target: torch.Tensor,
    class_weight: torch.Tensor | None,
    options: _Options,
    num_classes: int,
    dtype: torch.dtype,
    combine: Combine | None = None,
    token_weight: torch.Tensor | None = None,
    normalizer: torch.Tensor | float | None = None,
) -> _Rows:
    combine = combine or _LOCAL
    counted_mask = target != options.ignore_index
    local = target.long() - combine.vocab_start
    owned_mask = counted_mask & (local >= 0) & (local < num_classes)
    safe_target = torch.where(owned_mask, local, torch.zeros_like(local))
    counted = counted_mask.to(dtype)
    owned = owned_mask.to(dtype)
    total_classes = combine.num_classes or num_classes
    # (not detached: the differentiable path differentiates w.r.t. the class weights)
    weight = None if class_weight is None else class_weight.to(dtype)
    weight_sum: torch.Tensor | float
    if weight is None:
        target_weight, weight_sum = counted, float(total_classes)
    else:  # w_y from the shard that holds y; Σ w over every shard
        # (an empty shard's zeros still depend on w: every rank's graph has the same collectives)
        picked = weight[safe_target] * owned if num_classes else weight.sum() * owned
        target_weight = combine.sum(picked)
        weight_sum = combine.sum(weight.sum())
    eps = options.label_smoothing
    smooth = counted * (eps / total_classes)
    hit = (1.0 - eps) * target_weight
    token = None if token_weight is None else token_weight.detach().to(dtype)
    return _Rows(
        target=safe_target,
        counted=counted,
        hit=hit,
        owned_hit=hit if combine.group is None else hit * owned,
        owned=owned_mask,
        smooth=smooth,
        total_mass=hit + smooth * weight_sum,
        class_weight=weight,
        weight_sum=weight_sum,
        # PyTorch: Σ w[y_i] over counted i, smoothing or not; token weights weigh both
        divisor=(target_weight if token is None else target_weight * token).sum(),
        count=(counted if token is None else counted * token).sum(),
        token=token,
        normalizer=None if normalizer is None else torch.as_tensor(
            normalizer, dtype=dtype, device=target.device
        ).detach(),
    )


def _safe_inverse(value: torch.Tensor) -> torch.Tensor:
    """1/value, and 0 where value is 0: a mean over nothing counted is 0 (crossent's rule)."""
    return torch.where(value == 0, torch.zeros_like(value), 1.0 / torch.where(value == 0, 1.0, value))


# ==================================================================================
# Chunk kernels
# ==================================================================================


@dataclass
class _Problem:
    """Inputs of one call, 2-D, with the settings and the per-row terms."""

    hidden: torch.Tensor  # [N, D]
    weight: torch.Tensor  # [V, D]
    bias: torch.Tensor | None  # [V]
    rows: _Rows
    options: _Options
    compute_dtype: torch.dtype
    combine: Combine = _LOCAL
    index: torch.Tensor | None = None  # [n] the tokens computed (the others are dropped)
    stats: _Stats | None = None

    @property
    def num_tokens(self) -> int:
        """Tokens computed: the kept ones when tokens are dropped."""
        return int((self.hidden if self.index is None else self.index).shape[0])

    def hidden_rows(self, start: int, stop: int) -> torch.Tensor:
        """Hidden states of the computed tokens ``start:stop`` (a copy when tokens are dropped)."""
        if self.index is None:
            return self.hidden[start:stop]
        return self.hidden.index_select(0, self.index[start:stop])

    def compact(self, per_token: torch.Tensor) -> torch.Tensor:
        """A per-token vector of all tokens → of the computed ones."""
        return per_token if self.index is None or per_token.ndim == 0 else per_token[self.index]

    def full(self, per_token: torch.Tensor) -> torch.Tensor:
        """A per-token vector of the computed tokens → of all tokens (0 for dropped ones)."""
        if self.index is None:
            return per_token
        zeros = per_token.new_zeros(int(self.hidden.shape[0]))
        return zeros.index_copy(0, self.index, per_token)  # differentiable: not in place

    @property
    def num_classes(self) -> int:
        return int(self.weight.shape[0])

    @property
    def low_precision(self) -> bool:
        return self.hidden.dtype in (torch.bfloat16, torch.float16)

    def chunk_rows(self) -> int:
        """Tokens per chunk: the user's ``chunk_size``, or :func:`_auto_chunk_rows`."""
        if self.options.chunk_size is not None:
            return max(1, min(self.options.chunk_size, self.num_tokens))
        return _auto_chunk_rows(
            self.num_tokens, max(1, self.combine.widest or self.num_classes),
            int(self.hidden.shape[1]), self.hidden.dtype, self.options.softcap is not None,
        )

    def vocab_block(self) -> int:
        """Classes per block of the second (16-bit) pass: the block's ``N × block`` logits fit in
        the token chunk's buffers (they reuse them)."""
        elements = self.chunk_rows() * self.num_classes
        return max(1, min(self.num_classes, elements // max(1, self.num_tokens)))



def _bytes_per_logit(dtype: torch.dtype, softcap: bool) -> int:
    """Bytes of chunk buffer per logit: what :func:`_workspace` allocates, per element."""
    compute = 8 if dtype == torch.float64 else 4  # the logits, softmax and g, in place
    size = compute * (2 if softcap else 1)  # the cap's slope, kept beside the logits
    if dtype in (torch.bfloat16, torch.float16):
        size += 2  # the 16-bit product, then g rounded for the product g W (one buffer)
    return size


def _auto_chunk_rows(
    num_tokens: int, num_classes: int, hidden_size: int, dtype: torch.dtype, softcap: bool
) -> int:
    """``chunk_size='auto'``: the most tokens whose buffers fit 10% of the gradients' bytes.

    The gradients (of ``hidden`` and ``weight``) are ``(N + V)·D`` elements of ``dtype``; the
    buffers are ``rows × V × _bytes_per_logit`` (clamped to [4 MiB, 64 MiB]), at least
    ``_MIN_AUTO_ROWS`` rows and at most N. The second pass of 16-bit inputs reuses the same
    buffers (:meth:`_Problem.vocab_block`), so it fits too.
    """
    grad_bytes = (num_tokens + num_classes) * hidden_size * (torch.finfo(dtype).bits // 8)
    budget = min(max(_AUTO_BUDGET_FRACTION * grad_bytes, _AUTO_BUDGET_MIN), _AUTO_BUDGET_MAX)
    rows = max(_MIN_AUTO_ROWS, int(budget // (num_classes * _bytes_per_logit(dtype, softcap))))
    return max(1, min(rows, num_tokens))


@dataclass
class _Workspace:
    """The chunk buffers, allocated once per call and reused by every chunk and block.

    ``logits``: flat float32 (float64) buffer of ``chunk × V`` elements, viewed as
    ``[rows, V]`` by the token chunks and as ``[N, block]`` by the vocabulary blocks.
    ``low``: the same number of 16-bit elements (16-bit inputs only): the product before it
    is widened, then ``g`` rounded for ``g W`` / ``gᵀ H``. ``slope``: the soft cap's
    derivative (with a soft cap, when a gradient is wanted).
    """

    logits: torch.Tensor
    low: torch.Tensor | None
    slope: torch.Tensor | None

    def view(self, rows: int, cols: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        size = rows * cols

        def shaped(buffer: torch.Tensor | None) -> torch.Tensor | None:
            return None if buffer is None else buffer[:size].view(rows, cols)

        logits = shaped(self.logits)
        assert logits is not None
        return logits, shaped(self.low), shaped(self.slope)


def _workspace(problem: _Problem, want_slope: bool) -> _Workspace:
    """Allocate the buffers of :class:`_Workspace` for ``problem.chunk_rows()`` tokens."""
    # the second pass of 16-bit inputs views them as [N, block] with block >= 1
    elements = max(problem.chunk_rows() * problem.num_classes, problem.num_tokens * problem.vocab_block())
    device = problem.hidden.device
    dtype = problem.compute_dtype
    return _Workspace(
        logits=torch.empty(elements, dtype=dtype, device=device),
        low=(
            torch.empty(elements, dtype=problem.hidden.dtype, device=device)
            if problem.low_precision else None
        ),
        slope=(
            torch.empty(elements, dtype=dtype, device=device)
            if want_slope and problem.options.softcap is not None else None
        ),
    )


def _native_16bit(device: torch.device) -> bool:
    """Whether ``torch.mm`` multiplies 16-bit matrices at float32 speed or better on ``device``.

    Not on an x86 CPU without AVX-512: there PyTorch's bfloat16/float16 kernels ran at
    0.2–8 GFLOP/s against 20–45 for float32 (2 cores, AVX2, torch 2.13; the product
    ``g W`` of a ``[chunk, V]`` by a ``[V, D]`` matrix was the slowest).
    """
    if device.type != "cpu":
        return True
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return True
    return bool(torch.backends.cpu.get_cpu_capability() == "AVX512")


def _mm16(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out = a @ b`` for matrices ``a [m, k]``, ``b [k, n]``, ``out [m, n]`` of one dtype.

    16-bit inputs accumulate in float32 and ``out`` is rounded once, as ``torch.mm`` of 16-bit
    matrices does. Where that kernel is slow (:func:`_native_16bit`) the product is computed
    from float32 copies of tiles of ``a`` and ``b`` (the products of 16-bit numbers are exact
    in float32), each tile at most ``_WIDE_TILE`` elements: the sum over ``k`` in one product
    per tile where a whole row of ``k`` fits, else accumulated over blocks of ``k`` in a
    float32 tile of ``out``. The same numbers but for the order of the float32 additions.
    """
    if a.dtype not in (torch.bfloat16, torch.float16) or _native_16bit(a.device):
        return torch.mm(a, b, out=out)
    m, k = a.shape
    n = b.shape[1]
    if _WIDE_TILE // max(1, k) >= 128:  # k whole: tiles [mb, k] @ [k, nb] -> [mb, nb]
        mb = min(max(1, m), _WIDE_TILE // max(1, k))
        nb = min(_WIDE_TILE // max(1, k), _WIDE_TILE // mb)
        for i in range(0, m, mb):
            left = a[i:i + mb].float()
            for j in range(0, n, nb):
                out[i:i + mb, j:j + nb] = left @ b[:, j:j + nb].float()
        return out
    nb = min(n, _WIDE_TILE // 128)  # k (> 0) in blocks, summed in a float32 tile [mb, nb]
    mb = max(1, min(m, _WIDE_TILE // max(1, nb)))
    kb = max(1, _WIDE_TILE // max(mb, nb))
    for i in range(0, m, mb):
        for j in range(0, n, nb):
            total = a[i:i + mb, :kb].float() @ b[:kb, j:j + nb].float()
            for h in range(kb, k, kb):
                total.addmm_(a[i:i + mb, h:h + kb].float(), b[h:h + kb, j:j + nb].float())
            out[i:i + mb, j:j + nb] = total
    return out


def _logits(
    problem: _Problem,
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    out: torch.Tensor,
    low: torch.Tensor | None,
    slope: torch.Tensor | None,
    shift: torch.Tensor | None = None,
) -> torch.Tensor | None:
    """``out = cap(hidden @ weight.T + bias) / T - shift`` in the compute dtype; ``cap'`` into
    ``slope`` (the 1/T of the derivative is in the upstream gradients, see :func:`_run`).

    ``low`` (16-bit inputs) receives the 16-bit product first; ``shift`` is a column ``[rows, 1]``
    or None. Returns ``slope`` filled with the cap's derivative, or None (no soft cap, or
    ``slope`` None: no gradient wanted).
    """
    softcap, temperature = problem.options.softcap, problem.options.temperature
    if problem.low_precision:
        # the 16-bit product accumulates in float32 inside the kernel and is rounded once
        assert low is not None
        _mm16(hidden, weight.T, low)
        if bias is None and softcap is None and temperature == 1.0 and shift is not None:
            # widened exactly and shifted in one pass: the same numbers as copy_, then sub_
            torch.sub(low, shift, out=out)
            return None
        out.copy_(low)
    else:
        torch.mm(hidden, weight.T, out=out)
    if bias is not None:
        out.add_(bias)
    if softcap is None:
        if temperature != 1.0:
            out.div_(temperature)
        if shift is not None:
            out.sub_(shift)
        return None
    out.div_(softcap).tanh_()  # t = tanh(x / c)
    if slope is not None:
        torch.square(out, out=slope).neg_().add_(1.0)  # d(c·tanh(x/c))/dx = 1 - t², t ≤ 1
    out.mul_(softcap / temperature)  # z = c·t / T
    if shift is not None:
        out.sub_(shift)
    return slope


def _finish_grad(
    probs_scaled: torch.Tensor,
    hit: torch.Tensor,
    target_local: torch.Tensor,
    smooth: torch.Tensor | None,
    class_weight: torch.Tensor | None,
    cap_slope: torch.Tensor | None,
) -> torch.Tensor:
    """Turn ``p·(u A + 2λ v lse)`` into ``∂L/∂x``: subtract ``u a`` and apply the cap's slope."""
    grad = probs_scaled
    if grad.shape[1] == 0:  # an empty shard of a vocabulary-parallel group
        return grad
    # - u (1-ε) w_y at the target class (hit is 0 for ignored tokens and foreign blocks)
    grad.scatter_add_(1, target_local.unsqueeze(1), hit.neg().unsqueeze(1).to(grad.dtype))
    if smooth is not None:
        # - u (ε/V) w_c on every class: a rank-one update
        spread = class_weight if class_weight is not None else torch.ones(
            grad.shape[1], dtype=grad.dtype, device=grad.device
        )
        grad.addr_(smooth, spread, alpha=-1.0)
    if cap_slope is not None:
        grad.mul_(cap_slope)
    return grad


def _grad_into_low(
    probs: torch.Tensor,
    row_coef: torch.Tensor,
    hit: torch.Tensor,
    target_local: torch.Tensor,
    smoothing: bool,
    cap_slope: torch.Tensor | None,
    low: torch.Tensor | None,
) -> torch.Tensor | None:
    """``g = r·P - u·a`` rounded to 16 bits, written straight into ``low``, or None where that
    does not apply (not 16-bit, smoothing, a soft cap, an empty shard: :func:`_finish_grad`).

    Without smoothing and cap, ``a`` has one entry per row, so ``g`` in float32 differs from
    ``r·P`` only at the target: ``low = round(r·P)`` (computed in float32 and rounded once,
    as ``copy_`` of the float32 product would) and, at the target, ``round(r·p_y - u·a_y)`` from
    the same float32 operations as :func:`_finish_grad`'s. Bitwise the same 16-bit ``g``, with
    two passes over the buffer fewer (the float32 ``g`` is never formed; ``probs`` is kept).
    """
    if low is None or smoothing or cap_slope is not None or probs.shape[1] == 0:
        return None
    coef = row_coef.unsqueeze(1)
    torch.mul(probs, coef, out=low)
    column = target_local.unsqueeze(1)
    at_target = probs.gather(1, column).mul_(coef).add_(hit.neg().unsqueeze(1))
    return low.scatter_(1, column, at_target.to(low.dtype))


def _spread_dot(logits: torch.Tensor, class_weight: torch.Tensor | None) -> torch.Tensor:
    """Σ_c w_c z_ic per row (w = 1 without class weights): the label-smoothing term."""
    return logits.sum(dim=1) if class_weight is None else logits @ class_weight


def _combined_stats(
    logits: torch.Tensor,
    target: torch.Tensor,
    owned: torch.Tensor,
    class_weight: torch.Tensor | None,
    smoothing: bool,
    combine: Combine,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """One chunk's statistics over every shard: two collectives (MAX, then one packed SUM).

    Returns the row maximum m, the target logit z_y, Σ_c w_c z_c (smoothing only),
    log Σ_c exp(z_c - m) and 1/Σ_c exp(z_c - m); ``logits`` becomes exp(z - m) in place.
    """
    rows, width = int(logits.shape[0]), int(logits.shape[1])
    # an empty shard has no maximum, no target and no mass
    local_max = logits.amax(dim=1) if width else logits.new_full((rows,), -math.inf)
    row_max = combine.max(local_max)
    parts = [torch.zeros_like(row_max)] * (3 if smoothing else 2)
    if width > 0:
        picked = logits.gather(1, target.unsqueeze(1))[:, 0]
        parts[1] = torch.where(owned, picked, torch.zeros_like(picked))
        if smoothing:
            parts[2] = _spread_dot(logits, class_weight)
        parts[0] = logits.sub_(row_max.unsqueeze(1)).exp_().sum(dim=1)  # exp(z - m) <= 1
    totals = combine.sum(torch.stack(parts))
    sum_exp = totals[0]
    return (row_max, totals[1], totals[2] if smoothing else None, torch.log(sum_exp),
            1.0 / sum_exp)


@dataclass
class _Grads:
    hidden: torch.Tensor | None
    weight: torch.Tensor | None
    bias: torch.Tensor | None


def _run(
    problem: _Problem,
    upstream: tuple[torch.Tensor, torch.Tensor] | None,
    want: tuple[bool, bool, bool],
) -> tuple[torch.Tensor, torch.Tensor, _Grads]:
    """The chunked passes: per-token losses (cross-entropy part), lse, and the gradients.

    ``upstream`` = (u, v): per-token (or scalar, broadcast) upstream gradients of the
    cross-entropy and z-loss terms; None computes no gradient. Per-token vectors are of the
    computed tokens (``problem.index``); ``problem.stats`` is filled when given.
    """
    hidden, weight, bias, rows = problem.hidden, problem.weight, problem.bias, problem.rows
    options, dtype, combine = problem.options, problem.compute_dtype, problem.combine
    num_tokens, num_classes = problem.num_tokens, problem.num_classes
    stats, index = problem.stats, problem.index
    if upstream is not None and options.temperature != 1.0:
        # ∂z/∂x = cap'(x) / T: g is linear in (u, v), so the 1/T rides on them
        upstream = (upstream[0] / options.temperature, upstream[1] / options.temperature)
    want_hidden, want_weight, want_bias = want if upstream is not None else (False, False, False)
    # 16-bit: ∂W and ∂b come from the second pass over vocabulary blocks
    second_pass = problem.low_precision and (want_weight or want_bias)
    first_pass_weight = want_weight and not second_pass
    first_pass_bias = want_bias and not second_pass
    first_pass_grads = want_hidden or first_pass_weight or first_pass_bias

    device = hidden.device
    losses = torch.empty(num_tokens, dtype=dtype, device=device)
    lse = torch.empty(num_tokens, dtype=dtype, device=device)
    coef = torch.empty(num_tokens, dtype=dtype, device=device) if second_pass else None
    grad_hidden = None
    if want_hidden:  # dropped tokens have no gradient
        grad_hidden = torch.empty_like(hidden) if index is None else torch.zeros_like(hidden)
    grad_weight = (
        torch.zeros_like(weight) if first_pass_weight else (torch.empty_like(weight) if want_weight else None)
    )
    grad_bias_acc = torch.zeros(num_classes, dtype=dtype, device=device) if want_bias else None
    bias_compute = None if bias is None else bias.detach().to(dtype)
    class_weight = rows.class_weight
    smoothing = options.label_smoothing > 0

    chunk = problem.chunk_rows()
    # every chunk-sized buffer, allocated once; the second pass reuses them
    work = _workspace(problem, first_pass_grads or second_pass)
    for start in range(0, num_tokens, chunk):
        stop = min(start + chunk, num_tokens)
        size = stop - start
        hidden_chunk = problem.hidden_rows(start, stop)
        target_chunk = rows.target[start:stop]
        logits, low, slope = work.view(size, num_classes)
        cap_slope = _logits(
            problem, hidden_chunk, weight, bias_compute, logits, low,
            slope if first_pass_grads else None,
        )
        if combine.group is None:
            row_max, argmax = logits.max(dim=1)
            target_logit = logits.gather(1, target_chunk.unsqueeze(1))[:, 0]
            spread_dot = _spread_dot(logits, class_weight) if smoothing else None
            torch._softmax(logits, 1, False, out=logits)  # P in place: one fused, row-local kernel
            # p at the row maximum is exp(0) / Σ exp(z - m), so log Σ exp(z - m) = -log p_max:
            # accurate because p_max ≥ 1/V never underflows
            log_sum_exp = torch.log(logits.gather(1, argmax.unsqueeze(1))[:, 0]).neg_()
            inverse_sum = None
            if stats is not None:  # -Σ p log p from P in the buffer
                _write_stats(stats, start, torch.special.entr(logits).sum(dim=1), target_logit, argmax)
        else:
            if stats is not None:  # this shard's maximum and argmax, before the buffer changes
                local_max, local_arg = (
                    logits.max(dim=1) if num_classes else
                    (logits.new_full((size,), -math.inf), target_chunk.new_zeros(size))
                )
            row_max, target_logit, spread_dot, log_sum_exp, inverse_sum = _combined_stats(
                logits, target_chunk, rows.owned[start:stop], class_weight,
                smoothing, combine,
            )
            if stats is not None:
                assert inverse_sum is not None
                # the buffer holds e = exp(z - m): H = log S - Σ_c e_c (z_c - m) / S
                entropy = log_sum_exp + combine.sum(torch.special.entr(logits).sum(dim=1)) * inverse_sum
                # the lowest class index at the global maximum, over every shard
                candidate = torch.where(local_max == row_max, local_arg + combine.vocab_start,
                                        torch.full_like(local_arg, 2**62))
                _write_stats(stats, start, entropy, target_logit, combine.max(candidate.neg()).neg())
        chunk_lse = row_max + log_sum_exp
        lse[start:stop] = chunk_lse
        losses[start:stop] = _row_losses(rows, slice(start, stop), row_max, target_logit, spread_dot,
                                         log_sum_exp)
        if upstream is None:
            continue
        u = upstream[0] if upstream[0].ndim == 0 else upstream[0][start:stop]
        v_scale = upstream[1] if upstream[1].ndim == 0 else upstream[1][start:stop]
        # ∂L/∂z = p (u A + 2 λ v lse) - u a  =  diag(r) P - u a
        row_coef = u * rows.total_mass[start:stop]
        if options.z_loss > 0:
            row_coef = row_coef + (2.0 * options.z_loss) * v_scale * chunk_lse * rows.counted[
                start:stop
            ]
        if coef is not None:
            coef[start:stop] = row_coef
        if not first_pass_grads:
            continue
        # g = r·P - u·a (·cap'), formed in place in the buffer: one pass, so few operations per
        # chunk (each parallel operation costs a thread hand-off on a busy machine)
        # on a group the buffer holds exp(z - m): P = exp(z - m) / S
        probs_coef = row_coef if inverse_sum is None else row_coef * inverse_sum
        hit = u * rows.owned_hit[start:stop]
        # 16-bit: ∂W and ∂b come from the second pass, so only g rounded is needed here
        rounded = _grad_into_low(logits, probs_coef, hit, target_chunk, smoothing,
                                 cap_slope, low)
        if rounded is not None:
            grad = grad_low = rounded
        else:
            grad = _finish_grad(
                logits.mul_(probs_coef.unsqueeze(1)),
                hit,
                target_chunk,
                (u * rows.smooth[start:stop]).to(dtype) if smoothing else None,
                class_weight,
                cap_slope,
            )
            if low is not None:  # g rounded to 16 bits, in the product's buffer (free again)
                grad_low = low.copy_(grad)
            else:
                grad_low = grad if grad.dtype == hidden.dtype else grad.to(hidden.dtype)
        if grad_hidden is not None and index is None:
            _mm16(grad_low, weight, grad_hidden[start:stop])  # ∂h_i = Σ_c g_ic W_c
        elif grad_hidden is not None and index is not None:  # the computed tokens' rows;
            # dropped ones stay 0
            grad_hidden.index_copy_(0, index[start:stop], _mm16(
                grad_low, weight, grad_low.new_empty(stop - start, weight.shape[1])))
        if first_pass_weight:
            assert grad_weight is not None
            grad_weight.addmm_(grad.T, hidden_chunk)  # ∂W += gᵀ H, in place in its output
        if first_pass_bias:
            assert grad_bias_acc is not None
            grad_bias_acc.add_(grad.sum(dim=0))  # ∂b += Σ_i g_i
    if grad_hidden is not None and combine.group is not None:
        # h feeds every shard (a column-parallel layer): its gradient is the sum over ranks
        grad_hidden = combine.sum(grad_hidden)
    if second_pass:
        assert coef is not None and upstream is not None
        _second_pass(problem, upstream, lse, coef, grad_weight, grad_bias_acc, work)
    del work

    grad_bias = None
    if grad_bias_acc is not None:
        assert bias is not None
        grad_bias = grad_bias_acc.to(bias.dtype)
    return losses, lse, _Grads(grad_hidden, grad_weight, grad_bias)


def _row_losses(
    rows: _Rows, part: slice, row_max: torch.Tensor, target_logit: torch.Tensor,
    spread_dot: torch.Tensor | None, log_sum_exp: torch.Tensor,
) -> torch.Tensor:
    """ℓ_i = A_i lse_i - Σ_c a_ic z_ic of the tokens ``part``, from the combined statistics."""
    # Σ_c a_ic (m_i - z_ic) = (1-ε) w_y (m - z_y) + (ε/V) Σ_c w_c (m - z_c): the part of the
    # loss beside A_i·log Σ exp(z - m), shifted by the row maximum m
    picked = rows.hit[part] * (row_max - target_logit)
    if spread_dot is not None:
        picked = picked + rows.smooth[part] * (rows.weight_sum * row_max - spread_dot)
    return rows.total_mass[part] * log_sum_exp + picked


def _write_stats(
    stats: _Stats, start: int, entropy: torch.Tensor, target_logit: torch.Tensor,
    predicted: torch.Tensor,
) -> None:
    stop = start + int(entropy.shape[0])
    stats.entropy[start:stop] = entropy
    stats.target_logit[start:stop] = target_logit
    stats.predicted[start:stop] = predicted


def _second_pass(
    problem: _Problem,
    upstream: tuple[torch.Tensor, torch.Tensor],
    lse: torch.Tensor,
    coef: torch.Tensor,
    grad_weight: torch.Tensor | None,
    grad_bias_acc: torch.Tensor | None,
    work: _Workspace,
) -> None:
    """16-bit inputs: ``∂W[block] = g[:, block]ᵀ H`` and ``∂b[block]`` per vocabulary block.

    The block's logits of all tokens are recomputed and turned into ``g`` with the first
    pass's lse, so each block of ``∂W`` is one matrix product (float32 accumulation inside it,
    rounded to the input dtype once) instead of a sum of per-chunk roundings.
    """
    rows = problem.rows
    smoothing = problem.options.label_smoothing > 0
    u = upstream[0]
    hit = u * rows.owned_hit
    smooth = (u * rows.smooth).to(problem.compute_dtype) if smoothing else None

    def block_grad(
        logits: torch.Tensor, low: torch.Tensor | None, cap_slope: torch.Tensor | None,
        start: int, stop: int,
    ) -> torch.Tensor:
        logits.exp_()  # p = exp(z - lse): the block pass shifted the logits by lse
        in_block = (rows.target >= start) & (rows.target < stop)
        local_target = torch.where(in_block, rows.target - start, torch.zeros_like(rows.target))
        block_hit = torch.where(in_block, hit, torch.zeros_like(hit))
        if grad_bias_acc is None:  # ∂b needs g in the compute dtype; ∂W alone needs it rounded
            rounded = _grad_into_low(logits, coef, block_hit, local_target, smoothing, cap_slope, low)
            if rounded is not None:
                return rounded
        # p (u A + 2 λ v lse) - u a
        return _finish_grad(
            logits.mul_(coef.unsqueeze(1)),
            block_hit,
            local_target,
            smooth,
            None if rows.class_weight is None else rows.class_weight[start:stop],
            cap_slope,
        )

    _block_pass(problem, grad_weight, grad_bias_acc, work, block_grad, shift=lse.unsqueeze(1))


def _block_pass(
    problem: _Problem,
    grad_weight: torch.Tensor | None,
    grad_bias_acc: torch.Tensor | None,
    work: _Workspace,
    block_grad: Any,
    shift: torch.Tensor | None = None,
) -> None:
    """The loop of the second pass, for any loss: per vocabulary block, the block's logits of
    all computed tokens minus ``shift`` (in ``work``), ``g = block_grad(logits, low, cap_slope,
    start, stop)`` (in place, ``[n, block]``; it may return ``low`` holding ``g`` already
    rounded to 16 bits, when no ``∂b`` is wanted), then ``∂W[block] = gᵀ H`` (one 16-bit
    product) and ``∂b[block] = Σ g``. With dropped tokens, the kept tokens' hidden states are
    gathered once (a copy of ``n × D``).
    """
    hidden, weight, bias = problem.hidden, problem.weight, problem.bias
    if problem.index is not None:
        hidden = hidden.index_select(0, problem.index)
    block = problem.vocab_block()
    bias_compute = None if bias is None else bias.detach().to(problem.compute_dtype)
    for start in range(0, problem.num_classes, block):
        stop = min(start + block, problem.num_classes)
        # the token chunks' buffers, viewed as [N, block] (N·block ≤ their size)
        logits, low, slope = work.view(problem.num_tokens, stop - start)
        cap_slope = _logits(
            problem,
            hidden,
            weight[start:stop],
            None if bias_compute is None else bias_compute[start:stop],
            logits,
            low,
            slope,
            shift=shift,
        )
        grad = block_grad(logits, low, cap_slope, start, stop)
        if grad_weight is not None:
            assert low is not None
            if grad is not low:
                low.copy_(grad)  # g rounded to 16 bits in the product's buffer; gᵀ is a view
            _mm16(low.T, hidden, grad_weight[start:stop])
        if grad_bias_acc is not None:
            assert grad is not low, "∂b is summed from g in the compute dtype"
            grad_bias_acc[start:stop] = grad.sum(dim=0)


# ==================================================================================
# The loss from per-token terms, and the differentiable path
# ==================================================================================


def _scales(rows: _Rows, options: _Options) -> tuple[torch.Tensor, torch.Tensor]:
    """The factors of the per-token cross-entropy and z-loss terms: ``t_i/D_ce`` and
    ``t_i/D_z`` for 'mean' (0 when nothing is counted; ``t_i/normalizer`` for both with a
    normalizer), ``t_i`` otherwise; scalars without token weights."""
    if options.reduction != "mean":
        ce_scale = z_scale = torch.ones((), dtype=rows.counted.dtype, device=rows.counted.device)
    elif rows.normalizer is not None:
        ce_scale = z_scale = 1.0 / rows.normalizer
    else:
        ce_scale, z_scale = _safe_inverse(rows.divisor), _safe_inverse(rows.count)
    if rows.token is None:
        return ce_scale, z_scale
    return ce_scale * rows.token, z_scale * rows.token


def _loss(losses: torch.Tensor, lse: torch.Tensor, problem: _Problem) -> torch.Tensor:
    """The call's loss from the per-token cross-entropy terms and lse (per token of all tokens
    for 'none')."""
    loss = _reduce_rows(losses, lse, problem.rows, problem.options)
    return problem.full(loss) if problem.options.reduction == "none" else loss


def _reduce_rows(losses: torch.Tensor, lse: torch.Tensor, rows: _Rows, options: _Options) -> torch.Tensor:
    """z-loss, token weights, then the reduction of the per-token terms."""
    ce_scale, z_scale = _scales(rows, options)
    terms = [(losses, ce_scale)]
    if options.z_loss > 0:  # PaLM: λ lse², counted tokens
        terms.append((options.z_loss * torch.square(lse) * rows.counted, z_scale))
    if options.reduction == "none":
        return sum((term * scale if rows.token is not None else term for term, scale in terms))  # type: ignore[return-value]
    total = [term.sum() * scale if scale.ndim == 0 else term @ scale for term, scale in terms]
    return total[0] if len(total) == 1 else total[0] + total[1]


def _differentiable(problem: _Problem) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss and lse from differentiable torch ops of the inputs: ``ℓ_i = A_i lse_i - Σ_c a_ic z_ic``.

    Used where the fused engine cannot be (``create_graph=True``, ``torch.func`` transforms,
    ``torch.compile``, class weights that require grad): autograd then differentiates it to any
    order, w.r.t. ``hidden``, ``weight``, ``bias`` and ``class_weight``. The logits are formed
    chunk by chunk with the engine's rounding (16-bit product, then the compute dtype).
    Eagerly autograd keeps every chunk for backward (``N × V`` values, as the plain
    composition); under ``torch.compile`` each chunk is checkpointed, so the compiled graph
    recomputes its logits in backward instead of saving them.
    """
    combine = problem.combine
    if combine.group is not None:  # ∂h of each rank is a partial sum: to_shards sums it
        problem = dataclasses.replace(problem, hidden=combine.to_shards(problem.hidden))
    weight, rows, options, stats = problem.weight, problem.rows, problem.options, problem.stats
    dtype = problem.compute_dtype
    losses, lses = [], []
    chunk = problem.chunk_rows()

    def chunk_terms(
        hidden_chunk: torch.Tensor, start: int, stop: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = (hidden_chunk @ weight.T).to(dtype)
        if problem.bias is not None:
            logits = logits + problem.bias.to(dtype)
        if options.softcap is not None:
            logits = options.softcap * torch.tanh(logits / options.softcap)
        if options.temperature != 1.0:
            logits = logits / options.temperature
        if combine.group is not None:
            lse, target_logit, spread_dot = _shard_terms(problem, logits, start, stop)
        else:
            lse = torch.logsumexp(logits, dim=1)
            target_logit = logits.gather(1, rows.target[start:stop, None])[:, 0]
            spread_dot = _spread_dot(logits, rows.class_weight) if options.label_smoothing > 0 else None
            if stats is not None:
                with torch.no_grad():
                    log_probs = logits - lse[:, None]
                    entropy = -(log_probs.exp() * log_probs).sum(dim=1)
                    _write_stats(stats, start, entropy, target_logit, logits.argmax(dim=1))
        picked = rows.hit[start:stop] * target_logit
        if spread_dot is not None:
            picked = picked + rows.smooth[start:stop] * spread_dot
        return rows.total_mass[start:stop] * lse - picked, lse

    for start in range(0, problem.num_tokens, chunk):
        stop = min(start + chunk, problem.num_tokens)
        if torch.compiler.is_compiling():
            # the compiled graph recomputes each chunk's logits in backward instead of saving them
            terms, lse = torch.utils.checkpoint.checkpoint(
                chunk_terms, problem.hidden_rows(start, stop), start, stop, use_reentrant=False
            )
        else:
            terms, lse = chunk_terms(problem.hidden_rows(start, stop), start, stop)
        losses.append(terms)
        lses.append(lse)
    if not losses:  # no tokens
        losses = lses = [problem.hidden.new_zeros(0, dtype=dtype)]
    lse = torch.cat(lses)
    return _loss(torch.cat(losses), lse, problem), lse.detach()


def _shard_terms(
    problem: _Problem, logits: torch.Tensor, start: int, stop: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """lse, target logit and Σ_c w_c z_c (smoothing only) of a chunk over every shard, as
    differentiable ops (:meth:`Combine.sum`): one MAX (not differentiated:
    ``lse = m + log Σ exp(z - m)`` is exact for any constant m) and one packed SUM.

    Each rank's graph is the same whatever its shard (an empty one sums over 0 columns), so
    the ranks' backward collectives meet. Fills ``problem.stats`` when asked.
    """
    combine, rows, stats = problem.combine, problem.rows, problem.stats
    rows_in_chunk, width = int(logits.shape[0]), int(logits.shape[1])
    detached = logits.detach()  # (no_grad alone leaves forward-mode tangents, torch.func.jacfwd)
    with torch.no_grad():  # an empty shard has no maximum
        local_max, local_arg = (
            detached.max(dim=1) if width else
            (logits.new_full((rows_in_chunk,), -math.inf), rows.target.new_zeros(rows_in_chunk))
        )
        row_max = combine.max(local_max)
    owned = rows.owned[start:stop]
    if width:
        picked = logits.gather(1, rows.target[start:stop, None])[:, 0]
        picked = torch.where(owned, picked, torch.zeros_like(picked))
    else:
        picked = logits.sum(dim=1)  # zeros that depend on the logits
    parts = [torch.exp(logits - row_max[:, None]).sum(dim=1), picked]
    if problem.options.label_smoothing > 0:
        parts.append(_spread_dot(logits, rows.class_weight))
    totals = combine.sum(torch.stack(parts))
    lse = row_max + torch.log(totals[0])
    if stats is not None:
        with torch.no_grad():
            # H = -Σ_c p_c log p_c over every shard; the lowest class index at the maximum
            entropy = combine.sum(
                torch.special.entr(torch.exp(detached - lse.detach()[:, None])).sum(dim=1)
            )
            candidate = torch.where(local_max == row_max, local_arg + combine.vocab_start,
                                    torch.full_like(local_arg, 2**62))
            _write_stats(stats, start, entropy, totals[1].detach(), combine.max(candidate.neg()).neg())
    return lse, totals[1], totals[2] if len(parts) > 2 else None


def _problem(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    target: torch.Tensor,
    class_weight: torch.Tensor | None,
    options: _Options,
    combine: Combine,
    tokens: _Tokens = _NO_TOKENS,
) -> _Problem:
    """The call's problem. Tokens that cannot count (``ignore_index``, token weight 0) are
    dropped (``index``: the others), unless every token is wanted (lse, stats) or traced."""
    dtype = compute_dtype(hidden.dtype)
    token_weight, index = tokens.weight, None
    if tokens.drop and not options.stats and not torch.compiler.is_compiling() and not _in_transform(target):
        keep = target != options.ignore_index
        if token_weight is not None:
            keep &= token_weight != 0
        if not bool(keep.all()):
            index = keep.nonzero()[:, 0]
            target = target[index]
            token_weight = None if token_weight is None else token_weight[index]
    rows = _rows(target, class_weight, options, int(weight.shape[0]), dtype, combine,
                 token_weight, tokens.normalizer)
    stats = None
    if options.stats:
        size, device = int(target.shape[0]), target.device
        stats = _Stats(
            torch.empty(size, dtype=dtype, device=device),
            torch.empty(size, dtype=dtype, device=device),
            torch.empty(size, dtype=torch.int64, device=device),
        )
    return _Problem(hidden, weight, bias, rows, options, dtype, combine, index, stats)


# ==================================================================================
# autograd
# ==================================================================================


class _LinearCrossEntropyFunction(torch.autograd.Function):
    """Forward computes the loss (and, for 'mean'/'sum', the gradients); backward scales them."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        target: torch.Tensor,
        class_weight: torch.Tensor | None,
        options: _Options,
        want: tuple[bool, bool, bool],
        combine: Combine,
        tokens: _Tokens,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        problem = _problem(hidden, weight, bias, target, class_weight, options, combine, tokens)
        tokens.stats = problem.stats
        precompute = options.reduction != "none" and any(want)
        losses, lse, grads = _run(
            problem, _scales(problem.rows, options) if precompute else None, want
        )
        ctx.options = options
        ctx.want = want
        ctx.combine = combine
        ctx.tokens = tokens
        # the inputs themselves (no copy): 'none' recomputes from them, create_graph=True
        # differentiates the differentiable path on them
        ctx.save_for_backward(hidden, weight, bias, target, class_weight)
        ctx.grads = None if options.reduction == "none" else grads
        ctx.mark_non_differentiable(lse)
        return _loss(losses, lse, problem), lse

    @staticmethod
    def backward(ctx: Any, grad_loss: torch.Tensor, _grad_lse: torch.Tensor) -> tuple[Any, ...]:
        options: _Options = ctx.options
        if torch.is_grad_enabled():
            # create_graph=True: the gradient as differentiable ops of the saved inputs, so
            # second derivatives exist (the engine's gradients carry no graph)
            ctx.grads = None
            hidden, weight, bias, target, class_weight = ctx.saved_tensors
            wanted = [t for t, need in zip((hidden, weight, bias), ctx.needs_input_grad[:3],
                                           strict=True) if need]
            loss, _ = _differentiable(_problem(hidden, weight, bias, target, class_weight, options,
                                               ctx.combine, ctx.tokens))
            found = iter(torch.autograd.grad(loss, wanted, grad_loss, create_graph=True))
            return *(next(found) if need else None for need in ctx.needs_input_grad[:3]), *(None,) * 6
        grads, ctx.grads = ctx.grads, None
        if grads is None:  # 'none', or a second backward (retain_graph=True): recompute
            hidden, weight, bias, target, class_weight = ctx.saved_tensors
            problem = _problem(hidden, weight, bias, target, class_weight, options, ctx.combine,
                               ctx.tokens)
            upstream = problem.compact(grad_loss.to(problem.compute_dtype))
            scales = tuple(scale * upstream for scale in _scales(problem.rows, options))
            _, _, grads = _run(problem, scales, ctx.want)  # type: ignore[arg-type]
        elif not bool(grad_loss == 1):  # scale in place: no second gradient-sized allocation
            for tensor in (grads.hidden, grads.weight, grads.bias):
                if tensor is not None:
                    tensor.mul_(grad_loss.to(tensor.dtype))
        return grads.hidden, grads.weight, grads.bias, None, None, None, None, None, None


# ==================================================================================
# Public API
# ==================================================================================


def _apply(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    bias: torch.Tensor | None,
    class_weight: torch.Tensor | None,
    options: _Options,
    return_lse: bool,
    combine: Combine,
    token_weight: torch.Tensor | None = None,
    normalizer: torch.Tensor | float | None = None,
) -> torch.Tensor | LinearCrossEntropyOutput:
    """The checked call: flatten, run the engine, restore the token shape."""
    positions = tuple(hidden.shape[:-1])
    grad_enabled = torch.is_grad_enabled()
    want = (
        grad_enabled and hidden.requires_grad,
        grad_enabled and weight.requires_grad,
        grad_enabled and bias is not None and bias.requires_grad,
    )
    hidden_2d = hidden.reshape(-1, hidden.shape[-1])
    if not hidden_2d.is_contiguous():
        hidden_2d = hidden_2d.contiguous()
    weight_c = weight if weight.is_contiguous() else weight.contiguous()
    target_1d = target.reshape(-1)
    tokens = _Tokens(
        None if token_weight is None else token_weight.reshape(-1), normalizer, drop=not return_lse
    )
    if (
        torch.compiler.is_compiling()
        or _in_transform(hidden, weight, target, bias, class_weight)
        or (class_weight is not None and class_weight.requires_grad and grad_enabled)
    ):
        # torch.compile, torch.func, gradients w.r.t. class_weight: differentiable torch ops
        problem = _problem(hidden_2d, weight_c, bias, target_1d, class_weight, options, combine, tokens)
        loss, lse = _differentiable(problem)
        tokens.stats = problem.stats
    else:
        loss, lse = _LinearCrossEntropyFunction.apply(
            hidden_2d, weight_c, bias, target_1d, class_weight, options, want, combine, tokens
        )
    if options.reduction == "none":
        loss = loss.reshape(positions)
    stats = tokens.stats
    if stats is not None:
        counted = target_1d != options.ignore_index
        target_logprob = torch.where(
            counted, stats.target_logit - lse, torch.full_like(lse, math.nan)
        )
        return LinearCrossEntropyOutput(
            loss, lse.reshape(positions), target_logprob.reshape(positions),
            stats.entropy.reshape(positions), stats.predicted.reshape(positions),
            (stats.predicted == target_1d).reshape(positions),
        )
    if return_lse:
        return LinearCrossEntropyOutput(loss, lse.reshape(positions))
    return loss


def linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    class_weight: torch.Tensor | None = None,
    token_weight: torch.Tensor | None = None,
    z_loss: float = 0.0,
    softcap: float | None = None,
    temperature: float = 1.0,
    reduction: v.Reduction = "mean",
    normalizer: torch.Tensor | float | None = None,
    return_lse: bool = False,
    return_stats: bool = False,
    chunk_size: int | Literal["auto"] = "auto",
    group: Any = None,
    vocab_start: int | None = None,
) -> torch.Tensor | LinearCrossEntropyOutput:
    r"""Cross-entropy of a linear layer's logits, without materialising the ``N × V`` logits.

    .. math::
        z_i = \operatorname{cap}(W h_i + b) / T, \qquad
        \ell_i = t_i \Big(\underbrace{-\sum_c a_{ic} \log \operatorname{softmax}(z_i)_c}_{\mathrm{ce}_i}
                 + \underbrace{\lambda\, \mathrm{lse}(z_i)^2}_{\mathrm{zl}_i}\Big),

    with :math:`a_{ic} = (1-\varepsilon)\, w_{y_i} [c = y_i] + \tfrac{\varepsilon}{V} w_c`
    (``crossent.cross_entropy``'s coefficients), :math:`\operatorname{cap}(x) = c \tanh(x/c)`
    (Gemma 2's soft cap, or the identity; applied before the temperature :math:`T`),
    token weights :math:`t_i` and :math:`\lambda` the PaLM z-loss weight; an ignored token
    has :math:`\ell_i = 0`. Over the counted tokens,

    .. math::
        L_\text{mean} = \frac{\sum_i t_i \mathrm{ce}_i}{\sum_i t_i w_{y_i}}
                       + \frac{\sum_i t_i \mathrm{zl}_i}{\sum_i t_i}, \qquad
        L_\text{normalizer} = \frac{\sum_i \ell_i}{\text{normalizer}}, \qquad
        L_\text{sum} = \sum_i \ell_i .

    Tokens are processed in chunks; the gradients of ``hidden``, ``weight`` and ``bias``
    are computed chunk by chunk, so memory above the inputs is the gradients plus one chunk.
    Tokens that cannot count (target ``ignore_index`` or token weight 0) are dropped before
    the projection, so time follows the counted tokens (not with ``return_lse`` or
    ``return_stats``, which describe every token). See ``docs/linear_cross_entropy.md``.

    Args:
      hidden: ``[..., D]`` float32, bfloat16, float16 or float64 (e.g. ``(B, T, D)``).
      weight: ``[V, D]``, the dtype of ``hidden`` (an ``nn.Linear(D, V)`` weight).
      target: integer class indices, ``hidden.shape[:-1]``.
      bias: optional ``[V]``, the dtype of ``hidden``.
      ignore_index: tokens whose target equals it are not counted (loss 0, gradient 0).
      label_smoothing: ε in [0, 1], as ``F.cross_entropy``: target mass (1-ε) on the
        class and ε/V spread over all classes (times the class weights).
      class_weight: optional ``[V]`` class weights (``F.cross_entropy``'s ``weight``).
      token_weight: optional ``hidden.shape[:-1]`` floating weights :math:`t_i` (e.g. a
        loss mask or per-sequence weights); not differentiated.
      z_loss: λ ≥ 0; adds λ·lse² per counted token (PaLM's auxiliary loss; 1e-4 there).
      softcap: optional c > 0; logits become c·tanh(logits/c) (Gemma 2: 30.0).
      temperature: T > 0; the (capped) logits are divided by T.
      reduction: 'none' (per token, ``hidden.shape[:-1]``), 'mean' or 'sum'. 'mean' divides
        the cross-entropy by the token- and class-weighted count of the counted targets and
        the z-loss by their token-weighted count; with nothing counted it returns 0 and zero
        gradients.
      normalizer: a positive number or 0-d tensor that replaces both divisors of 'mean'
        (only with ``reduction='mean'``): :func:`count_targets` of the whole batch, so
        micro-batches or data-parallel ranks sum to the whole batch's loss (Hugging Face's
        ``num_items_in_batch``).
      return_lse: also return the log-sum-exp of each token's logits.
      return_stats: also return per-token ``lse``, ``target_logprob``, ``entropy``,
        ``predicted`` and ``correct`` (:class:`LinearCrossEntropyOutput`).
      chunk_size: tokens per chunk, or 'auto': the most tokens whose chunk buffers (float32
        logits, the 16-bit product for 16-bit inputs, the cap's slope with a soft cap) fit in
        10% of the gradients' bytes (at least 8 rows and 4 MiB, at most 64 MiB).
      group: a ``torch.distributed`` process group over which ``weight`` (and ``bias``,
        ``class_weight``) are sharded by vocabulary rows, in rank order (Megatron-LM's
        layout): each rank passes its own ``[V_rank, D]`` slice and the same ``hidden``,
        ``target`` and ``token_weight``; the chunk statistics are all-reduced, so the loss
        (every option) is that of the whole vocabulary and the gradient of ``hidden`` is the
        full one.
      vocab_start: with ``group``, the first class this rank's ``weight`` holds (the shards
        may then lie in any rank order); None: the shards lie in rank order.

    Returns:
      The loss (float32 for 16-bit inputs, else the input dtype): a scalar, or per token for
      ``reduction='none'`` (differentiable for any upstream gradient: the per-token NLL of DPO
      and PPO losses); with ``return_lse`` or ``return_stats`` a
      :class:`LinearCrossEntropyOutput`.

    Raises:
      ValueError: mismatched hidden size, target or token weight shape, class index out of
        range, bad option values, ``normalizer`` without ``reduction='mean'``; with
        ``group=``, ranks that disagree on the options or on which inputs require grad.
      TypeError: non-floating or mixed dtypes, non-integer target.
      NotImplementedError: ``group=`` under ``torch.compile``.

    Example:

    >>> import torch
    >>> from crossent.torch import linear_cross_entropy
    >>> hidden = torch.tensor([[1.0, 0.0], [0.0, 2.0]], requires_grad=True)
    >>> weight = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], requires_grad=True)
    >>> target = torch.tensor([2, 1])
    >>> loss = linear_cross_entropy(hidden, weight, target)
    >>> # logits (1, 0, 1) and (0, 2, 2): mean of log(1 + 2e) - 1 and log(1 + 2e²) - 2
    >>> import math
    >>> round(loss.item(), 6), round((math.log(1 + 2 * math.e) - 1 + math.log(1 + 2 * math.e**2) - 2) / 2, 6)
    (0.810309, 0.810309)
    >>> reference = torch.nn.functional.cross_entropy(hidden @ weight.T, target)
    >>> torch.allclose(loss, reference)
    True
    >>> # the second token at temperature 2, with its statistics
    >>> out = linear_cross_entropy(hidden, weight, torch.tensor([-100, 1]), temperature=2.0,
    ...                            return_stats=True)
    >>> round(out.loss.item(), 6), round(math.log(1 + 2 * math.e) - 1, 6)  # logits (0, 1, 1)
    (0.861995, 0.861995)
    >>> out.target_logprob, out.predicted, out.correct
    (tensor([    nan, -0.8620]), tensor([0, 1]), tensor([False,  True]))

    NOTE: unlike ``torch.nn.functional.cross_entropy`` and ``linear_cross_entropy``, a 'mean'
    over nothing counted is 0 (not NaN) and 16-bit inputs give a float32 loss. Otherwise the
    numbers are PyTorch's, including the weighted mean and label smoothing with class weights
    and ``ignore_index``. Double backward (``create_graph=True``), ``torch.func`` transforms,
    ``torch.compile(fullgraph=True)`` and a ``class_weight`` that requires grad (which
    PyTorch refuses) compute the same loss from differentiable torch ops, chunk by chunk, so
    their derivatives are the dense composition's; they keep all ``N × V`` logits for autograd
    (under torch.compile each chunk is checkpointed instead). With ``group=`` the same holds
    (the shards are combined by collectives that are autograd functions, each the other's
    adjoint), except ``torch.compile``, which raises ``NotImplementedError`` on every rank: the
    ranks' agreement check branches on all-gathered values in Python; call the loss outside
    the compiled region (or through ``torch.compiler.disable``).
    """
    def check() -> tuple:
        options = _check_options(
            ignore_index=ignore_index, label_smoothing=label_smoothing, z_loss=z_loss,
            softcap=softcap, reduction=reduction, chunk_size=chunk_size, temperature=temperature,
            normalizer=normalizer, return_stats=return_stats,
        )
        _check_tensors(hidden, weight, target, bias, class_weight, options.ignore_index,
                       check_range=group is None, token_weight=token_weight)
        # equal on every rank: the engine's path and its collectives depend on all of these
        equal = ("linear", options, class_weight is not None, compute_dtype(hidden.dtype),
                 autograd_state(hidden, weight, bias, class_weight))
        return options, int(weight.shape[0]), int(hidden.shape[-1]), equal

    combine = _LOCAL
    if group is None:
        if vocab_start is not None:
            raise ValueError(f"vocab_start={vocab_start!r} needs group= (the ranks sharing the vocabulary)")
        options = check()[0]
    else:
        options, combine = agree_on_shards(group, vocab_start, target, check)
    return _apply(hidden, weight, target, bias, class_weight, options, return_lse, combine,
                  token_weight, normalizer)


def count_targets(
    target: torch.Tensor,
    *,
    ignore_index: int = -100,
    class_weight: torch.Tensor | None = None,
    token_weight: torch.Tensor | None = None,
    group: Any = None,
) -> torch.Tensor:
    r"""The 'mean' divisor of :func:`linear_cross_entropy`, to pass as its ``normalizer=``.

    .. math:: D = \sum_{i:\, y_i \ne \text{ignore\_index}} t_i\, w_{y_i}

    (:math:`t_i` the token weights, :math:`w` the class weights, each 1 when not given: the
    number of counted targets). Pass the whole batch's ``D`` as ``normalizer=`` to each
    micro-batch (or each data-parallel rank), so their losses and gradients add up to the
    whole batch's 'mean' (Hugging Face's ``num_items_in_batch``). With z-loss, the same
    ``D`` divides the z-loss too (as ``normalizer`` replaces both divisors).

    Args:
      target: integer class indices, any shape (e.g. ``(B, T)``).
      ignore_index: targets equal to it are not counted.
      class_weight: optional ``[V]`` floating class weights, covering every counted target.
      token_weight: optional floating weights of ``target``'s shape.
      group: optional ``torch.distributed`` process group (e.g. the data-parallel one):
        the counts of every rank are summed (one all-reduce), so each rank gets the global
        divisor.

    Returns:
      A 0-d tensor on ``target``'s device: float64 when a weight is float64, else the
      default dtype (float32); an exact count below 2**24 counted tokens in float32.

    >>> import torch
    >>> from crossent.torch import count_targets
    >>> count_targets(torch.tensor([1, -100, 2]), class_weight=torch.tensor([1.0, 2.0, 3.0]))
    tensor(5.)
    >>> # two micro-batches of one step: the step's count, 2 + 3
    >>> parts = [torch.tensor([[4, -100, 7]]), torch.tensor([[1, 2], [3, -100]])]
    >>> sum(count_targets(part) for part in parts)
    tensor(5.)

    NOTE: PyTorch has no such function. Without token weights ``D`` is the divisor that
    ``F.cross_entropy(..., weight=w, ignore_index=..., reduction='mean')`` uses, so
    ``F.cross_entropy(..., reduction='sum') / D`` is its mean; with a ``group`` it is summed
    over the ranks, which PyTorch's loss never sees.
    """
    ignore_index = v.check_ignore_index(ignore_index)
    for name, value in (("class_weight", class_weight), ("token_weight", token_weight)):
        if value is not None and not (isinstance(value, torch.Tensor) and value.is_floating_point()):
            raise TypeError(f"{name} must be a floating torch.Tensor or None, got {value!r}")
    if not isinstance(target, torch.Tensor) or target.is_floating_point() or target.is_complex():
        raise TypeError(f"target must be a tensor of integer class indices, got {target!r}")
    dtype = torch.get_default_dtype()
    for value in (class_weight, token_weight):
        if value is not None:
            dtype = torch.promote_types(dtype, value.dtype)
    counted = target != ignore_index
    weights = counted.to(dtype)
    if class_weight is not None:
        num_classes = int(class_weight.shape[0])
        bad = counted & ((target < 0) | (target >= num_classes))
        if class_weight.ndim != 1 or bool(bad.any()):
            raise ValueError(
                f"class_weight must have shape (num_classes,) covering every counted target, got "
                f"shape {tuple(class_weight.shape)} and targets up to {int(target.max())}"
            )
        weights = weights * class_weight.to(dtype)[torch.where(counted, target.long(), 0)]
    if token_weight is not None:
        if token_weight.shape != target.shape:
            raise ValueError(
                f"token_weight has shape {tuple(token_weight.shape)}, expected target's "
                f"{tuple(target.shape)} (one weight per token)"
            )
        weights = weights * token_weight.to(dtype)
    total = weights.sum()
    if group is None:
        return total
    check_group(group)
    return Combine(group).sum(total)


class LinearCrossEntropyLoss(torch.nn.Module):
    """Module form of :func:`linear_cross_entropy`: settings checked once, here.

    ``forward(hidden, weight, target, bias=None, *, token_weight=None, normalizer=None)``
    takes the output layer's parameters and the per-batch tensors as arguments, so the loss
    can sit beside the model (which owns ``weight``) without copying.

    Example:

    >>> import torch
    >>> from crossent.torch import LinearCrossEntropyLoss
    >>> loss_fn = LinearCrossEntropyLoss(z_loss=1e-4, softcap=30.0)
    >>> hidden, weight = torch.zeros(2, 3, 4), torch.zeros(5, 4)
    >>> round(loss_fn(hidden, weight, torch.tensor([[0, 1, 2], [3, 4, -100]])).item(), 6)
    1.609697
    >>> round(loss_fn(hidden, weight, torch.tensor([[0, 1, 2], [3, 4, -100]]), normalizer=10).item(), 4)
    0.8048
    """

    def __init__(
        self,
        *,
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
        class_weight: torch.Tensor | None = None,
        z_loss: float = 0.0,
        softcap: float | None = None,
        temperature: float = 1.0,
        reduction: v.Reduction = "mean",
        return_lse: bool = False,
        return_stats: bool = False,
        chunk_size: int | Literal["auto"] = "auto",
        group: Any = None,
    ) -> None:
        super().__init__()
        self.options = _check_options(
            ignore_index=ignore_index, label_smoothing=label_smoothing, z_loss=z_loss,
            softcap=softcap, reduction=reduction, chunk_size=chunk_size, temperature=temperature,
            return_stats=return_stats,
        )
        self.group = group
        if class_weight is not None and not isinstance(class_weight, torch.Tensor):
            raise TypeError(
                f"class_weight must be a torch.Tensor or None, got {type(class_weight).__name__}"
            )
        self.class_weight: torch.Tensor | None
        self.register_buffer("class_weight", class_weight)
        self.return_lse = bool(return_lse)

    def forward(
        self,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        target: torch.Tensor,
        bias: torch.Tensor | None = None,
        *,
        token_weight: torch.Tensor | None = None,
        normalizer: torch.Tensor | float | None = None,
    ) -> torch.Tensor | LinearCrossEntropyOutput:
        o = self.options
        return linear_cross_entropy(
            hidden, weight, target, bias=bias, ignore_index=o.ignore_index,
            label_smoothing=o.label_smoothing, class_weight=self.class_weight,
            token_weight=token_weight, z_loss=o.z_loss, softcap=o.softcap,
            temperature=o.temperature, reduction=o.reduction, normalizer=normalizer,
            return_lse=self.return_lse, return_stats=o.stats,
            chunk_size="auto" if o.chunk_size is None else o.chunk_size, group=self.group,
        )

    def extra_repr(self) -> str:
        o = self.options
        return (
            f"reduction={o.reduction!r}, ignore_index={o.ignore_index}, "
            f"label_smoothing={o.label_smoothing}, z_loss={o.z_loss}, softcap={o.softcap}, "
            f"temperature={o.temperature}"
        )
