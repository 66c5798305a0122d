"""The computations explain traces, by their registry names.

Every registry entry can be explained: by the trace function of :mod:`._traces`
named like the entry (the steps of the computation), or, for an entry that has
none yet, by a one-step trace of its public function's value.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from .. import _registry
from . import _traces
from ._trace import Step, Trace, to_numpy

__all__ = ["TRACERS", "resolve", "entry", "explain"]


def _value_trace(item: _registry.Entry) -> Callable[..., Trace]:
    """A trace of ``item``'s public function with one step: its value."""

    def trace(*arrays: Any, **options: Any) -> Trace:
        value = to_numpy(item.function(*arrays, **options))
        name = item.name.replace("_", r"\_")
        step = Step(item.name, rf"\mathrm{{{name}}}({', '.join(item.arrays)})",
                    f"{item.public}({', '.join(item.arrays)})", {"value": value},
                    f"The value of {item.public} (no step-by-step trace of it yet).")
        inputs = {label: to_numpy(array) for label, array in zip(item.arrays, arrays, strict=False)}
        return Trace(item.summary or item.name, item.public, inputs, options, [step], value)

    trace.__signature__ = inspect.signature(item.function)  # type: ignore[attr-defined]
    return trace


# registry name -> (its trace function, the names of its arrays, from the registry)
TRACERS: dict[str, tuple[Callable[..., Trace], tuple[str, ...]]] = {
    item.name: (getattr(_traces, item.name, None) or _value_trace(item), item.arrays)
    for item in _registry.ENTRIES
}


def entry(name: str) -> _registry.Entry:
    """The registry entry of the computation ``name`` (ValueError naming the choices)."""
    return _registry.resolve(name, what="computation")


def resolve(name: str) -> str:
    """The canonical name of the computation ``name`` (any case, hyphens or underscores, an alias).

    >>> resolve("bce-with-logits")
    'binary_cross_entropy_with_logits'
    """
    return entry(name).name


def explain(name: str, *arrays: Any, **options: Any) -> Trace:
    """Trace the computation ``name`` on ``arrays`` with ``options`` (the function's own).

    >>> from crossent.explain import explain
    >>> round(float(explain("cross-entropy", [[1.4, 3.2, 5.0]], [2]).value), 4)
    0.1762
    """
    function, _ = TRACERS[resolve(name)]
    return function(*arrays, **options)
