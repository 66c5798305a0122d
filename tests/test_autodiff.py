"""Autograd through crossent: the regressions of the drop-in work, each against a reference.

References are PyTorch's own losses, optax's, hand derivations (written out below) and
float64 central differences; never crossent's own output.

- derivatives w.r.t. probability targets, labels and class weights at exact 0 (and 1);
- compat.torch.binary_cross_entropy's target gradient and second derivative;
- focal losses with gamma < 1 at saturated logits (finite, as optax);
- ``where=False`` positions holding -inf or NaN get a zero gradient;
- torch.func transforms of the core functions;
- hyperparameters as Python and NumPy numbers, 0-d arrays, tensors and JAX tracers;
- TensorFlow tensors in the core, eager and inside ``tf.function``.
"""

from __future__ import annotations

import numpy as np
import pytest

import crossent as ce
from crossent import grad
from crossent import information as info
from crossent_testing import central_difference

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402


def torch_grad(function, *arrays, wrt=0):
    tensors = [torch.tensor(np.asarray(a, dtype=np.float64) if np.asarray(a).dtype.kind == "f"
                            else np.asarray(a)) for a in arrays]
    tensors[wrt].requires_grad_(True)
    (value,) = torch.autograd.grad(function(*tensors).sum(), tensors[wrt])
    return value.numpy()


def jax_grad(function, *arrays, wrt=0):
    jax = pytest.importorskip("jax")
    with jax.enable_x64(True):
        values = [jax.numpy.asarray(a) for a in arrays]

        def total(x):
            return function(*values[:wrt], x, *values[wrt + 1:]).sum()

        return np.asarray(jax.grad(total)(values[wrt]))


# --- zero coefficients: the derivative in the coefficient ------------------------------------

LOGITS = np.array([[0.5, -1.0, 2.0]])
TARGET = np.array([[0.0, 0.3, 0.7]])
# d/dt of -Σ t log softmax(x) is -log softmax(x): [1.7413, 3.2413, 0.2413] (PyTorch's too)
MINUS_LOG_SOFTMAX = -(LOGITS - np.log(np.exp(LOGITS).sum()))


def test_target_gradient_at_a_zero_target_is_minus_log_softmax():
    from crossent.compat import optax as O
    from crossent.compat import tf as TF
    from crossent.compat import torch as T

    np.testing.assert_allclose(MINUS_LOG_SOFTMAX, [[1.7413, 3.2413, 0.2413]], atol=1e-4)
    expected = torch_grad(lambda x, t: F.cross_entropy(x, t), LOGITS, TARGET, wrt=1)
    np.testing.assert_allclose(expected, MINUS_LOG_SOFTMAX, rtol=1e-12)
    for function in (lambda x, t: T.cross_entropy(x, t),
                     lambda x, t: ce.cross_entropy(x, t),
                     lambda x, t: TF.softmax_cross_entropy_with_logits(t, x)):
        np.testing.assert_allclose(torch_grad(function, LOGITS, TARGET, wrt=1), expected,
                                   rtol=1e-12)
    for function in (lambda x, t: ce.cross_entropy(x, t), O.softmax_cross_entropy):
        np.testing.assert_allclose(jax_grad(function, LOGITS, TARGET, wrt=1), expected,
                                   rtol=1e-12)


def test_information_cross_entropy_gradient_in_p_at_zero():
    q = np.array([0.2, 0.3, 0.5])
    p = np.array([0.0, 0.4, 0.6])
    # d/dp H(p, q) = -log q, also where p = 0
    np.testing.assert_allclose(torch_grad(info.cross_entropy, p, q), -np.log(q), rtol=1e-12)
    np.testing.assert_allclose(jax_grad(info.cross_entropy, p, q), -np.log(q), rtol=1e-12)


