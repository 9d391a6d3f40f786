"""Cherry Studio v1 → v2: the ``cherry`` source in every input form, and the ``cherry-v2``
sink writing a database made from the app's real schema, read back row by row."""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path

import orjson
import pytest

from ledger.errors import ChatledgerError
from ledger.replay import ReplaySettings
from ledger.replay.rollback import rollback
from ledger.replay.verify import verify
from ledger.store import Ledger
from sinks.cherry_v2.plan import assistant_id, mapped_id
from tests.cherry import data
from tests.cherry.harness import (
    STREAM,
    app_database,
    app_writes,
    constraints_hold,
    dump,
    execute,
    extract_input,
    replay_into,
    rows,
    sink,
    source,
)


@pytest.fixture
def ledger(tmp_path):
    opened = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", blob_dir=tmp_path / "blobs")
    yield opened
    opened.close()


def records_of(ledger: Ledger, path) -> dict[str, dict]:
    """Every record the source yields for an input: key → data (rejects under their location)."""
    found = {}
    reader = source(ledger, path)
    try:
        for scope in reader.scopes():
            for items, _ in reader.read(scope):
                for item in items:
                    if hasattr(item, "kind"):
                        found[item.key] = item.data
                    else:
                        found["reject:" + item.location] = {"reason": item.reason}
    finally:
        reader.close()
    return found


def migrated(tmp_path, ledger: Ledger, form: str = "zip"):
    backup = data.rich()
    path = {
        "zip": lambda: data.write_zip(tmp_path / "cherry-studio.202403011000.zip", backup),
        "folder": lambda: data.write_folder(tmp_path / "backup", backup),
    }[form]()
    extracted = extract_input(ledger, path)
    db = app_database(tmp_path / "cherrystudio.sqlite")
    return extracted, db, replay_into(ledger, db)


def message(db, ident: str) -> dict:
    row = rows(
        db,
        "SELECT parent_id, role, status, siblings_group_id, model_id, model_snapshot, stats, data, "
        "created_at, topic_id FROM message WHERE id = ?",
        ident,
    )[0]
    keys = (
        "parent",
        "role",
        "status",
        "group",
        "model_id",
        "snapshot",
        "stats",
        "data",
        "created_at",
        "topic",
    )
    out = dict(zip(keys, row))
    for name in ("snapshot", "stats", "data"):
        out[name] = json.loads(out[name]) if out[name] else None
    return out


def root_of(db, topic: str) -> str:
    return rows(db, "SELECT id FROM message WHERE topic_id = ? AND role = 'root'", topic)[0][0]


# -- the source ------------------------------------------------------------------------------------


def test_every_backup_form_reads_the_same_chats(tmp_path, ledger):
    backup = data.rich()
    forms = {
        "zip": data.write_zip(tmp_path / "b.zip", backup),
        "folder": data.write_folder(tmp_path / "folder", backup),
        "json": tmp_path / "data.json",
        "exporter": data.write_exporter(tmp_path / "exported", backup),
        "bak": tmp_path / "cherry-studio.202403011000.bak",  # a legacy .bak: gzip-compressed data.json
    }
    forms["json"].write_bytes(orjson.dumps(backup))
    forms["bak"].write_bytes(gzip.compress(orjson.dumps(backup)))
    chats = {
        name: {
            k: v for k, v in records_of(ledger, path).items() if k.startswith(("conversation:", "message:"))
        }
        for name, path in forms.items()
    }
    assert chats["zip"] == chats["folder"] == chats["json"] == chats["exporter"] == chats["bak"]
    assert len([k for k in chats["zip"] if k.startswith("message:")]) == 33
    files = records_of(ledger, forms["zip"])
    assert (
        files["file:f1"]["sha256"] and files["file:f3"]["missing"] == "Data/Files/f3.txt is not in the backup"
    )
    assert records_of(ledger, forms["exporter"])["file:f1"]["missing"]  # the exporter ships no bytes
    rejects = sorted(k for k in files if k.startswith("reject:"))
    assert rejects == ["reject:topics[6]", "reject:topics[7]", "reject:topics[8]"]


