"""A temporary on-disk index of the export's chat tables, grouped by owner and thread.

Convex writes each table whole (``messages/documents.jsonl`` holds every thread's
messages), while the ledger wants one scope per owner. Reading every table once per
owner would be quadratic, and holding them in memory would not stay flat. So each chat
table is streamed once, every document decoded (see :mod:`sources.convex.encoding`) and
stored in a temporary SQLite file with its thread; an owner's scope is then one indexed
query. The file lives in the system temp folder and is removed on ``close()``.

Lines that are not JSON, documents that cannot be decoded and documents without their
identifying field are kept as *bad rows* with the entry and line number, and become
rejects in the scope they belong to. A bad line whose owner cannot be told (its
``threadId`` is unreadable) makes the whole pass partial (see ``unattributed``).
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import tempfile
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from sources.convex.archive import ExportArchive
from sources.convex.encoding import DecodeError, TableDecoder

#: Source table → the field that identifies a document in it.
CHAT_TABLES = {
    "users": "userId",
    "threads": "threadId",
    "messages": "messageId",
    "runs": "runId",
    "receipts": "_id",
    "blueprints": "threadId",
    "messageParts": "messageId",
}
THREAD_TABLES = ("messages", "runs", "receipts", "blueprints", "messageParts")
STORAGE = "_storage"
_THREAD_FIELD = re.compile(rb'"threadId"\s*:\s*"([^"\\]{1,200})"')
_USER_FIELD = re.compile(rb'"userId"\s*:\s*"([^"\\]{1,200})"')
BATCH = 1000

SCHEMA = """
CREATE TABLE docs (tbl TEXT, thread_id TEXT, ident TEXT, sort_ms REAL, sort_creation REAL,
                   ordinal INTEGER, location TEXT, body BLOB);
