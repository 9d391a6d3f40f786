"""Fixtures and helpers of the convex → laravel tests.

``laravel_url`` is a fresh target database with the app's tables (``sinks.laravel.tables``,
timestamps at Laravel's default precision 0) on SQLite, Postgres and MariaDB; the
service-backed ones come from the shared ``postgres_database`` / ``mariadb_database``
fixtures, which skip (or fail under ``CHATLEDGER_REQUIRE_SERVICES=1``) without the
service. Sink tests use a SQLite ledger: the ledger's own backends are tested elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select, text

from ledger.canonical import loads
from ledger.extract import ExtractResult, ExtractSettings, extract
from ledger.lookups import Lookups
from ledger.replay import ReplayResult, ReplaySettings, replay
from ledger.schema import target_state
from ledger.sink import SinkContext
from ledger.source import SourceContext
from ledger.sql_target import target_engine
from ledger.store import Ledger
from sinks.laravel import LaravelOptions, LaravelSink, tables
from sinks.laravel.columns import utc_session
from sources.convex import ConvexOptions, ConvexSource

STREAM, TARGET = "khala", "app"
DIALECTS = ["sqlite", "postgres", "mariadb"]


def database_url(request, tmp_path: Path, dialect: str) -> str:
    if dialect == "sqlite":
        return f"sqlite:///{tmp_path / 'app.db'}"
    return request.getfixturevalue("postgres_database" if dialect == "postgres" else "mariadb_database")


def create_tables(url: str, precision: int = 0) -> str:
    engine = target_engine(url)
    tables.metadata(precision).create_all(engine)
    engine.dispose()
    return url


@pytest.fixture(params=DIALECTS)
def laravel_url(request, tmp_path) -> str:
    """A target database with the app's tables, on each dialect."""
    return create_tables(database_url(request, tmp_path, request.param))


@pytest.fixture
def ledger(tmp_path):
    opened = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", blob_dir=tmp_path / "blobs")
    yield opened
    opened.close()


def source(ledger: Ledger, path: Path, stream: str = STREAM, **options: Any) -> ConvexSource:
    return ConvexSource(ConvexOptions(path=path, **options), SourceContext(stream, ledger.blobs))


def extract_export(ledger: Ledger, path: Path, stream: str = STREAM, **options: Any) -> ExtractResult:
    return extract(ledger, source(ledger, path, stream, **options), settings=ExtractSettings(parallel=False))


def sink(ledger: Ledger, url: str, **options: Any) -> LaravelSink:
    return LaravelSink(
        LaravelOptions(url=url, **options), SinkContext(TARGET, ledger.blobs, lookups=Lookups(ledger))
    )


def replay_into(
    ledger: Ledger, url: str, settings: ReplaySettings | None = None, **options: Any
) -> ReplayResult:
    return replay(ledger, sink(ledger, url, **options), [STREAM], settings=settings)


def engine_of(url: str):
    """An engine on the target that reads timestamps as the sink writes them (UTC)."""
    engine = target_engine(url)
    if engine.dialect.name == "mysql":
        event.listen(engine, "connect", utc_session)
    return engine


def counts(url: str) -> dict[str, int]:
    """Rows per app table, read back from the target."""
    engine = engine_of(url)
    meta = tables.metadata()
    with engine.connect() as conn:
        found = {
            name: conn.scalar(select(func.count()).select_from(meta.tables[name]))
            for name in tables.ALL_TABLES
        }
    engine.dispose()
    return found


def rows(url: str, sql: str, **params: Any) -> list[tuple]:
    engine = engine_of(url)
    with engine.connect() as conn:
        found = [tuple(row) for row in conn.execute(text(sql), params)]
    engine.dispose()
    return found


def fetch(url: str, table: str, *columns: str, **where: Any) -> list[tuple]:
    """Columns of a table's rows matching ``where`` (Core quotes reserved names like usage)."""
    engine = engine_of(url)
    found_table = tables.metadata().tables[table]
    query = select(*[found_table.c[name] for name in columns]).where(
        *[found_table.c[name] == value for name, value in where.items()]
    )
    with engine.connect() as conn:
        found = [tuple(row) for row in conn.execute(query)]
    engine.dispose()
    return found


def execute(url: str, sql: str, **params: Any) -> None:
    engine = engine_of(url)
    with engine.begin() as conn:
        conn.execute(text(sql), params)
    engine.dispose()


def sink_counters(result: ReplayResult) -> dict[str, int]:
    return result.stats.get("sink", {})


def held_refs(ledger: Ledger, kind: str) -> list[Any]:
    """The target refs the ledger holds for the ``kind`` records it wrote to the app."""
    with ledger.read() as conn:
        found = conn.execute(
            select(target_state.c.target_ref).where(
                target_state.c.target == TARGET, target_state.c.kind == kind
            )
        ).scalars()
        return [loads(ref) for ref in found if ref]
