"""The onyx sink against a real PostgreSQL database loaded with Onyx's DDL (both column
generations: ≥ 2.6 as dumped, ≤ 2.5 derived from it by renaming the pointer columns and
dropping their self-foreign-keys and ``reasoning_tokens``), and Onyx's HTTP API
**simulated** by a local server in tests/librechat_onyx/onyx.py that enforces the
documented contract (Bearer auth, duplicate register → 400, invite-only mode, upload →
``user_files`` with ``file_id``). LibreChat data comes from real BSON dump files.
Every assertion reads Onyx's rows back."""

from __future__ import annotations

import hashlib
import os
import stat
import threading

import pytest
from sqlalchemy import event, select

from ledger.replay import ReplaySettings, replay
from ledger.replay.repair import repair
from ledger.replay.rollback import rollback
from ledger.replay.verify import verify
from ledger.schema import rejects
from ledger.sink import TargetUnreachable
from ledger.store import Ledger
from tests.librechat_onyx import fixtures
from tests.librechat_onyx.checks import chain, problems
from tests.librechat_onyx.fixtures import ADA, EDITS, FILES, MULTI, uid
from tests.librechat_onyx.harness import (
    STREAM,
    credentials,
    execute,
    query,
    run_extract,
    sink,
    snapshot,
)
from tests.librechat_onyx.onyx import API_KEY, OnyxApi, load_onyx
from tests.test_dry_run import closed_port

BLOB = '{"messageId": "abc", "sender": "GPT-4", "conversationId": "x"}'


@pytest.fixture
def onyx_url(postgres_database):
    load_onyx(postgres_database)
    return postgres_database


@pytest.fixture
def api(onyx_url):
    with OnyxApi(onyx_url) as server:
        yield server


@pytest.fixture
def local_ledger(tmp_path):
    opened = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}", blob_dir=tmp_path / "blobs")
    yield opened
    opened.close()


def extract_fixture(ledger, tmp_path, data=None, name="dump"):
    assets = fixtures.write_assets(tmp_path / "librechat")
    folder = fixtures.write_dump(tmp_path / name, data)
    return run_extract(ledger, dump_path=folder, asset_roots=[assets])


def onyx(ledger, url, api, tmp_path, **options):
    return sink(ledger, url, api, credentials_file=tmp_path / "credentials.jsonl", **options)


def session_of(url, title):
    return query(url, "SELECT id::text, user_id::text FROM chat_session WHERE description = %s", (title,))[0]


