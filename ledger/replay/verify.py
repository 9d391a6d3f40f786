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
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, or_, select

from ledger import lifecycle, runs
from ledger.dialects import chunks
from ledger.progress import NoProgress, Progress
from ledger.replay.plan import UnitBuilder, held_rows
from ledger.schema import heads, target_state
from ledger.sink import Sink
from ledger.store import Ledger

SAMPLE = 20
MISMATCHES = ("missing", "drifted", "unexpected", "pending")
COUNTS = ("ok", *MISMATCHES, "skipped", "deleted_in_source")


@dataclass
class VerifyResult:
    run_id: int
    counts: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[str]] = field(default_factory=dict)

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
            **self.counts,
            "samples": self.samples,
        }


def _note(result: VerifyResult, status: str, what: str) -> None:
    result.counts[status] += 1
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


def verify(
    ledger: Ledger,
    sink: Sink,
    streams: list[str],
    *,
    progress: Progress | None = None,
    args: dict[str, Any] | None = None,
    parent_run_id: int | None = None,
    batch_records: int = 2000,
) -> VerifyResult:
    progress = progress or NoProgress()
    result = VerifyResult(0, dict.fromkeys(COUNTS, 0))
    started = time.monotonic()

    def stats() -> dict[str, Any]:
        return result.as_json() | {"seconds": round(time.monotonic() - started, 3)}

    with lifecycle.run(
        ledger, "verify", stats=stats, target=sink.target, args=args, parent_run_id=parent_run_id
    ) as active:
        result.run_id = active.id
        sink.open()
        try:
            progress.start(f"verify {sink.target}", None)
            with ledger.read() as conn:
                for stream in streams:
                    held = held_rows(conn, sink.target, stream)
                    for units in UnitBuilder(conn, sink.target, sink, batch_records).batches(held):
                        actual = sink.read_back(units)
                        for unit in units:
                            found = actual.get(unit.key)
                            status = (
                                "missing" if found is None
                                else "ok" if found == sink.fingerprint(unit)
                                else "drifted"
                            )  # fmt: skip
                            _note(result, status, f"{stream} {unit.key}")
                        progress.advance(len(units))
                    for name, count in _pending(conn, sink.target, stream).items():
                        result.counts[name] += count
                _unexpected(conn, sink, streams, result)
        finally:
            progress.finish()
            sink.close()
        if not result.matches:
            active.finish(runs.DRIFTED, f"the target does not match the ledger: {result.verdict()}")
    return result
