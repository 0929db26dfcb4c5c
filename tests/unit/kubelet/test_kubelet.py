"""The kubelet's core (pod workers, PLEG, prober, status manager) against the fake runtime and client."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import pytest

from kubelet.cri import ContainerState
from kubelet.kubelet import Kubelet, KubeletConfig
from kubelet.testing import FakeImageService, FakeRuntime
from tests.unit.kubelet.fakeclient import FakeClient

pytestmark = pytest.mark.unit


async def wait_for(cond: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def make_pod(name: str, *containers: dict[str, Any], uid: str | None = None, policy: str = "Always",
             **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "uid": uid or f"uid-{name}",
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"nodeName": "n1", "restartPolicy": policy,
                     "containers": list(containers) or [{"name": "c", "image": "busybox:1.36"}], **spec},
            "status": {}}


class Harness:
    def __init__(self, tmp: Path, runtime: FakeRuntime | None = None, client: FakeClient | None = None,
                 base: float = 0.2) -> None:
        self.runtime = runtime or FakeRuntime()
        self.images = FakeImageService(["busybox:1.36"])
        self.client = client or FakeClient()
        self.kubelet = Kubelet(KubeletConfig("n1", tmp, host_ip="192.168.0.9", crash_loop_base=base,
                                             crash_loop_cap=1.0, pleg_period=0.05, housekeeping_period=0.1),
                               self.client, self.runtime, self.images)

    def add(self, pod: dict[str, Any]) -> None:
        self.client.put("pods", pod)
        self.kubelet.pod_added(pod)

    def last_status(self, name: str) -> dict[str, Any]:
        for key, obj in self.client.objects.items():
            if key[0] == "pods" and key[2] == name:
                return obj.get("status") or {}
        return {}

    def containers(self, name: str) -> list:
        return [c for c in self.runtime.containers.values() if c.metadata.name == name]


@contextlib.asynccontextmanager
async def running(h: Harness) -> AsyncIterator[Harness]:
    task = asyncio.create_task(h.kubelet.run())
    h.kubelet.mark_synced()
    try:
        yield h
    finally:
        h.kubelet.stop()
        await asyncio.wait_for(task, 5)


async def test_pod_runs_and_status_is_written(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    async with running(h):
        h.add(make_pod("web", {"name": "a", "image": "busybox:1.36"}, {"name": "b", "image": "busybox:1.36"}))
        await wait_for(lambda: h.last_status("web").get("phase") == "Running")
        s = h.last_status("web")
        assert [c["name"] for c in s["containerStatuses"]] == ["a", "b"]
        assert all(c["ready"] for c in s["containerStatuses"]) and s["hostIP"] == "192.168.0.9"
        assert s["podIP"].startswith("10.244.")
        assert [c for c, _ in h.runtime.calls].count("run_pod_sandbox") == 1


async def test_exit_restarts_with_growing_backoff(tmp_path: Path) -> None:
    h = Harness(tmp_path, base=0.3)
    async with running(h):
        h.add(make_pod("crash"))
        await wait_for(lambda: any(c.state == ContainerState.RUNNING for c in h.containers("c")))
        t_exit = time.monotonic()
        h.runtime.exit(h.containers("c")[0].id, 1)
        # first restart is immediate (no backoff yet)
        await wait_for(lambda: len(h.containers("c")) == 2 and
                       any(c.state == ContainerState.RUNNING for c in h.containers("c")))
        first = time.monotonic() - t_exit
        assert first < 0.3
        newest = max(h.containers("c"), key=lambda c: c.metadata.attempt)
        h.runtime.exit(newest.id, 1)
        t_exit = time.monotonic()
        await wait_for(lambda: h.last_status("crash")["containerStatuses"][0]["state"].get("waiting", {})
                       .get("reason") == "CrashLoopBackOff")
        await wait_for(lambda: len(h.containers("c")) == 3, timeout=3)
        assert time.monotonic() - t_exit >= 0.25
        s = h.last_status("crash")
        await wait_for(lambda: h.last_status("crash")["containerStatuses"][0]["restartCount"] == 2)
        assert s["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 1


async def test_never_policy_pod_succeeds(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    async with running(h):
        h.add(make_pod("job", policy="Never"))
        await wait_for(lambda: h.containers("c") and h.containers("c")[0].state == ContainerState.RUNNING)
        h.runtime.exit(h.containers("c")[0].id, 0)
        await wait_for(lambda: h.last_status("job").get("phase") == "Succeeded")
        term = h.last_status("job")["containerStatuses"][0]["state"]["terminated"]
        assert term["reason"] == "Completed" and term["exitCode"] == 0
        assert len(h.containers("c")) == 1


async def test_missing_configmap_then_created(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    async with running(h):
        h.add(make_pod("cfg", {"name": "c", "image": "busybox:1.36",
                               "envFrom": [{"configMapRef": {"name": "settings"}}]}))
        await wait_for(lambda: (h.last_status("cfg").get("containerStatuses") or [{}])[0]
                       .get("state", {}).get("waiting", {}).get("reason") == "CreateContainerConfigError")
        assert h.last_status("cfg")["containerStatuses"][0]["state"]["waiting"]["message"] == \
            'configmap "settings" not found'
        h.client.put("configmaps", {"metadata": {"name": "settings", "namespace": "default"}, "data": {"X": "1"}})
        await wait_for(lambda: h.last_status("cfg").get("phase") == "Running", timeout=5)
        cfg = next(iter(h.runtime.configs.values()))
        assert ("X", "1") in cfg.envs


async def test_graceful_delete_then_object_removed(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    async with running(h):
        pod = make_pod("gone")
        h.add(pod)
        await wait_for(lambda: h.last_status("gone").get("phase") == "Running")
        deleting = dict(pod, metadata=dict(pod["metadata"], deletionTimestamp="2026-01-01T00:00:00Z",
                                           deletionGracePeriodSeconds=5))
        h.client.put("pods", deleting)
        h.kubelet.pod_updated(pod, deleting)
        await wait_for(lambda: any(a == "delete" for a, *_ in h.client.actions))
        assert ("delete", "pods", "gone", {"grace_period_seconds": 0}) in h.client.actions
        assert all(c.state == ContainerState.EXITED for c in h.containers("c"))
        h.kubelet.pod_deleted(deleting)
        await wait_for(lambda: not h.runtime.containers and not h.runtime.sandboxes)


async def test_orphans_removed_and_restart_readopts(tmp_path: Path) -> None:
    runtime = FakeRuntime()
    client = FakeClient()
    h = Harness(tmp_path, runtime, client)
    async with running(h):
        h.add(make_pod("keep"))
        h.add(make_pod("drop"))
        await wait_for(lambda: h.last_status("keep").get("phase") == "Running"
                       and h.last_status("drop").get("phase") == "Running")
    # the kubelet is gone; containers live on. Meanwhile "drop" is deleted and keep's container exits 3.
    del client.objects[("pods", "default", "drop")]
    keep_c = next(c for c in runtime.containers.values() if c.labels["io.kubernetes.pod.name"] == "keep")
    runtime.exit(keep_c.id, 3)
    starts_before = [c for c, _ in runtime.calls].count("start_container")
    h2 = Harness(tmp_path, runtime, client)
    h2.kubelet.pod_added(client.objects[("pods", "default", "keep")])
    async with running(h2):
        await wait_for(lambda: not any(c.labels["io.kubernetes.pod.name"] == "drop"
                                       for c in runtime.containers.values()))
        await wait_for(lambda: h2.last_status("keep")["containerStatuses"][0]["restartCount"] == 1)
        s = h2.last_status("keep")["containerStatuses"][0]
        assert s["lastState"]["terminated"]["exitCode"] == 3 and s["lastState"]["terminated"]["reason"] == "Error"
    assert [c for c, _ in runtime.calls].count("start_container") == starts_before + 1


async def test_liveness_failure_restarts_and_readiness_gates(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    probe = {"exec": {"command": ["check"]}, "periodSeconds": 0.05, "failureThreshold": 2}
    async with running(h):
        h.add(make_pod("probed", {"name": "c", "image": "busybox:1.36", "livenessProbe": probe,
                                  "readinessProbe": {"exec": {"command": ["ready"]}, "periodSeconds": 0.05}}))
        await wait_for(lambda: h.last_status("probed").get("conditions") and
                       {c["type"]: c["status"] for c in h.last_status("probed")["conditions"]}["Ready"] == "True")
        from kubelet.cri import ExecResult
        h.runtime.exec_results[("check",)] = ExecResult(1, b"", b"bad")
        await wait_for(lambda: len(h.containers("c")) == 2)
        killed = [c for c in h.containers("c") if c.metadata.attempt == 0][0]
        assert killed.state == ContainerState.EXITED


async def test_runtime_class_handler(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.client.put("runtimeclasses", {"metadata": {"name": "fast"}, "handler": "crun"})
    async with running(h):
        h.add(make_pod("rc", runtimeClassName="fast"))
        h.add(make_pod("norc", runtimeClassName="missing"))
        await wait_for(lambda: h.last_status("rc").get("phase") == "Running")
        assert [s.runtime_handler for s in h.runtime.sandboxes.values()] == ["crun"]
        assert set(h.kubelet.timing[h.kubelet.pods["uid-rc"]["metadata"]["uid"]]) >= {"seen", "sandbox", "started"}


class ListRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str]] = []

    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.events.append((obj["metadata"]["name"], type_, reason, message))


async def test_events_for_start_backoff_and_probe(tmp_path: Path) -> None:
    h = Harness(tmp_path, base=5)
    rec = ListRecorder()
    h.kubelet.recorder = rec
    from kubelet.cri import ExecResult
    h.runtime.exec_results[("nope",)] = ExecResult(1, b"", b"no")
    async with running(h):
        h.add(make_pod("ev", {"name": "c", "image": "busybox:1.36",
                              "readinessProbe": {"exec": {"command": ["nope"]}, "periodSeconds": 0.05}}))
        await wait_for(lambda: any(r == "Unhealthy" for _, _, r, _ in rec.events))
        h.runtime.exit(h.containers("c")[0].id, 1)
        await wait_for(lambda: len(h.containers("c")) == 2)
        newest = max(h.containers("c"), key=lambda c: c.metadata.attempt)
        await wait_for(lambda: newest.id in h.runtime.containers and
                       h.runtime.containers[newest.id].state == ContainerState.RUNNING)
        h.runtime.exit(newest.id, 1)
        await wait_for(lambda: any(r == "BackOff" for _, _, r, _ in rec.events))
    reasons = [r for _, _, r, _ in rec.events]
    assert reasons[:3] == ["Pulled", "Created", "Started"]
    assert ("ev", "Warning", "Unhealthy", "Readiness probe failed: command ['nope'] exited with 1: no") in rec.events


async def test_max_pods_admission(tmp_path: Path) -> None:
    import dataclasses
    h = Harness(tmp_path)
    h.kubelet.config = dataclasses.replace(h.kubelet.config, max_pods=2)
    async with running(h):
        for name in ("p1", "p2"):
            h.add(make_pod(name))
        await wait_for(lambda: all(h.last_status(n).get("phase") == "Running" for n in ("p1", "p2")))
        h.add(make_pod("p3"))
        await wait_for(lambda: h.last_status("p3").get("phase") == "Failed")
        assert h.last_status("p3")["reason"] == "OutOfpods"
        assert len(h.runtime.sandboxes) == 2


async def test_status_only_updates_do_not_wake_the_worker(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    async with running(h):
        pod = make_pod("quiet")
        h.add(pod)
        await wait_for(lambda: h.last_status("quiet").get("phase") == "Running")
        await asyncio.sleep(0.2)
        before = h.kubelet.workers.syncs
        for i in range(5):                           # our own status writes coming back through the watch
            new = dict(pod, status={"phase": "Running", "n": i},
                       metadata=dict(pod["metadata"], resourceVersion=str(10 + i)))
            h.kubelet.pod_updated(pod, new)
        await asyncio.sleep(0.2)
        assert h.kubelet.workers.syncs - before <= 1  # at most a PLEG/timer sync, not one per update
        after = h.kubelet.workers.syncs
        changed = dict(pod, metadata=dict(pod["metadata"], labels={"a": "b"}))
        h.kubelet.pod_updated(pod, changed)
        await wait_for(lambda: h.kubelet.workers.syncs > after)


async def test_startup_probe_gates_started_ready_and_liveness(tmp_path: Path) -> None:
    from kubelet.cri import ExecResult
    h = Harness(tmp_path)
    h.runtime.exec_results[("started?",)] = ExecResult(1, b"", b"")
    h.runtime.exec_results[("alive?",)] = ExecResult(1, b"", b"")     # would restart, if it ran
    fast = {"periodSeconds": 0.05, "failureThreshold": 1000}
    async with running(h):
        h.add(make_pod("slow", {"name": "c", "image": "busybox:1.36",
                                "startupProbe": {"exec": {"command": ["started?"]}, **fast},
                                "livenessProbe": {"exec": {"command": ["alive?"]}, "periodSeconds": 0.05,
                                                  "failureThreshold": 1}}))
        await wait_for(lambda: h.last_status("slow").get("phase") == "Running")
        await asyncio.sleep(0.3)
        cs = h.last_status("slow")["containerStatuses"][0]
        assert cs["started"] is False and cs["ready"] is False
        assert ("exec_sync", ("alive?",)) not in h.runtime.calls       # liveness waits for startup
        h.runtime.exec_results[("started?",)] = ExecResult(0, b"", b"")
        h.runtime.exec_results[("alive?",)] = ExecResult(0, b"", b"")
        await wait_for(lambda: h.last_status("slow")["containerStatuses"][0]["started"] is True)
        assert h.last_status("slow")["containerStatuses"][0]["ready"] is True
        await wait_for(lambda: ("exec_sync", ("alive?",)) in h.runtime.calls)
        assert len(h.containers("c")) == 1


async def test_host_network_pod_uses_node_ip(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    async with running(h):
        h.add(make_pod("hn", {"name": "c", "image": "busybox:1.36",
                              "env": [{"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]},
                       hostNetwork=True))
        await wait_for(lambda: h.last_status("hn").get("phase") == "Running")
        assert h.last_status("hn")["podIP"] == "192.168.0.9"
        assert ("IP", "192.168.0.9") in next(iter(h.runtime.configs.values())).envs
        assert h.kubelet._running(h.kubelet.pods["uid-hn"], await h.kubelet.rm.runtime_pod("uid-hn"))["c"][1] == \
            "192.168.0.9"


class _SlowSandboxes(FakeRuntime):
    """Sandboxes wait for ``release``; records how many were being made at once, and in which order."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.making = 0
        self.peak = 0
        self.order: list[str] = []

    async def run_pod_sandbox(self, config: Any, runtime_handler: str = "") -> str:
        self.making += 1
        self.peak = max(self.peak, self.making)
        self.order.append(config.metadata.name)
        try:
            await self.release.wait()
            return await super().run_pod_sandbox(config, runtime_handler)
        finally:
            self.making -= 1


