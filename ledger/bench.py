"""``chatledger bench extract``: extraction speed and memory, as ratios within one run.

For each ledger backend (a fresh SQLite file, a fresh Postgres database) it extracts the
same synthetic data three times, each in its own ``chatledger`` process:

1. first: everything is new;
2. no-op: unchanged, so checkpoints (scope fingerprints) let every scope be skipped;
3. no-op ``--full``: unchanged, but every record is read, hashed and compared again.

It prints records/s of the first run, the first/no-op time ratios and the peak RSS of
the writer and reader processes (as each run recorded it in its stats).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.table import Table
from sqlalchemy import create_engine, text

from ledger.store import normalize_url

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
        value for run in (out["first"], out["noop"], out["noop_full"]) for value in run["peak_rss_mb"].values()
    )
    return out


def extract_benchmark(
    messages: int, *, postgres_url: str | None, echo: Callable[[str], Any] = print
) -> dict[str, Any]:
    users = max(1, messages // MESSAGES_PER_USER)
    results: dict[str, Any] = {"users": users, "backends": {}}
    with tempfile.TemporaryDirectory(prefix="chatledger-bench-") as scratch:
        workdir = Path(scratch)
        echo(f"SQLite ledger ({users:,} users)")
        results["backends"]["sqlite"] = _series(
            f"sqlite:///{workdir / 'sqlite' / 'ledger.db'}", users, workdir, echo
        )
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


def render(results: dict[str, Any]) -> Table:
    table = Table(
        "ledger", "records", "messages", "first s", "records/s", "no-op s", "first/no-op",
        "no-op --full s", "first/--full", "peak RSS MB",
        title=f"chatledger bench extract ({results['users']:,} synthetic users)",
    )  # fmt: skip
    for name, series in results["backends"].items():
        first = series["first"]
        table.add_row(
            name,
            f"{first['records']:,}",
            f"{first['messages']:,}",
            f"{first['seconds']:,.1f}",
            f"{series['records_per_second']:,}",
            f"{series['noop']['seconds']:,.2f}",
            f"{series['noop_speedup']:,}×",
            f"{series['noop_full']['seconds']:,.1f}",
            f"{series['noop_full_speedup']:,}×",
            f"{series['peak_rss_mb']:,.0f}",
        )
    return table
