"""Every sink × backend the contract suite runs against (a ``TargetCase`` each).

A case knows how to prepare a fresh target, build the sink on it, dump the whole target
(everything the sink or anyone else could have written, for byte-for-byte comparisons),
edit one unit by hand (verify must see it), and add a row of its own that is not the
sink's (``replace --truncate`` must leave it).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text

from examples.plugins.folder_sink import FolderOptions, FolderSink
from ledger.kit import SinkContext
from ledger.lookups import Lookups
from ledger.sql_target import target_engine
from sinks.bundle import BundleOptions, BundleSink
from sinks.cherry_v2 import CherryV2Options, CherryV2Sink
from sinks.laravel import LaravelOptions, LaravelSink
from sinks.mongo_toolkit import MongoToolkitOptions, MongoToolkitSink
from sinks.onyx import OnyxSink
from sinks.onyx.options import OnyxOptions
from sinks.sql import SqlOptions, SqlSink
from tests.cherry.harness import app_database
from tests.convex_laravel.harness import create_tables
from tests.librechat_onyx.onyx import API_KEY, OnyxApi, load_onyx

FOREIGN_TABLE = "operator_notes"


@dataclass
class Target:
    """One prepared target: where it is, and the case's operations bound to it."""

    case: TargetCase
    where: str
    scratch: Path  # a folder of the test's own (credential files and the like)
    api: Any = None

    def sink(self, ledger, name: str = "out", **options: Any):
        return self.case.make(self, ledger, name, **options)

    def dump(self) -> dict[str, Any]:
        return self.case.dump(self)

    def edit(self) -> None:
        self.case.edit(self)

    def add_foreign(self) -> None:
        self.case.add_foreign(self)


@dataclass
class TargetCase:
    name: str
    prepare: Callable[[Any, Path], Target]  # (pytest request, tmp_path) → a fresh target
    make: Callable[..., Any]
    dump: Callable[[Target], dict[str, Any]]
    edit: Callable[[Target], None]
    add_foreign: Callable[[Target], None]


# -- SQL targets ----------------------------------------------------------------------


def sql_dump(target: Target) -> dict[str, list[tuple]]:
    """Every row of every table, as sorted text tuples."""
    engine = target_engine(target.where)
    quote = engine.dialect.identifier_preparer.quote
    with engine.connect() as conn:
        names = sorted(inspect(conn).get_table_names())
        out = {
            name: sorted(
                tuple(str(v) for v in row) for row in conn.execute(text(f"SELECT * FROM {quote(name)}"))
            )
            for name in names
        }
    engine.dispose()
    return out


def sql_execute(target: Target, *statements: str) -> None:
    engine = target_engine(target.where)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()


def add_foreign_table(target: Target) -> None:
    sql_execute(
        target,
        f"CREATE TABLE {FOREIGN_TABLE} (note VARCHAR(100))",
        f"INSERT INTO {FOREIGN_TABLE} VALUES ('not the sink''s')",
    )


def database(request, tmp_path: Path, dialect: str) -> str:
    if dialect == "sqlite":
        return f"sqlite:///{tmp_path / 'target.db'}"
    return request.getfixturevalue(f"{dialect}_database")


def _sql_case(dialect: str) -> TargetCase:
    return TargetCase(
        f"sql-{dialect}",
        prepare=lambda request, tmp_path: Target(
            CASES[f"sql-{dialect}"], database(request, tmp_path, dialect), tmp_path
        ),
        make=lambda target, ledger, name, **o: SqlSink(
            SqlOptions(url=target.where, **o), SinkContext(name, ledger.blobs)
        ),
        dump=sql_dump,
        edit=lambda target: sql_execute(
            target, "UPDATE messages SET text = 'edited by hand' WHERE key = (SELECT min(key) FROM messages)"
        ),
        add_foreign=add_foreign_table,
    )


def _laravel_case(dialect: str) -> TargetCase:
    def prepare(request, tmp_path):
        return Target(
            CASES[f"laravel-{dialect}"], create_tables(database(request, tmp_path, dialect)), tmp_path
        )

    return TargetCase(
        f"laravel-{dialect}",
        prepare=prepare,
        make=lambda target, ledger, name, **o: LaravelSink(
            LaravelOptions(url=target.where, **o), SinkContext(name, ledger.blobs, lookups=Lookups(ledger))
        ),
        dump=sql_dump,
        edit=lambda target: sql_execute(
            target,
            "UPDATE threads SET title = 'edited by hand' WHERE id = (SELECT id FROM "
            "(SELECT min(id) AS id FROM threads) AS first)",
        ),
        add_foreign=add_foreign_table,
    )


def _onyx_prepare(request, tmp_path: Path) -> Target:
    url = request.getfixturevalue("postgres_database")
    load_onyx(url)
    api = OnyxApi(url)
    api.__enter__()
    request.addfinalizer(lambda: api.__exit__(None, None, None))
    return Target(CASES["onyx-postgres"], url, tmp_path, api)


ONYX = TargetCase(
    "onyx-postgres",
    prepare=_onyx_prepare,
    make=lambda target, ledger, name, **o: OnyxSink(
        OnyxOptions(
            db_url=target.where,
            api_base=target.api.base,
            api_key=API_KEY,
            credentials_file=target.scratch / "onyx-credentials.jsonl",
            **o,
        ),
        SinkContext(name, ledger.blobs, lookups=Lookups(ledger)),
    ),
    dump=sql_dump,
    edit=lambda target: sql_execute(
        target,
        "UPDATE chat_message SET message = 'edited by hand' WHERE id = "
        "(SELECT max(id) FROM chat_message WHERE message_type = 'USER')",
    ),
    add_foreign=add_foreign_table,
)


