"""Convex snapshot exports built by the tests, in either encoding era.

Documents are written with Python values standing for Convex values: ``int`` is an
Int64, ``float`` a Float64 (NaN and ±inf included), ``bytes`` Bytes. ``write_export``
encodes them the way ``npx convex export`` does in each era (see
``sources/convex/encoding.py``): era B (``"uniform"``) with numbers and ``$float`` /
``$bytes`` objects; era A with Int64 and bytes as strings, a shape string per table and a
per-document hint line wherever the shape leaves a string ambiguous. Nested objects are
given the shape ``unknown`` (what Convex infers for mixed ``v.any()`` payloads), so Int64
or bytes inside them need hints, as in real exports.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
import zipfile
from pathlib import Path
from typing import Any

README = (
    "Welcome to your Convex snapshot export!\n\nDocuments for each table are listed as lines "
    "of JSON in `<table_name>/documents.jsonl` files.\n"
)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# -- era B ---------------------------------------------------------------------------------


def encode_b(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": _b64(struct.pack("<d", value))}
    if isinstance(value, bytes):
        return {"$bytes": _b64(value)}
    if isinstance(value, list):
        return [encode_b(item) for item in value]
    return {key: encode_b(item) for key, item in value.items()}


# -- era A ---------------------------------------------------------------------------------


def encode_a(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, bytes):
        return _b64(value)
    if isinstance(value, list):
        return [encode_a(item) for item in value]
    return {key: encode_a(item) for key, item in value.items()}


def _shape(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "normalfloat64" if math.isfinite(value) else "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "bytes"
    return "unknown"  # objects and arrays inside documents


def table_shape(documents: list[dict[str, Any]]) -> tuple[str, dict[str, set[str]]]:
    fields: dict[str, set[str]] = {}
    for document in documents:
        for key, value in document.items():
            fields.setdefault(key, set()).add(_shape(value))
    for shapes in fields.values():
        if "float64" in shapes:  # Convex widens normal floats to float64 once a NaN/inf is seen
            shapes.discard("normalfloat64")
    parts = []
    for key in sorted(fields):
        optional = "?" if any(key not in document for document in documents) else ""
        parts.append(f'"{key}"{optional}: {" | ".join(sorted(fields[key]))}')
    return "{" + ", ".join(parts) + "}", fields


def _string_contexts(shapes: set[str]) -> set[str]:
    contexts: set[str] = set()
    for shape in shapes:
        contexts |= {
            "int64": {"int64"},
            "float64": {"nan", "inf"},
            "string": {"infer"},
            "bytes": {"bytes"},
            "unknown": {"infer", "int64", "nan", "inf", "bytes"},
        }.get(shape, set())
    return contexts


def _hint(value: Any, shapes: set[str]) -> Any:
    """The export context a value needs under these shapes ("infer": none)."""
    unique = _string_contexts(shapes)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return "infer"
    if isinstance(value, int):
        return "infer" if unique == {"int64"} else "int64"
    if isinstance(value, float):
        if math.isnan(value):
            return {"$float64NaN": _b64(struct.pack("<d", value))}
        if math.isinf(value):
            return "infer" if unique == {"inf"} else "float64inf"
        return "infer"
    if isinstance(value, bytes):
        return "infer" if unique == {"bytes"} else "bytes"
    if isinstance(value, list):
        inner = [_hint(item, {"unknown"}) for item in value]
        return "infer" if all(hint == "infer" for hint in inner) else inner
    inner = {key: _hint(item, {"unknown"}) for key, item in value.items()}
    inner = {key: hint for key, hint in inner.items() if hint != "infer"}
    return inner or "infer"


def era_a_schema(documents: list[dict[str, Any]]) -> list[Any]:
    shape, fields = table_shape(documents)
    lines: list[Any] = [shape]
    for document in documents:
        hints = {key: _hint(value, fields[key]) for key, value in document.items()}
        hints = {key: hint for key, hint in hints.items() if hint != "infer"}
        if hints:
            lines.append({document["_id"]: hints})
    return lines


# -- the export ----------------------------------------------------------------------------


def _lines(items: list[Any]) -> bytes:
    return b"".join(json.dumps(item, ensure_ascii=False).encode() + b"\n" for item in items)


def _with_system_fields(table: str, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for number, document in enumerate(documents, start=1):
        full = {"_creationTime": 1_735_000_000_000.0 + number + 0.5, "_id": f"{table}:{number}", **document}
        out.append(full)
    return out


def entries(
    tables: dict[str, list[dict[str, Any]]],
    *,
    era: str = "B",
    components: dict[str, dict[str, list[dict[str, Any]]]] | None = None,
    storage: dict[str, tuple[bytes, str | None]] | None = None,
    bad_checksums: tuple[str, ...] = (),
) -> dict[str, bytes]:
    """Entry name → bytes of an export (see the module doc for value types)."""
    out: dict[str, bytes] = {"README.md": README.encode()}
    groups = [("", tables)] + [(f"_components/{name}/", group) for name, group in (components or {}).items()]
    for prefix, group in groups:
        out[f"{prefix}_tables/documents.jsonl"] = _lines(
            [{"name": name, "id": 10001 + i} for i, name in enumerate(group)]
        )
        for name, documents in group.items():
            documents = _with_system_fields(name, documents)
            encode = encode_b if era == "B" else encode_a
            out[f"{prefix}{name}/documents.jsonl"] = _lines([encode(document) for document in documents])
            schema = ["uniform"] if era == "B" else era_a_schema(documents)
            out[f"{prefix}{name}/generated_schema.jsonl"] = _lines(schema)
    if storage is not None:
        metadata = []
        for number, (storage_id, (content, mime)) in enumerate(storage.items(), start=1):
            digest = hashlib.sha256(content + (b"!" if storage_id in bad_checksums else b"")).digest()
            metadata.append(
                {"_id": storage_id, "_creationTime": 1_735_000_000_000.0 + number, "sha256": _b64(digest),
                 "size": len(content), "contentType": mime, "internalId": f"internal-{number}"}
            )  # fmt: skip
            extension = {"image/png": ".png", "text/plain": ".txt"}.get(mime or "", "")
            out[f"_storage/{storage_id}{extension}"] = content
        out["_storage/documents.jsonl"] = _lines(metadata)
    return out


ZIP_ENTRY_TIME = (2026, 1, 1, 0, 0, 0)


def write_zip(path: Path, contents: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in contents.items():
            # a fixed entry time: the same tables make the same bytes (the export's sha256 is its
            # fingerprint), however far apart two writes are (the clock's 2 s steps made it flaky)
            entry = zipfile.ZipInfo(name, date_time=ZIP_ENTRY_TIME)
            archive.writestr(entry, data, compress_type=zipfile.ZIP_DEFLATED)
    return path


def write_folder(path: Path, contents: dict[str, bytes]) -> Path:
    for name, data in contents.items():
        target = path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return path


def write_export(path: Path, tables: dict[str, list[dict[str, Any]]], **options: Any) -> Path:
    return write_zip(path, entries(tables, **options))
