"""Which Onyx schema generation the database has, and what to write for it.

| generation | tree pointers | reasoning | ChatFileType values |
| --- | --- | --- | --- |
| ≥ 2.6 (Alembic ``a852cbe15577`` on) | ``parent_message_id``, ``latest_child_message_id`` (self-FKs, not deferrable) | ``reasoning_tokens`` | ``image``, ``document``, ``plain_text``, ``tabular`` |
| ≤ 2.5 | ``parent_message``, ``latest_child_message`` (no FKs) | none: reasoning stays in the ledger | ``image``, ``document``, ``plain_text``, ``csv``, ``user_knowledge`` |

The generation is read from ``information_schema.columns``. The ``file_types`` option
overrides the ChatFileType set for versions in between. The tables the sink writes must
exist, and so must the configured persona (``chat_session.persona_id`` NULL breaks
reads in Onyx).
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.kit import ConfigError

HEAD_FILE_TYPES = ("image", "document", "plain_text", "tabular")
OLD_FILE_TYPES = ("image", "document", "plain_text", "csv", "user_knowledge")
REQUIRED_TABLES = (
    "chat_session",
    "chat_message",
    "chat_feedback",
    "user",
    "user_file",
    "file_record",
    "persona",
)


@dataclass(frozen=True)
class OnyxSchema:
    generation: str
    parent: str  # the parent pointer column of chat_message
    latest: str  # the latest-child pointer column
    reasoning: bool  # chat_message.reasoning_tokens exists
    file_content: bool  # file_record bytes may live in Postgres large objects
    file_types: tuple[str, ...]

    def chat_file_type(self, mime: str | None) -> str:
        """A valid ChatFileType for a MIME type."""
        mime = (mime or "").lower()
        if mime.startswith("image/"):
            wanted = ["image"]
        elif mime in ("text/csv", "text/tab-separated-values") or "spreadsheet" in mime or "excel" in mime:
            wanted = ["tabular", "csv"]
        elif mime.startswith("text/") or mime in (
            "application/json",
            "application/xml",
            "application/x-yaml",
        ):
            wanted = ["plain_text"]
        else:
            wanted = []
        return next((kind for kind in wanted if kind in self.file_types), "document")


def detect(cursor, persona_id: int, file_types: list[str]) -> OnyxSchema:
    cursor.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = ANY(%s)",
        ([*REQUIRED_TABLES, "file_content"],),
    )
    columns: dict[str, set[str]] = {}
    for table, column in cursor.fetchall():
        columns.setdefault(table, set()).add(column)
    missing = [table for table in REQUIRED_TABLES if table not in columns]
    if missing:
        raise ConfigError(
            f"onyx: the database has no {', '.join(missing)} table: is db_url an Onyx database?"
        )
    message = columns["chat_message"]
    if "parent_message_id" in message:
        schema = OnyxSchema("2.6+", "parent_message_id", "latest_child_message_id", "reasoning_tokens" in message,
                            "file_content" in columns, tuple(file_types) or HEAD_FILE_TYPES)  # fmt: skip
    elif "parent_message" in message:
        schema = OnyxSchema("<=2.5", "parent_message", "latest_child_message", "reasoning_tokens" in message,
                            "file_content" in columns, tuple(file_types) or OLD_FILE_TYPES)  # fmt: skip
    else:
        raise ConfigError("onyx: chat_message has neither parent_message_id nor parent_message")
    cursor.execute("SELECT 1 FROM persona WHERE id = %s", (persona_id,))
    if cursor.fetchone() is None:
        raise ConfigError(f"onyx: there is no persona {persona_id} (set persona_id to an existing one)")
    return schema
