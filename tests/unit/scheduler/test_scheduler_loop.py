"""The scheduler loop against a fake client that records every call."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kubelite.api.errors import NotFound
from scheduler.framework.runtime import Framework
from scheduler.plugins import SCORE_WEIGHTS, default_plugins
from scheduler.plugins.defaultbinder import DefaultBinder
from scheduler.scheduler import Scheduler
from tests.unit.scheduler.helpers import make_node, make_pod

pytestmark = pytest.mark.unit


class FakeClient:
    def __init__(self) -> None:
        self.actions: list[tuple[str, Any, ...]] = []
        self.missing: set[str] = set()

    async def create_subresource(self, res, name, sub, body, namespace=None):
        if name in self.missing:
            raise NotFound(f'pods "{name}" not found')
        self.actions.append(("create", f"{res.resource}/{sub}", namespace, name, body))
        return body

    async def patch(self, res, name, body, namespace=None, patch_type="merge", subresource=None, **kw):
        self.actions.append(("patch", f"{res.resource}/{subresource}", namespace, name, body))
        return body


class FakeRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str]] = []

    def event(self, obj, type, reason, message):
        self.events.append((obj["metadata"]["name"], type, reason, message))


def make_scheduler(client, names=("default-scheduler",)):
    profiles = {n: Framework(n, default_plugins(), SCORE_WEIGHTS) for n in names}
    return Scheduler(client, profiles, DefaultBinder(client), recorder=FakeRecorder())


async def wait_for(cond, timeout=5.0):
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.005)


async def run_until(sched, cond, timeout=5.0):
    task = asyncio.create_task(sched.run())
    try:
        await wait_for(cond, timeout)
    finally:
        sched.queue.close()
        await task


async def test_binds_a_burst_without_overcommitting_and_records_events():
    client = FakeClient()
    sched = make_scheduler(client)
    for i in range(2):
        sched.on_node_add(make_node(f"n{i}", cpu="1", memory="1Gi"))
    for i in range(5):
        sched.on_pod_add(make_pod(f"p{i}", cpu="400m"))
    await run_until(sched, lambda: sched.bound == 4 and len(sched.recorder.events) == 5)
    binds = [a for a in client.actions if a[1] == "pods/binding"]
    per_node: dict[str, int] = {}
    for a in binds:
        assert a[4]["kind"] == "Binding" and a[4]["metadata"]["name"] == a[3]
        per_node[a[4]["target"]["name"]] = per_node.get(a[4]["target"]["name"], 0) + 1
    assert per_node == {"n0": 2, "n1": 2}
    failed = [e for e in sched.recorder.events if e[2] == "FailedScheduling"]
    assert len(failed) == 1 and failed[0][1] == "Warning"
    assert failed[0][3] == ("0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: "
                            "2 No preemption victims found for incoming pod.")
    assert sum(1 for e in sched.recorder.events if e[2] == "Scheduled") == 4
    patch = [a for a in client.actions if a[1] == "pods/status"]
    assert len(patch) == 1
    cond = patch[0][4]["status"]["conditions"][0]
    assert (cond["type"], cond["status"], cond["reason"]) == ("PodScheduled", "False", "Unschedulable")
    assert sched.queue.pending()["unschedulable"] == 1


async def test_unschedulable_pod_is_retried_when_a_node_is_added():
    client = FakeClient()
    sched = make_scheduler(client)
    sched.queue._initial = 0.01   # keep the test fast
    sched.on_pod_add(make_pod("p", cpu="2"))
    sched.on_node_add(make_node("small", cpu="1"))
    task = asyncio.create_task(sched.run())
    try:
        await wait_for(lambda: sched.queue.pending()["unschedulable"] == 1)
        sched.on_node_add(make_node("big", cpu="4"))
        await wait_for(lambda: sched.bound == 1)
    finally:
        sched.queue.close()
        await task
    assert [a[4]["target"]["name"] for a in client.actions if a[1] == "pods/binding"] == ["big"]


async def test_only_pods_of_served_profiles_are_scheduled():
    client = FakeClient()
    sched = make_scheduler(client, names=("default-scheduler", "second"))
    sched.on_node_add(make_node("n0"))
    sched.on_pod_add(make_pod("mine", schedulerName="second"))
    sched.on_pod_add(make_pod("other", schedulerName="someone-else"))
    sched.on_pod_add(make_pod("bound", node="n0"))
    await run_until(sched, lambda: sched.bound == 1)
    assert [a[3] for a in client.actions if a[1] == "pods/binding"] == ["mine"]
    assert sched.cache.get_node("n0").pods.keys() == {"default/bound", "default/mine"}


async def test_binding_of_a_deleted_pod_is_forgotten():
    client = FakeClient()
    client.missing.add("gone")
    sched = make_scheduler(client)
    sched.on_node_add(make_node("n0"))
    sched.on_pod_add(make_pod("gone", cpu="1"))
    await run_until(sched, lambda: sched.metrics.schedule_attempts.labels("error", "default-scheduler")._value.get() == 1)
    assert sched.cache.get_node("n0").requested.milli_cpu == 0
    assert len(sched.queue) == 0


async def test_status_only_updates_do_not_requeue_an_unschedulable_pod():
    client = FakeClient()
    sched = make_scheduler(client)
    pod = make_pod("p", cpu="8")
    sched.on_node_add(make_node("n0", cpu="1"))
    sched.on_pod_add(pod)
    await run_until(sched, lambda: sched.queue.pending()["unschedulable"] == 1)
    with_condition = {**pod, "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False"}]}}
    sched.on_pod_update(pod, with_condition)
    assert sched.queue.pending()["unschedulable"] == 1
    relabelled = {**with_condition, "metadata": {**pod["metadata"], "labels": {"x": "y"}}}
    sched.on_pod_update(with_condition, relabelled)
    assert sched.queue.pending()["unschedulable"] == 0
