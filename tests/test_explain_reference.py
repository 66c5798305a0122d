"""explain's traces against an independent float64 reference written here with NumPy.

Every number a trace shows (softmax, log-probabilities, target mass, per-position losses,
the mean's divisor D, the gradient) is recomputed from the definitions (PyTorch's
semantics, as docs and docstrings state them) without calling crossent, and compared
with the trace's steps and value. A trace that displayed the core's value but wrong
intermediate numbers, or a core that drifted from the definitions, fails here.
"""

from __future__ import annotations

import numpy as np
import pytest

from crossent import explain
from test_explain import BINARY, BLOGITS, INDICES, LOGITS, PROBS, SOFT, WEIGHT
from test_explain import CLASS_OPTIONS as _CLASS_OPTIONS

RTOL = 1e-12


# --- the reference: definitions in float64, no crossent -------------------------------


def _log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)  # log(1 + e^x)


def _reduce(losses: np.ndarray, divisor: float, reduction: str) -> np.ndarray | float:
    if reduction == "none":
        return losses
    total = float(losses.sum())
    if reduction == "sum":
        return total
    return total / divisor if divisor else 0.0  # crossent: nothing counted gives 0


def _class_mass(num_classes: int, target: np.ndarray, weight: np.ndarray | None,
                ignore_index: int | None, where: np.ndarray | None, smoothing: float
                ) -> tuple[np.ndarray, np.ndarray, float]:
    """(target mass a, counted rows, divisor D) of a class-axis loss, by PyTorch's rules."""
    w = np.ones(num_classes) if weight is None else weight
    if target.ndim == 1:  # class indices
        counted = np.ones(target.shape, bool) if ignore_index is None else target != ignore_index
        counted &= True if where is None else where
        one_hot = np.eye(num_classes)[np.where(counted, target, 0)]
        mass = (1 - smoothing) * w[np.where(counted, target, 0)][:, None] * one_hot
        mass += smoothing / num_classes * w
        divisor = float(w[target[counted]].sum()) if weight is not None else float(counted.sum())
    else:  # probabilities: weights do not enter the divisor
        counted = np.ones(target.shape[0], bool) if where is None else where
        mass = w * ((1 - smoothing) * target + smoothing / num_classes)
        divisor = float(counted.sum())
    return np.where(counted[:, None], mass, 0.0), counted, divisor


def reference_cross_entropy(logits, target, *, weight=None, ignore_index=-100,
                            label_smoothing=0.0, reduction="mean", where=None):
    log_p = _log_softmax(logits)
    mass, counted, divisor = _class_mass(logits.shape[-1], target, weight, ignore_index, where,
                                         label_smoothing)
    losses = -(mass * log_p).sum(axis=-1)
    steps = {("softmax", "p"): np.exp(log_p), ("log-softmax", "log p"): log_p,
             ("per-position loss", "loss"): losses}
    if target.ndim == 1 and weight is None and label_smoothing == 0:
        picked = np.take_along_axis(log_p, np.where(counted, target, 0)[:, None], -1)[:, 0]
        steps[("pick the target class", "log p[y]")] = np.where(counted, picked, np.nan)
    else:
        steps[("target mass", "a")] = mass
    if reduction == "mean":
        steps[("reduction (mean)", "sum")] = losses.sum()
        steps[("reduction (mean)", "D")] = divisor
    return _reduce(losses, divisor, reduction), steps


def reference_cross_entropy_grad(logits, target, *, weight=None, ignore_index=-100,
                                 label_smoothing=0.0, reduction="mean", where=None):
    log_p = _log_softmax(logits)
    mass, _, divisor = _class_mass(logits.shape[-1], target, weight, ignore_index, where,
                                   label_smoothing)
    per_position = mass.sum(axis=-1, keepdims=True) * np.exp(log_p) - mass  # (Σa) p - a
    steps = {("softmax", "p"): np.exp(log_p), ("gradient per position", "dloss/dz"): per_position}
    if reduction == "mean":
        steps[("scale by the mean", "D")] = divisor
        return (per_position / divisor if divisor else 0 * per_position), steps
    return per_position, steps


def reference_nll_loss(log_probs, target, *, weight=None, ignore_index=-100, reduction="mean"):
    mass, counted, divisor = _class_mass(log_probs.shape[-1], target, weight, ignore_index,
                                         None, 0.0)
    losses = -(mass * log_probs).sum(axis=-1)
    steps = {("negate", "loss"): losses}
    if reduction == "mean":
        steps[("reduction (mean)", "D")] = divisor
    return _reduce(losses, divisor, reduction), steps