def test_binary_target_gradient_at_zero_and_one_is_minus_x():
    from crossent.compat import keras as K
    from crossent.compat import optax as O
    from crossent.compat import tf as TF
    from crossent.compat import torch as T

    logits = np.array([[1.5, -2.0, 0.3, 4.0]])
    target = np.array([[0.0, 1.0, 0.0, 1.0]])
    reference = torch_grad(lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction="sum"),
                           logits, target, wrt=1)
    np.testing.assert_allclose(reference, -logits, rtol=1e-12)  # d/dt [softplus(x) - t x]
    sums = [lambda x, t: ce.binary_cross_entropy_with_logits(x, t, reduction="sum"),
            lambda x, t: T.binary_cross_entropy_with_logits(x, t, reduction="sum"),
            lambda x, t: TF.sigmoid_cross_entropy_with_logits(t, x),
            lambda x, t: O.sigmoid_binary_cross_entropy(x, t),
            lambda x, t: 4 * K.binary_crossentropy(t, x, from_logits=True, backend="torch")]
    for function in sums:
        np.testing.assert_allclose(torch_grad(function, logits, target, wrt=1), -logits,
                                   rtol=1e-12)
    for function in sums[::3]:
        np.testing.assert_allclose(jax_grad(function, logits, target, wrt=1), -logits,
                                   rtol=1e-12)


def test_class_weight_gradient_at_a_zero_weight():
    rng = np.random.default_rng(0)
    logits, soft = rng.normal(size=(4, 3)), rng.dirichlet(np.ones(3), size=4)
    weight = np.array([0.0, 1.5, 0.7])
    expected = torch_grad(lambda w, x, t: F.cross_entropy(x, t, weight=w), weight, logits, soft)
    actual = torch_grad(lambda w, x, t: ce.cross_entropy(x, t, weight=w), weight, logits, soft)
    np.testing.assert_allclose(actual, expected, rtol=1e-12)
    assert expected[0] != 0  # the zero-weight class has a derivative


# --- compat.torch.binary_cross_entropy ---------------------------------------------------------

def test_torch_binary_cross_entropy_target_gradient_and_second_derivative():
    from crossent.compat import torch as T

    results = []
    for function in (T.binary_cross_entropy, F.binary_cross_entropy):
        probs = torch.tensor([0.3, 0.9, 0.5, 0.0], dtype=torch.float64, requires_grad=True)
        target = torch.tensor([0.0, 1.0, 0.5, 1.0], dtype=torch.float64, requires_grad=True)
        loss = function(probs, target, reduction="sum")
        d_probs, d_target = torch.autograd.grad(loss, (probs, target), create_graph=True)
        second = torch.autograd.grad(d_probs.sum(), (probs, target))
        results.append([d_probs.detach(), d_target.detach(), *second])
    for ours, theirs in zip(*results, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=0)
    # -logit(p) and, in the interior, the true second derivative t/p² + (1 - t)/(1 - p)²
    np.testing.assert_allclose(results[0][1][:3], -np.log([0.3 / 0.7, 0.9 / 0.1, 1.0]))
    np.testing.assert_allclose(results[0][2][:3], [1 / 0.49, 1 / 0.81, 4.0], rtol=1e-9)


def test_torch_binary_cross_entropy_weight_requiring_grad_is_refused():
    from crossent.compat import torch as T

    with pytest.raises(ValueError, match="not differentiable with respect to argument 'weight'"):
        T.binary_cross_entropy(torch.tensor([0.5]), torch.tensor([1.0]),
                               weight=torch.tensor([2.0], requires_grad=True))


# --- focal losses with gamma < 1 at saturated logits ---------------------------------------------

