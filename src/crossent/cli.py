"""The ``crossent`` command: thin wrappers over importable functions.

Each command ``x_cli`` parses its options and calls an importable function;
output that is data can be printed as JSON with ``--format json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

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
    lang: str = typer.Option("en", "--lang", help="language of the words: en or zh (简体中文)"),
) -> None:
    """Explain a computation step by step: formulas, values, and what each step means.

    Examples: crossent explain ce --logits "[[1.4, 3.2, 5.0]]" --target "[2]";
    crossent explain --example seed000-cross-entropy --format html --out ce.html
    """
    from . import explain as explain_module

    try:
        if list_examples:
            _write_or_print(explain_module.list_examples(output_format, lang=lang), out)
            return
        arrays = {
            name: None if value is None else explain_module.load_array(value, name=name)
            for name, value in (("logits", logits), ("target", target), ("weight", weight),
                                ("pos_weight", pos_weight))
        }
        use_color = color if color is not None else (out is None and sys.stdout.isatty())
        content = explain_module.report(
            loss, arrays["logits"], arrays["target"], example=example, format=output_format,
            advise=advise, color=bool(use_color) and output_format == "text", lang=lang,
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
    loss: str = typer.Argument(
        ..., help="cross_entropy or binary_cross_entropy (or cross-entropy, binary-cross-entropy)."
    ),
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

# torch and scikit-learn (the `experiments` extra) are imported only when a command runs.

if TYPE_CHECKING:
    from rich.progress import Progress

    from .experiments.results import ExperimentResults
    from .experiments.runner import ProgressCallback


def _experiment_progress(
    scenarios: list[str], epochs: int | None, seeds: int
) -> tuple[Progress, ProgressCallback]:
    """A rich progress display (on stderr) and the callback that advances it."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from .experiments.runner import total_epochs

    progress = Progress(
        "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
        "epochs", TimeElapsedColumn(), console=Console(stderr=True), transient=False,
    )
    totals = total_epochs(scenarios, epochs=epochs, seeds=seeds)
    tasks = {s: progress.add_task(f"{s:<10}", total=totals[s]) for s in scenarios}

    def advance(scenario: str, count: int) -> None:
        progress.advance(tasks[scenario], count)

    return progress, advance


def _scenarios(scenario: str) -> list[str]:
    from .experiments.runner import SCENARIOS

    if scenario == "all":
        return list(SCENARIOS)
    if scenario not in SCENARIOS:
        raise typer.BadParameter(
            f"expected one of {', '.join(SCENARIOS)} or all, got {scenario!r}",
            param_hint="SCENARIO",
        )
    return [scenario]


def _print_results(results: ExperimentResults, files: dict[str, Path]) -> None:
    from rich.console import Console
    from rich.table import Table

    from .experiments.report import results_table

    console = Console()
    for scenario in results.config["scenarios"]:
        header, rows = results_table(results, scenario)
        table = Table(title=f"{scenario}: {results.datasets[scenario]['name']} "
                            "(final test metrics, mean ± std over seeds)")
        for column in header:
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        console.print(table)
    styles = {"holds": "green", "partly holds": "yellow", "does not hold": "red"}
    for verdict in results.verdicts:
        style = styles.get(verdict.status, "dim")
        console.print(f"[bold]({verdict.claim})[/] [{style}]{verdict.status}[/]: "
                      f"{verdict.headline}", highlight=False)
    for name, path in files.items():
        console.print(f"{name}: {path}", highlight=False)


def experiment(
    scenario: str = "all",
    *,
    epochs: int | None = None,
    seeds: int = 3,
    data: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] = "experiment-results",
    workers: int | None = None,
    show_progress: bool = True,
) -> tuple[ExperimentResults, dict[str, Path]]:
    """Run the experiments of ``scenario`` and write results.json and the plots into ``out``."""
    import time

    from .experiments.plots import plot_all
    from .experiments.runner import run_experiments

    scenarios = _scenarios(scenario)
    workers = 1 if workers is None else workers
    data_path = None if data is None else Path(data)
    started = time.perf_counter()
    if show_progress:
        progress, advance = _experiment_progress(scenarios, epochs, seeds)
        with progress:
            results = run_experiments(scenarios, epochs=epochs, seeds=seeds, data=data_path,
                                      workers=workers, progress=advance)
    else:
        results = run_experiments(scenarios, epochs=epochs, seeds=seeds, data=data_path,
                                  workers=workers)
    results.wall_s = time.perf_counter() - started
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    files = {"results": results.save(folder / "results.json")}
    files.update({f"plot_{k}": v for k, v in plot_all(results, folder).items()})
    return results, files


def _summary_json(results: ExperimentResults, files: dict[str, Path]) -> str:
    import json
    from dataclasses import asdict

    return json.dumps({
        "config": results.config,
        "datasets": results.datasets,
        "summary": [asdict(row) for row in results.summary],
        "verdicts": [asdict(v) for v in results.verdicts],
        "wall_s": results.wall_s,
        "files": {k: str(v) for k, v in files.items()},
    }, indent=1)


def _data_error(error: Exception) -> typer.BadParameter:
    return typer.BadParameter(str(error), param_hint="--data")


