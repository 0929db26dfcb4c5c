"""Informers: a local cache of one resource kept current by list + watch, with event handlers.

An :class:`Informer` lists the resource, replaces its :class:`Store`, then watches from the list's
resourceVersion; a watch that ends is resumed from the last resourceVersion seen, and a 410 Gone
(the version was compacted away) triggers a fresh list — which is diffed against the store, so
handlers see the adds, updates and deletes they missed. Every ``resync`` seconds each cached object
is handed to ``on_update(old, new)`` again (old is new), as client-go does. Handlers must be quick
and should only enqueue keys; objects in the store are shared: copy before changing them.

:class:`SharedInformerFactory` hands out one informer per (resource, namespace, selectors) and runs
them together.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from kubelite.api.errors import ApiError, Gone
from kubelite.api.resources import ResourceInfo
from kubelite.client import Resource, resolve

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
IndexFunc = Callable[[Obj], list[str]]
Handler = Callable[..., Awaitable[None] | None]

INDEX_NAMESPACE = "namespace"
INDEX_NODE_NAME = "nodeName"


def meta_namespace_key(obj: Obj) -> str:
    """``namespace/name`` for namespaced objects, ``name`` for cluster-scoped ones (client-go's key)."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name', '')}" if ns else str(meta.get("name", ""))


def split_key(key: str) -> tuple[str | None, str]:
    """The inverse of :func:`meta_namespace_key`: ``(namespace or None, name)``."""
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else (None, ns)


def index_by_namespace(obj: Obj) -> list[str]:
    ns = (obj.get("metadata") or {}).get("namespace")
    return [ns] if ns else []


def index_by_node_name(obj: Obj) -> list[str]:
    node = (obj.get("spec") or {}).get("nodeName")
    return [node] if node else []


def _rv(obj: Obj) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class Store:
    """A thread-unsafe (asyncio-only) keyed cache with secondary indexes."""

    def __init__(self, indexers: dict[str, IndexFunc] | None = None) -> None:
        self._items: dict[str, Obj] = {}
        self._indexers: dict[str, IndexFunc] = dict(indexers or {})
        self._indices: dict[str, dict[str, set[str]]] = {name: {} for name in self._indexers}

    def add_indexer(self, name: str, func: IndexFunc) -> None:
        self._indexers[name] = func
        index: dict[str, set[str]] = {}
        for key, obj in self._items.items():
            for value in func(obj):
                index.setdefault(value, set()).add(key)
        self._indices[name] = index

    def get(self, key: str) -> Obj | None:
        return self._items.get(key)

    def get_by_name(self, namespace: str | None, name: str) -> Obj | None:
        return self._items.get(f"{namespace}/{name}" if namespace else name)

    def list(self) -> list[Obj]:
        return list(self._items.values())

    def keys(self) -> list[str]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def by_index(self, name: str, value: str) -> list[Obj]:
        """Objects whose index ``name`` yields ``value`` (e.g. ``by_index("nodeName", "n1")``)."""
        try:
            keys = self._indices[name].get(value, ())
        except KeyError:
            raise KeyError(f"no indexer named {name!r}") from None
        return [self._items[k] for k in sorted(keys)]

    def _unindex(self, key: str, obj: Obj) -> None:
        for name, func in self._indexers.items():
            for value in func(obj):
                keys = self._indices[name].get(value)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._indices[name][value]

    def upsert(self, obj: Obj) -> Obj | None:
        """Store ``obj``; returns the object it replaced."""
        key = meta_namespace_key(obj)
        old = self._items.get(key)
        if old is not None:
            self._unindex(key, old)
        self._items[key] = obj
        for name, func in self._indexers.items():
            for value in func(obj):
                self._indices[name].setdefault(value, set()).add(key)
        return old

    def remove(self, obj: Obj) -> Obj | None:
        key = meta_namespace_key(obj)
        old = self._items.pop(key, None)
        if old is not None:
            self._unindex(key, old)
        return old


class _Handlers:
    def __init__(self, on_add: Handler | None, on_update: Handler | None, on_delete: Handler | None) -> None:
        self.on_add, self.on_update, self.on_delete = on_add, on_update, on_delete