async def test_a_burst_of_pods_starts_a_few_at_a_time_in_arrival_order(tmp_path: Path) -> None:
    from kubelet.kuberuntime import START_CONCURRENCY as gate
    rt = _SlowSandboxes()
    h = Harness(tmp_path, runtime=rt)
    n = gate + 5
    async with running(h):
        for i in range(n):
            h.add(make_pod(f"p{i:02d}"))
        await wait_for(lambda: rt.making == gate)
        await asyncio.sleep(0.05)
        assert rt.making == gate and sorted(rt.order) == [f"p{i:02d}" for i in range(gate)]   # the first to arrive
        rt.release.set()
        await wait_for(lambda: all(h.last_status(f"p{i:02d}").get("phase") == "Running" for i in range(n)))
    assert rt.peak == gate and sorted(rt.order) == [f"p{i:02d}" for i in range(n)]


async def test_a_pod_whose_image_needs_a_pull_does_not_wait_for_the_start_gate(tmp_path: Path) -> None:
    from kubelet.kuberuntime import START_CONCURRENCY as gate
    rt = _SlowSandboxes()
    h = Harness(tmp_path, runtime=rt)
    async with running(h):
        for i in range(gate):
            h.add(make_pod(f"p{i}"))
        await wait_for(lambda: rt.making == gate)
        h.add(make_pod("pull", {"name": "c", "image": "busybox:1.36", "imagePullPolicy": "Always"}))
        await wait_for(lambda: rt.making == gate + 1)
        rt.release.set()


