"""Resource arithmetic for scheduling: quantities, a pod's effective requests, a node's allocatable.

A pod's request is kube's ``PodRequests``: the sum over regular containers (plus restartable
"sidecar" init containers), or the largest init container if that is more, plus ``overhead``.
CPU is counted in millicores, everything else in whole units (bytes, pods). No I/O here.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Any

CPU = "cpu"
MEMORY = "memory"
EPHEMERAL = "ephemeral-storage"
PODS = "pods"

# Defaults the scorers use for containers that request nothing (kube's schedutil.DefaultMilliCPURequest etc.).
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024

_SUFFIX: dict[str, Decimal] = {
    "": Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"),
    "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12),
    "P": Decimal(10**15), "E": Decimal(10**18),
    "Ki": Decimal(2**10), "Mi": Decimal(2**20), "Gi": Decimal(2**30), "Ti": Decimal(2**40),
    "Pi": Decimal(2**50), "Ei": Decimal(2**60),
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


def parse_quantity(value: Any) -> Decimal:
    """Parse a Kubernetes quantity (``"100m"``, ``"64Mi"``, ``"1.5"``, ``2``) to an exact Decimal.

    Raises:
        ValueError: the text is not a quantity.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Decimal(str(value))
    m = _QUANTITY.match(str(value).strip())
    if not m:
        raise ValueError(f"quantities must match the regular expression "
                         f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {value!r}")
    try:
        return Decimal(m.group(1)) * _SUFFIX[m.group(2) or ""]
    except InvalidOperation:
        raise ValueError(f"invalid quantity {value!r}") from None


def to_units(name: str, value: Any) -> int:
    """Millicores for ``cpu``, whole units (rounded up) for everything else."""
    if isinstance(value, str):
        return _to_units_cached(name, value)
    return _to_units(name, value)


@functools.lru_cache(maxsize=4096)
def _to_units_cached(name: str, value: str) -> int:
    return _to_units(name, value)


def _to_units(name: str, value: Any) -> int:
    q = parse_quantity(value)
    if name == CPU:
        q = q * 1000
    return int(q.to_integral_value(rounding=ROUND_CEILING))


@dataclass(slots=True)
class Resource:
    """A bag of resource amounts (cpu in millicores); mutable, used for sums in NodeInfo."""

    milli_cpu: int = 0
    memory: int = 0
    ephemeral_storage: int = 0
    allowed_pods: int = 0
    scalar: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_list(cls, rl: dict[str, Any] | None) -> "Resource":
        r = cls()
        for name, value in (rl or {}).items():
            r.set(name, to_units(name, value))
        return r

    def get(self, name: str) -> int:
        if name == CPU:
            return self.milli_cpu
        if name == MEMORY:
            return self.memory
        if name == EPHEMERAL:
            return self.ephemeral_storage
        if name == PODS:
            return self.allowed_pods
        return self.scalar.get(name, 0)

    def set(self, name: str, amount: int) -> None:
        if name == CPU:
            self.milli_cpu = amount
        elif name == MEMORY:
            self.memory = amount
        elif name == EPHEMERAL:
            self.ephemeral_storage = amount
        elif name == PODS:
            self.allowed_pods = amount
        else:
            self.scalar[name] = amount

    def add(self, other: "Resource", sign: int = 1) -> None:
        self.milli_cpu += sign * other.milli_cpu
        self.memory += sign * other.memory
        self.ephemeral_storage += sign * other.ephemeral_storage
        for k, v in other.scalar.items():
            self.scalar[k] = self.scalar.get(k, 0) + sign * v

    def set_max(self, other: "Resource") -> None:
        self.milli_cpu = max(self.milli_cpu, other.milli_cpu)
        self.memory = max(self.memory, other.memory)
        self.ephemeral_storage = max(self.ephemeral_storage, other.ephemeral_storage)
        for k, v in other.scalar.items():
            self.scalar[k] = max(self.scalar.get(k, 0), v)

    def names(self) -> list[str]:
        out = []
        if self.milli_cpu:
            out.append(CPU)
        if self.memory:
            out.append(MEMORY)
        if self.ephemeral_storage:
            out.append(EPHEMERAL)
        out.extend(k for k, v in self.scalar.items() if v)
        return out


def _container_requests(c: dict[str, Any]) -> Resource:
    res = c.get("resources") or {}
    # A container with limits but no requests requests its limits (apiserver defaulting does this
    # too; done here as well so pods written before defaulting still count).
    return Resource.from_list(res.get("requests") or res.get("limits"))


def pod_requests(pod: dict[str, Any]) -> Resource:
    """kube's ``resource.PodRequests``: max(sum(containers) + sidecars, each init step) + overhead."""
    spec = pod.get("spec") or {}
    total = Resource()
    for c in spec.get("containers") or ():
        total.add(_container_requests(c))
    sidecars = Resource()
    init_max = Resource()
    for c in spec.get("initContainers") or ():
        req = _container_requests(c)
        if c.get("restartPolicy") == "Always":
            sidecars.add(req)
            step = Resource()
            step.add(sidecars)
        else:
            step = Resource()
            step.add(req)
            step.add(sidecars)
        init_max.set_max(step)
    total.add(sidecars)
    total.set_max(init_max)
    overhead = spec.get("overhead")
    if overhead:
        total.add(Resource.from_list(overhead))
    return total


def non_zero_requests(pod: dict[str, Any], req: Resource) -> tuple[int, int]:
    """(milli_cpu, memory) for scoring: kube substitutes 100m / 200Mi for an absent request."""
    cpu, mem = req.milli_cpu, req.memory
    containers = (pod.get("spec") or {}).get("containers") or ()
    if cpu == 0 or mem == 0:
        cpu = cpu or DEFAULT_MILLI_CPU_REQUEST * max(1, len(containers))
        mem = mem or DEFAULT_MEMORY_REQUEST * max(1, len(containers))
    return cpu, mem
