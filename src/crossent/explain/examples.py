"""The seeds' worked examples, each traced by crossent and checked against the seed's numbers.

Every example builds a :class:`~crossent.explain.Trace` by running crossent on the
seed's input and lists, in ``trace.checks``, each number the seed printed next to
crossent's value. Where a seed's number is itself off (a typo, a rounded
intermediate), the check says so, politely, in ``erratum``.

>>> from crossent.explain import examples
>>> trace = examples.get("seed003-cross-entropy")
>>> [check.matches for check in trace.checks]
[True, True]
>>> "seed000-reverse-softmax" in examples.names()
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import activations, information, losses
from .. import grad as _grad
from . import _traces
from ._trace import Check, Step, Trace

__all__ = ["Example", "EXAMPLES", "names", "get", "all_traces"]

SEEDS = {
    0: "seed 000 (Loss functions: the evolution of cross-entropy; PyTorch)",
    1: "seed 001 (Softmax and the cross-entropy loss; Tyan, noahsnail.com)",
    2: "seed 002 (Loss functions in image classification; TensorFlow)",
    3: "seed 003 (NLLLoss, CrossEntropy and BCELoss in PyTorch)",
    4: "seed 004 (Two cross-entropy losses in Keras)",
}

FLOAT32 = 2e-7  # relative slack for numbers a seed computed in float32 (TensorFlow 1.x)


@dataclass(frozen=True)
class Example:
    """A named worked example of a seed."""

    name: str
    seed: int
    title: str
    build: Callable[[], Trace]

    def trace(self) -> Trace:
        trace = self.build()
        trace.name, trace.source = self.name, SEEDS[self.seed]
        trace.title = self.title
        return trace


EXAMPLES: dict[str, Example] = {}


Builder = Callable[[], Trace]


def _example(name: str, seed: int, title: str) -> Callable[[Builder], Builder]:
    def register(build: Callable[[], Trace]) -> Callable[[], Trace]:
        EXAMPLES[name] = Example(name, seed, title, build)
        return build

    return register


def names() -> list[str]:
    """The example names, in seed order."""
    return list(EXAMPLES)


def get(name: str) -> Trace:
    """The trace of the example ``name`` (see :func:`names`)."""
    try:
        return EXAMPLES[name].trace()
    except KeyError:
        raise ValueError(
            f"unknown example {name!r}; expected one of {', '.join(EXAMPLES)} "
            f"(crossent explain --list-examples)"
        ) from None


def all_traces() -> list[Trace]:
    """Every example's trace."""
    return [example.trace() for example in EXAMPLES.values()]


def _custom(function: str, inputs: dict, steps: list[Step], value: object,
            options: dict | None = None) -> Trace:
    return Trace("", function, inputs, options or {}, steps, value)


# ==========================================================================================
# seed 000
# ==========================================================================================


@_example("seed000-torch-cross-entropy", 0, "CrossEntropyLoss on torch.rand(3, 3) with seed 1")
def _seed000_torch() -> Trace:
    logits = np.array([[0.7576, 0.2793, 0.4031], [0.7347, 0.0293, 0.7999],
                       [0.3971, 0.7544, 0.5695]])
    trace = _traces.cross_entropy(logits, np.array([0, 1, 2]))
    trace.checks = [Check("mean loss", "1.2005", trace.value)]
    trace.notes = ["The logits are the four-decimal values the seed printed for "
                   "torch.rand([3, 3]) after torch.manual_seed(1) (torch 2.13 draws the same "
                   "numbers; at full precision the loss also prints as 1.2005)."]
    return trace


@_example("seed000-information", 0, "information of a win with probability 0.1 and 0.9, in bits")
def _seed000_information() -> Trace:
    probs = np.array([0.1, 0.9])
    bits = information.self_information(probs, base=2)
    steps = [Step("information", r"H(x) = -\log_2 p(x)", "H(x) = -log2 p(x)",
                  {"p": probs, "bits": bits},
                  "An unlikely win (A, p = 0.1) tells you much more than a likely one "
                  "(B, p = 0.9).")]
    trace = _custom("crossent.information.self_information", {"p": probs}, steps, bits,
                    {"base": 2})
    trace.checks = [Check("H(A) = -log2 0.1", "3.32", bits[0]),
                    Check("H(B) = -log2 0.9", "0.152", bits[1])]
    return trace


