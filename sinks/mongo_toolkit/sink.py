"""The ``mongo-toolkit`` sink: the AI MCP Toolkit's per-user MongoDB storage.

Writes users (matched by username, or created: :mod:`.users`) and conversations with
their messages embedded (:mod:`.documents`) into the app's database, exactly once
without transactions: every document's ``_id`` is derived from stream and key, every
write is an upsert of the whole document, and the ledger's marker (``chatledger``:
target, run and the records it holds) is a field of the document it describes
(ledger.kit ``DocumentTarget``). A re-run writes nothing; a crash between a document's
write and the ledger's commit is healed from the markers; rollback removes what a run
inserted and rewrites what it replaced.

- unit: a conversation (the document holds the conversation and all its messages);
  users are record units, applied first;
- ``open`` creates the app's indexes (``conversations``: ``user_id`` and ``user_id`` +
  ``created_at`` desc; ``users``: ``username``, ``email``; ``audit_logs``: ``user_id``,
  ``action``, ``timestamp``), the same plain indexes Beanie's ``init_beanie`` creates;
- ``audit_log = true`` adds one ``audit_logs`` entry per conversation created, in the
  shape of the app's ``POST /conversations`` entry, with ``user_agent`` "chatledger"; it
  goes when chatledger removes that conversation;
- ``user_id_type``: see docs/localstorage-mongo.md (the app's model stores an ObjectId;
  its list endpoint at 628c503 matches the string).

Counters: ``users_matched``, ``users_created``, ``users_deleted``, ``users_kept``,
``conversations_written``, ``conversations_removed``, ``messages_off_branch``,
``audit_entries``, ``conversations_skipped_ownerless``,
``conversations_skipped_without_record`` (both skips, with the reason, not rejects).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pymongo
from bson import ObjectId

from ledger.kit import (
    MARKER_FIELD,
    ConfigError,
    ConversationView,
    DocumentTarget,
    Outcome,
    PermanentError,
    Sink,
    Unit,
    document_id,
    marker,
    option,
    redact,
)
from sinks.mongo_toolkit.documents import conversation_document, fingerprint
from sinks.mongo_toolkit.users import Users

CONVERSATIONS, USERS, AUDIT = "conversations", "users", "audit_logs"
INDEXES = {
    CONVERSATIONS: [[("user_id", 1)], [("user_id", 1), ("created_at", -1)]],
    USERS: [[("username", 1)], [("email", 1)]],
    AUDIT: [[("user_id", 1)], [("action", 1)], [("timestamp", 1)]],
}
USER_ID_TYPES = ("objectid", "string")


@dataclass
class MongoToolkitOptions:
    uri: str = option(help="The app's MongoDB URL (its MONGODB_URL), as env:VAR.", secret=True)
    database: str = option("ai_mcp_toolkit", help="The app's database (its MONGODB_DATABASE).")
    create_missing_users: bool = option(
        False, help="Create a user the app does not have (app defaults, no password) instead of rejecting."
    )
    placeholder_email_domain: str = option(
        "users.example.com", help="The email domain of created users whose record has no email."
    )
    user_id_type: str = option(
        "objectid", help="How conversations store user_id: objectid (the app's model) or string."
    )
    audit_log: bool = option(False, help="Add one audit_logs entry per conversation created.")


class MongoToolkitSink(DocumentTarget, Sink):
    type_name = "mongo-toolkit"
    Options = MongoToolkitOptions
    unit = "conversation"
    kinds = ("user", "conversation", "message")
    capabilities = frozenset({"markers", "verify"})
    marked_collections = (USERS, CONVERSATIONS)

    def __init__(self, options: MongoToolkitOptions, context) -> None:
        super().__init__(options, context)
        if options.user_id_type not in USER_ID_TYPES:
            raise ConfigError(f"mongo-toolkit: user_id_type must be one of {', '.join(USER_ID_TYPES)}")
        self.users = Users(self)

    # -- lifecycle ---------------------------------------------------------------------------

    def describe(self) -> str:
        return f"mongo-toolkit {redact(self.options.uri)} database {self.options.database}"

    def tables(self, kind: str) -> list[str]:
        return {
            "user": [USERS],
            "conversation": [CONVERSATIONS] + ([AUDIT] if self.options.audit_log else []),
            "message": [f"{CONVERSATIONS}.messages"],
        }.get(kind, [kind])

    def open(self) -> None:
        if self.client is not None:
            return
        self.connect(self.options.uri, self.options.database)
        if self.context.read_only:  # verify, dry runs: create nothing
            return
        for name, indexes in INDEXES.items():
            if name != AUDIT or self.options.audit_log:
                for keys in indexes:
                    self.database[name].create_index(keys)

    # -- writing -----------------------------------------------------------------------------

    def apply(self, units: list[Unit], run_id: int, *, truncate: bool = False) -> list[Outcome]:
        if truncate:
            raise PermanentError("mongo-toolkit has no table set to truncate; use replace without --truncate")
        counted = dict(self.counters)
        try:
            return self._apply(units, run_id)
        except Exception:  # the engine retries or bisects: count only what a success did
            self.counters = counted
            raise

    def _apply(self, units: list[Unit], run_id: int) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for unit in units:
            if unit.kind == "user":
                outcomes += self.users.apply(unit.items[0], run_id)
        written, removed = [], []
        for unit in units:
            if unit.kind != "conversation" or not any(item.changed for item in unit.items):
                continue
            reason = None if unit.removed else self._unwritable(unit)
            if reason:
                outcomes += [Outcome.skip(item, reason) for item in unit.items if item.changed]
            else:
                (removed if unit.removed else written).append(unit)
        documents = [self._document(unit, run_id) for unit in written]
        self.upsert(CONVERSATIONS, documents)
        self.remove(CONVERSATIONS, [self._id(unit) for unit in removed])
        if self.options.audit_log:
            self._audit([unit for unit in written if unit.head.held_hash is None], documents)
            self.remove(AUDIT, [document_id(u.items[0].stream, u.key, AUDIT) for u in removed])
        for unit in written + removed:
            reference = {"_id": str(self._id(unit)), "owner": self._owner_key(unit)}
            outcomes += [Outcome.written(item, reference) for item in unit.items if item.changed]
        self.count("conversations_written", len(written))
        self.count("conversations_removed", len(removed))
        return outcomes

    @staticmethod
    def _id(unit: Unit) -> ObjectId:
        return document_id(unit.items[0].stream, unit.key)

    @staticmethod
    def _owner_key(unit: Unit) -> str | None:
        view = ConversationView(unit)
        return view.owner

    def _unwritable(self, unit: Unit) -> str | None:
        """Why a live unit cannot be an app conversation (it is skipped), or None."""
        if unit.head is None or unit.head.removed:
            self.count("conversations_skipped_without_record")
            return "messages without their conversation record: the app keeps messages inside a conversation"
        if not self._owner_key(unit):
            self.count("conversations_skipped_ownerless")
            return "the conversation has no owner: every conversation of the app belongs to a user"
        return None

    def _user_id(self, unit: Unit) -> tuple[Any, dict[str, Any]]:
        """The owner's ``users._id`` as the documents store it, and the owner mapping."""
        stream = unit.items[0].stream
        owner = self._owner_key(unit)
        mapped = self.users.owners.get(stream, owner) if owner else None
        if mapped is None:
            raise PermanentError(
                f"{unit.key}: its owner {owner or '(none)'} is not a user of the app "
                "(the user record was rejected or not replayed; see its reject)"
            )
        user_id = mapped["user_id"]
        return (ObjectId(user_id) if self.options.user_id_type == "objectid" else user_id), mapped

    def _document(self, unit: Unit, run_id: int) -> dict[str, Any]:
        view = ConversationView(unit)
        user_id, _mapped = self._user_id(unit)
        document = conversation_document(view, unit.items[0].stream, user_id)
        off_branch = len(document["metadata"].get("other_branches", []))
        if off_branch:
            self.count("messages_off_branch", off_branch)
        reference = {"_id": str(document["_id"]), "owner": view.owner}
        document[MARKER_FIELD] = marker(self.target, run_id, unit.items, reference)
        return document

    def _audit(self, created: list[Unit], documents: list[dict[str, Any]]) -> None:
        """The app's ``conversations.create`` audit entry for each new conversation."""
        by_id = {document["_id"]: document for document in documents}
        requests = []
        for unit in created:
            document = by_id[self._id(unit)]
            _user_id, mapped = self._user_id(unit)
            entry = {
                "user_id": ObjectId(mapped["user_id"]),
                "username": mapped["username"],
                "action": "conversations.create",
                "method": "POST",
                "endpoint": "/conversations",
                "status_code": 201,
                "resource_type": "conversation",
                "resource_id": str(document["_id"]),
                "request_data": {"title": document["title"]},
                "response_data": None,
                "ip_address": None,
                "user_agent": "chatledger",
                "timestamp": dt.datetime.now(dt.UTC).replace(tzinfo=None),
            }
            key = {"_id": document_id(unit.items[0].stream, unit.key, AUDIT)}
            requests.append(pymongo.UpdateOne(key, {"$setOnInsert": entry}, upsert=True))
        if requests:
            self.database[AUDIT].bulk_write(requests, ordered=True)
            self.count("audit_entries", len(requests))

    # -- verifying ---------------------------------------------------------------------------

    def fingerprint(self, unit: Unit) -> str:
        if unit.kind == "user":
            return self.users.fingerprint(unit.items[0])
        user_id, _mapped = self._user_id(unit)
        return fingerprint(conversation_document(ConversationView(unit), unit.items[0].stream, user_id))

    def read_back(self, units: list[Unit]) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        conversations = [unit for unit in units if unit.kind == "conversation"]
        ids = [self._id(unit) for unit in conversations]
        stored = {doc["_id"]: doc for doc in self.database[CONVERSATIONS].find({"_id": {"$in": ids}})}
        for unit in conversations:
            found[unit.key] = fingerprint(stored.get(self._id(unit)))
        for unit in units:
            if unit.kind == "user":
                found[unit.key] = self.users.read_back(unit.items[0])
        return found

    def unexpected(self, streams: Iterable[str]) -> Iterator[tuple[str, str]]:
        """Conversations and created users the markers say this target holds."""
        for collection in (USERS, CONVERSATIONS):
            for stream, key in sorted(set(self.marked_records(collection, streams))):
                if key.startswith(("user:", "conversation:")):
                    yield stream, key
