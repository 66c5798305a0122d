"""Reading Parquet, CSV and .npy files batch by batch, with the columns checked up front.

A file is cut into *pieces* (Parquet: runs of row groups; .npy: runs of rows; CSV: the
whole file) and a piece is read in batches of a bounded number of values, so memory
stays bounded whatever the file's size: one batch (about 2^19 values per column kind)
and, for Parquet, the row group being decoded. The same pieces are the tasks on Dask.

pyarrow and (for the checks) nothing else is imported; it is needed for Parquet and CSV.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._rows import Scratch
from ._state import LogLoss, _Batch

__all__ = ["Columns", "Piece", "open_sources", "read_piece"]

SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".npy": "npy"}
# values of predictions in one batch (2 MiB of float64 logs) and rows pyarrow decodes at a
# time (then cut into batches). Each batch costs some forty NumPy calls, two threads share
# the GIL, and pyarrow's cost per read is per column: measured on a 100M-row 10-class file
# (peak resident memory with the 195 MiB of imports; seconds):
#   2^20 values, 2^17 rows: 329 MiB, 5.7 s; 2^19, 2^16: 287 MiB, 5.0 s;
#   2^18, 2^15: 269 MiB, 3.9-4.6 s; 2^17, 2^14: 266 MiB, 4.9-5.1 s
BATCH_VALUES = 1 << 18
CSV_BLOCK_BYTES = 1 << 22
READ_ROWS = 1 << 15
READ_BUFFER = 1 << 20  # bytes of a Parquet column chunk read at a time


@dataclass(frozen=True)
class Columns:
    """Which columns hold what: the label, one of prob / logit / prob_cols, weight, by."""

    label: str
    prob: str | None = None
    logit: str | None = None
    prob_cols: tuple[str, ...] | None = None
    weight: str | None = None
    by: str | None = None
    option: dict[str, str] = field(default_factory=lambda: {
        "label": "label", "prob": "prob", "logit": "logit", "prob_cols": "prob_cols",
        "weight": "weight", "by": "by", "labels": "labels"})

    def __post_init__(self) -> None:
        given = [name for name in ("prob", "logit", "prob_cols") if getattr(self, name)]
        if len(given) != 1:
            options = ", ".join(self.option[name] for name in ("prob", "logit", "prob_cols"))
            raise ValueError(
                f"give exactly one of {options} (the predictions), got "
                f"{', '.join(self.option[name] for name in given) or 'none'}"
            )

    @property
    def from_logits(self) -> bool:
        return self.logit is not None

    def prediction_columns(self) -> list[str]:
        if self.prob_cols:
            return list(self.prob_cols)
        return [self.prob or self.logit or ""]

    def needed(self) -> list[str]:
        """Every column to read, each once, in a stable order."""
        names = [self.label, *self.prediction_columns(), self.weight, self.by]
        return list(dict.fromkeys(name for name in names if name))

    def roles(self) -> dict[str, str]:
        """The option that asked for each column (for messages)."""
        roles = {self.label: self.option["label"]}
        prediction = "prob_cols" if self.prob_cols else ("prob" if self.prob else "logit")
        for name in self.prediction_columns():
            roles.setdefault(name, self.option[prediction])
        for role in ("weight", "by"):
            name = getattr(self, role)
            if name:
                roles.setdefault(name, self.option[role])
        return roles

    def names(self) -> dict[str, str]:
        """How LogLoss.update's messages name the arguments: the options and their columns."""
        prediction = "prob_cols" if self.prob_cols else ("prob" if self.prob else "logit")
        predictions = ",".join(self.prediction_columns())
        return {
            "y_true": f"{self.option['label']} column {self.label!r}",
            "y_pred": f"{self.option[prediction]} {predictions!r}",
            "sample_weight": f"{self.option['weight']} column {self.weight!r}",
            "by": f"{self.option['by']} column {self.by!r}",
            "labels": self.option["labels"],
        }

    def update(self, state: LogLoss, batch: dict[str, np.ndarray]) -> None:
        """Add one batch of columns to ``state``."""
        state._add(self.prepare(state, batch))

    def prepare(self, state: LogLoss, batch: dict[str, np.ndarray],
                scratch: Scratch | None = None) -> _Batch:
        """One batch of columns checked and its terms computed for ``state._add``; leaves
        ``state`` unchanged (a reading thread runs it). With ``scratch``, the arrays in
        ``prepared.logs.lent`` are to be given back to it once added."""
        stacked = None
        if self.prob_cols:
            # (C, n) then its transpose: each column copied whole, no row-by-row interleave
            arrays = [batch[name] for name in self.prob_cols]
            stacked = (Scratch() if scratch is None else scratch).take(
                (len(arrays), len(arrays[0])), np.result_type(*arrays))
            y_pred = np.stack(arrays, out=stacked).T
        else:
            y_pred = batch[self.prediction_columns()[0]]
        prepared = state._prepare(
            batch[self.label], y_pred,
            sample_weight=None if self.weight is None else batch[self.weight],
            by=None if self.by is None else batch[self.by], names=self.names(), scratch=scratch,
        )
        if stacked is not None and prepared.logs is not None:
            prepared.logs.lent += (stacked,)
        return prepared

    def batch_rows(self) -> int:
        return max(1024, BATCH_VALUES // max(2, len(self.prediction_columns())))


@dataclass(frozen=True)
class Piece:
    """A part of a file, read by one task: rows (or row groups) ``start`` to ``stop``."""

    path: str
    kind: str
    start: int
    stop: int
    rows: int  # rows in the piece (-1: unknown until read, CSV)
    size: int  # what progress counts: rows, or bytes for CSV


@dataclass
class Source:
    """A file, checked: its kind, its columns, its pieces."""

    path: Path
    kind: str
    rows: int  # -1 for CSV (unknown until read)
    size: int  # bytes
    row_groups: list[int] = field(default_factory=list)  # Parquet: rows of each row group

    def pieces(self, rows_per_piece: int | None = None) -> list[Piece]:
        """The pieces of at most ``rows_per_piece`` rows (None: one piece)."""
        if self.kind == "csv":
            return [Piece(str(self.path), "csv", 0, 0, -1, self.size)]
        if self.kind == "npy":
            step = self.rows if not rows_per_piece else rows_per_piece
            bounds = list(range(0, self.rows, max(1, step))) + [self.rows]
            return [Piece(str(self.path), "npy", a, b, b - a, b - a)
                    for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        pieces, start, rows = [], 0, 0
        for index, group_rows in enumerate(self.row_groups):
            rows += group_rows
            last = index == len(self.row_groups) - 1
            if last or (rows_per_piece and rows >= rows_per_piece):
                pieces.append(Piece(str(self.path), "parquet", start, index + 1, rows, rows))
                start, rows = index + 1, 0
        return pieces


def _expand(paths: Sequence[str | Path]) -> list[Path]:
    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES)
            if not inside:
                raise ValueError(
                    f"PATH {str(path)!r} is a folder with no .parquet, .csv or .npy file in it"
                )
            files.extend(inside)
        elif not path.exists():
            raise ValueError(f"PATH {str(path)!r} does not exist; give a Parquet, CSV or .npy file")
        else:
            files.append(path)
    if not files:
        raise ValueError("give at least one PATH (a Parquet, CSV or .npy file, or a folder)")
    return files


def _missing(columns: Columns, available: Sequence[str], path: Path, hint: str = "") -> None:
    for name, role in columns.roles().items():
        if name not in available:
            shown = ", ".join(repr(c) for c in list(available)[:20])
            raise ValueError(
                f"{role} column {name!r} is not in {path}; its columns are {shown}{hint}"
            )


def _check_parquet(path: Path, columns: Columns) -> Source:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        empty = " (the file is empty)" if path.stat().st_size == 0 else ""
        raise ValueError(f"{path} is not a readable Parquet file{empty}: {error}") from None
    schema = parquet.schema_arrow
    _missing(columns, schema.names, path)
    roles = columns.roles()
    for name in columns.needed():
        kind = schema.field(name).type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
        if roles[name] != columns.option["label"] and roles[name] != columns.option["by"] \
                and not numeric:
            raise ValueError(
                f"{roles[name]} column {name!r} of {path} has type {kind}, not numbers; "
                f"give a numeric column"
            )
    metadata = parquet.metadata
    groups = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    return Source(path, "parquet", metadata.num_rows, path.stat().st_size, groups)


def _csv_header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        line = handle.readline()
    if not line.strip():
        raise ValueError(
            f"{path} is empty" + (" (0 bytes)" if path.stat().st_size == 0 else
                                  " (its first line is blank)")
            + "; a CSV file needs a header line naming the columns, then rows"
        )
    header = next(csv.reader([line]))
    seen = set()
    for name in header:
        if name in seen:
            raise ValueError(
                f"{path}: the header names the column {name!r} twice; give each column its "
                f"own name"
            )
        seen.add(name)
    return header


def _looks_like_data(header: list[str]) -> bool:
    def number(text: str) -> bool:
        try:
            float(text)
        except ValueError:
            return False
        return True

    return bool(header) and all(number(name) for name in header)


def _check_csv(path: Path, columns: Columns) -> Source:
    header = _csv_header(path)
    hint = ""
    if _looks_like_data(header):
        hint = (f" (the first line {','.join(header)!r} looks like data: the file needs a "
                f"header line naming the columns)")
    _missing(columns, header, path, hint)
    return Source(path, "csv", -1, path.stat().st_size)


def _open_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        empty = " (the file is empty)" if path.stat().st_size == 0 else ""
        raise ValueError(f"{path} is not a readable .npy file{empty}: {error}") from None
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{path} holds several arrays (.npz); give one .npy file per table")
    return array


def _npy_columns(array: np.ndarray) -> list[str]:
    if array.dtype.names:
        return list(array.dtype.names)
    if array.ndim == 2:
        return [str(i) for i in range(array.shape[1])]
    return []


def _check_npy(path: Path, columns: Columns) -> Source:
    array = _open_npy(path)
    available = _npy_columns(array)
    if not available:
        raise ValueError(
            f"{path} holds one array of shape {array.shape} without named columns; save a "
            f"structured array (fields named like the columns) or a 2-D array (columns "
            f"named 0, 1, ...)"
        )
    _missing(columns, available, path)
    return Source(path, "npy", int(array.shape[0]), path.stat().st_size)


def open_sources(paths: Sequence[str | Path], columns: Columns) -> list[Source]:
    """Check every file (it exists, has the columns, the right types) before reading any."""
    sources = []
    for path in _expand(paths):
        kind = SUFFIXES.get(path.suffix.lower())
        if kind is None:
            raise ValueError(
                f"PATH {str(path)!r} has the suffix {path.suffix or '(none)'!r}; give a "
                f".parquet, .csv or .npy file"
            )
        check = {"parquet": _check_parquet, "csv": _check_csv, "npy": _check_npy}[kind]
        sources.append(check(path, columns))
    return sources


# --- reading -------------------------------------------------------------------------


def _arrow_column(column: Any, name: str, role: str, path: str, offset: int) -> np.ndarray:
    import pyarrow as pa

    if column.null_count:
        first = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise ValueError(
            f"{role} column {name!r} of {path} is missing (null) at row {offset + first}; "
            f"drop or fill those rows"
        )
    kind = "i" if pa.types.is_signed_integer(column.type) else "u" if pa.types.is_unsigned_integer(
        column.type) else "f" if pa.types.is_floating(column.type) else None
    if kind is not None:  # numbers without nulls: a view of the data buffer. to_numpy would
        # give the same, but its first call imports pandas (0.45 s)
        dtype = np.dtype(f"<{kind}{column.type.bit_width // 8}")
        return np.frombuffer(column.buffers()[1], dtype, len(column), column.offset * dtype.itemsize)
    return np.asarray(column.to_numpy(zero_copy_only=False))


def _split(table: dict[str, np.ndarray], rows: int, step: int
           ) -> Iterator[tuple[dict[str, np.ndarray], int]]:
    """A read batch in compute batches of ``step`` rows (views, no copies)."""
    for start in range(0, rows, step):
        stop = min(start + step, rows)
        yield {name: column[start:stop] for name, column in table.items()}, stop - start


def _batches_parquet(piece: Piece, columns: Columns) -> Iterator[tuple[dict[str, np.ndarray], int]]:
    import pyarrow.parquet as pq

    # pre_buffer=False: pyarrow's default pre-buffers every row group read, so memory
    # would grow with the file (measured: +430 MB over 200 batches of a 100M-row file)
    # buffer_size: without pre-buffering pyarrow reads each page by its own small read
    # unless buffered (measured: 3.7x slower reading 2^16-row batches of 11 columns)
    parquet = pq.ParquetFile(piece.path, pre_buffer=False, buffer_size=READ_BUFFER)
    roles = columns.roles()
    offset = sum(parquet.metadata.row_group(i).num_rows for i in range(piece.start))
    step = columns.batch_rows()
    # pyarrow's cost per batch is per column: read at least READ_ROWS rows at a time
    for batch in parquet.iter_batches(
        batch_size=max(step, READ_ROWS), row_groups=range(piece.start, piece.stop),
        columns=columns.needed(), use_threads=False,  # one core a reader: Dask runs several
    ):
        table = {name: _arrow_column(batch.column(name), name, roles[name], piece.path, offset)
                 for name in columns.needed()}
        offset += batch.num_rows
        yield from _split(table, batch.num_rows, step)


class _CountingFile(io.RawIOBase):
    """A binary file that counts the bytes read (CSV progress)."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 (closed by close())
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        read = self._file.readinto(buffer)
        self.count += read or 0
        return read

    def close(self) -> None:
        self._file.close()
        super().close()


def _batches_csv(piece: Piece, columns: Columns) -> Iterator[tuple[dict[str, np.ndarray], int]]:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    roles = columns.roles()
    numeric = {name: pa.float64() for name in columns.needed()
               if roles[name] not in (columns.option["label"], columns.option["by"])}
    source = _CountingFile(piece.path)
    try:
        reader = pcsv.open_csv(
            source,
            read_options=pcsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
            convert_options=pcsv.ConvertOptions(include_columns=columns.needed(),
                                                column_types=numeric),
        )
        offset, counted = 0, 0
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            table = {name: _arrow_column(batch.column(name), name, roles[name], piece.path,
                                         offset) for name in columns.needed()}
            offset += batch.num_rows
            # pyarrow reads ahead; progress is the bytes read so far, the rest at the end
            advance, counted = source.count - counted, source.count
            for part, _ in _split(table, batch.num_rows, columns.batch_rows()):
                yield part, 0
            yield {}, advance
        yield {}, piece.size - counted
    except pa.ArrowInvalid as error:
        reason = _csv_reason(str(error), _csv_header(Path(piece.path)), roles)
        raise ValueError(f"{piece.path}: {reason}") from None
    finally:
        source.close()


def _csv_reason(message: str, header: list[str], roles: dict[str, str]) -> str:
    """pyarrow's CSV error, with the column's option and what to do about it."""
    import re

    message = message.strip()
    column = re.search(r"column #(\d+)", message)
    if column and int(column.group(1)) < len(header):
        name = header[int(column.group(1))]
        role = roles.get(name, "a")
        return (f"{message} (the {role} column {name!r}); it must hold one type of value in "
                f"every row: numbers for predictions and weights, no blanks")
    return f"{message}; every row must have the header's columns"


def _batches_npy(piece: Piece, columns: Columns) -> Iterator[tuple[dict[str, np.ndarray], int]]:
    array = _open_npy(Path(piece.path))
    step = columns.batch_rows()
    names = columns.needed()
    for start in range(piece.start, piece.stop, step):
        stop = min(start + step, piece.stop)
        block = array[start:stop]
        if array.dtype.names:
            table = {name: np.ascontiguousarray(block[name]) for name in names}
        else:
            table = {name: np.ascontiguousarray(block[:, int(name)]) for name in names}
        yield table, stop - start


def read_piece(piece: Piece, columns: Columns) -> Iterator[tuple[dict[str, np.ndarray], int]]:
    """The batches of ``piece``: ``(columns by name, progress made)``; an empty dict only
    advances the progress."""
    reader = {"parquet": _batches_parquet, "csv": _batches_csv, "npy": _batches_npy}[piece.kind]
    return reader(piece, columns)


def update_from_pieces(state: LogLoss, pieces: Sequence[Piece], columns: Columns,
                       advance: Callable[[Piece, int], None] | None = None,
                       read_ahead: int = 0) -> LogLoss:
    """Add every row of ``pieces`` to ``state``; ``advance(piece, amount)`` reports progress.

    ``read_ahead > 0`` reads and prepares up to that many batches ahead in a second thread
    (decoding, checks, labels, logs: :meth:`LogLoss._prepare`), while this one adds them
    (pyarrow, NumPy and the kernels release the GIL): the streaming path's use of a second
    core. Dask tasks run without it (Dask schedules the cores). The batches are added in
    file order either way, so the result does not depend on it.
    """

    scratch = Scratch()  # the batches' temporaries, reused (see Scratch)

    def prepared() -> Iterator[tuple[Piece, _Batch | None, int]]:
        for piece in pieces:
            for batch, amount in read_piece(piece, columns):
                try:
                    yield piece, columns.prepare(state, batch, scratch) if batch else None, amount
                except ValueError as error:
                    raise ValueError(f"{piece.path}: {error}") from None

    batches = prepared() if read_ahead <= 0 else _read_ahead(prepared(), read_ahead)
    for piece, batch, amount in batches:
        if batch is not None:
            try:
                state._add(batch)
            except ValueError as error:
                raise ValueError(f"{piece.path}: {error}") from None
            if batch.logs is not None:
                scratch.give(*batch.logs.lent)
        if advance is not None:
            advance(piece, amount)
    return state


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _read_ahead(items: Iterator[Any], depth: int) -> Iterator[Any]:
    """``items``, produced by a daemon thread up to ``depth`` ahead of the consumer."""
    import queue
    import threading

    ready: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        ready.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put(end)
        except BaseException as error:  # noqa: BLE001 - re-raised in the consumer
            ready.put(_Failed(error))

    thread = threading.Thread(target=produce, name="crossent-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is end:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()  # the consumer stopped (done or failed): let the producer end


def piece_state(piece: Piece, columns: Columns, labels: Any) -> LogLoss:
    """A fresh state of one piece (a Dask task)."""
    return update_from_pieces(LogLoss(labels=labels, from_logits=columns.from_logits), [piece],
                              columns)
