"""A thread and its checkpoints → canonical records (DESIGN §2).

- ``conversation`` ``thread:<thread_id>``: owner (``user:<metadata[owner_key]>``), title
  (metadata ``title``/``name``, else the first human message), times, graph and
  assistant ids, metadata, status, how many checkpoints were read and whether that is
  the whole history. ``raw``: the thread as the server returned it, without ``values``
  (those are the newest checkpoint's).
- ``checkpoint`` ``checkpoint:<thread_id>/<checkpoint_id>``, one per state of the
  history: values, next, tasks (id, name, path, result, error, interrupts), checkpoint
  metadata, parent, step, source, created_at and its position in the chain. ``raw``: the
  state's checkpoint configs. Everything the faithful replay needs is in ``data``.
- ``message`` ``message:<thread_id>/<message id>`` for each message of the newest
  values: roles human/ai/tool/system → user/assistant/tool/system; text, reasoning and
  image content blocks, tool calls and tool results as parts; usage from
  ``usage_metadata``; ``created_at`` = the first checkpoint whose values hold it.
  ``raw``: the message as LangChain serialised it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ledger.kit import Record

ROLES = {"human": "user", "ai": "assistant", "tool": "tool", "system": "system", "function": "tool",
         "AIMessageChunk": "assistant", "HumanMessageChunk": "user", "ToolMessageChunk": "tool"}  # fmt: skip
TASK_FIELDS = ("id", "name", "path", "result", "error", "interrupts")
TITLE_LENGTH = 100

MakeRecord = Callable[..., Record]


def conversation_key(thread_id: str) -> str:
    return f"thread:{thread_id}"


def checkpoint_key(thread_id: str, checkpoint_id: str) -> str:
    return f"checkpoint:{thread_id}/{checkpoint_id}"


def message_key(thread_id: str, message_id: str) -> str:
    return f"message:{thread_id}/{message_id}"


def thread_records(
    record: MakeRecord,
    thread: dict[str, Any],
    states: list[dict[str, Any]],
    *,
    complete: bool,
    owner_key: str,
) -> list[Record]:
    """All records of one thread; ``states`` oldest first."""
    thread_id = thread["thread_id"]
    conversation = conversation_key(thread_id)
    latest = states[-1] if states else None
    values = (latest or {}).get("values") or thread.get("values") or {}
    raw_messages = values.get("messages") if isinstance(values, dict) else None
    messages = message_records(record, thread_id, raw_messages or [], first_seen(states))
    checkpoints = [
        checkpoint_record(record, thread_id, state, position) for position, state in enumerate(states)
    ]
    metadata = thread.get("metadata") or {}
    owner = metadata.get(owner_key)
    native = {name: value for name, value in thread.items() if name != "values"}
    data = {
        "owner": f"user:{owner}" if isinstance(owner, str) and owner else None,
        "title": _title(metadata, messages),
        "created_at": thread.get("created_at"),
        "updated_at": thread.get("updated_at"),
        "assistant": metadata.get("assistant_id"),
        "model": None,
        "system_prompt": None,
        "pinned": False,
        "archived": False,
        "tags": [],
        "active_leaf": messages[-1].key if messages else None,
        "metadata": metadata,
        "thread_id": thread_id,
        "graph_id": metadata.get("graph_id"),
        "status": thread.get("status"),
        "checkpoints": len(states),
        "history_complete": complete,
        "latest_checkpoint": checkpoints[-1].key if checkpoints else None,
    }
    head = record("conversation", conversation, data, native, [data["owner"]])
    return [head, *checkpoints, *messages]


def _title(metadata: dict[str, Any], messages: list[Record]) -> str | None:
    for name in ("title", "name"):
        if isinstance(metadata.get(name), str) and metadata[name].strip():
            return metadata[name].strip()
    for message in messages:
        if message.data["role"] == "user":
            text = " ".join(part["text"] for part in message.data["parts"] if part["type"] == "text").strip()
            if text:
                return text[:TITLE_LENGTH]
    return None


def checkpoint_record(record: MakeRecord, thread_id: str, state: dict[str, Any], position: int) -> Record:
    metadata = state.get("metadata") or {}
    checkpoint_id = (
        state["checkpoint_id"] if "checkpoint_id" in state else state["checkpoint"]["checkpoint_id"]
    )
    parent_id = state.get("parent_checkpoint_id") or (state.get("parent_checkpoint") or {}).get(
        "checkpoint_id"
    )
    parent = checkpoint_key(thread_id, parent_id) if parent_id else None
    data = {
        "conversation": conversation_key(thread_id),
        "checkpoint_id": checkpoint_id,
        "parent": parent,
        "position": position,
        "step": metadata.get("step"),
        "source": metadata.get("source"),
        "next": list(state.get("next") or []),
        "created_at": state.get("created_at"),
        "values": state.get("values"),
        "tasks": [{name: task.get(name) for name in TASK_FIELDS} for task in state.get("tasks") or []],
        "metadata": metadata,
        "interrupts": state.get("interrupts") or [],
        "checkpoint_ns": (state.get("checkpoint") or {}).get("checkpoint_ns", ""),
    }
    native = {"checkpoint": state.get("checkpoint"), "parent_checkpoint": state.get("parent_checkpoint")}
    return record(
        "checkpoint", checkpoint_key(thread_id, checkpoint_id), data, native, [data["conversation"], parent]
    )


def first_seen(states: list[dict[str, Any]]) -> dict[str, str]:
    """message id → created_at of the first checkpoint whose values hold it."""
    seen: dict[str, str] = {}
    for state in states:
        values = state.get("values")
        messages = values.get("messages") if isinstance(values, dict) else None
        for message in messages or []:
            if isinstance(message, dict) and message.get("id") and message["id"] not in seen:
                seen[message["id"]] = state.get("created_at")
    return seen


def message_records(
    record: MakeRecord, thread_id: str, messages: list[Any], seen: dict[str, str]
) -> list[Record]:
    out: list[Record] = []
    parent = None
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        key = message_key(thread_id, str(message.get("id") or f"#{index}"))
        out.append(record("message", key, message_data(thread_id, message, parent, seen), message,
                          [conversation_key(thread_id), parent]))  # fmt: skip
        parent = key
    return out


def message_data(
    thread_id: str, message: dict[str, Any], parent: str | None, seen: dict[str, str]
) -> dict[str, Any]:
    kind = message.get("type") or message.get("role")
    role = ROLES.get(kind, "system" if kind == "developer" else "user" if kind == "user" else "assistant")
    metadata = message.get("response_metadata") or {}
    failed = message.get("status") == "error"
    return {
        "conversation": conversation_key(thread_id),
        "parent": parent,
        "role": role,
        "author": message.get("name"),
        "model": metadata.get("model_name") or metadata.get("model"),
        "created_at": seen.get(message.get("id")),
        "updated_at": None,
        "status": "error" if failed else "complete",
        "parts": parts(message, role),
        "files": [],
        "sibling_group": 0,
        "usage": usage(message),
        "feedback": None,
        "metadata": {"type": kind, "id": message.get("id")},
    }


def parts(message: dict[str, Any], role: str) -> list[dict[str, Any]]:
    content = message.get("content")
    if role == "tool":
        text = content if isinstance(content, str) else content_text(content)
        return [{"type": "tool_result", "id": message.get("tool_call_id"), "name": message.get("name"),
                 "result": text, "is_error": message.get("status") == "error"}]  # fmt: skip
    found = content_parts(content)
    for call_ in message.get("tool_calls") or []:
        found.append(
            {"type": "tool_call", "id": call_.get("id"), "name": call_.get("name"), "args": call_.get("args")}
        )
    for invalid in message.get("invalid_tool_calls") or []:
        found.append({"type": "error", "text": f"invalid tool call {invalid.get('name')}: {invalid.get('error')}",
                      "native": invalid})  # fmt: skip
    return found


def content_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    found = []
    for block in content if isinstance(content, list) else []:
        if isinstance(block, str):
            found.append({"type": "text", "text": block})
            continue
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            found.append({"type": "text", "text": block.get("text") or ""})
        elif kind in ("reasoning", "thinking"):
            found.append({"type": "reasoning", "text": block.get("reasoning") or block.get("thinking") or ""})
        elif kind in ("image_url", "image"):
            url = block.get("image_url")
            found.append(
                {"type": "image", "url": url.get("url") if isinstance(url, dict) else url or block.get("url")}
            )
        else:
            found.append({"type": "other", "native": block})
    return found


def content_text(content: Any) -> str:
    return "".join(part.get("text", "") for part in content_parts(content) if part["type"] == "text")


def usage(message: dict[str, Any]) -> dict[str, Any]:
    found = message.get("usage_metadata") or (message.get("additional_kwargs") or {}).get("usage_metadata")
    if not isinstance(found, dict):
        return {}
    return {name: found[name] for name in ("input_tokens", "output_tokens", "total_tokens") if name in found}
