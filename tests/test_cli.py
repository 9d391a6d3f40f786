"""The chatledger command end to end, in real subprocesses."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from ledger.schema import heads
from ledger.store import Ledger
from tests.conftest import run_cli

SYN = ["extract", "synthetic", "--name", "syn", "--seed", "7"]


def cli_json(*args, cwd):
    done = run_cli(*args, "--json", cwd=cwd)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_extracting_250_users_twice_appends_nothing_the_second_time(tmp_path):
    first = cli_json(*SYN, "--users", "250", cwd=tmp_path)
    second = cli_json(*SYN, "--users", "250", cwd=tmp_path)
    assert first["status"] == "succeeded" and first["stats"]["events"] > 10_000
    assert first["stats"]["kinds"]["user"]["new"] == 250
    assert second["stats"]["events"] == 0
    assert second["stats"]["scopes"]["unchanged"] == 250
    report = run_cli("report", str(second["run_id"]), cwd=tmp_path)
    assert "events appended: 0" in report.stdout
    # a full re-read proves the same thing record by record
    full = cli_json(*SYN, "--users", "250", "--full", cwd=tmp_path)
    assert full["stats"]["events"] == 0
    assert sum(kind["unchanged"] for kind in full["stats"]["kinds"].values()) == sum(
        kind["new"] for kind in first["stats"]["kinds"].values()
    )


def test_mutation_then_history_and_audit(tmp_path):
    cli_json(*SYN, "--users", "5", cwd=tmp_path)
    mutated = cli_json(*SYN, "--users", "5", "--mutate", "0.5", cwd=tmp_path)
    kinds = mutated["stats"]["kinds"]
    assert kinds["conversation"]["changed"] + kinds["conversation"]["deleted"] > 0

    status = cli_json("status", cwd=tmp_path)
    assert set(status["streams"]["syn"]["kinds"]) == {"user", "conversation", "message", "file"}
    runs = cli_json("runs", cwd=tmp_path)
    assert [run["status"] for run in runs] == ["succeeded", "succeeded"]

    ledger = Ledger.open(f"sqlite:///{tmp_path}/chatledger.db")
    with ledger.read() as conn:
        key = conn.scalar(select(heads.c.key).where(heads.c.version == 2, heads.c.kind == "conversation"))
    versions = cli_json("history", key, "--data", cwd=tmp_path)
    assert [row["version"] for row in versions] == [1, 2]
    assert versions[1]["op"] == "delete" or versions[0]["data"] != versions[1]["data"]
    audit = cli_json("audit", key, cwd=tmp_path)
    assert len(audit["versions"]) == 2 and audit["writes"] == []
    text = run_cli("audit", key, cwd=tmp_path)
    assert "not written to any target yet" in text.stdout


def test_dry_run_writes_nothing(tmp_path):
    preview = cli_json(*SYN, "--users", "3", "--dry-run", cwd=tmp_path)
    assert preview["run_id"] is None and preview["stats"]["events"] > 0
    assert not (tmp_path / "chatledger.blobs").exists()
    assert not (tmp_path / "chatledger.db").exists()  # a dry run creates no ledger
    listed = run_cli("runs", cwd=tmp_path)
    assert listed.returncode == 2 and "there is no ledger at" in listed.stderr


def test_configured_streams_and_flags_override(tmp_path):
    (tmp_path / "chatledger.toml").write_text(
        '[ledger]\nurl = "sqlite:///configured.db"\n[sources.demo]\ntype = "synthetic"\nusers = 2\nseed = 1\n'
    )
    done = cli_json("extract", "demo", "--users", "3", cwd=tmp_path)
    assert done["stats"]["kinds"]["user"]["new"] == 3
    assert (tmp_path / "configured.db").exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["extract", "synthetic", "--users", "2"], 2, "name the stream with --name"),
        (["extract", "synthetic", "--name", "x", "--colour", "red"], 2, "no such option --colour"),
        (["extract", "synthetic", "--name", "x", "--users", "many"], 2, "--users: must be int"),
        (["extract", "nothing-like-it"], 2, "neither a configured source"),
        (["report", "42"], 2, "there is no run 42"),
        (["history", "message:none"], 2, "no record"),
        (["--ledger", "mysql://x/y", "status"], 2, "unsupported ledger database"),
        (["unlock", "stream:none"], 1, "no lock named"),
        (["frobnicate"], 2, "No such command"),
    ],
)
def test_errors_have_messages_and_exit_codes(tmp_path, args, code, message):
    assert run_cli("init", cwd=tmp_path).returncode == 0  # read commands need a ledger
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode == code, (done.stdout, done.stderr)
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_sources_lists_every_option(tmp_path):
    listed = cli_json("sources", cwd=tmp_path)
    flags = {spec["flag"] for spec in listed["synthetic"]}
    assert {"--seed", "--users", "--conversations-per-user", "--mutate"} <= flags


def test_log_json_lines_on_stderr(tmp_path):
    done = run_cli("--log-json", *SYN, "--users", "2", cwd=tmp_path)
    assert done.returncode == 0
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert any(line["event"] == "progress done" for line in lines)
