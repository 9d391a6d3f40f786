"""Read-only questions to the ledger: a record's history, its audit trail, the status."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select

from ledger import locks, runs
from ledger.payloads import load_documents
from ledger.schema import checkpoints, events, heads, rejects, target_state, targets, writes
from ledger.store import Ledger


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
        row["recorded_at"] = str(row["recorded_at"])
    return out


def key_writes(ledger: Ledger, key: str, *, stream: str | None = None) -> list[dict[str, Any]]:
    """Every write of every version of ``key`` into any target."""
    query = select(writes).where(writes.c.key == key).order_by(writes.c.id)
    if stream:
        query = query.where(writes.c.stream == stream)
    with ledger.read() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)]
    for row in rows:
        row["at"] = str(row["at"])
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
    return [dict(row._mapping) | {"at": str(row.at)} for row in rows]


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
                "started_at": last[0].started_at.isoformat(),
            }
    out["locks"] = [
        {
            "name": lock["name"],
            "run_id": lock["run_id"],
            "holder": f"pid {lock['pid']} on {lock['host']}",
            "since": str(lock["acquired_at"]),
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
