"""Baselines: the rows a sink wrote, written again the fastest plain way the target has.

Each reads what a replay left in its target (every table or collection but
``chatledger_markers``: the marker rows are the sink's exactly-once bookkeeping, which a
plain write does without) and writes it into an empty twin on the same server, timing
only the writing:

- Postgres: binary ``COPY`` of every table into a twin schema, one transaction (each
  table is dumped to a file first, untimed, so memory stays flat);
- SQLite: ``executemany`` into a fresh file made from the same DDL (triggers, indexes
  and FTS tables included, so they do the same work; the column an FTS table is keyed
  by is left to the insert trigger that numbers it, as the app leaves it), one
  transaction;
- MySQL/MariaDB: ``executemany`` into a twin database (``CREATE TABLE … LIKE``), one
  transaction;
- MongoDB: ``bulk_write`` of ``InsertOne`` (unordered) into a twin database;
- files: each file written again with ``open``/``write`` (no ``fsync``: the bundle
  sink leaves its files to the page cache too).

``ledger-floor`` and ``ledger-floor-postgres`` are ``bench extract``'s writer floors (see
``ledger.bench.extract``). Run as
``python -m ledger.bench.baselines KIND ARGS…`` (one process, so its peak RSS is
its own); prints ``{"rows", "seconds", "tables"}`` as JSON.
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from ledger.sql_target import MARKER_TABLE

CHUNK = 10_000
TWIN = "chatledger_baseline"


def postgres(url: str, dump_dir: str) -> dict[str, Any]:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    dumps = Path(dump_dir)
    dumps.mkdir(parents=True, exist_ok=True)
    tables: dict[str, int] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> %s ORDER BY 1",
                (MARKER_TABLE,),
            )
        ]
        conn.execute(f"DROP SCHEMA IF EXISTS {TWIN} CASCADE")
        conn.execute(f"CREATE SCHEMA {TWIN}")
        for name in names:
            rows = conn.execute(f'SELECT count(*) FROM public."{name}"').fetchone()[0]
            if not rows:
                continue
            tables[name] = rows
            conn.execute(f'CREATE TABLE {TWIN}."{name}" (LIKE public."{name}" INCLUDING ALL)')
            dump = conn.cursor().copy(f'COPY public."{name}" TO STDOUT (FORMAT binary)')
            with open(dumps / name, "wb") as file, dump as copy:
                for chunk in copy:
                    file.write(chunk)
        started = time.perf_counter()
        with conn.transaction():
            for name in tables:
                load = conn.cursor().copy(f'COPY {TWIN}."{name}" FROM STDIN (FORMAT binary)')
                with load as copy, open(dumps / name, "rb") as file:
                    while chunk := file.read(1 << 20):
                        copy.write(chunk)
        seconds = time.perf_counter() - started
        conn.execute(f"DROP SCHEMA {TWIN} CASCADE")
    for name in tables:
        (dumps / name).unlink()
    return {"rows": sum(tables.values()), "seconds": round(seconds, 4), "tables": tables}


def sqlite(source_path: str, twin_path: str) -> dict[str, Any]:
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
    Path(twin_path).unlink(missing_ok=True)
    twin = sqlite3.connect(twin_path, isolation_level=None)
    schema = source.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"
    ).fetchall()
    virtual = [
        name for kind, name, sql in schema if kind == "table" and sql.upper().startswith("CREATE VIRTUAL")
    ]

    numbered = _trigger_numbered(sql for kind, _, sql in schema if kind == "table")

    def shadow(kind: str, name: str) -> bool:  # a table its virtual table makes (not an index)
        return kind == "table" and any(name.startswith(f"{table}_") for table in virtual)

    for kind, name, sql in schema:
        if not shadow(kind, name):
            twin.execute(sql)
    plain = [
        name
        for kind, name, sql in schema
        if kind == "table" and name not in virtual and not shadow(kind, name) and name != MARKER_TABLE
    ]
    tables: dict[str, int] = {}
    seconds = 0.0
    twin.execute("BEGIN")
    for name in plain:
        columns = [row[1] for row in source.execute(f'PRAGMA table_info("{name}")')]
        # the column an external-content FTS table is keyed by: its insert trigger numbers it
        picked = ", ".join("NULL" if column == numbered.get(name) else f'"{column}"' for column in columns)
        cursor = source.execute(f'SELECT {picked} FROM "{name}"')
        marks = ", ".join("?" * len(columns))
        while rows := cursor.fetchmany(CHUNK):
            started = time.perf_counter()
            twin.executemany(f'INSERT INTO "{name}" VALUES ({marks})', rows)
            seconds += time.perf_counter() - started
            tables[name] = tables.get(name, 0) + len(rows)
    started = time.perf_counter()
    twin.execute("COMMIT")
    seconds += time.perf_counter() - started
    source.close()
    twin.close()
    Path(twin_path).unlink()
    return {"rows": sum(tables.values()), "seconds": round(seconds, 4), "tables": tables}


def _trigger_numbered(table_sql) -> dict[str, str]:
    """content table → its ``content_rowid`` column, from the FTS5 tables' DDL."""
    numbered = {}
    for sql in table_sql:
        content = re.search(r"content\s*=\s*'(\w+)'", sql)
        rowid = re.search(r"content_rowid\s*=\s*'(\w+)'", sql)
        if sql.upper().startswith("CREATE VIRTUAL") and content and rowid:
            numbered[content.group(1)] = rowid.group(1)
    return numbered


