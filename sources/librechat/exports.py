"""Reading LibreChat's own JSON conversation exports (``useExportConversation.ts``).

An export is one conversation: ``conversationId``, ``title``, ``endpoint``,
``exportAt``, ``options`` (the preset fields), ``branches``, ``recursive`` and
``messages``. Flat exports hold the messages as stored. With ``recursive: true``,
LibreChat (``useBuildMessageTree``) writes the *tree* under ``messages``: the root
messages, each reply nested in its parent's ``children``; an older branch of the code
named that field ``messagesTree``, which is read too. Whenever messages carry
``children`` they are flattened (iteratively: a long chat is a deep tree), the nesting
giving each reply its ``parentMessageId``; a top-level message keeps its own, else
``NO_PARENT``. JSON nested deeper than Python's recursion limit (a chat of more than
about 500 turns) is parsed on a thread with a large stack.

Exports carry no user document and no email, so they are one user's: ``owner_email``
names that user, whose id is derived from the email (``export-<sha256 prefix>``). The
conversation document is rebuilt from the export (``createdAt``/``updatedAt`` from its
messages, else ``exportAt``). There is no ``files`` collection: a message's own file
entries (``filepath``, ``type``, ``filename``) are used to find bytes. Each file is
read twice, once to order the conversations by creation time and once to map it, so
memory holds one export at a time.

Bad input is one reject per file, and the other files land: a file that is not valid
JSON, nested too deeply, or not a LibreChat export (one of another platform is named:
"this looks like a ChatGPT export …"), a file name that is not UTF-8, and a symbolic
link inside an export folder (not followed).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ledger.kit import ConfigError, Reject, describe_export, export_format, name_problem, printable_path
from sources.librechat.native import NO_PARENT, moment
from sources.librechat.store import Bundle, Store

#: Nesting a recursive export may have (two levels per turn), and the stack to parse it.
DEEP_LEVELS = 200_000
DEEP_STACK = 512 << 20


def export_files(paths: list[Path]) -> tuple[list[Path], set[Path]]:
    """Every ``*.json`` named or inside a named folder, sorted, each once, and the
    symbolic links found inside the folders (listed to be rejected, never followed: a
    link could point anywhere). A file named explicitly is read even when it is a link."""
    found: set[Path] = set()
    links: set[Path] = set()
    for path in paths:
        if path.is_dir():
            for folder, dirs, files in os.walk(path, followlinks=False):
                for name in [*dirs, *files]:
                    child = Path(folder, name)
                    if child.is_symlink():
                        links.add(child)
                found.update(Path(folder, name) for name in files if name.endswith(".json"))
        elif path.is_file():
            found.add(path)
        else:
            raise ConfigError(f"librechat: export path {printable_path(path)} does not exist")
    return sorted(found | links), links


def flatten(nodes: list[Any]) -> list[dict[str, Any]]:
    """A recursive export's tree as flat messages, parents first (depth-first, in order).

    A nested message's ``parentMessageId`` is the message it is nested in; a top-level
    one keeps its own (else ``NO_PARENT``), so flat messages that happen to carry an
    empty ``children`` keep their links. Iterative: a chat thousands of turns deep is as
    deep as this tree, and must not exhaust Python's stack."""
    flat: list[dict[str, Any]] = []
    stack: list[tuple[Any, str | None]] = [(node, None) for node in reversed(nodes)]
    while stack:
        node, parent = stack.pop()
        if not isinstance(node, dict):
            flat.append(node)  # not a message: the mapping rejects it
            continue
        message = {key: value for key, value in node.items() if key != "children"}
        if parent is not None or not isinstance(message.get("parentMessageId"), str):
            message["parentMessageId"] = parent or NO_PARENT
        flat.append(message)
        children = node.get("children")
        if isinstance(children, list):
            own_id = str(message.get("messageId"))
            stack.extend((child, own_id) for child in reversed(children))
    return flat


