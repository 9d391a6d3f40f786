"""Applying units to a sink and recording what was written (DESIGN §5, §6).

For each batch of units: ``sink.apply`` (one target transaction where the target has
them, markers included), then one ledger transaction for ``writes``, ``target_state``,
the run's stats and the lock's heartbeat. Transient failures are retried with
exponential backoff and jitter. A permanent failure is narrowed down to the unit that
causes it: that unit goes to ``rejects`` (nothing of it written), the others land, and
the run ends failed.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import Connection, and_, delete, select

from ledger import failpoints, locks, runs
from ledger.canonical import canonical_text
from ledger.dialects import Statistics, bulk_write, chunks
from ledger.errors import ChatledgerError
from ledger.prefetch import Behind
from ledger.progress import Progress
from ledger.redact import redact
from ledger.retry import RetryPolicy
from ledger.schema import heads, rejects, target_state, writes
from ledger.sink import Item, Outcome, PermanentError, Sink, TransientError, Unit
from ledger.store import Ledger

log = structlog.get_logger("chatledger.replay")

TABLE_COUNTERS = ("read", "inserted", "updated", "deleted", "skipped", "unchanged", "rejected")
OUTCOME_COUNTERS = {"insert": "inserted", "update": "updated", "delete": "deleted", "skip": "skipped"}


@dataclass
class ReplayStats:
    tables: dict[str, dict[str, float]] = field(default_factory=dict)
    written: int = 0  # records inserted, updated or deleted in the target
    skipped: int = 0  # records the sink deliberately did not write (writes.action = skip)
    rejected_units: int = 0
    retries: int = 0
    reconciled: int = 0
    sink: dict[str, int] = field(default_factory=dict)  # sink counters of committed batches

    def merge_sink_counters(self, counters: dict[str, int]) -> None:
        for name, value in counters.items():
            self.sink[name] = self.sink.get(name, 0) + value

    def add(self, table: str, name: str, amount: float = 1) -> None:
        counts = self.tables.setdefault(table, dict.fromkeys((*TABLE_COUNTERS, "seconds"), 0))
        counts[name] += amount

    def as_json(self) -> dict[str, Any]:
        tables = {
            table: {
                name: round(value, 3) if name == "seconds" else int(value) for name, value in counts.items()
            }
            for table, counts in sorted(self.tables.items())
        }
        return {
            "tables": tables,
            "written": self.written,
            "skipped": self.skipped,
            "rejected_units": self.rejected_units,
            "retries": self.retries,
            "reconciled": self.reconciled,
            **({"sink": dict(sorted(self.sink.items()))} if self.sink else {}),
        }


def table_label(sink: Sink, kind: str) -> str:
    return f"{kind} → {', '.join(sink.tables(kind))}"


@dataclass
class Written:
    """A batch the target committed (or that failed unit by unit), to be recorded."""

    units: list[Unit]
    outcomes: list[Outcome]
    failed: list[tuple[Unit, ChatledgerError]]
    truncated: bool  # its target transaction emptied the sink's tables first
    counters: dict[str, int]  # what the sink counted for it
    seconds: float


class Applier:
    """Applies batches of units for one run and records the outcomes in the ledger.

    Each batch is written to the target, then recorded in one ledger transaction. Inside
    :meth:`recording_behind` the recording happens in a thread of its own while the next
    batch is written (the target side and the ledger side take turns no more)."""

    def __init__(
        self,
        ledger: Ledger,
        sink: Sink,
        run_id: int,
        *,
        retry: RetryPolicy,
        progress: Progress,
        stats: ReplayStats,
        save: Callable[[Connection], None],
        truncate: bool = False,
    ) -> None:
        self.ledger = ledger
        self.sink = sink
        self.run_id = run_id
        self.retry = retry
        self.progress = progress
        self.stats = stats
        self.save = save  # writes the run's stats inside each ledger transaction
        self.truncate = truncate
        self.lock = locks.target_lock(sink.target)
        self.statistics = Statistics([target_state, writes])
        self.labels: dict[str, str] = {}
        self.behind: Behind[Written] | None = None

    def apply(self, units: list[Unit]) -> None:
        if not units:
            return
        started = time.monotonic()
        truncating = self.truncate
        carried, uncarried = self._split_kinds(units)
        outcomes, failed, counters = self._apply_with_retries(carried) if carried else ([], [], {})
        written = Written(
            units, outcomes + uncarried, failed, truncating, counters, time.monotonic() - started
        )
        if self.behind is not None:
            self.behind.submit(written)
        else:
            self._record_batch(written)

    @contextmanager
    def recording_behind(self) -> Iterator[Applier]:
        """Record batches in a thread of its own, one batch behind the target. A crash
        may then leave two committed batches unrecorded instead of one: the target's
        markers heal both (:func:`reconcile`). Leaving the block waits until every batch
        the target committed is recorded, however the block ends."""
        behind = self.behind = Behind(self._record_batch, name="replay-recorder")
        try:
            yield self
        except BaseException:
            try:
                behind.close()
            except BaseException:  # the block's own exception is the one to report
                log.error(
                    "could not record a batch the target committed", target=self.sink.target, exc_info=True
                )
            raise
        else:
            behind.close()
        finally:
            self.behind = None

    def _record_batch(self, written: Written) -> None:
        """The batch's ledger transaction: writes, target_state, rejects, the run's stats
        and the lock's heartbeat; then the progress bar."""
        units, outcomes = written.units, written.outcomes
        read = Counter(item.kind for unit in units for item in unit.items if item.changed)
        for kind, count in read.items():
            self.stats.add(self.label(kind), "read", count)
        self._attribute_time(units, written.seconds)
        failpoints.failpoint("replay.record.before")
        with self.ledger.write() as conn:
            self._record(conn, units, outcomes)
            if written.truncated and not written.failed:
                self._record_truncated(conn, outcomes)
            for unit, error in written.failed:
                self._reject(conn, unit, error)
            self.statistics.wrote(conn, len(outcomes))
            self.stats.merge_sink_counters(written.counters)
            self.save(conn)
            locks.heartbeat(conn, self.lock, self.run_id)
        failpoints.failpoint("replay.record.after")
        # steps: the records the plan changes (the bar's total), held members not counted
        changed = sum(1 for unit in units for item in unit.items if item.changed)
        self.progress.advance(changed, records=len(outcomes))

    def label(self, kind: str) -> str:
        """``table_label`` of a kind, worked out once per run (it is asked per record)."""
        if kind not in self.labels:
            self.labels[kind] = table_label(self.sink, kind)
        return self.labels[kind]

    def _split_kinds(self, units: list[Unit]) -> tuple[list[Unit], list[Outcome]]:
        """Units with only the kinds the sink carries, and a skip for every changed
        record of another kind (never handed to the sink)."""
        if {item.kind for unit in units for item in unit.items}.issubset(self.sink.kinds):
            return units, []  # the usual batch: nothing to take out
        carried_units, skips = [], []
        for unit in units:
            kept = [item for item in unit.items if item.kind in self.sink.kinds]
            skips += [
                Outcome.skip(item, f"the {self.sink.type_name} sink does not carry {item.kind} records")
                for item in unit.items
                if item.kind not in self.sink.kinds and item.changed and not item.removed
            ]
            if len(kept) == len(unit.items):
                carried_units.append(unit)
            elif any(item.changed for item in kept):
                carried_units.append(Unit(unit.key, unit.kind, kept))
        return carried_units, skips

    def apply_truncate_only(self) -> None:
        """``replace --truncate`` of an empty selection: the tables are still emptied."""
        self.sink.apply([], self.run_id, truncate=True)
        self.truncate = False
        with self.ledger.write() as conn:
            self._record_truncated(conn, [])
            self.save(conn)

    # -- applying ---------------------------------------------------------------------

    def _apply_with_retries(
        self, units: list[Unit]
    ) -> tuple[list[Outcome], list[tuple[Unit, ChatledgerError]], dict[str, int]]:
        """(outcomes, failed units, what the sink counted in the attempts that landed)."""
        attempt = 0
        while True:
            before = dict(self.sink.counters)
            try:
                failpoints.failpoint("replay.apply")
                outcomes = self.sink.apply(units, self.run_id, truncate=self.truncate)
                self.truncate = False  # once, inside the first batch's transaction
                self._check(units, outcomes)
                return outcomes, [], self._take_counters()
            except Exception as error:
                self.sink.counters = before  # what a failed attempt counted did not happen
                kind = self._classify(error)
                if kind is TransientError and attempt + 1 < self.retry.attempts:
                    wait = self.retry.delay(attempt)
                    attempt += 1
                    self.stats.retries += 1
                    log.warning(
                        "transient failure, retrying",
                        target=self.sink.target,
                        attempt=attempt,
                        wait_s=round(wait, 2),
                        error=redact(str(error)),
                    )
                    time.sleep(wait)
                    continue
                if kind is TransientError:
                    raise ChatledgerError(
                        f"{self.sink.target}: still failing after {self.retry.attempts} "
                        f"attempts: {redact(str(error))}"
                    ) from error
                if kind is None:
                    raise
                if len(units) == 1 or self.truncate:
                    return [], [(unit, PermanentError(str(error))) for unit in units], {}
                return self._bisect(units)

    def _take_counters(self) -> dict[str, int]:
        """What the sink counted in a successful attempt: the batch's counters, merged into
        the run's stats only once the batch's ledger transaction commits."""
        counters, self.sink.counters = self.sink.counters, {}
        return counters

    def _bisect(
        self, units: list[Unit]
    ) -> tuple[list[Outcome], list[tuple[Unit, ChatledgerError]], dict[str, int]]:
        """Apply halves separately to isolate the units that fail for good."""
        middle = len(units) // 2
        outcomes, failed, counters = [], [], Counter()
        for half in (units[:middle], units[middle:]):
            half_outcomes, half_failed, half_counters = self._apply_with_retries(half)
            outcomes += half_outcomes
            failed += half_failed
            counters.update(half_counters)
        return outcomes, failed, dict(counters)

    def _classify(self, error: Exception) -> type[ChatledgerError] | None:
        if isinstance(error, (TransientError, PermanentError)):
            return type(error)
        return self.sink.classify(error)

    def _check(self, units: list[Unit], outcomes: list[Outcome]) -> None:
        reported = {(outcome.stream, outcome.key) for outcome in outcomes}
        missing = [
            item.key
            for unit in units
            for item in unit.items
            if item.changed and (item.stream, item.key) not in reported
        ]
        if missing:
            raise PermanentError(
                f"the {self.sink.type_name} sink did not report writing {', '.join(missing[:5])}"
            )

    def _attribute_time(self, units: list[Unit], seconds: float) -> None:
        kinds = Counter(item.kind for unit in units for item in unit.items)
        total = sum(kinds.values())
        for kind, count in kinds.items():
            self.stats.add(self.label(kind), "seconds", seconds * count / total)

    # -- recording --------------------------------------------------------------------

    def _record(self, conn: Connection, units: list[Unit], outcomes: list[Outcome]) -> None:
        items = {(item.stream, item.key): item for unit in units for item in unit.items}
        record_outcomes(conn, self.sink.target, self.run_id, outcomes, items)
        done = Counter((items[(outcome.stream, outcome.key)].kind, outcome.action) for outcome in outcomes)
        for (kind, action), count in done.items():
            self.stats.add(self.label(kind), OUTCOME_COUNTERS[action], count)
            if action == "skip":
                self.stats.skipped += count
            else:
                self.stats.written += count

    def _record_truncated(self, conn: Connection, outcomes: list[Outcome]) -> None:
        """Everything the target held and this batch did not rewrite is gone now."""
        written = {(outcome.stream, outcome.key) for outcome in outcomes}
        rows = conn.execute(select(target_state).where(target_state.c.target == self.sink.target))
        gone = [row for row in rows if (row.stream, row.key) not in written]
        items = {
            (row.stream, row.key): Item(
                row.stream,
                row.key,
                row.kind,
                row.version,
                None,
                None,
                row.version,
                row.hash,
                conversation=row.conversation,
            )
            for row in gone
        }
        deletes = [Outcome(row.stream, row.key, "delete") for row in gone]
        record_outcomes(conn, self.sink.target, self.run_id, deletes, items)
        for row in gone:
            self.stats.add(self.label(row.kind), "deleted")
        self.stats.written += len(deletes)

    def _reject(self, conn: Connection, unit: Unit, error: ChatledgerError) -> None:
        self.stats.rejected_units += 1
        for item in unit.items:
            if item.changed:
                self.stats.add(self.label(item.kind), "rejected")
        stream = unit.items[0].stream if unit.items else None
        conn.execute(
            rejects.insert().values(
                run_id=self.run_id,
                stream=stream,
                target=self.sink.target,
                location=f"{unit.kind} unit {unit.key}",
                reason=redact(str(error)),
                input=canonical_text(
                    [{"key": i.key, "version": i.version, "hash": i.hash} for i in unit.items]
                ),
            )
        )
        log.error("unit rejected", target=self.sink.target, unit=unit.key, reason=redact(str(error)))


