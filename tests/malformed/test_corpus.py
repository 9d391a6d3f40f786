"""A corpus of malformed inputs for the librechat and convex sources, each with the outcome
it must have.

Every case writes one small damaged input next to good data (the inputs are generated
here) and extracts it into a SQLite ledger. Outcomes:

- ``reject``: the run succeeds, the good data lands, and one reject row names the place
  (``where``) and what is wrong (``reason``); nothing is deleted;
- ``refuse``: the run stops with a clear error naming the input, and the ledger keeps
  what it had (nothing written, nothing deleted);
- ``lands``: the odd input is valid and lands (``check`` says how), with no reject.

Kinds covered: truncated, bad UTF-8 content, bad UTF-8 file names, cycles in parent
links, duplicate ids, missing parents, huge messages, NaN, deep nesting, zip-slip,
symbolic links, wrong types, empty and partial exports, conflicting table numbers.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bson
import pytest
from sqlalchemy import select

from ledger.errors import ChatledgerError
from ledger.schema import events, rejects
from ledger.store import Ledger
from tests.convex_laravel import data
from tests.convex_laravel.exports import entries, write_folder, write_zip
from tests.convex_laravel.harness import extract_export
from tests.librechat_onyx import fixtures
from tests.librechat_onyx.fixtures import NO_PARENT
from tests.librechat_onyx.harness import records, run_extract

OWNER = "ada@example.com"
MB = 1 << 20


@dataclass
class Case:
    name: str
    build: Callable[[Path], Any]  # writes the damaged input; returns what the source reads
    expect: str  # reject | refuse | lands
    reason: str = ""  # a substring of the reject's reason or of the refusal
    where: str = ""  # a substring of the reject's location
    check: Callable[[dict[str, Any]], bool] | None = None  # on the landed records

    def __str__(self) -> str:
        return self.name


def reject_rows(ledger: Ledger) -> list[tuple[str, str]]:
    with ledger.read() as conn:
        return [(row.location, row.reason) for row in conn.execute(select(rejects))]


def delete_count(ledger: Ledger) -> int:
    with ledger.read() as conn:
        return len(conn.execute(select(events.c.seq).where(events.c.op == "delete")).all())


def settle(ledger: Ledger, case: Case, extract: Callable[[], Any], baseline: dict) -> dict[str, Any]:
    """Run the extraction of a case and assert its outcome; the landed records.
    ``baseline`` holds the records of the good input, extracted before."""
    known = set(reject_rows(ledger))  # what the good input itself is rejected for
    if case.expect == "refuse":
        with pytest.raises(ChatledgerError) as refused:
            extract()
        assert case.reason in str(refused.value)
        assert records(ledger, "s") == baseline and delete_count(ledger) == 0
        return baseline
    result = extract()
    # finished; a run that rejected input never reports plain success (exit code 4)
    assert result.status == ("with-rejects" if result.stats["rejects"] else "succeeded")
    found = records(ledger, "s")
    rows = [row for row in reject_rows(ledger) if row not in known]
    if case.expect == "reject":
        assert any(case.reason in reason and case.where in location for location, reason in rows), rows
        assert delete_count(ledger) == 0
    else:
        assert rows == [] and result.stats["rejects"] <= len(known)
    if case.check is not None:
        assert case.check(found)
    return found


# -- LibreChat JSON exports: a folder with good.json and the damaged file ---------------------


def message(number: int, parent: str | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "messageId": f"m{number}",
        "parentMessageId": parent if parent is not None else (f"m{number - 1}" if number else NO_PARENT),
        "text": f"turn {number}",
        "isCreatedByUser": number % 2 == 0,
        "createdAt": f"2024-03-01T10:00:{number:02d}.000Z",
        **fields,
    }


def export(conversation: str, messages: list[Any], **fields: Any) -> dict[str, Any]:
    return {
        "conversationId": conversation,
        "title": conversation,
        "endpoint": "openAI",
        "messages": messages,
        **fields,
    }


def text_file(name: str, body: bytes | str) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        target = folder / (os.fsdecode(name) if isinstance(name, bytes) else name)
        target.write_bytes(body if isinstance(body, bytes) else body.encode())

    return build


def json_file(name: str, document: Any) -> Callable[[Path], None]:
    return text_file(name, json.dumps(document))


def symlink(folder: Path) -> None:
    outside = folder.parent / "outside.json"
    outside.write_text(json.dumps(export("outside", [message(0)])))
    (folder / "link.json").symlink_to(outside)


def parents(found: dict, conversation: str) -> dict[str, str | None]:
    return {
        key.rsplit("/", 1)[1]: (doc["data"]["parent"] or "").rsplit("/", 1)[-1] or None
        for key, doc in found.items()
        if key.startswith("message:") and key.split("/")[1] == conversation
    }


def nested(depth: int) -> bytes:
    return b'{"conversationId": "deep", "messages": ' + b"[" * depth + b"]" * depth + b"}"


LIBRECHAT = [
    Case(
        "truncated JSON",
        text_file("bad.json", '{"conversationId": "bad", "messages": [{"messageId'),
        "reject",
        "not a readable JSON file",
        "bad.json",
    ),
    Case("empty file", text_file("bad.json", b""), "reject", "not a readable JSON file", "bad.json"),
    Case(
        "bad UTF-8 content",
        text_file("bad.json", b'{"conversationId": "bad", "title": "\xff\xfe"}'),
        "reject",
        "not a readable JSON file",
        "bad.json",
    ),
    Case(
        "bad UTF-8 file name",
        json_file(b"caf\xe9.json", export("name", [message(0)])),
        "reject",
        "not valid UTF-8",
        "caf\\xe9.json",
    ),
    Case("a symbolic link in the folder", symlink, "reject", "symbolic link", "link.json"),
    Case(
        "cycle in parent links",
        json_file("bad.json", export("cycle", [message(0, "m1"), message(1, "m0")])),
        "lands",
        check=lambda found: sorted(parents(found, "cycle").values(), key=str) == [None, "m0"],
    ),
    Case(
        "missing parent",
        json_file("bad.json", export("orphan", [message(0, "gone"), message(1)])),
        "lands",
        check=lambda found: parents(found, "orphan") == {"m0": None, "m1": "m0"},
    ),
    Case(
        "duplicate message ids",
        json_file("bad.json", export("dup", [message(0), message(0, text="again")])),
        "reject",
        "duplicate messageId m0",
        "bad.json",
        check=lambda found: list(parents(found, "dup")) == ["m0"],
    ),
    Case(
        "the same conversation in two files",
        lambda folder: (
            json_file("a.json", export("twice", [message(0)]))(folder),
            json_file("b.json", export("twice", [message(0)]))(folder),
        ),
        "reject",
        "exported twice",
        "b.json",
    ),
    Case(
        "huge message",
        json_file("big.json", export("big", [message(0, text="x" * (3 * MB))])),
        "lands",
        check=lambda found: (
            len(next(doc for key, doc in found.items() if "/big/m0" in key)["data"]["parts"][0]["text"])
            == 3 * MB
        ),
    ),
    Case(
        "NaN and Infinity",
        text_file(
            "nan.json",
            json.dumps(export("nan", [message(0, tokenCount=1)]))
            .replace('"tokenCount": 1', '"tokenCount": NaN, "x": -Infinity')
            .replace('"title": "nan"', '"title": NaN'),
        ),
        "lands",
        check=lambda found: (
            found[next(k for k in found if k.endswith("/nan") and k.startswith("conv"))]["data"]["title"]
            == "New Chat"
        ),
    ),
    Case(
        "5,000 turns deep (recursive export)",
        text_file(
            "deep.json",
            b'{"conversationId": "deep", "recursive": true, "messages": ['
            + b"".join(
                json.dumps(message(n % 60, f"x{n}") | {"messageId": f"d{n}"}).encode()[:-1]
                + b', "children": ['
                for n in range(5000)
            )
            + b"]}" * 5000
            + b"]}",
        ),
        "lands",
        check=lambda found: len(parents(found, "deep")) == 5000,
    ),
    Case(
        "nested past any chat's depth",
        text_file("deep.json", nested(250_000)),
        "reject",
        "nested deeper than",
        "deep.json",
    ),
    Case(
        "wrong types: conversationId a number",
        json_file("bad.json", export(5, [message(0)])),
        "reject",
        "no conversationId",
        "bad.json",
    ),
    Case(
        "wrong types: messages an object",
        json_file("bad.json", {"conversationId": "x", "messages": {}}),
        "reject",
        "neither messages nor messagesTree",
        "bad.json",
    ),
    Case(
        "wrong types: a message that is a string",
        json_file("bad.json", export("str", [message(0), "hello"])),
        "reject",
        "not a JSON object",
        "bad.json message #",
    ),
    Case(
        "wrong types: messageId a number",
        json_file("bad.json", export("num", [message(0) | {"messageId": 7}])),
        "reject",
        "no messageId",
        "bad.json",
    ),
    Case(
        "wrong types: fields of the wrong type",
        json_file(
            "bad.json",
            export(
                "types",
                [message(0, createdAt=[1], sender=3, model={}, text=5, content="x", files="y", children="z")],
                title=["t"],
                options=[1],
                endpoint=7,
            ),
        ),
        "lands",
        check=lambda found: len(parents(found, "types")) == 1,
    ),
    Case(
        "wrong types: the whole file a list",
        json_file("bad.json", [1, 2]),
        "reject",
        "a JSON list",
        "bad.json",
    ),
    Case("empty export object", json_file("bad.json", {}), "reject", "no conversationId", "bad.json"),
    Case(
        "another platform's file",
        json_file("bad.json", [{"mapping": {}, "title": "t"}]),
        "reject",
        "looks like a ChatGPT export",
        "bad.json",
    ),
    Case(
        "an export with no messages",
        json_file("bad.json", export("none", [])),
        "lands",
        check=lambda found: any(key.endswith("/none") for key in found),
    ),
]


@pytest.mark.parametrize("case", LIBRECHAT, ids=str)
def test_librechat_exports(case, tmp_path):
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", blob_dir=tmp_path / "blobs")
    folder = tmp_path / "exports"
    folder.mkdir()
    json_file("good.json", export("good", [message(0), message(1)]))(folder)
    case.build(folder)
    found = settle(
        ledger, case, lambda: run_extract(ledger, "s", export_paths=[folder], owner_email=OWNER), {}
    )
    assert parents(found, "good") == {"m0": None, "m1": "m0"}
    ledger.close()


def test_an_empty_export_folder_is_refused(tmp_path):
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", blob_dir=tmp_path / "blobs")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ChatledgerError, match=r"no \*\.json export files"):
        run_extract(ledger, "s", export_paths=[tmp_path / "empty"], owner_email=OWNER)
    ledger.close()


# -- mongodump folders ------------------------------------------------------------------------


def damage_collection(name: str, change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        path = folder / "LibreChat" / f"{name}.bson"
        path.write_bytes(change(path.read_bytes()))

    return build


def with_document(name: str, document: bytes) -> Callable[[Path], None]:
    return damage_collection(name, lambda body: body + document)


def bad_utf8_document() -> bytes:
    good = bson.encode({"_id": "x", "conversationId": "c", "user": str(fixtures.ADA), "text": "ab"})
    return good.replace(b"ab\x00", b"\xff\xfe\x00")


DUMP = [
    Case(
        "truncated BSON",
        damage_collection("messages", lambda body: body[:-30]),
        "reject",
        "truncated BSON document",
        "messages.bson",
    ),
    Case(
        "bad UTF-8 inside a document",
        with_document("messages", bad_utf8_document()),
        "reject",
        "does not decode",
        "messages.bson",
    ),
    Case(
        "a document length that lies",
        with_document("messages", (1 << 30).to_bytes(4, "little") + b"\x00" * 8),
        "reject",
        "invalid BSON document length",
        "messages.bson",
    ),
    Case(
        "bad UTF-8 file name beside the collections",
        lambda folder: (folder / "LibreChat" / os.fsdecode(b"x\xff.bson")).write_bytes(b"junk"),
        "lands",
    ),
    Case(
        "NaN in a document",
        with_document(
            "messages",
            bson.encode(
                {
                    "_id": "n",
                    "conversationId": fixtures.EDITS,
                    "messageId": "nan",
                    "user": str(fixtures.ADA),
                    "tokenCount": float("nan"),
                    "parentMessageId": NO_PARENT,
                }
            ),
        ),
        "lands",
        check=lambda found: any(key.endswith("/nan") for key in found),
    ),
    Case(
        "no users.bson",
        lambda folder: (folder / "LibreChat" / "users.bson").unlink(),
        "refuse",
        "no users.bson",
    ),
    Case(
        "empty folder",
        lambda folder: [path.unlink() for path in (folder / "LibreChat").iterdir()],
        "refuse",
        "not a mongodump folder",
    ),
]


@pytest.mark.parametrize("case", DUMP, ids=str)
def test_mongodump_folders(case, tmp_path):
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", blob_dir=tmp_path / "blobs")
    folder = fixtures.write_dump(tmp_path / "dump")
    run_extract(ledger, "s", dump_path=folder)
    baseline = records(ledger, "s")
    case.build(folder)
    found = settle(ledger, case, lambda: run_extract(ledger, "s", dump_path=folder), baseline)
    assert found.keys() >= baseline.keys()  # nothing lost
    ledger.close()


# -- Convex export ZIPs and folders -----------------------------------------------------------


def change_lines(table: str, extra: bytes) -> Callable[[dict], None]:
    def build(contents: dict) -> None:
        contents[f"{table}/documents.jsonl"] += extra

    return build


def message_line(**fields: Any) -> bytes:
    body = {"threadId": data.THREAD, "messageId": "55555555-5555-5555-5555-555555555555", "role": "user",
            "status": "final", "text": "hi", "createdAtMs": data.T0 + 50_000, "updatedAtMs": data.T0 + 50_000,
            "_id": "m:x", "_creationTime": data.T0 + 50_000}  # fmt: skip
    return json.dumps(body | fields).encode() + b"\n"


def drop(*prefixes: str) -> Callable[[dict], None]:
    def build(contents: dict) -> None:
        for name in [name for name in contents if name.startswith(prefixes)]:
            del contents[name]

    return build


def tables_line(body: bytes) -> Callable[[dict], None]:
    def build(contents: dict) -> None:
        contents["_tables/documents.jsonl"] = body

    return build


CONVEX = [
    Case(
        "truncated line",
        change_lines("messages", message_line()[:40] + b"\n"),
        "reject",
        "not a JSON document",
        "messages/documents.jsonl:3",
    ),
    Case(
        "bad UTF-8 in a line",
        change_lines("messages", message_line(text="\udcff").replace(b"\\udcff", b"\xff")),
        "reject",
        "not a JSON document",
        "messages/documents.jsonl:3",
    ),
    Case(
        "NaN in a line",
        change_lines("messages", message_line().replace(b'"text": "hi"', b'"text": NaN')),
        "reject",
        "not a JSON document",
        "messages/documents.jsonl:3",
    ),
    Case(
        "deep nesting",
        change_lines("messages", message_line()[:-2] + b', "x": ' + b"[" * 5000 + b"]" * 5000 + b"}\n"),
        "reject",
        "not a JSON document",
        "messages/documents.jsonl:3",
    ),
    Case(
        "wrong types: a line that is a list",
        change_lines("messages", b"[1, 2]\n"),
        "reject",
        "not a JSON object",
        "messages/documents.jsonl:3",
    ),
    Case(
        "wrong types: messageId a number",
        change_lines("messages", message_line(messageId=5)),
        "reject",
        "without messageId",
        "messages/documents.jsonl:3",
    ),
    Case(
        "duplicate ids",
        change_lines("messages", message_line(messageId=data.USER_MESSAGE)),
        "reject",
        "superseded by a later messages document",
        "messages/documents.jsonl",
    ),
    Case(
        "missing parent thread",
        change_lines("messages", message_line(threadId="99999999-9999-4999-8999-999999999999")),
        "lands",
        check=lambda found: any(key.startswith("message:99999999") for key in found),
    ),
    Case(
        "huge message",
        change_lines("messages", message_line(text="y" * (2 * MB))),
        "lands",
        check=lambda found: any(len(str(doc["data"])) > 2 * MB for doc in found.values()),
    ),
    Case(
        "zip-slip entry",
        lambda contents: contents.update({"../../escape.jsonl": b"{}\n"}),
        "reject",
        "'..' in the path would leave the export",
        "../../escape.jsonl",
    ),
    Case(
        "a table listed but missing",
        drop("runs/"),
        "reject",
        "lists 'runs', the export has no runs/documents.jsonl",
    ),
    Case("no _tables", drop("_tables/"), "reject", "no _tables/documents.jsonl"),
    Case(
        "README only",
        lambda contents: [contents.pop(name) for name in list(contents) if name != "README.md"],
        "refuse",
        "no <table>/documents.jsonl",
    ),
    Case(
        "conflicting table numbers",
        tables_line(b'{"name": "users", "id": 1}\n{"name": "runs", "id": 1}\n'),
        "refuse",
        "to both 'users' and 'runs'",
    ),
    Case("a corrupt entry", "corrupt", "refuse", "is corrupt"),
]


def corrupt_zip(path: Path) -> None:
    """Flip bytes inside the compressed data of messages/documents.jsonl (CRC fails)."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("messages/documents.jsonl")
    body = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for offset in range(start + 2, start + 2 + min(8, info.compress_size - 2)):
        body[offset] ^= 0xFF
    path.write_bytes(bytes(body))


