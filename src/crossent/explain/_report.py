"""What ``crossent explain`` does, importable: read arrays, trace, advise, render."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..advise import LOSSES, advise
from . import examples as _examples
from ._names import TRACERS, resolve
from ._trace import Trace
from .render import FORMATS, render

__all__ = ["load_array", "report", "list_examples"]


def load_array(source: str, *, name: str = "array") -> np.ndarray:
    """An array from inline JSON (``"[[1, 2], [3, 4]]"``) or a ``.npy`` / ``.csv`` / ``.json`` file.

    Integers stay integers (class indices): JSON keeps ``1`` and ``1.0`` apart, ``.npy``
    keeps its dtype, and a CSV with no ``.`` or exponent is read as integers.

    >>> load_array("[2, 1]").dtype.kind, load_array("[[0.5, 0.5]]").dtype.kind
    ('i', 'f')
    """
    text = source.strip()
    path = Path(text)
    if text and not text.startswith("[") and path.suffix.lower() in (".npy", ".csv", ".json"):
        if not path.is_file():
            raise ValueError(f"{name}: file {source!r} does not exist")
        suffix = path.suffix.lower()
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".json":
            return _from_json(path.read_text(), name, source)
        content = path.read_text()
        integral = not any(mark in content for mark in (".", "e", "E", "nan", "inf"))
        array = np.loadtxt(path, delimiter=",", ndmin=1, dtype=np.int64 if integral else np.float64)
        return array
    return _from_json(text, name, source)


def _from_json(text: str, name: str, source: str) -> np.ndarray:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(
            f"{name} must be a JSON array such as '[[0.4, 0.3, 0.7]]' or a .npy/.csv/.json file, "
            f"got {source!r}"
        ) from None
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold numbers, got {source!r}")
    return array


def list_examples(format: str = "text") -> str:
    """The seeds' worked examples: name and title (``format='json'`` for a JSON list)."""
    rows = [{"name": e.name, "seed": f"{e.seed:03d}", "title": e.title}
            for e in _examples.EXAMPLES.values()]
    if format == "json":
        return json.dumps(rows, indent=2)
    width = max(len(row["name"]) for row in rows)
    return "\n".join(f"{row['name']:<{width}}  {row['title']}" for row in rows) + "\n"


def report(
    loss: str | None = None,
    first: Any = None,
    second: Any = None,
    *,
    example: str | None = None,
    format: str = "text",
    advise: bool = False,
    color: bool = False,
    **options: Any,
) -> str:
    """Trace ``loss`` on ``first`` (logits/probabilities) and ``second`` (target/q), or a seed
    ``example``, and render it in ``format``; with ``advise``, add the advisor's warnings.

    Options that are None are left at the traced function's defaults; an option the
    function does not take is an error naming it.

    >>> json.loads(report("nll", [[0.1, 0.3, 0.5]], [2], format="json"))["value"]  # -x[0, 2]
    -0.5
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    if example is not None:
        trace = _examples.get(example)
        loss_name = None
    else:
        if loss is None:
            raise ValueError("give a computation to explain (e.g. cross_entropy) or --example NAME")
        loss_name = resolve(loss)
        function, arrays = TRACERS[loss_name]
        given = [first, second][: len(arrays)]
        for position, (array_name, value) in enumerate(zip(arrays, given, strict=True)):
            if value is None:  # the command line gives the first array as --logits
                flag = ("--logits", "--target")[position]
                raise ValueError(f"{loss_name} needs {array_name} ({flag})")
        # inline numbers are read as JSON, so "[1, 2]" is an integer array; every array but
        # class-index targets is floating (the core rejects integer logits, weights, q)
        given = [_as_float(value) if array_name != "target" else value
                 for array_name, value in zip(arrays, given, strict=True)]
        for key in ("weight", "pos_weight", "alpha"):
            if isinstance(options.get(key), np.ndarray):
                options[key] = _as_float(options[key])
        accepted = set(inspect.signature(function).parameters)
        chosen = {key: value for key, value in options.items() if value is not None}
        unknown = sorted(set(chosen) - accepted)
        if unknown:
            flags = ", ".join("--" + key.replace("_", "-") for key in unknown)
            raise ValueError(
                f"{loss_name} takes no option {flags}"
                f"; its options are {', '.join(k for k in accepted if k not in arrays)}"
            )
        trace = function(*given, **chosen)
    if advise:
        _add_advice(trace, loss_name)
    return render(trace, format, color=color)


def _as_float(value: Any) -> Any:
    array = np.asarray(value)
    return array.astype(np.float64) if array.dtype.kind in "biu" else value


def _add_advice(trace: Trace, loss_name: str | None) -> None:
    if loss_name is None:  # an example: advise on the loss its function names
        loss_name = trace.function.removeprefix("crossent.").split(" ")[0]
    if loss_name not in LOSSES:
        covered = ", ".join(LOSSES)
        trace.notes.append(f"The advisor covers {covered}; it has nothing to check here.")
        return
    arrays = [trace.inputs.get(name) for name in TRACERS[loss_name][1]]
    if len(arrays) < 2 or any(array is None for array in arrays):
        return
    options = {key: trace.options[key] for key in ("axis", "weight", "pos_weight")
               if key in trace.options}
    trace.advice = advise(arrays[0], arrays[1], loss=loss_name, **options)
