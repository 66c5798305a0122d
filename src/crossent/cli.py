"""The ``crossent`` command: thin wrappers over importable functions.

Each command ``x_cli`` parses its options and calls an importable function;
output that is data can be printed as JSON with ``--format json``.
"""

from __future__ import annotations

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


# --- compare (crossent.compat) ------------------------------------------------


def _parse_array(text: str, option: str) -> list:
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise typer.BadParameter(
            f"{option} must be a JSON array such as \"[[0.2, 0.8]]\", got {text!r} ({error.msg})"
        ) from None


@app.command("compare")
def compare_cli(
    loss: str = typer.Argument(..., help="cross_entropy or binary_cross_entropy."),
    logits: str = typer.Option(None, "--logits", "-l",
                               help="Logits as a JSON array, classes last."),
    probs: str = typer.Option(None, "--probs", "-p", help="Probabilities as a JSON array."),
    target: str = typer.Option(..., "--target", "-t",
                               help="Class indices, or probabilities / 0-1 labels (JSON)."),
    label_smoothing: float = typer.Option(0.0, "--label-smoothing", help="Label smoothing ε."),
    ignore_index: int = typer.Option(-100, "--ignore-index", help="PyTorch's ignored index."),
    real: bool = typer.Option(True, "--real/--no-real",
                              help="Also run the installed frameworks (imports them)."),
    output_format: str = typer.Option("text", "--format", "-f", help="text or json."),
) -> None:
    """Compare crossent's loss with every framework's convention for one input.

    Prints one table: crossent (native), each framework's convention as crossent.compat
    reproduces it, the real framework's value where installed, and why each differs.
    """
    import json

    from rich.console import Console

    from .compare import compare, render_table

    if (logits is None) == (probs is None):
        raise typer.BadParameter("give exactly one of --logits and --probs")
    if output_format not in ("text", "json"):
        raise typer.BadParameter(f"--format must be text or json, got {output_format!r}")
    values = _parse_array(logits if logits is not None else probs, "--logits/--probs")
    try:
        result = compare(
            loss, values, _parse_array(target, "--target"),
            inputs="logits" if logits is not None else "probs",
            label_smoothing=label_smoothing, ignore_index=ignore_index, real=real,
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    if output_format == "json":
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        Console(width=160).print(render_table(result))



# --- experiment / report (crossent.experiments) --------------------------------


# --- bench (benchmarks) --------------------------------------------------------


def main() -> None:
    """Entry point of the ``crossent`` console script."""
    app()


if __name__ == "__main__":
    main()
