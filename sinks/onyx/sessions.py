"""Writing conversation units as Onyx chat sessions: one batch, one transaction.

A unit becomes one ``chat_session`` and its ``chat_message`` rows (``render.py`` says
what they hold). The writer changes only what differs from what Onyx has:

- **Session id**: what this record was written to before (its target ref), else the
  conversation's own id (LibreChat's ``metadata.source_id``, else the id in its key)
  when it is a UUID, else ``uuid5(stream + key)``. A session with that id that chatledger never wrote for this
  record is an earlier import of the same conversation (Onyx itself never uses
  LibreChat's ids): it is *adopted* and its rows replaced (``sessions_adopted``),
  unless it belongs to another user or another record's marker names it; then the
  uuid5 id is used (two LibreChat users may share a conversationId).
- **Sessions** not in Onyx yet arrive in one COPY, the others in one upsert that
  changes only what differs.
- **Rows**: every message keeps the row id it was written to (target refs); rows whose
  content, parent or pointer differ are updated in place; new rows get ids from
  ``chat_message_id_seq`` up front and arrive in one binary COPY (parents and pointers inside
  one statement are fine for the non-deferrable self-FKs); rows of removed messages,
  dropped bridges and adopted sessions are deleted last. Rows chatledger did not write
  (a chat continued in Onyx) are left alone; if one hangs under a message the ledger
  removed, the unit is rejected rather than break it.
- **Feedback**: a thumbs up/down becomes a ``chat_feedback`` row of the message.
- A conversation whose owner has no account (``skip_emails``, or a user skipped for
  owning nothing) or that has no owner at all writes nothing: its records are skips with
  the reason (``sessions_skipped``, ``sessions_skipped_no_owner``).
- Parts Onyx cannot hold are counted per written message (``parts_not_kept_<type>``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from psycopg.types.json import Jsonb

from ledger.kit import MARKER_TABLE, Outcome, OwnerMap, PermanentError, Unit, owner_of
from sinks.onyx.readback import SessionRows, load_sessions
from sinks.onyx.render import Node, SessionPlan, unkept_parts

NAMESPACE = uuid.UUID("6f6e7978-6368-6174-6c65-646765720001")

#: the Postgres types of ``Sessions._columns`` for a binary COPY, without and with
#: ``reasoning_tokens`` (Postgres then parses no text: integers, uuid, time and jsonb)
ROW_TYPES = ("int4", "uuid", "int4", "int4", "text", "varchar", "int4", "timestamptz", "jsonb", "text")
REASONING_TYPES = (*ROW_TYPES, "text")


def fallback_id(stream: str, key: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{stream}\x1f{key}"))


def natural_id(stream: str, unit: Unit) -> str:
    """The conversation's own id when it is a UUID, else the uuid5 of stream and key."""
    metadata = unit.head.data.get("metadata") if isinstance(unit.head.data.get("metadata"), dict) else {}
    for candidate in (metadata.get("source_id"), unit.key.split(":", 1)[-1]):
        try:
            return str(uuid.UUID(str(candidate)))
        except ValueError:
            continue
    return fallback_id(stream, unit.key)


def held(item) -> dict[str, Any]:
    return item.held_ref if isinstance(item.held_ref, dict) else {}


@dataclass
class Change:
    """One live unit being written: its plan, session and the row work found."""

    unit: Unit
    owner: str
    session_id: str
    plan: SessionPlan
    existing: SessionRows | None
    adopted: bool = False
    delete: set[int] = field(default_factory=set)
    kept_pointers: dict[int, int] = field(default_factory=dict)  # row → a child chatledger did not write

    @cached_property
    def session_uuid(self) -> uuid.UUID:
        """The session id as a binary COPY writes it."""
        return uuid.UUID(self.session_id)

    def latest(self, node: Node) -> int | None:
        if node.row_id in self.kept_pointers:
            return self.kept_pointers[node.row_id]
        return node.latest.row_id if node.latest else None


