"""The apiserver's /metrics against real etcd: request counts and latencies by verb/resource/code, storage
latencies by operation and type, open watchers; and ``promtool check metrics`` accepts the page."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.support.http import Api
from tests.support.metrics import promtool_check, value


async def _metrics(url: str) -> str:
    async with aiohttp.ClientSession() as s, s.get(f"{url}/metrics") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        return await r.text()


async def test_request_and_storage_metrics(apiserver_url: str) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m1"}, "data": {"a": "b"}}
    async with Api(apiserver_url) as api:
        assert (await api.post("/api/v1/namespaces/default/configmaps", cm)).status == 201
        assert (await api.post("/api/v1/namespaces/default/configmaps", cm)).status == 409
        assert (await api.get("/api/v1/namespaces/default/configmaps/m1")).status == 200
        assert (await api.get("/api/v1/namespaces/default/configmaps/nope")).status == 404
        assert (await api.get("/api/v1/configmaps")).status == 200
        assert (await api.patch("/api/v1/namespaces/default/configmaps/m1", {"data": {"c": "d"}})).status == 200
        text = await _metrics(apiserver_url)
    rc, out = promtool_check(text)
    assert rc == 0, out
    cm_labels = {"resource": "configmaps", "group": "", "version": "v1"}
    assert value(text, "apiserver_request_total", verb="POST", code="201", **cm_labels) == 1
    assert value(text, "apiserver_request_total", verb="POST", code="409", **cm_labels) == 1
    assert value(text, "apiserver_request_total", verb="GET", code="200", scope="resource", **cm_labels) == 1
    assert value(text, "apiserver_request_total", verb="GET", code="404", **cm_labels) == 1
    assert value(text, "apiserver_request_total", verb="LIST", code="200", scope="cluster", **cm_labels) == 1
    assert value(text, "apiserver_request_total", verb="PATCH", code="200", **cm_labels) == 1
    assert value(text, "apiserver_request_duration_seconds_count", verb="POST", resource="configmaps") == 2
    assert (value(text, "etcd_request_duration_seconds_count", operation="create", type="configmaps") or 0) >= 1
    assert (value(text, "etcd_requests_total", operation="create", type="configmaps") or 0) >= 1
    assert value(text, "apiserver_current_inflight_requests", request_kind="mutating") == 0
    # the object count follows the watch cache, which sees the write a moment after it is acknowledged
    deadline = asyncio.get_running_loop().time() + 10
    while (value(text, "apiserver_storage_objects", resource="configmaps") or 0) < 1:
        assert asyncio.get_running_loop().time() < deadline, "apiserver_storage_objects never counted the configmap"
        await asyncio.sleep(0.05)
        text = await _metrics(apiserver_url)


async def test_watch_counts(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        events = api.watch("/api/v1/namespaces/default/configmaps", params={"timeoutSeconds": "20"})
        first = asyncio.ensure_future(events.__anext__())
        try:
            async def open_watchers() -> float:
                text = await _metrics(apiserver_url)
                return value(text, "apiserver_registered_watchers", kind="ConfigMap") or 0
            deadline = asyncio.get_running_loop().time() + 10
            while await open_watchers() < 1:
                assert asyncio.get_running_loop().time() < deadline, "the watch never registered"
                await asyncio.sleep(0.05)
            text = await _metrics(apiserver_url)
            assert value(text, "apiserver_longrunning_requests", verb="WATCH", resource="configmaps") == 1
        finally:
            first.cancel()
            await asyncio.gather(first, return_exceptions=True)
            await events.aclose()


async def test_object_metrics(apiserver_url: str) -> None:
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "r1"},
          "spec": {"replicas": 3, "selector": {"matchLabels": {"a": "b"}},
                   "template": {"metadata": {"labels": {"a": "b"}},
                                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1"},
           "spec": {"containers": [{"name": "c", "image": "busybox",
                                    "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}}]}}
    async with Api(apiserver_url) as api:
        r = await api.post("/apis/apps/v1/namespaces/default/replicasets", rs)
        assert r.status == 201, r.body
        body = r.body
        body["status"] = {"replicas": 3, "readyReplicas": 2, "availableReplicas": 2}
        assert (await api.put("/apis/apps/v1/namespaces/default/replicasets/r1/status", body)).status == 200
        assert (await api.post("/api/v1/namespaces/default/pods", pod)).status == 201

        async def page() -> str:
            async with aiohttp.ClientSession() as s, s.get(f"{apiserver_url}/metrics/objects") as resp:
                return await resp.text()
        deadline = asyncio.get_running_loop().time() + 10
        while value(text := await page(), "kube_replicaset_status_ready_replicas", replicaset="r1") != 2:
            assert asyncio.get_running_loop().time() < deadline, text
            await asyncio.sleep(0.05)
        while value(text := await page(), "kube_pod_status_phase", pod="p1", phase="Pending") != 1:
            assert asyncio.get_running_loop().time() < deadline, text
            await asyncio.sleep(0.05)
    rc, out = promtool_check(text)
    assert rc == 0, out
    assert value(text, "kube_replicaset_spec_replicas", namespace="default", replicaset="r1") == 3
    assert value(text, "kube_pod_status_phase", pod="p1", phase="Running") == 0
    assert value(text, "kube_pod_container_resource_requests", pod="p1", resource="cpu", unit="core") == 0.25
    assert value(text, "kube_pod_container_resource_requests", pod="p1", resource="memory") == 64 * 2 ** 20
    assert value(text, "kube_namespace_status_phase", namespace="default", phase="Active") == 1
