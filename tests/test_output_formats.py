"""Output people can read and scripts can parse (issue 15): every table within 80 columns
for realistic data, ``--format table|json|ndjson|csv`` on the read commands, ``keys`` and
``audit --owner``, and the progress bar on a pseudo-terminal."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import subprocess
import sys

import pytest
from rich.console import Console

from ledger.cli import report
from ledger.runs import Run
from tests.conftest import run_cli
from tests.test_human_output import run_in_terminal

CONFIG = """
[sources.syn]
type = "synthetic"
seed = 11
users = 4

[targets.out]
type = "sql"
url = "sqlite:///target.db"
"""
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)$")
STARTED = dt.datetime(2026, 11, 30, 23, 59, 58, 123456, tzinfo=dt.UTC)


def rendered(renderable) -> list[str]:
    """The lines the CLI's console (soft-wrapping, as in ledger.cli.app) prints at 80 columns."""
    console = Console(width=80, file=io.StringIO(), soft_wrap=True, color_system=None)
    console.print(renderable)
    return console.file.getvalue().splitlines()


def assert_fits(lines: list[str]) -> None:
    """At most 80 columns, nothing cut; a record key alone on its line is printed whole
    (the synthetic source's message keys, two UUIDs, are 81 characters)."""
    assert lines
    for line in lines:
        whole_key = re.fullmatch(r"[a-z_]+:\S+", line.rstrip())
        assert len(line.rstrip()) <= 80 or whole_key, f"{len(line)} columns: {line!r}"
        assert "…" not in line, f"a cut cell: {line!r}"


def a_run(command: str, stats: dict, **fields) -> Run:
    values = {
        "id": 12_345, "command": command, "stream": "librechat:prod", "target": None,
        "parent_run_id": 12_340, "args": {}, "tool_version": "0.1.0", "host": "db-migrate-01",
        "pid": 4242, "started_at": STARTED, "finished_at": STARTED + dt.timedelta(seconds=5_432.1),
        "status": "with-rejects", "stats": stats, "error": None,
    }  # fmt: skip
    return Run(**(values | fields))


