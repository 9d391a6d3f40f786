"""A conversation unit as the AI MCP Toolkit's ``conversations`` document, and the
fingerprint verify compares (what the app shows of it).

The document (``models/documents.py`` ``Conversation`` at 628c503):

- ``_id``: an ObjectId derived from stream and key (the same on every run);
- ``user_id``: the owner's ``users._id`` (an ObjectId, or its string with
  ``user_id_type = "string"``);
- ``title``: the conversation's title, else "New Conversation" (the app's default);
- ``messages``: the active branch, oldest first, as the app embeds them:
  ``{id, role, content, timestamp, metrics?, model?}``. ``id`` is the message's own id
  at the source (the browser id for localStorage; the app's frontend uses it as the
  message id), ``role`` is ``user``/``assistant``/``system`` (a ``tool`` message is
  an ``assistant`` one), ``content`` the text parts (code fenced), ``timestamp`` the
  message time as ``Date.toISOString()`` writes it, ``metrics`` the browser's metrics
  (from a LibreChat or other stream: ``promptTokens``/``completionTokens``/
  ``totalTokens`` from the token usage), ``model`` when known;
- ``status``: ``archived`` for an archived conversation, else ``active``;
- ``metadata``: ``thinkingTimes``, ``averageThinkingTime``, ``totalThinkingTime``,
  ``responseCount`` (the browser's values; elsewhere ``[]``, 0, 0 and the number of
  answers), ``source`` (stream, key and the conversation's own id, so every document's
  origin is traceable) and, only when the conversation has branches,
  ``other_branches`` (the messages off the active branch, each with its ``parent`` id):
  the app shows one flat list, nothing is lost;
- ``created_at``/``updated_at``: the original times as naive UTC datetimes (as the app
  writes them), to the millisecond (BSON's precision).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from bson import ObjectId

from ledger.kit import EPOCH, ConversationView, Item, digest, document_id, message_text, parse_time

DEFAULT_TITLE = "New Conversation"
THINKING_DEFAULTS = {"thinkingTimes": [], "averageThinkingTime": 0, "totalThinkingTime": 0}
ROLES = {"user": "user", "assistant": "assistant", "system": "system", "tool": "assistant"}
USAGE = (
    ("input_tokens", "promptTokens"),
    ("output_tokens", "completionTokens"),
    ("total_tokens", "totalTokens"),
)
SHOWN = ("user_id", "title", "messages", "status", "metadata", "created_at", "updated_at")


def naive_utc(value: dt.datetime) -> dt.datetime:
    """A naive UTC datetime to the millisecond: what BSON stores and the app writes."""
    value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def iso_js(value: dt.datetime) -> str:
    """``Date.prototype.toISOString``: ``2024-03-01T10:00:05.123Z``."""
    value = naive_utc(value)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _metrics(data: dict[str, Any]) -> dict[str, Any] | None:
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    if isinstance(metadata.get("metrics"), dict):
        return metadata["metrics"]
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    found = {name: usage[native] for native, name in USAGE if isinstance(usage.get(native), (int, float))}
    return found or None


def message(item: Item, fallback: dt.datetime) -> dict[str, Any]:
    data = item.data
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    native_id = metadata.get("source_id")
    shown: dict[str, Any] = {
        "id": str(native_id) if isinstance(native_id, (str, int)) and native_id != "" else item.key,
        "role": ROLES.get(data.get("role"), "user"),
        "content": message_text(data, code=True),
        "timestamp": iso_js(parse_time(data.get("created_at")) or fallback),
    }
    metrics = _metrics(data)
    if metrics is not None:
        shown["metrics"] = metrics
    if isinstance(data.get("model"), str) and data["model"]:
        shown["model"] = data["model"]
    return shown


def _times(view: ConversationView, messages: list[Item]) -> tuple[dt.datetime, dt.datetime]:
    stamps = [t for t in (parse_time(i.data.get("created_at")) for i in messages) if t is not None]
    created = parse_time(view.data.get("created_at")) or (min(stamps) if stamps else EPOCH)
    updated = parse_time(view.data.get("updated_at")) or (max(stamps) if stamps else created)
    return naive_utc(created), naive_utc(updated)


def conversation_document(view: ConversationView, stream: str, user_id: Any) -> dict[str, Any]:
    """The app's document of a live conversation unit (without the marker)."""
    branch = [view.messages[key] for key in view.active_branch]
    created, updated = _times(view, list(view.messages.values()))
    source_metadata = view.data.get("metadata") if isinstance(view.data.get("metadata"), dict) else {}
    messages = [message(item, created) for item in branch]
    metadata = {
        **THINKING_DEFAULTS,
        "responseCount": sum(m["role"] == "assistant" for m in messages),
        **{
            name: source_metadata[name]
            for name in (*THINKING_DEFAULTS, "responseCount")
            if name in source_metadata
        },
        "source": {"stream": stream, "key": view.unit.key, "id": source_metadata.get("source_id")},
    }
    on_branch = set(view.active_branch)
    others = [item for item in view.ordered() if item.key not in on_branch]
    if others:
        ids = {item.key: message(item, created)["id"] for item in view.messages.values()}
        metadata["other_branches"] = [
            {**message(item, created), "parent": ids.get(view.parents[item.key])} for item in others
        ]
    return {
        "_id": document_id(stream, view.unit.key),
        "user_id": user_id,
        "title": view.title or DEFAULT_TITLE,
        "messages": messages,
        "status": "archived" if view.data.get("archived") else "active",
        "metadata": metadata,
        "created_at": created,
        "updated_at": updated,
    }


def fingerprint(document: dict[str, Any] | None) -> str | None:
    """What the app shows of a document (its ConversationResponse fields), hashed; the
    owner and the message count are part of it."""
    if document is None:
        return None
    shown = {name: document.get(name) for name in SHOWN}
    user_id = shown["user_id"]
    shown["user_id"] = {"objectid": str(user_id)} if isinstance(user_id, ObjectId) else user_id
    for name in ("created_at", "updated_at"):
        if isinstance(shown[name], dt.datetime):
            shown[name] = shown[name].isoformat()
    shown["message_count"] = len(shown["messages"] or [])
    return digest(shown)
