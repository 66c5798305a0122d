"""The fused cross-entropy kernel, compiled with numba (parallel over rows, cached on disk).

Derivation (one row: logits z ∈ R^C, coefficients a ∈ R^C, see :mod:`crossent.losses`)
-------------------------------------------------------------------------------------

With m = max_c z_c, e_c = exp(z_c - m) ∈ [0, 1], s = Σ_c e_c ≥ 1 and lse = log s,

    log p_c = (z_c - m) - lse                               (log-softmax, shifted: no overflow)
    ℓ       = -Σ_c a_c log p_c = A·lse - Σ_{a_c≠0} a_c (z_c - m),      A = Σ_c a_c
    ∂ℓ/∂z_k = A p_k - a_k      = (A / s)·e_k - a_k

Both terms of ℓ are ≥ 0 (lse ≥ 0, z_c - m ≤ 0, a ≥ 0): no cancellation. The sum skips
a_c = 0 so that an impossible class (z_c = -inf) with no target mass adds 0 (0·log 0 = 0).

The coefficients come from the target plan in factored form
(:class:`crossent._plan.SplitPlan`): for integer targets a_c = h [c = y] + σ w_c with the
row's hard term h = (1-ε) w_y and the smoothing share σ = ε/C, so

    A = h + σ W   (W = Σ_c w_c),     ℓ = h (lse - (z_y - m)) + σ (W lse - Σ_{w_c≠0} w_c (z_c - m))
    ∂ℓ/∂z_k = (A/s) e_k - σ w_k - h [k = y]

For probability targets a_c = w_c (κ t_c + σ), κ = 1-ε, is formed on the fly from the target row.

The reduction enters as one factor ``scale`` on the gradient (1/D for 'mean', else 1),
computed before the sweep, so each row is read from memory once and the gradient row is
written once (threads take disjoint ranges of rows):

    pass 1  m = max z                       (reads the row from memory; it then sits in L2)
    pass 2  s = Σ e_c (+ Σ a_c (z_c - m))   (re-reads the row from cache; e_c kept in the
                                             gradient row, or a scratch row for the loss
                                             alone, then summed by a read-only loop: see
                                             sum_exp)
    pass 3  g_k = scale·((A/s) e_k - a_k)   (scales the gradient row in cache; skipped for
                                             the loss alone; the target's entry, which
                                             cancels where p_y is near 1, in float64 from
                                             e_y: see _target_grad)

exp is written out (range reduction + polynomial, below) because numba's ``math.exp``
calls libm once per element and does not vectorise (no SVML in PyPI's llvmlite).

Rows the fast path does not cover exactly (a NaN, a +inf logit, every logit -inf) are
recomputed by ``_*_row_exact``, the same formula as the generic path, term by term with
libm's exp/log, so the special values (NaN, inf) come out exactly as there.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

# No 'nnan'/'ninf': NaN and -inf logits are data here. 'reassoc' lets LLVM vectorise the sums.
FASTMATH = {"reassoc", "contract", "nsz", "arcp"}


# ==================================================================================
# Bit-level helpers (LLVM intrinsics; each becomes one vector instruction)
# ==================================================================================


def _float_type(numba_type: types.Type) -> ir.Type:
    return ir.FloatType() if numba_type == types.float32 else ir.DoubleType()


@intrinsic
def _rint(typingctx, x):  # type: ignore[no-untyped-def]
    """Round to the nearest integer (ties to even), kept as a float: llvm.rint."""
    sig = x(x)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        float_type = _float_type(signature.args[0])
        function = builder.module.declare_intrinsic(
            "llvm.rint", [float_type], fnty=ir.FunctionType(float_type, [float_type])
        )
        return builder.call(function, [args[0]])

    return sig, codegen


@intrinsic
def _fma(typingctx, a, b, c):  # type: ignore[no-untyped-def]
    """a·b + c rounded once (llvm.fma); fast-math reassociation cannot split or merge it."""
    sig = a(a, a, a)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        float_type = _float_type(signature.args[0])
        function = builder.module.declare_intrinsic(
            "llvm.fma", [float_type], fnty=ir.FunctionType(float_type, [float_type] * 3)
        )
        return builder.call(function, list(args))

    return sig, codegen


@intrinsic
def _pow2(typingctx, n):  # type: ignore[no-untyped-def]
    """2^n for an integral float n in the normal range: n + bias shifted into the exponent."""
    sig = n(n)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        single = signature.args[0] == types.float32
        bits, bias, mantissa = (32, 127, 23) if single else (64, 1023, 52)
        int_type = ir.IntType(bits)
        exponent = builder.add(builder.fptosi(args[0], int_type), ir.Constant(int_type, bias))
        shifted = builder.shl(exponent, ir.Constant(int_type, mantissa))
        return builder.bitcast(shifted, _float_type(signature.args[0]))

    return sig, codegen


@intrinsic
def _bits_to_float(typingctx, bits):  # type: ignore[no-untyped-def]
    """Reinterpret an int32/int64 as float32/float64."""
    result = types.float32 if bits.bitwidth == 32 else types.float64
    sig = result(bits)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        return builder.bitcast(args[0], _float_type(result))

    return sig, codegen


@intrinsic
def _float_to_bits(typingctx, x):  # type: ignore[no-untyped-def]
    """Reinterpret a float32/float64 as int32/int64."""
    result = types.int32 if x == types.float32 else types.int64
    sig = result(x)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        return builder.bitcast(args[0], ir.IntType(result.bitwidth))

    return sig, codegen


@intrinsic
def _select(typingctx, condition, if_true, if_false):  # type: ignore[no-untyped-def]
    """``if_true if condition else if_false`` without a branch (a select LLVM vectorises)."""
    sig = if_false(condition, if_false, if_false)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        condition_value, true_value, false_value = args
        true_value = context.cast(builder, true_value, signature.args[1], signature.return_type)
        return builder.select(condition_value, true_value, false_value)

    return sig, codegen


# ==================================================================================
# exp(x) for x ≤ 0, vectorisable
# ==================================================================================
# x = n ln2 + r with n = rint(x / ln2), |r| ≤ ln2/2, so exp(x) = 2^n · exp(r).
# r is computed in two steps (Cody-Waite: ln2 = LN2_HI + LN2_LO, LN2_HI with trailing
# zero bits so n·LN2_HI is exact), exp(r) by a polynomial:
#   float32: Cephes expf's degree-7 polynomial (relative error ≤ ~2 ulp, measured in tests);
#   float64: Taylor series to degree 13 (truncation r^14/14! < 5e-18 for |r| ≤ ln2/2).
# Below x = log(smallest normal) the result is flushed to 0 (exp(-87.3) ≈ 1.2e-38 in
# float32): those terms are below the rounding of s ≥ 1; a gradient entry that small
# becomes 0. -inf gives 0, NaN propagates (no comparison turns it into a number).


LN2_HI = 6.93147180369123816490e-01  # float64 split of ln2 (fdlibm's), used by exp and log
LN2_LO = 1.90821492927058770002e-10


def fast_exp(x):  # type: ignore[no-untyped-def]
    """exp(x) for x ≤ 0 (pure-Python stand-in; numba uses the overload below)."""
    return math.exp(x)


@overload(fast_exp, inline="always", jit_options={"fastmath": FASTMATH})
def _fast_exp_overload(x):  # type: ignore[no-untyped-def]
    if x == types.float32:

        def exp32(x):  # type: ignore[no-untyped-def]
            lowest = np.float32(-87.33654)  # log(FLT_MIN)
            clamped = _select(x < lowest, lowest, x)  # NaN stays NaN (the comparison is false)
            n = _rint(clamped * np.float32(1.4426950408889634))  # n = round(x / ln2)
            # r = x - n·ln2 in two exact-ish steps (fma: no reassociation can merge them)
            r = _fma(-n, np.float32(0.693359375), clamped)
            r = _fma(-n, np.float32(-2.12194440e-4), r)
            p = np.float32(1.9875691500e-4)
            p = p * r + np.float32(1.3981999507e-3)
            p = p * r + np.float32(8.3334519073e-3)
            p = p * r + np.float32(4.1665795894e-2)
            p = p * r + np.float32(1.6666665459e-1)
            p = p * r + np.float32(5.0000001201e-1)
            result = (p * r * r + r + np.float32(1.0)) * _pow2(n)
            return _select(x < lowest, np.float32(0.0), result)

        return exp32
    if x == types.float64:

        def exp64(x):  # type: ignore[no-untyped-def]
            lowest = -708.3964185322641  # log(DBL_MIN)
            clamped = _select(x < lowest, lowest, x)
            n = _rint(clamped * 1.4426950408889634)
            r = _fma(-n, LN2_HI, clamped)
            r = _fma(-n, LN2_LO, r)
            p = 1.0 / 6227020800.0  # 1/13!
            p = p * r + 1.0 / 479001600.0
            p = p * r + 1.0 / 39916800.0
            p = p * r + 1.0 / 3628800.0
            p = p * r + 1.0 / 362880.0
            p = p * r + 1.0 / 40320.0
            p = p * r + 1.0 / 5040.0
            p = p * r + 1.0 / 720.0
            p = p * r + 1.0 / 120.0
            p = p * r + 1.0 / 24.0
            p = p * r + 1.0 / 6.0
            p = p * r + 0.5
            result = (p * r * r + r + 1.0) * _pow2(n)
            return _select(x < lowest, 0.0, result)

        return exp64
    return None


@njit(fastmath=FASTMATH, cache=True)
def vector_exp(x, out):  # type: ignore[no-untyped-def]
    """out = exp(x) element-wise for x ≤ 0 (for the accuracy test of ``fast_exp``)."""
    flat_x, flat_out = x.ravel(), out.ravel()
    for i in range(flat_x.size):
        flat_out[i] = fast_exp(flat_x[i])


# ==================================================================================
# log(x) for 1 ≤ x < inf, float64, vectorisable
# ==================================================================================
# x = 2^k · f with f ∈ [1/√2, √2) (k from the exponent bits, one halving when the
# mantissa is above √2), so log x = k ln2 + log f, and with t = (f - 1)/(f + 1),
# |t| ≤ 3 - 2√2 ≈ 0.1716,  log f = 2 atanh t = 2 Σ_{j≥0} t^(2j+1) / (2j+1).
# Eleven terms leave a truncation below t^23/23 · 2 < 2e-19 (relative < 1e-17 of
# log f); f - 1 is exact (Sterbenz) and k ln2 uses the split LN2_HI + LN2_LO
# (LN2_HI has trailing zero bits: k·LN2_HI is exact for |k| < 2^11).
# Only the few-classes kernel uses it (one log per row, for a block of rows at a time);
# its accuracy is measured in tests/test_kernels.py::test_fast_log_accuracy.

_LOG_COEFFICIENTS = tuple(2.0 / (2 * j + 1) for j in range(11))  # 2, 2/3, 2/5, ..., 2/21


def fast_log(x):  # type: ignore[no-untyped-def]
    """log(x) for float64 1 ≤ x < inf (pure-Python stand-in; numba uses the overload below)."""
    return math.log(x)


@overload(fast_log, inline="always", jit_options={"fastmath": FASTMATH})
def _fast_log_overload(x):  # type: ignore[no-untyped-def]
    if x != types.float64:
        return None
    c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10 = _LOG_COEFFICIENTS

    def log64(x):  # type: ignore[no-untyped-def]
        bits = _float_to_bits(x)
        exponent = (bits >> np.int64(52)) - np.int64(1023)
        f = _bits_to_float((bits & np.int64(0x000FFFFFFFFFFFFF)) | np.int64(0x3FF0000000000000))
        big = f > 1.4142135623730951  # √2
        f = _select(big, f * 0.5, f)
        k = np.float64(exponent) + _select(big, 1.0, 0.0)
        t = (f - 1.0) / (f + 1.0)
        t2 = t * t
        p = _fma(c10, t2, c9)
        p = _fma(p, t2, c8)
        p = _fma(p, t2, c7)
        p = _fma(p, t2, c6)
        p = _fma(p, t2, c5)
        p = _fma(p, t2, c4)
        p = _fma(p, t2, c3)
        p = _fma(p, t2, c2)
        p = _fma(p, t2, c1)
        # log f = t·(c0 + t2·p), with c0 = 2 applied last so its rounding is the final one
        log_f = _fma(t * t2, p, t * c0)
        return _fma(k, LN2_HI, _fma(k, LN2_LO, log_f))

    return log64


@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def vector_log(x, out):  # type: ignore[no-untyped-def]
    """out = log(x) element-wise for float64 1 ≤ x < inf (for the accuracy test of ``fast_log``)."""
    flat_x, flat_out = x.ravel(), out.ravel()
    for i in range(flat_x.size):
        flat_out[i] = fast_log(flat_x[i])


# ==================================================================================
# Row maximum, vectorisable
# ==================================================================================
# LLVM does not vectorise a float max reduction unless NaN is ruled out. Floats map to
# integers monotonically by k = b ^ ((b >> 31) & 0x7fffffff) (b the bits: negative floats
# reversed), and integer max vectorises. A NaN (positive sign) maps above +inf and is
# returned as the max; a NaN with the sign bit maps below -inf and is skipped (the exp
# sum then turns NaN and the row goes to the exact path either way).


def row_max(row):  # type: ignore[no-untyped-def]
    """max of a 1-D float array (pure-Python stand-in; numba uses the overload below)."""
    return row.max()


@overload(row_max, inline="always", jit_options={"fastmath": FASTMATH})
def _row_max_overload(row):  # type: ignore[no-untyped-def]
    int_type = np.int32 if row.dtype == types.float32 else np.int64
    # typed constants: with a plain Python int, numba would widen int32 arithmetic to int64
    sign_shift = int_type(31 if row.dtype == types.float32 else 63)
    magnitude = int_type(np.iinfo(int_type).max)
    lowest = int_type(np.iinfo(int_type).min)

    def max_by_bits(row):  # type: ignore[no-untyped-def]
        bits = row.view(int_type)
        best = int_type(lowest)
        for i in range(bits.size):
            b = bits[i]
            key = int_type(b ^ ((b >> sign_shift) & magnitude))
            best = _select(key > best, key, best)
        return _bits_to_float(int_type(best ^ ((best >> sign_shift) & magnitude)))

    return max_by_bits


def cast_like(value, reference):  # type: ignore[no-untyped-def]
    """``value`` converted to the type of ``reference`` (keeps the inner loops in float32)."""
    return type(reference)(value)


@overload(cast_like)
def _cast_like_overload(value, reference):  # type: ignore[no-untyped-def]
    target_type = np.float32 if reference == types.float32 else np.float64
    return lambda value, reference: target_type(value)


def sum_exp(z, m, out):  # type: ignore[no-untyped-def]
    """Σ_c exp(z_c - m), leaving exp(z_c - m) in the row ``out`` (stand-in)."""
    out[:] = np.exp(z - m)
    return out.sum()


@overload(sum_exp, inline="always", jit_options={"fastmath": FASTMATH})
def _sum_exp_overload(z, m, out):  # type: ignore[no-untyped-def]
    def sum_of_exps(z, m, out):  # type: ignore[no-untyped-def]
        # e_c goes into ``out`` (the gradient row, kept cache-resident for pass 3, or a
        # scratch row for the loss alone), then a second, read-only loop adds it up. The
        # loss and value_and_grad thus sum with the very same loop over the same values:
        # a reduction fused with the exp loop is vectorised in a shape that LLVM's cost
        # model picks per CPU (and, in the loop that stores, behind an alias check whose
        # scalar fallback adds in another order), so the bits of the two paths differed.
        for c in range(z.size):
            out[c] = fast_exp(z[c] - m)
        s = m - m  # 0 in the row's dtype
        for c in range(out.size):
            s += out[c]
        return s

    return sum_of_exps


# ==================================================================================
# Integer targets
# ==================================================================================


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def _index_row_exact(z, y, hard, spread, weight, scale, want_grad, g):  # type: ignore[no-untyped-def]
    """The generic formula on one row, term by term with libm (rows with NaN / ±inf)."""
    num_classes = z.size
    m = z[0]
    for c in range(num_classes):
        if z[c] > m or z[c] != z[c]:  # NaN wins, as in np.max
            m = z[c]
    if m == -np.inf:  # all -inf: shift by 0 (as the generic path); +inf gives NaN, as PyTorch
        m = 0.0
    s = 0.0
    for c in range(num_classes):
        s += math.exp(z[c] - m)
    lse = math.log(s)
    total = hard
    loss = 0.0
    for c in range(num_classes):
        a = spread * weight[c] + (hard if c == y else 0.0)
        total += spread * weight[c]
        log_prob = (z[c] - m) - lse
        if a != 0.0 or log_prob != log_prob:  # 0 · log 0 = 0, but a NaN propagates
            loss -= a * log_prob
    if want_grad:
        for c in range(num_classes):
            a = spread * weight[c] + (hard if c == y else 0.0)
            g[c] = scale * (total * math.exp((z[c] - m) - lse) - a)
    return loss


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def _target_grad(e_y, s, total, hard, spread_y, scale):  # type: ignore[no-untyped-def]
    """``g_y = scale · (A e_y / s - σ w_y - h)`` formed in float64 and rounded once.

    Where p_y is near 1 the terms cancel (``1 - p_y``), so each rounding of a term costs
    ``1 / (1 - p_y)`` times its size; in float64 only the rounding of ``s`` and ``e_y`` is
    left (as in PyTorch's ``p - 1``), and where p_y rounds to 1 the entry is exactly
    ``scale·(A - σ w_y - h) = 0``.
    """
    value = scale * ((total / np.float64(s)) * np.float64(e_y) - spread_y - hard)
    return cast_like(value, e_y)


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def index_rows(  # type: ignore[no-untyped-def]
    logits, target, counted, hard, weight, keep, spread, scale, want_grad, losses, grad, start,
    stop,
):
    """Rows start..stop: loss per row into ``losses`` (float64), gradient rows into ``grad``.

    logits [N, C] float32/float64 (C-contiguous); target [N] int64; counted [N] bool; the
    plan's hard terms ``hard`` [N] float64, ``weight`` [C] (ones when there are none) and
    σ = ``spread``, κ = ``keep`` = 1-ε; scale = d(reduced)/d(row loss);
    ``grad`` is only written if ``want_grad``. The GIL is released: threads run
    disjoint row ranges in parallel (:func:`crossent.kernels._run_rows`).
    """
    num_classes = logits.shape[1]
    weight_sum = 0.0
    for c in range(num_classes):
        weight_sum += weight[c]
    scratch = np.empty(0 if want_grad else num_classes, logits.dtype)  # e_c for the loss alone
    for i in range(start, stop):
        z = logits[i]
        if not counted[i]:
            losses[i] = 0.0
            if want_grad:
                grad[i, :] = 0
            continue
        y = target[i]
        hard_i = hard[i]
        total = hard_i + spread * weight_sum  # A = Σ_c a_c
        m = row_max(z)
        zero = m - m  # 0 in the row's dtype (m is finite whenever it is used)
        s = zero
        linear = 0.0  # Σ_{w_c≠0} w_c (z_c - m)
        if -np.inf < m < np.inf:
            s = sum_exp(z, m, grad[i] if want_grad else scratch)
            if spread != 0.0:
                for c in range(num_classes):
                    w = weight[c]
                    linear += _select(w != 0, w * (z[c] - m), zero)
        if not (1.0 <= s < np.inf):
            # the special values of the generic path, exactly
            losses[i] = _index_row_exact(z, y, hard_i, spread, weight, scale, want_grad, grad[i])
            continue
        # lse in float64: with 'reassoc', lse - (z_y - m) may be evaluated as (lse + m) - z_y,
        # which in float32 would lose lse to the rounding of m (|m| up to 1e4)
        lse = math.log(np.float64(s))
        loss = 0.0
        if hard_i != 0.0:
            loss += hard_i * (lse - (z[y] - m))
        if spread != 0.0:
            loss += spread * (weight_sum * lse - linear)
        losses[i] = loss
        if want_grad:
            g = grad[i]
            e_y = g[y]  # g holds e_c
            ratio = cast_like(scale * total / s, m)  # scale · A / s
            if spread != 0.0:
                smooth = cast_like(scale * spread, m)
                for c in range(num_classes):
                    g[c] = ratio * g[c] - smooth * weight[c]
            else:
                for c in range(num_classes):
                    g[c] = ratio * g[c]
            g[y] = _target_grad(e_y, s, total, hard_i, spread * weight[y], scale)


# ==================================================================================
# Integer targets, few classes: a block of rows at a time
# ==================================================================================
# With C below the vector width the row loops above run scalar: a row of 10 float32
# classes gets no vector lane, and its one libm log costs as much as its ten exps. Here a
# block of BLOCK_ROWS rows is transposed into [C, BLOCK_ROWS] and every step runs across
# rows instead (lane r = row r): the max, exp and the per-row sums are loops over r, the
# log is ``fast_log``, and only the gather of z_y and the gradient's write-back touch rows
# one by one. Each lane adds its C terms in class order, so a row's numbers do not depend
# on its block, on the other rows, or on the vector width (the last block is padded to
# full width with zeros, never read back). Same formula and special-row path as
# :func:`index_rows`; rows whose sum is not in [1, inf) are recomputed by
# ``_index_row_exact``.

BLOCK_ROWS = 64
# C at or below which crossent.kernels uses index_rows_few_classes, by dtype: the measured
# crossover of the forward+backward time against index_rows (single thread, 65536 rows;
# docs/kernels.md). The choice depends on C and the dtype only, never on whether the
# gradient is wanted, so the loss has the same bits either way.
FEW_CLASSES = {np.dtype(np.float32): 20, np.dtype(np.float64): 14}


# error_model='numpy': a division does not branch to raise ZeroDivisionError (which stops
# LLVM from vectorising fast_log); no divisor here can be 0 (C ≥ 1, s ≥ 1).
@njit(nogil=True, fastmath=FASTMATH, error_model="numpy", cache=True)
def index_rows_few_classes(  # type: ignore[no-untyped-def]
    logits, target, counted, hard, weight, keep, spread, scale, want_grad, losses, grad, start,
    stop,
):
    """As :func:`index_rows` (same arguments and results), for rows of few classes."""
    num_classes = logits.shape[1]
    zero = cast_like(0.0, weight[0])  # 0 in the logits' dtype (weight has it, and C ≥ 1)
    weight_sum = 0.0
    for c in range(num_classes):
        weight_sum += weight[c]
    smooth = cast_like(scale * spread, zero)
    flat_logits = logits.reshape(-1)  # views: flat indices let LLVM gather and scatter
    flat_grad = grad.reshape(-1)
    # the block, transposed: [class][lane], lane r = row first + r
    z_t = np.empty(num_classes * BLOCK_ROWS, logits.dtype)
    e_t = np.empty(num_classes * BLOCK_ROWS if want_grad else 0, logits.dtype)
    m = np.empty(BLOCK_ROWS, logits.dtype)
    s = np.empty(BLOCK_ROWS, logits.dtype)
    ratio = np.empty(BLOCK_ROWS, logits.dtype)
    live = np.zeros(BLOCK_ROWS, np.bool_)  # counted rows of the fast path
    e_target = np.empty(BLOCK_ROWS, logits.dtype)  # e_y of each lane
    lse = np.empty(BLOCK_ROWS, np.float64)
    linear = np.empty(BLOCK_ROWS, np.float64)
    for first in range(start, stop, BLOCK_ROWS):
        rows = min(BLOCK_ROWS, stop - first)
        base = first * num_classes
        for c in range(num_classes):
            lane = c * BLOCK_ROWS
            for r in range(rows):
                z_t[lane + r] = flat_logits[base + r * num_classes + c]
            for r in range(rows, BLOCK_ROWS):  # padding lanes: finite, never read back
                z_t[lane + r] = zero
        for r in range(BLOCK_ROWS):  # pass 1: max (NaN skipped here; its sum turns NaN)
            m[r] = z_t[r]
        for c in range(1, num_classes):
            lane = c * BLOCK_ROWS
            for r in range(BLOCK_ROWS):
                m[r] = _select(z_t[lane + r] > m[r], z_t[lane + r], m[r])
        for r in range(BLOCK_ROWS):  # pass 2: s = Σ e_c, class by class in every lane
            s[r] = zero
        if want_grad:
            for c in range(num_classes):
                lane = c * BLOCK_ROWS
                for r in range(BLOCK_ROWS):
                    e = fast_exp(z_t[lane + r] - m[r])
                    e_t[lane + r] = e
                    s[r] += e
        else:
            for c in range(num_classes):
                lane = c * BLOCK_ROWS
                for r in range(BLOCK_ROWS):
                    s[r] += fast_exp(z_t[lane + r] - m[r])
        for r in range(BLOCK_ROWS):
            # a special row (s NaN, 0 or inf) gets log 1 here and is recomputed below
            lse[r] = fast_log(_select(1.0 <= s[r] < np.inf, np.float64(s[r]), 1.0))
            linear[r] = 0.0
        if spread != 0.0:
            for c in range(num_classes):
                w = weight[c]
                lane = c * BLOCK_ROWS
                for r in range(BLOCK_ROWS):
                    linear[r] += _select(w != 0, w * (z_t[lane + r] - m[r]), zero)
        for r in range(rows):  # the loss, and the gradient's factor A/s, row by row
            i = first + r
            live[r] = False
            ratio[r] = zero
            if not counted[i]:
                losses[i] = 0.0
                continue
            if not (1.0 <= s[r] < np.inf):
                continue  # recomputed below
            y = target[i]
            hard_i = hard[i]
            loss = 0.0
            if hard_i != 0.0:
                loss += hard_i * (lse[r] - (z_t[y * BLOCK_ROWS + r] - m[r]))
            if spread != 0.0:
                loss += spread * (weight_sum * lse[r] - linear[r])
            losses[i] = loss
            live[r] = True
            ratio[r] = cast_like(scale * (hard_i + spread * weight_sum) / s[r], zero)
        if want_grad:  # e_y, for the target's entry below
            for r in range(rows):
                e_target[r] = e_t[target[first + r] * BLOCK_ROWS + r] if live[r] else zero
        if want_grad:  # pass 3 across the block: g = scale·((A/s) e_c - σ w_c), 0 if not live
            for c in range(num_classes):
                shift = smooth * weight[c]
                lane = c * BLOCK_ROWS
                for r in range(BLOCK_ROWS):
                    e_t[lane + r] = _select(live[r], ratio[r] * e_t[lane + r] - shift, zero)
                for r in range(rows):
                    flat_grad[base + r * num_classes + c] = e_t[lane + r]
        for r in range(rows):  # row by row: the target's term, the special rows
            i = first + r
            if live[r]:
                if want_grad:
                    y = target[i]
                    flat_grad[base + r * num_classes + y] = _target_grad(
                        e_target[r], s[r], hard[i] + spread * weight_sum, hard[i],
                        spread * weight[y], scale,
                    )
            elif counted[i]:
                losses[i] = _index_row_exact(logits[i], target[i], hard[i], spread, weight, scale,
                                             want_grad, grad[i])


# ==================================================================================
# Probability targets
# ==================================================================================


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def _probability_row_exact(z, t, weight, keep, spread, scale, want_grad, g):  # type: ignore[no-untyped-def]
    """The generic formula on one row, term by term with libm (rows with NaN / ±inf)."""
    num_classes = z.size
    m = z[0]
    for c in range(num_classes):
        if z[c] > m or z[c] != z[c]:
            m = z[c]
    if m == -np.inf:  # as in _index_row_exact
        m = 0.0
    s = 0.0
    for c in range(num_classes):
        s += math.exp(z[c] - m)
    lse = math.log(s)
    total = 0.0
    loss = 0.0
    for c in range(num_classes):
        a = weight[c] * (t[c] * keep + spread)
        total += a
        log_prob = (z[c] - m) - lse
        if a != 0.0 or log_prob != log_prob:  # 0 · log 0 = 0, but a NaN propagates
            loss -= a * log_prob
    if want_grad:
        for c in range(num_classes):
            a = weight[c] * (t[c] * keep + spread)
            g[c] = scale * (total * math.exp((z[c] - m) - lse) - a)
    return loss


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def probability_rows(  # type: ignore[no-untyped-def]
    logits, target, counted, hard, weight, keep, spread, scale, want_grad, losses, grad, start,
    stop,
):
    """As :func:`index_rows`, with probability targets ``target`` [N, C] (logits' dtype);
    ``hard`` is unused, ``keep`` = κ = 1-ε."""
    num_classes = logits.shape[1]
    scratch = np.empty(0 if want_grad else num_classes, logits.dtype)  # e_c for the loss alone
    for i in range(start, stop):
        z = logits[i]
        t = target[i]
        if not counted[i]:
            losses[i] = 0.0
            if want_grad:
                grad[i, :] = 0
            continue
        m = row_max(z)
        zero = m - m
        s = zero
        total = 0.0  # A = Σ_c a_c
        linear = 0.0  # Σ_{a_c≠0} a_c (z_c - m)
        if -np.inf < m < np.inf:
            keep_t = cast_like(keep, m)
            spread_t = cast_like(spread, m)
            s = sum_exp(z, m, grad[i] if want_grad else scratch)
            for c in range(num_classes):
                a = weight[c] * (t[c] * keep_t + spread_t)
                total += a
                linear += _select(a != 0, a * (z[c] - m), zero)
        if not (1.0 <= s < np.inf):
            losses[i] = _probability_row_exact(z, t, weight, keep, spread, scale, want_grad,
                                               grad[i])
            continue
        lse = math.log(np.float64(s))  # float64, as in index_rows
        losses[i] = total * lse - linear
        if want_grad:
            g = grad[i]
            ratio = cast_like(scale * total / s, m)
            scaled_keep = cast_like(scale * keep, m)
            shift = cast_like(scale * spread, m)
            for c in range(num_classes):
                g[c] = ratio * g[c] - weight[c] * (t[c] * scaled_keep + shift)  # g holds e_c
