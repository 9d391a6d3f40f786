"""``chatledger bench extract``: extraction speed and memory, as ratios within one run.

For each ledger backend (a fresh SQLite file, a fresh Postgres database) it extracts the
same synthetic data three times, each in its own ``chatledger`` process:

1. first: everything is new;
2. no-op: unchanged, so checkpoints (scope fingerprints) let every scope be skipped;
3. no-op ``--full``: unchanged, but every record is read, hashed and compared again.

It prints records/s of the first run, the first/no-op time ratios and the peak RSS of
the writer and reader processes (as each run recorded it in its stats).

On SQLite it also measures a floor: the rows the first run wrote, inserted again into a
fresh ledger with plain ``executemany`` and nothing else. The floor's records/s over the
first run's is how far the engine stays from what SQLite itself allows on this machine.
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


def _series(ledger_url: str, users: int, workdir: Path, echo: Callable[[str], Any]) -> dict:
    out: dict[str, Any] = {}
    for label, extra in (("first", []), ("noop", []), ("noop_full", ["--full"])):
        echo(f"  {label} …")
        out[label] = _extract(ledger_url, users, extra, workdir)
    first = out["first"]
    # records the first run read, per second of its own job time (process start excluded)
    out["records_per_second"] = round(first["records"] / first["seconds"])
    out["noop_speedup"] = round(first["seconds"] / max(out["noop"]["seconds"], 1e-3), 1)
    out["noop_full_speedup"] = round(first["seconds"] / max(out["noop_full"]["seconds"], 1e-3), 2)
    out["peak_rss_mb"] = max(
        value
        for run in (out["first"], out["noop"], out["noop_full"])
        for value in run["peak_rss_mb"].values()
    )
    return out


#: Records per transaction and per part in the SQLite floor, as the extraction has them.
FLOOR_BATCH = 100_000
FLOOR_PART = 10_000
FLOOR_TABLES = ("payloads", "events", "heads")


def _sqlite_floor(ledger_path: Path, workdir: Path) -> dict[str, Any]:
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
    results: dict[str, Any] = {"users": users, "backends": {}}
    with tempfile.TemporaryDirectory(prefix="chatledger-bench-") as scratch:
        workdir = Path(scratch)
        echo(f"SQLite ledger ({users:,} users)")
        sqlite_path = workdir / "sqlite" / "ledger.db"
        series = results["backends"]["sqlite"] = _series(f"sqlite:///{sqlite_path}", users, workdir, echo)
        echo("  SQLite floor: the same rows with plain executemany …")
        floor = series["floor"] = _sqlite_floor(sqlite_path, workdir)
        series["floor_ratio"] = round(floor["records_per_second"] / series["records_per_second"], 2)
        if postgres_url:
            database = f"chatledger_bench_{os.getpid()}"
            admin = create_engine(normalize_url(postgres_url), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{database}"'))
            try:
                url = normalize_url(postgres_url).rsplit("/", 1)[0] + f"/{database}"
                echo(f"Postgres ledger ({users:,} users)")
                results["backends"]["postgres"] = _series(url, users, workdir, echo)
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
                admin.dispose()
    return results


# -- replay ----------------------------------------------------------------------------

SQL_TABLES = ("users", "conversations", "messages", "files", "records")


def _cli_json(args: list[str], workdir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "ledger", *args, "--no-progress", "--json"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"benchmark step failed: {done.stderr.strip()[-2000:]}")
    result = json.loads(done.stdout)
    result["wall_seconds"] = round(time.perf_counter() - started, 2)
    return result


def _copy_baseline(target_url: str) -> dict[str, Any]:
    """Load the rows the replay wrote with plain psycopg COPY into empty twin tables."""
    import psycopg

    dsn = target_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS copy_baseline CASCADE")
        conn.execute("CREATE SCHEMA copy_baseline")
        dumps: dict[str, bytes] = {}
        rows = 0
        for table in SQL_TABLES:
            conn.execute(f"CREATE TABLE copy_baseline.{table} (LIKE public.{table} INCLUDING ALL)")
            buffer = bytearray()
            with conn.cursor().copy(f"COPY public.{table} TO STDOUT (FORMAT binary)") as copy:
                for chunk in copy:
                    buffer += chunk
            dumps[table] = bytes(buffer)
            rows += conn.execute(f"SELECT count(*) FROM public.{table}").fetchone()[0]
        started = time.perf_counter()
        with conn.transaction():
            for table, data in dumps.items():
                with conn.cursor().copy(f"COPY copy_baseline.{table} FROM STDIN (FORMAT binary)") as copy:
                    for start in range(0, len(data), 1 << 20):
                        copy.write(data[start : start + (1 << 20)])
        seconds = time.perf_counter() - started
        conn.execute("DROP SCHEMA copy_baseline CASCADE")
    return {"rows": rows, "seconds": round(seconds, 2)}


def replay_benchmark(
    messages: int, *, postgres_url: str, echo: Callable[[str], Any] = print
) -> dict[str, Any]:
    """Replay synthetic messages into the Postgres ``sql`` sink; compare with plain COPY;
    verify the target (records/s, peak RSS of the replay and the verify process)."""
    users = max(1, messages // MESSAGES_PER_USER)
    load_before = os.getloadavg()[0]  # other work on the machine: figures are ratios
    database = f"chatledger_bench_target_{os.getpid()}"
    admin = create_engine(normalize_url(postgres_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    target_url = normalize_url(postgres_url).rsplit("/", 1)[0] + f"/{database}"
    try:
        with tempfile.TemporaryDirectory(prefix="chatledger-bench-") as scratch:
            workdir = Path(scratch)
            ledger = ["--ledger", f"sqlite:///{workdir / 'ledger.db'}"]
            echo(f"extract ({users:,} synthetic users) …")
            extracted = _cli_json(
                [*ledger, "extract", "synthetic", "--name", "bench", "--users", str(users), "--seed", "1",
                 "--conversations-per-user", str(CONVERSATIONS_PER_USER)],
                workdir,
            )  # fmt: skip
            replay_args = [*ledger, "replay", "sql", "--name", "bench-target", "--url", target_url]
            echo("replay into the Postgres sql sink …")
            first = _cli_json(replay_args, workdir)
            echo("replay again (no-op) …")
            noop = _cli_json(replay_args, workdir)
            echo("verify (the target read back) …")
            checked = _cli_json(
                [*ledger, "verify", "sql", "--name", "bench-target", "--url", target_url], workdir
            )
            echo("plain COPY of the same rows …")
            baseline = _copy_baseline(target_url)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()
    kinds = extracted["stats"]["kinds"]
    first_seconds = first["stats"]["seconds"]
    return {
        "users": users,
        "messages": kinds.get("message", {}).get("read", 0),
        "records": first["stats"]["written"],
        "replay_seconds": first_seconds,
        "replay_records_per_second": round(first["stats"]["written"] / first_seconds),
        "copy_rows": baseline["rows"],
        "copy_seconds": baseline["seconds"],
        "replay_to_copy": round(first_seconds / baseline["seconds"], 2),
        "noop_seconds": noop["stats"]["seconds"],
        "noop_to_first_percent": round(100 * noop["stats"]["seconds"] / first_seconds, 2),
        "noop_written": noop["stats"]["written"],
        "replay_peak_rss_mb": first["stats"]["peak_rss_mb"],
        "verify_seconds": checked["seconds"],
        "verify_records_per_second": round(checked["ok"] / max(checked["seconds"], 1e-3)),
        "verify_matches": checked["matches"],
        "verify_peak_rss_mb": checked["peak_rss_mb"],
        "load_average_start": round(load_before, 2),
        "load_average_end": round(os.getloadavg()[0], 2),
    }
