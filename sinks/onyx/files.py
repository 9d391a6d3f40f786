"""Ledger files as Onyx uploads, owned by their user.

- **Upload** through ``POST /user/projects/file/upload`` (multipart ``files``, the
  original filename and MIME type; one file a request, up to ``api_concurrency`` at
  once): Onyx creates the ``file_record`` (origin ``USER_FILE``) and the ``user_file``.
  A 2xx is not proof: both rows must then exist.
  An upload made with an admin API key belongs to the key's service account, so the
  ``user_file`` is given to the file's owner in the batch's transaction.
- **Identity.** Onyx picks the ids, so right after an upload (in a statement of its
  own, committed before the batch's transaction; it also proves the rows exist) the
  ``file_record.file_metadata`` gets a ``chatledger`` tag ``{target, stream, key, sha256, chat_file_type}``. A re-run, a retry
  after a failed batch or a replay after a crash finds the tagged upload and reuses it
  instead of uploading twice (check before create: one look-up per stream and batch).
- **Type.** The descriptor type is Onyx's own ``chat_file_type`` answer when it is one of
  this Onyx's ChatFileType values, else derived from the MIME type.
- **Changes.** New bytes upload a new file; messages that pointed at the old one are
  re-pointed and the old rows removed, in the batch's transaction. A file the ledger
  says is ``missing`` (no bytes), a file without an owner and a file of a user with no
  account are not uploaded and get no descriptor: each is a skip with its reason
  (``files_skipped_missing``, ``files_skipped_no_owner``, ``files_skipped_owner``).
- **Removal** deletes the ``user_file`` and ``file_record`` rows (and a Postgres large
  object in ``file_content``). Bytes in an S3/MinIO file store cannot be reached from
  here and stay there.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg.types.json import Jsonb

from ledger.kit import Item, Outcome, PermanentError
from sinks.onyx.readback import TAG
from sinks.onyx.render import FileRef

REJECTED_KEYS = ("rejected_files", "non_accepted_files", "unsupported_files")


@dataclass
class Upload:
    """A tagged upload in Onyx."""

    ref: FileRef
    sha256: str | None
    owner: str | None


@dataclass
class FileWork:
    """What a live file item needs inside the transaction."""

    item: Item
    owner: str
    upload: Upload
    replaces: Upload | None  # an older upload of the same key to re-point from and remove


class Files:
    def __init__(self, sink) -> None:
        self.sink = sink

    # -- finding uploads ---------------------------------------------------------------------

    def tagged(self, cursor, stream: str, keys: list[str]) -> dict[str, Upload]:
        """The uploads chatledger made for these file keys of ``stream``."""
        if not keys:
            return {}
        cursor.execute(
            f"SELECT fr.file_id, fr.file_metadata -> '{TAG}', uf.id::text, uf.name, uf.user_id::text "
            "FROM file_record fr JOIN user_file uf ON uf.file_id = fr.file_id "
            f"WHERE fr.file_metadata -> '{TAG}' ->> 'target' = %s AND fr.file_metadata -> '{TAG}' ->> 'stream' = %s "
            f"AND fr.file_metadata -> '{TAG}' ->> 'key' = ANY(%s) ORDER BY fr.created_at, fr.file_id",
            (self.sink.target, stream, keys),
        )
        found: dict[str, Upload] = {}
        for file_id, tag, user_file_id, name, owner in cursor.fetchall():
            ref = FileRef(tag["key"], file_id, user_file_id, tag.get("chat_file_type"), name)
            found[tag["key"]] = Upload(ref, tag.get("sha256"), owner)
        return found

    def refs(self, cursor, wanted: dict[str, set[str]]) -> dict[str, FileRef]:
        """file key → FileRef, for the keys of each stream that have an upload."""
        found: dict[str, FileRef] = {}
        for stream, keys in wanted.items():
            found.update(
                {key: upload.ref for key, upload in self.tagged(cursor, stream, sorted(keys)).items()}
            )
        return found

    # -- before the transaction: uploads -------------------------------------------------------

    def prepare(self, cursor, items: list[Item]) -> tuple[list[FileWork], list[Outcome], list[Item]]:
        """Upload what is missing. Returns the work for the transaction, the outcomes of
        files that need no upload (missing bytes, skipped owners), and the items whose
        uploads are to be removed."""
        outcomes, removals, live = [], [], []
        for item in items:
            if item.removed:
                removals.append(item)
                continue
            why = self._not_uploaded(item)
            if why:
                removals.append(item)  # an upload made before the bytes went missing goes
                outcomes.append(Outcome.skip(item, why))
                continue
            live.append(item)
        held = self._held(cursor, live)
        stale = [
            item
            for item in live
            if getattr(held.get((item.stream, item.key)), "sha256", None) != item.data["sha256"]
        ]
        uploads = self.sink.concurrently(self._upload, stale)
        fresh = dict(zip([(item.stream, item.key) for item in stale], uploads, strict=True))
        work = []
        for item in live:
            owner = self.sink.owners.get(item.stream, item.data["owner"])["user_id"]
            old, new = held.get((item.stream, item.key)), fresh.get((item.stream, item.key))
            work.append(FileWork(item, owner, new, old) if new else FileWork(item, owner, old, None))
        return work, outcomes, removals

    def _held(self, cursor, items: list[Item]) -> dict[tuple[str, str], Upload]:
        """(stream, key) → the upload chatledger made for it, of these items that have one."""
        found: dict[tuple[str, str], Upload] = {}
        for stream in dict.fromkeys(item.stream for item in items):
            keys = [item.key for item in items if item.stream == stream]
            found.update({(stream, key): upload for key, upload in self.tagged(cursor, stream, keys).items()})
        return found

    def _not_uploaded(self, item: Item) -> str | None:
        """Why a live file is not uploaded (None: it is): Onyx uploads belong to a user and
        need bytes. Each reason is counted."""
        owner_key = item.data.get("owner")
        if not isinstance(owner_key, str) or not owner_key:
            self.sink.count("files_skipped_no_owner")
            return "a file without an owner (Onyx uploads belong to a user)"
        owner = self.sink.owners.get(item.stream, owner_key)
        if owner is None:
            raise PermanentError(f"{item.key}: its owner {owner_key} has no Onyx account yet")
        if owner.get("skipped"):
            self.sink.count("files_skipped_owner")
            return f"its owner {owner['email'] or owner_key} has no account"
        if not item.data.get("sha256"):
            self.sink.count("files_skipped_missing")
            return item.data.get("missing") or "no bytes"
        return None

    def _upload(self, cursor, item: Item) -> Upload:
        data = item.data
        path = self.sink.context.blobs.path(data["sha256"])
        if not path.is_file():
            raise PermanentError(
                f"{item.key}: blob sha256:{data['sha256']} is not in the ledger's blob store"
            )
        name = data.get("filename") or data["sha256"]
        mime = data.get("mime") or "application/octet-stream"
        with open(path, "rb") as handle:
            answer = self.sink.api().json(
                "POST", "/user/projects/file/upload", files={"files": (name, handle, mime)}
            )
        rejected = [entry for field in REJECTED_KEYS for entry in answer.get(field) or []]
        uploaded = answer.get("user_files") or []
        if rejected or len(uploaded) != 1:
            raise PermanentError(
                f"{item.key}: Onyx did not accept the upload of {name!r}: {rejected or answer}"
            )
        entry = uploaded[0]
        file_id, user_file_id = str(entry.get("file_id")), str(entry.get("id"))
        kind = entry.get("chat_file_type")
        schema = self.sink.schema
        kind = kind if kind in schema.file_types else schema.chat_file_type(mime)
        tag = {
            "target": self.sink.target,
            "stream": item.stream,
            "key": item.key,
            "sha256": data["sha256"],
            "chat_file_type": kind,
        }
        found = self.sink.tag_upload(cursor, file_id, user_file_id, tag)
        if found is None:
            raise PermanentError(
                f"{item.key}: the upload answered 2xx, but user_file {user_file_id} is not in Onyx"
            )
        self.sink.count_done("files_uploaded")
        name, owner = found
        return Upload(FileRef(item.key, file_id, user_file_id, kind, name), data["sha256"], owner)

    # -- inside the transaction ---------------------------------------------------------------

    def write(self, cursor, work: list[FileWork]) -> list[Outcome]:
        outcomes = []
        for entry in work:
            ref = entry.upload.ref
            cursor.execute(
                "UPDATE user_file SET user_id = %s::uuid WHERE id = %s::uuid AND user_id IS DISTINCT FROM %s::uuid",
                (entry.owner, ref.user_file_id, entry.owner),
            )
            if entry.replaces is not None:
                self._repoint(cursor, entry.replaces.ref, ref)
                self._delete(cursor, [entry.replaces.ref])
            item = entry.item
            if item.changed:
                target_ref = {
                    "file_id": ref.file_id,
                    "user_file_id": ref.user_file_id,
                    "type": ref.chat_file_type,
                }
                outcomes.append(Outcome.written(item, target_ref))
        return outcomes

    def remove(self, cursor, items: list[Item]) -> list[Outcome]:
        """Remove the uploads of removed items (and of files whose bytes went missing)."""
        outcomes = []
        for stream in {item.stream for item in items}:
            keys = [item.key for item in items if item.stream == stream]
            self._delete(cursor, [upload.ref for upload in self.tagged(cursor, stream, keys).values()])
        for item in items:
            if item.removed and item.held_hash is not None:
                outcomes.append(Outcome.written(item, item.held_ref))
        return outcomes

    def _repoint(self, cursor, old: FileRef, new: FileRef) -> None:
        """Descriptors that point at ``old`` point at ``new``."""
        cursor.execute(
            "UPDATE chat_message SET files = (SELECT jsonb_agg(CASE WHEN d ->> 'id' = %s THEN %s::jsonb ELSE d END) "
            "FROM jsonb_array_elements(files) d) WHERE files @> %s::jsonb",
            (old.file_id, Jsonb(new.descriptor()), Jsonb([{"id": old.file_id}])),
        )

    def _delete(self, cursor, refs: list[FileRef]) -> None:
        if not refs:
            return
        file_ids = [ref.file_id for ref in refs]
        if self.sink.schema.file_content:
            cursor.execute(
                "SELECT lo_unlink(lobj_oid) FROM file_content WHERE file_id = ANY(%s)", (file_ids,)
            )
        cursor.execute("DELETE FROM user_file WHERE file_id = ANY(%s)", (file_ids,))
        cursor.execute("DELETE FROM file_record WHERE file_id = ANY(%s)", (file_ids,))
        self.sink.count("files_removed", len(refs))
