"""v1.8.1+ direct backups (v6): ``metadata.json`` + the app's Chromium ``IndexedDB/`` and
``Local Storage/`` LevelDB folders (+ ``Data/Files``), as a folder or a ZIP.

Decoding uses ``dfindexeddb`` (Google's forensic IndexedDB/LevelDB reader, pure Python):
LevelDB tables and logs, Chromium's IndexedDB key encoding and Blink/V8 serialized values.
Only the newest version of each key counts (highest sequence number; a deletion removes
it). Rows of the Dexie database ``CherryStudio`` (``topics``, ``message_blocks``,
``files``) go to the index like ``data.json`` rows; ``persist:cherry-studio`` is read
from the localStorage LevelDB (values are UTF-16LE after a ``0`` byte, Latin-1 after a
``1``).

dfindexeddb 20260210 refuses V8 serialization versions above 15; Chromium ≥ 13x writes
version 16, whose changes do not touch the plain objects, arrays, strings and numbers the
app stores, so the limit is raised to 16 while reading (checked against the fixture made
by a real Chromium in tests/data/cherry/). Evaluated and not used: ``ccl_chromium_reader``
is not on PyPI; ``plyvel`` / ``leveldb`` bind the C++ LevelDB, which opens a database
only with Chromium's comparator and decodes neither keys nor values.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledger.kit import ChatledgerError

if TYPE_CHECKING:
    from sources.cherry.inputs import Index

DATABASE = "CherryStudio"
TABLES = ("topics", "message_blocks", "files")
PERSIST_SUFFIX = b"\x00\x01persist:cherry-studio"
V8_VERSION = 16


def _reader():
    try:
        from dfindexeddb import errors
        from dfindexeddb.indexeddb import types
        from dfindexeddb.indexeddb.chromium import record, v8
        from dfindexeddb.leveldb import record as leveldb
    except ImportError:
        raise ChatledgerError(
            "reading a v6 direct backup needs dfindexeddb: pip install 'chatledger[cherry-v6]' "
            "(its python-snappy build needs libsnappy-dev)"
        ) from None
    return record, v8, leveldb, types, errors


def read_direct_backup(index: Index, path: Path) -> None:
    metadata = _metadata((path / "metadata.json").read_bytes(), path / "metadata.json")
    index.version, index.time = metadata.get("version"), metadata.get("timestamp")
    folders = sorted((path / "IndexedDB").glob("*.indexeddb.leveldb"))
    if not folders:
        raise ChatledgerError(f"{path}/IndexedDB: no <origin>.indexeddb.leveldb folder (not a v6 backup)")
    for folder in folders:
        _read_indexeddb(index, folder)
    storage = path / "Local Storage" / "leveldb"
    if storage.is_dir():
        index.persist = _persisted_state(storage)


def read_direct_backup_zip(index: Index, archive: zipfile.ZipFile, path: Path) -> None:
    """The LevelDB reader needs files: the two folders are unpacked into a temporary
    directory (entry names checked), the attachments stay in the ZIP."""
    with tempfile.TemporaryDirectory(prefix="chatledger-cherry-v6-") as work:
        root = Path(work)
        for name in archive.namelist():
            if not name.startswith(("IndexedDB/", "Local Storage/", "metadata.json")) or name.endswith("/"):
                continue
            target = (root / name).resolve()
            if root.resolve() not in target.parents:
                raise ChatledgerError(f"{path}: entry {name!r} would leave the backup")
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(name) as source, open(target, "wb") as out:
                while chunk := source.read(1 << 20):
                    out.write(chunk)
        read_direct_backup(index, root)


def _metadata(body: bytes, where: Path) -> dict[str, Any]:
    try:
        metadata = json.loads(body)
    except ValueError as exc:
        raise ChatledgerError(f"{where}: not JSON: {exc}") from None
    if not isinstance(metadata, dict) or metadata.get("version") != 6:
        raise ChatledgerError(f"{where}: version {metadata.get('version')!r}, expected 6 (a direct backup)")
    return metadata


@contextmanager
def _v8_version(v8):
    before = v8.ValueDeserializer.LATEST_VERSION
    v8.ValueDeserializer.LATEST_VERSION = max(before, V8_VERSION)
    try:
        yield
    finally:
        v8.ValueDeserializer.LATEST_VERSION = before


def _read_indexeddb(index: Index, folder: Path) -> None:
    record, v8, leveldb, types, errors = _reader()
    db = index.db
    db.execute(
        "CREATE TABLE IF NOT EXISTS v6_rows (database INTEGER, store INTEGER, key TEXT, seq INTEGER, "
        "body BLOB, PRIMARY KEY (database, store, key))"
    )
    databases: dict[int, str] = {}
    stores: dict[tuple[int, int], str] = {}
    with _v8_version(v8):
        for raw in _records(leveldb, folder):
            try:
                parsed = record.ChromiumIndexedDBRecord.FromLevelDBRecord(
                    raw, parse_value=True, include_raw_data=False, blob_folder_reader=None, load_blobs=False
                )
            except (errors.ParserError, errors.DecoderError, NotImplementedError):
                index.other_tables["v6:undecodable_records"] = (
                    index.other_tables.get("v6:undecodable_records", 0) + 1
                )
                continue
            key = parsed.key
            if isinstance(key, record.DatabaseNameKey) and isinstance(parsed.value, int):
                databases[parsed.value] = key.database_name
            elif isinstance(key, record.ObjectStoreMetaDataKey) and key.metadata_type == 0:
                stores[(key.key_prefix.database_id, key.object_store_id)] = parsed.value
            elif isinstance(key, record.ObjectStoreDataKey):
                deleted = raw.record.record_type == 0 or parsed.value is None
                body = None if deleted else json.dumps(_plain(parsed.value.value, types))
                db.execute(
                    "INSERT INTO v6_rows VALUES (?, ?, ?, ?, ?) ON CONFLICT (database, store, key) "
                    "DO UPDATE SET seq = excluded.seq, body = excluded.body WHERE excluded.seq > v6_rows.seq",
                    (
                        key.key_prefix.database_id,
                        key.key_prefix.object_store_id,
                        json.dumps(_plain(key.encoded_user_key.value, types)),
                        raw.record.sequence_number,
                        body,
                    ),
                )
    wanted = {number for number, name in databases.items() if name == DATABASE}
    for (database, store), name in sorted(stores.items()):
        if database not in wanted:
            continue
        live = "FROM v6_rows WHERE database = ? AND store = ? AND body IS NOT NULL"
        if name not in TABLES:
            index.other_tables[name] = db.execute(f"SELECT count(*) {live}", (database, store)).fetchone()[0]
            continue
        for (body,) in db.execute(f"SELECT body {live} ORDER BY key", (database, store)):
            index.add(name, json.loads(body))
    db.execute("DELETE FROM v6_rows")


def _records(leveldb, folder: Path):
    """Every LevelDB record of a folder (tables and logs); the reader's notes about files
    it skips (CURRENT, LOG, MANIFEST) go nowhere."""
    notes = io.StringIO()
    records = iter(leveldb.FolderReader(folder).GetRecords(use_manifest=False, use_sequence_number=True))
    while True:
        with contextlib.redirect_stderr(notes):  # only while the reader's own code runs
            raw = next(records, None)
        if raw is None:
            return
        notes.seek(0)
        notes.truncate()
        yield raw


def _plain(value: Any, types) -> Any:
    """A decoded V8 value as JSON: arrays as lists, undefined dropped (as JSON.stringify)."""
    if isinstance(value, types.JSArray):
        return [_plain(v, types) for v in value.values]
    if isinstance(value, types.JSSet):
        return [_plain(v, types) for v in value.values]
    if isinstance(value, dict):
        return {str(k): _plain(v, types) for k, v in value.items() if not isinstance(v, types.Undefined)}
    if isinstance(value, (types.Null, types.Undefined)):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _persisted_state(folder: Path) -> str | None:
    """The newest ``persist:cherry-studio`` value in the localStorage LevelDB."""
    leveldb = _reader()[2]
    newest: tuple[int, bytes | None] | None = None
    for raw in _records(leveldb, folder):
        entry = raw.record
        if entry.key.endswith(PERSIST_SUFFIX) and (newest is None or entry.sequence_number > newest[0]):
            newest = (entry.sequence_number, None if entry.record_type == 0 else entry.value)
    if newest is None or newest[1] is None:
        return None
    value = newest[1]
    return value[1:].decode("utf-16-le") if value[:1] == b"\x00" else value[1:].decode("latin-1")
