"""A real SIGKILL at any moment of an extraction, then a re-run: the ledger ends exactly
as after a clean run, with no duplicate versions (both ledger backends)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict

import pytest
from sqlalchemy import select

from ledger.schema import events
from ledger.store import Ledger
from tests.conftest import head_rows, run_cli

BASE = ["extract", "synthetic", "--name", "syn", "--users", "12", "--seed", "5"]
MUTATED = [*BASE, "--mutate", "0.4"]
SMALL_BATCHES = ["--batch-size", "150", "--no-progress"]


def extract_cli(url, args, tmp_path, env=None):
    return run_cli("--ledger", url, *args, *SMALL_BATCHES, cwd=tmp_path, env=env)


@pytest.fixture(scope="module")
def clean_heads(tmp_path_factory):
    """Heads and event count after a clean base extraction followed by a mutated one."""
    where = tmp_path_factory.mktemp("clean")
    url = f"sqlite:///{where}/clean.db"
    for args in (BASE, MUTATED):
        done = extract_cli(url, args, where)
        assert done.returncode == 0, done.stderr
    ledger = Ledger.open(url)
    with ledger.read() as conn:
        count = len(conn.execute(select(events.c.seq)).all())
    return head_rows(ledger, "syn"), count


def assert_like_clean(url, clean_heads):
    heads, event_count = clean_heads
    ledger = Ledger.open(url)
    assert head_rows(ledger, "syn") == heads
    with ledger.read() as conn:
        rows = conn.execute(select(events.c.key, events.c.version)).all()
    versions = defaultdict(list)
    for key, version in rows:
        versions[key].append(version)
    for key, found in versions.items():
        assert sorted(found) == list(range(1, len(found) + 1)), f"{key} has versions {found}"
    assert len(rows) == event_count
    ledger.close()


FAILPOINTS = (
    "extract.commit.before=2",
    "extract.commit.inside=3",
    "extract.commit.after=1",
    "extract.commit.after=4",
    "extract.read.scope=6",
)
#: by default: on SQLite every moment of a commit and the reader's death; on Postgres the
#: two whose outcome is the server's (a transaction killed midway, one committed). The
#: rest (a repeat of after=N; moments that do not depend on the backend) with -m stress.
DEFAULT = {
    ("sqlite", "extract.commit.before=2"),
    ("sqlite", "extract.commit.inside=3"),
    ("sqlite", "extract.commit.after=4"),
    ("sqlite", "extract.read.scope=6"),
    ("postgres", "extract.commit.inside=3"),
    ("postgres", "extract.commit.after=1"),
}
KILLS = [
    pytest.param(
        backend, failpoint, id=f"{backend}-{failpoint}",
        marks=() if (backend, failpoint) in DEFAULT else pytest.mark.stress,
    )
    for backend in ("sqlite", "postgres")
    for failpoint in FAILPOINTS
]  # fmt: skip


@pytest.mark.parametrize(("ledger_url", "failpoint"), KILLS, indirect=["ledger_url"])
def test_sigkill_at_a_failpoint_then_rerun(ledger_url, tmp_path, clean_heads, failpoint):
    assert extract_cli(ledger_url, BASE, tmp_path).returncode == 0
    killed = extract_cli(ledger_url, MUTATED, tmp_path, env={"CHATLEDGER_FAILPOINTS": failpoint})
    if failpoint.startswith("extract.read"):
        # the reader process was killed: the writer reports it and fails the run
        assert killed.returncode == 1 and "reader process" in killed.stderr
    else:
        assert killed.returncode == -signal.SIGKILL, killed.stderr
    rerun = extract_cli(ledger_url, MUTATED, tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert_like_clean(ledger_url, clean_heads)
    status = run_cli("--ledger", ledger_url, "runs", "--json", cwd=tmp_path)
    assert '"interrupted"' in status.stdout or '"failed"' in status.stdout


def kill_at_random_moments(url, tmp_path, trials, seed) -> int:
    """SIGKILL extractions after random delays; return how many were killed mid-run."""
    chance = random.Random(seed)
    command = [sys.executable, "-m", "ledger", "--ledger", url, *MUTATED, *SMALL_BATCHES]
    # a pause after the 2nd commit keeps the run alive long enough to be hit
    env = {**os.environ, "CHATLEDGER_FAILPOINTS": "extract.commit.after=2:sleep=1.5"}
    killed = 0
    for _ in range(trials):
        process = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(chance.uniform(0.4, 2.4))
        os.kill(process.pid, signal.SIGKILL)
        killed += process.wait() == -signal.SIGKILL
    return killed


def test_sigkill_at_random_moments_then_rerun(ledger_url, tmp_path, clean_heads):
    assert extract_cli(ledger_url, BASE, tmp_path).returncode == 0
    assert kill_at_random_moments(ledger_url, tmp_path, trials=3, seed=11) >= 1
    rerun = extract_cli(ledger_url, MUTATED, tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert_like_clean(ledger_url, clean_heads)


@pytest.mark.stress
def test_many_random_kills(tmp_path, clean_heads):
    url = f"sqlite:///{tmp_path}/stress.db"
    assert extract_cli(url, BASE, tmp_path).returncode == 0
    assert kill_at_random_moments(url, tmp_path, trials=25, seed=99) >= 10
    assert extract_cli(url, MUTATED, tmp_path).returncode == 0
    assert_like_clean(url, clean_heads)
