"""The ``chatgpt`` source: a ChatGPT data export (``conversations.json`` or the ZIP).

Input (``path``, repeatable; folders are searched for ``*.json`` and ``*.zip``): the
emailed export ZIP — ``conversations.json`` (or the split ``conversations-000.json`` …),
``user.json`` and the uploaded and generated files (``file-<id>-<name>``,
``file_<id>-…``, ``<conversation>/audio/…``) — or a ``conversations.json`` on its own
(an array, or a single conversation object), with ``user.json`` and the files beside it
when it was unpacked. One scope per file; ``user.json`` names the owner, else the
``owner`` option does.

Keys: ``user:<user.json id | owner>``, ``conversation:<conversation_id>``,
``message:<conversation_id>/<node id>`` (node ids such as ``client-created-root`` repeat
across conversations), ``file:<file id>`` (the id inside an asset pointer or an
attachment entry).

The tree is ``mapping``: every node with a message becomes a message record, with every
branch (regenerations and edits are siblings). Nodes that are not shown are not messages:
the root (``message: null``), nodes flagged ``metadata.is_visually_hidden_from_conversation``
and empty system messages; their children hang from the nearest shown ancestor, and the
nodes themselves stay in the conversation's ``raw.hidden_nodes``. The hidden
``user_editable_context`` node (custom instructions: ``user_profile``,
``user_instructions``) becomes the conversation's ``system_prompt``. ``current_node`` is
the active leaf; when it is hidden, its nearest shown ancestor; when it is missing, the
newest leaf (``metadata.active_leaf_rule`` says which). A parent id that is not in the
mapping, or a loop, re-roots the message (``metadata.orphan_of``). Times can be null and
children can be older than their parents: order comes from the tree, never from time.

A conversation without ``mapping`` (real arrays hold such entries), without an id, or
that is not an object is a reject naming the file and the conversation; the rest lands.
A node that is not an object is a reject of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ledger.kit import (
    MESSAGE_ROLES,
    ExportError,
    ExportSource,
    JsonValues,
    Package,
    Record,
    Reject,
    blob_ref,
    build_tree,
    format_name,
    guess_mime,
    json_document,
    moment,
    option,
)
from sources.chatgpt.content import file_ids, message_parts

CONVERSATION_FILES = re.compile(r"conversations(-\d+)?\.json")
HIDDEN_FLAG = "is_visually_hidden_from_conversation"
REASONING_FIELDS = ("finished_duration_sec", "reasoning_status", "reasoning_title", "reasoning_start_time")


@dataclass
class ChatGPTOptions:
    path: list[Path] = option(help="The export ZIP, a conversations.json, or a folder holding them.")
    owner: str = option(
        "", help="The owner (an email or a name) when the input has no user.json: a bare conversations.json."
    )


def conversation_key(conversation_id: str) -> str:
    return f"conversation:{conversation_id}"


def message_key(conversation_id: str, node_id: str) -> str:
    return f"message:{conversation_id}/{node_id}"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def is_hidden(message: dict[str, Any] | None) -> bool:
    """Not shown in ChatGPT: no message, flagged hidden, or an empty system message."""
    if message is None:
        return True
    if _dict(message.get("metadata")).get(HIDDEN_FLAG):
        return True
    content = _dict(message.get("content"))
    empty = not any(
        (isinstance(p, str) and p.strip()) or isinstance(p, dict) for p in content.get("parts") or []
    )
    return _dict(message.get("author")).get("role") == "system" and empty and not content.get("text")


def custom_instructions(content: dict[str, Any]) -> str | None:
    texts = [content.get(f) for f in ("user_profile", "user_instructions")]
    joined = "\n\n".join(t.strip() for t in texts if isinstance(t, str) and t.strip())
    return joined or None


def status_of(message: dict[str, Any]) -> str:
    status = str(message.get("status") or "")
    finish = _dict(_dict(message.get("metadata")).get("finish_details")).get("type")
    if "error" in status:
        return "error"
    if status == "in_progress" or "partial" in status or finish == "interrupted":
        return "aborted"
    return "complete"


class Assets:
    """The export's files by the id an asset pointer or attachment names: an entry whose
    base name is the id, or starts with it followed by ``-`` or ``.``."""

    def __init__(self, package: Package) -> None:
        self.package = package

    @cached_property
    def by_prefix(self) -> dict[str, str]:
        index: dict[str, str] = {}
        for entry in self.package.entries():
            name = entry.rsplit("/", 1)[-1]
            if name.endswith(".json") or name.endswith(".html"):
                continue
            index.setdefault(name, entry)
            for position, char in enumerate(name):
                if char in "-.":
                    index.setdefault(name[:position], entry)
        return index

    def find(self, file_id: str) -> str | None:
        return self.by_prefix.get(file_id)


class ChatGPTSource(ExportSource):
    type_name = "chatgpt"
    Options = ChatGPTOptions
    format_name = "chatgpt"
    reader_version = 1

    def read_package(self, package: Package) -> Iterator[list]:
        members = package.named("conversations.json", pattern=CONVERSATION_FILES)
        if not members:
            raise self._not_an_export(package)
        user = self._user(package)
        owner = self.owner_id(user.get("id") if user else None, str(package.path))
        owner_key = f"user:{owner}"
        email = user.get("email") if user else None
        # the owner lands with the first conversation: a file of another format lands nothing
        pending = [self.owner_record(owner, user, email=email.lower() if isinstance(email, str) else None)]
        reader = ConversationReader(self, package, owner_key)
        for member in members:
            with package.stream(member) as handle:
                values = JsonValues(handle, package.where(member))
                for index, value in enumerate(values):
                    if index == 0 and format_name(value) not in ("chatgpt", None):
                        raise self.wrong_format(value, package.where(member))
                    yield [*pending, *reader.conversation(value, f"{package.where(member)}[{index}]")]
                    pending = []

    def _user(self, package: Package) -> dict[str, Any] | None:
        entry = package.sibling("user.json")
        if entry is None:
            return None
        with package.stream(entry) as handle:
            user = json_document(handle, package.where(entry))
        return user if isinstance(user, dict) and isinstance(user.get("id"), str) else None

    def _not_an_export(self, package: Package) -> ExportError:
        """A ZIP without conversations.json: what its first JSON entry looks like."""
        for name in package.entries():
            if name.endswith(".json"):
                with package.stream(name) as handle:
                    first = next(iter(JsonValues(handle, package.where(name))), None)
                return self.wrong_format(first, f"{package.path} (no conversations.json; {name})")
        return ExportError(f"{package.path}: no conversations.json in the ZIP, and no JSON at all")


class ConversationReader:
    """Records of one export file's conversations; each file record once per file."""

    def __init__(self, source: ChatGPTSource, package: Package, owner_key: str) -> None:
        self.source = source
        self.package = package
        self.owner_key = owner_key
        self.assets = Assets(package)
        self.files_done: set[str] = set()

    def conversation(self, value: Any, location: str) -> list:
        if not isinstance(value, dict):
            return [Reject(location, f"a conversation must be an object, not {type(value).__name__}", value)]
        conversation_id = value.get("conversation_id") or value.get("id")
        if not isinstance(conversation_id, str) or not conversation_id:
            return [Reject(location, "a conversation without conversation_id or id", value)]
        where = f"{location} conversation {conversation_id}"
        key = conversation_key(conversation_id)
        if not isinstance(value.get("mapping"), dict):
            return [Reject(where, "the conversation has no mapping (its message tree)", value, key)]
        return Conversation(self, value, conversation_id, where).items()


