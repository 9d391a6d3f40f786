"""``chatledger bench extract``: extraction speed and memory, as ratios within one run.

For each ledger backend (a fresh SQLite file, a fresh Postgres database) it extracts the
same synthetic data three times, each in its own ``chatledger`` process:

1. first: everything is new;
2. no-op: unchanged, so checkpoints (scope fingerprints) let every scope be skipped;
3. no-op ``--full``: unchanged, but every record is read, hashed and compared again.

It prints records/s of the first run, the first/no-op time ratios and the peak RSS of
the writer and reader processes (as each run recorded it in its stats).

Two limits are measured in the same run, so the first extraction can be judged against
them rather than against figures from another day's load:

- the *reader alone*: the source read, every record encoded, hashed and compressed, and
  the batches dropped (no pipe, no ledger);
- the *writer floor* of each backend: the rows the first SQLite run wrote (payloads,
  events, heads), inserted again into a fresh ledger of that backend with the plainest
  bulk insert it has (``executemany`` on SQLite, ``COPY`` on Postgres) in transactions of
  the extraction's batch size, nothing else timed.

An extraction pipelines the two (reader and writer on their own cores), so its ceiling
is the lower of them; ``of_limit`` is its records/s over that lower one.
"""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from ledger.store import SQLITE_PRAGMAS, Ledger, normalize_url

#: Synthetic shape of the benchmark (the defaults otherwise): about 8.4 messages per
#: conversation, measured on seed 1.
CONVERSATIONS_PER_USER = 10
MESSAGES_PER_USER = 84


