"""The kubelet's core: pods bound to this node in, running containers and pod status out.

Wires the pod workers (one serial sync per pod), PLEG, the probe manager and the status manager
around :meth:`Kubelet.sync`, the level-triggered sync of one pod: read the pod (from the informer's
handlers) and the runtime's state, let the planner decide and the runtime manager act, compute the
status and hand it to the status manager. A pod gone from the API (or moved to another node) is
stopped and removed, as is anything of this node's in the runtime that no pod owns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol

from kubelite.api.errors import ApiError, NotFound
from kubelite.api.resources import lookup
from kubelet.cri import ContainerState, ImageService, RuntimeService
from kubelet.gc import ImageGC, collect_containers, rotate_logs
from kubelet.envvars import Sources, referenced_objects
from kubelet.images import ImageManager
from kubelet.logs import parse_time
from kubelet.kuberuntime import RuntimeManager, grace_period, pod_key, termination_message
from kubelet.metrics import KubeletMetrics
from kubelet.oomevents import oom_events
from kubelet.planner import Backoff, RuntimePod
from kubelet.pleg import GenericPLEG
from kubelet.pod_workers import DONE, PodWorkers
from kubelet.podstatus import StatusInputs, compute_pod_status
from kubelet.prober import ProbeManager
from kubelet.status_manager import StatusManager

logger = logging.getLogger(__name__)
RESYNC = 10.0
EVENT_HOLD = 2.0     # seconds a pod event may wait for the pods being started (see Kubelet._event)


_VOLATILE_META = ("resourceVersion", "managedFields", "generation")


def _same_but_status(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    if old.get("spec") != new.get("spec"):
        return False
    om = {k: v for k, v in (old.get("metadata") or {}).items() if k not in _VOLATILE_META}
    nm = {k: v for k, v in (new.get("metadata") or {}).items() if k not in _VOLATILE_META}
    return om == nm


class Recorder(Protocol):
    def event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None: ...


@dataclass(frozen=True, slots=True)
class KubeletConfig:
    node_name: str
    root_dir: Path
    host_ip: str = "127.0.0.1"
    crash_loop_base: float = 10.0
    crash_loop_cap: float = 300.0
    pleg_period: float = 1.0
    housekeeping_period: float = 2.0
    gc_period: float = 60.0
    max_pods: int = 110
    node_allocatable: Mapping[str, str] | None = None

    @property
    def log_dir(self) -> Path:
        return self.root_dir / "logs" / "pods"


class Kubelet:
    def __init__(self, config: KubeletConfig, client: Any, runtime: RuntimeService, images: ImageService,
                 recorder: Recorder | None = None, metrics: KubeletMetrics | None = None) -> None:
        self.config = config
        self.client = client
        self.runtime = runtime
        self.recorder = recorder
        self.metrics = metrics or KubeletMetrics()
        self.backoff = Backoff(config.crash_loop_base, config.crash_loop_cap)
        self.image_manager = ImageManager(images)
        self.rm = RuntimeManager(runtime, self.image_manager, node_name=config.node_name, root_dir=config.root_dir,
                                 log_dir=config.log_dir, backoff=self.backoff)
        self.workers = PodWorkers(self.sync, duration=self.metrics.pod_worker_duration)
        self.pleg = GenericPLEG(runtime, self._pleg_changed, owns=self.rm.owns, period=config.pleg_period,
                                relist_duration=self.metrics.pleg_relist_duration)
        self.prober = ProbeManager(runtime, self.workers.wake, self.metrics.prober_probe_total, self._probe_event)
        self.status = StatusManager(client)
        self.image_gc = ImageGC(images)
        self._last_gc = 0.0
        self.pods: dict[str, dict[str, Any]] = {}          # uid → newest pod bound here
        self.removed: dict[str, dict[str, Any]] = {}       # uid → last known pod that left
        self._messages: dict[str, str] = {}                # exited container id → termination message
        self._oom_reported: set[str] = set()               # container ids whose OOMKilling event went out
        self._running_seen: set[str] = set()
        self._synced = asyncio.Event()
        self._stop = asyncio.Event()
        self.stop_pods_on_exit = False
        self.node_allocatable = dict(config.node_allocatable or {})
        self.host_ip = config.host_ip
        self.rm.host_ip = config.host_ip
        self._admitted: set[str] = set()
        self._cleaned: set[str] = set()                    # uids removed from the runtime (PLEG echoes ignored)
        self.timing: dict[str, dict[str, float]] = {}     # uid → seen/sandbox/started wall-clock times
        # events waiting for the pods being started (None: not holding, e.g. before run())
        self._events_held: list[tuple[float, dict[str, Any], str, str, str]] | None = None

    # ------------------------------------------------------------------ informer handlers
    def pod_added(self, pod: dict[str, Any]) -> None:
        uid = (pod.get("metadata") or {}).get("uid", "")
        if (pod.get("spec") or {}).get("nodeName") != self.config.node_name:
            self.pod_deleted(pod)
            return
        self.pods[uid] = pod
        self._cleaned.discard(uid)
        self.timing.setdefault(uid, {"seen": time.time()})
        self.removed.pop(uid, None)
        self.workers.wake(uid)

    def pod_updated(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        """A change of spec or metadata wakes the pod's worker; a status-only change (our own writes coming
        back through the watch) is stored without one, as Kubernetes' config merger does."""
        uid = (new.get("metadata") or {}).get("uid", "")
        if uid in self.pods and _same_but_status(old, new) and \
                (new.get("spec") or {}).get("nodeName") == self.config.node_name:
            self.pods[uid] = new
            return
        self.pod_added(new)

    def pod_deleted(self, pod: dict[str, Any]) -> None:
        uid = (pod.get("metadata") or {}).get("uid", "")
        self.removed[uid] = self.pods.pop(uid, pod)
        self.workers.wake(uid)

    def _pleg_changed(self, uid: str) -> None:
        if uid in self._cleaned and uid not in self.pods:
            return                     # the echo of our own removal; housekeeping still catches real orphans
        self.workers.wake(uid)

    def mark_synced(self) -> None:
        """The pod informer has listed: from now on a pod not in ``pods`` really is gone."""
        self._synced.set()

    # ------------------------------------------------------------------ running
    async def run(self) -> None:
        """Run until :meth:`stop`; pods keep running afterwards unless ``stop_pods_on_exit``."""
        async with asyncio.TaskGroup() as tg:
            status = tg.create_task(self.status.run())
            synced = tg.create_task(self._synced.wait())
            await asyncio.wait([synced, tg.create_task(self._stop.wait())], return_when=asyncio.FIRST_COMPLETED)
            if not self._synced.is_set():
                synced.cancel()
                status.cancel()
                return
            tg.create_task(self.workers.run())
            tg.create_task(self.prober.run())
            while not self.workers.running:
                await asyncio.sleep(0)
            for uid in list(self.pods):
                self.workers.wake(uid)
            pleg = tg.create_task(self.pleg.run())
            house = tg.create_task(self._housekeeping())
            held = tg.create_task(self._events_after_starts()) if self.recorder is not None else None
            await self._stop.wait()
            pleg.cancel()
            house.cancel()
            if held is not None:
                held.cancel()
            self.prober.stop()
            self.workers.stop()
            status.cancel()
        # after the workers are gone: nothing else touches the runtime now
        if self.stop_pods_on_exit:
            await self.stop_all_pods()
        await self.status.flush()

    def stop(self, *, stop_pods: bool = False) -> None:
        self.stop_pods_on_exit = self.stop_pods_on_exit or stop_pods
        self._stop.set()

    async def stop_all_pods(self) -> None:
        """Stop and remove every container and sandbox of this node, keeping the API objects (``kubelite up``'s
        Ctrl-C): nothing is left on the machine, and the next start creates the pods afresh."""
        pods = await self.rm.runtime_pods()

        async def one(uid: str, rp: RuntimePod) -> None:
            pod = self.pods.get(uid, {})
            await self.rm.kill_pod(pod, rp, min(grace_period(pod), 10) if pod else 2)
            await self.rm.remove_pod(await self.rm.runtime_pod(uid))

        async with asyncio.TaskGroup() as tg:
            for uid, rp in pods.items():
                tg.create_task(one(uid, rp))

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self.config.housekeeping_period)
            try:
                await self.housekeeping()
            except Exception:
                logger.exception("housekeeping failed")

    async def housekeeping(self) -> None:
        """Orphans: runtime pods no API pod owns get a worker (which removes them); metrics; disk housekeeping.
        Reads PLEG's last listing (at most a PLEG period old) rather than listing the runtime again."""
        listing = self.pleg.last_listing
        rps = self.rm.group(*listing) if listing is not None else await self.rm.runtime_pods()
        for uid in rps:
            if uid not in self.pods:
                self.workers.wake(uid)
        for uid in self.pods:
            if uid not in self.workers.known():
                self.workers.wake(uid)
        running = [c for rp in rps.values() for c in rp.containers if c.state == ContainerState.RUNNING]
        self.metrics.running_containers.labels(container_state="running").set(len(running))
        self.metrics.running_pods.set(sum(1 for rp in rps.values() if rp.sandbox is not None
                                          and rp.sandbox.state.value == "SANDBOX_READY"))
        await rotate_logs(rps)
        if time.monotonic() - self._last_gc >= self.config.gc_period:
            self._last_gc = time.monotonic()
            await collect_containers(self.runtime, {u: rp for u, rp in rps.items() if u in self.pods})
            await self.image_gc.collect(rps)

    # ------------------------------------------------------------------ the sync of one pod
    async def sync(self, uid: str) -> float | None:
        pod = self.pods.get(uid)
        if pod is not None:
            self.timing.setdefault(uid, {"seen": time.time()}).setdefault("sync", time.time())
        rp = await self.rm.runtime_pod(uid)
        if pod is None:
            return await self._remove(uid, rp)
        if uid not in self._admitted and not self._admit(pod, rp):
            return None
        sources = await self._sources(pod)
        running = self._running(pod, rp)
        handler = await self._runtime_handler(pod)
        if handler is None:
            rc = (pod.get("spec") or {}).get("runtimeClassName")
            self._event(pod, "Warning", "FailedCreatePodSandBox", f'RuntimeClass "{rc}" not found')
            return RESYNC
        result = await self.rm.sync_pod(pod, rp, sources, self._pull_secrets(pod, sources),
                                        self.prober.failed(uid, running, "livenessProbe"),
                                        self.prober.failed(uid, running, "startupProbe"), handler)
        times = self.timing.setdefault(uid, {"seen": time.time()})
        if result.sandbox_ready_at:
            times.setdefault("sandbox", result.sandbox_ready_at)
        if result.started_at:
            times.setdefault("started", result.started_at)
        for k, v in result.marks.items():
            times.setdefault(k, v)
        for type_, reason, message in result.events:
            self._event(pod, type_, reason, message)
        for name in result.started:
            self.metrics.started_containers.labels(container_type="container").inc()
        a = result.actions
        if a.kill_pod or a.create_sandbox or a.containers_to_kill or a.containers_to_start or a.next_init_container:
            rp = await self.rm.runtime_pod(uid)
        for type_, reason, message in oom_events(rp, self._oom_reported):
            self._event(pod, type_, reason, message)
        running = self._running(pod, rp)
        self.prober.sync(pod, running)
        await self._read_messages(rp)
        status = compute_pod_status(pod, rp, StatusInputs(
            now=time.time(), host_ip=self.host_ip, sync_errors=result.errors,
            ready=self.prober.ready(uid, running), started=self.prober.started(uid, running),
            termination_messages=self._messages))
        self.pleg.observed(uid, rp)
        deleting = bool((pod.get("metadata") or {}).get("deletionTimestamp"))
        done = deleting and not rp.running()
        self.status.set_pod_status(pod, status, delete=done)
        if status["phase"] == "Running" and uid not in self._running_seen:
            self._running_seen.add(uid)
            created = (pod.get("metadata") or {}).get("creationTimestamp")
            if created:
                self.metrics.pod_start_duration.observe(max(0.0, time.time() - parse_time(created)))
        if deleting:
            return None if done else 1.0
        if status["phase"] in ("Succeeded", "Failed") and not rp.running():
            return None                               # nothing left to do until the pod changes
        if result.actions.backoff:
            return min(result.actions.backoff.values()) + 0.01
        if result.errors:
            return min(RESYNC, max(self.backoff.base / 2, 1.0))
        return RESYNC

    def _admit(self, pod: Mapping[str, Any], rp: RuntimePod) -> bool:
        """Admission (as the kubelet's): beyond ``max_pods`` active pods a new pod fails with OutOfpods."""
        uid = (pod.get("metadata") or {}).get("uid", "")
        active = sum(1 for u in self._admitted if u in self.pods and
                     (self.pods[u].get("status") or {}).get("phase") not in ("Succeeded", "Failed"))
        terminal = (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")
        if rp.sandboxes or rp.containers or terminal or active < self.config.max_pods:
            self._admitted.add(uid)
            return True
        message = (f"Node didn't have enough resource: pods, requested: 1, used: {active}, "
                   f"capacity: {self.config.max_pods}")
        self._event(pod, "Warning", "OutOfpods", message)
        status = dict(pod.get("status") or {})
        status.update({"phase": "Failed", "reason": "OutOfpods", "message": message})
        self.status.set_pod_status(pod, status)
        return False

    async def _remove(self, uid: str, rp: RuntimePod) -> float:
        if not self._synced.is_set():
            return 1.0
        last = self.removed.get(uid, {})
        if rp.sandboxes or rp.containers:
            logger.info("%s (%s): not bound here any more, stopping", pod_key(last) if last else "orphan", uid)
            await self.rm.kill_pod(last, rp, min(grace_period(last), 30) if last else 2)
            await self.rm.remove_pod(rp)
        else:
            await self.rm.remove_pod(rp)
        self.prober.remove_pod(uid)
        self.pleg.observed(uid, None)
        self.status.forget(uid)
        self.removed.pop(uid, None)
        self._cleaned.add(uid)
        if len(self._cleaned) > 10_000:
            self._cleaned.clear()
        self._admitted.discard(uid)
        self.timing.pop(uid, None)
        self._running_seen.discard(uid)
        for c in rp.containers:
            self._messages.pop(c.id, None)
        return DONE

    def _running(self, pod: Mapping[str, Any], rp: RuntimePod) -> dict[str, tuple[str, str]]:
        """Running containers by name → (id, the IP probes dial: the pod's, or the node's with hostNetwork)."""
        ip = rp.sandbox.ip if rp.sandbox is not None and rp.sandbox.ip else ""
        if not ip and (pod.get("spec") or {}).get("hostNetwork"):
            ip = self.host_ip
        out: dict[str, tuple[str, str]] = {}
        for c in rp.containers:                        # newest first
            if c.state == ContainerState.RUNNING and c.metadata.name not in out:
                out[c.metadata.name] = (c.id, ip)
        return out

    async def _read_messages(self, rp: RuntimePod) -> None:
        todo = [c for c in rp.containers if c.state == ContainerState.EXITED and c.id not in self._messages]
        if todo:
            msgs = await asyncio.to_thread(lambda: [termination_message(c) for c in todo])
            for c, m in zip(todo, msgs):
                self._messages[c.id] = m

    async def _sources(self, pod: Mapping[str, Any]) -> Sources:
        cms, secrets = referenced_objects(pod)
        ns = (pod.get("metadata") or {}).get("namespace", "default")
        got_cms = {n: o for n in cms if (o := await self._get("configmaps", n, ns)) is not None}
        got_secrets = {n: o for n in secrets if (o := await self._get("secrets", n, ns)) is not None}
        return Sources(got_cms, got_secrets, host_ip=self.host_ip, node_allocatable=self.node_allocatable)

    async def _get(self, resource: str, name: str, ns: str) -> dict[str, Any] | None:
        if not name:
            return None
        try:
            obj = await self.client.get(lookup(resource), name, ns or None)
            return obj if isinstance(obj, dict) else None
        except NotFound:
            return None
        except ApiError as exc:
            logger.warning("get %s %s/%s: %s", resource, ns, name, exc)
            return None

    async def _runtime_handler(self, pod: Mapping[str, Any]) -> str | None:
        """The RuntimeClass's handler ("" for none); None when the named RuntimeClass does not exist."""
        name = (pod.get("spec") or {}).get("runtimeClassName")
        if not name:
            return ""
        rc = await self._get("runtimeclasses", name, "")
        return str(rc.get("handler") or name) if rc is not None else None

    @staticmethod
    def _pull_secrets(pod: Mapping[str, Any], sources: Sources) -> list[Mapping[str, Any]]:
        names = [s.get("name", "") for s in (pod.get("spec") or {}).get("imagePullSecrets") or []]
        return [sources.secrets[n] for n in names if n in sources.secrets]

    def _probe_event(self, uid: str, type_: str, reason: str, message: str) -> None:
        pod = self.pods.get(uid)
        if pod is not None:
            self._event(pod, type_, reason, message)

    def _event(self, pod: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        """Record an event for ``pod``; while pods are starting, it waits (at most EVENT_HOLD, in order):
        its write would take the apiserver's and our CPU from the starts."""
        if self.recorder is None:
            return
        obj = dict(pod)
        obj.setdefault("kind", "Pod")
        obj.setdefault("apiVersion", "v1")
        if self.rm.starting and self._events_held is not None:
            self._events_held.append((time.monotonic(), obj, type_, reason, message))
            return
        self._release_events()
        self.recorder.event(obj, type_, reason, message)

    def _release_events(self) -> None:
        held, self._events_held = self._events_held, ([] if self._events_held is not None else None)
        for _, obj, type_, reason, message in held or ():
            assert self.recorder is not None
            self.recorder.event(obj, type_, reason, message)

    async def _events_after_starts(self) -> None:
        """Hand held events to the recorder once no pod is starting, or when the oldest waited EVENT_HOLD."""
        self._events_held = []
        try:
            while True:
                await asyncio.sleep(0.05)
                held = self._events_held
                if held and (not self.rm.starting or time.monotonic() - held[0][0] >= EVENT_HOLD):
                    self._release_events()
        finally:
            self._release_events()
            self._events_held = None
