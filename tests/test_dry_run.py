"""Dry runs that tell the truth: a first migrate's plan counts what the source holds, a
re-run's what it changed, and a target that cannot be reached (or written) fails the
dry run, naming it without its password."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import create_engine, func, select, text

from ledger import api
from ledger import config as configuration
from ledger.extract import ExtractSettings
from ledger.replay import ReplaySettings
from ledger.schema import events, heads
from ledger.sink import TargetUnreachable
from ledger.store import Ledger, normalize_url
from tests.conftest import run_cli

CONFIG = """
[sources.syn]
type = "synthetic"
seed = 7
users = 5
mutate = {mutate}

[targets.out]
type = "sql"
url = "sqlite:///{target}"
"""


def write_config(tmp_path, mutate: float = 0.0) -> configuration.Config:
    path = tmp_path / "chatledger.toml"
    path.write_text(CONFIG.format(mutate=mutate, target=tmp_path / "target.db"))
    return configuration.load_config(path)


def cli_json(*args, cwd, code=0):
    done = run_cli(*args, "--json", cwd=cwd)
    assert done.returncode == code, done.stderr
    return json.loads(done.stdout)


def plan_of(entries: list[dict]) -> dict[str, dict[str, int]]:
    return {entry["kind"]: entry for entry in entries}


def keys_of(value) -> set[str]:
    """Every key of every object inside a JSON value."""
    if isinstance(value, dict):
        return set(value) | {key for item in value.values() for key in keys_of(item)}
    if isinstance(value, list):
        return {key for item in value for key in keys_of(item)}
    return set()


def assert_plain_keys(document) -> None:
    odd = sorted(key for key in keys_of(document) if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key))
    assert not odd, odd


def test_a_first_migrate_dry_run_plans_every_record(tmp_path):
    write_config(tmp_path)
    planned = cli_json("migrate", "syn", "out", "--dry-run", cwd=tmp_path)
    new = {kind: counts["new"] for kind, counts in planned["extract"]["stats"]["kinds"].items()}
    plan = plan_of(planned["replay"]["stats"]["plan"])
    assert {kind: entry["insert"] for kind, entry in plan.items()} == new
    assert min(new.values()) > 0 and plan["message"]["tables"] == ["messages"]
    assert planned["replay"]["stats"]["check"]["reachable"] is True
    assert not (tmp_path / "chatledger.db").exists() and not (tmp_path / "target.db").exists()
    assert_plain_keys(planned)

    piped = run_cli("migrate", "syn", "out", "--dry-run", cwd=tmp_path)
    assert piped.returncode == 0, piped.stderr
    rows = {line.split()[0]: line.split()[1:] for line in piped.stdout.splitlines() if line.strip()}
    assert rows["message"][:2] == [f"{new['message']:,}", "0"]  # plan: insert, update
    assert "message → messages" in piped.stdout and "plan (nothing written)" in piped.stdout
    assert "target out: reachable, with the rights a run needs" in piped.stdout
    assert "the plan counts what the source holds now" in piped.stdout
    assert f"events a run would append: {sum(new.values()):,}" in piped.stdout

    migrated = cli_json("migrate", "syn", "out", "--no-progress", cwd=tmp_path)
    assert_plain_keys(migrated)
    inserted = {entry["kind"]: entry["inserted"] for entry in migrated["replay"]["stats"]["tables"]}
    assert inserted == new  # the plan was the run


@pytest.mark.skipif(shutil.which("script") is None, reason="needs script(1) for a pseudo-terminal")
def test_the_dry_run_plan_on_a_terminal(tmp_path):
    write_config(tmp_path)
    command = f"cd {tmp_path} && COLUMNS=80 {sys.executable} -m ledger migrate syn out --dry-run"
    done = subprocess.run(
        ["script", "-qec", command, "/dev/null"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout
    assert "plan (nothing written)" in done.stdout and "message → messages" in done.stdout
    assert "extract syn" in done.stdout  # the progress bar drew on the terminal
    assert not (tmp_path / "chatledger.db").exists()


def test_a_re_run_plans_what_the_source_changed(ledger, tmp_path):
    api.migrate(ledger, write_config(tmp_path), "syn", "out")
    with ledger.read() as conn:
        before = conn.scalar(select(func.count()).select_from(events))
    config = write_config(tmp_path, mutate=0.4)
    dry = ReplaySettings(dry_run=True, propagate_deletes=True)
    planned = api.migrate(ledger, config, "syn", "out", replay_settings=dry)
    with ledger.read() as conn:
        assert conn.scalar(select(func.count()).select_from(events)) == before  # rolled back
        assert conn.scalar(select(func.count()).select_from(heads).where(heads.c.last_run == 0)) == 0
    assert planned.extract.stats["kinds"]["conversation"]["changed"] > 0

    done = api.migrate(ledger, config, "syn", "out", replay_settings=ReplaySettings(propagate_deletes=True))
    columns = {"insert": "inserted", "update": "updated", "delete": "deleted"}
    plan = planned.replay.stats["plan"]
    wrote = {
        label: {action: counts[column] for action, column in columns.items()}
        for label, counts in done.replay.stats["tables"].items()
    }
    assert {label: {action: plan[label][action] for action in columns} for label in plan} == wrote
    assert sum(entry["update"] + entry["delete"] for entry in plan.values()) > 0


# -- checks of the target ----------------------------------------------------------------


def closed_port() -> int:
    """A port nobody listens on: bound, then released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    "target",
    [
        ["sql", "--url", "postgresql://ana:s3cret-pw@127.0.0.1:{port}/app"],
        ["sql", "--url", "mysql://root:s3cret-pw@127.0.0.1:{port}/app"],
        ["mongo-toolkit", "--uri", "mongodb://ana:s3cret-pw@127.0.0.1:{port}/", "--database", "app"],
    ],
    ids=["postgres", "mariadb", "mongo"],
)
def test_a_dry_run_fails_on_a_target_it_cannot_reach(tmp_path, target):
    port = closed_port()
    flags = [value.format(port=port) for value in target]
    done = run_cli("replay", *flags, "--name", "dest", "--stream", "syn", "--dry-run", cwd=tmp_path)
    assert done.returncode == 1, done.stdout
    assert f"target 'dest' ({target[0]} " in done.stderr and f"127.0.0.1:{port}" in done.stderr
    assert "cannot reach it" in done.stderr and "s3cret-pw" not in done.stderr + done.stdout
    assert not (tmp_path / "chatledger.db").exists()


