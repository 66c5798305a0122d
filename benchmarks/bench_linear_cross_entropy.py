"""Linear cross-entropy for large vocabularies: crossent vs PyTorch, time and peak memory.

Contenders (forward + backward of the mean loss, gradients of hidden and weight):

- ``crossent``       ``crossent.torch.linear_cross_entropy`` (chunk_size='auto');
                     ``crossent:64`` passes chunk_size=64 (to price a chunk size)
- ``plain``          ``F.cross_entropy(hidden @ weight.T, target)`` (the reference composition
                     imported from tests/test_torch_linear.py, so the two never drift apart)
- ``torch``          ``F.linear_cross_entropy(hidden, weight, target)`` (options=None: PyTorch's
                     reference path, no chunking)
- ``torch_chunked``  ``F.linear_cross_entropy(..., options=LinearCrossEntropyOptions())``
                     (PyTorch 2.13's chunked path with its 'auto' chunking and accumulation)
- ``cce``            Apple's Cut Cross-Entropy, ``linear_cross_entropy(..., impl="torch_compile")``
                     (PyPI ``cut-cross-entropy``, which imports ``triton`` even for this impl;
                     the ``bench-linear`` extra, installed with ``--no-deps``). Its compiled
                     graphs are built in set-up, on 16 tokens, before any figure is taken.

A contender whose package is not installed is skipped with a note on stderr.

Cases: the three sizes (N, D, V) in float32 and bfloat16, and the first size with half the
tokens ignored (``target = -100`` at a seeded random half of the positions;
``--ignored-fraction`` sets that fraction for ``--sizes``).

Memory: each (size, dtype, contender) runs in its own subprocess: inputs are built in place
(``torch.randn(V, D).mul_(0.02)``), the BLAS workspace is initialised with small products,
the resident size is then the baseline, and two figures are taken:

- *first pass* (``MB above``): the peak resident size of the process's first
  forward+backward pass (``VmHWM``, reset at the baseline as below; ``ru_maxrss`` where it
  cannot be reset) minus that baseline. It includes what the process allocates once,
  on first use, and keeps (the BLAS library's packing buffers for the real operand shapes,
  about 9 MB in float32 at D = 1024; worker threads' arenas; kernels' first calls).
- *steady* (``MB steady``): a second pass, as in every later step of a training loop. After
  the first pass its gradients are freed, ``malloc_trim(0)`` hands freed heap memory back to
  the system (so no freed buffer of the first pass is silently reused), the kernel's
  high-water mark is reset (``/proc/self/clear_refs``), the resident size is the new
  baseline, and the high-water mark (``VmHWM``) after the pass minus it is the figure.
Time: the contenders of one (size, dtype) run interleaved in one subprocess (a change in the
machine's load hits them alike), ``--repeats`` (>= 3) rounds; the median per contender.
A process that runs past ``--timeout`` seconds (per contender) is reported as such, keeping
the passes it finished (PyTorch's chunked path in bfloat16 on CPU can take minutes per pass).

Usage::

    PYTHONPATH=src python benchmarks/bench_linear_cross_entropy.py            # full table
    PYTHONPATH=src python benchmarks/bench_linear_cross_entropy.py --quick    # small sizes
    PYTHONPATH=src python benchmarks/bench_linear_cross_entropy.py --format json

Results are printed as a table (or JSON) and appended to ``benchmarks/results.csv``
(one row per measurement, with version, machine and date). Benchmarks do not assert.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import _memory  # noqa: E402
import _provenance  # noqa: E402

BENCHMARK = "linear_cross_entropy"
CONTENDERS = ("crossent", "plain", "torch", "torch_chunked", "cce")
# the time ratios: each contender's median over these peers' in the same case
PEERS = ("plain", "torch_chunked", "cce")
FULL_SIZES = ((4096, 1024, 32000), (2048, 1024, 128000), (8192, 512, 50000))
QUICK_SIZES = ((1024, 256, 8000),)
# (N, D, V, fraction of tokens ignored)
FULL_CASES = tuple((*size, 0.0) for size in FULL_SIZES) + ((4096, 1024, 32000, 0.5),)
QUICK_CASES = tuple((*size, 0.0) for size in QUICK_SIZES) + ((1024, 256, 8000, 0.5),)
DTYPES = ("float32", "bfloat16")
IGNORE_INDEX = -100
# the packages a contender needs beyond torch, and how to install them
REQUIREMENTS = {
    "cce": (("cut_cross_entropy", "triton"),
            "pip install --no-deps cut-cross-entropy triton (the bench-linear extra)"),
}


# ==================================================================================
# Worker: one contender, one size, one process
# ==================================================================================


def _reference_module() -> Any:
    """tests/test_torch_linear.py, for its plain composition."""
    path = ROOT / "tests" / "test_torch_linear.py"
    spec = importlib.util.spec_from_file_location("_test_torch_linear", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _loss_function(contender: str) -> Any:
    import torch
    import torch.nn.functional as F

    if contender == "crossent" or contender.startswith("crossent:"):
        from crossent.torch import linear_cross_entropy

        chunk: int | str = "auto"
        if contender != "crossent":
            chunk = int(contender.split(":", 1)[1])  # crossent:64 = chunk_size=64
        return lambda h, w, y: linear_cross_entropy(h, w, y, chunk_size=chunk)
    if contender == "plain":
        plain = _reference_module().plain_linear_cross_entropy
        return lambda h, w, y: plain(h, w, y)
    if contender == "torch":
        return lambda h, w, y: F.linear_cross_entropy(h, w, y)
    if contender == "torch_chunked":
        options = torch.nn.LinearCrossEntropyOptions()
        return lambda h, w, y: F.linear_cross_entropy(h, w, y, options=options)
    if contender == "cce":
        from cut_cross_entropy import linear_cross_entropy as cce_linear_cross_entropy

        return lambda h, w, y: cce_linear_cross_entropy(h, w, y, ignore_index=IGNORE_INDEX,
                                                        impl="torch_compile")
    raise ValueError(
        f"unknown contender {contender!r}; expected one of {CONTENDERS} or crossent:<chunk_size>"
    )


def missing(contender: str) -> str | None:
    """Why ``contender`` cannot run here (a package it needs is not installed), or None."""
    modules, install = REQUIREMENTS.get(contender, ((), ""))
    absent = [name for name in modules if importlib.util.find_spec(name) is None]
    if not absent:
        return None
    return f"{', '.join(absent)} not installed; {install}"


def _warm_up(contender: str, loss_function: Any, hidden: Any, weight: Any, target: Any) -> None:
    """Compile a compiled contender's graphs (forward and backward) on 16 tokens, then free
    what that left; the others need no warm-up (``_initialise_blas`` serves them all)."""
    if contender != "cce":
        return
    few = hidden[:16].detach().requires_grad_()
    rows = weight.detach().clone().requires_grad_()
    loss_function(few, rows, target[:16]).backward()
    del few, rows
    _trim_heap()  # the copy of the weight and its gradient go back to the system


def _initialise_blas(hidden: Any, weight: Any) -> None:
    """Run the contenders' product layouts once on 16 tokens (the results are freed again).

    The BLAS library keeps a packing workspace for the life of the process, sized by the
    operands' shapes (about 10 MB for a 32000 × 1024 weight with 2 threads). It belongs to the
    process, not to any contender's loss, so it is allocated before the baseline is read.
    """
    import torch

    with torch.no_grad():
        few = hidden[:16]
        logits = few @ weight.T  # like hidden @ weight.T
        logits @ weight  # like grad_logits @ weight
        torch.zeros_like(weight[:16]).addmm_(logits.T[:16], few)  # like ∂W += gᵀ H
    del few, logits


def _inputs(tokens: int, hidden_size: int, vocab: int, dtype_name: str,
            ignored_fraction: float = 0.0) -> tuple[Any, Any, Any]:
    import torch

    torch.manual_seed(0)
    dtype = getattr(torch, dtype_name)
    # inputs built in place, so set-up never peaks above the inputs themselves
    hidden = torch.randn(tokens, hidden_size, dtype=dtype).requires_grad_()
    weight = torch.randn(vocab, hidden_size, dtype=dtype).mul_(0.02).requires_grad_()
    target = torch.randint(0, vocab, (tokens,))
    # ignored tokens (padding, prompts) at a seeded random subset of the positions
    target[torch.randperm(tokens)[: round(ignored_fraction * tokens)]] = IGNORE_INDEX
    _initialise_blas(hidden, weight)
    return hidden, weight, target


def _one_pass(loss_function: Any, hidden: Any, weight: Any, target: Any) -> float:
    hidden.grad = None  # the previous pass's gradients are freed first
    weight.grad = None
    start = time.perf_counter()
    loss_function(hidden, weight, target).backward()
    return time.perf_counter() - start


def _trim_heap() -> None:
    """Hand freed heap memory back to the system (glibc ``malloc_trim``; no-op elsewhere)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name:
        trim = getattr(ctypes.CDLL(name), "malloc_trim", None)
        if trim is not None:
            trim(0)