# -- files ----------------------------------------------------------------------------


def folder_dump(target: Target) -> dict[str, Any]:
    """Every file (path → bytes) and every folder under the bundle's root."""
    root = Path(target.where)
    out: dict[str, Any] = {}
    for path in sorted(root.rglob("*")) if root.exists() else []:
        relative = str(path.relative_to(root))
        out[relative] = path.read_bytes() if path.is_file() else "<folder>"
    return out


def _bundle_edit(target: Target) -> None:
    conversations = sorted(Path(target.where).rglob("conversations.jsonl"))
    path = conversations[0]
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[0] = lines[0].replace('"title":', '"title":"edited by hand","was":', 1)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _bundle_foreign(target: Target) -> None:
    root = Path(target.where)
    root.mkdir(parents=True, exist_ok=True)
    (root / "operator-notes.txt").write_text("not the sink's\n")


BUNDLE = TargetCase(
    "bundle",
    prepare=lambda request, tmp_path: Target(CASES["bundle"], str(tmp_path / "bundle"), tmp_path),
    make=lambda target, ledger, name, **o: BundleSink(
        BundleOptions(path=Path(target.where), **o), SinkContext(name, ledger.blobs)
    ),
    dump=folder_dump,
    edit=_bundle_edit,
    add_foreign=_bundle_foreign,
)

# -- document stores ----------------------------------------------------------------------


def _mongo_prepare(request, tmp_path: Path) -> Target:
    database = request.getfixturevalue("mongo_database")
    return Target(CASES["mongo-toolkit"], database.name, tmp_path, database)


def _mongo_dump(target: Target) -> dict[str, Any]:
    """Every document of every collection; the run named in a marker left out (a resync
    rewrites the same content in a new run), as the SQL dumps leave the markers out."""
    with target.api.client() as client:
        database = client[target.where]
        out = {}
        for name in sorted(database.list_collection_names()):
            documents = []
            for document in database[name].find():
                if isinstance(document.get("chatledger"), dict):
                    document["chatledger"].pop("run", None)
                documents.append(repr(sorted(document.items())))
            out[name] = sorted(documents)
        return out


def _mongo_edit(target: Target) -> None:
    with target.api.client() as client:
        conversations = client[target.where].conversations
        first = conversations.find_one({}, sort=[("_id", 1)])
        conversations.update_one({"_id": first["_id"]}, {"$set": {"title": "edited by hand"}})


def _mongo_foreign(target: Target) -> None:
    with target.api.client() as client:
        client[target.where][FOREIGN_TABLE].insert_one({"note": "not the sink's"})


MONGO = TargetCase(
    "mongo-toolkit",
    prepare=_mongo_prepare,
    make=lambda target, ledger, name, **o: MongoToolkitSink(
        MongoToolkitOptions(uri=target.api.uri, database=target.where, create_missing_users=True, **o),
        SinkContext(name, ledger.blobs, lookups=Lookups(ledger)),
    ),
    dump=_mongo_dump,
    edit=_mongo_edit,
    add_foreign=_mongo_foreign,
)

FOLDER_EXAMPLE = TargetCase(
    "folder-example",
    prepare=lambda request, tmp_path: Target(CASES["folder-example"], str(tmp_path / "records"), tmp_path),
    make=lambda target, ledger, name, **o: FolderSink(
        FolderOptions(path=Path(target.where), **o), SinkContext(name, ledger.blobs)
    ),
    dump=folder_dump,
    edit=lambda target: next(Path(target.where, "message").glob("*.json")).write_text('{"edited": true}'),
    add_foreign=_bundle_foreign,
)


def _cherry_dump(target: Target) -> dict[str, Any]:
    """The v2 database's rows; the FTS shadow tables are left out (their segments keep
    delete records: the cherry tests check the index with FTS5's integrity-check)."""
    return {name: rows for name, rows in sql_dump(target).items() if "_fts" not in name}


CHERRY_V2 = TargetCase(
    "cherry-v2",
    prepare=lambda request, tmp_path: Target(
        CASES["cherry-v2"], f"sqlite:///{app_database(tmp_path / 'cherrystudio.sqlite')}", tmp_path
    ),
    make=lambda target, ledger, name, **o: CherryV2Sink(
        CherryV2Options(path=Path(target.where.removeprefix("sqlite:///")), **o),
        SinkContext(name, ledger.blobs),
    ),
    dump=_cherry_dump,
    edit=lambda target: sql_execute(
        target, "UPDATE topic SET name = 'edited by hand' WHERE id = (SELECT min(id) FROM topic)"
    ),
    add_foreign=add_foreign_table,
)

CASES: dict[str, TargetCase] = {
    case.name: case
    for case in [
        _sql_case("sqlite"),
        _sql_case("postgres"),
        BUNDLE,
        _laravel_case("sqlite"),
        _laravel_case("postgres"),
        _laravel_case("mariadb"),
        ONYX,
        MONGO,
        FOLDER_EXAMPLE,
        CHERRY_V2,
    ]
}
#: a quick subset for local runs: CHATLEDGER_CONTRACT_TARGETS=sql-sqlite,bundle
SELECTED = [name for name in os.environ.get("CHATLEDGER_CONTRACT_TARGETS", "").split(",") if name] or list(
    CASES
)