def _element_divisor(shape: tuple[int, ...], where: np.ndarray | None) -> float:
    return float(np.broadcast_to(True if where is None else where, shape).sum())


def reference_binary_cross_entropy(probs, target, *, weight=None, reduction="mean", where=None):
    with np.errstate(divide="ignore"):
        log_p, log_not_p = np.maximum(np.log(probs), -100), np.maximum(np.log1p(-probs), -100)
    losses = -(1.0 if weight is None else weight) * (target * log_p + (1 - target) * log_not_p)
    losses = np.where(True if where is None else where, losses, 0.0)
    steps = {("log p and log(1 - p)", "log p"): log_p,
             ("log p and log(1 - p)", "log(1-p)"): log_not_p, ("per-element loss", "loss"): losses}
    return _reduce(losses, _element_divisor(probs.shape, where), reduction), steps


def reference_bce_with_logits(logits, target, *, weight=None, pos_weight=None,
                              label_smoothing=0.0, reduction="mean"):
    z = target * (1 - label_smoothing) + label_smoothing / 2  # Keras's binary smoothing
    pw = 1.0 if pos_weight is None else pos_weight
    losses = (1.0 if weight is None else weight) * (pw * z * _softplus(-logits)
                                                    + (1 - z) * _softplus(logits))
    steps = {("sigmoid", "sigma(x)"): 1 / (1 + np.exp(-logits)),
             ("per-element loss", "loss"): losses}
    if label_smoothing:
        steps[("smoothed target", "z")] = z
    return _reduce(losses, _element_divisor(logits.shape, None), reduction), steps


def reference_sigmoid_focal_loss(logits, target, *, alpha=0.25, gamma=2.0, reduction="mean"):
    p = 1 / (1 + np.exp(-logits))
    bce = target * _softplus(-logits) + (1 - target) * _softplus(logits)
    p_t = p * target + (1 - p) * (1 - target)
    alpha_t = 1.0 if alpha is None else alpha * target + (1 - alpha) * (1 - target)
    losses = alpha_t * (1 - p_t) ** gamma * bce  # torchvision's sigmoid_focal_loss
    steps = {("sigmoid", "p"): p, ("binary cross-entropy", "BCE"): bce,
             ("focal factor", "factor"): alpha_t * (1 - p_t) ** gamma,
             ("per-element loss", "loss"): losses}
    return _reduce(losses, _element_divisor(logits.shape, None), reduction), steps


def reference_softmax_focal_loss(logits, target, *, alpha=None, gamma=2.0, reduction="mean"):
    log_p = _log_softmax(logits)
    one_hot = np.eye(logits.shape[-1])[target]
    a = 1.0 if alpha is None else alpha
    losses = -(a * one_hot * (1 - np.exp(log_p)) ** gamma * log_p).sum(axis=-1)
    steps = {("softmax", "p"): np.exp(log_p), ("cross-entropy", "CE"): -(one_hot * log_p).sum(-1),
             ("per-position loss", "loss"): losses}
    return _reduce(losses, float(len(target)), reduction), steps


# explain's own cases, and a weighted, smoothed mean (PyTorch's divisor Σ w[y_i])
CLASS_OPTIONS = [*_CLASS_OPTIONS, {"weight": WEIGHT, "label_smoothing": 0.2}]
_SOFT_OPTIONS = [o for o in CLASS_OPTIONS if "where" not in o and "ignore_index" not in o]

