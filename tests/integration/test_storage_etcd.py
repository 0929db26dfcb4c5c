"""The etcd storage module against a real etcd: txn semantics, paging, compaction, watch resume,
and the HTTP/2 transport's framing and flow control with values and replies larger than its windows."""

from __future__ import annotations

import asyncio
import uuid
from typing import AsyncIterator

import pytest

from apiserver.storage import (CompactedError, KeyExistsError, KeyNotFoundError, RevisionMismatchError,
                               UnavailableError, WatchEvent)
from apiserver.storage.etcd import EtcdStore
from tests.support import cluster


@pytest.fixture
async def store(etcd_server: cluster.EtcdServer) -> AsyncIterator[EtcdStore]:
    s = EtcdStore([etcd_server.url])
    yield s
    await s.close()


def prefix() -> str:
    return f"/kubelite-test-{uuid.uuid4().hex[:8]}/pods/"


async def test_conditional_writes(store: EtcdStore) -> None:
    p = prefix()
    rev = await store.create(p + "a", b"1")
    with pytest.raises(KeyExistsError):
        await store.create(p + "a", b"2")
    rev2 = await store.update(p + "a", b"2", rev)
    assert rev2 > rev
    with pytest.raises(RevisionMismatchError) as e:
        await store.update(p + "a", b"3", rev)
    assert e.value.current is not None and e.value.current.value == b"2" and e.value.current.mod_revision == rev2
    with pytest.raises(RevisionMismatchError):
        await store.delete(p + "a", rev)
    await store.delete(p + "a", rev2)
    with pytest.raises(KeyNotFoundError):
        await store.delete(p + "a", 0)
    assert await store.get(p + "a") is None


async def test_paged_list_at_pinned_revision_and_compaction(store: EtcdStore) -> None:
    p = prefix()
    for i in range(5):
        await store.create(f"{p}k{i}", str(i).encode())
    page = await store.list(p, limit=2)
    assert [kv.key[len(p):] for kv in page.kvs] == ["k0", "k1"] and page.more
    pinned = page.revision
    await store.delete(p + "k3", 0)
    rest = await store.list(p, start=page.kvs[-1].key + "\0", revision=pinned)
    assert [kv.key[len(p):] for kv in rest.kvs] == ["k2", "k3", "k4"]        # k3 still there at the pinned rev
    now = await store.current_revision()
    await store.compact(now)
    with pytest.raises(CompactedError):
        await store.list(p, revision=pinned)
    with pytest.raises(CompactedError):
        async for _ in store.watch(p, pinned):
            pass


async def test_large_values_and_replies_cross_frames_and_windows(store: EtcdStore) -> None:
    """A 1 MiB value (> etcd's 16 KiB frames and 64 KiB initial window: sent in flow-controlled
    pieces), 64 concurrent 20 KiB writes, and one 3 MiB range reply (many DATA frames)."""
    p = prefix()
    big = bytes(range(256)) * 4096
    rev = await store.create(p + "big", big)
    got = await store.get(p + "big")
    assert got is not None and got.value == big and got.mod_revision == rev
    values = {f"{p}v{i:03d}": (b"%03d" % i) * 7000 for i in range(64)}
    revs = await asyncio.gather(*(store.create(k, v) for k, v in values.items()))
    assert len(set(revs)) == 64                                 # every create its own revision
    page = await store.list(p)
    assert {kv.key: kv.value for kv in page.kvs} == {p + "big": big, **values} and not page.more


async def test_unreachable_etcd_is_unavailable() -> None:
    store = EtcdStore([f"http://127.0.0.1:{cluster.free_port()}"], timeout=2.0)
    try:
        with pytest.raises(UnavailableError):
            await store.get("/x")
    finally:
        await store.close()


async def test_watch_resumes_across_an_etcd_restart(caplog: pytest.LogCaptureFixture) -> None:
    """Kill etcd mid-watch; the storage watch reconnects from the last event + 1 and loses nothing."""
    with cluster.etcd_server() as etcd:
        store = EtcdStore([etcd.url])
        p = prefix()
        seen: list[WatchEvent] = []
        got_all = asyncio.Event()

        async def follow() -> None:
            async for ev in store.watch(p, start + 1):
                seen.append(ev)
                if len(seen) == 6:
                    got_all.set()
        start = 0
        try:
            start = await store.current_revision()
            async with asyncio.TaskGroup() as tg:
                task = tg.create_task(follow())
                for i in range(3):
                    await store.create(f"{p}before-{i}", b"x")
                await cluster_wait(lambda: len(seen) == 3)
                etcd.stop()
                await asyncio.to_thread(etcd.start)
                writer = EtcdStore([etcd.url])
                try:
                    for i in range(3):
                        await writer.create(f"{p}after-{i}", b"y")
                finally:
                    await writer.close()
                await asyncio.wait_for(got_all.wait(), 20)
                task.cancel()
            assert [ev.key[len(p):] for ev in seen] == [f"before-{i}" for i in range(3)] + [f"after-{i}" for i in range(3)]
            assert any("resuming from revision" in r.getMessage() for r in caplog.records)   # it did break
            revs = [ev.revision for ev in seen]
            assert revs == sorted(revs) and len(set(revs)) == 6 and revs[0] > start
        finally:
            await store.close()


async def cluster_wait(cond, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
