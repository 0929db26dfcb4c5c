"""ControllerExpectations (kube's ``controller_utils.go``): creates/deletes a controller issued and
has not yet seen through the watch. A key with outstanding expectations is not acted on again
until they are met or expire (TTL, 5 minutes by default). Synchronous, no I/O.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

EXPECTATIONS_TTL = 300.0


@dataclass(slots=True)
class _Expectation:
    add: int
    delete_keys: set[str] = field(default_factory=set)
    timestamp: float = 0.0


class Expectations:
    def __init__(self, ttl: float = EXPECTATIONS_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._by_key: dict[str, _Expectation] = {}

    def satisfied(self, key: str) -> bool:
        """True when nothing is outstanding, nothing was ever recorded, or the record expired."""
        e = self._by_key.get(key)
        if e is None:
            return True
        if e.add <= 0 and not e.delete_keys:
            return True
        return self._clock() - e.timestamp > self._ttl

    def expect_creations(self, key: str, n: int) -> None:
        self._by_key[key] = _Expectation(n, set(), self._clock())

    def expect_deletions(self, key: str, pod_keys: list[str]) -> None:
        self._by_key[key] = _Expectation(0, set(pod_keys), self._clock())

    def creation_observed(self, key: str) -> None:
        e = self._by_key.get(key)
        if e is not None and e.add > 0:
            e.add -= 1

    def lower_creations(self, key: str, n: int) -> None:
        e = self._by_key.get(key)
        if e is not None:
            e.add = max(0, e.add - n)

    def deletion_observed(self, key: str, pod_key: str) -> None:
        e = self._by_key.get(key)
        if e is not None:
            e.delete_keys.discard(pod_key)

    def delete(self, key: str) -> None:
        self._by_key.pop(key, None)

    def pending(self, key: str) -> tuple[int, int]:
        e = self._by_key.get(key)
        return (e.add, len(e.delete_keys)) if e else (0, 0)
