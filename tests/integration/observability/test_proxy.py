"""The apiserver's kubelet connections against a stand-in kubelet (an aiohttp app on loopback): nodes/proxy
passes any path and query through and streams the answer, pods/log picks the container, pods/exec relays a
v5.channel.k8s.io WebSocket both ways, and an unreachable kubelet is a 503 Status."""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from tests.support.cluster import free_port
from tests.support.http import Api


@pytest.fixture
async def fake_kubelet() -> AsyncIterator[tuple[int, list[Any]]]:
    seen: list[Any] = []

    async def metrics(request: web.Request) -> web.Response:
        seen.append(("metrics", request.path, dict(request.query)))
        return web.Response(text="# HELP up x\n# TYPE up gauge\nup 1\n", content_type="text/plain")

    async def logs(request: web.Request) -> web.Response:
        seen.append(("logs", request.path, dict(request.query)))
        return web.Response(text=f"log of {request.match_info['c']}\n", content_type="text/plain")

    async def exec_(request: web.Request) -> web.StreamResponse:
        seen.append(("exec", request.path, request.query.getall("command")))
        ws = web.WebSocketResponse(protocols=["v5.channel.k8s.io"])
        await ws.prepare(request)
        async for msg in ws:
            if msg.data[0] == 0:                     # stdin → echo on stdout, then finish
                await ws.send_bytes(b"\x01" + msg.data[1:])
                await ws.send_bytes(b"\x03" + json.dumps({"metadata": {}, "status": "Success"}).encode())
                break
        await ws.close()
        return ws

    app = web.Application()
    app.router.add_get("/metrics/cadvisor", metrics)
    app.router.add_get("/containerLogs/{ns}/{pod}/{c}", logs)
    app.router.add_get("/exec/{ns}/{pod}/{c}", exec_)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield port, seen
    finally:
        await runner.cleanup()


def _node(name: str, port: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                       "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}


async def _register(api: Api, name: str, port: int) -> None:
    r = await api.post("/api/v1/nodes", _node(name, port))
    assert r.status == 201, r.body
    body = r.body
    body["status"] = _node(name, port)["status"]
    r = await api.put(f"/api/v1/nodes/{name}/status", body)
    assert r.status == 200, r.body


async def test_node_proxy_log_exec(apiserver_url: str, fake_kubelet: tuple[int, list[Any]]) -> None:
    port, seen = fake_kubelet
    async with Api(apiserver_url) as api:
        await _register(api, "px1", port)
        r = await api.get("/api/v1/nodes/px1/proxy/metrics/cadvisor", params={"a": "b"})
        assert r.status == 200 and "up 1" in r.body
        assert seen[-1] == ("metrics", "/metrics/cadvisor", {"a": "b"})
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"nodeName": "px1", "containers": [{"name": "a", "image": "busybox"},
                                                          {"name": "b", "image": "busybox"}]}}
        assert (await api.post("/api/v1/namespaces/default/pods", pod)).status == 201
        r = await api.get("/api/v1/namespaces/default/pods/p/log")
        assert r.status == 400 and "choose one of: [a b]" in r.body["message"]
        r = await api.get("/api/v1/namespaces/default/pods/p/log", params={"container": "zz"})
        assert r.status == 400
        r = await api.get("/api/v1/namespaces/default/pods/p/log", params={"container": "b", "tailLines": "3"})
        assert r.status == 200 and r.body == "log of b\n"
        assert seen[-1] == ("logs", "/containerLogs/default/p/b", {"tailLines": "3"})
        r = await api.get("/api/v1/nodes/nonode/proxy/metrics")
        assert r.status == 404
        r = await api.get("/metrics")
        assert "apiserver_request_total{" in r.body
        from tests.support.metrics import value
        assert value(r.body, "apiserver_request_total", verb="CONNECT", resource="nodes", subresource="proxy",
                     code="200") == 1
        assert value(r.body, "apiserver_request_total", verb="GET", resource="pods", subresource="log",
                     code="200") == 1

    async with aiohttp.ClientSession() as s:
        url = f"{apiserver_url}/api/v1/namespaces/default/pods/p/exec?command=cat&command=-&container=a&stdin=true"
        async with s.ws_connect(url, protocols=["v5.channel.k8s.io"]) as ws:
            assert ws.protocol == "v5.channel.k8s.io"
            await ws.send_bytes(b"\x00hello")
            frames = [m.data async for m in ws if m.type == aiohttp.WSMsgType.BINARY]
        assert frames[0] == b"\x01hello"
        assert json.loads(frames[1][1:])["status"] == "Success"
        assert seen[-1] == ("exec", "/exec/default/p/a", ["cat", "-"])


async def test_unreachable_kubelet_is_503(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        await _register(api, "px2", free_port())
        r = await api.get("/api/v1/nodes/px2/proxy/metrics")
        assert r.status == 503 and r.body["kind"] == "Status"


def _summary(cpu_ns: int, ws: int) -> dict[str, Any]:
    return {"node": {"nodeName": "mx1", "cpu": {"usageCoreNanoSeconds": cpu_ns * 4, "usageNanoCores": 0},
                     "memory": {"workingSetBytes": ws * 8}},
            "pods": [{"podRef": {"namespace": "default", "name": "burn", "uid": "u"},
                      "containers": [{"name": "c", "cpu": {"usageCoreNanoSeconds": cpu_ns},
                                      "memory": {"workingSetBytes": ws}}]}]}


async def test_metrics_api_rates_from_two_samples(apiserver_url: str) -> None:
    """CPU is the rate between two summaries (here 0.5 core), memory the working set, and the group is in
    both discovery documents."""
    clock = {"t0": None}

    async def summary(request: web.Request) -> web.Response:
        import time
        now = time.monotonic()
        if clock["t0"] is None:
            clock["t0"] = now
        return web.json_response(_summary(int((now - clock["t0"]) * 0.5e9), 10 * 1024 * 1024))

    app = web.Application()
    app.router.add_get("/stats/summary", summary)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with Api(apiserver_url) as api:
            await _register(api, "mx1", port)
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "burn", "labels": {"app": "b"}},
                   "spec": {"nodeName": "mx1", "containers": [{"name": "c", "image": "busybox"}]}}
            assert (await api.post("/api/v1/namespaces/default/pods", pod)).status == 201
            r = await api.get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods", params={"labelSelector": "app=b"})
            assert r.status == 200, r.body
            [item] = r.body["items"]
            cpu = int(item["containers"][0]["usage"]["cpu"].rstrip("n"))
            assert 0.4e9 < cpu < 0.6e9, cpu
            assert item["containers"][0]["usage"]["memory"] == "10240Ki"
            r = await api.get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods", params={"labelSelector": "app=x"})
            assert r.body["items"] == []
            r = await api.get("/apis/metrics.k8s.io/v1beta1/nodes/mx1")
            assert r.status == 200 and r.body["kind"] == "NodeMetrics", r.body
            assert 1.6e9 < int(r.body["usage"]["cpu"].rstrip("n")) < 2.4e9
            assert r.body["usage"]["memory"] == "81920Ki"
            legacy = (await api.get("/apis")).body
            assert any(g["name"] == "metrics.k8s.io" for g in legacy["groups"])
            assert any(g["name"] == "apps" for g in legacy["groups"])
            agg = await api.get("/apis", headers={
                "Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"})
            assert any(i["metadata"]["name"] == "metrics.k8s.io" for i in agg.body["items"])
            assert (await api.get("/apis/metrics.k8s.io/v1beta1")).body["groupVersion"] == "metrics.k8s.io/v1beta1"
    finally:
        await runner.cleanup()
