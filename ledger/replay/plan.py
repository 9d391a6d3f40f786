"""Planning a replay: which records a target needs, grouped into units (DESIGN §5).

The plan compares ``heads`` (what the ledger has) with ``target_state`` (what the ledger
believes the target holds) in one SQL statement, so a no-op replay costs a set
comparison, not a round trip per record. Changed rows stream out of the ledger in unit
order (users, assistants, files, conversations with their messages, runs, events), so
memory stays flat however large the ledger is.

A unit's items hold both sides: what is wanted (the head, a prior version for a
rollback, or removal) and what the target holds now. A conversation unit also carries
the members the target holds that did not change, so the sink can rewrite the whole
tree consistently.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import Connection, and_, case, func, literal, or_, select

from ledger.canonical import loads
from ledger.dialects import chunks
from ledger.payloads import StoredDocument, load_documents, load_stored
from ledger.records import REPLAY_ORDER
from ledger.replay.workers import PreparingWorkers, Sent
from ledger.schema import heads, target_state
from ledger.sink import Item, Sink, Unit

log = structlog.get_logger("chatledger.replay")

MERGE, INSERT_ONLY, REPLACE = "merge", "insert-only", "replace"
POLICIES = (MERGE, INSERT_ONLY, REPLACE)
PLAN_ACTIONS = ("insert", "update", "delete", "skip", "unchanged")
CONVERSATION_ORDER = REPLAY_ORDER["conversation"]


@dataclass
class Wanted:
    """One record the target should change: what it should hold, and what it holds."""

    stream: str
    key: str
    kind: str
    conversation: str | None
    version: int
    hash: str | None  # None: remove it
    held_version: int | None
    held_hash: str | None
    held_ref: Any


@dataclass
class Plan:
    """The counts of a plan, per kind: insert, update, delete, skip."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, kind: str, action: str, amount: int = 1) -> None:
        kinds = self.counts.setdefault(kind, dict.fromkeys(PLAN_ACTIONS, 0))
        kinds[action] += amount


def unit_key_of(kind: str, key: str, conversation: str | None, sink: Sink) -> str:
    if sink.unit == "conversation" and conversation is not None:
        return conversation
    return key


def _unit_order(sink: Sink):
    """SQL for (unit order, unit key): conversation-bound rows sort with their conversation."""
    kind_order = case(REPLAY_ORDER, value=heads.c.kind, else_=len(REPLAY_ORDER))
    if sink.unit == "conversation":
        order = case((heads.c.conversation.is_not(None), literal(CONVERSATION_ORDER)), else_=kind_order)
        return order, func.coalesce(heads.c.conversation, heads.c.key)
    return kind_order, heads.c.key


def _joined(target: str):
    return heads.outerjoin(
        target_state,
        and_(
            target_state.c.target == target,
            target_state.c.stream == heads.c.stream,
            target_state.c.key == heads.c.key,
        ),
    )


def _selection(stream: str, scope: str | None) -> list:
    """Every kind is planned: the engine skips, visibly, what the sink does not carry."""
    conditions = [heads.c.stream == stream]
    if scope is not None:
        conditions.append(heads.c.scope == scope)
    return conditions


def _wanted_condition(policy: str, propagate_deletes: bool):
    """Which joined (heads, target_state) rows the policy wants changed."""
    live_changed = and_(
        heads.c.deleted.is_(False),
        or_(target_state.c.hash.is_(None), target_state.c.hash != heads.c.hash),
    )
    # a skipped record is not in the target: nothing to delete there
    source_deleted = and_(
        heads.c.deleted.is_(True), target_state.c.key.is_not(None), target_state.c.skipped.is_(False)
    )
    if policy == REPLACE:
        return or_(heads.c.deleted.is_(False), source_deleted)
    if policy == INSERT_ONLY:
        return and_(heads.c.deleted.is_(False), target_state.c.key.is_(None))
    return or_(live_changed, source_deleted) if propagate_deletes else live_changed


