"""Benchmark and acceptance run (``-m bench``, not in the default run): a deployment of
50 threads / over 1,000 checkpoints built by real runs, migrated to the second real
server with ``concurrency`` 1 and 5, directly on loopback and through proxies that add
20 ms to every request (a simulated network round trip: on loopback the two local
servers, not the network, are the bottleneck). Prints threads/s and checkpoints/s of
extraction and replay; asserts the target chains equal the source's, a second run writes 0, and
verify matches, then not once a thread is deleted on the target by hand.

    .venv/bin/python -m pytest -q -s -m bench tests/langgraph/test_bench.py
"""

from __future__ import annotations

import time

import pytest

from ledger.replay import replay
from ledger.replay.verify import verify
from tests.langgraph import harness
from tests.langgraph.conftest import empty_target
from tests.langgraph.deployment import Deployment, chain, history, run_round
from tests.langgraph.proxy import FaultProxy

THREADS = 50
ROUNDS = ("hello", "weather Paris,Rome,Oslo", "thanks", "weather Lima,Quito", "bye")
FILTER = '{"suite": "bench"}'
#: (concurrency, seconds added per request): loopback, then a simulated 20 ms round trip
CASES = ((1, 0.0), (5, 0.0), (1, 0.02), (5, 0.02))
NO_FAULT = lambda method, path, body: None  # noqa: E731


@pytest.fixture(scope="module")
def bench_threads(deployment):
    client = deployment.client()
    ids = [
        client.threads.create(metadata={"suite": "bench", "owner": f"user{n % 7}"})["thread_id"]
        for n in range(THREADS)
    ]
    for text in ROUNDS:
        run_round(client, [(thread_id, "agent", f"{text}") for thread_id in ids])
    return ids


@pytest.mark.bench
def test_migration_benchmark(tmp_path, deployment, lg_servers, bench_threads):
    target = lg_servers[1]
    source, there = deployment.client(), Deployment(target.url).client()
    checkpoints = sum(len(history(source, thread_id)) for thread_id in bench_threads)
    assert checkpoints >= 1000
    for (concurrency, delay), ledger_dir in zip(CASES, "abcd"):
        empty_target(target)
        ledger = harness.open_ledger(tmp_path / ledger_dir)
        with (
            FaultProxy(deployment.url, NO_FAULT, delay=delay) as far_source,
            FaultProxy(target.url, NO_FAULT, delay=delay) as far_target,
        ):
            started = time.monotonic()
            extracted = harness.run_extract(
                ledger, url=far_source.url, metadata_filter=FILTER, concurrency=concurrency
            )
            extract_seconds = time.monotonic() - started
            started = time.monotonic()
            written = replay(
                ledger, harness.lg_sink(ledger, far_target.url, concurrency=concurrency), [harness.STREAM]
            )
            replay_seconds = time.monotonic() - started
        assert extracted.status == "succeeded" and written.status == "succeeded"
        print(
            f"\nconcurrency {concurrency}, +{delay * 1000:.0f} ms per request: {THREADS} threads, {checkpoints} checkpoints; "
            f"extract {extract_seconds:.2f} s ({THREADS / extract_seconds:.1f} threads/s, {checkpoints / extract_seconds:.0f} checkpoints/s); "
            f"replay {replay_seconds:.2f} s ({THREADS / replay_seconds:.1f} threads/s, {checkpoints / replay_seconds:.0f} checkpoints/s); "
            f"total {THREADS / (extract_seconds + replay_seconds):.1f} threads/s, "
            f"{checkpoints / (extract_seconds + replay_seconds):.0f} checkpoints/s"
        )
        for thread_id in bench_threads:
            assert chain(there, thread_id) == chain(source, thread_id)
        # through the proxy the target's URL differed: the ledger's target is named, not addressed
        again = replay(ledger, harness.lg_sink(ledger, target.url, concurrency=concurrency), [harness.STREAM])
        assert again.stats["written"] == 0
        assert verify(ledger, harness.lg_sink(ledger, target.url), [harness.STREAM]).matches
        there.threads.delete(bench_threads[7])
        broken = verify(ledger, harness.lg_sink(ledger, target.url), [harness.STREAM])
        assert not broken.matches and broken.counts["missing"] == 1
        ledger.close()
