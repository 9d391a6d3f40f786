"""The issue's "done when", through the real ``chatledger`` command with text output: a
v1 backup with more than 200 topics migrated into a v2 database the app made; counters
printed, constraints hold, the second run writes nothing, a rollback restores the
database exactly (its sink tables and the attachment files gone); a replay killed between the database's commit and the ledger's is healed."""

from __future__ import annotations

import re

import orjson

from tests.cherry import data
from tests.cherry.harness import app_database, constraints_hold, dump, rows
from tests.conftest import run_cli

TOPICS = 210


def setup(tmp_path):
    backup = data.write_zip(tmp_path / "cherry-studio.202403011000.zip", data.mixed(TOPICS))
    db = app_database(tmp_path / "cherrystudio.sqlite")
    (tmp_path / "chatledger.toml").write_text(
        f'[ledger]\nurl = "sqlite:///{tmp_path / "chatledger.db"}"\n\n'
        f'[sources.cherry-v1]\ntype = "cherry"\npath = "{backup}"\n\n'
        f'[targets.desktop]\ntype = "cherry-v2"\npath = "{db}"\nstreams = ["cherry-v1"]\n'
    )
    return db


def chatledger(tmp_path, *args: str, code: int = 0) -> str:
    shown = run_cli(*args, "--no-progress", cwd=tmp_path)
    assert shown.returncode == code, shown.stdout + shown.stderr
    return shown.stdout


def counter(text: str, name: str) -> int:
    found = re.search(rf"^\s*{name}\s+([\d,]+)\s*$", text, re.M)
    assert found, f"{name} not printed in:\n{text}"
    return int(found.group(1).replace(",", ""))


def test_migrate_twice_then_rollback(tmp_path):
    db = setup(tmp_path)
    before = dump(db)
    dry = chatledger(tmp_path, "migrate", "cherry-v1", "desktop", "--dry-run")
    assert "nothing was written" in dry and dump(db) == before

    # 210 topic rows: rich()'s 9 (3 invalid, one empty and dropped) and 201 plain ones, plus a
    # Redux-only pinned topic
    first = chatledger(tmp_path, "migrate", "cherry-v1", "desktop", code=4)  # the invalid topic rows
    assert counter(first, "source_topics") == TOPICS
    assert counter(first, "topics_written") == TOPICS - 3 - 1 + 1
    assert counter(first, "topics_skipped_empty") == 1
    assert counter(first, "duplicate_message_ids") == 2 and counter(first, "useful_kept") == 2
    assert [counter(first, name) for name in ("file_entries_written", "file_entries_existing_kept")] == [1, 1]
    assert counter(first, "files_without_bytes") == 1 and counter(first, "file_refs_written") == 2
    assert "target matches the ledger" in first
    assert rows(db, "SELECT count(*) FROM topic") == [(TOPICS - 3,)]
    assert rows(db, "PRAGMA foreign_key_check") == []
    assert rows(db, "SELECT count(*) FROM topic t WHERE (SELECT count(*) FROM message m "
                    "WHERE m.topic_id = t.id AND m.parent_id IS NULL) != 1") == [(0,)]  # fmt: skip
    constraints_hold(db)
    filled = dump(db)

    second = chatledger(tmp_path, "migrate", "cherry-v1", "desktop")  # an unchanged backup is not read again
    assert re.search(r"records written: 0\b", second) and dump(db) == filled

    run_id = re.search(r"^run (\d+)\s+migrate", first, re.M).group(1)
    undone = chatledger(tmp_path, "rollback", run_id)
    assert "succeeded" in undone and counter(undone, "markers_dropped") == 1
    assert dump(db) == before  # every table, FTS5's shadow tables and sqlite_master
    assert not (tmp_path / "Data").exists()  # the attachment written, and its folders
    constraints_hold(db)


def test_a_replay_killed_after_the_database_committed_is_healed_not_repeated(tmp_path):
    db = setup(tmp_path)
    chatledger(tmp_path, "extract", "cherry-v1", code=4)  # finished, with rejected input
    killed = run_cli(
        "replay", "desktop", cwd=tmp_path, env={"CHATLEDGER_FAILPOINTS": "replay.record.before=1:kill"}
    )
    assert killed.returncode == -9
    written = dump(db)
    marked = rows(db, "SELECT count(*) FROM chatledger_markers")[0][0]
    assert written["topic"] and marked  # the first batch committed; the ledger never heard of it
    healed = orjson.loads(run_cli("replay", "desktop", "--json", cwd=tmp_path).stdout)
    assert healed["stats"]["reconciled"] == marked
    after = dump(db)
    for table in ("topic", "message", "assistant", "pin"):  # the healed batch was not written again
        assert set(written[table]) <= set(after[table])
    assert rows(db, "SELECT count(*) FROM topic") == [(TOPICS - 3,)]
    constraints_hold(db)
    assert orjson.loads(run_cli("verify", "desktop", "--json", cwd=tmp_path).stdout)["matches"]
