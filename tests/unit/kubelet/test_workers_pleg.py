"""Pod workers (serial per pod, latest update only) and PLEG (relist differ + event stream)."""

from __future__ import annotations

import asyncio
import pytest

from kubelet.containerconfig import pod_labels
from kubelet.cri import ContainerConfig, ContainerMetadata, PodSandboxConfig, PodSandboxMetadata
from kubelet.pleg import GenericPLEG
from kubelet.pod_workers import DONE, PodWorkers
from kubelet.testing import FakeRuntime

pytestmark = pytest.mark.unit


async def test_workers_serial_and_coalescing() -> None:
    active: dict[str, int] = {}
    calls: list[str] = []
    gate = asyncio.Event()

    async def sync(uid: str) -> float | None:
        active[uid] = active.get(uid, 0) + 1
        assert active[uid] == 1, "two syncs of one pod at once"
        calls.append(uid)
        await gate.wait()
        active[uid] -= 1
        return DONE if uid == "b" else None

    w = PodWorkers(sync)
    task = asyncio.create_task(w.run())
    await asyncio.sleep(0)
    w.wake("a")
    w.wake("b")
    await asyncio.sleep(0.01)
    for _ in range(10):                      # a burst while "a" syncs: one more sync, not ten
        w.wake("a")
    gate.set()
    async with asyncio.timeout(2):
        while calls.count("a") < 2:
            await asyncio.sleep(0.005)
    await asyncio.sleep(0.05)
    assert calls.count("a") == 2 and calls.count("b") == 1
    assert w.known() == ["a"]                # "b" returned DONE: its worker ended
    w.stop()
    await task


async def test_worker_timer_and_error_backoff() -> None:
    times: list[float] = []
    loop = asyncio.get_running_loop()

    async def sync(uid: str) -> float | None:
        times.append(loop.time())
        if len(times) == 1:
            raise RuntimeError("boom")
        return 0.05 if len(times) < 4 else None

    w = PodWorkers(sync, error_backoff=0.05)
    task = asyncio.create_task(w.run())
    await asyncio.sleep(0)
    w.wake("a")
    async with asyncio.timeout(2):
        while len(times) < 4:
            await asyncio.sleep(0.005)
    assert all(b - a >= 0.04 for a, b in zip(times, times[1:]))
    w.stop()
    await task


async def test_pleg_relist_and_events_wake_changed_pods() -> None:
    rt = FakeRuntime()
    woken: list[str] = []
    pod = {"metadata": {"name": "p", "namespace": "default", "uid": "u1"}}
    labels = pod_labels(pod, "n1")
    sid = await rt.run_pod_sandbox(PodSandboxConfig(PodSandboxMetadata("p", "default", "u1"), "p", "/tmp", "x",
                                                    labels=labels))
    foreign = await rt.run_pod_sandbox(PodSandboxConfig(PodSandboxMetadata("q", "default", "u2"), "q", "/tmp", "x",
                                                        labels={"io.kubelite.owner": "runtime"}))
    pleg = GenericPLEG(rt, woken.append, owns=lambda l: l.get("kubelite.io/node") == "n1", period=0.02)
    assert await pleg.relist() == {"u1"}
    assert await pleg.relist() == set()                       # nothing changed
    cid = await rt.create_container(sid, ContainerConfig(ContainerMetadata("c"), "img", labels=dict(labels)),
                                    PodSandboxConfig(PodSandboxMetadata("p", "default", "u1"), "p", "/tmp", "x"))
    await rt.start_container(cid)
    assert await pleg.relist() == {"u1"}
    woken.clear()
    task = asyncio.create_task(pleg.run())
    try:
        rt.exit(cid, 2)                                       # the shim's exit event wakes the pod at once
        async with asyncio.timeout(1):
            while "u1" not in woken:
                await asyncio.sleep(0.001)
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
    assert "u2" not in woken and foreign


async def test_pleg_wakes_a_pod_only_for_what_its_sync_did_not_see() -> None:
    from kubelet.planner import RuntimePod
    rt = FakeRuntime()
    woken: list[str] = []
    pod = {"metadata": {"name": "p", "namespace": "default", "uid": "u1"}}
    labels = pod_labels(pod, "n1")
    cfg = PodSandboxConfig(PodSandboxMetadata("p", "default", "u1"), "p", "/tmp", "x", labels=labels)
    pleg = GenericPLEG(rt, woken.append, owns=lambda l: l.get("kubelite.io/node") == "n1", period=0.02)
    task = asyncio.create_task(pleg.run())
    try:
        sid = await rt.run_pod_sandbox(cfg)
        cid = await rt.create_container(sid, ContainerConfig(ContainerMetadata("c"), "img", labels=dict(labels)), cfg)
        await rt.start_container(cid)                         # its "started" event: the sync's own doing
        pleg.observed("u1", RuntimePod.of("u1", [await rt.pod_sandbox_status(sid)], await rt.list_containers(sid)))
        await asyncio.sleep(0.1)                              # relists meanwhile
        assert woken == []
        rt.exit(cid, 1)                                       # what the sync did not see
        async with asyncio.timeout(1):
            while "u1" not in woken:
                await asyncio.sleep(0.001)
        pleg.observed("u1", None)                             # removed: nothing of it is expected any more
        woken.clear()
        await pleg.relist()
        assert woken == ["u1"]                                # (the runtime still has it: a change)
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
