"""v1 assistants, topics, messages and files → canonical records.

| kind | key | from |
| --- | --- | --- |
| user | ``user:<owner>`` | the ``owner`` option (v1 is single-user and stores no account) |
| assistant | ``assistant:<id>`` (``default`` kept as is) | Redux ``assistants.assistants[]``, ``defaultAssistant``, ``presets[]`` |
| conversation | ``conversation:<topicId>`` | a Dexie ``topics`` row merged with its Redux topic metadata |
| message | ``message:<topicId>/<messageId>`` (a repeat inside the topic: ``…#<n>``) | ``topics[].messages[]`` + its ``message_blocks`` |
| file | ``file:<id>`` | ``files`` rows (and files named only by blocks) + ``Data/Files/<id><ext>`` |

Conversation data: ``title`` (Redux name, else the Dexie one; empty stays empty — the
sink names it), ``created_at`` / ``updated_at`` (Dexie, else Redux), ``assistant``,
``system_prompt`` (the topic ``prompt``), ``pinned``, ``active_leaf`` and ``metadata``:
``native_id``, ``name_manually_edited``, ``redux_meta`` (the Redux slice had this topic),
``native_assistant_id``, ``type``, ``native_created_at`` / ``native_updated_at`` when
unparsable.

Message data: ``role``, ``model`` (``provider::id``), ``created_at``, ``updated_at``,
``status`` (``complete`` / ``aborted`` / ``error``), ``parts`` (see ``parts.py``),
``files``, ``parent``, ``sibling_group``, ``usage`` (usage + metrics), and ``metadata``:
``native_id``, ``position`` (in the topic's array), ``native_status``, ``model_snapshot``, ``ask_id``, ``useful``,
``fold_selected``, ``mentions``, ``type`` (``clear``: a context-clear marker),
``multi_model_style``, ``trace_id``, ``agent_session_id``, ``blocks`` (ids asked for),
``missing_blocks`` (how many were not found), ``legacy`` (a pre-block message),
``duplicate_id`` (the id is used earlier in this topic or in an earlier topic),
``topic_id_mismatch`` (the message named another topic), ``native_created_at`` when
unparsable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ledger.kit import Record, blob_ref
from sources.cherry.native import model_id, model_snapshot, status, timestamp
from sources.cherry.parts import block_parts, mime_of

Make = Callable[..., Record]
USAGE_FIELDS = ("prompt_tokens", "completion_tokens", "total_tokens", "thoughts_tokens", "cost")
METRIC_FIELDS = {
    "time_first_token_millsec": "time_first_token_ms",
    "time_completion_millsec": "time_completion_ms",
    "time_thinking_millsec": "time_thinking_ms",
}


def conversation_key(topic_id: str) -> str:
    return f"conversation:{topic_id}"


def message_key(topic_id: str, message_id: str) -> str:
    return f"message:{topic_id}/{message_id}"


def file_key(file_id: str) -> str:
    return f"file:{file_id}"


def assistant_key(assistant_id: str) -> str:
    return f"assistant:{assistant_id}"


def user_record(make: Make, owner: str) -> Record:
    """The one user of a Cherry Studio install, when the run names them (``owner``: an
    email when it looks like one, else a username)."""
    is_email = "@" in owner
    data = {
        "email": owner if is_email else None,
        "name": None,
        "username": None if is_email else owner,
        "avatar_url": None,
        "created_at": None,
        "external_ids": {},
    }
    return make("user", user_key(owner), data, {"owner": owner})


def user_key(owner: str) -> str:
    return f"user:{owner}"


def assistant_record(make: Make, assistant: dict[str, Any], role: str) -> Record:
    native = {k: v for k, v in assistant.items() if k != "topics"}
    native["topic_ids"] = [t.get("id") for t in assistant.get("topics") or [] if isinstance(t, dict)]
    model = assistant.get("model") or assistant.get("defaultModel")
    data = {
        "name": assistant.get("name") or "",
        "model": model_id(model),
        "system_prompt": assistant.get("prompt") or "",
        "created_at": None,
        "metadata": {
            "native_id": assistant["id"],
            "role": role,  # assistant | default | preset
            "emoji": assistant.get("emoji"),
            "description": assistant.get("description"),
            "type": assistant.get("type"),
            "model_snapshot": model_snapshot(model),
            "settings": assistant.get("settings"),
        },
    }
    return make("assistant", assistant_key(assistant["id"]), data, native)


def conversation_record(
    make: Make,
    owner: str | None,
    topic: dict[str, Any],
    meta: dict[str, Any] | None,
    assistant_id: str | None,
    active_leaf: str | None,
    message_count: int,
) -> Record:
    meta = meta or {}
    topic_id = topic["id"]

    def merged(name: str) -> Any:
        return meta[name] if meta.get(name) is not None else topic.get(name)

    created_native = topic.get("createdAt") or meta.get("createdAt")
    updated_native = topic.get("updatedAt") or meta.get("updatedAt")
    metadata: dict[str, Any] = {
        "native_id": topic_id,
        "name_manually_edited": bool(merged("isNameManuallyEdited")),
        "redux_meta": bool(meta),
        "native_assistant_id": assistant_id,
        "type": merged("type"),
        "messages": message_count,
    }
    for name, value in (("native_created_at", created_native), ("native_updated_at", updated_native)):
        if value not in (None, "") and timestamp(value) is None:
            metadata[name] = value
    data = {
        "owner": owner,
        "title": meta.get("name") or topic.get("name") or "",
        "created_at": timestamp(created_native),
        "updated_at": timestamp(updated_native),
        "assistant": assistant_key(assistant_id) if assistant_id else None,
        "system_prompt": merged("prompt") or None,
        "pinned": bool(merged("pinned")),
        "archived": False,
        "tags": [],
        "active_leaf": active_leaf,
        "model": None,
        "metadata": metadata,
    }
    raw = {"dexie": {k: v for k, v in topic.items() if k != "messages"}, "redux": meta or None}
    return make("conversation", conversation_key(topic_id), data, raw, [owner, data["assistant"]])


def message_record(
    make: Make,
    put: Callable[[bytes], str],
    topic_id: str,
    key: str,
    message: dict[str, Any],
    blocks: list[dict[str, Any]],
    wanted_blocks: list[Any],
    *,
    parent: str | None,
    group: int,
    legacy: bool,
    duplicate: bool,
    position: int,
) -> Record:
    parts: list[dict[str, Any]] = []
    for block in blocks:
        parts += block_parts(block, file_key, put)
    files = list(dict.fromkeys(p["file"] for p in parts if p.get("file")))
    created = timestamp(message.get("createdAt"))
    metadata: dict[str, Any] = {
        "native_id": message.get("id"),
        "position": position,
        "native_status": message.get("status"),
        "model_snapshot": model_snapshot(message.get("model")),
        "ask_id": message.get("askId"),
        "useful": message.get("useful"),
        "fold_selected": message.get("foldSelected"),
        "mentions": [model_snapshot(m) or m for m in message.get("mentions") or []] or None,
        "type": message.get("type"),
        "multi_model_style": message.get("multiModelMessageStyle"),
        "trace_id": message.get("traceId"),
        "agent_session_id": message.get("agentSessionId"),
        "blocks": wanted_blocks,
        "missing_blocks": 0 if legacy else len(wanted_blocks) - len(blocks),
        "legacy": legacy or None,
        "duplicate_id": duplicate or None,
        "topic_id_mismatch": message.get("topicId")
        if message.get("topicId") not in (None, topic_id)
        else None,
    }
    if message.get("createdAt") not in (None, "") and created is None:
        metadata["native_created_at"] = message.get("createdAt")
    data = {
        "conversation": conversation_key(topic_id),
        "parent": parent,
        "role": message.get("role")
        if message.get("role") in ("user", "assistant", "system")
        else "assistant",
        "author": None,
        "model": model_id(message.get("model"), message.get("modelId")),
        "created_at": created,
        "updated_at": timestamp(message.get("updatedAt")) or created,
        "status": status(message.get("status")),
        "parts": parts,
        "files": files,
        "sibling_group": group,
        "usage": _usage(message),
        "feedback": None,
        "metadata": {k: v for k, v in metadata.items() if v is not None},
    }
    raw = {"message": message, "blocks": blocks}
    return make("message", key, data, raw, [data["conversation"], parent, *files])


def _usage(message: dict[str, Any]) -> dict[str, Any]:
    usage = message.get("usage") if isinstance(message.get("usage"), dict) else {}
    metrics = message.get("metrics") if isinstance(message.get("metrics"), dict) else {}
    out = {name: usage[name] for name in USAGE_FIELDS if isinstance(usage.get(name), (int, float))}
    for native, name in METRIC_FIELDS.items():
        if isinstance(metrics.get(native), (int, float)):
            out[name] = metrics[native]
    if "completion_tokens" not in out and isinstance(metrics.get("completion_tokens"), (int, float)):
        out["completion_tokens"] = metrics["completion_tokens"]
    return out


def file_record(
    make: Make,
    owner: str | None,
    row: dict[str, Any],
    sha256: str | None,
    size: int | None,
    missing: str | None,
) -> Record:
    name = row.get("origin_name") or row.get("name") or row["id"]
    data = {
        "owner": owner,
        "filename": name,
        "mime": mime_of(row.get("ext") or name),
        "size": size if size is not None else row.get("size"),
        "sha256": sha256,
        "blob": blob_ref(sha256) if sha256 else None,
        "missing": missing,
        "created_at": timestamp(row.get("created_at")),
        "metadata": {
            "native_id": row["id"],
            "ext": row.get("ext"),
            "type": row.get("type"),
            "path": row.get("path"),
            "count": row.get("count"),
            "tokens": row.get("tokens"),
            "from_block": bool(row.get("_from_block")),
        },
    }
    raw = {k: v for k, v in row.items() if k != "_from_block"}
    return make("file", file_key(row["id"]), data, raw, [owner])
