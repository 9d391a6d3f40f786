"""What verify compares: a thread's shape on a LangGraph server, normalised for what
re-ingestion changes.

Re-ingestion through ``add_messages`` moves ``usage_metadata`` and
``invalid_tool_calls`` into ``additional_kwargs`` and mints new checkpoint ids, and the
replayed ``loop`` checkpoints become ``update`` ones; so messages are compared on type,
id, content, name, tool calls, tool call id, status, artifact and response metadata,
and the chain on (input or not, step, next). The ownership marker and ``assistant_id``
are left out of the metadata: the server drops ``assistant_id`` from the metadata of
``threads.create`` and sets it itself on the first run (verified on langgraph-api
0.16.7); its value is ``uuid5(graph_id)``, the same on every deployment.
"""

from __future__ import annotations

from typing import Any

from ledger.kit import digest
from sinks.langgraph.threads import MARKER

SERVER_KEYS = {MARKER, "assistant_id"}
MESSAGE_FIELDS = ("type", "id", "content", "name", "tool_call_id", "status", "artifact", "response_metadata")


def message_shape(message: Any) -> Any:
    if not isinstance(message, dict):
        return message
    shape = {name: message.get(name) for name in MESSAGE_FIELDS if message.get(name) not in (None, {}, [])}
    calls = [
        {"name": call.get("name"), "args": call.get("args"), "id": call.get("id")}
        for call in message.get("tool_calls") or []
    ]
    if calls:
        shape["tool_calls"] = calls
    return shape


def values_shape(values: Any) -> Any:
    if not isinstance(values, dict):
        return values
    return {
        name: [message_shape(item) for item in value]
        if name == "messages" and isinstance(value, list)
        else value
        for name, value in values.items()
    }


def chain_link(source: str | None, step: Any, following: list[str]) -> list[Any]:
    return ["input" if source == "input" else "update", step, list(following)]


def fingerprint(thread_id: str, metadata: dict[str, Any], chain: list[list[Any]], values: Any) -> str:
    kept = {name: value for name, value in (metadata or {}).items() if name not in SERVER_KEYS}
    return digest("langgraph thread", thread_id, kept, len(chain), chain, values_shape(values))