def changed_rows(
    conn: Connection,
    target: str,
    stream: str,
    sink: Sink,
    *,
    policy: str,
    propagate_deletes: bool,
    scope: str | None = None,
) -> Iterator[Wanted]:
    """The records the policy wants changed, in unit order, streamed."""
    order, unit = _unit_order(sink)
    query = (
        select(
            heads.c.key,
            heads.c.kind,
            heads.c.conversation,
            heads.c.version,
            heads.c.hash,
            heads.c.deleted,
            target_state.c.version,
            target_state.c.hash,
            target_state.c.target_ref,
            target_state.c.skipped,
        )
        .select_from(_joined(target))
        .where(*_selection(stream, scope), _wanted_condition(policy, propagate_deletes))
        .order_by(order, unit, heads.c.key)
    )
    rows = conn.execution_options(yield_per=2000).execute(query)
    for key, kind, conversation, version, digest, deleted, held_v, held_h, held_ref, skipped in rows:
        if skipped:  # the target holds nothing for a skipped version
            held_v = held_h = held_ref = None
        yield Wanted(
            stream,
            key,
            kind,
            conversation,
            version,
            None if deleted else digest,
            held_v,
            held_h,
            loads(held_ref) if held_ref else None,
        )


def plan_counts(
    conn: Connection,
    target: str,
    stream: str,
    sink: Sink,
    *,
    policy: str,
    propagate_deletes: bool,
    scope: str | None = None,
) -> Plan:
    """Per kind: how many records would be inserted, updated, deleted, skipped (a kind
    the sink does not carry) and left unchanged."""
    plan = Plan()
    for wanted in changed_rows(
        conn, target, stream, sink, policy=policy, propagate_deletes=propagate_deletes, scope=scope
    ):
        if wanted.kind not in sink.kinds:
            plan.add(wanted.kind, "skip")
        elif wanted.hash is None:
            plan.add(wanted.kind, "delete")
        else:
            plan.add(wanted.kind, "insert" if wanted.held_hash is None else "update")
    if policy != REPLACE:
        selected = selected_counts(
            conn, target, stream, policy=policy, propagate_deletes=propagate_deletes, scope=scope
        )
        for kind, count in selected.unchanged.items():
            plan.add(kind, "unchanged", count)
    return plan


@dataclass
class Selected:
    """What a replay selects in a stream, counted in one pass over its heads: per kind the
    records the target holds at their version (or skipped), and how many records the
    policy wants changed (a progress bar's total)."""

    unchanged: dict[str, int]
    changed: int


def selected_counts(
    conn: Connection,
    target: str,
    stream: str,
    *,
    policy: str,
    propagate_deletes: bool,
    scope: str | None = None,
) -> Selected:
    unchanged = and_(heads.c.deleted.is_(False), target_state.c.hash == heads.c.hash)
    rows = conn.execute(
        select(
            heads.c.kind,
            func.count().filter(unchanged),
            func.count().filter(_wanted_condition(policy, propagate_deletes)),
        )
        .select_from(_joined(target))
        .where(*_selection(stream, scope))
        .group_by(heads.c.kind)
    ).all()
    return Selected({kind: count for kind, count, _ in rows if count}, sum(changed for *_, changed in rows))


def _held(target: str, stream: str) -> tuple:
    return (
        target_state.c.target == target,
        target_state.c.stream == stream,
        target_state.c.skipped.is_(False),
    )


def held_count(conn: Connection, target: str, stream: str) -> int:
    """How many records :func:`held_rows` yields for the whole stream (a repair's total)."""
    return conn.scalar(select(func.count()).select_from(target_state).where(*_held(target, stream)))


def held_rows(
    conn: Connection, target: str, stream: str, *, units: list[str] | None = None
) -> Iterator[Wanted]:
    """What the target holds (according to the ledger), as unchanged items, with each
    conversation's members together: everything, or the members of some units
    (conversation keys or record keys)."""
    query = select(
        target_state.c.key,
        target_state.c.kind,
        target_state.c.conversation,
        target_state.c.version,
        target_state.c.hash,
        target_state.c.target_ref,
    ).where(*_held(target, stream))
    selections = (
        [query]
        if units is None
        else [
            query.where(or_(target_state.c.conversation.in_(batch), target_state.c.key.in_(batch)))
            for batch in chunks(units)
        ]
    )
    for selected in selections:
        unit_order = func.coalesce(target_state.c.conversation, target_state.c.key)
        rows = conn.execution_options(yield_per=2000).execute(
            selected.order_by(unit_order, target_state.c.key)
        )
        for key, kind, conversation, version, digest, ref in rows:
            held_ref = loads(ref) if ref else None
            yield Wanted(stream, key, kind, conversation, version, digest, version, digest, held_ref)


def held_units(conn: Connection, target: str, stream: str, sink: Sink) -> int:
    """How many units :func:`held_rows` makes for ``sink`` (verify's total): one count."""
    if sink.unit == "conversation":
        unit = func.coalesce(target_state.c.conversation, target_state.c.key)
    else:
        unit = target_state.c.key
    return conn.scalar(
        select(func.count(func.distinct(unit))).where(
            target_state.c.target == target,
            target_state.c.stream == stream,
            target_state.c.skipped.is_(False),
        )
    )


