"""The status manager: the only writer; bursts coalesce, terminal phases stick, no-op writes are skipped."""

from __future__ import annotations

import asyncio

import pytest

from kubelet.status_manager import StatusManager
from tests.unit.kubelet.fakeclient import FakeClient

pytestmark = pytest.mark.unit


def _pod(status: dict | None = None) -> dict:
    return {"metadata": {"name": "p", "namespace": "default", "uid": "u1"}, "status": status or {}}


async def test_burst_coalesces_into_one_write_of_the_newest() -> None:
    client = FakeClient()
    client.put("pods", _pod())
    sm = StatusManager(client)
    for phase in ("Pending", "Running", "Running"):
        sm.set_pod_status(_pod(), {"phase": phase, "podIP": f"10.0.0.{len(phase)}"})
    task = asyncio.create_task(sm.run())
    try:
        async with asyncio.timeout(2):
            while sm.writes < 1:
                await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)
    finally:
        task.cancel()
    assert client.statuses("p") == [{"phase": "Running", "podIP": "10.0.0.7"}]
    assert client.actions[0][3]["metadata"] == {"uid": "u1"}


async def test_unchanged_status_is_not_written_and_terminal_sticks() -> None:
    client = FakeClient()
    client.put("pods", _pod({"phase": "Running"}))
    sm = StatusManager(client)
    sm.set_pod_status(_pod({"phase": "Running"}), {"phase": "Running"})
    await sm.flush()
    assert sm.writes == 0
    sm.set_pod_status(_pod({"phase": "Running"}), {"phase": "Succeeded"})
    await sm.flush()
    sm.set_pod_status(_pod({"phase": "Succeeded"}), {"phase": "Running"})
    await sm.flush()
    assert [s["phase"] for s in client.statuses("p")] == ["Succeeded"]


async def test_delete_after_final_status() -> None:
    client = FakeClient()
    client.put("pods", _pod({"phase": "Running"}))
    sm = StatusManager(client)
    sm.set_pod_status(_pod({"phase": "Running"}), {"phase": "Failed"}, delete=True)
    await sm.flush()
    assert [a[0] for a in client.actions] == ["patch", "delete"]
    assert client.actions[1][3] == {"grace_period_seconds": 0}
    # the object is gone now: a late status is dropped quietly
    sm.set_pod_status(_pod({"phase": "Failed"}), {"phase": "Failed", "x": 1})
    await sm.flush()
    assert sm.get("u1") is None


class _SlowClient(FakeClient):
    """Patches wait for ``release``; records how many were in flight at once, per pod and in all."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.inflight: list[str] = []
        self.peak = 0
        self.peak_per_pod = 0
        self.order: list[str] = []

    async def patch(self, res, name, body, namespace=None, **kw):  # type: ignore[no-untyped-def]
        self.inflight.append(name)
        self.order.append(name)
        self.peak = max(self.peak, len(self.inflight))
        self.peak_per_pod = max(self.peak_per_pod, self.inflight.count(name))
        try:
            await self.release.wait()
            return await super().patch(res, name, body, namespace, **kw)
        finally:
            self.inflight.remove(name)


def _named(i: int) -> dict:
    return {"metadata": {"name": f"p{i}", "namespace": "default", "uid": f"u{i}"}, "status": {}}


async def test_a_burst_of_pods_is_written_a_few_at_once_oldest_first_one_write_per_pod() -> None:
    client = _SlowClient()
    for i in range(10):
        client.put("pods", _named(i))
    sm = StatusManager(client, writers=3)
    for i in range(10):
        sm.set_pod_status(_named(i), {"phase": "Pending"})
    task = asyncio.create_task(sm.run())
    try:
        async with asyncio.timeout(2):
            while len(client.inflight) < 3:
                await asyncio.sleep(0.001)
            sm.set_pod_status(_named(0), {"phase": "Running"})   # newer, while p0's first write is in flight
            await asyncio.sleep(0.02)
            assert client.peak == 3 and client.order == ["p0", "p1", "p2"]
            client.release.set()
            while sm.writes < 11:
                await asyncio.sleep(0.002)
    finally:
        task.cancel()
    assert client.peak == 3 and client.peak_per_pod == 1
    assert client.order[:10] == [f"p{i}" for i in range(10)] and client.order[10] == "p0"
    assert client.statuses("p0")[-1] == {"phase": "Running"}
