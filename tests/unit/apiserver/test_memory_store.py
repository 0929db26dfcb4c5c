"""The memory store keeps etcd's revision semantics (the unit-test stand-in for etcd)."""

from __future__ import annotations

import asyncio

import pytest

from apiserver.storage import CompactedError, KeyExistsError, KeyNotFoundError, RevisionMismatchError, prefix_end
from apiserver.storage.memory import MemoryStore


async def test_revisions_and_conditional_writes() -> None:
    s = MemoryStore()
    r1 = await s.create("/r/pods/a", b"1")
    assert r1 == 2 and (await s.get("/r/pods/a")).mod_revision == 2
    with pytest.raises(KeyExistsError):
        await s.create("/r/pods/a", b"x")
    r2 = await s.update("/r/pods/a", b"2", r1)
    with pytest.raises(RevisionMismatchError) as e:
        await s.update("/r/pods/a", b"3", r1)
    assert e.value.current is not None and e.value.current.mod_revision == r2
    with pytest.raises(KeyNotFoundError):
        await s.delete("/r/pods/zzz", 0)
    await s.delete("/r/pods/a", r2)
    assert await s.get("/r/pods/a") is None
    assert await s.current_revision() == r2 + 1


async def test_list_pages_and_past_revisions() -> None:
    s = MemoryStore()
    for k in ("a", "b", "c", "d"):
        await s.create(f"/r/pods/{k}", k.encode())
    await s.create("/r/podsx/zzz", b"other prefix")
    page = await s.list("/r/pods/", limit=3)
    assert [kv.key for kv in page.kvs] == ["/r/pods/a", "/r/pods/b", "/r/pods/c"] and page.more
    pinned = page.revision
    await s.delete("/r/pods/d", 0)
    rest = await s.list("/r/pods/", start="/r/pods/c\0", revision=pinned)
    assert [kv.key for kv in rest.kvs] == ["/r/pods/d"] and not rest.more
    assert [kv.key for kv in (await s.list("/r/pods/")).kvs] == ["/r/pods/a", "/r/pods/b", "/r/pods/c"]
    await s.compact(await s.current_revision())
    with pytest.raises(CompactedError):
        await s.list("/r/pods/", revision=pinned)


async def test_watch_replays_then_follows() -> None:
    s = MemoryStore()
    r = await s.create("/r/pods/a", b"1")
    await s.update("/r/pods/a", b"2", r)
    got = []

    async def follow() -> None:
        async for ev in s.watch("/r/pods/", r):
            got.append((ev.type, ev.key, ev.value, ev.prev_value))
            if len(got) == 3:
                return
    task = asyncio.create_task(follow())
    await asyncio.sleep(0)
    await s.delete("/r/pods/a", 0)
    await asyncio.wait_for(task, 2)
    assert got == [("PUT", "/r/pods/a", b"1", None), ("PUT", "/r/pods/a", b"2", b"1"), ("DELETE", "/r/pods/a", None, b"2")]


async def test_watch_from_compacted_revision_fails() -> None:
    s = MemoryStore()
    r = await s.create("/r/pods/a", b"1")
    await s.update("/r/pods/a", b"2", r)
    await s.compact(r + 1)
    with pytest.raises(CompactedError):
        async for _ in s.watch("/r/pods/", r):
            pass


def test_prefix_end() -> None:
    assert prefix_end("/r/pods/") == "/r/pods0"
    assert prefix_end("/r/ns/") == "/r/ns0"


def test_stored_layout_lets_lists_skip_decoding() -> None:
    from apiserver.listing import encode, with_resource_version
    from kubelite.api import codec

    obj = {"spec": {"template": {"metadata": {"labels": {"a": "b"}}}}, "metadata": {"name": "x", "resourceVersion": "9"},
           "kind": "Deployment", "apiVersion": "apps/v1"}
    stored = encode(obj)
    out = with_resource_version(stored, 42)
    assert out is not None
    assert codec.loads(out) == dict(obj, metadata={"name": "x", "resourceVersion": "42"})
    empty = encode({"apiVersion": "v1", "kind": "Namespace", "metadata": {}})
    assert codec.loads(with_resource_version(empty, 7) or b"") == {"apiVersion": "v1", "kind": "Namespace",
                                                                  "metadata": {"resourceVersion": "7"}}
    assert with_resource_version(b'{"kind":"{","metadata":{}}', 1) is None       # not our layout: decode instead
