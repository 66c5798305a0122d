"""crossent's losses inside Keras: ``model.fit`` on the tensorflow, jax and torch backends.

Each backend's Keras worker (conftest.keras_worker) trains the same one-layer model
from the same weights on the same batches twice: once with Keras's own loss, once
with crossent's (a ``crossent.compat.keras`` class, or a core loss called with the
tensors Keras hands it). Keras's tensors are symbolic on TensorFlow (``tf.function``,
the batch dimension unknown while tracing), traced on JAX (``jax.jit``) and
autograd tensors on torch; equal loss histories and trained weights mean equal
values and gradients inside the framework's own training loop.
"""

from __future__ import annotations

import numpy as np
import pytest

from ._compare import assert_close
from .conftest import KERAS_BACKENDS, keras_worker

RNG = np.random.default_rng(11)
FEATURES = RNG.normal(size=(40, 4)).astype("float32")
LABELS = RNG.integers(0, 3, size=40)
ONE_HOT = np.eye(3, dtype="float32")[LABELS]
MULTI_LABEL = (RNG.uniform(size=(40, 3)) < 0.4).astype("float32")
# TensorFlow: batches of 16, 16 and 8, so the train step is traced with an unknown batch
# dimension; JAX and torch: two batches of 16 (each new batch shape recompiles on JAX)
SAMPLES = {"tensorflow": 40, "jax": 32, "torch": 32}
# every case on TensorFlow, Keras's default backend; two on the others (time)
OTHER_BACKENDS_CASES = ("categorical, from logits", "core cross_entropy")

CASES = {
    "categorical, from logits": (
        ("keras", "CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.1}),
        ("compat", "CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.1}),
        ONE_HOT, None),
    "sparse, softmax probabilities": (
        ("keras", "SparseCategoricalCrossentropy", {}),
        ("compat", "SparseCategoricalCrossentropy", {}),
        LABELS[:, None].astype("float32"), "softmax"),
    "core cross_entropy": (
        ("keras", "CategoricalCrossentropy", {"from_logits": True}),
        ("core", "cross_entropy", {}),
        ONE_HOT, None),
    "core binary_cross_entropy_with_logits": (
        ("keras", "BinaryCrossentropy", {"from_logits": True}),
        ("core", "binary_cross_entropy_with_logits", {}),
        MULTI_LABEL, None),
}


@pytest.mark.parametrize(("backend", "case"), [
    (backend, case) for backend in KERAS_BACKENDS for case in sorted(CASES)
    if backend == "tensorflow" or case in OTHER_BACKENDS_CASES
])
def test_model_fit_matches_keras_loss(backend, case):
    reference, ours, labels, activation = CASES[case]
    samples = SAMPLES[backend]
    runs = []
    for loss in (reference, ours):
        reply = keras_worker(backend).request({"fit": {
            "loss": loss, "x": FEATURES[:samples], "y": labels[:samples], "units": 3,
            "activation": activation,
        }})
        assert "error" not in reply, reply.get("traceback")
        runs.append(reply)
    what = f"{case} on Keras's {backend} backend"
    assert_close(runs[1]["history"], runs[0]["history"], np.float32, f"{what}: loss history")
    for trained, expected in zip(runs[1]["weights"], runs[0]["weights"], strict=True):
        assert_close(trained, expected, np.float32, f"{what}: trained weights")
    assert not np.allclose(runs[0]["history"][0], runs[0]["history"][-1])  # it trained