@pytest.mark.parametrize("generation", ["2.6+", "<=2.5"])
def test_replay_writes_chats_onyx_can_read(local_ledger, postgres_database, tmp_path, generation):
    load_onyx(postgres_database, generation)
    url = postgres_database
    extract_fixture(local_ledger, tmp_path)
    with OnyxApi(url) as server:
        result = replay(local_ledger, onyx(local_ledger, url, server, tmp_path), [STREAM])
    assert result.status == "succeeded", result.stats
    file_types = (
        {"image", "document", "plain_text", "tabular"}
        if generation == "2.6+"
        else {"image", "document", "plain_text", "csv", "user_knowledge"}
    )
    assert problems(url, file_types) == []
    assert result.stats["sink"]["users_created"] == 2 and result.stats["sink"]["files_uploaded"] == 3
    # Carol owns no conversation and no file: no account (issue 10), a visible skip
    assert result.stats["sink"]["users_skipped_no_chats"] == 1
    assert query(url, "SELECT count(*) FROM \"user\" WHERE email = 'carol@example.com'") == [(0,)]

    edits_id, ada_id = session_of(url, "Edits and regenerations")
    assert edits_id == EDITS  # the LibreChat conversationId is the session id
    assert query(url, 'SELECT email FROM "user" WHERE id = %s::uuid', (ada_id,)) == [("ada@example.com",)]
    assert query(
        url,
        "SELECT shared_status, deleted, persona_id, prompt_override FROM chat_session WHERE id = %s::uuid",
        (EDITS,),
    ) == [("PUBLIC", False, 0, {"system_prompt": "Be brief."})]
    assert query(url, "SELECT deleted, shared_status FROM chat_session WHERE id = %s::uuid", (FILES,)) == [
        (False, "PRIVATE")
    ]  # archived stays visible
    assert chain(url, EDITS) == [
        ("SYSTEM", ""), ("USER", "Hello 👋"), ("ASSISTANT", "Hi again (regenerated)."),
        ("USER", "Tell me more, but shorter"), ("ASSISTANT", "Short answer."),
    ]  # fmt: skip
    siblings = query(url, "SELECT count(*) FROM chat_message WHERE chat_session_id = %s::uuid", (EDITS,))
    assert siblings == [(8,)]  # root + 7 messages: every branch kept
    assert chain(url, MULTI) == [
        ("SYSTEM", ""), ("USER", "Compare two models"), ("ASSISTANT", "Model one says A."), ("USER", "Continue."),
        ("ASSISTANT", "Model two says B."), ("USER", "Thanks"), ("ASSISTANT", "You're welc"),
    ]  # fmt: skip
    bob_session, bob_id = session_of(url, "Bob's chat")
    assert (
        bob_session != FILES and bob_id != ada_id
    )  # Bob's conversationId collides with Ada's: uuid5 instead

    error = query(url, "SELECT message, error FROM chat_message WHERE error IS NOT NULL")
    assert error == [("", "Upstream error: 529 overloaded")]
    if generation == "2.6+":
        assert query(url, "SELECT reasoning_tokens FROM chat_message WHERE message = 'Short answer.'") == [
            ("The user wants brevity.",)
        ]
    feedback = query(
        url,
        "SELECT f.is_positive, f.feedback_text, m.message FROM chat_feedback f JOIN chat_message m ON m.id = f.chat_message_id",
    )
    assert feedback == [(True, "nice", "More details.")]
    times = query(url, "SELECT time_sent FROM chat_message WHERE message = 'Hello 👋'")
    assert times[0][0] == fixtures.at(1)

    descriptors = query(url, "SELECT files FROM chat_message WHERE message = 'Please read these'")[0][0]
    assert [(d["name"], d["type"]) for d in descriptors] == [
        ("report.pdf", "document")
    ]  # the others have no bytes
    stored = query(
        url,
        "SELECT uf.user_id::text, lo_get(c.lobj_oid) FROM user_file uf JOIN file_content c ON c.file_id = uf.file_id "
        "WHERE uf.id = %s::uuid AND uf.file_id = %s",
        (descriptors[0]["user_file_id"], descriptors[0]["id"]),
    )
    assert stored == [(ada_id, fixtures.PDF)]  # owned by the chat's user, bytes intact

    created = credentials(tmp_path / "credentials.jsonl")
    assert sorted(entry["email"] for entry in created) == ["ada@example.com", "bob@example.com"]
    assert stat.S_IMODE(os.stat(tmp_path / "credentials.jsonl").st_mode) == 0o600
    hashed = query(url, "SELECT hashed_password FROM \"user\" WHERE email = 'ada@example.com'")[0][0]
    ada_password = next(entry["password"] for entry in created if entry["email"] == "ada@example.com")
    assert hashed == "simulated$" + hashlib.sha256(ada_password.encode()).hexdigest()
    assert verify(local_ledger, onyx(local_ledger, url, None, tmp_path), [STREAM]).matches


def test_merge_twice_writes_nothing_then_rollback_removes_exactly_what_it_wrote(
    ledger, onyx_url, api, tmp_path
):
    before = snapshot(onyx_url)
    extract_fixture(ledger, tmp_path)
    first = replay(ledger, onyx(ledger, onyx_url, api, tmp_path), [STREAM])
    # Carol (no chats, no account) and the four files without bytes are skips, not writes
    assert first.status == "succeeded" and (first.stats["written"], first.stats["skipped"]) == (26, 5)
    written = snapshot(onyx_url)
    calls = dict(api.calls)

    second = replay(ledger, onyx(ledger, onyx_url, api, tmp_path), [STREAM])
    assert second.stats["written"] == 0
    assert snapshot(onyx_url) == written and dict(api.calls) == calls  # no row, no API call
    assert verify(ledger, onyx(ledger, onyx_url, api, tmp_path), [STREAM]).matches

    undone = rollback(ledger, onyx(ledger, onyx_url, api, tmp_path), first.run_id)
    assert undone.status == "succeeded" and undone.stats["sink"]["users_deleted"] == 2
    assert snapshot(onyx_url) == before


