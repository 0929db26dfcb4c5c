"""Cascading deletion with each propagation policy, and a node that stops renewing its Lease —
on a real apiserver + etcd with the real controller-manager, scheduler and hollow nodes."""

from __future__ import annotations

import signal

import pytest

from kubelite.api.errors import NotFound
from kubelite.api.resources import DEPLOYMENTS, NODES, PODS, REPLICASETS
from kubelite.client import Client
from tests.component.control.helpers import is_active, is_ready, wait_for
from tests.component.control.test_workloads import deploy_manifest, running

pytestmark = [pytest.mark.component, pytest.mark.timeout(120)]


async def _gone(client: Client, res, name: str) -> bool:
    try:
        await client.get(res, name, namespace="default")
    except NotFound:
        return True
    return False


async def _count(client: Client, res, label: str | None = None) -> int:
    return len((await client.list(res, namespace="default", label_selector=label))["items"])


@pytest.mark.parametrize("policy", ["Background", "Foreground", "Orphan"])
async def test_cascading_delete(control_plane, apiserver_url, policy):
    async with Client.from_url(apiserver_url) as client:
        await client.create(DEPLOYMENTS, deploy_manifest("app", 2, "nginx:1"), namespace="default")
        await wait_for(lambda: running(client, "app=app", 2), 30, "pods running")
        d = await client.delete(DEPLOYMENTS, "app", namespace="default", propagation_policy=policy)
        if policy == "Foreground":   # the DELETE answers with the object, held by its finalizer ...
            assert d["metadata"].get("deletionTimestamp")
            assert "foregroundDeletion" in d["metadata"].get("finalizers", [])
        await wait_for(lambda: _gone(client, DEPLOYMENTS, "app"), 30, "deployment gone")
        if policy == "Orphan":
            rss = (await client.list(REPLICASETS, namespace="default"))["items"]
            assert len(rss) == 1 and not rss[0]["metadata"].get("ownerReferences")
            pods = (await client.list(PODS, namespace="default", label_selector="app=app"))["items"]
            assert len([p for p in pods if is_active(p)]) == 2
            assert all(p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet" for p in pods)
        else:
            if policy == "Foreground":   # ... until its dependents were gone
                assert await _count(client, REPLICASETS) == 0
            await wait_for(lambda: _zero(client), 30, "replicasets and pods gone")


async def _zero(client: Client) -> bool:
    return await _count(client, REPLICASETS) == 0 and await _count(client, PODS, "app=app") == 0


async def test_node_that_stops_renewing_is_tainted_and_its_pods_move(control_plane, apiserver_url):
    async with Client.from_url(apiserver_url) as client:
        manifest = deploy_manifest("mover", 3, "nginx:1")
        tol = [{"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
                "tolerationSeconds": 2},
               {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                "tolerationSeconds": 2}]
        manifest["spec"]["template"]["spec"]["tolerations"] = tol
        manifest["spec"]["template"]["spec"]["affinity"] = {"podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": {
                "topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "mover"}}}}]}}
        await client.create(DEPLOYMENTS, manifest, namespace="default")
        pods = await wait_for(lambda: running(client, "app=mover", 3), 30, "pods running")
        assert {p["spec"]["nodeName"] for p in pods} == {"hollow-a-0", "hollow-a-1", "hollow-b-0"}
        control_plane.signal("hollow-a", signal.SIGUSR1)       # hollow-a-* stop renewing their Leases

        async def tainted() -> bool:
            node = await client.get(NODES, "hollow-a-0")
            ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
            keys = {(t["key"], t["effect"]) for t in node["spec"].get("taints") or ()}
            return ready["status"] == "Unknown" and ("node.kubernetes.io/unreachable", "NoExecute") in keys
        await wait_for(tainted, 30, "hollow-a-0 Unknown and tainted unreachable")
        # hollow-a stops answering, so evicted pods would hang in Terminating: let it finish them
        control_plane.stop("hollow-a")

        async def moved() -> bool:
            live = [p for p in (await client.list(PODS, namespace="default", label_selector="app=mover"))["items"]
                    if is_active(p)]
            return len(live) == 3 and all(p["spec"].get("nodeName") == "hollow-b-0" and is_ready(p) for p in live)
        await wait_for(moved, 40, "pods replaced on hollow-b-0")
        events = (await client.list("events", namespace="default"))["items"]
        assert any(e.get("reason") == "TaintManagerEviction" for e in events)
