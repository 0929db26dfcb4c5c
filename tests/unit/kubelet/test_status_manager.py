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
