"""The ``cherrystudio.sqlite`` file: opening it, creating it from the app's schema, the
tables this sink touches, and upstream's ``validate`` checks.

Transactions: the kit's ``target_engine`` turns the driver's implicit transactions off
on SQLite and emits ``BEGIN`` for every ``begin()``, so one batch is exactly one
transaction and savepoints nest inside it. Foreign keys are on for every
connection (the app's own FK-off bulk insert is not copied: constraints hold per batch).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Column, Connection, Integer, MetaData, Table, Text, event, text
from sqlalchemy.engine import Engine

from ledger.kit import chunks, target_engine

SCHEMA = Path(__file__).with_name("schema_v2.sql")
MESSAGE_COLUMNS = (
    "id", "parent_id", "topic_id", "role", "data", "status", "siblings_group_id", "model_id",
    "model_snapshot", "stats", "created_at", "updated_at",
)  # fmt: skip
TOPIC_COLUMNS = (
    "id", "name", "is_name_manually_edited", "assistant_id", "active_node_id", "group_id",
    "order_key", "created_at", "updated_at",
)  # fmt: skip
PIN_COLUMNS = ("id", "entity_type", "entity_id", "order_key", "created_at", "updated_at")
FILE_REF_COLUMNS = ("id", "file_entry_id", "source_type", "source_id", "role", "created_at", "updated_at")
ASSISTANT_COLUMNS = (
    "id", "name", "prompt", "emoji", "description", "model_id", "settings", "created_at",
    "updated_at", "order_key",
)  # fmt: skip
REQUIRED = ("topic", "message", "pin", "file_ref", "assistant", "user_model", "file_entry", "message_fts")
INTEGERS = {"is_name_manually_edited", "siblings_group_id", "created_at", "updated_at"}


def _table(metadata: MetaData, name: str, columns: tuple[str, ...]) -> Table:
    return Table(
        name,
        metadata,
        *[Column(c, Integer if c in INTEGERS else Text, primary_key=c == "id") for c in columns],
    )


def tables(metadata: MetaData) -> dict[str, Table]:
    return {
        "topic": _table(metadata, "topic", TOPIC_COLUMNS),
        "message": _table(metadata, "message", MESSAGE_COLUMNS),
        "pin": _table(metadata, "pin", PIN_COLUMNS),
        "file_ref": _table(metadata, "file_ref", FILE_REF_COLUMNS),
        "assistant": _table(metadata, "assistant", ASSISTANT_COLUMNS),
        "user_model": _table(metadata, "user_model", ("id",)),
        "file_entry": _table(metadata, "file_entry", ("id",)),
    }


def engine_for(path: Path) -> Engine:
    engine = target_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:  # target_engine already emits BEGIN itself
        dbapi_connection.execute("PRAGMA foreign_keys = ON")
        dbapi_connection.execute("PRAGMA busy_timeout = 10000")

    return engine


def create_schema(engine: Engine) -> None:
    """A new database: the app's schema, as its migrations and start-up create it."""
    with engine.connect() as conn:
        conn.connection.driver_connection.executescript(SCHEMA.read_text())


def missing_tables(conn: Connection) -> list[str]:
    found = {row[0] for row in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'"))}
    return [name for name in REQUIRED if name not in found]


def problems(engine: Engine, topic_ids: list[str]) -> Iterator[str]:
    """Upstream's ``validate`` over the whole database, plus SQLite's own checks: each
    problem as one line (none: the database is sound)."""
    with engine.connect() as conn:
        for row in conn.execute(text("PRAGMA foreign_key_check")):
            yield f"foreign_key_check: {row[0]} rowid {row[1]} → {row[2]}"
        integrity = [row[0] for row in conn.execute(text("PRAGMA integrity_check"))]
        if integrity != ["ok"]:
            yield from (f"integrity_check: {line}" for line in integrity[:20])
        checks = {
            "message without its topic": "SELECT m.id FROM message m LEFT JOIN topic t ON t.id = m.topic_id "
            "WHERE t.id IS NULL LIMIT 20",
            "dangling parent_id": "SELECT m.id FROM message m LEFT JOIN message p ON p.id = m.parent_id "
            "WHERE m.parent_id IS NOT NULL AND p.id IS NULL LIMIT 20",
            "topic with more than one root": "SELECT topic_id FROM message WHERE parent_id IS NULL "
            "GROUP BY topic_id HAVING count(*) > 1 LIMIT 20",
        }
        for what, query in checks.items():
            for (ident,) in conn.execute(text(query)):
                yield f"{what}: {ident}"
        for chunk in chunks(topic_ids, 500):
            marks = ",".join(f":t{i}" for i in range(len(chunk)))
            params = {f"t{i}": value for i, value in enumerate(chunk)}
            rows = conn.execute(
                text(
                    "SELECT t.id, (SELECT count(*) FROM message r WHERE r.topic_id = t.id AND r.role = 'root'), "
                    "t.active_node_id, (SELECT count(*) FROM message c WHERE c.parent_id = t.active_node_id), "
                    "(SELECT topic_id FROM message a WHERE a.id = t.active_node_id) "
                    f"FROM topic t WHERE t.id IN ({marks})"
                ),
                params,
            )
            for topic, roots, active, children, active_topic in rows:
                if roots != 1:
                    yield f"topic without exactly one root ({roots}): {topic}"
                if active is not None and (children or active_topic != topic):
                    yield f"active_node_id is not a leaf of its topic: {topic}"
