"""Regressions of issue 10, source side: nothing lost, nothing silent.

Each test drives a real source (librechat JSON exports and mongodump folders, Convex
export ZIPs and folders) into a real SQLite ledger and reads back heads, events and
rejects. The inputs are written by the tests.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select

from ledger.errors import ChatledgerError
from ledger.kit import Reject, describe_export, export_format
from ledger.schema import events, rejects
from ledger.store import Ledger
from sources.convex.archive import ExportArchive
from tests.convex_laravel import data
from tests.convex_laravel.exports import entries, write_folder, write_zip
from tests.convex_laravel.harness import extract_export
from tests.helpers import ListScope, ListSource, msg, run
from tests.librechat_onyx import fixtures
from tests.librechat_onyx.fixtures import EDITS, MULTI, NO_PARENT
from tests.librechat_onyx.harness import records, run_extract

OWNER = "ada@example.com"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def ledger(tmp_path):
    opened = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", blob_dir=tmp_path / "blobs")
    yield opened
    opened.close()


@pytest.fixture
def any_ledger(ledger_url, tmp_path):
    """A ledger on each backend (SQLite, Postgres): the reject bookkeeping is SQL."""
    opened = Ledger.open(ledger_url, blob_dir=tmp_path / "blobs")
    yield opened
    opened.close()


def reject_rows(ledger) -> list[dict]:
    with ledger.read() as conn:
        return [dict(row._mapping) for row in conn.execute(select(rejects).order_by(rejects.c.id))]


def delete_events(ledger) -> int:
    with ledger.read() as conn:
        return len(conn.execute(select(events.c.seq).where(events.c.op == "delete")).all())


def messages_of(found: dict, conversation: str) -> dict[str, str]:
    """messageId → parent messageId ("" for a root) of one conversation's message records."""
    out = {}
    for key, document in found.items():
        if key.startswith("message:") and key.split("/")[1] == conversation:
            parent = document["data"]["parent"]
            out[key.rsplit("/", 1)[1]] = parent.rsplit("/", 1)[1] if parent else ""
    return out


def chain_messages(turns: int) -> list[dict]:
    return [
        {
            "messageId": f"m{number}",
            "parentMessageId": f"m{number - 1}" if number else NO_PARENT,
            "text": f"turn {number}",
            "isCreatedByUser": number % 2 == 0,
            "sender": "User" if number % 2 == 0 else "GPT-4",
            "createdAt": f"2024-03-01T10:{number // 60 % 60:02d}:{number % 60:02d}.{number // 3600:03d}Z",
        }
        for number in range(turns)
    ]


def chain_export(conversation: str, turns: int, *, nested: bool) -> str:
    """The JSON of an export of one linear chat of ``turns`` messages, nested the way
    LibreChat's recursive export writes it (each reply in its parent's ``children``;
    written by hand, as the nesting is deeper than ``json.dumps`` goes) or flat."""
    export = {"conversationId": conversation, "title": "long", "endpoint": "openAI", "recursive": nested}
    if not nested:
        return json.dumps(export | {"messages": chain_messages(turns)})
    opened = [json.dumps(message)[:-1] + ', "children": [' for message in chain_messages(turns)]
    return json.dumps(export)[:-1] + ', "messages": [' + "".join(opened) + "]}" * turns + "]}"


# -- 1: recursive LibreChat exports ----------------------------------------------------------


def test_a_recursive_export_lands_every_reply_from_messages_children(ledger, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "edits.json").write_text(json.dumps(fixtures.export_json(EDITS, recursive=True)))
    old_name = fixtures.export_json(MULTI, recursive=True, tree_field="messagesTree")
    (folder / "multi.json").write_text(json.dumps(old_name))
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "edits.json").write_text(json.dumps(fixtures.export_json(EDITS, recursive=False)))
    (flat / "multi.json").write_text(json.dumps(fixtures.export_json(MULTI, recursive=False)))

    nested = run_extract(ledger, "nested", export_paths=[folder], owner_email=OWNER)
    run_extract(ledger, "flat", export_paths=[flat], owner_email=OWNER)
    assert nested.stats["rejects"] == 0
    found, expected = records(ledger, "nested"), records(ledger, "flat")
    for conversation in (EDITS, MULTI):
        tree = messages_of(found, conversation)
        assert len(tree) > 1 and tree == messages_of(expected, conversation)


