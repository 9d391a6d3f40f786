"""The runbook through the real ``chatledger`` command, source and target each with its
own key (as env: references): ``migrate`` twice (the second writes nothing), ``verify``
exits 0, and 3 once a thread is deleted on the target by hand; a replay SIGKILLed after
the target took a thread and before the ledger recorded it gives, after a re-run, the
same target as a clean run."""

from __future__ import annotations

import json

from tests.conftest import run_cli
from tests.langgraph.deployment import Deployment, chain

CONFIG = """
[ledger]
url = "sqlite:///{ledger}"

[sources.lg-prod]
type = "langgraph"
url = "{source}"
api_key = "env:LG_SOURCE_KEY"
metadata_filter = '{filter}'
page_size = 50

[targets.lg-staging]
type = "langgraph"
url = "{target}"
api_key = "env:LG_TARGET_KEY"
legacy_terminal_node = "agent"
streams = ["lg-prod"]
"""
KEYS = {"LG_SOURCE_KEY": "lsv2_sk_source_secret", "LG_TARGET_KEY": "lsv2_sk_target_secret"}


def setup(tmp_path, deployment, target, metadata_filter):
    config = CONFIG.format(
        ledger=tmp_path / "ledger.db", source=deployment.url, target=target.url, filter=metadata_filter
    )
    (tmp_path / "chatledger.toml").write_text(config)

    def cli(*args, env=None):
        done = run_cli(*args, "--json", "--no-progress", cwd=tmp_path, env={**KEYS, **(env or {})})
        for key in KEYS.values():
            assert key not in done.stdout + done.stderr
        return done.returncode, json.loads(done.stdout) if done.stdout.strip() else None

    return cli


def test_migrate_verify_and_a_thread_deleted_by_hand(tmp_path, deployment, target):
    cli = setup(tmp_path, deployment, target, '{"suite": "base", "owner": "alice"}')
    code, first = cli("migrate", "lg-prod", "lg-staging")
    assert code == 0, first
    assert first["verify"]["matches"] and first["verify"]["ok"] == 2
    there = Deployment(target.url).client()
    for name in ("long", "edited"):
        assert chain(there, deployment.threads[name]) == chain(deployment.client(), deployment.threads[name])
    code, second = cli("migrate", "lg-prod", "lg-staging")
    assert code == 0 and second["replay"]["stats"]["written"] == 0
    assert cli("verify", "lg-staging")[0] == 0
    there.threads.delete(deployment.threads["edited"])
    code, checked = cli("verify", "lg-staging")
    assert code == 3 and checked["missing"] == 1
    for key in KEYS.values():
        assert key.encode() not in (tmp_path / "ledger.db").read_bytes()


def test_a_replay_killed_midway_and_rerun_equals_a_clean_run(tmp_path, deployment, target):
    cli = setup(tmp_path, deployment, target, '{"suite": "base", "owner": "dave"}')
    assert cli("extract", "lg-prod")[0] == 0
    killed, _ = cli(
        "replay",
        "lg-staging",
        "--batch-size",
        "1",
        env={"CHATLEDGER_FAILPOINTS": "replay.record.before=2:kill"},
    )
    assert killed != 0
    there = Deployment(target.url).client()
    assert there.threads.count() >= 2  # the target holds a thread the ledger never recorded
    code, rerun = cli("replay", "lg-staging")
    assert code == 0, rerun
    assert cli("replay", "lg-staging")[1]["stats"]["written"] == 0
    small = [deployment.threads[f"small-{n}"] for n in range(3)]
    assert sorted(t["thread_id"] for t in there.threads.search(limit=100)) == sorted(small)
    for thread_id in small:
        assert chain(there, thread_id) == chain(deployment.client(), thread_id)
    assert cli("verify", "lg-staging")[0] == 0
