"""Options of the ``librechat`` source: one input (live MongoDB, a mongodump folder or
LibreChat JSON exports), the users in scope, and where attachment bytes live."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ledger.kit import ConfigError, option


@dataclass
class LibreChatOptions:
    mongo_uri: str | None = option(None, help="A live MongoDB (mongodb://…); read with pymongo.", secret=True)
    database: str = option("LibreChat", help="The MongoDB database (live or in the dump).")
    dump_path: Path | None = option(
        None, help="A mongodump folder: <path>/<database>/*.bson[.gz], or the database folder itself."
    )
    export_paths: list[Path] = option(
        [], help="LibreChat JSON conversation exports: files or folders of *.json (repeatable)."
    )
    owner_email: str | None = option(
        None, help="JSON exports only: the email of the user who exported them (exports carry none)."
    )
    user_emails: list[str] = option(
        [],
        help="Only these users (repeatable); the listing is then not exhaustive: nothing is deleted for users left out.",
    )
    users_file: Path | None = option(
        None, help="Only the users whose emails are listed in this file, one per line (# comments)."
    )
    max_conversations: int | None = option(
        None, help="Trial runs: at most this many conversations per user (partial scopes never delete)."
    )
    include_temporary: bool = option(
        False, help="Also read temporary (expiring) chats, which are skipped by default."
    )
    asset_roots: list[Path] = option(
        [],
        help="Folders holding LibreChat's local files: an 'images' or 'uploads' folder, or a folder containing them.",
    )


def check(options: LibreChatOptions) -> str:
    """Which input the options name ("mongo", "dump" or "export"); exactly one is allowed."""
    given = [
        name
        for name, value in (
            ("mongo", options.mongo_uri),
            ("dump", options.dump_path),
            ("export", options.export_paths),
        )
        if value
    ]
    if len(given) != 1:
        raise ConfigError(
            "librechat: give exactly one input: mongo_uri, dump_path or export_paths "
            f"(got {', '.join(given) or 'none'})"
        )
    if given[0] == "export" and not options.owner_email:
        raise ConfigError("librechat: JSON exports carry no email; set owner_email to the exporting user's")
    if options.max_conversations is not None and options.max_conversations < 1:
        raise ConfigError("librechat: max_conversations must be at least 1")
    return given[0]


def wanted_emails(options: LibreChatOptions) -> set[str] | None:
    """The lower-cased emails in scope, or None for every user."""
    emails = {email.strip().lower() for email in options.user_emails if email.strip()}
    if options.users_file is not None:
        try:
            lines = options.users_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(
                f"librechat: cannot read users_file {options.users_file}: {exc.strerror}"
            ) from None
        for line in lines:
            entry = line.split("#", 1)[0].strip().lower()
            if entry:
                emails.add(entry)
        if not emails:
            raise ConfigError(f"librechat: users_file {options.users_file} lists no email")
    return emails or None
