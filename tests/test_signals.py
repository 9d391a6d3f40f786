"""SIGTERM and Ctrl-C end a run ``interrupted``, release its lock and exit 143 / 130
promptly; a failure the ledger cannot record still reaches the user as itself."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from ledger import lifecycle, runs
from ledger.schema import locks, writes
from ledger.schema import runs as runs_table
from ledger.store import Ledger
from tests.test_replay import sql_sink, synthetic


def start(args, cwd, failpoints):
    env = {**os.environ, "CHATLEDGER_FAILPOINTS": failpoints}
    return subprocess.Popen(
        [sys.executable, "-m", "ledger", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a shell's background job ignores SIGINT; an operator's terminal does not
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def wait_until_running(ledger_url, command, blob_dir):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ledger = Ledger.open(ledger_url, blob_dir=blob_dir)
        try:
            with ledger.read() as conn:
                row = conn.execute(
                    select(runs_table.c.id).where(
                        runs_table.c.command == command, runs_table.c.status == "running"
                    )
                ).first()
        finally:
            ledger.close()
        if row:
            return row.id
        time.sleep(0.2)
    raise AssertionError(f"no {command} run started")


SQL_TABLES = ("users", "conversations", "messages", "files", "records")
SIGNALS = {"sigterm": (signal.SIGTERM, 143), "ctrl-c": (signal.SIGINT, 130)}
COMMANDS = {
    "extract": (
        ["extract", "synthetic", "--name", "syn", "--users", "40", "--batch-size", "50"],
        "extract.commit.after=2:sleep=60",
    ),
    "replay": (
        ["replay", "sql", "--name", "out", "--url", "{target}", "--batch-size", "20"],
        # the writer thread pauses before its third batch; the recorder has caught up
        "replay.apply=3:sleep=60",
    ),
}
#: by default each signal, command and backend twice (pairwise); -m stress: the rest
PAIRWISE = {
    ("sqlite", "sigterm", "extract"),
    ("postgres", "ctrl-c", "extract"),
    ("postgres", "sigterm", "replay"),
    ("sqlite", "ctrl-c", "replay"),
}
CASES = [
    pytest.param(
        backend, *SIGNALS[sent], *COMMANDS[verb], id=f"{backend}-{sent}-{verb}",
        marks=() if (backend, sent, verb) in PAIRWISE else pytest.mark.stress,
    )
    for backend in ("sqlite", "postgres")
    for sent in SIGNALS
    for verb in COMMANDS
]  # fmt: skip


@pytest.mark.parametrize(
    ("ledger_url", "sig", "code", "command", "failpoint"), CASES, indirect=["ledger_url"]
)
def test_a_signal_interrupts_the_run_and_releases_its_lock(
    tmp_path, ledger_url, sig, code, command, failpoint
):
    blobs = tmp_path / "blobs"
    if command[0] == "replay":
        ledger = Ledger.open(ledger_url, blob_dir=blobs)
        synthetic(ledger)
        ledger.close()
    args = [
        "--ledger",
        ledger_url,
        *[a.format(target=f"sqlite:///{tmp_path / 't.db'}") for a in command],
        "--no-progress",
    ]
    process = start(args, tmp_path, failpoint)
    run_id = wait_until_running(ledger_url, command[0], blobs)
    time.sleep(1.0)  # inside the failpoint's sleep, between two batches
    process.send_signal(sig)
    sent = time.monotonic()
    _, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    assert time.monotonic() - sent < 15, "the command did not stop promptly"
    assert "run the command again to continue" in err
    ledger = Ledger.open(ledger_url, blob_dir=blobs)
    try:
        run = runs.get_run(ledger, run_id)
        assert run.status == "interrupted" and run.finished_at is not None
        with ledger.read() as conn:
            assert conn.execute(select(locks)).all() == []
            recorded = conn.scalar(select(func.count()).select_from(writes).where(writes.c.run_id == run_id))
    finally:
        ledger.close()
    if command[0] == "replay":  # every batch the target committed was recorded before the exit
        with sqlite3.connect(tmp_path / "t.db") as target:
            held = sum(target.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in SQL_TABLES)
        assert held == recorded == 40


def test_a_failure_the_ledger_cannot_record_still_reaches_the_user(ledger, tmp_path, monkeypatch):
    """The disk filled up mid-replay and the ledger cannot write either: the user sees
    the disk error, not the ledger's "database is locked"."""
    synthetic(ledger)
    sink = sql_sink(ledger, f"sqlite:///{tmp_path / 't.db'}")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    def locked(*args, **kwargs):
        raise RuntimeError("database is locked")

    monkeypatch.setattr(sink, "apply", full_disk)
    monkeypatch.setattr(lifecycle.runs, "finish_run", locked)
    from ledger.replay import replay

    with pytest.raises(OSError, match="No space left on device"):
        replay(ledger, sink, ["syn"])
