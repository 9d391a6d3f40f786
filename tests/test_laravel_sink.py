"""The ``laravel`` sink on SQLite, Postgres and MariaDB: the original importer's scenarios
(``KhalaImportChatCommandTest.php``) and its rules, read back from the target's rows.

WorkOS is the simulated server in ``tests/convex_laravel/workos.py``, not the real API.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.dialects.sqlite.base import SQLiteDialect

from ledger.errors import ChatledgerError, ConfigError
from ledger.kit import canonical_text
from ledger.replay import ReplaySettings
from ledger.replay.repair import repair
from ledger.replay.rollback import rollback
from ledger.replay.verify import verify
from sinks.laravel.columns import millis
from sinks.laravel.threads import canonical_equal, jsonb_equal
from tests.convex_laravel import data
from tests.convex_laravel.exports import write_export
from tests.convex_laravel.harness import (
    STREAM,
    counts,
    create_tables,
    database_url,
    execute,
    extract_export,
    fetch,
    held_refs,
    laravel_url,
    ledger,
    replay_into,
    rows,
    sink,
    sink_counters,
)
from tests.convex_laravel.workos import SimulatedWorkos

API_KEY = "sk_test_simulated_workos_key_123"


def second_of(milliseconds: float) -> dt.datetime:
    return dt.datetime(1970, 1, 1) + dt.timedelta(seconds=int(milliseconds // 1000))


def imported(ledger, tmp_path, url, tables=None, **options):
    path = write_export(tmp_path / "export.zip", tables or data.original())
    extract_export(ledger, path)
    return replay_into(ledger, url, **options)


def test_original_import_users_autopilot_and_linkage(ledger, tmp_path, laravel_url):
    result = imported(ledger, tmp_path, laravel_url, data.original("userlegacy1", "legacy@example.com"))
    assert result.status == "succeeded"
    [(user_id, email, name, avatar)] = rows(
        laravel_url, "SELECT id, email, name, avatar FROM users WHERE workos_id = 'userlegacy1'"
    )
    assert (email, name) == ("legacy@example.com", "legacy")
    assert avatar.startswith("https://www.gravatar.com/avatar/")
    [(autopilot_id, version, handle, display, tagline)] = rows(
        laravel_url,
        "SELECT id, config_version, handle, display_name, tagline FROM autopilots WHERE owner_user_id = :u",
        u=user_id,
    )
    assert (version, handle, display) == (2, f"autopilot-{user_id}", "Chris")
    assert tagline.startswith("Identity: Autopilot || Voice: direct and practical || Core truths:")
    [(owner_display, voice)] = rows(
        laravel_url,
        "SELECT owner_display_name, autopilot_voice FROM autopilot_profiles WHERE autopilot_id = :a",
        a=autopilot_id,
    )
    assert (owner_display, voice) == ("Chris", "direct and practical")
    assert rows(laravel_url, "SELECT user_id, autopilot_id, title FROM threads") == [
        (user_id, autopilot_id, "Summarize my previous conversation.")
    ]
    [(status, run_autopilot, run_version)] = rows(
        laravel_url,
        "SELECT status, autopilot_id, autopilot_config_version FROM runs WHERE id = :r",
        r=data.RUN,
    )
    assert (status, run_autopilot, run_version) == ("completed", autopilot_id, 2)
    assert rows(laravel_url, "SELECT count(*) FROM messages WHERE thread_id = :t AND autopilot_id = :a",
                t=data.THREAD, a=autopilot_id) == [(2,)]  # fmt: skip
    assert rows(laravel_url, "SELECT count(*) FROM agent_conversation_messages WHERE conversation_id = :t",
                t=data.THREAD) == [(2,)]  # fmt: skip
    assert rows(laravel_url, "SELECT type, autopilot_id, actor_type, actor_autopilot_id FROM run_events") == [
        ("legacy_receipt_tool", autopilot_id, "autopilot", autopilot_id)
    ]
    # the anonymous thread is skipped by design, and counted
    assert rows(laravel_url, "SELECT count(*) FROM threads WHERE id = :t", t=data.ANON_THREAD) == [(0,)]
    counters = sink_counters(result)
    assert {name: counters.get(name, 0) for name in (
        "users_imported", "threads_imported", "runs_imported", "messages_imported", "events_imported",
        "autopilots_created", "autopilot_profiles_upserted", "autopilot_policies_upserted", "blueprints_mapped",
        "threads_skipped_ownerless", "users_unresolved_placeholder",
    )} == {
        "users_imported": 1, "threads_imported": 1, "runs_imported": 1, "messages_imported": 2,
        "events_imported": 1, "autopilots_created": 1, "autopilot_profiles_upserted": 1,
        "autopilot_policies_upserted": 1, "blueprints_mapped": 1, "threads_skipped_ownerless": 1,
        "users_unresolved_placeholder": 0,
    }  # fmt: skip
    assert verify(ledger, sink(ledger, laravel_url), [STREAM]).matches


def test_placeholder_on_email_conflict_and_idempotent(ledger, tmp_path, laravel_url):
    execute(
        laravel_url,
        "INSERT INTO users (name, email, workos_id, avatar, handle) "
        "VALUES ('Existing User', 'resolved-user@openagents.com', 'user_existing', 'https://example.com/e.png', 'existing-user')",
    )
    workos_users = {
        "user_legacy_1": {
            "email": "Resolved-User@OpenAgents.com",
            "first_name": "Resolved",
            "last_name": "User",
        }
    }
    with SimulatedWorkos(API_KEY, workos_users) as workos:
        options = {"resolve_workos_users": True, "workos_api_key": API_KEY, "workos_api_base": workos.url}
        first = imported(ledger, tmp_path, laravel_url, **options)
        second = replay_into(ledger, laravel_url, **options)
        # replace rewrites every record, users included: the WorkOS answer comes from the ledger
        third = replay_into(ledger, laravel_url, settings=ReplaySettings(policy="replace"), **options)
        assert workos.requests == [("/user_management/users/user_legacy_1", 200)]
    assert (
        third.stats["written"] == first.stats["written"]
        and sink_counters(third)["users_resolved_via_workos"] == 1
    )
    [(email,)] = rows(laravel_url, "SELECT email FROM users WHERE workos_id = 'user_legacy_1'")
    assert email.startswith("migrated+") and email.endswith("@openagents.local")
    assert sink_counters(first)["users_email_conflicts"] == 1
    assert sink_counters(first)["users_resolved_via_workos"] == 1
    assert second.stats["written"] == 0
    found = counts(laravel_url)
    assert rows(laravel_url, "SELECT count(*) FROM users WHERE workos_id = 'user_legacy_1'") == [(1,)]
    assert {name: found[name] for name in ("autopilots", "autopilot_profiles", "autopilot_policies", "threads",
                                           "runs", "messages", "run_events")} == {
        "autopilots": 1, "autopilot_profiles": 1, "autopilot_policies": 1, "threads": 1, "runs": 1,
        "messages": 2, "run_events": 1,
    }  # fmt: skip


def test_workos_resolution_fills_email_name_avatar(ledger, tmp_path, laravel_url):
    workos_users = {
        "user_legacy_1": {"email": "resolved-user@openagents.com", "first_name": "Resolved", "last_name": "User",
                          "profile_picture_url": "https://example.com/avatar.png"},
    }  # fmt: skip
    with SimulatedWorkos(API_KEY, workos_users) as workos:
        result = imported(
            ledger,
            tmp_path,
            laravel_url,
            resolve_workos_users=True,
            workos_api_key=API_KEY,
            workos_api_base=workos.url,
        )
    assert rows(laravel_url, "SELECT email, name, avatar FROM users WHERE workos_id = 'user_legacy_1'") == [
        ("resolved-user@openagents.com", "Resolved User", "https://example.com/avatar.png")
    ]
    assert (
        sink_counters(result)["users_resolved_via_workos"],
        sink_counters(result).get("users_unresolved_placeholder", 0),
    ) == (1, 0)
    assert API_KEY not in str(result.stats) and API_KEY not in (tmp_path / "ledger.db").read_bytes().decode(
        "latin-1"
    )


def test_workos_bad_key_fails_without_leaking_it(ledger, tmp_path):
    url = f"sqlite:///{tmp_path / 'app.db'}"
    with SimulatedWorkos("the-right-key-000", {}) as workos, pytest.raises(ChatledgerError) as failure:
        imported(ledger, tmp_path, url, create_tables=True, resolve_workos_users=True,
                 workos_api_key=API_KEY, workos_api_base=workos.url)  # fmt: skip
    assert "401" in str(failure.value) and API_KEY not in str(failure.value)


def test_dry_run_leaves_every_table_empty(ledger, tmp_path, laravel_url):
    path = write_export(tmp_path / "export.zip", data.original())
    extract_export(ledger, path)
    planned = replay_into(ledger, laravel_url, settings=ReplaySettings(dry_run=True))
    assert planned.run_id is None and planned.stats["plan"]["user → users"]["insert"] == 1
    assert set(counts(laravel_url).values()) == {0}


def test_rollback_restores_the_target(ledger, tmp_path, laravel_url):
    execute(
        laravel_url,
        "INSERT INTO users (name, email, workos_id, avatar) VALUES ('', 'bad', 'user_legacy_1', '')",
    )
    before = rows(laravel_url, "SELECT id, name, email, avatar FROM users")
    result = imported(ledger, tmp_path, laravel_url)
    assert rows(laravel_url, "SELECT name, email FROM users WHERE workos_id = 'user_legacy_1'")[0][
        1
    ].endswith("@openagents.local")  # an invalid address is upgraded to a placeholder
    undone = rollback(ledger, sink(ledger, laravel_url), result.run_id)
    assert undone.status == "succeeded"
    assert rows(laravel_url, "SELECT id, name, email, avatar FROM users") == before
    assert {name: count for name, count in counts(laravel_url).items() if name != "users"} == dict.fromkeys(
        [name for name in counts(laravel_url) if name != "users"], 0
    )


def test_rich_export_keeps_what_the_original_lost(ledger, tmp_path, laravel_url):
    result = imported(ledger, tmp_path, laravel_url, data.rich())
    assert result.status == "succeeded"
    # millisecond order: ORDER BY created_at gives the real order on every dialect
    ordered = rows(laravel_url, "SELECT id FROM messages WHERE thread_id = :t ORDER BY created_at", t=data.T1)
    assert [row[0] for row in ordered] == [data.M1, data.M2, data.M3, data.M4]
    ordered = rows(laravel_url, "SELECT id FROM agent_conversation_messages WHERE conversation_id = :t ORDER BY created_at",
                   t=data.T1)  # fmt: skip
    assert [row[0] for row in ordered] == [data.M1, data.M2, data.M3, data.M4]
    # tool calls and results where agent_conversation_messages can hold them
    [(calls, results, usage)] = fetch(
        laravel_url, "agent_conversation_messages", "tool_calls", "tool_results", "usage", id=data.M4
    )
    assert calls == '[{"arguments":{"q":"report"},"id":"call_1","name":"search"}]'
    assert results == '[{"arguments":{"q":"report"},"id":"call_1","name":"search","result":{"hits":2}}]'
    assert usage == '{"inputTokens":12,"outputTokens":5}'
    # a run id that is not a UUID is mapped, not dropped; its message links to it
    [(run_id, status)] = rows(laravel_url, "SELECT id, status FROM runs WHERE id <> :r", r=data.R1)
    assert status == "running" and run_id != data.R2_LEGACY and len(run_id) == 36
    assert rows(laravel_url, "SELECT run_id FROM messages WHERE id = :m", m=data.M4) == [(run_id,)]
    assert rows(laravel_url, "SELECT count(*) FROM run_events WHERE run_id = :r", r=run_id) == [(1,)]
    # two identical receipts in the same second stay two rows
    assert rows(laravel_url, "SELECT count(*) FROM run_events WHERE run_id = :r", r=data.R1) == [(2,)]
    # strings fit their columns on every dialect
    [(voice,)] = rows(laravel_url, "SELECT autopilot_voice FROM autopilot_profiles p JOIN autopilots a "
                                   "ON a.id = p.autopilot_id WHERE a.display_name = 'Alice'")  # fmt: skip
    assert voice == data.LONG_VIBE[:64]
    [(title,)] = rows(laravel_url, "SELECT title FROM threads WHERE id = :t", t=data.T1)
    assert (
        title.startswith("Find the report from last week xxx") and title.endswith("…") and len(title) == 121
    )
    # bob has no users row: a user is made for him, with his own autopilot from his blueprint
    assert rows(laravel_url, "SELECT count(*) FROM users WHERE workos_id = 'user_bob'") == [(1,)]
    assert sorted(rows(laravel_url, "SELECT display_name FROM autopilots")) == [("Alice",), ("Bob",)]
    counters = sink_counters(result)
    assert {name: counters.get(name) for name in (
        "messages_millisecond_order_kept", "tool_calls_kept", "tool_results_kept", "runs_id_mapped",
        "events_run_id_mapped", "events_same_second_kept", "truncated_autopilot_profiles_autopilot_voice",
        "threads_skipped_ownerless", "messages_skipped_ownerless", "blueprints_skipped_ownerless",
    )} == {
        "messages_millisecond_order_kept": 2, "tool_calls_kept": 1, "tool_results_kept": 1, "runs_id_mapped": 1,
        "events_run_id_mapped": 1, "events_same_second_kept": 1, "truncated_autopilot_profiles_autopilot_voice": 1,
        "threads_skipped_ownerless": 1, "messages_skipped_ownerless": 2, "blueprints_skipped_ownerless": 1,
    }  # fmt: skip
    assert replay_into(ledger, laravel_url).stats["written"] == 0
    assert verify(ledger, sink(ledger, laravel_url), [STREAM]).matches


def test_verify_sees_an_edit_and_resync_repairs_it(ledger, tmp_path, laravel_url):
    imported(ledger, tmp_path, laravel_url, data.rich())
    execute(laravel_url, "UPDATE messages SET content = 'edited by hand' WHERE id = :m", m=data.M3)
    checked = verify(ledger, sink(ledger, laravel_url), [STREAM])
    assert checked.counts["drifted"] == 1 and checked.samples["drifted"] == [
        f"{STREAM} conversation:{data.T1}"
    ]
    repair(ledger, sink(ledger, laravel_url), "resync", [STREAM])
    assert rows(laravel_url, "SELECT content FROM messages WHERE id = :m", m=data.M3) == [
        ("And the summary?",)
    ]
    assert verify(ledger, sink(ledger, laravel_url), [STREAM]).matches


def test_replace_truncate_empties_only_the_chat_tables(ledger, tmp_path, laravel_url):
    imported(ledger, tmp_path, laravel_url, data.rich())
    execute(laravel_url, "INSERT INTO threads (id, user_id, title) VALUES ('foreign-thread', 99, 'not ours')")
    identity = {
        name: counts(laravel_url)[name]
        for name in ("users", "autopilots", "autopilot_profiles", "autopilot_policies")
    }
    replaced = replay_into(ledger, laravel_url, settings=ReplaySettings(policy="replace", truncate=True))
    assert replaced.status == "succeeded"
    assert rows(laravel_url, "SELECT count(*) FROM threads WHERE id = 'foreign-thread'") == [(0,)]
    after = counts(laravel_url)
    assert {name: after[name] for name in identity} == identity
    assert (after["threads"], after["messages"], after["run_events"]) == (2, 5, 3)
    assert verify(ledger, sink(ledger, laravel_url), [STREAM]).matches


#: what the PHP importer wrote for data.original()'s receipt: json_encode key order and escapes
PHP_RECEIPT = (
    '{"source": "khala_receipt", "kind": "tool", "receiptId": null, "signatureId": null, '
    '"compiledId": null, "json": {"tool": "echo", "ok": true}}'
)


def earlier_import(url: str, receipts: int) -> list[int]:
    """What the PHP importer left for data.original(): its user, a v1 thread and
    ``receipts`` copies of the receipt row (second precision); their row ids."""
    execute(
        url,
        "INSERT INTO users (name, email, workos_id, avatar) VALUES ('x', 'x@example.com', 'user_legacy_1', 'a')",
    )
    [(user_id,)] = rows(url, "SELECT id FROM users")
    execute(
        url, "INSERT INTO threads (id, user_id, title) VALUES (:t, :u, 'v1 title')", t=data.THREAD, u=user_id
    )
    for _ in range(receipts):
        execute(
            url,
            "INSERT INTO run_events (thread_id, run_id, user_id, actor_type, type, payload, created_at) "
            "VALUES (:t, :r, :u, 'user', 'legacy_receipt_tool', :p, :at)",
            t=data.THREAD, r=data.RUN, u=user_id, at=second_of(data.T0 + 20_500), p=PHP_RECEIPT,
        )  # fmt: skip
    return [row[0] for row in rows(url, "SELECT id FROM run_events ORDER BY id")]


def test_run_events_adopt_rows_an_earlier_import_wrote(ledger, tmp_path, laravel_url):
    path = write_export(tmp_path / "export.zip", data.original())
    extract_export(ledger, path)
    earlier_import(laravel_url, 1)
    result = replay_into(ledger, laravel_url)
    counters = sink_counters(result)
    assert counters["events_deduplicated"] == 1
    assert rows(laravel_url, "SELECT count(*) FROM run_events") == [(1,)]
    [(autopilot_id,)] = rows(laravel_url, "SELECT id FROM autopilots")
    assert rows(laravel_url, "SELECT autopilot_id, actor_type FROM run_events") == [
        (autopilot_id, "autopilot")
    ]
    assert counters["threads_linked_backfilled"] == 1  # the v1 thread had no autopilot


@pytest.mark.parametrize("foreign", [1, 2, 3])
def test_identical_receipts_in_one_batch_adopt_each_row_once(ledger, tmp_path, laravel_url, foreign):
    """Two identical receipts in the same second, written in one batch: each adopts its
    own row of the earlier import while there is one, the other is inserted; a row
    nobody adopts stays someone else's."""
    tables = data.original()
    tables["receipts"].append({**tables["receipts"][0], "createdAtMs": data.T0 + 20_900})
    extract_export(ledger, write_export(tmp_path / "export.zip", tables))
    theirs = earlier_import(laravel_url, foreign)
    result = replay_into(ledger, laravel_url)
    assert result.status == "succeeded"
    assert sink_counters(result)["events_deduplicated"] == min(2, foreign)
    assert rows(laravel_url, "SELECT count(*) FROM run_events") == [(max(2, foreign),)]
    held = [ref["run_event"] for ref in held_refs(ledger, "run_event")]
    # the first rows of the earlier import, each by one event; a third is nobody's
    assert len(set(held)) == 2 and set(held) & set(theirs) == set(theirs[: min(2, foreign)])
    assert replay_into(ledger, laravel_url).stats["written"] == 0
    assert verify(ledger, sink(ledger, laravel_url), [STREAM]).matches


