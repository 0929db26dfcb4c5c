"""The watch cache: one storage watch per resource, fanned out to every client watch.

Each :class:`ResourceCache` lists its resource once, then follows one storage watch. It keeps the
current objects (for ``resourceVersion=0`` watches, synthetic ADDED events) and a window of recent
events (to replay ``watch=true&resourceVersion=N``). A watch from a revision older than the window
raises :class:`~kubelite.api.errors.Gone` (410 Expired, "too old resource version"). Client watches
are :class:`CacheWatcher` queues; a watcher that falls too far behind is closed (the client
re-watches from its last resourceVersion, as informers do).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from apiserver.storage import CompactedError, Store, StorageError, WatchEvent
from kubelite.api import codec
from kubelite.api.errors import Gone
from kubelite.api.resources import ResourceInfo

logger = logging.getLogger(__name__)

DEFAULT_WINDOW = 20000
WATCHER_QUEUE = 10000

Filter = Callable[[dict[str, Any]], bool]


@dataclass(slots=True)
class CachedEvent:
    """One change of one object, as the watch cache keeps it (``type``: ADDED|MODIFIED|DELETED)."""

    type: str
    key: str
    obj: dict[str, Any]
    prev: dict[str, Any] | None
    rv: int
    _line: bytes | None = None

    def line(self) -> bytes:
        """``{"type":…,"object":…}\\n`` encoded once and shared by every watcher."""
        if self._line is None:
            self._line = codec.dumps({"type": self.type, "object": self.obj}) + b"\n"
        return self._line


def decode(value: bytes, rv: int) -> dict[str, Any]:
    """A stored value as an API object with ``metadata.resourceVersion`` set to ``rv``."""
    obj = codec.loads(value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(rv)
    return obj


@dataclass(eq=False)
class CacheWatcher:
    """One client watch: a queue of events already filtered and translated for it."""

    namespace_prefix: str
    predicate: Filter | None        # None: no selectors
    rv: int
    queue: asyncio.Queue[CachedEvent | None] = field(default_factory=lambda: asyncio.Queue(WATCHER_QUEUE))
    closed: bool = False

    def offer(self, event: CachedEvent) -> None:
        """Translate ``event`` for this watcher's filter and enqueue it; close the watcher on overflow."""
        if self.closed or event.rv <= self.rv or not event.key.startswith(self.namespace_prefix):
            return
        if self.predicate is None:            # no selectors: every event as it is
            out: CachedEvent | None = event
            if event.type == "DELETED" and event.prev is None:
                out = None
            self._put(out)
            return
        now = self.predicate(event.obj) if event.type != "DELETED" else False
        before = event.prev is not None and self.predicate(event.prev)
        if event.type == "DELETED":
            out = CachedEvent("DELETED", event.key, event.obj, None, event.rv, event._line) if before else None
        elif now and before:
            out = event
        elif now:
            out = event if event.type == "ADDED" else CachedEvent("ADDED", event.key, event.obj, None, event.rv)
        elif before:
            out = CachedEvent("DELETED", event.key, event.obj, None, event.rv)
        else:
            out = None
        self._put(out)

    def _put(self, out: CachedEvent | None) -> None:
        if out is None:
            return
        try:
            self.queue.put_nowait(out)
        except asyncio.QueueFull:
            logger.warning("closing a watcher that fell %d events behind", WATCHER_QUEUE)
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            while True:
                try:
                    self.queue.put_nowait(None)
                    break
                except asyncio.QueueFull:
                    self.queue.get_nowait()


