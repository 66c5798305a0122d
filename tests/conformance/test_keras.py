"""crossent.compat.keras against Keras 3 itself, on the torch, jax and tensorflow backends.

Each Keras backend runs in its own long-lived process (conftest.keras_worker);
crossent.compat.keras runs here on torch tensors, and its autograd gradient
is compared with the gradient Keras's backend computes, on the same backend
setting (``backend=``). The NumPy path is checked to give the same values.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossent.compat import keras as K

from ._compare import assert_close, jax_value_and_grad, torch_value_and_grad
from .conftest import KERAS_BACKENDS, keras_worker, require

SETTINGS = settings(max_examples=15, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

# Random tests vary values at one shape and dtype: Keras on JAX compiles every
# primitive anew for each shape and dtype (seconds each on a loaded machine).
# Shapes, K-dimensional inputs and float32/float16 are covered by the edge cases.
SHAPE = (3, 4)


def check(name, y_true, y_pred, *, backends=KERAS_BACKENDS, grad=True, kind="function",
          sample_weight=None, **kwargs):
    """Same value (and dtype, shape) and gradient w.r.t. y_pred as Keras, on each backend."""
    require("torch")
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    for backend in backends:
        reference = keras_worker(backend).call(
            name, y_true, y_pred, kind=kind, grad=grad, sample_weight=sample_weight, **kwargs
        )
        assert "error" not in reference, reference.get("traceback")
        if kind == "class":
            loss = getattr(K, name)(backend=backend, **kwargs)

            def function(t, p, loss=loss):
                return loss(t, p, sample_weight=sample_weight)
        else:
            def function(t, p, backend=backend):
                return getattr(K, name)(t, p, backend=backend, **kwargs)

        # autograd of the array library the backend runs on: JAX arrays for Keras-on-JAX
        # (jnp.clip splits the gradient at a tie with a bound, torch.clamp passes it whole)
        differentiate = jax_value_and_grad if backend == "jax" else torch_value_and_grad
        value, gradient = differentiate(function, y_true, y_pred,
                                        grad_of="second" if grad else None)
        what = f"{name}({kwargs}) on Keras's {backend} backend"
        # (under jax_enable_x64, which the worker sets for float64 references, Keras's
        # sparse CE on JAX is promoted to float64 by jax.nn.one_hot; crossent does the same)
        assert value.dtype == reference["value"].dtype, what
        dtype = value.dtype  # the computation's dtype (the Loss classes compute in float32)
        if kind == "function" and y_pred.dtype.itemsize < dtype.itemsize:
            dtype = y_pred.dtype  # a result promoted after the loss was taken in y_pred's dtype
        binary = name.lower().startswith("binary")
        focal = "focal" in name.lower()
        if dtype == np.float64 and ((backend != "tensorflow" and binary) or focal):
            # Keras's ops.mean runs in float32 on torch and jax; the focal factor is taken from
            # the clipped p here (documented): both only float32-exact
            dtype = np.float32
        assert_close(value, reference["value"], dtype, f"{what}: value")
        if grad:
            assert_close(gradient, reference["grad"], dtype, f"{what}: gradient")
        assert_close(function(y_true, y_pred), value, dtype, f"{what}: NumPy vs torch")


# --- random inputs -------------------------------------------------------------------

@st.composite
def probabilities(draw, shape, *, normalised=False):
    """Probabilities with exact 0s and 1s mixed in; rows unnormalised unless asked."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = rng.uniform(0.0, 1.0, size=shape)
    special = rng.uniform(size=shape)
    values[special < 0.1] = 0.0
    values[special > 0.95] = 1.0
    values[..., 0] = np.maximum(values[..., 0], 0.05)  # no all-zero row (Keras: 0/0 = NaN)
    if normalised:
        values = values / values.sum(axis=-1, keepdims=True)
    return values


@st.composite
def categorical_case(draw):
    shape = SHAPE
    from_logits = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if from_logits:
        y_pred = rng.normal(scale=draw(st.sampled_from([1.0, 10.0])), size=shape)
    else:
        y_pred = draw(probabilities(shape))
    if draw(st.booleans()):
        y_true = np.eye(shape[1])[rng.integers(0, shape[1], size=shape[0])]
    else:
        y_true = rng.dirichlet(np.ones(shape[1]), size=shape[0])
    return y_true, y_pred, from_logits


@SETTINGS
@given(categorical_case(), st.sampled_from([0.0, 0.1]))
def test_categorical_crossentropy_random(case, label_smoothing):
    y_true, y_pred, from_logits = case
    check("categorical_crossentropy", y_true, y_pred, from_logits=from_logits,
          label_smoothing=label_smoothing)


