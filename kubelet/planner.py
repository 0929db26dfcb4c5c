"""The pure action planner: desired pod (spec) vs actual pod (runtime) → :class:`PodActions`.

Modelled on Kubernetes' ``kuberuntime_manager.go`` ``computePodActions``: kill the pod, or (re)create
its sandbox and start containers from the first init container on, or start the next init container,
or start/kill individual app containers (restartPolicy, changed image, failed liveness/startup probe).
CrashLoopBackOff is decided here too, from a :class:`Backoff` and an injected clock. No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from kubelet.containerconfig import ANN_HASH, container_hash
from kubelet.cri import ContainerState, ContainerStatus, PodSandboxState, PodSandboxStatus

NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class RuntimePod:
    """What the runtime holds for one pod: its sandboxes and containers, newest first."""

    uid: str
    sandboxes: tuple[PodSandboxStatus, ...] = ()
    containers: tuple[ContainerStatus, ...] = ()

    @staticmethod
    def of(uid: str, sandboxes: list[PodSandboxStatus], containers: list[ContainerStatus]) -> "RuntimePod":
        return RuntimePod(uid, tuple(sorted(sandboxes, key=lambda s: s.created_at, reverse=True)),
                          tuple(sorted(containers, key=lambda c: (c.created_at, c.metadata.attempt),
                                       reverse=True)))

    def latest(self, name: str) -> ContainerStatus | None:
        for c in self.containers:
            if c.metadata.name == name:
                return c
        return None

    def latest_in(self, name: str, sandbox_id: str) -> ContainerStatus | None:
        for c in self.containers:
            if c.metadata.name == name and c.pod_sandbox_id == sandbox_id:
                return c
        return None

    def instances(self, name: str) -> list[ContainerStatus]:
        return [c for c in self.containers if c.metadata.name == name]

    @property
    def sandbox(self) -> PodSandboxStatus | None:
        return self.sandboxes[0] if self.sandboxes else None

    def running(self) -> list[ContainerStatus]:
        return [c for c in self.containers if c.state == ContainerState.RUNNING]


@dataclass(frozen=True, slots=True)
class KillInfo:
    name: str
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class PodActions:
    kill_pod: bool = False
    create_sandbox: bool = False
    sandbox_id: str = ""
    attempt: int = 0
    next_init_container: str | None = None          # name of the init container to start
    containers_to_start: tuple[str, ...] = ()       # app container names, in spec order
    containers_to_kill: Mapping[str, KillInfo] = field(default_factory=dict)   # container id → why
    backoff: Mapping[str, float] = field(default_factory=dict)   # name → seconds left (CrashLoopBackOff)
    pod_failed: bool = False                         # an init container failed with restartPolicy Never


class Backoff:
    """Kubernetes' ``flowcontrol.Backoff``: per key, the delay doubles from ``base`` up to ``cap``; an
    entry untouched for 2×cap (10 min with the defaults) starts again from ``base``. Times in seconds.
    """

    def __init__(self, base: float = 10.0, cap: float = 300.0) -> None:
        self.base = base
        self.cap = cap
        self._entries: dict[str, tuple[float, float]] = {}   # key → (delay, last update)

    def _current(self, key: str, now: float) -> tuple[float, float] | None:
        entry = self._entries.get(key)
        if entry is None or now - entry[1] > 2 * self.cap:
            return None
        return entry

    def next(self, key: str, now: float) -> float:
        entry = self._current(key, now)
        delay = self.base if entry is None else min(entry[0] * 2, self.cap)
        self._entries[key] = (delay, now)
        return delay

    def get(self, key: str, now: float) -> float:
        entry = self._current(key, now)
        return entry[0] if entry else 0.0

    def remaining(self, key: str, event_time: float, now: float) -> float:
        """Seconds left before ``key`` may restart, counted from its last exit ``event_time``."""
        entry = self._current(key, now)
        if entry is None:
            return 0.0
        return max(0.0, event_time + entry[0] - now)

    def gc(self, now: float) -> None:
        for key in [k for k, (_, t) in self._entries.items() if now - t > 2 * self.cap]:
            del self._entries[key]

    def forget(self, prefix: str) -> None:
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]


def backoff_key(pod: Mapping[str, Any], container: Mapping[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('uid', '')}/{container.get('name', '')}/{container_hash(container)}"


def restart_policy(pod: Mapping[str, Any]) -> str:
    return (pod.get("spec") or {}).get("restartPolicy") or "Always"


def should_restart(pod: Mapping[str, Any], status: ContainerStatus | None) -> bool:
    """``ShouldContainerBeRestarted``: never while running or while the pod is being deleted."""
    if status is None:
        return True
    if status.state == ContainerState.RUNNING:
        return False
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    if status.state in (ContainerState.CREATED, ContainerState.UNKNOWN):
        return True
    policy = restart_policy(pod)
    if policy == "Never":
        return False
    if policy == "OnFailure":
        return status.exit_code != 0
    return True


def _sandbox_changed(pod: Mapping[str, Any], rp: RuntimePod) -> tuple[bool, int, str]:
    if not rp.sandboxes:
        return True, 0, ""
    sb = rp.sandboxes[0]
    attempt = sb.metadata.attempt + 1
    ready = [s for s in rp.sandboxes if s.state == PodSandboxState.READY]
    if len(ready) > 1 or sb.state != PodSandboxState.READY:
        return True, attempt, sb.id
    return False, sb.metadata.attempt, sb.id


def _succeeded(status: ContainerStatus | None) -> bool:
    return status is not None and status.state == ContainerState.EXITED and status.exit_code == 0


def _in_backoff(pod: Mapping[str, Any], container: Mapping[str, Any], status: ContainerStatus | None,
                backoff: Backoff, now: float) -> float:
    if status is None or status.state != ContainerState.EXITED:
        return 0.0
    return backoff.remaining(backoff_key(pod, container), status.finished_at / NS, now)


def compute_pod_actions(pod: Mapping[str, Any], rp: RuntimePod, *, backoff: Backoff | None = None,
                        now: float = 0.0, liveness_failed: frozenset[str] = frozenset(),
                        startup_failed: frozenset[str] = frozenset()) -> PodActions:
    """What to do to make the runtime match ``pod``. ``now`` is wall-clock seconds (for backoff)."""
    backoff = backoff or Backoff()
    spec = pod.get("spec") or {}
    inits: list[Mapping[str, Any]] = list(spec.get("initContainers") or [])
    apps: list[Mapping[str, Any]] = list(spec.get("containers") or [])
    policy = restart_policy(pod)
    kill_all = {c.id: KillInfo(c.metadata.name, "Killing", "") for c in rp.running()}

    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return PodActions(kill_pod=True, containers_to_kill=kill_all)

    create, attempt, sandbox_id = _sandbox_changed(pod, rp)
    if create:
        if policy != "Always" and attempt != 0 and rp.containers:
            # the sandbox went away after containers ran: a Never/OnFailure pod is not re-run from scratch
            if policy == "Never" or all(_succeeded(rp.latest(c.get("name", ""))) for c in apps):
                return PodActions(kill_pod=True, containers_to_kill=kill_all, sandbox_id=sandbox_id)
        if inits:
            return PodActions(kill_pod=bool(rp.sandboxes), create_sandbox=True, sandbox_id=sandbox_id,
                              attempt=attempt, next_init_container=inits[0].get("name", ""),
                              containers_to_kill=kill_all)
        to_start = tuple(c.get("name", "") for c in apps
                         if not (policy == "OnFailure" and _succeeded(rp.latest(c.get("name", "")))))
        if not to_start:
            return PodActions(kill_pod=True, containers_to_kill=kill_all, sandbox_id=sandbox_id)
        return PodActions(kill_pod=bool(rp.sandboxes), create_sandbox=True, sandbox_id=sandbox_id,
                          attempt=attempt, containers_to_start=to_start, containers_to_kill=kill_all)

    backoffs: dict[str, float] = {}
    # init containers (in the current sandbox): done once an app container runs or all exited 0
    app_running = any((st := rp.latest(c.get("name", ""))) is not None and st.state == ContainerState.RUNNING
                      for c in apps)
    if inits and not app_running:
        for init in inits:
            name = init.get("name", "")
            st = rp.latest_in(name, sandbox_id)
            if st is None:
                return PodActions(sandbox_id=sandbox_id, attempt=attempt, next_init_container=name)
            if st.state == ContainerState.RUNNING:
                return PodActions(sandbox_id=sandbox_id, attempt=attempt)
            if st.state == ContainerState.EXITED and st.exit_code == 0:
                continue
            # failed (or created but never ran)
            if st.state == ContainerState.EXITED and policy == "Never":
                return PodActions(kill_pod=True, sandbox_id=sandbox_id, containers_to_kill=kill_all,
                                  pod_failed=True)
            left = _in_backoff(pod, init, st, backoff, now)
            if left > 0:
                return PodActions(sandbox_id=sandbox_id, attempt=attempt, backoff={name: left})
            return PodActions(sandbox_id=sandbox_id, attempt=attempt, next_init_container=name)

    to_start: list[str] = []
    to_kill: dict[str, KillInfo] = {}
    keep = 0
    for c in apps:
        name = c.get("name", "")
        st = rp.latest(name)
        if st is None or st.state != ContainerState.RUNNING:
            if should_restart(pod, st):
                left = _in_backoff(pod, c, st, backoff, now)
                if left > 0:
                    backoffs[name] = left
                else:
                    to_start.append(name)
            continue
        reason = ""
        if st.annotations.get(ANN_HASH, container_hash(c)) != container_hash(c):
            reason, message = "Killing", f"Container {name} definition changed, will be restarted"
        elif name in liveness_failed:
            reason, message = "Unhealthy", f"Container {name} failed liveness probe, will be restarted"
        elif name in startup_failed:
            reason, message = "Unhealthy", f"Container {name} failed startup probe, will be restarted"
        if reason:
            to_kill[st.id] = KillInfo(name, reason, message)
            if policy != "Never":
                to_start.append(name)
            continue
        keep += 1
    if keep == 0 and not to_start and not backoffs:
        return PodActions(kill_pod=True, sandbox_id=sandbox_id, containers_to_kill={**kill_all, **to_kill})
    return PodActions(sandbox_id=sandbox_id, attempt=attempt, containers_to_start=tuple(to_start),
                      containers_to_kill=to_kill, backoff=backoffs)
