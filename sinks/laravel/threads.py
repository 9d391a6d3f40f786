"""Writing one conversation unit: ``threads`` + ``agent_conversations``, ``runs``,
``messages`` + ``agent_conversation_messages`` and ``run_events`` (rows from :mod:`.plan`).

A changed unit is written whole: every present message and run is upserted by id (a
change to one message can move its neighbours' stored times), and rows of items that
were removed, or are now skipped, are deleted by the ids the ledger holds for them.
``user_id`` is the owner's ``users.id`` (matched by ``workos_id``); ``autopilot_id`` and
``autopilot_config_version`` come from the owner's autopilot when there is one.

``run_events`` has no source id and no unique key. Each run event the ledger holds
keeps its row id (the target ref) and is updated in place. A new one first looks for a
row written by someone else (an earlier import) with the same thread, run, user, type,
second and payload — payloads compared as ``jsonb`` on Postgres, as canonical JSON
elsewhere — and adopts it (``events_deduplicated``) instead of inserting a duplicate.
Rows already held by another event of the thread are never adopted, so identical
receipts in the same second stay separate rows.

Outcomes: a written record is an insert or update whose target ref names its row (a
folded tool message names the row holding its results: ``{"folded_into": id}``); a
record the plan leaves out (an ownerless thread and its members, a message off the
active branch, a role the tables do not hold, a receipt without a run) is a skip with
the reason, never a write.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    MetaData,
    Text,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects import postgresql

from ledger.kit import Item, Outcome, PermanentError, Unit, canonical_text, upsert
from sinks.laravel.autopilots import Autopilots
from sinks.laravel.columns import Count
from sinks.laravel.plan import Plan, holds_row
from sinks.laravel.users import Users

#: the tables a batch of threads is upserted into, parents first
UPSERTED = ("threads", "agent_conversations", "runs", "messages", "agent_conversation_messages")
REF_OF_KIND = {"conversation": "thread", "message": "message", "run": "run", "run_event": "run_event"}


def canonical_json(value: Any) -> str | None:
    """Stored JSON (text, or what the driver parsed) in canonical form."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        value = orjson.loads(value)
    return canonical_text(value)


