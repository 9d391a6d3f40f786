"""Reading the chat export files people hold: what the export sources share.

The ``chatgpt``, ``claude``, ``openwebui`` and ``chatbotui`` sources read files a user
downloaded. What they have in common lives here, once:

- :func:`export_files` — the ``*.json`` / ``*.zip`` files named, or inside named folders;
- :class:`Package` — one input: a JSON file (with the files beside it) or a ZIP whose
  members are streamed, never extracted; unsafe member names are refused;
- :class:`JsonValues` — the elements of a top-level JSON array one at a time (memory
  holds one element, not the file), or the single top-level value;
- :func:`moment` — epoch seconds / milliseconds / microseconds / nanoseconds (told
  apart by magnitude) or ISO-8601 text as an aware UTC datetime;
- :func:`guess_mime` — a media type from a file name, the same on every machine;
- :func:`build_tree` — message parents checked: a missing parent or a link closing a
  loop re-roots the message and is reported; leaves; the newest leaf;
- :class:`ExportSource` — the source skeleton: one complete scope per file, the file's
  sha256 (with the reader version and the ``owner`` option) as its fingerprint, so an
  unchanged file is skipped; a file that cannot be read, or is another format, becomes a
  reject naming the file and the format it looks like, while the other files land.
"""

from __future__ import annotations

import abc
import codecs
import datetime as dt
import hashlib
import json
import math
import mimetypes
import os
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from ledger.canonical import canonical_bytes, sha256_hex
from ledger.errors import ChatledgerError, ConfigError
from ledger.formats import format_name, label
from ledger.records import Record, Reject
from ledger.source import Scope, Source

CHUNK = 1 << 20
_WHITESPACE = " \t\n\r"
_DRIVE = re.compile(r"^[A-Za-z]:")
_DECODER = json.JSONDecoder()


class ExportError(ChatledgerError):
    """An input file (or part of it) that cannot be read; the message names the file."""


