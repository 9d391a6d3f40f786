"""Read-only questions to the ledger: a record's history, its audit trail, the status."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, func, or_, select

from ledger import locks, runs
from ledger.canonical import loads
from ledger.payloads import load_documents
from ledger.schema import checkpoints, events, heads, rejects, target_state, targets, writes
from ledger.store import Ledger


def utc(value: Any) -> dt.datetime | None:
    """A stored timestamp as an aware UTC datetime (SQLite hands back naive UTC)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def rfc3339(value: Any) -> str | None:
    """RFC 3339 with its zone (UTC), as every structured output gives times."""
    moment = utc(value)
    return moment.isoformat() if moment else None


def json_ref(text: str | None) -> Any:
    """A stored target reference (JSON text) as the JSON value it is."""
    if text is None:
        return None
    try:
        return loads(text)
    except ValueError:  # an old or hand-made reference that is not JSON: keep it
        return text


def streams(ledger: Ledger) -> list[str]:
    with ledger.read() as conn:
        return list(conn.scalars(select(checkpoints.c.stream).distinct().order_by("stream")))


def source_types(ledger: Ledger, names: list[str]) -> dict[str, str]:
    """stream → the source type of its latest extraction (what a sink may know of it)."""
    out: dict[str, str] = {}
    for name in names:
        for run in runs.list_runs(ledger, stream=name, command="extract", limit=1):
            source_type = (run.args.get("source") or {}).get("type")
            if source_type:
                out[name] = source_type
    return out


def history(
    ledger: Ledger, key: str, *, stream: str | None = None, with_data: bool = False
) -> list[dict[str, Any]]:
    """Every version of ``key`` (in ``stream``, or in every stream that has it)."""
    wanted = [stream] if stream else streams(ledger)
    out: list[dict[str, Any]] = []
    with ledger.read() as conn:
        for name in wanted:
            rows = conn.execute(
                select(events).where(events.c.stream == name, events.c.key == key).order_by(events.c.version)
            ).all()
            out += [dict(row._mapping) for row in rows]
        if with_data:
            documents = load_documents(conn, [row["hash"] for row in out if row["hash"]])
            for row in out:
                document = documents.get(row["hash"]) if row["hash"] else None
                if document is not None:
                    row.update(data=document["data"], raw=document["raw"], refs=document["refs"])
    for row in out:
        row["recorded_at"] = rfc3339(row["recorded_at"])
    return out


def key_writes(ledger: Ledger, key: str, *, stream: str | None = None) -> list[dict[str, Any]]:
    """Every write of every version of ``key`` into any target."""
    query = select(writes).where(writes.c.key == key).order_by(writes.c.id)
    if stream:
        query = query.where(writes.c.stream == stream)
    with ledger.read() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)]
    for row in rows:
        row["at"] = rfc3339(row["at"])
        row["target_ref"] = json_ref(row["target_ref"])
    return rows


def audit(ledger: Ledger, key: str, *, stream: str | None = None) -> dict[str, Any]:
    return {
        "key": key,
        "versions": history(ledger, key, stream=stream),
        "writes": key_writes(ledger, key, stream=stream),
    }


def run_rejects(ledger: Ledger, run_id: int, limit: int = 100) -> list[dict[str, Any]]:
    """The rejects a run recorded, and those it found again (an extraction records each
    distinct bad input once: ``last_run`` is the latest run that found it)."""
    with ledger.read() as conn:
        rows = conn.execute(
            select(rejects)
            .where(or_(rejects.c.run_id == run_id, rejects.c.last_run == run_id))
            .order_by(rejects.c.id)
            .limit(limit)
        ).all()
    return [dict(row._mapping) | {"at": rfc3339(row.at)} for row in rows]


