"""The ``crossent`` command: it parses options, calls an importable function, prints the result.

- Each command ``x_cli`` parses its options and calls an importable function ``x(...)``
  (:func:`crossent.explain.report`, :func:`crossent.compare`, :func:`crossent.plots.plot`,
  :func:`experiment`, :func:`report`, :func:`bench`), which raises ValueError or TypeError
  (OSError for files), never a typer error.
- One printer for errors: whatever a command raises, and every error of the parser itself
  (an unknown option, a bad choice), is printed as one line ``error: ...`` on stderr with
  exit status 2 (:class:`_Crossent`); so is a missing optional dependency.
- Option choices are Enums, so the parser rejects a bad value itself; output that is data
  prints as JSON with ``--format json``; an ``--out`` path is checked before any work.

A new command is one small function::

    @app.command("evaluate")
    def evaluate_cli(path: str = typer.Argument(..., help="a CSV of labels and scores"),
                     output_format: DataFormat = FORMAT) -> None:
        \"\"\"The help text.\"\"\"
        print_data(evaluate(path).to_dict(), output_format, text=render_evaluation)
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from . import __version__, _registry
from ._validate import check_writable_file, check_writable_folder

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from .experiments.results import ExperimentResults
    from .experiments.runner import ProgressCallback


class _Crossent(TyperGroup):
    """The root command: every error, the parser's or a command's, printed as one line."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False,
                                windows_expand_args=windows_expand_args, **extra)
        except typer.Abort:
            typer.echo("aborted", err=True)
            code = 1
        except typer.TyperException as error:  # the parser's: bad option, bad choice, ...
            code = _print_error(error.format_message().replace("Value error, ", ""))
        except (ValueError, TypeError, OSError) as error:  # the importable functions'
            code = _print_error(str(error))
        except ImportError as error:  # an optional extra not installed
            code = _print_error(f"{error}; the command needs it (pip install 'crossent[all]')")
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


def _print_error(message: str) -> int:
    """The one printer of errors: ``error: <message>`` on stderr; returns the exit status."""
    first, *rest = message.strip().splitlines() or [""]
    typer.echo(f"error: {first}" + "".join(f"\n  {line}" for line in rest), err=True)
    return 2


app = typer.Typer(
    name="crossent",
    cls=_Crossent,
    help="Cross-entropy losses: exact, explained, compared across frameworks, fast.",
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"crossent {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    context: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                 help="Show crossent's version and exit."),
) -> None:
    """Cross-entropy losses: exact, explained, compared across frameworks, fast."""
    if context.invoked_subcommand is None:
        typer.echo(context.get_help())


# --- shared options and printers ---------------------------------------------------------


class DataFormat(str, Enum):
    """``--format`` of a command whose output is data."""

    text = "text"
    json = "json"


class TraceFormat(str, Enum):
    """``--format`` of ``crossent explain``."""

    text = "text"
    json = "json"
    markdown = "markdown"
    html = "html"


class Lang(str, Enum):
    """``--lang``: the language of explain's words (English or Simplified Chinese)."""

    en = "en"
    zh = "zh"


class Reduction(str, Enum):
    none = "none"
    mean = "mean"
    sum = "sum"


FORMAT = typer.Option(DataFormat.text, "--format", "-f", help="Print text or JSON.")

_ARRAY_HELP = "inline JSON array (e.g. '[[0.4, 0.3, 0.7]]') or a .npy/.csv/.json file"


def write_or_print(content: str, out: Path | None) -> None:
    """``content`` to stdout, or to the file ``out`` (saying so)."""
    if out is None:
        typer.echo(content, nl=not content.endswith("\n"))
        return
    check_writable_file("--out", out).write_text(content, encoding="utf-8")
    typer.echo(f"wrote {out}")


def print_data(data: Any, output_format: DataFormat, text: Callable[[Any], None]) -> None:
    """``data`` as JSON (``--format json``), or printed by ``text``."""
    if output_format is DataFormat.json:
        typer.echo(json.dumps(data, indent=2))
    else:
        text(data)