def test_repairs_mend_a_hand_broken_session_and_a_second_run_writes_nothing(
    local_ledger, onyx_url, api, tmp_path
):
    extract_fixture(local_ledger, tmp_path)
    replay(local_ledger, onyx(local_ledger, onyx_url, api, tmp_path), [STREAM])
    clean = snapshot(onyx_url)
    execute(
        onyx_url,
        "UPDATE chat_message SET latest_child_message_id = NULL WHERE chat_session_id = %s::uuid",
        (EDITS,),
    )
    execute(
        onyx_url,
        f"UPDATE chat_message SET citations = '{BLOB}' WHERE chat_session_id = %s::uuid AND message_type = 'ASSISTANT'",
        (EDITS,),
    )
    execute(onyx_url, "UPDATE chat_message SET citations = '[1, 2]' WHERE message = 'Model one says A.'")
    broken = verify(local_ledger, onyx(local_ledger, onyx_url, api, tmp_path), [STREAM])
    assert broken.counts["drifted"] == 2 and problems(onyx_url)

    pointers = repair(local_ledger, onyx(local_ledger, onyx_url, api, tmp_path), "latest-child", [STREAM])
    assert pointers.stats["fixes"] == 5  # root, u1, a1b, u2, u2e
    cited = repair(local_ledger, onyx(local_ledger, onyx_url, api, tmp_path), "citations", [STREAM])
    assert cited.stats["fixes"] == 5  # four ASSISTANT rows of EDITS, one in MULTI
    assert snapshot(onyx_url) == clean and problems(onyx_url) == []
    assert verify(local_ledger, onyx(local_ledger, onyx_url, api, tmp_path), [STREAM]).matches
    for rule in ("latest-child", "citations"):
        assert (
            repair(local_ledger, onyx(local_ledger, onyx_url, api, tmp_path), rule, [STREAM]).stats["fixes"]
            == 0
        )


def test_repairs_also_mend_sessions_other_tools_wrote(local_ledger, onyx_url, api, tmp_path):
    """A chat imported by the earlier lc-mig.py: banner text in the root, NULL pointers,
    a LibreChat blob in citations; the ledger knows nothing of it."""
    extract_fixture(local_ledger, tmp_path)
    replay(local_ledger, onyx(local_ledger, onyx_url, api, tmp_path), [STREAM])
    owner = session_of(onyx_url, "Bob's chat")[1]
    execute(
        onyx_url,
        "INSERT INTO chat_session (id, user_id, persona_id, description, deleted, shared_status, onyxbot_flow) "
        "VALUES ('11111111-2222-4333-8444-555555555555', %s::uuid, 0, 'lc-mig import', false, 'PRIVATE', false)",
        (owner,),
    )
    execute(
        onyx_url,
        "INSERT INTO chat_message (id, chat_session_id, parent_message_id, message, message_type, token_count, time_sent, citations) VALUES "
        "(9001, '11111111-2222-4333-8444-555555555555', NULL, 'Imported from LibreChat', 'SYSTEM', 0, '2024-01-01', NULL), "
        "(9002, '11111111-2222-4333-8444-555555555555', 9001, 'q', 'USER', 1, '2024-01-02', NULL), "
        f"(9003, '11111111-2222-4333-8444-555555555555', 9002, 'old answer', 'ASSISTANT', 1, '2024-01-03', '{BLOB}'), "
        "(9004, '11111111-2222-4333-8444-555555555555', 9002, 'new answer', 'ASSISTANT', 1, '2024-01-04', '{\"1\": 7}')",
    )
    execute(
        onyx_url, "INSERT INTO chat_message__search_doc (chat_message_id, search_doc_id) VALUES (9004, 7)"
    )
    assert (
        repair(local_ledger, onyx(local_ledger, onyx_url, api, tmp_path), "latest-child", [STREAM]).stats[
            "fixes"
        ]
        == 2
    )
    assert (
        repair(local_ledger, onyx(local_ledger, onyx_url, api, tmp_path), "citations", [STREAM]).stats[
            "fixes"
        ]
        == 1
    )
    assert chain(onyx_url, "11111111-2222-4333-8444-555555555555")[1:] == [
        ("USER", "q"),
        ("ASSISTANT", "new answer"),
    ]
    assert query(onyx_url, "SELECT id, citations FROM chat_message WHERE id IN (9003, 9004) ORDER BY id") == [
        (9003, None),
        (9004, {"1": 7}),
    ]
    for rule in ("latest-child", "citations"):
        assert (
            repair(local_ledger, onyx(local_ledger, onyx_url, api, tmp_path), rule, [STREAM]).stats["fixes"]
            == 0
        )


