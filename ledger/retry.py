"""Retries with exponential backoff and full jitter: one rule for the replay engine, the
HTTP client and every plug-in (DESIGN §6). Transient failures retry; permanent ones do
not."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_seconds: float = 0.5
    max_seconds: float = 30.0

    def delay(self, attempt: int) -> float:
        """Full jitter: a random wait up to base·2^attempt, capped."""
        return random.uniform(0, min(self.max_seconds, self.base_seconds * 2**attempt))
