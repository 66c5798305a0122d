"""crossent.losses against real PyTorch 2.13, plus invariances and extreme inputs.

Differential tests draw shapes and options with hypothesis and compare values
*and* gradients: PyTorch's autograd on its own function is the reference for
both ``crossent.grad`` (NumPy in, no autograd) and PyTorch autograd *through*
crossent (torch tensors in). Where crossent differs from PyTorch by design
(the README's "Semantics, in short") the test says so at that line.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import crossent as ce
from crossent import grad
from crossent_testing import assert_close, torch

pytestmark = pytest.mark.skipif(torch is None, reason="needs torch")
if torch is not None:
    import torch.nn.functional as F

DTYPES = {"float32": (np.float32, "torch.float32"), "float64": (np.float64, "torch.float64")}


def _torch(array: np.ndarray | None, requires_grad: bool = False):
    if array is None:
        return None
    tensor = torch.from_numpy(np.array(array, copy=True))  # keeps 0-d arrays 0-d
    return tensor.requires_grad_(True) if requires_grad else tensor


def _torch_value_and_grad(function, first: np.ndarray, *rest):
    """PyTorch's value and d sum(value) / d first (autograd), as NumPy."""
    x = _torch(first, requires_grad=True)
    value = function(x, *rest)
    value.sum().backward()
    return value.detach().numpy(), x.grad.numpy()


def _crossent_torch_value_and_grad(loss, first: np.ndarray, *rest, **options):
    """crossent's value and gradient with torch tensors in, through PyTorch autograd."""
    x = _torch(first, requires_grad=True)
    value = loss(x, *[_torch(r) if isinstance(r, np.ndarray) else r for r in rest],
                 **{k: _torch(v) if isinstance(v, np.ndarray) else v for k, v in options.items()})
    assert isinstance(value, torch.Tensor)
    value.sum().backward()
    return value.detach().numpy(), x.grad.numpy()


# ==================================================================================
# class-axis losses: cross_entropy, nll_loss, softmax_focal_loss
# ==================================================================================


@st.composite
def class_problems(draw, *, allow_probability: bool = True, allow_smoothing: bool = True):
    """Logits (N, C, *spatial) with axis=1 (PyTorch's layout), or (C,), and options."""
    dtype = draw(st.sampled_from(sorted(DTYPES)))
    ndim = draw(st.integers(1, 4))
    num_classes = draw(st.integers(1, 5))
    if ndim == 1:
        shape = (num_classes,)
    else:
        shape = (draw(st.integers(1, 4)), num_classes) + tuple(
            draw(st.integers(1, 3)) for _ in range(ndim - 2))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1.0, 5.0, 30.0]))
    logits = (rng.standard_normal(shape) * scale).astype(DTYPES[dtype][0])
    positions = (shape[0],) + shape[2:] if ndim > 1 else ()
    kind = draw(st.sampled_from(["index", "probability"] if allow_probability else ["index"]))
    ignore_index = -100
    if kind == "index":
        target = rng.integers(0, num_classes, size=positions).astype(np.int64)
        ignore_index = draw(st.sampled_from([-100, -1, 0, num_classes - 1]))
        ignored_fraction = draw(st.sampled_from([0.0, 0.3, 1.0]))
        ignored = rng.random(positions) < ignored_fraction
        target = np.where(ignored, ignore_index, target).astype(np.int64)
    else:
        raw = rng.random(shape) ** draw(st.sampled_from([1.0, 4.0]))
        # rows sum to 1 (a distribution) or not (multi-hot, as seed 004's [1, 1, 0])
        if draw(st.booleans()):
            raw = raw / raw.sum(axis=1 if ndim > 1 else 0, keepdims=True)
        target = raw.astype(logits.dtype)
    weight = None
    if draw(st.booleans()):
        weight = rng.uniform(0.2, 2.0, size=num_classes).astype(logits.dtype)
    smoothing = 0.0
    if allow_smoothing and draw(st.booleans()):
        smoothing = draw(st.floats(0.0, 1.0))
    reduction = draw(st.sampled_from(["none", "mean", "sum"]))
    # crossent gets the classes on any axis (moved there from PyTorch's axis 1)
    axis = draw(st.integers(-ndim, ndim - 1))
    return {"dtype": dtype, "logits": logits, "target": target, "kind": kind,
            "weight": weight, "ignore_index": ignore_index, "label_smoothing": smoothing,
            "reduction": reduction, "axis": axis}


def _for_crossent(problem, logits):
    """(logits, target, axis) with the classes moved from PyTorch's axis to the drawn axis."""
    torch_axis = 1 if logits.ndim > 1 else 0
    axis = problem["axis"]
    target = problem["target"]
    if problem["kind"] == "probability":
        target = np.moveaxis(target, torch_axis, axis)
    return np.moveaxis(logits, torch_axis, axis), target, axis


def _gradient_back(problem, gradient):
    """A gradient w.r.t. crossent's (moved) input, in PyTorch's layout."""
    return np.moveaxis(gradient, problem["axis"], 1 if gradient.ndim > 1 else 0)


def _nothing_counted(problem) -> bool:
    return (problem["kind"] == "index" and problem["reduction"] == "mean"
            and bool(np.all(problem["target"] == problem["ignore_index"])))


