"""PLEG: the pod lifecycle event generator (Kubernetes' ``pleg/generic.go``).

A differ over runtime listings: every ``period`` it lists sandboxes and containers, compares each
container's and sandbox's state with the previous listing, and wakes the pods whose state changed.
Besides the relist it reads the runtime's ``events()`` stream (the shims' exit events) so exits are
noticed at once; the relist repairs anything the stream missed. Its consumer is a non-blocking
callback, so PLEG never blocks its producer.

The runtime's other events (created, started, deleted) echo the kubelet's own calls, which the pod's sync
saw: they wake nothing, and :meth:`GenericPLEG.observed` records the state each sync computed its status
from, so the next relist wakes a pod only for what changed since (a burst of pod starts once woke every pod
again per event and relisted the whole node per new sandbox).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Callable

from prometheus_client import Histogram

from kubelet.containerconfig import LABEL_POD_UID
from kubelet.cri import CriError, RuntimeService

if TYPE_CHECKING:
    from kubelet.planner import RuntimePod

logger = logging.getLogger(__name__)

OnChange = Callable[[str], None]


class GenericPLEG:
    def __init__(self, runtime: RuntimeService, on_change: OnChange, *, owns: Callable[[dict[str, str]], bool],
                 period: float = 1.0, relist_duration: Histogram | None = None) -> None:
        self.runtime = runtime
        self.on_change = on_change
        self.owns = owns
        self.period = period
        self._relist_duration = relist_duration
        self._states: dict[str, tuple[str, str]] = {}      # container/sandbox id → (pod uid, state)
        self._sandbox_pod: dict[str, str] = {}             # sandbox id → pod uid
        self.last_relist = 0.0
        self.relists = 0
        self._kick = asyncio.Event()
        self.last_listing: tuple[list[Any], list[Any]] | None = None   # (sandboxes, containers) of the last relist

    def healthy(self, threshold: float = 180.0) -> bool:
        """As the kubelet's PLEG health check: the last relist finished less than 3 minutes ago."""
        return self.last_relist == 0.0 or time.monotonic() - self.last_relist < threshold

    def pod_of_sandbox(self, sandbox_id: str) -> str | None:
        return self._sandbox_pod.get(sandbox_id)

    def relist_soon(self) -> None:
        self._kick.set()

    def observed(self, uid: str, rp: "RuntimePod | None") -> None:
        """What a sync of ``uid`` saw (None: the pod is gone from the runtime): the next relist compares with it."""
        for key in [k for k, (u, _) in self._states.items() if u == uid]:
            del self._states[key]
        if rp is None:
            return
        for sb in rp.sandboxes:
            self._sandbox_pod[sb.id] = uid
            self._states["sb:" + sb.id] = (uid, sb.state.value)
        for c in rp.containers:
            self._states[c.id] = (uid, c.state.value)

    async def relist(self) -> set[str]:
        """One listing; returns (and wakes) the uids whose state changed."""
        t0 = time.monotonic()
        sandboxes = await self.runtime.list_pod_sandboxes()
        containers = await self.runtime.list_containers()
        self.last_listing = (sandboxes, containers)
        new: dict[str, tuple[str, str]] = {}
        for s in sandboxes:
            if not self.owns(dict(s.labels)):
                continue
            uid = s.labels.get(LABEL_POD_UID) or s.metadata.uid
            self._sandbox_pod[s.id] = uid
            new["sb:" + s.id] = (uid, s.state.value)
        for c in containers:
            if not self.owns(dict(c.labels)):
                continue
            uid = c.labels.get(LABEL_POD_UID, "")
            new[c.id] = (uid, c.state.value)
        changed: set[str] = set()
        for key, (uid, state) in new.items():
            if self._states.get(key) != (uid, state):
                changed.add(uid)
        for key, (uid, _) in self._states.items():
            if key not in new:
                changed.add(uid)
        self._states = new
        live = {k[3:] for k in new if k.startswith("sb:")}
        for sid in [s for s in self._sandbox_pod if s not in live]:
            del self._sandbox_pod[sid]
        self.last_relist = time.monotonic()
        self.relists += 1
        if self._relist_duration is not None:
            self._relist_duration.observe(self.last_relist - t0)
        for uid in changed:
            if uid:
                self.on_change(uid)
        return changed

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._relist_loop())
            tg.create_task(self._event_loop())

    async def _relist_loop(self) -> None:
        while True:
            try:
                await self.relist()
            except CriError as exc:
                logger.warning("PLEG relist failed: %s", exc)
            except Exception:
                logger.exception("PLEG relist failed")
            self._kick.clear()
            try:
                await asyncio.wait_for(self._kick.wait(), self.period)
            except asyncio.TimeoutError:
                pass

    async def _event_loop(self) -> None:
        while True:
            try:
                async for ev in self.runtime.events():
                    if ev.kind != "exited":
                        continue         # the echo of a kubelet call its sync saw (see the module doc)
                    uid = self._sandbox_pod.get(ev.pod_sandbox_id)
                    if uid:
                        self._states[ev.container_id] = (uid, "CONTAINER_EXITED")
                        self.on_change(uid)
                    else:
                        self.relist_soon()
            except CriError as exc:
                logger.warning("runtime event stream ended: %s; relisting meanwhile", exc)
            except Exception:
                logger.exception("runtime event stream failed")
            await asyncio.sleep(self.period)
