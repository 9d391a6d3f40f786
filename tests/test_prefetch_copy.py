"""The replay's read-ahead (ledger.prefetch) and the COPY lines built ahead (copy_line)."""

from __future__ import annotations

import threading

import psycopg
import pytest

from ledger.dialects import copy_line
from ledger.prefetch import Prefetch

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
        read = "SELECT s, j::text, m, b, i FROM {} ORDER BY n"
        expected = conn.execute(read.format("by_psycopg")).fetchall()
        assert conn.execute(read.format("by_lines")).fetchall() == expected
        assert expected[2][0] == "ünï 👍🏽 \\N" and expected[1] == (None, None, None, False, None)


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
