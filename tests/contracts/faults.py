"""A fault-injecting wrapper around any sink: the contract suite's hostile target.

``Faulty(sink, poison={unit key}, transient=0.3, seed=1)`` delegates everything to the
wrapped sink, but ``apply`` fails transiently at a seeded rate (a lost connection), and
permanently for any batch holding a poisoned unit, as a target refusing a bad row does:
the engine must narrow the failure down to that unit and land the rest.
"""

from __future__ import annotations

import random
from typing import Any

from ledger.kit import PermanentError, TransientError


class Faulty:
    def __init__(self, sink, *, poison: set[str] = frozenset(), transient: float = 0.0, seed: int = 1):
        self._sink = sink
        self._poison = set(poison)
        self._transient = transient
        self._chance = random.Random(seed)
        self.failures = {"transient": 0, "permanent": 0}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sink, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_") or name == "failures":
            object.__setattr__(self, name, value)
        else:
            setattr(self._sink, name, value)

    def apply(self, units, run_id, *, truncate=False):
        if self._chance.random() < self._transient:
            self.failures["transient"] += 1
            raise TransientError("connection reset by peer (injected)")
        poisoned = [unit.key for unit in units if unit.key in self._poison]
        if poisoned:
            self.failures["permanent"] += 1
            raise PermanentError(f"value too long for column (injected) in {poisoned[0]}")
        return self._sink.apply(units, run_id, truncate=truncate)
