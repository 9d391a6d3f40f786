"""One conversation unit → the rows it should be in the chat tables (no database here).

Used twice: to write a unit, and by verify to predict what the target must show. Rows
leave out what only the target knows (``user_id``, ``autopilot_id``, run-event ids).

The plan reads canonical ``data`` (DESIGN §2), so any source's stream lands: ``owner``,
``created_at``/``updated_at``, ``title``, the message tree (``parent``, ``active_leaf``),
``role``, ``parts`` and ``usage``. Convex ``metadata`` only refines it where present: the
source ids (``thread_id``, ``message_id``, ``run_id``), ``_creationTime`` (orders messages
written in the same millisecond) and the native status kept in ``meta``.

Rules (the original importer's, and where it lost data, better — each counted):

- A thread is written only with an owner; anonymous threads, documents of threads
  missing from the ledger and everything in them are skipped and counted
  (``threads_skipped_ownerless``, ``<kind>_skipped_ownerless``). The owner is the
  ``users`` row whose ``workos_id`` the owner key maps to (:mod:`.identity`).
- Ids: the source's ids where the record has them (Convex ``threadId``, ``messageId``;
  else the key's id), mapped to ``uuid5`` when longer than the 36-character columns.
- Title: the conversation's ``title`` when it has one; else the first user message with
  text (earliest), whitespace collapsed, cut at 120 characters with ``…``; else
  ``Conversation <first 8 of the thread id>``.
- One flat list per thread: Laravel holds no branches. Written are the messages on the
  active branch (root → ``active_leaf``), every message not below a branch point's
  inactive child, and every message the target already holds (a message deleted at the
  source stays under ``merge``, though the tree has moved on without it); the others
  (older edits, regenerations, the other answers of a multi-model group) are skipped
  (``messages_skipped_off_branch``).
- Messages: roles user/assistant/system; a ``tool`` message's ``tool_result`` parts are
  kept in its assistant parent's ``tool_results`` (``tool_messages_folded``); other roles
  are skipped (``messages_skipped_role``). ``content`` = the text parts, code parts fenced.
  Parts the tables cannot hold (reasoning, error, image, file, citation, other) are
  counted (``parts_not_kept_<type>``), and so are message files
  (``message_files_not_kept``: the chat tables have no attachments).
  ``run_id`` only when that run is in the same thread.
  **Order**: the original truncated times to whole seconds, so same-second messages came
  back in any order under ``ORDER BY created_at``. Here messages are ordered by
  (``created_at`` to the millisecond, Convex ``_creationTime``) and stored at the column's
  resolution; a message that would tie with (or sort before) its predecessor is stored
  one resolution step later (``messages_created_at_nudged``), so the stored order is the
  real one on every dialect. The exact milliseconds are kept in ``meta.createdAtMs``.
  ``messages_millisecond_order_kept`` counts messages sharing a whole second with their
  predecessor: those the original importer left ambiguous.
- Tool calls and results go to ``agent_conversation_messages`` ``tool_calls`` /
  ``tool_results`` (the original wrote ``[]``): ``tool_calls_kept``,
  ``tool_results_kept``; usage to ``usage``.
- Runs: status ``streaming`` → running, ``final`` → completed, ``error`` → failed,
  ``canceled`` → canceled, other → completed; ``completed_at`` for the last three. A
  ``runId`` that is not a UUID was dropped by the original; here it becomes
  ``uuid5(namespace, "<stream>\\nrun:<runId>")`` (``runs_id_mapped``,
  ``events_run_id_mapped``), the source id kept in ``meta.sourceRunId``.
- Receipts → ``run_events``: type ``legacy_receipt_model`` / ``_tool`` /
  ``_dse_predict`` / ``legacy_receipt``; payload ``{source: khala_receipt, kind,
  receiptId, signatureId, compiledId, json}``. Identical receipts in the same second are
  kept apart (the original collapsed them): ``events_same_second_kept``.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from ledger.kit import ConversationView, Item, Unit, canonical_text, message_text, parts_of
from sinks.laravel.columns import Columns, Count, canonical_ms
from sinks.laravel.identity import owner_workos_id

NAMESPACE = uuid.UUID("0b7e6a2c-5d0f-4d57-9a51-4c1f3b0e8a77")  # chatledger's laravel ids
RUN_STATUS = {"streaming": "running", "final": "completed", "error": "failed", "canceled": "canceled"}
FINISHED = ("completed", "failed", "canceled")
EVENT_TYPE = {
    "model": "legacy_receipt_model",
    "tool": "legacy_receipt_tool",
    "dse.predict": "legacy_receipt_dse_predict",
}
ROLES = ("user", "assistant", "system")
#: part types the chat tables have no place for (text and code go to ``content``,
#: tool calls and results to their columns)
UNKEPT_PARTS = ("reasoning", "error", "image", "file", "citation", "other")
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


def _meta(data: dict[str, Any]) -> dict[str, Any]:
    meta = data.get("metadata")
    return meta if isinstance(meta, dict) else {}


def native_id(item: Item, refinement: str) -> str:
    """The source's id of a record: Convex's (``metadata[refinement]``), else the key's."""
    refined = _meta(item.data).get(refinement)
    return refined if isinstance(refined, str) and refined else item.key.split(":", 1)[-1]


