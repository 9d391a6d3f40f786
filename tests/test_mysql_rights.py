"""A dry run into MySQL/MariaDB asks ``information_schema`` for the connected user's
grants (global, per database, per table) and refuses when a run could not write or
create a table it needs, naming the table and the right, the password masked."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, text

from ledger import api
from ledger import config as configuration
from ledger.blobs import BlobStore
from ledger.extract import ExtractSettings
from ledger.sink import SinkContext, TargetUnreachable
from ledger.store import Ledger
from sinks.sql import SqlOptions, SqlSink
from tests.conftest import MARIADB_URL, run_cli
from tests.test_read_only import CONFIG

PASSWORD = "s3cret-pw"


@pytest.fixture
def account(mariadb_admin, mariadb_database):
    """A user with no rights yet on the test's database; ``grant`` gives it some, as
    root. Yields (the user's URL, grant, the database's name)."""
    user = f"opsfinish_{uuid.uuid4().hex[:8]}"
    database = mariadb_database.rsplit("/", 1)[1]

    def grant(statement: str) -> None:
        with mariadb_admin.connect() as conn:
            conn.execute(text(statement.format(user=f"'{user}'@'%'", database=f"`{database}`")))

    grant(f"CREATE USER {{user}} IDENTIFIED BY '{PASSWORD}'")
    yield f"mysql://{user}:{PASSWORD}@127.0.0.1:3306/{database}", grant, database
    grant("DROP USER {user}")


def named_like(database: str) -> str:
    """A grant's database pattern matching ``database`` (and its random siblings)."""
    return "`" + database[:-4].replace("_", "\\_") + "%`"


def check(url: str, tmp_path) -> None:
    SqlSink(SqlOptions(url=url), SinkContext("out", BlobStore(tmp_path), read_only=True)).check()


def sink_tables(url: str) -> list[str]:
    engine = create_engine(MARIADB_URL)
    try:
        with engine.connect() as conn:
            return list(conn.scalars(text(f"SHOW TABLES FROM `{url.rsplit('/', 1)[1]}`")))
    finally:
        engine.dispose()


def test_a_dry_run_names_the_rights_a_mariadb_user_lacks(tmp_path, account):
    url, grant, database = account
    (tmp_path / "chatledger.toml").write_text(CONFIG.format(url="env:TARGET_URL"))
    config = configuration.load_config(tmp_path / "chatledger.toml")
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    api.extract_stream(ledger, config, "syn", settings=ExtractSettings(parallel=False))
    grant("GRANT SELECT ON {database}.* TO {user}")
    as_user = {"TARGET_URL": url}

    refused = run_cli("replay", "out", "--dry-run", cwd=tmp_path, env=as_user)
    assert refused.returncode == 1, refused.stdout
    missing = f"table {database}.users is missing and there is no CREATE right on database {database}"
    assert missing in refused.stderr
    assert "target 'out' (sql mysql://opsfinish_" in refused.stderr and ":***@127.0.0.1" in refused.stderr
    assert PASSWORD not in refused.stderr + refused.stdout

    owner = MARIADB_URL.rstrip("/") + f"/{database}"  # root writes the tables
    api.replay_target(ledger, config, "sql", ["--url", owner], target_name="out", streams=["syn"])
    ledger.close()
    written = sink_tables(url)
    refused = run_cli("replay", "out", "--dry-run", cwd=tmp_path, env=as_user)
    assert refused.returncode == 1
    assert f"no INSERT, UPDATE, DELETE right on table {database}.users" in refused.stderr
    assert f"no INSERT, UPDATE, DELETE right on table {database}.chatledger_markers" in refused.stderr

    grant("GRANT ALL PRIVILEGES ON {database}.* TO {user}")
    planned = run_cli("replay", "out", "--dry-run", cwd=tmp_path, env=as_user)
    assert planned.returncode == 0, planned.stderr
    assert "target out: reachable, with the rights a run needs" in planned.stdout
    assert sink_tables(url) == written  # the checks wrote nothing


def test_table_grants_and_global_grants_count(tmp_path, account):
    url, grant, database = account
    grant("GRANT SELECT, INSERT, UPDATE, DELETE, CREATE ON *.* TO {user}")  # global
    check(url, tmp_path)  # every table missing, CREATE held
    grant("REVOKE ALL PRIVILEGES ON *.* FROM {user}")
    grant(f"GRANT CREATE ON {named_like(database)}.* TO {{user}}")  # a database pattern
    check(url, tmp_path)
    grant(f"REVOKE CREATE ON {named_like(database)}.* FROM {{user}}")
    grant("GRANT SELECT ON {database}.* TO {user}")  # to connect at all
    with pytest.raises(TargetUnreachable, match="no CREATE right on database"):
        check(url, tmp_path)

    grant("REVOKE SELECT ON {database}.* FROM {user}")
    grant("GRANT CREATE ON {database}.* TO {user}")
    check(url, tmp_path)
    with create_engine(MARIADB_URL.rstrip("/") + f"/{database}").connect() as conn:
        conn.execute(text("CREATE TABLE users (id INT PRIMARY KEY)"))
    with pytest.raises(
        TargetUnreachable, match=rf"no SELECT, INSERT, UPDATE, DELETE right on table {database}\.users$"
    ):
        check(url, tmp_path)
    grant("GRANT SELECT, UPDATE ON {database}.users TO {user}")  # a table grant
    with pytest.raises(TargetUnreachable, match=rf"no INSERT, DELETE right on table {database}\.users$"):
        check(url, tmp_path)
    grant("GRANT INSERT, DELETE ON {database}.users TO {user}")
    check(url, tmp_path)


def test_rights_held_through_the_users_role_count(tmp_path, account):
    """information_schema shows a user none of its role's grants: SHOW GRANTS FOR the role
    gives them (a database pattern, a table, ALL PRIVILEGES; column grants do not count)."""
    url, grant, database = account
    role = f"opsfinish_role_{uuid.uuid4().hex[:6]}"
    pattern = named_like(database)
    grant(f"CREATE ROLE {role}")
    try:
        grant(f"GRANT {role} TO {{user}}")
        grant(f"SET DEFAULT ROLE {role} FOR {{user}}")
        grant(f"GRANT SELECT ON {{database}}.* TO {role}")  # to connect at all
        with pytest.raises(TargetUnreachable, match="no CREATE right on database"):
            check(url, tmp_path)
        grant(f"GRANT ALL PRIVILEGES ON {pattern}.* TO {role}")
        check(url, tmp_path)  # every right, through a pattern of the role's
        with create_engine(MARIADB_URL.rstrip("/") + f"/{database}").connect() as conn:
            conn.execute(text("CREATE TABLE users (id INT PRIMARY KEY)"))
        grant(f"REVOKE ALL PRIVILEGES ON {pattern}.* FROM {role}")
        grant(f"GRANT CREATE ON {{database}}.* TO {role}")
        grant(f"GRANT INSERT, DELETE, UPDATE (id) ON {{database}}.users TO {role}")
        with pytest.raises(TargetUnreachable, match=rf"no UPDATE right on table {database}\.users$"):
            check(url, tmp_path)
    finally:
        grant(f"DROP ROLE {role}")
