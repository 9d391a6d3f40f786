"""The benchmarks run end to end at a tiny scale (the real runs are `chatledger bench …`
at a million messages; their figures are ratios within one run, never asserted here)."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import create_engine, text

from ledger.bench import baselines
from ledger.bench.extract import postgres_floor
from ledger.cli.benchmarks import figures_table
from tests.conftest import run_cli
from tests.librechat_onyx.onyx import API_KEY, OnyxApi, load_onyx


@pytest.fixture
def onyx_service(postgres_database):
    """An Onyx database with the simulated API: the bench's --onyx-* options."""
    load_onyx(postgres_database)
    with OnyxApi(postgres_database) as api:
        yield ["--onyx-db", postgres_database, "--onyx-api-base", api.base, "--onyx-api-key", API_KEY]


def figures(done) -> dict[str, dict]:
    assert done.returncode == 0, done.stderr
    return {figure["figure"]: figure for figure in json.loads(done.stdout)["figures"]}


def test_bench_extract_runs_at_a_tiny_scale(tmp_path):
    done = run_cli("bench", "extract", "--messages", "800", "--sqlite-only", "--json", cwd=tmp_path)
    extracted = figures(done)
    first, noop = extracted["sqlite first"], extracted["sqlite no-op"]
    assert first["detail"]["events"] > 0 and noop["detail"]["events"] == 0
    assert noop["baseline"] == "sqlite first" and extracted["sqlite --full"]["detail"]["events"] == 0
    # the limits read and write what the first extraction did, each in its own process
    reader, floor = extracted["reader alone"], extracted["sqlite floor"]
    assert reader["detail"]["records"] == first["detail"]["records"] and reader["peak_rss_mb"] > 0
    assert floor["detail"]["records"] == first["detail"]["events"] and floor["peak_rss_mb"] > 0
    for name, baseline in (
        ("of reader", "reader alone"),
        ("CPU", "reader CPU"),
        ("of floor", "sqlite floor"),
    ):
        row = extracted[f"sqlite {name}"]
        assert row["baseline"] == baseline and row["ratio"] == round(
            row["value"] / extracted[baseline]["value"], 2
        )
    slower = min(reader, floor, key=lambda figure: figure["value"])["figure"]
    assert extracted["sqlite of limit"]["baseline"] == slower
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(figures_table(json.loads(done.stdout), "bench extract"))
    shown = console.export_text()
    assert "sqlite of limit" in shown and "reader alone" in shown and "…" not in shown


def test_postgres_floor_copies_the_rows_of_a_sqlite_ledger(tmp_path, postgres_database):
    """``bench extract``'s Postgres writer floor, on a ledger one tiny extraction wrote."""
    extracted = run_cli("--ledger", "sqlite:///ledger.db", "extract", "synthetic", "--name", "bench", "--users", "2",
                        "--no-progress", cwd=tmp_path)  # fmt: skip
    assert extracted.returncode == 0, extracted.stderr
    floor = postgres_floor(tmp_path / "ledger.db", postgres_database)
    events = sqlite3.connect(tmp_path / "ledger.db").execute("SELECT count(*) FROM events").fetchone()[0]
    copied = create_engine(postgres_database)
    with copied.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM events")) == floor["records"] == events > 0
    copied.dispose()


def test_bench_replay_runs_at_a_tiny_scale(tmp_path, postgres_admin):
    """Two targets (a database and a folder) in the default suite: every process costs
    about a second here; the run of every sink is marked ``bench``."""
    measured = figures(run_cli("bench", "replay", "--messages", "300", "--sink", "sql-postgres", "--sink", "bundle",
                               "--database-prefix", "chatledger_test_bench", "--json", cwd=tmp_path))  # fmt: skip
    for name in ("sql-postgres", "bundle"):
        replayed, noop = measured[f"replay {name}"], measured[f"no-op replay {name}"]
        assert measured[replayed["baseline"]]["detail"]["rows"] > 0 and replayed["ratio"] > 0
        assert noop["detail"]["records_written"] == 0
        checked = measured[f"verify {name}"]  # the whole target read back and found equal
        assert checked["detail"]["matches"] is True and checked["value"] > 0
    assert (
        measured["verify sql-postgres"]["detail"]["units"]
        == measured["replay sql-postgres"]["detail"]["records_written"]
    )
    # the sql sink writes one row per record: its COPY baseline writes the same rows
    assert (
        measured["COPY sql-postgres"]["detail"]["rows"]
        == measured["replay sql-postgres"]["detail"]["records_written"]
    )


