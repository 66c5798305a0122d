"""The ``crossent`` command: thin wrappers over importable functions.

Each command ``x_cli`` parses its options and calls an importable function;
output that is data can be printed as JSON with ``--format json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(
    name="crossent",
    help="Cross-entropy losses: exact, explained, compared across frameworks, fast.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Cross-entropy losses: exact, explained, compared across frameworks, fast."""


# --- explain / plot (crossent.explain, crossent.plots) ------------------------

_ARRAY_HELP = "inline JSON array (e.g. '[[0.4, 0.3, 0.7]]') or a .npy/.csv/.json file"


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _write_or_print(content: str, out: Path | None) -> None:
    if out is None:
        typer.echo(content, nl=not content.endswith("\n"))
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(content, encoding="utf-8")
    typer.echo(f"wrote {out}")


@app.command("explain")
def explain_cli(
    loss: str = typer.Argument(
        None, help="what to explain: cross_entropy, nll_loss, binary_cross_entropy, "
        "binary_cross_entropy_with_logits, sigmoid_focal_loss, softmax_focal_loss, entropy, "
        "kl_divergence, softmax_inverse, cross_entropy_grad (aliases: ce, nll, bce, "
        "bce-with-logits, grad, kl, reverse-softmax)",
    ),
    logits: str = typer.Option(
        None, "--logits", "--probs", "--input", "-x",
        help=f"first array: logits (probabilities for binary_cross_entropy, entropy, "
        f"kl_divergence, softmax_inverse; log-probabilities for nll_loss); {_ARRAY_HELP}",
    ),
    target: str = typer.Option(
        None, "--target", "-t",
        help=f"second array: class indices or probabilities (q for kl_divergence); {_ARRAY_HELP}",
    ),
    weight: str = typer.Option(None, "--weight", "-w", help=f"class weights; {_ARRAY_HELP}"),
    pos_weight: str = typer.Option(None, "--pos-weight", help=f"positive weight; {_ARRAY_HELP}"),
    label_smoothing: float = typer.Option(None, "--label-smoothing", help="epsilon in [0, 1]"),
    reduction: str = typer.Option(None, "--reduction", "-r", help="none, mean or sum"),
    ignore_index: int = typer.Option(None, "--ignore-index", help="target value not counted"),
    axis: int = typer.Option(None, "--axis", help="the class axis (default -1)"),
    alpha: float = typer.Option(None, "--alpha", help="focal loss alpha"),
    gamma: float = typer.Option(None, "--gamma", help="focal loss gamma"),
    base: float = typer.Option(None, "--base", help="log base of entropy/KL (2 for bits)"),
    output_format: str = typer.Option(
        "text", "--format", "-f", help="text, json, markdown or html"),
    out: Annotated[Optional[Path], typer.Option(  # noqa: UP045 (typer needs Optional here)
        "--out", "-o", help="write to this file instead of stdout")] = None,
    advise: bool = typer.Option(False, "--advise", help="add the misuse advisor's warnings"),
    example: str = typer.Option(None, "--example", "-e", help="a seed's worked example"),
    list_examples: bool = typer.Option(False, "--list-examples", help="list the examples"),
    color: bool = typer.Option(None, "--color/--no-color", help="colour (default: if a tty)"),
) -> None:
    """Explain a computation step by step: formulas, values, and what each step means.

    Examples: crossent explain ce --logits "[[1.4, 3.2, 5.0]]" --target "[2]";
    crossent explain --example seed000-cross-entropy --format html --out ce.html
    """
    from . import explain as explain_module

    if list_examples:
        _write_or_print(explain_module.list_examples(output_format), out)
        return
    try:
        arrays = {
            name: None if value is None else explain_module.load_array(value, name=name)
            for name, value in (("logits", logits), ("target", target), ("weight", weight),
                                ("pos_weight", pos_weight))
        }
        use_color = color if color is not None else (out is None and sys.stdout.isatty())
        content = explain_module.report(
            loss, arrays["logits"], arrays["target"], example=example, format=output_format,
            advise=advise, color=bool(use_color) and output_format == "text",
            weight=arrays["weight"], pos_weight=arrays["pos_weight"],
            label_smoothing=label_smoothing, reduction=reduction, ignore_index=ignore_index,
            axis=axis, alpha=alpha, gamma=gamma, base=base,
        )
    except (ValueError, TypeError) as error:
        _fail(str(error))
        return
    _write_or_print(content, out)


@app.command("plot")
def plot_cli(
    name: str = typer.Argument(None, help="the plot (crossent plot --list)"),
    out: Annotated[Optional[Path], typer.Option(  # noqa: UP045 (typer needs Optional here)
        "--out", "-o", help="FILE.png or FILE.svg")] = None,
    list_plots: bool = typer.Option(False, "--list", help="list the plots"),
    output_format: str = typer.Option("text", "--format", "-f", help="text or json (--list)"),
) -> None:
    """Draw one of the seeds' curves (information, entropy, cross-entropy, ...) to a file."""
    from . import plots

    if list_plots:
        rows = [{"name": p.name, "description": p.description} for p in plots.PLOTS.values()]
        if output_format == "json":
            typer.echo(json.dumps(rows, indent=2))
        else:
            width = max(len(row["name"]) for row in rows)
            for row in rows:
                typer.echo(f"{row['name']:<{width}}  {row['description']}")
        return
    if name is None or out is None:
        _fail("give a plot name and --out FILE.png|svg (crossent plot --list shows the names)")
        return
    try:
        path = plots.plot(name, out)
    except ValueError as error:
        _fail(str(error))
        return
    typer.echo(f"wrote {path}")



# --- compare (crossent.compat) ------------------------------------------------


# --- experiment / report (crossent.experiments) --------------------------------


# --- bench (benchmarks) --------------------------------------------------------


def main() -> None:
    """Entry point of the ``crossent`` console script."""
    app()


if __name__ == "__main__":
    main()
