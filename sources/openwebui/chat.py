"""One Open WebUI chat (a ``chat`` row, or a bare chat document) → canonical records.

Keys: ``conversation:<chat id>`` (the row's ``id``; ``chat.id`` can be ``""``),
``message:<chat id>/<message id>``, ``file:<file id>`` (an uploaded file) or
``file:<chat id>/<message id>/<n>`` (an inline ``data:`` image, whose bytes are decoded
into the blob store).

Tree: ``chat.history.messages`` holds every branch; the tree is built from ``parentId``
(``childrenIds`` is unreliable in chats converted from ChatGPT). ``history.currentId``
is the active leaf; when it is missing or not a message, the newest leaf (by
``timestamp``) — what Open WebUI itself does. Without ``history``, the legacy
``chat.messages`` list is read (its ``parentId``, else array order).

Conversation: ``title``, times (row ``created_at``/``updated_at``; else ``chat.timestamp``),
``model`` (the first of ``chat.models``), ``system_prompt`` (``chat.params.system``, else
``chat.system``), ``pinned``, ``archived``, ``tags`` (row ``meta.tags``, else
``chat.tags``), ``metadata``: ``folder_id``, ``share_id``, ``models``, ``source_id``.

Message: ``role``, ``author`` (``modelName`` / ``model`` of an answer), ``model``,
``created_at`` (``timestamp``), ``status`` (``error`` when ``error``, ``aborted`` when
``done`` is false), parts (see :mod:`sources.openwebui.content`; an ``error`` adds an
``error`` part, ``sources`` / ``citations`` add ``citation`` parts), ``files``,
``usage`` (``usage``, else the older ``info``), ``feedback`` (``annotation.rating`` ±1),
``sibling_group`` 1 for the answers of a multi-model question (the user message's
``models`` lists more than one).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

from ledger.kit import MESSAGE_ROLES, ExportError, Record, Reject, blob_ref, build_tree, guess_mime, moment
from sources.openwebui.content import message_parts

FILE_TYPES = ("file", "image", "doc")
NO_BYTES = "Open WebUI exports hold no file bytes (they stay in the server's uploads folder)"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _json(value: Any) -> Any:
    """A JSON column as a value (SQLite keeps text; Postgres drivers decode it)."""
    if isinstance(value, (str, bytes)):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def conversation_key(chat_id: str) -> str:
    return f"conversation:{chat_id}"


def message_key(chat_id: str, message_id: str) -> str:
    return f"message:{chat_id}/{message_id}"


def as_row(value: Any) -> dict[str, Any] | None:
    """A ``chat`` row from an export element: a row as it is, a bare chat wrapped."""
    if not isinstance(value, dict):
        return None
    if "chat" in value:
        return value
    # a bare chat: ``history`` is a map (Chatbot UI's is a list), or the legacy
    # ``messages`` list of a chat (Chatbot UI conversations have a ``name``, chats a ``title``)
    if isinstance(value.get("history"), dict) or (
        isinstance(value.get("messages"), list) and "name" not in value
    ):
        return {"id": value.get("id"), "title": value.get("title"), "chat": value}
    return None


class ChatReader:
    """Records of one chat row. ``make`` builds records; ``put_bytes`` stores a blob."""

    def __init__(
        self, make: Callable[..., Record], put_bytes: Callable[[bytes], str], owner_id: Callable
    ) -> None:
        self.make = make
        self.put_bytes = put_bytes
        self.owner_id = owner_id  # (named owner, where) → owner id, or raises ExportError

    def items(self, row: dict[str, Any], location: str) -> list:
        chat = _json(row.get("chat"))
        chat_id = row.get("id") or _dict(chat).get("id")
        if not isinstance(chat_id, str) or not chat_id:
            return [Reject(location, "a chat without id", row)]
        where, key = f"{location} chat {chat_id}", conversation_key(chat_id)
        if not isinstance(chat, dict):
            return [Reject(where, "the chat document is missing or not an object", row, key)]
        messages = self._messages(chat)
        if messages is None:
            return [Reject(where, "the chat has neither history.messages nor messages", row, key)]
        try:
            owner = self.owner_id(row.get("user_id"), where)
        except ExportError as exc:
            return [Reject(where, str(exc), row, key)]
        return Chat(self, row, chat, chat_id, f"user:{owner}", where, messages).items()

    @staticmethod
    def _messages(chat: dict[str, Any]) -> dict[str, Any] | None:
        history = _dict(chat.get("history"))
        if isinstance(history.get("messages"), dict):
            return history["messages"]
        if isinstance(chat.get("messages"), list):
            out, previous = {}, None
            for index, message in enumerate(chat["messages"]):
                ident = str(_dict(message).get("id") or index)
                if isinstance(message, dict) and "parentId" not in message:
                    message = {**message, "parentId": previous}
                out[ident], previous = message, ident
            return out
        return None


class Chat:
    def __init__(self, reader, row, chat, chat_id, owner_key, where, messages) -> None:
        self.reader, self.row, self.chat, self.id = reader, row, chat, chat_id
        self.owner_key, self.where = owner_key, where
        self.rejects: list[Reject] = []
        self.messages: dict[str, dict[str, Any]] = {}
        for ident, message in messages.items():
            if isinstance(message, dict):
                self.messages[str(ident)] = message
            else:
                reason = "a message must be an object"
                self.rejects.append(
                    Reject(f"{where} message {ident}", reason, message, message_key(chat_id, str(ident)))
                )

    def items(self) -> list:
        tree = build_tree((ident, m.get("parentId")) for ident, m in self.messages.items())
        times = {ident: moment(m.get("timestamp")) for ident, m in self.messages.items()}
        named = _dict(self.chat.get("history")).get("currentId") or self.chat.get("currentId")
        leaf = named if named in self.messages else tree.newest_leaf(times)
        out: list = []
        for ident in tree.order:
            out += self.message(ident, tree.parents[ident], tree.orphans.get(ident))
        head = self.conversation(leaf, "history.currentId" if leaf == named else "newest leaf", times)
        return [head, *out, *self.rejects]

    def conversation(self, leaf: str | None, rule: str, times: dict[str, Any]) -> Record:
        row, chat = self.row, self.chat
        meta = _dict(_json(row.get("meta")))
        models = [m for m in chat.get("models") or [] if isinstance(m, str)]
        known = [t for t in times.values() if t is not None]
        created = (
            moment(row.get("created_at")) or moment(chat.get("timestamp")) or (min(known) if known else None)
        )
        system = _dict(chat.get("params")).get("system") or chat.get("system")
        title = row.get("title") or chat.get("title")
        data = {
            "owner": self.owner_key,
            "title": title if isinstance(title, str) and title.strip() else None,
            "created_at": created,
            "updated_at": moment(row.get("updated_at")) or (max(known) if known else created),
            "assistant": None,
            "model": models[0] if models else None,
            "system_prompt": system if isinstance(system, str) and system.strip() else None,
            "pinned": bool(row.get("pinned")),
            "archived": bool(row.get("archived")),
            "tags": _tags(meta.get("tags") if "tags" in meta else chat.get("tags")),
            "active_leaf": message_key(self.id, leaf) if leaf else None,
            "metadata": {
                "source_id": self.id,
                "active_leaf_rule": rule,
                "folder_id": row.get("folder_id"),
                "share_id": row.get("share_id"),
                "models": models,
            },
        }
        chat_raw = {k: v for k, v in chat.items() if k not in ("history", "messages")}
        chat_raw["history"] = {k: v for k, v in _dict(chat.get("history")).items() if k != "messages"}
        raw = {**{k: _json(v) if k == "meta" else v for k, v in row.items() if k != "chat"}, "chat": chat_raw}
        return self.reader.make("conversation", conversation_key(self.id), data, raw, [self.owner_key])

    def message(self, ident: str, parent: str | None, orphan_of: str | None) -> list[Record]:
        message = self.messages[ident]
        native_role = message.get("role")
        role = native_role if native_role in MESSAGE_ROLES else "assistant"
        files = self.file_records(ident, message)
        parts = message_parts(message) + _error_parts(message) + _citations(message)
        parent_models = _dict(self.messages.get(parent)).get("models") if parent else None
        multi = role == "assistant" and isinstance(parent_models, list) and len(parent_models) > 1
        usage = message.get("usage") if isinstance(message.get("usage"), dict) else _dict(message.get("info"))
        extra = {
            "source_id": message.get("id"),
            "model_name": message.get("modelName"),
            "model_idx": message.get("modelIdx"),
            "native_role": native_role if native_role != role else None,
            "orphan_of": orphan_of,
        }
        data = {
            "conversation": conversation_key(self.id),
            "parent": message_key(self.id, parent) if parent else None,
            "role": role,
            "author": (message.get("modelName") or message.get("model")) if role == "assistant" else role,
            "model": message.get("model") if isinstance(message.get("model"), str) else None,
            "created_at": moment(message.get("timestamp")),
            "updated_at": None,
            "status": "error"
            if message.get("error")
            else "aborted"
            if message.get("done") is False
            else "complete",
            "parts": parts + [{"type": "file", "file": record.key} for record in files],
            "files": [record.key for record in files],
            "sibling_group": 1 if multi else 0,
            "usage": usage,
            "feedback": _feedback(message.get("annotation")),
            "metadata": {k: v for k, v in extra.items() if v is not None},
        }
        key = message_key(self.id, ident)
        refs = [data["conversation"], data["parent"], *data["files"]]
        return [*files, self.reader.make("message", key, data, message, refs)]

    def file_records(self, ident: str, message: dict[str, Any]) -> list[Record]:
        out = []
        for index, entry in enumerate(message.get("files") or []):
            if not isinstance(entry, dict) or entry.get("type", "file") not in FILE_TYPES:
                continue  # knowledge collections and web pages are references, not files
            nested = _dict(entry.get("file"))
            meta = _dict(nested.get("meta"))
            file_id = entry.get("id") or nested.get("id")
            name = entry.get("name") or nested.get("filename") or meta.get("name")
            key = (
                f"file:{file_id}"
                if isinstance(file_id, str) and file_id
                else f"file:{self.id}/{ident}/{index}"
            )
            size = entry.get("size") if isinstance(entry.get("size"), int) else meta.get("size")
            data = {
                "owner": self.owner_key,
                "filename": name if isinstance(name, str) else None,
                "mime": meta.get("content_type") or guess_mime(name if isinstance(name, str) else None),
                "size": size if isinstance(size, int) else None,
                "sha256": None,
                "blob": None,
                "missing": NO_BYTES,
            }
            inline = _data_url(entry.get("url"))
            if inline is not None:
                mime, body = inline
                digest = self.reader.put_bytes(body)
                data.update(mime=mime, size=len(body), sha256=digest, blob=blob_ref(digest), missing=None)
            raw = {k: v for k, v in entry.items() if k != "url"} if inline else entry
            out.append(self.reader.make("file", key, data, raw, [self.owner_key]))
        return out


def _data_url(url: Any) -> tuple[str, bytes] | None:
    """(mime, bytes) of a base64 ``data:`` URL, else None."""
    if not isinstance(url, str) or not url.startswith("data:") or ";base64," not in url:
        return None
    head, payload = url[5:].split(";base64,", 1)
    try:
        return head or "application/octet-stream", base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None


def _tags(value: Any) -> list[str]:
    tags = []
    for tag in value if isinstance(value, list) else []:
        name = tag.get("name") if isinstance(tag, dict) else tag
        if isinstance(name, str) and name:
            tags.append(name)
    return tags


def _error_parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    error = message.get("error")
    if not error:
        return []
    text = (
        _dict(error).get("content") or (error if isinstance(error, str) else None) or message.get("content")
    )
    return [{"type": "error", "text": text if isinstance(text, str) else json.dumps(error)}]


def _citations(message: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for entry in message.get("sources") or message.get("citations") or []:
        source = _dict(_dict(entry).get("source"))
        metadata = [m for m in _dict(entry).get("metadata") or [] if isinstance(m, dict)]
        first = metadata[0] if metadata else {}
        out.append(
            {
                "type": "citation",
                "title": source.get("name") or first.get("name") or first.get("title"),
                "url": source.get("url") or first.get("source"),
                "native": entry,
            }
        )
    return out


def _feedback(annotation: Any) -> dict[str, Any] | None:
    rating = _dict(annotation).get("rating")
    if rating not in (1, -1):
        return None
    return {
        "rating": "up" if rating == 1 else "down",
        "tag": annotation.get("reason"),
        "text": annotation.get("comment"),
    }
