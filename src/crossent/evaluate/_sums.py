r"""Compensated sums: every total of :mod:`crossent.evaluate` is a double-double ``hi + lo``.

Each term is added with Knuth's TwoSum, which finds the rounding error of ``hi + x``
exactly; the errors are summed into ``lo`` (Ogita, Rump and Oishi's ``Sum2``, 2005).
Merging two partial sums is one more TwoSum of their ``hi`` parts. The bound
(Ogita–Rump–Oishi, Proposition 4.5) for N terms :math:`x_i`, with
:math:`u = 2^{-53}` and :math:`\gamma_N = N u / (1 - N u)`:

.. math:: \Big|\mathrm{fl}(hi + lo) - \sum_i x_i\Big| \le u \Big|\sum_i x_i\Big|
          + \gamma_{N}^2 \sum_i |x_i|

whatever the order of the terms and however they were split into partial sums (a
merge counts as one more term). The terms here (losses, entropies, weights, counts)
are non-negative, so :math:`\sum|x_i| = |\sum x_i|` and the relative error is at most
:math:`u + \gamma_N^2`: 1.1e-16 + 1.2e-14 for N = 10^9 terms in one total. Two runs
over the same rows, shuffled or split differently, agree to twice that.

The scatter-add runs as a numba kernel (compiled on first use, cached on disk); with
``CROSSENT_KERNELS=numpy``, or without numba, each slot's terms are summed by
:func:`math.fsum` (correctly rounded, with its rounding residual; slower) and added
in the same way.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Sums", "add_probabilities", "add_rows", "backend", "fused_probabilities"]

_kernels: dict[str, Callable[..., Any]] | None = None
_backend: str | None = None


def _numba_kernels() -> dict[str, Callable[..., Any]]:
    from . import _numba

    return {name: getattr(_numba, name) for name in
            ("scatter_add", "add_rows", "add_probabilities")}


def _fsum_add_rows(
    totals_hi: np.ndarray, totals_lo: np.ndarray, hits_hi: np.ndarray, hits_lo: np.ndarray,
    rows: np.ndarray, slot: np.ndarray, weight: np.ndarray, entropy: np.ndarray,
    info: np.ndarray, predicted: np.ndarray,
) -> None:
    """:func:`add_rows` through the fallback scatter-add."""
    values = np.empty((info.shape[0], 2 + info.shape[1]))
    values[:, 0], values[:, 1], values[:, 2:] = 1.0, entropy, info
    _fsum_scatter_add(totals_hi, totals_lo, slot, weight, values)
    hits = (slot * hits_hi.shape[1] + predicted).astype(np.int64)
    _fsum_scatter_add(hits_hi.reshape(-1, 1), hits_lo.reshape(-1, 1), hits, weight,
                      np.ones((info.shape[0], 1)))
    rows += np.bincount(slot, minlength=rows.shape[0])


def _fsum_scatter_add(
    hi: np.ndarray, lo: np.ndarray, slot: np.ndarray, weight: np.ndarray, values: np.ndarray
) -> None:
    """The same sums without numba: each slot's terms by math.fsum (and the residual of its
    rounding), then one TwoSum."""
    if weight.shape[0]:
        keep = weight != 0
        terms = weight[keep, None] * values[keep]
        slot = slot[keep]
    else:
        terms = values
    order = np.argsort(slot, kind="stable")
    slots, starts = np.unique(slot[order], return_index=True)
    ends = np.append(starts[1:], len(order))
    for s, start, end in zip(slots.tolist(), starts.tolist(), ends.tolist(), strict=True):
        rows = order[start:end]
        for j in range(terms.shape[1]):
            column = terms[rows, j].tolist()
            total = math.fsum(column)
            residual = math.fsum([*column, -total])  # what rounding `total` left out
            hi[s, j], error = _two_sum(float(hi[s, j]), total)
            lo[s, j] += error + residual


def _two_sum(a: Any, b: Any) -> tuple[Any, Any]:
    """``(a + b, its exact rounding error)`` (Knuth), element-wise on floats or arrays."""
    total = a + b
    z = total - a
    return total, (a - (total - z)) + (b - z)


def backend() -> str:
    """What adds the terms: 'numba' or 'numpy' (math.fsum per slot, the fallback)."""
    _kernel("scatter_add")
    assert _backend is not None
    return _backend


def _kernel(name: str) -> Callable[..., Any]:
    global _kernels, _backend
    wanted = "numpy" if os.environ.get("CROSSENT_KERNELS", "").lower() == "numpy" else "numba"
    if _kernels is None or _backend != wanted:
        _kernels = {"scatter_add": _fsum_scatter_add, "add_rows": _fsum_add_rows}
        _backend = "numpy"
        if wanted == "numba":
            try:
                _kernels, _backend = _numba_kernels(), "numba"
            except ImportError:  # numba (or llvmlite) missing: the fsum fallback
                pass
    return _kernels[name]


def fused_probabilities() -> bool:
    """Whether numba's fused kernel adds probability columns (:func:`add_probabilities`);
    without numba the terms come from :func:`crossent.evaluate._rows.row_terms` and
    :func:`add_rows`."""
    _kernel("add_rows")
    return _backend == "numba"


def add_probabilities(totals: Sums, hits: Sums, rows: np.ndarray, slot: np.ndarray,
                      weight: np.ndarray | None, y_pred: np.ndarray, log_clipped: np.ndarray,
                      log1p_negated: np.ndarray) -> float:
    """:func:`add_rows` of the terms of checked probabilities ``y_pred`` ``(n, C)`` (C = 1:
    the positive class's), from the logs of its clipped columns ``log_clipped`` ``(n, C)``
    (``(n, 2)`` for C = 1, and then ``log1p_negated`` ``(n,)`` is ``log1p(-p)`` in float64;
    else empty), without the other ``(n, C)`` temporaries of
    :func:`crossent.evaluate._rows.row_terms`.

    The terms are row_terms': ``-log_clipped``; the entropy of the unclipped row
    (0 log 0 = 0; one column: the binary entropy, with ``log1p``); the first largest column
    (one column: ``p > 0.5``). They equal row_terms' up to the order of the entropy's sum
    over the columns (NumPy sums pairwise, this kernel left to right). Returns the largest
    ``|sum of a row - 1|`` (float64; 0 for one column). numba only.
    """
    eps = np.finfo(y_pred.dtype).eps
    worst = _kernel("add_probabilities")(
        totals.hi, totals.lo, hits.hi, hits.lo, rows, np.ascontiguousarray(slot, np.int64),
        np.empty(0) if weight is None else np.ascontiguousarray(weight, np.float64), y_pred,
        log_clipped, log1p_negated, y_pred.dtype.type(eps), y_pred.dtype.type(1 - eps),
    )
    return float(worst)


def add_rows(totals: Sums, hits: Sums, rows: np.ndarray, slot: np.ndarray,
             weight: np.ndarray | None, entropy: np.ndarray, info: np.ndarray,
             predicted: np.ndarray) -> None:
    """One batch into a log-loss state's sums, in one pass over the rows (in place).

    For each row i of slot s: ``rows[s] += 1`` and, weighted by ``weight[i]`` (1 if None;
    rows of weight 0 add nothing), ``totals[s] += [1, entropy[i], *info[i]]`` and
    ``hits[s, predicted[i]] += 1``. ``totals`` is ``(slots, 2 + C)``, ``hits`` ``(slots, C)``.
    """
    _kernel("add_rows")(
        totals.hi, totals.lo, hits.hi, hits.lo, rows, np.ascontiguousarray(slot, np.int64),
        np.empty(0) if weight is None else np.ascontiguousarray(weight, np.float64),
        np.ascontiguousarray(entropy, np.float64), np.ascontiguousarray(info, np.float64),
        np.ascontiguousarray(predicted, np.int64),
    )


@dataclass
class Sums:
    """An array of compensated sums: the value is ``hi + lo`` (both float64, same shape)."""

    hi: np.ndarray
    lo: np.ndarray

    @classmethod
    def zeros(cls, shape: tuple[int, ...]) -> Sums:
        return cls(np.zeros(shape), np.zeros(shape))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.hi.shape)

    def value(self) -> np.ndarray:
        """The sums, each rounded once to float64."""
        return self.hi + self.lo

    def scatter_add(self, slot: np.ndarray, weight: np.ndarray | None, values: np.ndarray) -> None:
        """``self[slot[i], j] += weight[i] * values[i, j]`` for every row i (in place).

        ``self`` must be 2-D ``(slots, columns)``; ``weight=None`` means weight 1 and rows
        of weight 0 add nothing.
        """
        _kernel("scatter_add")(
            self.hi, self.lo, np.ascontiguousarray(slot, dtype=np.int64),
            np.empty(0) if weight is None else np.ascontiguousarray(weight, dtype=np.float64),
            np.ascontiguousarray(values, dtype=np.float64),
        )

    def __add__(self, other: Sums) -> Sums:
        hi, error = _two_sum(self.hi, other.hi)
        return Sums(hi, self.lo + other.lo + error)

    def total(self, axis: int) -> Sums:
        """Sum over ``axis``, one compensated addition at a time."""
        hi = np.moveaxis(self.hi, axis, 0)
        lo = np.moveaxis(self.lo, axis, 0)
        result = Sums.zeros(hi.shape[1:])
        for index in range(hi.shape[0]):
            result = result + Sums(hi[index], lo[index])
        return result

    def take(self, indices: Any) -> Sums:
        """``self[indices]`` of both parts (NumPy indexing)."""
        return Sums(self.hi[indices], self.lo[indices])

    def put(self, where: Any, other: Sums) -> None:
        """``self[where] = other`` for both parts (NumPy indexing, in place)."""
        self.hi[where] = other.hi
        self.lo[where] = other.lo

    def flat(self, columns: int) -> Sums:
        """A 2-D ``(-1, columns)`` view of the same memory, for :meth:`scatter_add`."""
        if not (self.hi.flags.c_contiguous and self.lo.flags.c_contiguous):
            raise RuntimeError("compensated sums must be contiguous to be added to in place")
        return Sums(self.hi.reshape(-1, columns), self.lo.reshape(-1, columns))
