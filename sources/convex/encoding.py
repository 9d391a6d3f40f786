"""The two JSON encodings of Convex snapshot exports, decoded to one JSON-safe form.

Every ``<table>/documents.jsonl`` line is one whole document. How values are written
depends on when the export was made (detected from the first line of any
``generated_schema.jsonl``):

| | era A (before 2026-03-10): shape string | era B (from 2026-03-10): ``"uniform"`` |
| --- | --- | --- |
| Int64 | a string, ``"33"`` | a number without a decimal point, ``33`` |
| Float64 | a number, whole values as ``1.0`` | a number with a decimal point |
| NaN, ±Infinity | ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` | ``{"$float": "<base64 LE bytes>"}`` |
| Bytes | a base64 string | ``{"$bytes": "<base64>"}`` |

In era A a string is only known to be an Int64 (or bytes, or infinity) from the table's
shape or from a per-document hint line (``{"<_id>": <context>}``) in the same file; see
:mod:`sources.convex.shapes`. Where neither settles it, the string stays a string, as in
Convex's own importer.

Both eras decode to **the era-B form**: integers as JSON integers, floats as floats,
NaN/±Infinity as ``{"$float": …}`` (the canonical encoder rejects non-finite floats),
bytes as ``{"$bytes": …}``. The same data therefore hashes the same whichever era
exported it, and a re-export in the new format changes nothing in the ledger.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from typing import Any

import orjson

from sources.convex import shapes as shp
from sources.convex.shapes import Shape

ERA_A, ERA_B, ERA_UNKNOWN = "A", "B", "unknown"
ERA_NAMES = {
    ERA_A: "A (shape strings in generated_schema.jsonl: Int64 as strings, bytes as base64)",
    ERA_B: 'B ("uniform": Int64 as numbers, $bytes / $float objects)',
    ERA_UNKNOWN: "unknown (no generated_schema.jsonl: values taken as written)",
}
UNIFORM = "uniform"


class DecodeError(ValueError):
    """A value that contradicts its own encoding (a bad hint, an unparsable Int64)."""


def float_token(value: float) -> dict[str, str]:
    """A non-finite float in the era-B form: base64 of its 8 little-endian bytes."""
    return {"$float": base64.b64encode(struct.pack("<d", value)).decode("ascii")}


def bytes_token(encoded: str) -> dict[str, str]:
    """Bytes in the era-B form, base64 normalised (so equal bytes compare equal)."""
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError(f"{encoded[:40]!r} is not base64") from None
    return {"$bytes": base64.b64encode(raw).decode("ascii")}


def is_token(value: Any) -> bool:
    """An era-B encoded value: an object whose (only) key starts with ``$``."""
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)).startswith("$")


def token_float(value: Any) -> float | None:
    """The float a ``{"$float": …}`` token holds, or None."""
    if not (isinstance(value, dict) and isinstance(value.get("$float"), str)):
        return None
    try:
        return struct.unpack("<d", base64.b64decode(value["$float"]))[0]
    except (binascii.Error, struct.error):
        return None


def era_of_schema_line(line: bytes) -> str:
    """The era a ``generated_schema.jsonl`` first line says."""
    try:
        first = orjson.loads(line)
    except orjson.JSONDecodeError:
        return ERA_UNKNOWN
    if first == UNIFORM:
        return ERA_B
    return ERA_A if isinstance(first, str) else ERA_UNKNOWN


class TableDecoder:
    """Decodes the documents of one table, knowing its era, shape and per-document hints.

    ``hints`` maps a document ``_id`` to its export context (era A only). A shape that
    cannot be parsed is reported in ``problem`` and decoding falls back to "strings
    stay strings".
    """

    def __init__(self, era: str, shape_text: str | None = None, hints: dict[str, Any] | None = None) -> None:
        self.era = era
        self.hints = hints or {}
        self.problem: str | None = None
        self.shape: Shape = shp.UNKNOWN
        if era == ERA_A and shape_text is not None:
            try:
                self.shape = shp.parse_shape(shape_text)
            except shp.ShapeError as exc:
                self.problem = f"the table's shape could not be read ({exc}); strings kept as strings"
                self.shape = ("string",)

    def decode(self, document: Any) -> Any:
        if self.era != ERA_A:
            return _check_tokens(document)
        hint = self.hints.get(document.get("_id")) if isinstance(document, dict) else None
        return _apply(hint or shp.INFER, document, [self.shape])


def _check_tokens(value: Any) -> Any:
    """Era B (and unknown): values are already in the target form; tokens are checked."""
    if isinstance(value, dict):
        if is_token(value):
            key, inner = next(iter(value.items()))
            if key == "$bytes" and isinstance(inner, str):
                return bytes_token(inner)
            if key == "$float" and token_float(value) is None:
                raise DecodeError(f"{inner!r} is not a valid $float")
            return value
        return {key: _check_tokens(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_check_tokens(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return float_token(value)
    return value


def _apply(context: Any, value: Any, shapes: list[Shape]) -> Any:
    """Convex's ``ExportContext::apply`` for era A, producing the era-B form."""
    if context in ("map", "set"):
        return value  # deprecated types: kept exactly as exported
    if isinstance(value, str):
        return _string(context, value, shapes)
    if isinstance(value, list):
        elements = shp.array_element(shapes)
        if isinstance(context, list):
            if len(context) != len(value):
                raise DecodeError("an array hint does not match the array's length")
            return [_apply(hint, item, elements) for hint, item in zip(context, value)]
        return [_apply(shp.INFER, item, elements) for item in value]
    if isinstance(value, dict):
        hints = context if isinstance(context, dict) and "$float64NaN" not in context else {}
        return {
            key: _apply(hints.get(key, shp.INFER), item, shp.object_field(shapes, key))
            for key, item in value.items()
        }
    if isinstance(value, float) and not math.isfinite(value):
        return float_token(value)
    return value


def _string(context: Any, value: str, shapes: list[Shape]) -> Any:
    if context == shp.INFER:
        context = shp.inferred_string_context(shapes) or shp.INFER
    if isinstance(context, dict) and "$float64NaN" in context:
        return {"$float": context["$float64NaN"]}  # the exact NaN bits, as Convex keeps them
    if context == shp.INFER:
        return value
    if context == shp.INT64:
        try:
            return int(value)
        except ValueError:
            raise DecodeError(f"{value[:40]!r} is not an Int64") from None
    if context == shp.FLOAT64_INF:
        if value not in ("Infinity", "-Infinity"):
            raise DecodeError(f"{value[:40]!r} is not an infinity")
        return float_token(math.inf if value == "Infinity" else -math.inf)
    if context == shp.BYTES:
        return bytes_token(value)
    raise DecodeError(f"unknown export hint {context!r}")