@given(class_problems())
def test_cross_entropy_matches_torch(problem) -> None:
    logits, target, dtype = problem["logits"], problem["target"], problem["dtype"]
    options = {"weight": problem["weight"], "ignore_index": problem["ignore_index"],
               "label_smoothing": problem["label_smoothing"],
               "reduction": problem["reduction"]}

    def reference(x):
        return F.cross_entropy(x, _torch(target), weight=_torch(problem["weight"]),
                               ignore_index=problem["ignore_index"],
                               label_smoothing=problem["label_smoothing"],
                               reduction=problem["reduction"])

    expected, expected_grad = _torch_value_and_grad(reference, logits)
    moved, moved_target, axis = _for_crossent(problem, logits)
    value = ce.cross_entropy(moved, moved_target, axis=axis, **options)
    gradient = _gradient_back(problem, grad.cross_entropy(moved, moved_target, axis=axis,
                                                          **options))
    through_torch, torch_grad = _crossent_torch_value_and_grad(
        ce.cross_entropy, moved, moved_target, axis=axis, **options)
    torch_grad = _gradient_back(problem, torch_grad)
    assert isinstance(value, (np.ndarray, np.generic)) and value.dtype == logits.dtype
    assert gradient.shape == logits.shape and gradient.dtype == logits.dtype
    if _nothing_counted(problem):
        # by design: a 'mean' over nothing counted is 0 with a zero gradient; PyTorch gives NaN
        assert np.isnan(expected)
        assert float(value) == 0.0 and float(through_torch) == 0.0
        assert np.all(gradient == 0) and np.all(torch_grad == 0)
        return
    assert_close(value, expected, dtype)
    assert_close(through_torch, expected, dtype)
    assert_close(gradient, expected_grad, dtype)
    assert_close(torch_grad, expected_grad, dtype)


@given(class_problems(allow_probability=False, allow_smoothing=False))
def test_nll_loss_matches_torch(problem) -> None:
    log_probs, target, dtype = problem["logits"], problem["target"], problem["dtype"]
    options = {"weight": problem["weight"], "ignore_index": problem["ignore_index"],
               "reduction": problem["reduction"]}

    def reference(x):
        return F.nll_loss(x, _torch(target), weight=_torch(problem["weight"]),
                          ignore_index=problem["ignore_index"],
                          reduction=problem["reduction"])

    expected, expected_grad = _torch_value_and_grad(reference, log_probs)
    moved, target, axis = _for_crossent(problem, log_probs)
    value = ce.nll_loss(moved, target, axis=axis, **options)
    gradient = _gradient_back(problem, grad.nll_loss(moved, target, axis=axis, **options))
    through_torch, torch_grad = _crossent_torch_value_and_grad(
        ce.nll_loss, moved, target, axis=axis, **options)
    torch_grad = _gradient_back(problem, torch_grad)
    if _nothing_counted(problem):
        # by design: 0 and a zero gradient where PyTorch gives NaN
        assert np.isnan(expected)
        assert float(value) == 0.0 and np.all(gradient == 0) and np.all(torch_grad == 0)
        return
    assert_close(value, expected, dtype)
    assert_close(through_torch, expected, dtype)
    assert_close(gradient, expected_grad, dtype)
    assert_close(torch_grad, expected_grad, dtype)


def _softmax_focal_reference(logits, target, *, kind, alpha, gamma, reduction, num_classes):
    """-Σ_c α_c t_c (1 - p_c)^γ log p_c with torch ops (PyTorch has no softmax focal loss)."""
    log_probs = F.log_softmax(logits, dim=1 if logits.ndim > 1 else 0)
    if kind == "index":
        mass = F.one_hot(target, num_classes).to(logits.dtype)
        if logits.ndim > 1:
            mass = torch.movedim(mass, -1, 1)
    else:
        mass = target
    if alpha is not None:
        alpha = torch.as_tensor(alpha, dtype=logits.dtype)
        mass = mass * (alpha.view(-1, *([1] * (logits.ndim - 2))) if alpha.ndim else alpha)
    losses = -(mass * (1 - log_probs.exp()) ** gamma * log_probs).sum(
        dim=1 if logits.ndim > 1 else 0)
    if reduction == "mean":
        return losses.mean()
    return losses.sum() if reduction == "sum" else losses


@given(class_problems(allow_smoothing=False), st.sampled_from([0.0, 1.0, 2.0, 3.5]),
       st.sampled_from(["none", "scalar", "per-class"]))
def test_softmax_focal_loss_matches_torch_formula(problem, gamma, alpha_kind) -> None:
    logits, target, dtype = problem["logits"], problem["target"], problem["dtype"]
    num_classes = logits.shape[1 if logits.ndim > 1 else 0]
    alpha = {"none": None, "scalar": 0.25,
             "per-class": np.linspace(0.5, 1.5, num_classes).astype(logits.dtype)}[alpha_kind]
    # softmax_focal_loss has no ignore_index: every index must be a class
    if problem["kind"] == "index":
        target = np.asarray(np.clip(target, 0, num_classes - 1))  # 0-d stays an array
    options = {"alpha": alpha, "gamma": gamma, "reduction": problem["reduction"]}

    def reference(x):
        return _softmax_focal_reference(x, _torch(target), kind=problem["kind"], alpha=alpha,
                                        gamma=gamma, reduction=problem["reduction"],
                                        num_classes=num_classes)

    expected, expected_grad = _torch_value_and_grad(reference, logits)
    moved, moved_target, axis = _for_crossent(problem | {"target": target}, logits)
    value = ce.softmax_focal_loss(moved, moved_target, axis=axis, **options)
    gradient = _gradient_back(problem, grad.softmax_focal_loss(moved, moved_target, axis=axis,
                                                               **options))
    through_torch, torch_grad = _crossent_torch_value_and_grad(
        ce.softmax_focal_loss, moved, moved_target, axis=axis, **options)
    torch_grad = _gradient_back(problem, torch_grad)
    assert_close(value, expected, dtype)
    assert_close(through_torch, expected, dtype)
    assert_close(gradient, expected_grad, dtype)
    assert_close(torch_grad, expected_grad, dtype)


