"""Log loss over a big Parquet file: pandas + sklearn, dask-ml, crossent streaming and on Dask.

    PYTHONPATH=src python benchmarks/bench_evaluate.py                    # 100M rows, binary and 10 classes
    PYTHONPATH=src python benchmarks/bench_evaluate.py --rows 2000000 --format json
    PYTHONPATH=src python benchmarks/bench_evaluate.py --generate-only    # write the files, nothing else
    PYTHONPATH=src python benchmarks/bench_evaluate.py --clean            # delete the files afterwards

The files are generated once into ``--data-dir`` (default ``benchmarks/.data``, ignored by
git), one row group of 1M rows at a time (never the whole table in memory), and reused
while their size matches: a binary file (int8 label, float64 probability of a calibrated
model, CTR about 0.2) and a 10-class file (int8 label, ten float32 probability columns).

Each contender runs in its own Python process, one after the other, ``--repeats`` times
interleaved, after the driver has read the file once (so each finds it in the page cache:
pandas and dask-ml need gigabytes and evict it for whoever comes next), and reports the
wall time of the evaluation (imports and set-up excluded), rows/s, the CPU time (of the
process and its Dask workers: on a busy machine wall time measures the machine's load as
much as the code), and the peak resident memory: of the process itself (Linux's
``VmHWM``), and of every process it started (Dask workers: crossent's report their own
``VmHWM``, dask-ml's are sampled every 0.25 s by psutil from the driver process). The
peak minus the resident size after set-up (imports,
the cluster's start) is reported next to the absolute peak: what the evaluation itself
costs.

- ``pandas+sklearn``: ``pandas.read_parquet`` of the needed columns, then
  ``sklearn.metrics.log_loss``. Skipped (or run on a prefix of ``--sklearn-rows`` rows,
  said so in the table) when its estimated memory does not fit in half the available memory.
- ``dask-ml``: ``dask_ml.metrics.log_loss`` over ``dask.dataframe.read_parquet`` on a
  2-worker LocalCluster (worker profiler off, as for crossent's ``local:N``). As shipped
  it passes ``eps=`` to scikit-learn, which removed it (a TypeError); the benchmark
  reports that, then times it with ``eps`` dropped (its algorithm unchanged: one
  ``sklearn.metrics.log_loss`` per block, the mean of the block means).
- ``crossent stream``: ``crossent.evaluate.evaluate_files`` in this process.
- ``crossent dask:1`` / ``dask:2``: the same with ``scheduler="local:1"`` / ``"local:2"``
  (LocalCluster worker processes, one thread each).
- ``cores:1`` / ``cores:2`` (not in the default list): the machine's own ceiling for the
  2-worker figure, without Dask. ``cores:1`` is one process computing the Dask tasks'
  pieces one after the other (``crossent.evaluate._files.piece_state``, what a worker
  runs); ``cores:2`` is two such processes started at the same moment on the two halves
  of the file, timed from the first start to the last end. ``cores:2 / cores:1`` is how
  much faster two copies of one worker's job run on this machine than one: two workers
  cannot beat it.

The load average of the machine is printed before and after each contender: on a
shared machine the figures are only as good as the machine was idle. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _provenance  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
GROUP_ROWS = 1 << 20
CONTENDERS = ["pandas+sklearn", "dask-ml", "crossent stream", "crossent dask:1", "crossent dask:2"]
CEILING = ["cores:1", "cores:2"]  # --contenders ...,cores:1,cores:2
# the driver's memory sampling period: each sample walks the process tree, and every 50 ms
# it slowed a 2-worker run that keeps both cores busy by 8% (4.9 against 4.5 s); the
# peaks of crossent's Dask workers are their own VmHWM, read at the end, not samples
SAMPLE_SECONDS = 0.25


# --- the files -------------------------------------------------------------------------


def _binary_group(rng: np.random.Generator, rows: int) -> dict[str, np.ndarray]:
    logit = rng.standard_normal(rows)
    logit *= 1.5
    logit -= 2.0
    prob = 1.0 / (1.0 + np.exp(-logit))
    label = (rng.random(rows) < prob).astype(np.int8)  # a calibrated model
    return {"label": label, "prob": prob}


def _multiclass_group(rng: np.random.Generator, rows: int, classes: int) -> dict[str, np.ndarray]:
    logits = rng.standard_normal((rows, classes))
    logits *= 2.0
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    cumulative = np.cumsum(logits, axis=1)
    draw = rng.random((rows, 1))
    label = np.minimum((cumulative < draw).sum(axis=1), classes - 1).astype(np.int8)
    columns = {"label": label}
    for c in range(classes):
        columns[f"p{c}"] = logits[:, c].astype(np.float32)
    return columns


def generate(path: Path, rows: int, classes: int) -> Path:
    """Write ``rows`` rows, one row group at a time; reuse a file with that many rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.exists():
        try:
            if pq.ParquetFile(path).metadata.num_rows == rows:
                return path
        except Exception:  # noqa: BLE001 - a broken file is rewritten
            pass
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    rng = np.random.default_rng(classes)
    writer = None
    started = time.perf_counter()
    for start in range(0, rows, GROUP_ROWS):
        count = min(GROUP_ROWS, rows - start)
        group = _binary_group(rng, count) if classes == 2 else _multiclass_group(rng, count, classes)
        table = pa.table(group)
        if writer is None:
            writer = pq.ParquetWriter(partial, table.schema, compression="snappy")
        writer.write_table(table, row_group_size=GROUP_ROWS)
    assert writer is not None
    writer.close()
    partial.rename(path)
    print(f"wrote {path} ({rows:,} rows, {path.stat().st_size / 2**30:.2f} GiB) in "
          f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return path


def spec(classes: int) -> dict[str, object]:
    if classes == 2:
        return {"label": "label", "prob": "prob"}
    return {"label": "label", "prob_cols": [f"p{c}" for c in range(classes)]}


# --- one contender, in its own process ------------------------------------------------


class _Peak:
    """Peak resident memory of a process and of its descendants, sampled by a thread of the
    driver (not of the measured process, whose own work it would slow)."""

    def __init__(self, pid: int) -> None:
        import psutil

        self._process = psutil.Process(pid)
        self.own = self.children = self.total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                own = self._process.memory_info().rss
                kids = []
                for child in self._process.children(recursive=True):
                    try:
                        kids.append(child.memory_info().rss)
                    except psutil.Error:  # the child just ended
                        pass
                self.own = max(self.own, own)
                self.children = max([self.children, *kids])
                self.total = max(self.total, own + sum(kids))
            except psutil.Error:
                pass
            self._stop.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _rss() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def _max_rss_self() -> int:
    """This process's peak resident memory: Linux's VmHWM (the peak of its own address
    space; getrusage's ru_maxrss carries over the forking parent's peak through exec, so
    a child of a driver that generated a file reported the driver's 443 MB)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _memory import high_water_bytes

    return high_water_bytes()


def _run_pandas_sklearn(path: Path, classes: int, rows: int) -> dict[str, object]:
    import pandas as pd
    import pyarrow.parquet as pq
    import sklearn.metrics

    names = ["label", "prob"] if classes == 2 else ["label"] + [f"p{c}" for c in range(classes)]
    groups = None
    total = pq.ParquetFile(path).metadata.num_rows
    if rows < total:
        groups = list(range(max(1, rows // GROUP_ROWS)))
    base = _rss()
    start, cpu = time.perf_counter(), time.process_time()
    if groups is None:
        frame = pd.read_parquet(path, columns=names)
    else:
        frame = pq.ParquetFile(path).read_row_groups(groups, columns=names).to_pandas()
    y_true = frame["label"].to_numpy()
    y_pred = frame["prob"].to_numpy() if classes == 2 else frame[names[1:]].to_numpy()
    del frame
    value = sklearn.metrics.log_loss(y_true, y_pred)
    return {"seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu,
            "rows": len(y_true), "log_loss": value, "setup_rss": base}


def _without_eps(log_loss):  # type: ignore[no-untyped-def]
    def call(*args, eps=None, **kwargs):  # type: ignore[no-untyped-def]
        return log_loss(*args, **kwargs)

    return call


def _patch_dask_ml() -> None:
    """dask-ml's classification module with a ``sklearn`` whose log_loss ignores ``eps``."""
    import types

    import dask_ml.metrics.classification as dask_ml_classification
    import sklearn.metrics

    dask_ml_classification.sklearn = types.SimpleNamespace(metrics=types.SimpleNamespace(
        log_loss=_without_eps(sklearn.metrics.log_loss)))


def _patch_plugin() -> object:
    """A distributed WorkerPlugin: :func:`_patch_dask_ml` in every worker, at its start."""
    from distributed import WorkerPlugin

    class PatchDaskMl(WorkerPlugin):
        name = "crossent-bench-patch-dask-ml"

        def setup(self, worker: object) -> None:
            _patch_dask_ml()

    return PatchDaskMl()


def _run_dask_ml(path: Path, classes: int) -> dict[str, object]:
    import logging

    import dask.dataframe as dd
    import dask_ml.metrics.classification as dask_ml_classification
    from distributed import Client, LocalCluster

    names = ["label", "prob"] if classes == 2 else ["label"] + [f"p{c}" for c in range(classes)]
    import dask

    with dask.config.set({"distributed.worker.profile.enabled": False}), \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                         silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        # one array of every column, cut into labels and predictions: converted apart, dask
        # partitions a 1-column and a 10-column read differently and the blocks do not line
        # up (to_dask_array(lengths=True) of the label alone even fails). The probabilities
        # keep their dtype (the int8 labels become floats: the same classes for sklearn)
        table = dd.read_parquet(str(path), columns=names).to_dask_array(lengths=True)
        y_true = table[:, 0]
        y_pred = table[:, 1] if classes == 2 else table[:, 1:]
        shipped = "ran"
        try:
            dask_ml_classification.log_loss(y_true[:10], y_pred[:10]).compute()
        except TypeError as error:  # dask-ml passes eps=, which scikit-learn removed
            shipped = f"TypeError: {error}"
        # the blocks run on the workers: patch them there, and in any worker that the
        # nanny restarts (a worker over its memory limit is restarted, unpatched)
        client.register_plugin(_patch_plugin())
        _patch_dask_ml()
        base = _rss()
        start, cpu = time.perf_counter(), _cpu(client)
        value = float(dask_ml_classification.log_loss(y_true, y_pred).compute())
        seconds, cpu = time.perf_counter() - start, _cpu(client) - cpu
    return {"seconds": seconds, "cpu_seconds": cpu, "rows": int(y_true.shape[0]),
            "log_loss": value, "setup_rss": base,
            "note": f"as shipped: {shipped}; timed with eps dropped"}


def _cpu(client: object = None) -> float:
    """CPU seconds of this process and, with a Dask client, of its workers."""
    total = time.process_time()
    if client is not None:
        total += sum(client.run(time.process_time).values())  # type: ignore[attr-defined]
    return total


def _warm_worker() -> None:
    import pyarrow.parquet  # noqa: F401

    from crossent import evaluate

    evaluate.LogLoss().update([0, 1], [0.5, 0.5])


def _run_crossent(path: Path, classes: int, scheduler: str | None) -> dict[str, object]:
    import pyarrow.parquet  # noqa: F401 - imported in set-up, as for pandas+sklearn

    from crossent import evaluate

    client = cluster = None
    if scheduler is not None:  # the cluster's start-up is set-up, not evaluation
        from crossent.evaluate._dask import connect

        client, cluster = connect(scheduler)
        client.run(_warm_worker)  # imports and numba's kernel loaded before timing
    _warm_worker()  # this process too: numba's kernel compiled (or loaded from its cache)
    base = _rss()
    start, cpu = time.perf_counter(), _cpu(client)
    result = evaluate.evaluate_files(path, scheduler=client, **spec(classes))  # type: ignore[arg-type]
    seconds, cpu = time.perf_counter() - start, _cpu(client) - cpu
    workers = 0
    if cluster is not None:
        workers = max(client.run(_max_rss_self).values())
        client.close()
        cluster.close()
    return {"seconds": seconds, "cpu_seconds": cpu, "rows": result.rows,
            "log_loss": result.log_loss, "setup_rss": base, "max_rss_workers": workers}


def _run_pieces(path: Path, classes: int, half: str, start_at: float) -> dict[str, object]:
    """One worker's job without Dask: the pieces of ``half`` ("all", "0/2" or "1/2") of the
    file's row groups, one after the other, from the wall-clock time ``start_at``."""
    import pyarrow.parquet as pq

    from crossent.evaluate import _api, _files

    _warm_worker()
    columns = _files.Columns(**spec(classes))  # type: ignore[arg-type]
    groups = pq.ParquetFile(path).metadata.num_row_groups
    first, last = (0, groups) if half == "all" else (
        groups * int(half[0]) // 2, groups * (int(half[0]) + 1) // 2)
    step = max(1, _api.PIECE_ROWS // GROUP_ROWS)
    pieces = [_files.Piece(str(path), "parquet", g, min(g + step, last), 0, 0)
              for g in range(first, last, step)]
    base = _rss()
    time.sleep(max(0.0, start_at - time.time()))
    start, cpu = time.time(), time.process_time()
    states = [_files.piece_state(piece, columns, None) for piece in pieces]
    state = states[0]
    for other in states[1:]:
        state = state.merge(other)
    result = state.result()
    return {"start": start, "stop": time.time(), "cpu_seconds": time.process_time() - cpu,
            "rows": result.rows, "log_loss": result.log_loss, "setup_rss": base}


def run_one(contender: str, path: Path, classes: int, sklearn_rows: int) -> dict[str, object]:
    if contender.startswith("cores:"):  # "cores:all@T", "cores:0/2@T": see _child
        half, start_at = contender.removeprefix("cores:").split("@")
        record = _run_pieces(path, classes, half, float(start_at))
    elif contender == "pandas+sklearn":
        record = _run_pandas_sklearn(path, classes, sklearn_rows)
    elif contender == "dask-ml":
        record = _run_dask_ml(path, classes)
    else:
        scheduler = contender.split(" ")[1]
        record = _run_crossent(path, classes, None if scheduler == "stream" else
                               f"local:{scheduler.split(':')[1]}")
    record["max_rss_self"] = _max_rss_self()  # the kernel's exact peak of this process
    return record


# --- the driver --------------------------------------------------------------------------


def _estimated_sklearn_bytes(rows: int, classes: int) -> int:
    # measured: 117 bytes a row (binary, 49M rows: 5.5 GB); ~70 bytes per row and class
    return rows * (120 if classes == 2 else 70 * classes)


def _available() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def _warm_page_cache(path: Path) -> None:
    """Read the file once, untimed, so that every contender finds it in the page cache (a
    contender that needs gigabytes, as pandas and dask-ml do, evicts it for the next one)."""
    with open(path, "rb") as file:
        while file.read(1 << 24):
            pass


def _ceiling(contender: str, path: Path, classes: int) -> dict[str, object]:
    """``cores:1`` / ``cores:2``: one or two processes of one worker's job, started at once."""
    _warm_page_cache(path)
    halves = ["all"] if contender == "cores:1" else ["0/2", "1/2"]
    start_at = time.time() + 8.0  # after every child's imports
    load_before = os.getloadavg()
    children = [_spawn(f"cores:{half}@{start_at}", path, classes, 0) for half in halves]
    peaks = [_Peak(child.pid) for child in children]
    outputs = [child.communicate() for child in children]
    for peak in peaks:
        peak.stop()
    record: dict[str, object] = {"contender": contender, "classes": classes,
                                 "load_before": load_before[0], "load_after": os.getloadavg()[0]}
    parts = []
    for child, (stdout, stderr) in zip(children, outputs, strict=True):
        if child.returncode != 0:
            record["error"] = " | ".join((stderr or stdout).strip().splitlines()[-3:])
            return record
        parts.append(json.loads(stdout.strip().splitlines()[-1]))
    record.update(
        seconds=max(part["stop"] for part in parts) - min(part["start"] for part in parts),
        cpu_seconds=sum(part["cpu_seconds"] for part in parts),
        rows=sum(part["rows"] for part in parts), log_loss=parts[0]["log_loss"],
        setup_rss=parts[0]["setup_rss"],
        peak_rss=max(max(peak.own, int(part["max_rss_self"])) for peak, part in zip(
            peaks, parts, strict=True)),
        peak_worker_rss=0, peak_total_rss=sum(peak.own for peak in peaks),
        note="" if len(parts) == 1 else "log loss of the first half")
    return record


def _spawn(contender: str, path: Path, classes: int, sklearn_rows: int) -> subprocess.Popen:
    command = [sys.executable, __file__, "--child", contender, "--child-file", str(path),
               "--child-classes", str(classes), "--sklearn-rows", str(sklearn_rows)]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p)}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=environment)


