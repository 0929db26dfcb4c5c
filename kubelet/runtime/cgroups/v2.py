"""The cgroup v2 (unified) driver: one tree under /sys/fs/cgroup.

Controllers are enabled level by level in ``cgroup.subtree_control`` (only those the parent offers
in ``cgroup.controllers``); limits go to ``cpu.max``, ``cpu.weight`` (converted from shares),
``memory.max`` (+ ``memory.swap.max`` 0: no swap, as Kubernetes' NoSwap; ``memory.oom.group`` 1,
as the kubelet sets it unless singleProcessOOMKill), ``pids.max``,
``cpuset.cpus``/``.mems``; kill is ``cgroup.kill`` (5.14+) with a freeze+SIGKILL fallback; stats
from ``cpu.stat``, ``memory.current``/``memory.stat``/``memory.events``. The device allowlist on v2
is an eBPF program attached to the cgroup (see :mod:`.bpf`).

On this host (hybrid) it is tested against a fake tree of plain files: ``base`` can be any
directory, and a fake (non-cgroupfs) tree is cleaned up with its files on destroy.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from kubelet.runtime import linux

from . import cgfs
from .model import CgroupBusyError, CgroupError, CgroupStats, Resources, clean_path, shares_to_weight
from .oom import OomWatcher, inotify_watcher

WANTED = ("cpuset", "cpu", "io", "memory", "pids")


class V2Manager:
    """cgroup v2 driver. ``root`` is relative to the unified hierarchy's root ``base``."""

    version = 2

    def __init__(self, root: str, base: str | Path = "/sys/fs/cgroup") -> None:
        self.root = clean_path(root)
        self.base = Path(base)
        if not (self.base / "cgroup.controllers").exists():
            raise CgroupError(f"{self.base} is not a cgroup v2 hierarchy (no cgroup.controllers)")
        self.fake = linux.mount_fstype(self.base) != "cgroup2"

    def _dir(self, path: str) -> Path:
        return self.base / clean_path(f"{self.root}/{clean_path(path)}")

    def dir_of(self, controller: str = "", path: str = "") -> Path:
        """Absolute directory of ``path`` (one tree on v2; ``controller`` is ignored)."""
        del controller
        return self._dir(path)

    def procs_files(self, path: str) -> list[str]:
        return [str(self._dir(path) / "cgroup.procs")]

    def exists(self, path: str) -> bool:
        return self._dir(path).is_dir()

    # ---------------------------------------------------------------------------------- lifecycle
    def create(self, path: str, resources: Resources | None = None) -> None:
        """mkdir ``path`` and missing parents, enabling controllers on the way down."""
        cgfs.create(self, path, resources, self._mkdirs)

    def _mkdirs(self, full: str) -> None:
        cur = self.base
        for part in full.split("/"):
            self._enable_controllers(cur)
            cur = cur / part
            if cgfs.mkdir(cur) and self.fake:
                self._fake_files(cur)

    def _enable_controllers(self, d: Path) -> None:
        available = set(cgfs.read(d / "cgroup.controllers").split())
        enabled = set(cgfs.read(d / "cgroup.subtree_control").split())
        missing = [c for c in WANTED if c in available and c not in enabled]
        if missing:
            cgfs.write(d / "cgroup.subtree_control", " ".join(f"+{c}" for c in missing))
            if self.fake:   # the kernel would show the enabled set, not what was written
                (d / "cgroup.subtree_control").write_text(" ".join(sorted(enabled | set(missing))))

    def _fake_files(self, d: Path) -> None:
        """A fake tree has no kernel to populate a new directory: copy what a real one shows."""
        parent = d.parent
        ctrls = cgfs.read(parent / "cgroup.subtree_control").split()
        defaults = {
            "cgroup.controllers": " ".join(ctrls), "cgroup.subtree_control": "", "cgroup.procs": "",
            "cgroup.events": "populated 0\nfrozen 0\n", "cgroup.freeze": "0", "cgroup.kill": "",
            "cpu.max": "max 100000", "cpu.weight": "100", "memory.max": "max", "memory.swap.max": "max",
            "memory.current": "0", "memory.oom.group": "0", "memory.stat": "anon 0\nfile 0\ninactive_file 0\n",
            "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n", "pids.max": "max",
            "pids.current": "0", "cpu.stat": "usage_usec 0\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n",
            "cpuset.cpus": "", "cpuset.mems": "",
        }
        for name, value in defaults.items():
            (d / name).write_text(value)

    def update(self, path: str, r: Resources) -> None:
        d = self._dir(path)
        if r.cpu_shares:
            cgfs.write(d / "cpu.weight", shares_to_weight(r.cpu_shares))
        if r.cpu_quota_us or r.cpu_period_us:
            period = r.cpu_period_us or 100_000
            quota = str(r.cpu_quota_us) if r.cpu_quota_us > 0 else "max"
            cgfs.write(d / "cpu.max", f"{quota} {period}")
        if r.memory_limit_bytes:
            cgfs.write(d / "memory.max", r.memory_limit_bytes if r.memory_limit_bytes > 0 else "max")
            if (d / "memory.swap.max").exists():
                cgfs.write(d / "memory.swap.max", 0)
            if (d / "memory.oom.group").exists():   # Kubernetes' default: an OOM kills the whole container
                cgfs.write(d / "memory.oom.group", 1)
        if r.pids_limit:
            cgfs.write(d / "pids.max", r.pids_limit if r.pids_limit > 0 else "max")
        if r.cpuset_cpus:
            cgfs.write(d / "cpuset.cpus", r.cpuset_cpus)
        if r.cpuset_mems:
            cgfs.write(d / "cpuset.mems", r.cpuset_mems)
        if r.devices is not None:
            self._set_devices(path, r)

    def _set_devices(self, path: str, r: Resources) -> None:
        from . import bpf  # imported lazily: only v2 hosts with a device policy need it
        assert r.devices is not None
        if self.fake:
            (self._dir(path) / "kubelite.devices").write_text(bpf.describe(r.devices))
            return
        bpf.attach_device_filter(self._dir(path), r.devices)

    def add_process(self, path: str, pid: int) -> None:
        cgfs.write(self._dir(path) / "cgroup.procs", pid)

    def pids(self, path: str, recursive: bool = True) -> list[int]:
        top = self._dir(path)
        if not top.is_dir():
            return []
        dirs = cgfs.subdirs_bottom_up(top) if recursive else [top]
        return sorted({p for sub in dirs for p in cgfs.read_pids(sub / "cgroup.procs")})

    def children(self, path: str) -> list[str]:
        try:
            return sorted(e.name for e in os.scandir(self._dir(path)) if e.is_dir())
        except FileNotFoundError:
            return []

    def destroy(self, path: str, kill: bool = False, timeout: float = 5.0) -> None:
        if not clean_path(f"{self.root}/{clean_path(path)}"):
            raise CgroupError("refusing to destroy the hierarchy's root cgroup")
        deadline = time.monotonic() + timeout
        d = self._dir(path)
        if not d.is_dir():
            return
        if self.pids(path):
            if not kill:
                raise CgroupBusyError(f"cgroup {path} still has processes {self.pids(path)}")
            self._kill_all(path, d, deadline)
        cgfs.rmdir_tree(d, deadline, plain_files=self.fake)

    def prune_parents(self) -> None:
        """Remove the root's ancestors where empty (see :meth:`V1Manager.prune_parents`)."""
        parts = self.root.split("/")[:-1]
        dirs = [self.base / "/".join(parts[:i]) for i in range(len(parts), 0, -1)]
        if self.fake:
            for d in dirs:
                if d.is_dir() and not any(x.is_dir() for x in d.iterdir()):
                    cgfs.rmdir_tree(d, 0, plain_files=True)
            return
        cgfs.prune_empty(dirs)

    def _kill_all(self, path: str, d: Path, deadline: float) -> None:
        if (d / "cgroup.kill").exists():
            cgfs.write(d / "cgroup.kill", 1)
        else:
            cgfs.write(d / "cgroup.freeze", 1)
            try:
                cgfs.sigkill(self.pids(path))
            finally:
                cgfs.write(d / "cgroup.freeze", 0)
        cgfs.wait_empty(path, lambda: self.pids(path), deadline)

    # ---------------------------------------------------------------------------------- stats
    def stats(self, path: str) -> CgroupStats:
        d = self._dir(path)
        if not d.is_dir():
            raise CgroupError(f"cgroup {path} does not exist")
        cs = cgfs.read_keyed(d / "cpu.stat")
        ms = cgfs.read_keyed(d / "memory.stat")
        ev = cgfs.read_keyed(d / "memory.events")
        usage = cgfs.read_int(d / "memory.current")
        return CgroupStats(
            cpu_usage_ns=cs.get("usage_usec", 0) * 1000,
            memory_usage_bytes=usage,
            memory_working_set_bytes=max(0, usage - ms.get("inactive_file", 0)),
            memory_rss_bytes=ms.get("anon", 0),
            memory_limit_bytes=cgfs.read_int(d / "memory.max"),
            oom_kills=ev.get("oom_kill", 0),
            oom_events=ev.get("oom", 0),
            cpu_periods=cs.get("nr_periods", 0),
            cpu_throttled_periods=cs.get("nr_throttled", 0),
            cpu_throttled_ns=cs.get("throttled_usec", 0) * 1000,
            pids_current=cgfs.read_int(d / "pids.current"),
        )

    def oom_kills(self, path: str) -> int:
        return cgfs.read_keyed(self._dir(path) / "memory.events").get("oom_kill", 0)

    def watch_oom(self, path: str) -> OomWatcher:
        """An inotify fd that becomes readable whenever ``memory.events`` changes."""
        return inotify_watcher(self._dir(path) / "memory.events", lambda: self.oom_kills(path))

