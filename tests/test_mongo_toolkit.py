"""localstorage → mongo-toolkit end to end, on a real MongoDB wire-protocol server:
SecantusDB 0.7.0b3 (tests/mongo_server.py), not mongod. Every assertion reads the
documents back with pymongo. Inputs and the app's read path: tests/localstorage_mongo.py.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import signal
from collections import Counter
from pathlib import Path

import pytest
from bson import ObjectId
from sqlalchemy import select

from ledger import runs
from ledger.extract import ExtractSettings, extract
from ledger.kit import MARKER_FIELD, Item, SinkContext, SourceContext, Unit, document_id
from ledger.lookups import Lookups
from ledger.replay import replay
from ledger.replay.rollback import rollback
from ledger.replay.verify import verify
from ledger.schema import rejects, target_state, writes
from ledger.store import Ledger
from sinks.mongo_toolkit import MongoToolkitOptions, MongoToolkitSink
from sources.localstorage import LocalStorageOptions, LocalStorageSource
from tests import localstorage_mongo as data
from tests.conftest import run_cli
from tests.mongo_server import MongoDatabase

STREAM, TARGET = "browser", "app"


@pytest.fixture
def ledger(tmp_path):
    opened = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", blob_dir=tmp_path / "blobs")
    yield opened
    opened.close()


@pytest.fixture
def app(mongo_database):
    """The app's database with alice, bob and dave (and dave's own conversation)."""
    with mongo_database.client() as client:
        database = client[mongo_database.name]
        ids = data.seed_app(database)
        yield mongo_database, database, ids


def extract_inputs(ledger, owners: Path, stream: str = STREAM):
    source = LocalStorageSource(LocalStorageOptions(owners_file=owners), SourceContext(stream, ledger.blobs))
    return extract(ledger, source, settings=ExtractSettings(parallel=False))


def sink(ledger, mongo, **options) -> MongoToolkitSink:
    return MongoToolkitSink(
        MongoToolkitOptions(uri=mongo.uri, database=mongo.name, **options),
        SinkContext(TARGET, ledger.blobs, lookups=Lookups(ledger)),
    )


def ours(database) -> list[dict]:
    return list(database.conversations.find({MARKER_FIELD: {"$exists": True}}))


def reject_reasons(ledger) -> list[str]:
    with ledger.read() as conn:
        return [row.reason for row in conn.execute(select(rejects))]


def as_utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)


def test_every_conversation_lands_as_the_app_stores_it_and_a_second_run_writes_nothing(ledger, app, tmp_path):
    mongo, database, ids = app
    extract_inputs(ledger, data.write_inputs(tmp_path / "in"))
    first = replay(ledger, sink(ledger, mongo), [STREAM])
    assert first.status == "with-rejects"  # carol's user and conversation are rejected, nothing else
    reasons = reject_reasons(ledger)
    assert any("broken.json" not in r and "no user with username 'carol'" in r for r in reasons)
    assert any("conversation:carol/cc01: its owner user:carol is not a user" in r for r in reasons)
    assert any("found an object with keys conversations" in r for r in reasons)  # the malformed file

    documents = {doc["metadata"]["source"]["id"]: doc for doc in ours(database)}
    assert {cid: str(doc["user_id"]) for cid, doc in documents.items()} == {
        cid: str(ids[owner]) for cid, owner in data.LANDED.items()
    }
    assert database.conversations.count_documents({}) == len(data.LANDED) + 1  # and dave's own
    unicode, odd, newer = documents["lt1a"], documents["lt1b"], documents["lt1c"]
    source = data.alice_export()[0]
    assert unicode["_id"] == document_id(STREAM, "conversation:alice/lt1a")
    assert [m["id"] for m in unicode["messages"]] == [m["id"] for m in source["messages"]]  # browser ids
    assert [m["role"] for m in unicode["messages"]] == ["assistant", "user", "assistant", "user", "assistant"]
    assert unicode["messages"][0]["content"] == data.WELCOME  # the welcome message is kept
    assert (
        unicode["messages"][1]["content"] == data.UNICODE and unicode["messages"][4]["content"] == data.LONG
    )
    assert [m["timestamp"] for m in unicode["messages"]] == [m["timestamp"] for m in source["messages"]]
    assert unicode["messages"][2]["metrics"] == source["messages"][2]["metrics"]
    assert unicode["messages"][2]["model"] == "llama3.2" and "metrics" not in unicode["messages"][1]
    assert unicode["metadata"]["thinkingTimes"] == [1.25, 2.25] and unicode["metadata"]["responseCount"] == 2
    assert unicode["status"] == "active" and unicode["title"] == "Unicode"
    assert unicode["created_at"] == as_utc(source["createdAt"]) and unicode["created_at"].tzinfo is None
    assert odd["messages"][1]["content"] == '{"q":1,"list":[1,"é"]}' and odd["messages"][2]["content"] == "42"
    assert odd["messages"][1]["timestamp"] == odd["messages"][0]["timestamp"]  # repaired: the one before
    assert len(newer["messages"]) == 5  # the dump's newer copy won over the export's
    assert documents["bb02"]["messages"] == [documents["bb02"]["messages"][0]] and documents["bb02"][
        "title"
    ] == ("New Conversation")
    indexes = {tuple(index["key"].items()) for index in database.conversations.list_indexes()}
    assert {(("user_id", 1),), (("user_id", 1), ("created_at", -1))} <= indexes

    second = replay(ledger, sink(ledger, mongo), [STREAM])
    assert second.stats["written"] == 0
    assert {str(d["_id"]): d for d in ours(database)} == {str(d["_id"]): d for d in documents.values()}
    result = verify(ledger, sink(ledger, mongo), [STREAM])
    # + alice and bob; carol (no such user in the app) stays pending
    assert result.counts["ok"] == len(data.LANDED) + 2 and result.consistent and result.counts["pending"] > 0


def test_the_apps_read_path_lists_every_migrated_conversation_with_its_original_times(ledger, app, tmp_path):
    mongo, database, ids = app
    extract_inputs(ledger, data.write_inputs(tmp_path / "in"))
    replay(ledger, sink(ledger, mongo), [STREAM])
    originals = {
        c["id"]: c for c in data.alice_export() + json.loads(data.alice_dump()["ai-chat-conversations"])
    }
    originals |= {c["id"]: c for c in data.bob_export()}
    originals["lt1c"] = json.loads(data.alice_dump()["ai-chat-conversations"])[1]  # the newer copy
    for owner in ("alice", "bob"):
        listed = data.list_conversations(database, ids[owner])
        assert {c["metadata"]["source"]["id"] for c in listed} == {
            k for k, v in data.LANDED.items() if v == owner
        }
        assert [c["updated_at"] for c in listed] == sorted((c["updated_at"] for c in listed), reverse=True)
        for shown in listed:
            original = originals[shown["metadata"]["source"]["id"]]
            assert shown["user_id"] == str(ids[owner])
            assert dt.datetime.fromisoformat(shown["created_at"]) == as_utc(original["createdAt"])
            assert dt.datetime.fromisoformat(shown["updated_at"]) == as_utc(original["updatedAt"])
            assert len(shown["messages"]) == len(original["messages"])
    assert [c["title"] for c in data.list_conversations(database, ids["dave"])] == ["Dave's own"]


def test_user_id_as_a_string_matches_the_apps_list_query(ledger, app, tmp_path):
    mongo, database, ids = app
    extract_inputs(ledger, data.write_inputs(tmp_path / "in"))
    replay(ledger, sink(ledger, mongo, user_id_type="string"), [STREAM])
    assert len(data.list_conversations(database, str(ids["alice"]))) == 4
    assert data.list_conversations(database, ids["alice"]) == []


def test_rollback_leaves_the_collections_as_before(ledger, app, tmp_path):
    mongo, database, _ids = app
    before = data.snapshot(database)
    owners = data.write_inputs(tmp_path / "in")
    extract_inputs(ledger, owners)
    options = {"create_missing_users": True, "audit_log": True}
    first = replay(ledger, sink(ledger, mongo, **options), [STREAM])
    assert first.status == "succeeded"
    assert database.audit_logs.count_documents({}) == len(data.LANDED) + 1  # carol's too, with her user
    assert rollback(ledger, sink(ledger, mongo, **options), first.run_id).status == "succeeded"
    restored = data.snapshot(database)
    assert restored.pop("audit_logs", []) == [] and restored == before

    # a run that replaces one document: rolling it back restores what it replaced
    assert replay(ledger, sink(ledger, mongo, **options), [STREAM]).stats["written"] > 0
    replaced = data.snapshot(database, markers=False)
    export = data.bob_export()
    export[0]["title"] = "Bob renamed"
    (tmp_path / "in" / "bob.json").write_text(json.dumps(export), encoding="utf-8")
    extract_inputs(ledger, owners)
    changed = replay(ledger, sink(ledger, mongo, **options), [STREAM])
    assert changed.stats["written"] == 1
    assert database.conversations.find_one({"title": "Bob renamed"}) is not None
    undo = rollback(ledger, sink(ledger, mongo, **options), changed.run_id)
    assert undo.status == "succeeded"
    assert data.snapshot(database, markers=False) == replaced  # the marker names the rollback run
    assert database.conversations.find_one({"title": "Bob one"})[MARKER_FIELD]["run"] == undo.run_id


def test_missing_users_are_created_with_the_apps_defaults_and_no_password(ledger, app, tmp_path):
    mongo, database, _ids = app
    extract_inputs(ledger, data.write_inputs(tmp_path / "in"))
    result = replay(ledger, sink(ledger, mongo, create_missing_users=True, audit_log=True), [STREAM])
    assert result.status == "succeeded"
    assert result.stats["sink"]["users_created"] == 1 and result.stats["sink"]["users_matched"] == 2
    carol = database.users.find_one({"username": "carol"})
    assert carol["_id"] == document_id(STREAM, "user:carol")
    assert {k: carol[k] for k in ("email", "password_hash", "role", "is_active", "preferences")} == {
        "email": "carol@users.example.com",
        "password_hash": "",
        "role": "USER",
        "is_active": True,
        "preferences": {},
    }
    conversation = database.conversations.find_one({"user_id": carol["_id"]})
    entry = database.audit_logs.find_one({"resource_id": str(conversation["_id"])})
    assert {k: entry[k] for k in ("user_id", "username", "action", "method", "endpoint", "status_code")} == {
        "user_id": carol["_id"],
        "username": "carol",
        "action": "conversations.create",
        "method": "POST",
        "endpoint": "/conversations",
        "status_code": 201,
    }
    assert entry["request_data"] == {"title": "Carol's"} and entry["resource_type"] == "conversation"
    database.users.update_one({"_id": carol["_id"]}, {"$set": {"password_hash": "set-by-admin"}})
    again = replay(ledger, sink(ledger, mongo, create_missing_users=True, audit_log=True), [STREAM])
    assert again.stats["written"] == 0 and database.audit_logs.count_documents({}) == len(data.LANDED) + 1
    assert database.users.find_one({"_id": carol["_id"]})["password_hash"] == "set-by-admin"


def write_config(tmp_path: Path, mongo, owners: Path) -> Path:
    (tmp_path / "chatledger.toml").write_text(
        f"""
