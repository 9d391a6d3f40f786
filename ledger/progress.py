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


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, second = divmod(int(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}" if hours else f"{minute}:{second:02d}"


class LogProgress(_Tally):
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


class RichProgress(_Tally):
    """A bar on stderr: done of total, the counts, records/s, elapsed and ETA. Each step
    gets a bar of its own, left on screen once finished (stopped, so no clock runs on
    and no later step reprints it); log lines go through the bar's console so they
    print above the bar instead of through it."""

    def __init__(self) -> None:
        super().__init__()
        from rich.console import Console

        self.console = Console(stderr=True)  # stdout stays clean for --json output
        self.bar: Any = None
        self.task: Any = None
        self.logger_factory: Any = None

    def start(self, label: str, total: int | None) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
        from rich.progress import Progress as Bar

        if self.bar is not None:
            self.finish()
        self._reset(label, total)
        columns: list[Any] = [TextColumn("[bold]{task.description}")]
        if total:
            columns += [BarColumn(bar_width=20), MofNCompleteColumn()]
        columns += [
            TextColumn("{task.fields[counts]}"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[eta]}"),
        ]
        self.bar = Bar(*columns, console=self.console, redirect_stderr=True, redirect_stdout=True)
        self.bar.start()
        self._log_above_the_bar()
        self.task = self.bar.add_task(label, total=total, counts="", rate="", eta="")

    def _log_above_the_bar(self) -> None:
        """structlog prints to the stderr it was given at set-up; while the bar shows,
        sys.stderr is rich's proxy, which prints each line above the bar."""
        self.logger_factory = structlog.get_config()["logger_factory"]
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=sys.stderr))

    def advance(self, steps: int = 0, **counts: int) -> None:
        self._count(steps, counts)
        if self.task is None:  # never started (or finished): count, show nothing
            return
        self.bar.update(self.task, advance=steps, **self._fields())

    def _fields(self) -> dict[str, str]:
        text = "  ".join(f"{name} {value:,}" for name, value in self.counts.items())
        unit = "records" if "records" in self.counts else "steps"
        left = self.eta()
        return {
            "counts": text,
            "rate": f"{self.rate():,.0f} {unit}/s",
            "eta": f"ETA {_clock(left)}" if left else "",
        }

    def finish(self) -> None:
        if self.bar is None:
            return
        bar, task = self.bar, self.task
        self.bar = self.task = None
        if task is not None:
            bar.update(task, **(self._fields() | {"eta": ""}))
            bar.stop_task(task)
        bar.stop()
        if self.logger_factory is not None:
            structlog.configure(logger_factory=self.logger_factory)
            self.logger_factory = None


def for_terminal(enabled: bool = True) -> Progress:
    if not enabled:
        return NoProgress()
    return RichProgress() if sys.stderr.isatty() else LogProgress()
