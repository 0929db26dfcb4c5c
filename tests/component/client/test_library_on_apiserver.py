"""The client library against the real apiserver (+ etcd): the wire details fakes cannot prove.

Async Client verbs and errors, watch from a resourceVersion, Informer list+watch with selectors,
EventRecorder dedup on real Events, LeaderElector on a real Lease with resourceVersion preconditions.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from kubelite.api.errors import AlreadyExists, Conflict, Invalid, NotFound
from kubelite.api.resources import EVENTS, LEASES, NODES, PODS
from kubelite.client import Client
from kubelite.events import EventRecorder
from kubelite.informer import INDEX_NODE_NAME, Informer, index_by_node_name, meta_namespace_key
from kubelite.leaderelection import LeaderElectionConfig, LeaderElector

pytestmark = pytest.mark.component


def pod(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.35"}]}}


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.02)


@pytest.fixture
async def client(apiserver_url: str) -> AsyncIterator[Client]:
    async with Client.from_url(apiserver_url) as c:
        yield c


async def test_verbs_errors_and_watch(client: Client) -> None:
    created = await client.create(PODS, pod("a", app="x"))
    rv = created["metadata"]["resourceVersion"]
    with pytest.raises(AlreadyExists):
        await client.create(PODS, pod("a"))
    with pytest.raises(Invalid) as err:
        await client.create(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b"}, "spec": {}})
    assert any(c.get("field", "").startswith("spec.containers") for c in err.value.causes)
    stale = dict(created)
    await client.patch(PODS, "a", {"metadata": {"labels": {"v": "2"}}})
    with pytest.raises(Conflict):
        await client.update(PODS, stale)
    await client.patch(PODS, "a", {"spec": {"containers": [{"name": "c", "image": "busybox:latest"}]}},
                       patch_type="strategic")
    await client.patch(PODS, "a", [{"op": "replace", "path": "/metadata/labels/v", "value": "3"}], patch_type="json")
    events = []
    async for event in client.watch(PODS, "default", resource_version=rv, timeout_seconds=2):
        events.append((event.type, event.object["metadata"].get("labels", {}).get("v")))
        if len(events) == 3:
            break
    assert events == [("MODIFIED", "2"), ("MODIFIED", "2"), ("MODIFIED", "3")]
    await client.delete(PODS, "a", grace_period_seconds=0)
    with pytest.raises(NotFound):
        await client.get(PODS, "a")


async def test_informer_on_a_field_selector(client: Client) -> None:
    for name, node in (("p1", "n1"), ("p2", "n2")):
        p = pod(name)
        p["spec"]["nodeName"] = node
        await client.create(PODS, p)
    inf = Informer(client, PODS, field_selector="spec.nodeName=n1",
                   indexers={INDEX_NODE_NAME: index_by_node_name})
    seen: list[tuple[str, str]] = []
    inf.add_handler(on_add=lambda o: seen.append(("add", meta_namespace_key(o))),
                    on_delete=lambda o: seen.append(("delete", meta_namespace_key(o))))
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(inf.run())
        assert await inf.wait_for_sync(10)
        assert seen == [("add", "default/p1")]
        p3 = pod("p3")
        p3["spec"]["nodeName"] = "n1"
        await client.create(PODS, p3)
        await client.delete(PODS, "p1", grace_period_seconds=0)
        await until(lambda: ("delete", "default/p1") in seen and ("add", "default/p3") in seen)
        assert [o["metadata"]["name"] for o in inf.store.by_index(INDEX_NODE_NAME, "n1")] == ["p3"]
        task.cancel()


async def test_event_recorder_and_leader_election(client: Client) -> None:
    node = await client.create(NODES, {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n-ev"}})
    rec = EventRecorder(client, "kubelet", host="n-ev")
    for _ in range(3):
        assert await rec.record(node, "Normal", "Starting", "Starting kubelet.") is not None
    events = (await client.list(EVENTS, "default", field_selector="involvedObject.name=n-ev"))["items"]
    assert [(e["reason"], e["count"]) for e in events] == [("Starting", 3)]
    assert events[0]["source"] == {"component": "kubelet", "host": "n-ev"}

    a = LeaderElector(client, LeaderElectionConfig("test-lock", "a"))
    b = LeaderElector(client, LeaderElectionConfig("test-lock", "b"))
    assert await a.try_acquire_or_renew()
    assert not await b.try_acquire_or_renew() and b.leader == "a"
    lease = await client.get(LEASES, "test-lock", "kube-system")
    assert lease["spec"]["holderIdentity"] == "a" and lease["spec"]["leaseDurationSeconds"] == 15
    assert await a.release()
    assert await b.try_acquire_or_renew()
    assert (await client.get(LEASES, "test-lock", "kube-system"))["spec"]["leaseTransitions"] == 1
