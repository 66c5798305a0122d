r"""What one batch of predictions contributes: per row and per class column, from the core.

For a row with predicted distribution :math:`q` over the C class columns, the state
needs three things, whatever the true class turns out to be:

- the self-information of every column, :math:`I_c = -\log q_c`: the row's loss is
  :math:`I_{y}`, its cross-entropy against the one-hot target;
- the entropy of the prediction, :math:`H(q) = -\sum_c q_c \log q_c`;
- the predicted column (the argmax; for one probability or logit, ``p > 0.5`` or ``x > 0``).

Probabilities follow scikit-learn's ``log_loss`` (through :mod:`crossent.compat.sklearn`):
one column is the positive class's probability p and stands for ``[1 - p, p]``; the
columns are clipped to :math:`[\epsilon, 1 - \epsilon]` with ε the machine epsilon of
their dtype and not renormalised. Logits need no clipping: :math:`I = -\log\operatorname{softmax}(z)`,
or :math:`[-\log\sigma(-x), -\log\sigma(x)]` for one logit, exact for any finite logit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import activations, information, metrics
from ..compat import sklearn as sk
from . import _sums
from ._sums import Sums


@dataclass
class RowTerms:
    """One batch's terms: ``info`` (n, C) float64, ``entropy`` (n,), ``predicted`` (n,) int64."""

    info: np.ndarray
    entropy: np.ndarray
    predicted: np.ndarray


def _first(mask: np.ndarray) -> tuple[int, int]:
    """The first (row, column) where ``mask`` (n,) or (n, C) holds."""
    rows, columns = np.nonzero(mask.reshape(mask.shape[0], -1))
    return int(rows[0]), int(columns[0])


def check_predictions(y_pred: np.ndarray, *, from_logits: bool, name: str) -> np.ndarray:
    """``y_pred`` as a floating array of shape (n,) or (n, C), checked; integers become float64.

    Raises ValueError naming ``name`` for a wrong shape, NaN, or probabilities outside [0, 1].
    """
    if y_pred.ndim not in (1, 2):
        raise ValueError(
            f"{name} must have shape (n,) (one probability or logit per row) or (n, C) "
            f"(one column per class), got shape {tuple(y_pred.shape)}"
        )
    if y_pred.dtype.kind in "biu":
        y_pred = y_pred.astype(np.float64)  # scikit-learn's check_array: integers become float64
    elif y_pred.dtype.kind != "f":
        raise ValueError(
            f"{name} must hold numbers, got dtype {y_pred.dtype}; convert the column to float"
        )
    elif y_pred.dtype.itemsize < 4:
        y_pred = y_pred.astype(np.float32)  # 16-bit floats are computed in float32
    if not from_logits and y_pred.size and 0 <= y_pred.min() and y_pred.max() <= 1:
        return y_pred  # a NaN fails both tests (min and max propagate it)
    nan = np.isnan(y_pred)
    if nan.any():
        raise ValueError(
            f"{name} is NaN at row {_first(nan)[0]}; drop or fill the missing predictions"
        )
    if not from_logits:
        outside = (y_pred < 0) | (y_pred > 1)
        if outside.any():
            row, column = _first(outside)
            value = float(y_pred.reshape(y_pred.shape[0], -1)[row, column])
            raise ValueError(
                f"{name} must hold probabilities in [0, 1], found {value:g} at row {row}; "
                f"if these are logits, pass them as logits (from_logits=True, --logit)"
            )
    return y_pred


