"""Rollback as an operator meets it (issue 10, item 7): an interrupted rollback continues
when run again, a finished one is not repeated, runs roll back newest-first and after a
repair without --force, and the undo runs in reverse (children before parents).

Both ledger backends; the ``sql`` sink on a SQLite file; every assertion reads the
target back.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ledger import failpoints, runs
from ledger.errors import UsageError
from ledger.records import REPLAY_ORDER
from ledger.replay import ReplaySettings, replay
from ledger.replay.repair import repair
from ledger.replay.rollback import rollback
from ledger.replay.verify import verify
from ledger.schema import writes
from tests.test_replay import dump, sql_sink, synthetic

SMALL = ReplaySettings(batch_records=15)


@pytest.fixture
def target_url(tmp_path):
    return f"sqlite:///{tmp_path / 'target.db'}"


@pytest.fixture
def fail_at(monkeypatch):
    def arm(point: str, hit: int) -> None:
        monkeypatch.setitem(failpoints._plan, point, (hit, "raise"))
        monkeypatch.setattr(failpoints, "_hits", failpoints.Counter())

    return arm


def test_an_interrupted_rollback_continues_when_run_again(ledger, target_url, fail_at):
    synthetic(ledger, users=3)
    first = replay(ledger, sql_sink(ledger, target_url), ["syn"])
    fail_at("replay.record.after", 3)  # three batches committed, then the process fails
    with pytest.raises(failpoints.InjectedFailure):
        rollback(ledger, sql_sink(ledger, target_url), first.run_id, settings=SMALL)
    partly = dump(target_url)
    assert 0 < sum(map(len, partly.values())) < first.stats["written"]
    failpoints._plan.clear()

    resumed = rollback(ledger, sql_sink(ledger, target_url), first.run_id, settings=SMALL)
    assert resumed.status == "succeeded"
    assert resumed.stats["already_undone"] == 3 * SMALL.batch_records
    assert resumed.stats["written"] == first.stats["written"] - 3 * SMALL.batch_records
    assert dump(target_url) == {table: [] for table in partly}

    with pytest.raises(UsageError, match=f"already rolled back by run {resumed.run_id}"):
        rollback(ledger, sql_sink(ledger, target_url), first.run_id)
    # rolling back the resumed rollback writes the whole run again, both parts of it
    redone = rollback(ledger, sql_sink(ledger, target_url), resumed.run_id)
    assert redone.stats["written"] == first.stats["written"]
    assert verify(ledger, sql_sink(ledger, target_url), ["syn"]).matches


def test_runs_roll_back_newest_first_without_force(ledger, target_url):
    synthetic(ledger, users=4)
    states, run_ids = [dump(target_url)], []
    for mutation in (None, 0.3, 0.3):
        if mutation:
            synthetic(ledger, users=4, mutate=mutation, seed=len(run_ids))
        done = replay(
            ledger, sql_sink(ledger, target_url), ["syn"], settings=ReplaySettings(propagate_deletes=True)
        )
        assert done.stats["written"] > 0
        run_ids.append(done.run_id)
        states.append(dump(target_url))
    for run_id, before in zip(reversed(run_ids), reversed(states[:-1])):
        undone = rollback(ledger, sql_sink(ledger, target_url), run_id)
        assert undone.status == "succeeded" and undone.stats["forced_over"] == 0
        assert dump(target_url) == before or (not before and not any(dump(target_url).values()))


def test_a_run_rolls_back_after_a_repair_restored_what_it_wrote(ledger, target_url):
    from sqlalchemy import create_engine, text

    synthetic(ledger, users=3)
    first = replay(ledger, sql_sink(ledger, target_url), ["syn"])
    engine = create_engine(target_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE messages SET text = 'typed by hand' WHERE rowid = 2"))
    engine.dispose()
    fixed = repair(ledger, sql_sink(ledger, target_url), "resync", ["syn"])
    assert fixed.stats["fixes"] == 1
    undone = rollback(ledger, sql_sink(ledger, target_url), first.run_id)
    assert undone.status == "succeeded" and undone.stats["forced_over"] == 0
    assert all(not rows for rows in dump(target_url).values())


def test_rollback_undoes_in_reverse_children_before_parents(ledger, target_url):
    synthetic(ledger, users=3)
    first = replay(ledger, sql_sink(ledger, target_url), ["syn"])
    undone = rollback(ledger, sql_sink(ledger, target_url), first.run_id, settings=SMALL)
    with ledger.read() as conn:
        order = [row.key.split(":", 1)[0] for row in conn.execute(
            select(writes.c.key).where(writes.c.run_id == undone.run_id).order_by(writes.c.id)
        )]  # fmt: skip
    ranks = [REPLAY_ORDER[kind] for kind in order]
    assert set(order) >= {"user", "conversation", "message"}
    assert ranks == sorted(ranks, reverse=True), "rollback ran forward: parents before children"


def test_skip_writes_leave_the_target_alone(ledger, target_url):
    """A ``skip`` write recorded a record the sink did not write: nothing to undo there."""
    synthetic(ledger, users=2)
    first = replay(ledger, sql_sink(ledger, target_url), ["syn"])
    with ledger.write() as conn:
        conn.execute(writes.insert().values(
            run_id=first.run_id, target="out", stream="syn", key="assistant:not-carried", version=1,
            hash="0" * 64, action="skip", target_ref=None, prior_version=None, prior_hash=None,
            at=runs.utcnow(),
        ))  # fmt: skip
    undone = rollback(ledger, sql_sink(ledger, target_url), first.run_id)
    assert undone.status == "succeeded" and undone.stats["written"] == first.stats["written"]
    assert not any(dump(target_url).values())
