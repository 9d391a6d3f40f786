"""Progress samples of a run, kept in its stats as ``timeline``: ``[[seconds, records], …]``.

The engines take one sample where they save a batch's stats, so a report can plot
throughput over the run. The list stays short: past :data:`CAP` samples every other one
is dropped and only every second batch is sampled from then on (so samples stay evenly
spread over the run); the latest batch is always the last sample.
"""

from __future__ import annotations

import time

CAP = 240


class Timeline:
    def __init__(self, started: float | None = None) -> None:
        self.started = time.monotonic() if started is None else started
        self.samples: list[list[float]] = []
        self.stride = 1  # sample every ``stride``-th batch
        self.batches = 0
        self.latest: list[float] | None = None

    def sample(self, records: int) -> None:
        """One batch was saved; ``records``: how many the run has handled so far."""
        self.latest = [round(time.monotonic() - self.started, 3), records]
        batch, self.batches = self.batches, self.batches + 1
        if batch % self.stride:  # kept samples are the batches 0, stride, 2 × stride, …
            return
        self.samples.append(self.latest)
        if len(self.samples) > CAP:
            self.samples = self.samples[::2]
            self.stride *= 2

    def as_json(self) -> list[list[float]]:
        if self.latest is not None and (not self.samples or self.samples[-1] is not self.latest):
            return [*self.samples, self.latest]
        return list(self.samples)
