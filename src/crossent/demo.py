"""``python -m crossent.demo``: the seeds' worked examples, crossent's value beside the seed's.

Every row runs a crossent function on the inputs printed in a seed document
and shows the number the seed printed next to crossent's.
"""

from __future__ import annotations

import re

import numpy as np
from rich.console import Console
from rich.table import Table

import crossent as ce
from crossent import information as info

_SEED004_LOGITS = np.array([[12, 3, 2], [3, 10, 1], [1, 2, 5], [4, 6.5, 1.2], [3, 6, 1]])
_SEED004_Y = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 0]], dtype=float)

# (seed, what, the value the seed printed, crossent's computation)
EXAMPLES = [
    ("000", "H(p,q1) = -log 0.5", "0.6931",
     lambda: info.cross_entropy([1.0, 0.0, 0.0], [0.5, 0.2, 0.3])),
    ("000", "H(p,q2) = -log 0.8", "0.2231",
     lambda: info.cross_entropy([1.0, 0.0, 0.0], [0.8, 0.1, 0.1])),
    ("000", "-log2 0.1, -log2 0.9 (bits)", "3.32, 0.152",
     lambda: info.self_information([0.1, 0.9], base=2)),
    ("000", "CrossEntropyLoss on seeded torch.rand(3,3)", "1.2005",
     lambda: ce.cross_entropy(
         [[0.7576, 0.2793, 0.4031], [0.7347, 0.0293, 0.7999], [0.3971, 0.7544, 0.5695]],
         [0, 1, 2])),
    ("000", "reverse softmax: CE of the printed logits", "[0.6931, 0.2231]",
     lambda: ce.cross_entropy([[0.7467, -0.1696, 0.2359], [1.2666, -0.8129, -0.8129]], [0, 0],
                              reduction="none")),
    ("000", "BCELoss([0.4,0.3,0.2], [1,0,1])", "[0.9163, 0.3567, 1.6094]",
     lambda: ce.binary_cross_entropy([0.4, 0.3, 0.2], [1.0, 0.0, 1.0], reduction="none")),
    ("001", "softmax([1, 2, 3])", "[0.09, 0.24, 0.67]", lambda: ce.softmax([1.0, 2.0, 3.0])),
    ("001", "softmax(W x), W x = [1.4, 3.2, 5.0]", "[0.02, 0.14, 0.84]",
     lambda: ce.softmax(np.arange(0.1, 1.0, 0.1).reshape(3, 3) @ np.array([1.0, 2.0, 3.0]))),
    ("001", "-log 0.84 (p rounded first)", "0.17",
     lambda: info.cross_entropy([0.0, 0.0, 1.0], [0.02, 0.14, 0.84])),
    ("002", "softmax CE, TF logits [[0.7,1.2,0.3],...]", "[0.69967604, 0.74342006, 0.93983102]",
     lambda: ce.cross_entropy(
         np.array([[0.7, 1.2, 0.3], [0.4, 0.2, 0.9], [0.6, 0.3, 0.4]], np.float32), [1, 2, 0],
         reduction="none")),
    ("002", "sigmoid CE, logit 0.7 vs smoothed label 0.0333", "1.0798527",
     lambda: ce.binary_cross_entropy_with_logits([0.7], [0.1 / 3], reduction="none")),
    ("003", "F.cross_entropy", "[0.8801, 1.4922]",
     lambda: ce.cross_entropy([[0.4, 0.3, 0.7], [1.2, 0.4, 0.6]], [2, 1], reduction="none")),
    ("003", "F.nll_loss (picks and negates)", "[-0.5, -0.4]",
     lambda: ce.nll_loss([[0.1, 0.3, 0.5], [0.2, 0.4, 0.6]], [2, 1], reduction="none")),
    ("003", "F.binary_cross_entropy", "[[1.2040], [2.3026]]",
     lambda: ce.binary_cross_entropy([[0.3], [0.9]], [[1.0], [0.0]], reduction="none")),
    ("004", "mean BCE over a 5x3 multi-label batch", "1.2554386947664657",
     lambda: ce.binary_cross_entropy_with_logits(_SEED004_LOGITS, _SEED004_Y)),
    ("004", "mean CE over the same batch", "0.5578113653559053",
     lambda: ce.cross_entropy(_SEED004_LOGITS, _SEED004_Y)),
]

def _printed_numbers(printed: str) -> list[str]:
    return re.findall(r"-?\d+\.\d+", printed)


def _format(value: object, printed: str) -> tuple[str, bool]:
    """crossent's value with as many decimals as the seed printed, and whether they agree.

    Agreement allows one unit in the last printed digit (the seeds sometimes truncate).
    """
    numbers = _printed_numbers(printed)
    decimals = [len(n.split(".")[1]) for n in numbers]
    array = np.asarray(value)
    values = array.astype(float).reshape(-1)
    if values.size != len(numbers):
        return str(values), False
    # rounding: one unit in the last printed digit; floating point: 4 ulps of the dtype
    # (seed 002 printed TensorFlow's float32 results, seed 004 NumPy's float64 ones)
    ulps = 4 * float(np.finfo(array.dtype).eps) if array.dtype.kind == "f" else 0.0
    agree = all(
        abs(v - float(n)) <= max(10.0**-d * 1.0001, ulps * abs(v))
        for v, n, d in zip(values, numbers, decimals, strict=True)
    )
    text = ", ".join(f"{v:.{d}f}" for v, d in zip(values, decimals, strict=True))
    return (text if values.size == 1 else f"[{text}]"), agree


def main() -> None:
    """Print every example as a table: seed, what, the seed's value, crossent's value."""
    table = Table(title="The seeds' worked examples, computed by crossent")
    for column in ("seed", "computation", "seed printed", "crossent", "agree"):
        table.add_column(column)
    for seed, what, printed, compute in EXAMPLES:
        text, agree = _format(compute(), printed)
        table.add_row(seed, what, printed, text, "[green]yes[/]" if agree else "[red]no[/]")
    Console().print(table)


if __name__ == "__main__":
    main()
