"""``user`` records → ``users`` rows, matched by ``workos_id`` (see :mod:`.identity`).

Any source's users land: the WorkOS id is ``external_ids.workos`` or the deterministic
placeholder (:func:`.identity.placeholder_workos_id`, counted as
``users_workos_id_placeholder``); the email, name and avatar are the WorkOS answer's,
else the record's canonical ``email``, ``name`` and ``avatar_url``, else the rules'.

- A user the target does not have is inserted (``email_verified_at`` and ``handle``
  NULL, ``created_at`` from the source) and is *ours*: later versions rewrite its email,
  name and avatar to what the rules give, and removing the record (a rollback of the
  insert, a propagated delete) deletes the row.
- A user the target already has (same ``workos_id``) is the app's: only the original
  importer's upgrades are made, the values before the first change are kept in the
  target ref, and removing the record restores them.
- Counters: ``users_imported`` (every user applied, new or existing),
  ``users_resolved_via_workos``, ``users_unresolved_placeholder``,
  ``users_email_conflicts``.

The target ref ``{id, workos_id, created, email, name, avatar[, prior]}`` is what verify
compares with the row.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table, delete, func, insert, select, update

from ledger.kit import Item, chunks, digest
from sinks.laravel import identity
from sinks.laravel.columns import Columns, Count, canonical_ms, utc_now

UPGRADABLE = ("email", "name", "avatar")


def profile_of(data: dict[str, Any], resolved: dict[str, Any] | None) -> dict[str, Any]:
    """Email, name and avatar to write: WorkOS's answer first, then the record's own."""
    resolved = resolved or {}
    return {
        "email": resolved.get("email") or data.get("email"),
        "name": resolved.get("name") or data.get("name"),
        "avatar": resolved.get("avatar") or data.get("avatar_url"),
    }


class Users:
    def __init__(self, table: Table, columns: Columns) -> None:
        self.table = table
        self.columns = columns

    def laravel_ids(self, conn: Connection, workos_ids: set[str]) -> dict[str, int]:
        """workos_id → users.id of those the target has (one query per thousand)."""
        found: dict[str, int] = {}
        for chunk in chunks(sorted(workos_ids)):
            rows = conn.execute(
                select(self.table.c.workos_id, self.table.c.id).where(self.table.c.workos_id.in_(chunk))
            )
            found.update({row.workos_id: row.id for row in rows})
        return found

    def write(
        self, conn: Connection, entries: list[tuple[Item, dict | None]], count: Count
    ) -> list[dict[str, Any]]:
        """Write consecutive present users of one batch (each with its WorkOS answer);
        their target refs, in order. The rows they may clash with are read once, new rows
        are inserted in one statement."""
        if not entries:
            return []
        batch = _Batch(self, conn, entries)
        refs = [self._apply(batch, item, resolved, count) for item, resolved in entries]
        return batch.insert(refs)

    def _apply(self, batch: _Batch, item: Item, resolved: dict | None, count: Count) -> dict[str, Any]:
        """One present user's target ref (a new row's ``id`` is filled in by ``insert``)."""
        data, held = item.data, item.held_ref or {}
        workos_id = identity.workos_id_of(item.stream, item.key, data)
        if workos_id == identity.placeholder_workos_id(item.stream, item.key):
            count("users_workos_id_placeholder", 1)
        if (resolved or {}).get("email"):
            count("users_resolved_via_workos", 1)
        resolved = profile_of(data, resolved)
        existing = batch.existing.get(workos_id)
        ours = existing is None or (held.get("created") and held.get("id") == existing.id)
        if ours:
            ref = self._write_ours(batch, existing, data, workos_id, resolved, count)
        else:
            ref = self._upgrade(batch, existing, data, workos_id, resolved, held, count)
        if identity.is_placeholder(ref["email"]) and not identity.is_valid_email(resolved.get("email")):
            count("users_unresolved_placeholder", 1)
        count("users_imported", 1)
        return ref

    def _write_ours(self, batch: _Batch, existing, data, workos_id, resolved, count: Count) -> dict[str, Any]:
        wanted = identity.preferred_email(resolved.get("email"), workos_id)
        email, conflict = batch.unique_email(wanted, workos_id)
        if conflict:
            count("users_email_conflicts", 1)
        name = identity.display_name(workos_id, email, resolved.get("name"))
        values = {
            "email": email,
            "name": self.columns.fit("users", "name", name, count),
            "avatar": resolved.get("avatar") or identity.gravatar(email),
        }
        created = self.columns.moment("users", "created_at", canonical_ms(data.get("created_at")), count)
        if existing is None:
            row = {**values, "workos_id": workos_id, "email_verified_at": None, "remember_token": None,
                   "created_at": created, "updated_at": created}  # fmt: skip
            batch.new.setdefault(workos_id, row).update(values)  # two records of one user: one row
            return {"id": None, "workos_id": workos_id, "created": True, **values}
        if any(getattr(existing, column) != value for column, value in values.items()):
            batch.update(existing, values)
        return {"id": existing.id, "workos_id": workos_id, "created": True, **values}

    def _upgrade(
        self, batch: _Batch, existing, data, workos_id, resolved, held, count: Count
    ) -> dict[str, Any]:
        """The original importer's upgrade-only rules for a user the app already had."""
        current = {column: getattr(existing, column) or "" for column in UPGRADABLE}
        wanted = identity.preferred_email(resolved.get("email"), workos_id)
        changes: dict[str, Any] = {}
        email = current["email"].strip().lower()
        if identity.should_upgrade_email(email, wanted):
            email, conflict = batch.unique_email(wanted, workos_id)
            if conflict:
                count("users_email_conflicts", 1)
            if email != current["email"]:
                changes["email"] = email
        if identity.should_upgrade_name(current["name"], workos_id, email, resolved.get("name")):
            changes["name"] = self.columns.fit(
                "users", "name", identity.display_name(workos_id, email, resolved.get("name")), count
            )
        if identity.should_upgrade_avatar(current["avatar"], resolved.get("avatar")):
            changes["avatar"] = resolved["avatar"]
        changes = {column: value for column, value in changes.items() if value != current[column]}
        if changes:
            batch.update(existing, changes)
        prior = held.get("prior") or (
            {column: getattr(existing, column) for column in changes} if changes else None
        )
        ref = {"id": existing.id, "workos_id": workos_id, "created": False, **current, **changes}
        return {**ref, "prior": prior} if prior else ref

    def remove(self, conn: Connection, item: Item) -> None:
        """Undo what we did to a user: delete our row, or restore the app's values."""
        held = item.held_ref or {}
        if not held.get("id"):
            return
        where = (self.table.c.id == held["id"], self.table.c.workos_id == held.get("workos_id"))
        if held.get("created"):
            conn.execute(delete(self.table).where(*where))
        elif held.get("prior"):
            conn.execute(update(self.table).where(*where).values(**held["prior"], updated_at=utc_now()))

    # -- verify ------------------------------------------------------------------------------

    @staticmethod
    def fingerprint(held: dict[str, Any]) -> str:
        """Ours: workos id, email, name and avatar as written; the app's: the workos id."""
        shown = [held.get("workos_id")]
        if held.get("created"):
            shown += [held.get(column) for column in UPGRADABLE]
        return digest(shown)

    def read_back(self, conn: Connection, held: dict[str, Any]) -> str | None:
        row = conn.execute(
            select(self.table.c.workos_id, *[self.table.c[column] for column in UPGRADABLE]).where(
                self.table.c.id == held.get("id")
            )
        ).first()
        if row is None:
            return None
        shown = [row.workos_id] + (
            [getattr(row, column) for column in UPGRADABLE] if held.get("created") else []
        )
        return digest(shown)


