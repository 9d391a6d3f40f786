"""The OpenAgents Laravel tables the ``laravel`` sink writes, as SQLAlchemy Core tables.

Written from the app's migrations (``apps/openagents.com/database/migrations/`` before
their deletion, and ``laravel/ai`` v0.1.5 for ``agent_conversations``): the same columns,
the same varchar lengths, nullability, defaults, keys and indexes, on Postgres,
MySQL/MariaDB and SQLite. Laravel's types map as the framework maps them:

| Laravel | Postgres | MySQL/MariaDB | SQLite |
| --- | --- | --- | --- |
| ``string(n)`` (n = 255 by default) | varchar(n) | varchar(n) | varchar |
| ``text`` | text | text (64 KB) | text |
| ``json`` | json | json | text |
| ``foreignId`` / ``bigIncrements`` | bigint | bigint unsigned | integer |
| ``timestamps()`` | timestamp(0) | timestamp | datetime |
| ``boolean`` | boolean | tinyint(1) | integer |

No foreign keys are declared (the app declares none). The sink never creates these
tables in production: the app's migrations own them. ``metadata(precision=…)`` builds
them for tests and demos; ``precision`` is the timestamps' fractional digits (Laravel's
default is 0; 3 or 6 model an app that raised it).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

#: The six tables ``replace --truncate`` empties, in the original importer's order.
CHAT_TABLES = (
    "run_events", "messages", "runs", "threads", "agent_conversation_messages", "agent_conversations",
)  # fmt: skip
#: Reconciled, never truncated.
IDENTITY_TABLES = ("users", "autopilots", "autopilot_profiles", "autopilot_policies")
ALL_TABLES = IDENTITY_TABLES + CHAT_TABLES

Id = BigInteger().with_variant(Integer, "sqlite").with_variant(mysql.BIGINT(unsigned=True), "mysql")
ForeignId = BigInteger().with_variant(mysql.BIGINT(unsigned=True), "mysql")
UnsignedInt = Integer().with_variant(mysql.INTEGER(unsigned=True), "mysql")
UnsignedSmall = SmallInteger().with_variant(mysql.SMALLINT(unsigned=True), "mysql")
UnsignedBig = BigInteger().with_variant(mysql.BIGINT(unsigned=True), "mysql")


class Json(TypeDecorator):
    """Laravel's ``json()``: json on Postgres and MySQL, text on SQLite.

    Values are bound as JSON *text* the sink has already encoded (canonical JSON), so
    what is stored does not depend on a driver's serializer."""

    impl = Text
    cache_ok = True

    def bind_expression(self, bindvalue):
        return _json_text(bindvalue)


class _json_text(FunctionElement):
    """A bound JSON text; Postgres needs the cast, the others take text as it is."""

    type = Text()
    inherit_cache = True


@compiles(_json_text)
def _json_text_default(element, compiler, **kw) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(_json_text, "postgresql")
def _json_text_postgres(element, compiler, **kw) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS JSON)"


@compiles(Json, "postgresql")
@compiles(Json, "mysql")
def _json_ddl(type_, compiler, **kw) -> str:
    return "JSON"


def timestamp(precision: int) -> DateTime:
    return (
        DateTime()
        .with_variant(postgresql.TIMESTAMP(precision=precision), "postgresql")
        .with_variant(mysql.TIMESTAMP(fsp=precision or None), "mysql")
        .with_variant(sqlite.DATETIME(), "sqlite")
    )


def _timestamps(precision: int) -> list[Column]:
    return [
        Column("created_at", timestamp(precision), nullable=True),
        Column("updated_at", timestamp(precision), nullable=True),
    ]


def metadata(precision: int = 0) -> MetaData:
    """The ten tables (plus nothing else) in a fresh MetaData."""
    meta = MetaData()
    _users(meta, precision)
    _agent_conversations(meta, precision)
    _chat(meta, precision)
    _autopilots(meta, precision)
    return meta


def _users(meta: MetaData, precision: int) -> None:
    Table(
        "users",
        meta,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("name", String(255), nullable=False),
        Column("email", String(255), nullable=False, unique=True),
        Column("email_verified_at", timestamp(precision), nullable=True),
        Column("workos_id", String(255), nullable=False, unique=True),
        Column("remember_token", String(100), nullable=True),
        Column("avatar", Text, nullable=False),
        *_timestamps(precision),
        Column("handle", String(64), nullable=True, unique=True),
    )


def _agent_conversations(meta: MetaData, precision: int) -> None:
    conversations = Table(
        "agent_conversations",
        meta,
        Column("id", String(36), primary_key=True),
        Column("user_id", ForeignId, nullable=False),
        Column("title", String(255), nullable=False),
        *_timestamps(precision),
    )
    Index("agent_conversations_user_id_updated_at_index", conversations.c.user_id, conversations.c.updated_at)
    messages = Table(
        "agent_conversation_messages",
        meta,
        Column("id", String(36), primary_key=True),
        Column("conversation_id", String(36), nullable=False),
        Column("user_id", ForeignId, nullable=False),
        Column("agent", String(255), nullable=False),
        Column("role", String(25), nullable=False),
        *[Column(name, Text, nullable=False) for name in
          ("content", "attachments", "tool_calls", "tool_results", "usage", "meta")],
        *_timestamps(precision),
    )  # fmt: skip
    Index("agent_conversation_messages_conversation_id_index", messages.c.conversation_id)
    Index("conversation_index", messages.c.conversation_id, messages.c.user_id, messages.c.updated_at)
    Index("agent_conversation_messages_user_id_index", messages.c.user_id)