@pytest.mark.parametrize("turns", [500, 5000])
def test_a_long_recursive_chat_lands_whole_and_the_other_files_too(ledger, tmp_path, turns):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "long.json").write_text(chain_export("long", turns, nested=True))
    (folder / "short.json").write_text(chain_export("short", 3, nested=True))
    (folder / "flat.json").write_text(chain_export("flat", 4, nested=False))
    result = run_extract(ledger, export_paths=[folder], owner_email=OWNER)
    assert result.status == "succeeded" and result.stats["rejects"] == 0
    found = records(ledger)
    long = messages_of(found, "long")
    assert len(long) == turns and long["m0"] == "" and long[f"m{turns - 1}"] == f"m{turns - 2}"
    assert len(messages_of(found, "short")) == 3 and len(messages_of(found, "flat")) == 4
    leaf = found[next(key for key in found if key.startswith("conversation:") and key.endswith("/long"))]
    assert leaf["data"]["active_leaf"].endswith(f"/m{turns - 1}")


# -- 3: another platform's file given to the librechat source ----------------------------------

OTHER_EXPORTS = {
    "chatgpt.json": (
        [{"title": "t", "mapping": {"a": {"id": "a", "children": []}}, "current_node": "a"}],
        "chatgpt",
    ),
    "claude.json": ([{"uuid": "u", "name": "", "chat_messages": []}], "claude"),
    "openwebui.json": ([{"id": "c", "chat": {"history": {"messages": {}, "currentId": None}}}], "openwebui"),
    "chatbot-ui.json": ({"version": 4, "history": [], "folders": [], "prompts": []}, "chatbotui"),
}


