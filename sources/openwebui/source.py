"""The ``openwebui`` source: Open WebUI chats from export files or from its database.

Inputs (either or both):

- ``path`` (repeatable; folders are searched for ``*.json``, ``*.zip``, ``*.db``,
  ``*.sqlite``, ``*.sqlite3``): "Export Chats" / "Export All Chats" files (a JSON array of
  chat rows; the per-chat ``chat-export-<ms>.json`` is the same with one element), a
  single chat row or bare chat document, a ZIP holding such files, or an Open WebUI
  SQLite database (``webui.db``, recognised by its SQLite header);
- ``db_url``: the database of a running Open WebUI (``postgresql://…`` or
  ``sqlite:///…``; secret, so give it as ``env:VAR``).

Scopes: one per export file (``file:<path>``, its sha256 as fingerprint); in a database,
one per owner (``db:<database>#<user_id>``, fingerprint: the owner's number of chats and
newest ``updated_at`` — a change that does not touch ``updated_at`` is seen by
``extract --full``). Rows of shared copies (``user_id`` ``shared-<chat id>``) are not
chats of their own and are skipped. The ``user`` table gives each owner's name, email
and avatar; an export file names owners only by ``user_id`` (and a bare chat not even
that: then the ``owner`` option). Mapping rules: :mod:`sources.openwebui.chat`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from ledger.kit import (
    ConfigError,
    ExportError,
    ExportSource,
    JsonValues,
    Package,
    Reject,
    Scope,
    digest,
    moment,
    option,
    redact,
    target_engine,
)
from sources.openwebui.chat import ChatReader, as_row

SQLITE_HEADER = b"SQLite format 3\x00"
DB_PREFIX = "db:"
SHARED_PREFIX = "shared-"


@dataclass
class OpenWebUIOptions:
    path: list[Path] = option(
        [], help="Export JSON files, ZIPs, webui.db SQLite files, or folders holding them."
    )
    db_url: str = option(
        "", help="The Open WebUI database (postgresql://… or sqlite:///…), as env:VAR.", secret=True
    )
    owner: str = option("", help="The owner (an email or a name) of chats that name no user_id.")


def is_sqlite(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER


class Database:
    """The ``chat`` and ``user`` tables, read with plain SQL so that column types never
    reinterpret values (old SQLite files declare DATETIME and store epoch seconds)."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name

    @staticmethod
    def of_file(path: Path) -> Database:
        uri = f"file:{path}?mode=ro"
        engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True))
        return Database(engine, str(path))

    @staticmethod
    def of_url(url: str) -> Database:
        return Database(target_engine(url), redact(url))

    def owners(self) -> list[tuple[str | None, int, Any]]:
        """(user_id, chats, newest updated_at) per owner."""
        query = text(
            "SELECT user_id, COUNT(*), MAX(updated_at) FROM chat "
            "WHERE user_id IS NULL OR user_id NOT LIKE :shared GROUP BY user_id ORDER BY user_id"
        )
        with self._connect() as conn:
            return [tuple(row) for row in conn.execute(query, {"shared": SHARED_PREFIX + "%"})]

    def chats(self, user_id: str | None) -> Iterator[dict[str, Any]]:
        where = "user_id IS NULL" if user_id is None else "user_id = :user"
        with self._connect() as conn:
            streamed = conn.execution_options(
                stream_results=True, yield_per=100
            )  # one owner's chats, 100 at a time
            result = streamed.execute(
                text(f"SELECT * FROM chat WHERE {where} ORDER BY id"), {"user": user_id}
            )
            for row in result.mappings():
                yield dict(row)

    def user(self, user_id: str) -> dict[str, Any] | None:
        try:
            with self._connect() as conn:
                row = (
                    conn.execute(text('SELECT * FROM "user" WHERE id = :id'), {"id": user_id})
                    .mappings()
                    .first()
                )
        except SQLAlchemyError:
            return None  # no user table (a partial copy): the owner is known by id only
        return dict(row) if row else None

    def _connect(self):
        try:
            return self.engine.connect()
        except SQLAlchemyError as exc:
            raise ExportError(
                f"{self.name}: cannot open the Open WebUI database: {redact(str(exc))}"
            ) from None

    def close(self) -> None:
        self.engine.dispose()


