"""A sink writing one JSON file per record: the skeleton of a new sink.

``<path>/<kind>/<sha256 of stream and key>.json`` holds the record's canonical data.
It carries users, conversations and messages (other kinds are skipped by the engine,
visibly); a message without text is skipped by this sink, with its reason. Files are
replaced atomically; there are no markers, so exactly-once rests on the deterministic
file names, and verify reads every file back.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ledger.kit import Item, Outcome, Sink, Unit, canonical_text, digest, message_text, option


@dataclass
class FolderOptions:
    path: Path = option(help="The folder the records are written to.")


class FolderSink(Sink):
    type_name = "folder-example"
    Options = FolderOptions
    unit = "record"
    kinds = ("user", "conversation", "message")
    capabilities = frozenset({"branches", "verify"})

    def file(self, item: Item) -> Path:
        return self.options.path / item.kind / f"{digest(item.stream, item.key)}.json"

    def apply(self, units: list[Unit], run_id: int, *, truncate: bool = False) -> list[Outcome]:
        outcomes = []
        for item in (item for unit in units for item in unit.items if item.changed):
            path = self.file(item)
            if item.removed:
                path.unlink(missing_ok=True)
                if not any(path.parent.iterdir()):
                    path.parent.rmdir()  # rollback leaves the folder as it found it
            elif item.kind == "message" and not message_text(item.data):
                outcomes.append(Outcome.skip(item, "a message without text has no file here"))
                continue
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                part = path.with_suffix(".part")
                part.write_text(canonical_text(item.data), encoding="utf-8")
                os.replace(part, path)  # atomic: a crash leaves the old file or the new one
            outcomes.append(Outcome.written(item, {"file": str(path.relative_to(self.options.path))}))
        return outcomes

    def fingerprint(self, unit: Unit) -> str:
        return digest(unit.items[0].data)

    def read_back(self, units: list[Unit]) -> dict[str, str | None]:
        found = {}
        for unit in units:
            path = self.file(unit.items[0])
            found[unit.key] = digest(json.loads(path.read_text(encoding="utf-8"))) if path.exists() else None
        return found
