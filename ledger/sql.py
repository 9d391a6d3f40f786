"""Dialect-specific SQL shared by the ledger: upserts and chunked IN lists."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

# SQLite allows 32766 bound parameters, Postgres 65535; keep IN lists well below both.
IN_CHUNK = 900


def _insert(conn: Connection, table: Table):
    dialect = conn.dialect.name
    if dialect == "sqlite":
        return sqlite.insert(table)
    if dialect == "postgresql":
        return postgresql.insert(table)
    raise NotImplementedError(f"no upsert for {dialect}")


def insert_ignore(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: list[str]):
    if rows:
        conn.execute(_insert(conn, table).on_conflict_do_nothing(index_elements=keys), rows)


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: list[str],
    columns: list[str] | None = None,
) -> None:
    """Insert rows, updating ``columns`` (default: all non-key columns given) on conflict."""
    if not rows:
        return
    statement = _insert(conn, table)
    columns = columns or [name for name in rows[0] if name not in keys]
    statement = statement.on_conflict_do_update(
        index_elements=keys,
        set_={name: statement.excluded[name] for name in columns},
    )
    conn.execute(statement, rows)


def bulk_write(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple],
    *,
    conflict: Sequence[str] = (),
    update: Sequence[str] | None = None,
) -> None:
    """executemany of plain tuples: the ledger's hot path (3 rows per extracted record).

    Core's per-row parameter processing costs more than SQLite's insert itself, so the
    statement is rendered from the table once and the DBAPI gets tuples. With
    ``conflict`` keys, rows that exist are skipped (``update`` None) or updated.
    SQLite and Postgres spell ON CONFLICT the same way; only the placeholder differs.
    """
    if not rows:
        return
    quote = conn.dialect.identifier_preparer.quote
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join([marker] * len(columns))})"
    )
    if conflict:
        target = ", ".join(quote(c) for c in conflict)
        if update:
            changes = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in update)
            sql += f" ON CONFLICT ({target}) DO UPDATE SET {changes}"
        else:
            sql += f" ON CONFLICT ({target}) DO NOTHING"
    conn.exec_driver_sql(sql, list(rows))


def chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
