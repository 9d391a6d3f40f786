"""The ``localstorage`` source: the AI MCP Toolkit's browser conversations (before its
MongoDB version), from export files or raw localStorage dumps (:mod:`.files`).

- One scope per file, ``file:<username>/<name>``; the listing is exhaustive (a file no
  longer given is deleted as a whole). A file that is not one of the two shapes becomes
  one reject naming the file and what was found, and its scope is partial, so a file
  that turned bad never deletes what it held before; the other files land.
- Each scope holds the owner's user record and the file's conversations with their
  messages (:mod:`.mapping`), in chunks of :data:`CHUNK` conversations.
- The same conversation id in several files of one owner (exports of different days)
  is one conversation: the copy with the newest ``updatedAt`` is kept (on a tie, the
  file named last), the others are skipped and counted in ``duplicates_skipped``.
- Fingerprints cover every file's sha256 and owner, so an unchanged input is not read
  again, and any change re-reads all files (which copy of a duplicate wins may change).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ledger.kit import ConfigError, Record, Reject, Scope, Source, option
from sources.localstorage.files import (
    InputFile,
    NotAnExport,
    conversations_in,
    digest,
    files_of,
    files_of_owners,
)
from sources.localstorage.mapping import Tally, conversation_records, moment, user_record

#: Bump when the mapping's output changes, so fingerprints change with it.
MAPPING_VERSION = 1
CHUNK = 50


@dataclass
class LocalStorageOptions:
    paths: list[Path] = option(
        [],
        help="Export files (ai-conversations-*.json), raw localStorage dumps, or folders of them (repeatable).",
    )
    owner_username: str | None = option(None, help="The app username that owns every file in paths.")
    owners_file: Path | None = option(
        None,
        help="Instead of owner_username and paths: a JSON object mapping usernames to their files (relative to it).",
    )


def _scope_name(file: InputFile) -> str:
    return f"file:{file.owner}/{file.name}"


class LocalStorageSource(Source):
    type_name = "localstorage"
    Options = LocalStorageOptions
    exhaustive = True

    def __init__(self, options: LocalStorageOptions, context) -> None:
        super().__init__(options, context)
        by_owner = bool(options.owner_username and options.owner_username.strip())
        if by_owner == bool(options.owners_file):
            raise ConfigError(
                "localstorage: name the owner: owner_username (with paths) or owners_file, not both"
            )
        if by_owner and not options.paths:
            raise ConfigError("localstorage: owner_username needs paths (files or folders)")
        if options.owners_file and options.paths:
            raise ConfigError(
                "localstorage: with owners_file, the files are the ones it names; leave paths empty"
            )

    @cached_property
    def files(self) -> list[InputFile]:
        if self.options.owners_file:
            return files_of_owners(self.options.owners_file)
        return files_of(self.options.paths, self.options.owner_username.strip())

    @cached_property
    def _contents(self) -> dict[str, bytes | OSError]:
        found: dict[str, bytes | OSError] = {}
        for file in self.files:
            try:
                found[_scope_name(file)] = file.path.read_bytes()
            except OSError as exc:
                found[_scope_name(file)] = exc
        return found

    def _parsed(self, file: InputFile) -> list[Any] | str:
        """The file's conversations, or why it is not an export."""
        content = self._contents[_scope_name(file)]
        if isinstance(content, OSError):
            return f"not readable: {content.strerror or content}"
        try:
            return conversations_in(content)
        except NotAnExport as exc:
            return str(exc)

    @cached_property
    def _keepers(self) -> dict[tuple[str, str], str]:
        """(owner, conversation id) → the scope whose copy is kept."""
        best: dict[tuple[str, str], tuple[Any, str]] = {}
        for file in self.files:
            parsed = self._parsed(file)
            for conversation in parsed if isinstance(parsed, list) else []:
                if isinstance(conversation, dict) and isinstance(conversation.get("id"), str):
                    updated = moment(conversation.get("updatedAt"))[0]
                    rank = (updated is not None, updated.timestamp() if updated else 0.0)
                    key = (file.owner, conversation["id"])
                    if key not in best or rank >= best[key][0]:
                        best[key] = (rank, _scope_name(file))
        return {key: scope for key, (_, scope) in best.items()}

    # -- scopes -----------------------------------------------------------------------------

    def scopes(self) -> Iterator[Scope]:
        shape = hashlib.sha256(
            repr(
                [MAPPING_VERSION]
                + [
                    (name, content if isinstance(content, OSError) else digest(content))
                    for name, content in sorted(self._contents.items())
                ]
            ).encode()
        ).hexdigest()
        for file in self.files:
            name = _scope_name(file)
            complete = isinstance(self._parsed(file), list)
            yield Scope(
                name, complete, hashlib.sha256(f"{shape}:{name}".encode()).hexdigest() if complete else None
            )

    def scope_count(self) -> int | None:
        return len(self.files)

    # -- reading ----------------------------------------------------------------------------

    def read(self, scope: Scope, cursor: Any = None) -> Iterator[tuple[list[Record | Reject], Any]]:
        file = next(f for f in self.files if _scope_name(f) == scope.name)
        tally = Tally()
        yield from self._chunks(file, cursor if isinstance(cursor, int) else 0, tally)
        self.context.log.info("localstorage file read", file=str(file.path), owner=file.owner, **vars(tally))

    def _chunks(
        self, file: InputFile, start: int, tally: Tally
    ) -> Iterator[tuple[list[Record | Reject], Any]]:
        parsed = self._parsed(file)
        if isinstance(parsed, str):
            tally.rejected += 1
            yield [Reject(str(file.path), f"not a localStorage conversation export: {parsed}")], None
            return
        scope = _scope_name(file)
        items: list[Record | Reject] = [user_record(self.record, file.owner)]
        for index in range(start, len(parsed)):
            conversation = parsed[index]
            native_id = conversation.get("id") if isinstance(conversation, dict) else None
            if isinstance(native_id, str) and self._keepers.get((file.owner, native_id)) != scope:
                tally.duplicates_skipped += 1
                continue
            found = conversation_records(
                self.record, file.owner, conversation, f"{file.path}[{index}]", tally
            )
            tally.rejected += sum(isinstance(item, Reject) for item in found)
            items += found
            if (index + 1 - start) % CHUNK == 0:
                yield items, index + 1
                items = []
        yield items, None

    def describe(self) -> dict[str, Any]:
        """Per file: owner, bytes, sha256 and what a pass finds (conversations, messages,
        welcome messages, repaired timestamps, stringified contents, duplicates, rejects)."""
        facts, total = [], Tally()
        for file in self.files:
            content = self._contents[_scope_name(file)]
            entry: dict[str, Any] = {"file": str(file.path), "owner": file.owner}
            if isinstance(content, bytes):
                entry.update(bytes=len(content), sha256=digest(content))
            tally = Tally()
            for _chunk in self._chunks(file, 0, tally):
                pass
            total.add(tally)
            facts.append({**entry, **vars(tally)})
        return {"input": "localstorage", "files": facts, "totals": vars(total)}
