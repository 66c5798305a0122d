"""The frameworks' own test suites, run against crossent.compat from the installed packages.

- optax: the test classes of ``softmax_cross_entropy``,
  ``softmax_cross_entropy_with_integer_labels``, ``sigmoid_binary_cross_entropy`` and
  ``sigmoid_focal_loss`` in ``optax/losses/_classification_test.py``, collected here by
  pytest with the module's ``_classification`` answering those four names from
  :mod:`crossent.compat.optax` (under ``jax.jit`` and ``jax.grad``, as the file does).
- Keras: the classes of the cross-entropy losses and KL divergence in
  ``keras/src/losses/losses_test.py``, run by pytest inside the Keras worker of each
  backend (``_keras_worker.run_suite``) with ``losses.<name>`` answered by
  :mod:`crossent.compat.keras`. The serialisation tests (``test_config``: Keras's
  ``get_config`` / ``from_config`` round trip of its own ``Loss`` objects) are left out.

The files' assertions are theirs, unchanged. A test that fails here is a number,
a gradient or an error of crossent's that differs from the framework's.
"""

from __future__ import annotations

import importlib

import pytest

from ._keras_worker import Swapped
from .conftest import keras_worker, require

# --- optax ---------------------------------------------------------------------------

require("jax")
require("optax")
_optax_tests = importlib.import_module("optax.losses._classification_test")
_OPTAX_SWAPPED = (
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
    "sigmoid_binary_cross_entropy",
    "sigmoid_focal_loss",
)
if not isinstance(_optax_tests._classification, Swapped):
    _optax_tests._classification = Swapped(
        _optax_tests._classification, importlib.import_module("crossent.compat.optax"),
        _OPTAX_SWAPPED,
    )

# pytest collects these unittest classes as if they were written here
SoftmaxCrossEntropyTest = _optax_tests.SoftmaxCrossEntropyTest
SoftmaxCrossEntropyWithIntegerLabelsTest = _optax_tests.SoftmaxCrossEntropyWithIntegerLabelsTest
SigmoidCrossEntropyTest = _optax_tests.SigmoidCrossEntropyTest
SigmoidFocalLossTest = _optax_tests.SigmoidFocalLossTest


# --- Keras ---------------------------------------------------------------------------

KERAS_CLASSES = (
    "BinaryCrossentropyTest",
    "CategoricalCrossentropyTest",
    "SparseCategoricalCrossentropyTest",
    "BinaryFocalCrossentropyTest",
    "CategoricalFocalCrossentropyTest",
    "KLDivergenceTest",
)
KERAS_SWAPPED = (
    "BinaryCrossentropy", "binary_crossentropy",
    "CategoricalCrossentropy", "categorical_crossentropy",
    "SparseCategoricalCrossentropy", "sparse_categorical_crossentropy",
    "BinaryFocalCrossentropy", "binary_focal_crossentropy",
    "CategoricalFocalCrossentropy", "categorical_focal_crossentropy",
    "KLDivergence", "kl_divergence",
)
# Keras's serialisation round trip of its own Loss objects (get_config / from_config)
KERAS_LEFT_OUT = tuple(f"{name}::test_config" for name in KERAS_CLASSES)
# skipped by the file's own marks on that backend (Keras-on-torch lacks bfloat16 BCE; the
# channels-first test is torch-only): Keras's decision, not crossent's
KERAS_OWN_SKIPS = {
    "torch": {"BinaryCrossentropyTest::test_dtype_arg",
              "BinaryFocalCrossentropyTest::test_dtype_arg"},
    "tensorflow": {"SparseCategoricalCrossentropyTest::test_squeezes_singleton_class_dim_on_user_axis"},
}


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_keras_losses_test_suite(backend):
    reply = keras_worker(backend).request({"suite": {
        "classes": KERAS_CLASSES, "swapped": KERAS_SWAPPED, "deselect": KERAS_LEFT_OUT,
    }})
    assert "error" not in reply, reply.get("traceback")
    outcomes, failures = reply["outcomes"], reply["failures"]
    passed = [test for test, outcome in outcomes.items() if outcome == "passed"]
    skipped = {test for test, outcome in outcomes.items() if outcome == "skipped"}
    assert not failures, "\n\n".join(f"{test}:\n{text}" for test, text in failures.items())
    assert skipped <= KERAS_OWN_SKIPS[backend], f"skipped: {sorted(skipped)}"
    assert len(passed) >= 45, f"only {len(passed)} of Keras's tests ran: {sorted(outcomes)}"
