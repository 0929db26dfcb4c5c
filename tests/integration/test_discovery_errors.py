"""Discovery shapes (negotiated by Accept, format told by Content-Type), /version, health, errors."""

from __future__ import annotations

import pytest

from tests.support.http import Api, pod

V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
V2B1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
PODS = "/api/v1/namespaces/default/pods"


async def test_version_and_health(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        v = (await api.get("/version", params={"timeout": "5s"})).body
        assert v["gitVersion"] == "v1.32.4-kubelite" and v["major"] == "1" and v["minor"] == "32"
        for path in ("/healthz", "/livez", "/readyz"):
            assert (await api.get(path)).status == 200


async def test_aggregated_discovery_negotiation(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        kubectl_132 = f"{V2},{V2B1},application/json"
        r = await api.get("/apis", headers={"Accept": kubectl_132})
        assert r.headers["Content-Type"] == V2
        assert r.body["apiVersion"] == "apidiscovery.k8s.io/v2"
        groups = {g["metadata"]["name"]: g for g in r.body["items"]}
        assert {"apps", "coordination.k8s.io", "node.k8s.io"} <= set(groups)
        deploy = next(x for x in groups["apps"]["versions"][0]["resources"] if x["resource"] == "deployments")
        assert deploy["responseKind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
        assert deploy["shortNames"] == ["deploy"] and deploy["scope"] == "Namespaced"
        scale = next(s for s in deploy["subresources"] if s["subresource"] == "scale")
        assert scale["responseKind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}

        r = await api.get("/api", headers={"Accept": f"{V2B1},application/json"})       # kubectl 1.27-1.29
        assert r.headers["Content-Type"] == V2B1
        assert r.body["apiVersion"] == "apidiscovery.k8s.io/v2beta1"
        core = r.body["items"][0]
        assert core["metadata"]["name"] == ""
        pods = next(x for x in core["versions"][0]["resources"] if x["resource"] == "pods")
        assert pods["shortNames"] == ["po"] and pods["categories"] == ["all"]


async def test_legacy_discovery(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        r = await api.get("/api", headers={"Accept": "application/json"})
        assert r.headers["Content-Type"].startswith("application/json") and r.body["kind"] == "APIVersions"
        assert r.body["versions"] == ["v1"]
        apis = (await api.get("/apis")).body
        assert apis["kind"] == "APIGroupList"
        assert {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
                "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}} in apis["groups"]
        v1 = (await api.get("/api/v1")).body
        by_name = {x["name"]: x for x in v1["resources"]}
        assert by_name["pods"]["namespaced"] is True and by_name["nodes"]["namespaced"] is False
        assert by_name["pods/status"]["kind"] == "Pod"
        apps = (await api.get("/apis/apps/v1")).body
        scale = next(x for x in apps["resources"] if x["name"] == "deployments/scale")
        assert (scale["group"], scale["version"], scale["kind"]) == ("autoscaling", "v1", "Scale")
        assert (await api.get("/apis/example.com/v1")).status == 404


async def test_errors_are_status_objects(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        big = pod("big")
        big["metadata"]["annotations"] = {"x": "y" * (3 * 1024 * 1024 + 10)}
        r = await api.post(PODS, big)
        assert r.status == 413 and r.body["reason"] == "RequestEntityTooLarge"

        r = await api.post(PODS, b"apiVersion: v1", content_type="text/plain")
        assert r.status == 415 and r.body["kind"] == "Status"
        r = await api.patch(f"{PODS}/x", {"a": 1}, patch_type="application/json")
        assert r.status == 415

        for bad in (b"{not json", b"[1, 2]", b"", b'{"metadata": 5}'):
            r = await api.post(PODS, bad)
            assert r.status == 400 and r.body["reason"] == "BadRequest", (bad, r.body)
        r = await api.post(PODS, b"a: [unclosed", content_type="application/yaml")
        assert r.status == 400

        r = await api.post(PODS, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}})
        assert r.status == 404 and r.body["message"] == 'no matches for kind "Service" in version "v1"'
        r = await api.get("/api/v1/namespaces/default/services")
        assert r.status == 404 and r.body["kind"] == "Status"
        r = await api.get("/nonsense")
        assert r.status == 404 and r.body["kind"] == "Status"
        r = await api.request("PUT", PODS, pod("x"))
        assert r.status == 405 and r.body["reason"] == "MethodNotAllowed"

        r = await api.post(PODS, {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {}}})
        assert r.status == 422 and r.body["reason"] == "Invalid"
        assert r.body["details"]["causes"][0]["field"] == "metadata.name"
        r = await api.post(PODS, pod("a%2Fb") | {"metadata": {"name": "a/b"}})
        assert r.status == 422

        # nothing half-written by any of the above
        assert (await api.get(PODS)).body["items"] == []


@pytest.mark.parametrize("param", ["limit=x", "timeoutSeconds=y&watch=true", "includeObject=Everything"])
async def test_bad_query_parameters_are_400(apiserver_url: str, param: str) -> None:
    async with Api(apiserver_url) as api:
        key, value = param.split("&")[0].split("=")
        params = dict(p.split("=") for p in param.split("&"))
        headers = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"} if key == "includeObject" else None
        r = await api.get(PODS, params=params, headers=headers)
        assert r.status == 400, (param, value, r.body)


async def test_table_responses(apiserver_url: str) -> None:
    async with Api(apiserver_url) as api:
        await api.post(PODS, pod("t1"))
        accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
        r = await api.get(PODS, params={"limit": "500"}, headers={"Accept": accept})
        assert r.body["kind"] == "Table" and r.body["metadata"]["resourceVersion"]
        assert r.body["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
        r = await api.get(PODS, params={"includeObject": "Object"}, headers={"Accept": accept})
        assert r.body["rows"][0]["object"]["kind"] == "Pod"
        one = await api.get(f"{PODS}/t1", headers={"Accept": accept})
        assert one.body["kind"] == "Table" and len(one.body["rows"]) == 1


async def test_malformed_objects_are_4xx_never_500(apiserver_url: str) -> None:
    containers = [{"name": "c", "image": "busybox"}]
    bodies = [
        {"metadata": {"name": "a"}, "spec": "x"},
        {"metadata": {"name": "a"}, "spec": {"containers": "x"}},
        {"metadata": {"name": "a", "finalizers": "x"}, "spec": {"containers": containers}},
        {"metadata": {"generateName": 5}, "spec": {"containers": containers}},
        {"metadata": {"name": 5}, "spec": {"containers": containers}},
        {"metadata": {"name": "a", "labels": "x"}, "spec": {"containers": containers}},
    ]
    async with Api(apiserver_url) as api:
        for body in bodies:
            r = await api.post(PODS, {"apiVersion": "v1", "kind": "Pod", **body})
            assert r.status in (400, 422) and r.body["kind"] == "Status", (body, r.body)
        assert (await api.post(PODS, pod("ok"))).status == 201
        for patch in ({"spec": "x"}, {"metadata": {"finalizers": [1]}}):
            r = await api.patch(f"{PODS}/ok", patch)
            assert r.status in (400, 422), (patch, r.body)
        r = await api.post(f"{PODS}/ok/eviction", {"deleteOptions": 5})
        assert r.status == 400
        assert [p["metadata"]["name"] for p in (await api.get(PODS)).body["items"]] == ["ok"]