class Informer:
    """List + watch one resource into a :class:`Store` and call handlers on changes."""

    def __init__(self, client: Any, res: Resource, namespace: str | None = None, label_selector: str | None = None,
                 field_selector: str | None = None, resync: float = 0.0,
                 indexers: dict[str, IndexFunc] | None = None, *, watch_timeout: tuple[int, int] = (300, 600),
                 max_backoff: float = 30.0) -> None:
        self.client = client
        self.info: ResourceInfo = resolve(res)
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync = resync
        self.store = Store(indexers)
        self.watch_timeout = watch_timeout
        self.max_backoff = max_backoff
        self._handlers: list[_Handlers] = []
        self._synced = asyncio.Event()
        self.last_sync_resource_version = ""
        self.relists = 0        # how many times it had to list (1 + one per Gone / failure)

    def __repr__(self) -> str:
        return f"Informer({self.info.qualified}, ns={self.namespace}, labels={self.label_selector}, " \
               f"fields={self.field_selector})"

    @property
    def has_synced(self) -> bool:
        """True once the first list has been stored and its adds delivered."""
        return self._synced.is_set()

    async def wait_for_sync(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._synced.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def add_indexer(self, name: str, func: IndexFunc) -> None:
        self.store.add_indexer(name, func)

    def add_handler(self, on_add: Handler | None = None, on_update: Handler | None = None,
                    on_delete: Handler | None = None) -> None:
        """Register handlers: ``on_add(obj)``, ``on_update(old, new)``, ``on_delete(obj)`` (sync or async).

        A handler added after the first sync is first told about every cached object (as adds) —
        synchronously only; async handlers added late get their adds on the next relist or resync.
        """
        handlers = _Handlers(on_add, on_update, on_delete)
        self._handlers.append(handlers)
        if self.has_synced and on_add is not None:
            for obj in self.store.list():
                result = on_add(obj)
                if inspect.isawaitable(result):
                    raise TypeError("an async on_add can only be added before the informer syncs")

    async def _call(self, kind: str, *args: Obj) -> None:
        for h in self._handlers:
            fn = getattr(h, kind)
            if fn is None:
                continue
            try:
                result = fn(*args)
                if inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s handler %s for %s failed", self.info.qualified, kind, meta_namespace_key(args[-1]))

    async def _list_and_replace(self) -> str:
        items: list[Obj] = []
        cont: str | None = None
        rv = ""
        while True:
            page = await self.client.list(self.info, self.namespace, label_selector=self.label_selector,
                                          field_selector=self.field_selector, limit=500, continue_=cont)
            items.extend(page.get("items") or [])
            meta = page.get("metadata") or {}
            rv = str(meta.get("resourceVersion") or rv)
            cont = meta.get("continue") or None
            if not cont:
                break
        self.relists += 1
        kind = self.info.kind
        api_version = self.info.api_version
        fresh: dict[str, Obj] = {}
        for obj in items:
            obj.setdefault("kind", kind)          # list items carry no kind/apiVersion on the wire
            obj.setdefault("apiVersion", api_version)
            fresh[meta_namespace_key(obj)] = obj
        for key in self.store.keys():
            if key not in fresh:
                old = self.store.get(key)
                assert old is not None
                self.store.remove(old)
                await self._call("on_delete", old)
        for obj in fresh.values():
            old = self.store.upsert(obj)
            if old is None:
                await self._call("on_add", obj)
            elif _rv(old) != _rv(obj):
                await self._call("on_update", old, obj)
        self.last_sync_resource_version = rv
        self._synced.set()
        return rv

    async def _watch(self, rv: str) -> str:
        """Apply watch events from ``rv`` until the server ends the stream; returns the last rv seen."""
        timeout = random.randint(*self.watch_timeout)
        async for event in self.client.watch(self.info, self.namespace, resource_version=rv,
                                             label_selector=self.label_selector, field_selector=self.field_selector,
                                             timeout_seconds=timeout, allow_bookmarks=True):
            obj = event.object
            new_rv = _rv(obj)
            if event.type == "BOOKMARK":
                rv = new_rv or rv
                continue
            obj.setdefault("kind", self.info.kind)
            obj.setdefault("apiVersion", self.info.api_version)
            if event.type in ("ADDED", "MODIFIED"):
                old = self.store.upsert(obj)
                if old is None:
                    await self._call("on_add", obj)
                else:
                    await self._call("on_update", old, obj)
            elif event.type == "DELETED":
                self.store.remove(obj)
                await self._call("on_delete", obj)
            else:
                logger.warning("%s: unknown watch event type %r", self.info.qualified, event.type)
            rv = new_rv or rv
            self.last_sync_resource_version = rv
        return rv

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.resync)
            for obj in self.store.list():
                await self._call("on_update", obj, obj)

    async def run(self) -> None:
        """Keep the cache current until cancelled."""
        async with asyncio.TaskGroup() as tg:
            if self.resync > 0:
                tg.create_task(self._resync_loop())
            await self._reflect()

    async def _reflect(self) -> None:
        backoff = 0.0
        rv: str | None = None
        while True:
            try:
                if rv is None:
                    rv = await self._list_and_replace()
                rv = await self._watch(rv)
                backoff = 0.0
            except asyncio.CancelledError:
                raise
            except Gone:
                logger.info("%r: resourceVersion %s is too old, relisting", self, rv)
                rv = None
            except ApiError as exc:
                backoff = min(self.max_backoff, max(0.1, backoff * 2))
                logger.warning("%r: %s (%s); retrying in %.1fs", self, exc.status_reason or type(exc).__name__,
                               exc.message, backoff)
                await asyncio.sleep(backoff)
                if exc.status_code != 503:   # not a broken connection: a fresh list is the safe restart
                    rv = None
            except Exception:
                backoff = min(self.max_backoff, max(0.1, backoff * 2))
                logger.exception("%r failed; relisting in %.1fs", self, backoff)
                await asyncio.sleep(backoff)
                rv = None


