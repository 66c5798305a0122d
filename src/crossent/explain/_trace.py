"""The trace model: a computation as a list of steps, each with its formula and numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._array import to_numpy as array_to_numpy

__all__ = ["Step", "Trace", "Check", "to_numpy"]


def to_numpy(value: Any) -> Any:
    """A NumPy array (or Python scalar) of ``value``: torch/JAX arrays are copied to the host."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return array_to_numpy(value)


@dataclass
class Step:
    """One step of a computation.

    Attributes:
      name: short name ("softmax", "per-position loss", ...).
      latex: the formula in (matplotlib-mathtext-compatible) LaTeX, without ``$``.
      text: the same formula in plain text.
      values: label -> array or number, the step's numbers (from a core call).
      meaning: what the step does, in one sentence.
    """

    name: str
    latex: str
    text: str
    values: dict[str, Any]
    meaning: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "latex": self.latex,
            "text": self.text,
            "values": {label: _jsonable(value) for label, value in self.values.items()},
            "meaning": self.meaning,
        }


@dataclass
class Check:
    """A number printed in a seed next to crossent's value for the same quantity.

    ``matches`` is True when crossent's value, written with the seed's digits, is
    the seed's number (within half a unit of the seed's last printed digit, plus a
    relative ``tolerance`` for seeds that computed in float32). ``erratum`` says,
    politely, why a seed number differs, when it does.
    """

    label: str
    seed: str  # as printed in the seed
    crossent: Any
    tolerance: float = 1e-12
    erratum: str | None = None
    absolute: float = 0.0  # extra absolute slack, e.g. for inputs the seed printed rounded

    @property
    def matches(self) -> bool:
        return seed_matches(self.seed, self.crossent, self.tolerance, self.absolute)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "seed": self.seed,
            "crossent": _jsonable(self.crossent),
            "matches": self.matches,
            "erratum": self.erratum,
        }


@dataclass
class Trace:
    """A computation traced step by step; ``value`` is what the core function returned.

    Attributes:
      title: one line naming the computation.
      function: the crossent function traced (e.g. ``"crossent.cross_entropy"``).
      inputs: label -> array (the arguments, as NumPy).
      options: the keyword options used.
      steps: the steps, in order.
      value: the final value (the core function's return value, as NumPy).
      checks: seed numbers next to crossent's (worked examples only).
      notes: remarks shown after the steps (errata, conventions).
      advice: the misuse advisor's warnings (:class:`crossent.advise.Advice`), when asked for;
        None when the advisor was not run.
      lang: the language of the words ("en", or "zh" after :func:`crossent.explain.translate`).
    """

    title: str
    function: str
    inputs: dict[str, Any]
    options: dict[str, Any]
    steps: list[Step]
    value: Any
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    advice: list[Any] | None = None
    name: str | None = None  # example name, when the trace is a seed example
    source: str | None = None  # the seed, for examples
    lang: str = "en"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "source": self.source,
            "function": self.function,
            "inputs": {label: _jsonable(value) for label, value in self.inputs.items()},
            "options": {label: _jsonable(value) for label, value in self.options.items()},
            "steps": [step.to_dict() for step in self.steps],
            "value": _jsonable(self.value),
            "checks": [check.to_dict() for check in self.checks],
            "notes": list(self.notes),
            "advice": None if self.advice is None else [a.to_dict() for a in self.advice],
            "lang": self.lang,
        }


def _jsonable(value: Any) -> Any:
    """Nested lists of floats (NaN and inf as strings, which JSON lacks)."""
    value = to_numpy(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "b":
            return value.tolist()
        if value.dtype.kind in "iu":
            return value.tolist()
        return _floats(value.astype(np.float64).tolist())
    if isinstance(value, float):
        return _floats(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _floats(value: Any) -> Any:
    if isinstance(value, list):
        return [_floats(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # "nan", "inf", "-inf"
    return value


def seed_matches(
    printed: str, value: Any, tolerance: float = 1e-12, absolute: float = 0.0
) -> bool:
    """Whether ``value`` written with the digits of ``printed`` is ``printed``.

    ``printed`` is a number or a bracketed list of numbers as the seed printed them
    (``"0.6931"``, ``"[0.8801, 1.4922]"``, ``"6.14419348e-06"``); each must lie within
    half a unit of its last printed digit of crossent's value (plus ``tolerance``
    relative, for seeds computed in float32, plus ``absolute``).

    >>> seed_matches("0.4338", 0.43386458)  # 0.43386 is 0.4339 to four decimals
    False
    >>> seed_matches("[0.6931, 0.2231]", [0.69314718, 0.22314355])
    True
    """
    if isinstance(value, str):  # a name, not a number
        return printed == value
    numbers = _parse_numbers(printed)
    values = np.asarray(to_numpy(value), dtype=np.float64).reshape(-1)
    if len(numbers) != values.size:
        return False
    for (number, half_unit), actual in zip(numbers, values, strict=True):
        allowed = half_unit * (1 + 1e-9) + tolerance * abs(number) + absolute
        if not abs(actual - number) <= allowed:
            return False
    return True


def _parse_numbers(printed: str) -> list[tuple[float, float]]:
    """(number, half a unit of its last digit) for each number in ``printed``."""
    import re

    found = []
    for token in re.findall(r"-?\d+\.?\d*(?:[eE][-+]?\d+)?", printed):
        mantissa, _, exponent = token.lower().partition("e")
        decimals = len(mantissa.partition(".")[2])
        scale = 10.0 ** (int(exponent) if exponent else 0)
        found.append((float(token), 0.5 * 10.0 ** (-decimals) * scale))
    return found
