"""This process's memory: what runs report in their stats, and how runs collect garbage."""

from __future__ import annotations

import gc
import resource
from collections.abc import Iterator
from contextlib import contextmanager

#: A run allocates millions of short-lived containers (decoded payloads, rows). With the
#: default gen-0 threshold (700) the collector runs every few records and its full
#: passes walk the whole heap again and again: 10–15% of a replay's time, for garbage
#: that reference counting frees anyway. The larger threshold keeps cycles collected.
BULK_GC_THRESHOLD = (50_000, 20, 100)


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
