"""Processes come and go: objects survive an apiserver restart; SIGTERM ends watches cleanly."""

from __future__ import annotations

import asyncio
import time

from tests.support import cluster
from tests.support.http import Api, pod

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
