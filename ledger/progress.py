"""Progress display: a rich bar on a terminal, periodic structlog lines otherwise.

One protocol, three implementations. Each is usable in any order of calls: ``advance``
before ``start`` (or after ``finish``) counts instead of failing, because a command that
crashes on its progress display after a committed batch leaves a target half written.
"""

from __future__ import annotations

import sys
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


class _Tally:
    """What LogProgress and RichProgress both keep: steps done and named counts."""

    def __init__(self) -> None:
        self.label, self.total, self.done = "", None, 0
        self.counts: dict[str, int] = {}

    def _reset(self, label: str, total: int | None) -> None:
        self.label, self.total, self.done = label, total, 0
        self.counts = {}

    def _count(self, steps: int, counts: dict[str, int]) -> None:
        self.done += steps
        for name, value in counts.items():
            self.counts[name] = self.counts.get(name, 0) + value


class LogProgress(_Tally):
    """One structlog line every ``every`` seconds: for CI logs and cron jobs."""

    def __init__(self, every: float = 10.0) -> None:
        super().__init__()
        self.every = every
        self.log = structlog.get_logger("chatledger.progress")
        self.started = self.last = time.monotonic()

    def start(self, label: str, total: int | None) -> None:
        self._reset(label, total)
        self.started = self.last = time.monotonic()

    def advance(self, steps: int = 0, **counts: int) -> None:
        self._count(steps, counts)
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self._emit("progress")

    def _emit(self, event: str) -> None:
        elapsed = time.monotonic() - self.started
        fields: dict[str, Any] = {"step": self.label, "done": self.done, **self.counts}
        if self.total:
            fields["total"] = self.total
        fields["elapsed_s"] = round(elapsed, 1)
        self.log.info(event, **fields)

    def finish(self) -> None:
        self._emit("progress done")


class RichProgress(_Tally):
    def __init__(self) -> None:
        super().__init__()
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bar

        self.bar = Bar(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),  # stdout stays clean for --json output
        )
        self.task: Any = None

    def start(self, label: str, total: int | None) -> None:
        self._reset(label, total)
        self.bar.start()
        self.task = self.bar.add_task(label, total=total, counts="")

    def advance(self, steps: int = 0, **counts: int) -> None:
        self._count(steps, counts)
        if self.task is None:  # never started (or finished): count, show nothing
            return
        text = "  ".join(f"{name} {value:,}" for name, value in self.counts.items())
        self.bar.update(self.task, advance=steps, counts=text)

    def finish(self) -> None:
        self.task = None
        self.bar.stop()


def for_terminal(enabled: bool = True) -> Progress:
    if not enabled:
        return NoProgress()
    return RichProgress() if sys.stderr.isatty() else LogProgress()
