"""Leak checks for tests and benchmarks: what a run left on the machine, found by its name/path marker.

Every run names what it makes after a marker of its own (its data dir, its cgroup root), so these look
only at resources carrying that marker and never touch another helper's: processes whose command line
mentions it, mounts under it, pod cgroups under a cgroup root, network links.
"""

from __future__ import annotations

import os
import signal
import subprocess


def procs_mentioning(text: str) -> list[int]:
    """PIDs (other than this process) whose command line contains ``text``."""
    out = []
    for e in os.scandir("/proc"):
        if not e.name.isdigit() or int(e.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{e.name}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    out.append(int(e.name))
        except OSError:
            pass
    return out


def kill_procs_mentioning(text: str) -> None:
    """SIGKILL every process whose command line contains ``text``."""
    for pid in procs_mentioning(text):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def mounts() -> set[str]:
    """Mount points of this mount namespace."""
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4] for line in f}


def mounts_under(path: str) -> list[str]:
    """Mount points starting with ``path``."""
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path)]


def pod_cgroups(rel: str) -> list[str]:
    """Pod cgroups (a ``/pod`` path component) under ``rel`` in every controller hierarchy."""
    out = []
    for c in os.listdir("/sys/fs/cgroup"):
        for dirpath, _dirs, _files in os.walk(f"/sys/fs/cgroup/{c}/{rel}"):
            if "/pod" in dirpath:
                out.append(dirpath)
    return out


def remove_cgroups(rel: str, *, kill: bool = False) -> None:
    """Remove the cgroup tree ``rel`` in every hierarchy, deepest first; ``kill`` SIGKILLs its members first."""
    for c in os.listdir("/sys/fs/cgroup"):
        base = f"/sys/fs/cgroup/{c}/{rel}"
        if kill:
            for dirpath, _dirs, _files in os.walk(base):
                try:
                    with open(f"{dirpath}/cgroup.procs") as f:
                        for pid in f.read().split():
                            os.kill(int(pid), 9)
                except (OSError, ValueError):
                    pass
        if os.path.isdir(base):
            subprocess.run(["find", base, "-depth", "-type", "d", "-exec", "rmdir", "{}", ";"], check=False,
                           stderr=subprocess.DEVNULL)


def links() -> set[str]:
    """Network interface names of this network namespace."""
    return set(os.listdir("/sys/class/net"))
