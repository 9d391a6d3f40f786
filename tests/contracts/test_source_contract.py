"""The source contract, run for every source's stream (streams.py): the same input gives
the same hashes, a re-run appends nothing, an extraction interrupted after any commit and
run again equals one clean pass, and every reject keeps its input."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ledger import failpoints
from ledger.extract import ExtractSettings
from ledger.failpoints import InjectedFailure
from ledger.schema import rejects
from ledger.store import Ledger
from tests.conftest import head_rows
from tests.contracts import streams

INLINE = ExtractSettings(parallel=False)


def fresh(tmp_path, name):
    return Ledger.open(f"sqlite:///{tmp_path / f'{name}.db'}", blob_dir=tmp_path / f"{name}.blobs")


@pytest.fixture(params=streams.SELECTED)
def case(request) -> streams.StreamCase:
    return streams.CASES[request.param]


def test_the_same_input_gives_the_same_hashes_and_a_rerun_appends_nothing(case, tmp_path):
    first, second = fresh(tmp_path, "first"), fresh(tmp_path, "second")
    try:
        done = case.extract(first, tmp_path / "input", "s", INLINE)
        assert done.stats["events"] > 0
        case.extract(second, tmp_path / "input", "s", INLINE)
        assert head_rows(first, "s") == head_rows(second, "s")
        again = case.extract(first, tmp_path / "input", "s", ExtractSettings(parallel=False, full=True))
        assert again.stats["events"] == 0
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize("commit", [1, 2])
def test_an_interrupted_extraction_run_again_equals_one_clean_pass(case, tmp_path, monkeypatch, commit):
    clean, resumed = fresh(tmp_path, "clean"), fresh(tmp_path, "resumed")
    small = ExtractSettings(parallel=False, batch_size=7)
    try:
        case.extract(clean, tmp_path / "input", "s", small)
        monkeypatch.setitem(failpoints._plan, "extract.commit.after", (commit, "raise"))
        monkeypatch.setattr(failpoints, "_hits", failpoints.Counter())
        try:
            case.extract(resumed, tmp_path / "input", "s", small)
        except InjectedFailure:
            pass  # an input with fewer commits than ``commit`` just finishes
        monkeypatch.delitem(failpoints._plan, "extract.commit.after")
        case.extract(resumed, tmp_path / "input", "s", small)
        assert head_rows(resumed, "s") == head_rows(clean, "s")
    finally:
        clean.close()
        resumed.close()


def test_every_reject_keeps_its_input_and_says_where_and_why(case, tmp_path):
    ledger = fresh(tmp_path, "ledger")
    try:
        case.extract(ledger, tmp_path / "input", "s", INLINE)
        with ledger.read() as conn:
            rows = conn.execute(select(rejects)).all()
        for row in rows:
            assert row.location and row.reason and row.input is not None, dict(row._mapping)
    finally:
        ledger.close()
