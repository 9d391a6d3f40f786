"""Shared fixtures: ledgers on both backends, fresh Postgres and MariaDB databases, the CLI.

Service-backed tests skip with the reason when the service is unreachable, unless
``CHATLEDGER_REQUIRE_SERVICES=1`` (set by .ci/run): then a missing service fails.
Postgres is found at ``CHATLEDGER_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``), MariaDB at
``CHATLEDGER_TEST_MARIADB`` (default ``mysql+pymysql://root@127.0.0.1:3306/``); each
test gets its own database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from sqlalchemy import create_engine, select, text

from ledger.schema import heads
from ledger.store import Ledger, normalize_url

REQUIRE_SERVICES = os.environ.get("CHATLEDGER_REQUIRE_SERVICES") == "1"
POSTGRES_URL = os.environ.get("CHATLEDGER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
MARIADB_URL = os.environ.get("CHATLEDGER_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/")
# one per test session: concurrent sessions on one server must not drop each other's
TEMPLATE = f"chatledger_test_template_{uuid.uuid4().hex[:8]}"


def _plain_tracebacks() -> None:
    """Tests call the library without the CLI's log setup, so structlog's defaults apply,
    and their rich traceback renders every frame's locals (a batch of units each): it
    was a quarter of a crash test's time. Plain tracebacks, as the CLI logs them."""
    processors = [
        structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
        if isinstance(processor, structlog.dev.ConsoleRenderer)
        else processor
        for processor in structlog.get_config()["processors"]
    ]
    structlog.configure(processors=processors)


_plain_tracebacks()
# The tests start the CLI hundreds of times: let those processes cache the package's
# bytecode (an environment with PYTHONDONTWRITEBYTECODE=1 made each one compile every
# module it imports again, about 0.2 s of CPU per command).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


def service_missing(what: str, reason: str) -> None:
    message = f"{what} is not reachable ({reason})"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message}; CHATLEDGER_REQUIRE_SERVICES=1 requires it")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_admin():
    engine = create_engine(normalize_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any connection failure means: no usable server
        service_missing(f"PostgreSQL at {POSTGRES_URL}", type(exc).__name__)
    yield engine
    engine.dispose()


def _database_url(name: str) -> str:
    return normalize_url(POSTGRES_URL).rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(scope="session")
def postgres_template(postgres_admin) -> str:
    """A database migrated once; test databases are cloned from it."""
    with postgres_admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{TEMPLATE}"'))
    Ledger.open(_database_url(TEMPLATE), blob_dir="/nonexistent-unused").close()
    yield TEMPLATE
    with postgres_admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)'))


def _fresh_database(admin, template: str | None = None) -> Iterator[str]:
    name = f"chatledger_test_{uuid.uuid4().hex[:12]}"
    clause = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
    yield _database_url(name)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def postgres_database(postgres_admin) -> Iterator[str]:
    """An empty Postgres database for one test; its URL."""
    yield from _fresh_database(postgres_admin)


@pytest.fixture
def postgres_ledger_url(postgres_admin, postgres_template) -> Iterator[str]:
    """A migrated, empty Postgres ledger database for one test."""
    yield from _fresh_database(postgres_admin, postgres_template)


@pytest.fixture(scope="session")
def mariadb_admin():
    engine = create_engine(MARIADB_URL, connect_args={"charset": "utf8mb4"})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any connection failure means: no usable server
        service_missing(f"MariaDB at {MARIADB_URL}", type(exc).__name__)
    yield engine
    engine.dispose()


@pytest.fixture
def mariadb_database(mariadb_admin) -> Iterator[str]:
    """An empty MariaDB database (utf8mb4) for one test; its URL."""
    name = f"chatledger_test_{uuid.uuid4().hex[:12]}"
    with mariadb_admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    yield MARIADB_URL.rstrip("/") + f"/{name}"
    with mariadb_admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_url(request, tmp_path) -> str:
    """A fresh ledger URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return request.getfixturevalue("postgres_ledger_url")


@pytest.fixture
def ledger(ledger_url, tmp_path) -> Iterator[Ledger]:
    opened = Ledger.open(ledger_url, blob_dir=tmp_path / "blobs")
    yield opened
    opened.close()


def head_rows(ledger: Ledger, stream: str) -> set[tuple]:
    """(key, kind, version, hash, deleted) of every head of a stream."""
    with ledger.read() as conn:
        rows = conn.execute(
            select(heads.c.key, heads.c.kind, heads.c.version, heads.c.hash, heads.c.deleted).where(
                heads.c.stream == stream
            )
        )
        return {tuple(row) for row in rows}


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300):
    """Run the real ``chatledger`` command in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "ledger", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


from tests.mongo_server import mongo_database, mongo_server  # noqa: E402  (SecantusDB fixtures)
