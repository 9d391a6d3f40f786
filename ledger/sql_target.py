"""What every SQL sink shares: target engines, marker rows and error classification.

Markers (DESIGN §6): a sink writes one row per record it wrote into its own table
``chatledger_markers`` *inside the target*, in the same transaction as the data. When a
process dies between the target's commit and the ledger's, the markers still say what
the target holds, and the next replay heals ``target_state`` from them instead of
writing twice. Owners who forbid extra tables set ``markers = false``: idempotency then
rests on deterministic keys and verify.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import psycopg
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    create_engine,
    delete,
    event,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine, make_url

from ledger.canonical import loads
from ledger.dialects import bulk_write, chunks
from ledger.errors import ChatledgerError, ConfigError
from ledger.extras import missing_extra
from ledger.redact import redact
from ledger.sink import (
    Outcome,
    PermanentError,
    TransientError,
    checking,
    refuse,
)
from ledger.store import normalize_url, sqlite_path

MARKER_TABLE = "chatledger_markers"


def target_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine for a target database (Postgres via psycopg 3, MySQL/MariaDB via
    PyMySQL, SQLite). One ``engine.begin()`` is one target transaction on every dialect
    (on SQLite see :func:`_one_transaction_per_begin`).

    ``read_only`` (verify, dry runs): the server refuses writes (Postgres and MySQL
    read-only sessions, SQLite ``mode=ro``); a SQLite file that does not exist is not
    created, it reads as an empty database."""
    url = normalize_url(url)
    if read_only and url.startswith("sqlite"):
        url = _read_only_sqlite(url)
    named = redact(url)  # as the user wrote it, for errors
    if url.startswith(("mysql://", "mariadb://")):
        url = "mysql+pymysql://" + url.split("://", 1)[1]
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError:
        raise ConfigError(f"not a database URL: {redact(url)}") from None
    options: dict[str, Any] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "mysql":
        options["connect_args"] = {"charset": "utf8mb4"}
    if read_only and parsed.get_backend_name() == "postgresql":
        options["connect_args"] = {"options": "-c default_transaction_read_only=on"}
    try:
        engine = create_engine(url, **options)
    except ImportError as error:  # the dialect's driver is an optional extra (PyMySQL)
        missing = missing_extra(error, f"a {parsed.get_backend_name()} target ({named})")
        if missing is None:
            raise
        raise missing from None
    if read_only and parsed.get_backend_name() == "mysql":
        event.listen(engine, "connect", _read_only_session)
    if parsed.get_backend_name() == "sqlite":
        _one_transaction_per_begin(engine)
    return engine


def _read_only_sqlite(url: str) -> str:
    path = sqlite_path(url)
    if not path.is_file():
        return "sqlite://"  # an empty in-memory database: every table reads as absent
    return f"sqlite:///file:{quote(str(path))}?mode=ro&uri=true"


def _read_only_session(dbapi_connection, _record) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET SESSION TRANSACTION READ ONLY")


def _one_transaction_per_begin(engine: Engine) -> None:
    """pysqlite opens a transaction only before a DML statement, so a SAVEPOINT issued
    first starts one of its own, and releasing it commits: rows written in a savepoint
    (COPY of fresh rows, fresh markers) were committed before the batch's markers.
    SQLAlchemy's documented remedy: let the driver issue nothing (``isolation_level =
    None``) and emit BEGIN when SQLAlchemy begins, so savepoints nest inside it."""

    @event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")


def marker_table(metadata: MetaData, schema: str | None = None) -> Table:
    return Table(
        MARKER_TABLE,
        metadata,
        Column("target", String(200), primary_key=True),
        Column("stream", String(200), primary_key=True),
        Column("record_key", String(255), primary_key=True),
        Column("version", Integer, nullable=False),
        Column("hash", String(64)),  # null: the record was deleted
        Column("run_id", BigInteger, nullable=False),
        Column("target_ref", Text),
        schema=schema,
    )