# ==================================================================================
# element-wise losses: binary_cross_entropy (+ with logits), sigmoid_focal_loss
# ==================================================================================


@st.composite
def binary_problems(draw):
    dtype = draw(st.sampled_from(sorted(DTYPES)))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1.0, 5.0, 30.0]))
    logits = (rng.standard_normal(shape) * scale).astype(DTYPES[dtype][0])
    if draw(st.booleans()):
        target = (rng.random(shape) < 0.5).astype(logits.dtype)  # hard labels
    else:
        target = rng.random(shape).astype(logits.dtype)  # soft labels
    weight_kind = draw(st.sampled_from(["none", "full", "last"]))
    weight = {"none": None,
              "full": rng.uniform(0.2, 2.0, size=shape).astype(logits.dtype),
              "last": rng.uniform(0.2, 2.0, size=shape[-1:]).astype(logits.dtype)}[weight_kind]
    reduction = draw(st.sampled_from(["none", "mean", "sum"]))
    return {"dtype": dtype, "logits": logits, "target": target, "weight": weight,
            "reduction": reduction, "rng": rng}


@given(binary_problems(), st.booleans())
def test_binary_cross_entropy_matches_torch(problem, with_exact_0_and_1) -> None:
    dtype, target, reduction = problem["dtype"], problem["target"], problem["reduction"]
    probs = 1.0 / (1.0 + np.exp(-problem["logits"].astype(np.float64)))
    probs = np.clip(probs, 1e-6, 1 - 1e-6).astype(problem["logits"].dtype)
    if with_exact_0_and_1:
        exact = problem["rng"].random(probs.shape) < 0.3
        probs = np.where(exact, np.round(probs), probs).astype(probs.dtype)
    options = {"weight": problem["weight"], "reduction": reduction}

    def reference(x):
        return F.binary_cross_entropy(x, _torch(target), weight=_torch(problem["weight"]),
                                      reduction=reduction)

    expected, expected_grad = _torch_value_and_grad(reference, probs)
    value = ce.binary_cross_entropy(probs, target, **options)
    gradient = grad.binary_cross_entropy(probs, target, **options)
    through_torch, torch_grad = _crossent_torch_value_and_grad(
        ce.binary_cross_entropy, probs, target, **options)
    # values agree everywhere, including p in {0, 1} where both clamp log at -100
    assert_close(value, expected, dtype)
    assert_close(through_torch, expected, dtype)
    # gradients agree wherever p is strictly inside (0, 1). At p in {0, 1} they differ by
    # design: PyTorch returns (p - t) / max(p (1 - p), 1e-12) (e.g. -1e12 for p = 0, t = 1),
    # crossent the exact derivative of the clamped loss (0 through a clamped log, and
    # -(1-t)·d log(1-p)/dp = 1-t at p = 0)
    inside = (probs > 0) & (probs < 1)
    assert_close(gradient[inside], expected_grad[inside], dtype)
    assert_close(torch_grad[inside], expected_grad[inside], dtype)
    assert np.all(np.isfinite(gradient))


@given(binary_problems(), st.sampled_from(["none", "full", "last"]),
       st.sampled_from([0.0, 0.1, 0.5, 1.0]))
def test_binary_cross_entropy_with_logits_matches_torch(problem, pos_weight_kind,
                                                        smoothing) -> None:
    dtype, logits, reduction = problem["dtype"], problem["logits"], problem["reduction"]
    target, rng = problem["target"], problem["rng"]
    pos_weight = {"none": None,
                  "full": rng.uniform(0.2, 3.0, size=logits.shape).astype(logits.dtype),
                  "last": rng.uniform(0.2, 3.0, size=logits.shape[-1:]).astype(logits.dtype),
                  }[pos_weight_kind]
    # PyTorch has no label_smoothing here; the reference gets Keras's binary smoothing
    # t (1 - ε) + ε / 2 applied by hand
    smoothed = (target.astype(np.float64) * (1 - smoothing) + smoothing / 2).astype(logits.dtype)
    options = {"weight": problem["weight"], "pos_weight": pos_weight, "reduction": reduction,
               "label_smoothing": smoothing}

    def reference(x):
        return F.binary_cross_entropy_with_logits(
            x, _torch(smoothed), weight=_torch(problem["weight"]),
            pos_weight=_torch(pos_weight), reduction=reduction)

    expected, expected_grad = _torch_value_and_grad(reference, logits)
    value = ce.binary_cross_entropy_with_logits(logits, target, **options)
    gradient = grad.binary_cross_entropy_with_logits(logits, target, **options)
    through_torch, torch_grad = _crossent_torch_value_and_grad(
        ce.binary_cross_entropy_with_logits, logits, target, **options)
    assert_close(value, expected, dtype)
    assert_close(through_torch, expected, dtype)
    assert_close(gradient, expected_grad, dtype)
    assert_close(torch_grad, expected_grad, dtype)


def torchvision_sigmoid_focal_loss(inputs, targets, alpha: float = 0.25, gamma: float = 2,
                                   reduction: str = "none"):
    """torchvision.ops.sigmoid_focal_loss (torchvision/ops/focal_loss.py), line for line."""
    p = torch.sigmoid(inputs)
    ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce_loss * ((1 - p_t) ** gamma)
    if alpha >= 0:
        alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
        loss = alpha_t * loss
    if reduction == "mean":
        loss = loss.mean()
    elif reduction == "sum":
        loss = loss.sum()
    return loss


