"""One writer per stream and per target (DESIGN §4 ``locks``).

A lock row names its holder (host, pid, run). A lock whose holder is a dead process on
this host is stale and is broken automatically; any other lock is refused with a message
saying who holds it, and ``chatledger unlock NAME`` breaks it by hand (for a holder on
another machine that is known to be gone). Every batch commit renews the heartbeat and
checks that the lock is still ours, so a broken lock stops the old holder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import structlog
from sqlalchemy import Connection, delete, select, update
from sqlalchemy.exc import IntegrityError

from ledger.errors import ChatledgerError, LockHeld, LockLost
from ledger.runs import HOST, INTERRUPTED, RUNNING, process_alive, utcnow
from ledger.schema import locks, runs
from ledger.store import Ledger

log = structlog.get_logger("chatledger.locks")


def stream_lock(stream: str) -> str:
    return f"stream:{stream}"


def target_lock(target: str) -> str:
    return f"target:{target}"


def is_stale(row) -> bool:
    return row.host == HOST and not process_alive(row.pid)


def acquire(ledger: Ledger, name: str, run_id: int) -> None:
    try:
        with ledger.write() as conn:
            row = conn.execute(select(locks).where(locks.c.name == name).with_for_update()).first()
            if row is not None:
                if not is_stale(row):
                    raise LockHeld(
                        f"{name} is locked by run {row.run_id} (pid {row.pid} on {row.host}, "
                        f"since {row.acquired_at:%Y-%m-%d %H:%M:%S}, last heartbeat "
                        f"{row.heartbeat_at:%H:%M:%S}). Wait for it to finish; if that process "
                        f"is gone, run: chatledger unlock {name}"
                    )
                log.warning("breaking stale lock", lock=name, run=row.run_id, pid=row.pid)
                _drop(conn, row)
            now = utcnow()
            conn.execute(
                locks.insert().values(
                    name=name,
                    run_id=run_id,
                    host=HOST,
                    pid=os.getpid(),
                    acquired_at=now,
                    heartbeat_at=now,
                )
            )
    except IntegrityError:
        # Postgres: another process inserted the row between our select and insert.
        raise LockHeld(f"{name} was just locked by another process") from None


def heartbeat(conn: Connection, name: str, run_id: int) -> None:
    """Renew the lock inside a batch transaction; fail the batch if it is no longer ours."""
    result = conn.execute(
        update(locks)
        .where(locks.c.name == name, locks.c.run_id == run_id)
        .values(heartbeat_at=utcnow())
    )
    if result.rowcount != 1:
        raise LockLost(f"lost {name}: it was broken while run {run_id} was working")


def release(ledger: Ledger, name: str, run_id: int) -> None:
    with ledger.write() as conn:
        conn.execute(delete(locks).where(locks.c.name == name, locks.c.run_id == run_id))


@contextmanager
def held(ledger: Ledger, name: str, run_id: int) -> Iterator[None]:
    acquire(ledger, name, run_id)
    try:
        yield
    finally:
        release(ledger, name, run_id)


def break_lock(ledger: Ledger, name: str) -> int | None:
    """Remove a lock whatever its holder; return the run that held it."""
    with ledger.write() as conn:
        row = conn.execute(select(locks).where(locks.c.name == name)).first()
        if row is None:
            raise ChatledgerError(f"no lock named {name!r}")
        _drop(conn, row)
        return row.run_id


def _drop(conn: Connection, row) -> None:
    """Remove a lock; the run that held it can no longer finish, so it is interrupted."""
    conn.execute(delete(locks).where(locks.c.name == row.name))
    conn.execute(
        update(runs)
        .where(runs.c.id == row.run_id, runs.c.status == RUNNING)
        .values(status=INTERRUPTED, error=f"its lock {row.name} was broken")
    )


def list_locks(ledger: Ledger) -> list[dict]:
    with ledger.read() as conn:
        rows = conn.execute(select(locks).order_by(locks.c.name)).all()
    return [dict(row._mapping) | {"stale": is_stale(row)} for row in rows]
