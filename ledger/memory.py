"""This process's memory: what runs report in their stats, and how runs collect garbage."""

from __future__ import annotations

import gc
import resource
from collections.abc import Iterator
from contextlib import contextmanager

#: A run allocates millions of short-lived containers (decoded payloads, rows). With the
#: default gen-0 threshold (700) the collector runs every few records: a 1M-record replay
#: took 138 s with it, 118 s with this one, peak RSS 192 vs 190 MB. Raising the older
#: generations' thresholds too (50,000, 10, 10: 112 s) let cycles pile up (247 MB).
BULK_GC_THRESHOLD = (10_000, 10, 10)


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB.

    Linux's ``VmHWM`` belongs to the process image; ``ru_maxrss`` survives ``exec`` and
    would report the peak of whatever process started this one."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)  # kB
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KB on Linux


@contextmanager
def bulk_collection() -> Iterator[None]:
    """Collect garbage less often for the length of a run (``BULK_GC_THRESHOLD``), and
    put the thresholds back afterwards (a library caller keeps its own)."""
    before = gc.get_threshold()
    gc.set_threshold(*BULK_GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*before)
