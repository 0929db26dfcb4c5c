"""The node's fork server: one single-threaded, pre-imported Python that forks shims, execs and sandboxes.

Forking the threaded asyncio runtime is unsafe and a fresh interpreter per container costs 20-80 ms,
so the runtime starts this once (``python -m kubelet.runtime.ociruntime.forkserver SOCKET``) and asks it
over ``SOCK_SEQPACKET`` Unix sockets: one JSON request per connection, file descriptors (stdio) in
``SCM_RIGHTS``. ``create`` goes to a second socket (``create_path``) on which a pre-forked spare shim with
a warm init waits in ``accept`` itself (``spare``), so a create reaches its shim with no hop through this
process and forks nothing; the spare tells us when it took one and we fork the next (at nice 19). While
no spare waits there, we accept and fork a shim as before. ``exec`` answers ``{"pid"}`` then ``{"exit"}``;
``sandbox`` forks the pause process, which answers; ``mount``/``mounts`` (several, in order)/``umount``
run here, in the node's mount namespace. It dies with its parent (PDEATHSIG); what it forked does not.
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


def create_path(path: str) -> str:
    """The second socket, for ``create`` only: the spare shim itself waits in ``accept`` on it."""
    return f"{path}.create"


def _listen(path: str) -> socket.socket:
    lst = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    lst.bind(path)
    os.chmod(path, 0o600)
    lst.listen(64)
    return lst


def serve(path: str) -> None:
    """Serve forever on ``path`` and ``create_path(path)`` (the caller removes stale sockets first)."""
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    linux.set_name("kubelite-forks")
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    from kubelet.runtime import pause  # pre-import everything a child needs
    gc.freeze()  # what we hold stays shared with every child: their collections never write to it

    lst = _listen(path)
    clst = _listen(create_path(path))
    clst.setblocking(False)  # (shared with the spare, which polls then accepts: whoever comes first)
    sel = selectors.DefaultSelector()
    sel.register(lst, selectors.EVENT_READ, None)
    sel.register(clst, selectors.EVENT_READ, "create")  # served here only while no spare waits on it
    os.write(1, b"ready\n")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # nothing we fork may hold the caller's pipes open
    os.close(devnull)
    servers = [sel, lst, clst]
    _respawn(sel, servers)
    while True:
        for key, _ in sel.select():
            if key.data is None or key.data == "create":
                try:
                    conn, _ = key.fileobj.accept()  # type: ignore[union-attr]
                except BlockingIOError:  # the spare took it first
                    continue
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
                _handle(req, fds, obj, sel, servers, pause)
            elif kind == "spare":  # b"w": it waits in accept; b"t" or EOF: it took a create (or died)
                try:
                    note = obj.sock.recv(16)
                except OSError:
                    note = b""
                if note == b"w":
                    sel.unregister(clst)
                    _state["waiting"] = True
                    continue
                sel.unregister(obj.sock)
                obj.sock.close()
                if _state["waiting"]:
                    sel.register(clst, selectors.EVENT_READ, "create")
                    _state["waiting"] = False
                if not note:  # it died before it took a create: count it
                    _state["spare_deaths"] += 1
                _set_spare(None)
            elif kind == "child":  # a child we forked exited: reap, answer its waiter if any
                pidfd, pid, conn = obj, key.data[2], key.data[3]
                sel.unregister(pidfd)
                os.close(pidfd)
                _, status = os.waitpid(pid, 0)
                if conn is not None:
                    code = os.waitstatus_to_exitcode(status)
                    _reply(conn, {"exit": code if code >= 0 else 128 - code})
                    conn.close()
        _respawn(sel, servers)


def _respawn(sel: selectors.BaseSelector, servers: list[Any]) -> None:
    """Keep one spare forked (after each create, the next one finds its shim and init waiting), unless
    spares keep dying unused (a host where they cannot work: then every create forks, as before)."""
    if _spare is None and _state["spare_deaths"] < 3:
        base = os.getpriority(os.PRIO_PROCESS, 0)
        os.setpriority(os.PRIO_PROCESS, 0, spare.IDLE_NICE)  # the fork itself (page tables) in the gaps too
        try:
            _set_spare(spare.spawn(servers, servers[2], base))
        finally:
            os.setpriority(os.PRIO_PROCESS, 0, base)
        assert _spare is not None
        sel.register(_spare.sock, selectors.EVENT_READ, ("spare", _spare))
        _track(sel, _spare.pid, None)


def _handle(req: dict[str, Any], fds: list[int], conn: socket.socket, sel: selectors.BaseSelector,
            servers: list[Any], pause: Any) -> None:
    op = req.get("op")
    try:
        if op == "ping":
            _reply(conn, {"ok": True, "pid": os.getpid()})
        elif op == "create":  # no spare was waiting (a burst, or spares cannot work here): fork one now
            pid = os.fork()
            if pid == 0:
                _close_servers(servers)
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
                _close_servers(servers)
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
_state = {"spare_deaths": 0, "waiting": False}


def _close_servers(servers: list[Any]) -> None:
    """In a child: drop the server's selector and listening sockets, and the spare's line."""
    for obj in servers:
        obj.close()
    if _spare is not None:
        _spare.sock.close()


def _set_spare(sp: spare.Spare | None) -> None:
    global _spare
    _spare = sp


def _track(sel: selectors.BaseSelector, pid: int, conn: socket.socket | None) -> None:
    pidfd = os.pidfd_open(pid)
    sel.register(pidfd, selectors.EVENT_READ, ("child", pidfd, pid, conn))


if __name__ == "__main__":
    serve(sys.argv[1])