@app.command("experiment")
def experiment_cli(
    scenario: str = typer.Argument(
        "all", help="binary, multiclass, multilabel or all."),
    epochs: int = typer.Option(
        None, "--epochs", "-e", min=1, help="Epochs per run (default: per scenario, 20-30)."),
    seeds: int = typer.Option(3, "--seeds", "-s", min=1, help="Seeds per setup (mean ± std)."),
    data: str = typer.Option(
        None, "--data", help="The seed's own data: MNIST IDX folder, aclImdb folder or "
        "imdb.npz (or a folder holding them). Default: the bundled scikit-learn data."),
    out: str = typer.Option(
        "experiment-results", "--out", "-o", help="Folder for results.json and PNGs."),
    workers: int = typer.Option(
        1, "--workers", "-w", min=1,
        help="Processes side by side (2 helps only on an idle machine with 2 free cores)."),
    format: str = typer.Option("text", "--format", "-f", help="text or json."),
) -> None:
    """Reproduce seed 004's CE-vs-BCE experiments on real data; verdict per claim.

    Trains a linear model and a small MLP with each setup (sigmoid + BCE, Keras's
    categorical CE on one sigmoid output, softmax + CE, ...) for several seeds and
    writes results.json and learning-curve PNGs into --out.
    """
    from .experiments.datasets import DataError

    if format not in ("text", "json"):
        raise typer.BadParameter(f"expected text or json, got {format!r}", param_hint="--format")
    try:
        results, files = experiment(scenario, epochs=epochs, seeds=seeds,
                                    data=Path(data) if data else None, out=Path(out),
                                    workers=workers)
    except DataError as error:
        raise _data_error(error) from None
    if format == "json":
        typer.echo(_summary_json(results, files))
    else:
        _print_results(results, files)


def report(
    out: str | os.PathLike[str] = "report",
    *,
    epochs: int | None = None,
    seeds: int = 3,
    data: str | os.PathLike[str] | None = None,
    results_path: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    show_progress: bool = True,
) -> tuple[ExperimentResults, dict[str, Path]]:
    """Write report.html, report.md, results.json and the plots into ``out``.

    Runs the experiments, or reads them from ``results_path`` (a results.json).
    """
    from .experiments.report import write_report
    from .experiments.results import ExperimentResults
    from .experiments.verdicts import judge

    command = "crossent report"
    if results_path is not None:
        results = ExperimentResults.load(Path(results_path))
        results.verdicts = judge(results)  # derived data: worded by the current rules
        command = str(results.config.get("command", "crossent experiment"))
    else:
        results, _ = experiment("all", epochs=epochs, seeds=seeds, data=data, out=out,
                                workers=workers, show_progress=show_progress)
        parts = [f"--epochs {epochs}" if epochs else "", f"--seeds {seeds}",
                 f"--data {data}" if data else ""]
        command = " ".join(["crossent report", *[p for p in parts if p]])
        results.config["command"] = command
    return results, write_report(Path(out), results=results, command=command)


@app.command("report")
def report_cli(
    out: str = typer.Option("report", "--out", "-o", help="Folder for the report."),
    epochs: int = typer.Option(None, "--epochs", "-e", min=1, help="Epochs per run."),
    seeds: int = typer.Option(3, "--seeds", "-s", min=1, help="Seeds per setup."),
    data: str = typer.Option(None, "--data", help="The seed's own data (see experiment)."),
    results_path: str = typer.Option(
        None, "--results", help="Reuse a results.json instead of training."),
    workers: int = typer.Option(
        1, "--workers", "-w", min=1,
        help="Processes side by side (2 helps only on an idle machine with 2 free cores)."),
    format: str = typer.Option("text", "--format", "-f", help="text or json."),
) -> None:
    """Write the report of seed 004's experiments: one standalone HTML page and Markdown.

    Verdicts on the seed's claims, results tables, learning curves, the seeds' worked
    examples and the method; the page needs no network.
    """
    from .experiments.datasets import DataError

    if format not in ("text", "json"):
        raise typer.BadParameter(f"expected text or json, got {format!r}", param_hint="--format")
    try:
        results, files = report(Path(out), epochs=epochs, seeds=seeds,
                                data=Path(data) if data else None,
                                results_path=Path(results_path) if results_path else None,
                                workers=workers)
    except DataError as error:
        raise _data_error(error) from None
    except (FileNotFoundError, ValueError) as error:
        if results_path is None:
            raise
        raise typer.BadParameter(str(error), param_hint="--results") from None
    if format == "json":
        typer.echo(_summary_json(results, files))
        return
    _print_results(results, {})
    typer.echo(f"Report: {files['html'].resolve()}")
    typer.echo(f"Markdown: {files['markdown'].resolve()}")



# --- bench (benchmarks) --------------------------------------------------------

# `crossent bench WHAT` runs benchmarks/<script> of the repository in a fresh process
BENCHMARKS = {
    "cross-entropy": "bench_cross_entropy.py",  # fused CPU kernel vs torch, jax, numpy, copy
    "linear": "bench_linear_cross_entropy.py",  # crossent.torch.linear_cross_entropy
    "few-classes": "bench_few_classes.py",  # the two integer-target kernels, by C
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


# --- serve (crossent.serve) -----------------------------------------------------


@app.command("serve")
def serve_cli(
    host: str = typer.Option("127.0.0.1", "--host", help="address to listen on (loopback: only "
                             "this machine can connect)"),
    port: int = typer.Option(8000, "--port", "-p", help="port to listen on"),
    open_browser: bool = typer.Option(False, "--open", help="open the page in a web browser"),
) -> None:
    """Start the playground: a local web page to move logits and watch the loss answer.

    English and Simplified Chinese (?lang=zh); works offline. Needs the serve extra
    (pip install 'crossent[serve]').
    """
    from .serve import serve

    try:
        serve(host, port, open_browser=open_browser)
    except (ValueError, ImportError, OSError) as error:
        _fail(str(error))


def main() -> None:
    """Entry point of the ``crossent`` console script."""
    app()


if __name__ == "__main__":
    main()
