"""Named points where tests make the process fail on purpose.

``CHATLEDGER_FAILPOINTS="extract.commit.before=3:kill,replay.apply=1:sleep=5"`` makes the
3rd pass through ``extract.commit.before`` SIGKILL the process and the 1st pass through
``replay.apply`` sleep 5 seconds. Actions: ``kill``, ``raise``, ``sleep=SECONDS``,
``wait=PATH`` (sleep until the file PATH exists, at most two minutes: a test holds the
process there for as long as its checks take, however slow the machine).
Unset, a failpoint costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from pathlib import Path

_plan: dict[str, tuple[int, str]] = {}
for item in filter(None, os.environ.get("CHATLEDGER_FAILPOINTS", "").split(",")):
    name, _, rest = item.partition("=")
    hit, _, action = rest.partition(":")
    _plan[name.strip()] = (int(hit), action or "kill")
_hits: Counter[str] = Counter()


class InjectedFailure(RuntimeError):
    pass


def failpoint(name: str) -> None:
    if name not in _plan:
        return
    _hits[name] += 1
    hit, action = _plan[name]
    if _hits[name] != hit:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif action == "raise":
        raise InjectedFailure(f"failpoint {name} (hit {hit})")
    elif action.startswith("sleep="):
        time.sleep(float(action.split("=", 1)[1]))
    elif action.startswith("wait="):
        _wait_for(Path(action.split("=", 1)[1]))


def _wait_for(path: Path, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
