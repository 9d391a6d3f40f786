"""The ``bundle`` source restores what the ``bundle`` sink wrote: synthetic → bundle →
bundle source → sql gives the rows, hashes and attachment bytes of synthetic → sql."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from ledger.canonical import loads
from ledger.extract import ExtractSettings, extract
from ledger.kit import SinkContext, SourceContext
from ledger.replay import ReplaySettings, replay
from ledger.replay.verify import verify
from ledger.schema import rejects
from ledger.store import Ledger
from sinks.bundle import BundleOptions, BundleSink
from sinks.sql import SqlOptions, SqlSink
from sources.bundle import NO_COPY, BundleSource, BundleSourceOptions
from sources.synthetic import SyntheticOptions, SyntheticSource
from tests.helpers import live_records

INLINE = ExtractSettings(parallel=False)
TABLES = ("users", "conversations", "messages", "files")


def opened(folder: Path) -> Ledger:
    return Ledger.open(f"sqlite:///{folder / 'ledger.db'}", blob_dir=folder / "blobs")


@pytest.fixture
def original(tmp_path):
    ledger = opened(tmp_path / "original")
    source = SyntheticSource(
        SyntheticOptions(users=3, seed=5, attachment_rate=0.5), SourceContext("syn", ledger.blobs)
    )
    assert extract(ledger, source, settings=INLINE).status == "succeeded"
    yield ledger
    ledger.close()


def bundle_of(ledger: Ledger, path: Path, **options) -> Path:
    sink = BundleSink(BundleOptions(path=path, **options), SinkContext("bundle", ledger.blobs))
    assert replay(ledger, sink, ["syn"]).status == "succeeded"
    return path


def restore(folder: Path, bundle: Path):
    ledger = opened(folder)
    source = BundleSource(BundleSourceOptions(path=bundle), SourceContext("syn", ledger.blobs))
    return ledger, extract(ledger, source, settings=INLINE)


def into_sql(ledger: Ledger, url: str) -> dict[str, set[tuple]]:
    result = replay(ledger, SqlSink(SqlOptions(url=url), SinkContext("copy", ledger.blobs)), ["syn"])
    assert result.status == "succeeded", result.stats
    engine = create_engine(url)
    with engine.connect() as conn:
        found = {
            table: set(conn.execute(text(f"SELECT key, hash, data, raw, refs FROM {table}")))
            for table in TABLES
        }
    engine.dispose()
    return found


def test_synthetic_through_a_bundle_into_sql_equals_synthetic_into_sql(original, tmp_path):
    bundle = bundle_of(original, tmp_path / "bundle", copy_files=True)
    ledger, result = restore(tmp_path / "restored", bundle)
    try:
        assert result.status == "succeeded", result.stats
        direct = into_sql(original, f"sqlite:///{tmp_path / 'direct.db'}")
        through = into_sql(ledger, f"sqlite:///{tmp_path / 'through.db'}")
        assert all(direct[table] for table in TABLES), {table: len(rows) for table, rows in direct.items()}
        assert through == direct  # the same keys, record hashes, data, raw and refs
        # and the attachment bytes came along into the restored ledger's blob store
        held = live_records(original, "syn").values()
        digests = [doc["data"]["sha256"] for doc in held if doc["kind"] == "file" and doc["data"]["blob"]]
        assert digests
        assert all(ledger.blobs.read(digest) == original.blobs.read(digest) for digest in digests)
        # a second pass over the unchanged bundle reads nothing again
        again = extract(
            ledger,
            BundleSource(BundleSourceOptions(path=bundle), SourceContext("syn", ledger.blobs)),
            settings=INLINE,
        )
        assert again.stats["events"] == 0 and again.stats["scopes"]["unchanged"] == 3, again.stats
    finally:
        ledger.close()


def test_a_bundle_without_copies_restores_files_as_missing_and_bad_lines_are_rejected(original, tmp_path):
    bundle = bundle_of(original, tmp_path / "bundle")
    records = sorted(bundle.glob("*/records.jsonl"))[0]
    lines = records.read_bytes().splitlines()
    records.write_bytes(b"\n".join([*lines, b'{"not": "a record"}', b"{broken"]) + b"\n")
    ledger, result = restore(tmp_path / "restored", bundle)
    try:
        assert result.status == "with-rejects", result.stats
        with ledger.read() as conn:
            found = conn.execute(select(rejects.c.location, rejects.c.reason)).all()
        # each reject names the file and line (after the scope the engine puts first)
        assert sorted(location.split(": ", 1)[1] for location, _ in found) == [
            f"{records}:{len(lines) + 1}",
            f"{records}:{len(lines) + 2}",
        ]
        assert any("not a bundle record" in reason for _, reason in found)
        restored = live_records(ledger, "syn")
        held = live_records(original, "syn")
        assert set(restored) == set(held)  # the valid rest landed
        files = [
            restored[key]["data"]
            for key, doc in held.items()
            if doc["kind"] == "file" and doc["data"]["blob"]
        ]
        assert files and all(data["blob"] is None and data["missing"] == NO_COPY for data in files)
    finally:
        ledger.close()


def test_a_folder_whose_records_file_is_missing_or_partial_is_rejected_not_restored_silently(
    original, tmp_path
):
    bundle = bundle_of(original, tmp_path / "bundle")
    first, second = sorted(bundle.glob("*/records.jsonl"))[:2]
    first.unlink()  # as a bundle written before bundles held records.jsonl
    lines = second.read_bytes().splitlines()
    dropped = loads(lines[-1])["key"]
    second.write_bytes(b"".join(line + b"\n" for line in lines[:-1]))
    ledger, result = restore(tmp_path / "restored", bundle)
    try:
        assert result.status == "with-rejects", result.stats
        with ledger.read() as conn:
            found = {
                location.split(": ", 1)[1]: (reason, data)
                for location, reason, data in conn.execute(
                    select(rejects.c.location, rejects.c.reason, rejects.c.input)
                )
            }
        assert set(found) == {str(first.parent), str(second)}
        assert (
            "written before bundles held it; replay the bundle's target again with --resync"
            in found[str(first.parent)][0]
        )
        reason, listed = found[str(second)]
        assert reason.startswith(
            "1 record(s) listed in conversations.jsonl or files_manifest.jsonl are not in records.jsonl"
        )
        assert dropped in str(listed)
        assert dropped not in live_records(ledger, "syn")
    finally:
        ledger.close()
    # verify of the bundle's target sees both folders as drifted; a resync writes them whole
    sink = BundleSink(BundleOptions(path=bundle), SinkContext("bundle", original.blobs))
    checked = verify(original, sink, ["syn"])
    assert not checked.matches and checked.counts["drifted"] >= 2, checked.counts
    assert replay(original, sink, ["syn"], settings=ReplaySettings(resync=True)).status == "succeeded"
    assert verify(original, sink, ["syn"]).matches
