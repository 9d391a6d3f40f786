"""One run lifecycle for every command that records a run (extract, replay, rollback,
repair, verify, migrate).

``with lifecycle.run(ledger, "replay", target=…, lock=…) as active:`` starts the run row,
takes the lock (a lock held elsewhere ends the run ``refused``), and on the way out:

- the body returned: the run ends with what ``active.finish(status, stats, error)``
  said, by default ``succeeded`` with ``active.stats()``;
- Ctrl-C (``KeyboardInterrupt``) or SIGTERM (:class:`ledger.errors.Terminated`, raised by the
  handler :func:`ledger.errors.terminate_on_sigterm` installs): ``interrupted``;
- any other exception: ``failed``, with the (redacted) error.

The body runs with the collector tuned for bulk work (:func:`ledger.memory.bulk_collection`).
The lock is released either way. Each run logs two events (:func:`ledger.logs.run_event`):
``run started`` (id, command, stream/target) and ``run finished`` (id, status, counts,
seconds, error). If the ledger itself cannot record the end (a full
disk, a lost connection), the original error still reaches the caller — the ledger's
own failure is logged, never shown instead of it — and the run is left ``running``,
which the next command marks ``interrupted`` once this process is gone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog

from ledger import locks, logs, runs
from ledger.errors import ChatledgerError, LockHeld, Terminated
from ledger.memory import bulk_collection
from ledger.report_file import run_counts
from ledger.store import Ledger

log = structlog.get_logger("chatledger.run")


def error_text(exc: BaseException) -> str:
    if isinstance(exc, Terminated):
        return "terminated (SIGTERM)"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    return str(exc) if isinstance(exc, ChatledgerError) else f"{type(exc).__name__}: {exc}"


def status_of(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return runs.INTERRUPTED
    if isinstance(exc, LockHeld):
        return runs.REFUSED
    return runs.FAILED


@dataclass
class ActiveRun:
    """The run being executed: its id, and how it will end."""

    id: int
    command: str
    stats: Callable[[], dict[str, Any]]
    outcome: tuple[str, str | None] | None = field(default=None)
    started: float = field(default_factory=time.monotonic)

    def finish(self, status: str, error: str | None = None) -> None:
        """Say how the run ends when the body returns (default: succeeded)."""
        self.outcome = (status, error)


def _end(ledger: Ledger, active: ActiveRun, status: str, error: str | None) -> None:
    stats = active.stats()
    logs.run_event(
        "run finished",
        run_id=active.id,
        command=active.command,
        status=status,
        counts=run_counts(active.command, stats),
        seconds=round(time.monotonic() - active.started, 3),
        **({"error": error} if error else {}),
    )
    try:
        runs.finish_run(ledger, active.id, status, stats, error=error)
    except Exception:  # the ledger is the problem: say so in the log, keep the real error
        log.error("could not record the end of the run", run_id=active.id, status=status, exc_info=True)
        if status == runs.SUCCEEDED:
            raise


@contextmanager
def run(
    ledger: Ledger,
    command: str,
    *,
    stats: Callable[[], dict[str, Any]],
    stream: str | None = None,
    target: str | None = None,
    args: dict[str, Any] | None = None,
    parent_run_id: int | None = None,
    lock: str | None = None,
) -> Iterator[ActiveRun]:
    """Execute one run (see the module doc); ``stats`` gives the run's stats when it ends."""
    runs.reap_interrupted(ledger)
    run_id = runs.start_run(
        ledger, command, stream=stream, target=target, args=args, parent_run_id=parent_run_id
    )
    logs.run_event(
        "run started",
        run_id=run_id,
        command=command,
        **{name: value for name, value in (("stream", stream), ("target", target)) if value},
        **({"parent_run_id": parent_run_id} if parent_run_id else {}),
    )
    active = ActiveRun(run_id, command, stats)
    locked = False
    try:
        if lock is not None:
            locks.acquire(ledger, lock, run_id)
            locked = True
        with bulk_collection():
            yield active
    except BaseException as exc:
        if locked:
            _release(ledger, lock, run_id)
        _end(ledger, active, status_of(exc), error_text(exc))
        raise
    if locked:
        locks.release(ledger, lock, run_id)
    status, error = active.outcome or (runs.SUCCEEDED, None)
    _end(ledger, active, status, error)


def _release(ledger: Ledger, lock: str, run_id: int) -> None:
    """Release after a failure; a ledger that cannot do it leaves a lock the next
    command breaks as stale (this process will be gone)."""
    try:
        locks.release(ledger, lock, run_id)
    except Exception:
        log.error("could not release the lock", lock=lock, run_id=run_id, exc_info=True)