def test_migrate_dry_run_checks_the_target_before_reading(tmp_path):
    config = CONFIG.format(mutate=0, target="x").replace('"sqlite:///x"', '"env:TARGET_URL"')
    (tmp_path / "chatledger.toml").write_text(config)
    url = f"postgresql://ana:s3cret-pw@127.0.0.1:{closed_port()}/app"
    done = run_cli("migrate", "syn", "out", "--dry-run", cwd=tmp_path, env={"TARGET_URL": url})
    assert done.returncode == 1 and "target 'out'" in done.stderr and "s3cret-pw" not in done.stderr
    assert "kind" not in done.stdout  # failed before the extraction's report


@pytest.fixture
def reader_role(postgres_database, postgres_admin):
    """A login role that may connect and read the database, but neither create in its
    schema nor write its tables."""
    role = f"dryrun_reader_{uuid.uuid4().hex[:8]}"
    with postgres_admin.connect() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN"))
    engine = create_engine(normalize_url(postgres_database), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("REVOKE CREATE ON SCHEMA public FROM PUBLIC"))
        conn.execute(text(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {role}"))
    yield postgres_database.replace("postgres@", f"{role}@"), postgres_database
    with engine.connect() as conn:
        conn.execute(text(f"DROP OWNED BY {role}"))
    engine.dispose()
    with postgres_admin.connect() as conn:
        conn.execute(text(f"DROP ROLE {role}"))


def test_a_dry_run_fails_without_the_rights_a_run_needs(tmp_path, reader_role):
    as_reader, as_owner = reader_role
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    config = write_config(tmp_path)
    api.extract_stream(ledger, config, "syn", settings=ExtractSettings(parallel=False))
    dry = ReplaySettings(dry_run=True)

    def plan_as(url: str):
        return api.replay_target(
            ledger, config, "sql", ["--url", url], target_name="pg", streams=["syn"], settings=dry
        )

    with pytest.raises(TargetUnreachable, match=r"public\.users is missing and there is no CREATE right"):
        plan_as(as_reader)
    api.replay_target(ledger, config, "sql", ["--url", as_owner], target_name="pg", streams=["syn"])
    with pytest.raises(TargetUnreachable, match=r"no INSERT, UPDATE, DELETE right on table public\.users"):
        plan_as(as_reader)
    assert plan_as(as_owner).stats["check"]["reachable"] is True
    ledger.close()
