"""Rows made in worker processes (ledger.replay.workers): a replay or verify with
workers writes and finds exactly what one without them does, a record a worker cannot
prepare rejects only its unit, and no worker outlives its run."""

from __future__ import annotations

import multiprocessing
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from ledger.replay import ReplaySettings, replay, workers
from ledger.replay.verify import verify
from ledger.schema import heads, rejects
from ledger.sink import SinkContext
from ledger.store import Ledger
from sinks.sql import SqlOptions, SqlSink
from tests.test_faults import replay_with_a_poison
from tests.test_replay import dump, synthetic
from tests.test_signals import start, wait_until_running


@pytest.fixture(autouse=True)
def every_run_gets_workers(monkeypatch):
    monkeypatch.setattr(workers, "WORKER_THRESHOLD", 0)


def sql_sink(url, ledger, name, schema=None):
    return SqlSink(SqlOptions(url=url, schema=schema), SinkContext(name, ledger.blobs))


def test_rows_made_by_workers_are_the_rows_made_in_process(ledger, postgres_database):
    synthetic(ledger)
    inline = replay(
        ledger,
        sql_sink(postgres_database, ledger, "inline", schema="inline"),
        ["syn"],
        settings=ReplaySettings(workers=0),
    )
    forked = replay(
        ledger,
        sql_sink(postgres_database, ledger, "forked", schema="forked"),
        ["syn"],
        settings=ReplaySettings(workers=2),
    )
    assert inline.stats["workers"] == 0 and forked.stats["workers"] == 2
    assert forked.status == inline.status == "succeeded"
    assert forked.stats["written"] == inline.stats["written"] > 0
    forked_rows = _rows(postgres_database, "forked")
    assert forked_rows == _rows(postgres_database, "inline")
    assert sum(map(len, forked_rows.values())) == forked.stats["written"]
    assert multiprocessing.active_children() == []


def test_verify_with_workers_finds_drift(ledger, postgres_database):
    synthetic(ledger)
    replay(ledger, sql_sink(postgres_database, ledger, "pg"), ["syn"])
    clean = verify(ledger, sql_sink(postgres_database, ledger, "pg"), ["syn"])
    assert clean.workers > 0
    assert clean.matches and clean.counts["ok"] > 0 and clean.counts["drifted"] == 0
    engine = create_engine(postgres_database)
    with engine.begin() as conn:
        conn.execute(text("UPDATE messages SET text = 'edited' WHERE key = (SELECT min(key) FROM messages)"))
    engine.dispose()
    edited = verify(ledger, sql_sink(postgres_database, ledger, "pg"), ["syn"])
    assert edited.counts["drifted"] == 1 and edited.counts["ok"] == clean.counts["ok"] - 1
    inline = verify(ledger, sql_sink(postgres_database, ledger, "pg"), ["syn"], workers=0)
    assert inline.workers == 0 and inline.counts == edited.counts
    assert multiprocessing.active_children() == []


def test_a_record_a_worker_cannot_prepare_rejects_only_its_unit(ledger, tmp_path):
    everything, poison, url, result = replay_with_a_poison(ledger, tmp_path)

    assert result.stats["workers"] > 0
    assert result.status == "with-rejects" and result.stats["rejected_units"] == 1
    written = {row[1] for rows in dump(url).values() for row in rows}
    assert written == everything - {poison}
    with ledger.read() as conn:
        stored = conn.execute(select(rejects)).all()
    assert [row.location for row in stored] == [f"message unit {poison}"]
    assert "value too long" in stored[0].reason


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGKILL, -9)], ids=["sigterm", "sigkill"]
)
def test_no_worker_outlives_a_stopped_or_killed_replay(tmp_path, sig, code):
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger.open(ledger_url, blob_dir=tmp_path / "blobs")
    synthetic(ledger)
    ledger.close()
    target = f"sqlite:///{tmp_path / 't.db'}"
    args = ["--ledger", ledger_url, "replay", "sql", "--name", "out", "--url", target, "--batch-size", "20",
            "--workers", "2", "--no-progress"]  # fmt: skip
    process = start(args, tmp_path, "replay.apply=3:sleep=60")
    wait_until_running(ledger_url, "replay", tmp_path / "blobs")
    time.sleep(1.0)  # inside the failpoint's sleep, the workers forked
    forked = _children(process.pid)
    assert len(forked) == 2
    process.send_signal(sig)
    _, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in forked) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in forked)


def _children(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_small_replays_and_one_core_fork_no_workers(monkeypatch):
    monkeypatch.setattr(workers, "WORKER_THRESHOLD", 20_000)
    assert workers.worker_count(19_999) == 0
    assert workers.worker_count(19_999, wanted=3) == 3
    monkeypatch.setattr(workers.os, "cpu_count", lambda: 1)
    assert workers.worker_count(1_000_000) == 0
    monkeypatch.setattr(workers.os, "cpu_count", lambda: 2)
    assert workers.worker_count(1_000_000) == 2
    monkeypatch.setattr(workers.os, "cpu_count", lambda: 16)
    assert workers.worker_count(1_000_000) == 4


def _rows(url, schema):
    """Every row of the sink's tables in a schema, every column as text."""
    engine = create_engine(url)
    with engine.connect() as conn:
        found = {
            table: sorted(
                tuple(map(str, row)) for row in conn.execute(text(f"SELECT * FROM {schema}.{table}"))
            )
            for table in ("users", "conversations", "messages", "files", "records")
        }
    engine.dispose()
    return found
