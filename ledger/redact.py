"""Keep secrets out of logs, the ledger, reports and exception text.

Two mechanisms: passwords inside URLs are masked wherever a URL appears, and every
secret value resolved from configuration (``env:VAR`` references, options marked
secret) is registered here, so :func:`redact` replaces it in any text.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

# scheme://user:password@host  →  scheme://user:***@host
_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/?#@\s]*:)(?P<pw>[^@\s/]+)@")
# key=value pairs in libpq strings, query strings and error messages
_KEY_VALUE = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd|api_key|apikey|token|secret)\s*[=:]\s*)(?P<pw>[^\s&;,'\"]+)",
    re.IGNORECASE,
)

_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret so that later text containing it is masked.

    For a URL only its password is secret: the rest stays readable in messages.
    """
    if value and "://" in value:
        match = _URL_PASSWORD.search(value)
        value = match.group("pw") if match else None
    if value and len(value) >= 4:
        _secrets.add(value)


def redact(text: str) -> str:
    if not text:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK + "@", text)
    return _KEY_VALUE.sub(lambda m: m.group("head") + MASK, text)


def redact_value(value: Any) -> Any:
    """Redact every string inside a JSON-like value."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(item) for item in value]
    return value
