"""The ``crossent`` command: thin wrappers over importable functions.

Each command ``x_cli`` parses its options and calls an importable function;
output that is data can be printed as JSON with ``--format json``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

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

# `crossent bench WHAT` runs benchmarks/<script> of the repository in a fresh process
BENCHMARKS = {
    "cross-entropy": "bench_cross_entropy.py",  # fused CPU kernel vs torch, jax, numpy, copy
    "linear": "bench_linear_cross_entropy.py",  # crossent.torch.linear_cross_entropy
}


def benchmarks_folder() -> Path | None:
    """The repository's ``benchmarks/`` folder (next to ``src/``), else ``./benchmarks``."""
    for folder in (Path(__file__).resolve().parents[2] / "benchmarks", Path.cwd() / "benchmarks"):
        if folder.is_dir():
            return folder
    return None


def bench(
    what: str = "cross-entropy",
    *,
    quick: bool = False,
    output_format: str = "table",
    csv: bool = True,
    extra: Sequence[str] = (),
    echo: Callable[[str], None] = print,
) -> int:
    """Run the benchmark ``what`` (a key of ``BENCHMARKS``); returns the script's exit code.

    The script runs in a fresh Python process (clean timings, its own imports) with
    ``src/`` on ``PYTHONPATH``; its standard output goes line by line to ``echo``.
    """
    if what not in BENCHMARKS:
        raise ValueError(
            f"unknown benchmark {what!r}; choose one of {', '.join(sorted(BENCHMARKS))}"
        )
    folder = benchmarks_folder()
    script = None if folder is None else folder / BENCHMARKS[what]
    if script is None or not script.is_file():
        where = "no benchmarks/ folder" if folder is None else f"no {script}"
        raise FileNotFoundError(
            f"crossent bench runs the scripts in the repository's benchmarks/ folder, but found "
            f"{where} (an installed wheel has none); run it from a checkout of crossent, "
            f"e.g. `cd crossent && crossent bench {what}`"
        )
    command = [sys.executable, str(script), "--format", output_format]
    command += (["--quick"] if quick else []) + ([] if csv else ["--no-csv"]) + list(extra)
    source = str(Path(__file__).resolve().parents[1])
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (source, os.environ.get("PYTHONPATH", "")) if p)}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=environment) as process:
        assert process.stdout is not None
        for line in process.stdout:
            echo(line.rstrip("\n"))
    return process.returncode


@app.command(
    "bench", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def bench_cli(
    context: typer.Context,
    what: str = typer.Argument(
        "cross-entropy", help=f"which benchmark: {' | '.join(BENCHMARKS)}"
    ),
    quick: bool = typer.Option(False, "--quick", "-q", help="small sizes, few repetitions"),
    output_format: str = typer.Option("table", "--format", "-f", help="table | json"),
    no_csv: bool = typer.Option(False, "--no-csv", help="do not append to benchmarks/results.csv"),
) -> None:
    """Run a side-by-side benchmark from the repository's benchmarks/ folder.

    Further options go to the script (e.g. `crossent bench --quick --repeats 5`).
    """
    if output_format not in ("table", "json"):
        typer.echo(f"--format must be 'table' or 'json', got {output_format!r}", err=True)
        raise typer.Exit(2)
    extra = list(context.args)
    if what.startswith("-"):  # `crossent bench --repeats 5`: an option for the script, not WHAT
        what, extra = "cross-entropy", [what, *extra]
    try:
        code = bench(what, quick=quick, output_format=output_format, csv=not no_csv,
                     extra=extra, echo=typer.echo)
    except (ValueError, FileNotFoundError) as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def main() -> None:
    """Entry point of the ``crossent`` console script."""
    app()


if __name__ == "__main__":
    main()
