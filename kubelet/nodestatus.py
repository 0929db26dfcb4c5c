"""The Node object and its Lease: registration, node status (capacity, conditions, addresses) and heartbeats.

As Kubernetes' ``kubelet_node_status.go`` and ``nodelease``: register the Node (or adopt an existing
one), renew ``kube-node-lease/<node>`` every 10 s (leaseDurationSeconds 40), and patch the node's
status when it changed, or at least every 5 minutes. Host facts are read off the event loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from kubelite import GIT_VERSION
from kubelite.api.errors import AlreadyExists, ApiError, Conflict, NotFound
from kubelite.api.resources import NODES, lookup

logger = logging.getLogger(__name__)
KUBELET_VERSION = GIT_VERSION
RUNTIME_VERSION = "kubelite://0.1"
LEASE_NS = "kube-node-lease"
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


def now_rfc3339() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class HostFacts:
    cpus: int
    memory_bytes: int
    memory_available: int
    disk_bytes: int
    disk_available: int
    pids_max: int
    pids_used: int
    kernel: str
    os_image: str
    arch: str
    machine_id: str
    boot_id: str


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def host_facts(root_dir: Path) -> HostFacts:
    """Blocking: /proc, /etc/os-release, the root dir's filesystem."""
    meminfo = {}
    for line in _read("/proc/meminfo").splitlines():
        key, _, rest = line.partition(":")
        meminfo[key] = int(rest.split()[0]) * 1024 if rest.split() else 0
    pretty = "Linux"
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            pretty = line.split("=", 1)[1].strip('"')
    root_dir.mkdir(parents=True, exist_ok=True)
    du = shutil.disk_usage(root_dir)
    try:
        cpus = len(os.sched_getaffinity(0))
    except OSError:
        cpus = os.cpu_count() or 1
    pids_used = sum(1 for p in os.listdir("/proc") if p.isdigit())
    return HostFacts(cpus=cpus, memory_bytes=meminfo.get("MemTotal", 0),
                     memory_available=meminfo.get("MemAvailable", 0), disk_bytes=du.total, disk_available=du.free,
                     pids_max=int(_read("/proc/sys/kernel/pid_max", "32768") or 32768), pids_used=pids_used,
                     kernel=platform.release(), os_image=pretty,
                     arch=_ARCH.get(platform.machine(), platform.machine()),
                     machine_id=_read("/etc/machine-id"), boot_id=_read("/proc/sys/kernel/random/boot_id"))


def _condition(ctype: str, true: bool, reason: str, message: str, old: dict[str, Any], now: str) -> dict[str, Any]:
    status = "True" if true else "False"
    prev = old.get(ctype) or {}
    return {"type": ctype, "status": status, "lastHeartbeatTime": now,
            "lastTransitionTime": prev.get("lastTransitionTime") if prev.get("status") == status else now,
            "reason": reason, "message": message}


def node_status(facts: HostFacts, *, max_pods: int, host_ip: str, hostname: str, port: int, ready: bool,
                not_ready_message: str = "", old: dict[str, Any] | None = None) -> dict[str, Any]:
    """The Node's ``status`` as the kubelet reports it."""
    now = now_rfc3339()
    old_conds = {c.get("type"): c for c in (old or {}).get("conditions") or []}
    mem_pressure = facts.memory_available < 100 * 1024 * 1024
    disk_pressure = facts.disk_bytes > 0 and facts.disk_available < facts.disk_bytes * 0.10
    pid_pressure = facts.pids_used > facts.pids_max * 0.9
    capacity = {"cpu": str(facts.cpus), "memory": f"{facts.memory_bytes // 1024}Ki", "pods": str(max_pods),
                "ephemeral-storage": f"{facts.disk_bytes // 1024}Ki", "hugepages-2Mi": "0"}
    conditions = [
        _condition("MemoryPressure", mem_pressure,
                   "KubeletHasInsufficientMemory" if mem_pressure else "KubeletHasSufficientMemory",
                   "kubelet has insufficient memory available" if mem_pressure
                   else "kubelet has sufficient memory available", old_conds, now),
        _condition("DiskPressure", disk_pressure, "KubeletHasDiskPressure" if disk_pressure
                   else "KubeletHasNoDiskPressure", "kubelet has disk pressure" if disk_pressure
                   else "kubelet has no disk pressure", old_conds, now),
        _condition("PIDPressure", pid_pressure, "KubeletHasInsufficientPID" if pid_pressure
                   else "KubeletHasSufficientPID", "kubelet has insufficient PID available" if pid_pressure
                   else "kubelet has sufficient PID available", old_conds, now),
        _condition("Ready", ready, "KubeletReady" if ready else "KubeletNotReady",
                   "kubelet is posting ready status" if ready else not_ready_message, old_conds, now),
    ]
    return {
        "capacity": capacity, "allocatable": dict(capacity), "conditions": conditions,
        "addresses": [{"type": "InternalIP", "address": host_ip}, {"type": "Hostname", "address": hostname}],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        "nodeInfo": {"machineID": facts.machine_id, "systemUUID": facts.machine_id, "bootID": facts.boot_id,
                     "kernelVersion": facts.kernel, "osImage": facts.os_image, "containerRuntimeVersion":
                     RUNTIME_VERSION, "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": "",
                     "operatingSystem": "linux", "architecture": facts.arch},
    }


def _stable(status: dict[str, Any]) -> Any:
    """The status without heartbeat times, to tell a real change from a heartbeat."""
    s = dict(status)
    s["conditions"] = [{k: v for k, v in c.items() if k != "lastHeartbeatTime"} for c in status.get("conditions", [])]
    s.pop("images", None)
    return s


