"""Replay policies into real targets: merge, insert-only, replace, rollback, verify, repair.

Both ledger backends; the ``sql`` sink on a SQLite file and on a Postgres database; the
``bundle`` sink on a folder. Every assertion reads the target back.
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, select, text

from ledger.errors import ChatledgerError
from ledger.extract import extract
from ledger.replay import ReplaySettings, replay
from ledger.replay.repair import repair
from ledger.replay.rollback import rollback
from ledger.replay.verify import verify
from ledger.schema import target_state, writes
from ledger.sink import SinkContext
from ledger.source import SourceContext
from ledger.sql_target import MARKER_TABLE
from ledger.store import Ledger, normalize_url
from sinks.bundle import BundleOptions, BundleSink
from sinks.sql import SqlOptions, SqlSink
from sources.synthetic import SyntheticOptions, SyntheticSource

DATA_TABLES = ("users", "conversations", "messages", "files", "records")


@pytest.fixture(params=["sqlite-target", "postgres-target"])
def target_url(request, tmp_path):
    if request.param == "sqlite-target":
        return f"sqlite:///{tmp_path / 'target.db'}"
    return request.getfixturevalue("postgres_database")


def sql_sink(ledger, url, name="out", **options):
    return SqlSink(SqlOptions(url=url, **options), SinkContext(name, ledger.blobs))


def synthetic(ledger, stream="syn", **options):
    options = {"users": 6, "seed": 7, **options}
    return extract(ledger, SyntheticSource(SyntheticOptions(**options), SourceContext(stream, ledger.blobs)))


def dump(url, tables=DATA_TABLES):
    """Every row of the data tables, as sorted tuples (the target, read back)."""
    engine = create_engine(normalize_url(url))
    present = set(inspect(engine).get_table_names())
    with engine.connect() as conn:
        out = {
            table: sorted(
                tuple(str(value) for value in row) for row in conn.execute(text(f"SELECT * FROM {table}"))
            )
            for table in tables
            if table in present
        }
    engine.dispose()
    return out


def totals(result, counter):
    return sum(counts[counter] for counts in result.stats["tables"].values())


def test_merge_twice_then_only_what_changed(ledger, target_url):
    first_extract = synthetic(ledger)
    first = replay(ledger, sql_sink(ledger, target_url), ["syn"])
    assert first.status == "succeeded"
    assert first.stats["written"] == first_extract.stats["events"]
    before = dump(target_url)
    assert sum(len(rows) for rows in before.values()) == first.stats["written"]

    second = replay(ledger, sql_sink(ledger, target_url), ["syn"])
    assert second.stats["written"] == 0
    assert totals(second, "unchanged") == first.stats["written"]
    assert dump(target_url) == before

    mutated = synthetic(ledger, mutate=0.4)
    kinds = mutated.stats["kinds"]
    expected = {
        name: sum(counts[name] for counts in kinds.values()) for name in ("new", "changed", "deleted")
    }
    assert expected["changed"] and expected["deleted"]
    third = replay(
        ledger, sql_sink(ledger, target_url), ["syn"], settings=ReplaySettings(propagate_deletes=True)
    )
    assert (totals(third, "inserted"), totals(third, "updated"), totals(third, "deleted")) == (
        expected["new"],
        expected["changed"],
        expected["deleted"],
    )
    assert verify(ledger, sql_sink(ledger, target_url), ["syn"]).matches


def test_merge_keeps_source_deletes_unless_asked(ledger, tmp_path):
    url = f"sqlite:///{tmp_path / 't.db'}"
    synthetic(ledger)
    replay(ledger, sql_sink(ledger, url), ["syn"])
    rows_before = sum(len(rows) for rows in dump(url).values())
    mutated = synthetic(ledger, mutate=0.4)
    deleted = sum(counts["deleted"] for counts in mutated.stats["kinds"].values())
    kept = replay(ledger, sql_sink(ledger, url), ["syn"])
    assert totals(kept, "deleted") == 0
    new = sum(counts["new"] for counts in mutated.stats["kinds"].values())
    assert sum(len(rows) for rows in dump(url).values()) == rows_before + new
    gone = replay(ledger, sql_sink(ledger, url), ["syn"], settings=ReplaySettings(propagate_deletes=True))
    assert totals(gone, "deleted") == deleted


def test_insert_only_writes_only_new_keys(ledger, tmp_path):
    url = f"sqlite:///{tmp_path / 't.db'}"
    synthetic(ledger)
    replay(ledger, sql_sink(ledger, url), ["syn"])
    mutated = synthetic(ledger, mutate=0.4)
    new = sum(counts["new"] for counts in mutated.stats["kinds"].values())
    result = replay(ledger, sql_sink(ledger, url), ["syn"], settings=ReplaySettings(policy="insert-only"))
    assert totals(result, "inserted") == new == result.stats["written"]


def test_replace_of_one_scope_leaves_other_scopes_untouched(ledger, target_url):
    synthetic(ledger)
    replay(ledger, sql_sink(ledger, target_url), ["syn"])
    with ledger.read() as conn:
        scope_keys = {
            row.key for row in conn.execute(text("SELECT key FROM heads WHERE scope = 'user:0000002'"))
        }
    engine = create_engine(normalize_url(target_url))
    with engine.begin() as conn:  # drift inside and outside the scope
        conn.execute(
            text("UPDATE messages SET text = 'edited' WHERE key IN (SELECT key FROM messages ORDER BY key)")
        )
    before = dump(target_url)
    result = replay(
        ledger,
        sql_sink(ledger, target_url),
        ["syn"],
        settings=ReplaySettings(policy="replace", scope="user:0000002"),
    )
    after = dump(target_url)
    written = {row.key for row in _writes_of(ledger, result.run_id)}
    assert written == scope_keys
    for table in DATA_TABLES:
        outside_before = [row for row in before.get(table, []) if row[1] not in scope_keys]
        outside_after = [row for row in after.get(table, []) if row[1] not in scope_keys]
        assert outside_before == outside_after  # still edited: untouched
    restored = [row for row in after["messages"] if row[1] in scope_keys]
    assert restored and all(row[10] != "edited" for row in restored)
    engine.dispose()


def test_replace_with_truncate_empties_the_documented_tables(ledger, tmp_path):
    url = f"sqlite:///{tmp_path / 't.db'}"
    synthetic(ledger)
    synthetic(ledger, stream="other", seed=99, users=2)
    replay(ledger, sql_sink(ledger, url), ["syn", "other"])
    result = replay(
        ledger, sql_sink(ledger, url), ["syn"], settings=ReplaySettings(policy="replace", truncate=True)
    )
    assert result.status == "succeeded"
    streams = {row[0] for rows in dump(url).values() for row in rows}
    assert streams == {"syn"}
    with ledger.read() as conn:
        held = set(conn.scalars(select(target_state.c.stream).distinct()))
    assert held == {"syn"}


def _writes_of(ledger, run_id):
    with ledger.read() as conn:
        return conn.execute(select(writes).where(writes.c.run_id == run_id)).all()


def test_rollback_restores_the_target_exactly_and_can_itself_be_rolled_back(ledger, target_url):
    synthetic(ledger)
    replay(ledger, sql_sink(ledger, target_url), ["syn"])
    before = dump(target_url)
    synthetic(ledger, mutate=0.4)
    merged = replay(
        ledger, sql_sink(ledger, target_url), ["syn"], settings=ReplaySettings(propagate_deletes=True)
    )
    after_merge = dump(target_url)
    assert after_merge != before

    undone = rollback(ledger, sql_sink(ledger, target_url), merged.run_id)
    assert undone.status == "succeeded"
    assert dump(target_url) == before
    assert verify(
        ledger, sql_sink(ledger, target_url), ["syn"]
    ).consistent  # the newer versions are pending again

    redone = rollback(ledger, sql_sink(ledger, target_url), undone.run_id)
    assert redone.status == "succeeded"
    assert dump(target_url) == after_merge


def test_rollback_refuses_after_a_hand_edit_unless_forced(ledger, target_url):
    synthetic(ledger)
    first = replay(ledger, sql_sink(ledger, target_url), ["syn"])
    engine = create_engine(normalize_url(target_url))
    with engine.begin() as conn:
        key = conn.execute(text("SELECT key FROM messages ORDER BY key LIMIT 1")).scalar()
        conn.execute(text("UPDATE messages SET text = 'typed by an admin' WHERE key = :k"), {"k": key})
    engine.dispose()
    with pytest.raises(ChatledgerError, match="changed in the target since it was written"):
        rollback(ledger, sql_sink(ledger, target_url), first.run_id)
    forced = rollback(ledger, sql_sink(ledger, target_url), first.run_id, force=True)
    assert forced.status == "succeeded" and forced.stats["forced_over"] == 1
    assert all(not rows for rows in dump(target_url).values())


def test_verify_reports_drifted_missing_and_unexpected(ledger, target_url):
    synthetic(ledger)
    replay(ledger, sql_sink(ledger, target_url), ["syn"])
    engine = create_engine(normalize_url(target_url))
    with engine.begin() as conn:
        keys = conn.execute(text("SELECT key FROM messages ORDER BY key LIMIT 2")).scalars().all()
        conn.execute(text("UPDATE messages SET role = 'system' WHERE key = :k"), {"k": keys[0]})
        conn.execute(text("DELETE FROM messages WHERE key = :k"), {"k": keys[1]})
        conn.execute(
            text("INSERT INTO users (stream, key, version, hash) VALUES ('syn', 'user:stranger', 1, 'x')")
        )
    engine.dispose()
    result = verify(ledger, sql_sink(ledger, target_url), ["syn"])
    assert not result.matches
    assert (result.counts["drifted"], result.counts["missing"], result.counts["unexpected"]) == (1, 1, 1)
    assert result.samples["drifted"] == [f"syn {keys[0]}"]
    assert result.samples["missing"] == [f"syn {keys[1]}"]
    assert result.samples["unexpected"] == ["syn user:stranger"]


def test_resync_repairs_drift_and_a_second_run_writes_nothing(ledger, tmp_path):
    url = f"sqlite:///{tmp_path / 't.db'}"
    synthetic(ledger)
    replay(ledger, sql_sink(ledger, url), ["syn"])
    clean = dump(url)
    engine = create_engine(normalize_url(url))
    with engine.begin() as conn:
        conn.execute(text("UPDATE messages SET text = 'oops' WHERE rowid IN (1, 2, 3)"))
        conn.execute(text("DELETE FROM users WHERE rowid = 1"))
    engine.dispose()
    first = repair(ledger, sql_sink(ledger, url), "resync", ["syn"])
    assert first.stats["fixes"] == 4 and first.stats["written"] == 4
    assert dump(url) == clean
    second = repair(ledger, sql_sink(ledger, url), "resync", ["syn"])
    assert second.stats["fixes"] == 0 and second.stats["written"] == 0


def test_dry_run_plans_and_writes_nothing(ledger, tmp_path):
    url = f"sqlite:///{tmp_path / 't.db'}"
    synthetic(ledger)
    plan = replay(ledger, sql_sink(ledger, url), ["syn"], settings=ReplaySettings(dry_run=True))
    assert plan.run_id is None
    inserts = {name: counts["insert"] for name, counts in plan.stats["plan"].items()}
    assert inserts["message → messages"] > 0 and inserts["user → users"] == 6
    assert not (tmp_path / "t.db").exists()
    with ledger.read() as conn:
        assert conn.execute(select(writes)).first() is None


def test_markers_agree_with_target_state(ledger, target_url):
    synthetic(ledger)
    replay(ledger, sql_sink(ledger, target_url), ["syn"])
    engine = create_engine(normalize_url(target_url))
    with engine.connect() as conn:
        markers = {
            (row.stream, row.record_key, row.hash)
            for row in conn.execute(text(f"SELECT * FROM {MARKER_TABLE}"))
        }
    engine.dispose()
    with ledger.read() as conn:
        state = {(row.stream, row.key, row.hash) for row in conn.execute(select(target_state))}
    assert markers == state and len(state) > 100


def test_bundle_export_is_idempotent_and_rolls_back(ledger, tmp_path):
    synthetic(ledger)
    root = tmp_path / "bundle"

    def bundle():
        return BundleSink(BundleOptions(path=root, copy_files=True), SinkContext("export", ledger.blobs))

    def snapshot():
        return {
            str(path.relative_to(root)): path.read_bytes()
            for path in sorted(root.rglob("*"))
            if path.is_file()
        }

    first = replay(ledger, bundle(), ["syn"])
    assert first.status == "succeeded"
    files = snapshot()
    assert any(name.endswith("conversations.jsonl") for name in files)
    assert any("/files/" in name for name in files)
    assert replay(ledger, bundle(), ["syn"]).stats["written"] == 0
    assert snapshot() == files  # rewritten in place, byte for byte, never appended
    assert verify(ledger, bundle(), ["syn"]).matches

    synthetic(ledger, mutate=0.4)
    merged = replay(ledger, bundle(), ["syn"], settings=ReplaySettings(propagate_deletes=True))
    assert merged.stats["written"] > 0 and snapshot() != files
    rollback(ledger, bundle(), merged.run_id)
    restored = snapshot()
    assert {k: v for k, v in restored.items() if "/files/" not in k} == {
        k: v for k, v in files.items() if "/files/" not in k
    }


def test_sql_sink_in_a_postgres_schema_with_a_prefix(ledger, postgres_database):
    synthetic(ledger, users=2)
    sink = sql_sink(ledger, postgres_database, schema="analytics", prefix="cl_")
    first = replay(ledger, sink, ["syn"])
    engine = create_engine(normalize_url(postgres_database))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM analytics.cl_messages")).scalar()
        markers = conn.execute(text("SELECT count(*) FROM analytics.chatledger_markers")).scalar()
    engine.dispose()
    messages = sum(1 for _ in _writes_of(ledger, first.run_id) if _.key.startswith("message:"))
    assert rows == messages > 0 and markers == first.stats["written"]
    again = sql_sink(ledger, postgres_database, schema="analytics", prefix="cl_")
    assert replay(ledger, again, ["syn"]).stats["written"] == 0
    assert verify(
        ledger, sql_sink(ledger, postgres_database, schema="analytics", prefix="cl_"), ["syn"]
    ).matches


def test_a_target_holding_rows_the_ledger_does_not_know_is_overwritten(ledger, target_url, tmp_path):
    synthetic(ledger, users=2)
    replay(ledger, sql_sink(ledger, target_url), ["syn"])
    clean = dump(target_url)
    # a new ledger (the old one lost) pointed at the same target: every row looks "new"
    fresh = Ledger.open(f"sqlite:///{tmp_path / 'second.db'}", blob_dir=tmp_path / "blobs2")
    synthetic(fresh, users=2)
    sink = sql_sink(fresh, target_url, name="out-again")
    result = replay(fresh, sink, ["syn"])
    assert result.status == "succeeded" and result.stats["sink"]["rows_replaced_unexpectedly"] > 0
    assert dump(target_url) == clean
