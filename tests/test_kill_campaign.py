"""Kill campaign (issue 10): SIGKILL ``replay``, ``rollback`` and ``repair`` at random
moments and at every failpoint, on both ledger backends and every SQL dialect of the
``sql`` sink (SQLite, Postgres, MariaDB), then run the same command again.

After each trial the target, dumped whole, equals a clean run's; no record was written
twice by the command and its re-run; the ledger's target_state agrees with the target's
markers; and the re-run succeeded (every interrupted command is resumable by running it
again). The default suite runs one trial per verb on SQLite and one on each server dialect, at
the failpoint between the target's commit and the ledger's; ``-m stress`` runs the randomized campaign and
prints its figures (set CHATLEDGER_CAMPAIGN_REPORT=path to keep them as JSON).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from ledger import runs
from ledger.replay import replay
from ledger.schema import writes
from ledger.sink import SinkContext
from ledger.store import Ledger, normalize_url
from sinks.sql import SqlOptions, SqlSink
from tests.conftest import MARIADB_URL, POSTGRES_URL
from tests.test_replay import dump, synthetic
from tests.test_replay_crash import held, markers

POINTS = ("replay.apply", "replay.record.before", "replay.record.after")
VERBS = ("replay", "rollback", "repair")
DIALECTS = ("sqlite", "postgres", "mariadb")
BATCH = 20
ROOT = Path(__file__).resolve().parent.parent


class Targets:
    """Fresh target databases, one per trial, on one dialect."""

    def __init__(self, dialect: str, folder: Path, admin) -> None:
        self.dialect, self.folder, self.admin, self.made = dialect, folder, admin, []

    def fresh(self) -> str:
        name = f"chatledger_kill_{uuid.uuid4().hex[:10]}"
        if self.dialect == "sqlite":
            return f"sqlite:///{self.folder / (name + '.db')}"
        quote = "`" if self.dialect == "mariadb" else '"'
        with self.admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {quote}{name}{quote}"))
            conn.commit()
        self.made.append(name)
        base = (
            MARIADB_URL.rstrip("/")
            if self.dialect == "mariadb"
            else normalize_url(POSTGRES_URL).rsplit("/", 1)[0]
        )
        return f"{base}/{name}"

    def drop_all(self) -> None:
        quote = "`" if self.dialect == "mariadb" else '"'
        force = " WITH (FORCE)" if self.dialect == "postgres" else ""
        with self.admin.connect() as conn:
            for name in self.made:
                conn.execute(text(f"DROP DATABASE IF EXISTS {quote}{name}{quote}{force}"))
            conn.commit()


@pytest.fixture(params=DIALECTS)
def targets(request, tmp_path):
    admin = None
    if request.param != "sqlite":
        admin = request.getfixturevalue(f"{request.param}_admin")
        if request.param == "postgres":
            admin = admin.execution_options(isolation_level="AUTOCOMMIT")
    made = Targets(request.param, tmp_path, admin)
    yield made
    if admin is not None:
        made.drop_all()


@dataclass
class Figures:
    trials: int = 0
    killed: int = 0
    resumable: int = 0
    duplicates: int = 0
    losses: int = 0
    by: Counter = field(default_factory=Counter)

    def add(self, other: Figures) -> None:
        for name in ("trials", "killed", "resumable", "duplicates", "losses"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.by.update(other.by)


def sql_sink(ledger, url, target):
    return SqlSink(SqlOptions(url=url), SinkContext(target, ledger.blobs))


def damage(url: str) -> None:
    """What repair resync mends: a third of the messages gone, another third edited."""
    engine = create_engine(normalize_url(url))
    with engine.begin() as conn:
        keys = conn.execute(text("SELECT " + _q(engine, "key") + " FROM messages ORDER BY 1")).scalars().all()
        gone, edited = keys[0::3], keys[1::3]
        for key in gone:
            conn.execute(text("DELETE FROM messages WHERE " + _q(engine, "key") + " = :k"), {"k": key})
        for key in edited:
            conn.execute(
                text("UPDATE messages SET text = 'edited' WHERE " + _q(engine, "key") + " = :k"), {"k": key}
            )
    engine.dispose()


def _q(engine, name: str) -> str:
    return engine.dialect.identifier_preparer.quote(name)


def drive(ledger_url, blobs, verb, target, url, run_id, *, failpoint=None, kill_after=None):
    command = [
        sys.executable,
        "-m",
        "tests.kill_driver",
        ledger_url,
        str(blobs),
        verb,
        target,
        url,
        str(BATCH),
        str(run_id),
    ]
    env = dict(os.environ)
    env.pop("CHATLEDGER_FAILPOINTS", None)
    if failpoint:
        env["CHATLEDGER_FAILPOINTS"] = failpoint
    child = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    if kill_after is not None:
        try:
            child.wait(kill_after)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
    _, stderr = child.communicate(timeout=300)
    return child.returncode, stderr


def writes_per_key(ledger, run_ids) -> Counter:
    with ledger.read() as conn:
        rows = conn.execute(select(writes.c.key).where(writes.c.run_id.in_(run_ids)))
        return Counter(row.key for row in rows)


def trial(ledger, ledger_url, blobs, targets, verb, clean, chance, index, plan) -> Figures:
    figures = Figures(trials=1)
    target, url = f"k{index}", targets.fresh()
    run_id = 0
    if verb in ("rollback", "repair"):
        run_id = replay(ledger, sql_sink(ledger, url, target), ["syn"]).run_id
        if verb == "repair":
            damage(url)
    expected = {table: [] for table in clean} if verb == "rollback" else clean
    before = {run.id for run in runs.list_runs(ledger, target=target, limit=1000)}
    kind, how = plan(chance)
    failpoint, kill_after = (how, None) if kind == "failpoint" else (None, how)
    code, stderr = drive(
        ledger_url, blobs, verb, target, url, run_id, failpoint=failpoint, kill_after=kill_after
    )
    assert code in (0, -signal.SIGKILL), stderr
    figures.killed += code == -signal.SIGKILL
    done_before = verb == "rollback" and any(
        run.status == "succeeded" and run.parent_run_id == run_id
        for run in runs.list_runs(ledger, target=target, command="rollback", limit=1000)
    )
    again, stderr = drive(ledger_url, blobs, verb, target, url, run_id)
    if done_before:  # it finished before the kill landed: the re-run refuses by name
        finished = again != 0 and "already rolled back by run" in stderr
        figures.resumable += finished
        again = 0 if finished else again
    else:
        figures.resumable += again == 0
    ours = [run.id for run in runs.list_runs(ledger, target=target, limit=1000) if run.id not in before]
    figures.duplicates += sum(1 for count in writes_per_key(ledger, ours).values() if count > 1)
    if dump(url) != expected or held(ledger, target) != markers(url, target):
        figures.losses += 1
    figures.by[f"{verb} {kind} {'killed' if code else 'finished'}"] += 1
    assert again == 0, f"{verb} trial {index} ({kind} {how}): the re-run failed: {stderr[-2000:]}"
    return figures


def campaign(ledger_url, tmp_path, targets, verbs, trials, plan, seed) -> Figures:
    blobs = tmp_path / "blobs"
    ledger = Ledger.open(ledger_url, blob_dir=blobs)
    synthetic(ledger, users=3)
    clean_url = targets.fresh()
    replay(ledger, sql_sink(ledger, clean_url, "clean"), ["syn"])
    clean = dump(clean_url)
    chance = random.Random(seed)
    figures = Figures()
    index = 0
    for verb in verbs:
        for _ in range(trials):
            figures.add(trial(ledger, ledger_url, blobs, targets, verb, clean, chance, index, plan))
            index += 1
    ledger.close()
    return figures


def between_commits(_chance):
    return "failpoint", "replay.record.before=2:kill"


def random_moment(chance):
    if chance.random() < 0.6:
        return "failpoint", f"{chance.choice(POINTS)}={chance.randint(1, 8)}:kill"
    return "timer", round(chance.uniform(0.3, 1.0), 2)


def check(figures: Figures) -> None:
    assert figures.duplicates == 0, figures
    assert figures.losses == 0, figures
    assert figures.resumable == figures.trials, figures


#: the default suite's share: every verb on SQLite, one each on the server dialects
QUICK = {"sqlite": VERBS, "postgres": ("rollback",), "mariadb": ("repair",)}


def test_kill_each_verb_between_the_target_commit_and_the_ledger_commit(tmp_path, targets):
    ledger_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    figures = campaign(ledger_url, tmp_path, targets, QUICK[targets.dialect], 1, between_commits, seed=1)
    check(figures)
    assert figures.killed == figures.trials


@pytest.mark.stress
def test_kill_campaign(ledger_url, tmp_path, targets):
    trials = int(os.environ.get("CHATLEDGER_CAMPAIGN_TRIALS", "6"))
    started = time.monotonic()
    figures = campaign(ledger_url, tmp_path, targets, VERBS, trials, random_moment, seed=2026)
    backend = "postgres" if ledger_url.startswith("postgres") else "sqlite"
    line = {
        "ledger": backend, "target": targets.dialect, "trials": figures.trials, "killed": figures.killed,
        "duplicates": figures.duplicates, "losses": figures.losses, "resumable": figures.resumable,
        "seconds": round(time.monotonic() - started, 1), "by": dict(figures.by),
    }  # fmt: skip
    print(json.dumps(line))
    report = os.environ.get("CHATLEDGER_CAMPAIGN_REPORT")
    if report:
        with open(report, "a") as handle:
            handle.write(json.dumps(line) + "\n")
    check(figures)
