"""The ``langgraph`` source against a real LangGraph API server (langgraph dev, inmem):
records read back from the ledger, compared with what the server itself returns."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ledger.options import build_options
from ledger.schema import rejects
from sources.langgraph.deployment import Deployment
from sources.langgraph.options import LangGraphOptions
from tests.langgraph import harness
from tests.langgraph.deployment import history
from tests.langgraph.proxy import FaultProxy


@pytest.fixture
def ledger(tmp_path):
    opened = harness.open_ledger(tmp_path)
    yield opened
    opened.close()


def base(ledger, url, **options):
    """Extract the base threads only (other tests add threads to the source)."""
    return harness.run_extract(ledger, url=url, metadata_filter='{"suite": "base"}', **options)


def test_threads_checkpoints_and_messages(ledger, deployment):
    result = base(ledger, deployment.url, page_size=40)  # the long thread is read in 3 pages
    assert result.status == "succeeded"
    found = harness.records(ledger)
    client = deployment.client()
    conversations = harness.of_kind(found, "conversation")
    assert set(conversations) == {f"thread:{tid}" for tid in deployment.threads.values()}
    for name, thread_id in deployment.threads.items():
        states = history(client, thread_id)
        checkpoints = {
            k: d
            for k, d in harness.of_kind(found, "checkpoint").items()
            if k.startswith(f"checkpoint:{thread_id}/")
        }
        assert sorted(d["data"]["checkpoint_id"] for d in checkpoints.values()) == sorted(
            s["checkpoint_id"] for s in states
        ), name
        by_position = sorted(checkpoints.values(), key=lambda d: d["data"]["position"])
        assert [d["data"]["checkpoint_id"] for d in by_position] == [s["checkpoint_id"] for s in states]
        assert [d["data"]["next"] for d in by_position] == [s["next"] for s in states]
        head = conversations[f"thread:{thread_id}"]["data"]
        assert head["checkpoints"] == len(states) and head["history_complete"] is True
    tools = deployment.threads["tools"]
    head = conversations[f"thread:{tools}"]["data"]
    assert head["owner"] == "user:bob" and head["title"] == "hi" and head["graph_id"] == "agent"
    messages = sorted(
        (
            d["data"]
            for k, d in found.items()
            if d["kind"] == "message" and d["data"]["conversation"] == f"thread:{tools}"
        ),
        key=lambda data: data["created_at"],
    )
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "tool", "assistant", "tool", "assistant", "user", "assistant", "assistant"]  # fmt: skip
    assert messages[3]["parts"] == [
        {"type": "tool_call", "id": "call_3", "name": "get_weather", "args": {"city": "Paris"}}
    ]
    assert messages[4]["parts"][0] | {"id": None} == {"type": "tool_result", "id": None, "name": "get_weather",
                                                      "result": "sunny in Paris ☀", "is_error": False}  # fmt: skip
    assert messages[1]["usage"] == {"input_tokens": 1, "output_tokens": 3, "total_tokens": 4}
    assert messages[1]["model"] == "fake-model"
    assert head["active_leaf"].endswith(messages[-1]["metadata"]["id"])
    assert conversations[f"thread:{deployment.threads['long']}"]["data"]["title"] == "Weather tour"
    empty = conversations[f"thread:{deployment.threads['empty']}"]["data"]
    assert empty["checkpoints"] == 0 and empty["active_leaf"] is None


def test_second_extract_reads_nothing(ledger, deployment):
    base(ledger, deployment.url)
    again = base(ledger, deployment.url)
    assert again.stats["events"] == 0
    assert again.stats["scopes"]["unchanged"] == len(deployment.threads)


def test_selection_and_partial_history(ledger, deployment):
    result = harness.run_extract(
        ledger, url=deployment.url, metadata_filter='{"team": "blue", "suite": "base"}'
    )
    conversations = harness.of_kind(harness.records(ledger), "conversation")
    assert set(conversations) == {f"thread:{deployment.threads[n]}" for n in ("tools", "edited")}
    assert result.stats["source"]["threads_in_scope"] == 2  # threads.count with the filter

    harness.run_extract(
        ledger, "one", url=deployment.url, thread_ids=[deployment.threads["long"]], history_limit=5
    )
    found = harness.records(ledger, "one")
    assert len(harness.of_kind(found, "checkpoint")) == 5
    head = harness.of_kind(found, "conversation")[f"thread:{deployment.threads['long']}"]["data"]
    assert head["history_complete"] is False and head["checkpoints"] == 5

    harness.run_extract(ledger, "all", url=deployment.url, metadata_filter='{"suite": "base"}')
    before = len(harness.records(ledger, "all"))
    trial = harness.run_extract(ledger, "all", url=deployment.url, limit=2, full=True)
    assert trial.stats["kinds"].get("conversation", {}).get("deleted", 0) == 0
    assert len(harness.records(ledger, "all")) == before  # a partial listing never deletes


def test_a_missing_thread_is_rejected(ledger, deployment):
    result = harness.run_extract(
        ledger, url=deployment.url, thread_ids=["00000000-0000-4000-8000-000000000000"]
    )
    assert result.stats["rejects"] == 1
    with ledger.read() as conn:
        reason = conn.execute(select(rejects.c.reason)).scalar_one()
    assert "404" in reason


def test_transient_errors_on_history_pages_are_retried(ledger, tmp_path, deployment):
    """Every third history page (first attempt) answers 503: the export is still complete."""
    seen = {"pages": 0}

    def every_third_page(method, path, body):
        if path.endswith("/history") and body.get("before"):
            seen["pages"] += 1
            if seen["pages"] % 3 == 1:
                return 503
        return None

    with FaultProxy(deployment.url, every_third_page) as proxy:
        result = base(ledger, proxy.url, page_size=10)
    assert result.status == "succeeded" and result.stats["rejects"] == 0
    assert proxy.answered("/history", 503)  # faults were injected …
    reference = harness.open_ledger(tmp_path / "direct")
    base(reference, deployment.url, page_size=10)
    assert harness.records(ledger) == harness.records(reference)  # … and nothing was lost


def test_client_errors_are_not_retried(ledger, deployment):
    long = deployment.threads["long"]

    def refuse_long(method, path, body):
        return 403 if path == f"/threads/{long}/history" else None

    with FaultProxy(deployment.url, refuse_long) as proxy:
        result = base(ledger, proxy.url)
    assert len(proxy.answered(f"/threads/{long}/history")) == 1  # asked once, never again
    assert result.stats["rejects"] == 1
    with ledger.read() as conn:
        row = conn.execute(select(rejects.c.location, rejects.c.reason)).one()
    assert long in row.location and "403" in row.reason and "could not be read completely" in row.reason
    assert f"thread:{long}" not in harness.records(ledger)  # never reported as migrated
    assert len(harness.of_kind(harness.records(ledger), "conversation")) == len(deployment.threads) - 1


def test_only_the_configured_key_is_sent(deployment, monkeypatch):
    """An ambient LANGSMITH_API_KEY is never picked up: each side sends its own key (and extra headers) or none."""
    monkeypatch.setenv("LANGSMITH_API_KEY", "lsv2_sk_ambient")
    monkeypatch.setenv("SOURCE_KEY", "lsv2_sk_source")
    monkeypatch.setenv("AUTH_HEADER", "Authorization: Bearer custom-token")
    sent = []
    keyed = {"url": deployment.url, "api_key": "env:SOURCE_KEY", "headers": ["env:AUTH_HEADER"]}
    for values in (keyed, {"url": deployment.url}):
        reader = Deployment(build_options(LangGraphOptions, values, where="test"))
        reader.client.http.client.event_hooks["request"].append(
            lambda request: sent.append(
                (request.headers.get("x-api-key"), request.headers.get("authorization"))
            )
        )
        assert reader.count() >= 1
        reader.close()
    assert sent == [("lsv2_sk_source", "Bearer custom-token"), (None, None)]
