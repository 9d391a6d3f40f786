"""Two real LangGraph API servers per test session (started once, in parallel) and the
source deployment built on the first by real runs. The target has the ``agent`` graph
only, so a thread of the source's ``echo`` graph has nowhere to go."""

from __future__ import annotations

import pytest

from tests.langgraph.deployment import Deployment, build
from tests.langgraph.servers import Server, environment_is_clean, start_servers

SOURCE_GRAPHS = {"agent": "./graph.py:agent", "echo": "./graph.py:echo"}
TARGET_GRAPHS = {"agent": "./graph.py:agent"}


@pytest.fixture(scope="session")
def lg_servers() -> tuple[Server, Server]:
    assert environment_is_clean(), (
        "unset LANGGRAPH_API_KEY / LANGSMITH_API_KEY / LANGCHAIN_API_KEY for these tests"
    )
    source, target = start_servers(SOURCE_GRAPHS, TARGET_GRAPHS)
    yield source, target
    source.stop()
    target.stop()


@pytest.fixture(scope="session")
def deployment(lg_servers) -> Deployment:
    return build(lg_servers[0].url)


@pytest.fixture
def target(lg_servers):
    """The target server, emptied of threads before the test."""
    server = lg_servers[1]
    client = Deployment(server.url).client()
    while True:
        found = client.threads.search(limit=1000)
        if not found:
            break
        for thread in found:
            client.threads.delete(thread["thread_id"])
    return server
