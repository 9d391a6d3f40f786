"""The export as a set of named entries: a ZIP, or the same files unpacked in a folder.

Security: entries are never extracted to disk by their names. They are streamed out of
the ZIP, and names that try to leave the export (``..``, absolute paths, drive letters,
backslash tricks, NUL) are refused: listed in ``refused`` with the reason and never
opened. A folder is walked without following symbolic links; a file name that is not
UTF-8 is refused the same way (named with ``\\xNN`` escapes). A ZIP that cannot be read
raises a :class:`~ledger.errors.ChatledgerError` naming the file (and the entry), never a
traceback.
"""

from __future__ import annotations

import abc
import hashlib
import os
import re
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO

from ledger.kit import ChatledgerError, name_problem, printable_path

CHUNK = 1 << 20
MAX_LINE = 64 << 20  # bytes; Convex documents are at most 1 MiB
_DRIVE = re.compile(r"^[A-Za-z]:")
_CONTENT = re.compile(rb"\S")  # the ASCII whitespace ``bytes.strip`` removes is \s


def _content_lines(block: bytes, number: int) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of the lines of ``block`` that are not blank; ``number`` is
    the number of its first line. Each byte is scanned a bounded number of times."""
    position = 0
    while found := _CONTENT.search(block, position):
        start = block.rfind(b"\n", position, found.start()) + 1
        end = block.find(b"\n", found.start())
        end = len(block) if end < 0 else end
        number += block.count(b"\n", position, start)
        yield number, block[start:end].rstrip(b"\r")
        position = end


def unsafe_reason(name: str) -> str | None:
    """Why an entry name may not be used, or None when it is a plain relative path."""
    if name_problem(name):
        return name_problem(name)
    if "\x00" in name:
        return "the name contains a NUL character"
    normalised = name.replace("\\", "/")
    if normalised.startswith("/"):
        return "absolute path"
    if _DRIVE.match(normalised):
        return "drive letter in the path"
    if ".." in normalised.split("/"):
        return "'..' in the path would leave the export"
    return None


class ExportArchive(abc.ABC):
    """Entries of an export by name (``users/documents.jsonl``, ``_storage/abc.png`` …)."""

    kind = "?"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.refused: list[dict[str, str]] = []
        self.names: list[str] = []

    @staticmethod
    def open(path: Path) -> ExportArchive:
        if path.is_dir():
            return FolderArchive(path)
        if not path.exists():
            raise ChatledgerError(f"{path}: no such file or folder (expected a Convex export ZIP)")
        return ZipArchive(path)

    def _accept(self, name: str) -> None:
        reason = unsafe_reason(name)
        if reason:
            self._refuse(name, reason)
        else:
            self.names.append(name)

    def _refuse(self, name: str, reason: str) -> None:
        self.refused.append({"entry": printable_path(name), "reason": f"refused: {reason}"})

    @abc.abstractmethod
    def size(self) -> int:
        """Bytes of the export."""

    @abc.abstractmethod
    def sha256(self) -> str:
        """The export's checksum (the ZIP file's, or a manifest hash of a folder)."""

    @abc.abstractmethod
    def stream(self, name: str) -> AbstractContextManager[BinaryIO]:
        """The entry's bytes as a binary stream (never extracted to disk)."""

    def lines(self, name: str) -> Iterator[tuple[int, bytes]]:
        """(line number, line without its newline) of an entry, blank lines skipped.

        The entry is read in chunks of CHUNK bytes and searched for the next byte that is
        not whitespace, so a run of blank lines costs one C-level scan, not one Python
        step (and one ``readline``) per line: reading stays linear and fast on junk.
        """
        number = 1  # the line number of the first line in ``pending``
        pending: list[bytes] = []  # the unfinished last line, in pieces
        pending_size = 0
        with self.stream(name) as handle:
            for chunk in self._chunks(name, handle):
                cut = chunk.rfind(b"\n")
                if cut < 0:
                    pending.append(chunk)
                    pending_size += len(chunk)
                    self._check_line_size(name, number, pending_size)
                    continue
                self._check_line_size(name, number, pending_size + chunk.find(b"\n"))
                block = b"".join([*pending, chunk[: cut + 1]])
                yield from _content_lines(block, number)
                number += block.count(b"\n")
                pending, pending_size = [chunk[cut + 1 :]], len(chunk) - cut - 1
        if pending_size:
            yield from _content_lines(b"".join(pending), number)

    def _chunks(self, name: str, handle: BinaryIO) -> Iterator[bytes]:
        """The entry's bytes in chunks, with read errors named."""
        while True:
            try:
                chunk = handle.read(CHUNK)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
                raise ChatledgerError(f"{self.path}: entry {name} is corrupt: {exc}") from None
            if not chunk:
                return
            yield chunk

    def _check_line_size(self, name: str, number: int, size: int) -> None:
        """Memory stays bounded: a line is at most MAX_LINE bytes."""
        if size > MAX_LINE:
            raise ChatledgerError(
                f"{self.path}: entry {name} line {number} is longer than {MAX_LINE} bytes "
                "(a Convex document is at most 1 MiB): not a Convex export"
            )

    def first_line(self, name: str) -> bytes | None:
        for _, line in self.lines(name):
            return line
        return None

    def close(self) -> None:
        pass


class ZipArchive(ExportArchive):
    kind = "zip"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        try:
            self.zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
            raise ChatledgerError(
                f"{path}: not a readable ZIP ({exc}); expected the file `npx convex export --path X.zip` wrote"
            ) from None
        self.infos = {}
        for info in self.zip.infolist():
            if info.is_dir():
                continue
            self._accept(info.filename)
            self.infos[info.filename] = info

    def size(self) -> int:
        return self.path.stat().st_size

    def sha256(self) -> str:
        digest = hashlib.sha256()
        with open(self.path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    @contextmanager
    def stream(self, name: str) -> Iterator[BinaryIO]:
        try:
            handle = self.zip.open(self.infos[name])
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
            raise ChatledgerError(f"{self.path}: entry {name} cannot be read: {exc}") from None
        with handle:
            yield handle

    def close(self) -> None:
        self.zip.close()


class FolderArchive(ExportArchive):
    """An unpacked export. Symbolic links are refused (they could point anywhere)."""

    kind = "folder"

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        for root, dirs, files in os.walk(path, followlinks=False):
            dirs.sort()
            for name in sorted(files) + sorted(d for d in dirs if os.path.islink(os.path.join(root, d))):
                full = Path(root) / name
                relative = full.relative_to(path).as_posix()
                if full.is_symlink():
                    self._refuse(relative, "symbolic link")
                else:
                    self._accept(relative)

    def size(self) -> int:
        return sum((self.path / name).stat().st_size for name in self.names)

    def sha256(self) -> str:
        """A manifest hash: sha256 over each file's name and sha256, in name order."""
        manifest = hashlib.sha256()
        for name in sorted(self.names):
            digest = hashlib.sha256()
            with open(self.path / name, "rb") as handle:
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)
            manifest.update(f"{name}\0{digest.hexdigest()}\n".encode())
        for refused in self.refused:  # so that a new bad entry is read, and rejected
            manifest.update(f"refused\0{refused['entry']}\0{refused['reason']}\n".encode())
        return manifest.hexdigest()

    @contextmanager
    def stream(self, name: str) -> Iterator[BinaryIO]:
        with open(self.path / name, "rb") as handle:
            yield handle
