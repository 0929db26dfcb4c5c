"""The whole app in-process on the memory store (no etcd): the seam component tests can reuse."""

from __future__ import annotations

from typing import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from apiserver.app import make_app
from apiserver.handlers.common import Settings
from apiserver.storage.memory import MemoryStore


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    store = MemoryStore()
    app = make_app(Settings(etcd_servers=[], bookmark_interval=0.1), store_factory=lambda _s: store)
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_crud_and_watch_on_memory_store(client: TestClient) -> None:
    r = await client.get("/readyz")
    assert r.status == 200
    ns = await (await client.get("/api/v1/namespaces")).json()
    assert [n["metadata"]["name"] for n in ns["items"]] == ["default", "kube-node-lease", "kube-public", "kube-system"]
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}}
    r = await client.post("/api/v1/namespaces/default/configmaps", json=body)
    assert r.status == 201
    rv = (await r.json())["metadata"]["resourceVersion"]
    r = await client.get("/api/v1/namespaces/default/configmaps",
                         params={"watch": "true", "resourceVersion": "0", "timeoutSeconds": "1",
                                 "allowWatchBookmarks": "true"})
    lines = [line for line in (await r.read()).splitlines() if line]
    assert b'"ADDED"' in lines[0] and b'"BOOKMARK"' in lines[-1]
    r = await client.put("/api/v1/namespaces/default/configmaps/c",
                         json=dict(body, metadata={"name": "c", "resourceVersion": "1"}))
    assert r.status == 409
    r = await client.delete("/api/v1/namespaces/default/configmaps/c")
    assert r.status == 200
    assert int((await r.json())["metadata"]["resourceVersion"]) >= int(rv)
    assert (await client.get("/api/v1/namespaces/default/configmaps/c")).status == 404


async def test_create_answers_the_stored_object(client: TestClient) -> None:
    """POST answers the bytes it stored with the resourceVersion spliced in: the same object a GET
    reads back, managedFields included; a dry run answers the object it would have stored."""
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    r = await client.post("/api/v1/namespaces/default/pods", json=body, headers={"User-Agent": "tester/1.0"})
    assert r.status == 201
    created = await r.json()
    got = await (await client.get("/api/v1/namespaces/default/pods/p")).json()
    assert created == got
    assert created["metadata"]["resourceVersion"] and created["metadata"]["managedFields"][0]["manager"] == "tester"
    r = await client.post("/api/v1/namespaces/default/pods", params={"dryRun": "All"},
                          json=dict(body, metadata={"name": "q"}))
    assert r.status == 201
    dry = await r.json()
    assert dry["metadata"]["name"] == "q" and "resourceVersion" not in dry["metadata"]
    assert dry["spec"]["restartPolicy"] == "Always"
    assert (await client.get("/api/v1/namespaces/default/pods/q")).status == 404


def test_type_errors_while_defaulting_are_a_bad_request() -> None:
    import pytest as _pytest

    from apiserver.objects import _decoding
    from kubelite.api import errors
    from kubelite.api.resources import PODS
    with _pytest.raises(errors.BadRequest, match='Pod in version "v1" cannot be handled as a Pod: TypeError: boom'):
        with _decoding(PODS):
            raise TypeError("boom")
    with _pytest.raises(errors.Conflict):                      # API errors pass through as they are
        with _decoding(PODS):
            raise errors.Conflict("taken")
    with _decoding(PODS):
        pass
