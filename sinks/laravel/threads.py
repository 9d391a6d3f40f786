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
second and payload — payloads compared as ``jsonb`` compares them on Postgres, as
canonical JSON elsewhere — and adopts it (``events_deduplicated``) instead of inserting
a duplicate. Rows already held by an event of the batch, or adopted by one, are never
adopted again, so identical receipts in the same second stay separate rows.

Everything is written batch-wise, a few statements per batch whatever its size: the
rows held for what is no longer written deleted by id lists, the five id-keyed tables
upserted with the target's fastest bulk write (COPY through a staging table on
Postgres, an ``executemany`` of plain tuples elsewhere), their rows formed for it with
the plan (:class:`RowForm`: tuples of bind-processed values; in a worker for a large
replay), the writer adding only the owner's ids; run events: one look-up of the
held rows, one of the rows an adoption could take (compared in Python), one upsert of
the rows updated in place, one ``INSERT … RETURNING`` of the new ones.

Outcomes: a written record is an insert or update whose target ref names its row (a
folded tool message names the row holding its results: ``{"folded_into": id}``); a
record the plan leaves out (an ownerless thread and its members, a message off the
active branch, a role the tables do not hold, a receipt without a run) is a skip with
the reason, never a write.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Dialect, MetaData, Table, Text, cast, delete, func, insert, select

from ledger.kit import Item, Outcome, PermanentError, Unit, bulk_write, canonical_text, chunks
from sinks.laravel.autopilots import Autopilots
from sinks.laravel.columns import Count, millis
from sinks.laravel.plan import Plan, holds_row
from sinks.laravel.users import Users

#: the tables a batch of threads is upserted into, parents first
UPSERTED = ("threads", "agent_conversations", "runs", "messages", "agent_conversation_messages")
REF_OF_KIND = {"conversation": "thread", "message": "message", "run": "run", "run_event": "run_event"}
#: the tables holding the row a target ref names, by the ref's key
TABLES_OF_REF = {
    "thread": ("threads", "agent_conversations"),
    "message": ("messages", "agent_conversation_messages"),
    "run": ("runs",),
    "run_event": ("run_events",),
}


def canonical_json(value: Any) -> str | None:
    """Stored JSON (text, or what the driver parsed) in canonical form."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        value = orjson.loads(value)
    return canonical_text(value)


def write_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Upsert rows (all with the same columns) by ``id`` with the dialect's bulk write.

    The bulk write takes plain values, so each column's bind processing (SQLite's
    datetime text) is done here, once per value, as Core would have done it."""
    if not rows:
        return
    columns = list(rows[0])
    processors = bind_processors(table, columns, conn.dialect)
    upsert_by_id(
        conn, table, columns, [processed([row[name] for name in columns], processors) for row in rows]
    )


def upsert_by_id(conn: Connection, table: Table, columns: Sequence[str], values: list[tuple]) -> None:
    """Bulk-write rows of plain values, a row that exists (by ``id``) overwritten."""
    update = [column for column in columns if column != "id"]
    bulk_write(conn, table, columns, values, conflict=["id"], update=update)


