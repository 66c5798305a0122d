"""Where a benchmark row comes from: crossent's version and commit, and the machine.

Shared by the benchmark scripts so every CSV row is labelled the same way.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

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
    """Host, CPU model, core count and memory, e.g. ``vm AMD EPYC 2 cores 24 GiB``."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.node()} {model} {os.cpu_count()} cores {memory_gib:.0f} GiB"
