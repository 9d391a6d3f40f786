"""One batch, one target transaction, on every SQL dialect (issue 10, item 10).

A failure after the rows of a batch were written and before its commit must leave the
target as it was: no data row without its marker. On SQLite, pysqlite used to commit a
released SAVEPOINT (the COPY of fresh rows), so a batch that failed at its markers left
rows behind. Kill trials per dialect are in tests/test_kill_campaign.py.
"""

from __future__ import annotations

import pytest

from ledger.replay import replay
from ledger.sql_target import Markers
from tests.test_replay import dump, sql_sink, synthetic


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def target_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'target.db'}"
    return request.getfixturevalue(f"{request.param}_database")


def test_a_batch_failing_at_its_markers_leaves_nothing(ledger, target_url, monkeypatch):
    synthetic(ledger, users=2)
    sink = sql_sink(ledger, target_url)
    sink.open()  # create the tables first, so the dump below sees them
    sink.close()
    empty = dump(target_url)

    def fail(*_args, **_kwargs):
        raise RuntimeError("the process died here")

    monkeypatch.setattr(Markers, "write", fail)
    with pytest.raises(RuntimeError, match="died here"):
        replay(ledger, sql_sink(ledger, target_url), ["syn"])
    assert dump(target_url) == empty, "a failed batch left rows in the target"
