"""``verify TARGET``: read the target back and compare it with the ledger (DESIGN §5).

Every unit the ledger believes the target holds (``target_state``) is fingerprinted
twice: from the ledger's payloads (``sink.fingerprint``) and from the target itself
(``sink.read_back``). A unit is ``ok``, ``missing`` (not in the target) or ``drifted``
(different); ``unexpected`` units are in the target but not in the ledger. Records the
ledger has and the target does not yet (a replay would write them) are counted as
``pending``, which is not a mismatch. Verify never writes to the target.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, or_, select

from ledger import runs
from ledger.errors import ChatledgerError
from ledger.progress import NoProgress, Progress
from ledger.replay.plan import UnitBuilder, held_rows
from ledger.schema import heads, target_state
from ledger.sink import Sink
from ledger.sql import chunks
from ledger.store import Ledger

SAMPLE = 20


@dataclass
class VerifyResult:
    run_id: int
    counts: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def matches(self) -> bool:
        return not (self.counts["missing"] or self.counts["drifted"] or self.counts["unexpected"])

    def as_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "matches": self.matches, **self.counts, "samples": self.samples}


def _note(result: VerifyResult, status: str, what: str) -> None:
    result.counts[status] += 1
    if status != "ok" and len(result.samples.setdefault(status, [])) < SAMPLE:
        result.samples[status].append(what)


def _pending(conn, target: str, stream: str) -> int:
    joined = heads.outerjoin(
        target_state,
        and_(
            target_state.c.target == target,
            target_state.c.stream == heads.c.stream,
            target_state.c.key == heads.c.key,
        ),
    )
    return conn.scalar(
        select(func.count())
        .select_from(joined)
        .where(
            heads.c.stream == stream,
            or_(
                and_(heads.c.deleted.is_(False), or_(target_state.c.hash.is_(None), target_state.c.hash != heads.c.hash)),
                and_(heads.c.deleted.is_(True), target_state.c.key.is_not(None)),
            ),
        )
    )


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
    run_id = runs.start_run(ledger, "verify", target=sink.target, args=args, parent_run_id=parent_run_id)
    result = VerifyResult(run_id, dict.fromkeys(("ok", "missing", "drifted", "unexpected", "pending"), 0))
    started = time.monotonic()
    try:
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
                    result.counts["pending"] += _pending(conn, sink.target, stream)
                _unexpected(conn, sink, streams, result)
        finally:
            progress.finish()
            sink.close()
    except BaseException as exc:
        detail = str(exc) if isinstance(exc, ChatledgerError) else f"{type(exc).__name__}: {exc}"
        runs.finish_run(ledger, run_id, runs.FAILED, result.as_json(), error=detail)
        raise
    stats = result.as_json() | {"seconds": round(time.monotonic() - started, 3)}
    status = runs.SUCCEEDED if result.matches else runs.FAILED
    error = None if result.matches else "the target differs from the ledger"
    runs.finish_run(ledger, run_id, status, stats, error=error)
    return result
