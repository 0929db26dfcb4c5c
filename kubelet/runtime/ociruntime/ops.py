"""The OCI verbs over the state dir, synchronous: create (direct fork), start, kill, wait, delete, state, exec.

Used by the OCI CLI (``python -m kubelet.runtime.ociruntime``) and by the fork server; the asyncio
runtime reaches the fork-server path through ``forkserver.ForkServerClient``. ``start``/``kill``/``wait``
talk to the container's shim over ``<root>/<id>/shim.sock``; once the shim is gone, ``exit.json`` answers.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import socket
import termios
import time
from typing import Any

from kubelet.runtime import linux
from kubelet.runtime.ociruntime import init, shim, state
from kubelet.runtime.ociruntime.process import apply_process


class OciError(Exception):
    """An OCI verb failed; ``str()`` says why in one line."""


def _shim_call(root: str, cid: str, cmd: str, timeout: float | None = 10.0) -> dict[str, Any]:
    path = os.path.join(state.container_dir(root, cid), "shim.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(cmd.encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError, BrokenPipeError):
        raise ProcessLookupError(cid) from None
    finally:
        s.close()
    return json.loads(data) if data else {}


def create(root: str, cid: str, bundle: str, log_path: str = "", events: str = "") -> int:
    """Create ``cid`` from ``bundle`` by forking its shim from this process; returns the init pid."""
    if os.path.exists(os.path.join(root, cid)):
        raise OciError(f"container {cid} already exists")
    os.makedirs(root, exist_ok=True)
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        a.close()
        try:
            shim.create(root, cid, bundle, b, log_path, events)
        finally:
            os._exit(1)
    b.close()
    try:
        msg = init.recv(a)
    except EOFError:
        raise OciError("shim died before it answered") from None
    finally:
        a.close()
    if "error" in msg:
        raise OciError(msg["error"])
    return int(msg["pid"])


def start(root: str, cid: str, timeout: float = 10.0) -> None:
    """Release the created container's init to exec its process (one byte into its start fifo); returns
    once it has (or has failed to: the exit record then says why), or after ``timeout`` s regardless."""
    st = state.status(root, cid)
    if st is None:
        raise OciError(f"container {cid} does not exist")
    if st["status"] != "created":
        raise OciError(f"container {cid} is {st['status']}, not created")
    d = state.container_dir(root, cid)
    fifo = os.path.join(d, state.START_FIFO)
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise OciError(f"container {cid} is not created (started meanwhile)") from None
    except OSError as e:  # ENXIO: nobody reads it any more
        raise OciError(f"container {cid} is not running ({e.strerror})") from None
    try:
        try:  # the fifo's new name records when (no file to create: see state.started_at)
            os.rename(fifo, os.path.join(d, f"{state.STARTED_PREFIX}{time.time_ns()}"))
        except FileNotFoundError:
            raise OciError(f"container {cid} is not created (started meanwhile)") from None
        os.write(fd, b"s")
        # return once the process runs: the init holds the fifo's only other end (close-on-exec), and a
        # fifo's writer sees POLLERR when no reader is left (it exec'd, or failed to and exited)
        p = select.poll()
        p.register(fd, 0)
        p.poll(timeout * 1000)
    finally:
        os.close(fd)


def kill(root: str, cid: str, sig: int = signal.SIGTERM) -> None:
    st = state.status(root, cid)
    if st is None:
        raise OciError(f"container {cid} does not exist")
    if st["status"] == "stopped":
        raise OciError(f"container {cid} is not running")
    try:
        msg = _shim_call(root, cid, f"kill {int(sig)}")
    except ProcessLookupError:
        raise OciError(f"container {cid} is not running") from None
    if msg.get("error"):
        raise OciError(msg["error"])


def wait(root: str, cid: str, timeout: float | None = None) -> dict[str, Any]:
    """Block until ``cid`` has exited; returns its exit record (exit_code, reason, finished, message)."""
    try:
        msg = _shim_call(root, cid, "wait", timeout)
        if msg:
            return msg
    except ProcessLookupError:
        pass
    st = state.status(root, cid)
    if st is None:
        raise OciError(f"container {cid} does not exist")
    deadline = None if timeout is None else time.monotonic() + timeout
    while st is not None and "_exit" not in st:  # the shim is just writing exit.json
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(cid)
        time.sleep(0.002)
        st = state.status(root, cid)
    if st is None:
        raise OciError(f"container {cid} was deleted")
    return st["_exit"]


def delete(root: str, cid: str, force: bool = False) -> None:
    """Delete ``cid``: its cgroup and state (``force`` kills it first); a gone container is fine."""
    st = state.status(root, cid)
    if st is None:
        return
    if st["status"] in ("created", "running"):
        if not force:
            raise OciError(f"container {cid} is {st['status']}: kill it first or use --force")
        try:
            _shim_call(root, cid, f"kill {int(signal.SIGKILL)}")
        except ProcessLookupError:
            pass
        wait(root, cid, timeout=10)
    elif st["status"] == "creating":
        state.remove_container_dir(root, cid)
        return
    from kubelet.runtime.ociruntime import cgroupfs  # (not in the fork server: the Manager is heavy to fork)
    handler = st["_state"].get("handler", "kubelite")
    if handler != "kubelite":
        import subprocess
        subprocess.run([handler, "--root", shim.external_root(root, handler), "delete", "-f", cid],
                       capture_output=True, timeout=10)
    cg = st["_state"].get("cgroup")
    if cg:
        cgroupfs.destroy(cg, everywhere=handler != "kubelite")
    state.remove_container_dir(root, cid)


def exec_in(root: str, cid: str, process: dict[str, Any], stdio: list[int]) -> int:
    """Run ``process`` inside running container ``cid`` (all its namespaces and its cgroup); returns the pid
    of a helper whose exit status is the process' own. Called in a process that may fork freely.

    ``stdio`` is the process' stdin, stdout and stderr, or, for a ``terminal`` process, one console
    socket (as runc's ``--console-socket``): the helper opens the pty inside the container's own devpts
    (so ``tty`` in there names a /dev/pts it can see) and sends the master end over that socket."""
    st = state.status(root, cid)
    if st is None or st["status"] != "running":
        raise OciError(f"container {cid} is not running")
    pid = st["pid"]
    handler = json.load(open(os.path.join(st["bundle"], "config.json"))).get("annotations", {}).get(
        shim.HANDLER_ANNOTATION, "kubelite")
    if handler != "kubelite":  # st["pid"] is runc/crun itself: ask it for the container's init
        import subprocess
        deadline = time.monotonic() + 10
        while True:  # `start` returns once runc/crun is exec'd, not once it has made the container
            p = subprocess.run([handler, "--root", shim.external_root(root, handler), "state", cid],
                               capture_output=True, text=True)
            if p.returncode == 0 and json.loads(p.stdout).get("status") == "running":
                pid = int(json.loads(p.stdout)["pid"])
                break
            if time.monotonic() > deadline:
                raise OciError(f"{handler} state {cid}: {p.stderr.strip() or p.stdout.strip()}")
            time.sleep(0.01)
    helper = os.fork()
    if helper:
        return helper
    try:
        if st["_state"].get("tasks"):  # v1: this single-threaded helper moves itself (no RCU wait)
            init.join_cgroup(st["_state"]["tasks"], timeout=0)
        else:
            for f in st["_state"].get("procs", []):
                linux.write_file(f, str(os.getpid()))
        init.set_oom_score_adj(process)
        fds = {}
        for kind in ("user", "ipc", "uts", "net", "pid", "cgroup", "mnt"):
            mine, theirs = os.stat(f"/proc/self/ns/{kind}"), os.stat(f"/proc/{pid}/ns/{kind}")
            if (mine.st_dev, mine.st_ino) != (theirs.st_dev, theirs.st_ino):
                fds[kind] = os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
        for kind, fd in fds.items():
            linux.setns(fd, 0)
            os.close(fd)
        if len(stdio) == 1:              # a console socket: the pty from the container's /dev/ptmx
            console = stdio[0]
            master, slave = os.openpty()  # in the container's mount namespace now: its devpts
            with contextlib.suppress(OSError):  # the process' own terminal, as runc gives it
                os.fchown(slave, int((process.get("user") or {}).get("uid", 0)), -1)
            socket.send_fds(socket.socket(fileno=os.dup(console)), [b"pty"], [master])
            os.close(master)
            os.close(console)
            stdio = [slave, os.dup(slave), os.dup(slave)]
        child = os.fork()
        if child == 0:
            linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)  # killing the helper ends the exec
            os.dup2(stdio[0], 0)
            os.dup2(stdio[1], 1)
            os.dup2(stdio[2], 2)
            if process.get("terminal"):
                os.setsid()
                fcntl.ioctl(0, termios.TIOCSCTTY, 0)
            try:
                apply_process(process)
                env = dict(e.split("=", 1) for e in process.get("env", []) if "=" in e)
                env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
                os.execvpe(process["args"][0], process["args"], env)
            except OSError as e:
                os.write(2, f"exec {process['args'][0]}: {e.strerror}\n".encode())
                os._exit(127 if e.errno == 2 else 126)
        for fd in stdio:
            os.close(fd)
        _, status = os.waitpid(child, 0)
        code = os.waitstatus_to_exitcode(status)
        os._exit(code if code >= 0 else 128 - code)
    except BaseException as e:
        try:
            os.write(stdio[2], f"exec failed: {e}\n".encode())
        finally:
            os._exit(126)
