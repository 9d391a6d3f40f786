"""Reading sessions back from Onyx: their rows, trees, feedback and file descriptors.

Used by verify (the tree a session shows, fingerprinted like the wanted one), by the
writer (what exists before it changes anything) and by the repairs (what to mend). A
descriptor read back is ``[ledger file key, type, name, valid]``: valid when its
``id`` is a ``file_record``, its ``user_file_id`` a ``user_file`` of that record owned by
the session's user, and its type a ChatFileType of this Onyx.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sinks.onyx.render import Node
from sinks.onyx.schema import OnyxSchema

TAG = "chatledger"


@dataclass
class Row:
    id: int
    session: str
    parent: int | None
    latest: int | None
    message: str
    message_type: str
    token_count: int
    time_sent: dt.datetime
    citations: Any
    files: Any
    error: str | None
    reasoning: str | None


@dataclass
class SessionRows:
    id: str
    user_id: str | None
    fields: dict[str, Any]
    rows: dict[int, Row] = field(default_factory=dict)
    feedback: dict[int, list[tuple[int, bool | None, str | None]]] = field(default_factory=dict)

    def roots(self) -> list[Row]:
        return [row for row in self.rows.values() if row.parent is None or row.parent not in self.rows]

    def children(self) -> dict[int, list[Row]]:
        found: dict[int, list[Row]] = {}
        for row in self.rows.values():
            if row.parent is not None and row.parent in self.rows:
                found.setdefault(row.parent, []).append(row)
        return found


SESSION_COLUMNS = (
    "description", "deleted", "shared_status", "onyxbot_flow", "persona_id", "time_created", "time_updated",
    "prompt_override",
)  # fmt: skip


def load_sessions(cursor, schema: OnyxSchema, session_ids: list[str]) -> dict[str, SessionRows]:
    """The sessions that exist among ``session_ids``, with all their rows and feedback."""
    if not session_ids:
        return {}
    cursor.execute(
        f"SELECT id::text, user_id::text, {', '.join(SESSION_COLUMNS)} FROM chat_session WHERE id = ANY(%s::uuid[])",
        (session_ids,),
    )
    sessions = {
        row[0]: SessionRows(row[0], row[1], dict(zip(SESSION_COLUMNS, row[2:], strict=True)))
        for row in cursor.fetchall()
    }
    if not sessions:
        return sessions
    reasoning = "reasoning_tokens" if schema.reasoning else "NULL"
    cursor.execute(
        f"SELECT id, chat_session_id::text, {schema.parent}, {schema.latest}, message, message_type, token_count, "
        f"time_sent, citations, files, error, {reasoning} FROM chat_message WHERE chat_session_id = ANY(%s::uuid[])",
        (list(sessions),),
    )
    for values in cursor.fetchall():
        row = Row(*values)
        sessions[row.session].rows[row.id] = row
    ids = [row_id for session in sessions.values() for row_id in session.rows]
    by_row = {row_id: session for session in sessions.values() for row_id in session.rows}
    if ids:
        cursor.execute(
            "SELECT id, chat_message_id, is_positive, feedback_text FROM chat_feedback "
            "WHERE chat_message_id = ANY(%s) ORDER BY id",
            (ids,),
        )
        for feedback_id, message_id, positive, text in cursor.fetchall():
            by_row[message_id].feedback.setdefault(message_id, []).append((feedback_id, positive, text))
    return sessions


def file_facts(cursor, file_ids: list[str]) -> dict[str, dict[str, Any]]:
    """file_record.file_id → {tag, user_files: {user_file id: (owner, file_id)}}."""
    if not file_ids:
        return {}
    cursor.execute(
        f"SELECT fr.file_id, fr.file_metadata -> '{TAG}', uf.id::text, uf.user_id::text FROM file_record fr "
        "LEFT JOIN user_file uf ON uf.file_id = fr.file_id WHERE fr.file_id = ANY(%s)",
        (sorted(set(file_ids)),),
    )
    facts: dict[str, dict[str, Any]] = {}
    for file_id, tag, user_file_id, owner in cursor.fetchall():
        entry = facts.setdefault(file_id, {"tag": tag, "user_files": {}})
        if user_file_id is not None:
            entry["user_files"][user_file_id] = owner
    return facts


def descriptor_ids(sessions: dict[str, SessionRows]) -> list[str]:
    return [
        str(descriptor.get("id"))
        for session in sessions.values()
        for row in session.rows.values()
        for descriptor in row.files or []
        if isinstance(descriptor, dict) and descriptor.get("id")
    ]


def read_descriptor(
    descriptor: Any, owner: str | None, facts: dict[str, dict[str, Any]], schema: OnyxSchema
) -> list[Any]:
    if not isinstance(descriptor, dict):
        return [None, None, None, False]
    fact = facts.get(str(descriptor.get("id")))
    tag = fact["tag"] if fact and isinstance(fact["tag"], dict) else {}
    valid = (
        fact is not None
        and fact["user_files"].get(str(descriptor.get("user_file_id"))) == owner
        and owner is not None
        and descriptor.get("type") in schema.file_types
    )
    return [tag.get("key"), descriptor.get("type"), descriptor.get("name"), valid]


def tree(session: SessionRows, facts: dict[str, dict[str, Any]], schema: OnyxSchema) -> list[Node]:
    """The session's rows as nodes with parents, children and latest pointers; its roots."""
    nodes = {}
    for row in session.rows.values():
        feedback = session.feedback.get(row.id)
        nodes[row.id] = Node(
            kind="row",
            message_type=row.message_type,
            message=row.message,
            token_count=row.token_count,
            time_sent=row.time_sent,
            reasoning=row.reasoning,
            error=row.error,
            files=[read_descriptor(d, session.user_id, facts, schema) for d in row.files or []],
            citations=row.citations,
            feedback=(feedback[0][1], feedback[0][2]) if feedback else None,
            row_id=row.id,
        )
    dangling = Node("dangling", "", "", 0, dt.datetime.min.replace(tzinfo=dt.UTC))
    for row in session.rows.values():
        node = nodes[row.id]
        if row.parent is not None and row.parent in nodes:
            node.parent = nodes[row.parent]
            node.parent.children.append(node)
        if row.latest is not None:
            node.latest = nodes.get(row.latest, dangling)
    return [nodes[row.id] for row in session.roots()]
