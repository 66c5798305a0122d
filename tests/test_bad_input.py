"""Bad calls to the public functions: each must raise a ValueError or TypeError raised by
crossent itself, whose message names the argument (in the framework's own words for
crossent.compat) — never an AttributeError/IndexError, an error from inside NumPy or
torch, or a silent number.

The table has two parts: ``CASES``, calls written by hand (each a mistake seen in use),
and ``sweep()``, every array argument of every public function given ``None``, ragged
rows and strings. Each row: (id, call, word the message must contain). ``classify``
sorts an outcome into clear / vague / foreign / silent; every row must be clear.
``benchmarks/bad_input_table.py`` prints the counts of each kind.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import crossent
from crossent import grad, metrics
from crossent import information as info
from crossent.compat import keras as K
from crossent.compat import optax as O
from crossent.compat import sklearn as S
from crossent.compat import tf as TF
from crossent.compat import torch as T

Row = tuple[str, Callable[[], Any], str]

LOGITS = [[1.0, 2.0, 0.5], [0.1, 0.2, 0.3]]
INDICES = [0, 1]
ONE_HOT = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
PROBS = [[0.2, 0.7, 0.1], [0.3, 0.3, 0.4]]
PAIRS = [[0.2, 0.8], [0.6, 0.4]]
BINARY_LOGITS = [[0.5, -1.0]]
BINARY_PROBS = [[0.5, 0.2]]
BINARY_TARGET = [[1.0, 0.0]]
P, Q = [0.5, 0.5], [0.25, 0.75]
KERAS = {"backend": "torch"}

CASES: list[Row] = [
    # core
    ("cross_entropy logits None", lambda: crossent.cross_entropy(None, [0, 1]), "logits"),
    ("cross_entropy target None", lambda: crossent.cross_entropy(LOGITS, None), "target"),
    ("cross_entropy ragged", lambda: crossent.cross_entropy([[1.0, 2.0], [1.0]], [0, 0]),
     "logits"),
    ("cross_entropy strings", lambda: crossent.cross_entropy([["a", "b"]], [0]), "logits"),
    ("cross_entropy complex target",
     lambda: crossent.cross_entropy(LOGITS, np.array([0, 1], dtype=complex)), "target"),
    ("cross_entropy complex probability target",
     lambda: crossent.cross_entropy(LOGITS, np.array(ONE_HOT, dtype=complex)), "target"),
    ("binary_cross_entropy complex target",
     lambda: crossent.binary_cross_entropy([0.5], np.array([1 + 1j])), "target"),
    ("cross_entropy complex logits",
     lambda: crossent.cross_entropy(np.array([[1 + 1j, 0.0]]), [0]), "logits"),
    ("cross_entropy object array",
     lambda: crossent.cross_entropy(np.array([[1.0, None]], dtype=object), [0]), "logits"),
    ("cross_entropy target 1.5", lambda: crossent.cross_entropy(LOGITS, [1.5, 0.0]), "target"),
    ("cross_entropy weight ragged",
     lambda: crossent.cross_entropy(LOGITS, INDICES, weight=[[1.0], [1.0, 2.0]]), "weight"),
    ("bce_with_logits pos_weight strings",
     lambda: crossent.binary_cross_entropy_with_logits(BINARY_LOGITS, BINARY_TARGET,
                                                       pos_weight=["x", "y"]), "pos_weight"),
    ("binary_cross_entropy None", lambda: crossent.binary_cross_entropy(None, [1.0]), "probs"),
    ("advise target None", lambda: crossent.advise(LOGITS, None), "target"),
    ("advise logits None", lambda: crossent.advise(None, INDICES), "logits_or_probs"),
    # compat.torch
    ("torch cross_entropy input None", lambda: T.cross_entropy(None, [0, 1]), "input"),
    ("torch cross_entropy target None", lambda: T.cross_entropy(LOGITS, None), "target"),
    ("torch kl_div input None", lambda: T.kl_div(None, [[0.5, 0.5]]), "input"),
    ("torch bce_with_logits pos_weight None-like strings",
     lambda: T.binary_cross_entropy_with_logits(BINARY_LOGITS, BINARY_TARGET,
                                                pos_weight=["a", "b"]), "pos_weight"),
    ("torch binary_cross_entropy complex target",
     lambda: T.binary_cross_entropy([0.5], np.array([1 + 1j])), "target"),
    # compat.tf
    ("tf sigmoid labels None", lambda: TF.sigmoid_cross_entropy_with_logits(None, [0.5]),
     "labels"),
    ("tf softmax logits None", lambda: TF.softmax_cross_entropy_with_logits([[1.0]], None),
     "logits"),
    ("tf weighted pos_weight None",
     lambda: TF.weighted_cross_entropy_with_logits([1.0], [0.5], pos_weight=None),
     "pos_weight"),
    ("tf sigmoid complex labels",
     lambda: TF.sigmoid_cross_entropy_with_logits(np.array([1 + 0j]), [0.5]), "labels"),
    # compat.optax
    ("optax sigmoid logits None", lambda: O.sigmoid_binary_cross_entropy(None, [1.0]),
     "logits"),
    ("optax sigmoid labels None", lambda: O.sigmoid_binary_cross_entropy([1.0], None),
     "labels"),
    ("optax softmax axis 5", lambda: O.softmax_cross_entropy(LOGITS, np.eye(3)[[0, 1]], axis=5),
     "axis"),
    ("optax softmax axis (0, 5)",
     lambda: O.softmax_cross_entropy(LOGITS, np.eye(3)[[0, 1]], axis=(0, 5)), "axis"),
    ("optax softmax axis 1.0",
     lambda: O.softmax_cross_entropy(LOGITS, np.eye(3)[[0, 1]], axis=1.0), "axis"),
    ("optax integer labels axis 5",
     lambda: O.softmax_cross_entropy_with_integer_labels(LOGITS, INDICES, axis=5), "axis"),
    ("optax integer labels axis -3",
     lambda: O.softmax_cross_entropy_with_integer_labels(LOGITS, INDICES, axis=-3), "axis"),
    # compat.keras: Keras's argument names, never the core's (target, logits, ignore_index)
    ("keras categorical y_true None",
     lambda: K.categorical_crossentropy(None, LOGITS, backend="torch"), "y_true"),
    ("keras sparse y_pred None",
     lambda: K.sparse_categorical_crossentropy([0, 1], None, backend="torch"), "y_pred"),
    ("keras sparse ignore_class 1.5",
     lambda: K.sparse_categorical_crossentropy([0, 1], LOGITS, ignore_class=1.5,
                                               backend="torch"), "ignore_class"),
    ("keras sparse y_true class 7",
     lambda: K.sparse_categorical_crossentropy([7, 0], PAIRS, backend="torch"), "y_true"),
    ("keras sparse y_true -1 with ignore_class 3",
     lambda: K.sparse_categorical_crossentropy([-1, 0], PAIRS, ignore_class=3,
                                               backend="jax"), "ignore_class"),
    ("keras sparse one-hot y_true",
     lambda: K.sparse_categorical_crossentropy(ONE_HOT, LOGITS, backend="torch"), "y_true"),
    ("keras categorical shape",
     lambda: K.categorical_crossentropy([[1.0, 0.0]], [[0.5, 0.3, 0.2]], backend="torch"),
     "y_true"),
    # compat.sklearn
    ("sklearn log_loss normalize='yes'",
     lambda: S.log_loss([0, 1], [[0.9, 0.1], [0.2, 0.8]], normalize="yes"), "normalize"),
    ("sklearn log_loss y_true None", lambda: S.log_loss(None, [[0.9, 0.1]]), "y_true"),
    ("sklearn log_loss empty", lambda: S.log_loss([], []), "0 sample"),
]

# every public function, its array arguments (name, a valid value) and its options
FUNCTIONS: list[tuple[str, Callable[..., Any], list[tuple[str, Any]], dict[str, Any]]] = [
    ("cross_entropy", crossent.cross_entropy, [("logits", LOGITS), ("target", INDICES)], {}),
    ("nll_loss", crossent.nll_loss, [("log_probs", LOGITS), ("target", INDICES)], {}),
    ("binary_cross_entropy", crossent.binary_cross_entropy,
     [("probs", BINARY_PROBS), ("target", BINARY_TARGET)], {}),
    ("binary_cross_entropy_with_logits", crossent.binary_cross_entropy_with_logits,
     [("logits", BINARY_LOGITS), ("target", BINARY_TARGET)], {}),
    ("sigmoid_focal_loss", crossent.sigmoid_focal_loss,
     [("logits", BINARY_LOGITS), ("target", BINARY_TARGET)], {}),
    ("softmax_focal_loss", crossent.softmax_focal_loss,
     [("logits", LOGITS), ("target", INDICES)], {}),
    ("kl_divergence_with_logits", crossent.kl_divergence_with_logits,
     [("student_logits", LOGITS), ("teacher_logits", LOGITS)], {}),
    ("jensen_shannon_divergence", crossent.jensen_shannon_divergence,
     [("student_logits", LOGITS), ("teacher_logits", LOGITS)], {}),
    ("total_variation_distance", crossent.total_variation_distance,
     [("student_logits", LOGITS), ("teacher_logits", LOGITS)], {}),
    ("softmax", crossent.softmax, [("logits", LOGITS)], {}),
    ("log_softmax", crossent.log_softmax, [("logits", LOGITS)], {}),
    ("sigmoid", crossent.sigmoid, [("logits", BINARY_LOGITS)], {}),
    ("log_sigmoid", crossent.log_sigmoid, [("logits", BINARY_LOGITS)], {}),
    ("logit", crossent.logit, [("probs", P)], {}),
    ("softmax_inverse", crossent.softmax_inverse, [("probs", P)], {}),
    ("information.self_information", info.self_information, [("p", P)], {}),
    ("information.entropy", info.entropy, [("p", P)], {}),
    ("information.binary_entropy", info.binary_entropy, [("p", P)], {}),
    ("information.cross_entropy", info.cross_entropy, [("p", P), ("q", Q)], {}),
    ("information.kl_divergence", info.kl_divergence, [("p", P), ("q", Q)], {}),
    ("metrics.binary_accuracy", metrics.binary_accuracy,
     [("y_true", BINARY_TARGET), ("y_pred", BINARY_PROBS)], {}),
    ("metrics.categorical_accuracy", metrics.categorical_accuracy,
     [("y_true", ONE_HOT), ("y_pred", LOGITS)], {}),
    ("metrics.sparse_categorical_accuracy", metrics.sparse_categorical_accuracy,
     [("y_true", INDICES), ("y_pred", LOGITS)], {}),
    ("grad.cross_entropy", grad.cross_entropy, [("logits", LOGITS), ("target", INDICES)], {}),
    ("grad.binary_cross_entropy_with_logits", grad.binary_cross_entropy_with_logits,
     [("logits", BINARY_LOGITS), ("target", BINARY_TARGET)], {}),
    ("advise", crossent.advise, [("logits_or_probs", LOGITS), ("target", INDICES)], {}),
    ("compat.torch.cross_entropy", T.cross_entropy, [("input", LOGITS), ("target", INDICES)],
     {}),
    ("compat.torch.nll_loss", T.nll_loss, [("input", LOGITS), ("target", INDICES)], {}),
    ("compat.torch.binary_cross_entropy", T.binary_cross_entropy,
     [("input", BINARY_PROBS), ("target", BINARY_TARGET)], {}),
    ("compat.torch.binary_cross_entropy_with_logits", T.binary_cross_entropy_with_logits,
     [("input", BINARY_LOGITS), ("target", BINARY_TARGET)], {}),
    ("compat.torch.kl_div", T.kl_div, [("input", PAIRS), ("target", PAIRS)],
     {"reduction": "batchmean"}),
    ("compat.keras.categorical_crossentropy", K.categorical_crossentropy,
     [("y_true", ONE_HOT), ("y_pred", PROBS)], KERAS),
    ("compat.keras.sparse_categorical_crossentropy", K.sparse_categorical_crossentropy,
     [("y_true", INDICES), ("y_pred", PROBS)], KERAS),
    ("compat.keras.binary_crossentropy", K.binary_crossentropy,
     [("y_true", BINARY_TARGET), ("y_pred", BINARY_PROBS)], KERAS),
    ("compat.keras.binary_focal_crossentropy", K.binary_focal_crossentropy,
     [("y_true", BINARY_TARGET), ("y_pred", BINARY_PROBS)], KERAS),
    ("compat.keras.categorical_focal_crossentropy", K.categorical_focal_crossentropy,
     [("y_true", ONE_HOT), ("y_pred", PROBS)], KERAS),
    ("compat.keras.kl_divergence", K.kl_divergence, [("y_true", PAIRS), ("y_pred", PAIRS)],
     KERAS),
    ("compat.keras.CategoricalCrossentropy()", K.CategoricalCrossentropy(),
     [("y_true", ONE_HOT), ("y_pred", PROBS)], {}),
    ("compat.keras.SparseCategoricalCrossentropy()", K.SparseCategoricalCrossentropy(),
     [("y_true", INDICES), ("y_pred", PROBS)], {}),
    ("compat.tf.softmax_cross_entropy_with_logits", TF.softmax_cross_entropy_with_logits,
     [("labels", ONE_HOT), ("logits", LOGITS)], {}),
    ("compat.tf.sparse_softmax_cross_entropy_with_logits",
     TF.sparse_softmax_cross_entropy_with_logits, [("labels", INDICES), ("logits", LOGITS)], {}),
    ("compat.tf.sigmoid_cross_entropy_with_logits", TF.sigmoid_cross_entropy_with_logits,
     [("labels", BINARY_TARGET), ("logits", BINARY_LOGITS)], {}),
    ("compat.tf.weighted_cross_entropy_with_logits", TF.weighted_cross_entropy_with_logits,
     [("labels", BINARY_TARGET), ("logits", BINARY_LOGITS), ("pos_weight", 2.0)], {}),
    ("compat.optax.softmax_cross_entropy", O.softmax_cross_entropy,
     [("logits", LOGITS), ("labels", ONE_HOT)], {}),
    ("compat.optax.softmax_cross_entropy_with_integer_labels",
     O.softmax_cross_entropy_with_integer_labels, [("logits", LOGITS), ("labels", INDICES)], {}),
    ("compat.optax.sigmoid_binary_cross_entropy", O.sigmoid_binary_cross_entropy,
     [("logits", BINARY_LOGITS), ("labels", BINARY_TARGET)], {}),
    ("compat.optax.sigmoid_focal_loss", O.sigmoid_focal_loss,
     [("logits", BINARY_LOGITS), ("labels", BINARY_TARGET)], {}),
    ("compat.sklearn.log_loss", S.log_loss, [("y_true", INDICES), ("y_proba", PAIRS)], {}),
]

BAD_VALUES = {"None": None, "ragged": [[1.0, 2.0], [1.0]], "strings": [["a", "b"], ["c", "d"]]}


def _bad_call(function: Callable[..., Any], args: list[Any], options: dict[str, Any]):
    return lambda: function(*args, **options)


def sweep() -> list[Row]:
    """Each array argument of each function in ``FUNCTIONS`` given each of ``BAD_VALUES``."""
    rows = []
    for label, function, arguments, options in FUNCTIONS:
        for position, (name, _) in enumerate(arguments):
            for bad_name, bad in BAD_VALUES.items():
                args = [value for _, value in arguments]
                args[position] = bad
                rows.append((f"{label}({name}={bad_name})", _bad_call(function, args, options),
                             name))
    return rows


def torch_cases() -> list[Row]:
    """crossent.torch, which takes torch tensors only (as torch.nn.functional does)."""
    torch = pytest.importorskip("torch")
    from crossent.torch import CrossEntropyLoss, cross_entropy

    logits = torch.tensor(LOGITS)
    target = torch.tensor(INDICES)
    return [
        ("crossent.torch numpy input", lambda: cross_entropy(np.array(LOGITS), target), "input"),
        ("crossent.torch list input", lambda: cross_entropy(LOGITS, target), "input"),
        ("crossent.torch list target", lambda: cross_entropy(logits, [0, 1]), "target"),
        ("crossent.torch None target", lambda: cross_entropy(logits, None), "target"),
        ("crossent.torch numpy weight",
         lambda: cross_entropy(logits, target, weight=np.ones(3, np.float32)), "weight"),
        ("CrossEntropyLoss(weight=list)",
         lambda: CrossEntropyLoss(weight=[1.0, 1.0, 1.0])(logits, target), "weight"),
        ("crossent.torch meta vs cpu", lambda: cross_entropy(logits.to("meta"), target),
         "device"),
        ("crossent.torch weight on meta",
         lambda: cross_entropy(logits, target, weight=torch.ones(3, device="meta")), "device"),
    ]


def all_rows() -> list[Row]:
    return CASES + sweep() + torch_cases()


def classify(call: Callable[[], Any], word: str) -> tuple[str, str]:
    """clear / vague / foreign / silent, and what happened."""
    try:
        value = call()
    except (ValueError, TypeError) as error:
        frames = traceback.extract_tb(error.__traceback__)
        raiser = frames[-1].filename if frames else ""
        message = str(error)
        if "crossent" not in raiser.replace("\\", "/").split("site-packages")[-1]:
            return "foreign", f"{type(error).__name__} from {raiser}: {message[:120]}"
        if word.lower() not in message.lower():
            return "vague", f"{type(error).__name__}: {message[:160]}"
        return "clear", message
    except Exception as error:  # noqa: BLE001 - the point is to sort any exception
        return "foreign", f"{type(error).__name__}: {str(error)[:120]}"
    return "silent", repr(value)[:120]


@pytest.mark.filterwarnings("ignore::UserWarning")  # kl_div's 'mean' warning, sklearn's
@pytest.mark.parametrize("name, call, word", [pytest.param(*row, id=row[0])
                                              for row in CASES + sweep()])
def test_bad_call_raises_clearly(name, call, word):
    kind, what = classify(call, word)
    assert kind == "clear", f"{name}: {kind}: {what}"


def test_bad_torch_calls_raise_clearly():
    failures = []
    for name, call, word in torch_cases():
        kind, what = classify(call, word)
        if kind != "clear":
            failures.append(f"{name}: {kind}: {what}")
    assert not failures, "\n".join(failures)


def test_every_function_in_the_sweep_accepts_its_valid_values():
    # the sweep's rows fail for the bad value alone, not for a wrong valid one
    for _label, function, arguments, options in FUNCTIONS:
        function(*[value for _, value in arguments], **options)


def test_messages_name_the_value_and_the_fix():
    with pytest.raises(ValueError, match=r"logits is ragged: its rows have different lengths "
                                         r"\(2, 1\).*pad the short rows"):
        crossent.cross_entropy([[1.0, 2.0], [1.0]], [0, 0])
    with pytest.raises(TypeError, match=r"target must hold numbers, got strings \(first 'cat'\)"
                                        r".*class indices"):
        crossent.cross_entropy(LOGITS, ["cat", "dog"])
    with pytest.raises(TypeError, match=r"target must hold real numbers, got dtype complex128"):
        crossent.binary_cross_entropy([0.5], np.array([1 + 1j]))
    with pytest.raises(TypeError, match=r"logits must be an array or a list of numbers.*got None"):
        crossent.cross_entropy(None, [0])


def test_sklearn_accepts_string_labels_but_not_string_probabilities():
    # scikit-learn's y_true may hold any labels; its y_proba must hold numbers
    assert S.log_loss(["cat", "dog"], [[0.9, 0.1], [0.2, 0.8]]) == pytest.approx(
        -(np.log(0.9) + np.log(0.8)) / 2)
    with pytest.raises(TypeError, match="y_proba must hold numbers"):
        S.log_loss(["cat", "dog"], [["a", "b"], ["c", "d"]])


def test_classify_sorts_each_outcome():
    # the sorter itself: each kind is reachable
    def numpy_error():
        np.zeros(2).reshape(3)

    def vague():
        crossent.cross_entropy(LOGITS, [1.5, 0.0])

    assert classify(lambda: 1.0, "x")[0] == "silent"
    assert classify(lambda: [].pop(), "x")[0] == "foreign"
    assert classify(numpy_error, "x")[0] == "foreign"
    assert classify(vague, "no-such-word")[0] == "vague"