def export_files(paths: Iterable[Path], suffixes: tuple[str, ...] = (".json", ".zip")) -> list[Path]:
    """Every file named, and every file with one of ``suffixes`` inside a named folder
    (recursively), sorted, each once."""
    found: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found.update(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
        elif path.is_file():
            found.add(path)
        else:
            raise ConfigError(f"{path}: no such file or folder")
    return sorted(p.resolve() for p in found)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def unsafe_member(name: str) -> str | None:
    """Why a ZIP member name may not be used, or None for a plain relative path."""
    if "\x00" in name:
        return "the name contains a NUL character"
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or _DRIVE.match(normalised):
        return "absolute path"
    if ".." in normalised.split("/"):
        return "'..' in the path would leave the export"
    return None


#: built-in suffix → type table only: the system's mime.types differs between machines,
#: and a guess that changed would change record hashes
_MIME = mimetypes.MimeTypes()


def guess_mime(filename: str | None) -> str | None:
    """The media type a file name suggests (Python's built-in table), or None."""
    return _MIME.guess_type(filename, strict=False)[0] if filename else None


def basename(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]


# -- one input file ------------------------------------------------------------------------


class Package:
    """A JSON file, or a ZIP read member by member. ``entries()`` are the names that can
    be opened: a ZIP's safe members, or a JSON file's own name and the files beside it
    (one folder level, symbolic links refused: an unpacked export keeps its attachments
    next to its JSON)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.refused: list[dict[str, str]] = []
        self.zip: zipfile.ZipFile | None = None
        if zipfile.is_zipfile(path):
            try:
                self.zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
                raise ExportError(f"{path}: not a readable ZIP ({exc})") from None

    @property
    def is_zip(self) -> bool:
        return self.zip is not None

    @cached_property
    def _entries(self) -> dict[str, Any]:
        if self.zip is not None:
            found = {}
            for info in self.zip.infolist():
                if info.is_dir():
                    continue
                reason = unsafe_member(info.filename)
                if reason:
                    self.refused.append({"entry": info.filename, "reason": f"refused: {reason}"})
                else:
                    found[info.filename] = info
            return found
        found = {}
        with os.scandir(self.path.parent) as listing:
            for entry in listing:
                if entry.is_symlink():
                    self.refused.append({"entry": entry.name, "reason": "refused: symbolic link"})
                elif entry.is_file(follow_symlinks=False):
                    found[entry.name] = entry.path
        return found

    def entries(self) -> list[str]:
        return sorted(self._entries)

    def named(self, *names: str, pattern: re.Pattern[str] | None = None) -> list[str]:
        """Entries whose base name is one of ``names`` or matches ``pattern``, in order.
        A plain JSON file is its own (only) match."""
        if self.zip is None:
            return [self.path.name]
        return [
            entry
            for entry in self.entries()
            if basename(entry) in names or (pattern is not None and pattern.fullmatch(basename(entry)))
        ]

    def sibling(self, name: str) -> str | None:
        """An entry with this base name (a ZIP member anywhere, or a file beside the JSON)."""
        for entry in self.entries():
            if basename(entry) == name:
                return entry
        return None

    def size(self, name: str) -> int:
        target = self._entries[name]
        return target.file_size if self.zip is not None else os.stat(target).st_size

    @contextmanager
    def stream(self, name: str) -> Iterator[BinaryIO]:
        try:
            if self.zip is not None:
                handle = self.zip.open(self._entries[name])
            else:
                handle = open(self.path if name == self.path.name else self._entries[name], "rb")  # noqa: SIM115 (closed below)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, KeyError) as exc:
            raise ExportError(f"{self.path}: {name} cannot be read: {exc}") from None
        with handle:
            yield handle

    def where(self, name: str) -> str:
        """How messages name an entry: ``file.zip!member`` or the file's path."""
        return f"{self.path}!{name}" if self.zip is not None else str(self.path)

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


# -- streaming JSON -------------------------------------------------------------------------


class JsonValues:
    """The values of a JSON document read from a binary stream: each element of a
    top-level array in turn (``is_array``), or the one top-level value.

    Memory holds one element plus a read chunk. Invalid JSON raises
    :class:`ExportError` naming the location and the character offset; the elements
    before it have been yielded already, so a truncated file still lands what it holds.
    UTF-8 with or without a byte-order mark.
    """

    def __init__(self, handle: BinaryIO, location: str, chunk: int = CHUNK) -> None:
        self.handle = handle
        self.chunk = chunk
        self.location = location
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.buffer = ""
        self.position = 0
        self.consumed = 0  # characters dropped from the front of the buffer
        self.eof = False
        self.is_array = self._peek() == "["

    def _fill(self, size: int | None = None) -> bool:
        if self.eof:
            return False
        data = self.handle.read(size or self.chunk)
        try:
            text = self.decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise ExportError(f"{self.location}: not UTF-8 text ({exc.reason})") from None
        self.consumed += self.position
        self.buffer = self.buffer[self.position :] + text
        self.position = 0
        self.eof = not data
        return True

    def _peek(self) -> str:
        """The next non-blank character ("" at the end), not consumed."""
        while True:
            while self.position < len(self.buffer) and self.buffer[self.position] in _WHITESPACE:
                self.position += 1
            if self.position < len(self.buffer):
                return self.buffer[self.position]
            if not self._fill():
                return ""

    def _fail(self, what: str) -> ExportError:
        at = self.consumed + self.position
        return ExportError(f"{self.location}: not valid JSON at character {at}: {what}")

    def _value(self) -> Any:
        size = self.chunk
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buffer, self.position)
            except json.JSONDecodeError as exc:
                if self._fill(size):
                    size *= 2  # a large element: read more at a time, parse fewer times
                    continue
                raise self._fail(exc.msg) from None
            if end == len(self.buffer) and self._fill(size):
                continue  # a number may go on in the next chunk
            self.position = end
            return value

    def __iter__(self) -> Iterator[Any]:
        if not self.is_array:
            if self._peek() == "":
                raise self._fail("the file is empty")
            yield self._value()
            self._expect_end()
            return
        self.position += 1
        if self._peek() == "]":
            self.position += 1
            self._expect_end()
            return
        while True:
            yield self._value()
            following = self._peek()
            self.position += 1
            if following == "]":
                self._expect_end()
                return
            if following != ",":
                self.position -= 1
                raise self._fail("expected ',' or ']' after an array element")
            self._peek()

    def _expect_end(self) -> None:
        if self._peek() != "":
            raise self._fail("unexpected data after the end of the document")


