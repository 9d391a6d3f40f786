"""The canonical encoder and content hash, pinned by fixed vectors (DESIGN §3).

If one of these vectors changes, every hash in every ledger changes: bump
SCHEMA_VERSION on purpose, never by accident.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.canonical import SCHEMA_VERSION, CanonicalError, canonical_bytes, loads
from ledger.records import Record, encode_record, record_hash

UTC = dt.UTC

VECTORS = [
    ({"text": "café Straße 日本語 العربية"}, '{"text":"café Straße 日本語 العربية"}'),
    ({"e": "👩\u200d💻🇳🇴👍🏽"}, '{"e":"👩\u200d💻🇳🇴👍🏽"}'),
    (
        {"b": {"d": [3, {"f": None, "e": True}], "c": "x"}, "a": []},
        '{"a":[],"b":{"c":"x","d":[3,{"e":true,"f":null}]}}',
    ),
    (
        {
            "int": 1,
            "float": 1.0,
            "neg0": -0.0,
            "small": 1e-7,
            "big": 1e16,
            "frac": 0.1,
            "i64": 9223372036854775807,
        },
        '{"big":1e+16,"float":1.0,"frac":0.1,"i64":9223372036854775807,"int":1,"neg0":-0.0,"small":1e-7}',
    ),
    (
        {
            "s": dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC),
            "ms": dt.datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC),
            "us": dt.datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC),
            "plus2": dt.datetime(2024, 5, 1, 14, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "naive": dt.datetime(2024, 5, 1, 12, 0, 0),
            "date": dt.date(2024, 5, 1),
        },
        '{"date":"2024-05-01","ms":"2024-05-01T12:00:00.123Z","naive":"2024-05-01T12:00:00Z",'
        '"plus2":"2024-05-01T12:00:00Z","s":"2024-05-01T12:00:00Z",'
        '"us":"2024-05-01T12:00:00.123456Z"}',
    ),
    # object keys sort by code point (= UTF-8 byte order), not UTF-16 order
    ({"😀": 1, "\uffff": 2, "é": 3, "z": 4, "Z": 5, "": 6}, '{"":6,"Z":5,"z":4,"é":3,"\uffff":2,"😀":1}'),
    (("tuple", 1), '["tuple",1]'),
]


@pytest.mark.parametrize(("value", "expected"), VECTORS)
def test_canonical_bytes_vectors(value, expected):
    assert canonical_bytes(value) == expected.encode("utf-8")


def test_ints_and_floats_hash_differently():
    assert canonical_bytes({"n": 1}) != canonical_bytes({"n": 1.0})


def test_record_hash_is_pinned():
    record = Record(
        "syn",
        "message",
        "message:c/m",
        {"conversation": "conversation:c", "parts": [{"type": "text", "text": "héllo 🌍"}], "n": 1, "x": 1.5},
        {"native": True},
        ["conversation:c"],
    )
    body, digest = encode_record(record)
    assert SCHEMA_VERSION == 1
    assert (
        body
        == (
            '{"data":{"conversation":"conversation:c","n":1,"parts":[{"text":"héllo 🌍",'
            '"type":"text"}],"x":1.5},"key":"message:c/m","kind":"message","raw":{"native":true},'
            '"refs":["conversation:c"],"stream":"syn","v":1}'
        ).encode()
    )
    assert digest == hashlib.sha256(body).hexdigest()
    assert digest == "03f8e4a31d26a7a07e7ffd653e7666daaaf94c5654516122f3f3237e8ed73eb0"


def test_every_field_is_part_of_the_hash():
    base = Record("s", "message", "k", {"a": 1}, {"r": 1}, ["x"])
    variants = [
        Record("s2", "message", "k", {"a": 1}, {"r": 1}, ["x"]),
        Record("s", "file", "k", {"a": 1}, {"r": 1}, ["x"]),
        Record("s", "message", "k2", {"a": 1}, {"r": 1}, ["x"]),
        Record("s", "message", "k", {"a": 2}, {"r": 1}, ["x"]),
        Record("s", "message", "k", {"a": 1}, {"r": 2}, ["x"]),
        Record("s", "message", "k", {"a": 1}, {"r": 1}, ["y"]),
    ]
    hashes = {record_hash(record) for record in variants}
    assert record_hash(base) not in hashes and len(hashes) == len(variants)


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"a": float("nan")}, "$.a"),
        ({"a": [1, {"b": float("inf")}]}, "$.a[1].b"),
        ([float("-inf")], "$[0]"),
        (float("nan"), "$"),
    ],
)
def test_non_finite_floats_are_rejected_with_their_path(value, where):
    with pytest.raises(CanonicalError) as caught:
        canonical_bytes(value)
    assert str(caught.value).startswith(where + ":")


def test_subclasses_do_not_hide_nan():
    class Mapping(dict):
        pass

    class Number(float):
        pass

    with pytest.raises(CanonicalError):
        canonical_bytes(Mapping(a=Number("nan")))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"blob": b"\x00\x01"}, "bytes are never inline"),
        ({"s": {1, 2}}, "has no canonical JSON form"),
        ({1: "x"}, "is not a string"),
        ({"big": 2**70}, "outside the 64-bit range"),
        ({"t": dt.time(12, 0)}, "has no canonical JSON form"),
    ],
)
def test_values_without_canonical_form(value, message):
    with pytest.raises(CanonicalError, match=message):
        canonical_bytes(value)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_canonical_bytes_round_trip_and_are_stable(value):
    encoded = canonical_bytes(value)
    decoded = loads(encoded)
    assert canonical_bytes(decoded) == encoded  # one canonical form per value
    if isinstance(value, float):
        assert decoded == value or (math.isnan(decoded) and math.isnan(value))


@given(st.dictionaries(st.text(), st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=8))
def test_key_order_never_matters(mapping):
    reordered = dict(reversed(list(mapping.items())))
    assert canonical_bytes(mapping) == canonical_bytes(reordered)
