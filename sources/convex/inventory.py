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

from ledger.kit import ChatledgerError
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

    def listed_tables(self, prefix: str = "") -> list[str]:
        """Table names the ``_tables`` of a component (``prefix``; root: "") declares."""
        return list(self.table_numbers(prefix))

    def table_numbers(self, prefix: str = "") -> dict[str, int | None]:
        """name → table number from ``<prefix>_tables/documents.jsonl``.

        Convex's importer refuses a ``_tables`` that gives one number to two tables, and
        so does this reader: the documents' ids would be ambiguous. One name with two
        numbers is refused for the same reason."""
        entry = self.tables.get(prefix + "_tables")
        if entry is None:
            return {}
        numbers: dict[str, int | None] = {}
        owners: dict[int, str] = {}
        for number, line in self.archive.lines(entry):
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if not isinstance(row, dict) or not isinstance(row.get("name"), str):
                continue
            name, table_number = row["name"], row.get("id")
            if not isinstance(table_number, int) or isinstance(table_number, bool):
                table_number = None
            if name in numbers and numbers[name] != table_number:
                raise ChatledgerError(
                    f"{self.archive.path}: {entry} line {number} gives table {name!r} the number "
                    f"{table_number}, an earlier line gave it {numbers[name]}: refused (Convex's "
                    "importer refuses conflicting table numbers too)"
                )
            if table_number is not None and owners.setdefault(table_number, name) != name:
                raise ChatledgerError(
                    f"{self.archive.path}: {entry} line {number} gives table number {table_number} "
                    f"to both {owners[table_number]!r} and {name!r}: refused (Convex's importer "
                    "refuses conflicting table numbers too)"
                )
            numbers[name] = table_number
        return numbers

    def check(self, prefix: str) -> list[str]:
        """Refuse an export with nothing to read; return why it cannot prove it is whole.

        An export that holds no table at all (an empty ZIP or folder, a README alone) is
        refused: read as complete, it would delete every record. Every ``_tables`` is
        checked for conflicting numbers. What comes back names what is missing: no
        ``_tables`` for the component read, a table it lists without its documents
        file, a documents file that was refused. Such an export is read, but nothing is
        deleted because of it."""
        if not any(path.rpartition("/")[2] != "_tables" for path in self.tables):
            raise ChatledgerError(
                f"{self.archive.path}: no <table>/{DOCUMENTS} in this export "
                f"({len(self.archive.names)} entries): empty or not a Convex export; nothing read"
            )
        for path in self.tables:
            if path.rpartition("/")[2] == "_tables":
                self.table_numbers(path[: -len("_tables")])
        gaps = []
        listing = prefix + "_tables"
        if listing not in self.tables:
            gaps.append(f"no {listing}/{DOCUMENTS}: the export cannot show that no table is missing")
        for name in self.listed_tables(prefix):
            if prefix + name not in self.tables:
                gaps.append(
                    f"{listing}/{DOCUMENTS} lists {name!r}, the export has no {prefix}{name}/{DOCUMENTS}"
                )
        for refused in self.archive.refused:
            if refused["entry"].endswith(DOCUMENTS):
                gaps.append(f"the documents of {refused['entry']!r} were refused: {refused['reason']}")
        return gaps

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
