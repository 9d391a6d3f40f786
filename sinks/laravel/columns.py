"""What the target's columns can hold, read from the live database, and values made to fit.

Every string the sink writes goes through :meth:`Columns.fit`, so a value never fails a
batch on any dialect: it is cut to the column's length (characters for ``varchar(n)``;
bytes for MySQL's ``text``, which holds 64 KB) and the cut is counted as
``truncated_<table>_<column>``. SQLite enforces no lengths, so the same limits are taken
from the table definitions there: a SQLite target holds what Postgres would. Postgres
text cannot hold NUL characters; they become U+FFFD (``nul_replaced``).

Timestamps: the app's columns are ``timestamp(0)`` by Laravel's default (whole seconds;
Postgres *rounds* a fraction, MariaDB truncates it) but may hold fractions. Each
column's resolution is read from the database, and a millisecond time is floored to it
by the sink itself, so the stored value is the same on every dialect and verify can
predict it. MySQL's ``timestamp`` only spans 1970-01-01 00:00:01 to 2038-01-19 03:14:07 UTC:
times outside are clamped (``timestamps_clamped``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import Engine, MetaData, inspect
from sqlalchemy import types as satypes

from ledger.kit import parse_time

EPOCH = dt.datetime(1970, 1, 1)
MYSQL_TIMESTAMP_MS = (1000, 2_147_483_647_000)
MYSQL_TEXT_BYTES = {"TINYTEXT": 255, "TEXT": 65_535, "MEDIUMTEXT": 16_777_215}

Count = Callable[[str, int], None]


def _no_count(name: str, amount: int = 1) -> None:
    pass


class Columns:
    """Limits and resolutions of the target's columns (reflected once, at open)."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self.chars: dict[tuple[str, str], int] = {}
        self.bytes: dict[tuple[str, str], int] = {}
        self.resolution_ms: dict[tuple[str, str], int] = {}
        self.mysql_timestamps: set[tuple[str, str]] = set()

    @classmethod
    def reflect(cls, engine: Engine, declared: MetaData) -> Columns:
        columns = cls(engine.dialect.name)
        inspector = inspect(engine)
        present = set(inspector.get_table_names())
        # the markers table is absent until a run creates it (a dry run opens before)
        for table in (table for table in declared.sorted_tables if table.name in present):
            for column in inspector.get_columns(table.name):
                declared_column = table.c.get(column["name"])
                columns._learn(table.name, column["name"], column["type"], declared_column)
        return columns

    def _learn(self, table: str, name: str, type_: satypes.TypeEngine, declared) -> None:
        key = (table, name)
        kind = type(type_).__name__.upper()
        if isinstance(type_, satypes.DateTime) or "TIMESTAMP" in kind or "DATETIME" in kind:
            digits = (
                getattr(type_, "fsp", None) if self.dialect == "mysql" else getattr(type_, "precision", None)
            )
            if self.dialect == "sqlite":
                digits = 6  # text: holds any fraction
            elif digits is None:
                digits = 0 if self.dialect == "mysql" else 6
            self.resolution_ms[key] = 10 ** max(0, 3 - digits)
            if self.dialect == "mysql" and "TIMESTAMP" in kind:
                self.mysql_timestamps.add(key)
            return
        length = getattr(type_, "length", None)
        if length is None and self.dialect == "sqlite" and declared is not None:
            length = getattr(declared.type, "length", None)
        if (
            isinstance(length, int)
            and isinstance(type_, satypes.String)
            and not isinstance(type_, satypes.Text)
        ):
            self.chars[key] = length
        elif self.dialect == "mysql" and kind in MYSQL_TEXT_BYTES:
            self.bytes[key] = MYSQL_TEXT_BYTES[kind]

    # -- strings -----------------------------------------------------------------------------

    def fit(self, table: str, column: str, value: str | None, count: Count = _no_count) -> str | None:
        if value is None:
            return None
        if self.dialect == "postgresql" and "\x00" in value:
            value = value.replace("\x00", "\ufffd")
            count("nul_replaced", 1)
        key = (table, column)
        limit = self.chars.get(key)
        if limit is not None and len(value) > limit:
            count(f"truncated_{table}_{column}", 1)
            return value[:limit]
        limit = self.bytes.get(key)
        if limit is not None:
            encoded = value.encode("utf-8")
            if len(encoded) > limit:
                count(f"truncated_{table}_{column}", 1)
                return encoded[:limit].decode("utf-8", errors="ignore")
        return value

    def fits(self, table: str, column: str, value: str) -> bool:
        """Whether a value fits unchanged (for JSON, which must not be cut)."""
        limit = self.chars.get((table, column))
        if limit is not None and len(value) > limit:
            return False
        limit = self.bytes.get((table, column))
        return limit is None or len(value.encode("utf-8")) <= limit

    # -- times -------------------------------------------------------------------------------

    def resolution(self, table: str, column: str = "created_at") -> int:
        return self.resolution_ms.get((table, column), 1000)

    def floor(self, table: str, column: str, milliseconds: int, count: Count = _no_count) -> int:
        """Milliseconds as the column will hold them (floored to its resolution, clamped)."""
        if (table, column) in self.mysql_timestamps:
            low, high = MYSQL_TIMESTAMP_MS
            if not low <= milliseconds <= high:
                count("timestamps_clamped", 1)
                milliseconds = min(max(milliseconds, low), high)
        step = self.resolution(table, column)
        return milliseconds - milliseconds % step

    def moment(
        self, table: str, column: str, milliseconds: int | None, count: Count = _no_count
    ) -> dt.datetime | None:
        if milliseconds is None:
            return None
        return EPOCH + dt.timedelta(milliseconds=self.floor(table, column, milliseconds, count))


def utc_session(dbapi_connection, _record) -> None:
    """A ``connect`` hook for MySQL: ``timestamp`` values are converted with the session's
    time zone, and the app stores UTC."""
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET time_zone = '+00:00'")


def utc_now() -> dt.datetime:
    """Now, as the naive UTC the app's timestamp columns hold (whole seconds)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


def millis(value: dt.datetime | str | None) -> int | None:
    """A timestamp read back from the target as UTC milliseconds."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return (value - EPOCH) // dt.timedelta(milliseconds=1)


def canonical_ms(value: object) -> int | None:
    """A canonical timestamp (RFC 3339) as UTC milliseconds; None when it is not one."""
    moment = parse_time(value)
    if moment is None:
        return None
    return (moment.replace(tzinfo=None) - EPOCH) // dt.timedelta(milliseconds=1)