@_example("seed000-cross-entropy", 0,
          "cross-entropy of two predictions for the target [1, 0, 0], step by step")
def _seed000_cross_entropy() -> Trace:
    probs = np.array([[0.5, 0.2, 0.3], [0.8, 0.1, 0.1]])
    target = np.array([1.0, 0.0, 0.0])
    by_definition = information.cross_entropy(np.broadcast_to(target, probs.shape), probs)
    logits = np.array([[0.7467, -0.1696, 0.2359], [1.2666, -0.8129, -0.8129]])  # seed's logits
    trace = _traces.cross_entropy(logits, np.array([0, 0]), reduction="none")
    definition = Step(
        "definition", r"H(p, q) = -\sum_x p(x)\log q(x) = -(1 \log q_1 + 0 \log q_2 + 0 \log q_3)",
        "H(p, q) = -sum_x p(x) log q(x)", {"q": probs, "H": by_definition},
        "Straight from the definition: only the target class (probability 1) contributes.",
    )
    trace.steps.insert(0, definition)
    trace.checks = [
        Check("H(p, q1), H(p, q2) by the definition", "[0.6931, 0.2231]", by_definition),
        Check("softmax of the seed's logits",
              "[[0.5000, 0.2000, 0.3000], [0.8000, 0.1000, 0.1000]]",
              activations.softmax(logits), absolute=1e-4),
        Check("log of the softmax (LogSoftmax)",
              "[[-0.6931, -1.6094, -1.2040], [-0.2231, -2.3026, -2.3026]]",
              activations.log_softmax(logits), absolute=1e-4),
        Check("CrossEntropyLoss(reduction='none') = NLLLoss of the log-softmax", "[0.6931, 0.2231]",
              trace.value, absolute=1e-4),
    ]
    trace.notes = [
        "The logits are the seed's four-decimal 'reverse softmax' output (see "
        "seed000-reverse-softmax); a rounding of 5e-5 in a logit moves a log-probability by "
        "at most 1e-4, which the comparison allows.",
        "The seed's table calls the target q1 and the prediction p; the usual order, used "
        "here, is H(target, prediction).",
    ]
    return trace


@_example("seed000-reverse-softmax", 0, "reverse softmax: logits whose softmax is a given p")
def _seed000_reverse_softmax() -> Trace:
    probs = np.array([[0.5, 0.2, 0.3], [0.8, 0.1, 0.1]])
    trace = _traces.softmax_inverse(probs)
    # the seed's own construction: log(p * sum_k exp(p_k)), a shifted inverse
    exp_sum = np.sum(np.exp(probs), axis=1, keepdims=True)
    seed_logits = np.log(exp_sum * probs)
    shift = seed_logits - trace.value
    seed_losses = losses.cross_entropy(seed_logits, np.array([0, 0]), reduction="none")
    trace.steps.append(Step(
        "the seed's logits", r"z'_j = \log\left(p_j \sum_k e^{p_k}\right) = z_j + c",
        "z' = log(p * sum_k exp(p_k)) = z + c", {"sum_k exp(p_k)": exp_sum[:, 0],
                                                 "z'": seed_logits, "z' - z": shift},
        "The seed shifts the logits by a per-row constant; softmax ignores it, so both are "
        "valid logits for p.",
    ))
    trace.steps.append(Step(
        "cross-entropy of the seed's logits", r"\ell_i = -\log\,\mathrm{softmax}(z'_i)_{0}",
        "loss_i = -log softmax(z')[0]", {"loss": seed_losses},
        "CrossEntropyLoss with target class 0 gives back -log 0.5 and -log 0.8.",
    ))
    trace.checks = [
        Check("sum_k exp(p_k) per row", "[4.2200, 4.4359]", exp_sum[:, 0]),
        Check("the seed's logits", "[[0.7467, -0.1696, 0.2359], [1.2666, -0.8129, -0.8129]]",
              seed_logits),
        Check("softmax of crossent's logits",
              "[[0.5000, 0.2000, 0.3000], [0.8000, 0.1000, 0.1000]]",
              activations.softmax(trace.value)),
        Check("CrossEntropyLoss(reduction='none')", "[0.6931, 0.2231]", seed_losses),
    ]
    trace.notes = [
        "The seed writes softmax as p / sum_k p^k; the exponentials seem to have been lost in "
        "formatting: softmax(z)_j = e^{z_j} / sum_k e^{z_k}.",
        "crossent.softmax_inverse returns the centred logits (mean zero over the classes); "
        "the seed's differ from them by the per-row constant shown in 'z' - z'.",
    ]
    return trace


