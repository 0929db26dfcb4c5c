"""One serial worker per pod that keeps only the latest update (Kubernetes' ``pod_workers.go``).

``wake(uid)`` never blocks: it marks the pod dirty (or arms an earlier timer) and the pod's worker, a
task in the workers' TaskGroup, runs ``sync(uid)`` once for however many wakes arrived meanwhile.
``sync`` reads the newest pod and runtime state itself, so nothing is queued but the fact "look again".
It returns seconds until the next look (None: only on the next wake) or :data:`DONE` to end the worker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable

from prometheus_client import Histogram

logger = logging.getLogger(__name__)
DONE = -1.0

SyncFn = Callable[[str], Awaitable[float | None]]


class _Slot:
    __slots__ = ("dirty", "rearm", "due")

    def __init__(self) -> None:
        self.dirty = asyncio.Event()
        self.rearm = asyncio.Event()
        self.due: float | None = None

    def arm(self, after: float) -> None:
        due = time.monotonic() + after
        if self.due is None or due < self.due:
            self.due = due
            self.rearm.set()


class PodWorkers:
    def __init__(self, sync: SyncFn, *, error_backoff: float = 1.0,
                 duration: Histogram | None = None) -> None:
        self._sync = sync
        self._error_backoff = error_backoff
        self._duration = duration
        self._slots: dict[str, _Slot] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._stopped = asyncio.Event()
        self.syncs = 0

    async def run(self) -> None:
        """Host the workers until :meth:`stop`; on the way out every worker is cancelled."""
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                await self._stopped.wait()
                raise _Stop
        except* _Stop:
            pass
        finally:
            self._tg = None

    def stop(self) -> None:
        self._stopped.set()

    @property
    def running(self) -> bool:
        return self._tg is not None

    def wake(self, uid: str, after: float = 0.0) -> None:
        """Ask for a sync of ``uid`` now (or in ``after`` seconds, unless an earlier one is due)."""
        slot = self._slots.get(uid)
        if slot is None:
            if self._tg is None:
                return
            slot = self._slots[uid] = _Slot()
            self._tg.create_task(self._worker(uid, slot), name=f"podworker-{uid}")
        if after <= 0:
            slot.dirty.set()
        else:
            slot.arm(after)

    def known(self) -> list[str]:
        return list(self._slots)

    async def _worker(self, uid: str, slot: _Slot) -> None:
        try:
            while True:
                await self._wait(slot)
                slot.dirty.clear()
                slot.due = None
                t0 = time.monotonic()
                try:
                    nxt = await self._sync(uid)
                except Exception:
                    logger.exception("sync of pod %s failed", uid)
                    nxt = self._error_backoff
                finally:
                    self.syncs += 1
                    if self._duration is not None:
                        self._duration.observe(time.monotonic() - t0)
                if nxt == DONE:
                    if slot.dirty.is_set():        # woken during the final sync: go round once more
                        continue
                    return
                if nxt is not None:
                    slot.arm(nxt)
        finally:
            if self._slots.get(uid) is slot:
                del self._slots[uid]

    @staticmethod
    async def _wait(slot: _Slot) -> None:
        while not slot.dirty.is_set():
            slot.rearm.clear()
            waiters = [asyncio.ensure_future(slot.dirty.wait()), asyncio.ensure_future(slot.rearm.wait())]
            timeout = None if slot.due is None else max(0.0, slot.due - time.monotonic())
            try:
                await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
            if slot.due is not None and slot.due <= time.monotonic():
                return


class _Stop(Exception):
    pass
