"""The OCI runtime's cgroup step over the node's ``kubelet.runtime.cgroups.Manager``.

``cgroupsPath`` in a spec is absolute (relative to each hierarchy's mount, as runc reads it), so the
Manager here has root "". These are the only cgroup calls of the OCI runtime, the shim and the service:
create (with ``linux.resources``), the procs files a child joins before exec, OOM kill count, stats,
destroy. Blocking file I/O: from the asyncio side, call them in a thread.
"""

from __future__ import annotations

import os
import time
from functools import cache
from typing import Any

from kubelet.runtime.cgroups import CgroupError, Manager, Resources, V1Manager, detect

ROOT = "/sys/fs/cgroup"


@cache
def manager() -> Manager:
    return detect(root="")


def _rel(path: str) -> str:
    return path.strip("/")


def create(path: str, resources: dict[str, Any]) -> list[str]:
    """mkdir -p ``path`` and apply OCI ``resources``; returns the cgroup.procs files to join."""
    m = manager()
    m.create(_rel(path), Resources.from_oci(resources) if resources else None)
    return m.procs_files(_rel(path))


def files(path: str) -> dict[str, Any]:
    """What a shim needs of the cgroup at ``path`` (made or not yet), so that it never imports this module
    (the Manager's imports are paid on every fork): ``{"path", "procs": [files to join], "late": [those of
    them that enforce the devices allowlist], "oom_file"}``. A shim joins the init to ``procs`` minus ``late``
    at once and to ``late`` only once the init has made its device nodes (mknod needs them allowed).
    ``tasks`` (v1 only): the hierarchies' ``tasks`` files, through which a single-threaded process moves
    itself by writing ``0`` without the global threadgroup lock, so without waiting for an RCU grace period
    (a write to ``cgroup.procs`` takes 4-20 ms here for it)."""
    m = manager()
    mem = m.dir_of("memory", _rel(path))
    procs = m.procs_files(_rel(path))
    if isinstance(m, V1Manager):
        oom = mem / "memory.oom_control"
        devices = m.hierarchies.get("devices")
        late = [f for f in procs if devices is not None and f.startswith(f"{devices}/")]
        tasks = [os.path.join(os.path.dirname(f), "tasks") for f in procs]
    else:
        oom, late, tasks = mem / "memory.events", list(procs), []  # one hierarchy, its BPF device filter too
    return {"path": path, "procs": procs, "late": late, "tasks": tasks, "oom_file": str(oom)}


def prepare(path: str, resources: dict[str, Any]) -> dict[str, Any]:
    """``create`` then ``files``."""
    create(path, resources)
    return files(path)


def oom_kills(path: str) -> int:
    """The cgroup's OOM-kill counter (0 when it has none)."""
    try:
        return manager().oom_kills(_rel(path))
    except (CgroupError, OSError, KeyError):
        return 0


def destroy(path: str, timeout: float = 5.0, everywhere: bool = False) -> None:
    """SIGKILL what is left, rmdir ``path``; ``everywhere``: also in the hierarchies the Manager does not
    drive (runc/crun use e.g. ``systemd`` too). Idempotent."""
    manager().destroy(_rel(path), kill=True, timeout=timeout)
    if not everywhere:
        return
    deadline = time.monotonic() + timeout
    for h in sorted(os.listdir(ROOT)):
        d = f"{ROOT}/{h}/{_rel(path)}"
        if not os.path.isdir(d):
            continue
        for sub, _dirs, _files in os.walk(d, topdown=False):  # children first
            while True:
                try:
                    os.rmdir(sub)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.005)


def stats(path: str) -> dict[str, int]:
    """CPU, memory, OOM and throttling figures (``cri.ContainerStats`` field names)."""
    try:
        s = manager().stats(_rel(path))
    except (CgroupError, OSError):
        return {}
    return {"cpu_usage_ns": s.cpu_usage_ns, "memory_usage_bytes": s.memory_usage_bytes,
            "memory_working_set_bytes": s.memory_working_set_bytes, "memory_rss_bytes": s.memory_rss_bytes,
            "oom_events": s.oom_events, "cpu_periods": s.cpu_periods, "cpu_throttled_periods": s.cpu_throttled_periods,
            "cpu_throttled_ns": s.cpu_throttled_ns}