@_example("seed000-nll", 0, "NLLLoss only picks and negates")
def _seed000_nll() -> Trace:
    values = np.arange(0, 9).reshape(3, 3) / 10
    trace = _traces.nll_loss(values, np.array([0, 1, 2]), reduction="none")
    trace.checks = [Check("NLLLoss(reduction='none')", "[-0.0000, -0.4000, -0.8000]", trace.value)]
    return trace


@_example("seed000-bce-multilabel", 0, "BCELoss for multi-label targets [1, 0, 1]")
def _seed000_bce() -> Trace:
    probs = np.array([[0.4, 0.3, 0.2], [0.8, 0.1, 0.9]])
    target = np.array([[1.0, 0.0, 1.0], [1.0, 0.0, 1.0]])
    trace = _traces.binary_cross_entropy(probs, target, reduction="none")
    row_sums = [losses.binary_cross_entropy(probs[i], target[i], reduction="sum") for i in range(2)]
    trace.steps.insert(-1, Step(
        "sum over the labels", r"H = -\sum_c \left[t_c \log p_c + (1-t_c)\log(1-p_c)\right]",
        "H = sum_c loss_c", {"H(p, q1), H(p, q2)": np.array(row_sums)},
        "The seed adds the three per-label losses of each prediction.",
    ))
    trace.checks = [
        Check("BCELoss(reduction='none') for p = [0.4, 0.3, 0.2]", "[[0.9163, 0.3567, 1.6094]]",
              trace.value[0]),
        Check("H(p, q1) for [0.4, 0.3, 0.2]", "2.8824", row_sums[0]),
        Check("H(p, q2) for [0.8, 0.1, 0.9]", "0.4338", row_sums[1], erratum=(
            "the exact sum is 0.43386, which rounds to 0.4339; the seed's 0.4338 is truncated. "
            "Its formula also writes log(1 - 0.9) for the middle label, whose prediction is 0.1: "
            "the term is log(1 - 0.1) (the value 0.4338 uses the right term).")),
    ]
    return trace


# ==========================================================================================
# seed 001
# ==========================================================================================


@_example("seed001-softmax", 1, "softmax of z = [1, 2, 3]")
def _seed001_softmax() -> Trace:
    z = np.array([1.0, 2.0, 3.0])
    exps = np.exp(z)
    probs = activations.softmax(z)
    steps = [
        Step("exponentials", r"e^{z_j}", "exp(z_j)", {"exp(z)": exps, "sum": np.sum(exps)},
             "Each logit is exponentiated; the sum normalises."),
        Step("softmax", r"\sigma(z)_j = \frac{e^{z_j}}{\sum_k e^{z_k}}",
             "softmax(z)_j = exp(z_j) / sum_k exp(z_k)", {"softmax": probs},
             "Each exponential divided by their sum: probabilities summing to 1."),
    ]
    trace = _custom("crossent.softmax", {"z": z}, steps, probs)
    trace.checks = [
        Check("exp(z)", "[2.718281828459045, 7.38905609893065, 20.085536923187668]", exps),
        Check("sum of exp(z)", "30.19287485057736", np.sum(exps)),
        Check("softmax rounded to 2 decimals", "[0.09, 0.24, 0.67]", probs),
    ]
    return trace


