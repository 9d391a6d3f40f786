"""A fault-injecting sink: transient failures and timeouts are retried until they pass;
a permanent failure rejects exactly the unit that causes it, the rest lands, nothing of
the bad unit is half-written, and the run ends failed."""

from __future__ import annotations

import random
import time

from sqlalchemy import select

from ledger import runs
from ledger.replay import ReplaySettings, RetryPolicy, replay
from ledger.replay.verify import verify
from ledger.schema import heads, rejects, target_state
from ledger.sink import PermanentError, SinkContext, TransientError
from sinks.sql import SqlOptions, SqlSink
from tests.test_replay import dump, synthetic

FAST_RETRIES = RetryPolicy(attempts=8, base_seconds=0.001, max_seconds=0.01)


class FaultySink(SqlSink):
    """The sql sink with failures injected at seeded probabilities.

    - ``transient``: the chance that a batch fails with a lost connection;
    - ``timeout``: the chance that it stalls, then times out;
    - ``poison``: record keys that fail permanently, after the rows before them in the
      same transaction were already written (which the transaction must undo).
    """

    def __init__(self, url, ledger, *, transient=0.0, timeout=0.0, poison=(), seed=1):
        super().__init__(SqlOptions(url=url), SinkContext("faulty", ledger.blobs))
        self.chance = random.Random(seed)
        self.transient, self.timeout, self.poison = transient, timeout, set(poison)
        self.failures = {"transient": 0, "timeout": 0, "permanent": 0}

    def apply(self, units, run_id, *, truncate=False):
        roll = self.chance.random()
        if roll < self.transient:
            self.failures["transient"] += 1
            raise TransientError("connection reset by peer (injected)")
        if roll < self.transient + self.timeout:
            self.failures["timeout"] += 1
            time.sleep(0.01)
            raise TimeoutError("statement timeout (injected)")
        return super().apply(units, run_id, truncate=truncate)

    def row(self, stream, key, document, version, digest):
        if key in self.poison:
            self.failures["permanent"] += 1
            raise PermanentError(f"value too long for column (injected) in {key}")
        return super().row(stream, key, document, version, digest)


def test_transient_failures_and_timeouts_are_retried(ledger, tmp_path):
    synthetic(ledger)
    clean = f"sqlite:///{tmp_path / 'clean.db'}"
    replay(ledger, SqlSink(SqlOptions(url=clean), SinkContext("clean", ledger.blobs)), ["syn"])
    url = f"sqlite:///{tmp_path / 'faulty.db'}"
    sink = FaultySink(url, ledger, transient=0.3, timeout=0.2, seed=3)
    result = replay(ledger, sink, ["syn"], settings=ReplaySettings(batch_records=50, retry=FAST_RETRIES))
    assert result.status == "succeeded"
    assert sink.failures["transient"] > 0 and sink.failures["timeout"] > 0
    assert result.stats["retries"] == sink.failures["transient"] + sink.failures["timeout"]
    assert dump(url) == dump(clean)
    assert verify(ledger, SqlSink(SqlOptions(url=url), SinkContext("faulty", ledger.blobs)), ["syn"]).matches


def test_retries_give_up_and_fail_the_run(ledger, tmp_path):
    synthetic(ledger)
    sink = FaultySink(f"sqlite:///{tmp_path / 'down.db'}", ledger, transient=1.0)
    try:
        replay(ledger, sink, ["syn"], settings=ReplaySettings(retry=RetryPolicy(3, 0.001, 0.01)))
        raise AssertionError("the replay succeeded against a target that is always down")
    except Exception as error:
        assert "still failing after 3 attempts" in str(error)
    assert runs.list_runs(ledger, target="faulty", limit=1)[0].status == "failed"
    with ledger.read() as conn:
        assert conn.execute(select(target_state)).first() is None


def replay_with_a_poison(ledger, tmp_path):
    """A replay of a synthetic stream in which one message fails for good: every key of
    the stream, the poisoned one, the target's URL and the result."""
    synthetic(ledger)
    with ledger.read() as conn:
        everything = set(conn.scalars(select(heads.c.key)))
        messages = sorted(conn.scalars(select(heads.c.key).where(heads.c.kind == "message")))
    poison = messages[len(messages) // 2]
    url = f"sqlite:///{tmp_path / 'target.db'}"
    sink = FaultySink(url, ledger, poison=[poison])
    result = replay(ledger, sink, ["syn"], settings=ReplaySettings(batch_records=40, retry=FAST_RETRIES))
    return everything, poison, url, result


def test_a_permanent_failure_rejects_only_its_unit(ledger, tmp_path):
    everything, poison, url, result = replay_with_a_poison(ledger, tmp_path)

    assert result.status == "with-rejects" and result.stats["rejected_units"] == 1
    written = {row[1] for rows in dump(url).values() for row in rows}
    assert written == everything - {poison}  # the rest landed, nothing of the bad unit
    with ledger.read() as conn:
        held = set(conn.scalars(select(target_state.c.key)))
        stored = conn.execute(select(rejects)).all()
    assert held == written
    assert len(stored) == 1 and stored[0].target == "faulty"
    assert stored[0].location == f"message unit {poison}"
    assert "value too long" in stored[0].reason
    # once fixed, a later replay writes that unit and nothing else
    fixed = replay(ledger, SqlSink(SqlOptions(url=url), SinkContext("faulty", ledger.blobs)), ["syn"])
    assert fixed.status == "succeeded" and fixed.stats["written"] == 1
