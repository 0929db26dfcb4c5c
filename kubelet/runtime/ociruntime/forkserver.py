"""The node's fork server: one single-threaded, pre-imported Python that forks shims, execs and sandboxes.

Forking the threaded asyncio runtime is unsafe and a fresh interpreter per container costs 20-80 ms,
so the runtime starts this once (``python -m kubelet.runtime.ociruntime.forkserver SOCKET``) and asks it
over a ``SOCK_SEQPACKET`` Unix socket: one JSON request per connection, file descriptors (stdio) in
``SCM_RIGHTS``. ``create`` forks a shim that answers on the inherited connection itself; ``exec`` answers
``{"pid"}`` then ``{"exit"}``; ``sandbox`` forks the pause process, which answers; ``mount``/``mounts``
(several, in order)/``umount`` run here, in the node's mount namespace. It dies with its parent (PDEATHSIG); what it forked does not.
Fork and exit cost grows with this process' size, so it imports nothing heavy (no asyncio, no cgroup
Manager: the caller makes the container's cgroup and passes the files to join). The client is in
``client``.
"""

from __future__ import annotations

import array
import gc
import json
import os
import selectors
import signal
import socket
import sys
from typing import Any

from kubelet.runtime import linux
from kubelet.runtime.ociruntime import ops, shim, spare


def _recv(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    fds = array.array("i")
    msg, anc, _flags, _addr = conn.recvmsg(1 << 20, socket.CMSG_SPACE(16 * fds.itemsize))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    return (json.loads(msg) if msg else {}), list(fds)


def _reply(conn: socket.socket, obj: dict[str, Any]) -> None:
    try:
        conn.send(json.dumps(obj).encode())
    except OSError:
        pass


def serve(path: str) -> None:
    """Serve forever on ``path`` (the caller removes a stale socket first)."""
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    linux.set_name("kubelite-forks")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    from kubelet.runtime import pause  # pre-import everything a child needs
    gc.freeze()  # what we hold stays shared with every child: their collections never write to it

    lst = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    lst.bind(path)
    os.chmod(path, 0o600)
    lst.listen(64)
    sel = selectors.DefaultSelector()
    sel.register(lst, selectors.EVENT_READ, None)
    os.write(1, b"ready\n")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # nothing we fork may hold the caller's pipes open
    os.close(devnull)
    _respawn(sel, lst)
    while True:
        for key, _ in sel.select():
            if key.data is None:
                conn, _ = lst.accept()
                sel.register(conn, selectors.EVENT_READ, ("req", conn))
                continue
            kind, obj = key.data[0], key.data[1]
            if kind == "req":
                sel.unregister(obj)
                try:
                    req, fds = _recv(obj)
                except OSError:
                    obj.close()
                    continue
                _handle(req, fds, obj, sel, lst, pause)
            elif kind == "child":  # a child we forked exited: reap, answer its waiter if any
                pidfd, pid, conn = obj, key.data[2], key.data[3]
                sel.unregister(pidfd)
                os.close(pidfd)
                _, status = os.waitpid(pid, 0)
                if conn is not None:
                    code = os.waitstatus_to_exitcode(status)
                    _reply(conn, {"exit": code if code >= 0 else 128 - code})
                    conn.close()
                if _spare is not None and _spare.pid == pid:  # it died waiting (killed?): another one
                    _spare.sock.close()
                    _set_spare(None)
                    _state["spare_deaths"] += 1
        _respawn(sel, lst)


def _respawn(sel: selectors.BaseSelector, lst: socket.socket) -> None:
    """Keep one spare forked (after each create, the next one finds its shim and init waiting), unless
    spares keep dying unused (a host where they cannot work: then every create forks, as before)."""
    if _spare is None and _state["spare_deaths"] < 3:
        base = os.getpriority(os.PRIO_PROCESS, 0)
        os.setpriority(os.PRIO_PROCESS, 0, spare.IDLE_NICE)  # the fork itself (page tables) in the gaps too
        try:
            _set_spare(spare.spawn([sel, lst], base))
        finally:
            os.setpriority(os.PRIO_PROCESS, 0, base)
        _track(sel, _spare.pid, None)  # type: ignore[union-attr]


def _handle(req: dict[str, Any], fds: list[int], conn: socket.socket, sel: selectors.BaseSelector,
            lst: socket.socket, pause: Any) -> None:
    op = req.get("op")
    try:
        if op == "ping":
            _reply(conn, {"ok": True, "pid": os.getpid()})
        elif op == "create" and _spare is not None:
            _spare.hand_over(req, conn, fds)  # (it is tracked since it was forked)
            _set_spare(None)
            for fd in fds:
                os.close(fd)
        elif op == "create":
            pid = os.fork()
            if pid == 0:
                sel.close()
                lst.close()
                if _spare is not None:
                    _spare.sock.close()
                try:
                    shim.create(req["root"], req["id"], req["bundle"], conn, req.get("log_path", ""),
                                req.get("events", ""), fds or None, req.get("cgroup"))
                finally:
                    os._exit(1)
            _track(sel, pid, None)
            for fd in fds:
                os.close(fd)
        elif op == "exec":
            pid = ops.exec_in(req["root"], req["id"], req["process"], fds)
            for fd in fds:
                os.close(fd)
            _reply(conn, {"pid": pid})
            _track(sel, pid, conn)
            return
        elif op == "sandbox":
            pid = os.fork()
            if pid == 0:
                sel.close()
                lst.close()
                if _spare is not None:
                    _spare.sock.close()
                try:
                    pause.run(req, conn)
                finally:
                    os._exit(1)
            _track(sel, pid, None)
        elif op == "mount":
            linux.mount(req.get("source"), req["target"], req.get("fstype"), req.get("flags", 0), req.get("data"))
            _reply(conn, {"ok": True})
        elif op == "mounts":  # several in one round trip, in order; the caller undoes them on an error
            for m in req["mounts"]:
                linux.mount(m.get("source"), m["target"], m.get("fstype"), m.get("flags", 0), m.get("data"))
            _reply(conn, {"ok": True})
        elif op == "umount":
            try:
                linux.umount2(req["target"], req.get("flags", 0))
            except OSError as e:
                if e.errno not in (22, 2):  # EINVAL: not a mount point; ENOENT: gone
                    raise
            _reply(conn, {"ok": True})
        else:
            _reply(conn, {"error": f"unknown op {op!r}"})
    except Exception as e:  # one bad request must not end the server
        _reply(conn, {"error": f"{type(e).__name__}: {e}"})
    conn.close()


_spare: spare.Spare | None = None
_state = {"spare_deaths": 0}


def _set_spare(sp: spare.Spare | None) -> None:
    global _spare
    _spare = sp


def _track(sel: selectors.BaseSelector, pid: int, conn: socket.socket | None) -> None:
    pidfd = os.pidfd_open(pid)
    sel.register(pidfd, selectors.EVENT_READ, ("child", pidfd, pid, conn))


if __name__ == "__main__":
    serve(sys.argv[1])