[ledger]
url = "sqlite:///{tmp_path / "cli.db"}"
[sources.{STREAM}]
type = "localstorage"
owners_file = "{owners}"
[targets.{TARGET}]
type = "mongo-toolkit"
uri = "env:APP_MONGODB_URL"
database = "{mongo.name}"
create_missing_users = true
streams = ["{STREAM}"]
"""
    )
    return tmp_path


def good_inputs(folder: Path) -> Path:
    """The inputs without the malformed file (the CLI runs exit 0)."""
    owners = data.write_inputs(folder)
    (folder / "broken.json").unlink()
    owners.write_text(json.dumps({"alice": ["alice"], "bob": ["bob.json"], "carol": "carol.json"}))
    return owners


def test_cli_migrate_twice_then_verify_exits_3_after_an_edit(app, tmp_path):
    mongo, database, _ids = app
    cwd = write_config(tmp_path, mongo, good_inputs(tmp_path / "in"))
    env = {"APP_MONGODB_URL": mongo.uri}
    first = run_cli("migrate", STREAM, TARGET, "--no-progress", "--json", cwd=cwd, env=env)
    assert first.returncode == 0, first.stderr
    second = run_cli("migrate", STREAM, TARGET, "--no-progress", "--json", cwd=cwd, env=env)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["replay"]["stats"]["written"] == 0
    assert mongo.uri not in first.stdout + first.stderr + second.stdout + second.stderr

    edited = database.conversations.find_one({"metadata.source.id": "lt1a"})
    database.conversations.update_one(
        {"_id": edited["_id"]}, {"$set": {"messages.1.content": "edited in the app"}}
    )
    checked = run_cli("verify", TARGET, "--no-progress", "--json", cwd=cwd, env=env)
    assert checked.returncode == 3, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    assert report["drifted"] == 1 and report["samples"]["drifted"] == [f"{STREAM} conversation:alice/lt1a"]


POINTS = ("replay.apply", "replay.record.before", "replay.record.after")


def crash_and_rerun(mongo, database, tmp_path: Path, failpoint: str) -> tuple[bool, int]:
    """Replay through the CLI with ``failpoint`` (SIGKILL), replay again, and check the
    target: every conversation once, as a clean run writes it, markers agreeing with
    ``target_state``, no record inserted twice. Returns (killed, records reconciled)."""
    cwd = write_config(tmp_path, mongo, good_inputs(tmp_path / "in"))
    env = {"APP_MONGODB_URL": mongo.uri}
    assert run_cli("extract", STREAM, "--no-progress", cwd=cwd, env=env).returncode == 0
    args = ("replay", TARGET, "--batch-size", "4", "--no-progress")
    first = run_cli(*args, cwd=cwd, env={**env, "CHATLEDGER_FAILPOINTS": failpoint})
    assert first.returncode in (0, -signal.SIGKILL), first.stderr
    again = run_cli(*args, cwd=cwd, env=env)
    assert again.returncode == 0, again.stderr
    documents = ours(database)
    assert len(documents) == len(data.LANDED) + 1  # carol's is created
    assert len({d["metadata"]["source"]["key"] for d in documents}) == len(documents)
    assert {d["metadata"]["source"]["key"]: len(d["messages"]) for d in documents} == CLEAN_MESSAGE_COUNTS
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'cli.db'}", blob_dir=tmp_path / "cli.blobs")
    try:
        reconciled = runs.list_runs(ledger, target=TARGET, limit=1)[0].stats["reconciled"]
        with ledger.read() as conn:
            held = {
                (row.stream, row.key, row.version, row.hash)
                for row in conn.execute(select(target_state).where(target_state.c.target == TARGET))
            }
            inserts = Counter(
                row.key for row in conn.execute(select(writes.c.key).where(writes.c.action == "insert"))
            )
        assert verify(ledger, sink(ledger, mongo, create_missing_users=True), [STREAM]).matches
    finally:
        ledger.close()
    marked = {
        tuple(record)
        for collection in ("users", "conversations")
        for doc in database[collection].find({MARKER_FIELD: {"$exists": True}})
        for record in doc[MARKER_FIELD]["records"]
    }
    matched_users = {(STREAM, "user:alice"), (STREAM, "user:bob")}  # matched, so never marked
    assert {m for m in held if m[:2] not in matched_users} == marked
    assert max(inserts.values()) == 1, "a record was inserted twice"
    return first.returncode == -signal.SIGKILL, reconciled


CLEAN_MESSAGE_COUNTS = {
    "conversation:alice/lt1a": 5,
    "conversation:alice/lt1b": 3,
    "conversation:alice/lt1c": 5,
    "conversation:alice/lt1d": 3,
    "conversation:bob/bb01": 3,
    "conversation:bob/bb02": 1,
    "conversation:carol/cc01": 3,
}


def test_sigkill_mid_replay_then_a_rerun_heals_from_the_markers(app, tmp_path):
    mongo, database, _ids = app
    killed, reconciled = crash_and_rerun(mongo, database, tmp_path, "replay.record.before=2")
    assert killed and reconciled > 0, "the written batch was not healed from the markers"


@pytest.mark.stress
def test_sigkill_replay_at_random_points(mongo_server, tmp_path):
    chance = random.Random(2026)
    healed = 0
    for trial in range(20):
        mongo = MongoDatabase(mongo_server, f"chatledger_stress_{trial}")
        point, hit = chance.choice(POINTS), chance.randint(1, 4)
        with mongo.client() as client:
            database = client[mongo.name]
            data.seed_app(database)
            killed, reconciled = crash_and_rerun(mongo, database, tmp_path / str(trial), f"{point}={hit}")
            client.drop_database(mongo.name)
        healed += killed and point == "replay.record.before" and reconciled > 0
    assert healed, "no trial killed a replay between the target's write and the ledger's commit"


#: The convex fixture has an ownerless thread and messages without their thread: the sink
#: skips them (Outcome.skip), which the ledger records as skips with their reasons.
@pytest.mark.parametrize("kind", ["synthetic", "librechat", "convex"])
def test_other_sources_replay_into_mongo_toolkit_with_no_rejects(kind, mongo_database, tmp_path):
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", blob_dir=tmp_path / "blobs")
    try:
        stream = extract_other(kind, ledger, tmp_path)
        result = replay(ledger, sink(ledger, mongo_database, create_missing_users=True), [stream])
        assert result.status == "succeeded", reject_reasons(ledger)
        assert result.stats["rejected_units"] == 0 and result.stats["written"] > 0
        assert verify(ledger, sink(ledger, mongo_database, create_missing_users=True), [stream]).matches
        if kind == "synthetic":  # edits and regenerations: the active branch shows, the rest is kept
            assert result.stats["sink"]["messages_off_branch"] > 0
        with mongo_database.client() as client:
            database = client[mongo_database.name]
            for document in database.conversations.find():
                assert isinstance(document["user_id"], ObjectId)
                assert database.users.find_one({"_id": document["user_id"]}) is not None
                assert all(isinstance(m["content"], str) for m in document["messages"])
                shown = len(document["messages"]) + len(document["metadata"].get("other_branches", []))
                assert shown == len(document[MARKER_FIELD]["records"]) - 1  # every message, once
    finally:
        ledger.close()


def extract_other(kind: str, ledger, tmp_path: Path) -> str:
    if kind == "synthetic":
        from tests.test_replay import synthetic

        synthetic(ledger, users=3)
        return "syn"
    if kind == "librechat":
        from tests.librechat_onyx import fixtures
        from tests.librechat_onyx.harness import run_extract

        run_extract(ledger, "lc", dump_path=fixtures.write_dump(tmp_path / "dump"))
        return "lc"
    from tests.convex_laravel import data as convex_data
    from tests.convex_laravel.exports import write_export
    from tests.convex_laravel.harness import extract_export

    extract_export(ledger, write_export(tmp_path / "export.zip", convex_data.rich()), stream="cx")
    return "cx"


def test_ownerless_conversations_and_messages_without_their_record_are_skipped(ledger, mongo_database):
    """The sink's side of the Convex case, without the engine: skips with the reason."""
    target = sink(ledger, mongo_database)
    target.open()
    try:
        text = {"conversation": "conversation:c1", "parts": [{"type": "text", "text": "hi"}]}
        orphan = Item("x", "message:m1", "message", 1, "h1", {"data": text}, conversation="conversation:c1")
        anonymous = Item(
            "x", "conversation:c2", "conversation", 1, "h2", {"data": {"title": "t", "owner": None}}
        )
        outcomes = target.apply(
            [
                Unit("conversation:c1", "conversation", [orphan]),
                Unit("conversation:c2", "conversation", [anonymous]),
            ],
            run_id=1,
        )
        assert [(o.key, o.action) for o in outcomes] == [("message:m1", "skip"), ("conversation:c2", "skip")]
        assert "without their conversation record" in outcomes[0].reason and "no owner" in outcomes[1].reason
        assert target.counters == {
            "conversations_skipped_without_record": 1,
            "conversations_skipped_ownerless": 1,
            "conversations_written": 0,
            "conversations_removed": 0,
        }
        with mongo_database.client() as client:
            assert client[mongo_database.name].conversations.count_documents({}) == 0
    finally:
        target.close()
