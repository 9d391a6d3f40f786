"""Run reports written to a file (``--report FILE``, ``report RUN --output FILE``) and the
run events of ``--log-json``, through the real ``chatledger`` command.

The HTML test is the issue's acceptance check: the report of a LibreChat → Onyx migrate
(real PostgreSQL with Onyx's DDL, Onyx's API **simulated** by tests/librechat_onyx/onyx.py)
renders in headless Chromium, and its tables hold the run's counts."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from itertools import pairwise
from pathlib import Path

import pytest

from ledger.timeline import CAP, Timeline
from tests.conftest import REQUIRE_SERVICES, run_cli
from tests.librechat_onyx.onyx import API_KEY, OnyxApi, load_onyx, plain_url
from tests.test_dry_run import assert_plain_keys
from tests.test_onyx_migrate_cli import write_config


class ReportCounts(HTMLParser):
    """Reads the page back: {(part, kind): {counter: value}}, rejects, verdict, plots."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[tuple[str, str], dict[str, int]] = {}
        self.part = ""
        self.row: dict[str, int] | None = None
        self.counter: str | None = None
        self.rejects: int | None = None
        self.verdicts: list[str] = []
        self.plots: list[str] = []

    def handle_starttag(self, tag, attrs):
        found = dict(attrs)
        if "data-part" in found:
            self.part = found["data-part"]
        if "data-kind" in found:
            self.row = self.counts.setdefault((self.part, found["data-kind"]), {})
        self.counter = found.get("data-counter")
        if "data-rejects" in found:
            self.rejects = int(found["data-rejects"])
        if "data-verdict" in found:
            self.verdicts.append(found["data-verdict"])
        if "data-plot" in found:
            self.plots.append(found["data-plot"])

    def handle_data(self, data):
        if self.counter and self.row is not None:
            self.row[self.counter] = int(data.replace(",", ""))
            self.counter = None


def read_report(path: Path) -> ReportCounts:
    parser = ReportCounts()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found is None:
        if REQUIRE_SERVICES and Path("/usr/bin/chromium").exists():
            pytest.fail("chromium is installed but not runnable")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return found