def status(ledger: Ledger) -> dict[str, Any]:
    if not ledger.read_only:  # a read-only ledger shows dead runs as they were left
        runs.reap_interrupted(ledger)
    out: dict[str, Any] = {
        "ledger": ledger.display_url,
        "schema_revision": ledger.revisions[1],
        "streams": {},
        "targets": {},
    }
    with ledger.read() as conn:
        counts = conn.execute(
            select(heads.c.stream, heads.c.kind, heads.c.deleted, func.count())
            .group_by(heads.c.stream, heads.c.kind, heads.c.deleted)
            .order_by(heads.c.stream, heads.c.kind)
        ).all()
        for stream, kind, deleted, count in counts:
            entry = out["streams"].setdefault(stream, {"kinds": {}})
            kinds = entry["kinds"].setdefault(kind, {"live": 0, "deleted": 0})
            kinds["deleted" if deleted else "live"] += count
        scope_rows = conn.execute(
            select(checkpoints.c.stream, checkpoints.c.complete, func.count()).group_by(
                checkpoints.c.stream, checkpoints.c.complete
            )
        ).all()
        for stream, complete, count in scope_rows:
            entry = out["streams"].setdefault(stream, {"kinds": {}})
            scopes = entry.setdefault("scopes", {"complete": 0, "unfinished": 0})
            scopes["complete" if complete else "unfinished"] += count
        for row in conn.execute(select(targets).order_by(targets.c.name)):
            out["targets"][row.name] = {"sink": row.sink, "description": row.description}
        state_counts = conn.execute(
            select(target_state.c.target, target_state.c.kind, func.count()).group_by(
                target_state.c.target, target_state.c.kind
            )
        ).all()
        for target, kind, count in state_counts:
            entry = out["targets"].setdefault(target, {})
            entry.setdefault("kinds", {})[kind] = count
    for stream, entry in out["streams"].items():
        last = runs.list_runs(ledger, stream=stream, limit=1)
        if last:
            entry["last_run"] = {
                "id": last[0].id,
                "command": last[0].command,
                "status": last[0].status,
                "started_at": rfc3339(last[0].started_at),
            }
    out["locks"] = [
        {
            "name": lock["name"],
            "run_id": lock["run_id"],
            "holder": f"pid {lock['pid']} on {lock['host']}",
            "since": rfc3339(lock["acquired_at"]),
            "stale": lock["stale"],
        }
        for lock in locks.list_locks(ledger)
    ]
    unfinished = [run for run in runs.list_runs(ledger, limit=20) if run.status in ("running", "interrupted")]
    out["unfinished_runs"] = [
        {
            "id": run.id,
            "command": run.command,
            "stream": run.stream,
            "target": run.target,
            "status": run.status,
        }
        for run in unfinished
    ]
    return out


def _documents(conn: Connection, rows: list[Any]) -> Iterator[tuple[Any, dict[str, Any]]]:
    """(head row, its latest record's canonical data), decoded 500 at a time. A record
    inside a conversation (a message) is not decoded: its conversation names its owner."""
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        documents = load_documents(conn, [row.hash for row in chunk if not _in_conversation(row)])
        for row in chunk:
            yield row, (documents.get(row.hash) or {}).get("data") or {}


def _in_conversation(row: Any) -> bool:
    return bool(row.conversation) and row.kind != "conversation"


def _heads(
    conn: Connection, *, stream: str | None, kinds: list[str] | None, limit: int | None = None
) -> list[Any]:
    query = select(heads).order_by(heads.c.stream, heads.c.kind, heads.c.key).limit(limit)
    if stream:
        query = query.where(heads.c.stream == stream)
    if kinds:
        query = query.where(heads.c.kind.in_(kinds))
    return conn.execute(query).all()


class Owners:
    """Who owns what in the ledger, read from the canonical data: a user owns itself, a
    conversation or file its ``owner``, a message its conversation's owner."""

    def __init__(self, conn: Connection, stream: str | None) -> None:
        self.email: dict[tuple[str, str], str] = {}
        self.of_conversation: dict[tuple[str, str], str] = {}
        for row, data in _documents(conn, _heads(conn, stream=stream, kinds=["user", "conversation"])):
            if row.kind == "user" and isinstance(data.get("email"), str):
                self.email[(row.stream, row.key)] = data["email"]
            elif row.kind == "conversation" and isinstance(data.get("owner"), str):
                self.of_conversation[(row.stream, row.key)] = data["owner"]

    def owner(self, row: Any, data: dict[str, Any]) -> str | None:
        if row.kind == "user":
            return row.key
        if isinstance(data.get("owner"), str) and data["owner"]:
            return data["owner"]
        if row.conversation:
            return self.of_conversation.get((row.stream, row.conversation))
        return None

    def users_named(self, who: str) -> set[tuple[str, str]]:
        """(stream, user key) of the users with this email (any case) or this key."""
        wanted = who.casefold()
        found = {place for place, email in self.email.items() if email.casefold() == wanted}
        return found | {place for place in self.email if place[1] == who}


