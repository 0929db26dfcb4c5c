"""One Deployment sync's work on its ReplicaSets: find or create the new set, RollingUpdate and
Recreate steps, proportional scaling, revision history cleanup and the rollout status. Follows
kube's ``deployment/{sync,rolling,recreate}.go``."""

from __future__ import annotations

import copy
import logging
import time
from typing import Any, Callable

from kubelite.api.errors import AlreadyExists, NotFound
from kubelite.api.resources import DEPLOYMENTS, REPLICASETS
from controllers.base import Obj, Queue, Recorder, record
from controllers.deployment.rsutil import (
    DESIRED_REPLICAS, HASH_LABEL, MAX_REPLICAS, NEW_RS_AVAILABLE_REASON, NEW_RS_REASON,
    PROGRESSING, REPLICA_FAILURE, REVISION, RS_UPDATED_REASON, TIMED_OUT_REASON, calculate_status,
    compute_hash, copyable_annotations, deployment_complete, deployment_progressing, deployment_timed_out,
    equal_ignore_hash, get_condition, max_surge, max_unavailable, new_condition, remove_condition,
    revision, set_condition, spec_replicas, status_of,
)
from controllers.podutil import is_terminal, owner_ref_for, parse_time

logger = logging.getLogger(__name__)


def _created(rs: Obj) -> float:
    return parse_time(rs["metadata"].get("creationTimestamp")) or 0.0


