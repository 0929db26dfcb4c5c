"""Events expire after the event TTL counted from their last write (here 3 s through
``$KUBELITE_EVENT_TTL``; 1 h by default), and watchers see them go; fresh ones stay."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, timezone

import pytest

from tests.support import cluster
from tests.support.http import Api


def _event(name: str, last: datetime) -> dict:
    ts = last.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default", "apiVersion": "v1"},
            "reason": "Test", "message": "m", "type": "Normal", "count": 2, "firstTimestamp": ts, "lastTimestamp": ts,
            "source": {"component": "test"}}


async def test_old_events_expire(etcd_server: cluster.EtcdServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBELITE_EVENT_TTL", "3")
    with cluster.apiserver(etcd_server.url) as server:
        now = datetime.now(timezone.utc)
        async with Api(server.url) as api:
            for name, when in (("old", now - timedelta(hours=2)), ("fresh", now)):
                r = await api.post("/api/v1/namespaces/default/events", _event(name, when))
                assert r.status == 201, r.body
            start = time.monotonic()
            while (await api.get("/api/v1/namespaces/default/events/old")).status != 404:
                assert time.monotonic() - start < 10, "the old event never expired"
                await asyncio.sleep(0.1)
            if time.monotonic() - start < 2.5:      # the fresh one is younger than the TTL still
                assert (await api.get("/api/v1/namespaces/default/events/fresh")).status == 200
            while (await api.get("/api/v1/namespaces/default/events/fresh")).status != 404:
                assert time.monotonic() - start < 15, "the fresh event never expired"
                await asyncio.sleep(0.1)