@_example("seed001-network", 1, "a 3-class network: W x -> softmax -> loss, and its gradient")
def _seed001_network() -> Trace:
    weights = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]])
    x = np.array([1.0, 2.0, 3.0])
    logits = weights @ x
    target = np.array([2])  # the class "car": y = [0, 0, 1]
    trace = _traces.cross_entropy(logits[None, :], target)
    grad_logits = _grad.cross_entropy(logits[None, :], target)[0]
    trace.steps.insert(0, Step(
        "linear layer", r"a = W\,x", "a = W x", {"W": weights, "x": x, "a": logits},
        "The last fully connected layer turns the input into three logits.",
    ))
    trace.steps.append(Step(
        "gradient", r"\frac{\partial L}{\partial a} = p - y,\quad "
        r"\frac{\partial L}{\partial W} = (p - y)\,x^{T}",
        "dL/da = softmax(a) - one_hot(y);  dL/dW = outer(dL/da, x)",
        {"dL/da": grad_logits, "dL/dW": np.outer(grad_logits, x)},
        "Back-propagation: the chain rule through log and softmax gives prediction minus "
        "target, and the layer multiplies it by the input.",
    ))
    probs = activations.softmax(logits)
    trace.checks = [
        Check("a = W x", "[1.4, 3.2, 5.0]", logits),
        Check("p = softmax(a)", "[0.02, 0.14, 0.84]", probs),
        Check("L = -log p_3", "0.17", trace.value, erratum=(
            "0.17 is -log(0.84) = 0.1744, computed from p rounded to two decimals; the exact "
            "softmax gives p_3 = 0.83849 and L = 0.1762, which is 0.18 to two decimals.")),
    ]
    return trace


# ==========================================================================================
# seed 002
# ==========================================================================================

_SEED002_LOGITS = np.array([[0.7, 1.2, 0.3], [0.4, 0.2, 0.9], [0.6, 0.3, 0.4]], dtype=np.float32)
_SEED002_LABELS = np.array([1, 2, 0])


@_example("seed002-coin-mle", 2, "maximum likelihood of a coin: 6 heads in 10 tosses")
def _seed002_coin() -> Trace:
    tosses = np.array([1, 1, 0, 1, 1, 0, 1, 0, 1, 0], dtype=np.float64)
    thetas = np.round(np.arange(1, 10) / 10, 1)
    # mean binary cross-entropy = -(1/n) log L(theta): the negative mean log-likelihood
    nll = np.array([float(losses.binary_cross_entropy(np.full_like(tosses, theta), tosses))
                    for theta in thetas])
    best = thetas[int(np.argmin(nll))]
    probability = math.comb(10, 6) * 0.6**6 * 0.4**4  # the binomial probability of the seed
    steps = [
        Step("binomial probability", r"P(6;\,\theta) = C_{10}^{6}\,\theta^6 (1-\theta)^4",
             "P(6; theta) = C(10, 6) theta^6 (1 - theta)^4", {"P(6; 0.6)": probability},
             "The probability of 6 heads in 10 tosses when the coin's parameter is 0.6."),
        Step("negative log-likelihood", r"-\frac{1}{n}\ln L(\theta) = \mathrm{BCE}(\theta, x)",
             "-(1/n) ln L(theta) = mean BCE(theta, x)", {"theta": thetas, "mean BCE": nll},
             "The mean binary cross-entropy of the tosses is minus the mean log-likelihood."),
        Step("maximum likelihood", r"\hat\theta = \mathrm{argmin}_\theta\,\mathrm{BCE}(\theta, x)",
             "theta_hat = argmin_theta BCE(theta, x)", {"theta_hat": best},
             "Minimising cross-entropy is maximising likelihood: the minimum is at 6/10."),
    ]
    trace = _custom("crossent.binary_cross_entropy", {"tosses": tosses}, steps, best)
    trace.checks = [
        Check("P(6; theta) with theta = 0.6", "0.2508", probability, erratum=None),
        Check("theta_hat", "0.6", best),
    ]
    trace.notes = ["The seed labels the binomial probability P(6; 0.5) but computes it with "
                   "theta = 0.6 (as its text says); P(6; 0.5) would be 0.2051."]
    return trace