def memory_worker(contender: str, tokens: int, hidden_size: int, vocab: int,
                  dtype_name: str, ignored_fraction: float = 0.0) -> dict[str, Any]:
    """Peak resident memory above the inputs: the process's first pass, then a steady one."""
    loss_function = _loss_function(contender)
    hidden, weight, target = _inputs(tokens, hidden_size, vocab, dtype_name, ignored_fraction)
    _warm_up(contender, loss_function, hidden, weight, target)
    baseline_peak = _memory.high_water_bytes()
    # the pass's own peak, not set-up's (a compiled contender's set-up can peak higher)
    _memory.reset_high_water()
    baseline = _memory.rss_bytes()
    _one_pass(loss_function, hidden, weight, target)
    peak = _memory.high_water_bytes()
    result: dict[str, Any] = {
        "peak_above_inputs_mb": (peak - baseline) / 2**20,
        "setup_peak_above_baseline_mb": max(0, baseline_peak - baseline) / 2**20,
        "grads_mb": (tokens + vocab) * hidden_size * hidden.element_size() / 2**20,
    }
    hidden.grad = None
    weight.grad = None
    _trim_heap()
    if not _memory.reset_high_water():  # not Linux, or an old kernel: no steady figure
        result["steady_error"] = "cannot reset the high-water mark (/proc/self/clear_refs)"
        return result
    steady_baseline = _memory.rss_bytes()
    result["kept_after_first_pass_mb"] = (steady_baseline - baseline) / 2**20
    _one_pass(loss_function, hidden, weight, target)
    result["steady_above_inputs_mb"] = (_memory.high_water_bytes() - steady_baseline) / 2**20
    return result