WRITE_COLUMNS = (
    "run_id", "target", "stream", "key", "version", "hash", "action", "target_ref",
    "prior_version", "prior_hash", "reason",
)  # fmt: skip
STATE_COLUMNS = (
    "target", "stream", "key", "kind", "conversation", "version", "hash", "target_ref", "run_id", "skipped",
)  # fmt: skip


def record_outcomes(
    conn: Connection,
    target: str,
    run_id: int,
    outcomes: Iterable[Outcome],
    items: dict[tuple[str, str], Item],
) -> None:
    """``writes`` rows and ``target_state`` for what a sink did (one ledger transaction)."""
    write_rows, state_rows, gone = [], [], []
    for outcome in outcomes:
        item = items[(outcome.stream, outcome.key)]
        reference = outcome.target_ref_text
        write_rows.append(
            (
                run_id,
                target,
                outcome.stream,
                outcome.key,
                item.version,
                item.hash,
                outcome.action,
                reference,
                item.held_version,
                item.held_hash,
                outcome.reason,
            )
        )
        if outcome.action == "delete":
            gone.append((outcome.stream, outcome.key))
        else:
            state_rows.append(
                (
                    target,
                    outcome.stream,
                    outcome.key,
                    item.kind,
                    item.conversation,
                    item.version,
                    item.hash,
                    reference,
                    run_id,
                    outcome.action == "skip",
                )
            )
    bulk_write(conn, writes, WRITE_COLUMNS, write_rows)
    bulk_write(
        conn,
        target_state,
        STATE_COLUMNS,
        state_rows,
        conflict=("target", "stream", "key"),
        update=STATE_COLUMNS[3:],
    )
    for stream, keys in _by_stream(gone).items():
        for chunk in chunks(keys):
            conn.execute(
                delete(target_state).where(
                    and_(
                        target_state.c.target == target,
                        target_state.c.stream == stream,
                        target_state.c.key.in_(chunk),
                    )
                )
            )


