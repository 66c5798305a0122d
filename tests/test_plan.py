"""The target plan (crossent._plan) and the core's edge values: NaN, +inf, zero weights, traces.

Expected values come from PyTorch and optax (installed, used as oracles) or by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import crossent as ce
from crossent import _plan, grad

torch = pytest.importorskip("torch")
F = torch.nn.functional

NAN, INF = math.nan, math.inf


@pytest.fixture(params=["numba", "numpy"])
def kernel_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a NumPy test through each kernel implementation (the fused kernels)."""
    from crossent import kernels

    monkeypatch.setenv("CROSSENT_KERNELS", request.param)
    monkeypatch.setattr(kernels, "_rows", None)
    yield request.param
    kernels._rows = None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_logit_propagates_with_zero_target_mass(kernel_backend: str, dtype: type) -> None:
    logits = np.array([[NAN, 0.0]], dtype)
    # probability target with no mass: PyTorch gives NaN (0 · NaN), not 0
    expected = F.cross_entropy(torch.tensor(logits), torch.zeros(1, 2, dtype=torch.tensor(logits).dtype),
                               reduction="none").numpy()
    assert np.isnan(expected).all()
    assert np.isnan(ce.cross_entropy(logits, np.zeros((1, 2), dtype), reduction="none")).all()
    # a zero class weight on the target: PyTorch's -w_y log p_y = 0 · NaN = NaN
    weight = np.array([1.0, 0.0], dtype)
    expected = F.cross_entropy(torch.tensor(logits), torch.tensor([1]), weight=torch.tensor(weight),
                               reduction="none").numpy()
    assert np.isnan(expected).all()
    assert np.isnan(ce.cross_entropy(logits, np.array([1]), weight=weight, reduction="none")).all()


def test_nan_logit_propagates_on_generic_paths() -> None:
    logits = torch.tensor([[NAN, 0.0]])
    assert torch.isnan(ce.cross_entropy(logits, torch.zeros(1, 2), reduction="none")).all()
    assert torch.isnan(ce.nll_loss(logits, torch.zeros(1, 2), reduction="none")).all()
    assert torch.isnan(ce.cross_entropy(logits, torch.tensor([1]), weight=torch.tensor([1.0, 0.0]),
                                        reduction="none")).all()
    assert np.isnan(ce.softmax_focal_loss(np.array([[NAN, 0.0]]), np.array([[0.0, 0.0]]),
                                          reduction="none")).all()


def test_nan_logits_of_positions_not_counted_stay_out(kernel_backend: str) -> None:
    logits = np.array([[NAN, 0.0], [1.0, 2.0]])
    # ignore_index row: PyTorch gives loss 0 there and the other row's loss
    expected = F.cross_entropy(torch.tensor(logits), torch.tensor([-100, 1]), reduction="none").numpy()
    np.testing.assert_allclose(ce.cross_entropy(logits, np.array([-100, 1]), reduction="none"),
                               expected, rtol=1e-15)
    generic = ce.cross_entropy(torch.tensor(logits), torch.tensor([-100, 1]), reduction="none")
    np.testing.assert_allclose(generic.numpy(), expected, rtol=1e-15)
    masked = ce.cross_entropy(logits, np.array([[0.0, 1.0], [0.0, 1.0]]), reduction="none",
                              where=np.array([False, True]))
    np.testing.assert_allclose(masked, expected, rtol=1e-15)


@pytest.mark.parametrize("target", [0, 1])
def test_positive_infinite_logit_gives_nan_as_pytorch(kernel_backend: str, target: int) -> None:
    logits = np.array([[INF, 0.0, 1.0]])
    expected = F.cross_entropy(torch.tensor(logits), torch.tensor([target]), reduction="none")
    assert torch.isnan(expected).all()  # PyTorch: NaN on and off the target
    assert np.isnan(ce.cross_entropy(logits, np.array([target]), reduction="none")).all()
    assert torch.isnan(ce.cross_entropy(torch.tensor(logits), torch.tensor([target]),
                                        reduction="none")).all()
    # (optax's integer-label loss gives lse - z_y = inf - 0 = +inf off the target, and NaN on
    # it; crossent decides NaN for the whole row, as PyTorch's log_softmax)


def test_negative_infinite_logits_still_mark_impossible_classes(kernel_backend: str) -> None:
    logits = np.array([[-INF, 0.0, 0.0]])
    np.testing.assert_allclose(ce.cross_entropy(logits, np.array([1]), reduction="none"), [math.log(2)])
    np.testing.assert_allclose(ce.cross_entropy(torch.tensor(logits), torch.tensor([1]),
                                                reduction="none").numpy(), [math.log(2)])


