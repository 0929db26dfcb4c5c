"""What the cgroup drivers take and give: resources, stats, device rules, path builders, conversions.

Pure values and arithmetic, no I/O. The conversions follow Kubernetes (``pkg/kubelet/cm``) and runc:
CPU request → ``cpu.shares`` (v1) → ``cpu.weight`` (v2, the 2025 quadratic-in-log mapping), CPU
limit → CFS quota with a 100 ms period, and the kubepods path layout
``kubepods[/burstable|/besteffort]/pod<uid>/<container-id>``. The QoS class itself is the kubelet's
decision; this module only turns a class and a uid into a path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from kubelite.api.errors import KubeliteError

# Kubernetes' constants (pkg/kubelet/cm/helpers_linux.go)
MIN_SHARES = 2
MAX_SHARES = 262144
SHARES_PER_CPU = 1024
MILLI_CPU_TO_CPU = 1000
QUOTA_PERIOD_US = 100_000          # 100 ms
MIN_QUOTA_PERIOD_US = 1_000        # 1 ms
MAX_WEIGHT = 10_000

KUBEPODS = "kubepods"
QOS_GUARANTEED = "Guaranteed"
QOS_BURSTABLE = "Burstable"
QOS_BESTEFFORT = "BestEffort"


class CgroupError(KubeliteError):
    """A cgroup operation failed; ``str()`` names the file and the kernel's reason."""


class CgroupBusyError(CgroupError):
    """destroy() without kill found processes still in the cgroup (or they did not die in time)."""


# ------------------------------------------------------------------------------------------ devices
@dataclass(frozen=True, slots=True)
class DeviceRule:
    """One devices-cgroup rule, as in OCI ``linux.resources.devices``.

    ``type`` is ``a`` (all), ``c`` or ``b``; ``major``/``minor`` -1 is the wildcard ``*``;
    ``access`` is a subset of ``rwm``.
    """

    allow: bool
    type: str = "a"
    major: int = -1
    minor: int = -1
    access: str = "rwm"

    def v1_line(self) -> str:
        """The line written to ``devices.allow`` / ``devices.deny``: ``c 1:3 rwm``, ``a``."""
        if self.type == "a":
            return "a"
        mj = "*" if self.major < 0 else str(self.major)
        mn = "*" if self.minor < 0 else str(self.minor)
        return f"{self.type} {mj}:{mn} {self.access}"


def _c(major: int, minor: int, access: str = "rwm") -> DeviceRule:
    return DeviceRule(True, "c", major, minor, access)


#: Docker's default device cgroup (moby ``oci.DefaultLinuxSpec`` + runc's ``AllowedDevices``): deny
#: everything, then mknod of any char/block device (so ``mknod`` succeeds but opening a disk node
#: fails), the standard character devices, ptys and tun. Privileged containers get ALLOW_ALL_DEVICES.
DEFAULT_DEVICES: tuple[DeviceRule, ...] = (
    DeviceRule(False, "a"),
    DeviceRule(True, "c", -1, -1, "m"),
    DeviceRule(True, "b", -1, -1, "m"),
    _c(1, 3),      # /dev/null
    _c(1, 5),      # /dev/zero
    _c(1, 7),      # /dev/full
    _c(1, 8),      # /dev/random
    _c(1, 9),      # /dev/urandom
    _c(5, 0),      # /dev/tty
    _c(5, 1),      # /dev/console
    _c(5, 2),      # /dev/ptmx
    _c(136, -1),   # /dev/pts/*
    _c(10, 200),   # /dev/net/tun
)
ALLOW_ALL_DEVICES: tuple[DeviceRule, ...] = (DeviceRule(True, "a"),)


# ---------------------------------------------------------------------------------------- resources
@dataclass(frozen=True, slots=True)
class Resources:
    """Limits for one cgroup. 0 / "" / None = leave unset (the kernel's default: unlimited).

    ``cpu_shares`` is the v1 value (2..262144); the v2 driver converts it with
    :func:`shares_to_weight`. ``cpu_quota_us`` > 0 sets a CFS quota per ``cpu_period_us`` (default
    100 ms). ``devices`` None leaves the device cgroup alone (pod-level cgroups), otherwise the
    rules replace whatever was there (deny-all first, as runc does).
    """

    cpu_shares: int = 0
    cpu_quota_us: int = 0
    cpu_period_us: int = 0
    memory_limit_bytes: int = 0
    pids_limit: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    devices: tuple[DeviceRule, ...] | None = None

    @classmethod
    def from_cpu_memory(cls, *, cpu_request_milli: int = 0, cpu_limit_milli: int = 0,
                        memory_limit_bytes: int = 0, pids_limit: int = 0,
                        devices: tuple[DeviceRule, ...] | None = None) -> Resources:
        """Kubernetes' container resources → cgroup values (requests → shares, limit → quota)."""
        quota = milli_cpu_to_quota(cpu_limit_milli) if cpu_limit_milli > 0 else 0
        return cls(cpu_shares=milli_cpu_to_shares(cpu_request_milli),   # no request → 2, as Kubernetes
                   cpu_quota_us=quota, cpu_period_us=QUOTA_PERIOD_US if quota else 0,
                   memory_limit_bytes=memory_limit_bytes, pids_limit=pids_limit, devices=devices)


    @classmethod
    def from_oci(cls, res: dict[str, Any] | None) -> Resources:
        """An OCI runtime-spec ``linux.resources`` object (what runc and crun read) → Resources.

        ``devices`` absent → None (left alone); present → the rules in order, as runc applies them.
        """
        res = res or {}
        cpu, mem, pids = res.get("cpu") or {}, res.get("memory") or {}, res.get("pids") or {}
        devices = None
        if "devices" in res:
            devices = tuple(DeviceRule(bool(d.get("allow")), d.get("type") or "a",
                                       -1 if d.get("major") is None else int(d["major"]),
                                       -1 if d.get("minor") is None else int(d["minor"]),
                                       d.get("access") or "rwm") for d in res["devices"] or [])
        return cls(cpu_shares=int(cpu.get("shares") or 0), cpu_quota_us=int(cpu.get("quota") or 0),
                   cpu_period_us=int(cpu.get("period") or 0), memory_limit_bytes=int(mem.get("limit") or 0),
                   pids_limit=int(pids.get("limit") or 0), cpuset_cpus=cpu.get("cpus") or "",
                   cpuset_mems=cpu.get("mems") or "", devices=devices)

    @classmethod
    def from_cri(cls, r: Any, devices: tuple[DeviceRule, ...] | None = None) -> Resources:
        """``kubelet.cri.LinuxResources`` (what the kubelet computed) → Resources."""
        return cls(cpu_shares=r.cpu_shares, cpu_quota_us=r.cpu_quota,
                   cpu_period_us=r.cpu_period or (QUOTA_PERIOD_US if r.cpu_quota else 0),
                   memory_limit_bytes=r.memory_limit_in_bytes, pids_limit=r.pids_limit,
                   cpuset_cpus=r.cpuset_cpus, devices=devices)


