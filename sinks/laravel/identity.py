"""The original importer's identity rules, as pure functions (no database).

- Email: the WorkOS-resolved (else the source's) address, lower-cased and trimmed, if it
  is a valid address; otherwise ``migrated+<first 20 hex of sha256(workosId)>@openagents.local``.
- Conflicts (the address belongs to another ``workos_id``): retry with
  ``migrated+<first 20 hex of sha256("<workosId>|<attempt>")>@openagents.local``, attempt 1, 2, …
- Name: the resolved name (≤ 80), else the email's local part, else the WorkOS id.
- Avatar: the resolved picture, else ``https://www.gravatar.com/avatar/<md5(email)>?d=identicon``.
- WorkOS id: the user's ``external_ids.workos`` (Convex streams carry it), else the
  placeholder ``chatledger:<first 20 hex of sha256("<stream>\n<user key>")>`` — never
  shaped like a WorkOS id, so it is never looked up, and the same user always gets it.
  A conversation's or autopilot's owner is found by the same rule from its ``owner`` key
  (Convex's ``metadata.owner_id``, the owner's WorkOS id, refines it).
- An existing user's email is upgraded only from invalid to valid or from a placeholder
  to a real address; the name only when empty, or when a resolved name exists and the
  current one is the WorkOS id, the email's local part or a ``migrated+`` placeholder;
  the avatar only when a resolved one exists and the current one is empty or a gravatar.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

PLACEHOLDER_DOMAIN = "@openagents.local"
NAME_LIMIT = 80
WORKOS_ID = re.compile(r"^user_[a-zA-Z0-9_-]+$")
# What PHP's FILTER_VALIDATE_EMAIL accepts in practice: dot-atom local part, dotted domain.
_EMAIL = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
)


def is_valid_email(value: str | None) -> bool:
    if not isinstance(value, str):
        return False
    candidate = value.strip().lower()
    return (
        0 < len(candidate) <= 254 and len(candidate.partition("@")[0]) <= 64 and bool(_EMAIL.match(candidate))
    )


def placeholder(workos_id: str, attempt: int = 0) -> str:
    seed = workos_id if attempt == 0 else f"{workos_id}|{attempt}"
    return f"migrated+{hashlib.sha256(seed.encode()).hexdigest()[:20]}{PLACEHOLDER_DOMAIN}"


def placeholder_workos_id(stream: str, user_key: str) -> str:
    seed = f"{stream}\n{user_key}"
    return f"chatledger:{hashlib.sha256(seed.encode()).hexdigest()[:20]}"


def workos_id_of(stream: str, user_key: str, data: dict[str, Any]) -> str:
    """The ``users.workos_id`` of a user record."""
    known = (data.get("external_ids") or {}).get("workos")
    return known if isinstance(known, str) and known else placeholder_workos_id(stream, user_key)


def owner_workos_id(stream: str, data: dict[str, Any]) -> str | None:
    """The ``users.workos_id`` of a conversation's or autopilot's owner (None: no owner)."""
    owner = data.get("owner")
    if not isinstance(owner, str) or not owner:
        return None
    refined = (data.get("metadata") or {}).get("owner_id")
    return refined if isinstance(refined, str) and refined else placeholder_workos_id(stream, owner)


def is_placeholder(email: str) -> bool:
    return email.strip().lower().endswith(PLACEHOLDER_DOMAIN)


def preferred_email(email: str | None, workos_id: str) -> str:
    candidate = (email or "").strip().lower()
    return candidate if is_valid_email(candidate) else placeholder(workos_id)


def display_name(workos_id: str, email: str, resolved_name: str | None) -> str:
    for candidate in ((resolved_name or "").strip(), email.partition("@")[0].strip(), workos_id):
        if candidate:
            return candidate[:NAME_LIMIT]
    return workos_id


def gravatar(email: str) -> str:
    return f"https://www.gravatar.com/avatar/{hashlib.md5(email.strip().lower().encode()).hexdigest()}?d=identicon"


def looks_like_workos_id(value: str) -> bool:
    return bool(WORKOS_ID.match(value))


def should_upgrade_email(existing: str, incoming: str) -> bool:
    existing, incoming = existing.strip().lower(), incoming.strip().lower()
    if not incoming or existing == incoming:
        return False
    if not is_valid_email(existing) and is_valid_email(incoming):
        return True
    return is_placeholder(existing) and not is_placeholder(incoming)


def should_upgrade_name(
    existing: str, workos_id: str, existing_email: str, resolved_name: str | None
) -> bool:
    name = existing.strip()
    if not name:
        return True
    if not (resolved_name or "").strip():
        return False
    return name in (workos_id, existing_email.partition("@")[0]) or name.startswith("migrated+")


def should_upgrade_avatar(existing: str, resolved_avatar: str | None) -> bool:
    if not (resolved_avatar or "").strip():
        return False
    return not existing.strip() or "gravatar.com/avatar" in existing
