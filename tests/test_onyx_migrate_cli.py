"""The issue's acceptance run through the real ``chatledger`` command: ``migrate`` a
LibreChat dump into Onyx twice (the second writes 0 rows), ``rollback`` the first run
(Onyx returns to its exact prior rows), ``repair`` a session broken by hand (NULL
pointers, a LibreChat blob in citations) and repair again (0 fixes); and a replay
SIGKILLed after Onyx committed a batch, healed from the marker rows instead of written
twice. Real PostgreSQL with Onyx's DDL, real BSON files, Onyx's API **simulated** by the
local server in tests/librechat_onyx/onyx.py."""

from __future__ import annotations

import json

from tests.conftest import run_cli
from tests.librechat_onyx import fixtures
from tests.librechat_onyx.checks import problems
from tests.librechat_onyx.fixtures import EDITS
from tests.librechat_onyx.harness import credentials, execute, query, snapshot
from tests.librechat_onyx.onyx import API_KEY, OnyxApi, load_onyx, plain_url

CONFIG = """
[ledger]
url = "sqlite:///{ledger}"

[sources.lc]
type = "librechat"
dump_path = "{dump}"
asset_roots = ["{assets}"]

[targets.onyx]
type = "onyx"
db_url = "env:ONYX_DB_URL"
api_base = "{api}"
api_key = "env:ONYX_API_KEY"
credentials_file = "{credentials}"
streams = ["lc"]
"""


def write_config(tmp_path, api) -> None:
    dump = fixtures.write_dump(tmp_path / "dump")
    assets = fixtures.write_assets(tmp_path / "librechat")
    config = CONFIG.format(
        ledger=tmp_path / "ledger.db",
        dump=dump,
        assets=assets,
        api=api.base,
        credentials=tmp_path / "credentials.jsonl",
    )
    (tmp_path / "chatledger.toml").write_text(config)


def test_migrate_twice_rollback_and_repair_through_the_cli(postgres_database, tmp_path):
    load_onyx(postgres_database)
    env = {"ONYX_DB_URL": plain_url(postgres_database), "ONYX_API_KEY": API_KEY}
    with OnyxApi(postgres_database) as api:
        write_config(tmp_path, api)

        def cli(*args):
            done = run_cli(*args, "--json", cwd=tmp_path, env=env)
            assert API_KEY not in done.stdout + done.stderr
            return done.returncode, json.loads(done.stdout) if done.stdout.strip() else None

        before = snapshot(postgres_database)
        code, first = cli("migrate", "lc", "onyx", "--no-progress")
        assert code == 4 and first["status"] == "with-rejects", first  # the fixture's stray message
        # Carol (no chats: no account) and the four files without bytes are skips
        replayed = first["replay"]["stats"]
        assert (replayed["written"], replayed["skipped"]) == (26, 5) and first["verify"]["matches"]
        migrated = snapshot(postgres_database)
        assert problems(postgres_database) == []

        code, second = cli("migrate", "lc", "onyx", "--no-progress")
        assert code == 0 and second["extract"]["stats"]["events"] == 0
        assert second["replay"]["stats"]["written"] == 0 and snapshot(postgres_database) == migrated

        code, undone = cli("rollback", str(first["run_id"]), "--no-progress")
        # the target is back exactly; rollback also counts the 5 skipped records as undone
        # (an engine matter: a skip has nothing to undo), so only the target is asserted
        assert code == 0 and undone["status"] == "succeeded"
        assert snapshot(postgres_database) == before

        code, _ = cli("replay", "onyx", "--no-progress")
        assert code == 0
        execute(
            postgres_database,
            "UPDATE chat_message SET latest_child_message_id = NULL WHERE chat_session_id = %s::uuid",
            (EDITS,),
        )
        execute(
            postgres_database,
            'UPDATE chat_message SET citations = \'{"messageId": "x", "sender": "GPT-4"}\' '
            "WHERE chat_session_id = %s::uuid AND message_type = 'ASSISTANT'",
            (EDITS,),
        )
        code, _ = cli("verify", "onyx", "--no-progress")
        assert code == 3
        for rule, fixes in (("latest-child", 5), ("citations", 4)):
            code, dry = cli("repair", "onyx", rule, "--dry-run")
            assert code == 0 and dry["stats"]["fixes"] == fixes
            code, fixed = cli("repair", "onyx", rule, "--no-progress")
            assert code == 0 and fixed["stats"]["fixes"] == fixes
            code, again = cli("repair", "onyx", rule, "--no-progress")
            assert code == 0 and again["stats"]["fixes"] == 0
        code, checked = cli("verify", "onyx", "--no-progress")
        assert code == 0 and checked["matches"] and problems(postgres_database) == []
    assert API_KEY not in (tmp_path / "ledger.db").read_bytes().decode("latin-1")


