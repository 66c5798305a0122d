"""Resident memory of the benchmark's own process: the figures of every memory benchmark.

``rss_bytes`` is the resident size now, ``high_water_bytes`` its peak (``VmHWM`` on Linux;
``ru_maxrss`` elsewhere, which cannot be reset), and ``reset_high_water`` sets the peak back to
the resident size now (Linux >= 4.0: ``5 > /proc/self/clear_refs``), so the peak of one pass
is measured apart from set-up's.
"""

from __future__ import annotations

import os
import resource


def rss_bytes() -> int:
    """The resident size of this process now."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: the peak is the best there is
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def high_water_bytes() -> int:
    """The peak resident size of this process (since the last :func:`reset_high_water`)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def reset_high_water() -> bool:
    """Reset the peak to the resident size now; False where that cannot be done."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
        return True
    except OSError:
        return False