class OpenWebUISource(ExportSource):
    type_name = "openwebui"
    Options = OpenWebUIOptions
    format_name = "openwebui"
    reader_version = 1
    suffixes = (".json", ".zip", ".db", ".sqlite", ".sqlite3")

    def __init__(self, options: OpenWebUIOptions, context) -> None:
        super().__init__(options, context)
        if not options.path and not options.db_url:
            raise ConfigError("openwebui: set path (export files or webui.db) or db_url")
        self.reader = ChatReader(self.record, context.blobs.put_bytes, self.owner_id)

    @cached_property
    def databases(self) -> dict[str, Database]:
        found = {str(path): Database.of_file(path) for path in self.files if is_sqlite(path)}
        if self.options.db_url:
            database = Database.of_url(self.options.db_url)
            found[database.name] = database
        return found

    def scopes(self) -> Iterator[Scope]:
        for path in self.files:
            if str(path) not in self.databases:
                yield Scope(self.SCOPE_PREFIX + str(path), True, self.fingerprint(path))
        for name, database in self.databases.items():
            try:
                owners = database.owners()
            except SQLAlchemyError as exc:
                raise ExportError(
                    f"{name}: not an Open WebUI database (no readable chat table): {exc}"
                ) from None
            for user_id, count, newest in owners:
                token = digest(self.type_name, self.reader_version, count, str(newest), self.options.owner)
                yield Scope(f"{DB_PREFIX}{name}#{user_id or ''}", True, token)

    def read(self, scope: Scope, cursor: Any = None) -> Iterator[tuple[list, Any]]:
        if not scope.name.startswith(DB_PREFIX):
            yield from super().read(scope, cursor)
            return
        name, _, user_id = scope.name.removeprefix(DB_PREFIX).rpartition("#")
        database = self.databases[name]
        owner = user_id or None
        try:
            yield self._owner_items(database, owner), None
            for row in database.chats(owner):
                yield self.reader.items(row, f"{name} chat"), None
        except (ExportError, SQLAlchemyError) as exc:
            yield [Reject(scope.name, redact(str(exc)))], None

    def _owner_items(self, database: Database, user_id: str | None) -> list:
        owner = user_id or self.options.owner
        if not owner:
            return []  # each chat is rejected: no owner
        user = database.user(owner) if user_id else None
        if user is None:
            return [self.owner_record(owner)]
        return [
            self.owner_record(
                owner,
                {k: v for k, v in user.items() if k not in ("api_key", "password", "oauth_sub")},
                email=user["email"].lower() if isinstance(user.get("email"), str) else None,
                name=user.get("name"),
                username=user.get("username"),
                avatar_url=user.get("profile_image_url"),
                created_at=moment(user.get("created_at")),
            )
        ]

    def read_package(self, package: Package) -> Iterator[list]:
        owners: set[str] = set()
        members = [n for n in package.entries() if n.endswith(".json")] if package.is_zip else package.named()
        for member in members:
            where = package.where(member)
            with package.stream(member) as handle:
                for index, value in enumerate(JsonValues(handle, where)):
                    row = as_row(value)
                    if row is None:
                        if index == 0:
                            raise self.wrong_format(value, where)
                        yield [
                            Reject(f"{where}[{index}]", "not an Open WebUI chat (no chat or history)", value)
                        ]
                        continue
                    items = self.reader.items(row, f"{where}[{index}]")
                    owner = row.get("user_id") or self.options.owner
                    if owner and owner not in owners and not all(isinstance(i, Reject) for i in items):
                        owners.add(owner)
                        items.insert(0, self.owner_record(owner))
                    yield items

    def describe(self) -> dict[str, Any]:
        return super().describe() | {"databases": list(self.databases)}

    def file_facts(self, path: Path) -> dict[str, Any]:
        if str(path) in self.databases:  # a live database file: no checksum of it
            return {"path": str(path), "bytes": path.stat().st_size, "database": True}
        return super().file_facts(path)

    def close(self) -> None:
        for database in self.databases.values():
            database.close()