class Rollout:
    def __init__(self, client: Any, recorder: Recorder | None, queue: Queue, d: Obj, rss: list[Obj],
                 pods_of: Callable[[Obj], list[Obj]]) -> None:
        self.client = client
        self.recorder = recorder
        self.queue = queue
        self.d = d
        self.rss = rss
        self.pods_of = pods_of
        self.key = f"{d['metadata']['namespace']}/{d['metadata']['name']}"

    @property
    def replicas(self) -> int:
        return int((self.d.get("spec") or {}).get("replicas", 1))

    # -- new / old sets -----------------------------------------------------------------------------------
    def _split(self) -> tuple[Obj | None, list[Obj]]:
        template = self.d["spec"].get("template") or {}
        matching = sorted((rs for rs in self.rss if equal_ignore_hash(rs["spec"].get("template") or {}, template)),
                          key=lambda rs: (_created(rs), rs["metadata"]["name"]))
        new = matching[0] if matching else None
        old = [rs for rs in self.rss if rs is not new]
        return new, old

    async def get_all(self, create: bool) -> tuple[Obj | None, list[Obj]]:
        new, old = self._split()
        max_old = max((revision(rs) for rs in old), default=0)
        new_revision = str(max_old + 1)
        if new is not None:
            ann = new["metadata"].setdefault("annotations", {})
            changed = False
            if revision(new) <= max_old:
                ann[REVISION] = new_revision
                changed = True
            for k, v in ((DESIRED_REPLICAS, str(self.replicas)), (MAX_REPLICAS, str(self.replicas + max_surge(self.d)))):
                if k not in ann:
                    ann[k] = v
                    changed = True
            if changed:
                new = await self._update_rs(new)
            await self._set_deployment_revision(ann.get(REVISION, new_revision))
            return new, old
        if not create:
            return None, old
        return await self._create_new_rs(old, new_revision), old

    async def _create_new_rs(self, old: list[Obj], new_revision: str) -> Obj:
        d = self.d
        status = d.setdefault("status", {})
        h = compute_hash(d["spec"]["template"], status.get("collisionCount"))
        template = copy.deepcopy(d["spec"]["template"])
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = h
        selector = copy.deepcopy(d["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = h
        ann = copyable_annotations(d)
        ann.update({REVISION: new_revision, DESIRED_REPLICAS: str(self.replicas),
                    MAX_REPLICAS: str(self.replicas + max_surge(d))})
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": f"{d['metadata']['name']}-{h}", "namespace": d["metadata"]["namespace"],
                           "labels": dict(template["metadata"]["labels"]), "annotations": ann,
                           "ownerReferences": [owner_ref_for(d)]},
              "spec": {"replicas": 0, "minReadySeconds": int(d["spec"].get("minReadySeconds") or 0),
                       "selector": selector, "template": template}}
        rs["spec"]["replicas"] = self._new_rs_new_replicas(old, rs)
        try:
            created = await self.client.create(REPLICASETS, rs, namespace=d["metadata"]["namespace"])
        except AlreadyExists:
            existing = await self.client.get(REPLICASETS, rs["metadata"]["name"], namespace=d["metadata"]["namespace"])
            ref = next((r for r in existing["metadata"].get("ownerReferences") or () if r.get("controller")), None)
            if ref and ref.get("uid") == d["metadata"]["uid"] and equal_ignore_hash(existing["spec"]["template"],
                                                                                     d["spec"]["template"]):
                return existing
            status["collisionCount"] = int(status.get("collisionCount") or 0) + 1
            await self.client.update(DEPLOYMENTS, d, subresource="status")
            raise
        self.rss.append(created)
        if rs["spec"]["replicas"] > 0:
            await record(self.recorder, d, "Normal", "ScalingReplicaSet",
                         f"Scaled up replica set {created['metadata']['name']} from 0 to {rs['spec']['replicas']}")
        if d["spec"].get("progressDeadlineSeconds") is not None:
            set_condition(status, new_condition(PROGRESSING, "True", NEW_RS_REASON,
                                                f'Created new replica set "{created["metadata"]["name"]}"'))
        await self._set_deployment_revision(new_revision)
        return created

    async def _set_deployment_revision(self, rev: str) -> None:
        ann = self.d["metadata"].setdefault("annotations", {})
        if ann.get(REVISION) == rev:
            return
        ann[REVISION] = rev
        # a merge patch of one annotation: no resourceVersion precondition needed, so no conflict
        # with a user editing the spec meanwhile
        updated = await self.client.patch(DEPLOYMENTS, self.d["metadata"]["name"],
                                          {"metadata": {"annotations": {REVISION: rev}}},
                                          namespace=self.d["metadata"]["namespace"], patch_type="merge")
        self.d["metadata"]["resourceVersion"] = updated["metadata"].get("resourceVersion")

    async def _update_rs(self, rs: Obj) -> Obj:
        updated = await self.client.update(REPLICASETS, rs)
        self.rss = [updated if r["metadata"]["uid"] == rs["metadata"]["uid"] else r for r in self.rss]
        return updated

    async def scale_rs(self, rs: Obj, size: int) -> tuple[bool, Obj]:
        """Set a set's replicas (and the desired/max annotations); emits ScalingReplicaSet."""
        ann = rs["metadata"].setdefault("annotations", {})
        desired, maximum = str(self.replicas), str(self.replicas + max_surge(self.d))
        old = spec_replicas(rs)
        if old == size and ann.get(DESIRED_REPLICAS) == desired and ann.get(MAX_REPLICAS) == maximum:
            return False, rs
        rs = copy.deepcopy(rs)
        rs["spec"]["replicas"] = size
        rs["metadata"]["annotations"].update({DESIRED_REPLICAS: desired, MAX_REPLICAS: maximum})
        rs = await self._update_rs(rs)
        if old != size:
            direction = "up" if size > old else "down"
            await record(self.recorder, self.d, "Normal", "ScalingReplicaSet",
                         f"Scaled {direction} replica set {rs['metadata']['name']} from {old} to {size}")
        return old != size, rs

    def _new_rs_new_replicas(self, old: list[Obj], new: Obj) -> int:
        if (self.d["spec"].get("strategy") or {}).get("type") == "Recreate":
            return self.replicas
        # kube sums spec.replicas only; counting a set's pods not yet gone too (status.replicas, which
        # lags a scale-down until the pods are terminating) keeps the pods themselves, not just the
        # specs, within replicas + maxSurge at every instant
        current = sum(max(spec_replicas(rs), status_of(rs, "replicas")) for rs in old) + spec_replicas(new)
        max_total = self.replicas + max_surge(self.d)
        if current >= max_total:
            return spec_replicas(new)
        return spec_replicas(new) + min(max_total - current, self.replicas - spec_replicas(new))

    # -- RollingUpdate ------------------------------------------------------------------------------------
    async def rollout_rolling(self) -> None:
        new, old = await self.get_all(create=True)
        assert new is not None
        if await self._reconcile_new(new, old):
            await self.sync_rollout_status()
            return
        if await self._reconcile_old(new, old):
            await self.sync_rollout_status()
            return
        new, old = self._split()
        if deployment_complete(self.d, calculate_status(old + ([new] if new else []), new, self.d)):
            await self._cleanup(old)
        await self.sync_rollout_status()

    async def _reconcile_new(self, new: Obj, old: list[Obj]) -> bool:
        if spec_replicas(new) == self.replicas:
            return False
        if spec_replicas(new) > self.replicas:
            return (await self.scale_rs(new, self.replicas))[0]
        return (await self.scale_rs(new, self._new_rs_new_replicas(old, new)))[0]

    async def _reconcile_old(self, new: Obj, old: list[Obj]) -> bool:
        if sum(spec_replicas(rs) for rs in old) == 0:
            return False
        all_rss = old + [new]
        all_pods = sum(spec_replicas(rs) for rs in all_rss)
        min_available = self.replicas - max_unavailable(self.d)
        new_unavailable = spec_replicas(new) - status_of(new, "availableReplicas")
        max_scaled_down = all_pods - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        # 1. scale down unhealthy replicas of old sets first (oldest first)
        cleaned = 0
        for rs in sorted(old, key=_created):
            if cleaned >= max_scaled_down:
                break
            if spec_replicas(rs) == 0:
                continue
            unhealthy = spec_replicas(rs) - status_of(rs, "availableReplicas")
            if unhealthy <= 0:
                continue
            n = min(unhealthy, max_scaled_down - cleaned)
            await self.scale_rs(rs, spec_replicas(rs) - n)
            cleaned += n
        old = [r for r in self.rss if r["metadata"]["uid"] != new["metadata"]["uid"]]
        # 2. scale down available old replicas while staying above minAvailable
        # a set just scaled down still reports the pods it is deleting as available until its next
        # status write: never count more available pods than a set's spec keeps
        available = sum(min(status_of(rs, "availableReplicas"), spec_replicas(rs)) for rs in old + [new])
        total_down = available - min_available
        scaled = 0
        if total_down > 0:
            for rs in sorted(old, key=_created):
                if scaled >= total_down:
                    break
                if spec_replicas(rs) == 0:
                    continue
                n = min(spec_replicas(rs), total_down - scaled)
                await self.scale_rs(rs, spec_replicas(rs) - n)
                scaled += n
        return cleaned + scaled > 0

    # -- Recreate -------------------------------------------------------------------------------------------
    async def rollout_recreate(self) -> None:
        new, old = await self.get_all(create=False)
        scaled = False
        for rs in old:
            if spec_replicas(rs) > 0:
                scaled = (await self.scale_rs(rs, 0))[0] or scaled
        if scaled:
            await self.sync_rollout_status()
            return
        old = [r for r in self.rss if new is None or r["metadata"]["uid"] != new["metadata"]["uid"]]
        if any(not is_terminal(p) for rs in old for p in self.pods_of(rs)):
            await self.sync_rollout_status()
            return
        if new is None:
            new, old = await self.get_all(create=True)
            assert new is not None
        await self.scale_rs(new, self.replicas)
        new, old = self._split()
        if deployment_complete(self.d, calculate_status(self.rss, new, self.d)):
            await self._cleanup(old)
        await self.sync_rollout_status()

    # -- scaling (paused, or spec.replicas changed) ------------------------------------------------------------
    def is_scaling_event(self) -> bool:
        for rs in self.rss:
            if spec_replicas(rs) > 0:
                desired = (rs["metadata"].get("annotations") or {}).get(DESIRED_REPLICAS)
                if desired is not None and desired != str(self.replicas):
                    return True
        return False

    async def sync_scale(self) -> None:
        new, old = await self.get_all(create=False)
        await self._scale(new, old)
        new, old = self._split()
        if self.d["spec"].get("paused") and deployment_complete(self.d, calculate_status(self.rss, new, self.d)):
            await self._cleanup(old)
        await self._write_status(calculate_status(self.rss, new, self.d))

    async def sync_status_only(self) -> None:
        new, _ = await self.get_all(create=False)
        await self._write_status(calculate_status(self.rss, new, self.d))

    async def _scale(self, new: Obj | None, old: list[Obj]) -> None:
        active = [rs for rs in self.rss if spec_replicas(rs) > 0]
        if len(active) <= 1:
            target = active[0] if active else (new or (max(old, key=_created) if old else None))
            if target is not None and spec_replicas(target) != self.replicas:
                await self.scale_rs(target, self.replicas)
            return
        if new is not None and spec_replicas(new) == self.replicas \
                and status_of(new, "availableReplicas") == self.replicas:
            for rs in old:
                if spec_replicas(rs) > 0:
                    await self.scale_rs(rs, 0)
            return
        if not active:
            return
        allowed = self.replicas + max_surge(self.d)
        current = sum(spec_replicas(rs) for rs in active)
        to_add = allowed - current
        if to_add == 0:
            return
        # newest (and biggest) first when growing, oldest first when shrinking
        ordered = sorted(active, key=lambda rs: (spec_replicas(rs), _created(rs)), reverse=to_add > 0)
        sizes = {rs["metadata"]["uid"]: spec_replicas(rs) for rs in ordered}
        added = 0
        for rs in ordered:
            annotated = int((rs["metadata"].get("annotations") or {}).get(MAX_REPLICAS)
                            or (self.d.get("status") or {}).get("replicas") or current)
            if self.replicas == 0:
                fraction = -spec_replicas(rs)
            else:
                fraction = round(spec_replicas(rs) * allowed / max(annotated, 1)) - spec_replicas(rs)
            allowed_left = to_add - added
            part = min(fraction, allowed_left) if to_add > 0 else max(fraction, allowed_left)
            sizes[rs["metadata"]["uid"]] += part
            added += part
        if added != to_add:
            sizes[ordered[0]["metadata"]["uid"]] += to_add - added
        for rs in ordered:
            await self.scale_rs(rs, max(0, sizes[rs["metadata"]["uid"]]))

    # -- history and status --------------------------------------------------------------------------------
    async def _cleanup(self, old: list[Obj]) -> None:
        limit = self.d["spec"].get("revisionHistoryLimit")
        limit = 10 if limit is None else int(limit)
        cleanable = [rs for rs in old if spec_replicas(rs) == 0 and status_of(rs, "replicas") == 0
                     and not rs["metadata"].get("deletionTimestamp")]
        extra = len(cleanable) - limit
        if extra <= 0:
            return
        for rs in sorted(cleanable, key=lambda r: (revision(r), _created(r)))[:extra]:
            try:
                await self.client.delete(REPLICASETS, rs["metadata"]["name"], namespace=rs["metadata"]["namespace"])
            except NotFound:
                pass

    async def sync_rollout_status(self) -> None:
        new, _ = self._split()
        d = self.d
        status = calculate_status(self.rss, new, d)
        has_deadline = d["spec"].get("progressDeadlineSeconds") is not None
        if not has_deadline:
            remove_condition(status, PROGRESSING)
        current = get_condition(d.get("status") or {}, PROGRESSING)
        complete_already = (status["replicas"] == status["updatedReplicas"] and current is not None
                            and current.get("reason") == NEW_RS_AVAILABLE_REASON)
        name = new["metadata"]["name"] if new else ""
        if has_deadline and not complete_already:
            if deployment_complete(d, status):
                set_condition(status, new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE_REASON,
                                                    f'ReplicaSet "{name}" has successfully progressed.'))
            elif deployment_progressing(d, status):
                cond = new_condition(PROGRESSING, "True", RS_UPDATED_REASON, f'ReplicaSet "{name}" is progressing.')
                if current is not None and current.get("status") == "True":
                    cond["lastTransitionTime"] = current.get("lastTransitionTime")
                remove_condition(status, PROGRESSING)
                set_condition(status, cond)
            elif deployment_timed_out(d, status, time.time()):
                set_condition(status, new_condition(PROGRESSING, "False", TIMED_OUT_REASON,
                                                    f'ReplicaSet "{name}" has timed out progressing.'))
        failures = [c for rs in self.rss for c in (rs.get("status") or {}).get("conditions") or ()
                    if c.get("type") == REPLICA_FAILURE]
        if failures:
            set_condition(status, new_condition(REPLICA_FAILURE, failures[0].get("status", "True"),
                                                failures[0].get("reason", ""), failures[0].get("message", "")))
        else:
            remove_condition(status, REPLICA_FAILURE)
        if not await self._write_status(status):
            self._requeue_stuck(status)

    def _requeue_stuck(self, status: Obj) -> None:
        deadline = self.d["spec"].get("progressDeadlineSeconds")
        cond = get_condition(status, PROGRESSING)
        if deadline is None or cond is None or cond.get("reason") in (NEW_RS_AVAILABLE_REASON, TIMED_OUT_REASON):
            return
        since = parse_time(cond.get("lastUpdateTime"))
        if since is None:
            return
        after = since + int(deadline) - time.time()
        self.queue.add_after(self.key, max(1.0, after + 1))

    async def _write_status(self, status: Obj) -> bool:
        """Write the status if it changed; returns whether it did."""
        if not status.get("conditions"):
            status.pop("conditions", None)
        if (self.d.get("status") or {}) == status:
            return False
        d = copy.deepcopy(self.d)
        d["status"] = status
        try:
            updated = await self.client.update(DEPLOYMENTS, d, subresource="status")
        except NotFound:
            return False
        self.d["status"] = status
        self.d["metadata"]["resourceVersion"] = updated["metadata"].get("resourceVersion")
        return True
