"""``rollback RUN``: undo what one run wrote to its target (DESIGN §5).

Every write of the run is reverted to the version the target held before it: an insert
is removed, an update re-applies the prior version, a delete re-inserts it. Units are
rewritten whole, so a conversation comes back exactly as it was. The rollback is a run
of its own, with its own writes, so it can be rolled back too.

It refuses (unless ``force``) when the target moved on since: a later run wrote one of
the records, or the target no longer shows what the run wrote (someone edited it:
``verify`` would report it drifted).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ledger import runs
from ledger.canonical import loads
from ledger.errors import ChatledgerError, UsageError
from ledger.progress import Progress
from ledger.records import REPLAY_ORDER
from ledger.replay import ReplayResult, ReplaySettings, _Run
from ledger.replay.plan import UnitBuilder, Wanted, held_rows, unit_key_of
from ledger.schema import heads, target_state, writes
from ledger.sink import Sink
from ledger.sql import chunks
from ledger.store import Ledger

WRITING_COMMANDS = ("replay", "rollback", "repair")


def runs_to_undo(ledger: Ledger, run_id: int) -> list[runs.Run]:
    """The run itself, or a migrate's replay part."""
    run = runs.get_run(ledger, run_id)
    if run is None:
        raise UsageError(f"there is no run {run_id}")
    if run.command in WRITING_COMMANDS:
        return [run]
    # a migrate's replay is its child; rollbacks also name the run they undo as parent
    children = [
        child
        for child in runs.list_runs(ledger, limit=1000)
        if child.parent_run_id == run_id and child.command == "replay"
    ]
    if not children:
        raise UsageError(f"run {run_id} is a {run.command} run: it wrote nothing to a target")
    return children


def _first_writes(ledger: Ledger, run_ids: list[int]) -> list[Any]:
    """Each key's first write in these runs (its prior state is what comes back)."""
    with ledger.read() as conn:
        rows = conn.execute(
            select(writes).where(writes.c.run_id.in_(run_ids)).order_by(writes.c.id)
        ).all()
    first: dict[tuple[str, str], Any] = {}
    for row in rows:
        first.setdefault((row.stream, row.key), row)
    last = {(row.stream, row.key): row for row in rows}
    return [(first[key], last[key]) for key in first]


def _held(ledger: Ledger, target: str, pairs: list) -> dict[tuple[str, str], Any]:
    """What the target holds now (by target_state) of each key the run wrote: read once,
    under the target lock, for the checks and the rollback itself."""
    by_stream: dict[str, list[str]] = {}
    for _first, last in pairs:
        by_stream.setdefault(last.stream, []).append(last.key)
    found: dict[tuple[str, str], Any] = {}
    with ledger.read() as conn:
        for stream, keys in by_stream.items():
            for chunk in chunks(keys):
                rows = conn.execute(
                    select(target_state).where(
                        target_state.c.target == target,
                        target_state.c.stream == stream,
                        target_state.c.key.in_(chunk),
                    )
                )
                found.update({(row.stream, row.key): row for row in rows})
    return found


def _conflicts(
    ledger: Ledger, sink: Sink, target: str, pairs: list, run_ids: list[int], held: dict
) -> list[str]:
    problems = []
    for _first, last in pairs:
        now = held.get((last.stream, last.key))
        if last.action == "delete":
            if now is not None:
                problems.append(f"{last.key}: written again by run {now.run_id} since")
        elif now is None:
            problems.append(f"{last.key}: removed from the target since")
        elif now.hash != last.hash or now.run_id not in run_ids:
            problems.append(f"{last.key}: written again by run {now.run_id} since")
    return problems + _drift(ledger, sink, target, pairs, held)