def test_the_source_keeps_what_upstream_drops(tmp_path, ledger):
    found = records_of(ledger, data.write_zip(tmp_path / "b.zip", data.rich()))
    w1, w2, w3 = found["message:t3/w1"], found["message:t3/w2"], found["message:t3/w3"]
    assert [m["id"] for m in w1["metadata"]["mentions"]] == ["gpt-4o", "claude-3"]
    assert w3["metadata"]["type"] == "clear"
    assert found["message:t1/b2"]["metadata"]["useful"] is True
    assert found["conversation:t-empty-intent"]["system_prompt"] == "You are a poet"
    # numeric epoch ms and unparsable timestamps
    assert w1["created_at"] == "2024-03-01T10:00:00Z"
    assert w2["created_at"] is None and w2["metadata"]["native_created_at"] == "not a date"
    assert found["conversation:t3"]["metadata"]["native_updated_at"] == "garbage"
    # the first assistant's Redux entry wins; the default assistant's topics are read too
    assert (
        found["conversation:t1"]["title"] == "Groups"
        and found["conversation:t1"]["assistant"] == "assistant:a1"
    )
    assert found["conversation:t3"]["assistant"] == "assistant:default"
    assert found["conversation:t4"]["metadata"]["redux_meta"] is False
    # blocks as canonical parts; MCP errors; three kinds of citation; an inline image in the blob store
    types = [p["type"] for p in w2["parts"]]
    assert types.count("tool_call") == types.count("tool_result") == 2
    bad = [p for p in w2["parts"] if p["type"] == "tool_result" and p["is_error"]]
    assert [p["error_text"] for p in bad] == ["MCP error -32000: boom"]
    assert sorted(p["citation_type"] for p in w2["parts"] if p["type"] == "citation") == [
        "knowledge",
        "memory",
        "web",
    ]
    inline = next(p for p in w2["parts"] if p.get("inline"))
    assert ledger.blobs.read(inline["blob"].removeprefix("sha256:")) == data.PNG
    assert {p["native_type"] for p in w2["parts"] if p["type"] == "other"} == {
        "translation",
        "video",
        "compact",
        "unknown",
    }
    assert w2["status"] == "error" and w2["metadata"]["native_status"] == "processing"
    assert found["message:t2/v3"]["parts"] == [] and found["message:t2/v3"]["metadata"]["missing_blocks"] == 2


@pytest.mark.parametrize("make", [data.version1, data.version3], ids=["version1", "version3"])
def test_pre_block_backups(tmp_path, ledger, make):
    backup = make(data.rich())
    found = records_of(ledger, data.write_zip(tmp_path / "old.zip", backup))
    w2 = found["message:t3/w2"]
    assert w2["metadata"]["legacy"] is True
    types = [p["type"] for p in w2["parts"]]
    assert types[:2] == ["reasoning", "text"] and "tool_call" in types and "citation" in types
    assert found["message:t1/u1"]["parts"] == [{"type": "text", "text": "hello", "block": "u1:legacy:0"}]
    assert "conversation:image://avatar" not in found and found["conversation:t1"]["title"] == "Groups"


def test_a_bad_input_is_named(tmp_path, ledger):
    broken = tmp_path / "data.json"
    broken.write_text('{"version": 5, "indexedDB": {"topics": [')
    with pytest.raises(ChatledgerError, match=r"data.json: not valid JSON"):
        records_of(ledger, broken)
    with pytest.raises(ChatledgerError, match="no such file"):
        records_of(ledger, tmp_path / "nowhere.zip")
    odd = tmp_path / "cherry-studio.bak"
    odd.write_bytes(b"\x00\x01binary, not a backup")
    with pytest.raises(
        ChatledgerError, match=r"cherry-studio.bak: not a Cherry Studio backup: neither a ZIP"
    ):
        records_of(ledger, odd)
    odd.write_bytes(gzip.compress(orjson.dumps(data.rich()))[:200])  # cut short
    with pytest.raises(
        ChatledgerError, match=r"cherry-studio.bak: a gzip-compressed .bak that does not decompress"
    ):
        records_of(ledger, odd)


# -- the sink --------------------------------------------------------------------------------------


