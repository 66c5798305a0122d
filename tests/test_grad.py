"""crossent.grad: every analytic gradient against float64 central finite differences.

The reference is (L(x + h e_i) - L(x - h e_i)) / 2h of the *loss* (reduced, or
summed for reduction='none'), computed by crossent's forward functions. The
forward values themselves are checked against PyTorch in test_losses.py and
against the seeds in test_seeds.py, so agreement here proves the gradient.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import crossent as ce
from crossent import grad
from crossent_testing import central_difference

RNG = np.random.default_rng(20261122)


def _check(loss, gradient, x, *args, **options) -> None:
    analytic = gradient(x, *args, **options)
    numeric = central_difference(lambda value: loss(value, *args, **options), x)
    assert analytic.shape == x.shape
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)
    # value_and_grad gives the same pair from one pass
    value, both = ce.value_and_grad(loss, x, *args, **options)
    np.testing.assert_array_equal(both, analytic)
    np.testing.assert_array_equal(value, loss(x, *args, **options))


LOGITS = RNG.standard_normal((4, 5)) * 2
INDEX = np.array([0, 3, 4, 1])
PROBS = RNG.dirichlet(np.ones(5), size=4)
MULTI_HOT = (RNG.random((4, 5)) < 0.4).astype(float)
WEIGHT = RNG.uniform(0.3, 2.0, 5)
MASK = np.array([True, False, True, True])
IMAGE = RNG.standard_normal((2, 3, 2, 2))  # (N, C, H, W)
IMAGE_INDEX = RNG.integers(0, 3, size=(2, 2, 2))

CLASS_CASES = {
    "plain": (LOGITS, INDEX, {}),
    "sum": (LOGITS, INDEX, {"reduction": "sum"}),
    "none": (LOGITS, INDEX, {"reduction": "none"}),
    "weight": (LOGITS, INDEX, {"weight": WEIGHT}),
    "ignore_index": (LOGITS, np.array([0, -100, 4, 1]), {"weight": WEIGHT}),
    "ignore_index_is_a_class": (LOGITS, INDEX, {"ignore_index": 3}),
    "where": (LOGITS, INDEX, {"where": MASK, "weight": WEIGHT}),
    "probabilities": (LOGITS, PROBS, {"weight": WEIGHT}),
    "multi_hot": (LOGITS, MULTI_HOT, {"reduction": "sum"}),
    "probabilities_where": (LOGITS, PROBS, {"where": MASK}),
    "nchw_axis_1": (IMAGE, IMAGE_INDEX, {"axis": 1}),
    "nchw_axis_1_weight_none": (IMAGE, IMAGE_INDEX, {"axis": 1, "weight": WEIGHT[:3],
                                                     "reduction": "none"}),
    "axis_0": (LOGITS.T.copy(), INDEX, {"axis": 0}),
}


@pytest.mark.parametrize("case", sorted(CLASS_CASES))
def test_cross_entropy_gradient(case: str) -> None:
    x, target, options = CLASS_CASES[case]
    _check(ce.cross_entropy, grad.cross_entropy, x, target, **options)


@pytest.mark.parametrize("case", ["plain", "weight", "ignore_index", "where", "probabilities",
                                  "nchw_axis_1", "axis_0"])
@pytest.mark.parametrize("smoothing", [0.1, 0.7])
def test_cross_entropy_gradient_with_label_smoothing(case: str, smoothing: float) -> None:
    x, target, options = CLASS_CASES[case]
    _check(ce.cross_entropy, grad.cross_entropy, x, target, label_smoothing=smoothing, **options)


@pytest.mark.parametrize("case", sorted(CLASS_CASES))
def test_nll_loss_gradient(case: str) -> None:
    x, target, options = CLASS_CASES[case]
    _check(ce.nll_loss, grad.nll_loss, x, target, **options)


@pytest.mark.parametrize("case", ["plain", "sum", "none", "where", "probabilities",
                                  "multi_hot", "nchw_axis_1", "axis_0"])
@pytest.mark.parametrize("alpha", [None, 0.25, "per-class"])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, 3.5])
def test_softmax_focal_loss_gradient(case: str, alpha, gamma: float) -> None:
    x, target, options = CLASS_CASES[case]
    num_classes = x.shape[options.get("axis", -1)]
    if alpha == "per-class":
        alpha = np.linspace(0.5, 1.5, num_classes)
    options = {k: v for k, v in options.items() if k != "weight"}
    _check(ce.softmax_focal_loss, grad.softmax_focal_loss, x, target, alpha=alpha, gamma=gamma,
           **options)


BINARY_LOGITS = RNG.standard_normal((3, 4)) * 3
HARD = (RNG.random((3, 4)) < 0.5).astype(float)
SOFT = RNG.random((3, 4))
ELEMENT_MASK = RNG.random((3, 4)) < 0.7
ELEMENT_CASES = {
    "plain": {},
    "sum": {"reduction": "sum"},
    "none": {"reduction": "none"},
    "weight_full": {"weight": RNG.uniform(0.3, 2, (3, 4))},
    "weight_last_axis": {"weight": RNG.uniform(0.3, 2, 4)},
    "where": {"where": ELEMENT_MASK},
    "where_rows": {"where": np.array([[True], [False], [True]])},
}


@pytest.mark.parametrize("case", sorted(ELEMENT_CASES))
@pytest.mark.parametrize("target", [HARD, SOFT], ids=["hard", "soft"])
def test_binary_cross_entropy_gradient(case: str, target: np.ndarray) -> None:
    probs = 1 / (1 + np.exp(-BINARY_LOGITS / 3))  # inside (0.05, 0.95): away from the clamp
    _check(ce.binary_cross_entropy, grad.binary_cross_entropy, probs, target,
           **ELEMENT_CASES[case])


@pytest.mark.parametrize("case", sorted(ELEMENT_CASES))
@pytest.mark.parametrize("target", [HARD, SOFT], ids=["hard", "soft"])
@pytest.mark.parametrize("pos_weight", [None, "last_axis", "full"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_binary_cross_entropy_with_logits_gradient(case: str, target: np.ndarray, pos_weight,
                                                   smoothing: float) -> None:
    pos_weight = {None: None, "last_axis": np.array([0.5, 1.0, 2.0, 4.0]),
                  "full": np.linspace(0.5, 3, 12).reshape(3, 4)}[pos_weight]
    _check(ce.binary_cross_entropy_with_logits, grad.binary_cross_entropy_with_logits,
           BINARY_LOGITS, target, pos_weight=pos_weight, label_smoothing=smoothing,
           **ELEMENT_CASES[case])


@pytest.mark.parametrize("case", sorted(set(ELEMENT_CASES) - {"weight_full", "weight_last_axis"}))
@pytest.mark.parametrize("target", [HARD, SOFT], ids=["hard", "soft"])
@pytest.mark.parametrize("alpha", [None, 0.25])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 3.5])
def test_sigmoid_focal_loss_gradient(case: str, target: np.ndarray, alpha, gamma: float) -> None:
    _check(ce.sigmoid_focal_loss, grad.sigmoid_focal_loss, BINARY_LOGITS, target, alpha=alpha,
           gamma=gamma, **ELEMENT_CASES[case])


@given(st.integers(0, 2**32 - 1), st.sampled_from(["index", "probability"]), st.booleans(),
       st.floats(0, 1), st.sampled_from(["none", "mean", "sum"]), st.integers(1, 3))
def test_cross_entropy_gradient_random_options(seed, kind, weighted, smoothing, reduction,
                                               ndim) -> None:
    rng = np.random.default_rng(seed)
    shape = tuple(rng.integers(1, 4, size=ndim))
    axis = int(rng.integers(-ndim, ndim))
    logits = rng.standard_normal(shape) * 3
    num_classes = shape[axis]
    positions = shape[: axis % ndim] + shape[axis % ndim + 1:]
    if kind == "index":
        target = rng.integers(0, num_classes, size=positions)
        target = np.where(rng.random(positions) < 0.2, -100, target)
    else:
        target = rng.random(shape)
    weight = rng.uniform(0.3, 2, num_classes) if weighted else None
    _check(ce.cross_entropy, grad.cross_entropy, logits, np.asarray(target), axis=axis,
           weight=weight, label_smoothing=smoothing, reduction=reduction)


def test_gradient_dtype_follows_the_input() -> None:
    x32 = LOGITS.astype(np.float32)
    assert grad.cross_entropy(x32, INDEX).dtype == np.float32
    assert grad.nll_loss(x32, INDEX).dtype == np.float32
    assert grad.softmax_focal_loss(x32, INDEX).dtype == np.float32
    b32 = BINARY_LOGITS.astype(np.float32)
    assert grad.binary_cross_entropy_with_logits(b32, HARD).dtype == np.float32
    assert grad.sigmoid_focal_loss(b32, HARD).dtype == np.float32
    assert grad.binary_cross_entropy(ce.sigmoid(b32), HARD).dtype == np.float32
    # float16 NumPy input: computed in float32, loss float32, gradient float16
    x16 = LOGITS.astype(np.float16)
    loss, gradient = ce.value_and_grad(ce.cross_entropy, x16, INDEX)
    assert loss.dtype == np.float32 and gradient.dtype == np.float16
    np.testing.assert_allclose(gradient, grad.cross_entropy(x16.astype(np.float32), INDEX),
                               rtol=1e-2, atol=1e-3)


def test_gradient_functions_are_named_and_documented() -> None:
    for name in ("nll_loss", "cross_entropy", "binary_cross_entropy",
                 "binary_cross_entropy_with_logits", "sigmoid_focal_loss", "softmax_focal_loss"):
        function = getattr(grad, name)
        assert function.__name__ == name
        assert f"crossent.{name}" in function.__doc__


@pytest.mark.parametrize("scale", [1e2, 1e4])
def test_gradients_finite_at_extreme_logits(scale: float) -> None:
    logits = np.array([[scale, -scale, 0.0], [-scale, scale, -scale]])
    target = np.array([1, 1])
    binary_target = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    for gradient, args in ((grad.cross_entropy, (logits, target)),
                           (grad.nll_loss, (logits, target)),
                           (grad.softmax_focal_loss, (logits, target)),
                           (grad.cross_entropy, (logits, binary_target / binary_target.sum(1,
                                                                               keepdims=True))),
                           (grad.binary_cross_entropy_with_logits, (logits, binary_target)),
                           (grad.sigmoid_focal_loss, (logits, binary_target))):
        for dtype in (np.float32, np.float64):
            values = gradient(args[0].astype(dtype), args[1])
            assert np.all(np.isfinite(values)), (gradient.__name__, dtype)