def _seed002_smooth_labels() -> np.ndarray:
    """The seed's YOLOv3 smoothing (1 - eps) one_hot + eps / C, from the core's target mass."""
    one_hot = np.eye(3, dtype=np.float32)[_SEED002_LABELS]
    _, mass, _, _ = _traces._class_parts(
        _SEED002_LOGITS, one_hot, axis=-1, weight=None, ignore_index=None, where=None,
        label_smoothing=0.1, name="logits",
    )
    return mass


@_example("seed002-sigmoid-ce", 2, "sigmoid cross-entropy with smoothed multi-label targets")
def _seed002_sigmoid() -> Trace:
    labels = _seed002_smooth_labels()
    trace = _traces.binary_cross_entropy_with_logits(_SEED002_LOGITS, labels, reduction="none")
    trace.steps.insert(0, Step(
        "smoothed one-hot labels",
        r"t = (1-\varepsilon)\,\mathrm{onehot}(y) + \frac{\varepsilon}{C}",
        "t = (1 - eps) one_hot(y) + eps / C,  eps = 0.1, C = 3", {"t": labels},
        "YOLOv3-style label smoothing (the seed's label_smoothing function).",
    ))
    first = losses.binary_cross_entropy_with_logits(np.array([0.7]), np.array([0.033]),
                                                    reduction="none")
    with_1103 = losses.binary_cross_entropy_with_logits(np.array([1.103]), labels[0, :1],
                                                        reduction="none")
    softplus = -activations.log_sigmoid(np.array([-0.7]))
    trace.checks = [
        Check("smooth label", "[[0.03333334, 0.93333334, 0.03333334], [0.03333334, 0.03333334, "
              "0.93333334], [0.93333334, 0.03333334, 0.03333334]]", labels, FLOAT32),
        Check("sigmoid cross entropy loss", "[[1.0798527, 0.34328249, 0.84435523], [0.89968193, "
              "0.7914722, 0.40115389], [0.47748795, 0.84435523, 0.89968193]]", trace.value,
              FLOAT32),
        Check("(2-3): the loss at (0, 0)", "1.07985271089", trace.value[0, 0], 1e-7),
        Check("(2-3): the logit f(x) at (0, 0)", "1.103", 0.7, erratum=(
            "the seed substitutes f(x) = 1.103 into (2-3), but the logit at (0, 0) is 0.7; "
            f"1.103 is softplus(0.7) = log(1 + e^0.7) = {float(softplus[0]):.4f}. With 1.103 as "
            f"the logit the formula gives {float(with_1103[0]):.4f}; the seed's 1.07985271089 "
            "is the value for the logit 0.7.")),
    ]
    trace.notes = [
        "(2-3) also rounds the label to 0.033; with exactly 0.033 the loss would be "
        f"{float(first[0]):.6f}, so 1.07985271089 uses the unrounded 1/30.",
        "The matrix in the seed's prose has 0.2 at (0, 1); its code, and every number it prints, "
        "use 1.2 (the softmax row [0.301, 0.497, 0.202] is that of [0.7, 1.2, 0.3]).",
        "TensorFlow computed in float32; the comparison allows a relative 2e-7.",
    ]
    return trace


