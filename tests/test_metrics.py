"""crossent.metrics: hand-counted accuracies; why BCE and CE report different ones (seed 004)."""

from __future__ import annotations

import numpy as np
import pytest

import crossent as ce
from crossent.metrics import binary_accuracy, categorical_accuracy, sparse_categorical_accuracy
from crossent_testing import jnp, requires_jax, requires_torch, torch


def test_binary_accuracy_counts_every_element() -> None:
    y_true = np.array([[0, 1, 0], [1, 0, 0]])
    y_pred = np.array([[0.2, 0.3, 0.5], [0.9, 0.1, 0.6]])
    # thresholded at 0.5 (strictly greater): [[0, 0, 0], [1, 0, 1]] -> right: 2 + 2 of 6
    assert float(binary_accuracy(y_true, y_pred)) == pytest.approx(4 / 6)
    # a custom threshold: > 0.25 -> [[0, 1, 1], [1, 0, 1]] -> right: 2 + 2 of 6
    assert float(binary_accuracy(y_true, y_pred, threshold=0.25)) == pytest.approx(4 / 6)
    # exactly at the threshold counts as 0 (Keras's rule: y_pred > threshold)
    assert float(binary_accuracy(np.array([0.0]), np.array([0.5]))) == 1.0


def test_all_zero_predictions_score_well_on_binary_accuracy_only() -> None:
    # seed 004's appendix: on 10-class one-hot targets, predicting "no" everywhere already has
    # binary accuracy 0.9, while categorical accuracy scores one argmax per sample
    classes = np.arange(20) % 10
    y_true = np.eye(10)[classes]
    y_pred = np.full((20, 10), 0.01)
    assert float(binary_accuracy(y_true, y_pred)) == pytest.approx(0.9)
    # argmax of a constant row is class 0 (first maximum): right for the 2 samples of class 0
    assert float(categorical_accuracy(y_true, y_pred)) == pytest.approx(2 / 20)
    assert float(sparse_categorical_accuracy(classes, y_pred)) == pytest.approx(2 / 20)


def test_categorical_and_sparse_agree() -> None:
    rng = np.random.default_rng(0)
    scores = rng.standard_normal((50, 4))
    labels = rng.integers(0, 4, size=50)
    expected = np.mean(np.argmax(scores, axis=1) == labels)  # hand definition
    assert float(categorical_accuracy(np.eye(4)[labels], scores)) == pytest.approx(expected)
    assert float(sparse_categorical_accuracy(labels, scores)) == pytest.approx(expected)
    # probabilities or logits give the same argmax
    assert float(sparse_categorical_accuracy(labels, ce.softmax(scores))) == pytest.approx(
        expected)


def test_dtypes_and_empty_input() -> None:
    y = np.array([[1.0, 0.0]], dtype=np.float32)
    assert binary_accuracy(y, y).dtype == np.float32
    assert categorical_accuracy(y, y.astype(np.float64)).dtype == np.float64
    assert float(binary_accuracy(np.zeros((0, 3)), np.zeros((0, 3)))) == 0.0
    assert float(sparse_categorical_accuracy(np.zeros(0, dtype=int), np.zeros((0, 3)))) == 0.0


@requires_torch
def test_torch_inputs() -> None:
    y_true = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    y_pred = torch.tensor([[0.3, 0.7], [0.4, 0.6]])
    result = binary_accuracy(y_true, y_pred)
    assert isinstance(result, torch.Tensor) and float(result) == 0.5
    assert float(categorical_accuracy(y_true, y_pred)) == 0.5
    assert float(sparse_categorical_accuracy(torch.tensor([1, 0]), y_pred)) == 0.5


@requires_jax
def test_jax_inputs() -> None:
    y_pred = jnp.asarray([[0.3, 0.7], [0.4, 0.6]])
    result = sparse_categorical_accuracy(jnp.asarray([1, 0]), y_pred)
    assert float(result) == 0.5
    assert type(result).__module__.startswith("jax")


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match=r"y_pred has shape \(2, 3\), but y_true has shape "
                                         r"\(1,\); expected the same shape"):
        binary_accuracy(np.array([0]), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"y_pred has shape \(2, 2\), but y_true has shape "
                                         r"\(2, 3\)"):
        categorical_accuracy(np.zeros((2, 3)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"y_true has shape \(1,\), but y_pred has shape "
                                         r"\(2, 3\); expected class indices of shape \(2,\)"):
        sparse_categorical_accuracy(np.array([0]), np.zeros((2, 3)))
