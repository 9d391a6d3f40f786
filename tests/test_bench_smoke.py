"""The benchmarks run end to end at a tiny scale (the real runs are `chatledger bench …`
at a million messages; their figures are ratios within one run, never asserted here)."""

from __future__ import annotations

import json

from tests.conftest import run_cli


def test_bench_extract_and_replay_run_at_a_tiny_scale(tmp_path, postgres_admin):
    extracted = run_cli("bench", "extract", "--messages", "1500", "--sqlite-only", "--json", cwd=tmp_path)
    assert extracted.returncode == 0, extracted.stderr
    sqlite = json.loads(extracted.stdout)["backends"]["sqlite"]
    assert sqlite["first"]["events"] > 0 and sqlite["noop"]["events"] == 0
    replayed = run_cli("bench", "replay", "--messages", "1500", "--json", cwd=tmp_path)
    assert replayed.returncode == 0, replayed.stderr
    figures = json.loads(replayed.stdout)
    assert figures["copy_rows"] == figures["records"] > 0 and figures["noop_written"] == 0
    assert figures["verify_matches"] is True and figures["verify_records_per_second"] > 0
    assert 0 < figures["replay_peak_rss_mb"] < 1000 and 0 < figures["verify_peak_rss_mb"] < 1000
