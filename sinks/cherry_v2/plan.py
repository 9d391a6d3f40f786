"""One conversation unit → the rows it should be in ``cherrystudio.sqlite`` (no writes here).

Used to write a unit and, by verify, to predict what the database must show. The rules
are upstream's ChatMigrator's (``prepareTopicData``, ``insertStagedTopics``), with its
losses fixed and counted:

- **Dropped topic**: no messages and no user intent (pinned, a manually edited name, a
  prompt) → skipped (``topics_skipped_empty``); with intent it is kept empty
  (``topics_kept_empty``). No conversation record → its messages are skipped.
- **Name**: empty → ``Unnamed Topic`` (``topics_unnamed``).
- **Times**: a missing or unparsable topic time comes from its messages (min / max
  ``created_at``); a message without one takes its predecessor's (then the topic's). Upstream
  stamps ``Date.now()``, so its re-runs differ; here the fallback is deterministic
  (``topic_times_derived``, ``message_times_derived``). Epoch ms throughout.
- **Assistant**: ``default`` → a uuid5; an assistant the database lacks → NULL
  (``orphaned_assistant_topics``). ``missing_redux_metadata`` counts topics the Redux
  slice did not describe.
- **Messages**: a message with no parts (all its blocks missing) is skipped
  (``messages_skipped_no_blocks``) unless it is a ``clear`` marker; some blocks missing →
  ``messages_with_missing_blocks``. A skipped message's children are re-linked to its
  nearest kept ancestor (``messages_relinked``); messages without a parent hang under the
  topic's virtual root (``role='root'``, ``data={"parts": []}``). A skipped record is not
  in later units (the target holds nothing for it), so the parent and active node found
  through it are kept in the target refs (``parent``, ``active``) and reused when the
  chain leaves the unit.
- **Ids**: the v1 id, unless the source marked it a duplicate or the database holds it
  for another topic: then ``uuid5(stream + key)`` (``duplicate_message_ids``); parents,
  ``active_node_id`` and ``file_ref`` rows follow the remap. ``topicId`` naming another
  topic is corrected (``topic_id_mismatch``).
- **Groups**: ``siblings_group_id`` numbered 1.. per parent in order of first appearance,
  after re-linking (a group moved under a new parent never merges with one there); a
  group left with one member becomes 0 (``groups_collapsed``).
- **Active node**: the conversation's ``active_leaf`` when kept, else its nearest kept
  ancestor; then down to a leaf (last child each step) — upstream can leave an interior
  node active (``active_node_moved_to_leaf``). NULL for a topic without messages.
- **Kept where upstream drops**: ``data.legacy`` on a message holds ``askId``, ``useful``
  (``useful_kept``), ``foldSelected``, ``mentions`` (also ``mention`` references:
  ``mentions_kept``), ``type`` (``clear_markers_kept``), ``multiModelMessageStyle``,
  ``traceId``; the root's ``data.legacy.prompt`` holds the topic prompt
  (``topic_prompts_kept``; upstream #20019).
- **model_id** only when ``user_model`` has it (``model_ids_cleared`` otherwise);
  ``model_snapshot`` {id, name, provider, group}; ``stats`` from usage + metrics.
- **pin** row for a pinned topic; **file_ref** rows (``chat_message`` / ``attachment``)
  for each distinct file of a kept message whose ``file_entry`` exists
  (``file_refs_dangling_skipped`` otherwise); ``file_entry`` ids by :func:`file_entry_id`.
- **order_key**: a fractional-indexing key from ``updated_at``, newest first.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ledger.kit import Item, Unit, canonical_text, parse_time
from sinks.cherry_v2.parts import v2_parts

NAMESPACE = uuid.UUID("6f1c2d7e-3b8a-5e4f-9c0d-1a2b3c4d5e6f")  # chatledger's Cherry Studio v2 ids
STATUS = {"complete": "success", "aborted": "paused"}
ROLES = ("user", "assistant", "system")
STATS = {
    "prompt_tokens": "promptTokens",
    "completion_tokens": "completionTokens",
    "total_tokens": "totalTokens",
    "thoughts_tokens": "thoughtsTokens",
    "cost": "cost",
    "time_first_token_ms": "timeFirstTokenMs",
    "time_completion_ms": "timeCompletionMs",
    "time_thinking_ms": "timeThinkingMs",
}
LEGACY = {
    "ask_id": "askId",
    "useful": "useful",
    "fold_selected": "foldSelected",
    "mentions": "mentions",
    "type": "type",
    "multi_model_style": "multiModelMessageStyle",
    "trace_id": "traceId",
    "agent_session_id": "agentSessionId",
}
DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
Count = Callable[..., None]


def mapped_id(stream: str, key: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{stream}\n{key}"))


def file_entry_id(stream: str, native: str, held: set[str]) -> str:
    """v1 file ids (UUIDs) are kept, as upstream's FileMigrator does, and so is an id the
    database already holds (the app's entry); any other id (another platform's, which can
    hold ``/``) becomes a uuid5: it is the file's name on disk too."""
    if native in held:
        return native
    try:
        if str(uuid.UUID(native)) == native.lower():
            return native
    except ValueError:
        pass
    return mapped_id(stream, f"file:{native}")


