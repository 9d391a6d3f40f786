"""Run the ledger's Alembic migrations programmatically.

Every command that opens a ledger calls :func:`ensure_current`: an empty database is
created, an older schema is upgraded, a newer one (an unknown revision) is refused.

Two first commands may race on a new ledger. The upgrade runs under a lock (Postgres: a
transaction-level advisory lock; SQLite: ``BEGIN IMMEDIATE``, the database's write lock,
which the loser waits for), and the revision is read again once the lock is held, so
the loser finds the schema made and does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, text
from sqlalchemy.engine import Engine

from alembic import command
from ledger.errors import LedgerVersionError


def migrations_dir() -> Path:
    here = Path(__file__).resolve().parent
    packaged = here / "_migrations"  # inside a wheel (see pyproject force-include)
    return packaged if packaged.is_dir() else here.parent / "alembic"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


#: Any constant: the advisory lock that serializes schema upgrades of one Postgres ledger.
SCHEMA_LOCK = 0x6368_6C65_6467  # "chledg"


def ensure_current(engine: Engine, *, display_url: str) -> tuple[str | None, str]:
    """Bring the ledger to the head revision; return (revision before, revision now)."""
    config = _config()
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head()
    before = current_revision(engine)
    if before == head:
        return before, head
    _check_known(script, before, head, display_url)
    with _schema_locked(engine) as conn:
        before = MigrationContext.configure(conn).get_current_revision()  # the winner's work?
        if before != head:
            _check_known(script, before, head, display_url)
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    return before, head


def _check_known(script: ScriptDirectory, revision: str | None, head: str, display_url: str) -> None:
    if revision is None:
        return
    try:
        script.get_revision(revision)
    except CommandError:
        raise LedgerVersionError(
            f"the ledger at {display_url} has schema revision {revision!r}, which this "
            f"chatledger does not know (it knows up to {head!r}): it was written by a "
            "newer chatledger. Upgrade chatledger to use this ledger."
        ) from None


@contextmanager
def _schema_locked(engine: Engine) -> Iterator[Connection]:
    """One transaction holding the ledger's schema lock (module doc)."""
    # ledger_write: the SQLite engine of ledger.store begins it with BEGIN IMMEDIATE
    with engine.connect().execution_options(ledger_write=True) as conn, conn.begin():
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
        yield conn