def test_a_file_of_another_platform_is_rejected_saying_what_it_looks_like(ledger, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    for name, (document, _) in OTHER_EXPORTS.items():
        (folder / name).write_text(json.dumps(document))
    (folder / "good.json").write_text(chain_export("good", 2, nested=False))
    result = run_extract(ledger, export_paths=[folder], owner_email=OWNER)
    assert len(messages_of(records(ledger), "good")) == 2
    reasons = {Path(row["location"].split(": ", 1)[1]).name: row["reason"] for row in reject_rows(ledger)}
    assert result.stats["rejects"] == len(OTHER_EXPORTS) == len(reasons)
    assert reasons["chatgpt.json"] == (
        "not a LibreChat export: this looks like a ChatGPT export (conversations with `mapping`); "
        "use the chatgpt source"
    )
    for name, (_, source_name) in OTHER_EXPORTS.items():
        assert f"use the {source_name} source" in reasons[name] and "conversationId" not in reasons[name]


def test_export_formats_are_told_apart():
    for document, name in OTHER_EXPORTS.values():
        assert export_format(document).name == name
    assert export_format(json.loads(chain_export("c", 1, nested=True))).name == "librechat"
    assert describe_export({"conversationId": 5}) is None and describe_export([1, 2]) is None
    assert describe_export([{"x": 1}] * 10 + [{"mapping": {}}]) is None  # only leading elements


# -- 4: one bad file does not poison its scope ------------------------------------------------


def test_a_bad_file_is_one_reject_until_fixed_and_then_deletes_resume(any_ledger, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "a.json").write_text(chain_export("a", 2, nested=False))
    (folder / "b.json").write_text(chain_export("b", 2, nested=False))
    run_extract(any_ledger, export_paths=[folder], owner_email=OWNER)
    (folder / "b.json").write_text('{"conversationId": "b", "messages": [')  # truncated
    (folder / "a.json").unlink()

    first = run_extract(any_ledger, export_paths=[folder], owner_email=OWNER)
    assert first.stats["scopes"]["deletes_withheld"] == 1 and delete_events(any_ledger) == 0
    assert first.stats["rejects_recorded"] == {"new": 1, "seen_again": 0, "resolved": 0}
    again = run_extract(any_ledger, export_paths=[folder], owner_email=OWNER)
    assert again.stats["scopes"]["unchanged"] == 1 and again.stats["scopes"]["deletes_withheld"] == 0
    forced = run_extract(any_ledger, export_paths=[folder], owner_email=OWNER, full=True)
    assert forced.stats["rejects"] == 1 and forced.stats["rejects_recorded"]["seen_again"] == 1
    rows = reject_rows(any_ledger)
    assert len(rows) == 1 and rows[0]["resolved_run"] is None
    assert (rows[0]["run_id"], rows[0]["last_run"]) == (first.run_id, forced.run_id)
    assert rows[0]["scope"].startswith("user:export-") and len(rows[0]["input_hash"]) == 64

    (folder / "b.json").write_text(chain_export("b", 2, nested=False))
    fixed = run_extract(any_ledger, export_paths=[folder], owner_email=OWNER)
    assert fixed.stats["rejects"] == 0 and fixed.stats["rejects_recorded"]["resolved"] == 1
    assert reject_rows(any_ledger)[0]["resolved_run"] == fixed.run_id
    assert fixed.stats["kinds"]["conversation"]["deleted"] == 1  # a.json's, withheld until now
    assert set(messages_of(records(any_ledger), "b")) == {"m0", "m1"} and not messages_of(
        records(any_ledger), "a"
    )


def test_a_removed_scope_resolves_its_rejects(any_ledger, tmp_path):
    bad = ListScope([msg("s", "c", 1)])

    bad.items.append(Reject("file x", "broken"))
    run(any_ledger, ListSource("s", {"one": bad, "two": ListScope([msg("s", "d", 1)])}))
    run(any_ledger, ListSource("s", {"one": bad, "two": ListScope([msg("s", "d", 1)])}))
    assert len(reject_rows(any_ledger)) == 1
    gone = run(any_ledger, ListSource("s", {"two": ListScope([msg("s", "d", 1)])}))
    assert reject_rows(any_ledger)[0]["resolved_run"] == gone.run_id


def test_a_partial_pass_resolves_nothing(ledger):

    scope = ListScope([msg("s", "c", 1), Reject("file x", "broken")], complete=False)
    run(ledger, ListSource("s", {"one": scope}))
    run(ledger, ListSource("s", {"one": ListScope([msg("s", "c", 1)], complete=False)}))
    assert reject_rows(ledger)[0]["resolved_run"] is None


# -- 5: file names that are not UTF-8 ---------------------------------------------------------

BAD_NAME = os.fsdecode(b"caf\xe9.json")


def test_a_non_utf8_file_name_in_an_export_folder_is_one_reject(ledger, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / BAD_NAME).write_text(chain_export("bad-name", 2, nested=False))
    (folder / "good.json").write_text(chain_export("good", 2, nested=False))
    result = run_extract(ledger, export_paths=[folder], owner_email=OWNER)
    assert result.status == "with-rejects" and len(messages_of(records(ledger), "good")) == 2
    [row] = reject_rows(ledger)
    assert row["location"].endswith("caf\\xe9.json") and "not valid UTF-8" in row["reason"]
    assert any(entry["file"].endswith("good.json") for entry in result.stats["source"]["files"])


def test_a_non_utf8_file_name_in_a_dump_folder_and_asset_root_is_harmless(ledger, tmp_path):
    folder = fixtures.write_dump(tmp_path / os.fsdecode(b"dump-\xff"))  # the folder's own name too
    (folder / "LibreChat" / os.fsdecode(b"notes-\xff.bson")).write_bytes(b"junk")
    assets = fixtures.write_assets(tmp_path / "librechat")
    (assets / "uploads" / os.fsdecode(b"\xfe.png")).write_bytes(b"png")
    result = run_extract(ledger, dump_path=folder, asset_roots=[assets])
    assert result.status == "with-rejects" and records(ledger)
    assert result.stats["source"]["folder"].endswith("dump-\\xff/LibreChat")


def test_a_non_utf8_file_name_in_a_convex_folder_is_one_reject(ledger, tmp_path):
    folder = write_folder(tmp_path / os.fsdecode(b"export-\xfe"), entries(data.original()))
    (folder / os.fsdecode(b"stray-\xff.jsonl")).write_bytes(b"{}\n")
    result = extract_export(ledger, folder)
    assert result.stats["source"]["path"].endswith("export-\\xfe")
    assert result.status == "with-rejects" and result.stats["kinds"]["message"]["new"] == 2
    [row] = reject_rows(ledger)
    assert "stray-\\xff.jsonl" in row["location"] and "not valid UTF-8" in row["reason"]


# -- 2, 18: empty, incomplete and conflicting Convex exports ----------------------------------


def empty_zip(path: Path, contents: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w"):
        pass
    return write_zip(path, contents) if contents else path


@pytest.mark.parametrize(
    "shape",
    ["empty zip", "readme only", "empty folder", "_tables only", "wrong component"],
)
def test_an_export_with_nothing_to_read_is_refused_and_deletes_nothing(ledger, tmp_path, shape):
    extract_export(ledger, write_zip(tmp_path / "full.zip", entries(data.original())))
    before = records(ledger, "khala")
    readme = entries({})["README.md"]
    options = {}
    if shape == "empty zip":
        path = empty_zip(tmp_path / "x.zip", {})
    elif shape == "readme only":
        path = write_zip(tmp_path / "x.zip", {"README.md": readme})
    elif shape == "empty folder":
        path = tmp_path / "folder"
        path.mkdir()
    elif shape == "_tables only":
        path = write_zip(
            tmp_path / "x.zip", {k: v for k, v in entries(data.original()).items() if "_tables" in k}
        )
    else:
        path, options = tmp_path / "full.zip", {"component": "agent"}
    with pytest.raises(ChatledgerError, match=r"(?i)nothing read"):
        extract_export(ledger, path, **options)
    assert records(ledger, "khala") == before and delete_events(ledger) == 0


def test_an_export_missing_a_listed_table_lands_what_it_has_and_deletes_nothing(ledger, tmp_path):
    full = entries(data.original())
    extract_export(ledger, write_zip(tmp_path / "full.zip", full))
    before = records(ledger, "khala")
    without_messages = {k: v for k, v in full.items() if not k.startswith("messages/")}
    result = extract_export(ledger, write_zip(tmp_path / "part.zip", without_messages))
    assert result.status == "with-rejects" and delete_events(ledger) == 0
    assert records(ledger, "khala").keys() == before.keys()
    warnings = " ".join(result.stats["source"]["warnings"])
    assert "lists 'messages', the export has no messages/documents.jsonl" in warnings
    assert any("incomplete export" in row["reason"] for row in reject_rows(ledger))

    no_listing = {k: v for k, v in full.items() if not k.startswith(("_tables/", "threads/"))}
    extract_export(ledger, write_zip(tmp_path / "nolist.zip", no_listing))
    assert delete_events(ledger) == 0


def test_conflicting_table_numbers_are_refused(ledger, tmp_path):
    contents = entries(data.original())
    contents["_tables/documents.jsonl"] = b'{"name":"users","id":10001}\n{"name":"threads","id":10001}\n'
    with pytest.raises(ChatledgerError, match="table number 10001 to both 'users' and 'threads'"):
        extract_export(ledger, write_zip(tmp_path / "a.zip", contents))
    contents["_tables/documents.jsonl"] = b'{"name":"users","id":10001}\n{"name":"users","id":10002}\n'
    with pytest.raises(ChatledgerError, match="gives table 'users' the number 10002"):
        extract_export(ledger, write_zip(tmp_path / "b.zip", contents))
    contents["_tables/documents.jsonl"] = entries(data.original())["_tables/documents.jsonl"]
    contents["_components/agent/_tables/documents.jsonl"] = b'{"name":"a","id":7}\n{"name":"b","id":7}\n'
    with pytest.raises(ChatledgerError, match="both 'a' and 'b'"):
        extract_export(ledger, write_zip(tmp_path / "c.zip", contents))
    assert not records(ledger, "khala")


# -- 20: junk is read in linear time ----------------------------------------------------------


class CountingArchive:
    """Counts the reads an archive's entry streams are asked for."""

    def __init__(self, archive: ExportArchive) -> None:
        self.archive, self.reads = archive, 0
        original = archive.stream

        def stream(name):
            manager = original(name)
            outer = self

            class Counted:
                def __enter__(self):
                    handle = manager.__enter__()
                    read = handle.read

                    def counted(size=-1):
                        outer.reads += 1
                        return read(size)

                    handle.read = counted
                    handle.readline = None  # a line-by-line reader would fail here
                    return handle

                def __exit__(self, *exc):
                    return manager.__exit__(*exc)

            return Counted()

        archive.stream = stream


def test_blank_lines_cost_reads_by_the_megabyte_not_by_the_line(tmp_path):
    megabytes = 16
    contents = entries(data.original())
    contents["messages/documents.jsonl"] = b"\n" * (megabytes << 20) + b'{"a": 1}\n' + b" \r\n" * 1000
    archive = ExportArchive.open(write_zip(tmp_path / "junk.zip", contents))
    counting = CountingArchive(archive)
    found = list(archive.lines("messages/documents.jsonl"))
    assert found == [((megabytes << 20) + 1, b'{"a": 1}')]
    assert counting.reads <= megabytes + 3  # one read per MiB chunk (was one readline per line)


def test_a_zip_of_blank_lines_extracts_quickly(ledger, tmp_path):
    import time

    contents = entries(data.original())
    for table in ("messages", "threads", "users"):
        contents[f"{table}/documents.jsonl"] += b"\n" * (8 << 20)
    path = write_zip(tmp_path / "blank.zip", contents)
    started = time.monotonic()
    result = extract_export(ledger, path)
    assert result.stats["kinds"]["message"]["new"] == 2
    assert time.monotonic() - started < 20  # was about 1 s per MB of blank lines: 24 s and more
