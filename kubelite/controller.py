"""The controller runner: wait for caches, then N workers drain a rate-limited queue of keys.

The shape of kubernetes/sample-controller: event handlers only compute a key and :meth:`enqueue` it;
a worker takes a key, calls ``sync(key)`` (which re-reads the object from an informer cache and makes
the world match), then ``forget``\\s it on success or re-adds it with per-key exponential backoff on
error. A :class:`PermanentError` (a spec no retry can fix) is logged, recorded as a Warning Event on
the object it names when the runner has a recorder, and not retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from kubelite.api.errors import KubeliteError
from kubelite.informer import Informer, meta_namespace_key, wait_for_cache_sync
from kubelite.workqueue import RateLimitingQueue, ShutDown

if TYPE_CHECKING:
    from kubelite.events import EventRecorder

logger = logging.getLogger(__name__)

SyncFunc = Callable[[str], Awaitable[None]]


class PermanentError(KubeliteError):
    """A sync failure that retrying cannot fix; recorded on ``obj`` (if given) as a Warning Event."""

    def __init__(self, message: str, *, obj: dict[str, Any] | None = None, reason: str = "SyncFailed") -> None:
        super().__init__(message)
        self.message = message
        self.obj = obj
        self.reason = reason


class Controller:
    """Run ``sync(key)`` for queued keys with ``workers`` concurrent workers.

    Args:
        name: the controller's name (queue metrics, logs).
        sync: ``async sync(key)``; raise to retry with backoff, :class:`PermanentError` to give up.
        informers: caches that must sync before the first worker starts.
        workers: how many keys are processed at once (one key is never processed twice at once).
        max_retries: give up on a key after this many failures in a row (``None``: never).
        recorder: records permanent errors as Warning Events.
        queue: the queue to drain (default: a new client-go default rate-limited queue).
    """

    def __init__(self, name: str, sync: SyncFunc, *, informers: Sequence[Informer] = (), workers: int = 1,
                 max_retries: int | None = None, recorder: "EventRecorder | None" = None,
                 queue: RateLimitingQueue[str] | None = None) -> None:
        self.name = name
        self.sync = sync
        self.informers = list(informers)
        self.workers = workers
        self.max_retries = max_retries
        self.recorder = recorder
        self.queue: RateLimitingQueue[str] = queue if queue is not None else RateLimitingQueue(name)
        self.permanent_errors: dict[str, str] = {}   # key -> last permanent error message

    def enqueue(self, obj: dict[str, Any]) -> None:
        """Queue the key of ``obj`` (usable directly as an informer handler)."""
        self.queue.add(meta_namespace_key(obj))

    def enqueue_key(self, key: str) -> None:
        self.queue.add(key)

    def handlers(self) -> dict[str, Callable[..., None]]:
        """Handlers that enqueue the object's key on add, update and delete: ``inf.add_handler(**c.handlers())``."""
        return {"on_add": self.enqueue, "on_update": lambda old, new: self.enqueue(new),
                "on_delete": self.enqueue}

    async def run(self) -> None:
        """Wait for the informers' caches, then run the workers until cancelled."""
        logger.info("starting %s controller", self.name)
        await wait_for_cache_sync(*self.informers)
        logger.info("caches synced for %s controller; starting %d workers", self.name, self.workers)
        try:
            async with asyncio.TaskGroup() as tg:
                for i in range(self.workers):
                    tg.create_task(self._worker(), name=f"{self.name} worker {i}")
        finally:
            self.queue.shut_down()

    async def _worker(self) -> None:
        while True:
            try:
                key = await self.queue.get()
            except ShutDown:
                return
            try:
                await self.process(key)
            finally:
                self.queue.done(key)

    async def process(self, key: str) -> bool:
        """Sync one key and requeue or forget it; True on success (used by workers and tests)."""
        try:
            await self.sync(key)
        except asyncio.CancelledError:
            raise
        except PermanentError as exc:
            self.queue.forget(key)
            self.permanent_errors[key] = exc.message
            logger.warning("%s: %s: not retrying: %s", self.name, key, exc.message)
            if self.recorder is not None and exc.obj is not None:
                self.recorder.event(exc.obj, "Warning", exc.reason, exc.message)
            return False
        except Exception as exc:
            retries = self.queue.num_requeues(key)
            if self.max_retries is not None and retries >= self.max_retries:
                logger.error("%s: dropping %s out of the queue after %d retries: %s", self.name, key, retries, exc)
                self.queue.forget(key)
                return False
            logger.warning("%s: error syncing %s (retry %d): %s: %s", self.name, key, retries + 1,
                           type(exc).__name__, exc, exc_info=not isinstance(exc, KubeliteError))
            self.queue.add_rate_limited(key)
            return False
        self.queue.forget(key)
        self.permanent_errors.pop(key, None)
        return True