@given(binary_problems(), st.sampled_from([None, 0.25, 0.9]),
       st.sampled_from([0.0, 1.0, 2.0, 2.5]))
def test_sigmoid_focal_loss_matches_torchvision_formula(problem, alpha, gamma) -> None:
    dtype, logits, target, reduction = (problem["dtype"], problem["logits"], problem["target"],
                                        problem["reduction"])
    options = {"alpha": alpha, "gamma": gamma, "reduction": reduction}

    def reference(x):
        # torchvision spells "no alpha" as alpha < 0
        return torchvision_sigmoid_focal_loss(x, _torch(target),
                                              alpha=-1 if alpha is None else alpha,
                                              gamma=gamma, reduction=reduction)

    expected, expected_grad = _torch_value_and_grad(reference, logits)
    value = ce.sigmoid_focal_loss(logits, target, **options)
    gradient = grad.sigmoid_focal_loss(logits, target, **options)
    through_torch, torch_grad = _crossent_torch_value_and_grad(
        ce.sigmoid_focal_loss, logits, target, **options)
    assert_close(value, expected, dtype)
    assert_close(through_torch, expected, dtype)
    # torchvision's naive p_t loses precision when σ(x) rounds to 1 in float32 (|x| > ~17);
    # its gradient there is float32 noise, crossent's is computed from the stable terms
    if dtype == "float32":
        moderate = np.abs(logits) < 15
        assert_close(gradient[moderate], expected_grad[moderate], dtype, atol=1e-5)
        assert_close(torch_grad[moderate], expected_grad[moderate], dtype, atol=1e-5)
    else:
        assert_close(gradient, expected_grad, dtype)
        assert_close(torch_grad, expected_grad, dtype)


# ==================================================================================
# invariances (hand-derivable identities; no framework needed)
# ==================================================================================


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.mark.parametrize("kind", ["index", "probability"])
def test_axis_vs_moveaxis(kind: str) -> None:
    rng = _rng(1)
    logits = rng.standard_normal((2, 4, 3, 5))  # (N, C, H, W), classes on axis 1
    if kind == "index":
        target = rng.integers(0, 4, size=(2, 3, 5))
        moved_target = target
    else:
        target = rng.dirichlet(np.ones(4), size=(2, 3, 5)).transpose(0, 3, 1, 2).copy()
        moved_target = np.moveaxis(target, 1, -1)
    moved = np.moveaxis(logits, 1, -1)
    weight = rng.uniform(0.5, 2, 4)
    for reduction in ("none", "mean", "sum"):
        options = {"weight": weight, "label_smoothing": 0.1, "reduction": reduction}
        np.testing.assert_allclose(ce.cross_entropy(logits, target, axis=1, **options),
                                   ce.cross_entropy(moved, moved_target, **options),
                                   rtol=1e-14)
        np.testing.assert_allclose(
            grad.cross_entropy(logits, target, axis=1, **options),
            np.moveaxis(grad.cross_entropy(moved, moved_target, **options), -1, 1), rtol=1e-13)
        np.testing.assert_allclose(
            ce.softmax_focal_loss(logits, target, axis=1, reduction=reduction),
            ce.softmax_focal_loss(moved, moved_target, axis=-1, reduction=reduction),
            rtol=1e-14)
    # a negative axis names the same axis
    np.testing.assert_allclose(ce.cross_entropy(logits, target, axis=-3),
                               ce.cross_entropy(logits, target, axis=1), rtol=0)
    if kind == "index":
        log_probs = np.moveaxis(ce.log_softmax(moved), -1, 1)
        np.testing.assert_allclose(ce.nll_loss(log_probs, target, axis=1),
                                   ce.nll_loss(np.moveaxis(log_probs, 1, -1), target),
                                   rtol=1e-14)


@pytest.mark.parametrize("kind", ["index", "probability"])
def test_where_vs_slicing(kind: str) -> None:
    rng = _rng(2)
    logits = rng.standard_normal((6, 5))
    target = (rng.integers(0, 5, size=6) if kind == "index"
              else rng.dirichlet(np.ones(5), size=6))
    mask = np.array([True, False, True, True, False, True])
    weight = rng.uniform(0.5, 2, 5)
    for reduction in ("mean", "sum"):
        options = {"weight": weight, "label_smoothing": 0.2, "reduction": reduction}
        np.testing.assert_allclose(
            ce.cross_entropy(logits, target, where=mask, **options),
            ce.cross_entropy(logits[mask], target[mask], **options), rtol=1e-14)
        masked_grad = grad.cross_entropy(logits, target, where=mask, **options)
        np.testing.assert_allclose(masked_grad[mask],
                                   grad.cross_entropy(logits[mask], target[mask], **options),
                                   rtol=1e-13)
        assert np.all(masked_grad[~mask] == 0)
        np.testing.assert_allclose(
            ce.softmax_focal_loss(logits, target, where=mask, reduction=reduction),
            ce.softmax_focal_loss(logits[mask], target[mask], reduction=reduction), rtol=1e-14)
    # per-position losses are 0 where not counted
    losses = ce.cross_entropy(logits, target, where=mask, reduction="none")
    assert np.all(losses[~mask] == 0)
    # where=False positions may hold padding that is not a class (their targets are not checked)
    if kind == "index":
        padded = np.where(mask, target, 99)
        np.testing.assert_allclose(ce.cross_entropy(logits, padded, where=mask),
                                   ce.cross_entropy(logits[mask], target[mask]), rtol=1e-14)
        # ignore_index and where=False are the same thing
        ignored = np.where(mask, target, -100)
        np.testing.assert_allclose(ce.cross_entropy(logits, ignored, weight=weight),
                                   ce.cross_entropy(logits, target, weight=weight, where=mask),
                                   rtol=1e-14)