def test_the_tree_by_upstream_rules(tmp_path, ledger):
    _, db, result = migrated(tmp_path, ledger)
    assert result.status == "succeeded", result.stats
    constraints_hold(db)
    root = root_of(db, "t1")
    parents = dict(rows(db, "SELECT id, parent_id FROM message WHERE topic_id = 't1' AND role != 'root'"))
    groups = dict(
        rows(db, "SELECT id, siblings_group_id FROM message WHERE topic_id = 't1' AND role != 'root'")
    )
    assert parents["u1"] == root and parents["a1"] == "u1"
    assert {parents[m] for m in ("a2", "a3", "a4")} == {"u2"} and {groups[m] for m in ("a2", "a3", "a4")} == {
        1
    }
    assert parents["u3"] == "a2"  # upstream: the member before the first foldSelected one
    assert parents["u5"] == "b2" and parents["u7"] == "c1"  # the useful member (upstream: c3)
    assert groups["c1"] == groups["b1"] == 1  # numbered per parent
    assert rows(db, "SELECT active_node_id FROM topic WHERE id = 't1'") == [("u7",)]
    # resends of a deleted first question hang under the root as one group; a block-less
    # message in the middle is skipped and its child re-linked to the nearest kept ancestor
    root2 = root_of(db, "t2")
    assert rows(db, "SELECT id, siblings_group_id FROM message WHERE parent_id = ? ORDER BY id", root2) == [
        ("r1", 1),
        ("r2", 1),
    ]
    assert rows(db, "SELECT count(*) FROM message WHERE id = 'v3'") == [(0,)]
    assert message(db, "v4")["parent"] == "v2"
    sink_counters = result.stats["sink"]
    assert sink_counters["messages_skipped_no_blocks"] == 1 and sink_counters["messages_relinked"] == 1
    assert sink_counters["useful_kept"] == 2


def test_rows_parts_and_data_quality_counters(tmp_path, ledger):
    _, db, result = migrated(tmp_path, ledger)
    counters = result.stats["sink"]
    assert {
        name: counters.get(name, 0)
        for name in (
            "duplicate_message_ids", "topic_id_mismatch", "messages_with_missing_blocks",
            "missing_redux_metadata", "orphaned_assistant_topics", "topics_unnamed",
            "messages_skipped_no_blocks", "topics_skipped_empty", "topics_kept_empty",
            "mentions_kept", "clear_markers_kept", "topic_prompts_kept", "file_refs_written",
            "file_refs_dangling_skipped", "model_ids_cleared",
        )
    } == {
        "duplicate_message_ids": 2, "topic_id_mismatch": 1, "messages_with_missing_blocks": 1,
        "missing_redux_metadata": 1, "orphaned_assistant_topics": 1, "topics_unnamed": 2,
        "messages_skipped_no_blocks": 1, "topics_skipped_empty": 1, "topics_kept_empty": 2,
        "mentions_kept": 1, "clear_markers_kept": 1, "topic_prompts_kept": 1, "file_refs_written": 2,
        "file_refs_dangling_skipped": 1, "model_ids_cleared": 4,
    }  # fmt: skip
    # f1: the app already has its entry; f2: bytes in the backup; f3: not in the backup
    assert (
        counters["file_entries_written"],
        counters["file_entries_existing_kept"],
        counters["files_without_bytes"],
    ) == (1, 1, 1)
    assert result.stats["rejected_units"] == 0
    topics = {
        r[0]: r[1:] for r in rows(db, "SELECT id, name, assistant_id, created_at, updated_at FROM topic")
    }
    assert set(topics) == {"t1", "t2", "t3", "t4", "t-empty-intent", "t-redux-only"}
    default = assistant_id(STREAM, "default")
    assert topics["t3"][:2] == ("Unnamed Topic", default) and topics["t4"][1] is None
    assert topics["t3"][2] == 1709287200000 and topics["t3"][3] >= topics["t3"][2]  # numeric ms; derived
    assert rows(db, "SELECT id, name FROM assistant ORDER BY name") == [
        (default, "Default Assistant"), ("a1", "Helper"), ("a2", "Other"), ("p1", "Translator")
    ]  # fmt: skip
    assert rows(db, "SELECT entity_id FROM pin ORDER BY entity_id") == [("t-redux-only",), ("t1",)]
    # duplicates: the repeat inside t3 and t4's u1 (first used in t1) get uuid5 ids
    assert message(db, mapped_id(STREAM, "message:t4/u1"))["topic"] == "t4"
    assert message(db, mapped_id(STREAM, "message:t3/w4#2"))["parent"] == "w4"
    w2 = message(db, "w2")
    assert w2["status"] == "error" and w2["model_id"] == "openai::gpt-4o"
    assert w2["created_at"] == message(db, "w1")["created_at"]  # unparsable: the predecessor's time
    assert w2["snapshot"] == {"id": "gpt-4o", "name": "GPT-4o", "provider": "openai", "group": "gpt"}
    assert w2["stats"] == {
        "promptTokens": 10, "completionTokens": 20, "totalTokens": 30, "cost": 0.01,
        "timeCompletionMs": 900, "timeFirstTokenMs": 100, "timeThinkingMs": 1234,
    }  # fmt: skip
    parts = w2["data"]["parts"]
    assert [p["type"] for p in parts] == [
        "reasoning", "text", "source-url", "dynamic-tool", "dynamic-tool", "file", "file", "file", "file",
        "data-code", "data-translation", "data-video", "data-compact", "data-error",
    ]  # fmt: skip
    assert parts[0]["providerMetadata"]["cherry"]["thinkingMs"] == 1234
    kinds = [r["citationType"] for r in parts[1]["providerMetadata"]["cherry"]["references"]]
    assert kinds == ["web", "knowledge", "memory"]
    assert (parts[4]["state"], parts[4]["errorText"]) == ("output-error", "MCP error -32000: boom")
    assert parts[5]["url"].startswith("data:image/png;base64,")
    # v1 ids are UUIDs and are kept; the test's short "f2" is not one, so it maps to a uuid5
    f2 = mapped_id(STREAM, "file:f2")
    assert sorted(rows(db, "SELECT file_entry_id, source_id FROM file_ref")) == sorted(
        [("f1", "w2"), (f2, "w2")]
    )
    assert rows(db, "SELECT origin, name, ext, size, external_path FROM file_entry WHERE id = ?", f2) == [
        ("internal", "chart", "png", len(data.PNG), None)
    ]
    assert (tmp_path / "Data" / "Files" / f"{f2}.png").read_bytes() == data.PNG  # where the app keeps it
    image = next(p for p in parts if p.get("filename") == "chart.png")
    assert image["providerMetadata"]["cherry"]["fileEntryId"] == f2
    assert message(db, "a3")["model_id"] is None  # anthropic::claude-3 is not in user_model
    assert message(db, "w3")["data"]["legacy"] == {"type": "clear"}
    mentions = message(db, "w1")["data"]["parts"][0]["providerMetadata"]["cherry"]["references"]
    assert [m["modelId"] for m in mentions] == ["openai::gpt-4o", "anthropic::claude-3"]
    assert json.loads(
        rows(db, "SELECT data FROM message WHERE id = ?", root_of(db, "t-empty-intent"))[0][0]
    ) == {
        "legacy": {"prompt": "You are a poet"},
        "parts": [],
    }
    assert rows(db, "SELECT searchable_text FROM message WHERE id = 'w2'")[0][0].startswith(
        "Here is all of it"
    )
    assert rows(db, "SELECT count(*) FROM message_fts WHERE message_fts MATCH 'original'") == [(1,)]


