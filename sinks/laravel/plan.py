"""One conversation unit → the rows it should be in the chat tables (no database here).

Used twice: to write a unit, and by verify to predict what the target must show. Rows
leave out what only the target knows (``user_id``, ``autopilot_id``, run-event ids).

Rules (the original importer's, and where it lost data, better — each counted):

- A thread is written only with an owner (``ownerId``); anonymous threads, documents of
  threads missing from the export and everything in them are skipped and counted
  (``threads_skipped_ownerless``, ``<kind>_skipped_ownerless``).
- Title: the first user message with text (smallest ``createdAtMs``), whitespace
  collapsed, cut at 120 characters with ``…``; else ``Conversation <first 8 of threadId>``.
- Messages: roles user/assistant/system (others skipped, ``messages_skipped_role``);
  ``content`` = the text; ``run_id`` only when that run is in the same thread.
  **Order**: the original truncated times to whole seconds, so same-second messages came
  back in any order under ``ORDER BY created_at``. Here messages are ordered by
  (``createdAtMs``, ``_creationTime``) and stored at the column's resolution; a message
  that would tie with (or sort before) its predecessor is stored one resolution step
  later (``messages_created_at_nudged``), so the stored order is the real one on every
  dialect. The exact milliseconds are kept in ``meta.createdAtMs``.
  ``messages_millisecond_order_kept`` counts messages sharing a whole second with their
  predecessor: those the original importer left ambiguous.
- Tool calls and results (``messageParts``) go to ``agent_conversation_messages``
  ``tool_calls`` / ``tool_results`` (the original wrote ``[]``): ``tool_calls_kept``,
  ``tool_results_kept``; usage to ``usage``.
- Runs: status ``streaming`` → running, ``final`` → completed, ``error`` → failed,
  ``canceled`` → canceled, other → completed; ``completed_at`` for the last three. A
  ``runId`` that is not a UUID was dropped by the original; here it becomes
  ``uuid5(namespace, "<stream>\\nrun:<runId>")`` (``runs_id_mapped``,
  ``events_run_id_mapped``), the source id kept in ``meta.sourceRunId``. Thread and
  message ids longer than the 36-character columns are mapped the same way.
- Receipts → ``run_events``: type ``legacy_receipt_model`` / ``_tool`` /
  ``_dse_predict`` / ``legacy_receipt``; payload ``{source: khala_receipt, kind,
  receiptId, signatureId, compiledId, json}``. Identical receipts in the same second are
  kept apart (the original collapsed them): ``events_same_second_kept``.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from ledger.canonical import canonical_text
from ledger.sink import Item, Unit
from sinks.laravel.columns import Columns, Count

NAMESPACE = uuid.UUID("0b7e6a2c-5d0f-4d57-9a51-4c1f3b0e8a77")  # chatledger's laravel ids
RUN_STATUS = {"streaming": "running", "final": "completed", "error": "failed", "canceled": "canceled"}
FINISHED = ("completed", "failed", "canceled")
EVENT_TYPE = {
    "model": "legacy_receipt_model",
    "tool": "legacy_receipt_tool",
    "dse.predict": "legacy_receipt_dse_predict",
}
ROLES = ("user", "assistant", "system")
TITLE_LIMIT = 120
AGENT = "autopilot"
_UUID = re.compile(r"^[\da-fA-F]{8}-[\da-fA-F]{4}-[\da-fA-F]{4}-[\da-fA-F]{4}-[\da-fA-F]{12}$")
_SPACE = re.compile(r"\s+")


def is_uuid(value: str) -> bool:
    return bool(_UUID.match(value))


def mapped_id(stream: str, kind: str, native: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{stream}\n{kind}:{native}"))


def run_id_of(stream: str, native: str) -> str:
    return native if is_uuid(native) else mapped_id(stream, "run", native)


def short_id(stream: str, kind: str, native: str) -> str:
    """Thread and message ids are kept unless too long for their varchar(36) columns."""
    return native if len(native) <= 36 else mapped_id(stream, kind, native)


def json_text(value: Any) -> str:
    return canonical_text(value)


def title_of(first_user_text: str | None, thread_id: str) -> str:
    seed = (first_user_text or "").strip()
    if not seed:
        return f"Conversation {thread_id[:8]}"
    seed = _SPACE.sub(" ", seed)
    return seed if len(seed) <= TITLE_LIMIT else seed[:TITLE_LIMIT].rstrip() + "…"


def text_of(data: dict[str, Any]) -> str:
    parts = data.get("parts") or []
    texts = [part.get("text") for part in parts if isinstance(part, dict) and part.get("type") == "text"]
    return "\n\n".join(text for text in texts if isinstance(text, str))


def _meta(data: dict[str, Any]) -> dict[str, Any]:
    return data.get("metadata") or {}


@dataclass
class Plan:
    """What one thread unit should be in the target."""

    thread_id: str | None
    owner_id: str | None
    skip: str | None = None
    thread: dict[str, Any] | None = None  # the threads row (agent_conversations shares it)
    messages: list[tuple[Item, dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    runs: list[tuple[Item, dict[str, Any]]] = field(default_factory=list)
    events: list[tuple[Item, dict[str, Any]]] = field(default_factory=list)
    skipped: list[tuple[Item, str]] = field(default_factory=list)  # present, not written

    def written(self) -> set[int]:
        return {id(item) for item, *_ in self.messages + self.runs + self.events}


class Planner:
    def __init__(self, columns: Columns, stream: str, count: Count) -> None:
        self.columns = columns
        self.stream = stream
        self.count = count

    def moment(self, table: str, column: str, milliseconds: int | None):
        return self.columns.moment(table, column, milliseconds, self.count)

    def fit(self, table: str, column: str, value: str | None) -> str | None:
        return self.columns.fit(table, column, value, self.count)

    def plan(self, unit: Unit) -> Plan:
        head = unit.head
        data = head.data if head is not None and not head.removed else None
        meta = _meta(data) if data else {}
        plan = Plan(meta.get("thread_id"), meta.get("owner_id"))
        present = [item for item in unit.items if not item.removed and item is not head]
        if data is None or plan.owner_id is None:
            plan.skip = "the thread is not in the export" if data is None else "anonymous thread (no ownerId)"
            plan.skipped = [(item, plan.skip) for item in present]
            return plan
        thread_id = short_id(self.stream, "thread", plan.thread_id)
        created = meta.get("created_at_ms")
        runs = {_meta(item.data).get("run_id"): item for item in present if item.kind == "run"}
        messages = self._messages(plan, thread_id, created, [i for i in present if i.kind == "message"], runs)
        first_user = next((text for role, text in messages if role == "user" and text.strip()), None)
        plan.thread = {
            "id": thread_id,
            "title": self.fit("threads", "title", title_of(first_user, plan.thread_id)),
            "created_at": self.moment("threads", "created_at", created),
            "updated_at": self.moment("threads", "updated_at", meta.get("updated_at_ms") or created),
        }
        plan.runs = [(item, self._run(item, thread_id, created)) for item in runs.values()]
        self._events(plan, thread_id, created, [item for item in present if item.kind == "run_event"])
        return plan

    # -- messages ----------------------------------------------------------------------------

    def _messages(
        self, plan: Plan, thread_id: str, thread_ms, items: list[Item], runs
    ) -> list[tuple[str, str]]:
        def order(item: Item):
            meta = _meta(item.data)
            return (meta.get("created_at_ms") or thread_ms or 0, meta.get("creation_time") or 0.0, item.key)

        texts: list[tuple[str, str]] = []
        previous_ms = previous_stored = None
        step = self.columns.resolution("messages", "created_at")
        for item in sorted(items, key=order):
            role = item.data.get("role")
            if role not in ROLES:
                plan.skipped.append((item, f"role {role!r}"))
                self.count("messages_skipped_role", 1)
                continue
            exact = order(item)[0]
            stored = self.columns.floor("messages", "created_at", exact, self.count)
            if previous_stored is not None and stored <= previous_stored:
                stored = previous_stored + step
                self.count("messages_created_at_nudged", 1)
            if previous_ms is not None and exact // 1000 == previous_ms // 1000:
                self.count("messages_millisecond_order_kept", 1)
            previous_ms, previous_stored = exact, stored
            text = text_of(item.data)
            texts.append((role, text))
            plan.messages.append((item, *self._message_rows(item, thread_id, role, text, stored, runs)))
        return texts

    def _message_rows(self, item: Item, thread_id: str, role: str, text: str, stored_ms: int, runs):
        data, meta = item.data, _meta(item.data)
        run = meta.get("run_id")
        updated = max(meta.get("updated_at_ms") or stored_ms, stored_ms)
        row_meta = {
            "source": "khala",
            "sourceStatus": meta.get("status"),
            "sourceRunId": run,
            "createdAtMs": meta.get("created_at_ms"),
        }
        created_at = self.moment("messages", "created_at", stored_ms)
        message_id = short_id(self.stream, "message", meta.get("message_id"))
        message = {
            "id": message_id,
            "thread_id": thread_id,
            "run_id": run_id_of(self.stream, run) if run in runs else None,
            "role": role,
            "content": self.fit("messages", "content", text),
            "meta": json_text(row_meta),
            "created_at": created_at,
            "updated_at": self.moment("messages", "updated_at", updated),
        }
        calls, results = self._tools(data.get("parts") or [])
        conversation_message = {
            "id": message_id,
            "conversation_id": thread_id,
            "agent": AGENT,
            "role": role,
            "content": self.fit("agent_conversation_messages", "content", text),
            "attachments": "[]",
            "tool_calls": self._json_fit("tool_calls", calls),
            "tool_results": self._json_fit("tool_results", results),
            "usage": self._json_fit("usage", data.get("usage") or {}),
            "meta": self._json_fit("meta", row_meta),
            "created_at": created_at,
            "updated_at": message["updated_at"],
        }
        return message, conversation_message

    def _tools(self, parts: list[Any]) -> tuple[list[dict], list[dict]]:
        calls = [part for part in parts if isinstance(part, dict) and part.get("type") == "tool_call"]
        arguments = {call.get("id"): call.get("args") for call in calls}
        results = [part for part in parts if isinstance(part, dict) and part.get("type") == "tool_result"]
        self.count("tool_calls_kept", len(calls))
        self.count("tool_results_kept", len(results))
        return (
            [
                {"id": call.get("id"), "name": call.get("name"), "arguments": call.get("args")}
                for call in calls
            ],
            [
                {
                    "id": r.get("id"),
                    "name": r.get("name"),
                    "arguments": arguments.get(r.get("id")),
                    "result": r.get("result"),
                }
                for r in results
            ],
        )

    def _json_fit(self, column: str, value: Any) -> str:
        """JSON in a text column: never cut (cut JSON is not JSON); too large → empty."""
        encoded = json_text(value)
        if self.columns.fits("agent_conversation_messages", column, encoded):
            return encoded
        self.count(f"too_large_agent_conversation_messages_{column}", 1)
        return "[]" if isinstance(value, list) else "{}"

    # -- runs and events ---------------------------------------------------------------------

    def _run(self, item: Item, thread_id: str, thread_ms) -> dict[str, Any]:
        data, meta = item.data, _meta(item.data)
        native = meta.get("run_id")
        if not is_uuid(native):
            self.count("runs_id_mapped", 1)
        status = RUN_STATUS.get(data.get("status"), "completed")
        created = meta.get("created_at_ms") or thread_ms
        updated = meta.get("updated_at_ms") or created
        row_meta = {
            "source": "khala",
            "sourceStatus": data.get("status"),
            "assistantMessageId": meta.get("assistant_message_id"),
            "cancelRequested": bool(meta.get("cancel_requested")),
        }
        if not is_uuid(native):
            row_meta["sourceRunId"] = native
        return {
            "id": run_id_of(self.stream, native),
            "thread_id": thread_id,
            "status": self.fit("runs", "status", status),
            "model_provider": None,
            "model": None,
            "usage": None,
            "meta": json_text(row_meta),
            "error": None,
            "started_at": self.moment("runs", "started_at", created),
            "completed_at": self.moment("runs", "completed_at", updated) if status in FINISHED else None,
            "created_at": self.moment("runs", "created_at", created),
            "updated_at": self.moment("runs", "updated_at", updated),
        }

    def _events(self, plan: Plan, thread_id: str, thread_ms, items: list[Item]) -> None:
        def order(item: Item):
            meta = _meta(item.data)
            return (meta.get("created_at_ms") or thread_ms or 0, meta.get("creation_time") or 0.0, item.key)

        seconds: dict[tuple, int] = {}
        for item in sorted(items, key=order):
            data, meta = item.data, _meta(item.data)
            native_run = meta.get("run_id")
            if not native_run:
                plan.skipped.append((item, "a receipt without runId"))
                self.count("events_skipped_no_run", 1)
                continue
            if not is_uuid(native_run):
                self.count("events_run_id_mapped", 1)
            kind = data.get("kind") or "unknown"
            payload = json_text(
                {
                    "source": "khala_receipt",
                    "kind": kind,
                    "receiptId": meta.get("receipt_id"),
                    "signatureId": meta.get("signature_id"),
                    "compiledId": meta.get("compiled_id"),
                    "json": data.get("payload"),
                }
            )
            exact = order(item)[0]
            row = {
                "thread_id": thread_id,
                "run_id": run_id_of(self.stream, native_run),
                "type": self.fit("run_events", "type", EVENT_TYPE.get(kind, "legacy_receipt")),
                "payload": payload,
                "created_at": self.moment("run_events", "created_at", exact),
            }
            same = (row["run_id"], row["type"], payload, exact // 1000)
            seconds[same] = seconds.get(same, 0) + 1
            if seconds[same] > 1:
                self.count("events_same_second_kept", 1)
            plan.events.append((item, row))
