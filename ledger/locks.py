"""One writer per stream and per target (DESIGN §4 ``locks``).

A lock row names its holder (host, pid, run). A lock whose holder is a dead process on
this host is stale and is broken automatically; any other lock is refused with a message
saying who holds it. ``chatledger unlock NAME`` breaks a lock only when its holder is
provably gone (this host, process dead); a live holder here, or any holder on another
machine (whose process this host cannot see), needs ``--force``: breaking the lock of a
process that still works lets two writers run. Every batch commit renews the heartbeat and
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
                        f"is gone, run: chatledger unlock {name} --force"
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
        update(locks).where(locks.c.name == name, locks.c.run_id == run_id).values(heartbeat_at=utcnow())
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


def break_lock(ledger: Ledger, name: str, *, force: bool = False) -> tuple[int | None, bool]:
    """Remove a lock whose holder is gone (or any, with ``force``); return the run that
    held it and whether its holder was provably gone."""
    with ledger.write() as conn:
        row = conn.execute(select(locks).where(locks.c.name == name).with_for_update()).first()
        if row is None:
            raise ChatledgerError(f"no lock named {name!r}")
        gone = is_stale(row)
        if not gone and not force:
            raise LockHeld(
                f"refusing to unlock {name}: {_holder_state(row)}. {_FORCE_HINT.format(name=name)}"
            )
        if not gone:
            log.warning("breaking the lock of a holder that may still run", lock=name, run=row.run_id,
                        pid=row.pid, host=row.host)  # fmt: skip
        _drop(conn, row)
        return row.run_id, gone


_FORCE_HINT = (
    "If you are sure that process is gone (or must be stopped), run: chatledger unlock {name} --force"
)


def _holder_state(row) -> str:
    if row.host == HOST:
        return f"its holder, run {row.run_id} (pid {row.pid}), is still running on this host"
    return (
        f"its holder, run {row.run_id} (pid {row.pid} on {row.host}), runs on another machine, "
        f"so this host cannot tell whether it is gone (last heartbeat {row.heartbeat_at:%Y-%m-%d %H:%M:%S})"
    )


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
