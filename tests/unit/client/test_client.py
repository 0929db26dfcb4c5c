"""The async Client and the light SyncClient against the fake apiserver: verbs, errors, watch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kubelite.api.errors import AlreadyExists, Conflict, Gone, NotFound, ServiceUnavailable
from kubelite.api.resources import DEPLOYMENTS, NODES, PODS
from kubelite.client import Client, SyncClient
from tests.unit.client.fake_apiserver import FakeApiServer

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


def pod(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "busybox:1.35"}]}}


async def test_crud_and_errors(client: Client, fake: FakeApiServer) -> None:
    created = await client.create(PODS, pod("a", app="web"))
    assert created["metadata"]["namespace"] == "default"
    assert fake.requests[-1].method == "POST" and fake.requests[-1].path == "/api/v1/namespaces/default/pods"
    with pytest.raises(AlreadyExists, match='pods "a" already exists'):
        await client.create("po", pod("a"))
    got = await client.get("pods", "a")
    assert got["metadata"]["uid"] == created["metadata"]["uid"]
    with pytest.raises(NotFound) as err:
        await client.get(PODS, "zzz", namespace="other")
    assert err.value.status_code == 404 and err.value.message == 'pods "zzz" not found'
    patched = await client.patch(PODS, "a", {"metadata": {"labels": {"tier": "x"}}})
    assert patched["metadata"]["labels"] == {"app": "web", "tier": "x"}
    assert fake.requests[-1].headers["Content-Type"] == "application/merge-patch+json"
    stale = dict(got)
    with pytest.raises(Conflict):
        await client.update(PODS, stale)
    listed = await client.list(PODS, "default", label_selector="app=web")
    assert [p["metadata"]["name"] for p in listed["items"]] == ["a"]
    assert fake.requests[-1].query == {"labelSelector": "app=web"}
    await client.delete(PODS, "a", grace_period_seconds=0, propagation_policy="Background")
    assert fake.requests[-1].body == {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                                      "propagationPolicy": "Background"}
    await client.create(NODES, {"metadata": {"name": "n1"}})
    assert fake.requests[-1].path == "/api/v1/nodes"
    await client.list(DEPLOYMENTS)
    assert fake.requests[-1].path == "/apis/apps/v1/deployments"


async def test_watch_streams_events_and_raises_gone(client: Client, fake: FakeApiServer) -> None:
    first = fake.put(PODS, pod("w1"))
    rv = first["metadata"]["resourceVersion"]
    fake.put(PODS, pod("w1", changed="yes"))
    fake.put(PODS, pod("w2"))
    seen = []
    async for event in client.watch(PODS, "default", resource_version=rv, timeout_seconds=5):
        seen.append((event.type, event.object["metadata"]["name"]))
        if len(seen) == 2:
            fake.remove(PODS, "default", "w2")      # a live event, after the replayed ones
        if len(seen) == 3:
            break
    assert seen == [("MODIFIED", "w1"), ("ADDED", "w2"), ("DELETED", "w2")]
    fake.compact()
    with pytest.raises(Gone):
        async for _ in client.watch(PODS, resource_version=rv):
            pass


async def test_connection_refused_is_service_unavailable() -> None:
    async with Client.from_url("http://127.0.0.1:1") as c:
        with pytest.raises(ServiceUnavailable):
            await c.get(PODS, "x")


def test_sync_client_same_verbs_and_keepalive() -> None:
    fake = FakeApiServer()
    with fake.in_thread() as url, SyncClient.from_url(url, namespace="ns1") as c:
        c.create(PODS, pod("s1"))
        sock = c._sock
        assert c.get(PODS, "s1")["metadata"]["namespace"] == "ns1"
        assert c._sock is sock, "the connection is kept alive"
        with pytest.raises(NotFound, match='pods "nope" not found'):
            c.get(PODS, "nope")
        c.patch(PODS, "s1", {"metadata": {"labels": {"a": "b"}}})
        rv = c.list(PODS, "ns1")["metadata"]["resourceVersion"]
        events = c.watch(PODS, "ns1", resource_version="0", timeout_seconds=1)
        first = next(events)
        assert first.type == "ADDED" and first.object["metadata"]["labels"] == {"a": "b"}
        events.close()
        c.delete(PODS, "s1")
        types = [e.type for e in c.watch(PODS, "ns1", resource_version=rv, timeout_seconds=1)]
        assert types == ["DELETED"]
        assert c.request("GET", "/api/v1/namespaces/ns1/pods")["items"] == []


def test_sync_client_imports_no_asyncio_aiohttp_or_ssl() -> None:
    code = ("import sys; from kubelite.client import SyncClient; import kubelite.cli.main;"
            "bad = [m for m in ('asyncio', 'aiohttp', 'ssl', 'http.client', 'yaml', 'orjson', 'pathlib', 'urllib.parse', 'encodings.idna') if m in sys.modules];"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
