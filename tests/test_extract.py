"""The extraction engine's append rule, deletes, rejects, checkpoints; both ledger backends."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ledger.extract import ExtractSettings, extract
from ledger.records import Record, Reject
from ledger.schema import checkpoints, events, heads, payloads, rejects
from ledger.source import SourceContext
from ledger.store import Ledger
from sources.synthetic import SyntheticOptions, SyntheticSource
from tests.conftest import head_rows
from tests.helpers import ListScope, ListSource, msg, run, totals


def event_rows(ledger, stream="s"):
    with ledger.read() as conn:
        rows = conn.execute(
            select(events.c.key, events.c.version, events.c.op).where(events.c.stream == stream)
        )
        return sorted(tuple(row) for row in rows)


def count(ledger, table):
    with ledger.read() as conn:
        return conn.scalar(select(func.count()).select_from(table))


@pytest.mark.parametrize("parallel", [True, False], ids=["forked", "inline"])
def test_append_rule(ledger, parallel):
    scope = ListScope([msg("s", "c1", 1), msg("s", "c1", 2), msg("s", "c2", 1)])
    first = run(ledger, ListSource("s", {"u1": scope}), parallel=parallel)
    assert first.status == "succeeded"
    assert totals(first)["new"] == 3 and first.stats["events"] == 3

    again = run(ledger, ListSource("s", {"u1": scope}), parallel=parallel)
    assert again.stats["events"] == 0
    assert totals(again)["unchanged"] == 3

    scope.items[1] = msg("s", "c1", 2, text="edited")
    changed = run(ledger, ListSource("s", {"u1": scope}), parallel=parallel)
    assert changed.stats["events"] == 1 and totals(changed)["changed"] == 1
    assert event_rows(ledger) == [
        ("message:c1/1", 1, "put"),
        ("message:c1/2", 1, "put"),
        ("message:c1/2", 2, "put"),
        ("message:c2/1", 1, "put"),
    ]
    versions = {row[0]: row[2] for row in head_rows(ledger, "s")}
    assert versions == {"message:c1/1": 1, "message:c1/2": 2, "message:c2/1": 1}
    with ledger.read() as conn:
        conversation = conn.scalar(select(heads.c.conversation).where(heads.c.key == "message:c1/2"))
    assert conversation == "conversation:c1"


def test_deletes_only_from_complete_scopes(ledger):
    complete = ListScope([msg("s", "a", 1), msg("s", "a", 2)])
    partial = ListScope([msg("s", "b", 1), msg("s", "b", 2)], complete=False)
    run(ledger, ListSource("s", {"A": complete, "B": partial}))

    complete.items.pop()
    partial.items.pop()
    result = run(ledger, ListSource("s", {"A": complete, "B": partial}))

    assert totals(result)["deleted"] == 1
    state = {row[0]: row[4] for row in head_rows(ledger, "s")}
    assert state == {
        "message:a/1": False,
        "message:a/2": True,  # missing from a complete scope: deleted
        "message:b/1": False,
        "message:b/2": False,  # missing from a partial scope: kept
    }
    assert ("message:a/2", 2, "delete") in event_rows(ledger)


def test_a_deleted_key_that_returns_gets_a_new_version(ledger):
    scope = ListScope([msg("s", "a", 1), msg("s", "a", 2)])
    run(ledger, ListSource("s", {"A": scope}))
    removed = scope.items.pop()
    run(ledger, ListSource("s", {"A": scope}))
    scope.items.append(removed)
    back = run(ledger, ListSource("s", {"A": scope}))
    assert back.stats["events"] == 1
    assert [row for row in event_rows(ledger) if row[0] == "message:a/2"] == [
        ("message:a/2", 1, "put"),
        ("message:a/2", 2, "delete"),
        ("message:a/2", 3, "put"),
    ]
    # the same content came back: its payload is stored once
    assert count(ledger, payloads) == 2


def test_vanished_scopes_are_deleted_only_when_the_listing_is_exhaustive(ledger):
    scopes = {"A": ListScope([msg("s", "a", 1)]), "B": ListScope([msg("s", "b", 1)])}
    run(ledger, ListSource("s", dict(scopes)))

    run(ledger, ListSource("s", {"A": scopes["A"]}, exhaustive=False))
    assert not any(row[4] for row in head_rows(ledger, "s"))

    result = run(ledger, ListSource("s", {"A": scopes["A"]}, exhaustive=True))
    assert result.stats["scopes"]["vanished"] == 1
    assert {row[0]: row[4] for row in head_rows(ledger, "s")} == {
        "message:a/1": False,
        "message:b/1": True,
    }
    with ledger.read() as conn:
        assert conn.scalars(select(checkpoints.c.scope)).all() == ["A"]


def test_a_record_moving_to_another_scope_is_not_deleted(ledger):
    record = msg("s", "x", 1)
    run(ledger, ListSource("s", {"A": ListScope([record]), "B": ListScope([])}))
    # the record now lives in B, which is read before A
    result = run(ledger, ListSource("s", {"B": ListScope([record]), "A": ListScope([])}))
    assert result.stats["events"] == 0
    [(key, _kind, version, _hash, deleted)] = head_rows(ledger, "s")
    assert (key, version, deleted) == (record.key, 1, False)
    with ledger.read() as conn:
        assert conn.scalar(select(heads.c.scope)) == "B"


def test_bad_input_is_rejected_and_the_rest_lands(ledger):
    good = msg("s", "c", 1)
    nan = Record("s", "message", "message:c/2", {"conversation": "conversation:c", "score": float("nan")})
    wrong_kind = Record("s", "banana", "banana:1", {})
    source_reject = Reject("messages.bson record 7", "no conversationId", {"_id": "7"})
    scope = ListScope([good, nan, wrong_kind, source_reject])
    result = run(ledger, ListSource("s", {"A": scope}))

    assert result.status == "with-rejects"  # finished, but input was rejected (exit code 4)
    assert result.stats["rejects"] == 3 and result.stats["events"] == 1
    assert {row[0] for row in head_rows(ledger, "s")} == {good.key}
    with ledger.read() as conn:
        stored = conn.execute(select(rejects).order_by(rejects.c.id)).all()
    assert [row.run_id for row in stored] == [result.run_id] * 3
    assert "$.data.score: nan has no JSON form" in stored[0].reason
    assert stored[0].location == "scope A: message message:c/2"
    assert '"score":' not in stored[0].input and "nan" in stored[0].input  # kept as text
    assert "unknown kind 'banana'" in stored[1].reason
    assert stored[2].location == "scope A: messages.bson record 7"
    assert stored[2].input == '{"_id":"7"}'


def test_a_bad_new_version_never_deletes_the_good_one(ledger):
    scope = ListScope([msg("s", "c", 1), msg("s", "c", 2)])
    run(ledger, ListSource("s", {"A": scope}))
    scope.items[1] = Reject("line 2", "truncated JSON", "{'messageId': 2", key="message:c/2")
    result = run(ledger, ListSource("s", {"A": scope}))
    assert result.stats["rejects"] == 1 and totals(result)["deleted"] == 0
    assert not any(row[4] for row in head_rows(ledger, "s"))


def test_a_keyless_reject_withholds_deletes_in_its_scope(ledger):
    scope = ListScope([msg("s", "c", 1), msg("s", "c", 2)])
    run(ledger, ListSource("s", {"A": scope}))
    scope.items[1] = Reject("line 2", "not JSON", "{{{")
    result = run(ledger, ListSource("s", {"A": scope}))
    assert result.stats["scopes"]["deletes_withheld"] == 1
    assert not any(row[4] for row in head_rows(ledger, "s"))


def test_fingerprints_skip_unchanged_scopes_and_full_reads_them(ledger):
    scopes = {
        "A": ListScope([msg("s", "a", 1)], fingerprint="f1"),
        "B": ListScope([msg("s", "b", 1)], fingerprint=None),
    }
    run(ledger, ListSource("s", scopes))
    again = run(ledger, ListSource("s", scopes))
    assert again.stats["scopes"]["unchanged"] == 1 and again.stats["scopes"]["read"] == 1

    scopes["A"].items[0] = msg("s", "a", 1, text="changed but same fingerprint")
    stale = run(ledger, ListSource("s", scopes))
    assert stale.stats["events"] == 0  # the source promised "unchanged"

    full = run(ledger, ListSource("s", scopes), full=True)
    assert full.stats["scopes"]["read"] == 2 and full.stats["events"] == 1


def test_partial_scopes_continue_from_their_cursor(ledger):
    scope = ListScope([msg("s", "p", n) for n in range(1, 6)], complete=False)
    run(ledger, ListSource("s", {"P": scope}, chunk=2))
    with ledger.read() as conn:
        cursor = conn.scalar(select(checkpoints.c.cursor).where(checkpoints.c.scope == "P"))
    assert cursor == "5"
    scope.items.append(msg("s", "p", 6))
    later = run(ledger, ListSource("s", {"P": scope}, chunk=2))
    assert totals(later)["read"] == 1 and later.stats["events"] == 1


def test_dry_run_writes_nothing(ledger):
    scope = ListScope([msg("s", "c", 1), msg("s", "c", 2)])
    run(ledger, ListSource("s", {"A": scope}))
    before = (count(ledger, events), count(ledger, payloads), head_rows(ledger, "s"))
    scope.items[0] = msg("s", "c", 1, text="new text")
    scope.items.pop()
    scope.items.append(msg("s", "c", 3))
    preview = run(ledger, ListSource("s", {"A": scope}), dry_run=True)
    assert preview.run_id is None
    assert (totals(preview)["changed"], totals(preview)["new"], totals(preview)["deleted"]) == (1, 1, 1)
    assert (count(ledger, events), count(ledger, payloads), head_rows(ledger, "s")) == before


def test_batches_commit_separately_with_their_checkpoints(ledger):
    records = [msg("s", "c", n) for n in range(10)]
    result = run(ledger, ListSource("s", {"A": ListScope(records)}, chunk=1), batch_size=3)
    assert result.stats["events"] == 10
    with ledger.read() as conn:
        row = conn.execute(select(checkpoints)).one()
    assert row.complete and row.records == 10 and row.run_id == result.run_id


def test_forked_and_inline_ledgers_are_identical(tmp_path):
    found = []
    for parallel in (True, False):
        opened = Ledger.open(f"sqlite:///{tmp_path}/{parallel}.db", blob_dir=tmp_path / f"b{parallel}")
        source = SyntheticSource(SyntheticOptions(users=4, seed=3), SourceContext("syn", opened.blobs))
        extract(opened, source, settings=ExtractSettings(parallel=parallel, batch_size=50))
        found.append(head_rows(opened, "syn"))
    assert found[0] == found[1] and len(found[0]) > 100


class FailingSource(ListSource):
    """Fails once it has handed out ``fail_after`` records."""

    def __init__(self, *args, fail_after: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fail_after = fail_after
        self.handed = 0

    def read(self, scope, cursor=None):
        for items, position in super().read(scope, cursor):
            self.handed += len(items)
            if self.handed > self.fail_after:
                raise RuntimeError("the source broke")
            yield items, position


@pytest.mark.parametrize("parallel", [True, False], ids=["forked", "inline"])
def test_a_batch_sent_in_parts_commits_as_one_transaction(ledger, monkeypatch, parallel):
    monkeypatch.setattr("ledger.extract.reader.PART_RECORDS", 2)
    scopes = {"A": ListScope([msg("s", "a", n) for n in range(10)]),
              "B": ListScope([msg("s", "b", n) for n in range(10)])}  # fmt: skip
    # batches of 7 in parts of 2: commits after 8 and 16 records; it breaks after 18
    broken = FailingSource("s", scopes, chunk=1, fail_after=18)
    with pytest.raises(Exception, match="the source broke"):
        run(ledger, broken, batch_size=7, parallel=parallel)
    assert count(ledger, events) == 16 == len(head_rows(ledger, "s"))

    result = run(ledger, ListSource("s", scopes, chunk=1), batch_size=7, parallel=parallel)
    assert totals(result)["new"] == 4 and totals(result)["unchanged"] == 16
    assert [row[1:3] for row in event_rows(ledger)] == [(1, "put")] * 20
