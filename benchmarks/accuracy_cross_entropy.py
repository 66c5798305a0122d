"""Accuracy of the fused kernel: relative error against float64, next to PyTorch's float32.

The inputs, the float64 reference and the error measures are those of
``tests/test_kernels.py::test_accuracy_against_pytorch`` (imported from
``tests/cross_entropy_references.py``); the test asserts crossent's error is at most 4x
PyTorch's, this script prints the figures.

Usage::

    PYTHONPATH=src python benchmarks/accuracy_cross_entropy.py [--format json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

import cross_entropy_references as references  # noqa: E402

METRICS = ("loss", "grad (max-norm)", "grad (worst element)")


def measure() -> list[dict[str, object]]:
    import torch

    import crossent as ce

    rows = []
    for num_classes, num_rows in ((10, 2048), (32000, 64)):
        for smoothing in (0.0, 0.1):
            for case in references.ACCURACY_CASES:
                logits, target = references.accuracy_inputs(case, num_rows, num_classes)
                reference = references.float64_reference(logits, target,
                                                         label_smoothing=smoothing)
                if not np.isfinite(reference[0]):
                    continue  # smoothing mass on an impossible class: the loss is inf
                loss, grad = ce.value_and_grad(ce.cross_entropy, logits, target,
                                               label_smoothing=smoothing)
                logits_t = torch.from_numpy(logits).requires_grad_(True)
                torch_loss = torch.nn.functional.cross_entropy(
                    logits_t, torch.from_numpy(target), label_smoothing=smoothing)
                torch_loss.backward()
                ours = references.relative_errors(loss, grad, *reference)
                theirs = references.relative_errors(torch_loss.item(), logits_t.grad.numpy(),
                                                    *reference)
                rows.append({"V": num_classes, "N": num_rows, "smoothing": smoothing,
                             "case": case, "crossent": ours.tolist(), "torch": theirs.tolist()})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--format", choices=("table", "json"), default="table")
    args = parser.parse_args(argv)
    rows = measure()
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    print("| N × V | ε | logits | " + " | ".join(f"{m}: crossent / torch" for m in METRICS)
          + " |")
    print("|---" * (3 + len(METRICS)) + "|")
    for row in rows:
        cells = [f"{a:.1e} / {b:.1e}" for a, b in zip(row["crossent"], row["torch"], strict=True)]
        print(f"| {row['N']} × {row['V']} | {row['smoothing']} | {row['case']} | "
              + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