def _by_stream(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for stream, key in pairs:
        grouped.setdefault(stream, []).append(key)
    return grouped


def reconcile(ledger: Ledger, sink: Sink, current_run: int) -> int:
    """Heal ``target_state`` from the target's markers of runs that may not have recorded
    their last batch (running, interrupted or failed runs of this target)."""
    suspects = [
        run.id
        for run in runs.list_runs(ledger, target=sink.target, limit=1000)
        if run.id != current_run and run.status in (runs.RUNNING, runs.INTERRUPTED, runs.FAILED)
    ]
    markers = list(sink.reconcile(suspects)) if suspects else []
    healed = 0
    with ledger.write() as conn:
        for marker in markers:
            stream, key = marker["stream"], marker["key"]
            held = conn.execute(
                select(target_state).where(
                    target_state.c.target == sink.target,
                    target_state.c.stream == stream,
                    target_state.c.key == key,
                )
            ).first()
            if marker["hash"] is None:
                action = "delete" if held is not None else None
            elif held is None or held.hash != marker["hash"]:
                action = "insert" if held is None else "update"
            else:
                action = None
            if action is None:
                continue
            head = conn.execute(
                select(heads.c.kind, heads.c.conversation).where(heads.c.stream == stream, heads.c.key == key)
            ).first()
            item = Item(
                stream,
                key,
                head.kind if head else held.kind,
                marker["version"],
                marker["hash"],
                None,
                held.version if held else None,
                held.hash if held else None,
                conversation=head.conversation if head else held.conversation,
            )
            outcome = Outcome(stream, key, action, marker["target_ref"])
            record_outcomes(conn, sink.target, marker["run_id"], [outcome], {(stream, key): item})
            healed += 1
    if healed:
        log.warning("healed target_state from target markers", target=sink.target, records=healed)
    return healed