async def wait_for_cache_sync(*informers: Informer, timeout: float | None = None) -> bool:
    """True once every informer has synced; False if ``timeout`` passes first."""
    try:
        async with asyncio.timeout(timeout):
            for inf in informers:
                await inf.wait_for_sync()
    except TimeoutError:
        return False
    return True


class SharedInformerFactory:
    """One informer per (resource, namespace, selectors), shared by every controller of a process."""

    def __init__(self, client: Any, resync: float = 0.0, namespace: str | None = None) -> None:
        self.client = client
        self.resync = resync
        self.namespace = namespace
        self._informers: dict[tuple[str, str | None, str | None, str | None], Informer] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._started: set[int] = set()

    def informer(self, res: Resource, *, namespace: str | None = None, label_selector: str | None = None,
                 field_selector: str | None = None, indexers: dict[str, IndexFunc] | None = None) -> Informer:
        info = resolve(res)
        ns = namespace if namespace is not None else self.namespace
        key = (info.qualified, ns, label_selector, field_selector)
        inf = self._informers.get(key)
        if inf is None:
            inf = Informer(self.client, info, ns, label_selector, field_selector, self.resync, indexers)
            self._informers[key] = inf
            if self._tg is not None:
                self._start(inf)
        else:
            for name, func in (indexers or {}).items():
                if name not in inf.store._indexers:
                    inf.add_indexer(name, func)
        return inf

    @property
    def informers(self) -> list[Informer]:
        return list(self._informers.values())

    def _start(self, inf: Informer) -> None:
        assert self._tg is not None
        if id(inf) not in self._started:
            self._started.add(id(inf))
            self._tg.create_task(inf.run(), name=f"informer {inf.info.qualified}")

    async def run(self) -> None:
        """Run every informer (also those requested later) until cancelled."""
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            try:
                for inf in self.informers:
                    self._start(inf)
                await asyncio.Event().wait()
            finally:
                self._tg = None

    async def wait_for_cache_sync(self, timeout: float | None = None) -> bool:
        return await wait_for_cache_sync(*self.informers, timeout=timeout)


def keys_of(objs: Iterable[Obj]) -> list[str]:
    return [meta_namespace_key(o) for o in objs]
