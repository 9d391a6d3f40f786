"""Reading a live LibreChat MongoDB with pymongo.

The client is created on first use (the reader runs in a forked child process, and a
pymongo client must not cross a fork). Every query streams with a cursor and uses the
indexes LibreChat creates: ``conversations`` by ``user``, ``messages`` by
``{conversationId, user, createdAt, _id}``, ``files`` by ``file_id``. Credentials in
``users`` are excluded by the query's projection. A live database has no cheap proof of
"unchanged", so its scopes carry no fingerprint and every run reads them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pymongo
from bson import ObjectId
from pymongo.errors import PyMongoError

from ledger.kit import ChatledgerError, redact
from sources.librechat.native import USER_SECRETS
from sources.librechat.store import Bundle, Store

COLLECTIONS = ("users", "conversations", "messages", "files", "sharedlinks", "presets", "conversationtags")


class MongoStore(Store):
    kind = "mongo"

    def __init__(self, uri: str, database: str) -> None:
        self.uri = uri
        self.database = database
        self._client: Any = None

    @property
    def db(self) -> Any:
        if self._client is None:
            self._client = pymongo.MongoClient(self.uri, tz_aware=True, serverSelectionTimeoutMS=15000)
        return self._client[self.database]

    def _guard(self, what: str, call, *args):
        try:
            return call(*args)
        except PyMongoError as exc:
            raise ChatledgerError(redact(f"librechat: {what} failed: {type(exc).__name__}: {exc}")) from None

    def users(self, emails: set[str] | None) -> Iterator[dict[str, Any]]:
        query = {"email": {"$in": sorted(emails)}} if emails else {}
        projection = {name: False for name in USER_SECRETS}
        cursor = self._guard("reading users", lambda: self.db.users.find(query, projection).sort("_id", 1))
        yield from cursor

    def user(self, user_id: str) -> dict[str, Any] | None:
        projection = {name: False for name in USER_SECRETS}
        identity: Any = ObjectId(user_id) if ObjectId.is_valid(user_id) else user_id
        return self._guard("reading users", lambda: self.db.users.find_one({"_id": identity}, projection))

    def conversations(self, user_id: str, start: int) -> Iterator[Bundle]:
        cursor = self._guard(
            "reading conversations",
            lambda: (
                self.db.conversations.find({"user": user_id})
                .sort([("createdAt", 1), ("conversationId", 1)])
                .skip(start)
            ),
        )
        for index, document in enumerate(cursor, start):
            conversation_id = document.get("conversationId")
            messages = self._guard("reading messages", self._messages, user_id, conversation_id)
            yield Bundle(index, document, messages, f"conversations _id {document.get('_id')}")

    def _messages(self, user_id: str, conversation_id: Any) -> list[dict[str, Any]]:
        query = {"conversationId": conversation_id, "user": user_id}
        return list(self.db.messages.find(query).sort([("createdAt", 1), ("_id", 1)]))

    def stray_conversations(self, user_id: str, known: set[str]) -> dict[str, int]:
        found = self._guard(
            "reading messages", lambda: self.db.messages.distinct("conversationId", {"user": user_id})
        )
        return {
            conversation_id: self.db.messages.count_documents(
                {"user": user_id, "conversationId": conversation_id}
            )
            for conversation_id in sorted(set(found) - known, key=str)
        }

    def files(self, file_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not file_ids:
            return {}
        cursor = self._guard("reading files", lambda: self.db.files.find({"file_id": {"$in": file_ids}}))
        return {document["file_id"]: document for document in cursor}

    def shares(self, user_id: str) -> dict[str, list[str]]:
        cursor = self._guard("reading sharedlinks", lambda: self.db.sharedlinks.find({"user": user_id}))
        found: dict[str, list[str]] = {}
        for document in cursor:
            found.setdefault(str(document.get("conversationId")), []).append(str(document.get("shareId")))
        return {conversation: sorted(ids) for conversation, ids in found.items()}

    def describe(self) -> dict[str, Any]:
        names = self._guard("listing collections", self.db.list_collection_names)
        counts = {
            name: self._guard(f"counting {name}", self.db[name].estimated_document_count)
            for name in COLLECTIONS
            if name in names
        }
        return {"input": "mongo", "database": self.database, "documents": counts}

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
