"""What verify compares for a conversation unit: its rows, as the ledger predicts them and
as the target shows them.

The image of a thread is every column the sink derives from the records, in the six
chat tables, with ``user_id`` shown as the owner's ``workos_id``. Left out are the
columns only the target decides: ``autopilot_id``, ``autopilot_config_version`` and the
``actor_*`` fields (they follow the owner's autopilot and its backfills, not a record).
Run events are found by the row ids the ledger holds. A skipped thread's image says so,
and matches while the target has no such thread.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, MetaData, select

from ledger.kit import digest as canonical_digest
from sinks.laravel.columns import millis
from sinks.laravel.plan import Plan
from sinks.laravel.threads import canonical_json

COLUMNS = {
    "threads": ["id", "title", "created_at", "updated_at"],
    "agent_conversations": ["id", "title", "created_at", "updated_at"],
    "messages": ["id", "thread_id", "run_id", "role", "content", "meta", "created_at", "updated_at"],
    "agent_conversation_messages": [
        "id", "conversation_id", "agent", "role", "content", "attachments", "tool_calls",
        "tool_results", "usage", "meta", "created_at", "updated_at",
    ],
    "runs": ["id", "thread_id", "status", "model_provider", "model", "usage", "meta", "error",
             "started_at", "completed_at", "created_at", "updated_at"],
    "run_events": ["id", "thread_id", "run_id", "type", "payload", "created_at"],
}  # fmt: skip
JSON_COLUMNS = {"meta", "attachments", "tool_calls", "tool_results", "usage", "payload"}


def _value(column: str, value: Any) -> Any:
    if isinstance(value, (dt.datetime, str)) and column.endswith("_at"):
        return millis(value)
    if column in JSON_COLUMNS:
        return canonical_json(value)
    return value


def _row(table: str, row: Any, owner: str | None) -> list[Any]:
    get = row.get if isinstance(row, dict) else row._mapping.get
    return [_value(column, get(column)) for column in COLUMNS[table]] + [owner]


def expected(plan: Plan) -> list[Any]:
    if plan.skip:
        return ["skipped", plan.skip]
    owner = plan.owner_id
    image = {
        "threads": [plan.thread],
        "agent_conversations": [plan.thread],
        "messages": [row for _, row, _ in plan.messages],
        "agent_conversation_messages": [row for *_, row in plan.messages],
        "runs": [row for _, row in plan.runs],
        "run_events": [{**row, "id": (item.held_ref or {}).get("run_event")} for item, row in plan.events],
    }
    return _sorted({table: [_row(table, row, owner) for row in rows] for table, rows in image.items()})


def actual(conn: Connection, meta: MetaData, plan: Plan) -> list[Any] | None:
    tables, users = meta.tables, meta.tables["users"]
    if plan.skip:
        threads = tables["threads"]
        held = (
            conn.scalar(select(threads.c.id).where(threads.c.id == plan.thread_id))
            if plan.thread_id
            else None
        )
        return ["skipped", plan.skip] if held is None else ["present", plan.thread_id]
    ids = {
        "threads": [plan.thread["id"]],
        "agent_conversations": [plan.thread["id"]],
        "messages": [row["id"] for _, row, _ in plan.messages],
        "agent_conversation_messages": [row["id"] for _, row, _ in plan.messages],
        "runs": [row["id"] for _, row in plan.runs],
        "run_events": [(item.held_ref or {}).get("run_event") for item, _ in plan.events],
    }
    image = {}
    for name, wanted in ids.items():
        table = tables[name]
        query = (
            select(*[table.c[column] for column in COLUMNS[name]], users.c.workos_id)
            .select_from(table.outerjoin(users, users.c.id == table.c.user_id))
            .where(table.c.id.in_([value for value in wanted if value is not None]))
        )
        image[name] = [_row(name, row, row.workos_id) for row in conn.execute(query)]
    if not image["threads"]:
        return None
    return _sorted(image)


def _sorted(image: dict[str, list[list[Any]]]) -> list[Any]:
    return [[table, sorted(rows, key=lambda row: str(row[0]))] for table, rows in sorted(image.items())]


def digest(image: list[Any] | None) -> str | None:
    return None if image is None else canonical_digest(image)
