"""``verify TARGET``: read the target back and compare it with the ledger (DESIGN §5).

Every unit the ledger believes the target holds (``target_state``) is fingerprinted
twice: from the ledger's payloads (``sink.fingerprint``) and from the target itself
(``sink.read_back``). A unit is ``ok``, ``missing`` (not in the target) or ``drifted``
(different); ``unexpected`` units are in the target but not in the ledger. Records the
ledger has and the target does not yet (a replay would write them) are ``pending``: the
target does not match the ledger until they are written. Records deleted at the source
that the target still holds (a replay without ``--propagate-deletes`` keeps them) are
counted as ``deleted_in_source``, and records the sink deliberately skipped as
``skipped``; neither is a mismatch. Verify never writes to the target; its run ends
``drifted`` when the target does not match.

``written_by`` (a re-run's cheap check, ``migrate`` without ``--full-verify``): only the
units that replay run wrote are read back, and instead of listing every unit the target
holds, the sink counts what it holds per kind (``Sink.count_by_kind``) and the counts
are compared with ``target_state``'s. A no-op re-run then reads nothing back; a row
deleted by hand shows as a count short (``missing``), one added as ``unexpected``; a
hand edit of a unit the run did not write is found only by the full read-back.

A full verify compares the same counts: when every held unit was found and the sink
counted every kind it carries with the ledger's numbers, the target holds nothing else,
and the listing of every unit it holds (``Sink.unexpected``) is skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from sqlalchemy import and_, func, or_, select

from ledger import lifecycle, runs
from ledger.dialects import chunks
from ledger.memory import peak_rss_mb
from ledger.prefetch import Prefetch, quick_handoffs
from ledger.progress import NoProgress, Progress
from ledger.replay.plan import UnitBuilder, Wanted, held_rows, held_units, prepared_batches, unit_key_of
from ledger.replay.workers import PreparingWorkers, preparing_workers
from ledger.schema import heads, target_state, writes
from ledger.sink import Sink, Unit
from ledger.store import Ledger

SAMPLE = 20
MISMATCHES = ("missing", "drifted", "unexpected", "pending")
COUNTS = ("ok", *MISMATCHES, "skipped", "deleted_in_source")


@dataclass
class VerifyResult:
    run_id: int
    counts: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[str]] = field(default_factory=dict)
    mode: str = "full"  # or "written": the units one run wrote, plus count parity
    #: kind → {"ledger": n, "target": m}, for the kinds the sink could count
    parity: dict[str, dict[str, int]] | None = None
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    workers: int = 0  # processes that made the fingerprints (ledger.replay.workers)

    @property
    def matches(self) -> bool:
        """The target holds exactly what the ledger has: nothing differs or is pending."""
        return not any(self.counts[name] for name in MISMATCHES)

    @property
    def consistent(self) -> bool:
        """What the target holds is what the ledger wrote (records may still be pending,
        e.g. after a rollback)."""
        return not any(self.counts[name] for name in MISMATCHES if name != "pending")

    def verdict(self) -> str | None:
        """What does not match, in words (None when everything does)."""
        found = [f"{self.counts[name]:,} {name}" for name in MISMATCHES if self.counts[name]]
        return ", ".join(found) if found else None

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "matches": self.matches,
            "consistent": self.consistent,
            "mode": self.mode,
            **({"parity": self.parity} if self.parity is not None else {}),
            **self.counts,
            "samples": self.samples,
            "seconds": self.seconds,
            "peak_rss_mb": self.peak_rss_mb,
            "workers": self.workers,
        }


def _note(result: VerifyResult, status: str, what: str, amount: int = 1) -> None:
    result.counts[status] += amount
    if status != "ok" and len(result.samples.setdefault(status, [])) < SAMPLE:
        result.samples[status].append(what)


def _pending(conn, target: str, stream: str) -> dict[str, int]:
    """Live records the target lacks or holds an older version of, records deleted at the
    source that it still holds, and records the sink skipped."""
    joined = heads.outerjoin(
        target_state,
        and_(
            target_state.c.target == target,
            target_state.c.stream == heads.c.stream,
            target_state.c.key == heads.c.key,
        ),
    )
    live_pending = and_(
        heads.c.deleted.is_(False), or_(target_state.c.hash.is_(None), target_state.c.hash != heads.c.hash)
    )
    deleted_held = and_(
        heads.c.deleted.is_(True), target_state.c.key.is_not(None), target_state.c.skipped.is_(False)
    )
    skipped = and_(target_state.c.skipped.is_(True), target_state.c.hash == heads.c.hash)
    row = conn.execute(
        select(
            func.count().filter(live_pending),
            func.count().filter(deleted_held),
            func.count().filter(skipped),
        )
        .select_from(joined)
        .where(heads.c.stream == stream)
    ).one()
    return {"pending": row[0], "deleted_in_source": row[1], "skipped": row[2]}


def _unexpected(conn, sink: Sink, streams: list[str], result: VerifyResult) -> None:
    """Units the target holds that the ledger does not know it wrote."""
    for batch in chunks(list(sink.unexpected(streams))):
        by_stream: dict[str, list[str]] = {}
        for stream, unit_key in batch:
            by_stream.setdefault(stream, []).append(unit_key)
        for stream, unit_keys in by_stream.items():
            rows = conn.execute(
                select(target_state.c.key, target_state.c.conversation).where(
                    target_state.c.target == sink.target,
                    target_state.c.stream == stream,
                    or_(
                        target_state.c.key.in_(unit_keys),
                        target_state.c.conversation.in_(unit_keys),
                    ),
                )
            )
            known = {value for row in rows for value in row if value}
            for unit_key in unit_keys:
                if unit_key not in known:
                    _note(result, "unexpected", f"{stream} {unit_key}")


def _written_rows(conn, sink: Sink, stream: str, run_id: int) -> Iterator[Wanted]:
    """What the target holds of the units ``run_id`` wrote, as held items, unit by unit:
    the writes of that run (by their index) whose state is still that run's. When the run
    wrote most of what the target holds (a first migrate), one pass over everything held
    is cheaper than looking its units up batch by batch."""
    if _wrote_most(conn, sink.target, stream, run_id):
        yield from held_rows(conn, sink.target, stream)
        return
    joined, conditions, unit = _written(sink, stream, run_id)
    written = (
        select(target_state.c.key, target_state.c.kind, target_state.c.conversation)
        .select_from(joined)
        .where(*conditions)
        .order_by(unit)
    )
    rows = conn.execution_options(yield_per=2000).execute(written)
    unit_keys = (unit_key_of(kind, key, conversation, sink) for key, kind, conversation in rows)
    distinct = _distinct_runs(unit_keys)
    while batch := list(islice(distinct, 2000)):
        wanted = set(batch)
        for held in held_rows(conn, sink.target, stream, units=batch):
            if unit_key_of(held.kind, held.key, held.conversation, sink) in wanted:
                yield held


def _written(sink: Sink, stream: str, run_id: int):
    """(from, conditions, unit key) of what the target holds as ``run_id`` wrote it."""
    unit = (
        func.coalesce(target_state.c.conversation, target_state.c.key)
        if sink.unit == "conversation"
        else target_state.c.key
    )
    joined = writes.join(
        target_state,
        and_(
            target_state.c.target == writes.c.target,
            target_state.c.stream == writes.c.stream,
            target_state.c.key == writes.c.key,
        ),
    )
    conditions = (
        writes.c.run_id == run_id,
        writes.c.target == sink.target,
        writes.c.stream == stream,
        writes.c.action.in_(("insert", "update")),
        target_state.c.run_id == run_id,
        target_state.c.skipped.is_(False),
    )
    return joined, conditions, unit


def _units_to_read(conn, sink: Sink, stream: str, written_by: int | None) -> int:
    """How many units verify reads back in ``stream`` (the bar's total): one count."""
    if written_by is None or _wrote_most(conn, sink.target, stream, written_by):
        return held_units(conn, sink.target, stream, sink)
    joined, conditions, unit = _written(sink, stream, written_by)
    return conn.scalar(select(func.count(func.distinct(unit))).select_from(joined).where(*conditions))


def _wrote_most(conn, target: str, stream: str, run_id: int) -> bool:
    written = conn.scalar(
        select(func.count())
        .select_from(writes)
        .where(
            writes.c.run_id == run_id,
            writes.c.target == target,
            writes.c.stream == stream,
            writes.c.action.in_(("insert", "update")),
        )
    )
    held = conn.scalar(
        select(func.count())
        .select_from(target_state)
        .where(
            target_state.c.target == target,
            target_state.c.stream == stream,
            target_state.c.skipped.is_(False),
        )
    )
    return written * 2 >= held


def _distinct_runs(values: Iterable[str]) -> Iterator[str]:
    """Sorted values without their repeats (a conversation written through several members)."""
    previous = None
    for value in values:
        if value != previous:
            yield value
            previous = value


def _parity(conn, sink: Sink, streams: list[str]) -> dict[str, dict[str, int]] | None:
    """Per kind the sink can count: how many records the ledger believes the target holds
    (``ledger``) and how many the target counts (``target``); None when it cannot count."""
    counted = sink.count_by_kind(streams)
    if counted is None:
        return None
    rows = conn.execute(
        select(target_state.c.kind, func.count())
        .where(
            target_state.c.target == sink.target,
            target_state.c.stream.in_(streams),
            target_state.c.skipped.is_(False),
        )
        .group_by(target_state.c.kind)
    )
    believed = dict(rows.all())
    return {kind: {"ledger": believed.get(kind, 0), "target": counted[kind]} for kind in sorted(counted)}


def _note_parity(result: VerifyResult) -> None:
    """A kind the target counts fewer of than the ledger is missing, more unexpected."""
    for kind, both in (result.parity or {}).items():
        short = both["ledger"] - both["target"]
        if short:
            what = f"{kind}: the ledger counts {both['ledger']:,}, the target {both['target']:,}"
            _note(result, "missing" if short > 0 else "unexpected", what, abs(short))


def _nothing_unexpected(sink: Sink, result: VerifyResult) -> bool:
    """After a full read-back that found every held unit: when the sink counted every
    kind it carries and each count equals the ledger's, the target holds nothing else,
    and listing every unit it holds can be spared."""
    parity = result.parity
    if parity is None or result.counts["missing"] or not set(sink.kinds) <= set(parity):
        return False
    return all(both["ledger"] == both["target"] for both in parity.values())


def verify(
    ledger: Ledger,
    sink: Sink,
    streams: list[str],
    *,
    progress: Progress | None = None,
    args: dict[str, Any] | None = None,
    parent_run_id: int | None = None,
    batch_records: int = 1000,
    written_by: int | None = None,
    workers: int | None = None,
) -> VerifyResult:
    """Verify ``streams`` of the sink's target; ``written_by``: only what that replay run
    wrote, plus count parity (see the module's docstring); ``workers``: processes making
    the fingerprints (:func:`ledger.replay.workers.worker_count`)."""
    progress = progress or NoProgress()
    result = VerifyResult(0, dict.fromkeys(COUNTS, 0), mode="full" if written_by is None else "written")
    started = time.monotonic()

    def stats() -> dict[str, Any]:
        return result.as_json() | {"seconds": round(time.monotonic() - started, 3)}

    with lifecycle.run(
        ledger, "verify", stats=stats, target=sink.target, args=args, parent_run_id=parent_run_id
    ) as active:
        result.run_id = active.id
        sink.open()
        try:
            with ledger.read() as conn:
                total = sum(_units_to_read(conn, sink, stream, written_by) for stream in streams)
            # the workers forked before the threads start
            with preparing_workers(sink, total, workers) as forked, quick_handoffs():
                result.workers = forked.count if forked else 0
                progress.start(f"verify {sink.target}", total)
                for stream in streams:
                    batches = held_batches(ledger, sink, stream, batch_records, written_by, forked)
                    with Prefetch(batches, name="verify-reader") as ahead:
                        for units in ahead:
                            _compare(sink, stream, units, result)
                            progress.advance(len(units))
            with ledger.read() as conn:
                for stream in streams:
                    for name, count in _pending(conn, sink.target, stream).items():
                        result.counts[name] += count
                result.parity = _parity(conn, sink, streams)
                if written_by is not None:
                    _note_parity(result)
                elif not _nothing_unexpected(sink, result):
                    _unexpected(conn, sink, streams, result)
        finally:
            progress.finish()
            sink.close()
        result.seconds = round(time.monotonic() - started, 3)
        result.peak_rss_mb = peak_rss_mb()
        if not result.matches:
            active.finish(runs.DRIFTED, f"the target does not match the ledger: {result.verdict()}")
    return result


def held_batches(
    ledger: Ledger,
    sink: Sink,
    stream: str,
    batch_records: int,
    written_by: int | None,
    workers: PreparingWorkers | None = None,
) -> Callable[[], Iterator[list[Unit]]]:
    """The batches of held units to check, read from the ledger (held rows, payloads, the
    sink's ``prepare``), for a :class:`Prefetch` reader thread."""

    def produce() -> Iterator[list[Unit]]:
        with ledger.read() as conn:
            held = (
                held_rows(conn, sink.target, stream)
                if written_by is None
                else _written_rows(conn, sink, stream, written_by)
            )
            builder = UnitBuilder(conn, sink.target, sink, batch_records, stored=workers is not None)
            yield from prepared_batches(sink, builder.batches(held), workers)

    return produce


def _compare(sink: Sink, stream: str, units: list[Unit], result: VerifyResult) -> None:
    actual = sink.read_back(units)
    for unit in units:
        found = actual.get(unit.key)
        status = (
            "missing" if found is None
            else "ok" if found == sink.fingerprint(unit)
            else "drifted"
        )  # fmt: skip
        _note(result, status, f"{stream} {unit.key}")
