"""EventRecorder: core/v1 Event shape, dedup by bumping count, per-object rate limit."""

from __future__ import annotations

import asyncio

import pytest

from kubelite.api.resources import EVENTS, NODES, PODS
from kubelite.client import Client
from kubelite.events import EventRecorder
from tests.unit.client.fake_apiserver import FakeApiServer

pytestmark = pytest.mark.unit


async def test_event_shape_and_dedup(client: Client, fake: FakeApiServer) -> None:
    pod = fake.put(PODS, {"metadata": {"name": "web", "namespace": "team"}})
    rec = EventRecorder(client, "default-scheduler", host="node1")
    first = await rec.record(pod, "Normal", "Scheduled", "Successfully assigned team/web to node1")
    assert first is not None
    assert first["metadata"]["namespace"] == "team" and first["metadata"]["name"].startswith("web.")
    assert first["involvedObject"] == {"kind": "Pod", "apiVersion": "v1", "name": "web", "namespace": "team",
                                       "uid": pod["metadata"]["uid"],
                                       "resourceVersion": pod["metadata"]["resourceVersion"]}
    assert first["source"] == {"component": "default-scheduler", "host": "node1"}
    assert first["count"] == 1 and first["type"] == "Normal" and first["firstTimestamp"] == first["lastTimestamp"]
    again = await rec.record(pod, "Normal", "Scheduled", "Successfully assigned team/web to node1")
    assert again is not None and again["count"] == 2
    assert again["metadata"]["name"] == first["metadata"]["name"]
    assert fake.requests[-1].method == "PATCH"
    other = await rec.record(pod, "Warning", "Failed", "boom")
    assert other is not None and other["metadata"]["name"] != first["metadata"]["name"]
    stored = (await client.list(EVENTS, "team"))["items"]
    assert sorted(e["count"] for e in stored) == [1, 2]


async def test_cluster_scoped_objects_go_to_default_and_queue_drains(client: Client, fake: FakeApiServer) -> None:
    node = fake.put(NODES, {"metadata": {"name": "n1"}})
    rec = EventRecorder(client, "kubelet", host="n1")
    rec.event(node, "Normal", "Starting", "Starting kubelet.")
    rec.eventf(node, "Normal", "NodeReady", "Node %s status is now: %s", "n1", "NodeReady")
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(rec.run())
        async with asyncio.timeout(5):
            while len((await client.list(EVENTS, "default"))["items"]) < 2:
                await asyncio.sleep(0.01)
        task.cancel()
    reasons = sorted(e["reason"] for e in (await client.list(EVENTS, "default"))["items"])
    assert reasons == ["NodeReady", "Starting"]


async def test_rate_limit_per_object(client: Client, fake: FakeApiServer) -> None:
    pod = fake.put(PODS, {"metadata": {"name": "spam"}})
    now = [0.0]
    rec = EventRecorder(client, "c", host="h", burst=3, qps=1.0, clock=lambda: now[0])
    results = [await rec.record(pod, "Warning", "R", f"m{i}") for i in range(5)]
    assert [r is not None for r in results] == [True, True, True, False, False]
    assert rec.dropped == 2
    now[0] = 1.0
    assert await rec.record(pod, "Warning", "R", "later") is not None


async def test_parallel_writes_keep_identical_events_in_one_bumped_event(client: Client, fake: FakeApiServer) -> None:
    pods = [fake.put(PODS, {"metadata": {"name": f"p{i}", "namespace": "team"}}) for i in range(20)]
    rec = EventRecorder(client, "default-scheduler", host="h", parallel=8)
    for _ in range(4):
        rec.event(pods[0], "Warning", "FailedScheduling", "0/3 nodes are available")
    for p in pods:
        rec.event(p, "Normal", "Scheduled", f"Successfully assigned team/{p['metadata']['name']} to n1")
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(rec.run())
        async with asyncio.timeout(5):
            while True:
                items = (await client.list(EVENTS, "team"))["items"]
                failed = [e for e in items if e["reason"] == "FailedScheduling"]
                if len(items) == 21 and failed and failed[0]["count"] == 4:
                    break
                await asyncio.sleep(0.01)
        task.cancel()
    assert sorted(e["involvedObject"]["name"] for e in items if e["reason"] == "Scheduled") == \
        sorted(p["metadata"]["name"] for p in pods)
    assert not rec._key_locks
