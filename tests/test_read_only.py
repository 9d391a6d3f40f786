"""Read-only commands never write anywhere (issue 10, items 12 and 17).

``verify`` and ``repair --dry-run`` leave the target as they found it (no sink tables,
no folders, no SQLite file); dry runs and read commands never create a ledger; a ledger
on a read-only filesystem can still be read by ``runs``, ``status`` and ``report``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from ledger.replay import ReplaySettings
from ledger.replay.repair import repair
from ledger.replay.verify import verify
from ledger.sink import SinkContext
from ledger.store import normalize_url
from sinks.sql import SqlOptions, SqlSink
from tests.conftest import run_cli
from tests.test_replay import synthetic

CONFIG = """
[ledger]
url = "sqlite:///ledger.db"

[sources.syn]
type = "synthetic"
seed = 7
users = 3

[targets.out]
type = "sql"
url = "{url}"

[targets.files]
type = "bundle"
path = "bundle"
"""


def tables(url: str) -> set[str]:
    engine = create_engine(normalize_url(url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.fixture(params=["postgres", "mariadb"])
def server_url(request):
    return request.getfixturevalue(f"{request.param}_database")


def extract_into(tmp_path, target_url):
    (tmp_path / "chatledger.toml").write_text(CONFIG.format(url=target_url))
    done = run_cli("extract", "syn", "--no-progress", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return tmp_path


def test_verify_and_repair_dry_run_create_nothing_in_the_target(tmp_path):
    extracted = extract_into(tmp_path, f"sqlite:///{tmp_path / 'target.db'}")
    for command in (
        ["verify", "out"], ["repair", "out", "resync", "--dry-run"],
        ["verify", "files"], ["repair", "files", "resync", "--dry-run"],
    ):  # fmt: skip
        done = run_cli(*command, cwd=extracted)
        assert done.returncode in (0, 3), done.stderr
    assert not (extracted / "target.db").exists()
    assert not (extracted / "bundle").exists()


def test_a_server_target_gets_no_tables_from_verify_or_a_dry_repair(ledger, server_url):
    synthetic(ledger, users=2)
    sink = SqlSink(SqlOptions(url=server_url), SinkContext("out", ledger.blobs, read_only=True))
    checked = verify(ledger, sink, ["syn"])  # nothing written yet: all pending, nothing else
    assert checked.consistent and checked.counts["pending"] > 0
    assert repair(ledger, sink, "resync", ["syn"], settings=ReplaySettings(dry_run=True)).run_id is None
    assert tables(server_url) == set()


def test_verify_reads_a_written_target_without_writing(tmp_path):
    extracted = extract_into(tmp_path, f"sqlite:///{tmp_path / 'target.db'}")
    assert run_cli("replay", "out", "--no-progress", cwd=extracted).returncode == 0
    checked = run_cli("verify", "out", "--json", cwd=extracted)
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["matches"]


def test_a_read_command_on_a_mistyped_ledger_creates_nothing(tmp_path):
    for command in (["runs"], ["status"], ["report", "1"], ["verify", "out"]):
        done = run_cli("--ledger", f"sqlite:///{tmp_path / 'typo' / 'ledgr.db'}", *command, cwd=tmp_path)
        assert done.returncode == 2, (command, done.stderr)
        assert "there is no ledger at" in done.stderr
    assert not (tmp_path / "typo").exists()


def test_dry_runs_of_extract_and_migrate_create_no_ledger(tmp_path):
    (tmp_path / "chatledger.toml").write_text(CONFIG.format(url=f"sqlite:///{tmp_path / 'target.db'}"))
    for command in (["extract", "syn", "--dry-run"], ["migrate", "syn", "out", "--dry-run"]):
        done = run_cli(*command, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["chatledger.toml"]


@contextlib.contextmanager
def read_only_copy(folder: Path, into: Path):
    """``folder``'s files on a tmpfs remounted read-only (needs mount rights: root)."""
    into.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(into)], capture_output=True
    ).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        for path in folder.iterdir():
            if path.is_file():
                shutil.copy2(path, into / path.name)
        subprocess.run(["mount", "-o", "remount,ro", str(into)], check=True)
        yield into
    finally:
        subprocess.run(["umount", str(into)], check=True)


def test_a_ledger_on_a_read_only_filesystem_can_be_read(tmp_path):
    extracted = extract_into(tmp_path, f"sqlite:///{tmp_path / 'target.db'}")
    with read_only_copy(extracted, tmp_path / "ro") as folder:
        ledger = f"sqlite:///{folder / 'ledger.db'}"
        for command in (["runs"], ["status"], ["report", "1"], ["status", "--json"]):
            done = run_cli("--ledger", ledger, *command, cwd=extracted)
            assert done.returncode == 0, (command, done.stderr)
        assert "extract" in run_cli("--ledger", ledger, "runs", cwd=extracted).stdout
