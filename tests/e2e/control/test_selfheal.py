"""Self-healing with the real kubelet and real containers: a ReplicaSet's deleted pod is replaced
and Running again; a container SIGKILLed from the host is restarted by its kubelet."""

from __future__ import annotations

import os
import signal

import pytest

from kubelite.api.errors import NotFound
from kubelite.api.resources import PODS, REPLICASETS
from tests.e2e.kubelet.conftest import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def _running(pod: dict) -> bool:
    st = pod.get("status") or {}
    return (not pod["metadata"].get("deletionTimestamp") and st.get("phase") == "Running"
            and any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or ()))


def _container_pids(uid: str) -> list[int]:
    """Host pids of the pod's ``sleep`` process, found by the pod's cgroup (pod<uid>)."""
    out = []
    for e in os.scandir("/proc"):
        if not e.name.isdigit():
            continue
        try:
            with open(f"/proc/{e.name}/cgroup") as f:
                cg = f.read()
            with open(f"/proc/{e.name}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if f"pod{uid}" in cg and cmd.startswith(b"sleep"):
            out.append(int(e.name))
    return out


async def test_replicaset_pod_deleted_or_killed_comes_back_running(kenv, processes):
    node = kenv.node()
    await kenv.ready(node, timeout=30)
    processes.start("scheduler", "scheduler", "--port", "-1", "--leader-elect", "false")
    processes.start("controller-manager", "controllers", "--port", "-1", "--leader-elect", "false",
                    "--controllers", "*,-nodeipam")
    client = kenv.client
    rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "heal"},
          "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "heal"}},
                   "template": {"metadata": {"labels": {"app": "heal"}},
                                "spec": {"terminationGracePeriodSeconds": 1, "containers": [
                                    {"name": "c", "image": "busybox:1.35", "command": ["sleep", "3600"]}]}}}}
    await client.create(REPLICASETS, rs, namespace="default")

    async def running_pods() -> list[dict] | None:
        pods = (await client.list(PODS, namespace="default", label_selector="app=heal"))["items"]
        live = [p for p in pods if _running(p)]
        return live if len(live) == 2 else None
    first = await wait_for(running_pods, 90, "2 pods Running")
    try:
        # 1. delete a pod: the ReplicaSet replaces it and the kubelet runs the replacement
        victim = first[0]["metadata"]["name"]
        await client.delete(PODS, victim, namespace="default")

        async def replaced() -> list[dict] | None:
            live = await running_pods()
            return live if live and victim not in {p["metadata"]["name"] for p in live} else None
        second = await wait_for(replaced, 60, "the deleted pod replaced and Running")
        assert node.name == second[0]["spec"]["nodeName"]
        # 2. SIGKILL a container from the host: the kubelet restarts it (restartPolicy Always)
        target = next(p for p in second if p["metadata"]["name"] != victim)
        pids = await wait_for(lambda: _async(_container_pids(target["metadata"]["uid"])), 20, "container pid")
        for pid in pids:
            os.kill(pid, signal.SIGKILL)

        async def restarted() -> bool:
            p = await client.get(PODS, target["metadata"]["name"], namespace="default")
            counts = [s.get("restartCount", 0) for s in (p.get("status") or {}).get("containerStatuses") or ()]
            return bool(counts) and counts[0] >= 1 and _running(p)
        await wait_for(restarted, 60, "the killed container restarted and Running")
    finally:
        processes.stop("controller-manager")
        try:
            await client.delete(REPLICASETS, "heal", namespace="default")
        except NotFound:
            pass
        for p in (await client.list(PODS, namespace="default"))["items"]:
            try:
                await client.delete(PODS, p["metadata"]["name"], namespace="default")
            except NotFound:
                pass

        async def gone() -> bool:
            return not (await client.list(PODS, namespace="default"))["items"]
        await wait_for(gone, 60, "pods stopped and gone")


async def _async(value):  # wait_for polls coroutines
    return value
