"""``chatledger bench``: speed and memory as ratios within one run (``figures``).

- ``extract``: extraction into fresh SQLite and Postgres ledgers, again unchanged, and the
  SQLite floor;
- ``sinks``: every sink against the fastest plain write of its own rows;
- ``rerun``: the first ``migrate`` of a stream against a no-op ``migrate`` after it.
"""

from ledger.bench.extract import extract_benchmark
from ledger.bench.sinks import TARGET_NAMES, Services, replay_benchmark

__all__ = ["TARGET_NAMES", "Services", "extract_benchmark", "replay_benchmark"]
