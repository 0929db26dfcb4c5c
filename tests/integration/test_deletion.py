"""Deletion semantics against a real etcd: graceful pods, finalizers, propagation, namespaces."""

from __future__ import annotations

import asyncio

from tests.support.http import Api, pod

PODS = "/api/v1/namespaces/default/pods"


async def wait_gone(api: Api, path: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if (await api.get(path)).status == 404:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} still exists after {timeout}s")


async def test_unbound_pod_goes_at_once_bound_pod_gracefully(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        await api.post(PODS, pod("free"))
        r = await api.delete(f"{PODS}/free", {"propagationPolicy": "Background"})
        assert r.status == 200
        assert (await api.get(f"{PODS}/free")).status == 404

        await api.post(PODS, pod("bound", node="n1", terminationGracePeriodSeconds=20))
        r = await api.delete(f"{PODS}/bound", {"propagationPolicy": "Background"})
        assert r.status == 200
        got = (await api.get(f"{PODS}/bound")).body
        assert got["metadata"]["deletionTimestamp"] and got["metadata"]["deletionGracePeriodSeconds"] == 20
        shorter = await api.delete(f"{PODS}/bound", params={"gracePeriodSeconds": "5"})
        assert shorter.body["metadata"]["deletionGracePeriodSeconds"] == 5
        # the kubelet confirms with grace 0
        await api.delete(f"{PODS}/bound", {"gracePeriodSeconds": 0})
        assert (await api.get(f"{PODS}/bound")).status == 404


async def test_preconditions(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        created = (await api.post(PODS, pod("p"))).body
        r = await api.delete(f"{PODS}/p", {"preconditions": {"uid": "other"}})
        assert r.status == 409 and "Precondition failed" in r.body["message"]
        r = await api.delete(f"{PODS}/p", {"preconditions": {"resourceVersion": "1"}})
        assert r.status == 409
        r = await api.delete(f"{PODS}/p", {"preconditions": {"uid": created["metadata"]["uid"]}})
        assert r.status == 200


async def test_finalizers_hold_deletion(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["example.com/hold"]},
              "data": {"a": "b"}}
        path = "/api/v1/namespaces/default/configmaps/c"
        await api.post("/api/v1/namespaces/default/configmaps", cm)
        r = await api.delete(path)
        assert r.status == 200 and r.body["metadata"]["deletionTimestamp"]
        held = await api.get(path)
        assert held.status == 200 and held.body["metadata"]["finalizers"] == ["example.com/hold"]
        refused = await api.patch(path, {"metadata": {"finalizers": ["example.com/hold", "new"]}})
        assert refused.status == 422
        r = await api.patch(path, {"metadata": {"finalizers": None}})
        assert r.status == 200
        assert (await api.get(path)).status == 404


async def test_propagation_policies_add_gc_finalizers(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "r"},
              "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                       "template": {"metadata": {"labels": {"a": "b"}},
                                    "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
        base = "/apis/apps/v1/namespaces/default/replicasets"
        for policy, finalizer in (("Orphan", "orphan"), ("Foreground", "foregroundDeletion")):
            await api.post(base, rs)
            r = await api.delete(f"{base}/r", {"propagationPolicy": policy})
            assert r.status == 200 and r.body["metadata"]["finalizers"] == [finalizer]
            assert (await api.get(f"{base}/r")).body["metadata"]["deletionTimestamp"]
            await api.patch(f"{base}/r", {"metadata": {"finalizers": []}})      # what the GC does when done
            assert (await api.get(f"{base}/r")).status == 404
        bad = await api.post(base, rs)
        assert bad.status == 201
        r = await api.delete(f"{base}/r", {"propagationPolicy": "Sideways"})
        assert r.status == 422


async def test_namespace_termination(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}
        assert (await api.post("/api/v1/namespaces", ns)).status == 201
        base = "/api/v1/namespaces/team"
        await api.post(f"{base}/pods", pod("a"))
        await api.post(f"{base}/pods", pod("b", node="n1"))          # graceful: waits for the "kubelet"
        await api.post(f"{base}/configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
        r = await api.delete(base)
        assert r.status == 200 and r.body["status"]["phase"] == "Terminating"
        refused = await api.post(f"{base}/pods", pod("late"))
        assert refused.status == 403 and "being terminated" in refused.body["message"]
        await wait_gone(api, f"{base}/configmaps/c")
        await wait_gone(api, f"{base}/pods/a")
        assert (await api.get(base)).status == 200                     # pod b is still terminating
        await api.delete(f"{base}/pods/b", {"gracePeriodSeconds": 0})  # the kubelet confirms
        await wait_gone(api, base)
        assert (await api.delete("/api/v1/namespaces/default")).status == 403


async def test_delete_collection_by_label(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        for name, app in (("a", "web"), ("b", "web"), ("c", "db")):
            await api.post(PODS, pod(name, {"app": app}))
        r = await api.delete(PODS, params={"labelSelector": "app=web"})
        assert r.status == 200 and sorted(i["metadata"]["name"] for i in r.body["items"]) == ["a", "b"]
        left = (await api.get(PODS)).body["items"]
        assert [p["metadata"]["name"] for p in left] == ["c"]
        r = await api.delete("/api/v1/namespaces")          # namespaces do not offer deletecollection
        assert r.status == 405
