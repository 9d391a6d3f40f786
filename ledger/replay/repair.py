"""``repair TARGET RULE``: named, deterministic fix-ups (DESIGN §5).

A rule reads the desired state from the ledger and the actual state from the target and
writes only the difference, so a second run writes nothing. Every sink offers
``resync`` (rewrite the units verify would call missing or drifted); sinks add their
own (Onyx: ``latest-child``, ``citations``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from ledger.errors import UsageError
from ledger.progress import NoProgress, Progress
from ledger.replay.plan import UnitBuilder, held_count, held_rows
from ledger.replay.runner import ReplayResult, ReplaySettings, TargetRun, check_target
from ledger.sink import Repair, Sink, Unit
from ledger.store import Ledger

SAMPLE = 50


class Resync(Repair):
    name = "resync"
    help = "Rewrite the units the target no longer shows as the ledger wrote them."

    def run(
        self, sink: Sink, units: list[Unit], *, dry_run: bool, rewrite: Callable[[list[Unit]], None]
    ) -> list[dict[str, Any]]:
        actual = sink.read_back(units)
        broken = []
        fixes = []
        for unit in units:
            found = actual.get(unit.key)
            if found == sink.fingerprint(unit):
                continue
            fixes.append({"unit": unit.key, "fix": "missing" if found is None else "drifted"})
            broken.append(
                dataclasses.replace(
                    unit, items=[dataclasses.replace(item, force=True) for item in unit.items]
                )
            )
        if broken and not dry_run:
            rewrite(broken)
        return fixes


def repairs_of(sink: Sink) -> dict[str, type[Repair]]:
    return {Resync.name: Resync, **sink.repairs}


def repair(
    ledger: Ledger,
    sink: Sink,
    rule: str,
    streams: list[str],
    *,
    settings: ReplaySettings | None = None,
    progress: Progress | None = None,
    args: dict[str, Any] | None = None,
) -> ReplayResult:
    settings = settings or ReplaySettings()
    rules = repairs_of(sink)
    if rule not in rules:
        raise UsageError(
            f"the {sink.type_name} sink has no repair {rule!r} (repairs: {', '.join(sorted(rules))})"
        )
    fixer = rules[rule]()

    bar = progress or NoProgress()

    def each_batch(rewrite: Callable[[list[Unit]], None]) -> list[dict[str, Any]]:
        """Every held unit examined; the bar counts records examined of those the target
        holds (counted first, as a replay counts the records it changes)."""
        fixes: list[dict[str, Any]] = []
        with ledger.read() as conn:
            bar.start(
                f"repair {sink.target} {rule}",
                sum(held_count(conn, sink.target, stream) for stream in streams),
            )
            for stream in streams:
                held = held_rows(conn, sink.target, stream)
                for units in UnitBuilder(conn, sink.target, sink, settings.batch_records).batches(held):
                    found = fixer.run(sink, units, dry_run=settings.dry_run, rewrite=rewrite)
                    examined = sum(len(unit.items) for unit in units)
                    bar.advance(examined, records=examined, fixes=len(found))
                    fixes += found
        return fixes + fixer.finish(sink, dry_run=settings.dry_run)

    if settings.dry_run:
        checked = check_target(sink)
        sink.open()
        try:
            fixes = each_batch(lambda units: None)
        finally:
            bar.finish()
            sink.close()
        stats = {"rule": rule, "fixes": len(fixes), "sample": fixes[:SAMPLE]}
        return ReplayResult(None, "dry-run", stats | checked)

    def body(run: TargetRun) -> None:
        applier = run.applier(settings.retry)
        try:
            fixes = each_batch(applier.apply)
        finally:
            bar.finish()
        run.extra.update(rule=rule, fixes=len(fixes), sample=fixes[:SAMPLE])

    # the run has no progress of its own: its applier's steps (records rewritten) are
    # not the bar's (records examined)
    return TargetRun(ledger, sink, "repair", args=args, parent_run_id=None, progress=None).execute(body)
