"""Onyx's validity rules for an imported chat (../shared/reference/onyx.md, "Validity
rules"), checked on the rows of a test database. Each returns the problems it finds."""

from __future__ import annotations

from collections import defaultdict

from tests.librechat_onyx.harness import query

HEAD_FILE_TYPES = {"image", "document", "plain_text", "tabular"}


def pointer_columns(db_url: str) -> tuple[str, str]:
    names = {
        row[0]
        for row in query(
            db_url, "SELECT column_name FROM information_schema.columns WHERE table_name = 'chat_message'"
        )
    }
    return (
        ("parent_message_id", "latest_child_message_id")
        if "parent_message_id" in names
        else ("parent_message", "latest_child_message")
    )


def problems(db_url: str, file_types: set[str] = HEAD_FILE_TYPES) -> list[str]:
    parent, latest = pointer_columns(db_url)
    found: list[str] = []
    sessions = {
        row[0]: row[1:]
        for row in query(
            db_url,
            "SELECT id::text, user_id::text, persona_id, deleted, onyxbot_flow, shared_status FROM chat_session",
        )
    }
    rows = query(
        db_url,
        f"SELECT id, chat_session_id::text, {parent}, {latest}, message_type, message, token_count, citations, files "
        "FROM chat_message",
    )
    by_session: dict[str, list[tuple]] = defaultdict(list)
    for row in rows:
        by_session[row[1]].append(row)
    for session, (user_id, persona, deleted, bot, shared) in sessions.items():
        if persona is None or deleted or bot or shared not in ("PRIVATE", "PUBLIC"):
            found.append(
                f"{session}: session fields persona={persona} deleted={deleted} onyxbot_flow={bot} shared={shared}"
            )
        found += _tree_problems(session, by_session[session])
        found += _file_problems(db_url, session, user_id, by_session[session], file_types)
    return found


def _tree_problems(session: str, rows: list[tuple]) -> list[str]:
    found = []
    by_id = {row[0]: row for row in rows}
    roots = [row for row in rows if row[2] is None]
    if len(roots) != 1 or roots[0][4:7] != ("SYSTEM", "", 0):
        return [f"{session}: roots {[(r[0], r[4], r[5]) for r in roots]}, wanted one empty SYSTEM root"]
    children: dict[int, list[int]] = defaultdict(list)
    for row in rows:
        if row[4] not in ("SYSTEM", "USER", "ASSISTANT"):
            found.append(f"{session}: message {row[0]} has message_type {row[4]!r}")
        if row[7] is not None:
            found.append(f"{session}: message {row[0]} has citations {row[7]!r}")
        if row[2] is not None:
            children[row[2]].append(row[0])
            if by_id[row[2]][4] == row[4] == "ASSISTANT":
                found.append(f"{session}: two ASSISTANT messages in a row ({row[2]} → {row[0]})")
    for row in rows:
        kids = children.get(row[0], [])
        if kids and row[3] not in kids:
            found.append(f"{session}: message {row[0]} has children {kids} but latest_child {row[3]}")
        if not kids and row[3] is not None:
            found.append(f"{session}: leaf {row[0]} points at {row[3]}")
    return found


def _file_problems(
    db_url: str, session: str, owner: str, rows: list[tuple], file_types: set[str]
) -> list[str]:
    found = []
    for row in rows:
        for descriptor in row[8] or []:
            user_files = query(
                db_url,
                "SELECT uf.user_id::text FROM user_file uf JOIN file_record fr ON fr.file_id = uf.file_id "
                "WHERE uf.id = %s::uuid AND fr.file_id = %s",
                (descriptor.get("user_file_id"), descriptor.get("id")),
            )
            if (
                not user_files
                or user_files[0][0] != owner
                or descriptor.get("type") not in file_types
                or not descriptor.get("name")
            ):
                found.append(
                    f"{session}: message {row[0]} has a bad descriptor {descriptor} (owners {user_files})"
                )
    return found


def chain(db_url: str, session_id: str) -> list[tuple[str, str]]:
    """(message_type, message) along the latest-child pointers from the root."""
    parent, latest = pointer_columns(db_url)
    rows = {
        row[0]: row[1:]
        for row in query(
            db_url,
            f"SELECT id, {parent}, {latest}, message_type, message FROM chat_message WHERE chat_session_id = %s::uuid",
            (session_id,),
        )
    }
    node = next(row_id for row_id, row in rows.items() if row[0] is None)
    out = []
    while node is not None:
        out.append((rows[node][2], rows[node][3]))
        node = rows[node][1]
    return out
