"""The watch cache on the memory store: state, replay window, 410, selector transitions, overflow."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from apiserver.storage.memory import MemoryStore
from apiserver.watchcache import CachedEvent, CacheWatcher, ResourceCache
from kubelite.api import codec
from kubelite.api.errors import Gone
from kubelite.api.resources import PODS


def pod(name: str, app: str = "web") -> bytes:
    return codec.dumps({"kind": "Pod", "metadata": {"name": name, "namespace": "default", "labels": {"app": app}}})


async def drain(w: CacheWatcher, n: int) -> list[tuple[str, str]]:
    out = []
    for _ in range(n):
        ev = await asyncio.wait_for(w.queue.get(), 2)
        assert ev is not None
        out.append((ev.type, ev.obj["metadata"]["name"]))
    return out


async def wait_rv(cache: ResourceCache, rv: int) -> None:
    async with asyncio.timeout(2):
        while cache.rv < rv:
            await asyncio.sleep(0.001)


async def test_state_replay_and_too_old() -> None:
    store = MemoryStore()
    r_a = await store.create("/r/pods/default/a", pod("a"))
    cache = ResourceCache(store, PODS, "/r/pods/", window=3)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(cache.run())
        await cache.ready.wait()
        assert cache.complete_from == r_a
        w0 = cache.watch(0, None, lambda o: True)
        assert await drain(w0, 1) == [("ADDED", "a")]
        revs = [await store.create(f"/r/pods/default/p{i}", pod(f"p{i}")) for i in range(4)]
        await store.delete("/r/pods/default/a", 0)
        await wait_rv(cache, revs[-1] + 1)
        assert await drain(w0, 5) == [("ADDED", "p0"), ("ADDED", "p1"), ("ADDED", "p2"), ("ADDED", "p3"),
                                      ("DELETED", "a")]
        replay = cache.watch(revs[2], "default", lambda o: True)          # window holds the last three
        assert await drain(replay, 2) == [("ADDED", "p3"), ("DELETED", "a")]
        with pytest.raises(Gone, match="too old resource version"):
            cache.watch(revs[0], None, lambda o: True)
        task.cancel()


async def test_selector_transitions() -> None:
    store = MemoryStore()
    cache = ResourceCache(store, PODS, "/r/pods/")
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(cache.run())
        await cache.ready.wait()

        def web(o: dict[str, Any]) -> bool:
            return o["metadata"]["labels"].get("app") == "web"
        w = cache.watch(cache.rv, None, web)
        r = await store.create("/r/pods/default/x", pod("x", "db"))
        r = await store.update("/r/pods/default/x", pod("x", "web"), r)
        r = await store.update("/r/pods/default/x", pod("x", "web"), r)
        r = await store.update("/r/pods/default/x", pod("x", "db"), r)
        await wait_rv(cache, r)
        assert await drain(w, 3) == [("ADDED", "x"), ("MODIFIED", "x"), ("DELETED", "x")]
        task.cancel()


def test_overflowing_watcher_is_closed() -> None:
    w = CacheWatcher("/r/pods/", lambda o: True, 0, asyncio.Queue(2))
    for i in range(3):
        w.offer(CachedEvent("ADDED", f"/r/pods/default/p{i}", b'{"metadata":{"name":"p%d"}}' % i, None, i + 1))
    assert w.closed
    items = []
    while not w.queue.empty():
        items.append(w.queue.get_nowait())
    assert items[-1] is None                 # the handler sees the end of the stream


def test_event_lines_are_encoded_once() -> None:
    ev = CachedEvent("ADDED", "k", b'{"metadata":{"name":"a","resourceVersion":"5"}}', None, 5)
    assert ev.line() is ev.line()
    assert codec.loads(ev.line()) == {"type": "ADDED", "object": {"metadata": {"name": "a", "resourceVersion": "5"}}}


async def test_objects_are_kept_as_wire_json() -> None:
    """The cache holds bytes (nothing for the cycle GC to walk); readers get fresh decoded copies;
    a DELETED event carries the last state at the deletion's revision."""
    store = MemoryStore()
    cache = ResourceCache(store, PODS, "/r/pods/")
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(cache.run())
        await cache.ready.wait()
        w = cache.watch(cache.rv, None, None)
        r1 = await store.create("/r/pods/default/a", pod("a"))
        r2 = await store.delete("/r/pods/default/a", 0)
        await wait_rv(cache, r2)
        added, deleted = w.queue.get_nowait(), w.queue.get_nowait()
        assert added is not None and deleted is not None
        assert codec.loads(added.line())["object"]["metadata"]["resourceVersion"] == str(r1)
        assert (deleted.type, deleted.obj["metadata"]["resourceVersion"]) == ("DELETED", str(r2))
        r3 = await store.create("/r/pods/default/b", pod("b"))
        await wait_rv(cache, r3)
        value, rv = cache.objects["/r/pods/default/b"], cache.revisions["/r/pods/default/b"]
        assert isinstance(value, bytes) and rv == r3
        copy = cache.get("/r/pods/default/b")
        assert copy is not None and copy["metadata"]["resourceVersion"] == str(r3)
        copy["metadata"]["labels"]["app"] = "changed"
        assert cache.get("/r/pods/default/b")["metadata"]["labels"]["app"] == "web"       # type: ignore[index]
        assert [k for k, _ in cache.items("/r/pods/default/")] == ["/r/pods/default/b"]
        task.cancel()