@pytest.mark.parametrize("gamma", [0.25, 0.5])
def test_focal_gradients_finite_at_saturated_logits(gamma):
    logits = np.array([100.0, -100.0, 60.0, -60.0, 0.3])
    target = np.array([1.0, 0.0, 1.0, 0.0, 1.0])
    expected = grad.sigmoid_focal_loss(logits, target, gamma=gamma, reduction="sum")
    for gradient in (
        torch_grad(lambda x, t: ce.sigmoid_focal_loss(x, t, gamma=gamma, reduction="sum"),
                   logits, target),
        jax_grad(lambda x, t: ce.sigmoid_focal_loss(x, t, gamma=gamma, reduction="sum"),
                 logits, target),
    ):
        assert np.all(np.isfinite(gradient))
        np.testing.assert_allclose(gradient, expected, rtol=1e-9, atol=1e-30)
    assert np.all(expected[:4] == 0) or np.all(np.abs(expected[:4]) < 1e-20)  # mathematics: 0
    rows = np.array([[100.0, 0.0, -3.0], [0.2, 0.1, 0.0]])
    labels = np.array([0, 2])
    softmax_focal = torch_grad(lambda x: ce.softmax_focal_loss(x, torch.tensor(labels),
                                                               gamma=gamma), rows)
    assert np.all(np.isfinite(softmax_focal))
    np.testing.assert_allclose(softmax_focal, grad.softmax_focal_loss(rows, labels, gamma=gamma),
                               rtol=1e-9, atol=1e-30)


def test_optax_focal_gradient_at_saturated_logits_with_soft_labels():
    """optax's own test's inputs (gamma = 0.5, logits ±100, labels 0.9 / 1.0): optax's gradient.

    (That test, run in tests/conformance/test_peer_suites.py, checks the gradient and
    the Hessian are finite; here the gradient is compared with optax's.)
    """
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    from crossent.compat import optax as O

    logits = np.array([100.0, -100.0, 75.0, -75.0, 50.0, -50.0], dtype=np.float32)
    labels = np.array([0.9, 0.1, 0.8, 0.2, 1.0, 0.0], dtype=np.float32)
    ours, theirs = (jax.grad(lambda x, f=f: f(x, labels, gamma=0.5).sum())(logits)
                    for f in (O.sigmoid_focal_loss, optax.losses.sigmoid_focal_loss))
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


# --- where=False positions holding -inf or NaN ---------------------------------------------------

def test_masked_positions_with_minus_inf_or_nan_get_zero_gradient():
    logits = np.array([[0.5, -1.0, 2.0], [np.nan, 1.0, 0.0], [-np.inf, -np.inf, -np.inf]])
    where = np.array([True, False, False])
    soft = np.array([[0.2, 0.3, 0.5]] * 3)
    expected = np.zeros_like(logits)
    expected[0] = torch_grad(lambda x: F.cross_entropy(x, torch.tensor(soft[:1])), logits[:1])
    for target in (soft, np.array([2, 0, 1])):
        for gradient in (
            torch_grad(lambda x, t: ce.cross_entropy(x, t, where=torch.tensor(where)),
                       logits, target),
            jax_grad(lambda x, t, mask: ce.cross_entropy(x, t, where=mask), logits, target,
                     where),
        ):
            if target.ndim == 1:
                reference = np.zeros_like(logits)
                reference[0] = np.exp(logits[0]) / np.exp(logits[0]).sum() - np.eye(3)[2]
            else:
                reference = expected
            np.testing.assert_allclose(gradient, reference, rtol=1e-12, atol=1e-15)
    element_where = np.isfinite(logits)
    binary = np.full(logits.shape, 0.5)
    for loss in (ce.binary_cross_entropy_with_logits, ce.sigmoid_focal_loss):
        gradient = torch_grad(lambda x, t, loss=loss: loss(x, t, where=torch.tensor(element_where)),
                              logits, binary)
        assert np.all(np.isfinite(gradient)) and np.all(gradient[~element_where] == 0)


def test_optax_example_mask_with_nan_rows_matches_optax():
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    from crossent.compat import optax as O

    logits = np.array([[0.5, -1.0, 2.0], [np.nan, 1.0, -np.inf]])
    labels = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    where = np.array([True, False])
    grads = [jax.grad(lambda x, f=f: f(x, labels, where=where).sum())(logits)
             for f in (O.softmax_cross_entropy, optax.losses.softmax_cross_entropy)]
    np.testing.assert_allclose(*grads, rtol=1e-6)
    assert np.all(grads[0][1] == 0)


# --- torch.func on the core ---------------------------------------------------------------------