def test_source_deletes_propagate(ledger, tmp_path, laravel_url):
    imported(ledger, tmp_path, laravel_url, data.rich())
    smaller = data.rich()
    smaller["messages"] = [m for m in smaller["messages"] if m["messageId"] != data.M3]
    smaller["threads"] = [t for t in smaller["threads"] if t["threadId"] != data.T2]
    extract_export(ledger, write_export(tmp_path / "export2.zip", smaller))
    kept = replay_into(ledger, laravel_url)
    assert rows(laravel_url, "SELECT count(*) FROM messages WHERE id = :m", m=data.M3) == [
        (1,)
    ]  # merge keeps
    assert kept.stats["written"] > 0
    gone = replay_into(ledger, laravel_url, settings=ReplaySettings(propagate_deletes=True))
    assert gone.status == "succeeded"
    assert rows(laravel_url, "SELECT count(*) FROM messages WHERE id = :m", m=data.M3) == [(0,)]
    assert rows(laravel_url, "SELECT count(*) FROM threads WHERE id = :t", t=data.T2) == [(0,)]
    assert verify(ledger, sink(ledger, laravel_url), [STREAM]).matches


def test_skip_blueprints_gives_default_autopilots(ledger, tmp_path, laravel_url):
    result = imported(ledger, tmp_path, laravel_url, skip_blueprints=True)
    assert sink_counters(result).get("blueprints_mapped", 0) == 0
    [(display, tagline)] = rows(laravel_url, "SELECT display_name, tagline FROM autopilots")
    assert tagline is None and display.startswith("migrated+")
    assert rows(laravel_url, "SELECT data_policy FROM autopilot_policies")[0][0] in (
        '{"continuity":null,"rules":null,"source":"khala_blueprint"}',
        {"continuity": None, "rules": None, "source": "khala_blueprint"},
    )


