"""``chatledger bench extract``: extraction speed and memory, as ratios within one run.

For each ledger backend (a fresh SQLite file, a fresh Postgres database) it extracts the
same synthetic data three times, each in its own ``chatledger`` process:

1. first: everything is new;
2. no-op: unchanged, so checkpoints (scope fingerprints) let every scope be skipped;
3. no-op ``--full``: unchanged, but every record is read, hashed and compared again.

Figures: each run's seconds (the no-ops compared with the first), with the peak RSS of
the writer and reader processes (as each run recorded it in its stats).

On SQLite it also measures a floor, in its own process: the rows the first run wrote,
inserted again into a fresh ledger with plain ``executemany`` and nothing else. The first
extraction's time over the floor's is how far the engine stays from what SQLite itself
allows on this machine.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from ledger.bench.figures import Figure, machine, python_step, ratio, results
from ledger.store import SQLITE_PRAGMAS, Ledger, normalize_url

#: Synthetic shape of the benchmark (the defaults otherwise): about 8.4 messages per
#: conversation, measured on seed 1.
CONVERSATIONS_PER_USER = 10
MESSAGES_PER_USER = 84


def _extract(ledger_url: str, users: int, extra: list[str], workdir: Path) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "ledger", "--ledger", ledger_url, "extract", "synthetic",
        "--name", "bench", "--users", str(users), "--seed", "1",
        "--conversations-per-user", str(CONVERSATIONS_PER_USER), "--no-progress", "--json",
        *extra,
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"benchmark extraction failed: {done.stderr.strip()[-2000:]}")
    result = json.loads(done.stdout)
    stats = result["stats"]
    return {
        "wall_seconds": round(wall, 2),
        "seconds": stats["seconds"],
        "records": sum(kind["read"] for kind in stats["kinds"].values()),
        "messages": stats["kinds"].get("message", {}).get("read", 0),
        "events": stats["events"],
        "peak_rss_mb": stats["peak_rss_mb"],
    }


def _series(
    backend: str, ledger_url: str, users: int, workdir: Path, echo: Callable[[str], Any]
) -> list[Figure]:
    """first, no-op and no-op --full extraction figures of one ledger backend."""
    figures: list[Figure] = []
    first_name = f"extract {backend} first"
    for label, name, extra in (
        ("first", first_name, []),
        ("no-op", f"extract {backend} no-op", []),
        ("no-op --full", f"extract {backend} no-op --full", ["--full"]),
    ):
        echo(f"  {label} …")
        run = _extract(ledger_url, users, extra, workdir)
        detail = {"records": run["records"], "messages": run["messages"], "events": run["events"],
                  "records_per_second": round(run["records"] / max(run["seconds"], 1e-3)),
                  "peak_rss_mb_by_process": run["peak_rss_mb"]}  # fmt: skip
        baseline = None if not figures else first_name
        figures.append(
            Figure(name, run["seconds"], "s", baseline, baseline and ratio(run["seconds"], figures[0].value),
                   max(run["peak_rss_mb"].values()), os.getloadavg()[0], detail)
        )  # fmt: skip
    return figures


#: Records per transaction and per part in the SQLite floor, as the extraction has them.
FLOOR_BATCH = 100_000
FLOOR_PART = 10_000
FLOOR_TABLES = ("payloads", "events", "heads")


def sqlite_floor(ledger_path: Path, workdir: Path) -> dict[str, Any]:
    """What SQLite alone takes to store the rows a first extraction wrote.

    Copies the ``payloads``, ``events`` and ``heads`` rows of ``ledger_path``, in the
    order they were written, into a fresh ledger (same migrations, page size and
    pragmas) with plain ``executemany`` in transactions of the extraction's batch size.
    Only the inserts and commits are timed: no source, no encoding, no head lookups.
    """
    floor_path = workdir / "floor" / "ledger.db"
    Ledger.open(f"sqlite:///{floor_path}").close()  # schema and page size, as extract makes them
    source = sqlite3.connect(f"file:{ledger_path}?mode=ro", uri=True)
    target = sqlite3.connect(floor_path, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:
        target.execute(f"PRAGMA {pragma}")
    cursors = {table: source.execute(f"SELECT * FROM {table} ORDER BY rowid") for table in FLOOR_TABLES}
    seconds, records, uncommitted = 0.0, 0, 0
    while True:
        # parts of 10,000 rows as the extraction sends them, so memory stays flat
        parts = {table: cursor.fetchmany(FLOOR_PART) for table, cursor in cursors.items()}
        if not any(parts.values()):
            break
        started = time.perf_counter()
        if not uncommitted:
            target.execute("BEGIN IMMEDIATE")
        for table, rows in parts.items():
            if rows:
                marks = ", ".join("?" * len(rows[0]))
                target.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
        uncommitted += len(parts["events"])
        if uncommitted >= FLOOR_BATCH:
            target.execute("COMMIT")
            uncommitted = 0
        seconds += time.perf_counter() - started
        records += len(parts["events"])
    if uncommitted:
        started = time.perf_counter()
        target.execute("COMMIT")
        seconds += time.perf_counter() - started
    source.close()
    target.close()
    return {"records": records, "seconds": round(seconds, 2), "records_per_second": round(records / seconds)}


def extract_benchmark(
    messages: int, *, postgres_url: str | None, echo: Callable[[str], Any] = print
) -> dict[str, Any]:
    users = max(1, messages // MESSAGES_PER_USER)
    facts = machine(postgres_url)
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="chatledger-bench-") as scratch:
        workdir = Path(scratch)
        echo(f"SQLite ledger ({users:,} users)")
        sqlite_path = workdir / "sqlite" / "ledger.db"
        series = _series("sqlite", f"sqlite:///{sqlite_path}", users, workdir, echo)
        echo("  SQLite floor: the same rows with plain executemany …")
        step, floor = python_step(
            "ledger.bench.baselines", "ledger-floor", str(sqlite_path), str(workdir), cwd=workdir
        )
        floor_name = "executemany floor sqlite ledger"
        series[0].baseline, series[0].ratio = floor_name, ratio(series[0].value, floor["seconds"])
        figures += series
        figures.append(Figure(floor_name, floor["seconds"], "s", peak_rss_mb=step.peak_rss_mb, load=step.load,
                              detail=floor))  # fmt: skip
        if postgres_url:
            database = f"chatledger_bench_{os.getpid()}"
            admin = create_engine(normalize_url(postgres_url), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{database}"'))
            try:
                url = normalize_url(postgres_url).rsplit("/", 1)[0] + f"/{database}"
                echo(f"Postgres ledger ({users:,} users)")
                figures += _series("postgres", url, users, workdir, echo)
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
                admin.dispose()
    return results("extract", facts, figures, users=users)
