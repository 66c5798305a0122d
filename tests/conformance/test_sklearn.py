"""crossent.compat.sklearn.log_loss against scikit-learn 1.9.1's log_loss itself."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossent.compat import sklearn as S

from .conftest import require

metrics = require("sklearn.metrics")


def check(y_true, y_proba, **kwargs):
    """Same float and the same warnings (or the same error type) as sklearn's log_loss."""
    outcomes = []
    for function in (metrics.log_loss, S.log_loss):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = function(y_true, y_proba, **kwargs)
            except Exception as error:  # compare the kind of error
                result = type(error)
        messages = sorted({str(w.message).split(".")[0] for w in caught
                           if issubclass(w.category, UserWarning)})
        outcomes.append((result, messages))
    (expected, expected_warnings), (actual, actual_warnings) = outcomes
    if isinstance(expected, type):
        assert actual is expected or issubclass(actual, expected), (actual, expected)
    else:
        assert isinstance(actual, float)
        np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=0)
    assert actual_warnings == expected_warnings


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 5), st.booleans(), st.booleans(),
       st.sampled_from([np.float64, np.float32]))
def test_log_loss_random(seed, classes, weighted, normalize, dtype):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 8))
    y_proba = rng.dirichlet(np.ones(classes), size=n)
    y_proba[rng.uniform(size=y_proba.shape) < 0.1] = 0.0  # exact zeros; rows may not sum to 1
    y_proba = y_proba.astype(dtype)
    y_true = rng.integers(0, classes, size=n)
    y_true[:classes] = np.arange(classes)[:n]  # every class present
    sample_weight = rng.uniform(0.1, 2.0, size=n) if weighted else None
    check(y_true, y_proba, normalize=normalize, sample_weight=sample_weight)


def test_binary_one_dimensional_probabilities():
    check([0, 1, 1, 0], np.array([0.1, 0.9, 1.0, 0.0]))
    check(["no", "yes", "yes"], np.array([0.2, 0.7, 0.6], dtype=np.float32))
    check([0, 1, 1], np.array([[0.2], [0.7], [0.6]]))


def test_labels_argument_and_strings():
    check(["spam", "ham", "ham", "spam"], [[0.1, 0.9], [0.9, 0.1], [0.8, 0.2], [0.35, 0.65]])
    check([1, 1], [[0.2, 0.3, 0.5], [0.1, 0.8, 0.1]], labels=[0, 1, 2])
    check([1, 1], [[0.2, 0.3, 0.5], [0.1, 0.8, 0.1]], labels=[2, 0, 1])  # warns: not sorted
    check([1, 1], [[0.2, 0.8], [0.3, 0.7]])  # one class only: error
    check([0, 3], [[0.2, 0.8], [0.3, 0.7]], labels=[0, 1])  # undeclared label: error
    check([0, 1, 2], [[0.2, 0.8], [0.3, 0.7], [0.5, 0.5]])  # class count mismatch: error


def test_clipping_with_the_dtype_eps_and_no_renormalisation():
    check([0, 1], [[1.0, 0.0], [1.0, 0.0]])
    check([0, 1], np.array([[1.0, 0.0], [1.0, 0.0]], dtype=np.float32))
    check([0, 1], [[0.5, 0.0], [0.2, 0.2]])  # rows do not sum to one: warning, no rescaling
    check([0, 1], [[0.5, 1.5], [0.2, 0.8]])  # > 1: error
    check([0, 1], [[-0.1, 1.1], [0.2, 0.8]])  # < 0: error


def test_indicator_matrix_and_zero_weights():
    check(np.array([[1, 0, 0], [0, 0, 1]]), [[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    check([0, 1], [[0.7, 0.3], [0.4, 0.6]], sample_weight=[0.0, 0.0])


def test_torch_probabilities():
    torch = require("torch")
    value = S.log_loss([0, 1], torch.tensor([[0.7, 0.3], [0.4, 0.6]], dtype=torch.float64))
    assert value == pytest.approx(metrics.log_loss([0, 1], [[0.7, 0.3], [0.4, 0.6]]), rel=1e-12)
