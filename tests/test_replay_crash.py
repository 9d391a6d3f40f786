"""SIGKILL a replay at random points, re-run it: the target ends identical to a clean
run's, with no duplicates, and the ledger's target_state agrees with the target's markers.

The kill points cover the window DESIGN §6 is about: after the target committed a batch
and before the ledger recorded it (``replay.record.before``); the re-run heals the ledger
from the markers instead of writing twice.
"""

from __future__ import annotations

import random
import signal
from collections import Counter

import pytest
from sqlalchemy import create_engine, select, text

from ledger import runs
from ledger.replay import replay
from ledger.schema import target_state, writes
from ledger.sink import SinkContext
from ledger.store import Ledger
from sinks.sql import SqlOptions, SqlSink
from tests.conftest import run_cli
from tests.test_replay import dump, synthetic

POINTS = ("replay.apply", "replay.record.before", "replay.record.after")
BATCH = 60


def markers(url, target):
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT stream, record_key, version, hash FROM chatledger_markers WHERE target = :t"),
            {"t": target},
        )
        found = {tuple(row) for row in rows if row[3] is not None}
    engine.dispose()
    return found


def held(ledger, target):
    with ledger.read() as conn:
        rows = conn.execute(
            select(
                target_state.c.stream, target_state.c.key, target_state.c.version, target_state.c.hash
            ).where(target_state.c.target == target)
        )
        return {tuple(row) for row in rows}


def replay_cli(ledger_url, target, url, tmp_path, env=None):
    return run_cli(
        "--ledger", ledger_url, "replay", "sql", "--name", target, "--url", url,
        "--stream", "syn", "--batch-size", str(BATCH), "--no-progress",
        cwd=tmp_path, env=env,
    )  # fmt: skip


def run_trials(ledger_url, tmp_path, trials, seed):
    ledger = Ledger.open(ledger_url, blob_dir=tmp_path / "blobs")
    synthetic(ledger, users=4)
    clean_url = f"sqlite:///{tmp_path / 'clean.db'}"
    replay(ledger, SqlSink(SqlOptions(url=clean_url), SinkContext("clean", ledger.blobs)), ["syn"])
    clean = dump(clean_url)
    records = sum(len(rows) for rows in clean.values())
    chance = random.Random(seed)
    killed = healed = 0
    for trial in range(trials):
        target, url = f"t{trial}", f"sqlite:///{tmp_path / f't{trial}.db'}"
        # the first trials take each kill point in turn, the heal path (between the target's
        # commit and the ledger's) first; later ones pick at random
        point = POINTS[(trial + 1) % len(POINTS)] if trial < len(POINTS) else chance.choice(POINTS)
        hit = chance.randint(1, max(1, records // BATCH))
        first = replay_cli(ledger_url, target, url, tmp_path, env={"CHATLEDGER_FAILPOINTS": f"{point}={hit}"})
        assert first.returncode in (0, -signal.SIGKILL), first.stderr
        killed += first.returncode == -signal.SIGKILL
        again = replay_cli(ledger_url, target, url, tmp_path)
        assert again.returncode == 0, again.stderr
        if first.returncode == -signal.SIGKILL and point == "replay.record.before":
            rerun = runs.list_runs(ledger, target=target, limit=1)[0]
            assert rerun.stats["reconciled"] > 0, "the committed batch was not healed from markers"
            healed += 1
        assert dump(url) == clean, f"trial {trial}: {point}={hit}"
        assert held(ledger, target) == markers(url, target)
        with ledger.read() as conn:
            inserts = Counter(
                row.key
                for row in conn.execute(
                    select(writes.c.key).where(writes.c.target == target, writes.c.action == "insert")
                )
            )
        assert inserts and max(inserts.values()) == 1, "a record was inserted twice"
        assert sum(inserts.values()) == records
    ledger.close()
    assert healed, "no trial killed a replay between the target's commit and the ledger's"
    return killed


def test_sigkill_replay_at_each_point(ledger_url, tmp_path):
    # each kill point once (at a random batch); the kill campaign (test_kill_campaign.py)
    # kills every writing verb too; -m stress runs 100 trials here
    assert run_trials(ledger_url, tmp_path, trials=len(POINTS), seed=2026) >= 1


@pytest.mark.stress
def test_sigkill_replay_many_times(tmp_path):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    assert run_trials(url, tmp_path, trials=100, seed=7) >= 50