def time_worker(contenders: list[str], tokens: int, hidden_size: int, vocab: int,
                dtype_name: str, repeats: int, ignored_fraction: float = 0.0,
                budget: float = math.inf) -> None:
    """Time the contenders interleaved in one process (load drifts hit all alike).

    Prints one JSON line per pass as soon as it is measured, so a timeout keeps what was done.
    A contender whose passes so far plus one more would exceed ``budget`` seconds runs no
    further pass (one line says so), so one slow contender cannot hold up the others.
    """
    import torch

    functions = {name: _loss_function(name) for name in contenders}
    hidden, weight, target = _inputs(tokens, hidden_size, vocab, dtype_name, ignored_fraction)
    for name, loss_function in functions.items():
        _warm_up(name, loss_function, hidden, weight, target)
    spent = dict.fromkeys(functions, 0.0)
    stopped: set[str] = set()
    for repeat in range(repeats):
        for name, loss_function in functions.items():
            if name in stopped:
                continue
            # the mean pass so far predicts the next one
            if repeat and spent[name] * (repeat + 1) / repeat > budget:
                stopped.add(name)
                print(json.dumps({"contender": name, "stopped": f"after {repeat} passes "
                                  f"({spent[name]:.0f} s): one more would pass the budget of "
                                  f"{budget:.0f} s"}), flush=True)
                continue
            elapsed = _one_pass(loss_function, hidden, weight, target)
            spent[name] += elapsed
            print(json.dumps({"contender": name, "repeat": repeat, "time_s": elapsed,
                              "threads": torch.get_num_threads()}), flush=True)


