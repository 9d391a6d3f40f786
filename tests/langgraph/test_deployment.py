"""The test servers themselves: real, isolated, and holding the threads the other tests
rely on (a broken fixture must fail here, not as a confusing migration failure)."""

from __future__ import annotations

import httpx

from tests.langgraph.deployment import chain


def test_servers_are_real_and_separate(lg_servers):
    source, target = lg_servers
    assert source.port != target.port and source.directory != target.directory
    for server in lg_servers:
        assert httpx.get(f"{server.url}/ok").json()["ok"] is True
    graphs = {a["graph_id"] for a in httpx.post(f"{target.url}/assistants/search", json={}).json()}
    assert graphs == {"agent", "lite"}


def test_deployment_threads(deployment):
    client = deployment.client()
    chains = {name: chain(client, thread_id) for name, thread_id in deployment.threads.items()}
    assert len(chains["long"]) > 100
    assert chains["empty"] == []
    assert chains["tools"][-1] == ("update", chains["tools"][-2][1] + 1, [])  # the trailing update_state
    assert [step for _, step, _ in chains["edited"]] == list(range(-1, len(chains["edited"]) - 1))
    messages = client.threads.get_state(deployment.threads["tools"])["values"]["messages"]
    assert [m["type"] for m in messages].count("tool") == 2
    assert any(m.get("tool_calls") for m in messages)