def _child(contender: str, path: Path, classes: int, sklearn_rows: int) -> dict[str, object]:
    if contender in CEILING:
        return _ceiling(contender, path, classes)
    _warm_page_cache(path)
    load_before = os.getloadavg()
    with _spawn(contender, path, classes, sklearn_rows) as process:
        peak = _Peak(process.pid)
        stdout, stderr = process.communicate()
        peak.stop()
    load_after = os.getloadavg()
    record: dict[str, object] = {"contender": contender, "classes": classes,
                                 "load_before": load_before[0], "load_after": load_after[0]}
    if process.returncode != 0:
        tail = (stderr or stdout).strip().splitlines()[-3:]
        record["error"] = " | ".join(tail)
        return record
    record.update(json.loads(stdout.strip().splitlines()[-1]))
    record.update(peak_rss=max(peak.own, int(record.pop("max_rss_self"))),
                  peak_worker_rss=max(peak.children, int(record.pop("max_rss_workers", 0))),
                  peak_total_rss=peak.total)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--classes", default="2,10", help="the files: 2 (binary) and/or 10")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "benchmarks" / ".data")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--sklearn-rows", type=int, default=0,
                        help="rows for pandas+sklearn (default: all that fit in half the "
                             "available memory)")
    parser.add_argument("--generate-only", action="store_true")
    parser.add_argument("--clean", action="store_true", help="delete the files at the end")
    parser.add_argument("--format", choices=["table", "json"], default="table")
    parser.add_argument("--no-csv", action="store_true", help="(no CSV is written; accepted)")
    parser.add_argument("--quick", action="store_true", help="2M rows")
    parser.add_argument("--from-json", type=Path, help="print the table of a saved --format json run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-classes", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        _report(saved["records"], saved["rows"], "table", saved.get("version", ""),
                saved.get("machine", ""))
        return
    if args.child:
        record = run_one(args.child, args.child_file, args.child_classes, args.sklearn_rows)
        print(json.dumps(record))
        return
    rows = 2_000_000 if args.quick else args.rows
    files = {int(c): generate(args.data_dir / f"evaluate_{rows}_{c}classes.parquet", rows, int(c))
             for c in args.classes.split(",")}
    if args.generate_only:
        return
    contenders = [c.strip() for c in args.contenders.split(",")]
    records = []
    for classes, path in files.items():
        sklearn_rows = args.sklearn_rows or rows
        fits = _estimated_sklearn_bytes(sklearn_rows, classes) < _available() // 2
        while not fits and sklearn_rows > GROUP_ROWS:
            sklearn_rows //= 2
            fits = _estimated_sklearn_bytes(sklearn_rows, classes) < _available() // 2
        for repeat in range(args.repeats):
            order = contenders if repeat % 2 == 0 else contenders[::-1]
            for contender in order:
                print(f"{classes} classes, {contender} (repeat {repeat + 1}) ...", file=sys.stderr,
                      flush=True)
                record = _child(contender, path, classes, sklearn_rows)
                record["repeat"] = repeat
                records.append(record)
                print(f"  {record}", file=sys.stderr, flush=True)
    if args.clean:
        shutil.rmtree(args.data_dir, ignore_errors=True)
    _report(records, rows, args.format, _provenance.version(), _provenance.machine())


def _report(records: list[dict], rows: int, output_format: str, version: str = "",
            machine: str = "") -> None:
    best: dict[tuple[int, str], dict] = {}
    for record in records:
        key = (int(record["classes"]), str(record["contender"]))
        if "seconds" in record and (key not in best or record["seconds"] < best[key]["seconds"]):
            best[key] = record
        elif key not in best:
            best[key] = record
    for record in best.values():
        if "seconds" in record:
            record["rows_per_s"] = float(record["rows"]) / float(record["seconds"])
    if output_format == "json":
        print(json.dumps({"rows": rows, "version": version, "machine": machine,
                          "records": records, "best": list(best.values())}, indent=1))
        return
    where = f"{version} on {machine}" if machine else f"{os.cpu_count()} cores"
    print(f"\nlog loss of a {rows:,}-row Parquet file; {where}; best of the repeats")
    header = (f"{'classes':>7}  {'contender':<16} {'rows':>11} {'seconds':>8} {'cpu s':>7} "
              f"{'Mrows/s':>8} "
              f"{'peak MiB':>8} {'-setup':>7} {'workerMiB':>9} {'load':>9}  log loss / note")
    print(header)
    for (classes, contender), record in sorted(best.items()):
        if "seconds" not in record:
            print(f"{classes:>7}  {contender:<16} {'':>11} error: {record.get('error')}")
            continue
        peak = record["peak_rss"] / 2**20
        print(f"{classes:>7}  {contender:<16} {record['rows']:>11,} {record['seconds']:>8.2f} "
              f"{record['cpu_seconds']:>7.2f} "
              f"{record['rows_per_s'] / 1e6:>8.2f} {peak:>8.0f} "
              f"{(record['peak_rss'] - record['setup_rss']) / 2**20:>7.0f} "
              f"{record['peak_worker_rss'] / 2**20:>9.0f} "
              f"{record['load_before']:>4.1f}/{record['load_after']:<4.1f}  "
              f"{record['log_loss']:.12f} {record.get('note', '')}")
    for classes in sorted({key[0] for key in best}):
        def speed(name: str, classes: int = classes) -> float | None:
            record = best.get((classes, name), {})
            return record.get("rows_per_s")  # type: ignore[return-value]

        stream, sk, one, two = (speed("crossent stream"), speed("pandas+sklearn"),
                                speed("crossent dask:1"), speed("crossent dask:2"))
        if stream and sk:
            print(f"{classes} classes: streaming / pandas+sklearn = {stream / sk:.2f}x (target 3x)")
            per_row = {name: best[(classes, name)]["cpu_seconds"] / best[(classes, name)]["rows"]
                       for name in ("crossent stream", "pandas+sklearn")}
            print(f"{classes} classes: the same in CPU time per row = "
                  f"{per_row['pandas+sklearn'] / per_row['crossent stream']:.2f}x")
        if one and two:
            print(f"{classes} classes: dask 2 workers / 1 worker = {two / one:.2f}x (target 1.6x)")
        alone, pair = speed("cores:1"), speed("cores:2")
        if alone and pair:
            print(f"{classes} classes: the machine's ceiling, two copies of one worker's job at "
                  f"once / one = {pair / alone:.2f}x")
        streamed = best.get((classes, "crossent stream"), {})
        if "peak_rss" in streamed:
            print(f"{classes} classes: streaming peak = {streamed['peak_rss'] / 2**20:.0f} MiB = "
                  f"{streamed['peak_rss'] / 1e6:.0f} MB, imports included (target 300 MB)")


if __name__ == "__main__":
    main()
