"""Where a v1 user's chats are, read once into an on-disk index.

Inputs (``path``):

- a v1 backup ZIP (or the same files in a folder) with ``data.json`` (``version`` 1–5)
  and ``Data/Files/<id><ext>`` attachments;
- a bare ``data.json``, or a legacy ``.bak``: the same gzip-compressed (what v1's
  restore reads from a file not named ``.zip``: ``zlib.gunzip`` then ``JSON.parse``);
- a folder of the v2 migration exporters' files: ``topics.json``, ``message_blocks.json``
  (``files.json``), one JSON array per Dexie table as ``DexieExporter`` writes them, and
  the Redux ``assistants`` slice as ``ReduxExporter`` writes it (``assistants.json``, in
  the same folder or a ``redux/`` folder inside it or beside it);
- a v6 direct backup (``metadata.json`` + ``IndexedDB/`` + ``Local Storage/``): see
  :mod:`sources.cherry.v6`.

Memory stays flat as the input grows: ``data.json`` is parsed as a stream of events
(``ijson``), and every topic, block and file row goes into a temporary SQLite file the
moment it is complete. Reading a topic later fetches its row and its blocks by id.
"""

from __future__ import annotations

import gzip
import sqlite3
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import ijson
import orjson

from ledger.kit import ChatledgerError

PERSIST_KEY = "persist:cherry-studio"
GZIP_MAGIC = b"\x1f\x8b"
TABLES = ("topics", "message_blocks", "files")
EXPORTER_FILES = {"topics": "topics.json", "message_blocks": "message_blocks.json", "files": "files.json"}


class InputError(ChatledgerError):
    """The input is not one of the forms this source reads."""


@dataclass
class Attachments:
    """``Data/Files/<id><ext>`` bytes: in a ZIP or a folder."""

    zip: zipfile.ZipFile | None = None
    folder: Path | None = None
    names: set[str] = field(default_factory=set)

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes] | None]:
        if name not in self.names:
            yield None
        elif self.zip is not None:
            with self.zip.open(f"Data/Files/{name}") as handle:
                yield handle
        else:
            with open(self.folder / name, "rb") as handle:
                yield handle


