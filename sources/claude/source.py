"""The ``claude`` source: a Claude.ai data export (``conversations.json`` + ``users.json``).

Input (``path``, repeatable; folders are searched): the export ZIP, or its
``conversations.json`` (an array of conversations, or one conversation) with
``users.json`` beside it. One scope per file. Each conversation's ``account.uuid`` is its
owner (``users.json`` gives the name and email); without one, the ``owner`` option.

Keys: ``user:<uuid | owner>``, ``conversation:<uuid>``, ``message:<conversation
uuid>/<message uuid>``, ``file:<message uuid>/attachment/<n>`` (pasted or uploaded text),
``file:<file_uuid>`` or ``file:<message uuid>/file/<n>`` (files known by name only).

Messages (``chat_messages``): ``sender`` ``human`` → ``user``, ``assistant`` →
``assistant``. Parts come from ``content`` blocks (the richer source: thinking exists only
there, and ``text`` can be empty while ``content`` holds the text); ``text`` is the
fallback when ``content`` is missing or empty:

| block | part |
| --- | --- |
| ``text`` | ``text``, then one ``citation`` per entry of ``citations`` (``start_index``/``end_index``, url, title) |
| ``thinking`` | ``reasoning`` with ``summaries`` (texts) and ``cut_off`` |
| ``tool_use`` | ``tool_call`` {id, name, args = ``input``} |
| ``tool_result`` | ``tool_result`` {id = ``tool_use_id``, name, result (text blocks joined, else native), is_error} |
| anything else | ``other`` with the native block |

``attachments`` (text Claude extracted from uploads and large pastes) are file records
whose bytes are that text (``text/plain``; the upload's own ``file_type`` and
``file_size`` kept in ``metadata``); ``files`` are known by name only: file records with
``missing`` saying so. Both are ``file`` parts of the message.

Tree: when messages carry ``parent_message_uuid`` (newer exports; the root sentinel
``00000000-0000-4000-8000-000000000000`` means none), it is used and
``current_leaf_message_uuid`` (else the newest leaf) is the active leaf; otherwise the
messages form one chain in array order and the last is the active leaf.

Time rule: along the array order, a message's time never goes backwards. A null
``created_at`` takes the time of the message before it (the first message: the
conversation's ``created_at``); a time earlier than the one before it is raised to it.
Either way ``metadata.time_adjusted`` says why and ``raw`` keeps the native value. A
conversation's null ``created_at`` is its first message's time; an ``updated_at`` that
is null or earlier than its newest message is that message's time.

A conversation that is not an object, has no ``uuid``, or whose ``chat_messages`` is not a
list is a reject; so is a message without ``uuid`` (and a repeated one). The rest lands.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.kit import (
    ExportError,
    ExportSource,
    JsonValues,
    Package,
    Record,
    Reject,
    blob_ref,
    build_tree,
    format_name,
    json_document,
    moment,
    option,
)

ROOT_SENTINEL = "00000000-0000-4000-8000-000000000000"
ROLES = {"human": "user", "user": "user", "assistant": "assistant", "system": "system"}


@dataclass
class ClaudeOptions:
    path: list[Path] = option(
        help="The Claude.ai export ZIP, its conversations.json, or a folder holding them."
    )
    owner: str = option("", help="The owner (an email or a name) of conversations that name no account.")


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def conversation_key(conversation_id: str) -> str:
    return f"conversation:{conversation_id}"


def message_key(conversation_id: str, message_id: str) -> str:
    return f"message:{conversation_id}/{message_id}"


class ClaudeSource(ExportSource):
    type_name = "claude"
    Options = ClaudeOptions
    format_name = "claude"
    reader_version = 1

    def read_package(self, package: Package) -> Iterator[list]:
        members = package.named("conversations.json")
        if not members:
            raise self.wrong_format(None, f"{package.path} (no conversations.json)")
        users = self._users(package)
        emitted: set[str] = set()
        # the users land with the first conversation: a file of another format lands nothing
        pending = [self._user(uuid, user, emitted) for uuid, user in users.items()]
        where = package.where(members[0])
        with package.stream(members[0]) as handle:
            for index, value in enumerate(JsonValues(handle, where)):
                if index == 0 and format_name(value) not in ("claude", None):
                    raise self.wrong_format(value, where)
                location = f"{where}[{index}]"
                items = ClaudeConversation(self, value, location).items()
                owner = _dict(value.get("account")).get("uuid") if isinstance(value, dict) else None
                owner = owner or self.options.owner
                if owner and owner not in emitted and any(isinstance(i, Record) for i in items):
                    items.insert(0, self._user(owner, users.get(owner), emitted))
                yield [*pending, *items]
                pending = []

    def _users(self, package: Package) -> dict[str, dict[str, Any]]:
        entry = package.sibling("users.json")
        if entry is None:
            return {}
        with package.stream(entry) as handle:
            users = json_document(handle, package.where(entry))
        users = users if isinstance(users, list) else [users]
        return {u["uuid"]: u for u in users if isinstance(u, dict) and isinstance(u.get("uuid"), str)}

    def _user(self, uuid: str, user: dict[str, Any] | None, emitted: set[str]) -> Record:
        emitted.add(uuid)
        user = user or {}
        email = user.get("email_address")
        return self.owner_record(
            uuid,
            user or None,
            email=email.lower() if isinstance(email, str) else None,
            name=user.get("full_name"),
        )


class ClaudeConversation:
    def __init__(self, source: ClaudeSource, document: Any, location: str) -> None:
        self.source = source
        self.make = source.record
        self.document = document
        self.location = location

    def items(self) -> list:
        document = self.document
        if not isinstance(document, dict):
            return [
                Reject(
                    self.location,
                    f"a conversation must be an object, not {type(document).__name__}",
                    document,
                )
            ]
        uuid = document.get("uuid")
        if not isinstance(uuid, str) or not uuid:
            return [Reject(self.location, "a conversation without uuid", document)]
        self.id, self.where = uuid, f"{self.location} conversation {uuid}"
        key = conversation_key(uuid)
        messages = document.get("chat_messages")
        if not isinstance(messages, list):
            return [Reject(self.where, "chat_messages is missing or not a list", document, key)]
        try:
            owner = self.source.owner_id(_dict(document.get("account")).get("uuid"), self.where)
        except ExportError as exc:  # no owner for this conversation
            return [Reject(self.where, str(exc), document, key)]
        self.owner_key = f"user:{owner}"
        kept, rejects = self._unique(messages)
        times = self._times(kept)
        tree_mode = any("parent_message_uuid" in m for m in kept)
        links, previous = [], None
        for message in kept:
            parent = message.get("parent_message_uuid") if tree_mode else previous
            links.append((message["uuid"], None if parent == ROOT_SENTINEL else parent))
            previous = message["uuid"]
        tree = build_tree(links)
        leaf = self._active_leaf(tree, times, tree_mode)
        records: list = []
        for message in kept:
            records += self.message(
                message, tree.parents[message["uuid"]], tree.orphans.get(message["uuid"]), times
            )
        return [self.conversation(leaf, times, tree_mode), *records, *rejects]

    def _unique(self, messages: list[Any]) -> tuple[list[dict[str, Any]], list[Reject]]:
        kept, rejects, seen = [], [], set()
        for index, message in enumerate(messages):
            where = f"{self.where} message [{index}]"
            uuid = message.get("uuid") if isinstance(message, dict) else None
            if not isinstance(uuid, str) or not uuid:
                rejects.append(Reject(where, "a message must be an object with a uuid", message))
            elif uuid in seen:
                key = message_key(self.id, uuid)
                rejects.append(
                    Reject(where, f"message {uuid} appears twice; the first is kept", message, key)
                )
            else:
                seen.add(uuid)
                kept.append(message)
        return kept, rejects

    def _times(self, messages: list[dict[str, Any]]) -> dict[str, tuple[dt.datetime | None, str | None]]:
        """uuid → (time, why it was adjusted): see the time rule in the module doc."""
        out = {}
        previous = moment(self.document.get("created_at"))
        for message in messages:
            own = moment(message.get("created_at"))
            if own is None:
                out[message["uuid"]] = (previous, "created_at is null: the time of the message before it")
            elif previous is not None and own < previous:
                out[message["uuid"]] = (
                    previous,
                    "created_at is earlier than the message before it: raised to it",
                )
            else:
                out[message["uuid"]] = (own, None)
                previous = own
        return out

    def _active_leaf(self, tree, times, tree_mode: bool) -> str | None:
        named = self.document.get("current_leaf_message_uuid")
        if named in tree.parents:
            return named
        if not tree_mode:
            return tree.order[-1] if tree.order else None
        return tree.newest_leaf({uuid: time for uuid, (time, _) in times.items()})

    def conversation(self, leaf: str | None, times, tree_mode: bool) -> Record:
        document = self.document
        known = [time for time, _ in times.values() if time is not None]
        created = moment(document.get("created_at")) or (min(known) if known else None)
        updated = moment(document.get("updated_at"))
        if known and (updated is None or updated < max(known)):
            updated = max(known)
        name = document.get("name")
        data = {
            "owner": self.owner_key,
            "title": name if isinstance(name, str) and name.strip() else None,
            "created_at": created,
            "updated_at": updated or created,
            "assistant": None,
            "model": document.get("model") if isinstance(document.get("model"), str) else None,
            "system_prompt": None,
            "pinned": bool(document.get("is_starred")),
            "archived": False,
            "tags": [],
            "active_leaf": message_key(self.id, leaf) if leaf else None,
            "metadata": {
                "source_id": self.id,
                "summary": document.get("summary") or None,
                "project": _dict(document.get("project")).get("uuid"),
                "tree": "parent_message_uuid" if tree_mode else "array order",
            },
        }
        raw = {k: v for k, v in document.items() if k != "chat_messages"}
        return self.make("conversation", conversation_key(self.id), data, raw, [self.owner_key])

    def message(
        self, message: dict[str, Any], parent: str | None, orphan_of: str | None, times
    ) -> list[Record]:
        uuid = message["uuid"]
        time, adjusted = times[uuid]
        files = self.file_records(message)
        parts = message_parts(message) + [{"type": "file", "file": record.key} for record in files]
        sender = message.get("sender")
        metadata = {"source_id": uuid, "sender": sender, "time_adjusted": adjusted, "orphan_of": orphan_of}
        data = {
            "conversation": conversation_key(self.id),
            "parent": message_key(self.id, parent) if parent else None,
            "role": ROLES.get(sender, "assistant"),
            "author": sender,
            "model": None,
            "created_at": time,
            "updated_at": moment(message.get("updated_at")),
            "status": "complete",
            "parts": parts,
            "files": [record.key for record in files],
            "sibling_group": 0,
            "usage": {},
            "feedback": None,
            "metadata": {k: v for k, v in metadata.items() if v is not None},
        }
        key = message_key(self.id, uuid)
        refs = [data["conversation"], data["parent"], *data["files"]]
        return [*files, self.make("message", key, data, message, refs)]

    def file_records(self, message: dict[str, Any]) -> list[Record]:
        uuid = message["uuid"]
        out = []
        for index, attachment in enumerate(message.get("attachments") or []):
            if isinstance(attachment, dict):
                ident = attachment.get("id") or f"{uuid}/attachment/{index}"
                out.append(self._attachment(f"file:{ident}", attachment))
        for index, entry in enumerate(message.get("files") or []):
            if isinstance(entry, dict):
                ident = entry.get("file_uuid") or f"{uuid}/file/{index}"
                data = self._file_data(entry.get("file_name"), None)
                data["missing"] = "the Claude.ai export holds only this file's name"
                out.append(self.make("file", f"file:{ident}", data, entry, [self.owner_key]))
        return out

    def _attachment(self, key: str, attachment: dict[str, Any]) -> Record:
        data = self._file_data(attachment.get("file_name"), "text/plain")
        data["metadata"] = {
            "file_type": attachment.get("file_type"),
            "file_size": attachment.get("file_size"),
        }
        text = attachment.get("extracted_content")
        if isinstance(text, str):
            body = text.encode("utf-8")
            digest = self.source.context.blobs.put_bytes(body)
            data.update(sha256=digest, blob=blob_ref(digest), size=len(body))
        else:
            data["missing"] = "the Claude.ai export holds no extracted_content for this attachment"
        raw = {k: v for k, v in attachment.items() if k != "extracted_content"}
        return self.make("file", key, data, raw, [self.owner_key])

    def _file_data(self, filename: Any, mime: str | None) -> dict[str, Any]:
        return {
            "owner": self.owner_key,
            "filename": filename if isinstance(filename, str) and filename else None,
            "mime": mime,
            "size": None,
            "sha256": None,
            "blob": None,
            "missing": None,
        }


def message_parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = message.get("content") if isinstance(message.get("content"), list) else []
    parts = [part for block in blocks for part in _block(block)]
    if not parts and isinstance(message.get("text"), str) and message["text"]:
        parts = [{"type": "text", "text": message["text"]}]
    return parts


def _block(block: Any) -> list[dict[str, Any]]:
    if not isinstance(block, dict):
        return [{"type": "other", "native": block}]
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        return [
            {"type": "text", "text": block["text"]},
            *[_citation(c) for c in block.get("citations") or []],
        ]
    if kind == "thinking":
        summaries = [_dict(s).get("summary") for s in block.get("summaries") or []]
        return [
            {
                "type": "reasoning",
                "text": block.get("thinking") or "",
                "summaries": [s for s in summaries if isinstance(s, str)],
                "cut_off": bool(block.get("cut_off")),
                "started_at": block.get("start_timestamp"),
                "stopped_at": block.get("stop_timestamp"),
            }
        ]
    if kind == "tool_use":
        return [
            {
                "type": "tool_call",
                "id": block.get("id"),
                "name": block.get("name"),
                "args": block.get("input"),
            }
        ]
    if kind == "tool_result":
        content = block.get("content")
        texts = [b.get("text") for b in content if isinstance(b, dict)] if isinstance(content, list) else []
        joined = "\n".join(t for t in texts if isinstance(t, str))
        return [
            {
                "type": "tool_result",
                "id": block.get("tool_use_id"),
                "name": block.get("name"),
                "result": joined if joined else content,
                "is_error": bool(block.get("is_error")),
            }
        ]
    return [{"type": "other", "native": block}]


def _citation(citation: Any) -> dict[str, Any]:
    entry = _dict(citation)
    details = _dict(entry.get("details"))
    return {
        "type": "citation",
        "start": entry.get("start_index"),
        "end": entry.get("end_index"),
        "url": details.get("url") or entry.get("url"),
        "title": details.get("title") or entry.get("title"),
        "native": citation,
    }