def png_facts(path: Path) -> tuple[int, int, int]:
    """Width, height and how many distinct byte values its pixel data has."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    chunks, at = [], 8
    while at < len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        if kind == b"IDAT":
            chunks.append(data[at + 8 : at + 8 + size])
        at += 12 + size
    return width, height, len(set(zlib.decompress(b"".join(chunks))))


def test_the_html_report_of_a_librechat_onyx_migrate_shows_its_counts_in_chromium(
    postgres_database, tmp_path
):
    browser = chromium()
    load_onyx(postgres_database)
    env = {"ONYX_DB_URL": plain_url(postgres_database), "ONYX_API_KEY": API_KEY}
    with OnyxApi(postgres_database) as api:
        write_config(tmp_path, api)
        done = run_cli(
            "migrate",
            "lc",
            "onyx",
            "--batch-size",
            "10",
            "--no-progress",
            "--report",
            "out/report.html",
            cwd=tmp_path,
            env=env,
        )
    assert done.returncode == 4, done.stderr  # the fixture's stray message is rejected
    page = tmp_path / "out" / "report.html"
    text = page.read_text(encoding="utf-8")
    assert API_KEY not in text and "<link" not in text and "src=" not in text  # self-contained
    found = read_report(page)
    replayed = found.counts[("replay", "total")]
    assert replayed["inserted"] + replayed["updated"] + replayed["deleted"] == 26
    assert replayed["skipped"] == 5 and replayed["rejected"] == 0
    extracted = found.counts[("extract", "total")]
    assert extracted["new"] == extracted["read"] > 0 and extracted["unchanged"] == 0
    assert found.counts[("verify", "verify")]["ok"] > 0 and found.verdicts == ["target matches the ledger"]
    assert found.rejects == 1 and {"throughput-total", "throughput-rate"} <= set(found.plots)
    # the same numbers as the run's own record
    run_id = int(text.split("chatledger migrate run ", 1)[1].split("<", 1)[0])
    shown = json.loads(run_cli("report", str(run_id), "--json", cwd=tmp_path).stdout)
    assert shown["stats"]["replay"]["written"] == 26 and shown["status"] == "with-rejects"

    screenshot = tmp_path / "out.png"
    shot = subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--no-first-run", f"--user-data-dir={tmp_path / 'chromium'}", f"--screenshot={screenshot}",
            "--window-size=1200,1600", page.as_uri(),
        ],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert screenshot.exists(), shot.stderr
    width, height, shades = png_facts(screenshot)
    assert (width, height) == (1200, 1600) and screenshot.stat().st_size > 20_000 and shades > 16


def synthetic(tmp_path: Path, *args: str, env: dict[str, str] | None = None):
    return run_cli("--ledger", f"sqlite:///{tmp_path / 'ledger.db'}", *args, cwd=tmp_path, env=env)


def test_json_reports_hold_what_the_target_holds(tmp_path):
    extracted = synthetic(
        tmp_path, "extract", "synthetic", "--name", "demo", "--users", "12", "--seed", "3",
        "--batch-size", "100", "--no-progress", "--report", "extract.json",
    )  # fmt: skip
    assert extracted.returncode == 0, extracted.stderr
    target = ["sql", "--name", "t", "--url", f"sqlite:///{tmp_path / 't.db'}", "--stream", "demo"]
    planned = synthetic(tmp_path, "replay", *target, "--dry-run", "--report", "plan.json")
    replayed = synthetic(
        tmp_path, "replay", *target, "--batch-size", "50", "--no-progress", "--report", "replay.json"
    )
    assert planned.returncode == 0 and replayed.returncode == 0, replayed.stderr
    plan = json.loads((tmp_path / "plan.json").read_text())
    document = json.loads((tmp_path / "replay.json").read_text())
    assert_plain_keys(plan["run"])  # no "kind → tables" keys
    assert_plain_keys(document["run"])
    stats = document["run"]["stats"]
    written = {entry["kind"]: entry for entry in stats["tables"]}
    planned = {entry["kind"]: entry for entry in plan["run"]["stats"]["plan"]}
    assert set(written["message"]) >= {"kind", "tables", "inserted", "updated", "skipped", "seconds"}
    assert set(planned["message"]) >= {"kind", "tables", "insert", "update", "delete"}
    with sqlite3.connect(tmp_path / "t.db") as target_db:
        for kind, table in (
            ("user", "users"),
            ("conversation", "conversations"),
            ("message", "messages"),
            ("file", "files"),
        ):
            rows = target_db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            assert written[kind]["tables"] == [table] == planned[kind]["tables"]
            assert written[kind]["inserted"] == rows == planned[kind]["insert"] > 0
    shown = json.loads(synthetic(tmp_path, "report", str(document["run"]["id"]), "--json").stdout)
    assert shown["stats"]["tables"] == stats["tables"]  # the shape --json prints
    assert plan["run"]["status"] == "dry-run" and document["run"]["status"] == "succeeded"
    timeline = stats["timeline"]
    assert len(timeline) >= 5 and timeline[-1][1] == stats["written"]
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in pairwise(timeline))
    read = json.loads((tmp_path / "extract.json").read_text())["run"]["stats"]
    assert read["timeline"][-1][1] == sum(counts["read"] for counts in read["kinds"].values())
    again = synthetic(tmp_path, "report", str(document["run"]["id"]), "--output", "again.json")
    assert again.returncode == 0
    assert json.loads((tmp_path / "again.json").read_text())["run"] == document["run"]


def test_log_json_emits_run_events_without_secrets(tmp_path):
    extracted = synthetic(
        tmp_path, "--log-json", "extract", "synthetic", "--name", "demo", "--users", "3", "--no-progress"
    )
    events = [json.loads(line) for line in extracted.stderr.splitlines() if line.startswith("{")]
    started, finished = (
        next(e for e in events if e["event"] == name) for name in ("run started", "run finished")
    )
    assert started["command"] == "extract" and started["stream"] == "demo"
    assert finished["run_id"] == started["run_id"] and finished["status"] == "succeeded"
    assert finished["counts"]["new"] == finished["counts"]["events"] > 0 and finished["seconds"] >= 0
    # a target that cannot be reached: the run fails, and the password stays out of the log
    secret = "pw-4f9a1c7e"
    failed = synthetic(
        tmp_path, "--log-json", "replay", "sql", "--name", "pg", "--url", "env:REPORT_TEST_URL",
        "--stream", "demo", "--no-progress",
        env={"REPORT_TEST_URL": f"postgresql://someone:{secret}@127.0.0.1:9/nothing"},
    )  # fmt: skip
    assert failed.returncode == 1 and secret not in failed.stderr + failed.stdout
    events = [json.loads(line) for line in failed.stderr.splitlines() if line.startswith("{")]
    ended = next(e for e in events if e["event"] == "run finished")
    assert ended["command"] == "replay" and ended["status"] == "failed" and ended["error"]
    assert os.environ.get("REPORT_TEST_URL") is None


def test_a_timeline_stays_short_and_evenly_spread():
    timeline = Timeline(started=0.0)
    for records in range(1, 10_001):
        timeline.sample(records)
    samples = timeline.as_json()
    assert len(samples) <= CAP + 1 and samples[-1][1] == 10_000
    gaps = {b[1] - a[1] for a, b in pairwise(samples[:-1])}
    assert len(gaps) == 1  # one stride between the kept samples
