"""A re-run's cheap verify (issue 16): ``migrate`` reads back only what its replay wrote
and compares counts per kind; ``--full-verify`` reads the whole target back."""

from __future__ import annotations

import json
import sqlite3

import psycopg
import pytest

from ledger import api
from ledger import config as configuration
from sinks.bundle import BundleSink
from sinks.sql import SqlSink
from tests.conftest import run_cli

CONFIG = """
[ledger]
url = "sqlite:///{root}/ledger.db"

[sources.syn]
type = "synthetic"
seed = 3
users = 4

[targets.out]
type = "sql"
url = "sqlite:///{root}/target.db"

[targets.bundle]
type = "bundle"
path = "{root}/bundle"
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "chatledger.toml"
    path.write_text(CONFIG.format(root=tmp_path))
    return configuration.load_config(path)


@pytest.fixture
def read_backs(monkeypatch):
    """The unit keys every sink's read_back was asked for, in order."""
    asked: list[str] = []
    for sink_class in (SqlSink, BundleSink):
        original = sink_class.read_back

        def counting(self, units, original=original):
            asked.extend(unit.key for unit in units)
            return original(self, units)

        monkeypatch.setattr(sink_class, "read_back", counting)
    return asked


def migrate(config, target="out", **settings):
    opened = api.open_ledger(config)
    try:
        return api.migrate(opened, config, "syn", target, **settings)
    finally:
        opened.close()


@pytest.mark.parametrize("target", ["out", "bundle"])
def test_a_second_migrate_reads_nothing_back_and_checks_counts(config, read_backs, target):
    first = migrate(config, target)
    assert first.status == "succeeded" and first.verify.mode == "written"
    written = first.replay.stats["written"]
    assert written > 100 and first.verify.counts["ok"] == len(set(read_backs)) > 0
    parity = first.verify.parity
    assert parity["message"]["ledger"] == parity["message"]["target"] > 0

    read_backs.clear()
    second = migrate(config, target)
    assert second.status == "succeeded" and second.replay.stats["written"] == 0
    assert read_backs == []  # nothing written, nothing read back
    assert second.verify.parity == parity and second.verify.matches


def test_parity_catches_a_row_deleted_by_hand_and_full_verify_an_edit(config, tmp_path):
    migrate(config)
    target = tmp_path / "target.db"
    with sqlite3.connect(target) as conn:
        conn.execute("DELETE FROM messages WHERE rowid = (SELECT min(rowid) FROM messages)")
    cheap = run_cli("migrate", "syn", "out", "--json", cwd=tmp_path)
    assert cheap.returncode == 3, cheap.stderr
    checked = json.loads(cheap.stdout)["verify"]
    assert checked["missing"] == 1 and checked["parity"]["message"]["target"] == (
        checked["parity"]["message"]["ledger"] - 1
    )
    assert "message: the ledger counts" in checked["samples"]["missing"][0]

    assert run_cli("replay", "out", "--resync", cwd=tmp_path).returncode == 0
    with sqlite3.connect(target) as conn:
        conn.execute("UPDATE messages SET text = 'edited by hand' WHERE rowid = 5")
    assert run_cli("migrate", "syn", "out", cwd=tmp_path).returncode == 0  # counts still match
    full = run_cli("migrate", "syn", "out", "--full-verify", "--json", cwd=tmp_path)
    assert full.returncode == 3, full.stderr
    checked = json.loads(full.stdout)["verify"]
    assert checked["mode"] == "full" and checked["drifted"] == 1 and checked["missing"] == 0


def test_full_verify_still_names_a_row_added_by_hand(config, tmp_path):
    migrate(config)
    with sqlite3.connect(tmp_path / "target.db") as conn:
        conn.execute(
            "INSERT INTO messages (stream, key, data, raw, refs, version, hash) "
            "SELECT stream, key || '-copy', data, raw, refs, version, hash FROM messages LIMIT 1"
        )
    full = migrate(config, full_verify=True)
    assert full.status == "drifted" and full.verify.counts["unexpected"] == 1
    assert full.verify.samples["unexpected"][0].endswith("-copy")


def test_postgres_computes_the_fingerprints_and_sees_edits_of_each_column_type(
    config, tmp_path, postgres_database
):
    """The sql sink on Postgres digests rows in the server: a verify that matches must
    agree with the ledger's digest of every column type, and an edit of a time, a flag
    or a JSON column must show."""
    config.targets["out"]["url"] = postgres_database
    assert migrate(config, full_verify=True).verify.matches
    edits = [
        "UPDATE conversations SET created_at = created_at + interval '1 microsecond' WHERE key = %s",
        "UPDATE conversations SET pinned = NOT coalesce(pinned, false) WHERE key = %s",
        "UPDATE conversations SET tags = '[ ]' WHERE key = %s",
    ]
    with psycopg.connect(postgres_database.replace("+psycopg", ""), autocommit=True) as conn:
        keys = [row[0] for row in conn.execute("SELECT key FROM conversations ORDER BY key LIMIT 3")]
        for edit, key in zip(edits, keys):
            conn.execute(edit, (key,))
    checked = migrate(config, full_verify=True).verify
    assert checked.counts["drifted"] == 3 and checked.counts["ok"] > 100
