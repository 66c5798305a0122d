"""The seeds' curves: information, entropy, cross-entropy, softmax temperature, sigmoid, BCE.

Every curve's values come from crossent's core functions; figures are drawn with
matplotlib's object API on the Agg canvas (no display, no pyplot state)::

    from crossent import plots
    plots.plot("cross-entropy", "ce.png")        # or .svg
    figure = plots.figure("binary-entropy")       # a matplotlib Figure

From the command line: ``crossent plot cross-entropy --out ce.png`` and
``crossent plot --list``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import activations, information, losses

__all__ = ["PLOTS", "Plot", "names", "figure", "plot"]


@dataclass(frozen=True)
class Plot:
    """A named figure: its description, the number of labelled curves, and how to draw it."""

    name: str
    description: str
    lines: int
    draw: Callable[[Any], None]


PLOTS: dict[str, Plot] = {}


Draw = Callable[[Any], None]


def _plot(name: str, description: str, lines: int) -> Callable[[Draw], Draw]:
    def register(draw: Callable[[Any], None]) -> Callable[[Any], None]:
        PLOTS[name] = Plot(name, description, lines, draw)
        return draw

    return register


def _zero_line(axes: Any, x: np.ndarray) -> None:
    axes.plot(x, np.zeros_like(x), color="gray", linewidth=1.5, linestyle="--", label="_zero")


def _finish(axes: Any, title: str, xlabel: str, ylabel: str, legend_loc: str = "best") -> None:
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.grid(True, alpha=0.3)
    axes.legend(loc=legend_loc)


@_plot("information", "self-information -log p (and log p) against p (seed 000)", 2)
def _information(axes: Any) -> None:
    p = np.linspace(0.01, 1.0, 100)
    surprise = information.self_information(p)
    _zero_line(axes, p)
    axes.plot(p, -surprise, label=r"$\log p$")
    axes.plot(p, surprise, label=r"$-\log p$ (information)")
    _finish(axes, "Information of an outcome of probability p", "p(x)", "nats", "upper right")


@_plot("entropy-terms", "log p, -log p and the entropy term -p log p (seed 000)", 3)
def _entropy_terms(axes: Any) -> None:
    p = np.linspace(0.01, 0.99, 99)
    surprise = information.self_information(p)
    # one outcome's entropy term -p log p: the cross-entropy of p with itself, one class
    term = information.cross_entropy(p[:, None], p[:, None])
    _zero_line(axes, p)
    axes.plot(p, -surprise, label=r"$\log p$")
    axes.plot(p, surprise, label=r"$-\log p$")
    axes.plot(p, term, label=r"$-p\,\log p$")
    _finish(axes, "Entropy terms", "p(x)", "nats", "upper right")


@_plot("binary-entropy", "entropy of a coin H_b(p) in bits: 0 at p in {0, 1}, 1 bit at 1/2", 1)
def _binary_entropy(axes: Any) -> None:
    p = np.linspace(0.0, 1.0, 201)
    axes.plot(p, information.binary_entropy(p, base=2), label=r"$H_b(p)$")
    _finish(axes, "Binary entropy", "p (probability of heads)", "bits")


@_plot("cross-entropy", "cross-entropy term -p log q against q, p in {0, 0.1, ..., 1} (seed 000)",
       11)
def _cross_entropy(axes: Any) -> None:
    q = np.linspace(0.01, 1.0, 100)
    colours = _colours(11)
    for index, p in enumerate(np.round(np.arange(0, 11) / 10, 1)):
        # -p log q for one outcome: information.cross_entropy over a class axis of length 1
        values = information.cross_entropy(np.full((q.size, 1), p), q[:, None])
        axes.plot(q, values, color=colours[index], label=f"p={p:g}")
    _finish(axes, r"Cross-entropy term $-p\,\log q$", "q(x)", "cross-entropy (nats)",
            "upper right")


@_plot("softmax-temperature", "softmax([1, 2, 3] / T) against the temperature T", 3)
def _softmax_temperature(axes: Any) -> None:
    logits = np.array([1.0, 2.0, 3.0])
    temperatures = np.geomspace(0.1, 10.0, 121)
    probs = activations.softmax(logits[None, :] / temperatures[:, None])
    for c in range(logits.size):
        axes.plot(temperatures, probs[:, c], label=f"class {c + 1} (z = {logits[c]:g})")
    axes.axhline(1 / 3, color="gray", linestyle=":", linewidth=1)  # a Line2D too, not counted below
    axes.set_xscale("log")
    _finish(axes, "Softmax of z = [1, 2, 3] at temperature T: sharp when cold, uniform when hot",
            "temperature T (log scale)", "probability")


@_plot("sigmoid", "sigmoid and log-sigmoid against the logit", 2)
def _sigmoid(axes: Any) -> None:
    x = np.linspace(-6.0, 6.0, 241)
    axes.plot(x, activations.sigmoid(x), label=r"$\sigma(x)$")
    axes.plot(x, activations.log_sigmoid(x), label=r"$\log\sigma(x)$")
    _finish(axes, "Sigmoid and log-sigmoid", "logit x", "value")


@_plot("bce-logit", "binary cross-entropy against the logit, for targets y = 0 and y = 1", 2)
def _bce_logit(axes: Any) -> None:
    x = np.linspace(-6.0, 6.0, 241)
    for y in (0.0, 1.0):
        loss = losses.binary_cross_entropy_with_logits(x, np.full_like(x, y), reduction="none")
        axes.plot(x, loss, label=f"y = {y:g}")
    _finish(axes, r"BCE from logits: $\max(x,0) - x\,y + \log(1+e^{-|x|})$", "logit x",
            "loss (nats)", "upper center")


def _colours(count: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(i / max(count - 1, 1)) for i in range(count)]


def names() -> list[str]:
    """The plot names."""
    return list(PLOTS)


def _get(name: str) -> Plot:
    key = name.strip().lower().replace("_", "-")
    if key not in PLOTS:
        raise ValueError(f"unknown plot {name!r}; expected one of {', '.join(PLOTS)}")
    return PLOTS[key]


def figure(name: str) -> Any:
    """The matplotlib ``Figure`` of the plot ``name`` (on an Agg canvas).

    >>> from crossent import plots
    >>> fig = plots.figure("bce-logit")
    >>> len([line for line in fig.axes[0].get_lines() if not line.get_label().startswith("_")])
    2
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    spec = _get(name)
    fig = Figure(figsize=(7.0, 4.6), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    spec.draw(fig.add_subplot())
    return fig


def plot(name: str, out: str | Path) -> Path:
    """Draw the plot ``name`` and save it to ``out`` (``.png`` or ``.svg``); returns the path."""
    path = Path(out)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise ValueError(f"out must end in .png or .svg, got {str(out)!r}")
    fig = figure(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format=suffix[1:])
    return path

