"""``assistant`` records → one autopilot per owner, with its profile and policy.

- The owner's autopilot is the one the target already has (the first by
  ``created_at``), else a new one: id ``uuid5(namespace, stream + key)`` (deterministic,
  so a crash and a re-run cannot make two), ``handle`` = ``autopilot-<users.id>`` (or
  ``<handle>-autopilot`` for a user with a handle) normalised (lower-case, before ``@``,
  ``[^a-z0-9:_-]+`` → ``-``, ≤ 64) and made unique with ``-1``, ``-2`` …,
  ``display_name`` = the profile's ``owner_display_name``, ``status`` active,
  ``visibility`` private, ``tagline`` = the persona summary (≤ 255; NULL with
  ``skip_blueprints``), the owner's gravatar as avatar (``autopilots_created``).
- Profile and policy (see :mod:`.blueprint`) are upserted by ``autopilot_id`` and only
  written when their content differs (``autopilot_profiles_upserted``,
  ``autopilot_policies_upserted``); any change bumps ``config_version`` once (a fresh
  autopilot ends at 2, as in the original). ``blueprints_mapped`` counts blueprints used.
- Linkage backfill: the owner's threads, runs and messages with ``autopilot_id`` NULL,
  and ``legacy_receipt%`` run events, get the autopilot (``*_linked_backfilled``), which
  links rows an earlier import wrote before autopilots existed.
- An autopilot we created is ours: removing the record deletes it with its profile and
  policy and unlinks rows pointing at it. For an autopilot the app had, the profile and
  policy before our first change are kept in the target ref and restored.
- A blueprint of an ownerless thread is skipped (``blueprints_skipped_ownerless``).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson
from sqlalchemy import Connection, MetaData, delete, insert, select, update

from ledger.kit import Item, PermanentError, canonical_text, chunks, digest
from sinks.laravel import blueprint as blueprints
from sinks.laravel.columns import Columns, Count, utc_now
from sinks.laravel.identity import gravatar, is_valid_email, owner_workos_id
from sinks.laravel.plan import NAMESPACE

HANDLE_LIMIT = 64
TAGLINE_LIMIT = 255
JSON_COLUMNS = {"principles", "preferences", "onboarding_answers", "tool_allowlist", "tool_denylist",
                "l402_allowed_hosts", "data_policy"}  # fmt: skip
SKIPPED_OWNERLESS = "an autopilot without an owner (a blueprint of an ownerless thread)"


def handle_base(seed: str) -> str:
    base = seed.strip().lower().partition("@")[0]
    base = re.sub(r"[^a-z0-9:_-]+", "-", base).strip("-")[:HANDLE_LIMIT]
    return base or "autopilot"


def content(row: Any, columns: list[str]) -> dict[str, Any]:
    """A profile or policy row as comparable values (JSON parsed, whatever the driver gave)."""
    out = {}
    for column in columns:
        value = row[column] if isinstance(row, dict) else getattr(row, column)
        if column in JSON_COLUMNS and isinstance(value, (str, bytes)):
            value = orjson.loads(value)
        elif isinstance(value, bool) or column == "l402_require_approval":
            value = bool(value) if value is not None else None
        out[column] = value
    return out


class Autopilots:
    def __init__(
        self, meta: MetaData, columns: Columns, *, skip_blueprints: bool, allowed_hosts: list[str]
    ) -> None:
        self.users = meta.tables["users"]
        self.autopilots = meta.tables["autopilots"]
        self.profiles = meta.tables["autopilot_profiles"]
        self.policies = meta.tables["autopilot_policies"]
        self.meta = meta
        self.columns = columns
        self.skip_blueprints = skip_blueprints
        self.allowed_hosts = allowed_hosts
        self.profile_columns = [
            str(c.name)
            for c in self.profiles.columns
            if c.name not in ("autopilot_id", "created_at", "updated_at")
        ]
        self.policy_columns = [
            str(c.name)
            for c in self.policies.columns
            if c.name not in ("autopilot_id", "created_at", "updated_at")
        ]

    def of_owners(self, conn: Connection, user_ids: set[int]) -> dict[int, Any]:
        """Each owner's autopilot (id, config_version), the first by created_at."""
        table = self.autopilots
        found: dict[int, Any] = {}
        for chunk in chunks(sorted(user_ids)):
            rows = conn.execute(
                select(table.c.owner_user_id, table.c.id, table.c.config_version)
                .where(table.c.owner_user_id.in_(chunk))
                .order_by(table.c.created_at.desc(), table.c.id.desc())
            )
            found.update({row.owner_user_id: row for row in rows})  # the first wins: it comes last
        return found

    # -- writing -----------------------------------------------------------------------------

    def desired(self, data: dict[str, Any], owner_name: str, count: Count) -> tuple[dict, dict]:
        """Profile and policy contents for a record, cut to the columns."""
        blueprint = None if self.skip_blueprints else data.get("blueprint")
        profile = blueprints.profile(blueprint, owner_name)
        for column in ("owner_display_name", "autopilot_voice"):
            profile[column] = self.columns.fit("autopilot_profiles", column, profile[column], count)
        policy = blueprints.policy(blueprint, self.allowed_hosts)
        return profile, policy

    def apply(self, conn: Connection, item: Item, stream: str, count: Count) -> dict[str, Any] | None:
        """Write one present autopilot record; its target ref (None: skipped, no owner)."""
        data, held = item.data, item.held_ref or {}
        owner_id = owner_workos_id(stream, data)
        if owner_id is None:
            if data.get("blueprint") is not None:
                count("blueprints_skipped_ownerless", 1)
            return None
        owner = conn.execute(
            select(self.users.c.id, self.users.c.name, self.users.c.email, self.users.c.handle).where(
                self.users.c.workos_id == owner_id
            )
        ).first()
        if owner is None:
            raise PermanentError(f"{item.key}: its owner user:{owner_id} is not in the target's users table")
        profile, policy = self.desired(data, owner.name or "", count)
        autopilot = self._autopilot(conn, held, owner.id)
        created = autopilot is not None and held.get("created") and held.get("autopilot_id") == autopilot.id
        if autopilot is None:
            autopilot = self._create(
                conn, uuid.uuid5(NAMESPACE, f"{stream}\n{item.key}"), owner, profile, count
            )
            created = True
        prior = held.get("prior") or (None if created else self._snapshot(conn, autopilot))
        changed = self._upsert(
            conn, self.profiles, autopilot.id, profile, "autopilot_profiles_upserted", count
        )
        changed |= self._upsert(
            conn, self.policies, autopilot.id, policy, "autopilot_policies_upserted", count
        )
        version = autopilot.config_version + (1 if changed else 0)
        values: dict[str, Any] = {"config_version": version} if changed else {}
        if created:  # ours: name and tagline follow the blueprint
            values |= self._presentation(profile)
        if values:
            conn.execute(
                update(self.autopilots)
                .where(self.autopilots.c.id == autopilot.id)
                .values(**values, updated_at=utc_now())
            )
        if data.get("blueprint") is not None and not self.skip_blueprints:
            count("blueprints_mapped", 1)
        self._backfill(conn, owner.id, autopilot.id, version, count)
        ref = {"autopilot_id": autopilot.id, "owner_id": owner_id, "created": bool(created),
               "digest": self.digest(profile, policy)}  # fmt: skip
        return {**ref, "prior": prior} if prior and not created else ref

    def _autopilot(self, conn: Connection, held: dict[str, Any], user_id: int) -> Any:
        table = self.autopilots
        if held.get("autopilot_id"):
            found = conn.execute(
                select(table.c.id, table.c.config_version).where(table.c.id == held["autopilot_id"])
            ).first()
            if found is not None:
                return found
        return self.of_owners(conn, {user_id}).get(user_id)

    def _presentation(self, profile: dict[str, Any]) -> dict[str, Any]:
        tagline = None if self.skip_blueprints else (profile.get("persona_summary") or None)
        return {
            "display_name": self.columns.fit("autopilots", "display_name", profile["owner_display_name"]),
            "tagline": tagline[:TAGLINE_LIMIT] if tagline else None,
        }

    def _create(
        self, conn: Connection, autopilot_id: uuid.UUID, owner: Any, profile: dict, count: Count
    ) -> Any:
        seed = (
            f"{owner.handle.strip().lower()}-autopilot"
            if (owner.handle or "").strip()
            else f"autopilot-{owner.id}"
        )
        now = utc_now()
        conn.execute(
            insert(self.autopilots).values(
                id=str(autopilot_id),
                owner_user_id=owner.id,
                handle=self._unique_handle(conn, handle_base(seed)),
                avatar=gravatar(owner.email) if is_valid_email(owner.email) else None,
                status="active",
                visibility="private",
                config_version=1,
                deleted_at=None,
                created_at=now,
                updated_at=now,
                **self._presentation(profile),
            )
        )
        count("autopilots_created", 1)
        return conn.execute(
            select(self.autopilots.c.id, self.autopilots.c.config_version).where(
                self.autopilots.c.id == str(autopilot_id)
            )
        ).first()

    def _unique_handle(self, conn: Connection, base: str) -> str:
        candidate, suffix = base, 1
        while conn.scalar(select(self.autopilots.c.id).where(self.autopilots.c.handle == candidate)):
            tail = f"-{suffix}"
            candidate = base[: max(1, HANDLE_LIMIT - len(tail))] + tail
            suffix += 1
        return candidate

    def _upsert(
        self, conn: Connection, table, autopilot_id: str, wanted: dict, counter: str, count: Count
    ) -> bool:
        columns = list(wanted)
        existing = conn.execute(select(table).where(table.c.autopilot_id == autopilot_id)).first()
        if existing is not None and content(existing, columns) == wanted:
            return False
        row = {column: _json(column, value) for column, value in wanted.items()}
        if existing is None:
            conn.execute(
                insert(table).values(
                    autopilot_id=autopilot_id, **row, created_at=utc_now(), updated_at=utc_now()
                )
            )
        else:
            conn.execute(
                update(table).where(table.c.autopilot_id == autopilot_id).values(**row, updated_at=utc_now())
            )
        count(counter, 1)
        return True

    def _snapshot(self, conn: Connection, autopilot: Any) -> dict[str, Any]:
        """Profile, policy and config version of an autopilot the app had, before we touch it."""
        profile = conn.execute(
            select(self.profiles).where(self.profiles.c.autopilot_id == autopilot.id)
        ).first()
        policy = conn.execute(
            select(self.policies).where(self.policies.c.autopilot_id == autopilot.id)
        ).first()
        return {
            "config_version": autopilot.config_version,
            "profile": content(profile, self.profile_columns) if profile else None,
            "policy": content(policy, self.policy_columns) if policy else None,
        }

    def _backfill(
        self, conn: Connection, user_id: int, autopilot_id: str, version: int, count: Count
    ) -> None:
        tables = self.meta.tables
        for name, extra in (
            ("threads", {}),
            ("runs", {"autopilot_config_version": version}),
            ("messages", {}),
        ):
            table = tables[name]
            done = conn.execute(
                update(table)
                .where(table.c.user_id == user_id, table.c.autopilot_id.is_(None))
                .values(autopilot_id=autopilot_id, **extra)
            ).rowcount
            count(f"{name}_linked_backfilled", done)
        events = tables["run_events"]
        done = conn.execute(
            update(events)
            .where(
                events.c.user_id == user_id,
                events.c.autopilot_id.is_(None),
                events.c.type.like("legacy_receipt%"),
            )
            .values(autopilot_id=autopilot_id, actor_type="autopilot", actor_autopilot_id=autopilot_id)
        ).rowcount
        count("events_linked_backfilled", done)

    # -- removing ------------------------------------------------------------------------------

    def remove(self, conn: Connection, item: Item) -> None:
        held = item.held_ref or {}
        autopilot_id = held.get("autopilot_id")
        if not autopilot_id:
            return
        if held.get("created"):
            for table in (self.profiles, self.policies):
                conn.execute(delete(table).where(table.c.autopilot_id == autopilot_id))
            conn.execute(delete(self.autopilots).where(self.autopilots.c.id == autopilot_id))
            self._unlink(conn, autopilot_id)
        elif held.get("prior"):
            self._restore(conn, autopilot_id, held["prior"])

    def _unlink(self, conn: Connection, autopilot_id: str) -> None:
        for name in ("threads", "runs", "messages"):
            table = self.meta.tables[name]
            extra = {"autopilot_config_version": None} if name == "runs" else {}
            conn.execute(
                update(table).where(table.c.autopilot_id == autopilot_id).values(autopilot_id=None, **extra)
            )
        events = self.meta.tables["run_events"]
        conn.execute(
            update(events)
            .where(events.c.autopilot_id == autopilot_id)
            .values(autopilot_id=None, actor_type="user", actor_autopilot_id=None)
        )

    def _restore(self, conn: Connection, autopilot_id: str, prior: dict[str, Any]) -> None:
        for table, saved in ((self.profiles, prior.get("profile")), (self.policies, prior.get("policy"))):
            conn.execute(delete(table).where(table.c.autopilot_id == autopilot_id))
            if saved is not None:
                row = {column: _json(column, value) for column, value in saved.items()}
                conn.execute(
                    insert(table).values(
                        autopilot_id=autopilot_id, **row, created_at=utc_now(), updated_at=utc_now()
                    )
                )
        conn.execute(
            update(self.autopilots)
            .where(self.autopilots.c.id == autopilot_id)
            .values(config_version=prior.get("config_version", 1), updated_at=utc_now())
        )

    # -- verify --------------------------------------------------------------------------------

    @staticmethod
    def digest(profile: dict[str, Any], policy: dict[str, Any]) -> str:
        return digest(profile, policy)

    def read_back(self, conn: Connection, held: dict[str, Any]) -> str | None:
        autopilot_id = held.get("autopilot_id")
        profile = conn.execute(
            select(self.profiles).where(self.profiles.c.autopilot_id == autopilot_id)
        ).first()
        policy = conn.execute(
            select(self.policies).where(self.policies.c.autopilot_id == autopilot_id)
        ).first()
        if profile is None or policy is None:
            return None
        return self.digest(content(profile, self.profile_columns), content(policy, self.policy_columns))


def _json(column: str, value: Any) -> Any:
    return canonical_text(value) if column in JSON_COLUMNS and value is not None else value
