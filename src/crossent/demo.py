"""``python -m crossent.demo``: the seeds' worked examples, crossent's value beside the seed's.

Every row is a :class:`crossent.explain.Check` of one of the named examples in
:mod:`crossent.explain.examples`: a number a seed printed, and crossent's value
for the same quantity. ``crossent explain --example NAME`` walks through any of
them step by step.
"""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.table import Table

from crossent.explain import examples

_WIDTH = 44


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _WIDTH else text[: _WIDTH - 1] + "…"


def _short(value: object) -> str:
    array = np.asarray(value)
    if array.dtype.kind != "f":
        return _clip(str(value))
    if array.ndim == 0:
        return repr(float(array))
    return _clip(np.array2string(array, precision=8, separator=", ", floatmode="maxprec"))


def main() -> None:
    """Print every seed check as a table: example, quantity, the seed's value, crossent's."""
    table = Table(title="The seeds' worked examples, computed by crossent", show_lines=False)
    for column in ("example", "quantity", "seed printed", "crossent", "agree"):
        table.add_column(column, overflow="fold")
    for name in examples.names():
        for check in examples.get(name).checks:
            verdict = "[green]yes[/]" if check.matches else "[yellow]erratum[/]"
            table.add_row(name, check.label, _clip(check.seed), _short(check.crossent), verdict)
    console = Console()
    console.print(table)
    console.print("Step by step: crossent explain --example seed000-cross-entropy")


if __name__ == "__main__":
    main()
