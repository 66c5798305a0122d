"""Traces of every loss, built by running the core functions on the input.

No formula is computed here a second time: each step's numbers come from a call
into :mod:`crossent.activations`, :mod:`crossent.losses`, :mod:`crossent.information`
or :mod:`crossent.grad` (including the private helpers the losses themselves use,
such as the target-mass array of the class-axis losses), plus indexing and the
arithmetic that *displays* a step (picking an entry, a ratio of two core values).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import activations, divergences, information, losses
from .. import grad as _grad
from .._array import as_array, as_float_array, quiet
from .._plan import plan_class, prepare_class
from ._trace import Step, Trace, to_numpy

# the trace functions are listed once, in crossent.explain.__all__


# --- shared pieces -------------------------------------------------------------------


def _np(value: Any) -> Any:
    out = to_numpy(value)
    return out if not isinstance(out, np.ndarray) or out.ndim else out[()]


def _class_parts(
    values: object, target: object, *, axis: int, weight: object, ignore_index: int | None,
    where: object, label_smoothing: float, name: str, weight_name: str = "weight",
) -> tuple[Any, np.ndarray, Any, np.ndarray | None]:
    """The core's own preparation of a class-axis loss: kind, target mass ``a``, divisor D, counted.

    ``a`` is returned with the class axis back where the caller put it.
    """
    inputs = prepare_class(
        values, target, axis=axis, weight=weight, ignore_index=ignore_index, where=where,
        name=name, weight_name=weight_name,
    )
    plan = plan_class(inputs, label_smoothing)
    coefficients = np.moveaxis(to_numpy(plan.coefficients), -1, inputs.axis)
    divisor = plan.divisor
    counted = None if inputs.counted is None else to_numpy(inputs.counted)
    return inputs.kind, coefficients, _np(divisor), counted


def _picked(log_probs: np.ndarray, target: np.ndarray, axis: int, counted: Any) -> np.ndarray:
    """``log_probs`` at the target class of each position (NaN where not counted)."""
    moved = np.moveaxis(log_probs, axis, -1)
    safe = np.where(counted, target, 0) if counted is not None else target
    safe = np.clip(safe, 0, moved.shape[-1] - 1)
    picked = np.take_along_axis(moved, safe[..., None].astype(np.int64), axis=-1)[..., 0]
    if counted is not None:
        picked = np.where(counted, picked, np.nan)
    return picked


def _options(**options: Any) -> dict[str, Any]:
    return {key: value for key, value in options.items() if value is not None}


def _reduction_step(
    reduction: str, per_position: Any, total: Any, divisor: Any, value: Any, divisor_meaning: str,
    symbol: str = r"\ell_i",
) -> Step:
    if reduction == "mean":
        return Step(
            "reduction (mean)",
            rf"L = \frac{{1}}{{D}}\sum_i {symbol}",
            "L = (sum of the losses) / D",
            {"sum": _np(total), "D": _np(divisor), "loss": _np(value)},
            f"The mean divides the summed loss by D, {divisor_meaning}.",
        )
    if reduction == "sum":
        return Step(
            "reduction (sum)", rf"L = \sum_i {symbol}", "L = sum of the losses",
            {"loss": _np(value)}, "The sum adds the losses of every counted position.",
        )
    return Step(
        "reduction (none)", rf"L_i = {symbol}", "L = the losses themselves",
        {"loss": _np(value)}, "No reduction: one loss per position is returned.",
    )


# --- cross_entropy and its gradient --------------------------------------------------------


@quiet
def cross_entropy(
    logits: Any,
    target: Any,
    *,
    axis: int = -1,
    weight: Any = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    where: Any = None,
) -> Trace:
    r"""Trace of :func:`crossent.cross_entropy`: softmax, log, target mass, loss, reduction.

    Takes exactly the arguments of :func:`crossent.cross_entropy`; the trace's ``value``
    is what that function returns.

    >>> from crossent import explain
    >>> trace = explain.cross_entropy([[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]], [2, 1])
    >>> [step.name for step in trace.steps]
    ['softmax', 'log-softmax', 'pick the target class', 'per-position loss', 'reduction (mean)']
    >>> round(float(trace.value), 4)
    1.1861
    """
    options = dict(
        axis=axis, weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing,
        reduction=reduction, where=where,
    )
    value = losses.cross_entropy(logits, target, **options)  # type: ignore[arg-type]
    per_position = losses.cross_entropy(logits, target, **{**options, "reduction": "none"})  # type: ignore[arg-type]
    total = losses.cross_entropy(logits, target, **{**options, "reduction": "sum"})  # type: ignore[arg-type]
    kind, mass, divisor, counted = _class_parts(
        logits, target, axis=axis, weight=weight, ignore_index=ignore_index, where=where,
        label_smoothing=label_smoothing, name="logits",
    )
    probs = _np(activations.softmax(logits, axis=axis))
    log_probs = _np(activations.log_softmax(logits, axis=axis))
    target_np = _np(as_array(target))
    plain = kind == "index" and weight is None and label_smoothing == 0
    steps = [
        Step(
            "softmax", r"p_{ic} = \frac{e^{z_{ic}}}{\sum_k e^{z_{ik}}}",
            "p = exp(z) / sum_k exp(z_k)", {"p": probs},
            "Softmax turns each row of logits into probabilities that sum to 1.",
        ),
        Step(
            "log-softmax",
            r"\log p_{ic} = z_{ic} - m_i - \log\sum_k e^{z_{ik} - m_i},\ m_i = \max_k z_{ik}",
            "log p = z - max z - log sum_k exp(z_k - max z)", {"log p": log_probs},
            "The log of the probabilities, computed from shifted logits so no exp overflows.",
        ),
    ]
    if counted is not None and (where is not None or not np.all(counted)):
        steps.append(Step(
            "counted positions",
            r"\mathrm{counted}_i = [y_i \neq \mathrm{ignore}] \wedge \mathrm{where}_i",
            "counted = (target != ignore_index) and where", {"counted": counted},
            "Positions with the ignore_index target or where=False add nothing and are not "
            "counted by the mean.",
        ))
    if kind == "index":
        steps.append(Step(
            "pick the target class", r"\log p_{i,y_i}", "log p[i, y_i]",
            {"target": target_np, "log p[y]": _picked(log_probs, target_np, axis, counted)},
            "With class-index targets only the log-probability of the true class matters "
            "(what nll_loss picks).",
        ))
    if not plain:
        if kind == "index":
            latex = (r"a_{ic} = (1-\varepsilon)\,w_{y_i}[c = y_i] + \frac{\varepsilon}{C}\,w_c"
                     if label_smoothing else r"a_{ic} = w_{y_i}\,[c = y_i]")
            text = ("a = (1 - eps) * w[y] * one_hot(y) + eps / C * w" if label_smoothing
                    else "a = w[y] * one_hot(y)")
        else:
            latex = (r"a_{ic} = w_c\left((1-\varepsilon)\,t_{ic} + \frac{\varepsilon}{C}\right)"
                     if label_smoothing else r"a_{ic} = w_c\,t_{ic}")
            text = ("a = w * ((1 - eps) * t + eps / C)" if label_smoothing else "a = w * t")
        if weight is None:
            latex = latex.replace(r"\,w_{y_i}", "").replace(r"\,w_c", "").replace("w_c", "")
            text = text.replace(" * w[y]", "").replace(" * w", "").replace("w * ", "")
        steps.append(Step(
            "target mass", latex, text, {"a": mass},
            "The weight each class's log-probability receives: the target with label "
            "smoothing and class weights folded in.",
        ))
    if plain:
        latex, text = r"\ell_i = -\log p_{i,y_i}", "loss_i = -log p[i, y_i]"
    else:
        latex, text = r"\ell_i = -\sum_c a_{ic}\,\log p_{ic}", "loss_i = -sum_c a_ic * log p_ic"
    steps.append(Step(
        "per-position loss", latex, text, {"loss": _np(per_position)},
        "Each position's loss is the negative log-probability the model gives the target.",
    ))
    if kind == "index":
        divisor_meaning = (
            "the summed class weight of the counted targets" if weight is not None
            else "the number of counted positions"
        )
    else:
        divisor_meaning = "the number of counted positions (weights do not enter it)"
    steps.append(_reduction_step(reduction, per_position, total, divisor, value, divisor_meaning))
    return Trace(
        "cross-entropy from logits", "crossent.cross_entropy",
        {"logits": _np(as_float_array(logits)), "target": target_np},
        _options(**options), steps, _np(value),
    )


@quiet
def cross_entropy_grad(
    logits: Any,
    target: Any,
    *,
    axis: int = -1,
    weight: Any = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    where: Any = None,
) -> Trace:
    r"""Trace of :func:`crossent.grad.cross_entropy`: ∂L/∂z = softmax − one-hot (seed 001).

    >>> from crossent import explain
    >>> explain.cross_entropy_grad([[1.4, 3.2, 5.0]], [2]).value
    array([[ 0.0229,  0.1386, -0.1615]])
    """
    options = dict(
        axis=axis, weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing,
        reduction=reduction, where=where,
    )
    value = _grad.cross_entropy(logits, target, **options)
    per_position = _grad.cross_entropy(logits, target, **{**options, "reduction": "none"})
    kind, mass, divisor, counted = _class_parts(
        logits, target, axis=axis, weight=weight, ignore_index=ignore_index, where=where,
        label_smoothing=label_smoothing, name="logits",
    )
    probs = _np(activations.softmax(logits, axis=axis))
    plain = kind == "index" and weight is None and label_smoothing == 0
    steps = [
        Step(
            "softmax", r"p_{ic} = \frac{e^{z_{ic}}}{\sum_k e^{z_{ik}}}",
            "p = exp(z) / sum_k exp(z_k)", {"p": probs},
            "The forward pass: probabilities from the logits.",
        ),
        Step(
            "one-hot target" if plain else "target mass",
            r"a_{ic} = [c = y_i]" if plain
            else r"a_{ic}\ \mathrm{(target\ with\ weights\ and\ smoothing)}",
            "a = one_hot(y)" if plain else "a = target mass (weights, smoothing folded in)",
            {"a": mass},
            "The target as a distribution over classes.",
        ),
        Step(
            "gradient per position",
            r"\frac{\partial \ell_i}{\partial z_{ic}} = p_{ic} - [c = y_i]" if plain
            else (r"\frac{\partial \ell_i}{\partial z_{ic}} = "
                  r"\left(\sum_k a_{ik}\right) p_{ic} - a_{ic}"),
            "d loss_i / d z = p - one_hot(y)" if plain else "d loss_i / d z = (sum_k a_k) p - a",
            {"dloss/dz": _np(per_position)},
            "The chain rule through log and softmax collapses to prediction minus target.",
        ),
    ]
    if reduction == "mean":
        steps.append(Step(
            "scale by the mean", r"\frac{\partial L}{\partial z} = \frac{1}{D}\,"
            r"\frac{\partial \ell_i}{\partial z}", "dL/dz = (d loss_i / dz) / D",
            {"D": divisor, "dL/dz": _np(value)},
            "The mean divides every position's gradient by the same D.",
        ))
    else:
        steps.append(Step(
            f"reduction ({reduction})", r"\frac{\partial L}{\partial z_i} = "
            r"\frac{\partial \ell_i}{\partial z_i}", "dL/dz = d loss_i / dz",
            {"dL/dz": _np(value)}, "A sum (or no reduction) leaves each position's gradient as is.",
        ))
    return Trace(
        "gradient of cross-entropy with respect to the logits", "crossent.grad.cross_entropy",
        {"logits": _np(as_float_array(logits)), "target": _np(as_array(target))},
        _options(**options), steps, _np(value),
    )


# --- nll_loss --------------------------------------------------------------------------


@quiet
def nll_loss(
    log_probs: Any,
    target: Any,
    *,
    axis: int = -1,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    where: Any = None,
) -> Trace:
    r"""Trace of :func:`crossent.nll_loss`: pick the target's entry, negate, reduce.

    >>> from crossent import explain
    >>> explain.nll_loss([[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]], [2, 1], reduction="none").value
    array([-0.5, -0.4])
    """
    options = dict(axis=axis, weight=weight, ignore_index=ignore_index, reduction=reduction,
                   where=where)
    value = losses.nll_loss(log_probs, target, **options)  # type: ignore[arg-type]
    per_position = losses.nll_loss(log_probs, target, **{**options, "reduction": "none"})  # type: ignore[arg-type]
    total = losses.nll_loss(log_probs, target, **{**options, "reduction": "sum"})  # type: ignore[arg-type]
    kind, mass, divisor, counted = _class_parts(
        log_probs, target, axis=axis, weight=weight, ignore_index=ignore_index, where=where,
        label_smoothing=0.0, name="log_probs",
    )
    values = _np(as_float_array(log_probs))
    target_np = _np(as_array(target))
    steps = []
    if counted is not None and (where is not None or not np.all(counted)):
        steps.append(Step(
            "counted positions",
            r"\mathrm{counted}_i = [y_i \neq \mathrm{ignore}] \wedge \mathrm{where}_i",
            "counted = (target != ignore_index) and where", {"counted": counted},
            "Ignored or masked positions add nothing and are not counted by the mean.",
        ))
    if kind == "index":
        steps.append(Step(
            "pick the target entry", r"x_{i,y_i}", "x[i, y_i]",
            {"target": target_np, "x[y]": _picked(values, target_np, axis, counted)},
            "nll_loss does no softmax and no log: it only picks the target's entry.",
        ))
        latex, text = (r"\ell_i = -w_{y_i}\,x_{i,y_i}", "loss_i = -w[y_i] * x[i, y_i]") if (
            weight is not None) else (r"\ell_i = -x_{i,y_i}", "loss_i = -x[i, y_i]")
    else:
        steps.append(Step(
            "target mass", r"a_{ic} = w_c\,t_{ic}", "a = w * t", {"a": mass},
            "Probability targets weight every class's entry by its target probability.",
        ))
        latex, text = r"\ell_i = -\sum_c a_{ic}\,x_{ic}", "loss_i = -sum_c a_ic * x_ic"
    steps.append(Step(
        "negate", latex, text, {"loss": _np(per_position)},
        "The loss is the picked (log-probability) entry with its sign flipped.",
    ))
    meaning = ("the summed class weight of the counted targets" if weight is not None
               and kind == "index" else "the number of counted positions")
    steps.append(_reduction_step(reduction, per_position, total, divisor, value, meaning))
    return Trace(
        "negative log-likelihood", "crossent.nll_loss",
        {"log_probs": values, "target": target_np}, _options(**options), steps, _np(value),
    )


# --- binary losses ------------------------------------------------------------------------


def _element_divisor(values: Any, target: Any, where: Any, name: str) -> Any:
    return _np(losses._prepare_elements(values, target, where=where, name=name).divisor)


@quiet
def binary_cross_entropy(
    probs: Any,
    target: Any,
    *,
    weight: Any = None,
    reduction: str = "mean",
    where: Any = None,
) -> Trace:
    r"""Trace of :func:`crossent.binary_cross_entropy`: clamped logs, per-element loss, reduction.

    >>> from crossent import explain
    >>> explain.binary_cross_entropy([[0.3], [0.9]], [[1.0], [0.0]], reduction="none").value
    array([[1.204 ], [2.3026]])
    """
    options = dict(weight=weight, reduction=reduction, where=where)
    value = losses.binary_cross_entropy(probs, target, **options)  # type: ignore[arg-type]
    per_element = losses.binary_cross_entropy(probs, target, **{**options, "reduction": "none"})  # type: ignore[arg-type]
    total = losses.binary_cross_entropy(probs, target, **{**options, "reduction": "sum"})  # type: ignore[arg-type]
    p = _np(as_float_array(probs))
    t = _np(as_array(target))
    log_p, _ = losses._clamped_log(np, np.asarray(p, dtype=np.float64), np.log)
    log_not_p, _ = losses._clamped_log(np, np.asarray(p, dtype=np.float64), lambda x: np.log1p(-x))
    weighted = "w\\," if weight is not None else ""
    steps = [
        Step(
            "log p and log(1 - p)", r"\max(\log p, -100),\ \max(\log(1-p), -100)",
            "max(log p, -100), max(log(1 - p), -100)", {"log p": log_p, "log(1-p)": log_not_p},
            "The two log-probabilities, clamped at -100 as PyTorch does so p = 0 or 1 stays "
            "finite.",
        ),
        Step(
            "per-element loss",
            rf"\ell = -{weighted}\left[t \log p + (1-t) \log(1-p)\right]",
            ("loss = -w [t log p + (1 - t) log(1 - p)]" if weight is not None
             else "loss = -[t log p + (1 - t) log(1 - p)]"),
            {"loss": _np(per_element)},
            "Each element is its own yes/no question: the log-probability of the observed answer, "
            "negated.",
        ),
        _reduction_step(reduction, per_element, total, _element_divisor(p, t, where, "probs"),
                        value, "the number of counted elements"),
    ]
    return Trace(
        "binary cross-entropy from probabilities", "crossent.binary_cross_entropy",
        {"probs": p, "target": t}, _options(**options), steps, _np(value),
    )


@quiet
def binary_cross_entropy_with_logits(
    logits: Any,
    target: Any,
    *,
    weight: Any = None,
    pos_weight: Any = None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    where: Any = None,
) -> Trace:
    r"""Trace of :func:`crossent.binary_cross_entropy_with_logits`, showing seed 002's stable form.

    .. math:: \ell = \max(x, 0) - x z + \log(1 + e^{-|x|})

    >>> from crossent import explain
    >>> trace = explain.binary_cross_entropy_with_logits([0.7], [0.0333333], reduction="none")
    >>> trace.value
    array([1.0798527])
    """
    options = dict(weight=weight, pos_weight=pos_weight, label_smoothing=label_smoothing,
                   reduction=reduction, where=where)
    value = losses.binary_cross_entropy_with_logits(logits, target, **options)  # type: ignore[arg-type]
    per_element = losses.binary_cross_entropy_with_logits(
        logits, target, **{**options, "reduction": "none"})  # type: ignore[arg-type]
    total = losses.binary_cross_entropy_with_logits(
        logits, target, **{**options, "reduction": "sum"})  # type: ignore[arg-type]
    x = _np(as_float_array(logits))
    t = _np(as_array(target))
    steps = [Step(
        "sigmoid", r"\sigma(x) = \frac{1}{1 + e^{-x}}", "sigma(x) = 1 / (1 + exp(-x))",
        {"sigma(x)": _np(activations.sigmoid(x))},
        "The sigmoid gives each element's probability of the positive answer.",
    )]
    z = t
    if label_smoothing:
        z = _np(losses.smooth_binary_target(np.asarray(t, dtype=np.float64), label_smoothing))
        steps.append(Step(
            "smoothed target", r"z = t\,(1-\varepsilon) + \frac{\varepsilon}{2}",
            "z = t (1 - eps) + eps / 2", {"z": z},
            "Binary label smoothing pulls every target towards 1/2 (Keras's rule).",
        ))
    relu = np.maximum(x, 0.0)
    # log(1 + e^{-|x|}) = -log σ(|x|): the core's stable log-sigmoid
    log_term = -_np(activations.log_sigmoid(np.abs(x)))
    steps.append(Step(
        "stable form (seed 002)", r"\max(x, 0),\quad x\,z,\quad \log(1 + e^{-|x|})",
        "max(x, 0), x * z, log(1 + exp(-|x|))",
        {"max(x,0)": relu, "x*z": x * np.asarray(z, dtype=np.float64),
         "log(1+exp(-|x|))": log_term},
        "-z log sigma(x) - (1-z) log(1 - sigma(x)) rewritten so no exponential of a large "
        "positive number is ever taken.",
    ))
    weighted = weight is not None or pos_weight is not None
    steps.append(Step(
        "per-element loss",
        (r"\ell = w\left[p_w\,z\,\log(1+e^{-x}) + (1-z)\log(1+e^{x})\right]" if weighted
         else r"\ell = \max(x, 0) - x\,z + \log(1 + e^{-|x|})"),
        ("loss = w [pw z softplus(-x) + (1 - z) softplus(x)]" if weighted
         else "loss = max(x, 0) - x z + log(1 + exp(-|x|))"),
        {"loss": _np(per_element)},
        "The binary cross-entropy of each element, exact even for |x| in the thousands.",
    ))
    steps.append(_reduction_step(reduction, per_element, total,
                                 _element_divisor(x, t, where, "logits"), value,
                                 "the number of counted elements"))
    return Trace(
        "binary cross-entropy from logits (sigmoid + BCE, fused and stable)",
        "crossent.binary_cross_entropy_with_logits", {"logits": x, "target": t},
        _options(**options), steps, _np(value),
    )


# --- focal losses ------------------------------------------------------------------------


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator != 0, numerator / np.where(denominator != 0, denominator, 1),
                        np.nan)


@quiet
def sigmoid_focal_loss(
    logits: Any,
    target: Any,
    *,
    alpha: float | None = 0.25,
    gamma: float = 2.0,
    reduction: str = "mean",
    where: Any = None,
) -> Trace:
    r"""Trace of :func:`crossent.sigmoid_focal_loss`: BCE, the focal factor, the loss.

    >>> from crossent import explain
    >>> explain.sigmoid_focal_loss([0.0, 2.0], [1.0, 0.0], reduction="none").value
    array([0.0433217 , 1.23755863])
    """
    options = dict(alpha=alpha, gamma=gamma, reduction=reduction, where=where)
    value = losses.sigmoid_focal_loss(logits, target, **options)  # type: ignore[arg-type]
    per_element = _np(losses.sigmoid_focal_loss(logits, target, **{**options, "reduction": "none"}))  # type: ignore[arg-type]
    total = losses.sigmoid_focal_loss(logits, target, **{**options, "reduction": "sum"})  # type: ignore[arg-type]
    x = _np(as_float_array(logits))
    t = _np(as_array(target))
    bce = _np(losses.binary_cross_entropy_with_logits(x, t, reduction="none"))
    steps = [
        Step("sigmoid", r"p = \sigma(x)", "p = sigma(x)", {"p": _np(activations.sigmoid(x))},
             "The probability of the positive answer."),
        Step("binary cross-entropy", r"\mathrm{BCE} = -\log p_t,\ p_t = p\,t + (1-p)(1-t)",
             "BCE = -log p_t, p_t = p t + (1 - p)(1 - t)", {"BCE": bce},
             "The plain binary cross-entropy of each element (from logits, stable)."),
        Step("focal factor", r"\alpha_t\,(1 - p_t)^{\gamma} = \ell / \mathrm{BCE}",
             "alpha_t (1 - p_t)^gamma = focal loss / BCE", {"factor": _ratio(per_element, bce)},
             "Well-classified elements (p_t near 1) are down-weighted by (1 - p_t)^gamma."),
        Step("per-element loss", r"\ell = \alpha_t\,(1 - p_t)^{\gamma}\,\mathrm{BCE}",
             "loss = alpha_t (1 - p_t)^gamma BCE", {"loss": per_element},
             "The focal loss of each element, as torchvision computes it."),
        _reduction_step(reduction, per_element, total, _element_divisor(x, t, where, "logits"),
                        value, "the number of counted elements"),
    ]
    return Trace("sigmoid focal loss", "crossent.sigmoid_focal_loss",
                 {"logits": x, "target": t}, _options(**options), steps, _np(value))


@quiet
def softmax_focal_loss(
    logits: Any,
    target: Any,
    *,
    axis: int = -1,
    alpha: Any = None,
    gamma: float = 2.0,
    reduction: str = "mean",
    where: Any = None,
) -> Trace:
    r"""Trace of :func:`crossent.softmax_focal_loss`: softmax, CE, focal factor, loss.

    >>> from crossent import explain
    >>> explain.softmax_focal_loss([[2.0, 0.0, 0.0]], [0], reduction="none").value
    array([0.01086933])
    """
    options = dict(axis=axis, alpha=alpha, gamma=gamma, reduction=reduction, where=where)
    value = losses.softmax_focal_loss(logits, target, **options)  # type: ignore[arg-type]
    per_position = _np(losses.softmax_focal_loss(
        logits, target, **{**options, "reduction": "none"}))  # type: ignore[arg-type]
    total = losses.softmax_focal_loss(logits, target, **{**options, "reduction": "sum"})  # type: ignore[arg-type]
    cross = _np(losses.cross_entropy(logits, target, axis=axis, where=where, reduction="none"))
    # the positions the mean counts, from the core's own preparation (alpha does not enter)
    _, _, divisor, _ = _class_parts(
        logits, target, axis=axis, weight=None, ignore_index=None, where=where,
        label_smoothing=0.0, name="logits",
    )
    steps = [
        Step("softmax", r"p_{ic} = \frac{e^{z_{ic}}}{\sum_k e^{z_{ik}}}",
             "p = softmax(z)", {"p": _np(activations.softmax(logits, axis=axis))},
             "Probabilities from the logits."),
        Step("cross-entropy", r"\mathrm{CE}_i = -\sum_c t_{ic} \log p_{ic}",
             "CE_i = -sum_c t_ic log p_ic", {"CE": cross},
             "The plain cross-entropy of each position."),
        Step("focal factor", r"\alpha\,(1 - p_{i,y_i})^{\gamma} = \ell_i / \mathrm{CE}_i",
             "alpha (1 - p_y)^gamma = focal loss / CE", {"factor": _ratio(per_position, cross)},
             "Confident correct predictions are down-weighted by (1 - p)^gamma."),
        Step("per-position loss",
             r"\ell_i = -\sum_c \alpha_c\,t_{ic}\,(1-p_{ic})^{\gamma}\log p_{ic}",
             "loss_i = -sum_c alpha_c t_ic (1 - p_ic)^gamma log p_ic", {"loss": per_position},
             "The focal loss of each position."),
        _reduction_step(reduction, per_position, total, divisor, value,
                        "the number of counted positions"),
    ]
    return Trace("softmax focal loss", "crossent.softmax_focal_loss",
                 {"logits": _np(as_float_array(logits)), "target": _np(as_array(target))},
                 _options(**options), steps, _np(value))


# --- information (probability space) -------------------------------------------------------


def _unit(base: float) -> str:
    return "bits" if base == 2 else "nats" if base == math.e else f"base-{base:g} units"


@quiet
def entropy(p: Any, *, axis: int = -1, base: float = math.e) -> Trace:
    r"""Trace of :func:`crossent.information.entropy`: each outcome's information, weighted, summed.

    >>> from crossent import explain
    >>> float(explain.entropy([0.5, 0.5], base=2).value)
    1.0
    """
    info_each = _np(information.self_information(p, base=base))
    probs = _np(as_float_array(p))
    value = _np(information.entropy(p, axis=axis, base=base))
    # each outcome's term -p log p: the cross-entropy of p with itself over one outcome
    terms = _np(information.cross_entropy(probs[..., None], probs[..., None], base=base))
    steps = [
        Step("information", r"I(x) = -\log_b p(x)", "I(x) = -log_b p(x)", {"I": info_each},
             f"The surprise of each outcome in {_unit(base)}: rare outcomes carry much "
             "information."),
        Step("weighted terms", r"-p(x)\log_b p(x)", "-p(x) log_b p(x)", {"-p log p": terms},
             "Each outcome's information weighted by how often it happens (0 log 0 = 0)."),
        Step("entropy", r"H(p) = -\sum_x p(x)\log_b p(x)", "H(p) = -sum_x p(x) log_b p(x)",
             {"H": value}, "The expected information: the average surprise of the distribution."),
    ]
    return Trace(f"entropy in {_unit(base)}", "crossent.information.entropy", {"p": probs},
                 {"axis": axis, "base": base}, steps, value)


@quiet
def kl_divergence(p: Any, q: Any, *, axis: int = -1, base: float = math.e) -> Trace:
    r"""Trace of :func:`crossent.information.kl_divergence`: cross-entropy minus entropy.

    >>> from crossent import explain
    >>> round(float(explain.kl_divergence([0.5, 0.5], [0.9, 0.1]).value), 6)
    0.510826
    """
    cross = _np(information.cross_entropy(p, q, axis=axis, base=base))
    own = _np(information.entropy(p, axis=axis, base=base))
    value = _np(information.kl_divergence(p, q, axis=axis, base=base))
    steps = [
        Step("cross-entropy", r"H(p, q) = -\sum_x p(x)\log_b q(x)",
             "H(p, q) = -sum_x p(x) log_b q(x)", {"H(p,q)": cross},
             "The average code length when outcomes of p are coded with q's optimal code."),
        Step("entropy", r"H(p) = -\sum_x p(x)\log_b p(x)", "H(p) = -sum_x p(x) log_b p(x)",
             {"H(p)": own}, "The shortest possible average code length for p."),
        Step("KL divergence",
             r"D_{KL}(p\,\|\,q) = \sum_x p(x)\log_b\frac{p(x)}{q(x)} = H(p,q) - H(p)",
             "KL(p || q) = sum_x p log(p / q) = H(p, q) - H(p)", {"KL": value},
             "The extra length paid for using q instead of p; zero exactly when q = p."),
    ]
    return Trace(f"KL divergence in {_unit(base)}", "crossent.information.kl_divergence",
                 {"p": _np(as_float_array(p)), "q": _np(as_float_array(q))},
                 {"axis": axis, "base": base}, steps, value)


@quiet
def softmax_inverse(p: Any, *, axis: int = -1) -> Trace:
    r"""Trace of :func:`crossent.softmax_inverse` (seed 000's "reverse softmax").

    >>> from crossent import explain
    >>> explain.softmax_inverse([0.8, 0.1, 0.1]).value
    array([ 1.38629436, -0.69314718, -0.69314718])
    """
    probs = _np(as_float_array(p))
    log_p = -_np(information.self_information(probs))
    value = _np(activations.softmax_inverse(p, axis=axis))
    shift = np.mean(log_p - value, axis=axis)  # constant along the axis: log p - z
    steps = [
        Step("log p", r"\log p_j", "log p_j", {"log p": log_p},
             "Logits are log-probabilities up to a constant shared by every class."),
        Step("centre", r"z_j = \log p_j - \frac{1}{|S|}\sum_{k \in S}\log p_k",
             "z_j = log p_j - mean_k log p_k (over classes with p_k > 0)",
             {"mean log p": shift, "z": value},
             "Softmax ignores a common shift, so the inverse picks the logits with mean zero."),
        Step("check", r"\mathrm{softmax}(z) = p", "softmax(z) = p",
             {"softmax(z)": _np(activations.softmax(value, axis=axis))},
             "Softmax of the recovered logits gives back the probabilities."),
    ]
    return Trace("reverse softmax: logits from probabilities", "crossent.softmax_inverse",
                 {"p": probs}, {"axis": axis}, steps, value)


# --- divergences between a student's and a teacher's logits (distillation) -----------------


def _tempered(student_logits: Any, teacher_logits: Any, axis: int, temperature: Any
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Step]:
    """Both logits as NumPy, their softmaxes at temperature T, and the step showing them."""
    student = _np(as_float_array(student_logits))
    teacher = _np(as_float_array(teacher_logits))
    temperature = float(temperature)
    student_probs = _np(activations.softmax(student / temperature, axis=axis))
    teacher_probs = _np(activations.softmax(teacher / temperature, axis=axis))
    step = Step("softmax at temperature T",
                r"p_s = \mathrm{softmax}(z_s / T),\quad p_t = \mathrm{softmax}(z_t / T)",
                "p_s = softmax(z_s / T), p_t = softmax(z_t / T)",
                {"T": temperature, "p_s": student_probs, "p_t": teacher_probs},
                "The student's and the teacher's distributions; a higher T flattens both.")
    return student, teacher, student_probs, teacher_probs, step


def _divergence_reduction(function: Any, student: np.ndarray, teacher: np.ndarray,
                          reduction: str, per_distribution: Any, **options: Any) -> Step:
    value = function(student, teacher, reduction=reduction, **options)
    total = np.sum(per_distribution)
    mode = "mean" if reduction == "batchmean" else reduction
    divisor = max(np.size(per_distribution), 0)
    return _reduction_step(mode, per_distribution, total, divisor, value,
                           "the number of distributions")


@quiet
def kl_divergence_with_logits(
    student_logits: Any, teacher_logits: Any, *, axis: int = -1, temperature: float = 1.0,
    reverse: bool = False, reduction: str = "batchmean",
) -> Trace:
    r"""Trace of :func:`crossent.kl_divergence_with_logits`: the seeds' identity
    H(p, q) = H(p) + KL(p ‖ q), with the teacher as p (the student with ``reverse=True``).

    >>> import math
    >>> from crossent import explain
    >>> trace = explain.kl_divergence_with_logits([math.log(0.9), math.log(0.1)], [0.0, 0.0])
    >>> round(float(trace.value), 6)
    0.510826
    """
    options: dict[str, Any] = {"axis": axis, "temperature": temperature, "reverse": reverse}
    student, teacher, student_probs, teacher_probs, first = _tempered(
        student_logits, teacher_logits, axis, temperature)
    reference, model = (student_probs, teacher_probs) if reverse else (teacher_probs,
                                                                       student_probs)
    cross = _np(information.cross_entropy(reference, model, axis=axis))
    own = _np(information.entropy(reference, axis=axis))
    per = _np(divergences.kl_divergence_with_logits(student, teacher, reduction="none",
                                                    **options))
    p, q = (r"p_s", r"p_t") if reverse else (r"p_t", r"p_s")
    words = ("the student's", "the teacher's") if reverse else ("the teacher's", "the student's")
    steps = [
        first,
        Step("cross-entropy", rf"H({p}, {q}) = -\sum_c {p} \log {q}",
             f"H({p}, {q}) = -sum_c {p} log {q}", {"H(p,q)": cross},
             f"The cross-entropy of {words[1]} distribution against {words[0]}."),
        Step("entropy", rf"H({p}) = -\sum_c {p}\log {p}", f"H({p}) = -sum_c {p} log {p}",
             {"H(p)": own}, f"The entropy of {words[0]} distribution (0 for a one-hot one)."),
        Step("KL divergence", rf"D_{{KL}}({p}\,\|\,{q}) = H({p}, {q}) - H({p})",
             f"KL({p} || {q}) = H({p}, {q}) - H({p})", {"KL": per},
             "The seeds' identity: cross-entropy = entropy + KL divergence, per distribution."),
        _divergence_reduction(divergences.kl_divergence_with_logits, student, teacher, reduction,
                              per, **options),
    ]
    title = "reverse KL divergence from logits" if reverse else "KL divergence from logits"
    return Trace(title, "crossent.kl_divergence_with_logits",
                 {"student_logits": student, "teacher_logits": teacher},
                 {**options, "reduction": reduction}, steps, steps[-1].values["loss"])


@quiet
def jensen_shannon_divergence(
    student_logits: Any, teacher_logits: Any, *, beta: float = 0.5, axis: int = -1,
    temperature: float = 1.0, reduction: str = "batchmean",
) -> Trace:
    r"""Trace of :func:`crossent.jensen_shannon_divergence`: the mixture, then two KLs.

    >>> from crossent import explain
    >>> round(float(explain.jensen_shannon_divergence([0.0, -float("inf")],
    ...                                                [-float("inf"), 0.0]).value), 6)
    0.693147
    """
    options: dict[str, Any] = {"beta": beta, "axis": axis, "temperature": temperature}
    student, teacher, student_probs, teacher_probs, first = _tempered(
        student_logits, teacher_logits, axis, temperature)
    per = _np(divergences.jensen_shannon_divergence(student, teacher, reduction="none",
                                                    **options))
    steps = [first]
    if float(beta) in (0.0, 1.0):
        reference, model = ("p_t", "p_s") if float(beta) == 0.0 else ("p_s", "p_t")
        steps.append(Step("end point", rf"\mathrm{{JSD}}_{{{float(beta):g}}} = "
                          rf"D_{{KL}}({reference}\,\|\,{model})",
                          f"JSD = KL({reference} || {model})", {"JSD": per},
                          "At beta = 0 and 1 the generalised JSD is one of the two KL "
                          "divergences (Liger-Kernel's definition)."))
    else:
        mixture = float(beta) * teacher_probs + (1.0 - float(beta)) * student_probs
        steps += [
            Step("mixture", r"M = \beta\,p_t + (1 - \beta)\,p_s",
                 "M = beta p_t + (1 - beta) p_s", {"beta": float(beta), "M": mixture},
                 "The distribution between the two, weighted by beta."),
            Step("two KL divergences", r"D_{KL}(p_t\,\|\,M),\quad D_{KL}(p_s\,\|\,M)",
                 "KL(p_t || M), KL(p_s || M)",
                 {"KL(p_t||M)": _np(information.kl_divergence(teacher_probs, mixture, axis=axis)),
                  "KL(p_s||M)": _np(information.kl_divergence(student_probs, mixture,
                                                              axis=axis))},
                 "How far each distribution is from the mixture."),
            Step("JSD", r"\mathrm{JSD}_\beta = \beta\,D_{KL}(p_t\|M) + (1-\beta)\,D_{KL}(p_s\|M)",
                 "JSD = beta KL(p_t || M) + (1 - beta) KL(p_s || M)", {"JSD": per},
                 "The weighted sum of the two: symmetric at beta = 0.5, at most log 2."),
        ]
    steps.append(_divergence_reduction(divergences.jensen_shannon_divergence, student, teacher,
                                       reduction, per, **options))
    return Trace("generalised Jensen-Shannon divergence from logits",
                 "crossent.jensen_shannon_divergence",
                 {"student_logits": student, "teacher_logits": teacher},
                 {**options, "reduction": reduction}, steps, steps[-1].values["loss"])


@quiet
def total_variation_distance(
    student_logits: Any, teacher_logits: Any, *, axis: int = -1, temperature: float = 1.0,
    reduction: str = "batchmean",
) -> Trace:
    r"""Trace of :func:`crossent.total_variation_distance`: half the summed absolute difference.

    >>> import math
    >>> from crossent import explain
    >>> trace = explain.total_variation_distance([math.log(0.9), math.log(0.1)], [0.0, 0.0])
    >>> round(float(trace.value), 6)
    0.4
    """
    options: dict[str, Any] = {"axis": axis, "temperature": temperature}
    student, teacher, student_probs, teacher_probs, first = _tempered(
        student_logits, teacher_logits, axis, temperature)
    per = _np(divergences.total_variation_distance(student, teacher, reduction="none",
                                                   **options))
    steps = [
        first,
        Step("difference", r"|p_{t,c} - p_{s,c}|", "|p_t - p_s|",
             {"|p_t - p_s|": np.abs(teacher_probs - student_probs)},
             "How much probability each class would have to move."),
        Step("TVD", r"\mathrm{TVD} = \tfrac12 \sum_c |p_{t,c} - p_{s,c}|",
             "TVD = 1/2 sum_c |p_t - p_s|", {"TVD": per},
             "Half the total: the probability mass that differs, between 0 and 1."),
        _divergence_reduction(divergences.total_variation_distance, student, teacher, reduction,
                              per, **options),
    ]
    return Trace("total variation distance from logits", "crossent.total_variation_distance",
                 {"student_logits": student, "teacher_logits": teacher},
                 {**options, "reduction": reduction}, steps, steps[-1].values["loss"])