def test_rerun_writes_nothing_and_verify_matches(tmp_path, ledger):
    _, db, _ = migrated(tmp_path, ledger, "folder")
    before = dump(db)
    again = replay_into(ledger, db)
    assert again.stats["written"] == 0 and dump(db) == before
    checked = verify(ledger, sink(ledger, db), [STREAM])
    assert checked.matches, checked.as_json()
    # drift: a message edited behind the sink's back; a dangling row breaks validate
    execute(db, "UPDATE message SET data = '{\"parts\":[]}' WHERE id = 'u2'")
    (db.parent / "Data" / "Files" / f"{mapped_id(STREAM, 'file:f2')}.png").unlink()  # an attachment deleted
    drifted = verify(ledger, sink(ledger, db), [STREAM])
    assert drifted.counts["drifted"] == 1 and drifted.samples["drifted"] == ["cherry conversation:t1"]
    assert drifted.samples["missing"] == ["cherry file:f2"]


def test_validate_reports_a_broken_tree(tmp_path, ledger):
    _, db, _ = migrated(tmp_path, ledger)
    execute(
        db,
        "INSERT INTO message (id, parent_id, topic_id, role, data, status, created_at, updated_at) "
        "VALUES ('stray', 'nothing', 't1', 'user', '{\"parts\":[]}', 'success', 1, 1)",
    )
    checked = verify(ledger, sink(ledger, db), [STREAM])
    problems = checked.samples["unexpected"]
    assert any("dangling parent_id: stray" in p for p in problems)
    assert any(p.startswith("validate foreign_key_check: message") for p in problems)


