"""LibreChat documents → canonical records (DESIGN §2).

Keys (LibreChat message and conversation ids are unique per user only, so the user's
ObjectId hex is part of every key below the user):

| kind | key | from |
| --- | --- | --- |
| user | ``user:<userId>`` | ``users`` |
| conversation | ``conversation:<userId>/<conversationId>`` | ``conversations`` (+ ``sharedlinks``) |
| message | ``message:<userId>/<conversationId>/<messageId>`` | ``messages`` |
| file | ``file:<userId>/<file_id>`` | ``files`` by ``file_id`` (else the message's own entry) |

A file is keyed under the user whose conversation uses it, and owned by that user, so
each user's scope holds its own file records (a file used by two users yields two
records sharing one blob).

Conversation data: ``title``, ``model``, ``assistant`` (``agent_id`` or
``assistant_id``), ``system_prompt`` (``promptPrefix``, else ``system``, else
``instructions``), ``pinned``, ``archived`` (``isArchived`` or ``archivedAt``), ``tags``,
``active_leaf`` (see ``tree.py``) and ``metadata``: ``source_id`` (the
conversationId), ``endpoint``, ``endpoint_type``, ``shared`` and ``share_ids`` (a
``sharedlinks`` document exists), ``temporary``, and ``preset`` (the preset fields that
are set).

Message data: ``role`` (``user`` when ``isCreatedByUser``, else ``assistant``),
``author`` (``sender``), ``model``, ``status`` (``error`` when ``error``, ``aborted``
when ``unfinished``, else ``complete``), ``parts`` (see ``parts.py``), ``files``,
``usage`` (``tokens``: LibreChat's ``tokenCount`` for this message's text;
``summary_tokens``), ``feedback`` (``rating`` up/down, ``tag``, ``text``) and
``metadata`` (``endpoint``, ``finish_reason``, ``added_convo``, ``edited``,
``orphan_of``: the parent id that was not found). Timestamps are ``createdAt`` /
``updatedAt``, else the ObjectId's creation time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ledger.kit import Record, Reject, blob_ref
from sources.librechat.assets import Assets, unreadable_reason
from sources.librechat.native import created, id_text, json_safe, moment, user_raw
from sources.librechat.parts import embedded_file, message_file_ids, message_parts
from sources.librechat.tree import build_tree

PRESET_FIELDS = (
    "endpoint", "endpointType", "model", "region", "chatGptLabel", "modelLabel", "promptPrefix",
    "examples", "temperature", "top_p", "topP", "topK", "maxOutputTokens", "maxTokens",
    "max_tokens", "presence_penalty", "frequency_penalty", "file_ids", "resendImages",
    "resendFiles", "imageDetail", "promptCache", "thinking", "thinkingBudget", "system",
    "agent_id", "assistant_id", "instructions", "stop", "iconURL", "greeting", "spec", "tools",
    "maxContextTokens", "useResponsesApi", "web_search", "disableStreaming", "fileTokenLimit",
    "reasoning_effort", "reasoning_summary", "verbosity", "agentOptions",
)  # fmt: skip
SYSTEM_PROMPT_FIELDS = ("promptPrefix", "system", "instructions")
EXTERNAL_ID_FIELDS = (
    "googleId", "facebookId", "openidId", "openidIssuer", "samlId", "ldapId", "githubId",
    "discordId", "appleId", "idOnTheSource",
)  # fmt: skip
RATINGS = {"thumbsUp": "up", "thumbsDown": "down"}

Make = Callable[..., Record]


def user_key(user_id: str) -> str:
    return f"user:{user_id}"


def conversation_key(user_id: str, conversation_id: str) -> str:
    return f"conversation:{user_id}/{conversation_id}"


def message_key(user_id: str, conversation_id: str, message_id: str) -> str:
    return f"message:{user_id}/{conversation_id}/{message_id}"


def file_key(user_id: str, file_id: str) -> str:
    return f"file:{user_id}/{file_id}"


def user_record(make: Make, user_id: str, document: dict[str, Any]) -> Record:
    email = document.get("email")
    data = {
        "email": email.strip().lower() if isinstance(email, str) else None,
        "name": document.get("name"),
        "username": document.get("username"),
        "avatar_url": document.get("avatar"),
        "created_at": created(document),
        "external_ids": {
            "librechat": user_id,
            "provider": document.get("provider") or "local",
            **{name: str(document[name]) for name in EXTERNAL_ID_FIELDS if document.get(name)},
        },
    }
    return make("user", user_key(user_id), data, user_raw(document))


@dataclass
class ConversationResult:
    """The records of one conversation and what is worth reporting about it."""

    items: list[Record | Reject] = field(default_factory=list)
    file_ids: dict[str, dict[str, Any]] = field(default_factory=dict)  # file_id → a message using it
    messages: int = 0
    orphans: int = 0
    branched: bool = False


def conversation_records(
    make: Make,
    user_id: str,
    document: dict[str, Any],
    messages: list[dict[str, Any]],
    share_ids: list[str],
    location: str,
) -> ConversationResult:
    """The conversation record and its message records; ``messages`` in display order."""
    result = ConversationResult()
    conversation_id = str(document["conversationId"])
    key = conversation_key(user_id, conversation_id)
    unique = _unique_messages(messages, user_id, conversation_id, location, result)
    tree = build_tree([(str(m["messageId"]), m.get("parentMessageId")) for m in unique])
    result.orphans, result.branched = len(tree.orphans), tree.branch_points > 0
    records = []
    for message in unique:
        message_id = str(message["messageId"])
        parent = tree.parents[message_id]
        record = _message(make, user_id, conversation_id, message, parent, tree.orphans.get(message_id))
        for file_id in message_file_ids(message):
            result.file_ids.setdefault(file_id, message)
        records.append(record)
    leaf = message_key(user_id, conversation_id, tree.active_leaf) if tree.active_leaf else None
    result.items.append(_conversation(make, user_id, key, document, unique, share_ids, leaf))
    result.items += records
    result.messages = len(records)
    return result


def _unique_messages(
    messages: list[dict[str, Any]],
    user_id: str,
    conversation_id: str,
    location: str,
    result: ConversationResult,
) -> list[dict[str, Any]]:
    """Messages with a usable messageId, each id once (the first wins)."""
    seen: set[str] = set()
    kept = []
    for position, message in enumerate(messages):
        if not isinstance(message, dict):
            where = f"{location} message #{position + 1}"
            result.items.append(Reject(where, "a message that is not a JSON object", json_safe(message)))
            continue
        message_id = message.get("messageId")
        where = f"{location} message _id {id_text(message.get('_id')) or '?'}"
        if not isinstance(message_id, str) or not message_id:
            result.items.append(Reject(where, "message has no messageId", json_safe(message)))
            continue
        if message_id in seen:
            key = message_key(user_id, conversation_id, message_id)
            result.items.append(
                Reject(
                    where, f"duplicate messageId {message_id}; the first is kept", json_safe(message), key=key
                )
            )
            continue
        seen.add(message_id)
        kept.append(message)
    return kept


def _conversation(
    make: Make,
    user_id: str,
    key: str,
    document: dict[str, Any],
    messages: list[dict[str, Any]],
    share_ids: list[str],
    active_leaf: str | None,
) -> Record:
    times = [moment(m.get("updatedAt")) or created(m) for m in messages]
    updated = moment(document.get("updatedAt")) or max((t for t in times if t), default=None)
    preset = {name: json_safe(document[name]) for name in PRESET_FIELDS if document.get(name) is not None}
    metadata = {
        "source_id": str(document["conversationId"]),
        "endpoint": _text(document.get("endpoint")),
        "endpoint_type": _text(document.get("endpointType")),
        "shared": bool(share_ids),
        "share_ids": share_ids,
        "temporary": bool(document.get("isTemporary")),
        "preset": preset,
    }
    data = {
        "owner": user_key(user_id),
        "title": _text(document.get("title")) or "New Chat",
        "created_at": created(document),
        "updated_at": updated or created(document),
        "assistant": _text(document.get("agent_id")) or _text(document.get("assistant_id")),
        "model": _text(document.get("model")),
        "system_prompt": next(
            (
                document[f]
                for f in SYSTEM_PROMPT_FIELDS
                if isinstance(document.get(f), str) and document[f].strip()
            ),
            None,
        ),
        "pinned": bool(document.get("pinned")),
        "archived": bool(document.get("isArchived") or document.get("archivedAt")),
        "tags": [tag for tag in document.get("tags") or [] if isinstance(tag, str)],
        "active_leaf": active_leaf,
        "metadata": metadata,
    }
    return make("conversation", key, data, json_safe(document), [user_key(user_id)])


def _message(
    make: Make,
    user_id: str,
    conversation_id: str,
    document: dict[str, Any],
    parent: str | None,
    orphan_of: str | None,
) -> Record:
    key = message_key(user_id, conversation_id, str(document["messageId"]))
    parent_key = message_key(user_id, conversation_id, parent) if parent else None
    files = [file_key(user_id, file_id) for file_id in message_file_ids(document)]
    usage = {
        name: document[field]
        for name, field in (("tokens", "tokenCount"), ("summary_tokens", "summaryTokenCount"))
        if isinstance(document.get(field), int) and not isinstance(document.get(field), bool)
    }
    metadata = {
        "endpoint": _text(document.get("endpoint")),
        "finish_reason": json_safe(document.get("finish_reason")),
        "added_convo": True if document.get("addedConvo") else None,
        "edited": True if document.get("isEdited") else None,
        "orphan_of": orphan_of,
    }
    data = {
        "conversation": conversation_key(user_id, conversation_id),
        "parent": parent_key,
        "role": "user" if document.get("isCreatedByUser") else "assistant",
        "author": _text(document.get("sender")),
        "model": _text(document.get("model")),
        "created_at": created(document),
        "updated_at": moment(document.get("updatedAt")) or created(document),
        "status": "error"
        if document.get("error")
        else "aborted"
        if document.get("unfinished")
        else "complete",
        "parts": message_parts(document, lambda file_id: file_key(user_id, file_id)),
        "files": files,
        "sibling_group": 0,
        "usage": usage,
        "feedback": _feedback(document.get("feedback")),
        "metadata": {name: value for name, value in metadata.items() if value is not None},
    }
    return make("message", key, data, json_safe(document), [data["conversation"], parent_key, *files])


def _text(value: Any) -> str | None:
    """A canonical text field: the value when it is a string (a wrong type stays in ``raw``)."""
    return value if isinstance(value, str) else None


def _feedback(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict) or value.get("rating") not in RATINGS:
        return None
    return {"rating": RATINGS[value["rating"]], "tag": json_safe(value.get("tag")), "text": value.get("text")}


def file_record(
    make: Make,
    user_id: str,
    file_id: str,
    document: dict[str, Any] | None,
    message: dict[str, Any],
    assets: Assets,
    put_file: Callable,
) -> Record:
    """A file record: bytes hashed into the blob store, or ``missing`` with the reason."""
    entry = document or embedded_file(message, file_id) or {"file_id": file_id}
    data: dict[str, Any] = {
        "owner": user_key(user_id),
        "filename": entry.get("filename"),
        "mime": entry.get("type"),
        "size": entry.get("bytes") if isinstance(entry.get("bytes"), int) else None,
        "sha256": None,
        "blob": None,
        "missing": None,
    }
    reason = _missing_reason(document, entry)
    if reason is None:
        path, reason = assets.locate(entry["filepath"])
        if path is not None:
            digest, size = put_file(path)
            data.update(sha256=digest, blob=blob_ref(digest), size=size)
    data["missing"] = reason
    if not data["filename"] and isinstance(entry.get("filepath"), str):
        data["filename"] = entry["filepath"].rsplit("/", 1)[-1].split("__", 1)[-1]
    raw = json_safe(document) if document is not None else {"embedded": json_safe(entry)}
    return make("file", file_key(user_id, file_id), data, raw, [user_key(user_id)])


def _missing_reason(document: dict[str, Any] | None, entry: dict[str, Any]) -> str | None:
    if document is None and "filepath" not in entry:
        return "no files document and no filepath in the message (expired temporary upload?)"
    reason = unreadable_reason(entry)
    if reason is None and not isinstance(entry.get("filepath"), str):
        reason = "the files document has no filepath"
    return reason


def export_user_id(email: str) -> str:
    """A stable, non-identifying user id for JSON exports, which carry no user document."""
    return "export-" + hashlib.sha256(email.strip().lower().encode()).hexdigest()[:24]
