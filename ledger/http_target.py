"""The HTTP-target skeleton for plug-ins (DESIGN §6): error classes, retries, and the
create protocol of a target reached through an HTTP API or its SDK.

- :func:`http_status` / :func:`classify_http`: any exception of an HTTP client or SDK
  (httpx errors, SDK errors with ``status_code`` or ``response``) becomes
  :class:`TransientError` (connection failures, timeouts, 408/425/429/5xx) or
  :class:`PermanentError` (other 4xx, with the status), or None (not an HTTP failure).
- :func:`call`: one operation, retried on transient failures only, with backoff and
  jitter; failures surface as the kit's error classes with secrets masked.
- :func:`parse_headers`: an option of extra headers (``Name: value``) as a dict.
- :class:`HttpTarget`: check-before-create for objects with deterministic ids. A 2xx is
  not proof: every create is read back, and an object that exists but is not whole (a
  half-created one) is deleted and created again.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import httpx

from ledger.errors import ConfigError
from ledger.http import TRANSIENT_STATUS
from ledger.redact import redact
from ledger.retry import RetryPolicy
from ledger.sink import PermanentError, TransientError

T = TypeVar("T")


def http_status(error: BaseException) -> int | None:
    """The HTTP status an exception carries, if any."""
    for candidate in (getattr(error, "status", None), getattr(error, "status_code", None)):
        if isinstance(candidate, int):
            return candidate
    response = getattr(error, "response", None)
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def classify_http(error: BaseException) -> type[TransientError] | type[PermanentError] | None:
    if isinstance(error, (TransientError, PermanentError)):
        return type(error)
    if isinstance(error, (httpx.TimeoutException, httpx.TransportError)):
        return TransientError
    status = http_status(error)
    if status is None:
        return None
    return TransientError if status in TRANSIENT_STATUS else PermanentError


def call(
    what: str,
    operation: Callable[[], T],
    *,
    retry: RetryPolicy,
    on_retry: Callable[[BaseException], None] | None = None,
) -> T:
    """``operation()``, retried while it fails transiently; ``what`` names it in errors."""
    attempt = 0
    while True:
        try:
            return operation()
        except Exception as error:
            kind = classify_http(error)
            if kind is None:
                raise
            message = redact(f"{what}: {_describe(error)}")
            if kind is PermanentError:
                raise PermanentError(message, http_status(error)) from error
            attempt += 1
            if attempt >= retry.attempts:
                raise TransientError(f"{message} (after {attempt} attempts)") from error
            if on_retry is not None:
                on_retry(error)
            time.sleep(retry.delay(attempt - 1))


def _describe(error: BaseException) -> str:
    status = http_status(error)
    text = str(error).strip() or type(error).__name__
    return f"HTTP {status}: {text}"[:500] if status is not None else f"{type(error).__name__}: {text}"[:500]


def parse_headers(entries: list[str], *, reserved: tuple[str, ...] = (), where: str) -> dict[str, str]:
    """``["Name: value", …]`` (an option of extra request headers) as a dict; headers in
    ``reserved`` (e.g. the one the API key goes in) are refused."""
    headers = {}
    for entry in entries:
        name, colon, value = entry.partition(":")
        if not colon or not name.strip():
            raise ConfigError(f"{where}: a header must look like 'Name: value'")
        if name.strip().lower() in reserved:
            raise ConfigError(f"{where}: {name.strip()} is set by its own option, not as a header")
        headers[name.strip()] = value.strip()
    return headers


Ref = TypeVar("Ref")


class HttpTarget(abc.ABC, Generic[Ref]):
    """Creates objects with deterministic ids so that a re-run, or a run after a crash,
    never makes a second one.

    Subclasses say how to ``find`` an object (None: absent), ``create`` it, ``remove``
    it, and whether what was found is ``whole`` (what the create should have made).
    :meth:`ensure` runs the protocol: absent → create; present but not whole → delete
    and create again; then read back, and fail when the read-back is not whole either.
    """

    @abc.abstractmethod
    def find(self, ref: Ref) -> Any | None:
        """The object as the target shows it, or None."""

    @abc.abstractmethod
    def create(self, ref: Ref) -> None:
        """Create the object; may raise. A success response is not trusted."""

    @abc.abstractmethod
    def remove(self, ref: Ref) -> None:
        """Delete the object (absent is fine)."""

    @abc.abstractmethod
    def whole(self, ref: Ref, found: Any) -> bool:
        """Whether ``found`` is the complete object ``create`` makes."""

    def ensure(self, ref: Ref) -> tuple[Any, str]:
        """The object after making sure it exists whole, and what it took: ``existed``,
        ``created`` or ``recreated`` (a half-created object was replaced)."""
        found = self.find(ref)
        if found is not None and self.whole(ref, found):
            return found, "existed"
        action = "created" if found is None else "recreated"
        if found is not None:
            self.remove(ref)
        try:
            self.create(ref)
        except PermanentError:
            self._clean_up(ref)
            raise
        found = self.find(ref)
        if found is None or not self.whole(ref, found):
            self._clean_up(ref)
            raise PermanentError(f"{ref}: created, but the read-back does not hold what was written")
        return found, action

    def _clean_up(self, ref: Ref) -> None:
        """A failed create may leave a half-created object behind: remove it."""
        if self.find(ref) is not None:
            self.remove(ref)
