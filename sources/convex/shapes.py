"""Convex's inferred table shapes, as era-A exports write them in ``generated_schema.jsonl``.

The first line of an era-A ``generated_schema.jsonl`` is a JSON string holding the table's
shape in Convex's own notation (``crates/shape_inference/src/pretty.rs``), for example
``{"_creationTime": normalfloat64, "_id": id<10001>, "n": int64 | string}``. This module
parses that notation and answers the one question decoding needs: *a value that was
exported as a JSON string, at this place in the shape: what was it?* An ``int64`` is
exported as ``"33"``, bytes as base64, ±infinity as ``"Infinity"``; when the shape allows
only one of these, the string can be decoded without a per-document hint (Convex's
``ExportContext::Infer``). When it allows several, Convex wrote a per-document hint, and
without one the string stays a string (Convex's own importer does the same).

A shape is a tuple: ``(name,)`` for units (``int64``, ``string``, ``unknown`` …),
``("literal", text)``, ``("id", table_number)``, ``("array"|"set", element)``,
``("map"|"record", key, value)``, ``("object", {field: value})`` and
``("union", (option, …))``.
"""

from __future__ import annotations

Shape = tuple

# Order matters: a unit is recognised by prefix, as Convex's parser does it.
UNITS = (
    "never", "null", "int64", "float64", "-inf", "inf", "NaN", "normalfloat64", "-0",
    "boolean", "field_name", "string", "bytes", "unknown",
)  # fmt: skip

# What a string in the export can stand for (Convex's ExportContext names).
INFER, INT64, FLOAT64_INF, FLOAT64_NAN, BYTES = "infer", "int64", "float64inf", "nan", "bytes"


class ShapeError(ValueError):
    """A shape string that is not in Convex's notation."""


def parse_shape(text: str) -> Shape:
    shape, rest = _union(text)
    if rest:
        raise ShapeError(f"unexpected text at {rest[:40]!r}")
    return shape


def _union(text: str) -> tuple[Shape, str]:
    options = []
    while True:
        shape, text = _single(text)
        options.append(shape)
        if text.startswith(" | "):
            text = text[3:]
            continue
        break
    if len(options) == 1:
        return options[0], text
    return ("union", tuple(options)), text


def _until(text: str, terminator: str) -> tuple[str, str]:
    index = text.find(terminator)
    if index < 0:
        raise ShapeError(f"expected {terminator!r} in {text[:40]!r}")
    return text[:index], text[index + len(terminator) :]


def _expect(text: str, terminator: str) -> str:
    if not text.startswith(terminator):
        raise ShapeError(f"expected {terminator!r} at {text[:40]!r}")
    return text[len(terminator) :]


def _single(text: str) -> tuple[Shape, str]:
    for unit in UNITS:
        if text.startswith(unit):
            return (unit,), text[len(unit) :]
    if text.startswith("{"):
        return _object(text[1:])
    for container in ("array<", "set<"):
        if text.startswith(container):
            element, rest = _union(text[len(container) :])
            return (container[:-1], element), _expect(rest, ">")
    for container in ("map<", "record<"):
        if text.startswith(container):
            key, rest = _union(text[len(container) :])
            value, rest = _union(_expect(rest, ", "))
            return (container[:-1], key, value), _expect(rest, ">")
    if text.startswith("id<"):
        number, rest = _until(text[3:], ">")
        return ("id", number), rest
    if text.startswith('"'):
        literal, rest = _until(text[1:], '"')
        return ("literal", literal), rest
    raise ShapeError(f"unexpected text at {text[:40]!r}")


def _object(text: str) -> tuple[Shape, str]:
    fields: dict[str, Shape] = {}
    while not text.startswith("}"):
        name, text = _until(text, ": ")
        name = name.removesuffix("?")
        if not (len(name) >= 2 and name[0] == '"' and name[-1] == '"'):
            raise ShapeError(f"cannot read the object key {name[:40]!r}")
        value, text = _union(text)
        fields[name[1:-1]] = value
        if text.startswith(", "):
            text = text[2:]
        elif not text.startswith("}"):
            raise ShapeError(f"unexpected text at {text[:40]!r}")
    return ("object", fields), text[1:]


# -- navigating a set of possible shapes ------------------------------------------------

UNKNOWN: Shape = ("unknown",)


def options(shapes: list[Shape]) -> list[Shape]:
    """Union members flattened (Convex never nests unions)."""
    out = []
    for shape in shapes:
        out.extend(shape[1] if shape[0] == "union" else [shape])
    return out


def array_element(shapes: list[Shape]) -> list[Shape]:
    out = []
    for shape in options(shapes):
        if shape[0] == "array":
            out.append(shape[1])
        elif shape[0] == "unknown":
            out.append(shape)
    return out


def object_field(shapes: list[Shape], field: str) -> list[Shape]:
    out = []
    for shape in options(shapes):
        if shape[0] == "object" and field in shape[1]:
            out.append(shape[1][field])
        elif shape[0] == "record":
            out.append(shape[2])
        elif shape[0] == "unknown":
            out.append(shape)
    return out


def string_contexts(shapes: list[Shape]) -> list[str]:
    """What a string exported at this place can stand for, without duplicates."""
    found: list[str] = []

    def add(*contexts: str) -> None:
        for context in contexts:
            if context not in found:
                found.append(context)

    for shape in options(shapes):
        name = shape[0]
        if name == "int64":
            add(INT64)
        elif name in ("-inf", "inf"):
            add(FLOAT64_INF)
        elif name in ("NaN", "float64"):
            add(FLOAT64_NAN, FLOAT64_INF)
        elif name in ("literal", "id", "field_name", "string"):
            add(INFER)
        elif name == "bytes":
            add(BYTES)
        elif name == "unknown":
            add(INFER, FLOAT64_INF, FLOAT64_NAN, INT64, BYTES)
    return found


def inferred_string_context(shapes: list[Shape]) -> str | None:
    """The one thing a string here can be, or None when the shape leaves it open."""
    found = string_contexts(shapes)
    return found[0] if len(found) == 1 else None
