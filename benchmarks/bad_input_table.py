"""The bad-input table: how each bad call of ``tests/test_bad_input.py`` ends.

Each row of the test's table (calls written by hand, the sweep of ``None``, ragged
rows and strings over every array argument of every public function, and
``crossent.torch``'s tensor-only calls) is sorted by the test's own ``classify``:

- clear: a ValueError/TypeError raised by crossent whose message names the argument;
- vague: raised by crossent, but the message does not name the argument;
- foreign: another exception type, or an error raised inside NumPy, torch, ...;
- silent: a number came back.

Usage (``--list`` prints every row that is not clear)::

    PYTHONPATH=src python benchmarks/bad_input_table.py [--list] [--format json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from tests.test_bad_input import all_rows, classify  # noqa: E402

KINDS = ("clear", "vague", "foreign", "silent")


def table() -> list[tuple[str, str, str]]:
    """(row id, kind, what happened) for every row."""
    outcomes = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, call, word in all_rows():
            kind, what = classify(call, word)
            outcomes.append((name, kind, what))
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print every row that is not clear")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args()
    outcomes = table()
    counts = Counter(kind for _, kind, _ in outcomes)
    if args.format == "json":
        print(json.dumps({"rows": len(outcomes), **{k: counts[k] for k in KINDS},
                          "not_clear": [dict(zip(("row", "kind", "what"), o, strict=True))
                                        for o in outcomes if o[1] != "clear"]}, indent=2))
        return
    print(f"{len(outcomes)} bad calls: " + ", ".join(f"{counts[k]} {k}" for k in KINDS))
    if args.list:
        for name, kind, what in outcomes:
            if kind != "clear":
                print(f"  {kind:8s} {name}: {what}")


if __name__ == "__main__":
    main()
