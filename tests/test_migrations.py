"""The ledger's schema is owned by Alembic: created, upgraded, refused when newer."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from ledger import migrations
from ledger.errors import LedgerVersionError
from ledger.schema import metadata
from ledger.store import Ledger, make_engine, normalize_url
from tests.conftest import run_cli

TABLES = {
    "runs", "events", "payloads", "heads", "checkpoints", "targets",
    "target_state", "writes", "rejects", "locks", "lookups", "alembic_version",
}  # fmt: skip


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    return request.getfixturevalue("postgres_database")


def test_an_empty_database_is_created_at_head(empty_url):
    ledger = Ledger.open(empty_url, blob_dir="/tmp/unused-blobs")
    assert ledger.revisions == (None, migrations.head_revision())
    assert set(inspect(ledger.engine).get_table_names()) == TABLES
    ledger.close()
    again = Ledger.open(empty_url, blob_dir="/tmp/unused-blobs")
    assert again.revisions == (migrations.head_revision(), migrations.head_revision())


def test_the_head_is_the_newest_file_each_named_after_its_revision():
    """ensure_current finds the head without Alembic (start-up): by file name."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrations._config())
    files = migrations.revision_files()
    chain = [None, *(path.stem for path in files)]
    for path, down in zip(files, chain, strict=False):
        revision = script.get_revision(path.stem)  # raises for a file not named after its revision
        assert (revision.path, revision.down_revision) == (str(path), down), path.name
    assert migrations.head_revision() == script.get_current_head() == files[-1].stem


def test_the_migrations_match_the_tables_the_code_uses(empty_url):
    ledger = Ledger.open(empty_url, blob_dir="/tmp/unused-blobs")
    with ledger.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []


def test_a_newer_ledger_is_refused(empty_url, tmp_path):
    Ledger.open(empty_url, blob_dir="/tmp/unused-blobs").close()
    engine = make_engine(empty_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    with pytest.raises(LedgerVersionError, match="newer chatledger"):
        Ledger.open(empty_url, blob_dir="/tmp/unused-blobs")
    refused = run_cli("--ledger", empty_url, "status", cwd=tmp_path)
    assert refused.returncode == 1 and "9999_from_the_future" in refused.stderr


def test_downgrade_to_base_removes_everything(tmp_path):
    from alembic import command

    url = f"sqlite:///{tmp_path / 'down.db'}"
    Ledger.open(url, blob_dir=tmp_path / "b").close()
    config = migrations._config()
    engine = create_engine(normalize_url(url))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}


def test_init_reports_what_it_did(tmp_path):
    url = f"sqlite:///{tmp_path / 'init.db'}"
    first = run_cli("--ledger", url, "init", cwd=tmp_path)
    second = run_cli("--ledger", url, "init", cwd=tmp_path)
    assert "created at schema revision" in first.stdout
    assert "already at schema revision" in second.stdout


def test_an_older_ledger_is_upgraded_with_its_data(empty_url, tmp_path):
    from sqlalchemy import select

    from alembic import command
    from ledger.schema import events
    from tests.helpers import ListScope, ListSource, msg, run

    engine = make_engine(empty_url)
    config = migrations._config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001_initial")  # a ledger written by the first release
    assert "lookups" not in inspect(engine).get_table_names()
    with engine.begin() as conn:
        conn.execute(
            events.insert().values(
                run_id=1, stream="s", kind="user", key="user:1", version=1, op="put", hash="h"
            )
        )
    ledger = Ledger.open(empty_url, blob_dir=tmp_path / "blobs")
    assert ledger.revisions == ("0001_initial", migrations.head_revision())
    assert "lookups" in inspect(ledger.engine).get_table_names()
    with ledger.read() as conn:
        assert conn.execute(select(events.c.key)).scalars().all() == ["user:1"]
    run(ledger, ListSource("s", {"A": ListScope([msg("s", "c", 1)])}))  # and it works