@dataclass(frozen=True, slots=True)
class CgroupStats:
    """A snapshot of one cgroup (subtree included), with cAdvisor's meanings."""

    cpu_usage_ns: int = 0               # cumulative
    memory_usage_bytes: int = 0
    memory_working_set_bytes: int = 0   # usage − inactive_file, floored at 0
    memory_rss_bytes: int = 0
    memory_limit_bytes: int = 0         # 0 = unlimited
    oom_kills: int = 0                  # processes OOM-killed in this cgroup
    oom_events: int = 0                 # times the limit was hit and OOM handling ran
    cpu_periods: int = 0
    cpu_throttled_periods: int = 0
    cpu_throttled_ns: int = 0
    pids_current: int = 0


# -------------------------------------------------------------------------------------- conversions
def milli_cpu_to_shares(milli: int) -> int:
    """CPU request in millicores → ``cpu.shares`` (Kubernetes ``MilliCPUToShares``): 0 → 2 (min)."""
    if milli <= 0:
        return MIN_SHARES
    shares = milli * SHARES_PER_CPU // MILLI_CPU_TO_CPU
    return max(MIN_SHARES, min(MAX_SHARES, shares))


def milli_cpu_to_quota(milli: int, period_us: int = QUOTA_PERIOD_US) -> int:
    """CPU limit in millicores → CFS quota in µs for ``period_us`` (min 1 ms); 0 → 0 (no limit)."""
    if milli <= 0:
        return 0
    quota = milli * period_us // MILLI_CPU_TO_CPU
    return max(MIN_QUOTA_PERIOD_US, quota)


def shares_to_weight(shares: int) -> int:
    """``cpu.shares`` [2, 262144] → v2 ``cpu.weight`` [1, 10000], the conversion runc, crun and
    Kubernetes adopted in 2025: l = log2(shares); weight = ⌈10^((l² + 125·l)/612 − 7/34)⌉.
    1024 → 100, 2 → 1, 262144 → 10000. 0 → 0 (unset)."""
    if shares <= 0:
        return 0
    if shares <= MIN_SHARES:
        return 1
    if shares >= MAX_SHARES:
        return MAX_WEIGHT
    lg = math.log2(shares)
    exponent = (lg * lg + 125 * lg) / 612.0 - 7.0 / 34.0
    return int(math.ceil(math.pow(10, exponent)))


# --------------------------------------------------------------------------------------------- paths
def qos_cgroup_parent(qos: str) -> str:
    """``Guaranteed`` → ``kubepods``, ``Burstable`` → ``kubepods/burstable``, ``BestEffort`` →
    ``kubepods/besteffort`` (relative to the node's cgroup root)."""
    if qos == QOS_GUARANTEED:
        return KUBEPODS
    if qos == QOS_BURSTABLE:
        return f"{KUBEPODS}/burstable"
    if qos == QOS_BESTEFFORT:
        return f"{KUBEPODS}/besteffort"
    raise ValueError(f"unknown QoS class {qos!r}")


def pod_cgroup_parent(qos: str, uid: str) -> str:
    """The pod's cgroup, e.g. ``kubepods/burstable/pod<uid>`` (uid as Kubernetes writes it)."""
    if not uid or "/" in uid or uid in (".", ".."):
        raise ValueError(f"invalid pod uid {uid!r}")
    return f"{qos_cgroup_parent(qos)}/pod{uid}"


def container_cgroup_path(pod_parent: str, container_id: str) -> str:
    """``<pod parent>/<container id>``."""
    if not container_id or "/" in container_id or container_id in (".", ".."):
        raise ValueError(f"invalid container id {container_id!r}")
    return f"{pod_parent.strip('/')}/{container_id}"


def clean_path(path: str) -> str:
    """Normalise a cgroup path relative to the root; refuse ``..`` and empty components."""
    parts = [p for p in path.strip("/").split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise ValueError(f"invalid cgroup path {path!r}")
    return "/".join(parts)