class Index:
    """The input's rows by id in a temporary SQLite file (gone on ``close``)."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="chatledger-cherry-")
        self.db = sqlite3.connect(Path(self._dir.name) / "index.sqlite")
        self.db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
            "CREATE TABLE topics (position INTEGER PRIMARY KEY, id TEXT, listed INTEGER, body BLOB);"
            "CREATE TABLE message_blocks (id TEXT PRIMARY KEY, body BLOB);"
            "CREATE TABLE files (id TEXT PRIMARY KEY, body BLOB);"
            "CREATE TABLE message_ids (id TEXT, topic INTEGER);"
        )
        self.version: int | None = None
        self.time: Any = None
        self.persist: str | None = None  # localStorage['persist:cherry-studio'], still encoded
        self.assistants: dict[str, Any] | None = None  # the decoded slice, when given directly
        self.counts: dict[str, int] = {}
        self.other_tables: dict[str, int] = {}
        self.attachments = Attachments()
        self.format = "?"

    def add(self, table: str, row: Any) -> None:
        self.counts[table] = self.counts.get(table, 0) + 1
        body = orjson.dumps(row)
        if table == "topics":
            messages = row.get("messages") if isinstance(row, dict) else None
            cursor = self.db.execute(
                "INSERT INTO topics (id, listed, body) VALUES (?, ?, ?)",
                (row.get("id") if isinstance(row, dict) else None, isinstance(messages, list), body),
            )
            if isinstance(messages, list):
                self.db.executemany(
                    "INSERT INTO message_ids VALUES (?, ?)",
                    [(m.get("id"), cursor.lastrowid) for m in messages if isinstance(m, dict)],
                )
                for message in messages:  # pre-block messages hold their files themselves
                    if isinstance(message, dict) and isinstance(message.get("files"), list):
                        for file in message["files"]:
                            self._file_seen(file)
        elif isinstance(row, dict) and isinstance(row.get("id"), str):
            self.db.execute(f"INSERT OR REPLACE INTO {table} VALUES (?, ?)", (row["id"], body))
            if table == "message_blocks":
                self._file_seen(row.get("file"))

    def _file_seen(self, file: Any) -> None:
        """A file a block names: kept as a file row unless the files table has it."""
        if isinstance(file, dict) and isinstance(file.get("id"), str):
            body = orjson.dumps({**file, "_from_block": True})
            self.db.execute("INSERT OR IGNORE INTO files VALUES (?, ?)", (file["id"], body))

    def finish(self) -> None:
        self.db.execute("CREATE INDEX message_ids_id ON message_ids (id, topic)")
        self.db.commit()

    # -- reading -----------------------------------------------------------------------------

    def topic_ids(self) -> Iterator[tuple[int, str | None, bool]]:
        """(position, id, whether its messages are an array) of every topic row."""
        for position, ident, listed in self.db.execute(
            "SELECT position, id, listed FROM topics ORDER BY position"
        ):
            yield position, ident, bool(listed)

    def topic(self, position: int) -> Any:
        row = self.db.execute("SELECT body FROM topics WHERE position = ?", (position,)).fetchone()
        return orjson.loads(row[0]) if row else None

    def rows(self, table: str, ids: Iterable[str]) -> dict[str, Any]:
        wanted = sorted({i for i in ids if isinstance(i, str)})
        found: dict[str, Any] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for ident, body in self.db.execute(f"SELECT id, body FROM {table} WHERE id IN ({marks})", chunk):
                found[ident] = orjson.loads(body)
        return found

    def all_rows(self, table: str) -> Iterator[Any]:
        for (body,) in self.db.execute(f"SELECT body FROM {table} ORDER BY id"):
            yield orjson.loads(body)

    def first_topic_of(self, message_ids: Iterable[str]) -> dict[str, int]:
        """Message id → the position of the first topic holding it (for duplicate ids)."""
        out: dict[str, int] = {}
        wanted = sorted({i for i in message_ids if isinstance(i, str)})
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT id, MIN(topic) FROM message_ids WHERE id IN ({marks}) GROUP BY id"
            out.update(dict(self.db.execute(query, chunk)))
        return out

    def redux_slice(self, name: str) -> Any:
        """A Redux slice: decoded from the triple-encoded persist key, or as given."""
        if name == "assistants" and self.assistants is not None:
            return self.assistants
        if not self.persist:
            return None
        try:
            state = orjson.loads(self.persist)
            value = state.get(name) if isinstance(state, dict) else None
            return orjson.loads(value) if isinstance(value, str) else value
        except orjson.JSONDecodeError as exc:
            raise InputError(f"localStorage[{PERSIST_KEY!r}] is not JSON: {exc}") from None

    def close(self) -> None:
        self.db.close()
        self._dir.cleanup()


# -- building the index ----------------------------------------------------------------------


def build_index(path: Path) -> Index:
    index = Index()
    try:
        _fill(index, path)
        index.finish()
    except BaseException:
        index.close()
        raise
    return index


def _fill(index: Index, path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file or folder (expected a Cherry Studio backup or export)")
    if path.is_dir():
        if (path / "metadata.json").is_file() and (path / "IndexedDB").is_dir():
            from sources.cherry.v6 import read_direct_backup

            index.format = "direct-backup-v6"
            read_direct_backup(index, path)
        elif (path / "data.json").is_file():
            index.format = "backup-folder"
            with open(path / "data.json", "rb") as handle:
                read_data_json(index, handle, f"{path}/data.json")
        elif (path / "topics.json").is_file():
            index.format = "v2-exporter-json"
            _read_exporter_folder(index, path)
        else:
            raise InputError(
                f"{path}: no data.json, topics.json or metadata.json + IndexedDB/ (not a Cherry Studio "
                "backup, backup folder or migration export)"
            )
        files = path / "Data" / "Files"
        if files.is_dir():
            index.attachments = Attachments(
                folder=files, names={p.name for p in files.iterdir() if p.is_file()}
            )
        return
    if zipfile.is_zipfile(path):
        _read_zip(index, path)
        return
    with open(path, "rb") as handle:
        head = handle.read(64)
    if head.startswith(GZIP_MAGIC):  # a legacy .bak: data.json through zlib's gzip
        index.format = "backup-bak"
        try:
            with gzip.open(path, "rb") as handle:
                read_data_json(index, handle, f"{path} (gzip-compressed data.json)")
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"{path}: a gzip-compressed .bak that does not decompress: {exc}") from None
        return
    if not head.lstrip().startswith(b"{"):
        raise InputError(
            f"{path}: not a Cherry Studio backup: neither a ZIP, a gzip-compressed data.json (a legacy "
            f".bak) nor a JSON object (it starts with bytes {head[:8].hex(' ')})"
        )
    index.format = "data-json"
    with open(path, "rb") as handle:
        read_data_json(index, handle, str(path))


def _read_zip(index: Index, path: Path) -> None:
    archive = zipfile.ZipFile(path)
    names = set(archive.namelist())
    index.attachments = Attachments(
        zip=archive,
        names={
            n.removeprefix("Data/Files/")
            for n in names
            if n.startswith("Data/Files/") and not n.endswith("/")
        },
    )
    if "data.json" in names:
        index.format = "backup-zip"
        with archive.open("data.json") as handle:
            read_data_json(index, handle, f"{path}!data.json")
    elif "metadata.json" in names:
        from sources.cherry.v6 import read_direct_backup_zip

        index.format = "direct-backup-v6"
        read_direct_backup_zip(index, archive, path)
    else:
        raise InputError(f"{path}: a ZIP without data.json or metadata.json (not a Cherry Studio backup)")


def _read_exporter_folder(index: Index, path: Path) -> None:
    for table, name in EXPORTER_FILES.items():
        file = path / name
        if not file.is_file():
            continue
        with open(file, "rb") as handle:
            try:
                for row in ijson.items(handle, "item", use_float=True):
                    index.add(table, row)
            except ijson.JSONError as exc:
                raise InputError(f"{file}: not a JSON array of rows: {exc}") from None
    # the Redux exporter writes each slice as <its export folder>/<slice>.json, a folder
    # of its own beside the Dexie one (…/redux/assistants.json) or the same one
    for file in (
        path / "assistants.json",
        path / "redux" / "assistants.json",
        path.parent / "redux" / "assistants.json",
    ):
        if file.is_file():
            try:
                index.assistants = orjson.loads(file.read_bytes())
            except orjson.JSONDecodeError as exc:
                raise InputError(f"{file}: not JSON: {exc}") from None
            return


def read_data_json(index: Index, handle: IO[bytes], where: str) -> None:
    """Stream a legacy ``data.json``: rows of the tables this source reads go to the index
    as each is complete; the rest is counted, never held."""
    builder: ijson.ObjectBuilder | None = None
    building: tuple[str, str] | None = None  # (prefix, table)
    try:
        for prefix, event, value in ijson.parse(handle, use_float=True):
            if builder is not None:
                if prefix == building[0] and event in ("end_map", "end_array"):
                    builder.event(event, value)
                    _add_legacy_row(index, building[1], builder.value)
                    builder = building = None
                else:
                    builder.event(event, value)
                continue
            if prefix == "version" and event == "number":
                index.version = int(value)
            elif prefix == "time":
                index.time = value
            elif prefix == f"localStorage.{PERSIST_KEY}" and event == "string":
                index.persist = value
            elif prefix == "indexedDB.item" and event == "start_map":  # version 1: [{key, value}]
                builder, building = ijson.ObjectBuilder(), (prefix, "v1")
                builder.event(event, value)
            elif prefix.startswith("indexedDB.") and prefix.endswith(".item") and prefix.count(".") == 2:
                table = prefix.split(".")[1]
                if event in ("start_map", "start_array"):
                    builder, building = ijson.ObjectBuilder(), (prefix, table)
                    builder.event(event, value)
                else:
                    _add_legacy_row(index, table, value)
    except ijson.JSONError as exc:
        raise InputError(f"{where}: not valid JSON: {exc}") from None
    if index.version is None:
        raise InputError(f"{where}: no 'version' (not a Cherry Studio data.json)")


def _add_legacy_row(index: Index, table: str, row: Any) -> None:
    if table == "v1":  # {key: 'topic:<id>', value: {id, messages}}
        key = row.get("key") if isinstance(row, dict) else None
        if isinstance(key, str) and key.startswith("topic:"):
            index.add("topics", row.get("value"))
        else:
            name = "v1:" + (key.split(":")[0] if isinstance(key, str) else "?")
            index.other_tables[name] = index.other_tables.get(name, 0) + 1
        return
    if table in TABLES:
        index.add(table, row)
    else:
        index.other_tables[table] = index.other_tables.get(table, 0) + 1
