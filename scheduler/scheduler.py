"""The scheduler loop: informer events feed the queue and the cache; each popped pod goes through
one synchronous scheduling cycle, is assumed on the chosen node, and is bound in the background.

Failures record a FailedScheduling Event and the PodScheduled=False condition with
kube-scheduler's message, and send the pod back to the queue. Several profiles (schedulerName)
can be served by one scheduler; pods naming another scheduler are ignored.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from datetime import UTC, datetime
from typing import Any, Protocol

from kubelite.api.errors import ApiError, Conflict, NotFound
from kubelite.api.resources import PODS
from scheduler.cache import Cache
from scheduler.framework import CycleState, FitError
from scheduler.framework.interface import POD_INFO_KEY, BindPlugin
from scheduler.framework.runtime import Framework
from scheduler.metrics import SchedulerMetrics
from scheduler.queue import QueuedPodInfo, SchedulingQueue

logger = logging.getLogger(__name__)

DEFAULT_SCHEDULER_NAME = "default-scheduler"


class Recorder(Protocol):
    def event(self, obj: dict[str, Any], type: str, reason: str, message: str) -> Any: ...


def _key(pod: dict[str, Any]) -> str:
    m = pod["metadata"]
    return f"{m.get('namespace', '')}/{m['name']}"


def _terminated(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _maybe_await(value: Any) -> None:
    if inspect.isawaitable(value):
        await value


class Scheduler:
    """Wire the informers' handlers to :meth:`on_pod_*` / :meth:`on_node_*`, then ``await run()``."""

    def __init__(self, client: Any, profiles: dict[str, Framework], binder: BindPlugin,
                 recorder: Recorder | None = None, metrics: SchedulerMetrics | None = None,
                 cache: Cache | None = None, queue: SchedulingQueue | None = None,
                 parallel_bindings: int = 64) -> None:
        self.client = client
        self.profiles = profiles
        self.binder = binder
        self.recorder = recorder
        self.metrics = metrics or SchedulerMetrics()
        self.cache = cache or Cache()
        self.queue = queue or SchedulingQueue()
        self._bind_slots = asyncio.Semaphore(parallel_bindings)
        self.bound = 0

    # -- informer handlers (compute and enqueue only) -------------------------------------------------
    def _responsible(self, pod: dict[str, Any]) -> bool:
        return ((pod.get("spec") or {}).get("schedulerName") or DEFAULT_SCHEDULER_NAME) in self.profiles

    def on_pod_add(self, pod: dict[str, Any]) -> None:
        spec = pod.get("spec") or {}
        if spec.get("nodeName"):
            if _terminated(pod):
                self.cache.remove_pod(pod)
            else:
                self.cache.add_pod(pod)
        elif self._responsible(pod) and not (pod.get("metadata") or {}).get("deletionTimestamp") \
                and not spec.get("schedulingGates") and not self.cache.is_assumed(_key(pod)):
            self.queue.add(pod)

    def on_pod_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        if (new.get("spec") or {}).get("nodeName"):
            if not (old.get("spec") or {}).get("nodeName"):
                self.queue.delete(new)
            if _terminated(new):
                self.cache.remove_pod(new)
                self.queue.move_all_to_active_or_backoff("AssignedPodDelete")
            else:
                self.cache.update_pod(new)
        elif self._responsible(new):
            if (new.get("metadata") or {}).get("deletionTimestamp"):
                self.queue.delete(new)
            elif not self.cache.is_assumed(_key(new)) and _spec_or_labels_changed(old, new):
                self.queue.update(new)

    def on_pod_delete(self, pod: dict[str, Any]) -> None:
        if (pod.get("spec") or {}).get("nodeName") or self.cache.is_assumed(_key(pod)):
            self.cache.remove_pod(pod)
            self.queue.move_all_to_active_or_backoff("AssignedPodDelete")
        else:
            self.queue.delete(pod)

    def on_node_add(self, node: dict[str, Any]) -> None:
        self.cache.add_node(node)
        self.queue.move_all_to_active_or_backoff("NodeAdd")

    def on_node_update(self, old: dict[str, Any], new: dict[str, Any]) -> None:
        self.cache.update_node(new)
        if _schedulable_change(old, new):
            self.queue.move_all_to_active_or_backoff("NodeUpdate")

    def on_node_delete(self, node: dict[str, Any]) -> None:
        self.cache.remove_node(node["metadata"]["name"])

    # -- the loop ---------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Schedule until cancelled; bindings run concurrently inside this call's TaskGroup."""
        async with asyncio.TaskGroup() as tg:
            housekeeping = tg.create_task(self._housekeeping())
            try:
                while True:
                    info = await self.queue.pop()
                    if info is None:
                        break
                    job = self.schedule_one(info)
                    await self._bind_slots.acquire()
                    tg.create_task(self._release_after(job))
                    await asyncio.sleep(0)   # let bindings and informer events interleave with cycles
            finally:
                housekeeping.cancel()

    async def _release_after(self, job: Any) -> None:
        try:
            await job
        finally:
            self._bind_slots.release()

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self.cache.cleanup_assumed()
            for q, n in self.queue.pending().items():
                self.metrics.pending_pods.labels(q).set(n)

    def schedule_one(self, info: QueuedPodInfo) -> Any:
        """Run one cycle for ``info`` synchronously; returns the coroutine that binds or reports."""
        pod = info.pod
        profile_name = (pod.get("spec") or {}).get("schedulerName") or DEFAULT_SCHEDULER_NAME
        fw = self.profiles[profile_name]
        start = time.perf_counter()
        state = self.cache.cycle_state(pod)
        try:
            result = fw.schedule(state, pod, self.cache.node_list())
        except FitError as err:
            self._observe("unschedulable", profile_name, start)
            self.queue.add_unschedulable(info, err.diagnosis.unschedulable_plugins)
            return self._report_failure(pod, str(err), "Unschedulable")
        except Exception as exc:
            logger.exception("scheduling %s", info.key)
            self._observe("error", profile_name, start)
            self.queue.add_unschedulable(info, error=True)
            return self._report_failure(pod, str(exc), "SchedulerError")
        self.cache.assume_pod(pod, result.node, state.get(POD_INFO_KEY))
        st = fw.run_reserve(state, pod, result.node)
        if not st.is_success():
            self.cache.forget_pod(info.key)
            self.queue.add_unschedulable(info, error=True)
            return self._report_failure(pod, st.message, "SchedulerError")
        self.queue.done(info.key)
        return self._bind(fw, state, info, result.node, profile_name, start)

    def _observe(self, result: str, profile: str, start: float) -> None:
        self.metrics.schedule_attempts.labels(result, profile).inc()
        self.metrics.attempt_duration.labels(result, profile).observe(time.perf_counter() - start)

    async def _bind(self, fw: Framework, state: CycleState, info: QueuedPodInfo, node: str,
                    profile: str, start: float) -> None:
        pod = info.pod
        st = await self.binder.bind(state, pod, node)
        if not st.is_success():
            fw.run_unreserve(state, pod, node)
            self.cache.forget_pod(info.key)
            self._observe("error", profile, start)
            if "not found" in st.message.lower():
                return    # the pod is gone
            logger.warning("binding %s to %s failed: %s", info.key, node, st.message)
            self.queue.add_unschedulable(info, error=True)
            await self._report_failure(pod, f"Binding rejected: {st.message}", "SchedulerError")
            return
        self.cache.finish_binding(info.key)
        self._observe("scheduled", profile, start)
        self.metrics.e2e_duration.labels(str(min(info.attempts, 16))).observe(time.monotonic() - info.initial_attempt)
        self.bound += 1
        if self.recorder is not None:
            await _maybe_await(self.recorder.event(
                pod, "Normal", "Scheduled", f"Successfully assigned {info.key} to {node}"))

    async def _report_failure(self, pod: dict[str, Any], message: str, reason: str) -> None:
        key = _key(pod)
        logger.info("unable to schedule %s: %s", key, message)
        if self.recorder is not None:
            await _maybe_await(self.recorder.event(pod, "Warning", "FailedScheduling", message))
        cond = {"type": "PodScheduled", "status": "False", "reason": reason, "message": message,
                "lastProbeTime": None, "lastTransitionTime": _now()}
        for c in (pod.get("status") or {}).get("conditions") or ():
            if c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("reason") == reason \
                    and c.get("message") == message:
                return   # already says so
        meta = pod["metadata"]
        try:
            await self.client.patch(PODS, meta["name"], {"status": {"conditions": [cond]}},
                                    namespace=meta.get("namespace"), patch_type="strategic",
                                    subresource="status")
        except (NotFound, Conflict):
            pass
        except ApiError as exc:
            logger.warning("updating the PodScheduled condition of %s: %s", key, exc)


def _spec_or_labels_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """kube's isPodUpdated: a status-only write (e.g. our own PodScheduled condition) is no reason to retry."""
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    return (old.get("spec") != new.get("spec") or om.get("labels") != nm.get("labels")
            or om.get("annotations") != nm.get("annotations"))


def _schedulable_change(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """kube's nodeSchedulingPropertiesChange: allocatable, labels, taints, unschedulable, conditions."""
    o, n = old or {}, new
    return ((o.get("status") or {}).get("allocatable") != (n.get("status") or {}).get("allocatable")
            or (o.get("metadata") or {}).get("labels") != (n.get("metadata") or {}).get("labels")
            or (o.get("spec") or {}).get("taints") != (n.get("spec") or {}).get("taints")
            or (o.get("spec") or {}).get("unschedulable") != (n.get("spec") or {}).get("unschedulable"))