def test_torch_func_on_core_functions():
    from torch.func import grad as func_grad
    from torch.func import hessian, jacrev, vmap

    generator = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, dtype=torch.float64, generator=generator)
    index = torch.tensor([0, 2, 1, 0])
    soft = torch.softmax(torch.randn(4, 3, dtype=torch.float64, generator=generator), -1)
    pairs = [
        (lambda z: ce.cross_entropy(z, index, label_smoothing=0.1),
         lambda z: F.cross_entropy(z, index, label_smoothing=0.1)),
        (lambda z: ce.cross_entropy(z, soft), lambda z: F.cross_entropy(z, soft)),
        (lambda z: ce.nll_loss(torch.log_softmax(z, -1), index),
         lambda z: F.nll_loss(torch.log_softmax(z, -1), index)),
        (lambda z: ce.binary_cross_entropy_with_logits(z, soft),
         lambda z: F.binary_cross_entropy_with_logits(z, soft)),
    ]
    for ours, theirs in pairs:
        for transform in (func_grad, jacrev, hessian):
            torch.testing.assert_close(transform(ours)(x), transform(theirs)(x))
        batch = torch.stack([x, -x])
        torch.testing.assert_close(vmap(ours)(batch), vmap(theirs)(batch))


# --- hyperparameters ------------------------------------------------------------------------------

SMOOTHING_FORMS = [0.1, np.float32(0.1), np.array(0.1), "torch", "torch grad"]


@pytest.mark.parametrize("form", SMOOTHING_FORMS, ids=str)
def test_label_smoothing_forms(form):
    logits, target = torch.tensor([[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]]), torch.tensor([2, 1])
    epsilon = {"torch": torch.tensor(0.1), "torch grad": torch.tensor(0.1, requires_grad=True)
               }.get(form, form) if isinstance(form, str) else form
    loss = ce.cross_entropy(logits, target, label_smoothing=epsilon)
    torch.testing.assert_close(loss, F.cross_entropy(logits, target, label_smoothing=0.1))
    if form == "torch grad":
        (d_epsilon,) = torch.autograd.grad(loss, epsilon)
        # d/dε of -(1-ε) log p_y - ε/C Σ_c log p_c = mean over rows of log p_y - mean_c log p_c
        log_p = torch.log_softmax(logits, -1)
        expected = (log_p[[0, 1], target] - log_p.mean(-1)).mean()
        torch.testing.assert_close(d_epsilon, expected)


def test_hyperparameters_checked_where_concrete():
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\], got 1.5"):
        ce.cross_entropy([[0.1, 0.2]], [0], label_smoothing=torch.tensor(1.5, requires_grad=True))
    with pytest.raises(ValueError, match="gamma must be >= 0, got -1"):
        ce.sigmoid_focal_loss([0.1], [1.0], gamma=np.float64(-1.0))
    with pytest.raises(TypeError, match="label_smoothing must be a number in"):
        ce.cross_entropy([[0.1, 0.2]], [0], label_smoothing=torch.tensor([0.1, 0.2]))
    with pytest.raises(TypeError, match="axis must be an int, got 1.0"):
        ce.cross_entropy([[0.1, 0.2]], [0], axis=1.0)
    import crossent.torch as ct

    with pytest.raises(TypeError, match="label_smoothing must be a number in .* without a deriv"):
        ct.cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]),
                         label_smoothing=torch.tensor(0.1, requires_grad=True))


def test_integer_hyperparameters_as_numpy_and_torch_scalars():
    logits = np.array([[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]])
    expected = ce.cross_entropy(logits, np.array([2, 1]), axis=-1, ignore_index=-100)
    for axis, ignore_index in [(np.int64(1), np.int32(-100)), (np.array(-1), torch.tensor(-100))]:
        assert ce.cross_entropy(logits, np.array([2, 1]), axis=axis,
                                ignore_index=ignore_index) == expected