class NodeStatusManager:
    """Registers the Node, renews its Lease, reports its status. ``ready()`` says if the kubelet is healthy."""

    def __init__(self, client: Any, *, node_name: str, root_dir: Path, host_ip: str, port: int, max_pods: int = 110,
                 pod_cidr: str = "", labels: dict[str, str] | None = None, ready: Callable[[], tuple[bool, str]]
                 = lambda: (True, ""), lease_period: float = 10.0, status_period: float = 10.0,
                 report_every: float = 300.0, recorder: Any = None) -> None:
        self.client = client
        self.recorder = recorder                 # Events about the Node (NodeReady / NodeNotReady), if any
        self.node_name = node_name
        self.root_dir = root_dir
        self.host_ip = host_ip
        self.port = port
        self.max_pods = max_pods
        self.pod_cidr = pod_cidr
        self.labels = labels or {}
        self.ready = ready
        self.lease_period = lease_period
        self.status_period = status_period
        self.report_every = report_every
        self.node: dict[str, Any] | None = None
        self._last_reported: Any = None
        self._last_report_time = 0.0
        self.allocatable: dict[str, str] = {}
        self.lease_renewals = 0

    def _node_object(self, facts: HostFacts) -> dict[str, Any]:
        labels = {"kubernetes.io/hostname": self.node_name, "kubernetes.io/os": "linux",
                  "kubernetes.io/arch": facts.arch, "beta.kubernetes.io/os": "linux",
                  "beta.kubernetes.io/arch": facts.arch, **self.labels}
        spec: dict[str, Any] = {}
        if self.pod_cidr:
            spec["podCIDR"] = self.pod_cidr
            spec["podCIDRs"] = [self.pod_cidr]
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": self.node_name, "labels": labels,
                             "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                             "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
                "spec": spec}

    async def register(self, *, report: bool = True) -> dict[str, Any]:
        """Create the Node, or adopt the existing one (labels merged, podCIDR set if it has none);
        ``report``: write its status at once (else the caller does, once its port is known)."""
        facts = await asyncio.to_thread(host_facts, self.root_dir)
        obj = self._node_object(facts)
        try:
            self.node = await self.client.create(NODES, obj)
            logger.info("registered node %s", self.node_name)
        except AlreadyExists:
            existing = await self.client.get(NODES, self.node_name)
            patch: dict[str, Any] = {"metadata": {"labels": obj["metadata"]["labels"]}}
            if self.pod_cidr and not (existing.get("spec") or {}).get("podCIDR"):
                patch["spec"] = obj["spec"]
            self.node = await self.client.patch(NODES, self.node_name, patch)
            logger.info("node %s already registered: adopted", self.node_name)
        if report:
            await self.report(force=True, facts=facts)
        return self.node or {}

    @property
    def effective_pod_cidr(self) -> str:
        return ((self.node or {}).get("spec") or {}).get("podCIDR") or self.pod_cidr

    async def report(self, *, force: bool = False, facts: HostFacts | None = None) -> bool:
        """Patch the node status if it changed (or ``force``, or it is time). Returns True if written."""
        facts = facts or await asyncio.to_thread(host_facts, self.root_dir)
        ok, why = self.ready()
        old = (self.node or {}).get("status") or {}
        status = node_status(facts, max_pods=self.max_pods, host_ip=self.host_ip, hostname=self.node_name,
                             port=self.port, ready=ok, not_ready_message=why, old=old)
        self.allocatable = dict(status["allocatable"])
        loop = asyncio.get_running_loop()
        stable = _stable(status)
        if not force and stable == self._last_reported and loop.time() - self._last_report_time < self.report_every:
            return False
        try:
            self.node = await self.client.patch(NODES, self.node_name, {"status": status}, subresource="status")
        except NotFound:
            logger.warning("node %s vanished: registering again", self.node_name)
            await self.register()
            return True
        self._last_reported = stable
        self._last_report_time = loop.time()
        was_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in old.get("conditions") or [])
        if self.recorder is not None and self.node and ok != was_ready:
            state = "NodeReady" if ok else "NodeNotReady"        # as the kubelet's Ready condition setter does
            self.recorder.event(self.node, "Normal", state, f"Node {self.node_name} status is now: {state}")
        return True

    async def renew_lease(self) -> None:
        leases = lookup("leases")
        spec = {"holderIdentity": self.node_name, "leaseDurationSeconds": 40, "renewTime": now_micro()}
        try:
            lease = await self.client.get(leases, self.node_name, LEASE_NS)
        except NotFound:
            owner = []
            if self.node and (self.node.get("metadata") or {}).get("uid"):
                owner = [{"apiVersion": "v1", "kind": "Node", "name": self.node_name,
                          "uid": self.node["metadata"]["uid"]}]
            obj = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                   "metadata": {"name": self.node_name, "namespace": LEASE_NS, "ownerReferences": owner},
                   "spec": spec}
            await self.client.create(leases, obj, LEASE_NS)
            self.lease_renewals += 1
            return
        lease = dict(lease)
        lease["spec"] = {**(lease.get("spec") or {}), **spec}
        await self.client.update(leases, lease, namespace=LEASE_NS)      # resourceVersion precondition
        self.lease_renewals += 1

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._loop(self.renew_lease, self.lease_period, "lease renewal"))
            tg.create_task(self._loop(self.report, self.status_period, "node status"))

    @staticmethod
    async def _loop(fn: Callable[[], Any], period: float, what: str) -> None:
        while True:
            try:
                await fn()
            except Conflict:
                continue                                     # someone else wrote in between: retry at once
            except (ApiError, OSError) as exc:
                logger.warning("%s failed: %s", what, exc)
            except Exception:
                logger.exception("%s failed", what)
            await asyncio.sleep(period)
