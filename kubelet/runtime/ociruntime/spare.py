"""A pre-forked shim and container init, kept ready by the fork server so that ``create`` forks nothing.

Forking a Python process is the dearest step of a container's start on a small VM (page tables copied,
then every page the child touches copied again), and a create used to pay two in a row: fork server →
shim → init. So the fork server keeps one *spare*: a child already in its own session (as a shim must be)
that has unshared a PID namespace and forked a *warm init*, PID 1 of that namespace, blocked until it is
given a container. Both wait at the lowest CPU priority (they warm up in the gaps, not in the way of a
container being made) and die with their parent while they wait (PDEATHSIG).

``spawn`` (in the fork server) forks a spare, which then waits in ``accept`` on the fork server's ``create``
socket itself (so a create reaches it with no hop through the fork server); on a connection it tells the
fork server (which forks the next spare), reads the request and the caller's stdio and becomes that
container's shim (``shim.create``), handing its warm init the spec with ``WarmInit.activate`` when the spec
wants a new PID namespace and no user namespace (the common case); otherwise it discards the warm init and
forks as before.
"""

from __future__ import annotations

import array
import json
import os
import select
import signal
import socket
from typing import Any

from kubelet.runtime import linux

IDLE_NICE = 19


def _recv(sock: socket.socket) -> tuple[dict[str, Any], list[int]]:
    fds = array.array("i")
    msg, anc, _flags, _addr = sock.recvmsg(1 << 20, socket.CMSG_SPACE(16 * fds.itemsize))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    if not msg:
        raise EOFError("peer closed")
    return json.loads(msg), list(fds)


def _send(sock: socket.socket, obj: dict[str, Any], fds: list[int]) -> None:
    sock.sendmsg([json.dumps(obj).encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
                 if fds else [])


class WarmInit:
    """The spare's pre-forked init (PID 1 of a fresh PID namespace), waiting on ``sock`` for its spec."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid, self.sock = pid, sock

    def activate(self, spec: dict[str, Any], stdio: tuple[int, int, int], start_fd: int, sync: int,
                 reply: int = -1) -> None:
        """Give it its container: it goes on as ``init.stage1`` would in a freshly forked child. ``reply``:
        the creator's connection, which the init answers itself once ready (see ``init.stage2``)."""
        _send(self.sock, {"spec": spec, "pid": self.pid}, [*stdio, start_fd, sync] + ([reply] if reply >= 0 else []))
        self.sock.close()

    def discard(self) -> None:
        """Not wanted (the spec joins a PID namespace, or has a user namespace): kill and reap it, and make
        our next children be born in our own PID namespace again."""
        self.sock.close()
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        fd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        try:
            linux.setns(fd, linux.CLONE_NEWPID)
        finally:
            os.close(fd)


_SAMPLE_PROCESS = {"user": {"uid": 0, "gid": 0, "additionalGids": [0]}, "args": ["/bin/true"],
                   "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=x"],
                   "cwd": "/", "capabilities": {k: ["CAP_CHOWN", "CAP_KILL"] for k in
                                                ("bounding", "effective", "permitted", "inheritable")},
                   "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}], "noNewPrivileges": True}


def _rehearse() -> None:
    """While waiting (nice 19): run what the init will run, on inputs that change nothing, so that the
    copy-on-write faults of its first run (code caches, refcounts, allocator pools) are taken now."""
    from kubelet.runtime.ociruntime import init
    nowhere = "/nonexistent-kubelite-rehearsal"
    spec = {"process": _SAMPLE_PROCESS, "mounts": [{"destination": "/proc", "type": "proc", "source": "proc",
                                                   "options": ["nosuid", "noexec", "nodev"]}]}
    json.loads(json.dumps(spec))
    init.parse_options(["nosuid", "strictatime", "mode=755", "size=65536k", "rbind", "rprivate", "ro"])
    init.secure_join(nowhere, "/dev/pts")
    init.prepare_process(_SAMPLE_PROCESS)
    for call in (lambda: init._lookup_executable({"args": [f"{nowhere}/x"]}),
                 lambda: linux.mount(None, nowhere, None, linux.MS_PRIVATE),
                 lambda: linux.umount2(nowhere, linux.MNT_DETACH),
                 lambda: init.join_cgroup([f"{nowhere}/tasks"], timeout=0)):
        try:
            call()
        except OSError:
            pass
    os.path.isdir(nowhere)
    os.path.lexists(nowhere)


def _rehearse_shim() -> None:
    """The spare's part of ``_rehearse``: what ``shim.create`` runs before it answers, harmlessly."""
    from kubelet.runtime.ociruntime import state
    spec = json.loads(json.dumps({"process": _SAMPLE_PROCESS, "linux": {"namespaces": [{"type": "pid"}]}}))
    {n["type"]: n.get("path") for n in spec["linux"]["namespaces"]}
    for fd in os.pipe():
        os.close(fd)
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    a.close()
    b.close()
    state.proc_starttime(os.getpid())
    state.read_oom_kills("/nonexistent-kubelite-rehearsal")
    try:
        state.container_dir("/nonexistent-kubelite-rehearsal", "x")
        os.stat("/nonexistent-kubelite-rehearsal")
    except OSError:
        pass


def _warm_init(sock: socket.socket, base_nice: int) -> None:
    """Body of the warm init: wait for the spec and fds, then become the container's init."""
    try:
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)  # the spare gone before we were given work
        linux.set_name("kubelite-init")
        _rehearse()
        os.setpriority(os.PRIO_PROCESS, 0, base_nice)  # (before we block: a woken nice-19 task waits its turn)
        try:  # (gone before the prctl: its end of the socket is closed, EOF)
            msg, fds = _recv(sock)
        except (EOFError, OSError):
            os._exit(0)
        sock.close()
        linux.prctl(linux.PR_SET_PDEATHSIG, 0)  # a container outlives a lost shim, as a forked one does
        spec = msg["spec"]
        in_fd, out_fd, err_fd, start_fd, sync_fd = fds[:5]
        if len(fds) > 5:  # we answer the creator ourselves once ready, in its wording: our pid on the host
            spec["_reply_fd"], spec["_host_pid"] = fds[5], msg["pid"]
        os.dup2(in_fd, 0)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        for fd in (in_fd, out_fd, err_fd):
            if fd > 2:
                os.close(fd)
        spec["_start_fd"] = start_fd
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        from kubelet.runtime.ociruntime import init
        init.stage1(spec, socket.socket(fileno=sync_fd), [], True)
    finally:
        os._exit(1)


