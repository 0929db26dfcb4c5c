"""The OCI runtime's cgroup step: make ``linux.cgroupsPath``, apply ``linux.resources``, join, destroy.

A small adapter over cgroup v1 files (this host's controllers are v1), standing in until the node's
``kubelet.runtime.cgroups.Manager`` lands; the runtime touches cgroups only through these functions.
``cgroupsPath`` is absolute, relative to each hierarchy's mount (as runc reads it). Runs in the
fork server / shim, never in the asyncio process (except the read-only ``stats``).
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

ROOT = "/sys/fs/cgroup"
CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "devices", "freezer")


def _dirs(path: str, cpuset: bool = False) -> list[str]:
    rel = path.strip("/")
    ctls = CONTROLLERS + (("cpuset",) if cpuset else ())
    return [f"{ROOT}/{c}/{rel}" for c in ctls if os.path.isdir(f"{ROOT}/{c}")]


def _write(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _mkdir_cpuset(d: str) -> None:
    """cpuset dirs are born with empty cpus/mems: seed every new level from its parent."""
    parts = d[len(f"{ROOT}/cpuset/"):].split("/")
    cur = f"{ROOT}/cpuset"
    for p in parts:
        nxt = f"{cur}/{p}"
        if not os.path.isdir(nxt):
            os.mkdir(nxt)
            for f in ("cpuset.cpus", "cpuset.mems"):
                _write(f"{nxt}/{f}", _read(f"{cur}/{f}").strip())
        cur = nxt


def create(path: str, resources: dict[str, Any]) -> list[str]:
    """mkdir -p ``path`` in every hierarchy and apply ``resources``; returns the cgroup.procs files to join."""
    cpus = (resources.get("cpu") or {}).get("cpus", "")
    made: list[str] = []
    try:
        for d in _dirs(path, cpuset=bool(cpus)):
            if "/cpuset/" in d:
                _mkdir_cpuset(d)
            elif not os.path.isdir(d):
                os.makedirs(d)
                made.append(d)
        apply(path, resources)
    except BaseException:
        for d in reversed(made):
            try:
                os.rmdir(d)
            except OSError:
                pass
        raise
    return [f"{d}/cgroup.procs" for d in _dirs(path, cpuset=bool(cpus))]


def apply(path: str, resources: dict[str, Any]) -> None:
    """Write ``linux.resources`` (memory, cpu, pids, devices) into the cgroup at ``path``."""
    rel = path.strip("/")
    mem = resources.get("memory") or {}
    if mem.get("limit"):
        d = f"{ROOT}/memory/{rel}"
        _write(f"{d}/memory.limit_in_bytes", str(mem["limit"]))
        if os.path.exists(f"{d}/memory.memsw.limit_in_bytes"):
            try:  # no swap beyond the memory limit, as Kubernetes runs without swap
                _write(f"{d}/memory.memsw.limit_in_bytes", str(mem["limit"]))
            except OSError:
                pass
    cpu = resources.get("cpu") or {}
    d = f"{ROOT}/cpu/{rel}"
    if cpu.get("shares"):
        _write(f"{d}/cpu.shares", str(cpu["shares"]))
    if cpu.get("quota"):
        _write(f"{d}/cpu.cfs_period_us", str(cpu.get("period") or 100000))
        _write(f"{d}/cpu.cfs_quota_us", str(cpu["quota"]))
    if cpu.get("cpus"):
        _write(f"{ROOT}/cpuset/{rel}/cpuset.cpus", cpu["cpus"])
    pids = resources.get("pids") or {}
    if pids.get("limit", 0) > 0:
        _write(f"{ROOT}/pids/{rel}/pids.max", str(pids["limit"]))
    devices = resources.get("devices")
    if devices:
        d = f"{ROOT}/devices/{rel}"
        for rule in devices:
            t = rule.get("type", "a")
            major = "*" if rule.get("major") is None else str(rule["major"])
            minor = "*" if rule.get("minor") is None else str(rule["minor"])
            entry = "a" if t == "a" and major == "*" and minor == "*" else f"{t} {major}:{minor} {rule.get('access', 'rwm')}"
            _write(f"{d}/devices.allow" if rule.get("allow") else f"{d}/devices.deny", entry)


def pids(path: str) -> list[int]:
    """Processes in the cgroup (its memory hierarchy is authoritative here)."""
    try:
        return [int(x) for x in _read(f"{ROOT}/pids/{path.strip('/')}/cgroup.procs").split()]
    except FileNotFoundError:
        return []


def oom_kills(path: str) -> int:
    """The memory cgroup's ``oom_kill`` counter (0 when absent)."""
    try:
        for line in _read(f"{ROOT}/memory/{path.strip('/')}/memory.oom_control").splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


def destroy(path: str, timeout: float = 2.0) -> None:
    """SIGKILL what is left in the cgroup, then rmdir it in every hierarchy; idempotent."""
    deadline = time.monotonic() + timeout
    for pid in pids(path):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for d in _dirs(path, cpuset=True):
        while True:
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.005)


def stats(path: str) -> dict[str, int]:
    """CPU, memory, OOM and throttling figures of the cgroup (read-only, cheap)."""
    rel = path.strip("/")
    out: dict[str, int] = {}
    try:
        out["cpu_usage_ns"] = int(_read(f"{ROOT}/cpuacct/{rel}/cpuacct.usage"))
    except (FileNotFoundError, ValueError):
        out["cpu_usage_ns"] = 0
    try:
        usage = int(_read(f"{ROOT}/memory/{rel}/memory.usage_in_bytes"))
        stat = dict(line.split() for line in _read(f"{ROOT}/memory/{rel}/memory.stat").splitlines())
        inactive = int(stat.get("total_inactive_file", 0))
        out["memory_usage_bytes"] = usage
        out["memory_working_set_bytes"] = max(0, usage - inactive)
        out["memory_rss_bytes"] = int(stat.get("total_rss", 0))
    except FileNotFoundError:
        pass
    out["oom_events"] = oom_kills(path)
    try:
        cs = dict(line.split() for line in _read(f"{ROOT}/cpu/{rel}/cpu.stat").splitlines())
        out["cpu_periods"] = int(cs.get("nr_periods", 0))
        out["cpu_throttled_periods"] = int(cs.get("nr_throttled", 0))
        out["cpu_throttled_ns"] = int(cs.get("throttled_time", 0))
    except FileNotFoundError:
        pass
    return out
