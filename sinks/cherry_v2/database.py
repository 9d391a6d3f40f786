"""The ``cherrystudio.sqlite`` file: opening it, creating it from the app's schema, the
tables this sink touches, and upstream's ``validate`` checks.

Transactions: the kit's ``target_engine`` turns the driver's implicit transactions off
on SQLite and emits ``BEGIN`` for every ``begin()``, so one batch is exactly one
transaction and savepoints nest inside it. Foreign keys are on for every
connection (the app's own FK-off bulk insert is not copied: constraints hold per batch).
"""

from __future__ import annotations

import hashlib
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
FILE_ENTRY_COLUMNS = (
    "id", "origin", "name", "ext", "size", "external_path", "created_at", "updated_at", "deleted_at",
)  # fmt: skip
ASSISTANT_COLUMNS = (
    "id", "name", "prompt", "emoji", "description", "model_id", "settings", "created_at",
    "updated_at", "order_key",
)  # fmt: skip
#: FTS5's shadow tables of ``message_fts`` and their columns: the triggers keep the index
#: right, but deleting rows adds delete records instead of restoring the old segments
FTS_SHADOWS = {
    "message_fts_data": ("id", "block"),
    "message_fts_idx": ("segid", "term", "pgno"),
    "message_fts_docsize": ("id", "sz"),
    "message_fts_config": ("k", "v"),
}
BASELINE = "chatledger_baseline"
CONTENT = "message_content_sha256"
FOLDER = "created_folder"
REQUIRED = ("topic", "message", "pin", "file_ref", "assistant", "user_model", "file_entry", "message_fts")
INTEGERS = {"is_name_manually_edited", "siblings_group_id", "created_at", "updated_at", "size", "deleted_at"}


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
        "file_entry": _table(metadata, "file_entry", FILE_ENTRY_COLUMNS),
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


# -- the FTS index before chatledger's first write ---------------------------------------------


def save_baseline(conn: Connection) -> None:
    """Copy ``message_fts``'s shadow tables (columns without affinity keep every value as
    it is) and a digest of what the index covers, for :func:`restore_baseline`."""
    conn.execute(text(f"CREATE TABLE {BASELINE} (name TEXT NOT NULL, a, b, c)"))
    for shadow, columns in FTS_SHADOWS.items():
        values = ", ".join(columns + ("NULL",) * (3 - len(columns)))
        conn.execute(text(f"INSERT INTO {BASELINE} SELECT '{shadow}', {values} FROM {shadow}"))
    conn.execute(
        text(f"INSERT INTO {BASELINE} (name, a) VALUES ('{CONTENT}', :digest)"), {"digest": _indexed(conn)}
    )


def note_folders(conn: Connection, folders: list[str]) -> None:
    """Folders the sink created for files (removed when empty, with the baseline)."""
    if folders and conn.dialect.has_table(conn, BASELINE):
        conn.execute(
            text(f"INSERT INTO {BASELINE} (name, a) VALUES ('{FOLDER}', :f)"), [{"f": f} for f in folders]
        )


def created_folders(conn: Connection) -> list[str]:
    if not conn.dialect.has_table(conn, BASELINE):
        return []
    return [row[0] for row in conn.execute(text(f"SELECT a FROM {BASELINE} WHERE name = '{FOLDER}'"))]


def restore_baseline(conn: Connection) -> bool | None:
    """Put the shadow tables back as :func:`save_baseline` found them, if the messages the
    index covers are the same again (the app wrote none since), and drop the copy. None:
    there was no copy (markers made by an older chatledger); False: the content moved on
    and the index stays as the triggers keep it (right, with delete records)."""
    if not conn.dialect.has_table(conn, BASELINE):
        return None
    saved = conn.scalar(text(f"SELECT a FROM {BASELINE} WHERE name = '{CONTENT}'"))
    same = saved == _indexed(conn)
    if same:
        for shadow, columns in FTS_SHADOWS.items():
            copied = ", ".join("abc"[: len(columns)])
            conn.execute(text(f"DELETE FROM {shadow}"))
            conn.execute(
                text(
                    f"INSERT INTO {shadow} ({', '.join(columns)}) SELECT {copied} FROM {BASELINE} WHERE name = :n"
                ),
                {"n": shadow},
            )
    conn.execute(text(f"DROP TABLE {BASELINE}"))
    return same


def _indexed(conn: Connection) -> str:
    """sha256 of what ``message_fts`` indexes: every message's FTS rowid and text."""
    digest = hashlib.sha256()
    for rowid, searchable in conn.execute(
        text("SELECT fts_rowid, searchable_text FROM message ORDER BY fts_rowid, id")
    ):
        digest.update(f"{rowid}\x00{searchable}\x01".encode())
    return digest.hexdigest()
