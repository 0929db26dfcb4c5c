"""Pod QoS class, cgroup parent and container resources: pure functions of the pod spec.

Kubernetes' rules (``pkg/apis/core/v1/helper/qos``, ``pkg/kubelet/cm``): a pod is Guaranteed when
every container has cpu and memory limits equal to its requests, BestEffort when no container asks
for anything, Burstable otherwise. Requests default to limits. cpu.shares = milli×1024/1000 (min 2),
quota from the cpu limit with a 100 ms period, memory limit in bytes, OOM score from the QoS class.
The only I/O: the host's memory size, read once, which the Burstable OOM score is relative to.
"""

from __future__ import annotations

import functools
from fractions import Fraction
from typing import Any, Mapping

from kubelet.cri import LinuxResources
from kubelite.api.quantity import parse_value as parse_quantity

Pod = Mapping[str, Any]

CPU_PERIOD_US = 100_000
MIN_SHARES = 2
MAX_SHARES = 262_144
GUARANTEED_OOM_SCORE_ADJ = -997
BESTEFFORT_OOM_SCORE_ADJ = 1000

def _parsed(values: Mapping[str, Any] | None) -> dict[str, Fraction]:
    out: dict[str, Fraction] = {}
    for k, v in (values or {}).items():
        try:
            out[k] = parse_quantity(v)
        except (ValueError, TypeError, ArithmeticError):
            continue                     # the apiserver validates quantities; a bad one here counts as unset
    return out


def _resources(container: Mapping[str, Any]) -> tuple[dict[str, Fraction], dict[str, Fraction]]:
    res = container.get("resources") or {}
    limits = _parsed(res.get("limits"))
    requests = _parsed(res.get("requests"))
    for k, v in limits.items():          # requests default to limits (API defaulting)
        requests.setdefault(k, v)
    return requests, limits


def qos_class(pod: Pod) -> str:
    """``Guaranteed`` | ``Burstable`` | ``BestEffort``."""
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    requests: dict[str, Fraction] = {}
    limits: dict[str, Fraction] = {}
    guaranteed = True
    for c in containers:
        req, lim = _resources(c)
        for k, v in req.items():
            if k in ("cpu", "memory") and v != 0:
                requests[k] = requests.get(k, Fraction(0)) + v
        have = set()
        for k, v in lim.items():
            if k in ("cpu", "memory") and v != 0:
                have.add(k)
                limits[k] = limits.get(k, Fraction(0)) + v
        if have != {"cpu", "memory"}:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and requests == limits:
        return "Guaranteed"
    return "Burstable"


def pod_resources(pod: Pod) -> LinuxResources:
    """The pod cgroup's settings, as Kubernetes' ``ResourceConfigForPod``: cpu.shares from the pod's
    effective CPU request (the larger of the app containers' sum and any init container's), a CFS quota
    and a memory limit only when every container declares that limit (then their effective sum)."""
    spec = pod.get("spec") or {}
    apps = [_resources(c) for c in spec.get("containers") or []]
    inits = [_resources(c) for c in spec.get("initContainers") or []]

    def effective(kind: str, which: int) -> Fraction:
        total = sum((r[which].get(kind, Fraction(0)) for r in apps), Fraction(0))
        return max([total, *(r[which].get(kind, Fraction(0)) for r in inits)])

    def declared(kind: str) -> bool:
        return bool(apps) and all(r[1].get(kind) for r in apps + inits)

    qos = qos_class(pod)
    shares = MIN_SHARES if qos == "BestEffort" else milli_cpu_to_shares(int(effective("cpu", 0) * 1000))
    quota = period = memory = 0
    if declared("cpu"):
        period = CPU_PERIOD_US
        quota = max(1000, int(effective("cpu", 1) * 1000) * CPU_PERIOD_US // 1000)
    if declared("memory"):
        memory = int(effective("memory", 1))
    return LinuxResources(cpu_period=period, cpu_quota=quota, cpu_shares=shares, memory_limit_in_bytes=memory)


def pod_cgroup_parent(pod: Pod) -> str:
    """``kubepods/pod<uid>``, ``kubepods/burstable/pod<uid>`` or ``kubepods/besteffort/pod<uid>``."""
    uid = (pod.get("metadata") or {}).get("uid", "")
    qos = qos_class(pod)
    if qos == "Guaranteed":
        return f"kubepods/pod{uid}"
    return f"kubepods/{qos.lower()}/pod{uid}"


def milli_cpu_to_shares(milli: int) -> int:
    if milli == 0:
        return MIN_SHARES
    shares = milli * 1024 // 1000
    return max(MIN_SHARES, min(MAX_SHARES, shares))


def container_resources(container: Mapping[str, Any], pod: Pod | None = None) -> LinuxResources:
    """The container's cgroup settings as CRI's ``LinuxResources``."""
    requests, limits = _resources(container)
    cpu_req = requests.get("cpu")
    cpu_lim = limits.get("cpu")
    mem_lim = limits.get("memory")
    shares = milli_cpu_to_shares(int(cpu_req * 1000)) if cpu_req is not None else MIN_SHARES
    quota = 0
    period = 0
    if cpu_lim is not None and cpu_lim > 0:
        period = CPU_PERIOD_US
        quota = max(1000, int(cpu_lim * 1000) * CPU_PERIOD_US // 1000)
    oom = oom_score_adj(pod, requests.get("memory", Fraction(0))) if pod is not None else 0
    return LinuxResources(cpu_period=period, cpu_quota=quota, cpu_shares=shares,
                          memory_limit_in_bytes=int(mem_lim) if mem_lim else 0, oom_score_adj=oom)


def oom_score_adj(pod: Pod, memory_request: Fraction, memory_capacity: int = 0) -> int:
    """Kubernetes' ``GetContainerOOMScoreAdjust``: -997 Guaranteed, 1000 BestEffort, and for Burstable
    ``1000 - 1000 × request / capacity`` kept within 3..999 (the more memory asked for, the later killed)."""
    qos = qos_class(pod)
    if qos == "Guaranteed":
        return GUARANTEED_OOM_SCORE_ADJ
    if qos == "BestEffort":
        return BESTEFFORT_OOM_SCORE_ADJ
    capacity = memory_capacity or machine_memory()
    adj = 1000 - (1000 * int(memory_request)) // capacity if capacity else BESTEFFORT_OOM_SCORE_ADJ
    return max(1000 + GUARANTEED_OOM_SCORE_ADJ, min(BESTEFFORT_OOM_SCORE_ADJ - 1, adj))


@functools.cache
def machine_memory() -> int:
    """The host's MemTotal in bytes (cAdvisor's MemoryCapacity), read once."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def resource_value(container: Mapping[str, Any], resource: str, divisor: str | None = None,
                   node_allocatable: Mapping[str, str] | None = None) -> str:
    """A container's ``limits.cpu``/``requests.memory``/... for the downward API, as Kubernetes renders it.

    Limits not set fall back to the node's allocatable; values are rounded up to the divisor (cpu
    divisor defaults to 1, memory to 1 byte).
    """
    requests, limits = _resources(container)
    kind, _, name = resource.partition(".")
    source = limits if kind == "limits" else requests
    value = source.get(name)
    if value is None:
        if kind == "limits" and node_allocatable and name in node_allocatable:
            value = parse_quantity(node_allocatable[name])
        else:
            value = Fraction(0)
    div = parse_quantity(divisor) if divisor else Fraction(1)
    if div == 0:
        div = Fraction(1)
    units = value / div
    ceil = -(-units.numerator // units.denominator)
    return str(ceil)
