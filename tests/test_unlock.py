"""``unlock`` breaks only a lock whose holder is provably gone (issue 10, item 11): a live
holder on this host is refused (two writers would run), ``--force`` breaks it with a
warning, a dead holder's lock goes without it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ledger import runs
from ledger.schema import locks as lock_table
from ledger.store import Ledger
from tests.conftest import run_cli


@pytest.fixture
def ledger_url(tmp_path):  # the lock rules are the ledger's, not the backend's: SQLite only
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
def ledger(ledger_url):
    opened = Ledger.open(ledger_url)
    yield opened
    opened.close()


def hold(ledger, pid: int, host: str = runs.HOST) -> int:
    run_id = runs.start_run(ledger, "replay", target="out")
    with ledger.write() as conn:
        conn.execute(lock_table.insert().values(
            name="target:out", run_id=run_id, host=host, pid=pid,
            acquired_at=runs.utcnow(), heartbeat_at=runs.utcnow(),
        ))  # fmt: skip
    return run_id


def test_a_live_local_holder_is_refused_and_force_warns(ledger, ledger_url, tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run_id = hold(ledger, holder.pid)
        refused = run_cli("--ledger", ledger_url, "unlock", "target:out", cwd=tmp_path)
        assert refused.returncode == 1
        assert f"run {run_id} (pid {holder.pid}), is still running on this host" in refused.stderr
        assert "--force" in refused.stderr
        assert runs.get_run(ledger, run_id).status == "running"
        forced = run_cli("--ledger", ledger_url, "unlock", "target:out", "--force", cwd=tmp_path)
        assert forced.returncode == 0, forced.stderr
        assert "warning" in forced.stderr and "may still be writing" in forced.stderr
        assert runs.get_run(ledger, run_id).status == "interrupted"
    finally:
        holder.kill()
        holder.wait()


def test_a_dead_local_holder_is_unlocked_without_force(ledger, ledger_url, tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run_id = hold(ledger, dead.pid)
    done = run_cli("--ledger", ledger_url, "unlock", "target:out", cwd=tmp_path)
    assert done.returncode == 0 and f"held by run {run_id}" in done.stdout
    assert "warning" not in done.stderr


def test_this_process_counts_as_alive(ledger, ledger_url, tmp_path):
    hold(ledger, os.getpid())
    assert run_cli("--ledger", ledger_url, "unlock", "target:out", cwd=tmp_path).returncode == 1
