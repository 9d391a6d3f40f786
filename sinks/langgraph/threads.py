"""A conversation unit of a langgraph stream, read back as a thread: its id, metadata,
graph id, checkpoint states (oldest first) and final values. Shared by the sinks of
this package; it reads canonical ``data`` of the records the ``langgraph`` source
emits (checkpoints carry values, next, tasks and metadata there)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from ledger.kit import Item, Unit

#: thread metadata key of the ownership marker the langgraph sink writes
MARKER = "chatledger"
#: thread metadata key keeping a source thread id that is not a UUID
SOURCE_ID = "source_thread_id"
#: uuid5 namespace of target thread ids made for source ids that are not UUIDs
NAMESPACE = uuid.UUID("0d5a7a3e-4f0b-5c1e-9a55-6c2f1b8e7d40")


def target_thread_id(stream: str, thread_id: str) -> str:
    """The source's id when it is a UUID (the server accepts nothing else), otherwise
    ``uuid5(NAMESPACE, "<stream>/<id>")``: deterministic, so re-runs find the thread."""
    try:
        return str(uuid.UUID(thread_id))
    except ValueError:
        return str(uuid.uuid5(NAMESPACE, f"{stream}/{thread_id}"))


@dataclass
class Thread:
    key: str
    stream: str
    thread_id: str
    metadata: dict[str, Any]
    graph_id: str | None
    created_at: str | None
    updated_at: str | None
    states: list[dict[str, Any]] = field(default_factory=list)  # checkpoint data, oldest first
    messages: list[dict[str, Any]] = field(default_factory=list)  # canonical message data, in order
    history_complete: bool = True
    native: dict[str, Any] | None = None  # the thread as the source server returned it

    @property
    def values(self) -> dict[str, Any] | None:
        return self.states[-1].get("values") if self.states else None


def thread_of(unit: Unit) -> Thread | None:
    """The thread a unit wants on the target (None: the unit is a removal)."""
    head = unit.head
    if head is None or head.removed:
        return None
    data = head.data
    source_id = data.get("thread_id") or unit.key.split(":", 1)[1]
    thread_id = target_thread_id(head.stream, source_id)
    metadata = dict(data.get("metadata") or {})
    if thread_id != source_id:
        metadata[SOURCE_ID] = source_id
    states = sorted(
        (item.data for item in _live(unit, "checkpoint")), key=lambda state: state.get("position", 0)
    )
    messages = [item.data | {"key": item.key} for item in _live(unit, "message")]
    return Thread(
        key=unit.key,
        stream=head.stream,
        thread_id=thread_id,
        metadata=metadata,
        graph_id=data.get("graph_id") or (data.get("metadata") or {}).get("graph_id"),
        created_at=data.get("created_at"),
        updated_at=data.get("updated_at"),
        states=states,
        messages=_in_order(messages),
        history_complete=data.get("history_complete", True),
        native=head.document.get("raw") if head.document else None,
    )


def _live(unit: Unit, kind: str) -> list[Item]:
    return [item for item in unit.items if item.kind == kind and not item.removed]


def _in_order(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages along their parent chain (first turn first), others after by time."""
    children = {message.get("parent"): message for message in messages}
    ordered, seen = [], set()
    node = children.get(None)
    while node is not None and node["key"] not in seen:
        ordered.append(node)
        seen.add(node["key"])
        node = children.get(node["key"])
    rest = sorted(
        (m for m in messages if m["key"] not in seen), key=lambda m: (m.get("created_at") or "", m["key"])
    )
    return ordered + rest
