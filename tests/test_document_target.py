"""The document-store skeleton (ledger/document_target.py) on a real MongoDB wire-protocol
server: SecantusDB 0.7.0b3 (tests/mongo_server.py), not mongod."""

from __future__ import annotations

import bson
import pytest
from pymongo import errors

from ledger.kit import (
    MARKER_FIELD,
    DocumentTarget,
    Item,
    PermanentError,
    TransientError,
    classify_mongo_error,
    document_id,
    marker,
)


class Target(DocumentTarget):
    marked_collections = ("things",)

    def __init__(self, target: str) -> None:
        self.target = target


@pytest.fixture
def target(mongo_database):
    opened = Target("docs")
    opened.connect(mongo_database.uri, mongo_database.name)
    yield opened
    opened.close()


def item(key: str, version: int, digest: str | None) -> Item:
    return Item("s", key, "conversation", version, digest, {} if digest else None)


def test_ids_are_deterministic_and_separate_streams_keys_and_kinds():
    assert document_id("s", "conversation:1") == document_id("s", "conversation:1")
    ids = {
        document_id("s", "conversation:1"),
        document_id("t", "conversation:1"),
        document_id("s", "conversation:2"),
        document_id("s", "conversation:1", "audit"),
    }
    assert len(ids) == 4 and all(isinstance(i, bson.ObjectId) for i in ids)


def test_upserts_replace_the_same_document_and_markers_heal(target, mongo_database):
    first = {"_id": document_id("s", "c1"), "title": "one"}
    marked = {**first, MARKER_FIELD: marker("docs", 7, [item("c1", 1, "h1"), item("m1", 2, None)], {"r": 1})}
    target.upsert("things", [marked])
    target.upsert("things", [{**marked, "title": "two"}])
    with mongo_database.client() as client:
        documents = list(client[mongo_database.name].things.find())
    assert [d["title"] for d in documents] == ["two"]

    healed = sorted(target.reconcile([7, 8]), key=lambda m: m["key"])
    assert healed == [
        {"stream": "s", "key": "c1", "version": 1, "hash": "h1", "run_id": 7, "target_ref": {"r": 1}},
        {"stream": "s", "key": "m1", "version": 2, "hash": None, "run_id": 7, "target_ref": {"r": 1}},
    ]
    assert list(target.reconcile([8])) == [] and list(Target("other").reconcile([7])) == []
    assert list(target.marked_records("things", ["s"])) == [("s", "c1")]
    target.remove("things", [first["_id"]])
    assert list(target.reconcile([7])) == []


def test_pymongo_errors_are_classified():
    assert classify_mongo_error(errors.AutoReconnect("gone")) is TransientError
    assert classify_mongo_error(errors.NetworkTimeout("slow")) is TransientError
    assert classify_mongo_error(errors.ServerSelectionTimeoutError("none")) is TransientError
    assert classify_mongo_error(errors.DuplicateKeyError("dup", 11000)) is PermanentError
    assert classify_mongo_error(errors.WriteError("bad", 2)) is PermanentError
    assert classify_mongo_error(errors.DocumentTooLarge("big")) is PermanentError
    assert classify_mongo_error(bson.errors.InvalidDocument("bad key")) is PermanentError
    labelled = errors.OperationFailure("retry me", 91, {"errorLabels": ["RetryableWriteError"]})
    assert classify_mongo_error(labelled) is TransientError
    assert classify_mongo_error(errors.BulkWriteError({"writeErrors": [{"code": 11000}]})) is PermanentError
    assert classify_mongo_error(errors.BulkWriteError({"writeErrors": [], "writeConcernErrors": [{}]})) is (
        TransientError
    )
    assert classify_mongo_error(ValueError("a bug")) is None


def test_a_real_duplicate_key_from_the_server_is_permanent(target, mongo_database):
    with mongo_database.client() as client:
        things = client[mongo_database.name].things
        things.create_index("name", unique=True)
        things.insert_one({"name": "x"})
        with pytest.raises(errors.PyMongoError) as raised:
            target.upsert("things", [{"_id": document_id("s", "other"), "name": "x"}])
    assert classify_mongo_error(raised.value) is PermanentError
