"""The ``sql`` sink: canonical tables in Postgres, MySQL/MariaDB or SQLite, for analytics
and compliance.

Tables (names take the optional ``prefix``; Postgres tables live in ``schema``):

| table | holds |
| --- | --- |
| ``users`` | email, name, username, avatar_url, created_at, external_ids |
| ``conversations`` | owner, title, times, assistant, model, system_prompt, pinned, archived, tags, active_leaf, metadata |
| ``messages`` | conversation, parent, role, author, model, times, status, text (the text parts joined), parts, files, sibling_group, usage, feedback |
| ``files`` | owner, filename, mime, size, sha256, blob, missing |
| ``records`` | every other kind (assistant, run, run_event, checkpoint) |

Every table also has ``stream``, ``key`` (the primary key), ``data``, ``raw`` and
``refs`` (JSON, verbatim) and the ledger ``version`` and ``hash`` the row was written
from. Timestamps are ``timestamptz`` on Postgres and RFC 3339 text on SQLite. The sink
creates its tables when they are missing. The unit is one record; a batch is one
transaction with its marker rows, and Postgres loads rows with COPY.

``replace --truncate`` empties exactly these five tables (and this target's markers).
Text columns cannot hold NUL characters on Postgres: they become U+FFFD there, while the
JSON columns keep the record verbatim.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    MetaData,
    Table,
    Text,
    and_,
    any_,
    delete,
    func,
    inspect,
    literal,
    select,
)
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.exc import IntegrityError

from ledger.kit import (
    COPY_NULL,
    Markers,
    Outcome,
    Sink,
    SqlTarget,
    Statistics,
    Unit,
    bulk_write,
    canonical_bytes,
    chunks,
    copy_json,
    copy_lines,
    copy_text,
    format_datetime,
    ledger_json,
    ledger_text,
    marker_table,
    option,
    redact,
    sha256_hex,
    target_engine,
)

# MySQL/MariaDB: TEXT holds 64 KB only (LONGTEXT: 4 GB), a TEXT primary key needs a length,
# and the default collation compares case-insensitively (keys are case-sensitive).
LongText = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
Json = LongText.with_variant(postgresql.JSON(), "postgresql")
Moment = LongText.with_variant(postgresql.TIMESTAMP(timezone=True), "postgresql")
Key = Text().with_variant(mysql.VARCHAR(255, collation="utf8mb4_bin"), "mysql", "mariadb")
Stream = Text().with_variant(mysql.VARCHAR(200, collation="utf8mb4_bin"), "mysql", "mariadb")
JSON, TIME, TEXT, BOOL, INT = "json", "time", "text", "bool", "int"
# exactly what format_datetime writes: no fraction, or 3 digits not .000, or 6 not ending 000
CANONICAL_MOMENT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.(?!000Z)\d{3}|\.\d{3}(?!000Z)\d{3})?Z\Z")
KEY_ARRAY = postgresql.ARRAY(Text)
_TYPES = {JSON: Json, TIME: Moment, TEXT: LongText, BOOL: Boolean, INT: BigInteger}
_KEY_TYPES = {"stream": Stream, "key": Key}

#: kind → (table, content columns as (name, type)); other kinds go to "records".
LAYOUT: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "user": (
        "users",
        [("email", TEXT), ("name", TEXT), ("username", TEXT), ("avatar_url", TEXT),
         ("created_at", TIME), ("external_ids", JSON)],
    ),
    "conversation": (
        "conversations",
        [("owner", TEXT), ("title", TEXT), ("created_at", TIME), ("updated_at", TIME),
         ("assistant", TEXT), ("model", TEXT), ("system_prompt", TEXT), ("pinned", BOOL),
         ("archived", BOOL), ("tags", JSON), ("active_leaf", TEXT), ("metadata", JSON)],
    ),
    "message": (
        "messages",
        [("conversation", TEXT), ("parent", TEXT), ("role", TEXT), ("author", TEXT),
         ("model", TEXT), ("created_at", TIME), ("updated_at", TIME), ("status", TEXT),
         ("text", TEXT), ("parts", JSON), ("files", JSON), ("sibling_group", INT),
         ("usage", JSON), ("feedback", JSON)],
    ),
    "file": (
        "files",
        [("owner", TEXT), ("filename", TEXT), ("mime", TEXT), ("size", INT), ("sha256", TEXT),
         ("blob", TEXT), ("missing", TEXT)],
    ),
}  # fmt: skip
OTHER = ("records", [("kind", TEXT), ("conversation", TEXT)])
_KIND_OF = {table: kind for kind, (table, _) in LAYOUT.items()}
COMMON_HEAD = [("stream", TEXT), ("key", TEXT)]
COMMON_TAIL = [("data", JSON), ("raw", JSON), ("refs", JSON), ("version", INT), ("hash", TEXT)]


@dataclass
class SqlOptions:
    url: str = option(help="Target database URL (postgresql://… or sqlite:///…).", secret=True)
    schema: str | None = option(None, help="Postgres schema for the tables (default: public).")
    prefix: str = option("", help="Prefix for the table names.")
    markers: bool = option(
        True, help="Keep the chatledger_markers table in the target (exactly-once after crashes)."
    )


def _layout(kind: str) -> tuple[str, list[tuple[str, str]]]:
    return LAYOUT.get(kind, OTHER)


def _text_of(parts: Any) -> str | None:
    if not isinstance(parts, list):
        return None
    texts = [part.get("text") for part in parts if isinstance(part, dict) and part.get("type") == "text"]
    return "\n\n".join(text for text in texts if isinstance(text, str)) or None


def _moment(value: Any) -> str | None:
    """RFC 3339 in the canonical form, or None for what is not a timestamp."""
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if not isinstance(value, str) or not value:
        return None
    if CANONICAL_MOMENT.match(value):  # what the canonical encoder writes: no reparse
        return value
    try:
        return format_datetime(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def _json(value: Any) -> str | None:
    return ledger_text(value) if value is not None else None


def _bool(value: Any) -> bool | None:
    return bool(value) if value is not None else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else ledger_text(value)


def _postgres_text(value: Any) -> str | None:
    """Postgres text cannot hold NUL."""
    text = _text(value)
    return text.replace("\x00", "\ufffd") if text is not None else None


#: column type → value → what is written (TEXT depends on the dialect)
_CONVERTERS: dict[str, Callable[[Any], Any]] = {JSON: _json, TIME: _moment, BOOL: _bool, INT: _int}


def _copy_json(value: Any) -> bytes:
    """JSON as a COPY field: encoded once, never decoded to text and encoded again."""
    return copy_json(ledger_json(value)) if value is not None else COPY_NULL


def _copy_bool(value: Any) -> bytes:
    return COPY_NULL if value is None else b"t" if value else b"f"


def _copy_int(value: Any) -> bytes:
    return b"%d" % value if isinstance(value, int) and not isinstance(value, bool) else COPY_NULL


#: column type → value → its field in a Postgres COPY line
_COPY_CONVERTERS: dict[str, Callable[[Any], bytes]] = {
    JSON: _copy_json,
    TIME: lambda value: copy_text(_moment(value)),
    BOOL: _copy_bool,
    INT: _copy_int,
    TEXT: lambda value: copy_text(_postgres_text(value)),
}
ROW, COPY = "row", "copy"  # the forms a row is made in


def _utf8(conn) -> bool:
    """COPY lines are UTF-8: the connection must be too (a SQL_ASCII database's is not)."""
    return conn.connection.driver_connection.info.encoding == "utf-8"


# Postgres fingerprints: each column as "<length>:<text>" ("-" for NULL), concatenated
# and hashed with sha256, computed by the server from the row and here from the row
# ``row`` writes. Times as UTC with microseconds, booleans as true/false, JSON as the
# text stored (an edit, even to equivalent JSON, is drift).
PG_MOMENT = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'


def _row_digest(table: Table, types: list[str]):
    """SQL for the hex sha256 of a row's text (Postgres)."""
    parts = []
    for column, type_ in zip(table.columns, types):
        text = func.to_char(func.timezone("UTC", column), PG_MOMENT) if type_ == TIME else column.cast(Text)
        parts.append(func.coalesce(func.length(text).cast(Text).op("||")(":").op("||")(text), "-"))
    return func.encode(func.sha256(func.convert_to(func.concat(*parts), "UTF8")), "hex")


def _row_text(types: list[str], values) -> str:
    """The text ``_row_digest`` hashes, from the values ``row`` writes."""
    parts = []
    for type_, value in zip(types, values):
        if value is None:
            parts.append("-")
            continue
        if type_ == TIME:
            text = _microseconds(value)
        elif type_ == BOOL:
            text = "true" if value else "false"
        else:
            text = str(value)
        parts.append(f"{len(text)}:{text}")
    return "".join(parts)


def _microseconds(moment: str) -> str:
    """A canonical RFC 3339 time with its fraction as six digits, as to_char's US."""
    seconds, _, fraction = moment[:-1].partition(".")
    return f"{seconds}.{fraction.ljust(6, '0')}Z"


class SqlSink(SqlTarget, Sink):
    type_name = "sql"
    Options = SqlOptions
    unit = "record"
    capabilities = frozenset({"transactions", "markers", "truncate", "branches", "verify"})

    def __init__(self, options: SqlOptions, context) -> None:
        super().__init__(options, context)
        self.engine = None
        self.copies_lines = False  # rows go as COPY text lines (Postgres, a UTF-8 connection)
        self.absent: set[str] = set()  # tables a read-only open did not find
        self._row_plans: dict[tuple[str, bool, str], list[tuple[str, Callable[[Any], Any]]]] = {}
        self.metadata = MetaData(schema=options.schema)
        # table name (unprefixed) → (Table, the type of each column in order)
        self.layout: dict[str, tuple[Table, list[str]]] = {}
        for name, columns in [*LAYOUT.values(), OTHER]:
            all_columns = [*COMMON_HEAD, *columns, *COMMON_TAIL]
            table = Table(
                options.prefix + name,
                self.metadata,
                *[
                    Column(column, _KEY_TYPES.get(column, _TYPES[kind]), primary_key=column in _KEY_TYPES)
                    for column, kind in all_columns
                ],
            )
            self.layout[name] = (table, [kind for _, kind in all_columns])
        self.markers = Markers(marker_table(self.metadata), self.target) if options.markers else None
        self.statistics = Statistics(
            [table for table, _ in self.layout.values()] + ([self.markers.table] if self.markers else []),
            keys_only=True,
        )

    # -- lifecycle ---------------------------------------------------------------------

    def describe(self) -> str:
        where = redact(self.options.url)
        return f"sql {where}" + (f" schema {self.options.schema}" if self.options.schema else "")

    def tables(self, kind: str) -> list[str]:
        return [self.options.prefix + _layout(kind)[0]]

    def written_tables(self) -> list[Table]:
        return [table for table, _ in self.layout.values()] + super().written_tables()

    def open(self) -> None:
        if self.engine is not None:
            return
        self.engine = target_engine(self.options.url, read_only=self.context.read_only)
        if self._postgres() and not self.context.read_only:
            with self.engine.connect() as conn:
                self.copies_lines = _utf8(conn)
        if self.context.read_only:  # verify, dry runs: create nothing; absent tables read empty
            present = set(inspect(self.engine).get_table_names(schema=self.options.schema))
            self.absent = {table.name for table, _ in self.layout.values()} - present
        else:
            self._create_tables()

    def _create_tables(self) -> None:
        if self.options.schema and self.engine.dialect.name == "postgresql":
            with self.engine.begin() as conn:
                quoted = self.engine.dialect.identifier_preparer.quote(self.options.schema)
                conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
        self.metadata.create_all(self.engine, checkfirst=True)

    # -- rows --------------------------------------------------------------------------

    def row(self, stream: str, key: str, document: dict[str, Any], version: int, digest: str) -> tuple:
        """The row of one record version, in the table's column order, as written."""
        data = document["data"]
        values: list[Any] = [stream, key]
        values += self._content(document, self._converters(document["kind"], ROW))
        values += [ledger_text(data), ledger_text(document.get("raw")), ledger_text(document.get("refs", []))]
        return (*values, version, digest)

    def copy_line(self, stream: str, key: str, document: dict[str, Any], version: int, digest: str) -> bytes:
        """:meth:`row` as a line of Postgres COPY text, each field formatted as it is
        converted (a replay formats a million of these)."""
        data = document["data"]
        fields = [copy_text(stream), copy_text(key)]
        fields += self._content(document, self._converters(document["kind"], COPY))
        # verbatim JSON, a missing raw included ("null", as :meth:`row` writes it)
        fields += [
            copy_json(ledger_json(value)) for value in (data, document.get("raw"), document.get("refs", []))
        ]
        fields += [b"%d" % version, copy_text(digest)]
        return b"\t".join(fields) + b"\n"

    @staticmethod
    def _content(document: dict[str, Any], converters: list[tuple[str, Callable[[Any], Any]]]) -> list:
        """The kind's content columns of a record, each converted."""
        data = document["data"]
        values = []
        for name, convert in converters:
            if name == "text":
                value = _text_of(data.get("parts"))
            elif name == "kind":
                value = document["kind"]
            else:
                value = data.get(name)
            values.append(convert(value))
        return values

    def _converters(self, kind: str, form: str) -> list[tuple[str, Callable[[Any], Any]]]:
        """(column, value → what is written) for a kind's content columns in a form
        (``ROW``, ``COPY``), worked out once per kind, dialect and form: rows are made
        for every record."""
        postgres = self._postgres()
        found = self._row_plans.get((kind, postgres, form))
        if found is None:
            by_type = (
                _COPY_CONVERTERS
                if form == COPY
                else {**_CONVERTERS, TEXT: _postgres_text if postgres else _text}
            )
            found = [(name, by_type[type_]) for name, type_ in _layout(kind)[1]]
            self._row_plans[(kind, postgres, form)] = found
        return found

    def prepare(self, units: list[Unit]) -> None:
        """Done ahead of the target (:meth:`prepared_of` of each record)."""
        for unit in units:
            for item in unit.items:
                if item.document is not None:
                    item.prepared = self.prepared_of(
                        item.stream, item.key, item.document, item.version, item.hash
                    )

    def record_preparer(self) -> Callable[[str, str, dict[str, Any], int, str], Any]:
        return self.prepared_of

    def prepared_of(self, stream: str, key: str, document: dict[str, Any], version: int, digest: str) -> Any:
        """What a record is made into ahead of the target: for verify (read-only) its
        fingerprint, for a Postgres replay its row as a COPY line, else its row."""
        if self.context.read_only:
            return self._fingerprint_of(document["kind"], self.row(stream, key, document, version, digest))
        if self.copies_lines:
            return self.copy_line(stream, key, document, version, digest)
        return self.row(stream, key, document, version, digest)

    def _postgres(self) -> bool:
        return self.engine is not None and self.engine.dialect.name == "postgresql"

    def _row_of(self, item) -> tuple:
        if isinstance(item.prepared, tuple):
            return item.prepared
        return self.row(item.stream, item.key, item.document, item.version, item.hash)

    @staticmethod
    def _read_value(type_: str, value: Any) -> Any:
        """A value read back, in the form ``row`` wrote it (JSON comes back as the text
        written; an edit that changes it, even to equivalent JSON, counts as drift)."""
        if type_ == TIME and isinstance(value, dt.datetime):
            return format_datetime(value)
        if type_ == BOOL and value is not None:
            return bool(value)  # SQLite gives 0/1
        return value

    # -- writing -----------------------------------------------------------------------

    def apply(self, units: list[Unit], run_id: int, *, truncate: bool = False) -> list[Outcome]:
        outcomes: list[Outcome] = []
        versions: dict[tuple[str, str], tuple[int, str | None]] = {}
        by_table: dict[str, list] = {}
        for unit in units:
            for item in unit.items:
                if not item.changed:
                    continue
                table = _layout(item.kind)[0]
                by_table.setdefault(table, []).append(item)
                versions[(item.stream, item.key)] = (item.version, item.hash)
        with self.engine.begin() as conn:
            if truncate:
                for table, _ in self.layout.values():
                    conn.execute(delete(table))
                if self.markers is not None:
                    self.markers.clear(conn)
            for name, items in by_table.items():
                table = self.layout[name][0]
                fresh = [i for i in items if i.held_hash is None and not i.removed and not truncate]
                known = [i for i in items if i.held_hash is not None or i.removed or truncate]
                self._clear(conn, table, known)
                self._write(conn, table, [i for i in known if not i.removed])
                self._write_fresh(conn, table, fresh)
                for item in items:
                    if item.removed:
                        if item.held_hash is None:
                            continue
                        action = "delete"
                    else:
                        action = "insert" if item.held_hash is None and not truncate else "update"
                    reference = {"table": table.name, "key": item.key}
                    outcomes.append(Outcome(item.stream, item.key, action, reference))
            if self.markers is not None:
                self.markers.write(conn, outcomes, versions, run_id)
            self.statistics.wrote(conn, len(outcomes))
        return outcomes

    def _write(self, conn, table: Table, items: list) -> None:
        columns = [column.name for column in table.columns]
        lines = [i.prepared for i in items if isinstance(i.prepared, bytes)]
        if lines and len(lines) == len(items):
            copy_lines(conn, table, columns, lines)
        else:
            bulk_write(conn, table, columns, [self._row_of(i) for i in items])

    def _write_fresh(self, conn, table: Table, items: list) -> None:
        """Records the target does not hold, by the ledger: COPY them straight in. Should
        rows be there anyway (a target written before this ledger existed, or a crash with
        markers off), the savepoint is rolled back and they are replaced."""
        if not items:
            return
        try:
            with conn.begin_nested():
                self._write(conn, table, items)
        except (IntegrityError, psycopg.IntegrityError):
            self.count("rows_replaced_unexpectedly", len(items))
            self._clear(conn, table, items)
            self._write(conn, table, items)

    def _clear(self, conn, table: Table, items: list) -> None:
        """Remove the rows these items replace (idempotent if they are absent)."""
        by_stream: dict[str, list[str]] = {}
        for item in items:
            by_stream.setdefault(item.stream, []).append(item.key)
        for stream, keys in by_stream.items():
            for chunk in chunks(keys):
                conn.execute(delete(table).where(and_(table.c.stream == stream, table.c.key.in_(chunk))))

    # -- verifying -----------------------------------------------------------------------

    def fingerprint(self, unit: Unit) -> str:
        item = unit.items[0]
        if isinstance(item.prepared, str):  # prepare made it
            return item.prepared
        return self._fingerprint_of(item.kind, self._row_of(item))

    def _fingerprint_of(self, kind: str, values: tuple) -> str:
        _, types = self.layout[_layout(kind)[0]]
        if self._digests_in_target():
            return sha256_hex(_row_text(types, values).encode())
        return self._digest(types, values)

    def _digests_in_target(self) -> bool:
        """Postgres computes each row's fingerprint itself (``_row_digest``): verify then
        fetches a key and a digest per row, not the row."""
        return self._postgres()

    def _digest(self, types: list[str], values) -> str:
        read = [self._read_value(type_, value) for type_, value in zip(types, values)]
        return sha256_hex(canonical_bytes(read))

    def _select(self, table: Table, types: list[str]):
        """The key and the row's digest on Postgres; elsewhere all columns, to digest here."""
        if self._digests_in_target():
            return select(table.c.key, _row_digest(table, types).label("digest"))
        return select(*table.columns)

    def read_back(self, units: list[Unit]) -> dict[str, str | None]:
        found: dict[str, str | None] = {unit.key: None for unit in units}
        wanted: dict[tuple[str, str], list[str]] = {}
        for unit in units:
            item = unit.items[0]
            wanted.setdefault((item.stream, _layout(item.kind)[0]), []).append(item.key)
        in_target = self._digests_in_target()
        with self.engine.connect() as conn:
            for (stream, name), keys in wanted.items():
                table, types = self.layout[name]
                if table.name in self.absent:
                    continue
                # Postgres: the batch's keys as one array parameter, one statement
                for chunk in [keys] if in_target else chunks(keys):
                    wanted_keys = (
                        table.c.key == any_(literal(list(chunk), KEY_ARRAY))
                        if in_target
                        else table.c.key.in_(chunk)
                    )
                    rows = conn.execute(
                        self._select(table, types).where(table.c.stream == stream, wanted_keys)
                    )
                    for row in rows:
                        found[row.key] = row.digest if in_target else self._digest(types, row)
        return found

    def count_by_kind(self, streams: list[str]) -> dict[str, int]:
        """One count per table (the primary key starts with the stream), by ``kind`` in
        ``records``; an absent table counts nothing."""
        counts: dict[str, int] = {}
        with self.engine.connect() as conn:
            for name, (table, _) in self.layout.items():
                if table.name in self.absent:
                    continue
                if name == OTHER[0]:
                    query = select(table.c.kind, func.count()).group_by(table.c.kind)
                else:
                    query = select(literal(_KIND_OF[name]), func.count())
                for kind, count in conn.execute(query.where(table.c.stream.in_(streams))):
                    counts[kind] = counts.get(kind, 0) + count
        for kind in self.kinds:  # a kind with no row left counts 0
            counts.setdefault(kind, 0)
        return counts

    def unexpected(self, streams: Iterable[str]) -> Iterator[tuple[str, str]]:
        streams = list(streams)
        with self.engine.connect() as conn:
            for table, _ in self.layout.values():
                if table.name in self.absent:
                    continue
                rows = conn.execute(select(table.c.stream, table.c.key).where(table.c.stream.in_(streams)))
                yield from (tuple(row) for row in rows)
