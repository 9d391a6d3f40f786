"""The localstorage source: file shapes, owners, the mapping rules and what is counted.
No server needed; inputs are written the way the AI MCP Toolkit's frontend writes them
(tests/localstorage_mongo.py)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from ledger.errors import ConfigError
from ledger.extract import ExtractSettings, extract
from ledger.kit import SourceContext
from ledger.schema import rejects
from ledger.store import Ledger
from sources.localstorage import LocalStorageOptions, LocalStorageSource
from sources.localstorage.mapping import js_stringify
from tests import localstorage_mongo as data
from tests.conftest import head_rows
from tests.librechat_onyx.harness import records


@pytest.fixture
def ledger(tmp_path):
    opened = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", blob_dir=tmp_path / "blobs")
    yield opened
    opened.close()


def source(ledger, stream="ls", **options) -> LocalStorageSource:
    return LocalStorageSource(LocalStorageOptions(**options), SourceContext(stream, ledger.blobs))


def run(ledger, stream="ls", **options):
    return extract(ledger, source(ledger, stream, **options), settings=ExtractSettings(parallel=False))


def reject_rows(ledger):
    with ledger.read() as conn:
        return [(row.location, row.reason) for row in conn.execute(select(rejects))]


def test_exports_and_raw_dumps_read_alike_and_the_rules_hold(ledger, tmp_path):
    owners = data.write_inputs(tmp_path / "in")
    described = source(ledger, owners_file=owners).describe()
    assert described["totals"] == {
        "conversations": 7,
        "messages": 23,
        "welcome_messages": 7,
        "timestamps_repaired": 1,
        "contents_stringified": 2,
        "duplicates_skipped": 1,
        "rejected": 1,
    }
    assert [scope.name for scope in source(ledger, owners_file=owners).scopes()] == [
        "file:alice/alice/ai-conversations-2024-03-05.json",
        "file:alice/alice/localstorage.json",
        "file:bob/bob.json",
        "file:bob/broken.json",
        "file:carol/carol.json",
    ]
    result = run(ledger, owners_file=owners)
    assert result.status == "with-rejects"  # bob's broken.json is one reject; the rest landed
    found = records(ledger, "ls")
    assert sorted(k for k in found if k.startswith("user:")) == ["user:alice", "user:bob", "user:carol"]
    assert sorted(k.split("/")[-1] for k in found if k.startswith("conversation:")) == sorted(
        [*data.LANDED, "cc01"]
    )
    welcome = found["message:alice/lt1a/lt1aw"]["data"]
    assert (
        welcome["metadata"]["welcome"] is True
        and welcome["role"] == "assistant"
        and welcome["parent"] is None
    )
    question = found["message:alice/lt1a/lt1au0"]["data"]
    assert question["parent"] == "message:alice/lt1a/lt1aw" and question["parts"][0]["text"] == data.UNICODE
    answer = found["message:alice/lt1a/lt1aa1"]["data"]
    assert answer["usage"] == {"input_tokens": 13, "output_tokens": 30, "total_tokens": 43}
    assert answer["metadata"]["metrics"]["tokensPerSecond"] == 42.5 and answer["model"] == "llama3.2"
    head = found["conversation:alice/lt1a"]["data"]
    assert head["active_leaf"] == "message:alice/lt1a/lt1aa1" and head["owner"] == "user:alice"
    assert head["metadata"]["thinkingTimes"] == [1.25, 2.25] and head["metadata"]["source_id"] == "lt1a"
    odd = found["message:alice/lt1b/lt1bu0"]["data"]
    assert odd["parts"][0]["text"] == '{"q":1,"list":[1,"é"]}' and odd["metadata"]["content_stringified"]
    assert odd["metadata"]["repaired"] == {"timestamp": "yesterday at noon"}
    assert odd["created_at"] == found["message:alice/lt1b/lt1bw"]["data"]["created_at"]
    assert found["message:alice/lt1b/lt1ba0"]["data"]["parts"][0]["text"] == "42"
    assert len([k for k in found if k.startswith("message:alice/lt1c/")]) == 5  # the dump's newer copy
    assert found["message:alice/lt1c/lt1cw"]["raw"]["content"] == data.WELCOME
    ((location, reason),) = reject_rows(ledger)
    assert location.endswith("broken.json")
    assert reason == (
        "not a localStorage conversation export: expected an array of conversations or an object "
        "with an 'ai-chat-conversations' string; found an object with keys conversations"
    )
    again = run(ledger, owners_file=owners)
    assert again.stats["events"] == 0


def test_a_file_that_turns_bad_is_rejected_and_deletes_nothing(ledger, tmp_path):
    export = tmp_path / "ai-conversations-2024-03-05.json"
    export.write_text(json.dumps(data.bob_export()))
    assert run(ledger, paths=[tmp_path], owner_username="bob").status == "succeeded"
    kept = head_rows(ledger, "ls")
    export.write_text(json.dumps({"ai-chat-conversations": data.bob_export()}))  # parsed, not a string
    run(ledger, paths=[tmp_path], owner_username="bob")
    assert head_rows(ledger, "ls") == kept
    ((_, reason),) = reject_rows(ledger)
    assert "the 'ai-chat-conversations' value is an array, not the JSON string localStorage holds" in reason
    export.write_text("{not json")
    run(ledger, paths=[tmp_path], owner_username="bob")
    assert head_rows(ledger, "ls") == kept and "not JSON" in reject_rows(ledger)[-1][1]


def test_a_bad_conversation_or_message_is_rejected_and_the_rest_lands(ledger, tmp_path):
    good = data.bob_export()
    good[1]["messages"].append("not a message")
    del good[1]["createdAt"]  # repaired from its earliest message
    good[1]["updatedAt"] = 1709286000000  # epoch milliseconds: read, and counted as repaired
    content = [good[0], {"title": "no id", "messages": []}, 7, good[1]]
    (tmp_path / "dump.json").write_text(json.dumps({"ai-chat-conversations": json.dumps(content)}))
    described = source(ledger, paths=[tmp_path / "dump.json"], owner_username="bob").describe()
    assert described["totals"]["rejected"] == 3 and described["totals"]["timestamps_repaired"] == 2
    run(ledger, paths=[tmp_path / "dump.json"], owner_username="bob")
    found = records(ledger, "ls")
    assert {k for k in found if k.startswith("conversation:")} == {
        "conversation:bob/bb01",
        "conversation:bob/bb02",
    }
    repaired = found["conversation:bob/bb02"]["data"]
    assert (
        repaired["created_at"] == "2024-03-07T09:30:00Z" and repaired["updated_at"] == "2024-03-01T09:40:00Z"
    )
    assert repaired["metadata"]["repaired"] == {"createdAt": None, "updatedAt": 1709286000000}
    reasons = sorted(reason for _, reason in reject_rows(ledger))
    assert reasons == [
        "a conversation must be an object, found int",
        "a message must be an object",
        "the conversation has no id",
    ]
    assert all("dump.json[" in location for location, _ in reject_rows(ledger))


def test_owners_are_named_exactly_once(ledger, tmp_path):
    (tmp_path / "a.json").write_text("[]")
    with pytest.raises(ConfigError, match=r"owner_username .* or owners_file"):
        source(ledger, paths=[tmp_path])
    with pytest.raises(ConfigError, match="owner_username needs paths"):
        source(ledger, owner_username="x")
    owners = tmp_path / "owners.json"
    owners.write_text(json.dumps({"x": "a.json", "y": ["a.json"]}))
    with pytest.raises(ConfigError, match="two owners"):
        list(source(ledger, owners_file=owners).scopes())
    owners.write_text(json.dumps(["a.json"]))
    with pytest.raises(ConfigError, match="must be an object mapping usernames"):
        list(source(ledger, owners_file=owners).scopes())
    with pytest.raises(ConfigError, match="does not exist"):
        list(source(ledger, paths=[tmp_path / "missing.json"], owner_username="x").scopes())


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"b": 1.0, "a": [1.5, None, True, "é\n"]}, '{"b":1,"a":[1.5,null,true,"é\\n"]}'),
        (1e21, "1e+21"),
        (1.5e-7, "1.5e-7"),
        (0.000001, "0.000001"),
        (123456789012345680000.0, "123456789012345680000"),
        ([], "[]"),
    ],
)
def test_non_string_content_is_stringified_like_json_stringify(value, text):
    assert js_stringify(value) == text