@pytest.mark.parametrize("case", CONVEX, ids=str)
def test_convex_zips(case, tmp_path):
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", blob_dir=tmp_path / "blobs")
    contents = entries(data.original())
    extract_export(ledger, write_zip(tmp_path / "good.zip", contents), stream="s")
    baseline = records(ledger, "s")
    path = tmp_path / "bad.zip"
    if case.build == "corrupt":
        corrupt_zip(write_zip(path, contents))
    else:
        case.build(contents)
        write_zip(path, contents)
    found = settle(ledger, case, lambda: extract_export(ledger, path, stream="s"), baseline)
    assert found.keys() >= baseline.keys()
    ledger.close()


FOLDER = [
    Case(
        "bad UTF-8 file name",
        lambda folder: (folder / os.fsdecode(b"users-\xff.jsonl")).write_bytes(b"{}"),
        "reject",
        "not valid UTF-8",
        "users-\\xff.jsonl",
    ),
    Case(
        "a symbolic link to a table",
        lambda folder: (
            (folder / "runs" / "documents.jsonl").rename(folder.parent / "outside.jsonl"),
            (folder / "runs" / "documents.jsonl").symlink_to(folder.parent / "outside.jsonl"),
        ),
        "reject",
        "symbolic link",
        "runs/documents.jsonl",
    ),
    Case(
        "empty folder",
        lambda folder: [path.unlink() for path in folder.rglob("*") if path.is_file()],
        "refuse",
        "no <table>/documents.jsonl",
    ),
]


@pytest.mark.parametrize("case", FOLDER, ids=str)
def test_convex_folders(case, tmp_path):
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", blob_dir=tmp_path / "blobs")
    folder = write_folder(tmp_path / "export", entries(data.original()))
    extract_export(ledger, folder, stream="s")
    baseline = records(ledger, "s")
    case.build(folder)
    found = settle(ledger, case, lambda: extract_export(ledger, folder, stream="s"), baseline)
    assert found.keys() >= baseline.keys()
    ledger.close()
