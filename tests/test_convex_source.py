"""The ``convex`` source on export ZIPs (and folders) the tests build in both encoding eras.

Every assertion reads what landed in the ledger (heads, payloads, rejects) or what the
source reports; the exports are real ZIP files written with ``zipfile``.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
import zipfile

import orjson
import pytest
from sqlalchemy import select

from ledger.errors import ChatledgerError
from ledger.payloads import load_documents
from ledger.schema import heads, rejects
from sources.convex.encoding import ERA_NAMES
from tests.conftest import head_rows, run_cli
from tests.convex_laravel import data
from tests.convex_laravel.exports import entries, write_export, write_folder, write_zip
from tests.convex_laravel.harness import STREAM, extract_export, ledger, source


def documents(ledger, stream: str = STREAM) -> dict[str, dict]:
    """key → the stored record document (data, raw, refs) of every live head."""
    with ledger.read() as conn:
        found = conn.execute(
            select(heads.c.key, heads.c.hash).where(heads.c.stream == stream, heads.c.deleted.is_(False))
        ).all()
        loaded = load_documents(conn, [digest for _, digest in found])
    return {key: loaded[digest] for key, digest in found}


def reject_rows(ledger) -> list[tuple[str, str]]:
    with ledger.read() as conn:
        return [
            tuple(row)
            for row in conn.execute(select(rejects.c.location, rejects.c.reason).order_by(rejects.c.id))
        ]


def zip_entry(path, name: str) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read(name)


def test_both_eras_give_the_same_records(ledger, tmp_path):
    result_a = extract_export(ledger, write_export(tmp_path / "a.zip", data.rich(), era="A"), stream="era-a")
    result_b = extract_export(ledger, write_export(tmp_path / "b.zip", data.rich(), era="B"), stream="era-b")
    assert result_a.stats["rejects"] == result_b.stats["rejects"] == 0
    era_a, era_b = documents(ledger, "era-a"), documents(ledger, "era-b")
    assert era_a.keys() == era_b.keys() and len(era_a) == 20
    assert all(
        (era_a[key]["data"], era_a[key]["raw"]) == (era_b[key]["data"], era_b[key]["raw"]) for key in era_a
    )
    assert (
        result_a.stats["source"]["era"] == ERA_NAMES["A"]
        and result_b.stats["source"]["era"] == ERA_NAMES["B"]
    )
    receipt = next(
        doc for key, doc in era_a.items() if doc["kind"] == "run_event" and doc["data"]["kind"] == "tool"
    )
    # Int64 and bytes inside a v.any() payload: strings plus hints in era A, typed in era B
    assert receipt["data"]["payload"] == {"tool": "search", "tokens": 33, "ok": True,
                                          "digest": {"$bytes": base64.b64encode(b"\x00\x01\x02").decode()}}  # fmt: skip


def test_era_a_special_values_are_decoded_and_json_safe(ledger, tmp_path):
    tables = data.original()
    tables["receipts"][0]["json"] = {"nan": math.nan, "inf": -math.inf, "n": 2**40, "b": b"\xff"}
    tables["users"][0]["quota"] = 7  # a top-level Int64: the shape says int64, no hint needed
    path = write_export(tmp_path / "a.zip", tables, era="A")
    assert b'"quota":"7"' in zip_entry(path, "users/documents.jsonl").replace(b" ", b"")
    result = extract_export(ledger, path)
    assert result.stats["rejects"] == 0
    found = documents(ledger)
    payload = next(doc["data"]["payload"] for doc in found.values() if doc["kind"] == "run_event")
    assert payload["n"] == 2**40 and payload["b"] == {"$bytes": base64.b64encode(b"\xff").decode()}
    assert struct.unpack("<d", base64.b64decode(payload["inf"]["$float"]))[0] == -math.inf
    assert math.isnan(struct.unpack("<d", base64.b64decode(payload["nan"]["$float"]))[0])
    assert found["user:user_legacy_1"]["raw"]["quota"] == 7


def test_records_keys_and_mapping(ledger, tmp_path):
    extract_export(ledger, write_export(tmp_path / "rich.zip", data.rich()))
    found = documents(ledger)
    assert found["user:user_bob"]["data"]["metadata"]["from_threads_only"] is True
    assert found["user:user_bob"]["data"]["created_at"] == "2025-01-01T02:54:10.000Z"
    thread = found[f"conversation:{data.T1}"]["data"]
    assert (thread["owner"], thread["active_leaf"]) == ("user:user_alice", f"message:{data.T1}/{data.M4}")
    # the assistant message written in the same millisecond follows the user message
    # (_creationTime breaks the tie), and each message's parent is the one before it
    chain = [found[f"message:{data.T1}/{m}"]["data"]["parent"] for m in (data.M1, data.M2, data.M3, data.M4)]
    assert chain == [
        None,
        f"message:{data.T1}/{data.M1}",
        f"message:{data.T1}/{data.M2}",
        f"message:{data.T1}/{data.M3}",
    ]
    answer = found[f"message:{data.T1}/{data.M4}"]["data"]
    assert [part["type"] for part in answer["parts"]] == ["text", "reasoning", "tool_call", "tool_result"]
    assert (answer["model"], answer["usage"], answer["metadata"]["created_at_ms"]) == (
        "gpt-4o-mini",
        {"inputTokens": 12, "outputTokens": 5},
        int(data.SAME_MS + 1500),
    )
    assert answer["created_at"] == "2025-01-01T02:55:01.600Z"
    assistant = found["assistant:user_alice"]
    assert assistant["data"]["blueprint"]["docs"]["user"]["name"] == "Alice"  # the newest of two
    assert len(assistant["raw"]["blueprints"]) == 2
    anonymous = found[f"conversation:{data.ANON_THREAD}"]
    assert anonymous["data"]["owner"] is None
    assert anonymous["raw"]["anonKey"] == "sha256:" + hashlib.sha256(b"anon-secret-key").hexdigest()
    assert "assistant:thread/" + data.ANON_THREAD in found
    assert found[f"run:{data.R2_LEGACY}"]["data"]["status"] == "streaming"
    assert f"message:{data.ORPHAN_THREAD}/dddddddd-dddd-4ddd-8ddd-dddddddddddd" in found


def test_describe_is_the_runbooks_artifact_validation(ledger, tmp_path):
    path = write_export(
        tmp_path / "rich.zip", data.rich(), components={"agent": {"messages": [{"text": "x"}]}}
    )
    reader = source(ledger, path)
    facts = reader.describe()
    index_folder = reader.index.folder
    reader.close()
    assert not index_folder.exists()  # the temporary index is removed
    assert (
        facts["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        and facts["size"] == path.stat().st_size
    )
    assert facts["tables"]["messages"] == 7 and facts["tables"]["_components/agent/messages"] == 1
    assert (
        facts["tables"]["lightningInvoices"] == 1 and facts["readme"] is True and facts["tables_listed"] == 8
    )
    assert (facts["source_users"], facts["source_threads"], facts["source_messages"]) == (1, 3, 7)
    (tmp_path / "chatledger.toml").write_text(
        f'[ledger]\nurl = "sqlite:///{tmp_path / "cli.db"}"\n[sources.khala]\ntype = "convex"\npath = "{path}"\n'
    )
    shown = run_cli("extract", "khala", "--validate-only", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert orjson.loads(shown.stdout)["sha256"] == facts["sha256"]
    assert not (tmp_path / "cli.db").exists()  # nothing extracted: not even a ledger made
    runs = run_cli("runs", "--json", cwd=tmp_path)
    assert runs.returncode == 2 and "there is no ledger at" in runs.stderr


def test_component_tables_are_keyed_by_their_full_path(ledger, tmp_path):
    component = {"threads": [{"threadId": data.T2, "ownerId": "user_c", "createdAtMs": data.T0, "updatedAtMs": data.T0}],
                 "messages": [{"threadId": data.T2, "messageId": data.B1, "role": "user", "status": "final",
                               "text": "from the component", "createdAtMs": data.T0, "updatedAtMs": data.T0}]}  # fmt: skip
    path = write_export(tmp_path / "c.zip", data.original(), components={"agent": component})
    extract_export(ledger, path)
    assert {key for key in documents(ledger) if key.startswith("message:")} == {
        f"message:{data.THREAD}/{data.USER_MESSAGE}",
        f"message:{data.THREAD}/{data.ASSISTANT_MESSAGE}",
    }
    extract_export(ledger, path, stream="agent", component="agent")
    agent = documents(ledger, "agent")
    assert agent[f"message:{data.T2}/{data.B1}"]["data"]["parts"] == [
        {"type": "text", "text": "from the component"}
    ]


def test_storage_blobs_land_in_the_blob_store_with_their_sha256_checked(ledger, tmp_path):
    png, text = b"\x89PNG\r\n\x1a\n" + bytes(range(64)), "notes ✏️".encode()
    path = write_export(tmp_path / "s.zip", data.original(),
                        storage={"kg2png": (png, "image/png"), "kg2txt": (text, "text/plain"), "kg2bad": (b"x", None)},
                        bad_checksums=("kg2bad",))  # fmt: skip
    result = extract_export(ledger, path)
    found = documents(ledger)
    digest = hashlib.sha256(png).hexdigest()
    assert found["file:kg2png"]["data"]["sha256"] == digest and ledger.blobs.read(digest) == png
    assert found["file:kg2txt"]["data"]["mime"] == "text/plain"
    assert "file:kg2bad" not in found and result.stats["rejects"] == 1
    [(location, reason)] = reject_rows(ledger)
    assert (
        location == "scope storage: _storage/documents.jsonl:3"
        and "does not match the exported checksum" in reason
    )


def test_unchanged_export_is_skipped_and_a_newer_one_deletes_what_vanished(ledger, tmp_path):
    first = extract_export(ledger, write_export(tmp_path / "1.zip", data.rich()))
    again = extract_export(ledger, write_export(tmp_path / "1.zip", data.rich()))
    assert (
        again.stats["events"] == 0
        and again.stats["scopes"]["unchanged"] == first.stats["scopes"]["listed"] == 3
    )
    newer = data.rich()
    newer["threads"] = [thread for thread in newer["threads"] if thread["threadId"] != data.T2]
    newer["messages"] = [message for message in newer["messages"] if message["threadId"] != data.T2]
    newer["blueprints"] = [blueprint for blueprint in newer["blueprints"] if blueprint["threadId"] != data.T2]
    result = extract_export(ledger, write_export(tmp_path / "2.zip", newer))
    deleted = {key for key, _, _, _, gone in head_rows(ledger, STREAM) if gone}
    assert deleted == {
        f"conversation:{data.T2}",
        f"message:{data.T2}/{data.B1}",
        "user:user_bob",
        "assistant:user_bob",
    }
    assert result.stats["scopes"]["vanished"] == 1  # bob's whole scope


def test_a_folder_reads_like_the_zip(ledger, tmp_path):
    contents = entries(data.rich(), era="A")
    extract_export(ledger, write_zip(tmp_path / "x.zip", contents), stream="zip")
    extract_export(ledger, write_folder(tmp_path / "unpacked", contents), stream="folder")
    assert {k: (d["data"], d["raw"]) for k, d in documents(ledger, "zip").items()} == {
        k: (d["data"], d["raw"]) for k, d in documents(ledger, "folder").items()
    }


def test_a_truncated_line_is_rejected_and_the_rest_lands(ledger, tmp_path):
    extract_export(ledger, write_export(tmp_path / "1.zip", data.rich()))
    contents = entries(data.rich())
    good = contents["messages/documents.jsonl"].splitlines(keepends=True)
    contents["messages/documents.jsonl"] = b"".join(good[:-1]) + good[-1][:40]  # cut mid-document
    result = extract_export(ledger, write_zip(tmp_path / "2.zip", contents))
    [(location, reason)] = reject_rows(ledger)
    assert location.endswith("messages/documents.jsonl:7") and "not a JSON document" in reason
    assert result.stats["scopes"]["deletes_withheld"] + result.stats["kinds"]["message"]["deleted"] == 0
    # the orphan message on the cut line is still in the ledger; everything else re-read unchanged
    assert f"message:{data.ORPHAN_THREAD}/dddddddd-dddd-4ddd-8ddd-dddddddddddd" in documents(ledger)
    assert result.stats["kinds"]["message"]["unchanged"] == 6


def test_a_corrupt_zip_gives_a_clear_error(ledger, tmp_path):
    broken = tmp_path / "broken.zip"
    broken.write_bytes(write_export(tmp_path / "ok.zip", data.original()).read_bytes()[:-200])
    with pytest.raises(ChatledgerError, match=r"broken.zip: not a readable ZIP"):
        extract_export(ledger, broken)
    shown = run_cli("--ledger", f"sqlite:///{tmp_path / 'cli.db'}", "extract", "convex", "--name", "k",
                    "--path", str(broken), cwd=tmp_path)  # fmt: skip
    assert shown.returncode == 1 and "broken.zip: not a readable ZIP" in shown.stderr + shown.stdout
    assert "Traceback" not in shown.stderr


def test_an_entry_with_dotdot_is_refused_and_nothing_is_written_outside(ledger, tmp_path):
    contents = entries(data.original())
    contents["../escape.jsonl"] = b'{"threadId": "x"}\n'
    contents["/etc/absolute.txt"] = b"x"
    contents["C:/windows.txt"] = b"x"
    (tmp_path / "inside").mkdir()
    path = write_zip(tmp_path / "inside" / "evil.zip", contents)
    result = extract_export(ledger, path)
    assert sorted(reject_rows(ledger)) == [
        ("scope ownerless: ../escape.jsonl", "refused: '..' in the path would leave the export"),
        ("scope ownerless: /etc/absolute.txt", "refused: absolute path"),
        ("scope ownerless: C:/windows.txt", "refused: drive letter in the path"),
    ]
    assert not (tmp_path / "escape.jsonl").exists() and not list(tmp_path.glob("**/escape.jsonl"))
    assert result.stats["kinds"]["message"]["new"] == 2  # the rest landed
    assert len(result.stats["source"]["refused_entries"]) == 3


def test_duplicate_documents_are_rejected_by_key(ledger, tmp_path):
    tables = data.original()
    tables["messages"].append(dict(tables["messages"][0], text="a later copy"))
    extract_export(ledger, write_export(tmp_path / "d.zip", tables))
    [(location, reason)] = reject_rows(ledger)
    assert location.endswith("messages/documents.jsonl:1") and reason.startswith(
        "superseded by a later messages"
    )
    assert (
        documents(ledger)[f"message:{data.THREAD}/{data.USER_MESSAGE}"]["data"]["parts"][0]["text"]
        == "a later copy"
    )