def test_changes_update_rows_in_place_and_keep_chats_continued_in_onyx(local_ledger, onyx_url, api, tmp_path):
    data = fixtures.dataset()
    extract_fixture(local_ledger, tmp_path, data)
    replay(local_ledger, onyx(local_ledger, onyx_url, api, tmp_path), [STREAM])
    ids = dict(
        query(onyx_url, "SELECT message, id FROM chat_message WHERE chat_session_id = %s::uuid", (EDITS,))
    )
    # the user continued the chat in Onyx, under the displayed answer
    execute(
        onyx_url,
        "INSERT INTO chat_message (id, chat_session_id, parent_message_id, message, message_type, token_count) "
        "VALUES (9100, %s::uuid, %s, 'asked in Onyx', 'USER', 3)",
        (EDITS, ids["Short answer."]),
    )
    execute(
        onyx_url,
        "UPDATE chat_message SET latest_child_message_id = 9100 WHERE id = %s",
        (ids["Short answer."],),
    )
    edited = next(m for m in data["messages"] if m["messageId"] == uid("a1") and m["conversationId"] == EDITS)
    edited["text"] = "Hi! (edited in LibreChat)"
    data["messages"].append(fixtures.message(ADA, EDITS, "a1c", uid("u1"), 3.5, text="A third try."))
    data["messages"] = [
        m for m in data["messages"] if not (m["messageId"] == uid("a2") and m["conversationId"] == EDITS)
    ]
    extract_fixture(local_ledger, tmp_path, data, name="dump2")
    result = replay(
        local_ledger,
        onyx(local_ledger, onyx_url, api, tmp_path),
        [STREAM],
        settings=ReplaySettings(propagate_deletes=True),
    )
    assert result.status == "succeeded", result.stats
    after = dict(
        query(onyx_url, "SELECT message, id FROM chat_message WHERE chat_session_id = %s::uuid", (EDITS,))
    )
    assert after["Hi! (edited in LibreChat)"] == ids["Hi!"]  # updated in place
    assert "More details." not in after and "A third try." in after
    assert after["asked in Onyx"] == 9100 and after["Short answer."] == ids["Short answer."]
    assert query(onyx_url, "SELECT count(*) FROM chat_feedback") == [
        (0,)
    ]  # the message with feedback is gone
    # the newest answer to u1 is now "A third try.": the active branch moved there
    assert chain(onyx_url, EDITS)[:3] == [("SYSTEM", ""), ("USER", "Hello 👋"), ("ASSISTANT", "A third try.")]
    assert problems(onyx_url) == []


