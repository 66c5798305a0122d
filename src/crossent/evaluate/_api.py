"""Evaluate files: streamed in this process, or as pieces on a Dask cluster; print the result."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._files import Columns, Piece, Source, open_sources, piece_state, update_from_pieces
from ._state import LogLoss, Result

__all__ = ["read_files", "evaluate_files", "format_result"]

PIECE_ROWS = 1 << 22  # rows of a Dask task (whole row groups for Parquet)
READ_AHEAD = 2  # batches the streaming path prepares ahead of the arithmetic, in a thread
CLI_OPTIONS = {"label": "--label", "prob": "--prob", "logit": "--logit",
               "prob_cols": "--prob-cols", "weight": "--weight", "by": "--by",
               "labels": "--labels", "scheduler": "--scheduler"}


@contextmanager
def _progress(sources: list[Source], show: bool) -> Iterator[Callable[[Piece, int], None]]:
    """A rich progress bar on stderr: rows of Parquet and .npy files, bytes of CSV files."""
    if not show:
        yield lambda piece, amount: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress("[progress.description]{task.description}", BarColumn(),
                        MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                        console=Console(stderr=True), transient=False)
    tasks = {}
    for unit, kinds in (("rows", ("parquet", "npy")), ("CSV bytes", ("csv",))):
        total = sum(source.size if unit == "CSV bytes" else source.rows
                    for source in sources if source.kind in kinds)
        if any(source.kind in kinds for source in sources):
            task = progress.add_task(unit, total=total)
            tasks.update(dict.fromkeys(kinds, task))
    with progress:
        yield lambda piece, amount: progress.advance(tasks[piece.kind], amount)


def _parse_labels(labels: Any) -> Any:
    """Labels given as text (the CLI's --labels a,b) become numbers when they all are."""
    if not isinstance(labels, str):
        return labels
    texts = [text.strip() for text in labels.split(",") if text.strip()]
    for kind in (int, float):
        try:
            return [kind(text) for text in texts]
        except ValueError:
            continue
    return texts


def read_files(
    paths: Sequence[str | Path] | str | Path,
    *,
    label: str,
    prob: str | None = None,
    logit: str | None = None,
    prob_cols: Sequence[str] | str | None = None,
    weight: str | None = None,
    by: str | None = None,
    labels: Any = None,
    scheduler: str | Any = None,
    progress: bool = False,
    option_names: Mapping[str, str] | None = None,
) -> LogLoss:
    """The :class:`LogLoss` state of the rows of Parquet, CSV and .npy files.

    Without ``scheduler`` the files are streamed in this process, batch by batch (memory
    stays bounded whatever their size); with one, each piece of a file (a run of Parquet
    row groups or .npy rows of about 4M rows; a whole CSV file) is a Dask task and the
    states are merged in a tree on the cluster. Same result either way (the sums are
    compensated). Arguments as for :func:`evaluate_files`.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if isinstance(prob_cols, str):
        prob_cols = [name.strip() for name in prob_cols.split(",") if name.strip()]
    option = {"label": "label", "prob": "prob", "logit": "logit", "prob_cols": "prob_cols",
              "weight": "weight", "by": "by", "labels": "labels", "scheduler": "scheduler",
              **(option_names or {})}
    columns = Columns(label, prob, logit, None if prob_cols is None else tuple(prob_cols),
                      weight, by, option=option)
    if prob_cols is not None and len(columns.prediction_columns()) < 2:
        raise ValueError(
            f"{option['prob_cols']} needs one column per class, at least two (A,B,...), got "
            f"{list(prob_cols)}; for one probability column use {option['prob']}"
        )
    labels = _parse_labels(labels)
    sources = open_sources(paths, columns)
    with _progress(sources, progress) as advance:
        if scheduler is None:
            state = LogLoss(labels=labels, from_logits=columns.from_logits)
            pieces = [piece for source in sources for piece in source.pieces()]
            return update_from_pieces(state, pieces, columns, advance, read_ahead=READ_AHEAD)
        return _on_dask(sources, columns, labels, scheduler, option["scheduler"], advance)


def _on_dask(sources: list[Source], columns: Columns, labels: Any, scheduler: Any,
             option: str, advance: Callable[[Piece, int], None]) -> LogLoss:
    from distributed import as_completed

    from ._dask import connect, merge_all, tree_reduce

    client, cluster = connect(scheduler, option) if isinstance(scheduler, str) else (
        scheduler, None)
    try:
        pieces = [piece for source in sources for piece in source.pieces(PIECE_ROWS)]
        futures = [client.submit(piece_state, piece, columns, labels, pure=False)
                   for piece in pieces]
        piece_of = {future.key: piece for future, piece in zip(futures, pieces, strict=True)}
        root = tree_reduce(futures, lambda *states: client.submit(merge_all, *states))
        for future in as_completed(futures):
            if future.status == "error":
                future.result()  # raises the task's error here
            advance(piece_of[future.key], piece_of[future.key].size)
        return root.result()  # type: ignore[no-any-return]
    finally:
        if cluster is not None:
            client.close()
            cluster.close()


def evaluate_files(
    paths: Sequence[str | Path] | str | Path,
    *,
    label: str,
    prob: str | None = None,
    logit: str | None = None,
    prob_cols: Sequence[str] | str | None = None,
    weight: str | None = None,
    by: str | None = None,
    labels: Any = None,
    scheduler: str | Any = None,
    progress: bool = False,
    option_names: Mapping[str, str] | None = None,
) -> Result:
    r"""Log loss, normalised entropy, accuracy (per group with ``by``) of the rows of files.

    .. math:: \text{log loss} = \frac{\sum_i w_i \big(-\log \hat q_{i, y_i}\big)}{\sum_i w_i}

    Args:
      paths: Parquet (``.parquet``/``.pq``), CSV (``.csv``, with a header line) or ``.npy``
        files (a structured array, or a 2-D array whose columns are named ``0``, ``1``, ...),
        or folders of them; their rows are concatenated.
      label: the column of true labels (any sortable values).
      prob: the column of the positive class's probability; or
      logit: the column of the positive class's logit (a sigmoid); or
      prob_cols: one probability column per class, in the sorted order of the classes
        (a list, or a comma-separated string).
      weight: an optional column of non-negative sample weights.
      by: an optional column of groups; the result then has one entry per group.
      labels: the classes (scikit-learn's ``labels=``; a comma-separated string of numbers
        becomes numbers); default: the labels seen.
      scheduler: None (stream in this process), ``"local:N"`` (a Dask LocalCluster of N
        worker processes), a scheduler's address, or a ``distributed.Client``.
      progress: show a progress bar on stderr.
      option_names: how error messages name the options (the CLI passes its flags).

    Returns:
      A :class:`Result`.

    Raises:
      ValueError: a missing file or column, a wrong type, a probability outside [0, 1],
        a label outside ``labels``, an empty file, a CSV without a usable header; the
        message names the option, the value and the fix.

    Example:

    >>> import numpy as np, tempfile, os
    >>> from crossent import evaluate as ev
    >>> folder = tempfile.mkdtemp()
    >>> table = np.array([(1, 0.9), (0, 0.2), (1, 0.6), (0, 0.4)],
    ...                  dtype=[("click", "i8"), ("p", "f8")])
    >>> np.save(os.path.join(folder, "scores.npy"), table)
    >>> result = ev.evaluate_files(os.path.join(folder, "scores.npy"), label="click", prob="p")
    >>> round(result.log_loss, 6), result.accuracy  # (-ln .9 - ln .8 - ln .6 - ln .6) / 4
    (0.337539, 1.0)

    NOTE: scikit-learn's ``log_loss`` needs every row in memory; PyTorch has no such metric.
    """
    return read_files(
        paths, label=label, prob=prob, logit=logit, prob_cols=prob_cols, weight=weight, by=by,
        labels=labels, scheduler=scheduler, progress=progress, option_names=option_names,
    ).result()


def _number(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.6g}"


def format_result(result: Result, output_format: str = "text") -> str:
    """The result as a table (``text``) or as JSON (``json``)."""
    if output_format == "json":
        return json.dumps(result.to_dict(), indent=2)
    if output_format != "text":
        raise ValueError(f"format must be text or json, got {output_format!r}")
    from rich.console import Console
    from rich.table import Table

    binary = len(result.classes) == 2
    table = Table(title=f"classes {list(result.classes)[:12]}"
                  + (f" (base rate: the share of {result.classes[1]!r})" if binary else ""))
    headers = ["group", "rows", "weight", "log loss", "NE", "entropy", "accuracy"]
    for column in headers + (["base rate"] if binary else []):
        table.add_column(column, justify="left" if column == "group" else "right")
    rows = [("all", result)] + [(str(key), group) for key, group in (result.groups or {}).items()]
    for name, row in rows:
        cells = [name, str(row.rows), _number(row.weight), _number(row.log_loss),
                 _number(row.normalized_entropy), _number(row.prediction_entropy),
                 _number(row.accuracy)]
        table.add_row(*cells, *([_number(row.base_rate[1])] if binary else []))
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text()
