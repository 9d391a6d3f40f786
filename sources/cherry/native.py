"""Small readers of v1 values: timestamps, statuses, models."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ledger.kit import format_datetime, parse_time

#: v1 message status → canonical. Upstream maps success → success, paused → paused and
#: everything else (error, the transient sending/pending/searching/processing, unknown
#: values) → error: an interrupted message is never a success.
STATUS = {"success": "complete", "paused": "aborted"}


def timestamp(value: Any) -> str | None:
    """A v1 timestamp (ISO text, or epoch milliseconds as a number or digits) as RFC 3339
    UTC; None when missing or unparsable (the caller keeps the native value)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, (int, float)):
        try:
            return format_datetime(dt.datetime.fromtimestamp(value / 1000, dt.UTC))
        except (OverflowError, OSError, ValueError):
            return None
    parsed = parse_time(value)
    return format_datetime(parsed) if parsed else None


def status(value: Any) -> str:
    return STATUS.get(value, "error")


def model_id(model: Any, fallback: Any = None) -> str | None:
    """``provider::modelId`` (v2's ``user_model.id`` form), from the model or ``modelId``."""
    if isinstance(model, dict) and model.get("id") and model.get("provider"):
        return f"{model['provider']}::{model['id']}"
    if isinstance(fallback, str) and fallback:
        return fallback if "::" in fallback else None
    return None


def model_snapshot(model: Any) -> dict[str, Any] | None:
    """``{id, name, provider, group}`` when the model has an id and a provider."""
    if not isinstance(model, dict) or not model.get("id") or not model.get("provider"):
        return None
    snapshot = {"id": model["id"], "name": model.get("name") or model["id"], "provider": model["provider"]}
    if model.get("group"):
        snapshot["group"] = model["group"]
    return snapshot


def text(value: Any) -> str:
    return value if isinstance(value, str) else ""
