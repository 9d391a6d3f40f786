"""Answers of external services, cached in the ledger (table ``lookups``).

``cached(ledger, "workos-user", user_id, fetch)`` returns the stored answer, or calls
``fetch()`` once and stores what it returns (None too: "not found" is an answer). A
re-run or a dry run then sees the same answers without asking the service again.
``refresh=True`` asks again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from ledger.canonical import canonical_text, loads
from ledger.dialects import upsert
from ledger.errors import ConfigError
from ledger.runs import utcnow
from ledger.schema import lookups
from ledger.store import Ledger

_MISSING = object()


def get(ledger: Ledger, namespace: str, key: str) -> Any:
    """The stored answer, or ``_MISSING`` when nothing is stored."""
    with ledger.read() as conn:
        row = conn.execute(
            select(lookups.c.value).where(lookups.c.namespace == namespace, lookups.c.key == key)
        ).first()
    if row is None:
        return _MISSING
    return loads(row.value) if row.value is not None else None


def put(ledger: Ledger, namespace: str, key: str, value: Any) -> None:
    row = {
        "namespace": namespace,
        "key": key,
        "value": canonical_text(value) if value is not None else None,
        "fetched_at": utcnow(),
    }
    with ledger.write() as conn:
        upsert(conn, lookups, [row], ["namespace", "key"])


def cached(
    ledger: Ledger, namespace: str, key: str, fetch: Callable[[], Any], *, refresh: bool = False
) -> Any:
    if not refresh:
        found = get(ledger, namespace, key)
        if found is not _MISSING:
            return found
    value = fetch()
    put(ledger, namespace, key, value)
    return value


class Lookups:
    """``cached`` bound to one ledger: what sources and sinks get in their context."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def cached(self, namespace: str, key: str, fetch: Callable[[], Any], *, refresh: bool = False) -> Any:
        return cached(self.ledger, namespace, key, fetch, refresh=refresh)


class OwnerMap:
    """What a sink made of each owner in one target (``{"user_id", …}``, None: nothing
    yet), kept in the ledger's lookups so every later run, and a rollback, finds it;
    cached in memory for the run."""

    def __init__(self, lookups: Lookups | None, namespace: str, target: str, sink_name: str) -> None:
        if lookups is None:
            raise ConfigError(
                f"the {sink_name} sink needs the ledger's lookups (build it through ledger.api)"
            )
        self.lookups = lookups
        self.namespace = namespace
        self.target = target
        self.cache: dict[tuple[str, str], Any] = {}

    def _name(self, stream: str, user_key: str) -> str:
        return f"{self.target}\x1f{stream}\x1f{user_key}"

    def get(self, stream: str, user_key: str) -> dict[str, Any] | None:
        if (stream, user_key) not in self.cache:
            self.cache[(stream, user_key)] = self.lookups.cached(
                self.namespace, self._name(stream, user_key), lambda: None
            )
        return self.cache[(stream, user_key)]

    def put(self, stream: str, user_key: str, value: dict[str, Any] | None) -> None:
        self.lookups.cached(self.namespace, self._name(stream, user_key), lambda: value, refresh=True)
        self.cache[(stream, user_key)] = value
