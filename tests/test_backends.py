"""The same call on NumPy, PyTorch and JAX arrays: same numbers, that library's array back.

Also: torch ``loss.backward()`` and ``jax.grad`` equal ``crossent.grad``;
``jax.jit`` works; 16-bit inputs (float16, bfloat16) are computed in float32,
the loss is float32 and the gradient comes back in the input dtype.
"""

from __future__ import annotations

import numpy as np
import pytest

import crossent as ce
from crossent import grad
from crossent import information as info
from crossent_testing import jax, jnp, requires_jax, requires_torch, to_numpy, torch

RNG = np.random.default_rng(11)
LOGITS = RNG.standard_normal((4, 3, 2)) * 3  # (N, C, L) with axis=1 in some cases
INDEX = np.array([[0, 2], [1, -100], [2, 2], [0, 1]])
CLASSES_LAST = RNG.standard_normal((5, 4)) * 2
CLASS_INDEX = np.array([3, 0, 1, 1, 2])
SOFT = RNG.dirichlet(np.ones(4), size=5)
BINARY = RNG.standard_normal((3, 4)) * 3
BINARY_TARGET = (RNG.random((3, 4)) < 0.5).astype(float)
MASK = np.array([True, True, False, True, True])

# (loss, first argument, target, options): every loss with several options
LOSS_CASES = {
    "cross_entropy": (ce.cross_entropy, CLASSES_LAST, CLASS_INDEX, {}),
    "cross_entropy_nchw": (ce.cross_entropy, LOGITS, INDEX,
                           {"axis": 1, "weight": np.array([0.5, 1.0, 2.0]),
                            "label_smoothing": 0.1}),
    "cross_entropy_soft_where": (ce.cross_entropy, CLASSES_LAST, SOFT,
                                 {"where": MASK, "reduction": "sum"}),
    "nll_loss": (ce.nll_loss, CLASSES_LAST, CLASS_INDEX,
                 {"weight": np.array([1.0, 2.0, 0.5, 1.0]), "reduction": "none"}),
    "softmax_focal_loss": (ce.softmax_focal_loss, CLASSES_LAST, CLASS_INDEX,
                           {"alpha": np.array([0.25, 0.5, 0.75, 1.0])}),
    "binary_cross_entropy": (ce.binary_cross_entropy, 1 / (1 + np.exp(-BINARY)),
                             BINARY_TARGET, {"weight": np.array([1.0, 2.0, 0.5, 1.0])}),
    "binary_cross_entropy_with_logits": (ce.binary_cross_entropy_with_logits, BINARY,
                                         BINARY_TARGET,
                                         {"pos_weight": np.array([1.0, 2.0, 3.0, 0.5]),
                                          "label_smoothing": 0.1}),
    "sigmoid_focal_loss": (ce.sigmoid_focal_loss, BINARY, BINARY_TARGET,
                           {"gamma": 1.5, "reduction": "none"}),
}
GRADIENTS = {ce.cross_entropy: grad.cross_entropy, ce.nll_loss: grad.nll_loss,
             ce.softmax_focal_loss: grad.softmax_focal_loss,
             ce.binary_cross_entropy: grad.binary_cross_entropy,
             ce.binary_cross_entropy_with_logits: grad.binary_cross_entropy_with_logits,
             ce.sigmoid_focal_loss: grad.sigmoid_focal_loss}


def _convert(value, convert):
    return convert(value) if isinstance(value, np.ndarray) else value


def _is_jax(x) -> bool:
    return jax is not None and isinstance(x, jax.Array)


# ==================================================================================
# same numbers, that library's arrays
# ==================================================================================


