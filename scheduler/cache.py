"""The scheduler's cache: NodeInfos built from the node and pod informers plus *assumed* pods.

A pod is assumed on its node the moment the scheduling cycle picks it, before the binding is
written, so the next cycles see its requests and a burst cannot overcommit the node. The watch
event of the bound pod confirms the assumption; a failed binding forgets it; an assumption never
confirmed expires after ``ttl`` seconds once its binding finished. Synchronous, no I/O.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from scheduler.framework.interface import (HAVE_ANTI_AFFINITY_KEY, NODES_WITH_TAINTS_KEY, POD_INFO_KEY,
                                           UNSCHEDULABLE_NODES_KEY, CycleState)
from scheduler.framework.nodeinfo import NodeInfo, PodInfo, pod_key

logger = logging.getLogger(__name__)


def _same_inputs(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Would :meth:`PodInfo.of` derive the same from ``new`` as from ``old`` (requests, labels, affinity)?"""
    if old is new:
        return True
    os_, ns = old.get("spec") or {}, new.get("spec") or {}
    om, nm = old.get("metadata") or {}, new.get("metadata") or {}
    return (os_.get("containers") == ns.get("containers") and os_.get("initContainers") == ns.get("initContainers")
            and os_.get("overhead") == ns.get("overhead") and os_.get("affinity") == ns.get("affinity")
            and om.get("labels") == nm.get("labels") and om.get("namespace") == nm.get("namespace")
            and om.get("deletionTimestamp") == nm.get("deletionTimestamp"))


class Cache:
    def __init__(self, ttl: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._nodes: dict[str, NodeInfo] = {}
        self._order: list[NodeInfo] | None = None
        self._pod_node: dict[str, str] = {}            # pod key -> node name (bound or assumed)
        self._assumed: dict[str, float | None] = {}    # pod key -> expiry (None while binding)
        self._ttl = ttl
        self._clock = clock
        self._anti = 0                                  # pods with required anti-affinity
        self._tainted = 0                               # existing nodes with taints
        self._unschedulable = 0                         # existing nodes with spec.unschedulable

    # -- nodes ----------------------------------------------------------------------------------------
    def _node_info(self, name: str) -> NodeInfo:
        ni = self._nodes.get(name)
        if ni is None:
            ni = self._nodes[name] = NodeInfo(name)
            self._order = None
        return ni

    def _count(self, ni: NodeInfo, sign: int) -> None:
        if ni.node is not None:
            self._tainted += sign if ni.taints else 0
            self._unschedulable += sign if ni.unschedulable else 0

    def add_node(self, node: dict[str, Any]) -> None:
        ni = self._node_info(node["metadata"]["name"])
        self._count(ni, -1)
        ni.set_node(node)
        self._count(ni, 1)
        self._order = None

    update_node = add_node

    def remove_node(self, name: str) -> None:
        ni = self._nodes.get(name)
        if ni is None:
            return
        self._count(ni, -1)
        ni.node = None
        if not ni.pods:
            del self._nodes[name]
        self._order = None

    def node_list(self) -> list[NodeInfo]:
        """The nodes that exist (the snapshot a cycle filters), in a stable order."""
        if self._order is None:
            self._order = [ni for _, ni in sorted(self._nodes.items()) if ni.node is not None]
        return self._order

    def get_node(self, name: str) -> NodeInfo | None:
        return self._nodes.get(name)

    # -- pods -----------------------------------------------------------------------------------------
    def assume_pod(self, pod: dict[str, Any], node_name: str, pod_info: PodInfo | None = None) -> None:
        """Place ``pod`` on ``node_name`` before its binding is written (``pod_info``: the cycle's, if any)."""
        pi = pod_info if pod_info is not None and pod_info.pod is pod else PodInfo.of(pod)
        self._place(pi, node_name)
        self._assumed[pi.key] = None

    def finish_binding(self, key: str) -> None:
        if key in self._assumed:
            self._assumed[key] = self._clock() + self._ttl

    def forget_pod(self, key: str) -> None:
        if self._assumed.pop(key, "missing") != "missing":
            self._unplace(key)

    def is_assumed(self, key: str) -> bool:
        return key in self._assumed

    def add_pod(self, pod: dict[str, Any]) -> None:
        """A bound pod seen through the informer (confirms an assumption)."""
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            return
        key = pod_key(pod)
        self._assumed.pop(key, None)
        if self._pod_node.get(key) == node_name:
            ni = self._nodes.get(node_name)
            pi = ni.pods.get(key) if ni is not None else None
            if pi is not None and _same_inputs(pi.pod, pod):
                pi.pod = pod     # e.g. the watch event confirming an assumption: nothing derived changed
                return
        self._place(PodInfo.of(pod), node_name)

    update_pod = add_pod

    def remove_pod(self, pod: dict[str, Any]) -> None:
        key = pod_key(pod)
        self._assumed.pop(key, None)
        self._unplace(key)

    def _place(self, pi: PodInfo, node_name: str) -> None:
        old = self._pod_node.get(pi.key)
        if old is not None and old != node_name:
            self._unplace(pi.key)
        if old == node_name:
            prev = self._nodes[node_name].pods.get(pi.key)
            if prev is not None and prev.required_anti_affinity:
                self._anti -= 1
        self._node_info(node_name).add_pod(pi)
        self._pod_node[pi.key] = node_name
        if pi.required_anti_affinity:
            self._anti += 1

    def _unplace(self, key: str) -> None:
        node_name = self._pod_node.pop(key, None)
        if node_name is None:
            return
        ni = self._nodes.get(node_name)
        if ni is not None:
            pi = ni.remove_pod(key)
            if pi is not None and pi.required_anti_affinity:
                self._anti -= 1
            if ni.node is None and not ni.pods:
                del self._nodes[node_name]
                self._order = None

    def cleanup_assumed(self) -> list[str]:
        """Forget assumptions whose binding finished ``ttl`` seconds ago without a watch event."""
        now = self._clock()
        expired = [k for k, exp in self._assumed.items() if exp is not None and exp <= now]
        for k in expired:
            logger.warning("assumed pod %s expired without being seen bound", k)
            self.forget_pod(k)
        return expired

    def cycle_state(self, pod: dict[str, Any] | None = None) -> CycleState:
        """A fresh CycleState carrying the cluster-wide facts plugins use to skip work (kube's Skip),
        and ``pod``'s PodInfo (its requests parsed once for every plugin and the assumption)."""
        state = CycleState()
        data = state._data
        if pod is not None:
            data[POD_INFO_KEY] = PodInfo.of(pod)
        data[HAVE_ANTI_AFFINITY_KEY] = self._anti > 0
        data[NODES_WITH_TAINTS_KEY] = self._tainted
        data[UNSCHEDULABLE_NODES_KEY] = self._unschedulable
        return state

    def have_required_anti_affinity(self) -> bool:
        """Does any bound or assumed pod carry required pod anti-affinity? (O(1), for InterPodAffinity)"""
        return self._anti > 0

    def pod_count(self) -> int:
        return len(self._pod_node)
