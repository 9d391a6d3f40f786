"""``python -m ledger.bench read-alone LEDGER_URL USERS``: the reader alone of ``bench
extract``, in a process of its own (so its peak RSS and CPU time are its own)."""

import json
import sys

from ledger.bench.extract import read_alone

if sys.argv[1:2] != ["read-alone"] or len(sys.argv) != 4:
    sys.exit("usage: python -m ledger.bench read-alone LEDGER_URL USERS")
print(json.dumps(read_alone(sys.argv[2], int(sys.argv[3]))))
