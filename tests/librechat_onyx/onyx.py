"""An Onyx database for tests, and a local HTTP server that simulates Onyx's API.

``load_onyx`` loads Onyx's real DDL (``onyx_schema_head.sql``, a copy of
../shared/fixtures/onyx/schema_head.sql: Alembic head ``28bb08137807``) into an empty
Postgres database, plus the seed rows a migrated Onyx has (persona 0, the two
placeholder users). ``generation="<=2.5"`` derives the older schema from it the way
revision ``a852cbe15577`` (v2.6.0) changed it, backwards: the pointer columns renamed to
``parent_message`` / ``latest_child_message``, their self-foreign-keys and
``reasoning_tokens`` dropped.

``OnyxApi`` is a **simulation** of the documented contract (../shared/reference/onyx.md),
not Onyx: a ``ThreadingHTTPServer`` on 127.0.0.1 that writes real rows into the same
test database.

- every route needs ``Authorization: Bearer <key>`` (or the raw key, or
  ``X-Onyx-Authorization``) matching an ``api_key`` row (sha256 of the key); 401 otherwise.
  The key acts as its own ``SERVICE_ACCOUNT`` user;
- ``GET /api/manage/users/accepted?page_num=&page_size=``: one page of accounts by email,
  ``{items: [{id, email}], total_items}`` (the paged user list; a dry run's check reads it);
- ``PUT /api/manage/admin/users {"emails"}`` invites;
- ``POST /api/auth/register {email, password}``: 400 ``REGISTER_USER_ALREADY_EXISTS`` for
  a known email, 400 for a short password, and in invite-only mode 400 until invited;
  creates a ``"user"`` row (``BASIC``/``STANDARD``) and answers ``UserRead`` (201);
- ``POST /api/user/projects/file/upload`` (multipart ``files``): a ``file_record``
  (origin ``USER_FILE``), the bytes as a Postgres large object in ``file_content``, and a
  ``user_file`` owned by the key's service account; answers ``{user_files: [{id, name,
  file_id, file_type, chat_file_type, status, token_count, chunk_count}],
  rejected_files}`` (an empty file is rejected).

``calls`` counts requests per route, and ``fail`` makes the next requests of a route
answer a given status (to test retries). Like Onyx's api_server, it keeps connections
alive (HTTP/1.1), answers requests concurrently (a thread per client connection) and
reuses its database connections (a pool); an upload's rows are written in one
transaction, sent as one pipeline, and a registration is one ``INSERT … ON CONFLICT``
(the email's unique index answers whether it exists).
"""

from __future__ import annotations

import hashlib
import json
import queue
import re
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg

SCHEMA = Path(__file__).with_name("onyx_schema_head.sql")
API_KEY = "on_simulated_admin_key_0123456789"
SERVICE_ACCOUNT = "00000000-0000-0000-0000-0000000000aa"
SEED = """
INSERT INTO persona (id, name, description, deleted, is_listed, is_public, builtin_persona, display_priority, is_featured)
VALUES (0, 'Assistant', 'Your AI assistant with search, web browsing, and image generation capabilities.',
        false, true, true, true, 0, true);
INSERT INTO "user" (id, email, hashed_password, is_active, is_superuser, is_verified, role, account_type) VALUES
  ('00000000-0000-0000-0000-000000000001', 'no-auth-placeholder@onyx.app', '', false, false, false, 'BASIC', 'STANDARD'),
  ('00000000-0000-0000-0000-000000000002', 'anonymous@onyx.app', '', true, false, false, 'LIMITED', 'ANONYMOUS');
"""
OLDER = """
ALTER TABLE chat_message DROP CONSTRAINT fk_chat_message_latest_child_message_id;
ALTER TABLE chat_message DROP CONSTRAINT fk_chat_message_parent_message_id;
ALTER TABLE chat_message RENAME COLUMN parent_message_id TO parent_message;
ALTER TABLE chat_message RENAME COLUMN latest_child_message_id TO latest_child_message;
ALTER TABLE chat_message DROP COLUMN reasoning_tokens;
"""


