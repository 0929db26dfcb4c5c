"""The container's own setup, run in the processes the shim forks: namespaces, rootfs, pivot_root, exec.

``stage1`` runs in the first child (host PID namespace): join the cgroup, enter or create the user
namespace, join namespaces by path, unshare the new ones, and fork the container's init (PID 1 of a new
PID namespace), whose pid it reports. ``stage2`` runs in that init: make ``/`` private, mount the rootfs
and the spec's mounts, create device nodes, pivot_root, detach the old root, mask paths, report ready,
wait for *start*, drop privileges and exec. Errors travel to the shim as one JSON message on the sync
socket; nothing here returns normally.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import socket
import stat
import time
from typing import Any, NamedTuple

from kubelet.runtime import linux
from kubelet.runtime.linux import (MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_RDONLY, MS_REC,
                                   MS_REMOUNT, MS_SHARED, MS_SLAVE)

MOUNT_FLAGS = {
    "ro": (MS_RDONLY, False), "rw": (MS_RDONLY, True), "nosuid": (MS_NOSUID, False), "suid": (MS_NOSUID, True),
    "nodev": (MS_NODEV, False), "dev": (MS_NODEV, True), "noexec": (MS_NOEXEC, False), "exec": (MS_NOEXEC, True),
    "bind": (MS_BIND, False), "rbind": (MS_BIND | MS_REC, False), "relatime": (linux.MS_RELATIME, False),
    "strictatime": (linux.MS_STRICTATIME, False), "noatime": (linux.MS_NOATIME, False),
}
PROPAGATION = {"private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC, "slave": MS_SLAVE,
               "rslave": MS_SLAVE | MS_REC, "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC}
ROOTFS_MOUNTS_ANNOTATION = "org.kubelite.rootfs.mounts"


def send(sock: socket.socket, msg: dict[str, Any]) -> None:
    sock.send(json.dumps(msg).encode())


def recv(sock: socket.socket) -> dict[str, Any]:
    data = sock.recv(65536)
    if not data:
        raise EOFError("peer closed")
    return json.loads(data)


def parse_options(options: list[str]) -> tuple[int, int, str]:
    """Mount options → (flags, propagation flags, data string)."""
    flags, prop, data = 0, 0, []
    for o in options:
        if o in MOUNT_FLAGS:
            bit, clear = MOUNT_FLAGS[o]
            flags = flags & ~bit if clear else flags | bit
        elif o in PROPAGATION:
            prop |= PROPAGATION[o]
        else:
            data.append(o)
    return flags, prop, ",".join(data)


def secure_join(root: str, path: str) -> str:
    """``root``/``path`` with every symlink resolved as if ``root`` were ``/`` (never escapes ``root``)."""
    parts = [p for p in path.split("/") if p and p != "."]
    resolved: list[str] = []
    hops = 0
    while parts:
        p = parts.pop(0)
        if p == "..":
            if resolved:
                resolved.pop()
            continue
        cand = os.path.join(root, *resolved, p)
        if os.path.islink(cand):
            hops += 1
            if hops > 40:
                raise OSError(40, f"too many symlinks in {path}")
            target = os.readlink(cand)
            if target.startswith("/"):
                resolved = []
            parts = [x for x in target.split("/") if x and x != "."] + parts
            continue
        resolved.append(p)
    return os.path.join(root, *resolved)


# ------------------------------------------------------------------------------------------ stage 1
def stage1(spec: dict[str, Any], sync: socket.socket, procs_files: list[str], direct: bool = False) -> None:
    """First child: cgroup, namespaces, fork PID 1. Reports ``{"pid": n}`` or ``{"error": ...}``; exits.

    ``direct``: the shim already entered the PID namespace for its children (no user namespace), so
    this process is the container's init: no second fork, it goes on with ``stage2`` itself."""
    try:
        pid = os.getpid()
        for f in procs_files:
            linux.write_file(f, str(pid))
        set_oom_score_adj(spec["process"])
        nss = {n["type"]: n.get("path") for n in spec.get("linux", {}).get("namespaces", [])}
        if nss.get("user") and "mount" in nss and not nss["mount"]:
            _idmapped_rootfs(spec, nss["user"])
        if "user" in nss:
            if nss["user"]:
                fd = os.open(nss["user"], os.O_RDONLY | os.O_CLOEXEC)
                linux.setns(fd, linux.CLONE_NEWUSER)
                os.close(fd)
            else:
                linux.unshare(linux.CLONE_NEWUSER)
                send(sync, {"map": pid})
                recv(sync)
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
        new = 0
        for kind, path in nss.items():
            if kind == "user" or (direct and kind == "pid"):
                continue
            if kind == "cgroup" and not path and spec.get("_join"):
                continue  # made in stage2 once we are in our cgroup, so that it is the namespace's root
            if path:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                linux.setns(fd, linux.NAMESPACE_FLAGS[kind])
                os.close(fd)
            else:
                new |= linux.NAMESPACE_FLAGS[kind]
        if new:
            linux.unshare(new)
        if direct:
            stage2(spec, sync)
        child = os.fork()
        if child == 0:
            stage2(spec, sync)
        send(sync, {"pid": child})
        os._exit(0)
    except BaseException as e:  # report, never raise out of a forked child
        try:
            send(sync, {"error": f"{type(e).__name__}: {e}"})
        finally:
            os._exit(1)