@_example("seed002-softmax-ce", 2, "softmax cross-entropy of the same logits")
def _seed002_softmax() -> Trace:
    trace = _traces.cross_entropy(_SEED002_LOGITS, _SEED002_LABELS, reduction="none")
    probs = activations.softmax(_SEED002_LOGITS.astype(np.float64))
    trace.checks = [
        Check("softmax of row 0", "[0.301, 0.497, 0.202]", probs[0]),
        Check("(2-5): the probability of the target class in row 0", "0.479", probs[0, 1],
              erratum="the seed writes log(0.479); the softmax of row 0 gives 0.497 for the "
              "target class (two digits swapped)."),
        Check("(2-5): the loss of row 0", "0.699165252886", trace.value[0], erratum=(
            "0.699165252886 is -log(0.497), the probability rounded to three digits; the exact "
            "loss is 0.699676 (TensorFlow printed 0.69967604).")),
        Check("softmax cross entropy loss", "[0.69967604, 0.74342006, 0.93983102]", trace.value,
              FLOAT32),
    ]
    trace.notes = ["TensorFlow computed in float32; the comparison allows a relative 2e-7."]
    return trace


# ==========================================================================================
# seed 003
# ==========================================================================================


@_example("seed003-nll", 3, "F.nll_loss has no log: it picks and negates")
def _seed003_nll() -> Trace:
    trace = _traces.nll_loss(np.array([[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]]), np.array([2, 1]),
                             reduction="none")
    trace.checks = [Check("F.nll_loss(reduction='none')", "[-0.5, -0.4]", trace.value)]
    return trace


@_example("seed003-cross-entropy", 3, "cross_entropy = log_softmax + nll_loss")
def _seed003_cross_entropy() -> Trace:
    logits = np.array([[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]])
    trace = _traces.cross_entropy(logits, np.array([2, 1]), reduction="none")
    trace.checks = [
        Check("F.log_softmax", "[[-1.1801, -1.2801, -0.8801], [-0.6922, -1.4922, -1.2922]]",
              activations.log_softmax(logits)),
        Check("F.cross_entropy(reduction='none')", "[0.8801, 1.4922]", trace.value),
    ]
    return trace


@_example("seed003-bce", 3, "F.binary_cross_entropy of two one-label samples")
def _seed003_bce() -> Trace:
    trace = _traces.binary_cross_entropy(np.array([[0.3], [0.9]]), np.array([[1.0], [0.0]]),
                                         reduction="none")
    trace.checks = [
        Check("F.binary_cross_entropy(reduction='none')", "[[1.2040], [2.3026]]", trace.value),
        Check("by hand: 1 log 0.3 + 0 log 0.7", "-1.2040", -trace.value[0, 0]),
    ]
    return trace


@_example("seed003-multilabel", 3, "multi-label topics: sigmoid, then BCE per label")
def _seed003_multilabel() -> Trace:
    logits = np.array([[0.9992, -0.0551, -0.7823, 2.4850, -0.5739],
                       [-1.1502, -1.8042, -0.6534, 0.5632, -0.9339]])
    target = np.array([[0, 1, 1, 0, 0], [1, 1, 0, 0, 1]], dtype=np.float64)
    probs = activations.sigmoid(logits)
    trace = _traces.binary_cross_entropy(probs, target, reduction="none")
    trace.inputs = {"logits": logits, "target": target}
    trace.steps.insert(0, Step("sigmoid", r"p = \sigma(x) = \frac{1}{1 + e^{-x}}",
                               "p = sigmoid(x)", {"p": probs},
                               "Each label gets its own probability; rows need not sum to 1."))
    trace.checks = [
        Check("torch.sigmoid(x)", "[[0.7309, 0.4862, 0.3138, 0.9231, 0.3603], "
              "[0.2404, 0.1413, 0.3422, 0.6372, 0.2821]]", probs, absolute=1.25e-5),
        Check("F.binary_cross_entropy(reduction='none')", "[[1.3127, 0.7211, 1.1589, 2.5650, "
              "0.4468], [1.4253, 1.9566, 0.4189, 1.0139, 1.2654]]", trace.value, absolute=5e-5),
    ]
    trace.notes = [
        "The logits are the seed's four-decimal printout of torch.randn(2, 5); a rounding of "
        "5e-5 in a logit moves its sigmoid by at most 1.25e-5 and its loss by at most 5e-5 "
        "(|dBCE/dx| = |sigmoid(x) - y| <= 1), which the comparison allows (it matters for "
        "1.4253, which the rounded logit gives as 1.42523).",
    ]
    return trace