MILLION = 1_234_567
EXTRACT = {
    "kinds": {
        kind: {"read": MILLION, "new": MILLION, "changed": 98_765, "unchanged": 1_000_000,
               "deleted": 12_345, "rejected": 1_234, "bytes": 9_876_543_210}
        for kind in ("conversation", "message", "user", "file", "assistant")
    },
    "events": 6_172_835, "rejects": 1_234, "records_per_second": 48_211,
    "scopes": {"listed": 48_000, "read": 47_990, "unchanged": 10, "resumed": 3, "vanished": 1,
               "deletes_withheld": 2},
    "blobs": {"new": 120_000, "bytes": 98_765_432_100},
    "source": {"dump": "/srv/exports/librechat-2026-11-30.archive.gz",
               "sha256": "9f" * 32, "collections": {"conversations": 48_000, "messages": MILLION}},
}  # fmt: skip
REPLAY = {
    "tables": {
        f"{kind} → {tables}": {"inserted": MILLION, "updated": 98_765, "deleted": 12_345, "skipped": 4_321,
                               "rejected": 321, "unchanged": 1_000_000, "seconds": 1_234.56}
        for kind, tables in (("conversation", "chat_session"), ("message", "chat_message, chat_message__search_doc"),
                             ("file", "file_record, user_file"), ("user", "user"))
    },
    "written": 4_938_268, "skipped": 17_284, "rejected_units": 12, "retries": 3, "reconciled": 2,
    "policy": "merge", "sink": {"sessions_relinked": 12_000, "latest_child_fixed": 48},
    "rule": "latest-child", "fixes": 2,
    "sample": [{"session": "0b8c3f1e-1d2a-4c55-9a0e-7f1d2e3c4b5a", "row": 41, "fix": "latest_child", "to": 42}],
}  # fmt: skip
VERIFY = {
    "matches": False, "consistent": True, "ok": MILLION, "missing": 0, "drifted": 0, "unexpected": 0,
    "pending": 9_587, "skipped": 4_321, "deleted_in_source": 12,
    "samples": {"pending": ["message:6571a8f2c3b1e4d5a6b7c8d9/6571a8f2c3b1e4d5a6b7c8da"]},
}  # fmt: skip
MIGRATE = {
    "extract": {"run_id": 12_346, "events": 6_172_835, "rejects": 1_234},
    "replay": {"run_id": 12_347, "written": 4_938_268, "skipped": 17_284, "rejected_units": 12},
    "verify": {"run_id": 12_348, "matches": False, "pending": 9_587},
}
REJECTS = [
    {"location": "messages of user 64b000000000000000000002, conversationId 43cbeda8-468c-5e7f-9ee1-7eae24796078",
     "reason": "1 message(s) whose conversation document is missing: not migrated"}
]  # fmt: skip
WRITES = [
    {"key": "message:6571a8f2c3b1e4d5a6b7c8d9/6571a8f2c3b1e4d5a6b7c8da", "stream": "librechat:prod",
     "target": "onyx-prod", "version": 12, "action": action, "run_id": 12_347, "at": "2026-11-30 23:59:58",
     "target_ref": {"table": "chat_message", "id": 98_765_432, "session": "0b8c3f1e-1d2a-4c55-9a0e-7f1d2e3c4b5a",
                    "owner": "user:64b000000000000000000001"},
     "reason": "Onyx keeps no tool messages" if action == "skip" else None}
    for action in ("insert", "update", "skip", "delete")
]  # fmt: skip
VERSIONS = [
    {"stream": "librechat:prod", "version": version, "op": "put", "hash": "d97766a7553fd2c7" * 4,
     "run_id": 12_346, "recorded_at": "2026-11-30T23:59:58+00:00"}
    for version in range(1, 4)
]  # fmt: skip
STATUS = {
    "ledger": "postgresql://migrator:***@ledger-db.internal:5432/chatledger",
    "schema_revision": "0005_reject_identity",
    "streams": {
        "librechat:prod": {
            "kinds": {kind: {"live": MILLION, "deleted": 12_345} for kind in ("conversation", "message", "user")},
            "scopes": {"complete": 48_000, "unfinished": 3},
            "last_run": {"id": 12_346, "command": "extract", "status": "with-rejects"},
        }
    },
    "targets": {"onyx-prod": {"sink": "onyx", "kinds": {"conversation": MILLION, "message": MILLION}}},
    "locks": [{"name": "target:onyx-prod", "run_id": 12_347, "holder": "pid 4242 on db-migrate-01",
               "since": "2026-11-30T23:59:58+00:00", "stale": True}],
    "unfinished_runs": [{"id": 12_347, "command": "replay", "stream": None, "target": "onyx-prod",
                         "status": "interrupted"}],
}  # fmt: skip
KEYS = [
    {"stream": "librechat:prod", "kind": "conversation", "key": "conversation:43cbeda8-468c-5e7f-9ee1-7eae24796078",
     "version": 3, "deleted": False, "owner": "user:64b000000000000000000001",
     "owner_email": "ana.garcia-lopez@example.com",
     "title": "Planning the Q3 migration of every team's chat history to the new platform", "last_run": 12_346},
    {"stream": "librechat:prod", "kind": "user", "key": "user:64b000000000000000000001", "version": 1,
     "deleted": True, "owner": "user:64b000000000000000000001", "owner_email": "ana.garcia-lopez@example.com",
     "title": "Ana García López", "last_run": 12_346},
]  # fmt: skip
OWNER = {
    "owner": "ana.garcia-lopez@example.com", "users": ["user:64b000000000000000000001"],
    "records": [{"stream": "librechat:prod", "kind": "message", "live": MILLION, "deleted": 12_345}],
    "writes": [{"target": "onyx-prod", "kind": "message", "action": "insert", "count": MILLION}],
    "recent": WRITES,
}  # fmt: skip
RUNS = [
    a_run(command, stats, status=status, stream=stream, target=target)
    for command, stats, status, stream, target in (
        ("extract", EXTRACT, "with-rejects", "librechat:prod", None),
        ("replay", REPLAY, "interrupted", None, "onyx-prod"),
        ("rollback", REPLAY, "succeeded", None, "onyx-prod"),
        ("verify", VERIFY, "drifted", None, "onyx-prod"),
        ("migrate", MIGRATE, "refused", "librechat:prod", None),
    )
]
RENDERINGS = {
    "runs": lambda: report.runs_table(RUNS),
    "status": lambda: report.status_report(STATUS),
    "history": lambda: report.history_table(VERSIONS),
    "audit": lambda: report.audit_report({"versions": VERSIONS, "writes": WRITES}),
    "audit --owner": lambda: report.owner_report(OWNER),
    "keys": lambda: report.keys_list(KEYS),
    "plan": lambda: report.plan_report({name: {"insert": MILLION, "update": 98_765, "delete": 12_345,
                                               "skip": 4_321, "unchanged": MILLION} for name in REPLAY["tables"]}),
    **{f"report {run.command}": (lambda run=run: report.run_report(run, REJECTS)) for run in RUNS},
}  # fmt: skip


