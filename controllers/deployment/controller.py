"""DeploymentController: handlers compute keys; ``sync(key)`` claims the Deployment's ReplicaSets
and runs the paused/scale/Recreate/RollingUpdate paths of kube's ``deployment_controller.go``.
The rollout arithmetic is in :mod:`.rollout`, the pure helpers in :mod:`.rsutil`."""

from __future__ import annotations

import copy
import logging
from typing import Any

from kubelite.api.errors import Conflict, NotFound
from kubelite.api.resources import DEPLOYMENTS, REPLICASETS
from controllers.base import Obj, Queue, Recorder, Store, in_namespace, record
from controllers.deployment import rollout
from controllers.deployment.rsutil import (
    PAUSED_REASON, PROGRESSING, RESUMED_REASON, get_condition, new_condition, set_condition,
)
from controllers.podutil import controller_ref, key_of, owner_ref_for, selector_matches

logger = logging.getLogger(__name__)


class DeploymentController:
    name = "deployment"

    def __init__(self, client: Any, d_store: Store, rs_store: Store, pod_store: Store, queue: Queue,
                 recorder: Recorder | None = None) -> None:
        self.client = client
        self.d_store = d_store
        self.rs_store = rs_store
        self.pod_store = pod_store
        self.queue = queue
        self.recorder = recorder

    # -- handlers --------------------------------------------------------------------------------------
    def on_deployment_add(self, d: Obj) -> None:
        self.queue.add(key_of(d))

    def on_deployment_update(self, old: Obj, new: Obj) -> None:
        self.queue.add(key_of(new))

    on_deployment_delete = on_deployment_add

    def _owner_key(self, rs: Obj) -> str | None:
        ref = controller_ref(rs)
        if ref is None or ref.get("kind") != "Deployment":
            return None
        key = f"{rs['metadata'].get('namespace')}/{ref.get('name')}"
        d = self.d_store.get(key)
        return key if d is not None and d["metadata"].get("uid") == ref.get("uid") else None

    def on_rs_add(self, rs: Obj) -> None:
        key = self._owner_key(rs)
        if key is not None:
            self.queue.add(key)
        elif controller_ref(rs) is None:
            labels = rs["metadata"].get("labels") or {}
            for d in in_namespace(self.d_store, rs["metadata"].get("namespace", "")):
                if selector_matches((d.get("spec") or {}).get("selector"), labels):
                    self.queue.add(key_of(d))

    def on_rs_update(self, old: Obj, new: Obj) -> None:
        old_key = self._owner_key(old)
        if old_key and old_key != self._owner_key(new):
            self.queue.add(old_key)
        self.on_rs_add(new)

    on_rs_delete = on_rs_add

    def on_pod_delete(self, pod: Obj) -> None:
        """Recreate waits for the old pods to be gone: wake the Deployment that owns their set."""
        ref = controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.rs_store.get(f"{pod['metadata'].get('namespace')}/{ref.get('name')}")
        if rs is not None:
            key = self._owner_key(rs)
            if key is not None:
                self.queue.add(key)

    # -- sync ------------------------------------------------------------------------------------------
    async def sync(self, key: str) -> None:
        cached = self.d_store.get(key)
        if cached is None:
            return
        d = copy.deepcopy(cached)
        spec = d.get("spec") or {}
        if not (spec.get("selector") or {}).get("matchLabels") and not (spec.get("selector") or {}).get("matchExpressions"):
            await record(self.recorder, d, "Warning", "SelectingAll",
                         "This deployment is selecting all pods. A non-empty selector is required.")
            return
        rss = await self._claim_replicasets(d)
        ctx = rollout.Rollout(self.client, self.recorder, self.queue, d, rss, self._pods_of)
        if d["metadata"].get("deletionTimestamp"):
            await ctx.sync_status_only()
            return
        await self._check_paused_conditions(d)
        if spec.get("paused"):
            await ctx.sync_scale()
            return
        if ctx.is_scaling_event():
            await ctx.sync_scale()
            return
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            await ctx.rollout_recreate()
        else:
            await ctx.rollout_rolling()

    def _pods_of(self, rs: Obj) -> list[Obj]:
        uid = rs["metadata"].get("uid")
        return [p for p in in_namespace(self.pod_store, rs["metadata"]["namespace"])
                if (controller_ref(p) or {}).get("uid") == uid]

    async def _claim_replicasets(self, d: Obj) -> list[Obj]:
        uid = d["metadata"]["uid"]
        selector = d["spec"]["selector"]
        deleting = bool(d["metadata"].get("deletionTimestamp"))
        owned = []
        for rs in in_namespace(self.rs_store, d["metadata"]["namespace"]):
            ref = controller_ref(rs)
            matches = selector_matches(selector, rs["metadata"].get("labels") or {})
            if ref is not None:
                if ref.get("uid") != uid:
                    continue
                if matches or deleting:
                    owned.append(copy.deepcopy(rs))
                    continue
                refs = [r for r in rs["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
                await self._patch_refs(rs, refs or None)
            elif matches and not deleting and not rs["metadata"].get("deletionTimestamp"):
                refs = list(rs["metadata"].get("ownerReferences") or []) + [owner_ref_for(d)]
                adopted = await self._patch_refs(rs, refs)
                if adopted is not None:
                    owned.append(adopted)
        return owned

    async def _patch_refs(self, rs: Obj, refs: list[Obj] | None) -> Obj | None:
        body = {"metadata": {"ownerReferences": refs, "uid": rs["metadata"].get("uid"),
                             "resourceVersion": rs["metadata"].get("resourceVersion")}}
        try:
            return await self.client.patch(REPLICASETS, rs["metadata"]["name"], body,
                                           namespace=rs["metadata"]["namespace"], patch_type="merge")
        except (NotFound, Conflict):
            return None

    async def _check_paused_conditions(self, d: Obj) -> None:
        if (d.get("spec") or {}).get("progressDeadlineSeconds") is None:
            return
        status = d.setdefault("status", {})
        cond = get_condition(status, PROGRESSING)
        if cond is not None and cond.get("reason") == "ProgressDeadlineExceeded":
            return
        paused = bool(d["spec"].get("paused"))
        if paused and (cond is None or cond.get("reason") != PAUSED_REASON):
            set_condition(status, new_condition(PROGRESSING, "Unknown", PAUSED_REASON, "Deployment is paused"))
        elif not paused and cond is not None and cond.get("reason") == PAUSED_REASON:
            set_condition(status, new_condition(PROGRESSING, "Unknown", RESUMED_REASON, "Deployment is resumed"))
        else:
            return
        updated = await self.client.update(DEPLOYMENTS, d, subresource="status")
        d["metadata"]["resourceVersion"] = updated["metadata"].get("resourceVersion")
