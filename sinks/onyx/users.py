"""Onyx accounts for ledger users, and which account each user key maps to.

- **Match** by lower-cased email against ``"user".email`` (Onyx keeps emails lower
  case). A match is never changed or deleted by chatledger.
- **Create** a missing account through the API: ``PUT /manage/admin/users`` (invite,
  one request for the batch's new emails) first when ``invite_users``, then ``POST
  /auth/register {email, password}`` with a generated password, up to
  ``api_concurrency`` registrations at once; a 400 ``REGISTER_USER_ALREADY_EXISTS``
  means someone created it meanwhile (matched instead). A 2xx is not proof: the account
  must then exist in the database. The email, password and account id are appended to
  ``credentials_file`` as soon as the account is seen, one line at a time, created with
  mode 0600 (an existing file readable by others is refused).
- **Skip** emails in ``skip_emails`` that have no account: nothing is created, and the
  user's chats and files are skipped too (``users_skipped``).
- **No email, no account.** A user record without an email (Convex users have none)
  cannot be matched or registered: a skip (``users_skipped_no_email``), and their chats
  and files are skipped with it.
- **Nothing to migrate, no account.** A user who owns no live conversation or file in
  the stream (all their input was rejected, or they never chatted) gets no account
  (``users_skipped_no_chats``). Both are skip outcomes with the reason. If such a user's
  conversations or files arrive later (the input was fixed), the account is made before
  the first of them is written (``users_created_late``; such an account is not removed
  by rolling the run back, since no user record wrote it).
- **Remove** (rollback of a creation, a user deleted at the source with
  ``--propagate-deletes``): only accounts chatledger created, and only while the account
  owns nothing chatledger did not write (judged from the marker rows); otherwise, or
  when Onyx refuses the delete, the account is kept and counted as ``users_kept``.

Which account a user key maps to is remembered in the ledger's lookups (namespace
``onyx-owner``), so conversations and files applied in later batches or runs find it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.kit import MARKER_TABLE, Item, Outcome, PermanentError, canonical_text

NAMESPACE = "onyx-owner"
ALREADY_EXISTS = "REGISTER_USER_ALREADY_EXISTS"
NO_CHATS = "owns no conversation or file to migrate: no account made"
NO_EMAIL = "no email: Onyx accounts are matched and registered by email"


#: user key → ``{"user_id", "email", "created"}``, or ``{"skipped": True, "email"}`` (with
#: ``"no_chats": True`` when the user owned nothing to migrate): an ``OwnerMap`` of NAMESPACE


class Credentials:
    """The 0600 JSONL file of generated passwords, and the accounts it says we created."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._created: set[str] | None = None
        self._lock = threading.Lock()  # registrations run in parallel: one line at a time

    def created(self) -> set[str]:
        if self._created is None:
            self._created = set()
            if self.path.is_file():
                lines = self.path.read_text(encoding="utf-8").splitlines()
                for number, line in enumerate(lines, 1):
                    if line.strip():
                        self._created.add(self._user_id(line, number))
                self._created.discard(None)
        return self._created

    def _user_id(self, line: str, number: int) -> str | None:
        """A line's account id. A line cut short (the process died writing it, so the
        account was never recorded as made) is kept for a human and skipped here; any
        other line that is not a JSON object is an error."""
        try:
            return json.loads(line).get("user_id")
        except (json.JSONDecodeError, AttributeError):
            if not line.rstrip().endswith("}"):
                return None
            raise PermanentError(
                f"{self.path} line {number}: not a JSON object; fix or remove the line"
            ) from None

    def _open(self) -> int:
        """The file, created 0600 if new; refused when others may read it."""
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
        if mode & 0o077:
            os.close(fd)
            raise PermanentError(
                f"{self.path} is readable by others (mode {mode:o}); it holds passwords: make it 0600 or name a new file"
            )
        return fd

    def check(self) -> None:
        """Called before an account is created, so no password is ever lost."""
        os.close(self._open())

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"

    def append(self, email: str, password: str, user_id: str) -> None:
        line = canonical_text(
            {"email": email, "password": password, "user_id": user_id, "created_at": dt.datetime.now(dt.UTC)}
        )
        fd = self._open()
        try:
            with self._lock:  # parallel registrations: one whole line at a time
                created = self.created()
                if os.fstat(fd).st_size and not self._ends_with_newline():
                    os.write(fd, b"\n")  # after a line cut short: start a fresh one
                os.write(fd, line.encode() + b"\n")
            os.fsync(fd)  # not under the lock: the other lines need not wait for this disk write
        finally:
            os.close(fd)
        created.add(user_id)


