"""LibreChat's native documents made JSON-safe, and the small readings every mapping needs.

``raw`` keeps each document verbatim except for types JSON has no form for, which take
MongoDB Extended JSON shapes: ObjectId → ``{"$oid": hex}``, Binary → ``{"$binary":
{"base64", "subType"}}``, Decimal128 → ``{"$numberDecimal"}``, non-finite floats →
``{"$numberDouble": "NaN"}``. Datetimes stay datetimes (the canonical encoder writes RFC
3339 UTC). Credentials in ``users`` (password hash, TOTP secret, backup codes, refresh
tokens) never enter the ledger: a live MongoDB is not even asked for them, and they
are dropped from dumps.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from typing import Any

from bson import (
    Binary,
    Code,
    Decimal128,
    Int64,
    MaxKey,
    MinKey,
    ObjectId,
    Regex,
    Timestamp,
)

from ledger.kit import parse_time

#: The parentMessageId of a conversation's first message (librechat-data-provider).
NO_PARENT = "00000000-0000-0000-0000-000000000000"
USER_SECRETS = ("password", "totpSecret", "backupCodes", "refreshToken")


def json_safe(value: Any) -> Any:
    """``value`` with every BSON-only type replaced by its Extended JSON shape."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is dict or isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if kind is list or isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if kind is float:
        if math.isfinite(value):
            return value
        return {"$numberDouble": "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"}
    if isinstance(value, dt.datetime):
        return parse_time(value)
    if isinstance(value, ObjectId):
        return {"$oid": str(value)}
    if isinstance(value, Int64):
        return int(value)
    if isinstance(value, (Binary, bytes, bytearray)):
        subtype = value.subtype if isinstance(value, Binary) else 0
        return {"$binary": {"base64": base64.b64encode(bytes(value)).decode(), "subType": f"{subtype:02x}"}}
    if isinstance(value, Decimal128):
        return {"$numberDecimal": str(value)}
    if isinstance(value, Regex):
        return {"$regularExpression": {"pattern": str(value.pattern), "flags": value.flags}}
    if isinstance(value, Timestamp):
        return {"$timestamp": {"t": value.time, "i": value.inc}}
    if isinstance(value, Code):
        return {"$code": str(value)}
    if isinstance(value, (MinKey, MaxKey)):
        return {"$minKey" if isinstance(value, MinKey) else "$maxKey": 1}
    return str(value)


def user_raw(document: dict[str, Any]) -> dict[str, Any]:
    """A users document without its credentials."""
    return json_safe({name: value for name, value in document.items() if name not in USER_SECRETS})


def moment(value: Any) -> dt.datetime | None:
    """A UTC timestamp from a BSON date (a naive one is UTC), an ISO string (JSON
    exports), Extended JSON ``{"$date": …}`` or epoch milliseconds; None otherwise."""
    if isinstance(value, dict) and "$date" in value:
        return moment(value["$date"])
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        try:
            return dt.datetime.fromtimestamp(value / 1000, dt.UTC)
        except (OverflowError, ValueError, OSError):  # far outside the calendar
            return None
    return parse_time(value)


def created(document: dict[str, Any]) -> dt.datetime | None:
    """``createdAt``, else the creation time inside an ObjectId ``_id``."""
    found = moment(document.get("createdAt"))
    if found is None and isinstance(document.get("_id"), ObjectId):
        found = document["_id"].generation_time
    return found


def id_text(value: Any) -> str | None:
    """A user or document id as text: the hex of an ObjectId, a string as it is."""
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, dict) and "$oid" in value:
        return str(value["$oid"])
    if isinstance(value, str) and value:
        return value
    return None


def text_value(value: Any) -> str | None:
    """Text stored as a string or as the Assistants-API ``{"value": …}`` shape."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("value"), str):
        return value["value"]
    return None
