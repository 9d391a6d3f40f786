"""The ``convex`` source: a Convex ("Khala") snapshot export → the ledger.

Input: the ZIP ``npx convex export --path X.zip [--include-file-storage]`` writes, or the
same files unpacked in a folder. Both encoding eras are read (see
:mod:`sources.convex.encoding`), tables are named by their full path (see
:mod:`sources.convex.inventory`), and the OpenAgents chat tables (``users``, ``threads``,
``messages`` with ``messageParts``, ``runs``, ``receipts``, ``blueprints``) become records
(see :mod:`sources.convex.records`). ``component = "agent"`` reads them from
``_components/agent/`` instead of the root.

Scopes: one per owner (``owner:<userId>``: the user, their threads with messages, runs
and receipts, and their autopilot), ``ownerless`` (anonymous threads, documents whose
thread is not in the export, and refused ZIP entries) and ``storage`` (``_storage``
files, when exported). An export is a complete snapshot and the scope list is
exhaustive, so a thread missing from a newer export is deleted, and an owner missing
from it is deleted whole. Every scope's fingerprint is the export's sha256 (with the
reader version and ``component``): an unchanged export is skipped without being read.
Each pass re-reads a scope from its start (a stored cursor is not needed: a scope is one
indexed query).

``describe()`` is the runbook's artifact validation, kept in the run and printed by
``chatledger extract STREAM --validate-only``: size, sha256, entries, era, README and
``_tables``, per-table document counts, invalid lines, refused entries, ``_storage``, and
the original importer's ``source_*`` counters. Each document is decompressed and parsed
once: the index built for validation is the one extraction reads.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ledger.kit import ChatledgerError, Reject, Scope, Source, digest, option, printable_path
from sources.convex.archive import ExportArchive
from sources.convex.encoding import ERA_NAMES
from sources.convex.index import CHAT_TABLES, STORAGE, Doc, ExportIndex, ThreadDocs
from sources.convex.inventory import DOCUMENTS, Inventory, component_prefix
from sources.convex.records import RecordMaker, message_key, ms, run_event_key

#: Bump when the records this source makes from the same export change.
READER_VERSION = 1
OWNERLESS, STORAGE_SCOPE = "ownerless", "storage"
SOURCE_COUNTERS = {
    "users": "source_users",
    "threads": "source_threads",
    "runs": "source_runs",
    "messages": "source_messages",
    "receipts": "source_receipts",
    "blueprints": "source_blueprints",
}


@dataclass
class ConvexOptions:
    path: Path = option(
        help="The export: the ZIP `npx convex export --path X.zip` wrote, or that ZIP unpacked into a folder."
    )
    component: str = option(
        "",
        help="Read the chat tables of this Convex component (`_components/<name>/`, nested as a/b) "
        "instead of the app's root tables.",
    )


class ConvexSource(Source):
    type_name = "convex"
    Options = ConvexOptions
    exhaustive = True

    def __init__(self, options: ConvexOptions, context) -> None:
        super().__init__(options, context)
        self.maker = RecordMaker(self.record)
        self._archive: ExportArchive | None = None
        self._inventory: Inventory | None = None
        self._index: ExportIndex | None = None
        self._facts: dict[str, Any] | None = None
        self._gaps: list[str] = []  # why the export cannot prove it is whole (Inventory.check)

    # -- opening and indexing (lazily: this object is built in one process, read in another)

    def _open(self) -> None:
        if self._archive is None:
            archive = ExportArchive.open(self.options.path)
            try:
                inventory = Inventory.of(archive)
                self._gaps = inventory.check(self._table(""))
                if not any(self._table(name) in inventory.tables for name in CHAT_TABLES):
                    where = f"under {self._table('')}" if self.options.component else "at its root"
                    raise ChatledgerError(
                        f"{self.options.path}: none of the chat tables ({', '.join(CHAT_TABLES)}) "
                        f"{where}: wrong export or component? Nothing read"
                    )
            except BaseException:
                archive.close()
                raise
            self._archive, self._inventory = archive, inventory

    @property
    def archive(self) -> ExportArchive:
        self._open()
        return self._archive

    @property
    def inventory(self) -> Inventory:
        self._open()
        return self._inventory

    def _table(self, name: str) -> str:
        return component_prefix(self.options.component) + name

    @property
    def index(self) -> ExportIndex:
        if self._index is None:
            era, _ = self.inventory.era()
            index = ExportIndex(self.archive)
            try:
                for name in CHAT_TABLES:
                    path = self._table(name)
                    if path in self.inventory.tables:
                        index.add_table(name, self.inventory.tables[path], self.inventory.decoder(path, era))
            except BaseException:
                index.close()
                raise
            self._index = index
        return self._index

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
            self._index = None
        if self._archive is not None:
            self._archive.close()
            self._archive = None

    # -- validation -----------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        if self._facts is None:
            self._facts = self._describe()
        return self._facts

    def _describe(self) -> dict[str, Any]:
        archive, inventory, index = self.archive, self.inventory, self.index
        era, warnings = inventory.era()
        tables = {}
        for path in inventory.user_tables():
            short = path.removeprefix(component_prefix(self.options.component))
            indexed = short in CHAT_TABLES and path == self._table(short)
            tables[path] = index.counts.get(short, 0) if indexed else inventory.count_lines(path)
        listed = inventory.listed_tables()
        facts: dict[str, Any] = {
            "path": printable_path(self.options.path),
            "format": archive.kind,
            "size": archive.size(),
            "sha256": archive.sha256(),
            "entries": len(archive.names) + len(archive.refused),
            "era": ERA_NAMES[era],
            "readme": inventory.readme,
            "tables_listed": len(listed),
            "tables": tables,
            "component": self.options.component or None,
        }
        if index.invalid:
            facts["invalid_lines"] = dict(index.invalid)
        if archive.refused:
            facts["refused_entries"] = list(archive.refused)
        if STORAGE in inventory.tables:
            facts["storage"] = {"files": inventory.count_lines(STORAGE), "blobs": len(inventory.blobs)}
        facts.update({counter: index.counts.get(name, 0) for name, counter in SOURCE_COUNTERS.items()})
        warnings += self._warnings(listed, tables, index)
        if warnings:
            facts["warnings"] = warnings
        return facts

    def _warnings(self, listed: list[str], tables: dict[str, int], index: ExportIndex) -> list[str]:
        warnings = [f"{gap}: this pass deletes nothing" for gap in self._gaps]
        if not self.inventory.readme:
            warnings.append("no README.md: not the layout `npx convex export` writes")
        root_tables = {path for path in tables if "/" not in path}
        if listed and set(listed) != root_tables:
            missing = sorted(set(listed) - root_tables)
            extra = sorted(root_tables - set(listed))
            warnings.append(
                f"_tables lists {len(listed)} tables; without documents: {missing}; unlisted: {extra}"
            )
        for name in CHAT_TABLES:
            if self._table(name) not in self.inventory.tables:
                warnings.append(f"no {self._table(name)}/{DOCUMENTS} in the export")
        warnings += index.problems
        if index.unattributed():
            warnings.append(
                f"{index.unattributed()} invalid line(s) cannot be attributed to an owner: "
                "this pass deletes nothing"
            )
        return warnings

    # -- scopes ----------------------------------------------------------------------------

    def _fingerprint(self) -> str:
        facts = self.describe()
        token = {"reader": READER_VERSION, "export": facts["sha256"], "component": self.options.component}
        return digest(token)

    def scopes(self) -> Iterator[Scope]:
        complete = self.index.unattributed() == 0 and not self.inventory_gaps()
        # an export that cannot prove it is whole lists scopes that may not be all of them
        self.exhaustive = not self.inventory_gaps()
        fingerprint = self._fingerprint() if complete else None
        for owner in self.index.owners():
            yield Scope(f"owner:{owner}", complete, fingerprint)
        yield Scope(OWNERLESS, complete, fingerprint)
        if STORAGE in self.inventory.tables:
            yield Scope(STORAGE_SCOPE, complete, fingerprint)

    def inventory_gaps(self) -> list[str]:
        self._open()
        return self._gaps

    def read(self, scope: Scope, cursor: Any = None) -> Iterator[tuple[list, Any]]:
        if scope.name == STORAGE_SCOPE:
            yield from self._read_storage()
        elif scope.name == OWNERLESS:
            yield from self._read_owner(None)
        else:
            yield from self._read_owner(scope.name.removeprefix("owner:"))

    # -- reading an owner (None: the ownerless scope) ---------------------------------------

    def _read_owner(self, owner: str | None) -> Iterator[tuple[list, Any]]:
        index = self.index
        seen: set[str] = set()
        blueprints: list[tuple[str, Doc]] = []
        first_thread_ms: int | None = None
        threads = index.owned_threads(owner)
        for thread_id in threads:
            thread = index.thread(thread_id)
            items = self._thread_items(thread, seen)
            own_blueprints = [(thread_id, doc) for doc in thread.of("blueprints")]
            if owner is None and own_blueprints:  # no owner, no autopilot: kept per thread
                items.append(self.maker.assistant(None, thread_id, own_blueprints))
            blueprints += own_blueprints
            first_thread_ms = _earliest(
                first_thread_ms, *[ms(doc.body.get("createdAtMs")) for doc in thread.threads]
            )
            yield items, {"thread": thread_id}
        tail: list = [self._reject(bad) for bad in index.bad_rows(owner)]
        if owner is None:
            tail += [
                Reject(entry["entry"], entry["reason"], entry["entry"]) for entry in self.archive.refused
            ]
            tail += [
                Reject(printable_path(self.options.path), f"incomplete export: {gap}") for gap in self._gaps
            ]
        else:
            tail += self._user_items(owner, bool(threads), first_thread_ms)
            if threads:
                tail.append(self.maker.assistant(owner, "", blueprints))
        yield tail, {"thread": None}

    def _user_items(self, owner: str, has_threads: bool, first_thread_ms: int | None) -> list:
        """The owner's user: their ``users`` row, else one made from ``threads.ownerId``
        (as the original importer did), else none (only a bad line named them)."""
        docs = self.index.users(owner)
        if not docs:
            return [self.maker.user(owner, None, first_thread_ms)] if has_threads else []
        *earlier, last = docs
        key = f"user:{owner}"
        return [self._duplicate(doc, key) for doc in earlier] + [self.maker.user(owner, last, None)]

    def _thread_items(self, thread: ThreadDocs, seen: set[str]) -> list:
        """One thread's records: its messages, the conversation, runs and run events."""
        messages, orphan_parts = self._messages(thread)
        items: list = list(messages)
        if thread.threads:
            *earlier, last = thread.threads
            items.append(self.maker.conversation(thread, last, messages[-1].key if messages else None))
            items += [self._duplicate(doc, f"conversation:{thread.thread_id}") for doc in earlier]
        items += [self.maker.run(doc) for doc in _last_of_each(thread.of("runs"))]
        items += [self.maker.run_event(doc) for doc in _last_of_each(thread.of("receipts"))]
        items += self._duplicates(thread) + orphan_parts
        return _once(items, seen)

    def _messages(self, thread: ThreadDocs) -> tuple[list, list[Reject]]:
        """Message records in order (each the parent of the next), and rejects for stream
        parts whose message is not in the export."""
        parts: dict[str, list[Doc]] = {}
        for part in thread.of("messageParts"):
            parts.setdefault(part.ident, []).append(part)
        records, parent = [], None
        for doc in _last_of_each(thread.of("messages")):
            record = self.maker.message(doc, parts.pop(doc.ident, []), parent)
            records.append(record)
            parent = record.key
        reason = "a messageParts document for a message that is not in the export"
        orphans = [
            Reject(doc.location, reason, doc.body, message_key(thread.thread_id, message_id))
            for message_id, docs in parts.items()
            for doc in docs
        ]
        return records, orphans

    def _duplicates(self, thread: ThreadDocs) -> list[Reject]:
        out = []
        for table, key_of in (
            ("messages", lambda doc: message_key(thread.thread_id, doc.ident)),
            ("runs", lambda doc: f"run:{doc.ident}"),
            ("receipts", run_event_key),
        ):
            kept = {id(doc) for doc in _last_of_each(thread.of(table))}
            out += [self._duplicate(doc, key_of(doc)) for doc in thread.of(table) if id(doc) not in kept]
        return out

    @staticmethod
    def _duplicate(doc: Doc, key: str) -> Reject:
        return Reject(
            doc.location, f"superseded by a later {doc.table} document with the same id", doc.body, key
        )

    @staticmethod
    def _reject(bad) -> Reject:
        return Reject(bad.location, bad.reason, bad.input)

    # -- _storage ---------------------------------------------------------------------------

    def _read_storage(self) -> Iterator[tuple[list, Any]]:
        entry = self.inventory.tables[STORAGE]
        items: list = []
        for number, line in self.archive.lines(entry):
            location = f"{entry}:{number}"
            try:
                body = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                items.append(Reject(location, f"not a JSON document: {exc}", line.decode("utf-8", "replace")))
                continue
            storage_id = body.get("_id") if isinstance(body, dict) else None
            if not isinstance(storage_id, str) or not storage_id:
                items.append(Reject(location, "a _storage document without _id", body))
                continue
            items.append(self._storage_file(location, storage_id, body))
            if len(items) >= 100:
                yield items, {"line": number}
                items = []
        yield items, None

    def _storage_file(self, location: str, storage_id: str, body: dict[str, Any]):
        blob = self.inventory.blobs.get(storage_id)
        if blob is None:
            return self.maker.file(storage_id, body, None, "the export has no bytes for this file")
        with self.archive.stream(blob) as handle:
            digest, size = self.context.blobs.put_stream(handle)
        expected = _hex_of_base64(body.get("sha256"))
        if expected == "":
            return Reject(
                location,
                f"the exported sha256 {body.get('sha256')!r} is not base64",
                body,
                f"file:{storage_id}",
            )
        if expected is not None and expected != digest:
            reason = f"{blob}: sha256 {digest} does not match the exported checksum {expected}"
            return Reject(location, reason, body, f"file:{storage_id}")
        if isinstance(body.get("size"), int) and body["size"] != size:
            reason = f"{blob}: {size} bytes, the export says {body['size']}"
            return Reject(location, reason, body, f"file:{storage_id}")
        return self.maker.file(storage_id, body, digest, None)


def _once(items: list, seen: set[str]) -> list:
    """A key a second time in one scope (say, the same runId in two threads) is rejected."""
    out = []
    for item in items:
        if isinstance(item, Reject) or item.key not in seen:
            out.append(item)
            if not isinstance(item, Reject):
                seen.add(item.key)
        else:
            out.append(Reject(item.key, "the same record twice in one export", item.raw, item.key))
    return out


def _earliest(current: int | None, *candidates: int | None) -> int | None:
    found = [value for value in (current, *candidates) if value]
    return min(found) if found else None


def _last_of_each(docs: list[Doc]) -> list[Doc]:
    """One document per id, the last one written (duplicates are rejected separately),
    in list order."""
    last: dict[str, Doc] = {}
    for doc in docs:
        last[doc.ident] = doc
    kept = {id(doc) for doc in last.values()}
    return [doc for doc in docs if id(doc) in kept]


def _hex_of_base64(value: Any) -> str | None:
    """The hex of a base64 checksum; None when there is none, "" when it is not base64."""
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True).hex()
    except (binascii.Error, ValueError):
        return ""
