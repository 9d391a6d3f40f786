"""Reading a mongodump folder (``<collection>.bson``, optionally ``.bson.gz``) with
pymongo's ``bson`` module, in flat memory.

A dump is one file per collection, in no useful order, and the source reads it one user
at a time. So the first read builds an index on disk: one pass over each file records,
per document, its user, conversationId, creation time, ``_id`` and byte offset in a
temporary SQLite database (gzip files are first decompressed into a temporary file).
Reading a user's conversation then seeks to exactly its documents. Memory holds one
conversation at a time, whatever the dump's size.

Damage: a file whose BSON framing breaks (a truncated copy) is read up to the break and
reported; a document that does not decode is skipped and reported. Either way no scope
of that pass is complete, so nothing is deleted because of a damaged dump.

The fingerprint is the sha256 of every collection file read, so an unchanged dump is
not read again.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import bson
from bson.errors import BSONError

from ledger.kit import ConfigError, Reject, printable_path
from sources.librechat.native import created, id_text, json_safe
from sources.librechat.store import Bundle, Store

COLLECTIONS = ("users", "conversations", "messages", "files", "sharedlinks")
CODEC = bson.CodecOptions(tz_aware=True)
MAX_DOCUMENT = 48 * 1024 * 1024  # MongoDB's limit is 16 MiB; anything far above is corrupt
SCHEMA = """
CREATE TABLE users (uid TEXT, email TEXT, oid TEXT, seq INTEGER, pos INTEGER, size INTEGER);
CREATE TABLE conversations (uid TEXT, cid TEXT, created REAL, oid TEXT, seq INTEGER, pos INTEGER, size INTEGER);
CREATE TABLE messages (uid TEXT, cid TEXT, created REAL, oid TEXT, seq INTEGER, pos INTEGER, size INTEGER);
CREATE TABLE files (file_id TEXT, seq INTEGER, pos INTEGER, size INTEGER);
CREATE TABLE sharedlinks (uid TEXT, cid TEXT, share_id TEXT);
"""
INDEXES = """
CREATE INDEX users_by_id ON users (uid);
CREATE INDEX conversations_by_user ON conversations (uid, created, cid, oid, seq);
CREATE INDEX messages_by_conversation ON messages (uid, cid, created, oid, seq);
CREATE INDEX files_by_id ON files (file_id, seq);
CREATE INDEX sharedlinks_by_user ON sharedlinks (uid);
"""


class Damaged(Exception):
    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(reason)
        self.offset = offset
        self.reason = reason


def frames(handle: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(offset, document bytes) of each BSON document in a stream; Damaged at a break."""
    offset = 0
    while True:
        head = handle.read(4)
        if not head:
            return
        length = int.from_bytes(head, "little") if len(head) == 4 else 0
        if len(head) < 4 or not 5 <= length <= MAX_DOCUMENT:
            raise Damaged(offset, f"invalid BSON document length at byte {offset}")
        body = handle.read(length - 4)
        if len(body) < length - 4:
            raise Damaged(offset, f"truncated BSON document at byte {offset}")
        yield offset, head + body
        offset += length


def find_folder(path: Path, database: str) -> Path:
    """The folder holding the collection files: ``<path>/<database>`` or ``path``."""
    for candidate in (path / database, path):
        if any(
            (candidate / f"{name}.bson{suffix}").is_file() for name in COLLECTIONS for suffix in ("", ".gz")
        ):
            return candidate
    raise ConfigError(f"librechat: {path} is not a mongodump folder (no {database}/*.bson or *.bson files)")