def json_document(handle: BinaryIO, location: str) -> Any:
    """A whole (small) JSON document; :class:`ExportError` naming the location if invalid."""
    values = JsonValues(handle, location)
    return list(values) if values.is_array else next(iter(values))


# -- times ---------------------------------------------------------------------------------


def moment(value: Any) -> dt.datetime | None:
    """An aware UTC datetime from epoch seconds, milliseconds, microseconds or
    nanoseconds (told apart by magnitude: an export never holds dates before 1973 in
    milliseconds) or from ISO-8601 text; None for what is none of these."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            return None
        seconds = float(value)
        for limit, scale in ((1e17, 1e9), (1e14, 1e6), (1e11, 1e3)):
            if abs(seconds) >= limit:
                seconds /= scale
                break
        try:
            return dt.datetime.fromtimestamp(seconds, dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value.strip():
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.astimezone(dt.UTC) if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None


# -- message trees ---------------------------------------------------------------------------


@dataclass
class MessageTree:
    """Checked parent links of one conversation's messages (ids in input order)."""

    order: list[str]
    parents: dict[str, str | None]
    #: id → the declared parent that was not used (missing, or it closed a loop)
    orphans: dict[str, str] = field(default_factory=dict)

    @cached_property
    def children(self) -> dict[str | None, list[str]]:
        out: dict[str | None, list[str]] = {}
        for node in self.order:
            out.setdefault(self.parents[node], []).append(node)
        return out

    def leaves(self) -> list[str]:
        return [node for node in self.order if not self.children.get(node)]

    def newest_leaf(self, times: dict[str, dt.datetime | None]) -> str | None:
        """The leaf with the latest time (input order breaks ties and stands in for
        missing times)."""
        leaves = self.leaves()
        if not leaves:
            return None
        position = {node: index for index, node in enumerate(self.order)}
        floor = dt.datetime.min.replace(tzinfo=dt.UTC)
        return max(leaves, key=lambda node: (times.get(node) or floor, position[node]))

    def path_to(self, leaf: str) -> list[str]:
        """Ids from the root down to ``leaf``."""
        path = []
        cursor: str | None = leaf
        while cursor is not None:
            path.append(cursor)
            cursor = self.parents[cursor]
        return path[::-1]


def build_tree(links: Iterable[tuple[str, str | None]]) -> MessageTree:
    """A :class:`MessageTree` from (id, declared parent) pairs; the first pair of an id
    wins. A parent that is not among the ids, or that would close a loop, is dropped (the
    message becomes a root) and reported in ``orphans``."""
    declared: dict[str, str | None] = {}
    for node, parent in links:
        declared.setdefault(node, parent or None)
    parents: dict[str, str | None] = {}
    orphans: dict[str, str] = {}
    for node, parent in declared.items():
        if parent is None:
            parents[node] = None
            continue
        # walk up (resolved links where known): coming back to ``node`` closes a loop,
        # which is broken here, at the first of its members in input order
        seen, cursor = {node}, parent
        while cursor is not None and cursor in declared and cursor not in seen:
            seen.add(cursor)
            cursor = parents[cursor] if cursor in parents else declared[cursor]
        if parent not in declared or cursor == node:
            parents[node] = None
            orphans[node] = parent
        else:
            parents[node] = parent
    return MessageTree(list(declared), parents, orphans)


# -- the source skeleton ------------------------------------------------------------------------

Items = list[Record | Reject]


