"""Learning curves of the experiments as PNG files (matplotlib, Agg; no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .results import ExperimentResults, RunResult
from .setups import SETUPS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["learning_curves", "learning_curves_figure", "plot_all", "SETUP_COLOURS"]

# One colour per setup, the same in every figure: matplotlib's tab10, in the order SETUPS
# first names each setup (bce is blue in all three scenarios, keras_ce orange, ...).
_TAB10 = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
          "tab:pink", "tab:gray", "tab:olive", "tab:cyan")
SETUP_COLOURS: dict[str, str] = {
    name: _TAB10[number % len(_TAB10)] for number, name in enumerate(
        dict.fromkeys(setup.key for setups in SETUPS.values() for setup in setups))
}

_METRIC_LABEL = {
    "binary_accuracy": "test binary accuracy",
    "categorical_accuracy": "test categorical accuracy",
    "exact_match": "test exact match (threshold 0.5)",
}


def _curve(runs: list[RunResult], which: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    values = np.array([[getattr(e, which)[metric] for e in r.history] for r in runs])
    std = values.std(axis=0, ddof=1) if len(runs) > 1 else np.zeros(values.shape[1])
    return values.mean(axis=0), std


def learning_curves(results: ExperimentResults, scenario: str, path: str | Path) -> Path:
    """One PNG for ``scenario``: a row per model; training loss (symlog scale, so an
    exact 0 shows) and the test metric of the verdict, mean ± std band over seeds."""
    path = Path(path)
    learning_curves_figure(results, scenario).savefig(path, dpi=90, bbox_inches="tight")
    return path


def learning_curves_figure(results: ExperimentResults, scenario: str) -> Figure:
    """The figure of :func:`learning_curves` (each setup in its colour of SETUP_COLOURS)."""
    from matplotlib.figure import Figure

    metric = results.config["primary_metric"][scenario]
    models = results.config["models"]
    figure = Figure(figsize=(10, 3.2 * len(models) + 0.5), layout="constrained")
    axes = figure.subplots(len(models), 2, squeeze=False)
    dataset = results.datasets[scenario]["name"]
    for row, model in enumerate(models):
        runs_by_setup: dict[str, list[RunResult]] = {}
        for run in results.runs:
            if run.scenario == scenario and run.model == model:
                runs_by_setup.setdefault(run.setup, []).append(run)
        loss_axis, metric_axis = axes[row]
        for setup, setup_runs in runs_by_setup.items():
            label = setup_runs[0].setup_label
            colour = SETUP_COLOURS.get(setup, "black")
            epochs = np.arange(len(setup_runs[0].history))
            for axis, which, name in ((loss_axis, "train", "loss"), (metric_axis, "test", metric)):
                mean, std = _curve(setup_runs, which, name)
                axis.plot(epochs, mean, label=label, linewidth=1.6, color=colour)
                axis.fill_between(epochs, mean - std, mean + std, color=colour, alpha=0.18,
                                  linewidth=0)
        loss_axis.set_yscale("symlog", linthresh=1e-8)
        loss_axis.set_title(f"{dataset}, {model}: training loss (each setup's own loss)")
        loss_axis.set_xlabel("epoch")
        metric_axis.set_title(f"{dataset}, {model}: {_METRIC_LABEL.get(metric, metric)}")
        metric_axis.set_xlabel("epoch")
        metric_axis.set_ylim(-0.02, 1.02)
        if scenario in results.datasets:
            baseline = results.datasets[scenario]["test_majority_rate"]
            metric_axis.axhline(baseline, color="grey", linestyle=":", linewidth=1,
                                label="majority baseline")
        loss_axis.grid(alpha=0.3)
        metric_axis.grid(alpha=0.3)
    handles, labels = axes[0][1].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 3),
                  fontsize=9, frameon=False)
    return figure


def plot_all(results: ExperimentResults, folder: str | Path) -> dict[str, Path]:
    """``learning_curves_<scenario>.png`` in ``folder`` for every scenario run."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return {
        scenario: learning_curves(results, scenario, folder / f"learning_curves_{scenario}.png")
        for scenario in results.config["scenarios"]
    }
