"""Processes come and go: objects survive an apiserver restart; SIGTERM ends watches cleanly."""

from __future__ import annotations

import asyncio
import time

from tests.support import cluster
from tests.support.http import Api, collect, pod

PODS = "/api/v1/namespaces/default/pods"


async def test_restart_keeps_objects_and_resource_versions(apiserver_proc: cluster.ApiServer) -> None:
    async with Api(apiserver_proc.url) as api:
        created = (await api.post(PODS, pod("keep"))).body
        await api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mine"}})
    apiserver_proc.stop()
    await asyncio.to_thread(apiserver_proc.start)
    async with Api(apiserver_proc.url) as api:
        got = (await api.get(f"{PODS}/keep")).body
        assert got["metadata"]["uid"] == created["metadata"]["uid"]
        assert got["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
        names = [n["metadata"]["name"] for n in (await api.get("/api/v1/namespaces")).body["items"]]
        assert names == ["default", "kube-node-lease", "kube-public", "kube-system", "mine"]


async def test_sigterm_closes_open_watches_quickly(apiserver_proc: cluster.ApiServer) -> None:
    async with Api(apiserver_proc.url) as api:
        await api.post(PODS, pod("p"))
        established, ended = asyncio.Event(), asyncio.Event()

        async def watch() -> None:
            async for _ in api.watch(PODS, {"resourceVersion": "0"}):
                established.set()
            ended.set()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(watch())
            await asyncio.wait_for(established.wait(), 5)
            t0 = time.monotonic()
            await asyncio.to_thread(apiserver_proc.stop)
            await asyncio.wait_for(ended.wait(), 5)
        assert time.monotonic() - t0 < 4
        assert apiserver_proc.proc is not None and apiserver_proc.proc.returncode == 0


async def test_client_watch_survives_an_etcd_restart() -> None:
    """The watch cache's storage watch resumes after etcd comes back; open client watches go on."""
    with cluster.etcd_server() as etcd, cluster.apiserver(etcd.url) as server:
        async with Api(server.url) as api:
            start = (await api.get(PODS)).body["metadata"]["resourceVersion"]
            stream = api.watch(PODS, {"resourceVersion": start})
            await api.post(PODS, pod("before"))
            assert (await collect(stream, 1))[0]["object"]["metadata"]["name"] == "before"
            etcd.stop()
            down = await api.get(PODS)
            assert down.status == 503 and down.body["reason"] == "ServiceUnavailable"
            await asyncio.to_thread(etcd.start)
            async def create_when_up() -> None:
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 20
                while (await api.post(PODS, pod("after"))).status != 201:
                    assert loop.time() < deadline, "apiserver did not recover"
                    await asyncio.sleep(0.1)
            await create_when_up()
            got = await collect(stream, 1, timeout=20)
            assert got[0]["type"] == "ADDED" and got[0]["object"]["metadata"]["name"] == "after"
            await stream.aclose()


async def test_two_workers_share_the_port(etcd_server: cluster.EtcdServer) -> None:
    with cluster.apiserver(etcd_server.url, extra_args=["--workers", "2"]) as server:
        async with Api(server.url) as api:
            await api.post(PODS, pod("w"))
            for _ in range(10):                 # new connections land on either worker: both see the pod
                async with Api(server.url) as fresh:
                    assert (await fresh.get(f"{PODS}/w")).status == 200
        server.stop()
        assert server.proc is not None and server.proc.returncode == 0