def _title(kind: str, data: dict[str, Any]) -> str | None:
    name = data.get("title") if kind == "conversation" else data.get("name") or data.get("filename")
    return name if isinstance(name, str) and name else None


def keys(
    ledger: Ledger,
    *,
    kind: str | None = None,
    owner: str | None = None,
    title: str | None = None,
    stream: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Record keys, to find what to pass to ``history`` and ``audit``: by kind, by owner
    (email or user key), by a substring of the title (conversations), name (users) or
    file name (files)."""
    out: list[dict[str, Any]] = []
    with ledger.read() as conn:
        owners = Owners(conn, stream)
        wanted_users = owners.users_named(owner) if owner else None
        unfiltered = owner is None and title is None  # then the database can stop at the limit
        found = _heads(
            conn, stream=stream, kinds=[kind] if kind else None, limit=limit if unfiltered else None
        )
        for row, data in _documents(conn, found):
            owned_by = owners.owner(row, data)
            named = _title(row.kind, data)
            if wanted_users is not None and (row.stream, owned_by) not in wanted_users:
                continue
            if title and (named is None or title.casefold() not in named.casefold()):
                continue
            out.append(
                {
                    "stream": row.stream,
                    "kind": row.kind,
                    "key": row.key,
                    "version": row.version,
                    "deleted": bool(row.deleted),
                    "owner": owned_by,
                    "owner_email": owners.email.get((row.stream, owned_by)) if owned_by else None,
                    "title": named,
                    "last_run": row.last_run,
                }
            )
            if len(out) >= limit:
                break
    return out


def owner_audit(ledger: Ledger, who: str, *, stream: str | None = None, recent: int = 20) -> dict[str, Any]:
    """What happened to one user's records: per stream and kind what the ledger holds,
    per target, kind and action how many writes, and the latest writes."""
    with ledger.read() as conn:
        owners = Owners(conn, stream)
        users = owners.users_named(who)
        owned: dict[tuple[str, str], str] = {}  # (stream, key) → kind
        records: dict[tuple[str, str], dict[str, int]] = {}
        for row, data in _documents(conn, _heads(conn, stream=stream, kinds=None)):
            if (row.stream, owners.owner(row, data)) not in users:
                continue
            owned[(row.stream, row.key)] = row.kind
            counts = records.setdefault((row.stream, row.kind), {"live": 0, "deleted": 0})
            counts["deleted" if row.deleted else "live"] += 1
        actions: dict[tuple[str, str, str], int] = {}
        latest: list[dict[str, Any]] = []
        for start in range(0, len(owned), 500):
            chunk = list(owned)[start : start + 500]
            for stream_name in {place[0] for place in chunk}:
                found = conn.execute(
                    select(writes).where(
                        writes.c.stream == stream_name,
                        writes.c.key.in_([key for name, key in chunk if name == stream_name]),
                    )
                ).all()
                for write in found:
                    kind = owned[(write.stream, write.key)]
                    actions[(write.target, kind, write.action)] = (
                        actions.get((write.target, kind, write.action), 0) + 1
                    )
                    latest.append(dict(write._mapping))
    latest.sort(key=lambda write: write["id"], reverse=True)
    latest = latest[:recent]
    for write in latest:
        write["at"] = rfc3339(write["at"])
        write["target_ref"] = json_ref(write["target_ref"])
    return {
        "owner": who,
        "users": sorted(key for _, key in users),
        "records": [
            {"stream": name, "kind": kind} | counts for (name, kind), counts in sorted(records.items())
        ],
        "writes": [
            {"target": target, "kind": kind, "action": action, "count": count}
            for (target, kind, action), count in sorted(actions.items())
        ],
        "recent": latest,
    }
