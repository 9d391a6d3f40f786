"""What every benchmark shares: one run's figures, each step in its own process.

A run is a list of figures (rows of one table): a value with its unit, the figure it is
compared with (its baseline, measured in the same run on the same machine) and the ratio
to it, the peak RSS of the process that produced it, and the 1-minute load average when
it ended. Only ratios within one run mean something: the machine is shared.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from ledger.store import normalize_url

#: The synthetic stream every benchmark extracts: about 8.4 messages per conversation,
#: measured on seed 1 (the source's defaults otherwise).
CONVERSATIONS_PER_USER = 10
MESSAGES_PER_USER = 84


def synthetic_users(messages: int) -> int:
    """Synthetic users holding about ``messages`` messages."""
    return max(1, messages // MESSAGES_PER_USER)


def synthetic_args(users: int) -> list[str]:
    """The synthetic source's options for ``users`` users."""
    return ["--users", str(users), "--seed", "1", "--conversations-per-user", str(CONVERSATIONS_PER_USER)]


@dataclass
class Figure:
    figure: str
    value: float
    unit: str
    baseline: str | None = None  # the figure this one is compared with
    ratio: float | None = None  # value / the baseline's value
    peak_rss_mb: float | None = None
    load: float | None = None  # 1-minute load average when the step ended
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Step:
    """One finished child process: wall time, its peak RSS and CPU seconds, what it printed."""

    seconds: float
    peak_rss_mb: float
    load: float
    stdout: str
    cpu_seconds: float  # user + system, its own and its waited-for children's (``wait4``)


class StepFailed(RuntimeError):
    pass


def run_step(args: list[str], cwd: Path, *, ok: tuple[int, ...] = (0,)) -> Step:
    """Run a child process to its end; its own peak RSS and CPU time come from ``wait4``."""
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        started = time.perf_counter()
        child = subprocess.Popen(args, cwd=cwd, stdout=stdout, stderr=stderr, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        if child.returncode not in ok:
            raise StepFailed(f"{' '.join(args[:6])} … exited {child.returncode}: {stderr.read()[-2000:]}")
        cpu = round(usage.ru_utime + usage.ru_stime, 2)
        return Step(
            round(seconds, 2), round(usage.ru_maxrss / 1024, 1), os.getloadavg()[0], stdout.read(), cpu
        )


def chatledger(ledger_url: str, *args: str, cwd: Path, ok: tuple[int, ...] = (0,)) -> tuple[Step, dict]:
    """One ``chatledger … --no-progress --json`` process; its step and its JSON."""
    step = run_step(
        [sys.executable, "-m", "ledger", "--ledger", ledger_url, *args, "--no-progress", "--json"], cwd, ok=ok
    )
    return step, json.loads(step.stdout)


def python_step(module: str, *args: str, cwd: Path) -> tuple[Step, dict]:
    """``python -m module args`` printing one JSON object (a baseline writer)."""
    step = run_step([sys.executable, "-m", module, *args], cwd)
    return step, json.loads(step.stdout)


def server_database(server: str, name: str, *, mysql: bool = False) -> tuple[str, Callable[[], None]]:
    """A fresh database on a server: its URL and how to drop it."""
    url = normalize_url(server)
    if mysql:
        url = "mysql+pymysql://" + url.split("://", 1)[1]
    admin = create_engine(
        url, isolation_level="AUTOCOMMIT", **({"connect_args": {"charset": "utf8mb4"}} if mysql else {})
    )
    quoted = f"`{name}`" if mysql else f'"{name}"'
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {quoted}{'' if mysql else ' WITH (FORCE)'}"))
        conn.execute(text(f"CREATE DATABASE {quoted}" + (" CHARACTER SET utf8mb4" if mysql else "")))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {quoted}{'' if mysql else ' WITH (FORCE)'}"))
        admin.dispose()

    base = server.rstrip("/")
    database_url = (base.rsplit("/", 1)[0] if not mysql else base) + f"/{name}"
    return database_url, drop


def ratio(value: float, baseline: float) -> float:
    return round(value / max(baseline, 1e-3), 2)


def machine(postgres_url: str | None = None, mariadb_url: str | None = None) -> dict[str, Any]:
    """The facts a reader needs to compare runs: cores, memory, servers, load."""
    facts: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "load_at_start": [round(value, 2) for value in os.getloadavg()],
    }
    if postgres_url:
        facts["postgres"] = _server_version(postgres_url, "SHOW server_version")
    if mariadb_url:
        facts["mariadb"] = _server_version(mariadb_url, "SELECT VERSION()")
    return facts


def _server_version(url: str, query: str) -> str | None:
    from ledger.sql_target import target_engine

    try:
        engine = target_engine(url)
        with engine.connect() as conn:
            return str(conn.scalar(text(query)))
    except Exception:  # a server that is down has no version; the run says which were used
        return None
    finally:
        engine.dispose()


def results(name: str, facts: dict[str, Any], figures: list[Figure], **more: Any) -> dict[str, Any]:
    facts["load_at_end"] = [round(value, 2) for value in os.getloadavg()]
    return {"benchmark": name, "machine": facts, **more, "figures": [asdict(figure) for figure in figures]}


def scratch_dir(keep: Path | None) -> tempfile.TemporaryDirectory | None:
    """A temporary folder, or None when the caller keeps its own (``--workdir``)."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        return None
    return tempfile.TemporaryDirectory(prefix="chatledger-bench-")


def empty_folder(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
