"""The librechat source against a live MongoDB wire-protocol server (SecantusDB 0.7.0b3,
not mongod: tests/mongo_server.py), real BSON dump files (written with pymongo's ``bson``)
and LibreChat JSON exports. No test here needs mongomock any more.
Fixtures: tests/librechat_onyx/fixtures.py (edits, regenerations, agent content parts,
present and missing files, orphans, a temporary chat, two users with colliding ids)."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from sqlalchemy import select

from ledger.errors import ConfigError
from ledger.schema import events, rejects
from ledger.store import Ledger
from sources.librechat.assets import Assets
from sources.librechat.tree import build_tree
from tests.librechat_onyx import fixtures
from tests.librechat_onyx.fixtures import (
    ADA,
    BOB,
    CAROL,
    EDITS,
    FILES,
    MULTI,
    NO_PARENT,
    TEMPORARY,
    uid,
)
from tests.librechat_onyx.harness import records, run_extract, source

MONGO = "mongodb://mongo.example:27017"


def key(user, conversation, message=None):
    if message is None:
        return f"conversation:{user}/{conversation}"
    return f"message:{user}/{conversation}/{uid(message)}"


@pytest.fixture
def assets(tmp_path):
    return fixtures.write_assets(tmp_path / "librechat")


@pytest.fixture
def dump(tmp_path):
    return fixtures.write_dump(tmp_path / "dump")


@pytest.fixture
def local_ledger(tmp_path):
    opened = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", blob_dir=tmp_path / "blobs")
    yield opened
    opened.close()


def rejects_of(ledger):
    with ledger.read() as conn:
        return [dict(row._mapping) for row in conn.execute(select(rejects))]


def test_live_mongo_and_a_dump_give_the_same_records(ledger, dump, assets, mongo_database):
    with mongo_database.client() as client:
        fixtures.load_mongo(client[mongo_database.name])
    live = run_extract(
        ledger, "live", mongo_uri=mongo_database.uri, database=mongo_database.name, asset_roots=[assets]
    )
    dumped = run_extract(ledger, "dump", dump_path=dump, asset_roots=[assets])
    assert live.status == dumped.status == "with-rejects"  # the fixture has one stray message
    from_live, from_dump = records(ledger, "live"), records(ledger, "dump")
    assert len(from_live) == 3 + 4 + 17 + 7  # users, conversations, messages, files
    assert {k: (d["data"], d["raw"], d["refs"]) for k, d in from_live.items()} == {
        k: (d["data"], d["raw"], d["refs"]) for k, d in from_dump.items()
    }
    again = run_extract(ledger, "dump", dump_path=dump, asset_roots=[assets])
    assert again.stats["events"] == 0 and again.stats["scopes"]["unchanged"] == 3


def test_records_follow_librechat_rules(local_ledger, dump, assets):
    result = run_extract(local_ledger, dump_path=dump, asset_roots=[assets])
    found = records(local_ledger)
    ada = found[f"user:{ADA}"]
    assert ada["data"]["email"] == "ada@example.com"
    assert (
        not {"password", "totpSecret", "backupCodes"} & set(ada["raw"])
        and ada["raw"]["emailVerified"] is True
    )
    assert found[f"user:{BOB}"]["data"]["external_ids"]["googleId"] == "g-123"

    edits = found[key(ADA, EDITS)]["data"]
    assert (edits["pinned"], edits["archived"], edits["tags"], edits["system_prompt"]) == (
        True,
        False,
        ["work"],
        "Be brief.",
    )
    assert edits["metadata"]["shared"] is True and edits["metadata"]["share_ids"] == ["share-1"]
    assert edits["active_leaf"] == key(ADA, EDITS, "a2e")  # the newest sibling at each level
    assert found[key(ADA, FILES)]["data"]["archived"] is True

    def message(conversation, name):
        return found[key(ADA, conversation, name)]["data"]

    assert message(EDITS, "u1")["parent"] is None  # NO_PARENT: a first message
    assert message(EDITS, "a1b")["parent"] == message(EDITS, "a1")["parent"] == key(ADA, EDITS, "u1")
    assert message(EDITS, "u2e")["parent"] == key(ADA, EDITS, "a1b")
    assert message(EDITS, "a2")["feedback"] == {"rating": "up", "tag": {"key": "accurate"}, "text": "nice"}
    assert message(EDITS, "a2")["usage"] == {"tokens": 12}
    agent = message(EDITS, "a2e")
    assert [part["type"] for part in agent["parts"]] == ["reasoning", "text", "tool_call", "image", "other"]
    assert agent["parts"][1] == {"type": "text", "text": "Short answer."}
    assert agent["parts"][2]["name"] == "web_search" and agent["parts"][2]["output"] == "3 results"
    assert agent["parts"][4]["native"]["type"] == "agent_update"
    assert agent["files"] == [f"file:{ADA}/{fixtures.AGENT_IMAGE_ID}"]
    error = message(FILES, "a1")
    assert error["status"] == "error" and error["parts"] == [
        {"type": "error", "text": "Upstream error: 529 overloaded"}
    ]
    orphan = message(FILES, "orphan")
    assert orphan["parent"] is None and orphan["metadata"]["orphan_of"] == uid("gone")
    assert message(MULTI, "a1-added")["parent"] == key(ADA, MULTI, "a1")  # assistant under assistant
    assert message(MULTI, "a2")["status"] == "aborted"

    # Bob reuses Ada's message ids and one of her conversationIds: his keys stay apart
    assert key(BOB, FILES, "u1") in found and key(ADA, FILES, "u1") in found
    assert found[key(BOB, FILES, "u1")]["data"]["parts"][0]["text"] == "Bob asks"
    assert [r["reason"] for r in rejects_of(local_ledger)] == [
        "1 message(s) whose conversation document is missing: not migrated"
    ]
    assert result.stats["kinds"]["message"]["new"] == 17


def test_files_are_hashed_under_the_asset_roots_or_missing_with_the_reason(local_ledger, dump, assets):
    run_extract(local_ledger, dump_path=dump, asset_roots=[assets])
    files = {
        k.rsplit("/", 1)[1]: d["data"] for k, d in records(local_ledger).items() if k.startswith("file:")
    }
    upload = files[fixtures.UPLOAD_ID]
    assert (
        upload["sha256"] == hashlib.sha256(fixtures.PDF).hexdigest()
        and upload["blob"] == f"sha256:{upload['sha256']}"
    )
    assert local_ledger.blobs.read(upload["sha256"]) == fixtures.PDF
    assert (upload["filename"], upload["mime"], upload["size"], upload["missing"]) == (
        "report.pdf",
        "application/pdf",
        len(fixtures.PDF),
        None,
    )
    assert files[fixtures.IMAGE_ID]["sha256"] == hashlib.sha256(fixtures.PNG).hexdigest()
    assert "stored in s3" in files[fixtures.S3_ID]["missing"]
    assert files[fixtures.OPENAI_ID]["missing"] == "LibreChat keeps no bytes for source openai"
    assert "expired temporary upload" in files[fixtures.EXPIRED_ID]["missing"]
    assert "escapes the asset roots" in files[fixtures.ESCAPE_ID]["missing"]
    assert all(
        files[name]["sha256"] is None
        for name in (fixtures.S3_ID, fixtures.OPENAI_ID, fixtures.EXPIRED_ID, fixtures.ESCAPE_ID)
    )


def test_asset_roots_serve_their_prefix_and_never_outside(tmp_path):
    images, uploads = tmp_path / "srv" / "images", tmp_path / "srv" / "uploads"
    (images / "u1").mkdir(parents=True)
    (uploads / "u1").mkdir(parents=True)
    (images / "u1" / "a.png").write_bytes(b"png")
    (uploads / "u1" / "f__b.txt").write_bytes(b"txt")
    (tmp_path / "secret.txt").write_bytes(b"secret")
    os.symlink(tmp_path / "secret.txt", images / "u1" / "link.png")
    for roots in ([images, uploads], [tmp_path / "srv"]):
        assets = Assets(roots)
        assert assets.locate("/images/u1/a.png")[0].read_bytes() == b"png"
        assert assets.locate("/uploads/u1/f__b.txt")[0].read_bytes() == b"txt"
        assert assets.locate("/images/u1/link.png") == (
            None,
            "filepath '/images/u1/link.png' escapes the asset roots",
        )
        assert "escapes" in assets.locate("/uploads/../../secret.txt")[1]
        assert "not under /images/ or /uploads/" in assets.locate("https://s3/x.png")[1]
    assert Assets([images]).locate("/uploads/u1/f__b.txt")[0] is None  # an images/ root serves only /images/


def test_tree_rules_orphans_cycles_and_the_displayed_branch():
    tree = build_tree(
        [("a", NO_PARENT), ("b", "a"), ("c", "a"), ("d", "gone"), ("x", "y"), ("y", "x"), ("z", "y")]
    )
    assert tree.parents["b"] == tree.parents["c"] == "a"
    assert tree.parents["d"] is None and tree.orphans["d"] == "gone"
    assert tree.parents["x"] is None and tree.orphans["x"] == "y"  # the oldest of the cycle is re-rooted
    assert tree.parents["y"] == "x" and tree.parents["z"] == "y"
    assert tree.active_leaf == "z"  # newest root (x, after a and d), then newest child at each level
    assert build_tree([("a", None), ("b", "a"), ("c", "a")]).active_leaf == "c"


def test_temporary_chats_are_skipped_unless_asked(local_ledger, dump):
    run_extract(local_ledger, dump_path=dump)
    assert key(ADA, TEMPORARY) not in records(local_ledger)
    run_extract(local_ledger, dump_path=dump, include_temporary=True)
    found = records(local_ledger)
    assert found[key(ADA, TEMPORARY)]["data"]["metadata"]["temporary"] is True
    assert found[key(ADA, TEMPORARY, "t1")]["data"]["parts"] == [{"type": "text", "text": "Forget this"}]


def test_reextraction_versions_changes_and_deletes_only_in_complete_scopes(local_ledger, tmp_path):
    data = fixtures.dataset()
    fixtures.write_dump(tmp_path / "d1", data)
    run_extract(local_ledger, dump_path=tmp_path / "d1")
    data["conversations"] = [c for c in data["conversations"] if c["conversationId"] != MULTI]
    data["messages"] = [m for m in data["messages"] if m["conversationId"] != MULTI]
    edited = next(m for m in data["messages"] if m["messageId"] == uid("a2") and m["conversationId"] == EDITS)
    edited["text"] = "More details, edited."
    fixtures.write_dump(tmp_path / "d2", data)

    trial = run_extract(
        local_ledger, dump_path=tmp_path / "d2", max_conversations=1
    )  # partial: never deletes
    assert sum(kind["deleted"] for kind in trial.stats["kinds"].values()) == 0
    assert trial.stats["kinds"]["message"]["changed"] == 1  # the edit is in Ada's first conversation
    assert key(ADA, MULTI) in records(local_ledger)

    filtered = run_extract(local_ledger, dump_path=tmp_path / "d2", user_emails=["bob@example.com"])
    assert filtered.stats["scopes"]["vanished"] == 0 and f"user:{CAROL}" in records(local_ledger)

    full = run_extract(local_ledger, dump_path=tmp_path / "d2")
    kinds = full.stats["kinds"]
    assert kinds["conversation"]["deleted"] == 1 and kinds["message"]["deleted"] == 5
    assert records(local_ledger)[key(ADA, EDITS, "a2")]["data"]["parts"][0]["text"] == "More details, edited."
    # Bob was read completely from this dump by the filtered run: his fingerprint skips him
    assert (full.stats["scopes"]["read"], full.stats["scopes"]["unchanged"]) == (2, 1)


def test_a_damaged_dump_lands_the_rest_and_deletes_nothing(local_ledger, tmp_path):
    folder = fixtures.write_dump(tmp_path / "dump")
    run_extract(local_ledger, dump_path=folder)
    before = len(records(local_ledger))
    messages = folder / "LibreChat" / "messages.bson"
    body = messages.read_bytes()
    messages.write_bytes(body[: len(body) - 30])  # the last document is cut short
    result = run_extract(local_ledger, dump_path=folder)
    assert result.status == "with-rejects"
    reasons = [
        (r["location"], r["reason"]) for r in rejects_of(local_ledger) if "messages.bson" in r["location"]
    ]
    assert len(reasons) == 1 and "truncated BSON document" in reasons[0][1]
    assert sum(kind["deleted"] for kind in result.stats["kinds"].values()) == 0
    assert len(records(local_ledger)) == before
    with local_ledger.read() as conn:
        assert conn.execute(select(events).where(events.c.op == "delete")).first() is None


def test_a_gzip_dump_reads_like_a_plain_one(local_ledger, tmp_path, assets):
    plain = fixtures.write_dump(tmp_path / "plain")
    packed = fixtures.write_dump(tmp_path / "packed", gz=("messages", "conversations", "files"))
    run_extract(local_ledger, "plain", dump_path=plain, asset_roots=[assets])
    result = run_extract(local_ledger, "packed", dump_path=packed / "LibreChat", asset_roots=[assets])
    assert result.status == "with-rejects"
    assert {k: d["data"] for k, d in records(local_ledger, "plain").items()} == {
        k: d["data"] for k, d in records(local_ledger, "packed").items()
    }
    assert any(f["file"] == "messages.bson.gz" for f in result.stats["source"]["files"])


def test_json_exports_flat_and_recursive(local_ledger, tmp_path, dump):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "edits.json").write_text(json.dumps(fixtures.export_json(EDITS, recursive=True)))
    (folder / "multi.json").write_text(json.dumps(fixtures.export_json(MULTI, recursive=False)))
    (folder / "broken.json").write_text("{not json")
    result = run_extract(local_ledger, "exports", export_paths=[folder], owner_email="Ada@Example.com")
    assert result.status == "with-rejects"
    exported = records(local_ledger, "exports")
    run_extract(local_ledger, dump_path=dump)
    from_dump = records(local_ledger)
    owner = next(k for k in exported if k.startswith("user:")).split(":", 1)[1]
    assert exported[f"user:{owner}"]["data"]["email"] == "ada@example.com"

    def shape(found, user, conversation):
        prefix = f"message:{user}/{conversation}/"
        return {
            k[len(prefix) :]: (d["data"]["parent"] or "").rsplit("/", 1)[-1]
            for k, d in found.items()
            if k.startswith(prefix)
        }

    for conversation in (EDITS, MULTI):
        assert shape(exported, owner, conversation) == shape(from_dump, ADA, conversation)
        leaf = exported[f"conversation:{owner}/{conversation}"]["data"]["active_leaf"].rsplit("/", 1)[-1]
        assert leaf == from_dump[key(ADA, conversation)]["data"]["active_leaf"].rsplit("/", 1)[-1]
    assert [r["reason"] for r in rejects_of(local_ledger)][:1] and any(
        "not a readable JSON file" in r["reason"] and "broken.json" in r["location"]
        for r in rejects_of(local_ledger)
    )
    with pytest.raises(ConfigError, match="owner_email"):
        source(local_ledger, "x", export_paths=[folder])


def test_the_options_name_exactly_one_input(local_ledger, dump, tmp_path):
    with pytest.raises(ConfigError, match="exactly one input"):
        source(local_ledger, dump_path=dump, mongo_uri=MONGO)
    with pytest.raises(ConfigError, match="exactly one input"):
        source(local_ledger)
    with pytest.raises(ConfigError, match="not a mongodump folder"):
        source(local_ledger, dump_path=tmp_path).scopes().__next__()
    listed = tmp_path / "users.txt"
    listed.write_text("# pilot users\nBOB@example.com\n\nnobody@example.com  # left the company\n")
    facts = source(local_ledger, dump_path=dump, users_file=listed)
    assert facts.exhaustive is False
    assert [scope.name for scope in facts.scopes()] == [f"user:{BOB}"]
    assert facts.describe()["emails_not_found"] == ["nobody@example.com"]
