"""Probes: liveness, readiness and startup, one worker task per (container instance, probe kind).

As Kubernetes' ``prober/worker.go``: wait ``initialDelaySeconds`` (a liveness probe without one: a period),
then every ``periodSeconds`` run the handler with ``timeoutSeconds``; a result flips only after
``failureThreshold`` failures or ``successThreshold`` successes in a row. Readiness starts False,
liveness and startup start True (startup gates the other two). A flip wakes the pod's worker, which
reads the results: a failed liveness or startup probe restarts the container, readiness gates the
pod's Ready condition.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from prometheus_client import Counter

from kubelet.cri import RuntimeService
from kubelet.handlers import run_handler

logger = logging.getLogger(__name__)
KINDS = ("livenessProbe", "readinessProbe", "startupProbe")


@dataclass(frozen=True, slots=True)
class ProbeKey:
    uid: str
    container: str
    container_id: str
    kind: str


class ProbeManager:
    def __init__(self, runtime: RuntimeService, on_change: Callable[[str], None],
                 probe_total: Counter | None = None,
                 on_event: Callable[[str, str, str, str], None] | None = None) -> None:
        self.runtime = runtime
        self.on_change = on_change
        self.results: dict[ProbeKey, bool] = {}
        self.messages: dict[ProbeKey, str] = {}
        self._tasks: dict[ProbeKey, asyncio.Task[None]] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._stopped = asyncio.Event()
        self._probe_total = probe_total
        self.on_event = on_event

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                await self._stopped.wait()
                for t in self._tasks.values():
                    t.cancel()
        finally:
            self._tg = None

    def stop(self) -> None:
        self._stopped.set()

    def sync(self, pod: Mapping[str, Any], running: Mapping[str, tuple[str, str]]) -> None:
        """Make the probe workers match the pod's running containers (name → (container id, pod ip))."""
        uid = (pod.get("metadata") or {}).get("uid", "")
        wanted: set[ProbeKey] = set()
        specs = {c.get("name", ""): c for c in (pod.get("spec") or {}).get("containers") or []}
        for name, (cid, ip) in running.items():
            c = specs.get(name)
            if c is None:
                continue
            for kind in KINDS:
                if c.get(kind):
                    key = ProbeKey(uid, name, cid, kind)
                    wanted.add(key)
                    if key not in self._tasks and self._tg is not None:
                        if kind != "startupProbe":
                            self.results[key] = kind == "livenessProbe"
                        self._tasks[key] = self._tg.create_task(self._worker(key, c, c[kind], ip))
        for key in [k for k in self._tasks if k.uid == uid and k not in wanted]:
            self._tasks.pop(key).cancel()
            self.results.pop(key, None)
            self.messages.pop(key, None)

    def remove_pod(self, uid: str) -> None:
        for key in [k for k in self._tasks if k.uid == uid]:
            self._tasks.pop(key).cancel()
        for key in [k for k in self.results if k.uid == uid]:
            self.results.pop(key, None)
            self.messages.pop(key, None)

    def result(self, uid: str, name: str, cid: str, kind: str) -> bool | None:
        return self.results.get(ProbeKey(uid, name, cid, kind))

    def ready(self, uid: str, running: Mapping[str, tuple[str, str]]) -> dict[str, bool]:
        return {n: r for n, (cid, _) in running.items()
                if (r := self.result(uid, n, cid, "readinessProbe")) is not None}

    def started(self, uid: str, running: Mapping[str, tuple[str, str]]) -> dict[str, bool]:
        return {n: r for n, (cid, _) in running.items()
                if (r := self.result(uid, n, cid, "startupProbe")) is not None}

    def failed(self, uid: str, running: Mapping[str, tuple[str, str]], kind: str) -> frozenset[str]:
        return frozenset(n for n, (cid, _) in running.items() if self.result(uid, n, cid, kind) is False)

    async def _worker(self, key: ProbeKey, container: Mapping[str, Any], probe: Mapping[str, Any], ip: str) -> None:
        delay = float(probe.get("initialDelaySeconds") or 0)
        period = float(probe.get("periodSeconds") or 10)
        timeout = float(probe.get("timeoutSeconds") or 1)
        fail_th = int(probe.get("failureThreshold") or 3)
        ok_th = int(probe.get("successThreshold") or 1) if key.kind == "readinessProbe" else 1
        startup_key = ProbeKey(key.uid, key.container, key.container_id, "startupProbe")
        if not delay and key.kind == "livenessProbe":
            # Kubernetes' workers tick from the pod's admission, before its containers run, so a first
            # liveness probe comes up to a period after the start, never within a few ms of it; here the
            # worker starts with the container: a probe at once could kill it before its command ran
            delay = period
        if delay:
            await asyncio.sleep(delay)
        fails = oks = 0
        while True:
            t0 = time.monotonic()
            gated = key.kind != "startupProbe" and "startupProbe" in container and \
                self.results.get(startup_key) is not True
            if not gated:
                res = await run_handler(probe, runtime=self.runtime, container_id=key.container_id,
                                        container=container, pod_ip=ip, timeout=timeout)
                if self._probe_total is not None:
                    self._probe_total.labels(probe_type=key.kind.removesuffix("Probe"),
                                             result="successful" if res.ok else "failed").inc()
                if res.ok:
                    oks, fails = oks + 1, 0
                else:
                    fails, oks = fails + 1, 0
                    self.messages[key] = res.message
                    if self.on_event is not None:
                        kind = key.kind.removesuffix("Probe").capitalize()
                        self.on_event(key.uid, "Warning", "Unhealthy", f"{kind} probe failed: {res.message}")
                current = self.results.get(key)
                new = current
                if res.ok and oks >= ok_th:
                    new = True
                elif not res.ok and fails >= fail_th:
                    new = False
                if new != current and new is not None:
                    self.results[key] = new
                    logger.info("%s of %s/%s: %s", key.kind, key.uid, key.container,
                                "success" if new else f"failure ({self.messages.get(key, '')})")
                    self.on_change(key.uid)
                if (key.kind == "startupProbe" and new is not None) or (key.kind == "livenessProbe" and new is False):
                    return          # startup decided, or the container gets restarted (a new worker follows)
            await asyncio.sleep(max(0.0, period - (time.monotonic() - t0)))
