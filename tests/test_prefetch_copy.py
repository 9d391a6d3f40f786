"""The replay's threads (ledger.prefetch: read ahead, record behind), the COPY lines built
ahead (copy_line) and the collector's setting for runs."""

from __future__ import annotations

import gc
import threading
import time

import psycopg
import pytest

from ledger.canonical import canonical_bytes, loads
from ledger.dialects import copy_line
from ledger.memory import BULK_GC_THRESHOLD, bulk_collection
from ledger.prefetch import Behind, Prefetch
from tests.test_replay import sql_sink

TRICKY = [
    ("a\\b\tc\nd\re", '{"x":"q\\"\\n\\u0000"}', "2024-01-01T00:00:00.123Z", True, 5),
    (None, None, None, False, None),
    ("ünï 👍🏽 \\N", "[]", "2024-01-01T00:00:00Z", None, -3),
    ("", "{}", None, True, 0),
]


def test_copy_lines_load_what_psycopg_write_row_loads(postgres_database):
    """The same rows, through psycopg's own formatter and through copy_line, read back
    equal: escapes, NULL, booleans, integers, non-ASCII and a literal backslash-N."""
    dsn = postgres_database.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table in ("by_psycopg", "by_lines"):
            conn.execute(f"CREATE TABLE {table} (n serial, s text, j json, m timestamptz, b bool, i bigint)")
        columns = "(s, j, m, b, i)"
        with conn.cursor().copy(f"COPY by_psycopg {columns} FROM STDIN") as copy:
            for row in TRICKY:
                copy.write_row(row)
        with conn.cursor().copy(f"COPY by_lines {columns} FROM STDIN") as copy:
            copy.write(b"".join(copy_line(row) for row in TRICKY))
            # the sql sink hands JSON over as UTF-8 bytes, never decoded
            copy.write(b"".join(copy_line([_utf8(value) for value in row]) for row in TRICKY))
        read = "SELECT s, j::text, m, b, i FROM {} ORDER BY n"
        expected = conn.execute(read.format("by_psycopg")).fetchall()
        assert conn.execute(read.format("by_lines")).fetchall() == expected * 2
        assert expected[2][0] == "ünï 👍🏽 \\N" and expected[1] == (None, None, None, False, None)


def _utf8(value):
    return value.encode() if isinstance(value, str) else value


def test_prefetch_yields_everything_in_order_from_another_thread():
    threads = set()

    def produce():
        for number in range(50):
            threads.add(threading.current_thread().name)
            yield number

    with Prefetch(produce, name="reader") as ahead:
        assert list(ahead) == list(range(50))
    assert threads == {"reader"}


def test_prefetch_raises_the_producers_error_and_stops_it_when_left_early():
    closed = threading.Event()

    def failing():
        yield 1
        raise ValueError("bad payload")

    with pytest.raises(ValueError, match="bad payload"), Prefetch(failing) as ahead:
        assert list(ahead) == [1]

    def endless():
        try:
            number = 0
            while True:
                yield number
                number += 1
        finally:
            closed.set()

    with Prefetch(endless) as ahead:
        for number in ahead:
            if number == 3:
                break
    assert closed.is_set()  # the producer's generator was closed (its connection released)


def test_behind_consumes_in_order_in_another_thread_and_close_waits_for_all():
    consumed, threads = [], set()

    def consume(number):
        time.sleep(0.001 * (number % 3))
        threads.add(threading.current_thread().name)
        consumed.append(number)

    behind = Behind(consume, name="recorder")
    for number in range(40):
        behind.submit(number)
    behind.close()
    assert consumed == list(range(40)) and threads == {"recorder"}


def test_behind_raises_the_consumers_error_at_the_next_submit_and_drops_the_rest():
    consumed = []

    def consume(number):
        if number == 2:
            raise OSError("ledger disk full")
        consumed.append(number)

    behind = Behind(consume)
    with pytest.raises(OSError, match="ledger disk full"):
        for number in range(100):
            behind.submit(number)
    with pytest.raises(OSError, match="ledger disk full"):
        behind.close()
    assert consumed == [0, 1]


def test_a_run_collects_garbage_less_often_and_puts_the_thresholds_back():
    before = gc.get_threshold()
    with bulk_collection():
        assert gc.get_threshold() == BULK_GC_THRESHOLD
    assert gc.get_threshold() == before


DOCUMENTS = [
    {"kind": "user", "data": {"username": "ada", "email": None}, "refs": []},  # no raw
    {"kind": "user", "data": {"email": "a\\b@x", "created_at": "2024-01-01T00:00:00+02:00",
                              "external_ids": {"z": 1, "a": [True, None]}}, "raw": None},
    {"kind": "conversation", "data": {"title": "tab\there\nnew line\r", "pinned": False, "archived": 1,
                                      "tags": ["x"], "owner": 7, "metadata": {"q": "\\\"quoted\\\""}},
     "raw": {"title": "ünï 👍🏽"}, "refs": ["user:ada"]},
    {"kind": "message", "data": {"parts": [{"type": "text", "text": "NUL \x00 here"}], "sibling_group": 2,
                                 "usage": {}, "role": "user", "created_at": "not a time"}, "raw": [1, 2.5]},
    {"kind": "run", "data": {"status": "done"}, "raw": {"x": None}},
]  # fmt: skip


def test_the_sql_sinks_copy_lines_equal_its_rows_formatted(ledger, postgres_database):
    """The sql sink makes each row twice over: as a tuple (other dialects, verify) and as
    a COPY line formatted field by field (a Postgres replay). Both must write the same."""
    sink = sql_sink(ledger, postgres_database)
    sink.context.read_only = True  # opened to know the dialect; nothing is created
    sink.open()
    try:
        for number, document in enumerate(DOCUMENTS):
            stored = loads(canonical_bytes(document))  # as a payload comes out of the ledger
            args = ("s", f"{document['kind']}:{number}", stored, 3, "f" * 64)
            assert sink.copy_line(*args) == copy_line(sink.row(*args)), document
    finally:
        sink.close()
