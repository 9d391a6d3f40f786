"""Options of the ``onyx`` sink."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ledger.kit import option


@dataclass
class OnyxOptions:
    db_url: str = option(help="Onyx's PostgreSQL database (postgresql://…).", secret=True)
    api_base: str | None = option(
        None,
        help="Onyx's API: https://<host>/api behind Onyx's nginx, or the api_server directly "
        "(http://api_server:8080). Needed to create users and upload files.",
    )
    api_key: str | None = option(
        None, help="An Onyx admin API key (on_…), sent as a Bearer token.", secret=True
    )
    api_concurrency: int = option(
        4,
        help="How many registrations or uploads are sent to the API at once (1: one after another).",
        minimum=1,
    )
    persona_id: int = option(0, help="The persona (assistant) imported chats belong to; 0 is Onyx's default.")
    skip_emails: list[str] = option(
        [],
        help="Never create accounts for these emails (repeatable); their chats are skipped unless the account exists.",
    )
    invite_users: bool = option(
        False, help="Invite each new user before registering it (Onyx in invite-only mode)."
    )
    credentials_file: Path = option(
        Path("onyx-credentials.jsonl"),
        help="Where the generated passwords of created users are appended (created with mode 0600).",
    )
    bridge_text: str = option(
        "Continue.",
        help="Text of the USER message put between two consecutive assistant messages (Onyx forbids them).",
    )
    file_types: list[str] = option(
        [], help="ChatFileType values this Onyx accepts (default: those of the detected schema generation)."
    )
    markers: bool = option(
        True, help="Keep the chatledger_markers table in the Onyx database (exactly-once after crashes)."
    )
