"""The misuse advisor: the classic cross-entropy mistakes, spotted from the arrays themselves.

:func:`advise` looks at what you are about to pass to a loss and returns a list
of :class:`Advice` (code, message, reason, fix); an empty list means nothing
looked wrong. It never raises on suspicious input (the losses do that for
invalid input); it reads the numbers and says what they look like. Input that no
loss accepts at all (``None``, ragged rows, strings) raises as the losses do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from . import _registry, activations
from ._array import as_array, to_numpy

__all__ = ["Advice", "advise", "LOSSES", "IMBALANCE_RATIO"]

# the losses of a prediction against a target, from the registry
_ADVISED = tuple(entry for entry in _registry.losses() if entry.takes_target)
LOSSES = tuple(entry.name for entry in _ADVISED)

IMBALANCE_RATIO = 10.0  # most frequent / least frequent class count that triggers the advice
_SUM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Advice:
    """One warning: what looks wrong (message), why it matters (reason), what to do (fix)."""

    code: str
    message: str
    reason: str
    fix: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        return f"[{self.code}] {self.message} {self.reason} Fix: {self.fix}"


def _numpy(value: Any, name: str) -> np.ndarray:
    """NumPy array of a NumPy/torch/JAX array or a list; ``None``, ragged rows and strings
    raise, naming the argument ``name``."""
    return to_numpy(as_array(value, name=name))


def _float(x: Any, name: str) -> np.ndarray:
    return np.asarray(_numpy(x, name), dtype=np.float64)


def _is_integral(x: np.ndarray) -> bool:
    return bool(x.size) and bool(np.all(np.isfinite(x))) and bool(np.all(x == np.round(x)))


def advise(
    logits_or_probs: Any,
    target: Any,
    *,
    loss: str = "cross_entropy",
    axis: int = -1,
    weight: Any = None,
    pos_weight: Any = None,
) -> list[Advice]:
    r"""Warnings about the classic mistakes for ``loss`` on these arrays.

    Checks, where they apply to ``loss``:

    - ``probabilities-as-logits``: softmax/sigmoid outputs passed where logits are
      expected (a double softmax: the loss applies its own);
    - ``logits-as-probabilities``: values outside [0, 1] (or log-probabilities > 0)
      passed where probabilities (log-probabilities) are expected;
    - ``single-output-categorical``: a categorical loss over one class column
      (always 0, or a constant in Keras, which only warns; seed 004);
    - ``multi-hot-targets``: several 1s per row with a softmax loss (multi-label needs BCE);
    - ``binary-target-range``: binary targets outside [0, 1];
    - ``soft-targets-not-normalised``: probability targets whose rows do not sum to 1;
    - ``class-imbalance``: one class at least :data:`IMBALANCE_RATIO` times as frequent
      as another and no ``weight`` / ``pos_weight``.

    Args:
      logits_or_probs: what you pass as the loss's first argument.
      target: what you pass as its target.
      loss: the crossent loss name (one of :data:`LOSSES`).
      axis: the class axis (class-axis losses).
      weight: the class weights you pass, if any.
      pos_weight: the positive-class weight you pass (binary losses), if any.

    Returns:
      A list of :class:`Advice`, empty when nothing looks wrong.

    Example (probabilities given to cross_entropy, which applies softmax itself):

    >>> import crossent as ce
    >>> [a.code for a in ce.advise([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]], [0, 1])]
    ['probabilities-as-logits']
    >>> ce.advise([[2.0, -1.0, 0.3], [0.1, 1.5, -0.4]], [0, 1])
    []
    """
    entry = _registry.resolve(loss, _ADVISED, what="loss")  # "bce-with-logits", "ce", ...
    loss = entry.name
    values = _float(logits_or_probs, "logits_or_probs")
    target_raw = _numpy(target, "target")
    target_array = np.asarray(target_raw)
    advice: list[Advice] = []
    if values.ndim == 0 or values.size == 0:
        return advice
    if entry.family == "class-axis":
        axis = axis % values.ndim
        moved = np.moveaxis(values, axis, -1)
        num_classes = moved.shape[-1]
        probability_target = target_array.shape == values.shape and target_array.dtype.kind == "f"
        target_moved = (np.moveaxis(target_array.astype(np.float64), axis, -1)
                        if probability_target else None)
        advice += _class_axis_rules(entry, moved, num_classes, target_array, target_moved,
                                    weight)
    else:
        advice += _binary_rules(entry, values, _float(target_array, "target"), weight, pos_weight)
    return advice


def _class_axis_rules(
    entry: _registry.Entry, values: np.ndarray, num_classes: int, target: np.ndarray,
    target_moved: np.ndarray | None, weight: Any,
) -> list[Advice]:
    loss, advice = entry.name, []
    if num_classes == 1:
        advice.append(Advice(
            "single-output-categorical",
            f"{loss} got a single class column.",
            "The softmax of one column is always 1, so the loss is 0 and its gradient is 0 for "
            "every input: the model never learns (Keras 3 only warns here, and its clipped "
            "loss -y log(1 - 1e-7) is a constant; seed 004's CE run stays at loss 5.96e-08, "
            "accuracy 0.50).",
            "For a yes/no task keep one column and use binary_cross_entropy_with_logits, or use "
            "two columns (classes 0 and 1) with cross_entropy.",
        ))
    finite = values[np.isfinite(values)]
    if entry.arrays[0] == "logits" and num_classes > 1 and finite.size == values.size:
        in_unit = bool(np.all((values >= 0) & (values <= 1)))
        sums_to_one = bool(np.all(np.abs(values.sum(axis=-1) - 1) <= _SUM_TOLERANCE))
        if in_unit and sums_to_one:
            squeezed = _numpy(activations.softmax(values.reshape(-1, num_classes)), "logits_or_probs")
            advice.append(Advice(
                "probabilities-as-logits",
                f"The input to {loss} looks like probabilities (every row in [0, 1], summing "
                "to 1), but the loss applies softmax itself.",
                "Softmax of probabilities is a second softmax: its outputs are squeezed towards "
                f"uniform (here between {squeezed.min():.3f} and {squeezed.max():.3f}), so the "
                "loss barely moves and gradients are tiny.",
                "Pass the logits (the layer output before softmax); if you only have "
                "probabilities, use nll_loss(log(p), target).",
            ))
    if entry.arrays[0] == "log_probs" and finite.size and bool(np.any(finite > 0)):
        in_unit = bool(np.all((finite >= 0) & (finite <= 1)))
        advice.append(Advice(
            "logits-as-probabilities",
            "nll_loss got positive values; it expects log-probabilities (<= 0).",
            "nll_loss only picks and negates (seed 000/003): given "
            + ("probabilities" if in_unit else "raw logits")
            + " it returns minus the picked value, which is not a cross-entropy.",
            "Pass log_softmax(logits), or call cross_entropy(logits, target) directly.",
        ))
    if target_moved is not None and num_classes > 1:
        binary = bool(np.all((target_moved == 0) | (target_moved == 1)))
        ones = target_moved.sum(axis=-1)
        multi_hot = binary and bool(np.any(ones > 1))
        if multi_hot and entry.arrays[0] == "logits":
            advice.append(Advice(
                "multi-hot-targets",
                f"Some target rows have several 1s ({int(np.max(ones))} at most): a multi-label "
                "task.",
                "Softmax makes the classes compete for one unit of probability, so two true "
                "labels cannot both be predicted with confidence (seed 004's row [1, 1, 0] costs "
                "2.667); each label is its own yes/no question.",
                "Use binary_cross_entropy_with_logits (one sigmoid per label) with the same "
                "multi-hot targets.",
            ))
        elif not bool(np.all(np.abs(ones - 1) <= _SUM_TOLERANCE)):
            worst = float(ones.reshape(-1)[np.argmax(np.abs(ones - 1).reshape(-1))])
            advice.append(Advice(
                "soft-targets-not-normalised",
                f"Probability targets should sum to 1 along the class axis; a row sums to "
                f"{worst:.4g}.",
                "Cross-entropy with soft targets is -sum_c t_c log p_c; rows that do not sum to "
                "1 scale that row's loss and gradient (the gradient is (sum t) p - t).",
                "Normalise the targets (t / t.sum(axis, keepdims=True)), or pass class indices.",
            ))
    if weight is None:
        counts = _class_counts(target, target_moved, num_classes)
        imbalance = _imbalance(counts)
        if imbalance is not None:
            most, least, ratio = imbalance
            advice.append(Advice(
                "class-imbalance",
                f"Class {most} is {ratio:.0f} times as frequent as class {least} in the target, "
                "and no class weights are given.",
                "With a plain mean the frequent class dominates the loss; the model can score "
                "well by rarely predicting the rare class.",
                "Pass weight= with a weight per class, e.g. N / (C * count_c) (inverse "
                "frequency), or resample the data.",
            ))
    return advice


def _class_counts(target: np.ndarray, target_moved: np.ndarray | None,
                  num_classes: int) -> np.ndarray | None:
    if target_moved is not None:
        if not np.all((target_moved == 0) | (target_moved == 1)):
            return None
        return target_moved.reshape(-1, num_classes).sum(axis=0)
    if target.dtype.kind not in "iu":
        return None
    valid = target[(target >= 0) & (target < num_classes)]
    return np.bincount(valid.reshape(-1).astype(np.int64), minlength=num_classes)


def _imbalance(counts: np.ndarray | None) -> tuple[int, int, float] | None:
    """(most frequent, least frequent present class, ratio) when the ratio is large."""
    if counts is None:
        return None
    present = np.flatnonzero(counts > 0)
    if present.size < 2:
        return None
    most = int(present[np.argmax(counts[present])])
    least = int(present[np.argmin(counts[present])])
    ratio = float(counts[most] / counts[least])
    return (most, least, ratio) if ratio >= IMBALANCE_RATIO else None


def _binary_rules(entry: _registry.Entry, values: np.ndarray, target: np.ndarray, weight: Any,
                  pos_weight: Any) -> list[Advice]:
    loss, advice = entry.name, []
    finite = values[np.isfinite(values)]
    if entry.arrays[0] == "logits" and finite.size == values.size and values.size > 1:
        in_unit = bool(np.all((values >= 0) & (values <= 1)))
        if in_unit and bool(np.any((values > 0) & (values < 1))):
            advice.append(Advice(
                "probabilities-as-logits",
                f"The input to {loss} looks like probabilities (every value in [0, 1]), but the "
                "loss applies the sigmoid itself.",
                "The sigmoid of a probability lies between 0.5 and 0.731: every prediction "
                "becomes 'positive, unsure', the loss cannot go below 0.31 for negatives, and "
                "gradients shrink.",
                "Pass the logits (before the sigmoid), or use binary_cross_entropy on the "
                "probabilities.",
            ))
    if entry.arrays[0] == "probs" and finite.size and bool(
            np.any((finite < 0) | (finite > 1))):
        advice.append(Advice(
            "logits-as-probabilities",
            "binary_cross_entropy got values outside [0, 1]; it expects probabilities.",
            "Logits are any real numbers; log(p) of a negative or log(1 - p) of a value above 1 "
            "is undefined (crossent raises, PyTorch asserts).",
            "Use binary_cross_entropy_with_logits(logits, target): it applies the sigmoid "
            "stably (seed 002's max(x, 0) - x z + log(1 + exp(-|x|))).",
        ))
    outside = (target < 0) | (target > 1)
    if target.size and bool(np.any(outside)):
        first = float(target[outside].reshape(-1)[0])
        integral = _is_integral(target) and bool(np.all(target >= 0))
        advice.append(Advice(
            "binary-target-range",
            f"Binary targets must lie in [0, 1]; found {first:g}.",
            "The binary cross-entropy -[t log p + (1 - t) log(1 - p)] is a cross-entropy only "
            "for 0 <= t <= 1; outside it the loss is unbounded below and training diverges."
            + (" Integer targets above 1 look like class indices." if integral else ""),
            ("Class indices need cross_entropy (softmax over classes), or one-hot them for "
             "multi-label BCE." if integral else "Rescale the targets to [0, 1]."),
        ))
    if weight is None and pos_weight is None and target.size and bool(
            np.all((target == 0) | (target == 1))):
        positives, negatives = float(target.sum()), float(target.size - target.sum())
        if positives and negatives and max(positives, negatives) / min(positives, negatives) >= (
                IMBALANCE_RATIO):
            rare = "positives" if positives < negatives else "negatives"
            ratio = max(positives, negatives) / min(positives, negatives)
            advice.append(Advice(
                "class-imbalance",
                f"The targets have {ratio:.0f} times fewer {rare} than "
                f"{'negatives' if rare == 'positives' else 'positives'}, and no weight or "
                "pos_weight is given.",
                "With a plain mean the frequent answer dominates the loss; predicting it always "
                "already scores well.",
                "Pass pos_weight = negatives / positives (per label for multi-label targets), "
                "or try sigmoid_focal_loss.",
            ))
    return advice