def plain_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def load_onyx(url: str, generation: str = "2.6+") -> None:
    """Onyx's DDL, its seed rows and an API key's service account, into an empty database."""
    with psycopg.connect(plain_url(url), autocommit=True) as conn:
        conn.execute(SCHEMA.read_text(encoding="utf-8"))
        conn.execute(SEED)
        if generation == "<=2.5":
            conn.execute(OLDER)
        conn.execute(
            'INSERT INTO "user" (id, email, hashed_password, is_active, is_superuser, is_verified, role, account_type) '
            "VALUES (%s, 'api_key__simulated@onyxapikey.ai', '', true, false, true, 'BASIC', 'SERVICE_ACCOUNT')",
            (SERVICE_ACCOUNT,),
        )
        conn.execute(
            "INSERT INTO api_key (id, hashed_api_key, api_key_display, user_id, name) VALUES (1, %s, 'on_****6789', %s, 'migration')",
            (hashlib.sha256(API_KEY.encode()).hexdigest(), SERVICE_ACCOUNT),
        )


#: one ``name=value`` parameter of a header (``value`` quoted or not)
PARAMETER = re.compile(r';\s*([\w*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))')


def header_parameters(value: str) -> dict[str, str]:
    """The parameters of a header such as ``form-data; name="files"; filename="a.pdf"``."""
    return {
        match[1].lower(): match[2] if match[2] is not None else match[3]
        for match in PARAMETER.finditer(value)
    }


