"""The two integer-target kernels side by side, by number of classes: where the block kernel pays.

    PYTHONPATH=src python benchmarks/bench_few_classes.py                 # C = 2 ... 32, 65536 rows
    PYTHONPATH=src python benchmarks/bench_few_classes.py --format json
    crossent bench few-classes --quick                                    # seconds

``crossent.kernels`` sends integer targets with few classes (C ≤ ``FEW_CLASSES[dtype]``)
to ``index_rows_few_classes`` (a block of 64 rows at a time, lanes across rows) and the
rest to ``index_rows`` (one row at a time, lanes across classes). This script calls both
compiled kernels directly, on one thread, into preallocated outputs (no allocation, no
validation: the kernels alone), label smoothing 0.1, forward only and forward+backward,
interleaved in one process: the minimum over ``--repeats`` calls, for ``--rounds`` rounds,
minimum over rounds. It checks that both kernels give the same losses (to float rounding)
before timing them. It prints a table (or JSON) and asserts nothing: the thresholds in
``crossent/kernels/_numba.py`` were read off this table (docs/kernels.md).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time

import numpy as np

from crossent.kernels import _numba as kernels


def _best(function, repeats: int) -> float:
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(num_rows: int, classes: list[int], repeats: int, rounds: int) -> list[dict]:
    rng = np.random.default_rng(0)
    results = []
    for dtype in (np.float32, np.float64):
        for num_classes in classes:
            logits = rng.standard_normal((num_rows, num_classes)).astype(dtype)
            target = rng.integers(0, num_classes, num_rows)
            counted = np.ones(num_rows, np.bool_)
            weight = np.ones(num_classes, dtype)
            row = {"dtype": np.dtype(dtype).name, "classes": num_classes,
                   "block_kernel_used": num_classes <= kernels.FEW_CLASSES[np.dtype(dtype)]}
            for want_grad in (False, True):
                outputs = {}
                calls = {}
                for name in ("index_rows", "index_rows_few_classes"):
                    losses = np.empty(num_rows)
                    grad = np.empty((num_rows if want_grad else 0, num_classes), dtype)
                    # label smoothing 0.1, no class weights: hard term (1-ε)·w_y, κ = 1-ε, σ = ε/C
                    keep = 1.0 - 0.1
                    hard = np.full(num_rows, keep)
                    arguments = (logits, target, counted, hard, weight, keep, 0.1 / num_classes,
                                 1.0 / num_rows, want_grad, losses, grad, 0, num_rows)
                    calls[name] = functools.partial(getattr(kernels, name), *arguments)
                    calls[name]()
                    outputs[name] = losses
                np.testing.assert_allclose(outputs["index_rows_few_classes"], outputs["index_rows"],
                                           rtol=2e-5 if dtype == np.float32 else 1e-12)
                best = {name: min(_best(call, repeats) for _ in range(rounds))
                        for name, call in calls.items()}
                key = "fwd_bwd" if want_grad else "forward"
                row[f"{key}_rows_ms"] = best["index_rows"] * 1e3
                row[f"{key}_block_ms"] = best["index_rows_few_classes"] * 1e3
            results.append(row)
            print(f"  {row['dtype']} C={num_classes} done", file=sys.stderr, flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=65536)
    parser.add_argument("--classes", default="2,10,14,16,20,24,32")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--format", choices=["table", "json"], default="table")
    parser.add_argument("--quick", action="store_true",
                        help="4096 rows, C = 2, 10, 32, 3 calls, 1 round (seconds)")
    parser.add_argument("--no-csv", action="store_true",
                        help="accepted for `crossent bench`; this script writes no CSV")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.classes, args.repeats, args.rounds = 4096, "2,10,32", 3, 1
    classes = [int(c) for c in args.classes.split(",")]
    results = measure(args.rows, classes, args.repeats, args.rounds)
    if args.format == "json":
        print(json.dumps(results, indent=2))
        return
    print(f"\n{args.rows} rows, one thread, min of {args.repeats} calls × {args.rounds} rounds "
          f"(ms; index_rows → index_rows_few_classes; * = the kernel crossent uses)")
    print(f"{'dtype':8} {'C':>4}  {'forward':>22}  {'forward+backward':>22}")
    for row in results:
        star = "*" if row["block_kernel_used"] else " "
        print(f"{row['dtype']:8} {row['classes']:>4}{star} "
              f"{row['forward_rows_ms']:8.2f} → {row['forward_block_ms']:6.2f} "
              f"({row['forward_block_ms'] / row['forward_rows_ms']:4.2f}×)  "
              f"{row['fwd_bwd_rows_ms']:8.2f} → {row['fwd_bwd_block_ms']:6.2f} "
              f"({row['fwd_bwd_block_ms'] / row['fwd_bwd_rows_ms']:4.2f}×)")


if __name__ == "__main__":
    main()