class DumpStore(Store):
    kind = "mongodump"

    def __init__(self, path: Path, database: str) -> None:
        self.folder = find_folder(path, database)
        self.paths: dict[str, Path] = {}
        for name in COLLECTIONS:
            for suffix in (".bson", ".bson.gz"):
                if (self.folder / f"{name}{suffix}").is_file():
                    self.paths[name] = self.folder / f"{name}{suffix}"
        if "users" not in self.paths:
            raise ConfigError(f"librechat: the dump {self.folder} has no users.bson (emails come from it)")
        self._digests: dict[str, dict[str, Any]] | None = None
        self._damage: list[Reject] = []
        self._work: tempfile.TemporaryDirectory | None = None
        self._index: sqlite3.Connection | None = None
        self._handles: dict[str, BinaryIO] = {}

    # -- whole-file facts -----------------------------------------------------------------

    def _open(self, name: str) -> BinaryIO:
        path = self.paths[name]
        return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")

    def digests(self) -> dict[str, dict[str, Any]]:
        """Per collection file: name, bytes, sha256; the framing is checked on the way."""
        if self._digests is None:
            self._digests = {}
            for name, path in sorted(self.paths.items()):
                digest = hashlib.sha256()
                with open(path, "rb") as handle:
                    while chunk := handle.read(1 << 20):
                        digest.update(chunk)
                self._digests[name] = {
                    "file": path.name,
                    "bytes": path.stat().st_size,
                    "sha256": digest.hexdigest(),
                }
                self._check_framing(name)
        return self._digests

    def _check_framing(self, name: str) -> None:
        try:
            with self._open(name) as handle:
                for _ in frames(handle):
                    pass
        except Damaged as exc:
            self._report(name, exc.offset, exc.reason)
        except (OSError, EOFError) as exc:  # gzip errors: bad magic, truncated stream
            self._report(name, 0, f"cannot be read: {exc}")

    def _report(self, name: str, offset: int, reason: str, document: Any = None) -> None:
        where = f"{self.paths[name].name} at byte {offset}"
        if not any(reject.location == where for reject in self._damage):
            self._damage.append(Reject(where, reason, document))

    def fingerprint(self) -> str:
        body = repr(sorted((name, facts["sha256"]) for name, facts in self.digests().items()))
        return hashlib.sha256(body.encode()).hexdigest()

    def damage(self) -> list[Reject]:
        return list(self._damage)

    def describe(self) -> dict[str, Any]:
        return {
            "input": "mongodump",
            "folder": printable_path(self.folder),
            "files": list(self.digests().values()),
            "missing_collections": [name for name in COLLECTIONS if name not in self.paths],
        }

    # -- the index ------------------------------------------------------------------------

    def _documents(self, name: str) -> Iterator[tuple[int, int, dict[str, Any]]]:
        """(offset, size, document) of the collection's data file, damage reported."""
        handle = self._data_file(name)
        handle.seek(0)
        try:
            for offset, data in frames(handle):
                try:
                    yield offset, len(data), bson.decode(data, codec_options=CODEC)
                except (BSONError, ValueError, OverflowError) as exc:
                    self._report(name, offset, f"document does not decode: {exc}")
        except Damaged as exc:
            self._report(name, exc.offset, exc.reason)

    def _data_file(self, name: str) -> BinaryIO:
        """An open, seekable file of the collection's BSON (a gzip file decompressed first)."""
        if name not in self._handles:
            path = self.paths[name]
            if path.suffix == ".gz":
                spooled = Path(self._workdir()) / f"{name}.bson"
                try:
                    with gzip.open(path, "rb") as source, open(spooled, "wb") as target:
                        shutil.copyfileobj(source, target, 1 << 20)
                except (OSError, EOFError):
                    pass  # the readable part is indexed; _check_framing reported the damage
                path = spooled
            self._handles[name] = open(path, "rb")  # noqa: SIM115 (kept open for offset reads; closed in close())
        return self._handles[name]

    def _workdir(self) -> str:
        if self._work is None:
            self._work = tempfile.TemporaryDirectory(prefix="chatledger-librechat-")
        return self._work.name

    @property
    def index(self) -> sqlite3.Connection:
        if self._index is None:
            self.digests()
            connection = sqlite3.connect(Path(self._workdir()) / "index.sqlite")
            connection.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;" + SCHEMA)
            for name, rows in self._index_rows():
                columns = {"users": 6, "conversations": 7, "messages": 7, "files": 4, "sharedlinks": 3}[name]
                marks = ", ".join("?" * columns)
                connection.executemany(f"INSERT INTO {name} VALUES ({marks})", rows)
            connection.executescript(INDEXES)
            connection.commit()
            self._index = connection
        return self._index

    def _index_rows(self) -> Iterator[tuple[str, Iterator[tuple]]]:
        for name in COLLECTIONS:
            if name in self.paths:
                yield name, self._rows(name)

    def _rows(self, name: str) -> Iterator[tuple]:
        for seq, (offset, size, document) in enumerate(self._documents(name)):
            oid = id_text(document.get("_id")) or ""
            if name == "users":
                email = document.get("email")
                yield oid, email.lower() if isinstance(email, str) else None, oid, seq, offset, size
            elif name in ("conversations", "messages"):
                moment = created(document)
                when = moment.timestamp() if moment else 0.0
                cid = document.get("conversationId")
                yield (
                    id_text(document.get("user")),
                    str(cid) if cid is not None else None,
                    when,
                    oid,
                    seq,
                    offset,
                    size,
                )
            elif name == "files":
                yield document.get("file_id"), seq, offset, size
            else:
                yield (
                    id_text(document.get("user")),
                    str(document.get("conversationId")),
                    str(document.get("shareId")),
                )

    def _read(self, name: str, offset: int, size: int) -> dict[str, Any]:
        handle = self._data_file(name)
        handle.seek(offset)
        return bson.decode(handle.read(size), codec_options=CODEC)

    # -- the Store interface ----------------------------------------------------------------

    def users(self, emails: set[str] | None) -> Iterator[dict[str, Any]]:
        """Straight from users.bson (small), without building the index."""
        self.digests()
        with self._open("users") as handle:
            try:
                for _, data in frames(handle):
                    try:
                        document = bson.decode(data, codec_options=CODEC)
                    except (BSONError, ValueError, OverflowError):
                        continue  # reported when the index is built
                    email = document.get("email")
                    if emails is None or (isinstance(email, str) and email.lower() in emails):
                        yield document
            except Damaged:
                return

    def user(self, user_id: str) -> dict[str, Any] | None:
        row = self.index.execute(
            "SELECT pos, size FROM users WHERE uid = ? ORDER BY seq LIMIT 1", (user_id,)
        ).fetchone()
        return self._read("users", *row) if row else None

    def conversations(self, user_id: str, start: int) -> Iterator[Bundle | Reject]:
        rows = self.index.execute(
            "SELECT cid, pos, size FROM conversations WHERE uid = ? ORDER BY created, cid, oid, seq LIMIT -1 OFFSET ?",
            (user_id, start),
        ).fetchall()  # a user's conversation list: ids and offsets only
        for index, (cid, offset, size) in enumerate(rows, start):
            document = self._read("conversations", offset, size)
            location = f"{self.paths['conversations'].name} _id {id_text(document.get('_id'))}"
            if cid is None:
                yield Reject(location, "conversation has no conversationId", json_safe(document))
                continue
            messages = (
                [
                    self._read("messages", pos, length)
                    for pos, length in self.index.execute(
                        "SELECT pos, size FROM messages WHERE uid = ? AND cid = ? ORDER BY created, oid, seq",
                        (user_id, cid),
                    )
                ]
                if "messages" in self.paths
                else []
            )
            yield Bundle(index, document, messages, location)

    def stray_conversations(self, user_id: str, known: set[str]) -> dict[str, int]:
        if "messages" not in self.paths:
            return {}
        rows = self.index.execute(
            "SELECT cid, count(*) FROM messages WHERE uid = ? GROUP BY cid ORDER BY cid", (user_id,)
        )
        return {cid: count for cid, count in rows if cid not in known}

    def files(self, file_ids: list[str]) -> dict[str, dict[str, Any]]:
        if "files" not in self.paths or not file_ids:
            return {}
        found = {}
        for file_id in file_ids:
            row = self.index.execute(
                "SELECT pos, size FROM files WHERE file_id = ? ORDER BY seq LIMIT 1", (file_id,)
            ).fetchone()
            if row:
                found[file_id] = self._read("files", *row)
        return found

    def shares(self, user_id: str) -> dict[str, list[str]]:
        if "sharedlinks" not in self.paths:
            return {}
        found: dict[str, list[str]] = {}
        for cid, share_id in self.index.execute(
            "SELECT cid, share_id FROM sharedlinks WHERE uid = ?", (user_id,)
        ):
            found.setdefault(cid, []).append(share_id)
        return {cid: sorted(ids) for cid, ids in found.items()}

    def close(self) -> None:
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()
        if self._index is not None:
            self._index.close()
            self._index = None
        if self._work is not None:
            self._work.cleanup()
            self._work = None
