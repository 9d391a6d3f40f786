"""Benchmark: 100,000 LibreChat messages from a synthetic mongodump (real BSON files)
into Onyx (real PostgreSQL with Onyx's DDL; users created through the **simulated**
Onyx API of tests/librechat_onyx/onyx.py). Run it with

    python -m pytest -m bench tests/bench/test_librechat_onyx_bench.py -s

It prints records/s of the extraction, messages/s of the replay and of the whole
migration, the no-op re-run times, and the machine-independent facts (documents, rows
written, rows per message, transactions). ``CHATLEDGER_BENCH_MESSAGES`` changes the size.
"""

from __future__ import annotations

import os
import time

import pytest

from ledger.extract import ExtractSettings, extract
from ledger.replay import replay
from ledger.replay.verify import verify
from ledger.store import Ledger
from tests.librechat_onyx.harness import STREAM, query, sink, source
from tests.librechat_onyx.onyx import OnyxApi, load_onyx
from tests.librechat_onyx.synthetic_dump import write_synthetic_dump

MESSAGES = int(os.environ.get("CHATLEDGER_BENCH_MESSAGES", "100000"))
USERS = max(1, MESSAGES // 500)


def timed(call):
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


@pytest.mark.bench
def test_librechat_dump_into_onyx(postgres_database, tmp_path):
    load_onyx(postgres_database)
    counts, generated = timed(lambda: write_synthetic_dump(tmp_path / "dump", messages=MESSAGES, users=USERS))
    dump_bytes = sum(path.stat().st_size for path in (tmp_path / "dump" / "LibreChat").glob("*.bson"))
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", blob_dir=tmp_path / "blobs")

    def extraction():
        return extract(ledger, source(ledger, dump_path=tmp_path / "dump"), settings=ExtractSettings())

    with OnyxApi(postgres_database) as api:

        def replaying():
            return replay(
                ledger, sink(ledger, postgres_database, api, credentials_file=tmp_path / "c.jsonl"), [STREAM]
            )

        first_extract, extract_seconds = timed(extraction)
        first_replay, replay_seconds = timed(replaying)
        again_extract, again_extract_seconds = timed(extraction)
        again_replay, again_replay_seconds = timed(replaying)
        checked, verify_seconds = timed(lambda: verify(ledger, sink(ledger, postgres_database), [STREAM]))
    ledger.close()

    records = sum(kind["read"] for kind in first_extract.stats["kinds"].values())
    rows = query(
        postgres_database,
        "SELECT count(*), count(*) FILTER (WHERE message_type = 'SYSTEM') FROM chat_message",
    )[0]
    bridges = query(
        postgres_database,
        "SELECT count(*) FROM chat_message WHERE message = 'Continue.' AND message_type = 'USER'",
    )[0][0]
    sessions = query(postgres_database, "SELECT count(*) FROM chat_session")[0][0]
    assert first_extract.stats["kinds"]["message"]["new"] == MESSAGES == counts["messages"]
    assert first_replay.status == "succeeded" and rows[0] == MESSAGES + counts["conversations"] + bridges
    assert sessions == counts["conversations"] and again_replay.stats["written"] == 0
    assert again_extract.stats["events"] == 0 and checked.matches

    print()
    print(
        f"LibreChat → Onyx benchmark: {MESSAGES:,} messages, {counts['conversations']:,} conversations, {USERS:,} users"
    )
    print(f"  dump: {dump_bytes / 1e6:.1f} MB of BSON written in {generated:.1f} s")
    print(f"  extract: {records:,} records in {extract_seconds:.1f} s = {records / extract_seconds:,.0f} records/s "
          f"({MESSAGES / extract_seconds:,.0f} messages/s); peak RSS {first_extract.stats['peak_rss_mb']}")  # fmt: skip
    print(f"  replay into Onyx: {first_replay.stats['written']:,} records in {replay_seconds:.1f} s = "
          f"{MESSAGES / replay_seconds:,.0f} messages/s ({first_replay.stats['written'] / replay_seconds:,.0f} records/s)")  # fmt: skip
    print(f"  migration (extract + replay): {MESSAGES / (extract_seconds + replay_seconds):,.0f} messages/s")
    print(f"  no-op re-run: extract {again_extract_seconds:.2f} s ({again_extract.stats['scopes']['unchanged']} of "
          f"{again_extract.stats['scopes']['listed']} scopes skipped by fingerprint), replay {again_replay_seconds:.2f} s "
          f"(0 written); verify {verify_seconds:.1f} s ({checked.counts['ok']:,} units ok)")  # fmt: skip
    print(f"  Onyx rows: {rows[0]:,} chat_message ({rows[1]:,} roots, {bridges:,} bridges), {sessions:,} chat_session; "
          f"{rows[0] / MESSAGES:.3f} rows per message; sink counters {first_replay.stats['sink']}")  # fmt: skip