# ==================================================================================
# Driver
# ==================================================================================


def _subprocess(arguments: list[str], timeout: float) -> tuple[str, str | None]:
    """Run this script with ``arguments``; returns (stdout, error or None)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    command = [sys.executable, str(Path(__file__).resolve()), *arguments]
    try:
        result = subprocess.run(command, capture_output=True, text=True, env=env, check=False,
                                timeout=timeout)
    except subprocess.TimeoutExpired as expired:
        output = expired.stdout or ""
        if isinstance(output, bytes):
            output = output.decode()
        return output, f"timeout after {timeout:.0f} s"
    if result.returncode != 0:
        return result.stdout, (result.stderr.strip().splitlines() or ["failed"])[-1]
    return result.stdout, None


Case = tuple[int, int, int, float]  # N, D, V, fraction of tokens ignored


def _measure_case(case: Case, dtype: str, contenders: tuple[str, ...],
                  repeats: int, timeout: float, progress: bool,
                  memory_only: bool = False, time_only: bool = False) -> list[dict[str, Any]]:
    tokens, hidden_size, vocab, ignored = case
    shape = [str(tokens), str(hidden_size), str(vocab)]
    rows = {name: {"contender": name, "tokens": tokens, "hidden_size": hidden_size,
                   "vocab": vocab, "ignored_fraction": ignored, "dtype": dtype}
            for name in contenders}
    for name in () if time_only else contenders:
        if progress:
            print(f"memory {name:14s} {_case(rows[name])} (load {os.getloadavg()[0]:.1f})",
                  file=sys.stderr, flush=True)
        output, error = _subprocess(["--memory-worker", name, *shape, dtype, str(ignored)],
                                    timeout)
        if error:
            rows[name]["error"] = f"memory: {error}"
        else:
            rows[name].update(json.loads(output.strip().splitlines()[-1]))
    if memory_only:
        for row in rows.values():
            row["load_avg_1min"] = os.getloadavg()[0]
        return list(rows.values())
    if progress:
        print(f"time   {','.join(contenders)} {_case(rows[contenders[0]])} x{repeats} interleaved",
              file=sys.stderr, flush=True)
    # each contender stops by itself at `timeout` (its budget); the process as a whole gets
    # one more budget for set-up and the pass that crosses a budget
    output, error = _subprocess(
        ["--time-worker", ",".join(contenders), *shape, dtype, str(repeats), str(ignored),
         str(timeout)],
        timeout * (len(contenders) + 1),
    )
    for line in output.strip().splitlines():
        record = json.loads(line)
        if "stopped" in record:
            rows[record["contender"]]["time_error"] = f"stopped {record['stopped']}"
        else:
            rows[record["contender"]].setdefault("times_s", []).append(record["time_s"])
    load = os.getloadavg()[0]
    for row in rows.values():
        row["load_avg_1min"] = load
        times = row.get("times_s", [])
        if times:
            row["median_s"] = statistics.median(times)
        if len(times) < repeats and error and "time_error" not in row:
            row["time_error"] = f"{len(times)} of {repeats} passes: {error}"
        if progress:
            print(json.dumps(row), file=sys.stderr, flush=True)
    return list(rows.values())


def run(quick: bool = False, repeats: int = 3, timeout: float = 600.0,
        contenders: tuple[str, ...] = CONTENDERS,
        cases: tuple[Case, ...] | None = None,
        dtypes: tuple[str, ...] = DTYPES, progress: bool = True,
        memory_only: bool = False, time_only: bool = False) -> list[dict[str, Any]]:
    """Measure every (case, dtype): memory per contender in its own process, time interleaved.

    Contenders that cannot run here (:func:`missing`) are skipped with a note on stderr.
    """
    cases = cases or (QUICK_CASES if quick else FULL_CASES)
    repeats = max(3, repeats)
    available = []
    for name in contenders:
        reason = missing(name)
        if reason:
            print(f"note: skipping {name}: {reason}", file=sys.stderr, flush=True)
        else:
            available.append(name)
    rows: list[dict[str, Any]] = []
    if not available:
        return rows
    for case, dtype in [(case, dtype) for dtype in dtypes for case in cases]:
        case_rows = _measure_case(case, dtype, tuple(available), repeats, timeout, progress,
                                  memory_only, time_only)
        _add_ratios(case_rows)
        rows.extend(case_rows)
    return rows


def _add_ratios(case_rows: list[dict[str, Any]]) -> None:
    by_name = {row["contender"]: row for row in case_rows}
    for row in case_rows:
        if "peak_above_inputs_mb" in row:
            row["memory_vs_grads"] = row["peak_above_inputs_mb"] / row["grads_mb"]
        if "steady_above_inputs_mb" in row:
            row["steady_vs_grads"] = row["steady_above_inputs_mb"] / row["grads_mb"]
        for peer in PEERS:
            if "median_s" in row and "median_s" in by_name.get(peer, {}):
                row[f"time_vs_{peer}"] = row["median_s"] / by_name[peer]["median_s"]


def _case(row: dict[str, Any]) -> str:
    ignored = row.get("ignored_fraction", 0.0)
    half = f" ign={ignored:g}" if ignored else ""
    return f"N={row['tokens']} D={row['hidden_size']} V={row['vocab']}{half} {row['dtype']}"


def format_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table, one line per contender and case; '-' where nothing was measured."""
    header = (
        f"{'case':42s} {'contender':14s} {'median s':>9s} {'n':>2s} {'MB above':>9s} "
        f"{'grads MB':>9s} {'mem/grads':>9s} {'MB steady':>9s} {'st/grads':>8s} "
        f"{'t/plain':>8s} {'t/chunked':>9s} {'t/cce':>6s} {'load':>5s}"
    )
    lines = [header, "-" * len(header)]

    def number(row: dict[str, Any], key: str, width: int, digits: int) -> str:
        return f"{row[key]:{width}.{digits}f}" if key in row else f"{'-':>{width}s}"

    for row in rows:
        lines.append(
            f"{_case(row):42s} {row['contender']:14s} {number(row, 'median_s', 9, 3)} "
            f"{len(row.get('times_s', [])):2d} {number(row, 'peak_above_inputs_mb', 9, 1)} "
            f"{number(row, 'grads_mb', 9, 1)} {number(row, 'memory_vs_grads', 9, 2)} "
            f"{number(row, 'steady_above_inputs_mb', 9, 1)} {number(row, 'steady_vs_grads', 8, 2)} "
            f"{number(row, 'time_vs_plain', 8, 2)} {number(row, 'time_vs_torch_chunked', 9, 2)} "
            f"{number(row, 'time_vs_cce', 6, 2)} {row['load_avg_1min']:5.1f}"
        )
        for key in ("error", "time_error", "steady_error"):
            if key in row:
                lines.append(f"{'':42s} {'':14s} {key}: {row[key]}")
    return "\n".join(lines)


