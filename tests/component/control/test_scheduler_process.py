"""The scheduler process on a real apiserver: FailedScheduling with kube-scheduler's message and the
PodScheduled condition, several schedulers by schedulerName, leader election with fail-over, and
the /healthz and /metrics endpoints of both control-plane processes."""

from __future__ import annotations

import signal
import urllib.request

import pytest

from kubelite.api.resources import LEASES, PODS
from kubelite.client import Client
from tests.component.control.helpers import wait_for
from tests.support.cluster import free_port

pytestmark = [pytest.mark.component, pytest.mark.timeout(120)]


def pod(name: str, cpu: str = "100m", scheduler: str | None = None) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu}}}]}
    if scheduler:
        spec["schedulerName"] = scheduler
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


async def _node_of(client: Client, name: str) -> str | None:
    return (await client.get(PODS, name, namespace="default"))["spec"].get("nodeName")


async def test_unschedulable_pod_gets_event_and_condition_then_fits_when_a_node_comes(processes, apiserver_url):
    processes.start("scheduler", "scheduler", "--port", "-1", "--leader-elect", "false")
    processes.start("hollow", "hollow", "--nodes", "3", "--cpu", "1", "--name-prefix", "small-")
    async with Client.from_url(apiserver_url) as client:
        async def small_nodes() -> bool:
            return len((await client.list("nodes"))["items"]) == 3
        await wait_for(small_nodes, 30, "3 hollow nodes registered")
        await client.create(PODS, pod("huge", cpu="2"), namespace="default")
        want = ("0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
                "3 No preemption victims found for incoming pod.")

        # (a scheduler whose informer is a moment behind says 0/2 first, then retries on the node's add)
        async def condition() -> dict | None:
            p = await client.get(PODS, "huge", namespace="default")
            return next((c for c in (p.get("status") or {}).get("conditions") or ()
                         if c["type"] == "PodScheduled" and c["status"] == "False" and c["message"] == want), None)
        cond = await wait_for(condition, 30, "PodScheduled=False for 0/3 nodes")
        assert cond["reason"] == "Unschedulable"

        async def event() -> list:
            evs = (await client.list("events", namespace="default"))["items"]
            return [e for e in evs if e.get("reason") == "FailedScheduling" and e["message"] == want]
        evs = await wait_for(event, 30, "FailedScheduling event for 0/3 nodes")
        assert evs[0]["type"] == "Warning"
        assert evs[0]["involvedObject"]["name"] == "huge"
        # a bigger node arrives: the node-add event moves the pod out of the unschedulable queue
        processes.start("hollow-big", "hollow", "--nodes", "1", "--cpu", "4", "--name-prefix", "big-")
        assert await wait_for(lambda: _node_of(client, "huge"), 30, "huge bound") == "big-0"
        evs = (await client.list("events", namespace="default"))["items"]
        assert any(e.get("reason") == "Scheduled" and e["message"] == "Successfully assigned default/huge to big-0"
                   for e in evs)


async def test_pods_go_to_the_scheduler_they_name(processes, apiserver_url):
    processes.start("default", "scheduler", "--port", "-1", "--leader-elect", "false")
    processes.start("second", "scheduler", "--port", "-1", "--leader-elect", "false",
                    "--scheduler-name", "second-scheduler")
    processes.start("hollow", "hollow", "--nodes", "2")
    async with Client.from_url(apiserver_url) as client:
        await client.create(PODS, pod("a"), namespace="default")
        await client.create(PODS, pod("b", scheduler="second-scheduler"), namespace="default")
        await client.create(PODS, pod("c", scheduler="nobody"), namespace="default")
        await wait_for(lambda: _node_of(client, "a"), 30, "a bound")
        await wait_for(lambda: _node_of(client, "b"), 30, "b bound")
        evs = (await client.list("events", namespace="default"))["items"]
        sources = {e["involvedObject"]["name"]: (e.get("source") or {}).get("component") or e.get("reportingComponent")
                   for e in evs if e.get("reason") == "Scheduled"}
        assert sources == {"a": "default-scheduler", "b": "second-scheduler"}
        assert await _node_of(client, "c") is None


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.read().decode()


async def test_leader_election_fails_over_and_endpoints_serve(processes, apiserver_url):
    le = ["--leader-elect", "true", "--leader-elect-lease-duration", "3", "--leader-elect-renew-deadline", "2",
          "--leader-elect-retry-period", "0.5"]
    ports = [free_port(), free_port()]
    for i, port in enumerate(ports):
        processes.start(f"s{i}", "scheduler", "--port", str(port), *le)
    cm_port = free_port()
    processes.start("cm", "controllers", "--port", str(cm_port), *le)
    processes.start("hollow", "hollow", "--nodes", "1")
    async with Client.from_url(apiserver_url) as client:
        async def holder() -> str:
            lease = await client.get(LEASES, "kube-scheduler", namespace="kube-system")
            return lease["spec"].get("holderIdentity") or ""
        first = await wait_for(holder, 30, "a scheduler leads")
        await client.create(PODS, pod("one"), namespace="default")
        await wait_for(lambda: _node_of(client, "one"), 30, "one bound")
        leader = next(n for n in ("s0", "s1") if first.endswith(f"_{processes.procs[n].pid}"))
        port = ports[int(leader[1])]
        metrics = _get(f"http://127.0.0.1:{port}/metrics")
        assert _get(f"http://127.0.0.1:{port}/healthz") == "ok"
        assert 'scheduler_schedule_attempts_total{profile="default-scheduler",result="scheduled"} 1.0' in metrics
        assert "scheduler_pending_pods" in metrics and "scheduler_scheduling_attempt_duration_seconds" in metrics
        cm = await wait_for(lambda: _async(lambda: _get(f"http://127.0.0.1:{cm_port}/metrics")), 20, "cm metrics")
        assert 'workqueue_adds_total{name="nodeipam"}' in cm
        for family in ("workqueue_depth", "workqueue_queue_duration_seconds", "workqueue_work_duration_seconds",
                       "workqueue_retries_total"):
            assert family in cm, family
        assert (await client.get(LEASES, "kube-controller-manager", namespace="kube-system"))["spec"]["holderIdentity"]
        processes.signal(leader, signal.SIGKILL)
        second = await wait_for(lambda: _other(holder, first), 30, "the other scheduler takes over")
        assert second != first
        await client.create(PODS, pod("two"), namespace="default")
        await wait_for(lambda: _node_of(client, "two"), 30, "two bound by the new leader")


async def _async(fn):  # run a tiny blocking call where the helpers expect a coroutine
    return fn()


async def _other(holder, first: str) -> str | None:
    h = await holder()
    return h if h and h != first else None