def assistant_id(stream: str, native: str) -> str:
    """v1's ``default`` assistant gets a UUID, as upstream's ``legacyAssistantIdRemap``."""
    return mapped_id(stream, "assistant:default") if native == "default" else native


def millis(value: Any) -> int | None:
    parsed = parse_time(value)
    return int(parsed.timestamp() * 1000) if parsed else None


def order_key(updated_ms: int, tie: str) -> str:
    """A valid fractional-indexing key (integer part ``f`` + 6 base-62 digits, a fraction
    from ``tie``) that sorts newer times first."""
    value = 62**6 - 1 - max(0, min(updated_ms // 1000, 62**6 - 1))
    digits = ""
    for _ in range(6):
        value, digit = divmod(value, 62)
        digits = DIGITS[digit] + digits
    fraction = "".join(DIGITS[1 + b % 61] for b in uuid.uuid5(NAMESPACE, tie).bytes[:4])
    return "f" + digits + fraction


@dataclass
class Lookups:
    """What the database holds that a plan depends on."""

    assistants: set[str] = field(default_factory=set)
    models: set[str] = field(default_factory=set)
    file_entries: set[str] = field(default_factory=set)
    message_topics: dict[str, str] = field(default_factory=dict)  # message id → its topic


@dataclass
class TopicPlan:
    topic_id: str | None
    skip: str | None = None
    topic: dict[str, Any] | None = None
    root: dict[str, Any] | None = None
    messages: list[tuple[Item, dict[str, Any]]] = field(default_factory=list)
    skipped: list[tuple[Item, str]] = field(default_factory=list)
    pin: dict[str, Any] | None = None
    file_refs: list[dict[str, Any]] = field(default_factory=list)
    foreign: bool = False  # skipped because the app wrote a topic with this id

    def message_ids(self) -> list[str]:
        return [row["id"] for _, row in self.messages]


def topic_id_of(item: Item) -> str:
    native = (item.data.get("metadata") or {}).get("native_id")
    return native if isinstance(native, str) and native else mapped_id(item.stream, item.key)


def _position(item: Item) -> tuple:
    meta = item.data.get("metadata") or {}
    position = meta.get("position")
    return (
        position if isinstance(position, int) else 1 << 62,
        millis(item.data.get("created_at")) or 0,
        item.key,
    )


class Planner:
    def __init__(self, lookups: Lookups, read_blob: Callable[[str], bytes | None], count: Count) -> None:
        self.lookups = lookups
        self.read_blob = read_blob
        self.count = count

    def plan(self, unit: Unit) -> TopicPlan:
        head = unit.head if unit.head is not None and not unit.head.removed else None
        messages = sorted((i for i in unit.items if i.kind == "message" and not i.removed), key=_position)
        if head is None:
            plan = TopicPlan(None, "the conversation is not in the ledger")
            plan.skipped = [(item, plan.skip) for item in messages]
            return plan
        data, meta = head.data, head.data.get("metadata") or {}
        plan = TopicPlan(topic_id_of(head))
        intent = bool(
            data.get("pinned")
            or meta.get("name_manually_edited")
            or (data.get("system_prompt") or "").strip()
        )
        # skipped messages are not in later units: the conversation's own count says it had some
        had_messages = bool(messages) or bool(meta.get("messages"))
        if not had_messages and not intent:
            plan.skip = "a topic without messages or user intent (upstream drops it)"
            self.count("topics_skipped_empty")
            return plan
        if not had_messages:
            self.count("topics_kept_empty")
        if meta.get("redux_meta") is False:
            self.count("missing_redux_metadata")
        kept = self._messages(plan, head, messages)
        self._topic(plan, head, kept)
        return plan

    # -- messages ------------------------------------------------------------------------------

    def _messages(self, plan: TopicPlan, head: Item, items: list[Item]) -> dict[str, dict[str, Any]]:
        """Message rows by ledger key (kept ones), in array order."""
        topic = plan.topic_id
        root_id = mapped_id(head.stream, f"root:{head.key}")
        ids: dict[str, str] = {}
        kept: dict[str, dict[str, Any]] = {}
        parents = {item.key: item.data.get("parent") for item in items}
        previous_ms = millis(head.data.get("created_at"))
        for item in items:
            row = self._message_row(item, topic, previous_ms)
            if row is None:
                plan.skipped.append((item, "a message with no blocks (upstream skips it)"))
                continue
            previous_ms = row["created_at"]
            ids[item.key] = row["id"]
            kept[item.key] = row
            plan.messages.append((item, row))
        kept_ids = set(ids.values())
        for item, row in plan.messages:
            parent, relinked, left = parents.get(item.key), False, False
            seen = {item.key}
            while parent is not None and parent not in kept:
                relinked = relinked or parent in parents
                if parent in seen or parent not in parents:
                    left = parent not in seen
                    parent = None
                    break
                seen.add(parent)
                parent = parents.get(parent)
            self.count("messages_relinked", int(relinked))
            row["parent_id"] = ids[parent] if parent is not None else root_id
            held = (item.held_ref or {}).get("parent") if isinstance(item.held_ref, dict) else None
            if left and held in kept_ids:  # the chain leaves the unit through a skipped message
                row["parent_id"] = held
        self._renumber_groups(plan)
        return kept

    def _message_row(self, item: Item, topic: str, previous_ms: int | None) -> dict[str, Any] | None:
        data, meta = item.data, item.data.get("metadata") or {}
        clear = meta.get("type") == "clear"
        if not data.get("parts") and not clear:
            self.count("messages_skipped_no_blocks")
            return None
        if meta.get("missing_blocks"):
            self.count("messages_with_missing_blocks")
        if meta.get("topic_id_mismatch"):
            self.count("topic_id_mismatch")
        mentions = meta.get("mentions") or []
        legacy = {name: meta[key] for key, name in LEGACY.items() if meta.get(key) not in (None, False, [])}
        self.count("useful_kept", int(bool(meta.get("useful"))))
        self.count("mentions_kept", int(bool(mentions)))
        self.count("clear_markers_kept", int(clear))
        body: dict[str, Any] = {
            "parts": v2_parts(
                data.get("parts") or [],
                mentions,
                self.read_blob,
                lambda native: file_entry_id(item.stream, native, self.lookups.file_entries),
                self.count,
            )
        }
        if legacy:
            body["legacy"] = legacy
        created = millis(data.get("created_at"))
        if created is None:
            self.count("message_times_derived")
            created = previous_ms or 0
        model = data.get("model") if isinstance(data.get("model"), str) else None
        if model and model not in self.lookups.models:
            self.count("model_ids_cleared")
        snapshot = meta.get("model_snapshot")
        stats = {name: data["usage"][key] for key, name in STATS.items() if key in (data.get("usage") or {})}
        return {
            "id": self._message_id(item, topic),
            "parent_id": None,
            "topic_id": topic,
            "role": data.get("role") if data.get("role") in ROLES else "assistant",
            "data": canonical_text(body),
            "status": STATUS.get(data.get("status"), "error"),
            "siblings_group_id": data.get("sibling_group")
            if isinstance(data.get("sibling_group"), int)
            else 0,
            "model_id": model if model in self.lookups.models else None,
            "model_snapshot": canonical_text(snapshot) if snapshot else None,
            "stats": canonical_text(stats) if stats else None,
            "created_at": created,
            "updated_at": max(millis(data.get("updated_at")) or created, created),
        }

    def _message_id(self, item: Item, topic: str) -> str:
        meta = item.data.get("metadata") or {}
        native = meta.get("native_id")
        holder = self.lookups.message_topics.get(native) if isinstance(native, str) else None
        if (
            not isinstance(native, str)
            or not native
            or meta.get("duplicate_id")
            or holder not in (None, topic)
        ):
            if isinstance(native, str) and native:
                self.count("duplicate_message_ids")
            return mapped_id(item.stream, item.key)
        return native

    def _renumber_groups(self, plan: TopicPlan) -> None:
        members: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for _, row in plan.messages:
            if row["siblings_group_id"]:
                members.setdefault((row["parent_id"], row["siblings_group_id"]), []).append(row)
        numbers: dict[str, int] = {}
        for (parent, _), rows in members.items():  # in order of first appearance
            if len(rows) == 1:
                rows[0]["siblings_group_id"] = 0
                self.count("groups_collapsed")
                continue
            numbers[parent] = numbers.get(parent, 0) + 1
            for row in rows:
                row["siblings_group_id"] = numbers[parent]

    # -- the topic, its root, pin and file refs ------------------------------------------------

    def _topic(self, plan: TopicPlan, head: Item, kept: dict[str, dict[str, Any]]) -> None:
        data, meta = head.data, head.data.get("metadata") or {}
        times = [row["created_at"] for row in kept.values()]
        created, updated = millis(data.get("created_at")), millis(data.get("updated_at"))
        if created is None or updated is None:
            self.count("topic_times_derived")
        created = created if created is not None else min(times, default=updated or 0)
        updated = updated if updated is not None else max(times, default=created)
        name = (data.get("title") or "").strip()
        if not name:
            self.count("topics_unnamed")
        assistant = self._assistant(head)
        plan.topic = {
            "id": plan.topic_id,
            "name": name or "Unnamed Topic",
            "is_name_manually_edited": int(bool(meta.get("name_manually_edited"))),
            "assistant_id": assistant,
            "active_node_id": self._active(plan, head, kept),
            "group_id": None,
            "order_key": order_key(updated, plan.topic_id),
            "created_at": created,
            "updated_at": updated,
        }
        root_data: dict[str, Any] = {"parts": []}
        prompt = (data.get("system_prompt") or "").strip()
        if prompt:
            root_data["legacy"] = {"prompt": data["system_prompt"]}
            self.count("topic_prompts_kept")
        plan.root = {
            "id": mapped_id(head.stream, f"root:{head.key}"),
            "parent_id": None,
            "topic_id": plan.topic_id,
            "role": "root",
            "data": canonical_text(root_data),
            "status": "success",
            "siblings_group_id": 0,
            "model_id": None,
            "model_snapshot": None,
            "stats": None,
            "created_at": created,
            "updated_at": created,
        }
        if data.get("pinned"):
            plan.pin = {
                "id": mapped_id(head.stream, f"pin:{head.key}"),
                "entity_type": "topic",
                "entity_id": plan.topic_id,
                "order_key": order_key(updated, "pin:" + plan.topic_id),
                "created_at": updated,
                "updated_at": updated,
            }
        self._file_refs(plan, head)

    def _assistant(self, head: Item) -> str | None:
        key = head.data.get("assistant")
        if not isinstance(key, str) or not key.startswith("assistant:"):
            return None
        ident = assistant_id(head.stream, key.removeprefix("assistant:"))
        if ident not in self.lookups.assistants:
            self.count("orphaned_assistant_topics")
            return None
        return ident

    def _active(self, plan: TopicPlan, head: Item, kept: dict[str, dict[str, Any]]) -> str | None:
        if not plan.messages:
            return None
        by_id = {row["id"]: row for _, row in plan.messages}
        children: dict[str, list[str]] = {}
        for _, row in plan.messages:
            children.setdefault(row["parent_id"], []).append(row["id"])
        wanted = head.data.get("active_leaf")
        parents = {item.key: item.data.get("parent") for item, _ in plan.messages} | {
            item.key: item.data.get("parent") for item, _ in plan.skipped
        }
        seen: set[str] = set()
        while wanted is not None and wanted not in kept and wanted not in seen:
            seen.add(wanted)
            wanted = parents.get(wanted)
        held = (head.held_ref or {}).get("active") if isinstance(head.held_ref, dict) else None
        if wanted in kept:
            current = kept[wanted]["id"]
        elif head.data.get("active_leaf") not in parents and held in by_id:
            current = held  # a skipped active message is not in the unit: where it led last time
        else:
            current = plan.messages[-1][1]["id"]
        start = current
        while children.get(current):
            current = children[current][-1]
        if current != start or wanted != head.data.get("active_leaf"):
            self.count("active_node_moved_to_leaf")
        return current if current in by_id else None

    def _file_refs(self, plan: TopicPlan, head: Item) -> None:
        done: set[tuple[str, str]] = set()
        for item, row in plan.messages:
            for key in item.data.get("files") or []:
                if not isinstance(key, str) or not key.startswith("file:"):
                    continue
                entry = file_entry_id(head.stream, key.removeprefix("file:"), self.lookups.file_entries)
                if (row["id"], entry) in done:
                    continue
                done.add((row["id"], entry))
                if entry not in self.lookups.file_entries:
                    self.count("file_refs_dangling_skipped")
                    continue
                plan.file_refs.append(
                    {
                        "id": mapped_id(head.stream, f"file_ref:{row['id']}/{entry}"),
                        "file_entry_id": entry,
                        "source_type": "chat_message",
                        "source_id": row["id"],
                        "role": "attachment",
                        "created_at": row["created_at"],
                        "updated_at": row["created_at"],
                    }
                )
