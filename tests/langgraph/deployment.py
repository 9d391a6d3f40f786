"""The source deployment the tests migrate, built by real runs on a real server.

Threads (``NAMES`` → what was done to them):

- ``long``: one run asking for the weather in 50 cities (a tool call per city) and an
  echo run: over 100 checkpoints, so history is read in pages;
- ``tools``: an echo, a two-city tool run, an echo, then a trailing ``update_state``;
- ``edited``: a run, an ``update_state`` in the middle, another run;
- ``echo``: two runs of the ``echo`` graph, which the target server does not have;
- ``empty``: created, never run (no graph, no checkpoints);
- ``lite``: a tool run of the ``lite`` graph, whose target version has no ``tools`` node;
- ``small-0..2``: one run each.

Runs of one round are started on all threads at once and then joined: the inmem
runtime's queue polls every half second, so one run at a time would take a second each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from langgraph_sdk import get_sync_client

CITIES = ",".join(f"city{number}" for number in range(50))
RECURSION = {"recursion_limit": 400}


@dataclass
class Deployment:
    url: str
    threads: dict[str, str] = field(default_factory=dict)  # name → thread id

    def client(self):
        return get_sync_client(url=self.url, api_key=None)


def human(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def run_round(client, runs: list[tuple[str, str, str]]) -> None:
    """Start (thread id, graph, text) runs together, then wait for each."""
    started = [
        (thread_id, client.runs.create(thread_id, graph, input=human(text), config=RECURSION))
        for thread_id, graph, text in runs
    ]
    for thread_id, run in started:
        client.runs.join(thread_id, run["run_id"])
        status = client.runs.get(thread_id, run["run_id"])["status"]
        if status != "success":
            raise RuntimeError(f"run on {thread_id} ended {status}")


def build(url: str) -> Deployment:
    deployment = Deployment(url)
    client = deployment.client()
    metadata = {
        "long": {"owner": "alice", "team": "red", "title": "Weather tour"},
        "tools": {"owner": "bob", "team": "blue"},
        "edited": {"owner": "alice", "team": "blue"},
        "echo": {"owner": "bob", "team": "red"},
        "empty": {"owner": "carol"},
        "lite": {"owner": "carol", "team": "red"},
        **{f"small-{n}": {"owner": "dave", "team": "green"} for n in range(3)},
    }
    for name, values in metadata.items():
        deployment.threads[name] = client.threads.create(metadata={**values, "suite": "base"})["thread_id"]
    ids = deployment.threads
    run_round(
        client,
        [(ids["long"], "agent", "weather " + CITIES), (ids["tools"], "agent", "hi"),
         (ids["edited"], "agent", "first"), (ids["echo"], "echo", "x"), (ids["lite"], "lite", "weather Oslo")]
        + [(ids[f"small-{n}"], "agent", f"hello {n}") for n in range(3)],
    )  # fmt: skip
    client.threads.update_state(
        ids["edited"], {"messages": [{"type": "human", "content": "a note"}]}, as_node="agent"
    )
    run_round(
        client,
        [(ids["long"], "agent", "thanks ✓"), (ids["tools"], "agent", "weather Paris,Rome"),
         (ids["edited"], "agent", "second"), (ids["echo"], "echo", "y")],
    )  # fmt: skip
    run_round(client, [(ids["tools"], "agent", "bye")])
    client.threads.update_state(
        ids["tools"], {"messages": [{"type": "ai", "content": "edited by hand"}]}, as_node="agent"
    )
    return deployment


def history(client, thread_id: str) -> list[dict[str, Any]]:
    """A thread's whole history, oldest first (test-side reading, paged)."""
    states: list[dict[str, Any]] = []
    before = None
    while True:
        page = client.threads.get_history(thread_id, limit=1000, before=before)
        states += page
        if len(page) < 1000:
            return list(reversed(states))
        before = {"configurable": {"checkpoint_id": page[-1]["checkpoint_id"]}}


def chain(client, thread_id: str) -> list[tuple[str, int, list[str]]]:
    """(source with loop → update, step, next) of every checkpoint, oldest first."""
    return [
        (
            "input" if state["metadata"]["source"] == "input" else "update",
            state["metadata"]["step"],
            state["next"],
        )
        for state in history(client, thread_id)
    ]