def mariadb(url: str) -> dict[str, Any]:
    from ledger.sql_target import target_engine

    engine = target_engine(url)
    database = engine.url.database
    twin = f"{database}_baseline"
    tables: dict[str, int] = {}
    seconds = 0.0
    raw = engine.raw_connection()
    try:
        reader, writer = raw.cursor(), raw.cursor()
        writer.execute(f"DROP DATABASE IF EXISTS `{twin}`")
        writer.execute(f"CREATE DATABASE `{twin}` CHARACTER SET utf8mb4")
        reader.execute("SHOW TABLES")
        names = [row[0] for row in reader.fetchall() if row[0] != MARKER_TABLE]
        for name in names:
            writer.execute(f"CREATE TABLE `{twin}`.`{name}` LIKE `{database}`.`{name}`")
        writer.execute("SET foreign_key_checks = 0")  # tables are copied in name order
        for name in names:
            reader.execute(f"SELECT * FROM `{database}`.`{name}`")
            marks = ", ".join(["%s"] * len(reader.description))
            while rows := reader.fetchmany(CHUNK):
                started = time.perf_counter()
                writer.executemany(f"INSERT INTO `{twin}`.`{name}` VALUES ({marks})", rows)
                seconds += time.perf_counter() - started
                tables[name] = tables.get(name, 0) + len(rows)
        started = time.perf_counter()
        raw.commit()
        seconds += time.perf_counter() - started
        writer.execute(f"DROP DATABASE `{twin}`")
    finally:
        raw.close()
        engine.dispose()
    return {"rows": sum(tables.values()), "seconds": round(seconds, 4), "tables": tables}


def mongo(uri: str, database: str) -> dict[str, Any]:
    import pymongo
    from bson.raw_bson import RawBSONDocument

    client = pymongo.MongoClient(uri, document_class=RawBSONDocument)
    source, twin = client[database], client[f"{database}_baseline"]
    client.drop_database(twin.name)
    tables: dict[str, int] = {}
    seconds = 0.0
    for name in sorted(source.list_collection_names()):
        batch: list[Any] = []
        for document in source[name].find():
            batch.append(pymongo.InsertOne(document))
            if len(batch) == CHUNK:
                seconds += _bulk(twin[name], batch)
                tables[name] = tables.get(name, 0) + len(batch)
                batch = []
        if batch:
            seconds += _bulk(twin[name], batch)
            tables[name] = tables.get(name, 0) + len(batch)
    client.drop_database(twin.name)
    client.close()
    return {"rows": sum(tables.values()), "seconds": round(seconds, 4), "tables": tables}


def _bulk(collection, operations: list) -> float:
    started = time.perf_counter()
    collection.bulk_write(operations, ordered=False)
    return time.perf_counter() - started


def files(source_dir: str, twin_dir: str) -> dict[str, Any]:
    source, twin = Path(source_dir), Path(twin_dir)
    paths = sorted(path for path in source.rglob("*") if path.is_file())
    seconds, written = 0.0, 0
    for path in paths:
        data = path.read_bytes()  # read untimed, file by file: memory stays flat
        target = twin / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        with open(target, "wb") as file:
            file.write(data)
        seconds += time.perf_counter() - started
        written += len(data)
    return {
        "rows": len(paths),
        "seconds": round(seconds, 4),
        "tables": {"files": len(paths)},
        "bytes": written,
    }


def ledger_floor(ledger_path: str, workdir: str) -> dict[str, Any]:
    from ledger.bench.extract import sqlite_floor

    return sqlite_floor(Path(ledger_path), Path(workdir))


def ledger_floor_postgres(ledger_path: str, url: str) -> dict[str, Any]:
    from ledger.bench.extract import postgres_floor

    return postgres_floor(Path(ledger_path), url)


KINDS = {
    "ledger-floor": ledger_floor,
    "ledger-floor-postgres": ledger_floor_postgres,
    "postgres": postgres,
    "sqlite": sqlite,
    "mariadb": mariadb,
    "mongo": mongo,
    "files": files,
}

if __name__ == "__main__":
    print(json.dumps(KINDS[sys.argv[1]](*sys.argv[2:])))
