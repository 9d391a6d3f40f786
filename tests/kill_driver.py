"""One writing verb against a ``sql`` target, in a process of its own, for kill trials
(tests/test_kill_campaign.py): ``python -m tests.kill_driver LEDGER BLOBS VERB TARGET URL
BATCH [RUN]``. Exit 0 when the run succeeded, 1 when it failed."""

from __future__ import annotations

import sys

from ledger.replay import ReplaySettings, replay
from ledger.replay.repair import repair
from ledger.replay.rollback import rollback
from ledger.sink import SinkContext
from ledger.store import Ledger
from sinks.sql import SqlOptions, SqlSink


def main(ledger_url: str, blobs: str, verb: str, target: str, url: str, batch: str, run: str = "0") -> int:
    ledger = Ledger.open(ledger_url, blob_dir=blobs)
    sink = SqlSink(SqlOptions(url=url), SinkContext(target, ledger.blobs))
    settings = ReplaySettings(batch_records=int(batch))
    if verb == "replay":
        result = replay(ledger, sink, ["syn"], settings=settings)
    elif verb == "rollback":
        result = rollback(ledger, sink, int(run), settings=settings)
    else:
        result = repair(ledger, sink, "resync", ["syn"], settings=settings)
    return 0 if result.status == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
