"""Who owns something to migrate: the user keys that own a live conversation or file.

A sink that makes accounts (Onyx registers one per user) must not make one for a user
who owns nothing in the stream (every chat of theirs was rejected, or they never had
one): :class:`ledger.sink.SinkContext` offers this set to sinks as
``owners_with_content(stream)``. It reads the live ``conversation`` and ``file`` heads
of the stream once (their canonical ``owner``); sinks ask only when they are about to
create an account, so a replay that creates none never pays for it.
"""

from __future__ import annotations

from sqlalchemy import select

from ledger.payloads import load_documents
from ledger.schema import heads
from ledger.store import Ledger

OWNED_KINDS = ("conversation", "file")


def content_owners(ledger: Ledger, stream: str) -> frozenset[str]:
    """User keys owning at least one live conversation or file of ``stream``."""
    owners: set[str] = set()
    with ledger.read() as conn:
        hashes = conn.execute(
            select(heads.c.hash).where(
                heads.c.stream == stream, heads.c.kind.in_(OWNED_KINDS), heads.c.deleted.is_(False)
            )
        ).scalars()
        for document in load_documents(conn, list(hashes)).values():
            owner = (document.get("data") or {}).get("owner")
            if isinstance(owner, str) and owner:
                owners.add(owner)
    return frozenset(owners)