def test_existing_accounts_are_matched_and_skip_emails_and_invite_only_are_honoured(
    local_ledger, onyx_url, tmp_path
):
    execute(
        onyx_url,
        'INSERT INTO "user" (id, email, hashed_password, is_active, is_superuser, is_verified, role, account_type) '
        "VALUES ('aaaaaaaa-0000-4000-8000-000000000001', 'ada@example.com', 'x', true, false, true, 'BASIC', 'STANDARD')",
    )
    extract_fixture(local_ledger, tmp_path)
    with OnyxApi(onyx_url, invite_only=True) as server:
        refused = replay(
            local_ledger,
            onyx(local_ledger, onyx_url, server, tmp_path, skip_emails=["Carol@example.com"]),
            [STREAM],
        )
        assert refused.status == "with-rejects" and refused.stats["rejected_units"] > 0
        with local_ledger.read() as conn:
            reasons = [row.reason for row in conn.execute(select(rejects).where(rejects.c.target == "onyx"))]
        assert any("allowed user whitelist" in reason for reason in reasons)
        invited = replay(
            local_ledger,
            onyx(
                local_ledger, onyx_url, server, tmp_path, skip_emails=["Carol@example.com"], invite_users=True
            ),
            [STREAM],
        )
        assert invited.status == "succeeded", invited.stats
        assert server.calls["PUT /api/manage/admin/users"] == 1  # only Bob needed an account
    assert query(onyx_url, "SELECT user_id::text FROM chat_session WHERE id = %s::uuid", (EDITS,)) == [
        ("aaaaaaaa-0000-4000-8000-000000000001",)
    ]
    assert query(onyx_url, "SELECT count(*) FROM \"user\" WHERE email = 'carol@example.com'") == [(0,)]
    assert [entry["email"] for entry in credentials(tmp_path / "credentials.jsonl")] == ["bob@example.com"]
    assert verify(
        local_ledger,
        onyx(local_ledger, onyx_url, None, tmp_path, skip_emails=["carol@example.com"]),
        [STREAM],
    ).matches


def test_a_concurrent_registration_is_matched_and_transient_failures_are_retried(
    local_ledger, onyx_url, api, tmp_path
):
    extract_fixture(local_ledger, tmp_path)
    api.fail["POST /api/user/projects/file/upload"] = [503, 503]
    target = onyx(local_ledger, onyx_url, api, tmp_path)
    target.open()
    real_find, raced = target.accounts.find, []

    def racing_find(cursor, email):  # another admin registers Bob between our check and ours
        found = real_find(cursor, email)
        if email == "bob@example.com" and found is None and not raced:
            raced.append(api.register(b'{"email": "bob@example.com", "password": "someone-elses"}'))
        return found

    target.accounts.find = racing_find
    result = replay(local_ledger, target, [STREAM])
    assert result.status == "succeeded", result.stats
    assert raced == [(201, raced[0][1])] and api.calls["POST /api/auth/register"] == 2  # Bob's answered 400
    assert api.calls["POST /api/user/projects/file/upload"] == 5  # 3 files, 2 retried
    assert [entry["email"] for entry in credentials(tmp_path / "credentials.jsonl")] == ["ada@example.com"]
    assert query(onyx_url, "SELECT count(*) FROM \"user\" WHERE email = 'bob@example.com'") == [(1,)]


def test_a_refused_upload_among_parallel_ones_uploads_only_itself_again(
    local_ledger, onyx_url, api, tmp_path
):
    extract_fixture(local_ledger, tmp_path)
    api.fail["POST /api/user/projects/file/upload"] = [400]  # whichever of the three comes first
    result = replay(local_ledger, onyx(local_ledger, onyx_url, api, tmp_path, api_concurrency=3), [STREAM])
    assert result.status == "succeeded", result.stats  # the batch failed, its halves were applied again
    assert api.calls["POST /api/user/projects/file/upload"] == 4  # the other two were tagged, not sent again
    tags = query(onyx_url, "SELECT count(*), count(file_metadata -> 'chatledger') FROM file_record")
    assert tags == [(3, 3)]  # one upload per file, every one tagged


def test_what_a_failed_attempt_did_through_the_api_is_counted_once(local_ledger, onyx_url, api, tmp_path):
    extract_fixture(local_ledger, tmp_path)
    api.fail["POST /api/user/projects/file/upload"] = [400]  # after the accounts and two uploads landed
    result = replay(local_ledger, onyx(local_ledger, onyx_url, api, tmp_path, api_concurrency=3), [STREAM])
    assert result.status == "succeeded", result.stats
    counted = result.stats["sink"]
    assert counted["files_uploaded"] == 3  # two in the failed attempt, one in its retry
    made = credentials(tmp_path / "credentials.jsonl")
    assert counted["users_created"] == len(made) == 2  # made in the failed attempt
    assert "users_matched" not in counted  # not again by its retry, which found them


