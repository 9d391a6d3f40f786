"""The replay run (DESIGN §5): plan → units → batches into one target, under the run
lifecycle.

``replay`` plans (heads vs target_state), groups records into the sink's units, applies
them in batches and records every write. Policies: ``merge`` (default; source deletes
only with ``propagate_deletes``), ``insert-only`` and ``replace`` (the selection is
removed and written again in one target transaction, optionally after truncating the
sink's tables). ``rollback``, ``verify`` and ``repair`` live beside it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from ledger import lifecycle, locks, runs
from ledger.dialects import upsert
from ledger.errors import ChatledgerError, UsageError
from ledger.memory import peak_rss_mb
from ledger.prefetch import Prefetch, quick_handoffs
from ledger.progress import NoProgress, Progress
from ledger.replay.engine import Applier, ReplayStats, reconcile, table_label
from ledger.replay.plan import (
    MERGE,
    POLICIES,
    REPLACE,
    UnitBuilder,
    changed_rows,
    plan_counts,
    prepared_batches,
    selected_counts,
)
from ledger.replay.workers import PreparingWorkers, preparing_workers
from ledger.retry import RetryPolicy
from ledger.runs import utcnow
from ledger.schema import target_state, targets
from ledger.sink import Sink, Unit
from ledger.store import Ledger
from ledger.timeline import Timeline


@dataclass
class ReplaySettings:
    policy: str = MERGE
    propagate_deletes: bool = False
    truncate: bool = False  # replace only: empty the sink's tables first
    scope: str | None = None  # one extraction scope of the streams (e.g. user:0000007)
    dry_run: bool = False
    #: forget what the ledger believes the target holds and write everything again (a
    #: target that was replaced by a new or restored database)
    resync: bool = False
    batch_records: int = 1000
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: processes making the sink's rows (None: one per core up to 4, for a large replay)
    workers: int | None = None

    def selection(self) -> dict[str, Any]:
        """What picks the records to replay (the planner's keyword arguments)."""
        return {"policy": self.policy, "propagate_deletes": self.propagate_deletes, "scope": self.scope}

    def check(self) -> None:
        if self.policy not in POLICIES:
            raise UsageError(f"unknown policy {self.policy!r} (policies: {', '.join(POLICIES)})")
        if self.truncate and self.policy != REPLACE:
            raise UsageError("--truncate goes with --policy replace")


@dataclass
class ReplayResult:
    run_id: int | None
    status: str
    stats: dict[str, Any]


def register_target(ledger: Ledger, sink: Sink) -> None:
    with ledger.write() as conn:
        exists = conn.scalar(select(targets.c.name).where(targets.c.name == sink.target))
        upsert(
            conn,
            targets,
            [
                {
                    "name": sink.target,
                    "sink": sink.type_name,
                    "description": sink.describe(),
                    "created_at": utcnow(),
                }
            ],
            ["name"],
            ["sink", "description"] if exists else None,
        )


class TargetRun:
    """A writing run against one target (the run lifecycle with the target lock), with the
    sink opened, markers reconciled and stats saved with every batch."""

    def __init__(
        self,
        ledger: Ledger,
        sink: Sink,
        command: str,
        *,
        args: dict[str, Any] | None,
        parent_run_id: int | None,
        progress: Progress | None,
    ) -> None:
        self.ledger = ledger
        self.sink = sink
        self.command = command
        self.args = args
        self.parent_run_id = parent_run_id
        self.progress = progress or NoProgress()
        self.stats = ReplayStats()
        self.extra: dict[str, Any] = {}
        self.started = time.monotonic()
        self.timeline = Timeline(self.started)
        self.run_id: int | None = None

    def summary(self) -> dict[str, Any]:
        stats = self.stats.as_json()
        # counted outside a batch (open, finish, previews); a copy, as the sink may be
        # counting in another thread while a batch is recorded
        leftover = dict(self.sink.counters)
        if leftover:
            merged = dict(stats.get("sink", {}))
            for name, value in leftover.items():
                merged[name] = merged.get(name, 0) + value
            stats["sink"] = dict(sorted(merged.items()))
        return {
            **stats,
            **self.extra,
            "seconds": round(time.monotonic() - self.started, 3),
            "peak_rss_mb": peak_rss_mb(),
            "timeline": self.timeline.as_json(),
        }

    def save(self, conn) -> None:
        self.timeline.sample(self.stats.written + self.stats.skipped)
        runs.save_stats(conn, self.run_id, self.summary())

    def applier(self, retry: RetryPolicy, truncate: bool = False) -> Applier:
        return Applier(
            self.ledger,
            self.sink,
            self.run_id,
            retry=retry,
            progress=self.progress,
            stats=self.stats,
            save=self.save,
            truncate=truncate,
        )

    def execute(self, body) -> ReplayResult:
        """Run ``body(self)`` holding the target lock; the run ends ``with-rejects`` when
        units were rejected (the others landed)."""
        with lifecycle.run(
            self.ledger,
            self.command,
            stats=self.summary,
            target=self.sink.target,
            args=self.args,
            parent_run_id=self.parent_run_id,
            lock=locks.target_lock(self.sink.target),
        ) as active:
            self.run_id = active.id
            self.sink.open()
            try:
                register_target(self.ledger, self.sink)
                self.stats.reconciled = reconcile(self.ledger, self.sink, self.run_id)
                body(self)
                self.sink.settle()
            finally:
                self.sink.close()
            if self.stats.rejected_units:
                active.finish(
                    runs.WITH_REJECTS,
                    f"{self.stats.rejected_units} unit(s) rejected; see chatledger report {self.run_id}",
                )
        status = active.outcome[0] if active.outcome else runs.SUCCEEDED
        return ReplayResult(self.run_id, status, self.summary())


def check_identity(ledger: Ledger, sink: Sink) -> None:
    """Refuse a target the ledger believes holds records but that has none of its
    markers: the name now points at a new or restored database, and trusting
    ``target_state`` would write nothing."""
    markers = sink.marker_count()
    if markers is None or markers > 0:
        return
    with ledger.read() as conn:
        held = conn.scalar(
            select(func.count())
            .select_from(target_state)
            .where(target_state.c.target == sink.target, target_state.c.skipped.is_(False))
        )
    if held:
        raise ChatledgerError(
            f"target {sink.target!r}: the ledger's records say it holds {held:,} record(s), but "
            "the target has none of chatledger's markers, so it is not the database those runs "
            f"wrote to (a new or restored one?). Point {sink.target!r} back at that database, or "
            f"write everything again with: chatledger replay {sink.target} --resync"
        )


def forget_target_state(ledger: Ledger, target: str, streams: list[str]) -> int:
    """``replay --resync``: the ledger forgets what it believed the target holds."""
    with ledger.write() as conn:
        result = conn.execute(
            target_state.delete().where(target_state.c.target == target, target_state.c.stream.in_(streams))
        )
    return result.rowcount


def check_target(sink: Sink) -> dict[str, Any]:
    """A dry run's check of the target (:meth:`Sink.check`): raises when it is
    unreachable or refuses a right a run needs; what it noted goes into the stats. The
    sink is made read-only first: a dry run writes nothing, whoever built the sink."""
    sink.context.read_only = True
    return {"check": {"target": sink.target, "reachable": True, "notes": sink.check()}}


def dry_run_plan(
    ledger: Ledger, sink: Sink, streams: list[str], settings: ReplaySettings
) -> dict[str, dict[str, int]]:
    """Per kind and target table: insert, update, delete, skip. Writes nothing."""
    out: dict[str, dict[str, int]] = {}
    with ledger.read() as conn:
        for stream in streams:
            plan = plan_counts(conn, sink.target, stream, sink, **settings.selection())
            for kind, counts in plan.counts.items():
                target = out.setdefault(table_label(sink, kind), dict.fromkeys(counts, 0))
                for action, value in counts.items():
                    target[action] += value
    return out


def preview(ledger: Ledger, sink: Sink, streams: list[str], settings: ReplaySettings) -> dict[str, Any]:
    """The sink's own account of a dry run (``Sink.preview``); reads, writes nothing."""
    if not sink.preview_kinds:
        return {}
    notes: dict[str, Any] = {}
    sink.open()
    try:
        with ledger.read() as conn:
            for stream in streams:
                changed = changed_rows(conn, sink.target, stream, sink, **settings.selection())
                wanted = (w for w in changed if w.kind in sink.preview_kinds)
                for units in UnitBuilder(conn, sink.target, sink, settings.batch_records).batches(wanted):
                    _merge(notes, sink.preview(units))
    finally:
        sink.close()
    return {"preview": notes}


def _merge(into: dict[str, Any], more: dict[str, Any]) -> None:
    """Lists extend, numbers add, objects merge."""
    for key, value in more.items():
        if isinstance(value, dict):
            _merge(into.setdefault(key, {}), value)
        elif isinstance(value, list):
            into.setdefault(key, []).extend(value)
        else:
            into[key] = into.get(key, 0) + value


def planned_batches(
    ledger: Ledger,
    sink: Sink,
    stream: str,
    settings: ReplaySettings,
    batch_records: int,
    workers: PreparingWorkers | None,
) -> Callable[[], Iterator[list[Unit]]]:
    """The batches of units a replay of ``stream`` applies, read from the ledger (plan,
    payloads, the sink's ``prepare``), for a :class:`Prefetch` reader thread."""

    def produce() -> Iterator[list[Unit]]:
        with ledger.read() as conn:
            wanted = changed_rows(conn, sink.target, stream, sink, **settings.selection())
            builder = UnitBuilder(
                conn,
                sink.target,
                sink,
                batch_records,
                force=settings.policy == REPLACE,
                stored=workers is not None,
            )
            yield from prepared_batches(sink, builder.batches(wanted), workers)

    return produce


def replay(
    ledger: Ledger,
    sink: Sink,
    streams: list[str],
    *,
    settings: ReplaySettings | None = None,
    progress: Progress | None = None,
    args: dict[str, Any] | None = None,
    parent_run_id: int | None = None,
) -> ReplayResult:
    """Replay ``streams`` into ``sink`` as one run."""
    settings = settings or ReplaySettings()
    settings.check()
    if settings.dry_run:
        checked = check_target(sink)
        stats = {"plan": dry_run_plan(ledger, sink, streams, settings)}
        return ReplayResult(None, "dry-run", stats | checked | preview(ledger, sink, streams, settings))

    def body(run: TargetRun) -> None:
        run.extra["policy"] = settings.policy
        if settings.resync:
            run.extra["forgotten"] = forget_target_state(ledger, sink.target, streams)
        else:
            check_identity(ledger, sink)
        applier = run.applier(settings.retry, truncate=settings.truncate)
        batch_records = settings.batch_records if settings.policy != REPLACE else 2**62
        with ledger.read() as conn:  # and the progress bar's total (records to change)
            selected = {
                stream: selected_counts(conn, sink.target, stream, **settings.selection())
                for stream in streams
            }
        changing = sum(counts.changed for counts in selected.values())
        # forked before any thread of the run starts (the progress bar's included)
        with preparing_workers(sink, changing, settings.workers) as workers, quick_handoffs():
            run.extra["workers"] = workers.count if workers else 0
            run.progress.start(f"replay {sink.target}", changing)
            try:
                for stream in streams:
                    if settings.policy != REPLACE:
                        for kind, count in selected[stream].unchanged.items():
                            run.stats.add(table_label(sink, kind), "unchanged", count)
                    batches = planned_batches(ledger, sink, stream, settings, batch_records, workers)
                    # threads: the ledger read ahead, the target written, the ledger recorded behind
                    with Prefetch(batches, name="replay-reader") as ahead, applier.recording_behind():
                        for units in ahead:
                            applier.apply(units)
                if applier.truncate:  # nothing to write, but the tables still get emptied
                    applier.apply_truncate_only()
            finally:
                run.progress.finish()

    return TargetRun(
        ledger, sink, "replay", args=args, parent_run_id=parent_run_id, progress=progress
    ).execute(body)