async def test_events_wait_while_pods_start_then_come_in_order(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import kubelet.kubelet as kubelet_mod
    rt = _SlowSandboxes()
    h = Harness(tmp_path, runtime=rt)
    rec = ListRecorder()
    h.kubelet.recorder = rec
    async with running(h):
        h.add(make_pod("slow"))
        await wait_for(lambda: rt.making == 1)
        h.add(make_pod("norc", runtimeClassName="missing"))         # an event while "slow" is starting
        await asyncio.sleep(0.3)
        assert rec.events == []
        rt.release.set()
        await wait_for(lambda: h.last_status("slow").get("phase") == "Running")
        await wait_for(lambda: len(rec.events) >= 4)
        assert rec.events[0][:3] == ("norc", "Warning", "FailedCreatePodSandBox")
        assert [r for n, _, r, _ in rec.events if n == "slow"][:3] == ["Pulled", "Created", "Started"]
        # a start that takes long holds events EVENT_HOLD at most
        monkeypatch.setattr(kubelet_mod, "EVENT_HOLD", 0.2)
        rt.release.clear()
        h.add(make_pod("slow2"))
        await wait_for(lambda: rt.making == 1)
        n = len(rec.events)
        h.add(make_pod("norc2", runtimeClassName="missing"))
        await wait_for(lambda: len(rec.events) > n, timeout=2)
        assert rt.making == 1 and rec.events[n][0] == "norc2"
        rt.release.set()