@pytest.mark.bench
def test_bench_replay_runs_every_sink_at_a_tiny_scale(
    tmp_path, postgres_admin, mariadb_admin, onyx_service, mongo_server
):
    done = run_cli(
        "bench", "replay", "--messages", "400", "--document-messages", "100", "--mongo", mongo_server,
        *onyx_service, "--database-prefix", "chatledger_test_bench", "--json", cwd=tmp_path,
    )  # fmt: skip
    measured = figures(done)
    console = Console(width=160, record=True, file=io.StringIO())
    console.print(figures_table(json.loads(done.stdout), "bench"))
    shown = console.export_text()
    assert "replay laravel-mariadb" in shown and "peak RSS MB" in shown and "COPY onyx-postgres" in shown
    for name in ("sql-postgres", "sql-sqlite", "onyx-postgres", "laravel-postgres", "laravel-mariadb",
                 "laravel-sqlite", "cherry-v2-sqlite", "langgraph-postgres", "bundle", "mongo-toolkit",
                 "langgraph-json"):  # fmt: skip
        replayed, noop = measured[f"replay {name}"], measured[f"no-op replay {name}"]
        baseline = measured[replayed["baseline"]]
        assert replayed["detail"]["status"] == "succeeded", name
        assert replayed["detail"]["records_written"] > 0 and noop["detail"]["records_written"] == 0, name
        assert baseline["detail"]["rows"] > 0 and replayed["peak_rss_mb"] > 0, name
        assert measured[f"verify {name}"]["detail"]["matches"] is True, name


def test_bench_rerun_runs_at_a_tiny_scale(tmp_path):
    measured = figures(run_cli("bench", "rerun", "--messages", "300", "--json", cwd=tmp_path))
    assert measured["migrate first"]["detail"]["records_written"] > 0
    assert measured["migrate no-op"]["detail"]["records_written"] == 0
    assert measured["verify full"]["detail"]["matches"] is True


def test_the_sqlite_baseline_keeps_indexes_and_lets_fts_triggers_number_rows(tmp_path, monkeypatch):
    """Cherry's DDL: an external-content FTS5 table keyed by ``fts_rowid``, which an
    insert trigger numbers through a unique index. The baseline makes that index (it is
    not one of the FTS table's shadow tables) and leaves the numbering to the trigger."""
    source = sqlite3.connect(tmp_path / "app.db")
    source.executescript(
        """
        CREATE TABLE message (id TEXT PRIMARY KEY, body TEXT, fts_rowid INTEGER);
        CREATE UNIQUE INDEX message_fts_rowid_uniq ON message (fts_rowid);
        CREATE VIRTUAL TABLE message_fts USING fts5(body, content='message', content_rowid='fts_rowid');
        CREATE TRIGGER message_ai AFTER INSERT ON message BEGIN
          UPDATE message SET fts_rowid = (SELECT COALESCE(MAX(fts_rowid), 0) + 1 FROM message)
          WHERE id = NEW.id;
          INSERT INTO message_fts(rowid, body) SELECT fts_rowid, body FROM message WHERE id = NEW.id;
        END;
        """
    )
    source.executemany(
        "INSERT INTO message (id, body) VALUES (?, ?)", [(f"m{n}", f"text {n}") for n in range(50)]
    )
    source.commit()
    source.close()
    monkeypatch.setattr(Path, "unlink", lambda self, missing_ok=False: None)  # keep the twin to read it
    written = baselines.sqlite(str(tmp_path / "app.db"), str(tmp_path / "twin.db"))
    assert written["tables"] == {"message": 50}
    twin = sqlite3.connect(tmp_path / "twin.db")
    assert twin.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall() == [
        ("sqlite_autoindex_message_1",),
        ("message_fts_rowid_uniq",),
    ]
    assert twin.execute("SELECT count(DISTINCT fts_rowid), max(fts_rowid) FROM message").fetchone() == (
        50,
        50,
    )
    assert twin.execute("SELECT count(*) FROM message_fts WHERE message_fts MATCH 'text'").fetchone() == (50,)
