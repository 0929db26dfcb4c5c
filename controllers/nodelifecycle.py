"""Node lifecycle controller: a node whose Lease (or Ready heartbeat) is not renewed for the grace
period becomes Ready=Unknown and is tainted ``node.kubernetes.io/unreachable`` (NoExecute and
NoSchedule); Ready=False gives ``node.kubernetes.io/not-ready``; Ready=True removes them. The
NoExecute taint manager then evicts (deletes) the node's pods that do not tolerate the taints,
at once or after their ``tolerationSeconds``.

Heartbeats are timed by this controller's own clock when it *observes* a renewal (as kube does),
so clock skew between nodes and the controller does not matter. Keys are node names.
"""

from __future__ import annotations

import copy
import logging
import time
from datetime import UTC, datetime
from typing import Any, Callable

from kubelite.api.errors import Conflict, NotFound
from kubelite.api.resources import NODES, PODS
from controllers.base import Obj, Queue, Recorder, Store, on_node, record
from controllers.podutil import is_terminal, now_iso, parse_time

logger = logging.getLogger(__name__)

UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
LEASE_NAMESPACE = "kube-node-lease"


def _ready(node: Obj) -> Obj | None:
    return next((c for c in (node.get("status") or {}).get("conditions") or () if c.get("type") == "Ready"), None)


def _tolerates(tol: Obj, taint: Obj) -> bool:
    if tol.get("effect") and tol["effect"] != taint.get("effect"):
        return False
    if tol.get("key") and tol["key"] != taint.get("key"):
        return False
    if (tol.get("operator") or "Equal") == "Exists":
        return True
    return bool(tol.get("key")) and (tol.get("value") or "") == (taint.get("value") or "")


def eviction_deadline(pod: Obj, taints: list[Obj], now: float) -> float | None:
    """When the pod must go because of NoExecute ``taints``: ``now`` if one is not tolerated,
    the earliest ``timeAdded + tolerationSeconds`` otherwise, None if tolerated forever."""
    tols = (pod.get("spec") or {}).get("tolerations") or ()
    deadline: float | None = None
    for taint in taints:
        if taint.get("effect") != "NoExecute":
            continue
        matching = [t for t in tols if _tolerates(t, taint)]
        if not matching:
            return now
        secs = [t.get("tolerationSeconds") for t in matching]
        if any(s is None for s in secs):
            continue
        added = parse_time(taint.get("timeAdded")) or now
        at = added + max(0, min(int(s) for s in secs))  # type: ignore[arg-type]
        deadline = at if deadline is None else min(deadline, at)
    return deadline


