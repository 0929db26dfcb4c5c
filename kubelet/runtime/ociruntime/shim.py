"""The per-container shim: the container's parent, in its own session, outliving whoever started it.

``create`` (called in a freshly forked process) makes the container's cgroup, forks the container
through ``init.stage1``/``stage2``, writes ``state.json``, answers the creator on ``reply`` and then
serves until the container has exited: the control socket ``shim.sock`` (``start``, ``kill <sig>``,
``wait``), the container's stdout/stderr into the CRI log file (``<RFC3339Nano> stdout|stderr F|P
line``), and at exit the exit code, reason (Completed | Error | OOMKilled, from the memory cgroup's
``oom_kill`` counter) and finish time into ``exit.json`` (fsynced, renamed), then a datagram on the
runtime's events socket. Single-threaded: one ``selectors`` loop.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import time
from typing import Any, BinaryIO

from kubelet.runtime import linux
from kubelet.runtime.ociruntime import init, state
from kubelet.runtime.ociruntime.spare import WarmInit

PARTIAL_MAX = 16 * 1024  # a line longer than this is written as P chunks
HANDLER_ANNOTATION = "org.kubelite.handler"
EXTERNAL = ("runc", "crun")


def external_root(root: str, handler: str) -> str:
    """Where runc/crun keep their own state for containers this shim runs."""
    return os.path.join(root, f".{handler}")


def _external_kill(handler: str, root: str, cid: str, sig: int) -> None:
    """Signal the container itself, not the ``runc run`` that waits for it (SIGKILL would orphan it)."""
    import subprocess
    p = subprocess.run([handler, "--root", external_root(root, handler), "kill", cid, str(sig)],
                       capture_output=True, text=True, timeout=10)
    if p.returncode != 0 and "not running" not in p.stderr and "does not exist" not in p.stderr:
        raise ProcessLookupError(p.stderr.strip())


def _external_wait_running(handler: str, root: str, cid: str, pidfd: int) -> str:
    """After exec of ``<handler> run``: wait until it reports the container running ("" or an error)."""
    import subprocess
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        p = subprocess.run([handler, "--root", external_root(root, handler), "state", cid],
                           capture_output=True, text=True, timeout=10)
        if p.returncode == 0 and json.loads(p.stdout).get("status") in ("running", "stopped"):
            return ""
        if selectors.select.select([pidfd], [], [], 0)[0]:
            return ""  # it has already finished: the exit record will tell
        time.sleep(0.005)
    return f"{handler} did not start the container within 10 s"


def _external(handler: str, root: str, cid: str, spec: dict[str, Any], sync: socket.socket) -> None:
    """The container through runc or crun: ready at once; on start exec ``<handler> run``, which stays the
    container's parent and returns its exit code. crun 1.8 refuses hybrid cgroups while the cgroup2 mount
    lists a controller: in its own mount namespace a tmpfs hides that mount."""
    try:
        if handler not in EXTERNAL:
            raise ValueError(f"unknown runtime handler {handler!r}")
        init.send(sync, {"pid": os.getpid()})
        init.send(sync, {"ready": True})
        if os.read(spec["_start_fd"], 1) != b"s":
            os._exit(1)
        if handler == "crun" and os.path.isdir("/sys/fs/cgroup/unified"):
            linux.unshare(linux.CLONE_NEWNS)
            linux.mount(None, "/", None, linux.MS_SLAVE | linux.MS_REC)
            linux.mount("kubelite-hide-cgroup2", "/sys/fs/cgroup/unified", "tmpfs", 0, "size=4k,mode=755")
        argv = [handler, "--root", external_root(root, handler), "run", "--bundle", spec["_bundle"], cid]
        os.execvp(handler, argv)
    except BaseException as e:
        try:
            init.send(sync, {"error": f"{handler}: {type(e).__name__}: {e}"})
        finally:
            os._exit(127)


def rfc3339nano(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


class CriLog:
    """Writes a stream into the CRI log format, splitting full (F) and partial (P) lines."""

    def __init__(self, f: BinaryIO | None, stream: str) -> None:
        self.f, self.stream, self.buf = f, stream.encode(), b""

    def feed(self, data: bytes) -> None:
        self.buf += data
        out = []
        while True:
            i = self.buf.find(b"\n")
            if i < 0:
                break
            out.append((b"F", self.buf[:i]))
            self.buf = self.buf[i + 1:]
        while len(self.buf) >= PARTIAL_MAX:
            out.append((b"P", self.buf[:PARTIAL_MAX]))
            self.buf = self.buf[PARTIAL_MAX:]
        self._write(out)

    def close(self) -> None:
        if self.buf:
            self._write([(b"F", self.buf)])
            self.buf = b""

    def _write(self, items: list[tuple[bytes, bytes]]) -> None:
        if not items or self.f is None:
            return
        ts = rfc3339nano(time.time_ns()).encode()
        self.f.write(b"".join(ts + b" " + self.stream + b" " + tag + b" " + line + b"\n" for tag, line in items))
        self.f.flush()


def _attach(procs: list[str], pid: int, timeout: float = 5.0) -> None:
    """Write ``pid`` into each cgroup.procs; the caller may still be making the cgroup (it does so while we
    fork and mount), so a missing one is waited for a little."""
    deadline = time.monotonic() + timeout
    for f in procs:
        while True:
            try:
                linux.write_file(f, str(pid))
                break
            except FileNotFoundError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.0005)


def _write_maps(pid: int, spec: dict[str, Any]) -> None:
    lx = spec.get("linux", {})
    for name, key in (("uid_map", "uidMappings"), ("gid_map", "gidMappings")):
        lines = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in lx.get(key, []))
        linux.write_file(f"/proc/{pid}/{name}", lines)


def create(root: str, cid: str, bundle: str, reply: socket.socket, log_path: str = "",
           events: str = "", stdio: list[int] | None = None, cgroup: dict[str, Any] | None = None,
           warm: WarmInit | None = None) -> None:
    """Become the shim of container ``cid``; answers ``{"pid": n}`` or ``{"error": ...}`` on ``reply``.

    ``cgroup``: the container's cgroup already made by the caller (``cgroupfs.prepare``), so this process
    never imports the cgroup Manager; None: make it here from the spec (the OCI CLI path). ``warm``: this
    process is a spare (``spare``), already in its own session, with an init waiting in a new PID namespace."""
    if warm is None:
        os.setsid()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
    cdir = state.container_dir(root, cid)
    direct_reply = False
    procs: list[str] = []
    cg = ""
    pid = first = 0
    try:
        try:
            os.mkdir(cdir)
        except FileNotFoundError:
            os.makedirs(cdir)
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            spec = json.load(f)
        spec["_bundle"] = os.path.abspath(bundle)
        lx = spec.get("linux", {})
        cg_path = lx.get("cgroupsPath", "")
        fifo = os.path.join(cdir, state.START_FIFO)  # `start` writes one byte; the init blocks reading it
        os.mkfifo(fifo, 0o600)
        start_r = os.open(fifo, os.O_RDWR | os.O_CLOEXEC)  # RDWR: reads block until a byte comes
        spec["_start_fd"] = start_r
        sync_parent, sync_child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if stdio:
            in_fd, out_fd, err_fd = stdio
            out_r = err_r = -1
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            in_fd, out_fd, err_fd = os.open("/dev/null", os.O_RDONLY), out_w, err_w
        handler = spec.get("annotations", {}).get(HANDLER_ANNOTATION, "kubelite")
        nss = {n["type"]: n.get("path") for n in lx.get("namespaces", [])}
        if cgroup is None and cg_path:  # (the OCI CLI path: made here, before the init needs it)
            from kubelet.runtime.ociruntime import cgroupfs
            cgroup = cgroupfs.prepare(cg_path, lx.get("resources") or {})
            cg = cg_path  # ours to remove if the create fails
        if handler == "kubelite" and "user" not in nss and cgroup and cgroup.get("tasks"):
            spec["_join"] = cgroup["tasks"]  # cgroup v1, host root: the init moves itself (init.join_cgroup)
        direct = handler == "kubelite" and "user" not in nss and "pid" in nss
        if warm is not None and not (direct and not nss["pid"]):
            warm.discard()  # it waits in a new PID namespace: this spec wants another, or none of its own
            warm = None
        if warm is not None:  # the init is there already: hand it the container, and the creator's line
            first = warm.pid
            direct_reply = not (cgroup or {}).get("late") or bool(spec.get("_join"))
            warm.activate(spec, (in_fd, out_fd, err_fd), start_r, sync_child.fileno(),
                          reply.fileno() if direct_reply else -1)
        elif direct:  # our next child is the container's init: one fork fewer (the shim forks nothing else)
            if nss["pid"]:
                fd = os.open(nss["pid"], os.O_RDONLY | os.O_CLOEXEC)
                linux.setns(fd, linux.CLONE_NEWPID)
                os.close(fd)
            else:
                linux.unshare(linux.CLONE_NEWPID)
        if not first:
            first = os.fork()
        if first == 0:
            sync_parent.close()
            os.dup2(in_fd, 0)
            os.dup2(out_fd, 1)
            os.dup2(err_fd, 2)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            if handler == "kubelite":
                init.stage1(spec, sync_child, [], direct)
            _external(handler, root, cid, spec, sync_child)
        sync_child.close()
        os.close(start_r)
        for fd in (in_fd, out_fd, err_fd):
            os.close(fd)
        procs = list(cgroup["procs"]) if cgroup else []
        late = [f for f in cgroup.get("late", []) if f in procs] if cgroup else []
        if handler != "kubelite" or spec.get("_join"):
            procs = late = []  # runc/crun put the container in it (runc itself stays out); or the init joins
        early = [f for f in procs if f not in late]
        ready = False
        pidfd = -1
        st: dict[str, Any] = {}
        ctl = None
        if direct:
            pid = first
        while True:
            if pid and not st:
                # at once, while the init still builds its namespaces and mounts: the first cgroup.procs
                # write of a burst waits for an RCU grace period (cgroup v1's threadgroup lock), and the
                # init must be in its cgroup before it may exec
                if not direct and pid != first:  # stage1 exits once it has forked the init
                    os.waitpid(first, 0)
                _attach(early, pid)
                pidfd = os.pidfd_open(pid)
                st = {"id": cid, "pid": pid, "bundle": spec["_bundle"], "created": time.time_ns(),
                      "starttime": state.proc_starttime(pid), "cgroup": cg_path, "shim": os.getpid(),
                      "shim_starttime": state.proc_starttime(os.getpid()),
                      "oom_file": cgroup["oom_file"] if cgroup else "", "procs": cgroup["procs"] if cgroup else [],
                      "tasks": cgroup.get("tasks", []) if cgroup else [],
                      "oom_base": state.read_oom_kills(cgroup["oom_file"]) if cgroup else 0, "root": root,
                      "handler": handler}
                ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                ctl.bind(os.path.join(cdir, "shim.sock"))
                ctl.listen(16)  # (callers wait in the backlog until we serve)
                if not late:  # while the init works (else: once it is in all its cgroups)
                    state.write_json(os.path.join(cdir, "state.json"), st)
                    if direct_reply:  # recorded: once ready, the init may answer the creator itself
                        init.send(sync_parent, {"recorded": True})
            if ready and st:
                break
            msg = init.recv(sync_parent)  # stage1's {"pid"} and stage2's {"ready"} race: wait for both
            if "map" in msg:
                _write_maps(msg["map"], spec)
                init.send(sync_parent, {"ok": True})
            elif "pid" in msg:
                pid = msg["pid"]
            elif "error" in msg:
                raise RuntimeError(msg["error"])
            elif msg.get("ready"):
                ready = True
        assert ctl is not None
        if late:
            _attach(late, pid)  # the devices allowlist: now that the init has made its device nodes
            state.write_json(os.path.join(cdir, "state.json"), st)
    except BaseException as e:
        if first:
            try:
                os.kill(first, signal.SIGKILL)
            except OSError:
                pass
        if pid:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass
        if cg:
            try:
                from kubelet.runtime.ociruntime import cgroupfs
                cgroupfs.destroy(cg)
            except OSError:
                pass
        state.remove_container_dir(root, cid)
        try:
            reply.send(json.dumps({"error": str(e)}).encode())
        finally:
            os._exit(1)
    if not direct_reply:  # (else the init did, the moment it was ready)
        reply.send(json.dumps({"pid": pid}).encode())
    reply.close()
    _serve(cdir, cid, pid, pidfd, ctl, sync_parent, out_r, err_r, log_path, events, st)


def _serve(cdir: str, cid: str, pid: int, pidfd: int, ctl: socket.socket, sync: socket.socket, out_r: int, err_r: int, log_path: str, events: str, st: dict[str, Any]) -> None:
    sel = selectors.DefaultSelector()
    logf = open(log_path, "ab", buffering=0) if log_path else None
    logs = {}
    for fd, stream in ((out_r, "stdout"), (err_r, "stderr")):
        if fd >= 0:
            os.set_blocking(fd, False)
            logs[fd] = CriLog(logf, stream)
            sel.register(fd, selectors.EVENT_READ, "log")
    sel.register(ctl, selectors.EVENT_READ, "ctl")
    sel.register(pidfd, selectors.EVENT_READ, "exit")
    sel.register(sync, selectors.EVENT_READ, "sync")
    waiters: list[socket.socket] = []
    exec_error = ""
    exited: int | None = None
    while exited is None:
        for key, _ in sel.select():
            what = key.data
            if what == "log":
                _drain(key.fd, logs, sel)
            elif what == "ctl":
                conn, _ = ctl.accept()
                cmd = conn.recv(256).decode().split()
                if not cmd:
                    conn.close()
                elif cmd[0] == "kill":
                    try:
                        if st["handler"] != "kubelite" and state.started_at(cdir, st):
                            _external_kill(st["handler"], st["root"], cid, int(cmd[1]))
                        else:
                            signal.pidfd_send_signal(pidfd, int(cmd[1]))
                        conn.sendall(b'{"ok": true}')
                    except ProcessLookupError:
                        conn.sendall(b'{"error": "container not running"}')
                    conn.close()
                elif cmd[0] == "wait":
                    waiters.append(conn)
                else:
                    conn.close()
            elif what == "sync":  # after start: EOF = the init exec'd; a message = exec failed
                sel.unregister(sync)
                try:
                    exec_error = init.recv(sync).get("error", "")
                except (EOFError, OSError):
                    pass
                if exec_error:
                    st["exec_error"] = exec_error
                elif st["handler"] != "kubelite":
                    st["exec_error"] = _external_wait_running(st["handler"], st["root"], cid, pidfd)
                st["started"] = state.started_at(cdir, st) or time.time_ns()
                if st.get("exec_error"):  # else `start`'s own file says when it ran: nothing new to record
                    state.write_json(os.path.join(cdir, "state.json"), st)
            elif what == "exit":
                _, status = os.waitpid(pid, 0)
                exited = os.waitstatus_to_exitcode(status)
    # the container is gone: drain what it wrote (other writers in a shared PID namespace may linger)
    deadline = time.monotonic() + 0.5
    while any(fd in logs for fd in (out_r, err_r)) and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
            if key.data == "log":
                _drain(key.fd, logs, sel)
    for log in logs.values():
        log.close()
    code = exited if exited >= 0 else 128 - exited
    oom = bool(st.get("oom_file")) and state.read_oom_kills(st["oom_file"]) > st.get("oom_base", 0)
    reason = "OOMKilled" if oom and code == 137 else ("Completed" if code == 0 else "Error")
    if not state.started_at(cdir, st):
        reason = "Error"
    if st.get("exec_error"):
        reason = "StartError"
    ex = {"exit_code": code, "reason": reason, "finished": time.time_ns(), "message": st.get("exec_error", "")}
    # atomic (tmp + rename) but not fsynced: it must survive our crash, not the kernel's, and a kernel
    # crash ends the container anyway (fsync on a busy disk costs 10+ ms per container)
    state.write_json(os.path.join(cdir, "exit.json"), ex)
    try:
        os.unlink(os.path.join(cdir, "shim.sock"))
    except FileNotFoundError:
        pass
    ctl.setblocking(False)
    while True:  # late callers still in the backlog: waiters get the record, others a refusal
        try:
            conn, _ = ctl.accept()
        except BlockingIOError:
            break
        conn.setblocking(True)
        conn.settimeout(1)
        try:
            cmd = conn.recv(256).decode().split()
        except OSError:
            cmd = []
        if cmd and cmd[0] == "wait":
            waiters.append(conn)
        else:
            try:
                conn.sendall(b'{"error": "container not running"}')
            except OSError:
                pass
            conn.close()
    ctl.close()
    out = json.dumps(ex).encode()
    for w in waiters:
        try:
            w.sendall(out)
        except OSError:
            pass
        w.close()
    if events:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.sendto(json.dumps({"id": cid, "kind": "exited", "at": ex["finished"]}).encode(), events)
            s.close()
        except OSError:
            pass
    os.setpriority(os.PRIO_PROCESS, 0, 19)  # our teardown (a whole interpreter) yields to the caller's next step
    os._exit(0)


def _drain(fd: int, logs: dict[int, CriLog], sel: selectors.BaseSelector) -> None:
    try:
        data = os.read(fd, 65536)
    except BlockingIOError:
        return
    if data:
        logs[fd].feed(data)
    else:
        sel.unregister(fd)
        os.close(fd)
        logs[fd].close()
        del logs[fd]