@SETTINGS
@given(categorical_case(), st.booleans())
def test_sparse_categorical_crossentropy_random(case, ignore):
    _, y_pred, from_logits = case
    rng = np.random.default_rng(len(y_pred))
    labels = rng.integers(0, y_pred.shape[-1], size=y_pred.shape[:-1])
    ignore_class = None
    if ignore:
        ignore_class = -1
        labels[0] = -1
    check("sparse_categorical_crossentropy", labels, y_pred, from_logits=from_logits,
          ignore_class=ignore_class)


@st.composite
def binary_case(draw):
    shape = SHAPE
    from_logits = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if from_logits:
        y_pred = rng.normal(scale=draw(st.sampled_from([1.0, 30.0])), size=shape)
    else:
        y_pred = draw(probabilities(shape))
    y_true = rng.integers(0, 2, size=shape).astype(float)
    if draw(st.booleans()):
        y_true = rng.uniform(size=shape)
    return y_true, y_pred, from_logits


@SETTINGS
@given(binary_case(), st.sampled_from([0.0, 0.2]))
def test_binary_crossentropy_random(case, label_smoothing):
    y_true, y_pred, from_logits = case
    check("binary_crossentropy", y_true, y_pred, from_logits=from_logits,
          label_smoothing=label_smoothing)


@SETTINGS
@given(binary_case(), st.booleans(), st.sampled_from([0.0, 1.0, 2.0]))
def test_binary_focal_crossentropy_random(case, balancing, gamma):
    y_true, y_pred, from_logits = case
    # Keras's focal factor uses the unclipped p (crossent the clipped one): the gradient
    # differs where p is exactly 0 or 1 (documented); values are compared everywhere
    interior = from_logits or bool(np.all((y_pred > 1e-6) & (y_pred < 1 - 1e-6)))
    check("binary_focal_crossentropy", y_true, y_pred, grad=interior and np.abs(y_pred).max() < 15,
          apply_class_balancing=balancing, gamma=gamma, from_logits=from_logits)


@SETTINGS
@given(st.data())
def test_kl_divergence_random(data):
    y_true = data.draw(probabilities(SHAPE, normalised=True))
    y_pred = data.draw(probabilities(SHAPE, normalised=True))
    check("kl_divergence", y_true, y_pred)


# --- edge cases ------------------------------------------------------------------------


def test_probabilities_exactly_zero_and_one():
    y_true = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    y_pred = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.2, 0.0, 0.8]])
    check("categorical_crossentropy", y_true, y_pred)
    check("sparse_categorical_crossentropy", np.array([1, 0, 2]), y_pred)
    check("binary_crossentropy", y_true, y_pred)
    check("binary_focal_crossentropy", y_true, y_pred, grad=False)
    check("kl_divergence", y_true, y_pred)


def test_unnormalised_rows_and_sparse_backend_difference():
    # TF clips then renormalises, the other backends renormalise then clip
    y_pred = np.array([[0.5, 0.0, 0.0], [2.0, 1.0, 1e-9]], dtype=np.float32)
    check("sparse_categorical_crossentropy", np.array([1, 2]), y_pred)
    check("categorical_crossentropy", np.eye(3, dtype=np.float32)[[1, 2]], y_pred)
    tf_value = K.sparse_categorical_crossentropy([1, 2], y_pred, backend="tensorflow")
    torch_value = K.sparse_categorical_crossentropy([1, 2], y_pred, backend="torch")
    assert not np.allclose(tf_value, torch_value)


def test_multi_hot_labels_from_logits():
    # seed 004's multi-label rows with categorical CE: the values agree on every backend,
    # the gradients do not (TF backpropagates softmax - y_true, which assumes rows sum to 1)
    y = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 0]], dtype=float)
    logits = np.array([[12, 3, 2], [3, 10, 1], [1, 2, 5], [4, 6.5, 1.2], [3, 6, 1]])
    check("categorical_crossentropy", y, logits, from_logits=True)
    check("CategoricalCrossentropy", y, logits, kind="class", from_logits=True)


def test_minus_inf_logits():
    logits = np.array([[0.0, -np.inf, 1.0], [2.0, 1.0, -np.inf]])
    y_true = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    check("categorical_crossentropy", y_true, logits, from_logits=True)
    check("sparse_categorical_crossentropy", np.array([0, 1]), logits, from_logits=True)
    check("binary_crossentropy", (logits > 0).astype(float), logits, from_logits=True)


