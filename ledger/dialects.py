"""Dialect-specific SQL shared by the ledger and the SQL sinks: upserts, bulk writes,
statistics and chunked IN lists, on SQLite, Postgres and MySQL/MariaDB."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import mysql, postgresql, sqlite

# SQLite allows 32766 bound parameters, Postgres 65535; keep IN lists well below both.
IN_CHUNK = 900


def _insert(conn: Connection, table: Table):
    dialect = conn.dialect.name
    if dialect == "sqlite":
        return sqlite.insert(table)
    if dialect == "postgresql":
        return postgresql.insert(table)
    raise NotImplementedError(f"no upsert for {dialect}")


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
    columns = columns or [name for name in rows[0] if name not in keys]
    if conn.dialect.name == "mysql":  # SQL targets on MySQL/MariaDB (markers, the laravel sink)
        # ON DUPLICATE KEY UPDATE fires on any unique key, not only ``keys``
        statement = mysql.insert(table)
        changes = {name: statement.inserted[name] for name in columns}
        conn.execute(statement.on_duplicate_key_update(changes), rows)
        return
    statement = _insert(conn, table)
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
    """Insert many rows fast: the ledger's hot path (3 rows per extracted record).

    With ``conflict`` keys, rows that exist are skipped (``update`` None) or have the
    ``update`` columns overwritten. SQLite and MySQL get an ``executemany`` of plain tuples
    (Core's per-row parameter processing would cost more than SQLite's insert itself;
    MySQL's ON DUPLICATE KEY fires on any unique key). Postgres gets COPY: straight into
    the table, or into a temporary staging table followed by one
    ``INSERT … SELECT … ON CONFLICT``.
    """
    if not rows:
        return
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    suffix = ""
    if conflict:
        target = ", ".join(quote(c) for c in conflict)
        if conn.dialect.name == "mysql":
            pairs = (
                [(c, f"VALUES({quote(c)})") for c in update]
                if update
                else [(conflict[0], quote(conflict[0]))]  # a no-op update: skip the row
            )
            suffix = " ON DUPLICATE KEY UPDATE " + ", ".join(f"{quote(c)} = {v}" for c, v in pairs)
        elif update:
            changes = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in update)
            suffix = f" ON CONFLICT ({target}) DO UPDATE SET {changes}"
        else:
            suffix = f" ON CONFLICT ({target}) DO NOTHING"
    if conn.dialect.name == "postgresql":
        _copy_write(conn, table, names, rows, suffix)
        return
    marks = ", ".join("?" if conn.dialect.paramstyle == "qmark" else "%s" for _ in columns)
    name = _qualified(conn, table)
    conn.exec_driver_sql(f"INSERT INTO {name} ({names}) VALUES ({marks}){suffix}", list(rows))


#: What COPY's text format escapes inside a value, and how.
_COPY_SPECIAL = re.compile(rb"[\\\n\r\t]")
_COPY_ESCAPES = {b"\\": b"\\\\", b"\n": b"\\n", b"\r": b"\\r", b"\t": b"\\t"}
COPY_NULL = b"\\N"


def _copy_escape(special: re.Match) -> bytes:
    return _COPY_ESCAPES[special.group()]


def copy_text(value: str | bytes | None) -> bytes:
    """A text value (str, or UTF-8 bytes) as one field of a COPY line."""
    if value is None:
        return COPY_NULL
    if isinstance(value, str):
        value = value.encode()
    # one regex scan, not four: most values hold nothing to escape
    return _COPY_SPECIAL.sub(_copy_escape, value) if _COPY_SPECIAL.search(value) else value


def copy_json(encoded: bytes | None) -> bytes:
    """Compact JSON (orjson's, e.g. :func:`ledger.canonical.ledger_json`) as one field of
    a COPY line: it holds no raw newline, carriage return or tab (JSON escapes them in
    strings), so only its backslashes need escaping."""
    if encoded is None:
        return COPY_NULL
    return encoded.replace(b"\\", b"\\\\") if b"\\" in encoded else encoded


def copy_line(row: Sequence[Any]) -> bytes:
    """One row in COPY's text format (UTF-8), for :func:`copy_lines`: values of str,
    bytes (UTF-8 text), int, bool or None. Built ahead, e.g. in a reader thread, so the
    writer only sends bytes. (A sink formatting millions of rows of known column types
    can call :func:`copy_text` / :func:`copy_json` per column instead.)"""
    fields = []
    for value in row:
        if value is True or value is False:
            fields.append(b"t" if value else b"f")
        elif isinstance(value, int):
            fields.append(b"%d" % value)
        else:
            fields.append(copy_text(value))
    return b"\t".join(fields) + b"\n"


def copy_lines(conn: Connection, table: Table, columns: Sequence[str], lines: Sequence[bytes]) -> None:
    """COPY rows already formatted by :func:`copy_line` into ``table`` (Postgres, a UTF-8
    connection)."""
    if not lines:
        return
    quote = conn.dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {_qualified(conn, table)} ({names}) FROM STDIN") as copy:
        copy.write(b"".join(lines))


def _copy_write(conn: Connection, table: Table, names: str, rows: Sequence[tuple], suffix: str) -> None:
    """COPY ``rows`` into ``table``; with an ON CONFLICT ``suffix``, through a staging table."""
    cursor = conn.connection.driver_connection.cursor()
    destination = qualified = _qualified(conn, table)
    if suffix:
        destination = f"chatledger_stage_{table.name}"
        cursor.execute(
            f'CREATE TEMPORARY TABLE IF NOT EXISTS "{destination}" (LIKE {qualified}) ON COMMIT DELETE ROWS'
        )
        cursor.execute(f'TRUNCATE "{destination}"')
        destination = f'"{destination}"'
    with cursor.copy(f"COPY {destination} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    if suffix:
        cursor.execute(f"INSERT INTO {qualified} ({names}) SELECT {names} FROM {destination}{suffix}")


class Statistics:
    """ANALYZE the tables a bulk job fills, each time their row count has doubled.

    Postgres plans with table statistics; a table loaded faster than autovacuum visits it
    (or on a server with autovacuum off) has none, and the planner then scans a whole
    stream per key lookup. SQLite plans these queries well without statistics.
    """

    def __init__(self, tables: Sequence[Table], first: int = 50_000, *, keys_only: bool = False) -> None:
        self.tables = tables
        self.written = 0
        self.next = first
        #: only the primary key's and the indexes' columns: a sink's tables are looked up
        #: by key alone, and sampling their large JSON columns is most of ANALYZE's time
        self.keys_only = keys_only

    def wrote(self, conn: Connection, rows: int) -> None:
        self.written += rows
        if conn.dialect.name == "postgresql" and self.written >= self.next:
            names = ", ".join(self._analyzed(conn, table) for table in self.tables)
            conn.exec_driver_sql(f"ANALYZE {names}")
            self.next = self.written * 2

    def _analyzed(self, conn: Connection, table: Table) -> str:
        name = _qualified(conn, table)
        if not self.keys_only:
            return name
        keys = [*table.primary_key.columns, *(column for index in table.indexes for column in index.columns)]
        quote = conn.dialect.identifier_preparer.quote
        return f"{name} ({', '.join(dict.fromkeys(quote(column.name) for column in keys))})"


def _qualified(conn: Connection, table: Table) -> str:
    quote = conn.dialect.identifier_preparer.quote
    return f"{quote(table.schema)}.{quote(table.name)}" if table.schema else quote(table.name)


def chunks(items: Sequence[Any], size: int = IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