def append_csv(rows: list[dict[str, Any]]) -> Path:
    """One CSV row per metric (the long format shared with the other benchmarks)."""
    metrics = (("median_s", "s"), ("peak_above_inputs_mb", "MB"), ("grads_mb", "MB"),
               ("memory_vs_grads", "ratio"), ("steady_above_inputs_mb", "MB"),
               ("kept_after_first_pass_mb", "MB"), ("steady_vs_grads", "ratio"),
               *((f"time_vs_{peer}", "ratio") for peer in PEERS), ("load_avg_1min", "load"))
    records = [
        {"case": _case(row), "contender": row["contender"], "metric": metric,
         "value": row[metric], "unit": unit}
        for row in rows for metric, unit in metrics if metric in row
    ]
    return _provenance.append_csv(BENCHMARK, records)


def _parse_sizes(text: str) -> tuple[tuple[int, int, int], ...]:
    message = f"--sizes expects NxDxV[,NxDxV...], e.g. 4096x1024x32000; got {text!r}"
    try:
        sizes = tuple(tuple(int(n) for n in size.split("x")) for size in text.split(","))
    except ValueError:
        raise ValueError(message) from None
    if any(len(size) != 3 or min(size) < 1 for size in sizes):
        raise ValueError(message)
    return sizes  # type: ignore[return-value]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a minute or so)")
    parser.add_argument("--format", choices=("table", "json"), default="table",
                        help="print a table or JSON")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes (>= 3)")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds per contender: its memory process, and its timed passes")
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help=f"comma-separated subset of {','.join(CONTENDERS)} (or crossent:<rows>)")
    parser.add_argument("--dtypes", default=",".join(DTYPES), help="float32,bfloat16")
    parser.add_argument("--sizes", default=None,
                        help="NxDxV sizes, comma-separated (default: the full cases)")
    parser.add_argument("--ignored-fraction", type=float, default=None,
                        help="fraction of tokens ignored (target -100) at --sizes (default 0)")
    parser.add_argument("--no-csv", action="store_true", help="do not append to results.csv")
    parser.add_argument("--memory-only", action="store_true", help="skip the timing")
    parser.add_argument("--time-only", action="store_true", help="skip the memory")
    parser.add_argument("--memory-worker", nargs=6, help=argparse.SUPPRESS,
                        metavar=("CONTENDER", "N", "D", "V", "DTYPE", "IGNORED"))
    parser.add_argument("--time-worker", nargs=8, help=argparse.SUPPRESS,
                        metavar=("CONTENDERS", "N", "D", "V", "DTYPE", "REPS", "IGNORED", "BUDGET"))
    args = parser.parse_args(argv)
    if args.memory_only and args.time_only:
        parser.error("--memory-only and --time-only exclude each other; pass at most one")
    if args.memory_worker:
        name, tokens, hidden_size, vocab, dtype, ignored = args.memory_worker
        print(json.dumps(memory_worker(name, int(tokens), int(hidden_size), int(vocab), dtype,
                                       float(ignored))))
        return 0
    if args.time_worker:
        names, tokens, hidden_size, vocab, dtype, repeats, ignored, budget = args.time_worker
        time_worker(names.split(","), int(tokens), int(hidden_size), int(vocab), dtype,
                    int(repeats), float(ignored), float(budget))
        return 0
    if args.ignored_fraction is not None and not 0.0 <= args.ignored_fraction < 1.0:
        parser.error(f"--ignored-fraction must be in [0, 1), got {args.ignored_fraction}")
    if args.ignored_fraction is not None and not args.sizes:
        parser.error("--ignored-fraction applies to --sizes; pass both (the default cases "
                     "already include a half-ignored one)")
    cases = None
    if args.sizes:
        try:
            sizes = _parse_sizes(args.sizes)
        except ValueError as error:
            parser.error(str(error))
        cases = tuple((*size, args.ignored_fraction or 0.0) for size in sizes)
    rows = run(quick=args.quick, cases=cases, repeats=args.repeats, timeout=args.timeout,
               contenders=tuple(args.contenders.split(",")), dtypes=tuple(args.dtypes.split(",")),
               memory_only=args.memory_only, time_only=args.time_only)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    else:
        print(format_table(rows))
    if not args.no_csv and rows:
        path = append_csv(rows)
        print(f"appended to {path.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
