"""Reading LibreChat's own JSON conversation exports (``useExportConversation.ts``).

An export is one conversation: ``conversationId``, ``title``, ``endpoint``,
``exportAt``, ``options`` (the preset fields) and either ``messages`` (flat, the raw
MongoDB documents) or, when ``recursive``, ``messagesTree`` (nested ``children``). A
tree is flattened the way LibreChat's importer does: the nesting sets
``parentMessageId``, and a top-level message gets ``NO_PARENT``.

Exports carry no user document and no email, so they are one user's: ``owner_email``
names that user, whose id is derived from the email (``export-<sha256 prefix>``). The
conversation document is rebuilt from the export (``createdAt``/``updatedAt`` from its
messages, else ``exportAt``). There is no ``files`` collection: a message's own file
entries (``filepath``, ``type``, ``filename``) are used to find bytes. Each file is
read twice, once to order the conversations by creation time and once to map it, so
memory holds one export at a time. A file that is not valid JSON, or not an export, is
rejected with the reason; the other files land.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ledger.errors import ConfigError
from ledger.records import Reject
from sources.librechat.native import NO_PARENT, moment
from sources.librechat.store import Bundle, Store


def export_files(paths: list[Path]) -> list[Path]:
    """Every ``*.json`` named or inside a named folder, sorted, each once."""
    found: set[Path] = set()
    for path in paths:
        if path.is_dir():
            found.update(child for child in path.rglob("*.json") if child.is_file())
        elif path.is_file():
            found.add(path)
        else:
            raise ConfigError(f"librechat: export path {path} does not exist")
    return sorted(found)


def flatten(nodes: list[Any], parent: str = NO_PARENT) -> Iterator[dict[str, Any]]:
    """A ``messagesTree`` as flat messages, parents first, ``parentMessageId`` from nesting."""
    for node in nodes:
        if not isinstance(node, dict):
            continue
        message = {key: value for key, value in node.items() if key != "children"}
        message["parentMessageId"] = parent
        yield message
        children = node.get("children")
        if isinstance(children, list):
            yield from flatten(children, str(message.get("messageId")))


class ExportStore(Store):
    kind = "json-export"

    def __init__(self, paths: list[Path], owner_email: str, owner_id: str) -> None:
        self.paths = export_files(paths)
        self.owner = {"_id": owner_id, "email": owner_email.strip().lower(), "provider": "json-export"}
        self._digests: list[dict[str, Any]] | None = None

    def digests(self) -> list[dict[str, Any]]:
        if self._digests is None:
            self._digests = [
                {"file": str(path), "bytes": path.stat().st_size, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
                for path in self.paths
            ]
        return self._digests

    def fingerprint(self) -> str:
        body = repr([(facts["file"], facts["sha256"]) for facts in self.digests()] + [self.owner["email"]])
        return hashlib.sha256(body.encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        return {"input": "json-export", "files": self.digests()}

    def users(self, emails: set[str] | None) -> Iterator[dict[str, Any]]:
        if emails is None or self.owner["email"] in emails:
            yield self.owner

    def user(self, user_id: str) -> dict[str, Any] | None:
        return self.owner if user_id == self.owner["_id"] else None

    def conversations(self, user_id: str, start: int) -> Iterator[Bundle | Reject]:
        """Two passes keep memory to one export: the first only orders the files by the
        conversation's creation time, the second reads them again one by one."""
        order: list[tuple[bool, Any, str, Path]] = []
        seen: set[str] = set()
        for path in self.paths:
            item = self._load(path)
            if isinstance(item, Reject):
                yield item
                continue
            conversation_id, created = item.document["conversationId"], item.document["createdAt"]
            if conversation_id in seen:
                yield Reject(str(path), f"conversation {conversation_id} is exported twice; the first file is kept")
                continue
            seen.add(conversation_id)
            order.append((created is None, created or 0, conversation_id, path))
        order.sort(key=lambda entry: entry[:3])
        for index, (_, _, _, path) in enumerate(order):
            if index >= start:
                bundle = self._load(path)
                if isinstance(bundle, Bundle):  # else the file changed since the first pass
                    bundle.index = index
                yield bundle

    def _load(self, path: Path) -> Bundle | Reject:
        try:
            document = json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            return Reject(str(path), f"not a readable JSON file: {exc}")
        if not isinstance(document, dict) or not isinstance(document.get("conversationId"), str):
            return Reject(str(path), "not a LibreChat export: no conversationId")
        if isinstance(document.get("messagesTree"), list):
            messages = list(flatten(document["messagesTree"]))
        elif isinstance(document.get("messages"), list):
            messages = [message for message in document["messages"] if isinstance(message, dict)]
        else:
            return Reject(str(path), "not a LibreChat export: neither messages nor messagesTree")
        messages.sort(key=lambda m: (moment(m.get("createdAt")) is None, moment(m.get("createdAt")) or 0))
        return Bundle(0, self._conversation(document, messages), messages, str(path))

    def _conversation(self, export: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The conversations document an export stands for."""
        times = [moment(m.get("createdAt")) for m in messages] + [moment(m.get("updatedAt")) for m in messages]
        times = [t for t in times if t is not None]
        exported = moment(export.get("exportAt"))
        options = export.get("options") if isinstance(export.get("options"), dict) else {}
        return {
            **options,
            "conversationId": export["conversationId"],
            "title": export.get("title"),
            "endpoint": export.get("endpoint", options.get("endpoint")),
            "user": self.owner["_id"],
            "createdAt": min(times) if times else exported,
            "updatedAt": max(times) if times else exported,
            "export": {key: value for key, value in export.items() if key not in ("messages", "messagesTree")},
        }

    def files(self, file_ids: list[str]) -> dict[str, dict[str, Any]]:
        return {}
