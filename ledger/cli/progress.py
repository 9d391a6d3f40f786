"""The terminal's progress display (rich): the CLI's, not the core's. The engines report
through the ``Progress`` protocol of ``ledger.progress``; ``for_terminal`` picks a rich bar
on a terminal and periodic log lines otherwise."""

from __future__ import annotations

import sys
from typing import Any

import structlog

from ledger.progress import LogProgress, NoProgress, Progress, Tally, clock


class RichProgress(Tally):
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
        # markup=False: the label names a stream or target, which may hold brackets
        columns: list[Any] = [TextColumn("{task.description}", style="bold", markup=False)]
        if total:
            columns += [BarColumn(bar_width=20), MofNCompleteColumn()]
        columns += [
            TextColumn("{task.fields[counts]}", markup=False),
            TextColumn("{task.fields[rate]}", markup=False),
            TimeElapsedColumn(),
            TextColumn("{task.fields[eta]}", markup=False),
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
            "eta": f"ETA {clock(left)}" if left else "",
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