@requires_torch
@pytest.mark.parametrize("case", sorted(LOSS_CASES))
def test_losses_torch_backward_equals_crossent_grad(case: str) -> None:
    loss, first, target, options = LOSS_CASES[case]
    x = torch.tensor(first, requires_grad=True)
    value = loss(x, torch.as_tensor(target), **{k: _convert(v, torch.as_tensor)
                                               for k, v in options.items()})
    assert isinstance(value, torch.Tensor) and value.dtype == torch.float64
    value.sum().backward()
    np.testing.assert_allclose(value.detach().numpy(), loss(first, target, **options),
                               rtol=1e-14)
    np.testing.assert_allclose(x.grad.numpy(), GRADIENTS[loss](first, target, **options),
                               rtol=1e-12, atol=1e-15)
    # crossent.grad on torch tensors returns a torch tensor with the same numbers
    torch_grad = GRADIENTS[loss](torch.as_tensor(first), torch.as_tensor(target),
                                 **{k: _convert(v, torch.as_tensor) for k, v in options.items()})
    assert isinstance(torch_grad, torch.Tensor)
    np.testing.assert_allclose(torch_grad.numpy(), x.grad.numpy(), rtol=1e-12, atol=1e-15)


@requires_jax
@pytest.mark.parametrize("case", sorted(LOSS_CASES))
def test_losses_jax_grad_and_jit(case: str) -> None:
    loss, first, target, options = LOSS_CASES[case]
    jax_options = {k: _convert(v, jnp.asarray) for k, v in options.items()}
    jax_target = jnp.asarray(target)

    def total(x):
        return jnp.sum(loss(x, jax_target, **jax_options))

    value = loss(jnp.asarray(first), jax_target, **jax_options)
    assert _is_jax(value) and value.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(value), loss(first, target, **options), rtol=1e-14)
    expected_grad = GRADIENTS[loss](first, target, **options)
    # jax.grad under jit (eager jax.grad gives the same numbers, but dispatching op by op
    # costs seconds per case; test_jax_grad_eager covers it once)
    np.testing.assert_allclose(np.asarray(jax.jit(jax.grad(total))(jnp.asarray(first))),
                               expected_grad, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(float(jax.jit(total)(jnp.asarray(first))),
                               np.sum(loss(first, target, **options)), rtol=1e-14)
    # crossent.grad on JAX arrays returns a JAX array, under jit too
    jitted_grad = jax.jit(lambda x: GRADIENTS[loss](x, jax_target, **jax_options))
    jax_grad = jitted_grad(jnp.asarray(first))
    assert _is_jax(jax_grad)
    np.testing.assert_allclose(np.asarray(jax_grad), expected_grad, rtol=1e-12, atol=1e-15)


@requires_jax
def test_jax_grad_eager() -> None:
    # without jit: jax.grad and crossent.grad on concrete JAX arrays
    loss, first, target, options = LOSS_CASES["cross_entropy_nchw"]
    jax_options = {k: _convert(v, jnp.asarray) for k, v in options.items()}
    expected_grad = GRADIENTS[loss](first, target, **options)
    g = jax.grad(lambda x: loss(x, jnp.asarray(target), **jax_options))(jnp.asarray(first))
    np.testing.assert_allclose(np.asarray(g), expected_grad, rtol=1e-12, atol=1e-15)
    g = GRADIENTS[loss](jnp.asarray(first), jnp.asarray(target), **jax_options)
    assert _is_jax(g)
    np.testing.assert_allclose(np.asarray(g), expected_grad, rtol=1e-12, atol=1e-15)


def _library_converters():
    converters = []
    if torch is not None:
        converters.append(("torch", torch.as_tensor, lambda r: isinstance(r, torch.Tensor)))
    if jnp is not None:
        converters.append(("jax", jnp.asarray, _is_jax))
    return converters


CONVERTERS = _library_converters()
ELEMENTWISE = {
    "softmax": (ce.softmax, (CLASSES_LAST,), {"axis": 0}),
    "log_softmax": (ce.log_softmax, (LOGITS,), {"axis": 1}),
    "sigmoid": (ce.sigmoid, (BINARY,), {}),
    "log_sigmoid": (ce.log_sigmoid, (BINARY,), {}),
    "logit": (ce.logit, (1 / (1 + np.exp(-BINARY)),), {}),
    "softmax_inverse": (ce.softmax_inverse, (SOFT,), {}),
    "self_information": (info.self_information, (SOFT,), {"base": 2}),
    "entropy": (info.entropy, (SOFT,), {}),
    "cross_entropy_info": (info.cross_entropy, (SOFT, SOFT[::-1].copy()), {"base": 2}),
    "kl_divergence": (info.kl_divergence, (SOFT, SOFT[::-1].copy()), {}),
    "binary_entropy": (info.binary_entropy, (SOFT,), {}),
    "binary_accuracy": (ce.metrics.binary_accuracy, (BINARY_TARGET, 1 / (1 + np.exp(-BINARY))),
                        {}),
    "categorical_accuracy": (ce.metrics.categorical_accuracy, (SOFT, CLASSES_LAST), {}),
    "sparse_categorical_accuracy": (ce.metrics.sparse_categorical_accuracy,
                                    (CLASS_INDEX, CLASSES_LAST), {}),
}


@pytest.mark.parametrize("library, convert, is_library", CONVERTERS,
                         ids=[c[0] for c in CONVERTERS])
@pytest.mark.parametrize("case", sorted(ELEMENTWISE) + sorted(LOSS_CASES))
def test_numpy_torch_jax_give_the_same_numbers(case, library, convert, is_library) -> None:
    if case in ELEMENTWISE:
        function, args, options = ELEMENTWISE[case]
    else:
        function, first, target, options = LOSS_CASES[case]
        args = (first, target)
    expected = function(*args, **options)
    result = function(*[convert(a) for a in args],
                      **{k: _convert(v, convert) for k, v in options.items()})
    assert is_library(result), type(result)
    np.testing.assert_allclose(to_numpy(result), to_numpy(expected), rtol=1e-14, atol=1e-300)
    # float32 in, float32 out, numbers within float32 precision
    if np.asarray(args[0]).dtype == np.float64:
        args32 = [a.astype(np.float32) if a.dtype == np.float64 else a for a in args]
        options32 = {k: v.astype(np.float32)
                     if isinstance(v, np.ndarray) and v.dtype == np.float64 else v
                     for k, v in options.items()}
        result32 = function(*[convert(a) for a in args32],
                            **{k: _convert(v, convert) for k, v in options32.items()})
        assert "float32" in str(result32.dtype)
        np.testing.assert_allclose(to_numpy(result32), to_numpy(expected), rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("library, convert, is_library", CONVERTERS,
                         ids=[c[0] for c in CONVERTERS])
def test_lists_next_to_arrays_join_their_library(library, convert, is_library) -> None:
    # a list target / weight / mask next to torch or JAX logits becomes that library's array
    logits = convert(CLASSES_LAST)
    options = {"weight": [1.0, 2.0, 0.5, 1.0], "where": [True, True, False, True, True]}
    result = ce.cross_entropy(logits, CLASS_INDEX.tolist(), **options)
    assert is_library(result)
    expected = ce.cross_entropy(CLASSES_LAST, CLASS_INDEX, weight=np.array(options["weight"]),
                                where=np.array(options["where"]))
    np.testing.assert_allclose(to_numpy(result), expected, rtol=1e-14)
    result = ce.binary_cross_entropy_with_logits(convert(BINARY), BINARY_TARGET.tolist(),
                                                 pos_weight=[1.0, 2.0, 3.0, 0.5])
    assert is_library(result)
    np.testing.assert_allclose(
        to_numpy(result),
        ce.binary_cross_entropy_with_logits(BINARY, BINARY_TARGET,
                                            pos_weight=np.array([1.0, 2.0, 3.0, 0.5])),
        rtol=1e-14)
    assert is_library(info.kl_divergence([0.5, 0.5], convert(np.array([0.9, 0.1]))))
    assert is_library(ce.metrics.sparse_categorical_accuracy(CLASS_INDEX.tolist(),
                                                             convert(CLASSES_LAST)))


@requires_torch
def test_mixing_array_libraries_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match=r"the arrays passed mix array libraries \(numpy.ndarray, "
                                        r"torch.Tensor\); pass arrays of one library"):
        ce.cross_entropy(torch.zeros(2, 3), np.array([0, 1]))


def test_python_lists_come_back_as_numpy() -> None:
    assert isinstance(ce.cross_entropy([[1.0, 2.0]], [1], reduction="none"), np.ndarray)
    assert isinstance(ce.softmax([1.0, 2.0]), np.ndarray)
    assert isinstance(grad.cross_entropy([[1.0, 2.0]], [1]), np.ndarray)


# ==================================================================================
# 16-bit inputs: computed in float32, loss float32, gradient in the input dtype
# ==================================================================================


@requires_torch
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("case", sorted(LOSS_CASES))
def test_torch_16_bit_inputs(case: str, dtype: str) -> None:
    loss, first, target, options = LOSS_CASES[case]
    low = getattr(torch, dtype)
    x = torch.tensor(first).to(low)
    # the reference: the same (rounded) 16-bit values computed in float32
    x32 = x.to(torch.float32)
    torch_options = {k: _convert(v, torch.as_tensor) for k, v in options.items()}
    t = torch.as_tensor(target)
    if t.is_floating_point():
        t = t.to(torch.float32)
    options32 = {k: v.to(torch.float32)
                 if isinstance(v, torch.Tensor) and v.is_floating_point() else v
                 for k, v in torch_options.items()}
    expected = loss(x32, t, **options32)
    expected_grad = GRADIENTS[loss](x32, t, **options32)
    x.requires_grad_(True)
    value = loss(x, t, **options32)
    assert value.dtype == torch.float32
    torch.testing.assert_close(value.detach(), expected, rtol=1e-6, atol=1e-6)
    value.sum().backward()
    assert x.grad.dtype == low
    gradient = GRADIENTS[loss](x.detach(), t, **options32)
    assert gradient.dtype == low
    # the float32 gradient rounded once to the 16-bit dtype
    torch.testing.assert_close(gradient, expected_grad.to(low), rtol=0, atol=0)
    torch.testing.assert_close(x.grad.to(torch.float32), expected_grad, rtol=1e-2, atol=1e-3)


@requires_torch
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_torch_16_bit_activations(dtype: str) -> None:
    low = getattr(torch, dtype)
    x = torch.tensor(CLASSES_LAST).to(low)
    for function in (ce.softmax, ce.log_softmax, ce.sigmoid, ce.log_sigmoid):
        result = function(x)
        assert result.dtype == torch.float32
        torch.testing.assert_close(result, function(x.to(torch.float32)))


@requires_jax
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_jax_16_bit_inputs(dtype: str) -> None:
    low = getattr(jnp, dtype)
    x = jnp.asarray(CLASSES_LAST).astype(low)
    target = jnp.asarray(CLASS_INDEX)
    value = ce.cross_entropy(x, target)
    assert value.dtype == jnp.float32
    np.testing.assert_allclose(float(value), float(ce.cross_entropy(x.astype(jnp.float32),
                                                                    target)), rtol=1e-6)
    gradient = grad.cross_entropy(x, target)
    assert gradient.dtype == low
    assert jax.jit(jax.grad(lambda z: ce.cross_entropy(z, target)))(x).dtype == low


# ==================================================================================
# extremes through autograd on every library
# ==================================================================================


@requires_jax
def test_jax_grad_finite_at_minus_inf_and_1e4() -> None:
    logits = jnp.asarray([[1e4, -1e4, 0.0], [0.0, -jnp.inf, 1.0]])
    target = jnp.asarray([0, 2])
    g = jax.jit(jax.grad(lambda z: ce.cross_entropy(z, target, reduction="sum")))(logits)
    assert bool(jnp.all(jnp.isfinite(g)))
    np.testing.assert_allclose(np.asarray(g), grad.cross_entropy(np.asarray(logits),
                                                                 np.asarray(target),
                                                                 reduction="sum"), rtol=1e-15)
    x = jnp.asarray([1e4, -1e4, -jnp.inf, jnp.inf])
    t = jnp.asarray([1.0, 0.0, 0.0, 1.0])
    for loss in (ce.binary_cross_entropy_with_logits, ce.sigmoid_focal_loss):
        g = jax.jit(jax.grad(lambda z, loss=loss: loss(z, t, reduction="sum")))(x)
        np.testing.assert_array_equal(np.asarray(g), [0, 0, 0, 0])


@requires_jax
def test_jax_all_ignored_gives_zero_and_zero_gradient() -> None:
    target = jnp.asarray([-100, -100])
    value, g = jax.jit(jax.value_and_grad(lambda z: ce.cross_entropy(z, target)))(
        jnp.ones((2, 3)))
    assert float(value) == 0.0 and bool(jnp.all(g == 0))
    jitted = jax.jit(lambda z: ce.cross_entropy(z, target))
    assert float(jitted(jnp.ones((2, 3)))) == 0.0
