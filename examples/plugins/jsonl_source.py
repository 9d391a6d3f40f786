"""A source reading conversations from JSON-lines files: the skeleton of a new source.

Each line of ``<owner>.jsonl`` is one conversation::

    {"id": "c1", "title": "Hello", "messages": [{"id": "m1", "role": "user", "text": "Hi"}, ...]}

Messages form a chain in file order. One scope per file, complete (so a conversation
removed from a file is deleted), fingerprinted by the file's sha256 (an unchanged file is
not read again). A line that is not a conversation is a reject; the rest of the file lands.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.kit import Record, Reject, Scope, Source, option


@dataclass
class JsonlOptions:
    folder: Path = option(help="The folder of <owner>.jsonl files.")


class JsonlSource(Source):
    type_name = "jsonl-example"
    Options = JsonlOptions

    def scopes(self) -> Iterator[Scope]:
        for path in sorted(self.options.folder.glob("*.jsonl")):
            yield Scope(path.stem, complete=True, fingerprint=hashlib.sha256(path.read_bytes()).hexdigest())

    def read(self, scope: Scope, cursor: Any = None) -> Iterator[tuple[list[Record | Reject], Any]]:
        owner = f"user:{scope.name}"
        items: list[Record | Reject] = [self.record("user", owner, {"username": scope.name})]
        path = self.options.folder / f"{scope.name}.jsonl"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                items += self.conversation(owner, json.loads(line))
            except (ValueError, KeyError, TypeError) as error:
                items.append(Reject(f"{path}:{number}", f"not a conversation: {error}", line))
        yield items, None

    def conversation(self, owner: str, native: dict[str, Any]) -> list[Record]:
        key = f"conversation:{owner}/{native['id']}"
        records, parent = [], None
        for message in native["messages"]:
            message_key = f"message:{owner}/{native['id']}/{message['id']}"
            data = {
                "conversation": key,
                "parent": parent,
                "role": message["role"],
                "parts": [{"type": "text", "text": message["text"]}],
            }
            records.append(self.record("message", message_key, data, message, [key, parent]))
            parent = message_key
        data = {"owner": owner, "title": native.get("title"), "active_leaf": parent}
        return [self.record("conversation", key, data, native, [owner]), *records]
