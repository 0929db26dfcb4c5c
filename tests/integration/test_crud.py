"""CRUD with Kubernetes semantics against a real etcd: metadata, 409s, status/scale/binding."""

from __future__ import annotations

from tests.support.http import Api, pod

PODS = "/api/v1/namespaces/default/pods"
DEPLOYS = "/apis/apps/v1/namespaces/default/deployments"


def deployment(name: str, replicas: int = 2) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}}}}


async def test_create_get_update_delete(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        r = await api.post(PODS, pod("p1", {"app": "web"}))
        assert r.status == 201, r.body
        meta = r.body["metadata"]
        assert meta["namespace"] == "default" and meta["uid"] and meta["creationTimestamp"].endswith("Z")
        assert int(meta["resourceVersion"]) > 0
        got = await api.get(f"{PODS}/p1")
        assert got.status == 200 and got.body["metadata"] == meta

        dup = await api.post(PODS, pod("p1"))
        assert dup.status == 409 and dup.body["reason"] == "AlreadyExists"
        assert dup.body["message"] == 'pods "p1" already exists'

        updated = dict(got.body, metadata=dict(meta, labels={"app": "db"}))
        r = await api.put(f"{PODS}/p1", updated)
        assert r.status == 200, r.body
        assert r.body["metadata"]["labels"] == {"app": "db"}
        assert int(r.body["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
        assert r.body["metadata"]["uid"] == meta["uid"]

        stale = await api.put(f"{PODS}/p1", updated)        # still carries the old resourceVersion
        assert stale.status == 409 and stale.body["reason"] == "Conflict"
        assert "the object has been modified" in stale.body["message"]

        unconditional = dict(updated, metadata={k: v for k, v in updated["metadata"].items() if k != "resourceVersion"})
        unconditional["metadata"]["labels"] = {"app": "x"}
        r = await api.put(f"{PODS}/p1", unconditional)
        assert r.status == 200 and r.body["metadata"]["labels"] == {"app": "x"}

        r = await api.delete(f"{PODS}/p1")
        assert r.status == 200 and r.body["metadata"]["name"] == "p1"
        gone = await api.get(f"{PODS}/p1")
        assert gone.status == 404 and gone.body["reason"] == "NotFound"
        assert gone.body["details"] == {"name": "p1", "kind": "pods"}


async def test_generate_name_and_generation(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        body = deployment("x")
        body["metadata"] = {"generateName": "web-"}
        r = await api.post(DEPLOYS, body)
        assert r.status == 201, r.body
        name = r.body["metadata"]["name"]
        assert name.startswith("web-") and len(name) == len("web-") + 5
        assert r.body["metadata"]["generation"] == 1

        r2 = await api.patch(f"{DEPLOYS}/{name}", {"metadata": {"labels": {"a": "b"}}})
        assert r2.status == 200 and r2.body["metadata"]["generation"] == 1      # metadata only: no bump
        r3 = await api.patch(f"{DEPLOYS}/{name}", {"spec": {"replicas": 5}})
        assert r3.status == 200 and r3.body["metadata"]["generation"] == 2
        noop = await api.patch(f"{DEPLOYS}/{name}", {"spec": {"replicas": 5}})
        assert noop.body["metadata"]["resourceVersion"] == r3.body["metadata"]["resourceVersion"]


async def test_status_subresource_ignores_spec(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        created = (await api.post(DEPLOYS, deployment("web"))).body
        body = dict(created, spec=dict(created["spec"], replicas=9), status={"replicas": 2, "readyReplicas": 1})
        r = await api.put(f"{DEPLOYS}/web/status", body)
        assert r.status == 200, r.body
        assert r.body["status"]["readyReplicas"] == 1 and r.body["spec"]["replicas"] == 2
        r = await api.patch(f"{DEPLOYS}/web/status", {"status": {"readyReplicas": 2}})
        assert r.status == 200 and r.body["status"]["readyReplicas"] == 2
        r = await api.put(f"{DEPLOYS}/web", dict(r.body, status={"readyReplicas": 0},
                                                 metadata={"name": "web"}))
        assert r.body["status"]["readyReplicas"] == 2                           # main resource ignores status


async def test_scale_subresource(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        await api.post(DEPLOYS, deployment("web", 2))
        scale = await api.get(f"{DEPLOYS}/web/scale")
        assert scale.status == 200
        assert scale.body["kind"] == "Scale" and scale.body["apiVersion"] == "autoscaling/v1"
        assert scale.body["spec"] == {"replicas": 2} and scale.body["status"]["selector"] == "app=web"
        r = await api.patch(f"{DEPLOYS}/web/scale", {"spec": {"replicas": 4}})
        assert r.status == 200 and r.body["spec"]["replicas"] == 4
        assert (await api.get(f"{DEPLOYS}/web")).body["spec"]["replicas"] == 4
        stale = dict(scale.body, spec={"replicas": 1})
        r = await api.put(f"{DEPLOYS}/web/scale", stale)
        assert r.status == 409
        fresh = (await api.get(f"{DEPLOYS}/web/scale")).body
        r = await api.put(f"{DEPLOYS}/web/scale", dict(fresh, spec={"replicas": 1}))
        assert r.status == 200 and r.body["spec"]["replicas"] == 1
        bad = await api.put(f"{DEPLOYS}/web/scale", dict(fresh, spec={"replicas": -1}, metadata={"name": "web"}))
        assert bad.status == 422


async def test_binding(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        await api.post(PODS, pod("p1"))
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p1"},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}}
        r = await api.post(f"{PODS}/p1/binding", binding)
        assert r.status == 201, r.body
        got = (await api.get(f"{PODS}/p1")).body
        assert got["spec"]["nodeName"] == "node-1"
        assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in got["status"]["conditions"])
        again = await api.post(f"{PODS}/p1/binding", dict(binding, target={"name": "node-2"}))
        assert again.status == 409 and "already assigned" in again.body["message"]
        assert (await api.get(f"{PODS}/p1")).body["spec"]["nodeName"] == "node-1"


async def test_cluster_scoped_and_dry_run(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": {"zone": "a"}}}
        r = await api.post("/api/v1/nodes", node, params={"dryRun": "All"})
        assert r.status == 201 and r.body["metadata"]["name"] == "n1"
        assert (await api.get("/api/v1/nodes/n1")).status == 404
        assert (await api.post("/api/v1/nodes", node)).status == 201
        got = await api.get("/api/v1/nodes/n1")
        assert got.status == 200 and "namespace" not in got.body["metadata"]


async def test_create_needs_existing_namespace(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        r = await api.post("/api/v1/namespaces/nope/pods", pod("p"))
        assert r.status == 404 and r.body["message"] == 'namespaces "nope" not found'
        mismatch = pod("p")
        mismatch["metadata"]["namespace"] = "kube-system"
        r = await api.post(PODS, mismatch)
        assert r.status == 400 and "does not match the namespace" in r.body["message"]
        assert (await api.get("/api/v1/namespaces/default/pods/p")).status == 404