# --- explain / plot (crossent.explain, crossent.plots) --------------------------------------


def _traced_listing() -> str:
    names = ", ".join(entry.name for entry in _registry.ENTRIES)
    aliases = ", ".join(_registry.spelling(alias) for entry in _registry.ENTRIES
                        for alias in entry.aliases)
    return f"{names} (aliases: {aliases})"


@app.command("explain")
def explain_cli(
    loss: str = typer.Argument(None, help=f"what to explain: {_traced_listing()}",
                               show_default=False),
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
    reduction: Reduction = typer.Option(None, "--reduction", "-r", help="default: mean"),
    ignore_index: int = typer.Option(None, "--ignore-index", help="target value not counted"),
    axis: int = typer.Option(None, "--axis", help="the class axis (default -1)"),
    alpha: float = typer.Option(None, "--alpha", help="focal loss alpha"),
    gamma: float = typer.Option(None, "--gamma", help="focal loss gamma"),
    base: float = typer.Option(None, "--base", help="log base of entropy/KL (2 for bits)"),
    output_format: TraceFormat = typer.Option(TraceFormat.text, "--format", "-f"),
    out: Optional[Path] = typer.Option(  # noqa: UP045 (typer needs Optional here)
        None, "--out", "-o", help="write to this file instead of stdout"),
    advise: bool = typer.Option(False, "--advise", help="add the misuse advisor's warnings"),
    example: str = typer.Option(None, "--example", "-e", help="a seed's worked example"),
    list_examples: bool = typer.Option(False, "--list-examples", help="list the examples"),
    color: bool = typer.Option(None, "--color/--no-color", help="colour (default: if a tty)"),
    lang: Lang = typer.Option(Lang.en, "--lang", help="language of the words: en or zh (简体中文)"),
) -> None:
    """Explain a computation step by step: formulas, values, and what each step means.

    Examples: crossent explain ce --logits "[[1.4, 3.2, 5.0]]" --target "[2]";
    crossent explain --example seed000-cross-entropy --format html --out ce.html
    """
    from . import explain as explain_module

    if out is not None:
        check_writable_file("--out", out)
    if list_examples:
        write_or_print(explain_module.list_examples(output_format.value, lang=lang.value), out)
        return
    arrays = {
        name: None if value is None else explain_module.load_array(value, name=f"--{flag}")
        for name, flag, value in (("logits", "logits", logits), ("target", "target", target),
                                  ("weight", "weight", weight),
                                  ("pos_weight", "pos-weight", pos_weight))
    }
    use_color = color if color is not None else (out is None and sys.stdout.isatty())
    content = explain_module.report(
        loss, arrays["logits"], arrays["target"], example=example, format=output_format.value,
        advise=advise, color=bool(use_color) and output_format is TraceFormat.text,
        lang=lang.value,
        weight=arrays["weight"], pos_weight=arrays["pos_weight"],
        label_smoothing=label_smoothing, reduction=None if reduction is None else reduction.value,
        ignore_index=ignore_index, axis=axis, alpha=alpha, gamma=gamma, base=base,
    )
    write_or_print(content, out)


@app.command("plot")
def plot_cli(
    name: str = typer.Argument(None, help="the plot (crossent plot --list)", show_default=False),
    out: Optional[Path] = typer.Option(  # noqa: UP045 (typer needs Optional here)
        None, "--out", "-o", help="FILE.png or FILE.svg"),
    list_plots: bool = typer.Option(False, "--list", help="list the plots"),
    output_format: DataFormat = typer.Option(DataFormat.text, "--format", "-f",
                                             help="text or json (--list)"),
) -> None:
    """Draw one of the seeds' curves (information, entropy, cross-entropy, ...) to a file."""
    from . import plots

    if list_plots:
        rows = [{"name": p.name, "description": p.description} for p in plots.PLOTS.values()]

        def text(rows: list[dict[str, str]]) -> None:
            width = max(len(row["name"]) for row in rows)
            for row in rows:
                typer.echo(f"{row['name']:<{width}}  {row['description']}")

        print_data(rows, output_format, text)
        return
    if name is None or out is None:
        raise ValueError("give a plot name and --out FILE.png|svg (crossent plot --list shows "
                         "the names)")
    check_writable_file("--out", out)
    typer.echo(f"wrote {plots.plot(name, out)}")