class Sessions:
    def __init__(self, sink) -> None:
        self.sink = sink
        self.schema = sink.schema
        self.options = sink.options
        self.owners: OwnerMap = sink.owners

    # -- entry ---------------------------------------------------------------------------------

    def write(self, cursor, units: list[Unit]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        live: list[tuple[Unit, str]] = []
        for unit in units:
            if unit.head is None:
                raise PermanentError(f"{unit.key}: messages without their conversation record")
            if unit.removed:
                outcomes += self._remove(cursor, unit)
                continue
            owner_key = owner_of(unit)
            if owner_key is None:
                self.sink.count("sessions_skipped_no_owner")
                outcomes += self._skip(
                    unit, "a conversation without an owner (Onyx sessions belong to a user)"
                )
                continue
            owner = self.owners.get(unit.head.stream, owner_key)
            if owner is None:
                raise PermanentError(f"{unit.key}: its owner {owner_key} has no Onyx account yet")
            if owner.get("skipped"):
                self.sink.count("sessions_skipped")
                outcomes += self._skip(unit, f"its owner {owner['email'] or owner_key} has no account")
                continue
            live.append((unit, owner["user_id"]))
        if live:
            outcomes += self._write_live(cursor, live)
        return outcomes

    @staticmethod
    def _skip(unit: Unit, reason: str) -> list[Outcome]:
        outcomes = []
        for item in unit.items:
            if not item.changed or (item.removed and item.held_hash is None):
                continue
            outcomes.append(Outcome.written(item) if item.removed else Outcome.skip(item, reason))
        return outcomes

    def _remove(self, cursor, unit: Unit) -> list[Outcome]:
        session_id = held(unit.head).get("chat_session")
        if session_id:
            cursor.execute(
                "DELETE FROM chat_feedback WHERE chat_message_id IN "
                "(SELECT id FROM chat_message WHERE chat_session_id = %s::uuid)",
                (session_id,),
            )
            cursor.execute("DELETE FROM chat_session WHERE id = %s::uuid", (session_id,))
            self.sink.count("sessions_deleted", cursor.rowcount)
        return [Outcome.written(item, item.held_ref) for item in unit.items if item.held_hash is not None]

    # -- live units ---------------------------------------------------------------------------

    def _write_live(self, cursor, live: list[tuple[Unit, str]]) -> list[Outcome]:
        files = self.sink.file_refs([unit for unit, _ in live])
        plans = [(unit, owner, self.sink.plan(unit, files)) for unit, owner in live]
        changes = self._sessions(cursor, plans)
        for change in changes:
            self._assign(change)
        self._upsert_sessions(cursor, changes)
        self._insert_rows(cursor, changes)
        self._update_rows(cursor, changes)
        self._delete_rows(cursor, changes)
        self._write_feedback(cursor, changes)
        return [outcome for change in changes for outcome in self._outcomes(change)]

    def _sessions(self, cursor, plans) -> list[Change]:
        """Pick each unit's session id and load what Onyx holds for it."""
        wanted = {
            unit.key: held(unit.head).get("chat_session") or natural_id(unit.head.stream, unit)
            for unit, _, _ in plans
        }
        existing = load_sessions(cursor, self.schema, sorted(set(wanted.values())))
        claimed: set[str] = set()
        changes = []
        for unit, owner, plan in plans:
            session_id = wanted[unit.key]
            found = existing.get(session_id)
            adopted = False
            if not held(unit.head).get("chat_session") and (found is not None or session_id in claimed):
                if (
                    found is None
                    or found.user_id != owner
                    or self._claimed_elsewhere(cursor, session_id, unit)
                ):
                    session_id = fallback_id(unit.head.stream, unit.key)
                    found = load_sessions(cursor, self.schema, [session_id]).get(session_id)
                    if found is not None and found.user_id != owner:
                        raise PermanentError(
                            f"{unit.key}: session {session_id} exists and belongs to another user"
                        )
                adopted = found is not None
                self.sink.count("sessions_adopted", int(adopted))
            claimed.add(session_id)
            changes.append(Change(unit, owner, session_id, plan, found, adopted))
        return changes

    def _claimed_elsewhere(self, cursor, session_id: str, unit: Unit) -> bool:
        """Another record's marker names this session (two streams of one conversation)."""
        if not self.options.markers or not self.sink.markers_ready:
            return False
        cursor.execute(
            f"SELECT 1 FROM {MARKER_TABLE} WHERE target = %s AND hash IS NOT NULL "
            "AND target_ref::jsonb ->> 'chat_session' = %s AND target_ref::jsonb ? 'root' "
            "AND NOT (stream = %s AND record_key = %s) LIMIT 1",
            (self.sink.target, session_id, unit.head.stream, unit.key),
        )
        return cursor.fetchone() is not None

    def _assign(self, change: Change) -> None:
        """Give wanted nodes the rows they had; find the rows to delete."""
        rows = change.existing.rows if change.existing else {}
        usable = set() if change.adopted else set(rows)
        taken: set[int] = set()

        def claim(candidate: Any) -> int | None:
            if candidate in usable and candidate not in taken:
                taken.add(candidate)
                return candidate
            return None

        refs = {
            item.key: held(item)
            for item in change.unit.items
            if held(item).get("chat_session") == change.session_id
        }
        change.plan.root.row_id = claim(refs.get(change.unit.key, {}).get("root"))
        for node in change.plan.nodes[1:]:
            node.row_id = claim(
                refs.get(node.key, {}).get("bridge" if node.kind == "bridge" else "chat_message")
            )
            node.feedback_id = None  # a prepared plan may have been written by a failed attempt
        ours = {ref.get(name) for ref in refs.values() for name in ("root", "chat_message", "bridge")} & set(
            rows
        )
        change.delete = set(rows) if change.adopted else ours - taken
        foreign = [row for row in rows.values() if row.id not in ours and row.id not in change.delete]
        for row in foreign:
            if row.parent in change.delete:
                raise PermanentError(
                    f"{change.unit.key}: message {row.id} of session {change.session_id} was not written by "
                    "chatledger and hangs under a message the ledger removed (continued in Onyx?)"
                )
        self._keep_continuations(change, rows, foreign)

    @staticmethod
    def _keep_continuations(change: Change, rows: dict, foreign: list) -> None:
        """A chat continued in Onyx keeps showing its continuation: a row pointing at a
        child chatledger did not write keeps that pointer; a row the ledger sees as a leaf
        points at its newest such child."""
        by_parent: dict[int, list] = {}
        for row in foreign:
            by_parent.setdefault(row.parent, []).append(row)
        for node in change.plan.nodes:
            children = by_parent.get(node.row_id)
            if not children:
                continue
            current = rows[node.row_id].latest
            if any(child.id == current for child in children):
                change.kept_pointers[node.row_id] = current
            elif not node.children:
                change.kept_pointers[node.row_id] = max(children, key=lambda row: (row.time_sent, row.id)).id

    # -- statements ---------------------------------------------------------------------------

    def _upsert_sessions(self, cursor, changes: list[Change]) -> None:
        columns = ("id", "user_id", "persona_id", "description", "deleted", "shared_status", "onyxbot_flow",
                   "time_created", "time_updated", "prompt_override")  # fmt: skip
        updates = ", ".join(f"{name} = excluded.{name}" for name in columns[1:])
        distinct = ", ".join(f"chat_session.{name}" for name in columns[1:])
        excluded = ", ".join(f"excluded.{name}" for name in columns[1:])
        new, held_rows = [], []
        for change in changes:
            session = change.plan.session
            override = session["prompt_override"]
            row = (change.session_id, change.owner, session["persona_id"], session["description"],
                   session["deleted"], session["shared_status"], session["onyxbot_flow"],
                   session["time_created"], session["time_updated"], Jsonb(override) if override else None)  # fmt: skip
            (new if change.existing is None else held_rows).append(row)
        if new:  # no such session when the batch's transaction read them (one writer per target)
            with cursor.copy(f"COPY chat_session ({', '.join(columns)}) FROM STDIN") as copy:
                for row in new:
                    copy.write_row(row)
        if held_rows:
            cursor.executemany(
                f"INSERT INTO chat_session ({', '.join(columns)}) VALUES (%s::uuid, %s::uuid, {', '.join(['%s'] * 8)}) "
                f"ON CONFLICT (id) DO UPDATE SET {updates} WHERE ({distinct}) IS DISTINCT FROM ({excluded})",
                held_rows,
            )

    def _columns(self) -> list[str]:
        columns = ["id", "chat_session_id", self.schema.parent, self.schema.latest, "message", "message_type",
                   "token_count", "time_sent", "files", "error"]  # fmt: skip
        return columns + (["reasoning_tokens"] if self.schema.reasoning else [])

    def _values(self, node: Node, change: Change) -> list[Any]:
        files = [ref.descriptor() for ref in node.files] or None
        values = [node.row_id, change.session_uuid, node.parent.row_id if node.parent else None,
                  change.latest(node), node.message, node.message_type, node.token_count,
                  node.time_sent, Jsonb(files) if files else None, node.error]  # fmt: skip
        return values + ([node.reasoning] if self.schema.reasoning else [])

    def _insert_rows(self, cursor, changes: list[Change]) -> None:
        new = [(node, change) for change in changes for node in change.plan.nodes if node.row_id is None]
        if not new:
            return
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('chat_message', 'id')) FROM generate_series(1, %s)",
            (len(new),),
        )
        for (node, _), (row_id,) in zip(new, cursor.fetchall(), strict=True):
            node.row_id = row_id
        with cursor.copy(
            f"COPY chat_message ({', '.join(self._columns())}) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(REASONING_TYPES if self.schema.reasoning else ROW_TYPES)
            for node, change in new:
                copy.write_row(self._values(node, change))
        self.sink.count("messages_inserted", len(new))

    def _update_rows(self, cursor, changes: list[Change]) -> None:
        columns = self._columns()
        updates = []
        for change in changes:
            rows = change.existing.rows if change.existing else {}
            for node in change.plan.nodes:
                row = rows.get(node.row_id)
                if row is not None and self._differs(node, row, change):
                    values = self._values(node, change)
                    updates.append([*values[2:], node.row_id])
        if updates:
            assignments = ", ".join(f"{name} = %s" for name in columns[2:])
            cursor.executemany(
                f"UPDATE chat_message SET {assignments}, citations = NULL WHERE id = %s", updates
            )
            self.sink.count("messages_updated", len(updates))

    def _differs(self, node: Node, row, change: Change) -> bool:
        files = [ref.descriptor() for ref in node.files] or None
        return (
            row.parent != (node.parent.row_id if node.parent else None)
            or row.latest != change.latest(node)
            or (row.message, row.message_type, row.token_count, row.error)
            != (node.message, node.message_type, node.token_count, node.error)
            or row.time_sent != node.time_sent
            or (row.files or None) != files
            or row.citations is not None
            or (self.schema.reasoning and row.reasoning != node.reasoning)
        )

    def _delete_rows(self, cursor, changes: list[Change]) -> None:
        doomed = sorted(row_id for change in changes for row_id in change.delete)
        if doomed:
            cursor.execute("DELETE FROM chat_feedback WHERE chat_message_id = ANY(%s)", (doomed,))
            cursor.execute("DELETE FROM chat_message WHERE id = ANY(%s)", (doomed,))
            self.sink.count("messages_deleted", len(doomed))

    def _write_feedback(self, cursor, changes: list[Change]) -> None:
        """Feedback rows: ours (the target ref names them) updated or removed in place,
        new ones inserted in one round trip."""
        new: list[Node] = []
        for change in changes:
            refs = {item.key: held(item) for item in change.unit.items}
            existing = change.existing.feedback if change.existing and not change.adopted else {}
            for node in change.plan.nodes:
                if node.kind != "message":
                    continue
                ours = refs.get(node.key, {}).get("feedback")
                current = next((entry for entry in existing.get(node.row_id, []) if entry[0] == ours), None)
                if current is None and node.feedback is not None:
                    new.append(node)
                elif current is not None and node.feedback is None:
                    cursor.execute("DELETE FROM chat_feedback WHERE id = %s", (current[0],))
                elif current is not None:
                    node.feedback_id = current[0]
                    if (current[1], current[2]) != node.feedback:
                        cursor.execute(
                            "UPDATE chat_feedback SET is_positive = %s, feedback_text = %s WHERE id = %s",
                            (*node.feedback, current[0]),
                        )
        if new:
            cursor.executemany(
                "INSERT INTO chat_feedback (chat_message_id, is_positive, feedback_text) VALUES (%s, %s, %s) RETURNING id",
                [(node.row_id, *node.feedback) for node in new],
                returning=True,
            )
            for node in new:
                node.feedback_id = cursor.fetchone()[0]
                cursor.nextset()

    # -- what was written -----------------------------------------------------------------------

    def _outcomes(self, change: Change) -> list[Outcome]:
        refs: dict[str, dict[str, Any]] = {
            change.unit.key: {"chat_session": change.session_id, "root": change.plan.root.row_id}
        }
        for node in change.plan.nodes[1:]:
            ref = refs.setdefault(
                node.key,
                {"chat_session": change.session_id, "chat_message": None, "bridge": None, "feedback": None},
            )
            if node.kind == "bridge":
                ref["bridge"] = node.row_id
            else:
                ref.update(chat_message=node.row_id, feedback=node.feedback_id)
        outcomes = []
        for item in change.unit.items:
            if item.removed:
                if item.held_hash is not None:
                    outcomes.append(Outcome.written(item, item.held_ref))
                continue
            ref = refs[item.key]
            if item.changed or ref != item.held_ref:
                outcomes.append(Outcome.written(item, ref))
                if item.kind == "message":
                    self._count_unkept(item.data)
        return outcomes

    def _count_unkept(self, data: dict[str, Any]) -> None:
        for kind in unkept_parts(data, reasoning=self.schema.reasoning):
            self.sink.count(f"parts_not_kept_{kind}")