def _idmapped_rootfs(spec: dict[str, Any], userns_path: str) -> None:
    """Mount the rootfs overlay as host root in a private mount namespace, its lower layers idmapped into
    the pod's user namespace (mount_setattr), so files owned by host root show as the container's root.
    The container's own mount namespace, made next inside the user namespace, inherits it."""
    extra = spec.get("annotations", {}).get(ROOTFS_MOUNTS_ANNOTATION)
    if not extra:
        return
    linux.unshare(linux.CLONE_NEWNS)
    linux.mount(None, "/", None, MS_PRIVATE | MS_REC)
    userns = os.open(userns_path, os.O_RDONLY | os.O_CLOEXEC)
    rootfs = os.path.join(spec["_bundle"], spec["root"]["path"])
    for m in json.loads(extra):
        for opt in m.get("options", []):
            if opt.startswith("lowerdir="):
                for layer in opt[len("lowerdir="):].split(":"):
                    fd = linux.open_tree(layer, linux.OPEN_TREE_CLONE | linux.OPEN_TREE_CLOEXEC)
                    linux.mount_setattr(fd, linux.MOUNT_ATTR_IDMAP, userns)
                    linux.move_mount(fd, layer)  # over the layer itself, in this mount namespace only
                    os.close(fd)
        flags, _prop, data = parse_options(m.get("options", []))
        linux.mount(m["source"], rootfs, m["type"], flags, data or None)
    os.close(userns)
    spec["_rootfs_mounted"] = True


