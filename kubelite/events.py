"""The EventRecorder: components tell users what they did through core/v1 Events.

``recorder.event(obj, "Normal", "Scheduled", "Successfully assigned default/web to node1")`` never
blocks: it queues the event, and :meth:`EventRecorder.run` (run it in the component's TaskGroup)
writes it. ``await recorder.record(...)`` writes at once. As client-go's recorder does, an event
identical to an earlier one (same object, type, reason, message, source) bumps that Event's ``count``
and ``lastTimestamp`` instead of creating another, and a token bucket per object (burst 25, then
one per 5 minutes) drops floods.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import OrderedDict
from datetime import datetime, timezone
from typing import Any

from kubelite.api.errors import ApiError, NotFound
from kubelite.api.resources import EVENTS

logger = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"
CACHE_SIZE = 4096


_clock: tuple[int, str] = (0, "")


def now_rfc3339() -> str:
    """The current UTC second as RFC 3339 (formatted once per second: strftime is slow)."""
    global _clock
    second = int(time.time())
    if second != _clock[0]:
        _clock = (second, datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _clock[1]


def object_reference(obj: dict[str, Any], field_path: str = "") -> dict[str, Any]:
    """The ``involvedObject`` reference for ``obj``."""
    meta = obj.get("metadata") or {}
    ref: dict[str, Any] = {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", ""),
                           "name": meta.get("name", "")}
    for src, dst in (("namespace", "namespace"), ("uid", "uid"), ("resourceVersion", "resourceVersion")):
        if meta.get(src):
            ref[dst] = meta[src]
    if field_path:
        ref["fieldPath"] = field_path
    return ref


class _Bucket:
    def __init__(self, burst: int, qps: float, now: float) -> None:
        self.tokens = float(burst)
        self.burst = burst
        self.qps = qps
        self.last = now

    def take(self, now: float) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.qps)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class EventRecorder:
    """Writes Events for one component (``source.component``) on one host.

    Args:
        client: an async :class:`kubelite.client.Client` (anything with ``create``/``patch``).
        component: ``source.component`` / ``reportingComponent`` (e.g. ``"kubelet"``, ``"default-scheduler"``).
        host: ``source.host`` / ``reportingInstance`` (default: this machine's hostname).
        burst, qps: the per-object spam filter (client-go: 25 and 1/300).
    """

    def __init__(self, client: Any, component: str, host: str | None = None, *, burst: int = 25,
                 qps: float = 1 / 300, queue_size: int = 1000, clock: Any = time.monotonic,
                 parallel: int = 1) -> None:
        self.client = client
        self.component = component
        self.host = host if host is not None else socket.gethostname()
        self.burst = burst
        self.qps = qps
        self._clock = clock
        self._queue: asyncio.Queue[tuple[dict[str, Any], str, str, str, str]] = asyncio.Queue(queue_size)
        self._seen: OrderedDict[tuple[str, ...], dict[str, Any]] = OrderedDict()
        self._buckets: OrderedDict[tuple[str, ...], _Bucket] = OrderedDict()
        self.dropped = 0
        self.parallel = max(1, parallel)     # writes in flight at once (client-go: one goroutine per event)
        self._key_locks: dict[tuple[str, ...], tuple[asyncio.Lock, list[int]]] = {}

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str, *, field_path: str = "") -> None:
        """Queue an event about ``obj`` (never blocks; dropped with a log line if the queue is full)."""
        try:
            self._queue.put_nowait((obj, type_, reason, message, field_path))
        except asyncio.QueueFull:
            self.dropped += 1
            logger.warning("event queue full, dropping %s %s for %s", type_, reason,
                           (obj.get("metadata") or {}).get("name"))

    def eventf(self, obj: dict[str, Any], type_: str, reason: str, fmt: str, *args: Any) -> None:
        self.event(obj, type_, reason, fmt % args if args else fmt)

    async def run(self) -> None:
        """Write queued events until cancelled, up to ``parallel`` at once (identical ones in order)."""
        if self.parallel == 1:
            while True:
                await self._write(await self._queue.get())
        slots = asyncio.Semaphore(self.parallel)
        async with asyncio.TaskGroup() as tg:
            while True:
                item = await self._queue.get()
                await slots.acquire()
                tg.create_task(self._write_released(item, slots))

    async def _write_released(self, item: tuple[dict[str, Any], str, str, str, str], slots: asyncio.Semaphore) -> None:
        try:
            await self._write(item)
        finally:
            slots.release()

    async def _write(self, item: tuple[dict[str, Any], str, str, str, str]) -> None:
        obj, type_, reason, message, field_path = item
        try:
            await self.record(obj, type_, reason, message, field_path=field_path)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("could not write event %s/%s", type_, reason)

    async def flush(self) -> None:
        """Write everything queued so far (tests, shutdown)."""
        while not self._queue.empty():
            obj, type_, reason, message, field_path = self._queue.get_nowait()
            await self.record(obj, type_, reason, message, field_path=field_path)

    async def record(self, obj: dict[str, Any], type_: str, reason: str, message: str, *,
                     field_path: str = "") -> dict[str, Any] | None:
        """Write the event now; returns the Event written, or None if it was rate-limited or failed."""
        ref = object_reference(obj, field_path)
        obj_key = (ref["kind"], ref.get("namespace", ""), ref["name"], ref.get("uid", ""))
        now = self._clock()
        bucket = self._buckets.get(obj_key)
        if bucket is None:
            bucket = self._buckets[obj_key] = _Bucket(self.burst, self.qps, now)
            if len(self._buckets) > CACHE_SIZE:
                self._buckets.popitem(last=False)
        if not bucket.take(now):
            self.dropped += 1
            logger.debug("rate limit: dropping event %s %s for %s/%s", type_, reason, ref.get("namespace"), ref["name"])
            return None
        key = (*obj_key, ref.get("fieldPath", ""), type_, reason, message)
        if self.parallel == 1:
            return await self._create_or_bump(key, ref, type_, reason, message)
        entry = self._key_locks.get(key)
        if entry is None:
            entry = self._key_locks[key] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            async with lock:     # an identical event in flight: bump the Event it writes, do not race it
                return await self._create_or_bump(key, ref, type_, reason, message)
        finally:
            users[0] -= 1
            if not users[0]:
                del self._key_locks[key]

    async def _create_or_bump(self, key: tuple[str, ...], ref: dict[str, Any], type_: str, reason: str,
                              message: str) -> dict[str, Any] | None:
        namespace = ref.get("namespace") or "default"
        ts = now_rfc3339()
        prior = self._seen.get(key)
        try:
            if prior is not None:
                count = int(prior.get("count") or 1) + 1
                try:
                    written = await self.client.patch(EVENTS, prior["metadata"]["name"],
                                                      {"count": count, "lastTimestamp": ts},
                                                      namespace=prior["metadata"]["namespace"], patch_type="merge")
                except NotFound:
                    written = None
                if written is not None:
                    self._remember(key, written)
                    return written
            event = {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": f"{ref['name']}.{time.time_ns():x}", "namespace": namespace},
                "involvedObject": ref, "reason": reason, "message": message, "type": type_,
                "source": {"component": self.component, "host": self.host},
                "firstTimestamp": ts, "lastTimestamp": ts, "count": 1,
                "reportingComponent": self.component, "reportingInstance": self.host,
            }
            written = await self.client.create(EVENTS, event, namespace=namespace)
        except ApiError as exc:
            logger.warning("could not write event %s %s for %s/%s: %s", type_, reason, namespace, ref["name"],
                           exc.message)
            return None
        self._remember(key, written)
        return written

    def _remember(self, key: tuple[str, ...], event: dict[str, Any]) -> None:
        self._seen[key] = event
        self._seen.move_to_end(key)
        if len(self._seen) > CACHE_SIZE:
            self._seen.popitem(last=False)
