"""``chatledger bench replay``: every sink against the fastest plain write of its own rows.

One synthetic extraction (a SQLite ledger, reused across runs with ``workdir``) is
replayed into each target, each replay in its own ``chatledger`` process into a fresh
database, folder or file; then the same replay again (a no-op); then verify, reading the
whole target back (records/s); then a baseline process
writes the rows the replay left in the target again, the plain way (``baselines``:
COPY on Postgres, executemany on SQLite and MariaDB, bulk_write on MongoDB, plain file
writes for folders and files). The figure is replay time over baseline time; the no-op
is compared with the first replay.

SQL targets replay ``messages``; document and HTTP targets (MongoDB, LangGraph) the
smaller ``document_messages`` extraction. Targets needing a service the run was not
given (MongoDB, an Onyx database with its API) are listed as not run, with the reason.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from ledger.bench.figures import (
    Figure,
    StepFailed,
    chatledger,
    empty_folder,
    machine,
    python_step,
    ratio,
    results,
    scratch_dir,
    server_database,
    synthetic_args,
    synthetic_users,
)

STREAM = "bench"


@dataclass
class Services:
    """Where the targets live. Postgres and MariaDB are server URLs (no database: the
    run makes its own); ``onyx`` is an Onyx database with its API (``db_url``,
    ``api_base``, ``api_key``), written into as it is; ``mongo`` a MongoDB URL."""

    postgres: str | None = "postgresql://postgres@127.0.0.1:5432/postgres"
    mariadb: str | None = "mysql://root@127.0.0.1:3306/"
    mongo: str | None = None
    onyx: dict[str, str] | None = None
    database_prefix: str = "chatledger_bench"


@dataclass
class Target:
    name: str  # e.g. "laravel-mariadb"
    sink: str
    documents: bool  # replays the smaller (document/HTTP) extraction
    needs: str | None  # the service it needs, a Services field
    baseline: str  # a ledger.bench.baselines kind
    setup: Callable[[Services, Path, str], Any]  # → a context manager giving (options, baseline args)


BASELINE_LABEL = {
    "postgres": "COPY",
    "sqlite": "executemany",
    "mariadb": "executemany",
    "mongo": "bulk_write",
    "files": "file write",
}


@contextmanager
def _postgres(services: Services, workdir: Path, name: str, option: str, *extra: str) -> Iterator[tuple]:
    url, drop = server_database(services.postgres, name)
    try:
        yield [option, url, *extra], [url, str(workdir / "dumps")]
    finally:
        drop()


@contextmanager
def _mariadb(services: Services, workdir: Path, name: str) -> Iterator[tuple]:
    url, drop = server_database(services.mariadb, name, mysql=True)
    try:
        yield ["--url", url, "--create-tables"], [url]
    finally:
        drop()


@contextmanager
def _sqlite(workdir: Path, name: str, option: str, *extra: str) -> Iterator[tuple]:
    path = workdir / f"{name}.db"
    for leftover in workdir.glob(f"{name}.db*"):
        leftover.unlink()
    try:
        yield (
            [option, f"sqlite:///{path}" if option == "--url" else str(path), *extra],
            [
                str(path),
                str(workdir / f"{name}-baseline.db"),
            ],
        )
    finally:
        for leftover in workdir.glob(f"{name}*.db*"):
            leftover.unlink()


@contextmanager
def _folder(workdir: Path, name: str, option: str, file: str | None = None) -> Iterator[tuple]:
    folder = empty_folder(workdir / name)
    twin = empty_folder(workdir / f"{name}-baseline")
    try:
        yield [option, str(folder / file) if file else str(folder)], [str(folder), str(twin)]
    finally:
        empty_folder(folder).rmdir()
        empty_folder(twin).rmdir()


@contextmanager
def _mongo(services: Services, workdir: Path, name: str) -> Iterator[tuple]:
    import pymongo

    client = pymongo.MongoClient(services.mongo, serverSelectionTimeoutMS=5000)
    client.drop_database(name)
    try:
        yield ["--uri", services.mongo, "--database", name, "--create-missing-users"], [services.mongo, name]
    finally:
        client.drop_database(name)
        client.close()


@contextmanager
def _onyx(services: Services, workdir: Path, name: str) -> Iterator[tuple]:
    onyx = services.onyx
    yield (
        ["--db-url", onyx["db_url"], "--api-base", onyx["api_base"], "--api-key", onyx["api_key"],
         "--credentials-file", str(workdir / f"{name}-credentials.jsonl")],
        [onyx["db_url"], str(workdir / "dumps")],
    )  # fmt: skip


TARGETS = [
    Target("sql-postgres", "sql", False, "postgres", "postgres",
           lambda s, w, n: _postgres(s, w, n, "--url")),
    Target("sql-sqlite", "sql", False, None, "sqlite", lambda s, w, n: _sqlite(w, n, "--url")),
    Target("onyx-postgres", "onyx", False, "onyx", "postgres", _onyx),
    Target("laravel-postgres", "laravel", False, "postgres", "postgres",
           lambda s, w, n: _postgres(s, w, n, "--url", "--create-tables")),
    Target("laravel-mariadb", "laravel", False, "mariadb", "mariadb", _mariadb),
    Target("laravel-sqlite", "laravel", False, None, "sqlite",
           lambda s, w, n: _sqlite(w, n, "--url", "--create-tables")),
    Target("cherry-v2-sqlite", "cherry-v2", False, None, "sqlite", lambda s, w, n: _sqlite(w, n, "--path")),
    Target("langgraph-postgres", "langgraph-postgres", False, "postgres", "postgres",
           lambda s, w, n: _postgres(s, w, n, "--db-url")),
    Target("bundle", "bundle", False, None, "files", lambda s, w, n: _folder(w, n, "--path")),
    Target("mongo-toolkit", "mongo-toolkit", True, "mongo", "mongo", _mongo),
    Target("langgraph-json", "langgraph-json", True, None, "files",
           lambda s, w, n: _folder(w, n, "--path", "export.json")),
]  # fmt: skip
TARGET_NAMES = [target.name for target in TARGETS]


def _ledger(workdir: Path, messages: int, echo) -> tuple[str, dict[str, Any]]:
    """A SQLite ledger holding about ``messages`` synthetic messages, extracted once per
    size into ``workdir`` and reused."""
    users = synthetic_users(messages)
    path = workdir / f"ledger-{users}u.db"
    url = f"sqlite:///{path}"
    args = ["extract", "synthetic", "--name", STREAM, *synthetic_args(users)]
    echo(f"extract {users:,} synthetic users into {path.name} (reused when done before) …")
    _, done = chatledger(url, *args, cwd=workdir)
    if not done["stats"]["events"] and not (workdir / f"{path.name}.done").exists():
        raise StepFailed(f"{path} holds another extraction; remove it")
    (workdir / f"{path.name}.done").touch()
    engine = create_engine(url)
    with engine.connect() as conn:  # what the ledger holds (a reused one was not read again)
        counts = dict(
            conn.execute(text("SELECT kind, count(*) FROM heads WHERE NOT deleted GROUP BY kind")).all()
        )
    engine.dispose()
    return url, {"users": users, "messages": counts.get("message", 0), "records": sum(counts.values())}


def _forget(ledger_url: str, target: str) -> None:
    """Drop what the scratch ledger remembers of a bench target, so the reused ledger
    does not grow run after run."""
    engine = create_engine(ledger_url)
    with engine.begin() as conn:
        for table in ("target_state", "writes", "targets"):
            column = "name" if table == "targets" else "target"
            conn.execute(text(f"DELETE FROM {table} WHERE {column} = :target"), {"target": target})
        conn.execute(text("DELETE FROM lookups WHERE key LIKE :prefix"), {"prefix": f"{target}\x1f%"})
    engine.dispose()


def _one_target(
    target: Target, services: Services, workdir: Path, ledger_url: str, scale: dict, echo
) -> list[Figure]:
    name = f"{services.database_prefix}_{target.name.replace('-', '_')}_{os.getpid()}"
    bench_target = f"bench-{target.name}-{os.getpid()}"
    label = f"{target.name} ({scale['messages']:,} messages)"
    with target.setup(services, workdir, name) as (options, baseline_args):
        replay = ["replay", target.sink, "--name", bench_target, *options]
        try:
            echo(f"replay {label} …")
            first, done = chatledger(ledger_url, *replay, cwd=workdir, ok=(0, 4))
            echo(f"replay {target.name} again (no-op) …")
            noop, again = chatledger(ledger_url, *replay, cwd=workdir, ok=(0, 4))
            echo(f"verify {target.name} (the whole target read back) …")
            checked_step, checked = chatledger(
                ledger_url, "verify", target.sink, "--name", bench_target, *options, cwd=workdir, ok=(0, 3)
            )
            echo(f"{BASELINE_LABEL[target.baseline]} baseline of the rows {target.name} wrote …")
            base_step, base = python_step(
                "ledger.bench.baselines", target.baseline, *baseline_args, cwd=workdir
            )
        finally:
            _forget(ledger_url, bench_target)
    stats = done["stats"]
    seconds = stats["seconds"]
    baseline_name = f"{BASELINE_LABEL[target.baseline]} {target.name}"
    detail = {"records_written": stats["written"], "records_skipped": stats["skipped"],
              "rejected_units": stats["rejected_units"], "status": done.get("status"),
              "process_seconds": first.seconds, "messages": scale["messages"]}  # fmt: skip
    if target.baseline == "files":
        detail["bytes"] = base.get("bytes")
    return [
        Figure(f"replay {target.name}", seconds, "s", baseline_name, ratio(seconds, base["seconds"]),
               first.peak_rss_mb, first.load, detail),
        Figure(f"no-op replay {target.name}", again["stats"]["seconds"], "s", f"replay {target.name}",
               ratio(again["stats"]["seconds"], seconds), noop.peak_rss_mb, noop.load,
               {"records_written": again["stats"]["written"]}),
        _verify_figure(target.name, checked, checked_step),
        Figure(baseline_name, base["seconds"], "s", None, None, base_step.peak_rss_mb, base_step.load,
               {"rows": base["rows"], "tables": base["tables"]}),
    ]  # fmt: skip


def _verify_figure(name: str, checked: dict[str, Any], step) -> Figure:
    """Verify's units read back and compared per second (a figure of its own: it has no
    plain twin). A unit is what the sink writes as one: a record for sql, a conversation
    with its members for most others."""
    units = sum(checked[state] for state in ("ok", "drifted", "missing", "unexpected"))
    return Figure(
        f"verify {name}", round(units / max(checked["seconds"], 1e-3)), "units/s", None, None,
        step.peak_rss_mb, step.load,
        {"units": units, "seconds": checked["seconds"], "matches": checked["matches"]},
    )  # fmt: skip


def replay_benchmark(
    messages: int,
    *,
    targets: list[str] | None = None,
    document_messages: int | None = None,
    services: Services | None = None,
    workdir: Path | None = None,
    echo: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Replay synthetic messages into each named target (default: all) and compare each
    with its baseline; figures of one run (see ``ledger.bench.figures``)."""
    services = services or Services()
    chosen = [target for target in TARGETS if targets is None or target.name in targets]
    unknown = set(targets or ()) - set(TARGET_NAMES)
    if unknown:
        raise ValueError(f"unknown bench targets {sorted(unknown)} (known: {', '.join(TARGET_NAMES)})")
    document_messages = document_messages or max(1, messages // 10)
    facts = machine(services.postgres, services.mariadb)
    figures: list[Figure] = []
    not_run: dict[str, str] = {}
    scratch = scratch_dir(workdir)
    root = workdir or Path(scratch.name)
    try:
        ledgers: dict[bool, tuple[str, dict]] = {}
        for target in chosen:
            if target.needs and getattr(services, target.needs) is None:
                not_run[target.name] = f"needs a {target.needs} service"
                continue
            if target.documents not in ledgers:
                ledgers[target.documents] = _ledger(
                    root, document_messages if target.documents else messages, echo
                )
            ledger_url, scale = ledgers[target.documents]
            measured = _one_target(target, services, root, ledger_url, scale, echo)
            figures += measured
            if workdir is not None:  # kept as they come: a long run stopped early keeps its figures
                with open(workdir / "figures.jsonl", "a", encoding="utf-8") as kept:
                    for figure in measured:
                        kept.write(json.dumps({**asdict(figure), "at": facts["date"]}, default=str) + "\n")
    finally:
        if scratch is not None:
            scratch.cleanup()
    scales = {("documents" if documents else "sql"): scale for documents, (_, scale) in ledgers.items()}
    return results("replay", facts, figures, scale=scales, not_run=not_run)