def edited(backup: dict) -> dict:
    """The same backup later: one text edited, the plain topics of ``mixed`` added."""
    later = data.mixed(12)
    text = next(b for b in later["indexedDB"]["message_blocks"] if b["type"] == "main_text")
    text["content"] += " (edited later)"
    return later


@pytest.mark.parametrize("start", ["existing", "new"])
def test_rolling_back_every_run_leaves_the_database_exactly_as_before(tmp_path, ledger, start):
    """Every table, FTS5's shadow tables and sqlite_master: the app's own chat is kept, the
    sink's tables go with the last run's writes. A new database ends as the app's schema."""
    if start == "existing":
        db = app_database(tmp_path / "cherrystudio.sqlite")
        app_writes(db)
        before = dump(db)
    else:
        db = tmp_path / "cherrystudio.sqlite"
        before = dump(app_database(tmp_path / "schema-only.sqlite", models=(), files=(), provider=False))
    extract_input(ledger, data.write_zip(tmp_path / "b.zip", data.rich()))
    first = replay_into(ledger, db)
    extract_input(ledger, data.write_zip(tmp_path / "b.zip", edited(data.rich())))
    second = replay_into(ledger, db)
    assert second.stats["written"] > 3 and rows(
        db, "SELECT count(*) FROM message WHERE data LIKE '%edited later%'"
    )

    assert rollback(ledger, sink(ledger, db), second.run_id).status == "succeeded"
    assert {"chatledger_markers", "chatledger_baseline"} <= set(dump(db))  # the first run still holds rows
    assert (tmp_path / "Data" / "Files" / f"{mapped_id(STREAM, 'file:f2')}.png").read_bytes() == data.PNG
    assert not rows(db, "SELECT count(*) FROM message WHERE data LIKE '%edited later%'")[0][0]
    undone = rollback(ledger, sink(ledger, db), first.run_id)
    assert undone.status == "succeeded", undone.stats
    assert (
        undone.stats["sink"]["markers_dropped"] == 1 and "fts_index_not_restored" not in undone.stats["sink"]
    )
    after = dump(db)
    assert {name for name in after if after[name] != before.get(name)} == set()
    assert after == before
    assert not (tmp_path / "Data").exists()  # the attachment and the folders made for it
    constraints_hold(db)
    checked = verify(ledger, sink(ledger, db), [STREAM])
    assert checked.counts["unexpected"] == 0 and checked.counts["ok"] == 0
    assert rows(db, "SELECT count(*) FROM message_fts WHERE message_fts MATCH 'hello'") == [
        (3 if start == "existing" else 0,)
    ]


def test_the_fts_index_is_left_as_the_triggers_keep_it_when_the_app_wrote_since(tmp_path, ledger):
    extract_input(ledger, data.write_zip(tmp_path / "b.zip", data.rich()))
    db = app_database(tmp_path / "cherrystudio.sqlite")
    first = replay_into(ledger, db)
    app_writes(db)  # the app ran in between
    undone = rollback(ledger, sink(ledger, db), first.run_id)
    assert undone.stats["sink"]["fts_index_not_restored"] == 1
    assert "chatledger_markers" not in dump(db) and "chatledger_baseline" not in dump(db)
    constraints_hold(db)
    assert rows(db, "SELECT count(*) FROM message_fts WHERE message_fts MATCH 'hello'") == [(3,)]


def test_a_new_database_is_created_from_the_apps_schema_and_a_dry_run_creates_nothing(tmp_path, ledger):
    extract_input(ledger, data.write_zip(tmp_path / "b.zip", data.rich()))
    db = tmp_path / "new" / "cherrystudio.sqlite"
    db.parent.mkdir()
    dry = replay_into(ledger, db, ReplaySettings(dry_run=True))
    assert not db.exists() and "does not exist yet" in dry.stats["check"]["notes"][0]
    preview = dry.stats["preview"]
    assert (preview["topics"], preview["messages_estimate"]) == (6, 33) and preview["rules"][
        "topics_skipped_empty"
    ] == 1
    assert replay_into(ledger, db).status == "succeeded"
    assert rows(db, "SELECT count(*) FROM topic") == [(6,)]
    assert rows(db, "SELECT count(*) FROM message WHERE role = 'root'") == [(6,)]
    assert rows(db, "SELECT count(*) FROM message WHERE model_id IS NOT NULL") == [(0,)]  # no user_model rows
    constraints_hold(db)