# ------------------------------------------------------------------------------------------ stage 2
def _mount_entry(rootfs: str, m: dict[str, Any]) -> None:
    dest = secure_join(rootfs, m["destination"])
    mtype = m.get("type") or ""
    if mtype == "cgroup":
        return  # (runc's default spec has one) containers here do not see cgroupfs
    flags, prop, data = parse_options(list(m.get("options", [])))
    src = m.get("source") or mtype
    is_bind = bool(flags & MS_BIND) or mtype == "bind"
    if is_bind:
        if os.path.isdir(src):
            os.makedirs(dest, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            if not os.path.exists(dest):
                os.close(os.open(dest, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
        linux.mount(src, dest, None, MS_BIND | (flags & MS_REC))
        rest = flags & ~(MS_BIND | MS_REC)
        if rest:
            linux.mount(None, dest, None, MS_REMOUNT | MS_BIND | rest)
    else:
        os.makedirs(dest, exist_ok=True)
        try:
            linux.mount(src, dest, mtype, flags, data or None)
        except PermissionError:
            if mtype != "sysfs":
                raise
            # sysfs cannot be mounted from a user namespace that does not own the netns: bind the host's
            linux.mount("/sys", dest, None, MS_BIND | MS_REC)
            linux.mount(None, dest, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    if prop:
        linux.mount(None, dest, None, prop)


def join_cgroup(tasks: list[str], timeout: float = 5.0) -> None:
    """Move this (single-threaded) process into a v1 cgroup by writing ``0`` to each hierarchy's ``tasks``:
    a thread moving itself skips the kernel's global threadgroup lock, whose write side waits for an RCU
    grace period (``cgroup.procs`` or another pid: 4-20 ms here). The caller may still be making the
    cgroup (it does so while we fork and mount): a missing one, or a cpuset not yet seeded (ENOSPC), is
    waited for a little."""
    deadline = time.monotonic() + timeout
    for f in tasks:
        while True:
            try:
                fd = os.open(f, os.O_WRONLY | os.O_CLOEXEC)
                try:
                    os.write(fd, b"0")
                finally:
                    os.close(fd)
                break
            except OSError as e:
                if e.errno not in (errno.ENOENT, errno.ENOSPC) or time.monotonic() > deadline:
                    raise OSError(e.errno, f"join cgroup {f}: {e.strerror}") from None
                time.sleep(0.0005)


# The runtime spec's default devices: a runtime supplies them whether or not the config lists them.
DEFAULT_DEVICES = (("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7), ("/dev/random", 1, 8),
                   ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0))


def _devices(rootfs: str, devices: list[dict[str, Any]], in_userns: bool) -> None:
    listed = {d["path"] for d in devices}
    devices = devices + [{"path": path, "type": "c", "major": major, "minor": minor}
                         for path, major, minor in DEFAULT_DEVICES if path not in listed]
    for d in devices:
        dest = secure_join(rootfs, d["path"])
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        kind = stat.S_IFCHR if d.get("type", "c") in ("c", "u") else stat.S_IFBLK
        if in_userns:  # mknod is not allowed in a user namespace: bind the host's node
            os.close(os.open(dest, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
            linux.mount(d["path"], dest, None, MS_BIND)
            continue
        try:
            os.mknod(dest, kind | d.get("fileMode", 0o666), os.makedev(d["major"], d["minor"]))
        except FileExistsError:                    # the rootfs has it already (as runc: keep it)
            continue
        os.chmod(dest, d.get("fileMode", 0o666))
        os.chown(dest, d.get("uid", 0), d.get("gid", 0))


def _mask(paths: list[str]) -> None:
    for p in paths:
        try:
            try:
                linux.mount("/dev/null", p, None, MS_BIND)  # most are files
            except NotADirectoryError:
                linux.mount("tmpfs", p, "tmpfs", MS_RDONLY)
        except FileNotFoundError:
            pass


def _readonly(paths: list[str]) -> None:
    for p in paths:
        try:
            linux.mount(p, p, None, MS_BIND | MS_REC)
            linux.mount(None, p, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
        except FileNotFoundError:
            pass


def stage2(spec: dict[str, Any], sync: socket.socket) -> None:
    """The container's init: mounts, pivot_root, ready, wait for start, drop privileges, exec."""
    try:
        lx = spec.get("linux", {})
        nss = {n["type"]: n.get("path") for n in lx.get("namespaces", [])}
        in_userns = "user" in nss
        bundle = spec["_bundle"]
        rootfs = os.path.join(bundle, spec["root"]["path"])
        if "mount" in nss:
            linux.mount(None, "/", None, PROPAGATION.get(lx.get("rootfsPropagation", "rprivate"), MS_PRIVATE | MS_REC))
            extra = spec.get("annotations", {}).get(ROOTFS_MOUNTS_ANNOTATION)
            if extra and not spec.get("_rootfs_mounted"):
                for m in json.loads(extra):
                    flags, _prop, data = parse_options(m.get("options", []))
                    linux.mount(m["source"], rootfs, m["type"], flags, data or None)
            else:
                linux.mount(rootfs, rootfs, None, MS_BIND | MS_REC)
            for m in spec.get("mounts", []):
                _mount_entry(rootfs, m)
            _devices(rootfs, lx.get("devices", []), in_userns)
            for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                                 ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx")):
                link = os.path.join(rootfs, "dev", name)
                if os.path.isdir(os.path.join(rootfs, "dev")) and not os.path.lexists(link):
                    os.symlink(target, link)
        if spec.get("_join"):  # after mknod (the devices allowlist would refuse it), while the host's paths show
            join_cgroup(spec["_join"])
            if "cgroup" in nss and not nss["cgroup"]:
                linux.unshare(linux.CLONE_NEWCGROUP)
        if "mount" in nss:
            os.chdir(rootfs)
            linux.pivot_root(".", ".")  # the old root now sits on top of "/" (absolute paths resolve below it)
            os.chdir("/")
            _mask(lx.get("maskedPaths", []))
            _readonly(lx.get("readonlyPaths", []))
            if spec["root"].get("readonly"):
                linux.mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY)
        if "uts" in nss and not nss["uts"] and spec.get("hostname"):
            linux.sethostname(spec["hostname"])
        _lookup_executable(spec["process"])
        plan = prepare_process(spec["process"])
        if spec.get("_reply_fd") is not None:
            # answer the creator ourselves (one process hop fewer), once the shim has recorded us (its
            # state.json: `start` reads it); then the shim hears we are ready
            if not recv(sync).get("recorded"):
                raise RuntimeError("the shim did not record the container")
            with socket.socket(fileno=spec.pop("_reply_fd")) as creator:
                creator.send(json.dumps({"pid": spec["_host_pid"]}).encode())
        send(sync, {"ready": True})
        if "mount" in nss:
            # detach the old root while the caller hears "created": an unmount waits for an (expedited) RCU
            # grace period, 0.1-5 ms here. Before start, so before anything of the container's runs.
            linux.umount2(".", linux.MNT_DETACH)
        start_fd = spec["_start_fd"]
        if os.read(start_fd, 1) != b"s":
            os._exit(1)  # the shim gave up on us before start
        os.close(start_fd)
        _exec(plan, sync)
    except BaseException as e:
        try:
            send(sync, {"error": f"{type(e).__name__}: {e}"})
        finally:
            os._exit(127)


RLIMITS = {name: getattr(resource, name.replace("RLIMIT_", "RLIMIT_")) for name in dir(resource)
           if name.startswith("RLIMIT_")}


def _lookup_executable(proc: dict[str, Any]) -> None:
    """Fail at create, as runc does, when the command cannot be found in the container's PATH."""
    arg0 = proc["args"][0]
    if "/" in arg0:
        path = arg0 if arg0.startswith("/") else os.path.join(proc.get("cwd") or "/", arg0)
        if os.access(path, os.X_OK):
            return
        raise OSError(2, f'exec: "{arg0}": no such file or executable')
    env = dict(e.split("=", 1) for e in proc.get("env", []) if "=" in e)
    for d in env.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(":"):
        if d and os.access(os.path.join(d, arg0), os.X_OK):
            return
    raise OSError(2, f'exec: "{arg0}": executable file not found in $PATH')


def set_oom_score_adj(proc: dict[str, Any]) -> None:
    """Inherited by children; set while still host root.

    Lowering the score needs CAP_SYS_RESOURCE. Where the host withholds it (some VMs and sandboxes do),
    the container keeps the score it inherited, as rootless runc does, instead of failing to start:
    a Guaranteed pod (-997) then is no more protected from the OOM killer than its parent."""
    want = proc.get("oomScoreAdj")
    if want is None:
        return
    try:
        linux.write_file("/proc/self/oom_score_adj", str(want))
    except PermissionError:
        with open("/proc/self/oom_score_adj") as f:
            if int(want) >= int(f.read().strip() or 0):
                raise


def _permitted_now() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapPrm:"):
                return int(line.split()[1], 16)
    return 0


class Plan(NamedTuple):
    """An OCI ``process`` worked out before *start*, so that after it only syscalls remain."""

    rlimits: tuple[tuple[int, int, int], ...]
    bounding: int | None            # capabilities kept in the bounding set (None: leave it)
    groups: tuple[int, ...]
    uid: int
    gid: int
    keepcaps: bool
    caps: tuple[int, int, int] | None  # effective, permitted, inheritable
    no_new_privs: bool
    cwd: str
    args: tuple[str, ...]
    env: dict[str, str]
    last_cap: int


def prepare_process(proc: dict[str, Any]) -> Plan:
    """Parse ``proc`` (masks, env, the capabilities we hold) once; ``apply_plan`` then only makes syscalls."""
    caps = proc.get("capabilities")
    user = proc.get("user", {})
    uid, gid = int(user.get("uid", 0)), int(user.get("gid", 0))
    masks = None
    keepcaps = uid != 0 and bool(caps and caps.get("ambient"))
    if caps is not None:
        # a privileged container gets all the caps we have, not more (some VMs hold back a few); what we
        # will still have once setresuid to a non-root uid without KEEPCAPS has cleared them
        have = _permitted_now() if uid == 0 or keepcaps else 0
        root = uid == 0 or bool(caps.get("ambient"))
        masks = (linux.cap_mask(caps.get("effective", [])) & have if root else 0,
                 linux.cap_mask(caps.get("permitted", [])) & have if root else 0,
                 linux.cap_mask(caps.get("inheritable", [])) & have)
    env = dict(e.split("=", 1) for e in proc.get("env", []) if "=" in e)
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    return Plan(rlimits=tuple((RLIMITS[rl["type"]], rl["soft"], rl["hard"]) for rl in proc.get("rlimits", [])),
                bounding=linux.cap_mask(caps.get("bounding", [])) if caps is not None else None,
                groups=tuple(int(g) for g in user.get("additionalGids", [])), uid=uid, gid=gid,
                keepcaps=keepcaps, caps=masks,
                no_new_privs=bool(proc.get("noNewPrivileges")), cwd=proc.get("cwd") or "/",
                args=tuple(proc["args"]), env=env, last_cap=linux.last_cap() if caps is not None else 0)


def apply_plan(plan: Plan) -> None:
    """rlimits, bounding set, groups, uid/gid, capabilities, no_new_privs and cwd, in that order."""
    for kind, soft, hard in plan.rlimits:
        resource.setrlimit(kind, (soft, hard))
    if plan.bounding is not None:
        for cap in range(plan.last_cap + 1):
            if not plan.bounding & (1 << cap):
                linux.prctl(linux.PR_CAPBSET_DROP, cap)
    os.setgroups(plan.groups)
    if plan.keepcaps:
        linux.prctl(linux.PR_SET_KEEPCAPS, 1)
    os.setresgid(plan.gid, plan.gid, plan.gid)
    os.setresuid(plan.uid, plan.uid, plan.uid)
    if plan.caps is not None:
        linux.capset(*plan.caps)
    if plan.no_new_privs:
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    os.chdir(plan.cwd)


def apply_process(proc: dict[str, Any]) -> None:
    """rlimits, no_new_privs, capabilities, user and cwd of an OCI ``process`` (for init and exec alike)."""
    apply_plan(prepare_process(proc))


def _exec(plan: Plan, sync: socket.socket) -> None:
    apply_plan(plan)
    try:
        os.execvpe(plan.args[0], plan.args, plan.env)
    except OSError as e:
        send(sync, {"error": f"exec {plan.args[0]!r}: {e.strerror}", "exec": True})
        os._exit(127 if e.errno == 2 else 126)
