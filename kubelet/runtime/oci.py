"""OCI bundle ``config.json`` from a CRI ContainerConfig + the image config + the pod sandbox. No I/O but reads.

Defaults are the ones Kubernetes users meet under containerd/runc: Docker's default capability set,
runc's masked and read-only /proc paths, /dev as tmpfs with the standard nodes, /dev/pts, the pod's
/dev/shm, /dev/mqueue, /sys read-only, a devices cgroup that denies everything but the standard
character devices (and, unlike Docker, no ``b *:* m``: a container cannot even mknod a disk).
Seccomp is not applied.
"""

from __future__ import annotations

import json
import os
import resource
from dataclasses import dataclass, field
from typing import Any

from kubelet import cri
from kubelet.runtime.linux import CAPABILITIES

DEFAULT_CAPS = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
                "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
                "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE")
MASKED_PATHS = ("/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                "/sys/devices/virtual/powercap")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
DEVICES = (("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7), ("/dev/random", 1, 8),
           ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0))
ALLOWED_DEVICES = (("c", None, None, "m"), ("c", 1, 3, "rwm"), ("c", 1, 5, "rwm"), ("c", 1, 7, "rwm"),
                   ("c", 1, 8, "rwm"), ("c", 1, 9, "rwm"), ("c", 5, 0, "rwm"), ("c", 5, 1, "rwm"),
                   ("c", 5, 2, "rwm"), ("c", 136, None, "rwm"), ("c", 10, 200, "rwm"))
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class SpecError(ValueError):
    """The container cannot be expressed (bad user, runAsNonRoot violated, unknown capability)."""


@dataclass(frozen=True, slots=True)
class SandboxView:
    """What a container needs of its pod sandbox."""

    namespaces: dict[str, str]  # kind ("network", "ipc", "uts", "pid", "user") -> path, or "host"; absent: new
    hostname: str
    shm: str = ""                               # host dir (tmpfs) shared as /dev/shm; "" = own tmpfs
    etc_files: dict[str, str] = field(default_factory=dict)  # "/etc/hosts" -> host path
    uid_map: tuple[tuple[int, int, int], ...] = ()  # (container, host, size) when the pod has a userns
    gid_map: tuple[tuple[int, int, int], ...] = ()


def process_args(cfg: cri.ContainerConfig, image: dict[str, Any]) -> list[str]:
    """Kubernetes' command/args rules over the image's Entrypoint/Cmd."""
    entry, cmd = list(image.get("Entrypoint") or []), list(image.get("Cmd") or [])
    if cfg.command:
        argv = list(cfg.command) + list(cfg.args)
    elif cfg.args:
        argv = entry + list(cfg.args)
    else:
        argv = entry + cmd
    if not argv:
        raise SpecError("no command: the pod gives none and the image has no ENTRYPOINT or CMD")
    return argv


def _lookup(layers: list[str], rel: str, name: str, field_no: int) -> int | None:
    for layer in reversed(layers):
        p = os.path.join(layer, rel)
        if os.path.exists(p):
            with open(p) as f:
                for line in f:
                    parts = line.strip().split(":")
                    if len(parts) > field_no and parts[0] == name:
                        return int(parts[field_no])
            return None
    return None


def resolve_user(spec_user: str, layers: list[str]) -> tuple[int, int]:
    """The image's USER (``uid``, ``name``, ``uid:gid``, ``name:group``) as numbers, via its /etc files."""
    if not spec_user:
        return 0, 0
    user, _, group = spec_user.partition(":")
    if user.isdigit():
        uid = int(user)
        gid = None
    else:
        uid_opt = _lookup(layers, "etc/passwd", user, 2)
        if uid_opt is None:
            raise SpecError(f"user {user!r} not found in the image's /etc/passwd")
        uid, gid = uid_opt, _lookup(layers, "etc/passwd", user, 3)
    if group:
        gid = int(group) if group.isdigit() else _lookup(layers, "etc/group", group, 2)
        if gid is None:
            raise SpecError(f"group {group!r} not found in the image's /etc/group")
    return uid, gid if gid is not None else 0


def capabilities(sec: cri.LinuxSecurityContext) -> list[str]:
    if sec.privileged:
        return [f"CAP_{c}" for c in CAPABILITIES]
    caps = set(DEFAULT_CAPS)
    for name in sec.capabilities.add:
        if name.upper() == "ALL":
            caps |= {f"CAP_{c}" for c in CAPABILITIES}
            continue
        full = name.upper() if name.upper().startswith("CAP_") else f"CAP_{name.upper()}"
        if full[4:] not in CAPABILITIES:
            raise SpecError(f"securityContext.capabilities.add: unknown capability {name!r}")
        caps.add(full)
    for name in sec.capabilities.drop:
        if name.upper() == "ALL":
            caps = set()
            continue
        full = name.upper() if name.upper().startswith("CAP_") else f"CAP_{name.upper()}"
        caps.discard(full)
    return sorted(caps)


def linux_resources(res: cri.LinuxResources) -> dict[str, Any]:
    """CRI ``LinuxResources`` → OCI ``linux.resources`` (memory, cpu, pids; devices are the caller's)."""
    resources: dict[str, Any] = {}
    if res.memory_limit_in_bytes:
        resources["memory"] = {"limit": res.memory_limit_in_bytes}
    cpu: dict[str, Any] = {}
    if res.cpu_shares:
        cpu["shares"] = res.cpu_shares
    if res.cpu_quota:
        cpu["quota"], cpu["period"] = res.cpu_quota, res.cpu_period or 100000
    if res.cpuset_cpus:
        cpu["cpus"] = res.cpuset_cpus
    if cpu:
        resources["cpu"] = cpu
    if res.pids_limit:
        resources["pids"] = {"limit": res.pids_limit}
    return resources


def generate(cid: str, cfg: cri.ContainerConfig, image: dict[str, Any], layers: list[str],
             sandbox: SandboxView, cgroups_path: str, rootfs_mounts: list[dict[str, Any]]) -> dict[str, Any]:
    """The OCI runtime spec for container ``cid``. ``image`` is the OCI image config's ``config`` object."""
    sec = cfg.security
    if sec.run_as_user is not None:
        uid, gid = sec.run_as_user, sec.run_as_group if sec.run_as_group is not None else 0
        if sec.run_as_group is None:
            gid = resolve_user(str(image.get("User") or ""), layers)[1] if not image.get("User") else gid
    else:
        uid, gid = resolve_user(sec.run_as_username or str(image.get("User") or ""), layers)
        if sec.run_as_group is not None:
            gid = sec.run_as_group
    if sec.run_as_non_root and uid == 0:
        raise SpecError("container has runAsNonRoot and image will run as root")
    env: dict[str, str] = {}
    for e in image.get("Env") or []:
        k, _, v = e.partition("=")
        env[k] = v
    env.setdefault("PATH", DEFAULT_PATH)
    env["HOSTNAME"] = sandbox.hostname
    for k, v in cfg.envs:
        env[k] = v
    caps = capabilities(sec)
    res = cfg.resources
    resources: dict[str, Any] = {"devices": [{"allow": False, "access": "rwm"}]}
    if sec.privileged:
        resources["devices"] = [{"allow": True, "access": "rwm"}]
    else:
        resources["devices"] += [{"allow": True, "type": t, "major": ma, "minor": mi, "access": a}
                                 for t, ma, mi, a in ALLOWED_DEVICES]
    resources.update(linux_resources(res))
    shm = ({"destination": "/dev/shm", "type": "bind", "source": sandbox.shm, "options": ["rbind", "rprivate"]}
           if sandbox.shm else
           {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]})
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        shm,
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "rw" if sec.privileged else "ro"]},
    ]
    taken = {m.container_path for m in cfg.mounts}
    for dest, src in sandbox.etc_files.items():
        if dest not in taken:
            mounts.append({"destination": dest, "type": "bind", "source": src, "options": ["rbind", "rprivate"]})
    for m in cfg.mounts:
        opts = ["rbind", m.propagation if m.propagation in ("rslave", "rshared") else "rprivate"]
        if m.readonly:
            opts.append("ro")
        mounts.append({"destination": m.container_path, "type": "bind", "source": m.host_path, "options": opts})
    namespaces: list[dict[str, str]] = [{"type": "mount"}]
    for kind in ("user", "network", "ipc", "uts", "pid"):
        path = sandbox.namespaces.get(kind)
        if path == "host" or (kind == "user" and not path):
            continue
        namespaces.append({"type": kind, "path": path} if path else {"type": kind})
    nofile = min(1048576, resource.getrlimit(resource.RLIMIT_NOFILE)[1])  # no CAP_SYS_RESOURCE in some VMs
    spec: dict[str, Any] = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": cfg.tty,
            "user": {"uid": uid, "gid": gid, "additionalGids": list(sec.supplemental_groups)},
            "args": process_args(cfg, image),
            "env": [f"{k}={v}" for k, v in env.items()],
            "cwd": cfg.working_dir or image.get("WorkingDir") or "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps, "inheritable": []},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}],
            "noNewPrivileges": bool(sec.no_new_privs) and not sec.privileged,
            "oomScoreAdj": res.oom_score_adj,
        },
        "root": {"path": "rootfs", "readonly": sec.readonly_rootfs},
        "hostname": sandbox.hostname,
        "mounts": mounts,
        "annotations": dict(cfg.annotations),
        "linux": {
            "namespaces": namespaces,
            "resources": resources,
            "cgroupsPath": cgroups_path,
            "devices": [{"path": p, "type": "c", "major": ma, "minor": mi, "fileMode": 0o666, "uid": 0, "gid": 0}
                        for p, ma, mi in DEVICES],
            "maskedPaths": [] if sec.privileged else list(MASKED_PATHS),
            "readonlyPaths": [] if sec.privileged else list(READONLY_PATHS),
            "rootfsPropagation": "rprivate",
        },
    }
    if sandbox.uid_map:
        spec["linux"]["uidMappings"] = [{"containerID": c, "hostID": h, "size": s} for c, h, s in sandbox.uid_map]
        spec["linux"]["gidMappings"] = [{"containerID": c, "hostID": h, "size": s} for c, h, s in sandbox.gid_map]
    if rootfs_mounts:
        spec["annotations"]["org.kubelite.rootfs.mounts"] = json.dumps(rootfs_mounts)
    return spec