class _Batch:
    """What one batch of users reads up front: the rows of their WorkOS ids and the
    holders of the addresses they want; and the rows it will insert."""

    def __init__(self, users: Users, conn: Connection, entries: list[tuple[Item, dict | None]]) -> None:
        self.users, self.conn, self.table = users, conn, users.table
        self.new: dict[str, dict[str, Any]] = {}  # workos id → the row to insert
        workos_ids = [identity.workos_id_of(item.stream, item.key, item.data) for item, _ in entries]
        columns = (
            self.table.c.id,
            self.table.c.workos_id,
            self.table.c.name,
            self.table.c.email,
            self.table.c.avatar,
        )
        self.existing: dict[str, Any] = {}
        for chunk in chunks(sorted(set(workos_ids))):
            rows = conn.execute(select(*columns).where(self.table.c.workos_id.in_(chunk)))
            self.existing.update({row.workos_id: row for row in rows})
        wanted = {
            identity.preferred_email(profile_of(item.data, resolved).get("email"), workos_id)
            for (item, resolved), workos_id in zip(entries, workos_ids, strict=True)
        }
        #: lower-cased address → the workos ids holding it (the target's, then this batch's)
        self.holders: dict[str, set[str]] = {}
        self._read_holders(wanted)

    def _read_holders(self, emails: set[str]) -> None:
        emails = {email for email in emails if email not in self.holders}
        for email in emails:
            self.holders[email] = set()
        lowered = func.lower(self.table.c.email)
        for chunk in chunks(sorted(emails)):
            for row in self.conn.execute(
                select(lowered.label("email"), self.table.c.workos_id).where(lowered.in_(chunk))
            ):
                self.holders.setdefault(row.email, set()).add(row.workos_id)

    def unique_email(self, email: str, workos_id: str) -> tuple[str, bool]:
        """The address, or a placeholder retry when another user holds it; claimed."""
        attempt, candidate = 0, email
        while True:
            self._read_holders({candidate})
            if not self.holders[candidate] - {workos_id}:
                break
            attempt += 1
            candidate = identity.placeholder(workos_id, attempt)
        self.holders[candidate].add(workos_id)
        return candidate, attempt > 0

    def update(self, existing, values: dict[str, Any]) -> None:
        if "email" in values and existing.email:  # the old address is free from now on
            self.holders.get(existing.email.strip().lower(), set()).discard(existing.workos_id)
        self.conn.execute(
            update(self.table).where(self.table.c.id == existing.id).values(**values, updated_at=utc_now())
        )

    def insert(self, refs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Insert the new rows in one statement; fill in their ids."""
        if self.new:
            self.conn.execute(insert(self.table), list(self.new.values()))
            ids = self.users.laravel_ids(self.conn, set(self.new))
            for ref in refs:
                if ref["id"] is None:
                    ref["id"] = ids[ref["workos_id"]]
        return refs