# (trace function, reference, first array, second array, options)
CASES = (
    [(explain.cross_entropy, reference_cross_entropy, LOGITS, INDICES, o) for o in CLASS_OPTIONS]
    + [(explain.cross_entropy, reference_cross_entropy, LOGITS, SOFT, o) for o in _SOFT_OPTIONS]
    + [(explain.cross_entropy_grad, reference_cross_entropy_grad, LOGITS, INDICES, o)
       for o in CLASS_OPTIONS]
    + [(explain.nll_loss, reference_nll_loss, _log_softmax(LOGITS), INDICES, o)
       for o in ({}, {"reduction": "none"}, {"weight": WEIGHT})]
    + [(explain.nll_loss, reference_nll_loss, _log_softmax(LOGITS), np.array([2, 1, 1, 0]),
        {"ignore_index": 1, "weight": WEIGHT})]
    + [(explain.nll_loss, reference_nll_loss, _log_softmax(LOGITS), SOFT, {"weight": WEIGHT})]
    + [(explain.binary_cross_entropy, reference_binary_cross_entropy, PROBS, BINARY, o)
       for o in ({}, {"reduction": "none"}, {"weight": np.array([1.0, 2.0, 3.0])},
                 {"where": np.array([True, False, True])})]
    + [(explain.binary_cross_entropy, reference_binary_cross_entropy,
        np.array([[0.0, 1.0, 0.5]]), np.array([[1.0, 0.0, 1.0]]), {})]  # log clamped at -100
    + [(explain.binary_cross_entropy_with_logits, reference_bce_with_logits, BLOGITS, BINARY, o)
       for o in ({}, {"reduction": "none"}, {"label_smoothing": 0.1, "reduction": "sum"},
                 {"pos_weight": np.array([2.0, 1.0, 0.5])}, {"weight": np.array([1.0, 0.5, 2.0])})]
    + [(explain.sigmoid_focal_loss, reference_sigmoid_focal_loss, BLOGITS, BINARY, o)
       for o in ({}, {"alpha": None, "gamma": 1.0, "reduction": "none"})]
    + [(explain.softmax_focal_loss, reference_softmax_focal_loss, LOGITS, np.array([2, 1, 0, 0]),
        o) for o in ({}, {"gamma": 0.5, "reduction": "sum"},
                     {"alpha": WEIGHT, "reduction": "none"})]
)


# --- probability space and the divergences of distillation --------------------------------

P_TARGET = np.array([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [0.6, 0.0, 0.4]])  # a zero: 0 log 0 = 0
Q_MODEL = np.array([[0.3, 0.3, 0.4], [0.25, 0.25, 0.5], [0.5, 0.2, 0.3]])
TEACHER = np.array([[1.0, 0.0, -1.0], [0.5, 0.5, 2.0], [-2.0, 3.0, 0.0], [0.0, 0.0, 0.0]])


