"""What an export contains: its tables (by full path), their schemas and era, the README,
``_tables``, ``_storage`` and the entries that were refused.

Layout (``npx convex export``; Convex's own importer accepts the same):

- ``README.md``; ``_tables/documents.jsonl`` (``{"name", "id"}`` per user table);
- ``<table>/documents.jsonl`` (one document per line; empty tables have an empty file)
  and ``<table>/generated_schema.jsonl``;
- ``_storage/documents.jsonl`` and ``_storage/<storageId>[.<ext>]`` with
  ``--include-file-storage``;
- ``_components/<name>/…``: a child component's tables, same layout, nestable. A table
  is named by its full path, so ``_components/agent/messages`` never collides with the
  app's ``messages``.

A ZIP whose entries all sit under one folder (an export unpacked and zipped again) is
read from inside that folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import orjson

from sources.convex.archive import ExportArchive
from sources.convex.encoding import ERA_A, ERA_UNKNOWN, TableDecoder, era_of_schema_line

DOCUMENTS = "documents.jsonl"
SCHEMA = "generated_schema.jsonl"
SYSTEM_TABLES = ("_tables", "_storage")
_STORAGE_BLOB = re.compile(r"^_storage/([^/.]+)(?:\.[^/]+)?$")


def component_prefix(component: str) -> str:
    """``agent`` → ``_components/agent/``; ``a/b`` → ``_components/a/_components/b/``."""
    parts = [part for part in component.strip("/").split("/") if part]
    return "".join(f"_components/{part}/" for part in parts)


def _root_of(names: list[str]) -> str:
    if "README.md" in names or f"_tables/{DOCUMENTS}" in names:
        return ""
    candidates = sorted(
        name[: -len(f"_tables/{DOCUMENTS}")]
        for name in names
        if name.endswith(f"/_tables/{DOCUMENTS}") and "_components/" not in name
    )
    return candidates[0] if candidates else ""


@dataclass
class Inventory:
    """Entries of an export grouped by meaning (names relative to the export's root)."""

    archive: ExportArchive
    root: str = ""
    tables: dict[str, str] = field(default_factory=dict)  # table path → documents entry
    schemas: dict[str, str] = field(default_factory=dict)  # table path → schema entry
    blobs: dict[str, str] = field(default_factory=dict)  # storage id → blob entry

    @classmethod
    def of(cls, archive: ExportArchive) -> Inventory:
        inventory = cls(archive, _root_of(archive.names))
        for name in archive.names:
            inventory._add(name)
        return inventory

    def _add(self, name: str) -> None:
        if not name.startswith(self.root):
            return
        relative = name[len(self.root) :]
        folder, _, leaf = relative.rpartition("/")
        blob = _STORAGE_BLOB.match(relative)
        if leaf == DOCUMENTS and folder:
            self.tables[folder] = name
        elif leaf == SCHEMA and folder:
            self.schemas[folder] = name
        elif blob and leaf != DOCUMENTS:
            self.blobs[blob.group(1)] = name

    def user_tables(self) -> list[str]:
        """Every table path except the system ones (``_tables``, ``_storage``)."""
        return sorted(path for path in self.tables if path.rpartition("/")[2] not in SYSTEM_TABLES)

    def entry(self, relative: str) -> str:
        return self.root + relative

    @property
    def readme(self) -> bool:
        return self.entry("README.md") in self.archive.names

    def listed_tables(self) -> list[str]:
        """Table names ``_tables/documents.jsonl`` declares (root component)."""
        entry = self.tables.get("_tables")
        if entry is None:
            return []
        names = []
        for _, line in self.archive.lines(entry):
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(row, dict) and isinstance(row.get("name"), str):
                names.append(row["name"])
        return names

    def era(self) -> tuple[str, list[str]]:
        """The export's era and a warning per table whose schema says another era."""
        eras: dict[str, list[str]] = {}
        for table, entry in sorted(self.schemas.items()):
            first = self.archive.first_line(entry)
            era = era_of_schema_line(first) if first is not None else ERA_UNKNOWN
            eras.setdefault(era, []).append(table)
        known = {era: tables for era, tables in eras.items() if era != ERA_UNKNOWN}
        if not known:
            return ERA_UNKNOWN, []
        main = max(known, key=lambda era: len(known[era]))
        warnings = [
            f"{table}: generated_schema.jsonl says era {era}, the export is era {main}"
            for era, tables in known.items()
            if era != main
            for table in tables
        ]
        return main, warnings

    def decoder(self, table: str, era: str) -> TableDecoder:
        """A decoder for one table: era B needs nothing, era A its shape and hints."""
        entry = self.schemas.get(table)
        if era != ERA_A or entry is None:
            return TableDecoder(era)
        shape_text: str | None = None
        hints: dict = {}
        for number, (_, line) in enumerate(self.archive.lines(entry)):
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if number == 0:  # line 1: the shape; then one hint line per ambiguous document
                shape_text = value if isinstance(value, str) else None
            elif isinstance(value, dict):
                hints.update(value)
        return TableDecoder(era, shape_text, hints)

    def count_lines(self, table: str) -> int:
        """Documents of a table without parsing them (non-blank lines)."""
        return sum(1 for _ in self.archive.lines(self.tables[table]))
