"""Child processes of a run: the extraction's reader, a replay's row workers."""

from __future__ import annotations

import signal


def die_with_parent() -> None:
    """Ask Linux to SIGKILL this child when its parent dies, however the parent dies (a
    killed run leaves no orphan behind)."""
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
