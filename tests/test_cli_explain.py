"""`crossent explain` and `crossent plot`, through typer's CliRunner."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import crossent as ce
from crossent.cli import app
from crossent.explain import examples

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_explain_cross_entropy_json_equals_core() -> None:
    result = invoke("explain", "cross_entropy", "--logits", "[[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]]",
                    "--target", "[2, 1]", "--weight", "[1, 2, 3]", "--label-smoothing", "0.1",
                    "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    expected = ce.cross_entropy([[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]], [2, 1],
                                weight=[1.0, 2.0, 3.0], label_smoothing=0.1)
    assert data["value"] == pytest.approx(float(expected), rel=1e-15)
    assert data["options"]["label_smoothing"] == 0.1


def test_explain_text_default() -> None:
    result = invoke("explain", "ce", "--logits", "[[1.4, 3.2, 5.0]]", "--target", "[2]",
                    "--reduction", "sum", "--no-color")
    assert result.exit_code == 0, result.output
    assert "log-softmax" in result.output and "0.17615476" in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 100


@pytest.mark.parametrize("loss,first,second", [
    ("nll", "[[-1.2, -0.4, -2.0]]", "[1]"),
    ("bce", "[0.3, 0.9]", "[1, 0]"),
    ("bce-with-logits", "[0.7, -2.0]", "[0.0333, 1]"),
    ("sigmoid_focal_loss", "[0.0, 2.0]", "[1, 0]"),
    ("softmax_focal_loss", "[[2.0, 0.0, 0.0]]", "[0]"),
    ("grad", "[[1.4, 3.2, 5.0]]", "[2]"),
    ("kl", "[0.5, 0.5]", "[0.9, 0.1]"),
])
def test_explain_each_computation(loss: str, first: str, second: str) -> None:
    result = invoke("explain", loss, "--logits", first, "--target", second, "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["steps"]


def test_explain_single_array_computations() -> None:
    for loss in ("entropy", "softmax_inverse"):
        result = invoke("explain", loss, "--probs", "[0.8, 0.1, 0.1]", "--format", "json")
        assert result.exit_code == 0, result.output
    result = invoke("explain", "entropy", "--probs", "[0.5, 0.5]", "--base", "2", "-f", "json")
    assert json.loads(result.output)["value"] == 1.0


def test_explain_markdown_and_html_to_file(tmp_path) -> None:
    out = tmp_path / "ce.md"
    result = invoke("explain", "--example", "seed003-cross-entropy", "--format", "markdown",
                    "--out", str(out))
    assert result.exit_code == 0 and f"wrote {out}" in result.output
    assert out.read_text().startswith("# seed003-cross-entropy")
    html = tmp_path / "ce.html"
    result = invoke("explain", "--example", "seed000-cross-entropy", "-f", "html", "-o", str(html))
    assert result.exit_code == 0
    assert html.read_text().startswith("<!DOCTYPE html>")


def test_inputs_from_files(tmp_path) -> None:
    logits = np.array([[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]])
    np.save(tmp_path / "logits.npy", logits)
    (tmp_path / "target.csv").write_text("2,1\n")
    (tmp_path / "logits.csv").write_text("0.4,0.3,0.7\n1.2,0.4,0.6\n")
    (tmp_path / "target.json").write_text("[2, 1]")
    expected = float(ce.cross_entropy(logits, [2, 1]))
    for first, second in (("logits.npy", "target.csv"), ("logits.csv", "target.json")):
        result = invoke("explain", "ce", "--logits", str(tmp_path / first), "--target",
                        str(tmp_path / second), "-f", "json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["value"] == pytest.approx(expected, rel=1e-15)


def test_list_examples() -> None:
    result = invoke("explain", "--list-examples")
    assert result.exit_code == 0
    for name in examples.names():
        assert name in result.output
    data = json.loads(invoke("explain", "--list-examples", "--format", "json").output)
    assert [row["name"] for row in data] == examples.names()


def test_example_shows_the_seed_and_errata() -> None:
    result = invoke("explain", "--example", "seed002-softmax-ce", "--no-color")
    assert result.exit_code == 0, result.output
    assert "0.479" in result.output and "digits swapped" in result.output.replace("\n", " ")


def test_advise_flag() -> None:
    result = invoke("explain", "ce", "--logits", "[[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]]",
                    "--target", "[0, 1]", "--advise", "-f", "json")
    assert result.exit_code == 0, result.output
    advice = json.loads(result.output)["advice"]
    assert [item["code"] for item in advice] == ["probabilities-as-logits"]
    assert advice[0]["fix"].startswith("Pass the logits")
    text = invoke("explain", "ce", "--logits", "[[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]]",
                  "--target", "[0, 1]", "--advise", "--no-color").output
    assert "advice [probabilities-as-logits]" in text and "fix: Pass the logits" in text
    markdown = invoke("explain", "ce", "--logits", "[[0.7, 0.2, 0.1]]", "--target", "[0]",
                      "--advise", "-f", "markdown").output
    assert "## Advice" in markdown and "**probabilities-as-logits**" in markdown
    clean = invoke("explain", "ce", "--logits", "[[2.0, -1.0]]", "--target", "[0]", "--advise")
    assert "nothing looks wrong" in clean.output
    without = json.loads(invoke("explain", "ce", "--logits", "[[2.0, -1.0]]", "--target", "[0]",
                                "-f", "json").output)
    assert without["advice"] is None


@pytest.mark.parametrize("args,message", [
    (("explain", "ce", "--logits", "[[1.0, 2.0]]"), "cross_entropy needs target"),
    (("explain", "hinge", "--logits", "[1.0]", "--target", "[1]"), "unknown computation 'hinge'"),
    (("explain", "nll", "--logits", "[[-1.0, -2.0]]", "--target", "[0]", "--label-smoothing",
      "0.1"), "nll_loss takes no option --label-smoothing"),
    (("explain", "ce", "--logits", "[[1.0, 2.0", "--target", "[0]"), "must be a JSON array"),
    (("explain", "ce", "--logits", "[[1.0, 2.0]]", "--target", "[5]"), "class index 5"),
    (("explain", "ce", "--logits", "nope.npy", "--target", "[0]"), "does not exist"),
    (("explain", "--example", "seed999"), "unknown example 'seed999'"),
    (("explain",), "give a computation to explain"),
])
def test_errors_name_the_problem(args: tuple[str, ...], message: str) -> None:
    result = invoke(*args)
    assert result.exit_code == 2
    assert message in result.output


def test_plot_list_and_write(tmp_path) -> None:
    listing = invoke("plot", "--list")
    assert listing.exit_code == 0 and "cross-entropy" in listing.output
    assert json.loads(invoke("plot", "--list", "--format", "json").output)
    out = tmp_path / "ce.svg"
    result = invoke("plot", "cross-entropy", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 5_000
    bad = invoke("plot", "nope", "--out", str(tmp_path / "x.png"))
    assert bad.exit_code == 2 and "unknown plot" in bad.output
