"""The fused cross-entropy kernel, compiled with numba (parallel over rows, cached on disk).

Derivation (one row: logits z ∈ R^C, coefficients a ∈ R^C, see :mod:`crossent.losses`)
-------------------------------------------------------------------------------------

With m = max_c z_c, e_c = exp(z_c - m) ∈ [0, 1], s = Σ_c e_c ≥ 1 and lse = log s,

    log p_c = (z_c - m) - lse                               (log-softmax, shifted: no overflow)
    ℓ       = -Σ_c a_c log p_c = A·lse - Σ_{a_c≠0} a_c (z_c - m),      A = Σ_c a_c
    ∂ℓ/∂z_k = A p_k - a_k      = (A / s)·e_k - a_k

Both terms of ℓ are ≥ 0 (lse ≥ 0, z_c - m ≤ 0, a ≥ 0): no cancellation. The sum skips
a_c = 0 so that an impossible class (z_c = -inf) with no target mass adds 0 (0·log 0 = 0).

For integer targets a_c = h [c = y] + σ w_c with h = (1-ε) w_y and σ = ε/C, so

    A = h + σ W   (W = Σ_c w_c),     ℓ = h (lse - (z_y - m)) + σ (W lse - Σ_{w_c≠0} w_c (z_c - m))
    ∂ℓ/∂z_k = (A/s) e_k - σ w_k - h [k = y]

For probability targets a_c = w_c ((1-ε) t_c + ε/C) is formed on the fly from the target row.

The reduction enters as one factor ``scale`` on the gradient (1/D for 'mean', else 1),
computed before the sweep, so each row is read from memory once and the gradient row is
written once (threads take disjoint ranges of rows):

    pass 1  m = max z                       (reads the row from memory; it then sits in L2)
    pass 2  e_c, then s = Σ e_c             (re-reads the row from cache; e_c written into
            (+ Σ a_c (z_c - m))             the gradient row, or a scratch row for the loss
                                             alone, and summed by a second read-only loop,
                                             so the bits do not depend on memory placement)
    pass 3  g_k = scale·((A/s) e_k - a_k)   (scales the gradient row in cache; skipped for
                                             the loss alone)

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
            r = _fma(-n, 6.93147180369123816490e-01, clamped)
            r = _fma(-n, 1.90821492927058770002e-10, r)
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
    """Σ_c exp(z_c - m), leaving exp(z_c - m) in ``out`` (pure-Python stand-in)."""
    out[:] = np.exp(z - m)
    return out.sum()


@overload(sum_exp, inline="always", jit_options={"fastmath": FASTMATH})
def _sum_exp_overload(z, m, out):  # type: ignore[no-untyped-def]
    def sum_of_exps(z, m, out):  # type: ignore[no-untyped-def]
        for c in range(z.size):
            out[c] = fast_exp(z[c] - m)
        # Summed in a second, read-only loop. A reduction in the loop that stores ``out``
        # is vectorised behind a runtime alias check of ``out`` against ``z`` whose scalar
        # fallback adds in another order: the bits depended on where the arrays lay in
        # memory (adjacent small allocations took the fallback). Forward-only calls go
        # through this same code with a scratch row, so the loss has the same bits
        # whether or not the gradient is asked for.
        s = m - m  # 0 in the row's dtype
        for c in range(z.size):
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
    if not (-np.inf < m < np.inf):  # all -inf, +inf or NaN: shift by 0 (as the generic path)
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
        if a != 0.0:
            loss -= a * ((z[c] - m) - lse)
    if want_grad:
        for c in range(num_classes):
            a = spread * weight[c] + (hard if c == y else 0.0)
            g[c] = scale * (total * math.exp((z[c] - m) - lse) - a)
    return loss


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def index_rows(  # type: ignore[no-untyped-def]
    logits, target, counted, weight, smoothing, scale, want_grad, losses, grad, start, stop
):
    """Rows start..stop: loss per row into ``losses`` (float64), gradient rows into ``grad``.

    logits [N, C] float32/float64 (C-contiguous); target [N] int64; counted [N] bool;
    weight [C] (ones when there are none); smoothing ε; scale = d(reduced)/d(row loss);
    ``grad`` is only written if ``want_grad``. The GIL is released: threads run
    disjoint row ranges in parallel (:func:`crossent.kernels._run_rows`).
    """
    num_classes = logits.shape[1]
    spread = smoothing / num_classes
    scratch = np.empty(0 if want_grad else num_classes, logits.dtype)  # exps, forward only
    weight_sum = 0.0
    for c in range(num_classes):
        weight_sum += weight[c]
    for i in range(start, stop):
        z = logits[i]
        if not counted[i]:
            losses[i] = 0.0
            if want_grad:
                grad[i, :] = 0
            continue
        y = target[i]
        hard = (1.0 - smoothing) * weight[y]
        total = hard + spread * weight_sum  # A = Σ_c a_c
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
            losses[i] = _index_row_exact(z, y, hard, spread, weight, scale, want_grad, grad[i])
            continue
        # lse in float64: with 'reassoc', lse - (z_y - m) may be evaluated as (lse + m) - z_y,
        # which in float32 would lose lse to the rounding of m (|m| up to 1e4)
        lse = math.log(np.float64(s))
        loss = 0.0
        if hard != 0.0:
            loss += hard * (lse - (z[y] - m))
        if spread != 0.0:
            loss += spread * (weight_sum * lse - linear)
        losses[i] = loss
        if want_grad:
            g = grad[i]
            ratio = cast_like(scale * total / s, m)  # scale · A / s
            if spread != 0.0:
                smooth = cast_like(scale * spread, m)
                for c in range(num_classes):
                    g[c] = ratio * g[c] - smooth * weight[c]  # g holds e_c
            else:
                for c in range(num_classes):
                    g[c] = ratio * g[c]
            g[y] -= scale * hard


# ==================================================================================
# Probability targets
# ==================================================================================


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def _probability_row_exact(z, t, weight, smoothing, scale, want_grad, g):  # type: ignore[no-untyped-def]
    """The generic formula on one row, term by term with libm (rows with NaN / ±inf)."""
    num_classes = z.size
    spread = smoothing / num_classes
    m = z[0]
    for c in range(num_classes):
        if z[c] > m or z[c] != z[c]:
            m = z[c]
    if not (-np.inf < m < np.inf):
        m = 0.0
    s = 0.0
    for c in range(num_classes):
        s += math.exp(z[c] - m)
    lse = math.log(s)
    total = 0.0
    loss = 0.0
    for c in range(num_classes):
        a = weight[c] * (t[c] * (1.0 - smoothing) + spread)
        total += a
        if a != 0.0:
            loss -= a * ((z[c] - m) - lse)
    if want_grad:
        for c in range(num_classes):
            a = weight[c] * (t[c] * (1.0 - smoothing) + spread)
            g[c] = scale * (total * math.exp((z[c] - m) - lse) - a)
    return loss


@njit(nogil=True, fastmath=FASTMATH, cache=True)
def probability_rows(  # type: ignore[no-untyped-def]
    logits, target, counted, weight, smoothing, scale, want_grad, losses, grad, start, stop
):
    """As :func:`index_rows`, with probability targets ``target`` [N, C] (logits' dtype)."""
    num_classes = logits.shape[1]
    spread = smoothing / num_classes
    scratch = np.empty(0 if want_grad else num_classes, logits.dtype)  # exps, forward only
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
            keep = cast_like(1.0 - smoothing, m)
            spread_t = cast_like(spread, m)
            s = sum_exp(z, m, grad[i] if want_grad else scratch)
            for c in range(num_classes):
                a = weight[c] * (t[c] * keep + spread_t)
                total += a
                linear += _select(a != 0, a * (z[c] - m), zero)
        if not (1.0 <= s < np.inf):
            losses[i] = _probability_row_exact(z, t, weight, smoothing, scale, want_grad, grad[i])
            continue
        lse = math.log(np.float64(s))  # float64, as in index_rows
        losses[i] = total * lse - linear
        if want_grad:
            g = grad[i]
            ratio = cast_like(scale * total / s, m)
            keep = cast_like(scale * (1.0 - smoothing), m)
            shift = cast_like(scale * spread, m)
            for c in range(num_classes):
                g[c] = ratio * g[c] - weight[c] * (t[c] * keep + shift)  # g holds e_c
