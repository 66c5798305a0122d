"""The numba kernels of :mod:`crossent.evaluate._sums` (module level, so that numba's disk
cache finds them again in the next process; imported only where numba is wanted).

No fastmath: TwoSum relies on every addition being rounded exactly as written.
"""

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def add(hi, lo, s, j, x):  # type: ignore[no-untyped-def]
    a = hi[s, j]
    t = a + x
    z = t - a
    lo[s, j] += (a - (t - z)) + (x - z)  # TwoSum: the exact error of a + x
    hi[s, j] = t


@njit(cache=True, nogil=True)
def scatter_add(hi, lo, slot, weight, values):  # type: ignore[no-untyped-def]
    weighted = weight.shape[0] > 0
    for i in range(values.shape[0]):
        w = weight[i] if weighted else 1.0
        if w == 0.0:  # a zero-weight row adds nothing (not 0 * inf = NaN)
            continue
        for j in range(values.shape[1]):
            add(hi, lo, slot[i], j, w * values[i, j])


@njit(cache=True, nogil=True)
def add_rows(totals_hi, totals_lo, hits_hi, hits_lo, rows, slot, weight, entropy, info, predicted):  # type: ignore[no-untyped-def]
    weighted = weight.shape[0] > 0
    for i in range(info.shape[0]):
        s = slot[i]
        rows[s] += 1
        w = weight[i] if weighted else 1.0
        if w == 0.0:
            continue
        add(totals_hi, totals_lo, s, 0, w)
        add(totals_hi, totals_lo, s, 1, w * entropy[i])
        for c in range(info.shape[1]):
            add(totals_hi, totals_lo, s, 2 + c, w * info[i, c])
        add(hits_hi, hits_lo, s, predicted[i], w)


@njit(cache=True, nogil=True)
def add_probabilities(totals_hi, totals_lo, hits_hi, hits_lo, rows, slot, weight, p, log_clipped,
                      log1p_negated, low, high):  # type: ignore[no-untyped-def]
    # the terms of crossent.evaluate._rows.row_terms for checked probabilities p (n, C) of
    # any strides, added as add_rows adds them. log_clipped (n, C) holds log of the columns
    # clipped to [low, high] (in p's dtype), in float64. C = 1: p is the positive class's
    # probability x, log_clipped (n, 2) holds the logs of [1 - x, x] and log1p_negated (n,)
    # log1p(-x) in float64 (else it is empty). Returns the
    # largest |sum of a row - 1| (float64; 0 for one column).
    worst = 0.0
    weighted = weight.shape[0] > 0
    binary = p.shape[1] == 1
    for i in range(p.shape[0]):
        s = slot[i]
        rows[s] += 1
        w = weight[i] if weighted else 1.0
        if w == 0.0:  # adds nothing, but its row sum is checked as scikit-learn checks it
            if not binary:
                total = 0.0
                for c in range(p.shape[1]):
                    total += np.float64(p[i, c])
                worst = max(worst, abs(total - 1.0))
            continue
        add(totals_hi, totals_lo, s, 0, w)
        for c in range(log_clipped.shape[1]):
            add(totals_hi, totals_lo, s, 2 + c, w * -log_clipped[i, c])
        if binary:
            x = p[i, 0]
            xd = np.float64(x)  # binary_entropy: -x log x - (1 - x) log1p(-x), in float64
            log = log_clipped[i, 1] if low <= x <= high else math.log(xd)
            h = (xd * -log if xd > 0.0 else 0.0) + ((1.0 - xd) * -log1p_negated[i] if xd < 1.0 else 0.0)
            best = 1 if x > 0.5 else 0
        else:
            h = total = 0.0
            best, top = 0, p[i, 0]
            for c in range(p.shape[1]):
                x = p[i, c]
                total += np.float64(x)
                if x > top:  # the first largest column, as argmax
                    best, top = c, x
                if x > 0.0:  # 0 log 0 = 0; the entropy is of the unclipped value
                    xd = np.float64(x)
                    h += xd * -(log_clipped[i, c] if low <= x <= high else math.log(xd))
            worst = max(worst, abs(total - 1.0))
        add(totals_hi, totals_lo, s, 1, w * h)
        add(hits_hi, hits_lo, s, best, w)
    return worst