class NodeLifecycleController:
    name = "nodelifecycle"

    def __init__(self, client: Any, node_store: Store, pod_store: Store, queue: Queue,
                 recorder: Recorder | None = None, grace_period: float = 50.0, startup_grace_period: float = 60.0,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.client = client
        self.node_store = node_store
        self.pod_store = pod_store
        self.queue = queue
        self.recorder = recorder
        self.grace = grace_period
        self.startup_grace = startup_grace_period
        self.clock = clock
        self.wall = wall
        self._beats: dict[str, dict[str, Any]] = {}       # node -> {"lease"|"ready": last value seen}
        self._seen: dict[str, tuple[Any, float]] = {}     # node -> (heartbeat seen?, observed at)

    # -- handlers --------------------------------------------------------------------------------------
    def _observe(self, node: str, source: str, value: Any) -> None:
        beats = self._beats.setdefault(node, {})
        if value is not None and beats.get(source) != value:
            beats[source] = value
            self._seen[node] = (True, self.clock())

    def on_lease(self, lease: Obj) -> None:
        meta = lease.get("metadata") or {}
        if meta.get("namespace") != LEASE_NAMESPACE:
            return
        self._observe(meta.get("name", ""), "lease", (lease.get("spec") or {}).get("renewTime"))
        self.queue.add(meta.get("name", ""))

    def on_lease_update(self, old: Obj, new: Obj) -> None:
        self.on_lease(new)

    def on_node(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        if name not in self._seen:
            self._seen[name] = (None, self.clock())      # the startup grace period starts now
        self._observe(name, "ready", (_ready(node) or {}).get("lastHeartbeatTime"))
        self.queue.add(name)

    def on_node_update(self, old: Obj, new: Obj) -> None:
        self.on_node(new)

    def on_node_delete(self, node: Obj) -> None:
        self._seen.pop(node["metadata"]["name"], None)
        self._beats.pop(node["metadata"]["name"], None)

    def on_pod(self, pod: Obj) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        if node:
            self.queue.add(node)

    def on_pod_update(self, old: Obj, new: Obj) -> None:
        self.on_pod(new)

    def resync(self) -> None:
        """Called every node-monitor-period: look at every node again."""
        for node in self.node_store.list():
            self.queue.add(node["metadata"]["name"])

    # -- sync ------------------------------------------------------------------------------------------
    async def sync(self, name: str) -> None:
        node = self.node_store.get(name)
        if node is None:
            return
        node = await self._monitor(node)
        await self._evict(node)

    async def _monitor(self, node: Obj) -> Obj:
        name = node["metadata"]["name"]
        ready = _ready(node)
        seen = self._seen.get(name)
        if seen is None:
            self._seen[name] = seen = (None, self.clock())
        grace = self.grace if seen[0] is not None or ready is not None else self.startup_grace
        silent = self.clock() - seen[1]
        status = (ready or {}).get("status", "Unknown")
        if silent > grace and status != "Unknown":
            node = await self._mark_unknown(node)
            status = "Unknown"
        elif silent <= grace and ready is None:
            return node
        if silent <= grace:
            self.queue.add_after(name, grace - silent + 0.5)
        want = {"Unknown": UNREACHABLE, "False": NOT_READY}.get(status)
        return await self._set_taints(node, want)

    async def _mark_unknown(self, node: Obj) -> Obj:
        now = now_iso()
        name = node["metadata"]["name"]
        conds = copy.deepcopy((node.get("status") or {}).get("conditions") or [])
        if not any(c.get("type") == "Ready" for c in conds):
            conds.append({"type": "Ready"})
        for c in conds:
            if c.get("type") in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure") and c.get("status") != "Unknown":
                c.update({"status": "Unknown", "reason": "NodeStatusUnknown",
                          "message": "Kubelet stopped posting node status.", "lastTransitionTime": now})
        logger.info("node %s: no heartbeat for %.0fs, marking Ready=Unknown", name, self.grace)
        try:
            node = await self.client.patch(NODES, name, {"status": {"conditions": conds}}, patch_type="merge",
                                           subresource="status")
        except NotFound:
            return node
        await record(self.recorder, node, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady")
        await self._mark_pods_not_ready(name)
        return node

    async def _mark_pods_not_ready(self, node_name: str) -> None:
        for pod in on_node(self.pod_store, node_name):
            if is_terminal(pod):
                continue
            conds = copy.deepcopy((pod.get("status") or {}).get("conditions") or [])
            changed = False
            for c in conds:
                if c.get("type") == "Ready" and c.get("status") != "False":
                    c.update({"status": "False", "lastTransitionTime": now_iso()})
                    changed = True
            if changed:
                m = pod["metadata"]
                try:
                    await self.client.patch(PODS, m["name"], {"status": {"conditions": conds}},
                                            namespace=m["namespace"], patch_type="merge", subresource="status")
                except (NotFound, Conflict):
                    pass

    async def _set_taints(self, node: Obj, want: str | None) -> Obj:
        taints = list((node.get("spec") or {}).get("taints") or [])
        ours = {UNREACHABLE, NOT_READY}
        keep = [t for t in taints if t.get("key") not in ours or (t.get("key") == want)]
        have = {(t.get("key"), t.get("effect")) for t in keep}
        stamp = datetime.fromtimestamp(self.wall(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if want is not None:
            for effect in ("NoSchedule", "NoExecute"):
                if (want, effect) not in have:
                    t = {"key": want, "effect": effect}
                    if effect == "NoExecute":
                        t["timeAdded"] = stamp
                    keep.append(t)
        if keep == taints:
            return node
        meta = node["metadata"]
        body = {"metadata": {"resourceVersion": meta.get("resourceVersion")}, "spec": {"taints": keep or None}}
        try:
            return await self.client.patch(NODES, meta["name"], body, patch_type="merge")
        except NotFound:
            return node
        except Conflict:
            self.queue.add(meta["name"])
            return node

    async def _evict(self, node: Obj) -> None:
        name = node["metadata"]["name"]
        taints = [t for t in (node.get("spec") or {}).get("taints") or () if t.get("effect") == "NoExecute"]
        if not taints:
            return
        now = self.wall()
        soonest: float | None = None
        for pod in on_node(self.pod_store, name):
            if pod["metadata"].get("deletionTimestamp"):
                continue
            deadline = eviction_deadline(pod, taints, now)
            if deadline is None:
                continue
            if deadline <= now:
                m = pod["metadata"]
                await record(self.recorder, pod, "Normal", "TaintManagerEviction",
                             f"Marking for deletion Pod {m['namespace']}/{m['name']}")
                try:
                    await self.client.delete(PODS, m["name"], namespace=m["namespace"])
                except NotFound:
                    pass
            else:
                soonest = deadline if soonest is None else min(soonest, deadline)
        if soonest is not None:
            self.queue.add_after(name, soonest - now + 0.1)
