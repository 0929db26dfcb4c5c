"""HollowNodes: N fake nodes behind one watch. Registers the Nodes (capacity, Ready), renews one
Lease per node in ``kube-node-lease`` (pausable, for benchmarks and node-failure tests), and
answers for the pods bound to them: Running with a podIP and Ready conditions at once, deleted for
real once they are marked for deletion (as the kubelet does after stopping containers)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from datetime import UTC, datetime
from typing import Any

from kubelite.api.errors import AlreadyExists, ApiError, Conflict, NotFound
from kubelite.api.resources import LEASES, NODES, PODS
from kubelite.informer import Informer

logger = logging.getLogger(__name__)

LEASE_NAMESPACE = "kube-node-lease"
Obj = dict[str, Any]


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class HollowNodes:
    def __init__(self, client: Any, count: int, prefix: str = "hollow-node-", cpu: str = "4", memory: str = "32Gi",
                 pods: str = "110", labels: dict[str, str] | None = None, lease_period: float = 10.0,
                 parallelism: int = 32, zones: int = 0) -> None:
        self.client = client
        self.names = [f"{prefix}{i}" for i in range(count)]
        self._mine = set(self.names)
        self.capacity = {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "100Gi"}
        self.labels = labels or {}
        self.lease_period = lease_period
        self.zones = zones
        self.renew_leases = asyncio.Event()
        self.renew_leases.set()
        self._slots = asyncio.Semaphore(parallelism)
        self._ip_counter: dict[str, int] = {}
        self._handled: set[str] = set()      # pod uids already marked Running
        self.running = 0

    # -- registration -----------------------------------------------------------------------------------
    def _node(self, i: int, name: str) -> Obj:
        labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                  "kubelite.io/hollow": "true", **self.labels}
        if self.zones:
            labels["topology.kubernetes.io/zone"] = f"zone-{i % self.zones}"
        return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
                "spec": {},
                "status": {"capacity": dict(self.capacity), "allocatable": dict(self.capacity),
                           "conditions": self._conditions(), "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                                                                          {"type": "Hostname", "address": name}],
                           "nodeInfo": {"kubeletVersion": "v1.31.0-kubelite-hollow", "operatingSystem": "linux",
                                        "architecture": "amd64", "containerRuntimeVersion": "hollow://0"}}}

    @staticmethod
    def _conditions() -> list[Obj]:
        now = _now()
        conds = [{"type": t, "status": "False", "reason": f"KubeletHas{r}", "message": m,
                  "lastHeartbeatTime": now, "lastTransitionTime": now}
                 for t, r, m in (("MemoryPressure", "SufficientMemory", "kubelet has sufficient memory available"),
                                 ("DiskPressure", "NoDiskPressure", "kubelet has no disk pressure"),
                                 ("PIDPressure", "SufficientPID", "kubelet has sufficient PID available"))]
        conds.append({"type": "Ready", "status": "True", "reason": "KubeletReady",
                      "message": "kubelet is posting ready status", "lastHeartbeatTime": now,
                      "lastTransitionTime": now})
        return conds

    async def _bounded(self, coro: Any) -> Any:
        async with self._slots:
            return await coro

    async def register(self) -> None:
        async def one(i: int, name: str) -> None:
            node = self._node(i, name)
            try:
                created = await self.client.create(NODES, node)
            except AlreadyExists:
                created = await self.client.get(NODES, name)
            status = dict(created.get("status") or {})
            status.update(node["status"])
            try:
                await self.client.patch(NODES, name, {"status": status}, patch_type="merge", subresource="status")
            except ApiError as exc:
                logger.warning("node %s status: %s", name, exc)
        await asyncio.gather(*(self._bounded(one(i, n)) for i, n in enumerate(self.names)))
        await self.renew_all()
        logger.info("registered %d hollow nodes", len(self.names))

    async def mark_ready(self) -> None:
        """Re-post Ready=True (after a pause the node lifecycle controller may have said Unknown)."""
        async def one(name: str) -> None:
            try:
                await self.client.patch(NODES, name, {"status": {"conditions": self._conditions()}},
                                        patch_type="merge", subresource="status")
            except NotFound:
                pass
        await asyncio.gather(*(self._bounded(one(n)) for n in self.names))

    async def renew_all(self) -> None:
        async def one(name: str) -> None:
            spec = {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": _micro()}
            try:
                await self.client.patch(LEASES, name, {"spec": spec}, namespace=LEASE_NAMESPACE, patch_type="merge")
            except NotFound:
                try:
                    await self.client.create(LEASES, {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                                                      "metadata": {"name": name, "namespace": LEASE_NAMESPACE},
                                                      "spec": spec}, namespace=LEASE_NAMESPACE)
                except (AlreadyExists, Conflict):
                    pass
        await asyncio.gather(*(self._bounded(one(n)) for n in self.names))

    async def lease_loop(self) -> None:
        while True:
            was_paused = not self.renew_leases.is_set()
            await self.renew_leases.wait()
            if was_paused:
                await self.mark_ready()
            try:
                await self.renew_all()
            except ApiError as exc:
                logger.warning("renewing leases: %s", exc)
            await asyncio.sleep(self.lease_period)

    # -- pods -------------------------------------------------------------------------------------------
    def _pod_ip(self, node: str) -> str:
        n = self._ip_counter.get(node, 1) + 1
        self._ip_counter[node] = n
        idx = self.names.index(node) if node in self._mine else 0
        base = ipaddress.ip_address("10.128.0.0") + idx * 256
        return str(base + (n % 254) + 1)

    def on_pod(self, pod: Obj, *_: Obj) -> Any:
        if _:
            pod = _[-1]
        node = (pod.get("spec") or {}).get("nodeName")
        if node not in self._mine:
            return None
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            return self._bounded(self._finish_delete(pod))
        if meta.get("uid") in self._handled or (pod.get("status") or {}).get("phase") in ("Running", "Succeeded", "Failed"):
            return None
        self._handled.add(meta.get("uid"))
        return self._bounded(self._run(pod))

    def on_pod_delete(self, pod: Obj) -> None:
        self._handled.discard(pod["metadata"].get("uid"))

    async def _run(self, pod: Obj) -> None:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        now = _now()
        ready = [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
                 for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")]
        statuses = [{"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": True,
                     "restartCount": 0, "started": True, "containerID": f"hollow://{meta.get('uid')}-{c['name']}",
                     "state": {"running": {"startedAt": now}}} for c in spec.get("containers") or ()]
        ip = self._pod_ip(spec["nodeName"])
        status = {"phase": "Running", "conditions": ready, "hostIP": "127.0.0.1", "hostIPs": [{"ip": "127.0.0.1"}],
                  "podIP": ip, "podIPs": [{"ip": ip}], "startTime": now, "containerStatuses": statuses,
                  "qosClass": (pod.get("status") or {}).get("qosClass", "BestEffort")}
        try:
            await self.client.patch(PODS, meta["name"], {"status": status}, namespace=meta["namespace"],
                                    patch_type="merge", subresource="status")
            self.running += 1
        except NotFound:
            pass
        except ApiError as exc:
            self._handled.discard(meta.get("uid"))
            logger.warning("pod %s/%s status: %s", meta["namespace"], meta["name"], exc)

    async def _finish_delete(self, pod: Obj) -> None:
        meta = pod["metadata"]
        try:
            await self.client.delete(PODS, meta["name"], namespace=meta["namespace"], grace_period_seconds=0)
        except NotFound:
            pass
        except ApiError as exc:
            logger.warning("deleting pod %s/%s: %s", meta["namespace"], meta["name"], exc)

    async def run(self) -> None:
        """Register, then renew leases and run pods until cancelled."""
        await self.register()
        pods = Informer(self.client, PODS)
        pods.add_handler(self.on_pod, self.on_pod, self.on_pod_delete)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(pods.run())
            tg.create_task(self.lease_loop())