class ThreadWriter:
    def __init__(self, meta: MetaData, users: Users, autopilots: Autopilots) -> None:
        self.tables = meta.tables
        self.users = users
        self.autopilots = autopilots

    def write(self, conn: Connection, planned: list[tuple[Unit, Plan]], count: Count) -> list[Outcome]:
        """Write consecutive conversation units of one batch: owners and autopilots looked
        up once, then one upsert per table for all of them (parents first)."""
        outcomes: list[Outcome] = []
        live = []
        for unit, plan in planned:
            if plan.skip or unit.removed:
                outcomes += self._drop(conn, unit, plan, count)
            else:
                live.append((unit, plan))
        if not live:
            return outcomes
        user_ids = self.users.laravel_ids(conn, {plan.owner_id for _, plan in live})
        autopilots = self.autopilots.of_owners(conn, set(user_ids.values()))
        rows: dict[str, dict[Any, dict[str, Any]]] = {name: {} for name in UPSERTED}
        written = []
        for unit, plan in live:
            user_id = user_ids.get(plan.owner_id)
            if user_id is None:
                raise PermanentError(
                    f"{unit.key}: its owner user:{plan.owner_id} is not in the target's users table"
                )
            autopilot = autopilots.get(user_id)
            linked = {"user_id": user_id, "autopilot_id": autopilot.id if autopilot else None}
            kept = plan.written()
            self._delete_held(
                conn, [item for item in unit.items if id(item) not in kept and item is not unit.head]
            )
            thread = {**plan.thread, **linked}
            version = autopilot.config_version if autopilot else None
            # keyed by id: a row two units of the batch write is written once, the later wins
            rows["threads"][thread["id"]] = thread
            rows["agent_conversations"][thread["id"]] = {
                k: v for k, v in thread.items() if k != "autopilot_id"
            }
            for _, row in plan.runs:
                rows["runs"][row["id"]] = {**row, **linked, "autopilot_config_version": version}
            for _, row, conversation_row in plan.messages:
                rows["messages"][row["id"]] = {**row, **linked}
                rows["agent_conversation_messages"][conversation_row["id"]] = {
                    **conversation_row,
                    "user_id": user_id,
                }
            written.append((unit, plan, linked))
        for name in UPSERTED:
            upsert(conn, self.tables[name], list(rows[name].values()), ["id"])
        for unit, plan, linked in written:
            refs: dict[int, Any] = {id(unit.head): {"thread": plan.thread["id"]}}
            refs |= {id(item): {"run": row["id"]} for item, row in plan.runs}
            refs |= {id(item): {"message": row["id"]} for item, row, _ in plan.messages}
            refs |= {id(item): {"folded_into": row_id} for item, row_id in plan.folded}
            refs |= self._events(conn, plan, linked, count)
            count("threads_imported", 1)
            count("runs_imported", len(plan.runs))
            count("messages_imported", len(plan.messages))
            count("events_imported", len(plan.events))
            self._count_skipped(plan, count)
            outcomes += self._outcomes(unit, refs, dict((id(item), reason) for item, reason in plan.skipped))
        return outcomes

    # -- removing ------------------------------------------------------------------------------

    def _drop(self, conn: Connection, unit: Unit, plan: Plan, count: Count) -> list[Outcome]:
        """The unit is not (or no longer) written: delete what the target holds of it."""
        self._delete_held(conn, unit.items)
        if plan.skip and not unit.removed:
            head = unit.head
            if head is not None and not head.removed:
                count("threads_skipped_ownerless", 1)
            self._count_skipped(plan, count)
        reason = plan.skip or "removed"
        return self._outcomes(unit, {}, {id(item): reason for item in unit.items})

    def _delete_held(self, conn: Connection, items: list[Item]) -> None:
        tables = self.tables
        for item in items:
            ref = item.held_ref or {}
            if "thread" in ref:
                for name, column in (("threads", "id"), ("agent_conversations", "id")):
                    conn.execute(delete(tables[name]).where(tables[name].c[column] == ref["thread"]))
            if "message" in ref:
                for name in ("messages", "agent_conversation_messages"):
                    conn.execute(delete(tables[name]).where(tables[name].c.id == ref["message"]))
            if "run" in ref:
                conn.execute(delete(tables["runs"]).where(tables["runs"].c.id == ref["run"]))
            if "run_event" in ref:
                conn.execute(
                    delete(tables["run_events"]).where(tables["run_events"].c.id == ref["run_event"])
                )

    # -- run events ----------------------------------------------------------------------------

    def _events(self, conn: Connection, plan: Plan, linked: dict[str, Any], count: Count) -> dict[int, Any]:
        events = self.tables["run_events"]
        actor = {
            "autopilot_id": linked["autopilot_id"],
            "actor_type": "autopilot" if linked["autopilot_id"] else "user",
            "actor_autopilot_id": linked["autopilot_id"],
        }
        claimed = {(item.held_ref or {}).get("run_event") for item, _ in plan.events} - {None}
        refs = {}
        for item, row in plan.events:
            values = {**row, "user_id": linked["user_id"], **actor}
            held = (item.held_ref or {}).get("run_event")
            if held is not None and conn.scalar(select(events.c.id).where(events.c.id == held)) is not None:
                conn.execute(update(events).where(events.c.id == held).values(**values))
                event_id = held
            else:
                event_id = self._adoptable(conn, values, claimed)
                if event_id is not None:
                    conn.execute(update(events).where(events.c.id == event_id).values(**values))
                    count("events_deduplicated", 1)
                else:
                    event_id = conn.execute(insert(events).values(**values)).inserted_primary_key[0]
            claimed.add(event_id)
            refs[id(item)] = {"run_event": event_id}
        return refs

    def _adoptable(self, conn: Connection, values: dict[str, Any], claimed: set) -> int | None:
        """A row someone else wrote for this receipt (same second, equal payload)."""
        events = self.tables["run_events"]
        second = values["created_at"].replace(microsecond=0)
        if conn.dialect.name == "sqlite":  # text: the app writes "Y-m-d H:i:s", we may add a fraction
            same_second = func.substr(events.c.created_at, 1, 19) == second.strftime("%Y-%m-%d %H:%M:%S")
        else:
            same_second = events.c.created_at.between(second, second + dt.timedelta(microseconds=999_999))
        query = select(events.c.id, cast(events.c.payload, Text).label("payload")).where(
            events.c.thread_id == values["thread_id"],
            events.c.run_id == values["run_id"],
            events.c.user_id == values["user_id"],
            events.c.type == values["type"],
            same_second,
        )
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            payload = cast(literal(values["payload"], Text), postgresql.JSONB)  # text, not a JSON string
            query = query.where(cast(events.c.payload, postgresql.JSONB) == payload)
        for row in conn.execute(query.order_by(events.c.id)):
            if row.id in claimed:
                continue
            if postgres or canonical_json(row.payload) == values["payload"]:
                return row.id
        return None

    # -- outcomes ------------------------------------------------------------------------------

    @staticmethod
    def _count_skipped(plan: Plan, count: Count) -> None:
        """Members of a skipped thread (other skips are counted where they are decided)."""
        if plan.skip:
            for item, _ in plan.skipped:
                count(f"{_plural(item.kind)}_skipped_ownerless", 1)

    @staticmethod
    def _outcomes(unit: Unit, refs: dict[int, Any], skipped: dict[int, str]) -> list[Outcome]:
        """An outcome for every changed item, and for an unchanged one whose row changed
        (a message written again after a skip, a run event whose row had to be written
        again): the ledger must know the row's id, or the next rewrite would not find it.
        What the plan left out is a skip; one the target held a row for is still a skip
        (its row was deleted above, so the target holds nothing for it)."""
        outcomes = []
        for item in unit.items:
            if item.removed:
                if item.changed and item.held_hash is not None:
                    outcomes.append(Outcome.written(item, item.held_ref))
                continue
            ref = refs.get(id(item))
            if ref is None:
                if item.changed or holds_row(item):
                    outcomes.append(Outcome.skip(item, skipped.get(id(item), "not written")))
            elif item.changed or ref != item.held_ref:
                outcomes.append(Outcome.written(item, ref))
        return outcomes


def _plural(kind: str) -> str:
    return {"message": "messages", "run": "runs", "run_event": "events"}.get(kind, kind + "s")
