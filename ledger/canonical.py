"""The one canonical JSON encoder of the project and the content hash (DESIGN §3).

Canonical bytes are UTF-8 JSON with sorted object keys and no insignificant whitespace,
produced by orjson. Rules a source can rely on:

- datetimes become RFC 3339 UTC strings ending in ``Z``; the fraction is omitted when it
  is zero, 3 digits when the value is a whole millisecond, else 6 digits. A naive datetime
  is taken as UTC;
- ``1`` and ``1.0`` stay different (ints and floats are different values); floats use the
  shortest round-trip form (``0.1``, ``1e-7``, ``1e+16``);
- tuples encode as lists and UUIDs as their string form;
- NaN and ±Infinity, bytes, sets, non-string object keys and integers outside 64 bits are
  rejected with :class:`CanonicalError` naming where the value sits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from typing import Any

import orjson

#: Bumped when the canonical form of records changes; a bump changes every hash on
#: purpose, so the next extraction appends new versions and the next replay rewrites.
SCHEMA_VERSION = 1

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


class CanonicalError(ValueError):
    """A value that has no canonical JSON form."""


def format_datetime(value: dt.datetime | dt.date) -> str:
    """RFC 3339 UTC with ``Z``; the fraction has 0, 3 or 6 digits (see module doc)."""
    if not isinstance(value, dt.datetime):
        return value.isoformat()
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    value = value.astimezone(dt.UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    micro = value.microsecond
    if micro == 0:
        return text + "Z"
    if micro % 1000 == 0:
        return f"{text}.{micro // 1000:03d}Z"
    return f"{text}.{micro:06d}Z"


def _default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return format_datetime(value)
    raise TypeError(type(value).__name__)


def _has_non_finite(container: Any) -> bool:
    # orjson silently writes NaN as null, so non-finite floats are caught before encoding.
    # Type-exact checks first: this runs once per record on the hot path.
    is_dict = type(container) is dict or isinstance(container, dict)
    for item in container.values() if is_dict else container:
        kind = type(item)
        if kind is str or kind is int or kind is bool or item is None:
            continue
        if kind is dict or kind is list or kind is tuple:
            if _has_non_finite(item):
                return True
        elif kind is float:
            if item - item != 0.0:  # nan - nan and inf - inf are nan
                return True
        elif isinstance(item, (dict, list, tuple)):  # subclasses
            if _has_non_finite(item):
                return True
        elif isinstance(item, float) and not math.isfinite(item):
            return True
    return False


def _locate_problem(value: Any, path: str = "$") -> str:
    """Describe the first value that cannot be encoded (the slow path, for messages)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path}: object key {key!r} is not a string"
            found = _locate_problem(item, f"{path}.{key}")
            if found:
                return found
        return ""
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _locate_problem(item, f"{path}[{index}]")
            if found:
                return found
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{path}: {value!r} has no JSON form (encode it or reject the input)"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"{path}: bytes are never inline; put them in the blob store"
    if isinstance(value, bool) or value is None or isinstance(value, (str, dt.date)):
        return ""
    if isinstance(value, int):
        if not -(2**63) <= value < 2**64:
            return f"{path}: integer {value} is outside the 64-bit range"
        return ""
    if isinstance(value, float):
        return ""
    return f"{path}: a {type(value).__name__} has no canonical JSON form"


def canonical_bytes(value: Any) -> bytes:
    """Encode ``value`` canonically, or raise :class:`CanonicalError` saying where and why."""
    if isinstance(value, (dict, list, tuple)):
        if _has_non_finite(value):
            raise CanonicalError(_locate_problem(value))
    elif isinstance(value, float) and not math.isfinite(value):
        raise CanonicalError(_locate_problem(value))
    try:
        encoded = orjson.dumps(value, default=_default, option=_OPTIONS)
    except (TypeError, orjson.JSONEncodeError) as exc:
        raise CanonicalError(_locate_problem(value) or str(exc)) from None
    # orjson's result keeps its growth buffer (~10 KB for a 2 KB document); callers hold
    # thousands of these per batch, so keep an exact-size copy instead.
    return bytes(memoryview(encoded))


def canonical_text(value: Any) -> str:
    return canonical_bytes(value).decode("utf-8")


def ledger_json(value: Any) -> bytes:
    """Canonical JSON (UTF-8) of a value read from the ledger's payloads, for sinks that
    encode millions of them. It was checked when it was stored, so the NaN walk is
    skipped, and its keys are already in canonical order (payloads are stored sorted and
    decoding keeps the order), so they are not sorted again. Not for values a sink built."""
    return orjson.dumps(value)


def ledger_text(value: Any) -> str:
    """:func:`ledger_json` as text."""
    return orjson.dumps(value).decode("utf-8")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)
