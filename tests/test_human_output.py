"""Writing commands on the operator's path: text output with progress, piped (structlog
lines) and under a pseudo-terminal (the rich bar), not only ``--json`` (issue 10, item 6).

Every progress implementation satisfies one protocol, in any order of calls: a rollback
that crashed on its progress display after its first batch left a target half rolled back.
"""

from __future__ import annotations

import inspect
import os
import pty
import select
import sqlite3
import subprocess
import sys

import pytest

from ledger import runs
from ledger.cli import progress as progress_module
from ledger.cli.progress import RichProgress
from ledger.progress import LogProgress, NoProgress, Progress
from ledger.store import Ledger
from tests.conftest import run_cli

CONFIG = """
[sources.syn]
type = "synthetic"
seed = 7
users = 12

[targets.out]
type = "sql"
url = "sqlite:///target.db"
"""
TABLES = ("users", "conversations", "messages", "files", "records")
IMPLEMENTATIONS = (NoProgress, LogProgress, RichProgress)


def rows(path) -> int:
    with sqlite3.connect(path) as conn:
        return sum(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES)


def run_in_terminal(*args: str, cwd, timeout: float = 120) -> tuple[int, str]:
    """The real CLI with stdin, stdout and stderr on a pseudo-terminal."""
    leader, follower = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "ledger", *args],
        cwd=cwd, stdin=follower, stdout=follower, stderr=follower,
        env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
    )  # fmt: skip
    os.close(follower)
    output = bytearray()
    while True:
        ready, _, _ = select.select([leader], [], [], timeout)
        if not ready:
            child.kill()
            pytest.fail(f"{args} hung on the terminal; output so far: {output.decode(errors='replace')}")
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    return child.wait(timeout), output.decode(errors="replace")


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_every_progress_satisfies_the_protocol_in_any_order(implementation):
    members = [name for name in vars(Progress) if not name.startswith("_")]
    assert set(members) == {"start", "advance", "finish"}
    for name in members:
        assert inspect.signature(getattr(implementation, name)) == inspect.signature(getattr(Progress, name))
    shown = implementation()
    assert isinstance(shown, Progress)
    shown.advance(2, records=5)  # before start: a command that never started the display
    shown.start("first", None)
    shown.advance(1, records=3)
    shown.finish()
    shown.advance(1, records=1)  # after finish
    shown.start("second", 10)
    shown.advance(3)
    shown.finish()


def test_for_terminal_picks_each_implementation(monkeypatch):
    assert isinstance(progress_module.for_terminal(False), NoProgress)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert isinstance(progress_module.for_terminal(True), LogProgress)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert isinstance(progress_module.for_terminal(True), RichProgress)


@pytest.fixture
def migrated(tmp_path):
    (tmp_path / "chatledger.toml").write_text(CONFIG)
    done = run_cli("migrate", "syn", "out", "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert rows(tmp_path / "target.db") > 100
    replay = runs.list_runs(Ledger.open(f"sqlite:///{tmp_path / 'chatledger.db'}"), command="replay")[0]
    return tmp_path, replay.id


def held_records(where) -> int:
    with sqlite3.connect(where / "chatledger.db") as conn:
        return conn.execute("SELECT count(*) FROM target_state WHERE NOT skipped").fetchone()[0]


def _edit_one_message(path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE messages SET text = 'typed by hand' WHERE rowid = 3")


def test_rollback_and_repair_piped(migrated):
    where, replay_id = migrated
    _edit_one_message(where / "target.db")
    repaired = run_cli("repair", "out", "resync", cwd=where)
    assert repaired.returncode == 0, repaired.stderr
    assert "repair resync: 1 fix(es)" in repaired.stdout and "drifted" in repaired.stdout
    held = held_records(where)
    assert f"done={held}" in repaired.stderr and f"total={held}" in repaired.stderr  # the progress line
    assert "fixes=1" in repaired.stderr
    assert run_cli("verify", "out", cwd=where).returncode == 0

    undone = run_cli("rollback", str(replay_id), cwd=where)
    assert undone.returncode == 0, undone.stderr
    assert "progress done" in undone.stderr  # the structlog progress line
    assert rows(where / "target.db") == 0
    again = run_cli("rollback", str(replay_id), cwd=where)
    assert again.returncode == 2 and "already rolled back by run" in again.stderr


def test_rollback_and_repair_on_a_terminal(migrated):
    where, replay_id = migrated
    _edit_one_message(where / "target.db")
    code, shown = run_in_terminal("repair", "out", "resync", cwd=where)
    assert code == 0, shown
    assert "repair resync: 1 fix(es)" in shown
    held = held_records(where)  # the bar's total: every record the target holds, examined
    assert f"0/{held}" in shown and f"{held}/{held}" in shown and "fixes 1" in shown
    code, shown = run_in_terminal("repair", "out", "resync", "--dry-run", cwd=where)
    assert code == 0 and f"{held}/{held}" in shown and "fixes 0" in shown, shown
    code, shown = run_in_terminal("rollback", str(replay_id), cwd=where)
    assert code == 0, shown
    assert "rolled back run(s)" in shown and "Traceback" not in shown
    assert rows(where / "target.db") == 0


def test_report_of_a_repair_whose_fixes_name_no_unit(tmp_path):
    """Onyx's latest-child reports (session, row, fix, to); report used to need 'unit'."""
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'chatledger.db'}")
    run_id = runs.start_run(ledger, "repair", target="onyx")
    sample = [{"session": "0b8c", "row": 41, "fix": "latest_child", "to": 42}]
    stats = {"tables": {}, "written": 0, "rule": "latest-child", "fixes": 1, "sample": sample}
    runs.finish_run(ledger, run_id, runs.SUCCEEDED, stats)
    ledger.close()
    shown = run_cli("report", str(run_id), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "repair latest-child: 1 fix(es)" in shown.stdout
    assert "latest_child: row 41  session 0b8c  to 42" in shown.stdout


def test_onyx_latest_child_repair_and_its_report_in_text(postgres_database, tmp_path):
    """Onyx's repair fixed the pointers, then exited 1 with KeyError: 'unit' (the text
    report), and ``report`` of that run crashed too. Onyx's API is simulated
    (tests/librechat_onyx/onyx.py); Postgres holds Onyx's real DDL."""
    from tests.librechat_onyx.fixtures import EDITS
    from tests.librechat_onyx.harness import execute
    from tests.librechat_onyx.onyx import API_KEY, OnyxApi, load_onyx, plain_url
    from tests.test_onyx_migrate_cli import write_config

    load_onyx(postgres_database)
    env = {"ONYX_DB_URL": plain_url(postgres_database), "ONYX_API_KEY": API_KEY}
    with OnyxApi(postgres_database) as api:
        write_config(tmp_path, api)
        # exit 4: finished, the fixture's stray message rejected
        assert run_cli("migrate", "lc", "onyx", "--no-progress", cwd=tmp_path, env=env).returncode == 4
        execute(
            postgres_database,
            "UPDATE chat_message SET latest_child_message_id = NULL WHERE chat_session_id = %s::uuid",
            (EDITS,),
        )
        fixed = run_cli("repair", "onyx", "latest-child", cwd=tmp_path, env=env)  # piped, with progress
        assert fixed.returncode == 0, fixed.stderr
        assert "repair latest-child: 5 fix(es)" in fixed.stdout and "latest_child: row" in fixed.stdout
        repair_run = runs.list_runs(Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}"), command="repair")[0]
        shown = run_cli("report", str(repair_run.id), cwd=tmp_path, env=env)
        assert shown.returncode == 0 and "repair latest-child: 5 fix(es)" in shown.stdout
