"""The replay half of the CLI, end to end in subprocesses (the runbook of issue 3)."""

from __future__ import annotations

import json
import sqlite3

from tests.conftest import run_cli

CONFIG = """
[sources.syn]
type = "synthetic"
seed = 7
users = 60

[targets.out]
type = "sql"
url = "sqlite:///target.db"
"""


def cli_json(*args, cwd, code=0):
    done = run_cli(*args, "--json", cwd=cwd)
    assert done.returncode == code, done.stderr
    return json.loads(done.stdout)


def counts(path):
    with sqlite3.connect(path) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("users", "conversations", "messages", "files", "records")
        }


def test_migrate_verify_edit_rollback(tmp_path):
    (tmp_path / "chatledger.toml").write_text(CONFIG)
    first = cli_json("migrate", "syn", "out", cwd=tmp_path)
    assert first["status"] == "succeeded" and first["verify"]["matches"]
    written = first["replay"]["stats"]["written"]
    assert written == first["extract"]["stats"]["events"] > 2500
    assert sum(counts(tmp_path / "target.db").values()) == written

    second = cli_json("migrate", "syn", "out", cwd=tmp_path)
    assert second["replay"]["stats"]["written"] == 0

    assert run_cli("verify", "out", cwd=tmp_path).returncode == 0
    with sqlite3.connect(tmp_path / "target.db") as conn:
        conn.execute("UPDATE messages SET text = 'edited by hand' WHERE rowid = 7")
    edited = run_cli("verify", "out", cwd=tmp_path)
    assert edited.returncode == 3 and "drifted: 1" in edited.stdout

    refused = run_cli("rollback", str(first["run_id"]), cwd=tmp_path)
    assert refused.returncode == 1 and "changed in the target since" in refused.stderr
    rolled = cli_json("rollback", str(first["run_id"]), "--force", cwd=tmp_path)
    assert rolled["status"] == "succeeded"
    assert counts(tmp_path / "target.db") == dict.fromkeys(counts(tmp_path / "target.db"), 0)

    # the rollback is itself a run that can be rolled back
    again = cli_json("rollback", str(rolled["run_id"]), cwd=tmp_path)
    assert again["stats"]["written"] == written
    assert run_cli("verify", "out", cwd=tmp_path).returncode == 0


def test_dry_runs_report_and_audit(tmp_path):
    (tmp_path / "chatledger.toml").write_text(CONFIG.replace("users = 60", "users = 5"))
    assert run_cli("extract", "syn", cwd=tmp_path).returncode == 0
    plan = cli_json("replay", "out", "--dry-run", cwd=tmp_path)
    assert plan["run_id"] is None
    assert {"kind": "user", "tables": ["users"], "insert": 5} in [
        {name: entry[name] for name in ("kind", "tables", "insert")} for entry in plan["stats"]["plan"]
    ]
    assert not (tmp_path / "target.db").exists()
    text = run_cli("replay", "out", "--dry-run", cwd=tmp_path)
    assert "plan (nothing written)" in text.stdout

    done = cli_json("replay", "out", cwd=tmp_path)
    report = run_cli("report", str(done["run_id"]), cwd=tmp_path)
    assert "message → messages" in report.stdout and "inserted" in report.stdout  # the tables line
    reported = cli_json("report", str(done["run_id"]), cwd=tmp_path)
    users = [entry for entry in reported["stats"]["tables"] if entry["kind"] == "user"]
    assert [(entry["tables"], entry["inserted"]) for entry in users] == [(["users"], 5)]

    with sqlite3.connect(tmp_path / "target.db") as conn:
        key = conn.execute("SELECT key FROM users LIMIT 1").fetchone()[0]
    audit = cli_json("audit", key, cwd=tmp_path)
    assert [(w["target"], w["action"], w["run_id"]) for w in audit["writes"]] == [
        ("out", "insert", done["run_id"])
    ]
    assert audit["writes"][0]["target_ref"] == {"key": key, "table": "users"}


def test_replay_needs_streams_when_ambiguous(tmp_path):
    (tmp_path / "chatledger.toml").write_text(CONFIG.replace("users = 60", "users = 2"))
    assert run_cli("extract", "syn", cwd=tmp_path).returncode == 0
    assert run_cli("extract", "synthetic", "--name", "other", "--users", "1", cwd=tmp_path).returncode == 0
    ambiguous = run_cli("replay", "out", cwd=tmp_path)
    assert ambiguous.returncode == 2 and "name the streams" in ambiguous.stderr
    chosen = cli_json("replay", "out", "--stream", "other", cwd=tmp_path)
    assert chosen["status"] == "succeeded"


def test_ad_hoc_targets_take_sink_flags(tmp_path):
    assert run_cli("extract", "synthetic", "--name", "s", "--users", "2", cwd=tmp_path).returncode == 0
    done = cli_json("replay", "bundle", "--name", "b", "--path", "export", "--copy-files", cwd=tmp_path)
    assert done["status"] == "succeeded" and (tmp_path / "export").is_dir()
    bad = run_cli("replay", "bundle", "--name", "b", "--colour", "red", cwd=tmp_path)
    assert bad.returncode == 2 and "no such option --colour" in bad.stderr
    listed = cli_json("sinks", cwd=tmp_path)
    assert {"--path", "--copy-files"} <= {spec["flag"] for spec in listed["bundle"]}
