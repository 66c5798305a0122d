"""The fused kernel's pure-NumPy fallback, used when numba cannot be imported.

The same row functions as :mod:`crossent.kernels._numba` (same arguments, same
outputs, same derivation; see its docstring), written with NumPy's vectorised
``exp`` over blocks of rows small enough to stay in cache, so no temporary is
larger than one block: memory stays at the logits and the gradient.
"""

from __future__ import annotations

import numpy as np

BLOCK_ELEMENTS = 1 << 16  # rows per block × classes: 256 KiB of float32, within L2


def _blocks(start: int, stop: int, num_classes: int) -> list[slice]:
    """Consecutive slices of rows start..stop, about BLOCK_ELEMENTS elements each."""
    step = max(1, BLOCK_ELEMENTS // max(num_classes, 1))
    return [slice(row, min(row + step, stop)) for row in range(start, stop, step)]


def _shifted_and_exp(
    z: np.ndarray, out: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """z - m (m the row max, 0 where it is not finite), e = exp(z - m) (into ``out``), s = Σ e."""
    row_max = z.max(axis=1, keepdims=True)  # NaN propagates, as in the generic path
    # a row of all -inf is shifted by 0, as the generic path does (+inf gives NaN, as PyTorch)
    row_max = np.where(row_max == -np.inf, 0, row_max)
    shifted = z - row_max
    exps = np.exp(shifted, out=out)
    return shifted, exps, exps.sum(axis=1)


def _gradient_from_exps(
    exps: np.ndarray, shifted: np.ndarray, sums: np.ndarray, ratio_numerator: np.ndarray
) -> np.ndarray:
    """(c / s)·e per row, in place in ``exps``; rows with s outside [1, inf): c·exp(z - m - lse)."""
    exps *= (ratio_numerator / sums)[:, None].astype(exps.dtype)
    special = ~((sums >= 1) & (sums < np.inf))
    if np.any(special):  # NaN, +inf or all -inf rows: the generic formula, term by term
        log_probs = shifted[special] - np.log(sums[special])[:, None]
        exps[special] = ratio_numerator[special, None] * np.exp(log_probs)
    return exps


def index_rows(  # type: ignore[no-untyped-def]
    logits, target, counted, hard, weight, keep, spread, scale, want_grad, losses, grad, start,
    stop,
):
    """See :func:`crossent.kernels._numba.index_rows`."""
    num_classes = logits.shape[1]
    weight_sum = float(np.sum(weight, dtype=np.float64))
    nonzero_weight = weight != 0
    for rows in _blocks(start, stop, num_classes):
        z, y, counted_rows = logits[rows], target[rows], counted[rows]
        y_safe = np.where(counted_rows, y, 0)  # rows not counted may hold any index
        out = grad[rows] if want_grad else None
        shifted, exps, sums = _shifted_and_exp(z, out)
        lse = np.log(sums)
        hard_rows = np.where(counted_rows, hard[rows], 0.0)  # h = κ w_y in float64, as numba's
        picked = np.take_along_axis(shifted, y_safe[:, None], axis=1)[:, 0]
        # ℓ = h (lse - (z_y - m)) + σ (W lse - Σ_{w≠0} w_c (z_c - m)); h = 0 adds 0
        # NaN propagates
        loss = np.where((hard_rows != 0) | np.isnan(lse), hard_rows * (lse - picked), 0.0)
        if spread != 0:
            linear = np.sum(np.where(nonzero_weight, shifted, 0) * weight, axis=1, dtype=np.float64)
            loss = loss + spread * (weight_sum * lse - linear)
        losses[rows] = np.where(counted_rows, loss, 0.0)
        if want_grad:
            total = hard_rows + spread * weight_sum
            at_target = (np.arange(len(y_safe)), y_safe)
            e_y = exps[at_target].astype(np.float64)
            if spread != 0:
                # A·p_c - σ w_c cancels where the gradient crosses 0: formed in float64 (one
                # block, in cache) and rounded once
                g = _gradient_from_exps(exps.astype(np.float64), shifted, sums, scale * total)
                g -= scale * spread * weight.astype(np.float64)
            else:
                g = _gradient_from_exps(exps, shifted, sums, scale * total)
            # g_y = scale (A e_y / s - σ w_y - h), cancelling where p_y is near 1: in float64
            # from e_y, so only the rounding of s and e_y is left (exactly 0 where p_y rounds
            # to 1); crossent.kernels._numba._target_grad
            g[at_target] = scale * (total / sums * e_y - spread * weight[y_safe] - hard_rows)
            g[~counted_rows] = 0
            if g is not exps:
                exps[...] = g  # exps is this block's rows of ``grad``


def probability_rows(  # type: ignore[no-untyped-def]
    logits, target, counted, hard, weight, keep, spread, scale, want_grad, losses, grad, start,
    stop,
):
    """See :func:`crossent.kernels._numba.probability_rows`."""
    num_classes = logits.shape[1]
    for rows in _blocks(start, stop, num_classes):
        z, counted_rows = logits[rows], counted[rows]
        out = grad[rows] if want_grad else None
        shifted, exps, sums = _shifted_and_exp(z, out)
        lse = np.log(sums)
        coefficients = weight * (target[rows] * keep + spread)
        total = np.sum(coefficients, axis=1, dtype=np.float64)
        # ℓ = A lse - Σ_{a≠0} a_c (z_c - m); 0 · (-inf) = 0 for an impossible class
        linear = np.sum(
            np.where(coefficients != 0, coefficients * shifted, 0), axis=1, dtype=np.float64
        )
        loss = np.where((total != 0) | np.isnan(lse), total * lse - linear, 0.0)  # NaN propagates
        losses[rows] = np.where(counted_rows, loss, 0.0)
        if want_grad:
            g = _gradient_from_exps(exps, shifted, sums, scale * total)
            g -= scale * coefficients
            g[~counted_rows] = 0
