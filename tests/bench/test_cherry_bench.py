"""Benchmark: a v1 backup ZIP with 100,000 messages (``data.json`` version 5, written as a
stream) into a new ``cherrystudio.sqlite``. Run it with

    python -m pytest -m bench tests/bench/test_cherry_bench.py -s

Each size runs in a fresh process (extract with the forked reader, replay, verify) that
prints messages/s and its peak RSS (``VmHWM``), and the reader's; a smaller backup runs
first, so flat memory shows as equal peaks. ``CHATLEDGER_BENCH_MESSAGES`` changes the size.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import orjson
import pytest

MESSAGES = int(os.environ.get("CHATLEDGER_BENCH_MESSAGES", "100000"))
PER_TOPIC = 20
MODEL = {"id": "gpt-4o", "provider": "openai", "name": "GPT-4o"}

RUN = r"""
import json, sys, time
from pathlib import Path
from ledger.extract import ExtractSettings, extract
from ledger.replay import replay
from ledger.replay.verify import verify
from ledger.store import Ledger
from tests.cherry.harness import sink, source

def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)

backup, work = Path(sys.argv[1]), Path(sys.argv[2])
ledger = Ledger.open(f"sqlite:///{work / 'ledger.db'}", blob_dir=work / "blobs")
started = time.perf_counter()
extracted = extract(ledger, source(ledger, backup))
middle = time.perf_counter()
replayed = replay(ledger, sink(ledger, work / "cherrystudio.sqlite"), ["cherry"])
ended = time.perf_counter()
checked = verify(ledger, sink(ledger, work / "cherrystudio.sqlite"), ["cherry"])
print(json.dumps({
    "extract_s": round(middle - started, 1), "replay_s": round(ended - middle, 1),
    "verify_s": round(time.perf_counter() - ended, 1),
    "messages_written": replayed.stats["sink"]["messages_written"],
    "matches": checked.matches,
    "peak_rss_mb": peak(), "reader_peak_rss_mb": extracted.stats["peak_rss_mb"]["reader"],
}))
"""


def write_backup(path: Path, messages: int) -> None:
    """A plain backup, streamed into the ZIP entry: topics of PER_TOPIC messages."""
    topics = messages // PER_TOPIC
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive, archive.open("data.json", "w") as out:
        metas = [
            {"id": f"t{n}", "name": f"Topic {n}", "createdAt": "2024-03-01T10:00:00Z", "messages": []}
            for n in range(topics)
        ]
        state = {
            "assistants": orjson.dumps({"assistants": [{"id": "a1", "name": "A", "topics": metas}]}).decode()
        }
        out.write(b'{"time":1709290000000,"version":5,"localStorage":')
        out.write(orjson.dumps({"persist:cherry-studio": orjson.dumps(state).decode()}))
        out.write(b',"indexedDB":{"topics":[')
        for n in range(topics):
            rows = []
            for m in range(PER_TOPIC):
                row = {
                    "id": f"t{n}-m{m}",
                    "role": "user" if m % 2 == 0 else "assistant",
                    "topicId": f"t{n}",
                    "createdAt": "2024-03-01T10:00:00Z",
                    "status": "success",
                    "blocks": [f"t{n}-m{m}-b"],
                }
                if m % 2:
                    row.update(
                        askId=f"t{n}-m{m - 1}",
                        model=MODEL,
                        usage={"prompt_tokens": 10, "completion_tokens": 20},
                    )
                rows.append(row)
            out.write((b"," if n else b"") + orjson.dumps({"id": f"t{n}", "messages": rows}))
        out.write(b'],"message_blocks":[')
        for n in range(topics):
            for m in range(PER_TOPIC):
                block = {
                    "id": f"t{n}-m{m}-b",
                    "messageId": f"t{n}-m{m}",
                    "type": "main_text",
                    "status": "success",
                    "createdAt": "2024-03-01T10:00:00Z",
                    "content": f"message {m} of topic {n} " * 8,
                }
                out.write((b"," if n or m else b"") + orjson.dumps(block))
        out.write(b'],"files":[]}}')


def migrate(tmp_path: Path, messages: int) -> dict:
    work = tmp_path / f"m{messages}"
    work.mkdir()
    backup = work / "cherry-studio.zip"
    write_backup(backup, messages)
    shown = subprocess.run(
        [sys.executable, "-c", RUN, str(backup), str(work)],
        capture_output=True, text=True, cwd=Path(__file__).parents[2], timeout=3000,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr[-3000:]
    figures = json.loads(shown.stdout.strip().splitlines()[-1])
    seconds = figures["extract_s"] + figures["replay_s"]
    figures["messages_per_s"] = round(figures["messages_written"] / seconds)
    figures["backup_mb"] = round(backup.stat().st_size / 1e6, 1)
    return figures


@pytest.mark.bench
def test_cherry_backup_into_v2(tmp_path):
    small = migrate(tmp_path, MESSAGES // 5)
    full = migrate(tmp_path, MESSAGES)
    print(f"\ncherry → cherry-v2, {MESSAGES // 5:,} messages: {small}")
    print(f"cherry → cherry-v2, {MESSAGES:,} messages: {full}")
    assert full["messages_written"] == MESSAGES and full["matches"]
    assert full["reader_peak_rss_mb"] < small["reader_peak_rss_mb"] * 1.1  # the reader streams
    assert full["peak_rss_mb"] < small["peak_rss_mb"] * 1.1  # and so does the main process