def test_k_dimensional_inputs():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 4, 5))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    labels = rng.integers(0, 5, size=(2, 3, 4))
    one_hot = np.eye(5)[labels]
    for from_logits, y_pred in ((True, logits), (False, probs)):
        check("categorical_crossentropy", one_hot, y_pred, from_logits=from_logits)
        # Keras on torch moves the class axis to 1 and, from probabilities, F.nll_loss2d's
        # backward then fails ("grad_input must be contiguous"): see the test below
        check("sparse_categorical_crossentropy", labels, y_pred, from_logits=from_logits,
              backends=("jax", "tensorflow") if not from_logits else KERAS_BACKENDS)
        check("sparse_categorical_crossentropy", labels, y_pred, from_logits=from_logits,
              backends=("torch",), grad=False)
        check("binary_crossentropy", (one_hot > 0).astype(float), y_pred,
              from_logits=from_logits)
    # class axis 1 (channels first): categorical on every backend, sparse on torch and jax
    moved = np.moveaxis(probs, -1, 1)
    check("categorical_crossentropy", np.moveaxis(one_hot, -1, 1), moved, axis=1)
    check("sparse_categorical_crossentropy", labels, moved, axis=1, backends=("torch",),
          grad=False)  # Keras's jax backend checks shapes as if axis were -1; TF refuses axis=1
    check("binary_crossentropy", (one_hot > 0).astype(float), probs, axis=1)


def test_trailing_label_axis_is_squeezed():
    check("sparse_categorical_crossentropy", np.array([[1], [2]]),
          np.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]]))


def test_float16():
    y_pred = np.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]], dtype=np.float16)
    y_true = np.array([[0, 1, 0], [0, 0, 1]], dtype=np.float16)
    check("categorical_crossentropy", y_true, y_pred, grad=False)
    check("sparse_categorical_crossentropy", np.array([1, 2]), y_pred, grad=False)
    check("binary_crossentropy", y_true, y_pred, grad=False)
    check("categorical_crossentropy", y_true, y_pred * 4, from_logits=True, grad=False)


def _bfloat16():
    return np.dtype(require("ml_dtypes").bfloat16)


@pytest.mark.parametrize("sixteen", ["float16", "bfloat16"])
def test_sixteen_bit_inputs(sixteen):
    """16-bit y_pred: Keras's value and dtype, backend by backend.

    Keras's sparse CE on JAX multiplies by a one-hot in the default float, so its loss is
    float32 (float64 under jax_enable_x64, as in the worker); torch and TensorFlow keep
    the 16-bit dtype. crossent computes in float32 and rounds once, Keras at every step:
    the values agree to the 16-bit tolerance.
    """
    dtype = _bfloat16() if sixteen == "bfloat16" else np.dtype(sixteen)
    probs = np.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]]).astype(dtype)
    logits = np.array([[1.5, -0.5, 2.0], [0.1, 3.0, -1.0], [0.0, 0.2, -0.3]]).astype(dtype)
    labels = np.array([1, 2, 0])
    for from_logits, y_pred in ((False, probs), (True, logits)):
        check("sparse_categorical_crossentropy", labels, y_pred, from_logits=from_logits,
              grad=False)
        check("sparse_categorical_crossentropy", labels.astype(np.int32), y_pred,
              from_logits=from_logits, grad=False)
        check("sparse_categorical_crossentropy", np.array([1, -1, 0]), y_pred,
              from_logits=from_logits, ignore_class=-1, grad=False)
        check("categorical_crossentropy", np.eye(3, dtype=dtype)[labels], y_pred,
              from_logits=from_logits, grad=False)
        check("binary_crossentropy", np.eye(3, dtype=dtype)[labels], y_pred,
              from_logits=from_logits, grad=False)


def test_sparse_result_dtype_follows_jax_x64():
    # Keras-on-JAX without x64 (the default): a float16 sparse CE comes back in float32
    jax = require("jax")
    probs = jax.numpy.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]], dtype=jax.numpy.float16)
    with jax.enable_x64(False):  # (the test session enables x64)
        assert K.sparse_categorical_crossentropy([1, 2], probs, backend="jax").dtype == np.float32
        assert K.sparse_categorical_crossentropy([1, 2], probs, backend="torch").dtype == np.float16
    with jax.enable_x64(True):
        assert K.sparse_categorical_crossentropy([1, 2], probs, backend="jax").dtype == np.float64
        loss = K.SparseCategoricalCrossentropy(backend="jax")  # cast back to the Loss's dtype
        assert loss([1, 2], probs).dtype == np.float32


