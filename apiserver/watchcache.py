"""The watch cache: one storage watch per resource, fanned out to every client watch.

Each :class:`ResourceCache` lists its resource once, then follows one storage watch. It keeps the
current objects (for ``resourceVersion=0`` watches, synthetic ADDED events) and a window of recent
events (to replay ``watch=true&resourceVersion=N``). A watch from a revision older than the window
raises :class:`~kubelite.api.errors.Gone` (410 Expired, "too old resource version"). Client watches
are :class:`CacheWatcher` queues; a watcher that falls too far behind is closed (the client
re-watches from its last resourceVersion, as informers do).

Objects are kept as their wire JSON (bytes with ``metadata.resourceVersion`` spliced in), not as
decoded dicts: tens of thousands of long-lived dicts and lists would be walked by every collection
of Python's cycle GC (a 10k-pod cache made pauses of 10-200 ms that held every in-flight request),
and a watch event reaches clients without being decoded and re-encoded. Selectors, Tables and the
readers of :meth:`ResourceCache.get`/:meth:`ResourceCache.items` decode on demand, once per event.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from apiserver.storage import CompactedError, Store, StorageError, WatchEvent
from kubelite.api import codec
from kubelite.api.errors import Gone
from kubelite.api.resources import ResourceInfo

logger = logging.getLogger(__name__)

DEFAULT_WINDOW = 20000
WATCHER_QUEUE = 10000

Filter = Callable[[dict[str, Any]], bool]


def decode(value: bytes, rv: int) -> dict[str, Any]:
    """A stored value as an API object with ``metadata.resourceVersion`` set to ``rv``."""
    obj = codec.loads(value)
    obj.setdefault("metadata", {})["resourceVersion"] = str(rv)
    return obj


_META = b'"metadata":{'


def with_resource_version(value: bytes, rv: int) -> bytes | None:
    """A stored value as wire JSON with ``metadata.resourceVersion`` spliced in, without decoding.

    Returns None when the value does not have :func:`apiserver.listing.encode`'s layout (the caller
    decodes then).
    """
    i = value.find(_META)
    if i < 0 or value.find(b"{", 1) != i + len(_META) - 1:
        return None
    j = i + len(_META)
    sep = b"" if value[j:j + 1] == b"}" else b","
    return b"".join((value[:j], b'"resourceVersion":"', str(rv).encode(), b'"', sep, value[j:]))


def wire(value: bytes, rv: int) -> bytes:
    """A stored value as the JSON a client gets: ``metadata.resourceVersion`` = ``rv``."""
    out = with_resource_version(value, rv)
    return out if out is not None else codec.dumps(decode(value, rv))


_LINE_HEAD = {t: b'{"type":"%s","object":' % t.encode() for t in ("ADDED", "MODIFIED", "DELETED")}


@dataclass(slots=True)
class CachedEvent:
    """One change of one object, as the watch cache keeps it (``type``: ADDED|MODIFIED|DELETED).

    ``value`` is the object's wire JSON at ``rv`` (for DELETED: the last state, at the deletion's
    revision); ``prev`` the wire JSON of the state before (None for ADDED), for selector transitions.
    """

    type: str
    key: str
    value: bytes
    prev: bytes | None
    rv: int
    _line: bytes | None = None

    @property
    def obj(self) -> dict[str, Any]:
        """The object, decoded afresh (the caller may change it)."""
        return codec.loads(self.value)

    def line(self) -> bytes:
        """``{"type":…,"object":…}\\n``, built once and shared by every watcher."""
        if self._line is None:
            self._line = b"".join((_LINE_HEAD[self.type], self.value, b"}\n"))
        return self._line


class _Decoded:
    """An event's objects decoded at most once while one event is fanned out to filtered watchers."""

    __slots__ = ("event", "_obj", "_prev")

    def __init__(self, event: CachedEvent) -> None:
        self.event = event
        self._obj: dict[str, Any] | None = None
        self._prev: dict[str, Any] | None = None

    def obj(self) -> dict[str, Any]:
        if self._obj is None:
            self._obj = codec.loads(self.event.value)
        return self._obj

    def prev(self) -> dict[str, Any]:
        if self._prev is None:
            assert self.event.prev is not None
            self._prev = codec.loads(self.event.prev)
        return self._prev


@dataclass(eq=False)
class CacheWatcher:
    """One client watch: a queue of events already filtered and translated for it."""

    namespace_prefix: str
    predicate: Filter | None        # None: no selectors
    rv: int
    queue: asyncio.Queue[CachedEvent | None] = field(default_factory=lambda: asyncio.Queue(WATCHER_QUEUE))
    closed: bool = False

    def offer(self, event: CachedEvent, decoded: _Decoded | None = None) -> None:
        """Translate ``event`` for this watcher's filter and enqueue it; close the watcher on overflow.

        ``decoded``: the event's objects as already decoded for other watchers of this fan-out.
        """
        if self.closed or event.rv <= self.rv or not event.key.startswith(self.namespace_prefix):
            return
        if self.predicate is None:            # no selectors: every event as it is
            out: CachedEvent | None = event
            if event.type == "DELETED" and event.prev is None:
                out = None
            self._put(out)
            return
        d = decoded if decoded is not None else _Decoded(event)
        now = self.predicate(d.obj()) if event.type != "DELETED" else False
        before = event.prev is not None and self.predicate(d.prev())
        if event.type == "DELETED":
            out = CachedEvent("DELETED", event.key, event.value, None, event.rv, event._line) if before else None
        elif now and before:
            out = event
        elif now:
            out = event if event.type == "ADDED" else CachedEvent("ADDED", event.key, event.value, None, event.rv)
        elif before:
            out = CachedEvent("DELETED", event.key, event.value, None, event.rv)
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