@_example("seed003-masking", 3, "masking padded positions with masked_select")
def _seed003_masking() -> Trace:
    loss = np.array([[-0.1425, -0.9712, -0.5876, -0.6469, 0.1424],
                     [1.0024, 0.6287, 1.5695, -1.0321, 0.1236]])
    mask = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]], dtype=bool)
    selected = loss[mask]  # torch.masked_select(loss, mask): row-major order
    steps = [
        Step("mask", r"m_{ij} \in \{0, 1\}", "mask: True where the position is real text",
             {"mask": mask}, "Padding positions (False) must not enter the loss."),
        Step("select", r"\{\ell_{ij} : m_{ij} = 1\}", "loss.masked_select(mask)",
             {"selected": selected}, "Keep the losses of the real positions, row by row."),
        Step("mean over the real positions", r"\frac{1}{\sum m}\sum_{ij} m_{ij}\,\ell_{ij}",
             "sum(selected) / count", {"count": int(mask.sum()), "mean": float(selected.mean())},
             "In crossent, pass where=mask to any loss: masked positions are not counted."),
    ]
    trace = _custom("numpy boolean indexing (torch.masked_select)", {"loss": loss, "mask": mask},
                    steps, selected)
    trace.checks = [
        Check("loss.masked_select(mask)", "[-0.1425, -0.9712, -0.5876, -0.6469, 1.0024, "
              "0.6287, 1.5695]", selected),
        Check("the method's name", "selected_mask", "masked_select", erratum=(
            "the seed calls loss.selected_mask(mask); PyTorch's method is "
            "loss.masked_select(mask) (and loss.requires_grad_(), not required_grad_()).")),
    ]
    trace.notes = ["The seed's code creates torch.randn(2, 3) but prints a 2 x 5 tensor; the "
                   "values here are the printed 2 x 5 ones."]
    return trace


# ==========================================================================================
# seed 004
# ==========================================================================================

_SEED004_Y = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 0]], dtype=np.float64)
_SEED004_LOGITS = np.array([[12, 3, 2], [3, 10, 1], [1, 2, 5], [4, 6.5, 1.2], [3, 6, 1]])


@_example("seed004-bce-numpy", 4, "NumPy vs TensorFlow: sigmoid BCE per element and its mean")
def _seed004_bce() -> Trace:
    trace = _traces.binary_cross_entropy_with_logits(_SEED004_LOGITS, _SEED004_Y)
    per_element = losses.binary_cross_entropy_with_logits(_SEED004_LOGITS, _SEED004_Y,
                                                          reduction="none")
    trace.checks = [
        Check("y_pred = sigmoid(logits)", "[[0.99999386, 0.95257413, 0.88079708], [0.95257413, "
              "0.9999546, 0.73105858], [0.73105858, 0.88079708, 0.99330715], [0.98201379, "
              "0.99849882, 0.76852478], [0.95257413, 0.99752738, 0.73105858]]",
              activations.sigmoid(_SEED004_LOGITS)),
        Check("BCE1 (= BCE2, TensorFlow)", "[[6.14419348e-06, 3.04858735e+00, 2.12692801e+00], "
              "[3.04858735e+00, 4.53988992e-05, 1.31326169e+00], [1.31326169e+00, "
              "2.12692801e+00, 6.71534849e-03], [1.81499279e-02, 1.50231016e-03, "
              "1.46328247e+00], [3.04858735e+00, 2.47568514e-03, 1.31326169e+00]]", per_element),
        Check("final_BCE = mean", "1.2554386947664657", trace.value, 1e-15),
    ]
    return trace