CREATE INDEX docs_thread ON docs (thread_id, tbl, sort_ms, sort_creation, ordinal);
CREATE INDEX docs_ident ON docs (tbl, ident);
CREATE TABLE thread_owner (thread_id TEXT PRIMARY KEY, owner TEXT);
CREATE TABLE bad (tbl TEXT, location TEXT, reason TEXT, input TEXT, thread_id TEXT, user_id TEXT);
"""


@dataclass
class Doc:
    """A decoded document and where it came from."""

    table: str
    ident: str | None
    location: str
    body: dict[str, Any]


@dataclass
class Bad:
    table: str
    location: str
    reason: str
    input: str
    thread_id: str | None = None


@dataclass
class ThreadDocs:
    """Everything the export holds about one thread id."""

    thread_id: str
    threads: list[Doc] = field(default_factory=list)  # several: duplicates
    by_table: dict[str, list[Doc]] = field(default_factory=dict)

    def of(self, table: str) -> list[Doc]:
        return self.by_table.get(table, [])


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


class ExportIndex:
    """Built once per source (in the reader process); queried per scope."""

    def __init__(self, archive: ExportArchive) -> None:
        self.archive = archive
        self.folder = Path(tempfile.mkdtemp(prefix="chatledger-convex-"))
        self.db = sqlite3.connect(self.folder / "index.db")
        # removed on close(), or when the index is garbage-collected if a caller forgot
        self._cleanup = weakref.finalize(self, _remove, self.db, self.folder)
        self.db.executescript(SCHEMA)
        self.counts: dict[str, int] = {}
        self.invalid: dict[str, int] = {}
        self.problems: list[str] = []

    def close(self) -> None:
        self._cleanup()

    # -- building ------------------------------------------------------------------------

    def add_table(self, table: str, entry: str, decoder: TableDecoder) -> None:
        """Stream one table into the index (``table`` is the source table's short name)."""
        if decoder.problem:
            self.problems.append(f"{entry}: {decoder.problem}")
        self.counts.setdefault(table, 0)
        docs, bad = [], []
        for ordinal, (number, line) in enumerate(self.archive.lines(entry)):
            location = f"{entry}:{number}"
            item = self._document(table, decoder, location, line)
            if isinstance(item, Bad):
                bad.append(item)
                self.invalid[table] = self.invalid.get(table, 0) + 1
            else:
                docs.append((item, ordinal))
                self.counts[table] += 1
            if len(docs) >= BATCH:
                self._insert(docs)
                docs = []
        self._insert(docs)
        self.db.executemany(
            "INSERT INTO bad VALUES (?, ?, ?, ?, ?, ?)",
            [(b.table, b.location, b.reason, b.input, b.thread_id, self._user_of(b)) for b in bad],
        )

    @staticmethod
    def _user_of(bad: Bad) -> str | None:
        if bad.table != "users":
            return None
        found = _USER_FIELD.search(bad.input.encode())
        return found.group(1).decode() if found else None

    def _document(self, table: str, decoder: TableDecoder, location: str, line: bytes) -> Doc | Bad:
        text = line.decode("utf-8", errors="replace")
        salvaged = _THREAD_FIELD.search(line)
        thread = salvaged.group(1).decode("utf-8", errors="replace") if salvaged else None
        try:
            body = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            return Bad(
                table, location, f"not a JSON document (truncated or corrupt line): {exc}", text, thread
            )
        if not isinstance(body, dict):
            return Bad(table, location, "a line that is not a JSON object", text, thread)
        try:
            body = decoder.decode(body)
        except DecodeError as exc:
            return Bad(table, location, f"cannot be decoded: {exc}", text, thread)
        ident = body.get(CHAT_TABLES.get(table, "_id"))
        if table in CHAT_TABLES and not (isinstance(ident, str) and ident.strip()):
            field_name = CHAT_TABLES[table]
            return Bad(table, location, f"a {table} document without {field_name}", text, thread)
        if table in (*THREAD_TABLES, "threads") and not isinstance(body.get("threadId"), str):
            return Bad(table, location, f"a {table} document without threadId", text, thread)
        return Doc(table, ident.strip() if isinstance(ident, str) else None, location, body)

    def _insert(self, docs: list[tuple[Doc, int]]) -> None:
        rows = []
        owners = []
        for doc, ordinal in docs:
            body = doc.body
            thread = body.get("threadId") if isinstance(body.get("threadId"), str) else None
            sort = body.get("seq") if doc.table == "messageParts" else body.get("createdAtMs")
            if doc.table == "blueprints":
                sort = body.get("updatedAtMs")
            rows.append(
                (
                    doc.table,
                    thread,
                    doc.ident,
                    _number(sort),
                    _number(body.get("_creationTime")),
                    ordinal,
                    doc.location,
                    orjson.dumps(body),
                )
            )
            if doc.table == "threads":
                owner = body.get("ownerId")
                owners.append(
                    (doc.ident, owner.strip() if isinstance(owner, str) and owner.strip() else None)
                )
        self.db.executemany("INSERT INTO docs VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        # later documents of the same thread win, as in the original importer
        self.db.executemany("INSERT OR REPLACE INTO thread_owner VALUES (?, ?)", owners)

    # -- querying -------------------------------------------------------------------------

    def owners(self) -> list[str]:
        rows = self.db.execute(
            "SELECT ident FROM docs WHERE tbl = 'users' "
            "UNION SELECT owner FROM thread_owner WHERE owner IS NOT NULL "
            "UNION SELECT user_id FROM bad WHERE user_id IS NOT NULL ORDER BY 1"
        )
        return [row[0] for row in rows]

    def unattributed(self) -> int:
        """Bad lines whose owner cannot be told: they might belong to any scope."""
        return self.db.execute(
            "SELECT count(*) FROM bad WHERE user_id IS NULL AND (thread_id IS NULL OR "
            "thread_id NOT IN (SELECT thread_id FROM thread_owner))"
        ).fetchone()[0]

    def docs(self, sql: str, *params: Any) -> list[Doc]:
        return [
            Doc(table, ident, location, orjson.loads(body))
            for table, ident, location, body in self.db.execute(sql, params)
        ]

    def users(self, owner: str) -> list[Doc]:
        return self.docs(
            "SELECT tbl, ident, location, body FROM docs WHERE tbl = 'users' AND ident = ? ORDER BY ordinal",
            owner,
        )

    def owned_threads(self, owner: str | None) -> list[str]:
        if owner is not None:
            rows = self.db.execute(
                "SELECT thread_id FROM thread_owner WHERE owner = ? ORDER BY thread_id", (owner,)
            )
        else:
            marks = ", ".join("?" for _ in THREAD_TABLES)
            rows = self.db.execute(
                "SELECT thread_id FROM thread_owner WHERE owner IS NULL UNION "
                f"SELECT DISTINCT thread_id FROM docs WHERE tbl IN ({marks}) AND thread_id NOT IN "
                "(SELECT thread_id FROM thread_owner) ORDER BY 1",
                THREAD_TABLES,
            )
        return [row[0] for row in rows]

    def thread(self, thread_id: str) -> ThreadDocs:
        found = ThreadDocs(thread_id)
        for doc in self.docs(
            "SELECT tbl, ident, location, body FROM docs WHERE thread_id = ? "
            "ORDER BY tbl, sort_ms, sort_creation, ordinal",
            thread_id,
        ):
            if doc.table == "threads":
                found.threads.append(doc)
            else:
                found.by_table.setdefault(doc.table, []).append(doc)
        found.threads.sort(key=lambda doc: _ordinal(doc.location))
        return found

    def bad_rows(self, owner: str | None) -> list[Bad]:
        """Bad rows that belong to an owner's scope (None: the ownerless scope)."""
        if owner is not None:
            sql = (
                "SELECT tbl, location, reason, input, thread_id FROM bad WHERE user_id = ? OR "
                "thread_id IN (SELECT thread_id FROM thread_owner WHERE owner = ?) ORDER BY location"
            )
            params: tuple = (owner, owner)
        else:
            sql = (
                "SELECT tbl, location, reason, input, thread_id FROM bad WHERE user_id IS NULL AND "
                "(thread_id IS NULL OR thread_id NOT IN "
                "(SELECT thread_id FROM thread_owner WHERE owner IS NOT NULL)) ORDER BY location"
            )
            params = ()
        return [Bad(*row) for row in self.db.execute(sql, params)]


def _remove(db: sqlite3.Connection, folder: Path) -> None:
    db.close()
    shutil.rmtree(folder, ignore_errors=True)


def _ordinal(location: str) -> int:
    return int(location.rpartition(":")[2])
