"""What the playground's API answers, as plain functions of JSON-like data (no web framework).

Every number comes from crossent's core (losses, gradients, activations, information,
compare, explain); this module only converts the request, checks its limits and
arranges the answers. A bad request raises ``ValueError``/``TypeError`` with
crossent's message, which the web layer returns as a 400.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import activations, information, losses
from .. import grad as _grad
from ..explain import TRACERS, _i18n, _report
from ..explain import examples as _examples
from ..explain import resolve as _resolve
from ..explain._trace import Step, Trace, _jsonable
from ..explain.render import latex_to_svg

__all__ = [
    "MAX_SIZE",
    "LOSSES",
    "explain",
    "compare",
    "gradient",
    "loss_curve",
    "numerics",
    "examples",
    "example",
    "plots",
    "plot",
    "formula",
]

MAX_SIZE = 64  # at most 64 rows and 64 classes (64 x 64 values) in any array

# matplotlib (formulas, figures) is not thread-safe; the web layer runs requests in threads
_MATPLOTLIB = threading.Lock()


# --- the losses the playground edits ----------------------------------------------------


@dataclass(frozen=True)
class _Loss:
    """A loss as the page edits it: which array moves, how it becomes probabilities."""

    function: Callable[..., Any]  # crossent's loss (first array, second array, **options)
    gradient: Callable[..., Any] | None  # d loss / d (the moving array), None where crossent has none
    activation: str | None  # "softmax" | "sigmoid": the moving array holds logits
    moving: int = 0  # the array the page edits: 0 the first (logits, probs), 1 the second (q)
    reduces: bool = True  # takes reduction= (kl_divergence returns one value a row)
    compare: tuple[str, str] | None = None  # (crossent.compare's loss, its inputs)


LOSSES: dict[str, _Loss] = {
    "cross_entropy": _Loss(losses.cross_entropy, _grad.cross_entropy, "softmax",
                           compare=("cross_entropy", "logits")),
    "nll_loss": _Loss(losses.nll_loss, _grad.nll_loss, None, compare=("cross_entropy", "probs")),
    "binary_cross_entropy": _Loss(losses.binary_cross_entropy, _grad.binary_cross_entropy, None,
                                  compare=("binary_cross_entropy", "probs")),
    "binary_cross_entropy_with_logits": _Loss(
        losses.binary_cross_entropy_with_logits, _grad.binary_cross_entropy_with_logits,
        "sigmoid", compare=("binary_cross_entropy", "logits")),
    "sigmoid_focal_loss": _Loss(losses.sigmoid_focal_loss, _grad.sigmoid_focal_loss, "sigmoid"),
    "softmax_focal_loss": _Loss(losses.softmax_focal_loss, _grad.softmax_focal_loss, "softmax"),
    # D_KL(p || q): the page edits the model's q (the second array); p is the target
    "kl_divergence": _Loss(information.kl_divergence, None, None, moving=1, reduces=False),
}


def _playground_loss(name: Any) -> tuple[str, _Loss]:
    key = _resolve(_name(name))
    if key not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)} here, got {name!r}")
    return key, LOSSES[key]


def _name(name: Any) -> str:
    if not isinstance(name, str):
        raise TypeError(f"loss must be a string such as 'cross_entropy', got {name!r}")
    return name


# --- reading a request ------------------------------------------------------------------

_NON_FINITE = {"inf": math.inf, "+inf": math.inf, "infinity": math.inf, "-inf": -math.inf,
               "-infinity": -math.inf, "nan": math.nan}


def _number(value: Any, name: str) -> float | int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must hold numbers, got the boolean {value!r}")
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and value.strip().lower() in _NON_FINITE:
        return _NON_FINITE[value.strip().lower()]  # the strings Trace JSON writes for inf, nan
    raise TypeError(f"{name} must hold numbers (or 'inf', '-inf', 'nan'), got {value!r}")


def array(value: Any, name: str, *, max_ndim: int = 2) -> np.ndarray:
    """``value`` (a number or nested lists of numbers) as an array, within the size limits.

    Integers stay integers (class indices); ``"inf"``, ``"-inf"`` and ``"nan"`` are read
    as those floats.

    >>> array([[1, 2.5], ["-inf", 0]], "logits")
    array([[ 1. ,  2.5],
           [-inf,  0. ]])
    >>> array([[1.0] * 65], "logits")
    Traceback (most recent call last):
    ...
    ValueError: logits has 65 entries along an axis; the playground takes at most 64 (64 x 64 values)
    """
    def convert(item: Any, depth: int) -> Any:
        if isinstance(item, (list, tuple)):
            if depth >= max_ndim:
                raise ValueError(f"{name} must have at most {max_ndim} dimensions "
                                 f"(rows of classes)")
            if len(item) > MAX_SIZE:
                raise ValueError(f"{name} has {len(item)} entries along an axis; the playground "
                                 f"takes at most {MAX_SIZE} ({MAX_SIZE} x {MAX_SIZE} values)")
            return [convert(entry, depth + 1) for entry in item]
        return _number(item, name)

    converted = convert(value, 0)
    try:
        result = np.asarray(converted)
    except ValueError:
        result = np.asarray(converted, dtype=object)
    if result.dtype == object:
        raise ValueError(f"{name} must be a rectangular array (every row as long as the "
                         f"first), got rows of lengths {[len(r) for r in converted]}")
    return result


def _float(value: Any, name: str) -> np.ndarray:
    result = array(value, name)
    return result.astype(np.float64) if result.dtype.kind in "biu" else result


def _options(loss: str, options: Any) -> dict[str, Any]:
    """The loss's keyword options from the request, checked as ``crossent explain`` checks them.

    ``temperature`` is the playground's own: it is applied before the loss (see
    :func:`_temperature`), so it is taken out here.
    """
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise TypeError(f"options must be an object such as {{\"label_smoothing\": 0.1}}, "
                        f"got {options!r}")
    converted: dict[str, Any] = {}
    for key, value in options.items():
        if key in ("weight", "pos_weight", "alpha") and isinstance(value, (list, tuple)):
            converted[key] = _float(value, f"options.{key}")
        elif key == "where" and value is not None:
            converted[key] = array(value, "options.where").astype(bool)
        else:
            converted[key] = value
    converted.pop("temperature", None)
    return _report.checked_options(loss, converted, flag="options.")


def _temperature(loss: str, arrays: list[Any], options: Any) -> tuple[list[Any], Step | None]:
    """The arrays at ``options.temperature`` T, and the step that shows it (None at T = 1).

    Logits are divided by T (a softmax or sigmoid at temperature T); for kl_divergence
    both distributions become softmax(log p / T), the soft targets of distillation.
    """
    raw = (options or {}).get("temperature") if isinstance(options, dict) else None
    if raw is None:
        return arrays, None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not (
            math.isfinite(raw) and raw > 0):
        raise ValueError(f"options.temperature must be a positive number, got {raw!r}")
    temperature = float(raw)
    if temperature == 1.0:
        return arrays, None
    if loss in ("cross_entropy", "cross_entropy_grad", "softmax_focal_loss",
                "binary_cross_entropy_with_logits", "sigmoid_focal_loss"):
        scaled = [np.asarray(arrays[0], dtype=np.float64) / temperature, *arrays[1:]]
        step = Step("temperature", r"z' = z / T", "z' = z / T",
                    {"T": temperature, "z'": scaled[0]},
                    "The logits divided by the temperature T: above 1 the softmax flattens, "
                    "below 1 it sharpens.")
        return scaled, step
    if loss == "kl_divergence":
        with np.errstate(divide="ignore"):
            scaled = [activations.softmax(np.log(np.asarray(a, dtype=np.float64)) / temperature)
                      for a in arrays]
        step = Step("temperature", r"p' = \mathrm{softmax}(\log p / T)",
                    "p' = softmax(log p / T)", {"T": temperature, "p'": scaled[0],
                                                 "q'": scaled[1]},
                    "Both distributions at temperature T: softmax(log p / T); T = 1 leaves "
                    "them as they are.")
        return scaled, step
    raise ValueError(f"options.temperature applies to losses of logits and to kl_divergence, "
                     f"not to {loss}")


def _arrays(loss: str, first: Any, second: Any) -> list[Any]:
    names = TRACERS[loss][1]
    given = [first, second][: len(names)]
    result = []
    for array_name, value in zip(names, given, strict=True):
        field = "logits" if array_name != "target" and array_name != "q" else "target"
        if value is None:
            raise ValueError(f"{loss} needs {array_name} (the request's {field!r})")
        converted = array(value, field)
        # class-index targets stay integers; every other array is floating (as the CLI reads)
        result.append(converted if array_name == "target" else
                      converted.astype(np.float64) if converted.dtype.kind in "biu" else converted)
    return result


def _lang(lang: Any) -> str:
    if not isinstance(lang, str):
        raise TypeError(f"lang must be 'en' or 'zh', got {lang!r}")
    return _i18n.check_lang(lang)


def safe_json(value: Any) -> Any:
    """``value`` with every non-finite float written as a string (JSON has no inf or NaN)."""
    if isinstance(value, dict):
        return {key: safe_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [safe_json(item) for item in value]
    if isinstance(value, np.ndarray):
        return safe_json(_jsonable(value))
    if isinstance(value, np.generic):
        return safe_json(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


# --- the endpoints ------------------------------------------------------------------------


def explain(request: dict[str, Any]) -> dict[str, Any]:
    """What ``crossent explain --format json`` prints for the request's loss, arrays and options.

    ``options.temperature`` (the playground's) adds a first step; ``lang`` picks the words.

    >>> answer = explain({"loss": "ce", "logits": [[1.4, 3.2, 5.0]], "target": [2]})
    >>> answer["function"], round(float(answer["value"]), 4)
    ('crossent.cross_entropy', 0.1762)
    """
    loss = _resolve(_name(request.get("loss", "cross_entropy")))
    lang = _lang(request.get("lang", "en"))
    options = _options(loss, request.get("options"))
    arrays = _arrays(loss, request.get("logits"), request.get("target"))
    arrays, step = _temperature(loss, arrays, request.get("options"))
    trace = _report.trace(loss, *arrays, lang="en", **options)
    if step is not None:
        trace.steps.insert(0, step)
        trace.options["temperature"] = step.values["T"]
    return _i18n.translate(trace, lang).to_dict()  # JSON already: Trace.to_dict writes inf as "inf"


def _prepared(request: dict[str, Any]) -> tuple[str, _Loss, list[Any], dict[str, Any]]:
    name, spec = _playground_loss(request.get("loss", "cross_entropy"))
    options = _options(name, request.get("options"))
    arrays = _arrays(name, request.get("logits"), request.get("target"))
    arrays, _ = _temperature(name, arrays, request.get("options"))
    return name, spec, arrays, options


def _probabilities(spec: _Loss, name: str, arrays: list[Any], options: dict[str, Any]) -> Any:
    moving = arrays[spec.moving]
    if spec.activation == "softmax":
        return activations.softmax(moving, axis=options.get("axis", -1))
    if spec.activation == "sigmoid":
        return activations.sigmoid(moving)
    if name == "nll_loss":
        return np.exp(moving)  # nll_loss takes log-probabilities
    return moving


def gradient(request: dict[str, Any]) -> dict[str, Any]:
    """The page's live numbers: probabilities, each position's loss, the loss, its gradient.

    ``grad`` is d loss / d (the edited array) for the request's reduction; ``grad_each``
    is each position's own gradient (reduction 'none'): p - y for plain cross-entropy.

    >>> answer = gradient({"loss": "ce", "logits": [[1.4, 3.2, 5.0]], "target": [2]})
    >>> [round(g, 4) for g in answer["grad_each"][0]]
    [0.0229, 0.1386, -0.1615]
    """
    name, spec, arrays, options = _prepared(request)
    each = {**options, "reduction": "none"} if spec.reduces else options
    result: dict[str, Any] = {
        "loss": name,
        "probs": _probabilities(spec, name, arrays, options),
        "value": spec.function(*arrays, **options),
        "each": spec.function(*arrays, **each),
        "grad": None,
        "grad_each": None,
    }
    if spec.gradient is not None:
        result["grad"] = spec.gradient(*arrays, **options)
        result["grad_each"] = spec.gradient(*arrays, **each)
    return safe_json(result)


def _position(shape: tuple[int, ...], row: Any, column: Any) -> tuple[int, ...]:
    for label, value in (("row", row), ("column", column)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{label} must be an integer index, got {value!r}")
    position: tuple[int, ...]
    if len(shape) == 1:
        shape, position = (1, shape[0]), (int(column),)
    else:
        position = (int(row), int(column))
    if len(shape) != 2 or not (0 <= row < shape[0] and 0 <= column < shape[1]):
        raise ValueError(f"(row, column) = ({row}, {column}) is outside the edited array of "
                         f"shape {shape}")
    return position


def loss_curve(request: dict[str, Any]) -> dict[str, Any]:
    """The loss as one entry of the edited array moves (the others held): the page's curve.

    Logits sweep ``value ± span`` (default 8); probabilities sweep (0, 1). ``points`` (default
    61) is at most 201. With reduction 'none' the curve is the moved position's own loss.

    >>> curve = loss_curve({"loss": "ce", "logits": [[0.0, 0.0]], "target": [0], "row": 0,
    ...                     "column": 0, "points": 3, "span": 1.0})
    >>> [round(v, 4) for v in curve["x"]], [round(v, 4) for v in curve["y"]]
    ([-1.0, 0.0, 1.0], [1.3133, 0.6931, 0.3133])
    """
    name, spec, arrays, options = _prepared(request)
    moving = np.array(arrays[spec.moving], dtype=np.float64)
    position = _position(moving.shape, request.get("row", 0), request.get("column", 0))
    points = request.get("points", 61)
    if isinstance(points, bool) or not isinstance(points, int) or not 2 <= points <= 201:
        raise ValueError(f"points must be an integer from 2 to 201, got {points!r}")
    span = request.get("span", 8.0)
    if isinstance(span, bool) or not isinstance(span, (int, float)) or not (
            math.isfinite(span) and 0 < span <= 1000):
        raise ValueError(f"span must be a number in (0, 1000], got {span!r}")
    current = float(moving[position])
    logits = spec.activation is not None or name == "nll_loss"
    if logits:
        centre = current if math.isfinite(current) else 0.0
        xs = np.linspace(centre - span, centre + span, points)
        if name == "nll_loss":
            xs = xs[xs <= 0] if np.any(xs <= 0) else xs  # log-probabilities are <= 0
    else:
        xs = np.linspace(0.0, 1.0, points + 2)[1:-1]  # probabilities, ends excluded
    values = []
    for x in xs:
        moved = moving.copy()
        moved[position] = x
        args = list(arrays)
        args[spec.moving] = moved
        value = np.asarray(spec.function(*args, **options), dtype=np.float64)
        values.append(float(value[position[: value.ndim]] if value.ndim else value))
    result: dict[str, Any] = {"loss": name, "position": list(position), "x": xs.tolist(),
                              "y": values, "current": current,
                              "value": _at(spec, arrays, options, position), "slope": None}
    if spec.gradient is not None:
        # with reduction 'none' the gradient is that of the sum, whose entry at the moved
        # position is the moved position's own slope (no other position depends on it)
        grad = np.asarray(spec.gradient(*arrays, **options), dtype=np.float64)
        result["slope"] = float(grad[position])
    return safe_json(result)


def _at(spec: _Loss, arrays: list[Any], options: dict[str, Any], position: tuple[int, ...]) -> float:
    value = np.asarray(spec.function(*arrays, **options), dtype=np.float64)
    return float(value[position[: value.ndim]] if value.ndim else value)


def numerics(request: dict[str, Any]) -> dict[str, Any]:
    """Softmax without the max shift in float16 and float32, next to crossent's stable form.

    The naive form exponentiates the logits as they are: exp overflows to inf once a logit
    passes log(largest float) (11.09 in float16, 88.72 in float32), and inf / inf is NaN.
    The stable form subtracts each row's maximum first, so every exponent is <= 0.

    >>> answer = numerics({"logits": [[12.0, 0.0]], "target": [0]})
    >>> float16 = answer["dtypes"][0]
    >>> float16["dtype"], float16["naive"], [round(p, 4) for p in float16["stable"][0]]
    ('float16', [['nan', 0.0]], [1.0, 0.0])
    """
    logits = _float(request.get("logits"), "logits")
    if logits.ndim != 2:
        raise ValueError(f"logits must be a matrix (rows of classes), got shape {logits.shape}")
    target = request.get("target")
    target_array = None if target is None else array(target, "target")
    if target_array is not None and target_array.dtype.kind not in "iu":
        target_array = None  # the panel shows the loss of class-index targets only
    answers = []
    for dtype in (np.float16, np.float32):
        values = logits.astype(dtype)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            # the naive softmax, on purpose: exp of the raw logits overflows
            exps = np.exp(values)
            sums = np.sum(exps, axis=-1, keepdims=True)
            naive = exps / sums
            shifted = activations._shifted(np, values)  # the stable form's first step
            answer: dict[str, Any] = {
                "dtype": np.dtype(dtype).name,
                "largest": float(np.finfo(dtype).max),
                "overflow_at": float(np.log(np.float64(np.finfo(dtype).max))),
                "exp": exps, "sum": sums[..., 0], "naive": naive,
                "shifted": shifted, "exp_shifted": np.exp(shifted),
                "stable": activations.softmax(values),
                "overflowed": bool(np.any(np.isinf(exps))),
                "naive_loss": None, "stable_loss": None,
            }
            if target_array is not None:
                picked = np.take_along_axis(
                    naive, np.clip(target_array, 0, values.shape[-1] - 1)[..., None], axis=-1)
                answer["naive_loss"] = -np.log(picked[..., 0])
                answer["stable_loss"] = losses.cross_entropy(values, target_array,
                                                             reduction="none")
        answers.append(answer)
    return safe_json({"dtypes": answers, "float64": activations.softmax(logits)})


def compare(request: dict[str, Any]) -> dict[str, Any]:
    """Every framework's value for the request (:func:`crossent.compare`), reasons in ``lang``.

    Covers cross_entropy (logits), nll_loss (its log-probabilities as probabilities) and
    the binary cross-entropies; the comparison uses each framework's mean without
    weights (options it cannot take are listed in ``ignored_options``). ``real`` runs the
    installed frameworks (seconds on the first call).

    >>> answer = compare({"loss": "ce", "logits": [[1.4, 3.2, 5.0]], "target": [2]})
    >>> answer["rows"][0]["convention"], round(answer["rows"][0]["value"], 4)
    ('crossent (native)', 0.1762)
    """
    from ..compare import compare as _compare

    name, spec = _playground_loss(request.get("loss", "cross_entropy"))
    lang = _lang(request.get("lang", "en"))
    if spec.compare is None:
        covered = ", ".join(key for key, value in LOSSES.items() if value.compare)
        raise ValueError(f"the comparison covers {covered}; got {name}")
    options = _options(name, request.get("options"))
    arrays = _arrays(name, request.get("logits"), request.get("target"))
    arrays, _ = _temperature(name, arrays, request.get("options"))
    family, inputs = spec.compare
    values = np.exp(arrays[0]) if name == "nll_loss" else arrays[0]
    real = request.get("real", False)
    if not isinstance(real, bool):
        raise TypeError(f"real must be true or false, got {real!r}")
    taken = {key: options[key] for key in ("label_smoothing", "ignore_index") if key in options}
    result = _compare(family, values, arrays[1], inputs=inputs,  # type: ignore[arg-type]
                      real=real, **taken).to_dict()
    result["ignored_options"] = sorted(
        key for key, value in options.items()
        if key not in taken and not (key == "reduction" and value == "mean"))
    result["lang"] = lang
    for row in result["rows"]:
        row["reason"] = _i18n.reasons(row["reason"], lang)
        row["real_status"] = _i18n.text(row["real_status"], lang)
    return safe_json(result)


# --- the seeds' examples and curves ---------------------------------------------------------


def _loadable(trace: Trace) -> dict[str, Any] | None:
    """The example as the page's editor can hold it (its loss, arrays, options), or None."""
    name = trace.function.removeprefix("crossent.")
    if name not in LOSSES or name not in TRACERS:
        return None
    arrays = TRACERS[name][1]
    if set(trace.inputs) != set(arrays):
        return None
    first, second = (trace.inputs[arrays[0]], trace.inputs[arrays[1]])
    options = {key: value for key, value in trace.options.items()
               if key in ("reduction", "label_smoothing", "ignore_index", "weight", "pos_weight",
                          "alpha", "gamma") and value is not None}
    return safe_json({"loss": name, "logits": first, "target": second, "options": options})


def examples(lang: Any = "en") -> list[dict[str, Any]]:
    """The seeds' worked examples: name, seed, title in ``lang``."""
    lang = _lang(lang)
    return [{"name": e.name, "seed": f"{e.seed:03d}", "title": _i18n.text(e.title, lang)}
            for e in _examples.EXAMPLES.values()]


def example(name: str, lang: Any = "en") -> dict[str, Any]:
    """The example's trace (``crossent explain --example NAME --format json``) and, where the
    editor can hold it, ``playground``: its loss, arrays and options."""
    lang = _lang(lang)
    trace = _examples.get(name)
    answer = _i18n.translate(trace, lang).to_dict()
    answer["playground"] = _loadable(trace)
    return answer


def plots(lang: Any = "en") -> list[dict[str, Any]]:
    """The seeds' curves (:mod:`crossent.plots`): name and description in ``lang``."""
    from .. import plots as _plots

    lang = _lang(lang)
    return [{"name": p.name, "description": _i18n.text(p.description, lang)}
            for p in _plots.PLOTS.values()]


def _plain(label: str) -> str:
    """A matplotlib mathtext label as plain text: ``$-p\\,\\log q$`` -> ``-p log q``."""
    for tex, plain in ((r"\,", " "), (r"\log", "log "), (r"\sigma", "σ"), (r"\max", "max"),
                       ("{", "("), ("}", ")"), ("$", "")):
        label = label.replace(tex, plain)
    label = " ".join(label.split())
    return label.replace("log (", "log(").replace("σ (", "σ(").replace("x y", "x y")


def plot(name: str, lang: Any = "en") -> dict[str, Any]:
    """The curves of the plot ``name`` as data (the page draws them): the figure crossent
    draws, read back line by line, its words in ``lang``."""
    from .. import plots as _plots

    lang = _lang(lang)
    with _MATPLOTLIB:
        figure = _plots.figure(name)
    axes = figure.axes[0]
    series = [{"label": _i18n.text(_plain(str(line.get_label())), lang),
               "x": np.asarray(line.get_xdata(), dtype=np.float64),
               "y": np.asarray(line.get_ydata(), dtype=np.float64)}
              for line in axes.get_lines() if not str(line.get_label()).startswith("_")]
    spec = _plots._get(name)
    return safe_json({
        "name": spec.name, "description": _i18n.text(spec.description, lang),
        "title": _i18n.text(_plain(axes.get_title()), lang),
        "xlabel": _i18n.text(_plain(axes.get_xlabel()), lang),
        "ylabel": _i18n.text(_plain(axes.get_ylabel()), lang),
        "xscale": axes.get_xscale(), "series": series,
    })


def formula(latex: Any) -> str:
    """``latex`` (a trace's formula) as an SVG image, rendered offline by matplotlib's mathtext."""
    if not isinstance(latex, str) or not latex.strip():
        raise ValueError("latex must be a formula such as '\\frac{1}{2}', got an empty string")
    if len(latex) > 400:
        raise ValueError(f"latex must be at most 400 characters, got {len(latex)}")
    with _MATPLOTLIB:
        try:
            # display-style fractions, as the HTML report draws them
            return latex_to_svg(latex.replace(r"\frac", r"\dfrac"))
        except (ValueError, RuntimeError, KeyError, IndexError) as error:
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            first = lines[-1] if lines else "it does not parse"
            raise ValueError(f"latex {latex!r} is not a formula matplotlib can draw: "
                             f"{first}") from None