def test_where_broadcasts_and_vs_slicing_for_element_losses() -> None:
    rng = _rng(3)
    logits = rng.standard_normal((4, 3)) * 3
    target = (rng.random((4, 3)) < 0.5).astype(float)
    row_mask = np.array([[True], [False], [True], [True]])  # broadcasts over columns
    full_mask = np.broadcast_to(row_mask, (4, 3))
    rows = row_mask[:, 0]
    probs = ce.sigmoid(logits)
    for loss in (ce.binary_cross_entropy_with_logits, ce.sigmoid_focal_loss):
        for reduction in ("mean", "sum"):
            np.testing.assert_allclose(loss(logits, target, where=row_mask, reduction=reduction),
                                       loss(logits[rows], target[rows], reduction=reduction),
                                       rtol=1e-14)
            np.testing.assert_allclose(loss(logits, target, where=full_mask,
                                            reduction=reduction),
                                       loss(logits[rows], target[rows], reduction=reduction),
                                       rtol=1e-14)
    np.testing.assert_allclose(ce.binary_cross_entropy(probs, target, where=row_mask),
                               ce.binary_cross_entropy(probs[rows], target[rows]), rtol=1e-14)
    g = grad.binary_cross_entropy_with_logits(logits, target, where=row_mask)
    assert np.all(g[~rows] == 0)
    np.testing.assert_allclose(g[rows], grad.binary_cross_entropy_with_logits(
        logits[rows], target[rows]), rtol=1e-14)


def test_integer_vs_one_hot_targets() -> None:
    rng = _rng(4)
    logits = rng.standard_normal((7, 4)) * 3
    target = rng.integers(0, 4, size=7)
    one_hot = np.eye(4)[target]
    for smoothing in (0.0, 0.3):
        for reduction in ("none", "mean", "sum"):
            options = {"label_smoothing": smoothing, "reduction": reduction}
            np.testing.assert_allclose(ce.cross_entropy(logits, target, **options),
                                       ce.cross_entropy(logits, one_hot, **options),
                                       rtol=1e-14)
            np.testing.assert_allclose(grad.cross_entropy(logits, target, **options),
                                       grad.cross_entropy(logits, one_hot, **options),
                                       rtol=1e-13, atol=1e-16)
        np.testing.assert_allclose(ce.softmax_focal_loss(logits, target),
                                   ce.softmax_focal_loss(logits, one_hot), rtol=1e-14)
    # with class weights the per-position losses agree ('none', 'sum') but 'mean' does not:
    # integer targets divide by Σ w[y_i], probability targets by N (PyTorch's rules)
    weight = rng.uniform(0.5, 2, 4)
    for reduction in ("none", "sum"):
        np.testing.assert_allclose(
            ce.cross_entropy(logits, target, weight=weight, reduction=reduction),
            ce.cross_entropy(logits, one_hot, weight=weight, reduction=reduction), rtol=1e-14)
    total = float(ce.cross_entropy(logits, target, weight=weight, reduction="sum"))
    assert float(ce.cross_entropy(logits, target, weight=weight)) == pytest.approx(
        total / weight[target].sum(), rel=1e-14)
    assert float(ce.cross_entropy(logits, one_hot, weight=weight)) == pytest.approx(
        total / 7, rel=1e-14)


def test_compositions() -> None:
    rng = _rng(5)
    logits = rng.standard_normal((5, 4)) * 2
    target = rng.integers(0, 4, size=5)
    weight = rng.uniform(0.5, 2, 4)
    # cross_entropy = nll_loss ∘ log_softmax (seed 003)
    np.testing.assert_allclose(ce.cross_entropy(logits, target, weight=weight),
                               ce.nll_loss(ce.log_softmax(logits), target, weight=weight),
                               rtol=1e-14)
    # focal losses with γ = 0 and no α are the plain losses
    np.testing.assert_allclose(ce.softmax_focal_loss(logits, target, gamma=0.0),
                               ce.cross_entropy(logits, target), rtol=1e-14)
    binary_target = (rng.random((5, 4)) < 0.5).astype(float)
    np.testing.assert_allclose(
        ce.sigmoid_focal_loss(logits, binary_target, alpha=None, gamma=0.0),
        ce.binary_cross_entropy_with_logits(logits, binary_target), rtol=1e-14)
    # BCE on σ(x) = BCE with logits (moderate x, where σ does not saturate)
    np.testing.assert_allclose(ce.binary_cross_entropy(ce.sigmoid(logits), binary_target),
                               ce.binary_cross_entropy_with_logits(logits, binary_target),
                               rtol=1e-12)
    # the stable form of seed 002: max(x, 0) - x z + log(1 + exp(-|x|))
    soft = rng.random((5, 4))
    stable = np.maximum(logits, 0) - logits * soft + np.log1p(np.exp(-np.abs(logits)))
    np.testing.assert_allclose(ce.binary_cross_entropy_with_logits(logits, soft,
                                                                   reduction="none"),
                               stable, rtol=1e-14)
    # reductions: sum = Σ none, mean = sum / N for unweighted losses
    for loss, args in ((ce.cross_entropy, (logits, target)),
                       (ce.binary_cross_entropy_with_logits, (logits, soft)),
                       (ce.sigmoid_focal_loss, (logits, soft))):
        per_item = loss(*args, reduction="none")
        assert float(loss(*args, reduction="sum")) == pytest.approx(per_item.sum(), rel=1e-14)
        assert float(loss(*args)) == pytest.approx(per_item.mean(), rel=1e-14)


