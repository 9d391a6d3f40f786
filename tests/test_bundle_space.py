"""A full disk under the bundle is the run's failure, with a clear message, and the run
resumes once space is freed (issue 10, item 14): never a permanent reject per unit."""

from __future__ import annotations

import errno
import subprocess

import pytest

from ledger import runs
from ledger.errors import ChatledgerError
from ledger.replay import replay
from ledger.replay.verify import verify
from ledger.sink import SinkContext
from sinks import bundle as bundle_module
from sinks.bundle import BundleOptions, BundleSink
from tests.test_replay import synthetic


def bundle(ledger, root):
    return BundleSink(BundleOptions(path=root, copy_files=True), SinkContext("export", ledger.blobs))


def check_full_then_resumed(ledger, root, free_space) -> None:
    with pytest.raises(
        ChatledgerError, match=r"is out of space .*free space there and run the command again"
    ):
        replay(ledger, bundle(ledger, root), ["syn"])
    failed = runs.list_runs(ledger, target="export", limit=1)[0]
    assert failed.status == "failed" and "out of space" in failed.error
    assert failed.stats["rejected_units"] == 0
    free_space()
    resumed = replay(ledger, bundle(ledger, root), ["syn"])
    assert resumed.status == "succeeded" and resumed.stats["rejected_units"] == 0
    assert verify(ledger, bundle(ledger, root), ["syn"]).matches


def test_an_injected_enospc_fails_the_run_and_a_rerun_resumes(ledger, tmp_path, monkeypatch):
    synthetic(ledger, users=4)
    writes = {"count": 0}
    real = bundle_module._atomic_write

    def filling_up(path, content):
        writes["count"] += 1
        if writes["count"] > 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, content)

    monkeypatch.setattr(bundle_module, "_atomic_write", filling_up)
    check_full_then_resumed(
        ledger, tmp_path / "out", lambda: monkeypatch.setattr(bundle_module, "_atomic_write", real)
    )


def test_a_real_tiny_filesystem(ledger, tmp_path):
    synthetic(ledger, users=6)
    root = tmp_path / "small"
    root.mkdir()
    if subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(root)], capture_output=True
    ).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        grow = ["mount", "-o", "remount,size=16m", str(root)]
        check_full_then_resumed(ledger, root, lambda: subprocess.run(grow, check=True))
    finally:
        subprocess.run(["umount", str(root)], check=True)
