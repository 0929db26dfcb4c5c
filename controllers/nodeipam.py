"""Node IPAM: gives each node a ``spec.podCIDR`` (and ``podCIDRs``) carved from ``--cluster-cidr``
(default 10.244.0.0/16, /24 per node). The allocation state is the nodes themselves, rebuilt
from the informer cache, so a restart never hands a CIDR out twice."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

from kubelite.api.errors import NotFound
from kubelite.api.resources import NODES
from controllers.base import Obj, Queue, Recorder, Store, record

logger = logging.getLogger(__name__)


class CIDRExhausted(Exception):
    pass


class NodeIpamController:
    name = "nodeipam"

    def __init__(self, client: Any, node_store: Store, queue: Queue, recorder: Recorder | None = None,
                 cluster_cidr: str = "10.244.0.0/16", node_mask: int = 24) -> None:
        self.client = client
        self.node_store = node_store
        self.queue = queue
        self.recorder = recorder
        self.network = ipaddress.ip_network(cluster_cidr)
        self.mask = node_mask
        if node_mask < self.network.prefixlen:
            raise ValueError(f"--node-cidr-mask-size {node_mask} is smaller than the cluster CIDR {cluster_cidr}")
        self._reserved: dict[str, str] = {}     # cidr -> node, including allocations not yet seen back

    def on_node(self, node: Obj) -> None:
        if not (node.get("spec") or {}).get("podCIDR"):
            self.queue.add(node["metadata"]["name"])
        else:
            self._reserved[node["spec"]["podCIDR"]] = node["metadata"]["name"]

    def on_node_update(self, old: Obj, new: Obj) -> None:
        self.on_node(new)

    def on_node_delete(self, node: Obj) -> None:
        cidr = (node.get("spec") or {}).get("podCIDR")
        if cidr and self._reserved.get(cidr) == node["metadata"]["name"]:
            del self._reserved[cidr]

    def _allocate(self, name: str) -> str:
        used = set(self._reserved)
        for n in self.node_store.list():
            c = (n.get("spec") or {}).get("podCIDR")
            if c:
                used.add(c)
                self._reserved.setdefault(c, n["metadata"]["name"])
        for mine, owner in self._reserved.items():
            if owner == name:
                return mine
        for subnet in self.network.subnets(new_prefix=self.mask):
            s = str(subnet)
            if s not in used:
                self._reserved[s] = name
                return s
        raise CIDRExhausted(f"no remaining CIDRs in {self.network} for node {name}")

    async def sync(self, name: str) -> None:
        node = self.node_store.get(name)
        if node is None or (node.get("spec") or {}).get("podCIDR"):
            return
        try:
            cidr = self._allocate(name)
        except CIDRExhausted as exc:
            await record(self.recorder, node, "Normal", "CIDRNotAvailable", str(exc))
            return
        try:
            await self.client.patch(NODES, name, {"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}}, patch_type="merge")
            logger.info("node %s: podCIDR %s", name, cidr)
        except NotFound:
            self._reserved.pop(cidr, None)
