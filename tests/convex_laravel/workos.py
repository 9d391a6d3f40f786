"""A simulated WorkOS User Management API for the tests (not the real service).

A ``ThreadingHTTPServer`` on 127.0.0.1 (a free port) answers
``GET /user_management/users/{id}`` the way WorkOS does: the user object (``object``,
``id``, ``email``, ``first_name``, ``last_name``, ``email_verified``,
``profile_picture_url``, timestamps) with a valid ``Authorization: Bearer <key>``,
401 without it, 404 for an unknown id. It records every request, so tests can prove
that answers are cached in the ledger and never asked twice.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

PREFIX = "/user_management/users/"


class SimulatedWorkos:
    def __init__(self, api_key: str, users: dict[str, dict[str, Any]]) -> None:
        self.api_key = api_key
        self.users = users
        self.requests: list[tuple[str, int]] = []  # (path, status)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        simulation = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = simulation.answer(self.path, self.headers.get("Authorization"))
                simulation.requests.append((self.path, status))
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet test output

        return Handler

    def answer(self, path: str, authorization: str | None) -> tuple[int, dict[str, Any]]:
        if authorization != f"Bearer {self.api_key}":
            return 401, {"message": "Unauthorized", "code": "unauthorized"}
        if not path.startswith(PREFIX):
            return 404, {"message": "Not Found"}
        user_id = path[len(PREFIX) :]
        user = self.users.get(user_id)
        if user is None:
            return 404, {"message": f"User not found: '{user_id}'.", "code": "entity_not_found"}
        return 200, {
            "object": "user",
            "id": user_id,
            "email": user.get("email"),
            "first_name": user.get("first_name"),
            "last_name": user.get("last_name"),
            "email_verified": True,
            "profile_picture_url": user.get("profile_picture_url"),
            "created_at": "2025-01-01T00:00:00.000Z",
            "updated_at": "2025-01-01T00:00:00.000Z",
        }