def test_uploads_and_registrations_take_no_connection_of_their_own(local_ledger, onyx_url, api, tmp_path):
    extract_fixture(local_ledger, tmp_path)
    target = onyx(local_ledger, onyx_url, api, tmp_path, api_concurrency=2)
    target.open()
    inside, taken = threading.local(), []
    event.listen(target.engine, "checkout", lambda *_: taken.append(getattr(inside, "task", None)))

    def watched(task):
        def run(*args):
            inside.task = task.__name__
            try:
                return task(*args)
            finally:
                inside.task = None

        return run

    target.files._upload = watched(target.files._upload)
    target.accounts._create = watched(target.accounts._create)
    assert replay(local_ledger, target, [STREAM]).status == "succeeded"
    assert api.calls["POST /api/user/projects/file/upload"] == 3 and api.calls["POST /api/auth/register"] == 2
    assert [
        task for task in taken if task
    ] == []  # each API worker's connection was checked out once, up front


def test_upload_tags_do_not_wait_for_the_disk_and_the_pool_gets_its_setting_back(
    local_ledger, onyx_url, api, tmp_path
):
    extract_fixture(local_ledger, tmp_path)
    target = onyx(local_ledger, onyx_url, api, tmp_path, api_concurrency=2)
    target.open()
    real_tag, real_write, tags, batches = target.tag_upload, target.sessions.write, [], []

    def setting(cursor) -> str:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]

    def tag_upload(cursor, *args):
        tags.append(setting(cursor))
        return real_tag(cursor, *args)

    def write(cursor, units):  # on a connection the pool may have lent to an API worker before
        batches.append(setting(cursor))
        return real_write(cursor, units)

    target.tag_upload, target.sessions.write = tag_upload, write
    assert replay(local_ledger, target, [STREAM]).status == "succeeded"
    assert tags == ["off"] * 3  # the batch's transaction flushes the tags with its own commit
    assert batches and set(batches) == {"on"}


def test_a_bad_api_key_rejects_units_and_never_leaks(local_ledger, onyx_url, api, tmp_path):
    extract_fixture(local_ledger, tmp_path)
    result = replay(local_ledger, sink(local_ledger, onyx_url, None, api_base=api.base, api_key="on_wrong_key_987654321",
                                        credentials_file=tmp_path / "c.jsonl"), [STREAM])  # fmt: skip
    assert result.status == "with-rejects"
    with local_ledger.read() as conn:
        reasons = [row.reason for row in conn.execute(select(rejects).where(rejects.c.target == "onyx"))]
    assert reasons and all("on_wrong_key_987654321" not in reason for reason in reasons)
    assert any("HTTP 401" in reason for reason in reasons)
    assert query(onyx_url, "SELECT count(*) FROM chat_session") == [(0,)]


def test_the_credentials_file_must_be_private(local_ledger, onyx_url, api, tmp_path):
    extract_fixture(local_ledger, tmp_path)
    loose = tmp_path / "credentials.jsonl"
    loose.write_text("")
    loose.chmod(0o644)
    result = replay(local_ledger, onyx(local_ledger, onyx_url, api, tmp_path), [STREAM])
    assert result.status == "with-rejects"
    with local_ledger.read() as conn:
        reasons = [row.reason for row in conn.execute(select(rejects).where(rejects.c.target == "onyx"))]
    assert any("readable by others" in reason for reason in reasons)
    assert api.calls["POST /api/auth/register"] == 0  # refused before any account is created


def test_a_dry_run_lists_the_accounts_it_would_create_and_writes_nothing(
    local_ledger, onyx_url, api, tmp_path
):
    execute(
        onyx_url,
        'INSERT INTO "user" (id, email, hashed_password, is_active, is_superuser, is_verified, role, account_type) '
        "VALUES ('aaaaaaaa-0000-4000-8000-000000000002', 'bob@example.com', 'x', true, false, true, 'BASIC', 'STANDARD')",
    )
    extract_fixture(local_ledger, tmp_path)
    before = snapshot(onyx_url)
    planned = replay(
        local_ledger, onyx(local_ledger, onyx_url, api, tmp_path, skip_emails=["carol@example.com"]), [STREAM],
        settings=ReplaySettings(dry_run=True),
    )  # fmt: skip
    assert planned.stats["preview"]["users"] == {
        "create": ["ada@example.com"], "match": 1, "skip": ["carol@example.com"], "no_chats": [], "no_email": []
    }  # fmt: skip
    assert planned.stats["plan"]['user → "user" (API)']["insert"] == 3
    assert snapshot(onyx_url) == before and not (tmp_path / "credentials.jsonl").exists()
    assert api.calls == {"GET /api/manage/users/accepted": 1}  # the check's one read


