"""The synthetic source: deterministic, realistic, and mutated on request."""

from __future__ import annotations

import hashlib
from collections import defaultdict

import pytest

from ledger.blobs import BlobStore
from ledger.records import record_hash
from ledger.source import SourceContext
from sources.synthetic import SyntheticOptions, SyntheticSource


def generate(tmp_path, **options):
    blobs = BlobStore(tmp_path / "blobs")
    source = SyntheticSource(SyntheticOptions(**options), SourceContext("syn", blobs))
    records = []
    for scope in source.scopes():
        for items, _cursor in source.read(scope):
            records += items
    return source, records, blobs


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("syn"), users=40, seed=7)


def test_the_same_seed_gives_the_same_records(tmp_path, sample):
    _, records, _ = sample
    _, again, _ = generate(tmp_path, users=40, seed=7)
    assert [record_hash(r) for r in records] == [record_hash(r) for r in again]
    _, other, _ = generate(tmp_path, users=40, seed=8)
    assert {record_hash(r) for r in records}.isdisjoint(record_hash(r) for r in other)


def test_message_trees_are_consistent_and_branch(sample):
    _, records, _ = sample
    messages = [r for r in records if r.kind == "message"]
    conversations = {r.key: r for r in records if r.kind == "conversation"}
    by_key = {m.key: m for m in messages}
    children = defaultdict(list)
    for message in messages:
        parent = message.data["parent"]
        if parent is not None:
            assert by_key[parent].data["conversation"] == message.data["conversation"]
        children[parent].append(message)
    # edits and regenerations make siblings; multi-model groups are marked
    assert any(len(group) > 1 for parent, group in children.items() if parent)
    assert any(m.data["sibling_group"] > 0 for m in messages)
    assert {m.data["role"] for m in messages} == {"user", "assistant", "tool"}
    assert {m.data["status"] for m in messages} == {"complete", "error", "aborted"}
    part_types = {part["type"] for m in messages for part in m.data["parts"]}
    assert {"text", "reasoning", "tool_call", "tool_result", "code", "error"} <= part_types

    # active_leaf follows the newest sibling at every level
    for key, conversation in conversations.items():
        roots = [m for m in children[None] if m.data["conversation"] == key]
        node = max(roots, key=lambda m: m.data["created_at"])
        while children[node.key]:
            node = max(children[node.key], key=lambda m: m.data["created_at"])
        assert conversation.data["active_leaf"] == node.key


def test_files_have_real_bytes_or_a_reason(sample):
    _, records, blobs = sample
    files = [r for r in records if r.kind == "file"]
    present = [f for f in files if f.data["missing"] is None]
    missing = [f for f in files if f.data["missing"]]
    assert present and missing
    for record in present:
        content = blobs.read(record.data["sha256"])
        assert hashlib.sha256(content).hexdigest() == record.data["sha256"]
        assert len(content) == record.data["size"]
        assert record.data["blob"] == f"sha256:{record.data['sha256']}"
    logos = {f.data["sha256"] for f in present if f.data["filename"] == "company-logo.png"}
    assert len(logos) == 1  # one shared logo: stored once
    referenced = {key for r in records if r.kind == "message" for key in r.data["files"]}
    assert referenced == {f.key for f in files}


def test_text_covers_unicode_and_long_messages(tmp_path, sample):
    _, records, _ = sample
    text = " ".join(part.get("text", "") for r in records if r.kind == "message" for part in r.data["parts"])
    for sample_text in ("日本語", "العربية", "👩\u200d💻", "👍🏽", "Straße"):
        assert sample_text in text
    _, many, _ = generate(tmp_path, users=120, seed=3)
    longest = max(len(part.get("text", "")) for r in many if r.kind == "message" for part in r.data["parts"])
    assert longest > 10_000


def test_mutation_changes_only_a_seeded_fraction(tmp_path, sample):
    base_source, base, _ = sample
    mutated_source, mutated, _ = generate(tmp_path, users=40, seed=7, mutate=0.5)
    base_fingerprints = {s.name: s.fingerprint for s in base_source.scopes()}
    mutated_fingerprints = {s.name: s.fingerprint for s in mutated_source.scopes()}
    unchanged_users = [name for name, fp in mutated_fingerprints.items() if base_fingerprints[name] == fp]
    assert 0 < len(unchanged_users) < len(base_fingerprints)
    assert len(mutated_fingerprints) < len(base_fingerprints)  # some users were deleted
    base_hashes = {r.key: record_hash(r) for r in base}
    mutated_hashes = {r.key: record_hash(r) for r in mutated}
    changed = {
        key for key in base_hashes.keys() & mutated_hashes.keys() if base_hashes[key] != mutated_hashes[key]
    }
    assert changed and len(changed) < len(base_hashes) / 2
    assert mutated_hashes.keys() - base_hashes.keys()  # appended turns
    assert base_hashes.keys() - mutated_hashes.keys()  # deletions
    _, zero, _ = generate(tmp_path, users=40, seed=7, mutate=0.0)
    assert {r.key: record_hash(r) for r in zero} == base_hashes
