"""``rollback RUN``: undo what one run wrote to its target (DESIGN §5).

Every write of the run is reverted to the version the target held before it: an insert
is removed, an update re-applies the prior version, a delete re-inserts it. Units are
rewritten whole, so a conversation comes back exactly as it was. The rollback is a run
of its own, with its own writes, so it can be rolled back too.

Order: the run's writes are undone in reverse. Units that go away (the run inserted
them) are removed children first, messages before conversations before users; units
that come back are then restored parents first, so no restored row points at a parent
that is not there yet.

Resuming: a rollback that was interrupted (or failed) is continued by running it again.
Keys an earlier rollback of the same run already restored, and that the target still
holds as that rollback left them, are not touched again. A rollback that finished is not
repeated ("already rolled back by run N"; roll that rollback back to redo the run).

It refuses (unless ``force``) when the target moved on since: the target_state of a key
no longer holds the content the run wrote (a later run changed it), or the target no
longer shows what the ledger recorded (someone edited it: ``verify`` would report it
drifted). Content, not the run that wrote it, decides: a later run rolled back first,
or a ``repair`` that rewrote exactly what the run wrote, leave the run undoable.

``skip`` writes (a record the sink deliberately did not write) touched nothing in the
target, so there is nothing to undo there: they are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from ledger import runs
from ledger.canonical import loads
from ledger.dialects import chunks
from ledger.errors import ChatledgerError, UsageError
from ledger.progress import Progress
from ledger.records import REPLAY_ORDER
from ledger.replay.plan import UnitBuilder, Wanted, held_rows, unit_key_of
from ledger.replay.runner import ReplayResult, ReplaySettings, TargetRun, check_target
from ledger.schema import heads, target_state, writes
from ledger.sink import Sink
from ledger.store import Ledger

WRITING_COMMANDS = ("replay", "rollback", "repair")
SKIP = "skip"


def runs_to_undo(ledger: Ledger, run_id: int) -> list[runs.Run]:
    """The run itself, or a migrate's replay part."""
    run = runs.get_run(ledger, run_id)
    if run is None:
        raise UsageError(f"there is no run {run_id}")
    if run.command == "rollback":  # with the unfinished rollbacks it continued
        resumed = [runs.get_run(ledger, earlier) for earlier in run.stats.get("resumes", [])]
        return [run, *(earlier for earlier in resumed if earlier is not None)]
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


def earlier_rollbacks(ledger: Ledger, run_id: int, current: int | None = None) -> list[runs.Run]:
    """Rollbacks of ``run_id`` still in effect (not themselves rolled back by a rollback
    that finished), oldest first; ``current`` is the rollback running now."""
    rollbacks = runs.list_runs(ledger, command="rollback", limit=100_000)
    finished_undo = {
        undone
        for r in rollbacks
        if r.status == runs.SUCCEEDED
        for undone in r.stats.get("rolls_back", [r.parent_run_id])
    }
    return sorted(
        (r for r in rollbacks if r.parent_run_id == run_id and r.id != current and r.id not in finished_undo),
        key=lambda r: r.id,
    )


@dataclass
class UndoPlan:
    """What is left to undo: per key, the run's first write (its prior state comes back)
    and the latest write of the key by the run or an earlier rollback of it."""

    pairs: list[tuple[Any, Any]]
    resumed_from: list[int]  # earlier, unfinished rollbacks of the same run
    already_undone: int  # keys an earlier rollback restored


def _writes_of(ledger: Ledger, run_ids: list[int]) -> list[Any]:
    if not run_ids:
        return []
    with ledger.read() as conn:
        return conn.execute(
            select(writes).where(writes.c.run_id.in_(run_ids), writes.c.action != SKIP).order_by(writes.c.id)
        ).all()


def plan_undo(ledger: Ledger, run_id: int, run_ids: list[int], current: int | None) -> UndoPlan:
    earlier = earlier_rollbacks(ledger, run_id, current)
    done = [r for r in earlier if r.status == runs.SUCCEEDED]
    if done:
        raise UsageError(
            f"run {run_id} was already rolled back by run {done[-1].id}; to write it again, "
            f"roll back run {done[-1].id}"
        )
    first: dict[tuple[str, str], Any] = {}
    latest: dict[tuple[str, str], Any] = {}
    for row in _writes_of(ledger, run_ids):
        first.setdefault((row.stream, row.key), row)
        latest[(row.stream, row.key)] = row
    resumed = [r.id for r in earlier]
    undone: dict[tuple[str, str], Any] = {}
    for row in _writes_of(ledger, resumed):
        if (row.stream, row.key) in first:
            undone[(row.stream, row.key)] = row
    pairs = [(first[key], undone.get(key, latest[key])) for key in first]
    return UndoPlan(pairs, resumed, 0)