def _p_log_q(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """p log q with 0 log 0 = 0 (the convention of information theory)."""
    return np.where(p == 0, 0.0, p * np.log(np.where(p == 0, 1.0, q)))


def reference_entropy(p, _unused=None, *, base=np.e):
    with np.errstate(divide="ignore"):  # I(0) = inf, as the trace shows
        information = -np.log(p) / np.log(base)
    terms = -_p_log_q(p, p) / np.log(base)
    entropy = terms.sum(axis=-1)
    return entropy, {("information", "I"): information, ("weighted terms", "-p log p"): terms,
                     ("entropy", "H"): entropy}


def reference_kl_divergence(p, q, *, base=np.e):
    cross = -_p_log_q(p, q).sum(axis=-1) / np.log(base)
    entropy = -_p_log_q(p, p).sum(axis=-1) / np.log(base)
    kl = (_p_log_q(p, p) - _p_log_q(p, q)).sum(axis=-1) / np.log(base)
    return kl, {("cross-entropy", "H(p,q)"): cross, ("entropy", "H(p)"): entropy,
                ("KL divergence", "KL"): kl}


def reference_softmax_inverse(p, _unused=None):
    log_p = np.log(p)
    centre = log_p.mean(axis=-1)
    logits = log_p - centre[..., None]
    return logits, {("log p", "log p"): log_p, ("centre", "mean log p"): centre,
                    ("centre", "z"): logits, ("check", "softmax(z)"): p}


def _tempered(student, teacher, temperature):
    p_s = np.exp(_log_softmax(student / temperature))
    p_t = np.exp(_log_softmax(teacher / temperature))
    return p_s, p_t, {("softmax at temperature T", "p_s"): p_s,
                      ("softmax at temperature T", "p_t"): p_t}


def _batchmean(losses: np.ndarray, steps: dict, title: str = "reduction (mean)"):
    """'batchmean': the sum over distributions divided by their number (no T² factor)."""
    total, count = losses.sum(), losses.size
    steps.update({(title, "sum"): total, (title, "D"): float(count), (title, "loss"): total / count})
    return total / count, steps


def reference_kl_with_logits(student, teacher, *, temperature=1.0, reverse=False):
    p_s, p_t, steps = _tempered(student, teacher, temperature)
    p, q = (p_s, p_t) if reverse else (p_t, p_s)  # KL(p ‖ q): the teacher is p unless reversed
    cross = -_p_log_q(p, q).sum(axis=-1)
    entropy = -_p_log_q(p, p).sum(axis=-1)
    kl = (_p_log_q(p, p) - _p_log_q(p, q)).sum(axis=-1)
    steps.update({("cross-entropy", "H(p,q)"): cross, ("entropy", "H(p)"): entropy,
                  ("KL divergence", "KL"): kl})
    return _batchmean(kl, steps)


def reference_jsd(student, teacher, *, beta=0.5, temperature=1.0):
    p_s, p_t, steps = _tempered(student, teacher, temperature)
    mixture = beta * p_t + (1.0 - beta) * p_s
    kl_t = (_p_log_q(p_t, p_t) - _p_log_q(p_t, mixture)).sum(axis=-1)
    kl_s = (_p_log_q(p_s, p_s) - _p_log_q(p_s, mixture)).sum(axis=-1)
    jsd = beta * kl_t + (1.0 - beta) * kl_s
    steps.update({("mixture", "M"): mixture, ("two KL divergences", "KL(p_t||M)"): kl_t,
                  ("two KL divergences", "KL(p_s||M)"): kl_s, ("JSD", "JSD"): jsd})
    return _batchmean(jsd, steps)


def reference_tvd(student, teacher, *, temperature=1.0):
    p_s, p_t, steps = _tempered(student, teacher, temperature)
    difference = np.abs(p_t - p_s)
    tvd = 0.5 * difference.sum(axis=-1)
    steps.update({("difference", "|p_t - p_s|"): difference, ("TVD", "TVD"): tvd})
    return _batchmean(tvd, steps)


CASES += (
    [(explain.entropy, reference_entropy, P_TARGET, None, o) for o in ({}, {"base": 2.0})]
    + [(explain.kl_divergence, reference_kl_divergence, P_TARGET, Q_MODEL, o)
       for o in ({}, {"base": 2.0})]
    + [(explain.softmax_inverse, reference_softmax_inverse, Q_MODEL, None, {})]
    + [(explain.kl_divergence_with_logits, reference_kl_with_logits, LOGITS, TEACHER, o)
       for o in ({}, {"temperature": 2.0}, {"reverse": True, "temperature": 0.5})]
    + [(explain.jensen_shannon_divergence, reference_jsd, LOGITS, TEACHER, o)
       for o in ({}, {"beta": 0.3, "temperature": 2.0})]
    + [(explain.total_variation_distance, reference_tvd, LOGITS, TEACHER, o)
       for o in ({}, {"temperature": 3.0})]
)


def _ids(case: tuple) -> str:
    return f"{case[0].__name__}-{'-'.join(case[4]) or 'default'}"


@pytest.mark.parametrize("case", CASES, ids=[_ids(c) for c in CASES])
def test_trace_equals_the_float64_reference(case: tuple) -> None:
    trace_fn, reference, first, second, options = case
    arrays = (first,) if second is None else (first, second)
    trace = trace_fn(*arrays, **options)
    value, steps = reference(first, second, **options)
    np.testing.assert_allclose(trace.value, value, rtol=RTOL, atol=1e-15)
    shown = {(step.name, label): shown for step in trace.steps
             for label, shown in step.values.items()}
    for key, expected in steps.items():
        assert key in shown, f"the trace has no step {key[0]!r} showing {key[1]!r}"
        np.testing.assert_allclose(np.asarray(shown[key], dtype=float), expected, rtol=RTOL,
                                   atol=1e-15, err_msg=str(key))


def test_the_reference_is_the_definition_by_hand() -> None:
    """The reference itself, on seed 003's first row: -log softmax([0.4, 0.3, 0.7])[2]."""
    import math

    by_hand = -(0.7 - math.log(math.exp(0.4) + math.exp(0.3) + math.exp(0.7)))
    value, _ = reference_cross_entropy(LOGITS[:1], INDICES[:1])
    assert value == pytest.approx(by_hand, rel=1e-15)
    # PyTorch's weighted, smoothed mean: Σ_i Σ_c a_ic (-log p_ic) / Σ_i w[y_i]
    value, _ = reference_cross_entropy(LOGITS[:2], INDICES[:2], weight=WEIGHT,
                                       label_smoothing=0.1)
    log_p = [[v - math.log(sum(math.exp(u) for u in row)) for v in row] for row in LOGITS[:2]]
    total = sum(-((0.9 * WEIGHT[y] * (c == y)) + 0.1 / 3 * WEIGHT[c]) * log_p[i][c]
                for i, y in enumerate((2, 1)) for c in range(3))
    assert value == pytest.approx(total / (WEIGHT[2] + WEIGHT[1]), rel=1e-14)