class UnitBuilder:
    """Turns a stream of wanted changes into batches of complete units."""

    def __init__(
        self,
        conn: Connection,
        target: str,
        sink: Sink,
        batch_records: int,
        *,
        force: bool = False,
        stored: bool = False,
    ) -> None:
        self.conn = conn
        self.target = target
        self.sink = sink
        self.batch_records = batch_records
        self.force = force  # every item rewritten, changed or not (replace)
        #: documents left as stored, decoded on first use (their rows are made by workers)
        self.stored = stored

    def batches(self, wanted: Iterable[Wanted]) -> Iterator[list[Unit]]:
        pending: dict[tuple[str, str], list[Wanted]] = {}
        size = 0
        current: tuple[str, str] | None = None
        for change in wanted:
            unit = (change.stream, unit_key_of(change.kind, change.key, change.conversation, self.sink))
            # units arrive contiguous: cut a batch only between units
            if unit != current and size >= self.batch_records:
                yield self._complete(pending)
                pending, size = {}, 0
            current = unit
            pending.setdefault(unit, []).append(change)
            size += 1
        if pending:
            yield self._complete(pending)

    def _complete(self, pending: dict[tuple[str, str], list[Wanted]]) -> list[Unit]:
        members: dict[tuple[str, str], dict[str, Wanted]] = {
            unit: {change.key: change for change in changes} for unit, changes in pending.items()
        }
        if self.sink.unit == "conversation":
            by_stream: dict[str, list[str]] = {}
            for (stream, unit_key), changes in pending.items():
                if changes[0].conversation is not None or changes[0].kind == "conversation":
                    by_stream.setdefault(stream, []).append(unit_key)
            for stream, conversations in by_stream.items():
                for held in held_rows(self.conn, self.target, stream, units=conversations):
                    unit = (stream, held.conversation or held.key)
                    if unit in members:
                        members[unit].setdefault(held.key, held)
        hashes = [w.hash for unit in members.values() for w in unit.values() if w.hash]
        if self.stored:
            documents = {
                digest: StoredDocument(stored) for digest, stored in load_stored(self.conn, hashes).items()
            }
        else:
            documents = load_documents(self.conn, hashes)
        units = []
        for (_stream, unit_key), items in members.items():
            first = next(iter(items.values()))
            kind = "conversation" if unit_key != first.key or first.kind == "conversation" else first.kind
            units.append(
                Unit(
                    unit_key,
                    kind,
                    [
                        Item(
                            w.stream,
                            w.key,
                            w.kind,
                            w.version,
                            w.hash,
                            documents[w.hash] if w.hash else None,
                            w.held_version,
                            w.held_hash,
                            w.held_ref,
                            w.conversation,
                            self.force,
                        )
                        for w in sorted(items.values(), key=lambda w: (REPLAY_ORDER.get(w.kind, 99), w.key))
                    ],
                )
            )
        return units


def prepared_batches(
    sink: Sink, batches: Iterable[list[Unit]], workers: PreparingWorkers | None
) -> Iterator[list[Unit]]:
    """The batches with the sink's ``prepare`` done: in this (the reader) thread, or by
    the workers, from the stored payloads (the builder made with ``stored=True``), with
    the next batch sent to them before this one is collected."""
    if workers is None:
        for units in batches:
            prepare_ahead(sink, units)
            yield units
        return
    sent: deque = deque()
    for units in batches:
        sent.append((units, workers.send(units)))
        if len(sent) > 1:
            yield _received(workers, *sent.popleft())
    while sent:
        yield _received(workers, *sent.popleft())


def _received(workers: PreparingWorkers, units: list[Unit], sent: Sent) -> list[Unit]:
    workers.receive(sent)
    return units


def prepare_ahead(sink: Sink, units: list[Unit]) -> None:
    """The sink's ``prepare`` in the reader thread. If it fails (a record its rows cannot
    be made of), the batch goes on unprepared: the writer builds those rows itself, where
    a permanent failure rejects only its unit instead of ending the run."""
    try:
        sink.prepare(units)
    except Exception as error:  # the writer meets it again, per unit
        log.debug("prepare failed; the writer builds the batch", error=str(error))
        for unit in units:
            unit.prepared = None
            for item in unit.items:
                item.prepared = None