def generated_password() -> str:
    """Long and random, with the character classes password policies ask for."""
    return f"{secrets.token_urlsafe(18)}-Aa9"


@dataclass(frozen=True)
class _Matched:
    """A user whose account exists."""

    email: str
    user_id: str


class Accounts:
    def __init__(self, sink) -> None:
        self.sink = sink
        self.options = sink.options
        self.skip = {email.strip().lower() for email in sink.options.skip_emails}
        self.credentials = Credentials(sink.options.credentials_file)
        self._known: dict[str, str | None] = {}  # email → account id (None: none), read for one batch
        self.made: set[str] = set()  # accounts this run registered (counted once, as created)

    # -- before the transaction: the API ------------------------------------------------------

    @contextmanager
    def prefetched(self, cursor, items: list[Item]) -> Iterator[None]:
        """Inside, ``find`` answers for these users' emails from one query made up front."""
        emails = sorted(
            {e.strip().lower() for e in (i.data.get("email") for i in items) if isinstance(e, str)}
        )
        cursor.execute('SELECT email, id::text FROM "user" WHERE email = ANY(%s)', (emails,))
        self._known = dict.fromkeys(emails) | dict(cursor.fetchall())
        try:
            yield
        finally:
            self._known = {}

    def find(self, cursor, email: str) -> str | None:
        if email in self._known:
            return self._known[email]
        cursor.execute('SELECT id::text FROM "user" WHERE email = %s', (email,))
        row = cursor.fetchone()
        return row[0] if row else None

    def ensure_all(self, cursor, items: list[Item]) -> list[tuple[dict[str, Any], str | None]]:
        """The accounts of live user records (matched, created or skipped), in their
        order: each one's owner entry, and why no account was made (None when there is
        one). The missing accounts are created together (``_create_all``)."""
        with self.prefetched(cursor, items):
            decided = [self._decide(cursor, item) for item in items]
            wanted = [found for found in decided if isinstance(found, str)]
            accounts = self._create_all(list(dict.fromkeys(wanted)))
        if len(wanted) > len(accounts):  # an email twice in the batch: made once, then matched
            self.sink.count("users_matched", len(wanted) - len(accounts))
        answers = []
        for item, found in zip(items, decided, strict=True):
            if isinstance(found, tuple):
                answers.append(found)
                continue
            email = found.email if isinstance(found, _Matched) else found
            account = found.user_id if isinstance(found, _Matched) else accounts[email]
            held = item.held_ref if isinstance(item.held_ref, dict) else {}
            created = account in self.credentials.created() or (
                held.get("created") and held.get("user_id") == account
            )
            answers.append(({"user_id": account, "email": email, "created": bool(created)}, None))
        return answers

    def _decide(self, cursor, item: Item) -> tuple[dict[str, Any], str] | _Matched | str:
        """A user's skip (its owner entry and reason), its matched account, or its email
        when an account is to be created."""
        email = item.data.get("email")
        if not isinstance(email, str) or "@" not in email:
            self.sink.count("users_skipped_no_email")
            return {"skipped": True, "email": None}, NO_EMAIL
        email = email.strip().lower()
        found = self.find(cursor, email)
        if found is None and email in self.skip:
            self.sink.count("users_skipped")
            return {"skipped": True, "email": email}, f"{email} is in skip_emails and has no account"
        if found is None and not self._owns_content(item):
            self.sink.count("users_skipped_no_chats")
            return {"skipped": True, "no_chats": True, "email": email}, NO_CHATS
        if found is None:
            return email
        if found not in self.made:  # else registered by an attempt of this run that failed later
            self.sink.count("users_matched")
        return _Matched(email, found)

    def _owns_content(self, item: Item) -> bool:
        owners = self.sink.context.owners_with_content(item.stream)
        return owners is None or item.key in owners

    def ensure_late(self, cursor, stream: str, user_key: str) -> None:
        """An account for a user skipped for owning nothing, now that something of theirs
        is being written."""
        owner = self.sink.owners.get(stream, user_key)
        if not (owner and owner.get("no_chats")):
            return
        email = owner["email"]
        found = self.find(cursor, email) or self._create_all([email])[email]
        self.sink.count("users_created_late")
        entry = {"user_id": found, "email": email, "created": found in self.credentials.created()}
        self.sink.owners.put(stream, user_key, entry)

    def _create_all(self, emails: list[str]) -> dict[str, str]:
        """email → account id of new accounts (the distinct emails of a batch): one
        invite for all of them, then the registrations, up to ``api_concurrency`` at
        once (``sink.concurrently``), each checked on the cursor ``concurrently`` gives it."""
        if not emails:
            return {}
        for email in emails:
            self._known.pop(email, None)  # from here on the database says whether it exists
        self.credentials.check()
        if self.options.invite_users:
            self.sink.api().request("PUT", "/manage/admin/users", json={"emails": emails})
        return dict(zip(emails, self.sink.concurrently(self._create, emails), strict=True))

    def _create(self, cursor, email: str) -> str:
        password = generated_password()
        try:
            self.sink.api().request("POST", "/auth/register", json={"email": email, "password": password})
        except PermanentError as exc:
            if exc.status == 400 and ALREADY_EXISTS in str(exc):
                found = self.find(cursor, email)
                if found:
                    self.sink.count("users_matched")
                    return found
            raise
        found = self.find(cursor, email)
        if found is None:
            raise PermanentError(
                f"POST /auth/register answered 2xx for a new account, but no account {email} exists"
            )
        self.credentials.append(email, password, found)
        self.made.add(found)
        self.sink.count_done("users_created")
        return found

    def preview(self, cursor, items: list[Item]) -> dict[str, Any]:
        """Who a replay would create, match or skip (dry runs)."""
        plan: dict[str, Any] = {"create": [], "match": 0, "skip": [], "no_chats": [], "no_email": []}
        for item in items:
            email = item.data.get("email")
            if not isinstance(email, str) or "@" not in email:
                plan["no_email"].append(item.key)
            elif self.find(cursor, email.strip().lower()):
                plan["match"] += 1
            elif email.strip().lower() in self.skip:
                plan["skip"].append(email.strip().lower())
            elif not self._owns_content(item):
                plan["no_chats"].append(email.strip().lower())
            else:
                plan["create"].append(email.strip().lower())
        return plan

    # -- inside the transaction: removals ---------------------------------------------------

    def remove(self, cursor, items: list[Item]) -> list[Outcome]:
        outcomes = []
        for item in items:
            ref = item.held_ref if isinstance(item.held_ref, dict) else {}
            if ref.get("created") and ref.get("user_id"):
                self._delete_account(cursor, ref["user_id"])
            if item.held_hash is not None:
                outcomes.append(Outcome.written(item, ref or None))
        return outcomes

    def _delete_account(self, cursor, user_id: str) -> None:
        if not self._owns_only_ours(cursor, user_id):
            self.sink.count("users_kept")
            return
        cursor.execute("SAVEPOINT chatledger_user")
        try:
            cursor.execute(
                "DELETE FROM chat_feedback WHERE chat_message_id IN (SELECT m.id FROM chat_message m "
                "JOIN chat_session s ON s.id = m.chat_session_id WHERE s.user_id = %s)",
                (user_id,),
            )
            cursor.execute('DELETE FROM "user" WHERE id = %s', (user_id,))
        except Exception as exc:  # Onyx rows we do not know reference the account: keep it
            if not self.sink.is_integrity_error(exc):
                raise
            cursor.execute("ROLLBACK TO SAVEPOINT chatledger_user")
            self.sink.count("users_kept")
            return
        cursor.execute("RELEASE SAVEPOINT chatledger_user")
        self.sink.count("users_deleted")

    def _owns_only_ours(self, cursor, user_id: str) -> bool:
        """The account has no session and no upload chatledger did not write."""
        if not self.options.markers:
            return False
        cursor.execute(
            f"SELECT target_ref::jsonb ->> 'chat_session' FROM {MARKER_TABLE} "
            "WHERE target = %s AND hash IS NOT NULL AND target_ref::jsonb ? 'root'",
            (self.sink.target,),
        )
        ours = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "SELECT count(*) FROM chat_session WHERE user_id = %s AND NOT (id::text = ANY(%s))",
            (user_id, ours),
        )
        foreign_sessions = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM user_file uf LEFT JOIN file_record fr ON fr.file_id = uf.file_id "
            "WHERE uf.user_id = %s AND (fr.file_metadata -> 'chatledger') IS NULL",
            (user_id,),
        )
        return foreign_sessions == 0 and cursor.fetchone()[0] == 0