def _agrees(write: Any, now: Any) -> bool:
    """target_state holds what this write left (content, whichever run wrote it)."""
    if write.action == "delete":
        return now is None
    return now is not None and now.hash == write.hash


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


def _still_to_undo(plan: UndoPlan, held: dict) -> list[tuple[Any, Any]]:
    """Drop the keys an earlier rollback already restored and the target still holds so."""
    resumed = set(plan.resumed_from)
    left = []
    for first, last in plan.pairs:
        if last.run_id in resumed and _agrees(last, held.get((last.stream, last.key))):
            plan.already_undone += 1
            continue
        left.append((first, last))
    return left


def _conflicts(ledger: Ledger, sink: Sink, target: str, pairs: list, held: dict) -> list[str]:
    problems = []
    for _first, last in pairs:
        now = held.get((last.stream, last.key))
        if _agrees(last, now):
            continue
        if now is None:
            problems.append(f"{last.key}: removed from the target since")
        else:
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
    plan = plan_undo(ledger, run_id, run_ids, None)  # refuses a finished rollback up front
    if settings.dry_run:
        checked = check_target(sink)
        pairs = _still_to_undo(plan, _held(ledger, sink.target, plan.pairs))
        counts: dict[str, int] = {"already_undone": plan.already_undone}
        for first, _last in pairs:
            action = "delete" if first.prior_hash is None else "restore"
            counts[action] = counts.get(action, 0) + 1
        return ReplayResult(None, "dry-run", {"plan": {"rollback": counts}, "runs": run_ids} | checked)

    def body(run: TargetRun) -> None:
        # again under the target lock: another rollback of the run may have finished
        plan = plan_undo(ledger, run_id, run_ids, run.run_id)
        run.extra["rolls_back"] = run_ids
        held = _held(ledger, sink.target, plan.pairs)
        pairs = _still_to_undo(plan, held)
        run.extra.update(resumes=plan.resumed_from, already_undone=plan.already_undone)
        problems = _conflicts(ledger, sink, sink.target, pairs, held)
        if problems and not force:
            shown = "; ".join(problems[:10]) + (
                f"; … {len(problems) - 10} more" if len(problems) > 10 else ""
            )
            raise ChatledgerError(
                f"refusing to roll back run {run_id}: the target changed since ({shown}). "
                "Run verify to see the differences, or use --force to roll back anyway."
            )
        run.extra["forced_over"] = len(problems)
        wanted = _wanted(ledger, sink, pairs, held)
        applier = run.applier(settings.retry)
        changing = sum(1 for w in wanted if w.hash != w.held_hash)  # the records the applier counts
        run.progress.start(f"rollback run {run_id}", changing)
        try:
            with ledger.read() as conn:
                for units in UnitBuilder(conn, sink.target, sink, settings.batch_records).batches(wanted):
                    applier.apply(units)
        finally:
            run.progress.finish()

    return TargetRun(ledger, sink, "rollback", args=args, parent_run_id=run_id, progress=progress).execute(
        body
    )


def _wanted(ledger: Ledger, sink: Sink, pairs: list, held_by_key: dict) -> list[Wanted]:
    """Each key back at its prior version (or removed), in undo order (module doc)."""
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
    return undo_order(out, sink)


def undo_order(wanted: list[Wanted], sink: Sink) -> list[Wanted]:
    """Removed units first, children before parents; then restored units, parents first.
    A unit is removed when its own record goes (a conversation takes its messages)."""

    def unit_of(w: Wanted) -> tuple[str, str]:
        return (w.stream, unit_key_of(w.kind, w.key, w.conversation, sink))

    removed = {unit_of(w) for w in wanted if w.hash is None and unit_of(w)[1] == w.key}

    def position(w: Wanted) -> tuple:
        stream, unit = unit_of(w)
        unit_kind = "conversation" if unit != w.key or w.kind == "conversation" else w.kind
        return (stream, REPLAY_ORDER.get(unit_kind, 99), unit)

    going = sorted((w for w in wanted if unit_of(w) in removed), key=position, reverse=True)
    coming = sorted((w for w in wanted if unit_of(w) not in removed), key=position)
    return going + coming
