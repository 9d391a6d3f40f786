"""HTTP for sinks and sources (httpx): timeouts, error classes, retries, no leaked keys.

``Api`` wraps an ``httpx.Client`` with a base URL and auth header. Every failure becomes
a :class:`~ledger.sink.TransientError` (connection failures, timeouts, 429, 5xx) or a
:class:`~ledger.sink.PermanentError` (other 4xx), with the method, path and status in
the message and any secret masked. ``request`` retries transient failures itself with
exponential backoff and jitter; the replay engine retries whole batches on top.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from ledger.redact import redact, register_secret
from ledger.retry import RetryPolicy
from ledger.sink import PermanentError, TransientError

TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}


class Api:
    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str] | None = None,
        secrets: tuple[str, ...] = (),
        timeout: float = 30.0,
        retry: RetryPolicy = RetryPolicy(attempts=4),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        for secret in secrets:
            register_secret(secret)
        self.retry = retry
        self.client = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=headers or {},
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self.client.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The response of a successful request (2xx); retries transient failures."""
        for attempt in range(self.retry.attempts):
            try:
                response = self.client.request(method, path, **kwargs)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                error: Exception = TransientError(redact(f"{method} {path}: {type(exc).__name__}: {exc}"))
            else:
                if response.is_success:
                    return response
                detail = redact(response.text[:500])
                message = f"{method} {path}: HTTP {response.status_code}: {detail}"
                if response.status_code not in TRANSIENT_STATUS:
                    raise PermanentError(message, response.status_code)
                error = TransientError(message)
            if attempt + 1 < self.retry.attempts:
                time.sleep(self.retry.delay(attempt))
        raise error

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self.request(method, path, **kwargs).json()