def test_label_smoothing_with_weights_and_ignore_index_by_hand() -> None:
    # the definition: a = (1-ε) w_y e_y + ε/C w (integer targets); mean divides by Σ w[y_i] counted
    logits = np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [2.0, 2.0, 2.0]])
    target = np.array([1, -100, 0])
    weight = np.array([0.5, 2.0, 1.0])
    eps = 0.3
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    row0 = -((1 - eps) * weight[1] * log_p[0, 1] + eps / 3 * (weight * log_p[0]).sum())
    row2 = -((1 - eps) * weight[0] * log_p[2, 0] + eps / 3 * (weight * log_p[2]).sum())
    losses = ce.cross_entropy(logits, target, weight=weight, label_smoothing=eps,
                              reduction="none")
    np.testing.assert_allclose(losses, [row0, 0.0, row2], rtol=1e-14)
    assert float(ce.cross_entropy(logits, target, weight=weight, label_smoothing=eps)) == (
        pytest.approx((row0 + row2) / (weight[1] + weight[0]), rel=1e-14))


# ==================================================================================
# extreme inputs
# ==================================================================================


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logits_of_magnitude_1e4(dtype) -> None:
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, -1e4]], dtype=dtype)
    target = np.array([0, 1, 1])
    # hand values: row 0 picks its max (loss 0); row 1 picks -1e4 against 1e4 (loss 2e4);
    # row 2 picks one of two tied maxima (loss log 2)
    losses = ce.cross_entropy(logits, target, reduction="none")
    np.testing.assert_allclose(losses, [0.0, 2e4, np.log(2)], rtol=1e-6)
    g = grad.cross_entropy(logits, target, reduction="none")
    np.testing.assert_allclose(g, [[0, 0, 0], [0, -1, 1], [0.5, -0.5, 0]], atol=1e-6)
    assert np.all(np.isfinite(g))
    expected = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(target),
                               reduction="none")
    assert_close(losses, expected, np.dtype(dtype).name)
    # binary losses stay exact where BCE on σ(x) would saturate at the clamp
    x = np.array([1e4, -1e4, 1e4, -1e4], dtype=dtype)
    t = np.array([1.0, 0.0, 0.0, 1.0], dtype=dtype)
    np.testing.assert_allclose(ce.binary_cross_entropy_with_logits(x, t, reduction="none"),
                               [0, 0, 1e4, 1e4], rtol=1e-7)
    np.testing.assert_allclose(grad.binary_cross_entropy_with_logits(x, t, reduction="none"),
                               [0, 0, 1, -1])
    focal = ce.sigmoid_focal_loss(x, t, reduction="none")
    assert np.all(np.isfinite(focal))
    # α_t (1 - p_t)^γ BCE: right answers give 0; wrong ones 0.75·1e4 and 0.25·1e4
    np.testing.assert_allclose(focal, [0, 0, 0.75e4, 0.25e4], rtol=1e-7)
    assert np.all(np.isfinite(grad.sigmoid_focal_loss(x, t)))
    assert np.all(np.isfinite(grad.softmax_focal_loss(logits, target)))


