"""What ``crossent explain`` does, importable: read arrays, trace, advise, render."""

from __future__ import annotations

import functools
import inspect
import json
from pathlib import Path
from typing import Any

import numpy as np

from .._array import python_array
from ..advise import LOSSES, advise
from . import examples as _examples
from ._i18n import check_lang, text, translate
from ._names import TRACERS, resolve
from ._trace import Trace
from .render import FORMATS, render

__all__ = ["load_array", "report", "trace", "checked_options", "list_examples"]


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
            try:
                return np.load(path, allow_pickle=False)
            except ValueError:  # NumPy: "Object arrays cannot be loaded when allow_pickle=False"
                raise ValueError(
                    f"{name}: {source!r} holds Python objects (an object .npy), which are not "
                    f"loaded; save a numeric array instead, e.g. "
                    f"np.save(path, np.asarray(values, dtype=float))"
                ) from None
        if suffix == ".json":
            return _from_json(path.read_text(), name, source)
        content = path.read_text()
        integral = not any(mark in content for mark in (".", "e", "E", "nan", "inf"))
        try:
            return np.loadtxt(path, delimiter=",", ndmin=1,
                              dtype=np.int64 if integral else np.float64)
        except ValueError:
            first = content.splitlines()[0] if content else ""
            raise ValueError(
                f"{name}: the CSV {source!r} must hold numbers only, one row per line; its "
                f"first line is {first[:60]!r}: remove a header row (or any text cell) first"
            ) from None
    return _from_json(text, name, source)


def _from_json(text: str, name: str, source: str) -> np.ndarray:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError(
            f"{name} must be a JSON array such as '[[0.4, 0.3, 0.7]]' or a .npy/.csv/.json file, "
            f"got {source!r}"
        ) from None
    array = python_array(value, name)  # None, ragged rows, strings: the core's messages
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold numbers, got {source!r}")
    return array


def list_examples(format: str = "text", *, lang: str = "en") -> str:
    """The seeds' worked examples: name and title in ``lang`` (``format='json'`` for a JSON list)."""
    check_lang(lang)
    rows = [{"name": e.name, "seed": f"{e.seed:03d}", "title": text(e.title, lang)}
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
    lang: str = "en",
    **options: Any,
) -> str:
    """Trace ``loss`` on ``first`` (logits/probabilities) and ``second`` (target/q), or a seed
    ``example``, and render it in ``format``; with ``advise``, add the advisor's warnings;
    ``lang`` is the language of the words ('en' or 'zh', Simplified Chinese).

    Options that are None are left at the traced function's defaults; an option the
    function does not take is an error naming it.

    >>> json.loads(report("nll", [[0.1, 0.3, 0.5]], [2], format="json"))["value"]  # -x[0, 2]
    -0.5
    """
    return render(trace(loss, first, second, example=example, advise=advise, lang=lang,
                        **options), format, color=color)


def trace(
    loss: str | None = None,
    first: Any = None,
    second: Any = None,
    *,
    example: str | None = None,
    advise: bool = False,
    lang: str = "en",
    format: str = "text",
    **options: Any,
) -> Trace:
    """The :class:`Trace` that :func:`report` renders (``format`` is only checked here).

    >>> trace("ce", [[1.4, 3.2, 5.0]], [2], lang="zh").steps[0].meaning
    'softmax 把每一行 logits 变成和为 1 的概率。'
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    check_lang(lang)
    if example is not None:
        result = _examples.get(example)
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
        result = function(*given, **checked_options(loss_name, options))
    if advise:
        _add_advice(result, loss_name)
    return translate(result, lang)


def checked_options(loss_name: str, options: dict[str, Any], *, flag: str = "--") -> dict[str, Any]:
    """The ``options`` (those not None) that the trace of ``loss_name`` takes; an unknown one
    is an error naming it (as ``--flag``, or as ``flag + name`` for other callers).

    >>> checked_options("nll_loss", {"reduction": "sum", "gamma": None})
    {'reduction': 'sum'}
    """
    arrays = TRACERS[loss_name][1]
    chosen = {key: value for key, value in options.items() if value is not None}
    for key in ("weight", "pos_weight", "alpha"):
        if isinstance(chosen.get(key), np.ndarray):
            chosen[key] = _as_float(chosen[key])
    accepted = _parameters(loss_name)
    unknown = sorted(set(chosen) - accepted)
    if unknown:
        names = ", ".join(flag + (key.replace("_", "-") if flag == "--" else key)
                          for key in unknown)
        raise ValueError(
            f"{loss_name} takes no option {names}"
            f"; its options are {', '.join(k for k in accepted if k not in arrays)}"
        )
    return chosen


@functools.cache
def _parameters(loss_name: str) -> frozenset[str]:
    """The keyword names the trace of ``loss_name`` takes (inspect.signature is slow)."""
    return frozenset(inspect.signature(TRACERS[loss_name][0]).parameters)


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