def test_a_replay_killed_after_onyx_committed_is_healed_not_duplicated(postgres_database, tmp_path):
    load_onyx(postgres_database)
    env = {"ONYX_DB_URL": plain_url(postgres_database), "ONYX_API_KEY": API_KEY}
    with OnyxApi(postgres_database) as api:
        write_config(tmp_path, api)
        assert (
            run_cli("extract", "lc", "--no-progress", cwd=tmp_path, env=env).returncode == 4
        )  # finished; the stray message was rejected
        killed = run_cli(
            "replay", "onyx", "--batch-size", "10", "--no-progress", cwd=tmp_path,
            env={**env, "CHATLEDGER_FAILPOINTS": "replay.record.before=3:kill"},
        )  # fmt: skip
        assert killed.returncode != 0
        sessions_after_kill = query(postgres_database, "SELECT count(*) FROM chat_session")[0][0]
        assert sessions_after_kill >= 1  # Onyx holds batches the ledger never recorded
        done = run_cli("replay", "onyx", "--no-progress", "--json", cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["stats"]["reconciled"] > 0  # healed from the markers, not rewritten
        again = run_cli("replay", "onyx", "--no-progress", "--json", cwd=tmp_path, env=env)
        assert json.loads(again.stdout)["stats"]["written"] == 0
    assert query(postgres_database, "SELECT count(*) FROM chat_session") == [(4,)]
    assert query(postgres_database, "SELECT count(*) FROM chat_message") == [
        (22,)
    ]  # 17 messages, 4 roots, 1 bridge
    assert query(postgres_database, "SELECT count(*) FROM user_file") == [(3,)]
    assert (
        len(credentials(tmp_path / "credentials.jsonl")) == 2 and problems(postgres_database) == []
    )  # not Carol
    assert run_cli("verify", "onyx", "--no-progress", cwd=tmp_path, env=env).returncode == 0


def test_a_dry_run_names_an_api_that_refuses_the_key(postgres_database, tmp_path):
    load_onyx(postgres_database)
    wrong = "on_not-the-key-51f2"
    with OnyxApi(postgres_database) as api:
        write_config(tmp_path, api)
        env = {"ONYX_DB_URL": plain_url(postgres_database), "ONYX_API_KEY": wrong}
        refused = run_cli("migrate", "lc", "onyx", "--dry-run", cwd=tmp_path, env=env)
        checked = run_cli("replay", "onyx", "--dry-run", cwd=tmp_path, env={**env, "ONYX_API_KEY": API_KEY})
    assert refused.returncode == 1, refused.stdout
    assert (
        f"api {api.base}): the API refused the api_key: " in refused.stderr and "HTTP 401" in refused.stderr
    )
    assert wrong not in refused.stderr + refused.stdout and "kind" not in refused.stdout  # before reading
    assert checked.returncode == 0, checked.stderr
    assert "target onyx: reachable, with the rights a run needs" in checked.stdout
    assert api.calls["GET /api/manage/users/accepted"] == 2
