"""Replay: the ledger into a target, as a run (DESIGN §5).

``runner`` holds the run (plan, units, batches, policies), ``plan`` the planner,
``engine`` applying and recording batches, and ``rollback``, ``repair`` and ``verify``
the other commands over the same machinery. The public names are here.
"""

from ledger.replay.plan import INSERT_ONLY, MERGE, POLICIES, REPLACE
from ledger.replay.runner import ReplayResult, ReplaySettings, replay
from ledger.retry import RetryPolicy

__all__ = [
    "INSERT_ONLY",
    "MERGE",
    "POLICIES",
    "REPLACE",
    "ReplayResult",
    "ReplaySettings",
    "RetryPolicy",
    "replay",
]
