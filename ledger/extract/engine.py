"""The extraction engine: a source's records into the ledger (DESIGN §4, §7).

extract → normalize → load, one batch at a time:

1. the *reader* walks the source's scopes, encodes each record canonically, or rejects
   it with the reason, and fills batches of ``batch_size`` records (or what it read in
   5 seconds), handed over in parts of up to 5,000;
2. the *writer* hashes and compresses each part's payloads (``batch.seal``), compares
   the part with ``heads`` and writes a batch in one ledger
   transaction: payloads once per hash, events, heads, checkpoints, rejects, the run's
   stats and the lock's heartbeat;
3. the append rule: unchanged → no event; changed → version + 1; a key missing from a
   scope read completely → a ``delete`` event; partial scopes never delete.

The reader runs in a forked child process and sends batches through a pipe, so reading
and encoding (Python work) overlap with writing on a second core; a sender thread lets
it run a few parts ahead while the writer commits. ``parallel=False`` (or a platform
without fork) runs both in the calling process.

Crash safety: everything a batch covers commits together, so a process killed at any
moment leaves the ledger as of its last commit. The next run skips scopes whose
checkpoint proves them unchanged (fingerprint), or that the interrupted run already
finished, and reads the rest again; unchanged records add no events, so nothing is
duplicated.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from ledger import lifecycle, locks, runs
from ledger.blobs import HashOnlyBlobStore
from ledger.canonical import canonical_text
from ledger.errors import ChatledgerError
from ledger.extract.batch import Tally
from ledger.extract.reader import Reader
from ledger.extract.writer import Writer
from ledger.memory import peak_rss_mb
from ledger.processes import die_with_parent
from ledger.progress import NoProgress, Progress
from ledger.redact import redact
from ledger.schema import checkpoints
from ledger.source import Source
from ledger.store import Ledger
from ledger.timeline import Timeline

__all__ = ["ExtractResult", "ExtractSettings", "extract"]


@dataclass
class ExtractSettings:
    batch_size: int = 100_000  # records per ledger transaction (sent in parts)
    full: bool = False  # ignore fingerprints and resume hints: read every scope
    dry_run: bool = False  # compare and report, write nothing
    parallel: bool = True  # read in a forked child process while this one writes


@dataclass
class ExtractResult:
    run_id: int | None
    status: str
    stats: dict[str, Any]


class _Job:
    """One extraction: the reader's and the writer's sides and the stats they share."""

    def __init__(
        self,
        ledger: Ledger,
        source: Source,
        run_id: int | None,
        settings: ExtractSettings,
        progress: Progress,
    ) -> None:
        self.ledger = ledger
        self.source = source
        self.settings = settings
        self.progress = progress
        self.started = time.monotonic()
        self.cpu_started = time.process_time()
        self.timeline = Timeline(self.started)
        self.extra: dict[str, Any] = {}
        self.reader_stats: dict[str, Any] = {"kinds": {}, "scopes": {}, "rejects": 0}
        self.blobs = {"new": 0, "bytes": 0}
        self.reader_rss_mb: float | None = None
        self.reader_cpu_seconds: float | None = None  # the forked reader's, when it finished
        self.writer = Writer(ledger, source.stream, run_id, dry_run=settings.dry_run, stats=self.batch_stats)

    def make_reader(self, submit) -> Reader:
        return Reader(
            self.source,
            batch_size=self.settings.batch_size,
            full=self.settings.full,
            progress=self.progress,
            submit=submit,
        )

    def stats(self, reader_stats: dict[str, Any] | None = None) -> dict[str, Any]:
        reader = reader_stats or self.reader_stats
        kinds = Tally(reader["kinds"]).merged(self.writer.tally)
        seconds = round(time.monotonic() - self.started, 3)
        read = sum(counts["read"] for counts in kinds.values())
        return {
            "kinds": kinds,
            "events": self.writer.events,
            "rejects": reader["rejects"],
            "rejects_recorded": dict(self.writer.rejects.counts),
            "scopes": reader["scopes"],
            "blobs": dict(self.blobs),
            "seconds": seconds,
            "records_per_second": round(read / seconds) if seconds else 0,
            "peak_rss_mb": {"writer": peak_rss_mb(), "reader": self.reader_rss_mb or peak_rss_mb()},
            # CPU time apart from the load of the machine: with free cores, a forked run
            # takes about the larger of the two
            "cpu_seconds": {
                "writer": round(time.process_time() - self.cpu_started, 2),
                "reader": self.reader_cpu_seconds,
            },
            "timeline": self.timeline.as_json(),
            **self.extra,
        }

    def batch_stats(self, reader_stats: dict[str, Any]) -> dict[str, Any]:
        """The stats the writer saves with a batch, after sampling the records read so far."""
        stats = self.stats(reader_stats)
        self.timeline.sample(sum(counts["read"] for counts in stats["kinds"].values()))
        return stats | {"timeline": self.timeline.as_json()}

    def run(self, resumable_run: int | None) -> None:
        with self.ledger.read() as conn:
            saved = {
                row.scope: dict(row._mapping)
                for row in conn.execute(select(checkpoints).where(checkpoints.c.stream == self.source.stream))
            }
        try:
            if self.settings.parallel and "fork" in multiprocessing.get_all_start_methods():
                self._run_forked(saved, resumable_run)
            else:
                self._run_inline(saved, resumable_run)
        except BaseException:
            self.writer.abort()
            raise
        self.writer.finish()

    def _run_inline(self, saved: dict, resumable_run: int | None) -> None:
        blobs = self.source.context.blobs
        before = (blobs.written, blobs.written_bytes)
        self.extra["source"] = self.source.describe()
        reader = self.make_reader(self.writer.apply)
        try:
            _read_all(reader, saved, resumable_run)
        finally:
            self.source.close()
        self.reader_stats = reader.snapshot()
        self.blobs = {
            "new": blobs.written - before[0],
            "bytes": blobs.written_bytes - before[1],
        }

    def _run_forked(self, saved: dict, resumable_run: int | None) -> None:
        context = multiprocessing.get_context("fork")
        receive, send = context.Pipe(duplex=False)
        child = context.Process(
            target=_reader_process,
            args=(self, saved, resumable_run, send),
            name=f"chatledger-reader:{self.source.stream}",
            daemon=True,
        )
        child.start()
        send.close()
        try:
            while True:
                try:
                    message = receive.recv()
                except EOFError:
                    child.join(5)
                    raise ChatledgerError(
                        f"the reader process of {self.source.stream!r} ended without "
                        f"finishing (exit code {child.exitcode})"
                    ) from None
                if message[0] == "batch":
                    self.writer.apply(message[1])
                elif message[0] == "describe":
                    self.extra["source"] = message[1]
                elif message[0] == "done":
                    self.reader_stats, self.blobs, self.reader_rss_mb, self.reader_cpu_seconds = message[1:5]
                    return
                else:
                    raise ChatledgerError(f"reading {self.source.stream!r} failed: {message[1]}")
        except BaseException:
            if child.is_alive():
                child.kill()
            raise
        finally:
            child.join()
            receive.close()


def _read_all(reader: Reader, saved: dict, resumable_run: int | None) -> None:
    reader.progress.start(f"extract {reader.stream}", reader.source.scope_count())
    try:
        reader.run(saved, resumable_run)
    finally:
        reader.progress.finish()


#: Pickled parts the reader may have waiting for the pipe (each up to 5,000 encoded
#: records, about 10 MB): enough to keep reading through a commit, few enough that the
#: reader's memory stays flat when the writer is the slower one.
SEND_AHEAD = 3


class _Sender:
    """The reader child's end of the pipe: messages are pickled by the caller and written
    by a thread, so the reader keeps reading while the pipe is full (the writer commits).
    At most ``SEND_AHEAD`` wait; the caller then blocks, so memory stays bounded."""

    def __init__(self, connection) -> None:
        self.connection = connection
        self.waiting: queue.Queue = queue.Queue(SEND_AHEAD)
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self._write, name="chatledger-sender", daemon=True)
        self.thread.start()

    def send(self, message: tuple) -> None:
        if self.failure is not None:
            raise self.failure  # the writer went away: stop reading
        # pickle.dumps returns exact-size bytes (ForkingPickler.dumps a view of a buffer
        # with up to twice the room); recv on the other end unpickles either
        self.waiting.put(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))

    def close(self) -> None:
        """Wait until everything queued is written (or the pipe failed)."""
        self.waiting.put(None)
        self.thread.join()

    def _write(self) -> None:
        while (data := self.waiting.get()) is not None:
            if self.failure is None:
                try:
                    self.connection.send_bytes(data)
                except BaseException as exc:  # handed to the reader thread
                    self.failure = exc  # keep draining, so a blocked send() returns


def _reader_process(job: _Job, saved: dict, resumable_run: int | None, connection) -> None:
    """The forked child: read, encode, send batches; never touches the ledger database."""
    parent = os.getppid()
    die_with_parent()
    code = 0
    sender = _Sender(connection)
    try:
        if os.getppid() != parent:
            return
        blobs = job.source.context.blobs
        before = (blobs.written, blobs.written_bytes)
        sender.send(("describe", job.source.describe()))
        reader = job.make_reader(lambda batch: sender.send(("batch", batch)))
        try:
            _read_all(reader, saved, resumable_run)
        finally:
            job.source.close()
        new_blobs = {"new": blobs.written - before[0], "bytes": blobs.written_bytes - before[1]}
        cpu = round(time.process_time(), 2)  # a forked child's count starts at zero
        sender.send(("done", reader.snapshot(), new_blobs, peak_rss_mb(), cpu))
    except BaseException as exc:
        code = 1
        detail = str(exc) if isinstance(exc, ChatledgerError) else f"{type(exc).__name__}: {exc}"
        try:
            sender.send(("error", redact(detail), redact(traceback.format_exc())))
        except BaseException:  # the pipe is gone: nobody to tell
            pass
    finally:
        sender.close()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # skip the parent's atexit handlers and pooled connections


def _resumable_run(ledger: Ledger, stream: str, args: dict[str, Any]) -> int | None:
    """The previous run of this stream, when it was interrupted with the same arguments."""
    previous = [
        run
        for run in runs.list_runs(ledger, stream=stream, command="extract", limit=3)
        if run.status != runs.RUNNING
    ]
    if previous and previous[0].status == runs.INTERRUPTED:  # noqa: SIM102 (two different questions)
        if canonical_text(previous[0].args.get("source")) == canonical_text(args.get("source")):
            return previous[0].id
    return None


def extract(
    ledger: Ledger,
    source: Source,
    *,
    settings: ExtractSettings | None = None,
    args: dict[str, Any] | None = None,
    progress: Progress | None = None,
    parent_run_id: int | None = None,
) -> ExtractResult:
    """Extract ``source`` into ``ledger`` as one run; return the run's id, status and stats.

    ``args`` (already redacted) is stored with the run. A dry run opens no run, takes no
    lock and writes nothing, not even blobs.
    """
    settings = settings or ExtractSettings()
    progress = progress or NoProgress()
    args = args or {}
    if settings.dry_run:
        source.context.blobs = HashOnlyBlobStore(ledger.blobs)
        job = _Job(ledger, source, None, settings, progress)
        job.run(None)
        return ExtractResult(None, "dry-run", job.stats())

    runs.reap_interrupted(ledger)  # an interrupted run's resume hints count
    resumable = None if settings.full else _resumable_run(ledger, source.stream, args)
    job: _Job | None = None
    with lifecycle.run(
        ledger,
        "extract",
        stats=lambda: job.stats() if job else {},
        stream=source.stream,
        args=args,
        parent_run_id=parent_run_id,
        lock=locks.stream_lock(source.stream),
    ) as active:
        job = _Job(ledger, source, active.id, settings, progress)
        if resumable:
            job.extra["resumed_from_run"] = resumable
        job.run(resumable)
        rejected = job.stats()["rejects"]
        if rejected:
            active.finish(
                runs.WITH_REJECTS,
                f"{rejected} input(s) rejected; see chatledger report {active.id}",
            )
    status = active.outcome[0] if active.outcome else runs.SUCCEEDED
    return ExtractResult(active.id, status, job.stats())
