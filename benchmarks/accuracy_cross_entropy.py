"""Accuracy of every cross-entropy path in float32: relative error against float64, next
to PyTorch's own float32 error on the same inputs.

Paths: the fused NumPy kernels (numba, and the pure-NumPy fallback), the generic
array-API core on NumPy, torch and JAX arrays (its own gradient, ``value_and_grad``, and
the framework's autograd of the forward), ``crossent.torch.cross_entropy`` and
``crossent.compat.torch.cross_entropy`` (autograd). Options: plain, label smoothing,
class weights, ``ignore_index``, all three. The inputs, the float64 reference, the paths and
the error measures are those of ``tests/accuracy_paths.py``; the tests
(``tests/test_kernels.py::test_accuracy_against_pytorch``, ``tests/test_accuracy.py``)
assert crossent's error is at most 4x PyTorch's, this script prints the figures.

Usage::

    PYTHONPATH=src python benchmarks/accuracy_cross_entropy.py [--format json] [--sizes 10,1000,32000]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

import accuracy_paths as references  # noqa: E402
from cross_entropy_references import ACCURACY_CASES  # noqa: E402

METRICS = ("loss", "grad (max-norm)", "grad (worst element)")
ROWS = {10: 2048, 1000: 256, 32000: 64}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--sizes", default="10,1000,32000",
                        help="numbers of classes V, comma-separated (N = 2048, 256, 64)")
    parser.add_argument("--paths", default=",".join(references.ACCURACY_PATHS),
                        help="paths to measure, comma-separated")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    paths = args.paths.split(",")
    rows = []
    for num_classes in sizes:
        num_rows = ROWS.get(num_classes, max(64, 2_000_000 // num_classes // 8))
        for options_name in references.ACCURACY_OPTIONS:
            for case in ACCURACY_CASES:
                row = references.accuracy_row(case, num_rows, num_classes, options_name, paths)
                if row is not None:
                    rows.append(row)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    print("Worst ratio crossent error / PyTorch error (error floor eps/2) per path;"
          " a cell over 4 misses the target.\n")
    print("| N × V | options | logits | torch error (loss, grad norm, grad elem) | "
          + " | ".join(paths) + " |")
    print("|---" * (4 + len(paths)) + "|")
    worst = dict.fromkeys(paths, 0.0)
    for row in rows:
        cells = []
        for path in paths:
            ratio = max(row["ratios"][path])
            worst[path] = max(worst[path], ratio)
            cells.append(f"{ratio:.2f}")
        torch_cells = ", ".join(f"{e:.1e}" for e in row["torch"])
        print(f"| {row['N']} × {row['V']} | {row['options']} | {row['case']} | {torch_cells} | "
              + " | ".join(cells) + " |")
    print("| worst | | | | " + " | ".join(f"{worst[p]:.2f}" for p in paths) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
