"""Convex's shape notation and the two export encodings, decoded to one form.

The property test writes random documents the way each era exports them (see
``tests/convex_laravel/exports.py``) and checks that both decode to the same values.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.canonical import canonical_bytes
from sources.convex import shapes
from sources.convex.encoding import ERA_A, ERA_B, DecodeError, TableDecoder
from tests.convex_laravel.exports import encode_a, encode_b, era_a_schema


def test_shape_notation_round_trip_of_the_parts_decoding_needs():
    shape = shapes.parse_shape(
        '{"_creationTime": normalfloat64, "_id": id<10001>, "n"?: int64 | string, '
        '"tags": array<"a" | "b">, "meta": record<string, bytes>, "any": unknown}'
    )
    assert shape[0] == "object" and set(shape[1]) == {"_creationTime", "_id", "n", "tags", "meta", "any"}

    def field(name: str) -> list:
        return shapes.object_field([shape], name)

    assert shapes.string_contexts(field("n")) == ["int64", "infer"]  # ambiguous: needs a hint
    assert shapes.inferred_string_context(field("_id")) == "infer"
    assert shapes.inferred_string_context(shapes.array_element(field("tags"))) == "infer"
    assert shapes.inferred_string_context(shapes.object_field(field("meta"), "k")) == "bytes"
    assert shapes.inferred_string_context(field("any")) is None
    with pytest.raises(shapes.ShapeError):
        shapes.parse_shape('{"n": int65}')


def test_a_wrong_hint_is_a_decode_error_not_a_crash():
    decoder = TableDecoder(ERA_A, '{"_id": string, "n": unknown}', {"d1": {"n": "int64"}})
    with pytest.raises(DecodeError, match="not an Int64"):
        decoder.decode({"_id": "d1", "n": "seven"})


convex_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.binary(max_size=8),
)
convex_values = st.recursive(
    convex_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.from_regex(r"[a-z]{1,4}", fullmatch=True), inner, max_size=3)
    ),
    max_leaves=8,
)
documents = st.lists(
    st.dictionaries(st.sampled_from(["a", "b", "c"]), convex_values, max_size=3), min_size=1, max_size=4
)


@settings(max_examples=150, deadline=None)
@given(documents)
def test_both_eras_decode_to_the_same_values(rows):
    rows = [{"_id": f"t:{number}", "_creationTime": 1.5 + number, **row} for number, row in enumerate(rows)]
    schema = era_a_schema(rows)
    hints = {key: value for line in schema[1:] for key, value in line.items()}
    era_a = TableDecoder(ERA_A, schema[0], hints)
    era_b = TableDecoder(ERA_B)
    for row in rows:
        decoded_a, decoded_b = era_a.decode(encode_a(row)), era_b.decode(encode_b(row))
        assert canonical_bytes(decoded_a) == canonical_bytes(decoded_b)  # JSON-safe, and equal


def test_non_finite_floats_become_float_tokens():
    decoded = TableDecoder(ERA_B).decode({"x": math.inf, "y": [math.nan]})
    assert set(decoded["x"]) == {"$float"} and set(decoded["y"][0]) == {"$float"}