def run_of(item: Item) -> str | None:
    """The native run id a message or run event belongs to."""
    native = _meta(item.data).get("run_id")
    if isinstance(native, str) and native:
        return native
    run = item.data.get("run")
    return run.split(":", 1)[-1] if isinstance(run, str) and run else None


@dataclass
class Plan:
    """What one thread unit should be in the target."""

    thread_id: str | None
    owner_id: str | None  # the owner's users.workos_id
    skip: str | None = None
    thread: dict[str, Any] | None = None  # the threads row (agent_conversations shares it)
    messages: list[tuple[Item, dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    runs: list[tuple[Item, dict[str, Any]]] = field(default_factory=list)
    events: list[tuple[Item, dict[str, Any]]] = field(default_factory=list)
    folded: list[tuple[Item, str]] = field(default_factory=list)  # tool messages → the row holding them
    skipped: list[tuple[Item, str]] = field(default_factory=list)  # present, not written

    def written(self) -> set[int]:
        return {id(item) for item, *_ in self.messages + self.runs + self.events + self.folded}

    def lean(self) -> Plan:
        """The plan as the writer needs it once the upserted rows are formed
        (:class:`~sinks.laravel.threads.RowForm`): those rows' ids, not their values
        (less to send back from a worker). Run events keep their rows."""
        return replace(
            self,
            thread=_ids(self.thread) if self.thread else None,
            messages=[(item, _ids(row), _ids(row_too)) for item, row, row_too in self.messages],
            runs=[(item, _ids(row)) for item, row in self.runs],
        )


def _ids(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"]}


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
        present = [item for item in unit.items if not item.removed and item is not head]
        if data is None:
            plan = Plan(None, None, skip="the thread is not in the ledger")
        else:
            plan = Plan(native_id(head, "thread_id"), owner_workos_id(self.stream, data))
            if plan.owner_id is None:
                plan.skip = "anonymous thread (no owner)"
        if plan.skip:
            plan.skipped = [(item, plan.skip) for item in present]
            return plan
        thread_id = short_id(self.stream, "thread", plan.thread_id)
        created = canonical_ms(data.get("created_at"))
        runs = {run_of(item): item for item in present if item.kind == "run"}
        first_user = self._messages(plan, thread_id, created, ConversationView(unit), runs)
        title = data.get("title") if isinstance(data.get("title"), str) and data["title"].strip() else None
        plan.thread = {
            "id": thread_id,
            "title": self.fit("threads", "title", title or title_of(first_user, plan.thread_id)),
            "created_at": self.moment("threads", "created_at", created),
            "updated_at": self.moment(
                "threads", "updated_at", canonical_ms(data.get("updated_at")) or created
            ),
        }
        plan.runs = [(item, self._run(item, thread_id, created)) for item in runs.values()]
        self._events(plan, thread_id, created, [item for item in present if item.kind == "run_event"])
        return plan

    # -- messages ----------------------------------------------------------------------------

    def _messages(self, plan: Plan, thread_id: str, thread_ms, view: ConversationView, runs) -> str | None:
        """Plan the thread's message rows; the first user text (for the title)."""

        created = {key: canonical_ms(item.data.get("created_at")) for key, item in view.messages.items()}

        def order(item: Item):
            exact = created[item.key] or thread_ms or 0
            return (exact, _meta(item.data).get("creation_time") or 0.0, item.key)

        off_branch = _off_branch(view)
        first_user = None
        previous_ms = previous_stored = None
        step = self.columns.resolution("messages", "created_at")
        rows: dict[str, dict[str, Any]] = {}  # message key → its agent_conversation_messages row
        for item in sorted(view.messages.values(), key=order):
            role = item.data.get("role")
            if item.key in off_branch and not holds_row(item):
                plan.skipped.append((item, "not on the active branch"))
                self.count("messages_skipped_off_branch", 1)
                continue
            if role == "tool" and self._fold(plan, item, rows.get(view.parents[item.key] or "")):
                continue
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
            text = message_text(item.data, code=True)
            if first_user is None and role == "user" and text.strip():
                first_user = text
            self._count_unkept(item.data)
            message, conversation_message = self._message_rows(
                item, thread_id, role, text, (created[item.key], stored), runs
            )
            rows[item.key] = conversation_message
            plan.messages.append((item, message, conversation_message))
        for _, _, row in plan.messages:  # complete once folded tool messages are in
            del row["_arguments"]
            row["tool_results"] = self._json_fit("tool_results", row.pop("_results"))
        return first_user

    def _fold(self, plan: Plan, item: Item, parent_row: dict[str, Any] | None) -> bool:
        """A tool message's results into its assistant parent's ``tool_results``."""
        if parent_row is None or parent_row["role"] != "assistant":
            return False
        results = self._results(parts_of(item.data, "tool_result"), parent_row["_arguments"])
        parent_row["_results"].extend(results)
        self.count("tool_results_kept", len(results))
        self.count("tool_messages_folded", 1)
        plan.folded.append((item, parent_row["id"]))
        return True

    def _count_unkept(self, data: dict[str, Any]) -> None:
        for part in parts_of(data):
            if part.get("type") in UNKEPT_PARTS:
                self.count(f"parts_not_kept_{part['type']}", 1)
        self.count("message_files_not_kept", len(data.get("files") or []))

    def _message_rows(self, item: Item, thread_id: str, role: str, text: str, times: tuple, runs):
        """Its ``messages`` and ``agent_conversation_messages`` rows; ``times``: the
        source's milliseconds (or None) and the stored ones."""
        data, meta = item.data, _meta(item.data)
        run = meta.get("run_id")
        exact, stored_ms = times
        updated = max(canonical_ms(data.get("updated_at")) or stored_ms, stored_ms)
        row_meta = {
            "source": "khala" if "message_id" in meta else "chatledger",
            "sourceStatus": meta.get("status", data.get("status")),
            "sourceRunId": run,
            "createdAtMs": exact,
        }
        created_at = self.moment("messages", "created_at", stored_ms)
        message_id = short_id(self.stream, "message", native_id(item, "message_id"))
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
        calls = parts_of(data, "tool_call")
        arguments = {call.get("id"): call.get("args") for call in calls}
        self.count("tool_calls_kept", len(calls))
        results = self._results(parts_of(data, "tool_result"), arguments)
        self.count("tool_results_kept", len(results))
        conversation_message = {
            "id": message_id,
            "conversation_id": thread_id,
            "agent": AGENT,
            "role": role,
            "content": self.fit("agent_conversation_messages", "content", text),
            "attachments": "[]",
            "tool_calls": self._json_fit(
                "tool_calls",
                [
                    {"id": call.get("id"), "name": call.get("name"), "arguments": call.get("args")}
                    for call in calls
                ],
            ),
            "usage": self._json_fit("usage", data.get("usage") or {}),
            "meta": self._json_fit("meta", row_meta),
            "created_at": created_at,
            "updated_at": message["updated_at"],
            "_arguments": arguments,  # for folded tool messages; popped before writing
            "_results": results,
        }
        return message, conversation_message

    @staticmethod
    def _results(parts: list[dict[str, Any]], arguments: dict[Any, Any]) -> list[dict[str, Any]]:
        return [
            {
                "id": part.get("id"),
                "name": part.get("name"),
                "arguments": arguments.get(part.get("id")),
                "result": part.get("result", part.get("text")),
            }
            for part in parts
        ]

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
        native = run_of(item) or native_id(item, "run_id")
        if not is_uuid(native):
            self.count("runs_id_mapped", 1)
        status = RUN_STATUS.get(data.get("status"), "completed")
        created = canonical_ms(data.get("created_at")) or thread_ms
        updated = canonical_ms(data.get("updated_at")) or created
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
            exact = canonical_ms(item.data.get("created_at")) or thread_ms or 0
            return (exact, _meta(item.data).get("creation_time") or 0.0, item.key)

        seconds: dict[tuple, int] = {}
        for item in sorted(items, key=order):
            data, meta = item.data, _meta(item.data)
            native_run = run_of(item)
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


def holds_row(item: Item) -> bool:
    """The ledger believes the target holds a row for this record."""
    held = item.held_ref
    return isinstance(held, dict) and bool(held.keys() & {"thread", "message", "run", "run_event"})


def _off_branch(view: ConversationView) -> set[str]:
    """Messages below an inactive child of an active-branch message: the other sides of
    edits, regenerations and multi-model answers. Roots other than the active one (orphans
    re-rooted, first turns whose parent is not in the unit) are not a branch: they stay."""
    active = set(view.active_branch)
    out: set[str] = set()
    stack = [
        child for key in view.active_branch for child in view.children.get(key, []) if child not in active
    ]
    while stack:
        key = stack.pop()
        out.add(key)
        stack.extend(view.children.get(key, []))
    return out