def test_minus_inf_logits_mark_impossible_classes() -> None:
    inf = np.inf
    logits = np.array([[0.0, -inf, 1.0], [-inf, 2.0, -inf]])
    target = np.array([2, 1])
    # hand values: row 0 is softmax over {0, 1} -> -log(e/(1+e)); row 1 has one possible class
    losses = ce.cross_entropy(logits, target, reduction="none")
    np.testing.assert_allclose(losses, [np.log1p(np.exp(-1.0)), 0.0], rtol=1e-15)
    g = grad.cross_entropy(logits, target, reduction="none")
    sig = 1 / (1 + np.e)
    np.testing.assert_allclose(g, [[sig, 0, -sig], [0, 0, 0]], rtol=1e-15, atol=0)
    # probability targets with no mass on impossible classes, focal and weights: finite
    soft = np.array([[0.3, 0.0, 0.7], [0.0, 1.0, 0.0]])
    for loss, args in ((ce.cross_entropy, (logits, soft)),
                       (ce.softmax_focal_loss, (logits, target)),
                       (ce.softmax_focal_loss, (logits, soft))):
        assert np.all(np.isfinite(loss(*args, reduction="none")))
    assert np.all(np.isfinite(grad.cross_entropy(logits, soft)))
    assert np.all(np.isfinite(grad.softmax_focal_loss(logits, target)))
    assert np.all(np.isfinite(grad.cross_entropy(logits, target, weight=np.ones(3))))
    # torch autograd through crossent agrees and stays finite
    x = torch.tensor(logits, requires_grad=True)
    ce.cross_entropy(x, torch.tensor(target), reduction="sum").backward()
    np.testing.assert_allclose(x.grad.numpy(), g, rtol=1e-15)
    # PyTorch agrees on the value
    np.testing.assert_allclose(losses, F.cross_entropy(torch.tensor(logits), torch.tensor(target),
                                                       reduction="none").numpy(), rtol=1e-15)
    # mass on an impossible class is an infinite loss (the mathematics is infinite)
    assert ce.cross_entropy(logits, np.array([1, 1]), reduction="none")[0] == inf
    # -inf in binary losses: exact limits (log σ(-inf) = -inf only where t puts mass)
    x = np.array([-inf, inf, -inf, inf])
    t = np.array([0.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(ce.binary_cross_entropy_with_logits(x, t, reduction="none"),
                                  [0, 0, inf, inf])
    np.testing.assert_array_equal(grad.binary_cross_entropy_with_logits(x, t, reduction="none"),
                                  [0, 0, -1, 1])


def test_probabilities_exactly_0_and_1() -> None:
    p = np.array([0.0, 1.0, 0.0, 1.0])
    t = np.array([0.0, 1.0, 1.0, 0.0])
    # log clamped at -100 as PyTorch does: right answers 0, certain wrong answers 100
    losses = ce.binary_cross_entropy(p, t, reduction="none")
    np.testing.assert_array_equal(losses, [0, 0, 100, 100])
    np.testing.assert_array_equal(
        losses, F.binary_cross_entropy(torch.tensor(p), torch.tensor(t), reduction="none"))
    g = grad.binary_cross_entropy(p, t, reduction="none")
    # the exact derivative of the clamped loss: d/dp -log(1-p) = 1 at p = 0, d/dp -log p = -1
    # at p = 1, and 0 through a clamped log (PyTorch: (p - t)/max(p(1-p), 1e-12), i.e.
    # 0, 0, -1e12, 1e12 -- the design differs here, see the docstring)
    np.testing.assert_array_equal(g, [1, -1, 0, 0])
    pt = torch.tensor(p, requires_grad=True)
    ce.binary_cross_entropy(pt, torch.tensor(t), reduction="sum").backward()
    np.testing.assert_array_equal(pt.grad.numpy(), g)
    # information: 0 log 0 = 0
    from crossent import information as info
    assert float(info.entropy([1.0, 0.0])) == 0.0
    assert float(info.cross_entropy([1.0, 0.0], [1.0, 0.0])) == 0.0
    assert float(info.kl_divergence([1.0, 0.0], [0.5, 0.5])) == pytest.approx(np.log(2))
    assert float(info.cross_entropy([0.5, 0.5], [1.0, 0.0])) == np.inf


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_empty_batch(reduction: str) -> None:
    logits = np.zeros((0, 3))
    target = np.zeros((0,), dtype=np.int64)
    class_losses = ((ce.cross_entropy, (logits, target)),
                    (ce.nll_loss, (logits, target)),
                    (ce.softmax_focal_loss, (logits, target)),
                    (ce.cross_entropy, (logits, np.zeros((0, 3)))))
    element_losses = ((ce.binary_cross_entropy, (np.zeros((0, 3)), np.zeros((0, 3)))),
                      (ce.binary_cross_entropy_with_logits, (np.zeros((0,)), np.zeros((0,)))),
                      (ce.sigmoid_focal_loss, (np.zeros((0,)), np.zeros((0,)))))
    for number, (loss, args) in enumerate(class_losses + element_losses):
        value, gradient = ce.value_and_grad(loss, *args, reduction=reduction)
        if reduction == "none":
            per_item = args[0].shape[:-1] if number < len(class_losses) else args[0].shape
            assert value.shape == per_item
        else:
            # by design 0 for 'mean' (PyTorch: NaN); 0 for 'sum' as in PyTorch
            assert value.shape == () and float(value) == 0.0
        assert gradient.shape == args[0].shape
    assert np.isnan(F.cross_entropy(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)).item())


def test_all_ignored_gives_zero_and_zero_gradient() -> None:
    rng = _rng(6)
    logits = rng.standard_normal((3, 4))
    target = np.full(3, -100)
    for options in ({}, {"weight": np.ones(4)}, {"label_smoothing": 0.2}):
        value, gradient = ce.value_and_grad(ce.cross_entropy, logits, target, **options)
        assert float(value) == 0.0 and np.all(gradient == 0)  # PyTorch: NaN (by design)
        assert np.isnan(F.cross_entropy(torch.tensor(logits), torch.tensor(target),
                                        **{k: torch.tensor(v) if isinstance(v, np.ndarray) else v
                                           for k, v in options.items()}).item())
    value, gradient = ce.value_and_grad(ce.nll_loss, logits, target)
    assert float(value) == 0.0 and np.all(gradient == 0)
    nothing = np.zeros(3, dtype=bool)
    for loss, args in ((ce.cross_entropy, (logits, np.array([0, 1, 2]))),
                       (ce.binary_cross_entropy_with_logits, (logits, np.zeros((3, 4)))),
                       (ce.sigmoid_focal_loss, (logits, np.zeros((3, 4)))),
                       (ce.binary_cross_entropy, (ce.sigmoid(logits), np.zeros((3, 4))))):
        where = nothing if loss is ce.cross_entropy else np.zeros((3, 4), dtype=bool)
        value, gradient = ce.value_and_grad(loss, *args, where=where)
        assert float(value) == 0.0 and np.all(gradient == 0)
    # torch autograd through crossent: zero gradient, no NaN
    x = torch.tensor(logits, requires_grad=True)
    ce.cross_entropy(x, torch.tensor(target)).backward()
    assert torch.all(x.grad == 0)


def test_nan_inputs_propagate() -> None:
    # documented: NaN is not an error and does not crash; it propagates to the loss
    nan = np.nan
    logits = np.array([[nan, 1.0, 2.0], [0.0, 1.0, 2.0]])
    losses = ce.cross_entropy(logits, np.array([1, 1]), reduction="none")
    assert np.isnan(losses[0]) and np.isfinite(losses[1])
    assert np.isnan(ce.cross_entropy(logits, np.array([1, 1])))
    assert np.isnan(ce.binary_cross_entropy(np.array([nan, 0.5]), np.array([1.0, 0.0])))
    assert np.isnan(ce.binary_cross_entropy_with_logits(np.array([nan, 0.5]),
                                                        np.array([1.0, 0.0])))
    assert np.isnan(ce.sigmoid_focal_loss(np.array([nan, 0.5]), np.array([1.0, 0.0])))
    assert np.isnan(ce.softmax_focal_loss(logits, np.array([1, 1])))
    assert np.isnan(ce.nll_loss(logits, np.array([0, 1])))
    assert np.isnan(grad.binary_cross_entropy(np.array([nan]), np.array([1.0]))[0])
    assert np.isnan(grad.binary_cross_entropy_with_logits(np.array([nan]), np.array([1.0]))[0])
    # PyTorch agrees for logits; its binary_cross_entropy raises on a NaN probability
    # ("all elements of input should be between 0 and 1"), crossent lets NaN propagate
    assert np.isnan(F.binary_cross_entropy_with_logits(torch.tensor([nan]),
                                                       torch.tensor([1.0])).item())
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(torch.tensor([nan, 0.5]), torch.tensor([1.0, 0.0]))
    # NaN targets propagate too
    assert np.isnan(ce.binary_cross_entropy_with_logits(np.array([0.5]), np.array([nan])))
    assert np.isnan(ce.cross_entropy(np.zeros((1, 2)), np.array([[nan, 1.0]])))


# ==================================================================================
# target dtypes and corner options
# ==================================================================================


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int16", "int32", "int64"])
def test_integer_target_dtypes(dtype: str) -> None:
    rng = _rng(9)
    logits = rng.standard_normal((3, 4))
    target = np.array([0, 3, 1])
    expected = F.cross_entropy(torch.tensor(logits), torch.tensor(target)).item()
    assert float(ce.cross_entropy(logits, target.astype(dtype))) == pytest.approx(expected,
                                                                                rel=1e-14)
    torch_target = torch.tensor(target.astype(dtype))
    assert float(ce.cross_entropy(torch.tensor(logits), torch_target)) == pytest.approx(
        expected, rel=1e-14)
    # ignore_index compares with any integer dtype (here class 3 is ignored)
    expected_ignored = F.cross_entropy(torch.tensor(logits), torch.tensor(target),
                                       ignore_index=3).item()
    assert float(ce.cross_entropy(logits, target.astype(dtype), ignore_index=3)) == (
        pytest.approx(expected_ignored, rel=1e-14))


def test_zero_total_weight_gives_zero() -> None:
    # every counted target has class weight 0: the weighted mean divides by Σ w[y_i] = 0.
    # By the same rule as "nothing counted", crossent returns 0 and a zero gradient where
    # PyTorch returns NaN (0/0)
    logits = _rng(10).standard_normal((3, 4))
    target = np.array([0, 1, 2])
    weight = np.array([0.0, 0.0, 0.0, 1.0])
    value, gradient = ce.value_and_grad(ce.cross_entropy, logits, target, weight=weight)
    assert float(value) == 0.0 and np.all(gradient == 0)
    assert np.isnan(F.cross_entropy(torch.tensor(logits), torch.tensor(target),
                                    weight=torch.tensor(weight)).item())


def test_nll_loss_with_probability_targets_by_hand() -> None:
    # an extension over PyTorch's nll_loss: ℓ_i = -Σ_c w_c t_ic x_ic, mean over positions
    rng = _rng(12)
    log_probs = ce.log_softmax(rng.standard_normal((4, 3)))
    target = rng.dirichlet(np.ones(3), size=4)
    weight = np.array([0.5, 1.0, 2.0])
    expected = -(weight * target * log_probs).sum(axis=1)
    np.testing.assert_allclose(ce.nll_loss(log_probs, target, weight=weight, reduction="none"),
                               expected, rtol=1e-14)
    assert float(ce.nll_loss(log_probs, target, weight=weight)) == pytest.approx(
        expected.mean(), rel=1e-14)


def test_where_and_ignore_index_together() -> None:
    rng = _rng(13)
    logits = rng.standard_normal((5, 3))
    target = np.array([0, -100, 2, 1, 1])
    mask = np.array([True, True, False, True, False])
    kept = np.array([0, 3])  # counted: not ignored and where=True
    weight = np.array([1.0, 2.0, 0.5])
    expected = F.cross_entropy(torch.tensor(logits[kept]), torch.tensor(target[kept]),
                               weight=torch.tensor(weight), label_smoothing=0.2).item()
    assert float(ce.cross_entropy(logits, target, where=mask, weight=weight,
                                  label_smoothing=0.2)) == pytest.approx(expected, rel=1e-14)


def test_mixed_precision_targets_follow_the_logits() -> None:
    logits = _rng(14).standard_normal((3, 4)).astype(np.float32)
    soft = np.full((3, 4), 0.25)  # float64 target, float32 logits
    assert ce.cross_entropy(logits, soft).dtype == np.float32
    assert ce.binary_cross_entropy_with_logits(logits, soft, pos_weight=np.ones(4)).dtype == (
        np.float32)
    assert grad.cross_entropy(logits, np.array([0, 1, 2]), weight=np.ones(4)).dtype == (
        np.float32)
    # bool targets are accepted by the binary losses
    np.testing.assert_allclose(
        ce.binary_cross_entropy_with_logits(logits, logits > 0),
        ce.binary_cross_entropy_with_logits(logits, (logits > 0).astype(np.float32)), rtol=0)
