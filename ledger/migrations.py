"""Run the ledger's Alembic migrations programmatically.

Every command that opens a ledger calls :func:`ensure_current`: an empty database is
created, an older schema is upgraded, a newer one (an unknown revision) is refused.

Two first commands may race on a new ledger. The upgrade runs under a lock (Postgres: a
transaction-level advisory lock; SQLite: ``BEGIN IMMEDIATE``, the database's write lock,
which the loser waits for), and the revision is read again once the lock is held, so
the loser finds the schema made and does nothing.

A ledger already at the head revision, what nearly every command finds, is checked with
one query and without importing Alembic (a third of a command's start-up): the head is
the newest file of alembic/versions, each named after its revision (tests/test_migrations.py
holds the files to that and Alembic's own head to it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import Engine

from ledger.errors import LedgerVersionError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

#: alembic's default version table, which alembic/env.py keeps
VERSION_TABLE = "alembic_version"


def migrations_dir() -> Path:
    here = Path(__file__).resolve().parent
    packaged = here / "_migrations"  # inside a wheel (see pyproject force-include)
    return packaged if packaged.is_dir() else here.parent / "alembic"


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return config


def revision_files() -> list[Path]:
    """The migration scripts, oldest first (``0001_initial.py``, …)."""
    return sorted((migrations_dir() / "versions").glob("[0-9]*.py"))


def head_revision() -> str:
    return revision_files()[-1].stem


def current_revision(engine: Engine) -> str | None:
    """The ledger's schema revision, None when it has none (an empty database)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one_or_none()


#: Any constant: the advisory lock that serializes schema upgrades of one Postgres ledger.
SCHEMA_LOCK = 0x6368_6C65_6467  # "chledg"


def ensure_current(engine: Engine, *, display_url: str) -> tuple[str | None, str]:
    """Bring the ledger to the head revision; return (revision before, revision now)."""
    head = head_revision()
    before = current_revision(engine)
    if before == head:
        return before, head
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from alembic import command

    config = _config()
    script = ScriptDirectory.from_config(config)
    _check_known(script, before, head, display_url)
    with _schema_locked(engine) as conn:
        before = MigrationContext.configure(conn).get_current_revision()  # the winner's work?
        if before != head:
            _check_known(script, before, head, display_url)
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    return before, head


def _check_known(script: ScriptDirectory, revision: str | None, head: str, display_url: str) -> None:
    from alembic.util.exc import CommandError

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