@pytest.mark.parametrize("name", RENDERINGS)
def test_every_table_fits_80_columns_with_nothing_cut(name):
    assert_fits(rendered(RENDERINGS[name]()))


def test_times_in_tables_are_whole_and_say_utc():
    lines = rendered(report.runs_table(RUNS))
    assert "started (UTC)" in lines[0]
    assert all("2026-11-30 23:59:58" in line for line in lines[1:])
    assert "recorded (UTC)" in rendered(report.history_table(VERSIONS))[0]
    assert any("started 2026-11-30 23:59:58 UTC" in line for line in rendered(report.run_report(RUNS[0])))


def test_bench_tables_fit_80_columns():
    from ledger.cli.benchmarks import extract_table, replay_table

    series = {
        "first": {"records": 1_262_101, "messages": MILLION, "seconds": 123.4},
        "records_per_second": 10_227, "noop": {"seconds": 4.21}, "noop_speedup": 29.3,
        "noop_full": {"seconds": 61.7}, "noop_full_speedup": 2.0, "peak_rss_mb": 612,
    }  # fmt: skip
    results = {
        "users": 2_500,
        "backends": {"sqlite": series | {"floor": {"records_per_second": 31_554}, "floor_ratio": 3.1},
                     "postgres": series},
    }  # fmt: skip
    assert_fits(rendered(extract_table(results)))
    replayed = {"messages": MILLION, "sink_seconds": 98.76, "copy_seconds": 41.2, "ratio": 2.4,
                "noop_replay_seconds": 7.65, "records_per_second_through_the_sink": 12_500}  # fmt: skip
    assert_fits(rendered(replay_table(replayed)))


def test_run_json_has_plain_keys_and_zoned_times():
    document = report.run_json(RUNS[1])
    assert RFC3339.match(document["started_at"]) and RFC3339.match(document["finished_at"])
    entries = {entry["kind"]: entry for entry in document["stats"]["tables"]}
    assert entries["message"]["tables"] == ["chat_message", "chat_message__search_doc"]
    assert entries["message"]["inserted"] == MILLION

    def keys_of(value):
        if isinstance(value, dict):
            for name, inner in value.items():
                yield name
                yield from keys_of(inner)
        elif isinstance(value, list):
            for inner in value:
                yield from keys_of(inner)

    assert all(" " not in name and "→" not in name for name in keys_of(document))


