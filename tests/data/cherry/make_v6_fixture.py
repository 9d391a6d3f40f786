"""Make the v6 direct-backup fixture (``v6/``) with a real Chromium.

A v1.8.1+ Cherry Studio backup copies the app's Chromium profile folders ``IndexedDB/``
and ``Local Storage/`` next to a ``metadata.json``. This script has Debian's headless
Chromium open a local page (``file://``, the origin Cherry Studio's renderer runs on) that
creates the Dexie database ``CherryStudio`` with the app's tables (``topics``, ``files``,
``message_blocks`` and the indexes Dexie declares; written with the plain IndexedDB API
in Dexie's layout: object stores keyed by ``id``, database version = Dexie version × 10)
and stores the triple-encoded Redux state under ``persist:cherry-studio`` in
localStorage, then copies the two folders out of the profile.

    apt-get install -y chromium
    python tests/data/cherry/make_v6_fixture.py

The result is committed, so tests need no browser. The rows are ``tests.cherry.data``'s
``rich()`` backup (its Redux slice and Dexie tables).
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).parent
OUT = HERE / "v6"
sys.path.insert(0, str(HERE.parents[2]))

from tests.cherry import data  # noqa: E402

PAGE = """<!doctype html><title>cherry v6 fixture</title><script>
const backup = %s;
localStorage.setItem('persist:cherry-studio', backup.localStorage['persist:cherry-studio']);
const open = indexedDB.open('CherryStudio', 100);
open.onupgradeneeded = () => {
  const db = open.result;
  db.createObjectStore('topics', {keyPath: 'id'});
  db.createObjectStore('files', {keyPath: 'id'}).createIndex('name', 'name');
  const blocks = db.createObjectStore('message_blocks', {keyPath: 'id'});
  blocks.createIndex('messageId', 'messageId');
  blocks.createIndex('file.id', 'file.id');
  db.createObjectStore('settings', {keyPath: 'id'});
  db.createObjectStore('knowledge_notes', {keyPath: 'id'});
};
open.onsuccess = () => {
  const db = open.result;
  const tx = db.transaction(['topics', 'files', 'message_blocks', 'settings'], 'readwrite');
  const seen = new Set();  // IndexedDB keeps one row per id: the first, as the source does
  for (const table of ['topics', 'files', 'message_blocks', 'settings'])
    for (const row of backup.indexedDB[table])
      if (row.id && Array.isArray(row.messages ?? []) && !seen.has(table + row.id)) {
        seen.add(table + row.id);
        tx.objectStore(table).put(row);
      }
  tx.oncomplete = () => { db.close(); document.title = 'done'; };
};
</script>"""


def write_profile(page: Path, profile: Path) -> None:
    """Run Chromium on the page until its title says the writes committed, then stop it
    with SIGTERM so it shuts down cleanly (LevelDB logs flushed, locks released).
    ``--dump-dom`` is no use here: it returns before IndexedDB's own thread commits."""
    port = _free_port()
    browser = subprocess.Popen(
        [
            "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--no-first-run", f"--user-data-dir={profile}", f"--remote-debugging-port={port}",
            "--remote-debugging-address=127.0.0.1", page.as_uri(),
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=2) as answer:
                    if any(tab.get("title") == "done" for tab in json.load(answer)):
                        break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            raise SystemExit("the page did not finish writing within 60 s")
    finally:
        browser.send_signal(signal.SIGTERM)
        browser.wait(30)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    backup = data.rich()
    with tempfile.TemporaryDirectory() as work:
        page = Path(work) / "index.html"
        page.write_text(PAGE % json.dumps(backup))
        profile = Path(work) / "profile"
        write_profile(page, profile)
        if OUT.exists():
            shutil.rmtree(OUT)
        OUT.mkdir()
        for name in ("IndexedDB", "Local Storage"):
            shutil.copytree(profile / "Default" / name, OUT / name, ignore=shutil.ignore_patterns("LOCK"))
    metadata = {
        "version": 6,
        "timestamp": backup["time"],
        "appName": "Cherry Studio",
        "appVersion": "1.9.7",
        "platform": "linux",
        "arch": "x64",
    }
    (OUT / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    for name, body in data.ATTACHMENTS.items():
        (OUT / "Data" / "Files").mkdir(parents=True, exist_ok=True)
        (OUT / "Data" / "Files" / name).write_bytes(body)
    print(
        f"wrote {OUT}: " + ", ".join(str(p.relative_to(OUT)) for p in sorted(OUT.rglob("*")) if p.is_file())
    )


if __name__ == "__main__":
    main()
