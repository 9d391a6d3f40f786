"""Cached lookups in the ledger, and the HTTP helper's error classes (against a real
local HTTP server run by the test: a simulated API)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import text

from ledger import lookups
from ledger.http import Api
from ledger.retry import RetryPolicy
from ledger.sink import PermanentError, TransientError


def test_cached_answers_are_asked_once(ledger):
    calls = []

    def fetch():
        calls.append(1)
        return {"email": "ada@example.com"}

    assert lookups.cached(ledger, "workos-user", "user_1", fetch) == {"email": "ada@example.com"}
    assert lookups.cached(ledger, "workos-user", "user_1", fetch) == {"email": "ada@example.com"}
    assert len(calls) == 1
    assert lookups.cached(ledger, "workos-user", "user_2", lambda: None) is None
    assert lookups.cached(ledger, "workos-user", "user_2", lambda: {"x": 1}) is None  # not found, kept
    assert lookups.cached(ledger, "workos-user", "user_2", lambda: {"x": 1}, refresh=True) == {"x": 1}


@pytest.fixture
def flaky_server():
    """A local HTTP server: /flaky fails twice with 503, /missing is 404, /ok echoes auth."""
    hits = {"flaky": 0}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            if self.path == "/flaky":
                hits["flaky"] += 1
                status = 503 if hits["flaky"] <= 2 else 200
            elif self.path == "/missing":
                status = 404
            else:
                status = 200
            body = json.dumps({"auth": self.headers.get("Authorization"), "path": self.path}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()


def test_api_retries_transient_and_masks_keys(flaky_server):
    base, hits = flaky_server
    api = Api(
        base,
        headers={"Authorization": "Bearer on_secret_key_123"},
        secrets=("on_secret_key_123",),
        retry=RetryPolicy(attempts=4, base_seconds=0.001),
    )
    assert api.json("GET", "/flaky")["path"] == "/flaky" and hits["flaky"] == 3
    with pytest.raises(PermanentError) as caught:
        api.request("GET", "/missing")
    assert caught.value.status == 404 and "on_secret_key_123" not in str(caught.value)
    down = Api("http://127.0.0.1:9", retry=RetryPolicy(attempts=2, base_seconds=0.001), timeout=1)
    with pytest.raises(TransientError):
        down.request("GET", "/")