# --- compare (crossent.compare) ---------------------------------------------------------------


def _parse_array(text: str, option: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{option} must be a JSON array such as \"[[0.2, 0.8]]\", got {text!r} ({error.msg})"
        ) from None


@app.command("compare")
def compare_cli(
    loss: str = typer.Argument(
        ..., help="cross_entropy or binary_cross_entropy (or cross-entropy, ce, bce, ...)."
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
    output_format: DataFormat = FORMAT,
) -> None:
    """Compare crossent's loss with every framework's convention for one input.

    Prints one table: crossent (native), each framework's convention as crossent.compat
    reproduces it, the real framework's value where installed, and why each differs.
    """
    from rich.console import Console

    from .compare import compare, render_table

    if (logits is None) == (probs is None):
        raise ValueError("give exactly one of --logits and --probs")
    values = _parse_array(logits if logits is not None else probs, "--logits/--probs")
    with _status_line(Console(stderr=True)) as say:
        result = compare(
            loss, values, _parse_array(target, "--target"),
            inputs="logits" if logits is not None else "probs",
            label_smoothing=label_smoothing, ignore_index=ignore_index, real=real,
            progress=lambda line: say(f"{line}… (--no-real skips the frameworks)"),
        )
    console = Console()  # the terminal's width; 160 columns into a file or a pipe
    console = console if console.is_terminal else Console(width=160)
    print_data(result.to_dict(), output_format, lambda _: console.print(render_table(result)))


@contextlib.contextmanager
def _status_line(console: Console) -> Iterator[Callable[[str], None]]:
    """A callback showing what is happening: a spinner on a terminal, else a line each."""
    if not console.is_terminal:
        yield lambda line: console.print(line, highlight=False)
        return
    with console.status("", spinner="dots") as status:
        yield status.update


# --- experiment / report (crossent.experiments) ----------------------------------------------

# torch and scikit-learn (the `experiments` extra) are imported only when a command runs.


class Scenario(str, Enum):
    """The experiments of ``crossent experiment`` (those of crossent.experiments.SCENARIOS)."""

    binary = "binary"
    multiclass = "multiclass"
    multilabel = "multilabel"
    all = "all"


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


def _print_results(results: ExperimentResults, files: dict[str, Path]) -> None:
    """The results, a table per scenario and model (a column per setup), and the verdicts;
    fits 80 columns."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    from .experiments.report import results_table

    console = Console()
    for scenario in results.config["scenarios"]:
        (_, _, *quantities), rows = results_table(results, scenario)
        for model in results.config["models"]:
            setups = [row[1:] for row in rows if row[0] == model]  # a column per setup
            table = Table(title=f"{scenario}, {model}: {results.datasets[scenario]['name']} "
                                "(final test metrics, mean ± std over seeds)",
                          box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
            table.add_column("")
            for label, *_ in setups:
                table.add_column(label, justify="right")
            for number, quantity in enumerate(quantities, 1):
                table.add_row(quantity, *(setup[number] for setup in setups))
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

    from .experiments.datasets import find_data
    from .experiments.plots import plot_all
    from .experiments.runner import SCENARIOS, run_experiments

    scenarios = list(SCENARIOS) if scenario == "all" else [scenario]
    folder = check_writable_folder("out", out)
    workers = 1 if workers is None else workers
    data_path = None if data is None else Path(data)
    if data_path is not None:
        find_data(data_path)  # a wrong --data fails before the progress display starts
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
    files = {"results": results.save(folder / "results.json")}
    files.update({f"plot_{k}": v for k, v in plot_all(results, folder).items()})
    return results, files


def _summary(results: ExperimentResults, files: dict[str, Path]) -> dict[str, Any]:
    from dataclasses import asdict

    return {
        "config": results.config,
        "datasets": results.datasets,
        "summary": [asdict(row) for row in results.summary],
        "verdicts": [asdict(v) for v in results.verdicts],
        "wall_s": results.wall_s,
        "files": {k: str(v) for k, v in files.items()},
    }


_WORKERS_HELP = "Processes side by side (2 helps only on an idle machine with 2 free cores)."


@app.command("experiment")
def experiment_cli(
    scenario: Scenario = typer.Argument(Scenario.all, help="Which experiments to run."),
    epochs: int = typer.Option(
        None, "--epochs", "-e", min=1, help="Epochs per run (default: per scenario, 20-30)."),
    seeds: int = typer.Option(3, "--seeds", "-s", min=1, help="Seeds per setup (mean ± std)."),
    data: str = typer.Option(
        None, "--data", help="The seed's own data: MNIST IDX folder, aclImdb folder or "
        "imdb.npz (or a folder holding them). Default: the bundled scikit-learn data."),
    out: Path = typer.Option(
        Path("experiment-results"), "--out", "-o", help="Folder for results.json and PNGs."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help=_WORKERS_HELP),
    output_format: DataFormat = FORMAT,
) -> None:
    """Reproduce seed 004's CE-vs-BCE experiments on real data; verdict per claim.

    Trains a linear model and a small MLP with each setup (sigmoid + BCE, Keras's
    categorical CE on one sigmoid output, softmax + CE, ...) for several seeds and
    writes results.json and learning-curve PNGs into --out.
    """
    check_writable_folder("--out", out)
    results, files = experiment(scenario.value, epochs=epochs, seeds=seeds, data=data, out=out,
                                workers=workers)
    print_data(_summary(results, files), output_format, lambda _: _print_results(results, files))


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

    folder = check_writable_folder("out", out)
    if results_path is not None:
        results = ExperimentResults.load(Path(results_path))
        results.verdicts = judge(results)  # derived data: worded by the current rules
        command = str(results.config.get("command", "crossent experiment"))
    else:
        results, _ = experiment("all", epochs=epochs, seeds=seeds, data=data, out=folder,
                                workers=workers, show_progress=show_progress)
        parts = [f"--epochs {epochs}" if epochs else "", f"--seeds {seeds}",
                 f"--data {data}" if data else ""]
        command = " ".join(["crossent report", *[p for p in parts if p]])
        results.config["command"] = command
    return results, write_report(folder, results=results, command=command)


@app.command("report")
def report_cli(
    out: Path = typer.Option(Path("report"), "--out", "-o", help="Folder for the report."),
    epochs: int = typer.Option(None, "--epochs", "-e", min=1, help="Epochs per run."),
    seeds: int = typer.Option(3, "--seeds", "-s", min=1, help="Seeds per setup."),
    data: str = typer.Option(None, "--data", help="The seed's own data (see experiment)."),
    results_path: Optional[Path] = typer.Option(  # noqa: UP045 (typer needs Optional here)
        None, "--results", help="Reuse a results.json instead of training."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help=_WORKERS_HELP),
    output_format: DataFormat = FORMAT,
) -> None:
    """Write the report of seed 004's experiments: one standalone HTML page and Markdown.

    Verdicts on the seed's claims, results tables, learning curves, the seeds' worked
    examples and the method; the page needs no network.
    """
    check_writable_folder("--out", out)
    results, files = report(out, epochs=epochs, seeds=seeds, data=data,
                            results_path=results_path, workers=workers)

    def text(_: Any) -> None:
        _print_results(results, {})
        typer.echo(f"Report: {files['html'].resolve()}")
        typer.echo(f"Markdown: {files['markdown'].resolve()}")

    print_data(_summary(results, files), output_format, text)


# --- evaluate (crossent.evaluate) ---------------------------------------------


@app.command("evaluate")
def evaluate_cli(
    paths: Annotated[list[Path], typer.Argument(
        help="Parquet, CSV or .npy files, or folders of them")],
    label: str = typer.Option(..., "--label", help="column of the true labels"),
    prob: str = typer.Option(None, "--prob", help="column of the positive class's probability"),
    logit: str = typer.Option(None, "--logit", help="column of the positive class's logit"),
    prob_cols: str = typer.Option(
        None, "--prob-cols", help="one probability column per class, in sorted class order: A,B,..."),
    weight: str = typer.Option(None, "--weight", help="column of sample weights"),
    by: str = typer.Option(None, "--by", help="column of groups: one result per group"),
    labels: str = typer.Option(None, "--labels", help="every class, e.g. 0,1 (sklearn's labels=)"),
    output_format: DataFormat = FORMAT,
    scheduler: str = typer.Option(
        None, "--scheduler", help="run on Dask: local:N (N worker processes) or an address"),
) -> None:
    """Log loss, normalised entropy and accuracy of predictions in files of any size.

    Streams the files batch by batch (bounded memory), or runs on Dask with --scheduler;
    exact to float64 rounding however the rows are split. Example:
    crossent evaluate scores.parquet --label click --prob p_click --by country
    """
    from .evaluate import CLI_OPTIONS, evaluate_files, format_result

    result = evaluate_files(
        paths, label=label, prob=prob, logit=logit, prob_cols=prob_cols, weight=weight,
        by=by, labels=labels, scheduler=scheduler, progress=sys.stderr.isatty(),
        option_names=CLI_OPTIONS,
    )
    text = format_result(result, output_format.value)
    typer.echo(text, nl=not text.endswith("\n"))


# --- bench (benchmarks) ----------------------------------------------------------------------

# `crossent bench WHAT` runs benchmarks/<script> of the repository in a fresh process
BENCHMARKS = {
    "cross-entropy": "bench_cross_entropy.py",  # fused CPU kernel vs torch, jax, numpy, copy
    "linear": "bench_linear_cross_entropy.py",  # crossent.torch.linear_cross_entropy
    "few-classes": "bench_few_classes.py",  # the two integer-target kernels, by C
}


class BenchFormat(str, Enum):
    table = "table"
    json = "json"


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
    csv: bool = False,
    extra: Sequence[str] = (),
    echo: Callable[[str], None] = print,
) -> int:
    """Run the benchmark ``what`` (a key of ``BENCHMARKS``); returns the script's exit code.

    The script runs in a fresh Python process (clean timings, its own imports) with
    ``src/`` on ``PYTHONPATH``; its standard output goes line by line to ``echo``. It
    appends its rows to ``benchmarks/results.csv`` (a tracked file) only with ``csv=True``.
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
        if process.stdout is None:
            raise RuntimeError("the benchmark's output pipe did not open")
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
    output_format: BenchFormat = typer.Option(BenchFormat.table, "--format", "-f"),
    csv: bool = typer.Option(False, "--csv", help="append the rows to benchmarks/results.csv"),
) -> None:
    """Run a side-by-side benchmark from the repository's benchmarks/ folder.

    Nothing is written unless --csv is given. Further options go to the script
    (e.g. `crossent bench --quick --repeats 5`).
    """
    extra = list(context.args)
    if what.startswith("-"):  # `crossent bench --repeats 5`: an option for the script, not WHAT
        what, extra = "cross-entropy", [what, *extra]
    code = bench(what, quick=quick, output_format=output_format.value, csv=csv, extra=extra,
                 echo=typer.echo)
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

    serve(host, port, open_browser=open_browser)


def main() -> None:
    """Entry point of the ``crossent`` console script (and of ``python -m crossent``)."""
    app(prog_name="crossent")


if __name__ == "__main__":
    main()
