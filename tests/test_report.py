"""crossent report: the standalone HTML page and the Markdown, in headless Chromium too."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

if os.environ.get("CI", "").lower() == "true":
    import sklearn  # noqa: F401  (CI=true: a missing dependency fails, it does not skip)
    import torch
else:
    torch = pytest.importorskip("torch")
    pytest.importorskip("sklearn")

from typer.testing import CliRunner

from crossent.cli import app
from crossent.experiments import report as report_module
from crossent.experiments.report import write_report
from crossent.experiments.results import ExperimentResults
from crossent.experiments.runner import run_experiments


@pytest.fixture(scope="module")
def results() -> ExperimentResults:
    previous = torch.get_num_threads()
    try:
        return run_experiments(epochs=2, seeds=2, models=("linear",))
    finally:
        torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def written(results: ExperimentResults, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("report")
    return write_report(out, results=results, command="crossent report --epochs 2 --seeds 2")


def test_report_files(written: dict) -> None:
    for name in ("html", "markdown", "results", "plot_binary", "plot_multiclass",
                 "plot_multilabel"):
        assert written[name].is_file() and written[name].stat().st_size > 0
    assert json.loads(written["results"].read_text())["schema_version"] == 1


def test_html_is_standalone(written: dict, results: ExperimentResults) -> None:
    page = written["html"].read_text()
    assert page.startswith("<!DOCTYPE html>")
    # nothing fetched from the network: no external src/href, no @import, no CDN
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page
    assert page.count('src="data:image/png;base64,') == 3
    for verdict in results.verdicts:
        assert verdict.headline.split(":")[0] in page
    assert "Seed 004 claimed" in page and "Method and verdict rules" in page


def test_markdown_has_verdicts_tables_and_plots(written: dict, results: ExperimentResults) -> None:
    text = written["markdown"].read_text()
    assert text.startswith("# Seed 004's CE-vs-BCE experiments")
    for verdict in results.verdicts:
        assert f"**({verdict.claim}) {verdict.status}.**" in text
    for scenario in ("binary", "multiclass", "multilabel"):
        assert f"](learning_curves_{scenario}.png)" in text
    assert "| model | setup | test binary acc." in text
    assert "sigmoid + Keras categorical CE" in text


def test_worked_examples_section(results: ExperimentResults, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [{"example": "seed004-bce", "title": "t", "source": "seed 004",
             "quantity": "mean BCE", "seed": "1.2554386947664657",
             "crossent": "1.2554386947664657", "agrees": True, "erratum": ""}]
    monkeypatch.setattr(report_module, "worked_examples", lambda: rows)
    paths = write_report(tmp_path / "with", results=results)
    assert "1 of 1 numbers printed in the seeds agree" in paths["html"].read_text()
    assert "| seed004-bce | mean BCE | 1.2554386947664657 |" in paths["markdown"].read_text()


def test_worked_examples_come_from_explain() -> None:
    rows = report_module.worked_examples()
    assert rows and all({"example", "seed", "crossent", "agrees"} <= set(r) for r in rows)


def test_report_html_renders_in_headless_chromium(written: dict, tmp_path: Path) -> None:
    from _browser import dump_dom, render

    screenshot = tmp_path / "report.png"
    errors = render(written["html"], screenshot)
    assert errors == []
    assert screenshot.read_bytes()[:4] == b"\x89PNG"
    assert 'data-plots-rendered="3/3"' in dump_dom(written["html"])


def test_cli_report_from_results(written: dict, tmp_path: Path) -> None:
    out = tmp_path / "again"
    result = CliRunner().invoke(app, [
        "report", "--out", str(out), "--results", str(written["results"]),
    ])
    assert result.exit_code == 0, result.output
    assert f"Report: {(out / 'report.html').resolve()}" in result.stdout
    assert (out / "report.md").is_file()


def test_cli_report_json_and_errors(written: dict, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, [
        "report", "--out", str(tmp_path), "--results", str(written["results"]), "-f", "json",
    ])
    assert result.exit_code == 0, result.output
    assert {v["claim"] for v in json.loads(result.stdout)["verdicts"]} == {"a", "b", "c"}
    result = CliRunner().invoke(app, [
        "report", "--out", str(tmp_path), "--results", str(tmp_path / "missing.json"),
    ])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_the_method_is_rendered_not_restructured_text(written: dict) -> None:
    """The verdict rules appear as Markdown and as HTML, not as the docstring's reST."""
    markdown = written["markdown"].read_text()
    method = markdown[markdown.index("## Method"):]
    assert "``" not in method and ":func:" not in method
    assert "(`compare`): the difference `d = mean_A - mean_B`" in " ".join(method.split())
    page = written["html"].read_text()
    section = page[page.index("Method and verdict rules"):]
    assert "<pre>" not in section and "``" not in section and ":func:" not in section
    assert "<li><code>|d| &lt;= tol</code>: A works <b>about as well as</b> B;</li>" in section
    assert "<p><b>Whether a setup learns</b> (<code>learning</code>)" in section


def test_one_colour_per_setup_in_every_figure(results: ExperimentResults) -> None:
    from crossent.experiments.plots import SETUP_COLOURS, learning_curves_figure
    from crossent.experiments.setups import SETUPS

    label_to_key = {setup.label: setup.key for setups in SETUPS.values() for setup in setups}
    seen: dict[str, set[str]] = {}
    for scenario in ("binary", "multiclass", "multilabel"):
        figure = learning_curves_figure(results, scenario)
        for axis in figure.axes:
            for line in axis.get_lines():
                if line.get_label() in label_to_key:
                    key = label_to_key[line.get_label()]
                    seen.setdefault(key, set()).add(line.get_color())
    assert set(seen) == set(SETUP_COLOURS)  # every setup drawn, e.g. bce in all three figures
    assert all(len(colours) == 1 for colours in seen.values()), seen
    assert {key: colours.pop() for key, colours in seen.items()} == SETUP_COLOURS
    assert len(set(SETUP_COLOURS.values())) == len(SETUP_COLOURS)  # and no two alike
