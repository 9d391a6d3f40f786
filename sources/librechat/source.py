"""The ``librechat`` source: scopes, reading one user at a time, and facts for the run.

Scopes are users (``user:<userId>``), oldest first. A scope is *complete* (a missing key
is a deletion) unless ``max_conversations`` limits it or the input is damaged. The
listing is *exhaustive* (a vanished user is deleted as a whole) only without a user
filter. Fingerprints: a dump's or exports' sha256, the options that shape records, the
asset roots' listing and the user id; a live MongoDB has none, so it is always read.

Within a scope: the user record, then one chunk per conversation (the conversation, its
messages, the files they use), with the cursor after that conversation, so an
interrupted partial pass resumes where it stopped; a finished pass ends with no cursor,
so a trial run (``max_conversations``) reads the same first conversations again.
Temporary chats are skipped unless ``include_temporary``. Messages whose conversation
document is missing are reported, not migrated.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ledger.kit import Record, Reject, Scope, Source, digest
from sources.librechat import mapping
from sources.librechat.assets import Assets
from sources.librechat.dump import DumpStore
from sources.librechat.exports import ExportStore
from sources.librechat.mongo import MongoStore
from sources.librechat.native import id_text
from sources.librechat.options import LibreChatOptions, check, wanted_emails
from sources.librechat.store import Bundle, Store, Tally

#: Bump when the mapping's output changes, so fingerprints change with it.
MAPPING_VERSION = 1


class LibreChatSource(Source):
    type_name = "librechat"
    Options = LibreChatOptions

    def __init__(self, options: LibreChatOptions, context) -> None:
        super().__init__(options, context)
        self.input = check(options)
        self.emails = wanted_emails(options)
        self.exhaustive = self.emails is None
        self.assets = Assets(options.asset_roots)
        self._store: Store | None = None
        self._shape: str | None = None
        self._reported = 0  # damage rejects already handed over

    @property
    def store(self) -> Store:
        """The input, opened on first use (after the fork into the reader process)."""
        if self._store is None:
            options = self.options
            if self.input == "mongo":
                self._store = MongoStore(options.mongo_uri, options.database)
            elif self.input == "dump":
                self._store = DumpStore(options.dump_path, options.database)
            else:
                owner = mapping.export_user_id(options.owner_email)
                self._store = ExportStore(options.export_paths, options.owner_email, owner)
        return self._store

    # -- scopes -------------------------------------------------------------------------

    def scopes(self) -> Iterator[Scope]:
        seen: set[str] = set()
        for user in self.store.users(self.emails):
            user_id = id_text(user.get("_id"))
            if user_id is None or user_id in seen:
                continue
            seen.add(user_id)
            complete = self.options.max_conversations is None and not self.store.damage()
            yield Scope(f"user:{user_id}", complete, self._fingerprint(user_id))

    def _fingerprint(self, user_id: str) -> str | None:
        if self._shape is None:
            token = self.store.fingerprint()
            if token is None:
                return None
            shape = {
                "mapping": MAPPING_VERSION,
                "input": token,
                "include_temporary": self.options.include_temporary,
                "max_conversations": self.options.max_conversations,
                "assets": self.assets.fingerprint() if self.assets.roots else None,
            }
            self._shape = digest(shape)
        return digest(self._shape, user_id)

    # -- reading ------------------------------------------------------------------------

    def read(self, scope: Scope, cursor: Any = None) -> Iterator[tuple[list[Record | Reject], Any]]:
        user_id = scope.name.split(":", 1)[1]
        start = cursor.get("conversations", 0) if isinstance(cursor, dict) else 0
        emitted = cursor.get("emitted", 0) if isinstance(cursor, dict) else 0
        document = self.store.user(user_id)
        items: list[Record | Reject] = self._new_damage()
        if document is None:
            yield [*items, Reject(f"users _id {user_id}", "the user is no longer in the input")], None
            return
        items.append(mapping.user_record(self.record, user_id, document))
        tally = Tally()
        shares = self.store.shares(user_id)
        known: set[str] = set()
        files_done: set[str] = set()
        limit = self.options.max_conversations
        limited = False
        for bundle in self.store.conversations(user_id, start):
            items += self._new_damage()
            if isinstance(bundle, Reject):
                items.append(bundle)
                continue
            conversation_id = str(bundle.document["conversationId"])
            known.add(conversation_id)
            if bundle.document.get("isTemporary") and not self.options.include_temporary:
                tally.temporary_skipped += 1
                continue
            if limit is not None and emitted >= limit:
                limited = True
                break
            items += self._conversation(user_id, bundle, shares.get(conversation_id, []), files_done, tally)
            emitted += 1
            yield items, {"conversations": bundle.index + 1, "emitted": emitted}
            items = []
        if start == 0 and not limited:
            items += self._strays(user_id, known, tally)
        items += self._new_damage()
        self.context.log.info("librechat user read", user=user_id, **vars(tally))
        yield items, None

    def _conversation(
        self, user_id: str, bundle: Bundle, share_ids: list[str], files_done: set[str], tally: Tally
    ) -> list[Record | Reject]:
        result = mapping.conversation_records(
            self.record, user_id, bundle.document, bundle.messages, share_ids, bundle.location
        )
        tally.conversations += 1
        tally.messages += result.messages
        tally.orphans += result.orphans
        tally.branched += result.branched
        items = result.items
        wanted = [
            file_id for file_id in result.file_ids if mapping.file_key(user_id, file_id) not in files_done
        ]
        documents = self.store.files(wanted)
        for file_id in wanted:
            record = mapping.file_record(
                self.record,
                user_id,
                file_id,
                documents.get(file_id),
                result.file_ids[file_id],
                self.assets,
                self.context.blobs.put_file,
            )
            files_done.add(record.key)
            tally.files_missing += record.data["missing"] is not None
            items.append(record)
        return items

    def _strays(self, user_id: str, known: set[str], tally: Tally) -> list[Reject]:
        strays = self.store.stray_conversations(user_id, known)
        tally.stray_conversations = len(strays)
        return [
            Reject(
                f"messages of user {user_id}, conversationId {conversation_id}",
                f"{count} message(s) whose conversation document is missing: not migrated",
                # a pointer to the input: the messages stay where they are in the source
                {"user": user_id, "conversationId": str(conversation_id), "messages": count},
                key=mapping.conversation_key(user_id, str(conversation_id)),
            )
            for conversation_id, count in strays.items()
        ]

    def _new_damage(self) -> list[Reject]:
        damage = self.store.damage()
        new, self._reported = damage[self._reported :], len(damage)
        return new

    # -- facts --------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        facts = self.store.describe()
        if self.emails is not None:
            found = {str(user.get("email", "")).lower() for user in self.store.users(self.emails)}
            facts["users_requested"] = len(self.emails)
            facts["emails_not_found"] = sorted(self.emails - found)
        if self.assets.roots:
            facts["asset_roots"] = [str(root) for root in self.assets.roots]
            facts["asset_files"] = self.assets.count()
        return facts

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
