"""cgroups for pods and containers: one ``Manager`` Protocol, a v1 and a v2 driver, ``detect()``.

Every path is relative to the manager's root (default ``kubelite/<node-name>``), in Kubernetes'
layout ``kubepods[/burstable|/besteffort]/pod<uid>/<container-id>`` (build it with
:func:`pod_cgroup_parent` and :func:`container_cgroup_path`; the QoS class is the kubelet's call).

Typical runtime use::

    mgr = detect(node_name="node1")
    mgr.create("kubepods/burstable/pod<uid>")                 # pod level, no limits needed
    mgr.create(cpath, Resources.from_cpu_memory(cpu_request_milli=250, cpu_limit_milli=500,
                                                memory_limit_bytes=64 << 20,
                                                devices=DEFAULT_DEVICES))
    files = mgr.procs_files(cpath)      # the child writes its pid to each, then execs
    with mgr.watch_oom(cpath) as w: ...  # fileno() for add_reader; count() = kernel oom_kill
    mgr.stats(cpath); mgr.destroy(cpath, kill=True)

All calls do blocking file I/O: from an event loop, run them in a thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from .model import (
    ALLOW_ALL_DEVICES, DEFAULT_DEVICES, KUBEPODS, QOS_BESTEFFORT, QOS_BURSTABLE, QOS_GUARANTEED,
    CgroupBusyError, CgroupError, CgroupStats, DeviceRule, Resources, container_cgroup_path,
    milli_cpu_to_quota, milli_cpu_to_shares, pod_cgroup_parent, qos_cgroup_parent, shares_to_weight,
)
from .oom import OomWatcher
from .v1 import V1Manager
from .v2 import V2Manager

DEFAULT_BASE = "/sys/fs/cgroup"


class Manager(Protocol):
    """What both drivers offer. ``path`` is always relative to ``root``."""

    version: int
    root: str

    def create(self, path: str, resources: Resources | None = None) -> None:
        """Create ``path`` (and missing parents; idempotent), then apply ``resources``."""
        ...

    def update(self, path: str, resources: Resources) -> None: ...
    def exists(self, path: str) -> bool: ...

    def procs_files(self, path: str) -> list[str]:
        """Absolute ``cgroup.procs`` files a process writes its pid to, to join ``path``."""
        ...

    def add_process(self, path: str, pid: int) -> None: ...
    def pids(self, path: str, recursive: bool = True) -> list[int]: ...
    def children(self, path: str) -> list[str]: ...

    def destroy(self, path: str, kill: bool = False, timeout: float = 5.0) -> None:
        """Remove ``path`` and its subtree; ``kill`` SIGKILLs what is left first. Idempotent."""
        ...

    def prune_parents(self) -> None:
        """After ``destroy("")``: remove the root's empty ancestors (``kubelite``)."""
        ...

    def stats(self, path: str) -> CgroupStats: ...
    def oom_kills(self, path: str) -> int: ...
    def watch_oom(self, path: str) -> OomWatcher: ...
    def dir_of(self, controller: str, path: str = "") -> Path: ...


def default_root(node_name: str) -> str:
    return f"kubelite/{node_name}"


def detect(root: str | None = None, *, node_name: str = "", base: str | Path = DEFAULT_BASE) -> Manager:
    """The driver for this host: v2 when ``<base>/cgroup.controllers`` exists (a pure v2 host),
    else v1 (also on hybrid hosts, whose ``unified`` mount holds no useful controller).

    Args:
        root: path under each hierarchy's root; default ``kubelite/<node_name>``.
        node_name: used for the default root.
        base: where cgroupfs is mounted (a fake tree in tests).
    Raises:
        CgroupError: neither layout found.
    """
    if root is None:
        if not node_name:
            raise ValueError("detect() needs a root or a node_name")
        root = default_root(node_name)
    b = Path(base)
    if (b / "cgroup.controllers").exists():
        return V2Manager(root, b)
    if (b / "memory" / "cgroup.procs").exists():
        return V1Manager(root, b)
    raise CgroupError(f"no usable cgroup hierarchy under {b}")


__all__ = [
    "ALLOW_ALL_DEVICES", "DEFAULT_DEVICES", "KUBEPODS", "QOS_BESTEFFORT", "QOS_BURSTABLE",
    "QOS_GUARANTEED", "CgroupBusyError", "CgroupError", "CgroupStats", "DeviceRule", "Manager",
    "OomWatcher", "Resources", "V1Manager", "V2Manager", "container_cgroup_path", "default_root",
    "detect", "milli_cpu_to_quota", "milli_cpu_to_shares", "pod_cgroup_parent", "qos_cgroup_parent",
    "shares_to_weight",
]