def test_missing_tables_are_named(ledger, tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    extract_export(ledger, write_export(tmp_path / "export.zip", data.original()))
    with pytest.raises(
        ConfigError, match="agent_conversation_messages, agent_conversations, autopilot_policies"
    ):
        replay_into(ledger, url)


def test_every_string_fits_its_column(ledger, tmp_path, laravel_url):
    tables = data.original()
    long_thread = "thread-" + "t" * 40  # longer than the varchar(36) id columns
    tables["threads"][0]["threadId"] = long_thread
    for row in tables["messages"] + tables["runs"] + tables["receipts"] + tables["blueprints"]:
        row["threadId"] = long_thread
    tables["messages"][1]["text"] = "é" * 40_000 + "\x00end"  # 80 KB: more than MySQL's text holds
    tables["blueprints"][0]["blueprint"]["docs"]["user"]["addressAs"] = "A" * 200
    result = imported(ledger, tmp_path, laravel_url, tables)
    assert result.status == "succeeded"
    [(thread_id, title)] = rows(laravel_url, "SELECT id, title FROM threads")
    assert len(thread_id) == 36 and title == "Summarize my previous conversation."
    [(content,)] = fetch(laravel_url, "messages", "content", id=data.ASSISTANT_MESSAGE)
    [(display,)] = rows(laravel_url, "SELECT owner_display_name FROM autopilot_profiles")
    assert display == "A" * 120
    counters = sink_counters(result)
    assert counters["truncated_autopilot_profiles_owner_display_name"] == 1
    if laravel_url.startswith("mysql"):
        assert len(content.encode()) <= 65_535 and content == "é" * 32_767
        assert (
            counters["truncated_messages_content"]
            == counters["truncated_agent_conversation_messages_content"]
            == 1
        )
    else:
        assert content.startswith("é" * 40_000) and "truncated_messages_content" not in counters
        assert content.endswith("\ufffdend" if laravel_url.startswith("postgresql") else "\x00end")
    assert verify(ledger, sink(ledger, laravel_url), [STREAM]).matches


@pytest.mark.parametrize("dialect, precision", [("postgres", 6), ("mariadb", 3)])
def test_fractional_columns_keep_exact_milliseconds(ledger, tmp_path, request, dialect, precision):
    url = create_tables(database_url(request, tmp_path, dialect), precision)
    result = imported(ledger, tmp_path, url, data.rich())
    stored = rows(
        url, "SELECT id, created_at FROM messages WHERE thread_id = :t ORDER BY created_at", t=data.T1
    )
    exact = [data.SAME_MS, data.SAME_MS + 1, data.SAME_MS + 800, data.SAME_MS + 1500]  # m2 one ms after m1
    assert [(row[0], millis(row[1])) for row in stored] == list(
        zip([data.M1, data.M2, data.M3, data.M4], map(int, exact))
    )
    assert sink_counters(result)["messages_created_at_nudged"] == 1
    assert verify(ledger, sink(ledger, url), [STREAM]).matches


def test_a_run_event_row_written_again_is_remembered(ledger, tmp_path, laravel_url):
    imported(ledger, tmp_path, laravel_url, data.rich())
    [(first,)] = rows(laravel_url, "SELECT min(id) FROM run_events")
    execute(
        laravel_url, "DELETE FROM run_events WHERE id = :id", id=first
    )  # not the last id: SQLite reuses that
    for version in ("edited once", "edited twice"):  # each export rewrites thread T1 (m3 changed)
        tables = data.rich()
        next(m for m in tables["messages"] if m["messageId"] == data.M3)["text"] = version
        extract_export(ledger, write_export(tmp_path / f"{version}.zip", tables))
        assert replay_into(ledger, laravel_url).status == "succeeded"
        assert rows(laravel_url, "SELECT count(*) FROM run_events") == [(3,)]  # back, and never twice
    assert verify(ledger, sink(ledger, laravel_url), [STREAM]).matches


def test_run_events_without_returning_are_inserted_one_by_one(ledger, tmp_path, monkeypatch):
    """A server without INSERT … RETURNING (MySQL) gets the new rows one at a time; each
    event still holds its own row."""
    monkeypatch.setattr(SQLiteDialect, "insert_returning", False)
    url = create_tables(f"sqlite:///{tmp_path / 'app.db'}")
    assert imported(ledger, tmp_path, url, data.rich()).status == "succeeded"
    stored = [row[0] for row in rows(url, "SELECT id FROM run_events ORDER BY id")]
    assert len(stored) == 3
    assert sorted(ref["run_event"] for ref in held_refs(ledger, "run_event")) == stored
    assert verify(ledger, sink(ledger, url), [STREAM]).matches


def test_adoption_compares_payloads_as_jsonb_on_postgres_and_canonically_elsewhere():
    ours = canonical_text({"json": {"n": 1}, "ok": True})
    assert jsonb_equal('{"ok": true, "json": {"n": 1.0}}', ours)  # jsonb: numbers by value
    assert not canonical_equal('{"ok": true, "json": {"n": 1.0}}', ours)
    assert canonical_equal('{"ok": true,  "json": {"n": 1}}', ours)
    assert not jsonb_equal('{"ok": 1, "json": {"n": 1}}', ours)  # a boolean is not a number
    assert not jsonb_equal('{"ok": true, "json": {"n": 1}, "extra": null}', ours)
    assert not jsonb_equal(None, ours) and not canonical_equal(None, ours)