class Markers:
    """Marker rows of one target inside one target database."""

    def __init__(self, table: Table, target: str) -> None:
        self.table = table
        self.target = target

    COLUMNS = ("target", "stream", "record_key", "version", "hash", "run_id", "target_ref")

    def write(self, conn: Connection, outcomes: Iterable[Outcome], versions: dict, run_id: int) -> None:
        """Record outcomes; ``versions`` maps (stream, key) to (version, hash)."""
        rows = []
        for outcome in outcomes:
            version, digest = versions[(outcome.stream, outcome.key)]
            rows.append(
                (
                    self.target,
                    outcome.stream,
                    outcome.key,
                    version,
                    None if outcome.action in ("delete", "skip") else digest,
                    run_id,
                    outcome.target_ref_text or "null",
                )
            )
        fresh = [row for row, outcome in zip(rows, outcomes) if outcome.action == "insert"]
        others = [row for row, outcome in zip(rows, outcomes) if outcome.action != "insert"]
        self._upsert(conn, others)
        if fresh:  # new records have no marker yet: a plain COPY, upserted only on a clash
            try:
                with conn.begin_nested():
                    bulk_write(conn, self.table, self.COLUMNS, fresh)
            except (sa_exc.IntegrityError, psycopg.IntegrityError):
                self._upsert(conn, fresh)

    def _upsert(self, conn: Connection, rows: list[tuple]) -> None:
        bulk_write(
            conn,
            self.table,
            self.COLUMNS,
            rows,
            conflict=("target", "stream", "record_key"),
            update=self.COLUMNS[3:],
        )

    def of_runs(self, conn: Connection, run_ids: Iterable[int]) -> Iterator[dict[str, Any]]:
        """Markers written by these runs (those whose ledger records may be missing)."""
        table = self.table
        for chunk in chunks(sorted(set(run_ids))):
            rows = conn.execute(select(table).where(table.c.target == self.target, table.c.run_id.in_(chunk)))
            for row in rows:
                yield {
                    "stream": row.stream,
                    "key": row.record_key,
                    "version": row.version,
                    "hash": row.hash,
                    "run_id": row.run_id,
                    "target_ref": loads(row.target_ref) if row.target_ref else None,
                }

    def keys(self, conn: Connection, streams: Iterable[str]) -> set[tuple[str, str]]:
        table = self.table
        rows = conn.execute(
            select(table.c.stream, table.c.record_key).where(
                table.c.target == self.target,
                table.c.stream.in_(list(streams)),
                table.c.hash.is_not(None),
            )
        )
        return {tuple(row) for row in rows}

    def clear(self, conn: Connection, streams: Iterable[str] | None = None) -> None:
        condition = self.table.c.target == self.target
        if streams is not None:
            condition = and_(condition, self.table.c.stream.in_(list(streams)))
        conn.execute(delete(self.table).where(condition))


