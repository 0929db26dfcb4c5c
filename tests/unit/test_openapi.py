"""OpenAPI v2 (empty) and v3 per group/version, shaped for kubectl explain and fieldValidation=Strict."""

import time

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from apiserver import openapi

pytestmark = pytest.mark.unit


@pytest.fixture
async def client():
    app = web.Application()
    openapi.add_routes(app)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_v2_is_empty_octet_stream(client):
    r = await client.get("/openapi/v2")
    assert r.status == 200 and await r.read() == b"" and r.headers["Content-Type"] == "application/octet-stream"


async def test_v3_root_lists_served_group_versions(client):
    r = await client.get("/openapi/v3")
    body = await r.json()
    assert set(body["paths"]) == {"api/v1", "apis/apps/v1", "apis/coordination.k8s.io/v1", "apis/node.k8s.io/v1"}
    url = body["paths"]["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=")
    r = await client.get(url, headers={"Accept-Encoding": "gzip"})
    assert r.status == 200 and r.headers["ETag"].strip('"') == url.split("hash=")[1]
    assert "immutable" in r.headers["Cache-Control"]
    r2 = await client.get(url, headers={"If-None-Match": r.headers["ETag"]})
    assert r2.status == 304
    r3 = await client.get("/openapi/v3/apis/apps/v1?hash=stale", allow_redirects=False)
    assert r3.status == 301 and r3.headers["Location"] == url
    r4 = await client.get("/openapi/v3/apis/batch/v1")
    assert r4.status == 404 and (await r4.json())["kind"] == "Status"


def test_apps_document_shape():
    doc = orjson.loads(openapi.document("apps", "v1"))
    gvk = {"group": "apps", "version": "v1", "kind": "Deployment"}
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == gvk
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
    assert "requestBody" not in patch
    scale = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"]
    assert scale["x-kubernetes-group-version-kind"] == {"group": "autoscaling", "version": "v1", "kind": "Scale"}
    schemas = doc["components"]["schemas"]
    dep = schemas["io.k8s.api.apps.v1.Deployment"]
    assert dep["x-kubernetes-group-version-kind"] == [gvk]
    assert dep["properties"]["spec"]["allOf"] == [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}]
    assert dep["properties"]["spec"]["description"]
    assert dep["type"] == "object" and "enum" not in dep["properties"]["kind"]
    assert "io.k8s.api.core.v1.PodSpec" in schemas and "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta" in schemas
    assert "io.k8s.api.autoscaling.v1.Scale" in schemas
    assert schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"] == {"type": "string", "format": "int-or-string"}
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["items"] == {"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    text = openapi.document("apps", "v1").decode()
    assert "#/$defs/" not in text and '"null"' not in text


def test_core_document_has_every_core_kind_and_is_cached():
    start = time.perf_counter()
    doc = orjson.loads(openapi.document("", "v1"))
    kinds = {g["kind"] for s in doc["components"]["schemas"].values() for g in s.get("x-kubernetes-group-version-kind", [])}
    assert {"Pod", "Node", "Namespace", "Event", "ConfigMap", "Secret", "PodList"} <= kinds
    assert "/api/v1/pods" in doc["paths"] and "/api/v1/nodes/{name}/status" in doc["paths"]
    start = time.perf_counter()
    openapi.document("", "v1")
    assert time.perf_counter() - start < 0.01