def _spare_main(line: socket.socket, clst: socket.socket, base_nice: int) -> None:
    """Body of the spare: own session, a warm init, then accept a ``create`` and become its shim.

    ``line``: to the fork server (``w`` once we wait in accept, ``t`` once we took a connection);
    ``clst``: the fork server's non-blocking ``create`` socket, shared: we poll, then try to accept."""
    from kubelet.runtime.ociruntime import shim
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)  # the fork server gone before we were given work
    linux.set_name("kubelite-shim")
    os.setsid()
    os.setpriority(os.PRIO_PROCESS, 0, IDLE_NICE)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
    linux.unshare(linux.CLONE_NEWPID)
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        line.close()
        clst.close()
        a.close()
        _warm_init(b, base_nice)
    b.close()
    warm = WarmInit(pid, a)
    _rehearse_shim()
    os.setpriority(os.PRIO_PROCESS, 0, base_nice)  # warm: wait (and wake) at the caller's priority
    try:
        line.send(b"w")
        while True:
            select.select([clst, line], [], [])  # (line: readable only at EOF, the fork server gone)
            try:
                conn, _ = clst.accept()
                break
            except BlockingIOError:  # the fork server (or nobody) took it
                if select.select([line], [], [], 0)[0]:
                    raise EOFError("fork server gone")
        line.send(b"t")
        line.close()
        clst.close()
        linux.prctl(linux.PR_SET_PDEATHSIG, 0)  # a shim outlives whoever started it
        req, fds = _recv(conn)
    except (EOFError, OSError):
        warm.discard()
        os._exit(0)
    shim.create(req["root"], req["id"], req["bundle"], conn, req.get("log_path", ""), req.get("events", ""),
                fds or None, req.get("cgroup"), warm=warm)


class Spare:
    """The fork server's handle on a spare: its pid and its line (see ``_spare_main``)."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid, self.sock = pid, sock


def spawn(close_in_child: list[Any], clst: socket.socket, base_nice: int) -> Spare:
    """Fork a spare (from the fork server); ``close_in_child``: the server's own selector and sockets;
    ``clst``: the ``create`` socket it will accept on; ``base_nice``: the priority it waits and works at."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        try:
            for obj in close_in_child:
                if obj is not clst:
                    obj.close()
            a.close()
            _spare_main(b, clst, base_nice)
        finally:
            os._exit(1)
    b.close()
    return Spare(pid, a)
