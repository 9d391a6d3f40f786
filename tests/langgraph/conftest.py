"""Two real LangGraph API servers per test session (started once, in parallel) and the
source deployment built on the first by real runs. The target has no ``echo`` graph, so
a thread of it has nowhere to go, and its ``lite`` graph lacks the ``tools`` node the
source's ``lite`` threads ran, so their history is refused (the fallback path)."""

from __future__ import annotations

import pytest

from tests.langgraph.deployment import Deployment, build
from tests.langgraph.servers import Server, environment_is_clean, start_servers

SOURCE_GRAPHS = {"agent": "./graph.py:agent", "echo": "./graph.py:echo", "lite": "./graph.py:agent"}
TARGET_GRAPHS = {"agent": "./graph.py:agent", "lite": "./graph.py:lite"}


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


def empty_target(server: Server) -> None:
    client = Deployment(server.url).client()
    while True:
        found = client.threads.search(limit=1000, select=["thread_id"])
        if not found:
            return
        for thread in found:
            client.threads.delete(thread["thread_id"])


@pytest.fixture
def target(lg_servers):
    """The target server, emptied of threads before the test."""
    empty_target(lg_servers[1])
    return lg_servers[1]