@pytest.mark.parametrize("dtype", ["float64", "float16", "bfloat16"])
def test_loss_classes_dtype(dtype):
    """``dtype=`` of the Loss classes: Keras's value and result dtype on every backend.

    On torch, Keras divides in float32 (ops.divide_no_nan's result_type maps float64 to
    float32 on every backend but TensorFlow): a float64 Loss's mean comes back in float32,
    its 'sum' and 'none' in float64.
    """
    if dtype == "bfloat16":
        _bfloat16()
    probs = np.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
    logits = np.array([[1.5, -0.5, 2.0], [0.1, 3.0, -1.0], [0.0, 0.2, -0.3]])
    one_hot = np.eye(3)[[1, 2, 0]]
    weights = np.array([0.3, 0.7, 2.0])
    grad = dtype == "float64"
    for reduction in ("sum_over_batch_size", "sum", "mean_with_sample_weight", "none"):
        for from_logits, y_pred in ((False, probs), (True, logits.astype(np.float32))):
            check("CategoricalCrossentropy", one_hot, y_pred, kind="class", dtype=dtype,
                  reduction=reduction, sample_weight=weights, from_logits=from_logits,
                  grad=grad)
            check("SparseCategoricalCrossentropy", np.array([1, -1, 0]), y_pred, kind="class",
                  dtype=dtype, reduction=reduction, ignore_class=-1, from_logits=from_logits,
                  grad=grad)
            check("BinaryCrossentropy", one_hot, y_pred, kind="class", dtype=dtype,
                  reduction=reduction, from_logits=from_logits, grad=grad)
        check("SparseCategoricalCrossentropy", np.array([1, 2, 0]), probs, kind="class",
              dtype=dtype, reduction=reduction, sample_weight=weights, grad=grad)
    for name in ("BinaryFocalCrossentropy", "CategoricalFocalCrossentropy"):
        check(name, one_hot, logits, kind="class", dtype=dtype, from_logits=True, grad=False)
    check("KLDivergence", one_hot, probs, kind="class", dtype=dtype, grad=grad)


def test_loss_classes_reduction_sample_weight_and_ignore_class():
    y_pred = np.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
    weights = np.array([0.3, 0.7, 2.0])
    for reduction in ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none"):
        check("CategoricalCrossentropy", np.eye(3)[[1, 2, 0]], y_pred, kind="class",
              reduction=reduction, sample_weight=weights, label_smoothing=0.1)
        check("SparseCategoricalCrossentropy", np.array([1, -1, 0]), y_pred, kind="class",
              reduction=reduction, ignore_class=-1, sample_weight=weights)
        check("BinaryCrossentropy", np.eye(3)[[1, 2, 0]], y_pred, kind="class",
              reduction=reduction, sample_weight=weights)
    check("BinaryFocalCrossentropy", np.eye(3)[[1, 2, 0]], y_pred, kind="class", grad=False,
          apply_class_balancing=True)
    check("KLDivergence", np.eye(3)[[1, 2, 0]], y_pred, kind="class")


def test_all_ignored_gives_zero():
    y_pred = np.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]])
    check("SparseCategoricalCrossentropy", np.array([-1, -1]), y_pred, kind="class",
          ignore_class=-1)
    check("SparseCategoricalCrossentropy", np.array([-1, -1]), y_pred, kind="class",
          ignore_class=-1, from_logits=True)


def test_jax_arrays_and_jax_grad():
    jax = require("jax")
    jnp = jax.numpy
    y_true = jnp.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    y_pred = jnp.array([[0.05, 0.95, 0.0], [0.1, 0.8, 0.1]])
    reference = keras_worker("jax").call("categorical_crossentropy", np.asarray(y_true),
                                          np.asarray(y_pred), grad=True)
    value = K.categorical_crossentropy(y_true, y_pred, backend="jax")
    grad = jax.grad(lambda p: K.categorical_crossentropy(y_true, p, backend="jax").sum())(y_pred)
    assert isinstance(value, jax.Array)
    assert_close(value, reference["value"], np.float32, "jax value")
    assert_close(grad, reference["grad"], np.float32, "jax grad")


def test_bad_backend_is_reported():
    with pytest.raises(ValueError, match="backend must be one of 'tensorflow'"):
        K.binary_crossentropy([[1.0]], [[0.5]], backend="theano")


def test_keras_torch_kdim_sparse_backward():
    """Keras's torch backend cannot differentiate sparse CE of >2-D inputs; crossent can.

    keras/src/backend/torch/nn.py moves the class axis to 1 (a non-contiguous view) and
    F.cross_entropy's backward raises. crossent's gradient is Keras's on the jax backend.
    """
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(5), size=(2, 3, 4))
    labels = rng.integers(0, 5, size=(2, 3, 4))
    failed = keras_worker("torch").call("sparse_categorical_crossentropy", labels, probs,
                                        grad=True)
    assert "grad_input must be contiguous" in failed.get("error", ""), (
        "Keras on torch now differentiates this: drop the workaround in test_k_dimensional_inputs"
    )
    reference = keras_worker("tensorflow").call("sparse_categorical_crossentropy", labels,
                                                probs, grad=True)
    _, gradient = torch_value_and_grad(
        lambda t, p: K.sparse_categorical_crossentropy(t, p, backend="torch"), labels, probs
    )
    assert_close(gradient, reference["grad"], np.float64, "gradient")