def _child_cpu_seconds() -> float:
    """CPU seconds (user + system) of the finished children of this process, and theirs."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_json(command: list[str], workdir: Path) -> tuple[dict[str, Any], float, float]:
    """(its JSON output, wall seconds, CPU seconds) of a benchmark step run as a process."""
    started, cpu = time.perf_counter(), _child_cpu_seconds()
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False)
    wall, cpu = time.perf_counter() - started, _child_cpu_seconds() - cpu
    if done.returncode != 0:
        raise RuntimeError(f"benchmark step failed: {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout), wall, cpu


def _synthetic_args(users: int) -> list[str]:
    return ["--users", str(users), "--seed", "1", "--conversations-per-user", str(CONVERSATIONS_PER_USER)]


def _extract(ledger_url: str, users: int, extra: list[str], workdir: Path) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "ledger", "--ledger", ledger_url, "extract", "synthetic",
        "--name", "bench", *_synthetic_args(users), "--no-progress", "--json", *extra,
    ]  # fmt: skip
    result, wall, cpu = _run_json(command, workdir)
    stats = result["stats"]
    return {
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
        "seconds": stats["seconds"],
        "records": sum(kind["read"] for kind in stats["kinds"].values()),
        "messages": stats["kinds"].get("message", {}).get("read", 0),
        "events": stats["events"],
        "peak_rss_mb": stats["peak_rss_mb"],
        "process_cpu_seconds": stats["cpu_seconds"],  # writer, reader (null: one process)
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


def read_alone(ledger_url: str, users: int) -> dict[str, Any]:
    """The extraction's reader with no writer: the synthetic source read, each record
    encoded into batches as an extraction makes them, hashed and compressed (which an
    extraction's writer does), and each batch dropped. ``ledger_url`` is a fresh ledger, used for its blob store only (the
    source writes its attachments there, as in the first extraction)."""
    from ledger import api
    from ledger.config import Config
    from ledger.extract import ExtractSettings
    from ledger.extract.batch import seal
    from ledger.extract.reader import Reader
    from ledger.progress import NoProgress

    ledger = Ledger.open(ledger_url)
    try:
        plugin, source_class = api.resolve_stream(
            Config(), "synthetic", _synthetic_args(users), stream_name="bench"
        )
        source = api.build_source(ledger, plugin, source_class)
        records = 0

        def drop(batch) -> None:
            nonlocal records
            records += len([seal(record) for record in batch.records])

        started, cpu = time.monotonic(), time.process_time()
        reader = Reader(
            source, batch_size=ExtractSettings().batch_size, full=True, progress=NoProgress(), submit=drop
        )
        try:
            reader.run({}, None)
        finally:
            source.close()
        seconds, cpu = time.monotonic() - started, time.process_time() - cpu
    finally:
        ledger.close()
    return {
        "records": records,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "records_per_second": round(records / seconds),
    }


def _read_alone(users: int, workdir: Path) -> dict[str, Any]:
    """``read_alone`` in a process of its own, as the extractions run."""
    url = f"sqlite:///{workdir / 'reader' / 'ledger.db'}"
    result, wall, cpu = _run_json(
        [sys.executable, "-m", "ledger.bench", "read-alone", url, str(users)], workdir
    )
    return result | {"wall_seconds": round(wall, 2), "process_cpu_seconds": round(cpu, 2)}


#: Records per transaction and per part in the writer floors, as the extraction has them.
FLOOR_BATCH = 100_000
FLOOR_PART = 5_000
FLOOR_TABLES = ("payloads", "events", "heads")


def _floor_parts(ledger_path: Path) -> Iterator[dict[str, tuple[list[str], list[tuple]]]]:
    """The ``payloads``, ``events`` and ``heads`` rows of a SQLite ledger in the order they
    were written, in parts of 5,000 rows per table as the extraction sends them (so
    memory stays flat): table → (columns, rows)."""
    source = sqlite3.connect(f"file:{ledger_path}?mode=ro", uri=True)
    try:
        cursors = {table: source.execute(f"SELECT * FROM {table} ORDER BY rowid") for table in FLOOR_TABLES}
        columns = {table: [d[0] for d in cursor.description] for table, cursor in cursors.items()}
        while True:
            parts = {
                table: (columns[table], cursor.fetchmany(FLOOR_PART)) for table, cursor in cursors.items()
            }
            if not any(rows for _, rows in parts.values()):
                return
            yield parts
    finally:
        source.close()


def _timed_floor(ledger_path: Path, begin, insert, commit) -> dict[str, Any]:
    """Feed ``_floor_parts`` to ``insert(table, columns, rows)`` in transactions of
    ``FLOOR_BATCH`` events; only ``begin``, ``insert`` and ``commit`` are timed."""
    seconds, records, uncommitted = 0.0, 0, 0
    for parts in _floor_parts(ledger_path):
        started = time.perf_counter()
        if not uncommitted:
            begin()
        for table, (columns, rows) in parts.items():
            if rows:
                insert(table, columns, rows)
        events = len(parts["events"][1])
        uncommitted += events
        if uncommitted >= FLOOR_BATCH:
            commit()
            uncommitted = 0
        seconds += time.perf_counter() - started
        records += events
    if uncommitted:
        started = time.perf_counter()
        commit()
        seconds += time.perf_counter() - started
    return {"records": records, "seconds": round(seconds, 2), "records_per_second": round(records / seconds)}


def _sqlite_floor(ledger_path: Path, workdir: Path) -> dict[str, Any]:
    """What SQLite alone takes to store the rows a first extraction wrote: a fresh ledger
    (same migrations, page size and pragmas), plain ``executemany`` of the rows."""
    floor_path = workdir / "floor" / "ledger.db"
    Ledger.open(f"sqlite:///{floor_path}").close()  # schema and page size, as extract makes them
    target = sqlite3.connect(floor_path, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:
        target.execute(f"PRAGMA {pragma}")

    def insert(table: str, columns: list[str], rows: list[tuple]) -> None:
        marks = ", ".join("?" * len(columns))
        target.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    try:
        return _timed_floor(
            ledger_path, lambda: target.execute("BEGIN IMMEDIATE"), insert, lambda: target.execute("COMMIT")
        )
    finally:
        target.close()


def _postgres_floor(ledger_path: Path, url: str) -> dict[str, Any]:
    """What Postgres alone takes to store the same rows: a fresh ledger database (same
    migrations), plain ``COPY`` of the rows (booleans and times as SQLite stored them)."""
    import psycopg

    Ledger.open(url).close()
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:

        def insert(table: str, columns: list[str], rows: list[tuple]) -> None:
            with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)

        return _timed_floor(ledger_path, lambda: None, insert, conn.commit)


def _scratch_database(postgres_url: str, name: str):
    """(url, drop) of a new Postgres database on the server of ``postgres_url``."""
    admin = create_engine(normalize_url(postgres_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return normalize_url(postgres_url).rsplit("/", 1)[0] + f"/{name}", drop


def _limits(series: dict[str, Any], reader: dict[str, Any]) -> None:
    """The extraction's records/s against the reader alone and this backend's floor.

    ``of_reader_cpu`` compares CPU time instead, apart from the machine's load: the
    reader alone's records per CPU second against the first extraction's per CPU second
    of its busier process (what it would reach with a free core for each)."""
    limit = min(reader["records_per_second"], series["floor"]["records_per_second"])
    first = series["first"]
    busier = max(value or 0 for value in first["process_cpu_seconds"].values())
    series["of_reader_cpu"] = round(
        (first["records"] / busier) / (reader["records"] / reader["cpu_seconds"]), 2
    )
    series["of_reader"] = round(series["records_per_second"] / reader["records_per_second"], 2)
    series["of_floor"] = round(series["records_per_second"] / series["floor"]["records_per_second"], 2)
    series["of_limit"] = round(series["records_per_second"] / limit, 2)


def extract_benchmark(
    messages: int, *, postgres_url: str | None, echo: Callable[[str], Any] = print
) -> dict[str, Any]:
    users = max(1, messages // MESSAGES_PER_USER)
    results: dict[str, Any] = {"users": users, "backends": {}}
    with tempfile.TemporaryDirectory(prefix="chatledger-bench-") as scratch:
        workdir = Path(scratch)
        echo(f"the reader alone ({users:,} users) …")
        reader = results["reader"] = _read_alone(users, workdir)
        echo(f"SQLite ledger ({users:,} users)")
        sqlite_path = workdir / "sqlite" / "ledger.db"
        series = results["backends"]["sqlite"] = _series(f"sqlite:///{sqlite_path}", users, workdir, echo)
        echo("  SQLite floor: the same rows with plain executemany …")
        series["floor"] = _sqlite_floor(sqlite_path, workdir)
        _limits(series, reader)
        if postgres_url:
            url, drop = _scratch_database(postgres_url, f"chatledger_bench_{os.getpid()}")
            try:
                echo(f"Postgres ledger ({users:,} users)")
                series = results["backends"]["postgres"] = _series(url, users, workdir, echo)
            finally:
                drop()
            echo("  Postgres floor: the same rows with plain COPY …")
            url, drop = _scratch_database(postgres_url, f"chatledger_bench_floor_{os.getpid()}")
            try:
                series["floor"] = _postgres_floor(sqlite_path, url)
            finally:
                drop()
            _limits(series, reader)
    return results


# -- replay ----------------------------------------------------------------------------

SQL_TABLES = ("users", "conversations", "messages", "files", "records")


def _cli_json(args: list[str], workdir: Path) -> dict[str, Any]:
    result, wall, _ = _run_json([sys.executable, "-m", "ledger", *args, "--no-progress", "--json"], workdir)
    result["wall_seconds"] = round(wall, 2)
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
    """Replay synthetic messages into the Postgres ``sql`` sink; compare with plain COPY."""
    users = max(1, messages // MESSAGES_PER_USER)
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
    }


if __name__ == "__main__":  # ``python -m ledger.bench read-alone URL USERS`` (see _read_alone)
    if sys.argv[1:2] != ["read-alone"] or len(sys.argv) != 4:
        sys.exit("usage: python -m ledger.bench read-alone LEDGER_URL USERS")
    print(json.dumps(read_alone(sys.argv[2], int(sys.argv[3]))))