def parse_json(data: bytes) -> Any:
    """``json.loads``, also for documents nested deeper than Python's recursion limit
    (a recursive export nests two levels per turn): those are parsed again on a thread
    with a large stack and a raised limit; beyond DEEP_LEVELS it is a RecursionError."""
    try:
        return json.loads(data)
    except RecursionError:
        pass
    outcome: dict[str, Any] = {}

    def parse() -> None:
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, DEEP_LEVELS))
        try:
            outcome["value"] = json.loads(data)
        except BaseException as exc:  # handed to the calling thread
            outcome["error"] = exc
        finally:
            sys.setrecursionlimit(limit)

    previous = threading.stack_size(DEEP_STACK)
    try:
        worker = threading.Thread(target=parse, name="chatledger-deep-json")
        worker.start()
    finally:
        threading.stack_size(previous)
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def export_messages(document: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The messages of an export, flat: ``messages`` (flat, or nested with ``children``
    when ``recursive``), else ``messagesTree``; None when it has neither."""
    for field in ("messages", "messagesTree"):
        nodes = document.get(field)
        if isinstance(nodes, list):
            if any(isinstance(node, dict) and "children" in node for node in nodes):
                return flatten(nodes)
            return list(nodes)
    return None


def _file_facts(path: Path) -> dict[str, Any]:
    """Name, size and sha256 of an export file (an unreadable one is rejected when read)."""
    try:
        body = path.read_bytes()
    except OSError as exc:
        return {"file": printable_path(path), "error": str(exc)}
    return {"file": printable_path(path), "bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def _created_order(message: Any) -> tuple[bool, Any]:
    """Messages by ``createdAt``, those without one (or not objects) last, stably."""
    created = moment(message.get("createdAt")) if isinstance(message, dict) else None
    return created is None, created or 0


def _not_an_export(document: Any) -> str:
    """What a JSON document that is not a LibreChat export is instead."""
    found = export_format(document)
    if found is not None and found.name != "librechat":
        return f"this looks like {describe_export(document)}"
    if not isinstance(document, dict):
        return f"a JSON {type(document).__name__}, not an object with a conversationId"
    if not isinstance(document.get("conversationId"), str):
        return "no conversationId"
    return "neither messages nor messagesTree"


class ExportStore(Store):
    kind = "json-export"

    def __init__(self, paths: list[Path], owner_email: str, owner_id: str) -> None:
        self.paths, self.links = export_files(paths)
        if not self.paths:
            # read as complete, an empty input would delete every conversation seen before
            shown = ", ".join(printable_path(path) for path in paths)
            raise ConfigError(f"librechat: no *.json export files under {shown}: nothing to read")
        self.owner = {"_id": owner_id, "email": owner_email.strip().lower(), "provider": "json-export"}
        self._digests: list[dict[str, Any]] | None = None

    def digests(self) -> list[dict[str, Any]]:
        if self._digests is None:
            self._digests = [_file_facts(path) for path in self.paths if path not in self.links]
        return self._digests

    def fingerprint(self) -> str:
        body = repr(
            [(facts["file"], facts.get("sha256")) for facts in self.digests()] + [self.owner["email"]]
        )
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
                yield Reject(
                    item.location, f"conversation {conversation_id} is exported twice; the first file is kept"
                )
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
        where = printable_path(path)
        problem = name_problem(path) or (
            "a symbolic link inside an export folder: not followed" if path in self.links else None
        )
        if problem:
            return Reject(where, problem)
        try:
            document = parse_json(path.read_bytes())
        except RecursionError:
            return Reject(where, f"nested deeper than {DEEP_LEVELS} levels: not read")
        except (OSError, ValueError) as exc:
            return Reject(where, f"not a readable JSON file: {exc}")
        messages = export_messages(document) if isinstance(document, dict) else None
        if messages is None or not isinstance(document.get("conversationId"), str):
            return Reject(where, f"not a LibreChat export: {_not_an_export(document)}")
        messages.sort(key=_created_order)
        return Bundle(0, self._conversation(document, messages), messages, where)

    def _conversation(self, export: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The conversations document an export stands for."""
        stamps = [
            m.get(field) for m in messages if isinstance(m, dict) for field in ("createdAt", "updatedAt")
        ]
        times = [t for t in map(moment, stamps) if t is not None]
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
            "export": {
                key: value for key, value in export.items() if key not in ("messages", "messagesTree")
            },
        }

    def files(self, file_ids: list[str]) -> dict[str, dict[str, Any]]:
        return {}
