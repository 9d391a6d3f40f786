"""The files of a bundle folder: the contract between the ``bundle`` sink, which writes
them, and the ``bundle`` source, which reads them back (both get it from the kit)."""

RECORDS = "records.jsonl"  # every record as the ledger holds it, one per line
CONVERSATIONS = "conversations.jsonl"  # one line per conversation, with its messages
MANIFEST = "files_manifest.jsonl"  # one line per file, with its bytes' path and sha256
SUMMARY = "summary.json"  # the owner, its users and counts
RECORD_FIELDS = ("stream", "kind", "key", "data", "raw", "refs")  # the keys of a records.jsonl line
