"""Helpers of the cherry → cherry-v2 tests: extract an input, replay it into a v2 database
made from the app's real schema, read rows back."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson

from ledger.extract import ExtractResult, ExtractSettings, extract
from ledger.replay import ReplayResult, ReplaySettings, replay
from ledger.sink import SinkContext
from ledger.source import SourceContext
from ledger.store import Ledger
from sinks.cherry_v2 import CherryV2Options, CherryV2Sink
from sources.cherry import CherryOptions, CherrySource

STREAM, TARGET = "cherry", "v2"
PACKAGED_SCHEMA = Path(__file__).parents[2] / "sinks" / "cherry_v2" / "schema_v2.sql"


def app_database(
    path: Path,
    *,
    models: tuple[str, ...] = ("openai::gpt-4o",),
    files: tuple[str, ...] = ("f1",),
    provider: bool = True,
) -> Path:
    """A v2 database as the app leaves it: its schema, a provider with models, file entries."""
    db = sqlite3.connect(path)
    db.executescript(PACKAGED_SCHEMA.read_text())
    if provider:
        db.execute(
            "INSERT INTO user_provider (provider_id, name, order_key, created_at, updated_at) "
            "VALUES ('openai', 'OpenAI', 'a0', 1, 1)"
        )
    for number, model in enumerate(models):
        provider, name = model.split("::")
        db.execute(
            "INSERT INTO user_model (id, provider_id, model_id, name, capabilities, order_key, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, '[]', ?, 1, 1)",
            (model, provider, name, name, f"a{number}"),
        )
    for ident in files:
        db.execute(
            "INSERT INTO file_entry (id, origin, name, ext, size, created_at, updated_at) VALUES (?, 'internal', ?, 'pdf', 13, 1, 1)",
            (ident, ident),
        )
    db.commit()
    db.close()
    return path


def source(ledger: Ledger, path: Path, stream: str = STREAM) -> CherrySource:
    return CherrySource(CherryOptions(path=path), SourceContext(stream, ledger.blobs))


def extract_input(ledger: Ledger, path: Path, stream: str = STREAM) -> ExtractResult:
    return extract(ledger, source(ledger, path, stream), settings=ExtractSettings(parallel=False))


def sink(ledger: Ledger, db: Path, **options: Any) -> CherryV2Sink:
    return CherryV2Sink(CherryV2Options(path=db, **options), SinkContext(TARGET, ledger.blobs))


def replay_into(
    ledger: Ledger, db: Path, settings: ReplaySettings | None = None, stream: str = STREAM
) -> ReplayResult:
    return replay(ledger, sink(ledger, db), [stream], settings=settings)


def rows(db: Path, sql: str, *params: Any) -> list[tuple]:
    connection = sqlite3.connect(db)
    try:
        return connection.execute(sql, params).fetchall()
    finally:
        connection.close()


def execute(db: Path, *statements: str) -> None:
    """Change the database behind the sink's back (foreign keys off, as a careless tool)."""
    connection = sqlite3.connect(db)
    try:
        for statement in statements:
            connection.execute(statement)
        connection.commit()
    finally:
        connection.close()


def dump(db: Path, skip: tuple[str, ...] = ()) -> dict[str, list[tuple]]:
    """Every table's rows, FTS5's shadow tables and ``sqlite_master`` included, for
    before/after comparisons."""
    connection = sqlite3.connect(db)
    try:
        names = [
            r[0]
            for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        ]
        found = {
            name: sorted(connection.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)
            for name in names
            if name not in skip
            and not connection.execute(
                "SELECT 1 FROM sqlite_master WHERE name = ? AND sql LIKE 'CREATE VIRTUAL TABLE%'", (name,)
            ).fetchone()
        }
        found["sqlite_master"] = sorted(
            connection.execute("SELECT * FROM sqlite_master").fetchall(), key=repr
        )
        return found
    finally:
        connection.close()


def app_writes(db: Path) -> None:
    """The app's own chat, one transaction per message as the app writes them (so its FTS
    index has several segments): rows a migration and its rollback must leave alone."""
    connection = sqlite3.connect(db, isolation_level=None)
    try:
        connection.execute(
            "INSERT INTO topic (id, name, order_key, created_at, updated_at) "
            "VALUES ('app-topic', 'mine', 'a0', 1, 1)"
        )
        turns = [("root", None), ("user", "hello from the app"), ("assistant", "an answer in the app")]
        turns += [("user", "hello again"), ("assistant", "hello yourself")]
        for number, (role, said) in enumerate(turns):
            parts = [{"type": "text", "text": said, "state": "done"}] if said else []
            connection.execute(
                "INSERT INTO message (id, parent_id, topic_id, role, data, status, created_at, updated_at) "
                "VALUES (?, ?, 'app-topic', ?, ?, 'success', ?, ?)",
                (f"app-{number}", f"app-{number - 1}" if number else None, role,
                 orjson.dumps({"parts": parts}).decode(), number, number),
            )  # fmt: skip
    finally:
        connection.close()


def constraints_hold(db: Path) -> None:
    assert rows(db, "PRAGMA foreign_key_check") == []
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]
    assert (
        rows(db, "SELECT topic_id FROM message WHERE parent_id IS NULL GROUP BY topic_id HAVING count(*) > 1")
        == []
    )
    assert (
        rows(
            db,
            "SELECT id FROM topic t WHERE (SELECT count(*) FROM message WHERE topic_id = t.id AND role = 'root') != 1",
        )
        == []
    )
    assert rows(db, "SELECT count(*) FROM message WHERE (role = 'root') != (parent_id IS NULL)") == [(0,)]
    # the active node is a leaf of its own topic
    assert (
        rows(
            db,
            "SELECT t.id FROM topic t JOIN message a ON a.id = t.active_node_id "
            "WHERE a.topic_id != t.id OR EXISTS (SELECT 1 FROM message c WHERE c.parent_id = a.id)",
        )
        == []
    )
    # the FTS index agrees with the rows (the triggers ran)
    assert rows(db, "INSERT INTO message_fts(message_fts, rank) VALUES ('integrity-check', 1)") == []