def test_jax_tracers_as_hyperparameters():
    jax = pytest.importorskip("jax")
    optax = pytest.importorskip("optax")
    jnp = jax.numpy
    logits = jnp.array([[2.0, 0.1, -2.0], [0.3, -0.1, 1.2]])
    labels = jnp.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    index = jnp.array([2, 0])

    def ours(gamma, alpha):
        return ce.sigmoid_focal_loss(logits, labels, gamma=gamma, alpha=alpha, reduction="sum")

    def theirs(gamma, alpha):
        return optax.losses.sigmoid_focal_loss(logits, labels, gamma=gamma, alpha=alpha).sum()

    np.testing.assert_allclose(jax.jit(ours)(1.5, 0.3), theirs(1.5, 0.3), rtol=1e-6)
    gammas = jnp.array([0.0, 0.5, 2.0])
    np.testing.assert_allclose(jax.vmap(ours, in_axes=(0, None))(gammas, 0.3),
                               jax.vmap(theirs, in_axes=(0, None))(gammas, 0.3), rtol=1e-6)
    np.testing.assert_allclose(jax.grad(ours, (0, 1))(1.5, 0.3),
                               jax.grad(theirs, (0, 1))(1.5, 0.3), rtol=1e-5)
    smoothed = jax.jit(lambda e: ce.cross_entropy(logits, index, label_smoothing=e))(0.2)
    np.testing.assert_allclose(smoothed, ce.cross_entropy(np.asarray(logits), np.asarray(index),
                                                          label_smoothing=0.2), rtol=1e-6)
    # traced out-of-range values are not checked (no concrete value), as documented
    jax.jit(lambda e: ce.cross_entropy(logits, index, label_smoothing=e))(1.5)


def test_central_differences_of_the_smoothing_derivative():
    logits = np.array([[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]])
    target = np.array([2, 1])
    numeric = central_difference(
        lambda e: np.asarray(ce.cross_entropy(logits, target, label_smoothing=float(e[0]))),
        np.array([0.2]))
    epsilon = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    (analytic,) = torch.autograd.grad(
        ce.cross_entropy(torch.tensor(logits), torch.tensor(target), label_smoothing=epsilon),
        epsilon)
    np.testing.assert_allclose(float(analytic), numeric[0], rtol=1e-7)


# --- TensorFlow tensors --------------------------------------------------------------------------

def test_tensorflow_tensors_eager_and_in_tf_function():
    tf = pytest.importorskip("tensorflow")
    logits = np.array([[0.5, -1.0, 2.0], [1.0, 0.2, -0.3]], dtype=np.float32)
    soft = np.array([[0.0, 0.3, 0.7], [1.0, 0.0, 0.0]], dtype=np.float32)
    x, t = tf.constant(logits), tf.constant(soft)
    with tf.GradientTape() as tape:
        tape.watch(t)
        loss = ce.cross_entropy(x, t, label_smoothing=0.1)
    assert isinstance(loss, tf.Tensor)
    np.testing.assert_allclose(loss.numpy(), ce.cross_entropy(logits, soft, label_smoothing=0.1),
                               rtol=1e-6)
    expected = torch_grad(lambda z, s: F.cross_entropy(z, s, label_smoothing=0.1), logits, soft,
                          wrt=1)
    np.testing.assert_allclose(tape.gradient(loss, t).numpy(), expected, rtol=1e-5)

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32),
                                  tf.TensorSpec([None], tf.int64)])
    def traced(logits, target):  # the batch dimension is unknown while tracing
        return (ce.cross_entropy(logits, target), ce.sigmoid_focal_loss(logits, tf.ones_like(logits)),
                ce.binary_cross_entropy_with_logits(logits, tf.zeros_like(logits), reduction="none"))

    index = np.array([2, 0])
    values = traced(x, tf.constant(index))
    np.testing.assert_allclose(values[0].numpy(), ce.cross_entropy(logits, index), rtol=1e-6)
    np.testing.assert_allclose(values[1].numpy(), ce.sigmoid_focal_loss(logits, np.ones((2, 3))),
                               rtol=1e-6)
    np.testing.assert_allclose(values[2].numpy(), ce.binary_cross_entropy_with_logits(
        logits, np.zeros((2, 3)), reduction="none"), rtol=1e-6)
    with pytest.raises(ValueError, match="target contains class index 5"):
        ce.cross_entropy(x, tf.constant([5, 0]))  # eager: values are checked
