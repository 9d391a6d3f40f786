"""Several first commands racing on a new ledger all succeed (issue 10, item 16): schema
creation takes a lock, the losers wait and find the schema made (SQLite used to answer
"database is locked", Postgres a UniqueViolation on pg_type)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from ledger.store import Ledger

RACERS = 4
OPEN = (
    "import sys, time, pathlib\n"
    "from ledger.store import Ledger\n"
    "go = pathlib.Path(sys.argv[2])\n"
    "while not go.exists(): time.sleep(0.005)\n"
    "Ledger.open(sys.argv[1], blob_dir=sys.argv[3]).close()\n"
)


@pytest.fixture(params=["sqlite", "postgres"])
def new_ledger_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'new' / 'ledger.db'}"
    return request.getfixturevalue("postgres_database")


def test_racing_first_opens_all_succeed(new_ledger_url, tmp_path):
    go = tmp_path / "go"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN, new_ledger_url, str(go), str(tmp_path / "blobs")],
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        for _ in range(RACERS)
    ]
    time.sleep(1.5)  # every racer imported and waiting
    go.touch()
    failures = [racer.communicate(timeout=120)[1] for racer in racers if racer.wait(120) != 0]
    assert not failures, failures[0][-1500:]
    opened = Ledger.open(new_ledger_url, blob_dir=tmp_path / "blobs")
    assert opened.revisions[0] == opened.revisions[1]
    opened.close()
