"""Run rows: one per command, with redacted arguments, status and stats.

A run starts as ``running``. It ends ``succeeded``, ``with-rejects`` (finished, but some
input was rejected), ``drifted`` (verify found differences), ``refused`` (a lock was
held), ``interrupted`` (Ctrl-C, SIGTERM) or ``failed`` (with the redacted error), or stays
``running`` when the process is killed; :func:`reap_interrupted` later marks such runs
``interrupted`` once their process is known to be gone. ``ledger.lifecycle`` runs every
command through these states.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update

from ledger import __version__
from ledger.canonical import canonical_text, loads
from ledger.redact import redact, redact_value
from ledger.schema import runs
from ledger.store import Ledger

RUNNING, SUCCEEDED, FAILED, INTERRUPTED = "running", "succeeded", "failed", "interrupted"
#: finished, but some input was rejected (exit code 4): nothing valid was lost, and the
#: rejects are in the ledger's ``rejects``
WITH_REJECTS = "with-rejects"
REFUSED = "refused"  # another run held the stream's or target's lock
DRIFTED = "drifted"  # verify found the target different from the ledger (exit code 3)
#: statuses that end a run; ``running`` is the only other one
FINISHED = (SUCCEEDED, WITH_REJECTS, FAILED, INTERRUPTED, REFUSED, DRIFTED)
#: the CLI's exit code for a run's status (DESIGN §8); 143 for SIGTERM comes from the CLI
EXIT_CODES = {
    SUCCEEDED: 0,
    "dry-run": 0,
    WITH_REJECTS: 4,
    DRIFTED: 3,
    FAILED: 1,
    REFUSED: 1,
    INTERRUPTED: 130,
}


def exit_code(status: str) -> int:
    return EXIT_CODES.get(status, 1)


HOST = socket.gethostname()


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Run:
    id: int
    command: str
    stream: str | None
    target: str | None
    parent_run_id: int | None
    args: dict[str, Any]
    tool_version: str
    host: str
    pid: int
    started_at: dt.datetime
    finished_at: dt.datetime | None
    status: str
    stats: dict[str, Any]
    error: str | None

    @classmethod
    def from_row(cls, row) -> Run:
        values = dict(row._mapping)
        values["args"] = loads(values["args"])
        values["stats"] = loads(values["stats"])
        for name in ("started_at", "finished_at"):
            if values[name] is not None and values[name].tzinfo is None:
                values[name] = values[name].replace(tzinfo=dt.UTC)
        return cls(**values)

    def as_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for name in ("started_at", "finished_at"):
            out[name] = out[name].isoformat() if out[name] else None
        return out

    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


def start_run(
    ledger: Ledger,
    command: str,
    *,
    stream: str | None = None,
    target: str | None = None,
    args: dict[str, Any] | None = None,
    parent_run_id: int | None = None,
) -> int:
    with ledger.write() as conn:
        result = conn.execute(
            runs.insert().values(
                command=command,
                stream=stream,
                target=target,
                parent_run_id=parent_run_id,
                args=canonical_text(redact_value(args or {})),
                tool_version=__version__,
                host=HOST,
                pid=os.getpid(),
                started_at=utcnow(),
                status=RUNNING,
                stats="{}",
            )
        )
        return int(result.inserted_primary_key[0])


def save_stats(conn: Connection, run_id: int, stats: dict[str, Any]) -> None:
    conn.execute(update(runs).where(runs.c.id == run_id).values(stats=canonical_text(stats)))


def finish_run(
    ledger: Ledger,
    run_id: int,
    status: str,
    stats: dict[str, Any],
    error: str | None = None,
) -> None:
    with ledger.write() as conn:
        conn.execute(
            update(runs)
            .where(runs.c.id == run_id)
            .values(
                status=status,
                finished_at=utcnow(),
                stats=canonical_text(stats),
                error=redact(error) if error else None,
            )
        )


def get_run(ledger: Ledger, run_id: int) -> Run | None:
    with ledger.read() as conn:
        row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
    return Run.from_row(row) if row else None


def list_runs(
    ledger: Ledger,
    *,
    stream: str | None = None,
    target: str | None = None,
    command: str | None = None,
    limit: int = 50,
) -> list[Run]:
    query = select(runs).order_by(runs.c.id.desc()).limit(limit)
    if stream:
        query = query.where(runs.c.stream == stream)
    if target:
        query = query.where(runs.c.target == target)
    if command:
        query = query.where(runs.c.command == command)
    with ledger.read() as conn:
        return [Run.from_row(row) for row in conn.execute(query)]


def reap_interrupted(ledger: Ledger) -> list[int]:
    """Mark ``running`` runs whose process on this host is gone as interrupted."""
    with ledger.read() as conn:
        candidates = conn.execute(
            select(runs.c.id, runs.c.pid).where(runs.c.status == RUNNING, runs.c.host == HOST)
        ).all()
    dead = [row.id for row in candidates if row.pid != os.getpid() and not process_alive(row.pid)]
    if dead:
        with ledger.write() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.id.in_(dead), runs.c.status == RUNNING)
                .values(status=INTERRUPTED, error="the process ended without finishing the run")
            )
    return dead
