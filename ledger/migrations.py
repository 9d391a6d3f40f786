"""Run the ledger's Alembic migrations programmatically.

Every command that opens a ledger calls :func:`ensure_current`: an empty database is
created, an older schema is upgraded, a newer one (an unknown revision) is refused.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import Engine

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


def ensure_current(engine: Engine, *, display_url: str) -> tuple[str | None, str]:
    """Bring the ledger to the head revision; return (revision before, revision now)."""
    config = _config()
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head()
    before = current_revision(engine)
    if before == head:
        return before, head
    if before is not None:
        try:
            script.get_revision(before)
        except CommandError:
            raise LedgerVersionError(
                f"the ledger at {display_url} has schema revision {before!r}, which this "
                f"chatledger does not know (it knows up to {head!r}): it was written by a "
                "newer chatledger. Upgrade chatledger to use this ledger."
            ) from None
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    return before, head