def bind_processors(table: Table, columns: Sequence[str], dialect: Dialect) -> list[tuple[int, Callable]]:
    """(position, processor) of the columns whose values the dialect processes when bound."""
    return [
        (index, processor)
        for index, name in enumerate(columns)
        if (processor := table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
    ]


def processed(line: list[Any], processors: list[tuple[int, Callable]]) -> tuple:
    for index, processor in processors:
        if line[index] is not None:
            line[index] = processor(line[index])
    return tuple(line)


#: what the writer adds to the planned rows of each upserted table, from the target
LINKED = {
    "threads": ("user_id", "autopilot_id"),
    "agent_conversations": ("user_id",),
    "runs": ("user_id", "autopilot_id", "autopilot_config_version"),
    "messages": ("user_id", "autopilot_id"),
    "agent_conversation_messages": ("user_id",),
}
#: table → (its planned columns, (row id, the row formed) per row): a plan's rows formed
Formed = dict[str, tuple[tuple[str, ...], list[tuple[str, Any]]]]


class RowForm:
    """A plan's rows of the upserted tables as the target's bulk write takes them, made
    with the plan (ahead of the writer, in a worker for a large replay): tuples of
    bind-processed values (SQLite's datetime text; on Postgres and MySQL the values as
    they are: psycopg's COPY formats them faster than Python could ahead). The writer
    appends the columns it looks up in the target (:data:`LINKED`)."""

    def __init__(self, meta: MetaData, dialect: Dialect) -> None:
        self.tables = meta.tables
        self.dialect = dialect

    def of_plan(self, plan: Plan) -> Formed:
        if plan.skip:
            return {}
        planned = {
            "threads": [plan.thread],
            "agent_conversations": [plan.thread],
            "runs": [row for _, row in plan.runs],
            "messages": [row for _, row, _ in plan.messages],
            "agent_conversation_messages": [row for *_, row in plan.messages],
        }
        return {name: self._formed(name, rows) for name, rows in planned.items() if rows}

    def _formed(
        self, name: str, rows: list[dict[str, Any]]
    ) -> tuple[tuple[str, ...], list[tuple[str, tuple]]]:
        columns = tuple(rows[0])
        processors = bind_processors(self.tables[name], columns, self.dialect)
        return columns, [(row["id"], processed([row[c] for c in columns], processors)) for row in rows]

    def write(self, conn: Connection, name: str, columns: Sequence[str], rows: list[tuple]) -> None:
        """Upsert formed rows (the linked values appended) by ``id``."""
        upsert_by_id(conn, self.tables[name], columns, rows)


class ThreadWriter:
    def __init__(self, meta: MetaData, dialect: Dialect, users: Users, autopilots: Autopilots) -> None:
        self.tables = meta.tables
        self.form = RowForm(meta, dialect)
        self.users = users
        self.autopilots = autopilots

    def write(
        self, conn: Connection, planned: list[tuple[Unit, Plan, Formed]], count: Count
    ) -> list[Outcome]:
        """Write consecutive conversation units of one batch (each with its plan and its
        rows formed, :meth:`RowForm.of_plan`): owners and autopilots looked up once, then
        one upsert per table for all of them (parents first)."""
        outcomes: list[Outcome] = []
        live = []
        doomed: list[Item] = []  # items whose held rows go
        for unit, plan, formed in planned:
            if plan.skip or unit.removed:
                outcomes += self._drop(unit, plan, count)
                doomed += unit.items
            else:
                live.append((unit, plan, formed))
        if not live:
            self._delete_held(conn, doomed)
            return outcomes
        user_ids = self.users.laravel_ids(conn, {plan.owner_id for _, plan, _ in live})
        autopilots = self.autopilots.of_owners(conn, set(user_ids.values()))
        rows: dict[str, dict[Any, Any]] = {name: {} for name in UPSERTED}
        columns: dict[str, tuple[str, ...]] = {}
        written = []
        for unit, plan, formed in live:
            user_id = user_ids.get(plan.owner_id)
            if user_id is None:
                raise PermanentError(
                    f"{unit.key}: its owner user:{plan.owner_id} is not in the target's users table"
                )
            autopilot = autopilots.get(user_id)
            linked = {"user_id": user_id, "autopilot_id": autopilot.id if autopilot else None}
            kept = plan.written()
            doomed += [item for item in unit.items if id(item) not in kept and item is not unit.head]
            values = {**linked, "autopilot_config_version": autopilot.config_version if autopilot else None}
            for name, (planned_columns, formed_rows) in formed.items():
                columns[name] = planned_columns + LINKED[name]
                extra = tuple(values[column] for column in LINKED[name])
                # keyed by id: a row two units of the batch write is written once, the later wins
                for row_id, row in formed_rows:
                    rows[name][row_id] = row + extra  # ids and numbers: never processed
            written.append((unit, plan, linked))
        self._delete_held(conn, doomed)
        for name in UPSERTED:
            if rows[name]:
                self.form.write(conn, name, columns[name], list(rows[name].values()))
        events = self._events(conn, written, count)
        for unit, plan, _ in written:
            refs: dict[int, Any] = {id(unit.head): {"thread": plan.thread["id"]}}
            refs |= {id(item): {"run": row["id"]} for item, row in plan.runs}
            refs |= {id(item): {"message": row["id"]} for item, row, _ in plan.messages}
            refs |= {id(item): {"folded_into": row_id} for item, row_id in plan.folded}
            refs |= {id(item): {"run_event": events[id(item)]} for item, _ in plan.events}
            count("threads_imported", 1)
            count("runs_imported", len(plan.runs))
            count("messages_imported", len(plan.messages))
            count("events_imported", len(plan.events))
            self._count_skipped(plan, count)
            outcomes += self._outcomes(unit, refs, dict((id(item), reason) for item, reason in plan.skipped))
        return outcomes

    # -- removing ------------------------------------------------------------------------------

    def _drop(self, unit: Unit, plan: Plan, count: Count) -> list[Outcome]:
        """The unit is not (or no longer) written (the caller deletes what the target holds
        of it): its outcomes."""
        if plan.skip and not unit.removed:
            head = unit.head
            if head is not None and not head.removed:
                count("threads_skipped_ownerless", 1)
            self._count_skipped(plan, count)
        reason = plan.skip or "removed"
        return self._outcomes(unit, {}, {id(item): reason for item in unit.items})

    def _delete_held(self, conn: Connection, items: list[Item]) -> None:
        """Delete the rows the ledger holds for these items (a statement per table and
        thousand ids)."""
        refs = [item.held_ref for item in items if item.held_ref]
        for key, names in TABLES_OF_REF.items():
            ids = sorted({ref[key] for ref in refs if key in ref})
            for name in names:
                table = self.tables[name]
                for chunk in chunks(ids):
                    conn.execute(delete(table).where(table.c.id.in_(chunk)))

    # -- run events ----------------------------------------------------------------------------

    def _events(
        self, conn: Connection, written: list[tuple[Unit, Plan, dict[str, Any]]], count: Count
    ) -> dict[int, int]:
        """Write the run events of the batch's threads; ``id(item)`` → its row id."""
        wanted = [
            (item, {**row, **_actor(linked)}) for _, plan, linked in written for item, row in plan.events
        ]
        held = {id(item): (item.held_ref or {}).get("run_event") for item, _ in wanted}
        present = self._present(conn, set(held.values()) - {None})
        claimed = set(held.values()) - {None}  # never adopted: the ledger says an event has them
        found: dict[int, int] = {}
        updated: dict[int, dict[str, Any]] = {}  # row id → its values
        new = []
        for item, values in wanted:
            if held[id(item)] in present:
                found[id(item)] = held[id(item)]
                updated[held[id(item)]] = {"id": held[id(item)], **values}
            else:
                new.append((item, values))
        candidates = self._candidates(conn, [values for _, values in new])
        inserted = []
        for item, values in new:
            same = jsonb_equal if conn.dialect.name == "postgresql" else canonical_equal
            event_id = _adopt(candidates.get(_adoption_key(values), []), values["payload"], claimed, same)
            if event_id is None:
                inserted.append((item, values))
                continue
            claimed.add(event_id)
            found[id(item)] = event_id
            updated[event_id] = {"id": event_id, **values}
            count("events_deduplicated", 1)
        write_rows(conn, self.tables["run_events"], list(updated.values()))
        return found | self._insert_events(conn, inserted)

    def _present(self, conn: Connection, ids: set[int]) -> set[int]:
        """Which of these run event rows the target still has."""
        events = self.tables["run_events"]
        present: set[int] = set()
        for chunk in chunks(sorted(ids)):
            present.update(conn.scalars(select(events.c.id).where(events.c.id.in_(chunk))))
        return present

    def _candidates(self, conn: Connection, new: list[dict[str, Any]]) -> dict[tuple, list[tuple[int, Any]]]:
        """The rows of the new events' threads, by :func:`_adoption_key`, in id order, with
        their payload as stored: what an adoption may take (someone else's rows among them)."""
        events = self.tables["run_events"]
        if conn.dialect.name == "sqlite":  # text: the app writes "Y-m-d H:i:s", we may add a fraction
            created = func.substr(events.c.created_at, 1, 19)
        else:
            created = events.c.created_at
        query = select(
            events.c.id, events.c.thread_id, events.c.run_id, events.c.user_id, events.c.type,
            created.label("created_at"), cast(events.c.payload, Text).label("payload"),
        )  # fmt: skip
        found: dict[tuple, list[tuple[int, Any]]] = {}
        for chunk in chunks(sorted({values["thread_id"] for values in new})):
            for row in conn.execute(query.where(events.c.thread_id.in_(chunk)).order_by(events.c.id)):
                found.setdefault(_adoption_key(row._mapping), []).append((row.id, row.payload))
        return found

    def _insert_events(self, conn: Connection, rows: list[tuple[Item, dict[str, Any]]]) -> dict[int, int]:
        """Insert new run event rows; ``id(item)`` → the row's id.

        One ``INSERT … RETURNING`` where the dialect has it (Postgres, SQLite, MariaDB ≥
        10.5; SQLAlchemy sends a thousand rows per statement), matched back to the events
        by content: RETURNING promises no order, and rows equal in every column are
        interchangeable. MySQL, without RETURNING, inserts row by row."""
        events = self.tables["run_events"]
        if not rows:
            return {}
        if not conn.dialect.insert_returning:
            return {
                id(item): conn.execute(insert(events).values(**values)).inserted_primary_key[0]
                for item, values in rows
            }
        waiting: dict[tuple, list[Item]] = {}
        for item, values in rows:
            waiting.setdefault(_content(values), []).append(item)
        statement = insert(events).returning(
            events.c.id, events.c.thread_id, events.c.run_id, events.c.user_id, events.c.type,
            events.c.created_at, cast(events.c.payload, Text).label("payload"),
        )  # fmt: skip
        found = {}
        for row in conn.execute(statement, [values for _, values in rows]):
            items = waiting.get(_content(row._mapping))
            if not items:
                raise PermanentError(
                    f"run_events: the inserted row {row.id} matches none of the batch's events"
                )
            found[id(items.pop(0))] = row.id
        return found

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


def _actor(linked: dict[str, Any]) -> dict[str, Any]:
    """A run event's owner and actor columns: the autopilot when the owner has one."""
    autopilot = linked["autopilot_id"]
    return {
        "user_id": linked["user_id"],
        "autopilot_id": autopilot,
        "actor_type": "autopilot" if autopilot else "user",
        "actor_autopilot_id": autopilot,
    }


def _second(value: dt.datetime | str) -> str:
    """A stored time to the whole second, as SQLite's text begins."""
    return value[:19] if isinstance(value, str) else value.strftime("%Y-%m-%d %H:%M:%S")


def _adoption_key(row) -> tuple:
    """What a row someone else wrote must share with a run event to be its row."""
    return (row["thread_id"], row["run_id"], row["user_id"], row["type"], _second(row["created_at"]))


def _content(row) -> tuple:
    """Every column of a new run event row that tells it from the batch's others."""
    return (
        row["thread_id"], row["run_id"], row["user_id"], row["type"], millis(row["created_at"]),
        canonical_json(row["payload"]),
    )  # fmt: skip


def _adopt(candidates: list[tuple[int, Any]], payload: str, claimed: set, same) -> int | None:
    """The first candidate row nobody holds whose payload is ``same`` as this one."""
    for row_id, stored in candidates:
        if row_id not in claimed and same(stored, payload):
            return row_id
    return None


def canonical_equal(stored: Any, payload: str) -> bool:
    """Payloads equal as canonical JSON (SQLite and MySQL store JSON as text)."""
    return canonical_json(stored) == payload


def jsonb_equal(stored: Any, payload: str) -> bool:
    """Payloads equal as Postgres compares ``jsonb``: numbers by value (``1.0`` = ``1``),
    keys in any order, booleans never equal to numbers."""
    if stored is None:
        return False
    return _same_json(
        orjson.loads(stored) if isinstance(stored, (str, bytes)) else stored, orjson.loads(payload)
    )


def _same_json(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_json(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _plural(kind: str) -> str:
    return {"message": "messages", "run": "runs", "run_event": "events"}.get(kind, kind + "s")