class _Window:
    """Recent events as parallel deques of bytes, strings and ints: holding 20000 events adds no
    object for the cycle GC to count or walk (a CachedEvent per event would: a young collection
    every ~20k writes, walking each)."""

    __slots__ = ("types", "keys", "values", "prevs", "revs")

    def __init__(self) -> None:
        self.types: collections.deque[str] = collections.deque()
        self.keys: collections.deque[str] = collections.deque()
        self.values: collections.deque[bytes] = collections.deque()
        self.prevs: collections.deque[bytes | None] = collections.deque()
        self.revs: collections.deque[int] = collections.deque()

    def __len__(self) -> int:
        return len(self.revs)

    def append(self, ev: CachedEvent) -> None:
        self.types.append(ev.type)
        self.keys.append(ev.key)
        self.values.append(ev.value)
        self.prevs.append(ev.prev)
        self.revs.append(ev.rv)

    def popleft(self) -> int:
        """Drop the oldest event; its revision."""
        self.types.popleft()
        self.keys.popleft()
        self.values.popleft()
        self.prevs.popleft()
        return self.revs.popleft()

    def clear(self) -> None:
        for d in (self.types, self.keys, self.values, self.prevs, self.revs):
            d.clear()

    def after(self, rv: int) -> Iterator[CachedEvent]:
        """The events with a revision above ``rv``, oldest first."""
        for t, k, v, p, r in zip(self.types, self.keys, self.values, self.prevs, self.revs):
            if r > rv:
                yield CachedEvent(t, k, v, p, r)


class ResourceCache:
    """Current state and recent history of one resource, fed by one storage watch.

    ``objects`` maps each key to its wire JSON and ``revisions`` to its resourceVersion (two dicts
    of atoms, for the GC's sake as :class:`_Window`).
    """

    def __init__(self, store: Store, info: ResourceInfo, key_prefix: str, window: int = DEFAULT_WINDOW) -> None:
        self.store = store
        self.info = info
        self.key_prefix = key_prefix
        self.window = window
        self.objects: dict[str, bytes] = {}           # key → wire JSON
        self.revisions: dict[str, int] = {}           # key → resourceVersion
        self.events = _Window()
        self.rv = 0                # newest revision this cache has applied
        self.complete_from = 0     # every event with rv > complete_from is in the window
        self.watchers: set[CacheWatcher] = set()
        self.ready = asyncio.Event()

    async def _relist(self) -> None:
        objects: dict[str, bytes] = {}
        revisions: dict[str, int] = {}
        start: str | None = None
        revision = 0
        while True:
            page = await self.store.list(self.key_prefix, start=start, limit=1000, revision=revision)
            revision = page.revision
            for kv in page.kvs:
                objects[kv.key] = wire(kv.value, kv.mod_revision)
                revisions[kv.key] = kv.mod_revision
            if not page.more or not page.kvs:
                break
            start = page.kvs[-1].key + "\0"
        self.objects, self.revisions = objects, revisions
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
            value = wire(ev.value, ev.revision)
            prev = self.objects.get(ev.key)
            self.objects[ev.key] = value
            self.revisions[ev.key] = ev.revision
            cached = CachedEvent("MODIFIED" if prev is not None else "ADDED", ev.key, value, prev, ev.revision)
        else:
            prev = self.objects.pop(ev.key, None)
            self.revisions.pop(ev.key, None)
            if prev is None and not ev.prev_value:
                self.rv = ev.revision
                return
            if ev.prev_value:          # the last state, at the deletion's revision
                gone = wire(ev.prev_value, ev.revision)
            else:
                assert prev is not None
                gone = codec.dumps(decode(prev, ev.revision))
            cached = CachedEvent("DELETED", ev.key, gone, prev if prev is not None else gone, ev.revision)
        self.rv = ev.revision
        self.events.append(cached)
        while len(self.events) > self.window:
            self.complete_from = self.events.popleft()
        if not self.watchers:
            return
        decoded = _Decoded(cached)       # shared by the filtered watchers of this one event
        for w in list(self.watchers):
            w.offer(cached, decoded)
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
            revisions = self.revisions
            for key, value in self.objects.items():
                if key.startswith(ns_prefix) and (predicate is None or predicate(codec.loads(value))):
                    watcher.queue.put_nowait(CachedEvent("ADDED", key, value, None, revisions[key]))
        else:
            if resource_version < self.complete_from:
                raise Gone(f"too old resource version: {resource_version} ({self.complete_from})")
            watcher = CacheWatcher(ns_prefix, predicate, resource_version)
            for event in self.events.after(resource_version):
                watcher.offer(event)
        if not watcher.closed:
            self.watchers.add(watcher)
        return watcher

    def forget(self, watcher: CacheWatcher) -> None:
        watcher.closed = True
        self.watchers.discard(watcher)

    def get(self, key: str) -> dict[str, Any] | None:
        """The current object at ``key``, decoded afresh (the caller may change it), or None."""
        cached = self.objects.get(key)
        return codec.loads(cached) if cached is not None else None

    def items(self, prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
        """(key, object) of every current object whose key starts with ``prefix``, decoded afresh."""
        for key, value in list(self.objects.items()):
            if key.startswith(prefix):
                yield key, codec.loads(value)


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