class ExportSource(Source):
    """A source reading export files: one complete scope per file (``file:<path>``).

    Subclasses set ``type_name``, ``Options`` (with ``path: list[Path]`` and ``owner:
    str``), ``format_name`` (a :mod:`ledger.formats` name) and ``reader_version`` (bump
    it when the records made from the same file change), and implement
    :meth:`read_package`. An :class:`ExportError` raised while reading becomes a reject
    naming the file; what was read before it has landed, and, the reject having no key,
    nothing of the scope is deleted on that pass.
    """

    format_name: ClassVar[str]
    reader_version: ClassVar[int] = 1
    suffixes: ClassVar[tuple[str, ...]] = (".json", ".zip")
    exhaustive = True
    SCOPE_PREFIX = "file:"

    @cached_property
    def files(self) -> list[Path]:
        return export_files(self.options.path, self.suffixes)

    @cached_property
    def _digests(self) -> dict[Path, str]:
        return {}

    def digest_of(self, path: Path) -> str:
        """The file's sha256, computed once."""
        if path not in self._digests:
            self._digests[path] = file_sha256(path)
        return self._digests[path]

    def fingerprint(self, path: Path) -> str:
        token = [self.type_name, self.reader_version, self.digest_of(path), self.options.owner]
        return sha256_hex(canonical_bytes(token))

    def scopes(self) -> Iterator[Scope]:
        for path in self.files:
            yield Scope(self.SCOPE_PREFIX + str(path), True, self.fingerprint(path))

    def scope_count(self) -> int | None:
        return len(self.files)

    def describe(self) -> dict[str, Any]:
        return {"format": self.format_name, "files": [self.file_facts(path) for path in self.files]}

    def file_facts(self, path: Path) -> dict[str, Any]:
        return {"path": str(path), "bytes": path.stat().st_size, "sha256": self.digest_of(path)}

    def read(self, scope: Scope, cursor: Any = None) -> Iterator[tuple[Items, Any]]:
        path = Path(scope.name.removeprefix(self.SCOPE_PREFIX))
        try:
            package = Package(path)
        except ExportError as exc:
            yield [self._file_reject(path, exc)], None
            return
        try:
            for items in self.read_package(package):
                yield items, None
        except ExportError as exc:
            yield [self._file_reject(path, exc)], None
        finally:
            package.close()
        if package.refused:
            yield [Reject(f"{path}!{entry['entry']}", entry["reason"]) for entry in package.refused], None

    @staticmethod
    def _file_reject(path: Path, error: ExportError) -> Reject:
        """A reject for a file that could not be read (on): the location names the file."""
        return Reject(str(path), str(error).removeprefix(f"{path}: "))

    @abc.abstractmethod
    def read_package(self, package: Package) -> Iterator[Items]:
        """Chunks of records and rejects of one input (a chunk per conversation is right)."""

    # -- helpers for subclasses ------------------------------------------------------------

    def wrong_format(self, value: Any, where: str) -> ExportError:
        """The error for a file of another format, naming the one it looks like."""
        found = format_name(value)
        hint = f"; read it with the `{found}` source" if found and found != self.format_name else ""
        return ExportError(f"{where}: not {label(self.format_name)}; it looks like {label(found)}{hint}")

    def owner_id(self, named: str | None, where: str) -> str:
        """The owner's id: the one the file names, else the ``owner`` option."""
        if named:
            return named
        if self.options.owner:
            return self.options.owner
        raise ExportError(f"{where}: the file names no owner; set the `owner` option (an email or a name)")

    def owner_record(self, owner: str, raw: Any = None, **data: Any) -> Record:
        """The user record of an owner; an owner given by the option is its email when it
        looks like one, else its username."""
        is_email = "@" in owner
        fields = {
            "email": owner.strip().lower() if is_email else None,
            "name": None,
            "username": None if is_email else owner,
            "avatar_url": None,
            "created_at": None,
            "external_ids": {self.type_name: owner},
        }
        fields.update({name: value for name, value in data.items() if value is not None})
        return self.record("user", f"user:{owner}", fields, raw if raw is not None else {"owner": owner})
