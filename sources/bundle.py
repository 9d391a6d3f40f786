"""The ``bundle`` source: restores a folder the ``bundle`` sink wrote, into any target.

It reads each owner folder's ``records.jsonl`` (sinks/bundle.py: every record exactly as
the ledger held it: kind, key, data, raw, refs), so the restored records have the keys
and content hashes they had, under this source's stream name. Attachment bytes come
from ``<owner>/files/<sha256>`` (a bundle written with ``copy_files = true``) and are
checked against their sha256; a file whose bytes the bundle lacks is restored with
``missing`` saying so, unless the ledger's blob store already holds them.

One complete scope per owner folder, fingerprinted by its ``records.jsonl``, so an
unchanged folder is not read again, a record gone from the bundle is deleted, and a
folder gone as a whole deletes its records. A line that is not a record is a reject
naming the file and line; the rest lands. A record the folder's ``conversations.jsonl``
or ``files_manifest.jsonl`` lists but ``records.jsonl`` lacks (a folder written before
bundles held it) is a reject too, so a partial restore never reports plain success.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.kit import (
    ConfigError,
    Record,
    Reject,
    Scope,
    Source,
    blob_ref,
    canonical_bytes,
    file_sha256,
    loads,
    option,
    sha256_hex,
)
from ledger.kit import (
    bundle_layout as layout,
)

RESYNC = "replay the bundle's target again with --resync to write it whole"
KINDS = ("user", "file", "conversation", "message")  # what the bundle sink carries
READER_VERSION = 1  # bump when the records made from the same folder change
CHUNK = 1000
NO_COPY = "the bundle holds no copy of the bytes (it was written without copy_files)"


@dataclass
class BundleSourceOptions:
    path: Path = option(help="The bundle folder (the `path` of a `bundle` target).")
    streams: list[str] = option(
        [], help="Only the records the bundle holds from these streams (default: every stream)."
    )


class BundleSource(Source):
    type_name = "bundle"
    Options = BundleSourceOptions

    def _folders(self) -> list[Path]:
        root = self.options.path
        if not root.is_dir():
            raise ConfigError(f"bundle path {root} is not a folder (name the `path` of a bundle target)")
        return sorted(path for path in root.iterdir() if path.is_dir())

    def scopes(self) -> Iterator[Scope]:
        for folder in self._folders():
            records = folder / layout.RECORDS
            digest = file_sha256(records) if records.is_file() else None
            token = [self.type_name, READER_VERSION, digest, sorted(self.options.streams)]
            yield Scope(f"owner:{folder.name}", True, sha256_hex(canonical_bytes(token)))

    def scope_count(self) -> int | None:
        return len(self._folders())

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.options.path), "owners": len(self._folders())}

    def read(self, scope: Scope, cursor: Any = None) -> Iterator[tuple[list[Record | Reject], Any]]:
        folder = self.options.path / scope.name.removeprefix("owner:")
        path = folder / layout.RECORDS
        if not path.is_file():
            written = (folder / layout.CONVERSATIONS).is_file()
            reason = f"no {layout.RECORDS}: " + (
                f"written before bundles held it; {RESYNC}"
                if written
                else "not a folder of a chatledger bundle"
            )
            yield [Reject(str(folder), reason)], None
            return
        items: list[Record | Reject] = []
        seen: dict[str, str] = {}  # key → the stream of the bundle it came from
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                item = self._item(folder, f"{path}:{number}", line, seen)
                if item is not None:
                    items.append(item)
                if len(items) >= CHUNK:
                    yield items, None
                    items = []
        unlisted = self._unlisted(folder, seen)
        if unlisted:
            reason = (
                f"{len(unlisted)} record(s) listed in {layout.CONVERSATIONS} or {layout.MANIFEST} are not in "
                f"{layout.RECORDS} (a folder partly written before bundles held it, or edited); {RESYNC}"
            )
            items.append(Reject(str(path), reason, unlisted[:20]))
        yield items, None

    def _unlisted(self, folder: Path, seen: dict[str, str]) -> list[str]:
        """Keys the folder's projections list that ``records.jsonl`` does not hold: what a
        restore would silently lose."""
        listed = []
        for name in (layout.CONVERSATIONS, layout.MANIFEST):
            path = folder / name
            if not path.is_file():
                continue
            for line in path.read_bytes().splitlines():
                try:
                    entry = loads(line) if line.strip() else None
                except ValueError:
                    continue  # a projection is not what is restored; records.jsonl is checked line by line
                if not isinstance(entry, dict) or (
                    self.options.streams and entry.get("stream") not in self.options.streams
                ):
                    continue
                if entry.get("conversation_record", True):  # a line may stand for messages only
                    listed.append(entry.get("key"))
                listed += [
                    message.get("key") for message in entry.get("messages") or [] if isinstance(message, dict)
                ]
        return sorted({key for key in listed if isinstance(key, str) and key not in seen})

    def _item(self, folder: Path, where: str, line: bytes, seen: dict[str, str]) -> Record | Reject | None:
        text = line.decode("utf-8", errors="replace").rstrip("\n")
        try:
            document = loads(line)
        except ValueError as error:  # orjson.JSONDecodeError
            return Reject(where, f"not JSON: {error}", text)
        problem = _problem(document)
        if problem:
            return Reject(where, problem, text)
        key, stream = document["key"], document["stream"]
        if self.options.streams and stream not in self.options.streams:
            return None
        if key in seen:
            return Reject(
                where,
                f"{key} is also in stream {seen[key]} of the bundle; restore one stream with `streams`",
                text,
                key=key,
            )
        seen[key] = stream
        data = document["data"]
        if document["kind"] == "file" and data.get("blob"):
            restored = self._bytes(folder, data["sha256"])
            if restored is not None:
                return Reject(where, restored, text, key=key)
            if not self.context.blobs.has(data["sha256"]):
                data = {**data, "blob": None, "missing": NO_COPY}
        return self.record(document["kind"], key, data, document["raw"], document["refs"])

    def _bytes(self, folder: Path, digest: str) -> str | None:
        """Store the bundle's copy of a blob; the problem when the copy is corrupt."""
        copy = folder / "files" / digest
        if self.context.blobs.has(digest) or not copy.is_file():
            return None
        if file_sha256(copy) != digest:
            return f"{copy}: the bytes do not match their sha256 {digest}"
        self.context.blobs.put_file(copy)
        return None


def _problem(document: Any) -> str | None:
    """Why a ``records.jsonl`` line is not a record, or None."""
    if not isinstance(document, dict) or set(document) != set(layout.RECORD_FIELDS):
        return f"not a bundle record (expected the keys {', '.join(layout.RECORD_FIELDS)})"
    if document["kind"] not in KINDS:
        return f"kind {document['kind']!r} is not one a bundle holds ({', '.join(KINDS)})"
    if not isinstance(document["key"], str) or not isinstance(document["data"], dict):
        return "key must be text and data an object"
    if not isinstance(document["refs"], list):
        return "refs must be a list"
    data = document["data"]
    if document["kind"] == "file" and data.get("blob") and data["blob"] != blob_ref(str(data.get("sha256"))):
        return "a file's blob must be sha256:<its sha256>"
    return None