class Scratch:
    """Arrays lent from batch to batch of one stream: ``take`` one, ``give`` it back when the
    batch is added. A fresh array of megabytes per batch costs its page faults each time
    (glibc maps large blocks afresh and returns them when freed; always so in a Dask worker,
    whose ``MALLOC_TRIM_THRESHOLD_`` fixes glibc's thresholds): reusing them halved the
    preparation of 10-class probabilities in a reading thread (measured: 32 to 14 ns a row)
    and cut that of one probability column in a Dask worker from 46 to 12 ns a row. Holds
    only what was given back, so at most the arrays in flight at once; threads may take
    and give."""

    def __init__(self) -> None:
        self._free: dict[tuple[tuple[int, ...], np.dtype], list[np.ndarray]] = {}

    def take(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        """An uninitialised C-ordered array of ``shape`` and ``dtype``."""
        key = (tuple(shape), np.dtype(dtype))
        try:
            return self._free.get(key, []).pop()  # list.pop is atomic under the GIL
        except IndexError:
            return np.empty(key[0], key[1])

    def give(self, *arrays: np.ndarray) -> None:
        """Take ``arrays`` back (each from :meth:`take`; no view of them may be used after)."""
        for array in arrays:
            self._free.setdefault((array.shape, array.dtype), []).append(array)


@dataclass
class ProbabilityLogs:
    """What the fused kernel needs of checked probabilities: ``columns`` ``(n, C)`` (C = 1:
    the positive class's), the float64 logs of the clipped columns ``(n, max(C, 2))``, and
    for C = 1 ``log1p(-p)`` ``(n,)`` (else empty). ``lent``: the arrays among them from a
    :class:`Scratch`, to give back once added."""

    columns: np.ndarray
    log_clipped: np.ndarray
    log1p_negated: np.ndarray
    lent: tuple[np.ndarray, ...] = ()


def probability_logs(y_pred: np.ndarray, scratch: Scratch | None = None
                     ) -> ProbabilityLogs | None:
    """The logs of checked probabilities ``(n,)`` or ``(n, C)`` for
    :func:`add_probability_logs`, or None without numba (then use :func:`row_terms`).
    The temporaries are taken from ``scratch`` (``lent``: those to give back; without one,
    fresh arrays)."""
    if not _sums.fused_probabilities():
        return None
    scratch = Scratch() if scratch is None else scratch
    columns = y_pred.reshape(y_pred.shape[0], -1)
    # clipped in the input's dtype (scikit-learn's rule), the logs in float64 (NumPy's
    # vectorised log: 3x faster than numba's scalar log)
    if columns.shape[1] == 1:  # [1 - p, p], and the binary entropy's log1p(-p), vectorised
        positive = columns[:, 0]
        pair = sk.probability_columns(np, y_pred, out=scratch.take((len(positive), 2),
                                                                   positive.dtype))
        sk.clip_probabilities(np, pair, out=pair)
        logs = scratch.take(pair.shape, np.float64)
        np.log(pair, out=logs, dtype=np.float64)
        negated = scratch.take(positive.shape, np.float64)
        np.negative(positive, out=negated, dtype=np.float64)  # -p in float64: exact
        with np.errstate(divide="ignore"):  # p = 1: -inf, which the kernel does not use
            np.log1p(negated, out=negated)
        scratch.give(pair)
        return ProbabilityLogs(columns, logs, negated, (logs, negated))
    # ordered as the columns are (the (C, n) transpose of stacked file columns, or rows of C)
    transposed = not columns.flags.c_contiguous and columns.flags.f_contiguous
    shape = columns.shape[::-1] if transposed else columns.shape
    clipped, logs = scratch.take(shape, columns.dtype), scratch.take(shape, np.float64)
    clipped_view, logs_view = (clipped.T, logs.T) if transposed else (clipped, logs)
    sk.clip_probabilities(np, columns, out=clipped_view)
    np.log(clipped_view, out=logs_view, dtype=np.float64)  # computed in float64
    scratch.give(clipped)
    return ProbabilityLogs(columns, logs_view, np.empty(0), (logs,))


def add_probability_logs(logs: ProbabilityLogs, totals: Sums, hits: Sums, rows: np.ndarray,
                         slot: np.ndarray, weight: np.ndarray | None) -> None:
    """Add checked probabilities to a state's sums in one numba pass
    (:func:`crossent.evaluate._sums.add_probabilities`: :func:`row_terms`' terms, without
    their float64 temporaries), with scikit-learn's warning for rows that do not sum to one."""
    columns = logs.columns
    worst = _sums.add_probabilities(totals, hits, rows, slot, weight, columns, logs.log_clipped,
                                    logs.log1p_negated)
    eps = float(np.finfo(columns.dtype).eps)
    # np.isclose(sum, 1, rtol=sqrt(eps)) allows 1e-8 + sqrt(eps); the sum in y_pred's dtype
    # (scikit-learn's) differs from the kernel's float64 one by at most C eps: near the
    # threshold, the warning is decided by scikit-learn's rule itself
    if columns.shape[1] > 1 and worst > 1e-8 + math.sqrt(eps) - columns.shape[1] * eps:
        sk.warn_if_not_normalised(np, columns, stacklevel=4)


def row_terms(y_pred: np.ndarray, *, from_logits: bool) -> RowTerms:
    """The terms of checked predictions (see :func:`check_predictions`)."""
    if from_logits:
        logits = y_pred.astype(np.float64, copy=False)
        if logits.ndim == 2 and logits.shape[1] == 1:
            logits = logits[:, 0]
        if logits.ndim == 1:
            # one logit x: q = [1 - σ(x), σ(x)], -log(1 - σ(x)) = -log σ(-x)
            info = -np.stack(
                [activations.log_sigmoid(-logits), activations.log_sigmoid(logits)], axis=1
            )
            entropy = information.binary_entropy(activations.sigmoid(logits))
            predicted = metrics.predicted_positive(logits, 0.0)  # σ(x) > 1/2 exactly when x > 0
        else:
            info = -activations.log_softmax(logits, axis=-1)
            entropy = information.entropy(activations.softmax(logits, axis=-1), axis=-1)
            predicted = metrics.predicted_class(np, logits)
    else:
        columns = sk.probability_columns(np, y_pred)
        # clipped in the input's dtype (scikit-learn's rule), the logs in float64
        clipped = sk.clip_probabilities(np, columns).astype(np.float64, copy=False)
        info = information.self_information(clipped)
        if columns is y_pred:  # one column per class
            sk.warn_if_not_normalised(np, columns, stacklevel=4)
            entropy = information.entropy(y_pred.astype(np.float64, copy=False), axis=-1)
            predicted = metrics.predicted_class(np, y_pred)
        else:  # the positive class's probability p: [1 - p, p] sums to one, no warning
            positive = y_pred.reshape(-1)
            entropy = information.binary_entropy(positive.astype(np.float64, copy=False))
            predicted = metrics.predicted_positive(positive, 0.5)
    terms = RowTerms(
        np.ascontiguousarray(info, dtype=np.float64),
        np.asarray(entropy, dtype=np.float64),
        np.asarray(predicted, dtype=np.int64),
    )
    # checked probabilities give finite terms (clipped); logits of +inf can give NaN
    if from_logits and (np.isnan(terms.info).any() or np.isnan(terms.entropy).any()):
        # e.g. a logit of +inf among softmax logits: no finite distribution
        row = int(np.flatnonzero(np.isnan(terms.info).any(axis=1) | np.isnan(terms.entropy))[0])
        raise ValueError(
            f"the predictions of row {row} ({y_pred[row]!r}) give no distribution (NaN); "
            f"logits must not be +inf among several columns"
        )
    return terms
