"""The cgroup v1 driver: one directory per controller hierarchy under /sys/fs/cgroup/<ctrl>.

Traps handled: cpu and cpuacct may be separate hierarchies or co-mounted (``cpu,cpuacct`` with
symlinks) — hierarchies are deduplicated by their real path; cpuset needs ``cpuset.cpus`` and
``cpuset.mems`` seeded from the parent at every new level; paths always start at the hierarchy's
root, never at the caller's own (possibly nested) cgroup; the devices rules are set on the leaf
only (deny-all needs a cgroup without children). Kill on destroy: freeze, SIGKILL, thaw.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from . import cgfs
from .model import CgroupBusyError, CgroupError, CgroupStats, Resources, clean_path
from .oom import OomWatcher, eventfd_watcher

#: the controllers kubelite uses, in the order they are joined
CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids")


class V1Manager:
    """cgroup v1 driver. ``root`` is relative to every hierarchy's root (default ``kubelite/<node>``)."""

    version = 1

    def __init__(self, root: str, base: str | Path = "/sys/fs/cgroup") -> None:
        self.root = clean_path(root)
        self.base = Path(base)
        self.hierarchies: dict[str, Path] = {}        # first controller -> hierarchy mount dir
        self._by_ctrl: dict[str, Path] = {}           # every controller -> its hierarchy
        seen: set[str] = set()
        for ctrl in CONTROLLERS:
            d = self.base / ctrl
            if not (d / "cgroup.procs").exists():
                continue
            real = os.path.realpath(d)
            self._by_ctrl[ctrl] = Path(real)
            if real in seen:                          # co-mounted: cpu -> cpu,cpuacct
                continue
            seen.add(real)
            self.hierarchies[ctrl] = Path(real)
        if "memory" not in self.hierarchies:
            raise CgroupError(f"no cgroup v1 memory hierarchy under {self.base}")

    # ------------------------------------------------------------------------------------ paths
    def _dirs(self, path: str) -> dict[str, Path]:
        rel = clean_path(f"{self.root}/{clean_path(path)}")
        return {c: h / rel for c, h in self.hierarchies.items()}

    def _ctrl_dir(self, ctrl: str, path: str) -> Path:
        """The directory of ``path`` in the hierarchy that holds ``ctrl``'s files."""
        h = self._by_ctrl.get(ctrl)
        if h is None:
            raise CgroupError(f"controller {ctrl} is not mounted")
        return h / clean_path(f"{self.root}/{clean_path(path)}")

    def dir_of(self, controller: str, path: str = "") -> Path:
        """Absolute directory of ``path`` in ``controller``'s hierarchy (for the runtime's OCI spec)."""
        return self._ctrl_dir(controller, path)

    def procs_files(self, path: str) -> list[str]:
        """Every ``cgroup.procs`` a process must be written to, to be fully inside ``path``
        (a child writes its pid to each before exec)."""
        return [str(d / "cgroup.procs") for d in self._dirs(path).values()]

    # ---------------------------------------------------------------------------------- lifecycle
    def exists(self, path: str) -> bool:
        return self._dirs(path)["memory"].is_dir()

    def create(self, path: str, resources: Resources | None = None) -> None:
        """mkdir ``path`` (and missing parents) in every hierarchy, then apply ``resources``."""
        cgfs.create(self, path, resources, self._mkdirs)

    def _mkdirs(self, full: str) -> None:
        for ctrl, hier in self.hierarchies.items():
            if self._mkdir_leaf(ctrl, hier, full):
                continue
            cur = hier
            for part in full.split("/"):
                parent, cur = cur, cur / part
                if cgfs.mkdir(cur) and ctrl == "cpuset":
                    self._seed_cpuset(parent, cur)
                elif ctrl == "cpuset" and not cgfs.read(cur / "cpuset.cpus").strip():
                    self._seed_cpuset(parent, cur)

    @staticmethod
    def _mkdir_leaf(ctrl: str, hier: Path, full: str) -> bool:
        """The common case in one mkdir: the parent exists (and, for cpuset, is seeded). False: walk."""
        leaf = os.path.join(hier, full)
        try:
            os.mkdir(leaf, 0o755)
        except OSError:
            return False
        if ctrl == "cpuset":
            parent = os.path.dirname(leaf)
            for f in ("cpuset.cpus", "cpuset.mems"):
                with open(os.path.join(parent, f), "rb") as src:
                    value = src.read().strip()
                if not value:
                    return False  # an unseeded parent: the walk seeds it and us
                cgfs.write(Path(leaf, f), value.decode())
        return True

    @staticmethod
    def _seed_cpuset(parent: Path, child: Path) -> None:
        for f in ("cpuset.cpus", "cpuset.mems"):
            if not cgfs.read(child / f).strip():
                cgfs.write(child / f, cgfs.read(parent / f).strip())

    def update(self, path: str, r: Resources) -> None:
        """Apply the non-zero fields of ``r`` (see :class:`Resources`)."""
        d = self._dirs(path)
        cpu = self._ctrl_dir("cpu", path)
        if r.cpu_shares:
            cgfs.write(cpu / "cpu.shares", r.cpu_shares)
        if r.cpu_quota_us or r.cpu_period_us:
            period = r.cpu_period_us or 100_000
            quota = r.cpu_quota_us if r.cpu_quota_us > 0 else -1
            try:
                cgfs.write(cpu / "cpu.cfs_period_us", period)
                cgfs.write(cpu / "cpu.cfs_quota_us", quota)
            except CgroupError:          # the other order is valid when the period shrinks
                cgfs.write(cpu / "cpu.cfs_quota_us", quota)
                cgfs.write(cpu / "cpu.cfs_period_us", period)
        if r.memory_limit_bytes:
            cgfs.write(d["memory"] / "memory.limit_in_bytes", r.memory_limit_bytes)
        if r.pids_limit and "pids" in d:
            cgfs.write(d["pids"] / "pids.max", r.pids_limit if r.pids_limit > 0 else "max")
        if "cpuset" in d:
            if r.cpuset_cpus:
                cgfs.write(d["cpuset"] / "cpuset.cpus", r.cpuset_cpus)
            if r.cpuset_mems:
                cgfs.write(d["cpuset"] / "cpuset.mems", r.cpuset_mems)
        if r.devices is not None and "devices" in d:
            for rule in r.devices:
                cgfs.write(d["devices"] / ("devices.allow" if rule.allow else "devices.deny"), rule.v1_line())

    def add_process(self, path: str, pid: int) -> None:
        for f in self.procs_files(path):
            cgfs.write(Path(f), pid)

    def pids(self, path: str, recursive: bool = True) -> list[int]:
        """Processes in ``path`` (and below when ``recursive``), from the memory hierarchy."""
        top = self._dirs(path)["memory"]
        if not top.is_dir():
            return []
        dirs = cgfs.subdirs_bottom_up(top) if recursive else [top]
        return sorted({p for sub in dirs for p in cgfs.read_pids(sub / "cgroup.procs")})

    def children(self, path: str) -> list[str]:
        """Names of the direct child cgroups of ``path``."""
        top = self._dirs(path)["memory"]
        try:
            return sorted(e.name for e in os.scandir(top) if e.is_dir())
        except FileNotFoundError:
            return []

    def destroy(self, path: str, kill: bool = False, timeout: float = 5.0) -> None:
        """Remove ``path`` and everything below it from every hierarchy. ``kill``: SIGKILL what
        is left first (frozen, so nothing forks meanwhile). Idempotent; raises
        :class:`CgroupBusyError` if processes remain."""
        if not clean_path(f"{self.root}/{clean_path(path)}"):
            raise CgroupError("refusing to destroy the hierarchy's root cgroup")
        if self._rmdir_leaves(path):
            return
        deadline = time.monotonic() + timeout
        if kill:
            self._kill_all(path, deadline)
        elif self.pids(path):
            raise CgroupBusyError(f"cgroup {path} still has processes {self.pids(path)}")
        for d in self._dirs(path).values():
            cgfs.rmdir_tree(d, deadline)

    def _rmdir_leaves(self, path: str) -> bool:
        """The common case in one rmdir per hierarchy: ``path`` is an empty leaf (or gone) everywhere. False
        (nothing lost: what was removed is removed) when one is busy, has children or fails otherwise."""
        for d in self._dirs(path).values():
            try:
                os.rmdir(d)
            except FileNotFoundError:
                continue
            except OSError:
                return False
        return True

    def prune_parents(self) -> None:
        """Remove the root's ancestors (``kubelite``) where empty — for ``kubelite down``, after
        ``destroy("")``. Shared ancestors still in use by another node stay."""
        parts = self.root.split("/")[:-1]
        for h in self.hierarchies.values():
            cgfs.prune_empty([h / "/".join(parts[:i]) for i in range(len(parts), 0, -1)])

    def _kill_all(self, path: str, deadline: float) -> None:
        fz = self._dirs(path).get("freezer")
        frozen = False
        if fz is not None and fz.is_dir() and self.pids(path):
            try:
                cgfs.write(fz / "freezer.state", "FROZEN")
                frozen = True
                while "FROZEN" not in cgfs.read(fz / "freezer.state") and time.monotonic() < deadline:
                    time.sleep(0.001)
            except CgroupError:
                frozen = False
        try:
            cgfs.sigkill(self.pids(path))
        finally:
            if frozen and fz is not None:
                for sub in cgfs.subdirs_bottom_up(fz):
                    try:
                        cgfs.write(sub / "freezer.state", "THAWED")
                    except CgroupError:
                        pass
        cgfs.wait_empty(path, lambda: self.pids(path), deadline)

    # ---------------------------------------------------------------------------------- stats
    def stats(self, path: str) -> CgroupStats:
        d = self._dirs(path)
        mem = d["memory"]
        if not mem.is_dir():
            raise CgroupError(f"cgroup {path} does not exist")
        ms = cgfs.read_keyed(mem / "memory.stat")
        usage = cgfs.read_int(mem / "memory.usage_in_bytes")
        inactive = ms.get("total_inactive_file", ms.get("inactive_file", 0))
        oc = cgfs.read_keyed(mem / "memory.oom_control")
        limit = cgfs.read_int(mem / "memory.limit_in_bytes")
        cpustat = cgfs.read_keyed(self._ctrl_dir("cpu", path) / "cpu.stat")
        return CgroupStats(
            cpu_usage_ns=cgfs.read_int(self._ctrl_dir("cpuacct", path) / "cpuacct.usage"),
            memory_usage_bytes=usage,
            memory_working_set_bytes=max(0, usage - inactive),
            memory_rss_bytes=ms.get("total_rss", ms.get("rss", 0)),
            memory_limit_bytes=0 if limit >= 1 << 62 else limit,
            oom_kills=oc.get("oom_kill", 0),
            oom_events=oc.get("oom_kill", 0),     # v1 has no separate OOM-event counter
            cpu_periods=cpustat.get("nr_periods", 0),
            cpu_throttled_periods=cpustat.get("nr_throttled", 0),
            cpu_throttled_ns=cpustat.get("throttled_time", 0),
            pids_current=cgfs.read_int(d["pids"] / "pids.current") if "pids" in d else 0,
        )

    def oom_kills(self, path: str) -> int:
        """The kernel's count of OOM kills in ``path`` (``memory.oom_control`` oom_kill)."""
        return cgfs.read_keyed(self._dirs(path)["memory"] / "memory.oom_control").get("oom_kill", 0)

    def watch_oom(self, path: str) -> OomWatcher:
        """An fd that becomes readable on every OOM in ``path`` (eventfd on memory.oom_control)."""
        mem = self._dirs(path)["memory"]
        return eventfd_watcher(mem, lambda: self.oom_kills(path))
