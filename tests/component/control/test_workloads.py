"""ReplicaSets heal and never overshoot; Deployments roll within maxSurge/maxUnavailable and roll back
— on a real apiserver + etcd with the real scheduler, controller-manager and hollow nodes."""

from __future__ import annotations

import asyncio
import copy

import pytest

from kubelite.api.resources import DEPLOYMENTS, PODS, REPLICASETS
from kubelite.client import Client
from tests.component.control.helpers import PodWatcher, is_active, is_ready, wait_for

pytestmark = [pytest.mark.component, pytest.mark.timeout(120)]


def rs_manifest(name: str, replicas: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}}}


def deploy_manifest(name: str, replicas: int, image: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


async def running(client: Client, label: str, n: int) -> list[dict] | None:
    pods = (await client.list(PODS, namespace="default", label_selector=label))["items"]
    ok = [p for p in pods if is_active(p) and (p.get("status") or {}).get("phase") == "Running" and is_ready(p)]
    return ok if len(ok) == n and len(pods) == n else None


async def test_replicaset_keeps_three_through_deletes_and_failures(control_plane, apiserver_url):
    async with Client.from_url(apiserver_url) as client:
        def never_more_than_three(pods: dict[str, dict]) -> None:
            active = [p for p in pods.values() if is_active(p)]
            assert len(active) <= 3, f"{len(active)} active pods: {sorted(pods)}"

        watcher = PodWatcher(client, "default", never_more_than_three)
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(watcher.run())
            try:
                await client.create(REPLICASETS, rs_manifest("web", 3), namespace="default")
                first = await wait_for(lambda: running(client, "app=web", 3), 30, "3 running pods")
                # delete two pods at once: both come back
                for p in first[:2]:
                    await client.delete(PODS, p["metadata"]["name"], namespace="default")
                second = await wait_for(lambda: running(client, "app=web", 3), 30, "3 running pods after deletes")
                assert {p["metadata"]["name"] for p in second} != {p["metadata"]["name"] for p in first}
                # a pod fails: replaced at once, the failed one stays for its logs
                victim = second[0]["metadata"]["name"]
                failed = copy.deepcopy(second[0])
                failed["status"]["phase"] = "Failed"
                await client.update(PODS, failed, subresource="status")

                async def replaced() -> bool:
                    pods = (await client.list(PODS, namespace="default", label_selector="app=web"))["items"]
                    live = [p for p in pods if is_active(p) and is_ready(p) and p["metadata"]["name"] != victim]
                    return len(live) == 3
                await wait_for(replaced, 30, "the failed pod replaced")
                rs = await client.get(REPLICASETS, "web", namespace="default")
                await wait_for(lambda: _status(client, REPLICASETS, "web", "readyReplicas", 3), 15, "status ready 3")
                assert rs["metadata"]["generation"] >= 1
                assert watcher.events > 0
            finally:
                task.cancel()
        assert watcher.violations == []


async def _status(client: Client, res, name: str, field: str, want: int) -> bool:
    obj = await client.get(res, name, namespace="default")
    return (obj.get("status") or {}).get(field) == want


async def test_rollout_stays_within_bounds_and_rolls_back(control_plane, apiserver_url):
    replicas = 4
    async with Client.from_url(apiserver_url) as client:
        await client.create(DEPLOYMENTS, deploy_manifest("api", replicas, "nginx:a"), namespace="default")
        await wait_for(lambda: running(client, "app=api", replicas), 30, "initial rollout")

        async def complete(image: str) -> bool:
            d = await client.get(DEPLOYMENTS, "api", namespace="default")
            st = d.get("status") or {}
            pods = await running(client, "app=api", replicas)
            return (st.get("observedGeneration") == d["metadata"]["generation"] and st.get("updatedReplicas") == replicas
                    and st.get("availableReplicas") == replicas and st.get("replicas") == replicas and pods is not None
                    and all(p["spec"]["containers"][0]["image"] == image for p in pods))
        await wait_for(lambda: complete("nginx:a"), 30, "rollout a complete")

        def within_bounds(pods: dict[str, dict]) -> None:
            active = [p for p in pods.values() if is_active(p)]
            ready = [p for p in active if is_ready(p)]
            assert len(active) <= replicas + 1, f"{len(active)} pods > replicas + maxSurge"
            assert len(ready) >= replicas - 1, f"{len(ready)} ready < replicas - maxUnavailable"

        watcher = PodWatcher(client, "default", within_bounds)
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(watcher.run())
            try:
                await asyncio.sleep(0.3)
                await client.patch(DEPLOYMENTS, "api", {"spec": {"template": {"spec": {"containers": [
                    {"name": "c", "image": "nginx:b"}]}}}}, namespace="default", patch_type="strategic")
                await wait_for(lambda: complete("nginx:b"), 60, "rollout to b")
                d = await client.get(DEPLOYMENTS, "api", namespace="default")
                assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
                conds = {c["type"]: c for c in d["status"]["conditions"]}
                assert conds["Available"]["status"] == "True"
                assert conds["Progressing"]["reason"] == "NewReplicaSetAvailable"
                # rollback as `kubectl rollout undo` does: the previous revision's template, patched in
                rss = (await client.list(REPLICASETS, namespace="default"))["items"]
                prev = next(r for r in rss if r["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1")
                template = copy.deepcopy(prev["spec"]["template"])
                del template["metadata"]["labels"]["pod-template-hash"]
                await client.patch(DEPLOYMENTS, "api", [{"op": "replace", "path": "/spec/template", "value": template}],
                                   namespace="default", patch_type="json")
                await wait_for(lambda: complete("nginx:a"), 60, "rollback to a")
            finally:
                task.cancel()
        d = await client.get(DEPLOYMENTS, "api", namespace="default")
        assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
        assert len((await client.list(REPLICASETS, namespace="default"))["items"]) == 2
        assert watcher.violations == [], watcher.violations[:3]
        assert watcher.events >= 2 * replicas
