"""One writer per stream: a second concurrent extraction refuses; stale locks are healed."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from sqlalchemy import select

from ledger import locks, runs
from ledger.errors import LockHeld
from ledger.schema import locks as lock_table
from tests.conftest import run_cli

SYNTHETIC = ["extract", "synthetic", "--name", "syn", "--users", "6", "--seed", "1"]


def wait_for_lock(ledger, name, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with ledger.read() as conn:
            if conn.execute(select(lock_table).where(lock_table.c.name == name)).first():
                return
        time.sleep(0.1)
    raise AssertionError(f"{name} was never taken")


def test_a_second_extract_of_the_same_stream_refuses(ledger, ledger_url, tmp_path):
    released = tmp_path / "released"  # the holder keeps its lock until the checks are done
    holder = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ledger",
            "--ledger",
            ledger_url,
            *SYNTHETIC,
            "--batch-size",
            "100",
            "--no-progress",
        ],
        cwd=tmp_path,
        env={**os.environ, "CHATLEDGER_FAILPOINTS": f"extract.commit.after=1:wait={released}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_lock(ledger, "stream:syn")
        second = run_cli("--ledger", ledger_url, *SYNTHETIC, cwd=tmp_path)
        assert second.returncode == 1
        assert "stream:syn is locked by run 1" in second.stderr
        assert "chatledger unlock stream:syn" in second.stderr
        # another stream is not blocked
        other = run_cli(
            "--ledger", ledger_url, "extract", "synthetic", "--name", "other", "--users", "2", cwd=tmp_path
        )
        assert other.returncode == 0, other.stderr
    finally:
        released.touch()
        assert holder.wait(60) == 0, holder.communicate()[1]
    statuses = {run.id: run.status for run in runs.list_runs(ledger)}
    assert statuses[1] == "succeeded" and statuses[2] == "refused"
    assert "locked" in runs.get_run(ledger, 2).error


def test_a_lock_of_a_dead_process_is_broken_and_its_run_marked_interrupted(ledger):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run_id = runs.start_run(ledger, "extract", stream="syn")
    with ledger.write() as conn:
        conn.execute(
            lock_table.insert().values(
                name="stream:syn", run_id=run_id, host=runs.HOST, pid=dead.pid,
                acquired_at=runs.utcnow(), heartbeat_at=runs.utcnow(),
            )
        )  # fmt: skip
    assert locks.list_locks(ledger)[0]["stale"] is True
    fresh = runs.start_run(ledger, "extract", stream="syn")
    locks.acquire(ledger, "stream:syn", fresh)
    assert runs.get_run(ledger, run_id).status == "interrupted"
    locks.release(ledger, "stream:syn", fresh)


def test_a_live_foreign_lock_refuses_until_unlocked(ledger, tmp_path, ledger_url):
    run_id = runs.start_run(ledger, "extract", stream="syn")
    with ledger.write() as conn:
        conn.execute(
            lock_table.insert().values(
                name="stream:syn", run_id=run_id, host="another-machine", pid=1,
                acquired_at=runs.utcnow(), heartbeat_at=runs.utcnow(),
            )
        )  # fmt: skip
    other = runs.start_run(ledger, "extract", stream="syn")
    try:
        locks.acquire(ledger, "stream:syn", other)
        raise AssertionError("acquired a lock held by a live holder")
    except LockHeld as exc:
        assert "pid 1 on another-machine" in str(exc)
    refused = run_cli("--ledger", ledger_url, "unlock", "stream:syn", cwd=tmp_path)
    assert refused.returncode == 1 and "runs on another machine" in refused.stderr
    unlocked = run_cli("--ledger", ledger_url, "unlock", "stream:syn", "--force", cwd=tmp_path)
    assert unlocked.returncode == 0 and "held by run 1" in unlocked.stdout
    assert runs.get_run(ledger, run_id).status == "interrupted"
    locks.acquire(ledger, "stream:syn", other)


def test_a_broken_lock_stops_its_old_holder(ledger):
    from ledger.errors import LockLost

    run_id = runs.start_run(ledger, "extract", stream="syn")
    locks.acquire(ledger, "stream:syn", run_id)
    locks.break_lock(ledger, "stream:syn", force=True)
    with ledger.write() as conn:
        try:
            locks.heartbeat(conn, "stream:syn", run_id)
            raise AssertionError("heartbeat on a broken lock succeeded")
        except LockLost:
            pass
