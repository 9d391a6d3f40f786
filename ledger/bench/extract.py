"""``chatledger bench extract``: extraction speed and memory, as ratios within one run.

For each ledger backend (a fresh SQLite file, a fresh Postgres database) it extracts the
same synthetic data three times, each in its own ``chatledger`` process:

1. first: everything is new;
2. no-op: unchanged, so checkpoints (scope fingerprints) let every scope be skipped;
3. no-op ``--full``: unchanged, but every record is read, hashed and compared again.

Figures: each run's seconds (the no-ops compared with the first), with the peak RSS of
the writer and reader processes (as each run recorded it in its stats).

Two limits are measured in the same run, each in its own process, so the first
extraction is judged against them rather than against another day's load:

- the *reader alone* (``python -m ledger.bench read-alone``): the source read, every
  record encoded, hashed and compressed (``seal``) and the batches dropped: no pipe, no
  ledger;
- the *writer floor* of each backend: the rows the first SQLite extraction wrote
  (payloads, events, heads), inserted again into a fresh ledger of that backend with its
  plainest bulk insert (``executemany`` on SQLite, ``COPY`` on Postgres) in transactions
  of the extraction's batch size, only the inserts and commits timed.

An extraction pipelines the two (reader and writer in their own processes), so its
ceiling is the lower of them. Rows ``BACKEND of reader``, ``of floor`` and ``of limit``
are the first extraction's records/s against each (``of limit``: the lower one);
``BACKEND CPU`` is its records per CPU second of its busier process (what it would reach
with a free core for each) against the reader alone's (``reader CPU``), which the
machine's load affects less than wall-clock time.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ledger.bench.figures import (
    Figure,
    chatledger,
    machine,
    python_step,
    ratio,
    results,
    server_database,
    synthetic_args,
    synthetic_users,
)
from ledger.extract.reader import PART_RECORDS
from ledger.store import SQLITE_PRAGMAS, Ledger


def _series(
    backend: str, ledger_url: str, users: int, workdir: Path, echo: Callable[[str], Any]
) -> list[Figure]:
    """first, no-op and no-op --full extraction figures of one ledger backend."""
    figures: list[Figure] = []
    first_name = f"{backend} first"
    for label, name, extra in (
        ("first", first_name, []),
        ("no-op", f"{backend} no-op", []),
        ("no-op --full", f"{backend} --full", ["--full"]),
    ):
        echo(f"  {label} …")
        step, result = chatledger(
            ledger_url,
            "extract",
            "synthetic",
            "--name",
            "bench",
            *synthetic_args(users),
            *extra,
            cwd=workdir,
        )
        stats = result["stats"]
        records = sum(kind["read"] for kind in stats["kinds"].values())
        detail = {"records": records, "messages": stats["kinds"].get("message", {}).get("read", 0),
                  "events": stats["events"], "records_per_second": round(records / max(stats["seconds"], 1e-3)),
                  "wall_seconds": step.seconds, "cpu_seconds": step.cpu_seconds,
                  "peak_rss_mb_by_process": stats["peak_rss_mb"],
                  "cpu_seconds_by_process": stats["cpu_seconds"]}  # fmt: skip
        baseline = None if not figures else first_name
        figures.append(
            Figure(name, stats["seconds"], "s", baseline, baseline and ratio(stats["seconds"], figures[0].value),
                   max(stats["peak_rss_mb"].values()), step.load, detail)
        )  # fmt: skip
    return figures


def read_alone(ledger_url: str, users: int) -> dict[str, Any]:
    """The extraction's reader with no writer: the synthetic source read, each record
    encoded into batches as an extraction makes them, sealed (hashed and compressed, which
    an extraction's writer does) and each batch dropped. ``ledger_url`` is a fresh ledger,
    used for its blob store only (the source writes its attachments there, as in the first
    extraction)."""
    from ledger import api
    from ledger.config import Config
    from ledger.extract import ExtractSettings
    from ledger.extract.batch import seal
    from ledger.extract.reader import Reader
    from ledger.memory import bulk_collection
    from ledger.progress import NoProgress

    ledger = Ledger.open(ledger_url)
    try:
        plugin, source_class = api.resolve_stream(
            Config(), "synthetic", synthetic_args(users), stream_name="bench"
        )
        source = api.build_source(ledger, plugin, source_class)
        records = 0

        def drop(batch) -> None:
            nonlocal records
            records += len([seal(record) for record in batch.records])

        started, cpu = time.perf_counter(), time.process_time()
        reader = Reader(
            source, batch_size=ExtractSettings().batch_size, full=True, progress=NoProgress(), submit=drop
        )
        try:
            with bulk_collection():  # as every run collects garbage
                reader.run({}, None)
        finally:
            source.close()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        ledger.close()
    return {
        "records": records,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "records_per_second": round(records / max(seconds, 1e-3)),
    }


#: Records per transaction in the writer floors, as the extraction has them (its parts:
#: ``PART_RECORDS``).
FLOOR_BATCH = 100_000
FLOOR_TABLES = ("payloads", "events", "heads")


def _floor_parts(ledger_path: Path) -> Iterator[dict[str, tuple[list[str], list[tuple]]]]:
    """The ``payloads``, ``events`` and ``heads`` rows of a SQLite ledger in the order they
    were written, in parts as the extraction sends them (so memory stays flat):
    table → (columns, rows)."""
    source = sqlite3.connect(f"file:{ledger_path}?mode=ro", uri=True)
    try:
        cursors = {table: source.execute(f"SELECT * FROM {table} ORDER BY rowid") for table in FLOOR_TABLES}
        columns = {table: [column[0] for column in cursor.description] for table, cursor in cursors.items()}
        while True:
            parts = {
                table: (columns[table], cursor.fetchmany(PART_RECORDS)) for table, cursor in cursors.items()
            }
            if not any(rows for _, rows in parts.values()):
                return
            yield parts
    finally:
        source.close()


def _timed_floor(ledger_path: Path, begin: Callable, insert: Callable, commit: Callable) -> dict[str, Any]:
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
    return {
        "records": records,
        "seconds": round(seconds, 2),
        "records_per_second": round(records / max(seconds, 1e-3)),
    }


def sqlite_floor(ledger_path: Path, workdir: Path) -> dict[str, Any]:
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


def postgres_floor(ledger_path: Path, url: str) -> dict[str, Any]:
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


def _limits(backend: str, first: Figure, floor: Figure, reader: Figure, reader_cpu: Figure) -> list[Figure]:
    """The first extraction's records/s against the reader alone, this backend's floor and
    the lower of the two; and its records per CPU second of its busier process (what it
    would reach with a free core for each) against the reader alone's."""
    speed = first.detail["records_per_second"]
    busier = max(value or 0 for value in first.detail["cpu_seconds_by_process"].values())
    per_cpu = round(first.detail["records"] / max(busier, 1e-3))
    limit = min(reader, floor, key=lambda figure: figure.value)
    return [
        Figure(f"{backend} {name}", value, "rec/s", baseline.figure, ratio(value, baseline.value))
        for name, value, baseline in (
            ("of reader", speed, reader),
            ("CPU", per_cpu, reader_cpu),
            ("of floor", speed, floor),
            ("of limit", speed, limit),
        )
    ]


def extract_benchmark(
    messages: int, *, postgres_url: str | None, echo: Callable[[str], Any] = print
) -> dict[str, Any]:
    users = synthetic_users(messages)
    facts = machine(postgres_url)
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="chatledger-bench-") as scratch:
        workdir = Path(scratch)
        echo(f"the reader alone ({users:,} users) …")
        step, alone = python_step(
            "ledger.bench",
            "read-alone",
            f"sqlite:///{workdir / 'reader' / 'ledger.db'}",
            str(users),
            cwd=workdir,
        )
        alone["process_cpu_seconds"] = step.cpu_seconds
        reader = Figure("reader alone", alone["records_per_second"], "rec/s", peak_rss_mb=step.peak_rss_mb,
                        load=step.load, detail=alone)  # fmt: skip
        reader_cpu = Figure("reader CPU", round(alone["records"] / max(alone["cpu_seconds"], 1e-3)), "rec/s")
        figures += [reader, reader_cpu]

        echo(f"SQLite ledger ({users:,} users)")
        sqlite_path = workdir / "sqlite" / "ledger.db"
        series = _series("sqlite", f"sqlite:///{sqlite_path}", users, workdir, echo)
        echo("  SQLite floor: the same rows with plain executemany …")
        step, done = python_step(
            "ledger.bench.baselines", "ledger-floor", str(sqlite_path), str(workdir), cwd=workdir
        )
        floor = Figure("sqlite floor", done["records_per_second"], "rec/s", peak_rss_mb=step.peak_rss_mb,
                       load=step.load, detail=done | {"insert": "executemany"})  # fmt: skip
        figures += [*series, floor, *_limits("sqlite", series[0], floor, reader, reader_cpu)]

        if postgres_url:
            pid = os.getpid()
            url, drop = server_database(postgres_url, f"chatledger_bench_{pid}")
            try:
                echo(f"Postgres ledger ({users:,} users)")
                series = _series("postgres", url, users, workdir, echo)
            finally:
                drop()
            echo("  Postgres floor: the same rows with plain COPY …")
            url, drop = server_database(postgres_url, f"chatledger_bench_floor_{pid}")
            try:
                step, done = python_step("ledger.bench.baselines", "ledger-floor-postgres", str(sqlite_path), url,
                                         cwd=workdir)  # fmt: skip
            finally:
                drop()
            floor = Figure("postgres floor", done["records_per_second"], "rec/s", peak_rss_mb=step.peak_rss_mb,
                           load=step.load, detail=done | {"insert": "COPY"})  # fmt: skip
            figures += [*series, floor, *_limits("postgres", series[0], floor, reader, reader_cpu)]
    return results("extract", facts, figures, users=users)
