"""Resolving WorkOS user ids to email, name and avatar (``resolve_workos_users``).

``GET /user_management/users/{id}`` with the API key as a bearer token; a 404 means "no
such user" (an answer, cached like any other). The answer kept is only what the rules
use: ``{email (lower-cased, valid or null), name (first + last), avatar}``. Answers are
cached in the ledger (``lookups``, namespace ``workos-user``), so a re-run, a rollback
or a verify asks WorkOS nothing and sees the same answers. Only ids shaped like WorkOS
user ids (``user_…``) are looked up, as in the original importer. The key never reaches
a log, the ledger or an error message (``ledger.http`` masks it).
"""

from __future__ import annotations

from typing import Any

from ledger.kit import Api, ChatledgerError, PermanentError
from sinks.laravel.identity import is_valid_email, looks_like_workos_id

NAMESPACE = "workos-user"


class WorkosDirectory:
    def __init__(self, base_url: str, api_key: str, lookups: Any) -> None:
        self.api = Api(base_url, headers={"Authorization": f"Bearer {api_key}"}, secrets=(api_key,))
        self.lookups = lookups

    def close(self) -> None:
        self.api.close()

    def resolve(self, workos_id: str) -> dict[str, Any] | None:
        """``{email, name, avatar}`` of a WorkOS user, or None (unknown, not WorkOS-shaped)."""
        if not looks_like_workos_id(workos_id):
            return None
        return self.lookups.cached(NAMESPACE, workos_id, lambda: self._fetch(workos_id))

    def _fetch(self, workos_id: str) -> dict[str, Any] | None:
        try:
            user = self.api.json("GET", f"/user_management/users/{workos_id}")
        except PermanentError as exc:
            if exc.status == 404:
                return None
            if exc.status in (401, 403):  # every lookup would fail the same way: stop the run
                raise ChatledgerError(f"WorkOS refused the API key: {exc}") from None
            raise
        email = str(user.get("email") or "").strip().lower()
        name = " ".join(str(user.get(part) or "").strip() for part in ("first_name", "last_name")).strip()
        return {
            "email": email if is_valid_email(email) else None,
            "name": name or None,
            "avatar": (user.get("profile_picture_url") or "").strip() or None,
        }
