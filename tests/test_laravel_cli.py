"""The issue's "done when", through the real ``chatledger`` command: ``migrate`` a Convex
export into the Laravel tables on SQLite, Postgres and MariaDB, twice (the second run
writes nothing), with counters matching the source; a dry run first writes nothing; a
rollback restores the empty tables.
"""

from __future__ import annotations

import orjson

from tests.conftest import run_cli
from tests.convex_laravel import data
from tests.convex_laravel.exports import write_export
from tests.convex_laravel.harness import (
    counts,
    create_tables,
    database_url,
    laravel_url,
)


def chatledger(tmp_path, *args: str) -> dict:
    shown = run_cli(*args, "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    return orjson.loads(shown.stdout)


def test_migrate_twice_then_rollback(tmp_path, laravel_url):
    export = write_export(tmp_path / "convex-prod-export.zip", data.rich())
    (tmp_path / "chatledger.toml").write_text(
        f'[ledger]\nurl = "sqlite:///{tmp_path / "chatledger.db"}"\n\n'
        f'[sources.khala]\ntype = "convex"\npath = "{export}"\n\n'
        f'[targets.app]\ntype = "laravel"\nurl = "{laravel_url}"\nstreams = ["khala"]\n'
    )
    dry = chatledger(tmp_path, "migrate", "khala", "app", "--dry-run")
    assert dry["run_id"] is None and set(counts(laravel_url).values()) == {0}

    first = chatledger(tmp_path, "migrate", "khala", "app")
    source, sink = first["extract"]["stats"]["source"], first["replay"]["stats"]["sink"]
    assert (source["source_users"], source["source_threads"], source["source_messages"], source["source_runs"],
            source["source_receipts"], source["source_blueprints"]) == (1, 3, 7, 2, 3, 4)  # fmt: skip
    # every owned thread, message, run and receipt of the source is imported or counted as skipped
    assert sink["threads_imported"] + sink["threads_skipped_ownerless"] == source["source_threads"] == 3
    assert sink["messages_imported"] + sink["messages_skipped_ownerless"] == source["source_messages"] == 7
    assert (
        sink["runs_imported"] == source["source_runs"]
        and sink["events_imported"] == source["source_receipts"]
    )
    assert (sink["users_imported"], sink["autopilots_created"]) == (2, 2)
    assert first["verify"]["matches"] and first["status"] == "succeeded"
    filled = counts(laravel_url)
    assert {
        name: filled[name] for name in ("users", "autopilots", "threads", "messages", "runs", "run_events")
    } == {"users": 2, "autopilots": 2, "threads": 2, "messages": 5, "runs": 2, "run_events": 3}

    second = chatledger(tmp_path, "migrate", "khala", "app")
    assert second["extract"]["stats"]["events"] == 0 and second["replay"]["stats"]["written"] == 0
    assert second["verify"]["matches"] and counts(laravel_url) == filled

    undone = chatledger(tmp_path, "rollback", str(first["run_id"]))
    assert undone["status"] == "succeeded"
    assert set(counts(laravel_url).values()) == {0}


def test_a_replay_killed_after_the_target_committed_is_healed_not_repeated(tmp_path, request):
    # MariaDB: its marker upsert is the one dialect path the core's own crash tests do not run
    laravel_url = create_tables(database_url(request, tmp_path, "mariadb"))
    export = write_export(tmp_path / "export.zip", data.rich())
    (tmp_path / "chatledger.toml").write_text(
        f'[ledger]\nurl = "sqlite:///{tmp_path / "chatledger.db"}"\n\n'
        f'[sources.khala]\ntype = "convex"\npath = "{export}"\n\n'
        f'[targets.app]\ntype = "laravel"\nurl = "{laravel_url}"\nstreams = ["khala"]\n'
    )
    chatledger(tmp_path, "extract", "khala")
    killed = run_cli(
        "replay", "app", cwd=tmp_path, env={"CHATLEDGER_FAILPOINTS": "replay.record.before=1:kill"}
    )
    assert killed.returncode == -9
    written = counts(laravel_url)
    assert written["run_events"] == 3  # the target committed; the ledger never heard of it
    healed = chatledger(tmp_path, "replay", "app")
    # the 16 records written are healed from the markers; the 4 skipped (the ownerless
    # thread with its message and run, the ownerless blueprint) left nothing to heal and
    # are skipped again
    stats = healed["stats"]
    assert (stats["reconciled"], stats["written"], stats["skipped"]) == (16, 0, 4)
    assert counts(laravel_url) == written  # run_events have no unique key: nothing was added twice
    assert chatledger(tmp_path, "verify", "app")["matches"]
