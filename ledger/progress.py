"""Progress, as the engines report it: the ``Progress`` protocol, no display, and periodic
structlog lines (the rich bar for terminals lives in the CLI layer, ``ledger.cli.progress``).

One protocol, three implementations. Each is usable in any order of calls: ``advance``
before ``start`` (or after ``finish``) counts instead of failing, because a command that
crashes on its progress display after a committed batch leaves a target half written.
"""

from __future__ import annotations

import time
from typing import Any, Protocol, runtime_checkable

import structlog


@runtime_checkable
class Progress(Protocol):
    def start(self, label: str, total: int | None) -> None: ...
    def advance(self, steps: int = 0, **counts: int) -> None: ...
    def finish(self) -> None: ...


class NoProgress:
    def start(self, label: str, total: int | None) -> None:
        pass

    def advance(self, steps: int = 0, **counts: int) -> None:
        pass

    def finish(self) -> None:
        pass


class Tally:
    """What LogProgress and RichProgress both keep: steps done, named counts, the rate
    (records, or steps when the step counts no records) and the time still to go."""

    def __init__(self) -> None:
        self.label, self.total, self.done = "", None, 0
        self.counts: dict[str, int] = {}
        self.started = time.monotonic()

    def _reset(self, label: str, total: int | None) -> None:
        self.label, self.total, self.done = label, total, 0
        self.counts = {}
        self.started = time.monotonic()

    def _count(self, steps: int, counts: dict[str, int]) -> None:
        self.done += steps
        for name, value in counts.items():
            self.counts[name] = self.counts.get(name, 0) + value

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def rate(self) -> float:
        """Records (or steps) per second so far."""
        amount = self.counts.get("records", self.done)
        return amount / self.elapsed if self.elapsed > 0 else 0.0

    def eta(self) -> float | None:
        """Seconds still to go, from the pace of the steps so far (None: no total)."""
        if not self.total or not self.done:
            return None
        return max(self.total - self.done, 0) * self.elapsed / self.done


def clock(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, second = divmod(int(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}" if hours else f"{minute}:{second:02d}"


class LogProgress(Tally):
    """One structlog line every ``every`` seconds: for CI logs and cron jobs."""

    def __init__(self, every: float = 10.0) -> None:
        super().__init__()
        self.every = every
        self.log = structlog.get_logger("chatledger.progress")
        self.last = time.monotonic()

    def start(self, label: str, total: int | None) -> None:
        self._reset(label, total)
        self.last = time.monotonic()

    def advance(self, steps: int = 0, **counts: int) -> None:
        self._count(steps, counts)
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self._emit("progress")

    def _emit(self, event: str) -> None:
        fields: dict[str, Any] = {"step": self.label, "done": self.done, **self.counts}
        if self.total:
            fields["total"] = self.total
        fields["per_s"] = round(self.rate(), 1)
        if (left := self.eta()) is not None and event == "progress":
            fields["eta_s"] = round(left, 1)
        fields["elapsed_s"] = round(self.elapsed, 1)
        self.log.info(event, **fields)

    def finish(self) -> None:
        self._emit("progress done")