def test_mean_with_zero_weight_sum_and_label_smoothing_is_zero(kernel_backend: str) -> None:
    logits = np.array([[1.0, 2.0, 0.5], [0.3, 0.1, 2.0]])
    weight = np.array([0.0, 0.0, 1.0])
    options = dict(weight=weight, label_smoothing=0.1)
    # D = w[0] + w[1] = 0 while the smoothing spread is not: the documented 0, zero gradient
    assert ce.cross_entropy(logits, np.array([0, 1]), **options) == 0.0
    np.testing.assert_array_equal(grad.cross_entropy(logits, np.array([0, 1]), **options),
                                  np.zeros_like(logits))
    tensor = torch.tensor(logits, requires_grad=True)
    loss = ce.cross_entropy(tensor, torch.tensor([0, 1]), weight=torch.tensor(weight),
                            label_smoothing=0.1)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(tensor.grad, torch.zeros_like(tensor))
    # the sum is unchanged (hand value: Σ_i (ε/C) w_2 (-log p_i2))
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    np.testing.assert_allclose(ce.cross_entropy(logits, np.array([0, 1]), reduction="sum", **options),
                               -(0.1 / 3) * log_probs[:, 2].sum(), rtol=1e-14)


def test_out_of_range_index_under_jit_is_nan_as_optax() -> None:
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    import jax.numpy as jnp

    logits = jnp.array([[1.0, 2.0, 0.5], [0.3, 0.1, 2.0], [0.0, 1.0, 0.0]])
    target = jnp.array([0, 3, -100])
    losses = jax.jit(lambda z, y: ce.cross_entropy(z, y, reduction="none"))(logits, target)
    reference = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.array([0, 3, 1]))
    assert np.isnan(np.asarray(reference)[1])  # optax: NaN for index 3 of 3 classes
    np.testing.assert_allclose(np.asarray(losses)[0], np.asarray(reference)[0], rtol=1e-6)
    assert np.isnan(np.asarray(losses)[1])
    assert np.asarray(losses)[2] == 0.0  # ignore_index stays ignored
    mean = jax.jit(lambda z, y: ce.cross_entropy(z, y))(logits, target)
    assert np.isnan(np.asarray(mean))  # never "treated as ignored"
    gradient = jax.jit(jax.grad(lambda z, y: ce.cross_entropy(z, y)))(logits, target)
    assert np.isnan(np.asarray(gradient)[1]).all()
    # concrete indices still raise
    with pytest.raises(ValueError, match="target contains class index 3"):
        ce.cross_entropy(logits, target)


@pytest.mark.parametrize("num_classes", [3, 300])
def test_uint8_class_indices_as_pytorch(num_classes: int) -> None:
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((4, num_classes))
    target = np.array([0, 1, 2, min(num_classes - 1, 255)], np.uint8)  # 256 classes and more: no wrap
    # PyTorch accepts uint8 indices (checked here on int64, the same indices)
    expected = F.cross_entropy(torch.tensor(logits), torch.tensor(target.astype(np.int64)),
                               reduction="none").numpy()
    np.testing.assert_allclose(ce.cross_entropy(logits, target, reduction="none"), expected,
                               rtol=1e-13)
    generic = ce.cross_entropy(torch.tensor(logits), torch.tensor(target), reduction="none")
    np.testing.assert_allclose(generic.numpy(), expected, rtol=1e-13)
    jnp = pytest.importorskip("jax.numpy")
    with_jax = ce.cross_entropy(jnp.asarray(logits, jnp.float32), jnp.asarray(target), reduction="none")
    np.testing.assert_allclose(np.asarray(with_jax), expected, rtol=1e-5)


def test_plan_class_by_hand() -> None:
    inputs = _plan.prepare_class(
        np.zeros((3, 3)), np.array([2, -100, 0]), axis=-1, weight=np.array([1.0, 2.0, 4.0]),
        ignore_index=-100, where=None, name="logits",
    )
    plan = _plan.plan_class(inputs, 0.3)
    # a_ic = 0.7 w_y [c = y] + 0.1 w_c on counted rows; D = w_2 + w_0 = 5
    np.testing.assert_allclose(plan.coefficients, [[0.1, 0.2, 0.4 + 2.8], [0, 0, 0],
                                                   [0.1 + 0.7, 0.2, 0.4]], rtol=1e-15)
    assert plan.divisor == 5.0
    assert _plan.plan_class(inputs, mean_over="positions").divisor == 2.0
    probabilities = _plan.prepare_class(
        np.zeros((2, 2)), np.array([[0.5, 0.5], [1.0, 0.0]]), axis=-1, weight=np.array([1.0, 3.0]),
        ignore_index=-100, where=np.array([True, False]), name="logits",
    )
    plan = _plan.plan_class(probabilities)
    np.testing.assert_allclose(plan.coefficients, [[0.5, 1.5], [0.0, 0.0]])
    assert plan.divisor == 1.0  # counted rows; weights do not enter