# -- the real CLI ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    where = tmp_path_factory.mktemp("formats")
    (where / "chatledger.toml").write_text(CONFIG)
    done = run_cli("migrate", "syn", "out", "--no-progress", cwd=where)
    assert done.returncode == 0, done.stderr
    return where


def cli(where, *args: str) -> str:
    done = run_cli(*args, cwd=where)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_read_commands_in_every_format(migrated):
    runs = json.loads(cli(migrated, "runs", "--format", "json"))
    assert runs == json.loads(cli(migrated, "runs", "--json"))  # --json is --format json
    assert [run["command"] for run in runs] == ["verify", "replay", "extract", "migrate"]
    assert all(RFC3339.match(run["started_at"]) for run in runs)
    lines = cli(migrated, "runs", "--format", "ndjson").splitlines()
    assert [json.loads(line)["id"] for line in lines] == [run["id"] for run in runs]
    rows = list(csv.DictReader(io.StringIO(cli(migrated, "runs", "--format", "csv"))))
    assert [int(row["id"]) for row in rows] == [run["id"] for run in runs]
    extract = next(run for run in runs if run["command"] == "extract")
    assert (
        int(next(row for row in rows if row["command"] == "extract")["records"]) == extract["stats"]["events"]
    )

    replay = next(run for run in runs if run["command"] == "replay")
    per_kind = [
        json.loads(line)
        for line in cli(migrated, "report", str(replay["id"]), "--format", "ndjson").splitlines()
    ]
    assert {row["kind"]: row["tables"] for row in per_kind}["message"] == ["messages"]
    assert sum(row["inserted"] for row in per_kind) == replay["stats"]["written"]

    status = list(csv.DictReader(io.StringIO(cli(migrated, "status", "--format", "csv"))))
    held = {row["kind"]: int(row["held"]) for row in status if row["type"] == "target"}
    live = {row["kind"]: int(row["live"]) for row in status if row["type"] == "stream"}
    assert held == live and held["message"] > 0


def test_keys_history_and_audit_of_one_owner(migrated):
    users = json.loads(cli(migrated, "keys", "--kind", "user", "--json"))
    assert len(users) == 4 and all(user["owner_email"] for user in users)
    email = users[0]["owner_email"]
    conversations = json.loads(
        cli(migrated, "keys", "--kind", "conversation", "--owner", email.upper(), "--json")
    )
    assert conversations and {row["owner"] for row in conversations} == {users[0]["key"]}
    word = conversations[0]["title"].split()[0].lower()
    titled = json.loads(cli(migrated, "keys", "--title", word, "--limit", "500", "--json"))
    assert conversations[0]["key"] in {row["key"] for row in titled}
    assert all(word in row["title"].lower() for row in titled)

    rolled = json.loads(cli(migrated, "audit", "--owner", email, "--json"))
    owned = json.loads(cli(migrated, "keys", "--owner", email, "--limit", "10000", "--json"))
    assert sum(row["count"] for row in rolled["writes"]) == len(owned)  # one insert each
    assert {row["action"] for row in rolled["writes"]} == {"insert"}
    assert all(isinstance(write["target_ref"], dict) for write in rolled["recent"])
    text = cli(migrated, "audit", "--owner", email)
    assert f"owner {email}" in text and "writes to targets:" in text and "UTC" in text
    assert_fits(text.splitlines())

    message = json.loads(
        cli(migrated, "keys", "--kind", "message", "--owner", email, "--limit", "1", "--json")
    )[0]
    audit = json.loads(cli(migrated, "audit", message["key"], "--json"))
    assert audit["writes"][0]["target_ref"]["table"] == "messages"
    assert RFC3339.match(audit["versions"][0]["recorded_at"]) and RFC3339.match(audit["writes"][0]["at"])
    trail = list(csv.DictReader(io.StringIO(cli(migrated, "audit", message["key"], "--format", "csv"))))
    assert [row["what"] for row in trail] == ["version", "write"]
    assert json.loads(trail[1]["target_ref"])["table"] == "messages"
    history = cli(migrated, "history", message["key"])
    assert "recorded (UTC)" in history

    missing = run_cli("audit", "--owner", "nobody@example.com", cwd=migrated)
    assert missing.returncode == 2 and "keys --kind user" in missing.stderr
    both = run_cli("audit", message["key"], "--owner", email, cwd=migrated)
    assert both.returncode == 2


