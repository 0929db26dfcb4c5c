"""ReplicaSet controller: keep ``spec.replicas`` active pods matching the selector, owned by the set.

sample-controller shape: handlers compute keys; ``sync(key)`` re-reads the set and its pods from
the informer caches, adopts orphans and releases pods that no longer match, creates in slow-start
batches (1, 2, 4, …) or deletes the least-progressed pods first, under expectations so a burst
never double-creates, then writes the status (replicas, fullyLabeledReplicas, readyReplicas,
availableReplicas, observedGeneration, ReplicaFailure condition).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from typing import Any

from kubelite.api.errors import ApiError, Conflict, NotFound
from kubelite.api.resources import PODS, REPLICASETS
from controllers.base import Obj, Queue, Recorder, Store, in_namespace, record
from controllers.expectations import Expectations
from controllers.podutil import (
    controller_ref, deletion_order, is_active, is_available, is_ready, key_of, now_iso, owner_ref_for,
    pod_from_template, selector_matches,
)

logger = logging.getLogger(__name__)

BURST_REPLICAS = 500
SLOW_START_INITIAL_BATCH = 1


def _pod_key(pod: Obj) -> str:
    return key_of(pod)


class ReplicaSetController:
    name = "replicaset"

    def __init__(self, client: Any, rs_store: Store, pod_store: Store, queue: Queue,
                 recorder: Recorder | None = None, expectations: Expectations | None = None,
                 owner_kind: str = "ReplicaSet") -> None:
        self.client = client
        self.rs_store = rs_store
        self.pod_store = pod_store
        self.queue = queue
        self.recorder = recorder
        self.expectations = expectations or Expectations()
        self.owner_kind = owner_kind

    # -- handlers: compute keys only ---------------------------------------------------------------------
    def on_rs_add(self, rs: Obj) -> None:
        self.queue.add(key_of(rs))

    def on_rs_update(self, old: Obj, new: Obj) -> None:
        self.queue.add(key_of(new))

    def on_rs_delete(self, rs: Obj) -> None:
        self.expectations.delete(key_of(rs))
        self.queue.add(key_of(rs))

    def _owner_key(self, pod: Obj) -> str | None:
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != self.owner_kind:
            return None
        key = f"{pod['metadata'].get('namespace')}/{ref.get('name')}"
        rs = self.rs_store.get(key)
        if rs is None or rs["metadata"].get("uid") != ref.get("uid"):
            return None
        return key

    def _matching_sets(self, pod: Obj) -> list[str]:
        ns = pod["metadata"].get("namespace", "")
        labels = pod["metadata"].get("labels") or {}
        return [key_of(rs) for rs in in_namespace(self.rs_store, ns)
                if selector_matches((rs.get("spec") or {}).get("selector"), labels)]

    def on_pod_add(self, pod: Obj) -> None:
        if pod["metadata"].get("deletionTimestamp"):
            self.on_pod_delete(pod)
            return
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.queue.add(key)
        elif controller_ref(pod) is None:
            for k in self._matching_sets(pod):
                self.queue.add(k)

    def on_pod_update(self, old: Obj, new: Obj) -> None:
        if new["metadata"].get("deletionTimestamp") and not old["metadata"].get("deletionTimestamp"):
            self.on_pod_delete(new)
            return
        old_key, new_key = self._owner_key(old), self._owner_key(new)
        if old_key and old_key != new_key:
            self.queue.add(old_key)
        if new_key:
            self.queue.add(new_key)
            ready_change = is_ready(old) != is_ready(new)
            rs = self.rs_store.get(new_key)
            mrs = int(((rs or {}).get("spec") or {}).get("minReadySeconds") or 0)
            if ready_change and mrs > 0:
                self.queue.add_after(new_key, mrs + 1)
        elif controller_ref(new) is None and (old["metadata"].get("labels") != new["metadata"].get("labels")
                                              or controller_ref(old) is not None):
            for k in self._matching_sets(new):
                self.queue.add(k)

    def on_pod_delete(self, pod: Obj) -> None:
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != self.owner_kind:
            return
        key = f"{pod['metadata'].get('namespace')}/{ref.get('name')}"
        self.expectations.deletion_observed(key, _pod_key(pod))
        self.queue.add(key)

    # -- sync ----------------------------------------------------------------------------------------------
    async def sync(self, key: str) -> None:
        rs = self.rs_store.get(key)
        if rs is None:
            self.expectations.delete(key)
            return
        need_sync = self.expectations.satisfied(key)
        ns = rs["metadata"]["namespace"]
        selector = (rs.get("spec") or {}).get("selector")
        pods = await self._claim_pods(rs, in_namespace(self.pod_store, ns), selector)
        active = [p for p in pods if is_active(p)]
        manage_error: ApiError | None = None
        if need_sync and not rs["metadata"].get("deletionTimestamp"):
            try:
                await self._manage_replicas(rs, key, active, pods)
            except ApiError as exc:
                manage_error = exc
        await self._update_status(rs, active, manage_error)
        if manage_error is not None:
            raise manage_error

    async def _claim_pods(self, rs: Obj, pods: list[Obj], selector: Obj | None) -> list[Obj]:
        """Adopt matching orphans, release owned pods that no longer match (kube's PodControllerRefManager)."""
        uid = rs["metadata"]["uid"]
        deleting = bool(rs["metadata"].get("deletionTimestamp"))
        owned: list[Obj] = []
        for pod in pods:
            ref = controller_ref(pod)
            labels = pod["metadata"].get("labels") or {}
            matches = selector_matches(selector, labels) and bool(selector)
            if ref is not None:
                if ref.get("uid") != uid:
                    continue
                if matches or deleting:
                    owned.append(pod)
                    continue
                await self._release(rs, pod)
            elif matches and not deleting and not pod["metadata"].get("deletionTimestamp") \
                    and not (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                adopted = await self._adopt(rs, pod)
                if adopted is not None:
                    owned.append(adopted)
        return owned

    async def _adopt(self, rs: Obj, pod: Obj) -> Obj | None:
        refs = list(pod["metadata"].get("ownerReferences") or []) + [owner_ref_for(rs)]
        body = {"metadata": {"ownerReferences": refs, "uid": pod["metadata"].get("uid"),
                             "resourceVersion": pod["metadata"].get("resourceVersion")}}
        try:
            return await self.client.patch(PODS, pod["metadata"]["name"], body,
                                           namespace=pod["metadata"]["namespace"], patch_type="merge")
        except (NotFound, Conflict):
            return None

    async def _release(self, rs: Obj, pod: Obj) -> None:
        refs = [r for r in pod["metadata"].get("ownerReferences") or [] if r.get("uid") != rs["metadata"]["uid"]]
        body = {"metadata": {"ownerReferences": refs or None, "uid": pod["metadata"].get("uid"),
                             "resourceVersion": pod["metadata"].get("resourceVersion")}}
        try:
            await self.client.patch(PODS, pod["metadata"]["name"], body,
                                    namespace=pod["metadata"]["namespace"], patch_type="merge")
        except (NotFound, Conflict):
            pass

    async def _manage_replicas(self, rs: Obj, key: str, active: list[Obj], owned: list[Obj]) -> None:
        want = int((rs.get("spec") or {}).get("replicas", 1) or 0)
        diff = len(active) - want
        ns = rs["metadata"]["namespace"]
        if diff < 0:
            n = min(-diff, BURST_REPLICAS)
            self.expectations.expect_creations(key, n)
            template = (rs.get("spec") or {}).get("template") or {}
            created, err = await slow_start_batch(n, SLOW_START_INITIAL_BATCH,
                                                  lambda: self._create_pod(rs, template, ns))
            if created < n:
                self.expectations.lower_creations(key, n - created)
            if err is not None:
                raise err
        elif diff > 0:
            n = min(diff, BURST_REPLICAS)
            victims = deletion_order(active, owned)[:n]
            self.expectations.expect_deletions(key, [_pod_key(p) for p in victims])
            errors: list[ApiError] = []

            async def delete(pod: Obj) -> None:
                try:
                    await self.client.delete(PODS, pod["metadata"]["name"], namespace=ns)
                    await record(self.recorder, rs, "Normal", "SuccessfulDelete",
                                 f"Deleted pod: {pod['metadata']['name']}")
                except NotFound:
                    self.expectations.deletion_observed(key, _pod_key(pod))
                except ApiError as exc:
                    self.expectations.deletion_observed(key, _pod_key(pod))
                    await record(self.recorder, rs, "Warning", "FailedDelete",
                                 f"Error deleting: {exc}")
                    errors.append(exc)

            await asyncio.gather(*(delete(p) for p in victims))
            if errors:
                raise errors[0]

    async def _create_pod(self, rs: Obj, template: Obj, ns: str) -> None:
        pod = pod_from_template(template, rs, ns)
        try:
            created = await self.client.create(PODS, pod, namespace=ns)
        except ApiError as exc:
            await record(self.recorder, rs, "Warning", "FailedCreate", f"Error creating: {exc}")
            raise
        await record(self.recorder, rs, "Normal", "SuccessfulCreate",
                     f"Created pod: {created['metadata']['name']}")

    async def _update_status(self, rs: Obj, active: list[Obj], manage_error: ApiError | None) -> None:
        new = calculate_status(rs, active, manage_error, time.time())
        mrs = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
        if mrs and new.get("readyReplicas") != new.get("availableReplicas"):
            self.queue.add_after(key_of(rs), mrs)   # re-check availability when it can change
        if rs.get("status") == new:
            return
        for attempt in range(2):
            obj = copy.deepcopy(rs)
            obj["status"] = new
            try:
                await self.client.update(REPLICASETS, obj, subresource="status")
                return
            except NotFound:
                return
            except Conflict:
                if attempt:
                    raise
                rs = await self.client.get(REPLICASETS, rs["metadata"]["name"], namespace=rs["metadata"]["namespace"])
                new = calculate_status(rs, active, manage_error, time.time())


async def slow_start_batch(count: int, initial: int, fn: Any) -> tuple[int, ApiError | None]:
    """Call ``fn`` ``count`` times in batches 1, 2, 4, … concurrently; stop at the first failing batch.

    Returns the number of successful calls and the first error.
    """
    done = 0
    batch = min(count, initial)
    while batch > 0:
        results = await asyncio.gather(*(fn() for _ in range(batch)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        done += batch - len(errors)
        for e in errors:
            if not isinstance(e, ApiError):
                raise e
        if errors:
            return done, errors[0]  # type: ignore[return-value]
        remaining = count - done
        batch = min(2 * batch, remaining)
    return done, None


def calculate_status(rs: Obj, active: list[Obj], manage_error: ApiError | None, now: float) -> Obj:
    spec = rs.get("spec") or {}
    template_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    mrs = int(spec.get("minReadySeconds") or 0)
    fully = sum(1 for p in active if all((p["metadata"].get("labels") or {}).get(k) == v
                                         for k, v in template_labels.items()))
    ready = sum(1 for p in active if is_ready(p))
    available = sum(1 for p in active if is_available(p, mrs, now))
    old = rs.get("status") or {}
    status: Obj = {
        "replicas": len(active),
        "fullyLabeledReplicas": fully,
        "readyReplicas": ready,
        "availableReplicas": available,
        "observedGeneration": rs["metadata"].get("generation", 0),
    }
    conditions = [c for c in old.get("conditions") or () if c.get("type") != "ReplicaFailure"]
    failure = next((c for c in old.get("conditions") or () if c.get("type") == "ReplicaFailure"), None)
    if manage_error is not None:
        diff = len(active) - int(spec.get("replicas", 1) or 0)
        reason = "FailedCreate" if diff < 0 else "FailedDelete"
        if failure and failure.get("reason") == reason:
            conditions.append(failure)
        else:
            conditions.append({"type": "ReplicaFailure", "status": "True", "reason": reason,
                               "message": str(manage_error), "lastTransitionTime": now_iso()})
    if conditions:
        status["conditions"] = conditions
    if rs.get("status") and "labelSelector" in old:
        status["labelSelector"] = old["labelSelector"]
    return status