def _drift(ledger: Ledger, sink: Sink, target: str, pairs: list, held: dict) -> list[str]:
    """Units whose target no longer shows what the ledger recorded for them."""
    wanted_units: dict[str, set[str]] = {}
    with ledger.read() as conn:
        for _first, last in pairs:
            row = held.get((last.stream, last.key))
            if row is not None:
                unit = unit_key_of(row.kind, last.key, row.conversation, sink)
                wanted_units.setdefault(last.stream, set()).add(unit)
        problems = []
        for stream, unit_keys in wanted_units.items():
            rows = [
                w
                for w in held_rows(conn, target, stream, units=sorted(unit_keys))
                if unit_key_of(w.kind, w.key, w.conversation, sink) in unit_keys
            ]
            for units in UnitBuilder(conn, target, sink, 2**62).batches(rows):
                actual = sink.read_back(units)
                for unit in units:
                    if actual.get(unit.key) != sink.fingerprint(unit):
                        problems.append(f"{unit.key}: changed in the target since it was written")
    return problems


def rollback(
    ledger: Ledger,
    sink: Sink,
    run_id: int,
    *,
    force: bool = False,
    settings: ReplaySettings | None = None,
    progress: Progress | None = None,
    args: dict[str, Any] | None = None,
) -> ReplayResult:
    settings = settings or ReplaySettings()
    undone = runs_to_undo(ledger, run_id)
    run_ids = [run.id for run in undone]
    if any(run.target != sink.target for run in undone):
        raise UsageError(f"run {run_id} wrote to {undone[0].target!r}, not {sink.target!r}")
    pairs = _first_writes(ledger, run_ids)
    if settings.dry_run:
        counts: dict[str, int] = {}
        for first, _last in pairs:
            action = "delete" if first.prior_hash is None else "restore"
            counts[action] = counts.get(action, 0) + 1
        return ReplayResult(None, "dry-run", {"plan": {"rollback": counts}, "runs": run_ids})

    def body(run: _Run) -> None:
        run.extra["rolls_back"] = run_ids
        held = _held(ledger, sink.target, pairs)
        problems = _conflicts(ledger, sink, sink.target, pairs, run_ids, held)
        if problems and not force:
            shown = "; ".join(problems[:10]) + (f"; … {len(problems) - 10} more" if len(problems) > 10 else "")
            raise ChatledgerError(
                f"refusing to roll back run {run_id}: the target changed since ({shown}). "
                "Run verify to see the differences, or use --force to roll back anyway."
            )
        run.extra["forced_over"] = len(problems)
        wanted = _wanted(ledger, sink, pairs, held)
        applier = run.applier(settings.retry)
        with ledger.read() as conn:
            for units in UnitBuilder(conn, sink.target, sink, settings.batch_records).batches(wanted):
                applier.apply(units)

    return _Run(
        ledger, sink, "rollback", args=args, parent_run_id=run_id, progress=progress
    ).execute(body)


def _wanted(ledger: Ledger, sink: Sink, pairs: list, held_by_key: dict) -> list[Wanted]:
    """Each key back at its prior version (or removed), sorted into unit order."""
    out = []
    with ledger.read() as conn:
        for first, last in pairs:
            held = held_by_key.get((last.stream, last.key))
            head = conn.execute(
                select(heads.c.kind, heads.c.conversation).where(
                    heads.c.stream == last.stream, heads.c.key == last.key
                )
            ).first()
            kind = held.kind if held else head.kind
            conversation = held.conversation if held else head.conversation if head else None
            out.append(
                Wanted(
                    last.stream,
                    last.key,
                    kind,
                    conversation,
                    first.prior_version if first.prior_version is not None else last.version,
                    first.prior_hash,
                    held.version if held else None,
                    held.hash if held else None,
                    loads(held.target_ref) if held and held.target_ref else None,
                )
            )

    def order(w: Wanted):
        unit = unit_key_of(w.kind, w.key, w.conversation, sink)
        unit_kind = "conversation" if unit != w.key or w.kind == "conversation" else w.kind
        return (w.stream, REPLAY_ORDER.get(unit_kind, 99), unit, w.key)

    return sorted(out, key=order)
