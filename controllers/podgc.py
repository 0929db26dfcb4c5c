"""PodGC: deletes pods bound to nodes that no longer exist, terminating pods never scheduled, and
the oldest terminated pods beyond ``--terminated-pod-gc-threshold`` (kube's ``podgc`` controller).
Runs as a periodic pass (every 20 s by default)."""

from __future__ import annotations

import logging
from typing import Any

from kubelite.api.errors import NotFound
from kubelite.api.resources import NODES, PODS
from controllers.base import Obj, Store
from controllers.podutil import is_terminal, parse_time

logger = logging.getLogger(__name__)


class PodGC:
    name = "podgc"

    def __init__(self, client: Any, pod_store: Store, node_store: Store, terminated_threshold: int = 12500) -> None:
        self.client = client
        self.pod_store = pod_store
        self.node_store = node_store
        self.threshold = terminated_threshold

    async def _delete(self, pod: Obj, why: str) -> None:
        m = pod["metadata"]
        logger.info("podgc: deleting %s/%s (%s)", m["namespace"], m["name"], why)
        try:
            await self.client.delete(PODS, m["name"], namespace=m["namespace"], grace_period_seconds=0)
        except NotFound:
            pass

    async def sync(self, key: str = "") -> None:
        """One pass over all pods."""
        pods = self.pod_store.list()
        terminated = [p for p in pods if is_terminal(p) and not p["metadata"].get("deletionTimestamp")]
        if self.threshold > 0 and len(terminated) > self.threshold:
            terminated.sort(key=lambda p: parse_time(p["metadata"].get("creationTimestamp")) or 0.0)
            for pod in terminated[:len(terminated) - self.threshold]:
                await self._delete(pod, "terminated pods over the threshold")
        checked: dict[str, bool] = {}
        for pod in pods:
            node = (pod.get("spec") or {}).get("nodeName")
            if not node:
                if pod["metadata"].get("deletionTimestamp"):
                    await self._delete(pod, "terminating and never scheduled")
                continue
            if self.node_store.get(node) is not None:
                continue
            if node not in checked:
                try:
                    await self.client.get(NODES, node)
                    checked[node] = True
                except NotFound:
                    checked[node] = False
            if not checked[node]:
                await self._delete(pod, f"bound to node {node} which does not exist")
