"""``chatledger bench replay`` with the services only the tests have: a SecantusDB server
(a MongoDB wire-protocol server, not mongod) for mongo-toolkit, and an Onyx database
(Onyx's DDL) with the **simulated** Onyx API of tests/librechat_onyx/onyx.py for onyx.

    python -m tests.bench.sink_services --sink onyx-postgres --sink mongo-toolkit --messages 100000

Every other argument goes to ``chatledger bench replay`` as it is.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import psycopg

from tests.librechat_onyx.onyx import API_KEY, OnyxApi, load_onyx

SERVER = "postgresql://postgres@127.0.0.1:5432"


def main() -> int:
    import secantus

    database = f"chatledger_bench_onyx_{os.getpid()}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    url = f"{SERVER}/{database}"
    try:
        load_onyx(url)
        with tempfile.TemporaryDirectory(prefix="chatledger-secantus-") as storage, OnyxApi(url) as api:
            mongo = secantus.SecantusDBServer(storage_path=storage, cache_size="256M")
            mongo.start()
            try:
                command = [sys.executable, "-m", "ledger", "bench", "replay", "--mongo", mongo.uri,
                           "--onyx-db", url, "--onyx-api-base", api.base, "--onyx-api-key", "env:BENCH_ONYX_KEY",
                           *sys.argv[1:]]  # fmt: skip
                return subprocess.run(
                    command, env={**os.environ, "BENCH_ONYX_KEY": API_KEY}, check=False
                ).returncode
            finally:
                mongo.stop()
    finally:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    raise SystemExit(main())
