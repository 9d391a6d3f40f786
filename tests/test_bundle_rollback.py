"""A bundle rollback leaves no trace of what the run wrote (issue 10, item 15): attachment
copies no manifest lists are removed, an owner left with nothing loses its folder, and a
forced rollback of records the ledger no longer places does not make ``_unowned/``."""

from __future__ import annotations

from ledger.replay import ReplaySettings, replay
from ledger.replay.rollback import rollback
from ledger.schema import target_state
from ledger.sink import SinkContext
from sinks.bundle import BundleOptions, BundleSink
from tests.test_replay import synthetic


def snapshot(root):
    return {
        str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()
    }


def bundle(ledger, root):
    return BundleSink(BundleOptions(path=root, copy_files=True), SinkContext("export", ledger.blobs))


def test_rollback_restores_the_bundle_byte_for_byte(ledger, tmp_path):
    root = tmp_path / "bundle"
    synthetic(ledger, users=4)
    first = replay(ledger, bundle(ledger, root), ["syn"])
    before = snapshot(root)
    assert any("/files/" in name for name in before)
    synthetic(ledger, users=4, mutate=0.5)
    merged = replay(ledger, bundle(ledger, root), ["syn"], settings=ReplaySettings(propagate_deletes=True))
    assert snapshot(root) != before
    rollback(ledger, bundle(ledger, root), merged.run_id)
    assert snapshot(root) == before  # attachments included
    rollback(ledger, bundle(ledger, root), first.run_id)
    assert list(root.iterdir()) == []  # no owner folders, no copies


def test_a_forced_rollback_makes_no_unowned_folder(ledger, tmp_path):
    root = tmp_path / "bundle"
    synthetic(ledger, users=2)
    first = replay(ledger, bundle(ledger, root), ["syn"])
    with ledger.write() as conn:  # the ledger lost where these went (target_ref and all)
        conn.execute(target_state.update().values(target_ref=None))
    rollback(ledger, bundle(ledger, root), first.run_id, force=True)
    assert not (root / "_unowned").exists()
    assert list(root.iterdir()) == []