def test_human_output_piped_fits_80_columns(migrated):
    runs = json.loads(cli(migrated, "runs", "--json"))
    for args in (
        ("runs",),
        ("status",),
        ("keys", "--kind", "conversation"),
        *[("report", str(run["id"])) for run in runs],
    ):
        assert_fits(cli(migrated, *args).splitlines())


def test_progress_on_a_terminal_shows_rate_and_one_bar_per_step(tmp_path):
    (tmp_path / "chatledger.toml").write_text(CONFIG)
    code, shown = run_in_terminal("migrate", "syn", "out", cwd=tmp_path)
    assert code == 0, shown
    assert "records/s" in shown
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown)
    # each step's bar is drawn, finished and left once: no earlier step is redrawn
    # under a later one (the ghost bars of one shared rich Progress)
    final_frames = [line for line in screen.splitlines() if line.strip().startswith("extract syn")]
    assert final_frames
    after_replay = screen[screen.rfind("replay out") :]
    assert "extract syn" not in after_replay
    for step in ("replay out", "verify out"):  # bars with a total: done of total, and an ETA
        done_of_total = re.findall(rf"{step} .*?(\d+)/(\d+)", screen)
        assert done_of_total and done_of_total[-1][0] == done_of_total[-1][1] != "0", step
    code, shown = run_in_terminal("runs", cwd=tmp_path)
    assert code == 0 and "started (UTC)" in shown


LOGGING_UNDER_A_BAR = """
import structlog
from ledger import logs
from ledger.cli.progress import RichProgress
logs.configure()
shown = RichProgress()
shown.start("step one", 4)
for number in range(4):
    shown.advance(1, records=10)
    structlog.get_logger("test").info("a log line", number=number)
shown.finish()
structlog.get_logger("test").info("after the bar")
"""


def test_log_lines_print_above_the_bar_not_through_it(tmp_path):
    script = tmp_path / "log_under_bar.py"
    script.write_text(LOGGING_UNDER_A_BAR)
    done = subprocess.run(
        ["script", "-qc", f"{sys.executable} {script}", "/dev/null"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "80", "TERM": "xterm"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", done.stdout).replace("\r", "\n")
    logged = [line for line in screen.splitlines() if "a log line" in line or "after the bar" in line]
    assert len(logged) == 5
    assert all(re.match(r"\d{4}-\d\d-\d\dT", line) for line in logged), logged  # each on a line of its own
    assert "4/4" in screen and "records/s" in screen


def test_a_reader_that_stops_early_ends_the_output_quietly(migrated):
    """``chatledger keys --format ndjson | head -1``: no BrokenPipeError on stderr (the
    reader here, ``true``, is gone before the first line is written)."""
    command = f"{sys.executable} -m ledger keys --format ndjson | true; echo ${{PIPESTATUS[0]}}"
    done = subprocess.run(["bash", "-c", command], cwd=migrated, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "141" and "error" not in done.stderr.lower(), done.stderr


def test_progress_lines_when_piped_give_total_rate_and_eta():
    from structlog.testing import capture_logs

    from ledger.progress import LogProgress

    shown = LogProgress(every=0)
    with capture_logs() as logged:
        shown.start("extract syn", 4)
        shown.advance(1, records=10)
        shown.finish()
    progress, done = logged
    assert progress["event"] == "progress" and progress["total"] == 4 and progress["records"] == 10
    assert progress["per_s"] > 0 and progress["eta_s"] >= 0
    assert done["event"] == "progress done" and "eta_s" not in done
