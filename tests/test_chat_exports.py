"""The export sources (chatgpt, claude, openwebui, chatbotui) end to end.

Real samples (tests/data/exports/, see its README) and generated ones
(tests/exports/samples/, one module per format) are extracted into a SQLite ledger and replayed into the
``sql`` sink (a SQLite file; the Open WebUI database case reads Postgres and writes a
Postgres target). Every assertion reads the target or the ledger back: each message of
the input with its parent, the file's active leaf, the rejects and what they name, file
bytes by sha256, and that a second run writes nothing.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from ledger.exports import JsonValues, build_tree, moment
from ledger.formats import format_name
from ledger.kit import MESSAGE_ROLES, MESSAGE_STATUSES, PART_TYPES, Record, SourceContext
from ledger.records import record_hash
from ledger.replay import ReplaySettings, replay
from ledger.store import Ledger, normalize_url
from sources.chatbotui import ChatbotUIOptions, ChatbotUISource
from sources.chatgpt import ChatGPTOptions, ChatGPTSource
from sources.claude import ClaudeOptions, ClaudeSource
from sources.openwebui import OpenWebUIOptions, OpenWebUISource
from tests.conftest import run_cli
from tests.exports import samples
from tests.exports.harness import Target, assert_target, migrate, reject_rows, run_extract
from tests.exports.samples import PDF, PNG, Expected

DATA = Path(__file__).parent / "data" / "exports"


@pytest.fixture
def ledger(tmp_path):
    opened = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", blob_dir=tmp_path / "blobs")
    yield opened
    opened.close()


@pytest.fixture
def target(tmp_path) -> Target:
    return Target(f"sqlite:///{tmp_path / 'target.db'}")


def data_of(target: Target, table: str, stream: str) -> dict[str, dict]:
    return {key: json.loads(data) for key, data in target.rows(table, "key, data", stream)}


def assert_second_run_writes_nothing(ledger, target, source_class, options, stream):
    """A second pass adds no events and writes nothing. The fingerprint (the file's
    sha256) proves a scope unchanged, so it is not read again — a scope whose deletes were
    withheld included (its rejects are recorded once, not again)."""
    again, replayed = migrate(ledger, target, source_class, options, stream)
    assert again.stats["events"] == 0
    scopes = again.stats["scopes"]
    assert (scopes["read"], scopes["unchanged"]) == (0, scopes["listed"])
    assert replayed.stats["written"] == 0


# -- ChatGPT ------------------------------------------------------------------------------------


def test_chatgpt_zip_every_branch_files_tools_reasoning_citations(ledger, target, tmp_path):
    path, expected = samples.chatgpt_zip(tmp_path)
    options = ChatGPTOptions(path=[path])
    extracted, _ = migrate(ledger, target, ChatGPTSource, options, "gpt")
    assert_target(target, "gpt", expected)

    locations = reject_rows(ledger, extracted.run_id)
    assert len(locations) == 2 and extracted.stats["rejects"] == 2
    corrupt = [reason for where, reason in locations if "c0000005-corrupt" in where]
    assert corrupt == ["the conversation has no mapping (its message tree)"]
    assert any(where.endswith("conversations.json[5]") for where, _ in locations)

    conversations = data_of(target, "conversations", "gpt")
    branchy = conversations["conversation:c0000001-branches"]
    assert branchy["system_prompt"] == "I am Zoë.\n\nAnswer in Deutsch."
    assert branchy["archived"] is True and branchy["title"] == "Überblick 🌍 — 日本語のテスト"
    assert branchy["owner"] == "user:user-Ab12"
    assert conversations["conversation:c0000006-odd"]["metadata"]["active_leaf_rule"].startswith(
        "newest leaf"
    )

    messages = data_of(target, "messages", "gpt")
    assert messages["message:c0000001-branches/a2b"]["status"] == "aborted"
    assert messages["message:c0000001-branches/a1b"]["model"] == "gpt-4o-mini"
    assert messages["message:c0000006-odd/x3"]["metadata"]["orphan_of"] == "missing-parent"
    tools = {
        node: messages[f"message:c0000002-tools/{node}"]
        for node in ("think", "recap", "code", "out", "search", "browse", "quote", "final")
    }
    assert tools["think"]["parts"] == [
        {"type": "reasoning", "text": "I should run python.", "summary": "Planning"}
    ]
    assert tools["think"]["metadata"]["reasoning"]["finished_duration_sec"] == 4
    assert tools["recap"]["metadata"]["reasoning"]["recap"] == "Thought for 4s"
    call = tools["code"]["parts"][0]
    assert (call["type"], call["name"], call["id"]) == ("tool_call", "python", "code")
    assert tools["out"]["role"] == "tool" and tools["out"]["parts"][0] == {
        "type": "tool_result", "id": "code", "name": "python", "result": "0.8414709848078965"
    }  # fmt: skip
    assert tools["search"]["parts"][0]["type"] == "tool_call"
    assert tools["browse"]["parts"][0]["id"] == "search"
    assert tools["quote"]["parts"][0]["url"] == "https://example.org/ledger"
    citations = [p for p in tools["final"]["parts"] if p["type"] == "citation"]
    assert [(c["start"], c["url"]) for c in citations] == [
        (12, "https://example.org/ledger"),
        (30, "https://example.org/2"),
    ]

    files = data_of(target, "files", "gpt")
    assert files["file:file-Cat1"]["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert files["file:file-Rep9"]["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert files["file:file-Rep9"]["filename"] == "Bericht_Überblick.pdf"
    assert files["file:file_00gone"]["missing"] == "the export ZIP holds no file for file_00gone"
    assert ledger.blobs.read(hashlib.sha256(PNG).hexdigest()) == PNG
    picture = messages["message:c0000003-files/pic"]
    assert picture["files"] == ["file:file-Cat1", "file:file_00gone", "file:file-Rep9"]
    assert [p["type"] for p in picture["parts"]] == ["image", "image", "text"]
    users = data_of(target, "users", "gpt")
    assert users["user:user-Ab12"]["email"] == "zoe@example.org"

    assert_second_run_writes_nothing(ledger, target, ChatGPTSource, options, "gpt")


def test_chatgpt_bare_json_owner_option_and_missing_files(ledger, target, tmp_path):
    path, expected = samples.chatgpt_json(tmp_path / "unpacked")
    expected.users = {"user:zoe@example.org"}
    options = ChatGPTOptions(path=[path.parent], owner="zoe@example.org")
    migrate(ledger, target, ChatGPTSource, options, "gpt-json")
    assert_target(target, "gpt-json", expected)
    files = data_of(target, "files", "gpt-json")
    assert all(f["blob"] is None for f in files.values())
    assert (
        files["file:file-Cat1"]["missing"]
        == "no file for file-Cat1 beside conversations.json (read the export ZIP)"
    )


def test_chatgpt_without_owner_is_a_reject_naming_the_file(ledger, tmp_path):
    path, _ = samples.chatgpt_json(tmp_path)
    result = run_extract(ledger, ChatGPTSource, ChatGPTOptions(path=[path]), "gpt-none")
    assert result.stats["events"] == 0
    [(where, reason)] = reject_rows(ledger, result.run_id)
    assert where == str(path) and "set the `owner` option" in reason


def test_chatgpt_real_sample_from_librechat(ledger, target):
    expected = Expected(users={"user:sre@example.org"})
    first, second = "6b0f0d9c-0000-4000-8000-000000000001", "6b0f0d9c-0000-4000-8000-000000000003"
    chain = ["user-1", "assistant-1", "user-2", "assistant-2"]
    expected.add(
        f"conversation:{first}",
        [
            (f"message:{first}/{n}", f"message:{first}/{chain[i - 1]}" if i else None)
            for i, n in enumerate(chain)
        ],
        f"message:{first}/assistant-2",
    )
    expected.add(
        f"conversation:{second}",
        [(f"message:{second}/user-3", None), (f"message:{second}/assistant-3", f"message:{second}/user-3")],
        f"message:{second}/assistant-3",
    )
    expected.rejected.add("conversation:6b0f0d9c-0000-4000-8000-000000000002")
    options = ChatGPTOptions(path=[DATA / "chatgpt"], owner="sre@example.org")
    extracted, _ = migrate(ledger, target, ChatGPTSource, options, "gpt-real")
    assert_target(target, "gpt-real", expected)
    assert extracted.stats["rejects"] == 1
    conversation = data_of(target, "conversations", "gpt-real")[f"conversation:{first}"]
    assert conversation["system_prompt"] == "The user is an SRE.\n\nAnswer concisely."
    assert data_of(target, "messages", "gpt-real")[f"message:{first}/assistant-2"]["model"] == "o4-mini"


def test_truncated_file_lands_what_precedes_the_cut(ledger, target, tmp_path):
    conversations, _, _ = samples.chatgpt_conversations()
    body = json.dumps(conversations, ensure_ascii=False).encode()
    cut = body.index(b'"c0000003-files"')  # inside the third conversation
    path = tmp_path / "conversations.json"
    path.write_bytes(body[:cut])
    extracted, _ = migrate(ledger, target, ChatGPTSource, ChatGPTOptions(path=[path], owner="me"), "cut")
    [(where, reason)] = reject_rows(ledger, extracted.run_id)
    assert where == str(path) and reason.startswith("not valid JSON at character")
    landed = {key for (key,) in target.rows("conversations", "key", "cut")}
    assert landed == {"conversation:c0000001-branches", "conversation:c0000002-tools"}
    # the reject has no key, so deletes are withheld: nothing is lost when a file breaks
    assert extracted.stats["scopes"]["deletes_withheld"] == 1


def test_a_file_of_another_format_says_which_it_looks_like(ledger, tmp_path):
    claude_zip, _ = samples.claude_export(tmp_path)
    chatgpt_file, _ = samples.chatgpt_json(tmp_path / "gpt")
    webui = tmp_path / "webui.json"
    webui.write_text(json.dumps(samples.openwebui_rows()[0]))
    cases = [
        (
            ChatGPTSource,
            ChatGPTOptions(path=[claude_zip], owner="me"),
            "a Claude.ai export",
            "`claude` source",
        ),
        (
            ClaudeSource,
            ClaudeOptions(path=[chatgpt_file], owner="me"),
            "a ChatGPT export",
            "`chatgpt` source",
        ),
        (
            ChatbotUISource,
            ChatbotUIOptions(path=[webui], owner="me"),
            "an Open WebUI export",
            "`openwebui`",
        ),
        (
            OpenWebUISource,
            OpenWebUIOptions(path=[DATA / "chatbotui"], owner="me"),
            "a Chatbot UI export",
            "`chatbotui`",
        ),
    ]
    for index, (source_class, options, looks_like, hint) in enumerate(cases):
        result = run_extract(ledger, source_class, options, f"wrong-{index}")
        assert result.status == "with-rejects" and result.stats["rejects"] == 1, source_class
        assert result.stats["events"] == 0
        [(_, reason)] = reject_rows(ledger, result.run_id)
        assert f"it looks like {looks_like}" in reason and hint in reason, reason


def test_a_file_that_is_no_json_at_all(ledger, tmp_path):
    path = tmp_path / "notes.json"
    path.write_text("hello, not JSON")
    result = run_extract(ledger, ClaudeSource, ClaudeOptions(path=[path], owner="me"), "junk")
    [(_, reason)] = reject_rows(ledger, result.run_id)
    assert "not valid JSON at character 0" in reason


# -- Claude -------------------------------------------------------------------------------------


def test_claude_export_parts_attachments_times_and_tree(ledger, target, tmp_path):
    path, expected = samples.claude_export(tmp_path)
    options = ClaudeOptions(path=[path])
    extracted, _ = migrate(ledger, target, ClaudeSource, options, "claude")
    assert_target(target, "claude", expected)
    reasons = dict(reject_rows(ledger, extracted.run_id))
    assert reasons == {
        f"{path}!conversations.json[0] conversation cl-linear message [5]": "a message must be an object with a uuid",
        f"{path}!conversations.json[3] conversation cl-corrupt": "chat_messages is missing or not a list",
    }
    messages = data_of(target, "messages", "claude")
    m1, m2 = messages["message:cl-linear/m1"], messages["message:cl-linear/m2"]
    assert [p["type"] for p in m2["parts"]] == ["reasoning", "tool_call", "tool_result", "text", "citation"]
    assert m2["parts"][0]["summaries"] == ["Summarising"] and m2["parts"][0]["cut_off"] is False
    assert m2["parts"][2]["result"] == "3 results" and m2["parts"][1]["args"] == {"query": "résumé"}
    assert m2["parts"][4]["url"] == "https://example.org/r"
    assert messages["message:cl-linear/m5"]["parts"][0]["cut_off"] is True
    assert messages["message:cl-linear/m3"]["parts"] == [{"type": "text", "text": "fallback text only"}]
    assert messages["message:cl-linear/m4"]["parts"][0]["text"] == "inverted time, empty content"
    # the time rule: null → the time before it; earlier → raised to it
    assert messages["message:cl-linear/m3"]["created_at"] == m2["created_at"] == "2025-01-02T10:00:05.123456Z"
    assert messages["message:cl-linear/m4"]["created_at"] == m2["created_at"]
    assert "null" in messages["message:cl-linear/m3"]["metadata"]["time_adjusted"]
    assert "earlier" in messages["message:cl-linear/m4"]["metadata"]["time_adjusted"]
    assert m1["role"] == "user" and len(m1["files"]) == 3
    files = data_of(target, "files", "claude")
    notes = files["file:m1/attachment/0"]
    assert ledger.blobs.read(notes["sha256"]).decode() == "Ünïcödé notes"
    assert notes["filename"] == "notes.txt" and notes["metadata"]["file_type"] == "txt"
    assert files["file:m1/attachment/1"]["filename"] is None
    assert files["file:m1/file/0"]["missing"] == "the Claude.ai export holds only this file's name"
    conversations = data_of(target, "conversations", "claude")
    assert conversations["conversation:cl-linear"]["updated_at"] == "2025-01-02T10:10:00Z"
    assert conversations["conversation:cl-tree"]["title"] is None
    user = data_of(target, "users", "claude")["user:acc-7f3e"]
    assert (user["name"], user["email"]) == ("Zoë Ämter", "zoe@example.org")
    assert_second_run_writes_nothing(ledger, target, ClaudeSource, options, "claude")


# -- Open WebUI ------------------------------------------------------------------------------------


def _owui_expected() -> Expected:
    _, expected = samples.openwebui_rows()
    real = Expected(users={"user:u1"})
    for chat, prefix in (("reasoning-chat", "ra"), ("tool-chat", "ta"), ("simple-chat", "sa")):
        real.add(
            f"conversation:{chat}",
            [(f"message:{chat}/{prefix}1", None), (f"message:{chat}/{prefix}2", f"message:{chat}/{prefix}1")],
            f"message:{chat}/{prefix}2",
        )
    merged = Expected(
        {**expected.trees, **real.trees},
        {**expected.leaves, **real.leaves},
        expected.rejected,
        expected.users | real.users,
    )
    return merged


def test_openwebui_exports_branches_details_output_files(ledger, target, tmp_path):
    rows, _ = samples.openwebui_rows()
    export = tmp_path / "all-chats-export-1700000000.json"
    export.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    single, single_expected = samples.openwebui_single_chat(tmp_path)
    expected = _owui_expected()
    expected.trees.update(single_expected.trees)
    expected.leaves.update(single_expected.leaves)
    expected.users.add("user:solo@example.org")
    options = OpenWebUIOptions(path=[export, single, DATA / "openwebui"], owner="solo@example.org")
    extracted, _ = migrate(ledger, target, OpenWebUISource, options, "owui")
    assert_target(target, "owui", expected)
    assert sorted(where.rsplit(" ", 2)[-1] for where, _ in reject_rows(ledger, extracted.run_id)) == [
        "bad",
        "ow-corrupt",
    ]

    messages = data_of(target, "messages", "owui")
    # output[] wins over the same things rendered as <details> in content: read once
    assert messages["message:reasoning-chat/ra2"]["parts"] == [
        {"type": "reasoning", "text": "15 * 17 = 15 * 10 + 15 * 7 = 150 + 105 = 255", "duration": 3},
        {"type": "text", "text": "255"},
    ]
    tool = messages["message:tool-chat/ta2"]["parts"]
    assert [p["type"] for p in tool] == ["tool_call", "tool_result", "text"]
    assert tool[0]["args"] == {"city": "Paris"} and tool[1]["name"] == "get_weather"
    details = messages["message:ow-details/d2"]["parts"]
    assert [p["type"] for p in details] == ["reasoning", "tool_call", "tool_result", "text", "citation"]
    assert details[0] == {"type": "reasoning", "text": "Need the time.\nUse the tool.", "duration": "2"}
    assert details[1]["args"] == {"tz": "UTC"} and details[2]["result"] == "12:00"
    assert details[3]["text"] == "Es ist 12:00."
    a1, a1b, a2 = (messages[f"message:ow-branches/{m}"] for m in ("a1", "a1b", "a2"))
    assert (a1["sibling_group"], a1b["sibling_group"]) == (1, 1)
    assert a1["usage"]["total_tokens"] == 15 and a1["feedback"]["rating"] == "up"
    assert a1b["status"] == "aborted" and a2["status"] == "error"
    assert a2["parts"] == [{"type": "error", "text": "Ollama: 500"}]
    assert messages["message:ow-odd/o3"]["metadata"]["orphan_of"] == "ghost"

    conversation = data_of(target, "conversations", "owui")["conversation:ow-branches"]
    assert (conversation["pinned"], conversation["archived"], conversation["tags"]) == (
        True,
        True,
        ["work", "démo"],
    )
    assert (
        conversation["system_prompt"] == "Sei knapp." and conversation["metadata"]["folder_id"] == "folder-9"
    )
    assert conversation["created_at"] == "2023-11-14T22:13:20Z"
    files = data_of(target, "files", "owui")
    image = next(f for key, f in files.items() if key.startswith("file:ow-branches/u1/"))
    assert image["sha256"] == hashlib.sha256(PNG).hexdigest() and image["mime"] == "image/png"
    assert files["file:f-up-1"]["missing"].startswith("Open WebUI exports hold no file bytes")
    assert "file:kb-1" not in files
    assert_second_run_writes_nothing(ledger, target, OpenWebUISource, options, "owui")


def test_openwebui_sqlite_database_one_scope_per_owner(ledger, target, tmp_path):
    rows, expected = samples.openwebui_rows()
    other = {**rows[1], "id": "ow-details-2", "user_id": "u-owner-2"}
    expected.trees["conversation:ow-details-2"] = {
        k.replace("ow-details/", "ow-details-2/"): v and v.replace("ow-details/", "ow-details-2/")
        for k, v in expected.trees["conversation:ow-details"].items()
    }
    expected.leaves["conversation:ow-details-2"] = "message:ow-details-2/d2"
    expected.users.add("user:u-owner-2")
    database = samples.openwebui_sqlite(tmp_path / "webui.db", [*rows, other], samples.OWUI_USERS)
    options = OpenWebUIOptions(path=[database])
    extracted, _ = migrate(ledger, target, OpenWebUISource, options, "owui-db")
    assert_target(target, "owui-db", expected)
    assert extracted.stats["scopes"]["read"] == 2
    users = data_of(target, "users", "owui-db")
    assert users["user:u-owner-1"]["name"] == "Zoë" and users["user:u-owner-1"]["email"] == "zoe@example.org"
    raw = {key: json.loads(value) for key, value in target.rows("users", "key, raw", "owui-db")}
    assert "api_key" not in raw["user:u-owner-1"]
    conversations = {key for (key,) in target.rows("conversations", "key", "owui-db")}
    assert "conversation:shared-copy-1" not in conversations
    assert_second_run_writes_nothing(ledger, target, OpenWebUISource, options, "owui-db")


def test_openwebui_postgres_database_into_a_postgres_target(ledger, postgres_database):
    rows, expected = samples.openwebui_rows()
    engine = create_engine(normalize_url(postgres_database))
    with engine.begin() as conn:
        conn.execute(text(
            "CREATE TABLE chat (id VARCHAR(255) PRIMARY KEY, user_id VARCHAR(255), title TEXT, chat JSON, "
            "created_at BIGINT, updated_at BIGINT, share_id TEXT, archived BOOLEAN, pinned BOOLEAN, meta JSON, folder_id TEXT)"
        ))  # fmt: skip
        conn.execute(
            text(
                'CREATE TABLE "user" (id VARCHAR(255) PRIMARY KEY, name TEXT, email TEXT, profile_image_url TEXT, created_at BIGINT)'
            )
        )
        for row in [*rows, samples.shared_copy(rows[0])]:
            values = {
                c: json.dumps(row.get(c)) if c in ("chat", "meta") else row.get(c)
                for c in samples.OWUI_CHAT_COLUMNS
            }
            columns = ", ".join(samples.OWUI_CHAT_COLUMNS)
            conn.execute(
                text(
                    f"INSERT INTO chat ({columns}) VALUES ({', '.join(':' + c for c in samples.OWUI_CHAT_COLUMNS)})"
                ),
                values,
            )
        conn.execute(
            text("INSERT INTO \"user\" VALUES ('u-owner-1', 'Zoë', 'zoe@example.org', NULL, 1699000000)")
        )
    engine.dispose()
    target = Target(postgres_database, schema="migrated")
    options = OpenWebUIOptions(db_url=postgres_database)
    extracted, _ = migrate(ledger, target, OpenWebUISource, options, "owui-pg")
    assert_target(target, "owui-pg", expected)
    assert extracted.stats["rejects"] == 2
    assert_second_run_writes_nothing(ledger, target, OpenWebUISource, options, "owui-pg")


# -- Chatbot UI -----------------------------------------------------------------------------------


def test_chatbotui_v1_v2_and_the_real_v4_sample(ledger, target, tmp_path):
    paths, expected = samples.chatbotui_files(tmp_path)
    owner = "zoe@example.org"
    for ident, count in (
        ("493cb218-9ebb-4d35-af8b-5aded3f351be", 4),
        ("f883fb40-6e5c-45fd-92d4-883a5595560f", 2),
    ):
        keys = [f"message:{owner}/{ident}/{n}" for n in range(count)]
        expected.add(
            f"conversation:{owner}/{ident}",
            [(k, keys[i - 1] if i else None) for i, k in enumerate(keys)],
            keys[-1],
        )
    options = ChatbotUIOptions(path=[*paths, DATA / "chatbotui"], owner=owner)
    extracted, _ = migrate(ledger, target, ChatbotUISource, options, "cbui")
    assert_target(target, "cbui", expected)
    assert sorted(reason for _, reason in reject_rows(ledger, extracted.run_id)) == [
        "a message needs a string content",
        "messages is missing or not a list",
    ]
    conversations = data_of(target, "conversations", "cbui")
    real = conversations[f"conversation:{owner}/493cb218-9ebb-4d35-af8b-5aded3f351be"]
    assert real["model"] == "gpt-4-1106-preview" and real["system_prompt"].startswith("You are ChatGPT")
    assert conversations[f"conversation:{owner}/v2-a"]["tags"] == ["Arbeit"]
    prompts = [
        json.loads(data) for kind, data in target.rows("records", "kind, data", "cbui") if kind == "assistant"
    ]
    assert sorted(p["name"] for p in prompts) == ["Prompt 1", "Prompt 2"]
    assert_second_run_writes_nothing(ledger, target, ChatbotUISource, options, "cbui")


# -- the kit helpers ------------------------------------------------------------------------------


def test_json_values_streams_elements_across_chunk_boundaries():
    document = json.dumps([{"text": "ü" * 50, "n": i} for i in range(20)] + [12345, "end"]).encode()
    values = JsonValues(io.BytesIO(document), "doc", chunk=7)
    assert values.is_array and list(values) == json.loads(document)
    single = JsonValues(io.BytesIO(b'\xef\xbb\xbf {"a": 1} '), "doc", chunk=3)
    assert not single.is_array and list(single) == [{"a": 1}]


def test_build_tree_breaks_loops_and_roots_orphans():
    tree = build_tree([("a", None), ("b", "a"), ("c", "d"), ("d", "c"), ("e", "x"), ("f", "c")])
    assert tree.parents == {"a": None, "b": "a", "c": None, "d": "c", "e": None, "f": "c"}
    assert tree.orphans == {"c": "d", "e": "x"}


def test_moment_tells_units_apart():
    assert moment(1_700_000_000) == moment(1_700_000_000_000) == moment(1_700_000_000_000_000_000)
    assert moment("2025-01-02T10:00:05.123456Z").microsecond == 123456
    assert moment(None) is moment(True) is moment("soon") is None


def test_describe_export_names_each_format():
    assert format_name([{"mapping": {}}]) == "chatgpt"
    assert format_name({"chat_messages": []}) == "claude"
    assert format_name({"id": "x", "chat": {"history": {}}}) == "openwebui"
    assert format_name({"version": 4, "history": []}) == "chatbotui"
    assert format_name({"conversationId": "c", "messages": []}) == "librechat"
    assert format_name({"hello": 1}) is None


def test_zip_member_names_that_leave_the_export_are_refused(ledger, tmp_path):
    path = tmp_path / "evil.zip"
    conversations, _, _ = samples.chatgpt_conversations()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("conversations.json", json.dumps(conversations[:1]))
        archive.writestr("../../etc/file-Cat1-x.png", PNG)
    result = run_extract(ledger, ChatGPTSource, ChatGPTOptions(path=[path], owner="me"), "evil")
    rejects = reject_rows(ledger, result.run_id)
    assert [reason for _, reason in rejects] == ["refused: '..' in the path would leave the export"]


def test_chatgpt_split_export_in_a_folder_inside_the_zip(ledger, target, tmp_path):
    conversations, expected, assets = samples.chatgpt_conversations()
    path = tmp_path / "split.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("export/conversations-000.json", json.dumps(conversations[:3], ensure_ascii=False))
        archive.writestr("export/conversations-001.json", json.dumps(conversations[3:], ensure_ascii=False))
        archive.writestr("export/user.json", json.dumps({"id": "user-Ab12", "email": "zoe@example.org"}))
        for name, body in assets.items():
            archive.writestr(f"export/{name}", body)
    migrate(ledger, target, ChatGPTSource, ChatGPTOptions(path=[path]), "split")
    assert_target(target, "split", expected)
    assert data_of(target, "files", "split")["file:file-Cat1"]["sha256"] == hashlib.sha256(PNG).hexdigest()


def test_a_zip_without_conversations_says_what_it_holds(ledger, tmp_path):
    path = tmp_path / "other.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "history.json", json.dumps({"version": 4, "history": [], "folders": [], "prompts": []})
        )
    result = run_extract(ledger, ChatGPTSource, ChatGPTOptions(path=[path], owner="me"), "other")
    [(_, reason)] = reject_rows(ledger, result.run_id)
    assert "no conversations.json; history.json" in reason and "a Chatbot UI export" in reason


def test_claude_conversation_without_account_or_owner_is_rejected_alone(ledger, target, tmp_path):
    conversations = [
        {"uuid": "with-account", "name": "a", "account": {"uuid": "acc-1"}, "chat_messages": [
            {"uuid": "w1", "sender": "human", "text": "hi", "created_at": "2025-01-01T00:00:00Z"}]},
        {"uuid": "no-account", "name": "b", "chat_messages": []},
    ]  # fmt: skip
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps(conversations))
    extracted, _ = migrate(ledger, target, ClaudeSource, ClaudeOptions(path=[path]), "claude-owner")
    [(where, reason)] = reject_rows(ledger, extracted.run_id)
    assert where.endswith("conversation no-account") and "set the `owner` option" in reason
    assert {key for (key,) in target.rows("messages", "key", "claude-owner")} == {"message:with-account/w1"}


def test_export_sources_import_only_the_kit_from_the_core():
    root = Path(__file__).resolve().parent.parent / "sources"
    for package in ("chatgpt", "claude", "openwebui", "chatbotui"):
        for module in (root / package).glob("*.py"):
            tree = ast.parse(module.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
                for name in names:
                    top = name.split(".")[0]
                    assert top != "ledger" or name == "ledger.kit", f"{module}: imports {name}"
                    assert top != "sources" or name.startswith(f"sources.{package}"), (
                        f"{module}: imports {name}"
                    )


def test_a_newer_copy_of_the_file_updates_and_deletes(ledger, target, tmp_path):
    """The same file exported again later: a changed message is a new version, a
    conversation gone from it is deleted, and the replay carries both."""
    conversations, _, _ = samples.chatgpt_conversations()
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps(conversations, ensure_ascii=False), encoding="utf-8")
    options = ChatGPTOptions(path=[path], owner="me")
    migrate(ledger, target, ChatGPTSource, options, "again")
    newer = [
        c for c in conversations if isinstance(c, dict) and c.get("id") != "c0000006-odd" and "mapping" in c
    ]
    newer[0]["mapping"]["a2b"]["message"]["content"]["parts"] = ["Es ist 13 Uhr."]
    path.write_text(json.dumps(newer, ensure_ascii=False), encoding="utf-8")
    extracted = run_extract(ledger, ChatGPTSource, options, "again")
    kinds = extracted.stats["kinds"]
    assert (kinds["message"]["changed"], kinds["message"]["deleted"], kinds["conversation"]["deleted"]) == (
        1,
        4,
        1,
    )
    replay(ledger, target.sink(ledger), ["again"], settings=ReplaySettings(propagate_deletes=True))
    messages = data_of(target, "messages", "again")
    assert messages["message:c0000001-branches/a2b"]["parts"] == [{"type": "text", "text": "Es ist 13 Uhr."}]
    assert not [key for key in messages if key.startswith("message:c0000006-odd/")]


def test_single_objects_a_chatgpt_conversation_and_a_legacy_open_webui_chat(ledger, target, tmp_path):
    conversations, _, _ = samples.chatgpt_conversations()
    single = tmp_path / "one.json"
    single.write_text(json.dumps(conversations[1]))
    migrate(ledger, target, ChatGPTSource, ChatGPTOptions(path=[single], owner="me"), "one")
    assert len(target.rows("messages", "key", "one")) == 9
    legacy = tmp_path / "legacy.json"
    legacy.write_text(json.dumps({"id": "old-chat", "user_id": "u9", "chat": {"title": "Alt", "messages": [
        {"id": "l1", "role": "user", "content": "hallo", "timestamp": 1_690_000_000},
        {"id": "l2", "role": "assistant", "content": "hi", "timestamp": 1_690_000_001},
    ]}}))  # fmt: skip
    migrate(ledger, target, OpenWebUISource, OpenWebUIOptions(path=[legacy]), "legacy")
    expected = Expected(users={"user:u9"})
    expected.add(
        "conversation:old-chat",
        [("message:old-chat/l1", None), ("message:old-chat/l2", "message:old-chat/l1")],
        "message:old-chat/l2",
    )
    assert_target(target, "legacy", expected)


def test_the_cli_extracts_an_export_with_repeatable_paths(tmp_path):
    claude_zip, _ = samples.claude_export(tmp_path)
    chatgpt_zip, _ = samples.chatgpt_zip(tmp_path)
    args = [
        "extract",
        "claude",
        "--name",
        "mine",
        "--path",
        str(claude_zip),
        "--path",
        str(chatgpt_zip),
        "--json",
    ]
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode == 4, done.stderr  # finished, but input was rejected
    stats = json.loads(done.stdout)["stats"]
    assert stats["kinds"]["message"]["new"] == 9 and stats["scopes"]["listed"] == 2
    assert stats["source"]["format"] == "claude" and len(stats["source"]["files"]) == 2
    # the claude ZIP: a message without uuid, a corrupt conversation; the ChatGPT ZIP: wrong format
    assert stats["rejects"] == 3


FIELDS = {
    "user": {"email", "name", "username", "avatar_url", "created_at", "external_ids"},
    "conversation": {"owner", "title", "created_at", "updated_at", "assistant", "model", "system_prompt",
                     "pinned", "archived", "tags", "active_leaf", "metadata"},
    "message": {"conversation", "parent", "role", "author", "model", "created_at", "updated_at", "status",
                "parts", "files", "sibling_group", "usage", "feedback", "metadata"},
    "file": {"owner", "filename", "mime", "size", "sha256", "blob", "missing"},
    "assistant": {"owner", "name", "system_prompt", "model", "metadata"},
}  # fmt: skip


def _every_sample(tmp_path):
    gpt, _ = samples.chatgpt_zip(tmp_path)
    claude, _ = samples.claude_export(tmp_path)
    rows, _ = samples.openwebui_rows()
    webui = samples.openwebui_sqlite(tmp_path / "webui.db", rows, samples.OWUI_USERS)
    cbui, _ = samples.chatbotui_files(tmp_path)
    return [
        (ChatGPTSource, ChatGPTOptions(path=[gpt, DATA / "chatgpt"], owner="me")),
        (ClaudeSource, ClaudeOptions(path=[claude])),
        (OpenWebUISource, OpenWebUIOptions(path=[webui, DATA / "openwebui"])),
        (ChatbotUISource, ChatbotUIOptions(path=[*cbui, DATA / "chatbotui"], owner="me")),
    ]


def _records(source_class, options, blobs):
    source = source_class(options, SourceContext("contract", blobs))
    try:
        return {
            scope.name: [
                item for items, _ in source.read(scope) for item in items if isinstance(item, Record)
            ]
            for scope in source.scopes()
        }
    finally:
        source.close()


def test_records_follow_the_canonical_model_and_are_deterministic(ledger, tmp_path):
    for source_class, options in _every_sample(tmp_path):
        first = _records(source_class, options, ledger.blobs)
        again = _records(source_class, options, ledger.blobs)
        assert {s: [record_hash(r) for r in rs] for s, rs in first.items()} == {
            s: [record_hash(r) for r in rs] for s, rs in again.items()
        }, source_class
        for scope, records in first.items():
            by_key = {record.key: record for record in records}
            assert len(by_key) == len(records), f"{scope}: a key twice in one scope"
            for record in records:
                where = f"{source_class.type_name} {record.key}"
                assert record.key.startswith(record.kind + ":") and FIELDS[record.kind] <= set(record.data), (
                    where
                )
                assert all(isinstance(ref, str) and ref for ref in record.refs), where
                data = record.data
                if record.kind == "message":
                    assert data["role"] in MESSAGE_ROLES and data["status"] in MESSAGE_STATUSES, where
                    assert all(part["type"] in PART_TYPES for part in data["parts"]), where
                    assert all(by_key[f].kind == "file" for f in data["files"]), where
                    if data["parent"]:
                        assert by_key[data["parent"]].data["conversation"] == data["conversation"], where
                    assert by_key[data["conversation"]].kind == "conversation", where
                elif record.kind == "conversation":
                    assert (
                        data["active_leaf"] is None
                        or by_key[data["active_leaf"]].data["conversation"] == record.key
                    )
                    assert by_key[data["owner"]].kind == "user", where
                elif record.kind == "file":
                    assert (data["blob"] is None) != (data["missing"] is None), where
                    assert data["blob"] is None or data["blob"] == f"sha256:{data['sha256']}", where
