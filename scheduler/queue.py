"""The scheduling queue: activeQ (priority, then arrival), backoffQ (1 s doubling to 10 s) and the
unschedulable pods, which cluster events (node added/updated, pod deleted) move back.

Mirrors kube-scheduler's ``PriorityQueue``: a pod that failed while a move request happened during
its cycle goes to backoff instead of waiting for the next event. All methods are non-blocking except
:meth:`SchedulingQueue.pop`, which waits for a pod.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Callable

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
MAX_IN_UNSCHEDULABLE = 300.0   # podMaxInUnschedulablePodsDuration


def _key(pod: dict[str, Any]) -> str:
    m = pod["metadata"]
    return f"{m.get('namespace', '')}/{m['name']}"


@dataclass(slots=True)
class QueuedPodInfo:
    pod: dict[str, Any]
    key: str
    initial_attempt: float           # when it entered the queue first (for the e2e latency)
    timestamp: float                 # when it was last (re)added
    attempts: int = 0
    cycle: int = 0                   # the scheduling cycle that last popped it
    unschedulable_plugins: set[str] = field(default_factory=set)

    @property
    def priority(self) -> int:
        return int((self.pod.get("spec") or {}).get("priority") or 0)

    def backoff_expiry(self, initial: float, maximum: float) -> float:
        d = initial * (2 ** max(0, self.attempts - 1))
        return self.timestamp + min(d, maximum)


class SchedulingQueue:
    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 initial_backoff: float = INITIAL_BACKOFF, max_backoff: float = MAX_BACKOFF) -> None:
        self._clock = clock
        self._initial = initial_backoff
        self._max = max_backoff
        self._seq = itertools.count()
        self._active: list[tuple[int, float, int, str]] = []
        self._backoff: list[tuple[float, int, str]] = []
        self._infos: dict[str, QueuedPodInfo] = {}       # every pod in active/backoff/unschedulable
        self._where: dict[str, str] = {}                  # key -> "active" | "backoff" | "unschedulable"
        self._in_flight: set[str] = set()
        self._unschedulable: set[str] = set()            # keys whose _where is "unschedulable"
        self._cycle = 0
        self._move_request_cycle = -1
        self._wake = asyncio.Event()
        self._closed = False
        self._last_unschedulable_scan = clock()

    # -- sizes (metric scheduler_pending_pods{queue}) -------------------------------------------------
    def pending(self) -> dict[str, int]:
        out = {"active": 0, "backoff": 0, "unschedulable": 0, "gated": 0}
        for w in self._where.values():
            out[w] += 1
        return out

    def __len__(self) -> int:
        return len(self._where)

    # -- adding ---------------------------------------------------------------------------------------
    def add(self, pod: dict[str, Any]) -> None:
        """A new pending pod (or one seen again after a relist): straight to activeQ."""
        key = _key(pod)
        now = self._clock()
        info = self._infos.get(key)
        if info is None:
            info = QueuedPodInfo(pod, key, now, now)
        else:
            info.pod = pod
        self._to_active(info)

    def update(self, pod: dict[str, Any]) -> None:
        """The pod changed: refresh it; an unschedulable one gets another try (its spec may now fit)."""
        key = _key(pod)
        info = self._infos.get(key)
        if info is None:
            if key not in self._in_flight:
                self.add(pod)
            return
        info.pod = pod
        if self._where.get(key) == "unschedulable":
            self._requeue(info)

    def delete(self, pod: dict[str, Any]) -> None:
        key = _key(pod)
        self._infos.pop(key, None)
        self._where.pop(key, None)   # heap entries are dropped lazily
        self._unschedulable.discard(key)

    def _to_active(self, info: QueuedPodInfo) -> None:
        self._unschedulable.discard(info.key)
        self._infos[info.key] = info
        self._where[info.key] = "active"
        heapq.heappush(self._active, (-info.priority, info.timestamp, next(self._seq), info.key))
        self._wake.set()

    def _to_backoff(self, info: QueuedPodInfo) -> None:
        self._unschedulable.discard(info.key)
        self._infos[info.key] = info
        self._where[info.key] = "backoff"
        heapq.heappush(self._backoff, (info.backoff_expiry(self._initial, self._max), next(self._seq), info.key))
        self._wake.set()

    def _requeue(self, info: QueuedPodInfo) -> None:
        if info.backoff_expiry(self._initial, self._max) > self._clock():
            self._to_backoff(info)
        else:
            self._to_active(info)

    def add_unschedulable(self, info: QueuedPodInfo, unschedulable_plugins: set[str] | None = None,
                          error: bool = False) -> None:
        """A pod that failed its cycle. It waits for a cluster event, unless one already happened
        while it was being scheduled (or it failed on an error): then it only backs off."""
        self._in_flight.discard(info.key)
        if self._closed:
            return
        info.timestamp = self._clock()
        info.unschedulable_plugins = set(unschedulable_plugins or ())
        if error or self._move_request_cycle >= info.cycle:
            self._to_backoff(info)
        else:
            self._infos[info.key] = info
            self._where[info.key] = "unschedulable"
            self._unschedulable.add(info.key)

    def done(self, key: str) -> None:
        """The pod's cycle ended in an assumption (binding follows): it leaves the queue."""
        self._in_flight.discard(key)

    # -- cluster events ---------------------------------------------------------------------------------
    def move_all_to_active_or_backoff(self, event: str = "") -> None:
        """A node was added/updated or a pod deleted: unschedulable pods get another chance."""
        for key in list(self._unschedulable):
            self._requeue(self._infos[key])
        self._move_request_cycle = self._cycle

    def flush(self) -> None:
        """Move due backoff pods to activeQ and long-waiting unschedulable pods back (periodic)."""
        now = self._clock()
        while self._backoff and self._backoff[0][0] <= now:
            _, _, key = heapq.heappop(self._backoff)
            if self._where.get(key) == "backoff":
                self._to_active(self._infos[key])
        if now - self._last_unschedulable_scan < 1.0:
            return
        self._last_unschedulable_scan = now
        for key in list(self._unschedulable):
            if now - self._infos[key].timestamp > MAX_IN_UNSCHEDULABLE:
                self._requeue(self._infos[key])

    # -- popping --------------------------------------------------------------------------------------
    def pop_nowait(self) -> QueuedPodInfo | None:
        self.flush()
        while self._active:
            _, _, _, key = heapq.heappop(self._active)
            if self._where.get(key) != "active":
                continue
            info = self._infos.pop(key)
            del self._where[key]
            info.attempts += 1
            self._cycle += 1
            info.cycle = self._cycle
            self._in_flight.add(key)
            return info
        return None

    async def pop(self) -> QueuedPodInfo | None:
        """Wait for the next pod; None once the queue is closed."""
        while not self._closed:
            info = self.pop_nowait()
            if info is not None:
                return info
            self._wake.clear()
            timeout = None
            if self._backoff:
                timeout = max(0.0, self._backoff[0][0] - self._clock())
            try:
                await asyncio.wait_for(self._wake.wait(), timeout if timeout is not None else 1.0)
            except TimeoutError:
                pass
        return None

    def close(self) -> None:
        self._closed = True
        self._wake.set()