def _chat(meta: MetaData, precision: int) -> None:
    threads = Table(
        "threads",
        meta,
        Column("id", String(36), primary_key=True),
        Column("user_id", ForeignId, nullable=False),
        Column("autopilot_id", String(36), nullable=True),
        Column("title", String(255), nullable=False),
        *_timestamps(precision),
    )
    for columns in (["user_id"], ["autopilot_id"], ["user_id", "updated_at"]):
        Index(f"threads_{'_'.join(columns)}_index", *[threads.c[name] for name in columns])
    runs = Table(
        "runs",
        meta,
        Column("id", String(36), primary_key=True),
        Column("thread_id", String(36), nullable=False),
        Column("user_id", ForeignId, nullable=False),
        Column("autopilot_id", String(36), nullable=True),
        Column("autopilot_config_version", UnsignedInt, nullable=True),
        Column("status", String(32), nullable=False),
        Column("model_provider", String(255), nullable=True),
        Column("model", String(255), nullable=True),
        Column("usage", Json, nullable=True),
        Column("meta", Json, nullable=True),
        Column("error", Text, nullable=True),
        Column("started_at", timestamp(precision), nullable=True),
        Column("completed_at", timestamp(precision), nullable=True),
        *_timestamps(precision),
    )
    for columns in (["thread_id"], ["user_id"], ["autopilot_id"], ["status"], ["thread_id", "created_at"]):
        Index(f"runs_{'_'.join(columns)}_index", *[runs.c[name] for name in columns])
    messages = Table(
        "messages",
        meta,
        Column("id", String(36), primary_key=True),
        Column("thread_id", String(36), nullable=False),
        Column("run_id", String(36), nullable=True),
        Column("user_id", ForeignId, nullable=False),
        Column("autopilot_id", String(36), nullable=True),
        Column("role", String(25), nullable=False),
        Column("content", Text, nullable=False),
        Column("meta", Json, nullable=True),
        *_timestamps(precision),
    )
    for columns in (["thread_id"], ["run_id"], ["user_id"], ["autopilot_id"], ["thread_id", "created_at"]):
        Index(f"messages_{'_'.join(columns)}_index", *[messages.c[name] for name in columns])
    events = Table(
        "run_events",
        meta,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("thread_id", String(36), nullable=False),
        Column("run_id", String(36), nullable=False),
        Column("user_id", ForeignId, nullable=False),
        Column("autopilot_id", String(36), nullable=True),
        Column("actor_type", String(16), nullable=False, server_default="user"),
        Column("actor_autopilot_id", String(36), nullable=True),
        Column("type", String(64), nullable=False),
        Column("payload", Json, nullable=True),
        Column("created_at", timestamp(precision), nullable=False, server_default=text("CURRENT_TIMESTAMP")),
    )
    for columns in (
        ["thread_id"], ["run_id"], ["user_id"], ["type"], ["run_id", "id"], ["autopilot_id"],
        ["actor_autopilot_id"], ["autopilot_id", "created_at"], ["autopilot_id", "type", "id"],
        ["actor_type", "id"], ["actor_autopilot_id", "id"],
    ):  # fmt: skip
        Index(f"run_events_{'_'.join(columns)}_index", *[events.c[name] for name in columns])


def _autopilots(meta: MetaData, precision: int) -> None:
    autopilots = Table(
        "autopilots",
        meta,
        Column("id", String(36), primary_key=True),
        Column("owner_user_id", ForeignId, nullable=False),
        Column("handle", String(64), nullable=False, unique=True),
        Column("display_name", String(120), nullable=False),
        Column("avatar", String(255), nullable=True),
        Column("status", String(16), nullable=False, server_default="active"),
        Column("visibility", String(16), nullable=False, server_default="private"),
        Column("tagline", String(255), nullable=True),
        Column("config_version", UnsignedInt, nullable=False, server_default="1"),
        Column("deleted_at", timestamp(precision), nullable=True),
        *_timestamps(precision),
    )
    for columns in (["owner_user_id"], ["status"], ["owner_user_id", "updated_at"],
                    ["owner_user_id", "visibility", "updated_at"]):  # fmt: skip
        Index(f"autopilots_{'_'.join(columns)}_index", *[autopilots.c[name] for name in columns])
    Table(
        "autopilot_profiles",
        meta,
        Column("autopilot_id", String(36), primary_key=True),
        Column("owner_display_name", String(120), nullable=False),
        Column("persona_summary", Text, nullable=True),
        Column("autopilot_voice", String(64), nullable=True),
        Column("principles", Json, nullable=True),
        Column("preferences", Json, nullable=True),
        Column("onboarding_answers", Json, nullable=True),
        Column("schema_version", UnsignedSmall, nullable=False, server_default="1"),
        *_timestamps(precision),
    )
    Table(
        "autopilot_policies",
        meta,
        Column("autopilot_id", String(36), primary_key=True),
        Column("model_provider", String(64), nullable=True),
        Column("model", String(128), nullable=True),
        Column("tool_allowlist", Json, nullable=True),
        Column("tool_denylist", Json, nullable=True),
        Column("l402_require_approval", Boolean, nullable=False, server_default=text("true")),
        Column("l402_max_spend_msats_per_call", UnsignedBig, nullable=True),
        Column("l402_max_spend_msats_per_day", UnsignedBig, nullable=True),
        Column("l402_allowed_hosts", Json, nullable=True),
        Column("data_policy", Json, nullable=True),
        *_timestamps(precision),
    )
