"""The pod sandbox's process (pause): holds the pod's namespaces and pins them as files under the state dir.

Run in a child of the fork server (``op: sandbox``). It leaves the caller's session, optionally creates
a user namespace first (its uid/gid maps written by a helper still in the host's user namespace), then
the pod's net, IPC, UTS (and PID) namespaces inside it; sets the hostname, brings ``lo`` up, answers
``{"pid"}`` on the connection (the runtime then pins ``/proc/<pid>/ns/*`` with bind mounts from the
host's side) and then only sleeps and reaps (it is PID 1 of the pod's PID namespace when shared).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import struct
from typing import Any

from kubelet.runtime import linux

SIOCSIFFLAGS = 0x8914
IFF_UP, IFF_LOOPBACK, IFF_RUNNING = 0x1, 0x8, 0x40
KINDS = {"network": "net", "ipc": "ipc", "uts": "uts", "pid": "pid", "user": "user"}


def lo_up() -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", IFF_UP | IFF_LOOPBACK | IFF_RUNNING))
    finally:
        s.close()


def _sleep_forever() -> None:
    def reap(_sig: int, _frame: Any) -> None:
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
    signal.signal(signal.SIGCHLD, reap)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    os.closerange(3, 1 << 16)
    devnull = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.chdir("/")
    while True:
        signal.pause()


def _user_namespace(maps: dict[str, str]) -> None:
    """unshare(CLONE_NEWUSER) with the maps written by a forked helper that stays in the host's userns."""
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    me = os.getpid()
    helper = os.fork()
    if helper == 0:
        try:
            os.read(go_r, 1)
            linux.write_file(f"/proc/{me}/uid_map", maps["uid_map"])
            linux.write_file(f"/proc/{me}/gid_map", maps["gid_map"])
            os.write(done_w, b"k")
        finally:
            os._exit(0)
    try:
        linux.unshare(linux.CLONE_NEWUSER)
        os.write(go_w, b"g")
        if os.read(done_r, 1) != b"k":
            raise OSError("writing uid_map/gid_map failed")
    finally:
        os.waitpid(helper, 0)
        for fd in (go_r, go_w, done_r, done_w):
            os.close(fd)
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def run(req: dict[str, Any], conn: socket.socket) -> None:
    """Become the pause process described by ``req`` (dir, hostname, namespaces, maps); never returns."""
    try:
        os.setsid()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        kinds: list[str] = list(req.get("namespaces", []))
        if req.get("maps"):
            _user_namespace(req["maps"])
            kinds.append("user")
        flags = 0
        for k in kinds:
            if k != "user":
                flags |= linux.NAMESPACE_FLAGS[k]
        linux.unshare(flags)
        if "uts" in kinds:
            linux.sethostname(req["hostname"])
        if "network" in kinds:
            lo_up()
        holder = os.getpid()
        if "pid" in kinds:  # our child is PID 1 of the pod's PID namespace: it is the pause process
            r, w = os.pipe()
            child = os.fork()
            if child == 0:
                os.close(r)
                os.close(w)
                _sleep_forever()
            os.close(r)
            os.close(w)
            holder = child
        conn.send(json.dumps({"pid": holder}).encode())
        conn.close()
        if holder != os.getpid():
            os._exit(0)  # the PID-1 child carries on; the session leader is not needed
        _sleep_forever()
    except BaseException as e:
        try:
            conn.send(json.dumps({"error": f"sandbox: {type(e).__name__}: {e}"}).encode())
        finally:
            os._exit(1)