def test_a_dry_run_refuses_an_api_it_cannot_reach_or_that_refuses_the_key(
    local_ledger, onyx_url, api, tmp_path
):
    assert onyx(local_ledger, onyx_url, api, tmp_path).check() == []
    wrong_key = "on_wrong-key-7c1d9e"
    with pytest.raises(TargetUnreachable) as refused:
        onyx(local_ledger, onyx_url, api, tmp_path, api_key=wrong_key).check()
    assert f"api {api.base}): the API refused the api_key: " in str(refused.value)
    assert "HTTP 401" in str(refused.value) and wrong_key not in str(refused.value)
    port = closed_port()
    with pytest.raises(TargetUnreachable) as unreached:
        onyx(local_ledger, onyx_url, api, tmp_path, api_base=f"http://127.0.0.1:{port}/api").check()
    assert f"api http://127.0.0.1:{port}/api): cannot reach the API: " in str(unreached.value)
    assert "ConnectError" in str(unreached.value) and API_KEY not in str(unreached.value)
    notes = onyx(local_ledger, onyx_url, None, tmp_path).check()  # no API configured
    assert notes == ["api_base or api_key not set: a run can create no account and upload no file"]


def test_an_earlier_import_with_the_same_id_is_adopted_but_not_another_users_session(
    local_ledger, onyx_url, api, tmp_path
):
    """lc-mig.py also used the conversationId as the session id: its session of Ada's chat
    is replaced; a session with that id owned by someone else is left alone."""
    ada, stranger = "aaaaaaaa-0000-4000-8000-000000000003", "aaaaaaaa-0000-4000-8000-000000000004"
    for user_id, email in ((ada, "ada@example.com"), (stranger, "stranger@example.com")):
        execute(
            onyx_url,
            'INSERT INTO "user" (id, email, hashed_password, is_active, is_superuser, is_verified, role, account_type) '
            "VALUES (%s, %s, 'x', true, false, true, 'BASIC', 'STANDARD')",
            (user_id, email),
        )
    for session_id, owner in ((EDITS, ada), (FILES, stranger)):
        execute(
            onyx_url,
            "INSERT INTO chat_session (id, user_id, persona_id, description, deleted, shared_status, onyxbot_flow) "
            "VALUES (%s::uuid, %s::uuid, 0, 'lc-mig import', true, 'PRIVATE', false)",
            (session_id, owner),
        )
    execute(
        onyx_url,
        "INSERT INTO chat_message (id, chat_session_id, parent_message_id, message, message_type, token_count) VALUES "
        f"(9201, '{EDITS}', NULL, 'Imported from LibreChat', 'SYSTEM', 0), (9202, '{EDITS}', 9201, 'Hello', 'USER', 1), "
        f"(9203, '{FILES}', NULL, '', 'SYSTEM', 0)",
    )
    extract_fixture(local_ledger, tmp_path)
    result = replay(local_ledger, onyx(local_ledger, onyx_url, api, tmp_path), [STREAM])
    assert result.status == "succeeded" and result.stats["sink"]["sessions_adopted"] == 1
    assert query(onyx_url, "SELECT count(*) FROM chat_message WHERE id IN (9201, 9202)") == [(0,)]
    assert query(
        onyx_url, "SELECT user_id::text, deleted, description FROM chat_session WHERE id = %s::uuid", (EDITS,)
    ) == [(ada, False, "Edits and regenerations")]
    assert query(
        onyx_url, "SELECT user_id::text, description FROM chat_session WHERE id = %s::uuid", (FILES,)
    ) == [(stranger, "lc-mig import")]
    ada_files = query(
        onyx_url,
        "SELECT id::text, user_id::text FROM chat_session WHERE description = 'Files, errors and orphans'",
    )
    assert ada_files[0][1] == ada and ada_files[0][0] != FILES
    assert verify(local_ledger, onyx(local_ledger, onyx_url, api, tmp_path), [STREAM]).matches
