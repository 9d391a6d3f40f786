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
