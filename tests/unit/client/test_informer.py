"""Informer: list + watch into a store, handlers, indexers, relist on 410 Gone, resync; the factory."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from kubelite.api.resources import NODES, PODS
from kubelite.client import Client
from kubelite.informer import (INDEX_NODE_NAME, Informer, SharedInformerFactory, index_by_namespace,
                               index_by_node_name, meta_namespace_key, split_key, wait_for_cache_sync)
from tests.unit.client.fake_apiserver import FakeApiServer

pytestmark = pytest.mark.unit


def pod(name: str, ns: str = "default", node: str | None = None, **labels: str) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "busybox:1.35"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name, "namespace": ns, "labels": labels}, "spec": spec}


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


def test_keys() -> None:
    assert meta_namespace_key(pod("a", "ns")) == "ns/a"
    assert meta_namespace_key({"metadata": {"name": "n1"}}) == "n1"
    assert split_key("ns/a") == ("ns", "a") and split_key("n1") == (None, "n1")


async def test_list_watch_handlers_and_indexers(client: Client, fake: FakeApiServer) -> None:
    fake.put(PODS, pod("a", node="n1"))
    fake.put(PODS, pod("b", ns="kube-system"))
    inf = Informer(client, PODS, indexers={INDEX_NODE_NAME: index_by_node_name, "namespace": index_by_namespace})
    log: list[tuple[str, str]] = []
    inf.add_handler(on_add=lambda o: log.append(("add", meta_namespace_key(o))),
                    on_update=lambda old, new: log.append(("update", meta_namespace_key(new))),
                    on_delete=lambda o: log.append(("delete", meta_namespace_key(o))))
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(inf.run())
        assert await wait_for_cache_sync(inf, timeout=5)
        assert inf.has_synced
        assert sorted(log) == [("add", "default/a"), ("add", "kube-system/b")]
        assert [o["metadata"]["name"] for o in inf.store.by_index(INDEX_NODE_NAME, "n1")] == ["a"]
        assert inf.store.get("default/a")["kind"] == "Pod"
        fake.put(PODS, pod("a", node="n2"))
        fake.put(PODS, pod("c"))
        fake.remove(PODS, "kube-system", "b")
        await until(lambda: len(log) == 5)
        assert log[2:] == [("update", "default/a"), ("add", "default/c"), ("delete", "kube-system/b")]
        assert inf.store.by_index(INDEX_NODE_NAME, "n1") == []
        assert [o["metadata"]["name"] for o in inf.store.by_index("namespace", "default")] == ["a", "c"]
        # a late handler is told about what is cached
        late: list[str] = []
        inf.add_handler(on_add=lambda o: late.append(meta_namespace_key(o)))
        assert sorted(late) == ["default/a", "default/c"]
        task.cancel()


async def test_relist_on_gone_delivers_missed_changes(client: Client, fake: FakeApiServer) -> None:
    fake.put(PODS, pod("keep"))
    fake.put(PODS, pod("gone"))
    inf = Informer(client, PODS, "default", watch_timeout=(1, 1))
    deleted: list[str] = []
    added: list[str] = []
    inf.add_handler(on_add=lambda o: added.append(o["metadata"]["name"]),
                    on_delete=lambda o: deleted.append(o["metadata"]["name"]))
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(inf.run())
        await inf.wait_for_sync(5)
        assert inf.relists == 1
        # changes the watch cannot replay: history compacted while the watch is between streams
        fake.history.clear()
        fake.objects.pop(("pods", "default", "gone"))
        fake.revision += 5
        fake.put(PODS, pod("new"))
        fake.compact()
        await until(lambda: inf.relists == 2)
        await until(lambda: "new" in added and deleted == ["gone"])
        assert sorted(inf.store.keys()) == ["default/keep", "default/new"]
        assert any(r.query.get("watch") == "true" and r.query.get("timeoutSeconds") == "1" for r in fake.requests)
        task.cancel()


async def test_resync_replays_updates(client: Client, fake: FakeApiServer) -> None:
    fake.put(NODES, {"metadata": {"name": "n1"}})
    inf = Informer(client, NODES, resync=0.05)
    updates: list[str] = []
    inf.add_handler(on_update=lambda old, new: updates.append(new["metadata"]["name"]) if old is new else None)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(inf.run())
        await until(lambda: len(updates) >= 2)
        task.cancel()


async def test_handler_errors_do_not_stop_the_informer(client: Client, fake: FakeApiServer) -> None:
    seen: list[str] = []

    async def bad(o: dict) -> None:
        seen.append(o["metadata"]["name"])
        raise RuntimeError("boom")

    inf = Informer(client, PODS)
    inf.add_handler(on_add=bad)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(inf.run())
        await inf.wait_for_sync(5)
        fake.put(PODS, pod("x"))
        fake.put(PODS, pod("y"))
        await until(lambda: seen == ["x", "y"])
        task.cancel()


async def test_factory_shares_and_runs_late_informers(client: Client, fake: FakeApiServer) -> None:
    fake.put(PODS, pod("a", node="n1"))
    factory = SharedInformerFactory(client)
    pods = factory.informer(PODS)
    assert factory.informer("po") is pods
    assert factory.informer(PODS, field_selector="spec.nodeName=n1") is not pods
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(factory.run())
        assert await factory.wait_for_cache_sync(timeout=5)
        nodes = factory.informer(NODES)
        assert await nodes.wait_for_sync(5)
        assert len(factory.informers) == 3
        task.cancel()
