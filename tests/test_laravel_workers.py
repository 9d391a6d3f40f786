"""Units prepared in worker processes (``Sink.unit_preparer``, the laravel sink's
conversation plans): a replay with workers leaves the rows one without them leaves, and
verifies clean; a unit a worker cannot plan rejects only itself."""

from __future__ import annotations

import multiprocessing

import pytest
from sqlalchemy import select

from ledger.kit import PermanentError
from ledger.replay import ReplaySettings, replay, workers
from ledger.replay.verify import verify
from ledger.schema import heads, rejects, target_state
from sinks.laravel import tables
from tests.convex_laravel import data
from tests.convex_laravel.exports import write_export
from tests.convex_laravel.harness import (
    STREAM,
    create_tables,
    database_url,
    engine_of,
    extract_export,
    ledger,  # the fixture: a SQLite ledger
    sink,
)
from tests.test_replay import synthetic

#: the test data's streams: a Convex export (runs, receipts, tool messages, an ownerless
#: thread) and synthetic conversations
STREAMS = [STREAM, "syn"]


@pytest.fixture(autouse=True)
def every_run_gets_workers(monkeypatch):
    monkeypatch.setattr(workers, "WORKER_THRESHOLD", 0)


@pytest.fixture
def both_streams(ledger, tmp_path):
    extract_export(ledger, write_export(tmp_path / "export.zip", data.rich()))
    synthetic(ledger, users=3)
    return ledger


def laravel_rows(url: str) -> dict[str, list[tuple]]:
    """Every row of the app's tables, every column as text, sorted; but the times the
    autopilot tables take from the clock."""
    engine = engine_of(url)
    with engine.connect() as conn:
        found = {
            table.name: sorted(tuple(map(str, row)) for row in conn.execute(select(*_compared(table))))
            for table in tables.metadata().sorted_tables
        }
    engine.dispose()
    return found


def _compared(table):
    if not table.name.startswith("autopilot"):
        return list(table.c)
    return [column for column in table.c if column.name not in ("created_at", "updated_at")]


def planning_counted(target):
    """The sink, with the conversations it plans in this process (not in a worker) listed."""
    planned_here: list[str] = []
    planned_of = target.planned_of

    def counted(unit):
        if unit.kind == "conversation":
            planned_here.append(unit.key)
        return planned_of(unit)

    target.planned_of = counted
    return target, planned_here


def replayed(ledger, url, name, count):
    """A replay of both streams into a laravel target with ``count`` workers, and the
    conversations planned in this process."""
    target, planned_here = planning_counted(_named(sink(ledger, url), name))
    settings = ReplaySettings(workers=count, batch_records=7)
    return replay(ledger, target, STREAMS, settings=settings), planned_here


@pytest.mark.parametrize("dialect", ["sqlite", "postgres"])
def test_plans_made_by_workers_write_what_plans_made_in_process_write(
    both_streams, request, tmp_path, dialect
):
    url = create_tables(database_url(request, tmp_path, dialect))
    inline, planned_inline = replayed(both_streams, url, "inline", 0)
    inline_rows = laravel_rows(url)
    tables.metadata().drop_all(engine_of(url))
    create_tables(url)
    forked, planned_in_parent = replayed(both_streams, url, "forked", 2)

    assert inline.stats["workers"] == 0 and forked.stats["workers"] == 2
    assert planned_inline and planned_in_parent == []  # every plan came from a worker
    assert forked.status == inline.status == "succeeded"
    assert forked.stats["written"] == inline.stats["written"] > 0
    assert forked.stats["sink"] == inline.stats["sink"]
    assert laravel_rows(url) == inline_rows
    assert inline_rows["run_events"] and inline_rows["agent_conversation_messages"]
    assert _refs(both_streams, "forked") == _refs(both_streams, "inline")
    verifying, planned_in_parent = planning_counted(_named(sink(both_streams, url), "forked"))
    verifying.context.read_only = True  # as the CLI's verify opens it: whole plans, not lean
    checked = verify(both_streams, verifying, STREAMS, workers=2)
    assert checked.workers == 2 and checked.matches and checked.counts["ok"] > 0
    assert planned_in_parent == []
    assert multiprocessing.active_children() == []


def test_a_unit_a_worker_cannot_plan_rejects_only_itself(both_streams, tmp_path):
    with both_streams.read() as conn:
        conversations = sorted(conn.scalars(select(heads.c.key).where(heads.c.kind == "conversation")))
    poison = conversations[len(conversations) // 2]
    target = sink(both_streams, create_tables(f"sqlite:///{tmp_path / 'app.db'}"))
    planned_of = target.planned_of

    def poisoned(unit):  # in the workers and in apply alike
        if unit.key == poison:
            raise PermanentError(f"cannot plan {unit.key} (injected)")
        return planned_of(unit)

    target.planned_of = poisoned
    result = replay(both_streams, target, STREAMS, settings=ReplaySettings(workers=2, batch_records=7))

    assert result.stats["workers"] == 2
    assert result.status == "with-rejects" and result.stats["rejected_units"] == 1
    with both_streams.read() as conn:
        stored = conn.execute(select(rejects)).all()
        held = set(conn.scalars(select(target_state.c.key).where(target_state.c.kind == "conversation")))
    assert [row.location for row in stored] == [f"conversation unit {poison}"]
    assert "injected" in stored[0].reason
    assert held == set(conversations) - {poison}


def _named(target, name):
    target.context.target = target.target = name
    return target


def _refs(ledger, name: str) -> list[tuple]:
    with ledger.read() as conn:
        return sorted(
            conn.execute(
                select(target_state.c.key, target_state.c.target_ref, target_state.c.skipped).where(
                    target_state.c.target == name
                )
            ).all()
        )
