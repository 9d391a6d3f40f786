"""The onyx sink's repairs: ``latest-child`` and ``citations``.

Both read the rows each session has *now* (whoever wrote them) and write only what is
broken, so a second run finds nothing; both visit first the sessions the ledger holds
for the selected streams, then every other session in the database (chats written by
other tools, such as the earlier ``lc-mig.py``).

- ``latest-child`` backfills pointers. A row with children whose
  ``latest_child`` is NULL or not one of its children gets one: for a row chatledger
  wrote, the child the ledger's rules choose (the active branch, else the newest
  child); for any other row, the child leading to the session's newest message. A
  childless row pointing somewhere is cleared. A valid pointer is never changed (a
  user may have switched branches in Onyx on purpose).
- ``citations`` clears citation values Onyx cannot read: anything but NULL or an object
  mapping citation numbers to ``search_doc`` ids linked to that message (LibreChat
  metadata stored there by the earlier migrator made Onyx answer 400/500).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from ledger.kit import Repair, Unit
from sinks.onyx.readback import SessionRows, load_sessions
from sinks.onyx.render import plan_session

SWEEP_CHUNK = 500


class SessionRepair(Repair):
    """Visits held sessions batch by batch, then (``finish``) all the others."""

    fix: ClassVar[str]

    def __init__(self) -> None:
        self.visited: set[str] = set()

    def run(
        self, sink, units: list[Unit], *, dry_run: bool, rewrite: Callable[[list[Unit]], None]
    ) -> list[dict[str, Any]]:
        held = {}
        for unit in units:
            ref = unit.head.held_ref if unit.head is not None and isinstance(unit.head.held_ref, dict) else {}
            if ref.get("chat_session"):
                held[ref["chat_session"]] = unit
        self.visited.update(held)
        return self._mend(sink, sorted(held), held, dry_run)

    def finish(self, sink, *, dry_run: bool) -> list[dict[str, Any]]:
        fixes = []
        for chunk in sink.session_ids(exclude=self.visited, chunk=SWEEP_CHUNK):
            fixes += self._mend(sink, chunk, {}, dry_run)
        return fixes

    def _mend(
        self, sink, session_ids: list[str], held: dict[str, Unit], dry_run: bool
    ) -> list[dict[str, Any]]:
        if not session_ids:
            return []
        with sink.engine.begin() as conn:
            cursor = conn.connection.driver_connection.cursor()
            sessions = load_sessions(cursor, sink.schema, session_ids)
            changes = []
            for session_id, session in sessions.items():
                changes += self.changes(sink, cursor, session, held.get(session_id))
            if changes and not dry_run:
                self.write(sink, cursor, changes)
        return [
            {"session": session, "row": row, "fix": self.fix, "to": value} for session, row, value in changes
        ]

    def changes(self, sink, cursor, session: SessionRows, unit: Unit | None) -> list[tuple[str, int, Any]]:
        raise NotImplementedError

    def write(self, sink, cursor, changes: list[tuple[str, int, Any]]) -> None:
        raise NotImplementedError


class LatestChild(SessionRepair):
    name = "latest-child"
    help = (
        "Backfill NULL or broken latest_child pointers so Onyx shows the thread (never changes a valid one)."
    )
    fix = "latest_child"

    def changes(self, sink, cursor, session: SessionRows, unit: Unit | None) -> list[tuple[str, int, Any]]:
        children = session.children()
        preferred = ledger_pointers(sink, unit, session) if unit is not None else {}
        newest = newest_descendant(session, children)
        found = []
        for row in session.rows.values():
            kids = [child.id for child in children.get(row.id, [])]
            if not kids:
                if row.latest is not None:
                    found.append((session.id, row.id, None))
                continue
            if row.latest in kids:
                continue
            choice = preferred.get(row.id)
            if choice not in kids:
                choice = max(kids, key=lambda kid: newest[kid])
            found.append((session.id, row.id, choice))
        return found

    def write(self, sink, cursor, changes: list[tuple[str, int, Any]]) -> None:
        cursor.executemany(
            f"UPDATE chat_message SET {sink.schema.latest} = %s WHERE id = %s",
            [(value, row) for _, row, value in changes],
        )


def ledger_pointers(sink, unit: Unit, session: SessionRows) -> dict[int, int]:
    """row id → the child row the ledger's rules point it at, for rows chatledger wrote."""
    plan = plan_session(unit, persona_id=sink.options.persona_id, bridge_text=sink.options.bridge_text,
                        files={}, reasoning=sink.schema.reasoning)  # fmt: skip
    refs = {item.key: item.held_ref for item in unit.items if isinstance(item.held_ref, dict)}
    plan.root.row_id = refs.get(unit.key, {}).get("root")
    for node in plan.nodes[1:]:
        node.row_id = refs.get(node.key, {}).get("bridge" if node.kind == "bridge" else "chat_message")
    return {
        node.row_id: node.latest.row_id
        for node in plan.nodes
        if node.row_id in session.rows and node.latest is not None and node.latest.row_id is not None
    }


def newest_descendant(session: SessionRows, children: dict[int, list]) -> dict[int, tuple]:
    """row id → (time, id) of the newest row in its subtree."""
    newest: dict[int, tuple] = {}
    for root in session.roots():
        order, stack = [], [root]
        while stack:
            row = stack.pop()
            order.append(row)
            stack.extend(children.get(row.id, []))
        for row in reversed(order):
            newest[row.id] = max(
                [(row.time_sent, row.id), *(newest[kid.id] for kid in children.get(row.id, []))]
            )
    return newest


class Citations(SessionRepair):
    name = "citations"
    help = "Clear citation values Onyx cannot read (anything but {number: linked search_doc id})."
    fix = "citations"

    def changes(self, sink, cursor, session: SessionRows, unit: Unit | None) -> list[tuple[str, int, Any]]:
        suspects = [row for row in session.rows.values() if row.citations is not None]
        if not suspects:
            return []
        cursor.execute(
            "SELECT chat_message_id, search_doc_id FROM chat_message__search_doc WHERE chat_message_id = ANY(%s)",
            ([row.id for row in suspects],),
        )
        linked: dict[int, set[int]] = {}
        for message_id, document_id in cursor.fetchall():
            linked.setdefault(message_id, set()).add(document_id)
        return [
            (session.id, row.id, None)
            for row in suspects
            if not conforming(row.citations, linked.get(row.id, set()))
        ]

    def write(self, sink, cursor, changes: list[tuple[str, int, Any]]) -> None:
        cursor.execute(
            "UPDATE chat_message SET citations = NULL WHERE id = ANY(%s)", ([row for _, row, _ in changes],)
        )


def conforming(citations: Any, linked: Iterable[int]) -> bool:
    """``{"<citation number>": <search_doc id linked to the message>}``; ``{}`` is fine."""
    if not isinstance(citations, dict):
        return False
    linked = set(linked)
    return all(
        isinstance(number, str) and number.isdigit() and type(doc) is int and doc in linked
        for number, doc in citations.items()
    )
