"""The sink contract, run for every sink × backend (targets.py) and, for the "carries
every source" part, every source's stream (streams.py).

Every assertion reads the target back: a dump of everything in it, or ``verify``.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ledger import failpoints
from ledger.failpoints import InjectedFailure
from ledger.replay import ReplaySettings, replay
from ledger.replay.repair import repair
from ledger.replay.rollback import rollback
from ledger.replay.verify import verify
from ledger.retry import RetryPolicy
from ledger.schema import heads, target_state, writes
from ledger.store import Ledger
from tests.contracts import streams, targets
from tests.contracts.faults import Faulty

FAST_RETRIES = RetryPolicy(attempts=6, base_seconds=0.001, max_seconds=0.01)


@pytest.fixture
def ledger(tmp_path):
    opened = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", blob_dir=tmp_path / "blobs")
    yield opened
    opened.close()


@pytest.fixture(params=targets.SELECTED)
def target(request, tmp_path) -> targets.Target:
    return targets.CASES[request.param].prepare(request, tmp_path)


def extracted(ledger, tmp_path, name="synthetic", stream="syn", **options):
    result = streams.CASES[name].extract(ledger, tmp_path / f"input-{stream}", stream, **options)
    # some real-format inputs include bad input their sources' tests reject on purpose
    allowed = {"succeeded"} if name == "synthetic" else {"succeeded", "with-rejects"}
    assert result.status in allowed, result.stats
    return stream


def writes_of(ledger, run_id):
    with ledger.read() as conn:
        return conn.execute(select(writes).where(writes.c.run_id == run_id)).all()


def assert_honest(ledger, run_id, sink):
    """The audit trail of a run: every write an insert/update/delete/skip, every skip
    with its reason and of a record verify does not look for; every carried kind."""
    rows = writes_of(ledger, run_id)
    assert {row.action for row in rows} <= {"insert", "update", "delete", "skip"}
    for row in rows:
        if row.action == "skip":
            assert row.reason, f"a skip without a reason: {row.key}"
        else:
            assert row.reason is None
    with ledger.read() as conn:
        skipped = {
            key
            for (key,) in conn.execute(
                select(target_state.c.key).where(
                    target_state.c.target == sink.target, target_state.c.skipped.is_(True)
                )
            )
        }
    assert skipped == {row.key for row in rows if row.action == "skip"} | (skipped - {r.key for r in rows})


class TestSinkContract:
    def test_a_second_replay_writes_nothing(self, ledger, tmp_path, target):
        stream = extracted(ledger, tmp_path)
        first = replay(ledger, target.sink(ledger), [stream])
        assert first.status == "succeeded", first.stats
        assert first.stats["written"] > 0
        assert_honest(ledger, first.run_id, target.sink(ledger))
        after_first = target.dump()
        second = replay(ledger, target.sink(ledger), [stream])
        assert second.stats["written"] == 0 and second.stats["skipped"] == 0
        assert writes_of(ledger, second.run_id) == []
        assert target.dump() == after_first
        assert verify(ledger, target.sink(ledger), [stream]).matches

    def test_rollback_restores_the_target_exactly(self, ledger, tmp_path, target):
        stream = extracted(ledger, tmp_path)
        target.sink(ledger).open()  # a target whose schema the sink created, but empty
        before = target.dump()
        first = replay(ledger, target.sink(ledger), [stream])
        assert target.dump() != before
        undone = rollback(ledger, target.sink(ledger), first.run_id)
        assert undone.status == "succeeded", undone.stats
        assert without_markers(target.dump()) == without_markers(before)

    def test_verify_sees_an_edit_and_resync_mends_it(self, ledger, tmp_path, target):
        stream = extracted(ledger, tmp_path)
        replay(ledger, target.sink(ledger), [stream])
        clean = target.dump()
        target.edit()
        checked = verify(ledger, target.sink(ledger), [stream])
        assert not checked.matches and checked.counts["drifted"] + checked.counts["missing"] >= 1
        mended = repair(ledger, target.sink(ledger), "resync", [stream])
        assert mended.stats["fixes"] >= 1
        assert verify(ledger, target.sink(ledger), [stream]).matches
        assert without_markers(target.dump()) == without_markers(clean)
        again = repair(ledger, target.sink(ledger), "resync", [stream])
        assert again.stats["fixes"] == 0 and again.stats["written"] == 0

    def test_a_dry_run_writes_nothing(self, ledger, tmp_path, target):
        stream = extracted(ledger, tmp_path)
        target.sink(ledger).open()
        before = target.dump()
        planned = replay(ledger, target.sink(ledger), [stream], settings=ReplaySettings(dry_run=True))
        assert planned.run_id is None and sum(c["insert"] for c in planned.stats["plan"].values()) > 0
        assert target.dump() == before

    def test_a_crash_between_target_and_ledger_commits_is_healed(self, ledger, tmp_path, target, monkeypatch):
        stream = extracted(ledger, tmp_path)
        monkeypatch.setitem(failpoints._plan, "replay.record.before", (1, "raise"))
        monkeypatch.setattr(failpoints, "_hits", failpoints.Counter())
        with pytest.raises(InjectedFailure):
            replay(ledger, target.sink(ledger), [stream], settings=ReplaySettings(batch_records=50))
        monkeypatch.delitem(failpoints._plan, "replay.record.before")
        again = replay(ledger, target.sink(ledger), [stream], settings=ReplaySettings(batch_records=50))
        assert again.status == "succeeded", again.stats
        assert verify(ledger, target.sink(ledger), [stream]).matches
        with ledger.read() as conn:
            inserts = conn.execute(select(writes.c.key).where(writes.c.action == "insert")).all()
        assert len(inserts) == len(set(inserts)), "a record was inserted twice"

    def test_a_permanent_failure_rejects_only_its_unit(self, ledger, tmp_path, target):
        stream = extracted(ledger, tmp_path)
        with ledger.read() as conn:
            conversations = sorted(
                conn.scalars(
                    select(heads.c.key).where(heads.c.kind == "conversation", heads.c.stream == stream)
                )
            )
        poison = conversations[len(conversations) // 2]
        sink = target.sink(ledger)
        faulty = Faulty(sink, poison={poison}, transient=0.2)  # a conversation's unit key is its own
        result = replay(
            ledger, faulty, [stream], settings=ReplaySettings(batch_records=40, retry=FAST_RETRIES)
        )
        assert result.status == "with-rejects" and result.stats["rejected_units"] == 1
        checked = verify(ledger, target.sink(ledger), [stream])
        assert checked.consistent  # everything written is right; the rejected unit is pending
        assert checked.counts["pending"] >= 1
        with ledger.read() as conn:
            held = set(conn.scalars(select(target_state.c.key).where(target_state.c.target == sink.target)))
        assert poison not in held

    def test_replace_truncate_touches_only_the_documented_set(self, ledger, tmp_path, target):
        stream = extracted(ledger, tmp_path)
        sink = target.sink(ledger)
        if "truncate" not in sink.capabilities:
            pytest.skip(f"the {sink.type_name} sink documents no truncatable table set")
        replay(ledger, target.sink(ledger), [stream])
        clean = target.dump()
        target.add_foreign()
        replaced = replay(
            ledger, target.sink(ledger), [stream], settings=ReplaySettings(policy="replace", truncate=True)
        )
        assert replaced.status == "succeeded", replaced.stats
        after = target.dump()
        foreign = {name: rows for name, rows in after.items() if name not in clean}
        assert foreign and all(foreign.values()), "replace --truncate removed what is not the sink's"
        assert without_markers({n: r for n, r in after.items() if n in clean}) == without_markers(clean)

    def test_deletes_propagate_only_when_asked(self, ledger, tmp_path, target):
        stream = extracted(ledger, tmp_path)
        replay(ledger, target.sink(ledger), [stream])
        extracted(ledger, tmp_path, mutate=0.3)
        merged = replay(ledger, target.sink(ledger), [stream])
        kept = verify(ledger, target.sink(ledger), [stream])
        assert kept.consistent and kept.counts["deleted_in_source"] > 0, kept.counts
        assert not any(row.action == "delete" for row in writes_of(ledger, merged.run_id))
        propagated = replay(
            ledger, target.sink(ledger), [stream], settings=ReplaySettings(propagate_deletes=True)
        )
        assert any(row.action == "delete" for row in writes_of(ledger, propagated.run_id))
        checked = verify(ledger, target.sink(ledger), [stream])
        assert checked.matches and checked.counts["deleted_in_source"] == 0, checked.counts


@pytest.mark.parametrize(
    "target, source",
    [
        pytest.param(
            target,
            source,
            marks=() if streams.in_default_suite(source, target, targets.SELECTED) else pytest.mark.stress,
        )
        for target in targets.SELECTED
        for source in streams.SELECTED
        if streams.lands_in(source, target)
    ],
    indirect=["target"],
)
def test_every_source_lands_with_no_rejects_and_no_silent_skips(ledger, tmp_path, target, source):
    stream = extracted(ledger, tmp_path, source, stream=source)
    result = replay(ledger, target.sink(ledger), [stream])
    assert result.status == "succeeded" and result.stats["rejected_units"] == 0, result.stats
    assert_honest(ledger, result.run_id, target.sink(ledger))
    with ledger.read() as conn:
        live = conn.scalar(
            select(heads.c.key).where(heads.c.stream == stream, heads.c.deleted.is_(False)).limit(1)
        )
        accounted = {row.key for row in writes_of(ledger, result.run_id)}
        every = set(
            conn.scalars(select(heads.c.key).where(heads.c.stream == stream, heads.c.deleted.is_(False)))
        )
    assert live is not None
    assert accounted == every, f"records with no outcome: {sorted(every - accounted)[:5]}"
    checked = verify(ledger, target.sink(ledger), [stream])
    assert checked.matches, checked.as_json()


def without_markers(dump):
    """A dump without the sink's marker table (its rows name the run that wrote them;
    a resync or a rollback is a new run, and rollback leaves the table itself)."""
    return {name: rows for name, rows in dump.items() if name != "chatledger_markers"}
