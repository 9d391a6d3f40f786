"""A small local HTTP proxy in front of a real server that injects failures: a rule
sees (method, path, body) and returns a status to answer instead of forwarding, or None
to forward. It records every request, so tests assert on retries as the server saw them.
``delay`` adds a fixed wait to every request (a simulated network round trip)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

Rule = Callable[[str, str, dict], int | None]


class FaultProxy:
    def __init__(self, upstream: str, rule: Rule, *, delay: float = 0.0) -> None:
        self.upstream = upstream
        self.rule = rule
        self.delay = delay  # seconds added to every request: a simulated network round trip
        self.requests: list[tuple[str, str, dict, int]] = []  # method, path, body, status answered
        self.lock = threading.Lock()
        self.client = httpx.Client(base_url=upstream, timeout=60)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = {}
                if proxy.delay:
                    time.sleep(proxy.delay)
                with proxy.lock:
                    injected = proxy.rule(self.command, self.path, body)
                if injected is not None:
                    content, status = json.dumps({"detail": "injected by the test proxy"}).encode(), injected
                    headers = {"content-type": "application/json"}
                else:
                    forwarded = {
                        k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
                    }
                    response = proxy.client.request(self.command, self.path, content=raw, headers=forwarded)
                    content, status = response.content, response.status_code
                    headers = {k: v for k, v in response.headers.items()
                               if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding")}  # fmt: skip
                with proxy.lock:
                    proxy.requests.append((self.command, self.path, body, status))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.client.close()

    def answered(self, path_part: str, status: int | None = None) -> list[tuple[str, str, dict, int]]:
        return [r for r in self.requests if path_part in r[1] and (status is None or r[3] == status)]
