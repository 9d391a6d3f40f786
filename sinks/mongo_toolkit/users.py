"""The app's users for ledger users, and which ``users._id`` each user key maps to.

- **Match** by ``username``, exactly as the app looks users up
  (``User.find_one(User.username == username)``). The username is the user record's
  ``username``, else its email, else the key without ``user:``. A matched user is never
  changed or deleted.
- **Missing**: the user unit is rejected with the reason (and so are that user's
  conversations), unless ``create_missing_users``: then a user document with the app's
  defaults (``role: "USER"``, ``is_active: true``, empty ``metadata``-but-source and
  ``preferences``, naive UTC ``created_at``/``updated_at`` of the write) and **no
  password**: ``password_hash`` is empty, so nobody can log in as it until an admin sets
  a password. Its ``_id`` is derived from stream and key, its email is the record's or
  ``<username>@<placeholder_email_domain>`` (the model requires one). Only a created
  user carries the ledger's marker; a re-run changes only the marker (``$setOnInsert``
  for everything else), so a password set meanwhile survives.
- **Remove** (rollback of a creation, a source delete with ``--propagate-deletes``): only
  users chatledger created, and only while every conversation they own was written by
  chatledger (else kept, counted ``users_kept``).

Which user a key maps to is remembered in the ledger's lookups (namespace
``mongo-toolkit-owner``), so conversations applied in later batches or runs find it.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from bson import ObjectId

from ledger.kit import MARKER_FIELD, Item, Outcome, OwnerMap, PermanentError, document_id, marker

NAMESPACE = "mongo-toolkit-owner"


def username_of(item: Item) -> str:
    for name in ("username", "email"):
        value = item.data.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return item.key.split(":", 1)[-1]


def _now() -> dt.datetime:
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class Users:
    def __init__(self, sink) -> None:
        self.sink = sink
        self.options = sink.options
        # user key → {"user_id", "username", "created"} (None: not mapped)
        self.owners = OwnerMap(sink.context.lookups, NAMESPACE, sink.target, "mongo-toolkit")

    @property
    def collection(self):
        return self.sink.database["users"]

    def apply(self, item: Item, run_id: int) -> list[Outcome]:
        if not item.changed:
            return []
        if item.removed:
            return self._remove(item)
        username = username_of(item)
        found = self.collection.find_one({"username": username}, {"_id": 1})
        own_id = document_id(item.stream, item.key)
        created = found is None or found["_id"] == own_id
        reference = {
            "user_id": str(own_id if created else found["_id"]),
            "username": username,
            "created": created,
        }
        mark = {MARKER_FIELD: marker(self.sink.target, run_id, [item], reference)}
        if found is None:
            if not self.options.create_missing_users:
                raise PermanentError(
                    f"{item.key}: no user with username {username!r} in {self.options.database}.users "
                    "(the app looks users up by username); create the user in the app first, "
                    "or set create_missing_users = true"
                )
            self._create(item, username, own_id, mark)
        elif created:  # ours from an earlier run: only the marker moves on
            self.collection.update_one({"_id": own_id}, {"$set": mark})
        else:
            self.sink.count("users_matched")
        self.owners.put(item.stream, item.key, reference)
        return [Outcome.written(item, reference)]

    def _create(self, item: Item, username: str, own_id: ObjectId, mark: dict[str, Any]) -> None:
        email = item.data.get("email")
        if not isinstance(email, str) or "@" not in email:
            local = re.sub(r"[^A-Za-z0-9._+-]+", "-", username).strip(".-") or "user"
            email = f"{local}@{self.options.placeholder_email_domain}"
        now = _now()
        defaults = {
            "username": username,
            "email": email.strip().lower(),
            "password_hash": "",
            "full_name": item.data.get("name") if isinstance(item.data.get("name"), str) else None,
            "role": "USER",
            "is_active": True,
            "last_login": None,
            "metadata": {"source": {"stream": item.stream, "key": item.key}},
            "preferences": {},
            "created_at": now,
            "updated_at": now,
        }
        self.collection.update_one(
            {"_id": own_id},
            {"$setOnInsert": defaults, "$set": mark},
            upsert=True,
        )
        self.sink.count("users_created")

    def _remove(self, item: Item) -> list[Outcome]:
        reference = item.held_ref if isinstance(item.held_ref, dict) else {}
        if reference.get("created") and reference.get("user_id"):
            user_id = ObjectId(reference["user_id"])
            foreign = self.sink.database["conversations"].count_documents(
                {
                    "user_id": {"$in": [user_id, str(user_id)]},
                    f"{MARKER_FIELD}.target": {"$ne": self.sink.target},
                }
            )
            if foreign:
                self.sink.count("users_kept")
            else:
                self.collection.delete_one({"_id": user_id})
                self.sink.count("users_deleted")
        self.owners.put(item.stream, item.key, None)
        return (
            [Outcome(item.stream, item.key, "delete", reference or None)]
            if item.held_hash is not None
            else []
        )

    def fingerprint(self, item: Item) -> str | None:
        reference = item.held_ref if isinstance(item.held_ref, dict) else {}
        return f"{reference.get('user_id')}:{reference.get('username')}" if reference else None

    def read_back(self, item: Item) -> str | None:
        reference = item.held_ref if isinstance(item.held_ref, dict) else {}
        if not reference.get("user_id"):
            return None
        found = self.collection.find_one({"_id": ObjectId(reference["user_id"])}, {"username": 1})
        return f"{found['_id']}:{found.get('username')}" if found else None