def form_parts(content_type: str, body: bytes) -> Iterator[tuple[dict[str, str], bytes]]:
    """The parts of a ``multipart/form-data`` body: each one's headers (names lower case)
    and its bytes, as a web framework's form parser gives them. (The ``email`` package
    parses these too, at about 2.5 ms an upload: half of the simulation's CPU time.)"""
    boundary = header_parameters(content_type).get("boundary")
    if not boundary:
        return
    for chunk in (b"\r\n" + body).split(b"\r\n--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):  # the closing delimiter
            return
        head, _, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        yield headers, data


def chat_file_type(mime: str) -> str:
    """What Onyx answers for an upload's type (HEAD's ChatFileType values)."""
    if mime.startswith("image/"):
        return "image"
    if mime in ("text/csv", "text/tab-separated-values"):
        return "tabular"
    if mime.startswith("text/"):
        return "plain_text"
    return "document"


class ConnectionPool:
    """Autocommit connections to the database, opened when none is idle and kept for the
    next request (a connection whose request failed is closed, not kept)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.idle: queue.SimpleQueue[psycopg.Connection] = queue.SimpleQueue()

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        try:
            conn = self.idle.get_nowait()
        except queue.Empty:
            conn = psycopg.connect(self.url, autocommit=True)
        try:
            yield conn
        except BaseException:
            conn.close()
            raise
        self.idle.put(conn)

    def close(self) -> None:
        while True:
            try:
                self.idle.get_nowait().close()
            except queue.Empty:
                return


class OnyxApi:
    """The simulated API (see the module doc); use as a context manager."""

    def __init__(self, db_url: str, *, invite_only: bool = False) -> None:
        self.db_url = plain_url(db_url)
        self.invite_only = invite_only
        self.invited: set[str] = set()
        self.calls: Counter[str] = Counter()
        self.fail: dict[str, list[int]] = {}
        self.lock = threading.Lock()
        self.pool = ConnectionPool(self.db_url)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api"

    def __enter__(self) -> OnyxApi:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.pool.close()

    # -- routes -------------------------------------------------------------------------------

    def caller(self, headers) -> str | None:
        """The service account of the API key in the request, or None."""
        token = headers.get("Authorization") or headers.get("X-Onyx-Authorization") or ""
        token = token.removeprefix("Bearer ").strip()
        if not token:
            return None
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT user_id::text FROM api_key WHERE hashed_api_key = %s",
                (hashlib.sha256(token.encode()).hexdigest(),),
            ).fetchone()
        return row[0] if row else None

    def accepted_users(self, path: str) -> tuple[int, dict]:
        asked = parse_qs(urlsplit(path).query)
        page, size = int(asked.get("page_num", ["0"])[0]), int(asked.get("page_size", ["10"])[0])
        with self.pool.connection() as conn:
            total = conn.execute('SELECT count(*) FROM "user"').fetchone()[0]
            rows = conn.execute(
                'SELECT id::text, email FROM "user" ORDER BY email LIMIT %s OFFSET %s', (size, page * size)
            ).fetchall()
        return 200, {"items": [{"id": id_, "email": email} for id_, email in rows], "total_items": total}

    def invite(self, body: bytes) -> tuple[int, dict]:
        emails = json.loads(body).get("emails") or []
        with self.lock:
            self.invited.update(email.lower() for email in emails)
        return 200, {}

    def register(self, body: bytes) -> tuple[int, dict]:
        request = json.loads(body)
        email, password = str(request.get("email", "")).lower(), str(request.get("password", ""))
        if len(password) < 8:
            return 400, {
                "detail": {
                    "code": "REGISTER_INVALID_PASSWORD",
                    "reason": "Password must be at least 8 characters",
                }
            }
        if self.invite_only and email not in self.invited:
            return 400, {"detail": "User not on allowed user whitelist"}
        user_id = str(uuid.uuid4())
        with self.pool.connection() as conn:  # the email's unique index says whether it exists
            created = conn.execute(
                'INSERT INTO "user" (id, email, hashed_password, is_active, is_superuser, is_verified, role, account_type) '
                "VALUES (%s, %s, %s, true, false, false, 'BASIC', 'STANDARD') ON CONFLICT (email) DO NOTHING RETURNING id",
                (user_id, email, "simulated$" + hashlib.sha256(password.encode()).hexdigest()),
            ).fetchone()
        if created is None:
            return 400, {"detail": "REGISTER_USER_ALREADY_EXISTS"}
        return 201, {"id": user_id, "email": email, "is_active": True, "is_superuser": False,
                     "is_verified": False, "account_type": "STANDARD"}  # fmt: skip

    def upload(self, caller: str, content_type: str, body: bytes) -> tuple[int, dict]:
        accepted, rejected = [], []
        # one transaction, sent as a pipeline (one round trip, as an ORM flush batches it)
        with self.pool.connection() as conn, conn.pipeline(), conn.transaction():
            for headers, data in form_parts(content_type, body):
                disposition = header_parameters(headers.get("content-disposition", ""))
                if disposition.get("name") != "files":
                    continue
                name = disposition.get("filename") or "upload"
                mime = headers.get("content-type", "text/plain").split(";")[0].strip().lower()
                if not data:
                    rejected.append({"file_name": name, "reason": "The file is empty"})
                    continue
                accepted.append(self._store(conn, caller, name, mime, data))
        return 200, {"user_files": accepted, "rejected_files": rejected}

    def _store(self, conn, caller: str, name: str, mime: str, data: bytes) -> dict:
        file_id, user_file_id = str(uuid.uuid4()), str(uuid.uuid4())
        conn.execute(
            "INSERT INTO file_record (file_id, display_name, file_origin, file_type, file_size) "
            "VALUES (%s, %s, 'USER_FILE', %s, %s)",
            (file_id, name, mime, len(data)),
        )
        conn.execute(
            "INSERT INTO file_content (file_id, lobj_oid, file_size) VALUES (%s, lo_from_bytea(0, %s), %s)",
            (file_id, data, len(data)),
        )
        kind = chat_file_type(mime)
        conn.execute(
            "INSERT INTO user_file (id, user_id, file_id, name, file_type, content_type, status, created_at, "
            "token_count, chunk_count) VALUES (%s, %s, %s, %s, %s, %s, 'COMPLETED', now(), %s, 0)",
            (user_file_id, caller, file_id, name, mime, mime, len(data) // 4),
        )
        return {"id": user_file_id, "name": name, "file_id": file_id, "file_type": mime, "chat_file_type": kind,
                "status": "COMPLETED", "token_count": len(data) // 4, "chunk_count": 0}  # fmt: skip

    # -- plumbing ---------------------------------------------------------------------------

    def _handler(self):
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: every answer has a Content-Length
            disable_nagle_algorithm = True  # headers and body are separate writes

            def log_message(self, *args):
                pass

            def _answer(self, status: int, payload: dict) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _route(self, method: str) -> None:
                route = f"{method} {self.path.split('?')[0]}"
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with api.lock:
                    api.calls[route] += 1
                    failing = api.fail.get(route)
                    status = failing.pop(0) if failing else None
                if status is not None:
                    return self._answer(status, {"detail": "simulated failure"})
                caller = api.caller(self.headers)
                if caller is None:
                    return self._answer(401, {"detail": "Unauthorized"})
                if route == "GET /api/manage/users/accepted":
                    return self._answer(*api.accepted_users(self.path))
                if route == "PUT /api/manage/admin/users":
                    return self._answer(*api.invite(body))
                if route == "POST /api/auth/register":
                    return self._answer(*api.register(body))
                if route == "POST /api/user/projects/file/upload":
                    return self._answer(*api.upload(caller, self.headers.get("Content-Type", ""), body))
                return self._answer(404, {"detail": "Not Found"})

            def do_GET(self):
                self._route("GET")

            def do_POST(self):
                self._route("POST")

            def do_PUT(self):
                self._route("PUT")

        return Handler
