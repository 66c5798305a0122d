"""Where a benchmark row comes from, and the shared results CSV.

Shared by the benchmark scripts so every CSV row is labelled the same way: crossent's
version and commit, torch's version, the machine, the date.
"""

from __future__ import annotations

import csv
import datetime as _dt
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def version() -> str:
    """crossent's version with the short git commit, e.g. ``0.1.0+209ab93``."""
    try:
        import crossent

        number = crossent.__version__
    except ImportError:
        number = "unknown"
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    return f"{number}+{commit}" if commit else number


def machine() -> str:
    """Host, CPU model, its widest vector instructions, core count and memory, e.g.
    ``vm AMD EPYC AVX2 2 cores 24 GiB``. Machines of one model name differ here: NumPy's
    float64 log and exp are vectorised with AVX-512 only (about 9 ns a value without)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as cpuinfo:  # the first processor's lines
            for line in cpuinfo:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    model = fields.get("model name") or platform.processor() or platform.machine()
    flags = set(fields.get("flags", "").split())
    vectors = next((name for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"),
                                            ("avx", "AVX")) if flag in flags), "")
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    label = f"{model} {vectors}".strip()
    return f"{platform.node()} {label} {os.cpu_count()} cores {memory_gib:.0f} GiB"


RESULTS = ROOT / "benchmarks" / "results.csv"
CSV_FIELDS = [
    "date", "version", "torch", "machine", "benchmark", "case", "contender",
    "metric", "value", "unit",
]


def append_csv(benchmark: str, records: list[dict[str, Any]], path: Path = RESULTS) -> Path:
    """Append ``records`` (case, contender, metric, value, unit) in the shared long format.

    Each row is labelled with the date, crossent's version, torch's version, the machine
    and ``benchmark``. A file whose header differs gets a sibling ``results_<benchmark>.csv``.
    """
    import torch

    if path.exists():
        with open(path, newline="") as existing:
            header = next(csv.reader(existing), None)
        if header != CSV_FIELDS:
            path = path.with_name(f"results_{benchmark}.csv")
    new = not path.exists()
    date = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    common = {"date": date, "version": version(), "torch": torch.__version__,
              "machine": machine(), "benchmark": benchmark}
    with open(path, "a", newline="") as output:
        writer = csv.DictWriter(output, fieldnames=CSV_FIELDS)
        if new:
            writer.writeheader()
        for record in records:
            writer.writerow({**common, **record, "value": f"{record['value']:.6g}"})
    return path
