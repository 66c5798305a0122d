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


# --- experiment / report (crossent.experiments) --------------------------------


# --- bench (benchmarks) --------------------------------------------------------


def main() -> None:
    """Entry point of the ``crossent`` console script."""
    app()


if __name__ == "__main__":
    main()