def classify_sql_error(error: Exception) -> type[ChatledgerError] | None:
    """Lost connections and timeouts are worth a retry; bad data is not. Covers errors
    wrapped by SQLAlchemy and psycopg's own (raised by COPY on a raw cursor)."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return TransientError
    if isinstance(error, (sa_exc.OperationalError, psycopg.OperationalError)):
        return TransientError
    permanent = (
        sa_exc.IntegrityError,
        sa_exc.DataError,
        sa_exc.ProgrammingError,
        psycopg.IntegrityError,
        psycopg.DataError,
        psycopg.ProgrammingError,
    )
    if isinstance(error, permanent):
        return PermanentError
    if isinstance(error, (ConnectionError, TimeoutError)):
        return TransientError
    return None


class SqlTarget:
    """What sinks writing one SQL database share (mix in before ``Sink``): the engine's
    lifetime, healing from markers, and SQL error classes. ``open`` sets ``engine``;
    ``markers`` is a :class:`Markers` or None (``markers = false``)."""

    engine: Engine | None = None
    markers: Markers | None = None

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None

    def classify(self, error: Exception) -> type[ChatledgerError] | None:
        return classify_sql_error(error)

    def written_tables(self) -> list[Table]:
        """The tables a run writes, for :meth:`check`: the marker table; sinks add theirs."""
        return [self.markers.table] if self.markers is not None else []

    def check(self) -> list[str]:
        """Dry runs: ``open`` (read-only: it connects, creates nothing), then ask the
        database whether each table a run writes can be written, or created where it is
        missing. Nothing is written."""
        with checking(self), self.engine.connect() as conn:
            problems, notes = table_rights(conn, self.written_tables())
        refuse(self, problems)
        return notes

    def marker_count(self) -> int | None:
        if self.markers is None or self.engine is None:
            return None
        table = self.markers.table
        with self.engine.connect() as conn:
            if not inspect(conn).has_table(table.name, schema=table.schema):
                return 0
            return conn.scalar(select(func.count()).select_from(table).where(table.c.target == self.target))

    def reconcile(self, run_ids: Iterable[int]) -> Iterator[dict[str, Any]]:
        if self.markers is None or self.engine is None:
            return iter(())
        with self.engine.connect() as conn:
            return iter(list(self.markers.of_runs(conn, run_ids)))


#: what a run does to the tables it writes
TABLE_RIGHTS = ("SELECT", "INSERT", "UPDATE", "DELETE")


def table_rights(conn: Connection, tables: list[Table]) -> tuple[list[str], list[str]]:
    """(problems, notes): rights a run needs on ``tables`` that the database refuses,
    and what could not be checked. Postgres answers through its privilege functions,
    MySQL/MariaDB through ``information_schema``'s grant tables, SQLite by the file's
    permissions."""
    dialect = conn.dialect.name
    missing = _missing_tables(conn, tables)
    if dialect == "postgresql":
        return _postgres_rights(conn, tables, missing), []
    if dialect == "mysql":
        return _mysql_rights(conn, tables, missing), []
    if dialect == "sqlite":
        return _sqlite_rights(conn), []
    notes = [f"{dialect}: write and create rights are not checked (only the connection and the tables)"]
    if missing:
        notes.append(f"tables a run creates: {', '.join(table.name for table in missing)}")
    return [], notes


def _missing_tables(conn: Connection, tables: list[Table]) -> list[Table]:
    inspector = inspect(conn)
    if conn.dialect.name != "mysql":
        return [table for table in tables if not inspector.has_table(table.name, schema=table.schema)]
    # MySQL's has_table runs DESCRIBE, refused to a user without SELECT on any table,
    # there or not; SHOW TABLES lists the tables the user holds a right on
    listed = {schema: set(inspector.get_table_names(schema=schema)) for schema in {t.schema for t in tables}}
    return [table for table in tables if table.name not in listed[table.schema]]


def _postgres_rights(conn: Connection, tables: list[Table], missing: list[Table]) -> list[str]:
    problems = []
    current = conn.scalar(text("SELECT current_schema()"))
    for table in tables:
        schema = table.schema or current
        if schema is None:
            return ["no schema of the search_path exists to create tables in"]
        name = f"{schema}.{table.name}"
        if table not in missing:
            refused = [
                right
                for right in TABLE_RIGHTS
                if not conn.scalar(
                    text(
                        "SELECT has_table_privilege("
                        "format('%I.%I', CAST(:schema AS text), CAST(:table AS text)), CAST(:right AS text))"
                    ),
                    {"schema": schema, "table": table.name, "right": right},
                )
            ]
            if refused:
                problems.append(f"no {', '.join(refused)} right on table {name}")
        elif conn.scalar(text("SELECT 1 FROM pg_namespace WHERE nspname = CAST(:s AS text)"), {"s": schema}):
            if not conn.scalar(
                text("SELECT has_schema_privilege(CAST(:s AS text), 'CREATE')"), {"s": schema}
            ):
                problems.append(f"table {name} is missing and there is no CREATE right on schema {schema}")
        elif not conn.scalar(text("SELECT has_database_privilege(current_database(), 'CREATE')")):
            problems.append(f"schema {schema} is missing and there is no CREATE right on the database")
    return problems


#: the rights the connected user holds on one table, as ``information_schema`` lists them
#: (ALL PRIVILEGES right by right): granted on every database (``*.*``), on databases whose
#: name matches the grant's pattern (``app.*``, ``app\_%.*``), or on the table. It shows a
#: user only its own grants, none of its roles' (:func:`_role_grants` reads those).
_MYSQL_HELD = text(
    "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = :grantee "
    "UNION SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES "
    "WHERE GRANTEE = :grantee AND :database LIKE TABLE_SCHEMA "
    "UNION SELECT PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES "
    "WHERE GRANTEE = :grantee AND TABLE_SCHEMA = :database AND TABLE_NAME = :table"
)


def _mysql_rights(conn: Connection, tables: list[Table], missing: list[Table]) -> list[str]:
    user, host = conn.scalar(text("SELECT CURRENT_USER()")).rsplit("@", 1)
    grantee = f"'{user}'@'{host}'"
    through_roles = _role_grants(conn)
    current = conn.scalar(text("SELECT DATABASE()"))
    problems = []
    for table in tables:
        database = table.schema or current
        if database is None:
            return ["the URL names no database to write in"]
        held = set(conn.scalars(_MYSQL_HELD, {"grantee": grantee, "database": database, "table": table.name}))
        held |= _granted(through_roles, database, table.name)
        name = f"{database}.{table.name}"
        if table in missing:
            if "CREATE" not in held:
                problems.append(
                    f"table {name} is missing and there is no CREATE right on database {database}"
                )
        elif refused := [right for right in TABLE_RIGHTS if right not in held]:
            problems.append(f"no {', '.join(refused)} right on table {name}")
    return problems


#: a line of SHOW GRANTS giving rights on tables: the rights, the database (a pattern) and table
_GRANT_LINE = re.compile(
    r"^GRANT (?P<rights>.+?) ON (?P<database>\*|`(?:[^`]|``)+`)\.(?P<table>\*|`(?:[^`]|``)+`) TO "
)
_COLUMN_LIST = re.compile(r"\s*\([^)]*\)")


def _role_grants(conn: Connection) -> list[tuple[set[str], str, str]]:
    """(rights, database pattern, table) granted to the user's current roles (MariaDB
    names them ``r``, MySQL 8 ```r`@`%```), from SHOW GRANTS FOR each. Column grants
    count for nothing here, nor do roles granted to these roles."""
    roles = conn.scalar(text("SELECT CURRENT_ROLE()"))
    if not roles or roles == "NONE":
        return []
    grants = []
    for role in roles.split(","):
        account = role.strip() if "`" in role else "`" + role.strip().replace("`", "``") + "`"
        for line in conn.scalars(text(f"SHOW GRANTS FOR {account}")):
            if found := _GRANT_LINE.match(line):
                rights = {
                    right.strip()
                    for right in _COLUMN_LIST.sub("(columns)", found["rights"]).split(",")
                    if "(columns)" not in right
                }
                if "ALL PRIVILEGES" in rights:
                    rights |= {*TABLE_RIGHTS, "CREATE"}
                grants.append((rights, _unquoted(found["database"]), _unquoted(found["table"])))
    return grants


def _unquoted(name: str) -> str:
    return name if name == "*" else name[1:-1].replace("``", "`")


def _granted(grants: list[tuple[set[str], str, str]], database: str, table: str) -> set[str]:
    return {
        right
        for rights, pattern, on in grants
        if (pattern == "*" or _like(pattern).fullmatch(database)) and on in ("*", table)
        for right in rights
    }


def _like(pattern: str) -> re.Pattern[str]:
    """A database grant's name pattern (``_`` one character, ``%`` any, ``\\`` escapes)."""
    parts, escaped = [], False
    for char in pattern:
        if escaped:
            parts.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            parts.append({"%": ".*", "_": "."}.get(char, re.escape(char)))
    return re.compile("".join(parts))


def _sqlite_rights(conn: Connection) -> list[str]:
    """A file and its folder this process can write (a new file: its folder)."""
    database = conn.engine.url.database or ""
    if database.startswith("file:"):  # a read-only URI of an existing file
        database = unquote(database[len("file:") :].split("?", 1)[0])
    if not database or database == ":memory:":
        return []  # the file does not exist yet (a read-only open reads it as empty)
    path = Path(database)
    writable = [p for p in (path, path.parent) if p.exists()]
    refused = [str(p) for p in writable if not os.access(p, os.W_OK)]
    return [f"{where} is not writable" for where in refused]