def test_a_topic_the_app_already_wrote_is_left_alone(tmp_path, ledger):
    extract_input(ledger, data.write_zip(tmp_path / "b.zip", data.rich()))
    db = app_database(tmp_path / "cherrystudio.sqlite")
    execute(
        db,
        "INSERT INTO topic (id, name, order_key, created_at, updated_at) VALUES ('t2', 'mine', 'a0', 1, 1)",
        "INSERT INTO message (id, topic_id, role, data, status, created_at, updated_at) "
        "VALUES ('app-root', 't2', 'root', '{\"parts\":[]}', 'success', 1, 1)",
    )
    result = replay_into(ledger, db)
    assert result.stats["sink"]["topics_existing_kept"] == 1
    assert rows(db, "SELECT name FROM topic WHERE id = 't2'") == [("mine",)]
    assert rows(db, "SELECT id FROM message WHERE topic_id = 't2'") == [("app-root",)]
    constraints_hold(db)
    assert verify(ledger, sink(ledger, db), [STREAM]).matches


def test_a_v6_direct_backup_made_by_chromium(tmp_path, ledger):
    """tests/data/cherry/v6 was written by headless Chromium (make_v6_fixture.py) from
    rich(): its IndexedDB and localStorage LevelDB folders read as the same chats."""
    pytest.importorskip("dfindexeddb")
    fixture = Path(__file__).parent / "data" / "cherry" / "v6"
    zipped = tmp_path / "cherry-studio.202403011000.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        for file in sorted(p for p in fixture.rglob("*") if p.is_file()):
            archive.write(file, file.relative_to(fixture).as_posix())
    expected = records_of(ledger, data.write_zip(tmp_path / "legacy.zip", data.rich()))
    for form in (fixture, zipped):
        found = records_of(ledger, form)
        assert {k: v for k, v in found.items() if not k.startswith("reject:")} == {
            k: v for k, v in expected.items() if not k.startswith("reject:")
        }
    extract_input(ledger, zipped)
    db = app_database(tmp_path / "cherrystudio.sqlite")
    assert replay_into(ledger, db).stats["sink"]["topics_written"] == 6
    constraints_hold(db)
    assert rows(db, "SELECT parent_id FROM message WHERE id = 'u7'") == [("c1",)]


def test_a_batch_is_one_transaction_even_after_a_released_savepoint(tmp_path, ledger, monkeypatch):
    """The markers' COPY runs in a savepoint; a failure after it undoes the whole batch."""
    from ledger.kit import Markers, PermanentError

    extract_input(ledger, data.write_zip(tmp_path / "b.zip", data.rich()))
    db = app_database(tmp_path / "cherrystudio.sqlite")
    before = dump(db)
    written = Markers.write

    def write_then_fail(self, conn, outcomes, versions, run_id):
        written(self, conn, outcomes, versions, run_id)
        raise PermanentError("the disk is full (injected after the markers)")

    monkeypatch.setattr(Markers, "write", write_then_fail)
    result = replay_into(ledger, db, ReplaySettings(batch_records=10_000))
    assert result.stats["written"] == 0 and result.stats["rejected_units"] > 0
    assert dump(db) == before  # no marker, and with nothing written the sink's tables went too


@pytest.mark.parametrize("engine_of", ["sink", "plain"])
def test_a_savepoint_first_in_a_transaction_is_not_committed_on_release(tmp_path, engine_of):
    """pysqlite opens its implicit transaction only before DML, so a SAVEPOINT that comes
    first starts the transaction itself and its RELEASE commits it. The sink's engine
    sends BEGIN itself (through the kit's target_engine); a plain SQLAlchemy engine shows
    the failure it prevents."""
    from sqlalchemy import create_engine, text

    from sinks.cherry_v2.database import engine_for

    path = tmp_path / "t.sqlite"
    engine = engine_for(path) if engine_of == "sink" else create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    with pytest.raises(RuntimeError), engine.begin() as conn:
        with conn.begin_nested():
            conn.execute(text("INSERT INTO t VALUES (1)"))
        raise RuntimeError("after the savepoint was released")
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT count(*) FROM t")).scalar()
    engine.dispose()
    assert kept == (0 if engine_of == "sink" else 1)
