"""Work queues with client-go's semantics: the queue of keys every controller's workers drain.

* :class:`WorkQueue` — an item is queued at most once (dedup); an item being processed (between
  :meth:`~WorkQueue.get` and :meth:`~WorkQueue.done`) is never handed to a second worker, and if it
  is added meanwhile it is queued again when ``done()`` is called.
* :class:`DelayingQueue` — adds :meth:`~DelayingQueue.add_after` (the earliest pending time wins).
* :class:`RateLimitingQueue` — adds :meth:`~RateLimitingQueue.add_rate_limited`, ``forget`` and
  ``num_requeues`` through a :class:`RateLimiter`; the default is client-go's
  ``DefaultControllerRateLimiter``: per-item exponential backoff 5 ms → 1000 s, and an overall token
  bucket of 10 qps with a burst of 100, the larger delay winning.

Metrics use client-go's names (``workqueue_depth``, ``workqueue_adds_total``, ``workqueue_retries_total``).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, Protocol, TypeVar

from prometheus_client import Counter, Gauge

from kubelite.api.errors import KubeliteError
from kubelite.metrics import WorkqueueTimer

T = TypeVar("T", bound=Hashable)

_DEPTH = Gauge("workqueue_depth", "Current depth of workqueue", ["name"])
_ADDS = Counter("workqueue_adds_total", "Total number of adds handled by workqueue", ["name"])
_RETRIES = Counter("workqueue_retries_total", "Total number of retries handled by workqueue", ["name"])


class ShutDown(KubeliteError):
    """Raised by :meth:`WorkQueue.get` once the queue is shut down and drained."""


class WorkQueue(Generic[T]):
    """A deduplicating FIFO of keys with a processing set (client-go ``workqueue.Type``)."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._queue: deque[T] = deque()
        self._dirty: set[T] = set()
        self._processing: set[T] = set()
        self._shutting_down = False
        self._ready = asyncio.Event()
        self._timer = WorkqueueTimer(name) if name else None
        self._set_depth()                     # a named queue's metrics exist from the start, as in client-go

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def add(self, item: T) -> None:
        """Queue ``item`` unless it is already queued (or hold it until ``done`` if being processed)."""
        if self._shutting_down or item in self._dirty:
            return
        if self.name:
            _ADDS.labels(self.name).inc()
        if self._timer is not None:
            self._timer.on_add(item)
        self._dirty.add(item)
        if item in self._processing:
            return
        self._queue.append(item)
        self._set_depth()
        self._wake()

    def _set_depth(self) -> None:
        if self.name:
            _DEPTH.labels(self.name).set(len(self._queue))

    def _wake(self) -> None:
        self._ready.set()

    async def get(self) -> T:
        """The next item, waiting for one; it stays "processing" until :meth:`done`.

        Raises:
            ShutDown: the queue was shut down (remaining items are still handed out first).
        """
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(f"work queue {self.name!r} is shut down")
            self._ready.clear()
            await self._ready.wait()
        item = self.get_nowait()
        assert item is not None
        return item

    def get_nowait(self) -> T | None:
        """The next item if one is queued, else ``None`` (never blocks)."""
        if not self._queue:
            return None
        item = self._queue.popleft()
        self._set_depth()
        self._processing.add(item)
        self._dirty.discard(item)
        if self._timer is not None:
            self._timer.on_get(item)
        return item

    def done(self, item: T) -> None:
        """Mark ``item`` processed; if it was added meanwhile, queue it again now."""
        self._processing.discard(item)
        if self._timer is not None:
            self._timer.on_done(item)
        if item in self._dirty:
            self._queue.append(item)
            self._set_depth()
            self._wake()

    def shut_down(self) -> None:
        """Refuse new items; waiting getters wake and raise :class:`ShutDown` once the queue is empty."""
        self._shutting_down = True
        self._ready.set()


class RateLimiter(Protocol[T]):
    def when(self, item: T) -> float: ...
    def forget(self, item: T) -> None: ...
    def num_requeues(self, item: T) -> int: ...


class ItemExponentialFailureRateLimiter(Generic[T]):
    """``base * 2**failures`` seconds per item, capped at ``max_delay`` (client-go: 5 ms and 1000 s)."""

    def __init__(self, base_delay: float = 0.005, max_delay: float = 1000.0) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[T, int] = {}

    def when(self, item: T) -> float:
        n = self._failures.get(item, 0)
        self._failures[item] = n + 1
        if n > 64:
            return self.max_delay
        return min(self.base_delay * (2 ** n), self.max_delay)

    def forget(self, item: T) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: T) -> int:
        return self._failures.get(item, 0)


class BucketRateLimiter(Generic[T]):
    """An overall token bucket: ``qps`` tokens a second, ``burst`` at most; returns the wait for a token."""

    def __init__(self, qps: float = 10.0, burst: int = 100, clock: Callable[[], float] = time.monotonic) -> None:
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def when(self, item: T) -> float:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0                 # reserve a token, possibly going into debt
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def forget(self, item: T) -> None:
        pass

    def num_requeues(self, item: T) -> int:
        return 0


class MaxOfRateLimiter(Generic[T]):
    """The largest delay any of its limiters asks for."""

    def __init__(self, *limiters: RateLimiter[T]) -> None:
        self.limiters = limiters

    def when(self, item: T) -> float:
        return max(limiter.when(item) for limiter in self.limiters)

    def forget(self, item: T) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return max(limiter.num_requeues(item) for limiter in self.limiters)


def default_controller_rate_limiter() -> MaxOfRateLimiter:
    """client-go's ``DefaultControllerRateLimiter``: exponential 5 ms → 1000 s, and 10 qps / burst 100."""
    return MaxOfRateLimiter(ItemExponentialFailureRateLimiter(0.005, 1000.0), BucketRateLimiter(10.0, 100))


class DelayingQueue(WorkQueue[T]):
    """A :class:`WorkQueue` that can add an item after a delay (timer callbacks, no tasks)."""

    def __init__(self, name: str = "") -> None:
        super().__init__(name)
        self._timers: dict[T, tuple[float, asyncio.TimerHandle]] = {}

    def add_after(self, item: T, delay: float) -> None:
        """Add ``item`` after ``delay`` seconds; an earlier pending add of the same item wins."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(item)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        pending = self._timers.get(item)
        if pending is not None:
            if pending[0] <= due:
                return
            pending[1].cancel()
        self._timers[item] = (due, loop.call_at(due, self._fire, item))

    def _fire(self, item: T) -> None:
        self._timers.pop(item, None)
        self.add(item)

    def shut_down(self) -> None:
        for _due, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        super().shut_down()


class RateLimitingQueue(DelayingQueue[T]):
    """A :class:`DelayingQueue` whose retries wait as the rate limiter says."""

    def __init__(self, name: str = "", rate_limiter: RateLimiter[T] | None = None) -> None:
        super().__init__(name)
        self.rate_limiter: RateLimiter[T] = rate_limiter or default_controller_rate_limiter()

    def add_rate_limited(self, item: T) -> None:
        """Add ``item`` again after its backoff (which grows with each call until :meth:`forget`)."""
        if self.name:
            _RETRIES.labels(self.name).inc()
        self.add_after(item, self.rate_limiter.when(item))

    def forget(self, item: T) -> None:
        """Stop tracking ``item``'s failures (call after a successful sync)."""
        self.rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return self.rate_limiter.num_requeues(item)
