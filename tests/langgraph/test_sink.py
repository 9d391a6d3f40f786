"""The ``langgraph`` sink: a real source server migrated into a real target server
(both langgraph dev, inmem). Every assertion reads the target server back."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ledger.replay import ReplaySettings, replay
from ledger.replay.rollback import rollback
from ledger.replay.verify import verify
from ledger.schema import rejects
from sinks.langgraph.shape import values_shape
from tests.langgraph import harness
from tests.langgraph.deployment import Deployment, chain, history, human, run_round

BASE = '{"suite": "base"}'


@pytest.fixture
def ledger(tmp_path):
    opened = harness.open_ledger(tmp_path)
    yield opened
    opened.close()


def migrate(ledger, deployment, target, **sink_options):
    harness.run_extract(ledger, url=deployment.url, metadata_filter=BASE, page_size=40)
    return replay(ledger, harness.lg_sink(ledger, target.url, **sink_options), [harness.STREAM])


def target_client(target):
    return Deployment(target.url).client()


def test_threads_arrive_with_their_history(ledger, deployment, target):
    result = migrate(ledger, deployment, target, legacy_terminal_node="agent")
    source, there = deployment.client(), target_client(target)
    landed = {thread["thread_id"] for thread in there.threads.search(limit=1000)}
    assert landed == {tid for name, tid in deployment.threads.items() if name != "echo"}
    for name, thread_id in deployment.threads.items():
        if name in ("echo", "lite"):
            continue
        assert chain(there, thread_id) == chain(source, thread_id), name  # count, source kind, step, next
        mine, theirs = source.threads.get(thread_id), there.threads.get(thread_id)
        assert values_shape(theirs["values"]) == values_shape(mine["values"]), name  # same messages, same ids
        kept = {k: v for k, v in mine["metadata"].items() if k != "assistant_id"}
        assert {k: v for k, v in theirs["metadata"].items() if k != "chatledger"} == kept
        assert theirs["metadata"]["chatledger"] == {"stream": harness.STREAM, "key": f"thread:{thread_id}"}
    # the thread of a graph the target lacks: rejected with the reason, nothing left behind
    with ledger.read() as conn:
        reasons = [
            row.reason for row in conn.execute(select(rejects.c.reason).where(rejects.c.target.is_not(None)))
        ]
    assert any("graph 'echo' is not deployed on the target" in reason for reason in reasons)
    assert result.status == "with-rejects"
    # the lite thread: supersteps refused (no tools node there), written by the fallback
    lite = deployment.threads["lite"]
    assert result.stats["sink"]["fallbacks"] == 1
    assert [(kind, following) for kind, _, following in chain(there, lite)] == [("update", [])]
    assert values_shape(there.threads.get(lite)["values"]) == values_shape(source.threads.get(lite)["values"])
    checked = verify(
        ledger, harness.lg_sink(ledger, target.url, legacy_terminal_node="agent"), [harness.STREAM]
    )
    assert (
        checked.consistent and checked.counts["ok"] == len(deployment.threads) - 1
    )  # the echo thread is pending


def test_second_run_writes_nothing_and_runs_continue(ledger, deployment, target):
    migrate(ledger, deployment, target, legacy_terminal_node="agent")
    again = migrate(ledger, deployment, target, legacy_terminal_node="agent")
    assert again.stats["written"] == 0
    assert "threads_created" not in again.stats.get("sink", {})
    there = target_client(target)
    tools = deployment.threads["tools"]
    before = len(there.threads.get(tools)["values"]["messages"])
    run_round(there, [(tools, "agent", "weather Oslo"), (deployment.threads["lite"], "lite", "more")])
    after = there.threads.get(tools)["values"]["messages"]
    assert len(after) == before + 4 and after[-1]["content"] == "Summary: sunny in Oslo ☀"
    assert there.threads.get(tools)["status"] == "idle"


def test_a_thread_that_gained_checkpoints_is_brought_up_to_date(ledger, deployment, target):
    source, there = deployment.client(), target_client(target)
    thread_id = source.threads.create(metadata={"suite": "grows", "owner": "erin"})["thread_id"]
    try:
        run_round(source, [(thread_id, "agent", "weather Lima")])
        stream = dict(url=deployment.url, metadata_filter='{"suite": "grows"}')
        harness.run_extract(ledger, **stream)
        replay(ledger, harness.lg_sink(ledger, target.url), [harness.STREAM])
        assert chain(there, thread_id) == chain(source, thread_id)
        run_round(source, [(thread_id, "agent", "and again")])
        harness.run_extract(ledger, **stream)
        update = replay(ledger, harness.lg_sink(ledger, target.url), [harness.STREAM])
        assert update.stats["sink"]["threads_recreated"] == 1
        assert chain(there, thread_id) == chain(source, thread_id)
        assert len(history(there, thread_id)) == len(history(source, thread_id)) == 8
        assert verify(ledger, harness.lg_sink(ledger, target.url), [harness.STREAM]).matches
        # continued on the target, then changed at the source: not overwritten
        run_round(there, [(thread_id, "agent", "on the target")])
        run_round(source, [(thread_id, "agent", "at the source")])
        harness.run_extract(ledger, **stream)
        held = replay(ledger, harness.lg_sink(ledger, target.url), [harness.STREAM])
        assert held.stats["sink"]["skipped_changed_on_target"] == 1
        assert there.threads.get(thread_id)["values"]["messages"][-1]["content"] == "echo: on the target"
    finally:
        source.threads.delete(thread_id)


def test_verify_finds_a_thread_deleted_by_hand(ledger, deployment, target):
    migrate(ledger, deployment, target, legacy_terminal_node="agent")
    sink = harness.lg_sink(ledger, target.url, legacy_terminal_node="agent")
    assert verify(ledger, sink, [harness.STREAM]).consistent
    target_client(target).threads.delete(deployment.threads["small-1"])
    broken = verify(
        ledger, harness.lg_sink(ledger, target.url, legacy_terminal_node="agent"), [harness.STREAM]
    )
    assert not broken.consistent and broken.counts["missing"] == 1


def test_rollback_deletes_the_threads_a_run_created(ledger, deployment, target):
    result = migrate(ledger, deployment, target, legacy_terminal_node="agent")
    assert target_client(target).threads.count() == len(deployment.threads) - 1
    rollback(ledger, harness.lg_sink(ledger, target.url), result.run_id)
    assert target_client(target).threads.count() == 0


def test_a_thread_not_ours_is_left_alone(ledger, deployment, target):
    there = target_client(target)
    taken = deployment.threads["small-2"]
    there.threads.create(thread_id=taken, metadata={"someone": "else"})
    result = migrate(ledger, deployment, target, legacy_terminal_node="agent")
    assert result.stats["sink"]["skipped_not_ours"] == 1
    assert there.threads.get(taken)["metadata"] == {"someone": "else"}
    replace = replay(
        ledger,
        harness.lg_sink(ledger, target.url, legacy_terminal_node="agent"),
        [harness.STREAM],
        settings=ReplaySettings(policy="replace"),
    )
    assert replace.stats["sink"]["threads_recreated"] >= 1
    assert chain(there, taken) == chain(deployment.client(), taken)


def test_half_created_thread_is_replaced(ledger, deployment, target):
    """A thread left empty by an earlier failed import (values None, our marker) is deleted
    and created again with its history."""
    there = target_client(target)
    thread_id = deployment.threads["edited"]
    marker = {"chatledger": {"stream": harness.STREAM, "key": f"thread:{thread_id}"}}
    there.threads.create(thread_id=thread_id, metadata=marker, graph_id="agent")
    migrate(ledger, deployment, target)
    assert chain(there, thread_id) == chain(deployment.client(), thread_id)
    assert there.threads.get(thread_id)["values"]["messages"][-1]["content"] == "echo: second"


def test_same_run_twice_over_human_input(ledger, deployment, target):
    """Runs of the imported thread take the same input the source got."""
    migrate(ledger, deployment, target)
    there = target_client(target)
    thread_id = deployment.threads["small-0"]
    run = there.runs.wait(thread_id, "agent", input=human("hello again"))
    assert run["messages"][-1]["content"] == "echo: hello again"


def test_conversations_of_another_platform_become_threads(ledger, target):
    """A synthetic (non-LangGraph) stream: each conversation becomes a thread of the
    configured graph holding its messages, written in one update_state."""
    from ledger.extract import ExtractSettings, extract
    from ledger.source import SourceContext
    from sources.synthetic import SyntheticOptions, SyntheticSource

    source = SyntheticSource(
        SyntheticOptions(users=2, conversations_per_user=2, turns=2, attachment_rate=0.0),
        SourceContext("chats", ledger.blobs),
    )
    extract(ledger, source, settings=ExtractSettings(batch_size=100))
    sink = harness.lg_sink(ledger, target.url, graph_id="agent", legacy_terminal_node="agent")
    result = replay(ledger, sink, ["chats"])
    assert result.stats["sink"]["threads_from_messages"] == 4
    there = target_client(target)
    threads = there.threads.search(limit=100)
    assert len(threads) == 4
    for thread in threads:
        messages = there.threads.get(thread["thread_id"])["values"]["messages"]
        assert messages and {m["type"] for m in messages} <= {"human", "ai", "system", "tool"}
        assert chain(there, thread["thread_id"])[-1][2] == []
    assert verify(
        ledger, harness.lg_sink(ledger, target.url, graph_id="agent", legacy_terminal_node="agent"), ["chats"]
    ).matches


def test_rollback_of_an_update_restores_the_previous_thread(ledger, deployment, target):
    source, there = deployment.client(), target_client(target)
    thread_id = source.threads.create(metadata={"suite": "rollback", "owner": "fay"})["thread_id"]
    try:
        stream = dict(url=deployment.url, metadata_filter='{"suite": "rollback"}')
        run_round(source, [(thread_id, "agent", "weather Bern")])
        harness.run_extract(ledger, **stream)
        replay(ledger, harness.lg_sink(ledger, target.url), [harness.STREAM])
        before = chain(there, thread_id)
        messages_before = values_shape(there.threads.get(thread_id)["values"])
        run_round(source, [(thread_id, "agent", "more")])
        harness.run_extract(ledger, **stream)
        update = replay(ledger, harness.lg_sink(ledger, target.url), [harness.STREAM])
        assert len(chain(there, thread_id)) == len(before) + 3
        rollback(ledger, harness.lg_sink(ledger, target.url), update.run_id)
        assert chain(there, thread_id) == before
        assert values_shape(there.threads.get(thread_id)["values"]) == messages_before
    finally:
        source.threads.delete(thread_id)


def test_target_5xx_are_retried_and_4xx_are_not(ledger, deployment, target):
    from tests.langgraph.proxy import FaultProxy

    counts = {"creates": 0}

    def flaky_creates(method, path, body):
        if method == "POST" and path == "/threads" and body.get("supersteps"):
            counts["creates"] += 1
            if counts["creates"] % 2 == 1:
                return 502  # each thread's first create attempt
        return None

    with FaultProxy(target.url, flaky_creates) as proxy:
        result = migrate(ledger, deployment, proxy, legacy_terminal_node="agent")
    assert result.stats["sink"]["http_retries"] >= 6
    there = target_client(target)
    for name in ("long", "tools", "edited"):
        assert chain(there, deployment.threads[name]) == chain(deployment.client(), deployment.threads[name])

    def forbidden(method, path, body):
        return 403 if method == "POST" and path == "/threads" else None

    source = deployment.client()
    thread_id = source.threads.create(metadata={"suite": "forbidden"})["thread_id"]
    try:
        run_round(source, [(thread_id, "agent", "hi")])
        harness.run_extract(ledger, "denied", url=deployment.url, metadata_filter='{"suite": "forbidden"}')
        with FaultProxy(target.url, forbidden) as proxy:
            sink = harness.lg_sink(ledger, proxy.url)
            sink.context.source_types["denied"] = "langgraph"
            denied = replay(ledger, sink, ["denied"])
        assert denied.status == "with-rejects"
        assert len(proxy.answered("/threads", 403)) == 1  # tried once, never again
    finally:
        source.threads.delete(thread_id)


def test_dry_run_plans_per_thread_and_writes_nothing(ledger, deployment, target):
    there = target_client(target)
    there.threads.create(thread_id=deployment.threads["small-1"], metadata={"someone": "else"})
    harness.run_extract(ledger, url=deployment.url, metadata_filter=BASE)
    plan = replay(
        ledger, harness.lg_sink(ledger, target.url), [harness.STREAM], settings=ReplaySettings(dry_run=True)
    )
    threads = plan.stats["preview"]["threads"]
    assert threads["graph_missing"] == [deployment.threads["echo"]]
    assert threads["skip_not_ours"] == [deployment.threads["small-1"]]
    assert len(threads["create"]) == len(deployment.threads) - 2
    assert there.threads.count() == 1
