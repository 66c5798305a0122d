"""crossent.compare and the `crossent compare` command (no real frameworks: --no-real)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

import crossent as ce
from crossent.cli import app

CASES = [
    ("cross_entropy", [[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]], [2, 1], "logits", 0.0),
    ("cross_entropy", [[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]], [2, -100], "logits", 0.1),
    ("cross_entropy", [[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]], [2, -100], "logits", 0.0),
    ("cross_entropy", [[0.5, 0.2, 0.3], [0.1, 0.1, 0.8]], [-100, 2], "probs", 0.0),
    ("cross_entropy", [[0.0, -math.inf, 1.0]], [[1.0, 0.0, 0.0]], "logits", 0.0),
    ("cross_entropy", [[0.5, 0.0, 0.5], [0.2, 0.7, 0.1]], [1, 0], "probs", 0.0),
    ("cross_entropy", [[0.5, 0.25, 0.0]], [[1.0, 0.0, 0.0]], "probs", 0.0),
    ("binary_cross_entropy", [[0.0, 0.9]], [[1.0, 0.0]], "probs", 0.0),
    ("binary_cross_entropy", [[0.3, 0.9]], [[1.0, 0.0]], "probs", 0.2),
    ("binary_cross_entropy", [[12.0, 3.0, -math.inf]], [[1.0, 0.0, 0.0]], "logits", 0.0),
    ("binary_cross_entropy", [[0.7]], [[0.0]], "logits", 0.1),
]


@pytest.mark.parametrize(("loss", "x", "target", "inputs", "smoothing"), CASES)
def test_every_difference_has_a_reason(loss, x, target, inputs, smoothing):
    result = ce.compare(loss, x, target, inputs=inputs, label_smoothing=smoothing, real=False)
    native = result.rows[0]
    assert native.convention == "crossent (native)" and native.reason == ""
    assert len(result.rows) >= 5
    for row in result.rows[1:]:
        if row.error is not None:  # a convention that refuses the input says so, and why
            assert row.value is None and row.error
            assert row.reason and "no known reason" not in row.reason, row
        elif not _close(row.value, native.value):
            assert row.reason and "no known reason" not in row.reason, row
        else:
            assert row.reason == "", row


def _close(first, second):
    if math.isnan(first) or math.isnan(second):
        return math.isnan(first) and math.isnan(second)
    return math.isclose(first, second, rel_tol=1e-5) or first == second


def test_seed_004_numbers_and_keras_reason():
    # seed 004's logits and multi-label targets: BCE mean 1.2554386947664657 everywhere
    logits = [[12, 3, 2], [3, 10, 1], [1, 2, 5], [4, 6.5, 1.2], [3, 6, 1]]
    y = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 0]]
    result = ce.compare("binary_cross_entropy", logits, y, real=False)
    for row in result.rows:
        assert row.value == pytest.approx(1.2554386947664657, rel=1e-6), row
    probs = ce.compare("binary_cross_entropy", [[1.0, 0.5]], [[0.0, 1.0]], inputs="probs",
                       real=False)
    keras_row = next(r for r in probs.rows if r.convention.startswith("Keras"))
    # Keras computes in float32, where 1 - 1e-7 rounds to 1 - 2**-23: -log(2**-23) = 15.94
    assert keras_row.value == pytest.approx((23 * math.log(2) + math.log(2)) / 2, rel=1e-5)
    assert "Keras clips p to [1e-7, 1-1e-7]" in keras_row.reason
    assert probs.rows[0].value == pytest.approx((100 + math.log(2)) / 2)


def test_tensorflow_backend_clips_before_renormalising():
    result = ce.compare("cross_entropy", [[0.5, 0.0]], [1], inputs="probs", real=False)
    by_name = {row.convention: row for row in result.rows}
    tf_row = by_name["Keras SparseCategoricalCrossentropy (tensorflow)"]
    torch_row = by_name["Keras SparseCategoricalCrossentropy (torch)"]
    assert tf_row.value == pytest.approx(-math.log(1e-7 / (0.5 + 1e-7)), rel=1e-5)
    assert torch_row.value == pytest.approx(-math.log(1e-7), rel=1e-5)
    assert "clips p then renormalises" in tf_row.reason


def test_pytorch_nan_for_all_ignored():
    result = ce.compare("cross_entropy", [[0.4, 0.3, 0.7]], [-100], real=False)
    assert result.rows[0].value == 0.0
    torch_row = result.rows[1]
    assert math.isnan(torch_row.value) and "0/0 = NaN" in torch_row.reason


def test_hyphenated_names_as_on_the_command_line():
    hyphen = ce.compare("cross-entropy", [[2.0, 1.0, 0.1]], [0], real=False)
    underscore = ce.compare("cross_entropy", [[2.0, 1.0, 0.1]], [0], real=False)
    assert hyphen.loss == "cross_entropy"
    assert [r.value for r in hyphen.rows] == [r.value for r in underscore.rows]
    assert ce.compare("binary-cross-entropy", [[0.3]], [[1.0]], real=False).loss == \
        "binary_cross_entropy"


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown loss 'hinge'; expected one of cross_entropy, binary_"):
        ce.compare("hinge", [[0.1]], [0], real=False)
    with pytest.raises(ValueError, match=r"target has shape \(3,\), but logits has shape \(1, 2\)"):
        ce.compare("cross_entropy", [[0.1, 0.2]], [0, 1, 2], real=False)


runner = CliRunner()


def test_cli_text_table():
    result = runner.invoke(app, ["compare", "binary_cross_entropy", "--probs", "[[0.0, 0.9]]",
                                 "--target", "[[1.0, 0.0]]", "--no-real"])
    assert result.exit_code == 0, result.output
    assert "crossent (native)" in result.output
    assert "Keras clips p to [1e-7, 1-1e-7]" in result.output
    assert "51.1513" in result.output and "9.21034" in result.output


def test_cli_json():
    result = runner.invoke(app, ["compare", "cross_entropy", "--logits", "[[0.4, 0.3, 0.7]]",
                                 "--target", "[-100]", "--no-real", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["loss"] == "cross_entropy" and data["target_kind"] == "index"
    assert data["rows"][0]["value"] == 0.0
    assert data["rows"][1]["value"] == "nan"


def test_cli_errors_name_the_option():
    result = runner.invoke(app, ["compare", "cross_entropy", "--logits", "[[0.4,", "--target",
                                 "[0]", "--no-real"])
    assert result.exit_code != 0 and "--logits/--probs must be a JSON array" in result.output
    result = runner.invoke(app, ["compare", "cross_entropy", "--target", "[0]", "--no-real"])
    assert result.exit_code != 0 and "exactly one of --logits and --probs" in result.output


def test_numpy_inputs():
    result = ce.compare("cross_entropy", np.array([[1.0, 2.0]]), np.array([1]), real=False)
    assert result.rows[0].value == pytest.approx(math.log(1 + math.exp(-1)))


def test_frameworks_without_ignore_index_name_their_convention():
    """TensorFlow raises for the label -100, optax gives NaN, Keras and scikit-learn have no
    ignore_index: each row says which convention it follows, none says 'a bug?'."""
    result = ce.compare("cross_entropy", [[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]], [2, -100],
                        real=False)
    by_name = {row.convention: row for row in result.rows}
    tf_row = by_name["TensorFlow sparse_softmax_cross_entropy_with_logits (mean)"]
    assert tf_row.error and tf_row.reason == (
        "TensorFlow has no ignore_index: label -100 is out of range: an InvalidArgumentError")
    optax_row = by_name["optax softmax_cross_entropy_with_integer_labels (mean)"]
    assert math.isnan(optax_row.value)
    assert optax_row.reason == "optax has no ignore_index: label -100 is out of range: NaN"
    # an ignore_index that is a class: counted by the frameworks that do not ignore
    result = ce.compare("cross_entropy", [[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]], [2, 1],
                        ignore_index=1, real=False)
    reasons = {row.convention: row.reason for row in result.rows}
    assert reasons["TensorFlow sparse_softmax_cross_entropy_with_logits (mean)"] == (
        "TensorFlow has no ignore_index: class 1 is counted")
    probs = ce.compare("cross_entropy", [[0.5, 0.2, 0.3], [0.1, 0.1, 0.8]], [-100, 2],
                       inputs="probs", real=False)
    reasons = {row.convention: row.reason for row in probs.rows}
    assert "Keras has no ignore_index" in reasons["Keras SparseCategoricalCrossentropy (jax)"]
    assert "scikit-learn has no ignore_index" in reasons["scikit-learn log_loss"]


@pytest.mark.parametrize(("arguments", "options", "error", "message"), [
    (("cross_entropy", [[0.1, 0.2]], [0]), {"label_smoothing": 1.5}, ValueError,
     r"^label_smoothing must be in \[0, 1\], got 1.5$"),
    (("cross_entropy", [[0.1, 0.2]], [0]), {"ignore_index": 0.5}, TypeError,
     r"^ignore_index must be an int, got 0.5$"),
    (("cross_entropy", [[0.1, 0.2]], [1.5]), {}, TypeError,
     r"^target of shape \(1,\) holds class indices and must have an integer dtype, got float64"),
    (("cross_entropy", [[0.1, 0.2]], [2]), {}, ValueError,
     r"^target contains class index 2, but logits have 2 classes"),
    (("binary_cross_entropy", [[0.1, 0.2]], [1]), {}, ValueError,
     r"^target has shape \(1,\), but logits has shape \(1, 2\); expected the same shape$"),
    (("binary_cross_entropy", [[1.5]], [[1.0]]), {"inputs": "probs"}, ValueError,
     r"^probs must contain probabilities in \[0, 1\], found 1.5"),
    (("cross_entropy", 2.0, [0]), {}, ValueError,
     r"^logits must have at least one dimension \(classes last\), got a scalar$"),
])
def test_what_crossent_rejects_raises_with_the_cores_message(arguments, options, error, message):
    with pytest.raises(error, match=message):
        ce.compare(*arguments, real=False, **options)


def test_tensorflow_native_log_lines_are_dropped(capfd):
    """What a framework's C++ runtime writes to file descriptor 2 while loading: its log
    lines are dropped, anything else is passed on."""
    import os

    from crossent.compare import _native_logs_dropped

    with _native_logs_dropped():
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are "
                    b"written to STDERR\n"
                    b"I0000 00:00:1796191720.251214   11718 port.cc:153] oneDNN custom "
                    b"operations are on.\n"
                    b"W1202 06:42:53.630000 6255 cpu_feature_guard.cc:227] This TensorFlow "
                    b"binary is optimized\n"
                    b"To enable the following instructions: AVX2 FMA, in other operations, "
                    b"rebuild TensorFlow with the appropriate compiler flags.\n"
                    b"a real warning\n")
    assert capfd.readouterr().err == "a real warning\n"


def test_progress_names_each_framework_before_it_loads(monkeypatch):
    import sys

    from crossent.compare import _import, _progress

    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    lines: list[str] = []
    token = _progress.set(lines.append)
    try:
        assert _import("colorsys").__name__ == "colorsys"
        _import("colorsys")  # already loaded: nothing to say
    finally:
        _progress.reset(token)
    assert lines == ["loading colorsys"]
