"""Read-only commands never write anywhere (issue 10, items 12 and 17).

``verify`` and ``repair --dry-run`` leave the target as they found it (no sink tables,
no folders, no SQLite file); dry runs and read commands never create a ledger; a ledger
on a read-only filesystem can still be read by ``runs``, ``status`` and ``report``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from ledger import api
from ledger import config as configuration
from ledger.extract import ExtractSettings
from ledger.replay import ReplaySettings
from ledger.replay.repair import repair
from ledger.replay.verify import verify
from ledger.sink import SinkContext
from ledger.store import Ledger, normalize_url
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


# -- dry runs from a ledger this process cannot write -----------------------------------


@pytest.fixture
def extracted_ledger(tmp_path):
    """A ledger holding the syn stream (155 records, none replayed); its folder."""
    (tmp_path / "chatledger.toml").write_text(CONFIG.format(url=f"sqlite:///{tmp_path / 'target.db'}"))
    config = configuration.load_config(tmp_path / "chatledger.toml")
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    api.extract_stream(ledger, config, "syn", settings=ExtractSettings(parallel=False))
    ledger.close()
    return tmp_path


@contextlib.contextmanager
def immutable(path: Path):
    """``path`` made immutable (chattr +i): not even root may write it."""
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)]).returncode:
        pytest.skip("chattr +i is not available here")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def event_count(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]


def test_a_dry_run_plans_from_a_ledger_file_it_cannot_write(extracted_ledger):
    where = extracted_ledger
    events = event_count(where / "ledger.db")
    with immutable(where / "ledger.db"):
        planned = run_cli("replay", "out", "--dry-run", cwd=where)
        assert planned.returncode == 0, planned.stderr
        cells = [line.split() for line in planned.stdout.splitlines()]
        rows = {cell[0]: cell[1:] for cell in cells if len(cell) > 1 and cell[1].isdigit()}
        assert rows["message"][0] == "132" and rows["user"][0] == "3"  # insert: what the ledger holds
        rehearsed = run_cli("migrate", "syn", "out", "--dry-run", cwd=where)
        assert rehearsed.returncode == 0, rehearsed.stderr
        assert "the plan counts only what the ledger holds (a read-only ledger cannot" in rehearsed.stdout
        refused = run_cli("replay", "out", "--no-progress", cwd=where)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert f"the ledger at sqlite:///{where / 'ledger.db'} is read-only" in refused.stderr
    assert "a --dry-run plans from it" in refused.stderr
    assert not (where / "target.db").exists()  # refused before the target was touched
    assert event_count(where / "ledger.db") == events


def test_a_read_only_ledger_url_opens_the_ledger_read_only(extracted_ledger):
    where = extracted_ledger
    url = f"sqlite:///file:{where / 'ledger.db'}?mode=ro&uri=true"
    planned = run_cli("--ledger", url, "replay", "out", "--dry-run", "--json", cwd=where)
    assert planned.returncode == 0, planned.stderr
    plan = {entry["kind"]: entry["insert"] for entry in json.loads(planned.stdout)["stats"]["plan"]}
    assert plan == {"user": 3, "file": 5, "conversation": 15, "message": 132}  # not an empty scratch ledger
    refused = run_cli("--ledger", url, "extract", "syn", "--no-progress", cwd=where)
    assert refused.returncode == 2 and "is read-only" in refused.stderr and "mode=ro" in refused.stderr


def test_a_ledger_that_cannot_be_opened_is_named_not_traced(tmp_path):
    (tmp_path / "chatledger.toml").write_text(CONFIG.format(url=f"sqlite:///{tmp_path / 'target.db'}"))
    (tmp_path / "garbage.db").write_text("not a database\n" * 200)
    (tmp_path / "folder.db").mkdir()
    garbage = run_cli("--ledger", f"sqlite:///{tmp_path / 'garbage.db'}", "migrate", "syn", "out", "--dry-run",
                      cwd=tmp_path)  # fmt: skip
    assert garbage.returncode == 1 and "Traceback" not in garbage.stderr
    assert f"the ledger at sqlite:///{tmp_path / 'garbage.db'} cannot be opened: file is not a database" in (
        garbage.stderr
    )
    folder = run_cli(
        "--ledger", f"sqlite:///{tmp_path / 'folder.db'}", "replay", "out", "--dry-run", cwd=tmp_path
    )
    assert folder.returncode == 2 and f"{tmp_path / 'folder.db'} is a folder" in folder.stderr
    assert not (tmp_path / "target.db").exists()
