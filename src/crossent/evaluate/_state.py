r"""The mergeable log-loss state: exact sums per group and per true label, merged in any order.

For every group g and every label value v seen in ``y_true`` the state keeps, as
compensated sums (:mod:`crossent.evaluate._sums`) over the rows i of that group and label:

- the weight :math:`\sum_i w_i` and the row count,
- the weighted entropy of the predictions :math:`\sum_i w_i H(q_i)`,
- for every class column c, :math:`\sum_i w_i I_{ic}` with :math:`I_{ic} = -\log \hat q_{ic}`,
- for every class column c, the weight of the rows predicted as c.

Which column belongs to which label is scikit-learn's rule: the columns follow the sorted
classes, which are ``labels`` if given, else every label seen — known only when all the
data has been seen. Keeping a column sum per (label, column) pair lets :meth:`LogLoss.result`
pick the right column at the end, so ``labels=None`` streams exactly like scikit-learn's
in-memory ``log_loss``. The cost is C sums per row instead of one.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import information
from ..compat import sklearn as sk
from ._rows import (
    ProbabilityLogs,
    RowTerms,
    Scratch,
    add_probability_logs,
    check_predictions,
    probability_logs,
    row_terms,
)
from ._sums import Sums, add_rows

__all__ = ["LogLoss", "Result"]

# names the error messages use for the arguments of LogLoss.update; the CLI passes its own
ARGUMENT_NAMES = {
    "y_true": "y_true", "y_pred": "y_pred", "sample_weight": "sample_weight", "by": "by",
    "labels": "labels",
}
_NO_GROUP = np.array([0])  # the one group of a state updated without `by`
_DIRECT_RANGE = 1 << 16  # integer keys spanning fewer values than this are encoded without sorting


@dataclass
class _Batch:
    """One batch, checked, with its terms (:meth:`LogLoss._prepare`): the label values
    seen and each row's index among them, the groups likewise (None without ``by``), the
    weights, and the terms, as logs for the fused kernel or as :class:`RowTerms`."""

    num_columns: int
    label_values: np.ndarray
    label_index: np.ndarray
    group: tuple[np.ndarray, np.ndarray] | None
    weight: np.ndarray | None
    logs: ProbabilityLogs | None
    terms: RowTerms | None
    name: dict[str, str]


@dataclass(frozen=True)
class Result:
    r"""The metrics of a :class:`LogLoss` state (all weighted by the sample weights).

    Attributes:
      log_loss: :math:`\sum_i w_i \ell_i / \sum_i w_i` with :math:`\ell_i = -\log \hat q_{i,y_i}`
        (nats), scikit-learn's ``log_loss``.
      normalized_entropy: ``log_loss / base_rate_entropy`` (NE; below 1 is better than
        always predicting the base rate); NaN when one class has all the weight.
      prediction_entropy: the mean entropy :math:`\sum_i w_i H(q_i) / \sum_i w_i` of the
        predicted distributions (before clipping).
      accuracy: the weight of rows whose predicted class (argmax; ``p > 0.5`` for one
        probability) is the true one, over the total weight.
      base_rate: the share of the weight of each class, in the order of ``classes``.
      base_rate_entropy: :math:`H(\text{base rate})` in nats.
      classes: the class labels, sorted; column c of the predictions is ``classes[c]``.
      rows: the number of rows.
      weight: :math:`\sum_i w_i` (the number of rows without weights).
      loss_sum: :math:`\sum_i w_i \ell_i` (scikit-learn's ``normalize=False``).
      groups: one :class:`Result` per value of ``by`` (sorted), or None without ``by``.
    """

    log_loss: float
    normalized_entropy: float
    prediction_entropy: float
    accuracy: float
    base_rate: tuple[float, ...]
    base_rate_entropy: float
    classes: tuple[Any, ...]
    rows: int
    weight: float
    loss_sum: float
    groups: dict[Any, Result] | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready Python values: NaN (undefined) becomes None, groups a
        list of ``{"group": key, ...}``."""
        data: dict[str, Any] = {
            name: _finite_or_none(getattr(self, name))
            for name in ("log_loss", "normalized_entropy", "prediction_entropy", "accuracy",
                         "base_rate_entropy", "rows", "weight", "loss_sum")
        }
        data["classes"] = [_python(value) for value in self.classes]
        data["base_rate"] = [_finite_or_none(share) for share in self.base_rate]
        if self.groups is not None:
            data["groups"] = [
                {"group": _python(key), **{k: v for k, v in group.to_dict().items()
                                           if k not in ("classes", "groups")}}
                for key, group in self.groups.items()
            ]
        return data


def _finite_or_none(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _python(value: Any) -> Any:
    """A NumPy scalar as the Python value (for JSON)."""
    return value.item() if isinstance(value, np.generic) else value


def _first_true(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _is_missing(value: Any) -> bool:
    """None, NaN, or pandas' NA / NaT (whose comparisons have no truth value)."""
    try:
        return value is None or bool(value != value)
    except TypeError:
        return True


def _keys(values: Any, name: str, rows: int) -> np.ndarray:
    """``values`` as a 1-D array of ``rows`` keys (labels or groups) without missing values."""
    keys = np.asarray(values)
    if keys.ndim != 1:
        raise ValueError(
            f"{name} must be 1-D, one value per row, got shape {keys.shape}"
            + ("; for a one-hot matrix pass its argmax" if keys.ndim == 2 else "")
        )
    if keys.shape[0] != rows:
        raise ValueError(f"{name} has {keys.shape[0]} rows, but the predictions have {rows}")
    if keys.dtype.kind == "f" and np.isnan(keys).any():
        raise ValueError(
            f"{name} is missing (NaN) at row {_first_true(np.isnan(keys))}; drop or fill those rows"
        )
    if keys.dtype.kind == "O":
        missing = np.array([_is_missing(value) for value in keys.tolist()], dtype=bool)
        if missing.any():
            raise ValueError(
                f"{name} is missing (None/NaN) at row {_first_true(missing)}; drop or fill "
                f"those rows"
            )
    return keys


def _encode(keys: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(sorted unique keys, index of each row's key)``; small integer ranges skip the sort."""
    if keys.dtype.kind in "biu" and keys.shape[0] > 0:
        low, high = int(keys.min()), int(keys.max())
        if high - low < _DIRECT_RANGE:
            offset = keys.astype(np.int64)  # a copy, then in place: one array a batch
            offset -= low
            present = np.flatnonzero(np.bincount(offset, minlength=high - low + 1))
            if present.shape[0] == high - low + 1:  # every value of the range: the offsets
                return (present + low).astype(keys.dtype), offset
            lookup = np.zeros(high - low + 1, np.int64)
            lookup[present] = np.arange(present.shape[0])
            return (present + low).astype(keys.dtype), lookup[offset]
    try:
        unique, inverse = np.unique(keys, return_inverse=True)
    except TypeError:
        kinds = sorted({type(value).__name__ for value in keys.tolist()})
        raise ValueError(
            f"{name} mixes values of types {', '.join(kinds)} that cannot be ordered; "
            f"make them one type"
        ) from None
    return unique, inverse.reshape(-1)


def _same_labels(labels: np.ndarray | None, other: np.ndarray | None) -> bool:
    if labels is None or other is None:
        return labels is None and other is None
    return bool(np.array_equal(labels, other))


def _union(old: np.ndarray, new: np.ndarray, name: str) -> np.ndarray:
    try:
        return np.union1d(old, new) if old.shape[0] else new
    except TypeError:
        raise ValueError(
            f"{name} holds values of another type than earlier rows ({old[:3].tolist()} ... "
            f"and {new[:3].tolist()} ...); make them one type"
        ) from None


class LogLoss:
    r"""Mergeable state of log loss (cross-entropy) and its companions, exact however split.

    .. math::
        \text{log loss} = \frac{\sum_i w_i \big(-\log \hat q_{i, y_i}\big)}{\sum_i w_i},\qquad
        \text{NE} = \frac{\text{log loss}}{H(\bar y)},\qquad
        \bar y_c = \frac{\sum_{i: y_i = c} w_i}{\sum_i w_i}

    ``update`` adds a batch of rows, ``merge`` combines two states (from other batches,
    files, processes or Dask workers) and ``result`` computes the metrics. Every total
    is a compensated sum, so the result does not depend on the order of the rows or on
    how they were split, up to a relative error of :math:`u + (N u)^2`, u = 2^-53, for N
    rows (1.1e-16 + 1.2e-14 at a billion rows; see :mod:`crossent.evaluate._sums`).

    Probabilities follow scikit-learn's ``log_loss`` (via :mod:`crossent.compat.sklearn`):
    one column (shape ``(n,)``) is the probability of the positive (second) class;
    ``(n, C)`` columns follow the sorted classes; they are clipped to
    :math:`[\epsilon, 1-\epsilon]`, ε the machine epsilon of their dtype, and not
    renormalised. Logits (``from_logits=True``) are exact with no clipping: one logit
    per row is a sigmoid, C columns a softmax.

    Args:
      labels: the classes, as scikit-learn's ``labels=``: required when the data might
        not show every class (a label outside them is an error); default: the sorted
        labels seen in all updates.
      from_logits: whether ``y_pred`` holds logits instead of probabilities.

    Example (scikit-learn's ``log_loss`` docstring example, split in two batches):

    >>> from crossent import evaluate as ev
    >>> state = ev.LogLoss()
    >>> state.update(["spam", "ham"], [[.1, .9], [.9, .1]])
    LogLoss(rows=2, classes=['ham', 'spam'], groups=1)
    >>> other = ev.LogLoss().update(["ham", "spam"], [[.8, .2], [.35, .65]])
    >>> result = state.merge(other).result()
    >>> round(result.log_loss, 6), result.accuracy  # (-ln .9 - ln .9 - ln .8 - ln .65) / 4
    (0.216162, 1.0)

    NOTE: unlike ``sklearn.metrics.log_loss`` the sample weights must be non-negative, the
    sums are compensated (scikit-learn's are NumPy's pairwise sums, in the input's dtype),
    float32 probabilities are clipped with float32's epsilon but their logs taken in
    float64, and logits are accepted. PyTorch has no log-loss metric state; its
    ``binary_cross_entropy`` clamps log p at -100 instead of clipping p.
    """

    def __init__(self, *, labels: Any = None, from_logits: bool = False) -> None:
        self.labels = None if labels is None else sk.declared_classes(labels)
        self.from_logits = bool(from_logits)
        self._num_columns: int | None = None
        self._grouped: bool | None = None
        self._groups = _NO_GROUP
        self._values = np.array([], dtype=np.int64)  # label values seen, sorted
        self._totals = Sums.zeros((1, 0, 0))  # (group, label, [weight, entropy, I_0, ...])
        self._hits = Sums.zeros((1, 0, 0))  # (group, label, predicted column)
        self._rows = np.zeros((1, 0), np.int64)
        self._names = dict(ARGUMENT_NAMES)

    # --- adding rows ---------------------------------------------------------------

    def update(
        self,
        y_true: Any,
        y_pred: Any,
        *,
        sample_weight: Any = None,
        by: Any = None,
        names: Mapping[str, str] | None = None,
    ) -> LogLoss:
        """Add a batch of rows; returns the state itself.

        Args:
          y_true: the labels ``(n,)``: ints, bools, strings, ... (any sortable values).
          y_pred: probabilities or logits ``(n,)`` (positive class) or ``(n, C)``.
          sample_weight: optional non-negative weights ``(n,)``.
          by: optional group of each row ``(n,)``; every update of a state gives it or none.
          names: how error messages name the arguments (keys ``y_true``, ``y_pred``,
            ``sample_weight``, ``by``, ``labels``), e.g. the CLI's column options.
        """
        return self._add(self._prepare(y_true, y_pred, sample_weight=sample_weight, by=by,
                                       names=names))

    def _prepare(self, y_true: Any, y_pred: Any, *, sample_weight: Any = None, by: Any = None,
                 names: Mapping[str, str] | None = None, scratch: Scratch | None = None
                 ) -> _Batch:
        """A batch checked and its per-row terms computed, without changing the state (so
        that a reading thread can prepare the next batch while :meth:`_add` adds this one);
        ``scratch``: where the temporaries come from (``batch.logs.lent`` goes back to it
        once added)."""
        name = {**ARGUMENT_NAMES, **(names or {})}
        predictions = check_predictions(
            np.asarray(y_pred), from_logits=self.from_logits, name=name["y_pred"]
        )
        rows = int(predictions.shape[0])
        num_columns = 2 if predictions.ndim == 1 or predictions.shape[1] == 1 else int(
            predictions.shape[1])
        labels = _keys(y_true, name["y_true"], rows)
        weight = self._weights(sample_weight, rows, name["sample_weight"])
        label_values, label_index = _encode(labels, name["y_true"])
        if self.labels is not None:
            undeclared = label_values[~np.isin(label_values, self.labels)]
            if undeclared.shape[0]:
                raise ValueError(
                    f"{name['y_true']} contains {_python(undeclared[0])!r}, which is not among "
                    f"{name['labels']}={self.labels.tolist()}; add it to {name['labels']} or "
                    f"drop those rows"
                )
        group = None if by is None else _encode(_keys(by, name["by"], rows), name["by"])
        logs = None if self.from_logits else probability_logs(predictions, scratch)
        terms = row_terms(predictions, from_logits=self.from_logits) if logs is None else None
        return _Batch(num_columns, label_values, label_index, group, weight, logs, terms, name)

    def _add(self, batch: _Batch) -> LogLoss:
        """Add a batch from :meth:`_prepare`; returns the state itself."""
        name, num_columns, grouped = batch.name, batch.num_columns, batch.group is not None
        if self._num_columns is not None and num_columns != self._num_columns:
            raise ValueError(
                f"{name['y_pred']} has {num_columns} class columns, but earlier rows had "
                f"{self._num_columns}; every batch must have the same columns"
            )
        if grouped != self._grouped and self._grouped is not None:
            raise ValueError(
                f"{name['by']} was {'given' if self._grouped else 'not given'} for earlier rows; "
                f"give it for every batch of a state or for none"
            )
        group_values = _NO_GROUP if batch.group is None else batch.group[0]
        group_at, label_at = self._grow(group_values, batch.label_values, num_columns, grouped,
                                        name)
        self._num_columns, self._grouped, self._names = num_columns, grouped, name
        values = self._values.shape[0]
        # the batch's sorted label values are among the state's: as many means the same, and
        # then the batch's codes are the state's (no new array)
        if batch.group is None and group_at[0] == 0 and label_at.shape[0] == values:
            slot = batch.label_index
        else:
            slot = label_at[batch.label_index]
            slot += group_at[0 if batch.group is None else batch.group[1]] * values
        totals, hits = self._totals.flat(2 + num_columns), self._hits.flat(num_columns)
        rows = self._rows.reshape(-1)
        if batch.logs is not None:
            add_probability_logs(batch.logs, totals, hits, rows, slot, batch.weight)
        else:
            assert batch.terms is not None
            add_rows(totals, hits, rows, slot, batch.weight, batch.terms.entropy, batch.terms.info,
                     batch.terms.predicted)
        return self

    @staticmethod
    def _weights(sample_weight: Any, rows: int, name: str) -> np.ndarray | None:
        if sample_weight is None:
            return None
        weight = np.asarray(sample_weight)
        if weight.ndim != 1 or weight.shape[0] != rows:
            raise ValueError(
                f"{name} must have one weight per row, shape ({rows},), got shape {weight.shape}"
            )
        if weight.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold numbers, got dtype {weight.dtype}")
        weight = weight.astype(np.float64, copy=False)
        bad = ~(np.isfinite(weight) & (weight >= 0))
        if bad.any():
            row = _first_true(bad)
            raise ValueError(
                f"{name} must be finite and non-negative, found {weight[row]:g} at row {row}; "
                f"drop the row or give it weight 0"
            )
        return weight

    def _grow(
        self, group_values: np.ndarray, label_values: np.ndarray, num_columns: int,
        grouped: bool, name: Mapping[str, str],
    ) -> tuple[np.ndarray, np.ndarray]:
        """Make room for new groups and labels; the positions of the given ones."""
        fresh = self._num_columns is None
        groups = _NO_GROUP if not grouped else (
            group_values if fresh else _union(self._groups, group_values, name["by"]))
        values = label_values if fresh else _union(self._values, label_values, name["y_true"])
        if fresh or groups.shape != self._groups.shape or values.shape != self._values.shape:
            self._reindex(groups, values, num_columns)
        return np.searchsorted(self._groups, group_values), np.searchsorted(
            self._values, label_values)

    def _reindex(self, groups: np.ndarray, values: np.ndarray, num_columns: int) -> None:
        """Embed the sums in zero arrays over a larger set of groups and labels."""
        shape = (groups.shape[0], values.shape[0])
        totals, hits = Sums.zeros(shape + (2 + num_columns,)), Sums.zeros(shape + (num_columns,))
        rows = np.zeros(shape, np.int64)
        if self._num_columns is not None:
            at = np.ix_(np.searchsorted(groups, self._groups), np.searchsorted(values, self._values))
            totals.put(at, self._totals)
            hits.put(at, self._hits)
            rows[at] = self._rows
        self._totals, self._hits, self._rows = totals, hits, rows
        self._groups, self._values = groups, values

    # --- merging ---------------------------------------------------------------------

    def merge(self, other: LogLoss) -> LogLoss:
        """A new state holding the rows of both (neither is changed); order does not matter."""
        if not isinstance(other, LogLoss):
            raise TypeError(f"merge takes another LogLoss, got {type(other).__name__}")
        if not _same_labels(self.labels, other.labels):
            raise ValueError(
                f"cannot merge states with different labels ({self.labels} and {other.labels}); "
                f"create both with the same labels="
            )
        if other._num_columns is None:
            return copy.deepcopy(self)
        if self._num_columns is None:
            return copy.deepcopy(other)
        if self._num_columns != other._num_columns:
            raise ValueError(
                f"cannot merge states of {self._num_columns} and {other._num_columns} class "
                f"columns"
            )
        if self._grouped != other._grouped:
            raise ValueError("cannot merge a state updated with by= and one updated without it")
        name = self._names
        groups = _union(self._groups, other._groups, name["by"]) if self._grouped else _NO_GROUP
        values = _union(self._values, other._values, name["y_true"])
        merged, aligned = copy.deepcopy(self), copy.deepcopy(other)
        merged._reindex(groups, values, self._num_columns)
        aligned._reindex(groups, values, self._num_columns)
        merged._totals = merged._totals + aligned._totals
        merged._hits = merged._hits + aligned._hits
        merged._rows = merged._rows + aligned._rows
        return merged

    # --- results ---------------------------------------------------------------------

    @property
    def rows(self) -> int:
        """The number of rows added so far."""
        return int(self._rows.sum())

    def classes(self) -> np.ndarray:
        """The classes, sorted: ``labels`` if given, else the labels seen so far."""
        return self.labels if self.labels is not None else self._values

    def result(self) -> Result:
        """The metrics over all rows, and per group when ``by`` was given.

        Raises:
          ValueError: no rows; one class only (without ``labels``); as many classes as
            columns needed; a total weight of zero.
        """
        if self._num_columns is None or self.rows == 0:
            raise ValueError("no rows were added: call update(y_true, y_pred) with some data")
        name = self._names
        classes = self.classes()
        num_columns = int(self._num_columns or 0)
        if classes.shape[0] < 2:
            raise ValueError(
                f"{name['y_true']} contains only one label ({_python(classes[0])!r}); pass every class "
                f"the predictions stand for through {name['labels']} (e.g. [0, 1])"
                if self.labels is None else
                f"{name['labels']} must hold at least two classes, got {classes.tolist()}"
            )
        if classes.shape[0] != num_columns:
            raise ValueError(
                f"{name['y_pred']} has {num_columns} class columns but {name['y_true']} has "
                f"{classes.shape[0]} classes {classes.tolist()[:10]}; "
                + (f"pass the classes of the columns through {name['labels']}"
                   if self.labels is None else f"{name['labels']} must name one class per column")
            )
        column = np.searchsorted(classes, self._values)  # the class column of each label
        num_groups, num_labels = self._rows.shape
        every_label = np.arange(num_labels)
        per_label = {
            "weight": self._totals.take((slice(None), slice(None), 0)),
            "entropy": self._totals.take((slice(None), slice(None), 1)),
            "loss": self._totals.take((slice(None), every_label, 2 + column)),
            "hits": self._hits.take((slice(None), every_label, column)),
        }
        # base rate: the weight of each class column (labels never seen weigh 0)
        class_weight = Sums.zeros((num_groups, num_columns))
        class_weight.hi[:, column] = per_label["weight"].hi
        class_weight.lo[:, column] = per_label["weight"].lo
        per_group = {key: sums.total(axis=1) for key, sums in per_label.items()}
        rows = self._rows.sum(axis=1)
        groups = None
        if self._grouped:
            groups = {
                _python(key): _metrics(
                    {k: v.take(g) for k, v in per_group.items()}, class_weight.take(g),
                    int(rows[g]), classes)
                for g, key in enumerate(self._groups)
            }
        overall = _metrics(
            {k: v.total(axis=0) for k, v in per_group.items()}, class_weight.total(axis=0),
            int(rows.sum()), classes, groups=groups)
        if not overall.weight > 0:
            raise ValueError(
                "the sample weights sum to zero, so no mean exists; give some rows a weight > 0"
            )
        return overall

    def __repr__(self) -> str:
        return (f"LogLoss(rows={self.rows}, classes={self.classes().tolist()[:10]}, "
                f"groups={self._groups.shape[0] if self._grouped else 1})")


def _metrics(
    sums: Mapping[str, Sums], class_weight: Sums, rows: int, classes: np.ndarray,
    groups: dict[Any, Result] | None = None,
) -> Result:
    """One group's (or the overall) metrics from its compensated totals."""
    weight = float(sums["weight"].value())
    loss_sum = float(sums["loss"].value())
    mean = (lambda total: total / weight) if weight > 0 else (lambda total: math.nan)
    base_rate = class_weight.value() / weight if weight > 0 else np.full(classes.shape, math.nan)
    base_rate_entropy = float(information.entropy(base_rate)) if weight > 0 else math.nan
    log_loss = mean(loss_sum)
    return Result(
        log_loss=log_loss,
        normalized_entropy=log_loss / base_rate_entropy if base_rate_entropy > 0 else math.nan,
        prediction_entropy=mean(float(sums["entropy"].value())),
        accuracy=mean(float(sums["hits"].value())),
        base_rate=tuple(float(share) for share in base_rate),
        base_rate_entropy=base_rate_entropy,
        classes=tuple(_python(value) for value in classes),
        rows=rows,
        weight=weight,
        loss_sum=loss_sum,
        groups=groups,
    )