class ResourceCache:
    """Current state and recent history of one resource, fed by one storage watch."""

    def __init__(self, store: Store, info: ResourceInfo, key_prefix: str, window: int = DEFAULT_WINDOW) -> None:
        self.store = store
        self.info = info
        self.key_prefix = key_prefix
        self.window = window
        self.objects: dict[str, dict[str, Any]] = {}
        self.events: collections.deque[CachedEvent] = collections.deque()
        self.rv = 0                # newest revision this cache has applied
        self.complete_from = 0     # every event with rv > complete_from is in the window
        self.watchers: set[CacheWatcher] = set()
        self.ready = asyncio.Event()

    async def _relist(self) -> None:
        objects: dict[str, dict[str, Any]] = {}
        start: str | None = None
        revision = 0
        while True:
            page = await self.store.list(self.key_prefix, start=start, limit=1000, revision=revision)
            revision = page.revision
            for kv in page.kvs:
                objects[kv.key] = decode(kv.value, kv.mod_revision)
            if not page.more or not page.kvs:
                break
            start = page.kvs[-1].key + "\0"
        self.objects = objects
        self.events.clear()
        self.rv = self.complete_from = revision
        for w in list(self.watchers):
            w.close()
        self.watchers.clear()

    async def run(self) -> None:
        """List, then follow the storage watch forever; relist when history was compacted under us."""
        delay = 0.1
        while True:
            try:
                await self._relist()
                self.ready.set()
                delay = 0.1
                async for ev in self.store.watch(self.key_prefix, self.rv + 1):
                    self._apply(ev)
            except CompactedError as e:
                logger.warning("watch cache %s: %s; relisting", self.info.qualified, e)
            except StorageError as e:
                logger.warning("watch cache %s: %s; retrying in %.1fs", self.info.qualified, e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _apply(self, ev: WatchEvent) -> None:
        if ev.revision <= self.rv:
            return
        if ev.type == "PUT":
            assert ev.value is not None
            obj = decode(ev.value, ev.revision)
            prev = self.objects.get(ev.key)
            self.objects[ev.key] = obj
            cached = CachedEvent("MODIFIED" if prev is not None else "ADDED", ev.key, obj, prev, ev.revision)
        else:
            prev = self.objects.pop(ev.key, None)
            if prev is None and ev.prev_value:
                prev = decode(ev.prev_value, ev.revision)
            if prev is None:
                self.rv = ev.revision
                return
            gone = dict(prev)
            gone["metadata"] = dict(prev.get("metadata", {}), resourceVersion=str(ev.revision))
            cached = CachedEvent("DELETED", ev.key, gone, prev, ev.revision)
        self.rv = ev.revision
        self.events.append(cached)
        while len(self.events) > self.window:
            self.complete_from = self.events.popleft().rv
        for w in list(self.watchers):
            w.offer(cached)
            if w.closed:
                self.watchers.discard(w)

    def watch(self, resource_version: int, namespace: str | None, predicate: Filter | None) -> CacheWatcher:
        """Register a client watch from ``resource_version`` (0: current state as ADDED, then live).

        Raises:
            Gone: the revision is older than the window (the client must relist).
        """
        ns_prefix = self.key_prefix + (f"{namespace}/" if namespace else "")
        if resource_version == 0:
            watcher = CacheWatcher(ns_prefix, predicate, self.rv,
                                   asyncio.Queue(WATCHER_QUEUE + len(self.objects)))
            for key, obj in self.objects.items():
                if key.startswith(ns_prefix) and (predicate is None or predicate(obj)):
                    watcher.queue.put_nowait(CachedEvent("ADDED", key, obj, None, int(obj["metadata"]["resourceVersion"])))
        else:
            if resource_version < self.complete_from:
                raise Gone(f"too old resource version: {resource_version} ({self.complete_from})")
            watcher = CacheWatcher(ns_prefix, predicate, resource_version)
            for event in self.events:
                if event.rv > resource_version:
                    watcher.offer(event)
        if not watcher.closed:
            self.watchers.add(watcher)
        return watcher

    def forget(self, watcher: CacheWatcher) -> None:
        watcher.closed = True
        self.watchers.discard(watcher)

    def get(self, key: str) -> dict[str, Any] | None:
        return self.objects.get(key)


class WatchCache:
    """The caches of every resource; ``run()`` follows them all until cancelled."""

    def __init__(self, store: Store, prefix: str, resources: tuple[ResourceInfo, ...],
                 window: int = DEFAULT_WINDOW) -> None:
        self.caches = {info.qualified: ResourceCache(store, info, f"{prefix}/{info.resource}/", window)
                       for info in resources}

    def for_resource(self, info: ResourceInfo) -> ResourceCache:
        return self.caches[info.qualified]

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for cache in self.caches.values():
                tg.create_task(cache.run(), name=f"watchcache-{cache.info.qualified}")

    async def wait_ready(self) -> None:
        for cache in self.caches.values():
            await cache.ready.wait()
