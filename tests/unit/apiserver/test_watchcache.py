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
        w.offer(CachedEvent("ADDED", f"/r/pods/default/p{i}", {"metadata": {"name": f"p{i}"}}, None, i + 1))
    assert w.closed
    items = []
    while not w.queue.empty():
        items.append(w.queue.get_nowait())
    assert items[-1] is None                 # the handler sees the end of the stream


def test_event_lines_are_encoded_once() -> None:
    ev = CachedEvent("ADDED", "k", {"metadata": {"name": "a"}}, None, 5)
    assert ev.line() is ev.line()
    assert codec.loads(ev.line()) == {"type": "ADDED", "object": {"metadata": {"name": "a"}}}