@_example("seed004-ce-numpy", 4, "NumPy vs TensorFlow: softmax CE per row and its mean")
def _seed004_ce() -> Trace:
    trace = _traces.cross_entropy(_SEED004_LOGITS, _SEED004_Y)
    per_row = losses.cross_entropy(_SEED004_LOGITS, _SEED004_Y, reduction="none")
    trace.checks = [
        Check("y_pred = softmax(logits)", "[[9.99831219e-01, 1.23388975e-04, 4.53922671e-05], "
              "[9.10938878e-04, 9.98965779e-01, 1.23282171e-04], [1.71478255e-02, "
              "4.66126226e-02, 9.36239552e-01], [7.55098575e-02, 9.19898383e-01, "
              "4.59175917e-03], [4.71234165e-02, 9.46499123e-01, 6.37746092e-03]]",
              activations.softmax(_SEED004_LOGITS)),
        Check("CE1 (= CE2, TensorFlow)", "[1.68795487e-04, 1.03475622e-03, 6.58839038e-02, "
              "2.66698414e+00, 5.49852354e-02]", per_row),
        Check("final_CE = mean", "0.5578113653559053", trace.value, 1e-15),
    ]
    trace.notes = ["Row 4's target [1, 1, 0] is multi-hot: categorical cross-entropy then adds "
                   "two log-probabilities of one softmax, which cannot both be large (loss "
                   "2.667); multi-label targets need the sigmoid BCE (crossent.advise warns)."]
    return trace


@_example("seed004-single-output", 4,
          "categorical CE with one output column never learns; BCE does")
def _seed004_single_output() -> Trace:
    logits = np.array([[2.0], [-1.0], [0.5], [-3.0]])
    target = np.array([[1.0], [0.0], [1.0], [0.0]])
    probs = activations.softmax(logits)
    ce_loss, ce_grad = _grad.value_and_grad(losses.cross_entropy, logits, target)
    bce_loss, bce_grad = _grad.value_and_grad(losses.binary_cross_entropy_with_logits, logits,
                                              target)
    steps = [
        Step("softmax of one column", r"\mathrm{softmax}(z)_1 = \frac{e^{z_1}}{e^{z_1}} = 1",
             "softmax([z]) = [1] whatever z is", {"p": probs},
             "With a single class the softmax is always 1."),
        Step("categorical cross-entropy", r"L = -\frac{1}{N}\sum_i y_i \log 1 = 0",
             "CE = -y log 1 = 0", {"loss": ce_loss, "dL/dz": ce_grad},
             "The loss is 0 for every input and its gradient is 0: the model cannot learn."),
        Step("binary cross-entropy", r"L = \frac{1}{N}\sum_i \max(z_i,0) - z_i y_i + "
             r"\log(1+e^{-|z_i|})", "BCE = mean(max(z, 0) - z y + log(1 + exp(-|z|)))",
             {"loss": bce_loss, "dL/dz": bce_grad},
             "The sigmoid BCE scores the negatives too, so every sample has a gradient."),
    ]
    trace = _custom("crossent.cross_entropy vs crossent.binary_cross_entropy_with_logits",
                    {"logits": logits, "target": target}, steps, ce_loss)
    trace.checks = [Check("categorical CE of a single column (any model)", "0", ce_loss)]
    trace.notes = [
        "Keras 3 does not refuse categorical_crossentropy with one output column: it warns "
        "(a SyntaxWarning, 'expected y_pred.shape to be (batch_size, num_classes) with "
        "num_classes > 1') and computes the loss. The seed's CE run logs "
        "loss 5.9557e-08 and accuracy 0.5005: Keras clips the probability 1 to 1 - 1e-7, so "
        "each positive costs -log(1 - 1e-7), about 1.19e-07 in float32, and each negative 0, "
        "whatever the model does: a constant, with no gradient (5.9557e-08 is about half of "
        "1.19e-07, consistent with half the samples being positive).",
    ]
    return trace