class Conversation:
    """One conversation's tree read once."""

    def __init__(
        self, reader: ConversationReader, document: dict[str, Any], conversation_id: str, where: str
    ):
        self.reader = reader
        self.make = reader.source.record
        self.document = document
        self.id = conversation_id
        self.where = where
        self.rejects: list[Reject] = []
        self.nodes: dict[str, dict[str, Any]] = {}
        for node_id, node in document["mapping"].items():
            if isinstance(node, dict) and (node.get("message") is None or isinstance(node["message"], dict)):
                self.nodes[str(node_id)] = node
            else:
                self.rejects.append(
                    Reject(f"{where} node {node_id}", "a mapping node must be an object whose message is an object or null", node, message_key(conversation_id, str(node_id)))
                )  # fmt: skip
        self.shown = {n for n, node in self.nodes.items() if not is_hidden(node.get("message"))}

    def shown_ancestor(self, node_id: Any) -> str | None:
        """The nearest shown node at or above ``node_id``; an id that is not in the
        mapping as it is (so the tree reports the orphan); None for a root or a loop."""
        seen: set[str] = set()
        cursor = node_id
        while isinstance(cursor, str) and cursor in self.nodes and cursor not in seen:
            if cursor in self.shown:
                return cursor
            seen.add(cursor)
            cursor = self.nodes[cursor].get("parent")
        return cursor if isinstance(cursor, str) and cursor not in self.nodes else None

    def items(self) -> list:
        links = []
        for node_id in self.nodes:
            if node_id in self.shown:
                parent = self.nodes[node_id].get("parent")
                links.append((node_id, self.shown_ancestor(parent) if isinstance(parent, str) else None))
        tree = build_tree(links)
        times = {n: moment(self.nodes[n]["message"].get("create_time")) for n in tree.order}
        leaf, rule = self.active_leaf(tree, times)
        records = [
            self.message(node_id, tree.parents[node_id], tree.orphans.get(node_id)) for node_id in tree.order
        ]
        files = self.file_records(records)
        head = self.conversation_record(leaf, rule, len(tree.orphans))
        return [*files, head, *records, *self.rejects]

    def active_leaf(self, tree, times) -> tuple[str | None, str]:
        named = self.document.get("current_node")
        if isinstance(named, str) and named in self.shown:
            return named, "current_node"
        if isinstance(named, str) and named in self.nodes:
            ancestor = self.shown_ancestor(named)
            if ancestor in tree.parents:
                return ancestor, "nearest shown ancestor of current_node"
        return tree.newest_leaf(times), "newest leaf (current_node missing or not in the mapping)"

    def system_prompt(self) -> str | None:
        for node in self.nodes.values():
            content = _dict(_dict(node.get("message")).get("content"))
            if content.get("content_type") == "user_editable_context":
                found = custom_instructions(content)
                if found:
                    return found
        return None

    def conversation_record(self, leaf: str | None, rule: str, orphans: int) -> Record:
        document = self.document
        raw = {k: v for k, v in document.items() if k != "mapping"}
        raw["hidden_nodes"] = {n: node for n, node in self.nodes.items() if n not in self.shown}
        times = [
            moment(node["message"].get("create_time")) for n, node in self.nodes.items() if n in self.shown
        ]
        known = [t for t in times if t is not None]
        created = moment(document.get("create_time")) or (min(known) if known else None)
        data = {
            "owner": self.reader.owner_key,
            "title": document.get("title") if isinstance(document.get("title"), str) else None,
            "created_at": created,
            "updated_at": moment(document.get("update_time")) or (max(known) if known else created),
            "assistant": document.get("gizmo_id"),
            "model": document.get("default_model_slug"),
            "system_prompt": self.system_prompt(),
            "pinned": bool(document.get("is_starred") or document.get("pinned_time")),
            "archived": bool(document.get("is_archived")),
            "tags": [],
            "active_leaf": message_key(self.id, leaf) if leaf else None,
            "metadata": {
                "source_id": self.id,
                "active_leaf_rule": rule,
                "hidden_nodes": len(raw["hidden_nodes"]),
                "orphans": orphans,
                "gizmo_type": document.get("gizmo_type"),
                "conversation_template_id": document.get("conversation_template_id"),
                "origin": document.get("conversation_origin"),
            },
        }
        return self.make("conversation", conversation_key(self.id), data, raw, [self.reader.owner_key])

    def message(self, node_id: str, parent: str | None, orphan_of: str | None) -> Record:
        node = self.nodes[node_id]
        message = node["message"]
        author = _dict(message.get("author"))
        metadata = _dict(message.get("metadata"))
        native_role = author.get("role")
        role = native_role if native_role in MESSAGE_ROLES else "assistant"
        parent_message = _dict(self.nodes[parent]["message"]) if parent else {}
        calls_parent = (parent_message.get("recipient") or "all") != "all"
        call_id = parent if role == "tool" and calls_parent else None
        files = [f"file:{ident}" for ident in file_ids(message)]
        reasoning = {name: metadata[name] for name in REASONING_FIELDS if metadata.get(name) is not None}
        content = _dict(message.get("content"))
        if content.get("content_type") == "reasoning_recap" and isinstance(content.get("content"), str):
            reasoning["recap"] = content["content"]
        extra = {
            "source_id": message.get("id"),
            "recipient": message.get("recipient"),
            "channel": message.get("channel"),
            "end_turn": message.get("end_turn"),
            "content_type": content.get("content_type"),
            "native_role": native_role if native_role != role else None,
            "finish_reason": _dict(metadata.get("finish_details")).get("type"),
            "reasoning": reasoning or None,
            "orphan_of": orphan_of,
        }
        model = metadata.get("model_slug") or (
            self.document.get("default_model_slug") if role == "assistant" else None
        )
        data = {
            "conversation": conversation_key(self.id),
            "parent": message_key(self.id, parent) if parent else None,
            "role": role,
            "author": author.get("name") or native_role,
            "model": model,
            "created_at": moment(message.get("create_time")),
            "updated_at": moment(message.get("update_time")),
            "status": status_of(message),
            "parts": message_parts(message, call_id, lambda ident: f"file:{ident}"),
            "files": files,
            "sibling_group": 0,
            "usage": {},
            "feedback": None,
            "metadata": {name: value for name, value in extra.items() if value is not None},
        }
        key = message_key(self.id, node_id)
        return self.make("message", key, data, node, [data["conversation"], data["parent"], *files])

    def file_records(self, messages: list[Record]) -> list[Record]:
        out = []
        for record in messages:
            for file in record.data["files"]:
                if file not in self.reader.files_done:
                    self.reader.files_done.add(file)
                    out.append(self.file_record(file.removeprefix("file:"), record.raw["message"]))
        return out

    def file_record(self, file_id: str, message: dict[str, Any]) -> Record:
        attachment = next(
            (a for a in _dict(message.get("metadata")).get("attachments") or [] if isinstance(a, dict) and a.get("id") == file_id),
            {},
        )  # fmt: skip
        reader = self.reader
        entry = reader.assets.find(file_id)
        name = attachment.get("name") or (entry.rsplit("/", 1)[-1] if entry else None)
        data: dict[str, Any] = {
            "owner": reader.owner_key,
            "filename": name,
            "mime": attachment.get("mime_type") or guess_mime(name),
            "size": attachment.get("size") if isinstance(attachment.get("size"), int) else None,
            "sha256": None,
            "blob": None,
            "missing": None,
        }
        if entry is not None:
            with reader.package.stream(entry) as handle:
                digest, size = reader.source.context.blobs.put_stream(handle)
            data.update(sha256=digest, blob=blob_ref(digest), size=size)
        elif reader.package.is_zip:
            data["missing"] = f"the export ZIP holds no file for {file_id}"
        else:
            data["missing"] = f"no file for {file_id} beside {reader.package.path.name} (read the export ZIP)"
        raw = {"file_id": file_id, "entry": entry, "attachment": attachment or None}
        return reader.source.record("file", f"file:{file_id}", data, raw, [reader.owner_key])
