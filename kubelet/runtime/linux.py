"""Thin ctypes wrappers for the Linux syscalls the stdlib lacks, with C semantics (rubber-docker style).

Each function takes the arguments of its man page, raises ``OSError`` with errno on failure and returns
what the syscall returns. No policy here: the runtime composes these in the canonical order. Call them
only in child processes (fork server, shim, container init), never in the asyncio kubelet/runtime.
:func:`mount_fstype` only reads /proc and may be called anywhere.
"""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)

# ----------------------------------------------------------------------------------------- constants
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
NAMESPACE_FLAGS = {"mount": CLONE_NEWNS, "cgroup": CLONE_NEWCGROUP, "uts": CLONE_NEWUTS, "ipc": CLONE_NEWIPC,
                   "user": CLONE_NEWUSER, "pid": CLONE_NEWPID, "network": CLONE_NEWNET}
NAMESPACE_PROC = {"mount": "mnt", "cgroup": "cgroup", "uts": "uts", "ipc": "ipc", "user": "user",
                  "pid": "pid", "network": "net"}

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24

MNT_FORCE = 1
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
PR_SET_CHILD_SUBREAPER = 36

# open_tree / mount_setattr / move_mount (x86_64 and aarch64 share these numbers)
SYS_open_tree = 428
SYS_move_mount = 429
SYS_mount_setattr = 442
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
AT_RECURSIVE = 0x8000
AT_EMPTY_PATH = 0x1000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_IDMAP = 0x00100000

CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE",
)
CAP_NUMBER = {f"CAP_{name}": i for i, name in enumerate(CAPABILITIES)}


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _b(s: str | bytes | None) -> bytes | None:
    return s.encode() if isinstance(s, str) else s


# ------------------------------------------------------------------------------------------- mounts
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    """mount(2)."""
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)),
           f"mount {source or ''} on {target} ({fstype or 'flags'})")


def umount2(target: str, flags: int = 0) -> None:
    """umount2(2)."""
    _check(_libc.umount2(_b(target), flags), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2) (no libc wrapper: raw syscall 155 on x86_64, 41 on aarch64)."""
    nr = 155 if os.uname().machine == "x86_64" else 41
    _check(_libc.syscall(nr, _b(new_root), _b(put_old)), "pivot_root")


def open_tree(path: str, flags: int) -> int:
    """open_tree(2): a detached mount (with OPEN_TREE_CLONE) as an fd."""
    return _check(_libc.syscall(SYS_open_tree, -100, _b(path), ctypes.c_uint(flags)), f"open_tree {path}")


def move_mount(from_fd: int, to_path: str) -> None:
    """move_mount(2) of a detached tree fd onto a path."""
    _check(_libc.syscall(SYS_move_mount, from_fd, b"", -100, _b(to_path),
                         ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH)), f"move_mount {to_path}")


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def mount_setattr(fd: int, attr_set: int, userns_fd: int = 0, flags: int = AT_EMPTY_PATH) -> None:
    """mount_setattr(2) on a mount fd; with MOUNT_ATTR_IDMAP it makes an idmapped mount."""
    attr = _MountAttr(attr_set, 0, 0, userns_fd)
    _check(_libc.syscall(SYS_mount_setattr, fd, b"", ctypes.c_uint(flags), ctypes.byref(attr),
                         ctypes.c_size_t(ctypes.sizeof(attr))), "mount_setattr")


# --------------------------------------------------------------------------------------- namespaces
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def unshare(flags: int) -> None:
    """unshare(2)."""
    os.unshare(flags)


def setns(fd: int, nstype: int = 0) -> None:
    """setns(2)."""
    os.setns(fd, nstype)


def sethostname(name: str) -> None:
    """sethostname(2)."""
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname")


# ---------------------------------------------------------------------------------- privileges
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """prctl(2)."""
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5), f"prctl {option}")


def set_name(name: str) -> None:
    """PR_SET_NAME: the thread's comm (``ps -o comm``, perf), at most 15 bytes."""
    buf = ctypes.create_string_buffer(name.encode()[:15])
    _check(_libc.prctl(PR_SET_NAME, ctypes.cast(buf, ctypes.c_void_p).value or 0, 0, 0, 0), "prctl PR_SET_NAME")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """capset(2) with _LINUX_CAPABILITY_VERSION_3 (64-bit masks)."""
    hdr = _CapHeader(0x20080522, 0)
    data = (_CapData * 2)()
    for i in range(2):
        data[i].effective = (effective >> (32 * i)) & 0xFFFFFFFF
        data[i].permitted = (permitted >> (32 * i)) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> (32 * i)) & 0xFFFFFFFF
    _check(_libc.capset(ctypes.byref(hdr), data), "capset")


def last_cap() -> int:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


def cap_mask(names: list[str] | tuple[str, ...]) -> int:
    """Bit mask of capability names (``CAP_X``); unknown names are an error."""
    mask = 0
    for n in names:
        if n not in CAP_NUMBER:
            raise ValueError(f"unknown capability {n!r}")
        mask |= 1 << CAP_NUMBER[n]
    return mask


def drop_bounding_set(keep: int) -> None:
    """PR_CAPBSET_DROP every capability not in the ``keep`` mask."""
    for cap in range(last_cap() + 1):
        if not keep & (1 << cap):
            prctl(PR_CAPBSET_DROP, cap)


# ------------------------------------------------------------------------------------------- files
_libc.mknod.argtypes = [ctypes.c_char_p, ctypes.c_uint, ctypes.c_ulong]


def mknod(path: str, mode: int, dev: int) -> None:
    """mknod(2)."""
    os.mknod(path, mode, dev)


def write_file(path: str, data: str) -> None:
    """One write(2) of ``data`` (cgroup and /proc files want a single write)."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)


def mount_fstype(path: str | os.PathLike[str]) -> str:
    """The file system type of the mount holding ``path`` (``/proc/self/mountinfo``; "" if unknown)."""
    target = os.path.realpath(path)
    best, kind = "", ""
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                mnt = left.split()[4].replace("\\040", " ")
                if (target == mnt or target.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                    best, kind = mnt, right.split()[0]
    except OSError:
        return ""
    return kind
